"""Map the annotation model to napari layer data and back.

This is the only module that knows how napari represents layers. It returns
plain ``(data, kwargs, layer_type)`` tuples (napari's *LayerDataTuple*) and
reads ``(data, meta, layer_type)`` tuples (what napari hands a writer), so it
imports napari only for its colormap class, and only when called.

Conventions
-----------
* Labels: values are class codes; ``features`` has columns ``index`` and
  ``class``; colours come from the schema through a ``DirectLabelColormap``.
* Points and Shapes: ``features["class"]`` holds class names (categorical over
  the schema) and ``features["source_index"]`` the object's index in the
  per-object attribute list kept in metadata (-1 for objects added in napari).
  Face colour follows class. A schema with a hierarchy adds one column per level,
  named by :attr:`ClassSchema.level_features` (NuCLS: ``raw_classification``,
  ``main_classification``, ``super_classification``).
* ``scale`` and ``translate`` place every layer in µm (pathology) or mm
  (radiology), so layers from different files overlay.
* Everything needed to write a layer back (schema, attributes, document-level
  fields, image reference, provenance) travels in ``metadata["nsclc"]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .model import (
    BoxSet,
    Case,
    ClassInfo,
    ClassSchema,
    ImageRef,
    LabelMask,
    PointSet,
    Polygon,
    PolygonSet,
    Provenance,
    default_color,
)
from .workflow.history import LayerState

if TYPE_CHECKING:  # not imported at run time: this module loads without napari
    from napari.layers import Layer

__all__ = [
    "case_from_layers",
    "comments_to_layer",
    "case_to_layers",
    "dataset_tag",
    "decode_polygon",
    "encode_polygon",
    "layer_data_to_case",
    "layer_state",
    "layer_to_model",
    "model_to_layer",
    "plugin_metadata",
    "pyramid_to_layer",
    "region_to_layer",
    "restore_layer_state",
]

LayerDataTuple = tuple[Any, dict, str]
TRANSPARENT = (0.0, 0.0, 0.0, 0.0)
METADATA_KEY = "nsclc"
UNIT_NAMES = {"um": "micrometer", "mm": "millimeter"}
#: Lazy non-pyramidal masks up to this size are loaded so that they can be painted;
#: larger ones (a whole PCam split) stay lazy and read-only.
MAX_PAINTABLE_BYTES = 1 << 30
#: Point layers larger than this are drawn plain: no border, no antialiasing, 1-px minimum size.
MANY_POINTS = 200_000


# --------------------------------------------------------------------------- helpers


def _placement(image: ImageRef, ndim: int) -> dict:
    """``scale`` and ``translate`` for a layer of ``ndim`` spatial dims on ``image``."""
    scale = tuple(image.pixel_size)[-ndim:]
    origin = tuple(image.origin)[-ndim:]
    scale = (1.0,) * (ndim - len(scale)) + scale
    origin = (0.0,) * (ndim - len(origin)) + origin
    placement = {"scale": scale, "translate": origin}
    if image.unit in UNIT_NAMES:
        # napari's scale bar reads the layer's units, not ScaleBar.unit
        placement["units"] = (UNIT_NAMES[image.unit],) * ndim
    return placement


def _image_without_pixels(image: ImageRef) -> ImageRef:
    return replace(image, data=None)


def _metadata(kind: str, schema: ClassSchema | None, case: Case, attributes=None, extra=None) -> dict:
    return {
        METADATA_KEY: {
            "kind": kind,
            "schema": schema,
            "attributes": list(attributes) if attributes is not None else [],
            "image": _image_without_pixels(case.image),
            "provenance": case.provenance,
            "document": case.document,
            "case_name": case.name,
            "extra": dict(extra or {}),
        }
    }


def class_color_map(schema: ClassSchema, class_names: Sequence[str] = ()) -> dict[str, tuple]:
    """Colour per class name: the schema's, then stable defaults for names it lacks."""
    colors = {info.name: info.color for info in schema.classes}
    for i, name in enumerate(dict.fromkeys(n for n in class_names if n not in colors)):
        colors[name] = default_color(len(schema.classes) + i + 1)
    return colors


