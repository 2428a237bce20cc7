"""Crash-safe changes: every chunk a change writes, at every level, is written aside before any is replaced.

A change (a commit of one region, a rasterisation of many polygons) writes
chunks of several levels; a process killed half-way must not leave level 0
corrected and the overview not, or the other way round. So every change is a
:class:`Transaction`, a redo journal in the pyramid's ``.nsclc-journal/<id>/``
folder:

1. :meth:`Transaction.write` puts the new content of whole chunks into a
   shadow of the level there (the same zarr metadata, so the chunk files are
   byte for byte what the level stores); :meth:`Transaction.read` reads a
   level as the change leaves it (its new chunks over the pyramid's).
2. :meth:`Transaction.commit` flushes the new chunks to disk, then writes
   ``commit.json`` listing them, atomically: writing that file is the commit.
   It then moves each listed chunk file over the level's own (one atomic
   rename each) and removes the journal (:func:`apply`).
3. :func:`recover`, when a pyramid is opened, finishes what a killed process
   left: a journal with its ``commit.json`` is applied again (the chunks
   still in it are moved; moves are idempotent), one without is removed.

Whatever the moment of the kill, the pyramid is then as before the change or
as after it, at every level. Memory: the chunks of one read or write at a
time; the new chunks live on disk until the commit. No napari or Qt import.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import sys
from pathlib import Path

import numpy as np

from .._atomic import _fsync_file, _fsync_folder

__all__ = ["COMMIT", "JOURNAL", "Transaction", "apply", "recover"]

#: The folder of pending changes inside a pyramid.
JOURNAL = ".nsclc-journal"
#: The file whose presence makes a staged change happen.
COMMIT = "commit.json"


def _write_chunk_file(path: Path, data: bytes) -> None:
    # Not atomic, and need not be: a journal file is only used once commit() has fsynced it.
    path.write_bytes(data)


def _chunk_encoder(array):
    """``bytes -> bytes`` making a chunk file of ``array`` (zarr v3, ``c/row/column`` keys, a little- or no-endian
    ``bytes`` codec then one zstd compressor), or None for any other layout, which zarr then writes itself."""
    from numcodecs.zstd import Zstd
    from zarr.codecs import BytesCodec, ZstdCodec
    from zarr.core.chunk_key_encodings import DefaultChunkKeyEncoding

    metadata = array.metadata
    codecs = getattr(metadata, "codecs", ())
    key_encoding = getattr(metadata, "chunk_key_encoding", None)
    if len(codecs) != 2 or not isinstance(codecs[0], BytesCodec) or not isinstance(codecs[1], ZstdCodec):
        return None
    if not isinstance(key_encoding, DefaultChunkKeyEncoding) or key_encoding.separator != "/":
        return None
    endian = getattr(codecs[0].endian, "value", None)
    if array.dtype.itemsize > 1 and not (endian == "little" == sys.byteorder):  # numpy writes native bytes
        return None
    return Zstd(level=codecs[1].level, checksum=codecs[1].checksum).encode


class Transaction:
    """New chunks for the levels of one pyramid, written aside until :meth:`commit`.

    Parameters
    ----------
    root : Path
        The pyramid's folder.
    levels : dict of str to zarr.Array
        Its levels by path (``"0"``, ``"1"`` ...), all with the same square chunks.
    log : Path, optional
        The edit log that receives the change's record once it is committed
        (one JSON line, with the change's ``"change"`` id, written once even
        when a killed process's change is finished by :func:`recover`).

    Use it as a context manager: leaving it without a commit (an error)
    removes the journal, and the pyramid is as it was.
    """

    def __init__(self, root: Path, levels: dict, log: Path | None = None):
        self.root = Path(root)
        self.levels = levels
        self.log = log
        self.folder = self.root / JOURNAL / secrets.token_hex(8)
        self.chunk = int(next(iter(levels.values())).chunks[0])
        self._shadows: dict = {}
        self._encoders: dict = {}
        self._made: set[Path] = set()  # chunk-row folders created in the journal
        self._dirty: dict[str, set[tuple[int, int]]] = {path: set() for path in levels}
        self.committed = False

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, kind, error, trace) -> None:
        if not self.committed:
            self.abort()

    def _shadow(self, path: str):
        import zarr

        if path not in self._shadows:
            folder = self.folder / path
            folder.mkdir(parents=True)
            shutil.copyfile(self.root / path / "zarr.json", folder / "zarr.json")
            with zarr.config.set({"array.write_empty_chunks": True}):  # an erased chunk must replace the old one too
                self._shadows[path] = zarr.open_array(str(folder), mode="r+")
            self._encoders[path] = _chunk_encoder(self._shadows[path])
        return self._shadows[path]

    def write(self, path: str, y0: int, x0: int, block: np.ndarray) -> None:
        """New content of whole chunks of level ``path``: ``block`` starts on a chunk boundary and ends on
        one or at the level's edge."""
        size = self.chunk
        rows, columns = self.levels[path].shape
        y1, x1 = y0 + block.shape[0], x0 + block.shape[1]
        if y0 % size or x0 % size or (y1 % size and y1 != rows) or (x1 % size and x1 != columns):
            raise ValueError(f"block y {y0}..{y1}, x {x0}..{x1} is not made of whole {size}² chunks of level {path}")
        shadow, encode = self._shadow(path), self._encoders[path]
        if encode is None:
            import zarr

            with zarr.config.set({"array.write_empty_chunks": True}):
                shadow[y0:y1, x0:x1] = block
        else:
            self._write_chunks(path, y0, x0, block, encode)
        self._dirty[path].update((row, column) for row in range(y0 // size, -(-y1 // size))
                                 for column in range(x0 // size, -(-x1 // size)))  # fmt: skip

    def _write_chunks(self, path: str, y0: int, x0: int, block: np.ndarray, encode) -> None:
        """Encode each chunk of ``block`` and write its file: what zarr would store, without its per-call overhead
        (zarr's asynchronous ``__setitem__`` costs milliseconds a call, most of a 1,000-polygon rasterisation)."""
        size, level = self.chunk, self.levels[path]
        dtype = level.dtype
        for top in range(0, block.shape[0], size):
            for left in range(0, block.shape[1], size):
                piece = block[top : top + size, left : left + size]
                if piece.shape != (size, size):  # edge chunks are stored whole, padded with the fill value
                    padded = np.full((size, size), level.fill_value, dtype)
                    padded[: piece.shape[0], : piece.shape[1]] = piece
                    piece = padded
                row = self.folder / path / "c" / str((y0 + top) // size)
                if row not in self._made:
                    row.mkdir(parents=True, exist_ok=True)
                    self._made.add(row)
                _write_chunk_file(row / str((x0 + left) // size), encode(np.ascontiguousarray(piece, dtype).tobytes()))

    def dirty(self, path: str) -> set[tuple[int, int]]:
        """``(row, column)`` of the chunks of level ``path`` written so far."""
        return set(self._dirty[path])

    def read(self, path: str, y0: int, x0: int, y1: int, x1: int) -> np.ndarray:
        """``[y0:y1, x0:x1]`` of level ``path`` as this change leaves it: its new chunks over the pyramid's."""
        out = np.asarray(self.levels[path][y0:y1, x0:x1])
        size, shadow, dirty = self.chunk, self._shadows.get(path), self._dirty[path]
        for row in range(y0 // size, -(-y1 // size)):
            for column in range(x0 // size, -(-x1 // size)):
                if (row, column) in dirty:
                    top, left = max(y0, row * size), max(x0, column * size)
                    bottom, right = min(y1, (row + 1) * size), min(x1, (column + 1) * size)
                    out[top - y0 : bottom - y0, left - x0 : right - x0] = shadow[top:bottom, left:right]
        return out

    def commit(self, record: dict) -> dict:
        """Make the change happen: flush the new chunks, write ``commit.json``, move them into the levels."""
        chunks = {path: [f"c/{row}/{column}" for row, column in sorted(cells)]
                  for path, cells in self._dirty.items() if cells}  # fmt: skip
        if not chunks:
            self.abort()
            self.committed = True
            return record
        for path, keys in chunks.items():
            for key in keys:
                _fsync_file(self.folder / path / key)
        record = {**record, "change": self.folder.name}
        pending = self.folder / f".{COMMIT}.tmp"
        manifest = {"chunks": chunks, "record": record, "log": str(self.log) if self.log else None}
        pending.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        _fsync_file(pending)
        os.replace(pending, self.folder / COMMIT)  # the commit point
        _fsync_folder(self.folder)
        self.committed = True
        return apply(self.root, self.folder)

    def abort(self) -> None:
        """Forget the change: remove the journal; the pyramid is as it was."""
        shutil.rmtree(self.folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            (self.root / JOURNAL).rmdir()


def apply(root: Path, journal: Path) -> dict:
    """Record a committed change in its edit log, move its chunks into the levels, remove the journal.

    Returns the change's record.
    """
    manifest = json.loads((journal / COMMIT).read_text(encoding="utf-8"))
    if manifest.get("log"):
        _log_once(Path(manifest["log"]), manifest["record"])
    touched = set()
    for path, keys in manifest["chunks"].items():
        for key in keys:
            source, target = journal / path / key, Path(root) / path / key
            if source.exists():  # moved already by a run that was killed after it
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(source, target)
            touched.add(target.parent)
    for folder in touched:
        _fsync_folder(folder)  # best effort, as every atomic write of the project
    shutil.rmtree(journal, ignore_errors=True)
    with contextlib.suppress(OSError):
        (Path(root) / JOURNAL).rmdir()  # only when no other change is pending
    return manifest["record"]


def _log_once(log: Path, record: dict) -> None:
    """Append ``record`` to the edit log unless a killed run of :func:`apply` did already."""
    from ..workflow.files import append_event, read_events

    if not any(event.get("change") == record["change"] for event in read_events(log)):
        append_event(log, record)


def recover(root: Path) -> list[tuple[str, dict | None]]:
    """Finish or undo what killed changes left in ``root``: ``[("completed" | "rolled back", record), ...]``."""
    folder = Path(root) / JOURNAL
    if not folder.is_dir():
        return []
    done = []
    for journal in sorted(p for p in folder.iterdir() if p.is_dir()):
        if (journal / COMMIT).is_file():
            done.append(("completed", apply(root, journal)))
        else:
            shutil.rmtree(journal, ignore_errors=True)
            done.append(("rolled back", None))
    with contextlib.suppress(OSError):
        folder.rmdir()
    return done
