"""NSCLC-NAT-WSI: tumour beds after neoadjuvant therapy (FORMATS.md §1).

A dataset root holds ``Images/`` (resized whole-slide RGB images),
``SegmentationClass/`` (single-channel masks: 0 background, 1 tumour bed;
possibly palette PNGs) and ``Mask/`` (expert masks whose encoding is not
documented). One case is one file stem found in any of the three folders.

``Mask/`` is read whatever its encoding: binary 0/1, 0/255, palette or
RGB-coloured. The encoding found is reported in ``provenance.details
["mask_encoding"]`` and kept in the mask's attributes, so a corrected mask is
written back the same way (0/255 stays 0/255).

Opening the root lists every case without decoding any pixels (images and
masks are lazy dask arrays); the first case is decoded and checked.
Opening a single file of ``Images/`` (or of a mask folder) finds the other
files of its case by stem.
"""

from __future__ import annotations

import re
from pathlib import Path

from .. import imageio
from ..conversion import exact
from ..formats import masks as mask_io
from ..model import (
    Case,
    ClassInfo,
    ClassSchema,
    ImageRef,
    LabelMask,
    NsclcFormatError,
    Provenance,
    default_color,
    value_counts,
)
from ..registry import FormatSpec

__all__ = ["FORMAT", "NAT_SCHEMA", "find_root", "read_nsclc_nat"]

IMAGES, MASK, SEGMENTATION = "Images", "Mask", "SegmentationClass"

_CLASSES = [
    # code, name, colour, description
    (1, "tumour bed", "#ff7f0e", "Annotated tumour bed region"),
]

#: SegmentationClass/: 0 background, 1 tumour bed.
NAT_SCHEMA = ClassSchema(
    "nsclc-nat", tuple(ClassInfo(code, name, color, text) for code, name, color, text in _CLASSES), background=0
)


