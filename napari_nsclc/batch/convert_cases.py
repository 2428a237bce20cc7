"""The per-case step of ``napari-nsclc convert``: what a worker does with its batch of cases.

For each case, :func:`convert_step` hashes the case's source files, and, when
they and the case's outputs are as the previous run's manifest recorded,
reports the case as skipped. Otherwise it writes the case, on its own, into a
staging folder of its own inside the conversion's work folder (see
:mod:`napari_nsclc.batch.manifest`), or, for one COCO file, writes its part
(:mod:`napari_nsclc.formats._coco_parts`). It never writes into the output
itself: the calling process moves finished files into place, one atomic
rename each, so the output never holds a half-written file whatever happens
to a worker. No napari or Qt import.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import registry
from ..model import Case, NothingToWrite, NsclcFormatError, unique_names
from .casefiles import case_files, primary_file
from .manifest import CaseEntry, Manifest, file_sha256
from .problems import Problem, display_path
from .sources import Reading

__all__ = ["CASES", "PARTS", "CaseOutcome", "Job", "case_keys", "convert_step", "merge_rule", "source_checksums"]

#: Modes of a conversion: each case's files written apart (``CASES``), or parts of one COCO file (``PARTS``).
CASES, PARTS = "cases", "parts"


@dataclass(frozen=True)
class Job:
    """What a worker needs to convert its cases (small and picklable).

    Attributes
    ----------
    writer : str
        The registry name of the writer.
    mode : {"cases", "parts"}
    output : str
        The output file or folder, absolute.
    work : str
        The conversion's work folder, absolute (:func:`~napari_nsclc.batch.manifest.work_folder`).
    run : str
        This run's token: its staging folder, and the key of the previous manifest's cache.
    fresh : bool
        Ignore the previous manifest (``--overwrite``): convert every case.
    image_root : str or None
        For ``"parts"``: the folder image file names are given below.
    """

    writer: str
    mode: str
    output: str
    work: str
    run: str
    fresh: bool = False
    image_root: str | None = None

    @property
    def staging(self) -> Path:
        """This run's staging folder: one sub-folder per case, mirroring the output's parent folder."""
        return Path(self.work) / "staging" / self.run


@dataclass
class CaseOutcome:
    """What happened to one case on a worker.

    Attributes
    ----------
    index : int
        The case's position in the dataset.
    key : str
        Its key in the manifest.
    status : {"skipped", "written", "empty", "failed"}
        Unchanged since the last run; written into ``staged``; nothing to
        write; or failed, with ``problem``.
    entry : CaseEntry or None
        Its manifest entry (``outputs`` name the staged files for ``"written"``).
    staged : str
        Its staging folder, whose content mirrors the output's parent folder.
    problem : Problem or None
    """

    index: int
    key: str
    status: str
    entry: CaseEntry | None = None
    staged: str = ""
    problem: Problem | None = None


def case_keys(cases: Sequence[Case]) -> list[str]:
    """A key per case, unique within the dataset: its name, then ``#2``, ``#3`` for repeated names."""
    return unique_names((case.name for case in cases), "#")


def source_files(case: Case) -> list[Path]:
    """The files a case's conversion reads: its own files, and a volume's slices."""
    files = [*case_files(case), *(Path(p) for p in case.image.metadata.get("files") or ())]
    return [p for p in dict.fromkeys(files) if p.is_file()]


def source_checksums(case: Case, root: Path, cache: dict[str, str]) -> dict[str, str]:
    """SHA-256 of each source file of ``case``, by path relative to ``root``; ``cache`` saves hashing a
    file shared by many cases (one COCO JSON) more than once per process."""
    sums = {}
    for path in source_files(case):
        key = str(path)
        if key not in cache:
            cache[key] = file_sha256(path)
        sums[display_path(path, root)] = cache[key]
    return sums


def merge_rule(spec: registry.FormatSpec, relative: str):
    """The rule combining the versions of ``relative`` (a path inside the output folder), or None."""
    return next((rule for pattern, rule in spec.merged_files if fnmatch.fnmatch(relative, pattern)), None)


# --------------------------------------------------------------------------- on the worker

#: The previous run's manifest, by run token: each worker process reads it once per run.
_PRIOR: dict[str, Manifest | None] = {}
#: Checksums of source files shared by many cases, by run token.
_HASHED: dict[str, dict[str, str]] = {}


