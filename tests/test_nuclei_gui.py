"""Slide-scale nuclei in a real napari viewer (under Xvfb): 100k QuPath nuclei, lasso, reclassify, undo, save."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
from napari.layers import Labels, Shapes

from napari_nsclc.nuclei.render import SELECTED
from napari_nsclc.testing.nuclei import build_nuclei_geojson
from napari_nsclc.widgets.nuclei import LASSO_LAYER, NucleiWidget

COUNT = 100_000


@pytest.fixture(scope="module")
def slide_nuclei(tmp_path_factory):
    return build_nuclei_geojson(tmp_path_factory.mktemp("nuclei") / "slide.geojson", COUNT)


def _open(make_napari_viewer, path):
    viewer = make_napari_viewer(show=True)
    dock = NucleiWidget(viewer)
    viewer.window.add_dock_widget(dock)
    layers = viewer.open(path, plugin="napari-nsclc")
    return viewer, dock, layers


def _centres(features):
    return np.array([np.mean(np.asarray(f["geometry"]["coordinates"][0][:-1], float), axis=0) for f in features])


def test_100k_nuclei_open_as_outlines_then_a_lasso_reclassify_is_undone_redone_and_saved(
        make_napari_viewer, slide_nuclei, tmp_path, qtbot):
    source = json.loads(slide_nuclei.read_text())["features"]
    viewer, dock, layers = _open(make_napari_viewer, slide_nuclei)
    assert len(layers) == 1 and isinstance(layers[0], Labels) and layers[0].multiscale
    nuclei = dock.nuclei
    assert len(nuclei) == COUNT and nuclei.counts() == {"Tumor": 33334, "Immune cells": 33333, "Stroma": 33333}
    assert [dock.legend.item(row, 1).text() for row in range(3)] == ["33,334", "33,333", "33,333"]

    # the outlines are drawn: a nucleus's ring, read from the file, crosses pixels of its class at level 0
    first = np.asarray(source[0]["geometry"]["coordinates"][0], float)
    x, y = np.rint(first[0] - 0.5).astype(int)
    drawn = layers[0].data[0][y - 2:y + 3, x - 2:x + 3]
    assert 1 in drawn  # Tumor is code 1

    # lasso: napari's polygon-lasso layer, as a user would draw it
    dock.start_lasso()
    lasso = viewer.layers[LASSO_LAYER]
    assert isinstance(lasso, Shapes) and lasso.mode == "add_polygon_lasso"
    loop = np.array([[1000.0, 1000.0], [1000.0, 4000.0], [3500.0, 5000.0], [4000.0, 1500.0]])  # (y, x)
    lasso.add_polygons([loop])
    centres = _centres(source) - 0.5  # file corners -> model pixel centres, (x, y)
    inside = np.flatnonzero(shapely.contains_xy(shapely.Polygon(loop[:, ::-1]), centres[:, 0], centres[:, 1]))
    assert 1000 < len(inside) < 10000
    np.testing.assert_array_equal(nuclei.selection, inside)
    assert len(lasso.data) == 0  # the lasso goes once it has selected
    tile = layers[0].data[0][1000:1100, 1000:1100]
    assert SELECTED in tile or not len(nuclei.query(1000, 1000, 1100, 1100))

    before = nuclei.codes.copy()
    dock.target.setCurrentText("Stroma")
    dock.reclassify_button.click()
    stroma = nuclei.schema.code_of("Stroma")
    changed = inside[before[inside] != stroma]
    assert (nuclei.codes[inside] == stroma).all() and len(nuclei.edited) == len(changed)
    assert dock.legend.item(2, 1).text() == f"{33333 + len(changed):,}"
    dock.undo_button.click()
    np.testing.assert_array_equal(nuclei.codes, before)
    assert dock.legend.item(2, 1).text() == "33,333" and len(nuclei.edited) == 0
    dock.redo_button.click()
    assert (nuclei.codes[inside] == stroma).all()

    saved = dock.save(tmp_path / "corrected.geojson", "geojson")
    written = json.loads(saved.read_text())["features"]
    assert len(written) == COUNT
    differing = [k for k, (a, b) in enumerate(zip(source, written, strict=False)) if a != b]
    assert differing == changed.tolist()
    for k in differing[:50]:
        assert written[k]["properties"]["classification"] == {"name": "Stroma", "color": [150, 200, 150]}
        assert {**written[k], "properties": source[k]["properties"]} == source[k]


def test_click_selects_the_nucleus_under_the_cursor_and_delete_restore_and_outline_edit(
        make_napari_viewer, slide_nuclei, tmp_path, qtbot):
    viewer, dock, layers = _open(make_napari_viewer, slide_nuclei)
    nuclei, layer = dock.nuclei, layers[0]
    target = 123
    y, x = nuclei.centres[target]

    class Click:  # what napari hands a mouse-drag callback for a press and release in place
        type, pos, modifiers = "mouse_press", np.array([10.0, 10.0]), ()
        position = (y, x)

    callback = dock._on_click(layer, Click)
    next(callback)
    Click.type = "mouse_release"
    with pytest.raises(StopIteration):
        next(callback)
    assert nuclei.selection.tolist() == [target]

    dock.delete_button.click()
    assert nuclei.deleted[target] and nuclei.counts()["Tumor"] + nuclei.counts()["Stroma"] + \
        nuclei.counts()["Immune cells"] == COUNT - 1
    viewer.camera.center = (y, x)
    viewer.camera.zoom = 4
    qtbot.wait(50)
    dock.restore_button.click()
    assert not nuclei.deleted.any()

    # outlines in view open as Shapes; one moved by 3 px and one removed are applied as one undoable edit
    dock.edit_button.click()
    edit_layer = dock.edit_layer
    ids = edit_layer.features["nucleus"].to_numpy()
    assert 0 < len(ids) <= 3000 and target in ids
    k = int(np.flatnonzero(ids == target)[0])
    moved = edit_layer.data[k] + [0.0, 3.0]
    edit_layer.data = [moved if i == k else d for i, d in enumerate(edit_layer.data)]
    edit_layer.selected_data = {(k + 1) % len(ids)}
    removed = int(ids[(k + 1) % len(ids)])
    edit_layer.remove_selected()
    dock.apply_button.click()
    assert dock.edit_layer is None and edit_layer not in viewer.layers
    np.testing.assert_allclose(nuclei.ring(target), moved)
    assert nuclei.deleted[removed]
    saved = dock.save(tmp_path / "moved.geojson", "geojson")
    features = json.loads(saved.read_text())["features"]
    assert len(features) == COUNT - 1
    ring = np.asarray(features[target]["geometry"]["coordinates"][0], float)
    np.testing.assert_allclose(ring[:-1], moved[:, ::-1] + 0.5)
    dock.undo_button.click()
    assert not nuclei.deleted.any() and target not in nuclei.outlines

    # one selected nucleus opens alone: just that object becomes editable
    nuclei.select([target])
    dock.edit_button.click()
    assert dock.edit_layer.features["nucleus"].tolist() == [target] and len(dock.edit_layer.data) == 1
    dock.cancel_button.click()
    assert dock.edit_layer is None and target not in nuclei.outlines


def test_autosaved_edits_are_offered_back_after_a_crash_and_go_with_the_save(
        make_napari_viewer, tmp_path, qtbot, monkeypatch):
    monkeypatch.setenv("NSCLC_ANNOTATOR", "alice")
    asked = []
    monkeypatch.setattr("napari_nsclc.widgets._questions.ask",
                        lambda parent, key, text: asked.append((key, text)) or "restore")
    path = build_nuclei_geojson(tmp_path / "fov.geojson", 6000)
    viewer, dock, _ = _open(make_napari_viewer, path)
    dock.nuclei.select_class("Tumor")
    dock.target.setCurrentText("Stroma")
    dock.reclassify_button.click()
    dock.autosave_now()  # what the dock's timer does every NSCLC_AUTOSAVE_SECONDS
    assert "autosaved" in dock.status.text() and asked == []
    edited = dock.nuclei.codes.copy()
    viewer.close()  # a crash: nothing saved

    viewer, dock, _ = _open(make_napari_viewer, path)
    assert [key for key, _ in asked] == ["restore"] and "2,000 nuclei edited in fov" in asked[0][1]
    np.testing.assert_array_equal(dock.nuclei.codes, edited)
    assert [dock.legend.item(row, 1).text() for row in range(3)] == ["0", "2,000", "4,000"]
    saved = dock.save(tmp_path / "fov.corrected.geojson", "geojson")
    assert saved.exists() and dock.autosaver.unfinished() is None
