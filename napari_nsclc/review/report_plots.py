"""The review report's plots, and the numbers behind them: PNG bytes from matplotlib, headless.

Each figure is a :class:`matplotlib.figure.Figure` drawn on the Agg canvas:
no pyplot, so no global state and no GUI backend. Every plot still renders
when there is nothing to show, with a "No data yet" message.
"""

from __future__ import annotations

import struct
import textwrap
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date, timezone
from io import BytesIO

from .records import Event
from .report import _class_values, _mean, latest_submissions
from .states import APPROVED, CHANGES_REQUESTED, SUBMITTED

__all__ = ["agreement_matrix", "agreement_plot", "per_class_plot", "render_all", "work_per_day", "work_plot"]

#: Resolution of every plot, in pixels per inch: a figure of 9 x 4.5 inches is 900 x 450 pixels.
DPI = 100
#: The work plot's series, in stacking order, with their colours.
SERIES = {"submissions": "#4c78a8", "approvals": "#54a24b", "changes requested": "#e45756", "comments": "#b279a2"}


def agreement_matrix(events: list[Event]) -> tuple[list[str], list[str], list[list[float | None]]]:
    """Each annotator's mean agreement per class, over their latest submission of each case.

    Returns
    -------
    annotators : list of str
        The rows, sorted (annotators with a measured submission).
    columns : list of str
        ``"<class> (Dice)"`` for mask classes, then ``"<class> (F1)"`` for cell classes, each sorted.
    values : list of list of float or None
        ``values[row][column]``, 0-1; ``None`` where they have no defined value.
    """
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for (who, _, _), event in latest_submissions(events, per_annotator=True).items():
        for _, _, name, metric, value in _class_values(event):
            groups[(who, f"{name} ({'Dice' if metric == 'dice' else 'F1'})")].append(value)
    annotators = sorted({who for who, _ in groups})
    columns = sorted({column for _, column in groups}, key=lambda c: (not c.endswith("(Dice)"), c))
    return annotators, columns, [[_mean(groups.get((a, c), [])) for c in columns] for a in annotators]


def work_per_day(events: list[Event]) -> dict[date, dict[str, int]]:
    """Events per UTC day, from the first to the last day with any (days in between included, as 0).

    Each event counts once: ``submissions``, ``approvals``, ``changes requested``
    and ``comments`` (written on a case; a comment given with a decision counts as that decision).
    """
    kinds = {SUBMITTED: "submissions", APPROVED: "approvals", CHANGES_REQUESTED: "changes requested"}
    found: dict[date, dict[str, int]] = {}
    for e in events:
        kind = kinds.get(e.to_state) if e.what == "transition" else "comments" if e.what == "comment" else None
        if kind is not None:
            found.setdefault(e.when.astimezone(timezone.utc).date(), dict.fromkeys(SERIES, 0))[kind] += 1
    if not found:
        return {}
    days = (date.fromordinal(d) for d in range(min(found).toordinal(), max(found).toordinal() + 1))
    return {day: found.get(day, dict.fromkeys(SERIES, 0)) for day in days}


def _figure(width: int, height: int):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure) -> tuple[bytes, tuple[int, int]]:
    """The figure as PNG bytes, and its (width, height) in pixels as written (read back from the PNG header)."""
    out = BytesIO()
    figure.savefig(out, format="png", dpi=DPI, facecolor="white", metadata={"Software": None})
    data = out.getvalue()
    return data, struct.unpack(">II", data[16:24])


def _wrap(label: str, width: int = 16) -> str:
    """A class name on lines of at most ``width`` characters, so that neighbouring labels do not overlap."""
    return textwrap.fill(label, width, break_long_words=False) or label


def _centre(axes, count: int, slots: int = 5) -> None:
    """Room for at least ``slots`` bars, so that one or two bars stay bar-sized and in the middle."""
    pad = max(0.0, (slots - count) / 2)
    axes.set_xlim(-0.5 - pad, count - 0.5 + pad)


def _no_data(figure, title: str, message: str):
    axes = figure.add_subplot()
    axes.set_axis_off()
    axes.set_title(title, fontsize=13)
    axes.text(0.5, 0.5, message, ha="center", va="center", fontsize=15, color="#666", wrap=True)
    return _png(figure)