def _class_features(objects) -> pd.DataFrame:
    index = {name: i for i, name in enumerate(objects.schema.names)}
    # a dict lookup per object is several times faster than pandas' string
    # factorisation at a million objects
    codes = np.fromiter(
        (index.setdefault(str(name), len(index)) for name in objects.classes), np.int64, len(objects.classes)
    )
    categories = list(index)
    classes = pd.Categorical.from_codes(codes, categories)
    features = pd.DataFrame({"class": classes, "source_index": np.arange(len(objects), dtype=np.int64)})
    schema = objects.schema
    for level, column in schema.level_features.items():
        # the columns named as the dataset names them (NuCLS raw/main/super_classification);
        # map the few categories, not the (up to millions of) objects
        level_names = [schema.level(name, level) for name in categories]
        level_categories = list(dict.fromkeys(level_names))
        codes = np.array([level_categories.index(name) for name in level_names], dtype=np.int64)
        features[column] = pd.Categorical.from_codes(codes[classes.codes], level_categories)
    return features


def _object_kwargs(objects, case: Case, kind: str, ndim: int, extra=None) -> dict:
    features = _class_features(objects)
    colors = class_color_map(objects.schema, list(features["class"].cat.categories))
    return {
        "name": objects.name,
        "features": features,
        "face_color": "class",
        "face_color_cycle": colors,
        "metadata": _metadata(kind, objects.schema, case, objects.attributes, extra),
        **_placement(case.image, ndim),
    }


# --------------------------------------------------------------------------- polygons with holes


def encode_polygon(polygon: Polygon) -> np.ndarray:
    """One napari polygon vertex array for a polygon with holes.

    napari draws holes as rings embedded in the outer ring: the path walks the
    exterior, returns to its first vertex, then for each hole walks the closed
    hole and returns to the exterior's first vertex. Edges walked twice (the
    bridges) are not drawn.

    Returns
    -------
    ndarray of float, shape (K, D)
    """
    if not polygon.holes:
        return polygon.exterior
    anchor = polygon.exterior[:1]
    parts = [polygon.exterior, anchor]
    for hole in polygon.holes:
        parts += [hole, hole[:1], anchor]
    return np.concatenate(parts, axis=0)


def decode_polygon(vertices: np.ndarray, kind: str = "polygon") -> Polygon:
    """Invert :func:`encode_polygon`: split at the returns to the first vertex."""
    vertices = np.asarray(vertices, dtype=float)
    returns = np.flatnonzero(np.all(vertices[1:] == vertices[0], axis=1)) + 1
    if len(returns) == 0:
        return Polygon(vertices, kind=kind)
    exterior = vertices[: returns[0]]
    holes = []
    for start, stop in zip(returns[:-1], returns[1:], strict=True):
        ring = vertices[start + 1 : stop]
        if len(ring) > 1 and np.array_equal(ring[-1], ring[0]):
            ring = ring[:-1]
        if len(ring) >= 3:
            holes.append(ring)
    return Polygon(exterior, holes, kind=kind)


# --------------------------------------------------------------------------- model -> layers


def image_to_layer(image: ImageRef) -> LayerDataTuple | None:
    """An Image layer for ``image``, or ``None`` if the reader has no pixels."""
    if image.data is None:
        return None
    data = image.data
    if not image.multiscale and _decoded_per_access(data) and _nbytes(data) <= MAX_PAINTABLE_BYTES:
        data = np.asarray(data)  # decode once, not on every redraw
    first = data[0] if image.multiscale else data
    ndim = first.ndim - (1 if image.rgb else 0)
    kwargs: dict[str, Any] = {
        "name": image.name or "image",
        "rgb": image.rgb,
        "multiscale": image.multiscale,
        "metadata": {METADATA_KEY: {"kind": "image", "image": _image_without_pixels(image)}},
        **_placement(image, ndim),
    }
    if "contrast_limits" in image.metadata:
        kwargs["contrast_limits"] = tuple(image.metadata["contrast_limits"])
    elif np.dtype(first.dtype) == np.uint8:
        kwargs["contrast_limits"] = (0, 255)
    if "window" in image.metadata:
        width, level = image.metadata["window"]
        kwargs["contrast_limits"] = (level - width / 2, level + width / 2)
    if not image.rgb:
        kwargs["colormap"] = image.metadata.get("colormap", "gray")
    if "blending" in image.metadata:
        kwargs["blending"] = image.metadata["blending"]
    return (data, kwargs, "image")


