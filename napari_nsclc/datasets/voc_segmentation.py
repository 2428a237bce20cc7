"""PASCAL VOC-style segmentation folders (FORMATS.md §7).

A root holds ``SegmentationClass/`` (palette PNGs: value = class index,
255 = void), optionally ``SegmentationObject/`` (palette PNGs: value =
object id, 255 = void), ``JPEGImages/`` (the images), ``labelmap.txt``
(CVAT/VOC class list with colours; without it, the 21 VOC classes are
assumed) and ``ImageSets/Segmentation/*.txt`` (split lists).

Each case has the class mask and, when present, the object mask as an
instance Labels layer whose objects are classed by the class mask under
them. Palettes and values are kept: a corrected mask is written back as a
palette PNG with the same palette.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import imageio
from .._atomic import atomic_write_text
from ..conversion import PIXELS, exact, lossy, needs_image_size
from ..formats import masks as mask_io
from ..model import Case, ClassInfo, ClassSchema, ImageRef, LabelMask, NsclcFormatError, Provenance
from ..registry import FormatSpec

__all__ = ["FORMAT", "VOC_CLASSES", "VOC_SCHEMA", "instance_classes", "read_voc_segmentation"]

#: The 20 PASCAL VOC classes after "background", in index order.
VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip

#: VOC's own schema (used when a folder has no labelmap.txt); 255 is "void".
VOC_SCHEMA = ClassSchema(
    "voc",
    (
        *(ClassInfo(i, name, mask_io.VOC_PALETTE[i]) for i, name in enumerate(VOC_CLASSES) if i),
        ClassInfo(255, "void", (*mask_io.VOC_PALETTE[255], 128), "border / ignore"),
    ),
    background=0,
)

CLASS_DIR, OBJECT_DIR, IMAGE_DIR = "SegmentationClass", "SegmentationObject", "JPEGImages"


def _root(path: Path) -> Path | None:
    path = Path(path)
    if path.is_dir() and (path / CLASS_DIR).is_dir():
        return path
    if path.is_file() and path.parent.name in (CLASS_DIR, OBJECT_DIR) and (path.parent.parent / CLASS_DIR).is_dir():
        return path.parent.parent
    return None


def _schema(root: Path) -> ClassSchema:
    labelmap = root / "labelmap.txt"
    if labelmap.is_file():
        schema = mask_io.read_labelmap(labelmap)
        classes = tuple(c for c in schema.classes if c.code != schema.background or c.name != "background")
        if 255 not in schema.codes:
            classes = (*classes, VOC_SCHEMA.by_code(255))
        return ClassSchema("voc-segmentation", classes, background=0)
    return VOC_SCHEMA


def _splits(root: Path) -> dict[str, list[str]]:
    folder = root / "ImageSets" / "Segmentation"
    out: dict[str, list[str]] = {}
    if folder.is_dir():
        for listing in sorted(folder.glob("*.txt")):
            for line in listing.read_text(encoding="utf-8").split():
                out.setdefault(line.strip(), []).append(listing.stem)
    return out


def instance_classes(objects: np.ndarray, classes: np.ndarray, schema: ClassSchema) -> dict[int, str]:
    """Class name of each object id: the most frequent class value under it (void and 0 excluded)."""
    objects = np.asarray(objects)
    classes = np.asarray(classes)
    out = {}
    for object_id in np.unique(objects):
        object_id = int(object_id)
        if object_id in (0, 255):
            continue
        under = classes[(objects == object_id) & (classes != 255) & (classes != 0)]
        if under.size == 0:
            out[object_id] = "void"
            continue
        values, counts = np.unique(under, return_counts=True)
        value = int(values[np.argmax(counts)])
        out[object_id] = schema.name_of(value) if value in schema.codes else f"<value {value}>"
    return out


def _image_for(root: Path, stem: str) -> Path | None:
    for folder in (IMAGE_DIR, "images", "Images"):
        for suffix in mask_io.IMAGE_SUFFIXES:
            candidate = root / folder / f"{stem}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def _case(root: Path, stem: str, schema: ClassSchema, splits: dict[str, list[str]]) -> Case:
    class_path = root / CLASS_DIR / f"{stem}.png"
    object_path = root / OBJECT_DIR / f"{stem}.png"
    image_path = _image_for(root, stem)
    warnings = []
    codes, info = mask_io.read_mask(class_path, schema)
    attributes = mask_io.mask_attributes(class_path, info, root)
    masks = [LabelMask("class", codes, schema, attributes=attributes)]
    warnings += mask_io.check_mask(codes, schema, class_path, None, info)
    if object_path.is_file():
        objects, object_info = mask_io.read_mask(object_path)
        mapping = instance_classes(objects, codes, schema)
        object_attributes = mask_io.mask_attributes(object_path, object_info, root)
        masks.append(
            LabelMask(
                "objects", objects, schema, kind="instance", instance_classes=mapping, attributes=object_attributes
            )
        )
    image = ImageRef(path=str(image_path) if image_path else None, name=f"{stem} image", unit="px", shape=codes.shape)
    if image_path is not None:
        pixels, _ = imageio.read_pixels(image_path)
        image.data, image.rgb = pixels, pixels.ndim == 3
        warnings += (
            mask_io.check_mask(codes, schema, class_path, pixels.shape, None)[:1]
            if pixels.shape[:2] != codes.shape
            else []
        )
    else:
        warnings.append(f"{IMAGE_DIR}/{stem}.jpg: image not found; showing the masks alone")
    details = {"root": str(root), "mask_encoding": info.get("described"), "loaded": True}
    if stem in splits:
        details["splits"] = splits[stem]
        image.metadata["splits"] = splits[stem]
    provenance = Provenance(
        source=str(root), format="voc-segmentation", reader=__name__, details=details, warnings=warnings
    )
    return Case(stem, image=image, masks=masks, provenance=provenance)


def read_voc_segmentation(path: str | Path) -> list[Case]:
    """Read a VOC segmentation root (one case per ``SegmentationClass`` PNG) or one of its masks.

    Raises
    ------
    NsclcFormatError
        When ``SegmentationClass/`` is empty or a mask cannot be decoded.
    """
    path = Path(path)
    root = _root(path)
    if root is None:
        raise NsclcFormatError(path, f"not a VOC segmentation folder (needs {CLASS_DIR}/)")
    stems = [path.stem] if path.is_file() else [p.stem for p in sorted((root / CLASS_DIR).glob("*.png"))]
    if not stems:
        raise NsclcFormatError(root / CLASS_DIR, "holds no PNG masks")
    schema = _schema(root)
    splits = _splits(root)
    return [_case(root, stem, schema, splits) for stem in stems]


def write_voc_segmentation(cases, path: Path, overwrite: bool = False, **_) -> list[Path]:
    """Write class and object masks as a VOC segmentation root.

    ``SegmentationClass/<case>.png`` holds one class mask per image (the first
    class mask, or the case's objects drawn into one) and
    ``SegmentationObject/<case>.png`` the ids of its first instance mask, both
    palette PNGs (255 = void). A mask read from a VOC root goes back with its
    own palette. ``labelmap.txt`` names the classes, ``JPEGImages/`` holds
    the images and ``ImageSets/Segmentation/`` lists them. When ``path`` is
    the root the masks were read from, everything goes to
    ``path/corrections/`` and the originals stay as they are.
    """
    from ..conversion import written_masks
    from .voc_detection import add_to_splits, place_image

    path = Path(path)
    sources = {str(Path(m.attributes["root"]).resolve()) for c in cases for m in c.masks if m.attributes.get("root")}
    root = path / "corrections" if str(path.resolve()) in sources else path
    written: list[Path] = []
    schema = None
    memberships: dict[str, list[str]] = {}
    for case in cases:
        masks = written_masks(case)
        semantic = next((m for m in masks if m.kind == "semantic" and not m.multiscale), None)
        semantic = semantic or mask_io.class_mask_from_objects(case)
        instance = next((m for m in masks if m.kind == "instance" and not m.multiscale), None)
        stem = mask_io._safe(case.name)
        for mask, folder in ((semantic, CLASS_DIR), (instance, OBJECT_DIR)):
            if mask is None:
                continue
            target = root / folder / f"{stem}.png"
            values = np.asarray(mask.data)
            if mask.attributes.get("encoding") == "palette" and str(mask.attributes.get("relative_path", "")).startswith(folder):
                written.append(mask_io.write_mask_like(values, target, mask.attributes, overwrite=overwrite))
            else:
                written.append(mask_io.write_mask_file(values, target, overwrite, palette=mask_io.palette_for(mask.schema)))
        if semantic is not None:
            schema = schema or semantic.schema
            place_image(case, root / IMAGE_DIR, overwrite)
            memberships[stem] = list(case.provenance.details.get("splits", []))
    if schema is not None and schema.classes:
        labelmap = root / "labelmap.txt"
        source = _source_labelmap(cases)
        if source is not None and _schema(source.parent).names == schema.names:
            written.append(atomic_write_text(labelmap, source.read_text(encoding="utf-8")))  # as it was
        else:
            written.append(mask_io.write_labelmap(mask_io._with_background(schema), labelmap, overwrite=True))
    written += add_to_splits(root, memberships, task="Segmentation")
    return written


def _source_labelmap(cases) -> Path | None:
    """The ``labelmap.txt`` of the VOC root the cases' masks were read from, if there is one."""
    for case in cases:
        for mask in case.masks:
            root = mask.attributes.get("root")
            if root and (Path(root) / "labelmap.txt").is_file():
                return Path(root) / "labelmap.txt"
    return None


FORMAT = FormatSpec(
    name="voc-segmentation",
    title="PASCAL VOC segmentation folder (SegmentationClass/, SegmentationObject/)",
    sniff=lambda path: _root(Path(path)) is not None and (Path(path).is_dir() or Path(path).suffix.lower() == ".png"),
    read=read_voc_segmentation,
    write=write_voc_segmentation,
    extensions=(".png",),
    priority=45,
    is_dataset=True,
    shared_files=("ImageSets/*", "JPEGImages/*", "labelmap.txt"),
    layout="SegmentationClass/",
    produces=frozenset({"mask", "instances"}),
    family="masks",
    holds={
        "mask": exact("palette PNGs in SegmentationClass/ with labelmap.txt"),
        "instances": exact("palette PNGs in SegmentationObject/"),
        "polygons": lossy("are drawn into the class mask", PIXELS),
        "holed polygons": lossy("are drawn into the class mask", PIXELS),
        "parts": lossy("are drawn into the class mask", PIXELS),
    },
    layers="first",
    check=needs_image_size("drawing objects into a mask", only_to_draw=True),
    per_case=True,
    merged_files=(("ImageSets/*/*.txt", "lines"), ("labelmap.txt", "first")),
)
