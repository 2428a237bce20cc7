"""Segmentation layouts in a real napari viewer: layers, class tables, painting, corrections.

Run under ``xvfb-run -a``. Datasets are the synthetic fixtures of
napari_nsclc.testing.segmentation.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image

from napari_nsclc import registry
from napari_nsclc.datasets.ignite_he import IGNITE_HE_SCHEMA
from napari_nsclc.testing import build
from napari_nsclc.widgets.case_navigator import CaseNavigator


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def originals(root):
    return {p: sha256(p) for p in sorted(root.rglob("*")) if p.is_file() and "corrections" not in p.parts}


def test_nat_paint_export_reopen_compare(make_napari_viewer, tmp_path, qtbot):
    root = build("nsclc-nat", tmp_path)
    checksums = originals(root)
    viewer = make_napari_viewer()
    layers = viewer.open(root, plugin="napari-nsclc")
    assert [type(layer).__name__.lower() for layer in layers] == ["image", "labels", "labels"]
    seg = layers[1]
    assert set(np.unique(seg.data).tolist()) == {0, 1}
    assert seg.features.to_dict("list") == {"index": [1], "class": ["tumour bed"]}
    assert np.allclose(seg.colormap.map(0)[3], 0)  # background transparent

    navigator = CaseNavigator(viewer)
    assert [navigator.list.item(i).text() for i in range(navigator.list.count())] == ["1", "2", "3"]
    assert navigator.index == 0
    navigator.next_case()
    assert navigator.index == 1
    names = [layer.name for layer in viewer.layers]
    assert names == ["2 image", "tumour bed (SegmentationClass)", "expert mask (Mask)"]

    seg = viewer.layers["tumour bed (SegmentationClass)"]
    before_pixels = int((seg.data == 1).sum())
    seg.brush_size = 5
    seg.paint((10, 10), 1)  # a stroke of tumour bed where there was none
    seg.paint((10, 14), 1)
    painted = np.asarray(seg.data).copy()
    assert int((painted == 1).sum()) > before_pixels
    legend = {name: pixels for name, _code, _color, pixels in navigator.legend_rows()}
    assert legend == {"tumour bed": int((painted == 1).sum())}

    assert navigator.workspace.status("2") == "edited"
    navigator.workspace.annotator = "alice"
    written = navigator.save_current()
    correction = root / "corrections" / "SegmentationClass" / "2.png"
    assert written == [correction]  # only the mask that was painted; case 1 was only looked at
    np.testing.assert_array_equal(np.asarray(Image.open(correction)), painted)
    assert originals(root) == checksums  # every original file keeps its checksum
    added = int((painted == 1).sum()) - before_pixels
    assert navigator.status.text() == f"saved 2.png: +{added:,} / −0 px tumour bed, by alice"
    assert navigator.list.item(1).text() == "2  · saved  · in progress"  # saving starts its review

    # reopen the correction as a dataset of its own and compare
    again = registry.read(correction, "masks")[0]
    np.testing.assert_array_equal(again.masks[0].data, painted)

    # a second save replaces the first correction (the workspace saw it): nothing changed, nothing written
    assert navigator.save_current() == []


def test_navigator_filter_and_keys(make_napari_viewer, tmp_path):
    root = build("nsclc-nat", tmp_path)
    viewer = make_napari_viewer()
    navigator = CaseNavigator(viewer)
    navigator.set_source(root)
    navigator.filter.setText("3")
    assert navigator.visible_indices() == [2]
    navigator.next_case()
    assert navigator.index == 2 and viewer.layers[0].name == "3 image"
    navigator.filter.setText("")
    navigator.previous_case()
    assert navigator.index == 1
    keys = {str(key): action for key, action in viewer.keymap.items()}
    keys["PageDown"](viewer)  # the key binding, as napari calls it
    assert navigator.index == 2
    keys["PageUp"](viewer)
    assert navigator.index == 1
    assert [navigator.workspace.status(c) for c in navigator.workspace.cases] == ["untouched"] * 3
    navigator.workspace.annotator = "alice"
    assert navigator.save_current() == []  # cases were only looked at
    assert not (root / "corrections" / "events.jsonl").exists()


def test_ignite_legend_names_colours_counts(make_napari_viewer, tmp_path):
    data = build("ignite-he", tmp_path)
    viewer = make_napari_viewer()
    navigator = CaseNavigator(viewer)
    navigator.set_source(data)
    tissue = viewer.layers["tissue"]
    rows = navigator.legend_rows()
    assert [r[0] for r in rows] == IGNITE_HE_SCHEMA.names
    values, counts = np.unique(tissue.data, return_counts=True)
    by_code = {code: pixels for _name, code, _color, pixels in rows}
    assert {int(v): int(c) for v, c in zip(values, counts, strict=True) if v != 0} == {
        code: pixels for code, pixels in by_code.items() if pixels and code != 0
    }
    assert dict((r[0], r[2]) for r in rows)["Tumor cells"] == "#00fdff"
    assert navigator.legend.rowCount() == 17


@pytest.mark.parametrize(
    "layout, expected",
    [
        ("cocahis", ["image", *["labels"] * 8]),
        ("voc-segmentation", ["image", "labels", "labels"]),
        ("pcam", ["image", "labels"]),
        ("masks", ["image", "labels"]),
        ("ignite-he", ["image", "labels"]),
    ],
)
def test_each_layout_opens_in_napari(make_napari_viewer, tmp_path, layout, expected):
    path = build(layout, tmp_path)
    viewer = make_napari_viewer()
    layers = viewer.open(path, plugin="napari-nsclc")
    assert [type(layer).__name__.lower() for layer in layers] == expected
    labels = [layer for layer in layers if type(layer).__name__.lower() == "labels"]
    for layer in labels:
        assert layer.data.dtype.kind == "u"
        assert "class" in layer.features
    if layout == "cocahis":
        assert [layer.name for layer in labels][-1] == "GT_majority_vote"
        assert all(set(np.unique(np.asarray(layer.data)).tolist()) <= {0, 1} for layer in labels)
    if layout == "pcam":
        assert labels[0].data.shape == (6, 96, 96)
        viewer.dims.set_current_step(0, 1)
        assert np.asarray(labels[0].data[1])[48, 48] == 1  # patch 1 is a tumour patch


def test_cocahis_paint_and_export_keeps_original(make_napari_viewer, tmp_path):
    import h5py

    path = build("cocahis", tmp_path)
    before = sha256(path)
    viewer = make_napari_viewer()
    navigator = CaseNavigator(viewer)
    navigator.set_source(path)
    gt2 = viewer.layers["GT2"]
    gt2.paint((5, 5), 0 if gt2.data[5, 5] else 1)
    painted = np.asarray(gt2.data).copy()
    navigator.workspace.annotator = "alice"
    (written,) = navigator.save_current()
    assert written == path.parent / "corrections" / path.name
    with h5py.File(written, "r") as h5:
        np.testing.assert_array_equal(h5["GT/GT2"][0], painted * 255)  # GT2 used 255 as foreground
    assert sha256(path) == before


def test_save_layers_writers_keep_values(make_napari_viewer, tmp_path):
    """File > Save Layers: the npe2 writers 'label mask' and 'VOC palette mask + labelmap.txt'."""
    from napari_nsclc import _writer
    from napari_nsclc.formats import masks as mask_io

    root = build("ignite-he", tmp_path)
    viewer = make_napari_viewer()
    viewer.open(root, plugin="napari-nsclc")
    tissue = viewer.layers["tissue"]
    tissue.paint((20, 20), 9)  # erythrocytes
    data, meta, _ = tissue.as_layer_data_tuple()
    # a mask saved outside its dataset layout gets a labelmap.txt beside it naming its classes
    png, labelmap_png = _writer.write_masks(str(tmp_path / "tissue.png"), data, meta)
    tif, labelmap_tif = _writer.write_masks(str(tmp_path / "tissue.tif"), data, meta)
    assert labelmap_png == labelmap_tif == str(tmp_path / "labelmap.txt")
    assert mask_io.read_labelmap(labelmap_tif).name_of(9) == "Erythrocytes"
    for path in (png, tif):
        codes, info = mask_io.read_mask(path)
        assert codes.dtype == np.uint8
        np.testing.assert_array_equal(codes, np.asarray(tissue.data))
    written = _writer.write_voc_palette(str(tmp_path / "voc" / "tissue.png"), data, meta)
    codes, info = mask_io.read_mask(written[0])
    np.testing.assert_array_equal(codes, np.asarray(tissue.data))
    assert info["palette"][2] == [0, 253, 255]  # Tumor cells keep IGNITE's cyan
    labelmap = mask_io.read_labelmap(written[1])
    assert labelmap.name_of(2) == "Tumor cells" and labelmap.name_of(16) == "Keratinization"


@pytest.mark.parametrize(
    "layout, layer_name, correction",
    [
        ("ignite-he", "tissue", "corrections/annotations/he/patient1_he_roi1.png"),
        ("voc-segmentation", "class", "corrections/SegmentationClass/2026_000000.png"),
        ("masks", "mask", "corrections/mask.png"),
    ],
)
def test_paint_export_reopen_for_each_layout(make_napari_viewer, tmp_path, layout, layer_name, correction):
    from napari_nsclc.formats import masks as mask_io

    path = build(layout, tmp_path)
    folder = path if path.is_dir() else path.parent
    checksums = originals(folder)
    viewer = make_napari_viewer()
    navigator = CaseNavigator(viewer)
    navigator.set_source(path)
    layer = viewer.layers[layer_name]
    layer.paint((6, 6), 3)  # necrosis / stroma-like code present in each schema
    painted = np.asarray(layer.data).copy()
    navigator.workspace.annotator = "alice"
    # only the corrected mask: a VOC root's labelmap.txt and split lists describe the dataset, and stay as they are
    (written,) = navigator.save_current()
    assert written == folder / correction
    codes, info = mask_io.read_mask(written)
    np.testing.assert_array_equal(codes, painted)
    assert originals(folder) == checksums
