"""The headless correction workflow: cases, status, save, autosave, recovery, provenance, conflicts and faults."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import napari_nsclc
from napari_nsclc.model import NsclcFormatError, PointSet
from napari_nsclc.testing import build
from napari_nsclc.workflow import ConflictError, Workspace, annotator, autosave_interval, set_annotator
from napari_nsclc.workflow import files as workflow_files
from napari_nsclc.workflow import workspace as workflow_workspace

MASK = "SegmentationClass/2.png"


@pytest.fixture(autouse=True)
def _isolated_identity(tmp_path, monkeypatch):
    """No test sees the user's stored name or an inherited NSCLC_ANNOTATOR."""
    monkeypatch.setenv("NSCLC_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("NSCLC_ANNOTATOR", raising=False)
    monkeypatch.delenv("NSCLC_AUTOSAVE_SECONDS", raising=False)


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def originals(root: Path) -> dict[str, str]:
    """sha256 of every dataset file outside the corrections folder."""
    return {
        p.relative_to(root).as_posix(): sha(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and "corrections" not in p.relative_to(root).parts
    }


def events(corrections: Path) -> list[dict]:
    log = corrections / "events.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def paint(case, rows=slice(0, 10), cols=slice(0, 10), code=1) -> tuple[np.ndarray, int]:
    """Paint a block of ``code`` into the first mask; returns the painted array and the pixels it added."""
    data = case.masks[0].data
    added = int(np.count_nonzero(data[rows, cols] != code))
    assert added > 0, "the block must change pixels for the test to mean anything"
    data[rows, cols] = code
    return data.copy(), added


@pytest.fixture
def nat(tmp_path) -> Path:
    return build("nsclc-nat", tmp_path)


# --------------------------------------------------------------------------- 1. NAT end to end


def test_nat_paint_autosave_recover_save_and_provenance(nat):
    before_files = originals(nat)
    ws = Workspace.open(nat, annotator="alice")
    assert ws.cases == ["1", "2", "3"]
    assert [ws.status(c) for c in ws.cases] == ["untouched"] * 3
    statuses = []
    ws.status_changed.connect(lambda case_id, status: statuses.append((case_id, status)))

    case = ws.load("2")
    original = case.masks[0].data.copy()
    assert np.array_equal(original, np.asarray(Image.open(nat / MASK)))
    rows, cols = slice(0, 10), slice(0, 10)
    assert np.all(original[rows, cols] == 0), "the fixture's corner must be background for an exact count"
    painted, added = paint(case, rows, cols)
    assert added == 100
    assert int(np.count_nonzero(painted != original)) == 100

    ws.mark_edited("2")
    assert ws.status("2") == "edited"
    assert [ws.status(c) for c in ("1", "3")] == ["untouched", "untouched"]

    manifest = ws.autosave("2", case)
    assert manifest == nat / "corrections/.autosave/2.json"
    assert ws.status("2") == "autosaved"
    recovered = ws.recover("2")
    assert recovered is not None
    assert recovered.masks[0].data.dtype == original.dtype
    assert np.array_equal(recovered.masks[0].data, painted)
    assert (nat / "corrections/.autosave/2").is_dir()

    results = []
    ws.saved.connect(results.append)
    paths = ws.save("2", case)
    target = nat / "corrections" / MASK
    assert paths == [target]
    assert len(results) == 1 and results[0].summary == "saved 2.png: +100 / \u22120 px tumour bed, by alice"
    assert np.array_equal(np.asarray(Image.open(target)), painted)
    assert not (nat / "corrections/.autosave/2").exists()
    assert not manifest.exists()
    assert ws.status("2") == "saved"
    assert statuses[-1] == ("2", "saved")

    record = json.loads(Path(f"{target}.provenance.json").read_text())
    assert record["annotator"] == "alice"
    saved_at = datetime.fromisoformat(record["saved_at"].replace("Z", "+00:00"))
    assert saved_at.utcoffset() == timedelta(0)
    assert abs(datetime.now(saved_at.tzinfo) - saved_at) < timedelta(minutes=5)
    assert record["case"] == "2"
    assert record["source"] == MASK
    assert record["source_sha256"] == before_files[MASK] == sha(nat / MASK)
    assert record["previous_sha256"] is None
    assert record["sha256"] == sha(target)
    assert record["plugin_version"] == napari_nsclc.__version__
    assert record["copy"] is False
    assert record["changes"] == {
        "pixels_changed": {"tumour bed": {"added": 100, "removed": 0}},
        "objects_added": 0,
        "objects_removed": 0,
        "objects_moved": 0,
        "objects_reclassified": 0,
    }
    log = events(nat / "corrections")
    assert len(log) == 1
    assert log[0]["case"] == "2" and log[0]["annotator"] == "alice" and log[0]["files"] == [MASK]

    again = ws.load("2")
    assert np.array_equal(again.masks[0].data, painted)
    assert ws.status("2") == "saved"
    first_sha = sha(target)

    # a second save: erase 4 of the painted pixels, previous_sha256 is the first file's
    again.masks[0].data[0:2, 0:2] = 0
    second = ws.save_case("2", again)
    assert second.paths == (target,)
    record = json.loads(Path(f"{target}.provenance.json").read_text())
    assert record["previous_sha256"] == first_sha
    assert record["source_sha256"] == before_files[MASK]
    assert record["changes"]["pixels_changed"] == {"tumour bed": {"added": 0, "removed": 4}}
    log = events(nat / "corrections")
    assert len(log) == 2 and log[1]["case"] == "2" and log[1]["annotator"] == "alice"

    assert originals(nat) == before_files
    assert [ws.status(c) for c in ws.cases] == ["untouched", "saved", "untouched"]
    assert not [p for p in (nat / "corrections").iterdir() if p.name.startswith(".staging")]


def test_a_save_without_changes_writes_nothing(nat):
    ws = Workspace.open(nat, annotator="alice")
    result = ws.save_case("1", ws.load("1"))
    assert result.paths == ()
    assert result.summary == "1: nothing to save, it is as loaded"
    assert events(nat / "corrections") == []
    assert ws.status("1") == "untouched"


# --------------------------------------------------------------------------- 2. conflicts


def test_conflicting_save_is_refused_and_can_be_saved_as_a_copy(nat):
    alice = Workspace.open(nat, annotator="alice")
    bob = Workspace.open(nat, annotator="bob")
    mine, theirs = alice.load("2"), bob.load("2")
    painted, _ = paint(mine, slice(0, 10), slice(0, 10))
    theirs_painted, _ = paint(theirs, slice(0, 5), slice(100, 110))
    target = nat / "corrections" / MASK
    assert alice.save("2", mine) == [target]
    first_sha = sha(target)

    with pytest.raises(ConflictError) as caught:
        bob.save("2", theirs)
    assert caught.value.path == str(target)
    assert str(target) in str(caught.value) and "\n" not in str(caught.value)
    assert sha(target) == first_sha
    assert np.array_equal(np.asarray(Image.open(target)), painted)
    assert len(events(nat / "corrections")) == 1

    (copy,) = bob.save("2", theirs, as_copy=True)
    assert copy.parent == target.parent and copy != target
    assert copy.name.startswith("2.bob-") and copy.suffix == ".png"
    assert np.array_equal(np.asarray(Image.open(copy)), theirs_painted)
    assert json.loads(Path(f"{copy}.provenance.json").read_text())["copy"] is True
    assert sha(target) == first_sha
    assert len(events(nat / "corrections")) == 2 and events(nat / "corrections")[1]["copy"] is True
    # the copy does not become the case's correction
    assert np.array_equal(Workspace.open(nat, annotator="carol").load("2").masks[0].data, painted)


# --------------------------------------------------------------------------- 3. corrupt autosaves


def _corrupt_and_recover(nat, damage):
    ws = Workspace.open(nat, annotator="alice")
    case = ws.load("2")
    paint(case)
    manifest = ws.autosave("2", case)
    damage(nat / "corrections/.autosave")
    problems = []
    ws.problem.connect(problems.append)
    assert ws.recover("2") is None
    assert len(problems) == 1
    assert "\n" not in problems[0] and str(manifest) in problems[0]
    assert not manifest.exists() and not (nat / "corrections/.autosave/2").exists()
    (aside,) = (nat / "corrections/.autosave/corrupt").iterdir()
    assert aside.name.startswith("2-")
    assert ws.status("2") == "untouched"
    assert ws.recover("2") is None and len(problems) == 1  # nothing left to offer
    return aside


def test_truncated_autosave_file_is_set_aside(nat):
    def truncate(folder):
        png = folder / "2" / MASK
        png.write_bytes(png.read_bytes()[:20])

    aside = _corrupt_and_recover(nat, truncate)
    assert (aside / "2.json").is_file() and len((aside / "2" / MASK).read_bytes()) == 20


def test_altered_autosave_file_is_set_aside(nat):
    def alter(folder):
        png = folder / "2" / MASK
        data = bytearray(png.read_bytes())
        data[-5] ^= 0xFF
        png.write_bytes(bytes(data))

    _corrupt_and_recover(nat, alter)


def test_autosave_manifest_that_is_not_json_is_set_aside(nat):
    aside = _corrupt_and_recover(nat, lambda folder: (folder / "2.json").write_text('{"case": "2", "fil'))
    assert (aside / "2.json").read_text() == '{"case": "2", "fil'


def test_autosave_manifest_of_the_wrong_shape_is_set_aside(nat):
    _corrupt_and_recover(nat, lambda folder: (folder / "2.json").write_text("[1, 2]"))


def test_discarded_autosave_is_not_offered(nat):
    ws = Workspace.open(nat, annotator="alice")
    case = ws.load("3")
    paint(case)
    ws.autosave("3", case)
    assert ws.has_autosave("3")
    ws.discard_autosave("3")
    assert not ws.has_autosave("3") and ws.recover("3") is None and ws.status("3") == "untouched"


# --------------------------------------------------------------------------- 4. points and polygons


def test_ignite_points_whole_file_edits_are_saved_and_counted(tmp_path):
    from pycocotools.coco import COCO

    path = build("ignite-pdl1", tmp_path)
    original_sha = sha(path)
    ws = Workspace.open(path, annotator="alice")
    assert ws.whole_file
    (case_id,) = ws.cases
    case = ws.load(case_id)
    cells = case.points[0]
    assert len(cells) == 12
    before = dict(zip(*np.unique(cells.classes, return_counts=True), strict=True))
    assert before == {"pd-l1 negative tumor cell": 4, "pd-l1 positive tumor cell": 4, "non-tumor cell": 4}

    coords, classes, attributes = cells.coords.copy(), list(cells.classes), list(cells.attributes)
    assert classes[0] == "pd-l1 negative tumor cell" and classes[2] == "non-tumor cell"
    classes[0] = "non-tumor cell"  # reclassify
    coords[1] += (0, 3)  # move 3 px in x
    new_cell = np.array([60.5, 60.5])
    assert np.linalg.norm(cells.coords[2] - new_cell) > 20, "the added cell must not pair with the deleted one"
    coords, classes = np.delete(coords, 2, axis=0), classes[:2] + classes[3:]  # delete
    attributes = attributes[:2] + attributes[3:]
    coords = np.vstack([coords, new_cell])  # add
    classes.append("pd-l1 positive tumor cell")
    attributes.append({})
    case.points[0] = PointSet(cells.name, coords, classes, cells.schema, attributes)

    result = ws.save_case(case_id, case)
    target = path.parent / "corrections" / path.name
    assert result.paths == (target,)
    record = json.loads(Path(f"{target}.provenance.json").read_text())
    assert record["changes"] == {
        "pixels_changed": {},
        "objects_added": 1,
        "objects_removed": 1,
        "objects_moved": 1,
        "objects_reclassified": 1,
    }
    assert record["source"] == path.name and record["source_sha256"] == original_sha

    coco = COCO(str(target))
    per_category = {cat["name"]: len(coco.getAnnIds(catIds=[cat["id"]])) for cat in coco.loadCats(coco.getCatIds())}
    assert per_category == {"pd-l1 negative tumor cell": 3, "pd-l1 positive tumor cell": 5, "non-tumor cell": 4}
    assert len(coco.getAnnIds()) == 12
    written = json.loads(target.read_text())["annotations"]
    assert len({a["id"] for a in written}) == 12
    moved = next(a for a in written if a["id"] == 2)
    assert moved["bbox"][0] == attributes[1]["coco"]["bbox"][0] + 3

    again = ws.load(case_id)
    assert np.array_equal(again.points[0].coords, coords)
    assert list(again.points[0].classes) == classes
    assert sha(path) == original_sha
    assert ws.status(case_id) == "saved"


def test_nucls_folder_reclassification_is_reloaded(tmp_path):
    root = build("nucls", tmp_path)
    before_files = originals(root)
    ws = Workspace.open(root, annotator="alice")
    assert not ws.whole_file and len(ws.cases) == 2
    case_id = ws.cases[0]
    case = ws.load(case_id)
    nuclei = case.polygons[0]
    assert nuclei.classes[2] == "lymphocyte"
    nuclei.classes[2] = "plasma_cell"
    result = ws.save_case(case_id, case)
    assert result.changes.objects_reclassified == 1
    assert result.changes.objects_added == result.changes.objects_removed == result.changes.objects_moved == 0
    assert f"csv/{case_id}.csv" in [p.relative_to(ws.corrections).as_posix() for p in result.paths]
    again = ws.load(case_id)
    assert list(again.polygons[0].classes) == ["tumor", "tumor", "plasma_cell", "fibroblast", "mitotic_figure",
                                              "macrophage"]  # fmt: skip
    other = ws.load(ws.cases[1])
    assert "plasma_cell" not in list(other.polygons[0].classes)
    assert [ws.status(c) for c in ws.cases] == ["saved", "untouched"]
    assert originals(root) == before_files


# --------------------------------------------------------------------------- 5. faults


@pytest.fixture
def saved_nat(nat):
    """NAT with a first correction of case 2 saved; returns (workspace, the edited case, the saved bytes)."""
    ws = Workspace.open(nat, annotator="alice")
    case = ws.load("2")
    paint(case, slice(0, 10), slice(0, 10))
    ws.save("2", case)
    case = ws.load("2")
    paint(case, slice(20, 30), slice(100, 110))
    target = nat / "corrections" / MASK
    return ws, case, target.read_bytes(), Path(f"{target}.provenance.json").read_bytes()


def _assert_nothing_changed(ws, case, kept, before_data):
    saved, sidecar = kept
    target = ws.corrections / MASK
    assert target.read_bytes() == saved
    assert Path(f"{target}.provenance.json").read_bytes() == sidecar
    assert np.array_equal(case.masks[0].data, before_data)
    assert len(events(ws.corrections)) == 1
    assert not [p for p in ws.corrections.iterdir() if p.name.startswith(".staging")]


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_disk_full_while_writing(saved_nat, monkeypatch):
    ws, case, *kept = saved_nat
    before_data = case.masks[0].data.copy()
    monkeypatch.setattr(workflow_files.os, "replace", _enospc)
    with pytest.raises(NsclcFormatError) as caught:
        ws.save("2", case)
    monkeypatch.undo()
    message = str(caught.value)
    assert "\n" not in message and "No space left on device" in message
    assert caught.value.path == str(ws.corrections / MASK)
    assert ".staging" not in message
    _assert_nothing_changed(ws, case, kept, before_data)
    assert ws.status("2") == "saved"


def test_disk_full_in_the_installer_only(saved_nat, monkeypatch):
    ws, case, *kept = saved_nat
    before_data = case.masks[0].data.copy()
    real_install = workflow_files.install

    def full_install(staged, target):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(workflow_files.os, "replace", _enospc)
            return real_install(staged, target)

    monkeypatch.setattr(workflow_workspace, "install", full_install)
    with pytest.raises(NsclcFormatError) as caught:
        ws.save("2", case)
    assert str(caught.value) == f"{ws.corrections / MASK}: cannot be written: No space left on device"
    _assert_nothing_changed(ws, case, kept, before_data)


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_read_only_corrections_folder_simulated(saved_nat, monkeypatch, code):
    ws, case, *kept = saved_nat
    before_data = case.masks[0].data.copy()

    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code), kwargs.get("dir"))

    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    with pytest.raises(NsclcFormatError) as caught:
        ws.save("2", case)
    monkeypatch.undo()
    assert str(caught.value) == f"{ws.corrections}: is read-only; choose another corrections folder (corrections=...)"
    _assert_nothing_changed(ws, case, kept, before_data)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="chmod does not stop root (simulated above)")