def _decoded_per_access(data) -> bool:
    """Whether ``data`` is a stand-in that decodes its file on every access.

    numpy, dask and zarr arrays are kept as they are: dask and zarr read only
    the chunks napari shows.
    """
    return not isinstance(data, np.ndarray) and not hasattr(data, "chunks")


def labels_colormap_dict(schema: ClassSchema, extra_values: Sequence[int] = ()) -> dict:
    """``{value: RGBA}`` for a ``DirectLabelColormap``; background and unknown values handled."""
    colors: dict[Any, tuple] = {info.code: info.color for info in schema.classes}
    for value in extra_values:
        colors.setdefault(int(value), default_color(int(value)))
    if schema.background is not None:
        colors[schema.background] = TRANSPARENT
    colors[None] = (1.0, 0.0, 1.0, 1.0)  # magenta marks a value nobody defined
    return colors


def mask_to_layer(mask: LabelMask, case: Case) -> LayerDataTuple:
    """A Labels layer whose values are class codes (or instance ids)."""
    from napari.utils.colormaps import DirectLabelColormap

    first = mask.data[0] if mask.multiscale else mask.data
    if mask.kind == "instance":
        ids = sorted(mask.instance_classes)
        classes = [mask.instance_classes[i] for i in ids]
        features = pd.DataFrame({"index": ids, "class": classes})
        class_colors = class_color_map(mask.schema, classes)
        colors: dict[Any, tuple] = {i: class_colors[c] for i, c in zip(ids, classes, strict=True)}
        colors[0] = TRANSPARENT
        colors[None] = (1.0, 0.0, 1.0, 1.0)
    else:
        features = pd.DataFrame(
            {"index": [c.code for c in mask.schema.classes], "class": [c.name for c in mask.schema.classes]}
        )
        colors = labels_colormap_dict(mask.schema)
    extra = {"mask_kind": mask.kind, "instance_classes": dict(mask.instance_classes), "mask_attributes": mask.attributes}
    data = mask.data
    if not mask.multiscale and not isinstance(data, np.ndarray) and _nbytes(data) <= MAX_PAINTABLE_BYTES:
        # napari paints only into numpy arrays; lazy masks of one case fit in memory
        data = np.asarray(data)
    kwargs = {
        "name": mask.name,
        "features": features,
        "colormap": DirectLabelColormap(color_dict=colors),
        "multiscale": mask.multiscale,
        "opacity": 0.5,
        "metadata": _metadata("mask", mask.schema, case, extra=extra),
        **_placement(case.image, first.ndim),
    }
    return (data, kwargs, "labels")


def _nbytes(data) -> int:
    return int(np.prod(data.shape)) * np.dtype(data.dtype).itemsize


def points_to_layer(points: PointSet, case: Case) -> LayerDataTuple:
    """A Points layer coloured by class."""
    kwargs = _object_kwargs(points, case, "points", points.coords.shape[1])
    kwargs.update(size=points_display_size(case.image), border_width=0.1, border_color="white")
    if len(points) > MANY_POINTS:
        # Without a GPU, borders, antialiasing and napari's 2-px minimum point size
        # make drawing a million points seconds slower; at the zoom where so many
        # points show, none of them is visible, and zoomed in points grow as usual.
        kwargs.update(border_width=0, antialiasing=0, canvas_size_limits=(1, 10000))
    return (points.coords, kwargs, "points")


