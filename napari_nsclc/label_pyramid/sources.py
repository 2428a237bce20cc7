"""A slide's label pyramid made from what exists: a CAMELYON mask TIFF, an annotation file, or nothing.

Opening a slide offers to create its label pyramid; these are the three ways:

* :func:`from_mask_tiff`: a multiresolution (or plain) mask TIFF, copied
  region by region through the project's slide reader, never whole;
* :func:`from_annotations`: an ASAP XML or QuPath GeoJSON file, its polygons
  filled with :func:`~napari_nsclc.label_pyramid.raster.rasterize`;
* :func:`empty_for_slide`: all background, shaped like the slide.

Each checks its input first and refuses it with an :class:`NsclcFormatError`
naming the file and what is wrong in one line; a pyramid half-made when
something fails later is removed. No napari or Qt import.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..model import ClassSchema, NsclcFormatError, value_counts
from .pyramid import LabelPyramid, annotator_for, free_target, utc_now
from .raster import rasterize
from .tiling import any_blocks, finish_levels, in_memory_levels, tile_levels, write_tile

__all__ = ["CAMELYON_CLASSES", "create_for_slide", "empty_for_slide", "from_annotations", "from_mask_tiff"]

#: CAMELYON annotation groups and the class of ``CAMELYON_MASK_SCHEMA`` each becomes (ASAP's own conversion).
CAMELYON_CLASSES = {"_0": "tumor", "_1": "tumor", "Tumor": "tumor", "metastases": "tumor", "_2": "exclusion"}
#: Level-0 side of the blocks copied from a mask TIFF at a time (a multiple of every chunk size used).
_BLOCK = 2048


def _created(target: Path, make):
    """``make()``'s result; the pyramid it began at ``target`` is removed when it fails."""
    try:
        return make()
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise


def _pixel_size(info: dict) -> dict:
    mpp = info.get("mpp")
    return {"pixel_size": (mpp, mpp), "unit": "um"} if mpp else {"pixel_size": (1.0, 1.0), "unit": "px"}


# --------------------------------------------------------------------------- a mask TIFF


def _mask_level(tiff: Path, shape: Sequence[int] | None):
    """Level 0 of the mask TIFF (lazy), after checking it is a single-channel label mask of ``shape``."""
    from ..formats.slide import open_pyramid

    levels, info = open_pyramid(tiff)
    level0 = levels[0]
    if info["samples"] != 1 or level0.ndim != 2:
        raise NsclcFormatError(tiff, f"has {info['samples']} samples per pixel ({info['photometric']}): it is an "
                                     "image, not a label mask of one class code per pixel")  # fmt: skip
    if level0.dtype not in (np.uint8, np.uint16, np.bool_):
        raise NsclcFormatError(tiff, f"holds {level0.dtype} pixels; a label mask holds uint8 or uint16 class codes")
    rows, columns = level0.shape
    if shape is not None and (rows, columns) != tuple(int(s) for s in shape[:2]):
        raise NsclcFormatError(tiff, f"is {columns}x{rows} px at level 0 but the slide is {int(shape[1])}x"
                                     f"{int(shape[0])} px: it is not this slide's mask")  # fmt: skip
    return level0, info


def _copy_level0(pyramid: LabelPyramid, level0, source: Path, who: str) -> dict:
    """Copy ``level0`` into the new pyramid block by block, lower levels included, as one change."""
    rows, columns = pyramid.shape
    deepest = in_memory_levels(pyramid, _BLOCK)
    counts = np.zeros(np.iinfo(pyramid.dtype).max + 1, np.int64)
    with pyramid.locked(), pyramid.transaction() as tx:
        for y0 in range(0, rows, _BLOCK):
            for x0 in range(0, columns, _BLOCK):
                block = np.asarray(level0[y0 : min(rows, y0 + _BLOCK), x0 : min(columns, x0 + _BLOCK)])
                block = block.astype(pyramid.dtype, copy=False)
                values, found = value_counts(block)
                counts[values] += found
                grid = any_blocks(block != 0, pyramid.chunk)
                if grid.any():  # all-background chunks stay unwritten: the fill value is 0
                    write_tile(tx, pyramid, y0, x0, tile_levels(block, grid, deepest))
        finish_levels(tx, pyramid, deepest + 1)
        names = {pyramid.schema.name_of(c) if c in pyramid.schema.codes else f"class {c}": int(counts[c])
                 for c in np.flatnonzero(counts).tolist() if c != 0}  # fmt: skip
        record = {"event": "import", "annotator": who, "committed_at": utc_now(), "source": str(source),
                  "pixels": names}  # fmt: skip
        return tx.commit(record)  # the journal appends it to the edit log


