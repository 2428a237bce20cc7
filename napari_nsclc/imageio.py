"""The one image reader: PNG, JPEG, TIFF, BMP and GIF files (and their bytes) to numpy.

Every module that decodes an image file calls this one (whole-slide pyramids,
:mod:`napari_nsclc.formats.slide`, and DICOM, :mod:`napari_nsclc.formats.dicom`,
have readers of their own). One policy for every Pillow mode, for display
(``read_pixels(path)``) and for label masks (``read_pixels(path, as_mask=True)``):

- grey ``L``: ``(H, W)`` uint8, both;
- 16-bit ``I;16`` (``I;16B`` ...): ``(H, W)`` uint16 (native byte order), both;
- 32-bit ``I``: ``(H, W)`` uint16 when the values fit 0..65535 (Pillow opens some
  16-bit PNGs so), else int32, both;
- float ``F``: ``(H, W)`` float32 for display; not a mask;
- bilevel ``1``: ``(H, W)`` uint8 0/1, both;
- grey + alpha ``LA``: ``(H, W)`` uint8, the alpha dropped, both;
- palette ``P``/``PA``: ``(H, W, 3)`` uint8 RGB for display; the ``(H, W)`` uint8
  indices and the palette for masks;
- ``RGB``: ``(H, W, 3)`` uint8, both;
- ``RGBA``: ``(H, W, 3)`` uint8, the alpha dropped, for display; ``(H, W, 4)`` as
  stored for masks;
- ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``: ``(H, W, 3)`` uint8 RGB for display; not masks;
- TIFF (read with tifffile): its own shape and dtype, both; an RGBA TIFF as RGB
  for display; a bilevel (``bool``) TIFF as uint8 0/1.

Dropped alpha is reported (``info["alpha_dropped"]``, :attr:`ImageHeader.alpha`) so
that a reader can say so.

Pillow's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``) stays on and
its warning is escalated to an error; a missing, unknown, truncated or damaged
file is a :class:`~napari_nsclc.model.NsclcFormatError` naming the file, in one
sentence.

Two lazy forms, one per use:

- :class:`LazyArray` (:func:`lazy_image`) for cases that pass through
  :func:`napari_nsclc.formats.masks.load_case` (dataset folders of thousands of
  images): no dask graph per file, nothing cached, and it keeps what decoding
  found (a mask's encoding) in ``.info`` for the case;
- a one-chunk dask array (:func:`deferred_image`) for images handed to napari
  as they are (COCO, VOC, NuCLS): napari slices dask arrays itself and decodes
  them only when it draws.

Both take their shape and dtype from :func:`header`, which reads no pixels.
"""

from __future__ import annotations

import io
import os
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np

from .model import NsclcFormatError

__all__ = [
    "TIFF_SUFFIXES",
    "ImageHeader",
    "LazyArray",
    "deferred_image",
    "header",
    "lazy_image",
    "read_pixels",
    "read_reduced",
    "read_tiled",
]

#: Files read with tifffile; everything else is read with Pillow.
TIFF_SUFFIXES = (".tif", ".tiff", ".svs")

#: A path, or the encoded bytes of an image (a parquet cell, an archive member).
Source = Union[str, "os.PathLike[str]", bytes]

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
_UINT16_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
_TO_RGB_MODES = ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV")
# Errors Pillow raises while decoding damaged data (zlib for broken PNG streams).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error)


