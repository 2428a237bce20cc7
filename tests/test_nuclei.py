"""Slide-scale QuPath nuclei (napari_nsclc.nuclei): the structural JSON scan, bulk GeoJSON reading,
byte-faithful writing, and the NucleusSet model (spatial queries, selection, edits, undo).

Every file is synthetic and written here in QuPath's detection layout. The per-object reader
``napari_nsclc.formats.geojson`` serves as an independent reference for the rings.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import shapely

from napari_nsclc.formats import geojson as reference
from napari_nsclc.model import ClassInfo, ClassSchema, NsclcFormatError, parse_color
from napari_nsclc.nuclei import geojson, jsonscan
from napari_nsclc.nuclei.model import GRID_CELL, NucleusSet

CLASSES = {"Tumor": [200, 0, 0], "Stroma": [150, 200, 150], "Immune cells": [160, 90, 160]}
TUMOR = {"name": "Tumor", "color": [200, 0, 0]}
STROMA = {"name": "Stroma", "color": [150, 200, 150]}


# --------------------------------------------------------------------------- helpers


def nucleus_rings(count: int, seed: int = 0, vertices: int = 12, extent: float = 4000.0) -> np.ndarray:
    """``(count, vertices, 2)`` open rings ``[x, y]`` of star-shaped nuclei, 3-11 px in radius."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(20, extent, (count, 1, 2))
    angles = np.linspace(0, 2 * np.pi, vertices, endpoint=False)[None, :] + rng.uniform(0, 0.5, (count, 1))
    radii = rng.uniform(3, 9, (count, 1)) * rng.uniform(0.8, 1.2, (count, vertices))
    return np.round(centres + radii[..., None] * np.stack([np.cos(angles), np.sin(angles)], -1), 2)


def qupath_feature(k: int, ring_xy, name: str | None) -> dict:
    positions = np.asarray(ring_xy).tolist()
    properties: dict = {"objectType": "detection"}
    if name is not None:
        properties["classification"] = {"name": name, "color": CLASSES[name]}
    properties["isLocked"] = False
    return {"type": "Feature", "id": f"00000000-0000-4000-8000-{k:012d}",
            "geometry": {"type": "Polygon", "coordinates": [positions + positions[:1]]},
            "properties": properties}


def qupath_features(count: int, seed: int = 0) -> list[dict]:
    rings = nucleus_rings(count, seed)
    names = np.array(list(CLASSES))[np.random.default_rng(seed + 1).integers(0, len(CLASSES), count)]
    return [qupath_feature(k, ring, str(name)) for k, (ring, name) in enumerate(zip(rings, names, strict=True))]


def write_collection(path: Path, features: list[dict], indent=None) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, indent=indent))
    return path


def span_texts(path: Path) -> list[bytes]:
    data = Path(path).read_bytes()
    spans = jsonscan.array_spans(path)
    return [data[a:b] for a, b in zip(spans.starts.tolist(), spans.ends.tolist(), strict=True)]


def polygon(coordinates, name="Tumor", kind="Polygon") -> dict:
    return {"type": "Feature", "geometry": {"type": kind, "coordinates": coordinates},
            "properties": {"objectType": "detection", "classification": {"name": name, "color": CLASSES[name]}}}


def square(x, y, side) -> list[list[float]]:
    return [[x, y], [x + side, y], [x + side, y + side], [x, y + side], [x, y]]


def brute_boxes(nuclei: NucleusSet) -> np.ndarray:
    """``(ymin, xmin, ymax, xmax)`` of every nucleus from its current ring (not the set's cached bounds)."""
    return np.array([[*nuclei.ring(i).min(0), *nuclei.ring(i).max(0)] for i in range(len(nuclei))])


def brute_query(boxes, deleted, ymin, xmin, ymax, xmax) -> np.ndarray:
    hit = (boxes[:, 0] <= ymax) & (boxes[:, 2] >= ymin) & (boxes[:, 1] <= xmax) & (boxes[:, 3] >= xmin)
    return np.flatnonzero(hit & ~deleted)


def make_set(rings_yx: list[np.ndarray], names: list[str]) -> NucleusSet:
    schema = ClassSchema("t", tuple(ClassInfo(code, name, parse_color(CLASSES[name]))
                                    for code, name in enumerate(CLASSES, start=1)))
    lookup = {name: code for code, name in enumerate(CLASSES, start=1)}
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rings_yx])])
    return NucleusSet(np.concatenate(rings_yx), offsets, [lookup[n] for n in names], schema)


@pytest.fixture(scope="module")
def slide_file(tmp_path_factory) -> tuple[Path, list[dict]]:
    """~3,000 QuPath nuclei of 12 vertices in 3 classes (compact JSON)."""
    features = qupath_features(3000, seed=3)
    return write_collection(tmp_path_factory.mktemp("slide") / "nuclei.geojson", features), features


# --------------------------------------------------------------------------- jsonscan

