"""IGNITE PD-L1 and nuclei detection files: COCO JSON of cells (FORMATS.md §3, seed 003).

* ``data/annotations/pdl1/pdl1/pdl1_annotations.json``: categories 1 pd-l1
  negative tumor cell, 2 pd-l1 positive tumor cell, 3 non-tumor cell;
  ``data/annotations/pdl1/nuclei/nuclei_annotations.json``: 1 nucleus.
* **Trap**: cells are points stored as fixed-size boxes ``[x, y, w, h]``; the
  point is the box centre. They are read as points; the box size is kept in
  ``attributes["box_size"]`` and used when writing back.
* Multi-reader files repeat the class block per reader, with
  ``supercategory`` "reader P1" ... "reader R4": one points layer per reader,
  class = ``(category_id - 1) % 3``.
* ``annotated_xyxy`` on an image (the annotated region inside the context
  image) becomes a rectangle in a box set ``"annotated region"``.
* Images are PNG, sometimes RGBA: shown as RGB. Pixels are 0.5 µm.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..conversion import exact, needs_image_size
from ..formats import coco
from ..model import CORNER, BoxSet, Case, ClassInfo, ClassSchema, NsclcFormatError, from_file, to_file
from ..registry import FormatSpec

__all__ = ["FORMAT", "IGNITE_NUCLEI_SCHEMA", "IGNITE_PDL1_SCHEMA", "read_ignite_cells", "write_ignite_cells"]

MICRONS_PER_PIXEL = 0.5

#: (category id, name, colour): the PD-L1 detection classes as IGNITE names them.
PDL1_CLASSES = (
    (1, "pd-l1 negative tumor cell", "#2f6bff"),
    (2, "pd-l1 positive tumor cell", "#8b4513"),
    (3, "non-tumor cell", "#22c55e"),
)
NUCLEI_CLASSES = ((1, "nucleus", "#00e5ff"),)
IGNITE_PDL1_SCHEMA = ClassSchema("ignite-pdl1", tuple(ClassInfo(*row) for row in PDL1_CLASSES), background=None)
IGNITE_NUCLEI_SCHEMA = ClassSchema("ignite-nuclei", tuple(ClassInfo(*row) for row in NUCLEI_CLASSES), background=None)
REGION_SCHEMA = ClassSchema("ignite-region", (ClassInfo(1, "annotated region", "#ffd400"),), background=None)

_FILE_NAMES = ("pdl1_annotations.json", "nuclei_annotations.json")
_SIGNATURES = ('"pd-l1 negative tumor cell"', '"pd-l1 positive tumor cell"', '"annotated_xyxy"')


def _schema_for(categories: Sequence[dict]) -> ClassSchema:
    names = {str(c.get("name", "")).lower() for c in categories}
    return IGNITE_PDL1_SCHEMA if names & set(IGNITE_PDL1_SCHEMA.names) else IGNITE_NUCLEI_SCHEMA


def _is_multi_reader(categories: Sequence[dict]) -> bool:
    return any(str(c.get("supercategory", "")).lower().startswith("reader") for c in categories)


def _flavour(categories: Sequence[dict]) -> coco.CocoFlavour:
    schema = _schema_for(categories)
    per_block = len(schema.classes)
    multi = _is_multi_reader(categories)

    def class_of(category: dict) -> str:
        if multi:
            return schema.classes[(int(category["id"]) - 1) % per_block].name
        name = str(category.get("name", ""))
        return name if name in schema else schema.classes[(int(category["id"]) - 1) % per_block].name

    return coco.CocoFlavour(
        name="ignite-pdl1",
        bbox_format="xywh",
        points_from_boxes=True,
        schema=schema,
        class_of_category=class_of,
        group_of_category=(lambda category: str(category.get("supercategory"))) if multi else None,
        points_name="cells" if schema is IGNITE_PDL1_SCHEMA else "nuclei",
        pixel_size=(MICRONS_PER_PIXEL, MICRONS_PER_PIXEL),
        unit="um",
        read_image_extras=_read_region,
        write_image_extras=_write_region,
    )


def _read_region(case: Case, image: dict) -> None:
    box = image.get("annotated_xyxy")
    if box is None:
        return
    if not (isinstance(box, list) and len(box) == 4 and coco._finite(box)):
        case.provenance.warnings.append(
            f"{Path(case.provenance.source).name}: image {image.get('id')}: annotated_xyxy {box!r} is not 4 numbers"
        )
        return
    x0, y0, x1, y1 = (float(v) for v in box)
    bounds = tuple(from_file((y0, x0, y1, x1), CORNER).tolist())  # a box, in corner coordinates like the cells'
    case.boxes.append(BoxSet("annotated region", [bounds], ["annotated region"], REGION_SCHEMA, [{"image_extra": True}]))


def _write_region(case: Case, record: dict) -> dict:
    region = next((b for b in case.boxes if b.attributes and b.attributes[0].get("image_extra")), None)
    if region is None or len(region) == 0 or "annotated_xyxy" not in record:
        return record
    y0, x0, y1, x1 = to_file([float(v) for v in region.bounds[0]], CORNER).tolist()
    old = record["annotated_xyxy"]
    if coco._finite(old) and np.allclose([float(v) for v in old], [x0, y0, x1, y1], rtol=0, atol=1e-9):
        return record
    return {**record, "annotated_xyxy": [coco._number(v) for v in (x0, y0, x1, y1)]}


def read_ignite_cells(path: Path) -> list[Case]:
    """Read an IGNITE PD-L1 or nuclei COCO file: cells as points, one layer per reader.

    Returns
    -------
    list of Case
        One per image; points ``(y, x)`` in pixels of 0.5 µm.
    """
    data, layout = coco.load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("categories"), list):
        raise NsclcFormatError(path, "is not an IGNITE COCO file: it has no 'categories' list")
    return coco.cases_from_coco(data, Path(path), _flavour(data["categories"]), layout=layout)


def write_ignite_cells(cases: Sequence[Case], path: Path, *, overwrite: bool = False, **options) -> list[Path]:
    """Write cases back as IGNITE COCO: each point as a box of its source's size around it."""
    source = next((c.document.get("coco") for c in cases if c.document.get("coco")), None) or {}
    categories = source.get("categories") or [
        {"id": info.code, "name": info.name, "supercategory": "cell"} for info in IGNITE_PDL1_SCHEMA.classes
    ]
    if not source:
        for case in cases:
            case.document.setdefault("coco", {"categories": categories})
    return coco._write(cases, Path(path), _flavour(categories), overwrite, options)


def sniff_ignite(path: Path) -> bool:
    """IGNITE's file names, or IGNITE class names / ``annotated_xyxy`` in the first KiB of a JSON."""
    path = Path(path)
    if not path.is_file() or path.suffix.lower() != ".json":
        return False
    if path.name in _FILE_NAMES:
        return True
    head = coco._head(path, 16384)
    return any(s in head for s in _SIGNATURES)


FORMAT = FormatSpec(
    name="ignite-pdl1",
    title="IGNITE PD-L1 / nuclei cells (COCO)",
    sniff=sniff_ignite,
    read=read_ignite_cells,
    write=write_ignite_cells,
    extensions=(".json",),
    priority=40,
    is_dataset=False,
    produces=frozenset({"cells", "region"}),
    extras=("id",),
    object_fields=coco.coco_object_fields,
    family="coco",
    layered=True,
    holds={"cells": exact("boxes of the cell's size"), "region": exact("kept as the image's annotated_xyxy")},
    accepts=("ignite-pdl1",),
    check=needs_image_size("COCO"),
)
