"""A review store as a report for supervisors: CSV tables, three plots and one HTML page. Headless.

:func:`write_report` writes, into one folder:

``cases.csv``
    One row per case: state, annotators, counts, and the agreement its latest
    submission measured (:func:`case_table`).
``annotators.csv``
    One row per annotator: work done and mean agreement (:func:`annotator_table`).
``states.csv``, ``per_class.csv``, ``events.csv``
    Cases per state, agreement per class, and the whole event log.
``agreement.png``, ``per_class_f1.png``, ``work_over_time.png``
    Plots (:mod:`~napari_nsclc.review.report_plots`).
``report.html``
    All of it on one page, with no script and no external resource; written last.

*Agreement* is how closely a student's saved correction agrees with the
original annotation (:func:`~napari_nsclc.review.session.submission_details`):
Dice for masks, F1 for cells, both from 0 (nothing in common) to 1
(unchanged). It says how much was changed, not whether the change was right.
Undefined values (``None`` in the details) are left out of means, and are
blank in the CSV files. Each file is written atomically; a failure leaves
the previous report's file in place.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .._atomic import atomic_write_bytes, atomic_write_text
from ..model import NsclcFormatError
from .records import Event, QueueEntry
from .states import APPROVED, CHANGES_REQUESTED, STATES, SUBMITTED

__all__ = [
    "Snapshot", "Table", "annotator_table", "case_table", "collect", "event_table", "latest_submissions",
    "per_class_table", "render_html", "state_table", "submissions", "write_report", "write_snapshot",
]  # fmt: skip

#: The CSV and HTML names of the kinds in a submission's details.
KINDS = {"masks": "mask", "points": "points", "boxes": "boxes"}
#: The per-layer figures the case table keeps, per kind.
LAYER_FIGURES = {"masks": ("mean_dice", "pixels_changed"), "points": ("f1", "kappa"), "boxes": ("f1", "kappa")}
#: The HTML page lists at most this many events, newest first (events.csv has them all).
TIMELINE_LIMIT = 500


@dataclass(frozen=True)
class Snapshot:
    """What a report is made from: the store's queue and event log, read once.

    Attributes
    ----------
    where : str
        The store's file or URL (password hidden).
    queue : list of QueueEntry
        Every case.
    events : list of Event
        The whole log, oldest first.
    supervisors : tuple of str
        The store's supervisors.
    generated_at : datetime
        When it was read, in UTC.
    """

    where: str
    queue: list[QueueEntry]
    events: list[Event]
    supervisors: tuple[str, ...] = ()
    generated_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


@dataclass(frozen=True)
class Table:
    """Rows of one CSV file: ``columns`` in order, each row a dict (a missing key or ``None`` is blank)."""

    columns: tuple[str, ...]
    rows: list[dict]

    def to_csv(self) -> str:
        """The table as CSV text, ``\\n`` line ends; text that a spreadsheet would run as a formula is quoted."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.columns)
        for row in self.rows:
            writer.writerow([_csv_cell(row.get(column)) for column in self.columns])
        return out.getvalue()


def _csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value  # names and comments are typed by people: never a spreadsheet formula
    return value


def _number(value) -> float | int | None:
    """A finite number, else ``None`` (details are read defensively: older or other versions wrote them)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return value


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _iso(when: datetime | None) -> str | None:
    return when.astimezone(timezone.utc).isoformat(timespec="seconds") if when is not None else None


def _layers(details, kind: str) -> dict[str, dict]:
    """``details[kind]``: layer name -> its figures (a skipped mask has none), defensively."""
    layers = details.get(kind) if isinstance(details, dict) else None
    return {str(k): v for k, v in layers.items() if isinstance(v, dict)} if isinstance(layers, dict) else {}


def collect(store) -> Snapshot:
    """Read ``store``'s queue, event log and supervisors for a report.

    Parameters
    ----------
    store : ReviewStore
        An open store.
    """
    return Snapshot(store.where, store.queue(), store.events(), store.supervisors())


# --------------------------------------------------------------------------- what the tables are made of


def submissions(events: list[Event]) -> list[Event]:
    """The submissions in ``events``: transitions to ``submitted``, oldest first."""
    return [e for e in events if e.what == "transition" and e.to_state == SUBMITTED]


def latest_submissions(events: list[Event], *, per_annotator: bool = False) -> dict[tuple, Event]:
    """The latest submission of each case: ``{(dataset, case): event}``.

    With ``per_annotator``, the latest of each annotator on each case: ``{(who, dataset, case): event}``.
    """
    latest = {}
    for event in submissions(events):
        latest[(event.who, event.dataset, event.case) if per_annotator else (event.dataset, event.case)] = event
    return latest


def _layer_figures(details) -> dict[str, float | int | None]:
    """``{"mask:<layer>:mean_dice": value, ...}`` from one submission's details."""
    figures = {}
    for kind, names in LAYER_FIGURES.items():
        for layer, values in _layers(details, kind).items():
            for name in names:
                figures[f"{KINDS[kind]}:{layer}:{name}"] = _number(values.get(name))
    return figures


