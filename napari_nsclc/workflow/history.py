"""Undo and redo of object edits that napari does not undo itself.

napari undoes paint on Labels layers, but not class changes, nor points and
shapes added, deleted or moved. :class:`EditHistory` keeps those edits as
whole-layer snapshots (:class:`LayerState`), newest last. A
:class:`~napari_nsclc.workflow.Workspace` keeps one history per case and
starts it afresh whenever the case is loaded again; the Classes dock only
records into it and replays it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from typing import Any

from psygnal import Signal

__all__ = ["EditHistory", "LayerState", "Step", "detached_history"]

#: Undo steps kept per history; each holds two snapshots of one layer.
MAX_STEPS = 100


@dataclass(frozen=True)
class LayerState:
    """One layer's objects at one moment.

    Attributes
    ----------
    data : ndarray or list of ndarray
        Points, shape (N, D), or one (V, D) vertex array per shape.
    features : DataFrame
        One row per object, with its ``class``.
    shape_types : list of str or None
        Per shape, for Shapes layers.
    """

    data: Any
    features: Any
    shape_types: list[str] | None = None


@dataclass(frozen=True)
class Step:
    """One undoable edit of the layer named ``key``: its state ``before`` and ``after``."""

    key: Hashable
    before: LayerState
    after: LayerState
    what: str = ""


class EditHistory:
    """Undo and redo stacks of whole-layer edits, with the last known state of each layer.

    Signals: ``changed()`` after every record, undo, redo or clear.

    Parameters
    ----------
    limit : int
        Undo steps kept; older ones are forgotten.
    """

    changed = Signal()

    def __init__(self, limit: int = MAX_STEPS):
        self.limit = limit
        self._undo: list[Step] = []
        self._redo: list[Step] = []
        self._latest: dict[Hashable, LayerState] = {}
        self._replaying = False
        self._last_cause: object = None

    def latest(self, key: Hashable) -> LayerState | None:
        """The last state recorded for ``key``, or ``None`` if it was never seen."""
        return self._latest.get(key)

    def start(self, key: Hashable, state: LayerState) -> None:
        """Take ``state`` as where ``key`` starts from, without an undo step."""
        self._latest[key] = state

    def record(self, key: Hashable, after: LayerState, what: str = "", before: LayerState | None = None,
               cause: object = None) -> Step | None:  # fmt: skip
        """Record that ``key`` went from its latest state (or ``before``) to ``after``.

        Returns the step, or ``None`` when nothing was recorded: there was no
        earlier state (``after`` is then where the layer starts from), a step
        is being replayed (:meth:`replaying`), or ``cause`` (the event that
        reported the edit) was recorded already, by another view of the same layer.
        """
        if self._replaying or (cause is not None and cause is self._last_cause):
            return None
        if cause is not None:
            self._last_cause = cause
        before = before if before is not None else self._latest.get(key)
        self._latest[key] = after
        if before is None:
            return None
        step = Step(key, before, after, what)
        self._undo.append(step)
        del self._undo[: -self.limit]
        self._redo.clear()
        self.changed.emit()
        return step

    @contextlib.contextmanager
    def replaying(self) -> Iterator[None]:
        """While a view puts a step's state back on screen: the edits that reports are not new steps."""
        self._replaying = True
        try:
            yield
        finally:
            self._replaying = False

    def undo(self) -> Step | None:
        """Take back the newest step; returns it (restore ``step.before``), or ``None``."""
        if not self._undo:
            return None
        step = self._undo.pop()
        self._redo.append(step)
        self._latest[step.key] = step.before
        self.changed.emit()
        return step

    def redo(self) -> Step | None:
        """Do the newest undone step again; returns it (restore ``step.after``), or ``None``."""
        if not self._redo:
            return None
        step = self._redo.pop()
        self._undo.append(step)
        self._latest[step.key] = step.after
        self.changed.emit()
        return step

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def undo_steps(self) -> list[Step]:
        """The steps that can be undone, oldest first (a copy)."""
        return list(self._undo)

    @property
    def redo_steps(self) -> list[Step]:
        """The undone steps that can be redone, the next one last (a copy)."""
        return list(self._redo)

    def clear(self) -> None:
        """Forget every step and every layer's state (the case was loaded afresh)."""
        self._undo.clear()
        self._redo.clear()
        self._latest.clear()
        self.changed.emit()


_DETACHED: dict[str, EditHistory] = {}


def detached_history(source: str) -> EditHistory:
    """The history of layers that belong to no workspace (a file napari-nsclc reads but cannot correct).

    One per ``source`` (the file or folder the layers came from), for the process.
    """
    return _DETACHED.setdefault(source, EditHistory())
