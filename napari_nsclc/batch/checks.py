"""Integrity checks of one case: pure functions of the case, so they can be mapped over a cluster.

:func:`check_case` runs them all and returns a :class:`CaseReport`. It reads
nothing but the case's own files and writes nothing; given the same case it
returns the same report, so a later Dask job can map it over the cases of a
dataset (``client.map(check_case, cases)``) and gather the reports. The checks
across cases (duplicates, orphans by folder listing, families) are the reduce
step, in :mod:`napari_nsclc.batch.layouts` and :mod:`napari_nsclc.batch.validate`.

Sizes come from file headers: no pixel is decoded to compare an image with its
mask. Masks are decoded one at a time to check their values, and the image
once, for its perceptual hash. No napari or Qt import.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..formats import masks as mask_io
from ..model import Case, NsclcFormatError, image_size
from . import families
from .casefiles import file_masks, primary_file, reader_problems
from .problems import NOTE, PROBLEM, Problem, classify_warning, display_path

__all__ = ["CaseReport", "check_case", "image_shape", "mask_value_problems", "object_problems", "size_problems"]

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif")
#: Slack of the outside-image test, in pixels (float rounding of corner coordinates).
_EDGE_SLACK = 1e-6


@dataclass
class CaseReport:
    """What the checks of one case found.

    Attributes
    ----------
    name : str
        The case's name.
    problems : list of Problem
        Problems and notes, in the order found.
    fingerprint : ndarray of uint8, shape (8, 32), or None
        :func:`napari_nsclc.batch.families.fingerprint` of its image, when it has a 2-D one.
    image : str or None
        The image file hashed, for the families.
    """

    name: str
    problems: list[Problem] = field(default_factory=list)
    fingerprint: np.ndarray | None = None
    image: str | None = None


def check_case(
    case: Case, root: Path | None = None, *, size_tolerance: int = 0, hash_images: bool = True
) -> CaseReport:
    """Every per-case check of ``case``.

    Parameters
    ----------
    case : Case
        As a reader returned it (lazy arrays are decoded here, one at a time).
    root : Path, optional
        The dataset root: files are named relative to it.
    size_tolerance : int
        Pixels by which a mask may differ from its image before it is a
        problem (NuCLS: 2, FORMATS.md §2); smaller differences are notes.
    hash_images : bool
        Compute the image's fingerprint for the families.

    Returns
    -------
    CaseReport
        The reader's warnings first, then the checks' own findings about a
        file and kind the reader has not already reported.
    """
    report = CaseReport(case.name)
    found = reader_problems(case, root, size_tolerance)
    reported = {(p.file, p.kind) for p in found}
    own = [*size_problems(case, root, size_tolerance), *mask_value_problems(case, root), *object_problems(case, root)]
    if hash_images:
        fingerprint, image, problem = _fingerprint(case, root)
        report.fingerprint, report.image = fingerprint, image
        own += [problem] if problem else []
    for problem in own:
        if (problem.file, problem.kind) not in reported:
            found.append(problem)
            reported.add((problem.file, problem.kind))
    report.problems = found
    return report


# --------------------------------------------------------------------------- sizes


def _spatial(shape: tuple[int, ...], rgb: bool) -> tuple[int, int]:
    spatial = shape[:-1] if rgb and len(shape) >= 3 else shape
    return int(spatial[-2]), int(spatial[-1])


def image_shape(case: Case) -> tuple[int, int] | None:
    """``(H, W)`` of the case's image file from its header; None without an image. Raises NsclcFormatError."""
    data = case.image.data
    if data is None:
        return None
    first = data[0] if case.image.multiscale else data
    if first.ndim < 2 or first.ndim > 3 or (first.ndim == 3 and not case.image.rgb):
        return None  # a volume or a stack of patches: checked by its reader
    return _spatial(tuple(first.shape), case.image.rgb)