def state_table(queue: list[QueueEntry]) -> Table:
    """Cases per state: every state of :data:`~.states.STATES`, in order, 0 included."""
    counts = {state: 0 for state in STATES}
    for entry in queue:
        counts[entry.state] = counts.get(entry.state, 0) + 1
    return Table(("state", "count"), [{"state": s, "count": n} for s, n in counts.items()])


def case_table(queue: list[QueueEntry], events: list[Event]) -> Table:
    """One row per case of ``queue``, in its order (dataset, then case id).

    Columns: ``dataset``, ``case``, ``state``, ``annotators`` (``"; "``
    between names), ``submissions``, ``changes_requested`` (counts of those
    transitions), ``comments`` (every comment, those given with a decision
    included), ``last_submitted_by``, ``last_submitted_at`` (ISO 8601, UTC),
    then the latest submission's figures per layer:
    ``mask:<layer>:mean_dice`` (0-1), ``mask:<layer>:pixels_changed``
    (pixels), ``points:<layer>:f1``, ``points:<layer>:kappa`` and the same
    for ``boxes`` (F1 0-1, Cohen's kappa -1-1). Blank when absent or undefined.
    """
    counts: dict[tuple, dict[str, int]] = defaultdict(lambda: {"submissions": 0, "changes_requested": 0, "comments": 0})
    for e in events:
        row = counts[(e.dataset, e.case)]
        row["submissions"] += e.what == "transition" and e.to_state == SUBMITTED
        row["changes_requested"] += e.what == "transition" and e.to_state == CHANGES_REQUESTED
        row["comments"] += e.what == "comment" or (e.what == "transition" and bool(e.text))
    latest = latest_submissions(events)
    rows, figures = [], {}
    for entry in queue:
        key = (entry.dataset, entry.case)
        last = latest.get(key)
        row = {"dataset": entry.dataset, "case": entry.case, "state": entry.state,
               "annotators": "; ".join(entry.annotators), **counts[key],
               "last_submitted_by": last.who if last else None, "last_submitted_at": _iso(last.when) if last else None}
        if last is not None:
            row.update(_layer_figures(last.details))
        figures.update(dict.fromkeys(k for k in row if k.count(":") >= 2))
        rows.append(row)
    order = {kind: i for i, kind in enumerate(KINDS.values())}
    extra = sorted(figures, key=lambda k: (order[k.split(":")[0]], k.split(":", 1)[1].rsplit(":", 1)[0], k))
    base = ("dataset", "case", "state", "annotators", "submissions", "changes_requested", "comments",
            "last_submitted_by", "last_submitted_at")  # fmt: skip
    return Table((*base, *extra), rows)


def _agreements(event: Event) -> tuple[list, list]:
    """One submission's Dice values (a mask layer's mean Dice) and F1 values (a point or box layer's F1)."""
    dice = [_number(v.get("mean_dice")) for v in _layers(event.details, "masks").values()]
    f1 = [_number(v.get("f1")) for kind in ("points", "boxes") for v in _layers(event.details, kind).values()]
    return [v for v in dice if v is not None], [v for v in f1 if v is not None]