TRICKY = ['a "[{" b', "x\\", "x\\\\", '\\"', "]}", "{[", '"', "\\", "}\"]'\\\\\"", "ok"]


def tricky_features() -> list[dict]:
    """Four features whose strings (ids, keys, values) hold every text of TRICKY."""
    features = []
    for k in range(4):
        texts = TRICKY[k::4]
        features.append({"type": "Feature", "id": texts[0],
                         "geometry": {"type": "Polygon", "coordinates": [square(k, 2 * k, 3)]},
                         "properties": {"objectType": "detection", "texts": texts, f"key {texts[-1]}": {texts[0]: "]"},
                                        "classification": {"name": "Tumor", "color": [200, 0, 0]}}})
    return features


def check_spans(path: Path, features: list[dict], layout: str) -> None:
    spans = jsonscan.array_spans(path)
    data = path.read_bytes()
    assert spans.layout == layout
    assert spans.size == len(data)
    assert data[spans.array_start:spans.array_start + 1] == b"["
    assert data[spans.array_end - 1:spans.array_end] == b"]"
    document = json.loads(data)
    assert (document if layout == "list" else document["features"]) == features
    parsed = [json.loads(data[a:b]) for a, b in zip(spans.starts.tolist(), spans.ends.tolist(), strict=True)]
    assert parsed == features
    assert data[spans.starts[0]:spans.starts[0] + 1] == b"{" and data[spans.ends[-1] - 1:spans.ends[-1]] == b"}"


def tricky_documents(features):
    """(name, text, layout): collections with crs/bbox before and after the features, bare lists."""
    crs = {"type": "name", "properties": {"name": 'urn:"[{x}]"\\'}}
    before = {"type": "FeatureCollection", "crs": crs, "bbox": [0, 1, [2, "]"], 3], "note": "\"features\": [",
              "features": features}
    after = {"type": "FeatureCollection", "features": features, "crs": crs, "bbox": [0, 1, 2, 3],
             "extra": {"features": [{"not": "these"}]}}
    both = {"bbox": ["[", "{"], "crs": crs, "type": "FeatureCollection", "features": features,
            "bbox2": [9, 8], "crs2": crs}
    for indent in (None, 2):
        for name, document, layout in (("before", before, "object"), ("after", after, "object"),
                                       ("both", both, "object"), ("list", features, "list")):
            yield f"{name}-{indent}", json.dumps(document, indent=indent), layout, indent


@pytest.mark.parametrize("block", [None, 7, 64])
def test_jsonscan_spans_match_json(tmp_path, monkeypatch, block):
    if block is not None:
        monkeypatch.setattr(jsonscan, "BLOCK_BYTES", block)
    features = tricky_features()
    for name, text, layout, indent in tricky_documents(features):
        # shift the compact text so that every quote, backslash and bracket falls on a block edge in some variant
        for pad in range((7 if indent is None else 2) if block else 1):
            path = tmp_path / f"{name}-{pad}.geojson"
            path.write_text(" " * pad + text)
            check_spans(path, features, layout)


def test_jsonscan_pretty_and_compact_give_the_same_features(tmp_path):
    features = tricky_features()
    compact = write_collection(tmp_path / "compact.geojson", features)
    pretty = write_collection(tmp_path / "pretty.geojson", features, indent=2)
    assert compact.read_bytes() != pretty.read_bytes()
    assert [json.loads(t) for t in span_texts(compact)] == [json.loads(t) for t in span_texts(pretty)] == features
    # compact spans are exactly json.dumps of each feature
    assert span_texts(compact) == [json.dumps(f).encode() for f in features]


@pytest.mark.parametrize("block", [None, 7, 64])
def test_jsonscan_truncated_file_is_refused_naming_it(tmp_path, monkeypatch, block):
    if block is not None:
        monkeypatch.setattr(jsonscan, "BLOCK_BYTES", block)
    text = json.dumps({"type": "FeatureCollection", "features": tricky_features()}, indent=2).encode()
    cuts = [len(text) - 1, len(text) - 3, len(text) // 2, text.index(b'\\"') + 1, text.index(b"x\\\\") + 2,
            text.index(b'"features"') + 14]
    for cut in cuts:
        path = tmp_path / f"cut-{cut}.geojson"
        path.write_bytes(text[:cut])
        with pytest.raises(NsclcFormatError) as error:
            jsonscan.array_spans(path)
        assert error.value.path == str(path)
        assert str(path) in str(error.value)
    path = tmp_path / "feature.geojson"
    path.write_text(json.dumps(tricky_features()[0]))  # one Feature: no features array
    with pytest.raises(NsclcFormatError, match="holds no 'features' array"):
        jsonscan.array_spans(path)


# --------------------------------------------------------------------------- reading


