"""A medical student's correction session, end to end, in real napari viewers run as subprocesses.

Each test builds a fixture dataset, then

1. runs ``session_driver.py … crash``: a shown napari viewer opens the dataset
   with napari-nsclc, the Cases dock is added, the student edits, the dock's own
   timer autosaves (``NSCLC_AUTOSAVE_SECONDS=0.5``), and the process is killed
   with a real SIGKILL;
2. runs ``session_driver.py … resume``: a new viewer on the same folder, the
   dock's real "restore" message box answered by clicking *Restore*, a save, a
   new edit and an attempt to leave the case (the real "unsaved" box, answered
   *Cancel*); while the driver waits, this process saves the same case as
   another annotator, then the driver saves again and the dock must refuse (the
   real "conflict" box, answered *Cancel*);
3. checks what is on disk with readers independent of the plugin (scikit-image
   for PNGs, the ``csv`` module for NuCLS tables) and against the values the
   driver recorded.

Run under ``xvfb-run -a``. The driver's protocol is described in ``session_driver.py``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from skimage.io import imread

import napari_nsclc
from napari_nsclc import workflow
from napari_nsclc.model import NsclcFormatError
from napari_nsclc.testing import build

pytestmark = pytest.mark.gui  # real napari windows, in subprocesses

DRIVER = Path(__file__).with_name("session_driver.py")
#: Seconds to wait for any line from a driver (napari starts in about 5 s).
TIMEOUT = 120
SIDECAR_KEYS = {"annotator", "saved_at", "case", "source", "source_sha256", "previous_sha256", "sha256",
                "plugin_version", "changes", "copy"}  # fmt: skip
RESTORE = {"title": "Autosaved corrections found", "buttons": ["Discard", "Restore"]}
UNSAVED = {"title": "Unsaved corrections", "buttons": ["Cancel", "Discard", "Save"]}
CONFLICT = {"title": "Changed by someone else", "buttons": ["Cancel", "Reload theirs", "Save mine as a copy"]}


# --------------------------------------------------------------------------- driving a subprocess


class Session:
    """One ``session_driver.py`` subprocess; its ``@@ TAG json`` lines are read with a timeout."""

    def __init__(self, flow: str, phase: str, root: Path, env: dict, logs: Path):
        self.name = f"{flow} {phase}"
        self.stderr_path = logs / f"{flow}-{phase}.stderr"
        self.other_stdout: list[str] = []
        with open(self.stderr_path, "w") as stderr:
            self.proc = subprocess.Popen([sys.executable, str(DRIVER), flow, phase, str(root)], env=env, text=True,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr)  # fmt: skip
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def diagnostics(self) -> str:
        stderr = self.stderr_path.read_text(errors="replace")[-6000:]
        return f"\n--- {self.name} stderr (last 6000 chars) ---\n{stderr}\n--- other stdout ---\n" + "".join(
            self.other_stdout[-40:]
        )

    def expect(self, tag: str, timeout: float = TIMEOUT):
        """The payload of the next ``@@ <tag>`` line; fails on ``@@ ERROR``, on exit and after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"{self.name}: no {tag} line after {timeout} s{self.diagnostics()}")
            if line is None:
                pytest.fail(f"{self.name}: exited with {self.proc.wait()} before {tag}{self.diagnostics()}")
            if not line.startswith("@@ "):
                self.other_stdout.append(line)
                continue
            got, _, payload = line[3:].partition(" ")
            if got == "ERROR":
                pytest.fail(f"{self.name} failed:\n{json.loads(payload)}{self.diagnostics()}")
            if got != tag:
                pytest.fail(f"{self.name}: expected {tag}, got {got}: {payload[:2000]}{self.diagnostics()}")
            return json.loads(payload)

    def send(self, text: str) -> None:
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def finish(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.name}: still running {timeout} s after its last line{self.diagnostics()}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


