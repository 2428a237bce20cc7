"""Bulk writes into a label pyramid: polygons rasterised tile by tile, as one crash-safe change.

:func:`rasterize` fills thousands of polygons into a gigapixel pyramid without
ever holding a whole level: the level-0 plane is cut into square tiles (a
multiple of the chunk), a :class:`shapely.STRtree` finds the polygons that
meet each tile, only those are filled into it, and only the chunks whose
labels changed are written. Every chunk goes into one
:class:`~napari_nsclc.label_pyramid.journal.Transaction`, so a process killed
half-way leaves the pyramid as it was.

The overview levels are recomputed from the changed chunks only
(:mod:`~napari_nsclc.label_pyramid.tiling`): in memory from the tile while
its footprint is whole chunks, then from the chunks of the level above that
the change wrote (``tx.dirty`` and ``tx.read`` with the mode of 2x2 blocks).

Pixel convention (as :mod:`napari_nsclc.model` and
:func:`napari_nsclc.geometry.rasterize_polygons`): pixel ``(r, c)`` has its
centre at coordinate ``(r, c)`` and belongs to a polygon when its centre lies
inside by the even-odd rule (holes excluded); a centre on a left or top edge
is inside, on a right or bottom edge outside. No napari or Qt import.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ..geometry import ring_crossings
from ..model import NsclcFormatError, Polygon
from .pyramid import annotator_for, utc_now
from .tiling import (
    any_blocks,
    finish_levels,
    in_memory_levels,
    stored_chunks,
    tile_levels,
    write_tile,
)

__all__ = ["DEFAULT_TILE", "RasterizeResult", "rasterize"]

#: Side of the level-0 tiles rasterised at a time, in pixels (4 MiB of uint8 labels).
DEFAULT_TILE = 2048
#: Tiles filled ahead of the one being written (each about 6 MiB at the default tile).
_AHEAD = 2


@dataclass
class RasterizeResult:
    """What one :func:`rasterize` changed.

    Attributes
    ----------
    polygons : int
        Polygons (parts of multipolygons counted once with their polygon)
        whose bounding box meets the slide.
    pixels : int
        Level-0 pixels whose class changed.
    changed : dict of str to dict of str to int
        Per class name: ``{"added": n, "removed": m}`` level-0 pixels.
    tiles : int
        Tiles with at least one changed chunk.
    seconds : float
        Wall time, every level and the commit included.
    record : dict
        The line appended to the pyramid's edit log (empty when nothing changed).
    """

    polygons: int = 0
    pixels: int = 0
    changed: dict[str, dict[str, int]] = field(default_factory=dict)
    tiles: int = 0
    seconds: float = 0.0
    record: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- inputs


def _rings_of(item) -> list[Polygon]:
    """One input polygon as model polygons ``(y, x)`` with holes (several for a MultiPolygon)."""
    if isinstance(item, Polygon):
        return [Polygon(np.asarray(item.exterior, float)[:, -2:], [np.asarray(h, float)[:, -2:] for h in item.holes])]
    geom_type = getattr(item, "geom_type", None)
    if geom_type == "Polygon":
        if item.is_empty:
            return []
        flip = lambda ring: np.asarray(ring.coords, float)[:-1, 1::-1]
        return [Polygon(flip(item.exterior), [flip(ring) for ring in item.interiors])]
    if geom_type == "MultiPolygon":
        return [part for geom in item.geoms for part in _rings_of(geom)]
    if geom_type is not None:
        raise ValueError(f"a {geom_type} is not a polygon")
    ring = np.asarray(item, float)
    if ring.ndim != 2 or ring.shape[1] != 2:
        raise ValueError(f"vertices must be an (N, 2) array of (y, x), got shape {ring.shape}")
    return [Polygon(ring)]


def _code(pyramid, value) -> int:
    if isinstance(value, str):
        if value in pyramid.schema:
            return pyramid.schema.code_of(value)
        if value == "background":
            return 0
        raise ValueError(f"class {value!r} is not one of the pyramid's classes ({', '.join(pyramid.schema.names)})")
    code = int(value)
    if not 0 <= code <= np.iinfo(pyramid.dtype).max:
        raise ValueError(f"class code {code} does not fit {pyramid.dtype} labels")
    return code


def _parts(pyramid, polygons, classes) -> tuple[list[Polygon], np.ndarray, np.ndarray]:
    """Every polygon part ``(y, x)``, its class code and the index of the input polygon it came from."""
    polygons = list(polygons)
    if isinstance(classes, (str, int, np.integer)):
        classes = [classes] * len(polygons)
    classes = list(classes)
    if len(classes) != len(polygons):
        raise NsclcFormatError(pyramid.path, f"got {len(classes)} classes for {len(polygons)} polygons")
    parts, codes, owners = [], [], []
    for index, (item, value) in enumerate(zip(polygons, classes, strict=True)):
        try:
            code = _code(pyramid, value)
            rings = _rings_of(item)
        except (ValueError, TypeError) as error:
            raise NsclcFormatError(pyramid.path, f"polygon {index}: {error}; nothing was written") from error
        for part in rings:
            if not all(np.isfinite(ring).all() for ring in (part.exterior, *part.holes)):
                raise NsclcFormatError(pyramid.path, f"polygon {index} has non-finite vertices; nothing was written")
            if len(part.exterior) >= 3:
                parts.append(part)
                codes.append(code)
                owners.append(index)
    return parts, np.asarray(codes, pyramid.dtype), np.asarray(owners, np.int64)


def _tile_members(parts: list[Polygon], shape: tuple[int, int], tile: int) -> list[tuple[int, int, np.ndarray]]:
    """``[(y0, x0, part indices in input order), ...]`` of every tile whose pixels some part's box meets."""
    import shapely

    if not parts:
        return []
    bounds = np.array([[p.exterior[:, 1].min(), p.exterior[:, 0].min(), p.exterior[:, 1].max(), p.exterior[:, 0].max()]
                       for p in parts])  # fmt: skip
    tree = shapely.STRtree(shapely.box(*bounds.T))
    rows, columns = shape
    y0, x0 = np.meshgrid(np.arange(0, rows, tile), np.arange(0, columns, tile), indexing="ij")
    y0, x0 = y0.ravel(), x0.ravel()
    # the tile's pixel centres span [y0, y1 - 1]: a part whose box misses that span covers none of them
    boxes = shapely.box(x0, y0, np.minimum(x0 + tile, columns) - 1, np.minimum(y0 + tile, rows) - 1)
    tile_of, part_of = tree.query(boxes)
    order = np.lexsort((part_of, tile_of))
    tile_of, part_of = tile_of[order], part_of[order]
    starts = np.flatnonzero(np.r_[True, tile_of[1:] != tile_of[:-1]]) if tile_of.size else np.zeros(0, int)
    groups = np.split(part_of, starts[1:])
    return [(int(y0[t]), int(x0[t]), members) for t, members in zip(tile_of[starts], groups, strict=True)]


