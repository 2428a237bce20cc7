"""Tiles and chunks of a label pyramid: which chunks a change touches, and writing them at every level.

Shared by :func:`~napari_nsclc.label_pyramid.raster.rasterize` and the
:mod:`~napari_nsclc.label_pyramid.sources`. A change is made a level-0 tile
at a time, the tile a multiple of ``chunk * 2**k``: the tile's footprint at
levels 1 to ``k`` is then whole chunks too, computed from the tile in memory
(:func:`tile_levels`, :func:`write_tile`). The levels below are recomputed
afterwards from the chunks of the level above that the change wrote
(:func:`finish_levels`). Lower levels are the mode of 2x2 blocks, ties to the
higher code (:func:`~napari_nsclc.label_pyramid.downsample.mode_2x2`). No napari or Qt import.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np

from .downsample import mode_2x2

__all__ = ["any_blocks", "finish_levels", "in_memory_levels", "stored_chunks", "tile_levels", "write_tile"]


def any_blocks(mask: np.ndarray, size: int) -> np.ndarray:
    """Bool grid ``(ceil(h / size), ceil(w / size))``: which ``size``-sided blocks of a 2-D mask hold a True."""
    rows, columns = -(-mask.shape[0] // size), -(-mask.shape[1] // size)
    if mask.shape != (rows * size, columns * size):  # blocks cut by the edge: pad with False
        padded = np.zeros((rows * size, columns * size), bool)
        padded[: mask.shape[0], : mask.shape[1]] = mask
        mask = padded
    return mask.reshape(rows, size, columns, size).any(axis=(1, 3))


def stored_chunks(pyramid) -> set[tuple[int, int]] | None:
    """``(row, column)`` of the level-0 chunks on disk; the others hold the fill value. None when unknown.

    Reading a tile whose chunks were never written (most of a fresh
    pyramid) costs zarr a failed file lookup per chunk; listing the folder
    once spares them. Chunks lie at ``0/c/<row>/<column>``, zarr's default
    key encoding, which the journal moves them to too.
    """
    encoding = getattr(pyramid.levels[0].metadata, "chunk_key_encoding", None)
    if getattr(encoding, "name", None) != "default" or getattr(encoding, "separator", None) != "/":
        return None
    found = set()
    with contextlib.suppress(FileNotFoundError):
        for row in os.scandir(pyramid.path / pyramid.paths[0] / "c"):
            found.update((int(row.name), int(column.name)) for column in os.scandir(row.path))
    return found


def _write_flagged(tx, path: str, y0: int, x0: int, labels: np.ndarray, grid: np.ndarray, size: int) -> None:
    """Write the chunks of ``labels`` (at level pixel ``(y0, x0)``, chunk-aligned) that ``grid`` flags.

    One write per horizontal run of flagged chunks: every chunk written is a
    file the journal creates, flushes and moves, so unflagged ones are never
    rewritten.
    """
    step = np.diff(np.pad(grid, ((0, 0), (1, 1))).astype(np.int8), axis=1)  # +1 where a run starts, -1 after it
    (rows, firsts), stops = np.nonzero(step == 1), np.nonzero(step == -1)[1]
    for row, first, stop in zip(rows.tolist(), firsts.tolist(), stops.tolist(), strict=True):
        run = labels[row * size : (row + 1) * size, first * size : stop * size]
        tx.write(path, y0 + row * size, x0 + first * size, run)


def in_memory_levels(pyramid, tile: int) -> int:
    """The deepest level whose footprint of a ``tile``-sided level-0 tile is still whole chunks."""
    levels, size = len(pyramid.levels), pyramid.chunk
    deepest = 0
    while deepest + 1 < levels and tile % (size << (deepest + 1)) == 0:
        deepest += 1
    return deepest


def tile_levels(labels: np.ndarray, grid: np.ndarray, deepest: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """A level-0 tile and its chunk flags, then each lower level's footprint down to ``deepest``.

    Parameters
    ----------
    labels : ndarray, shape (h, w)
        The tile's new level-0 labels; it starts on a multiple of ``chunk * 2**deepest``.
    grid : ndarray of bool, shape (ceil(h / chunk), ceil(w / chunk))
        Its changed chunks.
    deepest : int
        From :func:`in_memory_levels`.
    """
    out = [(labels, grid)]
    for _ in range(deepest):
        labels, grid = mode_2x2(labels), any_blocks(grid, 2)  # parents of changed chunks
        out.append((labels, grid))
    return out


def write_tile(tx, pyramid, y0: int, x0: int, levels: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """Write the flagged chunks of a level-0 tile at ``(y0, x0)`` and of its footprints from :func:`tile_levels`."""
    for level, (labels, grid) in enumerate(levels):
        _write_flagged(tx, pyramid.paths[level], y0 >> level, x0 >> level, labels, grid, pyramid.chunk)


def finish_levels(tx, pyramid, first: int) -> None:
    """Recompute levels ``first`` and below: each chunk whose children at the level above changed in ``tx``."""
    size, paths = pyramid.chunk, pyramid.paths
    for level in range(max(first, 1), len(paths)):
        rows, columns = pyramid.levels[level - 1].shape
        parents = sorted({(row // 2, column // 2) for row, column in tx.dirty(paths[level - 1])})
        for row, column in parents:
            top, left = 2 * row * size, 2 * column * size
            source = tx.read(paths[level - 1], top, left, min(rows, top + 2 * size), min(columns, left + 2 * size))
            tx.write(paths[level], row * size, column * size, mode_2x2(source))
