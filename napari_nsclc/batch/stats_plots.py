"""The plots of ``napari-nsclc stats --plots DIR``: one PNG per chart, drawn headless with matplotlib's Agg.

Each figure is a :class:`matplotlib.figure.Figure` on its own Agg canvas: no
pyplot, so no global state and no display. Charts, per annotation layer:

* ``class-distribution-<layer>.png``: objects (or mask pixels) per class, horizontal bars in the classes' colours;
* ``objects-per-image-<layer>.png``: histogram of the objects in one image (point, box, polygon, instance layers);
* ``per-split-<layer>.png``: objects (or mask pixels) per class in each split, grouped bars (datasets with splits);
* ``mask-area-<layer>.png``: area per class of a semantic mask, in µm² (px² where the pixel size is unknown).

Every PNG is written atomically. No napari or Qt import (matplotlib is imported when a plot is drawn).
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Sequence
from io import BytesIO
from pathlib import Path

from .._atomic import atomic_write_bytes
from ..model import NsclcFormatError
from .stats import DatasetStats
from .stats_tables import NO_SPLIT, OBJECTS, LayerStats, MaskArea

__all__ = ["render_plots", "write_plots"]

#: Pixels per inch of every plot: a figure of 9 x 4.5 inches is 900 x 450 px.
DPI = 100
#: Bars of one class are outlined in this colour, so that white or pale classes stay visible.
EDGE = "#404040"
#: Colour of the histogram bars.
HISTOGRAM = "#4c78a8"
#: Classes shown in a bar chart at most: the rest are summed into one bar.
MAX_CLASSES = 40


def _figure(width: int, height: int):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure) -> bytes:
    out = BytesIO()
    figure.savefig(out, format="png", dpi=DPI, facecolor="white", metadata={"Software": None})
    return out.getvalue()


def _images(count: int) -> str:
    return f"{count:,} image" + ("" if count == 1 else "s")


def _title(text: str, width: int = 80) -> str:
    return textwrap.fill(text, width, break_long_words=False)


def _thousands(axis) -> None:
    """Tick labels with thousands separators (``12,000``), never ``1.2e4``."""
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}" if abs(value) >= 10 else f"{value:,.3g}"))


def _top(values: dict[str, float], colours: dict[str, str]) -> tuple[list[str], list[float], list[str]]:
    """Names, values and colours of at most :data:`MAX_CLASSES` bars (the smallest summed into "other classes")."""
    names = list(values)
    if len(names) > MAX_CLASSES:
        keep = sorted(names, key=lambda n: -values[n])[: MAX_CLASSES - 1]
        rest = sum(values[n] for n in names if n not in keep)
        names = [n for n in names if n in keep]
        return [*names, "other classes"], [*(values[n] for n in names), rest], [*(colours[n] for n in names), "#bdbdbd"]
    return names, [values[n] for n in names], [colours.get(n, "#bdbdbd") for n in names]


def _horizontal_bars(title: str, xlabel: str, values: dict[str, float], colours: dict[str, str],
                     label: Callable[[float], str]) -> bytes:  # fmt: skip
    """One horizontal bar per class, top to bottom in the order given, each labelled ``label(value)`` at its end."""
    names, heights, fills = _top(values, colours)
    figure = _figure(900, max(320, 150 + 34 * len(names)))
    axes = figure.add_subplot()
    positions = range(len(names))
    axes.barh(positions, heights, color=fills, edgecolor=EDGE, linewidth=0.8, height=0.7)
    axes.set_yticks(positions, [textwrap.shorten(n, 40) for n in names], fontsize=11)
    pad = max(0.0, (3 - len(names)) / 2)  # one or two classes stay bar-sized, not a wall of colour
    axes.set_ylim(len(names) - 0.5 + pad, -0.5 - pad)  # the first class on top
    top = max(heights, default=0) or 1
    for position, height in zip(positions, heights, strict=True):
        axes.text(height + top * 0.01, position, label(height), va="center", fontsize=10)
    axes.set_xlim(0, top * 1.3)  # room for the labels
    _thousands(axes.xaxis)
    axes.set_xlabel(xlabel, fontsize=11)
    axes.set_ylabel("class", fontsize=11)
    axes.set_title(_title(title), fontsize=13)
    axes.grid(axis="x", alpha=0.3)
    axes.set_axisbelow(True)
    return _png(figure)


def class_distribution_plot(layer: LayerStats) -> bytes:
    """Objects (or mask pixels) per class of one layer, with each class's share; returns the PNG."""
    objects = layer.unit == OBJECTS
    what = "objects" if objects else "mask pixels"
    title = f"Class distribution: {layer.name} — {layer.total:,} {what} in {_images(layer.images)}"
    xlabel = "number of objects" if objects else "number of mask pixels (at full resolution)"
    total = layer.total or 1
    return _horizontal_bars(title, xlabel, layer.totals, layer.colours,
                            lambda count: f"{count:,.0f} ({100 * count / total:.1f} %)")  # fmt: skip


