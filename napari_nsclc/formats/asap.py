"""ASAP XML, the CAMELYON16/17 annotation format: read and write.

Layout (FORMATS.md section 5)::

    <ASAP_Annotations>
      <Annotations>
        <Annotation Name="Annotation 0" Type="Polygon" PartOfGroup="Tumor" Color="#F4FA58">
          <Coordinates>
            <Coordinate Order="0" X="12711.2998" Y="88778.1016" />
      <AnnotationGroups>
        <Group Name="Tumor" PartOfGroup="None" Color="#FF0000">
          <Attributes />

``Type`` is one of Dot, Polygon, Spline, PointSet, Rectangle, Measurement.
Polygon, Spline, Rectangle and Measurement become polygons (kinds
``polygon``, ``polygon``, ``rectangle``, ``path``); Dot and PointSet become
points. Groups become classes with their colours. Vertices are sorted by
``Order`` (**trap**: not document order). Coordinates are level-0 pixels,
turned into ``(y, x)``.

The writer reproduces ASAP's own layout (tab indentation, attribute order,
``" />"`` empty elements, single-precision numbers), so reading and writing an
unedited file gives the same bytes, and ASAP's parser reads what we write.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import write_text_per_case
from ..conversion import CENTRES, SPLIT_HOLES, exact, lossy, refused
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
    color_to_hex,
    default_color,
    from_file,
    parse_color,
    to_file,
)
from ..registry import FormatSpec
from ._xmlsafe import element_text, format_number, parse_xml, quote_attribute, xml_head

__all__ = ["CAMELYON16_GROUPS", "FORMAT", "read", "sniff", "write"]

#: What the CAMELYON16 group names mean (CAMELYON17 uses "metastases" or "Tumor").
CAMELYON16_GROUPS = {
    "_0": "tumour (metastasis) outline",
    "_1": "tumour (metastasis) outline",
    "_2": "exclusion: normal tissue inside a tumour outline",
    "metastases": "tumour (metastasis) outline",
    "Tumor": "tumour (metastasis) outline",
}

POLYGON_TYPES = {"Polygon": "polygon", "Spline": "polygon", "Rectangle": "rectangle", "Measurement": "path"}
POINT_TYPES = ("Dot", "PointSet")
#: Model polygon kind -> ASAP Type for objects that did not come from ASAP.
_TYPE_OF_KIND = {"polygon": "Polygon", "rectangle": "Rectangle", "path": "Measurement", "ellipse": "Polygon"}
_KNOWN_ANNOTATION_ATTRIBUTES = ("Name", "Type", "PartOfGroup", "Color")
_KNOWN_GROUP_ATTRIBUTES = ("Name", "PartOfGroup", "Color")
NO_GROUP = "None"

POLYGON_SET_NAME = "ASAP polygons"
POINT_SET_NAME = "ASAP points"


def sniff(path: Path) -> bool:
    """An ``.xml`` file whose root element is ``ASAP_Annotations``."""
    path = Path(path)
    return path.is_file() and path.suffix.lower() == ".xml" and "<ASAP_Annotations" in xml_head(path)


# --------------------------------------------------------------------------- reading


def _read_groups(root) -> list[dict[str, Any]]:
    groups = []
    container = root.find("AnnotationGroups")
    for group in [] if container is None else container.findall("Group"):
        attributes = group.find("Attributes")
        groups.append({
            "Name": group.get("Name", ""),
            "PartOfGroup": group.get("PartOfGroup", NO_GROUP),
            "Color": group.get("Color"),
            "extra": {k: v for k, v in group.attrib.items() if k not in _KNOWN_GROUP_ATTRIBUTES},
            "attributes": [] if attributes is None else [element_text(child) for child in attributes],
            "has_attributes_element": attributes is not None,
        })
    return groups


def _sorted_vertices(annotation, label: str) -> np.ndarray:
    """Vertices as (y, x), sorted by ``Order``; raises ValueError naming the bad coordinate."""
    coordinates = annotation.find("Coordinates")
    if coordinates is None:
        raise ValueError(f"{label}: has no Coordinates element")
    rows = []
    for position, coordinate in enumerate(coordinates.findall("Coordinate")):
        try:
            x, y = float(coordinate.get("X")), float(coordinate.get("Y"))
            order = float(coordinate.get("Order", position))
        except (TypeError, ValueError):
            raise ValueError(
                f"{label}: coordinate {position} lacks a numeric X, Y or Order "
                f"(X={coordinate.get('X')!r}, Y={coordinate.get('Y')!r}, Order={coordinate.get('Order')!r})"
            ) from None
        if not (np.isfinite(x) and np.isfinite(y)):
            raise ValueError(f"{label}: coordinate {position} is not finite (X={x}, Y={y})")
        rows.append((order, position, y, x))
    if not rows:
        raise ValueError(f"{label}: has no coordinates")
    rows.sort()
    return from_file(np.array([(y, x) for _, _, y, x in rows], dtype=float), CORNER)


def _schema(groups: list[dict], used: dict[str, str | None]) -> ClassSchema:
    """Classes: the defined groups in file order, then other group names met on annotations."""
    classes = []
    for group in groups:
        colour = _safe_colour(group["Color"]) or default_color(len(classes) + 1)
        classes.append(ClassInfo(len(classes) + 1, group["Name"], colour, CAMELYON16_GROUPS.get(group["Name"], "")))
    known = {c.name for c in classes}
    for name, colour in used.items():
        if name not in known:
            description = "annotations in no group" if name == NO_GROUP else "group used but not defined"
            classes.append(ClassInfo(len(classes) + 1, name, _safe_colour(colour) or default_color(len(classes) + 1),
                                     description))
            known.add(name)
    return ClassSchema("asap", tuple(classes), background=0)


def _safe_colour(text: str | None):
    try:
        return parse_color(text) if text else None
    except ValueError:
        return None


def read(path: Path) -> list[Case]:
    """Read an ASAP XML file into one case with a polygon set and a point set.

    Annotations that cannot be used (missing or non-numeric coordinates, an
    unknown Type) are skipped with one warning each in
    ``case.provenance.warnings``; an annotation in an undefined group is kept,
    as its own class, with a warning. A file where every annotation is bad is
    an error.
    """
    from .slide import reference_image

    path = Path(path)
    root = parse_xml(path)
    if root.tag != "ASAP_Annotations":
        raise NsclcFormatError(path, f"root element is <{root.tag}>, not <ASAP_Annotations>")
    groups = _read_groups(root)
    group_names = {g["Name"] for g in groups}
    warnings: list[str] = []
    polygons, polygon_classes, polygon_attributes = [], [], []
    points, point_classes, point_attributes = [], [], []
    used: dict[str, str | None] = {}
    container = root.find("Annotations")
    annotations = [] if container is None else container.findall("Annotation")
    for index, annotation in enumerate(annotations):
        name = annotation.get("Name", "")
        label = f"{path.name}: annotation {index} ({name!r})"
        kind = annotation.get("Type", "Polygon")
        group = annotation.get("PartOfGroup", NO_GROUP)
        try:
            vertices = _sorted_vertices(annotation, label)
        except ValueError as error:
            warnings.append(f"{error}; skipped")
            continue
        if kind not in POLYGON_TYPES and kind not in POINT_TYPES:
            warnings.append(f"{label}: unknown Type {kind!r}; skipped")
            continue
        if group not in group_names and group != NO_GROUP:
            warnings.append(f"{label}: group {group!r} is not defined in AnnotationGroups; kept as its own class")
        used.setdefault(group, annotation.get("Color"))
        attributes = {
            "asap_index": index,
            "Name": name,
            "Type": kind,
            "PartOfGroup": group,
            "Color": annotation.get("Color"),
            "extra": {k: v for k, v in annotation.attrib.items() if k not in _KNOWN_ANNOTATION_ATTRIBUTES},
        }
        if kind in POINT_TYPES:
            for number, vertex in enumerate(vertices):
                points.append(vertex)
                point_classes.append(group)
                point_attributes.append({**attributes, "asap_point": number})
        else:
            if kind == "Rectangle" and len(vertices) != 4:
                warnings.append(f"{label}: Rectangle with {len(vertices)} vertices; read as a polygon")
            polygons.append(Polygon(vertices, kind=POLYGON_TYPES[kind] if len(vertices) == 4 or kind != "Rectangle"
                                    else "polygon"))
            polygon_classes.append(group)
            polygon_attributes.append(attributes)
    if annotations and not polygons and not points:
        raise NsclcFormatError(path, "no usable annotation: " + "; ".join(w.split(": ", 1)[1] for w in warnings))
    schema = _schema(groups, used)
    case = Case(
        name=path.stem,
        image=reference_image(path),
        provenance=Provenance(source=str(path), format=FORMAT.name, reader=__name__,
                              details={"annotations": len(annotations), "groups": len(groups)}, warnings=warnings),
        document={"asap": {"groups": groups, "root_attributes": dict(root.attrib), "source": str(path)}},
    )
    case.polygons.append(PolygonSet(POLYGON_SET_NAME, polygons, polygon_classes, schema, polygon_attributes))
    if points:
        case.points.append(PointSet(POINT_SET_NAME, np.array(points), point_classes, schema, point_attributes))
    return [case]


# --------------------------------------------------------------------------- writing


def _attribute_text(pairs: Sequence[tuple[str, Any]]) -> str:
    return " ".join(f'{key}="{quote_attribute(value)}"' for key, value in pairs if value is not None)


def _annotation_lines(name, kind, group, colour, extra, vertices_yx) -> list[str]:
    head = _attribute_text([("Name", name), ("Type", kind), ("PartOfGroup", group), ("Color", colour),
                            *extra.items()])
    lines = [f"\t\t<Annotation {head}>", "\t\t\t<Coordinates>"]
    for order, (y, x) in enumerate(to_file(np.asarray(vertices_yx, dtype=float)[:, -2:], CORNER)):
        lines.append(f'\t\t\t\t<Coordinate Order="{order}" X="{format_number(x)}" Y="{format_number(y)}" />')
    lines += ["\t\t\t</Coordinates>", "\t\t</Annotation>"]
    return lines


def _colour_for(attributes: dict, class_name: str, schema: ClassSchema) -> str:
    """Keep the annotation's own colour unless its class changed; else the class colour."""
    if attributes.get("Color") and attributes.get("PartOfGroup") == class_name:
        return attributes["Color"]
    if class_name in schema:
        return color_to_hex(schema.color_of(class_name)[:3]).upper()
    return "#F4FA58"  # ASAP's default annotation colour


