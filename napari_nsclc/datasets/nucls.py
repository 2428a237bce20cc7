"""NuCLS: breast-cancer nuclei at 0.2 µm/px (FORMATS.md §2, seed 001).

A dataset folder holds ``rgb/``, ``mask/``, ``csv/`` and ``visualization/``;
one field of view (FOV) is one file stem in each. A single FOV opens from any
of its files. The Hugging Face copy exported to parquet reads too (needs
``pyarrow``).

* The CSV becomes a :class:`PolygonSet` ``"nuclei"``: ``polyline`` rows are
  polygons, ``rectangle`` rows rectangles; each object keeps its CSV row in
  ``attributes["row"]``. Class = ``raw_classification``; the schema's
  hierarchy gives the ``main`` and ``super`` levels, and names the napari
  layer features as the CSV names its columns (``raw_classification``,
  ``main_classification``, ``super_classification``).
* The mask becomes an instance :class:`LabelMask` keyed on the (ch1, ch2)
  **pair**, numbered in ``itertools.combinations(range(1, 256), 2)`` order
  (never on ``ch1 * ch2``, which repeats after the 254th nucleus), a class
  mask, and the FOV region (code 253) as its own mask.
* The stem's ``left, top, bottom, right`` (**Trap**: that order) are
  base-slide pixels; they place the FOV on the slide through
  ``ImageRef.origin`` (µm).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import imageio
from .._atomic import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    refuse_overwrite,
)
from ..conversion import exact
from ..model import (
    Case,
    ClassInfo,
    ClassSchema,
    ImageRef,
    LabelMask,
    NsclcFormatError,
    Polygon,
    PolygonSet,
    Provenance,
)
from ..registry import FormatSpec
from .instance_edits import NucleusEdit, apply_edits
from .nucls_pairs import FOV_CODE, MAX_INSTANCES, decode_mask, encode_mask, instance_id_of_pair, pair_of_instance_id

__all__ = [
    "FORMAT",
    "NUCLS_FOV_SCHEMA",
    "NUCLS_GT_CODES",
    "NUCLS_SCHEMA",
    "decode_mask",
    "encode_mask",
    "instance_id_of_pair",
    "pair_of_instance_id",
    "read_nucls",
    "write_nucls",
]

MICRONS_PER_PIXEL = 0.2

#: ``configs/nucleus_GTcodes.csv`` of the NuCLS repository, verbatim:
#: (group, overlay_order, GT_code, is_roi, is_background_class, color, comments).
NUCLS_GT_CODES = (
    ("correction_FOV_reviewed_maha", 0, 253, 1, 0, "rgb(10,255,0)", ""),
    ("fov_preapproved", 0, 253, 1, 0, "rgb(255,10,255)", ""),
    ("fov_for_programmatic_edit", 0, 253, 1, 0, "rgb(255,0,0)", ""),
    ("fov_basic", 0, 253, 1, 0, "rgb(0,0,0)", ""),
    ("fov_representative", 0, 253, 1, 0, "rgb(255,255,255)", ""),
    ("fov_problematic", 0, 253, 1, 0, "rgb(255,255,0)", ""),
    ("fov_discordant", 0, 253, 1, 0, "rgb(0,0,0)", ""),
    ("tumor", 1, 1, 0, 0, "rgb(255,0,0)", ""),
    ("fibroblast", 1, 2, 0, 0, "rgb(0,255,0)", ""),
    ("lymphocyte", 1, 3, 0, 0, "rgb(0,0,255)", ""),
    ("plasma_cell", 1, 4, 0, 0, "rgb(0,255,255)", ""),
    ("macrophage", 1, 5, 0, 0, "rgb(255,128,255)", ""),
    ("mitotic_figure", 1, 6, 0, 0, "rgb(255,255,0)", ""),
    ("vascular_endothelium", 1, 7, 0, 0, "rgb(180,100,255)", ""),
    ("myoepithelium", 1, 8, 0, 0, "rgb(250,50,250)", ""),
    ("apoptotic_body", 1, 9, 0, 0, "rgb(255,128,0)", ""),
    ("neutrophil", 1, 10, 0, 0, "rgb(250,50,250)", ""),
    ("ductal_epithelium", 1, 11, 0, 0, "rgb(180,100,255)", ""),
    ("eosinophil", 1, 12, 0, 0, "rgb(250,50,250)", ""),
    ("unlabeled", 1, 99, 0, 0, "rgb(0,0,0)", ""),
)

#: raw class -> (main class, super class), from the NuCLS paper and FORMATS.md §2.
NUCLS_HIERARCHY = {
    "tumor": ("tumor_nonMitotic", "tumor_any"),
    "mitotic_figure": ("tumor_mitotic", "tumor_any"),
    "fibroblast": ("nonTILnonMQ_stromal", "nonTIL_stromal"),
    "vascular_endothelium": ("nonTILnonMQ_stromal", "nonTIL_stromal"),
    "macrophage": ("macrophage", "nonTIL_stromal"),
    "lymphocyte": ("lymphocyte", "sTIL"),
    "plasma_cell": ("plasma_cell", "sTIL"),
    "neutrophil": ("other_nucleus", "other_nucleus"),
    "eosinophil": ("other_nucleus", "other_nucleus"),
    "myoepithelium": ("other_nucleus", "other_nucleus"),
    "ductal_epithelium": ("other_nucleus", "other_nucleus"),
    "apoptotic_body": ("AMBIGUOUS", "AMBIGUOUS"),
    "unlabeled": ("AMBIGUOUS", "AMBIGUOUS"),
}

CSV_COLUMNS = (
    "", "raw_classification", "main_classification", "super_classification", "type",
    "xmin", "ymin", "xmax", "ymax", "coords_x", "coords_y",
)  # fmt: skip
_STEM = re.compile(r"_left-(\d+)_top-(\d+)_bottom-(\d+)_right-(\d+)$")
_FOLDERS = ("rgb", "mask", "csv", "visualization")


def _rgb_color(text: str) -> tuple[int, int, int]:
    return tuple(int(v) for v in text[text.index("(") + 1 : text.index(")")].split(","))  # type: ignore[return-value]


def _hierarchy() -> dict[str, dict[str, str]]:
    levels: dict[str, dict[str, str]] = {"main": {}, "super": {}}
    for raw, (main, super_) in NUCLS_HIERARCHY.items():
        for name in (raw, f"correction_{raw}"):
            levels["main"][name] = main
            levels["super"][name] = super_
    return levels


NUCLS_SCHEMA = ClassSchema(
    "nucls",
    tuple(
        ClassInfo(code, group, _rgb_color(color), group.replace("_", " "))
        for group, _order, code, is_roi, _bg, color, _comment in NUCLS_GT_CODES
        if not is_roi
    ),
    hierarchy=_hierarchy(),
    background=0,
    # layer features named as the CSV names the levels
    feature_names={"raw": "raw_classification", "main": "main_classification", "super": "super_classification"},
)
NUCLS_FOV_SCHEMA = ClassSchema("nucls-fov", (ClassInfo(FOV_CODE, "fov", (160, 160, 160, 90), "field of view"),))


def base_class(name: str) -> str:
    """``correction_tumor`` -> ``tumor``: corrections map like the class they correct."""
    return name.removeprefix("correction_")


def class_code(name: str) -> int:
    """The mask code (ch0) of a raw class name, corrections included; 99 when unknown."""
    base = base_class(name)
    return NUCLS_SCHEMA.code_of(base) if base in NUCLS_SCHEMA else NUCLS_SCHEMA.code_of("unlabeled")


# --------------------------------------------------------------------------- locating files


def _fov_files(root: Path, stem: str) -> dict[str, Path]:
    found = {}
    for folder, suffix in (("rgb", ".png"), ("mask", ".png"), ("csv", ".csv"), ("visualization", ".png")):
        candidate = root / folder / f"{stem}{suffix}"
        if candidate.is_file():
            found[folder] = candidate
    return found


def _is_root(folder: Path) -> bool:
    return folder.is_dir() and (folder / "csv").is_dir() and ((folder / "mask").is_dir() or (folder / "rgb").is_dir())


def locate(path: Path) -> tuple[Path, list[str]]:
    """The dataset root and the FOV stems ``path`` stands for (a root: all of them)."""
    path = Path(path)
    if _is_root(path):
        stems = sorted({p.stem for folder in _FOLDERS if (path / folder).is_dir() for p in (path / folder).iterdir()
                        if p.suffix.lower() in (".png", ".csv") and not p.name.startswith(".")})
        return path, stems
    if path.is_file() and path.parent.name in _FOLDERS and _is_root(path.parent.parent):
        return path.parent.parent, [path.stem]
    raise NsclcFormatError(path, "is not a NuCLS folder (rgb/, mask/, csv/) or one of its files")


def slide_position(stem: str) -> dict[str, int] | None:
    """``{"left", "top", "bottom", "right"}`` base-slide pixels from a FOV stem, or None."""
    match = _STEM.search(stem)
    if match is None:
        return None
    left, top, bottom, right = (int(v) for v in match.groups())
    return {"left": left, "top": top, "bottom": bottom, "right": right}


# --------------------------------------------------------------------------- reading


def read_nucls(path: Path) -> list[Case]:
    """Read a NuCLS folder (every FOV), one FOV (any of its files) or a parquet export.

    Returns
    -------
    list of Case
        One per FOV; pixels at 0.2 µm, geometry ``(y, x)``.
    """
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        return read_nucls_parquet(path)
    root, stems = locate(path)
    return [_read_fov(root, stem) for stem in stems]


def _new_case(stem: str, source: str) -> Case:
    return Case(
        name=stem,
        image=ImageRef(pixel_size=(MICRONS_PER_PIXEL, MICRONS_PER_PIXEL), unit="um", name=stem),
        provenance=Provenance(source=source, format="nucls", reader=__name__),
        document={"nucls_columns": list(CSV_COLUMNS), "nucls_newline": "\n"},
    )


def _place(case: Case, stem: str) -> None:
    """Put the FOV where it lies on its slide (µm), from the stem's bounds."""
    bounds = slide_position(stem)
    if bounds is None:
        case.provenance.warnings.append(f"{stem}: the name carries no left/top/bottom/right; placed at the origin")
        return
    case.image.metadata["slide_bounds"] = bounds
    case.image.metadata["slide"] = stem[: stem.find("_id-")] if "_id-" in stem else stem
    if case.image.shape:
        width_px = bounds["right"] - bounds["left"]
        base_mpp = MICRONS_PER_PIXEL * case.image.shape[1] / width_px if width_px > 0 else MICRONS_PER_PIXEL
        case.image.metadata["base_mpp_estimate"] = base_mpp
        case.image.origin = (bounds["top"] * base_mpp, bounds["left"] * base_mpp)