def annotator_table(queue: list[QueueEntry], events: list[Event]) -> Table:
    """One row per annotator (a name assigned a case, or who submitted one), sorted by name.

    Columns: ``annotator``; ``cases_assigned``; ``submitted`` (their
    submissions, resubmissions included); ``approved`` (approved cases whose
    last submission was theirs); ``changes_requested`` (requests that
    followed a submission of theirs); ``mean_dice`` and ``mean_f1`` (0-1):
    the mean, over their latest submission of each case, of every mask
    layer's mean Dice and every point or box layer's F1; blank when none.
    """
    names = {name for entry in queue for name in entry.annotators} | {e.who for e in submissions(events)}
    rows = {name: {"annotator": name, "cases_assigned": 0, "submitted": 0, "approved": 0, "changes_requested": 0}
            for name in sorted(names)}  # fmt: skip
    for entry in queue:
        for name in entry.annotators:
            rows[name]["cases_assigned"] += 1
    last_by_case: dict[tuple, Event] = {}
    for e in events:
        key = (e.dataset, e.case)
        if e.what != "transition":
            continue
        if e.to_state == SUBMITTED:
            rows[e.who]["submitted"] += 1
            last_by_case[key] = e
        elif e.to_state in (APPROVED, CHANGES_REQUESTED) and key in last_by_case:
            rows[last_by_case[key].who]["approved" if e.to_state == APPROVED else "changes_requested"] += 1
    values = defaultdict(lambda: ([], []))
    for (who, _, _), event in latest_submissions(events, per_annotator=True).items():
        dice, f1 = _agreements(event)
        values[who][0].extend(dice)
        values[who][1].extend(f1)
    for name, row in rows.items():
        row["mean_dice"], row["mean_f1"] = _mean(values[name][0]), _mean(values[name][1])
    columns = ("annotator", "cases_assigned", "submitted", "approved", "changes_requested", "mean_dice", "mean_f1")
    return Table(columns, list(rows.values()))


def _class_values(event: Event):
    """``(kind, layer, class, metric, value)`` for each class of each layer of one submission."""
    for kind, metric in (("masks", "dice"), ("points", "f1"), ("boxes", "f1")):
        for layer, figures in _layers(event.details, kind).items():
            per_class = figures.get("per_class")
            for name, row in (per_class.items() if isinstance(per_class, dict) else ()):
                value = _number(row.get(metric)) if isinstance(row, dict) else None
                yield KINDS[kind], layer, str(name), metric, value


def per_class_table(events: list[Event]) -> Table:
    """Agreement per class over the latest submission of each case.

    Columns: ``dataset``, ``kind`` (mask, points, boxes), ``layer``,
    ``class``, ``metric`` (``dice`` for masks, ``f1`` for cells), ``mean``
    (0-1, blank when every value is undefined) and ``n`` (the defined values).
    """
    groups: dict[tuple, list] = {}
    for event in latest_submissions(events).values():
        for kind, layer, name, metric, value in _class_values(event):
            groups.setdefault((event.dataset, kind, layer, name, metric), []).append(value)
    columns = ("dataset", "kind", "layer", "class", "metric", "mean", "n")
    rows = [dict(zip(columns, (*key, _mean(v), sum(x is not None for x in v)), strict=True))
            for key, v in sorted(groups.items())]  # fmt: skip
    return Table(columns, rows)


def event_table(events: list[Event]) -> Table:
    """The whole log, oldest first: ``id``, ``when`` (ISO 8601, UTC), ``who``, ``what``, ``dataset``, ``case``,
    ``from_state``, ``to_state``, ``text`` and ``details`` (compact JSON, blank when none)."""
    columns = ("id", "when", "who", "what", "dataset", "case", "from_state", "to_state", "text", "details")
    rows = [{"id": e.id, "when": _iso(e.when), "who": e.who, "what": e.what, "dataset": e.dataset, "case": e.case,
             "from_state": e.from_state, "to_state": e.to_state, "text": e.text,
             "details": json.dumps(e.details, sort_keys=True, separators=(",", ":")) if e.details is not None else None}
            for e in events]  # fmt: skip
    return Table(columns, rows)


# --------------------------------------------------------------------------- writing


def _folder(folder) -> Path:
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NsclcFormatError(folder, "is a file, not a folder: give the folder to write the report in")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise NsclcFormatError(folder, f"cannot be created: {error.strerror or error}") from error
    return folder


def write_report(store, folder) -> Path:
    """Write the report of ``store`` into ``folder`` (created if missing); returns ``report.html``'s path.

    Parameters
    ----------
    store : ReviewStore
        An open store; it is only read.
    folder : str or os.PathLike
        Where the files go; files of an earlier report there are replaced.

    Raises
    ------
    NsclcFormatError
        When ``folder`` is a file, or a file cannot be written (one line naming it).
    """
    _folder(folder)
    return write_snapshot(collect(store), folder)


