"""OCELOT 2023: cell and tissue patches of one slide, overlaid (FORMATS.md §6, seed 002).

Layout::

    metadata.json
    images/{split}/cell/{id}.jpg      images/{split}/tissue/{id}.jpg     (1024 x 1024)
    annotations/{split}/cell/{id}.csv annotations/{split}/tissue/{id}.png

* Cell CSV: lines ``x,y,label`` with no header (1 background cell, 2 tumour
  cell), in cell-patch pixels.
* Tissue PNG: 1 background, 2 cancer, 255 unknown.
* ``metadata.json`` gives per sample the slide, the cell and tissue patch
  bounds in level-0 slide pixels (``x_start``...), each patch's resized mpp,
  and the slide's own ``mpp_x``/``mpp_y``. Each patch becomes its own case
  whose ``ImageRef`` has ``pixel_size`` = the patch's resized mpp and
  ``origin`` = its ``(y_start, x_start)`` times the slide mpp, in µm; so the
  small, sharp cell patch sits inside the larger tissue patch where it belongs.
* The challenge's point-output JSON (``"type": "Multiple points"``) reads too.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._atomic import atomic_write_bytes, atomic_write_text, refuse_overwrite
from ..conversion import exact
from ..model import (
    Case,
    ClassInfo,
    ClassSchema,
    ImageRef,
    LabelMask,
    NsclcFormatError,
    PointSet,
    Provenance,
)
from ..registry import FormatSpec

__all__ = [
    "FORMATS",
    "OCELOT_CELL_SCHEMA",
    "OCELOT_TISSUE_SCHEMA",
    "read_ocelot",
    "read_point_output",
    "write_ocelot",
    "write_point_output",
]

#: (code, name, colour) of the cell labels and the tissue mask values.
CELL_CLASSES = ((1, "background cell", "#36a2eb"), (2, "tumor cell", "#ff3b30"))
TISSUE_CLASSES = ((1, "background", "#a0c4ff"), (2, "cancer area", "#ff8fa3"), (255, "unknown", "#00000000"))
OCELOT_CELL_SCHEMA = ClassSchema("ocelot-cell", tuple(ClassInfo(*row) for row in CELL_CLASSES), background=None)
OCELOT_TISSUE_SCHEMA = ClassSchema("ocelot-tissue", tuple(ClassInfo(*row) for row in TISSUE_CLASSES), background=0)


# --------------------------------------------------------------------------- metadata


def load_metadata(path: Path) -> dict[str, dict]:
    """Sample metadata by id (``"001"``...).

    Accepts the dataset's ``{"sample_pairs": {id: {...}}}`` and the challenge
    test kit's list (ids in order, ``"000"``, ``"001"``...).
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise NsclcFormatError(path, f"cannot read OCELOT metadata: {error}") from error
    if isinstance(data, dict) and isinstance(data.get("sample_pairs"), dict):
        return {str(k): v for k, v in data["sample_pairs"].items()}
    if isinstance(data, list):
        return {f"{i:03d}": v for i, v in enumerate(data)}
    if isinstance(data, dict) and all(isinstance(v, dict) and "cell" in v for v in data.values()):
        return {str(k): v for k, v in data.items()}
    raise NsclcFormatError(path, "is not OCELOT metadata: expected 'sample_pairs' or a list of samples")


def placement(sample: dict, patch: str) -> tuple[tuple[float, float], tuple[float, float]]:
    """``(pixel_size, origin)`` in µm of the ``"cell"`` or ``"tissue"`` patch of a sample."""
    bounds = sample[patch]
    slide_mpp = (float(sample.get("mpp_y", sample.get("mpp_x"))), float(sample.get("mpp_x")))
    pixel_size = (float(bounds["resized_mpp_y"]), float(bounds["resized_mpp_x"]))
    origin = (float(bounds["y_start"]) * slide_mpp[0], float(bounds["x_start"]) * slide_mpp[1])
    return pixel_size, origin


# --------------------------------------------------------------------------- reading


