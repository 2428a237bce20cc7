"""Nuclei at slide scale: 100k to 1M classified outlines, read in bulk, drawn on demand, edited with undo.

* :mod:`.jsonscan` finds each record of a big JSON file without parsing the whole document;
* :mod:`.geojson` and :mod:`.coco` read into a :class:`~.model.NucleusSet` and write back exactly;
* :mod:`.model` holds the arrays, the selection, edits and undo;
* :mod:`.render` draws the outlines as a lazily drawn label pyramid for napari;
* :mod:`.editing` opens a region's outlines as plain polygons.

None of it imports napari or Qt.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ..model import NsclcFormatError
from .model import NucleusSet

__all__ = ["EVENTS", "NUCLEI_FROM", "NucleusSet", "bulk_spans", "read", "read_many", "record_save", "worth_scanning",
           "write"]

#: From this many polygon records a GeoJSON or COCO file opens as nuclei; smaller ones stay Shapes.
NUCLEI_FROM = 5000
#: A record takes at least ~200 bytes, so smaller files are not even scanned.
_SMALLEST_FILE = NUCLEI_FROM * 200
_KEYS = {"geojson": "features", "coco": "annotations"}


def worth_scanning(path, format_name: str) -> bool:
    """Whether ``path`` may hold :data:`NUCLEI_FROM` records: a GeoJSON or COCO file big enough."""
    path = Path(path)
    return format_name in _KEYS and path.is_file() and path.stat().st_size >= _SMALLEST_FILE


def bulk_spans(path, format_name: str):
    """Where the records of a GeoJSON (``"geojson"``) or COCO (``"coco"``) file of at least
    :data:`NUCLEI_FROM` records lie (:class:`~.jsonscan.ArraySpans`, handed on to :func:`read`);
    ``None`` for a smaller file or another format.

    The last two answers are kept (for the file's size and time stamp): a slide's reader asks about the
    GeoJSON beside it, and then the nuclei reader reads it, with one scan.
    """
    path = Path(path)
    if not worth_scanning(path, format_name):
        return None
    stat = path.stat()
    return _bulk_spans(str(path.resolve()), stat.st_size, stat.st_mtime_ns, format_name)


@lru_cache(maxsize=2)
def _bulk_spans(path: str, _size: int, _mtime_ns: int, format_name: str):
    from .jsonscan import array_spans

    path = Path(path)
    try:
        spans = array_spans(path, _KEYS[format_name])
    except (NsclcFormatError, OSError):
        return None
    if len(spans.starts) < NUCLEI_FROM or not _outlines_first(path, spans, format_name):
        return None
    return spans


def _outlines_first(path: Path, spans, format_name: str, sample: int = 50) -> bool:
    """Whether most of the first records are polygons: 10k GeoJSON points or COCO boxes stay Points and Shapes."""
    import orjson

    from .jsonscan import read_spans

    with open(path, "rb") as handle:
        texts = read_spans(handle, spans.starts[:sample], spans.ends[:sample])
    polygons = 0
    for text in texts:
        try:
            record = orjson.loads(text)
        except orjson.JSONDecodeError:
            continue
        if format_name == "geojson":
            geometry = record.get("geometry") if isinstance(record, dict) else None
            polygons += isinstance(geometry, dict) and geometry.get("type") in ("Polygon", "MultiPolygon")
        else:
            segmentation = record.get("segmentation") if isinstance(record, dict) else None
            polygons += isinstance(segmentation, list) and bool(segmentation)
    return polygons * 2 > len(texts)


def read_many(path, format_name: str, progress=None) -> NucleusSet | None:
    """The nuclei of a GeoJSON or COCO file of at least :data:`NUCLEI_FROM` polygon records, else ``None``.

    For a file big enough to be parsed by two child processes, they are
    started before the file is scanned, so that their start-up (about 0.25 s)
    overlaps the scan. ``progress`` is as for :func:`.geojson.read`.
    """
    import os

    from . import _workers
    from .geojson import PARALLEL_FROM

    path = Path(path)
    big = path.is_file() and path.stat().st_size >= PARALLEL_FROM * 200 and (os.cpu_count() or 1) >= 2
    with _workers.Workers(2 if big else 0) as workers:
        spans = bulk_spans(path, format_name)
        if spans is None:
            return None
        return read(path, format_name, progress=progress, spans=spans, workers=workers if big else None)


def read(path, format_name: str, **options) -> NucleusSet:
    """Read nuclei from a GeoJSON or COCO file (see :func:`.geojson.read`, :func:`.coco.read`)."""
    if format_name == "geojson":
        from . import geojson as module
    elif format_name == "coco":
        from . import coco as module
    else:
        raise NsclcFormatError(path, f"nuclei are read from GeoJSON or COCO, not {format_name}")
    return module.read(path, **options)


#: The edit log beside each saved file: one JSON line per save (who, when, from what, what changed).
EVENTS = "nsclc-events.jsonl"


def write(nuclei: NucleusSet, path, format_name: str | None = None, **options) -> Path:
    """Write nuclei as GeoJSON or COCO, chosen by ``format_name`` or the suffix (``.geojson``, else ``.json``
    for COCO), and record the save in ``nsclc-events.jsonl`` beside it (see :func:`record_save`)."""
    path = Path(path)
    format_name = format_name or ("geojson" if path.suffix.lower() == ".geojson" else "coco")
    if format_name == "geojson":
        from . import geojson as module
    elif format_name == "coco":
        from . import coco as module
    else:
        raise NsclcFormatError(path, f"nuclei are written as GeoJSON or COCO, not {format_name}")
    written = module.write(nuclei, path, **options)
    record_save(nuclei, written, format_name)
    return written


def record_save(nuclei: NucleusSet, path: Path, format_name: str) -> dict:
    """Append who saved ``path``, when, from which file, and what changed, to the edit log beside it."""
    from datetime import datetime, timezone

    from ..workflow.files import append_event
    from ..workflow.identity import annotator

    source = getattr(nuclei.source, "path", None)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    event = {"event": "nuclei saved", "annotator": annotator() or "unnamed", "time": now, "file": Path(path).name,
             "format": format_name, "source": str(source) if source is not None else None,
             "nuclei": int((~nuclei.deleted).sum()), **nuclei.edit_summary()}
    append_event(Path(path).parent / EVENTS, event)
    return event
