"""Edit the outlines of a few nuclei at a time, as ordinary polygons.

A million outlines cannot be editable napari Shapes, but the few hundred in
a region can. :func:`open_region` takes the nuclei of a box (at most
:data:`MAX_OUTLINES`), and :meth:`OutlineEdit.apply` turns the polygons the
user leaves (moved vertices, new classes, deletions, new outlines) into one
undoable :meth:`NucleusSet.replace`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model import NsclcFormatError
from .model import NucleusSet

__all__ = ["MAX_OUTLINES", "OutlineEdit", "open_nuclei", "open_region"]

#: napari's Shapes layer stays responsive to about this many polygons.
MAX_OUTLINES = 3000


@dataclass
class OutlineEdit:
    """The nuclei of one region, opened for editing.

    Attributes
    ----------
    nuclei : NucleusSet
    indices : (K,) int array
        The nuclei opened, in the order of ``rings``.
    rings : list of (M, 2) arrays
        Their outlines, ``(y, x)`` level-0 pixels.
    classes : list of str
    bounds : (ymin, xmin, ymax, xmax)
    """

    nuclei: NucleusSet
    indices: np.ndarray
    rings: list
    classes: list
    bounds: tuple

    def apply(self, rings, classes, ids) -> np.ndarray:
        """Store what the user left: ``rings[k]`` of class ``classes[k]`` was nucleus ``ids[k]`` (-1: new).

        Nuclei of the region missing from ``ids`` are deleted. Returns the
        nuclei changed (empty when nothing changed); one undo reverts it all.
        """
        ids = [int(i) for i in ids]
        opened = {int(i): k for k, i in enumerate(self.indices.tolist())}
        unknown = [i for i in ids if i >= 0 and i not in opened]
        if unknown:
            raise ValueError(f"nuclei {unknown[:5]} were not opened in this region")
        outlines, new_classes, added = {}, {}, []
        for ring, name, i in zip(rings, classes, ids, strict=False):
            ring = np.asarray(ring, float)[:, -2:]
            if i < 0:
                added.append((ring, str(name)))
                continue
            k = opened[i]
            if ring.shape != self.rings[k].shape or not np.allclose(ring, self.rings[k]):
                outlines[i] = ring
            if str(name) != self.classes[k]:
                new_classes[i] = str(name)
        removed = sorted(set(opened) - set(ids))
        return self.nuclei.replace(outlines, new_classes, removed, added)


def open_region(nuclei: NucleusSet, ymin: float, xmin: float, ymax: float, xmax: float,
                limit: int = MAX_OUTLINES) -> OutlineEdit:
    """Open the nuclei whose centre lies in the box, as plain rings.

    Raises
    ------
    NsclcFormatError
        When the box holds more than ``limit`` nuclei: zoom in first.
    """
    found = nuclei.query(ymin, xmin, ymax, xmax)
    centres = nuclei.centres[found]
    found = found[(centres[:, 0] >= ymin) & (centres[:, 0] <= ymax) & (centres[:, 1] >= xmin)
                  & (centres[:, 1] <= xmax)]
    if len(found) > limit:
        raise NsclcFormatError(nuclei.name, f"{len(found):,} nuclei are in view; zoom in to at most {limit:,} "
                                            "to edit their outlines")
    return OutlineEdit(nuclei, found, [nuclei.ring(i).copy() for i in found.tolist()],
                       nuclei.class_names(found), (ymin, xmin, ymax, xmax))


def open_nuclei(nuclei: NucleusSet, indices, limit: int = MAX_OUTLINES) -> OutlineEdit:
    """Open just ``indices`` (one nucleus, or the selection) for editing; the others stay untouched.

    Raises
    ------
    NsclcFormatError
        When more than ``limit`` nuclei are asked for, or one is deleted.
    """
    indices = np.unique(np.asarray(indices, dtype=np.int64).reshape(-1))
    if len(indices) > limit:
        raise NsclcFormatError(nuclei.name, f"{len(indices):,} nuclei are selected; select at most {limit:,} "
                                            "to edit their outlines")
    if nuclei.deleted[indices].any():
        raise NsclcFormatError(nuclei.name, "a deleted nucleus cannot be edited; restore it first")
    if not len(indices):
        return OutlineEdit(nuclei, indices, [], [], (0.0, 0.0, 0.0, 0.0))
    boxes = nuclei.bounds[indices]
    bounds = (*boxes[:, :2].min(axis=0).tolist(), *boxes[:, 2:].max(axis=0).tolist())
    return OutlineEdit(nuclei, indices, [nuclei.ring(i).copy() for i in indices.tolist()],
                       nuclei.class_names(indices), bounds)