def _root_of(path: Path) -> Path | None:
    for folder in (path, *path.parents):
        if (folder / "metadata.json").is_file() and ((folder / "images").is_dir() or (folder / "annotations").is_dir()):
            return folder
    return None


def read_ocelot(path: Path) -> list[Case]:
    """Read an OCELOT root (every sample) or one of its files (the point-output JSON: :func:`read_point_output`).

    Returns
    -------
    list of Case
        Per sample: the tissue case (mask), then the cell case (points).
    """
    path = Path(path)
    if path.suffix.lower() == ".csv" and _root_of(path.parent) is None:
        return [_cell_case_from_csv(path)]
    root = _root_of(path if path.is_dir() else path.parent)
    if root is None:
        raise NsclcFormatError(path, "is not inside an OCELOT folder (metadata.json with images/ or annotations/)")
    metadata = load_metadata(root / "metadata.json")
    wanted = None if path.is_dir() or path.name == "metadata.json" else path.stem
    cases = []
    for sample_id in sorted(set(_sample_ids(root)) | set(metadata)):
        if wanted is not None and sample_id != wanted:
            continue
        sample = metadata.get(sample_id)
        split = (sample or {}).get("subset")
        cases.extend(_sample_cases(root, sample_id, sample, split))
    if not cases:
        raise NsclcFormatError(path, "no OCELOT sample found")
    if path.is_file() and path.parent.name == "cell":
        # opening a cell file shows its cell patch first (napari opens the first case)
        cases.sort(key=lambda case: case.document["ocelot"]["patch"] != "cell")
    return cases


def _sample_ids(root: Path) -> list[str]:
    return sorted({p.stem for p in root.glob("*/*/*/*") if p.parent.name in ("cell", "tissue") and p.is_file()})


def _find(root: Path, kind: str, patch: str, sample_id: str, suffix: str, split: str | None) -> Path | None:
    splits = [split] if split else []
    splits += [p.name for p in sorted((root / kind).glob("*")) if p.is_dir() and p.name not in splits]
    for name in splits:
        candidate = root / kind / name / patch / f"{sample_id}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def _image(path: Path | None):
    """The patch's pixels, decoded only when shown: a split holds hundreds of 1024² JPEGs."""
    if path is None:
        return None
    from ..imageio import lazy_image

    return lazy_image(path)


def _sample_cases(root: Path, sample_id: str, sample: dict | None, split: str | None) -> list[Case]:
    cases = []
    tissue_image = _find(root, "images", "tissue", sample_id, ".jpg", split)
    tissue_mask = _find(root, "annotations", "tissue", sample_id, ".png", split)
    if tissue_image or tissue_mask:
        case = _patch_case(f"{sample_id} tissue", tissue_image, sample, "tissue", root)
        if tissue_mask is not None:
            from ..imageio import read_pixels

            mask, _ = read_pixels(tissue_mask, as_mask=True)
            mask = np.ascontiguousarray(mask[..., 0]) if mask.ndim == 3 else mask
            attributes = {"path": str(tissue_mask), "root": str(root),
                          "relative_path": tissue_mask.relative_to(root).as_posix(), "encoding": "grey", "dtype": "uint8"}
            case.masks.append(LabelMask("tissue", mask, OCELOT_TISSUE_SCHEMA, attributes=attributes))
            if case.image.shape is None:
                case.image.shape = tuple(mask.shape)
            _check_values(mask, tissue_mask, case)
        cases.append(case)
    cell_image = _find(root, "images", "cell", sample_id, ".jpg", split)
    cell_csv = _find(root, "annotations", "cell", sample_id, ".csv", split)
    if cell_image or cell_csv:
        case = _patch_case(f"{sample_id} cell", cell_image, sample, "cell", root)
        if cell_csv is not None:
            case.points.append(_cells_from_csv(cell_csv, case))
            case.document["ocelot_csv"] = cell_csv.relative_to(root).as_posix()
        cases.append(case)
    return cases


def _check_values(mask: np.ndarray, path: Path, case: Case) -> None:
    unexpected = sorted(set(np.unique(mask).tolist()) - {0, *OCELOT_TISSUE_SCHEMA.codes})
    if unexpected:
        case.provenance.warnings.append(f"{path.name}: tissue mask has values {unexpected} outside 1, 2, 255")


