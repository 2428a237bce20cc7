"""Atomic file writes: a reader never sees a half-written file.

A file is written to a temporary sibling and renamed over the target, which is
atomic on POSIX and Windows. If anything fails, the temporary file is removed
and the target is left as it was.

The written file has the permissions a plain ``open(path, "w")`` gives
(``0o666`` less the umask, so usually ``0o644``), or, when it replaces a file,
that file's permissions. Its data is flushed to disk (``fsync``) before the
rename, and the folder after it, so a crash never leaves an empty file behind
a successful save. A failure is reported as :class:`NsclcFormatError` naming
the target, never the temporary file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from .model import Case, NsclcFormatError

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "refuse_overwrite", "write_text_per_case"]


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it over ``target`` on success.

    Examples
    --------
    >>> with atomic_path("mask.png") as tmp:  # doctest: +SKIP
    ...     imageio.imwrite(tmp, mask, extension=".png")
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp, mode = _create_sibling(target)
    except OSError as error:
        raise _write_error(target, None, error) from error
    try:
        yield tmp
        with contextlib.suppress(FileNotFoundError):
            mode = stat.S_IMODE(os.stat(target).st_mode)  # a replaced file keeps its permissions
        _fsync_file(tmp)
        os.chmod(tmp, mode)  # a writer may have re-created the file with other permissions
        os.replace(tmp, target)
        _fsync_folder(target.parent)
    except OSError as error:
        if not _about_output(error, tmp, target):
            raise  # e.g. a source file copied inside the block: its own name is the right one
        raise _write_error(target, tmp, error) from error
    finally:
        with contextlib.suppress(OSError):
            if os.path.lexists(tmp):
                os.unlink(tmp)


def _create_sibling(target: Path) -> tuple[Path, int]:
    """Create an empty ``.<name>.<random>.tmp<suffix>`` next to ``target``, as ``open(..., "w")`` would.

    Created with mode ``0o666``, which the OS reduces by the umask (reading the
    umask itself would briefly change it for every thread). Returns the path and
    the permissions it got.
    """
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp{target.suffix}"
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        try:
            return tmp, stat.S_IMODE(os.fstat(fd).st_mode)
        finally:
            os.close(fd)
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(target.parent))


def _fsync_file(path: Path) -> None:
    """Flush ``path``'s data to the disk (a full disk can first show here)."""
    fd = os.open(path, (os.O_RDONLY if os.name == "posix" else os.O_RDWR) | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    """Flush the rename to the disk where the OS supports it (POSIX); best effort."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _about_output(error: OSError, tmp: Path, target: Path) -> bool:
    """Whether ``error`` concerns the file being written (not another file a writer read)."""
    if not isinstance(error.filename, (str, os.PathLike)):
        return True  # no name (a failed write() call) or a descriptor
    return os.fspath(error.filename) in {os.fspath(tmp), os.fspath(target), os.fspath(target.parent)}


def _write_error(target: Path, tmp: Path | None, error: OSError) -> NsclcFormatError:
    """``error`` as one line naming ``target``, e.g. ``out.png: cannot be written: No space left on device``."""
    code = error.errno
    if code is None:  # h5py puts the errno in its message: "..., errno = 28, error message = ..."
        found = re.search(r"errno = (\d+)", str(error))
        code = int(found.group(1)) if found else None
    if code:
        reason = os.strerror(code)
    else:
        reason = str(error) or type(error).__name__
        if tmp is not None:
            reason = reason.replace(os.fspath(tmp), os.fspath(target)).replace(tmp.name, target.name)
    return NsclcFormatError(target, f"cannot be written: {reason}")


def atomic_write_bytes(target: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically; returns ``target`` as a Path."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def atomic_write_text(target: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``target`` atomically, with ``\\n`` line ends kept as given."""
    return atomic_write_bytes(target, text.encode(encoding))


def refuse_overwrite(target: str | Path, overwrite: bool) -> None:
    """Raise :class:`NsclcFormatError` if ``target`` exists and ``overwrite`` is false."""
    if Path(target).exists() and not overwrite:
        raise NsclcFormatError(target, "already exists; pass overwrite=True (CLI: --overwrite) to replace it")


def write_text_per_case(
    cases: Sequence[Case], path: str | Path, suffixes: tuple[str, ...], render: Callable[[Case], str], overwrite: bool
) -> list[Path]:
    """Write ``render(case)`` for every case: to ``path`` itself when it is one file for
    one case (its suffix in ``suffixes``), else to ``path / "<case name><suffixes[0]>"``.

    Every target is checked before any is written, so a refused overwrite
    leaves nothing half-done.
    """
    path = Path(path)
    if len(cases) == 1 and path.suffix.lower() in suffixes:
        targets = [path]
    else:
        targets = [path / f"{case.name}{suffixes[0]}" for case in cases]
    for target in targets:
        refuse_overwrite(target, overwrite)
    for case, target in zip(cases, targets, strict=True):
        atomic_write_text(target, render(case))
    return targets
