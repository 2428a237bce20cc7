"""The on-disk layout of a label pyramid: zarr v3, OME-Zarr 0.5 labels.

A pyramid is a zarr v3 group whose attributes hold, under the ``ome`` key,
``version: "0.5"``, one ``multiscales`` entry (axes ``y``, ``x``, one dataset
per level, ``"0"`` the full resolution, each with its ``scale``) and
``image-label`` with a colour and a class name per label value, from the class
schema. Level ``k + 1`` has half the rows and columns of level ``k``
(rounded up), down to the first level that fits in 1024 x 1024. Every level is
chunked (512 x 512 by default) and zstd-compressed with a checksum, so that a
damaged chunk is noticed when read. ome-zarr-py and napari-ome-zarr read it
as OME-Zarr labels. No napari or Qt import.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..model import ClassInfo, ClassSchema, NsclcFormatError

__all__ = [
    "OME_VERSION",
    "SMALLEST_SIDE",
    "level_shapes",
    "ome_attributes",
    "read_layout",
    "schema_from_image_label",
]

#: The OME-Zarr version written, and the only one edited.
OME_VERSION = "0.5"
#: Levels are added until the smallest fits in this many pixels a side.
SMALLEST_SIDE = 1024
#: OME-Zarr axis units (UDUNITS-2 names) for the units of ``ImageRef.unit``.
_UNITS = {"um": "micrometer", "µm": "micrometer", "mm": "millimeter", "nm": "nanometer"}


def level_shapes(shape: Sequence[int], smallest: int = SMALLEST_SIDE) -> list[tuple[int, int]]:
    """``(rows, columns)`` of every level: each halves the one above (rounded up) until both fit in ``smallest``.

    >>> level_shapes((5000, 3000))
    [(5000, 3000), (2500, 1500), (1250, 750), (625, 375)]
    """
    height, width = (int(s) for s in shape)
    if height < 1 or width < 1:
        raise ValueError(f"a label pyramid needs at least one pixel, got {height}x{width}")
    shapes = [(height, width)]
    while max(shapes[-1]) > smallest:
        h, w = shapes[-1]
        shapes.append((-(-h // 2), -(-w // 2)))
    return shapes


def _rgba(info: ClassInfo) -> list[int]:
    return [round(c * 255) for c in info.color]


def ome_attributes(shapes: Sequence[tuple[int, int]], pixel_size: Sequence[float], unit: str, schema: ClassSchema,
                   name: str) -> dict:  # fmt: skip
    """The ``ome`` attributes of a pyramid of ``shapes`` whose level-0 pixel is ``pixel_size`` ``unit`` a side."""
    axis_unit = _UNITS.get(unit)
    axes = [{"name": axis, "type": "space", **({"unit": axis_unit} if axis_unit else {})} for axis in ("y", "x")]
    size = [float(s) for s in pixel_size] if axis_unit else [1.0, 1.0]
    datasets = [{"path": str(k), "coordinateTransformations": [{"type": "scale", "scale": [s * 2**k for s in size]}]}
                for k in range(len(shapes))]  # fmt: skip
    classes = [info for info in schema.classes if info.code != schema.background]
    return {
        "version": OME_VERSION,
        "multiscales": [{"name": name, "axes": axes, "datasets": datasets}],
        "image-label": {
            "colors": [{"label-value": info.code, "rgba": _rgba(info)} for info in classes],
            "properties": [{"label-value": info.code, "class": info.name} for info in classes],
        },
    }


def schema_from_image_label(image_label: dict, name: str) -> ClassSchema:
    """The class schema an ``image-label`` entry describes (background 0)."""
    colours = {int(c["label-value"]): c.get("rgba") for c in image_label.get("colors") or []}
    names = {int(p["label-value"]): str(p.get("class") or f"class {p['label-value']}")
             for p in image_label.get("properties") or []}  # fmt: skip
    codes = sorted(set(colours) | set(names))
    classes = tuple(ClassInfo(code, names.get(code, f"class {code}"), tuple(colours.get(code) or (255, 255, 0, 255)))
                    for code in codes if code != 0)  # fmt: skip
    return ClassSchema(name, classes, background=0)


def read_layout(path: Path, attributes: dict, arrays: dict) -> tuple[list[str], dict]:
    """Check a group is an OME-Zarr 0.5 label pyramid napari-nsclc can edit; its level paths and ``ome`` attributes.

    Raises
    ------
    NsclcFormatError
        Naming ``path``: another OME-Zarr version, no ``multiscales``, levels
        missing or not each half of the one above, an image rather than labels.
    """
    ome = attributes.get("ome")
    if not isinstance(ome, dict):
        found = attributes.get("multiscales") is not None
        version = "an OME-Zarr of version 0.4 or older" if found else "not an OME-Zarr label pyramid"
        raise NsclcFormatError(path, f"is {version} (no 'ome' attributes); napari-nsclc edits OME-Zarr "
                                     f"{OME_VERSION} label pyramids in zarr v3: create a new one from it")  # fmt: skip
    if str(ome.get("version")) != OME_VERSION:
        raise NsclcFormatError(path, f"is OME-Zarr {ome.get('version')}; napari-nsclc edits OME-Zarr {OME_VERSION} "
                                     "label pyramids only")  # fmt: skip
    multiscales = ome.get("multiscales") or []
    if not multiscales or not multiscales[0].get("datasets"):
        raise NsclcFormatError(path, "has no multiscales datasets: not a label pyramid")
    if "image-label" not in ome:
        raise NsclcFormatError(path, "is an OME-Zarr image, not labels (no 'image-label' attributes)")
    paths = [str(d["path"]) for d in multiscales[0]["datasets"]]
    missing = [p for p in paths if p not in arrays]
    if missing:
        raise NsclcFormatError(path, f"level(s) {', '.join(missing)} listed in its multiscales are missing")
    shapes = [tuple(int(s) for s in arrays[p].shape) for p in paths]
    if any(len(s) != 2 for s in shapes):
        raise NsclcFormatError(path, f"levels must be 2-D (y, x); found shapes {shapes}")
    expected = level_shapes(shapes[0])
    if shapes != expected[: len(shapes)] or len(shapes) != len(expected):
        raise NsclcFormatError(path, f"levels {shapes} are not each half of the one above down to "
                                     f"{SMALLEST_SIDE}² ({expected})")  # fmt: skip
    return paths, ome
