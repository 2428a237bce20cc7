"""IGNITE data toolkit, H&E tissue segmentation (FORMATS.md §3).

Layout: ``data/images/he/patient{P}_he_roi{R}.png`` and
``..._with_context.png``, masks with the same names in
``data/annotations/he/``, and ``data/data_overview.csv`` (``task, split,
image_path, annotation_path``) giving each ROI's split. Masks are
single-channel PNGs with the 16 IGNITE classes; 0 ("Unannotated") is ignored
and drawn transparent.

The class names and colours are IGNITE's own (the toolkit's evaluation code);
``samples/ignite/he_label_map.json`` from a third-party project calls class 2
"Tumor epithelium", which is the same class.

Trap: one third-party reading of a non-context mask saw values ``256 - label``
(254 for tumour). :func:`looks_like_256_minus_label` detects it; the reader
reports it and keeps the values; :func:`undo_256_minus_label` converts when
the user asks.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from .. import imageio
from ..conversion import exact
from ..formats import masks as mask_io
from ..model import Case, ClassInfo, ClassSchema, ImageRef, LabelMask, NsclcFormatError, Provenance
from ..registry import FormatSpec

__all__ = [
    "FORMAT",
    "IGNITE_HE_SCHEMA",
    "find_data_root",
    "looks_like_256_minus_label",
    "read_ignite_he",
    "undo_256_minus_label",
]

_CLASSES = [
    # code, name, RGBA colour (IGNITE evaluation code), description
    (0, "Unannotated", (0, 0, 0, 0), "not annotated; ignored in training and evaluation"),
    (1, "Background", (255, 255, 255, 255), "slide background"),
    (2, "Tumor cells", (0, 253, 255, 255), "tumour epithelium"),
    (3, "Reactive epithelium", (0, 249, 0, 255), ""),
    (4, "Stroma", (255, 251, 0, 255), ""),
    (5, "Inflammation", (255, 147, 0, 255), ""),
    (6, "Alveolar tissue", (255, 47, 146, 255), "healthy lung parenchyma"),
    (7, "Fatty tissue", (148, 55, 255, 255), ""),
    (8, "Necrotic tissue", (1, 25, 147, 255), ""),
    (9, "Erythrocytes", (255, 38, 0, 255), ""),
    (10, "Bronchial epithelium", (0, 143, 0, 255), "healthy epithelium"),
    (11, "Mucus/Plasma/Fluids", (146, 144, 0, 255), ""),
    (12, "Cartilage/Bone", (169, 169, 169, 255), ""),
    (13, "Macrophages", (83, 27, 147, 255), ""),
    (14, "Muscle", (255, 126, 121, 255), ""),
    (15, "Liver", (215, 131, 255, 255), "metastatic site"),
    (16, "Keratinization", (148, 23, 81, 255), ""),
]

#: The 16 IGNITE H&E tissue classes plus 0 Unannotated (transparent).
IGNITE_HE_SCHEMA = ClassSchema(
    "ignite-he",
    tuple(ClassInfo(code, name, color, text) for code, name, color, text in _CLASSES),
    background=0,
)

_STEM = re.compile(r"^patient(?P<patient>\d+)_he_roi(?P<roi>\d+)(?P<context>_with_context)?$")


def find_data_root(path: str | Path) -> Path | None:
    """The IGNITE ``data/`` folder for ``path``: ``data/`` itself, its parent, ``images/he``, or a file in it."""
    path = Path(path)
    candidates = [path, path / "data"]
    if path.is_file():
        candidates = [path.parent.parent.parent]
    elif path.name == "he" and path.parent.name in ("images", "annotations"):
        candidates.append(path.parent.parent)
    for candidate in candidates:
        if (candidate / "images" / "he").is_dir() and (candidate / "annotations" / "he").is_dir():
            return candidate
    return None


def looks_like_256_minus_label(values) -> bool:
    """Whether a mask's values look like ``256 - label`` (all non-zero values in 240..255)."""
    present = [int(v) for v in np.unique(np.asarray(values)) if int(v) != 0]
    return bool(present) and all(240 <= v <= 255 for v in present)


def undo_256_minus_label(mask: np.ndarray) -> np.ndarray:
    """``256 - value`` for non-zero pixels (0 stays 0), as uint8."""
    mask = np.asarray(mask)
    out = np.where(mask != 0, 256 - mask.astype(np.int32), 0)
    return out.astype(np.uint8)


def _splits(data: Path) -> dict[str, str]:
    """Split per image stem, from ``data_overview.csv`` (context variants share their ROI's split)."""
    table = data / "data_overview.csv"
    if not table.is_file():
        return {}
    splits = {}
    with table.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if "he" not in (row.get("task") or "") and "/he/" not in (row.get("image_path") or ""):
                continue
            stem = Path(row.get("image_path") or "").stem
            if stem:
                splits[stem] = row.get("split", "")
    return splits


