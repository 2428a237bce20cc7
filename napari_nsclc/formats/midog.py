"""MIDOG 2021 mitotic-figure database: COCO-like JSON with ``[x1, y1, x2, y2]`` boxes.

**Trap** (FORMATS.md §6): ``bbox`` is ``[x1, y1, x2, y2]`` (50 x 50 px), not
COCO's ``[x, y, w, h]``; there is no ``area``, ``iscrowd`` or
``segmentation``. Each cell is read as a point at its box centre with the box
size kept (``attributes["box_size"]``), because a student correcting mitoses
clicks cells, not box corners; the writer draws the box back around the point.

Two ways in:

* the database itself (``MIDOG.json``): one case per image;
* an image (``001.tiff``): its annotations are found by ``file_name`` in a
  JSON database in the same folder, or in the one passed as ``database=``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ..conversion import exact, needs_image_size
from ..model import Case, ClassInfo, ClassSchema, NsclcFormatError
from ..registry import FormatSpec
from . import coco

__all__ = ["FORMATS", "MIDOG_SCHEMA", "read_midog", "read_midog_image", "write_midog"]

#: The MIDOG classes as the database names them: (category id, name, colour, description).
MIDOG_CLASSES = (
    (1, "mitotic figure", "#ff1f1f", "mitotic figure"),
    (2, "not mitotic figure", "#1fb4ff", "hard negative: a mitosis look-alike"),
)
MIDOG_SCHEMA = ClassSchema(
    "midog", tuple(ClassInfo(code, name, color, text) for code, name, color, text in MIDOG_CLASSES), background=None
)

MIDOG_FLAVOUR = coco.CocoFlavour(
    name="midog",
    bbox_format="xyxy",
    points_from_boxes=True,
    schema=MIDOG_SCHEMA,
    class_of_category=lambda category: str(category.get("name")),
    points_name="mitotic figures",
)
_IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")
#: A database is recognised by these words in its first KiB (the ``info`` block).
_SIGNATURES = ("MIDOG", "Mitosis Domain Generalization", "MItosis Domain Generalization")


def read_midog(path: Path) -> list[Case]:
    """Read a MIDOG database: one case per image, cells as points at box centres.

    Parameters
    ----------
    path : Path
        The JSON database.

    Returns
    -------
    list of Case
        Points in pixels ``(y, x)``; ``attributes["box_size"]`` = ``(h, w)``.
    """
    data, layout = coco.load_json(path)
    return coco.cases_from_coco(data, Path(path), MIDOG_FLAVOUR, layout=layout)


#: JSON files larger than this are never searched for an image's annotations (sniffing stays cheap).
MAX_DATABASE_BYTES = 64 * 2**20


def find_database(image_path: Path) -> Path | None:
    """The JSON database in the image's folder whose ``images`` list the image's file name.

    Only JSON files that start like a COCO-style database (an ``"info"`` or
    ``"images"`` key in their first KiB) and are under 64 MiB are read.
    """
    needle = f'"file_name": "{Path(image_path).name}"'
    for candidate in sorted(Path(image_path).parent.glob("*.json")):
        try:
            if candidate.stat().st_size > MAX_DATABASE_BYTES:
                continue
            head = coco._head(candidate, 4096)
            if '"images"' not in head and '"info"' not in head:
                continue
            text = candidate.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if needle in text.replace('"file_name":"', '"file_name": "') and '"bbox"' in text:
            return candidate
    return None


def read_midog_image(path: Path, database: Path | None = None) -> list[Case]:
    """Read one image and its annotations from a MIDOG database.

    Parameters
    ----------
    path : Path
        The image, e.g. ``001.tiff``.
    database : Path, optional
        The JSON database; default: the one next to the image that lists it.
    """
    path = Path(path)
    database = Path(database) if database else find_database(path)
    if database is None:
        raise NsclcFormatError(path, "no MIDOG JSON database next to it lists this image")
    data, layout = coco.load_json(database)
    cases = coco.cases_from_coco(data, database, MIDOG_FLAVOUR, layout=layout, only_file=path.name)
    if not cases:
        raise NsclcFormatError(path, f"is not listed in the database {database.name}")
    case = cases[0]
    case.image.path = str(path.resolve())
    coco.load_image(case)
    return [case]


def write_midog(cases: Sequence[Case], path: Path, *, overwrite: bool = False, **options) -> list[Path]:
    """Write cases as a MIDOG ``xyxy`` JSON database.

    Untouched cells are written as their original records; moved or new cells
    get a box of their source's size (50 x 50 px unless the set says
    otherwise) centred on the point.
    """
    options.setdefault("point_box_size", (50.0, 50.0))
    return coco._write(cases, Path(path), MIDOG_FLAVOUR, overwrite, options)


def sniff_midog(path: Path) -> bool:
    """A JSON database naming MIDOG, or an image listed by a database next to it."""
    path = Path(path)
    if not path.is_file():
        return False
    if path.suffix.lower() == ".json":
        head = coco._head(path, 4096)
        return any(s in head for s in _SIGNATURES) or ('"mitotic figure"' in head and '"bbox"' in head)
    if path.suffix.lower() in _IMAGE_SUFFIXES:
        database = find_database(path)
        if database is None:
            return False
        head = coco._head(database, 4096)
        try:
            return any(s in head for s in _SIGNATURES) or _names_mitoses(database)
        except (OSError, ValueError):
            return False
    return False


def _names_mitoses(database: Path) -> bool:
    data = json.loads(database.read_text(encoding="utf-8"))
    names = {str(c.get("name")) for c in data.get("categories", []) if isinstance(c, dict)}
    return "mitotic figure" in names


def _read_any(path: Path) -> list[Case]:
    if Path(path).suffix.lower() == ".json":
        return read_midog(path)
    return read_midog_image(path)


FORMATS = [
    FormatSpec(
        name="midog",
        title="MIDOG mitosis database",
        sniff=sniff_midog,
        read=_read_any,
        write=write_midog,
        extensions=(".json",),
        priority=60,
        produces=frozenset({"cells"}),
        extras=("id",),
        object_fields=coco.coco_object_fields,
        family="coco",
        holds={"cells": exact("boxes [x1, y1, x2, y2] of the cell's size")},
        accepts=("midog",),
        check=needs_image_size("COCO"),
    )
]
