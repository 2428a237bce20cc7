"""The class-editor dock in a real napari viewer (run under ``xvfb-run -a``).

Each test opens a synthetic fixture (napari_nsclc.testing.cells) through
napari's reader, classifies and adds objects through the widget and its keys,
undoes, saves through the widget, reopens the file and compares.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_nsclc import registry
from napari_nsclc.testing import cells


@pytest.fixture
def editor(make_napari_viewer):
    from napari_nsclc.widgets.class_editor import ClassEditorWidget

    viewer = make_napari_viewer()
    widget = ClassEditorWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Classes")
    return viewer, widget


def _press(viewer, key: str) -> None:
    """A key press as napari dispatches it from the canvas."""
    assert viewer.window._qt_viewer._key_map_handler.press_key(key) is not False


def _rgba(name, schema):
    return np.asarray(schema.color_of(name))


def test_midog_points_classify_add_move_delete_undo_save_reopen(editor, tmp_path):
    viewer, widget = editor
    image = cells.build_midog(tmp_path / "in")
    viewer.open(image, plugin="napari-nsclc")
    points = viewer.layers["mitotic figures"]
    viewer.layers.selection.active = points
    assert widget.layer is points
    schema = points.metadata["nsclc"]["schema"]
    assert widget.class_names == ["mitotic figure", "not mitotic figure"]
    assert widget.counts() == {"mitotic figure": 4, "not mitotic figure": 3}
    assert [b.text() for b in widget.buttons.buttons()] == ["1  mitotic figure  (4)", "2  not mitotic figure  (3)"]

    # key 2 reclassifies the selection and recolours it
    points.selected_data = {0, 1}
    _press(viewer, "2")
    assert list(points.features["class"][:3]) == ["not mitotic figure", "not mitotic figure", "mitotic figure"]
    np.testing.assert_allclose(points.face_color[0], _rgba("not mitotic figure", schema))
    assert widget.counts() == {"mitotic figure": 2, "not mitotic figure": 5}
    assert widget.active_class == "not mitotic figure"

    # key 1 with nothing selected makes "mitotic figure" active: a new point takes it
    points.selected_data = set()
    _press(viewer, "1")
    points.add([[120.0, 33.0]])
    assert points.features["class"].iloc[-1] == "mitotic figure"
    assert points.features["source_index"].iloc[-1] == -1
    np.testing.assert_allclose(points.face_color[-1], _rgba("mitotic figure", schema))

    # move point 4, delete point 5
    moved = points.data.copy()
    moved[4] = (77.0, 88.0)
    points.data = moved
    points.selected_data = {5}
    points.remove_selected()
    assert len(points.data) == 7 and widget.counts() == {"mitotic figure": 3, "not mitotic figure": 4}

    # undo the delete and the move, redo the move
    assert widget.undo() and len(points.data) == 8
    assert widget.undo()
    # cell 5's MIDOG box is centred on file (y 200, x 40); corner origin: model = file - 0.5
    np.testing.assert_array_equal(points.data[4], [199.5, 39.5])
    assert widget.redo()
    np.testing.assert_array_equal(points.data[4], [77.0, 88.0])
    assert len(widget.history().redo_steps) == 1
    # Ctrl+Z from the canvas undoes too (the move again), then redo it
    _press(viewer, "Control-Z")
    np.testing.assert_array_equal(points.data[4], [199.5, 39.5])
    _press(viewer, "Control-Shift-Z")
    np.testing.assert_array_equal(points.data[4], [77.0, 88.0])
    assert widget.counts() == {"mitotic figure": 3, "not mitotic figure": 5}

    # save through the dock, reopen, compare
    out = tmp_path / "edited.json"
    widget.export(out, "midog")
    (case,) = registry.read(out)
    reopened = case.points[0]
    np.testing.assert_array_equal(reopened.coords, points.data)
    assert list(reopened.classes) == list(points.features["class"].astype(str))
    written = {a["id"]: a for a in json.loads(out.read_text())["annotations"]}
    assert written[1]["category_id"] == 2 and written[3]["category_id"] == 1
    # moved to model (y 77, x 88) -> file centre (77.5, 88.5) (file = model + 0.5), 50 x 50 box
    assert written[5]["bbox"] == [63.5, 52.5, 113.5, 102.5]
    # added at model (y 120, x 33) -> file centre (120.5, 33.5)
    assert written[10] == {"id": 10, "image_id": 1, "category_id": 1, "bbox": [8.5, 95.5, 58.5, 145.5]}
    # and the reopened file has the same counts the dock showed
    assert reopened.counts() == {"mitotic figure": 3, "not mitotic figure": 5}


def test_nucls_shapes_levels_centroids_and_csv(editor, tmp_path):
    viewer, widget = editor
    root = cells.build_nucls(tmp_path / "in")
    csv_path = min((root / "csv").iterdir())
    viewer.open(csv_path, plugin="napari-nsclc")
    shapes = viewer.layers["nuclei"]
    viewer.layers.selection.active = shapes
    assert widget.layer is shapes
    assert widget.level.isEnabled() and [widget.level.itemText(i) for i in range(3)] == ["raw", "main", "super"]
    widget.show_level("super")
    assert widget.plot.rows[0][:2] == ("tumor_any", 3)

    # key 3 (lymphocyte) on the two tumour nuclei: main and super follow
    shapes.selected_data = {0, 1}
    _press(viewer, "3")
    assert list(shapes.features["class"][:2]) == ["lymphocyte", "lymphocyte"]
    assert list(shapes.features["super_classification"][:2]) == ["sTIL", "sTIL"]
    widget.undo()
    assert list(shapes.features["class"][:2]) == ["tumor", "tumor"]
    widget.redo()

    # deleting and moving shapes are undone too; the rectangle stays a rectangle
    rectangle = shapes.data[3].copy()
    shapes.selected_data = {3}
    shapes.remove_selected()
    assert len(shapes.data) == 5 and widget.counts()["fibroblast"] == 0
    widget.undo()
    assert len(shapes.data) == 6 and shapes.shape_type[3] == "rectangle"
    np.testing.assert_array_equal(shapes.data[3], rectangle)
    assert shapes.features["class"].iloc[3] == "fibroblast" and widget.counts()["fibroblast"] == 1
    shapes.selected_data = {3}
    moved = [d.copy() for d in shapes.data]
    moved[3] = moved[3] + 5
    shapes.data = list(zip(moved, shapes.shape_type, strict=True))
    np.testing.assert_array_equal(shapes.data[3], rectangle + 5)
    widget.undo()
    np.testing.assert_array_equal(shapes.data[3], rectangle)
    assert list(shapes.features["class"][:2]) == ["lymphocyte", "lymphocyte"]

    # centroids: classify there, go back to contours, classes follow
    points = widget.show_centroids(shapes)
    assert len(points.data) == 6 and not shapes.visible
    np.testing.assert_allclose(points.data[3], shapes.data[3].mean(axis=0))
    assert widget.layer is points
    points.selected_data = {5}
    _press(viewer, "6")  # mitotic_figure, the 6th class
    widget.show_contours(points)
    assert shapes.visible and "nuclei (centroids)" not in viewer.layers
    assert shapes.features["class"].iloc[5] == "mitotic_figure"

    out = tmp_path / "edited.csv"
    widget.export(out, "nucls")
    rows = out.read_text().splitlines()
    assert rows[0] == csv_path.read_text().splitlines()[0]
    assert rows[1].split(",")[1:4] == ["lymphocyte", "lymphocyte", "sTIL"]
    assert rows[6].split(",")[1:4] == ["mitotic_figure", "tumor_mitotic", "tumor_any"]
    assert rows[3:6] == csv_path.read_text().splitlines()[3:6]


def test_reader_layers_for_every_cell_layout(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    expected = {
        "coco": {"RLE masks", "segmentations", "boxes", "keypoints"},
        "ignite-pdl1": {"cells", "annotated region"},
        "ocelot": {"tissue"},
        "nucls": {"nucleus instances", "nucleus classes", "fov", "nuclei"},
        "midog": {"mitotic figures"},
    }
    for name, layer_names in expected.items():
        path = cells.BUILDERS[name](tmp_path / name)
        viewer.layers.clear()
        viewer.open(path, plugin="napari-nsclc")
        assert layer_names <= {layer.name for layer in viewer.layers}, name
        assert type(viewer.layers[0]).__name__.lower() == "image" and viewer.layers[0].rgb


@pytest.mark.parametrize(
    ("layout", "relative", "layer_name", "format_name", "suffix"),
    [
        ("ignite-pdl1", None, "cells", "ignite-pdl1", ".json"),
        ("ocelot", "annotations/train/cell/001.csv", "cells", "ocelot", ".csv"),
        ("coco", None, "keypoints", "coco", ".json"),
    ],
)
def test_points_formats_classify_add_undo_save_reopen(editor, tmp_path, layout, relative, layer_name, format_name, suffix):
    viewer, widget = editor
    path = cells.BUILDERS[layout](tmp_path / layout)
    if relative:
        path = path / relative
    viewer.open(path, plugin="napari-nsclc")
    points = viewer.layers[layer_name]
    viewer.layers.selection.active = points
    second = widget.class_names[1] if len(widget.class_names) > 1 else widget.class_names[0]
    points.selected_data = {0}
    _press(viewer, "2")
    assert points.features["class"].iloc[0] == second
    points.selected_data = set()
    _press(viewer, "1")
    count = len(points.data)
    points.add([[20.0, 30.0]])
    points.add([[40.0, 50.0]])
    assert widget.undo() and len(points.data) == count + 1
    assert points.features["class"].iloc[-1] == widget.class_names[0]
    out = tmp_path / f"saved{suffix}"
    widget.export(out, format_name)
    reopened = registry.read(out)
    case = next(c for c in reopened if c.points)
    saved = next(p for p in case.points if len(p) == count + 1)
    np.testing.assert_allclose(saved.coords, points.data)
    assert list(saved.classes) == list(points.features["class"].astype(str))
