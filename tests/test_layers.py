"""The model <-> napari layer mapping, checked in a real napari viewer."""

from __future__ import annotations

import numpy as np
import pytest

from napari_nsclc.layers import case_to_layers, decode_polygon, encode_polygon, layer_data_to_case
from napari_nsclc.model import (
    BoxSet,
    Case,
    ClassInfo,
    ClassSchema,
    ImageRef,
    LabelMask,
    PointSet,
    Polygon,
    PolygonSet,
    Provenance,
)

TISSUE = ClassSchema(
    "tissue",
    (ClassInfo(1, "background", "#ffffff"), ClassInfo(2, "tumour", "#ff0000"), ClassInfo(4, "stroma", "#00ff00")),
)
CELLS = ClassSchema(
    "cells",
    (ClassInfo(1, "negative", "#0000ff"), ClassInfo(2, "positive", "#ff8000")),
    hierarchy={"super": {"negative": "tumour cell", "positive": "tumour cell"}},
)


def make_case() -> Case:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)
    labels = np.zeros((40, 60), np.uint8)
    labels[5:15, 5:25] = 2
    labels[20:30, 30:50] = 4
    ring = Polygon([[2, 2], [2, 20], [20, 20], [20, 2]], holes=[[[5, 5], [15, 5], [15, 15], [5, 15]]])
    return Case(
        name="case-1",
        image=ImageRef(path="case-1.png", shape=(40, 60), pixel_size=(0.5, 0.5), unit="um", origin=(100.0, 200.0),
                       data=image, rgb=True, name="case-1"),
        masks=[LabelMask("tissue", labels, TISSUE)],
        points=[PointSet("cells", [[10, 10], [20, 30], [30, 40]], ["negative", "positive", "positive"], CELLS,
                         [{"id": 7, "bbox_size": [10, 10]}, {"id": 8}, {"id": 9, "reader": "P1"}])],
        boxes=[BoxSet("region", [[1, 2, 30, 40]], ["tumour"], TISSUE, [{"difficult": "0"}])],
        polygons=[PolygonSet("contours", [ring], ["stroma"], TISSUE, [{"name": "r1"}])],
        provenance=Provenance(source="/data/case-1", format="test"),
        document={"info": {"year": 2026}},
    )


def test_polygon_with_holes_encodes_and_decodes_exactly():
    polygon = Polygon([[0, 0], [0, 10], [10, 10], [10, 0]], holes=[[[2, 2], [4, 2], [4, 4]], [[6, 6], [8, 6], [8, 8]]])
    vertices = encode_polygon(polygon)
    assert vertices.shape == (4 + 1 + 2 * (3 + 1 + 1), 2)
    assert decode_polygon(vertices) == polygon


def test_case_to_layers_sets_types_scale_features_and_colours():
    layers = case_to_layers(make_case())
    assert [layer_type for _, _, layer_type in layers] == ["image", "labels", "shapes", "shapes", "points"]
    _, image_kwargs, _ = layers[0]
    assert image_kwargs["scale"] == (0.5, 0.5) and image_kwargs["translate"] == (100.0, 200.0)
    _, labels_kwargs, _ = layers[1]
    assert labels_kwargs["features"]["index"].tolist() == [1, 2, 4]
    assert labels_kwargs["features"]["class"].tolist() == ["background", "tumour", "stroma"]
    points_data, points_kwargs, _ = layers[4]
    assert points_kwargs["features"]["class"].tolist() == ["negative", "positive", "positive"]
    assert points_kwargs["features"]["class_super"].tolist() == ["tumour cell"] * 3
    assert points_kwargs["face_color_cycle"]["positive"] == pytest.approx((1.0, 128 / 255, 0.0, 1.0))