def test_read_only_corrections_folder_for_real(saved_nat):
    ws, case, *kept = saved_nat
    before_data = case.masks[0].data.copy()
    os.chmod(ws.corrections, 0o555)
    try:
        with pytest.raises(NsclcFormatError) as caught:
            ws.save("2", case)
    finally:
        os.chmod(ws.corrections, 0o755)
    assert caught.value.path == str(ws.corrections) and "read-only" in str(caught.value)
    _assert_nothing_changed(ws, case, kept, before_data)


def test_corrections_folder_removed_during_a_save(saved_nat, monkeypatch):
    ws, case, *_ = saved_nat
    before_data = case.masks[0].data.copy()
    real_stage = Workspace._stage

    def stage_then_vanish(self, *args):
        staged = real_stage(self, *args)
        shutil.rmtree(self.corrections)
        return staged

    monkeypatch.setattr(Workspace, "_stage", stage_then_vanish)
    with pytest.raises(NsclcFormatError) as caught:
        ws.save("2", case)
    assert not isinstance(caught.value, ConflictError)
    assert caught.value.path == str(ws.corrections)
    assert "vanished" in str(caught.value) and "\n" not in str(caught.value)
    assert not ws.corrections.exists(), "the failed save must not re-create the folder"
    assert np.array_equal(case.masks[0].data, before_data)