def test_read_matches_the_reference_reader(slide_file):
    path, features = slide_file
    nuclei = geojson.read(path)
    names = [f["properties"]["classification"]["name"] for f in features]
    assert len(nuclei) == 3000
    assert nuclei.counts() == dict(Counter(names))
    assert sum(nuclei.counts().values()) == 3000
    assert nuclei.class_names() == names
    assert nuclei.records.tolist() == list(range(3000))
    assert nuclei.problems.counts() == {}
    assert not nuclei.edited.size
    assert nuclei.name == "nuclei"

    polygons = reference.read(path)[0].polygons
    assert len(polygons) == 1
    exteriors = [p.exterior for p in polygons[0].polygons]
    assert len(exteriors) == 3000
    assert list(polygons[0].classes) == names
    for i, exterior in enumerate(exteriors):
        np.testing.assert_array_equal(nuclei.ring(i), exterior)
        assert nuclei.ring(i).shape == (12, 2)
    assert np.diff(nuclei.offsets).tolist() == [12] * 3000
    # model (y, x) pixel centres = file [x, y] pixel corners swapped and shifted by half a pixel
    ring_xy = np.asarray(features[17]["geometry"]["coordinates"][0][:-1])
    np.testing.assert_array_equal(nuclei.ring(17), ring_xy[:, ::-1] - 0.5)

    assert nuclei.schema.names == list(dict.fromkeys(names))  # classes in the order first seen
    for name, rgb in CLASSES.items():
        assert nuclei.schema.color_of(name) == (rgb[0] / 255, rgb[1] / 255, rgb[2] / 255, 1.0)
    np.testing.assert_allclose(nuclei.centres[5], nuclei.ring(5).mean(0))


def test_read_on_two_processes_equals_one(slide_file):
    path, _ = slide_file
    one = geojson.read(path, workers=1)
    two = geojson.read(path, workers=2)
    for attribute in ("vertices", "offsets", "codes", "records", "bounds", "centres"):
        np.testing.assert_array_equal(getattr(two, attribute), getattr(one, attribute), err_msg=attribute)
    assert two.vertices.dtype == one.vertices.dtype and two.codes.dtype == one.codes.dtype
    assert two.schema == one.schema
    assert two.counts() == one.counts()


def test_read_progress_reports_scan_and_parse(slide_file):
    path, _ = slide_file
    seen = []
    geojson.read(path, progress=lambda stage, done, total: seen.append((stage, done, total)))
    size = path.stat().st_size
    assert seen[0][0] == "scan" and seen[-1] == ("parse", 3000, 3000)
    assert ("scan", size, size) in seen


# --------------------------------------------------------------------------- bad input

BOW_TIE = polygon([[[0, 0], [10, 10], [10, 0], [0, 10], [0, 0]]])
EMPTY_LIST = polygon([])
EMPTY_RING = polygon([[]])
SMALL_PART = [[[100, 100], [104, 100], [104, 104], [100, 104], [100, 100]]]
LARGE_PART = [[[200, 200], [215, 195], [230, 200], [235, 215], [230, 230], [215, 235], [200, 230], [195, 215],
               [200, 200]]]
MULTI = polygon([SMALL_PART, LARGE_PART], "Stroma", "MultiPolygon")
NO_CLASS = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [square(300, 300, 10)]},
            "properties": {"objectType": "detection", "isLocked": False}}
NAN = polygon([[[1, 1], [float("nan"), 2], [3, 1], [1, 1]]])
POINT = polygon([5, 5], kind="Point")
UNPARSABLE = '{"type": "Feature", "geometry": tru}'


def bad_file(path: Path, good: list[dict]) -> tuple[Path, dict[int, str]]:
    """Good nuclei around the bad features; returns the path and {feature index: what it is}."""
    bad = [("bow", BOW_TIE), ("empty", EMPTY_LIST), ("empty", EMPTY_RING), ("multi", MULTI),
           ("noclass", NO_CLASS), ("nan", NAN), ("point", POINT), ("unparsable", UNPARSABLE)]
    texts = [json.dumps(f) for f in good[:10]]
    kinds = {}
    for kind, feature in bad:
        kinds[len(texts)] = kind
        texts.append(feature if isinstance(feature, str) else json.dumps(feature))
    texts += [json.dumps(f) for f in good[10:]]
    assert "NaN" in texts[15]  # Python writes the literal NaN token
    path.write_text('{"type": "FeatureCollection", "features": [\n  ' + ",\n  ".join(texts) + "\n]}\n")
    return path, kinds


