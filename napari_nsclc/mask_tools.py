"""Edits of one class of a label mask: fill holes, remove islands, open, close, replace in a polygon.

Plain numpy and scikit-image, no napari, no Qt. Every function takes a 2-D
integer label array whose values are class codes and returns a new array of the
same shape and dtype; the input is never changed. Only pixels of the class
acted on, or of the background, change. :func:`changed_pixels` turns a result
into the ``(indices, values)`` pair that napari's ``Labels.data_setitem``
records as one undo step.

Connectivity follows :mod:`napari_nsclc.geometry`: a class region is
8-connected, so the background around and inside it is 4-connected.
"""

from __future__ import annotations

import numpy as np
from skimage.draw import polygon2mask
from skimage.measure import label as connected_components
from skimage.morphology import closing, disk, opening, remove_small_objects
from skimage.segmentation import clear_border

__all__ = ["changed_pixels", "close_class", "fill_holes", "open_class", "remove_islands", "replace_in_polygon"]


def _checked(labels) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype.kind not in "iu":
        raise ValueError(f"expected a 2-D integer label array, got {labels.ndim}-D {labels.dtype}")
    return labels


def fill_holes(labels, code: int, background: int = 0) -> np.ndarray:
    """Give class ``code`` to the background pixels it fully encloses.

    A hole is a 4-connected region of pixels that are not ``code`` and do not
    touch the array's edge. Only its background pixels are filled; pixels of
    other classes inside it keep their class.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Class codes.
    code : int
        The class whose holes are filled.
    background : int
        The code of unannotated pixels.

    Returns
    -------
    ndarray, shape (H, W), same dtype as ``labels``
    """
    labels = _checked(labels)
    holes = clear_border(connected_components(labels != code, connectivity=1)) > 0
    out = labels.copy()
    out[holes & (labels == background)] = code
    return out


def remove_islands(labels, code: int, min_area_um2: float, pixel_size_um, background: int = 0) -> np.ndarray:
    """Make the 8-connected regions of ``code`` smaller than an area background.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Class codes.
    code : int
        The class whose islands are removed.
    min_area_um2 : float
        Regions whose area is strictly smaller than this, in µm², are removed.
    pixel_size_um : (float, float)
        Pixel size ``(dy, dx)`` in µm. Pass ``(1, 1)`` to give the area in px².
    background : int
        The code removed pixels get.

    Returns
    -------
    ndarray, shape (H, W), same dtype as ``labels``
    """
    labels = _checked(labels)
    dy, dx = (float(v) for v in pixel_size_um)
    min_area_px = float(min_area_um2) / (dy * dx)
    largest_removed = int(np.ceil(min_area_px)) - 1  # "smaller than" in whole pixels
    out = labels.copy()
    if largest_removed < 1:
        return out
    mask = labels == code
    kept = _remove_small(mask, largest_removed)
    out[mask & ~kept] = background
    return out


def _remove_small(mask: np.ndarray, max_size: int) -> np.ndarray:
    """Components of ``mask`` larger than ``max_size`` pixels."""
    try:
        return remove_small_objects(mask, max_size=max_size, connectivity=2)
    except TypeError:  # scikit-image < 0.26 names it min_size and removes strictly smaller
        return remove_small_objects(mask, min_size=max_size + 1, connectivity=2)


def open_class(labels, code: int, radius_px: int, background: int = 0) -> np.ndarray:
    """Binary opening of ``code`` by a disk: spurs and specks narrower than the disk become background.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Class codes.
    code : int
        The class opened.
    radius_px : int
        Radius of the disk footprint, in pixels; 0 changes nothing.
    background : int
        The code removed pixels get.

    Returns
    -------
    ndarray, shape (H, W), same dtype as ``labels``
    """
    labels = _checked(labels)
    out = labels.copy()
    if radius_px < 1:
        return out
    mask = labels == code
    out[mask & ~opening(mask, disk(int(radius_px)))] = background
    return out


def close_class(labels, code: int, radius_px: int, background: int = 0) -> np.ndarray:
    """Binary closing of ``code`` by a disk: gaps narrower than the disk are filled.

    Only background pixels become ``code``; other classes in a gap keep their class.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Class codes.
    code : int
        The class closed.
    radius_px : int
        Radius of the disk footprint, in pixels; 0 changes nothing.
    background : int
        The code of pixels that may be filled.

    Returns
    -------
    ndarray, shape (H, W), same dtype as ``labels``
    """
    labels = _checked(labels)
    out = labels.copy()
    if radius_px < 1:
        return out
    closed = closing(labels == code, disk(int(radius_px)))
    out[closed & (labels == background)] = code
    return out


def replace_in_polygon(labels, polygon_yx, from_code: int, to_code: int) -> np.ndarray:
    """Change class ``from_code`` to ``to_code`` inside a polygon.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Class codes.
    polygon_yx : array-like of float, shape (K, 2)
        Vertices as ``(row, col)`` in pixel coordinates of ``labels`` (pixel
        ``(r, c)`` is centred on ``(r, c)``). Pixels whose centre is inside change.
    from_code, to_code : int
        The class replaced and the class it becomes.

    Returns
    -------
    ndarray, shape (H, W), same dtype as ``labels``
    """
    labels = _checked(labels)
    polygon_yx = np.asarray(polygon_yx, dtype=float)
    if polygon_yx.ndim != 2 or polygon_yx.shape[1] != 2:
        raise ValueError(f"expected polygon vertices of shape (K, 2), got {polygon_yx.shape}")
    out = labels.copy()
    out[polygon2mask(labels.shape, polygon_yx) & (labels == from_code)] = to_code
    return out


def changed_pixels(before, after) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Where ``after`` differs from ``before``, and its values there.

    Parameters
    ----------
    before, after : ndarray, same shape (any number of dims)

    Returns
    -------
    indices : tuple of ndarray of int
        One index array per axis, as from :func:`numpy.nonzero`.
    values : ndarray, shape (N,)
        ``after[indices]``, in ``after``'s dtype.
    """
    before, after = np.asarray(before), np.asarray(after)
    if before.shape != after.shape:
        raise ValueError(f"shapes differ: {before.shape} and {after.shape}")
    indices = np.nonzero(before != after)
    return indices, after[indices]
