"""What a student changed in a case: pixels per class, objects added, removed, moved and reclassified.

Headless (numpy and scipy only): the save dock records :meth:`CaseChanges.as_provenance`
and :mod:`napari_nsclc.diff_layers` draws :attr:`CaseChanges.layers` as an overlay.

Matching rules
--------------
* Layers are matched by kind and name (masks with masks, point sets with point
  sets, ...). Two layers of one kind sharing a name are paired in order. A
  layer only in ``after`` counts all its objects (pixels) as added; a layer
  only in ``before``, as removed.
* **Masks** are compared at level 0 of a multiscale mask, pixel by pixel, by
  class *name*: a pixel whose class changed from A to B adds one pixel to B
  and removes one from A. The schema's background (and id 0 of instance masks)
  is no class; values outside the schema are named ``"<value N>"``. Masks of
  different shapes are a whole replacement: every class pixel of ``after`` is
  added and every class pixel of ``before`` removed.
* **Instance masks**: a pixel changes when its instance id changes or its id's
  class (``instance_classes``) changes, and it counts for the class of its id
  (ids missing from ``instance_classes`` are named through the schema, as in a
  semantic mask). So splitting one tumour nucleus in two counts the pixels
  that got the new id as added *and* removed under that class: the pixels
  changed object, not class.
* **Objects** (points, boxes, polygons): an object of ``after`` whose geometry
  equals one of ``before`` exactly (coordinates; bounds and plane; exterior and
  hole vertices) is the same object, reclassified if its class differs. Equal
  geometries are matched as a multiset, same class first. The objects left
  over are paired by centroid distance, at most :data:`MOVE_TOLERANCE_PX`,
  with an optimal assignment (:func:`scipy.optimize.linear_sum_assignment`)
  that pairs as many as possible and then minimises the total distance; a pair
  is *moved* (and also reclassified if the class differs). What is still left
  is removed (from ``before``) or added (to ``after``). Each polygon of a
  :class:`PolygonSet` is one object here, also when parts share an
  ``attributes["object"]``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from ..model import BoxSet, Case, LabelMask, PointSet, PolygonSet

__all__ = [
    "MOVE_TOLERANCE_PX",
    "CaseChanges",
    "LayerChanges",
    "reader_changes",
    "case_changes",
    "object_centroids",
]

#: Furthest an object's centroid may move, in pixels of the image grid, and still be the same object.
#: 20 px is one nucleus diameter at 20x (0.5 µm/px, ~10 µm) and half of one at 40x: a student nudging
#: a cell marker onto its nucleus moves it by less, while a marker put 20 px away is on another cell.
MOVE_TOLERANCE_PX = 20.0

#: Leftover objects are assigned optimally in groups of candidate pairs; a group whose cost matrix
#: would exceed this many cells (1000 x 1000, ~8 MB and well under a second) is paired greedily,
#: nearest first, instead (a whole dense slide shifted by a pixel).
_DENSE_ASSIGNMENT_CELLS = 1_000_000

LayerKind = Literal["mask", "points", "boxes", "polygons"]
ObjectSet = PointSet | BoxSet | PolygonSet


def _no_indices() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)


# --------------------------------------------------------------------------- results


@dataclass
class LayerChanges:
    """The changes of one layer, with what an overlay needs to draw them.

    Parameters
    ----------
    name : str
        The layer's name (in ``after``, or in ``before`` for a removed layer).
    kind : {"mask", "points", "boxes", "polygons"}
    before_position, after_position : int or None
        Position of the layer in ``before``'s (``after``'s) list of its kind;
        ``None`` when the layer is not in that case.
    pixels : dict of str to dict of str to int
        Masks only: ``{class name: {"added": n, "removed": m}}``, in pixels.
    added_pixels, removed_pixels : ndarray of bool or None
        Masks only, in the overlay grid (:attr:`shape`): pixels that became a
        class, and pixels that stopped being one. A pixel changed from one
        class to another is in both.
    added : ndarray of int, shape (A,)
        Objects only: indices into ``after``'s set of the objects added.
    moved : ndarray of int, shape (M,)
        Indices into ``after``'s set of the objects moved (reshaped, resized).
    moved_from : ndarray of int, shape (M,)
        Indices into ``before``'s set of where each ``moved`` object came from.
    reclassified : ndarray of int, shape (R,)
        Indices into ``after``'s set of the objects whose class changed (moved or not).
    removed : ndarray of int, shape (D,)
        Indices into ``before``'s set of the objects removed.
    removed_objects : PointSet, BoxSet or PolygonSet, or None
        The removed objects of ``before`` (geometry, classes, attributes), in
        the order of ``removed``.
    """

    name: str
    kind: LayerKind
    before_position: int | None = None
    after_position: int | None = None
    pixels: dict[str, dict[str, int]] = field(default_factory=dict)
    added_pixels: np.ndarray | None = None
    removed_pixels: np.ndarray | None = None
    added: np.ndarray = field(default_factory=_no_indices)
    moved: np.ndarray = field(default_factory=_no_indices)
    moved_from: np.ndarray = field(default_factory=_no_indices)
    reclassified: np.ndarray = field(default_factory=_no_indices)
    removed: np.ndarray = field(default_factory=_no_indices)
    removed_objects: ObjectSet | None = None

    @property
    def empty(self) -> bool:
        """Whether nothing changed in this layer."""
        if self.kind == "mask":
            return not self.pixels
        return not (len(self.added) or len(self.moved) or len(self.reclassified) or len(self.removed))

    @property
    def shape(self) -> tuple[int, ...] | None:
        """The overlay grid of a mask, in pixels; ``None`` for object sets."""
        return None if self.added_pixels is None else tuple(self.added_pixels.shape)

    def pixel_codes(self) -> np.ndarray:
        """The mask changes as one label image, shape :attr:`shape`, dtype uint8.

        0 unchanged, 1 added (became a class), 2 removed (became background),
        3 changed from one class to another.
        """
        if self.added_pixels is None or self.removed_pixels is None:
            raise ValueError(f"layer {self.name!r} is not a mask")
        return self.added_pixels.astype(np.uint8) + 2 * self.removed_pixels.astype(np.uint8)


@dataclass
class CaseChanges:
    """What changed between two versions of a case.

    Parameters
    ----------
    pixels : dict of str to dict of str to int
        ``{class name: {"added": n, "removed": m}}``, in pixels, summed over
        all masks; classes without changes are absent.
    objects_added, objects_removed, objects_moved, objects_reclassified : int
        Objects over all point, box and polygon sets. An object moved and
        reclassified counts in both.
    layers : list of LayerChanges
        One entry per layer that changed, masks first, then points, boxes, polygons.
    """

    pixels: dict[str, dict[str, int]] = field(default_factory=dict)
    objects_added: int = 0
    objects_removed: int = 0
    objects_moved: int = 0
    objects_reclassified: int = 0
    layers: list[LayerChanges] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Whether nothing changed."""
        return not self.pixels and not (
            self.objects_added or self.objects_removed or self.objects_moved or self.objects_reclassified
        )

    def as_provenance(self) -> dict[str, Any]:
        """The counts as plain JSON-able values, for a correction's provenance record."""
        return {
            "pixels_changed": {name: {"added": int(c["added"]), "removed": int(c["removed"])}
                               for name, c in self.pixels.items()},
            "objects_added": int(self.objects_added),
            "objects_removed": int(self.objects_removed),
            "objects_moved": int(self.objects_moved),
            "objects_reclassified": int(self.objects_reclassified),
        }

    def summary(self) -> str:
        """One line, e.g. ``"+1,204 / −88 px tumour bed; +3 / −1 objects, 2 reclassified, 1 moved"``."""
        parts = [f"+{c['added']:,} / \u2212{c['removed']:,} px {name}" for name, c in self.pixels.items()]
        objects = [f"+{self.objects_added:,} / \u2212{self.objects_removed:,} objects"] if (
            self.objects_added or self.objects_removed) else []  # fmt: skip
        if self.objects_reclassified:
            objects.append(f"{self.objects_reclassified:,} reclassified")
        if self.objects_moved:
            objects.append(f"{self.objects_moved:,} moved")
        if objects:
            parts.append(", ".join(objects))
        return "; ".join(parts) or "no change"