def comments_to_layer(comments: Sequence, ndim: int = 2, size: float = 12.0) -> LayerDataTuple:
    """Pinned review comments as a Points layer whose points carry their text ("dr_smith: look here").

    Parameters
    ----------
    comments : sequence of napari_nsclc.review.Comment
        Comments with a position (world coordinates); others are left out.
    ndim : int
        Dimensions of the layer; a position with more or fewer is cut or
        padded at the front (a 2D pin on a volume sits on slice 0).
    size : float
        Point size in world units; drawn between 14 and 28 screen pixels whatever the zoom.
    """
    pinned = [c for c in comments if c.position is not None]
    coords = np.zeros((len(pinned), ndim))
    for row, comment in enumerate(pinned):
        where = np.asarray(comment.position, dtype=float)[-ndim:]
        coords[row, ndim - len(where):] = where
    features = pd.DataFrame({
        "author": [c.author for c in pinned],
        "comment": [c.text for c in pinned],
        "when": [c.when.strftime("%Y-%m-%d %H:%M UTC") for c in pinned],
    })  # fmt: skip
    kwargs = {
        "name": "review comments",
        "features": features,
        "text": {"string": "{author}: {comment}", "color": "#00e5ff", "size": 11, "anchor": "upper_left",
                 "translation": [size, size / 2]},
        "size": size,
        "canvas_size_limits": (14, 28),  # a pin stays a pin at every zoom (screen pixels)
        "face_color": "#00e5ff",  # cyan: apart from the H&E pinks and every class colour
        "border_color": "black",
        "border_width": 0.15,
        "symbol": "disc",  # not "star": vispy draws a clamped star (canvas_size_limits) black
        "metadata": {METADATA_KEY: {"overlay": "comments"}},
    }  # fmt: skip
    return (coords, kwargs, "points")


def points_display_size(image: ImageRef) -> float:
    """A point size of ~8 µm (a nucleus) or 8 px when the scale is unknown, in pixels."""
    if image.unit == "um":
        return max(4.0, 8.0 / float(image.pixel_size[-1]))
    return 8.0


def boxes_to_layer(boxes: BoxSet, case: Case) -> LayerDataTuple:
    """A Shapes layer of rectangles (with their slice index in volumes)."""
    ndim = 2 if boxes.planes is None else 3
    kwargs = _object_kwargs(boxes, case, "boxes", ndim)
    colors = kwargs.pop("face_color_cycle")
    cycle = shapes_color_cycle(colors, [str(c) for c in boxes.classes])
    kwargs.update(
        shape_type="rectangle",
        edge_color="class",
        edge_color_cycle=cycle,
        face_color="transparent",
        edge_width=2,
        ndim=ndim,  # an empty box set on a volume must still be 3-D
        text={"string": "{class}", "anchor": "upper_left", "size": 10, "color": "white"},
    )
    return (list(boxes.corners()), kwargs, "shapes")


def shapes_color_cycle(colors: dict[str, tuple], present: Sequence[str], alpha: float | None = None) -> list[tuple]:
    """A Shapes colour cycle that gives each class its schema colour.

    napari's Shapes layer accepts only a list as a colour cycle and hands its
    colours out to the class names present, in sorted order, then to new names
    as they appear. Ordering the cycle the same way makes each class get its
    own colour.
    """
    present_sorted = sorted(set(present))
    order = present_sorted + sorted(n for n in colors if n not in set(present_sorted))
    cycle = [colors[n] for n in order]
    if alpha is not None:
        cycle = [(*c[:3], alpha) for c in cycle]
    return cycle or [(1.0, 1.0, 0.0, 1.0)]


def polygons_to_layer(polygons: PolygonSet, case: Case) -> LayerDataTuple:
    """A Shapes layer of polygons (holes embedded), rectangles and paths."""
    shape_types = []
    data = []
    for polygon in polygons.polygons:
        data.append(encode_polygon(polygon))
        # napari draws an ellipse from the 4 corners of its box; an ellipse traced as a polygon is drawn as one
        kind = "polygon" if polygon.kind == "ellipse" and len(polygon.exterior) != 4 else polygon.kind
        shape_types.append({"rectangle": "rectangle", "path": "path", "ellipse": "ellipse"}.get(kind, "polygon"))
    ndim = data[0].shape[1] if data else len(case.image.pixel_size)
    kwargs = _object_kwargs(polygons, case, "polygons", ndim, extra={"kinds": [p.kind for p in polygons.polygons]})
    colors = kwargs.pop("face_color_cycle")
    present = [str(c) for c in polygons.classes]
    kwargs.update(
        shape_type=shape_types or "polygon",
        edge_color="class",
        edge_color_cycle=shapes_color_cycle(colors, present),
        face_color="class",
        face_color_cycle=shapes_color_cycle(colors, present, alpha=0.25),
        edge_width=2,
        ndim=ndim,
    )
    return (data, kwargs, "shapes")


