"""``napari-nsclc convert`` and ``info`` on slides and slide annotations (synthetic slide; real CAMELYON17 XML)."""

from __future__ import annotations

import json

from napari_nsclc import registry
from napari_nsclc.cli import main
from napari_nsclc.testing import slides as builders


def test_convert_real_asap_to_geojson_and_back(samples, tmp_path, capsys):
    source = samples / "camelyon17/patient_004_node_4.xml"
    geo = tmp_path / "node4.geojson"
    assert main(["convert", str(source), "--to", "geojson", "-o", str(geo)]) == 0
    features = json.loads(geo.read_text())["features"]
    assert [f["properties"]["classification"] for f in features] == [{"name": "Tumor", "color": [255, 0, 0]}] * 3
    assert features[0]["geometry"]["coordinates"][0][0] == [12711.2998, 88778.1016]
    back = tmp_path / "node4.xml"
    assert main(["convert", str(geo), "--to", "asap", "-o", str(back)]) == 0
    (original,) = registry.read(source)
    (again,) = registry.read(back)
    for a, b in zip(original.polygons[0].polygons, again.polygons[0].polygons, strict=True):
        assert (a.exterior == b.exterior).all()
    assert again.polygons[0].schema.color_of("Tumor") == (1.0, 0.0, 0.0, 1.0)
    assert "wrote 1 file(s)" in capsys.readouterr().out


def test_convert_slide_annotations_to_asap(tmp_path):
    slide_path = builders.build_wsi(tmp_path)
    out = tmp_path / "out" / "slide_annotations.xml"
    assert main(["convert", str(slide_path), "--to", "asap", "-o", str(out)]) == 0
    (case,) = registry.read(out)
    assert case.counts() == {"ASAP points": {"_1": 1}, "ASAP polygons": {"_0": 2, "_2": 1}}
    (original,) = registry.read(tmp_path / "slide.xml")
    assert all(a == b for a, b in zip(case.polygons[0].polygons, original.polygons[0].polygons, strict=True))
    # the fixture writes coordinates in shuffled document order; the output lists them in Order
    assert out.read_text().count('Order="0"') == 4 and out.read_text().index('Order="0"') < out.read_text().index(
        'Order="1"')


def test_info_on_a_slide(tmp_path, capsys):
    slide_path = builders.build_wsi(tmp_path)
    assert main(["info", str(slide_path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["format"] == "slide"
    (case,) = summary["cases"]
    assert case["shape"] == [4096, 4096] and case["pixel_size"] == [0.25, 0.25] and case["unit"] == "um"
    assert case["annotations"]["ASAP polygons"] == {"_0": 2, "_2": 1}
