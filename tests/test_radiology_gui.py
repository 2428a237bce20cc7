"""Radiology in a real napari viewer: open a series with its boxes, window it, jump, edit and save.

Uses the synthetic Lung-PET-CT-Dx fixture, and the real A0002 sample for File > Open. The DICOM
browser binds to the same workspace as the reader and the Cases dock; questions that dock asks
are answered by a script.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
from defusedxml import ElementTree

from napari_nsclc import registry, workflow
from napari_nsclc.formats import dicom as dicom_module
from napari_nsclc.layers import layer_data_to_case
from napari_nsclc.testing import build
from napari_nsclc.testing import radiology as fx
from napari_nsclc.widgets.case_navigator import CaseNavigator
from napari_nsclc.widgets.dicom_browser import DicomBrowser
from napari_nsclc.workflow import workspace as workspace_module


@pytest.fixture(autouse=True)
def _fresh_workspaces(tmp_path, monkeypatch):
    """Each test opens its datasets afresh, as alice, with its own settings."""
    monkeypatch.setenv("NSCLC_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("NSCLC_ANNOTATOR", "alice")
    monkeypatch.setattr(workspace_module, "_OPENED", {})


@pytest.fixture
def collection(tmp_path):
    return build("lung-pet-ct-dx", tmp_path / "lung")


@pytest.fixture
def reads(monkeypatch):
    """Every DICOM read, ``{"path", "progress"}`` (the Lung-PET-CT-Dx reader reads through ``read_dicom``)."""
    scanned = []
    original = dicom_module.read_dicom

    def counting(path, **options):
        scanned.append({"path": path, "progress": options.get("progress") is not None})
        return original(path, **options)

    monkeypatch.setattr(dicom_module, "read_dicom", counting)
    return scanned


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _move_box(boxes, plane, dx):
    """Move the box on ``plane`` by ``dx`` px right, as a drag would."""
    index = [int(d[0, 0]) for d in boxes.data].index(plane)
    data = [np.array(d) for d in boxes.data]
    data[index][:, 2] += dx
    boxes.data = data
    boxes.shape_type = ["rectangle"] * len(data)


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
    # the series with the other series of its patient, as File > Open and the Cases dock show it; the chosen on top
    assert [layer.name for layer in viewer.layers] == [
        "PT 3 PET WB", "tumour boxes (PT 3 PET WB)", "CT 2 CT Chest 5mm", "tumour boxes (CT 2 CT Chest 5mm)"]
    assert viewer.layers[-2:] == [image, boxes] and viewer.layers.selection.active is boxes
    assert browser.workspace.current == "Lung_Dx-A0001 CT CT Chest 5mm"
    assert boxes.metadata["nsclc"]["dataset"] == {"source": str(collection), "index": 0, "count": 2}
    assert [str(u) for u in image.units] == ["millimeter"] * 3 and boxes.text.string.format == "{class}"
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
    browser.open_row(2)
    assert browser.status.text() == "5mm is listed in metadata.csv but not on disk."

    # move the box on plane 5 by 2 px right, then save back through the layer data napari hands writers
    annotation = collection / "Annotation" / "A0001"
    before = {p.name: _sha(p) for p in annotation.glob("*.xml")}
    _move_box(boxes, 5, 2)
    case = layer_data_to_case([layer.as_layer_data_tuple() for layer in (image, boxes)])
    written = registry.write([case], collection, "lung-pet-ct-dx", overwrite=True)
    uid = case.image.metadata["sop_instance_uids"][5]
    assert written == [annotation / f"{uid}.xml"]
    after = {p.name: _sha(p) for p in annotation.glob("*.xml")}
    assert [name for name in before if before[name] != after[name]] == [f"{uid}.xml"]
    assert "<xmin>16</xmin>" in written[0].read_text() and "<xmax>24</xmax>" in written[0].read_text()


def test_file_open_of_the_real_sample_shows_boxes_on_their_slices(make_napari_viewer, samples, tmp_path, reads):
    root = tmp_path / "lung"
    shutil.copytree(samples / "lung-pet-ct-dx", root)
    viewer = make_napari_viewer()
    layers = viewer.open(str(root), plugin="napari-nsclc")
    assert len(layers) == 4  # both series of A0002 (see test_radiology_series.py); the dock takes the first
    image, boxes = layers[:2]
    assert image.data.shape == (30, 512, 512)
    assert tuple(image.scale) == (8.0, 0.646484375, 0.646484375)
    assert len(boxes.data) == 8
    browser = DicomBrowser(viewer)  # adopts the open series and the reader's workspace: no second read
    assert browser.workspace is workflow.shared(root) and len(reads) == 1
    assert browser.image_layer is image and browser.boxes_layer is boxes
    # A0002's two series, then A0001's two, listed in metadata.csv but not in the sample
    assert browser.table.rowCount() == 4
    assert [browser.table.item(r, 5).text() for r in range(4)] == ["", "", "8", "10"]
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


def test_browser_edits_are_saved_through_the_workspace_with_provenance(make_napari_viewer, collection, reads):
    viewer = make_napari_viewer()
    navigator = CaseNavigator(viewer)
    browser = DicomBrowser(viewer)
    browser.set_root(collection / "Lung-PET-CT-Dx" / "Lung_Dx-A0001")  # any folder of the collection
    ws = browser.workspace
    assert ws is workflow.shared(collection) and len(reads) == 1
    assert reads[0]["progress"]  # the headers were read with a progress bar
    browser.open_row(0)
    ct = ws.cases[0]
    assert navigator.workspace is ws and navigator.index == 0  # the Cases dock adopted the browser's layers
    boxes = browser.boxes_layer
    annotation = collection / "Annotation" / "A0001"
    before = {p.name: _sha(p) for p in annotation.glob("*.xml")}

    _move_box(boxes, 5, 2)
    assert ws.status(ct) == "edited"
    browser.open_row(0)  # the series on screen is not read again: the edit stays
    assert browser.boxes_layer is boxes and ws.status(ct) == "edited"
    written = navigator.save_current()  # the whole scene: the CT and its PET, whose box set is empty

    uid = ws.original(ct).image.metadata["sop_instance_uids"][5]
    correction = collection / "corrections" / "Annotation" / "A0001" / f"{uid}.xml"
    assert written == [correction]
    box = ElementTree.parse(correction).getroot().find("object/bndbox")
    assert (box.findtext("xmin"), box.findtext("xmax")) == ("16", "24")
    record = json.loads(correction.with_name(f"{uid}.xml.provenance.json").read_text())
    assert record["annotator"] == "alice" and record["case"] == ct
    # the scene's box layers are renamed apart ("tumour boxes (CT 2 ...)"), yet the change is one box moved
    assert record["changes"]["objects_moved"] == 1
    assert record["changes"]["objects_added"] == record["changes"]["objects_removed"] == 0
    assert record["source"] == f"Annotation/A0001/{uid}.xml" and record["source_sha256"] == before[f"{uid}.xml"]
    assert {p.name: _sha(p) for p in annotation.glob("*.xml")} == before  # the originals are untouched
    assert ws.status(ct) == "saved" and len(reads) == 1


def test_browser_adopts_the_readers_workspace_and_keeps_unsaved_edits(make_napari_viewer, collection, reads):
    second = collection / "Lung-PET-CT-Dx" / "Lung_Dx-B0001" / "05-06-2010-NA-Chest-1" / "2.000000-CT-1"
    fx.write_ct_series(second, fx.ct_phantom(seed=1), patient="Lung_Dx-B0001")
    viewer = make_napari_viewer()
    viewer.open(str(collection), plugin="napari-nsclc")  # the first patient's CT and PET
    navigator = CaseNavigator(viewer)
    browser = DicomBrowser(viewer)
    ws = browser.workspace
    assert ws is workflow.shared(collection) is navigator.workspace and len(reads) == 1
    browser.set_root(collection)  # choosing the folder the reader opened reads nothing again
    assert ws is browser.workspace and len(reads) == 1
    assert [browser.table.item(r, 0).text() for r in range(4)] == [
        "Lung_Dx-A0001", "Lung_Dx-A0001", "Lung_Dx-B0001", "Lung_Dx-G0001"]
    ct = ws.cases[0]
    assert browser.image_layer is viewer.layers[0] and browser.annotated_planes() == list(range(2, 9))

    # unsaved edits on screen: another patient does not replace them, even once they are autosaved
    (before,) = [np.array(d) for d in browser.boxes_layer.data if int(d[0, 0]) == 5]
    _move_box(browser.boxes_layer, 5, 2)
    assert ws.status(ct) == "edited"
    for _ in range(2):
        browser.open_row(2)
        assert "has unsaved corrections" in browser.status.text() and ws.current == ct
        navigator.autosave_now()
    # the layers are gone (closed by hand): opening the series again brings back its autosave, not the original
    viewer.layers.clear()
    asked = []
    browser.ask = lambda question, text: asked.append((question, text)) or "restore"
    browser.open_row(0)
    assert asked == [("restore", f"{ct} has autosaved corrections that were never saved.")]
    (moved,) = [d for d in browser.boxes_layer.data if int(d[0, 0]) == 5]
    assert (moved[:, 2].min(), moved[:, 2].max()) == (before[:, 2].min() + 2, before[:, 2].max() + 2)
    assert "restored the autosave of Lung_Dx-A0001 CT CT Chest 5mm" in browser.status.text()
    navigator.save_current(ct)
    assert ws.status(ct) == "saved"
    browser.open_row(2)
    assert ws.current == ws.cases[2] and navigator.index == 2
    assert [layer.name for layer in viewer.layers] == ["CT CT Chest 5mm", "tumour boxes"]
    assert len(browser.boxes_layer.data) == 0 and browser.boxes_layer.ndim == 3
    assert len(reads) == 1
