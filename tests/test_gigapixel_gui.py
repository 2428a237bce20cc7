"""Region editing of a label pyramid in a real napari viewer (under Xvfb).

The slide is synthetic (``testing.slides.build_wsi``: 4096 x 4096 at 0.25 µm/px
with a same-named ASAP file); its label pyramid is created next to it.
"""

from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Labels

from napari_nsclc.formats.slide import CAMELYON_MASK_SCHEMA
from napari_nsclc.label_pyramid import LabelPyramid
from napari_nsclc.label_pyramid.editing import pyramid_path_for
from napari_nsclc.testing import slides as builders
from napari_nsclc.widgets.gigapixel import RECTANGLE_LAYER, LabelPyramidWidget


@pytest.fixture
def wsi(tmp_path, monkeypatch):
    monkeypatch.setenv("NSCLC_ANNOTATOR", "alice")
    return builders.build_wsi(tmp_path)


def _labels(viewer) -> list[Labels]:
    return [layer for layer in viewer.layers if isinstance(layer, Labels)]


def test_a_slide_without_a_pyramid_offers_to_create_one_from_what_lies_beside_it(make_napari_viewer, wsi, qtbot):
    viewer = make_napari_viewer(show=True)
    dock = LabelPyramidWidget(viewer)
    viewer.window.add_dock_widget(dock)
    viewer.open(wsi, plugin="napari-nsclc")
    assert dock.create_box.isVisible()
    offered = [dock.source.itemText(i) for i in range(dock.source.count())]
    assert offered == ["nothing: start empty", "the ASAP XML (slide.xml)"]
    dock.source.setCurrentIndex(1)
    dock.create_button.click()
    pyramid = LabelPyramid.open(pyramid_path_for(wsi))
    assert pyramid.shape == (4096, 4096) and pyramid.pixel_size == (0.25, 0.25)
    assert pyramid.read_region(0, 0, 0, 4096, 4096).any()  # the ASAP tumour polygons, rasterised
    layer = dock.pyramid_layer
    assert layer.multiscale and [level.shape for level in layer.data] == [(4096, 4096), (2048, 2048), (1024, 1024)]
    assert tuple(layer.scale) == (0.25, 0.25) and not dock.create_box.isVisible()


def test_creating_from_a_file_asks_a_new_user_their_name_once(make_napari_viewer, wsi, qtbot, monkeypatch, tmp_path):
    monkeypatch.delenv("NSCLC_ANNOTATOR")
    monkeypatch.setenv("NSCLC_CONFIG_DIR", str(tmp_path / "config"))  # a first run: nobody named yet
    asked = []
    monkeypatch.setattr("napari_nsclc.widgets._questions.ask", lambda parent, key, *rest: asked.append(key) or "carol")
    viewer = make_napari_viewer(show=True)
    dock = LabelPyramidWidget(viewer)
    viewer.window.add_dock_widget(dock)
    viewer.open(wsi, plugin="napari-nsclc")
    dock.source.setCurrentIndex(1)  # the ASAP XML
    dock.create_button.click()
    assert asked == ["annotator"]
    assert [event["annotator"] for event in LabelPyramid.open(pyramid_path_for(wsi)).history()] == ["carol"]


def test_a_mask_of_another_size_is_refused_and_no_pyramid_is_left(make_napari_viewer, wsi, qtbot, monkeypatch):
    builders.write_mask_pyramid(wsi.with_name("slide_mask.tif"), np.ones((2048, 4096), np.uint8), n_levels=2)
    errors = []
    monkeypatch.setattr("napari_nsclc.widgets.gigapixel.show_error", errors.append)
    viewer = make_napari_viewer(show=True)
    dock = LabelPyramidWidget(viewer)
    viewer.window.add_dock_widget(dock)
    viewer.open(wsi, plugin="napari-nsclc")
    offered = [dock.source.itemText(i) for i in range(dock.source.count())]
    dock.source.setCurrentIndex(next(i for i, text in enumerate(offered) if "slide_mask.tif" in text))
    dock.create_button.click()
    assert len(errors) == 1 and "slide_mask.tif" in errors[0] and "is 4096x2048 px at level 0" in errors[0]
    assert not pyramid_path_for(wsi).exists() and dock.create_box.isVisible() and dock.pyramid_layer is None


