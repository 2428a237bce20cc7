"""Reading a dataset for ``validate``: with the project's readers, and on past a bad file.

A dataset reader stops at the first file it cannot decode (a NuCLS mask, a VOC
XML, the first case of an NSCLC-NAT folder). Validation must list that file
and still check the rest, so when the whole read fails the dataset is read
again one case at a time, through the same reader, from each of its files
that the layout opens on its own (``Images/7.png`` opens case 7). A file that
fails there is reported with the reader's reason. Nothing is written.
No napari or Qt import.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .. import registry
from ..model import Case, NsclcFormatError
from .problems import Problem, display_path

__all__ = ["Reading", "dataset_root", "read_source"]

#: Annotation files the fallback tries one by one when the layout opens no single file.
_ANNOTATION_SUFFIXES = (".xml", ".json", ".csv", ".geojson")


@dataclass
class Reading:
    """The cases of a source and the files that could not be read.

    Attributes
    ----------
    root : Path
        The folder files are named relative to: the dataset folder, or a
        file's parent.
    cases : list of Case
        As the readers returned them (lazy where the reader is lazy).
    problems : list of Problem
        ``unreadable`` files, with the reader's reason.
    files : int
        Files under ``root`` (the source file alone for a file).
    """

    root: Path
    cases: list[Case] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: int = 0


def dataset_root(path: Path) -> Path:
    """The folder findings are named relative to."""
    return path if path.is_dir() else path.parent


def _files_under(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts):
            yield path


def read_source(path: Path, spec: registry.FormatSpec) -> Reading:
    """Every case of ``path`` (read as ``spec``) and every file that could not be read.

    Raises
    ------
    NsclcFormatError
        When not even one case can be read from a folder and none of its
        files is one the layout reads on its own: the input is unusable.
    """
    path = Path(path)
    root = dataset_root(path)
    reading = Reading(root, files=sum(1 for _ in _files_under(root)) if path.is_dir() else 1)
    try:
        reading.cases = list(registry.read(path, spec.name))
    except NsclcFormatError as error:
        if not path.is_dir():
            shown = display_path(error.path, root)
            reading.problems.append(Problem(shown, "unreadable", f"{shown}: {error.problem}"))
            return reading
        _read_case_by_case(path, spec, reading, error)
    if spec.name == "ignite-he":
        _read_members(sorted((root / "annotations" / "pdl1").rglob("*.json")), None, reading)
    return reading


def _read_case_by_case(path: Path, spec: registry.FormatSpec, reading: Reading, error: NsclcFormatError) -> None:
    """Read each case from one of its files; report the files that fail."""
    members = [p for p in _files_under(path) if _opens_alone(spec, p)]
    use = spec
    if not members:  # a layout that opens only as a folder (VOC detection): its annotation files one by one
        members = [p for p in _files_under(path) if p.suffix.lower() in _ANNOTATION_SUFFIXES]
        use = None
    if not members:
        raise error
    _read_members(members, use, reading)
    if not reading.cases and not reading.problems:
        raise error


def _opens_alone(spec: registry.FormatSpec, path: Path) -> bool:
    try:
        return bool(spec.sniff(path))
    except Exception:  # noqa: BLE001 - a sniffer must never stop validation
        return False


def _read_members(members: list[Path], spec: registry.FormatSpec | None, reading: Reading) -> None:
    """Read each member file (by ``spec``, or as detected); a stem is tried once."""
    tried: set[str] = set()
    known = {case.name for case in reading.cases}
    for member in members:
        key = member.stem if spec is not None else str(member)
        if key in tried:
            continue
        tried.add(key)
        try:
            use = spec or registry.detect(member)
            cases = registry.read(member, use.name)
        except NsclcFormatError as error:
            shown = display_path(error.path, reading.root)
            reading.problems.append(Problem(shown, "unreadable", f"{shown}: {error.problem}"))
            continue
        for case in cases:
            if case.name not in known or spec is None:
                reading.cases.append(case)
                known.add(case.name)
