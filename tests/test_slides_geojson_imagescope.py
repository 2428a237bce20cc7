"""QuPath GeoJSON and Aperio ImageScope XML: read, write, round trip, conversion, bad input.

The GeoJSON and ImageScope files are synthetic, written here in the layouts
QuPath (0.4/0.5 export, and the older ``colorRGB`` form) and ImageScope write.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_nsclc import registry
from napari_nsclc.formats import asap, geojson, imagescope
from napari_nsclc.layers import case_to_layers, layer_data_to_case
from napari_nsclc.model import NsclcFormatError

QUPATH = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "id": "0b8c7f0e-1111-4c1e-9a57-3f1f2f6f0a01",
            "geometry": {"type": "Polygon", "coordinates": [
                [[100, 100], [400, 100], [400, 300], [100, 300], [100, 100]],
                [[150, 150], [200, 150], [200, 200], [150, 150]],
            ]},
            "properties": {"objectType": "annotation", "classification": {"name": "Tumor", "color": [200, 0, 0]},
                           "isLocked": False, "metadata": {"reviewer": "MS"}},
        },
        {
            "type": "Feature",
            "id": "0b8c7f0e-2222-4c1e-9a57-3f1f2f6f0a02",
            "geometry": {"type": "MultiPolygon", "coordinates": [
                [[[500, 500], [600, 500], [600, 600], [500, 500]]],
                [[[700.5, 700.25], [800, 700], [800, 800], [700.5, 700.25]]],
            ]},
            "properties": {"objectType": "annotation", "classification": {"name": "Stroma", "color": [150, 200, 150]}},
        },
        {
            "type": "Feature",
            "id": "0b8c7f0e-3333-4c1e-9a57-3f1f2f6f0a03",
            "geometry": {"type": "MultiPoint", "coordinates": [[10, 20], [30, 40]]},
            "properties": {"objectType": "annotation", "classification": {"name": "Tumor", "color": [200, 0, 0]}},
        },
        {
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": [[0, 0], [50, 60]]},
            "properties": {"objectType": "annotation"},
        },
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [5, 6]},
            "properties": {"objectType": "annotation", "classification": {"name": "Immune cells",
                                                                         "colorRGB": -6895466}},
        },
    ],
}


@pytest.fixture
def qupath_file(tmp_path):
    path = tmp_path / "slide_01.geojson"
    path.write_text(json.dumps(QUPATH, indent=2))
    return path


def test_qupath_geojson_reads(qupath_file):
    (case,) = registry.read(qupath_file)
    assert registry.detect(qupath_file).name == "geojson"
    (polygons,) = case.polygons
    # the Stroma MultiPolygon is one object of two parts
    assert polygons.counts() == {"Tumor": 1, "Stroma": 1, "Unclassified": 1} and len(polygons.polygons) == 4
    tumour = polygons.polygons[0]
    # QuPath GeoJSON has a pixel-corner origin: model (y, x) = file (y, x) - 0.5 (model.py, "Geometry conventions")
    assert tumour.exterior.tolist() == [[99.5, 99.5], [99.5, 399.5], [299.5, 399.5], [299.5, 99.5]]
    assert [h.tolist() for h in tumour.holes] == [[[149.5, 149.5], [149.5, 199.5], [199.5, 199.5]]]
    assert polygons.polygons[2].exterior[0].tolist() == [699.75, 700.0]
    assert polygons.polygons[3].kind == "path"
    (points,) = case.points
    assert points.coords.tolist() == [[19.5, 9.5], [39.5, 29.5], [5.5, 4.5]]
    assert list(points.classes) == ["Tumor", "Tumor", "Immune cells"]
    assert polygons.schema.color_of("Tumor") == pytest.approx((200 / 255, 0, 0, 1))
    # colorRGB is packed signed ARGB: -6895466 -> 0xff96c896 -> rgb(150, 200, 150)
    assert polygons.schema.color_of("Immune cells") == pytest.approx((150 / 255, 200 / 255, 150 / 255, 1))


def test_qupath_geojson_round_trips_json_equal(qupath_file, tmp_path):
    cases = registry.read(qupath_file)
    (written,) = registry.write(cases, tmp_path / "out.geojson", "geojson")
    assert json.loads(written.read_text()) == QUPATH


def test_qupath_list_layout_and_napari_layers_round_trip(tmp_path):
    path = tmp_path / "list.geojson"
    path.write_text(json.dumps(QUPATH["features"]))
    (case,) = geojson.read(path)
    back = layer_data_to_case(case_to_layers(case), name=case.name)
    (written,) = geojson.write([back], tmp_path / "list_out.geojson")
    assert json.loads(written.read_text()) == QUPATH["features"]


def test_reclassified_feature_gets_new_classification(qupath_file, tmp_path):
    (case,) = geojson.read(qupath_file)
    case.polygons[0].classes[0] = "Stroma"
    (written,) = geojson.write([case], tmp_path / "edit.geojson")
    feature = json.loads(written.read_text())["features"][0]
    assert feature["properties"]["classification"] == {"name": "Stroma", "color": [150, 200, 150]}
    assert feature["properties"]["metadata"] == {"reviewer": "MS"}


def test_geojson_to_asap_and_back_keeps_coordinates_and_classes(qupath_file, tmp_path):
    (case,) = geojson.read(qupath_file)
    (xml,) = asap.write([case], tmp_path / "converted.xml")
    (again,) = asap.read(xml)
    assert again.polygons[0].counts() == {"Tumor": 2, "Stroma": 2, "Unclassified": 1}  # the hole is a polygon
    assert again.polygons[0].polygons[0].exterior.tolist() == case.polygons[0].polygons[0].exterior.tolist()
    assert again.points[0].coords.tolist() == case.points[0].coords.tolist()


def test_bad_features_are_skipped_with_warnings(tmp_path):
    document = {"type": "FeatureCollection", "features": [
        QUPATH["features"][0],
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}, "properties": {}},
        {"type": "Feature", "geometry": {"type": "GeometryCollection", "geometries": []}, "properties": {}},
        {"type": "Feature", "geometry": None, "properties": {}},
    ]}
    path = tmp_path / "bad.geojson"
    path.write_text(json.dumps(document))
    (case,) = geojson.read(path)
    assert case.provenance.warnings == [
        "bad.geojson: feature 1: a ring needs at least 3 [x, y] positions; skipped",
        "bad.geojson: feature 2: geometry type 'GeometryCollection' is not supported; skipped",
        "bad.geojson: feature 3: geometry type None is not supported; skipped",
    ]
    assert len(case.polygons[0]) == 1


def test_not_geojson_is_an_error(tmp_path):
    path = tmp_path / "broken.geojson"
    path.write_text('{"type": "FeatureCollection", "features": [')
    with pytest.raises(NsclcFormatError, match=r"broken\.geojson: is not valid JSON"):
        registry.read(path)
    path.write_text('{"type": "Topology"}')
    with pytest.raises(NsclcFormatError, match=r"broken\.geojson: is neither a GeoJSON FeatureCollection"):
        registry.read(path)


# --------------------------------------------------------------------------- ImageScope

IMAGESCOPE = """<?xml version="1.0" encoding="UTF-8"?>
<Annotations MicronsPerPixel="0.252000">
\t<Annotation Id="1" Name="" ReadOnly="0" NameReadOnly="0" LineColorReadOnly="0" Incremental="0" Type="4" LineColor="255" Visible="1" Selected="1" MarkupImagePath="" MacroName="">
\t\t<Attributes>
\t\t\t<Attribute Name="Description" Id="0" Value=""/>
\t\t</Attributes>
\t\t<Regions>
\t\t\t<RegionAttributeHeaders>
\t\t\t\t<AttributeHeader Id="9999" Name="Region" ColumnWidth="-1"/>
\t\t\t</RegionAttributeHeaders>
\t\t\t<Region Id="1" Type="0" Zoom="0.5" Selected="0" ImageLocation="" ImageFocus="-1" Length="1200.5" Area="80000" LengthMicrons="302.5" AreaMicrons="5080.3" Text="Invasive" NegativeROA="0" InputRegionId="0" Analyze="1" DisplayId="1">
\t\t\t\t<Attributes/>
\t\t\t\t<Vertices>
\t\t\t\t\t<Vertex X="1000" Y="2000" Z="0"/>
\t\t\t\t\t<Vertex X="1400" Y="2000" Z="0"/>
\t\t\t\t\t<Vertex X="1400" Y="2200.5" Z="0"/>
\t\t\t\t</Vertices>
\t\t\t</Region>
\t\t\t<Region Id="2" Type="1" Zoom="0.5" Text="Benign" DisplayId="2">
\t\t\t\t<Attributes/>
\t\t\t\t<Vertices>
\t\t\t\t\t<Vertex X="10" Y="20" Z="0"/>
\t\t\t\t\t<Vertex X="110" Y="20" Z="0"/>
\t\t\t\t\t<Vertex X="110" Y="70" Z="0"/>
\t\t\t\t\t<Vertex X="10" Y="70" Z="0"/>
\t\t\t\t</Vertices>
\t\t\t</Region>
\t\t\t<Region Id="3" Type="0" Text="Invasive" DisplayId="3">
\t\t\t\t<Attributes/>
\t\t\t\t<Vertices>
\t\t\t\t\t<Vertex X="5" Z="0"/>
\t\t\t\t</Vertices>
\t\t\t</Region>
\t\t</Regions>
\t\t<Plots/>
\t</Annotation>
</Annotations>
"""


def test_imagescope_reads_regions_with_text_as_class(tmp_path):
    path = tmp_path / "A01.xml"
    path.write_text(IMAGESCOPE)
    assert registry.detect(path).name == "imagescope"
    (case,) = registry.read(path)
    (regions,) = case.polygons
    assert list(regions.classes) == ["Invasive", "Benign"]
    # ImageScope XML has a pixel-corner origin: model = file - 0.5
    assert regions.polygons[0].exterior.tolist() == [[1999.5, 999.5], [1999.5, 1399.5], [2200.0, 1399.5]]
    assert regions.polygons[1].kind == "rectangle"
    # LineColor 255 is BGR-packed red
    assert regions.schema.color_of("Invasive") == (1.0, 0.0, 0.0, 1.0)
    assert case.provenance.warnings == ["A01.xml: annotation 0 region 2 (Id '3'): vertex 0 lacks a numeric X or Y;"
                                        " skipped"]
    assert case.image.metadata["microns_per_pixel_in_xml"] == 0.252


def test_imagescope_writes_back_regions(tmp_path):
    path = tmp_path / "A02.xml"
    path.write_text(IMAGESCOPE)
    (case,) = imagescope.read(path)
    (written,) = imagescope.write([case], tmp_path / "out.xml")
    (again,) = imagescope.read(written)
    assert list(again.polygons[0].classes) == ["Invasive", "Benign"]
    for a, b in zip(again.polygons[0].polygons, case.polygons[0].polygons, strict=True):
        assert np.array_equal(a.exterior, b.exterior) and a.kind == b.kind
    assert again.document["imagescope"]["root"] == {"MicronsPerPixel": "0.252000"}
    assert again.document["imagescope"]["annotations"][0]["attrib"]["LineColor"] == "255"


def test_imagescope_converts_to_geojson(tmp_path):
    path = tmp_path / "A03.xml"
    path.write_text(IMAGESCOPE)
    cases = registry.read(path)
    (written,) = registry.write(cases, tmp_path / "A03.geojson", "geojson")
    features = json.loads(written.read_text())["features"]
    assert [f["properties"]["classification"]["name"] for f in features] == ["Invasive", "Benign"]
    assert features[0]["geometry"]["coordinates"] == [[[1000, 2000], [1400, 2000], [1400, 2200.5], [1000, 2000]]]


def test_imagescope_hostile_xml_is_refused(tmp_path):
    path = tmp_path / "evil.xml"
    path.write_text('<?xml version="1.0"?>\n<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/hostname">]>\n'
                    '<Annotations MicronsPerPixel="0.25"><Annotation><Regions><Region Text="&x;"><Vertices>'
                    '<Vertex X="1" Y="2"/></Vertices></Region></Regions></Annotation></Annotations>\n')
    assert registry.detect(path).name == "imagescope"
    with pytest.raises(NsclcFormatError, match=r"evil\.xml: refused: the XML declares entities"):
        registry.read(path)
