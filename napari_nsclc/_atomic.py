"""Atomic file writes: a reader never sees a half-written file.

A file is written to a temporary sibling and renamed over the target, which is
atomic on POSIX and Windows. If anything fails, the temporary file is removed
and the target is left as it was.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
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
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp" + target.suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


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
