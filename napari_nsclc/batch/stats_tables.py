"""The tables of ``napari-nsclc stats``, summed from per-case counts: per layer, per split, mask areas.

Each function takes the :class:`~napari_nsclc.batch.stats.CaseStats` of the
counted cases, in case order, and returns plain dataclasses whose
``as_dict()`` is JSON-ready. No napari or Qt import.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .stats import CaseStats

__all__ = ["NEUTRAL_COLOUR", "NO_SPLIT", "OBJECTS", "PIXELS", "LayerStats", "MaskArea", "SplitStats",
           "layer_tables", "mask_areas", "split_tables"]  # fmt: skip

#: Unit of a layer whose counts are objects (points, boxes, polygons, instance-mask objects).
OBJECTS = "objects"
#: Unit of a semantic mask layer, whose counts are pixels at full resolution (level 0).
PIXELS = "px"
#: Colour of a class the schema does not define, or defines as transparent (IGNITE's "Unannotated").
NEUTRAL_COLOUR = "#bdbdbd"
#: The split of a case its dataset puts in none.
NO_SPLIT = "no split"
#: Where the usual split names sort; others sort by name between val and test, "no split" last.
_SPLIT_ORDER = {"train": 0, "training": 0, "trainval": 1, "val": 2, "valid": 2, "validation": 2, "test": 4,
                NO_SPLIT: 9}  # fmt: skip


@dataclass
class LayerStats:
    """One annotation layer over the dataset.

    Attributes
    ----------
    name : str
        The layer name (``"tumour bed (SegmentationClass)"``, ``"cells"``).
    unit : {"objects", "px"}
        What the counts are: objects, or pixels at full resolution for a semantic mask.
    totals : dict of str to int
        Per class, in schema order then as found: objects, or pixels.
    images_with_class : dict of str to int
        Per class, the images (cases) in which it occurs.
    colours : dict of str to str
        Per class of ``totals``, its colour as ``"#rrggbb"`` (the schema's, grey when it has none).
    per_image : list of int
        Objects (or pixels) in each image that has this layer, in case order.
    """

    name: str
    unit: str
    totals: dict[str, int] = field(default_factory=dict)
    images_with_class: dict[str, int] = field(default_factory=dict)
    colours: dict[str, str] = field(default_factory=dict)
    per_image: list[int] = field(default_factory=list)

    @property
    def images(self) -> int:
        """Images (cases) that have this layer."""
        return len(self.per_image)

    @property
    def total(self) -> int:
        return sum(self.totals.values())

    def percent(self, name: str) -> float:
        """Share of class ``name`` in the layer, in % (0 for an empty layer)."""
        return 100.0 * self.totals[name] / self.total if self.total else 0.0

    def as_dict(self) -> dict:
        """``{unit, images, total, classes: {name: {count, percent, images, colour}}}``."""
        classes = {name: {"count": count, "percent": round(self.percent(name), 3),
                          "images": self.images_with_class[name], "colour": self.colours[name]}
                   for name, count in self.totals.items()}  # fmt: skip
        return {"unit": self.unit, "images": self.images, "total": self.total, "classes": classes}

    def per_image_dict(self) -> dict:
        """``{images, mean, median, min, max, counts}`` of :attr:`per_image` (``counts``: one number per image)."""
        counts = self.per_image
        return {"images": len(counts), "mean": statistics.fmean(counts) if counts else 0.0,
                "median": float(statistics.median(counts)) if counts else 0.0, "min": min(counts, default=0),
                "max": max(counts, default=0), "counts": list(counts)}  # fmt: skip


@dataclass
class SplitStats:
    """The images of one split of one fold, and their counts.

    Attributes
    ----------
    fold : str
        ``""`` for a dataset with one split, ``"fold_1"`` ... for NuCLS.
    split : str
        ``"train"``, ``"val"``, ``"test"``, ... or :data:`NO_SPLIT`.
    images : int
        Images (cases) in this split.
    counts : dict of str to dict of str to int
        Per layer, per class: objects, or pixels for semantic masks.
    layer_images : dict of str to int
        Per layer, the images of this split that have it (an OCELOT tissue patch has no cell layer).
    """

    fold: str
    split: str
    images: int = 0
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    layer_images: dict[str, int] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``"train"``, or ``"fold_1 test"`` for a split of a fold."""
        return f"{self.fold} {self.split}" if self.fold else self.split

    def as_dict(self) -> dict:
        return {"fold": self.fold, "split": self.split, "images": self.images, "counts": self.counts,
                "layer_images": self.layer_images}  # fmt: skip


@dataclass
class MaskArea:
    """Area per class of one semantic mask layer.

    Attributes
    ----------
    layer : str
    images : int
        Images that have this layer.
    images_with_pixel_size : int
        Those whose pixel size is known (``µm``, ``mm`` or ``nm``).
    um2 : dict of str to float
        Per class, area in µm² summed over the images with a known pixel size.
    px2 : dict of str to int
        Per class, area in px² (pixels at full resolution) over the images without.
    colours : dict of str to str
        Per class, ``"#rrggbb"``.
    """

    layer: str
    images: int = 0
    images_with_pixel_size: int = 0
    um2: dict[str, float] = field(default_factory=dict)
    px2: dict[str, int] = field(default_factory=dict)
    colours: dict[str, str] = field(default_factory=dict)

    @property
    def unit(self) -> str:
        """``"µm²"`` when every image's pixel size is known, ``"px²"`` when none is, else both."""
        if self.images_with_pixel_size == self.images:
            return "µm²"
        return "px²" if self.images_with_pixel_size == 0 else "µm² and px²"

    def as_dict(self) -> dict:
        """``{unit, images, images_with_pixel_size, classes: {name: {"um2": ..., "px2": ...}}}``.

        ``um2`` is there when some image's pixel size is known, ``px2`` when some is not.
        """
        names = list(dict.fromkeys([*self.um2, *self.px2]))
        known, unknown = self.images_with_pixel_size > 0, self.images_with_pixel_size < self.images
        classes = {name: {**({"um2": self.um2.get(name, 0.0)} if known else {}),
                          **({"px2": self.px2.get(name, 0)} if unknown else {})} for name in names}  # fmt: skip
        return {"unit": self.unit, "images": self.images, "images_with_pixel_size": self.images_with_pixel_size,
                "classes": classes}  # fmt: skip


def _add(into: dict[str, int], counts: dict[str, int]) -> None:
    for name, count in counts.items():
        into[name] = into.get(name, 0) + count


def _ordered(values: dict, order: dict[str, str]) -> dict:
    """``values`` in schema order, then the others as found."""
    return {**{name: values[name] for name in order if name in values}, **values}


def layer_tables(cases: Sequence[CaseStats]) -> list[LayerStats]:
    """Per layer, in the order first met: totals, images per class, colours and per-image counts."""
    layers: dict[str, LayerStats] = {}
    schema_order: dict[str, dict[str, str]] = {}
    for case in cases:
        for name, counts in case.counts.items():
            layer = layers.setdefault(name, LayerStats(name, case.units[name]))
            _add(layer.totals, counts)
            _add(layer.images_with_class, {cls: 1 for cls, count in counts.items() if count > 0})
            layer.per_image.append(sum(counts.values()))
            order = schema_order.setdefault(name, {})
            order.update({cls: colour for cls, colour in case.colours.get(name, {}).items() if cls not in order})
    for name, layer in layers.items():
        layer.totals = _ordered(layer.totals, schema_order[name])
        layer.images_with_class = {cls: layer.images_with_class.get(cls, 0) for cls in layer.totals}
        layer.colours = {cls: schema_order[name].get(cls, NEUTRAL_COLOUR) for cls in layer.totals}
    return list(layers.values())


def _natural(text: str) -> list:
    """``fold_2`` before ``fold_10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def split_tables(cases: Sequence[CaseStats], layers: Sequence[LayerStats] = ()) -> list[SplitStats]:
    """Images and counts per ``(fold, split)``; a case in no split (of a fold) is under :data:`NO_SPLIT`.

    A dataset with folds (NuCLS) has one table per fold: each case appears once per fold.
    Classes are in the order of ``layers``' totals when given.
    """
    folds = sorted({fold for case in cases for fold in case.splits}, key=_natural) or [""]
    rows: dict[tuple[str, str], SplitStats] = {}
    for fold in folds:
        for case in cases:
            split = case.splits.get(fold) or NO_SPLIT
            row = rows.setdefault((fold, split), SplitStats(fold, split))
            row.images += 1
            for layer, counts in case.counts.items():
                _add(row.counts.setdefault(layer, {}), counts)
                row.layer_images[layer] = row.layer_images.get(layer, 0) + 1
    order = {layer.name: layer.totals for layer in layers}
    for row in rows.values():
        row.counts = {name: _ordered(counts, order.get(name, {})) for name, counts in row.counts.items()}
    key = lambda row: (_natural(row.fold), _SPLIT_ORDER.get(row.split, 3), row.split)  # noqa: E731
    return sorted(rows.values(), key=key)


def mask_areas(cases: Sequence[CaseStats], layers: Sequence[LayerStats]) -> tuple[list[MaskArea], list[str]]:
    """Area per class of every semantic mask layer, and notes on how it was measured.

    Returns
    -------
    areas : list of MaskArea
        µm² = pixels at full resolution × the pixel's area in µm², per image where it is known; px² elsewhere.
    notes : list of str
        Masks counted at a coarser level of their pyramid (their counts are estimates).
    """
    areas = {layer.name: MaskArea(layer.name, colours=layer.colours) for layer in layers if layer.unit == PIXELS}
    downsampled: dict[str, list[float]] = {}
    for case in cases:
        for name, area in areas.items():
            if name not in case.counts:
                continue
            area.images += 1
            if case.pixel_area_um2 is None:
                _add(area.px2, case.counts[name])
            else:
                area.images_with_pixel_size += 1
                for cls, pixels in case.counts[name].items():
                    area.um2[cls] = area.um2.get(cls, 0.0) + pixels * case.pixel_area_um2
        for name, ratio in case.downsampling.items():
            downsampled.setdefault(name, []).append(ratio)
    for area in areas.values():
        order = area.colours
        area.um2, area.px2 = _ordered(area.um2, order), _ordered(area.px2, order)
    return list(areas.values()), _notes(downsampled)


def _notes(downsampled: dict[str, list[float]]) -> list[str]:
    notes = []
    for name, ratios in downsampled.items():
        scale = f"{min(ratios):g}" if min(ratios) == max(ratios) else f"{min(ratios):g} to {max(ratios):g}"
        notes.append(f"{name}: {len(ratios)} multiscale mask(s) counted at the coarsest level of the pyramid; "
                     f"pixel counts and areas are scaled to full resolution (×{scale}), so they are estimates")
    return notes
