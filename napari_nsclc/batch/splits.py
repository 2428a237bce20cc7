"""Which split (train, val, test) and which fold each case belongs to, per layout.

A case's split is given as ``{fold: split}``: ``{"": "train"}`` for a dataset
with one train/test split, ``{"fold_1": "test", "fold_2": "train", ...}`` for
NuCLS's cross-validation folds. The layouts carry it in different places:

* IGNITE H&E: ``data_overview.csv``, read by its reader into
  ``provenance.details["split"]`` and ``image.metadata["split"]`` (what
  ``Workspace.split_of`` reads).
* PASCAL VOC: ``ImageSets/*/<split>.txt`` lists, read into
  ``provenance.details["voc_splits"]`` or ``["splits"]``; an image in several
  lists (``train`` and ``trainval``) has them joined with ``+``.
* OCELOT: the ``{split}`` folder of ``images/{split}/...``.
* NuCLS: ``train_test_splits/fold_{k}_{train|test}.csv`` (columns
  ``,slide_name,hospital,type,fold``) beside the dataset or inside it, read
  here (its reader does not read them); a FOV's split is its slide's.

NSCLC-NAT, MIDOG and single files have none. No napari or Qt import.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from ..model import Case
from .problems import Problem, display_path

__all__ = ["case_splits", "dataset_folds", "find_nucls_folds", "read_nucls_folds"]

_FOLD_FILE = re.compile(r"^fold_(?P<fold>[^_]+)_(?P<role>train|test)$")


def case_splits(case: Case, folds: dict[str, dict[str, str]] | None = None) -> dict[str, str]:
    """The split of ``case`` per fold; ``{}`` when its dataset has no splits.

    Parameters
    ----------
    case : Case
    folds : dict, optional
        NuCLS folds, ``{slide name: {fold: split}}`` (:func:`read_nucls_folds`).
    """
    details, metadata = case.provenance.details, case.image.metadata
    split = details.get("split") or metadata.get("split")  # as Workspace.split_of
    if split:
        return {"": str(split)}
    listed = details.get("voc_splits") or details.get("splits") or metadata.get("splits")
    if listed:
        return {"": "+".join(sorted(set(map(str, listed))))}
    if case.provenance.format == "ocelot":
        found = _ocelot_split(case)
        return {"": found} if found else {}
    if folds and metadata.get("slide") in folds:
        return dict(folds[metadata["slide"]])
    return {}


def _ocelot_split(case: Case) -> str | None:
    """The ``{split}`` of ``images/{split}/{cell|tissue}/{id}.jpg`` (or of its annotation file)."""
    candidates = [case.image.path, *(m.attributes.get("relative_path") for m in case.masks),
                  case.document.get("ocelot_csv")]  # fmt: skip
    for candidate in candidates:
        if not candidate:
            continue
        parts = Path(candidate).parts
        for index, part in enumerate(parts[:-2]):
            if part in ("images", "annotations") and parts[index + 2] in ("cell", "tissue"):
                return parts[index + 1]
    return None


def find_nucls_folds(root: Path) -> Path | None:
    """The ``train_test_splits/`` folder of a NuCLS dataset: inside ``root`` or beside it."""
    for folder in (root / "train_test_splits", root.parent / "train_test_splits"):
        if folder.is_dir() and any(folder.glob("fold_*_*.csv")):
            return folder
    return None


def read_nucls_folds(folder: Path) -> tuple[dict[str, dict[str, str]], list[tuple[Path, str]]]:
    """Slide membership of every fold file.

    Parameters
    ----------
    folder : Path
        ``train_test_splits/`` holding ``fold_{k}_{train|test}.csv``.

    Returns
    -------
    folds : dict of str to dict of str to str
        ``{slide_name: {"fold_1": "train", "fold_2": "test", ...}}``; a slide
        listed in both lists of one fold gets ``"test+train"``.
    unreadable : list of (Path, str)
        Fold files that could not be read, with the reason.
    """
    folds: dict[str, dict[str, str]] = {}
    unreadable: list[tuple[Path, str]] = []
    for path in sorted(folder.glob("fold_*_*.csv")):
        match = _FOLD_FILE.match(path.stem)
        if match is None:
            continue
        fold, role = f"fold_{match['fold']}", match["role"]
        try:
            with path.open(newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
        except (OSError, UnicodeDecodeError, csv.Error) as error:
            unreadable.append((path, str(error)))
            continue
        if rows and "slide_name" not in rows[0]:
            unreadable.append((path, "has no slide_name column"))
            continue
        for row in rows:
            slide = (row.get("slide_name") or "").strip()
            if not slide:
                continue
            roles = folds.setdefault(slide, {})
            roles[fold] = role if roles.get(fold, role) == role else "test+train"
    return folds, unreadable


def dataset_folds(spec_name: str, root: Path) -> tuple[dict[str, dict[str, str]], list[Problem]]:
    """The folds of a dataset (NuCLS's ``train_test_splits/``, when it has them) and its fold files that cannot be read.

    Returns
    -------
    folds : dict
        As :func:`read_nucls_folds`; ``{}`` for other layouts.
    problems : list of Problem
        ``unreadable`` fold files, named relative to ``root``.
    """
    folder = find_nucls_folds(root) if spec_name == "nucls" else None
    if folder is None:
        return {}, []
    folds, unreadable = read_nucls_folds(folder)
    shown = [(display_path(path, root), why) for path, why in unreadable]
    return folds, [Problem(name, "unreadable", f"{name}: {why}") for name, why in shown]