def write_snapshot(snapshot: Snapshot, folder) -> Path:
    """Write the report of ``snapshot`` (see :func:`collect`) into ``folder``; as :func:`write_report`."""
    folder = _folder(folder)
    tables = {"cases": case_table(snapshot.queue, snapshot.events),
              "annotators": annotator_table(snapshot.queue, snapshot.events),
              "states": state_table(snapshot.queue), "per_class": per_class_table(snapshot.events),
              "events": event_table(snapshot.events)}  # fmt: skip
    for name, table in tables.items():
        atomic_write_text(folder / f"{name}.csv", table.to_csv())
    from .report_plots import render_all  # matplotlib is loaded only to write a report

    plots = render_all(snapshot.events, tables["per_class"].rows)
    sizes = {}
    for name, (png, size) in plots.items():
        atomic_write_bytes(folder / name, png)
        sizes[name] = size
    return atomic_write_text(folder / "report.html", render_html(snapshot, tables, sizes))


# --------------------------------------------------------------------------- the page

_CSS = """
body{font-family:"DejaVu Sans",Arial,sans-serif;margin:24px auto;max-width:1150px;color:#222;line-height:1.4;padding:0 16px}
h1{margin-bottom:4px}h2{margin-top:32px;border-bottom:2px solid #ddd;padding-bottom:4px}.meta,.note,figcaption{color:#555}
table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f0f3f7;vertical-align:bottom}td{white-space:nowrap}td.text{white-space:pre-wrap;min-width:200px}
td.n{text-align:right;font-variant-numeric:tabular-nums}.none{color:#aaa}.tiles{display:flex;gap:12px;flex-wrap:wrap}
.tile{border:1px solid #ccc;border-radius:6px;padding:8px 16px;min-width:110px}.tile b{display:block;font-size:26px}
.state{border-radius:4px;padding:1px 6px;white-space:nowrap}.s-new{background:#eee}.s-in_progress{background:#dbe9fb}
.s-submitted{background:#fff0c2}.s-changes_requested{background:#fbd9d3}.s-approved{background:#d5f0d5}
figure{margin:16px 0}img{max-width:100%;height:auto;border:1px solid #ddd}.wide{overflow-x:auto}
"""
_FIGURES = {"mean_dice": "Dice", "pixels_changed": "pixels changed", "f1": "F1", "kappa": "kappa"}
_TITLES = {"mean_dice": "mean Dice", "mean_f1": "mean F1", "last_submitted_at": "last submitted (UTC)"}
_SHOWN = {"metric": {"dice": "Dice", "f1": "F1"}.get, "last_submitted_at": lambda v: v and v[:16].replace("T", " ")}
_DOING = {"in_progress": "started work", "submitted": "submitted", "approved": "approved",
          "changes_requested": "requested changes"}  # fmt: skip
_PLOTS = {
    "agreement.png": ("Heatmap: mean agreement of each annotator with the original annotation, per class",
                      "Each annotator's latest submission of each case: Dice for mask classes, F1 for cell classes. "
                      "1 means the original was kept as it was; low values mean much was changed."),
    "per_class_f1.png": ("Bar chart: agreement with the original per class, over the latest submission of each case",
                         "Mean F1 (cells) or Dice (masks) per class; n counts the values: one per layer of each submission."),
    "work_over_time.png": ("Bar chart: review work per day, submissions, approvals, changes requested and comments",
                           "Per day (UTC). A comment given with a decision counts as that decision."),
}  # fmt: skip


def _cell(value, css: str = "") -> str:
    if value is None or value == "":
        return '<td><span class="none">–</span></td>'
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f'<td class="n">{value:.3f}</td>' if isinstance(value, float) else f'<td class="n">{value}</td>'
    return f"<td{css}>{html.escape(str(value))}</td>"


def _state(state: str, tag: str = "span") -> str:
    return f'<{tag} class="state s-{html.escape(state)}">{html.escape(state.replace("_", " "))}</{tag}>'


def _header(column: str) -> str:
    if column.count(":") >= 2:  # kind:layer:figure
        kind, rest = column.split(":", 1)
        layer, figure = rest.rsplit(":", 1)
        kind = f" ({kind})" if kind != "mask" else ""  # a mask's figures (Dice, pixels) say it is a mask
        return f"{html.escape(layer)}{kind}<br>{html.escape(_FIGURES.get(figure, figure))}"
    return html.escape(_TITLES.get(column, column.replace("_", " ")))


def _table(table: Table, empty: str) -> str:
    if not table.rows:
        return f'<p class="note">{html.escape(empty)}</p>'
    head = "".join(f"<th>{_header(c)}</th>" for c in table.columns)
    shown = {c: _SHOWN.get(c, lambda v: v) for c in table.columns}
    body = "".join("<tr>" + "".join(f"<td>{_state(row[c])}</td>" if c == "state" else _cell(shown[c](row.get(c)))
                                    for c in table.columns) + "</tr>\n" for row in table.rows)  # fmt: skip
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table></div>'


