"""``napari-nsclc validate``: check a whole dataset's integrity, headless.

:func:`validate` detects the layout, reads it with the project's readers
(:mod:`napari_nsclc.batch.sources`), runs the per-case checks of
:mod:`napari_nsclc.batch.checks` on one case at a time, then the checks across
cases (:mod:`napari_nsclc.batch.layouts`) and the augmentation families
(:mod:`napari_nsclc.batch.families`). It never writes anything.

The per-case step, :func:`napari_nsclc.batch.checks.check_case`, is a pure
function of one case, mapped over the dataset by
:func:`napari_nsclc.batch.engine.run_step` (in this process, on local worker
processes or on a Dask cluster); the rest is a reduce over its reports, in case
order, so the result does not depend on where the checks ran. No napari or Qt
import.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .. import registry
from . import families as fam
from .casefiles import primary_file
from .checks import CaseReport, check_case
from .layouts import dataset_problems
from .problems import KINDS, NOTE, Problem
from .engine import Source, run_step
from .progress import Progress
from .sources import Reading, read_source
from .splits import case_splits, dataset_folds

__all__ = ["EXIT_CLEAN", "EXIT_PROBLEMS", "ValidationResult", "validate"]

EXIT_CLEAN = 0
EXIT_PROBLEMS = 1
#: Pixels a NuCLS mask may be off its RGB (FORMATS.md §2: "a pixel or two"); larger differences are problems.
NUCLS_SIZE_TOLERANCE = 2


@dataclass
class ValidationResult:
    """What ``validate`` found in one dataset.

    Attributes
    ----------
    path : str
        The dataset folder or file given.
    format, title : str
        The layout detected (``"nsclc-nat"``) and its title.
    cases, files, hashed : int
        Cases read, files under the dataset folder, images hashed for families.
    problems : list of Problem
        Findings that make the exit code 1.
    notes : list of Problem
        Findings worth saying that do not (a 16-bit mask, a NuCLS mask a pixel off).
    families : list of Family
        Augmentation families of two or more images.
    """

    path: str
    format: str
    title: str
    cases: int = 0
    files: int = 0
    hashed: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)
    families: list[fam.Family] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when clean, 1 when a problem was found."""
        return EXIT_PROBLEMS if self.problems else EXIT_CLEAN

    def counts(self) -> dict:
        """Cases, files, problems per kind, notes, families and families split across splits."""
        by_kind = {kind: n for kind in KINDS if (n := sum(1 for p in self.problems if p.kind == kind))}
        split = sum(1 for family in self.families if fam.split_conflicts(family.splits))
        return {"cases": self.cases, "files": self.files, "images_hashed": self.hashed,
                "problems": len(self.problems), "notes": len(self.notes), "problems_by_kind": by_kind,
                "families": len(self.families), "families_split_across_splits": split}  # fmt: skip

    def as_dict(self) -> dict:
        """One JSON-ready object: what was checked, the counts, the problems, notes and families."""
        return {"path": self.path, "format": self.format, "title": self.title, "exit_code": self.exit_code,
                "counts": self.counts(), "problems": [p.as_dict() for p in self.problems],
                "notes": [p.as_dict() for p in self.notes],
                "families": [f.as_dict() for f in self.families]}  # fmt: skip


def validate(
    path: str | Path,
    *,
    max_distance: int = fam.MAX_DISTANCE,
    hash_images: bool = True,
    workers: int | None = 1,
    scheduler: str | None = None,
    progress: Progress | None = None,
    log: Callable[[str], None] | None = None,
) -> ValidationResult:
    """Check the integrity of the dataset or annotation file at ``path``.

    Parameters
    ----------
    path : str or Path
        A dataset folder of any layout the registry reads, or one file.
    max_distance : int
        Largest Hamming distance (bits of 256) between members of one
        augmentation family.
    hash_images : bool
        Find augmentation families (decodes each image once).
    workers : int, optional
        Worker processes for the per-case checks; 1 (the default) checks in
        this process, None chooses by the dataset's size
        (:func:`~napari_nsclc.batch.engine.default_workers`).
    scheduler : str, optional
        Address of a Dask scheduler to run the checks on instead.
    progress : Progress, optional
        Advanced as cases are checked; by default a bar or log lines on
        standard error (:class:`~napari_nsclc.batch.progress.Progress`).
    log : callable, optional
        Receives a line saying where the checks run.

    Returns
    -------
    ValidationResult

    Raises
    ------
    NsclcFormatError
        When ``path`` does not exist or is not a dataset or file napari-nsclc
        reads (the CLI's exit code 2).
    """
    path = Path(path)
    spec = registry.detect(path)
    reading = read_source(path, spec)
    root = reading.root
    result = ValidationResult(str(path), spec.name, spec.title, cases=len(reading.cases), files=reading.files)
    found = list(reading.problems)
    tolerance = NUCLS_SIZE_TOLERANCE if spec.name == "nucls" else 0
    runs = {"workers": workers, "scheduler": scheduler, "progress": progress, "log": log}
    reports = _case_reports(Source.of(path, spec.name), reading, tolerance, hash_images, runs)
    for report in reports:
        found += report.problems
    found += dataset_problems(spec.name, root, reading.cases, whole=path.is_dir())
    folds, fold_problems = dataset_folds(spec.name, root)
    found += fold_problems
    if hash_images:
        result.families, family_problems = _families(reading.cases, reports, folds, max_distance)
        result.hashed = sum(1 for report in reports if report.fingerprint is not None)
        found += family_problems
    for problem in _unique(found, root):
        (result.notes if problem.severity == NOTE else result.problems).append(problem)
    return result


