"""The undo history of object edits, headless (no napari, no Qt)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_nsclc.testing import build
from napari_nsclc.workflow import Workspace
from napari_nsclc.workflow.history import EditHistory, LayerState, detached_history


def _state(classes):
    return LayerState(np.arange(len(classes) * 2.0).reshape(-1, 2), pd.DataFrame({"class": classes}))


def _classes(state):
    return list(state.features["class"])


def test_record_undo_redo_and_a_new_edit_drops_the_redo():
    history = EditHistory()
    changes = []
    history.changed.connect(lambda: changes.append(1))
    assert history.record("cells", _state(["a", "b"])) is None  # the first state is where it starts
    assert not history.can_undo and changes == []
    step = history.record("cells", _state(["b", "b"]), "class b")
    assert step.what == "class b" and _classes(step.before) == ["a", "b"] and _classes(step.after) == ["b", "b"]
    history.record("cells", _state(["b", "b", "a"]), "added")
    assert [s.what for s in history.undo_steps] == ["class b", "added"]

    assert _classes(history.undo().before) == ["b", "b"]
    assert _classes(history.latest("cells")) == ["b", "b"]
    assert _classes(history.undo().before) == ["a", "b"]
    assert history.undo() is None
    assert _classes(history.redo().after) == ["b", "b"]
    assert [s.what for s in history.redo_steps] == ["added"]
    history.record("cells", _state(["c", "b"]), "class c")
    assert not history.can_redo and history.redo() is None
    assert _classes(history.latest("cells")) == ["c", "b"]
    assert len(changes) == 6  # 3 records that made a step, 2 undos and 1 redo that moved


def test_keys_are_separate_states_in_one_timeline():
    history = EditHistory()
    history.start("cells", _state(["a"]))
    history.start("nuclei", _state(["x"]))
    history.record("cells", _state(["b"]), "class b")
    history.record("nuclei", _state(["y"]), "class y")
    assert history.undo().key == "nuclei" and _classes(history.latest("cells")) == ["b"]
    assert history.undo().key == "cells" and _classes(history.latest("cells")) == ["a"]


def test_replays_and_repeated_events_are_not_new_steps():
    history = EditHistory()
    history.start("cells", _state(["a"]))
    event = object()
    assert history.record("cells", _state(["b"]), "changed", cause=event) is not None
    assert history.record("cells", _state(["b"]), "changed", cause=event) is None  # a second view of the same edit
    step = history.undo()
    with history.replaying():
        assert history.record("cells", step.before, "changed", cause=object()) is None
    assert history.can_redo and _classes(history.redo().after) == ["b"]


def test_limit_forgets_the_oldest_steps_and_clear_forgets_everything():
    history = EditHistory(limit=3)
    history.start("cells", _state(["0"]))
    for i in range(1, 6):
        history.record("cells", _state([str(i)]), f"class {i}")
    assert [s.what for s in history.undo_steps] == ["class 3", "class 4", "class 5"]
    history.clear()
    assert not history.can_undo and history.latest("cells") is None


def test_a_workspace_keeps_one_history_per_case_and_loading_starts_it_afresh(tmp_path):
    ws = Workspace.open(build("nucls", tmp_path), annotator="alice")
    first, second = ws.cases
    assert ws.history(first) is ws.history(first) and ws.history(first) is not ws.history(second)
    ws.history(first).start("nuclei", _state(["a"]))
    ws.history(first).record("nuclei", _state(["b"]), "class b")
    ws.history(second).start("nuclei", _state(["x"]))
    ws.history(second).record("nuclei", _state(["y"]), "class y")
    ws.load(first)
    assert not ws.history(first).can_undo and ws.history(first).latest("nuclei") is None
    assert ws.history(second).can_undo
    with pytest.raises(KeyError):
        ws.history("no such case")


def test_detached_histories_are_one_per_source():
    assert detached_history("a.json") is detached_history("a.json")
    assert detached_history("a.json") is not detached_history("b.json")