# --------------------------------------------------------------------------- the case


def case_changes(before: Case, after: Case) -> CaseChanges:
    """Compare the case a student loaded with the case they saved.

    Parameters
    ----------
    before, after : Case
        The loaded and the saved version, on the same image grid.

    Returns
    -------
    CaseChanges
        See the module docstring for the matching rules.
    """
    changes = CaseChanges()
    b_kept, a_kept = _counted_masks(before.masks), _counted_masks(after.masks)
    for b, a, b_pos, a_pos in _pair_layers([before.masks[i] for i in b_kept], [after.masks[i] for i in a_kept]):
        _record(changes, _mask_changes(b, a, None if b_pos is None else b_kept[b_pos],
                                       None if a_pos is None else a_kept[a_pos]))  # fmt: skip
    for kind, before_sets, after_sets in (
        ("points", before.points, after.points),
        ("boxes", before.boxes, after.boxes),
        ("polygons", before.polygons, after.polygons),
    ):
        for b, a, b_pos, a_pos in _pair_layers(before_sets, after_sets):
            _record(changes, _object_changes(kind, b, a, b_pos, a_pos))
    return changes


def _counted_masks(masks: Sequence[LabelMask]) -> list[int]:
    """Positions of the masks whose pixels count: each pixel once.

    NuCLS shows its nuclei as an instance mask and a class mask of the same
    pixels; the class mask is counted and the instance mask is not.
    """
    repeated = {m.attributes.get("duplicate_of") for m in masks if m.kind == "semantic"} - {None}
    return [i for i, m in enumerate(masks) if not (m.kind == "instance" and m.attributes.get("duplicate_of") in repeated)]