def model_to_layer(obj, case: Case) -> LayerDataTuple:
    """Layer data for one mask, point, box or polygon set of ``case``."""
    if isinstance(obj, LabelMask):
        return mask_to_layer(obj, case)
    if isinstance(obj, PointSet):
        return points_to_layer(obj, case)
    if isinstance(obj, BoxSet):
        return boxes_to_layer(obj, case)
    if isinstance(obj, PolygonSet):
        return polygons_to_layer(obj, case)
    raise TypeError(f"not an annotation object: {type(obj).__name__}")


def case_to_layers(case: Case) -> list[LayerDataTuple]:
    """Every layer of a case: image first, then masks, polygons, boxes, points."""
    layers = []
    image_layer = image_to_layer(case.image)
    if image_layer is not None:
        layers.append(image_layer)
    for obj in [*case.masks, *case.polygons, *case.boxes, *case.points]:
        layers.append(model_to_layer(obj, case))
    return layers


def pyramid_to_layer(pyramid, origin: tuple[float, float] = (0.0, 0.0)) -> LayerDataTuple:
    """A multiscale Labels layer showing a :class:`~napari_nsclc.label_pyramid.LabelPyramid` from disk.

    Its levels are the pyramid's zarr arrays, read a view at a time; placed
    like its slide (the pyramid's level-0 pixel size, the slide's ``origin``).
    napari shows a multiscale Labels layer read-only: regions are painted
    through :func:`region_to_layer`.
    """
    image = ImageRef(shape=pyramid.shape, pixel_size=pyramid.pixel_size, unit=pyramid.unit, origin=tuple(origin),
                     name=pyramid.name)  # fmt: skip
    mask = LabelMask(f"{pyramid.name} (label pyramid)", list(pyramid.levels), pyramid.schema,
                     attributes={"label_pyramid": str(pyramid.path)})  # fmt: skip
    return mask_to_layer(mask, Case(pyramid.name, image))


def region_to_layer(edit, pyramid, origin: tuple[float, float] = (0.0, 0.0)) -> LayerDataTuple:
    """An editable Labels layer for an open region (:class:`~napari_nsclc.label_pyramid.editing.RegionEdit`).

    Its data is the edit's own array, at full resolution, placed over the
    region of the pyramid's layer; every napari paint tool works on it.
    """
    dy, dx = pyramid.pixel_size
    place = (origin[0] + edit.y0 * dy, origin[1] + edit.x0 * dx)
    image = ImageRef(shape=edit.shape, pixel_size=pyramid.pixel_size, unit=pyramid.unit, origin=place,
                     name=pyramid.name)  # fmt: skip
    name = f"editing {pyramid.name}: y {edit.y0}..{edit.y1}, x {edit.x0}..{edit.x1}"
    mask = LabelMask(name, edit.labels, pyramid.schema, attributes={"region_edit": [edit.y0, edit.x0]})
    data, kwargs, kind = mask_to_layer(mask, Case(pyramid.name, image))
    kwargs["opacity"] = 0.7
    return data, kwargs, kind


# --------------------------------------------------------------------------- layers -> model


def _plugin_part(metadata: dict | None) -> dict[str, Any]:
    return (metadata or {}).get(METADATA_KEY) or {}


def _nsclc_meta(meta: dict) -> dict[str, Any]:
    """The napari-nsclc part of a layer-data tuple's ``meta`` (what napari hands a writer), or ``{}``."""
    return _plugin_part(meta.get("metadata"))


def plugin_metadata(layer: Layer | None) -> dict[str, Any]:
    """The napari-nsclc part of a layer's metadata, ``layer.metadata["nsclc"]``, or ``{}``.

    ``{}`` for ``None`` and for layers napari-nsclc did not make. The dict
    returned is the layer's own: to change it, change a copy and assign the
    layer's ``metadata``.
    """
    return _plugin_part(getattr(layer, "metadata", None))


