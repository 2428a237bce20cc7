"""The ``--html`` report of ``validate``: one self-contained page (inline CSS, no scripts, no links out).

Every value from the dataset (file names, messages) is escaped. The page is
written atomically (:func:`napari_nsclc._atomic.atomic_write_text`), so a
reader never sees half a report. No napari or Qt import.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from .._atomic import atomic_write_text
from .families import split_conflicts
from .problems import KINDS
from .validate import ValidationResult

__all__ = ["render", "write_report"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td.file, td.kind { white-space: nowrap; font-family: monospace; }
.clean { color: #1a7f37; } .failed { color: #b42318; }
tr.split td { background: #fdecea; }
"""


def _row(cells, css: str = "", header: bool = False) -> str:
    tag = "th" if header else "td"
    parts = []
    for cell in cells:
        text, klass = cell if isinstance(cell, tuple) else (cell, "")
        attribute = f' class="{klass}"' if klass else ""
        parts.append(f"<{tag}{attribute}>{escape(str(text))}</{tag}>")
    attribute = f' class="{css}"' if css else ""
    return f"<tr{attribute}>{''.join(parts)}</tr>"


def _findings(title: str, findings, element_id: str) -> list[str]:
    lines = [f'<h2 id="{element_id}">{escape(title)} ({len(findings)})</h2>']
    if not findings:
        return [*lines, "<p>None.</p>"]
    lines.append("<table>")
    lines.append(_row(["kind", "file", "message"], header=True))
    lines += [_row([(p.kind, "kind"), (p.file, "file"), p.message]) for p in findings]
    lines.append("</table>")
    return lines


def _families(result: ValidationResult) -> list[str]:
    lines = [f'<h2 id="families">Augmentation families ({len(result.families)})</h2>']
    if not result.families:
        return [*lines, "<p>No two images are flipped or rotated copies of one another.</p>"]
    lines.append("<table>")
    lines.append(_row(["family", "images", "splits", "largest distance (bits)"], header=True))
    for number, family in enumerate(result.families, start=1):
        conflicts = split_conflicts(family.splits)
        splits = [", ".join(f"{k}={v}" if k else v for k, v in s.items()) or "no split" for s in family.splits]
        members = "; ".join(f"{file} ({split})" for file, split in zip(family.files, splits or [""] * len(family.files),
                                                                      strict=True))  # fmt: skip
        where = "; ".join(f"{k + ': ' if k else ''}{' and '.join(v)}" for k, v in conflicts.items())
        verdict = f"split across {where}" if conflicts else "one split"
        lines.append(_row([number, members, verdict, family.distance], css="split" if conflicts else ""))
    lines.append("</table>")
    return lines


def render(result: ValidationResult) -> str:
    """The report of ``result`` as one HTML page (a string)."""
    counts = result.counts()
    verdict = ("clean", "clean: no problem found") if result.exit_code == 0 else \
        ("failed", f"{len(result.problems)} problem(s) found")  # fmt: skip
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"/>',
        f"<title>napari-nsclc validate: {escape(result.path)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>napari-nsclc validate: {escape(result.path)}</h1>",
        f'<p class="{verdict[0]}" id="verdict">{escape(verdict[1])} (exit code {result.exit_code})</p>',
        '<h2 id="summary">Summary</h2><table>',
        _row(["layout", f"{result.title} ({result.format})"]),
        _row(["cases", counts["cases"]]),
        _row(["files", counts["files"]]),
        _row(["images hashed", counts["images_hashed"]]),
        _row(["families", counts["families"]]),
        _row(["families split across splits", counts["families_split_across_splits"]]),
    ]
    lines += [_row([f"{kind}", n]) for kind, n in counts["problems_by_kind"].items()]
    lines.append("</table>")
    lines += _findings("Problems", result.problems, "problems")
    lines += _findings("Notes", result.notes, "notes")
    lines += _families(result)
    lines.append('<h2 id="kinds">What the kinds mean</h2><table>')
    lines += [_row([(kind, "kind"), meaning]) for kind, meaning in KINDS.items()]
    lines.append("</table></body></html>")
    return "\n".join(lines) + "\n"


def write_report(result: ValidationResult, target: str | Path) -> Path:
    """Write :func:`render` of ``result`` to ``target`` atomically; returns ``target``."""
    return atomic_write_text(Path(target), render(result))
