"""COCO object-detection JSON: boxes, polygons, RLE masks and keypoints.

One :class:`~napari_nsclc.model.Case` is made per entry of ``images``. What the
plugin does not understand survives a read and a write:

* each annotation dict is kept verbatim in the ``attributes`` of the objects
  made from it (``attributes["coco"]``), and written back unchanged when its
  geometry and class were not edited;
* ``info``, ``licenses``, ``categories`` and any other top-level key are kept
  in ``Case.document["coco"]``, the image record in
  ``Case.document["coco_image"]``, and the JSON layout (indent, separators) in
  ``Case.document["coco_layout"]``.

So reading and writing with no edits reproduces the input JSON structurally,
and byte for byte when it was written by Python's :mod:`json`.

Coordinates: a COCO ``bbox`` ``[x, y, w, h]`` becomes the box bounds
``(y, x, y + h, x + w)``; polygon vertices ``[x0, y0, x1, y1, ...]`` become
``(y, x)`` rows. MIDOG's ``[x1, y1, x2, y2]`` boxes and IGNITE's point-boxes
reuse this module through :class:`CocoFlavour`.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import imageio
from .._atomic import atomic_write_text, refuse_overwrite
from ..conversion import PIXELS, exact, lossy, needs_image_size
from ..model import (
    CORNER,
    BoxSet,
    Case,
    ClassInfo,
    ClassSchema,
    ImageRef,
    LabelMask,
    NsclcFormatError,
    PointSet,
    Polygon,
    PolygonSet,
    Provenance,
    default_color,
    from_file,
    image_size,
    parse_color,
    to_file,
)
from ..registry import FormatSpec

__all__ = [
    "FORMAT",
    "CocoFlavour",
    "cases_from_coco",
    "coco_from_cases",
    "dump_json",
    "load_json",
    "read_coco",
    "write_coco",
]

#: Top-level keys the reader turns into model objects; every other key is kept verbatim.
_OBJECT_KEYS = ("images", "annotations")
#: Reading a database of more images than this defers every image to a one-chunk dask array
#: (no file stays open; pixels are decoded when napari shows the case).
MAX_IMAGES_LOADED = 8
#: Folders, relative to the JSON file, searched for the image a ``file_name`` names.
_IMAGE_FOLDERS = ("", "images", "../images", "../../images")


# --------------------------------------------------------------------------- JSON layout


def load_json(path: Path) -> tuple[Any, dict]:
    """Parse a JSON file and describe its layout so it can be written back alike.

    Returns
    -------
    data : object
        The parsed document.
    layout : dict
        ``indent`` (None, int or ``"\\t"``), ``separators``, ``ensure_ascii`` and
        ``trailing_newline``, guessed from the text.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise NsclcFormatError(path, f"is not UTF-8 text: {error}") from error
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise NsclcFormatError(path, f"is not valid JSON: {error.msg} at line {error.lineno}") from error
    return data, _guess_layout(text)


def _guess_layout(text: str) -> dict:
    stripped = text.lstrip()
    indent: int | str | None = None
    if len(stripped) > 1 and stripped[1] in "\r\n":
        second = stripped[1:].lstrip("\r\n")
        leading = second[: len(second) - len(second.lstrip(" \t"))]
        indent = "\t" if leading.startswith("\t") else len(leading)
    head = text[:4096]
    if indent is None:
        compact = '":' in head and '": ' not in head
        separators = (",", ":") if compact else (", ", ": ")
    else:
        separators = (",", ": ")
    return {
        "indent": indent,
        "separators": separators,
        "ensure_ascii": text.isascii(),
        "trailing_newline": text.endswith("\n"),
    }


def dump_json(data: Any, layout: dict | None = None) -> str:
    """Serialise ``data`` with a layout from :func:`load_json` (default: indent 2)."""
    # new files are written compact, like pycocotools' json.dump: Python's C encoder only runs without indent
    layout = layout or {"indent": None, "separators": (", ", ": "), "ensure_ascii": False, "trailing_newline": True}
    text = json.dumps(
        data,
        indent=layout.get("indent"),
        separators=tuple(layout.get("separators") or (",", ": ")),
        ensure_ascii=layout.get("ensure_ascii", False),
    )
    return text + ("\n" if layout.get("trailing_newline") else "")


def _number(value: float) -> int | float:
    """An int when ``value`` is integral, so edited objects look like untouched ones."""
    value = float(value)
    return int(value) if value.is_integer() else value


def _numbers(values: np.ndarray) -> list:
    """``values`` flattened to a list, with ints where they are integral (vectorised :func:`_number`)."""
    flat = np.asarray(values, dtype=float).ravel()
    integral = flat == np.round(flat)
    if integral.all():
        return flat.astype(np.int64).tolist()
    out = flat.tolist()
    for i in np.flatnonzero(integral).tolist():
        out[i] = int(flat[i])
    return out


def _ring_area(ring: np.ndarray) -> float:
    """Shoelace area of a ring of ``(y, x)`` vertices, in square pixels."""
    ring = np.asarray(ring, dtype=float)
    y, x = ring[:, -2], ring[:, -1]
    twice = np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1]) + x[-1] * y[0] - x[0] * y[-1]
    return 0.5 * abs(float(twice))


# --------------------------------------------------------------------------- flavours


