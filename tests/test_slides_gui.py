"""Slides in a real napari viewer: File > Open path, first view, alignment, bad files.

Run under ``xvfb-run -a``. The slide is synthetic (``testing.slides.build_wsi``:
a 4096 x 4096 SVS-like pyramid at 0.25 um/px with a same-named ASAP file).
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_nsclc.testing import slides as builders


@pytest.fixture(scope="module")
def wsi(tmp_path_factory):
    return builders.build_wsi(tmp_path_factory.mktemp("gui_wsi"))


def test_open_slide_shows_multiscale_image_and_aligned_annotations(make_napari_viewer, wsi, chunk_reads, qtbot):
    viewer = make_napari_viewer(show=True)
    layers = viewer.open(wsi, plugin="napari-nsclc")
    assert [layer.name for layer in layers] == ["slide", "ASAP polygons", "ASAP points"]
    image, polygons, points = layers
    assert image.multiscale and image.rgb
    assert [level.shape for level in image.data] == [(4096, 4096, 3), (2048, 2048, 3), (1024, 1024, 3)]
    assert tuple(image.scale) == (0.25, 0.25)
    assert tuple(image.contrast_limits) == (0, 255)
    viewer.reset_view()
    screenshot = viewer.screenshot(canvas_only=True)
    qtbot.wait(50)
    assert screenshot.shape[2] == 4 and screenshot[..., :3].std() > 5  # tissue, not a blank canvas

    # the first view decodes tiles of the overview level only, never level 0
    levels_read = {key.split("/")[0] for key in chunk_reads}
    assert levels_read == {"2"}
    # level 2 holds 16 tiles, each decoded once (the reader's probe at open is cached)
    assert sorted(chunk_reads) == sorted(f"2/{row}.{col}" for row in range(4) for col in range(4))

    # polygons and points sit on the same world grid as the slide: pixel (y, x) -> (0.25 y, 0.25 x) um
    assert tuple(polygons.scale) == tuple(points.scale) == (0.25, 0.25)
    vertex = polygons.data[0][0]
    assert np.allclose(polygons.data_to_world(vertex), image.data_to_world(vertex))
    assert np.allclose(polygons.data_to_world(vertex), vertex * 0.25)
    assert polygons.features["class"].tolist() == ["_0", "_0", "_2"]
    assert points.features["class"].tolist() == ["_1"]


def test_zooming_in_reads_level0_tiles_in_view_only(make_napari_viewer, wsi, chunk_reads):
    viewer = make_napari_viewer(show=True)
    (image, *_rest) = viewer.open(wsi, plugin="napari-nsclc")
    chunk_reads.clear()
    # centre on a 200 um (800 px) wide field and zoom so level 0 is used
    viewer.scene.camera.center = (512.0, 512.0)  # viewer.camera is deprecated since napari 0.9
    viewer.scene.camera.zoom = 4.0
    viewer.screenshot(canvas_only=True)
    level0 = [key for key in chunk_reads if key.startswith("0/")]
    assert level0, "zoomed in, napari should read level 0"
    assert len(level0) < 0.1 * 16 * 16  # a small fraction of the 256 level-0 tiles


def test_bad_slide_raises_and_keeps_open_layers(make_napari_viewer, wsi, tmp_path):
    viewer = make_napari_viewer(show=True)
    viewer.open(wsi, plugin="napari-nsclc")
    broken = tmp_path / "broken.svs"
    broken.write_bytes(wsi.read_bytes()[:5000])
    with pytest.raises(Exception, match="broken.svs"):
        viewer.open(broken, plugin="napari-nsclc")
    assert [layer.name for layer in viewer.layers] == ["slide", "ASAP polygons", "ASAP points"]


def test_slide_with_mask_pyramid_shows_aligned_multiscale_labels(make_napari_viewer, tmp_path):
    tissue = builders.synthetic_tissue((1024, 1024), seed=2)
    slide_path = builders.write_camelyon_like(tmp_path / "tumor_003.tif", tissue, tile=256, mpp=0.5)
    mask = np.zeros((1024, 1024), np.uint8)
    mask[200:400, 600:900] = 1
    builders.write_mask_pyramid(tmp_path / "tumor_003_mask.tif", mask, mpp=0.5)
    viewer = make_napari_viewer(show=True)
    image, labels = viewer.open(slide_path, plugin="napari-nsclc")
    assert labels.name == "tumor_003_mask mask" and labels.multiscale
    assert [level.shape for level in labels.data] == [(1024, 1024), (512, 512), (256, 256)]
    assert tuple(labels.scale) == tuple(image.scale) == (0.5, 0.5)
    # the mask's tumour pixel (300, 700) is at the same world point as the slide's pixel (300, 700)
    assert np.allclose(labels.data_to_world((300, 700)), image.data_to_world((300, 700)))
    assert labels.get_value(labels.data_to_world((300, 700)), world=True)[1] == 1
    assert labels.colormap.map(np.array([1]))[0][:3].tolist() == [1.0, 0.0, 0.0]


def test_real_asap_opens_and_saves_back_through_napari(make_napari_viewer, samples, tmp_path):
    source = samples / "camelyon17/patient_004_node_4.xml"
    viewer = make_napari_viewer()
    (polygons,) = viewer.open(source, plugin="napari-nsclc")
    assert polygons.name == "ASAP polygons" and len(polygons.data) == 3
    # level-0 pixels (y, x); no slide next to the file, so the scale is 1 pixel
    # the file's Y=88778.1016 X=12711.2998 - 0.5: ASAP has a pixel-corner origin (model.py conventions)
    assert polygons.data[0][0] == pytest.approx([88777.6016, 12710.7998])  # napari keeps float32
    # what File > Save Layers... does when the user picks "ASAP (*.xml)" in the dialog
    from napari.plugins.io import save_layers
    from npe2 import PluginManager

    manifest = PluginManager.instance().get_manifest("napari-nsclc")
    (asap_writer,) = [w for w in manifest.contributions.writers if w.command == "napari-nsclc.write_asap"]
    target = tmp_path / "saved.xml"
    save_layers(str(target), list(viewer.layers), plugin="napari-nsclc", _writer=asap_writer)
    # napari holds vertices as float32; ASAP's numbers are float32 too, so the bytes survive
    assert target.read_bytes() == source.read_bytes()
