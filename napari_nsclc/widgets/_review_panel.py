"""The review part of the Cases dock: the case's review state, its comments, and "Submit for review".

It binds to the workspace's :class:`~napari_nsclc.review.session.CaseReview`
and keeps nothing of its own. On each case shown it puts the case's pinned
comments on the canvas as a "review comments" Points layer with their text.
"""

from __future__ import annotations

from qtpy.QtWidgets import QLabel, QListWidget, QPushButton, QVBoxLayout, QWidget

from ..layers import comments_to_layer, plugin_metadata
from ..model import NsclcFormatError
from ..review import ReviewError
from ..review.session import CaseReview, review_of

__all__ = ["STATE_COLORS", "STATE_HELP", "ReviewPanel"]

STATE_COLORS = {"new": "#9a9a9a", "in_progress": "#1f77b4", "submitted": "#9467bd",
                "changes_requested": "#d62728", "approved": "#2ca02c"}  # fmt: skip
STATE_HELP = {
    "new": "not reviewed yet: save a correction to start",
    "in_progress": "being corrected; submit it when it is ready",
    "submitted": "waiting for the supervisor",
    "changes_requested": "the supervisor asked for changes: see the comments",
    "approved": "approved by the supervisor",
}


def state_text(state: str) -> str:
    """``"changes requested"`` for ``"changes_requested"``."""
    return state.replace("_", " ")


class ReviewPanel(QWidget):
    """The current case's review, inside the Cases dock.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    annotator : callable
        ``annotator() -> str or None``: the name to submit as, asking the
        user when needed (the Cases dock passes its own).
    """

    def __init__(self, napari_viewer, annotator, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self._annotator = annotator
        self.review: CaseReview | None = None
        self.state = QLabel("")
        self.state.setWordWrap(True)
        self.state.setMinimumHeight(34)  # two lines: the state, and what it means
        self.comments = QListWidget()
        self.comments.setWordWrap(True)
        self.comments.setMinimumHeight(70)
        self.comments.setMaximumHeight(120)
        self.submit_button = QPushButton("Submit for review")
        self.submit_button.clicked.connect(self.submit)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.state)
        self.comments_title = QLabel("Review comments on this case:")
        layout.addWidget(self.comments_title)
        layout.addWidget(self.comments)
        self._show_comment_list(False)  # only when there are comments: the Cases dock is tall already
        layout.addWidget(self.submit_button)

    # ------------------------------------------------------------------ binding
    def bind(self, workspace) -> CaseReview:
        """Follow the review of ``workspace``'s cases."""
        review = review_of(workspace)
        if review is not self.review:
            if self.review is not None:
                for signal, slot in self._connections():
                    signal.disconnect(slot)
            self.review = review
            for signal, slot in self._connections():
                signal.connect(slot)
        return review

    def _connections(self):
        review = self.review
        return ((review.state_changed, self._on_state), (review.comments_changed, self._on_comments),
                (review.problem, self._show_problem), (review.workspace.status_changed, self._on_state))  # fmt: skip

    @property
    def case_id(self) -> str | None:
        return self.review.workspace.current if self.review is not None else None

    # ------------------------------------------------------------------ showing
    def show_case(self, case_id: str | None = None) -> None:
        """Show the review of the current case: state, comments, pins on the canvas."""
        case_id = case_id or self.case_id
        if self.review is None or case_id is None:
            return
        try:
            state, comments = self.review.state(case_id), self.review.comments(case_id)
        except (NsclcFormatError, ReviewError) as error:
            self._show_problem(str(error))
            return
        last = next((e for e in reversed(self.review.events(case_id)) if e.what == "transition"), None)
        since = f" — {last.who}, {last.when.strftime('%Y-%m-%d %H:%M UTC')}" if last is not None else ""
        self.state.setText(f"Review: <b style='color:{STATE_COLORS[state]}'>{state_text(state)}</b>{since}"
                           f"<br><small>{STATE_HELP[state]}</small>")  # fmt: skip
        self.comments.clear()
        for comment in comments:
            pin = " (pinned on the image)" if comment.position is not None else ""
            self.comments.addItem(f"{comment.author}, {comment.when.strftime('%d %b %H:%M')}{pin}: {comment.text}")
        self._show_comment_list(bool(comments))
        reason = self.review.can_submit(case_id)
        self.submit_button.setEnabled(reason is None)
        self.submit_button.setToolTip(reason or "send the saved correction to the supervisor")
        self.show_pins(case_id, comments)

    def _show_comment_list(self, shown: bool) -> None:
        self.comments_title.setVisible(shown)
        self.comments.setVisible(shown)

    def show_pins(self, case_id: str, comments=None) -> None:
        """Put the case's pinned comments on the canvas (one "review comments" layer, replaced each time)."""
        from napari.layers import Layer

        for layer in [layer for layer in self.viewer.layers if plugin_metadata(layer).get("overlay") == "comments"]:
            self.viewer.layers.remove(layer)
        comments = self.review.comments(case_id) if comments is None else comments
        pinned = [comment for comment in comments if comment.position is not None]
        if not pinned:
            return
        active = self.viewer.layers.selection.active
        extent = self.viewer.layers.extent.world  # (2, ndim): the case's size sets the pin's
        size = max(1.0, 0.04 * float(max(extent[1] - extent[0])))
        data, kwargs, layer_type = comments_to_layer(pinned, ndim=max(2, self.viewer.dims.ndim), size=size)
        self.viewer.add_layer(Layer.create(data, kwargs, layer_type))
        if active is not None:  # keep painting on the case's layer
            self.viewer.layers.selection.active = active

    def _on_state(self, case_id: str, state: str) -> None:
        """A review state or a save status changed: the state shown and whether Submit can be pressed."""
        if case_id == self.case_id:
            self.show_case(case_id)

    def _on_comments(self, case_id: str) -> None:
        if case_id == self.case_id:
            self.show_case(case_id)

    def _show_problem(self, message: str) -> None:
        from napari.utils.notifications import show_warning

        self.state.setText(f"<span style='color:#d62728'>{message}</span>")
        show_warning(message)

    # ------------------------------------------------------------------ actions
    def submit(self) -> None:
        """Submit the current case's saved correction for review."""
        case_id = self.case_id
        if case_id is None:
            return
        name = self._annotator()
        if not name:
            return
        try:
            event = self.review.submit(case_id, name)
        except (ValueError, NsclcFormatError, ReviewError) as error:
            self._show_problem(str(error))
            return
        from napari.utils.notifications import show_info

        show_info(f"{case_id} submitted for review by {event.who}")