@dataclass
class CocoFlavour:
    """How a COCO-like dialect differs from plain COCO.

    Parameters
    ----------
    name : str
        The format name recorded in provenance, e.g. ``"coco"`` or ``"midog"``.
    bbox_format : {"xywh", "xyxy"}
        ``"xyxy"`` for MIDOG's ``[x1, y1, x2, y2]``.
    points_from_boxes : bool
        Boxes are fixed-size cell markers: read them as points at their centres
        and keep the box size (``attributes["box_size"]`` = ``(h, w)`` in pixels).
    schema : ClassSchema or None
        The dataset's schema; ``None`` builds one from ``categories``.
    class_of_category : callable or None
        ``f(category dict) -> class name``; default: the category's name.
    group_of_category : callable or None
        ``f(category dict) -> layer name`` splitting objects into one layer per
        group (IGNITE's readers); default: one layer.
    points_name : str
        Layer name of points made from boxes when not grouped.
    pixel_size, unit : tuple of float, str
        Physical pixel size of the images.
    read_image_extras, write_image_extras : callable or None
        ``read(case, image_record)`` adds objects from image-level fields;
        ``write(case, image_record) -> image_record`` puts them back.
    """

    name: str = "coco"
    bbox_format: str = "xywh"
    points_from_boxes: bool = False
    schema: ClassSchema | None = None
    class_of_category: Callable[[dict], str] | None = None
    group_of_category: Callable[[dict], str] | None = None
    points_name: str = "points"
    pixel_size: tuple[float, float] = (1.0, 1.0)
    unit: str = "px"
    read_image_extras: Callable[[Case, dict], None] | None = None
    write_image_extras: Callable[[Case, dict], dict] | None = None
    extra: dict = field(default_factory=dict)

    def file_bounds(self, bbox: Sequence[float]) -> tuple[float, float, float, float]:
        """``(ymin, xmin, ymax, xmax)`` of a file ``bbox``, in the file's corner coordinates."""
        a, b, c, d = (float(v) for v in bbox)
        if self.bbox_format == "xyxy":
            return (b, a, d, c)
        return (b, a, b + d, a + c)

    def bounds(self, bbox: Sequence[float]) -> tuple[float, float, float, float]:
        """``(ymin, xmin, ymax, xmax)`` of a file ``bbox``, in model coordinates (pixel centres on integers)."""
        return tuple(from_file(self.file_bounds(bbox), CORNER).tolist())

    def bbox(self, bounds: Sequence[float]) -> list:
        """A file ``bbox`` from model ``(ymin, xmin, ymax, xmax)``."""
        y0, x0, y1, x1 = to_file([float(v) for v in bounds], CORNER).tolist()
        if self.bbox_format == "xyxy":
            return [_number(x0), _number(y0), _number(x1), _number(y1)]
        return [_number(x0), _number(y0), _number(round(x1 - x0, 10)), _number(round(y1 - y0, 10))]


PLAIN = CocoFlavour()


def schema_from_categories(categories: Sequence[dict], name: str = "coco") -> ClassSchema:
    """A schema with one class per category: code = ``id``; colour from ``color`` if given."""
    classes = []
    seen: set[str] = set()
    for category in categories:
        code = int(category["id"])
        label = str(category.get("name", code))
        if label in seen:
            label = f"{label} (id {code})"
        seen.add(label)
        color = default_color(code)
        if "color" in category:
            try:
                color = parse_color(category["color"])
            except (TypeError, ValueError):
                pass
        classes.append(ClassInfo(code, label, color, str(category.get("supercategory", ""))))
    return ClassSchema(name, tuple(classes), background=None)


# --------------------------------------------------------------------------- reading


def read_coco(path: Path) -> list[Case]:
    """Read a COCO JSON file; one case per image.

    Parameters
    ----------
    path : Path
        The ``.json`` file.

    Returns
    -------
    list of Case
        Geometry in pixels of each image, ``(y, x)``.
    """
    data, layout = load_json(path)
    return cases_from_coco(data, Path(path), PLAIN, layout=layout)


def _fail_if_not_coco(data: Any, path: Path) -> None:
    if not isinstance(data, dict):
        raise NsclcFormatError(path, "is not a COCO file: the top level is not an object")
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            raise NsclcFormatError(path, f"is not a COCO file: it has no '{key}' list")
    if not isinstance(data.get("categories", []), list):
        raise NsclcFormatError(path, "is not a COCO file: 'categories' is not a list")


class _Collector:
    """Objects found for one image, before they become model sets."""

    def __init__(self):
        self.boxes: dict[str, list] = {}
        self.points: dict[str, list] = {}
        self.polygons: dict[str, list] = {}
        self.keypoints: dict[str, list] = {}
        self.rle: dict[str, list] = {}


def cases_from_coco(
    data: dict, path: Path, flavour: CocoFlavour = PLAIN, *, layout: dict | None = None, only_file: str | None = None
) -> list[Case]:
    """Cases from a parsed COCO-like document.

    Parameters
    ----------
    data : dict
        The parsed JSON.
    path : Path
        The file it came from (named in warnings; images are looked up next to it).
    flavour : CocoFlavour
        The dialect.
    layout : dict, optional
        The JSON layout from :func:`load_json`, kept for writing back.
    only_file : str, optional
        Make a case only for the image whose ``file_name`` is this.
    """
    _fail_if_not_coco(data, path)
    fname = path.name
    warnings: list[str] = []
    categories = [c for c in data.get("categories", []) if isinstance(c, dict) and "id" in c]
    schema = flavour.schema or schema_from_categories(categories)
    category_by_id: dict[int, dict] = {}
    for category in categories:
        category_by_id.setdefault(int(category["id"]), category)

    images: dict[Any, dict] = {}
    for i, image in enumerate(data["images"]):
        if not isinstance(image, dict) or "id" not in image:
            warnings.append(f"{fname}: image {i}: has no id; skipped")
            continue
        if image["id"] in images:
            warnings.append(f"{fname}: image {image['id']}: duplicate image id; the first one is kept")
            continue
        images[image["id"]] = image

    document = {
        "coco": {key: value for key, value in data.items() if key not in _OBJECT_KEYS},
        "coco_key_order": list(data.keys()),
        "coco_layout": layout or {},
        "coco_flavour": flavour.name,
        "coco_bbox_format": flavour.bbox_format,
        # new objects get ids above every id of the source file, even of images not written back
        "coco_max_annotation_id": max(
            (a["id"] for a in data["annotations"] if isinstance(a, dict) and isinstance(a.get("id"), int)), default=0
        ),
    }
    wanted = {k for k, im in images.items() if only_file is None or im.get("file_name") == only_file}
    collected = {image_id: _Collector() for image_id in wanted}
    seen_ids: set = set()
    for index, ann in enumerate(data["annotations"]):
        label = f"{fname}: annotation {ann.get('id', f'#{index}') if isinstance(ann, dict) else f'#{index}'}"
        if not isinstance(ann, dict):
            warnings.append(f"{label}: is not an object; skipped")
            continue
        if "id" in ann:
            if ann["id"] in seen_ids:
                warnings.append(f"{label}: duplicate annotation id; the first one is kept, this one skipped")
                continue
            seen_ids.add(ann["id"])
        if ann.get("image_id") not in images:
            warnings.append(f"{label}: image_id {ann.get('image_id')!r} is not in 'images'; skipped")
            continue
        if ann["image_id"] not in wanted:
            continue
        try:
            category = category_by_id[int(ann["category_id"])]
        except (KeyError, TypeError, ValueError):
            warnings.append(f"{label}: category_id {ann.get('category_id')!r} is not in 'categories'; skipped")
            continue
        class_name = _class_name(category, schema, flavour)
        group = flavour.group_of_category(category) if flavour.group_of_category else None
        if group is None and isinstance(ann.get("layer"), str):
            group = ann["layer"]  # written by napari-nsclc for a case of several layers of one kind
        problem = _collect(ann, index, class_name, group, images[ann["image_id"]], flavour, collected[ann["image_id"]])
        if problem:
            warnings.append(f"{label}: {problem}")

    cases = []
    for image_id, image in images.items():
        if image_id not in wanted:
            continue
        case = _make_case(image, collected[image_id], path, flavour, schema, document)
        cases.append(case)
    for case in cases:
        load_image(case, lazy=len(cases) > MAX_IMAGES_LOADED)
    if cases:
        cases[0].provenance.warnings[:0] = warnings
    elif warnings and only_file is None:
        raise NsclcFormatError(path, "no image could be read: " + "; ".join(warnings[:3]))
    return cases