def test_disk_full_during_autosave_names_the_autosave(nat, monkeypatch):
    ws = Workspace.open(nat, annotator="alice")
    case = ws.load("2")
    paint(case)
    monkeypatch.setattr(workflow_files.os, "replace", _enospc)
    with pytest.raises(NsclcFormatError) as caught:
        ws.autosave("2", case)
    monkeypatch.undo()
    assert ".staging" not in str(caught.value)
    assert caught.value.path == str(nat / "corrections/.autosave/2" / MASK)
    assert not ws.has_autosave("2")


# --------------------------------------------------------------------------- 6. read-only dataset


def test_read_only_dataset_needs_a_corrections_folder(nat, tmp_path, monkeypatch):
    real_access = os.access
    dataset = nat.resolve()

    def no_write_in_dataset(path, mode, *args, **kwargs):
        if mode & os.W_OK and Path(path).resolve() == dataset:
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", no_write_in_dataset)
    before_files = originals(nat)
    with pytest.raises(NsclcFormatError) as caught:
        Workspace.open(nat, annotator="alice")
    assert "read-only" in str(caught.value) and "corrections=" in str(caught.value)
    assert Path(caught.value.path).resolve() == dataset

    elsewhere = tmp_path / "elsewhere"
    ws = Workspace.open(nat, corrections=elsewhere, annotator="alice")
    case = ws.load("2")
    painted, _ = paint(case)
    assert ws.save("2", case) == [elsewhere / MASK]
    assert np.array_equal(np.asarray(Image.open(elsewhere / MASK)), painted)
    assert len(events(elsewhere)) == 1
    assert not (nat / "corrections").exists()
    assert originals(nat) == before_files
    assert np.array_equal(ws.load("2").masks[0].data, painted)

    # napari's path: the dataset is read once, and corrections go to the user's data folder
    import platformdirs

    from napari_nsclc import registry

    monkeypatch.setattr(platformdirs, "user_data_dir", lambda *a, **k: str(tmp_path / "user-data"))
    monkeypatch.setattr(workflow_workspace, "_OPENED", {})
    reads = []
    real_read = registry.read
    monkeypatch.setattr(registry, "read", lambda *a, **k: reads.append(a[0]) or real_read(*a, **k))
    shared_ws = workflow_workspace.open_shared(nat)
    assert len(reads) == 1
    assert shared_ws.corrections.parent == tmp_path / "user-data" / "corrections"
    assert shared_ws.corrections.name.startswith(f"{nat.name}-")
    assert workflow_workspace.open_shared(nat) is shared_ws and len(reads) == 1