def _case(data: Path, stem: str, image: Path | None, mask: Path | None, split: str | None) -> Case:
    warnings = []
    match = _STEM.match(stem)
    metadata = {"variant": "with_context" if stem.endswith("_with_context") else "roi"}
    if match:
        metadata.update(patient=int(match["patient"]), roi=int(match["roi"]))
    if split:
        metadata["split"] = split
    ref = ImageRef(path=str(image) if image else None, name=f"{stem} H&E", unit="px", rgb=True, metadata=metadata)
    sized = None  # a lazy array of the case's size, for a missing mask
    if image is not None:
        ref.data = sized = imageio.lazy_image(image)
    else:
        ref.rgb = False
        warnings.append(f"images/he/{stem}.png: missing; showing the tissue mask alone")
    if mask is not None:
        lazy = mask_io.lazy_mask(mask)
        header = {"encoding": "grey", "lazy_header": True}
        labels = LabelMask("tissue", lazy, IGNITE_HE_SCHEMA, attributes=mask_io.mask_attributes(mask, header, data))
    else:
        target = data / "annotations" / "he" / f"{stem}.png"
        warnings.append(f"annotations/he/{stem}.png: missing; an empty tissue mask is ready to paint")
        labels = mask_io.empty_mask("tissue", sized, IGNITE_HE_SCHEMA, target, data)
    details = {"root": str(data), **({"split": split} if split else {})}
    provenance = Provenance(source=str(data), format="ignite-he", reader=__name__, details=details, warnings=warnings)
    return Case(stem, image=ref, masks=[labels], provenance=provenance)


def check_loaded_case(case: Case) -> None:
    """Report the ``256 - label`` trap in a decoded case (called by :func:`~napari_nsclc.formats.masks.load_case`)."""
    for mask in case.masks:
        if mask.kind == "semantic" and looks_like_256_minus_label(mask.data):
            message = (
                f"{Path(mask.attributes.get('path', mask.name)).name}: values look like 256 - label "
                "(e.g. 254 for 2 Tumor cells); kept unchanged. Convert with "
                "napari_nsclc.datasets.ignite_he.undo_256_minus_label if that is what happened"
            )
            if message not in case.provenance.warnings:
                case.provenance.warnings.append(message)
                case.provenance.details["suspected_256_minus_label"] = True


def read_ignite_he(path: str | Path) -> list[Case]:
    """Read IGNITE H&E ROIs: every image of ``images/he`` (lazily), or one file's case.

    Returns
    -------
    list of Case
        One per image (ROI and ``_with_context`` variant are separate
        cases), sorted by patient and ROI; ``image.metadata`` holds
        ``patient``, ``roi``, ``variant`` and ``split``. The first case is
        decoded and checked.
    """
    path = Path(path)
    data = find_data_root(path)
    if data is None and _is_lone_ignite_mask(path):
        return [_lone_mask_case(path)]
    if data is None:
        raise NsclcFormatError(path, "not an IGNITE data folder (needs images/he and annotations/he)")
    images = {p.stem: p for p in sorted((data / "images" / "he").glob("*.png"))}
    masks = {p.stem: p for p in sorted((data / "annotations" / "he").glob("*.png"))}
    if path.is_file():
        stems = [path.stem]
    else:
        stems = sorted(
            set(images) | set(masks), key=lambda s: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]
        )
    if not stems:
        raise NsclcFormatError(data, "images/he and annotations/he are empty")
    splits = _splits(data)
    cases = []
    for stem in stems:
        split = splits.get(stem) or splits.get(stem.removesuffix("_with_context"))
        cases.append(_case(data, stem, images.get(stem), masks.get(stem), split))
    cases[0] = mask_io.load_case(cases[0])
    return cases


def _is_lone_ignite_mask(path: Path) -> bool:
    """A single-channel PNG named as IGNITE names H&E masks, outside an IGNITE folder tree."""
    return path.is_file() and _STEM.match(path.stem) is not None and mask_io.FORMAT.sniff(path)


def _lone_mask_case(path: Path) -> Case:
    """An IGNITE tissue mask that travelled alone: IGNITE's classes, and the image beside it if any."""
    case = mask_io.read_image_mask_pair(mask_io.image_for_mask(path), path, schema=IGNITE_HE_SCHEMA)
    case.masks[0].name = "tissue"
    case.provenance.format = "ignite-he"
    case.provenance.reader = __name__
    check_loaded_case(case)
    return case


def _sniff(path: Path) -> bool:
    path = Path(path)
    if path.is_file():
        in_tree = path.suffix.lower() == ".png" and path.parent.name == "he" and find_data_root(path) is not None
        return in_tree or _is_lone_ignite_mask(path)
    return find_data_root(path) is not None


FORMAT = FormatSpec(
    name="ignite-he",
    title="IGNITE H&E tissue segmentation (data/images/he, data/annotations/he)",
    sniff=_sniff,
    read=read_ignite_he,
    write=mask_io.write_corrections,
    extensions=(".png",),
    priority=50,
    is_dataset=True,
    layout="data/images/he/ and data/annotations/he/",
    produces=frozenset({"mask"}),
    family="masks",
    holds={"mask": exact("annotations/he/ mirrored")},
    accepts=("ignite-he",),
    per_case=True,
)