def _class_name(category: dict, schema: ClassSchema, flavour: CocoFlavour) -> str:
    if flavour.class_of_category is not None:
        return flavour.class_of_category(category)
    try:
        return schema.name_of(int(category["id"]))
    except KeyError:
        return str(category.get("name", category["id"]))


def _finite(values: Sequence[Any]) -> bool:
    try:
        return all(math.isfinite(float(v)) for v in values)
    except (TypeError, ValueError):
        return False


def _check_bounds(bounds, image: dict) -> tuple[str | None, bool]:
    """A problem with box ``bounds`` (file coordinates) on ``image``, and whether the box is kept.

    A box with a negative size is skipped. A box reaching past the image's
    edge is kept, with a warning: MIDOG's 50 px boxes around cells near the
    border do, and converting them must not lose them.
    """
    y0, x0, y1, x1 = bounds
    if y1 < y0 or x1 < x0:
        return "box has negative width or height; skipped", False
    height, width = image.get("height"), image.get("width")
    outside = min(bounds) < 0
    if isinstance(height, (int, float)) and isinstance(width, (int, float)):
        outside = outside or y1 > height or x1 > width
    if outside:
        size = f"{width}x{height} " if isinstance(width, (int, float)) else ""
        return f"box {[_number(v) for v in (x0, y0, x1, y1)]} reaches outside the {size}image; kept as written", True
    return None, True


