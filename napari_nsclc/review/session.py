"""A dataset's review, headless: its :class:`~napari_nsclc.workflow.Workspace` bound to a review store.

:class:`CaseReview` is what the Cases dock and the supervisor dock bind to.
A student's save starts the review of a case (``new`` or
``changes_requested`` → ``in_progress``); *Submit* sends it to the
supervisor, with :func:`submission_details` (how the saved correction
agrees with the original) on the event, so that a report needs only the
store. A supervisor approves, requests changes, and pins comments to
positions on the canvas, which the student sees on reopening the case.

Which store
    ``$NSCLC_REVIEW_STORE`` (a path or URL, ``postgresql://…`` for a team
    on several machines), else ``review.db`` in the dataset's corrections
    folder (:func:`store_url_for`). Reading a store that does not exist yet
    shows every case as ``new`` and creates nothing; the first write
    creates it.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from psygnal import Signal

from ..model import Case
from .engine import default_url, store_url
from .records import CaseExists, Comment, Event, UnknownCase
from .states import APPROVED, CHANGES_REQUESTED, IN_PROGRESS, NEW, SUBMITTED
from .store import ReviewStore, open_store

__all__ = [
    "STORE_VARIABLE", "CaseReview", "review_of", "shared_store", "store_exists", "store_url_for", "submission_details",
]  # fmt: skip

#: Environment variable naming the review store, above the corrections folder's ``review.db``.
STORE_VARIABLE = "NSCLC_REVIEW_STORE"

#: Masks larger than this are not compared at submission (a gigapixel slide's label pyramid).
MAX_PIXELS_COMPARED = 50_000_000

#: Hit radius for cells on images without a physical pixel size: IGNITE's 10 µm at 0.5 µm/px.
DEFAULT_RADIUS_PX = 20.0


def store_url_for(workspace) -> str:
    """The review store of ``workspace``: ``$NSCLC_REVIEW_STORE``, else ``<corrections>/review.db``."""
    return os.environ.get(STORE_VARIABLE, "").strip() or default_url(workspace.corrections)


_STORES: dict[str, ReviewStore] = {}


def shared_store(url) -> ReviewStore:
    """The store at ``url``, opened once per process (creating it if needed) and shared by the docks."""
    key = str(store_url(url))
    if key not in _STORES:
        _STORES[key] = open_store(url)
    return _STORES[key]


def store_exists(url: str) -> bool:
    """Whether the store at ``url`` is there to read (a database server is taken to be)."""
    parsed = store_url(url)
    return parsed.get_backend_name() != "sqlite" or Path(parsed.database).is_file()


# --------------------------------------------------------------------------- what a submission measured


def _clean(value):
    """JSON-ready: NaN (undefined agreement) becomes ``None``."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float | np.floating):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _pairs(before: list, after: list) -> list[tuple]:
    """Layers of the original and the correction, paired by name (else by position)."""
    by_name = {item.name: item for item in before}
    pairs = []
    for position, item in enumerate(after):
        match = by_name.get(item.name) or (before[position] if position < len(before) else None)
        if match is not None:
            pairs.append((item.name, match, item))
    return pairs


def _pixel_size(case: Case) -> float | None:
    return case if case.image.unit in ("um", "mm") else None


