"""A label pyramid out: a CAMELYON-style pyramidal TIFF mask, or polygons (ASAP XML, QuPath GeoJSON).

Both stream the pyramid a tile at a time, so memory does not grow with the slide:

* :func:`export_tiff` writes one tiled IFD per level (the multiresolution mask
  ASAP and the CAMELYON challenges use), feeding tifffile an iterator of tiles.
* :func:`to_polygons` traces each tile's regions on pixel boundaries
  (:func:`napari_nsclc.geometry.labels_to_instances`), moves them to level-0
  coordinates, and merges the pieces of regions cut by tile edges with
  shapely, so a region comes out as the polygon tracing the whole mask at once
  gives. :func:`write_polygons` writes them with the project's ASAP or
  GeoJSON writer.

No napari or Qt import.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .._atomic import atomic_path, refuse_overwrite
from ..model import Case, ImageRef, NsclcFormatError, Polygon, PolygonSet, Provenance

__all__ = ["export_tiff", "to_polygons", "write_polygons"]

#: TIFF resolution (pixels per centimetre) of one unit of pixel size.
_PER_CENTIMETRE = {"um": 1e4, "mm": 10.0, "nm": 1e7}
#: Level-0 columns read from the pyramid at once while streaming a TIFF band (bounded, whatever the slide).
_BLOCK_COLUMNS = 2048
#: Formats :func:`write_polygons` picks by suffix.
_POLYGON_FORMATS = {".xml": "asap", ".geojson": "geojson", ".json": "geojson"}


# --------------------------------------------------------------------------- TIFF


def _tiles(level, tile: int) -> Iterator[np.ndarray]:
    """The ``tile`` x ``tile`` tiles of a level, row by row (smaller at the edges), a bounded block read at a time."""
    rows, columns = level.shape
    width = max(tile, _BLOCK_COLUMNS // tile * tile)
    for y0 in range(0, rows, tile):
        y1 = min(rows, y0 + tile)
        for bx in range(0, columns, width):
            block = np.asarray(level[y0:y1, bx : min(columns, bx + width)])
            for x0 in range(0, block.shape[1], tile):
                yield block[:, x0 : x0 + tile]


def _encoded_tiles(level, tile: int) -> Iterator[bytes]:
    """Every tile of a level, deflate-encoded as TIFF stores it (full ``tile`` x ``tile``, zero-padded).

    A tile of one class, most of a mask, is encoded once per class and
    reused: the background of a 100k² slide is not compressed 38,000 times.
    """
    import imagecodecs

    def encode(pixels: np.ndarray) -> bytes:  # a zlib stream: TIFF's Adobe deflate (compression 8)
        return imagecodecs.deflate_encode(np.ascontiguousarray(pixels), level=6)

    uniform: dict[int, bytes] = {}
    for pixels in _tiles(level, tile):
        low = pixels.min()
        if low == pixels.max():  # the padding of an edge tile lies outside the image: any value will do
            if int(low) not in uniform:
                uniform[int(low)] = encode(np.full((tile, tile), low, pixels.dtype))
            yield uniform[int(low)]
        else:
            padded = np.zeros((tile, tile), pixels.dtype)
            padded[: pixels.shape[0], : pixels.shape[1]] = pixels
            yield encode(padded)


def _resolution(pyramid, level: int) -> dict:
    """TIFF resolution tags of ``level`` in pixels per centimetre (none when the pixel size is unknown)."""
    per_unit = _PER_CENTIMETRE.get(pyramid.unit)
    if per_unit is None:
        return {}
    dy, dx = pyramid.pixel_size
    scale = 2**level
    return {"resolution": (per_unit / (dx * scale), per_unit / (dy * scale)), "resolutionunit": "CENTIMETER"}


def export_tiff(pyramid, path: str | Path, *, tile: int = 512, overwrite: bool = False) -> Path:
    """Write the pyramid as a CAMELYON-style multiresolution TIFF mask, a tile at a time.

    Parameters
    ----------
    pyramid : LabelPyramid
    path : path
        The ``.tif`` to write. Name it like a mask (``tumor_001_mask.tif``,
        ``slide_labels.tif``): napari-nsclc's slide reader opens a
        single-channel pyramidal TIFF as a label mask only when its name says
        ``mask`` or ``labels``, and opens ``<slide>_mask.tif`` with
        ``<slide>.tif``; another name opens as a grey image.
    tile : int
        Tile side in pixels (a multiple of 16), at every level.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    Path
        ``path``.

    Notes
    -----
    One IFD per pyramid level, finest first (the others marked reduced
    resolution), each ``(rows, columns)`` of the pyramid's dtype (uint8
    normally), tiled, deflate-compressed (as ASAP, OpenSlide and libtiff
    read; LZW encodes 3x slower), BigTIFF, with XResolution and
    YResolution in pixels per centimetre from ``pyramid.pixel_size``
    (absent when the unit is ``px``). Tiles go to tifffile as an iterator
    of encoded tiles, read from the pyramid in blocks of at most 2048
    columns, so the pixels held never grow with the slide; what does grow is
    the TIFF's table of tile offsets (two numbers per tile, about 3 MB at
    100k²). The file appears only when complete (written aside, then renamed).
    """
    import tifffile

    path = Path(path)
    refuse_overwrite(path, overwrite)
    if tile <= 0 or tile % 16:
        raise NsclcFormatError(path, f"TIFF tiles must be a positive multiple of 16 pixels, not {tile}")
    with atomic_path(path) as temporary, tifffile.TiffWriter(temporary, bigtiff=True) as tif:
        for index, level in enumerate(pyramid.levels):
            tif.write(_encoded_tiles(level, tile), shape=tuple(level.shape), dtype=level.dtype, tile=(tile, tile),
                      photometric="minisblack", compression="zlib", subfiletype=1 if index else 0, metadata=None,
                      **_resolution(pyramid, index))  # fmt: skip
    return path


# --------------------------------------------------------------------------- polygons


def _valid_parts(geometry) -> list:
    """The OGC-valid polygons covering ``geometry``: traced rings pass twice through a corner where two
    pixels touch diagonally, which makes them invalid; ``make_valid`` splits them there."""
    import shapely

    if not geometry.is_valid:
        geometry = shapely.make_valid(geometry, method="structure", keep_collapsed=False)
    return [part for part in shapely.get_parts(geometry) if part.geom_type == "Polygon" and not part.is_empty]


def _canonical(polygon):
    """Without the vertices a merge leaves in the middle of straight edges, with a canonical ring order."""
    import shapely

    return shapely.normalize(shapely.simplify(shapely.normalize(polygon), 0))


def _tile_regions(labels: np.ndarray, schema, origin: tuple[int, int], level_shape: tuple[int, int],
                  scale: int) -> list[tuple[str, object, bool]]:  # fmt: skip
    """The regions of the tile at ``origin`` of a level as ``(class name, shapely polygon in level-0 (x, y), cut)``.

    ``cut`` says the region reaches an edge the tile shares with another
    tile, so it may continue there.
    """
    import shapely

    from ..geometry import labels_to_instances

    traced = labels_to_instances(labels, schema)
    (y0, x0), (height, width) = origin, labels.shape
    inner_top, inner_left = y0 > 0, x0 > 0
    inner_bottom, inner_right = y0 + height < level_shape[0], x0 + width < level_shape[1]
    out = []
    for polygon, name in zip(traced.polygons, traced.classes, strict=True):
        ys, xs = polygon.exterior[:, 0], polygon.exterior[:, 1]  # pixel boundaries: -0.5 is the tile's first edge
        edge = bool((inner_top and ys.min() < 0) or (inner_left and xs.min() < 0)
                    or (inner_bottom and ys.max() > height - 1) or (inner_right and xs.max() > width - 1))  # fmt: skip
        shape = shapely.transform(polygon.to_shapely(), lambda xy: (xy + (x0 + 0.5, y0 + 0.5)) * scale - 0.5)
        out.extend((str(name), part, edge) for part in _valid_parts(shape))
    return out


def to_polygons(pyramid, *, level: int = 0, tile: int = 4096) -> list[tuple[str, object]]:
    """Outlines of every labelled region, traced tile by tile and merged across tile edges.

    Parameters
    ----------
    pyramid : LabelPyramid
    level : int
        The level traced: 0 gives exact outlines; a coarser level gives
        coarser outlines, fast (each of its pixels a ``2**level`` square).
    tile : int
        Side of the tiles traced at a time, in pixels of ``level``.

    Returns
    -------
    list of (str, shapely.Polygon)
        Class name (from ``pyramid.schema``; a code it lacks as
        ``"<value N>"``) and polygon with holes, in shapely's ``(x, y)`` order,
        in level-0 pixel coordinates with pixel centres at integers (the
        model's; vertices on pixel boundaries, so half-integers at level 0).
        Sorted by class code order of the schema, then top to bottom.
        Every polygon is OGC-valid: where a region's pixels touch only
        diagonally it is split into polygons meeting at that corner. The
        background gets none. Filling the polygons
        (:func:`~napari_nsclc.label_pyramid.raster.rasterize`) gives the labels back exactly.
    """
    import shapely

    if not 0 <= level < len(pyramid.levels) or tile <= 0:
        raise NsclcFormatError(pyramid.path, f"cannot trace level {level} in {tile} px tiles (levels 0 to "
                                             f"{len(pyramid.levels) - 1})")  # fmt: skip
    array, scale = pyramid.levels[level], 2**level
    background = pyramid.schema.background
    done, cut = [], {}
    rows, columns = array.shape
    for y0 in range(0, rows, tile):
        for x0 in range(0, columns, tile):
            labels = pyramid.read_region(level, y0, x0, min(rows, y0 + tile), min(columns, x0 + tile))
            if labels.min() == labels.max() == background:
                continue
            for name, polygon, edge in _tile_regions(labels, pyramid.schema, (y0, x0), (rows, columns), scale):
                if edge:
                    cut.setdefault(name, []).append(polygon)
                else:
                    done.append((name, polygon))
    for name, pieces in cut.items():  # the pieces of regions that tile edges cut, joined again
        done.extend((name, part) for part in _valid_parts(shapely.unary_union(pieces)))
    order = {name: k for k, name in enumerate(pyramid.schema.names)}
    done = [(name, _canonical(polygon)) for name, polygon in done]
    by_class_then_place = lambda item: (order.get(item[0], len(order)), item[0], item[1].bounds[1], item[1].bounds[0])
    return sorted(done, key=by_class_then_place)


def _model_polygon(shape) -> Polygon:
    """A shapely polygon ``(x, y)``, closed rings, as a model polygon ``(y, x)``, open rings."""
    flip = lambda ring: np.asarray(ring.coords)[:-1, ::-1]
    return Polygon(flip(shape.exterior), [flip(ring) for ring in shape.interiors])


def polygons_case(pyramid, polygons: list[tuple[str, object]], name: str) -> Case:
    """A :class:`~napari_nsclc.model.Case` holding ``polygons`` (from :func:`to_polygons`) as one polygon set."""
    image = ImageRef(path=None, shape=pyramid.shape, pixel_size=pyramid.pixel_size,
                     unit=pyramid.unit if pyramid.unit in ("um", "mm") else "px", name=pyramid.name)  # fmt: skip
    objects = PolygonSet("label pyramid", [_model_polygon(p) for _, p in polygons], [n for n, _ in polygons],
                         pyramid.schema, [{"traced": True} for _ in polygons])  # fmt: skip
    return Case(name=name, image=image, polygons=[objects],
                provenance=Provenance(source=str(pyramid.path), format="ome-zarr label pyramid", reader=__name__))


def write_polygons(pyramid, path: str | Path, *, level: int = 0, overwrite: bool = False) -> Path:
    """Write the pyramid's regions (:func:`to_polygons`) as ASAP XML (``.xml``) or GeoJSON (``.geojson``, ``.json``).

    Class names and colours come from ``pyramid.schema`` (ASAP groups,
    QuPath classifications); coordinates are level-0 pixels in the file's
    own convention (the writers convert). ASAP XML has no holes: each hole
    is written as a polygon of its own of the same group, as the ASAP writer
    does for every source.

    Returns
    -------
    Path
        ``path``.
    """
    from .. import registry

    path = Path(path)
    format_name = _POLYGON_FORMATS.get(path.suffix.lower())
    if format_name is None:
        raise NsclcFormatError(path, "polygons are written as ASAP XML (.xml) or QuPath GeoJSON (.geojson, .json)")
    refuse_overwrite(path, overwrite)
    polygons = to_polygons(pyramid, level=level)
    registry.write([polygons_case(pyramid, polygons, path.stem)], path, format_name, overwrite=overwrite)
    return path
