"""Several readers at once: pairwise matrices, Fleiss' kappa, Krippendorff's alpha, majority votes.

For CoCaHis' seven annotators (GT1...GT7, masks) and IGNITE's readers
(P1...P6, R1...R4, points). Plain numpy, statsmodels and ``krippendorff``; no
napari, no Qt. Two-reader figures and the NaN conventions are in
:mod:`napari_nsclc.review.metrics`.

Items and ratings
-----------------
* Masks: every pixel is an item and its code in each reader's mask the
  rating. Pixels any reader marked with an ``ignore`` code are left out.
* Points: the items are the clusters of
  :func:`napari_nsclc.review.matching.cluster_points` (at most one point per
  reader, matched to the cluster centre within the hit radius). A reader
  without a point in a cluster rates it :data:`NOT_MARKED`, so kappa and
  alpha measure detection and class together.
* Fleiss' kappa is statsmodels' ``fleiss_kappa`` and Krippendorff's alpha the
  ``krippendorff`` package's ``alpha`` (nominal), both on the item-by-value
  count table; each is NaN when undefined (one value only, no items).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..model import ClassSchema, PointSet
from .matching import cluster_points
from .metrics import (
    DEFAULT_RADIUS_UM,
    _codes,
    _Jsonable,
    _labels,
    _mask_array,
    _objects,
    _radius,
    mask_agreement,
    point_agreement,
)

__all__ = [
    "NOT_MARKED",
    "PairwiseMatrix",
    "ReaderAgreement",
    "fleiss_kappa",
    "krippendorff_alpha",
    "majority_mask",
    "majority_points",
    "mask_reader_agreement",
    "pairwise",
    "point_reader_agreement",
]

#: The rating of a reader who did not mark a point cluster.
NOT_MARKED = "(not marked)"


@dataclass(frozen=True)
class PairwiseMatrix(_Jsonable):
    """A symmetric reader-by-reader matrix of one agreement figure.

    Attributes
    ----------
    readers : tuple of str
    values : tuple of tuple of float
        ``values[i][j]`` compares reader ``i`` (as ``a``) with ``j``; the
        lower triangle mirrors the upper one, the diagonal is each reader with
        itself (1.0, or NaN for an empty one).
    metric : str
    """

    readers: tuple[str, ...]
    values: tuple[tuple[float, ...], ...]
    metric: str

    @property
    def array(self) -> np.ndarray:
        return np.array(self.values, dtype=float)


def _named(items) -> dict[str, Any]:
    """Readers by name: a mapping as given; a sequence by each item's ``name``, else (or if names repeat) "reader N"."""
    if isinstance(items, Mapping):
        return {str(k): v for k, v in items.items()}
    items = list(items)
    names = [getattr(item, "name", "") or "" for item in items]
    if "" in names or len(set(names)) < len(names):
        names = [f"reader {i + 1}" for i in range(len(items))]
    return dict(zip(names, items, strict=True))


def pairwise(items, compare: Callable[[Any, Any], float], metric: str = "") -> PairwiseMatrix:
    """Compare every pair of readers with ``compare(a, b) -> float``.

    Parameters
    ----------
    items : mapping of str to annotation, or sequence of named annotations
        One mask or point set per reader (a sequence is named by each
        object's ``name``).
    compare : callable
        E.g. ``lambda a, b: mask_agreement(a, b).mean_dice`` or
        ``lambda a, b: point_agreement(a, b, pixel_size=0.5).detection["f1"]``.
        Computed once per unordered pair, ``i <= j``.
    metric : str
        Name stored with the result.

    Returns
    -------
    PairwiseMatrix
    """
    named = _named(items)
    readers = list(named)
    values = np.full((len(readers), len(readers)), np.nan)
    for i, ri in enumerate(readers):
        for j in range(i, len(readers)):
            values[i, j] = values[j, i] = float(compare(named[ri], named[readers[j]]))
    return PairwiseMatrix(tuple(readers), tuple(tuple(row) for row in values.tolist()), metric)


@dataclass(frozen=True)
class ReaderAgreement(_Jsonable):
    """Agreement of several readers on the same items (pixels, or point clusters).

    Attributes
    ----------
    readers : tuple of str
    pairwise : PairwiseMatrix
        Mean Dice (masks) or detection F1 (points) of each pair of readers.
    fleiss_kappa, krippendorff_alpha : float
        Over the item-by-reader ratings, nominal (NaN if undefined).
    items : int
        Pixels compared, or point clusters.
    categories : tuple of str
        The values the readers gave.
    """

    readers: tuple[str, ...]
    pairwise: PairwiseMatrix
    fleiss_kappa: float
    krippendorff_alpha: float
    items: int
    categories: tuple[str, ...]


