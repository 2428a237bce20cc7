"""COCO nuclei, read in bulk into a :class:`NucleusSet` and written back exactly.

The COCO twin of :mod:`.geojson`: the annotations are found (:mod:`.jsonscan`)
and parsed in batches, on two processes when there are many; the rest of the
document (``images``, ``categories`` ...) is small and parsed whole. Class
codes are the ``category_id`` values. Writing copies untouched annotations
byte for byte; a reclassified one gets its new ``category_id``, a redrawn one
a new one-polygon ``segmentation``, ``bbox`` and ``area``, every other field
kept; deleted ones are left out and nuclei drawn here appended.

Odd annotations are counted (:class:`~.model.Problems`): several polygons
show the largest and are written back whole; an unknown or missing
``category_id`` loads as "Unclassified"; RLE masks, empty, odd-length, NaN or
non-numeric polygons and unparsable annotations are not shown and are
written back unchanged.
"""

from __future__ import annotations

import itertools
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from ..formats._coco_writer import _collector_paused
from ..formats.coco import _fail_if_not_coco, _numbers, schema_from_categories
from ..model import CORNER, ClassInfo, ClassSchema, NsclcFormatError, color_to_hex, default_color, to_file
from .geojson import (
    BATCH,
    EMPTY,
    MALFORMED,
    NAN,
    UNPARSABLE,
    GeoJsonSource,
    run_parts,
    _clean,
    assemble,
)
from .jsonscan import ArraySpans, array_spans, copy_elements, parse_batches, read_spans, scan
from .model import UNCLASSIFIED, NucleusSet, Problems, ring_bounds

__all__ = ["CocoSource", "read", "write"]

RLE = "an RLE segmentation"
NO_SEGMENTATION = "no polygon segmentation"
EMPTY_SEGMENTATION = "an empty segmentation"
ODD = "an odd number of polygon coordinates"
SEVERAL = "several polygons (shown by the largest, written back whole)"
NO_CATEGORY = "an unknown or missing category_id (loaded as Unclassified)"
#: Largest category id usable as a class code (:class:`NucleusSet` keeps codes as uint16).
MAX_CODE = 65534


@dataclass
class CocoSource:
    """The COCO file a :class:`NucleusSet` came from: where each annotation lies, and the rest of the document.

    ``document`` is the parsed file with an empty ``annotations`` list;
    ``max_id`` the largest integer annotation id (new annotations count on from it).
    """

    path: Path
    spans: ArraySpans
    mtime_ns: int
    document: dict
    max_id: int = 0
    format: str = "coco"

    # the same test as GeoJSON's (size and mtime of the file read); not a subclass, so the
    # GeoJSON writer never takes a COCO set for one of its own
    check_unchanged = GeoJsonSource.check_unchanged


# --------------------------------------------------------------------------- reading


def _numeric(flat) -> np.ndarray | None:
    try:
        array = np.asarray(flat, dtype=float)
    except (TypeError, ValueError):
        return None
    return array if array.ndim == 1 else None


def _largest(segmentation) -> tuple[list | None, str | None]:
    """The largest polygon (a flat ``[x0, y0, ...]`` list) of an unusual segmentation, or the problem that hides it."""
    if isinstance(segmentation, dict):
        return None, RLE
    if type(segmentation) is not list:
        return None, NO_SEGMENTATION
    if all(type(part) is list and not part for part in segmentation):
        return None, EMPTY_SEGMENTATION
    if any(type(part) is not list for part in segmentation):
        return None, MALFORMED
    if any(len(part) % 2 for part in segmentation):
        return None, ODD
    largest = max(segmentation, key=len)
    if len(largest) < 6:
        return None, EMPTY
    # the other parts are written back whole, so they too must be numbers (the largest is checked in bulk)
    for array in (_numeric(part) for part in segmentation if part is not largest):
        if array is None or not np.isfinite(array).all():
            return None, MALFORMED if array is None else NAN
    return largest, None


