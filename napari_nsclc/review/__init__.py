"""Supervisor review, headless: a store of cases, assignments, states, comments and events, and agreement metrics.

No napari and no Qt: the review dock, the CLI and the tests share these.

>>> store = open_store("sqlite:///project/review.db")  # doctest: +SKIP
>>> store.add_case("NSCLC-NAT", "2")                     # doctest: +SKIP
>>> store.transition("2", IN_PROGRESS, by="alice")       # doctest: +SKIP

The metrics live in :mod:`napari_nsclc.review.metrics` and
:mod:`napari_nsclc.review.multirater`; they are not imported here, so that
opening a store does not load scikit-learn and statsmodels.
"""

from .engine import DEFAULT_NAME, default_url
from .records import AmbiguousCase, CaseExists, Comment, DatasetLocation, Event, QueueEntry, UnknownCase
from .schema import SCHEMA_VERSION, SchemaTooNew
from .states import (
    APPROVED,
    CHANGES_REQUESTED,
    IN_PROGRESS,
    NEW,
    STATES,
    SUBMITTED,
    TRANSITIONS,
    IllegalTransition,
    NotAllowed,
    ReviewError,
)
from .store import ReviewStore, open_store

__all__ = [
    "APPROVED", "CHANGES_REQUESTED", "DEFAULT_NAME", "IN_PROGRESS", "NEW", "SCHEMA_VERSION", "STATES", "SUBMITTED",
    "TRANSITIONS", "AmbiguousCase", "CaseExists", "Comment", "DatasetLocation", "Event", "IllegalTransition", "NotAllowed",
    "QueueEntry", "ReviewError", "ReviewStore", "SchemaTooNew", "UnknownCase", "default_url", "open_store",
]  # fmt: skip
