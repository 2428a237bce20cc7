"""NuCLS masks' instance encoding: each nucleus is a pair of values in channels 1 and 2.

Instances are numbered in ``itertools.combinations(range(1, 256), 2)`` order,
so the pair, not ``ch1 * ch2``, is the key (the product repeats after the
254th object). Channel 0 holds the class code, and :data:`FOV_CODE` marks the
field of view. Split out of :mod:`.nucls`, which re-exports every name here.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

__all__ = ["FOV_CODE", "MAX_INSTANCES", "decode_mask", "encode_mask", "instance_id_of_pair", "pair_of_instance_id"]

#: Channel 0's code for the field of view (no nucleus).
FOV_CODE = 253
#: How many instances the (ch1, ch2) pair encoding can hold: C(255, 2).
MAX_INSTANCES = 255 * 254 // 2
#: The class code of a nucleus ``codes`` does not name: NuCLS's ``unlabeled`` (nucleus_GTcodes.csv).
UNLABELED_CODE = 99


def instance_id_of_pair(first, second):
    """1-based position of ``(first, second)`` in ``combinations(range(1, 256), 2)``; 0 if invalid.

    Works elementwise on arrays.
    """
    a = np.asarray(first, dtype=np.int64)
    b = np.asarray(second, dtype=np.int64)
    ids = (a - 1) * 255 - (a - 1) * a // 2 + (b - a)
    return np.where((a >= 1) & (b > a) & (b <= 255), ids, 0)


_PAIRS = np.array(list(combinations(range(1, 256), 2)), dtype=np.uint8)


def pair_of_instance_id(ids) -> np.ndarray:
    """``(ch1, ch2)`` of 1-based instance ids, shape ``ids.shape + (2,)``."""
    ids = np.asarray(ids, dtype=np.int64)
    if ids.size and (ids.min() < 1 or ids.max() > MAX_INSTANCES):
        raise ValueError(f"NuCLS masks hold instance ids 1..{MAX_INSTANCES}")
    return _PAIRS[ids - 1]


def decode_mask(mask: np.ndarray) -> tuple[np.ndarray, dict[int, int], np.ndarray, np.ndarray]:
    """Split a NuCLS mask into instances, their codes, classes and the FOV.

    Parameters
    ----------
    mask : ndarray of uint8, shape (H, W, 3) or (H, W, 4)
        ch0 = class code (253 = FOV, 0 = outside), (ch1, ch2) = instance pair.

    Returns
    -------
    instances : ndarray of int32, shape (H, W)
        Instance id per pixel (0 = none).
    codes : dict of int to int
        ch0 class code of each instance (the most frequent one).
    classes : ndarray of uint8, shape (H, W)
        Class code per nucleus pixel, 0 elsewhere.
    fov : ndarray of uint8, shape (H, W)
        253 inside the FOV (nuclei included), 0 outside.
    """
    mask = np.asarray(mask)
    if mask.ndim != 3 or mask.shape[2] < 3:
        raise ValueError(f"a NuCLS mask has 3 or 4 channels, this one has shape {mask.shape}")
    code = mask[..., 0]
    nucleus = (code != 0) & (code != FOV_CODE)
    instances = np.where(nucleus, instance_id_of_pair(mask[..., 1], mask[..., 2]), 0).astype(np.int32)
    classes = np.where(nucleus, code, 0).astype(np.uint8)
    fov = np.where(code != 0, FOV_CODE, 0).astype(np.uint8)
    codes: dict[int, int] = {}
    keyed = instances[instances > 0]
    if keyed.size:
        pairs, counts = np.unique(np.stack([keyed, code[instances > 0]]), axis=1, return_counts=True)
        order = np.argsort(counts, kind="stable")
        for (instance_id, value) in pairs.T[order].tolist():
            codes[instance_id] = value  # the most frequent code is written last
    return instances, codes, classes, fov


def encode_mask(instances: np.ndarray, codes: dict[int, int], fov: np.ndarray | None = None, channels: int = 3):
    """A NuCLS mask from instance ids, their class codes and the FOV region.

    Parameters
    ----------
    instances : ndarray of int, shape (H, W)
        1-based instance ids, 0 = no nucleus.
    codes : dict of int to int
        Class code of each instance id.
    fov : ndarray, shape (H, W), optional
        Non-zero inside the FOV; default: the whole image.
    channels : {3, 4}
        4 adds an opaque alpha channel.

    Returns
    -------
    ndarray of uint8, shape (H, W, channels)
    """
    instances = np.asarray(instances)
    out = np.zeros((*instances.shape, channels), dtype=np.uint8)
    inside = np.ones(instances.shape, bool) if fov is None else np.asarray(fov) != 0
    out[..., 0] = np.where(inside, FOV_CODE, 0)
    ids = np.unique(instances[instances > 0])
    if ids.size:
        lookup = np.zeros(int(ids.max()) + 1, dtype=np.uint8)
        for instance_id in ids.tolist():
            lookup[instance_id] = codes.get(instance_id, UNLABELED_CODE)
        pairs = np.zeros((int(ids.max()) + 1, 2), dtype=np.uint8)
        pairs[ids] = pair_of_instance_id(ids)
        nucleus = instances > 0
        out[..., 0][nucleus] = lookup[instances[nucleus]]
        out[..., 1][nucleus] = pairs[instances[nucleus], 0]
        out[..., 2][nucleus] = pairs[instances[nucleus], 1]
    if channels == 4:
        out[..., 3] = 255
    return out