@dataclass(frozen=True)
class ImageHeader:
    """What an image file holds, read without decoding its pixels.

    Attributes
    ----------
    shape : tuple of int
        The shape :func:`read_pixels` returns with the same ``as_mask``:
        ``(H, W)`` or ``(H, W, C)`` (a multi-page TIFF: its first series, e.g. ``(Z, H, W)``).
    dtype : numpy.dtype
        The dtype :func:`read_pixels` returns (uint8, uint16, int32, float32 or a TIFF's own).
    mode : str
        Pillow's image mode (``"L"``, ``"P"``, ``"RGBA"``, ``"I;16"`` ...), or ``"tiff"``.
    format : str
        ``"png"``, ``"jpeg"``, ``"tiff"``, ``"bmp"``, ``"gif"`` ...
    alpha : bool
        The file has an alpha channel or palette transparency (dropped for display).
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    mode: str
    format: str
    alpha: bool = False


# --------------------------------------------------------------------------- opening


def _name(source: Source, name: str | None) -> str:
    if name is not None:
        return name
    return "image bytes" if isinstance(source, (bytes, bytearray)) else str(source)


def _is_tiff(source: Source) -> bool:
    if isinstance(source, (bytes, bytearray)):
        return bytes(source[:4]) in _TIFF_MAGIC
    return Path(source).suffix.lower() in TIFF_SUFFIXES


def _bomb(name: str, pixels: int | None, limit) -> NsclcFormatError:
    size = f"its {pixels} pixels exceed" if pixels else "it exceeds"
    return NsclcFormatError(
        name, f"refused: {size} Pillow's decompression-bomb limit of {limit} pixels (PIL.Image.MAX_IMAGE_PIXELS)"
    )


def _open_pil(source: Source, name: str):
    """Open with Pillow (header only), the decompression-bomb limit on and escalated to an error.

    Pillow raises over twice ``MAX_IMAGE_PIXELS`` and only warns above it; the
    size is checked here as well, so that a warning never lets an image through
    (without ``warnings.catch_warnings``, which is not thread-safe: dask decodes
    in worker threads).
    """
    from PIL import Image, UnidentifiedImageError

    opened = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    try:
        image = Image.open(opened)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:  # the warning, if made an error
        found = re.search(r"\((\d+) pixels\)", str(error))
        raise _bomb(name, int(found[1]) if found else None, Image.MAX_IMAGE_PIXELS) from error
    except FileNotFoundError as error:
        raise NsclcFormatError(name, "no such file") from error
    except IsADirectoryError as error:
        raise NsclcFormatError(name, "is a folder, not an image file") from error
    except UnidentifiedImageError as error:
        if isinstance(source, (bytes, bytearray)):
            empty = not source
        else:
            empty = Path(source).is_file() and Path(source).stat().st_size == 0
        problem = "is empty (0 bytes)" if empty else "is not a PNG, JPEG, BMP, GIF or other image Pillow can read"
        raise NsclcFormatError(name, problem) from error
    except _DECODE_ERRORS as error:  # a header cut short
        raise NsclcFormatError(name, "the image is truncated or damaged: its header cannot be read") from error
    limit = Image.MAX_IMAGE_PIXELS
    pixels = image.size[0] * image.size[1]
    if limit and pixels > limit:
        image.close()
        raise _bomb(name, pixels, limit)
    return image


def _decode(image, name: str) -> None:
    try:
        image.load()
    except _DECODE_ERRORS as error:  # "image file is truncated", broken data streams, bad CRCs
        raise NsclcFormatError(name, "the image data is truncated or damaged and cannot be decoded") from error


def _tiff_call(source: Source, name: str, call: Callable):
    import tifffile

    from ._tifflog import quiet_tifffile

    opened = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    try:
        with quiet_tifffile():  # tifffile logs damage too; the message below says it once, naming the file
            return call(tifffile, opened)
    except FileNotFoundError as error:
        raise NsclcFormatError(name, "no such file") from error
    except tifffile.TiffFileError as error:
        raise NsclcFormatError(name, "is not a TIFF file tifffile can read") from error
    except Exception as error:  # noqa: BLE001 - tifffile raises many types for damaged data
        raise NsclcFormatError(name, "the TIFF is truncated or damaged and cannot be decoded") from error


def _tiff_alpha(tif) -> bool:
    """An RGB TIFF with a fourth (alpha) sample."""
    page = tif.pages[0]
    return int(page.photometric) == 2 and page.samplesperpixel == 4 and tif.series[0].axes.endswith("S")


# --------------------------------------------------------------------------- header


def _pil_header(image, as_mask: bool) -> tuple[tuple[int, ...], np.dtype]:
    width, height = image.size
    mode = image.mode
    if mode in _UINT16_MODES:
        return (height, width), np.dtype(np.uint16)
    if mode == "I":  # a PNG holds at most 16 bits; other formats may use all 32
        return (height, width), np.dtype(np.uint16 if image.format == "PNG" else np.int32)
    if mode == "F":
        return (height, width), np.dtype(np.float32)
    if mode in ("L", "1", "LA", "La"):
        return (height, width), np.dtype(np.uint8)
    if as_mask:
        if mode in ("P", "PA"):
            return (height, width), np.dtype(np.uint8)
        return (height, width, len(image.getbands())), np.dtype(np.uint8)
    return (height, width, 3), np.dtype(np.uint8)


def header(source: Source, *, as_mask: bool = False, name: str | None = None) -> ImageHeader:
    """Shape, dtype, mode and format of an image, without decoding its pixels.

    Parameters
    ----------
    source : path or bytes
        A PNG, JPEG, TIFF, BMP or GIF file, or its bytes.
    as_mask : bool
        Describe what ``read_pixels(source, as_mask=True)`` returns (raw
        values) rather than the display form.
    name : str, optional
        What to call the image in messages (default: the path).

    Returns
    -------
    ImageHeader
        ``shape`` and ``dtype`` are exactly those :func:`read_pixels` returns.

    Raises
    ------
    NsclcFormatError
        Naming the file: missing, not an image, header damaged, or over the
        decompression-bomb limit.
    """
    name = _name(source, name)
    if _is_tiff(source):

        def probe(tifffile, opened):
            with tifffile.TiffFile(opened) as tif:
                series = tif.series[0]
                shape, dtype, alpha = tuple(int(s) for s in series.shape), np.dtype(series.dtype), _tiff_alpha(tif)
            if dtype == bool:
                dtype = np.dtype(np.uint8)
            if alpha and not as_mask:
                shape = (*shape[:-1], 3)
            return ImageHeader(shape, dtype, "tiff", "tiff", alpha)

        return _tiff_call(source, name, probe)
    with _open_pil(source, name) as image:
        shape, dtype = _pil_header(image, as_mask)
        alpha = image.mode in _ALPHA_MODES or (image.mode == "P" and "transparency" in image.info)
        fmt = (image.format or Path(name).suffix.lstrip(".")).lower()
        return ImageHeader(shape, dtype, image.mode, fmt, alpha)


# --------------------------------------------------------------------------- pixels


def _fit_uint16(values: np.ndarray) -> np.ndarray:
    """Pillow's 32-bit ``"I"`` (some 16-bit PNGs) as uint16 when the values fit."""
    if values.dtype == np.int32 and (values.size == 0 or (values.min() >= 0 and values.max() <= 65535)):
        return values.astype(np.uint16)
    return values


