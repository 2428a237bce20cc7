"""COCO run-length encoding, compatible with ``pycocotools.mask``, in pure numpy.

A mask of shape ``(H, W)`` is read in **column-major** (Fortran) order and cut
into runs that alternate background, foreground, background, ..., starting
with background (a leading 0 when the first pixel is foreground). The
*compressed* form writes the run lengths as a string: from the fourth run on,
each length is replaced by its difference from the run two before it, and
every value is cut into 5-bit groups, least significant first, each stored as
``chr(48 + group)`` with bit 0x20 set when more groups follow (the last group
carries the sign in bit 0x10). This is exactly ``maskApi.c``'s
``rleToString``/``rleFrString``, vectorised so that no Python loop runs per
run.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = [
    "area",
    "counts_to_string",
    "decode",
    "encode",
    "encode_window",
    "run_lengths",
    "string_to_counts",
    "to_bbox",
]

# Enough 5-bit groups for any run length of a mask that fits in memory (< 2**60 pixels).
_MAX_GROUPS = 13


def run_lengths(mask: np.ndarray) -> np.ndarray:
    """Column-major run lengths of a 2-D mask, starting with a background run.

    Parameters
    ----------
    mask : ndarray, shape (H, W)
        Non-zero pixels are foreground.

    Returns
    -------
    ndarray of int64
        Alternating background/foreground run lengths, summing to ``H * W``.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {mask.shape}")
    height, width = mask.shape
    size = mask.size
    if size == 0:
        return np.zeros(0, np.int64)
    binary = mask if mask.dtype == bool else mask != 0
    # Column-major order without transposing the mask: a run changes at
    # pixel (r, c) inside a column when it differs from the pixel above,
    # and at the top of column c when it differs from the bottom of c - 1.
    rows, cols = np.divmod(np.flatnonzero(binary[1:, :] != binary[:-1, :]), width)
    inside = cols * height + rows + 1
    tops = np.flatnonzero(binary[0, 1:] != binary[-1, :-1]) + 1
    changes = np.sort(np.concatenate([inside, tops * height]))
    head = [0] if binary[0, 0] == 0 else [0, 0]
    boundaries = np.concatenate([head, changes, [size]])
    return np.diff(boundaries).astype(np.int64)


def counts_to_string(counts: np.ndarray) -> str:
    """Compress run lengths into COCO's string form (``maskApi.c: rleToString``)."""
    counts = np.asarray(counts, dtype=np.int64)
    if counts.size == 0:
        return ""
    values = counts.copy()
    values[3:] -= counts[1:-2]
    # groups[k, g] = 5-bit group g of value k (arithmetic shift keeps the sign);
    # the sign needs one bit more than the magnitude.
    n_max = min(_MAX_GROUPS, (int(np.abs(values).max()).bit_length() + 1) // 5 + 1)
    shifts = 5 * np.arange(n_max, dtype=np.int64)
    shifted = values[:, None] >> shifts[None, :]
    groups = shifted & 0x1F
    rest = shifted >> 5  # what remains after emitting group g
    more = np.where(groups & 0x10, rest != -1, rest != 0)
    # A value is written up to and including its first group with no "more".
    n_groups = np.argmin(more, axis=1) + 1
    used = np.arange(n_max)[None, :] < n_groups[:, None]
    chars = groups + 48
    chars[more & used] += 0x20
    return chars[used].astype(np.uint8).tobytes().decode("ascii")


def string_to_counts(text: str | bytes) -> np.ndarray:
    """Decode COCO's compressed string into run lengths (``maskApi.c: rleFrString``)."""
    raw = np.frombuffer(text.encode("ascii") if isinstance(text, str) else bytes(text), dtype=np.uint8)
    if raw.size == 0:
        return np.zeros(0, np.int64)
    codes = raw.astype(np.int64) - 48
    if (codes < 0).any() or (codes > 63).any():
        raise ValueError("RLE counts contain characters outside COCO's alphabet")
    ends = (codes & 0x20) == 0
    if not ends[-1]:
        raise ValueError("RLE counts end in the middle of a number")
    value_id = np.concatenate(([0], np.cumsum(ends)[:-1]))
    starts = np.flatnonzero(np.concatenate(([True], ends[:-1])))
    position = np.arange(raw.size) - starts[value_id]
    values = np.zeros(int(ends.sum()), np.int64)
    np.add.at(values, value_id, (codes & 0x1F) << (5 * position))
    last = np.flatnonzero(ends)
    negative = (codes[last] & 0x10) != 0
    values[negative] |= -1 << (5 * (position[last][negative] + 1))
    # Undo the differences: from index 3 on, each count adds the one two places
    # before, so odd counts and even counts from index 2 are running sums.
    counts = values.copy()
    counts[1::2] = np.cumsum(values[1::2])
    counts[2::2] = np.cumsum(values[2::2])
    return counts


def encode(mask: np.ndarray) -> dict:
    """Encode a 2-D mask as compressed COCO RLE.

    Parameters
    ----------
    mask : ndarray of bool or uint8, shape (H, W)
        Non-zero pixels are foreground; any memory order is accepted.

    Returns
    -------
    dict
        ``{"size": [H, W], "counts": str}``, equal to
        ``pycocotools.mask.encode(np.asfortranarray(mask))`` with its
        ``counts`` decoded from bytes to str.
    """
    mask = np.asarray(mask)
    counts = run_lengths(mask)
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts_to_string(counts)}