def _patch_case(name: str, image_path: Path | None, sample: dict | None, patch: str, root: Path) -> Case:
    data = _image(image_path)
    ref = ImageRef(path=str(image_path) if image_path else None, name=name, data=data, rgb=data is not None)
    if data is not None:
        ref.shape = tuple(data.shape[:2])
    # the tissue and cell patches of one sample overlay in µm: they open together
    case = Case(
        name=name,
        image=ref,
        provenance=Provenance(source=str(root), format="ocelot", reader=__name__),
        group=name.split()[0],
    )
    if sample is not None:
        try:
            ref.pixel_size, ref.origin = placement(sample, patch)
            ref.unit = "um"
            ref.metadata.update(slide=sample.get("slide_name"), organ=sample.get("organ"), patch=patch)
        except (KeyError, TypeError, ValueError) as error:
            case.provenance.warnings.append(f"metadata.json: sample {name}: cannot place the {patch} patch ({error})")
    else:
        case.provenance.warnings.append(f"metadata.json: no entry for sample {name.split()[0]}; not placed on the slide")
    case.document["ocelot"] = {"patch": patch, "sample": sample}
    return case


def _cells_from_csv(path: Path, case: Case) -> PointSet:
    coords, classes, attributes = [], [], []
    text = path.read_text(encoding="utf-8")
    case.document["ocelot_newline"] = "\r\n" if "\r\n" in text else "\n"
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row:
            continue
        label = f"{path.name}: line {number}"
        if len(row) < 3:
            case.provenance.warnings.append(f"{label}: expected x,y,label; skipped")
            continue
        try:
            x, y, code = float(row[0]), float(row[1]), int(row[2])
        except ValueError:
            case.provenance.warnings.append(f"{label}: {','.join(row)!r} is not x,y,label numbers; skipped")
            continue
        if not (np.isfinite(x) and np.isfinite(y)) or x < 0 or y < 0:
            case.provenance.warnings.append(f"{label}: NaN or negative coordinates; skipped")
            continue
        if code not in OCELOT_CELL_SCHEMA.codes:
            case.provenance.warnings.append(f"{label}: label {code} is not 1 or 2; skipped")
            continue
        coords.append((y, x))
        classes.append(OCELOT_CELL_SCHEMA.name_of(code))
        attributes.append({"row": row})
    return PointSet("cells", np.array(coords).reshape(-1, 2), classes, OCELOT_CELL_SCHEMA, attributes)


def _cell_case_from_csv(path: Path) -> Case:
    """A loose cell CSV, outside an OCELOT folder: cells in pixels, not placed on a slide."""
    name = path.stem
    case = Case(name=name, image=ImageRef(name=name), provenance=Provenance(str(path), "ocelot", __name__))
    case.points.append(_cells_from_csv(path, case))
    return case


def read_point_output(path: Path) -> list[Case]:
    """The challenge's ``{"type": "Multiple points", "points": [{name, point: [x, y, class]}]}``."""
    from ..formats.coco import load_json

    data, layout = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("points"), list):
        raise NsclcFormatError(path, "is not an OCELOT point output: no 'points' list")
    grouped: dict[str, list] = {}
    warnings = []
    for i, item in enumerate(data["points"]):
        try:
            x, y, code = item["point"][:3]
            name = str(item.get("name", "image_0"))
            if int(code) not in OCELOT_CELL_SCHEMA.codes or not np.isfinite([x, y]).all():
                raise ValueError(f"class {code}")
        except (KeyError, TypeError, ValueError) as error:
            warnings.append(f"{Path(path).name}: point {i}: not [x, y, 1|2] ({error}); skipped")
            continue
        grouped.setdefault(name, []).append(((float(y), float(x)), OCELOT_CELL_SCHEMA.name_of(int(code)), item))
    cases = []
    for name, items in grouped.items():
        coords, classes, attrs = zip(*items, strict=True)
        case = Case(name=name, image=ImageRef(name=name), provenance=Provenance(str(path), "ocelot-points", __name__))
        case.points.append(PointSet("cells", np.array(coords), classes, OCELOT_CELL_SCHEMA, [{"output": a} for a in attrs]))
        # the other top-level fields, and where "points" goes among them (None marks the place)
        case.document["ocelot_output"] = {k: (None if k == "points" else v) for k, v in data.items()}
        case.document["ocelot_layout"] = layout
        cases.append(case)
    if cases:
        cases[0].provenance.warnings.extend(warnings)
    return cases