def _prior(job: Job) -> Manifest | None:
    if job.run not in _PRIOR:
        _PRIOR.clear()  # a long-lived worker keeps one run's manifest, not every run's
        _HASHED.clear()
        _PRIOR[job.run] = None if job.fresh else Manifest.load(Path(job.work))
    return _PRIOR[job.run]


def convert_step(reading: Reading, indices: list[int], job: Job) -> list[CaseOutcome]:
    """Convert the cases at ``indices`` (the map step of ``convert``, run by :mod:`napari_nsclc.batch.engine`)."""
    keys = case_keys(reading.cases)
    prior = _prior(job)
    hashed = _HASHED.setdefault(job.run, {})
    outcomes = []
    for index in indices:
        case, key = reading.cases[index], keys[index]
        try:
            outcomes.append(_convert_case(case, index, key, reading.root, job, prior, hashed))
        except Exception as error:  # noqa: BLE001 - a file failing in a way no reader foresaw stops only its case
            named = getattr(error, "path", None)  # the damaged mask, the output that cannot be written ...
            shown = display_path(named, reading.root) if named else primary_file(case, reading.root)
            problem = Problem(shown, "unreadable", f"{shown}: not converted ({_reason(error)})")
            outcomes.append(CaseOutcome(index, key, "failed", problem=problem))
            shutil.rmtree(job.staging / str(index), ignore_errors=True)
    return outcomes


def _reason(error: Exception) -> str:
    problem = getattr(error, "problem", None)
    return problem if problem else f"{type(error).__name__}: {error}"


def _convert_case(case: Case, index: int, key: str, root: Path, job: Job, prior: Manifest | None,
                  hashed: dict[str, str]) -> CaseOutcome:  # fmt: skip
    sources = source_checksums(case, root, hashed)
    old = prior.cases.get(key) if prior is not None else None
    if old is not None and old.sources == sources and _intact(old, job):
        return CaseOutcome(index, key, "skipped", entry=old)
    entry = CaseEntry(case.name, sources)
    staged = job.staging / str(index)
    shutil.rmtree(staged, ignore_errors=True)
    output = Path(job.output)
    if job.mode == PARTS:
        from ..formats import _coco_parts

        root_folder = Path(job.image_root) if job.image_root else None
        part = Path(job.work) / "parts" / f"{hashlib.sha1(key.encode()).hexdigest()}.part"  # noqa: S324 - a name
        entry.part, entry.part_sha256 = part.name, _write_part(part, _coco_parts.case_part(case, root_folder))
        return CaseOutcome(index, key, "written", entry=entry)
    spec = registry.get_format(job.writer)
    try:
        spec.write([case], staged / output.name)
    except NothingToWrite:
        return CaseOutcome(index, key, "empty", entry=entry)
    except NsclcFormatError as error:  # name the file in the output, not its staged copy
        path = Path(error.path)
        if staged in path.parents:
            raise NsclcFormatError(output.parent / path.relative_to(staged), error.problem) from error
        raise
    for path in sorted(p for p in staged.rglob("*") if p.is_file()):
        relative = path.relative_to(staged).as_posix()
        inside = relative.partition("/")[2]  # the path inside the output folder, which merge patterns name
        if merge_rule(spec, inside) is not None:
            entry.merged[relative] = path.read_text(encoding="utf-8")
            path.unlink()
        else:
            entry.outputs[relative] = file_sha256(path)
    return CaseOutcome(index, key, "written", entry=entry, staged=str(staged))


def _write_part(path: Path, text: str) -> str:
    """Write a part file, renamed into place whole; returns its SHA-256.

    Unlike the outputs, a part is not flushed to disk before the rename: it is
    an intermediate file, and one that a crash damaged fails its checksum on
    the next run and is made again. Flushing each of thousands of parts cost
    more than tracing them when two workers wrote at once.
    """
    data = text.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return hashlib.sha256(data).hexdigest()


def _intact(entry: CaseEntry, job: Job) -> bool:
    """Whether the files a case wrote last time are still there, unchanged."""
    parent = Path(job.output).parent
    if job.mode == PARTS:
        part = Path(job.work) / "parts" / entry.part
        return bool(entry.part) and part.is_file() and file_sha256(part) == entry.part_sha256
    return all((parent / relative).is_file() and file_sha256(parent / relative) == sha
               for relative, sha in entry.outputs.items())  # fmt: skip