def _collect(ann, index, class_name, group, image, flavour, out: _Collector) -> str | None:
    """File one annotation's objects into ``out``; return a problem, if any."""
    attributes = {"coco": ann, "coco_index": index}
    segmentation = ann.get("segmentation")
    keypoints = ann.get("keypoints")
    made_something = False
    if isinstance(segmentation, dict):
        if "counts" not in segmentation or "size" not in segmentation:
            return "RLE segmentation lacks 'counts' or 'size'; skipped"
        out.rle.setdefault(group or "RLE masks", []).append((ann, index, class_name))
        made_something = True
    elif isinstance(segmentation, list) and segmentation:
        rings = _polygon_rings(segmentation)
        if rings is None:
            return "polygon segmentation has NaN, negative or odd-length coordinates; skipped"
        for part, ring in enumerate(rings):
            out.polygons.setdefault(group or "segmentations", []).append(
                (Polygon(ring), class_name, {**attributes, "part": part, "object": index})
            )
        made_something = True
    if isinstance(keypoints, list) and keypoints:
        if len(keypoints) % 3 or not _finite(keypoints):
            return "keypoints are not finite [x, y, v] triples; skipped"
        for k in range(0, len(keypoints), 3):
            x, y, visibility = keypoints[k : k + 3]
            if visibility:
                out.keypoints.setdefault(group or "keypoints", []).append(
                    ((float(y), float(x)), class_name, {**attributes, "keypoint": k // 3})
                )
        made_something = True
    if made_something:
        return None
    bbox = ann.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4:
        return "has no bbox, segmentation or keypoints; skipped"
    if not _finite(bbox):
        return f"bbox {bbox} has NaN or infinite values; skipped"
    bounds = flavour.bounds(bbox)
    if flavour.points_from_boxes:
        y0, x0, y1, x1 = flavour.file_bounds(bbox)
        problem, keep = _check_bounds((y0, x0, y1, x1), image)
        if not keep:
            return problem
        # a cell's box may reach past the border (MIDOG's 50 px boxes); a cell whose centre is off the image is not on it
        outside, _ = _check_bounds(((y0 + y1) / 2, (x0 + x1) / 2, (y0 + y1) / 2, (x0 + x1) / 2), image)
        if outside:
            return outside.replace("box", "cell centre", 1).replace("reaches", "lies").replace("kept as written", "skipped")
        y0, x0, y1, x1 = bounds
        out.points.setdefault(group or flavour.points_name, []).append(
            (((y0 + y1) / 2, (x0 + x1) / 2), class_name, {**attributes, "box_size": (y1 - y0, x1 - x0)})
        )
        return None
    problem, keep = _check_bounds(flavour.file_bounds(bbox), image)
    if not keep:
        return problem
    out.boxes.setdefault(group or "boxes", []).append((bounds, class_name, attributes))
    return problem


def _polygon_rings(segmentation: list) -> list[np.ndarray] | None:
    rings = []
    for flat in segmentation:
        if not isinstance(flat, list) or len(flat) % 2 or len(flat) < 6 or not _finite(flat):
            return None
        xy = np.asarray(flat, dtype=float).reshape(-1, 2)
        if (xy < 0).any():
            return None
        # COCO's origin is the corner of pixel (0, 0), the model's its centre
        rings.append(from_file(xy[:, ::-1], CORNER))
    return rings


def _make_case(image: dict, found: _Collector, path: Path, flavour, schema, document) -> Case:
    file_name = str(image.get("file_name", image["id"]))
    height, width = image.get("height"), image.get("width")
    shape = (int(height), int(width)) if isinstance(height, int) and isinstance(width, int) else None
    image_path = find_image(path, file_name)
    ref = ImageRef(
        path=str(image_path) if image_path else None,
        shape=shape,
        pixel_size=flavour.pixel_size,
        unit=flavour.unit,  # type: ignore[arg-type]
        origin=(0.0, 0.0),
        name=Path(file_name).stem,
    )
    case = Case(
        name=Path(file_name).stem,
        image=ref,
        provenance=Provenance(source=str(path), format=flavour.name, reader=__name__),
        document={**document, "coco_image": image},
    )
    for name, items in found.polygons.items():
        polygons, classes, attrs = zip(*items, strict=True)
        case.polygons.append(PolygonSet(name, polygons, classes, schema, list(attrs)))
    for name, items in found.boxes.items():
        bounds, classes, attrs = zip(*items, strict=True)
        case.boxes.append(BoxSet(name, np.array(bounds), classes, schema, list(attrs)))
    for name, items in found.points.items():
        coords, classes, attrs = zip(*items, strict=True)
        case.points.append(PointSet(name, np.array(coords), classes, schema, list(attrs)))
    for name, items in found.keypoints.items():
        coords, classes, attrs = zip(*items, strict=True)
        case.points.append(PointSet(name, np.array(coords), classes, schema, list(attrs)))
    for name, items in found.rle.items():
        case.masks.append(_rle_mask(name, items, shape, schema, case))
    if flavour.read_image_extras is not None:
        flavour.read_image_extras(case, image)
    return case


def _rle_mask(name: str, items, shape, schema: ClassSchema, case: Case) -> LabelMask:
    """One instance mask from the image's RLE annotations (later ones drawn on top)."""
    from .. import rle

    size = tuple(int(v) for v in items[0][0]["segmentation"]["size"])
    shape = shape or size
    labels = np.zeros(shape, dtype=np.int32)
    instance_classes = {}
    for instance_id, (ann, _index, class_name) in enumerate(items, start=1):
        decoded = np.asarray(rle.decode(ann["segmentation"]), dtype=bool)
        if decoded.shape != labels.shape:
            case.provenance.warnings.append(
                f"{Path(case.provenance.source).name}: annotation {ann.get('id')}: RLE size "
                f"{list(decoded.shape)} differs from the image's {list(labels.shape)}; cropped"
            )
            fitted = np.zeros(labels.shape, dtype=bool)
            h, w = min(shape[0], decoded.shape[0]), min(shape[1], decoded.shape[1])
            fitted[:h, :w] = decoded[:h, :w]
            decoded = fitted
        labels[decoded] = instance_id
        instance_classes[instance_id] = class_name
    attributes = {
        "coco_annotations": [(index, ann) for ann, index, _ in items],
        "digest": _digest(labels),
    }
    return LabelMask(name, labels, schema, kind="instance", instance_classes=instance_classes, attributes=attributes)


def _digest(array) -> str:
    array = np.ascontiguousarray(np.asarray(array))
    return hashlib.sha1(array.tobytes() + str(array.shape).encode()).hexdigest()


def find_image(json_path: Path, file_name: str) -> Path | None:
    """The image a COCO ``file_name`` names, looked up next to the JSON and in sibling ``images/`` folders."""
    base = Path(json_path).parent
    candidates = [base / folder / file_name for folder in _IMAGE_FOLDERS]
    parts = base.parts
    if "annotations" in parts:
        i = len(parts) - 1 - parts[::-1].index("annotations")
        candidates.append(Path(*parts[:i], "images", *parts[i + 1 :]) / file_name)
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    return None


def load_image(case: Case, lazy: bool = False) -> None:
    """Attach the pixels of ``case.image.path``, read by :mod:`napari_nsclc.imageio` (RGBA shown as RGB).

    TIFFs are read through tifffile's zarr store (:func:`~napari_nsclc.imageio.read_tiled`),
    so only the tiles on screen are decoded; with ``lazy`` every image becomes a
    one-chunk dask array (:func:`~napari_nsclc.imageio.deferred_image`) that napari
    decodes when it draws. A dropped alpha channel is recorded as
    ``provenance.details["image_alpha_dropped"]``.
    """
    path = case.image.path
    if not path:
        return
    if lazy:
        found = imageio.header(path)
        data, alpha = imageio.deferred_image(path, found), found.alpha
    elif Path(path).suffix.lower() in imageio.TIFF_SUFFIXES:
        data, info = imageio.read_tiled(path)
        alpha = info["alpha_dropped"]
    else:
        data, info = imageio.read_pixels(path)
        alpha = info["alpha_dropped"]
    if alpha:
        case.provenance.details["image_alpha_dropped"] = True
    first = data[0] if isinstance(data, list) else data
    case.image.data = data
    case.image.rgb = first.ndim == 3 and first.shape[-1] == 3
    spatial = tuple(first.shape[:2])
    if case.image.shape and case.image.shape != spatial:
        case.provenance.warnings.append(
            f"{Path(case.provenance.source).name}: image {Path(path).name}: is {spatial[1]}x{spatial[0]} "
            f"but the JSON says {case.image.shape[1]}x{case.image.shape[0]}"
        )
    case.image.shape = spatial


# --------------------------------------------------------------------------- writing


class _CategoryIndex:
    """Category ids for class names, reusing the source's categories and appending new ones."""

    def __init__(self, cases: Sequence[Case], flavour: CocoFlavour):
        source = next((c.document.get("coco") for c in cases if c.document.get("coco")), None) or {}
        self.categories = [dict(c) for c in source.get("categories", [])]
        self.flavour = flavour
        self.by_key: dict[tuple, int] = {}
        self.key_of_id: dict[int, tuple] = {}
        # plain COCO names classes as schema_from_categories does (duplicate names get their id)
        plain_names = schema_from_categories(self.categories).names if flavour.class_of_category is None else []
        for number, category in enumerate(self.categories):
            name = flavour.class_of_category(category) if flavour.class_of_category else plain_names[number]
            group = flavour.group_of_category(category) if flavour.group_of_category else None
            self.by_key.setdefault((group, name), int(category["id"]))
            self.by_key.setdefault((None, name), int(category["id"]))
            self.key_of_id[int(category["id"])] = (group, name)
        self.schemas = [s.schema for case in cases for s in case.annotation_sets()] + [
            m.schema for case in cases for m in case.masks
        ]

    def id_of(self, class_name: str, group: str | None) -> int:
        for key in ((group, class_name), (None, class_name)):
            if key in self.by_key:
                return self.by_key[key]
        code = None
        for schema in self.schemas:
            if class_name in schema:
                code = schema.code_of(class_name)
                break
        used = {int(c["id"]) for c in self.categories}
        if code is None or code in used:
            code = max(used, default=0) + 1
        self.categories.append({"id": code, "name": class_name, "supercategory": group or ""})
        self.by_key[(group, class_name)] = code
        self.by_key[(None, class_name)] = code
        return code


class _Record:
    """An output annotation assembled from the objects that came from it."""

    def __init__(self, source: dict | None, order: tuple):
        self.source = source
        self.order = order
        self.parts: list[tuple[int, Polygon]] = []
        #: (flat [x, y, ...] list, (ymin, xmin, ymax, xmax), area) of a one-part polygon, computed in bulk
        self.summary: tuple | None = None
        self.keypoints: list[tuple[int, np.ndarray]] = []
        self.box: tuple | None = None
        self.point: tuple | None = None
        self.rle: dict | None = None
        #: a ready COCO segmentation (polygons, or RLE for objects with holes) drawn from a label mask
        self.segmentation: list | dict | None = None
        self.area: float | None = None
        self.class_name: str | None = None
        self.group: str | None = None
        self.changed = source is None
        #: written in another dialect than it was read (MIDOG xyxy -> COCO xywh)
        self.converted = False
        #: the layer the object came from, written as "layer" when a case has several of one kind
        self.layer: str | None = None
        #: ``(H, W)`` of the image, for objects that must go out as RLE
        self.shape: tuple[int, int] | None = None


def _unchanged_box(source: dict, bounds, flavour) -> bool:
    bbox = source.get("bbox")
    return isinstance(bbox, list) and len(bbox) == 4 and _finite(bbox) and np.allclose(
        flavour.bounds(bbox), bounds, rtol=0, atol=1e-9
    )


def _records_from_case(case: Case, flavour: CocoFlavour, options: dict, records: dict, counter: list) -> None:
    from ..conversion import tagged_layers

    # several layers of one kind in one image (NSCLC-NAT's two masks) are told apart by a "layer" field
    tagged = tagged_layers(case) if flavour.group_of_category is None else set()
    shape = image_size(case)

    def record_for(attrs: dict, set_number: int = 0) -> _Record:
        source = attrs.get("coco")
        if source is not None and "coco_index" in attrs:
            key = ("source", attrs["coco_index"])
            if key not in records:
                records[key] = _Record(source, (0, attrs["coco_index"], 0))
            return records[key]
        if "object" in attrs:  # the parts of one object read from another format (a GeoJSON MultiPolygon)
            key = ("object", set_number, attrs["object"])
            if key not in records:
                counter[0] += 1
                records[key] = _Record(None, (1, counter[0], 0))
            return records[key]
        counter[0] += 1
        key = ("new", counter[0])
        records[key] = _Record(None, (1, counter[0], 0))
        return records[key]

    for set_number, objects in enumerate(case.polygons):
        summaries = _summarise(objects.polygons)
        for i, (polygon, class_name, attrs) in enumerate(
            zip(objects.polygons, objects.classes, objects.attributes, strict=True)
        ):
            if polygon.kind == "path":
                continue  # COCO has no open lines; the conversion plan says they are not written
            record = record_for(attrs, set_number)
            record.parts.append((int(attrs.get("part", len(record.parts))), polygon))
            record.summary = summaries.get(i) if record.source is None and "object" not in attrs else None
            record.class_name, record.group = str(class_name), _group_of(objects, flavour)
            record.layer, record.shape = (objects.name if objects.name in tagged else None), shape
    for objects in case.boxes:
        if objects.attributes and objects.attributes[0].get("image_extra"):
            continue
        for bounds, class_name, attrs in zip(objects.bounds, objects.classes, objects.attributes, strict=True):
            record = record_for(attrs)
            record.box = tuple(float(v) for v in bounds)
            record.class_name, record.group = str(class_name), _group_of(objects, flavour)
            record.layer = objects.name if objects.name in tagged else None
    default_size = _default_box_size(case, options)
    for objects in case.points:
        sizes = [tuple(a["box_size"]) for a in objects.attributes if "box_size" in a]
        set_size = Counter(sizes).most_common(1)[0][0] if sizes else default_size
        # points with no box of their own are keypoints, unless boxes are asked for (points_as="box")
        as_keypoints = options.get("points_as", "keypoints") == "keypoints" and not sizes
        for coords, class_name, attrs in zip(objects.coords, objects.classes, objects.attributes, strict=True):
            record = record_for(attrs)
            record.class_name, record.group = str(class_name), _group_of(objects, flavour)
            record.layer = objects.name if objects.name in tagged else None
            yx = tuple(float(v) for v in coords[-2:])
            if "keypoint" in attrs or (record.source is None and as_keypoints):
                record.keypoints.append((int(attrs.get("keypoint", len(record.keypoints))), np.array(yx)))
            else:
                size = tuple(attrs.get("box_size", set_size))
                record.point = (yx, size)
    from ..conversion import mask_kind, written_masks

    for mask in written_masks(case):
        if mask_kind(mask) in ("mask", "instances"):  # a slide's mask pyramid is not traced here (see the plan)
            _mask_records(mask, records, counter, mask.name if mask.name in tagged else None)


def _group_of(objects, flavour: CocoFlavour) -> str | None:
    return objects.name if flavour.group_of_category is not None else None


def _default_box_size(case: Case, options: dict) -> tuple[float, float]:
    size = options.get("point_box_size")
    if size is None:
        return (20.0, 20.0)
    return (float(size), float(size)) if np.isscalar(size) else tuple(float(v) for v in size)


def _mask_records(mask: LabelMask, records: dict, counter: list, layer: str | None = None) -> None:
    from .. import rle

    data = np.asarray(mask.data[0] if mask.multiscale else mask.data)
    sources = mask.attributes.get("coco_annotations") or []
    if sources and mask.attributes.get("digest") == _digest(data):
        for index, ann in sources:
            records[("source", index)] = _Record(ann, (0, index, 0))
        return
    if mask.kind == "instance":
        instances = [(i, mask.instance_classes.get(i, "")) for i in sorted(mask.instance_classes)]
    else:
        from .. import geometry

        # pycocotools unions the rings of an annotation, so objects with holes
        # go out as RLE; either way pycocotools decodes exactly these pixels
        for annotation in geometry.labels_to_coco_annotations(data, mask.schema):
            counter[0] += 1
            record = _Record(None, (1, counter[0], 0))
            record.segmentation = annotation["segmentation"]
            x, y, w, h = annotation["bbox"]
            record.box = tuple(from_file((y, x, y + h, x + w), CORNER).tolist())
            record.area = annotation["area"]
            record.class_name = annotation["category_name"]
            record.layer = layer
            records[("new", counter[0])] = record
        return
    for instance_id, class_name in instances:
        binary = data == instance_id
        if not binary.any():
            continue
        if 0 < instance_id <= len(sources):
            index, ann = sources[instance_id - 1]
            record = _Record(ann, (0, index, 0))
            record.changed = True
            records[("source", index)] = record
        else:
            counter[0] += 1
            record = _Record(None, (1, counter[0], 0))
            records[("new", counter[0])] = record
        encoded = rle.encode(binary)
        if record.source is not None and isinstance(record.source.get("segmentation", {}).get("counts"), list):
            encoded = {"size": encoded["size"], "counts": _uncompressed_counts(binary)}
        record.rle = encoded
        record.area = float(binary.sum())
        ys, xs = np.nonzero(binary)
        record.box = (ys.min() - 0.5, xs.min() - 0.5, ys.max() + 0.5, xs.max() + 0.5)  # model: pixel edges
        record.class_name = class_name
        record.layer = layer


def _uncompressed_counts(binary: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE: run lengths in column-major order, starting with zeros."""
    flat = np.asarray(binary, dtype=np.uint8).ravel(order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    edges = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(edges).tolist()
    if flat.size and flat[0]:
        runs = [0, *runs]
    return runs


def _finish(record: _Record, image_id, categories: _CategoryIndex, flavour: CocoFlavour, next_id: list) -> dict | None:
    source = record.source
    category_id = source.get("category_id") if source is not None else None
    changed = record.changed or record.converted
    if record.class_name is not None:
        try:
            group, name = categories.key_of_id[int(category_id)]
        except (KeyError, TypeError, ValueError):
            group, name = None, None
        if name != record.class_name or (record.group is not None and group != record.group):
            category_id = categories.id_of(record.class_name, record.group)
            changed = True
    if source is not None and not changed:
        changed = not _geometry_unchanged(record, source, flavour)
    if source is not None and not changed:
        return source
    out = dict(source) if source is not None else {}
    if source is None:
        next_id[0] += 1
        out = {"id": next_id[0], "image_id": image_id, "category_id": category_id}
    else:
        out["category_id"] = category_id
    _write_geometry(out, record, flavour)
    if record.layer is not None and not isinstance(out.get("layer"), str):
        out["layer"] = record.layer
    return out


def _geometry_unchanged(record: _Record, source: dict, flavour: CocoFlavour) -> bool:
    if record.parts:
        rings = _polygon_rings(source.get("segmentation") or []) or []
        parts = sorted(record.parts, key=lambda p: p[0])
        if len(parts) != len(rings):
            return False
        return all(
            poly.kind in ("polygon", "rectangle") and not poly.holes and np.array_equal(poly.exterior, ring)
            for (_, poly), ring in zip(parts, rings, strict=True)
        )
    if record.keypoints:
        flat = source.get("keypoints") or []
        visible = [(k // 3, (float(flat[k + 1]), float(flat[k]))) for k in range(0, len(flat), 3) if flat[k + 2]]
        current = sorted((i, tuple(p.tolist())) for i, p in record.keypoints)
        return current == visible
    if record.point is not None:
        (cy, cx), _ = record.point
        y0, x0, y1, x1 = flavour.bounds(source["bbox"])
        return (cy, cx) == ((y0 + y1) / 2, (x0 + x1) / 2)
    if record.box is not None:
        return _unchanged_box(source, record.box, flavour)
    return record.rle is None


def _summarise(polygons: Sequence[Polygon]) -> dict[int, tuple]:
    """Flat COCO vertex lists, bounds and areas of all hole-free 2-D polygons at once.

    Writing 60k nuclei one polygon at a time spends most of its time in
    per-object numpy calls; this does the arithmetic on one concatenated array.
    """
    simple = [i for i, p in enumerate(polygons) if not p.holes and p.exterior.ndim == 2
              and p.exterior.shape[1] == 2 and len(p.exterior) >= 3]  # fmt: skip
    if not simple:
        return {}
    rings = [polygons[i].exterior for i in simple]
    lengths = np.fromiter((len(r) for r in rings), dtype=np.int64, count=len(rings))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    yx = np.concatenate(rings).astype(float, copy=False)
    low = np.minimum.reduceat(yx, starts, axis=0).tolist()
    high = np.maximum.reduceat(yx, starts, axis=0).tolist()
    following = np.arange(1, len(yx) + 1)
    following[starts + lengths - 1] = starts
    y, x = yx[:, 0], yx[:, 1]
    areas = (0.5 * np.abs(np.add.reduceat(x * y[following] - x[following] * y, starts))).round(6).tolist()
    xy = to_file(yx[:, ::-1].ravel(), CORNER)
    if (xy == np.round(xy)).all():
        flat = xy.astype(np.int64).tolist()
    else:
        flat = [int(v) if v.is_integer() else v for v in xy.tolist()]
    bounds = (2 * starts).tolist(), (2 * (starts + lengths)).tolist()
    return {
        i: (flat[a:b], (lo[0], lo[1], hi[0], hi[1]), area)
        for i, a, b, lo, hi, area in zip(simple, *bounds, low, high, areas, strict=True)
    }


def _write_geometry(out: dict, record: _Record, flavour: CocoFlavour) -> None:
    if record.segmentation is not None:
        out["segmentation"] = record.segmentation
        out["bbox"] = flavour.bbox(record.box)
        out["area"] = _number(record.area)
        out.setdefault("iscrowd", 0)
    elif record.summary is not None and len(record.parts) == 1:
        flat, bounds, area = record.summary
        out["segmentation"] = [flat]
        out["bbox"] = flavour.bbox(bounds)
        out["area"] = _number(area)
        out.setdefault("iscrowd", 0)
    elif record.parts:
        parts = [p for _, p in sorted(record.parts, key=lambda p: p[0])]
        allyx = parts[0].exterior if len(parts) == 1 else np.concatenate([p.exterior for p in parts])
        low, high = allyx.min(axis=0).tolist(), allyx.max(axis=0).tolist()
        out["bbox"] = flavour.bbox((low[-2], low[-1], high[-2], high[-1]))
        if any(p.holes for p in parts) and record.shape is not None:
            # pycocotools unions the rings of one annotation, which would fill the holes: RLE keeps them
            from .. import rle
            from ..geometry import rasterize_polygons

            binary = np.zeros(record.shape, np.uint8)
            for polygon in parts:
                binary |= rasterize_polygons([polygon], record.shape)
            out["segmentation"] = rle.encode(binary)
            out["area"] = int(binary.sum())
        else:
            out["segmentation"] = [_numbers(to_file(p.exterior[:, ::-1], CORNER)) for p in parts]
            area = sum(_ring_area(p.exterior) - sum(_ring_area(h) for h in p.holes) for p in parts)
            out["area"] = _number(round(area, 6))
        out.setdefault("iscrowd", 0)
    elif record.rle is not None:
        out["segmentation"] = record.rle
        out["bbox"] = flavour.bbox(record.box)
        out["area"] = _number(record.area)
        out["iscrowd"] = out.get("iscrowd", 1)
    elif record.keypoints:
        previous = list(out.get("keypoints") or [])
        count = max([len(previous) // 3, *(i + 1 for i, _ in record.keypoints)])
        flat = previous + [0] * (3 * count - len(previous))
        for k in range(count):
            flat[3 * k + 2] = 0
        for i, (y, x) in record.keypoints:
            flat[3 * i : 3 * i + 3] = [_number(x), _number(y), 2]
        out["keypoints"] = flat
        out["num_keypoints"] = sum(1 for k in range(count) if flat[3 * k + 2])
        if "bbox" not in out:
            # the pixels the keypoints lie on (keypoints are pixel indices, boxes pixel edges)
            ys = [y for _, (y, _x) in record.keypoints]
            xs = [x for _, (_y, x) in record.keypoints]
            out["bbox"] = flavour.bbox((min(ys) - 0.5, min(xs) - 0.5, max(ys) + 0.5, max(xs) + 0.5))
            out.setdefault("area", _number(round((max(ys) - min(ys) + 1) * (max(xs) - min(xs) + 1), 10)))
    elif record.point is not None:
        (cy, cx), (h, w) = record.point
        out["bbox"] = flavour.bbox((cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2))
        if "area" in out or _needs_coco_fields(record, flavour):
            out["area"] = _number(h * w)
    elif record.box is not None:
        out["bbox"] = flavour.bbox(record.box)
        y0, x0, y1, x1 = record.box
        if "area" in out or _needs_coco_fields(record, flavour):
            out["area"] = _number((y1 - y0) * (x1 - x0))
    if _needs_coco_fields(record, flavour):
        out.setdefault("iscrowd", 0)


def _needs_coco_fields(record: _Record, flavour: CocoFlavour) -> bool:
    """New or converted objects written as plain COCO get ``area`` and ``iscrowd``."""
    return flavour.bbox_format == "xywh" and (record.source is None or record.converted)


def _image_record(case: Case, image_id: Any, flavour: CocoFlavour, image_root: Path | None) -> dict:
    """The case's ``images`` entry: the source's record, or a new one with ``file_name``, ``width`` and ``height``."""
    record = case.document.get("coco_image")
    if record is None:
        record = {"id": image_id, "file_name": _file_name(case, image_root)}
        size = image_size(case)
        if size is not None:
            record.update(width=size[1], height=size[0])
        record.update(case.document.get("coco_image_extra") or {})
    if flavour.write_image_extras is not None:
        record = flavour.write_image_extras(case, record)
    return record


def _image_file(case: Case) -> Path | None:
    """The file holding the case's pixels, when it is one image file (not a container such as HDF5)."""
    path = case.image.path
    if not path or "hdf5_index" in case.image.metadata or Path(path).suffix.lower() in (".h5", ".hdf5", ".hdf"):
        return None
    return Path(path)


def _file_name(case: Case, image_root: Path | None) -> str:
    """``file_name`` of a new image record: the image's path below ``image_root``, else a name that says where."""
    path = _image_file(case)
    if path is not None:
        if image_root is not None:
            try:
                return path.resolve().relative_to(image_root).as_posix()
            except ValueError:
                pass
        return path.name
    if case.image.path and "hdf5_index" in case.image.metadata:
        return f"{Path(case.image.path).name}/{case.image.metadata['hdf5_index']}"
    return case.name  # no image file is known: the case's name, not an invented file


def _image_root(cases: Sequence[Case]) -> Path | None:
    """The folder every image file lies below, so ``file_name`` tells images of one name apart (OCELOT's cell/ and tissue/)."""
    import os

    folders = [str(path.resolve().parent) for case in cases if (path := _image_file(case)) is not None]
    if not folders:
        return None
    try:
        return Path(os.path.commonpath(folders))
    except ValueError:  # paths on different drives
        return None


def _slice_cases(case: Case) -> list[Case]:
    """A volume's annotated slices as 2-D cases, one COCO image each, named by the slice file.

    Each keeps the slice's SOPInstanceUID and z index as extra fields of its
    image record; a 2-D case is returned as it is.
    """
    from dataclasses import replace

    sliced = [boxes for boxes in case.boxes if boxes.planes is not None]
    if not sliced:
        return [case]
    metadata = case.image.metadata
    files, uids = metadata.get("files") or [], metadata.get("sop_instance_uids") or []
    height, width = (case.image.shape or (0, 0, 0))[-2:]
    planes = sorted({int(z) for boxes in sliced for z in boxes.planes.tolist()})
    pieces = []
    for z in planes:
        extra: dict[str, Any] = {"z": z}
        if z < len(uids):
            extra["sop_instance_uid"] = uids[z]
        boxes = []
        for box_set in sliced:
            chosen = np.flatnonzero(box_set.planes == z)
            if chosen.size:
                boxes.append(BoxSet(box_set.name, box_set.bounds[chosen], box_set.classes[chosen], box_set.schema,
                                    [box_set.attributes[i] for i in chosen]))
        image = ImageRef(path=files[z] if z < len(files) else None, shape=(height, width),
                         pixel_size=tuple(case.image.pixel_size[-2:]), unit=case.image.unit,
                         name=f"{case.name} z{z}")
        document = {k: v for k, v in case.document.items() if k != "coco_image"}
        document["coco_image_extra"] = extra
        pieces.append(replace(case, name=f"{case.name} z{z}", image=image, masks=[], points=[], polygons=[],
                              boxes=boxes, document=document))
    return pieces


def _max_annotation_id(cases: Sequence[Case]) -> int:
    sources = [a.get("coco") for case in cases for objects in case.annotation_sets() for a in objects.attributes]
    sources += [ann for case in cases for mask in case.masks for _, ann in mask.attributes.get("coco_annotations", [])]
    from_files = [c.document.get("coco_max_annotation_id", 0) for c in cases]
    ids = [a["id"] for a in sources if isinstance(a, dict) and isinstance(a.get("id"), int)]
    return max([*ids, *from_files], default=0)


def coco_from_cases(cases: Sequence[Case], flavour: CocoFlavour = PLAIN, **options) -> tuple[dict, dict]:
    """A COCO-like document for ``cases``, and the JSON layout to write it with.

    Objects whose geometry and class are as read are written as their original
    dicts; edited ones are updated in place of the original; new ones get new
    ids. Points become boxes of their source's size centred on them, or
    keypoints when ``points_as="keypoints"``.
    """
    cases = [piece for case in cases for piece in _slice_cases(case)]
    image_root = _image_root(cases)
    source_doc = next((c.document for c in cases if c.document.get("coco_key_order")), {})
    top = dict(source_doc.get("coco") or {})
    order = source_doc.get("coco_key_order") or ["info", "licenses", "images", "annotations", "categories"]
    categories = _CategoryIndex(cases, flavour)
    images = []
    used_image_ids = {c.document["coco_image"]["id"] for c in cases if "coco_image" in c.document}
    next_image_id = max([i for i in used_image_ids if isinstance(i, int)], default=0)
    annotations: list[tuple[tuple, dict]] = []
    next_ann_id = [_max_annotation_id(cases)]
    for case_number, case in enumerate(cases):
        if "coco_image" in case.document:
            image_id = case.document["coco_image"]["id"]
        else:
            next_image_id += 1
            image_id = next_image_id
        images.append(_image_record(case, image_id, flavour, image_root))
        records: dict = {}
        counter = [0]
        _records_from_case(case, flavour, options, records, counter)
        converted = case.document.get("coco_bbox_format", flavour.bbox_format) != flavour.bbox_format
        for record in records.values():
            record.converted = converted and record.source is not None
            out = _finish(record, image_id, categories, flavour, next_ann_id)
            if out is not None:
                rank = record.order if record.order[0] == 0 else (1, case_number, record.order[1])
                annotations.append((rank, out))
    annotations.sort(key=lambda item: item[0])
    top["images"] = images
    top["annotations"] = [ann for _, ann in annotations]
    if categories.categories or "categories" in top:
        top["categories"] = categories.categories
    keys = [k for k in order if k in top] + [k for k in top if k not in order]
    return {k: top[k] for k in keys}, source_doc.get("coco_layout") or {}


def write_coco(cases: Sequence[Case], path: Path, *, overwrite: bool = False, **options) -> list[Path]:
    """Write ``cases`` as one COCO JSON file.

    Parameters
    ----------
    cases : sequence of Case
    path : Path
        The ``.json`` file to write.
    overwrite : bool
        Replace an existing file.
    points_as : {"box", "keypoints"}
        How points without a source box are written: as a box of
        ``point_box_size`` pixels (default 20) centred on the point, or as a
        one-keypoint annotation.
    point_box_size : float or (float, float), optional
    """
    return _write(cases, Path(path), PLAIN, overwrite, options)


@contextlib.contextmanager
def _collector_paused():
    """Pause Python's cyclic garbage collector while building many small dicts and lists.

    The objects made here hold no reference cycles; with a large heap (a viewer
    holding a million points) the collector's full passes otherwise take most
    of the time of exporting 60k nuclei.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _write(cases, path: Path, flavour: CocoFlavour, overwrite: bool, options: dict) -> list[Path]:
    refuse_overwrite(path, overwrite)
    with _collector_paused():
        document, layout = coco_from_cases(cases, flavour, **options)
        text = dump_json(document, layout or None)
    atomic_write_text(path, text)
    return [path]


# --------------------------------------------------------------------------- detection


def _head(path: Path, size: int = 8192) -> str:
    with open(path, "rb") as handle:
        return handle.read(size).decode("utf-8", errors="replace")


def sniff_coco(path: Path) -> bool:
    """A ``.json`` file whose first KiB look like a COCO document."""
    path = Path(path)
    if not path.is_file() or path.suffix.lower() != ".json":
        return False
    head = _head(path)
    return head.lstrip().startswith("{") and ('"images"' in head or '"annotations"' in head)


#: Annotation keys every COCO-like writer rebuilds; any other key is a field only COCO keeps.
_STANDARD_KEYS = frozenset(
    {"image_id", "category_id", "bbox", "area", "iscrowd", "segmentation", "keypoints", "num_keypoints", "layer"}
)


def coco_object_fields(attributes: dict) -> list[str]:
    """The fields of an object's source annotation that other formats do not keep (``id`` ...)."""
    source = attributes.get("coco")
    return [key for key in source if key not in _STANDARD_KEYS] if isinstance(source, dict) else []


FORMAT = FormatSpec(
    name="coco",
    title="COCO JSON",
    sniff=sniff_coco,
    read=read_coco,
    write=write_coco,
    extensions=(".json",),
    priority=10,
    produces=frozenset({"boxes", "polygons", "parts", "instances", "points"}),
    extras=("id", "other annotation fields"),
    object_fields=coco_object_fields,
    family="coco",
    holds={
        "mask": exact("traced into outlines, RLE where a region has holes (pycocotools decodes the same pixels)"),
        "instances": exact("RLE, one annotation per object"),
        "polygons": exact(),
        "holed polygons": lossy("become RLE masks: a COCO polygon cannot have holes", PIXELS),
        "parts": exact("one annotation of several polygons"),
        "boxes": exact(),
        "slice boxes": exact("one COCO image per annotated slice"),
        "cells": exact("boxes of the cell's size"),
        "points": exact("one-keypoint annotations"),
        "region": exact("kept as the image's annotated_xyxy"),
    },
    layers="tagged",
    check=needs_image_size("COCO"),
)
