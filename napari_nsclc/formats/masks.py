"""Label masks as image files: single-channel PNG/TIFF, palette PNG, RGB-coloured PNG.

Values are class codes and are kept exactly: an 8-bit mask stays ``uint8``, a
16-bit one ``uint16``. A palette PNG keeps its indices as values and its
palette as class colours. An RGB-coloured mask is turned into codes with a
colour table (a schema's colours, or the colours it is read with); a colour
outside the table is an error that names the file and the colour.

How a mask was encoded travels in :attr:`LabelMask.attributes` (``encoding``,
``mode``, ``palette``, ``colors``, ``path``), so :func:`write_mask_like`
writes a corrected mask back exactly as the original was written: a palette
PNG stays a palette PNG with the same palette, a 0/255 mask stays 0/255.

Pixels are decoded by :mod:`napari_nsclc.imageio`, the one image reader
(Pillow's decompression-bomb limit stays on there: an image over
``PIL.Image.MAX_IMAGE_PIXELS`` is refused with a message naming the file).

Also here: :func:`read_image_mask_pair` (any image plus its mask),
:func:`load_case` (turn a lazily read case into arrays and check its masks)
and the format's declaration. The writers (single-channel PNG/TIFF, VOC
palette PNG + ``labelmap.txt``, corrections written back into a dataset's
layout) live in :mod:`napari_nsclc.formats._mask_writers` and are imported
here, so every one of them is still ``masks.<name>``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import imageio
from ..conversion import needs_image_size
from ..imageio import LazyArray
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
from ._mask_writers import (  # noqa: F401 - the writers, importable from here as before
    MASK_HOLDS,
    VOID_MARK,
    _as_exact_dtype,
    _merged_schema,
    _safe,
    _same_folder,
    _save_pil,
    _with_background,
    class_mask_from_objects,
    correction_target,
    labelmap_text,
    masks_to_write,
    merge_labelmaps,
    palette_for,
    read_labelmap,
    write_corrections,
    write_labelmap,
    write_mask_file,
    write_mask_like,
    write_masks,
)

__all__ = [
    "FORMAT",
    "GENERIC_SCHEMA",
    "VOC_PALETTE",
    "check_mask",
    "describe_encoding",
    "fit_nearest",
    "lazy_mask",
    "load_case",
    "read_image_mask_folders",
    "read_image_mask_pair",
    "read_labelmap",
    "read_mask",
    "read_mask_file",
    "schema_from_values",
    "write_labelmap",
    "write_mask_file",
    "write_mask_like",
    "write_masks",
]

MASK_SUFFIXES = (".png", ".tif", ".tiff", ".bmp", ".gif")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def _voc_palette() -> list[tuple[int, int, int]]:
    """PASCAL VOC's colour map: bits of the index spread over R, G and B."""
    palette = []
    for index in range(256):
        r = g = b = 0
        value = index
        for shift in range(7, -1, -1):
            r |= (value & 1) << shift
            g |= (value >> 1 & 1) << shift
            b |= (value >> 2 & 1) << shift
            value >>= 3
        palette.append((r, g, b))
    return palette


#: The 256-colour VOC palette (index 255, "void", is (224, 224, 192)).
VOC_PALETTE = _voc_palette()

#: A schema for masks whose classes nobody named: 0 is background.
GENERIC_SCHEMA = ClassSchema("mask", (), background=0)


# --------------------------------------------------------------------------- reading pixels


