"""A slide's nuclei as flat arrays: outlines, classes, selection, deletions and undo.

One :class:`NucleusSet` holds up to millions of nucleus outlines without one
Python object per nucleus: the exterior rings are one ``(V, 2)`` vertex array
cut by an ``(N + 1,)`` offset array, and each nucleus's class is a small
integer code into the set's :class:`~napari_nsclc.model.ClassSchema`. Edits
(reclassify, delete, restore, new outlines) are undoable and announced with
psygnal signals, which the napari view and the Nuclei dock listen to.

Coordinates are model coordinates: ``(y, x)`` level-0 pixels with pixel
centres at integers, as everywhere in napari-nsclc.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from psygnal import Signal

from ..model import ClassInfo, ClassSchema, default_color

__all__ = ["Edit", "NucleusSet", "Problems", "ring_bounds"]

#: Side of the square cells of the spatial index, level-0 pixels.
GRID_CELL = 256
UNCLASSIFIED = "Unclassified"


def ring_bounds(vertices: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per-ring ``(ymin, xmin, ymax, xmax)``, shape (N, 4), of rings cut from ``vertices`` at ``offsets``.

    Rings must be non-empty (``offsets`` strictly increasing).
    """
    if len(offsets) < 2:
        return np.zeros((0, 4))
    starts = offsets[:-1]
    low = np.minimum.reduceat(vertices, starts, axis=0)
    high = np.maximum.reduceat(vertices, starts, axis=0)
    return np.hstack([low, high])