# --------------------------------------------------------------------------- 7. identity


def test_annotator_from_settings_and_environment(tmp_path, monkeypatch, nat):
    assert annotator() is None
    assert set_annotator("  dana ") == "dana"
    settings = tmp_path / "config" / "settings.json"
    assert json.loads(settings.read_text()) == {"annotator": "dana"}
    assert annotator() == "dana"
    with pytest.raises(ValueError):
        set_annotator("   ")

    ws = Workspace.open(nat)
    assert ws.annotator == "dana"
    case = ws.load("1")
    paint(case)
    ws.save("1", case)
    assert json.loads((nat / "corrections/SegmentationClass/1.png.provenance.json").read_text())["annotator"] == "dana"
    assert events(nat / "corrections")[0]["annotator"] == "dana"

    monkeypatch.setenv("NSCLC_ANNOTATOR", "erin")
    assert annotator() == "erin"
    assert Workspace.open(nat).annotator == "erin"
    assert json.loads(settings.read_text()) == {"annotator": "dana"}  # the override is not stored


def test_damaged_settings_file_asks_again(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "settings.json").write_text("{not json")
    assert annotator() is None


def test_save_without_annotator_is_refused(nat):
    ws = Workspace.open(nat)
    assert ws.annotator is None
    case = ws.load("2")
    before_data = paint(case)[0]
    with pytest.raises(NsclcFormatError) as caught:
        ws.save("2", case)
    assert "no annotator name" in str(caught.value) and "NSCLC_ANNOTATOR" in str(caught.value)
    assert not (nat / "corrections" / MASK).exists()
    assert np.array_equal(case.masks[0].data, before_data)


