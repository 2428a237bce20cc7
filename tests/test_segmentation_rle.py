"""napari_nsclc.rle matches pycocotools exactly (pycocotools is the reference)."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_util  # the reference implementation (testing extra)

from napari_nsclc import rle


def _random_masks(seed, n=150):
    rng = np.random.default_rng(seed)
    for index in range(n):
        height, width = (int(v) for v in rng.integers(1, 60, 2))
        mask = (rng.random((height, width)) < rng.random()).astype(np.uint8)
        if index % 10 == 0:
            mask[:] = 0
        elif index % 10 == 1:
            mask[:] = 1
        yield mask


@pytest.mark.parametrize("seed", range(3))
def test_encode_equals_pycocotools(seed):
    for mask in _random_masks(seed):
        reference = mask_util.encode(np.asfortranarray(mask))
        ours = rle.encode(mask)
        assert ours == {"size": list(reference["size"]), "counts": reference["counts"].decode()}
        assert rle.encode(mask.astype(bool)) == ours


@pytest.mark.parametrize("seed", range(3))
def test_decode_area_bbox_equal_pycocotools(seed):
    for mask in _random_masks(seed):
        reference = mask_util.encode(np.asfortranarray(mask))
        for counts in (reference["counts"], reference["counts"].decode()):
            decoded = rle.decode({"size": reference["size"], "counts": counts})
            assert decoded.dtype == np.uint8 and decoded.shape == mask.shape
            np.testing.assert_array_equal(decoded, mask)
        assert rle.area(reference) == int(mask_util.area(reference))
        assert rle.to_bbox(reference) == mask_util.toBbox(reference).tolist()


def test_uncompressed_counts_decode_like_pycocotools():
    rng = np.random.default_rng(3)
    mask = (rng.random((17, 23)) < 0.4).astype(np.uint8)
    uncompressed = {"size": [17, 23], "counts": rle.run_lengths(mask).tolist()}
    np.testing.assert_array_equal(rle.decode(uncompressed), mask)
    assert mask_util.frPyObjects(uncompressed, 17, 23)["counts"].decode() == rle.encode(mask)["counts"]


def test_large_run_lengths_use_negative_differences():
    mask = np.zeros((300, 400), np.uint8)
    mask[:, :200] = 1
    mask[150, 300] = 1
    ours = rle.encode(mask)
    assert ours["counts"] == mask_util.encode(np.asfortranarray(mask))["counts"].decode()
    np.testing.assert_array_equal(rle.decode(ours), mask)


def test_known_string():
    # A 2x3 mask with foreground at (0, 1) and (1, 2): column-major runs 2, 1, 2, 1;
    # the fourth run is written as its difference from the second (1 - 1 = 0).
    mask = np.array([[0, 1, 0], [0, 0, 1]], np.uint8)
    assert rle.run_lengths(mask).tolist() == [2, 1, 2, 1]
    assert rle.encode(mask) == {"size": [2, 3], "counts": "2120"}
    assert mask_util.encode(np.asfortranarray(mask))["counts"] == b"2120"


@pytest.mark.parametrize(
    "bad",
    [
        {"size": [2, 2], "counts": [1, 1]},
        {"size": [2, 2], "counts": "0"},
        {"size": [2, 2], "counts": "\x7f"},
        {"counts": "4"},
    ],
)
def test_corrupt_rle_is_a_clear_value_error(bad):
    with pytest.raises(ValueError):
        rle.decode(bad)


def test_encode_window_equals_encoding_the_full_mask():
    rng = np.random.default_rng(9)
    for _ in range(200):
        height, width = (int(v) for v in rng.integers(1, 30, 2))
        h, w = int(rng.integers(1, height + 1)), int(rng.integers(1, width + 1))
        row0, col0 = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
        window = rng.random((h, w)) < rng.random()
        full = np.zeros((height, width), bool)
        full[row0 : row0 + h, col0 : col0 + w] = window
        assert rle.encode_window(window, (row0, col0), (height, width)) == rle.encode(full)