@pytest.fixture
def spawn(tmp_path):
    """Start driver subprocesses (alice's sessions); every one still running is killed at the end."""
    if not os.environ.get("DISPLAY"):
        pytest.fail("no DISPLAY: run the tests under xvfb-run -a")
    repo = str(Path(napari_nsclc.__file__).resolve().parents[1])
    env = dict(os.environ, NSCLC_AUTOSAVE_SECONDS="0.5", NSCLC_ANNOTATOR="alice",
               NSCLC_CONFIG_DIR=str(tmp_path / "config"), NAPARI_CONFIG=str(tmp_path / "napari" / "settings.yaml"),
               PYTHONPATH=os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")])))  # fmt: skip
    logs = tmp_path / "logs"
    logs.mkdir()
    sessions: list[Session] = []

    def start(flow: str, phase: str, root: Path) -> Session:
        session = Session(flow, phase, root, env, logs)
        sessions.append(session)
        return session

    try:
        yield start
    finally:
        for session in sessions:
            session.kill()


def crash(session: Session) -> None:
    """SIGKILL the session, which must still be running, and check that the signal is what ended it."""
    assert session.proc.poll() is None, f"{session.name} exited by itself{session.diagnostics()}"
    os.kill(session.pid, signal.SIGKILL)
    assert session.proc.wait(timeout=30) == -signal.SIGKILL


# --------------------------------------------------------------------------- independent checks


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def dataset_files(root: Path) -> dict[str, str]:
    """sha256 of every file of the dataset outside its corrections folder."""
    return {p.relative_to(root).as_posix(): sha256(p) for p in sorted(root.rglob("*"))
            if p.is_file() and "corrections" not in p.relative_to(root).parts}  # fmt: skip


def check_prompt(asked: dict, expected: dict, text: str, answer: str) -> None:
    assert asked["class"] == "QMessageBox"
    assert asked["title"] == expected["title"]
    assert asked["text"] == text
    assert sorted(asked["buttons"]) == expected["buttons"]
    assert asked["answer"] == answer


def check_saved_at(value: str, since: datetime) -> None:
    """ISO 8601 in UTC, between ``since`` (to the second) and now."""
    assert value.endswith(("Z", "+00:00")), value
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert moment.utcoffset() == timedelta(0)
    assert since.replace(microsecond=0) <= moment <= datetime.now(timezone.utc) + timedelta(seconds=1), value


def check_sidecar(sidecar: Path, *, annotator: str, case: str, source: str, source_sha256: str,
                  previous_sha256: str | None, sha256_at_save: str, changes: dict,
                  since: datetime) -> dict:  # fmt: skip
    record = json.loads(sidecar.read_text())
    assert set(record) == SIDECAR_KEYS
    assert record["annotator"] == annotator
    check_saved_at(record["saved_at"], since)
    assert record["case"] == case
    assert record["source"] == source
    assert record["source_sha256"] == source_sha256
    assert record["previous_sha256"] == previous_sha256
    assert record["sha256"] == sha256_at_save
    assert record["plugin_version"] == napari_nsclc.__version__
    assert record["changes"] == changes
    assert record["copy"] is False
    return record


def read_events(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "corrections" / "events.jsonl").read_text().splitlines()]


# --------------------------------------------------------------------------- NSCLC-NAT: painting a mask