def _natural_key(stem: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", stem)]


def _files(folder: Path, suffixes) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in suffixes and not path.name.startswith("."):
            found.setdefault(path.stem, path)
    return found


def _is_root(path: Path) -> bool:
    return path.is_dir() and (path / IMAGES).is_dir() and ((path / MASK).is_dir() or (path / SEGMENTATION).is_dir())


def find_root(path: str | Path) -> Path | None:
    """The NSCLC-NAT root of ``path`` (the root itself, or a file in one of its folders)."""
    path = Path(path)
    if _is_root(path):
        return path
    if path.is_file() and path.parent.name in (IMAGES, MASK, SEGMENTATION) and _is_root(path.parent.parent):
        return path.parent.parent
    return None


def mask_schema(encoding: str, values=()) -> ClassSchema:
    """The schema for ``Mask/``: tumour bed is code 1, as in ``SegmentationClass/``, whatever the encoding.

    A binary mask's one foreground value (255 in a 0/255 mask) reads as 1
    and is written back as it was (see :func:`~napari_nsclc.formats.masks.lazy_mask`);
    a mask of several values keeps them, each its own class.
    """
    present = sorted(int(v) for v in values if int(v) != 0)
    if len(present) > 1:
        extra = tuple(ClassInfo(v, f"class {v}", default_color(v)) for v in present if v != 1)
        return ClassSchema("nsclc-nat-mask", (*NAT_SCHEMA.classes, *extra), background=0)
    return NAT_SCHEMA


def _detect_mask_encoding(path: Path) -> tuple[str, dict, ClassSchema, list]:
    """Decode one ``Mask/`` file to learn the dataset's encoding."""
    codes, info = mask_io.read_mask(path)
    values = value_counts(codes)[0].tolist()
    described = info["described"]
    return described, info, mask_schema(described, values), values


def _lazy_case(root: Path, stem: str, image: Path | None, seg: Path | None, mask: Path | None, mask_info) -> Case:
    """A case whose pixels (and sizes) are read only when it is loaded."""
    details = {"root": str(root)}
    warnings: list[str] = []
    image_ref = ImageRef(path=str(image) if image else None, name=f"{stem} image", unit="px", rgb=image is not None)
    sized = None  # the first lazy array of the case: it tells the size of missing masks
    if image is not None:
        image_ref.data = sized = imageio.lazy_image(image)
    masks = []
    if seg is not None:
        lazy = mask_io.lazy_mask(seg)
        attributes = mask_io.mask_attributes(seg, _header_info("grey"), root)
        masks.append(LabelMask("tumour bed (SegmentationClass)", lazy, NAT_SCHEMA, attributes=attributes))
        sized = sized or lazy
    if mask is not None:
        encoding, info, schema = mask_info
        binary = len(schema.classes) == 1
        lazy = mask_io.lazy_mask(mask, colors=_colors_table(info), foreground=1 if binary else None)
        fields = {**_header_info(info.get("encoding", "grey"), info), **_encoding_fields(info)}
        masks.append(
            LabelMask("expert mask (Mask)", lazy, schema, attributes=mask_io.mask_attributes(mask, fields, root))
        )
        details["mask_encoding"] = encoding
        sized = sized or lazy
    if image is None:
        warnings.append(f"{stem}: no image in {IMAGES}/ for this case; showing its masks alone")
    if sized is None:
        raise NsclcFormatError(root, f"case {stem} has no readable file")
    if seg is None:
        target = root / SEGMENTATION / f"{stem}.png"
        warnings.append(f"{SEGMENTATION}/{stem}.png: missing; an empty tumour-bed mask is ready to paint")
        masks.insert(0, mask_io.empty_mask("tumour bed (SegmentationClass)", sized, NAT_SCHEMA, target, root))
    if mask is None:
        warnings.append(f"{MASK}/{stem}: missing; an empty expert mask is ready to paint")
        empty = mask_io.empty_mask("expert mask (Mask)", sized, NAT_SCHEMA, root / MASK / f"{stem}.png", root)
        if mask_info is not None and mask_info[0] == "binary 0/255":
            empty.attributes["value_map"] = [[255, 1]]  # painted, it is written like the folder's other masks
        masks.append(empty)
    provenance = Provenance(source=str(root), format="nsclc-nat", reader=__name__, details=details, warnings=warnings)
    return Case(stem, image=image_ref, masks=masks, provenance=provenance)


def _header_info(encoding: str, probe: dict | None = None) -> dict:
    """How a mask is encoded, without opening it: the folder's probe tells (a folder uses one encoding).

    The mask is decoded (and checked) when its case is loaded; :func:`load_case`
    then records the file's own mode.
    """
    info = {"encoding": encoding, "lazy_header": True}
    if probe is not None:
        info.update(mode=probe.get("mode"), dtype=probe.get("dtype"))
    return info


def _encoding_fields(info: dict) -> dict:
    return {key: info[key] for key in ("palette", "colors", "described") if key in info}


def _colors_table(info: dict):
    if "colors" not in info:
        return None
    return {tuple(int(c) for c in entry[:3]): int(entry[3]) for entry in info["colors"]}


def read_nsclc_nat(path: str | Path) -> list[Case]:
    """Read an NSCLC-NAT root (every case, lazily) or one of its files (that case).

    Returns
    -------
    list of Case
        In natural order of the stems (``1, 2, ..., 10``). Each case has the
        image, the ``SegmentationClass`` mask and the ``Mask/`` mask (an
        empty one, with a warning, when a file is missing). The first case
        (or the one file's case) is decoded and checked.

    Raises
    ------
    NsclcFormatError
        When the folder holds no image or mask at all.
    """
    path = Path(path)
    root = find_root(path)
    if root is None:
        raise NsclcFormatError(path, f"not an NSCLC-NAT folder (needs {IMAGES}/ with {MASK}/ or {SEGMENTATION}/)")
    images = _files(root / IMAGES, mask_io.IMAGE_SUFFIXES)
    segs = _files(root / SEGMENTATION, mask_io.MASK_SUFFIXES)
    expert = _files(root / MASK, mask_io.MASK_SUFFIXES + (".jpg", ".jpeg"))
    stems = sorted(set(images) | set(segs) | set(expert), key=_natural_key)
    if path.is_file():
        stems = [path.stem]
    if not stems:
        raise NsclcFormatError(root, f"the {IMAGES}/, {MASK}/ and {SEGMENTATION}/ folders are empty")
    mask_info = None
    if expert:
        probe = expert.get(stems[0]) or next(iter(expert.values()))
        encoding, info, schema, _values = _detect_mask_encoding(probe)
        mask_info = (encoding, info, schema)
    cases = [_lazy_case(root, stem, images.get(stem), segs.get(stem), expert.get(stem), mask_info) for stem in stems]
    for case in cases:
        if mask_info is not None:
            case.provenance.details["mask_encoding"] = mask_info[0]
        case.provenance.details["cases"] = len(cases)
    cases[0] = mask_io.load_case(cases[0])
    return cases


def _sniff(path: Path) -> bool:
    path = Path(path)
    if path.is_file() and path.suffix.lower() not in mask_io.IMAGE_SUFFIXES + mask_io.MASK_SUFFIXES:
        return False
    return find_root(path) is not None


FORMAT = FormatSpec(
    name="nsclc-nat",
    title="NSCLC-NAT-WSI dataset (Images/, Mask/, SegmentationClass/)",
    sniff=_sniff,
    read=read_nsclc_nat,
    write=mask_io.write_corrections,
    extensions=(".png",),
    priority=50,
    is_dataset=True,
    layout="Images/ with Mask/ or SegmentationClass/",
    produces=frozenset({"mask"}),
    family="masks",
    layered=True,
    holds={"mask": exact("SegmentationClass/ and Mask/ mirrored, each in the encoding it came in")},
    accepts=("nsclc-nat",),
    per_case=True,
)
