"""Exact conversions between label masks and polygons.

Masks become polygons traced **on pixel boundaries**: pixel ``(r, c)`` covers
the square ``[r - 0.5, r + 0.5] x [c - 0.5, c + 0.5]`` (pixel centres sit on
integer coordinates, as everywhere in :mod:`napari_nsclc.model`), so every
vertex has half-integer coordinates and :func:`rasterize_polygons` of the result
gives back exactly the same mask.

Foreground components are 8-connected, like ``pycocotools`` and
``skimage.measure.label(connectivity=2)``; background (holes) is therefore
4-connected. Where two foreground pixels touch only at a corner, the ring
passes through that corner twice ("pinch" vertex): the polygon is one object,
and filling it with the even-odd rule is still exact.

The tracing is vectorised: every corner of every boundary is found at once
with numpy, the corners are linked into rings with sorted searches, and the
rings are put in order with one depth-first traversal of the successor graph
(:func:`scipy.sparse.csgraph.depth_first_order`). No Python loop runs per
pixel or per vertex.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .model import ClassSchema, Polygon, PolygonSet

__all__ = [
    "coco_segmentation_to_mask",
    "coco_to_ring",
    "instance_segmentation",
    "labels_to_coco_annotations",
    "labels_to_instances",
    "mask_instances",
    "mask_to_polygons",
    "polygon_area",
    "polygon_run_lengths",
    "polygon_to_coco",
    "rasterize_polygons",
    "trace_labels",
    "valid_parts",
]

# Directions, as (d_row, d_col) steps between grid points.
_EAST, _SOUTH, _WEST, _NORTH = 0, 1, 2, 3
_STEP = np.array([[0, 1], [1, 0], [0, -1], [-1, 0]], dtype=np.int64)

# Every 2x2 configuration of "same label as the owner" bits (TL=1, TR=2, BL=4, BR=8)
# maps to the directed boundary edges through the grid point between those four
# pixels, walking with the owner's pixels on the RIGHT (rows grow downwards).
# Each entry lists (direction of travel when arriving, direction when leaving). The two
# saddles (6, 9) pass twice, hugging the two background quadrants so that the
# owner's diagonal pixels stay connected (8-connectivity).
_TURNS: dict[int, list[tuple[int, int]]] = {
    1: [(_SOUTH, _WEST)],  # TL only
    2: [(_WEST, _NORTH)],  # TR only
    4: [(_EAST, _SOUTH)],  # BL only
    8: [(_NORTH, _EAST)],  # BR only
    14: [(_EAST, _NORTH)],  # all but TL
    13: [(_SOUTH, _EAST)],  # all but TR
    11: [(_NORTH, _WEST)],  # all but BL
    7: [(_WEST, _SOUTH)],  # all but BR
    9: [(_SOUTH, _EAST), (_NORTH, _WEST)],  # TL + BR
    6: [(_EAST, _NORTH), (_WEST, _SOUTH)],  # TR + BL
}


def _turn_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    count = np.zeros(16, np.int64)
    incoming = np.full((16, 2), -1, np.int64)
    outgoing = np.full((16, 2), -1, np.int64)
    for config, turns in _TURNS.items():
        count[config] = len(turns)
        for k, (d_in, d_out) in enumerate(turns):
            incoming[config, k] = d_in
            outgoing[config, k] = d_out
    return count, incoming, outgoing


_TURN_COUNT, _TURN_IN, _TURN_OUT = _turn_tables()


class _Rings(NamedTuple):
    rings: list
    values: np.ndarray
    pixels: np.ndarray
    areas: np.ndarray
    first_vertex: np.ndarray  # (R, 2): top-most, then left-most vertex
    bounds: np.ndarray  # (R, 4): ymin, xmin, ymax, xmax


def trace_labels(labels: np.ndarray, ignore: Sequence[int] = (0,)):
    """Trace the boundary rings of every region of a label image.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Label image. Pixels with equal values that touch by an edge or a
        corner form one region.
    ignore : sequence of int
        Values that get no rings (the background).

    Returns
    -------
    rings : list of ndarray of float, shape (K, 2)
        Each ring's corner vertices in ``(y, x)`` pixel coordinates
        (half-integers), not closed, with the region on the right-hand side
        when walking with rows growing downwards: exteriors turn clockwise on
        screen, holes anticlockwise.
    ring_values : ndarray of int, shape (R,)
        The label value each ring belongs to.
    ring_pixels : ndarray of int, shape (R, 2)
        One ``(row, col)`` pixel of the region each ring bounds, to tell
        which connected component a ring belongs to.
    ring_areas : ndarray of float, shape (R,)
        Signed area of each ring in pixels² (:func:`polygon_area`): positive
        for exteriors, negative for holes.
    """
    traced = _trace(labels, ignore)
    return traced.rings, traced.values, traced.pixels, traced.areas


def _trace(labels: np.ndarray, ignore: Sequence[int]) -> _Rings:
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import depth_first_order

    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"expected a 2-D label image, got shape {labels.shape}")
    height, width = labels.shape
    empty = _Rings(
        [], np.zeros(0, np.int64), np.zeros((0, 2), np.int64), np.zeros(0), np.zeros((0, 2)), np.zeros((0, 4))
    )
    if labels.size == 0:
        return empty
    padded, sentinel = _padded_with_free_value(labels, ignore)

    # Grid point (i, j) sits between padded pixels TL=(i, j), TR=(i, j+1),
    # BL=(i+1, j), BR=(i+1, j+1), i.e. at pixel coordinate (i - 0.5, j - 0.5).
    tl, tr = padded[:-1, :-1], padded[:-1, 1:]
    bl, br = padded[1:, :-1], padded[1:, 1:]
    busy = tl != tr
    busy |= tl != bl
    busy |= tl != br
    rows, cols = np.divmod(np.flatnonzero(busy), busy.shape[1])
    if rows.size == 0:
        return empty
    flat = rows * padded.shape[1] + cols
    stride = padded.shape[1]
    quad = np.stack([padded.ravel()[flat + offset] for offset in (0, 1, stride, stride + 1)], axis=1)

    # One (point, owner) pair per distinct value among the four pixels; the
    # owner's configuration has bit m set where pixel m holds the owner's value.
    same = quad[:, :, None] == quad[:, None, :]  # (n, owner k, pixel m)
    packed = np.ascontiguousarray(same).view(np.uint32)[:, :, 0]  # the 4 bools as one little-endian word
    configs = (packed & 1) | (packed >> 7 & 2) | (packed >> 14 & 4) | (packed >> 21 & 8)  # (n, 4)
    keep = ~np.isin(quad, np.asarray([sentinel, *ignore]))
    keep[:, 1] &= ~same[:, 1, 0]
    keep[:, 2] &= ~(same[:, 2, 0] | same[:, 2, 1])
    keep[:, 3] &= ~(same[:, 3, 0] | same[:, 3, 1] | same[:, 3, 2])
    keep &= _TURN_COUNT[configs] > 0
    point_index, owner_pos = np.divmod(np.flatnonzero(keep), 4)
    config = configs[point_index, owner_pos]
    owner = quad[point_index, owner_pos].astype(np.int64)

    # Nodes: corners where the boundary turns; saddles give two nodes.
    n_turns = _TURN_COUNT[config]
    node_src = np.repeat(np.arange(len(config)), n_turns)
    turn_k = np.arange(len(node_src)) - np.repeat(np.cumsum(n_turns) - n_turns, n_turns)
    node_cfg = config[node_src]
    node_in = _TURN_IN[node_cfg, turn_k]
    node_out = _TURN_OUT[node_cfg, turn_k]
    node_owner = owner[node_src]
    node_i = rows[point_index[node_src]]
    node_j = cols[point_index[node_src]]
    n_nodes = len(node_src)
    if n_nodes == 0:
        return empty

    # Successor: the nearest node along the outgoing direction, on the same
    # grid line and with the same owner, that is entered in that direction.
    owner_rank = node_owner - node_owner.min()
    if owner_rank.max() >= 2**20:
        owner_rank = np.unique(node_owner, return_inverse=True)[1].astype(np.int64)
    line_len = np.int64(max(height, width) + 3)
    lines = np.int64(max(height, width) + 3)
    successor = np.empty(n_nodes, np.int64)
    for direction in range(4):
        horizontal = direction in (_EAST, _WEST)
        line = node_i if horizontal else node_j
        along = node_j if horizontal else node_i
        key = (owner_rank * lines + line) * line_len + along
        targets = np.flatnonzero(node_in == direction)
        order = targets[np.argsort(key[targets], kind="stable")]
        sorted_keys = key[order]
        sources = np.flatnonzero(node_out == direction)
        if direction in (_EAST, _SOUTH):
            pos = np.searchsorted(sorted_keys, key[sources], side="right")
        else:
            pos = np.searchsorted(sorted_keys, key[sources], side="left") - 1
        successor[sources] = order[pos]

    # Order each ring with one depth-first walk over the successor graph plus
    # a chain of helper nodes t_0 -> t_1 -> ..., where t_v also leads to node
    # v: the walk goes round each ring completely, in successor order, the
    # first time it meets one of its nodes. (Helpers are linked in a chain,
    # not all to one root, because the traversal rescans a node's neighbour
    # list each time it comes back to it.)
    # Node v (< n) links to successor[v]; helper n + v links to v and n + v + 1.
    indptr = np.concatenate([np.arange(n_nodes + 1), n_nodes + 2 * np.arange(1, n_nodes + 1)])
    indptr[-1] = 3 * n_nodes - 1
    indices = np.empty(3 * n_nodes - 1, np.int64)
    indices[:n_nodes] = successor
    indices[n_nodes::2] = np.arange(n_nodes)
    indices[n_nodes + 1 :: 2] = np.arange(n_nodes + 1, 2 * n_nodes)
    graph = csr_matrix((np.ones(len(indices), np.int8), indices, indptr), shape=(2 * n_nodes, 2 * n_nodes))
    walk = depth_first_order(graph, n_nodes, directed=True, return_predecessors=False)
    walk = walk[walk < n_nodes]
    starts = np.ones(len(walk), bool)
    starts[1:] = walk[1:] != successor[walk[:-1]]
    bounds = np.flatnonzero(starts)

    coords = np.stack([node_i[walk] - 0.5, node_j[walk] - 0.5], axis=1)
    rings = np.split(coords, bounds[1:])
    # Shoelace areas of all rings at once: each vertex times the next one in its ring.
    following = np.arange(1, len(walk) + 1)
    following[np.append(bounds[1:], len(walk)) - 1] = bounds
    y, x = coords[:, 0], coords[:, 1]
    ring_areas = 0.5 * np.add.reduceat(x * y[following] - x[following] * y, bounds)
    ring_of_vertex = np.repeat(np.arange(len(bounds)), np.diff(np.append(bounds, len(walk))))
    top = np.minimum.reduceat(y, bounds)
    left_on_top = np.minimum.reduceat(np.where(y == top[ring_of_vertex], x, np.inf), bounds)
    first_vertex = np.stack([top, left_on_top], axis=1)
    ring_bounds = np.stack(
        [top, np.minimum.reduceat(x, bounds), np.maximum.reduceat(y, bounds), np.maximum.reduceat(x, bounds)], axis=1
    )
    first_nodes = walk[bounds]
    ring_values = node_owner[first_nodes]
    # The pixel on the right of each ring's first outgoing edge belongs to its region.
    side = np.array([[0, 0], [0, -1], [-1, -1], [-1, 0]], dtype=np.int64)  # E, S, W, N
    ring_pixels = np.stack([node_i[first_nodes], node_j[first_nodes]], axis=1) + side[node_out[first_nodes]]
    return _Rings(rings, ring_values, ring_pixels, ring_areas, first_vertex, ring_bounds)


def _padded_with_free_value(labels: np.ndarray, ignore: Sequence[int] = ()) -> tuple[np.ndarray, int]:
    """``labels`` framed by one pixel of a value that gets no rings, and that value.

    An ignored value (the background) is the cheapest frame: the type stays as
    it is. Otherwise the frame needs a value no pixel holds.
    """
    if labels.dtype == bool:
        labels = labels.view(np.uint8)
    widen = {1: np.int16, 2: np.int32}
    if labels.dtype.kind in "iu":
        info = np.iinfo(labels.dtype)
        usable = [int(v) for v in ignore if info.min <= int(v) <= info.max]
        if usable:
            padded = np.full((labels.shape[0] + 2, labels.shape[1] + 2), usable[0], dtype=labels.dtype)
            padded[1:-1, 1:-1] = labels
            return padded, usable[0]
    if labels.dtype.kind in "iu" and labels.dtype.itemsize in widen:
        # A wider signed type has room for a value no pixel can hold.
        dtype = np.dtype(widen[labels.dtype.itemsize])
        sentinel = int(np.iinfo(labels.dtype).min) - 1
    else:
        labels = labels.astype(np.int64, copy=False)
        dtype = labels.dtype
        high, low = int(labels.max()), int(labels.min())
        if high < np.iinfo(np.int64).max:
            sentinel = high + 1
        elif low > np.iinfo(np.int64).min:
            sentinel = low - 1
        else:
            raise ValueError("a label image using every int64 value cannot be traced")
    padded = np.full((labels.shape[0] + 2, labels.shape[1] + 2), sentinel, dtype=dtype)
    padded[1:-1, 1:-1] = labels
    return padded, sentinel


def polygon_area(ring: np.ndarray) -> float:
    """Signed shoelace area of a ring of ``(y, x)`` vertices, in pixels².

    Positive for rings that turn clockwise on screen (rows growing
    downwards), which is how :func:`trace_labels` draws exteriors.
    """
    y, x = np.asarray(ring, dtype=float).T
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def _group_rings(labels, ignore) -> list[tuple[int, np.ndarray, list[np.ndarray]]]:
    """Rings grouped into regions: ``[(value, exterior, holes, pixel count, (ymin, xmin, ymax, xmax)), ...]``.

    Regions come in row-major order of their first pixel. Each hole goes to
    the smallest exterior of the same value that contains its region's
    pixel, so islands nested inside holes are told apart from their host.
    """
    import shapely

    traced = _trace(labels, ignore)
    rings, ring_values, ring_pixels, areas = traced.rings, traced.values, traced.pixels, traced.areas
    if not rings:
        return []
    is_exterior = areas > 0
    exterior_ids = np.flatnonzero(is_exterior)
    hole_ids = np.flatnonzero(~is_exterior)
    # Sort regions by their top-left vertex, which is the top-left corner of their first pixel.
    corner = traced.first_vertex[exterior_ids]
    exterior_ids = exterior_ids[np.lexsort((corner[:, 1], corner[:, 0]))]
    holes_of: dict[int, list[np.ndarray]] = {int(k): [] for k in exterior_ids}
    hole_area: dict[int, float] = {int(k): 0.0 for k in exterior_ids}
    if hole_ids.size:
        shell_coords = [rings[k][:, ::-1] for k in exterior_ids]
        shells = shapely.polygons(
            shapely.linearrings(
                np.concatenate(shell_coords),
                indices=np.repeat(np.arange(len(shell_coords)), [len(c) for c in shell_coords]),
            )
        )
        probes = shapely.STRtree(shapely.points(ring_pixels[hole_ids][:, ::-1].astype(float)))
        shell_pos, hole_pos = probes.query(shells, predicate="contains")
        hole_k, shell_k = hole_ids[hole_pos], exterior_ids[shell_pos]
        same_value = ring_values[hole_k] == ring_values[shell_k]
        hole_k, shell_k = hole_k[same_value], shell_k[same_value]
        # The innermost candidate (smallest area) is the region the hole belongs to.
        order = np.lexsort((areas[shell_k], hole_k))
        hole_k, shell_k = hole_k[order], shell_k[order]
        first = np.ones(len(hole_k), bool)
        first[1:] = hole_k[1:] != hole_k[:-1]
        for hole, shell in zip(hole_k[first].tolist(), shell_k[first].tolist(), strict=True):
            holes_of[shell].append(rings[hole])
            hole_area[shell] += areas[hole]
    return [
        (int(ring_values[k]), rings[k], holes_of[int(k)], round(areas[k] + hole_area[int(k)]), traced.bounds[k])
        for k in exterior_ids
    ]


def mask_to_polygons(mask: np.ndarray) -> list[Polygon]:
    """One polygon per 8-connected component of a binary mask, holes included.

    Parameters
    ----------
    mask : ndarray of bool, shape (H, W)
        Foreground pixels are True (any non-zero value counts).

    Returns
    -------
    list of Polygon
        In order of the components' first pixel (row-major scan). Vertices are
        ``(y, x)`` pixel coordinates on pixel boundaries (half-integers),
        rings not closed. ``rasterize_polygons(result, mask.shape)`` equals
        ``mask``.
    """
    binary = np.asarray(mask).astype(bool, copy=False).view(np.uint8)
    return [Polygon(exterior, holes) for _, exterior, holes, _, _ in _group_rings(binary, ignore=(0,))]


def labels_to_instances(labels: np.ndarray, schema: ClassSchema, name: str = "instances") -> PolygonSet:
    """Split a semantic label image into one polygon per connected region per class.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Values are class codes of ``schema``.
    schema : ClassSchema
        Gives each value's class name; ``schema.background`` gets no objects.
        A value the schema lacks is named ``"<value N>"`` rather than dropped.
    name : str
        Name of the returned set.

    Returns
    -------
    PolygonSet
        One polygon (with holes) per 8-connected region of equal value, in
        row-major order of each region's first pixel. ``attributes`` holds,
        per object, ``{"area": pixels, "bbox": [x, y, w, h]}`` in COCO's
        convention (integer pixel columns/rows of the covered box, ``w`` and
        ``h`` counting pixels), i.e. what ``pycocotools`` gives for its mask.
    """
    labels = np.asarray(labels)
    ignore = () if schema.background is None else (schema.background,)
    known = set(schema.codes)
    polygons, classes, attributes = [], [], []
    for value, exterior, holes, area, (y0, x0, y1, x1) in _group_rings(labels, ignore):
        polygons.append(Polygon(exterior, holes))
        classes.append(schema.name_of(value) if value in known else f"<value {value}>")
        attributes.append({"area": area, "bbox": [round(x0 + 0.5), round(y0 + 0.5), round(x1 - x0), round(y1 - y0)]})
    return PolygonSet(name, polygons, classes, schema, attributes)


def mask_instances(
    instances: np.ndarray, instance_classes: dict[int, str], schema: ClassSchema, name: str = "instances"
) -> PolygonSet:
    """Outlines of every object of an instance mask, holes included.

    Parameters
    ----------
    instances : ndarray of int, shape (H, W)
        Object ids; 0 is no object.
    instance_classes : dict of int to str
        Class name per object id. Values missing here are no object (VOC's
        255 "void" border) and are not traced.
    schema : ClassSchema
    name : str
        Name of the returned set.

    Returns
    -------
    PolygonSet
        One polygon per 8-connected part of each object, in order of object
        id. The parts of one object share ``attributes["object"]`` (its id),
        so writers keep it one object.
    """
    instances = np.asarray(instances)
    present = np.unique(instances)
    unnamed = [int(v) for v in present if v and int(v) not in instance_classes]
    if unnamed:  # values that are no object (VOC's 255 "void" border in SegmentationObject)
        instances = np.where(np.isin(instances, unnamed), 0, instances)
    polygons, classes, attributes = [], [], []
    for value, exterior, holes, _area, _bounds in _group_rings(instances, ignore=(0,)):
        polygons.append(Polygon(exterior, holes))
        classes.append(instance_classes[value])
        attributes.append({"object": value})
    order = sorted(range(len(polygons)), key=lambda i: attributes[i]["object"])
    return PolygonSet(name, [polygons[i] for i in order], [classes[i] for i in order], schema,
                      [attributes[i] for i in order])


def valid_parts(polygon: Polygon) -> list[Polygon]:
    """``polygon`` as valid polygons covering the same area (OGC rules, as GeoJSON readers expect).

    Outlines traced from masks pass twice through a corner where two pixels
    of a region touch only diagonally; such a ring touches itself, which
    OGC forbids. The region is then split at those corners into parts that
    meet only there. A valid polygon comes back as it is.
    """
    import shapely

    shape = polygon.to_shapely()
    if shape.is_valid:
        return [polygon]
    fixed = shapely.make_valid(shape, method="structure")
    parts = [g for g in getattr(fixed, "geoms", [fixed]) if g.geom_type == "Polygon" and not g.is_empty]
    return [Polygon(np.asarray(g.exterior.coords)[:-1, ::-1], [np.asarray(r.coords)[:-1, ::-1] for r in g.interiors],
                    kind=polygon.kind) for g in parts]


def ring_crossings(ring: np.ndarray):
    """Where each edge of a closed ring crosses the pixel-centre rows: (row, x)."""
    y0, x0 = ring[:, 0], ring[:, 1]
    y1, x1 = np.roll(y0, -1), np.roll(x0, -1)
    top, bottom = np.minimum(y0, y1), np.maximum(y0, y1)
    # Half-open in y: a row r is crossed when top <= r < bottom.
    first = np.ceil(top).astype(np.int64)
    stop = np.ceil(bottom).astype(np.int64)
    n_rows = np.maximum(stop - first, 0)
    edge = np.repeat(np.arange(len(ring)), n_rows)
    if edge.size == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    row = first[edge] + (np.arange(edge.size) - np.repeat(np.cumsum(n_rows) - n_rows, n_rows))
    t = (row - y0[edge]) / (y1[edge] - y0[edge])
    x = x0[edge] + t * (x1[edge] - x0[edge])
    return row, x


def _polygon_mask(polygon: Polygon, shape: tuple[int, int]) -> tuple[tuple[slice, slice], np.ndarray] | None:
    """Even-odd fill of pixel centres inside ``polygon``, cropped to its box."""
    rings = [np.asarray(polygon.exterior, dtype=float)[:, -2:], *[np.asarray(h, float)[:, -2:] for h in polygon.holes]]
    rings = [r for r in rings if len(r) >= 3]
    if not rings:
        return None
    points = np.concatenate(rings)
    r0 = max(int(np.ceil(points[:, 0].min())), 0)
    r1 = min(int(np.floor(points[:, 0].max())) + 1, shape[0])
    c0 = max(int(np.ceil(points[:, 1].min())), 0)
    c1 = min(int(np.floor(points[:, 1].max())) + 1, shape[1])
    if r1 <= r0 or c1 <= c0:
        return None
    crossings = [ring_crossings(ring) for ring in rings]
    row = np.concatenate([c[0] for c in crossings])
    x = np.concatenate([c[1] for c in crossings])
    keep = (row >= r0) & (row < r1)
    # A pixel centre c is inside when an odd number of crossings lie at x <= c.
    col = np.clip(np.ceil(x[keep]).astype(np.int64) - c0, 0, c1 - c0)
    width = c1 - c0 + 1
    flat = (row[keep] - r0) * width + col
    values, multiplicity = np.unique(flat, return_counts=True)
    toggles = np.zeros((r1 - r0) * width, bool)
    toggles[values[multiplicity % 2 == 1]] = True  # two crossings at one place cancel
    # Every row holds an even number of crossings (rings are closed), so one
    # running parity over the flattened rows restarts at 0 on each row.
    parity = np.cumsum(toggles, dtype=np.uint8) & 1
    inside = parity.view(bool).reshape(r1 - r0, width)[:, :-1]
    return (slice(r0, r1), slice(c0, c1)), inside


def rasterize_polygons(
    polygons: Sequence[Polygon],
    shape: tuple[int, int],
    values: Sequence[int] | int = 1,
    dtype=np.uint8,
) -> np.ndarray:
    """Fill polygons into a new label image; holes stay unfilled, later polygons on top.

    Parameters
    ----------
    polygons : sequence of Polygon
        2-D polygons in ``(y, x)`` pixel coordinates (for 3-D vertices the
        last two axes are used).
    shape : tuple of int
        ``(H, W)`` of the output, in pixels.
    values : int or sequence of int
        The value each polygon is filled with (one for all, or one each).
    dtype : numpy dtype
        Output dtype.

    Returns
    -------
    ndarray, shape (H, W)
        Zero where no polygon covers a pixel centre. A pixel belongs to a
        polygon when its centre is inside by the even-odd rule; a centre on
        a left or top edge counts as inside, on a right or bottom edge as
        outside, so polygons that share an edge never both claim a pixel.
    """
    out = np.zeros(tuple(int(s) for s in shape), dtype=dtype)
    polygons = list(polygons)
    if np.ndim(values) == 0:
        values = [values] * len(polygons)
    if len(values) != len(polygons):
        raise ValueError(f"got {len(values)} values for {len(polygons)} polygons")
    for polygon, value in zip(polygons, values, strict=True):
        filled = _polygon_mask(polygon, out.shape)
        if filled is not None:
            window, inside = filled
            out[window][inside] = value
    return out


# --------------------------------------------------------------------------- COCO segmentation


def polygon_to_coco(ring: np.ndarray) -> list[float]:
    """A ring as a flat COCO polygon ``[x0, y0, x1, y1, ...]``.

    COCO puts the origin at the top-left *corner* of pixel (0, 0); this
    package puts it at that pixel's centre, so COCO = model + 0.5. A
    pixel-boundary ring from :func:`mask_to_polygons` lands on integers and
    ``pycocotools`` rasterises it back to exactly the same pixels.
    """
    ring = np.asarray(ring, dtype=float)[:, -2:]
    return (ring[:, ::-1] + 0.5).ravel().tolist()


def coco_to_ring(flat: Sequence[float]) -> np.ndarray:
    """Inverse of :func:`polygon_to_coco`: ``(K, 2)`` ``(y, x)`` vertices in model pixel coordinates."""
    xy = np.asarray(flat, dtype=float).reshape(-1, 2)
    return xy[:, ::-1] - 0.5


def instance_segmentation(polygon: Polygon, shape: tuple[int, int]) -> list[list[float]] | dict:
    """COCO ``segmentation`` for one object that ``pycocotools`` decodes to exactly its pixels.

    A polygon without holes becomes ``[[x0, y0, ...]]``. COCO polygon lists
    cannot hold holes (``pycocotools`` unions the rings of one annotation),
    so an object with holes becomes compressed RLE
    (``{"size": [H, W], "counts": str}``) of its rasterised pixels.
    """
    if not polygon.holes:
        return [polygon_to_coco(polygon.exterior)]
    from . import rle

    return {"size": [int(shape[0]), int(shape[1])], "counts": rle.counts_to_string(polygon_run_lengths(polygon, shape))}


def polygon_run_lengths(polygon: Polygon, shape: tuple[int, int]) -> np.ndarray:
    """COCO column-major run lengths of a filled polygon (holes excluded), without rasterising it.

    Each column's pixel centres are cut by the polygon's edges; the runs
    start and stop at those cuts. The cost follows the number of cuts, not
    the polygon's area. For polygons whose edges never pass through a pixel
    centre (all pixel-boundary polygons) this is exactly
    ``rle.run_lengths(rasterize_polygons([polygon], shape))``.
    """
    height, width = (int(v) for v in shape)
    rings = [np.asarray(polygon.exterior, float)[:, -2:], *[np.asarray(h, float)[:, -2:] for h in polygon.holes]]
    columns, ys = [], []
    for ring in rings:
        if len(ring) >= 3:
            column, y = ring_crossings(ring[:, ::-1])  # scan columns: x plays the part of the row
            columns.append(column)
            ys.append(y)
    column = np.concatenate(columns) if columns else np.zeros(0, np.int64)
    y = np.concatenate(ys) if ys else np.zeros(0)
    keep = (column >= 0) & (column < width)
    # A pixel (r, c) is inside when an odd number of cuts of column c lie at y <= r.
    positions = column[keep] * height + np.clip(np.ceil(y[keep]).astype(np.int64), 0, height)
    values, multiplicity = np.unique(positions, return_counts=True)
    changes = values[(multiplicity % 2 == 1) & (values < height * width)]
    return np.diff(np.concatenate(([0], changes, [height * width]))).astype(np.int64)


def labels_to_coco_annotations(labels: np.ndarray, schema: ClassSchema) -> list[dict]:
    """COCO annotations (without ``id``/``image_id``) for every region of a label image.

    Each dict holds ``category_id`` (the class code), ``category_name``,
    ``segmentation`` (:func:`instance_segmentation`), ``area``, ``bbox``
    ``[x, y, w, h]`` and ``iscrowd`` 0. Decoding every annotation with
    ``pycocotools`` and painting it with its ``category_id`` gives back
    ``labels`` (background excluded).
    """
    labels = np.asarray(labels)
    instances = labels_to_instances(labels, schema)
    known = set(schema.codes)
    out = []
    for polygon, name, attributes in zip(instances.polygons, instances.classes, instances.attributes, strict=True):
        code = schema.code_of(name) if name in schema else int(str(name).removeprefix("<value ").rstrip(">"))
        out.append(
            {
                "category_id": code,
                "category_name": str(name) if code in known else f"<value {code}>",
                "segmentation": instance_segmentation(polygon, labels.shape[:2]),
                "area": attributes["area"],
                "bbox": [float(v) for v in attributes["bbox"]],
                "iscrowd": 0,
            }
        )
    return out


def coco_segmentation_to_mask(segmentation, shape: tuple[int, int]) -> np.ndarray:
    """Pixels of a COCO ``segmentation`` (polygon list, compressed or uncompressed RLE), uint8 (H, W).

    Polygons of one annotation are unioned, as ``pycocotools`` does.
    """
    from . import rle

    if isinstance(segmentation, dict):
        return rle.decode(segmentation)
    polygons = [Polygon(coco_to_ring(flat)) for flat in segmentation if len(flat) >= 6]
    out = np.zeros(tuple(shape), np.uint8)
    for polygon in polygons:
        out |= rasterize_polygons([polygon], shape)
    return out
