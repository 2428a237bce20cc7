"""Mask <-> polygon conversions (napari_nsclc.geometry) are exact."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.measure import label

from napari_nsclc.geometry import labels_to_instances, mask_to_polygons, polygon_area, rasterize_polygons
from napari_nsclc.model import ClassSchema, Polygon

SCHEMA = ClassSchema.from_names("test", ["tumour", "stroma", "necrosis"])


def test_single_pixel_is_a_unit_square_on_pixel_boundaries():
    mask = np.zeros((3, 4), bool)
    mask[1, 2] = True
    (polygon,) = mask_to_polygons(mask)
    assert sorted(map(tuple, polygon.exterior.tolist())) == [(0.5, 1.5), (0.5, 2.5), (1.5, 1.5), (1.5, 2.5)]
    assert polygon.holes == []
    assert polygon_area(polygon.exterior) == 1.0


def test_ring_with_hole_keeps_the_hole():
    mask = np.zeros((6, 6), bool)
    mask[1:5, 1:5] = True
    mask[2:4, 2:4] = False
    (polygon,) = mask_to_polygons(mask)
    assert len(polygon.exterior) == 4 and len(polygon.holes) == 1
    assert polygon.exterior.min(axis=0).tolist() == [0.5, 0.5]
    assert polygon.exterior.max(axis=0).tolist() == [4.5, 4.5]
    assert polygon.holes[0].min(axis=0).tolist() == [1.5, 1.5]
    assert polygon.holes[0].max(axis=0).tolist() == [3.5, 3.5]
    assert polygon.to_shapely().area == 12.0
    np.testing.assert_array_equal(rasterize_polygons([polygon], mask.shape).astype(bool), mask)


def test_diagonal_pixels_are_one_object_like_pycocotools():
    mask = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], bool)
    polygons = mask_to_polygons(mask)
    assert len(polygons) == 1
    np.testing.assert_array_equal(rasterize_polygons(polygons, mask.shape).astype(bool), mask)


def test_island_inside_a_hole_is_its_own_polygon():
    mask = np.zeros((9, 9), bool)
    mask[1:8, 1:8] = True
    mask[2:7, 2:7] = False
    mask[4, 4] = True
    polygons = mask_to_polygons(mask)
    assert len(polygons) == 2
    assert [len(p.holes) for p in polygons] == [1, 0]
    assert polygon_area(polygons[1].exterior) == 1.0
    np.testing.assert_array_equal(rasterize_polygons(polygons, mask.shape).astype(bool), mask)


@pytest.mark.parametrize("seed", range(4))
def test_random_masks_round_trip_exactly(seed):
    rng = np.random.default_rng(seed)
    for _ in range(60):
        height, width = rng.integers(1, 40, 2)
        mask = rng.random((height, width)) < rng.random()
        polygons = mask_to_polygons(mask)
        assert len(polygons) == label(mask, connectivity=2).max()
        np.testing.assert_array_equal(rasterize_polygons(polygons, mask.shape).astype(bool), mask)
        for polygon in polygons:  # each polygon is exactly one 8-connected component
            single = rasterize_polygons([polygon], mask.shape)
            assert label(single, connectivity=2).max() == 1


def test_labels_to_instances_round_trip_and_coco_attributes():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 4, (25, 31)).astype(np.uint8)
    instances = labels_to_instances(labels, SCHEMA)
    codes = [SCHEMA.code_of(name) for name in instances.classes]
    np.testing.assert_array_equal(rasterize_polygons(instances.polygons, labels.shape, codes), labels)
    for polygon, code, attributes in zip(instances.polygons, codes, instances.attributes, strict=True):
        region = rasterize_polygons([polygon], labels.shape).astype(bool)
        assert (labels[region] == code).all()
        rows, cols = np.nonzero(region)
        assert attributes["area"] == region.sum()
        assert attributes["bbox"] == [cols.min(), rows.min(), np.ptp(cols) + 1, np.ptp(rows) + 1]
    expected_counts = {SCHEMA.name_of(v): label(labels == v, connectivity=2).max() for v in (1, 2, 3)}
    assert instances.counts() == expected_counts


def test_labels_outside_schema_are_kept_by_value():
    labels = np.zeros((4, 4), np.uint16)
    labels[0, 0] = 1
    labels[3, 3] = 300
    instances = labels_to_instances(labels, SCHEMA)
    assert list(instances.classes) == ["tumour", "<value 300>"]


def test_rasterize_later_polygons_on_top_and_holes_reveal_below():
    big = Polygon([[-0.5, -0.5], [-0.5, 5.5], [5.5, 5.5], [5.5, -0.5]])
    framed = Polygon(
        [[0.5, 0.5], [0.5, 4.5], [4.5, 4.5], [4.5, 0.5]], holes=[[[1.5, 1.5], [1.5, 3.5], [3.5, 3.5], [3.5, 1.5]]]
    )
    out = rasterize_polygons([big, framed], (6, 6), [1, 2])
    assert out[0, 0] == 1 and out[1, 1] == 2 and out[2, 2] == 1 and out[5, 5] == 1
    assert (out == 2).sum() == 16 - 4


def test_rasterize_clips_to_the_image():
    square = Polygon([[-10.5, -10.5], [-10.5, 1.5], [1.5, 1.5], [1.5, -10.5]])
    out = rasterize_polygons([square], (4, 4), 5, dtype=np.uint16)
    assert out.dtype == np.uint16
    assert (out[:2, :2] == 5).all() and out.sum() == 20


def test_real_ignite_mask_to_instances_and_back(samples):
    from PIL import Image

    from napari_nsclc.datasets.ignite_he import IGNITE_HE_SCHEMA

    labels = np.asarray(Image.open(samples / "ignite" / "patient1_he_roi1_with_context.png"))
    instances = labels_to_instances(labels, IGNITE_HE_SCHEMA)
    assert len(instances) == label(labels, connectivity=2, background=0).max() == 243
    codes = [IGNITE_HE_SCHEMA.code_of(name) for name in instances.classes]
    np.testing.assert_array_equal(rasterize_polygons(instances.polygons, labels.shape, codes), labels)
    assert sum(a["area"] for a in instances.attributes) == int((labels > 0).sum())


@pytest.mark.parametrize("seed", range(3))
def test_labels_to_coco_decodes_with_pycocotools_to_the_same_labels(seed):
    """Polygons for objects without holes, RLE for objects with holes: pycocotools gives back the mask."""
    from pycocotools import mask as mask_util

    from napari_nsclc.geometry import coco_segmentation_to_mask, labels_to_coco_annotations

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, (37, 29)).astype(np.uint8)
    labels[5:15, 5:15] = 2
    labels[8:11, 8:11] = 1  # a hole in class 2 filled by class 1
    annotations = labels_to_coco_annotations(labels, SCHEMA)
    kinds = {type(a["segmentation"]).__name__ for a in annotations}
    assert kinds == {"list", "dict"}  # both forms occur
    rebuilt = np.zeros_like(labels)
    ours = np.zeros_like(labels)
    for annotation in annotations:
        segmentation = annotation["segmentation"]
        if isinstance(segmentation, dict):
            encoded = {"size": segmentation["size"], "counts": segmentation["counts"].encode()}
        else:
            encoded = mask_util.merge(mask_util.frPyObjects(segmentation, *labels.shape))
        pixels = mask_util.decode(encoded).astype(bool)
        assert int(pixels.sum()) == annotation["area"] == int(mask_util.area(encoded))
        assert annotation["bbox"] == mask_util.toBbox(encoded).tolist()
        assert not rebuilt[pixels].any()  # objects never overlap
        rebuilt[pixels] = annotation["category_id"]
        ours[coco_segmentation_to_mask(segmentation, labels.shape).astype(bool)] = annotation["category_id"]
    np.testing.assert_array_equal(rebuilt, labels)
    np.testing.assert_array_equal(ours, labels)


def test_polygon_run_lengths_equal_rasterising_then_encoding():
    from napari_nsclc import rle
    from napari_nsclc.geometry import polygon_run_lengths

    rng = np.random.default_rng(11)
    for _ in range(40):
        height, width = (int(v) for v in rng.integers(2, 40, 2))
        mask = rng.random((height, width)) < 0.55
        for polygon in mask_to_polygons(mask):
            expected = rle.run_lengths(rasterize_polygons([polygon], (height, width)))
            np.testing.assert_array_equal(polygon_run_lengths(polygon, (height, width)), expected)
