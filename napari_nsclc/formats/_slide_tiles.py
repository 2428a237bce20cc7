"""Reading a tiled TIFF pyramid level fast: only the tiles a selection touches, decoded in parallel and cached.

:mod:`napari_nsclc.formats.slide` finds a slide's levels; each tiled level
becomes a :class:`TiledLevel`, the array napari slices while panning.
:data:`TILE_CACHE` keeps recently decoded tiles of every open slide.
"""

from __future__ import annotations

import functools
import itertools
import os
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..model import NsclcFormatError

__all__ = ["TILE_CACHE", "TileCache", "TiledLevel"]


class TileCache:
    """Decoded tiles of every open slide, bounded in bytes, least recently used dropped first.

    Panning revisits the tiles around the view; keeping them decoded makes a
    pan step cost only the new tiles (OpenSlide keeps a similar cache).
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.nbytes = 0
        self._tiles: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            tile = self._tiles.get(key)
            if tile is not None:
                self._tiles.move_to_end(key)
            return tile

    def put(self, key, tile: np.ndarray) -> None:
        if tile.nbytes > self.max_bytes:
            return
        with self._lock:
            if key in self._tiles:
                return
            self._tiles[key] = tile
            self.nbytes += tile.nbytes
            while self.nbytes > self.max_bytes:
                _, dropped = self._tiles.popitem(last=False)
                self.nbytes -= dropped.nbytes

    def clear(self) -> None:
        with self._lock:
            self._tiles.clear()
            self.nbytes = 0


#: 64 MiB: about 85 RGB tiles of 512 x 512, several screens of panning.
TILE_CACHE = TileCache(64 * 2**20)
_LEVEL_TOKENS = itertools.count()


@functools.cache
def _decode_pool():
    """Threads that decode the several tiles of one read at once (codecs release the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="nsclc-tiles")