def from_mask_tiff(tiff: str | Path, target: str | Path, *, schema: ClassSchema | None = None,
                   shape: Sequence[int] | None = None, annotator: str | None = None) -> LabelPyramid:  # fmt: skip
    """A new label pyramid holding a mask TIFF's labels.

    Parameters
    ----------
    tiff : path
        A single-channel uint8 (or uint16) mask TIFF, pyramidal or not
        (CAMELYON's ``tumor_001_mask.tif``); its level 0 is read a
        2048-pixel block at a time through
        :func:`napari_nsclc.formats.slide.open_pyramid`, never whole. Its
        own lower levels are not used: the pyramid's are computed (mode of
        2x2 blocks). A 1-bit mask becomes codes 0 and 1.
    target : path
        The pyramid folder to create (must not exist).
    schema : ClassSchema, optional
        The classes of the codes; default
        :data:`napari_nsclc.formats.slide.CAMELYON_MASK_SCHEMA` (1 tumor,
        2 exclusion, 255 foreground).
    shape : (int, int), optional
        The slide's level-0 ``(rows, columns)``: a mask of another size is refused.
    annotator : str, optional
        Recorded in the edit log as who imported it.

    Returns
    -------
    LabelPyramid
        Pixel size from the TIFF (its resolution tags, in um), else 1 px.

    Raises
    ------
    NsclcFormatError
        Naming the TIFF: not a readable TIFF, several samples per pixel (an
        RGB image), a non-integer pixel type, a level 0 of another shape
        than ``shape``; naming ``target`` when it exists or when nobody is
        named (``annotator``, ``NSCLC_ANNOTATOR`` or the stored name).
    """
    from ..formats.slide import CAMELYON_MASK_SCHEMA

    tiff, target = Path(tiff), free_target(target)
    who = annotator_for(annotator, target)  # before anything is read or written: the edit log names everyone
    level0, info = _mask_level(tiff, shape)
    dtype = "uint16" if level0.dtype == np.uint16 else "uint8"

    def make() -> LabelPyramid:
        pyramid = LabelPyramid.create(target, level0.shape, dtype=dtype, schema=schema or CAMELYON_MASK_SCHEMA,
                                      **_pixel_size(info))  # fmt: skip
        _copy_level0(pyramid, level0, tiff, who)
        return pyramid

    return _created(target, make)


# --------------------------------------------------------------------------- an annotation file


def _polygons_of(path: Path) -> tuple[list, list[str], ClassSchema | None]:
    """Every area polygon of an annotation file (open lines and points left out), its class, the file's schema."""
    from .. import registry

    polygons, names, schemas = [], [], []
    for case in registry.read(path):
        for objects in case.polygons:
            schemas.append(objects.schema)
            for polygon, name in zip(objects.polygons, objects.classes, strict=True):
                if polygon.kind != "path" and polygon.exterior.shape[-1] == 2 and len(polygon.exterior) >= 3:
                    polygons.append(polygon)
                    names.append(str(name))
    if not polygons:
        raise NsclcFormatError(path, "holds no polygon to fill (only points or lines): nothing to make a label "
                                     "pyramid from")  # fmt: skip
    same = all(s == schemas[0] for s in schemas)
    return polygons, names, schemas[0] if same else None


def _classes(path: Path, names: list[str], found: ClassSchema | None, given: ClassSchema | None):
    """The pyramid's schema, each polygon's class in it, and the order to fill them in (later on top)."""
    from ..formats.slide import CAMELYON_MASK_SCHEMA

    if given is not None:
        missing = sorted(set(names) - set(given.names))
        if missing:
            raise NsclcFormatError(path, f"uses classes {', '.join(missing)} that the schema {given.name!r} lacks "
                                         f"({', '.join(given.names)})")  # fmt: skip
        return given, names, list(range(len(names)))
    if set(names) <= set(CAMELYON_CLASSES):
        mapped = [CAMELYON_CLASSES[n] for n in names]
        # exclusions (_2) are drawn over the tumour outlines around them, as ASAP's conversion does
        order = sorted(range(len(mapped)), key=lambda i: mapped[i] == "exclusion")
        return CAMELYON_MASK_SCHEMA, mapped, order
    if found is None or any(n not in found for n in names):
        found = ClassSchema.from_names(path.stem, names)
    return found, names, list(range(len(names)))


def _check_inside(path: Path, polygons: list, shape: tuple[int, int]) -> None:
    for index, polygon in enumerate(polygons):
        low, high = polygon.exterior.min(axis=0), polygon.exterior.max(axis=0)
        if high[0] < -0.5 or high[1] < -0.5 or low[0] > shape[0] - 0.5 or low[1] > shape[1] - 0.5:
            raise NsclcFormatError(path, f"polygon {index} (x {low[1]:.0f}..{high[1]:.0f}, y {low[0]:.0f}.."
                                         f"{high[0]:.0f}) lies outside the {shape[1]}x{shape[0]} px slide: the "
                                         "annotations belong to another slide")  # fmt: skip


