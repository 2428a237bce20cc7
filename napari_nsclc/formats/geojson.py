"""QuPath GeoJSON: read and write annotations exchanged with QuPath projects.

QuPath exports either a ``FeatureCollection`` or a bare JSON list of
``Feature`` objects. Each feature has a ``geometry`` in level-0 pixel
coordinates ``[x, y]`` and ``properties`` such as ``objectType``,
``classification: {"name": "Tumor", "color": [200, 0, 0]}`` (older QuPath:
``colorRGB``, a packed signed ARGB int) and ``isLocked``.

Geometry mapping:

* ``Polygon`` -> one polygon, holes kept (rings are closed in GeoJSON and not
  in the model);
* ``MultiPolygon`` -> one polygon per part, the parts linked by the
  ``geojson_feature`` attribute so the writer re-forms the MultiPolygon;
* ``LineString`` -> an open path polygon (``kind="path"``);
* ``Point``/``MultiPoint`` -> points.

Every feature's fields other than the geometry are kept verbatim and written
back, so read -> write of an unedited file is JSON-equal to the input.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import write_text_per_case
from ..conversion import CENTRES, exact, lossy, refused
from ..model import (
    CORNER,
    Case,
    ClassInfo,
    ClassSchema,
    NsclcFormatError,
    PointSet,
    Polygon,
    PolygonSet,
    Provenance,
    default_color,
    from_file,
    parse_color,
    to_file,
)
from ..registry import FormatSpec

__all__ = ["FORMAT", "UNCLASSIFIED", "read", "sniff", "write"]

#: Class of features without a ``classification`` (QuPath shows them as unclassified).
UNCLASSIFIED = "Unclassified"
POLYGON_SET_NAME = "GeoJSON polygons"
POINT_SET_NAME = "GeoJSON points"


def sniff(path: Path) -> bool:
    """A ``.geojson`` file, or a ``.json`` file that starts like GeoJSON features."""
    path = Path(path)
    if not path.is_file():
        return False
    suffix = path.suffix.lower()
    if suffix == ".geojson":
        return True
    if suffix != ".json":
        return False
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096).decode("utf-8", errors="replace")
    except OSError:
        return False
    return '"Feature' in head and '"geometry"' in head


# --------------------------------------------------------------------------- reading


def _colour_of(classification: dict) -> tuple[float, float, float, float] | None:
    if "color" in classification:
        try:
            return parse_color(classification["color"])
        except (TypeError, ValueError):
            return None
    if "colorRGB" in classification:
        return parse_color(int(classification["colorRGB"]) & 0xFFFFFF)
    return None


def _class_of(properties: dict) -> tuple[str, Any]:
    classification = properties.get("classification")
    if isinstance(classification, dict) and classification.get("name"):
        return str(classification["name"]), _colour_of(classification)
    if isinstance(classification, str):
        return classification, None
    return UNCLASSIFIED, None


def _ring(coordinates, label: str) -> np.ndarray:
    """A GeoJSON ring ``[[x, y], ...]`` as unclosed ``(y, x)`` vertices."""
    ring = np.asarray(coordinates, dtype=float)
    if ring.ndim != 2 or ring.shape[1] < 2 or len(ring) < 3:
        raise ValueError(f"{label}: a ring needs at least 3 [x, y] positions")
    if not np.isfinite(ring).all():
        raise ValueError(f"{label}: has non-finite coordinates")
    if np.array_equal(ring[0], ring[-1]):
        ring = ring[:-1]
    return from_file(ring[:, [1, 0]], CORNER)


def _polygon(rings, label: str) -> Polygon:
    if not rings:
        raise ValueError(f"{label}: empty polygon")
    return Polygon(_ring(rings[0], label), [_ring(hole, f"{label} hole {k}") for k, hole in enumerate(rings[1:], 1)])


def _features(document: Any, path: Path) -> tuple[list[dict], dict]:
    """The feature list and the document's other top-level fields."""
    if isinstance(document, list):
        return document, {"layout": "list"}
    if isinstance(document, dict) and document.get("type") == "FeatureCollection":
        rest = {k: v for k, v in document.items() if k != "features"}
        return list(document.get("features") or []), {"layout": "collection", "fields": rest}
    if isinstance(document, dict) and document.get("type") == "Feature":
        return [document], {"layout": "feature"}
    raise NsclcFormatError(path, "is neither a GeoJSON FeatureCollection, a Feature, nor a list of Features")