class TiledLevel:
    """One pyramid level as a read-only array that decodes only the tiles a selection touches.

    Tile bytes are read with ``os.pread`` (no shared file position, so no
    lock) and decoded by tifffile's own decode function for the page (JPEG,
    JPEG 2000, LZW, deflate ... with JPEG tables and NDPI headers), in the
    calling thread, which lets threads decode in parallel. This is the hot
    path of panning; it skips the zarr event loop, which serialises decoding
    and costs several times the decode itself for 256-pixel reads.

    Parameters
    ----------
    path : Path
        The TIFF file.
    page : tifffile.TiffPage
        The level's first page (its tile offsets and decode function).

    Attributes
    ----------
    shape : tuple of int
        ``(Y, X)`` or ``(Y, X, S)``.
    dtype : numpy.dtype
    chunks : tuple of int
        The tile (or strip) shape, clipped to the level.
    """

    def __init__(self, path: Path, page):
        self.path = Path(path)
        self.page = page
        height, width = int(page.imagelength), int(page.imagewidth)
        samples = int(page.samplesperpixel)
        self.shape = (height, width) if samples == 1 else (height, width, samples)
        self.dtype = np.dtype(page.dtype)
        self.ndim = len(self.shape)
        if page.is_tiled:
            tile = (int(page.tilelength), int(page.tilewidth))
        else:
            tile = (min(int(page.rowsperstrip), height), width)
        self.tile = tile
        self.chunks = tile + self.shape[2:]
        self.grid = (-(-height // tile[0]), -(-width // tile[1]))
        # tifffile's tuples, indexed directly: converting 40,000 offsets to numpy costs more than it saves
        self._offsets = page.dataoffsets
        self._counts = page.databytecounts
        self._decode = page.decode
        self._decode_args = {"_fullsize": True}
        if page.jpegtables is not None:
            self._decode_args["jpegtables"] = page.jpegtables
        if getattr(page, "jpegheader", None) is not None:
            self._decode_args["jpegheader"] = page.jpegheader
        self._fd = None
        self._lock = threading.Lock()
        self._token = next(_LEVEL_TOKENS)

    @staticmethod
    def supports(page) -> bool:
        """Whether the fast path applies: 2-D, contiguous samples, one tile grid."""
        return (
            int(page.imagedepth) == 1
            and (int(page.samplesperpixel) == 1 or int(page.planarconfig) == 1)
            and len(page.dataoffsets) == int(np.prod(page.chunked))
        )

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def size(self) -> int:
        """Number of elements, as numpy arrays have (napari's layer-data protocol asks for it)."""
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __repr__(self) -> str:
        return f"<TiledLevel {self.path.name} shape={self.shape} tile={self.tile} dtype={self.dtype}>"

    def _read(self, offset: int, count: int) -> bytes:
        if self._fd is None:
            with self._lock:
                if self._fd is None:
                    self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        if hasattr(os, "pread"):
            data = os.pread(self._fd, count, offset)
        else:
            with self._lock:  # no pread (Windows): serialise seek + read
                os.lseek(self._fd, offset, os.SEEK_SET)
                data = os.read(self._fd, count)
        if len(data) != count:
            raise NsclcFormatError(self.path, f"is truncated: a tile at byte {offset} needs {count} bytes, "
                                   f"the file holds {len(data)}")
        return data

    def tile_pixels(self, row: int, col: int) -> np.ndarray:
        """Decoded tile ``(row, col)``, full tile size (edge tiles padded); zeros if absent."""
        index = row * self.grid[1] + col
        offset, count = int(self._offsets[index]), int(self._counts[index])
        if offset == 0 or count == 0:  # a tile the scanner never wrote: blank
            return np.zeros(self.chunks, self.dtype)
        key = (self._token, index)
        cached = TILE_CACHE.get(key)
        if cached is not None:
            return cached
        decoded = self.decode_tile(index, offset, count)
        TILE_CACHE.put(key, decoded)
        return decoded

    def decode_tile(self, index: int, offset: int, count: int) -> np.ndarray:
        """Read and decode tile number ``index`` (row-major) from the file, bypassing the cache."""
        return self._decode(self._read(offset, count), index, **self._decode_args)[0].reshape(self.chunks)

    def _tiles_in(self, y0: int, y1: int, x0: int, x1: int) -> list[tuple[int, int]]:
        th, tw = self.tile
        return [(row, col) for row in range(y0 // th, (y1 - 1) // th + 1)
                for col in range(x0 // tw, (x1 - 1) // tw + 1)]

    def _decode_missing(self, tiles: list[tuple[int, int]]) -> dict[tuple[int, int], np.ndarray]:
        """Decode the tiles a read needs; several missing tiles are decoded in parallel threads."""
        found, missing = {}, []
        for row, col in tiles:
            index = row * self.grid[1] + col
            cached = TILE_CACHE.get((self._token, index))
            if cached is not None:
                found[row, col] = cached
            else:
                missing.append((row, col))
        if len(missing) > 1:
            for position, pixels in zip(missing, _decode_pool().map(lambda rc: self.tile_pixels(*rc), missing),
                                        strict=True):
                found[position] = pixels
        else:
            for row, col in missing:
                found[row, col] = self.tile_pixels(row, col)
        return found

    def __getitem__(self, key) -> np.ndarray:
        """Integer and slice indexing (steps > 0); decodes only the tiles touched."""
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis for k in key):
            position = key.index(Ellipsis)
            key = key[:position] + (slice(None),) * (self.ndim - len(key) + 1) + key[position + 1 :]
        key = key + (slice(None),) * (self.ndim - len(key))
        bounds, squeeze = [], []
        for axis, k in enumerate(key[:2]):
            if isinstance(k, (int, np.integer)):
                index = int(k) + self.shape[axis] if k < 0 else int(k)
                if not 0 <= index < self.shape[axis]:
                    raise IndexError(f"index {k} is out of bounds for axis {axis} with size {self.shape[axis]}")
                bounds.append((index, index + 1, 1))
                squeeze.append(0)
            elif isinstance(k, slice):
                start, stop, step = k.indices(self.shape[axis])
                if step < 0:
                    raise IndexError("TiledLevel does not support negative steps")
                bounds.append((start, max(start, stop), step))
                squeeze.append(slice(None))
            else:
                raise IndexError(f"TiledLevel supports integers and slices, not {type(k).__name__}")
        (y0, y1, ystep), (x0, x1, xstep) = bounds
        out = np.zeros((y1 - y0, x1 - x0, *self.shape[2:]), self.dtype)
        if out.size:
            th, tw = self.tile
            tiles = self._tiles_in(y0, y1, x0, x1)
            pixels = self._decode_missing(tiles)
            for row, col in tiles:
                ty, tx = row * th, col * tw
                ys, ye = max(y0, ty), min(y1, ty + th)
                xs, xe = max(x0, tx), min(x1, tx + tw)
                out[ys - y0 : ye - y0, xs - x0 : xe - x0] = pixels[row, col][ys - ty : ye - ty, xs - tx : xe - tx]
        if ystep != 1 or xstep != 1:
            out = out[::ystep, ::xstep]
        return out[(*squeeze, *key[2:])]

    def __array__(self, dtype=None, copy=None):
        data = self[:, :]
        return data if dtype is None else data.astype(dtype)

    def __del__(self):
        if getattr(self, "_fd", None) is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
