"""MIDOG and generic COCO: the real MIDOG database, synthetic fixtures, round-trips, bad input.

The fixtures are synthetic (napari_nsclc.testing.cells); the MIDOG database is
the real one from the MIDOG 2021 repository.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from napari_nsclc import registry
from napari_nsclc.formats import coco, midog
from napari_nsclc.model import NsclcFormatError
from napari_nsclc.testing import cells


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --------------------------------------------------------------------------- MIDOG, real database


def test_real_midog_database_counts(samples):
    path = samples / "midog" / "MIDOG.json"
    assert registry.detect(path).name == "midog"
    cases = registry.read(path)
    assert len(cases) == 200
    all_points = [p for case in cases for p in case.points]
    assert sum(len(p) for p in all_points) == 4435
    assert sum(p.counts().get("mitotic figure", 0) for p in all_points) == 1721
    assert sum(p.counts().get("not mitotic figure", 0) for p in all_points) == 2714
    first = cases[0].points[0]
    # annotation 1: bbox [4336, 346, 4386, 396] (x1, y1, x2, y2) -> file centre (y, x) = (371, 4361);
    # MIDOG boxes have a pixel-corner origin, so model = file - 0.5 (model.py, "Geometry conventions")
    np.testing.assert_array_equal(first.coords[0], [370.5, 4360.5])
    assert first.classes[0] == "not mitotic figure"
    assert first.attributes[0]["box_size"] == (50.0, 50.0)
    assert cases[0].image.shape == (5412, 7215)
    # images 151-200 are unlabelled
    assert all(not case.points for case in cases[150:])
    assert not any(case.provenance.warnings for case in cases)


def test_real_midog_round_trip_is_byte_identical(samples, tmp_path):
    source = samples / "midog" / "MIDOG.json"
    before = _sha(source)
    cases = midog.read_midog(source)
    out = tmp_path / "MIDOG.json"
    midog.write_midog(cases, out)
    assert out.read_bytes() == source.read_bytes()
    assert _sha(source) == before


def test_real_midog_half_pixel_box_keeps_its_numbers(samples, tmp_path):
    cases = midog.read_midog(samples / "midog" / "MIDOG.json")
    case_150 = next(c for c in cases if c.document["coco_image"]["id"] == 150)
    points = case_150.points[0]
    last = points.attributes[-1]["coco"]
    assert last == {"bbox": [2681.5, 2846, 2731.5, 2896], "category_id": 2, "image_id": 150, "id": 4435}
    # file centre (y, x) = (2871, 2706.5); corner origin: model = file - 0.5
    np.testing.assert_array_equal(points.coords[-1], [2870.5, 2706.0])


# --------------------------------------------------------------------------- MIDOG, synthetic image + database


def test_midog_image_finds_its_database(tmp_path):
    image = cells.build_midog(tmp_path)
    assert registry.detect(image).name == "midog"
    (case,) = registry.read(image)
    assert case.image.rgb and np.asarray(case.image.data).shape == (256, 320, 3)
    points = case.points[0]
    assert points.counts() == {"mitotic figure": 4, "not mitotic figure": 3}
    # box centres (y, x) (50, 60), (60, 180), (90.5, 150) in the file; corner origin: model = file - 0.5
    np.testing.assert_array_equal(points.coords[:2], [[49.5, 59.5], [59.5, 179.5]])
    np.testing.assert_array_equal(points.coords[6], [90.0, 149.5])


def test_midog_edit_write_reopen(tmp_path):
    image = cells.build_midog(tmp_path / "in")
    (case,) = registry.read(image)
    points = case.points[0]
    points.classes[1] = "not mitotic figure"  # reclassify
    points.coords[2] = (210.0, 250.0)  # move
    points.coords = np.vstack([points.coords, [[30.0, 300.0]]])  # add
    points.classes = np.append(points.classes, "mitotic figure")
    points.attributes.append({})
    out = tmp_path / "out.json"
    midog.write_midog([case], out)
    written = json.loads(out.read_text())
    by_id = {a["id"]: a for a in written["annotations"]}
    assert by_id[1] == {"bbox": [35, 25, 85, 75], "category_id": 1, "image_id": 1, "id": 1}
    assert by_id[2]["category_id"] == 2
    # moved to model (210, 250) -> file centre (210.5, 250.5) (file = model + 0.5), 50 x 50 box
    assert by_id[3]["bbox"] == [225.5, 185.5, 275.5, 235.5]
    # added at model (30, 300) -> file centre (30.5, 300.5) (file = model + 0.5), 50 x 50 box
    assert by_id[10] == {"id": 10, "image_id": 1, "category_id": 1, "bbox": [275.5, 5.5, 325.5, 55.5]}
    assert written["categories"] == [{"id": 1, "name": "mitotic figure"}, {"id": 2, "name": "not mitotic figure"}]
    (again,) = midog.read_midog(out)
    np.testing.assert_array_equal(again.points[0].coords, points.coords)
    assert list(again.points[0].classes) == list(points.classes)


# --------------------------------------------------------------------------- generic COCO


@pytest.fixture
def coco_file(tmp_path) -> Path:
    return cells.build_coco(tmp_path / "coco")


def test_coco_reads_every_geometry(coco_file):
    from napari_nsclc import rle

    assert registry.detect(coco_file).name == "coco"
    (case,) = registry.read(coco_file)
    assert case.name == "tile_0001" and case.image.shape == (96, 128)
    assert np.asarray(case.image.data).shape == (96, 128, 3)
    (polygons,) = case.polygons
    assert len(polygons) == 2 and list(polygons.classes) == ["tumor", "tumor"]
    # COCO coordinates start at pixel (0, 0)'s corner; the model's at its centre
    np.testing.assert_array_equal(polygons.polygons[0].exterior, [[9.5, 9.5], [9.5, 29.5], [24.5, 29.5], [24.5, 9.5]])
    np.testing.assert_array_equal(polygons.polygons[1].exterior, [[11.5, 40], [11.5, 51.5], [21.5, 45.5]])
    assert polygons.attributes[0]["coco"]["attributes"] == {"occluded": False, "annotator": "A"}
    (boxes,) = case.boxes
    # bbox [100, 60, 12, 10] (corner origin) -> model bounds = file - 0.5
    np.testing.assert_array_equal(boxes.bounds, [[59.5, 99.5, 69.5, 111.5]])
    assert list(boxes.classes) == ["lymphocyte"]
    (keypoints,) = case.points
    np.testing.assert_array_equal(keypoints.coords, [[48, 64]])
    assert list(keypoints.classes) == ["cell"]
    (mask,) = case.masks
    assert mask.kind == "instance" and mask.instance_classes == {1: "tumor", 2: "lymphocyte"}
    document = json.loads(coco_file.read_text())
    blob = rle.decode(document["annotations"][2]["segmentation"]).astype(bool)
    np.testing.assert_array_equal(mask.data == 1, blob)
    assert int((mask.data == 2).sum()) == document["annotations"][3]["area"] == 25 * 25 - 81
    assert mask.data[72, 32] == 0  # the hole of the uncompressed-RLE ring
    assert case.document["coco"]["info"]["year"] == 2026
    assert case.document["coco_image"]["date_captured"] == "2026-01-01"
    assert "_background_" in polygons.schema.names


def test_coco_untouched_round_trip_is_identical(coco_file, tmp_path):
    before = _sha(coco_file)
    cases = registry.read(coco_file)
    out = tmp_path / "out.json"
    registry.write(cases, out, "coco")
    assert json.loads(out.read_text()) == json.loads(coco_file.read_text())
    assert out.read_text() == coco_file.read_text()
    assert _sha(coco_file) == before
    with pytest.raises(NsclcFormatError, match="already exists"):
        registry.write(cases, out, "coco")


def test_coco_edits_are_written(coco_file, tmp_path):
    from napari_nsclc import rle

    (case,) = registry.read(coco_file)
    case.polygons[0].classes[1] = "lymphocyte"  # second part of annotation 0 changes class
    case.boxes[0].bounds[0] = (61, 101, 71, 113)
    mask = case.masks[0]
    mask.data = mask.data.copy()
    mask.data[0:5, 0:5] = 1  # grow the compressed-RLE instance
    out = tmp_path / "edited.json"
    coco.write_coco([case], out, points_as="keypoints")
    written = {a["id"]: a for a in json.loads(out.read_text())["annotations"]}
    original = {a["id"]: a for a in json.loads(coco_file.read_text())["annotations"]}
    # model bounds (61, 101, 71, 113) -> file x, y = model + 0.5 (corner origin); size unchanged
    assert written[1]["bbox"] == [101.5, 61.5, 12, 10] and written[1]["area"] == 120
    assert written[2]["area"] == original[2]["area"] + 25
    assert rle.decode(written[2]["segmentation"])[0:5, 0:5].all()
    assert written[3] == original[3]  # the untouched RLE instance keeps its uncompressed counts
    assert isinstance(written[2]["segmentation"]["counts"], str)
    assert written[4] == original[4]
    changed = [a for a in written.values() if a["category_id"] == 2 and "segmentation" in a and isinstance(a["segmentation"], list)]
    assert changed and changed[0]["segmentation"] != []


def test_coco_pycocotools_reads_our_rle(coco_file, tmp_path):
    from pycocotools import mask as mask_utils  # the reference decoder (testing extra)
    (case,) = registry.read(coco_file)
    case.masks[0].data = case.masks[0].data.copy()
    case.masks[0].data[90:96, 120:128] = 2
    out = tmp_path / "rle.json"
    coco.write_coco([case], out)
    written = {a["id"]: a for a in json.loads(out.read_text())["annotations"]}
    segmentation = written[3]["segmentation"]
    decoded = mask_utils.decode(mask_utils.frPyObjects(segmentation, *segmentation["size"]))
    np.testing.assert_array_equal(decoded.astype(bool), case.masks[0].data == 2)


def _bad_document() -> dict:
    return {
        "images": [{"id": 1, "file_name": "a.png", "width": 100, "height": 80}],
        "categories": [{"id": 1, "name": "tumor"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 5, 5]},
            {"id": 2, "image_id": 9, "category_id": 1, "bbox": [10, 10, 5, 5]},
            {"id": 3, "image_id": 1, "category_id": 7, "bbox": [10, 10, 5, 5]},
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [20, 20, 5, 5]},
            {"id": 4, "image_id": 1, "category_id": 1, "bbox": [float("nan"), 10, 5, 5]},
            {"id": 5, "image_id": 1, "category_id": 1, "bbox": [-3, 10, 5, 5]},
            {"id": 6, "image_id": 1, "category_id": 1, "bbox": [90, 70, 20, 20]},
            {"id": 7, "image_id": 1, "category_id": 1, "segmentation": [[1, 2, 3, float("nan"), 5, 6]]},
            {"id": 8, "image_id": 1, "category_id": 1, "bbox": [30, 30, 4, 4]},
        ],
    }


def test_coco_bad_objects_are_reported_and_valid_ones_load(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_bad_document()))
    (case,) = coco.read_coco(path)
    # bbox [10, 10, 5, 5], [-3, 10, 5, 5], [90, 70, 20, 20] and [30, 30, 4, 4] (corner origin) -> model = file - 0.5;
    # the two boxes reaching past the image's edge are kept, with a warning each
    np.testing.assert_array_equal(case.boxes[0].bounds, [[9.5, 9.5, 14.5, 14.5], [9.5, -3.5, 14.5, 1.5],
                                                         [69.5, 89.5, 89.5, 109.5], [29.5, 29.5, 33.5, 33.5]])
    warnings = case.provenance.warnings
    assert len(warnings) == 7
    expected = [
        "bad.json: annotation 2: image_id 9",
        "bad.json: annotation 3: category_id 7",
        "bad.json: annotation 1: duplicate annotation id",
        "bad.json: annotation 4: bbox",
        "bad.json: annotation 5: box [-3, 10, 2, 15] reaches outside the 100x80 image; kept as written",
        "bad.json: annotation 6: box [90, 70, 110, 90] reaches outside the 100x80 image; kept as written",
        "bad.json: annotation 7: polygon segmentation has NaN",
    ]
    for message, prefix in zip(warnings, expected, strict=True):
        assert message.startswith(prefix), message
    assert "NaN" in warnings[3]


def test_midog_bad_objects(tmp_path):
    image = cells.build_midog(tmp_path)
    database = json.loads((tmp_path / "MIDOG.json").read_text())
    database["annotations"] += [
        {"bbox": [10, 10, 60, 60], "category_id": 1, "image_id": 77, "id": 20},
        {"bbox": [10, 10, 60, 60], "category_id": 5, "image_id": 1, "id": 21},
        {"bbox": [10, 10, 60, 60], "category_id": 1, "image_id": 1, "id": 1},
        {"bbox": [-40, 10, 10, 60], "category_id": 1, "image_id": 1, "id": 22},
        {"bbox": [300, 10, 350, 60], "category_id": 2, "image_id": 1, "id": 23},
    ]
    (tmp_path / "MIDOG.json").write_text(json.dumps(database))
    (case,) = registry.read(image)
    assert case.points[0].counts() == {"mitotic figure": 4, "not mitotic figure": 3}
    warnings = case.provenance.warnings
    assert [w.split(":")[1].strip() for w in warnings] == [f"annotation {i}" for i in (20, 21, 1, 22, 23)]
    assert all(w.startswith("MIDOG.json: ") for w in warnings)
    assert warnings[-1].endswith("cell centre [325, 35, 325, 35] lies outside the 320x256 image; skipped")


def test_not_json_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"images": [1, 2')
    with pytest.raises(NsclcFormatError, match="broken.json: is not valid JSON"):
        coco.read_coco(path)


def test_coco_duplicate_category_names_round_trip(tmp_path):
    document = {
        "images": [{"id": 1, "file_name": "a.png", "width": 50, "height": 50}],
        "categories": [{"id": 1, "name": "cell"}, {"id": 2, "name": "cell"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]},
            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [10, 10, 5, 5]},
        ],
    }
    path = tmp_path / "dup.json"
    path.write_text(json.dumps(document))
    (case,) = coco.read_coco(path)
    assert list(case.boxes[0].classes) == ["cell", "cell (id 2)"]
    out = tmp_path / "out.json"
    coco.write_coco([case], out)
    assert json.loads(out.read_text()) == document


def test_coco_with_many_images_defers_pixels(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    images, arrays = [], {}
    for i in range(10):
        name = f"img_{i}.png"
        arrays[name] = rng.integers(0, 255, (12, 16, 4 if i % 2 else 3), dtype=np.uint8)
        Image.fromarray(arrays[name]).save(tmp_path / name)
        images.append({"id": i, "file_name": name, "width": 16, "height": 12})
    path = tmp_path / "many.json"
    path.write_text(json.dumps({"images": images, "categories": [], "annotations": []}))
    cases = coco.read_coco(path)
    assert len(cases) == 10
    for case in cases:
        assert type(case.image.data).__name__ == "Array"  # dask: nothing decoded yet
        expected = arrays[Path(case.image.path).name][..., :3]
        np.testing.assert_array_equal(np.asarray(case.image.data), expected)
        assert case.image.rgb
