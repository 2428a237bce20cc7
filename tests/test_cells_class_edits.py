"""Class edits on layer features (the dock's logic, without a window)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from napari_nsclc.datasets.nucls import NUCLS_SCHEMA
from napari_nsclc.widgets._class_edits import (
    assign_class,
    centroids,
    class_counts,
    level_colors,
    level_names,
)


def _features() -> pd.DataFrame:
    names = ["tumor", "lymphocyte", "fibroblast", "tumor"]
    return pd.DataFrame({
        "class": pd.Categorical(names, categories=NUCLS_SCHEMA.names),
        "source_index": np.arange(4),
        "raw_classification": list(names),
        "main_classification": [NUCLS_SCHEMA.level(n, "main") for n in names],
        "super_classification": [NUCLS_SCHEMA.level(n, "super") for n in names],
    })  # fmt: skip


def test_assign_class_updates_levels_and_keeps_categories():
    features = _features()
    assign_class(features, [0, 3], "mitotic_figure", NUCLS_SCHEMA)
    assert list(features["class"]) == ["mitotic_figure", "lymphocyte", "fibroblast", "mitotic_figure"]
    assert list(features["raw_classification"]) == list(features["class"])
    assert list(features["main_classification"]) == [
        "tumor_mitotic", "lymphocyte", "nonTILnonMQ_stromal", "tumor_mitotic"
    ]
    assert list(features["super_classification"]) == ["tumor_any", "sTIL", "nonTIL_stromal", "tumor_any"]
    assert list(features["class"].cat.categories) == NUCLS_SCHEMA.names
    assign_class(features, [1], "correction_lymphocyte", NUCLS_SCHEMA)
    assert features["class"].iloc[1] == "correction_lymphocyte" and features["super_classification"].iloc[1] == "sTIL"
    assert features["raw_classification"].iloc[1] == "correction_lymphocyte"
    assign_class(features, [], "tumor", NUCLS_SCHEMA)
    assert features["class"].iloc[0] == "mitotic_figure"


def test_counts_levels_and_centroids():
    features = _features()
    counts = class_counts(features, "class", ["tumor", "lymphocyte", "eosinophil"])
    assert counts == {"tumor": 2, "lymphocyte": 1, "eosinophil": 0, "fibroblast": 1}
    assert class_counts(features, "super_classification", level_names(NUCLS_SCHEMA, "super"))["tumor_any"] == 2
    assert level_names(NUCLS_SCHEMA, "super") == ["tumor_any", "nonTIL_stromal", "sTIL", "other_nucleus", "AMBIGUOUS"]
    colors = level_colors(NUCLS_SCHEMA, "main")
    assert colors["tumor_nonMitotic"] == NUCLS_SCHEMA.color_of("tumor")
    assert colors["tumor_mitotic"] == NUCLS_SCHEMA.color_of("mitotic_figure")
    np.testing.assert_allclose(centroids([np.array([[0, 0], [0, 4], [2, 4], [2, 0]])]), [[1, 2]])