def _what(event: Event) -> str:
    if event.what in ("add", "assign", "comment"):
        return {"add": "added the case", "comment": "commented"}.get(
            event.what, f"assigned it to <b>{html.escape(event.text or '')}</b>")
    doing = html.escape(_DOING.get(event.to_state, f"moved it to {event.to_state}"))
    dice, f1 = _agreements(event) if event.to_state == SUBMITTED else ([], [])
    figures = [f"{name} {_mean(values):.2f}" for name, values in (("Dice", dice), ("F1", f1)) if values]
    return doing + (f" ({', '.join(figures)})" if figures else "")


def render_html(snapshot: Snapshot, tables: dict[str, Table], sizes: dict[str, tuple[int, int]],
                limit: int = TIMELINE_LIMIT) -> str:  # fmt: skip
    """The report page: state counts, the three plots, the tables and the latest ``limit`` events.

    ``tables`` are the CSV tables by name (``cases``, ``annotators``, ...);
    ``sizes`` each PNG's (width, height) in pixels. Every name and comment is escaped.
    """
    when = snapshot.generated_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    where, datasets = html.escape(snapshot.where), html.escape(", ".join(sorted({e.dataset for e in snapshot.queue})))
    tiles = "".join(f'<div class="tile">{_state(row["state"])}<b>{row["count"]}</b></div>'
                    for row in tables["states"].rows)  # fmt: skip
    figures = "".join(
        f'<figure><img src="{name}" alt="{html.escape(alt)}" width="{sizes[name][0]}" height="{sizes[name][1]}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>\n" for name, (alt, caption) in _PLOTS.items())
    timeline = "".join(
        f"<tr><td>{e.when.astimezone(timezone.utc):%Y-%m-%d %H:%M}</td><td>{html.escape(e.who)}</td>"
        f"<td>{html.escape(e.dataset)} / {html.escape(e.case)}</td><td>{_what(e)}</td>"
        f"{_cell(e.text if e.what != 'assign' else None, ' class=text')}</tr>\n" for e in snapshot.events[::-1][:limit])
    more = f"the latest {limit} of {len(snapshot.events)} (events.csv has all), " if len(snapshot.events) > limit else ""
    files = " · ".join(f'<a href="{n}.csv">{n}.csv</a>' for n in tables)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Review report: {where}</title><style>{_CSS}</style></head>
<body>
<h1>Review report</h1>
<p class="meta">Store <code>{where}</code> · generated {when} · {len(snapshot.queue)} case(s)
({datasets or "no dataset yet"}) · {len(submissions(snapshot.events))} submission(s) · supervisors:
{html.escape(", ".join(snapshot.supervisors) or "none listed")}</p>
<p class="note"><b>Agreement</b> compares each student's saved correction with the original annotation, from 0
(nothing in common) to 1 (unchanged): <b>Dice</b> for masks (pixel overlap) and <b>F1</b> for cells (cells matched
one-to-one within 10 µm, boxes overlapping by IoU ≥ 0.5; per class, the class must match too). <b>Kappa</b> is how
well the matched cells' classes agree beyond chance. Agreement shows how much a student changed, not whether the
change was right. A dash means not measured or undefined. The tables are also in {files}.</p>
<h2>Cases per state</h2>
<div class="tiles">{tiles}</div>
<h2>Annotators</h2>
<p class="note">Submitted counts resubmissions; approved and changes requested count the supervisors' decisions on
their submissions; mean Dice and F1 are over their latest submission of each case.</p>
{_table(tables["annotators"], "No case is assigned yet.")}
<h2>Agreement and work</h2>
{figures}
<h2>Cases</h2>
<p class="note">Counts over the case's whole history; the figures are those of its latest submission.</p>
{_table(tables["cases"], "The store has no cases yet.")}
<h2>Agreement per class</h2>
<p class="note">Over the latest submission of each case; n is the number of submissions with a value.</p>
{_table(tables["per_class"], "No submission has been measured yet.")}
<h2>Timeline</h2>
<p class="note">Every event, newest first: {more}times in UTC.</p>
<table><thead><tr><th>when</th><th>who</th><th>case</th><th>what</th><th>comment</th></tr></thead>
<tbody>
{timeline}</tbody></table>
</body></html>
"""