def size_problems(case: Case, root: Path | None = None, tolerance: int = 0) -> list[Problem]:
    """Masks whose size differs from their image's (or, without an image, from the first mask's).

    Only file headers are read. A header that cannot be read is reported as ``unreadable``.
    """
    out: list[Problem] = []
    reference, reference_name = None, None
    try:
        reference = image_shape(case)
        reference_name = display_path(case.image.path, root) if case.image.path else "its image"
    except NsclcFormatError as error:
        out.append(_unreadable(case.image.path or case.name, error, root))
    for mask in file_masks(case):
        shown = display_path(mask.attributes["path"], root)
        try:
            level = mask.data[0] if mask.multiscale else mask.data
            shape = (int(level.shape[-2]), int(level.shape[-1]))
        except NsclcFormatError as error:
            out.append(_unreadable(mask.attributes["path"], error, root))
            continue
        if reference is None:
            reference, reference_name = shape, shown
            continue
        if shape != reference:
            off = max(abs(a - b) for a, b in zip(shape, reference, strict=True))
            message = (f"{shown}: mask is {shape[1]}x{shape[0]} px but {reference_name} is "
                       f"{reference[1]}x{reference[0]} px")  # fmt: skip
            out.append(Problem(shown, "size-mismatch", message, NOTE if off <= tolerance else PROBLEM))
    return out


# --------------------------------------------------------------------------- values


def mask_value_problems(case: Case, root: Path | None = None) -> list[Problem]:
    """Values outside each mask's class schema, decoding one mask at a time.

    Uses :func:`napari_nsclc.formats.masks.check_mask` (the readers' own test)
    and the reader's ``check_loaded_case`` (IGNITE's ``256 - label`` trap).
    Multiscale masks are checked at their coarsest level.
    """
    out: list[Problem] = []
    reader = sys.modules.get(case.provenance.reader)
    for mask in file_masks(case):
        if mask.kind != "semantic":
            continue
        path = mask.attributes["path"]
        try:
            values = np.asarray(mask.data[-1] if mask.multiscale else mask.data)
        except NsclcFormatError as error:
            out.append(_unreadable(path, error, root))
            continue
        except Exception as error:  # noqa: BLE001 - decoders fail in library-specific ways
            out.append(_unreadable(path, NsclcFormatError(path, f"cannot be read ({error})"), root))
            continue
        shown = display_path(path, root)
        messages = mask_io.check_mask(values, mask.schema, path, None, mask.attributes)
        for message in messages:
            kind, severity = classify_warning(message)
            out.append(Problem(shown, kind, message, severity))
        if reader is not None and hasattr(reader, "check_loaded_case"):
            probe = replace(case, masks=[replace(mask, data=values)],
                            provenance=replace(case.provenance, warnings=[], details=dict(case.provenance.details)))
            reader.check_loaded_case(probe)
            for message in probe.provenance.warnings:
                kind, severity = classify_warning(message)
                out.append(Problem(shown, kind, message, severity))
        del values
    return out


# --------------------------------------------------------------------------- objects


def _object_file(case: Case, attributes: dict, root: Path | None) -> str:
    """The annotation file an object was read from."""
    uid = attributes.get("sop_instance_uid")
    files = case.document.get("voc_files") or {}
    if uid in files:
        return display_path(files[uid], root)
    if case.document.get("ocelot_csv"):
        return display_path(Path(case.provenance.source) / case.document["ocelot_csv"], root)
    source = Path(case.provenance.source)
    if case.provenance.format == "nucls" and source.is_dir():
        return display_path(source / "csv" / f"{case.name}.csv", root)
    return display_path(source, root) if source.is_file() else primary_file(case, root)


def _outside(coords: np.ndarray, height: int, width: int) -> np.ndarray:
    """Rows of ``coords`` (..., 2) = (y, x) lying outside an image of ``height`` x ``width`` pixels."""
    y, x = coords[..., 0], coords[..., 1]
    low = -0.5 - _EDGE_SLACK
    bad = (y < low) | (x < low) | (y > height - 0.5 + _EDGE_SLACK) | (x > width - 0.5 + _EDGE_SLACK)
    return bad.reshape(len(coords), -1).any(axis=1) if len(coords) else np.zeros(0, bool)


