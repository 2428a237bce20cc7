"""NuCLS Shapes features are named as the dataset names them (run the GUI test under ``xvfb-run -a``)."""

from __future__ import annotations

import csv

import pytest

from napari_nsclc.datasets.nucls import NUCLS_SCHEMA
from napari_nsclc.model import ClassInfo, ClassSchema
from napari_nsclc.testing import cells

LEVEL_COLUMNS = ["raw_classification", "main_classification", "super_classification"]

#: raw -> (main, super) for the classes of the synthetic FOVs, from FORMATS.md §2
HIERARCHY = {
    "tumor": ("tumor_nonMitotic", "tumor_any"),
    "lymphocyte": ("lymphocyte", "sTIL"),
    "fibroblast": ("nonTILnonMQ_stromal", "nonTIL_stromal"),
    "mitotic_figure": ("tumor_mitotic", "tumor_any"),
    "macrophage": ("macrophage", "nonTIL_stromal"),
    "plasma_cell": ("plasma_cell", "sTIL"),
}


def _levels(features, row: int) -> list[str]:
    return [str(features[column].iloc[row]) for column in LEVEL_COLUMNS]


def test_schemas_name_their_level_features():
    assert NUCLS_SCHEMA.level_features == {
        "raw": "raw_classification", "main": "main_classification", "super": "super_classification"
    }  # fmt: skip
    plain = ClassSchema("cells", (ClassInfo(1, "a"), ClassInfo(2, "b")), hierarchy={"super": {"a": "x", "b": "x"}})
    assert plain.level_features == {"super": "class_super"} and plain.feature_name("raw") == "class"
    assert NUCLS_SCHEMA.with_classes([ClassInfo(500, "correction_tumor")]).level_features == NUCLS_SCHEMA.level_features
    with pytest.raises(ValueError, match="unknown levels"):
        ClassSchema("cells", (ClassInfo(1, "a"),), feature_names={"main": "main"})
    with pytest.raises(ValueError, match="distinct"):
        ClassSchema("cells", (ClassInfo(1, "a"),), hierarchy={"super": {}}, feature_names={"super": "class"})


def test_nucls_shapes_carry_the_dataset_columns_and_the_classes_dock_updates_them(make_napari_viewer, tmp_path):
    import numpy as np

    from napari_nsclc.widgets.class_editor import ClassEditorWidget

    viewer = make_napari_viewer()
    widget = ClassEditorWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Classes")
    root = cells.build_nucls(tmp_path / "nucls")
    csv_path = min((root / "csv").iterdir())
    viewer.open(csv_path, plugin="napari-nsclc")
    shapes = viewer.layers["nuclei"]
    viewer.layers.selection.active = shapes
    assert widget.layer is shapes

    features = shapes.features
    assert [c for c in features.columns if c.startswith("class_")] == []
    assert set(LEVEL_COLUMNS) <= set(features.columns)
    raws = [nucleus[0] for nucleus in cells.NUCLS_NUCLEI]
    assert list(features["class"].astype(str)) == raws
    for row, raw in enumerate(raws):
        assert _levels(features, row) == [raw, *HIERARCHY[raw]], row
    # the same values the dataset's CSV holds in the columns of those names
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row, record in enumerate(rows):
        assert _levels(features, row) == [record[column] for column in LEVEL_COLUMNS], row

    # reclassify the first tumour nucleus through the dock: every level follows
    assert widget.assign([0], "lymphocyte") == 1
    features = shapes.features
    assert str(features["class"].iloc[0]) == "lymphocyte"
    assert _levels(features, 0) == ["lymphocyte", "lymphocyte", "sTIL"]
    assert _levels(features, 1) == ["tumor", "tumor_nonMitotic", "tumor_any"]  # the other tumour is untouched
    widget.show_level("super")
    assert dict((name, count) for name, count, _ in widget.plot.rows)["sTIL"] == 2
    widget.show_level("main")
    assert dict((name, count) for name, count, _ in widget.plot.rows)["lymphocyte"] == 2

    widget.undo()
    assert _levels(shapes.features, 0) == ["tumor", "tumor_nonMitotic", "tumor_any"]
    widget.redo()
    assert _levels(shapes.features, 0) == ["lymphocyte", "lymphocyte", "sTIL"]

    # a nucleus drawn with the active class gets that class's levels too
    widget.set_active_class("plasma_cell")
    shapes.add_rectangles(np.array([[2.0, 2.0], [8.0, 8.0]]))
    assert len(shapes.features) == len(raws) + 1
    assert str(shapes.features["class"].iloc[-1]) == "plasma_cell"
    assert _levels(shapes.features, -1) == ["plasma_cell", "plasma_cell", "sTIL"]
