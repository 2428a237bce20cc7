"""The corrections folder on disk: checksums, staging, atomic installs, sidecars and the edit log.

A save is written in full into a staging folder inside the corrections
folder (same file system), then each file is moved into place with one
atomic rename. A reader, another window or a crash therefore only ever
sees the previous file or the new one. Failures are reported as one line
naming the file (:class:`~napari_nsclc.model.NsclcFormatError`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import orjson

from .._atomic import _fsync_file, _fsync_folder, _write_error, atomic_write_bytes
from ..model import NsclcFormatError

__all__ = ["append_event", "install", "read_json", "sha256_of", "staging_folder", "write_json"]

#: Bytes read at a time when hashing; big enough for throughput, small enough for memory.
HASH_BLOCK = 1 << 20


def sha256_of(path: str | Path) -> str | None:
    """Hex SHA-256 of a file's bytes, or ``None`` when there is no such file."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as stream:
            while block := stream.read(HASH_BLOCK):
                digest.update(block)
    except FileNotFoundError:
        return None
    return digest.hexdigest()


@contextlib.contextmanager
def staging_folder(corrections: Path) -> Iterator[Path]:
    """An empty hidden folder inside ``corrections``, removed afterwards whatever happens.

    Raises
    ------
    NsclcFormatError
        Naming ``corrections`` when it cannot be created or written
        (read-only, vanished, full).
    """
    try:
        corrections.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=".staging-", dir=corrections))
    except OSError as error:
        raise _folder_error(corrections, error) from error
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _folder_error(folder: Path, error: OSError) -> NsclcFormatError:
    if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return NsclcFormatError(folder, "is read-only; choose another corrections folder (corrections=...)")
    if error.errno == errno.ENOENT:
        return NsclcFormatError(folder, "vanished (a removed or unmounted folder?); nothing was saved")
    return _write_error(folder, None, error)


def install(staged: Path, target: Path) -> Path:
    """Move a fully written ``staged`` file over ``target`` in one atomic rename.

    ``target`` keeps its permissions when it exists; the file's data is on
    disk before the rename and the rename before returning.
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _fsync_file(staged)
        with contextlib.suppress(FileNotFoundError):
            os.chmod(staged, stat.S_IMODE(os.stat(target).st_mode))
        os.replace(staged, target)
        _fsync_folder(target.parent)
    except OSError as error:
        if error.errno == errno.ENOENT and not target.parent.parent.exists():
            raise _folder_error(target.parent, error) from error
        raise _write_error(target, staged, error) from error
    return target


def write_json(target: Path, value) -> Path:
    """Write ``value`` as indented JSON, atomically."""
    return atomic_write_bytes(target, orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")


def read_json(path: Path):
    """The JSON value in ``path``; raises :class:`NsclcFormatError` naming it when it is not JSON."""
    try:
        return orjson.loads(Path(path).read_bytes())
    except orjson.JSONDecodeError as error:
        raise NsclcFormatError(path, f"is not valid JSON ({error})") from error


def append_event(log: Path, record: dict) -> None:
    """Append ``record`` as one JSON line to the append-only edit log ``log``.

    One ``write`` of a whole line to a file opened for appending, then
    ``fsync``: lines from two windows never interleave, and a crash leaves
    at most the last line cut short (readers skip such a line).
    """
    line = orjson.dumps(record, option=orjson.OPT_SORT_KEYS) + b"\n"
    try:
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as error:
        raise _write_error(log, None, error) from error


def read_events(log: Path) -> list[dict]:
    """Every complete line of an edit log, oldest first (a line cut short by a crash is skipped)."""
    try:
        lines = Path(log).read_bytes().splitlines()
    except FileNotFoundError:
        return []
    events = []
    for line in lines:
        with contextlib.suppress(orjson.JSONDecodeError):
            events.append(orjson.loads(line))
    return events