def _batch(elements: list, first: int, categories: frozenset, problems: Problems, several: list) -> dict:
    """The arrays of one parsed batch of annotations (see :func:`_extract`); unknown categories get code -1."""
    flats, codes, records, max_id = [], [], [], 0
    for k, annotation in enumerate(elements):
        record = first + k
        if type(annotation) is not dict:
            problems.add(UNPARSABLE, record, skipped=True)
            continue
        number = annotation.get("id")
        if type(number) is int and number > max_id:
            max_id = number  # over every annotation, shown or not: new ids must not clash with any
        segmentation = annotation.get("segmentation")
        # the common case (one polygon) inline: this loop runs a million times
        if (type(segmentation) is list and len(segmentation) == 1 and type(segmentation[0]) is list
                and len(segmentation[0]) >= 6 and not len(segmentation[0]) % 2):
            flat = segmentation[0]
        else:
            flat, problem = _largest(segmentation)
            if problem:
                problems.add(problem, record, skipped=True)
                continue
            if len(segmentation) > 1:
                several.append(record)
        category = annotation.get("category_id")
        codes.append(category if type(category) is int and category in categories else -1)
        flats.append(flat)
        records.append(record)
    try:
        values = np.fromiter(itertools.chain.from_iterable(flats), float, sum(map(len, flats)))
    except (TypeError, ValueError):  # text or nested lists somewhere: polygon by polygon
        arrays = [_numeric(flat) for flat in flats]
        for k in [k for k, array in enumerate(arrays) if array is None]:
            problems.add(MALFORMED, records[k], skipped=True)
        kept = [k for k, array in enumerate(arrays) if array is not None]
        flats, codes, records = [arrays[k] for k in kept], [codes[k] for k in kept], [records[k] for k in kept]
        values = np.concatenate(flats) if flats else np.zeros(0)
    return {"vertices": values.reshape(-1, 2), "lengths": np.fromiter((len(f) // 2 for f in flats), np.int64),
            "codes": np.asarray(codes, np.int64), "records": np.asarray(records, np.int64), "max_id": max_id}


def _extract(path: str, starts: np.ndarray, ends: np.ndarray, first: int, categories: frozenset,
             progress=None) -> dict:
    """Rings (``[x, y]`` as in the file), codes, records and problems of annotations ``first ...``: one process."""
    spans = ArraySpans(starts, ends, -1, -1, "", 0)
    problems, several, parts = Problems(), [], []
    with _collector_paused():  # no cycles are made here, and collections over millions of young lists cost seconds
        for offset, elements in parse_batches(path, spans, BATCH):
            parts.append(_clean(_batch(elements, first + offset, categories, problems, several), problems))
            if progress is not None:
                progress(offset + len(elements))
    part = {key: np.concatenate([p[key] for p in parts]) if parts else np.zeros((0, 2) if key == "vertices" else 0)
            for key in ("vertices", "lengths", "codes", "records")}
    # noted only for annotations that are shown, so a record is never both loaded and skipped
    for record in part["records"][np.isin(part["records"], several)].tolist():
        problems.add(SEVERAL, record)
    for record in part["records"][part["codes"] < 0].tolist():
        problems.add(NO_CATEGORY, record)
    return {**part, "problems": problems, "max_id": max((p["max_id"] for p in parts), default=0)}


def _document(path: Path, spans: ArraySpans) -> dict:
    """Everything but the annotations, parsed from the bytes around the annotations array."""
    if spans.layout != "object":
        raise NsclcFormatError(path, "is not a COCO file: the top level is not an object")
    with open(path, "rb") as handle:
        prefix = handle.read(spans.array_start)
        handle.seek(spans.array_end)
        text = prefix + b"[]" + handle.read()
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError:
        try:
            document = json.loads(text)  # NaN or Infinity, which Python's json writes
        except ValueError as error:
            raise NsclcFormatError(path, f"is not valid JSON outside its annotations: {error}") from error
    _fail_if_not_coco(document, path)
    return document


def read(path: str | Path, *, progress: Callable[[str, int, int], None] | None = None,
         workers: int | None = None, name: str | None = None, spans: ArraySpans | None = None) -> NucleusSet:
    """Read the polygon annotations of a COCO file as nuclei (classes = categories).

    Parameters
    ----------
    path : path
    progress : callable, optional
        ``progress(stage, done, total)``: ``"scan"`` in bytes, then ``"parse"`` in annotations.
    workers : int or Workers, optional
        Child processes that parse (or ones already started); by default two from
        :data:`~.geojson.PARALLEL_FROM` annotations on two cores, else the parsing is done here.
    name : str, optional
        The set's name (default: the file's stem).

    Raises
    ------
    NsclcFormatError
        When the file is not COCO-shaped, or holds no usable polygon annotation.
    """
    path = Path(path)
    spans, mtime_ns = scan(path, "annotations", spans, progress)
    try:
        document = _document(path, spans)
    except OSError as error:
        raise NsclcFormatError(path, f"cannot be read: {error.strerror or error}") from error
    categories: dict[int, dict] = {}
    for category in document.get("categories", []):
        code = category.get("id") if isinstance(category, dict) else None
        if type(code) is int and 0 <= code <= MAX_CODE:
            categories.setdefault(code, category)  # the first of a duplicated id wins, as in pycocotools' index
    kinds = frozenset(categories)
    parts = run_parts(_extract, len(spans.starts),
                      lambda a, b: (str(path), spans.starts[a:b], spans.ends[a:b], a, kinds), workers, progress)
    problems = Problems()
    for part in parts:
        for kind, records in part["problems"].found.items():
            for record in records:
                problems.add(kind, record, skipped=kind in part["problems"].skipped)
    problems.found = {kind: sorted(records) for kind, records in problems.found.items()}
    codes = np.concatenate([part["codes"] for part in parts]) if parts else np.zeros(0, np.int64)
    if not len(codes):
        detail = "; ".join(f"{len(r)} with {k}" for k, r in problems.found.items()) or "no annotations"
        raise NsclcFormatError(path, f"holds no usable nucleus outline ({detail})")
    schema = schema_from_categories(list(categories.values()))
    if (codes < 0).any():
        if UNCLASSIFIED not in schema:
            free = max(schema.codes, default=0) + 1
            schema = ClassSchema(schema.name, (*schema.classes, ClassInfo(free, UNCLASSIFIED, default_color(free))),
                                 background=None)
        codes[codes < 0] = schema.code_of(UNCLASSIFIED)
    source = CocoSource(path, spans, mtime_ns, document, max(part["max_id"] for part in parts))
    vertices, offsets, records = assemble(parts)
    return NucleusSet(vertices, offsets, codes, schema, records=records, source=source, problems=problems,
                      name=name or path.stem)


# --------------------------------------------------------------------------- writing


def _geometries(rings: list[np.ndarray]) -> list[dict]:
    """COCO ``segmentation``, ``area`` and ``bbox`` of model rings ``(y, x)``, computed in bulk."""
    import shapely

    if not rings:
        return []
    lengths = np.fromiter(map(len, rings), np.int64, len(rings))
    yx = np.concatenate(rings)
    xy = to_file(yx[:, ::-1], CORNER)
    areas = shapely.area(shapely.polygons(shapely.linearrings(xy, indices=np.repeat(np.arange(len(rings)), lengths))))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).tolist()
    y0, x0, y1, x1 = to_file(ring_bounds(yx, np.asarray(offsets)), CORNER).T
    # ints where integral, so a redrawn annotation looks like the untouched ones
    boxes = _numbers(np.round(np.column_stack([x0, y0, x1 - x0, y1 - y0]), 10))
    flat, areas = _numbers(xy), _numbers(np.round(areas, 6))
    return [{"segmentation": [flat[2 * a:2 * b]], "area": areas[k], "bbox": boxes[4 * k:4 * k + 4]}
            for k, (a, b) in enumerate(zip(offsets[:-1], offsets[1:], strict=True))]


def _category(info: ClassInfo) -> dict:
    # the colour is not COCO, but the readers here keep it (pycocotools ignores it)
    return {"id": info.code, "name": info.name, "supercategory": "", "color": color_to_hex(info.color)}


def write(nuclei: NucleusSet, path: str | Path, *, overwrite: bool = False,
          progress: Callable[[int, int], None] | None = None, image_size: tuple[int, int] | None = None) -> Path:
    """Write ``nuclei`` as COCO: untouched annotations copied byte for byte from a COCO source.

    A set read from something else (GeoJSON) is written as a new one-image
    document, the image ``image_size`` ``(h, w)`` (default: the nuclei's
    extent, rounded up). The write is atomic; the source file is never written to.

    Raises
    ------
    NsclcFormatError
        When ``path`` exists and ``overwrite`` is false, is the source itself,
        or the source changed since it was read.
    """
    from .._atomic import atomic_path, refuse_overwrite

    path = Path(path)
    source_path = getattr(nuclei.source, "path", None)
    if source_path is not None and path.exists() and path.resolve() == Path(source_path).resolve():
        raise NsclcFormatError(path, "is the file these nuclei were read from; originals are never overwritten")
    refuse_overwrite(path, overwrite)
    # the writers build many small dicts and lists, none in a cycle: collection passes would cost most of the time
    with atomic_path(path) as tmp, open(tmp, "wb") as out, _collector_paused():
        if isinstance(nuclei.source, CocoSource):
            nuclei.source.check_unchanged()
            _write_copying(nuclei, nuclei.source, out, progress)
        else:
            _write_new(nuclei, out, image_size, progress)
    return path


def _write_new(nuclei: NucleusSet, out, image_size, progress) -> None:
    kept = np.flatnonzero(~nuclei.deleted)
    if image_size is None:
        high = to_file(nuclei.bounds[kept, 2:].max(0), CORNER) if len(kept) else np.zeros(2)
        image_size = np.ceil(high)
    height, width = (int(v) for v in image_size)
    stem = Path(nuclei.source.path).stem if hasattr(nuclei.source, "path") else nuclei.name
    head = {"images": [{"id": 1, "file_name": stem, "width": width, "height": height}],
            "categories": [_category(info) for info in nuclei.schema.classes]}
    out.write(orjson.dumps(head)[:-1] + b',"annotations":[\n')
    for first in range(0, len(kept), BATCH):
        chunk = kept[first:first + BATCH]
        annotations = [{"id": first + k + 1, "image_id": 1, "category_id": code, **geometry, "iscrowd": 0}
                       for k, (code, geometry) in enumerate(zip(nuclei.codes[chunk].tolist(),
                                                                _geometries([nuclei.ring(i) for i in chunk]),
                                                                strict=True))]
        out.write((b",\n" if first else b"") + b",\n".join(map(orjson.dumps, annotations)))
        if progress is not None:
            progress(first + len(chunk), len(kept))
    out.write(b"\n]}\n")


def _add_categories(prefix: bytes, suffix: bytes, entries: list[dict]) -> tuple[bytes, bytes]:
    """``prefix`` and ``suffix`` (the document around its annotations) with ``entries`` appended to ``categories``.

    The categories array is found by the same structural scan as the
    annotations, and the new entries go after its last element with the
    separator the file uses, so every other byte stays.
    """
    text, hole = prefix + b"[]" + suffix, len(prefix)
    with tempfile.TemporaryDirectory(prefix="nsclc-coco-") as folder:
        probe = Path(folder) / "document.json"
        probe.write_bytes(text)
        try:
            found = array_spans(probe, "categories")
        except NsclcFormatError:
            found = None
    if found is None:  # no categories array at all: add one at the end of the root object
        at, insert = len(text.rstrip()) - 1, b',"categories":' + orjson.dumps(entries)
    elif len(found.starts):
        separator = text[found.ends[0]:found.starts[1]] if len(found.starts) > 1 else b","
        at, insert = int(found.ends[-1]), separator + separator.join(map(orjson.dumps, entries))
    else:
        at, insert = found.array_start + 1, b",".join(map(orjson.dumps, entries))
    text = text[:at] + insert + text[at:]
    hole += len(insert) if at <= hole else 0
    return text[:hole], text[hole + 2:]


def _rewritten(raw: bytes, updates: dict) -> bytes:
    """An annotation's text with ``updates``, every other field kept."""
    try:
        return orjson.dumps({**orjson.loads(raw), **updates})
    except orjson.JSONDecodeError:  # NaN in a field the reader ignores (a score): Python's json keeps it
        return json.dumps({**json.loads(raw), **updates}).encode()


def _write_copying(nuclei: NucleusSet, source: CocoSource, out, progress) -> None:
    spans = source.spans
    total = len(spans.starts)
    nucleus_of, keep, changed, new = nuclei.record_changes(total)
    known = nuclei.records >= 0
    old = nuclei.edited[known[nuclei.edited]]
    redrawn = sorted({i for i in nuclei.outlines if not nuclei.deleted[i]} | set(new))
    geometry = dict(zip(redrawn, _geometries([nuclei.ring(i) for i in redrawn]), strict=True))
    recoded = [i for i in old.tolist() if not nuclei.deleted[i] and nuclei.codes[i] != nuclei.original_codes[i]]
    have = {c.get("id") for c in source.document.get("categories", []) if isinstance(c, dict)}
    missing = sorted({int(nuclei.codes[i]) for i in recoded + new} - have)

    with open(source.path, "rb") as src:
        # the document around the annotations array, and the array's own bytes before its first and after its last
        prefix = src.read(spans.array_start)
        head_end, tail_start = (int(spans.starts[0]), int(spans.ends[-1])) if total else (spans.array_end - 1,) * 2
        opening = src.read(head_end - spans.array_start)
        src.seek(tail_start)
        closing, suffix = src.read(spans.array_end - tail_start), src.read()
        separator = read_spans(src, spans.ends[:1], spans.starts[1:2])[0] if total > 1 else b","
        if missing:
            prefix, suffix = _add_categories(prefix, suffix, [_category(nuclei.schema.by_code(c)) for c in missing])
        out.write(prefix + opening)

        def rewrite(record: int, raw: bytes) -> bytes:
            i = int(nucleus_of[record])
            update = dict(geometry.get(i, {}))
            if nuclei.codes[i] != nuclei.original_codes[i]:
                update["category_id"] = int(nuclei.codes[i])
            return _rewritten(raw, update)

        written = copy_elements(src, spans, out, keep, changed, rewrite, progress, BATCH)
        images = source.document.get("images") or [{}]
        image_id = images[0].get("id") if isinstance(images[0], dict) else None
        for number, i in enumerate(new, start=source.max_id + 1):
            annotation = {"id": number, "image_id": image_id, "category_id": int(nuclei.codes[i]), **geometry[i],
                          "iscrowd": 0}
            out.write((separator if written else b"") + orjson.dumps(annotation))
            written += 1
        out.write(closing + suffix)
