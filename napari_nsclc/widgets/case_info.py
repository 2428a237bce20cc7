"""A dock that tells the user what the selected layer is: its case, source,
scale, classes with colours and counts, and any problems met while reading.

Below the selected layer's classes it keeps a legend of every other layer
that shows classes (a tissue map under classified cells, an expert mask beside
the tumour bed), so each colour on the canvas is explained without selecting
its layer first. Where it says "case i of n" it has buttons to the previous
and next case, which move the "Cases" dock (docked on first use).
"""

from __future__ import annotations

from napari.layers import Labels, Points, Shapes
from qtpy.QtCore import QTimer
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..layers import class_color_map, layer_to_model, plugin_metadata
from ..model import LabelMask, mask_class_counts

#: Pixel counts need a pass over the mask; above this size they are skipped so
#: that selecting a slide-sized Labels layer never freezes the window.
MAX_PIXELS_COUNTED = 50_000_000

#: How units are written next to napari's scale bar, which writes micrometres "µm".
UNIT_LABELS = {"um": "µm"}


#: Provenance details that are the readers' own bookkeeping: paths already shown as the source, flags.
READER_BOOKKEEPING = frozenset({"root", "loaded", "restored", "correction", "collection_root", "annotation_folder"})

class CaseInfoWidget(QWidget):
    """Case, provenance and per-class counts of the active layer; the other layers' classes; previous/next case."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.summary = QLabel("Select a layer opened by napari-nsclc.")
        self.summary.setWordWrap(True)
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["class", "count"])
        self.table.verticalHeader().setVisible(False)
        self.warnings = QListWidget()
        self.position = QLabel("")
        self.previous_button = QPushButton("◀ Previous")
        self.next_button = QPushButton("Next ▶")
        self.previous_button.clicked.connect(lambda: self.step(-1))
        self.next_button.clicked.connect(lambda: self.step(+1))
        self.navigation = QWidget()
        row = QHBoxLayout(self.navigation)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.previous_button)
        row.addWidget(self.position, stretch=1)
        row.addWidget(self.next_button)
        self.navigation.setVisible(False)
        self.legend = QTableWidget(0, 2)
        self.legend.setHorizontalHeaderLabels(["class", "count"])
        self.legend.verticalHeader().setVisible(False)
        self.others = QWidget()
        others = QVBoxLayout(self.others)
        others.setContentsMargins(0, 0, 0, 0)
        others.addWidget(QLabel("Classes of the other layers:"))
        others.addWidget(self.legend)
        self.others.setVisible(False)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.navigation)
        layout.addWidget(self.table)
        layout.addWidget(self.others)
        layout.addWidget(QLabel("Problems found while reading:"))
        layout.addWidget(self.warnings)
        self._watched = None
        # edits, case switches (layers refilled in place) and visibility change the legend: one refresh after them
        self._pending = QTimer(self)
        self._pending.setSingleShot(True)
        self._pending.setInterval(0)
        self._pending.timeout.connect(self.refresh)
        self.viewer.layers.selection.events.active.connect(self._on_active)
        self.viewer.layers.events.inserted.connect(self._on_inserted)
        self.viewer.layers.events.removed.connect(self._on_removed)
        for layer in list(self.viewer.layers):
            self._follow(layer)
        self._on_active()

    def _follow(self, layer, connect: bool = True) -> None:
        for name in ("data", "paint", "features", "visible", "name"):
            emitter = getattr(layer.events, name, None)
            if emitter is not None:
                (emitter.connect if connect else emitter.disconnect)(self._schedule)

    def _schedule(self, event=None) -> None:
        self._pending.start()

    def _on_inserted(self, event) -> None:
        self._follow(event.value)
        self._schedule()

    def _on_removed(self, event) -> None:
        self._follow(event.value, connect=False)
        self._schedule()

    def _on_active(self, event=None):
        if self._watched is not None:
            self._watched.events.data.disconnect(self.refresh)
        layer = self.viewer.layers.selection.active
        self._watched = layer if isinstance(layer, (Points, Shapes)) else None
        if self._watched is not None:
            self._watched.events.data.connect(self.refresh)
        self.refresh()

    def refresh(self, event=None):
        layer = self.viewer.layers.selection.active
        nsclc = plugin_metadata(layer)
        self.table.setRowCount(0)
        self.warnings.clear()
        self._fill_legend(layer)
        if layer is None or not nsclc:
            self.summary.setText("Select a layer opened by napari-nsclc.")
            self.navigation.setVisible(False)
            return
        image = nsclc.get("image")
        provenance = nsclc.get("provenance")
        lines = [f"<b>{layer.name}</b>"]
        if nsclc.get("case_name"):
            lines.append(f"case: {nsclc['case_name']}")
        if provenance is not None:
            lines.append(f"format: {provenance.format}")
            lines.append(f"source: {provenance.source}")
            for key, value in provenance.details.items():
                # what a reader noted about the file (its encoding, split, ...), not its own bookkeeping
                if key not in READER_BOOKKEEPING and isinstance(value, (str, int, float)) and not isinstance(value, bool):
                    lines.append(f"{key.replace('_', ' ')}: {value}")
        if image is not None:
            size = " × ".join(f"{s:g}" for s in image.pixel_size)
            lines.append(f"pixel size: {size} {UNIT_LABELS.get(image.unit, image.unit)}")
        self._fill_navigation(nsclc.get("dataset"))
        self.summary.setText("<br>".join(lines))
        if provenance is not None:
            # an empty box reads as "not checked": say that nothing was found
            self.warnings.addItems(provenance.warnings or ["none"])
        self._fill_counts(layer)

    def _fill_navigation(self, dataset: dict | None) -> None:
        """``case i of n`` between the previous and next buttons, for a case of a dataset of several."""
        shown = bool(dataset) and dataset.get("count", 1) > 1 and "index" in dataset
        self.navigation.setVisible(shown)
        if not shown:
            return
        from .. import workflow

        index, count = int(dataset["index"]), int(dataset["count"])
        self.position.setText(f"case {index + 1} of {count}")
        shown = [index]
        workspace = workflow.shared(dataset["source"]) if "source" in dataset else None
        if workspace is not None and index < len(workspace.cases):
            # cases shown together (an OCELOT sample's two patches) are stepped over as one
            shown = [workspace.cases.index(c) for c in workspace.group_of(workspace.cases[index])]
        self.previous_button.setEnabled(min(shown) > 0)
        self.next_button.setEnabled(max(shown) < count - 1)

    # ------------------------------------------------------------------ navigation
    def step(self, delta: int) -> None:
        """Show the next (``+1``) or previous (``-1``) case of the selected layer's dataset.

        The "Cases" dock does it, so that unsaved corrections are autosaved
        and asked about as on any case switch; it is docked (as a tab) when
        the window has none.
        """
        from .. import workflow

        layer = self.viewer.layers.selection.active
        dataset = plugin_metadata(layer).get("dataset") or {}
        if "source" not in dataset or "index" not in dataset:
            return
        navigator = self._navigator()
        workspace = workflow.shared(dataset["source"])
        if workspace is None or navigator.workspace is not workspace:
            navigator.set_source(dataset["source"], show=False)
            navigator.workspace.set_current(navigator.workspace.cases[int(dataset["index"])])
        if delta > 0:
            navigator.next_case()
        else:
            navigator.previous_case()

    def _navigator(self):
        """The window's "Cases" dock, docked as a tab of this one when there is none."""
        from .case_navigator import CaseNavigator

        window = self.viewer.window
        found = next((w for w in window.dock_widgets.values() if isinstance(w, CaseNavigator)), None)
        if found is None:
            found = CaseNavigator(self.viewer)
            window.add_dock_widget(found, name="Cases", area="right", tabify=True)
        return found

    # ------------------------------------------------------------------ classes and counts
    def _fill_legend(self, selected) -> None:
        """Every other layer that shows classes: its name, then its classes with colours and counts."""
        rows: list[tuple[str, tuple | None, str]] = []
        for layer in reversed(list(self.viewer.layers)):  # top to bottom, as in the layer list
            if layer is selected or "overlay" in plugin_metadata(layer):
                continue
            counted = class_counts(layer)
            if counted is None:
                continue
            counts, colors = counted
            rows.append((layer.name if layer.visible else f"{layer.name} (hidden)", None, ""))
            rows += [(name, colors.get(name, (1, 1, 1, 1)), str(count)) for name, count in counts.items()]
        self.legend.setRowCount(len(rows))
        self.legend.clearSpans()
        for row, (text, rgba, count) in enumerate(rows):
            item = QTableWidgetItem(text)
            if rgba is None:  # a layer's name, over its classes
                font = item.font()
                font.setBold(True)
                item.setFont(font)
                self.legend.setItem(row, 0, item)
                self.legend.setSpan(row, 0, 1, 2)
                continue
            item.setBackground(QColor.fromRgbF(*rgba[:3], max(rgba[3], 0.3)))
            self.legend.setItem(row, 0, item)
            self.legend.setItem(row, 1, QTableWidgetItem(count))
        self.legend.resizeColumnsToContents()
        self.others.setVisible(bool(rows))

    def _fill_counts(self, layer) -> None:
        counted = class_counts(layer)
        if counted is None:
            return
        counts, colors = counted
        self.table.setRowCount(len(counts))
        for row, (name, count) in enumerate(counts.items()):
            item = QTableWidgetItem(name)
            rgba = colors.get(name, (1, 1, 1, 1))
            item.setBackground(QColor.fromRgbF(*rgba[:3], max(rgba[3], 0.3)))
            self.table.setItem(row, 0, item)
            self.table.setItem(row, 1, QTableWidgetItem(str(count)))
        self.table.resizeColumnsToContents()


def class_counts(layer) -> tuple[dict[str, int], dict[str, tuple]] | None:
    """``({class: count}, {class: RGBA})`` of a Labels, Points or Shapes layer napari-nsclc opened.

    Counts are pixels for a mask (of its coarsest level when multiscale) and
    objects otherwise. ``None`` for other layers, for layers without
    napari-nsclc classes, and for masks above :data:`MAX_PIXELS_COUNTED`.
    """
    if not isinstance(layer, (Labels, Points, Shapes)) or not plugin_metadata(layer):
        return None
    _data, meta, layer_type = layer.as_layer_data_tuple()
    model = layer_to_model(layer.data, meta, layer_type)
    if isinstance(model, LabelMask):
        data = model.data[-1] if model.multiscale else model.data
        if data.size > MAX_PIXELS_COUNTED:
            return None
        counts = mask_class_counts(model)
    else:
        counts = model.counts()
    return counts, class_color_map(model.schema, list(counts))