def submission_details(original: Case, correction: Case) -> dict:
    """How a saved correction agrees with the original: the numbers a submission keeps.

    Parameters
    ----------
    original, correction : Case
        The case as read from the dataset and as the student saved it.

    Returns
    -------
    dict
        JSON-ready (undefined values are ``None``)::

            {"masks":  {layer: {"mean_dice", "mean_iou", "pixels_changed", "pixels_compared",
                                "per_class": {class: {"dice", "iou", ...}}}},
             "points": {layer: {"f1", "kappa", "n_original", "n_corrected", "matched",
                                "per_class": {class: {"precision", "recall", "f1", "support"}},
                                "criterion": {...}}},
             "boxes":  {layer: {... as points}}}

        Masks larger than :data:`MAX_PIXELS_COMPARED` are listed with
        ``{"skipped": reason}``. Cells are matched within 10 µm, or
        :data:`DEFAULT_RADIUS_PX` pixels on an image without a pixel size.
    """
    from .metrics import box_agreement, mask_agreement, point_agreement

    details: dict[str, dict] = {"masks": {}, "points": {}, "boxes": {}}
    for name, before, after in _pairs(original.masks, correction.masks):
        size = int(np.prod(np.shape(after.data)))
        if size > MAX_PIXELS_COMPARED or np.shape(before.data) != np.shape(after.data):
            reason = "too large to compare" if size > MAX_PIXELS_COMPARED else "the masks differ in size"
            details["masks"][name] = {"skipped": reason}
            continue
        agreement = mask_agreement(before, after).as_dict()
        agreement.pop("confusion")
        details["masks"][name] = agreement
    for kind, compare in (("points", point_agreement), ("boxes", box_agreement)):
        for name, before, after in _pairs(getattr(original, kind), getattr(correction, kind)):
            if kind == "points":
                size = _pixel_size(correction)
                options = {"pixel_size": size} if size is not None else {"radius_px": DEFAULT_RADIUS_PX}
            else:
                options = {}
            agreement = compare(before, after, **options)
            per_class = {label: {key: row[key] for key in ("precision", "recall", "f1", "support")}
                         for label, row in agreement.per_class.items()}  # fmt: skip
            details[kind][name] = {
                "f1": agreement.detection["f1"], "kappa": agreement.kappa, "n_original": agreement.n_a,
                "n_corrected": agreement.n_b, "matched": agreement.matched, "per_class": per_class,
                "criterion": agreement.criterion,
            }  # fmt: skip
    return _clean(details)


# --------------------------------------------------------------------------- a workspace's review


