"""Lung-PET-CT-Dx on the real patient A0002 (TCIA, CC BY 4.0): two CT series, 18 annotated slices."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from napari_nsclc import registry
from napari_nsclc.datasets import lung_pet_ct_dx as lung
from napari_nsclc.formats import voc

B70F = "2.000000-ThoraxRoutine  8.0.0  B70f-62919"
B40F = "3.000000-ThoraxRoutine  8.0.0  B40f-10983"
STUDY = "Lung-PET-CT-Dx/Lung_Dx-A0002/04-25-2007-NA-ThoraxAThoraxRoutine Adult-34834"


@pytest.fixture(scope="module")
def root(samples) -> Path:
    return samples / "lung-pet-ct-dx"


@pytest.fixture(scope="module")
def cases(root):
    return registry.read(root)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_collection_root_is_detected_and_both_series_open(root, cases):
    assert registry.detect(root).name == "lung-pet-ct-dx"
    assert [c.image.metadata["series_description"] for c in cases] == [
        "ThoraxRoutine  8.0.0  B70f",
        "ThoraxRoutine  8.0.0  B40f",
    ]
    for case in cases:
        assert case.image.shape == (30, 512, 512)
        assert case.image.metadata["modality"] == "CT"
        assert case.provenance.warnings == []


def test_slices_are_ordered_along_the_normal_from_image_position_patient(root, cases):
    for case, folder in zip(cases, (B70F, B40F), strict=True):
        headers = {
            pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID: pydicom.dcmread(f, stop_before_pixels=True)
            for f in (root / STUDY / folder).glob("*.dcm")
        }
        z = [float(headers[uid].ImagePositionPatient[2]) for uid in case.image.metadata["sop_instance_uids"]]
        # axial slices: the normal is +z; files 1-01 ... 1-30 run from head (312) to feet (80)
        assert z == [80.0 + 8.0 * k for k in range(30)]
        assert case.image.metadata["slice_positions"] == z
        assert Path(case.image.metadata["files"][0]).name == "1-30.dcm"


def test_values_are_hounsfield_units(root, cases):
    ct = cases[0]
    volume = np.asarray(ct.image.data)
    assert volume.dtype == np.int16
    assert volume.min() == -1024  # air outside the reconstruction circle (stored 0, intercept -1024)
    assert 1500 < volume.max() < 3072  # bone
    files = ct.image.metadata["files"]
    reference = pydicom.dcmread(files[7])
    expected = reference.pixel_array * float(reference.RescaleSlope) + float(reference.RescaleIntercept)
    np.testing.assert_array_equal(volume[7], expected)
    lung_field = volume[15, 200:260, 380:420]
    assert np.median(lung_field) < -700  # aerated lung


def test_scale_and_translate_are_in_mm(cases):
    image = cases[0].image
    assert image.unit == "mm"
    assert image.pixel_size == (8.0, 0.646484375, 0.646484375)
    assert image.origin == (80.0, -294.1767578125, -173.1767578125)
    assert image.metadata["window"] == (350.0, 40.0)
    assert cases[0].image.metadata["frame_of_reference"] == cases[1].image.metadata["frame_of_reference"]


def test_each_of_the_18_boxes_lands_on_the_slice_its_xml_names(root, cases):
    xml_files = sorted((root / "Annotation" / "A0002").glob("*.xml"))
    assert len(xml_files) == 18
    found = {}
    for case in cases:
        boxes = case.boxes[0]
        uids = case.image.metadata["sop_instance_uids"]
        for i in range(len(boxes)):
            uid = boxes.attributes[i]["sop_instance_uid"]
            assert uids[boxes.planes[i]] == uid
            found[uid] = (case.image.metadata["series_description"], int(boxes.planes[i]), boxes.bounds[i].tolist())
    assert sorted(found) == sorted(p.stem for p in xml_files)
    assert [len(c.boxes[0]) for c in cases] == [8, 10]
    assert cases[0].boxes[0].counts() == {"A": 8}
    # one box checked against the file and the DICOM header by hand
    first = "1.3.6.1.4.1.14519.5.2.1.6655.2359.122259036515695905512549026864"
    series, plane, bounds = found[first]
    # (ymin, xmin, ymax, xmax) of <bndbox> 134 274 216 338, corner origin: model = file - 0.5
    assert bounds == [273.5, 133.5, 337.5, 215.5]
    header = pydicom.dcmread(next(f for c in cases for f in c.image.metadata["files"]
                                  if pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID == first))
    assert float(header.ImagePositionPatient[2]) == 80.0 + 8.0 * plane


def test_unedited_save_back_touches_no_file(root, cases, tmp_path):
    copy = tmp_path / "lung-pet-ct-dx"
    shutil.copytree(root / "Annotation", copy / "Annotation")
    (copy / "metadata.csv").write_bytes((root / "metadata.csv").read_bytes())
    before = {p.name: _sha256(p) for p in (copy / "Annotation" / "A0002").glob("*.xml")}
    assert lung.write_lung_pet_ct_dx(cases, copy, overwrite=True) == []
    assert {p.name: _sha256(p) for p in (copy / "Annotation" / "A0002").glob("*.xml")} == before


def test_save_to_a_new_folder_reproduces_every_xml_byte_for_byte(root, cases, tmp_path):
    written = lung.write_lung_pet_ct_dx(cases, tmp_path / "out")
    assert len(written) == 18
    for path in written:
        assert path.read_bytes() == (root / "Annotation" / "A0002" / path.name).read_bytes()


def test_editing_one_box_rewrites_only_its_own_xml(root, samples, tmp_path):
    copy = tmp_path / "lung-pet-ct-dx"
    shutil.copytree(root, copy)
    originals = {p: _sha256(p) for p in (samples / "lung-pet-ct-dx" / "Annotation" / "A0002").glob("*.xml")}
    cases = lung.read_lung_pet_ct_dx(copy)
    boxes = cases[1].boxes[0]
    uid = boxes.attributes[3]["sop_instance_uid"]
    boxes.bounds[3] = [250.0, 120.5, 330.0, 210.0]

    with pytest.raises(Exception, match="already exists"):
        lung.write_lung_pet_ct_dx(cases, copy)  # no silent overwrite
    written = lung.write_lung_pet_ct_dx(cases, copy, overwrite=True)

    target = copy / "Annotation" / "A0002" / f"{uid}.xml"
    assert written == [target]
    for original, digest in originals.items():
        edited = copy / "Annotation" / "A0002" / original.name
        if original.name == target.name:
            assert _sha256(edited) != digest
        else:
            assert _sha256(edited) == digest
    # the rewritten file keeps the source's tags, including <Difficult> and the mixed <source>
    text = target.read_text()
    assert "<Difficult>0</Difficult>" in text and "<source>Unknow<database>Unknown</database>" in text
    header, objects, warnings = voc.parse_voc(text, target)
    # the edit is kept exactly: whole numbers where the corners are whole, as the source writes, else a half pixel
    assert [o.bounds for o in objects] == [(250.0, 120.5, 330.0, 210.0)]
    assert "<xmin>121</xmin>" in text and "<ymin>250.5</ymin>" in text  # file = model + 0.5
    assert warnings == []
    # the shared sample is untouched
    assert {p: _sha256(p) for p in originals} == originals


def test_opening_one_series_lists_the_other_series_xmls(root):
    cases = registry.read(root / STUDY / B70F)
    assert len(cases) == 1 and len(cases[0].boxes[0]) == 8
    unmatched = cases[0].provenance.details["unmatched_annotations"]
    assert len(unmatched) == 10
    assert sum("not in the loaded series" in w for w in cases[0].provenance.warnings) == 10


def test_browser_rows_come_from_metadata_csv(root):
    rows = lung.browse_collection(root)
    assert [(r.patient, r.diagnosis, r.modality, r.slices, r.annotated, r.on_disk) for r in rows] == [
        ("Lung_Dx-A0001", "A", "CT", 64, None, False),
        ("Lung_Dx-A0001", "A", "CT", 64, None, False),
        ("Lung_Dx-A0002", "A", "CT", 30, 10, True),
        ("Lung_Dx-A0002", "A", "CT", 30, 8, True),
    ]
    assert rows[3].series == "ThoraxRoutine  8.0.0  B70f"


def test_a_box_drawn_on_a_new_slice_gets_its_own_xml_in_the_collection_style(root, tmp_path):
    copy = tmp_path / "lung-pet-ct-dx"
    shutil.copytree(root / "Annotation", copy / "Annotation")
    (copy / "metadata.csv").write_bytes((root / "metadata.csv").read_bytes())
    cases = lung.read_lung_pet_ct_dx(root)
    ct = cases[0]
    boxes = ct.boxes[0]
    ct.boxes[0] = type(boxes)(boxes.name, [*boxes.bounds, [100, 110, 150, 170]], [*boxes.classes, "G"],
                              boxes.schema, [*boxes.attributes, {}], planes=[*boxes.planes, 3])
    written = lung.write_lung_pet_ct_dx(cases, copy)
    uid = ct.image.metadata["sop_instance_uids"][3]
    assert written == [copy / "Annotation" / "A0002" / f"{uid}.xml"]
    expected = next((root / "Annotation" / "A0002").glob("*.xml")).read_text()
    header, objects, warnings = voc.parse_voc(written[0].read_text())
    assert [(o.name, o.bounds) for o in objects] == [("G", (100.0, 110.0, 150.0, 170.0))]
    # same layout as the collection's own files: only the numbers and the class differ
    def skeleton(text):
        return re.sub(r">[^<]*<", "><", text)

    assert skeleton(written[0].read_text()) == skeleton(expected)
