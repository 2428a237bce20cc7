"""One napari session of a student correcting a dataset, run as a subprocess by ``test_correction_session.py``.

Not a test module (pytest does not collect it). Usage::

    python session_driver.py FLOW PHASE ROOT

``FLOW`` is ``masks`` (NSCLC-NAT: paint the tumour bed) or ``nuclei`` (NuCLS:
reclassify a nucleus, draw a new one). ``PHASE`` is

``crash``
    open the dataset in a real, shown napari viewer with the Cases dock, edit,
    run the Qt event loop until the dock's autosave timer has written the
    autosave manifest, print ``@@ AUTOSAVED {...}`` and keep running until the
    parent kills the process;
``resume``
    open the same folder again, answer the dock's real "restore" message box,
    save, edit again and try to leave the case (the "unsaved" message box,
    answered Cancel), print ``@@ SAVED {...}``, wait for ``go`` on stdin while
    the parent saves the same case as someone else, save again (the "conflict"
    message box, answered Cancel), print ``@@ RESULT {...}`` and exit 0.

Message boxes are answered for real: a QTimer polls
``QApplication.activeModalWidget()``, records the box's title, text and
buttons, and clicks the button with the wanted label. Lines for the parent start
with ``@@ `` and hold one JSON value; everything else on stdout and stderr is
napari's. Any failure prints ``@@ ERROR <traceback>`` and exits 1.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path

import numpy as np

LABELS = "tumour bed (SegmentationClass)"
NUCLEI = "nuclei"
#: Give up waiting for anything in the session after this many seconds.
WAIT_SECONDS = 90.0


def emit(tag: str, payload) -> None:
    print(f"@@ {tag} {json.dumps(payload, default=str)}", flush=True)


def sha256(path: Path) -> str | None:
    path = Path(path)
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


# --------------------------------------------------------------------------- answering real message boxes


class Answerer:
    """Answers the modal dialogs the dock opens, by clicking the button with the wanted label.

    ``expect(label)`` queues the label of the button to click on the next
    dialog. A dialog that appears with nothing queued is recorded with answer
    ``None`` and rejected (Escape), so a surprise question cannot hang the
    session and shows in the record.
    """

    def __init__(self):
        from qtpy.QtCore import QTimer

        self.asked: list[dict] = []
        self.wanted: list[str] = []
        self._seen: list = []
        self.timer = QTimer()
        self.timer.setInterval(25)
        self.timer.timeout.connect(self._poll)
        self.timer.start()

    def expect(self, label: str) -> None:
        self.wanted.append(label)

    def _current_dialog(self):
        from qtpy.QtWidgets import QApplication, QDialog

        widget = QApplication.activeModalWidget()
        if widget is None:  # no window manager under Xvfb: fall back to any visible top-level dialog
            widget = next((w for w in QApplication.topLevelWidgets() if isinstance(w, QDialog) and w.isVisible()), None)
        if widget is None or not widget.isVisible() or any(widget is seen for seen in self._seen):
            return None
        return widget

    def _poll(self) -> None:
        from qtpy.QtWidgets import QInputDialog, QMessageBox

        dialog = self._current_dialog()
        if dialog is None:
            return
        self._seen.append(dialog)
        record = {"class": type(dialog).__name__, "title": dialog.windowTitle(), "at": time.time()}
        if isinstance(dialog, QMessageBox):
            buttons = dialog.buttons()
            record.update(text=dialog.text(), buttons=[b.text() for b in buttons])
        else:
            buttons = []
            record.update(text=dialog.labelText() if isinstance(dialog, QInputDialog) else "", buttons=[])
        self.asked.append(record)
        label = self.wanted.pop(0) if self.wanted else None
        button = next((b for b in buttons if b.text() == label), None)
        if button is None:
            record["answer"] = None
            record["wanted"] = label
            dialog.reject()
            return
        record["answer"] = label
        button.click()


# --------------------------------------------------------------------------- running a script inside the event loop


def wait(predicate, what: str, timeout: float = WAIT_SECONDS):
    """Yielded by a script: resume it once ``predicate()`` is true (the event loop runs meanwhile)."""
    return predicate, time.monotonic() + timeout, what


def settle(seconds: float):
    """Yielded by a script: let the event loop run for ``seconds``."""
    until = time.monotonic() + seconds
    return wait(lambda: time.monotonic() >= until, f"{seconds} s to pass", seconds + 5)


class Runner:
    """Steps a generator script from a QTimer, so that napari's event loop (and the dock's timers) keep running.

    The timer also fires inside a message box's nested event loop; a step is
    never re-entered while it runs.
    """

    def __init__(self, script):
        from qtpy.QtCore import QTimer

        self.script = script
        self.waiting = None
        self.busy = False
        self.timer = QTimer()
        self.timer.setInterval(20)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def _tick(self) -> None:
        if self.busy:
            return
        if self.waiting is not None:
            predicate, deadline, what = self.waiting
            if not predicate():
                if time.monotonic() > deadline:
                    fail(f"timed out after waiting for {what}")
                return
        self.busy = True
        try:
            self.waiting = next(self.script)
        except StopIteration:
            self.timer.stop()
            sys.stdout.flush()
            os._exit(0)  # do not leave the exit code to napari's teardown
        except BaseException:
            fail(traceback.format_exc())
        finally:
            self.busy = False


def fail(message: str) -> None:
    emit("ERROR", message)
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    os._exit(1)


def stdin_lines() -> list[str]:
    """Lines read from stdin by a background thread (the event loop is not blocked)."""
    lines: list[str] = []

    def read():
        for line in sys.stdin:
            lines.append(line.strip())

    threading.Thread(target=read, daemon=True).start()
    return lines


# --------------------------------------------------------------------------- the session


def open_session(root: Path, with_classes: bool = False):
    """A shown napari viewer with ``root`` opened by napari-nsclc and the Cases dock (and the Classes dock)."""
    import napari

    from napari_nsclc.widgets.case_navigator import CaseNavigator

    viewer = napari.Viewer(title="correction session")
    viewer.open(str(root), plugin="napari-nsclc")
    navigator = CaseNavigator(viewer)
    viewer.window.add_dock_widget(navigator, name="Cases", area="right")
    editor = None
    if with_classes:
        from napari_nsclc.widgets.class_editor import ClassEditorWidget

        editor = ClassEditorWidget(viewer)
        viewer.window.add_dock_widget(editor, name="Classes", area="right")
    return viewer, navigator, editor


def dock_state(navigator) -> dict:
    ws = navigator.workspace
    return {
        "index": navigator.index,
        "current": ws.current if ws is not None else None,
        "status_text": navigator.status.text(),
        "statuses": {case: ws.status(case) for case in ws.cases} if ws is not None else {},
        "list": [navigator.list.item(row).text() for row in range(navigator.list.count())],
    }


def free_spot(mask: np.ndarray, radius: int, avoid=()) -> tuple[int, int]:
    """The first (row, col), scanning rows, whose (2 * radius + 1)-square is background and avoids ``avoid``."""
    rows, cols = mask.shape
    for r in range(radius + 2, rows - radius - 2):
        for c in range(radius + 2, cols - radius - 2):
            if mask[r - radius : r + radius + 1, c - radius : c + radius + 1].any():
                continue
            if all(abs(r - ar) > 3 * radius or abs(c - ac) > 3 * radius for ar, ac in avoid):
                return r, c
    raise AssertionError("no background spot to paint in the fixture mask")


def changed_pixels(data: np.ndarray, original: np.ndarray) -> list[list[int]]:
    return np.argwhere(np.asarray(data) != np.asarray(original)).tolist()


def read_original_mask(root: Path) -> np.ndarray:
    from skimage.io import imread

    return np.asarray(imread(root / "SegmentationClass" / "1.png"))


def restore_prompt(navigator, answerer, root: Path):
    """Wait for the "restore" question on opening; when the dock did not ask, reopen the case through the dock.

    Yields (a script step); records how the question came in ``answerer.trigger``.
    """
    yield settle(1.0)  # any question asked when the dataset and the dock open is answered meanwhile
    answerer.asked_on_open = [dict(q) for q in answerer.asked]
    if not answerer.asked:
        # "Open dataset folder…" in the dock on the folder already open (the file dialog skipped): the dock
        # shows the current case again, which is where it offers the autosave
        answerer.trigger = "navigator.set_source(root)"
        navigator.set_source(root)
    else:
        answerer.trigger = "opening"
    yield wait(lambda: bool(answerer.asked), "the restore question")
    # a question asked from a timer returns to the dock only once its dialog's own event loop has ended
    from qtpy.QtWidgets import QApplication

    yield wait(lambda: QApplication.activeModalWidget() is None, "the restore question to close")
    yield settle(0.2)


# ------------------------------------------------------------------ masks (NSCLC-NAT)


def masks_crash(root: Path):
    viewer, navigator, _ = open_session(root)
    yield settle(0.2)
    ws = navigator.workspace
    layer = viewer.layers[LABELS]
    original = np.asarray(layer.data).copy()
    assert np.array_equal(original, read_original_mask(root)), "case 1 did not open as its original mask"
    center = free_spot(original, 4)
    viewer.layers.selection.active = layer
    layer.brush_size = 5
    layer.paint(center, 1)
    painted = np.asarray(layer.data).copy()
    status_after_paint = ws.status("1")
    manifest = root / "corrections" / ".autosave" / "1.json"
    started = time.monotonic()
    yield wait(lambda: manifest.is_file() and ws.status("1") == "autosaved", f"the autosave manifest {manifest}")
    emit("AUTOSAVED", {
        "center": center, "painted": changed_pixels(painted, original),
        "labels_sha256": hashlib.sha256(np.ascontiguousarray(painted).tobytes()).hexdigest(),
        "status_after_paint": status_after_paint, "seconds_to_autosave": time.monotonic() - started,
        "manifest": json.loads(manifest.read_text()), "dock": dock_state(navigator), "pid": os.getpid(),
    })  # fmt: skip
    yield wait(lambda: False, "SIGKILL", timeout=600)


def save_refused(navigator) -> dict:
    """Save again after someone else saved: what the dock wrote, or the error it raised instead of asking."""
    try:
        return {"written": [str(p) for p in navigator.save_current()], "error": None}
    except Exception as error:  # noqa: BLE001 - recorded for the parent's assertion message
        return {"written": [], "error": f"{type(error).__name__}: {error}"}


def masks_resume(root: Path):
    go = stdin_lines()
    answerer = Answerer()
    answerer.expect("Restore")
    viewer, navigator, _ = open_session(root)
    ws = navigator.workspace
    original = read_original_mask(root)
    opened = {**dock_state(navigator), "changed": changed_pixels(viewer.layers[LABELS].data, original)}
    yield from restore_prompt(navigator, answerer, root)
    layer = viewer.layers[LABELS]
    restored = np.asarray(layer.data).copy()
    after_restore = dock_state(navigator)
    correction = root / "corrections" / "SegmentationClass" / "1.png"

    written = navigator.save_current()
    saved_sha = sha256(correction)
    after_save = {**dock_state(navigator), "has_autosave": ws.has_autosave("1")}

    # paint again, then try to leave the case: the dock asks; Cancel stays on case 1 with the edit on screen
    first = np.argwhere(restored != original)
    second_center = free_spot(restored, 4, avoid=[tuple(int(v) for v in first.mean(axis=0))] if len(first) else [])
    before_second = np.asarray(layer.data).copy()
    layer.brush_size = 5
    layer.paint(second_center, 1)
    second = changed_pixels(layer.data, before_second)
    status_after_second = ws.status("1")
    asked_before_leaving = len(answerer.asked)
    answerer.expect("Cancel")
    navigator.next_case()
    on_screen = np.asarray(viewer.layers[LABELS].data)
    after_leave = {**dock_state(navigator), "has_autosave": ws.has_autosave("1"),
                   "second_on_screen": [int(on_screen[r, c]) for r, c in second]}  # fmt: skip
    emit("SAVED", {
        "asked": answerer.asked, "asked_on_open": answerer.asked_on_open, "restore_trigger": answerer.trigger,
        "opened": opened, "restored": changed_pixels(restored, original),
        "restored_sha256": hashlib.sha256(np.ascontiguousarray(restored).tobytes()).hexdigest(),
        "after_restore": after_restore, "written": [str(p) for p in written], "saved_sha256": saved_sha,
        "after_save": after_save, "second": second, "status_after_second": status_after_second,
        "asked_before_leaving": asked_before_leaving, "after_leave": after_leave,
    })  # fmt: skip

    yield wait(lambda: "go" in go, "'go' on stdin", timeout=120)
    has_autosave_after_their_save = ws.has_autosave("1")
    asked_before_conflict = len(answerer.asked)
    answerer.expect("Cancel")
    conflict = save_refused(navigator)
    on_screen = np.asarray(viewer.layers[LABELS].data)
    emit("RESULT", {
        "asked": answerer.asked, "asked_before_conflict": asked_before_conflict, "conflict": conflict,
        "has_autosave_after_their_save": has_autosave_after_their_save, "after_conflict": dock_state(navigator),
        "second_on_screen": [int(on_screen[r, c]) for r, c in second],
    })  # fmt: skip


# ------------------------------------------------------------------ nuclei (NuCLS)


def nucleus_ring(center, radius: int = 4) -> np.ndarray:
    """An integer 8-vertex ring (row, col) round ``center``: integer vertices survive the CSV exactly."""
    r, c = center
    offsets = [(-radius, 0), (-3, 3), (0, radius), (3, 3), (radius, 0), (3, -3), (0, -radius), (-3, -3)]
    return np.array([(r + dr, c + dc) for dr, dc in offsets], dtype=float)


def free_center(shapes, shape: tuple[int, int], margin: int = 12) -> tuple[int, int]:
    """The integer point of the image, ``margin`` px inside its edges, farthest from every nucleus vertex."""
    vertices = np.concatenate([np.asarray(d) for d in shapes.data])
    rows, cols = np.mgrid[margin : shape[0] - margin, margin : shape[1] - margin]
    grid = np.stack([rows.ravel(), cols.ravel()], axis=1)
    distance = np.min(np.linalg.norm(grid[:, None, :] - vertices[None, :, :], axis=2), axis=1)
    return tuple(int(v) for v in grid[int(np.argmax(distance))])


def nuclei_state(shapes) -> dict:
    return {
        "count": len(shapes.data),
        "classes": [str(c) for c in shapes.features["class"]],
        "main": [str(c) for c in shapes.features["main_classification"]],
        "super": [str(c) for c in shapes.features["super_classification"]],
        "last": np.asarray(shapes.data[-1]).tolist(),
    }


def nuclei_crash(root: Path):
    viewer, navigator, editor = open_session(root, with_classes=True)
    yield settle(0.2)
    ws = navigator.workspace
    case = ws.cases[0]
    shapes = viewer.layers[NUCLEI]
    viewer.layers.selection.active = shapes
    assert editor.layer is shapes, "the Classes dock did not attach to the nuclei layer"
    before = nuclei_state(shapes)
    image_shape = tuple(viewer.layers[case].data.shape[:2])
    manifest = root / "corrections" / ".autosave" / f"{case}.json"

    # 1. reclassify nucleus 0 with the Classes dock; wait three autosave intervals
    editor.assign([0], "lymphocyte")
    status_after_reclass = ws.status(case)
    yield settle(3 * float(os.environ.get("NSCLC_AUTOSAVE_SECONDS", "60")))
    autosaved_after_reclass = manifest.is_file()

    # 2. draw a new nucleus with the active class "macrophage"
    editor.set_active_class("macrophage")
    ring = nucleus_ring(free_center(shapes, image_shape))
    shapes.add(ring, shape_type="polygon")
    status_after_add = ws.status(case)
    after = nuclei_state(shapes)
    started = time.monotonic()
    # the reclassification alone may have been autosaved already: wait for the autosave of the new nucleus
    yield wait(lambda: manifest.is_file() and ws.status(case) == "autosaved", f"the autosave manifest {manifest}")
    emit("AUTOSAVED", {
        "case": case, "before": before, "after": after, "ring": ring.tolist(),
        "status_after_reclass": status_after_reclass, "autosaved_after_reclass": autosaved_after_reclass,
        "status_after_add": status_after_add, "seconds_to_autosave": time.monotonic() - started,
        "manifest": json.loads(manifest.read_text()), "dock": dock_state(navigator), "pid": os.getpid(),
    })  # fmt: skip
    yield wait(lambda: False, "SIGKILL", timeout=600)


def nuclei_resume(root: Path):
    go = stdin_lines()
    answerer = Answerer()
    answerer.expect("Restore")
    viewer, navigator, editor = open_session(root, with_classes=True)
    ws = navigator.workspace
    case = ws.cases[0]
    opened = {**dock_state(navigator), "nuclei": nuclei_state(viewer.layers[NUCLEI])}
    yield from restore_prompt(navigator, answerer, root)
    shapes = viewer.layers[NUCLEI]
    restored = nuclei_state(shapes)
    after_restore = dock_state(navigator)

    written = navigator.save_current()
    saved = {str(p): sha256(p) for p in written}
    after_save = {**dock_state(navigator), "has_autosave": ws.has_autosave(case)}

    # edit again (move the drawn nucleus by 2 px), then try to leave the case: the dock asks; Cancel stays
    moved = [np.asarray(d).copy() for d in shapes.data]
    moved[-1] = moved[-1] + 2
    shapes.data = list(zip(moved, shapes.shape_type, strict=True))
    status_after_second = ws.status(case)
    asked_before_leaving = len(answerer.asked)
    answerer.expect("Cancel")
    navigator.next_case()
    after_leave = {**dock_state(navigator), "has_autosave": ws.has_autosave(case),
                   "last_on_screen": np.asarray(viewer.layers[NUCLEI].data[-1]).tolist()}  # fmt: skip
    emit("SAVED", {
        "case": case, "asked": answerer.asked, "asked_on_open": answerer.asked_on_open,
        "restore_trigger": answerer.trigger, "opened": opened, "restored": restored, "after_restore": after_restore,
        "written": [str(p) for p in written], "saved_sha256": saved, "after_save": after_save,
        "moved_last": moved[-1].tolist(), "status_after_second": status_after_second,
        "asked_before_leaving": asked_before_leaving, "after_leave": after_leave,
    })  # fmt: skip

    yield wait(lambda: "go" in go, "'go' on stdin", timeout=120)
    has_autosave_after_their_save = ws.has_autosave(case)
    asked_before_conflict = len(answerer.asked)
    answerer.expect("Cancel")
    conflict = save_refused(navigator)
    emit("RESULT", {
        "asked": answerer.asked, "asked_before_conflict": asked_before_conflict, "conflict": conflict,
        "has_autosave_after_their_save": has_autosave_after_their_save, "after_conflict": dock_state(navigator),
        "last_on_screen": np.asarray(viewer.layers[NUCLEI].data[-1]).tolist(),
    })  # fmt: skip


SCRIPTS = {("masks", "crash"): masks_crash, ("masks", "resume"): masks_resume,
           ("nuclei", "crash"): nuclei_crash, ("nuclei", "resume"): nuclei_resume}  # fmt: skip


def main(argv: list[str]) -> None:
    flow, phase, root = argv
    import napari
    from napari.qt import get_qapp

    get_qapp()
    runner = Runner(SCRIPTS[flow, phase](Path(root)))
    runner._tick()  # the first step opens the viewer: napari.run() refuses to start without one
    napari.run()
    fail("napari's event loop returned before the session script finished")


if __name__ == "__main__":
    main(sys.argv[1:])
