"""The plugin as napari sees it: File > Open, samples, the generic docks, the demo."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from napari_nsclc import registry
from napari_nsclc.testing import all_builders, build

PLUGIN = "napari-nsclc"


@pytest.mark.parametrize("layout", sorted(all_builders()))
def test_every_layout_opens_in_napari_with_classes(make_napari_viewer, tmp_path, layout):
    path = build(layout, tmp_path)
    cases = registry.read(path)
    viewer = make_napari_viewer()
    layers = viewer.open(str(path), plugin=PLUGIN)
    assert layers, f"{layout}: no layers"
    annotation_layers = [layer for layer in layers if type(layer).__name__.lower() in ("labels", "points", "shapes")]
    scene = [case for case in cases if case is cases[0] or (case.group is not None and case.group == cases[0].group)]
    expected = [(obj, case) for case in scene for obj in (*case.masks, *case.polygons, *case.boxes, *case.points)]
    names = [obj.name for obj, _ in expected]  # a name shared in the scene gets its series/patch: no "[1]"
    assert [layer.name for layer in annotation_layers] == [
        f"{obj.name} ({case.image.name})" if names.count(obj.name) > 1 else obj.name for obj, case in expected]
    for layer in annotation_layers:
        assert "class" in layer.features.columns, layer.name
        schema = layer.metadata["nsclc"]["schema"]
        if type(layer).__name__.lower() == "labels" and layer.metadata["nsclc"]["extra"]["mask_kind"] == "semantic":
            assert layer.features["index"].tolist() == schema.codes
            for info in schema.classes:
                if info.code != schema.background and info.color[3] > 0:
                    np.testing.assert_allclose(layer.colormap.map(np.array([info.code]))[0], info.color, atol=1e-6)
        elif type(layer).__name__.lower() == "points" and len(layer.data):
            first_class = str(layer.features["class"][0])
            np.testing.assert_allclose(layer.face_color[0], schema.color_of(first_class), atol=1e-6)
    dataset = layers[0].metadata["nsclc"]["dataset"]
    assert dataset == {"source": str(path), "index": 0, "count": len(cases)}


def test_reader_declines_what_it_cannot_read(tmp_path):
    from napari_nsclc._reader import get_reader

    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    assert get_reader(str(notes)) is None
    assert get_reader(str(tmp_path / "missing.png")) is None


def test_demo_sample_has_image_labels_and_points(monkeypatch, tmp_path):
    import tempfile

    from napari_nsclc._sample_data import demo_sample

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the sample's folder goes to tmp_path, not /tmp
    layer_types = [layer_type for _, _, layer_type in demo_sample()]
    assert [p.name.startswith("napari-nsclc-ocelot-") for p in tmp_path.iterdir()] == [True]
    assert layer_types[0] == "image"
    assert "labels" in layer_types and "points" in layer_types


def test_case_information_dock_shows_counts_and_follows_edits(make_napari_viewer, tmp_path):
    from napari_nsclc.widgets.case_info import CaseInfoWidget

    viewer = make_napari_viewer()
    widget = CaseInfoWidget(viewer)
    layers = viewer.open(str(build("ignite-pdl1", tmp_path)), plugin=PLUGIN)
    points = next(layer for layer in layers if type(layer).__name__.lower() == "points")
    viewer.layers.selection.active = points
    table = {widget.table.item(r, 0).text(): int(widget.table.item(r, 1).text()) for r in range(widget.table.rowCount())}
    assert table == dict(points.features["class"].value_counts().sort_index().items()) | table
    assert sum(table.values()) == len(points.data)
    before = sum(table.values())
    points.add([[1.0, 1.0]])
    assert sum(int(widget.table.item(r, 1).text()) for r in range(widget.table.rowCount())) == before + 1


def test_dataset_browser_switches_datasets(make_napari_viewer, tmp_path):
    from napari_nsclc.widgets.dataset_browser import DatasetBrowser

    viewer = make_napari_viewer()
    browser = DatasetBrowser(viewer)
    datasets = {"masks": build("masks", tmp_path), "coco": build("coco", tmp_path)}
    browser.set_datasets(datasets)
    browser.open_dataset("masks")
    assert [type(layer).__name__.lower() for layer in viewer.layers] == ["image", "labels"]
    browser.list.setCurrentRow(1)  # the user clicks "coco"
    coco = registry.read(datasets["coco"])[0]
    expected = [obj.name for obj in [*coco.masks, *coco.polygons, *coco.boxes, *coco.points]]
    assert [layer.name for layer in viewer.layers if type(layer).__name__.lower() != "image"] == expected
    assert {layer.metadata["nsclc"]["dataset"]["source"] for layer in viewer.layers} == {str(datasets["coco"])}


@pytest.mark.gui
def test_demo_command_opens_a_window_on_nsclc_nat_with_an_image_and_its_masks(tmp_path):
    screenshot = tmp_path / "demo.png"
    result = subprocess.run(
        [sys.executable, "-m", "napari_nsclc.cli", "demo", "--folder", str(tmp_path / "data"), "--screenshot",
         str(screenshot)],
        capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    shown = next(line for line in result.stdout.splitlines() if line.startswith("showing "))
    assert shown == ("showing nsclc-nat: image '1 image', labels 'tumour bed (SegmentationClass)', "
                     "labels 'expert mask (Mask)'")  # fmt: skip
    for name in all_builders():
        assert (tmp_path / "data" / name).exists(), name
    from skimage.io import imread

    pixels = imread(screenshot)
    assert pixels.shape[0] >= 800 and pixels.shape[1] >= 1200
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1])[:, :3], axis=0)) > 100  # a real picture, not a blank


def test_an_image_and_its_mask_named_together_open_as_one_case(make_napari_viewer, tmp_path):
    from skimage.io import imsave

    image = np.zeros((20, 30, 3), np.uint8)
    image[..., 0] = 200
    mask = np.zeros((20, 30), np.uint8)
    mask[5:10, 5:20] = 3
    imsave(tmp_path / "slide.jpg", image, check_contrast=False)
    imsave(tmp_path / "slide_mask.png", mask, check_contrast=False)
    from napari_nsclc._reader import add_to_viewer, is_image_mask_pair, read_image_mask_pair_layers

    paths = [str(tmp_path / "slide.jpg"), str(tmp_path / "slide_mask.png")]
    assert is_image_mask_pair(paths)
    assert not is_image_mask_pair(paths[::-1])  # the image comes first, as in `napari-nsclc open IMAGE MASK`
    viewer = make_napari_viewer()
    layers = add_to_viewer(viewer, read_image_mask_pair_layers(paths))
    assert [type(layer).__name__.lower() for layer in layers] == ["image", "labels"]
    assert layers[0].data.shape == (20, 30, 3)
    np.testing.assert_array_equal(layers[1].data, mask)


def test_pcam_labels_paint_in_napari_and_save_as_corrections(make_napari_viewer, tmp_path):
    """PCam's per-patch tumour label is a Labels stack: painting a patch flips its label."""
    import hashlib

    import h5py

    from napari_nsclc.layers import layer_data_to_case

    path = build("pcam", tmp_path)
    y_file = path.with_name(path.name.replace("_x.h5", "_y.h5"))
    checksum = hashlib.sha256(y_file.read_bytes()).hexdigest()
    with h5py.File(y_file) as f:
        before = f["y"][:].ravel()
    viewer = make_napari_viewer()
    layers = viewer.open(str(path), plugin=PLUGIN)
    labels = next(layer for layer in layers if type(layer).__name__.lower() == "labels")
    assert isinstance(labels.data, np.ndarray)  # paintable, not a read-only lazy stack
    patch = int(np.flatnonzero(before == 0)[0])
    labels.data[patch, 32:64, 32:64] = 1  # mark the patch's centre as tumour
    labels.refresh()
    case = layer_data_to_case([layer.as_layer_data_tuple() for layer in viewer.layers])
    written = registry.write([case], tmp_path / "corrected_y.h5", "pcam")
    with h5py.File(written[0]) as f:
        after = f["y"][:].ravel()
    expected = before.copy()
    expected[patch] = 1
    np.testing.assert_array_equal(after, expected)
    assert hashlib.sha256(y_file.read_bytes()).hexdigest() == checksum


def test_open_command_shows_the_first_case_and_docks_the_case_list(tmp_path):
    path = build("nsclc-nat", tmp_path)
    script = (
        "import sys, napari\n"
        "from napari_nsclc import cli\n"
        "def report():\n"
        "    viewer = napari.current_viewer()\n"
        "    cases = viewer.window._dock_widgets['Cases'].widget()\n"
        "    print('layers=' + '|'.join(layer.name for layer in viewer.layers))\n"
        "    print('cases=' + str(cases.list.count()))\n"
        "napari.run = report\n"
        f"sys.exit(cli.main(['open', {str(path)!r}]))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    cases = registry.read(path)
    assert lines["cases"] == str(len(cases))
    expected = [cases[0].image.name, *(mask.name for mask in cases[0].masks)]
    assert lines["layers"].split("|") == expected
