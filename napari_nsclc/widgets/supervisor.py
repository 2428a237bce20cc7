"""The "Supervisor review" dock: the queue of a review store, and approve / request changes / pin a comment.

It binds to a :class:`~napari_nsclc.review.ReviewStore` and, for the case
being reviewed, to the :class:`~napari_nsclc.review.session.CaseReview` of
the dataset's workspace; it keeps nothing of its own. Opening a case shows
it in the Cases dock with the correction's changes against the original
(green added, red removed); the supervisor then approves it, or requests
changes with a comment, and can pin comments to places on the image. The
student sees those on reopening the case.
"""

from __future__ import annotations

import os
from pathlib import Path

from qtpy.QtCore import Qt, QTimer
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .. import workflow
from ..layers import plugin_metadata
from ..model import NsclcFormatError
from ..review import STATES, SUBMITTED, ReviewError
from ..review.session import STORE_VARIABLE, CaseReview, review_of, shared_store, store_exists, store_url_for
from ._questions import ask
from ._review_panel import STATE_COLORS, state_text

__all__ = ["SupervisorDock"]

#: How often the queue is read again, for changes made on other machines (ms).
REFRESH_MS = 15_000
_ALL = {"state": "all states", "annotator": "all annotators", "dataset": "all datasets"}
_COLUMNS = ("dataset", "case", "state", "assigned to", "last change")