# --------------------------------------------------------------------------- 8. autosave interval


@pytest.mark.parametrize(
    ("value", "expected"), [(None, 60.0), ("5", 5.0), ("2.5", 2.5), ("0", 0.1), ("-3", 0.1), ("soon", 60.0)]
)
def test_autosave_interval(monkeypatch, value, expected):
    if value is not None:
        monkeypatch.setenv("NSCLC_AUTOSAVE_SECONDS", value)
    assert autosave_interval() == expected


# --------------------------------------------------------------------------- 9. filtering


def test_filtered_by_status_split_and_text(nat):
    ws = Workspace.open(nat, annotator="alice")
    assert ws.filtered() == ["1", "2", "3"]
    assert ws.filtered(status="untouched") == ["1", "2", "3"]
    case = ws.load("2")
    paint(case)
    ws.save("2", case)
    ws.mark_edited("3")
    assert ws.filtered(status="saved") == ["2"]
    assert ws.filtered(status="edited") == ["3"]
    assert ws.filtered(status="untouched") == ["1"]
    assert ws.filtered(status="autosaved") == []
    assert ws.filtered(text=" 3 ") == ["3"]
    assert ws.filtered(text="x") == []
    assert [ws.split_of(c) for c in ws.cases] == [None, None, None]  # NSCLC-NAT has no splits
    assert ws.filtered(split="train") == []
    assert ws.filtered(status="saved", text="2") == ["2"]
    with pytest.raises(KeyError):
        ws.load("4")


