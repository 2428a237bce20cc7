"""Aperio ImageScope XML (BACH, TCGA): read, and write back.

Layout (FORMATS.md section 5)::

    <Annotations MicronsPerPixel="0.252">
      <Annotation Id="1" Name="" LineColor="65280" ...>
        <Attributes><Attribute Name="Description" Id="0" Value=""/></Attributes>
        <Regions>
          <RegionAttributeHeaders>...</RegionAttributeHeaders>
          <Region Id="1" Type="0" Text="Invasive" ...>
            <Attributes/>
            <Vertices><Vertex X="..." Y="..." Z="0"/>...</Vertices>
          </Region>

Each Region becomes one polygon whose class is the region ``Text`` (falling
back to the annotation ``Name``, then "region"). Region ``Type`` 1 is a
rectangle, 2 an ellipse given by its bounding box (read as a 64-vertex
polygon of kind ``ellipse``), 0 a polygon; 3 (arrow) and 4 (ruler) are paths.
``LineColor`` is a packed BGR int; it becomes the class colour. Coordinates
are level-0 pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import write_text_per_case
from ..conversion import SPLIT_HOLES, exact, lossy, refused
from ..model import (
    CORNER,
    Case,
    ClassInfo,
    ClassSchema,
    NsclcFormatError,
    Polygon,
    PolygonSet,
    Provenance,
    default_color,
    from_file,
    to_file,
)
from ..registry import FormatSpec
from ._xmlsafe import element_text, format_number, parse_xml, quote_attribute, xml_head

__all__ = ["FORMAT", "read", "sniff", "write"]

POLYGON_SET_NAME = "ImageScope regions"
_KIND_OF_TYPE = {"0": "polygon", "1": "rectangle", "2": "ellipse", "3": "path", "4": "path"}
_TYPE_OF_KIND = {"polygon": "0", "rectangle": "1", "ellipse": "0", "path": "4"}


def sniff(path: Path) -> bool:
    """An ``.xml`` file with an ``<Annotations>`` root holding ``<Regions>`` (not ASAP)."""
    path = Path(path)
    if not (path.is_file() and path.suffix.lower() == ".xml"):
        return False
    head = xml_head(path)
    return "<Annotations" in head and "<ASAP_Annotations" not in head and (
        "<Regions" in head or "MicronsPerPixel" in head or "<Annotation " in head
    )


def bgr_to_rgb(value: int) -> tuple[float, float, float, float]:
    """ImageScope's ``LineColor`` (0xBBGGRR) as RGBA floats."""
    value = int(value)
    return ((value & 255) / 255, (value >> 8 & 255) / 255, (value >> 16 & 255) / 255, 1.0)


def rgb_to_bgr(color: Sequence[float]) -> int:
    red, green, blue = (round(c * 255) for c in color[:3])
    return blue << 16 | green << 8 | red


def _vertices(region, label: str) -> np.ndarray:
    container = region.find("Vertices")
    rows = []
    for position, vertex in enumerate([] if container is None else container.findall("Vertex")):
        try:
            x, y = float(vertex.get("X")), float(vertex.get("Y"))
        except (TypeError, ValueError):
            raise ValueError(f"{label}: vertex {position} lacks a numeric X or Y") from None
        if not (np.isfinite(x) and np.isfinite(y)):
            raise ValueError(f"{label}: vertex {position} is not finite")
        rows.append((y, x))
    if not rows:
        raise ValueError(f"{label}: has no vertices")
    return from_file(np.array(rows, dtype=float), CORNER)


def _ellipse(corners: np.ndarray, n: int = 64) -> np.ndarray:
    (y0, x0), (y1, x1) = corners.min(0), corners.max(0)
    angle = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([(y0 + y1) / 2 + (y1 - y0) / 2 * np.sin(angle), (x0 + x1) / 2 + (x1 - x0) / 2 * np.cos(angle)], 1)


def _children_text(element) -> list[str]:
    """Each child of ``element`` serialised, to be written back verbatim; [] when absent."""
    return [] if element is None else [element_text(child) for child in element]


