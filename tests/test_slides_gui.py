"""Slides in a real napari viewer: File > Open path, first view, alignment, bad files.

Run under ``xvfb-run -a``. The slide is synthetic (``testing.slides.build_wsi``:
a 4096 x 4096 SVS-like pyramid at 0.25 um/px with a same-named ASAP file).
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_nsclc.formats.slide import TILE_CACHE, TiledLevel
from napari_nsclc.testing import slides as builders


@pytest.fixture(scope="module")
def wsi(tmp_path_factory):
    return builders.build_wsi(tmp_path_factory.mktemp("gui_wsi"))


@pytest.fixture
def chunk_reads(monkeypatch):
    """Every tile decoded from the file, as ``"<level>/<row>.<col>"`` (level 0 = finest of a 4096 slide)."""
    keys: list[str] = []
    original = TiledLevel.decode_tile
    TILE_CACHE.clear()

    def counting_decode(self, index, offset, count):
        level = {4096: 0, 2048: 1, 1024: 2}.get(self.shape[0], self.shape[0])
        keys.append(f"{level}/{index // self.grid[1]}.{index % self.grid[1]}")
        return original(self, index, offset, count)

    monkeypatch.setattr(TiledLevel, "decode_tile", counting_decode)
    yield keys
    TILE_CACHE.clear()


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
    viewer.camera.center = (512.0, 512.0)
    viewer.camera.zoom = 4.0
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
