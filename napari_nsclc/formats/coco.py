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

Writing lives in :mod:`napari_nsclc.formats._coco_writer`; :func:`coco_from_cases`
and :func:`write_coco` here call it. This module keeps the JSON layout,
:class:`CocoFlavour`, reading, sniffing and the format's declaration.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import imageio
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
# The writer is napari_nsclc.formats._coco_writer. It imports this module (CocoFlavour, PLAIN,
# dump_json ...), so these entry points import it when called: either module can be imported first.


def coco_from_cases(cases: Sequence[Case], flavour: CocoFlavour = PLAIN, **options) -> tuple[dict, dict]:
    """A COCO-like document for ``cases``, and the JSON layout to write it with.

    See :func:`napari_nsclc.formats._coco_writer.coco_from_cases`.
    """
    from . import _coco_writer

    return _coco_writer.coco_from_cases(cases, flavour, **options)


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
    from . import _coco_writer

    return _coco_writer._write(cases, Path(path), PLAIN, overwrite, options)


def _write(cases, path: Path, flavour: CocoFlavour, overwrite: bool, options: dict) -> list[Path]:
    """Write ``cases`` as one JSON file of the dialect ``flavour`` (MIDOG's and IGNITE's writers call this)."""
    from . import _coco_writer

    return _coco_writer._write(cases, path, flavour, overwrite, options)


def _collector_paused():
    """A context pausing the cyclic garbage collector: :func:`napari_nsclc.formats._coco_writer._collector_paused`."""
    from . import _coco_writer

    return _coco_writer._collector_paused()


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
