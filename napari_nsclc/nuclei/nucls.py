"""NuCLS CSV outlines parsed in bulk: every ``coords_x``/``coords_y`` cell in one numpy call.

A NuCLS CSV row holds a nucleus's vertices as quoted comma-separated
integers (``"43,139,139,43,43"``). Splitting each cell in Python makes one
string and one float object per vertex; :func:`parse_rings` instead joins the
cells of all rows and parses them with one ``np.fromstring``, and only falls
back to row-by-row parsing to name the rows that are not numbers.
:func:`read` gives a FOV's nuclei as a :class:`~.model.NucleusSet`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..model import ClassInfo, NsclcFormatError
from .model import NucleusSet, Problems

__all__ = ["parse_rings", "read"]

BAD = "coordinates that are not numbers, differ in length or have under 3 vertices"


def _numbers(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """All numbers of ``texts`` (comma-separated) and the count per text; counts are -1 for unparsable texts."""
    counts = np.fromiter((t.count(",") + 1 if t.strip() else 0 for t in texts), np.int64, len(texts))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # numpy warns, then stops, at text that is not a number
            flat = np.fromstring(",".join(t for t in texts if t.strip()), sep=",") if counts.any() else np.zeros(0)
        if len(flat) == counts.sum():
            return flat, counts
    except (ValueError, DeprecationWarning):
        pass
    pieces = []
    for k, text in enumerate(texts):  # the rare bad file: find its bad rows one by one
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                values = np.fromstring(text, sep=",") if text.strip() else np.zeros(0)
        except (ValueError, DeprecationWarning):
            values = np.zeros(0)
            counts[k] = -1
        pieces.append(values)
    return np.concatenate(pieces) if pieces else np.zeros(0), counts


def parse_rings(xs_texts: Sequence[str], ys_texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rings of NuCLS ``coords_x``/``coords_y`` cells.

    Returns
    -------
    vertices : (V, 2) float array
        File ``(x, y)`` of every good row's ring, closing vertex kept, in row order.
    lengths : (K,) int array
        Vertices per good row.
    good : (N,) bool array
        Rows whose cells are numbers of equal count, at least 3, and finite.
    """
    xs_texts, ys_texts = [str(t) for t in xs_texts], [str(t) for t in ys_texts]
    xs, x_counts = _numbers(xs_texts)
    ys, y_counts = _numbers(ys_texts)
    good = (x_counts == y_counts) & (x_counts >= 3)
    x_keep = np.repeat(good, np.maximum(x_counts, 0))
    y_keep = np.repeat(good, np.maximum(y_counts, 0))
    vertices = np.column_stack([xs[x_keep], ys[y_keep]]) if good.any() else np.zeros((0, 2))
    lengths = x_counts[good]
    finite = np.logical_and.reduceat(np.isfinite(vertices).all(1), np.concatenate([[0], np.cumsum(lengths)[:-1]])) \
        if len(lengths) else np.zeros(0, bool)
    if not finite.all():
        keep = np.repeat(finite, lengths)
        vertices, lengths = vertices[keep], lengths[finite]
        good[np.flatnonzero(good)[~finite]] = False
    return vertices, lengths, good


def read(path: str | Path, name: str | None = None) -> NucleusSet:
    """A NuCLS CSV's nuclei (classes by ``raw_classification``) as a :class:`NucleusSet`.

    Rows that cannot be placed are counted in ``problems``. Saving the set
    writes a new GeoJSON or COCO file; the NuCLS dataset writer keeps the CSV
    itself.
    """
    import pandas as pd

    from ..datasets.nucls import NUCLS_SCHEMA

    path = Path(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as error:
        raise NsclcFormatError(path, f"is not a readable CSV: {error}") from error
    if not {"coords_x", "coords_y"} <= set(table.columns):
        raise NsclcFormatError(path, "has no coords_x and coords_y columns")
    vertices, lengths, good = parse_rings(table["coords_x"].tolist(), table["coords_y"].tolist())
    problems = Problems()
    for row in np.flatnonzero(~good).tolist():
        problems.add(BAD, row, skipped=True)
    if not good.any():
        raise NsclcFormatError(path, "holds no nucleus with usable coordinates")
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    closed = np.all(vertices[offsets[:-1]] == vertices[offsets[1:] - 1], axis=1) & (lengths > 3)
    drop = np.zeros(len(vertices), bool)
    drop[offsets[1:][closed] - 1] = True
    vertices, lengths = vertices[~drop], lengths - closed
    column = "raw_classification" if "raw_classification" in table.columns else None
    names = table[column].to_numpy()[good] if column else np.full(good.sum(), "unlabeled", object)
    names = np.where(names == "", "unlabeled", names)
    schema = NUCLS_SCHEMA
    unknown = [n for n in dict.fromkeys(names.tolist()) if n not in schema]
    if unknown:
        start = max(schema.codes) + 1
        schema = schema.with_classes(ClassInfo(start + i, n, (0.5, 0.5, 0.5, 1.0)) for i, n in enumerate(unknown))
    lookup = {info.name: info.code for info in schema.classes}
    codes = np.fromiter((lookup[n] for n in names.tolist()), np.int64, len(names))
    # NuCLS coordinates are pixel indices (the model's pixel centres), as datasets.nucls reads them
    return NucleusSet(vertices[:, ::-1], np.concatenate([[0], np.cumsum(lengths)]), codes, schema,
                      records=np.flatnonzero(good), problems=problems, name=name or path.stem)
