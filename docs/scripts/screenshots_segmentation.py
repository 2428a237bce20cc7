"""Regenerate the screenshots of the segmentation pages from a real napari window.

Run: ``xvfb-run -a .venv/bin/python docs/scripts/screenshots_segmentation.py``.
Every dataset is a synthetic fixture from ``napari_nsclc.testing.segmentation``
(built larger than in the tests so the screen is readable): no patient data.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import napari
from napari.settings import get_settings

from napari_nsclc.testing import segmentation as fixtures
from napari_nsclc.widgets.case_navigator import CaseNavigator
from _window import IMAGES, settle


def _viewer(with_navigator: bool = False):
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1400, 860)
    navigator = None
    if with_navigator:
        navigator = CaseNavigator(viewer)
        viewer.window.add_dock_widget(navigator, name="Cases", area="right")
    return viewer, navigator


def _shoot(viewer, name: str) -> None:
    settle(viewer)  # the canvas takes its final size first, then the view fits the data
    viewer.reset_view()
    settle(viewer)
    viewer.screenshot(str(IMAGES / f"{name}.png"), canvas_only=False)
    viewer.close()


def nsclc_nat(folder: Path) -> None:
    root = fixtures.build_nsclc_nat(folder / "nat", n_cases=6, shape=(420, 560))
    viewer, navigator = _viewer(with_navigator=True)
    navigator.set_source(root, index=1)
    viewer.layers["expert mask (Mask)"].visible = False
    viewer.layers.selection.active = viewer.layers["tumour bed (SegmentationClass)"]
    seg = viewer.layers["tumour bed (SegmentationClass)"]
    seg.opacity = 0.45
    seg.brush_size = 18
    for x in range(60, 200, 6):  # a correction stroke painted by the student
        seg.paint((70, x), 1)
    navigator.refresh_legend()
    _shoot(viewer, "nsclc-nat")


def ignite(folder: Path) -> None:
    data = fixtures.build_ignite_he(folder / "ignite", context_shape=(400, 520), border=40)
    viewer, navigator = _viewer(with_navigator=True)
    navigator.set_source(data, index=1)
    viewer.layers["tissue"].opacity = 0.55
    _shoot(viewer, "ignite-he")


def cocahis(folder: Path) -> None:
    path = fixtures.build_cocahis(folder / "cocahis", n_images=2, shape=(360, 480))
    viewer, navigator = _viewer(with_navigator=True)
    navigator.set_source(path)
    for layer in viewer.layers:
        if layer.name.startswith("GT") and layer.name not in ("GT1", "GT7"):
            layer.visible = False
    for name in ("GT1", "GT7"):  # outlines, so both annotators show on the tissue
        viewer.layers[name].contour = 3
        viewer.layers[name].opacity = 1.0
    viewer.layers.selection.active = viewer.layers["GT1"]
    navigator.refresh_legend()
    _shoot(viewer, "cocahis")


def pcam(folder: Path) -> None:
    path = fixtures.build_pcam(folder / "pcam")
    viewer, navigator = _viewer(with_navigator=True)
    navigator.set_source(path)
    viewer.dims.set_current_step(0, 1)
    viewer.layers[-1].opacity = 0.35
    navigator.refresh_legend()
    _shoot(viewer, "pcam")


def voc(folder: Path) -> None:
    root = fixtures.build_voc_segmentation(folder / "voc")
    viewer, navigator = _viewer(with_navigator=True)
    navigator.set_source(root)
    viewer.layers["objects"].visible = False
    viewer.layers.selection.active = viewer.layers["class"]
    navigator.refresh_legend()
    _shoot(viewer, "voc-segmentation")


def masks(folder: Path) -> None:
    mask = fixtures.build_mask_pair(folder / "pair")
    viewer, navigator = _viewer(with_navigator=True)
    navigator.set_source(mask)
    _shoot(viewer, "masks")


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    get_settings().application.gui_notification_level = "none"
    with tempfile.TemporaryDirectory() as folder:
        for make in (nsclc_nat, ignite, cocahis, pcam, voc, masks):
            make(Path(folder))


if __name__ == "__main__":
    main()
