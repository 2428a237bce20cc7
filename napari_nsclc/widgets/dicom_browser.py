"""A dock for radiology: browse a Lung-PET-CT-Dx collection, open a series, window it, jump between boxes.

It binds to the collection's :class:`~napari_nsclc.workflow.Workspace`, the one
napari's reader and the Cases dock share (``workflow.open_shared``). The table
lists its series, plus those ``metadata.csv`` lists that are not on disk
(greyed). Double-click a row to show that series with the others of its
patient, as last saved; the layers are tagged with the dataset, so the Cases
dock marks edits, autosaves them and saves them as corrections (Ctrl+S).
Headers are read under a progress bar; long series then load lazily.

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

from .. import workflow
from .._reader import add_to_viewer, scene_layers
from ..datasets import lung_pet_ct_dx as lung
from ..formats import dicom
from ..layers import dataset_tag as _tag
from ..layers import plugin_metadata
from ..model import color_to_hex
from ._questions import ask

COLUMNS = ("Patient", "Dx", "Modality", "Series", "Slices", "Annotated", "Study")
#: Keyboard shortcut of each window preset.
PRESET_KEYS = {"mediastinum": "Shift-M", "lung": "Shift-L", "bone": "Shift-B", "pet": "Shift-P"}
NOT_ON_DISK = "listed in metadata.csv but not on disk"
#: How many of a series' reader warnings pop up as notifications when it is opened.
MAX_WARNINGS_SHOWN = 5


class DicomBrowser(QWidget):
    """Series table, window presets and next/previous annotated slice, bound to a workspace.

    ``self.workspace`` is the binding; everything else (the rows, the
    current series, its layers) is derived from the workspace and the
    viewer's layers when needed.
    """

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.workspace: workflow.Workspace | None = None

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
        self.table.setToolTip("Edits are saved as corrections with Ctrl+S in the Cases dock")
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
        for layer in list(self.viewer.layers):
            if self._adopt(layer):  # a dataset File > Open already read: its workspace, not a second read
                break
        self.viewer.layers.events.inserted.connect(lambda event: self._adopt(event.value))

    # ------------------------------------------------------------------ binding to a workspace

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Lung-PET-CT-Dx collection or DICOM folder")
        if folder:
            self.set_root(folder)

    def set_root(self, folder) -> None:
        """Bind to the workspace of the collection holding ``folder`` (or of the DICOM folder itself).

        The collection is read once per process (:func:`~napari_nsclc.workflow.open_shared`),
        with a progress bar while its headers are read; a workspace napari's
        reader or the Cases dock already opened is reused.
        """
        from napari.utils import progress

        root = lung.find_collection_root(folder) or Path(folder)
        with progress(total=0, desc="Reading DICOM headers") as bar:
            workspace = workflow.open_shared(root, progress=lambda done, total: _advance(bar, done, total))
        self.bind(workspace)

    def bind(self, workspace: workflow.Workspace) -> None:
        """List ``workspace``'s series and follow its current case."""
        if self.workspace is not workspace:
            if self.workspace is not None:
                self.workspace.current_changed.disconnect(self._select_current)
            workspace.current_changed.connect(self._select_current)
        self.workspace = workspace
        self._fill_table()

    def _adopt(self, layer) -> bool:
        """Bind to the workspace of a 3-D series layer the reader (or this dock) tagged; ``True`` if adopted."""
        tag = _tag(layer)
        workspace = workflow.shared(tag["source"]) if tag.get("source") else None
        if workspace is None or _kind(layer) not in ("image", "boxes") or layer.ndim != 3:
            return False
        if workspace is not self.workspace:
            self.bind(workspace)
        current = workspace.current
        if current is None or not self._layers_of(workspace.cases.index(current)):
            workspace.set_current(workspace.cases[int(tag["index"])])
        return True

    def _rows(self) -> list[tuple[str | None, tuple[str, ...], str]]:
        """``(case id or None, column texts, tooltip)`` per series: the workspace's, then the others listed."""
        ws = self.workspace
        rows, listed = [], set()
        for case_id in ws.cases:
            case = ws.original(case_id)
            meta = case.image.metadata
            listed.add(meta.get("series_uid"))
            patient = str(meta.get("patient_id", ""))
            annotated = {int(p) for boxes in case.boxes if boxes.planes is not None for p in boxes.planes}
            slices = case.image.shape[0] if case.image.shape else case.provenance.details.get("slices", 0)
            study = f"{_nbia_date(str(meta.get('study_date', '')))} {meta.get('study_description', '')}"
            rows.append((case_id, (patient, lung.diagnosis_letter(patient), str(meta.get("modality", "")),
                                   str(meta.get("series_description", "")), str(slices), str(len(annotated)),
                                   study), ""))  # fmt: skip
        root = lung.find_collection_root(ws.source)
        if root is not None and (root / "metadata.csv").is_file():
            for row in lung.browse_collection(root, count_annotated=False):
                if row.series_uid not in listed:
                    why = NOT_ON_DISK if not row.on_disk else f"not in {ws.source.name}: choose the collection folder"
                    rows.append((None, (row.patient, row.diagnosis, row.modality, row.series, str(row.slices), "",
                                        f"{row.study_date} {row.study}"), why))  # fmt: skip
        return sorted(rows, key=lambda row: row[1][0])  # by patient; each patient's series in dataset order

    def _fill_table(self) -> None:
        rows = self._rows()
        self.folder_label.setText(f"{self.workspace.source} — {len(rows)} series")
        self.table.setRowCount(len(rows))
        for index, (case_id, values, why) in enumerate(rows):
            for column, value in enumerate(values):
                item = QTableWidgetItem(" ".join(value.split()))
                item.setData(Qt.ItemDataRole.UserRole, case_id)
                if case_id is None:
                    item.setFlags(item.flags() & ~Qt.ItemIsEnabled)
                    item.setToolTip(why)
                self.table.setItem(index, column, item)
        self.table.resizeColumnsToContents()
        self._select_current(self.workspace.current or "")

    def _select_current(self, case_id: str) -> None:
        for row in range(self.table.rowCount()):
            if case_id and self.table.item(row, 0).data(Qt.ItemDataRole.UserRole) == case_id:
                self.table.selectRow(row)

    # ------------------------------------------------------------------ showing a series

    def open_row(self, index: int) -> None:
        """Show the series of table row ``index``, with the other series of its patient."""
        item = self.table.item(index, 0)
        case_id = item.data(Qt.ItemDataRole.UserRole)
        if case_id is None:  # a greyed row: its tooltip says why
            self.status.setText(f"{self.table.item(index, COLUMNS.index('Series')).text()} is {item.toolTip()}.")
            return
        self.open_case(case_id)

    def open_case(self, case_id: str) -> None:
        """Show ``case_id`` and its scene as last saved (or autosaved), replacing the series shown.

        A scene already on screen is not read again, so its edits stay; a
        scene with unsaved corrections is not replaced.
        """
        from napari.utils.notifications import show_warning

        ws = self.workspace
        note = ""
        shown = [ws.cases[_tag(layer)["index"]] for layer in self._layers_of(None)]
        if case_id not in shown:
            members = ws.group_of(case_id)
            # edits on screen would go with their layers; edits in no layer here are in another window
            unsaved = [c for c in dict.fromkeys(shown) if ws.has_unsaved(c)] or [c for c in members if ws.is_edited(c)]
            if unsaved:
                self.status.setText(f"{', '.join(unsaved)} has unsaved corrections. Save them first (Ctrl+S in the "
                                    "Cases dock), or move on from the Cases dock, which asks what to do with them.")
                return
            loaded, restored = [], []
            for member in [case_id, *(c for c in members if c != case_id)]:
                case = self._restored(member)
                restored += [member] if case is not None else []
                loaded.append((ws.cases.index(member), case if case is not None else ws.load(member)))
            for layer in self._layers_of(None):
                self.viewer.layers.remove(layer)
            # the chosen series first: a Cases dock that adopts the scene on insertion selects it
            add_to_viewer(self.viewer, scene_layers(loaded, ws.source, len(ws.cases)))
            for message in ws.warnings(case_id)[:MAX_WARNINGS_SHOWN]:
                show_warning(message)
            note = f" (restored the autosave of {', '.join(restored)}; not saved yet)" if restored else ""
            self.viewer.reset_view()
        # on top: a later series' image would hide the boxes of this one
        chosen = self._layers_of(ws.cases.index(case_id))
        self.viewer.layers.move_multiple([self.viewer.layers.index(layer) for layer in chosen], len(self.viewer.layers))
        ws.set_current(case_id)
        if self.boxes_layer is not None:
            self.viewer.layers.selection.active = self.boxes_layer
        planes = self.annotated_planes()
        if planes:
            self.go_to_plane(planes[0])
        self._show_status()
        self.status.setText(self.status.text() + note)

    def _restored(self, case_id: str):
        """The autosave of ``case_id`` if the user restores it (the Cases dock's question), else ``None``."""
        ws = self.workspace
        if not ws.has_autosave(case_id):
            return None
        if self.ask("restore", f"{case_id} has autosaved corrections that were never saved.") == "restore":
            return ws.recover(case_id)
        ws.discard_autosave(case_id)
        return None

    def ask(self, question: str, text: str) -> str:
        """Ask the user (see :func:`napari_nsclc.widgets._questions.ask`); scripts and tests may replace it."""
        return ask(self, question, text)

    def _layers_of(self, index: int | None, kind: str | None = None) -> list:
        """The viewer's layers of case ``index`` (``None``: of every case) of the bound workspace.

        With ``kind`` (``"image"``, ``"boxes"``), only the 3-D layers of that kind.
        """
        source = str(self.workspace.source) if self.workspace is not None else None
        return [layer for layer in self.viewer.layers
                if source is not None and _tag(layer).get("source") == source
                and (index is None or _tag(layer).get("index") == index)
                and (kind is None or (_kind(layer) == kind and layer.ndim == 3))]  # fmt: skip

    def _current_layer(self, kind: str):
        ws = self.workspace
        found = self._layers_of(ws.cases.index(ws.current), kind) if ws is not None and ws.current else []
        return found[0] if found else None

    @property
    def image_layer(self):
        """The Image layer of the workspace's current series, or ``None``."""
        return self._current_layer("image")

    @property
    def boxes_layer(self):
        """The ``tumour boxes`` Shapes layer of the workspace's current series, or ``None``."""
        return self._current_layer("boxes")

    # ------------------------------------------------------------------ windows

    def apply_window(self, preset: str) -> None:
        """Set the image's contrast to a window preset (e.g. ``"lung"``)."""
        layer = self.image_layer if self.image_layer is not None else self._active_image()
        if layer is None:
            self.status.setText("Open a series first.")
            return
        layer.contrast_limits = dicom.contrast_limits(preset)
        width, level = dicom.WINDOW_PRESETS[preset]
        self.status.setText(f"{preset} window: W {width:g} / L {level:g}")

    def _active_image(self):
        """The top Image layer: a series opened without a workspace (a read-only DICOM folder) still gets windows."""
        from napari.layers import Image

        return next((layer for layer in reversed(list(self.viewer.layers)) if isinstance(layer, Image)), None)

    # ------------------------------------------------------------------ annotated slices

    def annotated_planes(self) -> list[int]:
        """Slice indices (of the series) that hold at least one box, ascending."""
        layer = self.boxes_layer
        if layer is None or not len(layer.data):
            return []
        return sorted({int(round(float(np.asarray(shape)[0, 0]))) for shape in layer.data})

    def go_to_plane(self, plane: int) -> None:
        """Show slice ``plane`` of the open series."""
        layer = self.boxes_layer
        self.viewer.dims.set_point(0, float(layer.translate[0] + plane * layer.scale[0]))

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
        boxes = self.boxes_layer
        if boxes is None:
            return
        planes = self.annotated_planes()
        here = int(round(self.current_plane()))
        count = sum(1 for shape in boxes.data if int(round(float(np.asarray(shape)[0, 0]))) == here)
        self.status.setText(f"slice {here}: {count} box(es); {len(planes)} annotated slice(s) in this series")


def _kind(layer) -> str | None:
    return plugin_metadata(layer).get("kind")


def _advance(bar, done: int, total: int) -> None:
    """Feed a reader's ``progress(done, total)`` to a napari progress bar."""
    if bar.total != total:
        bar.total = total
    bar.n = done
    bar.refresh()


def _nbia_date(date: str) -> str:
    """A DICOM date as NBIA's ``metadata.csv`` and folder names write it: ``"20080102"`` → ``"01-02-2008"``."""
    return f"{date[4:6]}-{date[6:]}-{date[:4]}" if len(date) == 8 and date.isdigit() else date