def _display_pixels(image, name: str) -> tuple[np.ndarray, bool]:
    """An opened Pillow image as display pixels, and whether alpha was dropped."""
    mode = image.mode
    _decode(image, name)
    alpha = mode in _ALPHA_MODES or (mode == "P" and "transparency" in image.info)
    if mode in _TO_RGB_MODES:
        return np.array(image.convert("RGB")), alpha
    if mode == "1":
        return np.array(image).astype(np.uint8), alpha
    if mode in _UINT16_MODES:
        return np.array(image).astype(np.uint16), alpha  # I;16B decodes big-endian: made native
    if mode in ("L", "RGB", "F"):
        return np.array(image), alpha  # a writable copy: layers are painted on
    if mode == "I":
        return _fit_uint16(np.array(image)), alpha
    if mode in ("LA", "La", "RGBA", "RGBa", "RGBX"):
        pixels = np.array(image)
        return np.ascontiguousarray(pixels[..., 0] if mode in ("LA", "La") else pixels[..., :3]), alpha
    raise NsclcFormatError(name, f"has image mode {mode}, which is not a grey, palette or colour image")


def _mask_pixels(image, name: str) -> tuple[np.ndarray, dict[str, Any]]:
    """An opened Pillow image as raw mask values and how they are encoded."""
    mode = image.mode
    info: dict[str, Any] = {"mode": mode, "format": (image.format or Path(name).suffix.lstrip(".")).lower()}
    if mode in ("P", "PA"):
        _decode(image, name)
        values = np.array(image)
        if values.ndim == 3:
            values = np.ascontiguousarray(values[..., 0])
        raw = image.getpalette() or []
        info["palette"] = [raw[i : i + 3] for i in range(0, len(raw), 3)]
        info["encoding"] = "palette"
    elif mode == "1":
        _decode(image, name)
        values = np.array(image).astype(np.uint8)
        info["encoding"] = "bilevel"
    elif mode in ("L", "I", *_UINT16_MODES):
        _decode(image, name)
        values = np.array(image)
        if mode in _UINT16_MODES:
            values = values.astype(np.uint16)
        info["encoding"] = "grey"
    elif mode == "LA":
        _decode(image, name)
        values = np.ascontiguousarray(np.array(image)[..., 0])
        info["encoding"] = "grey"
    elif mode in ("RGB", "RGBA"):
        _decode(image, name)
        values = np.array(image)
        info["encoding"] = "rgb"
    else:
        raise NsclcFormatError(name, f"mask has image mode {mode}; expected grey, palette or RGB")
    values = _fit_uint16(values)
    info["dtype"] = str(values.dtype)
    return values, info