def test_mask_correction_session_with_crash_restore_prompts_and_conflict(tmp_path, spawn):
    root = build("nsclc-nat", tmp_path)
    original_path = root / "SegmentationClass" / "1.png"
    originals = dataset_files(root)
    original_sha = sha256(original_path)
    original = imread(original_path)
    corrections = root / "corrections"
    manifest = corrections / ".autosave" / "1.json"
    autosaved_mask = corrections / ".autosave" / "1" / "SegmentationClass" / "1.png"
    correction = corrections / "SegmentationClass" / "1.png"
    sidecar = Path(f"{correction}.provenance.json")

    # ---- run 1: paint, wait for the dock's timer to autosave, SIGKILL
    first = spawn("masks", "crash", root)
    autosaved = first.expect("AUTOSAVED")
    painted = autosaved["painted"]
    assert len(painted) >= 15  # a 5 px brush on background
    assert autosaved["status_after_paint"] == "edited"
    assert autosaved["dock"]["statuses"] == {"1": "autosaved", "2": "untouched", "3": "untouched"}
    assert autosaved["dock"]["list"][0] == "1  · autosaved"
    crash(first)
    record = json.loads(manifest.read_text())
    assert record["case"] == "1" and record["annotator"] == "alice"
    assert record["files"]["SegmentationClass/1.png"] == sha256(autosaved_mask)
    on_disk = imread(autosaved_mask)
    assert np.argwhere(on_disk != original).tolist() == painted  # the autosave holds exactly the painted pixels
    assert (on_disk[tuple(np.array(painted).T)] == 1).all() and (original[tuple(np.array(painted).T)] == 0).all()
    assert not correction.exists() and not (corrections / "events.jsonl").exists()  # nothing was saved

    # ---- run 2: restore through the real prompt, save, paint, try to leave (Cancel)
    since = datetime.now(timezone.utc)
    second = spawn("masks", "resume", root)
    saved = second.expect("SAVED")
    at_save = {"bytes": correction.read_bytes(), "sidecar": sidecar.read_text()}
    assert len(saved["asked"]) == 2, saved["asked"]
    check_prompt(saved["asked"][0], RESTORE, "1 has autosaved corrections that were never saved.", "Restore")
    assert saved["restore_trigger"] == "opening"  # napari reopened on case 1 asks at once, not on leaving it
    assert saved["restored"] == painted
    assert saved["restored_sha256"] == autosaved["labels_sha256"]  # the whole mask on screen is as painted
    # restored, not saved: "edited", or "autosaved" once the dock's half-second timer has run again
    assert saved["after_restore"]["statuses"]["1"] in ("edited", "autosaved")

    assert saved["written"] == [str(correction)]
    assert saved["saved_sha256"] == hashlib.sha256(at_save["bytes"]).hexdigest()
    corrected = imread(correction)
    added = int(((corrected == 1) & (original != 1)).sum())
    removed = int(((original == 1) & (corrected != 1)).sum())
    assert (added, removed) == (len(painted), 0)
    assert np.argwhere(corrected != original).tolist() == painted
    alice = check_sidecar(sidecar, annotator="alice", case="1", source="SegmentationClass/1.png",
                          source_sha256=original_sha, previous_sha256=None, sha256_at_save=saved["saved_sha256"],
                          changes={"pixels_changed": {"tumour bed": {"added": added, "removed": 0}},
                                   "objects_added": 0, "objects_removed": 0, "objects_moved": 0,
                                   "objects_reclassified": 0},
                          since=since)  # fmt: skip
    assert saved["after_save"]["status_text"] == f"saved 1.png: +{added:,} / −0 px tumour bed, by alice"
    assert saved["after_save"]["statuses"]["1"] == "saved"
    assert saved["after_save"]["has_autosave"] is False  # a save removes the autosave

    check_prompt(saved["asked"][1], UNSAVED, "1 has unsaved corrections.", "Cancel")
    assert saved["status_after_second"] == "edited" and saved["asked_before_leaving"] == 1
    assert saved["after_leave"]["index"] == 0 and saved["after_leave"]["current"] == "1"  # Cancel stayed on case 1
    assert saved["after_leave"]["second_on_screen"] == [1] * len(saved["second"])  # with the new paint on screen
    assert saved["after_leave"]["has_autosave"] is True  # leaving autosaves first
    leave_autosave = imread(autosaved_mask)
    assert (leave_autosave[tuple(np.array(saved["second"]).T)] == 1).all()
    assert correction.read_bytes() == at_save["bytes"]  # Cancel saved nothing

    # ---- bob saves case 1 meanwhile, from his own workspace
    bob = workflow.Workspace.open(root, annotator="bob")
    theirs = bob.load("1")
    np.testing.assert_array_equal(np.asarray(theirs.masks[0].data), corrected)  # he starts from alice's correction
    rows, cols = np.nonzero(corrected == 0)
    theirs.masks[0].data[rows[-4:], cols[-4:]] = 1
    assert bob.save("1", theirs) == [correction]
    bob_bytes = correction.read_bytes()
    assert bob_bytes != at_save["bytes"]

    # ---- alice saves again: refused with the real conflict prompt (Cancel)
    second.send("go\n")
    result = second.expect("RESULT")
    assert second.finish() == 0
    assert result["asked_before_conflict"] == 2 and len(result["asked"]) == 3, result["asked"]
    assert result["conflict"] == {"written": [], "error": None}
    check_prompt(result["asked"][2], CONFLICT,
                 f"{correction}: changed on disk after it was loaded here (another window or annotator); "
                 "reload it, save yours as a copy, or cancel", "Cancel")  # fmt: skip
    assert str(correction) in result["after_conflict"]["status_text"]
    assert result["after_conflict"]["index"] == 0
    assert result["second_on_screen"] == [1] * len(saved["second"])  # her edits stay on screen

    # ---- on disk: bob's correction, not overwritten and no copy; originals untouched; two save events
    assert correction.read_bytes() == bob_bytes
    assert sorted(p.name for p in correction.parent.iterdir()) == ["1.png", "1.png.provenance.json"]
    bob_record = check_sidecar(sidecar, annotator="bob", case="1", source="SegmentationClass/1.png",
                               source_sha256=original_sha, previous_sha256=alice["sha256"],
                               sha256_at_save=hashlib.sha256(bob_bytes).hexdigest(),
                               changes={"pixels_changed": {"tumour bed": {"added": 4, "removed": 0}},
                                        "objects_added": 0, "objects_removed": 0, "objects_moved": 0,
                                        "objects_reclassified": 0},
                               since=since)  # fmt: skip
    assert sha256(original_path) == original_sha
    assert dataset_files(root) == originals
    events = read_events(root)
    assert [(e["event"], e["case"], e["annotator"], e["files"], e["copy"]) for e in events] == [
        ("save", "1", "alice", ["SegmentationClass/1.png"], False),
        ("save", "1", "bob", ["SegmentationClass/1.png"], False),
    ]
    assert [e["saved_at"] for e in events] == [alice["saved_at"], bob_record["saved_at"]]
    assert [e["pixels_changed"] for e in events] == [{"tumour bed": {"added": added, "removed": 0}},
                                                     {"tumour bed": {"added": 4, "removed": 0}}]  # fmt: skip


