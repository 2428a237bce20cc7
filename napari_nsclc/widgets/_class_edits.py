"""Class edits on layer features, as plain pandas/numpy (no napari, no Qt).

The class-editor dock calls these; they are kept apart so they can be tested
and timed without a window.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..model import ClassSchema, default_color

__all__ = ["assign_class", "centroids", "class_counts", "collector_paused", "level_colors"]


@contextlib.contextmanager
def collector_paused():
    """Pause Python's cyclic garbage collector for one short edit.

    A layer of a million points carries a million per-object attribute dicts;
    a full collection pass triggered by pandas' temporary objects then costs
    more than the edit itself.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def assign_class(features: pd.DataFrame, indices: Sequence[int], name: str, schema: ClassSchema | None) -> None:
    """Set ``features["class"]`` of rows ``indices`` to ``name``, in place.

    The hierarchy columns that napari-nsclc layers carry (``schema.level_features``:
    NuCLS ``raw_classification``, ``main_classification``, ``super_classification``)
    follow the new raw class.

    Parameters
    ----------
    features : DataFrame
        A Points or Shapes layer's features, with a ``class`` column.
    indices : sequence of int
        Row positions to change.
    name : str
        The new class name.
    schema : ClassSchema or None
        Gives the coarser levels of ``name``.
    """
    rows = np.fromiter(indices, dtype=np.int64)
    if rows.size == 0:
        return
    _set_category(features, "class", rows, name)
    for level, column in (schema.level_features.items() if schema is not None else ()):
        if column in features:
            _set_category(features, column, rows, schema.level(name, level))


def _set_category(features: pd.DataFrame, key: str, rows: np.ndarray, value: str) -> None:
    """Set ``features[key][rows] = value`` through the categorical codes (no string copies)."""
    column = features[key]
    if not isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype("category")  # once per column; later edits only touch codes
    if value not in column.cat.categories:
        column = column.cat.add_categories([value])
    codes = column.cat.codes.to_numpy().copy()
    codes[rows] = column.cat.categories.get_loc(value)
    features[key] = pd.Categorical.from_codes(codes, categories=column.cat.categories)


def class_counts(features: pd.DataFrame, column: str = "class", order: Sequence[str] = ()) -> dict[str, int]:
    """Objects per class, in ``order`` first (zeros included), then any other class found."""
    if column not in features or len(features) == 0:
        return {name: 0 for name in order}
    values = features[column]
    counts = values.value_counts() if isinstance(values.dtype, pd.CategoricalDtype) else values.astype(object).value_counts()
    out = {name: int(counts.get(name, 0)) for name in order}
    for name, count in counts.items():
        if name not in out and name != "" and count:
            out[str(name)] = int(count)
    return out


def level_colors(schema: ClassSchema, level: str) -> dict[str, tuple]:
    """A colour per class name at ``level``: the colour of the first raw class that maps to it."""
    if level == "raw" or level not in schema.hierarchy:
        return {info.name: info.color for info in schema.classes}
    colors: dict[str, tuple] = {}
    for info in schema.classes:
        colors.setdefault(schema.level(info.name, level), info.color)
    for i, name in enumerate(dict.fromkeys(schema.hierarchy[level].values())):
        colors.setdefault(name, default_color(len(colors) + i + 1))
    return colors


def level_names(schema: ClassSchema, level: str) -> list[str]:
    """The class names at ``level``, in schema order."""
    if level == "raw" or level not in schema.hierarchy:
        return schema.names
    return list(dict.fromkeys(schema.level(n, level) for n in schema.names))


def centroids(shapes: Sequence[np.ndarray]) -> np.ndarray:
    """The vertex mean of each shape, shape (N, D): where a nucleus's point goes."""
    if not len(shapes):
        return np.zeros((0, 2))
    return np.array([np.asarray(s, dtype=float).mean(axis=0) for s in shapes])