def read_pixels(
    source: Source, *, as_mask: bool = False, name: str | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Decode an image file (or its bytes) to a writable numpy array.

    Parameters
    ----------
    source : path or bytes
        A PNG, JPEG, TIFF, BMP or GIF file, or its bytes. ``.tif``, ``.tiff``
        and ``.svs`` files (and bytes starting with a TIFF signature) are read
        with tifffile, the rest with Pillow.
    as_mask : bool
        Read the values as stored, for a label mask: palette indices (with
        the palette), RGB(A) colours unchanged. By default an image is read
        for display: colour as ``(H, W, 3)`` RGB (palette images converted,
        alpha dropped), grey as ``(H, W)``.
    name : str, optional
        What to call the image in messages (default: the path).

    Returns
    -------
    pixels : ndarray
        ``(H, W)`` grey or ``(H, W, 3)`` colour for display; for masks
        ``(H, W)`` grey, bilevel (0/1) and palette indices, ``(H, W, 3|4)``
        colour. uint8, 16-bit as uint16, Pillow's ``"I"`` as uint16 when its
        values fit (else int32), ``"F"`` as float32; TIFFs keep their dtype
        (a bilevel ``bool`` TIFF becomes uint8 0/1). See the module's table.
    info : dict
        For display: ``{"mode", "format", "dtype", "alpha_dropped": bool}``.
        For masks: ``{"mode": str (Pillow's, or "tiff"), "format": str,
        "encoding": "grey"|"palette"|"rgb"|"bilevel", "palette": [[r, g, b],
        ...] (palette masks only), "dtype": str}``.

    Raises
    ------
    NsclcFormatError
        Naming the file: missing, not an image, truncated or damaged, over
        Pillow's decompression-bomb limit, or (masks) a mode that is not a
        grey, palette or colour mask.
    """
    name = _name(source, name)
    if _is_tiff(source):

        def load(tifffile, opened):
            with tifffile.TiffFile(opened) as tif:
                alpha = _tiff_alpha(tif)
                values = tif.asarray()
            return values, alpha

        values, alpha = _tiff_call(source, name, load)
        if values.dtype == bool:
            values = values.astype(np.uint8)
        if as_mask:
            encoding = "rgb" if values.ndim == 3 else "grey"
            return values, {"mode": "tiff", "encoding": encoding, "dtype": str(values.dtype), "format": "tiff"}
        if alpha:
            values = np.ascontiguousarray(values[..., :3])
        return values, {"mode": "tiff", "format": "tiff", "dtype": str(values.dtype), "alpha_dropped": alpha}
    with _open_pil(source, name) as image:
        if as_mask:
            return _mask_pixels(image, name)
        mode, fmt = image.mode, (image.format or Path(name).suffix.lstrip(".")).lower()
        pixels, alpha = _display_pixels(image, name)
    return pixels, {"mode": mode, "format": fmt, "dtype": str(pixels.dtype), "alpha_dropped": alpha}


def read_reduced(path: str | os.PathLike[str], min_side: int):
    """A Pillow image of a PNG, JPEG, BMP or GIF, RGB or grey, at a reduced scale.

    JPEG decodes at 1/2, 1/4 or 1/8 scale as long as both sides stay at least
    ``min_side`` pixels (Pillow's draft mode); other formats decode whole and
    are then averaged over blocks of whole pixels (``Image.reduce``), again
    keeping both sides at least ``min_side``. For thumbnails (the perceptual
    hashes of ``validate``), not for pixels that are shown or written.

    Raises
    ------
    NsclcFormatError
        When the file cannot be opened or decoded.
    """
    name = str(path)
    image = _open_pil(path, name)
    try:
        image.draft("RGB", (min_side, min_side))
        _decode(image, name)
        plain = image if image.mode in ("L", "RGB") else image.convert("RGB")  # palette, RGBA, 16-bit ...
        factors = (max(1, plain.width // min_side), max(1, plain.height // min_side))
        if factors != (1, 1):  # a block average in C: several times faster than resampling the whole image
            return plain.reduce(factors)
        return plain.copy() if plain is image else plain
    finally:
        image.close()


def read_tiled(path: str | os.PathLike[str]) -> tuple[Any, dict[str, Any]]:
    """A TIFF decoded tile by tile on access, through tifffile's zarr store.

    Parameters
    ----------
    path : path
        A ``.tif``/``.tiff``/``.svs`` file.

    Returns
    -------
    data : zarr array, or list of arrays (pyramid levels, finest first)
        ``(H, W)`` or ``(H, W, 3)`` (and any leading axes the TIFF has), its
        own dtype. An RGBA TIFF is sliced to RGB lazily (a dask array).
    info : dict
        ``{"mode": "tiff", "format": "tiff", "dtype": str, "alpha_dropped": bool}``.

    Raises
    ------
    NsclcFormatError
        Naming the file when it is not a TIFF tifffile can open.
    """
    name = str(path)

    def open_store(tifffile, opened):
        import zarr

        with tifffile.TiffFile(opened) as tif:
            alpha = _tiff_alpha(tif)
        array = zarr.open(tifffile.imread(opened, aszarr=True), mode="r")
        levels = [array] if hasattr(array, "shape") else [array[key] for key in sorted(array.array_keys(), key=int)]
        return levels, alpha

    levels, alpha = _tiff_call(path, name, open_store)
    if alpha:
        import dask.array as da

        levels = [da.from_zarr(level)[..., :3] for level in levels]
    info = {"mode": "tiff", "format": "tiff", "dtype": str(np.dtype(levels[0].dtype)), "alpha_dropped": alpha}
    return (levels[0] if len(levels) == 1 else levels), info


# --------------------------------------------------------------------------- lazy forms


class LazyArray:
    """An array decoded from a file each time its pixels are asked for.

    Listing a dataset of thousands of cases must not decode thousands of
    images; this stands in for the pixels until
    :func:`~napari_nsclc.formats.masks.load_case` (or any ``np.asarray``)
    needs them. ``shape`` and ``dtype`` come from the file header, read on
    first use. Nothing is cached, so iterating over a whole dataset
    (``napari-nsclc convert``) keeps one case in memory at a time.

    Parameters
    ----------
    load : callable
        ``load() -> ndarray``; raises :class:`NsclcFormatError` for bad files.
    probe : callable
        ``probe() -> (shape, dtype)`` without decoding pixels.
    """

    def __init__(self, load, probe):
        self._load = load
        self._probe = probe
        self._meta: tuple[tuple[int, ...], np.dtype] | None = None
        #: What decoding found (mask encoding, palette, dropped alpha ...), once decoded.
        self.info: dict[str, Any] = {}

    def _header(self) -> tuple[tuple[int, ...], np.dtype]:
        if self._meta is None:
            shape, dtype = self._probe()
            self._meta = (tuple(int(s) for s in shape), np.dtype(dtype))
        return self._meta

    @property
    def shape(self) -> tuple[int, ...]:
        return self._header()[0]

    @property
    def dtype(self) -> np.dtype:
        return self._header()[1]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype=None, copy=None):
        pixels = self._load()
        return pixels if dtype is None else pixels.astype(dtype)

    def __getitem__(self, key):
        return self._load()[key]

    def __repr__(self) -> str:
        return f"LazyArray(shape={self._meta[0] if self._meta else '?'})"


def _as_header(pixels: np.ndarray, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Pixels in the dtype the header announced (Pillow's non-PNG ``"I"`` may decode narrower: widened back)."""
    return pixels if pixels.dtype == dtype else pixels.astype(dtype)


def lazy_image(path: str | os.PathLike[str]) -> LazyArray:
    """An image file's display pixels (as :func:`read_pixels`), decoded on each access.

    Parameters
    ----------
    path : path
        A PNG, JPEG, TIFF, BMP or GIF file.

    Returns
    -------
    LazyArray
        ``shape``/``dtype`` from :func:`header` (read on first use);
        ``np.asarray`` decodes; ``.info`` holds the last decode's info
        (``alpha_dropped`` ...).
    """
    path = Path(path)
    lazy = LazyArray(None, None)

    def probe():
        found = header(path)
        return found.shape, found.dtype

    def load():
        pixels, lazy.info = read_pixels(path)
        return _as_header(pixels, lazy.shape, lazy.dtype)

    lazy._load, lazy._probe = load, probe
    return lazy


def deferred_image(path: str | os.PathLike[str], found: ImageHeader | None = None):
    """An image file's display pixels as a one-chunk dask array, decoded when computed.

    Parameters
    ----------
    path : path
        A PNG, JPEG, TIFF, BMP or GIF file.
    found : ImageHeader, optional
        Its display :func:`header`, when the caller already read it.

    Returns
    -------
    dask.array.Array
        Shape and dtype of :func:`header` (``(H, W)`` or ``(H, W, 3)``);
        computing it calls :func:`read_pixels`, which raises
        :class:`NsclcFormatError` for a damaged file.
    """
    import dask
    import dask.array as da

    name = str(path)
    found = found or header(path)

    def load():
        pixels = read_pixels(path)[0]
        if pixels.shape != found.shape:  # dask would fail later, and less clearly
            raise NsclcFormatError(name, f"decoded to {pixels.shape} pixels but its header says {found.shape}")
        return _as_header(pixels, found.shape, found.dtype)

    return da.from_delayed(dask.delayed(load)(), shape=found.shape, dtype=found.dtype)