def _read_fov(root: Path, stem: str) -> Case:
    files = _fov_files(root, stem)
    case = _new_case(stem, str(root))
    if "rgb" in files:
        case.image.path = str(files["rgb"])
        case.image.data = imageio.deferred_image(files["rgb"])  # decoded when napari draws it
        case.image.rgb = case.image.data.ndim == 3
        case.image.shape = tuple(case.image.data.shape[:2])
    _place(case, stem)
    if "csv" in files:
        case.polygons.append(_nuclei_of_csv(files["csv"], case))
    if "mask" in files:
        mask = _mask_of_png(files["mask"], case)
        case.masks.extend(_masks_from_array(mask, case))
        if case.image.shape is None:
            case.image.shape = tuple(mask.shape[:2])
            _place(case, stem)
    if not files:
        case.provenance.warnings.append(f"{stem}: no rgb, mask or csv file found")
    return case


def _nuclei_of_csv(path: Path, case: Case) -> PolygonSet:
    """The nuclei of a FOV's CSV; its columns and line endings go to ``case.document`` for writing back."""
    text = path.read_text(encoding="utf-8")
    case.document["nucls_newline"] = "\r\n" if "\r\n" in text[:4096] else "\n"
    rows, columns = _parse_csv(text)
    case.document["nucls_columns"] = columns
    case.document["nucls_read_rows"] = rows  # what the mask agrees with: writing finds deleted nuclei by it
    return _polygons_from_rows(rows, path.name, case.provenance.warnings)


