"""ASAP XML: the real CAMELYON17 file round-trips; types, groups, order trap, writer, bad input.

``samples/camelyon17/patient_004_node_4.xml`` is a real CAMELYON17 annotation.
The other XML files are synthetic, written here or by ``testing.slides``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from defusedxml import ElementTree as DET

from napari_nsclc import registry
from napari_nsclc.formats import asap
from napari_nsclc.layers import case_to_layers, layer_data_to_case
from napari_nsclc.model import Case, ClassInfo, ClassSchema, NsclcFormatError, PointSet, Polygon, PolygonSet
from napari_nsclc.testing import slides as builders

REAL = "camelyon17/patient_004_node_4.xml"


def asap_loader_like(path: Path) -> dict:
    """What ASAP's own loader (annotation/XmlRepository.cpp, loadFromRepo) accepts, in Python.

    ASAP rejects the whole file when an annotation's PartOfGroup is neither
    "None" nor a defined group, and places each coordinate at index ``Order``
    of a vector sized by the number of coordinates (so Orders must be
    0..n-1). Returns ``{annotation name: (type, group, colour, [(x, y), ...])}``.
    """
    root = DET.parse(str(path)).getroot()
    assert root.tag == "ASAP_Annotations"
    groups = {group.get("Name"): group.get("Color") for group in root.find("AnnotationGroups")}
    out = {}
    for annotation in root.find("Annotations"):
        group = annotation.get("PartOfGroup")
        if group != "None" and group not in groups:
            raise AssertionError(f"ASAP would reject the file: undefined group {group!r}")
        coordinates = annotation.find("Coordinates").findall("Coordinate")
        ordered = [None] * len(coordinates)
        for coordinate in coordinates:
            ordered[int(coordinate.get("Order"))] = (float(coordinate.get("X")), float(coordinate.get("Y")))
        assert None not in ordered
        out[annotation.get("Name")] = (annotation.get("Type"), group, annotation.get("Color"), ordered)
    return out


def test_real_camelyon17_reads(samples):
    (case,) = registry.read(samples / REAL)
    assert registry.detect(samples / REAL).name == "asap"
    (polygons,) = case.polygons
    assert case.points == []
    assert polygons.counts() == {"Tumor": 3}
    assert [len(p.exterior) for p in polygons.polygons] == [8, 15, 12]
    # (y, x) order, level-0 pixels, first vertex of "Annotation 0" (Y=88778.1016 X=12711.2998 in the file);
    # ASAP XML has a pixel-corner origin: model = file - 0.5 (model.py, "Geometry conventions")
    assert polygons.polygons[0].exterior[0].tolist() == [88777.6016, 12710.7998]
    assert polygons.schema.names == ["Tumor"]
    assert polygons.schema.color_of("Tumor") == (1.0, 0.0, 0.0, 1.0)
    assert [a["Color"] for a in polygons.attributes] == ["#F4FA58"] * 3
    assert case.provenance.warnings == []


def test_real_camelyon17_round_trips_byte_identical(samples, tmp_path):
    source = samples / REAL
    before = hashlib.sha256(source.read_bytes()).hexdigest()
    cases = registry.read(source)
    (written,) = registry.write(cases, tmp_path / "out.xml", "asap")
    assert written.read_bytes() == source.read_bytes()
    assert hashlib.sha256(source.read_bytes()).hexdigest() == before
    assert asap_loader_like(written) == asap_loader_like(source)


def test_real_camelyon17_round_trips_through_napari_layers(samples, tmp_path):
    (case,) = registry.read(samples / REAL)
    layer_data = [(data, meta, kind) for data, meta, kind in case_to_layers(case)]
    back = layer_data_to_case(layer_data, name=case.name)
    (written,) = asap.write([back], tmp_path / "via_layers.xml")
    assert written.read_text() == (samples / REAL).read_text()


def test_vertices_follow_order_not_document_order(tmp_path):
    path = builders.write_asap_xml(tmp_path / "shuffled.xml", 4096)
    (case,) = asap.read(path)
    expected = builders.tumour_polygons(4096)
    for polygon, ring in zip(case.polygons[0].polygons, expected, strict=True):
        assert np.allclose(polygon.exterior, ring[:, ::-1] - 0.5, atol=1e-3)  # corner origin: model = file - 0.5
    assert case.polygons[0].schema.names == ["_0", "_1", "_2"]
    assert case.polygons[0].schema.by_name("_2").description.startswith("exclusion")
    assert case.points[0].coords.tolist() == [[1228.3, 2866.7]]  # the Dot's Y=1228.8 X=2867.2, minus 0.5


ALL_TYPES = """<?xml version="1.0"?>
<ASAP_Annotations>
\t<Annotations>
\t\t<Annotation Name="box" Type="Rectangle" PartOfGroup="stroma" Color="#00FF00">
\t\t\t<Coordinates>
\t\t\t\t<Coordinate Order="0" X="10" Y="20" />
\t\t\t\t<Coordinate Order="1" X="110" Y="20" />
\t\t\t\t<Coordinate Order="2" X="110" Y="70" />
\t\t\t\t<Coordinate Order="3" X="10" Y="70" />
\t\t\t</Coordinates>
\t\t</Annotation>
\t\t<Annotation Name="cells" Type="PointSet" PartOfGroup="lymphocyte" Color="#0000FF">
\t\t\t<Coordinates>
\t\t\t\t<Coordinate Order="1" X="5.5" Y="6.25" />
\t\t\t\t<Coordinate Order="0" X="1" Y="2" />
\t\t\t\t<Coordinate Order="2" X="7" Y="8" />
\t\t\t</Coordinates>
\t\t</Annotation>
\t\t<Annotation Name="curve" Type="Spline" PartOfGroup="stroma" Color="#00FF00">
\t\t\t<Coordinates>
\t\t\t\t<Coordinate Order="0" X="200" Y="200" />
\t\t\t\t<Coordinate Order="1" X="300" Y="210" />
\t\t\t\t<Coordinate Order="2" X="250" Y="300" />
\t\t\t</Coordinates>
\t\t</Annotation>
\t\t<Annotation Name="ruler" Type="Measurement" PartOfGroup="None" Color="#F4FA58">
\t\t\t<Coordinates>
\t\t\t\t<Coordinate Order="0" X="0" Y="0" />
\t\t\t\t<Coordinate Order="1" X="30" Y="40" />
\t\t\t</Coordinates>
\t\t</Annotation>
\t\t<Annotation Name="mitosis" Type="Dot" PartOfGroup="lymphocyte" Color="#0000FF">
\t\t\t<Coordinates>
\t\t\t\t<Coordinate Order="0" X="50" Y="60" />
\t\t\t</Coordinates>
\t\t</Annotation>
\t</Annotations>
\t<AnnotationGroups>
\t\t<Group Name="stroma" PartOfGroup="None" Color="#00AA00">
\t\t\t<Attributes>
\t\t\t\t<Attribute reviewer="A" />
\t\t\t</Attributes>
\t\t</Group>
\t\t<Group Name="lymphocyte" PartOfGroup="None" Color="#0000AA">
\t\t\t<Attributes />
\t\t</Group>
\t</AnnotationGroups>
</ASAP_Annotations>
"""


def test_every_type_reads_and_writes_back(tmp_path):
    path = tmp_path / "types.xml"
    path.write_text(ALL_TYPES)
    (case,) = asap.read(path)
    (polygons,) = case.polygons
    assert [p.kind for p in polygons.polygons] == ["rectangle", "polygon", "path"]
    assert [a["Type"] for a in polygons.attributes] == ["Rectangle", "Spline", "Measurement"]
    # corner origin: model (y, x) = file (Y, X) - 0.5
    assert polygons.polygons[0].exterior.tolist() == [[19.5, 9.5], [19.5, 109.5], [69.5, 109.5], [69.5, 9.5]]
    assert list(polygons.classes) == ["stroma", "stroma", "None"]
    (points,) = case.points
    assert points.coords.tolist() == [[1.5, 0.5], [5.75, 5.0], [7.5, 6.5], [59.5, 49.5]]
    assert list(points.classes) == ["lymphocyte"] * 4
    assert points.schema.names == ["stroma", "lymphocyte", "None"]
    assert points.schema.color_of("stroma") == pytest.approx((0, 170 / 255, 0, 1))
    (written,) = asap.write([case], tmp_path / "again.xml")
    # the PointSet is written back in Order, so only its coordinate lines move
    expected = ALL_TYPES.replace(
        '\t\t\t\t<Coordinate Order="1" X="5.5" Y="6.25" />\n\t\t\t\t<Coordinate Order="0" X="1" Y="2" />\n',
        '\t\t\t\t<Coordinate Order="0" X="1" Y="2" />\n\t\t\t\t<Coordinate Order="1" X="5.5" Y="6.25" />\n',
    )
    assert written.read_text() == expected
    assert set(asap_loader_like(written)) == {"box", "cells", "curve", "ruler", "mitosis"}


def test_edited_case_writes_groups_asap_accepts(tmp_path, samples):
    """Reclassify one polygon into a new class and add a polygon and a point made in napari."""
    (case,) = registry.read(samples / REAL)
    layers = case_to_layers(case)
    data, meta, kind = layers[0]
    features = meta["features"].copy()
    features["class"] = features["class"].cat.add_categories(["exclusion"])
    features.loc[1, "class"] = "exclusion"
    new_shape = np.array([[100.0, 100.0], [100.0, 200.0], [150.5, 150.0]])
    features.loc[len(features)] = {"class": "Tumor", "source_index": -1}
    edited = [(list(data) + [new_shape], {**meta, "features": features, "shape_type": ["polygon"] * 4}, kind)]
    back = layer_data_to_case(edited, name=case.name)
    back.points.append(PointSet("new points", [[10.0, 20.0]], ["mitosis"], ClassSchema.from_names("x", ["mitosis"])))
    (written,) = asap.write([back], tmp_path / "edited.xml")
    loaded = asap_loader_like(written)
    assert loaded["Annotation 0"][1] == "Tumor"
    assert loaded["Annotation 1"][1] == "exclusion"
    assert loaded["Annotation 1"][2] != "#F4FA58"  # a reclassified annotation takes its new class colour
    new = [v for k, v in loaded.items() if k not in ("Annotation 0", "Annotation 1", "Annotation 2")]
    assert sorted((t, g, c) for t, g, _, c in [(v[0], v[1], None, v[3]) for v in new]) == [
        # (X, Y) in the file = model (x, y) + 0.5 (corner origin)
        ("Dot", "mitosis", [(20.5, 10.5)]),
        ("Polygon", "Tumor", [(100.5, 100.5), (200.5, 100.5), (150.5, 151.0)]),
    ]
    (again,) = asap.read(written)
    assert again.polygons[0].counts() == {"Tumor": 3, "exclusion": 1}


def test_holes_and_foreign_polygons_convert_to_asap(tmp_path):
    schema = ClassSchema("tissue", (ClassInfo(1, "tumour", "#ff0000"),))
    ring = Polygon([[0, 0], [0, 10], [10, 10], [10, 0]], holes=[[[2, 2], [2, 4], [4, 4]]])
    case = Case("foreign", polygons=[PolygonSet("p", [ring], ["tumour"], schema)])
    (written,) = asap.write([case], tmp_path / "foreign.xml")
    loaded = asap_loader_like(written)
    assert loaded == {
        # (X, Y) in the file = model (x, y) + 0.5 (corner origin)
        "Annotation 1000000000": ("Polygon", "tumour", "#FF0000", [(0.5, 0.5), (10.5, 0.5), (10.5, 10.5), (0.5, 10.5)]),
        "Annotation 1000000000 hole 0": ("Polygon", "tumour", "#FF0000", [(2.5, 2.5), (4.5, 2.5), (4.5, 4.5)]),
    }


def test_writer_refuses_to_overwrite(tmp_path, samples):
    cases = registry.read(samples / REAL)
    target = tmp_path / "x.xml"
    target.write_text("keep me")
    with pytest.raises(NsclcFormatError, match="already exists"):
        asap.write(cases, target)
    assert target.read_text() == "keep me"
    asap.write(cases, target, overwrite=True)
    assert target.read_text() == (samples / REAL).read_text()


# --------------------------------------------------------------------------- bad input


def test_missing_coordinates_skip_that_annotation(tmp_path):
    bad = ALL_TYPES.replace('<Coordinate Order="1" X="110" Y="20" />', '<Coordinate Order="1" Y="20" />')
    bad = bad.replace(
        '<Annotation Name="ruler" Type="Measurement" PartOfGroup="None" Color="#F4FA58">\n\t\t\t<Coordinates>\n'
        '\t\t\t\t<Coordinate Order="0" X="0" Y="0" />\n\t\t\t\t<Coordinate Order="1" X="30" Y="40" />\n'
        "\t\t\t</Coordinates>",
        '<Annotation Name="ruler" Type="Measurement" PartOfGroup="None" Color="#F4FA58">',
    )
    path = tmp_path / "missing.xml"
    path.write_text(bad)
    (case,) = asap.read(path)
    assert case.provenance.warnings == [
        "missing.xml: annotation 0 ('box'): coordinate 1 lacks a numeric X, Y or Order (X=None, Y='20', Order='1');"
        " skipped",
        "missing.xml: annotation 3 ('ruler'): has no Coordinates element; skipped",
    ]
    assert [a["Name"] for a in case.polygons[0].attributes] == ["curve"]
    assert len(case.points[0]) == 4


def test_every_annotation_bad_is_an_error(tmp_path):
    path = tmp_path / "allbad.xml"
    path.write_text('<ASAP_Annotations><Annotations><Annotation Name="a" Type="Polygon" PartOfGroup="None">'
                    '<Coordinates><Coordinate Order="0" X="nan" Y="1"/></Coordinates></Annotation></Annotations>'
                    "</ASAP_Annotations>")
    with pytest.raises(NsclcFormatError, match=r"allbad\.xml: no usable annotation: annotation 0 \('a'\): "
                                               r"coordinate 0 is not finite"):
        asap.read(path)


def test_undefined_group_is_kept_and_warned(tmp_path):
    path = tmp_path / "undefined.xml"
    path.write_text(ALL_TYPES.replace('Name="curve" Type="Spline" PartOfGroup="stroma"',
                                      'Name="curve" Type="Spline" PartOfGroup="necrosis"'))
    (case,) = asap.read(path)
    assert case.provenance.warnings == [
        "undefined.xml: annotation 2 ('curve'): group 'necrosis' is not defined in AnnotationGroups; "
        "kept as its own class"
    ]
    assert case.polygons[0].counts() == {"stroma": 1, "necrosis": 1, "None": 1}
    # written back, the group is defined, so ASAP itself accepts the file
    (written,) = asap.write([case], tmp_path / "fixed.xml")
    assert asap_loader_like(written)["curve"][1] == "necrosis"


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<ASAP_Annotations><Annotations><Annotation Name="&lol3;" Type="Dot" PartOfGroup="None">
<Coordinates><Coordinate Order="0" X="1" Y="1"/></Coordinates></Annotation></Annotations></ASAP_Annotations>
"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<ASAP_Annotations><Annotations><Annotation Name="&xxe;" Type="Dot" PartOfGroup="None">
<Coordinates><Coordinate Order="0" X="1" Y="1"/></Coordinates></Annotation></Annotations></ASAP_Annotations>
"""


