"""The "Cases" dock: browse and correct the cases of a dataset.

It binds to the dataset's :class:`~napari_nsclc.workflow.Workspace` (opened
once by the reader, or by "Open dataset folder…") and holds no state of its
own: it lists the cases with their status (untouched, edited, autosaved,
saved), filters them by name, status and split, moves between them
(buttons, PageUp/PageDown), saves the current case as a correction
(Ctrl+S), autosaves it every ``NSCLC_AUTOSAVE_SECONDS`` (60 s) and on every
case switch, and shows the original or the changes against it. A legend
lists each class of the selected Labels layer with its colour and pixel
count, updated as the user paints.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from napari.layers import Image, Labels
from qtpy.QtCore import Qt, QTimer
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .. import workflow
from .._reader import scene_layers
from ..formats.masks import fit_nearest
from ..layers import METADATA_KEY, case_from_layers, case_to_layers, plugin_metadata
from ..model import Case, NsclcFormatError
from ..review.session import review_of
from ._questions import QUESTIONS, ask, named_annotator
from ._review_panel import STATE_COLORS, ReviewPanel, state_text

__all__ = ["QUESTIONS", "CaseNavigator"]

#: Legends count pixels with one pass over the mask; larger masks are skipped.
MAX_PIXELS_COUNTED = 50_000_000

STATUS_COLORS = {"untouched": "#9a9a9a", "edited": "#ff7f0e", "autosaved": "#d4b000", "saved": "#2ca02c"}
STATUS_HELP = {
    "untouched": "no correction saved yet",
    "edited": "changed on screen, not saved yet",
    "autosaved": "unsaved changes are kept in the autosave; save to make them a correction",
    "saved": "a correction is saved in the corrections folder",
}



class CaseNavigator(QWidget):
    """Browse and correct the cases of a dataset, bound to its :class:`~napari_nsclc.workflow.Workspace`.

    The workspace holds every piece of state (cases, status, current case,
    edits, where corrections go); this dock shows it and forwards the user's
    actions. Questions to the user (unsaved edits, a conflict, restoring an
    autosave, the annotator's name) go through :meth:`ask`, one place that
    scripts and tests can answer.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.workspace: workflow.Workspace | None = None
        self._bound = ()  # the (signal, slot) pairs connected to the workspace and its review
        self._watched = None
        self._showing = False  # layers are being refilled by the dock: their events are not edits

        self.title = QLabel("Open a dataset folder (File > Open Folder, or the button below).")
        self.title.setWordWrap(True)
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter cases by name…")
        self.filter.textChanged.connect(self._apply_filter)
        self.status_filter = QComboBox()
        self.status_filter.addItems(["all statuses", *workflow.STATUSES])
        self.status_filter.currentTextChanged.connect(self._apply_filter)
        self.split_filter = QComboBox()
        self.split_filter.addItem("all splits")
        self.split_filter.currentTextChanged.connect(self._apply_filter)
        self.list = QListWidget()
        self.list.currentItemChanged.connect(self._on_item)
        self.previous_button = QPushButton("◀ Previous (PgUp)")
        self.next_button = QPushButton("Next (PgDn) ▶")
        self.previous_button.clicked.connect(self.previous_case)
        self.next_button.clicked.connect(self.next_case)
        self.legend = QTableWidget(0, 3)
        self.legend.setHorizontalHeaderLabels(["class", "code", "pixels"])
        self.legend.verticalHeader().setVisible(False)
        self.legend.horizontalHeader().setStretchLastSection(True)
        self.warnings = QListWidget()
        self.warnings.setWordWrap(True)
        self.fit_button = QPushButton("Fit mask to image (nearest neighbour)")
        self.fit_button.clicked.connect(self.fit_selected_mask)
        self.fit_button.setEnabled(False)
        self.save_button = QPushButton("Save correction (Ctrl+S)")
        self.save_button.clicked.connect(lambda: self._guarded(self.save_current))
        self.original_box = QCheckBox("Show the original instead of my correction")
        self.original_box.toggled.connect(self.show_original)
        self.changes_box = QCheckBox("Show changes (green added, red removed)")
        self.changes_box.toggled.connect(self.show_changes)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.review_panel = ReviewPanel(self.viewer, self._annotator_name)
        open_button = QPushButton("Open dataset folder…")
        open_button.clicked.connect(self._choose_folder)

        filters = QHBoxLayout()
        filters.addWidget(self.status_filter)
        filters.addWidget(self.split_filter)
        navigation = QHBoxLayout()
        navigation.addWidget(self.previous_button)
        navigation.addWidget(self.next_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.filter)
        layout.addLayout(filters)
        self.list.setMinimumHeight(90)
        layout.addWidget(self.list, stretch=1)
        layout.addLayout(navigation)
        layout.addWidget(self.status)  # "case i of n", under the buttons that move it
        layout.addWidget(self.save_button)
        layout.addWidget(self.review_panel)
        layout.addWidget(self.original_box)
        layout.addWidget(self.changes_box)
        layout.addWidget(QLabel("Classes of the selected Labels layer:"))
        self.legend.setMinimumHeight(100)
        layout.addWidget(self.legend, stretch=3)
        layout.addWidget(QLabel("Problems found in this case:"))
        self.warnings.setMaximumHeight(90)
        layout.addWidget(self.warnings, stretch=1)
        layout.addWidget(self.fit_button)
        layout.addWidget(open_button)

        self.autosave_timer = QTimer(self)
        self.autosave_timer.setInterval(int(workflow.autosave_interval() * 1000))
        self.autosave_timer.timeout.connect(self.autosave_now)
        self.autosave_timer.start()
        keys = (("PageDown", self.next_case), ("PageUp", self.previous_case),
                ("Control-S", lambda: self._guarded(self.save_current)))  # fmt: skip
        for key, action in keys:
            self.viewer.bind_key(key, lambda viewer, action=action: action(), overwrite=True)
        self.viewer.layers.events.inserted.connect(self._on_layer_inserted)
        self.viewer.layers.selection.events.active.connect(self._on_active_layer)
        for layer in list(self.viewer.layers):
            self._adopt_from_layer(layer)

    # ------------------------------------------------------------------ binding to a workspace
    @property
    def index(self) -> int | None:
        """Position of the current case in the dataset, or ``None``."""
        ws = self.workspace
        return ws.cases.index(ws.current) if ws is not None and ws.current else None

    def set_source(self, path: str | Path, index: int = 0, show: bool = True) -> None:
        """Bind to the workspace of ``path`` (opened once, shared with the reader) and show case ``index``."""
        self.bind(workflow.open_shared(path))
        if show and self.workspace.cases:
            self.show_case(index)

    def bind(self, workspace: workflow.Workspace) -> None:
        """Show ``workspace``'s cases and follow its signals."""
        if self.workspace is workspace and self.review_panel.review is review_of(workspace):
            return
        for signal, slot in self._bound:
            signal.disconnect(slot)
        self.workspace = workspace
        review = self.review_panel.bind(workspace)
        self._bound = self._connections()
        for signal, slot in self._bound:
            signal.connect(slot)
        states = self._guarded(review.states) or {}
        spec = workspace.spec
        self.title.setText(f"<b>{workspace.source.name}</b> — {spec.title}<br>{len(workspace.cases)} case(s); "
                           f"corrections go to {workspace.corrections}")  # fmt: skip
        splits = sorted({s for s in map(workspace.split_of, workspace.cases) if s})
        self.split_filter.blockSignals(True)
        self.split_filter.clear()
        self.split_filter.addItems(["all splits", *splits])
        self.split_filter.setVisible(bool(splits))
        self.split_filter.blockSignals(False)
        self.list.blockSignals(True)
        self.list.clear()
        for number, case_id in enumerate(workspace.cases):
            item = QListWidgetItem(case_id)
            item.setData(Qt.ItemDataRole.UserRole, number)
            self.list.addItem(item)
            self._show_status(case_id, workspace.status(case_id), item, states.get(case_id, "new"))
        self.list.blockSignals(False)
        self._apply_filter()

    def _connections(self):
        ws = self.workspace
        return ((ws.status_changed, self._show_status), (ws.saved, self._on_saved), (ws.problem, self._on_problem),
                (ws.current_changed, self._on_current_changed),
                (review_of(ws).state_changed, self._on_review_state))  # fmt: skip

    def _on_current_changed(self, case_id: str) -> None:
        """Another view (the DICOM browser) made another case current: select it in the list."""
        self._select_row(self.index)
        self._show_case_info()

    def _adopt_from_layer(self, layer) -> None:
        """Adopt the workspace the reader opened for this layer's dataset (the dataset is not read again)."""
        dataset = plugin_metadata(layer).get("dataset") or {}
        source = dataset.get("source")
        if "overlay" in plugin_metadata(layer):
            return
        if source:
            workspace = workflow.shared(source)
            if workspace is not None:
                if self.workspace is not workspace:
                    self.bind(workspace)
                    workspace.set_current(workspace.cases[int(dataset.get("index", 0))])
                    self._select_row(self.index)
                    self._show_case_info()
                    if workspace.has_autosave(workspace.current):
                        # the reader showed the case as last saved: once all its layers are in, offer the autosave
                        QTimer.singleShot(0, self._offer_autosave)
                self._watch_edits(layer)

    def _offer_autosave(self) -> None:
        """Offer the current case's autosave (left by a crash) when the reader opened the case without it."""
        ws = self.workspace
        if ws is not None and ws.current and ws.has_autosave(ws.current) and not ws.is_edited(ws.current):
            self._guarded(self.show_case, self.index)  # shows the case again, asking whether to restore

    def _on_layer_inserted(self, event) -> None:
        self._adopt_from_layer(event.value)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Dataset folder")
        if folder:
            self._guarded(self.set_source, folder)

    def _watch_edits(self, layer) -> None:
        """Any paint, move, add, delete or class change on a case layer marks its case edited."""
        # not set_data or labels_update: napari emits those when it redraws, not only on edits
        for name in ("paint", "data", "features"):
            emitter = getattr(layer.events, name, None)
            if emitter is not None:
                emitter.connect(lambda event=None, layer=layer: self._on_edit(layer, event))

    def _on_edit(self, layer, event=None) -> None:
        ws = self.workspace
        if self._showing or ws is None or layer not in self.viewer.layers:
            return
        if getattr(event, "action", None) in ("adding", "removing", "changing"):
            return  # the event before a change; the one after it follows
        index = _case_index(layer, None)
        if index is not None and _layer_source(layer) == str(ws.source):
            ws.mark_edited(ws.cases[index])

    # ------------------------------------------------------------------ status in the list
    def _show_status(self, case_id: str, status: str, item=None, state: str | None = None) -> None:
        """Show the case's save status and review state in its list item: ``2  · saved  · submitted``."""
        if item is None:
            number = self.workspace.cases.index(case_id)
            item = next((self.list.item(r) for r in range(self.list.count())
                         if self.list.item(r).data(Qt.ItemDataRole.UserRole) == number), None)  # fmt: skip
        if item is None:
            return
        if state is None:
            state = self._guarded(self.review_panel.review.state, case_id) or "new"
        parts = [case_id] + ([status] if status != "untouched" else []) + ([state_text(state)] if state != "new" else [])
        item.setText("  · ".join(parts))
        item.setForeground(QColor(STATE_COLORS[state] if state != "new" else STATUS_COLORS[status]))
        item.setToolTip(f"{STATUS_HELP[status]}; review: {state_text(state)}")
        self._apply_filter()

    def _on_review_state(self, case_id: str, state: str) -> None:
        self._show_status(case_id, self.workspace.status(case_id), state=state)

    # ------------------------------------------------------------------ navigation
    def visible_indices(self) -> list[int]:
        """Case indices that pass the filters, in list order."""
        rows = (self.list.item(row) for row in range(self.list.count()))
        return [item.data(Qt.ItemDataRole.UserRole) for item in rows if not item.isHidden()]

    def _apply_filter(self, *_args) -> None:
        ws = self.workspace
        if ws is None:
            return
        status = self.status_filter.currentText()
        split = self.split_filter.currentText()
        shown = set(ws.filtered(status=None if status == "all statuses" else status,
                                split=None if split == "all splits" else split, text=self.filter.text()))  # fmt: skip
        for row in range(self.list.count()):
            item = self.list.item(row)
            item.setHidden(ws.cases[item.data(Qt.ItemDataRole.UserRole)] not in shown)

    def next_case(self) -> None:
        """Show the next case that passes the filters."""
        self._step(+1)

    def previous_case(self) -> None:
        """Show the previous case that passes the filters."""
        self._step(-1)

    def _step(self, delta: int) -> None:
        """Show the next (``+1``) or previous (``-1``) scene: cases of the shown group are skipped."""
        ws = self.workspace
        visible = self.visible_indices()
        if ws is None or not visible:
            return
        if self.index not in visible:
            target = visible[0] if delta > 0 else visible[-1]
        else:
            shown = {ws.cases.index(c) for c in ws.group_of(ws.current)}
            position = visible.index(self.index)
            ahead = visible[position + 1 :] if delta > 0 else visible[:position][::-1]
            target = next((i for i in ahead if i not in shown), None)
            if target is None:
                return
        members = {ws.cases.index(c) for c in ws.group_of(ws.cases[target])}
        target = next(i for i in visible if i in members)  # a group is entered at its first listed case
        self._guarded(self.show_case, target)

    def _select_row(self, index: int | None) -> None:
        self.list.blockSignals(True)
        for row in range(self.list.count()):
            if self.list.item(row).data(Qt.ItemDataRole.UserRole) == index:
                self.list.setCurrentRow(row)
        self.list.blockSignals(False)

    def _on_item(self, current, previous=None) -> None:
        if current is not None:
            self._guarded(self.show_case, current.data(Qt.ItemDataRole.UserRole))

    # ------------------------------------------------------------------ showing a case
    def _case_layers(self) -> list:
        ws = self.workspace
        source = str(ws.source) if ws is not None else None
        return [layer for layer in self.viewer.layers if _layer_source(layer) == source and not _is_overlay(layer)]

    def current_case(self, index: int | None = None) -> Case | None:
        """Case ``index`` (default: the current one) as on screen, with the user's edits."""
        index = self.index if index is None else index
        if index is None:
            return None
        return case_from_layers(self.viewer.layers, self.workspace.source, index, name=self._name_of(index))

    def _name_of(self, index: int) -> str:
        return self.workspace.original_name(self.workspace.cases[index])

    def _leave_current(self) -> bool:
        """Autosave the case being left, then ask what to do with its unsaved edits; ``False`` = stay."""
        ws = self.workspace
        edited = [c for c in (ws.group_of(ws.current) if ws.current else []) if ws.has_unsaved(c)]
        if not edited:
            return True
        self.autosave_now()
        answer = self.ask("unsaved", f"{', '.join(edited)} has unsaved corrections.")
        if answer == "cancel":
            return False
        for case_id in edited:
            if answer == "save":
                self.save_current(case_id)
            else:
                ws.discard_autosave(case_id)
                ws.load(case_id)  # back to the last saved state: no longer edited
        return True

    def show_case(self, index: int) -> None:
        """Show case ``index`` and its group, as last saved (offering a newer autosave)."""
        from napari.layers import Layer

        ws = self.workspace
        if ws is None or not ws.cases:
            return
        index = int(index) % len(ws.cases)
        if ws.current is not None and ws.cases[index] not in ws.group_of(ws.current) and not self._leave_current():
            self._select_row(self.index)
            return
        self._clear_overlays()
        members = [(ws.cases.index(c), self._case_to_show(c)) for c in ws.group_of(ws.cases[index])]
        ws.set_current(ws.cases[index])
        new_layers = scene_layers(members, ws.source, len(ws.cases))
        old_layers = self._case_layers()
        self._showing = True
        try:
            if len(old_layers) == len(new_layers) and all(
                _reusable(layer, *new) for layer, new in zip(old_layers, new_layers, strict=True)
            ):
                # Same kinds of layers: swap their contents, which is much faster than
                # removing and adding layers, and keeps the user's display settings.
                for layer, (data, kwargs, _layer_type) in zip(old_layers, new_layers, strict=True):
                    _refill(layer, data, kwargs)
            else:
                for layer in old_layers:
                    self.viewer.layers.remove(layer)
                for data, kwargs, layer_type in new_layers:
                    self.viewer.add_layer(Layer.create(data, kwargs, layer_type))
        finally:
            self._showing = False
        for i, case in members:
            if case.provenance.details.get("restored"):
                ws.mark_edited(ws.cases[i])
        self._select_row(index)
        labels = [layer for layer in self._case_layers() if isinstance(layer, Labels)]
        if labels:
            self.viewer.layers.selection.active = labels[0]
        self.viewer.reset_view()
        self._show_case_info()

    def _case_to_show(self, case_id: str) -> Case:
        """The saved case, or its autosave when the user restores it."""
        ws = self.workspace
        if ws.has_autosave(case_id) and not ws.is_edited(case_id):
            if self.ask("restore", f"{case_id} has autosaved corrections that were never saved.") == "restore":
                recovered = ws.recover(case_id)
                if recovered is not None:
                    recovered.provenance.details["restored"] = True
                    return recovered
            else:
                ws.discard_autosave(case_id)
        return ws.load(case_id)

    def _show_case_info(self) -> None:
        self.warnings.clear()
        ws = self.workspace
        if ws is None or ws.current is None:
            return
        self.warnings.addItems(ws.warnings(ws.current) or ["none"])
        others = len(ws.group_of(ws.current)) - 1
        shown_with = f" (shown with the {others} other case(s) of its group)" if others else ""
        self.status.setText(f"case {self.index + 1} of {len(ws.cases)}: {ws.current}{shown_with}")
        self.refresh_legend()
        self.review_panel.show_case(ws.current)

    # ------------------------------------------------------------------ saving and autosave
    def _annotator_name(self) -> str | None:
        """The name saves and submissions are stamped with, asked once; ``None`` if the user cancels."""
        ws = self.workspace
        return ws.annotator if ws is not None and named_annotator(ws, self.ask) else None

    def save_current(self, case_id: str | None = None) -> list[Path]:
        """Save the current case (or ``case_id`` of the scene) as a correction; returns the files written."""
        from napari.utils import progress

        ws = self.workspace
        if ws is None or ws.current is None:
            return []
        if not named_annotator(ws, self.ask):
            return []
        written: list[Path] = []
        for member in [case_id] if case_id else ws.group_of(ws.current):
            case = self.current_case(ws.cases.index(member))
            if case is None:
                continue
            with progress(total=0, desc=f"saving {member}"):
                try:
                    written += ws.save(member, case)
                except workflow.ConflictError as error:
                    written += self._resolve_conflict(member, case, error)
        return written

    def _resolve_conflict(self, case_id: str, case: Case, error) -> list[Path]:
        answer = self.ask("conflict", str(error))
        if answer == "copy":
            return self.workspace.save(case_id, case, as_copy=True)
        if answer == "reload":
            self.workspace.discard_autosave(case_id)
            self.workspace.load(case_id)
            self.show_case(self.workspace.cases.index(case_id))
        self.status.setText(f"<span style='color:#d62728'>{error}</span>")
        return []

    def autosave_now(self) -> None:
        """Autosave every edited case of the scene on screen (the timer and case switches call this)."""
        ws = self.workspace
        if ws is None or ws.current is None:
            return
        for member in ws.group_of(ws.current):
            case = self.current_case(ws.cases.index(member)) if ws.is_edited(member) else None
            if case is not None:
                self._guarded(ws.autosave, member, case)

    def _on_saved(self, result) -> None:
        self.status.setText(result.summary)
        self.viewer.status = result.summary
        from napari.utils.notifications import show_info

        show_info(result.summary)

    def _on_problem(self, message: str) -> None:
        from napari.utils.notifications import show_warning

        self.status.setText(f"<span style='color:#d62728'>{message}</span>")
        show_warning(message)

    # ------------------------------------------------------------------ original and changes
    def show_original(self, on: bool) -> None:
        """Show the original case in place of the correction (``on``), or the correction again."""
        from napari.layers import Layer

        ws = self.workspace
        for layer in [layer for layer in self.viewer.layers if _is_overlay(layer, "original")]:
            self.viewer.layers.remove(layer)
        corrected = [layer for layer in self._case_layers() if not isinstance(layer, Image)]
        for layer in corrected:
            layer.visible = not on
        if not on or ws is None or ws.current is None:
            return
        for data, kwargs, layer_type in case_to_layers(ws.original(ws.current)):
            if layer_type == "image":
                continue
            kwargs["name"] = f"original: {kwargs.get('name', '')}"
            kwargs.setdefault("metadata", {}).setdefault(METADATA_KEY, {})["overlay"] = "original"
            self.viewer.add_layer(Layer.create(data, kwargs, layer_type))

    def show_changes(self, on: bool) -> None:
        """Overlay what the correction changed against the original: green added, red removed."""
        from napari.layers import Layer

        from ..diff_layers import diff_layer_data
        from ..workflow.changes import case_changes

        for layer in [layer for layer in self.viewer.layers if _is_overlay(layer, "changes")]:
            self.viewer.layers.remove(layer)
        ws = self.workspace
        if not on or ws is None or ws.current is None:
            return
        case = self.current_case()
        changes = case_changes(ws.original(ws.current), case)
        active = self.viewer.layers.selection.active
        for data, kwargs, layer_type in diff_layer_data(changes, case):
            self.viewer.add_layer(Layer.create(data, kwargs, layer_type))
        if active is not None:  # keep painting (and the legend) on the corrected layer, not the overlay
            self.viewer.layers.selection.active = active
        self.status.setText(f"{ws.current} against the original: {changes.summary()}")

    def _clear_overlays(self) -> None:
        for box in (self.original_box, self.changes_box):
            box.blockSignals(True)
            box.setChecked(False)
            box.blockSignals(False)
        for layer in [layer for layer in self.viewer.layers if _is_overlay(layer)]:
            self.viewer.layers.remove(layer)
        for layer in self._case_layers():
            layer.visible = True

    # ------------------------------------------------------------------ questions to the user
    def ask(self, question: str, text: str) -> str:
        """Ask the user; returns the answer's key.

        ``"unsaved"``: save / discard / cancel; ``"conflict"``: reload / copy /
        cancel; ``"restore"``: restore / discard; ``"annotator"``: the name
        typed, or ``"cancel"``.
        """
        return ask(self, question, text)

    def _guarded(self, action, *args):
        """Run ``action``; show a file problem in the dock instead of a traceback (edits stay on screen)."""
        try:
            return action(*args)
        except NsclcFormatError as error:
            self.status.setText(f"<span style='color:#d62728'>{error}</span>")
            from napari.utils.notifications import show_warning

            show_warning(str(error))
            return None

    # ------------------------------------------------------------------ legend
    def _on_active_layer(self, event=None) -> None:
        if self._watched is not None:
            for emitter in ("paint", "data", "labels_update"):
                if hasattr(self._watched.events, emitter):
                    getattr(self._watched.events, emitter).disconnect(self.refresh_legend)
        layer = self.viewer.layers.selection.active
        self._watched = layer if isinstance(layer, Labels) else None
        if self._watched is not None:
            for emitter in ("paint", "data", "labels_update"):
                if hasattr(self._watched.events, emitter):
                    getattr(self._watched.events, emitter).connect(self.refresh_legend)
        self.refresh_legend()

    def legend_rows(self) -> list[tuple[str, int, str, int]]:
        """``(class name, code, "#rrggbb" or "transparent", pixels)`` per class of the selected Labels layer.

        Every class of the schema is listed (0 pixels included, so the user
        sees what can be painted); values outside the schema follow as
        ``"<value N>"``.
        """
        layer = self._watched
        if layer is None:
            return []
        schema = plugin_metadata(layer).get("schema")
        data = layer.data[0] if layer.multiscale else layer.data
        counts: dict[int, int] = {}
        if np.prod(data.shape) <= MAX_PIXELS_COUNTED:
            values, numbers = np.unique(np.asarray(data), return_counts=True)
            counts = dict(zip(values.tolist(), numbers.tolist(), strict=True))
        rows = []
        known = set()
        if schema is not None:
            for info in schema.classes:
                known.add(info.code)
                color = layer.colormap.map(info.code) if hasattr(layer.colormap, "map") else info.color
                rgba = np.asarray(color, dtype=float).reshape(-1)[:4] if color is not None else info.color
                hex_color = "#" + "".join(f"{round(float(c) * 255):02x}" for c in rgba[:3])
                if len(rgba) == 4 and float(rgba[3]) == 0:
                    hex_color = "transparent"
                rows.append((info.name, info.code, hex_color, counts.get(info.code, 0)))
        background = schema.background if schema is not None else 0
        for value, number in counts.items():
            if value not in known and value != background:
                rows.append((f"<value {value}>", int(value), "#ff00ff", number))
        return rows

    def refresh_legend(self, event=None) -> None:
        rows = self.legend_rows()
        self.legend.setRowCount(len(rows))
        for row, (name, code, hex_color, pixels) in enumerate(rows):
            swatch = QTableWidgetItem(name if hex_color != "transparent" else f"{name} (not drawn)")
            if hex_color != "transparent":
                swatch.setBackground(QColor(hex_color))
                swatch.setForeground(QColor("#000000" if QColor(hex_color).lightness() > 128 else "#ffffff"))
            self.legend.setItem(row, 0, swatch)
            self.legend.setItem(row, 1, QTableWidgetItem(str(code)))
            self.legend.setItem(row, 2, QTableWidgetItem(f"{pixels:,}"))
        self.legend.resizeColumnsToContents()
        self.fit_button.setEnabled(self._mismatched_labels() is not None)

    # ------------------------------------------------------------------ size mismatch
    def _image_shape(self):
        for layer in self._case_layers():
            if isinstance(layer, Image):
                data = layer.data[0] if layer.multiscale else layer.data
                return tuple(data.shape[:2])
        return None

    def _mismatched_labels(self):
        layer = self._watched
        shape = self._image_shape()
        if layer is None or shape is None or layer.multiscale or layer.data.ndim != 2:
            return None
        return layer if tuple(layer.data.shape) != shape else None

    def fit_selected_mask(self) -> None:
        """Resize the selected Labels layer to its image by nearest neighbour (explicit user action)."""
        layer = self._mismatched_labels()
        shape = self._image_shape()
        if layer is None:
            return
        before = tuple(layer.data.shape)
        layer.data = fit_nearest(np.asarray(layer.data), shape)
        self.status.setText(
            f"{layer.name}: fitted from {before[0]}x{before[1]} to {shape[0]}x{shape[1]} (nearest neighbour)"
        )
        self.refresh_legend()


def _case_index(layer, default: int | None) -> int | None:
    """The index of the dataset case a layer shows (its ``dataset`` tag), else ``default``."""
    dataset = plugin_metadata(layer).get("dataset") or {}
    return int(dataset["index"]) if "index" in dataset else default


def _reusable(layer, data, kwargs: dict, layer_type: str) -> bool:
    """Whether ``layer`` can show new data of this type in place (same kind, same dimensions)."""
    kind = {"image": Image, "labels": Labels}.get(layer_type)
    if kind is None or not isinstance(layer, kind):
        return False
    if layer.multiscale or kwargs.get("multiscale", False) or np.ndim(data) != layer.data.ndim:
        return False
    return layer_type != "image" or bool(layer.rgb) == bool(kwargs.get("rgb", False))


def _refill(layer, data, kwargs: dict) -> None:
    """Give an existing layer a new case's data, placement, name, classes and colours."""
    layer.data = data
    layer.scale = kwargs.get("scale", layer.scale)
    layer.translate = kwargs.get("translate", layer.translate)
    layer.metadata = kwargs.get("metadata", {})
    layer.name = kwargs.get("name", layer.name)
    if isinstance(layer, Labels):
        layer.features = kwargs.get("features", layer.features)
        if "colormap" in kwargs:
            layer.colormap = kwargs["colormap"]
    elif "contrast_limits" in kwargs:
        layer.contrast_limits = kwargs["contrast_limits"]
    layer.refresh()


def _layer_source(layer) -> str | None:
    return (plugin_metadata(layer).get("dataset") or {}).get("source")


def _is_overlay(layer, kind: str | None = None) -> bool:
    """Whether ``layer`` is the dock's overlay (``"original"`` or ``"changes"``), not a case layer."""
    overlay = plugin_metadata(layer).get("overlay")
    return overlay is not None and (kind is None or overlay == kind)

