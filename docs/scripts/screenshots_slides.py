"""Regenerate the whole-slide screenshots of docs/whole-slide.md from a real napari window.

Run: ``xvfb-run -a .venv/bin/python docs/scripts/screenshots_slides.py``.
The slide is the synthetic ``wsi`` fixture (4096 x 4096 SVS-like pyramid at
0.25 um/px with a same-named ASAP XML): no patient data.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import napari
from napari.settings import get_settings

from napari_nsclc.testing.slides import build_wsi
from _window import IMAGES, settle


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        slide = build_wsi(Path(folder))
        get_settings().application.gui_notification_level = "none"  # no start-up toasts over the image
        viewer = napari.Viewer(show=True)
        viewer.window.resize(1280, 820)
        viewer.open(slide, plugin="napari-nsclc")
        viewer.layers.selection.active = viewer.layers["ASAP polygons"]
        for layer in viewer.layers:
            layer.units = ("µm", "µm")  # the layers' scale is in micrometres
        viewer.reset_view()
        viewer.canvas.overlays.scale_bar.visible = True
        settle(viewer)
        viewer.screenshot(str(IMAGES / "whole-slide-overview.png"), canvas_only=False)

        # zoom on the first tumour outline (centre at x = 0.35, y = 0.4 of 4096 px, in um)
        viewer.scene.camera.center = (0.4 * 4096 * 0.25, 0.35 * 4096 * 0.25)
        viewer.scene.camera.zoom = viewer.scene.camera.zoom * 2.2
        settle(viewer)
        viewer.screenshot(str(IMAGES / "whole-slide-zoom.png"), canvas_only=False)
        viewer.close()


if __name__ == "__main__":
    main()
