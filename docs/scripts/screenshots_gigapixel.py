"""Regenerate the screenshots of docs/gigapixel.md from a real napari window.

Run: ``xvfb-run -a .venv/bin/python docs/scripts/screenshots_gigapixel.py``.
The slide is the synthetic ``wsi`` fixture (4096 x 4096 at 0.25 um/px with a
same-named ASAP XML): no patient data. Its label pyramid is created from that
XML through the dock, a region is opened where the first tumour ends, a
student's correction is painted into it (as napari's brush would), and it is
committed.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import napari
import numpy as np
from napari.settings import get_settings

from napari_nsclc.testing.slides import build_wsi
from napari_nsclc.widgets.case_info import CaseInfoWidget
from napari_nsclc.widgets.gigapixel import LabelPyramidWidget
from _window import IMAGES, settle


def _shot(viewer, name: str) -> None:
    settle(viewer)
    viewer.screenshot(str(IMAGES / name), canvas_only=False)


def main() -> None:
    os.environ.setdefault("NSCLC_ANNOTATOR", "a student")
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        slide = build_wsi(Path(folder))
        get_settings().application.gui_notification_level = "none"
        viewer = napari.Viewer(show=True)
        viewer.window.resize(1400, 860)
        dock = LabelPyramidWidget(viewer)
        viewer.window.add_dock_widget(dock, name="Label pyramid", area="right")
        viewer.window.add_dock_widget(CaseInfoWidget(viewer), name="Case information", area="right")  # the legend
        viewer.open(slide, plugin="napari-nsclc")
        for name in ("ASAP polygons", "ASAP points"):
            viewer.layers[name].visible = False  # the pyramid draws them; their outlines would hide it
        viewer.canvas.overlays.scale_bar.visible = True
        viewer.reset_view()
        dock.source.setCurrentIndex(dock.source.findText("the ASAP XML (slide.xml)"))
        _shot(viewer, "gigapixel-offer.png")

        dock.create_button.click()
        viewer.layers.selection.active = dock.pyramid_layer
        _shot(viewer, "gigapixel-overview.png")

        # zoom on the left edge of the first tumour (it is centred at x = 0.35, y = 0.4 of the slide), in µm
        viewer.scene.camera.center = (0.40 * 1024, 0.26 * 1024)
        viewer.scene.camera.zoom = viewer.scene.camera.zoom * 2.5
        dock.edit_view.click()
        region, edit = dock.region_layer, dock.editor.current
        yy, xx = np.ogrid[edit.y0 : edit.y1, edit.x0 : edit.x1]  # level-0 pixels
        lobe = ((yy - 0.41 * 4096) / 120) ** 2 + ((xx - 0.215 * 4096) / 170) ** 2 < 1
        region.selected_label = 1
        region.data_setitem(tuple(np.nonzero(lobe)), 1)  # the student extends the tumour into the tissue on its left
        _shot(viewer, "gigapixel-editing.png")

        dock.commit_button.click()
        _shot(viewer, "gigapixel-committed.png")
        viewer.close()


if __name__ == "__main__":
    main()
