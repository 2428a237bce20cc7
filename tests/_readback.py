"""Reading converted files back, for the conversion-matrix tests.

Two kinds of reader live here:

* **independent readers**, none of them napari-nsclc's: pycocotools for COCO,
  defusedxml plus a structural schema check for VOC, ASAP and ImageScope XML,
  shapely for GeoJSON geometry, Pillow for PNGs, h5py for HDF5 and the
  csv module for CSV. They check that what was written is valid for the next
  tool and return its content;
* **canonical objects**: what a list of cases holds, as shapely geometries
  and pixel sets per class, so that a source and its read-back can be
  compared whatever formats they are in. Geometry is compared within
  0.01 px (Hausdorff distance), pixels exactly.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from defusedxml import ElementTree as DET
from PIL import Image

from napari_nsclc import conversion
from napari_nsclc.model import BoxSet, Case, PolygonSet

TOLERANCE = 0.01  # px

# --------------------------------------------------------------------------- independent readers


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_coco(path: Path, *, flavour: str = "coco") -> dict:
    """Validate a COCO file with pycocotools and by its spec; returns the parsed document.

    Every number is a JSON number, every image has ``id``, ``file_name``,
    ``width`` and ``height``, every RLE is ``{"size": [h, w], "counts": str}``,
    and pycocotools decodes every segmentation to an ``(h, w)`` mask.
    """
    from pycocotools.coco import COCO

    data = json.loads(Path(path).read_text())
    with contextlib.redirect_stdout(io.StringIO()):
        index = COCO(str(path))
    sizes = {}
    for image in data["images"]:
        assert isinstance(image["id"], int), image
        assert isinstance(image["file_name"], str) and image["file_name"], image
        assert isinstance(image["width"], int) and isinstance(image["height"], int), image
        sizes[image["id"]] = (image["height"], image["width"])
    ids = [a["id"] for a in data["annotations"]]
    assert len(ids) == len(set(ids)), "annotation ids repeat"
    for ann in data["annotations"]:
        for key in ("id", "image_id", "category_id"):
            assert isinstance(ann[key], int), (key, ann)
        assert len(ann["bbox"]) == 4 and all(_is_number(v) for v in ann["bbox"]), ann
        for key in ("area", "iscrowd"):
            if key in ann or flavour == "coco":
                assert _is_number(ann[key]), (key, ann)
        segmentation = ann.get("segmentation")
        if isinstance(segmentation, dict):
            assert [int(v) for v in segmentation["size"]] == list(sizes[ann["image_id"]]), ann["id"]
            assert isinstance(segmentation["counts"], (str, list)), ann["id"]
        elif isinstance(segmentation, list):
            assert all(all(_is_number(v) for v in ring) for ring in segmentation), ann["id"]
        if segmentation:
            assert index.annToMask(ann).shape == sizes[ann["image_id"]]
        if "keypoints" in ann:
            assert all(_is_number(v) for v in ann["keypoints"]) and len(ann["keypoints"]) % 3 == 0
    return data


def _xml(path: Path):
    return DET.parse(str(path)).getroot()


def check_voc(path: Path) -> list[tuple[str, tuple[float, float, float, float]]]:
    """Validate a VOC XML (``annotation`` with ``size`` and ``object/name``, ``bndbox``); its boxes."""
    root = _xml(path)
    assert root.tag == "annotation", path
    size = root.find("size")
    assert size is not None and int(size.findtext("width")) > 0 and int(size.findtext("height")) > 0, path
    boxes = []
    for obj in root.findall("object"):
        name = obj.findtext("name")
        assert name, path
        box = obj.find("bndbox")
        xmin, ymin, xmax, ymax = (float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        assert xmin <= xmax and ymin <= ymax, (path, name)
        boxes.append((name, (xmin, ymin, xmax, ymax)))
    return boxes


ASAP_TYPES = {"Dot", "Polygon", "Spline", "PointSet", "Rectangle", "Measurement"}


def check_asap(path: Path) -> list[tuple[str, str, np.ndarray]]:
    """Validate ASAP XML (types, groups, ``Order``-numbered coordinates); ``(group, type, xy)`` per annotation."""
    root = _xml(path)
    assert root.tag == "ASAP_Annotations", path
    groups = {g.get("Name") for g in root.iter("Group")}
    out = []
    for annotation in root.iter("Annotation"):
        kind, group = annotation.get("Type"), annotation.get("PartOfGroup")
        assert kind in ASAP_TYPES and group is not None, (path, kind)
        assert group == "None" or group in groups, (path, group)
        coordinates = annotation.find("Coordinates").findall("Coordinate")
        assert [int(c.get("Order")) for c in coordinates] == list(range(len(coordinates))), path
        out.append((group, kind, np.array([(float(c.get("X")), float(c.get("Y"))) for c in coordinates])))
    return out


def check_imagescope(path: Path) -> list[tuple[str, str, np.ndarray]]:
    """Validate ImageScope XML (``Annotations/Annotation/Regions/Region/Vertices``); ``(text, type, xy)``."""
    root = _xml(path)
    assert root.tag == "Annotations", path
    out = []
    for region in root.iter("Region"):
        vertices = region.find("Vertices").findall("Vertex")
        assert vertices, path
        out.append((region.get("Text"), region.get("Type"),
                    np.array([(float(v.get("X")), float(v.get("Y"))) for v in vertices])))
    return out


def check_geojson(path: Path) -> list[dict]:
    """Validate GeoJSON: every geometry builds in shapely and every polygon is valid; the features."""
    data = json.loads(Path(path).read_text())
    features = data["features"] if isinstance(data, dict) and "features" in data else data
    for feature in features:
        geometry = shapely.geometry.shape(feature["geometry"])
        if geometry.geom_type in ("Polygon", "MultiPolygon"):
            assert geometry.is_valid, (path, shapely.is_valid_reason(geometry))
    return features


def read_png(path: Path) -> tuple[np.ndarray, str]:
    """Pixel values and mode of a PNG, with Pillow."""
    with Image.open(path) as image:
        return np.asarray(image), image.mode


def check_labelmap(path: Path) -> list[str]:
    """The class names of a CVAT/VOC ``labelmap.txt``, in value order (``name:r,g,b:parts:actions``)."""
    names = []
    for line in Path(path).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, rgb = line.split(":")[:2]
            assert len([int(v) for v in rgb.split(",")]) == 3, line
            names.append(name)
    return names


def read_csv_rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


# --------------------------------------------------------------------------- canonical objects


def _area(polygon) -> shapely.Geometry:
    """A model polygon (``(y, x)`` rows) as a shapely polygon in ``(x, y)``."""
    return shapely.Polygon(polygon.exterior[:, -2:][:, ::-1], [h[:, -2:][:, ::-1] for h in polygon.holes])


def _box(y0, x0, y1, x1) -> shapely.Geometry:
    return shapely.box(x0, y0, x1, y1)


@dataclass
class Objects:
    """What cases hold: geometries per class (areas, lines, points) and pixels per class."""

    areas: list[tuple[str, shapely.Geometry]] = field(default_factory=list)
    lines: list[tuple[str, shapely.Geometry]] = field(default_factory=list)
    points: list[tuple[str, shapely.Geometry]] = field(default_factory=list)
    pixels: dict[str, np.ndarray] = field(default_factory=dict)
    #: pixel centres on an edge of a rasterised geometry (left out of pixel comparisons)
    edges: np.ndarray | None = None


def rasterize(geometries, shape, *, boundary: bool = False) -> np.ndarray:
    """Pixels whose centres lie inside any of ``geometries`` (shapely, independent of napari-nsclc).

    With ``boundary``, the pixels whose centres lie on an edge instead: which
    side such a pixel belongs to is a convention of each rasteriser, so
    comparisons leave them out.
    """
    out = np.zeros(shape, bool)
    for geometry in geometries:
        x0, y0, x1, y1 = geometry.bounds  # only the pixel centres within the bounds can be inside
        r0, r1 = max(0, math.ceil(y0)), min(shape[0] - 1, math.floor(y1))
        c0, c1 = max(0, math.ceil(x0)), min(shape[1] - 1, math.floor(x1))
        if r1 < r0 or c1 < c0:
            continue
        rows, cols = np.mgrid[r0 : r1 + 1, c0 : c1 + 1]
        if boundary:
            out[r0 : r1 + 1, c0 : c1 + 1] |= shapely.intersects_xy(geometry.boundary, cols, rows)
        else:
            out[r0 : r1 + 1, c0 : c1 + 1] |= shapely.contains_xy(geometry, cols, rows)
    return out


def objects_of(cases, handling: dict[str, conversion.Handling] | None = None, *, coco_boxes: bool = False) -> Objects:
    """The canonical objects of ``cases`` after the writer's ``handling`` of each kind (``None``: as they are).

    Cells stored as boxes count as boxes; a PIXELS, BOUNDS, CENTRES or
    SPLIT_HOLES effect is applied as the writer declares it. Class masks give
    pixels per class (every layer together); their regions also count as
    areas when a writer traces them into outlines.
    """
    out = Objects()
    drawn: list[tuple[str, shapely.Geometry]] = []

    def effect(kind: str) -> str:
        if handling is None:
            return conversion.KEPT
        held = handling.get(kind)
        return held.effect if held is not None else conversion.DROPPED

    for case in cases:
        for mask in conversion.written_masks(case):
            kind = conversion.mask_kind(mask)
            if effect(kind) == conversion.DROPPED or kind in ("mask stack", "pyramid mask"):
                continue
            data = np.asarray(mask.data)
            names = mask.instance_classes if mask.kind == "instance" else {c.code: c.name for c in mask.schema.classes}
            for value in np.unique(data):
                if value == 0 or (mask.kind == "semantic" and value == mask.schema.background):
                    continue
                if mask.kind == "instance" and int(value) not in names:
                    continue  # no object: VOC's 255 border in SegmentationObject
                name = names.get(int(value), f"<value {int(value)}>")
                out.pixels[name] = out.pixels.get(name, np.zeros(data.shape, bool)) | (data == value)
        for objects in case.annotation_sets():
            kinds = conversion.object_kinds(objects)
            if "region" in kinds:
                continue  # an image-level region, not an object (IGNITE's annotated_xyxy)
            if isinstance(objects, PolygonSet):
                parts: dict = {}
                for key, kind, name, polygon, attrs in zip(conversion.object_keys(objects), kinds, objects.classes,
                                                          objects.polygons, objects.attributes, strict=True):
                    parts.setdefault(key, (kind, str(name), attrs, []))[3].append(polygon)
                for kind, name, attrs, polygons in parts.values():
                    _add_shape(out, drawn, effect(kind), kind, name, polygons, attrs, coco_boxes)
            elif isinstance(objects, BoxSet):
                for kind, name, bounds in zip(kinds, objects.classes, objects.bounds, strict=True):
                    if effect(kind) == conversion.DROPPED:
                        continue
                    target = drawn if effect(kind) == conversion.PIXELS else out.areas
                    target.append((str(name), _box(*bounds)))
            else:
                for kind, name, coords, attrs in zip(kinds, objects.classes, objects.coords, objects.attributes,
                                                     strict=True):
                    y, x = coords[-2:]
                    if effect(kind) == conversion.DROPPED:
                        continue
                    if kind == "cells" and effect(kind) != conversion.CENTRES:
                        h, w = attrs["box_size"]
                        out.areas.append((str(name), _box(y - h / 2, x - w / 2, y + h / 2, x + w / 2)))
                    else:
                        out.points.append((str(name), shapely.Point(x, y)))
        if drawn:
            shape = case_shape(case)
            for name, geometry in drawn:
                pixels = rasterize([geometry], shape)
                out.pixels[name] = out.pixels.get(name, np.zeros(shape, bool)) | pixels
            edges = rasterize([g for _, g in drawn], shape, boundary=True)
            out.edges = edges if out.edges is None else out.edges | edges
            drawn = []
    return out


def _add_shape(out: Objects, drawn: list, effect: str, kind: str, name: str, polygons, attrs, coco_boxes) -> None:
    if effect == conversion.DROPPED:
        return
    if kind == "lines":
        line = shapely.LineString(polygons[0].exterior[:, -2:][:, ::-1])
        if effect == conversion.BOUNDS:
            x0, y0, x1, y1 = line.bounds
            out.areas.append((name, shapely.box(x0, y0, x1, y1)))
        else:
            out.lines.append((name, line))
        return
    geometry = shapely.union_all([_area(p) for p in polygons])
    if effect == conversion.PIXELS:
        drawn.append((name, geometry))
    elif effect == conversion.BOUNDS:
        source = attrs.get("coco")
        if coco_boxes and isinstance(source, dict) and isinstance(source.get("bbox"), list):
            x, y, w, h = source["bbox"]  # the source's own box, kept as given (model = file - 0.5)
            out.areas.append((name, shapely.box(x - 0.5, y - 0.5, x + w - 0.5, y + h - 0.5)))
        else:
            x0, y0, x1, y1 = geometry.bounds
            out.areas.append((name, shapely.box(x0, y0, x1, y1)))
    elif effect == conversion.SPLIT_HOLES:
        for polygon in polygons:
            out.areas.append((name, shapely.Polygon(polygon.exterior[:, -2:][:, ::-1])))
            out.areas += [(name, shapely.Polygon(h[:, -2:][:, ::-1])) for h in polygon.holes]
    else:
        out.areas.append((name, geometry))


def traced_areas(cases, split_holes: bool) -> list[tuple[str, shapely.Geometry]]:
    """The regions of the cases' masks as outlines (per class, 8-connected), optionally with holes split off."""
    from napari_nsclc.geometry import labels_to_instances, mask_instances

    out = []
    for case in cases:
        for mask in conversion.written_masks(case):
            if mask.multiscale or np.asarray(mask.data).ndim != 2:
                continue
            data = np.asarray(mask.data)
            traced = (mask_instances(data, mask.instance_classes, mask.schema) if mask.kind == "instance"
                      else labels_to_instances(data, mask.schema))
            groups: dict = {}
            for key, name, polygon in zip(conversion.object_keys(traced), traced.classes, traced.polygons,
                                          strict=True):
                groups.setdefault(key, (str(name), []))[1].append(polygon)
            for name, polygons in groups.values():
                if split_holes:
                    for polygon in polygons:
                        out.append((name, shapely.Polygon(polygon.exterior[:, ::-1])))
                        out += [(name, shapely.Polygon(h[:, ::-1])) for h in polygon.holes]
                else:
                    out.append((name, shapely.union_all([_area(p) for p in polygons])))
    return out