def _off_image(ring: np.ndarray, height: int, width: int) -> bool:
    """Whether an outline (K, 2) = (y, x) lies wholly off the image: its bounding box misses it."""
    if not len(ring):
        return False
    (y0, x0), (y1, x1) = ring.min(axis=0), ring.max(axis=0)
    return bool(y0 > height - 0.5 or x0 > width - 0.5 or y1 < -0.5 or x1 < -0.5)


def object_problems(case: Case, root: Path | None = None) -> list[Problem]:
    """Boxes and points outside their image, and outlines wholly outside it; one problem per file and layer.

    A box is outside when any edge is (the readers warn the same way). An
    image covers model coordinates ``-0.5 .. H - 0.5`` (pixel centres at
    integers, see :mod:`napari_nsclc.model`). Cases whose image size is not
    known (a COCO file without sizes, an XML without its slide) are skipped.
    """
    size = image_size(case)
    if size is None:
        return []
    height, width = size
    out = []
    layers = [(s, "boxes", s.bounds.reshape(-1, 2, 2)) for s in case.boxes]
    layers += [(s, "points", s.coords[:, -2:].reshape(-1, 1, 2)) for s in case.points]
    for objects in case.polygons:  # an outline cut by the image's edge is fine; one wholly off it is not
        flags = np.array([_off_image(p.exterior[:, -2:], height, width) for p in objects.polygons], bool)
        layers.append((objects, "outlines", flags))
    for objects, noun, coords in layers:
        bad = coords if coords.dtype == bool else _outside(coords, height, width)
        by_file: dict[str, list[int]] = {}
        for index in np.nonzero(bad)[0].tolist():
            by_file.setdefault(_object_file(case, objects.attributes[index], root), []).append(index)
        for shown, indices in by_file.items():
            message = (f"{shown}: {len(indices)} of {len(objects)} {noun} of layer {objects.name!r} lie outside the "
                       f"{width}x{height} image (first: object {indices[0]}, class {objects.classes[indices[0]]})")
            out.append(Problem(shown, "outside-image", message))
    return out


# --------------------------------------------------------------------------- the image


def _fingerprint(case: Case, root: Path | None) -> tuple[np.ndarray | None, str | None, Problem | None]:
    """The case's image fingerprint and file, or the reason it could not be decoded."""
    source = _hashable(case)
    if source is None:
        return None, None, None
    shown = display_path(source, root) if isinstance(source, str) else case.name
    try:
        return families.fingerprint(source), shown, None
    except NsclcFormatError as error:
        return None, shown, _unreadable(source if isinstance(source, str) else case.name, error, root)
    except Exception as error:  # noqa: BLE001 - decoders fail in library-specific ways
        problem = NsclcFormatError(shown, f"cannot be decoded ({error or type(error).__name__})")
        return None, shown, _unreadable(source if isinstance(source, str) else case.name, problem, root)


def _hashable(case: Case):
    """The image to hash: its file, its in-memory pixels, or None (volumes, slides, no image)."""
    image = case.image
    if image.multiscale or case.provenance.format in ("slide", "dicom", "lung-pet-ct-dx"):
        return None
    try:
        shape = image_shape(case)
    except NsclcFormatError:
        shape = None  # reported by size_problems
        if image.path and Path(image.path).suffix.lower() in _IMAGE_SUFFIXES:
            return image.path  # decoding it says why
    if shape is None or shape[0] * shape[1] > families.MAX_PIXELS:
        return None
    if image.path and Path(image.path).suffix.lower() in _IMAGE_SUFFIXES and Path(image.path).is_file():
        return image.path
    if image.data is not None and not isinstance(image.data, (list, tuple)):
        return np.asarray(image.data)  # in a container (HDF5, parquet): small patches
    return None


def _unreadable(path, error: NsclcFormatError, root: Path | None) -> Problem:
    shown = display_path(path, root)
    return Problem(shown, "unreadable", f"{shown}: {error.problem}")