def objects_per_image_plot(layer: LayerStats) -> bytes:
    """Histogram of the objects in one image, with the mean and median marked; returns the PNG."""
    import numpy as np

    counts = np.asarray(layer.per_image)
    figure = _figure(900, 450)
    axes = figure.add_subplot()
    low, high = (int(counts.min()), int(counts.max())) if counts.size else (0, 0)
    bins = np.arange(low, high + 2) - 0.5 if high - low <= 60 else 40  # one bar per count when few
    axes.hist(counts, bins=bins, color=HISTOGRAM, edgecolor="white", linewidth=0.6)
    axes.axvline(float(counts.mean()), color="#e45756", linewidth=2, label=f"mean {counts.mean():,.1f}")
    axes.axvline(float(np.median(counts)), color="#333333", linewidth=2, linestyle="--",
                 label=f"median {np.median(counts):,g}")  # fmt: skip
    from matplotlib.ticker import MaxNLocator

    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    _thousands(axes.xaxis)
    axes.set_xlabel(f"objects in one image ({layer.name})", fontsize=11)
    axes.set_ylabel("number of images", fontsize=11)
    axes.set_title(_title(f"Objects per image: {layer.name} — {_images(len(counts))}, min {low:,}, max {high:,}"),
                   fontsize=13)  # fmt: skip
    axes.legend(fontsize=10, frameon=False)
    axes.grid(axis="y", alpha=0.3)
    axes.set_axisbelow(True)
    return _png(figure)


def per_split_plot(stats: DatasetStats, layer: LayerStats) -> bytes:
    """Objects (or mask pixels) per class in each split, one group of bars per split; returns the PNG."""
    import numpy as np

    splits = stats.splits
    names = list(layer.totals)[:MAX_CLASSES]
    width = 300 + max(110 * len(splits), 12 * len(splits) * len(names))  # room for each split's label and bars
    figure = _figure(min(1600, max(900, width)), 500)
    axes = figure.add_subplot()
    width = 0.8 / max(1, len(names))
    for number, name in enumerate(names):
        heights = [row.counts.get(layer.name, {}).get(name, 0) for row in splits]
        offsets = np.arange(len(splits)) - 0.4 + width * (number + 0.5)
        axes.bar(offsets, heights, width=width, color=layer.colours[name], edgecolor=EDGE, linewidth=0.6, label=name)
    images = [row.layer_images.get(layer.name, 0) for row in splits]
    labels = [f"{row.fold}\n" * bool(row.fold) + f"{row.split}\n({_images(n)})"
              for row, n in zip(splits, images, strict=True)]  # fmt: skip
    axes.set_xticks(range(len(splits)), labels, fontsize=10)
    pad = max(0.0, (3 - len(splits)) / 2)  # one or two splits stay bar-sized
    axes.set_xlim(-0.5 - pad, len(splits) - 0.5 + pad)
    _thousands(axes.yaxis)
    what = "objects" if layer.unit == OBJECTS else "mask pixels"
    axes.set_xlabel("split (the dataset's train / validation / test lists)", fontsize=11)
    axes.set_ylabel(f"number of {what}", fontsize=11)
    axes.set_title(_title(f"{what.capitalize()} per split: {layer.name}"), fontsize=13)
    axes.legend(title="class", loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=10, frameon=False)
    axes.grid(axis="y", alpha=0.3)
    axes.set_axisbelow(True)
    return _png(figure)


