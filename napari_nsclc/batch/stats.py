"""``napari-nsclc stats``: class distributions, objects per image and per split, and mask areas of a dataset.

The work is a map over cases and a reduce, like every batch command
(:mod:`napari_nsclc.batch.engine`):

* :func:`case_stats` counts one case: objects per class of every point, box,
  polygon and instance-mask layer, and pixels per class of every semantic
  mask. It is a pure function of the case, and returns a small picklable
  :class:`CaseStats`.
* :func:`stats_step` is the map step that
  :func:`~napari_nsclc.batch.engine.run_step` runs here or on Dask workers;
  a case that fails becomes an ``unreadable`` :class:`Problem`.
* :func:`combine` is the reduce, in case order, into a :class:`DatasetStats`.

Counts follow :meth:`napari_nsclc.model.Case.counts` (what ``napari-nsclc info``
prints): the parts of one polygon object count once, a mask value outside the
schema is counted as ``"<value N>"``, and a background value that is not a
class is left out. One difference: a multiscale mask is counted at its
coarsest level and its counts are scaled to full resolution (level 0), so that
pixels and areas are comparable between masks. No napari or Qt import.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import registry
from ..model import Case, LabelMask, NsclcFormatError, color_to_hex, value_counts
from .casefiles import primary_file, reader_problems
from .engine import Source, run_step
from .problems import Problem, display_path
from .progress import Progress
from .sources import Reading, dataset_root, read_source
from .splits import case_splits, dataset_folds
from .stats_tables import (
    NEUTRAL_COLOUR,
    OBJECTS,
    PIXELS,
    LayerStats,
    MaskArea,
    SplitStats,
    layer_tables,
    mask_areas,
    split_tables,
)

__all__ = [
    "OBJECTS",
    "PIXELS",
    "CaseStats",
    "DatasetStats",
    "case_stats",
    "combine",
    "dataset_stats",
    "pixel_area_um2",
    "semantic_pixels",
    "stats_step",
]

#: Micrometres per unit of ``ImageRef.unit``; any other unit (``"px"``) means the pixel size is unknown.
UM_PER_UNIT = {"um": 1.0, "µm": 1.0, "μm": 1.0, "micron": 1.0, "microns": 1.0, "micrometre": 1.0,
               "micrometer": 1.0, "mm": 1000.0, "nm": 0.001}  # fmt: skip


@dataclass
class CaseStats:
    """The counts of one case: small, picklable, no pixels.

    Attributes
    ----------
    name : str
        The case's name.
    splits : dict of str to str
        ``{fold: split}`` (:func:`~napari_nsclc.batch.splits.case_splits`); ``{}`` when none.
    units : dict of str to str
        Per layer name: :data:`OBJECTS` or :data:`PIXELS`.
    counts : dict of str to dict of str to int
        Per layer, per class: objects, or pixels at full resolution (level 0).
    colours : dict of str to dict of str to str
        Per layer, the schema's classes in schema order, each with its colour as ``"#rrggbb"``.
    downsampling : dict of str to float
        Per semantic mask layer counted below full resolution: level-0 pixels per counted pixel.
    pixel_area_um2 : float or None
        Area of one image pixel in µm² (the two in-plane axes of a volume), ``None`` when unknown.
    skipped : list of Problem
        Files the reader could not read and skipped while reading this case (a truncated DICOM
        slice): ``unreadable``, in the reader's words. The counts cover the rest.
    """

    name: str
    splits: dict[str, str] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    colours: dict[str, dict[str, str]] = field(default_factory=dict)
    downsampling: dict[str, float] = field(default_factory=dict)
    pixel_area_um2: float | None = None
    skipped: list[Problem] = field(default_factory=list)


def pixel_area_um2(pixel_size: Sequence[float], unit: str) -> float | None:
    """Area of one pixel in µm², from its size along each axis in ``unit``.

    Parameters
    ----------
    pixel_size : sequence of float, length 2 or 3
        ``(dy, dx)`` or ``(dz, dy, dx)`` in ``unit``; the last two axes are the image plane.
    unit : str
        ``"um"`` (or ``"µm"``), ``"mm"`` or ``"nm"``; anything else (``"px"``) is unknown.

    Returns
    -------
    float or None
        ``dy * dx`` in µm², or ``None`` when the unit is unknown or a size is not positive.
    """
    factor = UM_PER_UNIT.get(str(unit).strip().lower())
    if factor is None or len(pixel_size) < 2:
        return None
    dy, dx = (float(s) * factor for s in pixel_size[-2:])
    return dy * dx if dy > 0 and dx > 0 and np.isfinite(dy * dx) else None


def _hex(colour) -> str:
    """``"#rrggbb"``; a (nearly) transparent class colour gets a neutral grey, so that its bar is visible."""
    text = color_to_hex(colour)
    return NEUTRAL_COLOUR if len(text) == 9 and int(text[7:], 16) < 128 else text[:7]


def _level_pixels(level) -> int:
    """Pixels of one level, from its shape (a lazy level's file header: nothing is decoded)."""
    return int(np.prod(level.shape))


def semantic_pixels(mask: LabelMask) -> tuple[dict[str, int], float]:
    """Pixels per class of a semantic mask at full resolution, decoded once, kept nowhere.

    Parameters
    ----------
    mask : LabelMask
        ``kind="semantic"``; its data one array (2-D or a stack) or a multiscale list, finest first.

    Returns
    -------
    counts : dict of str to int
        Pixels per class name at level 0, in value order; values outside the schema as
        ``"<value N>"``; the background value left out unless the schema names it.
    downsampling : float
        Level-0 pixels per counted pixel: 1.0, or the area ratio of the coarsest level a
        multiscale mask was counted at (its counts are multiplied by it and rounded).
    """
    levels = mask.data if mask.multiscale else [mask.data]
    counted = levels[-1]  # a slide-sized pyramid is counted at its coarsest level: level 0 can be billions of px
    downsampling = _level_pixels(levels[0]) / max(1, _level_pixels(counted))
    values, counts = value_counts(counted)
    known = set(mask.schema.codes)
    out: dict[str, int] = {}
    for value, count in zip(values.tolist(), counts.tolist(), strict=True):
        if value == mask.schema.background and value not in known:
            continue
        name = mask.schema.name_of(value) if value in known else f"<value {value}>"
        out[name] = out.get(name, 0) + round(count * downsampling)
    return out, downsampling


def case_stats(case: Case, folds: dict[str, dict[str, str]] | None = None) -> CaseStats:
    """Objects or pixels per class of every annotation layer of one case.

    Parameters
    ----------
    case : Case
        As a reader returned it; each lazy mask is decoded once and not kept.
    folds : dict, optional
        NuCLS folds, ``{slide name: {fold: split}}`` (:func:`~napari_nsclc.batch.splits.read_nucls_folds`).

    Returns
    -------
    CaseStats

    Raises
    ------
    Exception
        Whatever decoding a mask raises (:class:`NsclcFormatError` for a damaged file):
        :func:`stats_step` records the case as unreadable.
    """
    stats = CaseStats(case.name, splits=case_splits(case, folds),
                      pixel_area_um2=pixel_area_um2(case.image.pixel_size, case.image.unit))  # fmt: skip
    for objects in case.annotation_sets():
        _add_layer(stats, objects.name, OBJECTS, objects.counts(), objects.schema)
    for mask in case.masks:
        if mask.kind == "instance":
            counts: dict[str, int] = {}
            for name in mask.instance_classes.values():
                counts[name] = counts.get(name, 0) + 1
            _add_layer(stats, mask.name, OBJECTS, counts, mask.schema)
        else:
            counts, downsampling = semantic_pixels(mask)
            _add_layer(stats, mask.name, PIXELS, counts, mask.schema)
            if downsampling != 1.0:
                stats.downsampling[mask.name] = downsampling
    return stats


def _add_layer(stats: CaseStats, layer: str, unit: str, counts: dict[str, int], schema) -> None:
    stats.units.setdefault(layer, unit)
    stats.counts[layer] = {str(name): int(count) for name, count in counts.items()}
    colours = {info.name: _hex(info.color) for info in schema.classes}
    colours.update({name: NEUTRAL_COLOUR for name in counts if name not in colours})
    stats.colours[layer] = colours


def stats_step(reading: Reading, indices: Sequence[int], folds: dict | None) -> list[CaseStats | Problem]:
    """The map step: :func:`case_stats` of the cases at ``indices``; a case that fails is an ``unreadable`` problem.

    Runs in this process or on a Dask worker (:func:`~napari_nsclc.batch.engine.run_step`),
    so one bad case never stops the run.

    Parameters
    ----------
    reading : Reading
        The dataset as read (:func:`~napari_nsclc.batch.sources.read_source`).
    indices : sequence of int
        The cases to count.
    folds : dict or None
        NuCLS folds, passed to :func:`case_stats`.

    Returns
    -------
    list of CaseStats or Problem
        One per index, in order.
    """
    return [_one_case(reading, reading.cases[index], folds) for index in indices]


def _one_case(reading: Reading, case: Case, folds: dict | None) -> CaseStats | Problem:
    try:
        stats = case_stats(case, folds)
    except NsclcFormatError as error:  # a damaged mask: name that file, in the reader's words
        shown = display_path(error.path, reading.root)
        return Problem(shown, "unreadable", f"{shown}: {error.problem}")
    except Exception as error:  # noqa: BLE001 - a file failing in a way no reader foresaw stops only its case
        shown = primary_file(case, reading.root)
        return Problem(shown, "unreadable", f"{shown}: cannot be read ({type(error).__name__}: {error})")
    stats.skipped = [p for p in reader_problems(case, reading.root) if p.kind == "unreadable"]
    return stats


# --------------------------------------------------------------------------- the reduce


@dataclass
class DatasetStats:
    """The statistics of one dataset.

    Attributes
    ----------
    path, format, title : str
        The dataset given, its layout (``"nsclc-nat"``) and the layout's title.
    cases : int
        Cases read; ``counted`` of them were counted (the others' files are in ``unreadable``).
    counted : int
    files : int
        Files under the dataset folder (1 for a file).
    layers : list of LayerStats
        Per annotation layer, in the order first met: classes, totals, images per class, objects per image.
    splits : list of SplitStats
        Per ``(fold, split)``: images and counts per layer and class; ``"no split"`` for cases without one.
    areas : list of MaskArea
        Per semantic mask layer: area per class in µm² where the pixel size is known, px² elsewhere.
    unreadable : list of Problem
        Files that could not be read, with the reason.
    notes : list of str
        What a reader of the numbers should know (masks counted at a coarser level of their pyramid).
    """

    path: str
    format: str
    title: str
    cases: int = 0
    counted: int = 0
    files: int = 0
    layers: list[LayerStats] = field(default_factory=list)
    splits: list[SplitStats] = field(default_factory=list)
    areas: list[MaskArea] = field(default_factory=list)
    unreadable: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when every file was read, 1 when some were unreadable (the numbers cover the rest)."""
        return 1 if self.unreadable else 0

    def layer(self, name: str) -> LayerStats:
        """The layer called ``name``."""
        return next(layer for layer in self.layers if layer.name == name)

    def as_dict(self) -> dict:
        """One JSON-ready object (plain str, int, float, list and dict); ``docs/stats.md`` lists the keys."""
        return {
            "path": self.path, "format": self.format, "title": self.title, "exit_code": self.exit_code,
            "counts": {"cases": self.cases, "cases_counted": self.counted, "files": self.files,
                       "unreadable": len(self.unreadable)},
            "layers": {layer.name: layer.as_dict() for layer in self.layers},
            "objects_per_image": {layer.name: layer.per_image_dict() for layer in self.layers
                                  if layer.unit == OBJECTS},
            "splits": [split.as_dict() for split in self.splits],
            "mask_area": {area.layer: area.as_dict() for area in self.areas},
            "unreadable": [problem.as_dict() for problem in self.unreadable],
            "notes": list(self.notes),
        }  # fmt: skip


def combine(path: str | Path, spec: registry.FormatSpec, reports: Sequence[CaseStats | Problem | None],
            problems: Sequence[Problem], *, files: int = 0) -> DatasetStats:  # fmt: skip
    """The reduce step: the per-case results, in case order, into one :class:`DatasetStats`.

    Parameters
    ----------
    path : str or Path
        The dataset, as given.
    spec : FormatSpec
        Its layout.
    reports : sequence of CaseStats or Problem
        :func:`stats_step`'s results, one per case, in case order.
    problems : sequence of Problem
        Files that could not be read before the map step (:attr:`Reading.problems`, fold files).
    files : int
        Files under the dataset folder.
    """
    counted = [r for r in reports if isinstance(r, CaseStats)]
    failed = [r for r in reports if isinstance(r, Problem)]
    skipped = [problem for case in counted for problem in case.skipped]
    result = DatasetStats(str(path), spec.name, spec.title, cases=len(reports), counted=len(counted), files=files)
    result.layers = layer_tables(counted)
    result.splits = split_tables(counted, result.layers)
    result.areas, result.notes = mask_areas(counted, result.layers)
    result.unreadable = _unique([*problems, *failed, *skipped], dataset_root(Path(path)))
    return result


def _unique(problems: Sequence[Problem], root: Path) -> list[Problem]:
    """Each unreadable file once: a reader's warning put on several cases is kept where it names a file that exists."""
    kept: dict[tuple[str, str], Problem] = {}
    for problem in problems:
        key = (problem.kind, problem.origin or problem.message)
        if key not in kept or (not (root / kept[key].file).exists() and (root / problem.file).exists()):
            kept[key] = problem
    return list(dict.fromkeys(kept.values()))


def dataset_stats(
    path: str | Path,
    *,
    workers: int | None = 1,
    scheduler: str | None = None,
    progress: Progress | None = None,
    log: Callable[[str], None] | None = None,
) -> DatasetStats:
    """Class distributions, objects per image and per split, and mask areas of the dataset or file at ``path``.

    Parameters
    ----------
    path : str or Path
        A dataset folder of any layout the registry reads, or one annotation file.
    workers : int, optional
        Worker processes; 1 (the default) counts in this process, None chooses by the dataset's size
        (:func:`~napari_nsclc.batch.engine.default_workers`).
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``); ``workers`` is then ignored.
    progress : Progress, optional
        Advanced per case; a bar or log lines on standard error by default.
    log : callable, optional
        Receives one line saying where the work runs.

    Returns
    -------
    DatasetStats

    Raises
    ------
    NsclcFormatError
        When ``path`` does not exist or is not a dataset or file napari-nsclc reads (exit code 2).
    """
    path = Path(path)
    if not path.exists():
        raise NsclcFormatError(path, "does not exist")
    spec = registry.detect(path)
    reading = read_source(path, spec)
    folds, fold_problems = dataset_folds(spec.name, reading.root)
    source = Source.of(path, spec.name)
    results: list[CaseStats | Problem | None] = [None] * len(reading.cases)
    for indices, batch in run_step(stats_step, source, reading, folds, workers=workers, scheduler=scheduler,
                                   label="stats", progress=progress, log=log):  # fmt: skip
        for i, r in zip(indices, batch, strict=True):
            results[i] = r
    return combine(path, spec, results, [*reading.problems, *fold_problems], files=reading.files)
