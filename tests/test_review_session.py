"""A workspace bound to a review store, headless: saving starts a review, submit, request changes, pin, approve."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_nsclc.model import PointSet
from napari_nsclc.review import IllegalTransition, NotAllowed, open_store
from napari_nsclc.review.session import STORE_VARIABLE, review_of, store_url_for, submission_details
from napari_nsclc.testing import build
from napari_nsclc.workflow import Workspace


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("NSCLC_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("NSCLC_ANNOTATOR", raising=False)
    monkeypatch.delenv(STORE_VARIABLE, raising=False)


@pytest.fixture
def nat(tmp_path) -> Path:
    return build("nsclc-nat", tmp_path)


def test_the_store_is_the_corrections_folders_unless_the_environment_names_one(nat, tmp_path, monkeypatch):
    ws = Workspace.open(nat, annotator="alice")
    assert store_url_for(ws) == f"sqlite:///{(nat / 'corrections' / 'review.db').resolve()}"
    monkeypatch.setenv(STORE_VARIABLE, "postgresql://lab@db.example.org/review")
    assert store_url_for(ws) == "postgresql://lab@db.example.org/review"


def test_reading_a_review_creates_no_store(nat):
    ws = Workspace.open(nat, annotator="alice")
    review = review_of(ws)
    assert review is review_of(ws)  # one per workspace
    assert review.states() == {"1": "new", "2": "new", "3": "new"}
    assert review.comments("2") == [] and review.pinned("2") == [] and review.events("2") == []
    assert not (nat / "corrections").exists()


def test_the_full_loop_on_a_nat_case(nat):
    student = Workspace.open(nat, annotator="alice")
    review = review_of(student)
    states = []
    review.state_changed.connect(lambda case_id, state: states.append((case_id, state)))
    assert review.can_submit("2") == "nothing is saved for this case yet"
    case = student.load("2")
    mask = case.masks[0].data
    before = mask.copy()
    mask[:20, :20] = 1  # tumour bed
    changed = int(np.count_nonzero(before != mask))
    student.save("2", case)  # a save starts the review
    assert review.state("2") == "in_progress" and states == [("2", "in_progress")]
    event = review.submit("2", "alice")
    assert event.to_state == "submitted" and states[-1] == ("2", "submitted")
    masks = event.details["masks"]
    assert len(masks) == len(case.masks)
    painted = masks[case.masks[0].name]
    assert painted["pixels_changed"] == changed
    assert 0 < painted["mean_dice"] < 1
    with pytest.raises(ValueError, match="it is submitted"):
        review.submit("2", "alice")

    store = review.store
    store.set_supervisors(["dr_smith"])
    location = store.location(nat.name)
    assert (location.source, location.corrections) == (str(nat.resolve()), str((nat / "corrections").resolve()))
    assert store.queue_entry("2", dataset=nat.name).annotators == ("alice",)

    with pytest.raises(NotAllowed):
        review.approve("2", "alice")
    pinned = review.pin("2", "dr_smith", "the bed misses the lower gland", (30.0, 12.5))
    review.request_changes("2", "dr_smith", "see the pinned comment")
    assert review.state("2") == "changes_requested"
    assert [(c.author, c.text, c.position) for c in review.pinned("2")] == [
        ("dr_smith", "the bed misses the lower gland", (30.0, 12.5))]
    assert [c.text for c in review.comments("2")] == ["the bed misses the lower gland", "see the pinned comment"]
    assert pinned.position == (30.0, 12.5)
    with pytest.raises(ValueError, match="needs a comment"):
        review.request_changes("2", "dr_smith", " ")

    case = student.load("2")
    assert np.count_nonzero(case.masks[0].data[:20, :20] != 0)
    case.masks[0].data[:20, :20] = 0  # the fix: that was not tumour bed
    assert student.save("2", case)  # changes_requested -> in_progress
    assert review.state("2") == "in_progress"
    review.submit("2", "alice")
    problems = []
    review.problem.connect(problems.append)
    case.masks[0].data[:3, :3] = 1
    student.save("2", case)  # after submitting: allowed, and said
    assert problems == [f"{nat.name}/2 is submitted: the supervisor will see this newer correction, not the one submitted"]
    review.approve("2", "dr_smith", "good")
    assert review.state("2") == "approved"
    with pytest.raises(IllegalTransition):
        review.approve("2", "dr_smith")
    steps = [(e.what, e.who, e.to_state) for e in review.events("2")]
    assert steps == [
        ("add", "alice", "new"), ("assign", "alice", "new"), ("transition", "alice", "in_progress"),
        ("transition", "alice", "submitted"), ("comment", "dr_smith", "submitted"),
        ("transition", "dr_smith", "changes_requested"), ("transition", "alice", "in_progress"),
        ("transition", "alice", "submitted"), ("transition", "dr_smith", "approved"),
    ]  # fmt: skip
    # another process sees the same store
    with open_store(store_url_for(student)) as other:
        assert other.state("2", dataset=nat.name) == "approved"


def test_unsaved_edits_cannot_be_submitted(nat):
    ws = Workspace.open(nat, annotator="alice")
    review = review_of(ws)
    ws.save("1", _painted(ws.load("1")))
    ws.mark_edited("1")
    assert review.can_submit("1") == "save the correction first"
    with pytest.raises(ValueError, match="cannot be submitted: save the correction first"):
        review.submit("1", "alice")
    assert review.state("1") == "in_progress"


def test_a_store_that_cannot_be_written_does_not_undo_the_save(nat, monkeypatch, tmp_path):
    (tmp_path / "not-a-folder").write_text("")
    monkeypatch.setenv(STORE_VARIABLE, f"sqlite:///{tmp_path / 'not-a-folder' / 'review.db'}")
    ws = Workspace.open(nat, annotator="alice")
    problems = []
    review_of(ws).problem.connect(problems.append)
    written = ws.save("1", _painted(ws.load("1")))
    assert written and all(path.is_file() for path in written)
    assert ws.status("1") == "saved"
    (message,) = problems
    assert "not-a-folder" in message and "the review state of 1 was not updated" in message and "\n" not in message


def _painted(case):
    case.masks[0].data[:5, :5] = 1
    return case


def test_submission_details_of_cells_match_within_ignites_radius(tmp_path):
    ws = Workspace.open(build("ignite-pdl1", tmp_path), annotator="alice")
    (case_id,) = ws.cases
    original = ws.original(case_id)
    case = ws.load(case_id)
    cells = case.points[0]
    classes = list(cells.classes)
    classes[0] = "non-tumor cell"
    coords = cells.coords.copy()
    coords[1] += (0, 3)  # moved 3 px: still the same cell
    case.points[0] = PointSet(cells.name, coords, classes, cells.schema, list(cells.attributes))
    details = submission_details(original, case)
    (layer,) = details["points"]
    points = details["points"][layer]
    assert (points["n_original"], points["n_corrected"], points["matched"]) == (12, 12, 12)
    assert points["f1"] == 1.0  # detection: every cell still there
    negative = points["per_class"]["pd-l1 negative tumor cell"]
    assert negative["recall"] == 0.75 and negative["precision"] == 1.0 and negative["support"] == 4
    assert points["kappa"] < 1.0
    assert details["masks"] == {}
    assert details["boxes"]["annotated region"]["f1"] == 1.0  # the region box, untouched
