"""Autosave a slide's nuclei edits, so a crash loses at most a minute of reclassifying.

The edits of a :class:`~.model.NucleusSet` (:meth:`~.model.NucleusSet.state`:
a byte per nucleus for its class, a bit for deleted, and the outlines drawn)
go to ``<folder>/.nsclc-autosave/<file name>.<annotator>.nuclei.npz`` beside
the file the nuclei came from, written atomically, about 1 MB for a million
nuclei. The next time the file is opened, :meth:`Autosaver.unfinished` finds
them and :meth:`Autosaver.restore` puts them back. Saving the nuclei, or
discarding the autosave, removes it.
"""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import numpy as np

from .._atomic import atomic_write_bytes
from ..model import NsclcFormatError
from .model import NucleusSet

__all__ = ["AUTOSAVE", "Autosaver"]

AUTOSAVE = ".nsclc-autosave"


class Autosaver:
    """Autosave and restore the edits of ``nuclei`` (read from a file: ``nuclei.source.path``)."""

    def __init__(self, nuclei: NucleusSet):
        self.nuclei = nuclei
        self._saved_crc: int | None = None

    @property
    def path(self) -> Path | None:
        """Where the edits go, one file per annotator; ``None`` for nuclei not read from a file."""
        from ..workflow import identity

        source = getattr(self.nuclei.source, "path", None)
        if source is None:
            return None
        who = "".join(c if c.isalnum() or c in "-_." else "_" for c in (identity.annotator() or "unnamed"))
        return Path(source).parent / AUTOSAVE / f"{Path(source).name}.{who}.nuclei.npz"

    def autosave(self) -> Path | None:
        """Write the edits if they changed since the last autosave (and there are any); the path, or None."""
        path = self.path
        if path is None:
            return None
        state = self.nuclei.state()
        crc = zlib.crc32(state["codes"].tobytes() + state["deleted"].tobytes()
                         + state["outline_vertices"].tobytes() + state["outline_nuclei"].tobytes())
        if crc == self._saved_crc or (self._saved_crc is None and not len(self.nuclei.edited)):
            return None
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **state, source=self._source_stamp())
        atomic_write_bytes(path, buffer.getvalue())
        self._saved_crc = crc
        return path

    def _source_stamp(self) -> np.ndarray:
        stat = Path(self.nuclei.source.path).stat()
        return np.array([stat.st_size, stat.st_mtime_ns], np.int64)

    def unfinished(self) -> dict | None:
        """``{"path", "edited", "saved_at"}`` of edits an earlier session autosaved and did not save, or None."""
        path = self.path
        if path is None or not path.is_file():
            return None
        state = self._read(path)
        from datetime import datetime

        when = datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
        changed = (state["codes"][:len(self.nuclei)] != self.nuclei.original_codes[:len(state["codes"])]).sum()
        return {"path": path, "edited": int(changed) + len(state["outline_nuclei"]), "saved_at": when}

    def restore(self) -> np.ndarray:
        """Put the autosaved edits back; returns the nuclei they change.

        Raises
        ------
        NsclcFormatError
            Naming the autosave when it does not fit this file (the file
            changed since); it is then set aside as ``*.damaged``, never deleted.
        """
        path = self.path
        state = self._read(path)
        try:
            if tuple(state["source"]) != tuple(self._source_stamp()):
                raise ValueError(f"{Path(self.nuclei.source.path).name} changed since these edits were autosaved")
            touched = self.nuclei.load_state(state)
        except ValueError as error:
            aside = _set_aside(path)
            raise NsclcFormatError(path, f"cannot be restored ({error}); it was set aside as {aside.name}") from error
        self._saved_crc = None
        return touched

    def discard(self) -> None:
        """Remove the autosave (after a save, or when the user declines to restore it)."""
        path = self.path
        if path is not None:
            path.unlink(missing_ok=True)
        self._saved_crc = None

    @staticmethod
    def _read(path: Path) -> dict:
        try:
            with np.load(path, allow_pickle=False) as saved:
                return {key: saved[key] for key in saved.files}
        except Exception as error:  # noqa: BLE001 - any damage: keep the file for a person to look at, and say so
            aside = _set_aside(path)
            raise NsclcFormatError(path, f"cannot be read ({error}); it was set aside as {aside.name}") from error


def _set_aside(path: Path) -> Path:
    """Rename ``path`` to ``*.damaged`` (``*.damaged-2`` ... when taken): kept for a person to look at, never lost."""
    aside, number = path.with_name(path.name + ".damaged"), 1
    while aside.exists():
        number += 1
        aside = path.with_name(f"{path.name}.damaged-{number}")
    path.replace(aside)
    return aside