def check_bad(nuclei: NucleusSet, good: list[dict], kinds: dict[int, str]) -> None:
    index = {kind: record for record, kind in kinds.items() if kind not in ("empty",)}
    assert nuclei.problems.counts() == {geojson.INVALID: 1, geojson.EMPTY: 2, geojson.MULTI: 1,
                                        geojson.NO_CLASS: 1, geojson.NAN: 1, geojson.OTHER: 1,
                                        geojson.UNPARSABLE: 1}
    assert nuclei.problems.found[geojson.EMPTY] == [11, 12]
    assert nuclei.problems.found[geojson.INVALID] == [index["bow"]]
    assert nuclei.problems.found[geojson.MULTI] == [index["multi"]]
    assert nuclei.problems.found[geojson.NO_CLASS] == [index["noclass"]]
    assert nuclei.problems.found[geojson.NAN] == [index["nan"]]
    assert nuclei.problems.found[geojson.OTHER] == [index["point"]]
    assert nuclei.problems.found[geojson.UNPARSABLE] == [index["unparsable"]]
    assert nuclei.problems.skipped == {geojson.EMPTY, geojson.NAN, geojson.OTHER, geojson.UNPARSABLE}

    # the good nuclei plus the bow tie, the MultiPolygon and the unclassified one are shown
    shown = [r for r in range(len(good) + len(kinds)) if kinds.get(r) in (None, "bow", "multi", "noclass")]
    assert nuclei.records.tolist() == shown
    expected = Counter(f["properties"]["classification"]["name"] for f in good)
    expected.update(["Tumor", "Stroma", "Unclassified"])
    assert nuclei.counts() == dict(expected)
    good_indices = [i for i, r in enumerate(nuclei.records.tolist()) if r not in kinds]
    assert nuclei.class_names(good_indices) == [f["properties"]["classification"]["name"] for f in good]
    for i, feature in zip(good_indices, good, strict=True):
        np.testing.assert_array_equal(nuclei.ring(i),
                                      np.asarray(feature["geometry"]["coordinates"][0][:-1])[:, ::-1] - 0.5)

    at = {r: i for i, r in enumerate(nuclei.records.tolist())}
    np.testing.assert_array_equal(nuclei.ring(at[index["multi"]]), np.asarray(LARGE_PART[0][:-1])[:, ::-1] - 0.5)
    assert nuclei.class_names([at[index["multi"]]]) == ["Stroma"]
    assert nuclei.class_names([at[index["noclass"]]]) == ["Unclassified"]
    np.testing.assert_array_equal(nuclei.ring(at[index["noclass"]]),
                                  np.asarray(square(300, 300, 10)[:-1])[:, ::-1] - 0.5)
    np.testing.assert_array_equal(nuclei.ring(at[index["bow"]]),
                                  np.asarray(BOW_TIE["geometry"]["coordinates"][0][:-1])[:, ::-1] - 0.5)


def test_bad_features_are_counted_and_kept(tmp_path, monkeypatch):
    good = qupath_features(30, seed=5)
    path, kinds = bad_file(tmp_path / "bad.geojson", good)
    nuclei = geojson.read(path)
    check_bad(nuclei, good, kinds)

    # without edits the output is the source, byte for byte, bad features included
    out = geojson.write(nuclei, tmp_path / "out.geojson")
    assert out.read_bytes() == path.read_bytes()

    # small parse and copy batches (a bad feature fails its whole orjson batch) and small scan blocks
    monkeypatch.setattr(geojson, "BATCH", 4)
    monkeypatch.setattr(jsonscan, "BLOCK_BYTES", 7)
    small = geojson.read(path)
    check_bad(small, good, kinds)
    geojson.write(small, tmp_path / "out-small.geojson")
    assert (tmp_path / "out-small.geojson").read_bytes() == path.read_bytes()


def test_bad_features_on_three_processes(tmp_path):
    good = qupath_features(30, seed=5)
    path, kinds = bad_file(tmp_path / "bad.geojson", good)
    one, three = geojson.read(path), geojson.read(path, workers=3)
    check_bad(three, good, kinds)
    assert three.problems.found == one.problems.found
    np.testing.assert_array_equal(three.vertices, one.vertices)
    np.testing.assert_array_equal(three.codes, one.codes)
    assert three.schema == one.schema


def test_file_without_usable_nuclei_is_refused(tmp_path):
    path = write_collection(tmp_path / "points.geojson", [POINT, EMPTY_RING])
    with pytest.raises(NsclcFormatError, match="no usable nucleus") as error:
        geojson.read(path)
    assert error.value.path == str(path)


def test_multipolygon_is_shown_by_its_largest_area(tmp_path):
    small_circle = (np.round(np.c_[np.cos(np.linspace(0, 6, 12)), np.sin(np.linspace(0, 6, 12))] * 2, 2)
                    + 50).tolist()
    multi = polygon([[small_circle + small_circle[:1]], [square(200, 200, 40)]], "Stroma", "MultiPolygon")
    path = write_collection(tmp_path / "multi.geojson", [multi])
    nuclei = geojson.read(path)
    np.testing.assert_array_equal(nuclei.ring(0), np.asarray(square(200, 200, 40)[:-1])[:, ::-1] - 0.5)