def encode_window(window: np.ndarray, offset: tuple[int, int], shape: tuple[int, int]) -> dict:
    """Encode a mask that is zero outside a window, given only the window.

    Parameters
    ----------
    window : ndarray, shape (h, w)
        The pixels inside the window (non-zero = foreground).
    offset : tuple of int
        ``(row, col)`` of the window's top-left pixel in the full mask.
    shape : tuple of int
        ``(H, W)`` of the full mask.

    Returns
    -------
    dict
        Exactly ``encode(full_mask)``, without building the full mask, so
        that a small object of a large image costs what its box costs.
    """
    height, width = (int(v) for v in shape)
    row0, col0 = (int(v) for v in offset)
    window = np.asarray(window).astype(bool, copy=False)
    h, w = window.shape
    if row0 < 0 or col0 < 0 or row0 + h > height or col0 + w > width:
        raise ValueError(f"window {window.shape} at {offset} does not fit in {shape}")
    framed = np.zeros((h + 2, w), bool)
    framed[1:-1] = window
    rows, cols = np.divmod(np.flatnonzero(framed[1:] != framed[:-1]), w)
    positions = (col0 + cols) * height + row0 + rows
    # A run that leaves the bottom of one column and enters the top of the next
    # changes nothing: such positions come in pairs, which cancel.
    values, multiplicity = np.unique(positions, return_counts=True)
    changes = values[(multiplicity % 2 == 1) & (values < height * width)]  # the mask's end is no change
    counts = np.diff(np.concatenate(([0], changes, [height * width]))).astype(np.int64)
    return {"size": [height, width], "counts": counts_to_string(counts)}


def _counts(rle: Mapping) -> np.ndarray:
    if "counts" not in rle or "size" not in rle:
        raise ValueError("an RLE needs both 'size' and 'counts'")
    counts = rle["counts"]
    if isinstance(counts, (str, bytes, bytearray)):
        counts = string_to_counts(counts)
    else:
        counts = np.asarray(counts, dtype=np.int64).ravel()
    height, width = (int(v) for v in rle["size"])
    if (counts < 0).any():
        raise ValueError("RLE has a negative run length")
    if int(counts.sum()) != height * width:
        raise ValueError(f"RLE runs cover {int(counts.sum())} pixels but size {height}x{width} has {height * width}")
    return counts


def decode(rle: Mapping) -> np.ndarray:
    """Decode a COCO RLE (compressed str/bytes or uncompressed int list) to a mask.

    Returns
    -------
    ndarray of uint8, shape (H, W)
        1 for foreground, 0 elsewhere; C-contiguous.

    Raises
    ------
    ValueError
        When the runs do not cover ``size`` exactly or the string is corrupt.
    """
    counts = _counts(rle)
    height, width = (int(v) for v in rle["size"])
    values = np.zeros(counts.size, np.uint8)
    values[1::2] = 1
    flat = np.repeat(values, counts)
    return np.ascontiguousarray(flat.reshape(width, height).T)


def area(rle: Mapping) -> int:
    """Number of foreground pixels of an RLE."""
    return int(_counts(rle)[1::2].sum())


def to_bbox(rle: Mapping) -> list[float]:
    """Bounding box ``[x, y, w, h]`` of an RLE's foreground, like ``pycocotools.mask.toBbox``.

    ``x``, ``y`` are the first covered column and row, ``w``, ``h`` the
    number of covered columns and rows; ``[0, 0, 0, 0]`` when empty.
    """
    counts = _counts(rle)
    height = int(rle["size"][0])
    ends = np.cumsum(counts)
    n_runs = counts.size // 2
    if n_runs == 0 or not counts[1 : 2 * n_runs : 2].any():
        return [0.0, 0.0, 0.0, 0.0]
    first = ends[0 : 2 * n_runs : 2]  # index of each foreground run's first pixel
    last = ends[1 : 2 * n_runs : 2] - 1  # and of its last pixel
    nonempty = last >= first
    first, last = first[nonempty], last[nonempty]
    x0, y0 = np.divmod(first, height)
    x1, y1 = np.divmod(last, height)
    spans_columns = x1 > x0
    ymin = 0 if spans_columns.any() else int(y0.min())
    ymax = height - 1 if spans_columns.any() else int(y1.max())
    xmin, xmax = int(x0.min()), int(x1.max())
    return [float(xmin), float(ymin), float(xmax - xmin + 1), float(ymax - ymin + 1)]
