"""The review loop in real napari viewers, with two identities: a student and a supervisor.

Run under ``xvfb-run -a``. Each identity gets its own viewer and its own
workspace (as two napari processes would); they share only the dataset
folder and its review store.
"""

from __future__ import annotations

import csv
import json

import numpy as np
from qtpy.QtCore import QPoint, Qt

from napari_nsclc import cli
from napari_nsclc.layers import plugin_metadata
from napari_nsclc.review import open_store
from napari_nsclc.review.session import STORE_VARIABLE
from napari_nsclc.testing import build
from napari_nsclc.workflow import workspace as workspace_module

SEG = "tumour bed (SegmentationClass)"


def _as(monkeypatch, name: str) -> None:
    """Start a new "session" as ``name``: no workspace is shared with the previous one."""
    monkeypatch.setattr(workspace_module, "_OPENED", {})
    monkeypatch.setenv("NSCLC_ANNOTATOR", name)


def _item_text(navigator, case_id: str) -> str:
    row = navigator.workspace.cases.index(case_id)
    return navigator.list.item(row).text()


def _overlay(viewer, kind: str):
    return [layer for layer in viewer.layers if plugin_metadata(layer).get("overlay") == kind]


def _student_opens(make_napari_viewer, root, case_index: int):
    viewer = make_napari_viewer()
    viewer.open(root, plugin="napari-nsclc")
    _, navigator = viewer.window.add_plugin_dock_widget("napari-nsclc", "Cases")
    navigator.show_case(case_index)
    return viewer, navigator


def _click_canvas(qtbot, viewer) -> tuple[float, ...]:
    """A real left click in the middle of the canvas; returns the world position of the view's centre."""
    canvas = viewer.window._qt_viewer.canvas.native
    qtbot.waitUntil(lambda: min(canvas.width(), canvas.height()) > 100, timeout=5000)
    viewer.reset_view()  # the docks changed the canvas's size since the case was shown
    qtbot.wait(50)
    middle = QPoint(canvas.width() // 2, canvas.height() // 2)
    qtbot.mouseMove(canvas, middle)
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=middle)
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=middle)
    return tuple(viewer.camera.center)  # the middle of the canvas is the middle of the view


