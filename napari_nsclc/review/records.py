"""What the review store returns (frozen dataclasses), and its refusals to find or add a case."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .states import ReviewError

__all__ = ["AmbiguousCase", "CaseExists", "Comment", "DatasetLocation", "Event", "QueueEntry", "UnknownCase"]


class UnknownCase(ReviewError, LookupError):
    """No case has that id (in that dataset)."""


class AmbiguousCase(ReviewError, LookupError):
    """The case id is in more than one dataset: pass ``dataset=``."""


class CaseExists(ReviewError, ValueError):
    """:meth:`ReviewStore.add_case` for a case the store already has."""


@dataclass(frozen=True)
class Event:
    """One line of the event log.

    Attributes
    ----------
    who : str
        The name that made the change (attribution, not authentication).
    when : datetime
        When, in UTC (timezone-aware).
    what : str
        ``"add"``, ``"assign"``, ``"transition"`` or ``"comment"``.
    from_state, to_state : str or None
        The case's state before and after; ``from_state`` is ``None`` for ``add``.
    case : str
        The case id.
    text : str or None
        The transition's comment, the comment, or the assigned annotator.
    dataset : str
        The case's dataset.
    id : int
        Its place in the log: later events have larger ids.
    details : dict or None
        More about it, JSON-ready: a submission carries the correction's
        agreement with the original (:func:`~napari_nsclc.review.session.submission_details`).
    """

    who: str
    when: datetime
    what: str
    from_state: str | None
    to_state: str | None
    case: str
    text: str | None
    dataset: str
    id: int
    details: dict | None = None


@dataclass(frozen=True)
class Comment:
    """A comment on a case, optionally pinned to a place in it.

    Attributes
    ----------
    case, dataset : str
        The case.
    author : str
        Who wrote it.
    when : datetime
        When, in UTC.
    text : str
        The comment.
    position : tuple of float or None
        World coordinates (napari's, in the layer's axis order), or ``None``.
    slice_index : int or None
        The slice it was written on, for a volume.
    id : int
        Its id; later comments have larger ids.
    """

    case: str
    dataset: str
    author: str
    when: datetime
    text: str
    position: tuple[float, ...] | None
    slice_index: int | None
    id: int


@dataclass(frozen=True)
class QueueEntry:
    """A case in :meth:`~napari_nsclc.review.store.ReviewStore.queue`.

    Attributes
    ----------
    dataset, case : str
        The case.
    state : str
        Its review state.
    annotators : tuple of str
        Who it is assigned to, sorted; empty if nobody.
    changed_at : datetime
        When its state last changed (or it was added), in UTC.
    changed_by : str
        Who changed it.
    """

    dataset: str
    case: str
    state: str
    annotators: tuple[str, ...]
    changed_at: datetime
    changed_by: str


@dataclass(frozen=True)
class DatasetLocation:
    """Where a dataset's files are: recorded by :meth:`~napari_nsclc.review.store.ReviewStore.locate`.

    Attributes
    ----------
    name : str
        The dataset, as in the store's cases.
    source : str
        The dataset folder or file that was opened (absolute).
    corrections : str
        Its corrections folder (absolute).
    recorded_at : datetime
        When, in UTC.
    recorded_by : str
        Who opened it there.
    """

    name: str
    source: str
    corrections: str
    recorded_at: datetime
    recorded_by: str