def read(path: Path) -> list[Case]:
    """Read ImageScope XML into one case with a polygon set, one polygon per Region.

    Bad regions (missing or non-numeric vertices) are skipped with a warning
    each; a file whose every region is bad is an error.
    """
    from .slide import reference_image

    path = Path(path)
    root = parse_xml(path)
    if root.tag != "Annotations":
        raise NsclcFormatError(path, f"root element is <{root.tag}>, not ImageScope's <Annotations>")
    warnings: list[str] = []
    polygons, classes, attributes = [], [], []
    colours: dict[str, Any] = {}
    annotation_documents = []
    n_regions = 0
    for a_index, annotation in enumerate(root.findall("Annotation")):
        annotation_documents.append({
            "attrib": dict(annotation.attrib),
            "attributes": _children_text(annotation.find("Attributes")),
            "region_headers": element_text(annotation.find("Regions/RegionAttributeHeaders"))
            if annotation.find("Regions/RegionAttributeHeaders") is not None else None,
        })
        line_colour = annotation.get("LineColor")
        for r_index, region in enumerate(annotation.findall("Regions/Region")):
            n_regions += 1
            label = f"{path.name}: annotation {a_index} region {r_index} (Id {region.get('Id')!r})"
            try:
                vertices = _vertices(region, label)
            except ValueError as error:
                warnings.append(f"{error}; skipped")
                continue
            kind = _KIND_OF_TYPE.get(region.get("Type", "0"), "polygon")
            if kind == "ellipse":
                vertices = _ellipse(vertices)
            class_name = region.get("Text") or annotation.get("Name") or "region"
            polygons.append(Polygon(vertices, kind=kind))
            classes.append(class_name)
            attributes.append({
                "imagescope_annotation": a_index,
                "region": dict(region.attrib),
                "region_attributes": _children_text(region.find("Attributes")),
            })
            if class_name not in colours:
                colours[class_name] = bgr_to_rgb(line_colour) if (line_colour or "").lstrip("-").isdigit() else None
    if n_regions and not polygons:
        raise NsclcFormatError(path, "no usable region: " + "; ".join(w.split(": ", 1)[1] for w in warnings))
    schema = ClassSchema(
        "imagescope",
        tuple(ClassInfo(code, name, colour or default_color(code))
              for code, (name, colour) in enumerate(colours.items(), start=1)),
    )
    image = reference_image(path)
    mpp = root.get("MicronsPerPixel")
    if image.path is None and mpp:
        image.metadata["microns_per_pixel_in_xml"] = float(mpp)
    case = Case(
        name=path.stem,
        image=image,
        provenance=Provenance(source=str(path), format=FORMAT.name, reader=__name__,
                              details={"regions": n_regions}, warnings=warnings),
        document={"imagescope": {"root": dict(root.attrib), "annotations": annotation_documents}},
    )
    case.polygons.append(PolygonSet(POLYGON_SET_NAME, polygons, classes, schema, attributes))
    return [case]


def _attributes_xml(pairs: dict) -> str:
    return " ".join(f'{key}="{quote_attribute(value)}"' for key, value in pairs.items())


def _region_lines(region: dict, region_attributes: list[str], ring: np.ndarray, kind: str) -> list[str]:
    """The XML lines of one Region: its attributes, child Attributes and vertices (file coordinates)."""
    lines = [f"\t\t\t<Region {_attributes_xml(region)}>"]
    lines += ["\t\t\t\t<Attributes>", *[f"\t\t\t\t\t{t}" for t in region_attributes], "\t\t\t\t</Attributes>"] \
        if region_attributes else ["\t\t\t\t<Attributes/>"]
    vertices = ring[:, -2:]
    if kind == "ellipse" and region.get("Type") == "2":
        vertices = np.array([vertices.min(0), vertices.max(0)])
    lines.append("\t\t\t\t<Vertices>")
    lines += [f'\t\t\t\t\t<Vertex X="{format_number(x)}" Y="{format_number(y)}" Z="0"/>'
              for y, x in to_file(vertices, CORNER)]
    return [*lines, "\t\t\t\t</Vertices>", "\t\t\t</Region>"]