# --------------------------------------------------------------------------- writing


def _format(value: float) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def cell_csv_text(case: Case) -> str:
    """OCELOT cell CSV lines ``x,y,label`` for every point of a case; untouched rows verbatim."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=case.document.get("ocelot_newline", "\n"))
    for points in case.points:
        for (y, x), name, attrs in zip(points.coords[:, -2:], points.classes, points.attributes, strict=True):
            code = OCELOT_CELL_SCHEMA.code_of(str(name)) if str(name) in OCELOT_CELL_SCHEMA else None
            if code is None:
                raise NsclcFormatError(case.name, f"class {name!r} is not an OCELOT cell class (background cell, tumor cell)")
            row = attrs.get("row")
            if row is not None and float(row[0]) == x and float(row[1]) == y and int(row[2]) == code:
                writer.writerow(row)
            else:
                writer.writerow([_format(x), _format(y), code])
    return buffer.getvalue()


def write_ocelot(cases: Sequence[Case], path: Path, *, overwrite: bool = False) -> list[Path]:
    """Write cell points as OCELOT CSVs and tissue masks as OCELOT PNGs.

    Parameters
    ----------
    path : Path
        A ``.csv`` file (one case with points), or a folder. Into a folder
        the files go where they were in the dataset
        (``annotations/{split}/cell/{id}.csv``, ``annotations/{split}/tissue/{id}.png``),
        with ``metadata.json`` beside them so that the folder opens as an
        OCELOT dataset; into the dataset's own root, under ``corrections/``.
        Cases from no OCELOT folder give ``{id}.csv`` and ``{id}_tissue.png``.
    """
    from ..conversion import written_masks
    from ..formats.masks import write_mask_like

    path = Path(path)
    with_points = [c for c in cases if c.points]
    if path.suffix.lower() == ".csv":
        if len(with_points) != 1:
            raise NsclcFormatError(path, f"an OCELOT CSV holds one cell patch, got {len(with_points)}")
        refuse_overwrite(path, overwrite)
        return [atomic_write_text(path, cell_csv_text(with_points[0]))]
    roots = {c.provenance.source for c in cases if (Path(c.provenance.source) / "metadata.json").is_file()}
    out = path / "corrections" if any(Path(r).resolve() == path.resolve() for r in roots) else path
    written = []
    for case in with_points:
        target = out / case.document.get("ocelot_csv", f"{case.name.split()[0]}.csv")
        refuse_overwrite(target, overwrite)
        written.append(atomic_write_text(target, cell_csv_text(case)))
    for case in cases:
        for mask in written_masks(case):
            relative = mask.attributes.get("relative_path") or f"{case.name.split()[0]}_{mask.name}.png"
            written.append(write_mask_like(np.asarray(mask.data), out / relative, mask.attributes, overwrite=overwrite))
    for root in sorted(roots):
        metadata = Path(root) / "metadata.json"
        target = out / "metadata.json"
        if written and target.resolve() != metadata.resolve() and not target.exists():
            written.append(atomic_write_bytes(target, metadata.read_bytes()))
    return written


def write_point_output(cases: Sequence[Case], path: Path, *, overwrite: bool = False) -> list[Path]:
    """Write cells read from a challenge point output back as one, every point's own fields kept.

    ``path`` is the ``.json`` file, or a folder receiving the source's file name.
    """
    path = Path(path)
    source = Path(cases[0].provenance.source)
    target = path if path.suffix.lower() == ".json" else path / source.name
    points = []
    for case in cases:
        for cells in case.points:
            for (y, x), name, attrs in zip(cells.coords[:, -2:], cells.classes, cells.attributes, strict=True):
                code = OCELOT_CELL_SCHEMA.code_of(str(name)) if str(name) in OCELOT_CELL_SCHEMA else None
                if code is None:
                    raise NsclcFormatError(target, f"class {name!r} is not an OCELOT cell class (background cell, tumor cell)")
                item = dict(attrs.get("output") or {"name": case.name})
                old = item.get("point") or []
                unchanged = len(old) >= 3 and float(old[0]) == x and float(old[1]) == y and int(old[2]) == code
                if not unchanged:
                    item["point"] = [_number(x), _number(y), code, *old[3:]]
                points.append(item)
    from ..formats.coco import dump_json

    document = {**cases[0].document["ocelot_output"], "points": points}
    refuse_overwrite(target, overwrite)
    return [atomic_write_text(target, dump_json(document, cases[0].document.get("ocelot_layout")))]


def _number(value: float):
    value = float(value)
    return int(value) if value.is_integer() else value


def ocelot_object_fields(attributes: dict) -> list[str]:
    """Fields of a challenge output point other formats do not keep (its ``probability``)."""
    return [key for key in (attributes.get("output") or {}) if key not in ("name", "point")]


# --------------------------------------------------------------------------- detection


def sniff_point_output(path: Path) -> bool:
    """The challenge's point-output JSON: ``"type": "Multiple points"`` in its first KiB."""
    path = Path(path)
    if not (path.is_file() and path.suffix.lower() == ".json" and path.name != "metadata.json"):
        return False
    with open(path, "rb") as handle:
        head = handle.read(2048).decode("utf-8", errors="replace")
    return '"Multiple points"' in head


