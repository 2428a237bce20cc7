"""Writing COCO-like JSON: model cases back into ``images``, ``annotations`` and ``categories``.

The writing half of :mod:`napari_nsclc.formats.coco`, which re-exports its entry
points (:func:`~napari_nsclc.formats.coco.coco_from_cases`,
:func:`~napari_nsclc.formats.coco.write_coco`) and keeps the reading, the JSON
layout and :class:`~napari_nsclc.formats.coco.CocoFlavour`. Annotations read
from a file and not edited are written back as their original dicts; edited
ones are updated in place of the original, new ones get new ids and
categories; label masks are traced into polygons, or RLE where a region has
holes. This module imports :mod:`~napari_nsclc.formats.coco` (not the other
way round), and, starting with ``_``, is not registered as a format.
"""

from __future__ import annotations

import contextlib
import gc
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_write_text, refuse_overwrite
from ..model import CORNER, BoxSet, Case, ImageRef, LabelMask, Polygon, from_file, image_size, to_file
from .coco import (
    PLAIN,
    CocoFlavour,
    _digest,
    _finite,
    _number,
    _numbers,
    _polygon_rings,
    dump_json,
    schema_from_categories,
)


def _ring_area(ring: np.ndarray) -> float:
    """Shoelace area of a ring of ``(y, x)`` vertices, in square pixels."""
    ring = np.asarray(ring, dtype=float)
    y, x = ring[:, -2], ring[:, -1]
    twice = np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1]) + x[-1] * y[0] - x[0] * y[-1]
    return 0.5 * abs(float(twice))


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
