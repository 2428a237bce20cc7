"""Synthetic annotation files of every geometry each vector format holds, beside a small slide.

They follow FORMATS.md §5 (ASAP, ImageScope) and QuPath's GeoJSON export, and
exercise what conversions must keep: holes, multi-part objects, open lines,
points, rectangles, ellipses, ids and extra fields, and coordinates with
decimals. Each file lies beside a same-named 512 x 512 slide, so that its
image size is known (COCO needs it). Also here: a bare DICOM CT series, which
holds images and no annotations.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .radiology import ct_phantom, write_ct_series
from .slides import synthetic_tissue, write_mask_pyramid, write_svs_like

__all__ = [
    "BUILDERS",
    "build_annotated_slide",
    "build_asap",
    "build_dicom",
    "build_geojson",
    "build_imagescope",
    "build_ocelot_points",
]

SIZE = 512


def _slide(path: Path) -> Path:
    return write_svs_like(path, synthetic_tissue((SIZE, SIZE), seed=3), n_levels=2)


def _ring(cx: float, cy: float, radius: float, n: int = 12) -> list[list[float]]:
    """A closed ``[[x, y], ...]`` ring with two-decimal vertices (corner coordinates)."""
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    ring = [[round(cx + radius * np.cos(a), 2), round(cy + radius * np.sin(a), 2)] for a in angles]
    return [*ring, ring[0]]


def build_geojson(folder: Path) -> Path:
    """A QuPath-style FeatureCollection: a polygon with a hole, a MultiPolygon, a line, points."""
    folder = Path(folder)
    _slide(folder / "region.svs")
    tumour = {"name": "Tumor", "color": [200, 0, 0]}
    stroma = {"name": "Stroma", "color": [150, 200, 150]}
    features = [
        {"type": "Feature", "id": "5d0b-tumour", "geometry": {
            "type": "Polygon", "coordinates": [_ring(120, 130, 60), _ring(120.5, 130.5, 20, 8)]},
         "properties": {"objectType": "annotation", "classification": tumour, "isLocked": False}},
        {"type": "Feature", "id": "5d0b-stroma", "geometry": {
            "type": "MultiPolygon", "coordinates": [[_ring(300, 100, 30)], [_ring(380, 120, 18.25, 6)]]},
         "properties": {"objectType": "annotation", "classification": stroma}},
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [_ring(260, 330, 40.1, 5)]},
         "properties": {"objectType": "annotation"}},
        {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[40.5, 400], [150, 420.25], [210, 480]]},
         "properties": {"objectType": "annotation", "classification": {"name": "Margin", "color": [0, 0, 255]}}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [400.5, 300.5]},
         "properties": {"objectType": "annotation", "classification": {"name": "Immune cells", "color": [160, 90, 160]}}},
        {"type": "Feature", "geometry": {"type": "MultiPoint", "coordinates": [[410, 310], [420.75, 330.5]]},
         "properties": {"objectType": "annotation", "classification": {"name": "Immune cells", "color": [160, 90, 160]}}},
    ]
    path = folder / "region.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, indent=2) + "\n")
    return path


def build_asap(folder: Path) -> Path:
    """An ASAP XML with every Type: Polygon, Spline, Rectangle, Measurement, Dot and PointSet."""
    folder = Path(folder)
    _slide(folder / "node.tif")

    def annotation(name: str, kind: str, group: str, colour: str, xy) -> list[str]:
        lines = [f'\t\t<Annotation Name="{name}" Type="{kind}" PartOfGroup="{group}" Color="{colour}">',
                 "\t\t\t<Coordinates>"]
        lines += [f'\t\t\t\t<Coordinate Order="{k}" X="{x:g}" Y="{y:g}" />' for k, (x, y) in enumerate(xy)]
        return [*lines, "\t\t\t</Coordinates>", "\t\t</Annotation>"]

    lines = ['<?xml version="1.0"?>', "<ASAP_Annotations>", "\t<Annotations>"]
    lines += annotation("Annotation 0", "Polygon", "metastases", "#F4FA58", _ring(150, 160, 70.5)[:-1])
    lines += annotation("Annotation 1", "Spline", "metastases", "#F4FA58", _ring(360, 140, 40, 8)[:-1])
    lines += annotation("Annotation 2", "Rectangle", "exclusion", "#64FE2E",
                        [(300.5, 300), (420, 300), (420, 380.25), (300.5, 380.25)])
    lines += annotation("ruler", "Measurement", "None", "#F4FA58", [(50, 450), (200.5, 470)])
    lines += annotation("mitosis", "Dot", "mitoses", "#FF00FF", [(260.25, 250.75)])
    lines += annotation("cells", "PointSet", "mitoses", "#FF00FF", [(100, 400), (120.5, 410), (140, 415.5)])
    lines += ["\t</Annotations>", "\t<AnnotationGroups>"]
    for name, colour in (("metastases", "#FF0000"), ("exclusion", "#00FF00"), ("mitoses", "#FF00FF")):
        lines += [f'\t\t<Group Name="{name}" PartOfGroup="None" Color="{colour}">', "\t\t\t<Attributes />",
                  "\t\t</Group>"]
    lines += ["\t</AnnotationGroups>", "</ASAP_Annotations>", ""]
    path = folder / "node.xml"
    path.write_text("\n".join(lines))
    return path


def build_imagescope(folder: Path) -> Path:
    """An Aperio ImageScope XML: a polygon, a rectangle, an ellipse and a ruler, in two annotations."""
    folder = Path(folder)
    _slide(folder / "biopsy.svs")

    def region(number: int, kind: int, text: str, xy) -> list[str]:
        lines = [f'\t\t\t<Region Id="{number}" Type="{kind}" Zoom="0.5" Text="{text}" NegativeROA="0">',
                 "\t\t\t\t<Attributes/>", "\t\t\t\t<Vertices>"]
        lines += [f'\t\t\t\t\t<Vertex X="{x:g}" Y="{y:g}" Z="0"/>' for x, y in xy]
        return [*lines, "\t\t\t\t</Vertices>", "\t\t\t</Region>"]

    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<Annotations MicronsPerPixel="0.250000">']
    for a_id, name, colour, regions in (
        (1, "Invasive", 255, [region(1, 0, "Invasive", _ring(160, 170, 80.5, 10)[:-1]),
                              region(2, 1, "Invasive", [(300, 50.5), (460.25, 50.5), (460.25, 150), (300, 150)])]),
        (2, "Benign", 65280, [region(3, 2, "Benign", [(300, 300), (400.5, 380)]),
                              region(4, 4, "Benign", [(40, 460), (240.5, 490)])]),
    ):
        lines += [f'\t<Annotation Id="{a_id}" Name="{name}" ReadOnly="0" LineColor="{colour}" Visible="1">',
                  "\t\t<Attributes>", '\t\t\t<Attribute Name="Description" Id="0" Value=""/>', "\t\t</Attributes>",
                  "\t\t<Regions>"]
        for block in regions:
            lines += block
        lines += ["\t\t</Regions>", "\t\t<Plots/>", "\t</Annotation>"]
    lines += ["</Annotations>", ""]
    path = folder / "biopsy.xml"
    path.write_text("\n".join(lines))
    return path


def build_annotated_slide(folder: Path) -> Path:
    """A 512 x 512 slide with both companions a slide can have: an ASAP XML and a ``_mask.tif`` pyramid.

    Returns the slide; opening it loads both.
    """
    folder = Path(folder)
    slide = _slide(folder / "tumor_001.svs")
    build_asap(folder)
    (folder / "node.xml").rename(folder / "tumor_001.xml")
    (folder / "node.tif").unlink()
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[100:220, 80:230] = 1  # a metastasis, as CAMELYON's masks mark it
    write_mask_pyramid(folder / "tumor_001_mask.tif", mask, n_levels=2)
    return slide


def build_ocelot_points(folder: Path) -> Path:
    """An OCELOT challenge point output: cells of two images, with their class and probability."""
    points = [{"name": f"image_{i}", "point": [x, y, c], "probability": p}
              for i, cells in enumerate([[(12, 40, 1, 0.91), (300, 512, 2, 0.5)], [(7, 7, 2, 1.0)]])
              for x, y, c, p in cells]
    document = {"type": "Multiple points", "points": points, "version": {"major": 1, "minor": 0}}
    path = Path(folder) / "cells.json"
    path.write_text(json.dumps(document, indent=4))
    return path


def build_dicom(folder: Path) -> Path:
    """A CT series of 6 slices (64 x 64) on its own, outside any collection: images, no annotations."""
    folder = Path(folder) / "CT series"
    folder.mkdir(parents=True, exist_ok=True)
    write_ct_series(folder, ct_phantom((6, 64, 64)), patient="ANON-0001")
    return folder


BUILDERS = {
    "asap": build_asap,
    "geojson": build_geojson,
    "imagescope": build_imagescope,
    "annotated-slide": build_annotated_slide,
    "ocelot-points": build_ocelot_points,
    "dicom": build_dicom,
}
