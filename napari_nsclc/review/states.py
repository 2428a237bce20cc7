"""The review state machine: which state a case may go to next, and who may send it there.

::

    new -> in_progress -> submitted -> approved
                              |
                              v
                      changes_requested -> in_progress

Anyone may start, submit or restart a case; only a supervisor may approve it
or request changes. ``approved`` is final. Names are taken as given: this is
attribution, not authentication (see :mod:`napari_nsclc.review.store`).
"""

from __future__ import annotations

from collections.abc import Collection

__all__ = [
    "APPROVED",
    "CHANGES_REQUESTED",
    "IN_PROGRESS",
    "NEW",
    "STATES",
    "SUBMITTED",
    "SUPERVISOR_STATES",
    "TRANSITIONS",
    "IllegalTransition",
    "NotAllowed",
    "ReviewError",
    "check_transition",
]

NEW = "new"
IN_PROGRESS = "in_progress"
SUBMITTED = "submitted"
APPROVED = "approved"
CHANGES_REQUESTED = "changes_requested"

#: Every state, in the order a case normally passes through them.
STATES = (NEW, IN_PROGRESS, SUBMITTED, CHANGES_REQUESTED, APPROVED)

#: The states each state may go to.
TRANSITIONS: dict[str, frozenset[str]] = {
    NEW: frozenset({IN_PROGRESS}),
    IN_PROGRESS: frozenset({SUBMITTED}),
    SUBMITTED: frozenset({APPROVED, CHANGES_REQUESTED}),
    CHANGES_REQUESTED: frozenset({IN_PROGRESS}),
    APPROVED: frozenset(),
}

#: The states only a supervisor may send a case to.
SUPERVISOR_STATES = frozenset({APPROVED, CHANGES_REQUESTED})


class ReviewError(Exception):
    """Base of the review store's refusals; nothing was written when one is raised."""


class IllegalTransition(ReviewError, ValueError):
    """A case cannot go from its state to the one asked for (or that is not a state at all).

    Attributes
    ----------
    case : str
        The case, as ``dataset/case_id``.
    from_state, to_state : str
        Where the case is, and where it was asked to go.
    """

    def __init__(self, case: str, from_state: str, to_state: str):
        self.case, self.from_state, self.to_state = case, from_state, to_state
        if to_state not in TRANSITIONS:
            problem = f"{to_state!r} is not a review state (states: {', '.join(STATES)})"
        else:
            allowed = sorted(TRANSITIONS.get(from_state, ()))
            where = f"it can go to {' or '.join(allowed)}" if allowed else "it is final"
            problem = f"cannot go from {from_state} to {to_state}: {where}"
        super().__init__(f"{case}: {problem}")


class NotAllowed(ReviewError, PermissionError):
    """Someone who is not a supervisor asked to approve a case or request changes.

    Attributes
    ----------
    case : str
        The case, as ``dataset/case_id``.
    who : str
        The name that asked.
    to_state : str
        The state asked for.
    """

    def __init__(self, case: str, who: str, to_state: str, supervisors: Collection[str]):
        self.case, self.who, self.to_state = case, who, to_state
        listed = ", ".join(sorted(supervisors)) or "nobody yet: set the list with set_supervisors"
        super().__init__(f"{case}: only a supervisor may move a case to {to_state}; {who!r} is not one (supervisors: {listed})")


def check_transition(case: str, from_state: str, to_state: str, by: str, supervisors: Collection[str]) -> None:
    """Raise unless ``by`` may move ``case`` from ``from_state`` to ``to_state``.

    Parameters
    ----------
    case : str
        The case, for the message.
    from_state, to_state : str
        The case's state, and the one asked for.
    by : str
        Who asks.
    supervisors : collection of str
        The store's supervisors.

    Raises
    ------
    IllegalTransition
        When the state machine has no such step. Checked first: approving a
        case that was never submitted is illegal whoever asks.
    NotAllowed
        When the step is a supervisor's and ``by`` is not one.
    """
    if to_state not in TRANSITIONS.get(from_state, ()):
        raise IllegalTransition(case, from_state, to_state)
    if to_state in SUPERVISOR_STATES and by not in supervisors:
        raise NotAllowed(case, by, to_state, supervisors)