def _case_reports(source: Source, reading: Reading, tolerance: int, hash_images: bool, runs: dict) -> list[CaseReport]:
    """The map step: :func:`check_step` over every case, wherever ``runs`` says; reports in case order."""
    repeated, seen = set(), set()
    for index, case in enumerate(reading.cases):  # one image annotated in two files is hashed once
        image = case.image.path
        if image is not None and image in seen:
            repeated.add(index)
        seen.add(image)
    reports: list[CaseReport | None] = [None] * len(reading.cases)
    for indices, batch in run_step(check_step, source, reading, tolerance, hash_images, frozenset(repeated),
                                   label="validate", **runs):  # fmt: skip
        for index, report in zip(indices, batch, strict=True):
            reports[index] = report
    return reports


def check_step(reading: Reading, indices: list[int], tolerance: int, hash_images: bool,
               repeated: frozenset[int]) -> list[CaseReport]:  # fmt: skip
    """:func:`check_case` of the cases at ``indices``; a case that fails unforeseen is one ``unreadable`` problem."""
    reports = []
    for index in indices:
        case = reading.cases[index]
        try:
            reports.append(check_case(case, reading.root, size_tolerance=tolerance,
                                      hash_images=hash_images and index not in repeated))  # fmt: skip
        except Exception as error:  # noqa: BLE001 - a file failing in a way no reader foresaw stops only its case
            shown = primary_file(case, reading.root)
            reason = f"{shown}: cannot be checked ({type(error).__name__}: {error})"
            reports.append(CaseReport(case.name, [Problem(shown, "unreadable", reason)]))
    return reports


def _families(cases, reports, folds, max_distance) -> tuple[list[fam.Family], list[Problem]]:
    """Families of the hashed images, and a problem for each family split across splits or folds."""
    hashed = [(case, report) for case, report in zip(cases, reports, strict=True) if report.fingerprint is not None]
    groups = fam.group_families([c.name for c, _ in hashed], [r.fingerprint for _, r in hashed], max_distance)
    out, problems = [], []
    for members, distance in groups:
        family = fam.Family(
            members=[hashed[i][0].name for i in members],
            files=[hashed[i][1].image for i in members],
            splits=[case_splits(hashed[i][0], folds) for i in members],
            distance=distance,
        )
        if not any(family.splits):
            family.splits = []
        out.append(family)
        conflicts = fam.split_conflicts(family.splits)
        if conflicts:
            problems.append(_family_problem(family, conflicts))
    return out, problems


def _family_problem(family: fam.Family, conflicts: dict[str, list[str]]) -> Problem:
    where = "; ".join(f"{fold + ': ' if fold else ''}{' and '.join(roles)}" for fold, roles in conflicts.items())
    fold = next(iter(conflicts))
    listed = ", ".join(f"{file} ({splits.get(fold) or 'no split'})"
                       for file, splits in zip(family.files, family.splits, strict=True))  # fmt: skip
    message = (f"{family.files[0]}: augmentation family of {len(family.members)} images is split across {where}: "
               f"{listed}")
    return Problem(family.files[0], "family-split", message)


def _unique(problems: Sequence[Problem], root: Path) -> list[Problem]:
    """Problems in the order found, each once.

    A reader warning put on several cases (a DICOM slice skipped while reading a
    patient's series) is kept once: where it names a file that exists, else first.
    """
    by_origin: dict[tuple[str, str], Problem] = {}
    for problem in problems:
        if not problem.origin:
            continue
        key = (problem.kind, problem.origin)
        kept = by_origin.get(key)
        if kept is None or (not (root / kept.file).exists() and (root / problem.file).exists()):
            by_origin[key] = problem
    chosen = [p for p in problems if not p.origin or by_origin[(p.kind, p.origin)] is p]
    return list(dict.fromkeys(chosen))
