"""``napari-nsclc validate``: integrity checks, augmentation families, exit codes, JSON and HTML.

Fixtures are built in ``tmp_path`` following ../shared/FORMATS.md (the
project's synthetic builders, or :mod:`_batch_fixtures`), then one problem is
planted at a time so that the exact file and kind reported can be asserted.
The real samples in ../shared/samples are validated too; those tests fail
(they never skip) when the samples are missing.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from _batch_fixtures import (
    flip,
    found,
    found_json,
    rotate,
    save_png,
    sheet_tiles,
    snapshot,
    truncate,
    write_nat_case,
)
from PIL import Image

from napari_nsclc import testing
from napari_nsclc.batch import families
from napari_nsclc.batch.validate import validate
from napari_nsclc.cli import main
from napari_nsclc.testing.segmentation import tissue_image

# --------------------------------------------------------------------------- families


def test_a_flipped_and_a_rotated_copy_are_one_family_an_unrelated_image_is_not():
    image = tissue_image((96, 128), seed=3)
    unrelated = tissue_image((96, 128), seed=11)
    prints = [families.fingerprint(a) for a in (image, flip(image), rotate(image), rotate(flip(image), 3), unrelated)]
    assert families.distance(prints[0], prints[1]) <= 2
    assert families.distance(prints[0], prints[2]) <= 2
    assert families.distance(prints[0], prints[4]) > 3 * families.MAX_DISTANCE
    groups = families.group_families(list("abcde"), prints)
    assert [members for members, _ in groups] == [[0, 1, 2, 3]]


def test_the_hash_is_imagehash_phash_of_the_eight_dihedral_transforms():
    import imagehash

    grey = families.thumbnail(tissue_image((64, 80), seed=2))
    hashes = families.dihedral_hashes(grey)
    assert hashes.shape == (8, 32) and hashes.dtype == np.uint8
    direct = imagehash.phash(Image.fromarray(grey), hash_size=16)
    assert np.array_equal(np.unpackbits(hashes[0]).astype(bool), direct.hash.ravel())
    mirrored = imagehash.phash(Image.fromarray(np.ascontiguousarray(grey[:, ::-1])), hash_size=16)
    assert np.array_equal(np.unpackbits(hashes[1]).astype(bool), mirrored.hash.ravel())


def test_split_conflicts_compare_members_fold_by_fold():
    assert families.split_conflicts([{"": "train"}, {"": "train"}, {}]) == {}
    assert families.split_conflicts([{"": "train"}, {"": "test"}]) == {"": ["test", "train"]}
    folds = [{"fold_1": "train", "fold_2": "test"}, {"fold_1": "train", "fold_2": "train"}]
    assert families.split_conflicts(folds) == {"fold_2": ["test", "train"]}


def test_real_nat_thumbnails_no_two_slides_are_a_family_their_copies_are(tmp_path, samples):
    """55 real NSCLC-NAT thumbnails (the dataset's preview sheet) plus NAT's flip and mirror augmentations."""
    tiles = sheet_tiles(samples)
    root = tmp_path / "NSCLC-NAT"
    for number, tile in enumerate(tiles, start=1):
        write_nat_case(root, str(number), tile)
    write_nat_case(root, "56", flip(tiles[0]))  # mirrored copy of case 1
    write_nat_case(root, "57", np.ascontiguousarray(tiles[0][::-1]))  # flipped upside down
    write_nat_case(root, "58", rotate(tiles[41]), suffix=".jpg")  # case 42 turned 90°, saved as JPEG
    result = validate(root)
    assert result.exit_code == 0, result.problems  # NSCLC-NAT has no splits: families are listed, not problems
    assert result.cases == 58 and result.hashed == 58
    assert [f.members for f in result.families] == [["1", "56", "57"], ["42", "58"]]
    assert result.families[1].files == ["Images/42.png", "Images/58.jpg"]


# --------------------------------------------------------------------------- clean datasets of every layout


@pytest.mark.parametrize("layout", sorted(testing.all_builders()))
def test_every_synthetic_layout_validates_clean(layout, tmp_path):
    path = testing.build(layout, tmp_path)
    result = validate(path)
    assert result.exit_code == 0, [p.message for p in result.problems]
    assert result.cases >= 1 and result.format


# --------------------------------------------------------------------------- NSCLC-NAT: every kind of problem


def test_nat_planted_problems_are_each_reported_once_with_their_file(tmp_path):
    root = testing.build("nsclc-nat", tmp_path)  # cases 1, 2 (PNG) and 3 (JPEG), 96 x 128
    shutil.copy(root / "Mask" / "3.png", root / "Mask" / "9.png")  # masks with no image
    shutil.copy(root / "SegmentationClass" / "3.png", root / "SegmentationClass" / "9.png")
    save_png(np.zeros((48, 64), np.uint8), root / "SegmentationClass" / "2.png")  # size mismatch
    values = np.zeros((96, 128), np.uint8)
    values[10:20, 10:20] = 7  # not a class of SegmentationClass/
    save_png(values, root / "SegmentationClass" / "1.png")
    save_png(tissue_image((96, 128), seed=40), root / "Images" / "4.png")  # an image with no mask
    save_png(tissue_image((96, 128), seed=41), root / "Images" / "3.png")  # a second file of stem 3
    result = validate(root)
    assert result.exit_code == 1
    assert found(result) == {
        ("value-outside-schema", "SegmentationClass/1.png"),
        ("size-mismatch", "SegmentationClass/2.png"),
        ("orphan", "SegmentationClass/9.png"),
        ("missing", "SegmentationClass/4.png"),
        ("missing", "Mask/4.png"),
        ("duplicate-id", "Images/3.png"),
    }
    assert len(result.problems) == 6  # the reader's warning and the check's own finding are one problem
    by_kind = {p.kind: p.message for p in result.problems}
    assert "7 (100 px)" in by_kind["value-outside-schema"]
    assert by_kind["duplicate-id"] == "Images/3.png: same stem as Images/3.jpg; only that one is read"


def test_nat_truncated_png_is_listed_and_the_rest_is_still_checked(tmp_path):
    root = testing.build("nsclc-nat", tmp_path)
    truncate(root / "Images" / "2.png")
    values = np.asarray(Image.open(root / "SegmentationClass" / "3.png")).copy()
    values[0, 0] = 5
    save_png(values, root / "SegmentationClass" / "3.png")
    result = validate(root)
    assert found(result) == {("unreadable", "Images/2.png"), ("value-outside-schema", "SegmentationClass/3.png")}
    assert result.cases == 3 and result.hashed == 2


def test_nat_truncated_first_case_does_not_stop_validation(tmp_path):
    """The reader decodes the first case while listing the folder: validation reads on case by case."""
    root = testing.build("nsclc-nat", tmp_path)
    truncate(root / "Mask" / "1.png", keep=0.4)
    save_png(np.zeros((50, 50), np.uint8), root / "Mask" / "3.png")
    result = validate(root)
    assert found(result) == {("unreadable", "Mask/1.png"), ("size-mismatch", "Mask/3.png")}
    assert "cannot" in next(p.message for p in result.problems if p.kind == "unreadable")
    assert result.cases == 2  # cases 2 and 3 were read and checked


# --------------------------------------------------------------------------- IGNITE: splits, families, PD-L1 JSON


def _ignite_with_pdl1(tmp_path: Path) -> Path:
    data = testing.build("ignite-he", tmp_path)  # patient1 (train) and patient2 (test), with context variants
    pdl1 = testing.build("ignite-pdl1", tmp_path / "pdl1").parents[3]  # its data/ folder
    shutil.copytree(pdl1 / "images" / "pdl1", data / "images" / "pdl1")
    shutil.copytree(pdl1 / "annotations" / "pdl1", data / "annotations" / "pdl1")
    return data


def test_ignite_family_split_across_train_and_test_and_a_corrupt_pdl1_json(tmp_path):
    data = _ignite_with_pdl1(tmp_path)
    assert validate(data).exit_code == 0  # H&E and PD-L1 both clean
    he = data / "images" / "he"
    save_png(flip(np.asarray(Image.open(he / "patient1_he_roi1.png"))), he / "patient3_he_roi3.png")
    masks = data / "annotations" / "he"
    shutil.copy(masks / "patient1_he_roi1.png", masks / "patient3_he_roi3.png")
    with (data / "data_overview.csv").open("a") as table:
        table.write("he_tissue_segmentation,test,images/he/patient3_he_roi3.png,annotations/he/patient3_he_roi3.png\n")
    truncate(data / "annotations" / "pdl1" / "pdl1" / "pdl1_annotations.json", keep=0.6)
    result = validate(data)
    assert found(result) == {
        ("family-split", "images/he/patient1_he_roi1.png"),
        ("unreadable", "annotations/pdl1/pdl1/pdl1_annotations.json"),
    }
    (family,) = [f for f in result.families if "patient3_he_roi3" in f.members]
    assert family.members == ["patient1_he_roi1", "patient3_he_roi3"]
    assert family.splits == [{"": "train"}, {"": "test"}]
    message = next(p.message for p in result.problems if p.kind == "family-split")
    assert "split across test and train" in message and "images/he/patient3_he_roi3.png (test)" in message
    # the other PD-L1 files were still read and checked
    assert result.cases == 4 + 1 + 2


def test_ignite_values_outside_the_classes_and_the_256_minus_label_trap(tmp_path):
    data = testing.build("ignite-he", tmp_path)
    mask = data / "annotations" / "he" / "patient2_he_roi2.png"
    labels = np.asarray(Image.open(mask)).astype(np.int32)
    save_png(np.where(labels > 0, 256 - labels, 0).astype(np.uint8), mask)
    result = validate(data)
    assert found(result) == {("value-outside-schema", "annotations/he/patient2_he_roi2.png")}
    (problem,) = result.problems
    assert "outside the ignite-he classes" in problem.message


# --------------------------------------------------------------------------- COCO, VOC, Lung-PET-CT-Dx: objects


def test_coco_duplicates_orphans_classes_and_boxes_outside(tmp_path):
    path = testing.build("coco", tmp_path)
    data = json.loads(path.read_text())
    image = data["images"][0]
    first = dict(data["annotations"][0])
    data["annotations"] += [
        {**first, "id": first["id"]},  # duplicate annotation id
        {**first, "id": 900, "image_id": 77},  # an annotation of no image
        {**first, "id": 901, "category_id": 42},  # a class the file does not define
        {**first, "id": 902, "bbox": [image["width"] - 5, 2, 20, 10], "segmentation": []},  # past the right edge
    ]
    data["images"].append({**image, "id": 99})  # a second image record of one file
    path.write_text(json.dumps(data))
    result = validate(path)
    assert found(result) == {
        ("duplicate-id", "annotations.json"),
        ("orphan", "annotations.json"),
        ("value-outside-schema", "annotations.json"),
        ("outside-image", "annotations.json"),
        ("duplicate-id", f"images/{image['file_name']}"),
    }
    assert len(result.problems) == 5


def test_a_corrupt_coco_json_is_listed_with_its_reason(tmp_path, capsys):
    path = testing.build("coco", tmp_path)
    truncate(path, keep=0.7)
    assert main(["validate", str(path), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert found_json(data) == {("unreadable", "annotations.json")}
    assert "annotations.json" in data["problems"][0]["message"] and data["counts"]["cases"] == 0


def test_voc_detection_box_outside_orphan_xml_corrupt_xml_and_split_family(tmp_path):
    root = testing.build("voc-detection", tmp_path)  # img_000, img_001 train; img_002 val
    xml = root / "Annotations" / "img_001.xml"
    xml.write_text(xml.read_text().replace("<xmax>", "<xmax>9", 1))  # xmax grows past the 64 px image
    text = (root / "Annotations" / "img_000.xml").read_text().replace("img_000.jpg", "img_009.jpg")
    (root / "Annotations" / "img_009.xml").write_text(text)  # its image does not exist
    image = np.asarray(Image.open(root / "JPEGImages" / "img_000.jpg"))
    Image.fromarray(rotate(image, 2)).save(root / "JPEGImages" / "img_003.jpg", quality=95)
    (root / "Annotations" / "img_003.xml").write_text(
        (root / "Annotations" / "img_000.xml").read_text().replace("img_000.jpg", "img_003.jpg"))
    with (root / "ImageSets" / "Main" / "val.txt").open("a") as listing:
        listing.write("img_003\n")
    result = validate(root)
    assert found(result) == {
        ("outside-image", "Annotations/img_001.xml"),
        ("orphan", "Annotations/img_009.xml"),
        ("family-split", "JPEGImages/img_000.jpg"),
    }
    (root / "Annotations" / "img_002.xml").write_text("<annotation><object><name>tum")  # corrupt XML
    result = validate(root)
    assert ("unreadable", "Annotations/img_002.xml") in found(result)
    assert ("outside-image", "Annotations/img_001.xml") in found(result)  # the rest is still checked
    assert result.cases == 4


def test_voc_segmentation_object_mask_without_class_mask_and_size_mismatch(tmp_path):
    root = testing.build("voc-segmentation", tmp_path)
    shutil.copy(root / "SegmentationObject" / "2026_000000.png", root / "SegmentationObject" / "2026_000009.png")
    Image.fromarray(tissue_image((40, 40), seed=1)).save(root / "JPEGImages" / "2026_000001.jpg")
    result = validate(root)
    assert found(result) == {
        ("orphan", "SegmentationObject/2026_000009.png"),
        ("size-mismatch", "SegmentationClass/2026_000001.png"),
        ("size-mismatch", "SegmentationObject/2026_000001.png"),
    }


def test_lung_xml_with_no_slice_and_box_outside_its_slice(tmp_path):
    root = testing.build("lung-pet-ct-dx", tmp_path)
    xmls = sorted((root / "Annotation" / "A0001").glob("*.xml"))
    shutil.copy(xmls[0], xmls[0].with_name("1.2.3.4.5.xml"))  # a slice that is not in the series
    text = xmls[1].read_text().replace("<width>64</width>", "<width>512</width>")
    xmls[1].write_text(re.sub(r"<xmax>\d+</xmax>", "<xmax>300</xmax>", text))  # inside the 512 px it claims
    result = validate(root)
    assert found(result) == {
        ("orphan", "Annotation/A0001/1.2.3.4.5.xml"),
        ("outside-image", f"Annotation/A0001/{xmls[1].name}"),
    }
    outside = next(p for p in result.problems if p.kind == "outside-image")
    assert "outside the 64x64 image" in outside.message


def test_lung_truncated_slice_and_malformed_xml_are_each_listed_once_with_their_path(tmp_path):
    root = testing.build("lung-pet-ct-dx", tmp_path)
    ct = sorted(root.rglob("*CT Chest*/*.dcm"))[3]
    truncate(ct)  # its patient's two series both carry the reader's warning: reported once, on the CT's slice
    xml = sorted((root / "Annotation" / "A0001").glob("*.xml"))[0]
    xml.write_text("<annotation><object><name>A</na")
    result = validate(root)
    assert found(result) == {("unreadable", ct.relative_to(root).as_posix()),
                             ("unreadable", f"Annotation/A0001/{xml.name}")}  # fmt: skip
    assert len(result.problems) == 2 and result.cases == 2


# --------------------------------------------------------------------------- NuCLS and OCELOT


def _fold(path: Path, rows: list[tuple[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",slide_name,hospital,type,fold"]
    lines += [f"{i},{slide},{hospital},{path.stem.split('_')[-1]},{path.stem.split('_')[1]}"
              for i, (slide, hospital) in enumerate(rows)]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")


def test_nucls_family_across_folds_duplicate_fov_id_orphan_csv_and_truncated_mask(tmp_path):
    root = testing.build("nucls", tmp_path)  # two FOVs, slides TCGA-A1-A0SK-DX1 and TCGA-E2-A14V-DX1
    first = sorted((root / "rgb").glob("*.png"))[0]
    copy = first.stem.replace("TCGA-A1-A0SK-DX1", "TCGA-XX-0000-DX1")  # same FOV id, another slide name
    save_png(flip(np.asarray(Image.open(first))), root / "rgb" / f"{copy}.png")
    shutil.copy(root / "csv" / f"{first.stem}.csv", root / "csv" / f"{copy}.csv")
    folds = root.parent / "train_test_splits"
    _fold(folds / "fold_1_train.csv", [("TCGA-A1-A0SK-DX1", "A1"), ("TCGA-XX-0000-DX1", "XX")])
    _fold(folds / "fold_1_test.csv", [("TCGA-E2-A14V-DX1", "E2")])
    _fold(folds / "fold_2_train.csv", [("TCGA-A1-A0SK-DX1", "A1"), ("TCGA-E2-A14V-DX1", "E2")])
    _fold(folds / "fold_2_test.csv", [("TCGA-XX-0000-DX1", "XX")])
    orphan = "TCGA-A1-A0SK-DX1_id-00000000000000000000abcd_left-1_top-1_bottom-80_right-96"
    shutil.copy(root / "csv" / f"{first.stem}.csv", root / "csv" / f"{orphan}.csv")
    result = validate(root)
    assert found(result) == {
        ("family-split", f"rgb/{first.name}"),
        ("duplicate-id", f"rgb/{copy}.png"),
        ("orphan", f"csv/{orphan}.csv"),
    }
    family = next(f for f in result.families if len(f.members) == 2)
    assert families.split_conflicts(family.splits) == {"fold_2": ["test", "train"]}
    truncate(root / "mask" / f"{first.stem}.png")  # NuCLS's reader stops at a bad mask: validation does not
    result = validate(root)
    assert ("unreadable", f"mask/{first.name}") in found(result)
    assert ("orphan", f"csv/{orphan}.csv") in found(result) and result.cases == 3


def test_nucls_mask_a_pixel_off_is_a_note_more_is_a_problem(tmp_path):
    root = testing.build("nucls", tmp_path)
    masks = sorted((root / "mask").glob("*.png"))
    pixels = np.asarray(Image.open(masks[0]))
    save_png(pixels[:-1], masks[0])  # one row short: NuCLS's own loader pads it
    save_png(pixels[:-10], masks[1])
    result = validate(root)
    assert found(result) == {("size-mismatch", f"mask/{masks[1].name}")}
    assert [(n.kind, n.file) for n in result.notes] == [("size-mismatch", f"mask/{masks[0].name}")]


def test_ocelot_sample_in_two_splits_and_tissue_values(tmp_path):
    root = testing.build("ocelot", tmp_path)
    shutil.copytree(root / "images" / "train" / "cell", root / "images" / "val" / "cell")
    tissue = root / "annotations" / "train" / "tissue" / "001.png"
    values = np.asarray(Image.open(tissue)).copy()
    values[:4, :4] = 9
    save_png(values, tissue)
    result = validate(root)
    assert found(result) == {
        ("duplicate-id", "images/val/cell/001.jpg"),
        ("value-outside-schema", "annotations/train/tissue/001.png"),
    }


# --------------------------------------------------------------------------- the command: exit codes, JSON, HTML


def test_exit_codes_zero_clean_one_problems_two_unusable_input(tmp_path, capsys):
    root = testing.build("nsclc-nat", tmp_path)
    assert main(["validate", str(root)]) == 0
    assert "result: clean; exit code 0" in capsys.readouterr().out
    save_png(np.zeros((10, 10), np.uint8), root / "Mask" / "2.png")
    assert main(["validate", str(root)]) == 1
    out = capsys.readouterr().out
    assert "[size-mismatch] Mask/2.png: mask is 10x10 px but Images/2.png is 128x96 px" in out
    assert "result: 1 problem(s) (size-mismatch 1); exit code 1" in out
    assert main(["validate", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hello")
    assert main(["validate", str(tmp_path / "notes")]) == 2
    assert "is not a dataset layout" in capsys.readouterr().err
    empty = tmp_path / "empty"
    for folder in ("Images", "Mask"):
        (empty / folder).mkdir(parents=True)
    assert main(["validate", str(empty)]) == 2
    assert "folders are empty" in capsys.readouterr().err


def test_json_output_is_one_object_with_problems_families_and_counts(tmp_path, capsys):
    root = tmp_path / "nat"
    for number, seed in ((1, 3), (2, 5)):
        write_nat_case(root, str(number), tissue_image((96, 128), seed=seed))
    write_nat_case(root, "3", rotate(tissue_image((96, 128), seed=3)))
    truncate(root / "SegmentationClass" / "2.png")
    assert main(["validate", str(root), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"path", "format", "title", "exit_code", "counts", "problems", "notes", "families"}
    assert data["format"] == "nsclc-nat" and data["exit_code"] == 1
    assert found_json(data) == {("unreadable", "SegmentationClass/2.png")}
    assert data["families"] == [{"members": ["1", "3"], "files": ["Images/1.png", "Images/3.png"], "splits": [],
                                 "distance": data["families"][0]["distance"], "split_across": {}}]  # fmt: skip
    assert data["counts"] == {"cases": 3, "files": 9, "images_hashed": 3, "problems": 1, "notes": 0,
                              "problems_by_kind": {"unreadable": 1}, "families": 1,
                              "families_split_across_splits": 0}  # fmt: skip


class _Tables(HTMLParser):
    """The text of every table cell, per table id of the heading before it; and any external reference."""

    def __init__(self):
        super().__init__()
        self.section, self.rows, self.cell, self.links = "", {}, None, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "h2":
            self.section = attrs.get("id", "")
        elif tag == "tr":
            self.rows.setdefault(self.section, []).append([])
        elif tag in ("td", "th"):
            self.cell = ""
        for name in ("src", "href"):
            if name in attrs:
                self.links.append(attrs[name])

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.rows[self.section][-1].append(self.cell)
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def test_html_report_is_self_contained_and_lists_problems_and_families(tmp_path, capsys):
    data = testing.build("ignite-he", tmp_path / "src")
    he = data / "images" / "he"
    save_png(rotate(np.asarray(Image.open(he / "patient2_he_roi2.png"))), he / "patient5_he_roi5.png")
    masks = data / "annotations" / "he"
    shutil.copy(masks / "patient1_he_roi1.png", masks / "patient5_he_roi5.png")
    with (data / "data_overview.csv").open("a") as table:
        table.write("he_tissue_segmentation,train,images/he/patient5_he_roi5.png,annotations/he/patient5_he_roi5.png\n")
    report = tmp_path / "out" / "report.html"
    assert main(["validate", str(data), "--html", str(report)]) == 1
    assert f"wrote {report}" in capsys.readouterr().out
    page = _Tables()
    page.feed(report.read_text(encoding="utf-8"))
    assert page.links == []  # no script, stylesheet or image from elsewhere
    problems = {(row[0], row[1]) for row in page.rows["problems"][1:]}
    assert problems == {("family-split", "images/he/patient2_he_roi2.png"),
                        ("size-mismatch", "annotations/he/patient5_he_roi5.png")}  # fmt: skip
    family_rows = page.rows["families"][1:]
    assert any("patient5_he_roi5.png (train)" in row[1] and row[2] == "split across test and train"
               for row in family_rows)  # fmt: skip
    assert list(report.parent.iterdir()) == [report]  # written atomically: no temporary file left


def test_the_report_is_refused_inside_the_dataset(tmp_path, capsys):
    root = testing.build("nsclc-nat", tmp_path)
    before = snapshot(root)
    assert main(["validate", str(root), "--html", str(root / "Images" / "report.html")]) == 2
    assert "validate never writes into the dataset" in capsys.readouterr().err
    assert snapshot(root) == before


def test_validate_help_has_a_description_listing_the_checks_exit_codes_and_examples(capsys):
    with pytest.raises(SystemExit):
        main(["validate", "--help"])
    text = capsys.readouterr().out
    for kind in ("size-mismatch", "value-outside-schema", "orphan", "duplicate-id", "outside-image", "unreadable",
                 "family-split"):
        assert kind in text
    assert "exit codes: 0 clean, 1 problems found, 2 unusable input" in text
    assert "napari-nsclc validate NSCLC-NAT/" in text.split("examples:")[1]
    assert "### validate" in (Path(__file__).parents[1] / "docs" / "cli.md").read_text()


# --------------------------------------------------------------------------- nothing in the source is written to


@pytest.mark.parametrize("layout", ["nsclc-nat", "nucls", "ignite-he", "voc-detection", "coco"])
def test_validate_writes_nothing_in_the_source(layout, tmp_path, capsys):
    path = testing.build(layout, tmp_path / "src")
    root = path if path.is_dir() else path.parent
    first_image = next(p for p in sorted(root.rglob("*")) if p.suffix in (".png", ".jpg"))
    truncate(first_image)  # the case-by-case path too
    before = snapshot(root)
    code = main(["validate", str(path), "--json", "--html", str(tmp_path / "report.html")])
    assert code == 1 and json.loads(capsys.readouterr().out)["problems"]
    assert snapshot(root) == before  # same files, same mtimes, same sha256


# --------------------------------------------------------------------------- the real samples


def test_real_lung_pet_ct_dx_sample_is_clean(samples, capsys):
    assert main(["validate", str(samples / "lung-pet-ct-dx"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["format"] == "lung-pet-ct-dx" and data["counts"]["cases"] == 2  # two 30-slice CT series
    assert data["problems"] == [] and data["families"] == [] and data["counts"]["images_hashed"] == 0


def test_real_lung_sample_with_a_box_moved_off_its_slice(samples, tmp_path):
    root = tmp_path / "lung"
    shutil.copytree(samples / "lung-pet-ct-dx", root)
    xml = sorted((root / "Annotation" / "A0002").glob("*.xml"))[3]
    text = xml.read_text()
    start = text.index("<xmax>") + len("<xmax>")
    xml.write_text(text[:start] + "700" + text[text.index("</xmax>"):])
    result = validate(root)
    assert found(result) == {("outside-image", f"Annotation/A0002/{xml.name}")}
    assert "outside the 512x512 image" in result.problems[0].message


def test_real_midog_database_is_clean(samples):
    result = validate(samples / "midog" / "MIDOG.json")
    assert (result.format, result.cases, result.exit_code) == ("midog", 200, 0)
    assert result.problems == [] and result.hashed == 0  # the slides are not beside the JSON


def test_real_camelyon17_asap_and_ocelot_point_output_are_clean(samples):
    asap = validate(samples / "camelyon17" / "patient_004_node_4.xml")
    assert (asap.format, asap.cases, asap.exit_code, asap.problems) == ("asap", 1, 0, [])
    points = validate(samples / "ocelot" / "example_output.json")
    assert (points.format, points.cases, points.exit_code, points.problems) == ("ocelot-points", 1, 0, [])


def test_real_ignite_mask_alone_is_clean_and_in_an_ignite_folder_an_orphan(samples, tmp_path):
    real = samples / "ignite" / "patient1_he_roi1_with_context.png"
    alone = validate(real)
    assert (alone.format, alone.cases, alone.exit_code, alone.problems) == ("ignite-he", 1, 0, [])
    data = tmp_path / "data"
    (data / "images" / "he").mkdir(parents=True)
    (data / "annotations" / "he").mkdir(parents=True)
    shutil.copy(real, data / "annotations" / "he" / real.name)
    result = validate(data)
    # its values {0,1,2,3,4,8,9,13} are all IGNITE classes; only its H&E image is missing
    assert found(result) == {("orphan", f"annotations/he/{real.name}")}


def test_validate_imports_no_gui_module():
    code = ("import json, sys\nimport napari_nsclc.batch.validate, napari_nsclc.batch.report_html\n"
            "import napari_nsclc.batch.report_text\nprint(json.dumps(sorted(sys.modules)))\n")  # fmt: skip
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)
    assert [m for m in loaded if m.split(".")[0] in ("napari", "qtpy", "PyQt5", "PyQt6", "vispy", "magicgui")] == []


def test_the_example_output_in_the_docs_is_what_validate_prints(samples, tmp_path, capsys, monkeypatch):
    """docs/batch.md and the README show this run: real NSCLC-NAT thumbnails, two copies, three planted problems."""
    tiles = sheet_tiles(samples)
    root = tmp_path / "NSCLC-NAT"
    for number, tile in enumerate(tiles[:6], start=1):
        write_nat_case(root, str(number), tile)
    write_nat_case(root, "7", flip(tiles[0]))
    write_nat_case(root, "8", rotate(tiles[3]))
    truncate(root / "Images" / "5.png")
    save_png(np.zeros((80, 95), np.uint8), root / "SegmentationClass" / "3.png")
    (root / "Images" / "6.png").unlink()
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "NSCLC-NAT", "--html", "nat-report.html"]) == 1
    printed = capsys.readouterr().out
    docs = Path(__file__).parents[1]
    assert "$ napari-nsclc validate NSCLC-NAT\n" + printed.replace("wrote nat-report.html\n", "") in \
        (docs / "docs" / "batch.md").read_text()  # fmt: skip
    assert "$ napari-nsclc validate NSCLC-NAT --html nat-report.html\n" + printed in (docs / "README.md").read_text()


@pytest.mark.parametrize("dtype", [np.uint8, bool, np.uint16])
def test_value_counts_agree_with_numpy_unique(dtype):
    from napari_nsclc.model import value_counts

    rng = np.random.default_rng(3)
    data = rng.integers(0, 2 if dtype is bool else 256, (300, 200)).astype(dtype)
    data[:3, :3] = 0 if dtype is bool else 7
    values, counts = value_counts(data)
    expected_values, expected_counts = np.unique(data, return_counts=True)
    assert values.tolist() == expected_values.astype(int).tolist() and counts.tolist() == expected_counts.tolist()
    assert value_counts(np.zeros((0, 4), np.uint8))[0].size == 0
