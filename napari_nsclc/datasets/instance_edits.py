"""Apply nucleus edits to an instance mask, touching only the nuclei that were edited.

A dataset that stores its nuclei twice, as outlines (a CSV) and as an
instance mask (NuCLS), must write a mask that agrees with the edited
outlines. Re-rasterising every outline would move the pixels of nuclei
nobody touched; this module changes only the edited ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..model import Polygon

__all__ = ["NucleusEdit", "apply_edits", "instance_under"]


@dataclass(frozen=True)
class NucleusEdit:
    """One edited nucleus.

    Attributes
    ----------
    was : ndarray of float, shape (V, 2) or None
        Its outline as read, ``(y, x)`` pixels; ``None`` for a new nucleus.
    now : Polygon or None
        Its outline to draw; ``None`` when deleted, or when only its class changed.
    code : int
        Its class code (ignored for a deletion).
    """

    was: np.ndarray | None
    now: Polygon | None
    code: int = 0


def instance_under(instances: np.ndarray, ring: np.ndarray) -> int:
    """The instance id most pixels inside ``ring`` (``(y, x)`` vertices) carry, or 0 if none."""
    from skimage.draw import polygon

    rows, columns = polygon(ring[:, 0], ring[:, 1], instances.shape)
    ids = instances[rows, columns]
    ids = ids[ids > 0]
    if not ids.size:  # a sliver with no pixel centre inside: its vertices' pixels
        ring_pixels = np.clip(np.round(ring).astype(int), 0, np.array(instances.shape) - 1)
        ids = instances[ring_pixels[:, 0], ring_pixels[:, 1]]
        ids = ids[ids > 0]
    return int(np.bincount(ids).argmax()) if ids.size else 0


def apply_edits(instances: np.ndarray, codes: dict[int, int], edits: Sequence[NucleusEdit],
                rasterize, max_instances: int) -> tuple[np.ndarray, dict[int, int]]:  # fmt: skip
    """The instance mask and class codes after ``edits``.

    Parameters
    ----------
    instances : ndarray of int, shape (H, W)
        Instance ids as read (0 = no nucleus); not modified.
    codes : dict of int to int
        Class code per instance id, as read; not modified.
    edits : sequence of NucleusEdit
        A class change (``was`` and no ``now``): the instance under ``was``
        takes ``code``. A move or a redraw (``was`` and ``now``): that
        instance is cleared and ``now`` drawn under a new id. A new nucleus
        (``now`` only): drawn under a new id. A deletion (``was``, no ``now``,
        ``code`` 0): the instance under ``was`` is cleared.
    rasterize : callable
        ``rasterize(polygons, shape, ids) -> ndarray``: the dataset's own way of filling outlines.
    max_instances : int
        The most ids the mask's encoding can hold.

    Returns
    -------
    instances : ndarray of int32, shape (H, W)
    codes : dict of int to int
    """
    out = np.array(instances, dtype=np.int32, copy=True)
    codes = dict(codes)
    drawn: list[tuple[Polygon, int]] = []
    for edit in edits:
        old = instance_under(np.asarray(instances), edit.was) if edit.was is not None else 0
        if edit.now is None and edit.code and old:
            codes[old] = edit.code
            continue
        if old:
            out[out == old] = 0
            codes.pop(old, None)
        if edit.now is not None:
            drawn.append((edit.now, edit.code))
    if drawn:
        first = max([0, *codes, int(out.max())]) + 1
        ids = list(range(first, first + len(drawn)))
        if ids[-1] > max_instances:
            raise ValueError(f"{ids[-1]} nucleus ids exceed the {max_instances} the mask can hold")
        painted = rasterize([polygon for polygon, _ in drawn], out.shape, ids)
        out = np.where(painted > 0, painted, out).astype(np.int32)
        codes.update({i: code for i, (_, code) in zip(ids, drawn, strict=True)})
    present = set(np.unique(out).tolist())
    return out, {i: c for i, c in codes.items() if i in present}