def _schema_for(meta: dict, class_names: Sequence[str]) -> ClassSchema:
    """The layer's schema, extended with class names the user typed in napari."""
    schema = _nsclc_meta(meta).get("schema")
    if schema is None:
        schema = ClassSchema.from_names(meta.get("name", "classes"), [n for n in class_names if n])
    missing = [n for n in dict.fromkeys(class_names) if n and n not in schema]
    if missing:
        start = max(schema.codes, default=0) + 1
        schema = schema.with_classes(ClassInfo(start + i, n, default_color(start + i)) for i, n in enumerate(missing))
    return schema


def _objects_from_features(meta: dict, n: int) -> tuple[list[str], list[dict]]:
    features = meta.get("features")
    if features is None or len(features) != n:
        features = pd.DataFrame({"class": [""] * n, "source_index": [-1] * n})
    classes = ["" if pd.isna(c) else str(c) for c in features.get("class", pd.Series([""] * n))]
    source_attributes = _nsclc_meta(meta).get("attributes", [])
    indices = features.get("source_index", pd.Series([-1] * n)).fillna(-1).astype(int).tolist()
    attributes = [dict(source_attributes[i]) if 0 <= i < len(source_attributes) else {} for i in indices]
    return classes, attributes


def _case_from_meta(meta: dict, name: str) -> Case:
    nsclc = _nsclc_meta(meta)
    image = nsclc.get("image")
    if image is None:
        scale = tuple(meta.get("scale", (1.0, 1.0)))
        image = ImageRef(pixel_size=scale, origin=tuple(meta.get("translate", (0.0,) * len(scale))))
    return Case(
        name=nsclc.get("case_name", name),
        image=image,
        provenance=nsclc.get("provenance") or Provenance(source="", format="napari"),
        document=nsclc.get("document") or {},
    )


def layer_to_model(data: Any, meta: dict, layer_type: str):
    """One model object from napari layer data.

    Returns a :class:`LabelMask`, :class:`PointSet`, :class:`BoxSet` or
    :class:`PolygonSet`, or ``None`` for image layers.
    """
    nsclc = _nsclc_meta(meta)
    # a layer renamed to tell apart the sets of a scene (see _reader.scene_layers) keeps its set's name
    name = _nsclc_meta(meta).get("set_name") or meta.get("name", layer_type)
    if layer_type == "labels":
        extra = nsclc.get("extra", {})
        features = meta.get("features")
        schema = nsclc.get("schema")
        if schema is None:
            values = sorted(int(v) for v in np.unique(np.asarray(data[0] if meta.get("multiscale") else data)) if v)
            names = [str(v) for v in values]
            if features is not None and {"index", "class"} <= set(features.columns):
                lookup = dict(zip(features["index"].astype(int), features["class"].astype(str), strict=False))
                names = [lookup.get(v, str(v)) for v in values]
            schema = ClassSchema(name, tuple(ClassInfo(v, n, default_color(v)) for v, n in zip(values, names, strict=True)))
        return LabelMask(
            name=name,
            data=data,
            schema=schema,
            kind=extra.get("mask_kind", "semantic"),
            instance_classes=dict(extra.get("instance_classes", {})),
            attributes=dict(extra.get("mask_attributes", {})),
        )
    if layer_type == "points":
        coords = np.asarray(data, dtype=float)
        classes, attributes = _objects_from_features(meta, len(coords))
        return PointSet(name, coords, classes, _schema_for(meta, classes), attributes)
    if layer_type == "shapes":
        shapes = list(data)
        classes, attributes = _objects_from_features(meta, len(shapes))
        schema = _schema_for(meta, classes)
        shape_types = meta.get("shape_type") or ["polygon"] * len(shapes)
        if nsclc.get("kind") == "boxes":
            return _shapes_to_boxes(name, shapes, classes, schema, attributes, meta.get("ndim"))
        polygons = [decode_polygon(vertices, _kind_of(t)) for vertices, t in zip(shapes, shape_types, strict=True)]
        return PolygonSet(name, polygons, classes, schema, attributes)
    return None