def _mask_of_png(path: Path, case: Case) -> np.ndarray:
    """A FOV's pair-encoded mask PNG, fitted to its RGB."""
    # RGB(A) as stored: its channels carry the codes (an RGBA mask is written back as RGBA)
    mask, info = imageio.read_pixels(path, as_mask=True)
    if info["encoding"] != "rgb":  # a palette (or grey) PNG: its colours carry the codes
        mask, _ = imageio.read_pixels(path)
    return _fit_to_rgb(mask, case, path)


def read_correction(case: Case, files: dict[str, Path]) -> Case:
    """``case`` with what a correction (or autosave) of it holds: ``csv/<stem>.csv``, ``mask/<stem>.png`` or both.

    A correction holds only the files that changed, so it cannot be read as a
    NuCLS folder on its own; each file replaces its part of the original case.
    """
    by_folder = {Path(relative).parent.name: Path(path) for relative, path in files.items()}
    if "csv" in by_folder:
        case.polygons = [_nuclei_of_csv(by_folder["csv"], case)]
    if "mask" in by_folder:
        case.masks = _masks_from_array(_mask_of_png(by_folder["mask"], case), case)
    return case


def _fit_to_rgb(mask: np.ndarray, case: Case, path: Path) -> np.ndarray:
    """Crop or zero-pad the mask at its bottom and right edges to the RGB's size, as NuCLS's loader does."""
    if case.image.shape is None or tuple(mask.shape[:2]) == tuple(case.image.shape):
        return mask
    height, width = case.image.shape
    fitted = np.zeros((height, width, *mask.shape[2:]), dtype=mask.dtype)
    h, w = min(height, mask.shape[0]), min(width, mask.shape[1])
    fitted[:h, :w] = mask[:h, :w]
    case.provenance.warnings.append(
        f"{path.parent.name}/{path.name}: mask is {mask.shape[1]}x{mask.shape[0]} px but the RGB is "
        f"{width}x{height}; fitted to the RGB (cropped or zero-padded at the bottom/right)"
    )
    case.provenance.details["mask_fitted"] = {"mask": list(mask.shape[:2]), "rgb": [height, width]}
    return fitted