def _within(geometry, other) -> bool:
    """Whether two geometries lie within TOLERANCE of each other (Hausdorff distance).

    The same vertices within TOLERANCE (``equals_exact``, linear) imply it; only
    geometries that differ otherwise pay for the quadratic Hausdorff distance.
    """
    if shapely.equals_exact(geometry, other, tolerance=TOLERANCE):
        return True
    a, b = np.asarray(geometry.bounds), np.asarray(other.bounds)
    if np.abs(a - b).max() > TOLERANCE:  # the bounds of two geometries within TOLERANCE are within it too
        return False
    return shapely.hausdorff_distance(geometry, other) <= TOLERANCE


def assert_same_geometries(expected, actual, what: str) -> None:
    """Every expected ``(class, geometry)`` matches one actual geometry of its class within TOLERANCE, and no more."""
    assert Counter(c for c, _ in actual) == Counter(c for c, _ in expected), f"{what}: objects per class differ"
    unmatched = list(actual)
    for name, geometry in expected:
        for k, (other_name, other) in enumerate(unmatched):
            if other_name == name and _within(geometry, other):
                del unmatched[k]
                break
        else:
            raise AssertionError(f"{what}: no {name!r} object within {TOLERANCE} px of {geometry.wkt[:120]}")


def assert_same_pixels(expected: dict[str, np.ndarray], actual: dict[str, np.ndarray], what: str,
                       edges: np.ndarray | None = None) -> None:
    """Equal pixels per class, except on ``edges`` (centres on a rasterised edge, whose side is a convention)."""
    actual = {k: v for k, v in actual.items() if edges is None or (v & ~edges).any() or k in expected}
    assert sorted(expected) == sorted(actual), f"{what}: classes differ: {sorted(expected)} != {sorted(actual)}"
    for name in expected:
        assert expected[name].shape == actual[name].shape, f"{what}: {name} shape"
        differ = expected[name] != actual[name]
        if edges is not None:
            differ &= ~edges
        assert not differ.any(), f"{what}: {int(differ.sum())} pixels of {name!r} differ"


