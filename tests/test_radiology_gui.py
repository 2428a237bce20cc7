"""Radiology in a real napari viewer: open a series with its boxes, window it, jump, edit and save.

Uses the synthetic Lung-PET-CT-Dx fixture, and the real A0002 sample for File > Open.
"""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest

from napari_nsclc import registry
from napari_nsclc.layers import layer_data_to_case
from napari_nsclc.testing import build
from napari_nsclc.testing import radiology as fx
from napari_nsclc.widgets.dicom_browser import DicomBrowser


@pytest.fixture
def collection(tmp_path):
    return build("lung-pet-ct-dx", tmp_path)


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_browser_opens_series_windows_jumps_and_saves_one_xml(make_napari_viewer, collection):
    viewer = make_napari_viewer()
    browser = DicomBrowser(viewer)
    browser.set_root(collection)
    table = [[browser.table.item(r, c).text() for c in range(browser.table.columnCount())]
             for r in range(browser.table.rowCount())]
    assert table == [
        ["Lung_Dx-A0001", "A", "CT", "CT Chest 5mm", "10", "7", "01-02-2008 PET-CT Chest"],
        ["Lung_Dx-A0001", "A", "PT", "PET WB", "10", "0", "01-02-2008 PET-CT Chest"],
        ["Lung_Dx-G0001", "G", "CT", "5mm", "64", "", "03-04-2009 Chest"],
    ]
    browser.table.cellDoubleClicked.emit(0, 0)

    image, boxes = browser.image_layer, browser.boxes_layer
    assert image is not None and boxes is not None
    assert [layer.name for layer in viewer.layers] == ["CT CT Chest 5mm", "tumour boxes"]
    assert [str(u) for u in image.units] == ["millimeter"] * 3
    np.testing.assert_array_equal(np.asarray(image.data), fx.ct_phantom())
    assert tuple(image.scale) == (5.0, 5.0, 5.0) and tuple(image.translate) == (-40.0, -157.5, -157.5)
    assert tuple(image.contrast_limits) == (-135.0, 215.0)  # mediastinum, the CT default
    assert len(boxes.data) == 7 and set(boxes.shape_type) == {"rectangle"}
    assert tuple(boxes.scale) == (5.0, 5.0, 5.0)
    assert list(boxes.features["class"]) == ["A"] * 7
    # opening jumped to the first annotated slice (plane 2 = z -30 mm)
    assert viewer.dims.point[0] == pytest.approx(-30.0)

    browser.preset_buttons["lung"].click()
    assert tuple(image.contrast_limits) == (-1400.0, 0.0)
    browser.jump(+1)
    assert viewer.dims.point[0] == pytest.approx(-25.0)
    browser.go_to_plane(9)
    browser.jump(-1)
    assert viewer.dims.point[0] == pytest.approx(-40.0 + 5 * 8)
    browser.jump(+1)
    assert "No further box" in browser.status.text()

    # move the box on plane 5 by 2 px right, then save back through the layer data napari hands writers
    annotation = collection / "Annotation" / "A0001"
    before = {p.name: _sha(p) for p in annotation.glob("*.xml")}
    index = [int(d[0, 0]) for d in boxes.data].index(5)
    data = [np.array(d) for d in boxes.data]
    data[index][:, 2] += 2
    boxes.data = data
    boxes.shape_type = ["rectangle"] * len(data)
    case = layer_data_to_case([layer.as_layer_data_tuple() for layer in (image, boxes)])
    written = registry.write([case], collection, "lung-pet-ct-dx", overwrite=True)
    uid = case.image.metadata["sop_instance_uids"][5]
    assert written == [annotation / f"{uid}.xml"]
    after = {p.name: _sha(p) for p in annotation.glob("*.xml")}
    assert [name for name in before if before[name] != after[name]] == [f"{uid}.xml"]
    assert "<xmin>16</xmin>" in written[0].read_text() and "<xmax>24</xmax>" in written[0].read_text()


def test_file_open_of_the_real_sample_shows_boxes_on_their_slices(make_napari_viewer, samples, tmp_path):
    root = tmp_path / "lung"
    shutil.copytree(samples / "lung-pet-ct-dx", root)
    viewer = make_napari_viewer()
    layers = viewer.open(str(root), plugin="napari-nsclc")
    assert len(layers) == 4  # both series of A0002 (see test_radiology_series.py); the dock takes the first
    image, boxes = layers[:2]
    assert image.data.shape == (30, 512, 512)
    assert tuple(image.scale) == (8.0, 0.646484375, 0.646484375)
    assert len(boxes.data) == 8
    browser = DicomBrowser(viewer)  # adopts the open series and its collection
    assert browser.table.rowCount() == 4
    assert browser.annotated_planes() == list(range(12, 20))
    browser.apply_window("lung")
    assert tuple(image.contrast_limits) == (-1400.0, 0.0)
    # a series opened afterwards through File > Open is followed by the dock
    study = root / "Lung-PET-CT-Dx" / "Lung_Dx-A0002" / "04-25-2007-NA-ThoraxAThoraxRoutine Adult-34834"
    other = viewer.open(str(study / "3.000000-ThoraxRoutine  8.0.0  B40f-10983"), plugin="napari-nsclc")
    assert browser.image_layer is other[0] and browser.boxes_layer is other[1]
    assert browser.annotated_planes() == list(range(12, 22))


def test_pet_series_opens_in_suv_over_the_same_world_as_ct(make_napari_viewer, collection):
    viewer = make_napari_viewer()
    browser = DicomBrowser(viewer)
    browser.set_root(collection)
    browser.open_row(1)
    pet = browser.image_layer
    assert pet.colormap.name == "inferno"
    assert tuple(pet.contrast_limits) == (0.0, 6.0)  # the PET preset, in SUV
    assert tuple(pet.scale) == (5.0, 10.0, 10.0) and tuple(pet.translate) == (-40.0, -155.0, -155.0)
    assert len(browser.boxes_layer.data) == 0
    assert browser.annotated_planes() == []
    browser.jump(+1)
    assert browser.status.text() == "This series has no box."
