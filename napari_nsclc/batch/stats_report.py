"""The plain-text output of ``napari-nsclc stats``: class distributions, objects per image and split, mask areas.

Numbers have thousands separators; columns are aligned so that a class list
reads as a table in a terminal or a log. No napari or Qt import.
"""

from __future__ import annotations

from collections.abc import Sequence

from .stats import DatasetStats
from .stats_tables import NO_SPLIT, OBJECTS, LayerStats, MaskArea

__all__ = ["format_area", "text_lines"]

#: Areas from this many µm² up are also given in mm² (a whole slide's tumour is millions of µm²).
MM2_FROM = 1e6


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


def _columns(rows: Sequence[Sequence[str]], indent: str = "    ") -> list[str]:
    """Rows of cells as aligned lines: the first column left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))] if rows else []
    return [indent + "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()
            for row in rows]  # fmt: skip


def format_area(um2: float) -> str:
    """``"1,234.56 µm²"``; from :data:`MM2_FROM` µm² up with mm² too: ``"2,500,000 µm² (2.5 mm²)"``."""
    text = f"{um2:,.0f} µm²" if um2 >= 1000 else f"{um2:,.2f} µm²"
    return f"{text} ({um2 / 1e6:,.3g} mm²)" if um2 >= MM2_FROM else text


def _count(value: int, unit: str) -> str:
    return f"{value:,}" if unit == OBJECTS else f"{value:,} px"


def _layer_lines(layer: LayerStats) -> list[str]:
    what = _plural(layer.total, "object") if layer.unit == OBJECTS else f"{layer.total:,} mask pixels"
    lines = [f"  {layer.name}: {what} in {_plural(layer.images, 'image')}"]
    rows = [(name, _count(count, layer.unit), f"{layer.percent(name):.1f} %",
             f"in {layer.images_with_class[name]:,} of {_plural(layer.images, 'image')}")
            for name, count in layer.totals.items()]  # fmt: skip
    return lines + (_columns(rows) if rows else ["    no annotations"])


def _per_image_lines(stats: DatasetStats) -> list[str]:
    layers = [layer for layer in stats.layers if layer.unit == OBJECTS]
    if not layers:
        return ["objects per image: no point, box, polygon or instance layers"]
    lines = ["objects per image:"]
    for layer in layers:
        d = layer.per_image_dict()
        lines.append(f"  {layer.name}: mean {d['mean']:,.1f}, median {d['median']:,g}, min {d['min']:,}, "
                     f"max {d['max']:,} ({_plural(d['images'], 'image')})")  # fmt: skip
    return lines


def _split_lines(stats: DatasetStats) -> list[str]:
    """A table: one column per split, rows of images then objects (or pixels) per layer and class."""
    if all(row.split == NO_SPLIT and not row.fold for row in stats.splits):
        return [f"splits: none (the dataset defines no train/test split; {_plural(stats.counted, 'image')})"]
    splits = stats.splits
    rows = [["", *(row.split for row in splits)], ["images", *(f"{row.images:,}" for row in splits)]]
    if any(row.fold for row in splits):  # folds above their splits: narrower columns than "fold_1 train"
        rows.insert(0, ["", *(row.fold for row in splits)])
    for layer in stats.layers:
        unit = "objects" if layer.unit == OBJECTS else "pixels"
        rows.append([f"{layer.name} ({unit})", *("" for _ in splits)])
        rows += [[f"  {name}", *(f"{row.counts.get(layer.name, {}).get(name, 0):,}" for row in splits)]
                 for name in layer.totals]  # fmt: skip
    return ["per split:", *_columns(rows, indent="  ")]


def _area_lines(area: MaskArea) -> list[str]:
    known, total = area.images_with_pixel_size, area.images
    if known == total:
        head = f"  {area.layer} (µm², pixel size known for {known:,} of {_plural(total, 'image')}):"
    elif known == 0:
        head = f"  {area.layer} (px², pixel size unknown for {_plural(total, 'image')}):"
    else:
        head = (f"  {area.layer} (µm² over the {known:,} image(s) of known pixel size, px² over the other "
                f"{total - known:,}):")  # fmt: skip
    names = list(dict.fromkeys([*area.um2, *area.px2]))
    rows = []
    for name in names:
        cells = [name]
        if known:
            cells.append(format_area(area.um2.get(name, 0.0)))
        if known < total:
            cells.append(f"{area.px2.get(name, 0):,} px²")
        rows.append(cells)
    return [head, *(_columns(rows) if rows else ["    no pixels of any class"])]


def text_lines(stats: DatasetStats) -> list[str]:
    """What ``napari-nsclc stats PATH`` prints, one string per line."""
    lines = [f"{stats.path}: {stats.title} ({stats.format}), {stats.cases:,} case(s)"]
    if stats.layers:
        lines.append("class distribution (objects per class; pixels per class for masks):")
        for layer in stats.layers:
            lines += _layer_lines(layer)
    else:
        lines.append("class distribution: no annotations")
    lines += _per_image_lines(stats)
    lines += _split_lines(stats)
    if stats.areas:
        lines.append("mask area per class:")
        for area in stats.areas:
            lines += _area_lines(area)
    if stats.notes:
        lines.append(f"notes ({len(stats.notes)}):")
        lines += [f"  {note}" for note in stats.notes]
    if stats.unreadable:
        lines.append(f"unreadable files ({len(stats.unreadable)}), left out of the statistics:")
        lines += [f"  [{p.kind}] {p.message}" for p in stats.unreadable]
        lines.append(f"result: {stats.counted:,} of {stats.cases:,} case(s) counted, {len(stats.unreadable)} "
                     f"file(s) unreadable; exit code {stats.exit_code}")  # fmt: skip
    else:
        lines.append(f"result: {stats.counted:,} case(s) counted; exit code {stats.exit_code}")
    return lines
