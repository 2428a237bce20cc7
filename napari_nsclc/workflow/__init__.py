"""The correction workflow, headless: a dataset's cases, their status, saving, autosave and provenance.

No napari and no Qt: the docks, the CLI and the tests share these models.

>>> ws = Workspace.open("NSCLC-NAT", annotator="alice")  # doctest: +SKIP
>>> case = ws.load(ws.cases[1])                           # doctest: +SKIP
>>> ws.save(ws.cases[1], case)                            # doctest: +SKIP
"""

from .history import EditHistory, LayerState
from .identity import annotator, set_annotator
from .workspace import STATUSES, ConflictError, SaveResult, Workspace, autosave_interval, open_shared, shared

__all__ = [
    "STATUSES",
    "ConflictError",
    "EditHistory",
    "LayerState",
    "SaveResult",
    "Workspace",
    "annotator",
    "autosave_interval",
    "open_shared",
    "set_annotator",
    "shared",
]
