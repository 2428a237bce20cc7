"""The Classes dock bound to the dataset's Workspace, in a real napari viewer (run under ``xvfb-run -a``).

The dock keeps no state: its undo history is the case's, in the workspace;
its Save writes a correction through the workspace, with provenance; a class
change marks the case edited even with no Cases dock open.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from napari_nsclc import workflow
from napari_nsclc.testing import build
from napari_nsclc.workflow import workspace as workspace_module


@pytest.fixture(autouse=True)
def _fresh_workspaces(tmp_path, monkeypatch):
    monkeypatch.setenv("NSCLC_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("NSCLC_ANNOTATOR", "alice")
    monkeypatch.setattr(workspace_module, "_OPENED", {})


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _dock(viewer):
    from napari_nsclc.widgets.class_editor import ClassEditorWidget

    widget = ClassEditorWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Classes")
    return widget


def test_pdl1_reclassify_save_correction_with_provenance_and_undo_in_the_workspace(make_napari_viewer, tmp_path):
    from pycocotools.coco import COCO

    path = build("ignite-pdl1", tmp_path)
    original_sha = _sha(path)
    viewer = make_napari_viewer()
    viewer.open(path, plugin="napari-nsclc")
    ws = workflow.shared(path)
    (case_id,) = ws.cases
    cells = viewer.layers["cells"]
    viewer.layers.selection.active = cells
    widget = _dock(viewer)
    assert widget.history() is ws.history(case_id)  # the dock's undo history is the case's

    assert cells.features["class"].iloc[0] == "pd-l1 negative tumor cell"
    assert widget.assign([0], "non-tumor cell") == 1
    assert ws.status(case_id) == "edited"  # no Cases dock open: the Classes dock told the workspace
    assert [step.what for step in ws.history(case_id).undo_steps] == ["class non-tumor cell"]

    # a second dock on the same viewer replays the same history: none of it lived in the first
    viewer.window.remove_dock_widget(widget)
    other = _dock(viewer)
    viewer.layers.selection.active = cells
    assert other.undo() and cells.features["class"].iloc[0] == "pd-l1 negative tumor cell"
    assert other.redo() and cells.features["class"].iloc[0] == "non-tumor cell"

    written = other.save_correction()
    target = path.parent / "corrections" / path.name
    assert written == [target]
    assert other.status.text() == f"saved {path.name}: 1 reclassified, by alice"
    record = json.loads(Path(f"{target}.provenance.json").read_text())
    assert record["annotator"] == "alice" and record["source"] == path.name
    assert record["source_sha256"] == original_sha == _sha(path)
    assert record["previous_sha256"] is None and record["sha256"] == _sha(target)
    assert record["changes"]["objects_reclassified"] == 1
    assert record["changes"]["objects_added"] == record["changes"]["objects_removed"] == 0
    coco = COCO(str(target))
    per_category = {c["name"]: len(coco.getAnnIds(catIds=[c["id"]])) for c in coco.loadCats(coco.getCatIds())}
    assert per_category == {"pd-l1 negative tumor cell": 3, "pd-l1 positive tumor cell": 4, "non-tumor cell": 5}
    assert ws.status(case_id) == "saved"

    # loading the case again starts its history afresh
    ws.load(case_id)
    assert not ws.history(case_id).can_undo and not other.undo()


def test_conflicting_save_from_the_classes_dock_keeps_a_copy(make_napari_viewer, tmp_path):
    path = build("ignite-pdl1", tmp_path)
    viewer = make_napari_viewer()
    viewer.open(path, plugin="napari-nsclc")
    ws = workflow.shared(path)
    (case_id,) = ws.cases
    viewer.layers.selection.active = viewer.layers["cells"]
    widget = _dock(viewer)
    widget.assign([1], "non-tumor cell")
    assert widget.save_correction()

    bob = workflow.Workspace.open(path, annotator="bob")
    theirs = bob.load(case_id)
    theirs.points[0].classes[3] = "non-tumor cell"
    bob.save(case_id, theirs)
    target = path.parent / "corrections" / path.name
    bobs = _sha(target)

    widget.assign([2], "pd-l1 positive tumor cell")
    asked = []
    widget.ask = lambda question, text: asked.append((question, text)) or "copy"
    (copy,) = widget.save_correction()
    assert asked[0][0] == "conflict-copy" and path.name in asked[0][1]
    assert _sha(target) == bobs  # bob's correction is not overwritten
    assert copy.parent == target.parent and copy.name.startswith(f"{path.stem}.alice-") and copy.suffix == ".json"
    assert json.loads(Path(f"{copy}.provenance.json").read_text())["copy"] is True

    widget.ask = lambda question, text: "cancel"
    widget.assign([4], "non-tumor cell")
    assert widget.save_correction() == []
    assert "changed" in widget.status.text() and _sha(target) == bobs


def test_nucls_centroid_classes_are_saved_for_their_contours(make_napari_viewer, tmp_path):
    root = build("nucls", tmp_path)
    viewer = make_napari_viewer()
    viewer.open(root, plugin="napari-nsclc")
    ws = workflow.shared(root)
    case_id = ws.cases[0]
    shapes = viewer.layers["nuclei"]
    viewer.layers.selection.active = shapes
    widget = _dock(viewer)
    points = widget.show_centroids(shapes)
    assert widget.layer is points and not shapes.visible
    widget.assign([2], "plasma_cell")  # on the centroids only; the contours still say lymphocyte
    assert shapes.features["class"].iloc[2] == "lymphocyte"

    written = widget.save_correction()
    csv = ws.corrections / "csv" / f"{case_id}.csv"
    assert csv in written
    header, *rows = csv.read_text().splitlines()
    column = header.split(",").index("raw_classification")
    assert rows[2].split(",")[column] == "plasma_cell"
    saved = ws.load(case_id)
    assert saved.polygons[0].classes[2] == "plasma_cell" and len(saved.points) == 0  # no stray centroid layer
    np.testing.assert_equal(len(saved.polygons[0]), len(shapes.data))


def test_a_file_outside_any_workspace_exports_but_does_not_save_in_place(make_napari_viewer, tmp_path):
    from napari_nsclc.widgets.class_editor import ClassEditorWidget

    viewer = make_napari_viewer()
    points = viewer.add_points(np.array([[10.0, 10.0], [20.0, 20.0]]), features={"class": ["a", "b"]}, name="cells")
    widget = ClassEditorWidget(viewer)
    viewer.layers.selection.active = points
    assert widget.layer is points and not widget.save_button.isEnabled()
    assert widget.save_correction() == [] and "Export" in widget.status.text()
    widget.assign([0], "b")
    assert widget.undo() and list(points.features["class"]) == ["a", "b"]