def read_mask_file(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Raw mask pixels and how they are encoded: ``imageio.read_pixels(path, as_mask=True)``.

    Returns
    -------
    values : ndarray
        ``(H, W)`` for grey, bilevel and palette masks (palette indices),
        ``(H, W, 3|4)`` for colour masks. Integer dtypes are kept.
    info : dict
        ``{"mode": str, "encoding": "grey"|"palette"|"rgb"|"bilevel",
        "palette": [[r, g, b], ...] (palette masks), "dtype": str, "format": str}``.
    """
    return imageio.read_pixels(path, as_mask=True)


def colors_to_codes(
    rgb: np.ndarray, colors: Mapping[tuple[int, int, int], int], path: str | Path = "mask"
) -> np.ndarray:
    """Map an ``(H, W, 3|4)`` colour mask to codes with a ``{(r, g, b): code}`` table.

    Raises
    ------
    NsclcFormatError
        Naming the file, the first unknown colour, where it is and how many
        pixels have colours outside the table.
    """
    rgb = np.asarray(rgb)[..., :3].astype(np.uint32)
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    found, inverse = np.unique(packed, return_inverse=True)
    table = {(int(r) << 16) | (int(g) << 8) | int(b): int(code) for (r, g, b), code in colors.items()}
    unknown = [int(v) for v in found if int(v) not in table]
    if unknown:
        first = unknown[0]
        where = np.argwhere(packed == first)[0]
        count = int(np.isin(packed, unknown).sum())
        color = (first >> 16 & 255, first >> 8 & 255, first & 255)
        raise NsclcFormatError(
            path,
            f"unknown mask colour RGB{color} at row {where[0]}, column {where[1]} "
            f"({len(unknown)} unknown colour(s), {count} pixels); known colours: "
            + ", ".join(f"RGB{c}={v}" for c, v in sorted(colors.items(), key=lambda kv: kv[1])),
        )
    codes = np.array([table[int(v)] for v in found])
    dtype = np.uint8 if codes.size == 0 or codes.max() < 256 else np.uint16
    return codes.astype(dtype)[inverse.reshape(packed.shape)]


def schema_colors(schema: ClassSchema) -> dict[tuple[int, int, int], int]:
    """``{(r, g, b): code}`` from a schema's class colours (alpha ignored); black is the background."""
    table = {tuple(round(c * 255) for c in info.color[:3]): info.code for info in schema.classes}
    if schema.background is not None:
        table.setdefault((0, 0, 0), schema.background)
    return table


def describe_encoding(values: np.ndarray, info: Mapping[str, Any]) -> str:
    """A short name for how a mask encodes its classes.

    ``"binary 0/1"``, ``"binary 0/255"``, ``"palette"``, ``"rgb"``,
    ``"16-bit"`` or ``"grey levels"`` (several values).
    """
    encoding = info.get("encoding")
    if encoding in ("palette", "rgb"):
        return encoding
    if np.dtype(info.get("dtype", values.dtype)).itemsize > 1:
        return "16-bit"
    present = set(value_counts(values)[0].tolist())
    if present <= {0, 1}:
        return "binary 0/1"
    if present <= {0, 255}:
        return "binary 0/255"
    return "grey levels"


def schema_from_values(name: str, values: Sequence[int], palette: Sequence[Sequence[int]] | None = None) -> ClassSchema:
    """A schema naming each value ``"class N"``, coloured by the palette when there is one."""
    classes = []
    for value in sorted(int(v) for v in values if int(v) != 0):
        color = tuple(palette[value]) if palette is not None and value < len(palette) else default_color(value)
        classes.append(ClassInfo(value, f"class {value}", color))
    return ClassSchema(name, tuple(classes), background=0)


def read_mask(
    path: str | Path, schema: ClassSchema | None = None, colors: Mapping[tuple[int, int, int], int] | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Class codes of a mask file, whatever its encoding.

    Parameters
    ----------
    path : path
        PNG/TIFF/BMP/GIF mask.
    schema : ClassSchema, optional
        Its colours decode RGB masks when ``colors`` is not given.
    colors : mapping of (r, g, b) to int, optional
        Colour table for RGB masks.

    Returns
    -------
    codes : ndarray of uint8 or uint16 (or the file's integer type), shape (H, W)
    info : dict
        As :func:`read_mask_file`, plus ``"colors"`` (``[[r, g, b, code], ...]``)
        for RGB masks and ``"described"`` (:func:`describe_encoding`).
    """
    path = Path(path)
    values, info = read_mask_file(path)
    if values.ndim == 3:
        if colors is None:
            colors = schema_colors(schema) if schema is not None and schema.classes else None
        if colors is None:
            colors = _first_seen_colors(values)
        codes = colors_to_codes(values, colors, path)
        info["colors"] = [[*rgb, code] for rgb, code in colors.items()]
        values = codes
    info["described"] = describe_encoding(values, info)
    return values, info


def _first_seen_colors(rgb: np.ndarray) -> dict[tuple[int, int, int], int]:
    """Black is 0; every other colour present gets 1, 2, ... in order of brightness."""
    flat = np.unique(rgb[..., :3].reshape(-1, 3), axis=0)
    table = {(0, 0, 0): 0}
    others = [tuple(int(c) for c in row) for row in flat if tuple(row) != (0, 0, 0)]
    for code, color in enumerate(sorted(others, key=lambda c: (sum(c), c)), start=1):
        table[color] = code
    return table


def check_mask(
    codes: np.ndarray,
    schema: ClassSchema,
    path: str | Path,
    image_shape: tuple[int, ...] | None = None,
    info: Mapping[str, Any] | None = None,
) -> list[str]:
    """Problems with a mask, as warnings naming the file. Values are never changed.

    Reports values outside the schema (with pixel counts), a 16-bit mask,
    and a size that differs from the image's (suggesting :func:`fit_nearest`).
    """
    name = Path(path).name
    problems = []
    if image_shape is not None and tuple(codes.shape[:2]) != tuple(image_shape[:2]):
        problems.append(
            f"{name}: mask is {codes.shape[0]}x{codes.shape[1]} pixels but its image is "
            f"{image_shape[0]}x{image_shape[1]}; shown unchanged. A nearest-neighbour fit is offered "
            "(Cases dock: 'Fit mask to image', or napari_nsclc.formats.masks.fit_nearest); it is never applied silently"
        )
    if info is not None and np.dtype(info.get("dtype", codes.dtype)).itemsize > 1 and info.get("encoding") != "rgb":
        problems.append(
            f"{name}: 16-bit mask (values up to {int(codes.max()) if codes.size else 0}); kept as {codes.dtype}"
        )
    known = set(schema.codes) | ({schema.background} if schema.background is not None else set())
    values, counts = value_counts(codes)
    outside = [(int(v), int(c)) for v, c in zip(values, counts, strict=True) if int(v) not in known]
    if outside and schema.classes:
        listed = ", ".join(f"{v} ({c} px)" for v, c in outside[:10])
        more = f" and {len(outside) - 10} more" if len(outside) > 10 else ""
        problems.append(
            f"{name}: {len(outside)} value(s) outside the {schema.name} classes: {listed}{more}; kept unchanged"
        )
    return problems


def fit_nearest(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a label mask to ``shape`` by nearest neighbour (values are never blended).

    Parameters
    ----------
    mask : ndarray, shape (h, w)
    shape : tuple of int
        Target ``(H, W)`` in pixels.

    Returns
    -------
    ndarray, shape (H, W), same dtype
        Pixel ``(r, c)`` takes the mask value under its centre.
    """
    mask = np.asarray(mask)
    rows = np.minimum(((np.arange(shape[0]) + 0.5) * mask.shape[0] / shape[0]).astype(np.int64), mask.shape[0] - 1)
    cols = np.minimum(((np.arange(shape[1]) + 0.5) * mask.shape[1] / shape[1]).astype(np.int64), mask.shape[1] - 1)
    return mask[rows[:, None], cols[None, :]]


# --------------------------------------------------------------------------- lazy reading


def remap_values(values: np.ndarray, pairs: Sequence[Sequence[int]]) -> np.ndarray:
    """``values`` with each ``(from, to)`` of ``pairs`` replaced; other values stay as they are."""
    values = np.asarray(values)
    out = values.copy()
    for old, new in pairs:
        out[values == old] = new
    return out


def lazy_mask(
    path: str | Path,
    colors: Mapping[tuple[int, int, int], int] | None = None,
    foreground: int | None = None,
) -> LazyArray:
    """A mask file's codes, decoded only when needed (see :func:`read_mask` and :class:`LazyArray`).

    With ``foreground``, a binary mask whose one non-zero value is another
    (255 in a 0/255 mask, a palette index) reads as ``foreground``; the
    ``(file value, code)`` pair goes to ``info["value_map"]``, and
    :func:`write_mask_like` writes the file value back.
    """
    path = Path(path)

    def probe():
        found = imageio.header(path, as_mask=True)
        if found.mode in ("RGB", "RGBA", "P", "PA", "1", "LA") or len(found.shape) == 3:
            return found.shape[:2], np.dtype(np.uint8)
        return found.shape, found.dtype

    lazy = LazyArray(None, probe)

    def load():
        codes, info = read_mask(path, colors=colors)
        if foreground is not None:
            present = value_counts(codes)[0]
            present = present[present != 0]
            if present.size == 1 and int(present[0]) != foreground:
                info["value_map"] = [[int(present[0]), foreground]]
                codes = remap_values(codes, info["value_map"])
        lazy.info = info
        return codes

    lazy._load = load
    return lazy


def _materialize(data, path: str | None):
    """Decode a :class:`LazyArray`; anything else (numpy, dask stacks napari slices itself) is kept."""
    if not isinstance(data, LazyArray):
        return data
    try:
        return np.asarray(data)
    except NsclcFormatError:
        raise
    except Exception as error:  # noqa: BLE001 - decoding errors from any library
        raise NsclcFormatError(path or "case", f"cannot be read ({error})") from error


def _decoded_attributes(mask: LabelMask) -> dict[str, Any]:
    """A mask's attributes, updated with what decoding its file found (call after decoding)."""
    attributes = mask.attributes
    if isinstance(mask.data, LazyArray) and mask.data.info:
        # What the file really holds replaces what the folder's first file suggested.
        keys = ("mode", "encoding", "palette", "dtype", "described", "value_map")
        found = {k: v for k, v in mask.data.info.items() if k in keys}
        attributes = {**{k: v for k, v in attributes.items() if k != "lazy_header"}, **found}
    return attributes


def load_case(case: Case, check: bool = True) -> Case:
    """Return ``case`` with its image and masks as numpy arrays, checked.

    Dataset readers return lazy cases so that opening a folder of thousands
    of images is instant; call this before showing a case. Problems found in
    the pixels (values outside the schema, size mismatch, 16-bit masks) are
    added to ``provenance.warnings`` once.

    Raises
    ------
    NsclcFormatError
        Naming the file, when an image or mask cannot be decoded (truncated,
        unknown colour, decompression bomb).
    """
    if case.provenance.details.get("loaded"):
        return case
    image = case.image
    image_data = _materialize(image.data, image.path)
    masks = []
    warnings_: list[str] = []
    for mask in case.masks:
        data = _materialize(mask.data, mask.attributes.get("path"))
        mask = replace(mask, data=data, attributes=_decoded_attributes(mask))
        masks.append(mask)
        if check and isinstance(data, np.ndarray) and mask.kind == "semantic":
            shape = image_data.shape if image_data is not None else image.shape
            path = mask.attributes.get("path") or mask.name
            for problem in check_mask(data, mask.schema, path, shape, mask.attributes):
                if problem not in case.provenance.warnings:
                    warnings_.append(problem)
    provenance = replace(
        case.provenance,
        details={**case.provenance.details, "loaded": True},
        warnings=[*case.provenance.warnings, *warnings_],
    )
    image = replace(image, data=image_data)
    if isinstance(image_data, np.ndarray):
        image.rgb = image_data.ndim == 3 and image_data.shape[-1] in (3, 4)
        image.shape = tuple(image_data.shape[:-1] if image.rgb else image_data.shape)
    elif image.shape is None and masks and isinstance(masks[0].data, np.ndarray):
        image.shape = tuple(masks[0].data.shape[:2])
    loaded = replace(case, image=image, masks=masks, provenance=provenance)
    # A dataset module may add its own checks of decoded pixels (IGNITE's 256 - label trap).
    reader = sys.modules.get(case.provenance.reader)
    if check and reader is not None and hasattr(reader, "check_loaded_case"):
        reader.check_loaded_case(loaded)
    return loaded


# --------------------------------------------------------------------------- cases


def mask_attributes(path: Path, info: Mapping[str, Any], root: Path | None = None) -> dict[str, Any]:
    """What :func:`write_mask_like` needs to write a mask back as it was."""
    attributes = {
        key: info[key] for key in ("mode", "encoding", "palette", "colors", "dtype", "described") if key in info
    }
    attributes["path"] = str(path)
    if root is not None:
        attributes["root"] = str(root)
        attributes["relative_path"] = Path(path).relative_to(root).as_posix()
    return attributes


def empty_mask(
    name: str, shape: tuple[int, ...], schema: ClassSchema, target: Path | None = None, root=None
) -> LabelMask:
    """An all-zero mask for an image that has none, ready to paint."""
    attributes: dict[str, Any] = {"encoding": "grey", "mode": "L", "dtype": "uint8", "missing": True}
    if target is not None:
        attributes["path"] = str(target)
        if root is not None:
            attributes["root"] = str(root)
            attributes["relative_path"] = Path(target).relative_to(root).as_posix()
    if isinstance(shape, LazyArray):
        like = shape
        data = LazyArray(lambda: np.zeros(like.shape[:2], np.uint8), lambda: (like.shape[:2], np.uint8))
    else:
        data = np.zeros(tuple(shape[:2]), np.uint8)
    return LabelMask(name, data, schema, attributes=attributes)


def read_image_mask_pair(
    image_path: str | Path | None, mask_path: str | Path | None, schema: ClassSchema | None = None
) -> Case:
    """One case from an image and its mask, named explicitly.

    Parameters
    ----------
    image_path : path or None
        The image (PNG, JPEG, TIFF). ``None`` for a mask without its image.
    mask_path : path or None
        The mask, or ``None`` (or a missing file) for an image without a
        mask: the case then gets an empty mask, ready to paint, and a warning.
    schema : ClassSchema, optional
        Class names and colours; by default each value found is a class.

    Raises
    ------
    NsclcFormatError
        When neither file exists, or a file cannot be decoded.
    """
    image_path = Path(image_path) if image_path is not None else None
    mask_path = Path(mask_path) if mask_path is not None else None
    have_image = image_path is not None and image_path.is_file()
    have_mask = mask_path is not None and mask_path.is_file()
    if not have_image and not have_mask:
        raise NsclcFormatError(image_path or mask_path or ".", "neither the image nor its mask exists")
    warnings_: list[str] = []
    image = ImageRef(path=str(image_path) if have_image else None, name=image_path.stem if image_path else "image")
    if have_image:
        pixels, _ = imageio.read_pixels(image_path)
        image.data, image.shape, image.rgb = pixels, tuple(pixels.shape[:2]), pixels.ndim == 3
    elif image_path is not None:
        warnings_.append(f"{image_path.name}: image not found; showing the mask alone")
    if have_mask:
        codes, info = read_mask(mask_path, schema)
        if schema is None:
            schema = schema_from_values("mask", np.unique(codes).tolist(), info.get("palette"))
        mask = LabelMask("mask", codes, schema, attributes=mask_attributes(mask_path, info, mask_path.parent))
        warnings_ += check_mask(codes, schema, mask_path, image.shape, info)
        if image.shape is None:
            image.shape = tuple(codes.shape)
    else:
        schema = schema or GENERIC_SCHEMA
        target = mask_path or image_path.with_name(image_path.stem + "_mask.png")
        warnings_.append(
            f"{image_path.name}: no mask found (looked for {target.name}); an empty mask is ready to paint"
        )
        mask = empty_mask("mask", image.shape, schema, target)
        info = {"described": "missing"}
    provenance = Provenance(
        source=str(mask_path if have_mask else image_path),
        format="masks",
        reader=__name__,
        details={"mask_encoding": info.get("described"), "loaded": True},
        warnings=warnings_,
    )
    name = (image_path or mask_path).stem
    return Case(name, image=image, masks=[mask], provenance=provenance)


def image_for_mask(mask_path: str | Path) -> Path | None:
    """The image beside a mask named like it: ``x_mask.png`` -> ``x.png``, ``mask.png`` -> ``image.png``."""
    mask_path = Path(mask_path)
    stem = mask_path.stem
    candidates = dict.fromkeys(
        [stem.replace("mask", "image"), stem.replace("_mask", ""), stem.replace("-mask", ""), stem.replace("mask", "")]
    )
    for candidate in candidates:
        if not candidate or candidate == stem:
            continue
        for suffix in IMAGE_SUFFIXES:
            image = mask_path.with_name(candidate + suffix)
            if image.is_file() and image != mask_path:
                return image
    return None


def read_image_mask_folders(images: str | Path, masks: str | Path, schema: ClassSchema | None = None) -> list[Case]:
    """Cases from an image folder and a mask folder, paired by file stem.

    An image without a mask gets an empty mask (and a warning); a mask
    without an image is shown alone (and a warning).

    Raises
    ------
    NsclcFormatError
        When both folders are empty.
    """
    images, masks = Path(images), Path(masks)
    image_files = (
        {p.stem: p for p in sorted(images.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES} if images.is_dir() else {}
    )
    mask_files = (
        {p.stem: p for p in sorted(masks.iterdir()) if p.suffix.lower() in MASK_SUFFIXES} if masks.is_dir() else {}
    )
    stems = sorted(set(image_files) | set(mask_files))
    if not stems:
        raise NsclcFormatError(images, f"no images here and no masks in {masks}")
    return [
        read_image_mask_pair(image_files.get(stem), mask_files.get(stem, masks / f"{stem}.png"), schema)
        for stem in stems
    ]


def _read_masks(path: Path) -> list[Case]:
    """The registry reader: a mask file (with the image named like it, if any), or a folder of masks."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    # a labelmap.txt beside the masks (written with them) names their classes
    schema = read_labelmap(folder / "labelmap.txt") if (folder / "labelmap.txt").is_file() else None
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in MASK_SUFFIXES and not p.name.startswith("."))
        if not files:
            raise NsclcFormatError(path, "folder holds no mask files (.png, .tif, .tiff)")
        return [read_image_mask_pair(None, f, schema) for f in files]
    return [read_image_mask_pair(image_for_mask(path), path, schema)]


def _sniff_masks(path: Path) -> bool:
    """A single-channel or palette PNG/TIFF (a mask, not a photo)."""
    path = Path(path)
    if not path.is_file() or path.suffix.lower() not in MASK_SUFFIXES:
        return False
    try:
        found = imageio.header(path, as_mask=True)
    except NsclcFormatError:
        return False
    if found.mode == "tiff":
        return len(found.shape) == 2 and np.dtype(found.dtype).kind in "iu"
    return found.mode in ("L", "P", "1", "I;16", "I;16B", "I;16L", "I")

# --------------------------------------------------------------------------- the format (writers: _mask_writers)


FORMAT = FormatSpec(
    name="masks",
    title="Label mask (PNG/TIFF)",
    sniff=_sniff_masks,
    read=_read_masks,
    write=write_masks,
    extensions=(".png", ".tif", ".tiff"),
    priority=1,
    produces=frozenset({"mask"}),
    family="masks",
    holds=MASK_HOLDS,
    layers="separate",
    check=needs_image_size("drawing objects into a mask", only_to_draw=True),
    per_case=True,
    merged_files=(("labelmap.txt", merge_labelmaps),),
)


def read_mask_like(path: str | Path, attributes: Mapping[str, Any]) -> np.ndarray:
    """Class codes of a mask written by :func:`write_mask_like` with these ``attributes``.

    The inverse of that writer: an RGB mask is decoded with its colour table,
    a ``value_map`` (255 in a 0/255 mask) is mapped back to its code, so a
    correction reads back as the codes that were painted.

    Returns
    -------
    ndarray of int, shape (H, W)
    """
    colors = attributes.get("colors")
    table = {tuple(int(c) for c in entry[:3]): int(entry[3]) for entry in colors} if colors else None
    codes, _info = read_mask(path, colors=table)
    if attributes.get("value_map"):
        codes = remap_values(codes, attributes["value_map"])
    return codes
