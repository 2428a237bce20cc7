"""Augmentation families: images that are flipped, mirrored or rotated copies of one another.

NSCLC-NAT ships flipped and mirrored copies of its cases (FORMATS.md §1); a
copy in the test split of an image trained on inflates every score. Each image
gets a perceptual hash (:func:`imagehash.phash`, not a home-made one) of every
one of the 8 transforms of the dihedral group (4 rotations by 90°, each
mirrored or not) of a small grey thumbnail. Two images are compared by the
smallest Hamming distance between one's untransformed hash and the other's 8,
so the distance does not change when either image is flipped or rotated by
90°. Images within :data:`MAX_DISTANCE` bits are linked; a family is a
connected group of at least two images.

:func:`fingerprint` is a pure function of one image (a path or an array), so
it can be mapped over a Dask cluster; :func:`group_families` is the reduce
step over all fingerprints. No napari or Qt import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import imageio

__all__ = [
    "HASH_SIZE",
    "MAX_DISTANCE",
    "Family",
    "dihedral_hashes",
    "distance",
    "fingerprint",
    "group_families",
    "split_conflicts",
    "thumbnail",
]

#: Side of the perceptual hash: 16 x 16 = 256 bits.
HASH_SIZE = 16
#: Side of the grey thumbnail hashed, in pixels (what :func:`imagehash.phash` resizes to anyway).
THUMBNAIL = HASH_SIZE * 4
#: Largest Hamming distance, in bits of 256, between two members of one family. Measured on the 55
#: real NSCLC-NAT thumbnails of the dataset's preview sheet: flipped, rotated, rescaled and
#: JPEG-compressed copies are within 4 bits of their original, two different slides at least 22 apart.
MAX_DISTANCE = 12
#: Images larger than this (pixels) are whole slides, not hashed.
MAX_PIXELS = 1 << 26
_PIL_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def thumbnail(source: str | Path | np.ndarray, size: int = THUMBNAIL) -> np.ndarray:
    """A grey square thumbnail of an image.

    Parameters
    ----------
    source : path or ndarray
        An image file (PNG, JPEG, BMP, GIF, TIFF) or its pixels, ``(H, W)``
        or ``(H, W, C)``.
    size : int
        Side of the thumbnail, in pixels.

    Returns
    -------
    ndarray of uint8, shape (size, size)
        Luminance, resampled with a symmetric (Lanczos) filter, so that the
        thumbnail of a flipped image is the flipped thumbnail.

    Raises
    ------
    NsclcFormatError
        Naming the file, when it cannot be decoded.
    """
    from PIL import Image

    if isinstance(source, np.ndarray):
        image = Image.fromarray(_as_uint8(source))
    elif Path(source).suffix.lower() in _PIL_SUFFIXES:
        image = _open_with_pil(Path(source))
    else:  # TIFF and the rest: the project's reader, with its limits and modes
        image = Image.fromarray(_as_uint8(imageio.read_pixels(source)[0]))
    grey = image.convert("L").resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(grey, dtype=np.uint8)


def _open_with_pil(path: Path):
    return imageio.read_reduced(path, THUMBNAIL * 4)  # a JPEG decodes at a reduced scale


def _as_uint8(pixels: np.ndarray) -> np.ndarray:
    pixels = np.asarray(pixels)
    if pixels.ndim == 3 and pixels.shape[-1] not in (3, 4):
        pixels = pixels[..., 0]
    if pixels.ndim == 3 and pixels.shape[-1] == 4:
        pixels = pixels[..., :3]
    if pixels.dtype == np.uint8:
        return np.ascontiguousarray(pixels)
    low, high = float(np.min(pixels)), float(np.max(pixels))
    scaled = (pixels.astype(float) - low) / (high - low or 1.0) * 255
    return np.ascontiguousarray(scaled.astype(np.uint8))


def dihedral_hashes(grey: np.ndarray, hash_size: int = HASH_SIZE) -> np.ndarray:
    """Perceptual hashes of the 8 flips and 90° rotations of a thumbnail.

    Parameters
    ----------
    grey : ndarray of uint8, shape (S, S)
        A :func:`thumbnail`.
    hash_size : int
        Side of each hash, in bits.

    Returns
    -------
    ndarray of uint8, shape (8, hash_size**2 // 8)
        Row 0 is the hash of ``grey`` itself, then rotations by 90°, 180°,
        270°, each followed by its mirror image; bits packed with
        :func:`numpy.packbits`.
    """
    import imagehash
    from PIL import Image

    rows = []
    for turns in range(4):
        rotated = np.rot90(grey, turns)
        for mirrored in (rotated, rotated[:, ::-1]):
            digest = imagehash.phash(Image.fromarray(np.ascontiguousarray(mirrored)), hash_size=hash_size)
            rows.append(np.packbits(np.asarray(digest.hash, dtype=bool).ravel()))
    return np.stack(rows)


def fingerprint(source: str | Path | np.ndarray) -> np.ndarray:
    """:func:`dihedral_hashes` of :func:`thumbnail`: a pure function of one image, shape (8, 32) uint8."""
    return dihedral_hashes(thumbnail(source))


def _popcount(values: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(values)
    table = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
    return table[values]


def distance(first: np.ndarray, second: np.ndarray) -> int:
    """Flip- and rotation-invariant Hamming distance of two fingerprints, in bits."""
    one = _popcount(first[0][None] ^ second).sum(axis=1).min()
    other = _popcount(second[0][None] ^ first).sum(axis=1).min()
    return int(min(one, other))


def _distances_to(fingerprints: np.ndarray, index: int) -> np.ndarray:
    """Distances of fingerprint ``index`` to all later ones, shape (N - index - 1,)."""
    own = fingerprints[index]
    later = fingerprints[index + 1 :]
    one = _popcount(own[0][None, None] ^ later).sum(axis=2).min(axis=1)
    other = _popcount(later[:, :1] ^ own[None]).sum(axis=2).min(axis=1)
    return np.minimum(one, other)


@dataclass
class Family:
    """Images that are copies of one another under flips and 90° rotations.

    Attributes
    ----------
    members : list of str
        Their keys (case names), in dataset order.
    files : list of str
        Their image files, in the same order.
    splits : list of dict of str to str
        Each member's split per fold (``{"": "train"}``, or NuCLS's
        ``{"fold_1": "test", ...}``); empty when the dataset has no splits.
    distance : int
        The largest distance of a member to the one it was linked to, in bits.
    """

    members: list[str]
    files: list[str]
    splits: list[dict[str, str]] = field(default_factory=list)
    distance: int = 0

    def as_dict(self) -> dict:
        """JSON-ready: members, files, splits, distance and the folds it is split across."""
        return {"members": self.members, "files": self.files, "splits": self.splits, "distance": self.distance,
                "split_across": split_conflicts(self.splits)}  # fmt: skip


def group_families(
    keys: Sequence[str], fingerprints: Sequence[np.ndarray], max_distance: int = MAX_DISTANCE
) -> list[tuple[list[int], int]]:
    """Groups of at least two images within ``max_distance`` of one another (single linkage).

    Parameters
    ----------
    keys : sequence of str, length N
        A name per image (only counted; the result gives indices).
    fingerprints : sequence of ndarray, each (8, B) uint8
        :func:`fingerprint` of each image.
    max_distance : int
        Largest Hamming distance, in bits, that links two images.

    Returns
    -------
    list of (list of int, int)
        Per family the indices of its members in ascending order and the
        largest linking distance, families in order of their first member.
    """
    count = len(keys)
    if count < 2:
        return []
    stacked = np.stack(list(fingerprints))
    parent = list(range(count))
    link = [0] * count

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for index in range(count - 1):
        distances = _distances_to(stacked, index)
        near = np.nonzero(distances <= max_distance)[0]
        for offset, found in zip(near.tolist(), distances[near].tolist(), strict=True):
            other = index + 1 + offset
            a, b = root(index), root(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
            link[other] = max(link[other], int(found))
    groups: dict[int, list[int]] = {}
    for index in range(count):
        groups.setdefault(root(index), []).append(index)
    return [(members, max(link[m] for m in members)) for _, members in sorted(groups.items()) if len(members) > 1]


def split_conflicts(splits: Sequence[Mapping[str, str]]) -> dict[str, list[str]]:
    """The folds in which members of one family sit in different splits.

    Parameters
    ----------
    splits : sequence of mapping of str to str
        Per member, its split per fold (``""`` for a dataset with one split).

    Returns
    -------
    dict of str to list of str
        ``{fold: sorted distinct splits}`` for every fold with more than one;
        members without a split in a fold are left out of it.
    """
    folds: dict[str, set[str]] = {}
    for member in splits:
        for fold, role in member.items():
            if role:
                folds.setdefault(fold, set()).add(role)
    return {fold: sorted(roles) for fold, roles in sorted(folds.items()) if len(roles) > 1}
