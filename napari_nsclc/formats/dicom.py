"""DICOM CT and PET series: a file, a series folder, a study, a patient or a collection.

Both the NBIA descriptive layout (``Patient/MM-DD-YYYY-NA-study-n/n.000000-series-n/1-01.dcm``)
and the older layout with UIDs as folder names are read the same way, because
nothing here relies on names: every file's header is read and slices are
grouped by ``SeriesInstanceUID`` and sorted along the slice normal
(``ImagePositionPatient · (row direction × column direction)``).

Each series becomes one :class:`~napari_nsclc.model.Case` whose image is a
``(z, y, x)`` volume:

* values in Hounsfield units for CT (``RescaleSlope``/``RescaleIntercept`` of
  each slice), and in SUV body-weight for PET when the radiopharmaceutical
  tags allow it (``pet_units="suv"``, the default), else Bq/ml;
* ``pixel_size`` = (slice spacing, row spacing, column spacing) in mm and
  ``origin`` = the first slice's position, so a CT and a PET of one frame of
  reference overlay although their grids differ;
* ``metadata["window"]``: ``(width, level)`` of the default window preset for
  the modality, named in ``metadata["window_preset"]`` (see
  :data:`WINDOW_PRESETS`), and ``metadata["contrast_limits"]`` derived from it.

Long series are lazy: one dask chunk per slice, read on first display.
Uncompressed little-endian slices are read straight from the file at the pixel
data offset; compressed ones (RLE, JPEG lossless, JPEG 2000) go through
pydicom's decoders (pylibjpeg plugins). Decoding, rescaling and stacking the
pixels, and PET's SUV factor, are in :mod:`napari_nsclc.formats._dicom_pixels`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..model import Case, ImageRef, NsclcFormatError, Provenance
from ..registry import FormatSpec
from ._dicom_pixels import (
    _UNCOMPRESSED_LE,
    _decode_problem,
    _decoder_available,
    _number,
    _pixel_dtype,
    _volume,
    suv_bw_factor,
)

__all__ = [
    "FORMAT",
    "LAZY_BYTES",
    "WINDOW_PRESETS",
    "SeriesInfo",
    "SliceInfo",
    "contrast_limits",
    "default_window",
    "find_series",
    "group_series",
    "read_dicom",
    "read_series",
    "scan_files",
]

#: Window presets, as ``name: (width, level)``. CT values are HU; "pet" is in
#: SUV body-weight (0–6), the usual display range for FDG.
WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "mediastinum": (350.0, 40.0),
    "lung": (1400.0, -700.0),
    "bone": (1800.0, 400.0),
    "pet": (6.0, 3.0),
}

#: Default window preset by DICOM Modality.
DEFAULT_WINDOW_BY_MODALITY = {"CT": "mediastinum", "PT": "pet"}

#: Series larger than this many bytes (as decoded) are returned as a lazy dask
#: array with one chunk per slice.
LAZY_BYTES = 128 * 2**20
#: Reading many series (a whole collection), those after the first ones that
#: together decode to this many bytes are lazy too: memory stays bounded.
EAGER_TOTAL_BYTES = 1 << 30

#: SOP classes that hold no image (DICOMDIR, SR, RTSTRUCT, KO, PR, ...) are
#: recognised by having no Pixel Data; DICOMDIR by its media storage class.
_DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
_NON_IMAGE_MODALITIES = {"SR", "RTSTRUCT", "KO", "PR", "REG", "RTPLAN", "RTDOSE", "SEG", "DOC"}
_PIXEL_DATA = 0x7FE00010
_GAP_TOLERANCE = 0.1  # a spacing more than 10 % off the median is a gap


@dataclass
class SliceInfo:
    """What the header of one image file says, enough to place and read its pixels."""

    path: Path
    sop_instance_uid: str
    series_uid: str
    position: np.ndarray | None  # ImagePositionPatient, mm
    orientation: np.ndarray | None  # ImageOrientationPatient (6,)
    rows: int
    columns: int
    pixel_spacing: tuple[float, float] | None
    slope: float
    intercept: float
    transfer_syntax: str
    bits_allocated: int
    bits_stored: int
    signed: bool
    samples_per_pixel: int
    frames: int
    pixel_offset: int | None  # file offset of uncompressed pixel data
    pixel_length: int | None
    instance_number: int | None
    frame: int = 0  # index of this slice's frame in a multi-frame file


@dataclass
class SeriesInfo:
    """One series found on disk, before its pixels are read."""

    uid: str
    slices: list[SliceInfo]
    modality: str = ""
    patient_id: str = ""
    study_uid: str = ""
    study_description: str = ""
    study_date: str = ""
    series_description: str = ""
    series_number: str = ""
    frame_of_reference: str = ""
    folder: Path | None = None
    warnings: list[str] = field(default_factory=list)
    header: Any = field(repr=False, default=None)  # the first header read, for series-level tags

    @property
    def sop_instance_uids(self) -> list[str]:
        return [s.sop_instance_uid for s in self.slices]


# --------------------------------------------------------------------------- scanning


def _float_list(value) -> list[float] | None:
    if value is None:
        return None
    try:
        return [float(v) for v in value]
    except (TypeError, ValueError):
        return None


def _candidate_files(path: Path) -> Iterable[Path]:
    if path.is_file():
        yield path
        return
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            if name.startswith(".") or name.lower().endswith((".xml", ".csv", ".txt", ".md", ".json", ".png", ".jpg")):
                continue
            if name == "LICENSE":
                continue
            yield Path(root) / name


def _is_dicom_file(path: Path) -> bool:
    """The ``DICM`` magic at byte 128, or a ``.dcm`` name (some files lack the preamble)."""
    if path.suffix.lower() == ".dcm" or path.name.upper() == "DICOMDIR":
        return True
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def _slice_from_header(path: Path, ds, series_uid: str, template: SliceInfo | None) -> SliceInfo:
    """What one header says about its slice.

    Fields that cannot differ within a series without breaking it (pixel
    spacing, bit depth, samples) are copied from ``template``, the series'
    first slice, which saves most of the header decoding on long series.
    """
    meta = getattr(ds, "file_meta", None)
    transfer_syntax = str(getattr(meta, "TransferSyntaxUID", "") or "1.2.840.10008.1.2")
    raw = ds.get_item(_PIXEL_DATA, keep_deferred=True)
    offset = length = None
    if raw is not None and transfer_syntax in _UNCOMPRESSED_LE and hasattr(raw, "value_tell"):
        offset, length = raw.value_tell, raw.length
    position = _float_list(ds.get("ImagePositionPatient"))
    orientation = _float_list(ds.get("ImageOrientationPatient"))
    number = ds.get("InstanceNumber")
    if template is None:
        spacing = _float_list(ds.get("PixelSpacing"))
        bits_allocated = int(ds.get("BitsAllocated", 16) or 16)
        invariant = dict(
            pixel_spacing=(spacing[0], spacing[1]) if spacing and len(spacing) == 2 and min(spacing) > 0 else None,
            bits_allocated=bits_allocated,
            bits_stored=int(ds.get("BitsStored", bits_allocated) or bits_allocated),
            signed=int(ds.get("PixelRepresentation", 0) or 0) == 1,
            samples_per_pixel=int(ds.get("SamplesPerPixel", 1) or 1),
            frames=int(_number(ds.get("NumberOfFrames"), 1)),
        )
    else:
        invariant = {key: getattr(template, key) for key in (
            "pixel_spacing", "bits_allocated", "bits_stored", "signed", "samples_per_pixel", "frames")}
    return SliceInfo(
        path=path,
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
        series_uid=series_uid,
        position=np.array(position) if position and len(position) == 3 else None,
        orientation=np.array(orientation) if orientation and len(orientation) == 6 else None,
        rows=int(ds.get("Rows", 0) or 0),
        columns=int(ds.get("Columns", 0) or 0),
        slope=_number(ds.get("RescaleSlope"), 1.0),
        intercept=_number(ds.get("RescaleIntercept"), 0.0),
        transfer_syntax=transfer_syntax,
        pixel_offset=offset,
        pixel_length=length,
        instance_number=int(number) if number not in (None, "") else None,
        **invariant,
    )


def scan_files(paths: Iterable[Path], progress: Callable[[int, int], None] | None = None
               ) -> tuple[list[SeriesInfo], list[str]]:
    """Read the headers of ``paths`` and group the images by series.

    Parameters
    ----------
    paths : iterable of Path
        Candidate files. Files that are not DICOM are ignored silently
        unless their name ends in ``.dcm``.
    progress : callable, optional
        Called as ``progress(done, total)`` after each file, for a progress bar.

    Returns
    -------
    series : list of SeriesInfo
        In the order first met; slices not yet sorted.
    warnings : list of str
        Files skipped (non-image objects, DICOMDIR, truncated or unreadable
        files), one line each, naming the file.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    by_uid: dict[str, SeriesInfo] = {}
    warnings: list[str] = []
    paths = list(paths)
    for done, path in enumerate(paths, 1):
        if progress is not None:
            progress(done, len(paths))
        if not _is_dicom_file(path):
            continue
        try:
            ds = pydicom.dcmread(path, defer_size=1024, force=path.suffix.lower() == ".dcm")
        except (InvalidDicomError, EOFError, OSError, ValueError, TypeError, KeyError, AttributeError) as error:
            warnings.append(f"{path.name}: not a readable DICOM file ({type(error).__name__}: {error}); skipped")
            continue
        media_class = str(getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", ""))
        if media_class == _DICOMDIR_CLASS or "DirectoryRecordSequence" in ds:
            warnings.append(f"{path.name}: a DICOMDIR (an index of files, not an image); skipped")
            continue
        modality = str(ds.get("Modality", ""))
        if _PIXEL_DATA not in ds or modality in _NON_IMAGE_MODALITIES:
            kind = modality or str(ds.get("SOPClassUID", "unknown class"))
            warnings.append(f"{path.name}: a {kind} object with no image; skipped")
            continue
        series_uid = str(ds.get("SeriesInstanceUID", ""))
        if not series_uid:
            warnings.append(f"{path.name}: no SeriesInstanceUID; grouped by its folder")
            series_uid = f"folder:{path.parent}"
        series = by_uid.get(series_uid)
        info = _slice_from_header(path, ds, series_uid, series.slices[0] if series and series.slices else None)
        if info.samples_per_pixel != 1:
            warnings.append(f"{path.name}: a colour image (SamplesPerPixel {info.samples_per_pixel}, e.g. a "
                            "screen capture), not a CT/PET slice; skipped")
            continue
        if info.pixel_offset is not None and info.pixel_length is not None:
            size = path.stat().st_size
            if info.pixel_offset + info.pixel_length > size:
                warnings.append(
                    f"{path.name}: truncated file: its pixel data needs {info.pixel_length} bytes but only "
                    f"{max(size - info.pixel_offset, 0)} are there; slice skipped"
                )
                continue
        if series is None:
            series = by_uid[series_uid] = SeriesInfo(
                uid=series_uid,
                slices=[],
                modality=modality,
                patient_id=str(ds.get("PatientID", "")),
                study_uid=str(ds.get("StudyInstanceUID", "")),
                study_description=str(ds.get("StudyDescription", "")),
                study_date=str(ds.get("StudyDate", "")),
                series_description=str(ds.get("SeriesDescription", "")),
                series_number=str(ds.get("SeriesNumber", "")),
                frame_of_reference=str(ds.get("FrameOfReferenceUID", "")),
                folder=path.parent,
                header=ds,
            )
        series.slices.extend(_frames_of(info, ds) if info.frames > 1 else [info])
    _flag_mixed_folders(by_uid.values(), warnings)
    return list(by_uid.values()), warnings


def _frames_of(info: SliceInfo, ds) -> list[SliceInfo]:
    """One SliceInfo per frame of a multi-frame file, placed by its per-frame position when given."""
    from dataclasses import replace

    shared = ds.get("SharedFunctionalGroupsSequence")
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    orientation = info.orientation
    spacing = info.pixel_spacing
    if shared:
        plane = shared[0].get("PlaneOrientationSequence")
        if plane and orientation is None:
            orientation = np.array(_float_list(plane[0].get("ImageOrientationPatient")) or [1, 0, 0, 0, 1, 0])
        measures = shared[0].get("PixelMeasuresSequence")
        if measures and spacing is None:
            values = _float_list(measures[0].get("PixelSpacing"))
            spacing = (values[0], values[1]) if values and len(values) == 2 else None
    step = _number(ds.get("SpacingBetweenSlices"), _number(ds.get("SliceThickness"), 1.0))
    frames = []
    for index in range(info.frames):
        position = None
        if per_frame and index < len(per_frame) and per_frame[index].get("PlanePositionSequence"):
            position = _float_list(per_frame[index].PlanePositionSequence[0].get("ImagePositionPatient"))
        if position is None and info.position is not None and orientation is not None:
            position = list(info.position + index * step * slice_normal(orientation))
        frames.append(replace(
            info, frame=index, frames=info.frames, orientation=orientation, pixel_spacing=spacing,
            position=np.array(position) if position is not None else None,
            instance_number=index + 1,
        ))
    return frames


def split_by_geometry(series: SeriesInfo) -> list[SeriesInfo]:
    """Split a series whose slices differ in size or orientation (e.g. a localizer among axial slices)."""
    from dataclasses import replace

    groups: dict[tuple, list[SliceInfo]] = {}
    for info in series.slices:
        orientation = None if info.orientation is None else tuple(np.round(info.orientation, 3))
        groups.setdefault((info.rows, info.columns, orientation), []).append(info)
    if len(groups) == 1:
        return [series]
    ordered = sorted(groups.values(), key=len, reverse=True)
    label = " ".join(series.series_description.split()) or series.uid
    warning = (f"series {label}: its slices have {len(groups)} different sizes or orientations "
               f"(e.g. a localizer); opened as {len(groups)} volumes of {', '.join(str(len(g)) for g in ordered)} "
               "slices")
    parts = []
    for index, slices in enumerate(ordered):
        suffix = "" if index == 0 else f" (part {index + 1}, {slices[0].rows}x{slices[0].columns})"
        parts.append(replace(series, slices=slices, series_description=series.series_description + suffix,
                             warnings=[*series.warnings, warning]))
    return parts


def _flag_mixed_folders(series: Iterable[SeriesInfo], warnings: list[str]) -> None:
    """One warning per folder that holds slices of more than one series."""
    folders: dict[Path, list[SeriesInfo]] = {}
    for s in series:
        for folder in {slice_.path.parent for slice_ in s.slices}:
            folders.setdefault(folder, []).append(s)
    for folder, members in folders.items():
        if len(members) > 1:
            names = ", ".join(f"{m.modality} '{m.series_description}' ({len(m.slices)} files)" for m in members)
            warnings.append(f"{folder.name}: this folder mixes {len(members)} series ({names}); "
                            "they are opened separately")


# --------------------------------------------------------------------------- geometry


def slice_normal(orientation: np.ndarray) -> np.ndarray:
    """The unit normal of a slice from its ImageOrientationPatient (row × column direction)."""
    normal = np.cross(orientation[:3], orientation[3:])
    return normal / np.linalg.norm(normal)


def sort_slices(series: SeriesInfo) -> tuple[np.ndarray | None, list[str]]:
    """Sort ``series.slices`` in place along the slice normal.

    Returns
    -------
    positions : ndarray of float, shape (Z,), or None
        Each slice's position along the normal, in mm, ascending; ``None``
        when the slices carry no position (then InstanceNumber orders them).
    warnings : list of str
    """
    warnings: list[str] = []
    slices = series.slices
    orientations = [s.orientation for s in slices if s.orientation is not None]
    if len(slices) == 1 or len(orientations) < len(slices) or any(s.position is None for s in slices):
        if len(slices) > 1:
            warnings.append(f"series {series.series_description or series.uid}: slices lack ImagePositionPatient "
                            "or ImageOrientationPatient; ordered by InstanceNumber")
        slices.sort(key=lambda s: (s.instance_number is None, s.instance_number or 0, s.path.name))
        if slices[0].position is not None and slices[0].orientation is not None:
            return np.array([slices[0].position @ slice_normal(slices[0].orientation)]), warnings
        return None, warnings
    reference = orientations[0]
    if any(not np.allclose(o, reference, atol=1e-3) for o in orientations):
        warnings.append(f"series {series.series_description or series.uid}: slices have different orientations; "
                        "sorted along the first slice's normal")
    normal = slice_normal(reference)
    positions = np.array([s.position @ normal for s in slices])
    order = np.argsort(positions, kind="stable")
    series.slices = [slices[i] for i in order]
    return positions[order], warnings


def spacing_along_normal(positions: np.ndarray | None, label: str, fallback: float) -> tuple[float, list[str]]:
    """The slice spacing in mm, with one warning per gap or duplicate.

    The spacing is the median distance between neighbours; it is never
    resampled. A distance more than 10 % away from it is reported with the
    slice indices, so the user knows the volume is not uniform there.
    """
    warnings: list[str] = []
    if positions is None or len(positions) < 2:
        return fallback, warnings
    steps = np.diff(positions)
    duplicates = np.flatnonzero(steps < 1e-4)
    for i in duplicates:
        warnings.append(f"{label}: slices {i} and {i + 1} are at the same position ({positions[i]:.3f} mm)")
    positive = steps[steps >= 1e-4]
    if not len(positive):
        return fallback, warnings
    spacing = float(np.median(positive))
    for i in np.flatnonzero(np.abs(steps - spacing) > _GAP_TOLERANCE * spacing):
        if steps[i] < 1e-4:
            continue
        warnings.append(
            f"{label}: gap in slice positions between slice {i} and {i + 1}: {steps[i]:.3f} mm instead of "
            f"{spacing:.3f} mm; the volume is shown with {spacing:.3f} mm spacing and is NOT resampled, "
            "so distances across the gap are wrong"
        )
    return spacing, warnings


# --------------------------------------------------------------------------- windows


def default_window(modality: str) -> str | None:
    """The window preset a series of ``modality`` opens with (``None``: napari's own contrast)."""
    return DEFAULT_WINDOW_BY_MODALITY.get(modality.upper())


def contrast_limits(preset: str) -> tuple[float, float]:
    """``(low, high)`` display limits of a window preset."""
    width, level = WINDOW_PRESETS[preset]
    return (level - width / 2, level + width / 2)


# --------------------------------------------------------------------------- cases


def _series_label(series: SeriesInfo) -> str:
    description = " ".join(series.series_description.split())
    return " ".join(part for part in (series.patient_id, series.modality, description or series.uid[-8:]) if part)


def series_to_case(series: SeriesInfo, *, lazy: bool | None = None, pet_units: str = "suv",
                   source: Path | None = None) -> Case:
    """Read the pixels of one scanned series into a :class:`Case`.

    Parameters
    ----------
    series : SeriesInfo
        From :func:`find_series`.
    lazy : bool, optional
        Return a dask array with one chunk per slice. By default, lazy when
        the volume exceeds :data:`LAZY_BYTES`.
    pet_units : {"suv", "bqml"}
        PET values in SUV body-weight (when computable) or in Bq/ml.

    Raises
    ------
    NsclcFormatError
        If the slices' transfer syntax cannot be decoded or their sizes differ.
    """
    label = _series_label(series)
    warnings = list(series.warnings)
    positions, order_warnings = sort_slices(series)
    warnings += [f"{label}: {w}" for w in order_warnings]
    slices = series.slices
    first = slices[0]
    shapes = {(s.rows, s.columns) for s in slices}
    if len(shapes) > 1:
        raise NsclcFormatError(series.folder or first.path,
                               f"series {label} mixes slice sizes {sorted(shapes)}; it cannot be stacked")
    if not _decoder_available(first.transfer_syntax):
        from pydicom.uid import UID

        raise NsclcFormatError(first.path, _decode_problem(first.transfer_syntax, RuntimeError(
            f"no installed decoder for {UID(first.transfer_syntax).name}")))
    if first.pixel_spacing is None:
        warnings.append(f"{first.path.name}: no PixelSpacing in series {label}; 1 mm is assumed, "
                        "so sizes shown are in pixels, not mm")
        row_spacing, column_spacing = 1.0, 1.0
    else:
        row_spacing, column_spacing = first.pixel_spacing
    thickness = _number(series.header.get("SpacingBetweenSlices"), _number(series.header.get("SliceThickness"), 1.0))
    z_spacing, gap_warnings = spacing_along_normal(positions, label, thickness)
    warnings += gap_warnings

    factor, units = 1.0, ("HU" if series.modality == "CT" else "")
    metadata: dict[str, Any] = {}
    if series.modality == "PT":
        stored_units = str(series.header.get("Units", "BQML")).upper()
        units = "Bq/ml" if stored_units in ("BQML", "") else stored_units
        if pet_units == "suv":
            factor_or_none, why = suv_bw_factor(series.header)
            if factor_or_none is None:
                warnings.append(f"{label}: SUV cannot be computed ({why}); PET values are in Bq/ml")
            else:
                factor, units = factor_or_none, "SUVbw"
                metadata["suv_bw_factor"] = factor_or_none
    rescaled = [(s.slope * factor, s.intercept * factor) for s in slices]
    dtype = _pixel_dtype(slices, rescaled)
    nbytes = len(slices) * first.rows * first.columns * dtype.itemsize
    lazy = nbytes > LAZY_BYTES if lazy is None else lazy
    data = _volume(slices, factor, dtype, lazy)

    orientation = first.orientation if first.orientation is not None else np.array([1.0, 0, 0, 0, 1, 0])
    position = first.position if first.position is not None else np.zeros(3)
    origin = (
        float(positions[0]) if positions is not None else float(position @ slice_normal(orientation)),
        float(position @ orientation[3:]),
        float(position @ orientation[:3]),
    )
    preset = default_window(series.modality) if units in ("HU", "SUVbw") else None
    metadata.update(
        modality=series.modality,
        units=units,
        patient_id=series.patient_id,
        study_uid=series.study_uid,
        study_description=series.study_description,
        study_date=series.study_date,
        series_uid=series.uid,
        series_description=series.series_description,
        series_number=series.series_number,
        frame_of_reference=series.frame_of_reference,
        sop_instance_uids=series.sop_instance_uids,
        files=[str(s.path) for s in slices],
        slice_positions=None if positions is None else positions.tolist(),
        orientation=orientation.tolist(),
        transfer_syntax=first.transfer_syntax,
        lazy=bool(lazy),
    )
    if preset is not None:
        metadata["window"] = WINDOW_PRESETS[preset]
        metadata["window_preset"] = preset
        metadata["contrast_limits"] = contrast_limits(preset)
    metadata["colormap"] = "inferno" if series.modality == "PT" else "gray"
    if series.modality == "PT":
        metadata["blending"] = "additive"  # PET over its CT: the CT stays visible beneath
    image = ImageRef(
        path=str(series.folder or first.path.parent),
        shape=tuple(int(n) for n in data.shape),
        pixel_size=(z_spacing, row_spacing, column_spacing),
        unit="mm",
        origin=origin,
        data=data,
        name=" ".join(part for part in (series.modality, " ".join(series.series_description.split())) if part),
        metadata=metadata,
    )
    return Case(
        name=label,
        image=image,
        provenance=Provenance(
            source=str(source or series.folder or first.path),
            format="dicom",
            reader=__name__,
            details={"slices": len(slices), "series_uid": series.uid},
            warnings=warnings,
        ),
    )


def find_series(path: str | Path, progress: Callable[[int, int], None] | None = None
                ) -> tuple[list[SeriesInfo], list[str]]:
    """Scan a file or folder (any depth) for image series; nothing is decoded.

    Returns the series, ordered by patient, study date, modality and series
    number, and the warnings about skipped files. ``progress(done, total)``
    is called per file.
    """
    path = Path(path)
    if not path.exists():
        raise NsclcFormatError(path, "no such file or folder")
    found, warnings = scan_files(_candidate_files(path), progress)
    series = [part for item in found for part in split_by_geometry(item)]

    def key(s: SeriesInfo):
        number = s.series_number
        return (s.patient_id, s.study_date, s.study_uid, s.modality, int(number) if number.isdigit() else 0, s.uid)

    return sorted(series, key=key), warnings


def read_series(series: Sequence[SeriesInfo], warnings: Sequence[str], source: Path, *, lazy: bool | None = None,
                pet_units: str = "suv") -> list[Case]:
    """Cases for scanned series; a series that cannot be read becomes a warning.

    Raises
    ------
    NsclcFormatError
        If no series at all can be read; the message lists why.
    """
    cases: list[Case] = []
    problems = list(warnings)
    decoded = 0
    for item in series:
        try:
            case = series_to_case(item, lazy=lazy if lazy is not None or decoded < EAGER_TOTAL_BYTES else True,
                                  pet_units=pet_units, source=source)  # fmt: skip
            if not case.image.metadata.get("lazy", False):
                decoded += np.asarray(case.image.data).nbytes
            cases.append(case)
        except NsclcFormatError as error:
            problems.append(f"{Path(error.path).name}: {error.problem}")
    if not cases:
        detail = "; ".join(problems) if problems else "no DICOM image file was found"
        raise NsclcFormatError(source, f"no DICOM image series could be read ({detail})")
    for case in cases:
        case.provenance.warnings[:0] = problems
    return cases


_PLANES = ("sagittal", "coronal", "axial")  # by the patient axis (x, y, z) closest to the slice normal


def _plane_of(case: Case) -> str:
    orientation = np.asarray(case.image.metadata.get("orientation") or (1.0, 0, 0, 0, 1, 0), dtype=float)
    return _PLANES[int(np.argmax(np.abs(slice_normal(orientation))))]


def _date_label(date: str) -> str:
    return f"{date[:4]}-{date[4:6]}-{date[6:]}" if len(date) == 8 and date.isdigit() else date


def _scene_names(cases: Sequence[Case]) -> list[str]:
    """Distinct layer names for the series of one scene: ``"CT 2 B70f"``, ``"CT 3 B40f"``.

    Modality, series number and the words of the series description that the
    other series of the scene lack (all words when none is left); then the
    study date, then the end of the series UID, for names still alike.
    """
    words = [str(c.image.metadata.get("series_description") or "").split() for c in cases]
    shared = set(words[0]).intersection(*words[1:])
    names = []
    for case, own in zip(cases, words, strict=True):
        meta = case.image.metadata
        parts = [meta.get("modality"), meta.get("series_number"), *([w for w in own if w not in shared] or own)]
        names.append(" ".join(str(p) for p in parts if p) or "series")
    for suffix in (lambda c: _date_label(str(c.image.metadata.get("study_date") or "")),
                   lambda c: str(c.image.metadata.get("series_uid") or "")[-8:]):
        alike = {n for n in names if names.count(n) > 1}
        names = [f"{n} {suffix(c)}".strip() if n in alike else n for n, c in zip(names, cases, strict=True)]
    return names


def group_series(cases: Sequence[Case]) -> list[Case]:
    """Let the series of one patient open together, each with a layer name of its own.

    Every case of a patient whose slices lie in the same plane (axial, coronal
    or sagittal, from the slice normal) gets the same :attr:`Case.group`, so
    opening a study or patient folder shows all its series in one world (mm);
    a localizer or a reformat in another plane is a scene of its own. When a
    scene holds several series, each image is renamed by
    :func:`_scene_names` (``"CT 2 B70f"``), and if they lie in more than one
    frame of reference (two studies, say) its first case warns that they may
    not line up. A lone series keeps its name. Returns ``cases``.
    """
    scenes: dict[str, list[Case]] = {}
    for case in cases:
        patient = str(case.image.metadata.get("patient_id") or "") or "(no patient ID)"
        plane = _plane_of(case)
        case.group = f"{patient} {plane}" if plane != "axial" else patient
        scenes.setdefault(case.group, []).append(case)
    for members in scenes.values():
        if len(members) < 2:
            continue
        for case, name in zip(members, _scene_names(members), strict=True):
            case.image.name = name
        frames = {c.image.metadata.get("frame_of_reference") for c in members} - {None, ""}
        if len(frames) > 1:
            members[0].provenance.warnings.append(
                f"{members[0].group}: its {len(members)} series open together but lie in {len(frames)} frames of "
                "reference (different studies or scanners), so they may not line up")
    return list(cases)


def read_dicom(path: str | Path, *, lazy: bool | None = None, pet_units: str = "suv",
               progress: Callable[[int, int], None] | None = None) -> list[Case]:
    """Read every DICOM image series under ``path``.

    Parameters
    ----------
    path : str or Path
        A ``.dcm`` file (its whole series is read when its siblings belong to
        it), a series folder, a study, patient or collection folder, in the
        NBIA descriptive or the UID layout.
    lazy : bool, optional
        See :func:`series_to_case`.
    pet_units : {"suv", "bqml"}
        Units for PET series.
    progress : callable, optional
        ``progress(done, total)`` while headers are read (pixels of lazy
        series are read later, slice by slice, as they are shown).

    Returns
    -------
    list of Case
        One per series, images ``(z, y, x)`` in HU (CT) or SUVbw/Bq/ml (PET).
        Skipped files and geometry problems are in each case's
        ``provenance.warnings``. The series of one patient share a
        ``group`` and open together (see :func:`group_series`).
    """
    path = Path(path)
    if path.is_file():
        series, warnings = find_series(path.parent)
        chosen = [s for s in series if any(slice_.path == path for slice_ in s.slices)]
        if not chosen:
            single, single_warnings = find_series(path)
            raise NsclcFormatError(path, "is not a DICOM image" + (f" ({single_warnings[0]})" if single_warnings else ""))
        return group_series(read_series(chosen, [], path, lazy=lazy, pet_units=pet_units))
    series, warnings = find_series(path, progress)
    return group_series(read_series(series, warnings, path, lazy=lazy, pet_units=pet_units))


def sniff(path: Path) -> bool:
    """A DICOM file, or a folder whose first files (or a sub-folder's) are DICOM."""
    if path.is_file():
        return _is_dicom_file(path) and path.name.upper() != "DICOMDIR"
    for depth, (root, dirs, files) in enumerate(os.walk(path)):
        dirs[:] = sorted(d for d in dirs if d not in ("Annotation", "Annotations", "JPEGImages"))
        if any(_is_dicom_file(Path(root) / name) for name in sorted(files)[:3]):
            return True
        if depth > 8:
            return False
    return False


FORMAT = FormatSpec(
    name="dicom",
    title="DICOM CT/PET series",
    sniff=sniff,
    read=read_dicom,
    write=None,
    extensions=(".dcm",),
    priority=20,
)
