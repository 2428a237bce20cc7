"""What ``validate`` reports: problems and notes, each one file, one kind and one line.

Readers already record what they meet and work around in
``case.provenance.warnings`` (one line each, naming the file first). They are
reported here as they are, sorted into the kinds below by
:func:`classify_warning`, so that a problem the reader found is reported once,
in the reader's own words. No napari or Qt import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "KINDS",
    "NOTE",
    "PROBLEM",
    "Problem",
    "classify_warning",
    "display_path",
    "warning_file",
]

#: Severity of a finding that makes ``validate`` exit 1.
PROBLEM = "problem"
#: Severity of a finding that is worth saying but does not fail the dataset.
NOTE = "note"

#: Every kind of finding, with what it means (``docs/batch.md`` explains each).
KINDS = {
    "unreadable": "a file that cannot be decoded or parsed (truncated PNG, corrupt JSON or XML)",
    "size-mismatch": "an image and its mask (or its annotation file) disagree on the size",
    "value-outside-schema": "mask values or object classes that the dataset's class schema does not define",
    "orphan": "an annotation or mask with no image, an XML with no slice, an annotation of an unknown image",
    "missing": "an image whose annotation or mask file is missing",
    "duplicate-id": "one id, stem or name used for two different things",
    "outside-image": "boxes, points or outlines lying outside their image",
    "family-split": "an augmentation family whose members are in different splits or folds",
    "conflict": "convert: an output file that may not be written (not this conversion's, or two cases differ)",
    "reader-warning": "anything else a reader met and worked around",
}

# (pattern, kind, severity), tried in order on a reader's warning; the first match wins.
_RULES: tuple[tuple[str, str, str], ...] = (
    (r"duplicate (image|annotation) id", "duplicate-id", PROBLEM),
    (r"is not in 'images'|annotation for a slice that is not in the loaded series", "orphan", PROBLEM),
    (r"no image in \w+/ for this case|: missing; showing the tissue mask alone", "orphan", PROBLEM),
    (r"image not found; showing the masks alone|no image for it in JPEGImages", "orphan", PROBLEM),
    (r": missing; an empty .*mask is ready to paint", "missing", PROBLEM),
    (r"16-bit mask", "reader-warning", NOTE),
    (r"(lies|lie|reaches) (partly )?outside|outside the \d+x\d+ (image|slice)", "outside-image", PROBLEM),
    (r"value\(s\) outside the|unknown class code|outside 1, 2, 255|is not in 'categories'", "value-outside-schema",
     PROBLEM),
    (r"is not one of A, B, E, G|label -?\d+ is not 1 or 2|256 - label|label\(s\) other than 0/1",
     "value-outside-schema", PROBLEM),
    (r"holds values \[.*\]; every non-zero value", "value-outside-schema", PROBLEM),
    (r"mask is \d+x\d+ (pixels|px) but|but the JSON says|<size> says|RLE size .* differs|but the slide is",
     "size-mismatch", PROBLEM),
    (r"truncated file|not a readable DICOM|cannot be read|not loaded: |decoded to .* but its header", "unreadable",
     PROBLEM),
    (r"not well-formed|cannot be parsed|is not valid JSON|not a JSON", "unreadable", PROBLEM),
    # facts about a file that do not make the dataset wrong
    (r"has no pyramid|pixel size unknown|no PixelSpacing|SUV cannot be computed|ordered by InstanceNumber",
     "reader-warning", NOTE),
    (r"grouped by its folder|open together but lie in|this folder mixes|read as a polygon|a DICOMDIR",
     "reader-warning", NOTE),
)
_COMPILED = tuple((re.compile(pattern), kind, severity) for pattern, kind, severity in _RULES)


@dataclass(frozen=True)
class Problem:
    """One finding of ``validate``.

    Parameters
    ----------
    file : str
        The file it is about, relative to the dataset root when inside it
        (``"Mask/7.png"``), else as given.
    kind : str
        One of :data:`KINDS`.
    message : str
        One line, naming the file and saying what is wrong.
    severity : {"problem", "note"}
        Problems make ``validate`` exit 1; notes do not.
    origin : str
        The reader's warning it came from, verbatim (``""`` for the checks' own
        findings): a warning a reader put on several cases is reported once.
    """

    file: str
    kind: str
    message: str
    severity: str = PROBLEM
    origin: str = field(default="", compare=False, repr=False)

    def as_dict(self) -> dict[str, str]:
        """``{"file", "kind", "message", "severity"}`` for JSON."""
        return {"file": self.file, "kind": self.kind, "message": self.message, "severity": self.severity}


def classify_warning(warning: str) -> tuple[str, str]:
    """``(kind, severity)`` of one reader warning (see :data:`KINDS`); ``reader-warning`` when none fits."""
    for pattern, kind, severity in _COMPILED:
        if pattern.search(warning):
            return kind, severity
    return "reader-warning", PROBLEM


def warning_file(warning: str) -> str:
    """The file a reader's warning names first (``"Mask/7.png: missing; ..."`` -> ``"Mask/7.png"``)."""
    head, sep, _ = warning.partition(": ")
    return head.strip() if sep else ""


def display_path(path: str | Path, root: Path | None) -> str:
    """``path`` relative to ``root`` (POSIX separators) when inside it, else as given."""
    if root is None:
        return str(path)
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except (ValueError, OSError):
        return str(path)
