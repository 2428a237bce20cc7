"""Slide-scale COCO nuclei: bulk read, byte-exact write-back, edits read back by pycocotools."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import shapely

from napari_nsclc.model import NsclcFormatError
from napari_nsclc.nuclei import coco, geojson

CATEGORIES = [
    {"id": 0, "name": "_background_", "supercategory": ""},
    {"id": 1, "name": "tumor", "supercategory": "cell"},
    {"id": 2, "name": "lymphocyte", "supercategory": "cell"},
    {"id": 3, "name": "stroma", "supercategory": "cell"},
]
NAMES = {c["id"]: c["name"] for c in CATEGORIES}


def make_rings(n: int, seed: int = 0, radius=(4, 9)) -> list[np.ndarray]:
    """``n`` simple star-shaped rings, ``(k, 2)`` ``[x, y]`` file coordinates with two decimals, not closed."""
    rng = np.random.default_rng(seed)
    rings = []
    for k, (cx, cy) in zip(rng.integers(5, 12, n), rng.uniform(30, 1970, (n, 2)), strict=True):
        angles = (np.arange(k) + rng.uniform(0, 0.6, k)) * 2 * np.pi / k
        r = rng.uniform(*radius, k)
        rings.append(np.round(np.column_stack([cx + r * np.cos(angles), cy + r * np.sin(angles)]), 2))
    return rings


def annotation(i: int, ring: np.ndarray, category: int | None, **extra) -> dict:
    x0, y0 = ring.min(0)
    x1, y1 = ring.max(0)
    out = {"id": i, "image_id": 0, "segmentation": [ring.ravel().tolist()],
           "area": round(shapely.Polygon(ring).area, 2), "bbox": [x0, y0, round(x1 - x0, 2), round(y1 - y0, 2)],
           "iscrowd": 0, "attributes": {"occluded": False, "note": f"n{i}"}}
    if category is not None:
        out["category_id"] = category
    return {**out, **extra}


def write_coco(path, annotations: list[dict], *, indent=None, categories_first=True) -> bytes:
    """A COCO document around ``annotations``, with extra top-level keys; returns its bytes."""
    head = {"info": {"description": "synthetic nuclei", "version": "1.0"}, "licenses": [],
            "images": [{"id": 0, "file_name": "slide.tif", "width": 2000, "height": 2000}]}
    if categories_first:
        document = {**head, "categories": CATEGORIES, "annotations": annotations, "x_tool": {"run": 3}}
    else:
        document = {**head, "annotations": annotations, "categories": CATEGORIES, "x_tool": {"run": 3}}
    path.write_text(json.dumps(document, indent=indent) + "\n")
    return path.read_bytes()


def make_coco(path, n: int = 300, seed: int = 0, **layout):
    rings = make_rings(n, seed)
    classes = np.random.default_rng(seed + 1).integers(1, 4, n)
    write_coco(path, [annotation(i, ring, int(c)) for i, (ring, c) in enumerate(zip(rings, classes, strict=True))],
               **layout)
    return rings, classes


LAYOUTS = [pytest.param({}, id="compact"), pytest.param({"indent": 2, "categories_first": False}, id="indented")]


def load_coco(path):
    from pycocotools.coco import COCO

    return COCO(str(path))


# --------------------------------------------------------------------------- reading


@pytest.mark.parametrize("layout", LAYOUTS)
def test_read_gives_the_generated_classes_and_vertices(tmp_path, layout):
    rings, classes = make_coco(tmp_path / "nuclei.json", **layout)
    nuclei = coco.read(tmp_path / "nuclei.json")

    assert len(nuclei) == 300 and nuclei.name == "nuclei"
    assert nuclei.schema.codes == [0, 1, 2, 3]
    assert nuclei.counts() == {"_background_": 0, "tumor": int((classes == 1).sum()),
                               "lymphocyte": int((classes == 2).sum()), "stroma": int((classes == 3).sum())}
    np.testing.assert_array_equal(nuclei.codes, classes)
    np.testing.assert_array_equal(nuclei.records, np.arange(300))
    # COCO's origin is a pixel's corner, the model's its centre
    np.testing.assert_array_equal(nuclei.vertices, np.concatenate(rings)[:, ::-1] - 0.5)
    np.testing.assert_array_equal(np.diff(nuclei.offsets), [len(r) for r in rings])
    assert nuclei.problems.counts() == {}
    source = nuclei.source
    assert source.format == "coco" and source.max_id == 299
    assert source.document["annotations"] == []
    assert source.document["info"]["description"] == "synthetic nuclei"
    assert source.document["x_tool"] == {"run": 3} and source.document["categories"] == CATEGORIES


def test_two_workers_give_the_same_arrays_as_one(tmp_path):
    rings = make_rings(2000, seed=5)
    annotations = [annotation(i, ring, 1 + i % 3) for i, ring in enumerate(rings)]
    annotations[10]["segmentation"] = {"counts": "abc", "size": [10, 10]}  # problems in both halves
    annotations[1500]["category_id"] = 77
    annotations[1999]["segmentation"] = [annotations[1999]["segmentation"][0], [1, 1, 2, 1, 2, 2]]
    write_coco(tmp_path / "big.json", annotations)

    one = coco.read(tmp_path / "big.json", workers=1)
    stages = []
    two = coco.read(tmp_path / "big.json", workers=2, progress=lambda *report: stages.append(report))
    assert stages[-1] == ("parse", 2000, 2000) and stages[0][0] == "scan"

    for field in ("vertices", "offsets", "codes", "records"):
        np.testing.assert_array_equal(getattr(one, field), getattr(two, field))
    assert one.schema == two.schema and one.source.max_id == two.source.max_id == 1999
    assert one.problems.found == two.problems.found == {coco.RLE: [10], coco.SEVERAL: [1999], coco.NO_CATEGORY: [1500]}
    assert one.problems.skipped == two.problems.skipped == {coco.RLE}


def test_bad_annotations_are_counted_skipped_and_written_back_unchanged(tmp_path):
    rings = make_rings(40, seed=2)
    good = [annotation(i, ring, 1 + i % 3) for i, ring in enumerate(rings[:30])]
    big, small = rings[35], np.array([[5.0, 5.0], [9.0, 5.0], [9.0, 9.0]])
    bad = [
        annotation(100, rings[30], 1, segmentation={"counts": "PPYo1", "size": [2000, 2000]}, iscrowd=1),
        annotation(101, rings[31], 2, segmentation=[]),
        annotation(102, rings[32], 2, segmentation=[[10.0, math.nan, 20.0, 20.0, 30.0, 10.0]]),
        annotation(103, rings[33], None),  # no category_id
        annotation(104, rings[34], 99),  # a category the file does not declare
        annotation(105, rings[35], 3, segmentation=[[1, 2, 3, 4, 5, 6, 7]]),
        annotation(106, rings[36], 3, segmentation=[small.ravel().tolist(), big.ravel().tolist()]),
        {"id": 107, "image_id": 0, "category_id": 1, "bbox": [1, 2, 3, 4], "area": 12, "iscrowd": 0},
    ]
    annotations = good[:10] + bad[:4] + good[10:20] + bad[4:] + good[20:]
    source = write_coco(tmp_path / "bad.json", annotations)
    assert b"NaN" in source

    nuclei = coco.read(tmp_path / "bad.json")

    assert nuclei.problems.counts() == {coco.RLE: 1, coco.EMPTY_SEGMENTATION: 1, geojson.NAN: 1, coco.ODD: 1,
                                        coco.NO_SEGMENTATION: 1, coco.SEVERAL: 1, coco.NO_CATEGORY: 2}
    assert nuclei.problems.skipped == {coco.RLE, coco.EMPTY_SEGMENTATION, geojson.NAN, coco.ODD, coco.NO_SEGMENTATION}
    assert nuclei.problems.found[coco.NO_CATEGORY] == [13, 24]
    assert nuclei.problems.found[coco.SEVERAL] == [26]
    assert len(nuclei) == 30 + 3
    assert nuclei.schema.code_of("Unclassified") == 4  # a free code: no category has it
    assert nuclei.counts()["Unclassified"] == 2
    several = int(np.flatnonzero(nuclei.records == 26)[0])
    np.testing.assert_array_equal(nuclei.ring(several), big[:, ::-1] - 0.5)  # shown by its largest polygon
    assert any("skipped, kept unchanged" in line for line in nuclei.problems.messages("bad.json", "annotation"))

    coco.write(nuclei, tmp_path / "same.json")
    assert (tmp_path / "same.json").read_bytes() == source

    nuclei.reclassify("stroma", [0])
    nuclei.delete([1])
    coco.write(nuclei, tmp_path / "edited.json")
    written = (tmp_path / "edited.json").read_bytes()
    for kept in bad:
        assert json.dumps(kept).encode() in written  # the very bytes of the source
    assert json.dumps(good[1]).encode() not in written


def test_nan_outside_the_outline_loads_and_survives_an_edit(tmp_path):
    rings = make_rings(3, seed=4)
    write_coco(tmp_path / "scores.json", [annotation(i, ring, 1, score=math.nan if i == 1 else 0.5)
                                           for i, ring in enumerate(rings)])
    nuclei = coco.read(tmp_path / "scores.json")
    assert len(nuclei) == 3 and nuclei.problems.counts() == {}
    nuclei.reclassify("stroma", [1])
    coco.write(nuclei, tmp_path / "edited.json")
    edited = json.loads((tmp_path / "edited.json").read_text())["annotations"][1]
    assert edited["category_id"] == 3 and math.isnan(edited["score"])
    assert edited["attributes"] == {"occluded": False, "note": "n1"}


def test_not_coco_is_refused(tmp_path):
    (tmp_path / "list.json").write_text("[]")
    (tmp_path / "none.json").write_text('{"images": [], "annotations": [{"id": 1, "segmentation": []}]}')
    with pytest.raises(NsclcFormatError, match="top level"):
        coco.read(tmp_path / "list.json")
    with pytest.raises(NsclcFormatError, match="no usable nucleus"):
        coco.read(tmp_path / "none.json")


# --------------------------------------------------------------------------- writing a COCO source


@pytest.mark.parametrize("layout", LAYOUTS)
def test_write_without_edits_is_byte_identical(tmp_path, layout):
    make_coco(tmp_path / "nuclei.json", **layout)
    nuclei = coco.read(tmp_path / "nuclei.json")
    coco.write(nuclei, tmp_path / "copy.json")
    assert (tmp_path / "copy.json").read_bytes() == (tmp_path / "nuclei.json").read_bytes()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_reclassified_and_deleted_annotations_read_back_with_pycocotools(tmp_path, layout):
    _, classes = make_coco(tmp_path / "nuclei.json", **layout)
    nuclei = coco.read(tmp_path / "nuclei.json")
    reclassified = np.flatnonzero(classes != 2)[[0, 5, 9]].tolist()
    deleted = int(np.flatnonzero(classes == 2)[3])
    nuclei.reclassify("lymphocyte", reclassified)
    nuclei.delete([deleted])
    coco.write(nuclei, tmp_path / "edited.json")

    before, after = load_coco(tmp_path / "nuclei.json"), load_coco(tmp_path / "edited.json")
    assert set(after.anns) == set(before.anns) - {deleted}  # ids are the 0-based record indices here
    for number, ann in after.anns.items():
        expected = dict(before.anns[number])
        if number in reclassified:
            expected["category_id"] = 2
        assert ann == expected
    assert after.cats == before.cats and after.imgs == before.imgs
    document = json.loads((tmp_path / "edited.json").read_text())
    original = json.loads((tmp_path / "nuclei.json").read_text())
    assert {k: v for k, v in document.items() if k != "annotations"} == \
        {k: v for k, v in original.items() if k != "annotations"}
    again = coco.read(tmp_path / "edited.json")
    assert again.counts()["lymphocyte"] == int((classes == 2).sum()) + 3 - 1


@pytest.mark.parametrize("layout", LAYOUTS)
def test_deleting_the_first_and_last_keeps_the_layout(tmp_path, layout):
    make_coco(tmp_path / "nuclei.json", n=50, **layout)
    nuclei = coco.read(tmp_path / "nuclei.json")
    nuclei.delete([0, 17, 18, 49])
    coco.write(nuclei, tmp_path / "fewer.json")

    document = json.loads((tmp_path / "nuclei.json").read_text())
    document["annotations"] = [a for a in document["annotations"] if a["id"] not in (0, 17, 18, 49)]
    indent = layout.get("indent")
    assert (tmp_path / "fewer.json").read_text() == json.dumps(document, indent=indent) + "\n"


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param(b'{"categories": [{"id": 1}, {"id": 2}], "annotations": [], "x": 1}',
                 b'{"categories": [{"id": 1}, {"id": 2}, {"id":9}], "annotations": [], "x": 1}', id="before"),
    pytest.param(b'{"annotations": [],\n "categories": [\n  {"id": 1}\n ]}\n',
                 b'{"annotations": [],\n "categories": [\n  {"id": 1},{"id":9}\n ]}\n', id="after"),
    pytest.param(b'{"categories": [], "annotations": []}', b'{"categories": [{"id":9}], "annotations": []}',
                 id="empty"),
    pytest.param(b'{"images": [], "annotations": []}\n', b'{"images": [], "annotations": [],"categories":[{"id":9}]}\n',
                 id="missing"),
])
def test_new_categories_are_spliced_into_the_document(text, expected):
    hole = text.index(b"[]", text.index(b'"annotations"'))
    prefix, suffix = coco._add_categories(text[:hole], text[hole + 2:], [{"id": 9}])
    assert prefix + b"[]" + suffix == expected


def test_new_class_redrawn_outline_and_new_nucleus(tmp_path):
    make_coco(tmp_path / "nuclei.json", indent=2)
    source_text = (tmp_path / "nuclei.json").read_text()
    nuclei = coco.read(tmp_path / "nuclei.json")
    square = np.array([[99.5, 199.5], [99.5, 229.5], [119.5, 229.5], [119.5, 199.5]])  # (y, x) model
    nuclei.reclassify("mitosis", [7])
    nuclei.replace({5: square}, {}, [], [])
    nuclei.replace({}, {}, [], [(square + 501, "tumor"), (square + 800, "mitosis")])
    coco.write(nuclei, tmp_path / "edited.json")

    written = load_coco(tmp_path / "edited.json")
    assert written.cats[4]["name"] == "mitosis" and len(written.cats) == 5
    assert written.anns[7]["category_id"] == 4
    redrawn = written.anns[5]
    assert redrawn["segmentation"] == [[200, 100, 230, 100, 230, 120, 200, 120]]  # [x, y]: the model plus half a pixel
    assert redrawn["bbox"] == [200, 100, 30, 20] and redrawn["area"] == 600
    assert redrawn["attributes"] == {"occluded": False, "note": "n5"}  # what the plugin does not know stays
    first, second = written.anns[300], written.anns[301]  # new ids count on from the largest
    assert first["image_id"] == 0 and first["iscrowd"] == 0 and first["category_id"] == 1
    assert first["segmentation"] == [[701, 601, 731, 601, 731, 621, 701, 621]]
    assert second["category_id"] == 4
    assert int(written.annToMask(first).sum()) == 600
    # the categories were extended in place: every source category's text is still there
    text = (tmp_path / "edited.json").read_text()
    start = source_text.index('"categories"')
    assert text[:start] == source_text[:start]
    assert source_text[start:source_text.index("]", start)].rstrip() in text
    again = coco.read(tmp_path / "edited.json")
    assert again.schema.code_of("mitosis") == 4 and again.counts()["mitosis"] == 2


def test_write_refuses_the_source_an_existing_file_and_a_changed_source(tmp_path):
    make_coco(tmp_path / "nuclei.json", n=20)
    nuclei = coco.read(tmp_path / "nuclei.json")
    with pytest.raises(NsclcFormatError, match="never overwritten"):
        coco.write(nuclei, tmp_path / "nuclei.json", overwrite=True)
    (tmp_path / "out.json").write_text("{}")
    with pytest.raises(NsclcFormatError, match="already exists"):
        coco.write(nuclei, tmp_path / "out.json")
    make_coco(tmp_path / "nuclei.json", n=21)
    with pytest.raises(NsclcFormatError, match="changed on disk"):
        coco.write(nuclei, tmp_path / "out.json", overwrite=True)
    assert (tmp_path / "out.json").read_text() == "{}"


# --------------------------------------------------------------------------- writing another source


def write_geojson(path, rings, names) -> None:
    colours = {"Tumor": [200, 0, 0], "Lymphocyte": [0, 0, 200]}
    features = [{"type": "Feature", "id": f"f{i}",
                 "geometry": {"type": "Polygon", "coordinates": [[*ring.tolist(), ring[0].tolist()]]},
                 "properties": {"objectType": "detection", "classification": {"name": name, "color": colours[name]}}}
                for i, (ring, name) in enumerate(zip(rings, names, strict=True))]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))


def test_a_geojson_source_becomes_a_new_coco_document(tmp_path):
    rings = make_rings(120, seed=3, radius=(10, 16))
    names = ["Tumor" if i % 3 else "Lymphocyte" for i in range(120)]
    write_geojson(tmp_path / "slide7.geojson", rings, names)
    nuclei = geojson.read(tmp_path / "slide7.geojson")
    coco.write(nuclei, tmp_path / "slide7.json")

    written = load_coco(tmp_path / "slide7.json")
    assert len(written.anns) == 120 and sorted(written.anns) == list(range(1, 121))
    assert {c["name"] for c in written.cats.values()} == {"Tumor", "Lymphocyte"}
    image = written.imgs[1]
    high = np.concatenate(rings).max(0)
    assert image["file_name"] == "slide7" and (image["width"], image["height"]) == tuple(np.ceil(high).astype(int))
    for number, ann in written.anns.items():
        ring = rings[number - 1]
        assert written.cats[ann["category_id"]]["name"] == names[number - 1]
        np.testing.assert_allclose(np.reshape(ann["segmentation"][0], (-1, 2)), ring, atol=1e-9)
        polygon = shapely.Polygon(ring)
        assert ann["area"] == pytest.approx(polygon.area, abs=1e-5) and ann["iscrowd"] == 0
        np.testing.assert_allclose(ann["bbox"], [*ring.min(0), *(ring.max(0) - ring.min(0))], atol=1e-9)
        # pixels whose centre is inside: off from the area by at most about half the outline's length
        assert abs(int(written.annToMask(ann).sum()) - polygon.area) <= 0.5 * polygon.length + 2

    nuclei.delete([0])
    coco.write(nuclei, tmp_path / "sized.json", image_size=(3000, 4000))
    sized = load_coco(tmp_path / "sized.json")
    assert len(sized.anns) == 119 and (sized.imgs[1]["height"], sized.imgs[1]["width"]) == (3000, 4000)
    back = coco.read(tmp_path / "sized.json")
    assert back.counts() == {name: count - (name == "Lymphocyte") for name, count in
                             {"Lymphocyte": names.count("Lymphocyte"), "Tumor": names.count("Tumor")}.items()}
    assert back.schema.color_of("Tumor")[:3] == pytest.approx((200 / 255, 0, 0))
    with pytest.raises(NsclcFormatError, match="never overwritten"):
        coco.write(nuclei, tmp_path / "slide7.geojson", overwrite=True)