def case_to_imagescope(case: Case) -> str:
    """ImageScope XML text: one Annotation per source annotation (or per class), one Region per polygon."""
    from ..conversion import vector_sets

    stored = case.document.get("imagescope", {})
    annotations: dict[Any, dict] = {}
    for polygon_set in vector_sets(case)[0]:
        for polygon, class_name, attributes in zip(
            polygon_set.polygons, polygon_set.classes, polygon_set.attributes, strict=True
        ):
            key = attributes.get("imagescope_annotation", ("class", str(class_name)))
            entry = annotations.setdefault(key, {"regions": [], "schema": polygon_set.schema, "class": str(class_name)})
            entry["regions"].append((polygon, str(class_name), attributes))
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', f"<Annotations {_attributes_xml(stored.get('root', {}))}>"
             if stored.get("root") else "<Annotations>"]
    documents = stored.get("annotations", [])
    next_id = 1
    # source annotations first, in file order; annotations for new classes after them
    ordered = sorted(annotations.items(), key=lambda kv: (isinstance(kv[0], tuple), kv[0] if isinstance(kv[0], int)
                                                          else 0, str(kv[0])))
    for number, (key, entry) in enumerate(ordered):
        if isinstance(key, int) and key < len(documents):
            document = documents[key]
        else:
            colour = entry["schema"].color_of(entry["class"]) if entry["class"] in entry["schema"] else (1, 1, 0, 1)
            document = {"attrib": {"Id": str(len(documents) + number + 1), "Name": entry["class"],
                                   "LineColor": str(rgb_to_bgr(colour))}, "attributes": [], "region_headers": None}
        lines.append(f"\t<Annotation {_attributes_xml(document['attrib'])}>")
        lines += ["\t\t<Attributes>", *[f"\t\t\t{t}" for t in document["attributes"]], "\t\t</Attributes>"] \
            if document["attributes"] else ["\t\t<Attributes/>"]
        lines.append("\t\t<Regions>")
        if document.get("region_headers"):
            lines.append(f"\t\t\t{document['region_headers']}")
        for polygon, class_name, attributes in entry["regions"]:
            # ImageScope regions have no holes: each hole is written as a region of its own, after its outline
            rings = [(polygon.exterior, polygon.kind, attributes), *((hole, "polygon", {}) for hole in polygon.holes)]
            for ring, kind, ring_attributes in rings:
                region = dict(ring_attributes.get("region") or {"Id": str(next_id), "Type": _TYPE_OF_KIND.get(kind, "0")})
                region["Text"] = class_name
                next_id += 1
                lines += _region_lines(region, ring_attributes.get("region_attributes") or [], ring, kind)
        lines += ["\t\t</Regions>", "\t\t<Plots/>", "\t</Annotation>"]
    lines.append("</Annotations>")
    return "\n".join(lines) + "\n"


def write(cases: Sequence[Case], path: Path, *, overwrite: bool = False, **_options) -> list[Path]:
    """Write each case's polygons as ImageScope XML (``path``: a file for one case, else a folder)."""
    return write_text_per_case(cases, path, (".xml",), case_to_imagescope, overwrite)


def imagescope_object_fields(attributes: dict) -> list[str]:
    """Region attributes other formats do not keep (``Zoom``, ``Length`` ... and child Attributes)."""
    region = attributes.get("region") or {}
    found = [key for key in region if key not in ("Id", "Type", "Text")]
    return found + (["Attributes"] if attributes.get("region_attributes") else [])


FORMAT = FormatSpec(
    name="imagescope",
    title="Aperio ImageScope XML",
    sniff=sniff,
    read=read,
    write=write,
    extensions=(".xml",),
    priority=25,
    produces=frozenset({"polygons", "lines"}),
    extras=("Region attributes",),
    object_fields=imagescope_object_fields,
    family="imagescope",
    sized=False,
    per_case=True,
    holds={
        "polygons": exact(),
        "holed polygons": lossy("each hole becomes a region of its own: ImageScope regions have no holes", SPLIT_HOLES),
        "parts": lossy("each part becomes a region of its own", SPLIT_HOLES),
        "lines": exact("rulers"),
        "boxes": exact("rectangles"),
        "mask": lossy("traced into outlines; each hole becomes a region of its own", SPLIT_HOLES),
        "instances": lossy("traced into outlines; each hole becomes a region of its own", SPLIT_HOLES),
        "slice boxes": refused("an ImageScope file holds 2-D regions of one slide, not boxes on the slices of a volume"),
    },
    layers="merged",
)