def test_lung_box_moved_to_another_slice_leaves_the_old_slice_empty_in_the_correction(tmp_path):
    from defusedxml import ElementTree

    root = build("lung-pet-ct-dx", tmp_path)
    before_files = originals(root)
    ws = Workspace.open(root, annotator="alice")
    case_id = ws.cases[0]
    case = ws.load(case_id)
    boxes = case.boxes[0]
    assert boxes.planes.tolist() == [2, 3, 4, 5, 6, 7, 8]
    uids = case.image.metadata["sop_instance_uids"]
    boxes.planes[0] = 9  # slice 2's only box goes to slice 9, which had none
    result = ws.save_case(case_id, case)
    folder = ws.corrections / "Annotation" / "A0001"
    assert sorted(result.paths) == sorted([folder / f"{uids[2]}.xml", folder / f"{uids[9]}.xml"])
    assert result.changes.objects_moved == 1 and result.changes.objects_added == result.changes.objects_removed == 0

    emptied = ElementTree.parse(folder / f"{uids[2]}.xml").getroot()
    assert emptied.tag == "annotation" and emptied.findall("object") == []
    assert emptied.find("size/width").text == "64"  # the original's header is kept
    (moved,) = ElementTree.parse(folder / f"{uids[9]}.xml").getroot().findall("object")
    assert moved.find("name").text == "A"
    sidecar = json.loads(Path(f"{folder / uids[9]}.xml.provenance.json").read_text())
    # a slice with no original XML: its source is the series folder, which has no single checksum
    assert sidecar["source"].startswith("Lung-PET-CT-Dx/") and sidecar["source_sha256"] is None

    reopened = Workspace.open(root, annotator="bob").load(case_id)
    assert sorted(reopened.boxes[0].planes.tolist()) == [3, 4, 5, 6, 7, 8, 9]
    assert originals(root) == before_files


