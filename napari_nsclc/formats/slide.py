"""Whole-slide images: the pyramidal TIFF family, opened lazily as multiscale arrays.

Aperio ``.svs`` (JPEG, JPEG 2000), generic tiled TIFF and BigTIFF (CAMELYON),
Hamamatsu ``.ndpi`` (level 0 in strips), OME-TIFF with SubIFDs and the other
slide formats tifffile understands (Leica SCN, Ventana BIF, PerkinElmer
QPTIFF, Philips TIFF).

tifffile finds the pyramid (series and levels) and the pixel size. Each level
is then a lazy :class:`~napari_nsclc.formats._slide_tiles.TiledLevel` array whose chunks are the file's tiles (or
strips): displaying a view decodes only the tiles of the level on screen, read
with positioned reads and decoded by tifffile's codec for the page, several
tiles in parallel, with a shared cache of recently decoded tiles. This replaces
the tifffile zarr store + dask route for the common layouts because it reads
random 256-pixel regions 3-4x faster (benchmarks/bench_slides.py); that route
remains for layouts TiledLevel does not cover (separate colour planes, 3-D
tiles). Label, macro and thumbnail pages are left out. A large TIFF without a
pyramid gets lower levels built lazily by decimation (dask). A pyramidal
single-channel TIFF whose name says it is a mask (``tumor_001_mask.tif``,
CAMELYON style) opens as a multiscale label mask.

Opening a slide also loads, when present next to it, a same-named annotation
file (``slide.xml``: ASAP or ImageScope; ``slide.geojson``: QuPath) and a
same-named mask pyramid (``slide_mask.tif``), as ASAP does.

See FORMATS.md section 5.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import Any

import numpy as np

from .._tifflog import quiet_tifffile, tifffile_reason
from ..model import Case, ClassInfo, ClassSchema, ImageRef, LabelMask, NsclcFormatError, Provenance
from ..registry import FormatSpec
from ._slide_tiles import TiledLevel

__all__ = [
    "CAMELYON_MASK_SCHEMA",
    "FORMAT",
    "companion_paths",
    "is_slide",
    "open_pyramid",
    "read_slide",
    "reference_image",
    "slide_next_to",
]

#: Names a slide file may end with; checked lowercase.
SLIDE_SUFFIXES = (".svs", ".ndpi", ".scn", ".bif", ".qptiff", ".ome.tif", ".ome.tiff", ".ome.btf")
GENERIC_TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".tf8", ".tf2")

#: A level-0 side longer than this is refused as absurd (largest real slides: ~250k pixels).
MAX_SIDE = 2**21
#: A plain TIFF page with a side at least this long is treated as a slide even if not tiled.
LARGE_SIDE = 8192
#: A single tiled page with a side at least this long is a slide; smaller ones are left to the mask format.
TILED_SIDE = 4096
#: Lazily built levels stop once the longest side is at most this.
SMALLEST_LEVEL_SIDE = 1024

#: Series that are pictures of the glass, not the tissue pyramid.
_NON_PYRAMID_SERIES = {"label", "macro", "thumbnail", "overview", "map"}

#: The CAMELYON multiresolution mask values (ASAP's annotation-to-mask conversion).
_CAMELYON_MASK_TABLE = (
    # code, name, colour, description
    (1, "tumor", "#ff0000", "metastasis (CAMELYON16 groups _0 and _1; CAMELYON17 'metastases')"),
    (2, "exclusion", "#00ff00", "normal tissue inside a tumour outline (CAMELYON16 group _2)"),
    (255, "foreground", "#ffff00", "non-zero value of a 0/255 binary mask"),
)
CAMELYON_MASK_SCHEMA = ClassSchema(
    "camelyon-mask",
    tuple(ClassInfo(code, name, colour, description) for code, name, colour, description in _CAMELYON_MASK_TABLE),
    background=0,
)

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


# --------------------------------------------------------------------------- sniffing


def _has_tiff_magic(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(4) in _TIFF_MAGIC
    except OSError:
        return False


def _lower_name(path: Path) -> str:
    return path.name.lower()


def is_slide(path: str | Path) -> bool:
    """Whether ``path`` is a whole-slide (pyramidal, tiled or very large) TIFF.

    Slide suffixes (``.svs``, ``.ndpi``, ``.ome.tif`` ...) are accepted on
    their TIFF signature. A plain ``.tif``/``.tiff`` is accepted only if it is
    BigTIFF, holds SubIFDs or a smaller second level (reduced-resolution or
    tiled), is tiled with a side of at least ``TILED_SIDE`` pixels, or has a
    side of at least ``LARGE_SIDE``: small TIFF masks, tiled or not, belong to
    the mask format. Never raises.
    """
    path = Path(path)
    name = _lower_name(path)
    if not path.is_file() or not _has_tiff_magic(path):
        return False
    if name.endswith(SLIDE_SUFFIXES):
        return True
    if not name.endswith(GENERIC_TIFF_SUFFIXES):
        return False
    try:
        import tifffile

        with quiet_tifffile(), tifffile.TiffFile(path) as tif:
            first = tif.pages.first
            side = max(first.imagelength, first.imagewidth)
            if tif.is_bigtiff or first.subifds or side >= LARGE_SIDE or (first.is_tiled and side >= TILED_SIDE):
                return True
            if len(tif.pages) > 1:
                second = tif.pages[1]
                smaller = second.imagelength < first.imagelength and second.imagewidth < first.imagewidth
                return smaller and bool(second.is_reduced or (first.is_tiled and second.is_tiled))
    except Exception:  # a sniffer never raises
        return False
    return False


# --------------------------------------------------------------------------- pixel size


def _mpp_from_aperio(description: str) -> float | None:
    match = re.search(r"\|\s*MPP\s*=\s*([0-9.eE+-]+)", description or "")
    return float(match.group(1)) if match else None


def _mpp_from_ome(ome_xml: str | None) -> float | None:
    """PhysicalSizeX of the first OME Image, converted to um."""
    if not ome_xml:
        return None
    from defusedxml import ElementTree as DET

    root = DET.fromstring(ome_xml.encode("utf-8") if isinstance(ome_xml, str) else ome_xml)
    for element in root.iter():
        if element.tag.endswith("Pixels") and element.get("PhysicalSizeX"):
            unit = element.get("PhysicalSizeXUnit", "µm")
            factor = {"µm": 1.0, "um": 1.0, "nm": 1e-3, "mm": 1e3, "cm": 1e4, "m": 1e6}.get(unit)
            return float(element.get("PhysicalSizeX")) * factor if factor else None
    return None


def _mpp_from_resolution_tags(page) -> float | None:
    """um per pixel from XResolution/ResolutionUnit (inch or centimetre), or None."""
    unit = int(page.resolutionunit)
    x_resolution = page.resolution[0]
    if not x_resolution or x_resolution == 1.0 or unit not in (2, 3):
        return None
    return (25400.0 if unit == 2 else 10000.0) / x_resolution


def slide_pixel_size(tif, page) -> tuple[float | None, str]:
    """Microns per pixel of level 0 and where it came from (``None``, "unknown" if nowhere).

    Order: Aperio ``MPP =`` in the ImageDescription, OME ``PhysicalSizeX``,
    then the TIFF resolution tags.
    """
    mpp = _mpp_from_aperio(page.description) if tif.is_svs else None
    if mpp:
        return mpp, "Aperio ImageDescription MPP"
    if tif.is_ome:
        try:
            mpp = _mpp_from_ome(tif.ome_metadata)
        except Exception:  # malformed OME metadata: fall back to the tags
            mpp = None
        if mpp:
            return mpp, "OME PhysicalSizeX"
    mpp = _mpp_from_resolution_tags(page)
    if mpp:
        return mpp, "TIFF resolution tags"
    return None, "unknown"


# --------------------------------------------------------------------------- pyramid


def _pyramid_series(tif, path: Path):
    """The series holding the tissue pyramid: the largest one that is not label/macro/thumbnail."""
    if not tif.series:
        raise NsclcFormatError(path, "holds no readable image: the TIFF structure is corrupt or empty")
    candidates = [s for s in tif.series if (s.name or "").strip().lower() not in _NON_PYRAMID_SERIES]
    if not candidates:
        raise NsclcFormatError(path, "holds no image series other than label, macro or thumbnail pictures")

    def area(series) -> int:
        shape = series.levels[0].keyframe.shape
        return int(shape[0]) * int(shape[1])

    return max(candidates, key=area)


def _check_level(path: Path, level_index: int, series) -> None:
    """Refuse absurd sizes, unsupported compression and data past the end of the file."""
    import tifffile

    keyframe = series.keyframe
    height, width = keyframe.imagelength, keyframe.imagewidth
    if height <= 0 or width <= 0 or height > MAX_SIDE or width > MAX_SIDE:
        raise NsclcFormatError(
            path, f"level {level_index} declares an absurd size of {width} x {height} pixels "
            f"(at most {MAX_SIDE} per side is accepted); the file is corrupt or not a slide",
        )
    compression = int(keyframe.compression)
    if compression not in tifffile.TIFF.DECOMPRESSORS:
        raise NsclcFormatError(
            path, f"level {level_index} uses TIFF compression {compression}, which cannot be decoded here "
            "(supported: none, LZW, deflate, JPEG, JPEG 2000 33003/33005, JPEG XL, WebP, ZSTD ...)",
        )
    file_size = keyframe.parent.filehandle.size
    for page in series.pages:
        if page is None or not page.dataoffsets:
            continue
        # scanners write tiles in order, so the first and last tiles bound the data; checking them
        # keeps opening O(1) in the number of tiles, and a tile read short later is reported too
        offsets, counts = page.dataoffsets, page.databytecounts
        end = max(offset + count for offset, count in ((offsets[0], counts[0]), (offsets[-1], counts[-1])))
        if end > file_size:
            raise NsclcFormatError(
                path, f"is truncated: level {level_index} needs {end} bytes but the file has {file_size}",
            )


def _squeeze_to_image(array, axes: str):
    """Drop length-1 leading axes (tifffile's I/Z/T) so the level is (Y, X[, S])."""
    while array.ndim > 2 and array.shape[0] == 1 and axes[0] not in "YX":
        array = array[0]
        axes = axes[1:]
    return array, axes


def _lazy_levels(level0, smallest_side: int = SMALLEST_LEVEL_SIDE) -> list:
    """Lower levels for a pyramid-less image, built on demand by 2x decimation.

    Decimation (not averaging) keeps each level a cheap view of level 0;
    napari displays the overview at screen resolution anyway.
    """
    import dask.array as da

    if not isinstance(level0, da.Array):
        level0 = da.from_array(level0, chunks=level0.chunks, asarray=False, inline_array=True)
    levels = [level0]
    while max(levels[-1].shape[:2]) > smallest_side:
        previous = levels[-1]
        reduced = previous[::2, ::2]
        chunks = (min(1024, reduced.shape[0]), min(1024, reduced.shape[1])) + reduced.shape[2:]
        levels.append(reduced.rechunk(chunks))
    return levels


def _level_arrays(path: Path, series) -> tuple[list, str]:
    """One lazy array per level: :class:`TiledLevel` where it applies, else tifffile's zarr store in dask."""
    keyframes = [level.keyframe for level in series.levels]
    axes = series.levels[0].get_axes(True)
    if all(TiledLevel.supports(page) for page in keyframes):
        return [TiledLevel(path, page) for page in keyframes], "YXS" if keyframes[0].samplesperpixel > 1 else "YX"
    import dask.array as da
    import zarr

    store = series.aszarr()
    opened = zarr.open(store, mode="r")
    arrays = [opened[str(i)] for i in range(len(series.levels))] if hasattr(opened, "group_keys") else [opened]
    levels = []
    level_axes = axes
    for index, array in enumerate(arrays):
        lazy = da.from_zarr(array, name=f"slide-{path.name}-{id(store):x}-level{index}")
        lazy, level_axes = _squeeze_to_image(lazy, axes)
        if level_axes == "SYX":  # separate colour planes: napari wants colour last
            lazy, level_axes = da.moveaxis(lazy, 0, -1), "YXS"
        levels.append(lazy)
    return levels, level_axes


def open_pyramid(path: str | Path) -> tuple[list, dict[str, Any]]:
    """Open every pyramid level of ``path`` as a lazy array, finest first.

    Parameters
    ----------
    path : str or Path
        A pyramidal or large TIFF.

    Returns
    -------
    levels : list of TiledLevel or dask.array.Array
        Shape ``(Y, X)`` or ``(Y, X, S)``; chunks are the file's tiles or
        strips. :class:`TiledLevel` serves the common layouts; tifffile's
        zarr store wrapped in dask serves the rest (separate colour planes,
        3-D tiles), and dask builds the levels of a pyramid-less image.
        Nothing is decoded except one chunk of the smallest level, read to
        fail early on corrupt data.
    info : dict
        ``mpp`` (um/px or None), ``mpp_source``, ``vendor``, ``axes``,
        ``compression``, ``tile``, ``level_shapes``, ``downsamples``,
        ``built_levels`` (how many levels were made by decimation),
        ``photometric``, ``samples``.

    Raises
    ------
    NsclcFormatError
        Not a TIFF, truncated, absurd size, unsupported compression, or
        undecodable data.
    """
    import tifffile

    path = Path(path)
    with quiet_tifffile() as logged:  # tifffile's complaints become this one message, not stray lines
        return _open_pyramid(path, tifffile, logged)


def _open_pyramid(path: Path, tifffile, logged: list[str]) -> tuple[list, dict[str, Any]]:
    try:
        tif = tifffile.TiffFile(path)
    except (tifffile.TiffFileError, OSError, ValueError, IndexError, struct.error) as error:
        raise NsclcFormatError(
            path, f"is not a readable TIFF (corrupt or truncated): {tifffile_reason(error, logged)}"
        ) from error
    try:
        series = _pyramid_series(tif, path)
        for index, level in enumerate(series.levels):
            _check_level(path, index, level)
        levels, axes = _level_arrays(path, series)
        built = 0
        if len(levels) == 1 and max(levels[0].shape[:2]) > 2 * SMALLEST_LEVEL_SIDE:
            levels = _lazy_levels(levels[0])
            built = len(levels) - 1
        _probe_smallest_level(path, levels[-1])
    except NsclcFormatError:
        tif.close()
        raise
    except Exception as error:
        tif.close()
        raise NsclcFormatError(path, f"cannot be opened as a slide: {tifffile_reason(error, logged)}") from error

    keyframe = series.keyframe
    mpp, mpp_source = slide_pixel_size(tif, tif.pages.first)
    shape0 = levels[0].shape[:2]
    info = {
        "mpp": mpp,
        "mpp_source": mpp_source,
        "vendor": _vendor(tif),
        "axes": axes,
        "compression": getattr(keyframe.compression, "name", str(keyframe.compression)),
        "photometric": getattr(keyframe.photometric, "name", str(keyframe.photometric)),
        "samples": int(keyframe.samplesperpixel),
        "tile": tuple(int(t) for t in keyframe.tile) if keyframe.is_tiled else None,
        "level_shapes": [tuple(int(s) for s in level.shape[:2]) for level in levels],
        "downsamples": [round(shape0[0] / level.shape[0], 4) for level in levels],
        "built_levels": built,
    }
    return levels, info


def _probe_smallest_level(path: Path, level) -> None:
    """Decode the first chunk of the smallest level, so a corrupt file fails now, not in napari."""
    first_chunk = tuple(slice(0, chunk if isinstance(chunk, int) else chunk[0]) for chunk in level.chunks)
    try:
        np.asarray(level[first_chunk])
    except Exception as error:
        raise NsclcFormatError(path, f"its image data cannot be decoded: {error}") from error


def _vendor(tif) -> str:
    for vendor in ("svs", "ndpi", "ome", "scn", "bif", "qpi", "philips"):
        if getattr(tif, f"is_{vendor}", False):
            return vendor
    return "generic tiff"


def _contrast_limits(dtype: np.dtype) -> list[float]:
    """Display range from the dtype alone: scanning a gigapixel image is not an option."""
    dtype = np.dtype(dtype)
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        return [float(info.min), float(info.max)]
    return [0.0, 1.0]


# --------------------------------------------------------------------------- reading


def _looks_like_mask(path: Path, info: dict) -> bool:
    name = _lower_name(path)
    single_channel = info["samples"] == 1 and info["photometric"] in ("MINISBLACK", "1")
    return single_channel and bool(re.search(r"(^|[_.\-])(mask|masks|label|labels)([_.\-]|$)", name))


def _mask_from_levels(levels: list, path: Path, info: dict) -> LabelMask:
    return LabelMask(
        name=f"{_stem(path)} mask",
        data=levels,
        schema=CAMELYON_MASK_SCHEMA,
        attributes={"file": str(path), "level_shapes": info["level_shapes"], "compression": info["compression"]},
    )


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (*SLIDE_SUFFIXES, *GENERIC_TIFF_SUFFIXES):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def companion_paths(path: str | Path) -> dict[str, Path]:
    """Same-named annotation and mask files next to a slide, as ASAP pairs them: ``{"xml" | "geojson" | "mask": path}``."""
    path = Path(path)
    stem = _stem(path)
    found = {}
    for kind, names in (
        ("xml", (f"{stem}.xml",)),
        ("geojson", (f"{stem}.geojson",)),
        ("mask", (f"{stem}_mask.tif", f"{stem}_mask.tiff", f"{stem}.mask.tif")),
    ):
        for name in names:
            candidate = path.with_name(name)
            if candidate.is_file():
                found[kind] = candidate
                break
    return found


def _attach_annotations(case: Case, annotation_path: Path) -> None:
    """Add the sets read from ``annotation_path`` to ``case``; a bad file becomes a warning."""
    from . import asap, geojson, imagescope

    reader = None
    if annotation_path.suffix.lower() == ".geojson":
        reader = geojson
    elif asap.sniff(annotation_path):
        reader = asap
    elif imagescope.sniff(annotation_path):
        reader = imagescope
    if reader is None:
        case.provenance.warnings.append(
            f"{annotation_path.name}: next to the slide but neither ASAP nor ImageScope XML; not loaded"
        )
        return
    try:
        (annotations,) = reader.read(annotation_path)
    except NsclcFormatError as error:
        case.provenance.warnings.append(f"{annotation_path.name}: not loaded: {error.problem}")
        return
    case.points.extend(annotations.points)
    case.polygons.extend(annotations.polygons)
    case.document.update(annotations.document)
    case.provenance.warnings.extend(annotations.provenance.warnings)
    case.provenance.details.setdefault("annotation_files", []).append(str(annotation_path))


def _attach_mask(case: Case, mask_path: Path) -> None:
    try:
        levels, info = open_pyramid(mask_path)
    except NsclcFormatError as error:
        case.provenance.warnings.append(f"{mask_path.name}: not loaded: {error.problem}")
        return
    if info["level_shapes"][0] != case.image.shape:
        case.provenance.warnings.append(
            f"{mask_path.name}: level 0 is {info['level_shapes'][0]} but the slide is {case.image.shape}; not loaded"
        )
        return
    case.masks.append(_mask_from_levels(levels, mask_path, info))
    case.provenance.details.setdefault("mask_files", []).append(str(mask_path))


def slide_next_to(annotation_path: str | Path) -> Path | None:
    """The same-named slide next to an annotation file (``a.xml`` -> ``a.svs``, ``a.tif`` ...), or None."""
    annotation_path = Path(annotation_path)
    for suffix in (*SLIDE_SUFFIXES, *GENERIC_TIFF_SUFFIXES):
        candidate = annotation_path.with_name(annotation_path.stem + suffix)
        if candidate.is_file():
            return candidate
    return None


def reference_image(annotation_path: str | Path) -> ImageRef:
    """Where annotations in level-0 pixels sit in the world, without reading any pixels.

    When a same-named slide lies next to ``annotation_path`` its level-0
    shape and pixel size are used, so annotations opened on their own land
    on the slide layer. Otherwise pixels are the unit.
    """
    slide_path = slide_next_to(annotation_path)
    if slide_path is None:
        return ImageRef(path=None, pixel_size=(1.0, 1.0), unit="px")
    try:
        import tifffile

        with quiet_tifffile(), tifffile.TiffFile(slide_path) as tif:
            first = tif.pages.first
            mpp, source = slide_pixel_size(tif, first)
            shape = (int(first.imagelength), int(first.imagewidth))
    except Exception:  # an unreadable neighbour must not stop the annotations from opening
        return ImageRef(path=None, pixel_size=(1.0, 1.0), unit="px")
    if mpp is None:
        return ImageRef(path=str(slide_path), shape=shape, pixel_size=(1.0, 1.0), unit="px", name=_stem(slide_path))
    return ImageRef(path=str(slide_path), shape=shape, pixel_size=(mpp, mpp), unit="um", name=_stem(slide_path),
                    metadata={"mpp_source": source})


def read_slide(path: str | Path, *, companions: bool = True) -> list[Case]:
    """Read a whole-slide TIFF into one :class:`Case` with a lazy multiscale image.

    Parameters
    ----------
    path : str or Path
        The slide (or a multiscale mask TIFF, which becomes a mask-only case).
    companions : bool
        Also load a same-named ``.xml``/``.geojson`` annotation file and
        ``_mask.tif`` next to the slide.

    Returns
    -------
    list of Case
        One case. ``case.image.data`` is the list of levels (finest first),
        ``pixel_size`` is in um (``unit="um"``) or 1 with ``unit="px"`` and a
        warning when the file does not say. ``image.metadata`` holds
        ``contrast_limits`` (from the dtype), ``level_shapes``,
        ``downsamples``, ``vendor`` and ``mpp_source``.
    """
    path = Path(path)
    levels, info = open_pyramid(path)
    warnings = []
    if info["mpp"] is None:
        warnings.append(f"{path.name}: pixel size unknown (no vendor MPP, OME PhysicalSize or resolution tags); "
                        "using 1 pixel per unit")
        pixel_size, unit = (1.0, 1.0), "px"
    else:
        pixel_size, unit = (info["mpp"], info["mpp"]), "um"
    if info["built_levels"]:
        warnings.append(f"{path.name}: has no pyramid; {info['built_levels']} lower levels are built on demand, "
                        "so zoomed-out views read level 0")
    provenance = Provenance(
        source=str(path), format=FORMAT_NAME, reader=__name__,
        details={key: value for key, value in info.items() if key not in ("mpp",)}, warnings=warnings,
    )
    is_mask = _looks_like_mask(path, info)
    image = ImageRef(
        path=str(path),
        shape=info["level_shapes"][0],
        pixel_size=pixel_size,
        unit=unit,
        data=None if is_mask else levels,
        rgb=info["axes"].endswith("S") and levels[0].shape[-1] in (3, 4),
        name=_stem(path),
        metadata={
            "contrast_limits": _contrast_limits(levels[0].dtype),
            "level_shapes": info["level_shapes"],
            "downsamples": info["downsamples"],
            "vendor": info["vendor"],
            "mpp_source": info["mpp_source"],
        },
    )
    case = Case(name=_stem(path), image=image, provenance=provenance)
    if is_mask:
        case.masks.append(_mask_from_levels(levels, path, info))
        return [case]
    if companions:
        from ..nuclei import bulk_spans

        found = companion_paths(path)
        if "geojson" in found and bulk_spans(found["geojson"], "geojson") is not None:
            # a slide's nuclei (thousands of detections) are drawn by the nuclei layer, not as Shapes
            case.document["nuclei_file"] = str(found.pop("geojson"))
        for kind in ("xml", "geojson"):
            if kind in found:
                _attach_annotations(case, found[kind])
        if "mask" in found:
            _attach_mask(case, found["mask"])
    return [case]


FORMAT_NAME = "slide"

FORMAT = FormatSpec(
    name=FORMAT_NAME,
    title="Whole-slide image (SVS, NDPI, OME-TIFF, pyramidal TIFF)",
    sniff=is_slide,
    read=read_slide,
    write=None,
    extensions=(".svs", ".ndpi", ".ome.tif", ".ome.tiff", ".tif", ".tiff", ".scn", ".bif", ".qptiff"),
    priority=20,
    produces=frozenset({"polygons", "lines", "points", "pyramid mask"}),
    extras=("fields of the annotation file beside the slide",),
)