def test_submit_pin_request_changes_fix_resubmit_approve_report(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("NSCLC_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv(STORE_VARIABLE, raising=False)
    root = build("nsclc-nat", tmp_path)
    store_path = root / "corrections" / "review.db"

    # 1. the student paints case 2, saves and submits it
    _as(monkeypatch, "alice")
    viewer, navigator = _student_opens(make_napari_viewer, root, 1)
    assert _item_text(navigator, "2") == "2"
    panel = navigator.review_panel
    assert not panel.submit_button.isEnabled()  # nothing saved yet
    seg = viewer.layers[SEG]
    seg.brush_size = 9
    seg.paint((30, 30), 1)
    navigator.save_current()
    assert _item_text(navigator, "2") == "2  · saved  · in progress"
    assert panel.submit_button.isEnabled()
    panel.submit_button.click()
    assert _item_text(navigator, "2") == "2  · saved  · submitted"
    assert "submitted" in panel.state.text() and not panel.submit_button.isEnabled()
    with open_store(store_path) as store:  # the lab lists its supervisors once (CLI: review supervisors)
        store.set_supervisors(["dr_smith"])
        submitted = store.events("2")[-1]
    assert submitted.to_state == "submitted" and submitted.who == "alice"
    painted = int(navigator.status.text().split("+")[1].split(" ")[0])  # "saved 2.png: +69 / −0 px tumour bed, …"
    assert submitted.details["masks"][SEG]["pixels_changed"] == painted > 0
    assert submitted.details["masks"]["expert mask (Mask)"]["pixels_changed"] == 0

    # 2. the supervisor opens the queue, sees the changes, pins a comment and requests changes
    _as(monkeypatch, "dr_smith")
    viewer2 = make_napari_viewer(show=True)
    viewer2.window.resize(1400, 900)  # a canvas of a real size: clicks are placed by it
    _, dock = viewer2.window.add_plugin_dock_widget("napari-nsclc", "Supervisor review")
    dock.open_store(store_path)
    assert "a supervisor" in dock.who.text() and "dr_smith" in dock.who.text()
    assert dock.table.rowCount() == 1  # the queue shows what is submitted
    assert [dock.table.item(0, c).text() for c in range(3)] == [root.name, "2", "submitted"]
    assert dock.table.item(0, 3).text() == "alice"
    dock.table.selectRow(0)
    dock.open_button.click()
    supervisor_view = dock._navigator(create=False)
    assert supervisor_view.workspace.current == "2"
    changes = _overlay(viewer2, "changes")
    assert changes, "the correction is shown with its changes against the original"
    (diff,) = [layer for layer in changes if layer.name == f"changes: {SEG}"]
    assert np.count_nonzero(np.asarray(diff.data) == 1) == painted  # green: the pixels the student added
    assert dock.approve_button.isEnabled() and dock.request_button.isEnabled()

    dock.comment.setPlainText("the bed misses the lower gland")
    reviewed = viewer2.layers[SEG]
    assert viewer2.layers.selection.active is reviewed
    reviewed.mode = "paint"  # the supervisor had the brush in hand
    before_pin = np.asarray(reviewed.data).copy()
    dock.pin_button.click()
    assert viewer2.layers.selection.active.mode == "pan_zoom"  # the click will not paint
    where = _click_canvas(qtbot, viewer2)
    (pins,) = _overlay(viewer2, "comments")
    np.testing.assert_allclose(pins.data[0], where[-2:], atol=8.0)  # where the click was, within a brush width
    shape = np.asarray(seg.data).shape
    assert 0.25 * shape[0] < pins.data[0][0] < 0.75 * shape[0] and 0.25 * shape[1] < pins.data[0][1] < 0.75 * shape[1]
    assert list(pins.features["comment"]) == ["the bed misses the lower gland"]
    assert list(pins.text.values) == ["dr_smith: the bed misses the lower gland"]
    assert reviewed.mode == "paint"  # given back after the click
    np.testing.assert_array_equal(reviewed.data, before_pin)  # and the click painted nothing
    dock.comment.setPlainText("see the pinned comment")
    dock.request_button.click()
    assert "changes requested" in dock.reviewing.text()
    assert dock.table.rowCount() == 0  # nothing submitted is left
    assert _item_text(supervisor_view, "2").endswith("changes requested")

    # 3. the student reopens the case, sees the comment where it was pinned, fixes it and resubmits
    _as(monkeypatch, "alice")
    viewer3, navigator3 = _student_opens(make_napari_viewer, root, 1)
    assert _item_text(navigator3, "2") == "2  · saved  · changes requested"
    (pins3,) = _overlay(viewer3, "comments")
    np.testing.assert_allclose(pins3.data, pins.data)
    assert list(pins3.text.values) == ["dr_smith: the bed misses the lower gland"]
    listed = [navigator3.review_panel.comments.item(i).text() for i in range(navigator3.review_panel.comments.count())]
    assert len(listed) == 2 and listed[0].endswith("(pinned on the image): the bed misses the lower gland")
    assert listed[1].endswith(": see the pinned comment")
    seg3 = viewer3.layers[SEG]
    assert viewer3.layers.selection.active is seg3  # the pins did not take the brush away
    seg3.brush_size = 9
    background = np.argwhere(np.asarray(seg3.data) == 0)
    nearest = background[np.argmin(np.linalg.norm(background - pins3.data[0], axis=1))]
    seg3.paint(tuple(int(v) for v in nearest), 1)  # the missed gland, next to the pin
    navigator3.save_current()
    assert _item_text(navigator3, "2") == "2  · saved  · in progress"
    navigator3.review_panel.submit_button.click()
    assert _item_text(navigator3, "2") == "2  · saved  · submitted"

    # 4. the supervisor approves
    _as(monkeypatch, "dr_smith")
    dock.refresh()
    assert dock.table.rowCount() == 1
    dock.table.selectRow(0)
    dock.open_button.click()
    dock.comment.setPlainText("good")
    dock.approve_button.click()
    assert "approved" in dock.reviewing.text() and not dock.approve_button.isEnabled()

    # 5. the report shows all of it
    with open_store(store_path) as store:
        steps = [(e.what, e.who, e.to_state) for e in store.events("2") if e.what != "assign"]
    assert steps == [
        ("add", "alice", "new"), ("transition", "alice", "in_progress"), ("transition", "alice", "submitted"),
        ("comment", "dr_smith", "submitted"), ("transition", "dr_smith", "changes_requested"),
        ("transition", "alice", "in_progress"), ("transition", "alice", "submitted"),
        ("transition", "dr_smith", "approved"),
    ]  # fmt: skip
    out = tmp_path / "report"
    assert cli.main(["review", "report", str(store_path), "-o", str(out)]) == 0
    html = (out / "report.html").read_text()
    for text in ("the bed misses the lower gland", "see the pinned comment", "dr_smith", "alice", "approved"):
        assert text in html
    with open(out / "cases.csv", newline="") as table:
        (row,) = list(csv.DictReader(table))
    assert (row["case"], row["state"], row["submissions"], row["changes_requested"]) == ("2", "approved", "2", "1")
    assert json.loads(json.dumps(row))  # plain text, readable


def test_a_non_supervisor_reads_the_queue_but_cannot_decide(make_napari_viewer, tmp_path, monkeypatch):
    from napari_nsclc.review.session import review_of
    from napari_nsclc.workflow import Workspace

    monkeypatch.setenv("NSCLC_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv(STORE_VARIABLE, raising=False)
    root = build("nsclc-nat", tmp_path)
    student = Workspace.open(root, annotator="alice")
    case = student.load("1")
    case.masks[0].data[:8, :8] = 1
    student.save("1", case)
    review_of(student).submit("1", "alice")
    store_path = root / "corrections" / "review.db"
    with open_store(store_path) as store:
        store.set_supervisors(["dr_smith"])

    _as(monkeypatch, "bob")
    viewer = make_napari_viewer()
    _, dock = viewer.window.add_plugin_dock_widget("napari-nsclc", "Supervisor review")
    dock.open_store(store_path)
    assert "<b>bob</b>, not a supervisor" in dock.who.text() and "supervisors: dr_smith" in dock.who.text()
    dock.table.selectRow(0)
    dock.open_button.click()
    assert "nsclc-nat / 1</b>: <b" in dock.reviewing.text() and "submitted" in dock.reviewing.text()
    assert not any(b.isEnabled() for b in (dock.approve_button, dock.request_button, dock.pin_button))

    missing = tmp_path / "elsewhere" / "review.db"
    dock.store_field.setText(str(missing))
    dock.store_field.returnPressed.emit()
    assert f"{missing}: does not exist" in dock.status.text() and not missing.exists()
    assert dock.table.rowCount() == 1  # still the store that was open


def test_a_supervisor_without_a_name_gives_it_in_the_dock(make_napari_viewer, tmp_path, monkeypatch):
    monkeypatch.setenv("NSCLC_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("NSCLC_ANNOTATOR", raising=False)
    store_path = tmp_path / "review.db"
    with open_store(store_path) as store:
        store.set_supervisors(["dr_smith"])
    viewer = make_napari_viewer()
    _, dock = viewer.window.add_plugin_dock_widget("napari-nsclc", "Supervisor review")
    dock.open_store(store_path)
    assert "<b>not named yet</b>" in dock.who.text()
    dock.ask = lambda question, text: "dr_smith"
    dock.name_button.click()
    assert "You review as <b>dr_smith</b>, a supervisor" in dock.who.text()
    assert json.loads((tmp_path / "config" / "settings.json").read_text())["annotator"] == "dr_smith"


def test_the_supervisor_compares_two_readers_of_a_cocahis_case(make_napari_viewer, tmp_path, monkeypatch):
    from napari_nsclc.review.session import review_of
    from napari_nsclc.workflow import Workspace

    monkeypatch.setenv("NSCLC_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv(STORE_VARIABLE, raising=False)
    path = build("cocahis", tmp_path)
    student = Workspace.open(path, annotator="alice")
    case_id = student.cases[0]
    case = student.load(case_id)
    case.masks[0].data[:4, :4] = 1
    student.save(case_id, case)
    review_of(student).submit(case_id, "alice")
    store_path = student.corrections / "review.db"

    _as(monkeypatch, "dr_smith")
    viewer = make_napari_viewer()
    _, dock = viewer.window.add_plugin_dock_widget("napari-nsclc", "Supervisor review")
    dock.open_store(store_path)
    dock.table.selectRow(0)
    dock.open_button.click()
    names = [dock.reader_a.itemText(i) for i in range(dock.reader_a.count())]
    assert names[:8] == ["GT1", "GT2", "GT3", "GT4", "GT5", "GT6", "GT7", "GT_majority_vote"]
    assert dock.compare_row.isVisibleTo(dock)
    dock.reader_a.setCurrentText("GT1")
    dock.reader_b.setCurrentText("GT2")
    dock.compare_button.click()
    (overlay,) = [layer for layer in viewer.layers if layer.name == "GT2 against GT1"]
    gt1, gt2 = (np.asarray(viewer.layers[name].data) for name in ("GT1", "GT2"))
    assert np.count_nonzero(np.asarray(overlay.data) == 1) == np.count_nonzero((gt2 != 0) & (gt1 == 0))  # green
    assert np.count_nonzero(np.asarray(overlay.data) == 2) == np.count_nonzero((gt1 != 0) & (gt2 == 0))  # red
    assert dock.status.text().startswith("GT2 against GT1: ")
