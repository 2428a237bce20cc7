"""Draw a :class:`NucleusSet` as class-coded outlines, a tile at a time, at any zoom level.

napari's Shapes layer triangulates every polygon when it is built (about 19 s
for 100k nuclei on this project's 2-core machine) and redraws them all on
every frame. Instead, :class:`OutlineView` offers napari a multiscale Labels
pyramid whose pixels are drawn on demand: napari asks a level for the region
in view, about the size of the screen, and only the nuclei in that region are
rasterised, from a spatial index, into a cached 512² tile. Each pixel holds
the class code of the outline through it (0 elsewhere), so the class colours
are the Labels colormap and a reclassification redraws only what is in view.

Where a nucleus is smaller than 2 pixels at a level it is drawn as one pixel
at its centre; selected nuclei are drawn last, 2 pixels wide, with
:data:`SELECTED`.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict

import numpy as np

from .model import NucleusSet

__all__ = ["SELECTED", "OutlineLevel", "OutlineView", "draw_dots", "draw_outlines"]

#: The pixel value of selected nuclei (schemas' codes stay below it).
SELECTED = 255
TILE = 512
#: Tiles kept drawn: 256 tiles of 512² uint8 are 64 MB.
CACHE_TILES = 256
#: The coarsest level's longer side is at most this many pixels.
COARSEST = 1024
#: A level this small is drawn as one tile: every nucleus is in view, so no spatial query is needed.
WHOLE_LEVEL = 2048


def _gather(nuclei: NucleusSet, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertices of ``indices``' rings, one array cut by offsets, and the position in ``indices`` of each ring.

    Outlines drawn here come after the rest.
    """
    drawn = np.fromiter((i in nuclei.outlines for i in indices.tolist()), bool, len(indices)) \
        if nuclei.outlines else np.zeros(len(indices), bool)
    base = indices[~drawn]
    starts = nuclei.offsets[base]
    lengths = nuclei.offsets[base + 1] - starts
    ring_offsets = np.concatenate([[0], np.cumsum(lengths)])
    flat = np.arange(int(ring_offsets[-1])) - np.repeat(ring_offsets[:-1] - starts, lengths)
    vertices = [nuclei.vertices[flat]]
    all_lengths = [lengths]
    for i in indices[drawn].tolist():
        vertices.append(nuclei.outlines[i])
        all_lengths.append(np.array([len(nuclei.outlines[i])]))
    lengths = np.concatenate(all_lengths)
    order = np.concatenate([np.flatnonzero(~drawn), np.flatnonzero(drawn)])
    return np.concatenate(vertices), np.concatenate([[0], np.cumsum(lengths)]), order


def draw_outlines(nuclei: NucleusSet, indices: np.ndarray, out: np.ndarray, origin: tuple[float, float],
                  factor: float, values: np.ndarray, width: int = 1) -> None:
    """Rasterise the outlines of ``indices`` into ``out`` with ``values``.

    Parameters
    ----------
    nuclei : NucleusSet
    indices : (K,) int array
        The nuclei to draw, in drawing order (later ones on top).
    out : (H, W) array
        Pixels of a level, written in place.
    origin : (float, float)
        Level pixel ``(y, x)`` of ``out[0, 0]``.
    factor : float
        Level-0 pixels per level pixel (``2 ** level``).
    values : (K,) array
        The pixel value of each nucleus.
    width : int
        1, or 2 to thicken (selected nuclei).
    """
    if not len(indices):
        return
    vertices, offsets, order = _gather(nuclei, indices)
    values = values[order]
    # level-0 pixel centre c lies at level pixel (c + 0.5) / factor - 0.5
    points = (vertices + 0.5) / factor - 0.5 - np.asarray(origin, float)
    lengths = np.diff(offsets)
    ring_of_vertex = np.repeat(np.arange(len(lengths)), lengths)
    following = np.arange(len(points)) + 1
    following[offsets[1:] - 1] = offsets[:-1]  # each ring's last vertex joins its first
    a, b = points, points[following]
    edge_values = values[ring_of_vertex]
    samples = np.ceil(np.abs(b - a).max(axis=1)).astype(np.int64) + 1
    edge = np.repeat(np.arange(len(a)), samples)
    first = np.concatenate([[0], np.cumsum(samples)[:-1]])
    t = (np.arange(int(samples.sum())) - first[edge]) / np.maximum(samples[edge] - 1, 1)
    y = a[edge, 0] + t * (b[edge, 0] - a[edge, 0])
    x = a[edge, 1] + t * (b[edge, 1] - a[edge, 1])
    _put(out, y, x, edge_values[edge], *out.shape, width)


