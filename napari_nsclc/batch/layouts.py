"""Checks across the cases of one dataset: duplicate ids and orphans that no single case shows.

Readers pick one file when a layout offers two (``Images/7.png`` and
``Images/7.jpg``; an OCELOT sample in two splits) and skip files they have no
case for (a ``SegmentationObject/`` mask without its class mask). These
checks list the dataset's folders (names only, no file is opened) and compare
the cases with one another. No napari or Qt import.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

from ..model import Case
from .casefiles import primary_file
from .problems import Problem, display_path

__all__ = ["dataset_problems"]

_NUCLS_ID = re.compile(r"_id-([0-9a-f]{24})_")


def dataset_problems(spec_name: str, root: Path, cases: Sequence[Case], whole: bool = True) -> list[Problem]:
    """Duplicates and orphans of the cases of layout ``spec_name`` read from ``root``.

    ``whole``: ``root`` is the dataset folder (not the folder of one file given), so its folders are listed too.
    """
    out = _duplicate_case_names(cases, root)
    check = _LAYOUT_CHECKS.get(spec_name)
    if check is not None and whole and root.is_dir():
        out += check(root, cases)
    return out


def _duplicate_case_names(cases: Sequence[Case], root: Path | None) -> list[Problem]:
    """Two cases of one name read from one source (two COCO images with one ``file_name``)."""
    seen: dict[tuple[str, str | None, str], Case] = {}
    out = []
    for case in cases:
        key = (case.provenance.source, case.group, case.name)
        if key in seen:
            shown = primary_file(case, root)
            first = primary_file(seen[key], root)
            out.append(Problem(shown, "duplicate-id", f"{shown}: case name {case.name!r} is also used by {first}"))
        seen.setdefault(key, case)
    return out


def _stems_with_two_files(folder: Path, root: Path, suffixes: Sequence[str]) -> list[Problem]:
    """Files of one folder sharing a stem (``7.png`` and ``7.jpg``): the reader opens only the first."""
    by_stem: dict[str, list[Path]] = {}
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in suffixes and not path.name.startswith("."):
                by_stem.setdefault(path.stem, []).append(path)
    out = []
    for paths in by_stem.values():
        for extra in paths[1:]:
            shown = display_path(extra, root)
            out.append(Problem(shown, "duplicate-id", f"{shown}: same stem as {display_path(paths[0], root)}; "
                                                      "only that one is read"))
    return out


def _nat(root: Path, cases: Sequence[Case]) -> list[Problem]:
    from ..formats.masks import IMAGE_SUFFIXES, MASK_SUFFIXES

    out = []
    for folder, suffixes in (("Images", IMAGE_SUFFIXES), ("SegmentationClass", MASK_SUFFIXES),
                             ("Mask", MASK_SUFFIXES + (".jpg", ".jpeg"))):  # fmt: skip
        out += _stems_with_two_files(root / folder, root, suffixes)
    return out


def _voc_segmentation(root: Path, cases: Sequence[Case]) -> list[Problem]:
    """``SegmentationObject/`` masks without a ``SegmentationClass/`` mask (the reader skips them)."""
    objects = root / "SegmentationObject"
    if not objects.is_dir():
        return []
    out = []
    for path in sorted(objects.glob("*.png")):
        if not (root / "SegmentationClass" / path.name).is_file():
            shown = display_path(path, root)
            message = f"{shown}: object mask with no SegmentationClass/{path.name}; not read"
            out.append(Problem(shown, "orphan", message))
    return out


def _nucls(root: Path, cases: Sequence[Case]) -> list[Problem]:
    """NuCLS: CSVs and masks without their RGB, RGBs with neither, one FOV id under two names, CSV indices."""
    out = []
    by_id: dict[str, str] = {}
    for case in cases:
        rgb = case.image.path
        annotated = bool(case.polygons) or bool(case.masks)
        if rgb is None and annotated:
            for folder, suffix in (("csv", ".csv"), ("mask", ".png")):
                path = root / folder / f"{case.name}{suffix}"
                if path.is_file():
                    shown = display_path(path, root)
                    out.append(Problem(shown, "orphan", f"{shown}: no rgb/{case.name}.png for this FOV"))
        elif rgb is not None and not annotated:
            shown = display_path(rgb, root)
            out.append(Problem(shown, "missing", f"{shown}: neither csv/{case.name}.csv nor mask/{case.name}.png"))
        match = _NUCLS_ID.search(case.name)
        if match and match[1] in by_id:
            shown = primary_file(case, root)
            message = f"{shown}: FOV id {match[1]} is also the id of {by_id[match[1]]}"
            out.append(Problem(shown, "duplicate-id", message))
        elif match:
            by_id[match[1]] = case.name
        out += _duplicate_csv_rows(case, root)
    return out


def _duplicate_csv_rows(case: Case, root: Path) -> list[Problem]:
    """NuCLS CSV rows sharing their index column."""
    seen: set[str] = set()
    doubled = []
    for objects in case.polygons:
        for attributes in objects.attributes:
            index = str((attributes.get("row") or {}).get("", "")).strip()
            if index and index in seen:
                doubled.append(index)
            seen.add(index)
    if not doubled:
        return []
    shown = display_path(root / "csv" / f"{case.name}.csv", root)
    return [Problem(shown, "duplicate-id", f"{shown}: {len(doubled)} row(s) repeat an index (first: {doubled[0]})")]


def _ocelot(root: Path, cases: Sequence[Case]) -> list[Problem]:
    """OCELOT: one sample id in two splits (the reader reads one), annotations with no image."""
    out = []
    for kind in ("images", "annotations"):
        seen: dict[tuple[str, str], Path] = {}
        for path in sorted((root / kind).glob("*/*/*")):
            if path.parent.name not in ("cell", "tissue") or not path.is_file():
                continue
            key = (path.parent.name, path.stem)
            if key in seen:
                shown = display_path(path, root)
                out.append(Problem(shown, "duplicate-id", f"{shown}: sample {path.stem} is also in "
                                                          f"{display_path(seen[key], root)}; only one is read"))
            seen.setdefault(key, path)
    for case in cases:
        if case.image.path is None and (case.masks or case.points):
            shown = primary_file(case, root)
            out.append(Problem(shown, "orphan", f"{shown}: no image for {case.name} in images/"))
    return out


def _lung(root: Path, cases: Sequence[Case]) -> list[Problem]:
    """Lung-PET-CT-Dx: one SOPInstanceUID in two series (its XML would belong to both)."""
    seen: dict[str, str] = {}
    out = []
    for case in cases:
        for uid in case.image.metadata.get("sop_instance_uids") or ():
            if uid in seen and seen[uid] != case.name:
                shown = primary_file(case, root)
                out.append(Problem(shown, "duplicate-id", f"{shown}: SOPInstanceUID {uid} is in series {seen[uid]} "
                                                          f"and {case.name}"))
            seen.setdefault(uid, case.name)
    return out


_LAYOUT_CHECKS: dict[str, Callable[[Path, Sequence[Case]], list[Problem]]] = {
    "nsclc-nat": _nat,
    "voc-segmentation": _voc_segmentation,
    "nucls": _nucls,
    "ocelot": _ocelot,
    "lung-pet-ct-dx": _lung,
}
