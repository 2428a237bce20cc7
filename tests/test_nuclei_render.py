"""The outline pyramid napari draws: pixels against skimage's polygon perimeter, dots, selection, caching."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.draw import polygon_perimeter

from napari_nsclc.model import ClassInfo, ClassSchema
from napari_nsclc.nuclei.model import NucleusSet
from napari_nsclc.nuclei.render import SELECTED, TILE, OutlineView

SCHEMA = ClassSchema("test", (ClassInfo(1, "Tumor"), ClassInfo(2, "Stroma")))


def _circle(cy, cx, r, n=12):
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cy + r * np.sin(angles), cx + r * np.cos(angles)], axis=1)


def _set(rings, codes):
    lengths = [len(r) for r in rings]
    return NucleusSet(np.concatenate(rings), np.concatenate([[0], np.cumsum(lengths)]), codes, SCHEMA)


@pytest.fixture
def field():
    rng = np.random.default_rng(3)
    centres = rng.uniform(40, 3000, (400, 2))
    rings = [_circle(y, x, r) for (y, x), r in zip(centres, rng.uniform(5, 12, 400), strict=True)]
    return _set(rings, rng.integers(1, 3, 400))


def test_level_0_draws_each_outline_on_skimages_perimeter(field):
    view = OutlineView(field, (3100, 3100))
    pixels = view.levels[0][:, :]
    reference = np.zeros((3100, 3100), np.uint8)
    for i in range(len(field)):
        ring = np.rint(field.ring(i))
        rr, cc = polygon_perimeter(ring[:, 0], ring[:, 1], shape=reference.shape)
        reference[rr, cc] = field.codes[i]
    drawn, expected = pixels > 0, reference > 0
    # the same outlines: every reference pixel is drawn or touches a drawn one (rounding of the line walk)
    near = np.zeros_like(drawn)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            near |= np.roll(np.roll(drawn, dy, 0), dx, 1)
    assert near[expected].mean() == 1.0
    assert 0.85 < drawn.sum() / expected.sum() < 1.15
    # and in the right class: where both have a pixel they agree, except where two outlines cross
    both = drawn & expected
    assert (pixels[both] == reference[both]).mean() > 0.98
    # slicing napari's way (steps, negative and integer indices) gives the same pixels
    assert np.array_equal(view.levels[0][100:900:3, -700:-100], pixels[100:900:3, -700:-100])
    assert np.array_equal(view.levels[0][555], pixels[555])
    assert view.levels[0].shape == (3100, 3100) and view.levels[0].dtype == np.uint8


def test_coarse_levels_draw_dots_at_the_centres_and_the_whole_level_in_one_tile(field):
    view = OutlineView(field, (40_000, 40_000))  # a slide whose coarsest level is under 1024 px
    assert [level.shape for level in view.levels][-1] == (625, 625) and len(view.levels) == 7
    top = np.asarray(view.levels[-1])
    factor = 64
    boxes = field.bounds
    centres = np.rint(((boxes[:, :2] + boxes[:, 2:]) / 2 + 0.5) / factor - 0.5).astype(int)
    assert set(np.unique(top)) <= {0, 1, 2}
    assert (top[centres[:, 0], centres[:, 1]] > 0).all()
    assert (top > 0).sum() <= len(field)
    assert view.tile_size(6) == 625 and view.tile_size(0) == TILE


def test_selection_and_edits_redraw_their_tiles(field):
    view = OutlineView(field, (3100, 3100))
    i = 7
    y0, x0, y1, x1 = np.floor(field.bounds[i]).astype(int)
    box = (slice(y0 - 2, y1 + 3), slice(x0 - 2, x1 + 3))
    before = view.levels[0][box]
    assert field.codes[i] in before and SELECTED not in before
    field.select([i])
    assert SELECTED in view.levels[0][box]
    version = view.version
    field.reclassify("Stroma" if field.codes[i] == 1 else "Tumor")
    assert view.version > version
    field.select([])
    field.delete([i])
    after = view.levels[0][box]
    others = field.query(y0 - 2, x0 - 2, y1 + 3, x1 + 3)
    assert i not in others
    if not len(others):
        assert not after.any()
    field.undo()
    assert view.levels[0][box].any()