def test_edit_what_i_see_paint_commit_and_the_overview_shows_it(make_napari_viewer, wsi, qtbot):
    LabelPyramid.create(pyramid_path_for(wsi), (4096, 4096), pixel_size=(0.25, 0.25), unit="um",
                                  schema=CAMELYON_MASK_SCHEMA)
    viewer = make_napari_viewer(show=True)
    dock = LabelPyramidWidget(viewer)
    viewer.window.add_dock_widget(dock)
    viewer.open(wsi, plugin="napari-nsclc")
    assert dock.pyramid_layer is not None and not dock.create_box.isVisible()
    # zoomed in on (y, x) = (512, 768) µm: the canvas shows a few hundred µm
    viewer.scene.camera.center = (512.0, 768.0)
    viewer.scene.camera.zoom = 4.0  # screen pixels per µm
    dock.edit_view.click()
    region = dock.region_layer
    assert region is not None and viewer.layers.selection.active is region and region.mode == "paint"
    edit = dock.editor.current
    height, width = (size / 4.0 for size in viewer.canvas.size)
    assert abs((edit.y1 - edit.y0) * 0.25 - height) <= 1 and abs((edit.x1 - edit.x0) * 0.25 - width) <= 1
    assert tuple(region.translate) == (edit.y0 * 0.25, edit.x0 * 0.25) and tuple(region.scale) == (0.25, 0.25)
    # napari's own brush (paint) and the data_setitem its tools use, in the layer's data coordinates
    region.selected_label, region.brush_size = 1, 9
    region.paint((80, 120), 1)
    region.data_setitem(tuple(np.mgrid[10:30, 20:50].reshape(2, -1)), 1)
    painted = np.asarray(region.data).copy()
    assert (painted[10:30, 20:50] == 1).all() and painted[80, 120] == 1 and painted[80, 126] == 0
    dock.commit_button.click()
    assert dock.region_layer is None and region not in viewer.layers
    pyramid = LabelPyramid.open(pyramid_path_for(wsi))
    np.testing.assert_array_equal(pyramid.read_region(0, edit.y0, edit.x0, edit.y1, edit.x1), painted)
    assert pyramid.history()[-1]["annotator"] == "alice"
    assert dock.status.text().startswith(f"Committed {int((painted != edit.original).sum()):,} px changed (tumor")
    # the multiscale layer reads the new chunks: its level-1 view of the region holds the tumour too
    level1 = np.asarray(dock.pyramid_layer.data[1][(edit.y0 + 10) // 2 : (edit.y0 + 30) // 2,
                                                   (edit.x0 + 20) // 2 : (edit.x0 + 50) // 2])  # fmt: skip
    assert (level1 == 1).any()


def test_painting_is_autosaved_and_the_next_window_reopens_it_as_painted(make_napari_viewer, wsi, qtbot):
    LabelPyramid.create(pyramid_path_for(wsi), (4096, 4096), pixel_size=(0.25, 0.25), unit="um",
                        schema=CAMELYON_MASK_SCHEMA)  # fmt: skip
    viewer = make_napari_viewer(show=True)
    dock = LabelPyramidWidget(viewer)
    viewer.window.add_dock_widget(dock)
    viewer.open(wsi, plugin="napari-nsclc")
    viewer.scene.camera.center, viewer.scene.camera.zoom = (512.0, 768.0), 4.0
    dock.edit_view.click()
    dock.region_layer.data_setitem(tuple(np.mgrid[10:30, 20:50].reshape(2, -1)), 1)
    painted, edit = np.asarray(dock.region_layer.data).copy(), dock.editor.current
    dock.autosave_timer.setInterval(50)
    qtbot.waitUntil(lambda: dock.editor.autosave_path.is_file(), timeout=5000)
    # that window is lost without a commit; the next one shows the region again, painted, ready to commit
    second = make_napari_viewer(show=True)
    again = LabelPyramidWidget(second)
    second.window.add_dock_widget(again)
    second.open(wsi, plugin="napari-nsclc")
    restored = again.editor.current
    assert (restored.y0, restored.x0, restored.y1, restored.x1) == (edit.y0, edit.x0, edit.y1, edit.x1)
    np.testing.assert_array_equal(np.asarray(again.region_layer.data), painted)
    assert again.status.text().startswith("Restored the region you were painting (autosaved 20")
    assert again.commit_button.isEnabled() and not again.edit_view.isEnabled()
    again.commit_button.click()
    pyramid = LabelPyramid.open(pyramid_path_for(wsi))
    np.testing.assert_array_equal(pyramid.read_region(0, edit.y0, edit.x0, edit.y1, edit.x1), painted)
    assert not again.editor.autosave_path.exists()


def test_a_rectangle_opens_its_region_and_discard_changes_nothing(make_napari_viewer, wsi, qtbot):
    pyramid = LabelPyramid.create(pyramid_path_for(wsi), (4096, 4096), pixel_size=(0.25, 0.25), unit="um",
                                  schema=CAMELYON_MASK_SCHEMA)
    viewer = make_napari_viewer(show=True)
    dock = LabelPyramidWidget(viewer, pyramid)
    dock.edit_box.click()
    shapes = viewer.layers[RECTANGLE_LAYER]
    assert shapes.mode == "add_rectangle"
    shapes.add_rectangles(np.array([[100.0, 200.0], [150.0, 260.0]]))  # µm, as if drawn
    edit = dock.editor.current
    assert (edit.y0, edit.x0, edit.y1, edit.x1) == (400, 800, 601, 1041)
    assert RECTANGLE_LAYER not in [layer.name for layer in viewer.layers]
    dock.region_layer.data_setitem(tuple(np.mgrid[0:50, 0:50].reshape(2, -1)), 2)
    dock.discard_button.click()
    assert dock.editor.current is None and dock.region_layer is None
    assert not LabelPyramid.open(pyramid.path).read_region(0, 0, 0, 4096, 4096).any()
    assert dock.status.text() == "Discarded: the pyramid is unchanged."


def test_a_region_larger_than_the_bound_is_refused_with_the_reason(make_napari_viewer, wsi, qtbot):
    pyramid = LabelPyramid.create(pyramid_path_for(wsi), (4096, 4096), pixel_size=(0.25, 0.25), unit="um",
                                  schema=CAMELYON_MASK_SCHEMA)
    viewer = make_napari_viewer(show=True)
    dock = LabelPyramidWidget(viewer, pyramid, max_side=1024)
    viewer.reset_view()  # the whole 1024 µm slide is in view: 4096 px a side
    dock.edit_view.click()
    assert dock.editor.current is None and dock.region_layer is None
    assert "px region is larger than the 1024x1024 px the editor opens at full resolution: zoom in" in \
        dock.status.text()  # fmt: skip


def test_the_mask_tools_work_on_the_open_region(make_napari_viewer, wsi, qtbot):
    from napari_nsclc.widgets.mask_tools import MaskToolsWidget

    pyramid = LabelPyramid.create(pyramid_path_for(wsi), (4096, 4096), pixel_size=(0.25, 0.25), unit="um",
                                  schema=CAMELYON_MASK_SCHEMA)
    viewer = make_napari_viewer(show=True)
    dock = LabelPyramidWidget(viewer, pyramid)
    tools = MaskToolsWidget(viewer)
    viewer.scene.camera.center = (200.0, 200.0)
    viewer.scene.camera.zoom = 8.0
    dock.edit_view.click()
    region = dock.region_layer
    ring = np.zeros(region.data.shape, bool)
    ring[20:60, 20:60] = True
    ring[30:50, 30:50] = False  # a hole
    region.data_setitem(tuple(np.nonzero(ring)), 1)
    region.selected_label = 1
    edit = dock.editor.current
    assert tools.fill_holes() == 400
    assert (np.asarray(region.data)[20:60, 20:60] == 1).all()
    dock.commit_button.click()
    committed = LabelPyramid.open(pyramid.path).read_region(0, edit.y0 + 20, edit.x0 + 20, edit.y0 + 60, edit.x0 + 60)
    assert (committed == 1).all()


def test_napari_ome_zarr_opens_the_pyramid_as_labels_with_the_schemas_colours(make_napari_viewer, tmp_path):
    """The OME's own napari plugin, not ours, reads what a commit wrote."""
    pyramid = LabelPyramid.create(tmp_path / "slide_labels.zarr", (3000, 2500), schema=CAMELYON_MASK_SCHEMA,
                                  pixel_size=(0.25, 0.25), unit="um")  # fmt: skip
    labels = np.zeros((1000, 1000), np.uint8)
    labels[100:600, 200:900] = 1
    labels[300:400, 300:400] = 2
    pyramid.commit(500, 700, labels, annotator="alice")
    viewer = make_napari_viewer()
    [layer] = viewer.open(str(pyramid.path), plugin="napari-ome-zarr")
    assert isinstance(layer, Labels) and layer.multiscale
    assert [tuple(level.shape) for level in layer.data] == [(3000, 2500), (1500, 1250), (750, 625)]
    assert tuple(layer.scale) == (0.25, 0.25)
    np.testing.assert_array_equal(np.asarray(layer.data[0][500:1500, 700:1700]), labels)
    np.testing.assert_allclose(layer.colormap.map(np.array([1, 2])), [[1, 0, 0, 1], [0, 1, 0, 1]])
    assert list(layer.properties["class"][:2]) == ["tumor", "exclusion"]
