"""The Nuclei dock: select, reclassify, delete and redraw a slide's nuclei, 100k to 1M of them.

It binds to the :class:`~napari_nsclc.nuclei.NucleusSet` behind the active
nuclei layer (opened from a big GeoJSON or COCO file): a class legend with
counts, selection by click, lasso or class, reclassify and delete with undo,
an outline editor for the nuclei in view, and saving as GeoJSON or COCO.
Every decision is the model's; the dock connects buttons, layers and messages.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from napari.layers import Labels, Shapes
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QTimer
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..layers import nuclei_colormap, outline_edit_from_layer, outline_edit_to_layer, plugin_metadata
from ..model import NsclcFormatError
from ..nuclei import write
from ..nuclei.autosave import Autosaver
from ..nuclei.editing import open_nuclei, open_region
from ..workflow import autosave_interval
from . import _questions

__all__ = ["NucleiWidget"]

LASSO_LAYER = "lasso: draw around nuclei to select"
#: A click that moves less than this (screen pixels) selects; more is a pan.
CLICK_SLOP = 4


class NucleiWidget(QWidget):
    """Correct the classes and outlines of a slide's nuclei (a dock).

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.layer: Labels | None = None
        self.edit_layer: Shapes | None = None
        self.autosaver: Autosaver | None = None
        self.title = QLabel("Open a GeoJSON or COCO file of nuclei.")
        self.title.setWordWrap(True)
        self.legend = QTableWidget(0, 3)
        self.legend.setHorizontalHeaderLabels(["class", "nuclei", "selected"])
        self.legend.verticalHeader().setVisible(False)
        self.legend.setEditTriggers(QTableWidget.NoEditTriggers)
        self.legend.setSelectionBehavior(QTableWidget.SelectRows)

        self.lasso_button = QPushButton("Lasso select")
        self.lasso_button.setToolTip("Draw around nuclei: those whose centre is inside are selected. "
                                     "A click on a nucleus selects it (Shift-click adds it).")
        self.select_class_button = QPushButton("Select the class")
        self.clear_button = QPushButton("Clear selection")
        self.target = QComboBox()
        self.target.setEditable(True)
        self.reclassify_button = QPushButton("Reclassify selection")
        self.delete_button = QPushButton("Delete selection")
        self.restore_button = QPushButton("Restore deleted in view")
        self.undo_button = QPushButton("Undo")
        self.redo_button = QPushButton("Redo")
        self.edit_button = QPushButton("Edit outlines")
        self.edit_button.setToolTip("Opens the selected nuclei as polygons, or every nucleus in view when none is "
                                    "selected (zoom in to at most 3,000).")
        self.apply_button = QPushButton("Apply outline edits")
        self.cancel_button = QPushButton("Cancel outline edits")
        self.save_geojson_button = QPushButton("Save GeoJSON…")
        self.save_coco_button = QPushButton("Save COCO…")
        self.status = QLabel("")
        self.status.setWordWrap(True)

        select = QGroupBox("Select")
        grid = QGridLayout(select)
        grid.addWidget(self.lasso_button, 0, 0)
        grid.addWidget(self.select_class_button, 0, 1)
        grid.addWidget(self.clear_button, 1, 0, 1, 2)
        correct = QGroupBox("Correct the selection")
        grid = QGridLayout(correct)
        grid.addWidget(QLabel("new class:"), 0, 0)
        grid.addWidget(self.target, 0, 1)
        grid.addWidget(self.reclassify_button, 1, 0, 1, 2)
        grid.addWidget(self.delete_button, 2, 0)
        grid.addWidget(self.restore_button, 2, 1)
        grid.addWidget(self.undo_button, 3, 0)
        grid.addWidget(self.redo_button, 3, 1)
        outlines = QGroupBox("Outlines")
        row = QVBoxLayout(outlines)
        row.addWidget(self.edit_button)
        buttons = QHBoxLayout()
        buttons.addWidget(self.apply_button)
        buttons.addWidget(self.cancel_button)
        row.addLayout(buttons)
        save = QHBoxLayout()
        save.addWidget(self.save_geojson_button)
        save.addWidget(self.save_coco_button)
        layout = QVBoxLayout(self)
        for widget in (self.title, self.legend, select, correct, outlines):
            layout.addWidget(widget)
        layout.addLayout(save)
        layout.addWidget(self.status)
        layout.addStretch(1)

        self.lasso_button.clicked.connect(self.start_lasso)
        self.select_class_button.clicked.connect(self.select_class)
        self.clear_button.clicked.connect(lambda: self.nuclei is not None and self.nuclei.select([]))
        self.reclassify_button.clicked.connect(self.reclassify)
        self.delete_button.clicked.connect(lambda: self._act(lambda n: n.delete()))
        self.restore_button.clicked.connect(lambda: self._act(lambda n: n.restore(n.query(*self.view_box(),
                                                                                           with_deleted=True))))
        self.undo_button.clicked.connect(lambda: self._act(lambda n: n.undo()))
        self.redo_button.clicked.connect(lambda: self._act(lambda n: n.redo()))
        self.edit_button.clicked.connect(self.edit_outlines)
        self.apply_button.clicked.connect(self.apply_outlines)
        self.cancel_button.clicked.connect(self.close_outlines)
        self.save_geojson_button.clicked.connect(lambda: self._save_dialog("geojson"))
        self.save_coco_button.clicked.connect(lambda: self._save_dialog("coco"))
        self.viewer.layers.selection.events.active.connect(lambda _event: self._follow())
        self.viewer.layers.events.inserted.connect(lambda _event: self._follow())
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setInterval(int(autosave_interval() * 1000))
        self.autosave_timer.timeout.connect(self.autosave_now)
        self.autosave_timer.start()
        self._follow()

    # ------------------------------------------------------------------ binding
    @property
    def nuclei(self):
        return plugin_metadata(self.layer).get("nuclei") if self.layer is not None else None

    def _follow(self) -> None:
        """Bind to the active nuclei layer, or the last one added."""
        active = self.viewer.layers.selection.active
        candidates = [active] if active is not None else []
        candidates += list(reversed(self.viewer.layers))
        for layer in candidates:
            if isinstance(layer, Labels) and plugin_metadata(layer).get("kind") == "nuclei":
                if layer is not self.layer:
                    self._bind(layer)
                return

    def _bind(self, layer: Labels) -> None:
        if self.layer is not None:
            old = self.nuclei
            old.changed.disconnect(self._on_changed)
            old.selection_changed.disconnect(self._on_selection)
            if self._on_click in self.layer.mouse_drag_callbacks:
                self.layer.mouse_drag_callbacks.remove(self._on_click)
        self.layer = layer
        nuclei = self.nuclei
        nuclei.changed.connect(self._on_changed)
        nuclei.selection_changed.connect(self._on_selection)
        layer.mouse_drag_callbacks.append(self._on_click)
        layer.editable = False
        self.title.setText(f"<b>{nuclei.name}</b>: {len(nuclei):,} nuclei")
        self.autosaver = Autosaver(nuclei)
        self._refresh_legend()
        self._offer_restore()

    # ------------------------------------------------------------------ autosave
    def _offer_restore(self) -> None:
        """After a crash: offer the edits autosaved for this file and never saved."""
        try:
            unfinished = self.autosaver.unfinished()
            if unfinished is None:
                return
            answer = _questions.ask(self, "restore", f"{unfinished['edited']:,} nuclei edited in "
                                                     f"{self.nuclei.name} were autosaved at {unfinished['saved_at']} "
                                                     "and not saved. Restore them?")
            if answer == "restore":
                changed = self.autosaver.restore()
                show_info(f"Restored {len(changed):,} edited nuclei from the autosave")
            else:
                self.autosaver.discard()
        except NsclcFormatError as error:
            show_error(str(error))

    def autosave_now(self) -> None:
        """Autosave the edits when they changed (the timer calls it)."""
        if self.autosaver is None:
            return
        try:
            path = self.autosaver.autosave()
        except NsclcFormatError as error:
            show_error(str(error))
            return
        if path is not None:
            self.status.setText(self.status.text().split(" · autosaved")[0] + " · autosaved")

    def _on_changed(self, _indices=None) -> None:
        nuclei = self.nuclei
        if len(self.layer.colormap.color_dict) < len(nuclei.schema.classes) + 3:
            self.layer.colormap = nuclei_colormap(nuclei)  # a class was added
        self.layer.refresh()
        self._refresh_legend()

    def _on_selection(self) -> None:
        self.layer.refresh()
        self._refresh_legend()

    def _refresh_legend(self) -> None:
        nuclei = self.nuclei
        counts, chosen = nuclei.counts(), nuclei.counts(nuclei.selected)
        self.legend.setRowCount(len(counts))
        for row, info in enumerate(nuclei.schema.classes):
            name = QTableWidgetItem(info.name)
            name.setBackground(QColor.fromRgbF(*info.color))
            name.setForeground(QColor("black" if sum(info.color[:3]) > 1.5 else "white"))
            self.legend.setItem(row, 0, name)
            self.legend.setItem(row, 1, QTableWidgetItem(f"{counts[info.name]:,}"))
            self.legend.setItem(row, 2, QTableWidgetItem(f"{chosen[info.name]:,}"))
        if [self.target.itemText(i) for i in range(self.target.count())] != nuclei.schema.names:
            current = self.target.currentText()
            self.target.clear()
            self.target.addItems(nuclei.schema.names)
            if current:
                self.target.setCurrentText(current)
        self.legend.resizeColumnsToContents()
        selected = int(nuclei.selected.sum())
        self.undo_button.setEnabled(nuclei.can_undo)
        self.redo_button.setEnabled(nuclei.can_redo)
        self.status.setText(f"{selected:,} selected · {len(nuclei.edited):,} nuclei edited")

    # ------------------------------------------------------------------ selecting
    def _on_click(self, layer, event):
        start = np.asarray(event.pos)
        yield
        while event.type == "mouse_move":
            yield
        if np.abs(np.asarray(event.pos) - start).max() > CLICK_SLOP:
            return  # a pan, not a click
        y, x = np.asarray(layer.world_to_data(event.position))[-2:]
        found = self.nuclei.at(y, x)
        mode = "add" if "Shift" in event.modifiers else "replace"
        self.nuclei.select([] if found is None else [found], mode)

    def start_lasso(self) -> None:
        """Add (or activate) the lasso layer in napari's polygon-lasso mode."""
        if self.layer is None:
            return
        if LASSO_LAYER not in self.viewer.layers:
            lasso = self.viewer.add_shapes(name=LASSO_LAYER, scale=self.layer.scale, translate=self.layer.translate,
                                           edge_color="white", face_color=[1, 1, 1, 0.15], edge_width=2)
            lasso.events.data.connect(self._on_lasso)
        lasso = self.viewer.layers[LASSO_LAYER]
        self.viewer.layers.selection.active = lasso
        lasso.mode = "add_polygon_lasso"

    def _on_lasso(self, event) -> None:
        if getattr(event, "action", None) != "added":
            return
        lasso = event.source
        if not len(lasso.data):
            return
        vertices = np.asarray(lasso.data[-1])[:, -2:]
        self.nuclei.select(self.nuclei.inside(vertices))
        lasso.selected_data = set(range(len(lasso.data)))
        lasso.remove_selected()

    def select_class(self) -> None:
        row = self.legend.currentRow()
        if self.nuclei is not None and row >= 0:
            self.nuclei.select_class(self.nuclei.schema.classes[row].name)

    # ------------------------------------------------------------------ correcting
    def _act(self, action) -> None:
        if self.nuclei is not None:
            action(self.nuclei)

    def reclassify(self) -> None:
        name = self.target.currentText().strip()
        if self.nuclei is None or not name:
            return
        changed = self.nuclei.reclassify(name)
        show_info(f"{len(changed):,} nuclei are now {name}")

    def view_box(self) -> tuple[float, float, float, float]:
        """The level-0 box in view, ``(ymin, xmin, ymax, xmax)``."""
        layer = self.layer
        factor = np.asarray(layer.downsample_factors[layer.data_level])[-2:]
        corners = np.asarray(layer.corner_pixels)[:, -2:] * factor
        return (*corners[0].tolist(), *corners[1].tolist())

    def edit_outlines(self) -> None:
        """Open the selected nuclei, or those in view, as editable polygons."""
        if self.nuclei is None:
            return
        self.close_outlines()
        selection = self.nuclei.selection
        try:
            edit = open_nuclei(self.nuclei, selection) if len(selection) else open_region(self.nuclei,
                                                                                          *self.view_box())
        except NsclcFormatError as error:
            show_error(error.problem)
            return
        data, kwargs, _ = outline_edit_to_layer(edit, plugin_metadata(self.layer)["image"])
        self.edit_layer = self.viewer.add_shapes(data, **kwargs)
        self.edit_layer.mode = "direct"

    def apply_outlines(self) -> None:
        if self.edit_layer is None:
            return
        edit = plugin_metadata(self.edit_layer)["edit"]
        changed = edit.apply(*outline_edit_from_layer(self.edit_layer))
        self.close_outlines()
        show_info(f"{len(changed):,} nuclei changed")

    def close_outlines(self) -> None:
        if self.edit_layer is not None and self.edit_layer in self.viewer.layers:
            self.viewer.layers.remove(self.edit_layer)
        self.edit_layer = None
        if self.layer is not None:
            self.viewer.layers.selection.active = self.layer

    # ------------------------------------------------------------------ saving
    def suggested_path(self, format_name: str) -> Path:
        source = getattr(self.nuclei.source, "path", None)
        folder, stem = (Path(source).parent, Path(source).stem) if source else (Path.cwd(), self.nuclei.name)
        return folder / f"{stem}.corrected.{'geojson' if format_name == 'geojson' else 'json'}"

    def _save_dialog(self, format_name: str) -> None:
        if self.nuclei is None:
            return
        wanted = "GeoJSON (*.geojson)" if format_name == "geojson" else "COCO JSON (*.json)"
        path, _ = QFileDialog.getSaveFileName(self, "Save nuclei", str(self.suggested_path(format_name)), wanted)
        if path:
            self.save(path, format_name)

    def save(self, path, format_name: str) -> Path | None:
        """Write the nuclei (replacing ``path`` if it exists, never the source); reports in one line."""
        try:
            written = write(self.nuclei, path, format_name, overwrite=True)
        except NsclcFormatError as error:
            show_error(str(error))
            return None
        self.autosaver.discard()
        show_info(f"Saved {len(self.nuclei) - int(self.nuclei.deleted.sum()):,} nuclei to {written}")
        return written
