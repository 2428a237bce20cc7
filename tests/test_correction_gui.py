"""The Cases dock bound to a Workspace, in a real napari viewer: autosave, restore, prompts, conflicts.

Run under ``xvfb-run -a``. Questions the dock asks go through ``CaseNavigator.ask``,
answered here by a script.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from napari_nsclc import workflow
from napari_nsclc.testing import build
from napari_nsclc.widgets.case_navigator import CaseNavigator
from napari_nsclc.workflow import workspace as workspace_module


def _answers(navigator, *answers):
    asked = []
    queue = list(answers)
    navigator.ask = lambda question, text: asked.append(question) or queue.pop(0)
    return asked


def test_paint_autosave_restore_save_prompt_and_conflict(make_napari_viewer, tmp_path, monkeypatch):
    monkeypatch.setenv("NSCLC_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("NSCLC_ANNOTATOR", "alice")
    monkeypatch.setattr(workspace_module, "_OPENED", {})
    root = build("nsclc-nat", tmp_path)
    original = root / "SegmentationClass" / "1.png"
    original_sha = hashlib.sha256(original.read_bytes()).hexdigest()

    viewer = make_napari_viewer()
    viewer.open(root, plugin="napari-nsclc")
    navigator = CaseNavigator(viewer)
    ws = navigator.workspace
    assert ws is workflow.shared(root)  # adopted from the reader: the dataset was read once
    seg = viewer.layers["tumour bed (SegmentationClass)"]
    seg.brush_size = 5
    seg.paint((10, 10), 1)
    painted = np.asarray(seg.data).copy()
    assert ws.status("1") == "edited"
    navigator.autosave_now()
    assert ws.status("1") == "autosaved"

    # "restart": a new viewer and a new workspace on the same folder offer the autosave
    monkeypatch.setattr(workspace_module, "_OPENED", {})
    viewer2 = make_napari_viewer()
    navigator2 = CaseNavigator(viewer2)
    asked = _answers(navigator2, "restore")
    navigator2.set_source(root)
    assert asked == ["restore"]
    np.testing.assert_array_equal(viewer2.layers["tumour bed (SegmentationClass)"].data, painted)
    ws2 = navigator2.workspace
    assert ws2.status("1") == "edited"

    written = navigator2.save_current()
    correction = root / "corrections" / "SegmentationClass" / "1.png"
    assert written == [correction]
    record = json.loads((root / "corrections" / "SegmentationClass" / "1.png.provenance.json").read_text())
    assert record["annotator"] == "alice" and record["source"] == "SegmentationClass/1.png"
    assert record["source_sha256"] == original_sha == hashlib.sha256(original.read_bytes()).hexdigest()
    added = int((painted == 1).sum() - (np.asarray(ws2.original("1").masks[0].data) == 1).sum())
    assert record["changes"]["pixels_changed"] == {"tumour bed": {"added": added, "removed": 0}}
    assert navigator2.status.text() == f"saved 1.png: +{added:,} / −0 px tumour bed, by alice"
    assert not ws2.has_autosave("1")

    # leaving with unsaved edits asks; "cancel" stays on the case
    layer = viewer2.layers["tumour bed (SegmentationClass)"]
    layer.paint((40, 40), 1)
    asked = _answers(navigator2, "cancel")
    navigator2.next_case()
    assert asked == ["unsaved"] and navigator2.index == 0

    # someone else saves case 1 meanwhile: our save is refused, and we keep ours as a copy
    other = workflow.Workspace.open(root, annotator="bob")
    theirs = other.load("1")
    theirs.masks[0].data[0:4, 0:4] = 1
    other.save("1", theirs)
    their_bytes = correction.read_bytes()
    asked = _answers(navigator2, "copy")
    written = navigator2.save_current()
    assert asked == ["conflict"]
    assert len(written) == 1 and written[0].name.startswith("1.alice-") and written[0].suffix == ".png"
    assert correction.read_bytes() == their_bytes  # never overwritten silently