def _counts(ratings) -> tuple[np.ndarray, np.ndarray]:
    """``(categories, counts (n_items, n_categories))``; NaN or None ratings are missing."""
    ratings = np.asarray(ratings)
    if ratings.ndim != 2:
        raise ValueError(f"ratings must have shape (n_items, n_raters), got {ratings.shape}")
    if ratings.dtype.kind == "f":
        missing = np.isnan(ratings)
    elif ratings.dtype == object:
        missing = np.vectorize(lambda v: v is None or v != v, otypes=[bool])(ratings)
    else:
        missing = np.zeros(ratings.shape, dtype=bool)
    categories = np.unique(ratings[~missing])
    counts = np.zeros((len(ratings), len(categories)), dtype=np.int64)
    for k, c in enumerate(categories):
        counts[:, k] = ((ratings == c) & ~missing).sum(axis=1)
    return categories, counts


def fleiss_kappa(ratings) -> float:
    """Fleiss' kappa of an item-by-rater table (statsmodels' ``fleiss_kappa``).

    Parameters
    ----------
    ratings : array-like, shape (n_items, n_raters)
        The category each rater gave each item (any values; every rater rates
        every item).

    Returns
    -------
    float
        NaN when undefined (fewer than two categories, or no items).
    """
    from statsmodels.stats.inter_rater import fleiss_kappa as _fleiss

    categories, counts = _counts(ratings)
    if len(categories) < 2 or len(counts) == 0:
        return float("nan")
    if np.ptp(counts.sum(axis=1)) != 0:
        raise ValueError("Fleiss' kappa needs every rater to rate every item; use krippendorff_alpha for missing")
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(_fleiss(counts, method="fleiss"))


def krippendorff_alpha(ratings, level_of_measurement: str = "nominal") -> float:
    """Krippendorff's alpha of an item-by-rater table (the ``krippendorff`` package's ``alpha``).

    Parameters
    ----------
    ratings : array-like, shape (n_items, n_raters)
        Ratings; NaN (float tables) or None (object tables) is missing.
    level_of_measurement : str
        ``"nominal"`` for classes.

    Returns
    -------
    float
        NaN when undefined (fewer than two values, or no item rated twice).

    Notes
    -----
    Nominal alpha is computed from the per-item value counts, so category
    values need not be numbers; memory is O(items x values^2).
    """
    import krippendorff

    categories, counts = _counts(ratings)
    if len(categories) < 2 or not (counts.sum(axis=1) >= 2).any():
        return float("nan")
    # nominal distances only ask whether two values are equal, so the columns' positions stand for the values
    domain = np.arange(len(categories)) if level_of_measurement == "nominal" else categories.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = krippendorff.alpha(value_counts=counts, value_domain=domain, level_of_measurement=level_of_measurement)
    return float(alpha)


def _stack_masks(masks, ignore, step: int = 1) -> tuple[dict[str, Any], np.ndarray]:
    named = _named(masks)
    arrays = [_mask_array(m)[0] for m in named.values()]
    if len({a.shape for a in arrays}) > 1:
        raise ValueError(f"masks of different shapes: {sorted({a.shape for a in arrays})}")
    grid = (slice(None, None, int(step)),) * (arrays[0].ndim if arrays else 0)
    table = np.stack([a[grid].ravel() for a in arrays], axis=1)
    if ignore is not None:
        table = table[~np.isin(table, list(_codes(ignore))).any(axis=1)]
    return named, table


def mask_reader_agreement(masks, *, ignore=None, step: int = 1, **options) -> ReaderAgreement:
    """Pairwise mean Dice, Fleiss' kappa and Krippendorff's alpha of several readers' masks.

    Parameters
    ----------
    masks : mapping of str to mask, or sequence of LabelMask
        One semantic mask per reader (CoCaHis GT1...GT7), all the same shape.
    ignore : int or sequence of int, optional
        Codes whose pixels are left out: from kappa and alpha where any
        reader has one, from a pair's Dice where either of the two has one.
    step : int
        Kappa and alpha use every ``step``-th pixel along each axis (the
        pairwise Dice always uses every pixel); see Notes.
    **options
        Passed to :func:`mask_agreement` for the pairwise Dice
        (``classes``, ``background``).

    Returns
    -------
    ReaderAgreement
        Items are pixels; categories are the class codes seen.

    Notes
    -----
    ``krippendorff.alpha`` holds an items x values x values float array
    (512 bytes a pixel for 8 classes): for a large mask use ``step`` (4 for
    IGNITE's 3328 x 2560 ROIs), or a crop. ``items`` says how many pixels
    were rated.
    """
    named, table = _stack_masks(masks, ignore, step)
    matrix = pairwise(named, lambda x, y: mask_agreement(x, y, ignore=ignore, **options).mean_dice, "mean_dice")
    categories = tuple(str(c) for c in np.unique(table).tolist())
    return ReaderAgreement(tuple(named), matrix, fleiss_kappa(table), krippendorff_alpha(table), len(table), categories)