def draw_dots(out: np.ndarray, centres: np.ndarray, origin: tuple[float, float], factor: float,
              values: np.ndarray, width: int = 1) -> None:
    """Draw nuclei too small for an outline as one pixel (``width``² pixels) at their level-0 ``(y, x)`` centres."""
    points = (centres + 0.5) / factor - 0.5 - np.asarray(origin, float)
    _put(out, points[:, 0], points[:, 1], values, *out.shape, width)


def _put(out, y, x, values, h, w, width):
    """``out[y, x] = values`` for the points inside ``out`` (and their ``width - 1`` right/down neighbours)."""
    flat = out.reshape(-1)
    for dy in range(width):
        for dx in range(width):
            yy, xx = np.rint(y).astype(np.intp) + dy, np.rint(x).astype(np.intp) + dx
            # as unsigned, a negative index is huge: one comparison per axis tests both ends
            inside = (yy.view(np.uintp) < h) & (xx.view(np.uintp) < w)
            linear = yy * w + xx
            if inside.all():
                flat[linear] = values
            else:
                flat[linear[inside]] = values[inside]


class OutlineView:
    """The nuclei of ``nuclei`` as a lazily drawn multiscale label image of ``shape`` (level-0 pixels).

    Parameters
    ----------
    nuclei : NucleusSet
    shape : (int, int), optional
        Level-0 ``(height, width)``: the slide's, so the pyramid lines up
        with it. Default: just past the nuclei.
    """

    def __init__(self, nuclei: NucleusSet, shape: tuple[int, int] | None = None):
        self.nuclei = nuclei
        if shape is None:
            top = nuclei.bounds[:, 2:].max(axis=0) if len(nuclei) else np.zeros(2)
            shape = (int(math.ceil(top[0])) + 2, int(math.ceil(top[1])) + 2)
        self.shape = (int(shape[0]), int(shape[1]))
        count = max(1, math.ceil(math.log2(max(max(self.shape) / COARSEST, 1))) + 1)
        self.levels = [OutlineLevel(self, k) for k in range(count)]
        self._tiles: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.version = 0

        nuclei.changed.connect(self.clear)
        nuclei.selection_changed.connect(self.clear)

    def level_shape(self, level: int) -> tuple[int, int]:
        factor = 2 ** level
        return (math.ceil(self.shape[0] / factor), math.ceil(self.shape[1] / factor))

    def clear(self, *_args) -> None:
        """Forget the drawn tiles (after an edit or a selection): they are drawn again when asked for."""
        with self._lock:
            self._tiles.clear()
            self.version += 1

    def tile_size(self, level: int) -> int:
        side = max(self.level_shape(level))
        return side if side <= WHOLE_LEVEL else TILE

    def region(self, level: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Pixels ``[y0:y1, x0:x1]`` of ``level``, shape ``(y1 - y0, x1 - x0)``, uint8."""
        out = np.zeros((max(y1 - y0, 0), max(x1 - x0, 0)), np.uint8)
        size = self.tile_size(level)
        for ty in range(y0 // size, (max(y1, y0 + 1) - 1) // size + 1):
            for tx in range(x0 // size, (max(x1, x0 + 1) - 1) // size + 1):
                tile = self._tile(level, ty, tx)
                ty0, tx0 = ty * size, tx * size
                a, b = max(y0, ty0), min(y1, ty0 + size)
                c, d = max(x0, tx0), min(x1, tx0 + size)
                if b > a and d > c:
                    out[a - y0:b - y0, c - x0:d - x0] = tile[a - ty0:b - ty0, c - tx0:d - tx0]
        return out

    def _tile(self, level: int, ty: int, tx: int) -> np.ndarray:
        key = (level, ty, tx)
        with self._lock:
            tile = self._tiles.get(key)
            if tile is not None:
                self._tiles.move_to_end(key)
                return tile
        tile = self.draw_tile(level, ty, tx)
        with self._lock:
            self._tiles[key] = tile
            while len(self._tiles) > CACHE_TILES:
                self._tiles.popitem(last=False)
        return tile

    def draw_tile(self, level: int, ty: int, tx: int) -> np.ndarray:
        """Draw one tile of ``level`` (not cached): :meth:`tile_size` square."""
        factor, size, nuclei = 2 ** level, self.tile_size(level), self.nuclei
        tile = np.zeros((size, size), np.uint8)
        y0, x0 = ty * size, tx * size
        if size >= max(self.level_shape(level)):  # the whole level: every nucleus, no spatial query
            if nuclei.deleted.any():
                indices = np.flatnonzero(~nuclei.deleted)
                boxes = nuclei.bounds[indices]
            else:
                indices, boxes = np.arange(len(nuclei)), nuclei.bounds
        else:  # level pixel p covers level-0 [p * factor, (p + 1) * factor)
            indices, boxes = nuclei.query_bounds(y0 * factor - factor, x0 * factor - factor,
                                                 (y0 + size + 1) * factor, (x0 + size + 1) * factor)
        # under 2 level pixels an outline is a dot: draw it at the box's centre, skip the vertices
        tiny = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) < 2 * factor
        selected = nuclei.selected[indices]
        codes = nuclei.codes[indices].astype(np.uint8)
        if not selected.any():  # the usual case: one pass, no masks over a million nuclei
            layers = [(None, 1)]
        else:
            codes[selected] = SELECTED
            layers = [(~selected, 1), (selected, 2)]  # the selection on top, thicker
        for chosen, width in layers:
            dots = tiny if chosen is None else chosen & tiny
            outlined = ~tiny if chosen is None else chosen & ~tiny
            centres = (boxes[dots, :2] + boxes[dots, 2:]) / 2 if not dots.all() else (boxes[:, :2] + boxes[:, 2:]) / 2
            draw_dots(tile, centres, (y0, x0), factor, codes if dots.all() else codes[dots], width)
            if outlined.any():
                draw_outlines(nuclei, indices[outlined], tile, (y0, x0), factor, codes[outlined], width)
        return tile


class OutlineLevel:
    """One level of an :class:`OutlineView`, an array-like that napari slices (``shape``, ``dtype``, ``[]``)."""

    dtype = np.dtype(np.uint8)
    ndim = 2

    def __init__(self, view: OutlineView, level: int):
        self.view = view
        self.level = level
        self.shape = view.level_shape(level)

    @property
    def size(self) -> int:
        return self.shape[0] * self.shape[1]

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        key = key + (slice(None),) * (2 - len(key))
        if len(key) != 2:
            raise IndexError(f"an outline level is 2-D; got index {key!r}")
        bounds, picks = [], []
        for axis, item in enumerate(key):
            if isinstance(item, slice):
                start, stop, step = item.indices(self.shape[axis])
                bounds.append((start, max(stop, start)))
                picks.append(slice(None, None, step) if step != 1 else slice(None))
            elif isinstance(item, (int, np.integer)):
                index = int(item) + (self.shape[axis] if item < 0 else 0)
                bounds.append((index, index + 1))
                picks.append(0)
            else:
                raise IndexError(f"an outline level takes integers and slices; got {item!r}")
        (y0, y1), (x0, x1) = bounds
        return self.view.region(self.level, y0, y1, x0, x1)[tuple(picks)]

    def __array__(self, dtype=None, copy=None):
        pixels = self[:, :]
        return pixels if dtype is None else pixels.astype(dtype)
