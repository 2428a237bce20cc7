"""QuPath GeoJSON nuclei, read in bulk into a :class:`NucleusSet` and written back exactly.

Reading finds each feature's bytes (:mod:`.jsonscan`), parses them in batches
of 20,000 with orjson, and keeps only each nucleus's exterior ring (in one
vertex array), its class code and its feature index. Above
:data:`PARALLEL_FROM` features the batches are parsed by two child
processes (see :mod:`._workers`).

Writing copies every untouched feature byte for byte from the source, so a
file saved without edits is identical to it. A reclassified feature gets its
new ``classification`` and keeps every other field; a redrawn one gets a new
``Polygon``; a deleted one is left out; a nucleus drawn here is appended.

Odd features are counted (:class:`~.model.Problems`): a feature with no
classification loads as "Unclassified"; a MultiPolygon shows its largest part
and is written back whole; a self-intersecting outline loads as it is; empty
polygons, NaN coordinates, other geometries and unparsable features are not
shown and are written back unchanged.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..model import CORNER, ClassInfo, ClassSchema, NsclcFormatError, default_color, to_file
from .jsonscan import ArraySpans, array_spans, copy_elements, parse_batches, read_spans, scan
from .model import UNCLASSIFIED, NucleusSet, Problems

__all__ = ["GeoJsonSource", "count_features", "read", "write"]

#: From this many features, parse on two child processes (starting one costs about 0.25 s).
PARALLEL_FROM = 50_000
BATCH = 20_000
NAN = "NaN coordinates"
EMPTY = "an empty polygon"
MULTI = "a MultiPolygon (shown by its largest part, written back whole)"
NO_CLASS = "no classification (loaded as Unclassified)"
INVALID = "a self-intersecting outline"
OTHER = "no polygon geometry"
UNPARSABLE = "unparsable JSON"
MALFORMED = "malformed coordinates"
SKIPPED = {NAN, EMPTY, OTHER, UNPARSABLE, MALFORMED}


@dataclass
class GeoJsonSource:
    """The file a :class:`NucleusSet` came from, and where each feature lies in it."""

    path: Path
    spans: ArraySpans
    mtime_ns: int
    format: str = "geojson"

    def check_unchanged(self) -> None:
        """Refuse to copy features from a source that changed since it was read."""
        try:
            stat = self.path.stat()
        except OSError as error:
            raise NsclcFormatError(self.path, f"the source is gone ({error.strerror}); cannot copy its records") \
                from error
        if stat.st_size != self.spans.size or stat.st_mtime_ns != self.mtime_ns:
            raise NsclcFormatError(self.path, "changed on disk since it was opened; open it again before saving")


def count_features(path: str | Path) -> int:
    """How many features a GeoJSON file holds (a structural scan, no parsing); 0 if it is not GeoJSON-shaped."""
    try:
        return len(array_spans(path).starts)
    except (NsclcFormatError, OSError):
        return 0


# --------------------------------------------------------------------------- reading


def _class_of(properties) -> tuple[str | None, object]:
    from ..formats.geojson import _colour_of

    classification = properties.get("classification") if isinstance(properties, dict) else None
    if isinstance(classification, dict) and classification.get("name"):
        return str(classification["name"]), _colour_of(classification)
    if isinstance(classification, str) and classification:
        return classification, None
    return None, None


def _ring_area(rings) -> float:
    """The area of a polygon's exterior ring (0 when it is not numbers): picks a MultiPolygon's largest part."""
    ring = _ring_array(rings[0])
    if ring is None or len(ring) < 3:
        return 0.0
    x, y = ring[:, 0], ring[:, 1]
    return abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))) / 2


def _usable(rings) -> bool:
    return type(rings) is list and len(rings) > 0 and type(rings[0]) is list and len(rings[0]) >= 3


def _exterior(geometry, problems: Problems, record: int):
    """The exterior ring (a list of positions) a nucleus is drawn by, or ``None`` (counted)."""
    kind = geometry.get("type") if isinstance(geometry, dict) else None
    coordinates = geometry.get("coordinates") if isinstance(geometry, dict) else None
    if kind == "Polygon":
        rings = coordinates
    elif kind == "MultiPolygon":
        problems.add(MULTI, record)
        parts = [part for part in coordinates or [] if isinstance(part, list) and part and isinstance(part[0], list)]
        rings = max(parts, key=_ring_area, default=None)
    else:
        problems.add(OTHER, record, skipped=True)
        return None
    if not _usable(rings):
        problems.add(EMPTY, record, skipped=True)
        return None
    return rings[0]


def _flat(rings: list[list]) -> np.ndarray | None:
    """All positions of ``rings`` as ``(V, 2)`` floats in one pass; ``None`` if any position is not 2 numbers."""
    count = sum(map(len, rings))
    try:
        flat = np.fromiter(itertools.chain.from_iterable(itertools.chain.from_iterable(rings)), float)
    except (TypeError, ValueError):
        return None
    return flat.reshape(-1, 2) if flat.size == 2 * count else None  # [x, y, z] positions: ring by ring


def _ring_array(ring) -> np.ndarray | None:
    try:
        array = np.asarray(ring, dtype=float)
    except (TypeError, ValueError):
        return None
    return array[:, :2] if array.ndim == 2 and array.shape[1] >= 2 else None


def _extract(path: str, starts: np.ndarray, ends: np.ndarray, first: int, progress=None) -> dict:
    """Rings, class codes and problems of features ``first ...``: the work of one process.

    Each batch's rings become one numpy array as soon as it is parsed, so the
    Python lists of one batch only are alive at a time. Returns ``vertices``
    ``(V, 2)`` ``[x, y]`` as in the file, ``lengths`` per ring, ``codes`` into
    ``classes``, the feature index of each ring (``records``), the first
    colour seen per class and the :class:`Problems`.
    """
    import gc

    spans = ArraySpans(starts, ends, -1, -1, "", 0)
    classes: dict[str, int] = {}
    colours: dict[str, object] = {}
    parts = []
    problems = Problems()
    enabled = gc.isenabled()
    gc.disable()  # no cycles are made here, and collections over millions of young lists cost seconds
    try:
        for offset, elements in parse_batches(path, spans, BATCH):
            # cleaned batch by batch: the validity check's shapely polygons stay 20k at a time
            parts.append(_clean(_batch(elements, first + offset, classes, colours, problems), problems))
            if progress is not None:
                progress(offset + len(elements))
    finally:
        if enabled:
            gc.enable()
    part = {key: np.concatenate([p[key] for p in parts]) if parts else np.zeros((0, 2) if key == "vertices" else 0)
            for key in ("vertices", "lengths", "codes", "records")}
    part.update(classes=list(classes), colours=colours, problems=problems)
    return part


def _batch(elements: list, first: int, classes: dict, colours: dict, problems: Problems) -> dict:
    """The arrays of one parsed batch of features (see :func:`_extract`)."""
    rings, codes, records = [], [], []
    for k, feature in enumerate(elements):
        record = first + k
        if type(feature) is not dict:
            problems.add(UNPARSABLE, record, skipped=True)
            continue
        geometry = feature.get("geometry")
        # the common case (a Polygon with an exterior ring) inline: this loop runs a million times
        if type(geometry) is dict and geometry.get("type") == "Polygon" and _usable(geometry.get("coordinates")):
            ring = geometry["coordinates"][0]
        else:
            ring = _exterior(geometry, problems, record)
            if ring is None:
                continue
        properties = feature.get("properties")
        classification = properties.get("classification") if type(properties) is dict else None
        name = classification.get("name") if type(classification) is dict else classification
        if not name or type(name) is not str:
            problems.add(NO_CLASS, record)
            name, classification = UNCLASSIFIED, None
        code = classes.get(name)
        if code is None:
            code = classes[name] = len(classes)
            colours[name] = _class_of(properties)[1] if classification is not None else None
        rings.append(ring)
        codes.append(code)
        records.append(record)
    vertices = _flat(rings)
    if vertices is None:  # a position of three numbers, or text: ring by ring
        arrays = [_ring_array(ring) for ring in rings]
        keep = [array is not None for array in arrays]
        for record, kept in zip(records, keep, strict=False):
            if not kept:
                problems.add(MALFORMED, record, skipped=True)
        rings = [array for array in arrays if array is not None]
        codes = [c for c, kept in zip(codes, keep, strict=False) if kept]
        records = [r for r, kept in zip(records, keep, strict=False) if kept]
        vertices = np.concatenate(rings) if rings else np.zeros((0, 2))
    return {"vertices": vertices, "lengths": np.fromiter(map(len, rings), np.int64, len(rings)),
            "codes": np.asarray(codes, np.int64), "records": np.asarray(records, np.int64)}


def _clean(part: dict, problems: Problems) -> dict:
    """Drop rings with NaN coordinates or fewer than three distinct vertices; open closed rings; note crossings."""
    import shapely

    vertices, lengths, records = part["vertices"], part["lengths"], part["records"]
    if not len(lengths):
        return part
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    finite = np.logical_and.reduceat(np.isfinite(vertices).all(1), offsets[:-1]) if len(vertices) else lengths > 0
    closed = np.all(vertices[offsets[:-1]] == vertices[offsets[1:] - 1], axis=1)
    open_lengths = lengths - closed
    keep = finite & (open_lengths >= 3)
    for record in records[~finite]:
        problems.add(NAN, int(record), skipped=True)
    for record in records[finite & (open_lengths < 3)]:
        problems.add(EMPTY, int(record), skipped=True)
    drop_last = np.zeros(len(vertices), bool)
    drop_last[offsets[1:][closed] - 1] = True
    vertex_keep = np.repeat(keep, lengths) & ~drop_last
    vertices, lengths = vertices[vertex_keep], open_lengths[keep]
    codes, records = part["codes"][keep], records[keep]
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    polygons = shapely.polygons(shapely.linearrings(vertices, indices=np.repeat(np.arange(len(lengths)), lengths)))
    for record in records[~shapely.is_valid(polygons)]:
        problems.add(INVALID, int(record))
    return {**part, "vertices": vertices, "lengths": lengths, "codes": codes, "records": records}


def assemble(parts: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model vertices ``(V, 2)`` ``(y, x)``, ring offsets and record indices of the parsed parts, in order.

    Each part's file ``[x, y]`` vertices are turned into model coordinates in
    place and dropped as they are copied, so the million-nucleus vertex array
    exists twice at most, not three times.
    """
    lengths = np.concatenate([part["lengths"] for part in parts])
    vertices = np.empty((int(lengths.sum()), 2))
    start = 0
    for part in parts:
        flat = part.pop("vertices")
        vertices[start:start + len(flat)] = flat[:, ::-1]
        start += len(flat)
        del flat
    vertices -= CORNER  # file pixel corners -> model pixel centres, as model.from_file does
    records = np.concatenate([part["records"] for part in parts])
    return vertices, np.concatenate([[0], np.cumsum(lengths)]), records


