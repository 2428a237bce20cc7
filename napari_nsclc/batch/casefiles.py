"""The files of a case, and its reader's warnings as findings of ``validate``.

Readers name a file first in each warning, often by its base name only
(``1.png``, which in NSCLC-NAT is three files). :func:`reader_problems` finds
which file of the case is meant, names it relative to the dataset root and
sorts the warning into a kind (:func:`~.problems.classify_warning`). Pure
functions of one case. No napari or Qt import.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..model import Case, LabelMask
from .problems import NOTE, Problem, classify_warning, display_path, warning_file

__all__ = ["case_files", "exists", "file_masks", "primary_file", "reader_problems"]

#: Findings of :func:`~napari_nsclc.formats.masks.check_mask` that readers copy into their warnings, naming
#: the mask by its base name only (``1.png``, which in NSCLC-NAT is three files): recomputed per mask file.
_RECOMPUTED = re.compile(r"mask is \d+x\d+ pixels but its image is|value\(s\) outside the \S+ classes|16-bit mask")


def case_files(case: Case) -> list[Path]:
    """Every file a case was read from or names (existing or not), primary file first."""
    paths = [case.image.path, *(m.attributes.get("path") for m in case.masks)]
    document = case.document
    paths += list((document.get("voc_files") or {}).values())
    paths += list(case.provenance.details.get("unmatched_annotations") or [])
    paths += list(case.provenance.details.get("annotation_files") or [])
    if document.get("ocelot_csv"):
        paths.append(str(Path(case.provenance.source) / document["ocelot_csv"]))
    if case.provenance.format == "nucls" and Path(case.provenance.source).is_dir():
        source = Path(case.provenance.source)
        paths += [str(source / "csv" / f"{case.name}.csv"), str(source / "mask" / f"{case.name}.png")]
    paths.append(case.provenance.source)
    unique = dict.fromkeys(Path(p) for p in paths if p)
    return [p for p in unique if not p.is_dir()]


def primary_file(case: Case, root: Path | None) -> str:
    """The file that stands for the case in a message: its image, else its first existing file."""
    files = case_files(case)
    existing = [p for p in files if p.is_file()] or files
    return display_path(existing[0], root) if existing else case.name


def _resolve(head: str, case: Case, root: Path | None) -> str:
    """The file a warning's first field names, relative to ``root``."""
    for path in case_files(case):
        shown = display_path(path, root)
        if head in (shown, path.name, str(path), Path(shown).with_suffix("").as_posix()):
            return shown
        if "/" in head and shown.endswith("/" + head):
            return shown
    looks_like_a_file = "/" in head or Path(head).suffix != ""
    if not looks_like_a_file:
        return primary_file(case, root)
    # a file the reader skipped: in the series folder, the annotation folder or the dataset root
    folders = [case.image.path, case.provenance.details.get("annotation_folder"), root]
    read = {str(Path(p)) for p in case.image.metadata.get("files") or ()}  # a series' slices that were read
    for folder in (Path(f) for f in folders if f):
        candidate = folder / head
        if folder.is_dir() and candidate.is_file() and str(candidate) not in read:
            return display_path(candidate, root)
    return head


# --------------------------------------------------------------------------- the reader's own findings


def reader_problems(case: Case, root: Path | None = None, size_tolerance: int = 0) -> list[Problem]:
    """The reader's warnings of ``case``, each sorted into a kind (:func:`~.problems.classify_warning`)."""
    fitted = case.provenance.details.get("mask_fitted")
    small_fit = bool(fitted) and max(abs(a - b) for a, b in zip(fitted["mask"], fitted["rgb"], strict=True)) \
        <= size_tolerance  # fmt: skip
    recomputed = bool(file_masks(case))
    out = []
    for warning in dict.fromkeys(case.provenance.warnings):
        if recomputed and _RECOMPUTED.search(warning):
            continue  # check_mask's own finding, made again by the checks below with the mask's full path
        kind, severity = classify_warning(warning)
        if kind == "size-mismatch" and small_fit and "fitted to the RGB" in warning:
            severity = NOTE  # NuCLS: masks a pixel or two off their RGB are normal, and fitted (FORMATS.md §2)
        head = warning_file(warning)
        shown = _resolve(head, case, root)
        if kind == "orphan" and not exists(shown, root):
            shown = primary_file(case, root)  # the warning names the missing image: the orphan is the annotation
        out.append(Problem(shown, kind, _naming(warning, head, shown), severity, origin=warning))
    return out


def _naming(warning: str, head: str, shown: str) -> str:
    """The warning, starting with the file it is about: ``1.png: ...`` -> ``SegmentationClass/1.png: ...``."""
    if head == shown:
        return warning
    forms = (Path(shown).name, Path(shown).stem, Path(shown).with_suffix("").as_posix())
    qualified = shown.endswith("/" + head) or head in forms
    if head and qualified:
        return shown + warning[len(head):]
    return f"{shown}: {warning}"


def file_masks(case: Case) -> list[LabelMask]:
    """Masks read from a file of their own (not derived in memory, not an empty one ready to paint)."""
    return [m for m in case.masks if m.attributes.get("path") and not m.attributes.get("missing")]


def exists(shown: str, root: Path | None) -> bool:
    """Whether the file ``shown`` (relative to ``root``) exists."""
    return (root / shown if root is not None else Path(shown)).exists()


