"""PASCAL VOC XML and VOC detection datasets (synthetic fixtures in the devkit, LabelImg and CVAT flavours)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from napari_nsclc import registry
from napari_nsclc.cli import main as cli_main
from napari_nsclc.datasets import voc_detection
from napari_nsclc.formats import voc
from napari_nsclc.model import BoxSet, Case, ClassSchema, ImageRef, NsclcFormatError
from napari_nsclc.testing import build
from napari_nsclc.testing import radiology as fx


@pytest.fixture
def dataset(tmp_path) -> Path:
    return build("voc-detection", tmp_path)


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_dataset_reads_every_flavour(dataset):
    assert registry.detect(dataset).name == "voc-detection"
    cases = registry.read(dataset)
    assert [c.name for c in cases] == ["img_000", "img_001", "img_002"]
    devkit, labelimg, cvat = cases
    # <bndbox> has a pixel-corner origin: model = file - 0.5 (model.py, "Geometry conventions")
    assert devkit.boxes[0].bounds.tolist() == [[5.5, 4.5, 24.5, 29.5], [29.5, 39.5, 40.5, 49.5]]
    assert devkit.boxes[0].attributes[0]["parts"] == [
        {"name": "head", "bndbox": {"xmin": "5", "ymin": "6", "xmax": "9", "ymax": "10"}}]
    assert labelimg.boxes[0].bounds.tolist() == [[11.75, 10.0, 39.5, 33.25]]  # file 12.25 10.5 40.0 33.75 - 0.5
    assert labelimg.boxes[0].attributes[0]["occluded"] == ""  # the empty <occluded/>
    assert cvat.boxes[0].attributes[0]["occluded"] == "1"
    assert cvat.boxes[0].attributes[0]["attributes"] == {"grade": "2"}
    assert cvat.boxes[0].classes.tolist() == ["tumour", "lymphocyte"]
    assert devkit.boxes[0].schema.names == ["tumour", "lymphocyte", "necrosis"]  # one schema for the dataset
    assert [c.provenance.details["voc_splits"] for c in cases] == [["train"], ["train"], ["val"]]
    image = np.asarray(devkit.image.data)
    assert image.shape == (48, 64, 3) and image.dtype == np.uint8 and devkit.image.rgb
    assert all(c.provenance.warnings == [] for c in cases)


def test_round_trip_to_a_new_folder_is_byte_identical(dataset, tmp_path):
    cases = registry.read(dataset)
    out = tmp_path / "copy"
    registry.write(cases, out, "voc")  # a folder target writes a whole dataset
    assert _digests(out) == _digests(dataset)


def test_saving_unchanged_cases_in_place_touches_nothing(dataset):
    before = _digests(dataset)
    mtimes = {p: p.stat().st_mtime_ns for p in dataset.rglob("*.xml")}
    assert registry.write(registry.read(dataset), dataset, "voc-detection") == []
    assert _digests(dataset) == before
    assert {p: p.stat().st_mtime_ns for p in dataset.rglob("*.xml")} == mtimes


def test_edited_box_changes_only_its_bndbox_values(dataset):
    cases = registry.read(dataset)
    cvat = cases[2]
    # model coordinates (file - 0.5): in the file ymin becomes 4.5 and xmax 12, xmin 3 and ymax 9 stay
    cvat.boxes[0].bounds[1] = [4.0, 2.5, 8.5, 11.5]
    original = (dataset / "Annotations" / "img_002.xml").read_text()
    written = registry.write(cases, dataset, "voc-detection", overwrite=True)
    assert written == [dataset / "Annotations" / "img_002.xml"]
    text = written[0].read_text()
    expected = original.replace("<ymin>3.00</ymin>", "<ymin>4.5</ymin>", 1).replace("<xmax>9.00</xmax>\n      <ymax>9.00",
                                                                                  "<xmax>12</xmax>\n      <ymax>9.00", 1)
    assert text == expected


def test_added_and_deleted_boxes(dataset):
    case = registry.read(dataset / "Annotations" / "img_000.xml")[0]
    boxes = case.boxes[0]
    case.boxes[0] = BoxSet(boxes.name, [boxes.bounds[1], [1, 2, 3, 4]], ["lymphocyte", "necrosis"], boxes.schema,
                           [boxes.attributes[1], {}])
    text = voc.case_to_voc_text(case)
    header, objects, warnings = voc.parse_voc(text)
    # parse_voc gives model bounds: the kept box's <bndbox> 40 30 50 41 - 0.5 (corner origin)
    assert [(o.name, o.bounds) for o in objects] == [("lymphocyte", (29.5, 39.5, 40.5, 49.5)), ("necrosis", (1, 2, 3, 4))]
    assert text.count("<part>") == 1  # the kept object keeps its part; the new one is laid out like it, without
    assert "\t<object>\n\t\t<name>necrosis</name>\n\t\t<pose>Frontal</pose>" in text
    assert warnings == []


def test_single_xml_write_refuses_to_overwrite(dataset):
    path = dataset / "Annotations" / "img_001.xml"
    case = registry.read(path)[0]
    case.boxes[0].classes[0] = "tumour"
    with pytest.raises(NsclcFormatError, match="already exists"):
        registry.write([case], path, "voc")
    assert registry.write([case], path, "voc", overwrite=True) == [path]
    assert "<name>tumour</name>" in path.read_text()


def test_lung_pet_ct_dx_quirks_survive(tmp_path):
    path = tmp_path / "slice.xml"
    path.write_text(fx.lung_voc_text([("G", 10, 20, 30, 40), ("A", 1, 2, 3, 4)], 512, 512))
    case = voc.read_voc(path)[0]
    assert case.boxes[0].attributes[0]["difficult"] == "0"  # read from <Difficult>
    assert voc.case_to_voc_text(case) == path.read_text()


def test_empty_elements_and_file_without_objects(tmp_path):
    path = tmp_path / "empty.xml"
    path.write_text("<annotation><filename>a.jpg</filename><size><width></width><height/></size>"
                    "<object><name>x</name><bndbox><xmin></xmin><ymin>1</ymin><xmax>2</xmax><ymax>3</ymax>"
                    "</bndbox></object><object><name>y</name></object></annotation>")
    case = voc.read_voc(path)[0]
    assert len(case.boxes[0]) == 0
    assert case.image.shape is None
    warnings = case.provenance.warnings
    assert "empty.xml: object 0 (x): bndbox has an empty coordinate" in warnings[0]
    assert "empty.xml: object 1 (y): no <bndbox>" in warnings[1]
    assert voc.case_to_voc_text(case) == path.read_text()  # nothing lost
    none = tmp_path / "none.xml"
    none.write_text("<annotation><filename>b.jpg</filename></annotation>")
    assert voc.read_voc(none)[0].provenance.warnings == ["none.xml: no <object> in the file (an annotation file "
                                                         "with no box)"]


def test_box_outside_the_image_is_kept_with_a_warning(tmp_path):
    path = tmp_path / "out.xml"
    path.write_text(fx.lung_voc_text([("A", 500, 20, 530, 40)], 512, 512))
    case = voc.read_voc(path)[0]
    assert case.boxes[0].bounds.tolist() == [[19.5, 499.5, 39.5, 529.5]]  # <bndbox> 500 20 530 40 - 0.5 (corner origin)
    assert "out.xml: object 0 (A): box" in case.provenance.warnings[0]
    assert "outside the 512x512 image" in case.provenance.warnings[0]


@pytest.mark.parametrize("text, problem", [
    ("<annotation><object>", "not well-formed"),
    ("<Annotations/>", "root element is <Annotations>"),
    ('<!DOCTYPE a [<!ENTITY e "x">]><annotation>&e;</annotation>', "refused by the safe XML parser"),
])
def test_bad_xml_is_a_clear_error(tmp_path, text, problem):
    path = tmp_path / "bad.xml"
    path.write_text(text)
    with pytest.raises(NsclcFormatError, match=problem):
        voc.read_voc(path)


def test_volume_cases_are_refused_by_the_2d_writer(tmp_path):
    schema = ClassSchema.from_names("x", ["A"])
    case = Case("vol", ImageRef(shape=(3, 8, 8), pixel_size=(1, 1, 1)),
                boxes=[BoxSet("b", [[1, 1, 4, 4]], ["A"], schema, planes=[1])])
    with pytest.raises(NsclcFormatError, match="lung-pet-ct-dx"):
        registry.write([case], tmp_path / "v.xml", "voc")


def test_convert_cli_to_voc(dataset, tmp_path, capsys):
    out = tmp_path / "converted"
    assert cli_main(["convert", str(dataset), "--to", "voc", "-o", str(out)]) == 0
    assert sorted(p.name for p in (out / "Annotations").iterdir()) == ["img_000.xml", "img_001.xml", "img_002.xml"]
    assert sorted(p.name for p in (out / "JPEGImages").iterdir()) == ["img_000.jpg", "img_001.jpg", "img_002.jpg"]
    assert (out / "ImageSets" / "Main" / "val.txt").read_text() == "img_002\n"


def test_new_dataset_from_non_voc_cases(tmp_path):
    schema = ClassSchema.from_names("cells", ["tumour"])
    pixels = np.zeros((20, 30), np.uint8)
    case = Case("tile7", ImageRef(shape=(20, 30), data=pixels),
                boxes=[BoxSet("cells", [[2.5, 3, 10, 12]], ["tumour"], schema)])
    written = voc_detection.write_voc_detection([case], tmp_path / "new")
    assert sorted(p.relative_to(tmp_path / "new").as_posix() for p in written) == [
        "Annotations/tile7.xml", "ImageSets/Main/default.txt"]
    assert (tmp_path / "new" / "JPEGImages" / "tile7.jpg").is_file()
    back = registry.read(tmp_path / "new")[0]
    assert back.boxes[0].bounds.tolist() == [[2.5, 3, 10, 12]]
    assert back.image.shape == (20, 30)


def test_split_lists_only_grow(dataset, tmp_path):
    cases = registry.read(dataset)
    target = tmp_path / "partial"
    shutil.copytree(dataset, target)
    (target / "ImageSets" / "Main" / "train.txt").write_text("other_image\n")
    voc_detection.write_voc_detection(cases[:1], target, overwrite=True)
    assert (target / "ImageSets" / "Main" / "train.txt").read_text() == "other_image\nimg_000\n"


def test_lung_pet_ct_dx_volume_converts_to_one_voc_image_per_annotated_slice(tmp_path):
    collection = build("lung-pet-ct-dx", tmp_path)
    ct = registry.read(collection)[0]
    out = tmp_path / "detection"
    assert cli_main(["convert", str(collection), "--to", "voc", "-o", str(out)]) == 0
    back = registry.read(out)
    uids = ct.image.metadata["sop_instance_uids"]
    assert sorted(c.name for c in back) == sorted(uids[k] for k in fx.tumour_boxes())
    by_name = {c.name: c for c in back}
    for plane, (_, xmin, ymin, xmax, ymax) in fx.tumour_boxes().items():
        case = by_name[uids[plane]]
        # the collection's <bndbox> numbers are written as they were; read back, model = file - 0.5 (corner origin)
        assert case.boxes[0].bounds.tolist() == [[ymin - 0.5, xmin - 0.5, ymax - 0.5, xmax - 0.5]]
        assert case.boxes[0].classes.tolist() == ["A"]
    # slice 5 in the mediastinum window: the 30 HU tumour is mid-grey, the -850 HU lung black
    grey = np.asarray(by_name[uids[5]].image.data)
    assert grey.shape == (64, 64)
    assert abs(int(grey[24, 18]) - round((30 + 135) / 350 * 255)) <= 12
    assert grey[24, 12] <= 8
