"""Screenshots for docs/correcting.md, in the real napari window.

* ``correcting-changes.png``: a painted NSCLC-NAT case with its changes shown;
* ``correcting-restore.png``: napari started again after a crash, asking to restore the autosave;
* ``correcting-classes.png``: PD-L1 cells reclassified and saved from the Classes dock.

Run under ``xvfb-run -a -s "-screen 0 1600x1000x24"``:
``.venv/bin/python docs/scripts/screenshots_correcting.py``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import napari
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QApplication, QMessageBox

from napari_nsclc.testing import build
from napari_nsclc.widgets.case_navigator import CaseNavigator
from napari_nsclc.widgets.class_editor import ClassEditorWidget
from napari_nsclc.workflow import workspace as workspace_module

IMAGES = Path(__file__).resolve().parents[1] / "images"


def _settle(times: int = 5) -> None:
    for _ in range(times):
        QApplication.processEvents()


def _answer_with_screenshot(viewer, button_text: str, path: Path) -> None:
    """When the dock's question appears, grab the screen where the window is (with the dialog), then answer it."""

    def poll() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(100, poll)
            return
        _settle()
        QApplication.primaryScreen().grabWindow(0, *viewer.window.geometry()).save(str(path))
        next(b for b in box.buttons() if b.text() == button_text).click()

    QTimer.singleShot(100, poll)


def changes_and_restore(root: Path) -> None:
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1400, 900)
    navigator = CaseNavigator(viewer)
    viewer.window.add_dock_widget(navigator, name="Cases", area="right")
    navigator.set_source(root, index=1)
    seg = viewer.layers["tumour bed (SegmentationClass)"]
    seg.brush_size = 12
    for x in range(10, 60, 4):
        seg.paint((14, x), 1)
    navigator.autosave_now()
    navigator.changes_box.setChecked(True)
    _settle()
    viewer.screenshot(str(IMAGES / "correcting-changes.png"), canvas_only=False)
    viewer.close()

    # "napari crashed": a new window on the same dataset finds the autosave of case 2
    workspace_module._OPENED.clear()
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1400, 900)
    navigator = CaseNavigator(viewer)
    viewer.window.add_dock_widget(navigator, name="Cases", area="right")
    navigator.set_source(root, index=0)
    _settle()
    _answer_with_screenshot(viewer, "Restore", IMAGES / "correcting-restore.png")
    navigator.next_case()
    viewer.close()


def classes(folder: Path) -> None:
    path = build("ignite-pdl1", folder)
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1400, 900)
    viewer.open(path, plugin="napari-nsclc")
    cells = viewer.layers["cells"]
    viewer.layers.selection.active = cells
    widget = ClassEditorWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Classes", area="right")
    cells.selected_data = {0, 3}
    widget.assign_selected("non-tumor cell")
    widget.save_correction()
    viewer.reset_view()
    _settle()
    viewer.screenshot(str(IMAGES / "correcting-classes.png"), canvas_only=False)
    viewer.close()


def main() -> None:
    os.environ.setdefault("NSCLC_ANNOTATOR", "alice")
    os.environ.setdefault("NSCLC_CONFIG_DIR", tempfile.mkdtemp())
    changes_and_restore(build("nsclc-nat", Path(tempfile.mkdtemp())))
    classes(Path(tempfile.mkdtemp()))


if __name__ == "__main__":
    main()
