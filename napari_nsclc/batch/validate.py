"""``napari-nsclc validate``: check a whole dataset's integrity, headless.

:func:`validate` detects the layout, reads it with the project's readers
(:mod:`napari_nsclc.batch.sources`), runs the per-case checks of
:mod:`napari_nsclc.batch.checks` on one case at a time, then the checks across
cases (:mod:`napari_nsclc.batch.layouts`) and the augmentation families
(:mod:`napari_nsclc.batch.families`). It never writes anything.

The per-case step, :func:`napari_nsclc.batch.checks.check_case`, is a pure
function of one case; the rest is a reduce over its reports. Running the map
step on a Dask cluster later changes only :func:`_case_reports`. No napari or
Qt import.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .. import registry
from ..model import Case
from . import families as fam
from .casefiles import primary_file
from .checks import CaseReport, check_case
from .layouts import dataset_problems
from .problems import KINDS, NOTE, Problem, display_path
from .sources import read_source
from .splits import case_splits, find_nucls_folds, read_nucls_folds

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
    on_case: Callable[[int, int, str], None] | None = None,
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
    on_case : callable, optional
        ``on_case(done, total, name)`` after each case, for progress.

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
    reports = _case_reports(reading.cases, root, tolerance, hash_images, on_case)
    for report in reports:
        found += report.problems
    found += dataset_problems(spec.name, root, reading.cases, whole=path.is_dir())
    folds, fold_problems = _folds(spec.name, root)
    found += fold_problems
    if hash_images:
        result.families, family_problems = _families(reading.cases, reports, folds, max_distance)
        result.hashed = sum(1 for report in reports if report.fingerprint is not None)
        found += family_problems
    for problem in _unique(found, root):
        (result.notes if problem.severity == NOTE else result.problems).append(problem)
    return result


def _case_reports(cases: Sequence[Case], root: Path, tolerance: int, hash_images: bool, on_case) -> list[CaseReport]:
    """The map step: :func:`check_case` of every case, one at a time (a later Dask job maps it)."""
    reports, hashed = [], set()
    for done, case in enumerate(cases, start=1):
        image = case.image.path
        again = image is not None and image in hashed  # one image annotated in two files is hashed once
        try:
            reports.append(check_case(case, root, size_tolerance=tolerance, hash_images=hash_images and not again))
        except Exception as error:  # noqa: BLE001 - a file failing in a way no reader foresaw stops only its case
            shown = primary_file(case, root)
            reason = f"{shown}: cannot be checked ({type(error).__name__}: {error})"
            reports.append(CaseReport(case.name, [Problem(shown, "unreadable", reason)]))
        hashed.add(image)
        if on_case is not None:
            on_case(done, len(cases), case.name)
    return reports


def _folds(spec_name: str, root: Path) -> tuple[dict[str, dict[str, str]], list[Problem]]:
    """NuCLS's fold files, when the dataset has them."""
    if spec_name != "nucls":
        return {}, []
    folder = find_nucls_folds(root)
    if folder is None:
        return {}, []
    folds, unreadable = read_nucls_folds(folder)
    shown = [(display_path(path, root), why) for path, why in unreadable]
    problems = [Problem(name, "unreadable", f"{name}: {why}") for name, why in shown]
    return folds, problems


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