def pixels_of_areas(areas, shape, *, parity: bool = False) -> dict[str, np.ndarray]:
    """Per class, the pixels the areas cover (with ``parity``, covered an odd number of times: holes as polygons)."""
    out: dict[str, np.ndarray] = {}
    for name, geometry in areas:
        pixels = rasterize([geometry], shape)
        if name not in out:
            out[name] = np.zeros(shape, bool)
        out[name] = out[name] ^ pixels if parity else out[name] | pixels
    return out


def case_shape(case: Case) -> tuple[int, int]:
    from napari_nsclc.model import image_size

    return image_size(case)


def extra_fields(attributes: dict) -> dict:
    """The source-format fields an object carries that are not geometry or class (ids, VOC flags, properties)."""
    out = {}
    source = attributes.get("coco")
    if isinstance(source, dict):
        # geometry and the COCO fields a converted dialect gains (MIDOG's xyxy boxes get area and iscrowd)
        out.update({k: v for k, v in source.items() if k not in ("segmentation", "bbox", "area", "iscrowd", "keypoints")})
    for key in ("pose", "truncated", "difficult", "occluded", "attributes", "parts", "Name", "Color", "row"):
        if key in attributes:
            out[key] = attributes[key]
    feature = attributes.get("geojson_feature")
    if isinstance(feature, dict):
        out["feature"] = {k: v for k, v in feature.items() if k != "geometry"}
    return out

