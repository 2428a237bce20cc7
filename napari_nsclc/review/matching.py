"""One-to-one matching of points and boxes between two annotators, and clusters across several.

Plain numpy and scipy; no napari, no Qt. :mod:`napari_nsclc.review.metrics`
builds the agreement figures on top of these.

Points
    :func:`match_points` pairs points whose distance is at most the radius
    (inclusive, with a 1e-9 relative tolerance so that a point placed exactly
    on the radius is not lost to floating-point rounding). Among all
    one-to-one pairings it returns one with the **most pairs**, and among
    those one with the **smallest total distance** (the assignment problem,
    solved by :func:`scipy.optimize.linear_sum_assignment`). Candidate pairs
    come from a KD-tree, and each connected group of candidates is solved on
    its own, so thousands of cells cost little.

    Ties (several pairings with the same number of pairs and the same total
    distance, e.g. four points on the corners of a square) are broken by
    input order: each group is solved on a matrix whose rows follow ``a``'s
    order and columns ``b``'s, and the solver is deterministic, so the same
    inputs always give the same pairs. Reordering the inputs may swap such
    equal-cost pairs; it never changes the number of pairs or the total
    distance.

Boxes
    :func:`match_boxes` is **greedy by IoU**: candidate pairs with
    ``IoU >= threshold`` (and IoU > 0) are taken from the highest IoU down,
    each box at most once; equal IoUs go to the lower index of ``a``, then of
    ``b``. Boxes on different planes of a volume never match.

Clusters
    :func:`cluster_points` groups the points of several readers so that a
    cluster holds at most one point per reader: readers are taken in order,
    and each reader's points are matched one-to-one (as above) to the centres
    of the clusters found so far; unmatched points start new clusters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

__all__ = ["Matching", "box_iou", "cluster_points", "match_boxes", "match_points"]

#: Relative tolerance on the radius: a distance within ``radius * (1 + RADIUS_RTOL)`` is inside.
RADIUS_RTOL = 1e-9


@dataclass(frozen=True)
class Matching:
    """A one-to-one pairing of the objects of ``a`` with those of ``b``.

    Attributes
    ----------
    pairs : tuple of (int, int)
        ``(index in a, index in b)``, sorted by the index in ``a``.
    scores : tuple of float
        Per pair, the distance (points, in the units the radius was given in)
        or the IoU (boxes).
    only_a, only_b : tuple of int
        Indices left unmatched in ``a`` and in ``b``, ascending.
    score : str
        What ``scores`` hold: ``"distance_um"``, ``"distance_px"`` or ``"iou"``.
    """

    pairs: tuple[tuple[int, int], ...]
    scores: tuple[float, ...]
    only_a: tuple[int, ...]
    only_b: tuple[int, ...]
    score: str

    def __len__(self) -> int:
        return len(self.pairs)


def _matching(pairs, scores, n_a: int, n_b: int, score: str) -> Matching:
    order = sorted(range(len(pairs)), key=lambda k: pairs[k])
    pairs = [(int(pairs[k][0]), int(pairs[k][1])) for k in order]
    used_a = {i for i, _ in pairs}
    used_b = {j for _, j in pairs}
    return Matching(
        tuple(pairs),
        tuple(float(scores[k]) for k in order),
        tuple(i for i in range(n_a) if i not in used_a),
        tuple(j for j in range(n_b) if j not in used_b),
        score,
    )


def _coords(values, ndim: int | None = None) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        return array.reshape(0, ndim or (array.shape[-1] if array.ndim == 2 else 2))
    if array.ndim != 2:
        raise ValueError(f"point coordinates must have shape (N, D), got {array.shape}")
    return array


def match_points(a, b, radius: float, *, scale=1.0, score: str = "distance_px") -> Matching:
    """Pair the points of ``a`` with those of ``b`` one-to-one within ``radius``.

    Parameters
    ----------
    a, b : array-like of float, shapes (N, D) and (M, D)
        Point coordinates in pixels, ``(y, x)`` or ``(z, y, x)``.
    radius : float
        The largest distance of a pair (inclusive), in the units of
        ``coords * scale``.
    scale : float or array-like of float, shape (D,)
        Size of a pixel along each axis (e.g. µm/px) to turn pixel coordinates
        into the radius' units; 1 keeps pixels.
    score : str
        The name :attr:`Matching.score` gets.

    Returns
    -------
    Matching
        The most pairs possible, then the smallest total distance; ``scores``
        are the pair distances in the radius' units. Ties: see the module
        docstring.
    """
    a = _coords(a)
    b = _coords(b, a.shape[1])
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"points of different dimensions: {a.shape[1]} and {b.shape[1]}")
    if radius < 0 or not np.isfinite(radius):
        raise ValueError(f"radius must be a finite number >= 0, got {radius}")
    n_a, n_b = len(a), len(b)
    if n_a == 0 or n_b == 0:
        return _matching([], [], n_a, n_b, score)
    a = a * np.broadcast_to(np.asarray(scale, dtype=float), a.shape[1:])
    b = b * np.broadcast_to(np.asarray(scale, dtype=float), b.shape[1:])
    limit = radius * (1 + RADIUS_RTOL) + 1e-12
    near = cKDTree(a).query_ball_tree(cKDTree(b), limit * (1 + 1e-9))
    rows = np.array([i for i, js in enumerate(near) for _ in js], dtype=int)
    cols = np.array([j for js in near for j in js], dtype=int)
    dist = np.linalg.norm(a[rows] - b[cols], axis=1) if len(rows) else np.zeros(0)
    keep = dist <= limit
    rows, cols, dist = rows[keep], cols[keep], dist[keep]
    if len(rows) == 0:
        return _matching([], [], n_a, n_b, score)
    graph = coo_matrix((np.ones(len(rows)), (rows, n_a + cols)), shape=(n_a + n_b, n_a + n_b))
    _, component = connected_components(graph, directed=False)
    pairs, scores = [], []
    edge_component = component[rows]
    for c in np.unique(edge_component):
        sel = edge_component == c
        r, k, d = rows[sel], cols[sel], dist[sel]
        ua, ia = np.unique(r, return_inverse=True)
        ub, ib = np.unique(k, return_inverse=True)
        # A forbidden pair costs more than any set of allowed ones: the most pairs first, then the least distance.
        big = (min(len(ua), len(ub)) * limit + 1.0) * 2.0
        cost = np.full((len(ua), len(ub)), big)
        cost[ia, ib] = d
        allowed = np.zeros(cost.shape, dtype=bool)
        allowed[ia, ib] = True
        for x, y in zip(*linear_sum_assignment(cost), strict=True):
            if allowed[x, y]:
                pairs.append((ua[x], ub[y]))
                scores.append(cost[x, y])
    return _matching(pairs, scores, n_a, n_b, score)


def box_iou(a, b, planes_a=None, planes_b=None) -> np.ndarray:
    """Intersection over union of every box of ``a`` with every box of ``b``.

    Parameters
    ----------
    a, b : array-like of float, shapes (N, 4) and (M, 4)
        ``(ymin, xmin, ymax, xmax)`` in pixels (the covered area, as in
        :class:`napari_nsclc.model.BoxSet`).
    planes_a, planes_b : array-like of int, shapes (N,) and (M,), optional
        Slice of each box in a volume; boxes on different slices have IoU 0.

    Returns
    -------
    ndarray of float, shape (N, M)
        In [0, 1]; 0 where a box has no area.
    """
    a = np.asarray(a, dtype=float).reshape(-1, 4)
    b = np.asarray(b, dtype=float).reshape(-1, 4)
    dy = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    dx = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(dy, 0, None) * np.clip(dx, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    if planes_a is not None and planes_b is not None:
        iou[np.asarray(planes_a).reshape(-1, 1) != np.asarray(planes_b).reshape(1, -1)] = 0.0
    return iou


def match_boxes(a, b, threshold: float = 0.5, *, planes_a=None, planes_b=None) -> Matching:
    """Pair boxes one-to-one, greedily by IoU, keeping pairs with ``IoU >= threshold``.

    Parameters
    ----------
    a, b : array-like of float, shapes (N, 4) and (M, 4)
        ``(ymin, xmin, ymax, xmax)`` in pixels.
    threshold : float
        The smallest IoU of a pair (inclusive), in (0, 1]; pairs of IoU 0
        never match.
    planes_a, planes_b : array-like of int, optional
        Slices of the boxes in a volume.

    Returns
    -------
    Matching
        ``scores`` are the pairs' IoUs. Highest IoU first; ties go to the
        lower index of ``a``, then of ``b``.
    """
    iou = box_iou(a, b, planes_a, planes_b)
    rows, cols = np.nonzero((iou >= threshold) & (iou > 0))
    values = iou[rows, cols]
    order = np.lexsort((cols, rows, -values))
    free_a = np.ones(iou.shape[0], dtype=bool)
    free_b = np.ones(iou.shape[1], dtype=bool)
    pairs, scores = [], []
    for k in order:
        i, j = rows[k], cols[k]
        if free_a[i] and free_b[j]:
            free_a[i] = free_b[j] = False
            pairs.append((i, j))
            scores.append(values[k])
    return _matching(pairs, scores, iou.shape[0], iou.shape[1], "iou")


def cluster_points(point_sets: Sequence, radius: float, *, scale=1.0) -> np.ndarray:
    """Group the points of several readers: at most one point per reader in a cluster.

    Parameters
    ----------
    point_sets : sequence of array-like, each shape (N_r, D)
        Each reader's point coordinates in pixels.
    radius : float
        Largest distance (inclusive) of a point to its cluster's centre, in
        the units of ``coords * scale``.
    scale : float or array-like of float, shape (D,)
        Pixel size per axis, as in :func:`match_points`.

    Returns
    -------
    ndarray of int, shape (K, R)
        ``members[k, r]`` is the index of reader ``r``'s point in cluster
        ``k``, or -1. Clusters are numbered as they are found (reader order,
        then point order); the result depends on the reader order.
    """
    sets = [_coords(s) for s in point_sets]
    ndim = next((s.shape[1] for s in sets if len(s)), 2)
    members = np.zeros((0, len(sets)), dtype=int)
    sums = np.zeros((0, ndim))
    for r, coords in enumerate(sets):
        counts = (members >= 0).sum(axis=1, keepdims=True)
        centres = sums / np.maximum(counts, 1)
        matching = match_points(centres, coords, radius, scale=scale)
        for k, i in matching.pairs:
            members[k, r] = i
            sums[k] += coords[i]
        new = np.asarray(matching.only_b, dtype=int)
        block = np.full((len(new), len(sets)), -1, dtype=int)
        block[:, r] = new
        members = np.vstack([members, block])
        sums = np.vstack([sums, coords[new].reshape(-1, ndim)])
    return members
