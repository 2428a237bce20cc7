"""The format-neutral annotation model.

Every reader in :mod:`napari_nsclc.formats` and :mod:`napari_nsclc.datasets`
produces :class:`Case` objects and every writer consumes them. This module
imports neither napari nor Qt, so the CLI, the tests and other programs can use
it on its own.

Conventions
-----------
* Geometry is stored in the **pixel grid of the case's image**, in napari's
  axis order: ``(row, col)`` = ``(y, x)`` for 2-D images and
  ``(plane, row, col)`` = ``(z, y, x)`` for volumes. Pixel ``(0, 0)`` has its
  centre at coordinate ``(0, 0)``.
* Physical placement lives in :class:`ImageRef`: world = pixel * pixel_size +
  origin, in micrometres (pathology) or millimetres (radiology).
* Class membership is always by **class name**; a :class:`ClassSchema` gives the
  code and colour of each name.
* ``attributes`` holds, per object, whatever the source file said about it that
  the model does not represent, verbatim, so that writers can return it.

Geometry conventions of the files
---------------------------------
This table is the one place that says where each file format puts its
coordinate origin. Readers turn file coordinates into model coordinates with
:func:`from_file` and writers turn them back with :func:`to_file`, so a value
read and written again is the value that was read.

====================================  ============  ==========================
format                                origin        model = file - offset
====================================  ============  ==========================
COCO ``segmentation`` and ``bbox``    pixel corner  0.5
COCO ``keypoints``                    pixel centre  0 (pixel indices)
MIDOG and IGNITE ``bbox``             pixel corner  0.5 (the cell is the box centre)
PASCAL VOC ``bndbox``                 pixel corner  0.5
QuPath GeoJSON                        pixel corner  0.5
ASAP XML                              pixel corner  0.5
Aperio ImageScope XML                 pixel corner  0.5
NuCLS CSV ``coords_x``/``coords_y``   pixel centre  0 (vertices are pixel indices)
OCELOT cell CSV ``x,y``               pixel centre  0
label masks                           pixel grid    value of pixel (r, c) at (r, c)
====================================  ============  ==========================

VOC boxes are read as corner coordinates, the way CVAT, LabelImg and
labelme2voc write them; the VOC devkit's own 1-based inclusive indices would
differ by one pixel at ``xmin``/``ymin``. Because every box format shares the
corner origin, a box keeps its numbers from one box format to another.

Rules every writer follows:

* A box the source gave (a COCO ``bbox``, a VOC ``bndbox``) is written as
  given, never recomputed from a polygon.
* One COCO annotation is one object, however many polygons it has: its
  parts share ``attributes["object"]`` and are written back as one object.
* A 3-D series written to COCO becomes one COCO image per annotated slice
  whose ``file_name`` names the slice; the slice's ``sop_instance_uid`` and
  ``z`` index are kept as extra fields of that image.
* Masks traced into outlines follow pixel edges (half-integer model
  coordinates), so filling the outlines gives back the same pixels.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

__all__ = [
    "CENTRE",
    "CORNER",
    "BoxSet",
    "Case",
    "ClassInfo",
    "ClassSchema",
    "ImageRef",
    "LabelMask",
    "NsclcFormatError",
    "PointSet",
    "Polygon",
    "PolygonSet",
    "Provenance",
    "from_file",
    "image_size",
    "parse_color",
    "to_file",
]

Unit = Literal["um", "mm", "px"]


class NsclcFormatError(ValueError):
    """A file could not be read or written; the message names the file.

    Parameters
    ----------
    path : str or os.PathLike
        The offending file or folder.
    problem : str
        What is wrong with it, in words a user understands.
    """

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class NothingToWrite(NsclcFormatError):
    """A writer was given cases that hold nothing it writes (no mask for a mask writer).

    Writing a dataset case by case meets this for the cases without such
    annotations: they produce no file, which is not an error for the dataset.
    """


def parse_color(color: Any) -> tuple[float, float, float, float]:
    """Return an RGBA tuple of floats in [0, 1].

    Accepts ``"#rrggbb"``, ``"#rrggbbaa"``, ``"#rgb"``, an ``(r, g, b[, a])``
    sequence of ints in 0..255 or floats in 0..1, and a packed ``0xRRGGBB`` int
    (ImageScope's ``LineColor`` is BGR and is converted by its reader).
    """
    if isinstance(color, str):
        text = color.strip().lstrip("#")
        if len(text) in (3, 4):
            text = "".join(ch * 2 for ch in text)
        if len(text) not in (6, 8):
            raise ValueError(f"not a colour: {color!r}")
        values = [int(text[i : i + 2], 16) / 255 for i in range(0, len(text), 2)]
        if len(values) == 3:
            values.append(1.0)
        return tuple(values)  # type: ignore[return-value]
    if isinstance(color, (int, np.integer)):
        value = int(color)
        return ((value >> 16 & 255) / 255, (value >> 8 & 255) / 255, (value & 255) / 255, 1.0)
    values = [float(v) for v in color]
    if len(values) not in (3, 4):
        raise ValueError(f"not a colour: {color!r}")
    if any(v > 1 for v in values):
        values = [v / 255 for v in values]
    if len(values) == 3:
        values.append(1.0)
    return tuple(values)  # type: ignore[return-value]


#: Offset of a pixel-corner origin from the model's pixel-centre origin, in pixels.
CORNER = 0.5
#: Offset of a pixel-centre origin (a file of pixel indices).
CENTRE = 0.0
#: Decimals kept when shifting to a file's origin: ``0.1`` read and written again stays ``0.1``.
_FILE_DECIMALS = 10


def from_file(values, origin: float) -> np.ndarray:
    """Model coordinates of file coordinates whose origin is ``origin`` (:data:`CORNER` or :data:`CENTRE`).

    Parameters
    ----------
    values : array-like of float
        Coordinates in pixels, any shape.
    origin : float
        The format's offset, from the table in this module's docstring.

    Returns
    -------
    ndarray of float, same shape
    """
    return np.asarray(values, dtype=float) - origin


def to_file(values, origin: float) -> np.ndarray:
    """File coordinates of model coordinates (the inverse of :func:`from_file`).

    The result is rounded to 1e-10 px so that ``to_file(from_file(v))``
    gives back the decimal ``v`` the file held, not ``v`` plus a rounding
    error of the half-pixel shift.
    """
    return np.round(np.asarray(values, dtype=float) + origin, _FILE_DECIMALS) + 0.0


def color_to_hex(color: Any) -> str:
    """Return ``"#rrggbb"`` (or ``"#rrggbbaa"`` when not opaque) for any colour."""
    rgba = parse_color(color)
    text = "#" + "".join(f"{round(c * 255):02x}" for c in rgba[:3])
    if rgba[3] < 1:
        text += f"{round(rgba[3] * 255):02x}"
    return text


# --------------------------------------------------------------------------- classes


@dataclass(frozen=True)
class ClassInfo:
    """One class of a schema.

    Parameters
    ----------
    code : int
        The value the class has in masks and in its files (e.g. a COCO
        ``category_id`` or a label-mask value).
    name : str
        The class name shown to users and stored in layer features.
    color : tuple of float
        RGBA in [0, 1]. A class with alpha 0 is drawn transparent (IGNITE's
        "Unannotated", a VOC "void").
    description : str
        A longer human-readable name, e.g. ``"A adenocarcinoma"``.
    """

    code: int
    name: str
    color: tuple[float, float, float, float] = (1.0, 1.0, 0.0, 1.0)
    description: str = ""

    def __post_init__(self):
        object.__setattr__(self, "color", parse_color(self.color))


@dataclass(frozen=True)
class ClassSchema:
    """A named set of classes, defined once per dataset, as data.

    Parameters
    ----------
    name : str
        The schema's name, e.g. ``"nucls"`` or ``"ignite-he"``.
    classes : tuple of ClassInfo
        The classes, in display order. Codes and names are unique.
    hierarchy : mapping of str to mapping of str to str
        Optional coarser levels, each mapping a class name to its name at that
        level, e.g. ``{"main": {"tumor": "tumor_nonMitotic", ...},
        "super": {...}}`` for NuCLS.
    background : int or None
        The code that means "no annotation" in masks; it is drawn transparent.
    feature_names : mapping of str to str
        The layer feature column that holds the class at each level, as the
        dataset names it, e.g. ``{"raw": "raw_classification", "main":
        "main_classification", ...}`` for NuCLS. Levels not named here get
        ``class_<level>``; the raw level gets a column besides ``class`` (the
        editable one) only when named here.
    """

    name: str
    classes: tuple[ClassInfo, ...]
    hierarchy: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    background: int | None = 0
    feature_names: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "classes", tuple(self.classes))
        codes = [c.code for c in self.classes]
        names = [c.name for c in self.classes]
        if len(set(codes)) != len(codes):
            raise ValueError(f"schema {self.name!r}: duplicate class codes")
        if len(set(names)) != len(names):
            raise ValueError(f"schema {self.name!r}: duplicate class names")
        unknown = [level for level in self.feature_names if level not in self.levels]
        if unknown:
            raise ValueError(f"schema {self.name!r}: feature names for unknown levels {unknown}")
        columns = list(self.level_features.values())
        if len(set(columns)) != len(columns) or {"class", "source_index", "index"} & set(columns):
            raise ValueError(f"schema {self.name!r}: level feature names must be distinct and not class/source_index")

    # -- lookups
    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    @property
    def codes(self) -> list[int]:
        return [c.code for c in self.classes]

    def by_name(self, name: str) -> ClassInfo:
        for info in self.classes:
            if info.name == name:
                return info
        raise KeyError(f"schema {self.name!r} has no class named {name!r}")

    def by_code(self, code: int) -> ClassInfo:
        for info in self.classes:
            if info.code == int(code):
                return info
        raise KeyError(f"schema {self.name!r} has no class with code {code}")

    def code_of(self, name: str) -> int:
        return self.by_name(name).code

    def name_of(self, code: int) -> str:
        return self.by_code(code).name

    def color_of(self, name: str) -> tuple[float, float, float, float]:
        return self.by_name(name).color

    def __contains__(self, name: object) -> bool:
        return any(c.name == name for c in self.classes)

    def level(self, name: str, level: str) -> str:
        """Return ``name``'s class at a coarser ``level`` of the hierarchy."""
        if level in ("raw", self.name):
            return name
        return self.hierarchy[level].get(name, name)

    @property
    def levels(self) -> list[str]:
        """``["raw", *hierarchy levels]``."""
        return ["raw", *self.hierarchy]

    def feature_name(self, level: str) -> str:
        """The layer feature column holding the class at ``level``.

        As named in ``feature_names``, else ``class_<level>`` (``class`` for the raw level).
        """
        if level in self.feature_names:
            return self.feature_names[level]
        return "class" if level == "raw" else f"class_{level}"

    @property
    def level_features(self) -> dict[str, str]:
        """``{level: feature column}`` of the columns layers carry besides ``class``.

        Every hierarchy level, and the raw level when ``feature_names`` names it.
        """
        levels = [level for level in self.levels if level != "raw" or level in self.feature_names]
        return {level: self.feature_name(level) for level in levels}

    def with_classes(self, extra: Iterable[ClassInfo]) -> ClassSchema:
        """Return a copy with ``extra`` classes appended (e.g. values found in a file)."""
        return replace(self, classes=(*self.classes, *extra))

    @classmethod
    def from_names(
        cls, name: str, class_names: Sequence[str], *, first_code: int = 1, background: int | None = 0
    ) -> ClassSchema:
        """Make a schema for classes known only by name, with distinct colours."""
        classes = [
            ClassInfo(first_code + i, n, default_color(first_code + i))
            for i, n in enumerate(dict.fromkeys(class_names))
        ]
        return cls(name, tuple(classes), background=background)


#: A qualitative palette (Glasbey-like) for classes whose source gives no colour.
_DEFAULT_PALETTE = (
    "#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0",
    "#f032e6", "#bcf60c", "#fabebe", "#008080", "#e6beff", "#9a6324", "#fffac8",
    "#800000", "#aaffc3", "#808000", "#ffd8b1", "#000075", "#808080",
)  # fmt: skip


def default_color(code: int) -> tuple[float, float, float, float]:
    """A stable distinct colour for class ``code`` when the source gives none."""
    return parse_color(_DEFAULT_PALETTE[(int(code) - 1) % len(_DEFAULT_PALETTE)])


# --------------------------------------------------------------------------- image + provenance


@dataclass
class ImageRef:
    """The image a case is annotated on, and where its pixels sit in the world.

    Parameters
    ----------
    path : str or None
        The image file, or ``None`` when the image is inside a container file
        (HDF5) or not on disk.
    shape : tuple of int or None
        Spatial shape in pixels, ``(H, W)`` or ``(Z, H, W)``; ``None`` when
        unknown (e.g. a COCO file whose image is absent).
    pixel_size : tuple of float
        Size of one pixel along each spatial axis, in ``unit``.
    unit : {"um", "mm", "px"}
        ``"um"`` for pathology, ``"mm"`` for radiology, ``"px"`` when unknown.
    origin : tuple of float
        World position of pixel ``(0, 0)``, in ``unit``.
    data : array-like, list of array-like, or None
        The pixels when the reader has them: one array, or a list of arrays for
        a multiscale pyramid (finest first). May be lazy (dask, zarr).
    rgb : bool
        Whether the last axis of ``data`` is colour.
    metadata : dict
        Reader-specific facts (modality, window, vendor, ...).
    """

    path: str | None = None
    shape: tuple[int, ...] | None = None
    pixel_size: tuple[float, ...] = (1.0, 1.0)
    unit: Unit = "px"
    origin: tuple[float, ...] = (0.0, 0.0)
    data: Any = None
    rgb: bool = False
    name: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def ndim(self) -> int:
        return len(self.pixel_size)

    @property
    def multiscale(self) -> bool:
        return isinstance(self.data, (list, tuple))


@dataclass
class Provenance:
    """Where annotations came from and how they were read.

    Parameters
    ----------
    source : str
        The file or folder that was read.
    format : str
        The format or dataset layout, e.g. ``"coco"`` or ``"nsclc-nat"``.
    reader : str
        The module that read it.
    details : dict
        Facts the reader found, e.g. ``{"mask_encoding": "0/255"}``.
    warnings : list of str
        Problems met and worked around, each naming the file.
    """

    source: str
    format: str
    reader: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- annotations


@dataclass
class LabelMask:
    """A label image whose values are class codes (or instance ids).

    Parameters
    ----------
    name : str
        Layer name, e.g. ``"tumour bed"``.
    data : array-like or list of array-like
        Integer array in the image's pixel grid (numpy, dask or zarr), or a
        list of them for a multiscale mask.
    schema : ClassSchema
        What each value means. For ``kind="instance"`` masks the schema
        describes ``instance_classes``' values instead.
    kind : {"semantic", "instance"}
        ``"semantic"``: value = class code. ``"instance"``: value = object id,
        with ``instance_classes`` giving each id's class name.
    instance_classes : dict of int to str
        Class name per instance id, for instance masks.
    attributes : dict
        Anything else the source said about the mask, verbatim (palette,
        encoding, file names).
    """

    name: str
    data: Any
    schema: ClassSchema
    kind: Literal["semantic", "instance"] = "semantic"
    instance_classes: dict[int, str] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def multiscale(self) -> bool:
        return isinstance(self.data, (list, tuple))


def _as_str_array(values: Iterable[str], n: int) -> np.ndarray:
    out = np.asarray(list(values), dtype=object)
    if out.shape != (n,):
        raise ValueError(f"expected {n} class names, got {out.shape[0]}")
    return out


@dataclass(eq=False)
class _ObjectSet:
    name: str
    classes: np.ndarray
    schema: ClassSchema
    attributes: list[dict[str, Any]]

    def __len__(self) -> int:
        return len(self.classes)

    def counts(self) -> dict[str, int]:
        """Number of objects per class name, in schema order then others."""
        names, counts = np.unique(np.asarray(self.classes, dtype=str), return_counts=True)
        found = dict(zip(names.tolist(), counts.tolist(), strict=True))
        ordered = {n: found.pop(n) for n in self.schema.names if n in found}
        ordered.update(found)
        return ordered


@dataclass(eq=False)
class PointSet(_ObjectSet):
    """Classified points, e.g. cell centres.

    Parameters
    ----------
    name : str
        Layer name.
    coords : ndarray of float, shape (N, D)
        Pixel coordinates, ``(y, x)`` or ``(z, y, x)``.
    classes : ndarray of str, shape (N,)
        Class name of each point.
    schema : ClassSchema
    attributes : list of dict, length N
        Per-point source fields kept verbatim (a COCO annotation's ``id``,
        box size, ``attributes``...).
    """

    coords: np.ndarray = None  # type: ignore[assignment]

    def __init__(self, name, coords, classes, schema, attributes=None):
        coords = np.asarray(coords, dtype=float).reshape(-1, np.shape(coords)[-1] if np.size(coords) else 2)
        n = len(coords)
        super().__init__(name, _as_str_array(classes, n), schema, list(attributes or [{} for _ in range(n)]))
        self.coords = coords
        if len(self.attributes) != n:
            raise ValueError(f"expected {n} attribute dicts, got {len(self.attributes)}")


@dataclass(eq=False)
class BoxSet(_ObjectSet):
    """Axis-aligned boxes, e.g. VOC objects or COCO ``bbox``.

    Parameters
    ----------
    name : str
    bounds : ndarray of float, shape (N, 4)
        ``(ymin, xmin, ymax, xmax)`` in pixels, edges inclusive of the
        covered area (a COCO ``[x, y, w, h]`` becomes
        ``(y, x, y + h, x + w)``).
    classes : ndarray of str, shape (N,)
    schema : ClassSchema
    planes : ndarray of int, shape (N,), optional
        The slice index of each box in a volume; ``None`` for 2-D images.
    attributes : list of dict, length N
    """

    bounds: np.ndarray = None  # type: ignore[assignment]
    planes: np.ndarray | None = None

    def __init__(self, name, bounds, classes, schema, attributes=None, planes=None):
        bounds = np.asarray(bounds, dtype=float).reshape(-1, 4)
        n = len(bounds)
        super().__init__(name, _as_str_array(classes, n), schema, list(attributes or [{} for _ in range(n)]))
        self.bounds = bounds
        self.planes = None if planes is None else np.asarray(planes, dtype=int).reshape(n)
        if len(self.attributes) != n:
            raise ValueError(f"expected {n} attribute dicts, got {len(self.attributes)}")

    def corners(self) -> np.ndarray:
        """Rectangles as napari shape vertices, shape (N, 4, D), clockwise from top-left."""
        y0, x0, y1, x1 = self.bounds.T
        rect = np.stack(
            [np.stack([y0, x0], -1), np.stack([y0, x1], -1), np.stack([y1, x1], -1), np.stack([y1, x0], -1)], 1
        )
        if self.planes is None:
            return rect
        planes = np.broadcast_to(self.planes[:, None, None], (len(rect), 4, 1)).astype(float)
        return np.concatenate([planes, rect], axis=2)


@dataclass
class Polygon:
    """A polygon with optional holes, in pixel coordinates.

    Parameters
    ----------
    exterior : ndarray of float, shape (K, D)
        The outer ring, ``(y, x)`` or ``(z, y, x)`` per vertex, not closed
        (the first vertex is not repeated at the end).
    holes : list of ndarray, each shape (K_i, D)
        Inner rings, same convention.
    kind : {"polygon", "rectangle", "path", "ellipse"}
        How the source drew it; writers that distinguish kinds use it.
    """

    exterior: np.ndarray
    holes: list[np.ndarray] = field(default_factory=list)
    kind: str = "polygon"

    def __post_init__(self):
        self.exterior = np.asarray(self.exterior, dtype=float)
        self.holes = [np.asarray(h, dtype=float) for h in self.holes]

    def __eq__(self, other):
        if not isinstance(other, Polygon):
            return NotImplemented
        return (
            self.kind == other.kind
            and np.array_equal(self.exterior, other.exterior)
            and len(self.holes) == len(other.holes)
            and all(np.array_equal(a, b) for a, b in zip(self.holes, other.holes, strict=True))
        )

    def to_shapely(self):
        """Return a :class:`shapely.Polygon` in ``(x, y)`` order (2-D only)."""
        import shapely

        return shapely.Polygon(self.exterior[:, ::-1][:, -2:], [h[:, ::-1][:, -2:] for h in self.holes])


@dataclass(eq=False)
class PolygonSet(_ObjectSet):
    """Classified polygons (contours, regions, rectangles).

    Parameters
    ----------
    name : str
    polygons : list of Polygon, length N
    classes : ndarray of str, shape (N,)
    schema : ClassSchema
    attributes : list of dict, length N
        The parts of one object (a COCO annotation of several polygons, a
        GeoJSON MultiPolygon) share ``attributes[i]["object"]``.
    """

    polygons: list[Polygon] = None  # type: ignore[assignment]

    def __init__(self, name, polygons, classes, schema, attributes=None):
        polygons = list(polygons)
        n = len(polygons)
        super().__init__(name, _as_str_array(classes, n), schema, list(attributes or [{} for _ in range(n)]))
        self.polygons = polygons
        if len(self.attributes) != n:
            raise ValueError(f"expected {n} attribute dicts, got {len(self.attributes)}")

    def counts(self) -> dict[str, int]:
        """Number of objects per class: the parts of one object count once (per class they carry)."""
        seen = {(a.get("object", ("polygon", i)), str(c)) for i, (a, c) in enumerate(zip(self.attributes, self.classes,
                                                                                         strict=True))}
        found: dict[str, int] = {}
        for _key, name in seen:
            found[name] = found.get(name, 0) + 1
        ordered = {n: found.pop(n) for n in self.schema.names if n in found}
        ordered.update(dict(sorted(found.items())))
        return ordered


@dataclass
class Case:
    """One image and everything annotated on it.

    Parameters
    ----------
    name : str
        A short name for the case, e.g. the file stem.
    image : ImageRef
    masks, points, boxes, polygons : lists
        The annotation layers, in display order.
    provenance : Provenance
    document : dict
        Fields of the source document that belong to no single object
        (COCO ``info``/``licenses``, VOC ``source``...), kept verbatim.
    group : str or None
        Cases with the same group are parts of one scene that overlay in world
        coordinates (an OCELOT sample's tissue and cell patches) and are
        opened together.
    """

    name: str
    image: ImageRef = field(default_factory=ImageRef)
    masks: list[LabelMask] = field(default_factory=list)
    points: list[PointSet] = field(default_factory=list)
    boxes: list[BoxSet] = field(default_factory=list)
    polygons: list[PolygonSet] = field(default_factory=list)
    provenance: Provenance = field(default_factory=lambda: Provenance(source="", format=""))
    document: dict[str, Any] = field(default_factory=dict)
    group: str | None = None

    def annotation_sets(self) -> list[_ObjectSet]:
        """All point, box and polygon sets."""
        return [*self.points, *self.boxes, *self.polygons]

    def counts(self) -> dict[str, dict[str, int]]:
        """Objects per class, per annotation set name (masks: pixels per class)."""
        out: dict[str, dict[str, int]] = {}
        for objects in self.annotation_sets():
            out[objects.name] = objects.counts()
        for mask in self.masks:
            out[mask.name] = mask_class_counts(mask)
        return out


def unique_names(names: Iterable[str], joiner: str = " #") -> list[str]:
    """The names made unique in order: a repeated name gets ``joiner`` and its count (``"a"``, ``"a #2"``, ``"a #3"``).

    >>> unique_names(["a", "b", "a"])
    ['a', 'b', 'a #2']
    """
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}{joiner}{seen[name]}")
    return out