# --------------------------------------------------------------------------- NuCLS: reclassifying and drawing nuclei


def nucls_rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def ring_of(row: dict) -> list[tuple[float, float]]:
    """A NuCLS row's vertices as (row, col), without the closing repeat of the first vertex."""
    xs = [float(v) for v in row["coords_x"].split(",")]
    ys = [float(v) for v in row["coords_y"].split(",")]
    vertices = list(zip(ys, xs, strict=True))
    return vertices[:-1] if len(vertices) > 1 and vertices[0] == vertices[-1] else vertices


def nucls_pixel_changes(before_png: Path, after_png: Path) -> dict:
    """Per class, pixels that took or lost it between two NuCLS masks (ch0 = class code, 253 = FOV)."""
    from napari_nsclc.datasets.nucls import FOV_CODE, NUCLS_SCHEMA

    before, after = imread(before_png)[..., 0], imread(after_png)[..., 0]
    out = {}
    for code in sorted(set(np.unique(before).tolist()) | set(np.unique(after).tolist()) - {0, FOV_CODE}):
        if code in (0, FOV_CODE):
            continue
        added, removed = int(((after == code) & (before != code)).sum()), int(((before == code) & (after != code)).sum())
        if added or removed:
            out[NUCLS_SCHEMA.name_of(code)] = {"added": added, "removed": removed}
    fov_added, fov_removed = int(((after != 0) & (before == 0)).sum()), int(((before != 0) & (after == 0)).sum())
    if fov_added or fov_removed:
        out["fov"] = {"added": fov_added, "removed": fov_removed}
    return out


def nucls_changes(before: list[dict], after: list[dict]) -> dict:
    """Added, removed and reclassified nuclei between two CSVs, matching nuclei by their exact outline."""
    classes_before = {tuple(ring_of(r)): r["raw_classification"] for r in before}
    classes_after = {tuple(ring_of(r)): r["raw_classification"] for r in after}
    return {
        "added": len(classes_after.keys() - classes_before.keys()),
        "removed": len(classes_before.keys() - classes_after.keys()),
        "reclassified": sum(classes_before[k] != v for k, v in classes_after.items() if k in classes_before),
    }