_KINDS = ("masks", "points", "boxes", "polygons")


def reader_changes(case: Case, reference: str, other: str) -> tuple[CaseChanges, Case]:
    """Where one reader's layer of a case differs from another's (CoCaHis GT2 against GT1, IGNITE P1 against R1).

    Parameters
    ----------
    case : Case
        One case holding both readers' layers.
    reference, other : str
        The names of two layers of one kind (two masks, two point sets ...).

    Returns
    -------
    changes : CaseChanges
        As if ``other`` were a correction of ``reference``: "added" is what
        only ``other`` has, "removed" what only ``reference`` has.
    placed : Case
        The case with ``other`` alone, named as ``reference``: it places the
        overlay (:func:`~napari_nsclc.diff_layers.diff_layer_data`).

    Raises
    ------
    KeyError
        When the case has no layer of that name.
    ValueError
        When the two layers are not of one kind.
    """
    found = {obj.name: (kind, obj) for kind in _KINDS for obj in getattr(case, kind)}
    for name in (reference, other):
        if name not in found:
            raise KeyError(f"{case.name}: no layer {name!r} (layers: {', '.join(found)})")
    (kind, first), (other_kind, second) = found[reference], found[other]
    if kind != other_kind:
        raise ValueError(f"{reference!r} holds {kind} and {other!r} holds {other_kind}: only layers of one kind compare")
    empty = {name: [] for name in _KINDS}
    before = replace(case, **{**empty, kind: [first]})
    placed = replace(case, **{**empty, kind: [replace(second, name=first.name)]})
    return case_changes(before, placed), placed


def _pair_layers(before: Sequence, after: Sequence) -> list[tuple[Any, Any, int | None, int | None]]:
    """``(before, after, before_position, after_position)`` per layer name, ``None`` for a missing side.

    Keyed by (name, occurrence) so that two layers sharing a name pair in order.
    """

    def keyed(layers):
        seen: dict[str, int] = {}
        out = {}
        for position, layer in enumerate(layers):
            occurrence = seen[layer.name] = seen.get(layer.name, -1) + 1
            out[(layer.name, occurrence)] = position
        return out

    b_keys, a_keys = keyed(before), keyed(after)
    pairs = []
    for key, a_pos in a_keys.items():
        b_pos = b_keys.get(key)
        pairs.append((None if b_pos is None else before[b_pos], after[a_pos], b_pos, a_pos))
    for key, b_pos in b_keys.items():
        if key not in a_keys:
            pairs.append((before[b_pos], None, b_pos, None))
    return pairs


def _record(changes: CaseChanges, layer: LayerChanges) -> None:
    if layer.empty:
        return
    changes.layers.append(layer)
    for name, counts in layer.pixels.items():
        total = changes.pixels.setdefault(name, {"added": 0, "removed": 0})
        total["added"] += counts["added"]
        total["removed"] += counts["removed"]
    changes.objects_added += len(layer.added)
    changes.objects_removed += len(layer.removed)
    changes.objects_moved += len(layer.moved)
    changes.objects_reclassified += len(layer.reclassified)