def majority_mask(masks, *, min_votes: int | None = None, fill: int | None = None) -> np.ndarray:
    """Per pixel, the class most readers gave, where enough of them gave it.

    Parameters
    ----------
    masks : mapping of str to mask, or sequence of masks
        Semantic masks of one shape.
    min_votes : int, optional
        Votes a class needs; default a strict majority, ``R // 2 + 1``.
    fill : int, optional
        Value of pixels without such a class, or with a tie; default the
        first mask's schema background, else 0.

    Returns
    -------
    ndarray of int, shape (H, W)
        The majority mask, dtype of the first mask.
    """
    arrays = [_mask_array(m) for m in _named(masks).values()]
    stack = np.stack([a for a, _ in arrays])
    schema = arrays[0][1]
    if fill is None:
        fill = schema.background if schema is not None and schema.background is not None else 0
    need = len(arrays) // 2 + 1 if min_votes is None else int(min_votes)
    codes = np.unique(stack)
    votes = np.stack([(stack == c).sum(axis=0) for c in codes])
    best = votes.argmax(axis=0)
    top = votes.max(axis=0)
    tie = (votes == top).sum(axis=0) > 1
    return np.where((top >= need) & ~tie, codes[best], fill).astype(stack.dtype)


def _point_table(point_sets, radius_um, pixel_size, radius_px, labels):
    named = _named(point_sets)
    objects = [_objects(p, "point") for p in named.values()]
    ndim = next((o[0].shape[1] for o in objects if o[0].size), 2)
    radius, scale, _, _ = _radius(radius_um, pixel_size, radius_px, ndim)
    members = cluster_points([o[0] for o in objects], radius, scale=scale)
    classes = np.full(members.shape, NOT_MARKED, dtype=object)
    for r, (_, cls, _, _) in enumerate(objects):
        marked = members[:, r] >= 0
        classes[marked, r] = cls[members[marked, r]]
    labels = _labels(labels, *((o[2], o[1]) for o in objects))
    return named, objects, members, classes, labels


def point_reader_agreement(
    point_sets, *, radius_um: float = DEFAULT_RADIUS_UM, pixel_size=None, radius_px=None, labels=None
) -> ReaderAgreement:
    """Pairwise detection F1, Fleiss' kappa and Krippendorff's alpha of several readers' points.

    Parameters
    ----------
    point_sets : mapping of str to PointSet, or sequence of PointSet
        One per reader (IGNITE P1...P6, R1...R4), points in pixels.
    radius_um, pixel_size, radius_px, labels
        As in :func:`point_agreement`.

    Returns
    -------
    ReaderAgreement
        Items are the clusters of :func:`napari_nsclc.review.matching.cluster_points`;
        a reader without a point in a cluster rates it :data:`NOT_MARKED`, so
        kappa and alpha measure detection and class together.
    """
    named, _, members, classes, _ = _point_table(point_sets, radius_um, pixel_size, radius_px, labels)
    options = {"radius_um": radius_um, "pixel_size": pixel_size, "radius_px": radius_px, "labels": labels}
    matrix = pairwise(named, lambda x, y: point_agreement(x, y, **options).detection["f1"], "detection_f1")
    table = classes.astype(str)
    categories = tuple(np.unique(table).tolist())
    return ReaderAgreement(tuple(named), matrix, fleiss_kappa(table), krippendorff_alpha(table), len(table), categories)


def majority_points(
    point_sets, *, radius_um: float = DEFAULT_RADIUS_UM, pixel_size=None, radius_px=None, labels=None,
    min_votes: int | None = None, name: str = "majority vote",
) -> PointSet:  # fmt: skip
    """The points a majority of readers marked, at their mean position, with the majority class.

    Parameters
    ----------
    point_sets : mapping of str to PointSet, or sequence of PointSet
        One per reader.
    radius_um, pixel_size, radius_px, labels
        As in :func:`point_agreement`; clusters as in
        :func:`napari_nsclc.review.matching.cluster_points`.
    min_votes : int, optional
        Readers that must have marked a cluster; default ``R // 2 + 1``.
    name : str
        The layer name of the result.

    Returns
    -------
    PointSet
        Coordinates in pixels (mean of the members). Class: the most frequent
        among the members; a tie goes to the class first in ``labels`` order.
        ``attributes[i]`` = ``{"votes", "readers", "class_votes"}``. The schema
        is the first PointSet's, else one made from ``labels``.
    """
    named, objects, members, classes, labels = _point_table(point_sets, radius_um, pixel_size, radius_px, labels)
    readers = list(named)
    need = len(readers) // 2 + 1 if min_votes is None else int(min_votes)
    rank = {label: k for k, label in enumerate(labels)}
    coords, names, attributes = [], [], []
    for k, row in enumerate(members):
        marked = np.flatnonzero(row >= 0)
        if len(marked) < need:
            continue
        coords.append(np.mean([objects[r][0][row[r]] for r in marked], axis=0))
        votes: dict[str, int] = {}
        for r in marked:
            votes[str(classes[k, r])] = votes.get(str(classes[k, r]), 0) + 1
        names.append(min(votes, key=lambda c: (-votes[c], rank.get(c, len(rank)), c)))
        attributes.append({"votes": len(marked), "readers": [readers[r] for r in marked], "class_votes": votes})
    first = next((p for p in named.values() if isinstance(p, PointSet)), None)
    schema = first.schema if first is not None else ClassSchema.from_names("majority", labels, background=None)
    ndim = objects[0][0].shape[1] if objects else 2
    return PointSet(name, np.reshape(coords, (-1, ndim)), names, schema, attributes)