def run_parts(extract: Callable, total: int, job: Callable, workers=None, progress=None) -> list[dict]:
    """``extract(*job(a, b), progress=...)`` over ranges ``[a, b)`` of ``total`` records, in child processes
    from :data:`PARALLEL_FROM` records (``workers``: a count, or started :class:`._workers.Workers`), else here."""
    from . import _workers

    started = workers if isinstance(workers, _workers.Workers) else None
    if started is not None:
        count = len(started) if total >= PARALLEL_FROM else 1
    else:
        count = workers if workers is not None else (2 if total >= PARALLEL_FROM and (os.cpu_count() or 1) >= 2
                                                     else 1)
    jobs = [job(a, b) for a, b in _chunks(total, max(1, count))]
    report = None if progress is None else (lambda done: progress("parse", done, total))
    if len(jobs) < 2:
        return [extract(*args, progress=report) for args in jobs]
    if started is not None:
        return started.run(extract, jobs, report)
    return _workers.run(extract, jobs, report)


def _chunks(total: int, parts: int) -> list[tuple[int, int]]:
    bounds = np.linspace(0, total, parts + 1).astype(int)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=False) if b > a]


def read(path: str | Path, *, progress: Callable[[str, int, int], None] | None = None,
         workers: int | None = None, name: str | None = None, spans: ArraySpans | None = None) -> NucleusSet:
    """Read a GeoJSON file of nuclei (a ``FeatureCollection`` or a list of features).

    Parameters
    ----------
    path : path
    progress : callable, optional
        ``progress(stage, done, total)``: ``"scan"`` in bytes, then ``"parse"`` in features.
    workers : int or Workers, optional
        Child processes that parse (or ones already started); by default two from :data:`PARALLEL_FROM`
        features when two cores exist, else the parsing is done here.
    name : str, optional
        The set's name (default: the file's stem).
    spans : ArraySpans, optional
        The features' spans when the caller already scanned the file (:func:`napari_nsclc.nuclei.bulk_spans`).

    Raises
    ------
    NsclcFormatError
        When the file is not GeoJSON-shaped, or holds no usable nucleus.
    """
    path = Path(path)
    spans, mtime_ns = scan(path, "features", spans, progress)
    parts = run_parts(_extract, len(spans.starts), lambda a, b: (str(path), spans.starts[a:b], spans.ends[a:b], a),
                      workers, progress)
    problems = Problems()
    for part in parts:
        for kind, records in part["problems"].found.items():
            for record in records:
                problems.add(kind, record, skipped=kind in SKIPPED)
    colours: dict[str, object] = {}
    for part in parts:
        for class_name in part["classes"]:
            if colours.get(class_name) is None:
                colours[class_name] = part["colours"].get(class_name)
    lookup = {class_name: code for code, class_name in enumerate(colours, start=1)}
    codes = np.concatenate([np.asarray([lookup[n] for n in part["classes"]] or [0], np.int64)[part["codes"]]
                            for part in parts])
    if not len(codes):
        detail = "; ".join(f"{len(r)} with {k}" for k, r in problems.found.items()) or "no features"
        raise NsclcFormatError(path, f"holds no usable nucleus outline ({detail})")
    schema = ClassSchema("geojson", tuple(ClassInfo(code, class_name, colour or default_color(code))
                                          for code, (class_name, colour) in enumerate(colours.items(), start=1)))
    vertices, offsets, records = assemble(parts)
    problems.found = {kind: sorted(records) for kind, records in problems.found.items()}
    return NucleusSet(vertices, offsets, codes, schema, records=records, source=GeoJsonSource(path, spans, mtime_ns),
                      problems=problems, name=name or path.stem)