def test_positions_with_altitude_are_read_by_x_and_y(tmp_path):
    features = [polygon([[[0, 0, 7], [10, 0, 7], [10, 10, 7], [0, 0, 7]]]), polygon([square(20, 20, 10)])]
    path = write_collection(tmp_path / "z.geojson", features)
    nuclei = geojson.read(path)
    expected = [p.exterior for p in reference.read(path)[0].polygons[0].polygons]
    assert len(nuclei) == 2
    np.testing.assert_array_equal(nuclei.ring(1), np.asarray(square(20, 20, 10)[:-1])[:, ::-1] - 0.5)
    np.testing.assert_array_equal(nuclei.ring(0), expected[0])


# --------------------------------------------------------------------------- writing


def without_classification(feature: dict) -> dict:
    properties = {k: v for k, v in feature["properties"].items() if k != "classification"}
    return {**feature, "properties": properties}


def test_write_changes_only_what_was_edited(tmp_path, monkeypatch):
    features = qupath_features(120, seed=7)
    source = write_collection(tmp_path / "source.geojson", features, indent=2)
    nuclei = geojson.read(source)
    names = nuclei.class_names()
    changed = [i for i, name in enumerate(names) if name != "Stroma"][:5]
    assert nuclei.reclassify("Stroma", changed).tolist() == changed
    undone = [i for i in range(20, 40) if i not in changed][:2]
    assert nuclei.delete(undone).tolist() == undone
    assert nuclei.undo().tolist() == undone
    deleted = [i for i in range(60, 80) if i not in changed][0]
    assert nuclei.delete([deleted]).tolist() == [deleted]
    assert nuclei.edited.tolist() == sorted([*changed, deleted])

    monkeypatch.setattr(geojson, "BATCH", 7)  # copy batches end between the edits
    out = geojson.write(nuclei, tmp_path / "out.geojson")
    written = json.loads(out.read_text())
    assert {k: v for k, v in written.items() if k != "features"} == {"type": "FeatureCollection"}
    expected_features = [f for k, f in enumerate(features) if k != deleted]
    assert len(written["features"]) == len(expected_features) == 119
    source_texts = span_texts(source)
    out_texts = span_texts(out)
    kept = [k for k in range(120) if k != deleted]
    differ = []
    for k, before, after, text in zip(kept, expected_features, written["features"], out_texts, strict=True):
        if after != before:
            differ.append(k)
            assert without_classification(after) == without_classification(before)
            assert after["properties"]["classification"] == STROMA
            assert list(after) == list(before)  # QuPath's key order: type, id, geometry, properties
        else:
            assert text == source_texts[k], k
    assert differ == changed
    assert all(f["id"] != features[deleted]["id"] for f in written["features"])
    # the head and tail of the collection are the source's bytes
    assert out.read_bytes().startswith(source.read_bytes()[:jsonscan.array_spans(source).starts[0]])
    assert out.read_bytes().endswith(source.read_bytes()[jsonscan.array_spans(source).ends[-1]:])


def test_write_refuses_the_source_a_changed_source_and_existing_files(tmp_path):
    features = qupath_features(40, seed=8)
    source = write_collection(tmp_path / "source.geojson", features)
    original = source.read_bytes()
    nuclei = geojson.read(source)
    nuclei.reclassify("Tumor", [0, 1, 2])
    for overwrite in (False, True):
        with pytest.raises(NsclcFormatError, match="read from") as error:
            geojson.write(nuclei, source, overwrite=overwrite)
        assert error.value.path == str(source)
        with pytest.raises(NsclcFormatError, match="read from"):
            geojson.write(nuclei, tmp_path / "sub" / ".." / "source.geojson", overwrite=overwrite)
    assert source.read_bytes() == original

    existing = tmp_path / "existing.geojson"
    existing.write_text("keep me")
    with pytest.raises(NsclcFormatError, match="already exists") as error:
        geojson.write(nuclei, existing)
    assert error.value.path == str(existing)
    assert existing.read_text() == "keep me"
    geojson.write(nuclei, existing, overwrite=True)
    assert len(json.loads(existing.read_text())["features"]) == 40

    # a new modification time: refused, nothing written
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    with pytest.raises(NsclcFormatError, match="changed on disk") as error:
        geojson.write(nuclei, tmp_path / "after-touch.geojson")
    assert error.value.path == str(source)
    assert not (tmp_path / "after-touch.geojson").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.geojson", "source.geojson"]

    # new content (the modification time put back): refused
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    geojson.write(nuclei, tmp_path / "fine.geojson")
    source.write_bytes(original + b"\n")
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(NsclcFormatError, match="changed on disk"):
        geojson.write(nuclei, tmp_path / "after-edit.geojson")
    assert not (tmp_path / "after-edit.geojson").exists()

    # the source gone: refused
    source.unlink()
    with pytest.raises(NsclcFormatError, match="gone"):
        geojson.write(nuclei, tmp_path / "after-delete.geojson")
    assert not (tmp_path / "after-delete.geojson").exists()


