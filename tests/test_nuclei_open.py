"""Which files open as a nuclei layer: many polygons do; points, boxes and small files stay Points and Shapes."""

from __future__ import annotations

import json

import numpy as np

from napari_nsclc import nuclei
from napari_nsclc._reader import read_layers
from napari_nsclc.nuclei.render import OutlineView
from napari_nsclc.testing.nuclei import build_nuclei_geojson


def _points_geojson(path, count):
    rng = np.random.default_rng(1)
    features = [{"type": "Feature", "id": f"p{i}", "geometry": {"type": "Point", "coordinates": [float(x), float(y)]},
                 "properties": {"objectType": "detection", "classification": {"name": "Tumor", "color": [200, 0, 0]},
                                "measurements": {"Nucleus: Area": 31.5, "Nucleus: Circularity": 0.91}}}
                for i, (x, y) in enumerate(rng.uniform(0, 5000, (count, 2)))]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def _coco_boxes(path, count):
    annotations = [{"id": i + 1, "image_id": 1, "category_id": 1, "bbox": [i % 500, i // 500, 8, 8], "area": 64,
                    "iscrowd": 0, "attributes": {"score": 0.9}} for i in range(count)]
    path.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.png", "width": 600, "height": 600}],
                                "categories": [{"id": 1, "name": "cell"}], "annotations": annotations}))
    return path


def test_many_polygons_open_as_one_nuclei_layer_placed_and_sized_like_the_file(tmp_path):
    path = build_nuclei_geojson(tmp_path / "many.geojson", 6000)
    assert nuclei.bulk_spans(path, "geojson") is not None
    [(levels, kwargs, kind)] = read_layers(str(path))
    assert kind == "labels" and kwargs["multiscale"] and kwargs["metadata"]["nsclc"]["kind"] == "nuclei"
    view = kwargs["metadata"]["nsclc"]["outline_view"]
    assert isinstance(view, OutlineView) and len(view.nuclei) == 6000
    top = view.nuclei.bounds[:, 2:].max(axis=0)
    assert levels[0].shape == (int(np.ceil(top[0])) + 2, int(np.ceil(top[1])) + 2)


def test_points_boxes_and_small_files_keep_their_usual_layers(tmp_path):
    points = _points_geojson(tmp_path / "points.geojson", 6000)
    boxes = _coco_boxes(tmp_path / "boxes.json", 6000)
    small = build_nuclei_geojson(tmp_path / "small.geojson", 300)
    assert nuclei.bulk_spans(points, "geojson") is None
    assert nuclei.bulk_spans(boxes, "coco") is None
    assert nuclei.bulk_spans(small, "geojson") is None
    kinds = [kind for _, _, kind in read_layers(str(points))]
    assert "points" in kinds and "labels" not in kinds
    assert [kind for _, _, kind in read_layers(str(small))] == ["shapes"]


def test_a_slides_nuclei_geojson_is_scanned_once(tmp_path, monkeypatch):
    from napari_nsclc.nuclei import jsonscan

    path = build_nuclei_geojson(tmp_path / "once.geojson", 6000)
    calls = []
    scan = jsonscan.array_spans
    monkeypatch.setattr(jsonscan, "array_spans", lambda *args, **kw: calls.append(args) or scan(*args, **kw))
    first = nuclei.bulk_spans(path, "geojson")
    assert nuclei.bulk_spans(path, "geojson") is first and len(calls) == 1
    path.write_text(path.read_text().replace('"Tumor"', '"Tumour"'))  # a changed file is scanned again
    assert nuclei.bulk_spans(path, "geojson") is not first and len(calls) == 2