def agreement_plot(annotators: Sequence[str], columns: Sequence[str], values) -> tuple[bytes, tuple[int, int]]:
    """Heatmap of :func:`agreement_matrix`: annotators down, classes across, each cell's value written in it.

    Returns the PNG and its (width, height) in pixels: wider with more classes, taller with more annotators.
    """
    import numpy as np

    title = "How closely each student's corrections agree with the original annotation"
    width, height = max(900, 260 + 120 * len(columns)), max(420, 200 + 48 * len(annotators))
    figure = _figure(width, height)
    if not annotators or not columns:
        return _no_data(figure, title, "No data yet: no submitted case has been measured.")
    from matplotlib import colormaps

    grid = np.ma.masked_invalid(np.array([[np.nan if v is None else v for v in row] for row in values], dtype=float))
    axes = figure.add_subplot()
    image = axes.imshow(grid, cmap=colormaps["viridis"].with_extremes(bad="#e6e6e6"), vmin=0, vmax=1, aspect="auto")
    for (row, column), value in np.ndenumerate(grid.filled(np.nan)):
        text, colour = ("n/a", "#555") if np.isnan(value) else (f"{value:.2f}", "white" if value < 0.6 else "black")
        axes.text(column, row, text, ha="center", va="center", color=colour, fontsize=11)
    axes.set_xticks(range(len(columns)), [_wrap(c.rsplit(" (", 1)[0]) + "\n(" + c.rsplit(" (", 1)[1] for c in columns],
                    fontsize=10)  # fmt: skip
    axes.set_yticks(range(len(annotators)), annotators, fontsize=11)
    axes.set_xlabel("class (Dice for mask classes, F1 for cell classes)")
    axes.set_ylabel("annotator")
    axes.set_title(title, fontsize=13)
    bar = figure.colorbar(image, ax=axes, fraction=0.05)
    bar.set_label("agreement with the original\n0 = nothing in common, 1 = unchanged")
    return _png(figure)


def per_class_plot(rows: Sequence[Mapping]) -> tuple[bytes, tuple[int, int]]:
    """Bars of mean agreement per class (``per_class.csv``'s rows pooled over datasets and layers).

    Cell classes show F1, mask classes Dice; each bar is labelled with its value and n. Returns the PNG and its size.
    """
    pooled: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in rows:
        if row["mean"] is not None:
            pooled[(row["metric"], row["class"])].extend([row["mean"]] * row["n"])  # weighted by n
    bars = sorted(pooled.items(), key=lambda item: (item[0][0] != "f1", item[0][1]))
    title = "Agreement with the original annotation, per class (latest submission of each case)"
    figure = _figure(max(900, 200 + 110 * len(bars)), 450)
    if not bars:
        return _no_data(figure, title, "No data yet: no submitted case has been measured.")
    axes = figure.add_subplot()
    colours = {"f1": "#4c78a8", "dice": "#f58518"}
    for position, ((metric, _), values) in enumerate(bars):
        mean = sum(values) / len(values)
        label = {"f1": "F1 (cells)", "dice": "Dice (masks)"}[metric]
        axes.bar(position, mean, color=colours[metric], label=label, width=0.6)
        axes.text(position, mean + 0.02, f"{mean:.2f}\nn={len(values)}", ha="center", va="bottom", fontsize=9)
    axes.set_xticks(range(len(bars)), [_wrap(name) for (_, name), _ in bars])
    _centre(axes, len(bars))
    axes.set_ylim(0, 1.18)
    axes.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
    axes.set_xlabel("class")
    axes.set_ylabel("mean agreement (0-1)")
    axes.set_title(title, fontsize=13)
    handles, labels = axes.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    axes.legend(unique.values(), unique.keys(), loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=10, frameon=False)
    axes.grid(axis="y", alpha=0.3)
    return _png(figure)


def work_plot(days: Mapping[date, Mapping[str, int]]) -> tuple[bytes, tuple[int, int]]:
    """Stacked bars of :func:`work_per_day`, one bar per day. Returns the PNG and its size."""
    title = "Review work per day"
    figure = _figure(900, 400)
    if not days or not any(any(counts.values()) for counts in days.values()):
        return _no_data(figure, title, "No data yet: nothing has been submitted, decided or commented.")
    from matplotlib.ticker import MaxNLocator

    axes = figure.add_subplot()
    labels = [day.strftime("%d %b") for day in days]
    bottom = [0] * len(days)
    for name, colour in SERIES.items():
        heights = [counts[name] for counts in days.values()]
        axes.bar(range(len(days)), heights, bottom=bottom, color=colour, label=name, width=0.7)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    step = max(1, len(days) // 15)
    axes.set_xticks(range(0, len(days), step), labels[::step])
    _centre(axes, len(days))
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("day (UTC)")
    axes.set_ylabel("events")
    axes.set_title(title, fontsize=13)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=10, frameon=False)
    axes.grid(axis="y", alpha=0.3)
    return _png(figure)


def render_all(events: list[Event], per_class_rows: Sequence[Mapping]) -> dict[str, tuple[bytes, tuple[int, int]]]:
    """Every plot of the report: ``{file name: (PNG bytes, (width, height) in pixels)}``."""
    return {"agreement.png": agreement_plot(*agreement_matrix(events)), "per_class_f1.png": per_class_plot(per_class_rows),
            "work_over_time.png": work_plot(work_per_day(events))}  # fmt: skip