def ring_means(vertices: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per-ring mean vertex ``(y, x)``, shape (N, 2): the point a lasso must contain to select a nucleus."""
    if len(offsets) < 2:
        return np.zeros((0, 2))
    sums = np.add.reduceat(vertices, offsets[:-1], axis=0)
    return sums / np.diff(offsets)[:, None]


@dataclass
class Problems:
    """Records of the source that were odd or unusable, by kind: ``{kind: [record index, ...]}``.

    ``skipped`` kinds are not shown (and are written back unchanged); the
    others are shown and noted.
    """

    found: dict[str, list[int]] = field(default_factory=dict)
    skipped: set[str] = field(default_factory=set)

    def add(self, kind: str, record: int, *, skipped: bool = False) -> None:
        self.found.setdefault(kind, []).append(record)
        if skipped:
            self.skipped.add(kind)

    def counts(self) -> dict[str, int]:
        return {kind: len(records) for kind, records in self.found.items()}

    def messages(self, name: str, unit: str = "feature") -> list[str]:
        """One line per kind: how many, the first few, and what was done."""
        lines = []
        for kind, records in self.found.items():
            first = ", ".join(str(r) for r in records[:3]) + (", ..." if len(records) > 3 else "")
            action = "skipped, kept unchanged in the file" if kind in self.skipped else "loaded"
            lines.append(f"{name}: {len(records)} {unit}{'s' if len(records) != 1 else ''} with {kind} "
                         f"({unit} {first}): {action}")
        return lines


@dataclass
class Edit:
    """One undoable change: ``field`` of ``indices`` went from ``before`` to ``after``."""

    field: str
    indices: np.ndarray
    before: Any
    after: Any
    label: str = ""


class NucleusSet:
    """Classified nucleus outlines of one slide, editable at a million nuclei.

    Parameters
    ----------
    vertices : (V, 2) float array
        Every outline's vertices, ``(y, x)``, exterior ring only, unclosed.
    offsets : (N + 1,) int array
        Nucleus ``i`` is ``vertices[offsets[i]:offsets[i + 1]]``.
    codes : (N,) int array
        Class code of each nucleus, a code of ``schema``.
    schema : ClassSchema
    records : (N,) int array, optional
        Index of each nucleus's record (feature, annotation) in its source;
        -1 for a nucleus drawn here.
    source : object, optional
        What the writers need to copy untouched records (a
        :class:`~napari_nsclc.nuclei.geojson.GeoJsonSource`, say).
    problems : Problems, optional
    name : str

    Signals
    -------
    changed(indices)
        Classes, deletions or outlines of ``indices`` changed.
    selection_changed()
    """

    changed = Signal(object)
    selection_changed = Signal()

    def __init__(self, vertices, offsets, codes, schema: ClassSchema, records=None, source=None,
                 problems: Problems | None = None, name: str = "nuclei"):
        self.vertices = np.ascontiguousarray(vertices, dtype=float).reshape(-1, 2)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        n = len(self.offsets) - 1
        self.codes = np.asarray(codes).astype(self._code_dtype(schema), copy=True)
        if self.codes.shape != (n,):
            raise ValueError(f"expected {n} class codes, got {self.codes.shape}")
        self.schema = schema
        self.records = np.arange(n, dtype=np.int64) if records is None else np.asarray(records, dtype=np.int64)
        self.source = source
        self.problems = problems or Problems()
        self.name = name
        self.original_codes = self.codes.copy()
        self.deleted = np.zeros(n, bool)
        self.selected = np.zeros(n, bool)
        #: Outlines drawn or edited here, by nucleus index; they replace the vertex arrays' ring.
        self.outlines: dict[int, np.ndarray] = {}
        self.bounds = ring_bounds(self.vertices, self.offsets)
        self.centres = ring_means(self.vertices, self.offsets)
        self._undo: list[list[Edit]] = []
        self._redo: list[list[Edit]] = []
        self._index_grid()

    # ------------------------------------------------------------------ basics
    @staticmethod
    def _code_dtype(schema: ClassSchema):
        return np.uint8 if max(schema.codes, default=0) < 255 else np.uint16

    def __len__(self) -> int:
        return len(self.codes)

    def ring(self, i: int) -> np.ndarray:
        """Nucleus ``i``'s outline, ``(M, 2)`` ``(y, x)``."""
        if i in self.outlines:
            return self.outlines[i]
        return self.vertices[self.offsets[i]:self.offsets[i + 1]]

    def class_names(self, indices=None) -> list[str]:
        names = {info.code: info.name for info in self.schema.classes}
        codes = self.codes if indices is None else self.codes[indices]
        return [names[int(c)] for c in codes]

    def counts(self, only=None) -> dict[str, int]:
        """Nuclei per class name (deleted ones not counted), every class of the schema listed.

        ``only`` is a boolean mask (the selection, say) to count within.
        """
        keep = ~self.deleted if only is None else (~self.deleted & only)
        found = np.bincount(self.codes[keep], minlength=max(self.schema.codes, default=0) + 1)
        return {info.name: int(found[info.code]) for info in self.schema.classes}

    @property
    def edited(self) -> np.ndarray:
        """Indices of nuclei whose class, existence or outline differs from the source."""
        from_source = self.records >= 0
        changed = (from_source & ((self.codes != self.original_codes) | self.deleted)) | (~from_source & ~self.deleted)
        if self.outlines:
            changed[list(self.outlines)] = True
        return np.flatnonzero(changed & ~(self.deleted & ~from_source))

    def record_changes(self, total: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
        """What a writer copying the ``total`` records of the source does with each.

        Returns the nucleus of each record (-1 for a record not shown), which
        records to keep (deleted nuclei's are dropped), which to rewrite
        (reclassified or redrawn), and the nuclei drawn here, to append.
        """
        from_source = self.records >= 0
        nucleus_of = np.full(total, -1, np.int64)
        nucleus_of[self.records[from_source]] = np.flatnonzero(from_source)
        edited = self.edited
        old = edited[from_source[edited]]
        keep = np.ones(total, bool)
        keep[self.records[old[self.deleted[old]]]] = False
        changed = np.zeros(total, bool)
        changed[self.records[old[~self.deleted[old]]]] = True
        return nucleus_of, keep, changed, edited[~from_source[edited] & ~self.deleted[edited]].tolist()

    def edit_summary(self) -> dict:
        """What changed against the source, for the edit log: reclassified nuclei per ``"from -> to"``, and
        counts of deleted, redrawn and newly drawn nuclei."""
        names = {info.code: info.name for info in self.schema.classes}
        from_source = self.records >= 0
        moved = np.flatnonzero(from_source & ~self.deleted & (self.codes != self.original_codes))
        pairs, counts = np.unique(np.stack([self.original_codes[moved], self.codes[moved]], axis=1), axis=0,
                                  return_counts=True) if len(moved) else (np.zeros((0, 2), int), [])
        return {
            "reclassified": {f"{names.get(int(a), a)} -> {names.get(int(b), b)}": int(n)
                             for (a, b), n in zip(pairs.tolist(), list(counts), strict=True)},
            "deleted": int((from_source & self.deleted).sum()),
            "redrawn": sum(1 for i in self.outlines if self.records[i] >= 0 and not self.deleted[i]),
            "drawn": int((~from_source & ~self.deleted).sum()),
        }

    def add_class(self, name: str, color=None) -> int:
        """Add ``name`` to the schema (a class the student needs that the source lacked); returns its code."""
        if name in self.schema:
            return self.schema.code_of(name)
        code = max(self.schema.codes, default=0) + 1
        info = ClassInfo(code, name, color if color is not None else default_color(code))
        self.schema = ClassSchema(self.schema.name, (*self.schema.classes, info), background=self.schema.background)
        if self.codes.dtype != self._code_dtype(self.schema):
            self.codes = self.codes.astype(self._code_dtype(self.schema))
            self.original_codes = self.original_codes.astype(self.codes.dtype)
        return code

    # ------------------------------------------------------------------ space
    def _index_grid(self) -> None:
        """Bucket nuclei by the grid cell of their centre; nuclei larger than a cell are checked always."""
        extent = (self.bounds[:, 2:] - self.bounds[:, :2]).max(axis=1) if len(self) else np.zeros(0)
        self._big = np.flatnonzero(extent > GRID_CELL)
        self._grid_origin = np.floor(self.centres.min(axis=0)) if len(self) else np.zeros(2)
        cells = np.floor((self.centres - self._grid_origin) / GRID_CELL).astype(np.int64)
        self._grid_width = int(cells[:, 1].max()) + 1 if len(self) else 1
        key = cells[:, 0] * self._grid_width + cells[:, 1]
        self._grid_order = np.argsort(key, kind="stable")
        self._grid_keys = key[self._grid_order]
        self._grid_bounds = self.bounds[self._grid_order]
        self._grid_position = np.empty(len(self), np.int64)
        self._grid_position[self._grid_order] = np.arange(len(self))
        self._loose: set[int] = set()  # nuclei whose outline changed since indexing

    def query(self, ymin: float, xmin: float, ymax: float, xmax: float, *, with_deleted: bool = False) -> np.ndarray:
        """Indices of nuclei whose bounding box meets the box ``[ymin, ymax] x [xmin, xmax]`` (level-0 px)."""
        return self.query_bounds(ymin, xmin, ymax, xmax, with_deleted=with_deleted)[0]

    def query_bounds(self, ymin: float, xmin: float, ymax: float, xmax: float, *,
                     with_deleted: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`query`'s indices and their ``(K, 4)`` bounding boxes.

        The grid keeps its own copy of the boxes in cell order, so a region's
        boxes are read from contiguous rows rather than gathered from a
        million scattered ones (three times faster for a tile of 40k nuclei).
        """
        if not len(self):
            return np.zeros(0, np.int64), np.zeros((0, 4))
        margin = GRID_CELL + 1  # a nucleus narrower than a cell has its centre within a cell of its box
        c0 = np.floor((np.array([ymin, xmin]) - margin - self._grid_origin) / GRID_CELL).astype(np.int64)
        c1 = np.floor((np.array([ymax, xmax]) + margin - self._grid_origin) / GRID_CELL).astype(np.int64)
        c0 = np.maximum(c0, 0)
        c1[1] = min(c1[1], self._grid_width - 1)
        positions = np.zeros(0, np.int64)
        if c1[0] >= c0[0] and c1[1] >= c0[1]:
            rows = np.arange(c0[0], c1[0] + 1) * self._grid_width
            lo = np.searchsorted(self._grid_keys, rows + c0[1], "left")
            hi = np.searchsorted(self._grid_keys, rows + c1[1], "right")
            lengths = hi - lo
            positions = np.arange(int(lengths.sum())) + np.repeat(lo - np.cumsum(lengths) + lengths, lengths)
        candidates, boxes = self._grid_order[positions], self._grid_bounds[positions]
        if len(self._big) or self._loose:  # these may sit outside the cells looked at, or twice
            candidates = np.unique(np.concatenate([candidates, self._big,
                                                   np.fromiter(self._loose, np.int64, len(self._loose))]))
            boxes = self.bounds[candidates]
        hit = (boxes[:, 0] <= ymax) & (boxes[:, 2] >= ymin) & (boxes[:, 1] <= xmax) & (boxes[:, 3] >= xmin)
        if not with_deleted:
            hit &= ~self.deleted[candidates]
        return candidates[hit], boxes[hit]

    def at(self, y: float, x: float) -> int | None:
        """The nucleus whose outline contains ``(y, x)``, the smallest if several; ``None`` if none."""
        import shapely

        candidates = self.query(y, x, y, x)
        best, best_area = None, np.inf
        for i in candidates.tolist():
            polygon = shapely.Polygon(self.ring(i))
            if shapely.contains_xy(polygon, y, x) or shapely.touches(polygon, shapely.Point(y, x)):
                if polygon.area < best_area:
                    best, best_area = i, polygon.area
        return best

    def inside(self, polygon_yx) -> np.ndarray:
        """Indices of nuclei whose centre lies inside ``polygon_yx`` (a lasso, ``(M, 2)`` ``(y, x)``)."""
        import shapely

        polygon_yx = np.asarray(polygon_yx, dtype=float)
        if len(polygon_yx) < 3:
            return np.zeros(0, np.int64)
        lasso = shapely.make_valid(shapely.Polygon(polygon_yx))
        (ymin, xmin), (ymax, xmax) = polygon_yx.min(0), polygon_yx.max(0)
        candidates = self.query(ymin, xmin, ymax, xmax)
        centres = self.centres[candidates]
        return candidates[shapely.contains_xy(lasso, centres[:, 0], centres[:, 1])]

    # ------------------------------------------------------------------ selection
    def select(self, indices, mode: str = "replace") -> None:
        """Set the selection to ``indices`` (``mode="replace"``), or ``"add"`` or ``"remove"`` them."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if mode == "replace":
            self.selected[:] = False
            self.selected[indices] = True
        elif mode == "add":
            self.selected[indices] = True
        elif mode == "remove":
            self.selected[indices] = False
        else:
            raise ValueError(f"unknown selection mode {mode!r}")
        self.selected &= ~self.deleted
        self.selection_changed.emit()

    def select_class(self, name: str, mode: str = "replace") -> None:
        """Select every (not deleted) nucleus of class ``name``."""
        self.select(np.flatnonzero(self.codes == self.schema.code_of(name)), mode)

    @property
    def selection(self) -> np.ndarray:
        return np.flatnonzero(self.selected)

    # ------------------------------------------------------------------ edits
    def _apply(self, edits: list[Edit], *, forward: bool) -> np.ndarray:
        touched = []
        for edit in edits if forward else reversed(edits):
            value = edit.after if forward else edit.before
            if edit.field == "codes":
                self.codes[edit.indices] = value
            elif edit.field == "deleted":
                self.deleted[edit.indices] = value
                self.selected[edit.indices] &= ~self.deleted[edit.indices]
            elif edit.field == "outline":
                self._set_outlines(edit.indices, value)
            touched.append(edit.indices)
        return np.unique(np.concatenate(touched)) if touched else np.zeros(0, np.int64)

    def _do(self, edits: list[Edit]) -> np.ndarray:
        edits = [edit for edit in edits if len(edit.indices)]
        if not edits:
            return np.zeros(0, np.int64)
        touched = self._apply(edits, forward=True)
        self._undo.append(edits)
        self._redo.clear()
        self.changed.emit(touched)
        return touched

    def reclassify(self, name: str, indices=None) -> np.ndarray:
        """Give ``indices`` (default: the selection) class ``name``; returns the nuclei that changed."""
        code = self.add_class(name)
        indices = self.selection if indices is None else np.asarray(indices, dtype=np.int64).reshape(-1)
        indices = indices[(self.codes[indices] != code) & ~self.deleted[indices]]
        return self._do([Edit("codes", indices, self.codes[indices].copy(), code, f"reclassify as {name}")])

    def delete(self, indices=None) -> np.ndarray:
        """Delete ``indices`` (default: the selection); they are not drawn, counted or written."""
        indices = self.selection if indices is None else np.asarray(indices, dtype=np.int64).reshape(-1)
        indices = indices[~self.deleted[indices]]
        return self._do([Edit("deleted", indices, False, True, "delete")])

    def restore(self, indices) -> np.ndarray:
        """Bring deleted nuclei back."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        indices = indices[self.deleted[indices]]
        return self._do([Edit("deleted", indices, True, False, "restore")])

    def replace(self, outlines: dict[int, np.ndarray], classes: dict[int, str], removed, added) -> np.ndarray:
        """One undoable edit of a region's outlines (see :mod:`napari_nsclc.nuclei.editing`).

        Parameters
        ----------
        outlines : dict of int to (M, 2) array
            New rings of existing nuclei.
        classes : dict of int to str
            New classes of existing nuclei.
        removed : sequence of int
            Nuclei deleted in the region.
        added : sequence of (ring, class name)
            New nuclei.
        """
        new = self._append(len(added))
        for i, (ring, name) in zip(new.tolist(), added, strict=False):
            self.codes[i] = self.add_class(name)
            outlines = {**outlines, i: ring}
        edits = []
        if outlines:
            keys = np.fromiter(outlines, np.int64, len(outlines))
            before = [self.outlines.get(i) for i in keys.tolist()]
            edits.append(Edit("outline", keys, before, [np.asarray(outlines[i], float) for i in keys.tolist()]))
        if len(new):
            edits.append(Edit("deleted", new, True, False, "draw"))
        if classes:
            keys = np.fromiter(classes, np.int64, len(classes))
            codes = np.array([self.add_class(classes[i]) for i in keys.tolist()], self.codes.dtype)
            edits.append(Edit("codes", keys, self.codes[keys].copy(), codes, "reclassify"))
        removed = np.asarray(list(removed), np.int64)
        edits.append(Edit("deleted", removed[~self.deleted[removed]], False, True, "delete"))
        return self._do(edits)

    def _append(self, count: int) -> np.ndarray:
        """Room for ``count`` new nuclei, deleted until their edit is done (so undo hides them)."""
        if not count:
            return np.zeros(0, np.int64)
        n = len(self)
        self.codes = np.concatenate([self.codes, np.zeros(count, self.codes.dtype)])
        self.original_codes = np.concatenate([self.original_codes, np.zeros(count, self.codes.dtype)])
        self.records = np.concatenate([self.records, np.full(count, -1, np.int64)])
        self.deleted = np.concatenate([self.deleted, np.ones(count, bool)])
        self.selected = np.concatenate([self.selected, np.zeros(count, bool)])
        self.bounds = np.concatenate([self.bounds, np.zeros((count, 4))])
        self.centres = np.concatenate([self.centres, np.zeros((count, 2))])
        self.offsets = np.concatenate([self.offsets, np.full(count, self.offsets[-1])])
        return np.arange(n, n + count)

    def _set_outlines(self, indices: np.ndarray, rings) -> None:
        for i, ring in zip(indices.tolist(), rings, strict=False):
            if ring is None:
                self.outlines.pop(i, None)
            else:
                self.outlines[i] = ring
            current = self.ring(i)
            if len(current):
                self.bounds[i] = [*current.min(0), *current.max(0)]
                self.centres[i] = current.mean(0)
                if i < len(self._grid_position):
                    self._grid_bounds[self._grid_position[i]] = self.bounds[i]
            self._loose.add(i)

    # ------------------------------------------------------------------ state (autosave)
    def state(self) -> dict[str, np.ndarray]:
        """The edits as arrays: every class code, the deleted flags, the outlines drawn here and the source's
        nucleus count; :meth:`load_state` gives them back to a set read from the same source."""
        keys = np.fromiter(self.outlines, np.int64, len(self.outlines))
        rings = [self.outlines[i] for i in keys.tolist()]
        return {"codes": self.codes.copy(), "deleted": np.packbits(self.deleted),
                "outline_nuclei": keys, "outline_lengths": np.array([len(r) for r in rings], np.int64),
                "outline_vertices": np.concatenate(rings) if rings else np.zeros((0, 2)),
                "from_source": np.array(int((self.records >= 0).sum())), "classes": np.array(self.schema.names),
                "colors": np.array([info.color for info in self.schema.classes])}

    def load_state(self, state: dict) -> np.ndarray:
        """Put back edits saved by :meth:`state` (a restored autosave); clears undo. Returns the nuclei changed.

        Raises
        ------
        ValueError
            When the state belongs to a set of another size.
        """
        from_source = int((self.records >= 0).sum())
        codes = np.asarray(state["codes"])
        if int(state["from_source"]) != from_source or len(codes) < from_source:
            raise ValueError(f"it holds {int(state['from_source']):,} nuclei from the source, this file "
                             f"{from_source:,}")
        names = [str(name) for name in np.asarray(state["classes"]).tolist()]
        for name, color in zip(names, np.asarray(state["colors"]), strict=True):
            self.add_class(name, tuple(color))
        if self.schema.names[:len(names)] != names:
            raise ValueError("its classes are in another order than this file's")
        self._append(len(codes) - len(self))
        deleted = np.unpackbits(np.asarray(state["deleted"]), count=len(codes)).astype(bool)
        before = (self.codes != codes) | (self.deleted != deleted)
        self.codes[:] = codes
        self.deleted[:] = deleted
        self.selected[:] = False
        self.outlines.clear()
        keys = np.asarray(state["outline_nuclei"], np.int64)
        offsets = np.concatenate([[0], np.cumsum(state["outline_lengths"])]).astype(np.int64)
        vertices = np.asarray(state["outline_vertices"], float)
        self._set_outlines(keys, [vertices[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)])
        before[keys] = True
        self._undo.clear()
        self._redo.clear()
        touched = np.flatnonzero(before)
        self.changed.emit(touched)
        return touched

    def undo(self) -> np.ndarray:
        """Undo the last edit; returns the nuclei it touched (empty when there is nothing to undo)."""
        if not self._undo:
            return np.zeros(0, np.int64)
        edits = self._undo.pop()
        touched = self._apply(edits, forward=False)
        self._redo.append(edits)
        self.changed.emit(touched)
        return touched

    def redo(self) -> np.ndarray:
        if not self._redo:
            return np.zeros(0, np.int64)
        edits = self._redo.pop()
        touched = self._apply(edits, forward=True)
        self._undo.append(edits)
        self.changed.emit(touched)
        return touched

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)