def test_write_new_and_redrawn_outlines_and_undo(tmp_path):
    features = qupath_features(50, seed=9)
    source = write_collection(tmp_path / "source.geojson", features, indent=2)
    nuclei = geojson.read(source)
    ring_yx = np.array([[10.0, 20.0], [10.0, 30.25], [18.5, 25.0], [14.0, 19.0]])
    added = nuclei.replace({}, {}, [], [(ring_yx, "Tumor")])
    assert added.tolist() == [50] and len(nuclei) == 51
    moved = ring_yx + [1000.0, 2000.0]
    assert nuclei.replace({7: moved}, {}, [], []).tolist() == [7]
    assert nuclei.edited.tolist() == [7, 50]

    out = geojson.write(nuclei, tmp_path / "out.geojson")
    written = json.loads(out.read_text())["features"]
    assert len(written) == 51
    new = written[-1]
    expected_xy = (ring_yx[:, ::-1] + 0.5).tolist()
    assert new["type"] == "Feature" and isinstance(new["id"], str) and new["id"]
    assert new["geometry"] == {"type": "Polygon", "coordinates": [expected_xy + expected_xy[:1]]}
    assert new["properties"] == {"objectType": "detection", "classification": TUMOR}
    moved_xy = (moved[:, ::-1] + 0.5).tolist()
    assert written[7]["geometry"] == {"type": "Polygon", "coordinates": [moved_xy + moved_xy[:1]]}
    assert {k: v for k, v in written[7].items() if k != "geometry"} == \
        {k: v for k, v in features[7].items() if k != "geometry"}
    assert written[:7] + written[8:50] == features[:7] + features[8:]
    assert span_texts(out)[:7] == span_texts(source)[:7]

    # read back: the same outlines
    again = geojson.read(out)
    np.testing.assert_allclose(again.ring(50), ring_yx)
    np.testing.assert_allclose(again.ring(7), moved)
    assert again.class_names([50]) == ["Tumor"]

    # undo both: the file is the source again, byte for byte
    nuclei.undo()
    nuclei.undo()
    assert nuclei.deleted[50] and 7 not in nuclei.outlines
    np.testing.assert_array_equal(nuclei.ring(7), np.asarray(features[7]["geometry"]["coordinates"][0][:-1])[:, ::-1]
                                  - 0.5)
    undone = geojson.write(nuclei, tmp_path / "undone.geojson")
    assert undone.read_bytes() == source.read_bytes()
    # and redo brings the new nucleus back
    nuclei.redo()
    assert not nuclei.deleted[50]
    np.testing.assert_array_equal(nuclei.ring(50), ring_yx)
    assert json.loads(geojson.write(nuclei, tmp_path / "redone.geojson").read_text())["features"][-1]["geometry"] == \
        new["geometry"]


def test_write_bare_list_with_first_and_last_deleted(tmp_path):
    features = qupath_features(6, seed=10)
    source = tmp_path / "list.json"
    source.write_text(json.dumps(features, indent=1))
    nuclei = geojson.read(source)
    nuclei.delete([0, 5])
    nuclei.reclassify("Unclassified", [2])
    nuclei.replace({}, {}, [], [(np.array([[1.0, 1.0], [1.0, 5.0], [5.0, 5.0]]), "Stroma")])
    written = json.loads(geojson.write(nuclei, tmp_path / "out.json").read_text())
    assert isinstance(written, list) and len(written) == 5
    assert written[0] == features[1] and written[2] == features[3] and written[3] == features[4]
    assert written[1] == without_classification(features[2])
    assert written[4]["geometry"]["coordinates"] == [[[1.5, 1.5], [5.5, 1.5], [5.5, 5.5], [1.5, 1.5]]]
    assert written[4]["properties"]["classification"] == STROMA


def test_undone_drawing_is_not_an_edit():
    nuclei = make_set([np.array([[0, 0], [0, 5], [5, 5]], float)], ["Tumor"])
    nuclei.replace({}, {}, [], [(np.array([[10, 10], [10, 15], [15, 15]], float), "Stroma")])
    assert nuclei.edited.tolist() == [1]
    nuclei.undo()
    assert nuclei.edited.tolist() == []


# --------------------------------------------------------------------------- model


def fresh(slide_file) -> NucleusSet:
    return geojson.read(slide_file[0])


def test_inside_lasso_equals_brute_force(slide_file):
    nuclei = fresh(slide_file)
    rng = np.random.default_rng(11)
    everything = np.arange(len(nuclei))
    for trial in range(8):
        centre = rng.uniform(500, 3500, 2)
        angles = np.sort(rng.uniform(0, 2 * np.pi, 9))
        lasso = centre + rng.uniform(100, 900, (9, 1)) * np.c_[np.sin(angles), np.cos(angles)]
        if trial == 7:  # a self-crossing lasso
            lasso = lasso[[0, 2, 1, 3, 5, 4, 6, 8, 7]]
        area = shapely.make_valid(shapely.Polygon(lasso))
        expected = everything[shapely.contains_xy(area, nuclei.centres[:, 0], nuclei.centres[:, 1])]
        found = nuclei.inside(lasso)
        assert np.array_equal(np.sort(found), expected)
        assert len(np.unique(found)) == len(found)
        assert len(expected) > 10
    # centres are the mean vertex of each ring
    np.testing.assert_allclose(nuclei.centres, [nuclei.ring(i).mean(0) for i in range(len(nuclei))])
    # deleted nuclei are not selected by a lasso
    square_lasso = np.array([[0, 0], [0, 4100], [4100, 4100], [4100, 0]], float)
    assert len(nuclei.inside(square_lasso)) == len(nuclei)
    nuclei.delete([0, 1, 2])
    assert sorted(nuclei.inside(square_lasso).tolist()) == list(range(3, len(nuclei)))
    assert nuclei.inside(square_lasso[:2]).tolist() == []