def _polygon_entries(polygon_set: PolygonSet, first_key: int) -> list[tuple[float, list[str]]]:
    entries = []
    for number, (polygon, class_name, attributes) in enumerate(
        zip(polygon_set.polygons, polygon_set.classes, polygon_set.attributes, strict=True)
    ):
        class_name = str(class_name)
        asap_type = attributes.get("Type")
        if asap_type not in POLYGON_TYPES or POLYGON_TYPES[asap_type] != polygon.kind and asap_type != "Spline":
            asap_type = _TYPE_OF_KIND.get(polygon.kind, "Polygon")
        name = attributes.get("Name") or f"Annotation {first_key + number}"
        key = attributes.get("asap_index", first_key + number)
        colour = _colour_for(attributes, class_name, polygon_set.schema)
        extra = attributes.get("extra", {})
        lines = _annotation_lines(name, asap_type, class_name, colour, extra, polygon.exterior)
        # ASAP has no holes: each hole becomes its own polygon of the same group, after its exterior
        for hole_number, hole in enumerate(polygon.holes):
            lines += _annotation_lines(f"{name} hole {hole_number}", "Polygon", class_name, colour, {}, hole)
        entries.append((key, lines))
    return entries


def _point_entries(point_set: PointSet, first_key: int) -> list[tuple[float, list[str]]]:
    """Points of one source PointSet annotation are written back together; new points become Dots."""
    grouped: dict[Any, list[int]] = {}
    for number, attributes in enumerate(point_set.attributes):
        if attributes.get("Type") == "PointSet" and "asap_index" in attributes:
            grouped.setdefault(("set", attributes["asap_index"], str(point_set.classes[number])), []).append(number)
        else:
            grouped[("dot", number)] = [number]
    entries = []
    for members in grouped.values():
        first = members[0]
        attributes = point_set.attributes[first]
        class_name = str(point_set.classes[first])
        kind = "PointSet" if len(members) > 1 or attributes.get("Type") == "PointSet" else "Dot"
        name = attributes.get("Name") or f"Annotation {first_key + first}"
        key = attributes.get("asap_index", first_key + first)
        members.sort(key=lambda m: point_set.attributes[m].get("asap_point", 0))
        lines = _annotation_lines(name, kind, class_name, _colour_for(attributes, class_name, point_set.schema),
                                  attributes.get("extra", {}), point_set.coords[members])
        entries.append((key, lines))
    return entries


