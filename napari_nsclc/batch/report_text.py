"""The plain-text output of ``validate``: one line per finding, then the families and a verdict.

No napari or Qt import.
"""

from __future__ import annotations

from .families import split_conflicts
from .validate import ValidationResult

__all__ = ["text_lines"]


def _family_line(number: int, family) -> str:
    splits = family.splits or [{} for _ in family.files]
    members = ", ".join(
        file + (f" ({', '.join(f'{k}={v}' if k else v for k, v in split.items())})" if split else "")
        for file, split in zip(family.files, splits, strict=True)
    )
    conflicts = split_conflicts(family.splits)
    verdict = f"  SPLIT ACROSS {'; '.join(f'{k}: ' * bool(k) + ' and '.join(v) for k, v in conflicts.items())}" \
        if conflicts else ""  # fmt: skip
    return f"  family {number} ({len(family.files)} images, within {family.distance} bits): {members}{verdict}"


def text_lines(result: ValidationResult) -> list[str]:
    """What ``napari-nsclc validate PATH`` prints."""
    counts = result.counts()
    lines = [f"{result.path}: {result.title} ({result.format}), {result.cases} case(s), {result.files} file(s)"]
    lines.append(f"problems ({len(result.problems)}):" if result.problems else "problems: none")
    lines += [f"  [{p.kind}] {p.message}" for p in result.problems]
    if result.notes:
        lines.append(f"notes ({len(result.notes)}):")
        lines += [f"  [{p.kind}] {p.message}" for p in result.notes]
    hashed = counts["images_hashed"]
    if result.families:
        split = counts["families_split_across_splits"]
        lines.append(f"augmentation families ({len(result.families)} among {hashed} image(s), {split} split across "
                     "splits):")  # fmt: skip
        lines += [_family_line(number, family) for number, family in enumerate(result.families, start=1)]
    else:
        lines.append(f"augmentation families: none among {hashed} image(s)")
    if result.problems:
        kinds = ", ".join(f"{kind} {n}" for kind, n in counts["problems_by_kind"].items())
        lines.append(f"result: {len(result.problems)} problem(s) ({kinds}); exit code 1")
    else:
        lines.append("result: clean; exit code 0")
    return lines
