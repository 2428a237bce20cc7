"""``napari-nsclc demo``: an NSCLC-NAT dataset on real tissue, opened in a window that explains itself.

The dataset is built headless and read back through the registry like a
user's; the window is checked as a first-time user sees it: NSCLC-NAT's
layers first, the canvas filled by the tissue, a legend for every layer that
shows classes, previous/next buttons beside "case i of n", and "none" where
no problem was found.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from napari_nsclc import demo, registry
from napari_nsclc.datasets.nsclc_nat import NAT_SCHEMA
from napari_nsclc.testing import all_builders

NAT_LAYERS = ["1 image", "tumour bed (SegmentationClass)", "expert mask (Mask)"]


@pytest.fixture(scope="module")
def nat(tmp_path_factory):
    return demo.build_demo_nat(tmp_path_factory.mktemp("demo") / "nsclc-nat")


def _pixels(array_like) -> np.ndarray:
    return np.asarray(array_like)


# --------------------------------------------------------------------------- the dataset (headless)


def test_the_demo_dataset_reads_as_nsclc_nat_with_every_case(nat):
    spec = registry.detect(nat)
    assert spec.name == "nsclc-nat"
    cases = registry.read(nat)
    assert [case.name for case in cases] == [case.stem for case in demo.DEMO_CASES]
    assert all(case.provenance.warnings == [] for case in cases)
    assert {case.provenance.details["mask_encoding"] for case in cases} == {"binary 0/255"}
    assert sorted(p.name for p in (nat / "Images").iterdir()) == ["1.png", "2.png", "3.png", "4.jpg"]


@pytest.mark.parametrize("number", range(len(demo.DEMO_CASES)))
def test_each_case_has_a_tumour_bed_within_the_schema_the_size_of_its_image(nat, number):
    case = registry.read(nat)[number]
    image = _pixels(case.image.data)
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
    assert [mask.name for mask in case.masks] == ["tumour bed (SegmentationClass)", "expert mask (Mask)"]
    segmentation, expert = (_pixels(mask.data) for mask in case.masks)
    for mask in (segmentation, expert):
        assert mask.shape == image.shape[:2]
        assert set(np.unique(mask).tolist()) == {0, 1} <= {0, *NAT_SCHEMA.codes}
        assert 0.1 < mask.mean() < 0.9  # a bed and tissue around it, neither empty nor everything
    np.testing.assert_array_equal(segmentation, expert)  # one bed, in the two encodings
    np.testing.assert_array_equal(segmentation, demo.case_mask(demo.DEMO_CASES[number]))


def test_the_images_are_the_real_tissue_scikit_image_ships_cut_flipped_and_turned(nat):
    from skimage import data

    tissue = data.immunohistochemistry()
    images = {case.name: _pixels(case.image.data) for case in registry.read(nat)}
    np.testing.assert_array_equal(images["1"], demo.he_rendering(tissue))
    np.testing.assert_array_equal(images["2"], tissue[:, ::-1])  # the mirrored copy, pixel for pixel
    np.testing.assert_array_equal(images["3"], demo.he_rendering(np.rot90(tissue[64:512, 0:384])))
    jpeg = np.rot90(tissue[0:416, 96:512], 2)[:, ::-1].astype(int)
    assert images["4"].shape == jpeg.shape and np.abs(images["4"].astype(int) - jpeg).mean() < 3  # lossy JPEG


def test_the_h_and_e_rendering_keeps_the_tissue_and_changes_only_its_colours():
    from skimage import color, data

    tissue = data.immunohistochemistry()
    rendered = demo.he_rendering(tissue)
    # nuclei stay where they were: the haematoxylin densities of both images go together
    before, after = (color.rgb2hed(image)[..., 0].ravel() for image in (tissue, rendered))
    assert np.corrcoef(before, after)[0, 1] > 0.9
    # and the tissue is pink and purple, not brown: red and blue over green
    stained = demo._optical_density(rendered) > 0.5
    red, green, blue = (rendered[..., c][stained].mean() for c in range(3))
    assert red > green and blue > green


def test_the_tumour_bed_is_where_the_tumour_glands_are_stained():
    from skimage import color, data

    tissue = data.immunohistochemistry()
    bed = demo.tumour_bed(tissue)
    dab = color.rgb2hed(tissue)[..., 2]
    assert dab[bed].mean() > 2 * dab[~bed].mean()
    from scipy import ndimage

    _labels, regions = ndimage.label(bed)
    assert 2 <= regions <= 8  # a few glands, outlined as regions, not specks


def test_the_demo_writes_nsclc_nat_first_and_every_other_layout(tmp_path):
    datasets = demo.build_demo_datasets(tmp_path)
    assert list(datasets)[0] == demo.DEMO_FIRST_LAYOUT == "nsclc-nat"
    assert set(datasets) == set(all_builders())
    assert registry.detect(datasets["nsclc-nat"]).name == "nsclc-nat"
    assert len(registry.read(datasets["nsclc-nat"])) == len(demo.DEMO_CASES)
    for name, path in datasets.items():
        assert path.exists() and tmp_path in path.parents, name


def test_building_the_demo_loads_neither_napari_nor_qt(tmp_path):
    code = (
        "import json, sys\n"
        "from napari_nsclc import demo\n"
        f"demo.build_demo_nat({str(tmp_path / 'nat')!r})\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)
    gui = [m for m in loaded if m.split(".")[0] in ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "vispy")]
    assert gui == []


# --------------------------------------------------------------------------- the window


def _process_events(qtbot, ms: int = 50) -> None:
    qtbot.wait(ms)


@pytest.fixture
def demo_window(make_napari_viewer, qtbot, tmp_path):
    from napari_nsclc.widgets.case_info import CaseInfoWidget

    viewer = make_napari_viewer(show=True)
    datasets = demo.build_demo_datasets(tmp_path)
    browser = demo.show(viewer, datasets, size=demo.SCREENSHOT_SIZE)
    _process_events(qtbot)
    info = next(w for w in viewer.window.dock_widgets.values() if isinstance(w, CaseInfoWidget))
    return viewer, browser, info, datasets


def _legend(info) -> list[str]:
    return [info.legend.item(row, 0).text() for row in range(info.legend.rowCount())]


def test_the_demo_opens_on_nsclc_nat_with_its_image_and_masks(demo_window):
    from napari.layers import Image, Labels

    viewer, browser, _info, datasets = demo_window
    assert browser.list.currentItem().text() == "nsclc-nat"
    assert [layer.name for layer in viewer.layers] == NAT_LAYERS
    assert [type(layer) for layer in viewer.layers] == [Image, Labels, Labels]
    assert {layer.metadata["nsclc"]["dataset"]["source"] for layer in viewer.layers} == {str(datasets["nsclc-nat"])}
    np.testing.assert_array_equal(np.asarray(viewer.layers[0].data), demo.case_image(demo.DEMO_CASES[0]))
    assert viewer.layers.selection.active is viewer.layers[1]  # the tumour bed, ready to correct
    assert all(layer.contour > 0 and layer.visible for layer in viewer.layers[1:])  # outlined over the tissue


def test_the_canvas_is_fitted_to_the_tissue(demo_window):
    viewer, _browser, _info, _datasets = demo_window
    image = viewer.layers[0]
    low, high = np.asarray(image.extent.world)[:, -2:]
    camera = viewer.scene.camera
    half = np.asarray(viewer.canvas.size) / camera.zoom / 2  # (height, width) of the view in world units, halved
    center = np.asarray(camera.center)[-2:]
    assert np.all(center - half <= low) and np.all(high <= center + half)  # the whole image is in view
    assert np.max((high - low) / (2 * half)) > 0.85  # and fills the canvas along one side
    # what the canvas really shows: tissue, not a black band over a third of it
    pixels = viewer.screenshot(canvas_only=True, flash=False)
    black = np.all(pixels[..., :3] < 10, axis=-1)
    assert black.mean() < 1 / 3
    rows, cols = np.nonzero(~black)
    height, width = black.shape
    assert abs((rows.min() + rows.max()) / 2 - height / 2) < 0.05 * height  # centred, not pushed to one side
    assert abs((cols.min() + cols.max()) / 2 - width / 2) < 0.05 * width


def test_every_layer_that_shows_classes_has_a_legend(demo_window, qtbot):
    from napari.layers import Labels, Points

    viewer, browser, info, _datasets = demo_window
    assert info.isVisible() and info.legend.isVisible() and info.table.isVisible()
    assert [info.table.item(row, 0).text() for row in range(info.table.rowCount())] == ["tumour bed"]
    assert _legend(info) == ["expert mask (Mask)", "tumour bed"]
    pixels = int((np.asarray(viewer.layers[2].data) == 1).sum())
    assert info.legend.item(1, 1).text() == str(pixels)
    assert info.legend.item(1, 0).background().color().name() == "#ff7f0e"  # the tumour bed's colour on the canvas
    # OCELOT: the tissue map's classes are listed beside the cells', whichever layer is selected
    browser.open_dataset("ocelot")
    _process_events(qtbot)
    cells = next(layer for layer in viewer.layers if isinstance(layer, Points))
    tissue = next(layer for layer in viewer.layers if isinstance(layer, Labels))
    viewer.layers.selection.active = cells
    _process_events(qtbot)
    shown_classes = set(cells.features["class"])
    assert {info.table.item(row, 0).text() for row in range(info.table.rowCount())} == shown_classes
    schema = tissue.metadata["nsclc"]["schema"]
    legend = _legend(info)
    assert legend[0] == tissue.name
    present = set(legend[1:])
    assert present and present <= set(schema.names)
    painted = set(np.unique(np.asarray(tissue.data)).tolist()) - {schema.background}
    assert {schema.code_of(name) for name in present} == painted  # each colour on the canvas, named


def test_navigation_buttons_sit_beside_case_i_of_n_and_move_the_case(demo_window, qtbot):
    viewer, _browser, info, _datasets = demo_window
    count = len(demo.DEMO_CASES)
    assert info.position.text() == f"case 1 of {count}"
    assert info.previous_button.isVisible() and info.next_button.isVisible()
    assert not info.previous_button.isEnabled() and info.next_button.isEnabled()
    info.next_button.click()
    _process_events(qtbot)
    assert info.position.text() == f"case 2 of {count}"
    assert viewer.layers[0].name == "2 image"
    np.testing.assert_array_equal(np.asarray(viewer.layers[0].data), demo.case_image(demo.DEMO_CASES[1]))
    assert all(layer.contour > 0 for layer in viewer.layers[1:])  # the next case is outlined too
    info.previous_button.click()
    _process_events(qtbot)
    assert info.position.text() == f"case 1 of {count}"
    # the Cases dock says it too, under its own buttons
    from napari_nsclc.widgets.case_navigator import CaseNavigator

    cases = next(w for w in viewer.window.dock_widgets.values() if isinstance(w, CaseNavigator))
    assert cases.status.text().startswith(f"case 1 of {count}")
    layout = cases.layout()
    rows = [layout.itemAt(i) for i in range(layout.count())]
    status_row = next(i for i, item in enumerate(rows) if item.widget() is cases.status)
    assert rows[status_row - 1].layout() is not None  # right under the previous/next buttons
    assert rows[status_row - 1].layout().indexOf(cases.next_button) >= 0


def test_an_empty_problems_box_says_none_and_units_read_as_the_scale_bar_does(demo_window, qtbot):
    viewer, browser, info, _datasets = demo_window
    assert [info.warnings.item(row).text() for row in range(info.warnings.count())] == ["none"]
    browser.open_dataset("ocelot")  # in micrometres
    _process_events(qtbot)
    assert "µm" in info.summary.text() and " um" not in info.summary.text()


def test_case_information_alone_docks_the_cases_dock_to_step_through_a_dataset(make_napari_viewer, qtbot, tmp_path):
    """Opened from Plugins > NSCLC annotation without the Cases dock, its buttons still work."""
    from napari_nsclc.testing import build
    from napari_nsclc.widgets.case_info import CaseInfoWidget
    from napari_nsclc.widgets.case_navigator import CaseNavigator

    viewer = make_napari_viewer(show=True)
    info = CaseInfoWidget(viewer)
    viewer.window.add_dock_widget(info, name="Case information", area="right")
    viewer.open(str(build("nsclc-nat", tmp_path)), plugin="napari-nsclc")
    _process_events(qtbot)
    assert info.position.text() == "case 1 of 3" and info.next_button.isVisible()
    assert not any(isinstance(w, CaseNavigator) for w in viewer.window.dock_widgets.values())
    info.next_button.click()
    _process_events(qtbot)
    assert info.position.text() == "case 2 of 3" and viewer.layers[0].name == "2 image"
    assert any(isinstance(w, CaseNavigator) for w in viewer.window.dock_widgets.values())
    # an OCELOT sample's two patches are one scene: no "next" to go to
    viewer.layers.clear()
    viewer.open(str(build("ocelot", tmp_path)), plugin="napari-nsclc")
    _process_events(qtbot)
    assert not info.next_button.isEnabled() and not info.previous_button.isEnabled()
