"""The change overlay in a real napari viewer: colours, pixel values, rings and placement.

Run under ``xvfb-run -a``.
"""

from __future__ import annotations

import numpy as np
from napari.layers import Layer

from napari_nsclc.diff_layers import diff_layer_data
from napari_nsclc.model import BoxSet, Case, ClassInfo, ClassSchema, ImageRef, LabelMask, PointSet
from napari_nsclc.workflow.changes import case_changes

TISSUE = ClassSchema("tissue", (ClassInfo(1, "tumour bed", "#ff0000"), ClassInfo(2, "stroma", "#00ff00")))
CELLS = ClassSchema("cells", (ClassInfo(1, "tumour", "#ff0000"), ClassInfo(2, "lymphocyte", "#0000ff")))
IMAGE = ImageRef(shape=(600, 600), pixel_size=(0.5, 0.5), unit="um", origin=(100.0, 200.0))
GREEN, RED, ORANGE, BLUE = (
    np.array([0x2C, 0xA0, 0x2C, 255]) / 255,
    np.array([0xD6, 0x27, 0x28, 255]) / 255,
    np.array([0xFF, 0x7F, 0x0E, 255]) / 255,
    np.array([0x1F, 0x77, 0xB4, 255]) / 255,
)


def cases() -> tuple[Case, Case]:
    mask = np.zeros((10, 10), np.uint8)
    mask[0:2, 0:5] = 1
    painted = mask.copy()
    painted[5:8, 0:4] = 1  # 12 px added
    painted[0, 0:3] = 0  # 3 px removed
    painted[1, 4] = 2  # tumour bed -> stroma
    before_points = [[10, 10], [60, 10], [110, 10], [160, 10], [210, 10]]
    after_points = [[63, 10], [110, 10], [160, 12], [210, 10], [500, 500]]
    before = Case(
        "case",
        image=IMAGE,
        masks=[LabelMask("tumour bed", mask, TISSUE)],
        points=[PointSet("cells", before_points, ["tumour"] * 5, CELLS)],
        boxes=[BoxSet("boxes", [[0, 0, 40, 40]], ["tumour"], CELLS)],
    )
    after = Case(
        "case",
        image=IMAGE,
        masks=[LabelMask("tumour bed", painted, TISSUE)],
        points=[
            PointSet("cells", after_points, ["tumour", "lymphocyte", "lymphocyte", "tumour", "tumour"], CELLS)
        ],
        boxes=[BoxSet("boxes", [[0, 0, 40, 40]], ["tumour"], CELLS)],  # unchanged: no overlay
    )
    return before, after


def test_overlay_layers_in_a_viewer(make_napari_viewer):
    before, after = cases()
    data = diff_layer_data(case_changes(before, after), after)
    assert [(kwargs["name"], layer_type) for _d, kwargs, layer_type in data] == [
        ("changes: tumour bed", "labels"),
        ("changes: cells", "points"),
    ]
    viewer = make_napari_viewer()
    for item in data:
        viewer.add_layer(Layer.create(*item))

    labels = viewer.layers["changes: tumour bed"]
    np.testing.assert_allclose(labels.colormap.map(1), GREEN, atol=1e-6)
    np.testing.assert_allclose(labels.colormap.map(2), RED, atol=1e-6)
    np.testing.assert_allclose(labels.colormap.map(3), ORANGE, atol=1e-6)
    assert labels.colormap.map(0)[3] == 0
    assert labels.data[6, 2] == 1 and labels.data[0, 1] == 2 and labels.data[1, 4] == 3 and labels.data[1, 1] == 0
    assert int((labels.data == 1).sum()) == 12 and int((labels.data == 2).sum()) == 3
    assert labels.opacity == 0.6
    assert tuple(labels.scale) == (0.5, 0.5) and tuple(labels.translate) == (100.0, 200.0)
    assert labels.metadata == {"nsclc": {"overlay": "changes", "of": "tumour bed"}}

    points = viewer.layers["changes: cells"]
    assert points.features["change"].tolist() == ["added", "removed", "moved", "moved", "reclassified", "reclassified"]
    assert points.features["class"].tolist() == ["tumour", "tumour", "tumour", "lymphocyte", "lymphocyte", "lymphocyte"]
    assert points.features["index"].tolist() == [4, 0, 0, 2, 1, 2]  # removed: into before, others: into after
    np.testing.assert_array_equal(points.data, [[500, 500], [10, 10], [63, 10], [160, 12], [110, 10], [160, 12]])
    np.testing.assert_allclose(points.border_color, [GREEN, RED, BLUE, BLUE, ORANGE, ORANGE], atol=1e-6)
    assert np.all(points.face_color[:, 3] == 0)  # hollow rings
    np.testing.assert_allclose(points.face_color[:, :3], points.border_color[:, :3], atol=1e-6)
    marker = 8.0 / 0.5  # the cells' own markers: 8 µm at 0.5 µm/px
    assert np.all(points.size >= 2 * marker) and points.size[4] > points.size[2]  # reclassified ring around moved
    assert tuple(points.scale) == (0.5, 0.5) and tuple(points.translate) == (100.0, 200.0)
    assert points.metadata == {"nsclc": {"overlay": "changes", "of": "cells"}}


def test_boxes_overlay_rings_surround_the_boxes(make_napari_viewer):
    before = Case("c", image=IMAGE, boxes=[BoxSet("boxes", [[0, 0, 100, 60]], ["tumour"], CELLS)])
    after = Case("c", image=IMAGE, boxes=[BoxSet("boxes", [[300, 300, 310, 310]], ["lymphocyte"], CELLS)])
    (item,) = diff_layer_data(case_changes(before, after), after)
    viewer = make_napari_viewer()
    layer = viewer.add_layer(Layer.create(*item))
    assert layer.features["change"].tolist() == ["added", "removed"]
    np.testing.assert_array_equal(layer.data, [[305, 305], [50, 30]])  # box centres
    assert layer.size[1] >= 100  # the removed 100-px-tall box fits in its ring
    np.testing.assert_allclose(layer.border_color, [GREEN, RED], atol=1e-6)


def test_no_change_no_overlay():
    before, _after = cases()
    assert diff_layer_data(case_changes(before, before), before) == []