def test_nuclei_correction_session_with_crash_restore_prompts_and_conflict(tmp_path, spawn):
    root = build("nucls", tmp_path)
    originals = dataset_files(root)
    corrections = root / "corrections"

    # ---- run 1: reclassify nucleus 0 with the Classes dock, draw a nucleus, wait for the autosave, SIGKILL
    first = spawn("nuclei", "crash", root)
    autosaved = first.expect("AUTOSAVED")
    case = autosaved["case"]
    original_csv = root / "csv" / f"{case}.csv"
    original_rows = nucls_rows(original_csv)
    before, after = autosaved["before"], autosaved["after"]
    assert before["classes"] == [r["raw_classification"] for r in original_rows]
    assert before["classes"][0] == "tumor"
    assert autosaved["status_after_reclass"] == "edited"  # the Cases dock saw the Classes dock's change
    assert autosaved["autosaved_after_reclass"] is True  # and its timer autosaved it
    assert after["count"] == before["count"] + 1
    assert after["classes"] == ["lymphocyte", *before["classes"][1:], "macrophage"]  # the new one: active class
    assert (after["main"][0], after["super"][0]) == ("lymphocyte", "sTIL")  # the coarser levels follow
    assert after["last"] == autosaved["ring"]
    assert autosaved["dock"]["statuses"][case] == "autosaved"
    crash(first)
    manifest = json.loads((corrections / ".autosave" / f"{case}.json").read_text())
    assert manifest["case"] == case and manifest["annotator"] == "alice"
    autosaved_csv = corrections / ".autosave" / case / "csv" / f"{case}.csv"
    assert manifest["files"][f"csv/{case}.csv"] == sha256(autosaved_csv)
    rows = nucls_rows(autosaved_csv)
    assert [r["raw_classification"] for r in rows] == after["classes"]
    assert ring_of(rows[-1]) == [tuple(v) for v in autosaved["ring"]]
    assert not (corrections / "events.jsonl").exists()

    # ---- run 2: restore through the real prompt, save, move the new nucleus, try to leave (Cancel)
    since = datetime.now(timezone.utc)
    second = spawn("nuclei", "resume", root)
    saved = second.expect("SAVED")
    assert len(saved["asked"]) == 2, saved["asked"]
    check_prompt(saved["asked"][0], RESTORE, f"{case} has autosaved corrections that were never saved.", "Restore")
    assert saved["restore_trigger"] == "opening"
    assert saved["restored"] == after  # classes, levels and the drawn nucleus are back
    assert saved["after_restore"]["statuses"][case] in ("edited", "autosaved")

    correction_csv = corrections / "csv" / f"{case}.csv"
    correction_mask = corrections / "mask" / f"{case}.png"
    written = [Path(p) for p in saved["written"]]
    assert sorted(written) == [correction_csv, correction_mask]  # the mask follows the CSV's edits
    at_save = {p: p.read_bytes() for p in written}
    corrected_rows = nucls_rows(correction_csv)
    assert [r["raw_classification"] for r in corrected_rows] == after["classes"]
    reclassified = corrected_rows[0]
    assert (reclassified["main_classification"], reclassified["super_classification"]) == ("lymphocyte", "sTIL")
    assert ring_of(corrected_rows[-1]) == [tuple(v) for v in autosaved["ring"]]
    counted = nucls_changes(original_rows, corrected_rows)
    assert counted == {"added": 1, "removed": 0, "reclassified": 1}
    pixels = nucls_pixel_changes(root / "mask" / f"{case}.png", correction_mask)
    # nucleus 0 went from tumour to lymphocyte, pixel for pixel; the drawn one is a macrophage; nothing else moved
    assert pixels["tumor"]["added"] == 0 and pixels["tumor"]["removed"] == pixels["lymphocyte"]["added"] > 0
    assert pixels["macrophage"]["added"] > 0 and set(pixels) <= {"tumor", "lymphocyte", "macrophage", "fov"}
    changes = {"pixels_changed": pixels, "objects_added": counted["added"], "objects_removed": counted["removed"],
               "objects_moved": 0, "objects_reclassified": counted["reclassified"]}  # fmt: skip
    records = {}
    for path in written:
        relative = path.relative_to(corrections).as_posix()
        assert (root / relative).is_file()  # the layout is mirrored under corrections/
        assert saved["saved_sha256"][str(path)] == hashlib.sha256(at_save[path]).hexdigest()
        records[relative] = check_sidecar(Path(f"{path}.provenance.json"), annotator="alice", case=case,
                                          source=relative, source_sha256=originals[relative], previous_sha256=None,
                                          sha256_at_save=saved["saved_sha256"][str(path)], changes=changes,
                                          since=since)  # fmt: skip
    names = ", ".join(p.name for p in written)
    status_text = saved["after_save"]["status_text"]
    assert status_text.startswith(f"saved {names}: ") and f"−{pixels['tumor']['removed']:,} px tumor" in status_text
    assert status_text.endswith("; +1 / −0 objects, 1 reclassified, by alice")
    assert saved["after_save"]["statuses"][case] == "saved" and saved["after_save"]["has_autosave"] is False

    check_prompt(saved["asked"][1], UNSAVED, f"{case} has unsaved corrections.", "Cancel")
    assert saved["status_after_second"] == "edited" and saved["asked_before_leaving"] == 1
    assert saved["after_leave"]["index"] == 0 and saved["after_leave"]["current"] == case
    assert saved["after_leave"]["last_on_screen"] == saved["moved_last"]
    assert saved["after_leave"]["has_autosave"] is True
    assert {p: p.read_bytes() for p in written} == at_save  # Cancel saved nothing

    # ---- bob saves the same case meanwhile, from his own workspace
    bob = workflow.Workspace.open(root, annotator="bob")
    try:
        theirs = bob.load(case)
    except NsclcFormatError as error:
        pytest.fail(f"another annotator's workspace cannot load the NuCLS correction alice saved: {error}")
    assert [str(c) for c in theirs.polygons[0].classes] == after["classes"]
    theirs.polygons[0].classes[1] = "fibroblast"
    assert correction_csv in bob.save(case, theirs)
    bob_bytes = correction_csv.read_bytes()
    assert bob_bytes != at_save[correction_csv]

    # ---- alice saves again: refused with the real conflict prompt (Cancel)
    second.send("go\n")
    result = second.expect("RESULT")
    assert second.finish() == 0
    assert result["conflict"] == {"written": [], "error": None}
    assert result["asked_before_conflict"] == 2 and len(result["asked"]) == 3, result["asked"]
    conflict = result["asked"][2]
    check_prompt(conflict, CONFLICT, conflict["text"], "Cancel")
    assert conflict["text"].startswith(f"{corrections / 'csv' / case}.") and "changed on disk" in conflict["text"]
    assert str(corrections) in result["after_conflict"]["status_text"]
    assert result["last_on_screen"] == saved["moved_last"]  # her edits stay on screen

    # ---- on disk: bob's correction, not overwritten and no copy; originals untouched; two save events
    assert correction_csv.read_bytes() == bob_bytes
    assert [r["raw_classification"] for r in nucls_rows(correction_csv)][:2] == ["lymphocyte", "fibroblast"]
    assert json.loads(Path(f"{correction_csv}.provenance.json").read_text())["annotator"] == "bob"
    assert sorted(p.name for p in correction_csv.parent.iterdir()) == [f"{case}.csv", f"{case}.csv.provenance.json"]
    assert sha256(original_csv) == originals[f"csv/{case}.csv"]
    assert dataset_files(root) == originals
    events = read_events(root)
    assert [(e["event"], e["case"], e["annotator"], e["copy"]) for e in events] == [
        ("save", case, "alice", False), ("save", case, "bob", False)]  # fmt: skip
    assert events[0]["files"] == sorted(records) and events[0]["saved_at"] == records[f"csv/{case}.csv"]["saved_at"]
    assert (events[0]["objects_added"], events[0]["objects_reclassified"]) == (1, 1)
