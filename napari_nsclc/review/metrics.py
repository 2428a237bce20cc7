"""Agreement between two annotators: label masks, points and boxes.

Plain numpy, scipy, scikit-learn, statsmodels and ``krippendorff``; no napari,
no Qt. The matching rules (radius, IoU, ties) are in
:mod:`napari_nsclc.review.matching`.

Conventions
-----------
* ``a`` is the reference and ``b`` the one compared with it: precision is
  "of ``b``'s objects, how many ``a`` has", recall "of ``a``'s, how many
  ``b`` found". Dice, IoU, F1 and kappa are symmetric.
* **Undefined is NaN**: a ratio whose numerator and denominator are both 0
  (the Dice of a class neither mask has, the precision of a class ``b``
  never marked, the F1 of two empty point sets) is NaN, not 1 or 0, so that
  it is told apart from real agreement and is left out of means (``mean_dice``
  is the mean over the classes either mask has). A class only one side has
  scores 0. F1 and Dice are ``2 TP / (2 TP + FP + FN)``, as scikit-learn's
  with ``zero_division=np.nan``.
* **Cohen's kappa** on matched pairs is NaN when it is undefined: no pairs, or
  every pair in one class on both sides (expected agreement 1; scikit-learn
  returns NaN there too). ``class_agreement`` (the fraction of pairs of the
  same class) is 1.0 in that case.
* Several readers (pairwise matrices, Fleiss' kappa, Krippendorff's alpha,
  majority votes) are in :mod:`napari_nsclc.review.multirater`.
* Every result has ``as_dict()``: plain dicts, lists, ints and floats, NaN
  as ``None``, ready for ``json.dumps(..., allow_nan=False)``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

import numpy as np

from ..model import BoxSet, ClassSchema, LabelMask, PointSet
from .matching import Matching, match_boxes, match_points

__all__ = [
    "DEFAULT_RADIUS_UM",
    "MaskAgreement",
    "Matching",
    "ObjectAgreement",
    "box_agreement",
    "mask_agreement",
    "point_agreement",
]

#: IGNITE's hit radius: 20 px at 0.5 µm/px.
DEFAULT_RADIUS_UM = 10.0
_UNITS_TO_UM = {"um": 1.0, "mm": 1000.0}


def _json(value):
    if is_dataclass(value):
        return {f.name: _json(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else float(value)
    return value


class _Jsonable:
    def as_dict(self) -> dict[str, Any]:
        """Plain dicts, lists and numbers, NaN as ``None``: ready for ``json.dumps``."""
        return _json(self)


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else float("nan")


def _nanmean(values) -> float:
    values = [v for v in values if not np.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


# --------------------------------------------------------------------------- masks


@dataclass(frozen=True)
class MaskAgreement(_Jsonable):
    """How two label masks agree.

    Attributes
    ----------
    per_class : dict of str to dict
        Per class name (background and ignored codes left out):
        ``{"dice", "iou", "a_pixels", "b_pixels", "overlap"}``; Dice and IoU
        NaN when neither mask has the class.
    mean_dice, mean_iou : float
        Means over the classes either mask has (NaN when there are none).
    pixels_changed : int
        Pixels whose value differs (ignored pixels left out).
    pixels_compared : int
        Pixels counted (all but the ignored ones).
    confusion : dict
        ``{"labels": [names], "matrix": [[pixels]]}``, rows ``a``, columns
        ``b``, every code either mask has (background included).
    """

    per_class: dict[str, dict[str, float]]
    mean_dice: float
    mean_iou: float
    pixels_changed: int
    pixels_compared: int
    confusion: dict[str, list]


def _mask_array(mask) -> tuple[np.ndarray, ClassSchema | None]:
    if isinstance(mask, LabelMask):
        if mask.kind != "semantic":
            raise ValueError(f"mask {mask.name!r} is an instance mask: compare semantic (class-code) masks")
        data = mask.data[0] if mask.multiscale else mask.data
        return np.asarray(data), mask.schema
    array = np.asarray(mask)
    if array.dtype.kind not in "iub":
        raise ValueError(f"a mask must hold integer class codes, got dtype {array.dtype}")
    return array, None


def _codes(values) -> set[int]:
    if values is None:
        return set()
    if isinstance(values, (int, np.integer)):
        return {int(values)}
    return {int(v) for v in values}


def mask_agreement(a, b, classes: Mapping[int, str] | None = None, *, background="auto", ignore=None) -> MaskAgreement:
    """Dice and IoU per class, and pixels changed, between two label masks.

    Parameters
    ----------
    a, b : LabelMask or array-like of int, shape (H, W) (or any equal shapes)
        Semantic masks, value = class code, in the same pixel grid. A
        multiscale mask is compared at its finest level.
    classes : mapping of int to str, optional
        Class name per code. Default: the mask's schema, else the codes
        themselves (``"1"``, ``"2"``...). Codes outside it are named
        ``"<value N>"``. Every named class gets a row, present or not.
    background : int, sequence of int, None or "auto"
        Codes left out of ``per_class`` (their pixels still count: background
        in ``a`` and tumour in ``b`` is a tumour pixel of ``b`` only).
        ``"auto"``: the schema's background, or 0 for arrays.
    ignore : int or sequence of int, optional
        Codes whose pixels (in either mask) are left out of everything, e.g.
        IGNITE's 0 "Unannotated".

    Returns
    -------
    MaskAgreement
    """
    data_a, schema_a = _mask_array(a)
    data_b, schema_b = _mask_array(b)
    if data_a.shape != data_b.shape:
        raise ValueError(f"masks of different shapes: {data_a.shape} and {data_b.shape}")
    schema = schema_a or schema_b
    names: dict[int, str] = {}
    for s in (schema_b, schema_a):
        names.update({c.code: c.name for c in s.classes} if s is not None and classes is None else {})
    names.update({int(k): str(v) for k, v in (classes or {}).items()})
    if background == "auto":
        background = schema.background if schema is not None else 0
    skipped = _codes(background) | _codes(ignore)
    data_a, data_b = data_a.ravel(), data_b.ravel()
    ignored = _codes(ignore)
    if ignored:
        keep = ~(np.isin(data_a, list(ignored)) | np.isin(data_b, list(ignored)))
        data_a, data_b = data_a[keep], data_b[keep]
    codes = np.union1d(np.unique(data_a), np.unique(data_b)).astype(np.int64)
    all_codes = np.union1d(codes, [c for c in names if c not in ignored]).astype(np.int64)
    k = len(all_codes)
    joint = np.bincount(
        np.searchsorted(all_codes, data_a) * k + np.searchsorted(all_codes, data_b), minlength=k * k
    ).reshape(k, k)

    def name(code: int) -> str:
        return names.get(code, f"<value {code}>" if names else str(code))

    per_class = {}
    for i, code in enumerate(all_codes.tolist()):
        if code in skipped:
            continue
        overlap, in_a, in_b = int(joint[i, i]), int(joint[i].sum()), int(joint[:, i].sum())
        per_class[name(code)] = {
            "dice": _ratio(2 * overlap, in_a + in_b),
            "iou": _ratio(overlap, in_a + in_b - overlap),
            "a_pixels": in_a,
            "b_pixels": in_b,
            "overlap": overlap,
        }
    present = [i for i, code in enumerate(all_codes.tolist()) if code in codes]
    return MaskAgreement(
        per_class=per_class,
        mean_dice=_nanmean([v["dice"] for v in per_class.values()]),
        mean_iou=_nanmean([v["iou"] for v in per_class.values()]),
        pixels_changed=int(joint.sum() - np.trace(joint)),
        pixels_compared=int(joint.sum()),
        confusion={
            "labels": [name(int(all_codes[i])) for i in present],
            "matrix": joint[np.ix_(present, present)].tolist(),
        },
    )


# --------------------------------------------------------------------------- points and boxes


@dataclass(frozen=True)
class ObjectAgreement(_Jsonable):
    """How two sets of points (or boxes) agree, after one-to-one matching.

    Attributes
    ----------
    matching : Matching
        The pairs and the unmatched objects (indices into ``a`` and ``b``).
    n_a, n_b : int
        Objects in ``a`` and ``b``.
    detection : dict
        Class-blind ``{"precision", "recall", "f1"}``: matched / n_b,
        matched / n_a, 2 matched / (n_a + n_b).
    per_class : dict of str to dict
        ``{"precision", "recall", "f1", "support", "tp", "fp", "fn"}`` per
        class: a true positive is a pair of that class on both sides; an
        unmatched object, or one paired with another class, is a false
        positive (``b``) or negative (``a``); support = objects of ``a``.
    confusion : dict
        ``{"labels": [names], "matrix": [[pairs]]}`` of the matched pairs,
        rows ``a``'s class, columns ``b``'s.
    kappa : float
        Cohen's kappa of the classes of the matched pairs (NaN if undefined).
    class_agreement : float
        Fraction of matched pairs of the same class (NaN without pairs).
    criterion : dict
        How pairs were made: ``{"radius_um", "pixel_size_um"}``,
        ``{"radius_px"}`` or ``{"iou_threshold", "matching": "greedy"}``.
    """

    matching: Matching
    n_a: int
    n_b: int
    detection: dict[str, float]
    per_class: dict[str, dict[str, float]]
    confusion: dict[str, list]
    kappa: float
    class_agreement: float
    criterion: dict[str, Any]

    @property
    def matched(self) -> int:
        return len(self.matching.pairs)

    @property
    def unmatched_a(self) -> int:
        return len(self.matching.only_a)

    @property
    def unmatched_b(self) -> int:
        return len(self.matching.only_b)

    def as_dict(self) -> dict[str, Any]:
        out = _json(self)
        out.update(matched=self.matched, unmatched_a=self.unmatched_a, unmatched_b=self.unmatched_b)
        return out


def _objects(obj, kind: str):
    """``(geometry, classes, schema names, planes)`` of a Point/BoxSet, a ``(geometry, classes)`` pair or an array."""
    if isinstance(obj, (PointSet, BoxSet)):
        geometry = obj.coords if isinstance(obj, PointSet) else obj.bounds
        return geometry, np.asarray(obj.classes, dtype=str), obj.schema.names, getattr(obj, "planes", None)
    if isinstance(obj, tuple) and len(obj) == 2 and np.ndim(obj[0]) == 2:
        geometry, classes = obj
        geometry = np.asarray(geometry, dtype=float)
        return geometry, np.asarray(list(classes), dtype=str).reshape(len(geometry)), [], None
    geometry = np.asarray(obj, dtype=float)
    if geometry.size == 0:
        geometry = geometry.reshape(0, 4 if kind == "box" else 2)
    return geometry, np.full(len(geometry), kind, dtype=object).astype(str), [], None


def _labels(labels, *sources) -> list[str]:
    if labels is not None:
        return [str(v) for v in labels]
    found = dict.fromkeys(n for names, _ in sources for n in names)
    extra = sorted({str(c) for _, classes in sources for c in classes} - set(found))
    return [*found, *extra]


def _cohen_kappa(y_a, y_b, labels) -> float:
    from sklearn.metrics import cohen_kappa_score

    if len(y_a) == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined kappa: NaN, as documented
        return float(cohen_kappa_score(y_a, y_b, labels=labels, replace_undefined_by=np.nan))


def _object_agreement(matching: Matching, classes_a, classes_b, labels, criterion) -> ObjectAgreement:
    from sklearn.metrics import confusion_matrix

    n_a, n_b, m = len(classes_a), len(classes_b), len(matching.pairs)
    ia = np.array([i for i, _ in matching.pairs], dtype=int)
    ib = np.array([j for _, j in matching.pairs], dtype=int)
    y_a, y_b = classes_a[ia], classes_b[ib]
    confusion = np.zeros((len(labels), len(labels)), dtype=int)
    if m:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "a single label was found": labels= already fixes the shape
            confusion = confusion_matrix(y_a, y_b, labels=labels)
    per_class = {}
    for k, label in enumerate(labels):
        tp = int(confusion[k, k])
        in_a, in_b = int((classes_a == label).sum()), int((classes_b == label).sum())
        fp, fn = in_b - tp, in_a - tp
        per_class[label] = {
            "precision": _ratio(tp, in_b),
            "recall": _ratio(tp, in_a),
            "f1": _ratio(2 * tp, 2 * tp + fp + fn),
            "support": in_a,
            "tp": tp,
            "fp": fp,
            "fn": fn,
        }
    return ObjectAgreement(
        matching=matching,
        n_a=n_a,
        n_b=n_b,
        detection={"precision": _ratio(m, n_b), "recall": _ratio(m, n_a), "f1": _ratio(2 * m, n_a + n_b)},
        per_class=per_class,
        confusion={"labels": list(labels), "matrix": confusion.tolist()},
        kappa=_cohen_kappa(y_a, y_b, labels),
        class_agreement=_ratio(int((y_a == y_b).sum()), m),
        criterion=criterion,
    )


def _um_per_px(pixel_size, ndim: int) -> np.ndarray:
    if pixel_size is None:
        raise ValueError("pixel_size (µm per pixel) is needed to use a radius in µm; or give radius_px")
    image = getattr(pixel_size, "image", pixel_size)  # a Case, an ImageRef or numbers
    if hasattr(image, "pixel_size"):
        unit = getattr(image, "unit", "um")
        if unit not in _UNITS_TO_UM:
            raise ValueError(f"the image's pixel size is in {unit!r}, not a length: give pixel_size in µm/px")
        size = np.asarray(image.pixel_size, dtype=float) * _UNITS_TO_UM[unit]
    else:
        size = np.asarray(pixel_size, dtype=float).reshape(-1)
    if size.size == 1:
        size = np.repeat(size, ndim)
    if size.size < ndim or not np.all(size > 0):
        raise ValueError(f"pixel_size {size.tolist()} does not fit {ndim}-D points")
    return size[-ndim:]


def _radius(radius_um, pixel_size, radius_px, ndim) -> tuple[float, np.ndarray, str, dict]:
    if radius_px is not None:
        return float(radius_px), np.ones(ndim), "distance_px", {"radius_px": float(radius_px)}
    scale = _um_per_px(pixel_size, ndim)
    criterion = {"radius_um": float(radius_um), "pixel_size_um": scale.tolist()}
    return float(radius_um), scale, "distance_um", criterion


def point_agreement(
    a, b, *, radius_um: float = DEFAULT_RADIUS_UM, pixel_size=None, radius_px: float | None = None, labels=None
) -> ObjectAgreement:
    """Match two point sets one-to-one within a hit radius, then score detection and classes.

    Parameters
    ----------
    a, b : PointSet, (coords, classes) or array-like of float, shape (N, D)
        Points ``(y, x)`` (or ``(z, y, x)``) in pixels; a bare array is one
        class, ``"point"``.
    radius_um : float
        Hit radius in µm (inclusive), default 10 µm as IGNITE.
    pixel_size : float, sequence of float, ImageRef or Case
        µm per pixel (per axis); an ImageRef/Case in mm is converted. Needed
        unless ``radius_px`` is given.
    radius_px : float, optional
        Hit radius in pixels instead (``pixel_size`` is then not used).
    labels : sequence of str, optional
        The classes, in order (objects of other classes still count for
        ``detection`` but get no row). Default: ``a``'s then ``b``'s schema,
        then any other class seen, sorted.

    Returns
    -------
    ObjectAgreement
        Pair scores are distances in µm (or px with ``radius_px``). The
        matching is maximal, then of least total distance (see
        :mod:`~napari_nsclc.review.matching` for ties).
    """
    coords_a, classes_a, names_a, _ = _objects(a, "point")
    coords_b, classes_b, names_b, _ = _objects(b, "point")
    ndim = coords_a.shape[1] if coords_a.size else coords_b.shape[1] if coords_b.size else 2
    radius, scale, score, criterion = _radius(radius_um, pixel_size, radius_px, ndim)
    matching = match_points(coords_a, coords_b, radius, scale=scale, score=score)
    labels = _labels(labels, (names_a, classes_a), (names_b, classes_b))
    return _object_agreement(matching, classes_a, classes_b, labels, criterion)


def box_agreement(a, b, *, iou_threshold: float = 0.5, labels=None) -> ObjectAgreement:
    """Match two box sets one-to-one at an IoU threshold (greedy by IoU), then score detection and classes.

    Parameters
    ----------
    a, b : BoxSet, (bounds, classes) or array-like of float, shape (N, 4)
        ``(ymin, xmin, ymax, xmax)`` in pixels; a BoxSet's ``planes`` keep
        boxes of different slices apart.
    iou_threshold : float
        Smallest IoU of a pair, inclusive.
    labels : sequence of str, optional
        As in :func:`point_agreement`.

    Returns
    -------
    ObjectAgreement
        Pair scores are IoUs.
    """
    bounds_a, classes_a, names_a, planes_a = _objects(a, "box")
    bounds_b, classes_b, names_b, planes_b = _objects(b, "box")
    matching = match_boxes(bounds_a, bounds_b, iou_threshold, planes_a=planes_a, planes_b=planes_b)
    labels = _labels(labels, (names_a, classes_a), (names_b, classes_b))
    criterion = {"iou_threshold": float(iou_threshold), "matching": "greedy"}
    return _object_agreement(matching, classes_a, classes_b, labels, criterion)