def _kind_of(shape_type: str) -> str:
    return {"rectangle": "rectangle", "path": "path", "line": "path", "ellipse": "ellipse"}.get(shape_type, "polygon")


def _shapes_to_boxes(name, shapes, classes, schema, attributes, ndim=None) -> BoxSet:
    bounds = np.zeros((len(shapes), 4))
    planes = None
    if shapes and np.asarray(shapes[0]).shape[1] == 3:
        planes = np.array([int(round(np.asarray(s)[0, 0])) for s in shapes])
    elif not shapes and ndim == 3:  # an empty layer on a volume stays on the volume
        planes = np.zeros(0, dtype=int)
    for i, vertices in enumerate(shapes):
        yx = np.asarray(vertices, dtype=float)[:, -2:]
        bounds[i] = (*yx.min(axis=0), *yx.max(axis=0))
    return BoxSet(name, bounds, classes, schema, attributes, planes=planes)


def layer_data_to_case(layer_data: Sequence[tuple[Any, dict, str]], name: str = "") -> Case:
    """A :class:`Case` from napari layer data, as napari passes it to writers.

    The image reference, provenance and document-level fields are taken from
    the first layer that carries them, so that writers can return what the
    source file held.
    """
    case = None
    sources: dict[str, None] = {}  # the cases the annotation layers were read from
    for _data, meta, _layer_type in layer_data:
        nsclc = _nsclc_meta(meta)
        if nsclc.get("kind") not in (None, "image"):
            case = case or _case_from_meta(meta, name)
            image = nsclc.get("image")
            sources[f"{nsclc.get('case_name', '')} ({getattr(image, 'name', '') or getattr(image, 'path', '')})"] = None
    if case is None:
        case = _case_from_meta(layer_data[0][1] if layer_data else {}, name)
    if len(sources) > 1:
        # layers of several cases (two CT series, OCELOT's tissue and cell patches) share no pixel grid:
        # the conversion plan refuses to write them as one
        case.document = {**case.document, "layers_from": list(sources)}
    for data, meta, layer_type in layer_data:
        obj = layer_to_model(data, meta, layer_type)
        if isinstance(obj, LabelMask):
            case.masks.append(obj)
        elif isinstance(obj, PointSet):
            case.points.append(obj)
        elif isinstance(obj, BoxSet):
            case.boxes.append(obj)
        elif isinstance(obj, PolygonSet):
            case.polygons.append(obj)
        elif layer_type == "image" and case.image.data is None:
            image = _nsclc_meta(meta).get("image")
            if image is not None:
                case.image = replace(image, data=data)
    return case


# --------------------------------------------------------------------------- layers of a dataset case


def dataset_tag(layer) -> dict:
    """Where the case a layer shows sits in its dataset: ``{"source", "index", "count"}``, or ``{}``.

    The reader tags every layer of a dataset opened for correction
    (:func:`napari_nsclc._reader.scene_layers`); overlays the docks add are not case layers.
    """
    nsclc = plugin_metadata(layer)
    return {} if "overlay" in nsclc else nsclc.get("dataset") or {}


def case_from_layers(layers: Sequence, source, index: int, name: str = "") -> Case | None:
    """Case ``index`` of the dataset at ``source`` as on screen: the layers tagged with it, edits included.

    A centroids view of nucleus contours (the Classes dock's "Show as
    centroids") is not a layer of its own in the case: its classes stand in
    for those of the contours it was made from. Returns ``None`` when no layer shows the case.
    """
    chosen = [layer for layer in layers if dataset_tag(layer).get("source") == str(source)
              and dataset_tag(layer).get("index") == index]  # fmt: skip
    centroid_classes = {}
    for layer in chosen:
        contours = plugin_metadata(layer).get("contours_layer")
        if contours is not None:
            centroid_classes[contours] = layer.features
    layer_data = []
    for layer in chosen:
        if plugin_metadata(layer).get("contours_layer") is not None:
            continue
        data, kwargs, layer_type = layer.as_layer_data_tuple()
        features = centroid_classes.get(layer.name)
        if features is not None and len(features) == len(kwargs.get("features", ())):
            kwargs = {**kwargs, "features": features}
        layer_data.append((data, kwargs, layer_type))
    return layer_data_to_case(layer_data, name=name) if layer_data else None


