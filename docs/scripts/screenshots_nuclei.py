"""Regenerate the screenshot of slide-scale nuclei in docs/whole-slide.md from a real napari window.

Run: ``xvfb-run -a .venv/bin/python docs/scripts/screenshots_nuclei.py``.
The slide is the synthetic ``wsi`` fixture (4096 x 4096 at 0.25 um/px); the
nuclei are 10,000 synthetic QuPath detections in a same-named GeoJSON, which
opens with the slide. A lasso selection is drawn as napari's lasso would.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import napari
import numpy as np
from napari.settings import get_settings

from napari_nsclc.testing.nuclei import build_nuclei_geojson
from napari_nsclc.testing.slides import build_wsi
from napari_nsclc.widgets.nuclei import LASSO_LAYER, NucleiWidget
from _window import IMAGES, settle


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        slide = build_wsi(Path(folder))
        build_nuclei_geojson(Path(folder) / "slide.geojson", 10_000, side=4096)
        get_settings().application.gui_notification_level = "none"
        viewer = napari.Viewer(show=True)
        viewer.window.resize(1400, 860)
        dock = NucleiWidget(viewer)
        viewer.window.add_dock_widget(dock, name="Nuclei", area="right")
        viewer.open(slide, plugin="napari-nsclc")  # the same-named GeoJSON's nuclei come with it
        for name in ("ASAP polygons", "ASAP points"):
            viewer.layers[name].visible = False
        viewer.canvas.overlays.scale_bar.visible = True
        viewer.camera.center = (0.40 * 1024, 0.30 * 1024)  # µm
        viewer.camera.zoom = viewer.camera.zoom * 5
        dock.start_lasso()
        loop = np.array([[1500.0, 1100.0], [1500.0, 1350.0], [1700.0, 1400.0], [1750.0, 1150.0]])  # level-0 px
        viewer.layers[LASSO_LAYER].add_polygons([loop])
        viewer.layers.selection.active = dock.layer
        settle(viewer)
        viewer.screenshot(str(IMAGES / "whole-slide-nuclei.png"), canvas_only=False)
        viewer.close()


if __name__ == "__main__":
    main()