def _group_lines(case: Case, class_names: list[str], schemas: list[ClassSchema]) -> list[str]:
    stored = case.document.get("asap", {}).get("groups", [])
    groups = list(stored)
    defined = {g["Name"] for g in groups}
    for class_name in class_names:
        if class_name in defined or class_name == NO_GROUP:
            continue
        schema = next((s for s in schemas if class_name in s), None)
        colour = color_to_hex(schema.color_of(class_name)[:3]).upper() if schema else "#FF0000"
        groups.append({"Name": class_name, "PartOfGroup": NO_GROUP, "Color": colour, "extra": {}, "attributes": [],
                       "has_attributes_element": True})
        defined.add(class_name)
    lines = []
    for group in groups:
        head = _attribute_text([("Name", group["Name"]), ("PartOfGroup", group.get("PartOfGroup", NO_GROUP)),
                                ("Color", group.get("Color")), *group.get("extra", {}).items()])
        lines.append(f"\t\t<Group {head}>")
        if group.get("attributes"):
            lines += ["\t\t\t<Attributes>", *[f"\t\t\t\t{text}" for text in group["attributes"]], "\t\t\t</Attributes>"]
        elif group.get("has_attributes_element", True):
            lines.append("\t\t\t<Attributes />")
        lines.append("\t\t</Group>")
    return lines