def layer_state(layer, data_from: LayerState | None = None) -> LayerState:
    """A copy of a Points or Shapes layer's objects, for undo; ``data_from`` reuses its unchanged data."""
    features = layer.features.copy()
    if data_from is not None:
        return LayerState(data_from.data, features, data_from.shape_types)
    if hasattr(layer, "shape_type"):
        return LayerState([np.array(d, copy=True) for d in layer.data], features, list(layer.shape_type))
    return LayerState(np.array(layer.data, copy=True), features)


def restore_layer_state(layer, state: LayerState) -> None:
    """Give a Points or Shapes layer the objects of ``state`` (its colours are left to the caller)."""
    layer.selected_data = set()
    if state.shape_types is not None:
        layer.data = list(zip(state.data, state.shape_types, strict=True))
    else:
        layer.data = state.data.copy()
    layer.features = state.features.copy()


# --------------------------------------------------------------------------- nuclei at slide scale


def nuclei_to_layer(view, image: ImageRef, name: str | None = None) -> LayerDataTuple:
    """A multiscale Labels layer drawing a :class:`~napari_nsclc.nuclei.render.OutlineView`'s outlines.

    Pixel values are class codes, coloured by the set's schema;
    :data:`~napari_nsclc.nuclei.render.SELECTED` is drawn white. The set and
    its view travel in ``metadata["nsclc"]`` for the Nuclei dock.
    """
    nuclei = view.nuclei
    kwargs = {
        "name": name or f"{nuclei.name} (nuclei)",
        "multiscale": True,
        "colormap": nuclei_colormap(nuclei),
        "opacity": 1.0,
        "metadata": {METADATA_KEY: {"kind": "nuclei", "nuclei": nuclei, "outline_view": view,
                                    "image": _image_without_pixels(image)}},
        **_placement(image, 2),
    }
    return list(view.levels), kwargs, "labels"


def nuclei_colormap(nuclei) -> Any:
    """The Labels colormap of a nuclei layer: the schema's colours, selected nuclei white, background clear."""
    from .nuclei.render import SELECTED

    colors = labels_colormap_dict(nuclei.schema)
    colors[SELECTED] = (1.0, 1.0, 1.0, 1.0)
    colors[0] = TRANSPARENT
    return _direct_colormap(colors)


def _direct_colormap(colors: dict):
    from napari.utils.colormaps import DirectLabelColormap

    return DirectLabelColormap(color_dict=colors)


def outline_edit_to_layer(edit, image: ImageRef) -> LayerDataTuple:
    """Editable Shapes for an :class:`~napari_nsclc.nuclei.editing.OutlineEdit`: one polygon per nucleus,
    ``features["class"]`` and ``features["nucleus"]`` (the nucleus index, -1 for one drawn here)."""
    nuclei = edit.nuclei
    colors = class_color_map(nuclei.schema)
    features = pd.DataFrame({"class": pd.Categorical(edit.classes, categories=nuclei.schema.names),
                             "nucleus": edit.indices.astype(np.int64)})
    kwargs = {
        "name": f"editing {nuclei.name} outlines",
        "shape_type": "polygon",
        "features": features,
        "feature_defaults": {"class": nuclei.schema.names[0], "nucleus": -1},
        "edge_color": "class",
        "edge_color_cycle": shapes_color_cycle(colors, nuclei.schema.names),
        "face_color": "transparent",
        "edge_width": 1.5,
        "metadata": {METADATA_KEY: {"kind": "nuclei_edit", "edit": edit}},
        **_placement(image, 2),
    }
    return [np.asarray(ring, float) for ring in edit.rings], kwargs, "shapes"


def outline_edit_from_layer(layer) -> tuple[list, list, list]:
    """``(rings, classes, nucleus ids)`` of an outline-edit Shapes layer, for :meth:`OutlineEdit.apply`."""
    features = layer.features
    return ([np.asarray(ring, float)[:, -2:] for ring in layer.data],
            [str(name) for name in features["class"]], [int(i) for i in features["nucleus"]])
