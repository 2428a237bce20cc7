"""Headless mask tools: exact pixel counts on small hand-made masks."""

from __future__ import annotations

import numpy as np
import pytest

from napari_nsclc.mask_tools import (
    changed_pixels,
    close_class,
    fill_holes,
    open_class,
    remove_islands,
    replace_in_polygon,
)


def ring_with_hole() -> np.ndarray:
    """A 20x20 mask: class 1 is a 7x7 square with a 3x3 hole (9 px) at rows/cols 7..9."""
    labels = np.zeros((20, 20), np.uint8)
    labels[5:12, 5:12] = 1
    labels[7:10, 7:10] = 0
    return labels


def test_fill_holes_fills_exactly_the_enclosed_background():
    labels = ring_with_hole()
    labels[0:3, 15:20] = 1  # a block touching the border: the background beside it is no hole
    original = labels.copy()
    filled = fill_holes(labels, 1)
    np.testing.assert_array_equal(labels, original)  # input untouched
    assert filled.dtype == labels.dtype
    indices, values = changed_pixels(labels, filled)
    assert len(values) == 9 and set(values.tolist()) == {1}
    assert set(zip(*indices, strict=True)) == {(r, c) for r in range(7, 10) for c in range(7, 10)}


def test_fill_holes_keeps_other_classes_and_needs_enclosure():
    labels = ring_with_hole()
    labels[8, 8] = 2  # another class inside the hole stays
    filled = fill_holes(labels, 1)
    assert filled[8, 8] == 2 and int((filled != labels).sum()) == 8
    assert fill_holes(labels, 2)[8, 8] == 2  # class 2 encloses nothing
    opened = ring_with_hole()
    opened[8, 5:7] = 0  # a channel to the outside: no longer a hole
    np.testing.assert_array_equal(fill_holes(opened, 1), opened)
    diagonal = np.zeros((5, 5), np.int32)  # a diamond of 8-connected pixels encloses its centre
    diagonal[[1, 2, 2, 3], [2, 1, 3, 2]] = 4
    assert fill_holes(diagonal, 4)[2, 2] == 4


def test_remove_islands_by_area_in_square_micrometres():
    labels = np.zeros((20, 20), np.uint16)
    labels[1, 1:4] = 3  # 3 px = 0.75 µm² at 0.5 µm
    labels[10:15, 10:16] = 3  # 30 px = 7.5 µm²
    labels[1, 4] = 5  # another class beside the small island stays
    result = remove_islands(labels, 3, min_area_um2=2.0, pixel_size_um=(0.5, 0.5))
    assert int((result == 3).sum()) == 30 and (result[1, 1:4] == 0).all() and result[1, 4] == 5
    # a threshold just above the big island removes it too; "smaller than" is strict
    assert int((remove_islands(labels, 3, 7.6, (0.5, 0.5)) == 3).sum()) == 0
    assert int((remove_islands(labels, 3, 7.5, (0.5, 0.5)) == 3).sum()) == 30
    assert int((remove_islands(labels, 3, 4, (1, 1)) == 3).sum()) == 30  # area in px²
    np.testing.assert_array_equal(remove_islands(labels, 3, 0, (0.5, 0.5)), labels)
    assert (labels[1, 1:4] == 3).all()  # input untouched


def test_open_removes_a_one_pixel_spur():
    labels = np.zeros((20, 20), np.uint8)
    labels[5:12, 5:12] = 1
    labels[8, 12:16] = 1  # a 1-px-wide spur of 4 px
    labels[0, 0] = 2
    opened = open_class(labels, 1, 1)
    # the spur goes but for its root pixel, which the radius-1 disk centred on the square's edge covers
    assert (opened[8, 13:16] == 0).all() and opened[8, 12] == 1
    assert int((opened == 1).sum()) == 49 - 4 + 1  # the square loses only its four corner pixels
    assert opened[0, 0] == 2
    np.testing.assert_array_equal(open_class(labels, 1, 0), labels)


def test_close_fills_a_one_pixel_gap_only_on_background():
    labels = np.zeros((20, 20), np.uint8)
    labels[5:15, 4:9] = 1
    labels[5:15, 10:15] = 1  # a 1-px gap at column 9
    closed = close_class(labels, 1, 1)
    assert (closed[6:14, 9] == 1).all()
    assert int((closed != labels).sum()) == 8  # rows 6..13; the gap's ends at the edges stay open
    labels[10, 9] = 2
    assert close_class(labels, 1, 1)[10, 9] == 2


def test_replace_only_inside_the_polygon_and_only_class_a():
    labels = np.zeros((20, 20), np.uint8)
    labels[:, :10] = 1
    labels[:, 10:] = 2
    labels[5, 5] = 3
    square = [(2, 2), (2, 12), (12, 12), (12, 2)]  # rows/cols 2..12 inclusive
    result = replace_in_polygon(labels, square, 1, 4)
    changed = result != labels
    assert int(changed.sum()) == 11 * 8 - 1  # cols 2..9 of rows 2..12, minus the class-3 pixel
    assert (result[2:13, 2:10][labels[2:13, 2:10] == 1] == 4).all()
    assert result[5, 5] == 3 and (result[:, 10:] == 2).all() and (result[0] == labels[0]).all()


def test_changed_pixels_and_input_checks():
    before = np.zeros((3, 4), np.uint8)
    after = before.copy()
    after[1, 2], after[2, 0] = 7, 9
    (rows, cols), values = changed_pixels(before, after)
    assert rows.tolist() == [1, 2] and cols.tolist() == [2, 0] and values.tolist() == [7, 9]
    assert values.dtype == np.uint8
    with pytest.raises(ValueError):
        fill_holes(np.zeros((2, 3, 4), np.uint8), 1)
    with pytest.raises(ValueError):
        fill_holes(np.zeros((3, 4)), 1)  # float is not a label array
    with pytest.raises(ValueError):
        replace_in_polygon(before, [(0, 0, 0)], 0, 1)
