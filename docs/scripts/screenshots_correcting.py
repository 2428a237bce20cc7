"""Screenshot for docs/correcting.md: a painted NSCLC-NAT case with its changes shown, in the real napari window.

Run under ``xvfb-run -a``: ``.venv/bin/python docs/scripts/screenshots_correcting.py``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import napari
from qtpy.QtWidgets import QApplication

from napari_nsclc.testing import build
from napari_nsclc.widgets.case_navigator import CaseNavigator

IMAGES = Path(__file__).resolve().parents[1] / "images"


def main() -> None:
    os.environ.setdefault("NSCLC_ANNOTATOR", "alice")
    root = build("nsclc-nat", Path(tempfile.mkdtemp()))
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
    for _ in range(5):
        QApplication.processEvents()
    viewer.screenshot(str(IMAGES / "correcting-changes.png"), canvas_only=False)
    viewer.close()


if __name__ == "__main__":
    main()
