"""Screenshots for docs/review.md, in the real napari window.

* ``review-supervisor.png``: the supervisor's queue, a submitted NSCLC-NAT case
  opened with its changes, and a comment pinned on the image;
* ``review-student.png``: the student reopening the case: the pinned comment
  on the image, the state and the comments in the Cases dock.

Run under ``xvfb-run -a -s "-screen 0 1600x1000x24"``:
``.venv/bin/python docs/scripts/screenshots_review.py``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import napari
from _window import IMAGES, settle

from napari_nsclc.review import open_store
from napari_nsclc.testing import build
from napari_nsclc.workflow import workspace as workspace_module

SEG = "tumour bed (SegmentationClass)"


def _window(width: int = 1500, height: int = 950):
    viewer = napari.Viewer(show=True)
    viewer.window.resize(width, height)
    return viewer


def _as(name: str) -> None:
    workspace_module._OPENED.clear()  # a new session, as in another napari window
    os.environ["NSCLC_ANNOTATOR"] = name


def _student_on_case_2(root: Path):
    """alice's window on case 2, with the Cases dock."""
    _as("alice")
    viewer = _window()
    viewer.open(root, plugin="napari-nsclc")
    _, navigator = viewer.window.add_plugin_dock_widget("napari-nsclc", "Cases")
    navigator.show_case(1)
    return viewer, navigator


def student_submits(root: Path) -> None:
    viewer, navigator = _student_on_case_2(root)
    seg = viewer.layers[SEG]
    seg.brush_size = 12
    for x in range(10, 60, 4):
        seg.paint((14, x), 1)
    navigator.save_current()
    navigator.review_panel.submit()
    for case_id in ("1", "3"):  # two more cases in the queue, one of them submitted
        navigator.show_case(navigator.workspace.cases.index(case_id))
        viewer.layers[SEG].paint((20, 20), 1)
        navigator.save_current()
    navigator.review_panel.submit()
    viewer.close()


def supervisor_reviews(root: Path, store: Path) -> None:
    _as("dr_smith")
    viewer = _window()
    _, dock = viewer.window.add_plugin_dock_widget("napari-nsclc", "Supervisor review")
    dock.open_store(store)
    dock.table.selectRow(0)
    dock.open_case(0)
    dock.comment.setPlainText("the bed misses the gland at the top edge")
    ys, xs = 30.0, 45.0
    dock.pin((ys, xs))
    dock.comment.setPlainText("Please extend the tumour bed along the top edge, then resubmit.")
    viewer.reset_view()
    settle(viewer)
    viewer.screenshot(str(IMAGES / "review-supervisor.png"), canvas_only=False)
    dock.request_changes()
    viewer.close()


def student_sees_comments(root: Path) -> None:
    viewer, _navigator = _student_on_case_2(root)
    viewer.reset_view()
    settle(viewer)
    viewer.screenshot(str(IMAGES / "review-student.png"), canvas_only=False)
    viewer.close()


def main() -> None:
    os.environ.setdefault("NSCLC_CONFIG_DIR", tempfile.mkdtemp())
    os.environ.pop("NSCLC_REVIEW_STORE", None)
    root = build("nsclc-nat", Path(tempfile.mkdtemp()))
    store = root / "corrections" / "review.db"
    student_submits(root)
    with open_store(store) as opened:
        opened.set_supervisors(["dr_smith"])
    supervisor_reviews(root, store)
    student_sees_comments(root)


if __name__ == "__main__":
    main()