def test_at_returns_the_containing_nucleus(slide_file):
    nuclei = fresh(slide_file)
    polygons = shapely.polygons([nuclei.ring(i) for i in range(len(nuclei))])
    areas = shapely.area(polygons)
    rng = np.random.default_rng(12)
    points = np.concatenate([nuclei.centres[rng.choice(len(nuclei), 200, replace=False)],
                             rng.uniform(0, 4100, (300, 2))])
    hits = misses = 0
    for y, x in points:
        containing = np.flatnonzero(shapely.contains_xy(polygons, y, x))
        expected = int(containing[np.argmin(areas[containing])]) if len(containing) else None
        assert nuclei.at(y, x) == expected
        hits, misses = hits + (expected is not None), misses + (expected is None)
    assert hits >= 200 and misses >= 100
    assert nuclei.at(-50, -50) is None and nuclei.at(10_000, 10_000) is None
    # a point on an outline (a vertex) counts as inside it
    vertex = nuclei.ring(42)[3]
    touching = np.flatnonzero(shapely.intersects(polygons, shapely.Point(*vertex)))
    assert 42 in touching
    assert nuclei.at(*vertex) == int(touching[np.argmin(areas[touching])])
    nuclei.delete([42])
    assert nuclei.at(*nuclei.centres[42]) != 42


def test_query_equals_brute_force_boxes(slide_file):
    nuclei = fresh(slide_file)
    rng = np.random.default_rng(13)

    def check(count=100):
        boxes = brute_boxes(nuclei)
        np.testing.assert_array_equal(nuclei.bounds, boxes)
        total = 0
        for _ in range(count):
            y0, x0 = rng.uniform(-300, 4300, 2)
            h, w = rng.uniform(0, 600, 2) * (rng.random() < 0.9)
            found = nuclei.query(y0, x0, y0 + h, x0 + w)
            assert np.array_equal(np.sort(found), brute_query(boxes, nuclei.deleted, y0, x0, y0 + h, x0 + w))
            with_deleted = nuclei.query(y0, x0, y0 + h, x0 + w, with_deleted=True)
            assert np.array_equal(np.sort(with_deleted),
                                  brute_query(boxes, np.zeros(len(nuclei), bool), y0, x0, y0 + h, x0 + w))
            total += len(found)
        assert total > 100
        return boxes

    check()
    nuclei.delete(np.arange(0, 3000, 7))
    check()
    # an outline moved far away is found where it went, not where it was
    old = nuclei.bounds[5].copy()
    far = nuclei.ring(5) + [9000.0, 12000.0]
    big = np.array([[100.0, 100.0], [100.0, 700.0], [700.0, 700.0], [700.0, 100.0]])  # larger than a grid cell
    nuclei.replace({5: far, 6: big}, {}, [], [])
    assert 5 not in nuclei.query(*old)
    fb = far.min(0), far.max(0)
    assert nuclei.query(fb[0][0], fb[0][1], fb[1][0], fb[1][1]).tolist() == [5]
    assert 6 in nuclei.query(400, 400, 401, 401)
    assert big.max() - big.min() > GRID_CELL
    check()
    boxes = brute_boxes(nuclei)
    for _ in range(20):  # boxes around the moved nucleus
        y0, x0 = far.mean(0) + rng.uniform(-50, 50, 2)
        assert np.array_equal(np.sort(nuclei.query(y0, x0, y0 + 20, x0 + 20)),
                              brute_query(boxes, nuclei.deleted, y0, x0, y0 + 20, x0 + 20))
    nuclei.undo()
    check(50)
    assert 5 in nuclei.query(*old)


def test_query_finds_a_wide_nucleus_with_lopsided_vertices():
    lopsided = np.array([[10, 100]] + [[10 + k * 0.1, 345 + k * 0.1] for k in range(30)] + [[20, 350]], float)
    nuclei = make_set([lopsided, np.array([[0, 0], [0, 5], [5, 5]], float)], ["Tumor", "Stroma"])
    assert nuclei.bounds[0].tolist() == [10, 100, 20, 350]
    assert nuclei.query(0, 100, 30, 101).tolist() == [0]