# --------------------------------------------------------------------------- masks


def _level0(mask: LabelMask) -> np.ndarray:
    return np.asarray(mask.data[0] if mask.multiscale else mask.data)


def _class_namer(mask: LabelMask) -> Callable[[int], str | None]:
    """The class name of a mask value, ``None`` for background."""
    codes = {c.code: c.name for c in mask.schema.classes}
    background = {mask.schema.background}
    if mask.kind == "instance":
        background.add(0)  # layers.py draws instance id 0 transparent whatever the schema says

    def name(value: int) -> str | None:
        if value in background:
            return None
        if mask.kind == "instance" and value in mask.instance_classes:
            return str(mask.instance_classes[value])
        return codes.get(value, f"<value {value}>")

    return name


def _mask_changes(before: LabelMask | None, after: LabelMask | None, b_pos, a_pos) -> LayerChanges:
    name = (after if after is not None else before).name
    b_data = None if before is None else _level0(before)
    a_data = None if after is None else _level0(after)
    if b_data is not None and a_data is not None and b_data.shape == a_data.shape:
        instance = "instance" in (before.kind, after.kind)
        pixels, added, removed = _pixel_changes(b_data, _class_namer(before), a_data, _class_namer(after),
                                                _relabelled_values(before, after), instance)
    else:
        pixels, added, removed = _replacement(before, b_data, after, a_data)
    schemas = [m.schema for m in (after, before) if m is not None]
    return LayerChanges(name, "mask", b_pos, a_pos, pixels=_in_schema_order(pixels, schemas),
                        added_pixels=added, removed_pixels=removed)


def _relabelled_values(before: LabelMask, after: LabelMask) -> list[int]:
    """Values whose class name differs between the two masks: their pixels changed even where the value did not."""
    b_name, a_name = _class_namer(before), _class_namer(after)
    values = {*before.schema.codes, *after.schema.codes, *before.instance_classes, *after.instance_classes}
    return sorted(v for v in values if b_name(v) != a_name(v))