def _masks_from_array(mask: np.ndarray, case: Case) -> list[LabelMask]:
    instances, codes, classes, fov = decode_mask(mask)
    known = set(NUCLS_SCHEMA.codes)
    instance_classes = {}
    for instance_id, code in codes.items():
        if code not in known:
            case.provenance.warnings.append(f"{case.name}: mask nucleus {instance_id}: unknown class code {code}")
        instance_classes[instance_id] = NUCLS_SCHEMA.name_of(code) if code in known else f"<value {code}>"
    attributes = {"channels": int(mask.shape[2]), "encoding": "nucls (ch1, ch2) pair"}
    # the masks draw the CSV's nuclei again: exporters that write "nuclei" skip them
    derived = {"duplicate_of": "nuclei"} if case.polygons else {}
    return [
        LabelMask("nucleus instances", instances, NUCLS_SCHEMA, "instance", instance_classes, {**attributes, **derived}),
        LabelMask("nucleus classes", classes, NUCLS_SCHEMA, "semantic", attributes=dict(derived)),
        LabelMask("fov", fov, NUCLS_FOV_SCHEMA, "semantic"),
    ]


def _parse_csv(text: str) -> tuple[list[dict], list[str]]:
    """Rows as dicts keyed by the header (the unnamed index column is ``""``), and the header."""
    reader = csv.reader(io.StringIO(text))
    try:
        columns = next(reader)
    except StopIteration:
        return [], list(CSV_COLUMNS)
    rows = [dict(zip(columns, values, strict=False)) for values in reader if values]
    return rows, columns


def _numbers(text) -> list[float]:
    if isinstance(text, (list, tuple, np.ndarray)):
        return [float(v) for v in text]
    return [float(v) for v in str(text).split(",") if v.strip()]