def value_counts(values) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of an integer array, sorted, and how many elements hold each.

    Parameters
    ----------
    values : array-like of int or bool, any shape

    Returns
    -------
    values, counts : ndarray, shape (K,)

    Notes
    -----
    A 2-D ``uint8`` (or ``bool``) array, the common mask, is counted by
    Pillow's histogram: one pass in C, about 2 ms for 2048² pixels, where
    :func:`numpy.unique` and :func:`numpy.bincount` (which widens every pixel
    to 64 bits first) take 15-17 ms.
    """
    values = np.asarray(values)
    if values.dtype == bool:
        values = values.view(np.uint8)
    if values.dtype == np.uint8 and values.ndim == 2 and values.size:
        from PIL import Image

        histogram = np.asarray(Image.fromarray(np.ascontiguousarray(values)).histogram())
        present = np.flatnonzero(histogram)
        return present.astype(np.uint8), histogram[present]
    return np.unique(values, return_counts=True)


def mask_class_counts(mask: LabelMask) -> dict[str, int]:
    """Pixels per class of a semantic mask, or instances per class of an instance mask.

    Multiscale masks are counted at their coarsest level.

    Values outside the schema are counted under ``"<value N>"`` so that they are
    visible rather than dropped.
    """
    if mask.kind == "instance":
        counts: dict[str, int] = {}
        for cls in mask.instance_classes.values():
            counts[cls] = counts.get(cls, 0) + 1
        return counts
    # A slide-sized mask pyramid is counted at its coarsest level: level 0 can
    # hold billions of pixels.
    data = mask.data[-1] if mask.multiscale else mask.data
    values, counts_arr = value_counts(data)
    out = {}
    known = set(mask.schema.codes)
    for value, count in zip(values.tolist(), counts_arr.tolist(), strict=True):
        if value == mask.schema.background and value not in known:
            continue
        name = mask.schema.name_of(value) if value in known else f"<value {value}>"
        out[name] = count
    return out


def image_size(case: Case) -> tuple[int, int] | None:
    """``(height, width)`` of a case's image in pixels, from what was read, or ``None`` when unknown.

    A lazily read case (a dataset folder) knows its size from the image or
    mask file headers, so nothing is decoded here.
    """
    shape = case.image.shape
    if shape is None and case.image.data is not None:
        first = case.image.data[0] if case.image.multiscale else case.image.data
        shape = tuple(first.shape[:-1]) if case.image.rgb else tuple(first.shape)
    if shape is None:
        for mask in case.masks:
            first = mask.data[0] if mask.multiscale else mask.data
            shape = tuple(first.shape)
            break
    record = case.document.get("coco_image") or {}
    if shape is None and isinstance(record.get("height"), int) and isinstance(record.get("width"), int):
        shape = (record["height"], record["width"])
    if shape is None or len(shape) < 2:
        return None
    return int(shape[-2]), int(shape[-1])