def read(path: Path) -> list[Case]:
    """Read a QuPath GeoJSON file into one case (polygons and points).

    A feature with a missing, unknown or malformed geometry is skipped with a
    warning naming it; a file with no usable feature at all is an error.
    """
    from .slide import reference_image

    path = Path(path)
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise NsclcFormatError(path, f"is not valid JSON: {error}") from error
    features, layout = _features(document, path)
    warnings: list[str] = []
    polygons, polygon_classes, polygon_attributes = [], [], []
    points, point_classes, point_attributes = [], [], []
    colours: dict[str, Any] = {}
    for index, feature in enumerate(features):
        label = f"{path.name}: feature {index}"
        if not isinstance(feature, dict):
            warnings.append(f"{label}: not a JSON object; skipped")
            continue
        geometry = feature.get("geometry") or {}
        kind = geometry.get("type")
        coordinates = geometry.get("coordinates")
        class_name, colour = _class_of(feature.get("properties") or {})
        kept = {k: v for k, v in feature.items() if k != "geometry"}
        geometry_extra = {k: v for k, v in geometry.items() if k not in ("type", "coordinates")}
        base = {"geojson_index": index, "geojson_feature": kept, "geojson_type": kind,
                "geojson_geometry_extra": geometry_extra}
        try:
            if kind == "Polygon":
                parts = [_polygon(coordinates, label)]
            elif kind == "MultiPolygon":
                parts = [_polygon(rings, f"{label} part {k}") for k, rings in enumerate(coordinates)]
            elif kind == "LineString":
                line = np.asarray(coordinates, dtype=float)
                if line.ndim != 2 or len(line) < 2 or not np.isfinite(line).all():
                    raise ValueError(f"{label}: a LineString needs at least 2 finite [x, y] positions")
                parts = [Polygon(from_file(line[:, [1, 0]], CORNER), kind="path")]
            elif kind in ("Point", "MultiPoint"):
                positions = np.asarray([coordinates] if kind == "Point" else coordinates, dtype=float)
                if positions.ndim != 2 or positions.shape[1] < 2 or not np.isfinite(positions).all():
                    raise ValueError(f"{label}: {kind} coordinates are not finite [x, y] positions")
                for part, (x, y) in enumerate(from_file(positions[:, :2], CORNER)):
                    points.append((y, x))
                    point_classes.append(class_name)
                    point_attributes.append({**base, "geojson_part": part})
                colours.setdefault(class_name, colour)
                continue
            else:
                raise ValueError(f"{label}: geometry type {kind!r} is not supported")
        except (TypeError, ValueError) as error:
            message = str(error) if str(error).startswith(path.name) else f"{label}: {error}"
            warnings.append(f"{message}; skipped")
            continue
        for part, polygon in enumerate(parts):
            polygons.append(polygon)
            polygon_classes.append(class_name)
            polygon_attributes.append({**base, "geojson_part": part, "object": index})
        colours.setdefault(class_name, colour)
    if features and not polygons and not points:
        raise NsclcFormatError(path, "no usable feature: " + "; ".join(w.split(": ", 1)[1] for w in warnings))
    schema = ClassSchema(
        "geojson",
        tuple(ClassInfo(code, name, colour or default_color(code)) for code, (name, colour)
              in enumerate(colours.items(), start=1)),
    )
    case = Case(
        name=path.stem,
        image=reference_image(path),
        provenance=Provenance(source=str(path), format=FORMAT.name, reader=__name__,
                              details={"features": len(features)}, warnings=warnings),
        document={"geojson": layout},
    )
    for name, members in _by_layer(polygon_attributes, POLYGON_SET_NAME):
        case.polygons.append(PolygonSet(name, [polygons[i] for i in members], [polygon_classes[i] for i in members],
                                        schema, [polygon_attributes[i] for i in members]))
    for name, members in _by_layer(point_attributes, POINT_SET_NAME) if points else []:
        case.points.append(PointSet(name, np.array([points[i] for i in members]),
                                    [point_classes[i] for i in members], schema, [point_attributes[i] for i in members]))
    return [case]