def _polygons_from_rows(rows: Sequence[dict], fname: str, warnings: list[str]) -> PolygonSet:
    """The nuclei of CSV-like rows; bad rows are reported and skipped."""
    polygons, classes, attributes = [], [], []
    columns = set(rows[0]) if rows else set(CSV_COLUMNS)
    has_coords = {"coords_x", "coords_y"} <= columns
    has_box = {"xmin", "ymin", "xmax", "ymax"} <= columns
    missing = [c for c in CSV_COLUMNS[1:] if c not in columns]
    if missing:
        how = "" if has_coords else (" rectangles from xmin..ymax are used" if has_box else " no nucleus can be placed")
        warnings.append(f"{fname}: missing columns {', '.join(missing)};{how or ' the rows still load'}")
    if has_coords:  # every row's vertices in one numpy parse, not a float object per vertex
        from ..nuclei.nucls import parse_rings

        texts_x = [",".join(map(str, v)) if isinstance(v, (list, tuple, np.ndarray)) else str(v)
                   for v in (row["coords_x"] for row in rows)]
        texts_y = [",".join(map(str, v)) if isinstance(v, (list, tuple, np.ndarray)) else str(v)
                   for v in (row["coords_y"] for row in rows)]
        vertices, lengths, good = parse_rings(texts_x, texts_y)
        ring_of_row = np.full(len(rows), -1)
        ring_of_row[good] = np.arange(int(good.sum()))
        starts = np.concatenate([[0], np.cumsum(lengths)])
    for number, row in enumerate(rows):
        label = f"{fname}: row {row.get('', number)}"
        raw = str(row.get("raw_classification") or row.get("main_classification") or "unlabeled")
        try:
            if has_coords:
                k = ring_of_row[number]
                if k < 0:
                    xs, ys = _numbers(row["coords_x"]), _numbers(row["coords_y"])  # names the problem below
                else:
                    xs, ys = vertices[starts[k]:starts[k + 1]].T
            elif has_box:
                x0, y0, x1, y1 = (float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax"))
                xs, ys = [x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0]
            else:
                continue
        except (ValueError, TypeError):
            warnings.append(f"{label}: coordinates are not numbers; skipped")
            continue
        if len(xs) != len(ys) or len(xs) < 3:
            warnings.append(f"{label}: coords_x and coords_y differ in length or have under 3 vertices; skipped")
            continue
        ring = np.column_stack([ys, xs])
        if not np.isfinite(ring).all() or (ring < 0).any():
            warnings.append(f"{label}: NaN or negative coordinates; skipped")
            continue
        closed = len(ring) > 3 and np.array_equal(ring[0], ring[-1])
        if closed:
            ring = ring[:-1]
        kind = "rectangle" if str(row.get("type", "polyline")) == "rectangle" else "polygon"
        polygons.append(Polygon(ring, kind=kind))
        classes.append(raw)
        attributes.append({"row": dict(row), "closed": closed})
    schema = NUCLS_SCHEMA
    unknown = [c for c in dict.fromkeys(classes) if c not in schema]
    if unknown:
        start = max(schema.codes) + 1
        schema = schema.with_classes(
            ClassInfo(start + i, name, NUCLS_SCHEMA.color_of(base_class(name)) if base_class(name) in NUCLS_SCHEMA
                      else (0.5, 0.5, 0.5, 1.0), f"corrected: {base_class(name)}")
            for i, name in enumerate(unknown)
        )
    return PolygonSet("nuclei", polygons, classes, schema, attributes)


# --------------------------------------------------------------------------- parquet (Hugging Face copy)


def read_nucls_parquet(path: Path) -> list[Case]:
    """Read a local parquet export of ``minhanhto09/NuCLS_dataset`` (needs pyarrow)."""
    try:
        import pyarrow.parquet as pq
    except ImportError as error:
        raise NsclcFormatError(path, "reading the NuCLS parquet export needs pyarrow (pip install pyarrow)") from error
    table = pq.read_table(path)
    needed = {"file_name", "annotation_coordinates"}
    if not needed <= set(table.column_names):
        raise NsclcFormatError(path, f"has no {', '.join(sorted(needed - set(table.column_names)))} column")
    cases = []
    for number, record in enumerate(table.to_pylist()):
        stem = Path(str(record["file_name"])).stem
        case = _new_case(stem, str(path))
        case.provenance.format = "nucls-parquet"
        rgb = _image_bytes(record.get("rgb_image"), f"{path.name} row {number} rgb_image")
        if rgb is not None:
            case.image.data = rgb[..., :3] if rgb.ndim == 3 else rgb
            case.image.rgb = case.image.data.ndim == 3
            case.image.shape = tuple(case.image.data.shape[:2])
        _place(case, stem)
        rows = _rows_from_hf(record.get("annotation_coordinates"))
        case.polygons.append(_polygons_from_rows(rows, f"{path.name} row {number}", case.provenance.warnings))
        mask = _image_bytes(record.get("mask_image"), f"{path.name} row {number} mask_image", as_mask=True)
        if mask is not None and mask.ndim == 3:
            case.masks.extend(_masks_from_array(_fit_to_rgb(mask, case, Path(path)), case))
        cases.append(case)
    return cases


def _image_bytes(value, name: str, as_mask: bool = False) -> np.ndarray | None:
    """Pixels of a Hugging Face ``Image`` cell (``{"bytes", "path"}``) or raw bytes (see ``imageio.read_pixels``)."""
    if value is None:
        return None
    data = value.get("bytes") if isinstance(value, dict) else value
    if not data:
        return None
    return imageio.read_pixels(bytes(data), as_mask=as_mask, name=name)[0]


def _rows_from_hf(value) -> list[dict]:
    """CSV-like rows from the ``annotation_coordinates`` cell: a dict of lists or a list of dicts."""
    if value is None:
        return []
    if isinstance(value, dict):
        keys = list(value)
        count = len(value[keys[0]]) if keys else 0
        return [{"": str(i), **{k: value[k][i] for k in keys}} for i in range(count)]
    return [{"": str(i), **dict(item)} for i, item in enumerate(value)]


# --------------------------------------------------------------------------- writing


def _format_number(value) -> str:
    value = float(value)
    return str(round(value)) if abs(value - round(value)) < 1e-9 else repr(value)


def rows_for(objects: PolygonSet, columns: Sequence[str]) -> list[list[str]]:
    """CSV rows of a polygon set: untouched rows verbatim, others rebuilt with main/super from raw."""
    out = []
    used = [int(a["row"][""]) for a in objects.attributes if "row" in a and str(a["row"].get("", "")).isdigit()]
    next_index = max(used, default=-1) + 1
    for polygon, raw, attrs in zip(objects.polygons, objects.classes, objects.attributes, strict=True):
        row = attrs.get("row")
        raw = str(raw)
        if row is not None and _row_unchanged(row, polygon, raw, attrs):
            out.append([str(row.get(c, "")) for c in columns])
            continue
        ring = polygon.exterior[:, -2:]
        closed = np.vstack([ring, ring[:1]])
        xs, ys = closed[:, 1], closed[:, 0]
        index = row.get("", "") if row is not None else ""
        if index == "":
            index, next_index = str(next_index), next_index + 1
        values = dict(row or {})
        values.update({
            "": index,
            "raw_classification": raw,
            "main_classification": NUCLS_SCHEMA.level(raw, "main"),
            "super_classification": NUCLS_SCHEMA.level(raw, "super"),
            "type": "rectangle" if polygon.kind == "rectangle" else "polyline",
            "xmin": _format_number(xs.min()), "ymin": _format_number(ys.min()),
            "xmax": _format_number(xs.max()), "ymax": _format_number(ys.max()),
            "coords_x": ",".join(_format_number(v) for v in xs),
            "coords_y": ",".join(_format_number(v) for v in ys),
        })  # fmt: skip
        out.append([str(values.get(c, "")) for c in columns])
    return out


def _row_unchanged(row: dict, polygon: Polygon, raw: str, attrs: dict) -> bool:
    if str(row.get("raw_classification", raw)) != raw or polygon.holes:
        return False
    try:
        xs, ys = _numbers(row["coords_x"]), _numbers(row["coords_y"])
    except (KeyError, ValueError):
        return False
    ring = np.column_stack([ys, xs])
    if attrs.get("closed"):
        ring = ring[:-1]
    kind = "rectangle" if str(row.get("type", "polyline")) == "rectangle" else "polygon"
    return kind == polygon.kind and ring.shape == polygon.exterior[:, -2:].shape and np.array_equal(
        ring, polygon.exterior[:, -2:]
    )


def csv_text(case: Case) -> str:
    """The NuCLS CSV of a case's polygons (all polygon sets, in order)."""
    columns = list(case.document.get("nucls_columns") or CSV_COLUMNS)
    newline = case.document.get("nucls_newline", "\n")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=newline)
    writer.writerow(columns)
    for objects in case.polygons:
        writer.writerows(rows_for(objects, columns))
    return buffer.getvalue()