def case_to_asap(case: Case) -> str:
    """The ASAP XML text for every polygon and point set of ``case``.

    Annotations keep their file order (new objects follow); coordinates are
    written as level-0 pixels ``X`` = column, ``Y`` = row.
    """
    from ..conversion import vector_sets

    polygon_sets, point_sets = vector_sets(case)
    entries: list[tuple[float, list[str]]] = []
    offset = 0
    for polygon_set in polygon_sets:
        entries += _polygon_entries(polygon_set, 10**9 + offset)
        offset += len(polygon_set)
    for point_set in point_sets:
        entries += _point_entries(point_set, 10**9 + offset)
        offset += len(point_set)
    entries.sort(key=lambda entry: entry[0])
    written = [*polygon_sets, *point_sets]
    class_names = list(dict.fromkeys(str(c) for s in written for c in s.classes))
    root_attributes = case.document.get("asap", {}).get("root_attributes", {})
    head = f"<ASAP_Annotations {_attribute_text(list(root_attributes.items()))}>" if root_attributes \
        else "<ASAP_Annotations>"
    lines = ['<?xml version="1.0"?>', head]
    lines += ["\t<Annotations>", *[line for _, block in entries for line in block], "\t</Annotations>"] if entries \
        else ["\t<Annotations />"]
    group_lines = _group_lines(case, class_names, [s.schema for s in written])
    lines += ["\t<AnnotationGroups>", *group_lines, "\t</AnnotationGroups>"] if group_lines \
        else ["\t<AnnotationGroups />"]
    lines.append("</ASAP_Annotations>")
    return "\n".join(lines) + "\n"


def write(cases: Sequence[Case], path: Path, *, overwrite: bool = False, **_options) -> list[Path]:
    """Write each case's polygons and points as ASAP XML.

    ``path`` is the ``.xml`` file for a single case, else a folder receiving
    ``<case name>.xml`` per case. Existing files are refused unless
    ``overwrite=True``.
    """
    return write_text_per_case(cases, path, (".xml",), case_to_asap, overwrite)


def asap_object_fields(attributes: dict) -> list[str]:
    """The fields of an ASAP annotation other formats do not keep: a given ``Name``, extra XML attributes."""
    name = str(attributes.get("Name") or "")
    found = ["Name"] if name and not re.fullmatch(r"Annotation \d+", name) else []
    return found + list(attributes.get("extra") or {})


FORMAT = FormatSpec(
    name="asap",
    title="ASAP XML (CAMELYON)",
    sniff=sniff,
    read=read,
    write=write,
    extensions=(".xml",),
    priority=30,
    produces=frozenset({"polygons", "lines", "points"}),
    extras=("Name",),
    object_fields=asap_object_fields,
    family="asap",
    sized=False,
    per_case=True,
    holds={
        "polygons": exact(),
        "holed polygons": lossy("each hole becomes a polygon of its own: ASAP has no holes", SPLIT_HOLES),
        "parts": lossy("each part becomes an annotation of its own: ASAP has no multi-part objects", SPLIT_HOLES),
        "lines": exact("Measurements"),
        "points": exact("Dots"),
        "cells": lossy("become Dots at their centres (the box size is not kept)", CENTRES),
        "boxes": exact("Rectangles"),
        "mask": lossy("traced into outlines; each hole becomes a polygon of its own", SPLIT_HOLES),
        "instances": lossy("traced into outlines; each hole becomes a polygon of its own", SPLIT_HOLES),
        "slice boxes": refused("an ASAP file holds 2-D annotations of one slide, not boxes on the slices of a volume"),
    },
    layers="merged",
)