def _by_layer(attributes: list[dict], default: str) -> list[tuple[str, list[int]]]:
    """Indices of the objects per layer: a feature's ``properties.layer`` (written for a case of several
    layers of one kind), else ``default``. With no objects, one empty default layer."""
    groups: dict[str, list[int]] = {}
    for i, attrs in enumerate(attributes):
        layer = ((attrs.get("geojson_feature") or {}).get("properties") or {}).get("layer")
        groups.setdefault(layer if isinstance(layer, str) and layer else default, []).append(i)
    return list(groups.items()) or [(default, [])]


# --------------------------------------------------------------------------- writing


def _number(value: float):
    value = float(value)
    return int(value) if value.is_integer() else value


def _closed_ring(vertices_yx: np.ndarray) -> list[list]:
    xy = to_file(np.asarray(vertices_yx, dtype=float)[:, -2:][:, ::-1], CORNER)
    ring = [[_number(x), _number(y)] for x, y in xy]
    if ring and ring[0] != ring[-1]:
        ring.append(list(ring[0]))
    return ring


def _polygon_rings(polygon: Polygon) -> list[list[list]]:
    return [_closed_ring(polygon.exterior), *[_closed_ring(hole) for hole in polygon.holes]]


def _classification(feature: dict, class_name: str, schema: ClassSchema) -> dict | None:
    """Keep the stored classification when the class is unchanged; else name + schema colour."""
    stored = (feature.get("properties") or {}).get("classification")
    if _class_of(feature.get("properties") or {})[0] == class_name:
        return stored
    if class_name == UNCLASSIFIED:
        return None
    rgb = [round(c * 255) for c in schema.color_of(class_name)[:3]] if class_name in schema else [255, 0, 0]
    return {"name": class_name, "color": rgb}


def _feature(base: dict, class_name: str, schema: ClassSchema, geometry: dict) -> dict:
    stored = base.get("geojson_feature") or {"type": "Feature", "properties": {"objectType": "annotation"}}
    feature = {key: value for key, value in stored.items()}
    properties = dict(feature.get("properties") or {})
    classification = _classification(stored, class_name, schema)
    if classification is None:
        properties.pop("classification", None)
    else:
        properties["classification"] = classification
    feature["properties"] = properties
    # keep QuPath's key order: type, id, geometry, properties
    ordered = {"type": feature.pop("type", "Feature")}
    if "id" in feature:
        ordered["id"] = feature.pop("id")
    ordered["geometry"] = {**geometry, **base.get("geojson_geometry_extra", {})}
    ordered.update(feature)
    return ordered


def case_to_features(case: Case) -> list[dict]:
    """GeoJSON features for every object of ``case`` (see :func:`vector_sets`), in source order.

    When the case has several layers of one kind (NSCLC-NAT's two masks),
    each feature says its layer in ``properties.layer``.
    """
    from ..conversion import tagged_layers, vector_sets

    polygon_sets, point_sets = vector_sets(case)
    tagged = tagged_layers(case)
    groups: dict[Any, dict[str, Any]] = {}
    sequence = 0
    for polygon_set in polygon_sets:
        for polygon, class_name, attributes in zip(
            polygon_set.polygons, polygon_set.classes, polygon_set.attributes, strict=True
        ):
            class_name = str(class_name)
            source_type = attributes.get("geojson_type")
            if source_type == "MultiPolygon":
                key = ("multipolygon", attributes["geojson_index"], class_name)
            else:
                key = ("single", sequence)
            if source_type != "MultiPolygon" and "object" in attributes:
                key = ("object", id(polygon_set), attributes["object"])  # parts of one object: a MultiPolygon
            entry = groups.setdefault(key, {"order": attributes.get("geojson_index", 10**9 + sequence),
                                            "attributes": attributes, "class": class_name,
                                            "schema": polygon_set.schema, "parts": [],
                                            "layer": polygon_set.name if polygon_set.name in tagged else None})
            entry["parts"].append(polygon)
            sequence += 1
    for point_set in point_sets:
        for coords, class_name, attributes in zip(
            point_set.coords, point_set.classes, point_set.attributes, strict=True
        ):
            class_name = str(class_name)
            if attributes.get("geojson_type") == "MultiPoint":
                key = ("multipoint", attributes["geojson_index"], class_name)
            else:
                key = ("single", sequence)
            entry = groups.setdefault(key, {"order": attributes.get("geojson_index", 10**9 + sequence),
                                            "attributes": attributes, "class": class_name,
                                            "schema": point_set.schema, "points": [],
                                            "layer": point_set.name if point_set.name in tagged else None})
            entry.setdefault("points", []).append(coords)
            sequence += 1
    features = []
    for key, entry in sorted(groups.items(), key=lambda item: item[1]["order"]):
        if "parts" in entry:
            parts = entry["parts"]
            if entry["attributes"].get("traced"):
                # GeoJSON readers (shapely, QuPath) expect OGC-valid rings: split outlines at pinch corners
                from ..geometry import valid_parts

                parts = [part for polygon in parts for part in valid_parts(polygon)]
                if len(parts) > 1:
                    key = ("object", key)
            if key[0] in ("multipolygon", "object") and len(parts) > 1 or key[0] == "multipolygon":
                geometry = {"type": "MultiPolygon", "coordinates": [_polygon_rings(p) for p in parts]}
            elif parts[0].kind == "path":
                xy = to_file(np.asarray(parts[0].exterior)[:, -2:][:, ::-1], CORNER)
                geometry = {"type": "LineString", "coordinates": [[_number(x), _number(y)] for x, y in xy]}
            else:
                geometry = {"type": "Polygon", "coordinates": _polygon_rings(parts[0])}
        else:
            positions = [[_number(x), _number(y)] for y, x in to_file(np.asarray(entry["points"])[:, -2:], CORNER)]
            geometry = ({"type": "MultiPoint", "coordinates": positions} if key[0] == "multipoint"
                        else {"type": "Point", "coordinates": positions[0]})
        feature = _feature(entry["attributes"], entry["class"], entry["schema"], geometry)
        if entry["layer"] is not None:
            feature["properties"] = {**feature["properties"], "layer": entry["layer"]}
        features.append(feature)
    return features