def _pixel_changes(b_data, b_name, a_data, a_name, relabelled, instance):
    """Counts and masks of two label images of one shape.

    Only candidate pixels (value or its class changed) are named, and by
    distinct (before, after) value pair, not per pixel: a slide mask has
    ~10^8 pixels and a few dozen pairs.
    """
    candidates = b_data != a_data
    if relabelled:
        candidates |= np.isin(a_data, relabelled)
    b_vals, a_vals = b_data[candidates], a_data[candidates]
    b_unique, b_inv = np.unique(b_vals, return_inverse=True)
    a_unique, a_inv = np.unique(a_vals, return_inverse=True)
    pairs, pair_inv, pair_counts = np.unique(b_inv * len(a_unique) + a_inv, return_inverse=True, return_counts=True)
    pixels: dict[str, dict[str, int]] = {}
    pair_added = np.zeros(len(pairs), bool)
    pair_removed = np.zeros(len(pairs), bool)
    for k, (pair, count) in enumerate(zip(pairs.tolist(), pair_counts.tolist(), strict=True)):
        b_value, a_value = b_unique[pair // len(a_unique)].item(), a_unique[pair % len(a_unique)].item()
        old, new = b_name(b_value), a_name(a_value)
        # a semantic pixel is its class: two codes of one name (schemas that differ) are no change;
        # an instance pixel is its object, so a new id of the same class is a change
        if old == new and not (instance and b_value != a_value):
            continue
        if new is not None:
            pixels.setdefault(new, {"added": 0, "removed": 0})["added"] += count
            pair_added[k] = True
        if old is not None:
            pixels.setdefault(old, {"added": 0, "removed": 0})["removed"] += count
            pair_removed[k] = True
    added = np.zeros(b_data.shape, bool)
    removed = np.zeros(b_data.shape, bool)
    added[candidates] = pair_added[pair_inv.ravel()]
    removed[candidates] = pair_removed[pair_inv.ravel()]
    return pixels, added, removed


def _class_pixels(data: np.ndarray, name: Callable[[int], str | None]) -> tuple[dict[str, int], np.ndarray]:
    """Pixels per class name of one label image, and the mask of pixels that have a class."""
    values, inverse, counts = np.unique(data, return_inverse=True, return_counts=True)
    names = [name(v) for v in values.tolist()]
    out: dict[str, int] = {}
    for class_name, count in zip(names, counts.tolist(), strict=True):
        if class_name is not None:
            out[class_name] = out.get(class_name, 0) + count
    classed = np.array([n is not None for n in names], bool)[inverse.reshape(data.shape)]
    return out, classed


def _replacement(before, b_data, after, a_data):
    """A mask added, removed, or replaced by one of another shape: all of after's pixels added, before's removed.

    The overlay grid covers both masks (they share the image's pixel grid, so
    pixel (r, c) is the same place in each); a mask of another dimensionality
    than ``after``'s is counted but not drawn.
    """
    pixels: dict[str, dict[str, int]] = {}
    grids = [d for d in (a_data, b_data) if d is not None and (a_data is None or d.ndim == a_data.ndim)]
    shape = tuple(int(s) for s in np.max([d.shape for d in grids], axis=0))
    added, removed = np.zeros(shape, bool), np.zeros(shape, bool)
    for mask, data, side, overlay in ((after, a_data, "added", added), (before, b_data, "removed", removed)):
        if data is None:
            continue
        counts, classed = _class_pixels(data, _class_namer(mask))
        for class_name, count in counts.items():
            pixels.setdefault(class_name, {"added": 0, "removed": 0})[side] += count
        if data.ndim == len(shape):
            overlay[tuple(slice(0, s) for s in data.shape)] = classed
    return pixels, added, removed


def _in_schema_order(pixels: dict[str, dict[str, int]], schemas) -> dict[str, dict[str, int]]:
    """Classes in the order of the schemas (after's first), then others by name: a stable summary line."""
    order: dict[str, int] = {}
    for schema in schemas:
        for class_name in schema.names:
            order.setdefault(class_name, len(order))
    return dict(sorted(pixels.items(), key=lambda item: (order.get(item[0], len(order)), item[0])))


# --------------------------------------------------------------------------- objects


def _object_changes(kind: LayerKind, before: ObjectSet | None, after: ObjectSet | None, b_pos, a_pos) -> LayerChanges:
    name = (after if after is not None else before).name
    if after is None:
        removed = np.arange(len(before))
        return LayerChanges(name, kind, b_pos, a_pos, removed=removed, removed_objects=_subset(before, removed))
    if before is None:
        return LayerChanges(name, kind, b_pos, a_pos, added=np.arange(len(after)))
    b_classes = [str(c) for c in before.classes]
    a_classes = [str(c) for c in after.classes]
    exact, b_left, a_left = _exact_pairs(_geometry_keys(before), b_classes, _geometry_keys(after), a_classes)
    moves = _nearest_pairs(object_centroids(before, b_left), object_centroids(after, a_left), MOVE_TOLERANCE_PX)
    moved_from = b_left[moves[:, 0]]
    moved = a_left[moves[:, 1]]
    paired = np.concatenate([exact, np.stack([moved_from, moved], axis=1)])
    reclassified = np.sort([i for j, i in paired.tolist() if b_classes[j] != a_classes[i]]).astype(np.int64)
    removed = np.setdiff1d(b_left, moved_from)
    order = np.argsort(moved, kind="stable")
    return LayerChanges(
        name,
        kind,
        b_pos,
        a_pos,
        added=np.setdiff1d(a_left, moved),
        moved=moved[order],
        moved_from=moved_from[order],
        reclassified=reclassified,
        removed=removed,
        removed_objects=_subset(before, removed),
    )


def _geometry_keys(objects: ObjectSet) -> list[Hashable]:
    """One hashable key per object; equal keys mean equal geometry, bit for bit.

    ``+ 0.0`` turns -0.0 into 0.0, which compare equal but differ in bytes.
    """
    if isinstance(objects, PolygonSet):
        return [
            (p.exterior.shape, (p.exterior + 0.0).tobytes(), tuple((h.shape, (h + 0.0).tobytes()) for h in p.holes))
            for p in objects.polygons
        ]
    if isinstance(objects, BoxSet):
        # a box with a plane has a 5-value key, so it never equals a box without one
        rows = objects.bounds if objects.planes is None else np.column_stack([objects.planes, objects.bounds])
    else:
        rows = objects.coords
    rows = np.ascontiguousarray(np.asarray(rows, dtype=float) + 0.0)
    # viewing each row as one opaque value hashes N rows without N numpy calls
    return rows.view(np.dtype((np.void, rows.dtype.itemsize * max(rows.shape[1], 1)))).ravel().tolist()


def _exact_pairs(b_keys, b_classes, a_keys, a_classes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pair objects of equal geometry as multisets, same class first.

    Returns
    -------
    pairs : ndarray of int, shape (P, 2)
        ``(before index, after index)``.
    before_left, after_left : ndarray of int
        Indices of the objects not paired, ascending.
    """
    pool: dict[Hashable, dict[str, deque[int]]] = {}
    for j, (key, cls) in enumerate(zip(b_keys, b_classes, strict=True)):
        pool.setdefault(key, {}).setdefault(cls, deque()).append(j)
    pairs: list[tuple[int, int]] = []
    other_class: list[int] = []
    for i, (key, cls) in enumerate(zip(a_keys, a_classes, strict=True)):
        same = pool.get(key, {}).get(cls)
        if same:
            pairs.append((same.popleft(), i))
        else:
            other_class.append(i)
    # only once every same-class duplicate has its partner may a duplicate of another class be taken
    a_left = []
    for i in other_class:
        candidates = next((q for q in pool.get(a_keys[i], {}).values() if q), None)
        if candidates:
            pairs.append((candidates.popleft(), i))
        else:
            a_left.append(i)
    b_left = sorted(j for classes in pool.values() for q in classes.values() for j in q)
    return (np.array(pairs, dtype=np.int64).reshape(-1, 2), np.array(b_left, dtype=np.int64),
            np.array(a_left, dtype=np.int64))


def _subset(objects: ObjectSet, indices: np.ndarray) -> ObjectSet:
    """The objects at ``indices``, as a set of the same type and name."""
    indices = [int(i) for i in indices]
    classes = [objects.classes[i] for i in indices]
    attributes = [objects.attributes[i] for i in indices]
    if isinstance(objects, PointSet):
        coords = objects.coords[indices].reshape(len(indices), objects.coords.shape[1])
        return PointSet(objects.name, coords, classes, objects.schema, attributes)
    if isinstance(objects, BoxSet):
        planes = None if objects.planes is None else objects.planes[indices]
        return BoxSet(objects.name, objects.bounds[indices], classes, objects.schema, attributes, planes=planes)
    return PolygonSet(objects.name, [objects.polygons[i] for i in indices], classes, objects.schema, attributes)


# --------------------------------------------------------------------------- centroids and moves


def object_centroids(objects: ObjectSet, indices: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """Centroids of objects in pixels of the image grid.

    Parameters
    ----------
    objects : PointSet, BoxSet or PolygonSet
    indices : sequence of int, optional
        The objects wanted; all when ``None``.

    Returns
    -------
    ndarray of float, shape (N, D)
        Points: their coordinates. Boxes: ``(y, x)`` of the centre, or
        ``(plane, y, x)`` when the set has planes. Polygons: the area centroid
        of the exterior ring in its last two axes (the vertex mean for a
        degenerate ring), other axes averaged. ``D`` is that of the first
        polygon; an empty ring gives NaN.
    """
    if indices is None:
        indices = np.arange(len(objects))
    indices = np.asarray(indices, dtype=np.int64)
    if isinstance(objects, PointSet):
        return objects.coords[indices].reshape(len(indices), objects.coords.shape[1])
    if isinstance(objects, BoxSet):
        b = objects.bounds[indices]
        centres = np.column_stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2])
        return centres if objects.planes is None else np.column_stack([objects.planes[indices], centres])
    ndim = objects.polygons[0].exterior.shape[-1] if len(objects) else 2
    out = np.full((len(indices), ndim), np.nan)
    for row, i in enumerate(indices.tolist()):
        centre = _ring_centroid(objects.polygons[i].exterior)
        if len(centre) == ndim:
            out[row] = centre
    return out


def _ring_centroid(ring: np.ndarray) -> np.ndarray:
    """Area centroid of a closed ring by the shoelace formula; it does not shift when vertices are added on an edge."""
    if ring.ndim != 2 or len(ring) == 0:
        return np.full(ring.shape[-1] if ring.ndim == 2 else 2, np.nan)
    y, x = ring[:, -2], ring[:, -1]
    y2, x2 = np.roll(y, -1), np.roll(x, -1)
    cross = x * y2 - x2 * y
    area = cross.sum() / 2
    if abs(area) < 1e-12:
        yx = ring[:, -2:].mean(axis=0)
    else:
        yx = np.array([((y + y2) * cross).sum(), ((x + x2) * cross).sum()]) / (6 * area)
    return np.concatenate([ring[:, :-2].mean(axis=0), yx])


def _nearest_pairs(before_xy: np.ndarray, after_xy: np.ndarray, tolerance: float) -> np.ndarray:
    """Pair points of two sets within ``tolerance``: as many pairs as possible, then the least total distance.

    Parameters
    ----------
    before_xy : ndarray of float, shape (M, D)
    after_xy : ndarray of float, shape (N, D)
    tolerance : float
        Largest distance of a pair, in pixels.

    Returns
    -------
    ndarray of int, shape (P, 2)
        ``(row of before_xy, row of after_xy)``.

    Notes
    -----
    A k-d tree finds the candidate pairs and the pairs split into groups that
    share no object, so a slide of 20,000 cells with a dozen edits is a dozen
    tiny assignment problems, not one 20,000 x 20,000 matrix.
    """
    # imported here, not at the top: scipy's sparse, graph and spatial modules take a second to import,
    # which napari would pay on the first file opened with this plugin
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    none = np.zeros((0, 2), dtype=np.int64)
    if not len(before_xy) or not len(after_xy) or before_xy.shape[1] != after_xy.shape[1]:
        return none
    b_ok = np.flatnonzero(np.isfinite(before_xy).all(axis=1))
    a_ok = np.flatnonzero(np.isfinite(after_xy).all(axis=1))
    if not len(b_ok) or not len(a_ok):
        return none
    edges = cKDTree(before_xy[b_ok]).sparse_distance_matrix(cKDTree(after_xy[a_ok]), tolerance, output_type="ndarray")
    if not len(edges):
        return none
    rows, cols, dists = b_ok[edges["i"]], a_ok[edges["j"]], edges["v"]
    m = len(before_xy)
    graph = coo_matrix((np.ones(len(rows)), (rows, m + cols)), shape=(m + len(after_xy),) * 2)
    _, component = connected_components(graph, directed=False)
    edge_group = component[rows]
    pairs = []
    order = np.argsort(edge_group, kind="stable")
    bounds = np.flatnonzero(np.diff(edge_group[order])) + 1
    for group in np.split(order, bounds):
        pairs.append(_assign_group(rows[group], cols[group], dists[group], tolerance))
    return np.concatenate(pairs) if pairs else none


def _assign_group(rows: np.ndarray, cols: np.ndarray, dists: np.ndarray, tolerance: float) -> np.ndarray:
    """Pairs of one connected group of candidate edges (global indices)."""
    b_ids, r = np.unique(rows, return_inverse=True)
    a_ids, c = np.unique(cols, return_inverse=True)
    if len(b_ids) * len(a_ids) > _DENSE_ASSIGNMENT_CELLS:
        return _greedy_pairs(rows, cols, dists)
    # a non-candidate costs more than any set of real pairs, so the assignment first pairs as many as it can
    missing = tolerance * (min(len(b_ids), len(a_ids)) + 1) + 1.0
    cost = np.full((len(b_ids), len(a_ids)), missing)
    cost[r, c] = dists
    from scipy.optimize import linear_sum_assignment  # imported here: it alone takes a second or more to import

    chosen_r, chosen_c = linear_sum_assignment(cost)
    real = cost[chosen_r, chosen_c] < missing
    return np.column_stack([b_ids[chosen_r[real]], a_ids[chosen_c[real]]])


def _greedy_pairs(rows: np.ndarray, cols: np.ndarray, dists: np.ndarray) -> np.ndarray:
    """Nearest pairs first, each object used once: the fallback for groups too large to assign optimally."""
    used_b: set[int] = set()
    used_a: set[int] = set()
    pairs = []
    for k in np.lexsort((cols, rows, dists)).tolist():
        j, i = int(rows[k]), int(cols[k])
        if j not in used_b and i not in used_a:
            used_b.add(j)
            used_a.add(i)
            pairs.append((j, i))
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)