def test_cocahis_correction_holds_only_gt_and_is_read_back_over_the_originals(tmp_path):
    import h5py

    path = build("cocahis", tmp_path)
    original_sha = sha(path)
    ws = Workspace.open(path, annotator="alice")
    assert ws.whole_file and len(ws.cases) == 2
    first, second = ws.cases
    case = ws.load(second)
    gt1 = next(m for m in case.masks if m.name == "GT1")
    before = np.asarray(gt1.data).copy()
    gt1.data = before.copy()
    gt1.data[:8, :8] = 1 - before[:8, :8]  # flip a corner
    flipped = np.asarray(gt1.data).copy()

    ws.mark_edited(second)
    ws.autosave(second, case)
    recovered = ws.recover(second)
    np.testing.assert_array_equal(next(m for m in recovered.masks if m.name == "GT1").data, flipped)

    result = ws.save_case(second, case)
    (target,) = result.paths
    assert target == ws.corrections / path.name
    with h5py.File(target, "r") as h5:  # read back with h5py: GT only, the other image untouched
        assert "HE" not in h5
        with h5py.File(path, "r") as original:
            np.testing.assert_array_equal(h5["GT/GT1"][0], original["GT/GT1"][0])
            foreground = int(original["GT/GT1"][:].max()) or 1
        np.testing.assert_array_equal(h5["GT/GT1"][1] != 0, flipped != 0)
        assert set(np.unique(h5["GT/GT1"][1]).tolist()) <= {0, foreground}

    reopened = Workspace.open(path, annotator="bob")
    again = reopened.load(second)
    np.testing.assert_array_equal(next(m for m in again.masks if m.name == "GT1").data, flipped)
    assert again.image.data is not None and np.asarray(again.image.data).shape[-1] == 3  # H&E from the original
    np.testing.assert_array_equal(next(m for m in reopened.load(first).masks if m.name == "GT1").data,
                                  next(m for m in ws.original(first).masks if m.name == "GT1").data)
    assert reopened.status(second) == "saved" and sha(path) == original_sha

    # saving the other image keeps this one's correction (the one file holds both)
    other = reopened.load(first)
    next(m for m in other.masks if m.name == "GT2").data[0, 0] ^= 1
    reopened.save(first, other)
    np.testing.assert_array_equal(next(m for m in Workspace.open(path).load(second).masks if m.name == "GT1").data,
                                  flipped)