def mask_array(case: Case) -> np.ndarray | None:
    """The NuCLS mask of a case: its instance mask if the nuclei are as read, else the polygons rasterised."""
    instance = next((m for m in case.masks if m.kind == "instance"), None)
    fov_mask = next((m for m in case.masks if m.schema.name == NUCLS_FOV_SCHEMA.name), None)
    channels = int(instance.attributes.get("channels", 3)) if instance is not None else 3
    channels = channels if channels in (3, 4) else 3
    fov = None if fov_mask is None else np.asarray(fov_mask.data)
    if instance is not None:
        # the mask as read, with only the edited nuclei changed (re-rasterising all would move untouched ones)
        codes = {i: class_code(name) for i, name in instance.instance_classes.items()}
        edits = _nucleus_edits(case)
        instances = np.asarray(instance.data)
        if edits:
            try:
                instances, codes = apply_edits(instances, codes, edits, _rasterize_nuclei, MAX_INSTANCES)
            except ValueError as error:
                raise NsclcFormatError(case.name, str(error)) from error
        return encode_mask(instances, codes, fov, channels)
    shape = case.image.shape or (None if fov is None else fov.shape)
    if shape is None or not case.polygons:
        return None
    polygons = [p for objects in case.polygons for p in objects.polygons]
    names = [str(c) for objects in case.polygons for c in objects.classes]
    if len(polygons) > MAX_INSTANCES:
        raise NsclcFormatError(case.name, f"{len(polygons)} nuclei exceed the {MAX_INSTANCES} a NuCLS mask can hold")
    ids = np.arange(1, len(polygons) + 1)
    instances = _rasterize_nuclei(polygons, tuple(shape[-2:]), ids.tolist())
    codes = {int(i): class_code(n) for i, n in zip(ids, names, strict=True)}
    return encode_mask(instances, codes, fov, channels)