# --------------------------------------------------------------------------- writing


def _ring_coordinates(ring_yx: np.ndarray) -> list[list[float]]:
    from ..formats.geojson import _number

    xy = to_file(np.asarray(ring_yx, float)[:, ::-1], CORNER)
    positions = [[_number(x), _number(y)] for x, y in xy]
    return positions + positions[:1]


def _classification(nuclei: NucleusSet, name: str) -> dict:
    rgb = [round(c * 255) for c in nuclei.schema.color_of(name)[:3]]
    return {"name": name, "color": rgb}


def _changed_feature(raw: bytes, nuclei: NucleusSet, i: int) -> bytes:
    """A feature's text with nucleus ``i``'s class and outline, every other field kept."""
    import orjson

    from ..formats.geojson import _classification as stored_or_new

    try:
        feature = orjson.loads(raw)
    except orjson.JSONDecodeError:  # NaN in a measurement: Python's json reads and writes it back
        import json

        feature = json.loads(raw)
    name = nuclei.class_names([i])[0]
    properties = dict(feature.get("properties") or {})
    classification = stored_or_new(feature, name, nuclei.schema)
    if classification is None:
        properties.pop("classification", None)
    else:
        properties["classification"] = classification
    feature["properties"] = properties
    if i in nuclei.outlines:
        feature["geometry"] = {"type": "Polygon", "coordinates": [_ring_coordinates(nuclei.outlines[i])]}
    try:
        return orjson.dumps(feature)
    except TypeError:
        import json

        return json.dumps(feature).encode()


