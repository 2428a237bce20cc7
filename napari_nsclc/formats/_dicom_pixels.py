"""DICOM pixels: decoding slices, rescaling them, stacking a volume (eager or lazy), and PET's SUV factor.

:mod:`napari_nsclc.formats.dicom` scans headers and builds cases; this
module turns a series' slices (:class:`~napari_nsclc.formats.dicom.SliceInfo`)
into values: stored pixels through pydicom (and pylibjpeg for compressed
transfer syntaxes), rescaled by each slice's slope and intercept, in Bq/ml
or SUV for PET.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..model import NsclcFormatError

if TYPE_CHECKING:
    from .dicom import SliceInfo

#: Transfer syntaxes whose pixel data is plain little-endian: read straight from the file.
_UNCOMPRESSED_LE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}


def _number(value, default: float) -> float:
    """A header value as a float, or ``default`` when it is missing, empty or not a number."""
    try:
        return float(value) if value is not None and str(value) != "" else default
    except (TypeError, ValueError):
        return default


# --------------------------------------------------------------------------- pixels


def _pixel_dtype(slices: Sequence[SliceInfo], rescaled: Sequence[tuple[float, float]]) -> np.dtype:
    """int16 when every slope is 1 and every intercept an integer (CT), else float32."""
    if all(slope == 1 and float(intercept).is_integer() for slope, intercept in rescaled):
        worst = max(s.bits_stored for s in slices)
        low = min(inter for _, inter in rescaled) - (2 ** (worst - 1) if any(s.signed for s in slices) else 0)
        high = max(inter for _, inter in rescaled) + 2**worst
        if -(2**15) <= low and high < 2**15:
            return np.dtype(np.int16)
        return np.dtype(np.int32)
    return np.dtype(np.float32)


def _stored_dtype(info: SliceInfo) -> np.dtype:
    kind = "i" if info.signed else "u"
    return np.dtype(f"<{kind}{info.bits_allocated // 8}")


def read_slice_pixels(info: SliceInfo) -> np.ndarray:
    """The stored values of one slice (before rescaling), shape (rows, columns).

    Uncompressed little-endian slices are read at their pixel-data offset;
    others are decoded by pydicom.

    Raises
    ------
    NsclcFormatError
        If the transfer syntax cannot be decoded or the file is damaged.
    """
    fast = (
        info.pixel_offset is not None
        and info.samples_per_pixel == 1
        and info.bits_allocated in (8, 16, 32)
        and not (info.signed and info.bits_stored < info.bits_allocated)
    )
    count = info.rows * info.columns
    if fast:
        stored = _stored_dtype(info)
        offset = info.pixel_offset + info.frame * count * stored.itemsize
        values = np.fromfile(info.path, dtype=stored, count=count, offset=offset)
        if values.size == count:
            return values.reshape(info.rows, info.columns)
    from pydicom.pixels import pixel_array

    try:
        values = pixel_array(str(info.path), index=info.frame if info.frames > 1 else None)
    except Exception as error:  # pydicom raises many types for missing or failing decoders
        raise NsclcFormatError(info.path, _decode_problem(info.transfer_syntax, error)) from error
    return values


def _decode_problem(transfer_syntax: str, error: Exception) -> str:
    from pydicom.uid import UID

    name = UID(transfer_syntax).name
    return (f"its pixel data could not be decoded (transfer syntax {name}, {transfer_syntax}): {error}. "
            "Uncompressed, RLE, JPEG lossless and JPEG 2000 need the pylibjpeg plugins "
            "(pylibjpeg-libjpeg, pylibjpeg-openjpeg, pylibjpeg-rle) or python-gdcm.")


def _decoder_available(transfer_syntax: str) -> bool:
    from pydicom.pixels import get_decoder

    if transfer_syntax in _UNCOMPRESSED_LE:
        return True
    try:
        return get_decoder(transfer_syntax).is_available
    except Exception:  # pydicom signals a syntax it has no decoder class for with an exception
        return False


def rescale_slice(info: SliceInfo, factor: float, dtype: np.dtype) -> np.ndarray:
    """One slice in output units: ``(stored * slope + intercept) * factor``, as ``dtype``."""
    stored = read_slice_pixels(info)
    if info.slope == 1 and info.intercept == 0 and factor == 1:
        return stored.astype(dtype, copy=False)
    if dtype.kind == "i":
        out = stored.astype(dtype)
        out += dtype.type(info.intercept)
        return out
    out = stored.astype(np.float32)
    out *= np.float32(info.slope * factor)
    out += np.float32(info.intercept * factor)
    return out


def _volume(slices: list[SliceInfo], factor: float, dtype: np.dtype, lazy: bool):
    shape = (len(slices), slices[0].rows, slices[0].columns)
    if lazy:
        import dask.array as da
        from dask.base import tokenize

        def load(block_id=None):
            return rescale_slice(slices[block_id[0]], factor, dtype)[np.newaxis]

        files = [str(info.path) for info in slices]
        return da.map_blocks(
            load,
            chunks=((1,) * shape[0], (shape[1],), (shape[2],)),
            dtype=dtype,
            meta=np.empty((0, 0, 0), dtype),
            name=f"dicom-series-{tokenize(files, factor, str(dtype))}",
        )
    volume = np.empty(shape, dtype=dtype)
    for index, info in enumerate(slices):
        if not _read_into(info, volume[index], factor):
            volume[index] = rescale_slice(info, factor, dtype)
    return volume


def _read_into(info: SliceInfo, out: np.ndarray, factor: float) -> bool:
    """Read an uncompressed integer slice straight into ``out`` and rescale in place.

    Applies when the stored integers keep their values in ``out``'s dtype
    (same width; unsigned values below the sign bit), i.e. CT stored as
    12-bit unsigned or 16-bit signed read into int16 HU. Returns whether it did.
    """
    stored = _stored_dtype(info)
    if (
        info.pixel_offset is None
        or info.samples_per_pixel != 1
        or out.dtype.kind != "i"
        or factor != 1
        or stored.itemsize != out.dtype.itemsize
        or (info.signed and info.bits_stored < info.bits_allocated)
        or (not info.signed and info.bits_stored >= 8 * stored.itemsize)
    ):
        return False
    buffer = memoryview(out.view(stored)).cast("B")
    with open(info.path, "rb") as handle:
        handle.seek(info.pixel_offset + info.frame * len(buffer))
        if handle.readinto(buffer) != len(buffer):
            raise NsclcFormatError(info.path, "truncated file: its pixel data ends early")
    if info.intercept:
        out += out.dtype.type(info.intercept)
    return True


# --------------------------------------------------------------------------- PET


def _dicom_datetime(date: str | None, time: str | None) -> datetime.datetime | None:
    if not time:
        return None
    date = date or "19000101"
    text = f"{date}{str(time).split('.')[0].ljust(6, '0')}"
    try:
        moment = datetime.datetime.strptime(text[:14], "%Y%m%d%H%M%S")
    except ValueError:
        return None
    fraction = str(time).split(".")[1] if "." in str(time) else ""
    return moment + datetime.timedelta(microseconds=int(fraction.ljust(6, "0")[:6] or 0))


def suv_bw_factor(header) -> tuple[float | None, str]:
    """The factor from Bq/ml to SUV body-weight for a PET slice, and why not if ``None``.

    SUVbw = activity concentration × patient weight (g) / injected dose
    decayed to the series time. The dose, half-life and injection time come
    from RadiopharmaceuticalInformationSequence; the weight from PatientWeight.
    """
    units = str(header.get("Units", "")).upper()
    if units and units != "BQML":
        return None, f"PET Units are {units!r}, not BQML"
    weight = _number(header.get("PatientWeight"), 0.0)
    if weight <= 0:
        return None, "PatientWeight is missing"
    sequence = header.get("RadiopharmaceuticalInformationSequence")
    if not sequence:
        return None, "RadiopharmaceuticalInformationSequence is missing"
    drug = sequence[0]
    dose = _number(drug.get("RadionuclideTotalDose"), 0.0)
    half_life = _number(drug.get("RadionuclideHalfLife"), 0.0)
    if dose <= 0 or half_life <= 0:
        return None, "the injected dose or the half-life is missing"
    start = None
    if drug.get("RadiopharmaceuticalStartDateTime"):
        text = str(drug.RadiopharmaceuticalStartDateTime)
        start = _dicom_datetime(text[:8], text[8:])
    if start is None:
        start = _dicom_datetime(header.get("SeriesDate") or header.get("AcquisitionDate"),
                                drug.get("RadiopharmaceuticalStartTime"))
    scan = _dicom_datetime(header.get("SeriesDate") or header.get("AcquisitionDate"),
                           header.get("SeriesTime") or header.get("AcquisitionTime"))
    decay_correction = str(header.get("DecayCorrection", "START")).upper()
    if decay_correction == "ADMIN" or start is None or scan is None:
        elapsed = 0.0
    else:
        elapsed = (scan - start).total_seconds()
        if elapsed < 0:
            elapsed += 86400  # injection before midnight, scan after
    decayed_dose = dose * 2 ** (-elapsed / half_life)
    return weight * 1000.0 / decayed_dose, ""
