"""Bulk operations on a label pyramid: rasterise polygons, export a TIFF mask or polygons, create from sources.

Every expectation is computed here, independently of napari_nsclc: polygons
are filled by testing pixel centres with shapely (GEOS), the overview levels
by counting each class in every 2x2 block, TIFFs are read back with tifffile,
ASAP XML with defusedxml and GeoJSON with json + shapely. Pyramids are small
and generated (there is no real gigapixel mask among the samples); the real
CAMELYON17 ASAP file is rasterised onto a pyramid shaped only to cover its
coordinates.
"""

from __future__ import annotations

import itertools
import json
import shutil
import signal
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import shapely
import shapely.affinity
import shapely.geometry
import tifffile
from defusedxml import ElementTree

from napari_nsclc import registry
from napari_nsclc.formats import slide
from napari_nsclc.geometry import labels_to_instances, rasterize_polygons
from napari_nsclc.label_pyramid import LabelPyramid
from napari_nsclc.label_pyramid.export import export_tiff, to_polygons, write_polygons
from napari_nsclc.label_pyramid.raster import rasterize
from napari_nsclc.label_pyramid.sources import (
    empty_for_slide,
    from_annotations,
    from_mask_tiff,
)
from napari_nsclc.label_pyramid.downsample import mode_2x2
from napari_nsclc.model import ClassInfo, ClassSchema, NsclcFormatError, Polygon
from napari_nsclc.testing import slides as builders

SCHEMA = ClassSchema("tissue", (ClassInfo(1, "tumor", "#ff0000"), ClassInfo(2, "exclusion", "#00ff00"),
                                ClassInfo(3, "necrosis", "#0000ff")), background=0)  # fmt: skip
SHAPE = (3000, 2600)


@pytest.fixture(autouse=True)
def _annotator(monkeypatch):
    monkeypatch.setenv("NSCLC_ANNOTATOR", "alice")


# --------------------------------------------------------------------------- independent references