class SupervisorDock(QWidget):
    """Review the students' corrections: a queue, the case with its changes, approve or request changes.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.store = None
        self.url: str | None = None
        self._pin_mode = None  # (layer, its mode) while waiting for the click that places a comment

        self.store_field = QLineEdit()
        self.store_field.setPlaceholderText("review.db file, or postgresql://… URL")
        self.store_field.returnPressed.connect(lambda: self._guarded(self.open_store, self.store_field.text()))
        browse = QPushButton("Open store…")
        browse.clicked.connect(self._choose_store)
        self.who = QLabel("")
        self.who.setWordWrap(True)
        self.name_button = QPushButton("Your name…")
        self.name_button.setToolTip("the name your decisions are stamped with (kept in the plugin's settings)")
        self.name_button.clicked.connect(self.change_name)
        self.filters = {key: QComboBox() for key in _ALL}
        for key, box in self.filters.items():
            box.addItem(_ALL[key])
            box.currentTextChanged.connect(self.refresh)
        self.filters["state"].addItems(STATES)
        self.filters["state"].setCurrentText(SUBMITTED)  # what waits for a supervisor
        self.table = QTableWidget(0, len(_COLUMNS))
        self.table.setHorizontalHeaderLabels(_COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.cellDoubleClicked.connect(lambda row, _column: self._guarded(self.open_case, row))
        self.open_button = QPushButton("Open the selected case (with its changes)")
        self.open_button.clicked.connect(lambda: self._guarded(self.open_case, self.table.currentRow()))
        self.reviewing = QLabel("No case open for review.")
        self.reviewing.setWordWrap(True)
        self.reader_a, self.reader_b = QComboBox(), QComboBox()
        self.compare_button = QPushButton("Show where the second differs")
        self.compare_button.setToolTip("green: only the second has it; red: only the first has it")
        self.compare_button.clicked.connect(lambda: self._guarded(self.compare_readers))
        self.comment = QPlainTextEdit()
        self.comment.setPlaceholderText("Comment for the student…")
        self.comment.setMaximumHeight(70)
        self.pin_button = QPushButton("Pin this comment on the image (then click the place)")
        self.pin_button.clicked.connect(self.start_pin)
        self.request_button = QPushButton("Request changes")
        self.request_button.clicked.connect(lambda: self._guarded(self.request_changes))
        self.approve_button = QPushButton("Approve")
        self.approve_button.clicked.connect(lambda: self._guarded(self.approve))
        self.status = QLabel("")
        self.status.setWordWrap(True)

        store_row = QHBoxLayout()
        store_row.addWidget(self.store_field, stretch=1)
        store_row.addWidget(browse)
        filter_row = QHBoxLayout()
        for box in self.filters.values():
            filter_row.addWidget(box)
        decisions = QHBoxLayout()
        decisions.addWidget(self.request_button)
        decisions.addWidget(self.approve_button)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<b>Review store</b>"))
        layout.addLayout(store_row)
        who_row = QHBoxLayout()
        who_row.addWidget(self.who, stretch=1)
        who_row.addWidget(self.name_button)
        layout.addLayout(who_row)
        layout.addWidget(QLabel("<b>Queue</b> (double-click a case to open it)"))
        layout.addLayout(filter_row)
        self.table.setMinimumHeight(140)
        layout.addWidget(self.table, stretch=1)
        layout.addWidget(self.open_button)
        layout.addWidget(self.reviewing)
        self.compare_row = QWidget()
        compare = QHBoxLayout(self.compare_row)
        compare.setContentsMargins(0, 0, 0, 0)
        compare.addWidget(QLabel("Compare annotators:"))
        compare.addWidget(self.reader_a)
        compare.addWidget(self.reader_b)
        compare.addWidget(self.compare_button)
        layout.addWidget(self.compare_row)
        layout.addWidget(self.comment)
        layout.addWidget(self.pin_button)
        layout.addLayout(decisions)
        layout.addWidget(self.status)

        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        self._show_actions()
        default = self._default_store()
        if default:
            self._guarded(self.open_store, default)

    # ------------------------------------------------------------------ the store
    def _default_store(self) -> str | None:
        """``$NSCLC_REVIEW_STORE``, else the store of the dataset open in the Cases dock, if it has one."""
        navigator = self._navigator(create=False)
        if navigator is None or navigator.workspace is None:
            return os.environ.get(STORE_VARIABLE, "").strip() or None
        url = store_url_for(navigator.workspace)
        return url if store_exists(url) else None

    def _choose_store(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Review store", "", "Review store (*.db);;All files (*)")
        if path:
            self._guarded(self.open_store, path)

    def open_store(self, url) -> None:
        """Show the queue of the store at ``url`` (a ``review.db`` path or a database URL); it must exist."""
        url = str(url).strip()
        if "://" not in url and not Path(url).is_file():
            raise NsclcFormatError(url, "does not exist (open the review.db in a dataset's corrections folder)")
        self.store = shared_store(url)
        self.url = url
        self.store_field.setText(url)
        self.refresh()

    def supervisor_name(self, ask_if_unknown: bool = True) -> str | None:
        """Who is reviewing: the annotator's name of this user (asked once, kept in the settings)."""
        name = workflow.annotator()
        if name or not ask_if_unknown:
            return name
        typed = self.ask("annotator", "Your name, stamped on every review decision:")
        return workflow.set_annotator(typed) if typed and typed != "cancel" else None

    def change_name(self) -> None:
        """Ask the user's name (kept in the settings), then show what it may do."""
        typed = self.ask("annotator", "Your name, stamped on every review decision:")
        if typed and typed != "cancel":
            workflow.set_annotator(typed)
        self.refresh()
        self._show_actions()

    # ------------------------------------------------------------------ the queue
    def queue(self, entries=None):
        """The queue (``entries``, default: the store's), filtered as the dock's filters say."""
        if self.store is None:
            return []
        chosen = {key: box.currentText() for key, box in self.filters.items()}
        state, annotator, dataset = (None if chosen[key] == _ALL[key] else chosen[key] for key in _ALL)
        entries = self.store.queue() if entries is None else entries
        return [e for e in entries if (state is None or e.state == state) and (dataset is None or e.dataset == dataset)
                and (annotator is None or annotator in e.annotators)]  # fmt: skip

    def refresh(self, *_args) -> None:
        """Read the queue again and show it (also every 15 s, for changes made elsewhere)."""
        if self.store is None:
            return
        try:
            everything = self.store.queue()  # one read: the filters' choices and the rows agree
            supervisors = self.store.supervisors()
        except (NsclcFormatError, ReviewError) as error:
            self._show_problem(str(error))
            return
        self._fill_filter("annotator", sorted({name for entry in everything for name in entry.annotators}))
        self._fill_filter("dataset", sorted({entry.dataset for entry in everything}))
        queue = self.queue(everything)
        selected = self._selected()
        self.table.setRowCount(len(queue))
        for row, entry in enumerate(queue):
            when = entry.changed_at.strftime("%Y-%m-%d %H:%M UTC")
            cells = (entry.dataset, entry.case, state_text(entry.state), ", ".join(entry.annotators) or "nobody",
                     f"{when} by {entry.changed_by}")  # fmt: skip
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, (entry.dataset, entry.case))
                if column == 2:
                    item.setForeground(QColor(STATE_COLORS[entry.state]))
                self.table.setItem(row, column, item)
            if (entry.dataset, entry.case) == selected:
                self.table.selectRow(row)
        self.table.resizeColumnsToContents()
        name = self.supervisor_name(ask_if_unknown=False)
        listed = ", ".join(supervisors) or "nobody yet"
        if name and name in supervisors:
            self.who.setText(f"You review as <b>{name}</b>, a supervisor. {len(everything)} case(s) in the store.")
        else:
            self.who.setText(f"You are <b>{name or 'not named yet'}</b>, not a supervisor of this store "
                             f"(supervisors: {listed}): you can read the queue, not approve.")  # fmt: skip
        self._show_actions()

    def _fill_filter(self, key: str, values: list[str]) -> None:
        box = self.filters[key]
        current = box.currentText()
        box.blockSignals(True)
        box.clear()
        box.addItems([_ALL[key], *values])
        box.setCurrentText(current if current in values else _ALL[key])
        box.blockSignals(False)

    def _selected(self) -> tuple[str, str] | None:
        item = self.table.item(self.table.currentRow(), 0) if self.table.currentRow() >= 0 else None
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    # ------------------------------------------------------------------ the case under review
    @property
    def review(self) -> CaseReview | None:
        """The review of the dataset shown in the Cases dock, in this store."""
        navigator = self._navigator(create=False)
        if navigator is None or navigator.workspace is None or self.url is None:
            return None
        return review_of(navigator.workspace, url=self.url)

    def _navigator(self, create: bool = True):
        from .case_navigator import CaseNavigator

        window = self.viewer.window
        found = next((w for w in window.dock_widgets.values() if isinstance(w, CaseNavigator)), None)
        if found is None and create:
            _, found = window.add_plugin_dock_widget("napari-nsclc", "Cases")
        return found

    def open_case(self, row: int) -> None:
        """Show the queue's case on ``row`` in the Cases dock, with its changes against the original."""
        item = self.table.item(row, 0) if row is not None and row >= 0 else None
        if item is None or self.store is None:
            return
        dataset, case_id = item.data(Qt.ItemDataRole.UserRole)
        location = self.store.location(dataset)
        if location is None:
            raise NsclcFormatError(self.url, f"does not say where dataset {dataset!r} is; open it in the Cases dock")
        workspace = workflow.open_shared(location.source, corrections=location.corrections)
        review_of(workspace, url=self.url)  # the Cases dock shows this store's states and comments
        navigator = self._navigator()
        navigator.bind(workspace)
        workspace.refresh()  # the student may have saved since this window last looked
        navigator.show_case(workspace.cases.index(case_id))
        navigator.changes_box.setChecked(True)
        self._follow(workspace)
        self._show_actions()

    def _follow(self, workspace) -> None:
        review = review_of(workspace, url=self.url)
        for signal, slot in ((workspace.current_changed, self._show_actions), (review.state_changed, self._on_state)):
            signal.disconnect(slot)  # psygnal: no error when it was not connected
            signal.connect(slot)

    def _on_state(self, case_id: str, state: str) -> None:
        self.refresh()

    def _show_actions(self, *_args) -> None:
        """Say which case is under review, and allow only the decisions its state and the user allow."""
        review = self.review
        case_id = review.workspace.current if review is not None else None
        state = review.state(case_id) if case_id else None
        name = self.supervisor_name(ask_if_unknown=False)
        is_supervisor = bool(self.store is not None and name and name in self.store.supervisors())
        can_decide = state == SUBMITTED and is_supervisor
        for button in (self.request_button, self.approve_button):
            button.setEnabled(can_decide)
        self.pin_button.setEnabled(case_id is not None and is_supervisor)
        self._fill_readers()
        if case_id is None:
            self.reviewing.setText("No case open for review.")
        else:
            self.reviewing.setText(f"Reviewing <b>{review.dataset} / {case_id}</b>: "
                                   f"<b style='color:{STATE_COLORS[state]}'>{state_text(state)}</b>")  # fmt: skip

    # ------------------------------------------------------------------ annotator A against annotator B
    def _reader_layers(self) -> list:
        """The case's own Labels and Points layers (not the overlays): each is one annotator's in a multi-reader case."""
        from napari.layers import Labels, Points

        return [layer for layer in self.viewer.layers
                if isinstance(layer, Labels | Points) and plugin_metadata(layer).get("dataset")
                and "overlay" not in plugin_metadata(layer)]  # fmt: skip

    def _fill_readers(self) -> None:
        names = [layer.name for layer in self._reader_layers()]
        for box, default in ((self.reader_a, 0), (self.reader_b, 1)):
            current = box.currentText()
            box.blockSignals(True)
            box.clear()
            box.addItems(names)
            box.setCurrentText(current if current in names else names[min(default, len(names) - 1)] if names else "")
            box.blockSignals(False)
        self.compare_row.setVisible(len(names) >= 2)

    def compare_readers(self) -> None:
        """Overlay where the second chosen layer differs from the first (two readers of one case)."""
        from napari.layers import Layer

        from ..diff_layers import diff_layer_data
        from ..workflow.changes import reader_changes

        navigator = self._navigator(create=False)
        first, second = self.reader_a.currentText(), self.reader_b.currentText()
        if navigator is None or navigator.workspace is None or not first or first == second:
            self._show_problem("Choose two different layers to compare.")
            return
        for layer in [layer for layer in self.viewer.layers if plugin_metadata(layer).get("overlay") == "changes"]:
            self.viewer.layers.remove(layer)
        changes, placed = reader_changes(navigator.current_case(), first, second)
        active = self.viewer.layers.selection.active
        for data, kwargs, layer_type in diff_layer_data(changes, placed):
            kwargs["name"] = f"{second} against {first}"
            self.viewer.add_layer(Layer.create(data, kwargs, layer_type))
        if active is not None:
            self.viewer.layers.selection.active = active
        self.status.setText(f"{second} against {first}: {changes.summary()} (green: only {second}, red: only {first})")

    # ------------------------------------------------------------------ decisions
    def _text(self) -> str:
        return self.comment.toPlainText().strip()

    def approve(self) -> None:
        """Approve the case under review (the comment, if any, goes with it)."""
        review, name = self.review, self.supervisor_name()
        if review is None or not name:
            return
        case_id = review.workspace.current
        review.approve(case_id, name, self._text() or None)
        self.comment.clear()
        self.status.setText(f"{review.dataset} / {case_id} approved by {name}")

    def request_changes(self) -> None:
        """Send the case under review back to the student with the comment."""
        review, name = self.review, self.supervisor_name()
        if review is None or not name:
            return
        if not self._text():
            self._show_problem("Write what should change in the comment box first.")
            return
        case_id = review.workspace.current
        review.request_changes(case_id, name, self._text())
        self.comment.clear()
        self.status.setText(f"{review.dataset} / {case_id}: changes requested by {name}")

    def start_pin(self) -> None:
        """Wait for a click on the image, then pin the comment there."""
        if self.review is None or not self._text():
            self._show_problem("Write the comment first, then press Pin and click the place on the image.")
            return
        active = self.viewer.layers.selection.active
        if self._pin_mode is None:
            # a click must not paint or add a point on the selected layer meanwhile
            self._pin_mode = (active, getattr(active, "mode", None))
            if active is not None and hasattr(active, "mode"):
                active.mode = "pan_zoom"
            self.viewer.mouse_drag_callbacks.append(self._on_canvas_press)
        self.status.setText("Click the place on the image the comment is about.")

    def _on_canvas_press(self, viewer, event) -> None:
        if event.type != "mouse_press":
            return
        layer, mode = self._pin_mode or (None, None)
        self._end_pin_mode()
        if layer is not None and mode is not None and layer in self.viewer.layers:
            layer.mode = mode
        self._guarded(self.pin, tuple(float(v) for v in event.position))

    def _end_pin_mode(self) -> None:
        if self._on_canvas_press in self.viewer.mouse_drag_callbacks:
            self.viewer.mouse_drag_callbacks.remove(self._on_canvas_press)
        self._pin_mode = None

    def pin(self, position) -> None:
        """Pin the comment box's text to ``position`` (world coordinates) on the case under review."""
        review, name = self.review, self.supervisor_name()
        if review is None or not name or not self._text():
            return
        ndim = len(position)
        slice_index = int(self.viewer.dims.current_step[0]) if ndim > 2 else None
        case_id = review.workspace.current
        review.pin(case_id, name, self._text(), position, slice_index=slice_index)
        self.comment.clear()
        where = ", ".join(f"{v:.0f}" for v in position)
        self.status.setText(f"comment pinned on {review.dataset} / {case_id} at ({where})")

    # ------------------------------------------------------------------ questions and problems
    def ask(self, question: str, text: str) -> str:
        """Ask the user (see :func:`~._questions.ask`); tests answer here."""
        return ask(self, question, text)

    def _show_problem(self, message: str) -> None:
        from napari.utils.notifications import show_warning

        self.status.setText(f"<span style='color:#d62728'>{message}</span>")
        show_warning(message)

    def _guarded(self, action, *args):
        """Run ``action``; show a store or review problem in the dock instead of a traceback."""
        try:
            return action(*args)
        except (NsclcFormatError, ReviewError, ValueError) as error:
            self._show_problem(str(error))
            return None
