"""The class-editing dock: classify cells and nuclei fast, with undo.

For the active Points or Shapes layer opened by napari-nsclc it shows

* a palette of the dataset's classes (from ``layer.metadata["nsclc"]["schema"]``)
  with their colours and live counts; keys 1-9 give the selected points or
  shapes that class, and new points take the active class;
* undo and redo (Ctrl+Z, Ctrl+Shift+Z, or the buttons) of class changes and of
  added, deleted and moved points and shapes, which napari does not undo;
* a bar plot of the counts, a switch of the displayed class level (NuCLS raw,
  main, super), a switch between contours (Shapes) and centroids (Points);
* "Save correction" (the case, through its dataset's
  :class:`~napari_nsclc.workflow.Workspace`, with provenance) and "Export…"
  (a copy in another format, through the format registry).

The dock holds no state: the undo history is the case's
:meth:`Workspace.history <napari_nsclc.workflow.Workspace.history>` (a
:func:`~napari_nsclc.workflow.history.detached_history` for a file that is
not corrected in place), the active class is the layer's feature default,
and class edits are in :mod:`napari_nsclc.widgets._class_edits`.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
from napari.layers import Labels, Points, Shapes
from qtpy.QtCore import Qt
from qtpy.QtGui import QColor, QIcon, QPainter, QPixmap
from qtpy.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from .. import registry, workflow
from ..layers import (
    case_from_layers,
    class_color_map,
    dataset_tag,
    layer_data_to_case,
    layer_state,
    plugin_metadata,
    points_display_size,
    restore_layer_state,
)
from ..model import ClassSchema, NsclcFormatError
from ..workflow.history import EditHistory, detached_history
from ._class_edits import (
    assign_class,
    centroids,
    class_counts,
    collector_paused,
    level_colors,
    level_names,
)
from ._questions import ask, named_annotator

__all__ = ["ClassEditorWidget"]

#: Formats "Export…" offers, when a writer for them is registered.
EXPORT_FORMATS = ("coco", "nucls", "midog", "ocelot", "ignite-pdl1")
_FINAL_ACTIONS = ("added", "removed", "changed")


def _schema_of(layer) -> ClassSchema | None:
    return plugin_metadata(layer).get("schema")


def _recolour(layer) -> None:
    """Recompute class colours after a class change, with napari's public ``refresh_colors``.

    The colours stay mapped from the class column (napari's colour cycle), so
    objects added later take the colour of the active class. Reclassifying 10k
    of 60k points, recolour included, stays within 200 ms (docs/benchmarks.md).
    """
    layer.refresh_colors(update_color_mapping=False)


def _is_editable(layer) -> bool:
    return isinstance(layer, (Points, Shapes)) and "class" in layer.features


class _BarPlot(QWidget):
    """Horizontal bars of per-class counts, in class colours."""

    ROW = 16

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: list[tuple[str, int, tuple]] = []
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)

    def set_counts(self, rows: list[tuple[str, int, tuple]]) -> None:
        self.rows = rows
        self.setFixedHeight(max(1, len(rows)) * self.ROW + 4)
        self.update()

    def paintEvent(self, event):
        painter = QPainter(self)
        width = self.width()
        widest = max([painter.fontMetrics().horizontalAdvance(name) for name, _, _ in self.rows] or [0])
        label_width = min(widest + 8, int(width * 0.6))
        peak = max([count for _, count, _ in self.rows] or [1]) or 1
        for i, (name, count, color) in enumerate(self.rows):
            y = 2 + i * self.ROW
            painter.setPen(QColor("white"))
            painter.drawText(0, y, label_width - 4, self.ROW, Qt.AlignRight | Qt.AlignVCenter, name)
            bar = int((width - label_width - 50) * count / peak)
            painter.fillRect(label_width, y + 2, max(bar, 1 if count else 0), self.ROW - 4, QColor.fromRgbF(*color[:3]))
            painter.drawText(label_width + bar + 4, y, 50, self.ROW, Qt.AlignLeft | Qt.AlignVCenter, str(count))
        painter.end()


class ClassEditorWidget(QWidget):
    """Palette, keys 1-9, undo/redo, counts and saving for cell and nucleus layers.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.layer = None  # the layer the dock is bound to: the selected Points or Shapes layer
        self._bound: set[int] = set()  # layers whose keys and events are connected

        self.title = QLabel("Select a points or shapes layer opened by napari-nsclc.")
        self.title.setWordWrap(True)
        self.level = QComboBox()
        self.level.currentTextChanged.connect(self._on_level)
        self.palette_box = QWidget()
        self.palette_layout = QGridLayout(self.palette_box)
        self.palette_layout.setContentsMargins(0, 0, 0, 0)
        self.buttons = QButtonGroup(self)
        self.buttons.setExclusive(True)
        self.plot = _BarPlot()
        self.undo_button = QPushButton("Undo (Ctrl+Z)")
        self.redo_button = QPushButton("Redo (Ctrl+Shift+Z)")
        self.apply_button = QPushButton("Give selected the active class")
        self.undo_button.clicked.connect(self.undo)
        self.redo_button.clicked.connect(self.redo)
        self.apply_button.clicked.connect(lambda: self.assign_selected(self.active_class))
        self.view_button = QPushButton("Show as centroids")
        self.view_button.clicked.connect(self.toggle_view)
        self.save_button = QPushButton("Save correction")
        self.save_button.setToolTip("Save this case into the dataset's corrections folder, with who saved it and what changed")
        self.save_button.clicked.connect(self.save_correction)
        self.export_format = QComboBox()
        known = {spec.name for spec in registry.all_formats() if spec.write is not None}
        self.export_format.addItems([name for name in EXPORT_FORMATS if name in known])
        self.export_button = QPushButton("Export…")
        self.export_button.clicked.connect(self._export_dialog)
        self.status = QLabel("")
        self.status.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        level_row = QHBoxLayout()
        level_row.addWidget(QLabel("Colour by"))
        level_row.addWidget(self.level, 1)
        layout.addLayout(level_row)
        layout.addWidget(QLabel("Classes (keys 1–9 classify the selection; new points take the active class):"))
        layout.addWidget(self.palette_box)
        layout.addWidget(self.plot)
        edit_row = QHBoxLayout()
        edit_row.addWidget(self.undo_button)
        edit_row.addWidget(self.redo_button)
        layout.addLayout(edit_row)
        layout.addWidget(self.apply_button)
        layout.addWidget(self.view_button)
        layout.addWidget(self.save_button)
        export_row = QHBoxLayout()
        export_row.addWidget(QLabel("Export a copy as"))
        export_row.addWidget(self.export_format, 1)
        export_row.addWidget(self.export_button)
        layout.addLayout(export_row)
        layout.addWidget(self.status)
        layout.addStretch(1)

        self.viewer.layers.selection.events.active.connect(self._on_active)
        self._on_active()

    # ------------------------------------------------------------------ layer tracking

    def _on_active(self, event=None) -> None:
        layer = self.viewer.layers.selection.active
        if not _is_editable(layer):
            if self.layer is None:
                self._show_nothing()
            return
        self.attach(layer)

    def attach(self, layer) -> None:
        """Edit ``layer``: build its palette, bind keys 1-9 and start recording undo steps."""
        self.layer = layer
        if id(layer) not in self._bound:
            for number in range(1, 10):
                layer.bind_key(str(number), partial(self._key_class, number - 1), overwrite=True)
            layer.bind_key("Control-Z", lambda _layer: self.undo(), overwrite=True)
            layer.bind_key("Control-Shift-Z", lambda _layer: self.redo(), overwrite=True)
            layer.events.data.connect(partial(self._on_data, layer))
            self._bound.add(id(layer))
        if self.history(layer).latest(layer.name) is None:
            self.history(layer).start(layer.name, layer_state(layer))
        schema = self.schema
        self.title.setText(f"<b>{layer.name}</b> — {len(layer.features)} objects")
        self.level.blockSignals(True)
        self.level.clear()
        self.level.addItems(schema.levels if schema is not None else ["raw"])
        self.level.setEnabled(schema is not None and bool(schema.hierarchy))
        self.level.blockSignals(False)
        self.view_button.setText("Show as contours" if self._contours_of(layer) is not None else "Show as centroids")
        self.view_button.setEnabled(isinstance(layer, Shapes) or self._contours_of(layer) is not None)
        self._build_palette()
        source_format = getattr(plugin_metadata(layer).get("provenance"), "format", "")
        if self.export_format.findText(source_format) >= 0:
            self.export_format.setCurrentText(source_format)
        self.save_button.setEnabled(self._workspace_case(layer)[0] is not None)
        active = self.active_class
        self.set_active_class(active if active in self.class_names else (self.class_names[0] if self.class_names else None))

    def _show_nothing(self) -> None:
        self.title.setText("Select a points or shapes layer opened by napari-nsclc.")
        self.plot.set_counts([])

    @property
    def schema(self) -> ClassSchema | None:
        return _schema_of(self.layer)

    @property
    def active_class(self) -> str | None:
        """The class new objects get: the layer's default ``class`` feature."""
        if self.layer is None or "class" not in self.layer.feature_defaults:
            return None
        value = self.layer.feature_defaults["class"].iloc[0]
        return str(value) if isinstance(value, str) and value else None

    def history(self, layer=None) -> EditHistory:
        """The undo history ``layer`` (default: the bound one) records into: its case's, in its workspace."""
        layer = self.layer if layer is None else layer
        workspace, case_id = self._workspace_case(layer)
        if workspace is not None:
            return workspace.history(case_id)
        return detached_history(str(dataset_tag(layer).get("source") or getattr(layer.source, "path", None) or ""))

    def _workspace_case(self, layer=None):
        """``(workspace, case id)`` of the case ``layer`` shows, or ``(None, None)`` outside any workspace."""
        tag = dataset_tag(self.layer if layer is None else layer)
        workspace = workflow.shared(tag["source"]) if tag.get("source") else None
        if workspace is None or not 0 <= int(tag.get("index", -1)) < len(workspace.cases):
            return None, None
        return workspace, workspace.cases[int(tag["index"])]

    @property
    def class_names(self) -> list[str]:
        """The palette's classes: the schema's, then any other class found in the layer."""
        if self.layer is None:
            return []
        names = list(self.schema.names) if self.schema is not None else []
        column = self.layer.features["class"]
        found = column.cat.categories if hasattr(column, "cat") else column.unique()
        return names + [str(n) for n in found if str(n) not in names and str(n) not in ("", "nan")]

    def _colors(self) -> dict[str, tuple]:
        schema = self.schema or ClassSchema.from_names(self.layer.name, self.class_names)
        return class_color_map(schema, self.class_names)

    # ------------------------------------------------------------------ palette and counts

    def _build_palette(self) -> None:
        for button in self.buttons.buttons():
            self.buttons.removeButton(button)
            button.deleteLater()
        colors = self._colors()
        for i, name in enumerate(self.class_names):
            button = QPushButton(name)
            button.setCheckable(True)
            pixmap = QPixmap(14, 14)
            pixmap.fill(QColor.fromRgbF(*colors[name][:3]))
            button.setIcon(QIcon(pixmap))
            button.setToolTip(f"key {i + 1}" if i < 9 else "")
            button.clicked.connect(partial(self.set_active_class, name))
            self.buttons.addButton(button, i)
            self.palette_layout.addWidget(button, i // 2, i % 2)
        self.refresh_counts()

    def refresh_counts(self) -> None:
        """Update the palette's and the bar plot's counts from the layer's features."""
        if self.layer is None:
            return
        counts = class_counts(self.layer.features, "class", self.class_names)
        colors = self._colors()
        for i, button in enumerate(self.buttons.buttons()):
            name = self.class_names[i] if i < len(self.class_names) else button.text()
            key = f"{i + 1}  " if i < 9 else ""
            button.setText(f"{key}{name}  ({counts.get(name, 0)})")
        level = self.level.currentText() or "raw"
        if level != "raw" and self.schema is not None and level in self.schema.hierarchy:
            column = self.schema.feature_name(level)
            level_counts = class_counts(self.layer.features, column, level_names(self.schema, level))
            shades = level_colors(self.schema, level)
            rows = [(n, c, shades.get(n, (0.6, 0.6, 0.6, 1))) for n, c in level_counts.items()]
        else:
            rows = [(n, c, colors.get(n, (0.6, 0.6, 0.6, 1))) for n, c in counts.items()]
        self.plot.set_counts(rows)
        self.title.setText(f"<b>{self.layer.name}</b> — {len(self.layer.features)} objects")

    def counts(self) -> dict[str, int]:
        """Objects per class of the edited layer."""
        return class_counts(self.layer.features, "class", self.class_names) if self.layer is not None else {}

    def set_active_class(self, name: str | None, checked: bool = False) -> None:
        """Make ``name`` the class new points get."""
        if name is None or self.layer is None:
            return
        if name in self.class_names:
            button = self.buttons.button(self.class_names.index(name))
            if button is not None:
                button.setChecked(True)
        defaults = self.layer.feature_defaults
        if "class" in defaults:
            column = self.layer.features["class"]
            if hasattr(column, "cat") and name not in column.cat.categories:
                self.layer.features["class"] = column.cat.add_categories([name])
            # Edit the defaults in place: assigning the property makes napari
            # recompute every point's colour, seconds for a million points.
            defaults["class"] = name
            defaults["source_index"] = -1
            # new objects get the hierarchy columns of their class too (NuCLS main/super_classification)
            schema = self.schema
            for level, key in (schema.level_features.items() if schema is not None else ()):
                if key in defaults and key in self.layer.features:
                    value = schema.level(name, level)
                    column = self.layer.features[key]
                    if hasattr(column, "cat") and value not in column.cat.categories:
                        self.layer.features[key] = column.cat.add_categories([value])
                    defaults[key] = value

    # ------------------------------------------------------------------ classifying

    def _key_class(self, position: int, layer=None) -> None:
        if position < len(self.class_names):
            name = self.class_names[position]
            self.set_active_class(name)
            self.assign_selected(name)

    def assign_selected(self, name: str | None) -> int:
        """Give the selected objects class ``name``; returns how many changed (one undo step)."""
        if self.layer is None or name is None:
            return 0
        indices = sorted(self.layer.selected_data)
        if not indices:
            return 0
        return self.assign(indices, name)

    def assign(self, indices, name: str) -> int:
        """Give objects ``indices`` of the layer class ``name``, as one undo step."""
        layer = self.layer
        history = self.history(layer)
        with collector_paused():
            before = history.latest(layer.name) or layer_state(layer)
            assign_class(layer.features, indices, name, self.schema)
            _recolour(layer)
            history.record(layer.name, layer_state(layer, data_from=before), f"class {name}", before=before)
            self.refresh_counts()
        self._mark_edited(layer)
        return len(indices)

    def _mark_edited(self, layer) -> None:
        # a class change edits features in place, which napari announces to no one: tell the workspace
        workspace, case_id = self._workspace_case(layer)
        if workspace is not None:
            workspace.mark_edited(case_id)

    # ------------------------------------------------------------------ undo / redo

    def _on_data(self, layer, event=None) -> None:
        action = str(getattr(event, "action", "changed")).lower()
        if action not in _FINAL_ACTIONS:
            return
        if self.history(layer).record(layer.name, layer_state(layer), action, cause=event) is not None:
            self._mark_edited(layer)
        if layer is self.layer:
            self.refresh_counts()

    def _restore(self, layer, state) -> None:
        with self.history(layer).replaying():
            restore_layer_state(layer, state)
            _recolour(layer)
        self._mark_edited(layer)
        if layer is self.layer:
            self.refresh_counts()

    def undo(self) -> bool:
        """Undo the last class change, addition, deletion or move of the bound layer's case."""
        return self._replay(self.history().undo() if self.layer is not None else None, "before")

    def redo(self) -> bool:
        """Redo the last undone step."""
        return self._replay(self.history().redo() if self.layer is not None else None, "after")

    def _replay(self, step, side: str) -> bool:
        if step is None:
            return False
        if step.key not in self.viewer.layers:
            self.status.setText(f"{step.key!r} is no longer open: its step cannot be replayed")
            return False
        self._restore(self.viewer.layers[step.key], getattr(step, side))
        return True

    # ------------------------------------------------------------------ display level

    def _on_level(self, level: str) -> None:
        if self.layer is not None and level:
            self.show_level(level)

    def show_level(self, level: str) -> None:
        """Colour the layer by the class at ``level`` (``"raw"``, ``"main"``, ``"super"``)."""
        layer, schema = self.layer, self.schema
        if layer is None or schema is None:
            return
        column = "class" if level == "raw" else schema.feature_name(level)
        if column not in layer.features:
            return
        colors = self._colors() if level == "raw" else level_colors(schema, level)
        if isinstance(layer, Points):
            layer.face_color_cycle = colors
            layer.face_color = column
        else:
            # Shapes keep a value -> colour map per attribute; set it after choosing the column
            layer.edge_color = column
            layer.face_color = column
            layer.edge_color_cycle_map = {name: np.asarray(rgba, float) for name, rgba in colors.items()}
            layer.face_color_cycle_map = {name: np.asarray((*rgba[:3], 0.25)) for name, rgba in colors.items()}
            layer.refresh_colors(update_color_mapping=False)
        if self.level.currentText() != level:
            self.level.setCurrentText(level)
        self.refresh_counts()

    # ------------------------------------------------------------------ contours <-> centroids

    def _contours_of(self, layer):
        name = plugin_metadata(layer).get("contours_layer")
        if name is None or name not in self.viewer.layers:
            return None
        return self.viewer.layers[name]

    def toggle_view(self) -> None:
        """Switch the nuclei between contours (Shapes) and centroids (Points)."""
        if self.layer is None:
            return
        if isinstance(self.layer, Shapes):
            self.show_centroids(self.layer)
        elif self._contours_of(self.layer) is not None:
            self.show_contours(self.layer)

    def show_centroids(self, shapes_layer):
        """Add a Points layer at the shapes' centroids, with their classes; hide the contours."""
        name = f"{shapes_layer.name} (centroids)"
        if name in self.viewer.layers:
            points = self.viewer.layers[name]
        else:
            nsclc = dict(plugin_metadata(shapes_layer))
            nsclc.update(kind="points", contours_layer=shapes_layer.name)
            image = nsclc.get("image")
            points = self.viewer.add_points(
                centroids(shapes_layer.data),
                name=name,
                features=shapes_layer.features.copy(),
                face_color="class",
                face_color_cycle=self._colors_for(shapes_layer),
                size=points_display_size(image) if image is not None else 8,
                border_width=0.1,
                border_color="white",
                scale=shapes_layer.scale,
                translate=shapes_layer.translate,
                metadata={**(shapes_layer.metadata or {}), "nsclc": nsclc},
            )
        shapes_layer.visible = False
        points.visible = True
        self.viewer.layers.selection.active = points
        return points

    def show_contours(self, points_layer):
        """Copy the centroids' classes back to their contours, show them and drop the centroids."""
        shapes_layer = self._contours_of(points_layer)
        if len(points_layer.features) == len(shapes_layer.features):
            changed = np.flatnonzero(
                points_layer.features["class"].astype(str).to_numpy() != shapes_layer.features["class"].astype(str).to_numpy()
            )
            self.attach(shapes_layer)
            for name in dict.fromkeys(points_layer.features["class"].astype(str).to_numpy()[changed]):
                rows = changed[points_layer.features["class"].astype(str).to_numpy()[changed] == name]
                self.assign(rows.tolist(), name)
        shapes_layer.visible = True
        self.viewer.layers.remove(points_layer)
        self.viewer.layers.selection.active = shapes_layer
        return shapes_layer

    def _colors_for(self, layer) -> dict[str, tuple]:
        schema = _schema_of(layer) or ClassSchema.from_names(layer.name, [])
        column = layer.features["class"]
        found = column.cat.categories if hasattr(column, "cat") else column.unique()
        return class_color_map(schema, [str(n) for n in found])

    # ------------------------------------------------------------------ saving and exporting

    def ask(self, question: str, text: str) -> str:
        """Ask the user (see :func:`napari_nsclc.widgets._questions.ask`); scripts and tests may replace it."""
        return ask(self, question, text)

    def save_correction(self) -> list[Path]:
        """Save the bound layer's case as a correction, through its workspace; returns the files written.

        The same save as the Cases dock's Ctrl+S: the dataset's own format,
        into its corrections folder, with a provenance sidecar.
        """
        from napari.utils import progress
        from napari.utils.notifications import show_info, show_warning

        workspace, case_id = self._workspace_case()
        if workspace is None:
            self.status.setText("This layer's file is not corrected in place: use Export… to write a copy.")
            return []
        if not named_annotator(workspace, self.ask):
            return []
        index = workspace.cases.index(case_id)
        case = case_from_layers(self.viewer.layers, workspace.source, index, name=workspace.original_name(case_id))
        try:
            with progress(total=0, desc=f"saving {case_id}"):
                try:
                    result = workspace.save_case(case_id, case)
                except workflow.ConflictError as error:
                    if self.ask("conflict-copy", str(error)) != "copy":
                        raise
                    result = workspace.save_case(case_id, case, as_copy=True)
        except NsclcFormatError as error:
            self.status.setText(f"<span style='color:#d62728'>{error}</span>")
            show_warning(str(error))
            return []
        self.status.setText(result.summary)
        show_info(result.summary)
        return list(result.paths)

    def export(self, path: str | Path, format_name: str) -> list[Path]:
        """Write the bound layer's case (the other layers of its case too) to ``path`` as ``format_name``."""
        if self.layer is None:
            raise ValueError("no layer to export")
        workspace, case_id = self._workspace_case()
        if workspace is not None:
            index = workspace.cases.index(case_id)
            case = case_from_layers(self.viewer.layers, workspace.source, index, name=Path(path).stem)
        else:
            case_name = plugin_metadata(self.layer).get("case_name")
            layers = [
                layer
                for layer in self.viewer.layers
                if layer is self.layer
                or (
                    isinstance(layer, (Points, Shapes, Labels))
                    and layer.visible
                    and plugin_metadata(layer).get("case_name") == case_name
                    and case_name is not None
                )
            ]
            case = layer_data_to_case([layer.as_layer_data_tuple() for layer in layers], name=Path(path).stem)
        return registry.write([case], path, format_name, overwrite=True)

    def _export_dialog(self) -> None:
        format_name = self.export_format.currentText()
        spec = registry.get_format(format_name)
        suffix = spec.extensions[0] if spec.extensions else ""
        path, _ = QFileDialog.getSaveFileName(self, f"Export as {spec.title}", "", f"{spec.title} (*{suffix})")
        if path:
            try:
                written = self.export(path, format_name)
            except NsclcFormatError as error:
                self.status.setText(f"<span style='color:#d62728'>{error}</span>")
                return
            self.status.setText(f"exported {', '.join(p.name for p in written)}")