def reference_mode(labels: np.ndarray) -> np.ndarray:
    """Mode of each 2x2 block (the pixels it has), ties to the higher code: each class counted on its own."""
    height, width = labels.shape
    padded = np.full((height + height % 2, width + width % 2), -1, np.int64)  # -1: no pixel, matches no class
    padded[:height, :width] = labels
    best_count = np.zeros((padded.shape[0] // 2, padded.shape[1] // 2), int)
    best_code = np.zeros(best_count.shape, labels.dtype)
    for code in np.unique(labels):  # ascending, so with >= a higher code wins a tie
        count = (padded == code).reshape(best_count.shape[0], 2, best_count.shape[1], 2).sum(axis=(1, 3))
        better = (count >= best_count) & (count > 0)
        best_code[better], best_count[better] = code, count[better]
    return best_code


def reference_levels(level0: np.ndarray, count: int) -> list[np.ndarray]:
    out = [level0]
    while len(out) < count:
        out.append(reference_mode(out[-1]))
    return out


def fill(labels: np.ndarray, geometry, code: int) -> np.ndarray:
    """Set the pixels whose centre shapely finds inside ``geometry`` (shapely ``(x, y)``), over its bounding box."""
    x0, y0, x1, y1 = geometry.bounds
    top, left = max(0, int(np.floor(y0))), max(0, int(np.floor(x0)))
    bottom, right = min(labels.shape[0], int(np.ceil(y1)) + 1), min(labels.shape[1], int(np.ceil(x1)) + 1)
    if bottom <= top or right <= left:
        return labels
    ys, xs = np.mgrid[top:bottom, left:right]
    inside = shapely.contains_xy(geometry, xs.astype(float), ys.astype(float))
    labels[top:bottom, left:right][inside] = code
    return labels


def blob(cy: float, cx: float, radius: float, seed: int, vertices: int = 48) -> np.ndarray:
    """A wobbly outline, ``(y, x)`` vertices at generic (non-integer) positions: no pixel centre on an edge."""
    rng = np.random.default_rng(seed)
    angles = np.linspace(0, 2 * np.pi, vertices, endpoint=False) + rng.uniform(0, 0.05, vertices)
    r = radius * (1 + 0.25 * np.sin(3 * angles + rng.uniform(0, 6)) + rng.uniform(-0.05, 0.05, vertices))
    return np.stack([cy + r * np.sin(angles), cx + r * np.cos(angles)], axis=1) + 0.123


def xy(ring_yx: np.ndarray) -> np.ndarray:
    return np.asarray(ring_yx)[:, ::-1]


def all_levels(pyramid: LabelPyramid) -> list[np.ndarray]:
    return [np.asarray(level[:]) for level in pyramid.levels]


# --------------------------------------------------------------------------- rasterize


@pytest.fixture(scope="module")
def painted(tmp_path_factory):
    """A pyramid with a necrosis block committed, then mixed polygons rasterised over it in 512 px tiles.

    Shared by the tests of this module that only read it.
    """
    pyramid = LabelPyramid.create(tmp_path_factory.mktemp("painted") / "p.zarr", SHAPE, chunk=256, schema=SCHEMA)
    before = np.zeros(SHAPE, np.uint8)
    before[1700:2300, 300:1500] = 3
    pyramid.commit(1700, 300, before[1700:2300, 300:1500], annotator="alice")
    holed = shapely.Polygon(xy(blob(1400, 1300, 420, 1)), [xy(blob(1400, 1300, 150, 2))])
    multi = shapely.MultiPolygon([shapely.Polygon(xy(blob(500, 500, 200, 3))),
                                  shapely.Polygon(xy(blob(520, 1060, 180, 4)))])  # fmt: skip
    polygons = [
        blob(700, 700, 450, 5),  # crosses the 512-tile and 256-chunk edges at 512 and 768
        holed,
        multi,  # on top of the first: later polygons win
        Polygon(blob(2000, 800, 350, 6), [blob(2000, 800, 90, 7)]),  # over the necrosis block, with a hole
        blob(2950, 2550, 200, 8),  # runs off the bottom-right corner of the slide
        blob(-900, -900, 100, 9),  # wholly outside: ignored
    ]
    classes = ["tumor", "necrosis", 2, "tumor", "exclusion", "tumor"]
    result = rasterize(pyramid, polygons, classes, tile=512, annotator="alice")
    expected = before.copy()
    shapes = [shapely.Polygon(xy(polygons[0])), holed, multi,
              shapely.Polygon(xy(polygons[3].exterior), [xy(polygons[3].holes[0])]),
              shapely.Polygon(xy(polygons[4])), shapely.Polygon(xy(polygons[5]))]  # fmt: skip
    for shape, code in zip(shapes, [1, 3, 2, 1, 2, 1], strict=True):
        fill(expected, shape, code)
    return pyramid, before, expected, result


def test_rasterize_fills_every_level_like_an_independent_fill(painted):
    pyramid, _, expected, _ = painted
    # later polygons on top, holes left as they were, pixels outside every polygon keep their labels
    assert (expected == 2).sum() > 100_000 and (expected[1700:2300, 300:1500] == 3).sum() > 100_000
    for got, want in zip(all_levels(pyramid), reference_levels(expected, len(pyramid.levels)), strict=True):
        np.testing.assert_array_equal(got, want)
    assert np.array_equal(pyramid.read_region(0, 2000, 800, 2001, 801), [[3]])  # the hole shows the necrosis below


def test_rasterize_reports_and_logs_the_change_per_class(painted):
    pyramid, before, expected, result = painted
    changed = before != expected
    assert result.pixels == changed.sum() and result.polygons == 5  # the one outside the slide is not counted
    names = {0: "background", 1: "tumor", 2: "exclusion", 3: "necrosis"}
    want = {}
    for code, name in names.items():
        added, removed = int((expected[changed] == code).sum()), int((before[changed] == code).sum())
        if added or removed:
            want[name] = {"added": added, "removed": removed}
    assert result.changed == want
    tiles = {(y // 512, x // 512) for y, x in zip(*np.nonzero(changed), strict=True)}
    assert result.tiles == len(tiles)
    record = pyramid.history()[-1]
    assert record["event"] == "rasterize" and record["annotator"] == "alice" and record["committed_at"].endswith("Z")
    assert record["polygons"] == 5 and record["pixels_changed"] == result.pixels and record["changes"] == want
    assert len(pyramid.history()) == 2  # the commit of the fixture, then this
    assert not (pyramid.path / ".nsclc-journal").exists()


def test_rasterize_follows_the_projects_pixel_rule_on_edges_and_centres(tmp_path):
    """Vertices on pixel centres and edges on tile edges: the pyramid agrees with geometry.rasterize_polygons."""
    pyramid = LabelPyramid.create(tmp_path / "p.zarr", (1200, 650), chunk=128, schema=SCHEMA)
    polygons = [np.array([[0, 0], [0, 256], [256, 256], [256, 0]], float),  # edges on centres of tile-edge pixels
                np.array([[100.5, 120], [300, 380.5], [255.5, 511.5], [60, 400]]),  # half-integers
                np.array([[255, 255], [255, 400], [400, 255]], float),  # a right angle on tile corners
                np.array([[500, 10], [690, 10], [500, 640], [690, 640]], float)]  # self-crossing: even-odd  # fmt: skip
    rasterize(pyramid, polygons, [1, 2, 3, 1], tile=256)
    want = rasterize_polygons([Polygon(p) for p in polygons], (1200, 650), [1, 2, 3, 1])
    np.testing.assert_array_equal(pyramid.levels[0][:], want)
    for got, ref in zip(all_levels(pyramid)[1:], reference_levels(want, len(pyramid.levels))[1:], strict=True):
        np.testing.assert_array_equal(got, ref)


def test_rasterize_writes_only_chunks_that_change(tmp_path, monkeypatch):
    from napari_nsclc.label_pyramid import journal

    pyramid = LabelPyramid.create(tmp_path / "p.zarr", SHAPE, chunk=256, schema=SCHEMA)
    written = []
    original = journal.Transaction.write

    def spy(self, path, y0, x0, block):
        written.append((path, y0, x0, block.shape))
        return original(self, path, y0, x0, block)

    monkeypatch.setattr(journal.Transaction, "write", spy)
    square = np.array([[300.5, 300.5], [300.5, 700.5], [700.5, 700.5], [700.5, 300.5]])  # pixels 301..700
    rasterize(pyramid, [square], "tumor", tile=1024)
    level0 = {(y0 // 256, x0 // 256 + k) for path, y0, x0, shape in written if path == "0"
              for k in range(shape[1] // 256)}  # fmt: skip
    assert level0 == {(r, c) for r in (1, 2) for c in (1, 2)}  # the four chunks the square's pixels are in
    assert max(shape[0] * shape[1] for *_, shape in written) <= 256 * 512
    written.clear()
    nothing = rasterize(pyramid, [square], "tumor", tile=1024)  # the same again: no pixel changes
    assert (nothing.pixels, nothing.tiles, written) == (0, 0, [])
    assert len(pyramid.history()) == 1


def test_rasterize_refuses_bad_input_and_writes_nothing(tmp_path):
    pyramid = LabelPyramid.create(tmp_path / "p.zarr", (600, 600), chunk=128, schema=SCHEMA)
    square = np.array([[10.5, 10.5], [10.5, 90.5], [90.5, 90.5]])
    with pytest.raises(NsclcFormatError, match="'stroma' is not one of the pyramid's classes"):
        rasterize(pyramid, [square, square], ["tumor", "stroma"])
    with pytest.raises(NsclcFormatError, match="got 1 classes for 2 polygons"):
        rasterize(pyramid, [square, square], ["tumor"])
    with pytest.raises(NsclcFormatError, match="polygon 0 has non-finite vertices"):
        rasterize(pyramid, [square * np.nan], "tumor")
    with pytest.raises(NsclcFormatError, match="not a multiple of the 128 px chunk"):
        rasterize(pyramid, [square], "tumor", tile=200)
    with pytest.raises(NsclcFormatError, match="read-only"):
        rasterize(LabelPyramid.open(pyramid.path, writable=False), [square], "tumor")
    assert not pyramid.levels[0][:].any() and pyramid.history() == []


def test_the_mode_of_mostly_uniform_masks_equals_the_reference_mode():
    rng = np.random.default_rng(3)
    labels = np.zeros((512, 776), np.uint8)
    labels[40:300, 100:600] = 1
    labels[200:260, :] = rng.integers(0, 4, (60, 776))  # every kind of tie
    for case in (labels, labels[:511, :775], labels.astype(np.uint16)):
        np.testing.assert_array_equal(mode_2x2(case), reference_mode(case))


_KILLER = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    from napari_nsclc.label_pyramid import LabelPyramid, journal
    from napari_nsclc.label_pyramid.raster import rasterize
    where, when = sys.argv[2], int(sys.argv[3])
    state = {"n": 0, "applying": False}
    def die():
        os.kill(os.getpid(), signal.SIGKILL)
    def counted(original, only_applying=False):
        def call(*args, **kwargs):
            if state["applying"] or not only_applying:
                state["n"] += 1
                if state["n"] == when:
                    die()
            return original(*args, **kwargs)
        return call
    original_apply = journal.apply
    def applying(*args):
        state["applying"] = True
        if where == "apply":
            die()
        return original_apply(*args)
    journal.apply = applying
    if where == "write":  # while the new chunks are written aside
        journal.Transaction.write = counted(journal.Transaction.write)
    elif where == "fsync":  # while they are flushed, before the commit point
        journal._fsync_file = counted(journal._fsync_file)
    elif where == "move":  # after the commit point, while chunks are moved into the levels
        os.replace = counted(os.replace, only_applying=True)
    polygons = np.load(sys.argv[4])
    rasterize(LabelPyramid.open(sys.argv[1]), list(polygons), ["tumor", "exclusion", "necrosis"], tile=512)
    print("finished")
""")


@pytest.mark.parametrize("where, when, committed", [("write", 5, False), ("fsync", 30, False), ("apply", 0, True),
                                                    ("move", 25, True)])  # fmt: skip
def test_a_kill_during_rasterize_leaves_before_or_after_at_every_level(tmp_path, where, when, committed):
    path = tmp_path / "p.zarr"
    pyramid = LabelPyramid.create(path, SHAPE, chunk=256, schema=SCHEMA)
    pyramid.commit(100, 100, np.full((900, 1400), 3, np.uint8))
    before = all_levels(pyramid)
    polygons = np.stack([blob(600, 700, 500, 1), blob(1500, 1300, 700, 2), blob(2500, 2000, 400, 3)])
    np.save(tmp_path / "polygons.npy", polygons)
    finished = shutil.copytree(path, tmp_path / "finished.zarr")
    rasterize(LabelPyramid.open(finished), list(polygons), ["tumor", "exclusion", "necrosis"], tile=512)
    after = all_levels(LabelPyramid.open(finished))
    assert not np.array_equal(before[0], after[0])
    run = subprocess.run([sys.executable, "-c", _KILLER, str(path), where, str(when), str(tmp_path / "polygons.npy")],
                         capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert run.returncode == -signal.SIGKILL, (run.returncode, run.stdout, run.stderr)
    reopened = LabelPyramid.open(path)
    state = all_levels(reopened)
    is_before = all(np.array_equal(a, b) for a, b in zip(state, before, strict=True))
    is_after = all(np.array_equal(a, b) for a, b in zip(state, after, strict=True))
    assert (is_before, is_after) == (not committed, committed)
    events = [event["event"] for event in reopened.history()]
    assert events == (["commit", "rasterize"] if committed else ["commit"])  # logged once, when it happened


# --------------------------------------------------------------------------- export_tiff


def test_export_tiff_is_a_camelyon_style_pyramid_every_level_equal(painted, tmp_path):
    pyramid = LabelPyramid.create(tmp_path / "um.zarr", SHAPE, chunk=256, schema=SCHEMA, pixel_size=(0.25, 0.25),
                                  unit="um")  # fmt: skip
    labels = painted[2]
    with pyramid.transaction() as tx:  # the painted labels, in a pyramid with a pixel size
        for k, level in enumerate(reference_levels(labels, len(pyramid.levels))):
            tx.write(pyramid.paths[k], 0, 0, level)
        tx.commit({"event": "test"})
    target = export_tiff(pyramid, tmp_path / "slide_mask.tif")
    with tifffile.TiffFile(target) as tif:
        assert tif.is_bigtiff and len(tif.pages) == len(pyramid.levels) == 3
        for k, page in enumerate(tif.pages):
            assert page.dtype == np.uint8 and page.shape == pyramid.levels[k].shape and page.samplesperpixel == 1
            assert (page.tilelength, page.tilewidth) == (512, 512) and page.compression == tifffile.COMPRESSION.ADOBE_DEFLATE
            assert page.resolutionunit == tifffile.RESUNIT.CENTIMETER and page.subfiletype == (1 if k else 0)
            assert page.resolution == pytest.approx((1e4 / (0.25 * 2**k),) * 2)
            np.testing.assert_array_equal(page.asarray(), pyramid.levels[k][:])
    (case,) = slide.read_slide(target)
    assert case.image.data is None and case.image.pixel_size == (0.25, 0.25) and case.image.unit == "um"
    (mask,) = case.masks
    assert mask.multiscale and [tuple(d.shape) for d in mask.data] == [tuple(a.shape) for a in pyramid.levels]
    np.testing.assert_array_equal(np.asarray(mask.data[1][:, :]), pyramid.levels[1][:])
    with pytest.raises(NsclcFormatError, match="already exists"):
        export_tiff(pyramid, target)
    assert list(tmp_path.glob("*.tif*")) == [target]  # nothing left aside


def test_export_tiff_streams_tiles(tmp_path):
    """A 10,000² pyramid (100 MB at level 0) is exported holding a few MB: tiles, not levels."""
    pyramid = LabelPyramid.create(tmp_path / "big.zarr", (10_000, 10_000), schema=SCHEMA)
    rasterize(pyramid, [blob(5000, 5000, 3000, 1, 96)], "tumor")
    tracemalloc.start()
    try:
        export_tiff(pyramid, tmp_path / "big_mask.tif")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40e6, peak
    with tifffile.TiffFile(tmp_path / "big_mask.tif") as tif:
        page = tif.pages[0]
        assert page.shape == (10_000, 10_000) and page.resolutionunit == tifffile.RESUNIT.NONE
        np.testing.assert_array_equal(tif.pages[0].asarray()[4000:6000, 4000:6000],
                                      pyramid.read_region(0, 4000, 4000, 6000, 6000))  # fmt: skip


# --------------------------------------------------------------------------- to_polygons / write_polygons


@pytest.fixture
def regions(tmp_path):
    """Labels with regions cut by the 300 px tracing tiles: a ring with a hole, a pinch, nested classes."""
    labels = np.zeros((1100, 900), np.uint8)
    labels[250:700, 200:650] = 1  # crosses the tile edges at 300 and 600 both ways
    labels[350:450, 350:420] = 0  # a hole across the tile corner (300 < y, 300 < x)
    labels[500:560, 280:330] = 3  # necrosis inside the tumour, across x = 300
    labels[590:611, 590:611] = 2  # exclusion inside, across the tile corner (600, 600)
    labels[800, 299] = labels[801, 300] = 2  # two pixels touching only diagonally, across x = 300
    labels[1000:1100, 850:900] = 1  # at the slide's corner
    pyramid = LabelPyramid.create(tmp_path / "r.zarr", labels.shape, chunk=128, schema=SCHEMA,
                                  pixel_size=(0.5, 0.5), unit="um")  # fmt: skip
    runs = _runs(labels)
    rasterize(pyramid, [p for p, _ in runs], [c for _, c in runs])
    assert np.array_equal(pyramid.levels[0][:], labels)
    return pyramid, labels


def _runs(labels):
    """Runs of equal labels along each row, as rectangles: fewer polygons than pixels."""
    out = []
    for y in range(labels.shape[0]):
        row = labels[y]
        edges = np.flatnonzero(np.diff(np.r_[0, row, 0]) != 0)
        for start, stop in itertools.pairwise(edges):
            if row[start]:
                out.append((np.array([[y - 0.5, start - 0.5], [y - 0.5, stop - 0.5], [y + 0.5, stop - 0.5],
                                      [y + 0.5, start - 0.5]]), int(row[start])))  # fmt: skip
    return out


def _whole_mask_polygons(labels):
    """Tracing the whole mask at once (the project's tracer), split at diagonal pinches like to_polygons."""
    traced = labels_to_instances(labels, SCHEMA)
    out = []
    for polygon, name in zip(traced.polygons, traced.classes, strict=True):
        shape = shapely.make_valid(polygon.to_shapely(), method="structure")
        out += [(str(name), shapely.normalize(part)) for part in shapely.get_parts(shape)]
    return sorted(out, key=lambda item: (item[0], item[1].wkb))


def test_to_polygons_merges_across_tiles_into_what_tracing_the_whole_mask_gives(regions):
    pyramid, labels = regions
    polygons = to_polygons(pyramid, tile=300)
    tumour = [p for name, p in polygons if name == "tumor" and p.bounds[0] < 800]
    assert len(tumour) == 1 and len(tumour[0].interiors) == 3  # one polygon, whatever the tiles; 3 holes
    assert tumour[0].bounds == (199.5, 249.5, 649.5, 699.5) and tumour[0].area == 450 * 450 - 100 * 70 - 60 * 50 - 441
    got = sorted(((name, shapely.normalize(p)) for name, p in polygons), key=lambda item: (item[0], item[1].wkb))
    want = _whole_mask_polygons(labels)
    assert [name for name, _ in got] == [name for name, _ in want]
    assert all(a.equals_exact(b, 0) for (_, a), (_, b) in zip(got, want, strict=True))
    assert [name for name, _ in polygons] == ["tumor"] * 2 + ["exclusion"] * 3 + ["necrosis"]  # schema order


def test_to_polygons_filled_again_give_the_labels_back(regions, tmp_path):
    pyramid, labels = regions
    again = LabelPyramid.create(tmp_path / "again.zarr", labels.shape, chunk=128, schema=SCHEMA)
    polygons = to_polygons(pyramid, tile=256)
    rasterize(again, [p for _, p in polygons], [name for name, _ in polygons], tile=256)
    for got, want in zip(all_levels(again), all_levels(pyramid), strict=True):
        np.testing.assert_array_equal(got, want)
    coarse = LabelPyramid.create(tmp_path / "coarse.zarr", labels.shape, chunk=128, schema=SCHEMA)
    polygons = to_polygons(pyramid, level=1, tile=200)  # level-1 outlines, in level-0 coordinates
    rasterize(coarse, [p for _, p in polygons], [name for name, _ in polygons])
    level1 = pyramid.levels[1][:]
    np.testing.assert_array_equal(coarse.levels[0][:], np.repeat(np.repeat(level1, 2, 0), 2, 1)[:1100, :900])


def test_write_polygons_geojson_read_back_independently_and_by_the_project(regions, tmp_path):
    pyramid, labels = regions
    target = write_polygons(pyramid, tmp_path / "regions.geojson")
    document = json.loads(target.read_text())
    features = document["features"]
    polygons = to_polygons(pyramid)
    assert len(features) == len(polygons) == 6
    for feature, (name, polygon) in zip(features, polygons, strict=True):
        assert feature["properties"]["classification"]["name"] == name
        assert feature["properties"]["classification"]["color"] == [round(255 * c) for c in
                                                                   SCHEMA.color_of(name)[:3]]  # fmt: skip
        shape = shapely.geometry.shape(feature["geometry"])
        assert shape.is_valid and shape.equals(shapely.affinity.translate(polygon, 0.5, 0.5))  # corner origin
    (case,) = registry.read(target)
    back = LabelPyramid.create(tmp_path / "back.zarr", labels.shape, chunk=128, schema=SCHEMA)
    (objects,) = case.polygons
    rasterize(back, objects.polygons, list(objects.classes))
    np.testing.assert_array_equal(back.levels[0][:], labels)


def test_write_polygons_asap_xml_read_back_independently_and_by_the_project(tmp_path):
    labels = np.zeros((700, 800), np.uint8)
    labels[100:400, 250:700] = 1  # across the 256 px chunks, no holes: ASAP has none
    labels[500:650, 50:300] = 2
    pyramid = LabelPyramid.create(tmp_path / "a.zarr", labels.shape, chunk=128, schema=SCHEMA)
    rasterize(pyramid, [p for p, _ in _runs(labels)], [c for _, c in _runs(labels)])
    target = write_polygons(pyramid, tmp_path / "a.xml")
    root = ElementTree.parse(target).getroot()
    annotations = root.find("Annotations").findall("Annotation")
    assert [a.get("PartOfGroup") for a in annotations] == ["tumor", "exclusion"]
    groups = {g.get("Name"): g.get("Color") for g in root.find("AnnotationGroups").findall("Group")}
    assert groups == {"tumor": "#FF0000", "exclusion": "#00FF00"}
    corners = sorted((float(c.get("X")), float(c.get("Y"))) for c in annotations[0].iter("Coordinate"))
    assert corners == [(250.0, 100.0), (250.0, 400.0), (700.0, 100.0), (700.0, 400.0)]  # pixel corners
    (case,) = registry.read(target)
    back = LabelPyramid.create(tmp_path / "back.zarr", labels.shape, chunk=128, schema=SCHEMA)
    rasterize(back, case.polygons[0].polygons, list(case.polygons[0].classes))
    np.testing.assert_array_equal(back.levels[0][:], labels)
    with pytest.raises(NsclcFormatError, match=r"ASAP XML \(.xml\) or QuPath GeoJSON"):
        write_polygons(pyramid, tmp_path / "a.csv")


# --------------------------------------------------------------------------- sources


def test_from_mask_tiff_copies_level0_by_blocks_and_computes_its_own_levels(tmp_path, monkeypatch):
    from napari_nsclc.formats._slide_tiles import TiledLevel

    mask = np.zeros(SHAPE, np.uint8)
    mask[200:1900, 300:2400] = 1
    mask[900:1200, 1000:1500] = 2
    mask[2500:2510, :] = 1  # thin: decimation would drop it at level 2, the mode keeps it at level 1
    tiff = builders.write_mask_pyramid(tmp_path / "tumor_001_mask.tif", mask, n_levels=3, tile=256, mpp=0.243)
    reads = []
    original = TiledLevel.__getitem__

    def spy(self, key):
        out = original(self, key)
        reads.append(out.size)
        return out

    monkeypatch.setattr(TiledLevel, "__getitem__", spy)
    pyramid = from_mask_tiff(tiff, tmp_path / "p.zarr", shape=SHAPE)
    assert max(reads) <= 2048 * 2048  # never the whole level
    assert pyramid.schema.names == ["tumor", "exclusion", "foreground"]
    assert pyramid.pixel_size == pytest.approx((0.243, 0.243)) and pyramid.unit == "um"
    for got, want in zip(all_levels(pyramid), reference_levels(mask, len(pyramid.levels)), strict=True):
        np.testing.assert_array_equal(got, want)
    (record,) = pyramid.history()
    assert record["event"] == "import" and record["source"] == str(tiff)
    assert record["pixels"] == {"tumor": int((mask == 1).sum()), "exclusion": 150_000}


def test_from_mask_tiff_reads_a_tiff_without_pyramid(tmp_path):
    mask = np.zeros((2500, 2300), np.uint8)
    mask[1000:2400, 100:2200] = 255  # a 0/255 binary mask
    tiff = tmp_path / "flat_mask.tif"
    tifffile.imwrite(tiff, mask, rowsperstrip=64, compression="zlib")
    pyramid = from_mask_tiff(tiff, tmp_path / "p.zarr")
    assert pyramid.unit == "px" and pyramid.schema.name_of(255) == "foreground"
    for got, want in zip(all_levels(pyramid), reference_levels(mask, len(pyramid.levels)), strict=True):
        np.testing.assert_array_equal(got, want)


def test_from_mask_tiff_refuses_what_is_not_this_slides_mask(tmp_path):
    mask = np.zeros((600, 500), np.uint8)
    tiff = builders.write_mask_pyramid(tmp_path / "m_mask.tif", mask, n_levels=2, tile=256)
    with pytest.raises(NsclcFormatError, match=r"is 500x600 px at level 0 but the slide is 700x600 px") as error:
        from_mask_tiff(tiff, tmp_path / "a.zarr", shape=(600, 700))
    assert error.value.path == str(tiff) and not (tmp_path / "a.zarr").exists()
    rgb = builders.write_svs_like(tmp_path / "rgb.svs", builders.synthetic_tissue((512, 512)), n_levels=2)
    with pytest.raises(NsclcFormatError, match="3 samples per pixel .*not a label mask"):
        from_mask_tiff(rgb, tmp_path / "b.zarr")
    (tmp_path / "notes.tif").write_text("not a tiff")
    with pytest.raises(NsclcFormatError, match="not a readable TIFF"):
        from_mask_tiff(tmp_path / "notes.tif", tmp_path / "c.zarr")
    (tmp_path / "taken.zarr").mkdir()
    with pytest.raises(NsclcFormatError, match="already exists") as error:
        from_mask_tiff(tiff, tmp_path / "taken.zarr")
    assert error.value.path == str(tmp_path / "taken.zarr")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m_mask.tif", "notes.tif", "rgb.svs", "taken.zarr"]


def _asap_rings(path: Path) -> list[tuple[str, np.ndarray]]:
    """Each ASAP annotation's group and ``(x, y)`` ring in model coordinates (corners to centres), by defusedxml."""
    out = []
    for annotation in ElementTree.parse(path).getroot().iter("Annotation"):
        rows = sorted((int(c.get("Order")), float(c.get("X")), float(c.get("Y"))) for c in annotation.iter("Coordinate"))
        out.append((annotation.get("PartOfGroup"), np.array([(x - 0.5, y - 0.5) for _, x, y in rows])))
    return out


def test_from_annotations_real_camelyon17_asap_file(samples, tmp_path):
    """patient_004_node_4.xml (CAMELYON17), no slide: the pyramid is shaped only to cover its coordinates."""
    source = samples / "camelyon17" / "patient_004_node_4.xml"
    pyramid = from_annotations(source, tmp_path / "p.zarr", shape=(89_500, 13_800), pixel_size=(0.243, 0.243),
                               unit="um")  # fmt: skip
    classes = [(c.code, c.name, c.color) for c in pyramid.schema.classes]
    assert classes == [(c.code, c.name, c.color) for c in slide.CAMELYON_MASK_SCHEMA.classes]
    assert pyramid.pixel_size == (0.243, 0.243) and pyramid.unit == "um"
    rings = _asap_rings(source)
    assert [group for group, _ in rings] == ["Tumor"] * 3
    total = 0
    for _, ring in rings:
        shape = shapely.Polygon(ring)
        x0, y0, x1, y1 = (int(v) for v in shape.bounds)
        want = fill(np.zeros((y1 - y0 + 3, x1 - x0 + 3), np.uint8), shapely.affinity.translate(shape, -x0, -y0), 1)
        np.testing.assert_array_equal(pyramid.read_region(0, y0, x0, y1 + 3, x1 + 3), want)
        total += int(want.sum())
    (record,) = pyramid.history()
    assert record["changes"]["tumor"] == {"added": total, "removed": 0} and total > 100_000
    overview = pyramid.levels[-1][:]
    assert overview.max() == 1


def test_from_annotations_camelyon16_groups_exclusions_on_top(tmp_path):
    xml = tmp_path / "tumor_001.xml"
    outline = "".join(f'<Coordinate Order="{k}" X="{x}" Y="{y}" />' for k, (x, y) in
                      enumerate([(100.3, 100.3), (900.3, 100.3), (900.3, 800.3), (100.3, 800.3)]))  # fmt: skip
    inner = "".join(f'<Coordinate Order="{k}" X="{x}" Y="{y}" />' for k, (x, y) in
                    enumerate([(300.3, 300.3), (500.3, 300.3), (500.3, 500.3), (300.3, 500.3)]))  # fmt: skip
    xml.write_text(f'<?xml version="1.0"?><ASAP_Annotations><Annotations>'
                   f'<Annotation Name="a" Type="Polygon" PartOfGroup="_2"><Coordinates>{inner}</Coordinates></Annotation>'
                   f'<Annotation Name="b" Type="Polygon" PartOfGroup="_0"><Coordinates>{outline}</Coordinates></Annotation>'
                   f'</Annotations><AnnotationGroups><Group Name="_0" PartOfGroup="None" Color="#FF0000" />'
                   f'<Group Name="_2" PartOfGroup="None" Color="#00FF00" /></AnnotationGroups></ASAP_Annotations>')  # fmt: skip
    pyramid = from_annotations(xml, tmp_path / "p.zarr", shape=(1000, 1000))
    want = np.zeros((1000, 1000), np.uint8)
    want[100:800, 100:900] = 1  # pixel centres 100..799 lie inside corners 100.3..800.3 (model 99.8..799.8)
    want[300:500, 300:500] = 2  # the exclusion, first in the file, still on top
    np.testing.assert_array_equal(pyramid.levels[0][:], want)


def test_from_annotations_geojson_keeps_its_classes_and_skips_lines_and_points(tmp_path):
    outer = [[200.27, 100.61], [1500.27, 100.61], [1500.27, 900.61], [200.27, 900.61], [200.27, 100.61]]
    hole = [[600.27, 300.61], [900.27, 310.13], [880.41, 600.61], [600.27, 300.61]]
    parts = [[[[1700.27, 1100.61], [1900.13, 1110.27], [1800.41, 1300.61], [1700.27, 1100.61]]],
             [[[100.27, 1200.61], [300.13, 1210.27], [290.41, 1400.61], [100.27, 1200.61]]]]  # fmt: skip
    features = [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [outer, hole]},
         "properties": {"classification": {"name": "Tumor", "color": [200, 0, 0]}}},
        {"type": "Feature", "geometry": {"type": "MultiPolygon", "coordinates": parts},
         "properties": {"classification": {"name": "Stroma", "color": [0, 150, 0]}}},
        {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[0, 0], [1900, 1400]]},
         "properties": {"classification": {"name": "Tumor"}}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [50, 50]}, "properties": {}},
    ]  # fmt: skip
    source = tmp_path / "slide.geojson"
    source.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    pyramid = from_annotations(source, tmp_path / "p.zarr", shape=(1500, 2000))
    assert pyramid.schema.names[:2] == ["Tumor", "Stroma"]
    assert pyramid.schema.color_of("Stroma")[:3] == pytest.approx((0, 150 / 255, 0), abs=1e-3)
    want = np.zeros((1500, 2000), np.uint8)
    corner_to_centre = lambda g: shapely.affinity.translate(g, -0.5, -0.5)
    fill(want, corner_to_centre(shapely.Polygon(outer, [hole])), pyramid.schema.code_of("Tumor"))
    fill(want, corner_to_centre(shapely.MultiPolygon([shapely.Polygon(p[0]) for p in parts])),
         pyramid.schema.code_of("Stroma"))  # fmt: skip
    np.testing.assert_array_equal(pyramid.levels[0][:], want)
    inside_hole = corner_to_centre(shapely.Polygon(hole)).representative_point()
    assert want[round(inside_hole.y), round(inside_hole.x)] == 0  # the hole is empty
    assert (want > 0).sum() > 900_000 and want[5, 5] == 0  # the LineString from (0, 0) drew nothing


def test_from_annotations_refuses_bad_files(tmp_path):
    points = tmp_path / "points.geojson"
    points.write_text(json.dumps([{"type": "Feature", "geometry": {"type": "Point", "coordinates": [5, 5]},
                                   "properties": {}}]))  # fmt: skip
    with pytest.raises(NsclcFormatError, match="holds no polygon to fill") as error:
        from_annotations(points, tmp_path / "a.zarr", shape=(100, 100))
    assert error.value.path == str(points)
    far = tmp_path / "far.geojson"
    far.write_text(json.dumps([{"type": "Feature", "properties": {},
                                "geometry": {"type": "Polygon", "coordinates": [[[5000, 5000], [5100, 5000],
                                                                                 [5100, 5100], [5000, 5000]]]}}]))  # fmt: skip
    with pytest.raises(NsclcFormatError, match="lies outside the 300x200 px slide"):
        from_annotations(far, tmp_path / "b.zarr", shape=(200, 300))
    with pytest.raises(NsclcFormatError, match="Unclassified that the schema 'tissue' lacks"):
        from_annotations(far, tmp_path / "c.zarr", shape=(9000, 9000), schema=SCHEMA)
    (tmp_path / "taken.zarr").mkdir()
    with pytest.raises(NsclcFormatError, match="already exists"):
        from_annotations(far, tmp_path / "taken.zarr", shape=(9000, 9000))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["far.geojson", "points.geojson", "taken.zarr"]


def test_empty_for_slide_takes_the_slides_shape_and_pixel_size(tmp_path):
    svs = builders.write_svs_like(tmp_path / "case.svs", builders.synthetic_tissue((1536, 1280)), n_levels=2,
                                  mpp=0.2525)  # fmt: skip
    pyramid = empty_for_slide(svs, tmp_path / "case_labels.zarr", schema=SCHEMA)
    assert pyramid.shape == (1536, 1280) and len(pyramid.levels) == 2
    assert pyramid.pixel_size == pytest.approx((0.2525, 0.2525)) and pyramid.unit == "um"
    assert pyramid.schema.names == SCHEMA.names and not pyramid.levels[0][:].any()
    (tmp_path / "case.txt").write_text("hello")
    with pytest.raises(NsclcFormatError, match="not a readable TIFF"):
        empty_for_slide(tmp_path / "case.txt", tmp_path / "other.zarr")
    with pytest.raises(NsclcFormatError, match="already exists"):
        empty_for_slide(svs, tmp_path / "case_labels.zarr")


# --------------------------------------------------------------------------- one large pyramid


def test_rasterize_on_a_20k_pyramid_with_default_tiles(tmp_path):
    pyramid = LabelPyramid.create(tmp_path / "big.zarr", (20_000, 20_000), schema=SCHEMA)
    rng = np.random.default_rng(7)
    centres = rng.uniform(1500, 18_500, (12, 2))
    polygons = [blob(cy, cx, rng.uniform(300, 1300), seed, 96) for seed, (cy, cx) in enumerate(centres)]
    classes = list(rng.choice(["tumor", "necrosis"], len(polygons)))
    reported = []
    result = rasterize(pyramid, polygons, classes, progress=lambda done, total: reported.append((done, total)))
    assert [done for done, _ in reported] == list(range(1, len(reported) + 1)) and reported[-1][1] == len(reported)
    assert 12 <= len(reported) < 100  # the 2048 px tiles some polygon's box meets, of the 100
    y0, x0 = (min(int(v) // 32 * 32 - 2048, 20_000 - 4096) for v in centres[0])  # aligned with level 5
    window = pyramid.read_region(0, y0, x0, y0 + 4096, x0 + 4096)
    want = np.zeros((4096, 4096), np.uint8)
    for polygon, name in zip(polygons, classes, strict=True):
        fill(want, shapely.affinity.translate(shapely.Polygon(xy(polygon)), -x0, -y0), SCHEMA.code_of(name))
    np.testing.assert_array_equal(window, want)
    for k, ref in enumerate(reference_levels(want, 6)[1:], 1):
        np.testing.assert_array_equal(pyramid.read_region(k, y0 >> k, x0 >> k, (y0 >> k) + ref.shape[0],
                                                          (x0 >> k) + ref.shape[1]), ref)  # fmt: skip
    assert result.polygons == 12 and result.pixels == sum(v["added"] for v in result.changed.values())
    assert (pyramid.levels[-1][:] > 0).sum() == pytest.approx(result.pixels / 32**2, rel=0.05)


def test_a_pyramid_from_a_file_needs_a_name_for_its_edit_log_and_nothing_is_left_without_one(tmp_path, monkeypatch):
    monkeypatch.delenv("NSCLC_ANNOTATOR", raising=False)
    monkeypatch.setenv("NSCLC_CONFIG_DIR", str(tmp_path / "config"))  # nobody named
    tiff = builders.write_mask_pyramid(tmp_path / "m_mask.tif", np.ones((600, 500), np.uint8), n_levels=2, tile=256)
    with pytest.raises(NsclcFormatError, match="a.zarr: no annotator name"):
        from_mask_tiff(tiff, tmp_path / "a.zarr")
    geojson = tmp_path / "t.geojson"
    geojson.write_text(json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},
                       "geometry": {"type": "Polygon", "coordinates": [[[10, 10], [90, 10], [90, 90], [10, 10]]]}}]}))
    with pytest.raises(NsclcFormatError, match="b.zarr: no annotator name"):
        from_annotations(geojson, tmp_path / "b.zarr", shape=(100, 100))
    assert not (tmp_path / "a.zarr").exists() and not (tmp_path / "b.zarr").exists()
    pyramid = from_mask_tiff(tiff, tmp_path / "a.zarr", annotator="carol")
    assert [event["annotator"] for event in pyramid.history()] == ["carol"]
