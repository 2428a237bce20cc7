"""A dock that tells the user what the selected layer is: its case, source,
scale, classes with colours and counts, and any problems met while reading."""

from __future__ import annotations

from qtpy.QtGui import QColor
from qtpy.QtWidgets import QLabel, QListWidget, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from ..layers import class_color_map, layer_to_model
from ..model import LabelMask, mask_class_counts

#: Pixel counts need a pass over the mask; above this size they are skipped so
#: that selecting a slide-sized Labels layer never freezes the window.
MAX_PIXELS_COUNTED = 50_000_000


class CaseInfoWidget(QWidget):
    """Case, provenance and per-class counts of the active layer."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.summary = QLabel("Select a layer opened by napari-nsclc.")
        self.summary.setWordWrap(True)
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["class", "count"])
        self.table.verticalHeader().setVisible(False)
        self.warnings = QListWidget()
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.table)
        layout.addWidget(QLabel("Problems found while reading:"))
        layout.addWidget(self.warnings)
        self._watched = None
        self.viewer.layers.selection.events.active.connect(self._on_active)
        self._on_active()

    def _on_active(self, event=None):
        if self._watched is not None:
            self._watched.events.data.disconnect(self.refresh)
        layer = self.viewer.layers.selection.active
        self._watched = layer if layer is not None and layer._type_string in ("points", "shapes") else None
        if self._watched is not None:
            self._watched.events.data.connect(self.refresh)
        self.refresh()

    def refresh(self, event=None):
        layer = self.viewer.layers.selection.active
        nsclc = (layer.metadata.get("nsclc") if layer is not None else None) or {}
        self.table.setRowCount(0)
        self.warnings.clear()
        if layer is None or not nsclc:
            self.summary.setText("Select a layer opened by napari-nsclc.")
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
                lines.append(f"{key}: {value}")
        if image is not None:
            size = " × ".join(f"{s:g}" for s in image.pixel_size)
            lines.append(f"pixel size: {size} {image.unit}")
        dataset = nsclc.get("dataset")
        if dataset and dataset.get("count", 1) > 1:
            lines.append(f"case {dataset['index'] + 1} of {dataset['count']}")
        self.summary.setText("<br>".join(lines))
        if provenance is not None:
            self.warnings.addItems(provenance.warnings)
        self._fill_counts(layer)

    def _fill_counts(self, layer) -> None:
        if layer._type_string not in ("labels", "points", "shapes"):
            return
        model = layer_to_model(layer.data, layer.as_layer_data_tuple()[1], layer._type_string)
        if isinstance(model, LabelMask):
            data = model.data[-1] if model.multiscale else model.data
            if data.size > MAX_PIXELS_COUNTED:
                return
            counts = mask_class_counts(model)
        else:
            counts = model.counts()
        colors = class_color_map(model.schema, list(counts))
        self.table.setRowCount(len(counts))
        for row, (name, count) in enumerate(counts.items()):
            item = QTableWidgetItem(name)
            rgba = colors.get(name, (1, 1, 1, 1))
            item.setBackground(QColor.fromRgbF(*rgba[:3], max(rgba[3], 0.3)))
            self.table.setItem(row, 0, item)
            self.table.setItem(row, 1, QTableWidgetItem(str(count)))
        self.table.resizeColumnsToContents()