@pytest.mark.parametrize("text", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["entity-expansion", "external-entity"])
def test_hostile_xml_is_refused(tmp_path, text):
    path = tmp_path / "hostile.xml"
    path.write_text(text)
    assert registry.detect(path).name == "asap"
    with pytest.raises(NsclcFormatError, match=r"hostile\.xml: refused: the XML declares entities"):
        registry.read(path)


def test_other_root_element_is_an_error(tmp_path):
    path = tmp_path / "other.xml"
    path.write_text("<Something><ASAP_Annotations/></Something>")
    with pytest.raises(NsclcFormatError, match=r"other\.xml: root element is <Something>"):
        asap.read(path)


def test_annotations_alone_take_the_neighbouring_slides_scale(tmp_path):
    """Opened on its own, an ASAP file next to its slide lands in the slide's world (um) coordinates."""
    slide_path = builders.write_camelyon_like(tmp_path / "tumor_009.tif", builders.synthetic_tissue((512, 512)),
                                              tile=256, n_levels=2, mpp=0.243)
    xml = builders.write_asap_xml(tmp_path / "tumor_009.xml", 512)
    (case,) = registry.read(xml)
    assert case.image.path == str(slide_path)
    assert case.image.pixel_size == pytest.approx((0.243, 0.243)) and case.image.unit == "um"
    assert case.image.shape == (512, 512)