def case_to_geojson(case: Case) -> str:
    """The GeoJSON text for ``case``, in the layout it was read from (collection by default)."""
    layout = case.document.get("geojson", {"layout": "collection", "fields": {"type": "FeatureCollection"}})
    features = case_to_features(case)
    if layout.get("layout") == "list":
        document: Any = features
    elif layout.get("layout") == "feature" and len(features) == 1:
        document = features[0]
    else:
        document = {**layout.get("fields", {"type": "FeatureCollection"}), "features": features}
    return json.dumps(document, indent=2) + "\n"


def write(cases: Sequence[Case], path: Path, *, overwrite: bool = False, **_options) -> list[Path]:
    """Write each case as QuPath-readable GeoJSON.

    ``path`` is the ``.geojson`` file for a single case, else a folder
    receiving ``<case name>.geojson`` per case. Existing files are refused
    unless ``overwrite=True``.
    """
    return write_text_per_case(cases, path, (".geojson", ".json"), case_to_geojson, overwrite)


def geojson_object_fields(attributes: dict) -> list[str]:
    """The fields of a feature that other formats do not keep: its ``id`` and extra ``properties``."""
    feature = attributes.get("geojson_feature") or {}
    properties = feature.get("properties") or {}
    found = ["id"] if "id" in feature else []
    found += [f"properties.{key}" for key in properties if key not in ("classification", "objectType", "layer")]
    if properties.get("objectType", "annotation") != "annotation":
        found.append("properties.objectType")
    return found


FORMAT = FormatSpec(
    name="geojson",
    title="QuPath GeoJSON",
    sniff=sniff,
    read=read,
    write=write,
    extensions=(".geojson", ".json"),
    priority=30,
    produces=frozenset({"polygons", "holed polygons", "parts", "lines", "points"}),
    extras=("id", "properties"),
    object_fields=geojson_object_fields,
    family="geojson",
    sized=False,
    per_case=True,
    holds={
        "polygons": exact(),
        "holed polygons": exact(),
        "parts": exact("MultiPolygons"),
        "lines": exact("LineStrings"),
        "points": exact(),
        "cells": lossy("become Points at their centres (the box size is not kept)", CENTRES),
        "boxes": exact("rectangular Polygons"),
        "mask": exact("traced into Polygons with holes, one per region"),
        "instances": exact("traced into one Polygon per object"),
        "slice boxes": refused("a GeoJSON file holds 2-D geometry of one image, not boxes on the slices of a volume"),
    },
    layers="tagged",
)
