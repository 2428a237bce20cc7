"""The mask-tools dock in a real napari viewer: every action is one step of the layer's own undo history.

Run under ``xvfb-run -a``.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_nsclc import mask_tools
from napari_nsclc.model import ClassInfo, ClassSchema, ImageRef
from napari_nsclc.widgets.mask_tools import MaskToolsWidget

SCHEMA = ClassSchema(
    "test", (ClassInfo(1, "tumour bed", "#e6194b"), ClassInfo(2, "stroma", "#3cb44b"), ClassInfo(3, "necrosis", "#000"))
)


def tissue() -> np.ndarray:
    """20x20: a tumour-bed square with a 9-px hole, a 1-px spur and a 3-px island; stroma on the right."""
    labels = np.zeros((20, 20), np.uint8)
    labels[3:10, 3:10] = 1
    labels[5:8, 5:8] = 0  # the hole
    labels[6, 10:13] = 1  # the spur
    labels[15, 2:5] = 1  # the island: 3 px = 0.75 µm² at 0.5 µm
    labels[:, 15:] = 2
    return labels


def add_tissue(viewer, data=None, unit="um"):
    data = tissue() if data is None else data
    meta = {"nsclc": {"schema": SCHEMA, "image": ImageRef(pixel_size=(0.5, 0.5), unit=unit)}}
    layer = viewer.add_labels(data, name="tissue", scale=(0.5,) * data.ndim, metadata=meta)
    layer.selected_label = 1
    return layer


def assert_one_undo_step(layer, before, after):
    np.testing.assert_array_equal(layer.data, after)
    layer.undo()
    np.testing.assert_array_equal(layer.data, before)
    layer.redo()
    np.testing.assert_array_equal(layer.data, after)


@pytest.mark.parametrize(
    "action, headless, status",
    [
        ("fill_holes", lambda a: mask_tools.fill_holes(a, 1), "filled 9 px of tumour bed"),
        (
            "remove_islands",
            lambda a: mask_tools.remove_islands(a, 1, 2.0, (0.5, 0.5)),
            "removed 3 px of tumour bed islands smaller than 2 µm²",
        ),
        ("open_class", lambda a: mask_tools.open_class(a, 1, 1), "opened tumour bed (radius 1 px): removed 21 px"),
        ("close_class", lambda a: mask_tools.close_class(a, 1, 1), "closed tumour bed (radius 1 px): added 6 px"),
    ],
)
def test_each_action_is_one_undoable_step(make_napari_viewer, action, headless, status):
    viewer = make_napari_viewer()
    layer = add_tissue(viewer)
    widget = MaskToolsWidget(viewer)
    assert widget.target.text() == "<b>tissue</b>: class 1 <b>tumour bed</b>"
    assert widget.min_area.suffix() == " µm²"
    widget.min_area.setValue(2.0)
    widget.radius.setValue(1)
    before = np.asarray(layer.data).copy()
    changed = getattr(widget, action)()
    after = np.asarray(layer.data).copy()
    np.testing.assert_array_equal(after, headless(before))  # exactly the headless result
    assert changed == int((after != before).sum()) > 0
    assert (after[:, 15:] == 2).all()  # stroma untouched
    assert widget.status.text() == status
    assert_one_undo_step(layer, before, after)
    if action == "open_class":
        assert (after[6, 11:13] == 0).all()  # the spur is gone but for its root
    if action == "close_class":
        assert after[6, 10] == 1 and after[5, 10] == after[7, 10] == 1  # the spur's root is widened


def test_two_actions_undo_one_at_a_time(make_napari_viewer):
    viewer = make_napari_viewer()
    layer = add_tissue(viewer)
    widget = MaskToolsWidget(viewer)
    original = np.asarray(layer.data).copy()
    widget.fill_holes()
    filled = np.asarray(layer.data).copy()
    widget.min_area.setValue(2.0)
    widget.remove_islands()
    assert int((np.asarray(layer.data) != filled).sum()) == 3
    layer.undo()
    np.testing.assert_array_equal(layer.data, filled)
    layer.undo()
    np.testing.assert_array_equal(layer.data, original)


def test_replace_inside_a_polygon_drawn_in_world_coordinates(make_napari_viewer):
    viewer = make_napari_viewer()
    layer = add_tissue(viewer)
    # world µm: rows/cols 1..6 µm are pixels 2..12 of the 0.5-µm labels layer
    shapes = viewer.add_shapes([np.array([[1, 1], [1, 6], [6, 6], [6, 1]], float)], shape_type="polygon")
    shapes.add_polygons([np.array([[0, 0], [0, 1], [1, 1]], float)])  # the last polygon, not selected
    shapes.selected_data = {0}
    viewer.layers.selection.active = layer
    widget = MaskToolsWidget(viewer)
    assert [widget.from_class.itemText(i) for i in range(widget.from_class.count())] == [
        "1  tumour bed", "2  stroma", "3  necrosis", "0  background",
    ]
    widget.from_class.setCurrentIndex(0)
    widget.to_class.setCurrentIndex(2)
    before = np.asarray(layer.data).copy()
    n = widget.replace_in_polygon()
    after = np.asarray(layer.data).copy()
    inside = np.zeros(before.shape, bool)
    inside[2:13, 2:13] = True
    expected = before.copy()
    expected[inside & (before == 1)] = 3
    np.testing.assert_array_equal(after, expected)
    assert n == int(((before == 1) & inside).sum()) == 43
    assert widget.status.text() == "replaced 43 px of tumour bed by necrosis inside the polygon"
    assert_one_undo_step(layer, before, after)

    shapes.selected_data = set()  # nothing selected: the last polygon, which holds no tumour bed
    assert widget.replace_in_polygon() == 0
    assert widget.status.text() == "no tumour bed inside the polygon"


def test_nothing_to_do_leaves_history_alone(make_napari_viewer):
    viewer = make_napari_viewer()
    layer = add_tissue(viewer, unit="px")
    widget = MaskToolsWidget(viewer)
    assert widget.min_area.suffix() == " px²" and "px²" in widget.area_label.text()
    widget.fill_holes()
    filled = np.asarray(layer.data).copy()
    assert widget.fill_holes() == 0
    assert widget.status.text() == "no holes to fill in tumour bed"
    widget.min_area.setValue(3)  # px²: the 3-px island is not smaller
    assert widget.remove_islands() == 0
    layer.selected_label = 0
    assert widget.target.text() == "<b>tissue</b>: class 0 <b>background</b>"
    assert widget.open_class() == 0 and "background" in widget.status.text()
    assert widget.replace_in_polygon() == 0 and "polygon" in widget.status.text()
    np.testing.assert_array_equal(layer.data, filled)
    layer.undo()  # the only step is the first fill
    assert int((np.asarray(layer.data) != filled).sum()) == 9


def test_a_volume_is_edited_on_the_plane_shown(make_napari_viewer):
    viewer = make_napari_viewer()
    volume = np.stack([tissue()] * 3)
    layer = add_tissue(viewer, volume.copy())
    viewer.dims.set_current_step(0, 1)
    widget = MaskToolsWidget(viewer)
    assert widget.fill_holes() == 9
    changed = np.argwhere(np.asarray(layer.data) != volume)
    assert set(changed[:, 0].tolist()) == {1}
    layer.undo()
    np.testing.assert_array_equal(layer.data, volume)
