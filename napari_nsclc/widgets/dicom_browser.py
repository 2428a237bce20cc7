"""A dock for radiology: browse a Lung-PET-CT-Dx collection, open a series, window it, jump between boxes.

The table comes from the collection's ``metadata.csv`` when there is one, else
from a scan of the DICOM headers (see
:func:`napari_nsclc.datasets.lung_pet_ct_dx.browse_collection`). Double-click a
row to open that series with its tumour boxes; header reading shows a napari
progress bar, and long series then load lazily, slice by slice.

Window presets (:data:`napari_nsclc.formats.dicom.WINDOW_PRESETS`) are one
click or one key: Shift-M mediastinum, Shift-L lung, Shift-B bone, Shift-P PET.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..datasets import lung_pet_ct_dx as lung
from ..formats import dicom
from ..layers import case_to_layers
from ..model import color_to_hex

#: Annotated slices are counted when the collection is chosen only up to this
#: many slices on disk (one header read each); beyond, a series is counted when opened.
MAX_SLICES_COUNTED_UP_FRONT = 5000
COLUMNS = ("Patient", "Dx", "Modality", "Series", "Slices", "Annotated", "Study")
#: Keyboard shortcut of each window preset.
PRESET_KEYS = {"mediastinum": "Shift-M", "lung": "Shift-L", "bone": "Shift-B", "pet": "Shift-P"}


class DicomBrowser(QWidget):
    """Series table, window presets and next/previous annotated slice."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.root: Path | None = None
        self.rows: list[lung.SeriesRow] = []
        self.image_layer = None
        self.boxes_layer = None

        self.folder_label = QLabel("No collection chosen.")
        self.folder_label.setWordWrap(True)
        choose = QPushButton("Choose collection folder…")
        choose.clicked.connect(self._choose_folder)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.cellDoubleClicked.connect(lambda row, _column: self.open_row(row))

        presets = QHBoxLayout()
        self.preset_buttons = {}
        for name, key in PRESET_KEYS.items():
            width, level = dicom.WINDOW_PRESETS[name]
            button = QPushButton(name.capitalize())
            button.setToolTip(f"W {width:g} / L {level:g} ({key})")
            button.clicked.connect(lambda _checked=False, n=name: self.apply_window(n))
            presets.addWidget(button)
            self.preset_buttons[name] = button
            self.viewer.bind_key(key, lambda _viewer, n=name: self.apply_window(n), overwrite=True)

        jumps = QHBoxLayout()
        previous = QPushButton("◀ Previous box")
        previous.clicked.connect(lambda: self.jump(-1))
        following = QPushButton("Next box ▶")
        following.clicked.connect(lambda: self.jump(+1))
        jumps.addWidget(previous)
        jumps.addWidget(following)
        self.status = QLabel("")
        self.status.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addWidget(self.folder_label)
        layout.addWidget(choose)
        layout.addWidget(QLabel("Double-click a series to open it:"))
        layout.addWidget(self.table)
        legend = ", ".join(
            f'<span style="color:{color_to_hex(c.color)}">&#9632;</span> {c.description}'
            for c in lung.LUNG_PET_CT_DX_SCHEMA.classes
        )
        self.legend = QLabel(f"Box classes: {legend}")
        self.legend.setWordWrap(True)
        layout.addWidget(self.legend)
        layout.addWidget(QLabel("Window:"))
        layout.addLayout(presets)
        layout.addLayout(jumps)
        layout.addWidget(self.status)
        self._adopt_open_layers()
        self.viewer.layers.events.inserted.connect(self._on_inserted)

    # ------------------------------------------------------------------ collection

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Lung-PET-CT-Dx collection or DICOM folder")
        if folder:
            self.set_root(folder)

    def set_root(self, folder) -> None:
        """List the series of the collection (or DICOM folder) at ``folder``."""
        self.root = lung.find_collection_root(folder) or Path(folder)
        self.rows = lung.browse_collection(self.root, count_annotated=False)
        if sum(row.slices for row in self.rows if row.on_disk) <= MAX_SLICES_COUNTED_UP_FRONT:
            for row in self.rows:
                row.annotated = lung.count_annotated_slices(self.root, row)
        self.folder_label.setText(f"{self.root} — {len(self.rows)} series")
        self.table.setRowCount(len(self.rows))
        for index, row in enumerate(self.rows):
            annotated = "" if row.annotated is None else str(row.annotated)
            values = (row.patient, row.diagnosis, row.modality, " ".join(row.series.split()), str(row.slices),
                      annotated, f"{row.study_date} {row.study}".strip())
            for column, value in enumerate(values):
                item = QTableWidgetItem(value)
                if not row.on_disk:
                    item.setFlags(item.flags() & ~Qt.ItemIsEnabled)
                    item.setToolTip("listed in metadata.csv but not on disk")
                self.table.setItem(index, column, item)
        self.table.resizeColumnsToContents()

    def open_row(self, index: int) -> None:
        """Open series ``index`` of the table with its boxes, replacing the previous series."""
        row = self.rows[index]
        if not row.on_disk or row.folder is None:
            self.status.setText(f"{row.series} is listed in metadata.csv but not on disk.")
            return
        self.open_series(row.folder)
        if row.annotated is None and self.boxes_layer is not None:
            row.annotated = len(self.annotated_planes())
            self.table.item(index, COLUMNS.index("Annotated")).setText(str(row.annotated))

    def open_series(self, folder) -> None:
        """Read one series folder (with a progress bar while headers are read) and show it."""
        from napari.utils import progress
        from napari.utils.notifications import show_warning

        with progress(total=0, desc="Reading DICOM headers") as bar:

            def report(done, total):
                if bar.total != total:
                    bar.total = total
                bar.n = done
                bar.refresh()

            reader = lung.read_lung_pet_ct_dx if lung.find_collection_root(folder) else dicom.read_dicom
            cases = reader(Path(folder), progress=report)
        for layer in (self.image_layer, self.boxes_layer):
            if layer is not None and layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        self.image_layer = self.boxes_layer = None
        case = cases[0]
        for message in case.provenance.warnings[:5]:
            show_warning(message)
        for data, kwargs, layer_type in case_to_layers(case):
            kind = kwargs.get("metadata", {}).get("nsclc", {}).get("kind")
            kwargs = {**kwargs, "units": case.image.unit} if case.image.unit == "mm" else dict(kwargs)
            if kind == "boxes":
                kwargs["text"] = {"string": "{class}", "color": "white", "size": 11, "anchor": "upper_left"}
                if not len(data):
                    # An empty Shapes layer cannot guess that it lives on a volume.
                    kwargs["ndim"] = len(case.image.pixel_size)
            layer = getattr(self.viewer, f"add_{layer_type}")(data, **kwargs)
            if kind == "image":
                self.image_layer = layer
            elif kind == "boxes":
                self.boxes_layer = layer
        self.viewer.reset_view()
        planes = self.annotated_planes()
        if planes:
            self.go_to_plane(planes[0])
        self._show_status()

    def _on_inserted(self, event) -> None:
        """Follow a series opened through File > Open while the dock is shown."""
        nsclc = event.value.metadata.get("nsclc") or {}
        if nsclc.get("kind") == "image" and event.value.ndim == 3:
            self.image_layer = event.value
        elif nsclc.get("kind") == "boxes" and event.value.ndim == 3:
            self.boxes_layer = event.value

    def _adopt_open_layers(self) -> None:
        """Work with a series already opened through File > Open."""
        for layer in self.viewer.layers:
            nsclc = layer.metadata.get("nsclc") or {}
            if nsclc.get("kind") == "image" and self.image_layer is None and layer.ndim == 3:
                self.image_layer = layer
            elif nsclc.get("kind") == "boxes" and self.boxes_layer is None and layer.ndim == 3:
                self.boxes_layer = layer
                provenance = nsclc.get("provenance")
                root = provenance.details.get("collection_root") if provenance is not None else None
                if root and self.root is None:
                    self.set_root(root)

    # ------------------------------------------------------------------ windows

    def apply_window(self, preset: str) -> None:
        """Set the image's contrast to a window preset (e.g. ``"lung"``)."""
        layer = self.image_layer if self.image_layer in self.viewer.layers else self._active_image()
        if layer is None:
            self.status.setText("Open a series first.")
            return
        layer.contrast_limits = dicom.contrast_limits(preset)
        width, level = dicom.WINDOW_PRESETS[preset]
        self.status.setText(f"{preset} window: W {width:g} / L {level:g}")

    def _active_image(self):
        for layer in reversed(list(self.viewer.layers)):
            if layer._type_string == "image":
                return layer
        return None

    # ------------------------------------------------------------------ annotated slices

    def annotated_planes(self) -> list[int]:
        """Slice indices (of the series) that hold at least one box, ascending."""
        layer = self.boxes_layer
        if layer is None or layer not in self.viewer.layers or layer.ndim != 3 or not len(layer.data):
            return []
        return sorted({int(round(float(np.asarray(shape)[0, 0]))) for shape in layer.data})

    def _plane_to_world(self, plane: float) -> float:
        layer = self.boxes_layer
        return float(layer.translate[0] + plane * layer.scale[0])

    def go_to_plane(self, plane: int) -> None:
        """Show slice ``plane`` of the open series."""
        self.viewer.dims.set_point(0, self._plane_to_world(plane))

    def current_plane(self) -> float:
        """The slice of the open series under the viewer's z position (fractional)."""
        layer = self.boxes_layer
        return (self.viewer.dims.point[0] - float(layer.translate[0])) / float(layer.scale[0])

    def jump(self, direction: int) -> None:
        """Go to the next (``+1``) or previous (``-1``) slice that has a box."""
        planes = self.annotated_planes()
        if not planes:
            self.status.setText("This series has no box.")
            return
        here = self.current_plane()
        ahead = [p for p in planes if (p - here) * direction > 0.5]
        if not ahead:
            self.status.setText("No further box in this direction.")
            return
        self.go_to_plane(ahead[0] if direction > 0 else ahead[-1])
        self._show_status()

    def _show_status(self) -> None:
        planes = self.annotated_planes()
        if self.boxes_layer is None:
            return
        here = int(round(self.current_plane()))
        count = sum(1 for shape in self.boxes_layer.data if int(round(float(np.asarray(shape)[0, 0]))) == here)
        self.status.setText(f"slice {here}: {count} box(es); {len(planes)} annotated slice(s) in this series")
