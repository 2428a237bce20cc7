"""Writing label masks: PNG/TIFF files, VOC palette PNGs, ``labelmap.txt`` and corrections.

The writing half of :mod:`napari_nsclc.formats.masks`, which imports every name
here back (so ``masks.write_mask_like`` and the rest keep working) and declares
the format. Codes are written exactly: 8-bit when they fit, else 16-bit; a mask
read from a file goes back in its original encoding (:func:`write_mask_like`);
objects with no class mask are drawn into one (:func:`class_mask_from_objects`);
``labelmap.txt`` names the classes (:func:`labelmap_text`, :func:`read_labelmap`).
:mod:`~napari_nsclc.formats.masks` imports this module while it loads, so the
few reading helpers used here (``VOC_PALETTE``, ``remap_values``,
``_decoded_attributes``) are imported from it inside the functions that need them.
Starting with ``_``, this module is not registered as a format.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_path, atomic_write_text, refuse_overwrite
from ..conversion import PIXELS, exact, lossy
from ..model import Case, ClassInfo, ClassSchema, LabelMask, NothingToWrite, NsclcFormatError


def _as_exact_dtype(values: np.ndarray, like: str | None = None) -> np.ndarray:
    """``uint8`` when the values fit (unless the original was wider), else ``uint16``."""
    values = np.asarray(values)
    if values.dtype == bool:
        values = values.astype(np.uint8)
    if values.size and (values.min() < 0 or values.max() > 65535):
        raise ValueError(f"mask values {values.min()}..{values.max()} do not fit a 16-bit PNG/TIFF")
    wide = like is not None and np.dtype(like).itemsize > 1
    if not wide and (values.size == 0 or values.max() <= 255):
        return values.astype(np.uint8, copy=False)
    return values.astype(np.uint16, copy=False)


def _save_pil(image, target: Path, overwrite: bool, **params) -> Path:
    refuse_overwrite(target, overwrite)
    with atomic_path(target) as tmp:
        image.save(tmp, format="PNG", **params)
    return target


def write_mask_file(
    values: np.ndarray,
    target: str | Path,
    overwrite: bool = False,
    palette: Sequence[Sequence[int]] | None = None,
    like_dtype: str | None = None,
) -> Path:
    """Write codes as a single-channel PNG or TIFF (by suffix), values exact.

    Parameters
    ----------
    values : ndarray of int, shape (H, W)
        Non-negative codes; 8-bit when they fit, else 16-bit.
    target : path
        ``.png``, ``.tif`` or ``.tiff``.
    overwrite : bool
        Replace an existing file.
    palette : sequence of (r, g, b), optional
        Write a palette PNG (values must be < 256).
    like_dtype : str, optional
        Keep this integer width (a 16-bit original stays 16-bit).
    """
    from PIL import Image

    target = Path(target)
    values = np.asarray(values)
    if values.ndim != 2:
        raise NsclcFormatError(target, f"a mask must be 2-D, got shape {values.shape}")
    try:
        values = _as_exact_dtype(values, like_dtype)
    except ValueError as error:
        raise NsclcFormatError(target, str(error)) from error
    if target.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        refuse_overwrite(target, overwrite)
        with atomic_path(target) as tmp:
            tifffile.imwrite(tmp, values, compression="zlib")
        return target
    if palette is not None:
        if values.dtype != np.uint8:
            raise NsclcFormatError(target, "a palette PNG holds values up to 255 only")
        image = Image.fromarray(values, mode="P")
        flat = [int(c) for rgb in palette for c in list(rgb)[:3]]
        image.putpalette(flat + [0] * (768 - len(flat)))
        return _save_pil(image, target, overwrite)
    image = Image.fromarray(values)  # uint8 -> "L", uint16 -> "I;16"
    return _save_pil(image, target, overwrite)


def write_mask_like(
    values: np.ndarray, target: str | Path, attributes: Mapping[str, Any], overwrite: bool = False
) -> Path:
    """Write codes in the same encoding as the mask they were read from.

    A palette mask keeps its palette, an RGB mask its colours, a 0/255 mask
    its 255s, a 16-bit mask its width, so that an unedited mask is written
    back pixel for pixel.
    """
    from PIL import Image

    from .masks import remap_values

    target = Path(target)
    values = np.asarray(values)
    if attributes.get("value_map"):
        values = remap_values(values, [(code, file_value) for file_value, code in attributes["value_map"]])
    encoding = attributes.get("encoding", "grey")
    if encoding == "rgb" and attributes.get("colors") and target.suffix.lower() == ".png":
        lookup = np.zeros((int(max(c[3] for c in attributes["colors"])) + 1, 3), np.uint8)
        for r, g, b, code in attributes["colors"]:
            lookup[int(code)] = (r, g, b)
        if values.size and values.max() >= len(lookup):
            raise NsclcFormatError(target, f"value {int(values.max())} has no colour in this RGB mask's colour table")
        rgb = lookup[values]
        if attributes.get("mode") == "RGBA":
            rgb = np.dstack([rgb, np.full(values.shape, 255, np.uint8)])
        return _save_pil(Image.fromarray(rgb), target, overwrite)
    if encoding == "bilevel" and target.suffix.lower() == ".png":
        return _save_pil(Image.fromarray(values.astype(bool)), target, overwrite)
    palette = attributes.get("palette") if encoding == "palette" else None
    return write_mask_file(values, target, overwrite, palette=palette, like_dtype=attributes.get("dtype"))


def read_labelmap(path: str | Path) -> ClassSchema:
    """A schema from a CVAT/VOC ``labelmap.txt`` (``name:r,g,b:parts:actions``).

    The value of each class is its line's position among the class lines
    (0 is the first, usually ``background``); ``void`` (or
    ``ignore``) gets 255 as in VOC.
    """
    from .masks import VOC_PALETTE

    path = Path(path)
    classes = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise NsclcFormatError(path, f"cannot be read ({error})") from error
    code = 0
    marked_void = False
    for number, line in enumerate(lines, start=1):
        if line.strip().lower() == VOID_MARK:
            marked_void = True
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split(":")
        name = parts[0].strip()
        try:
            rgb = [int(v) for v in parts[1].split(",")] if len(parts) > 1 and parts[1].strip() else None
        except ValueError as error:
            raise NsclcFormatError(path, f"line {number}: colour {parts[1]!r} is not r,g,b") from error
        if name.lower() in ("void", "ignore") or marked_void:
            marked_void = False
            classes.append(ClassInfo(255, name, (*(rgb or VOC_PALETTE[255]), 128)))
            continue
        color = tuple(rgb) if rgb else VOC_PALETTE[code]
        classes.append(ClassInfo(code, name, color))
        code += 1
    if not classes:
        raise NsclcFormatError(path, "labelmap.txt lists no classes")
    return ClassSchema(path.parent.name or "labelmap", tuple(classes), background=0)


#: The comment that marks the next labelmap line as value 255 (VOC's void) when its name is not "void".
VOID_MARK = "# value 255"


def labelmap_text(schema: ClassSchema) -> str:
    """A CVAT/VOC ``labelmap.txt`` for ``schema``: one line per value 0..N-1, then the class at 255.

    A line's position is its value, so codes the schema skips get an
    ``unused <code>`` line; a class at 255 not named void follows a
    :data:`VOID_MARK` comment, so that :func:`read_labelmap` gives it 255.

    Raises
    ------
    ValueError
        For codes above 254 other than 255, which a labelmap cannot list.
    """
    by_code = {info.code: info for info in schema.classes}
    background = schema.background if schema.background is not None else 0
    regular = [c for c in by_code if c != 255]
    if any(c < 0 or c > 254 for c in regular):
        raise ValueError(f"labelmap.txt lists values 0..254 and 255; this schema has {sorted(regular)}")
    lines = ["# label:color_rgb:parts:actions"]
    for code in range(max([*regular, background]) + 1):
        info = by_code.get(code)
        if info is None:
            name = "background" if code == background else f"unused {code}"
        else:
            name = info.name
        rgb = tuple(round(c * 255) for c in info.color[:3]) if info and code != background else (0, 0, 0)
        lines.append(f"{name}:{rgb[0]},{rgb[1]},{rgb[2]}::")
    if 255 in by_code:
        void = by_code[255]
        rgb = tuple(round(c * 255) for c in void.color[:3])
        if void.name.lower() not in ("void", "ignore"):
            lines.append(VOID_MARK)
        lines.append(f"{void.name}:{rgb[0]},{rgb[1]},{rgb[2]}::")
    return "\n".join(lines) + "\n"


def merge_labelmaps(texts: Sequence[str]) -> str | None:
    """One ``labelmap.txt`` from those written for parts of one folder's masks.

    The result is :func:`labelmap_text` of the schemas behind ``texts``
    merged as :func:`_merged_schema` merges them: value by value, the first
    class named at a value wins over an ``unused`` line; a void class is the
    first one given. ``None`` when one value has two names, for which the
    mask writer writes no labelmap either.

    Parameters
    ----------
    texts : sequence of str
        :func:`labelmap_text` outputs, in case order.
    """
    by_value: list[str] = []
    void: list[str] = []
    for text in texts:
        lines = text.splitlines()
        header, body = lines[0], lines[1:]
        if VOID_MARK in body or (body and body[-1].split(":")[0].strip().lower() in ("void", "ignore")):
            start = body.index(VOID_MARK) if VOID_MARK in body else len(body) - 1
            void = void or body[start:]
            body = body[:start]
        for value, line in enumerate(body):
            if value == len(by_value):
                by_value.append(line)
            elif by_value[value].startswith(f"unused {value}:"):
                by_value[value] = line
            elif not line.startswith(f"unused {value}:") and line.split(":")[0] != by_value[value].split(":")[0]:
                return None  # one value, two class names: no labelmap can say both
    return "\n".join([header, *by_value, *void]) + "\n"


def write_labelmap(schema: ClassSchema, target: str | Path, overwrite: bool = False) -> Path:
    """Write :func:`labelmap_text` of ``schema`` to ``target`` (a ``labelmap.txt``)."""
    target = Path(target)
    refuse_overwrite(target, overwrite)
    try:
        text = labelmap_text(schema)
    except ValueError as error:
        raise NsclcFormatError(target, str(error)) from error
    return atomic_write_text(target, text)


def palette_for(schema: ClassSchema) -> list[tuple[int, int, int]]:
    """A 256-entry palette: VOC's colours, overridden by the schema's (0 stays black)."""
    from .masks import VOC_PALETTE

    palette = list(VOC_PALETTE)
    for info in schema.classes:
        if 0 <= info.code < 256 and info.code != schema.background:
            palette[info.code] = tuple(round(c * 255) for c in info.color[:3])
    return palette


def class_mask_from_objects(case: Case) -> LabelMask | None:
    """The case's polygons and instance masks drawn into one class mask, or ``None`` when it has none.

    This is how COCO polygons and RLE, NuCLS contours or GeoJSON regions
    become a label mask: each object's pixels take its class code, later
    objects on top; open lines are not drawn. ``None`` also when the image
    size is not known.
    """
    from ..conversion import written_masks
    from ..geometry import rasterize_polygons
    from ..model import image_size

    instances = [m for m in written_masks(case) if m.kind == "instance" and not m.multiscale]
    polygons = [s for s in case.polygons if any(p.kind != "path" for p in s.polygons)]
    shape = image_size(case)
    if shape is None or not (instances or polygons):
        return None
    schemas = [s.schema for s in polygons] + [m.schema for m in instances]
    schema = schemas[0]
    for other in schemas[1:]:
        schema = schema.with_classes(c for c in other.classes if c.name not in schema and c.code not in schema.codes)
    codes = {info.name: info.code for info in schema.classes}
    dtype = np.uint16 if max(codes.values(), default=0) > 255 else np.uint8
    labels = np.zeros(shape, dtype)
    for instance_mask in instances:
        ids = np.asarray(instance_mask.data)
        for instance_id, class_name in instance_mask.instance_classes.items():
            if class_name in codes:
                labels[ids == instance_id] = codes[class_name]
    for objects in polygons:
        known = [(polygon, codes[str(name)]) for polygon, name in zip(objects.polygons, objects.classes, strict=True)
                 if str(name) in codes and polygon.kind != "path"]  # fmt: skip
        if known:
            drawn = rasterize_polygons([p for p, _ in known], shape, [c for _, c in known], dtype=dtype)
            labels[drawn > 0] = drawn[drawn > 0]
    name = polygons[0].name if polygons else instances[0].name
    return LabelMask(name, labels, schema, attributes={"drawn": True})


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(text)) or "mask"


def masks_to_write(case: Case) -> list[LabelMask]:
    """The class masks a mask writer writes for ``case``: its own, then its objects drawn into one."""
    from ..conversion import written_masks

    masks = [m for m in written_masks(case) if m.kind == "semantic" and not m.multiscale and m.data.ndim == 2]
    drawn = class_mask_from_objects(case)
    return masks + ([drawn] if drawn is not None else [])


def write_masks(cases: Sequence[Case], path: Path, overwrite: bool = False, palette: bool = False, **_) -> list[Path]:
    """Registry writer: every class mask as a single-channel PNG/TIFF, values exact.

    Parameters
    ----------
    cases : sequence of Case
    path : Path
        A ``.png``/``.tif`` file for one mask, or a folder. A mask read from
        a dataset layout goes to the same place in the folder, in the encoding
        it came in (NSCLC-NAT: ``SegmentationClass/2.png`` and ``Mask/2.png``);
        when the folder is the dataset's own root, into ``corrections/``
        there. Other masks become ``<case>.png`` (``<case>_<mask>.png`` when
        a case has several), with a ``labelmap.txt`` naming their classes.
        An empty placeholder for a mask the source lacks is written only
        once someone painted on it.
    overwrite : bool
        Replace existing files.
    palette : bool
        Write VOC palette PNGs (class colours from the schema) and a
        ``labelmap.txt`` beside them.
    """
    from .masks import _decoded_attributes

    path = Path(path)
    pairs = [(case, mask) for case in cases for mask in masks_to_write(case)]
    if not pairs:
        raise NothingToWrite(path, "nothing to write: no class mask, and no objects to draw into one")
    one_file = path.suffix.lower() in (".png", ".tif", ".tiff")
    per_case: dict[str, int] = {}
    for case, _ in pairs:
        per_case[case.name] = per_case.get(case.name, 0) + 1
    written: list[Path] = []
    labelmaps: dict[Path, ClassSchema] = {}
    for case, mask in pairs:
        data = np.asarray(mask.data)
        relative, root = mask.attributes.get("relative_path"), mask.attributes.get("root")
        if one_file and len(pairs) == 1:
            target = path
        elif one_file:
            target = path.with_name(f"{path.stem}_{_safe(case.name)}_{_safe(mask.name)}{path.suffix}")
        elif relative and root and not palette:
            target = (path / "corrections" if _same_folder(root, path) else path) / relative
            written.append(write_mask_like(data, target, _decoded_attributes(mask), overwrite=overwrite))
            continue
        else:
            stem = _safe(case.name) if per_case[case.name] == 1 else f"{_safe(case.name)}_{_safe(mask.name)}"
            target = path / f"{stem}.png"
        if palette:
            written.append(write_mask_file(data, target.with_suffix(".png"), overwrite, palette=palette_for(mask.schema)))
        else:
            written.append(write_mask_file(data, target, overwrite, like_dtype=mask.attributes.get("dtype")))
        if mask.schema.classes:
            labelmaps.setdefault(target.parent, []).append(mask.schema)
    for folder, schemas in labelmaps.items():
        try:
            text = labelmap_text(_merged_schema(schemas))
        except ValueError:
            continue  # 16-bit codes, or one code with two names: the values are written, no labelmap names them
        written.append(atomic_write_text(folder / "labelmap.txt", text))
    return written


def _merged_schema(schemas: Sequence[ClassSchema]) -> ClassSchema:
    """One schema naming every code of the masks in one folder (NuCLS's nuclei and FOV masks).

    Raises
    ------
    ValueError
        When one code has two names: one labelmap cannot say both.
    """
    by_code: dict[int, ClassInfo] = {}
    for schema in schemas:
        for info in _with_background(schema).classes:
            if by_code.setdefault(info.code, info).name != info.name:
                raise ValueError(f"code {info.code} is {by_code[info.code].name!r} and {info.name!r}")
    first = schemas[0]
    return replace(first, classes=tuple(by_code[c] for c in sorted(by_code)), hierarchy={})


def _same_folder(a, b) -> bool:
    return a is not None and Path(a).resolve() == Path(b).resolve()


def _with_background(schema: ClassSchema) -> ClassSchema:
    """``schema`` with its background value named, for files that list every value (``labelmap.txt``)."""
    if schema.background is None or schema.background in schema.codes:
        return schema
    # OCELOT names its class 1 "background"; value 0 then needs another name
    name = "background" if "background" not in schema else "unannotated"
    return replace(schema, classes=(ClassInfo(schema.background, name, (0, 0, 0, 0)), *schema.classes))


#: What the mask writer does with each kind: values are class codes, one PNG per mask layer.
MASK_HOLDS = {
    "mask": exact("one PNG per mask, values kept, in the source's folder layout"),
    "instances": lossy("merge into a class mask (object ids are lost)", PIXELS),
    "polygons": lossy("are drawn into a class mask", PIXELS),
    "holed polygons": lossy("are drawn into a class mask", PIXELS),
    "parts": lossy("are drawn into a class mask", PIXELS),
}


# --------------------------------------------------------------------------- corrections


def correction_target(mask: LabelMask, path: str | Path, case_name: str = "case") -> Path:
    """Where a corrected mask goes: ``<root>/corrections/<path in the layout>``.

    When ``path`` is the dataset root the mask was read from, the correction
    goes into ``path/corrections/`` mirroring the layout; any other folder
    receives the mirrored layout directly (``path/SegmentationClass/12.png``).
    Masks that came from no file go to ``corrections/<mask name>/<case>.png``.
    """
    path = Path(path)
    relative = mask.attributes.get("relative_path")
    root = mask.attributes.get("root")
    if relative is None:
        relative = f"{_safe(mask.name)}/{_safe(case_name)}.png"
    if root is not None and path.resolve() == Path(root).resolve():
        return path / "corrections" / relative
    return path / relative


def write_corrections(
    cases: Sequence[Case], path: Path, overwrite: bool = False, in_place: bool = False, **_
) -> list[Path]:
    """Write every mask back into its dataset's layout, in the original encoding.

    Parameters
    ----------
    cases : sequence of Case
        Cases read from a dataset (their masks know their file in the layout).
    path : Path
        The dataset root (corrections go to ``root/corrections/...``) or
        another folder (receives the mirrored layout).
    overwrite : bool
        Replace a correction written before. Originals are never touched
        unless ``in_place`` is also true.
    in_place : bool
        With ``overwrite=True``: write over the original mask files. Both
        flags are needed, so an original is never replaced by accident.
    """
    from ..conversion import written_masks
    from .masks import _decoded_attributes

    written = []
    for case in cases:
        for mask in written_masks(case):  # a placeholder nobody painted is not a correction
            if mask.kind != "semantic" and "relative_path" not in mask.attributes:
                continue
            data = np.asarray(mask.data[0] if mask.multiscale else mask.data)
            attributes = _decoded_attributes(mask)
            if in_place:
                if not overwrite:
                    raise NsclcFormatError(
                        mask.attributes.get("path", path), "writing over an original needs overwrite=True as well"
                    )
                target = Path(mask.attributes["path"])
            else:
                target = correction_target(mask, path, case.name)
            written.append(write_mask_like(data, target, attributes, overwrite=overwrite))
    if not written:
        raise NothingToWrite(path, "nothing to write: no mask in these cases")
    return written