def _rasterize_nuclei(polygons: Sequence[Polygon], shape: tuple[int, int], ids: Sequence[int]) -> np.ndarray:
    from ..geometry import rasterize_polygons

    return rasterize_polygons(_pixel_polygons(polygons), tuple(shape[-2:]), list(ids), dtype=np.int32)


def _row_key(row: dict) -> tuple:
    return row.get(""), row.get("coords_x"), row.get("coords_y")


def _row_ring(row: dict) -> np.ndarray | None:
    """A CSV row's outline, ``(y, x)`` pixels, or ``None`` if it has no readable coordinates."""
    try:
        xs, ys = _numbers(row["coords_x"]), _numbers(row["coords_y"])
    except (KeyError, ValueError):
        return None
    return np.column_stack([ys, xs]) if len(xs) == len(ys) and len(xs) >= 3 else None


def _nucleus_edits(case: Case) -> list[NucleusEdit]:
    """How the case's nuclei differ from the CSV rows the mask was read with: changed, new and deleted ones."""
    edits, kept = [], set()
    for objects in case.polygons:
        for polygon, raw, attrs in zip(objects.polygons, objects.classes, objects.attributes, strict=True):
            row = attrs.get("row")
            code = class_code(str(raw))
            if row is None:
                edits.append(NucleusEdit(None, polygon, code))
                continue
            kept.add(_row_key(row))
            if _row_unchanged(row, polygon, str(raw), attrs):
                continue
            same_outline = _row_unchanged(row, polygon, str(row.get("raw_classification", raw)), attrs)
            edits.append(NucleusEdit(_row_ring(row), None if same_outline else polygon, code))
    for row in case.document.get("nucls_read_rows", ()):
        ring = _row_ring(row)
        if _row_key(row) not in kept and ring is not None:
            edits.append(NucleusEdit(ring, None, 0))
    return edits


