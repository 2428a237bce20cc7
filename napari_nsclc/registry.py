"""Which reader and writer handles a path.

Every module in :mod:`napari_nsclc.formats` (one file format) and
:mod:`napari_nsclc.datasets` (a layout spanning many files) declares a
module-level ``FORMAT = FormatSpec(...)``. They are discovered here, so adding a
format means adding one module and nothing else. No napari or Qt import.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from .model import Case, NsclcFormatError

__all__ = ["FormatSpec", "all_formats", "detect", "get_format", "read", "write"]


@dataclass(frozen=True)
class FormatSpec:
    """How one format or dataset layout is recognised, read and written.

    Parameters
    ----------
    name : str
        Short identifier used by the CLI (``--to NAME``), e.g. ``"coco"``.
    title : str
        Human-readable name, e.g. ``"COCO JSON"``.
    sniff : callable
        ``sniff(path: Path) -> bool``. Cheap: looks at names and at most the
        first few KiB of a file; never raises.
    read : callable or None
        ``read(path: Path) -> list[Case]``. Raises :class:`NsclcFormatError`
        naming the file for bad input it cannot work around.
    write : callable or None
        ``write(cases: Sequence[Case], path: Path, **options) -> list[Path]``,
        returning the files written. Writes atomically and never overwrites
        an original unless the caller passed ``overwrite=True``.
    extensions : tuple of str
        File name endings this format uses when writing, e.g. ``(".json",)``.
    priority : int
        Higher is tried first by :func:`detect`. Dataset layouts (a NuCLS
        folder) rank above the generic formats they contain (PNG masks).
    is_dataset : bool
        Whether ``path`` is a folder with a known layout.
    """

    name: str
    title: str
    sniff: Callable[[Path], bool]
    read: Callable[[Path], list[Case]] | None = None
    write: Callable[..., list[Path]] | None = None
    extensions: tuple[str, ...] = ()
    priority: int = 0
    is_dataset: bool = False
    options: dict = field(default_factory=dict)


@cache
def all_formats() -> tuple[FormatSpec, ...]:
    """Every registered format, highest priority first."""
    found: list[FormatSpec] = []
    for package_name in ("napari_nsclc.formats", "napari_nsclc.datasets"):
        package = importlib.import_module(package_name)
        for module_info in pkgutil.iter_modules(package.__path__):
            if module_info.name.startswith("_"):
                continue
            module = importlib.import_module(f"{package_name}.{module_info.name}")
            specs = getattr(module, "FORMATS", None) or (
                [module.FORMAT] if hasattr(module, "FORMAT") else []
            )
            found.extend(specs)
    return tuple(sorted(found, key=lambda spec: -spec.priority))


def get_format(name: str) -> FormatSpec:
    """The format called ``name``; raises ``KeyError`` listing the known ones."""
    for spec in all_formats():
        if spec.name == name:
            return spec
    known = ", ".join(sorted(spec.name for spec in all_formats()))
    raise KeyError(f"unknown format {name!r}; known formats: {known}")


def detect(path: str | Path) -> FormatSpec:
    """The highest-priority readable format whose ``sniff`` accepts ``path``."""
    path = Path(path)
    if not path.exists():
        raise NsclcFormatError(path, "no such file or folder")
    for spec in all_formats():
        if spec.read is None:
            continue
        try:
            accepted = spec.sniff(path)
        except Exception:  # a sniffer must never stop detection
            accepted = False
        if accepted:
            return spec
    raise NsclcFormatError(path, "not a format napari-nsclc reads")


def read(path: str | Path, format: str | None = None) -> list[Case]:
    """Read ``path`` into cases, detecting the format unless one is named."""
    spec = get_format(format) if format else detect(path)
    try:
        return spec.read(Path(path))
    except NsclcFormatError:
        raise
    except Exception as error:  # noqa: BLE001 - user files fail in library-specific ways
        # Parsers raise their own exception types (PIL, h5py, defusedxml, pydicom,
        # struct); the user needs the file and the reason, not a traceback.
        reason = str(error) or type(error).__name__
        raise NsclcFormatError(path, f"cannot be read as {spec.title}: {reason}") from error


def write(cases: Sequence[Case], path: str | Path, format: str, **options) -> list[Path]:
    """Write ``cases`` to ``path`` in ``format``; returns the files written."""
    spec = get_format(format)
    if spec.write is None:
        raise NsclcFormatError(path, f"napari-nsclc cannot write {spec.title}")
    return spec.write(list(cases), Path(path), **options)