class CaseReview:
    """The review of one workspace's cases in one store.

    Use :func:`review_of`. Signals: ``state_changed(case_id, state)``,
    ``comments_changed(case_id)`` and ``problem(message)`` (the store could
    not be written; the correction itself is saved).

    Parameters
    ----------
    workspace : Workspace
        The dataset the cases belong to.
    url : str
        The review store.
    """

    state_changed = Signal(str, str)
    comments_changed = Signal(str)
    problem = Signal(str)

    def __init__(self, workspace, url: str):
        self.workspace = workspace
        self.url = url
        #: The dataset's name in the store: the folder (or file) the dataset was opened from.
        self.dataset = workspace.source.name
        self._located = False  # the dataset's folders are recorded on the first write
        workspace.saved.connect(self._on_saved)

    def __repr__(self) -> str:
        return f"CaseReview({self.dataset!r}, {self.url!r})"

    @property
    def store(self) -> ReviewStore:
        """The store, opened (and created) on first use."""
        return shared_store(self.url)

    def _readable(self) -> bool:
        return store_exists(self.url)

    # ------------------------------------------------------------------ reading
    def states(self) -> dict[str, str]:
        """Every case's review state: ``new`` for a case the store does not have."""
        known = {}
        if self._readable():
            known = {entry.case: entry.state for entry in self.store.queue(dataset=self.dataset)}
        return {case_id: known.get(case_id, NEW) for case_id in self.workspace.cases}

    def _entry(self, case_id: str):
        if not self._readable():
            return None
        try:
            return self.store.queue_entry(case_id, dataset=self.dataset)
        except UnknownCase:
            return None

    def state(self, case_id: str) -> str:
        """The case's review state (``new`` when the store does not have it)."""
        entry = self._entry(case_id)
        return entry.state if entry is not None else NEW

    def comments(self, case_id: str) -> list[Comment]:
        """The case's comments, oldest first (the supervisors' transition comments included)."""
        return self.store.comments(case_id, dataset=self.dataset) if self._entry(case_id) is not None else []

    def pinned(self, case_id: str) -> list[Comment]:
        """The case's comments that are pinned to a position on the canvas."""
        return [comment for comment in self.comments(case_id) if comment.position is not None]

    def events(self, case_id: str) -> list[Event]:
        """The case's review events, oldest first."""
        return self.store.events(case_id, dataset=self.dataset) if self._entry(case_id) is not None else []

    # ------------------------------------------------------------------ the student's side
    def _ensure(self, case_id: str, by: str) -> None:
        """Put the case in the store, assigned to ``by``, and record where the dataset is."""
        self.workspace.cases.index(case_id)  # an unknown case is an error, not a new row
        store = self.store
        entry = self._entry(case_id)
        if entry is None:
            try:
                store.add_case(self.dataset, case_id, by=by)
            except CaseExists:  # another window added it since we looked
                pass
        if not self._located:
            store.locate(self.dataset, self.workspace.source, self.workspace.corrections, by=by)
            self._located = True
        if entry is None or by not in entry.annotators:
            store.assign(case_id, by, dataset=self.dataset, by=by)

    def start(self, case_id: str, by: str) -> str:
        """The student works on the case: ``new`` or ``changes_requested`` → ``in_progress``; returns the state."""
        self._ensure(case_id, by)
        state = self.store.state(case_id, dataset=self.dataset)
        if state in (NEW, CHANGES_REQUESTED):
            state = self.store.transition(case_id, IN_PROGRESS, by, dataset=self.dataset).to_state
            self.state_changed.emit(case_id, state)
        return state

    def can_submit(self, case_id: str) -> str | None:
        """Why the case cannot be submitted now, or ``None`` when it can."""
        ws = self.workspace
        if ws.has_unsaved(case_id):
            return "save the correction first"
        if ws.status(case_id) != "saved":
            return "nothing is saved for this case yet"
        state = self.state(case_id)
        if state in (SUBMITTED, APPROVED):
            return f"it is {state.replace('_', ' ')}"
        return None

    def submit(self, case_id: str, by: str) -> Event:
        """Send the saved correction to the supervisor, with its agreement with the original.

        Raises
        ------
        ValueError
            When :meth:`can_submit` says why not (unsaved edits, nothing saved, already submitted).
        """
        reason = self.can_submit(case_id)
        if reason is not None:
            raise ValueError(f"{self.dataset}/{case_id} cannot be submitted: {reason}")
        self.start(case_id, by)
        ws = self.workspace
        details = submission_details(ws.original(case_id), ws.saved_case(case_id))
        event = self.store.transition(case_id, SUBMITTED, by, dataset=self.dataset, details=details)
        self.state_changed.emit(case_id, event.to_state)
        return event

    def _on_saved(self, result) -> None:
        if not result.paths:
            return
        try:
            state = self.start(result.case, result.annotator)
        except Exception as error:  # noqa: BLE001 - the correction is saved; the review must not undo that
            self.problem.emit(f"{self.url}: the review state of {result.case} was not updated: {error}")
            return
        if state in (SUBMITTED, APPROVED):
            # not refused: the save is the student's to make; but the supervisor must not be surprised
            self.problem.emit(f"{self.dataset}/{result.case} is {state.replace('_', ' ')}: the supervisor will see "
                              "this newer correction, not the one submitted")  # fmt: skip

    # ------------------------------------------------------------------ the supervisor's side
    def approve(self, case_id: str, by: str, comment: str | None = None) -> Event:
        """Approve the submitted case (``by`` must be a supervisor)."""
        event = self.store.transition(case_id, APPROVED, by, comment, dataset=self.dataset)
        self.state_changed.emit(case_id, event.to_state)
        if comment:
            self.comments_changed.emit(case_id)
        return event

    def request_changes(self, case_id: str, by: str, comment: str) -> Event:
        """Send the submitted case back to its student with ``comment`` (``by`` must be a supervisor)."""
        if not str(comment or "").strip():
            raise ValueError("say what should change: requesting changes needs a comment")
        event = self.store.transition(case_id, CHANGES_REQUESTED, by, comment, dataset=self.dataset)
        self.state_changed.emit(case_id, event.to_state)
        self.comments_changed.emit(case_id)
        return event

    def pin(self, case_id: str, by: str, text: str, position, slice_index: int | None = None) -> Comment:
        """Pin ``text`` to ``position`` (world coordinates) on the case."""
        comment = self.store.comment(case_id, by, text, position, slice_index=slice_index, dataset=self.dataset)
        self.comments_changed.emit(case_id)
        return comment


_REVIEWS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def review_of(workspace, url: str | None = None) -> CaseReview:
    """The review of ``workspace``'s cases, one per workspace and shared by the docks.

    ``url`` binds it to that store (the supervisor dock passes the store it
    opened); default :func:`store_url_for`.
    """
    wanted = url or store_url_for(workspace)
    review = _REVIEWS.get(workspace)
    if review is None or (url is not None and str(store_url(review.url)) != str(store_url(url))):
        if review is not None:
            workspace.saved.disconnect(review._on_saved)
        review = _REVIEWS[workspace] = CaseReview(workspace, wanted)
    return review
