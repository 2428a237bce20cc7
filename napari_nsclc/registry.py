"""Which reader and writer handles a path.

Every module in :mod:`napari_nsclc.formats` (one file format) and
:mod:`napari_nsclc.datasets` (a layout spanning many files) declares a
module-level ``FORMAT = FormatSpec(...)``. They are discovered here, so adding a
format means adding one module and nothing else. No napari or Qt import.
"""

from __future__ import annotations

import importlib
import itertools
import os
import pkgutil
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from .model import Case, NsclcFormatError

__all__ = ["FormatSpec", "all_formats", "detect", "find_format", "get_format", "read", "write"]


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
    layout : str
        For dataset layouts: what such a folder holds, in a few words and no
        commas (``"Images/ with Mask/ or SegmentationClass/"``). Detection
        names it when a folder matches no layout.

    The conversion matrix (:mod:`napari_nsclc.conversion`) is computed from
    these declarations:

    produces : frozenset of str
        The kinds of annotation the reader makes (``conversion.KINDS``).
    extras : tuple of str
        Per-object fields of this format that only its family keeps
        (``"id"``, ``"pose"`` ...), named in the matrix.
    object_fields : callable or None
        ``object_fields(attributes) -> list of str``: the extra fields one
        object really carries (counted in a conversion plan).
    family : str
        Formats of one family keep each other's extra fields (``"coco"``
        for COCO, MIDOG and IGNITE; ``"voc"`` for the VOC XML formats).
    layered : bool
        Whether a case may hold several layers of one type (NSCLC-NAT's two
        masks, CoCaHis's annotators).
    holds : mapping of str to conversion.Handling
        For writers: what happens to each kind. Kinds not listed are not
        written (a loss the plan announces).
    layers : {"tagged", "separate", "merged", "first"}
        For writers: how several layers of one type in one case are written.
    accepts : tuple of str or None
        For dataset writers: the formats whose cases they write.
    aliases : tuple of str
        Other names the reader records as ``provenance.format``.
    check : callable or None
        ``check(cases) -> str or None``: a reason to refuse these cases
        (e.g. COCO needs each image's size), found before writing.
    shared_files : tuple of str
        For dataset writers: ``fnmatch`` patterns of files written beside the
        annotations that describe the whole dataset or hold its images
        (split lists, ``labelmap.txt``, ``rgb/*``). A workspace saving one
        case's correction leaves them out.
    read_correction : callable or None
        For dataset writers whose correction files are not read one by one:
        ``read_correction(case, files) -> Case`` lays the correction
        ``files`` (``{path relative to the root: Path}``) over an original case.
    sized : bool or None
        For readers: whether every case knows its image's size (``True``),
        only when its image or slide lies beside the file (``False``), or
        never, the format naming no image file (``None``).
    per_case : bool
        For writers into a folder: each case's files depend on that case
        alone, so a dataset can be written one case at a time, in parallel,
        and the files put together (``napari-nsclc convert``, see
        :mod:`napari_nsclc.batch.convert`).
    merged_files : tuple of (str, rule)
        For ``per_case`` writers: files that several cases write (``fnmatch``
        patterns of paths in the output folder) and how their versions
        combine, in case order: ``"lines"`` (each line once, in the order
        first written: split lists), ``"first"`` (the first case's), or a
        callable ``rule(texts) -> text``. Any other file written by two cases
        must be the same in both.
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
    layout: str = ""
    produces: frozenset = frozenset()
    extras: tuple[str, ...] = ()
    object_fields: Callable[[dict], list[str]] | None = None
    family: str = ""
    layered: bool = False
    holds: dict = field(default_factory=dict)
    layers: str = "separate"
    accepts: tuple[str, ...] | None = None
    aliases: tuple[str, ...] = ()
    check: Callable[[Sequence[Case]], str | None] | None = None
    shared_files: tuple[str, ...] = ()
    read_correction: Callable[[Case, dict], Case] | None = None
    sized: bool | None = True
    per_case: bool = False
    merged_files: tuple[tuple[str, str | Callable[[Sequence[str]], str]], ...] = ()


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


def find_format(name: str) -> FormatSpec | None:
    """The format called ``name`` or recording ``name`` as its provenance (an alias), or None."""
    for spec in all_formats():
        if spec.name == name or name in spec.aliases:
            return spec
    return None


def get_format(name: str) -> FormatSpec:
    """The format called ``name``; raises ``KeyError`` listing the known ones."""
    for spec in all_formats():
        if spec.name == name:
            return spec
    known = ", ".join(sorted(spec.name for spec in all_formats()))
    raise KeyError(f"unknown format {name!r}; known formats: {known}")


#: How many entries of an unrecognised folder detection looks at for a hint.
MAX_ENTRIES_SNIFFED = 50
#: How many of the readable entries found there the error message names.
MAX_ENTRIES_NAMED = 3


def detect(path: str | Path) -> FormatSpec:
    """The highest-priority readable format whose ``sniff`` accepts ``path``.

    A folder that no layout claims raises an error saying which layouts were
    expected and which readable files or dataset folders it holds, from at
    most :data:`MAX_ENTRIES_SNIFFED` of its entries.
    """
    path = Path(path)
    if not path.exists():
        raise NsclcFormatError(path, "no such file or folder")
    spec = _sniff(path, all_formats())
    if spec is not None:
        return spec
    if path.is_dir():
        raise NsclcFormatError(path, _unrecognised_folder(path))
    raise NsclcFormatError(path, "not a format napari-nsclc reads")


def _sniff(path: Path, specs: Sequence[FormatSpec]) -> FormatSpec | None:
    for spec in specs:
        if spec.read is None:
            continue
        try:
            accepted = spec.sniff(path)
        except Exception:  # a sniffer must never stop detection
            accepted = False
        if accepted:
            return spec
    return None


def short_title(spec: FormatSpec) -> str:
    """``"NuCLS nuclei (rgb/ mask/ csv/)"`` -> ``"NuCLS nuclei"``: no nested brackets in messages."""
    return re.sub(r"\s*\([^()]*\)$", "", spec.title) or spec.title


def _unrecognised_folder(folder: Path) -> str:
    """Why ``folder`` is not read, and what inside it is: one short line."""
    layouts = [spec for spec in all_formats() if spec.is_dataset and spec.read is not None]
    expected = "; ".join(f"{spec.name} needs {spec.layout or short_title(spec)}" for spec in layouts)
    try:
        with os.scandir(folder) as scan:
            sampled = list(itertools.islice((e for e in scan if not e.name.startswith(".")), MAX_ENTRIES_SNIFFED + 1))
    except OSError as error:
        return f"cannot list the folder: {error.strerror or error}"
    if not sampled:
        return f"is an empty folder; napari-nsclc opens a dataset folder ({expected}) or an annotation or image file"
    partial = len(sampled) > MAX_ENTRIES_SNIFFED
    sampled = sorted(sampled[:MAX_ENTRIES_SNIFFED], key=lambda e: e.name)
    found: list[tuple[str, FormatSpec]] = []
    for entry in sampled:
        try:
            is_dir = entry.is_dir()
        except OSError:
            continue
        # sub-folders are tried as dataset layouts only: those sniffers look at a few names
        spec = _sniff(Path(entry.path), layouts if is_dir else all_formats())
        if spec is not None:
            found.append((entry.name + ("/" if is_dir else ""), spec))
    problem = f"is not a dataset layout napari-nsclc knows ({expected})"
    if not found:
        where = f"its first {MAX_ENTRIES_SNIFFED} entries" if partial else "its entries"
        return f"{problem}; none of {where} is a file or dataset folder it reads"
    named = ", ".join(f"{name} ({short_title(spec)})" for name, spec in found[:MAX_ENTRIES_NAMED])
    more = f" and {len(found) - MAX_ENTRIES_NAMED} more" if len(found) > MAX_ENTRIES_NAMED else ""
    if len(found) == 1:
        what = "folder" if found[0][0].endswith("/") else "file"
        return f"{problem}; it holds {named}: open that {what} instead"
    holds = f"its first {MAX_ENTRIES_SNIFFED} entries include" if partial else "it holds"
    return f"{problem}; {holds} {named}{more}: open one of those instead"


def read(path: str | Path, format: str | None = None, **options) -> list[Case]:
    """Read ``path`` into cases, detecting the format unless one is named.

    ``options`` go to the reader, e.g. ``progress=`` for the DICOM readers;
    see :func:`reader_accepts`.
    """
    spec = get_format(format) if format else detect(path)
    try:
        return spec.read(Path(path), **options)
    except NsclcFormatError:
        raise
    except Exception as error:  # noqa: BLE001 - user files fail in library-specific ways
        # Parsers raise their own exception types (PIL, h5py, defusedxml, pydicom,
        # struct); the user needs the file and the reason, not a traceback.
        reason = str(error) or type(error).__name__
        raise NsclcFormatError(path, f"cannot be read as {spec.title}: {reason}") from error


def reader_accepts(spec: FormatSpec, option: str) -> bool:
    """Whether ``spec``'s reader takes the keyword ``option`` (``"progress"``, ``"lazy"``)."""
    import inspect

    return option in inspect.signature(spec.read).parameters


def write(
    cases: Sequence[Case], path: str | Path, format: str, *, strict: bool = False, plan=None, **options
) -> list[Path]:
    """Write ``cases`` to ``path`` in ``format``; returns the files written.

    The conversion is planned first (:func:`napari_nsclc.conversion.check`):
    a refused conversion, or with ``strict`` a lossy one, raises
    :class:`NsclcFormatError` naming ``path`` before anything is written. A
    caller that has printed the plan of these same cases passes it as ``plan``.
    """
    from . import conversion

    spec = get_format(format)
    cases = list(cases)
    conversion.check(cases, spec, strict=strict, target=path, planned=plan)
    return spec.write(cases, Path(path), **options)