def sniff_ocelot(path: Path) -> bool:
    """An OCELOT root, a file inside one, or a loose cell CSV."""
    path = Path(path)
    if path.suffix.lower() == ".json" and path.name != "metadata.json":
        return False
    folder = path if path.is_dir() else path.parent
    root = _root_of(folder)
    if root is None:
        return path.is_file() and path.suffix.lower() == ".csv" and _looks_like_cells(path)
    return path.is_dir() and path == root or path.name == "metadata.json" or path.parent.name in ("cell", "tissue")


_CELL_LINE = re.compile(r"^\s*\d+(\.\d+)?,\s*\d+(\.\d+)?,\s*[12]\s*$")


def _looks_like_cells(path: Path) -> bool:
    """A loose OCELOT cell CSV: every line of its first KiB is ``x,y,1|2``, no header."""
    with open(path, "rb") as handle:
        head = handle.read(1024)
    lines = head.decode("utf-8", errors="replace").splitlines()
    if len(head) == 1024:
        lines = lines[:-1]  # possibly cut in the middle
    lines = [line for line in lines if line.strip()]
    return bool(lines) and all(_CELL_LINE.match(line) for line in lines)


FORMATS = [
    FormatSpec(
        name="ocelot",
        title="OCELOT cells and tissue",
        sniff=sniff_ocelot,
        read=read_ocelot,
        write=write_ocelot,
        extensions=(".csv",),
        priority=50,
        is_dataset=True,
        shared_files=("metadata.json", "images/*"),
        layout="metadata.json with images/ or annotations/",
        produces=frozenset({"mask", "points"}),
        family="ocelot",
        holds={"mask": exact("tissue PNGs"), "points": exact("cell CSVs x,y,label")},
        accepts=("ocelot",),
        per_case=True,  # every case copies the same metadata.json
    ),
    FormatSpec(
        name="ocelot-points",
        title="OCELOT challenge point output (JSON)",
        sniff=sniff_point_output,
        read=read_point_output,
        write=write_point_output,
        extensions=(".json",),
        priority=55,
        produces=frozenset({"points"}),
        extras=("probability",),
        object_fields=ocelot_object_fields,
        family="ocelot",
        sized=None,
        holds={"points": exact("points [x, y, class] with their own fields")},
        accepts=("ocelot-points",),
    ),
]