def _new_feature(nuclei: NucleusSet, i: int) -> bytes:
    import orjson

    name = nuclei.class_names([i])[0]
    properties: dict = {"objectType": "detection"}
    if name != UNCLASSIFIED:
        properties["classification"] = _classification(nuclei, name)
    return orjson.dumps({"type": "Feature", "id": str(uuid.uuid4()),
                         "geometry": {"type": "Polygon", "coordinates": [_ring_coordinates(nuclei.ring(i))]},
                         "properties": properties})


def write(nuclei: NucleusSet, path: str | Path, *, overwrite: bool = False,
          progress: Callable[[int, int], None] | None = None) -> Path:
    """Write ``nuclei`` as GeoJSON: untouched features copied byte for byte from the source.

    A set read from something else (COCO) is written as a new ``FeatureCollection``.
    The write is atomic; the source file is never written to.

    Raises
    ------
    NsclcFormatError
        When ``path`` exists and ``overwrite`` is false, is the source itself,
        or the source changed since it was read.
    """
    from .._atomic import atomic_path, refuse_overwrite

    path = Path(path)
    source = nuclei.source if isinstance(nuclei.source, GeoJsonSource) else None
    source_path = getattr(nuclei.source, "path", None)
    if source_path is not None and path.resolve() == Path(source_path).resolve():
        raise NsclcFormatError(path, "is the file these nuclei were read from; originals are never overwritten")
    refuse_overwrite(path, overwrite)
    with atomic_path(path) as tmp, open(tmp, "wb") as out:
        if source is None:
            _write_new(nuclei, out)
        else:
            source.check_unchanged()
            _write_copying(nuclei, source, out, progress)
    return path


def _write_new(nuclei: NucleusSet, out) -> None:
    out.write(b'{"type":"FeatureCollection","features":[')
    first = True
    for i in np.flatnonzero(~nuclei.deleted).tolist():
        out.write((b"" if first else b",\n") + _new_feature(nuclei, i))
        first = False
    out.write(b"]}\n")


def _write_copying(nuclei: NucleusSet, source: GeoJsonSource, out, progress) -> None:
    spans = source.spans
    total = len(spans.starts)
    nucleus_of, keep, changed, new = nuclei.record_changes(total)
    with open(source.path, "rb") as src:
        separator = read_spans(src, spans.ends[:1], spans.starts[1:2])[0] if total > 1 else b","
        src.seek(0)
        out.write(src.read(int(spans.starts[0]) if total else spans.array_start + 1))
        written = copy_elements(src, spans, out, keep, changed,
                                lambda record, raw: _changed_feature(raw, nuclei, int(nucleus_of[record])),
                                progress, BATCH)
        for i in new:
            out.write((separator if written else b"") + _new_feature(nuclei, i))
            written += 1
        src.seek(int(spans.ends[-1]) if total else spans.array_end - 1)
        out.write(src.read())