def test_lung_patient_folder_corrects_into_the_collections_corrections(tmp_path):
    root = build("lung-pet-ct-dx", tmp_path)
    patient = root / "Lung-PET-CT-Dx" / "Lung_Dx-A0001"
    ws = Workspace.open(patient, annotator="alice")
    assert ws.root == root and ws.corrections == root / "corrections"
    case_id = ws.cases[0]
    case = ws.load(case_id)
    uid = case.image.metadata["sop_instance_uids"][int(case.boxes[0].planes[0])]
    case.boxes[0].bounds[0] += 1  # one box, one pixel
    result = ws.save_case(case_id, case)
    assert result.paths == (root / "corrections" / "Annotation" / "A0001" / f"{uid}.xml",)  # that slice's XML only
    assert result.changes.objects_moved == 1
    # the same collection opened from its root sees that correction
    assert Workspace.open(root).status(case_id) == "saved"


def test_another_annotators_save_keeps_my_autosave(nat):
    alice = Workspace.open(nat, annotator="alice")
    mine = alice.load("2")
    painted, _ = paint(mine)
    alice.mark_edited("2")
    alice.autosave("2", mine)

    bob = Workspace.open(nat, annotator="bob")
    theirs = bob.load("2")
    paint(theirs, rows=slice(20, 24), cols=slice(20, 24))
    bob.save("2", theirs)
    assert alice.has_autosave("2")  # her unsaved work is still there
    with pytest.raises(ConflictError):
        alice.save("2", mine)
    assert alice.has_autosave("2") and alice.status("2") == "autosaved"
    np.testing.assert_array_equal(Workspace.open(nat, annotator="alice").recover("2").masks[0].data, painted)

    alice.save("2", mine, as_copy=True)
    assert not alice.has_autosave("2")  # her own save: the autosave is done with


def test_a_save_after_restoring_is_refused_if_someone_saved_meanwhile(nat):
    alice = Workspace.open(nat, annotator="alice")
    mine = alice.load("2")
    painted, _ = paint(mine)
    alice.mark_edited("2")
    alice.autosave("2", mine)  # ... and napari crashes

    bob = Workspace.open(nat, annotator="bob")
    theirs = bob.load("2")
    paint(theirs, rows=slice(20, 24), cols=slice(20, 24))
    (bobs,) = bob.save("2", theirs)
    bob_sha = sha(bobs)

    restarted = Workspace.open(nat, annotator="alice")
    restored = restarted.recover("2")
    np.testing.assert_array_equal(restored.masks[0].data, painted)
    with pytest.raises(ConflictError):  # her edits were made on the original, not on bob's correction
        restarted.save("2", restored)
    assert sha(bobs) == bob_sha

    # with nobody in between, restoring and saving just works
    again = Workspace.open(nat, annotator="carol")
    case = again.load("3")
    paint(case)
    again.mark_edited("3")
    again.autosave("3", case)
    after_crash = Workspace.open(nat, annotator="carol")
    assert after_crash.save("3", after_crash.recover("3"))
