"""Regenerate the screenshots of docs/lung-pet-ct-dx.md and docs/voc-detection.md from a real napari window.

Run: ``xvfb-run -a .venv/bin/python docs/scripts/screenshots_radiology.py``.

* ``lung-pet-ct-dx-lung-window.png``: the real Lung-PET-CT-Dx patient A0002
  (TCIA, CC BY 4.0, from ``../shared/samples`` or ``$NSCLC_SAMPLES``), series
  B40f, on an annotated slice in the lung window, with the DICOM browser dock.
* ``lung-pet-ct-dx-two-series.png``: the real patient folder, both series open;
* ``lung-pet-ct-dx-pet-overlay.png``: the synthetic CT + PET fixture
  (no patient data), PET in SUV over the CT in the mediastinum window.
* ``voc-detection.png``: the synthetic VOC detection fixture.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import napari

from napari_nsclc.testing import build
from napari_nsclc.widgets.dicom_browser import COLUMNS, DicomBrowser
from _window import IMAGES, settle

REPO = Path(__file__).resolve().parents[2]
SAMPLES = Path(os.environ.get("NSCLC_SAMPLES", REPO.parent / "shared" / "samples"))


def real_sample_in_lung_window() -> None:
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1400, 860)
    browser = DicomBrowser(viewer)
    viewer.window.add_dock_widget(browser, name="DICOM browser", area="right")
    browser.set_root(SAMPLES / "lung-pet-ct-dx")
    series = [browser.table.item(row, COLUMNS.index("Series")).text() for row in range(browser.table.rowCount())]
    browser.open_row(next(i for i, text in enumerate(series) if "B40f" in text))  # on top of B70f
    browser.apply_window("lung")
    browser.jump(+1)
    browser.jump(+1)  # the third annotated slice: a well-sized box in the right lung
    viewer.layers.selection.active = browser.boxes_layer
    viewer.canvas.overlays.scale_bar.visible = True
    viewer.reset_view()
    settle()
    viewer.scene.camera.zoom *= 1.15
    settle()
    viewer.screenshot(str(IMAGES / "lung-pet-ct-dx-lung-window.png"), canvas_only=False)
    viewer.close()


def synthetic_pet_over_ct(folder: Path) -> None:
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1200, 800)
    root = build("lung-pet-ct-dx", folder)
    browser = DicomBrowser(viewer)
    viewer.window.add_dock_widget(browser, name="DICOM browser", area="right")
    browser.set_root(root)
    browser.open_row(0)  # the CT, on top of the PET of its study (scale, translate and units in mm)
    pet = viewer.layers["PT 3 PET WB"]
    pet.opacity = 0.6  # additive, as the reader sets it
    viewer.layers.move(viewer.layers.index(pet), viewer.layers.index(browser.boxes_layer))  # over the CT, under its boxes
    browser.go_to_plane(5)
    browser.jump(+1)
    browser.jump(-1)  # back on plane 5, with the status line updated
    viewer.canvas.overlays.scale_bar.visible = True
    viewer.reset_view()
    settle()
    viewer.screenshot(str(IMAGES / "lung-pet-ct-dx-pet-overlay.png"), canvas_only=False)
    viewer.close()


def voc_dataset(folder: Path) -> None:
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1100, 760)
    root = build("voc-detection", folder)
    viewer.open(str(root), plugin="napari-nsclc")
    viewer.reset_view()
    settle()
    viewer.screenshot(str(IMAGES / "voc-detection.png"), canvas_only=False)
    viewer.close()

def real_patient_two_series() -> None:
    """The real A0002 patient folder, opened as a user would: both CT reconstructions, each with its boxes."""
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1400, 860)
    viewer.open(str(SAMPLES / "lung-pet-ct-dx" / "Lung-PET-CT-Dx" / "Lung_Dx-A0002"), plugin="napari-nsclc")
    boxes = viewer.layers["tumour boxes (CT 3 B40f)"]
    viewer.dims.set_point(0, boxes.data_to_world(boxes.data[2][0])[0])  # the slice of B40f's third box
    viewer.layers["CT 2 B70f"].visible = False  # B40f on top: hide B70f to see it, as the docs say
    viewer.layers.selection.active = boxes
    viewer.canvas.overlays.scale_bar.visible = True
    viewer.reset_view()
    settle()
    viewer.screenshot(str(IMAGES / "lung-pet-ct-dx-two-series.png"), canvas_only=False)
    viewer.close()


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    real_sample_in_lung_window()
    real_patient_two_series()
    with tempfile.TemporaryDirectory() as folder:
        synthetic_pet_over_ct(Path(folder) / "pet")
        voc_dataset(Path(folder) / "voc")


if __name__ == "__main__":
    main()