def mask_area_plot(area: MaskArea) -> bytes:
    """Area per class of one semantic mask layer, in µm² where the pixel size is known, else px²; returns the PNG."""
    known = area.images_with_pixel_size > 0
    values = area.um2 if known else area.px2
    unit = "µm²" if known else "px²"
    if not known:
        scope = f"pixel size unknown, so in px² (pixels), over {_images(area.images)}"
    elif area.images_with_pixel_size < area.images:
        scope = f"over the {area.images_with_pixel_size:,} of {_images(area.images)} whose pixel size is known"
    else:
        scope = f"over {_images(area.images)}"
    xlabel = f"area ({unit})" if known else "area (px², pixel size unknown)"
    return _horizontal_bars(f"Mask area per class: {area.layer} — {scope}", xlabel, values, area.colours,
                            lambda value: f"{value:,.0f} {unit}" if value >= 100 else f"{value:,.2f} {unit}")


def _slugs(names: Sequence[str]) -> dict[str, str]:
    """A file-name part per layer name: ``"tumour bed (SegmentationClass)"`` -> ``"tumour-bed-segmentationclass"``."""
    out: dict[str, str] = {}
    for name in names:
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "layer"
        candidate, number = slug, 2
        while candidate in out.values():
            candidate, number = f"{slug}-{number}", number + 1
        out[name] = candidate
    return out


def _has_splits(stats: DatasetStats) -> bool:
    return any(row.split != NO_SPLIT or row.fold for row in stats.splits)


def render_plots(stats: DatasetStats) -> dict[str, bytes]:
    """Every chart of ``stats`` as ``{file name: PNG bytes}``, in the order of the text report."""
    slug = _slugs([layer.name for layer in stats.layers])
    plots = {f"class-distribution-{slug[layer.name]}.png": class_distribution_plot(layer)
             for layer in stats.layers if layer.totals}  # fmt: skip
    for layer in stats.layers:
        if layer.unit == OBJECTS and layer.per_image:
            plots[f"objects-per-image-{slug[layer.name]}.png"] = objects_per_image_plot(layer)
    if _has_splits(stats):
        for layer in stats.layers:
            if layer.totals:
                plots[f"per-split-{slug[layer.name]}.png"] = per_split_plot(stats, layer)
    for area in stats.areas:
        if area.um2 or area.px2:
            plots[f"mask-area-{slug[area.layer]}.png"] = mask_area_plot(area)
    return plots


def _refuse_inside(dataset: Path, folder: Path) -> None:
    source, target = dataset.resolve(), folder.resolve()
    if target == source or source in target.parents:
        raise NsclcFormatError(folder, f"is inside {dataset}: stats never writes into the dataset")


def write_plots(stats: DatasetStats, folder: str | Path) -> list[Path]:
    """Write every chart of ``stats`` as a PNG into ``folder`` (created if missing), each atomically.

    Parameters
    ----------
    stats : DatasetStats
    folder : str or Path
        Where to write; a file of the same name is replaced.

    Returns
    -------
    list of Path
        The PNGs written, in the order of the text report.

    Raises
    ------
    NsclcFormatError
        When ``folder`` is the dataset or inside it (stats never writes into the
        dataset), is a file, or cannot be written.
    """
    folder = Path(folder)
    _refuse_inside(Path(stats.path), folder)
    if folder.exists() and not folder.is_dir():
        raise NsclcFormatError(folder, "is a file, not a folder: give the folder to write the plots in")
    return [atomic_write_bytes(folder / name, png) for name, png in render_plots(stats).items()]