def test_layers_in_a_viewer_are_coloured_by_class(make_napari_viewer):
    viewer = make_napari_viewer()
    for data, kwargs, layer_type in case_to_layers(make_case()):
        getattr(viewer, f"add_{layer_type}")(data, **kwargs)
    labels = viewer.layers["tissue"]
    assert labels.colormap.map(np.array([2]))[0] == pytest.approx([1, 0, 0, 1])
    assert labels.colormap.map(np.array([0]))[0][3] == 0  # background transparent
    points = viewer.layers["cells"]
    np.testing.assert_allclose(points.face_color[0], [0, 0, 1, 1])
    np.testing.assert_allclose(points.face_color[1], [1, 128 / 255, 0, 1])
    # a point added in napari takes the current class and gets no source attributes
    points.feature_defaults["class"] = "negative"
    points.feature_defaults["source_index"] = -1
    points.add([[5, 5]])
    np.testing.assert_allclose(points.face_color[-1], [0, 0, 1, 1])
    assert viewer.layers["region"].shape_type == ["rectangle"]


def test_layers_round_trip_back_to_the_same_case(make_napari_viewer):
    viewer = make_napari_viewer()
    original = make_case()
    for data, kwargs, layer_type in case_to_layers(original):
        getattr(viewer, f"add_{layer_type}")(data, **kwargs)
    points = viewer.layers["cells"]
    points.features.loc[1, "class"] = "negative"
    case = layer_data_to_case([layer.as_layer_data_tuple() for layer in viewer.layers])

    assert case.name == "case-1" and case.document == {"info": {"year": 2026}}
    assert case.image.pixel_size == (0.5, 0.5) and case.image.origin == (100.0, 200.0)
    np.testing.assert_array_equal(case.masks[0].data, original.masks[0].data)
    assert case.masks[0].schema == TISSUE
    np.testing.assert_array_equal(case.points[0].coords, original.points[0].coords)
    assert case.points[0].classes.tolist() == ["negative", "negative", "positive"]
    assert case.points[0].attributes == original.points[0].attributes
    np.testing.assert_array_equal(case.boxes[0].bounds, [[1, 2, 30, 40]])
    assert case.boxes[0].attributes == [{"difficult": "0"}]
    assert case.polygons[0].polygons == original.polygons[0].polygons
    assert case.polygons[0].attributes == [{"name": "r1"}]


def test_3d_boxes_keep_their_slice():
    case = make_case()
    case.image = ImageRef(shape=(5, 40, 60), pixel_size=(2.5, 0.7, 0.7), unit="mm", origin=(-10.0, 0.0, 0.0))
    case.boxes = [BoxSet("tumour", [[1, 2, 30, 40], [3, 4, 5, 6]], ["A", "G"],
                         ClassSchema.from_names("lung", ["A", "G"]), planes=[3, 0])]
    data, kwargs, _ = [layer for layer in case_to_layers(case) if layer[1]["name"] == "tumour"][0]
    assert kwargs["scale"] == (2.5, 0.7, 0.7)
    assert data[0][:, 0].tolist() == [3, 3, 3, 3]
    back = layer_data_to_case([(data, kwargs, "shapes")])
    assert back.boxes[0].planes.tolist() == [3, 0]
    np.testing.assert_array_equal(back.boxes[0].bounds, [[1, 2, 30, 40], [3, 4, 5, 6]])


def test_shapes_classes_get_their_schema_colours_in_any_order(make_napari_viewer):
    case = make_case()
    case.polygons = [PolygonSet("regions", [Polygon([[0, 0], [0, 5], [5, 5]])] * 3, ["stroma", "background", "tumour"],
                                TISSUE)]
    viewer = make_napari_viewer()
    data, kwargs, _ = [layer for layer in case_to_layers(case) if layer[1]["name"] == "regions"][0]
    layer = viewer.add_shapes(data, **kwargs)
    np.testing.assert_allclose(layer.edge_color, [[0, 1, 0, 1], [1, 1, 1, 1], [1, 0, 0, 1]])
    np.testing.assert_allclose(layer.face_color[:, 3], 0.25)