# --------------------------------------------------------------------------- filling one tile


def _spans(part: Polygon, y0: int, x0: int, shape: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """Rows and ``[start, stop)`` columns of the runs of pixel centres inside ``part``, within a tile.

    ``part`` is in level-0 ``(y, x)``; the tile starts at ``(y0, x0)`` and has
    ``shape``; the runs are tile-local. The rule is
    :func:`~napari_nsclc.geometry.rasterize_polygons`' (it uses the same
    edge crossings): a centre is inside when an odd number of crossings of
    its row lie at or left of it, so with a row's crossings sorted, the
    runs go from the 1st to the 2nd, the 3rd to the 4th ... each rounded up.
    """
    # crossings in level-0 coordinates, then shifted by whole pixels: the same floats as filling the whole
    # slide at once, so a centre exactly on an edge falls on the same side in every tile
    found = [ring_crossings(np.asarray(ring, float)) for ring in (part.exterior, *part.holes) if len(ring) >= 3]
    rows = np.concatenate([row for row, _ in found]) - y0
    columns = np.ceil(np.concatenate([x for _, x in found])).astype(np.int64) - x0
    keep = (rows >= 0) & (rows < shape[0])  # a row keeps all its crossings or none, so their count stays even
    rows, columns = rows[keep], columns[keep]
    order = np.lexsort((columns, rows))
    rows, columns = rows[order], columns[order]
    starts, stops = np.clip(columns[0::2], 0, shape[1]), np.clip(columns[1::2], 0, shape[1])
    runs = stops > starts
    return rows[0::2][runs], starts[runs], stops[runs]


def _paint(labels: np.ndarray, y0: int, x0: int, parts: Sequence[Polygon], codes: Sequence[int]) -> tuple | None:
    """Fill ``parts`` (level-0 ``(y, x)``) into ``labels``, the tile at ``(y0, x0)``, in place, later on top.

    Returns the window ``(slice of rows, slice of columns)`` of the tile that
    holds every filled pixel, or None when no pixel centre was inside a part.
    One slice assignment per run of a row: a 2,000-pixel polygon is about
    2,000 runs, far fewer operations than its pixels.
    """
    box = None
    for part, code in zip(parts, codes, strict=True):
        rows, starts, stops = _spans(part, y0, x0, labels.shape)
        if not rows.size:
            continue
        for row, start, stop in zip(rows.tolist(), starts.tolist(), stops.tolist(), strict=True):
            labels[row, start:stop] = code
        found = (int(rows[0]), int(starts.min()), int(rows[-1]) + 1, int(stops.max()))
        box = found if box is None else (min(box[0], found[0]), min(box[1], found[1]), max(box[2], found[2]),
                                         max(box[3], found[3]))  # fmt: skip
    return None if box is None else (slice(box[0], box[2]), slice(box[1], box[3]))


def _class_counts(old: np.ndarray, new: np.ndarray, changed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Changed pixels per code: ``(added, removed)``, each indexed by code (256 or 65536 of them)."""
    if new.dtype != np.uint8:
        return np.bincount(new[changed], minlength=65536), np.bincount(old[changed], minlength=65536)
    from PIL import Image  # a masked histogram: one pass in C, no gather

    mask = Image.fromarray(changed.view(np.uint8))
    added = np.asarray(Image.fromarray(new).histogram(mask), np.int64)
    if old.min() == old.max():  # the common case, filling over one class: no second histogram
        removed = np.zeros(256, np.int64)
        removed[old.flat[0]] = added.sum()
    else:
        removed = np.asarray(Image.fromarray(old).histogram(mask), np.int64)
    return added, removed


# --------------------------------------------------------------------------- rasterize


def rasterize(pyramid, polygons: Sequence, classes, *, annotator: str | None = None, tile: int | None = None,
              progress: Callable[[int, int], None] | None = None) -> RasterizeResult:  # fmt: skip
    """Fill polygons into a label pyramid, tile by tile, as one crash-safe change; later polygons on top.

    Parameters
    ----------
    pyramid : LabelPyramid
        Opened writable.
    polygons : sequence
        Each one of: an ``(N, 2)`` array of ``(y, x)`` vertices (rows first,
        like :class:`napari_nsclc.model.Polygon`); a
        :class:`napari_nsclc.model.Polygon` (``(y, x)``, with holes); a
        shapely ``Polygon`` or ``MultiPolygon`` in shapely's ``(x, y)`` order,
        with holes (what :meth:`Polygon.to_shapely` gives). All in level-0
        pixels, pixel centres at integers (the model's coordinates, not the
        corner-origin numbers of ASAP or GeoJSON files: their readers convert).
        Parts outside the slide are clipped.
    classes : str or int, or sequence of them
        Class name from ``pyramid.schema`` (or ``"background"``) or code,
        one per polygon or one for all.
    annotator : str, optional
        Who made the change; by default the workflow's annotator.
    tile : int, optional
        Side of the level-0 tiles filled at a time, a multiple of the chunk
        (default :data:`DEFAULT_TILE` rounded to the chunk). Memory grows
        with its square (about 8 bytes a pixel in flight).
    progress : callable, optional
        ``progress(tiles done, tiles to do)`` after each tile.

    Returns
    -------
    RasterizeResult

    Raises
    ------
    NsclcFormatError
        Naming the pyramid: a read-only pyramid, an unknown class, a polygon
        that is not one; nothing is written.
    """
    start = time.perf_counter()
    if not pyramid.writable:
        raise NsclcFormatError(pyramid.path, "was opened read-only")
    size = pyramid.chunk
    tile = int(tile or max(size, DEFAULT_TILE // size * size))
    if tile <= 0 or tile % size:
        raise NsclcFormatError(pyramid.path, f"a tile of {tile} px is not a multiple of the {size} px chunk")
    who = annotator_for(annotator, pyramid.path)
    parts, codes, owners = _parts(pyramid, polygons, classes)
    members = _tile_members(parts, pyramid.shape, tile)
    result = RasterizeResult(polygons=len(np.unique(owners[np.concatenate([m for *_, m in members])]))
                             if members else 0)  # fmt: skip
    with pyramid.locked(), pyramid.transaction() as tx:
        added, removed = _fill_tiles(tx, pyramid, parts, codes, members, tile, progress, result)
        result.pixels = int(np.sum(added))
        if not result.pixels:
            result.seconds = time.perf_counter() - start
            return result
        finish_levels(tx, pyramid, in_memory_levels(pyramid, tile) + 1)
        result.changed = _named(pyramid, added, removed)
        result.record = {"event": "rasterize", "annotator": who, "committed_at": utc_now(), "polygons": result.polygons,
                         "tiles": result.tiles, "pixels_changed": result.pixels, "changes": result.changed}  # fmt: skip
        result.record = tx.commit(result.record)  # the journal appends it to the edit log, once
    result.seconds = time.perf_counter() - start
    return result


def _fill_tile(pyramid, parts: list[Polygon], codes: np.ndarray, tile: int, stored: set | None,
               entry: tuple[int, int, np.ndarray]):  # fmt: skip
    """Fill one tile: ``(y0, x0, footprints from tile_levels, (added, removed) per code)``, or Nones if unchanged."""
    y0, x0, indices = entry
    y1, x1 = min(pyramid.shape[0], y0 + tile), min(pyramid.shape[1], x0 + tile)
    size, level0 = pyramid.chunk, pyramid.levels[0]
    cells = {(row, column) for row in range(y0 // size, -(-y1 // size)) for column in range(x0 // size, -(-x1 // size))}
    if stored is None or cells & stored:
        # the pyramid as committed: tiles do not overlap, so no tile reads what this change wrote
        old = pyramid.read_region(0, y0, x0, y1, x1)
    else:
        old = np.full((y1 - y0, x1 - x0), level0.fill_value, level0.dtype)
    new = old.copy()
    window = _paint(new, y0, x0, [parts[i] for i in indices], codes[indices])
    if window is None:
        return y0, x0, None, None
    changed = np.zeros(old.shape, bool)
    changed[window] = old[window] != new[window]  # nothing outside the filled window changed
    grid = any_blocks(changed, size)
    if not grid.any():
        return y0, x0, None, None
    levels = tile_levels(new, grid, in_memory_levels(pyramid, tile))
    return y0, x0, levels, _class_counts(old[window], new[window], changed[window])


def _fill_tiles(tx, pyramid, parts, codes, members, tile, progress, result) -> tuple[np.ndarray, np.ndarray]:
    """Fill and write every tile: a worker thread fills the next tiles while this one writes, in order, into ``tx``.

    The journal's writes hold the GIL; filling is mostly numpy, which
    releases it, so the two overlap on two cores.
    """
    added = removed = 0
    fill = functools.partial(_fill_tile, pyramid, parts, codes, tile, stored_chunks(pyramid))
    with ThreadPoolExecutor(1) as pool:
        pending = [pool.submit(fill, entry) for entry in members[:_AHEAD]]
        for done in range(1, len(members) + 1):
            y0, x0, levels, counts = pending.pop(0).result()
            if done + _AHEAD - 1 < len(members):
                pending.append(pool.submit(fill, members[done + _AHEAD - 1]))
            if levels is not None:
                write_tile(tx, pyramid, y0, x0, levels)
                added, removed = added + counts[0], removed + counts[1]
                result.tiles += 1
            if progress is not None:
                progress(done, len(members))
    return added, removed


def _named(pyramid, added: np.ndarray, removed: np.ndarray) -> dict[str, dict[str, int]]:
    """Per class name (codes the schema lacks as ``class N``), the level-0 pixels gained and lost."""
    out: dict[str, dict[str, int]] = {}
    for code in np.flatnonzero(added + removed).tolist():
        name = pyramid.schema.name_of(code) if code in pyramid.schema.codes else (
            "background" if code == 0 else f"class {code}")  # fmt: skip
        out[name] = {"added": int(added[code]), "removed": int(removed[code])}
    return out
