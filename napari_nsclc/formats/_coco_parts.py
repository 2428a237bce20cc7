"""One COCO file written in parts: each case's annotations made on their own, then streamed into the file.

``napari-nsclc convert`` writes thousands of masks as one COCO file. Tracing
each mask into outlines is the cost, and it depends on that case alone;
numbering images, annotations and categories depends on all cases, in order.
So the writing is split in two:

* :func:`case_part` turns one case into a *part*: its image record(s) and
  each annotation with its geometry already serialised, but no ids. It runs
  on any worker, in any order.
* :func:`write_parts` streams the file from the parts of all cases, in case
  order: it gives the ids, and splices each annotation's JSON from its part,
  so it holds one part in memory at a time, however large the dataset.

The file is byte for byte what :func:`napari_nsclc.formats.coco.write_coco`
writes for the same cases (a test compares them). Only for cases none of
whose objects was read from a COCO-like file: those keep their ids and their
source's order, and are written whole by ``write_coco``.

A part is UTF-8 text: a first line ``{"images": [...]}`` (image records with
``"id": null``), then one line per annotation, ``[piece, class, group]``, a
tab, and the annotation's JSON members after its ids (JSON text holds no raw
tab or newline). No napari or Qt import.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from .._atomic import atomic_path
from ..model import Case
from ._coco_writer import (
    _CategoryIndex,
    _collector_paused,
    _image_record,
    _image_root,
    _max_annotation_id,
    _records_from_case,
    _slice_cases,
    _write_geometry,
)
from .coco import PLAIN, CocoFlavour

__all__ = ["case_part", "image_root", "streamable", "write_parts"]

#: JSON as :func:`napari_nsclc.formats.coco.dump_json` writes a new file (one line, like pycocotools).
_SEPARATORS = (", ", ": ")


def _dumps(value) -> str:
    return json.dumps(value, separators=_SEPARATORS, ensure_ascii=False)


def streamable(cases: Sequence[Case]) -> bool:
    """Whether ``cases`` can be written in parts: nothing in them was read from a COCO-like file."""
    for case in cases:
        document = case.document
        if "coco" in document or "coco_image" in document or document.get("coco_max_annotation_id"):
            return False
        if any(m.attributes.get("coco_annotations") for m in case.masks):
            return False
        if any("coco" in a for objects in case.annotation_sets() for a in objects.attributes):
            return False
    return True


def image_root(cases: Sequence[Case]) -> Path | None:
    """The folder below which image ``file_name``\\ s are given (computed over all cases, once)."""
    return _image_root([piece for case in cases for piece in _slice_cases(case)])


def case_part(case: Case, root: Path | None, flavour: CocoFlavour = PLAIN, **options) -> str:
    """The part of one case: its image records and annotations, serialised, without ids.

    Parameters
    ----------
    case : Case
        Any case :func:`streamable` accepts (its masks are decoded and traced here).
    root : Path or None
        :func:`image_root` of all the cases written together.
    flavour : CocoFlavour
    **options
        As for :func:`~napari_nsclc.formats.coco.write_coco` (``points_as``, ``point_box_size``).

    Returns
    -------
    str
        The part's text (see the module's docstring).

    Raises
    ------
    ValueError
        When an object of the case was read from a COCO file (not streamable).
    """
    pieces = _slice_cases(case)
    images = [_image_record(piece, None, flavour, root) for piece in pieces]
    lines = [_dumps({"images": images})]
    with _collector_paused():
        for number, piece in enumerate(pieces):
            records: dict = {}
            _records_from_case(piece, flavour, options, records, [0])
            for record in records.values():
                if record.source is not None:
                    raise ValueError(f"case {case.name!r}: an annotation read from a COCO file; write the file whole")
                geometry: dict = {}
                _write_geometry(geometry, record, flavour)
                if record.layer is not None and not isinstance(geometry.get("layer"), str):
                    geometry["layer"] = record.layer
                head = _dumps([number, record.class_name, record.group])
                lines.append(f"{head}\t{_dumps(geometry)[1:-1]}")
    return "\n".join(lines) + "\n"


def _first_line(path: Path) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.readline()


def write_parts(cases: Sequence[Case], parts: Sequence[Path], path: Path, flavour: CocoFlavour = PLAIN) -> Path:
    """Stream the COCO file of ``cases`` from their parts (one per case, in the same order) to ``path``, atomically.

    Image ids count from 1 in case order (a volume's annotated slices are one
    image each), annotation ids likewise, and a class gets the category id
    :func:`~napari_nsclc.formats.coco.write_coco` would give it, in order of
    first use. Memory: one part at a time, plus the image records.
    """
    categories = _CategoryIndex(cases, flavour)
    next_annotation = _max_annotation_id(cases)
    image_ids: list[list[int]] = []
    images = []
    for part in parts:  # first the image records: they come before the annotations in the file
        records = json.loads(_first_line(part))["images"]
        image_ids.append([])
        for record in records:
            record["id"] = len(images) + 1
            image_ids[-1].append(record["id"])
            images.append(record)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as out:
        out.write('{"images": ' + _dumps(images) + ', "annotations": [')
        first = True
        for part, ids in zip(parts, image_ids, strict=True):
            with open(part, encoding="utf-8") as handle:
                handle.readline()
                for line in handle:
                    head, _, members = line.rstrip("\n").partition("\t")
                    piece, class_name, group = json.loads(head)
                    category = categories.id_of(class_name, group) if class_name is not None else None
                    next_annotation += 1
                    ids_text = f'"id": {next_annotation}, "image_id": {ids[piece]}, "category_id": {_dumps(category)}'
                    out.write(("" if first else ", ") + "{" + ids_text + (", " + members if members else "") + "}")
                    first = False
        out.write("]")
        if categories.categories:
            out.write(', "categories": ' + _dumps(categories.categories))
        out.write("}\n")
    return path