def _pixel_polygons(polygons: Sequence[Polygon]) -> list[Polygon]:
    """NuCLS vertices are pixel indices and their edges are filled: widen by half a pixel."""
    out = []
    for polygon in polygons:
        ring = polygon.exterior[:, -2:]
        centre = ring.mean(axis=0)
        out.append(Polygon(ring + 0.5 * np.sign(ring - centre), kind=polygon.kind))
    return out


def write_nucls(cases: Sequence[Case], path: Path, *, overwrite: bool = False) -> list[Path]:
    """Write NuCLS files.

    Parameters
    ----------
    cases : sequence of Case
    path : Path
        A ``.csv`` file (one case: its nuclei only) or a folder, which receives
        ``csv/{stem}.csv``, ``mask/{stem}.png`` (pair encoding) and
        ``rgb/{stem}.png`` for every case.
    overwrite : bool
        Replace existing files.
    """
    path = Path(path)
    if path.suffix.lower() == ".csv":
        if len(cases) != 1:
            raise NsclcFormatError(path, f"a NuCLS CSV holds one FOV, got {len(cases)}; give a folder instead")
        refuse_overwrite(path, overwrite)
        return [atomic_write_text(path, csv_text(cases[0]))]
    written = []
    for case in cases:
        targets = {"csv": path / "csv" / f"{case.name}.csv", "mask": path / "mask" / f"{case.name}.png",
                   "rgb": path / "rgb" / f"{case.name}.png"}  # fmt: skip
        mask = mask_array(case)
        for key, target in targets.items():
            if key == "mask" and mask is None or key == "rgb" and case.image.data is None and not case.image.path:
                continue
            refuse_overwrite(target, overwrite)
        written.append(atomic_write_text(targets["csv"], csv_text(case)))
        if mask is not None:
            written.append(_write_png(targets["mask"], mask))
        if case.image.path and Path(case.image.path).suffix.lower() == ".png" and Path(case.image.path).is_file():
            if Path(case.image.path).resolve() != targets["rgb"].resolve():
                written.append(atomic_write_bytes(targets["rgb"], Path(case.image.path).read_bytes()))
        elif case.image.data is not None:
            written.append(_write_png(targets["rgb"], np.asarray(case.image.data)))
    return written


def _write_png(target: Path, array: np.ndarray) -> Path:
    from PIL import Image

    with atomic_path(target) as tmp:
        Image.fromarray(np.ascontiguousarray(array)).save(tmp, format="PNG")
    return target


# --------------------------------------------------------------------------- detection


def sniff_nucls(path: Path) -> bool:
    """A NuCLS root, one of its files, or a parquet export naming NuCLS fields."""
    path = Path(path)
    if path.suffix.lower() == ".parquet" and path.is_file():
        try:
            import pyarrow.parquet as pq

            return "annotation_coordinates" in pq.read_schema(path).names
        except (ImportError, OSError, ValueError):  # pyarrow missing or not a parquet file
            return False
    if _is_root(path):
        return any((path / "csv").glob("*.csv")) or any((path / "mask").glob("*.png"))
    return path.is_file() and path.parent.name in _FOLDERS and _is_root(path.parent.parent)


def nucls_object_fields(attributes: dict) -> list[str]:
    """A nucleus's CSV index, which other formats do not keep."""
    row = attributes.get("row") or {}
    return ["CSV index"] if str(row.get("", "")).strip() else []


FORMAT = FormatSpec(
    name="nucls",
    title="NuCLS nuclei (rgb/ mask/ csv/)",
    sniff=sniff_nucls,
    read=read_nucls,
    write=write_nucls,
    extensions=(".csv",),
    priority=50,
    is_dataset=True,
    shared_files=("rgb/*",),
    read_correction=read_correction,
    layout="csv/ with rgb/ or mask/",
    produces=frozenset({"polygons", "mask"}),
    extras=("CSV index",),
    object_fields=nucls_object_fields,
    family="nucls",
    holds={
        "polygons": exact("CSV rows, and the pair-encoded mask"),
        "mask": exact("the FOV in the mask"),
        "instances": exact("the pair-encoded mask"),
    },
    accepts=("nucls", "nucls-parquet"),
    aliases=("nucls-parquet",),
    per_case=True,
)
