"""Autosaved nuclei edits: written when they change, restored into a new session exactly, refused when stale."""

from __future__ import annotations

import os

import numpy as np
import pytest

from napari_nsclc.model import NsclcFormatError
from napari_nsclc.nuclei import geojson
from napari_nsclc.nuclei.autosave import Autosaver
from napari_nsclc.testing.nuclei import build_nuclei_geojson


@pytest.fixture
def source(tmp_path, monkeypatch):
    monkeypatch.setenv("NSCLC_ANNOTATOR", "alice")
    return build_nuclei_geojson(tmp_path / "slide.geojson", 6000)


def _edit(nuclei):
    nuclei.reclassify("Stroma", np.arange(0, 600, 3))
    nuclei.reclassify("Necrosis", [5, 7])  # a class the file did not have
    nuclei.delete([11, 12])
    ring = nuclei.ring(20) + [0.0, 4.0]
    nuclei.replace({20: ring}, {}, [], [(np.array([[5.0, 5.0], [5.0, 15.0], [15.0, 15.0]]), "Tumor")])


def test_edits_come_back_in_a_new_session_exactly(source):
    nuclei = geojson.read(source)
    saver = Autosaver(nuclei)
    assert saver.autosave() is None  # nothing edited, nothing written
    _edit(nuclei)
    path = saver.autosave()
    assert path.parent.name == ".nsclc-autosave" and path.name == "slide.geojson.alice.nuclei.npz"
    assert saver.autosave() is None  # unchanged since
    assert path.stat().st_size < 200_000

    again = geojson.read(source)
    restorer = Autosaver(again)
    unfinished = restorer.unfinished()
    assert unfinished["path"] == path and unfinished["edited"] >= 200
    restorer.restore()
    np.testing.assert_array_equal(again.codes, nuclei.codes)
    np.testing.assert_array_equal(again.deleted, nuclei.deleted)
    assert again.schema.names == nuclei.schema.names and sorted(again.outlines) == sorted(nuclei.outlines)
    for i in nuclei.outlines:
        np.testing.assert_array_equal(again.outlines[i], nuclei.outlines[i])
    np.testing.assert_array_equal(again.edited, nuclei.edited)
    first = geojson.write(nuclei, source.with_name("a.geojson"))
    second = geojson.write(again, source.with_name("b.geojson"))
    texts = [p.read_text().splitlines() for p in (first, second)]
    assert texts[0][:-2] == texts[1][:-2]  # the drawn nucleus gets a fresh id: only its line differs
    restorer.discard()
    assert not path.exists() and restorer.unfinished() is None


def test_a_stale_or_damaged_autosave_is_set_aside_and_named(source):
    nuclei = geojson.read(source)
    _edit(nuclei)
    path = Autosaver(nuclei).autosave()
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the file changed since
    with pytest.raises(NsclcFormatError, match="changed since these edits were autosaved") as error:
        Autosaver(geojson.read(source)).restore()
    assert error.value.path == str(path) and not path.exists()
    assert path.with_name(path.name + ".damaged").exists()
    path.write_bytes(b"not an npz")
    with pytest.raises(NsclcFormatError, match="cannot be read"):
        Autosaver(geojson.read(source)).unfinished()
    assert not path.exists() and path.with_name(path.name + ".damaged-2").read_bytes() == b"not an npz"
    assert path.with_name(path.name + ".damaged").stat().st_size > 1000  # the first one is kept too


def test_a_save_records_who_and_what_changed_beside_the_file(source, tmp_path):
    import json

    from napari_nsclc import nuclei as package

    nuclei = geojson.read(source)
    _edit(nuclei)
    written = package.write(nuclei, tmp_path / "out" / "slide.corrected.geojson")
    [event] = [json.loads(line) for line in (written.parent / package.EVENTS).read_text().splitlines()]
    assert event["annotator"] == "alice" and event["file"] == "slide.corrected.geojson"
    assert event["source"] == str(source) and event["format"] == "geojson"
    # classes cycle Tumor, Immune cells, Stroma: 200 Tumor nuclei became Stroma, 12 of them then deleted
    assert event["reclassified"] == {"Tumor -> Stroma": 199, "Stroma -> Necrosis": 1, "Immune cells -> Necrosis": 1}
    assert (event["deleted"], event["redrawn"], event["drawn"], event["nuclei"]) == (2, 1, 1, 5999)