def from_annotations(annotation_file: str | Path, target: str | Path, *, shape: Sequence[int],
                     pixel_size: Sequence[float] = (1.0, 1.0), unit: str = "px", schema: ClassSchema | None = None,
                     annotator: str | None = None) -> LabelPyramid:  # fmt: skip
    """A new label pyramid with the polygons of an ASAP XML or QuPath GeoJSON file filled in.

    Parameters
    ----------
    annotation_file : path
        Read with :func:`napari_nsclc.registry.read` (ASAP XML, QuPath
        GeoJSON, or any other polygon format it knows); coordinates are
        level-0 pixels of the slide. Polygons are filled in file order, later
        on top; open lines (ASAP Measurements, GeoJSON LineStrings) and
        points are left out.
    target : path
        The pyramid folder to create (must not exist).
    shape : (int, int)
        The slide's level-0 ``(rows, columns)``.
    pixel_size, unit
        The slide's level-0 pixel size (``"um"`` ...; ``"px"`` when unknown).
    schema : ClassSchema, optional
        The classes; every class of the file must be in it. By default:
        files whose groups are all CAMELYON's (``_0``, ``_1``, ``Tumor``,
        ``metastases`` tumour; ``_2`` exclusion) get
        :data:`~napari_nsclc.formats.slide.CAMELYON_MASK_SCHEMA` (tumor 1,
        exclusion 2, the exclusions filled last, as ASAP converts them);
        other files their own classes and colours, codes in file order.
    annotator : str, optional
        Who made it, for the edit log; by default the workflow's annotator.

    Raises
    ------
    NsclcFormatError
        Naming the file: unreadable, without polygons, classes missing from
        ``schema``, a polygon wholly outside ``shape``; naming ``target``
        when it exists or when nobody is named.
    """
    path, target = Path(annotation_file), free_target(target)
    who = annotator_for(annotator, target)
    shape = tuple(int(s) for s in shape[:2])
    polygons, names, found = _polygons_of(path)
    schema, classes, order = _classes(path, names, found, schema)
    _check_inside(path, polygons, shape)

    def make() -> LabelPyramid:
        pyramid = LabelPyramid.create(target, shape, schema=schema, pixel_size=pixel_size, unit=unit)
        rasterize(pyramid, [polygons[i] for i in order], [classes[i] for i in order], annotator=who)
        return pyramid

    return _created(target, make)


# --------------------------------------------------------------------------- nothing


def empty_for_slide(slide_path: str | Path, target: str | Path, *,
                    schema: ClassSchema | None = None) -> LabelPyramid:  # fmt: skip
    """A new, all-background label pyramid shaped like a slide's level 0, with its pixel size.

    Parameters
    ----------
    slide_path : path
        Any slide :func:`napari_nsclc.formats.slide.open_pyramid` opens
        (only its header and smallest level are read).
    target : path
        The pyramid folder to create (must not exist).
    schema : ClassSchema, optional
        The classes to paint with; none by default.
    """
    from ..formats.slide import open_pyramid

    slide_path, target = Path(slide_path), free_target(target)
    _levels, info = open_pyramid(slide_path)
    return LabelPyramid.create(target, info["level_shapes"][0], schema=schema, **_pixel_size(info))


def create_for_slide(slide_path: str | Path, kind: str, source: str | Path | None, target: str | Path, *,
                     shape: Sequence[int], pixel_size=None, unit: str | None = None) -> LabelPyramid:  # fmt: skip
    """A slide's new label pyramid from one of :func:`~napari_nsclc.label_pyramid.editing.creation_sources`.

    Parameters
    ----------
    slide_path : path
        The slide.
    kind : {"mask", "xml", "geojson", "empty"}
        What ``source`` is: a CAMELYON mask TIFF, an ASAP XML or GeoJSON file, or nothing.
    source : path or None
    target : path
        The pyramid folder to create (must not exist).
    shape : (int, int)
        The slide's level-0 ``(rows, columns)``; a mask of another shape is
        refused before anything is written.
    pixel_size, unit
        The slide's level-0 pixel size, for annotation files.
    """
    if kind == "mask":
        return from_mask_tiff(source, target, shape=shape)
    if kind in ("xml", "geojson"):
        return from_annotations(source, target, shape=shape, pixel_size=pixel_size, unit=unit)
    if kind == "empty":
        return empty_for_slide(slide_path, target)
    raise ValueError(f"cannot create a label pyramid from {kind!r}")