def test_nuclei_at_negative_coordinates_are_found():
    nuclei = make_set([np.array([[-10, -10], [-10, -5], [-5, -5]], float),
                       np.array([[5, 5], [5, 10], [10, 10]], float)], ["Tumor", "Stroma"])
    assert nuclei.query(-20, -20, 0, 0).tolist() == [0]
    assert nuclei.inside(np.array([[-20, -20], [-20, 0], [0, 0], [0, -20]], float)).tolist() == [0]
    assert nuclei.at(-9, -6) == 0


def test_selection_counts_and_class_selection(slide_file):
    nuclei = fresh(slide_file)
    names = np.array(nuclei.class_names())
    signals = []
    nuclei.selection_changed.connect(lambda: signals.append(1))
    nuclei.select_class("Tumor")
    assert nuclei.selection.tolist() == np.flatnonzero(names == "Tumor").tolist()
    assert nuclei.counts(only=nuclei.selected) == {"Tumor": int((names == "Tumor").sum()), "Stroma": 0,
                                                   "Immune cells": 0}
    nuclei.select_class("Stroma", mode="add")
    assert nuclei.selection.tolist() == np.flatnonzero(names != "Immune cells").tolist()
    nuclei.select(np.arange(100), mode="remove")
    assert nuclei.selection.tolist() == [i for i in np.flatnonzero(names != "Immune cells").tolist() if i >= 100]
    assert len(signals) == 3

    lasso = np.array([[0, 0], [0, 2000], [2000, 2000], [2000, 0]], float)
    region = np.sort(nuclei.inside(lasso))
    nuclei.select(region)
    assert nuclei.counts(only=nuclei.selected) == {name: int((names[region] == name).sum()) for name in CLASSES}
    # deleted nuclei leave the selection and every count
    nuclei.delete(region[:10])
    assert nuclei.selection.tolist() == region[10:].tolist()
    assert nuclei.counts(only=nuclei.selected) == {name: int((names[region[10:]] == name).sum()) for name in CLASSES}
    assert nuclei.counts() == {name: int((np.delete(names, region[:10]) == name).sum()) for name in CLASSES}
    nuclei.select_class("Tumor")
    assert not (set(nuclei.selection.tolist()) & set(region[:10].tolist()))
    with pytest.raises(ValueError):
        nuclei.select([1], mode="toggle")


def test_reclassify_undo_redo_and_edited(slide_file):
    nuclei = fresh(slide_file)
    start = nuclei.codes.copy()
    names = np.array(nuclei.class_names())
    touched_signals = []
    nuclei.changed.connect(lambda indices: touched_signals.append(np.asarray(indices).tolist()))

    targets = np.flatnonzero(names == "Tumor")[:10]
    already = np.flatnonzero(names == "Stroma")[:3]
    nuclei.select(np.concatenate([targets, already]))
    changed = nuclei.reclassify("Stroma")
    assert changed.tolist() == targets.tolist()  # the Stroma ones did not change
    after_first = nuclei.codes.copy()
    assert nuclei.edited.tolist() == targets.tolist()
    assert nuclei.class_names(targets) == ["Stroma"] * 10

    # a class the file did not have
    mitosis = nuclei.reclassify("Mitosis", already)
    assert mitosis.tolist() == already.tolist()
    assert "Mitosis" in nuclei.schema and nuclei.counts()["Mitosis"] == 3
    after_second = nuclei.codes.copy()
    assert nuclei.edited.tolist() == sorted([*targets.tolist(), *already.tolist()])

    deleted = nuclei.delete([2999])
    assert deleted.tolist() == [2999] and nuclei.delete([2999]).tolist() == []
    assert nuclei.edited.tolist() == sorted([*targets.tolist(), *already.tolist(), 2999])
    assert nuclei.restore([2999]).tolist() == [2999]
    assert nuclei.edited.tolist() == sorted([*targets.tolist(), *already.tolist()])

    assert nuclei.undo().tolist() == [2999]  # the restore
    assert nuclei.deleted[2999]
    nuclei.undo()  # the delete
    nuclei.undo()  # Mitosis
    np.testing.assert_array_equal(nuclei.codes, after_first)
    nuclei.undo()  # Stroma
    np.testing.assert_array_equal(nuclei.codes, start)
    assert nuclei.edited.tolist() == [] and not nuclei.can_undo and nuclei.can_redo
    assert nuclei.undo().tolist() == []
    nuclei.redo()
    np.testing.assert_array_equal(nuclei.codes, after_first)
    nuclei.redo()
    np.testing.assert_array_equal(nuclei.codes, after_second)
    assert nuclei.edited.tolist() == sorted([*targets.tolist(), *already.tolist()])
    # a new edit clears redo
    nuclei.reclassify("Tumor", targets[:2])
    assert not nuclei.can_redo and nuclei.redo().tolist() == []
    assert nuclei.edited.tolist() == sorted([*targets[2:].tolist(), *already.tolist()])
    assert touched_signals[0] == targets.tolist() and len(touched_signals) == 11
