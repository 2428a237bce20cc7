"""Mask files: exact values, encodings kept on writing, and every bad input of issue 4."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image

from napari_nsclc import registry
from napari_nsclc.formats import masks as mask_io
from napari_nsclc.model import ClassInfo, ClassSchema, NsclcFormatError
from napari_nsclc.testing import build

SCHEMA = ClassSchema("test", (ClassInfo(1, "tumour", "#ff0000"), ClassInfo(2, "stroma", "#00ff00")), background=0)


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_single_channel_values_and_dtype_kept_exactly(tmp_path, suffix, dtype):
    rng = np.random.default_rng(0)
    high = 255 if dtype == np.uint8 else 4000
    values = rng.integers(0, high, (33, 47)).astype(dtype)
    target = mask_io.write_mask_file(values, tmp_path / f"m{suffix}", like_dtype=str(values.dtype))
    codes, info = mask_io.read_mask(target)
    assert codes.dtype == dtype
    np.testing.assert_array_equal(codes, values)


def test_palette_png_keeps_values_and_palette(tmp_path):
    values = np.arange(12, dtype=np.uint8).reshape(3, 4) % 4
    palette = [(0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255)]
    target = mask_io.write_mask_file(values, tmp_path / "p.png", palette=palette)
    codes, info = mask_io.read_mask(target)
    np.testing.assert_array_equal(codes, values)
    assert info["encoding"] == "palette" and info["palette"][:4] == [list(c) for c in palette]
    again = mask_io.write_mask_like(codes, tmp_path / "again.png", mask_io.mask_attributes(target, info))
    assert Image.open(again).mode == "P"
    assert Image.open(again).getpalette()[:12] == [c for rgb in palette for c in rgb]
    np.testing.assert_array_equal(np.asarray(Image.open(again)), values)


def test_rgb_mask_maps_known_colours_and_round_trips(tmp_path):
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[1:3, 1:3] = (255, 0, 0)
    rgb[3, 4] = (0, 255, 0)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    codes, info = mask_io.read_mask(tmp_path / "rgb.png", SCHEMA)
    assert codes.tolist()[1][1] == 1 and codes[3, 4] == 2 and int(codes.sum()) == 4 + 2
    written = mask_io.write_mask_like(codes, tmp_path / "back.png", mask_io.mask_attributes(tmp_path / "rgb.png", info))
    np.testing.assert_array_equal(np.asarray(Image.open(written)), rgb)


def test_unknown_rgb_colour_is_an_error_naming_file_and_colour(tmp_path):
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[2, 3] = (12, 34, 56)
    Image.fromarray(rgb).save(tmp_path / "odd.png")
    with pytest.raises(NsclcFormatError) as caught:
        mask_io.read_mask(tmp_path / "odd.png", SCHEMA)
    message = str(caught.value)
    assert "odd.png" in message and "RGB(12, 34, 56)" in message and "row 2, column 3" in message


def test_sixteen_bit_mask_is_reported_and_kept(tmp_path):
    values = np.zeros((8, 8), np.uint16)
    values[2:4, 2:4] = 1
    values[5, 5] = 300
    mask_io.write_mask_file(values, tmp_path / "wide.png", like_dtype="uint16")
    case = registry.read(tmp_path / "wide.png")[0]
    assert case.masks[0].data.dtype == np.uint16
    np.testing.assert_array_equal(case.masks[0].data, values)
    codes, info = mask_io.read_mask(tmp_path / "wide.png")
    problems = mask_io.check_mask(codes, SCHEMA, tmp_path / "wide.png", None, info)
    assert any("wide.png: 16-bit mask (values up to 300)" in p for p in problems)
    assert any("1 value(s) outside the test classes: 300 (1 px)" in p for p in problems)


def test_values_outside_schema_are_counted_and_kept(tmp_path):
    values = np.zeros((6, 6), np.uint8)
    values[0, :3] = 7
    values[1, 1] = 9
    problems = mask_io.check_mask(values, SCHEMA, tmp_path / "m.png")
    assert problems == ["m.png: 2 value(s) outside the test classes: 7 (3 px), 9 (1 px); kept unchanged"]
    assert values[0, 0] == 7


def test_size_mismatch_reported_and_nearest_fit_offered(tmp_path):
    Image.fromarray(np.zeros((10, 20, 3), np.uint8)).save(tmp_path / "x.png")
    mask = np.zeros((5, 10), np.uint8)
    mask[0, 0] = 1
    mask[4, 9] = 2
    Image.fromarray(mask).save(tmp_path / "x_mask.png")
    case = mask_io.read_image_mask_pair(tmp_path / "x.png", tmp_path / "x_mask.png", SCHEMA)
    assert case.masks[0].data.shape == (5, 10)  # never resized silently
    (warning,) = case.provenance.warnings
    assert "x_mask.png: mask is 5x10 pixels but its image is 10x20" in warning and "nearest-neighbour" in warning
    fitted = mask_io.fit_nearest(case.masks[0].data, (10, 20))
    assert fitted.shape == (10, 20) and fitted.dtype == np.uint8
    assert fitted[:2, :2].tolist() == [[1, 1], [1, 1]] and fitted[8:, 18:].tolist() == [[2, 2], [2, 2]]
    assert set(np.unique(fitted).tolist()) == {0, 1, 2}


def test_image_without_mask_gets_an_empty_mask_ready_to_paint(tmp_path):
    Image.fromarray(np.full((7, 9, 3), 200, np.uint8)).save(tmp_path / "lonely.png")
    case = mask_io.read_image_mask_pair(tmp_path / "lonely.png", tmp_path / "lonely_mask.png")
    assert case.masks[0].data.shape == (7, 9) and not case.masks[0].data.any()
    assert "no mask found" in case.provenance.warnings[0] and "lonely.png" in case.provenance.warnings[0]


def test_missing_pair_and_empty_folder_are_clear(tmp_path):
    with pytest.raises(NsclcFormatError, match="neither the image nor its mask exists"):
        mask_io.read_image_mask_pair(tmp_path / "a.png", tmp_path / "b.png")
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(NsclcFormatError, match="no images here and no masks"):
        mask_io.read_image_mask_folders(tmp_path / "images", tmp_path / "masks")


def test_image_and_mask_folders_pair_by_stem(tmp_path):
    for stem in ("a", "b"):
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / f"{stem}.png")
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for stem in ("a", "b"):
        (tmp_path / f"{stem}.png").rename(tmp_path / "images" / f"{stem}.png")
    Image.fromarray(np.ones((4, 4), np.uint8)).save(tmp_path / "masks" / "a.png")
    cases = mask_io.read_image_mask_folders(tmp_path / "images", tmp_path / "masks", SCHEMA)
    assert [c.name for c in cases] == ["a", "b"]
    assert cases[0].masks[0].data.sum() == 16 and cases[1].masks[0].data.sum() == 0
    assert "no mask found" in cases[1].provenance.warnings[0]


def test_truncated_png_is_a_clear_error(tmp_path):
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 4, (200, 200)).astype(np.uint8)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(NsclcFormatError) as caught:
        registry.read(tmp_path / "cut.png", "masks")
    assert "cut.png" in str(caught.value) and "truncated" in str(caught.value)


def test_decompression_bomb_limit_stays_on(tmp_path, monkeypatch):
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(NsclcFormatError) as caught:
        mask_io.read_mask(tmp_path / "bomb.png")
    assert "bomb.png" in str(caught.value) and "decompression-bomb" in str(caught.value)
    assert Image.MAX_IMAGE_PIXELS == 1000  # the reader never switched the limit off


def test_mask_writer_refuses_to_overwrite(tmp_path):
    target = mask_io.write_mask_file(np.zeros((3, 3), np.uint8), tmp_path / "m.png")
    before = sha256(target)
    with pytest.raises(NsclcFormatError, match="already exists"):
        mask_io.write_mask_file(np.ones((3, 3), np.uint8), target)
    assert sha256(target) == before


def test_voc_palette_writer_with_labelmap_reads_back(tmp_path):
    case = registry.read(build("masks", tmp_path))[0]
    written = registry.write([case], tmp_path / "out" / "mask.png", "masks", palette=True)
    assert [p.name for p in written] == ["mask.png", "labelmap.txt"]
    codes, info = mask_io.read_mask(written[0])
    assert info["encoding"] == "palette"
    np.testing.assert_array_equal(codes, case.masks[0].data)
    labelmap = mask_io.read_labelmap(written[1])
    assert [(c.code, c.name) for c in labelmap.classes] == [
        (0, "background"),
        (1, "class 1"),
        (2, "class 2"),
        (3, "class 3"),
    ]
    for info_ in labelmap.classes[1:]:
        assert info_.color == case.masks[0].schema.by_code(info_.code).color


def test_plain_mask_writer_round_trip_through_registry(tmp_path):
    case = registry.read(build("masks", tmp_path))[0]
    # a mask from no dataset layout is written with a labelmap.txt beside it naming its classes
    written, labelmap = registry.write([case], tmp_path / "out.tif", "masks")
    assert written == tmp_path / "out.tif" and labelmap == tmp_path / "labelmap.txt"
    assert [(c.code, c.name) for c in mask_io.read_labelmap(labelmap).classes] == [
        (0, "background"), (1, "class 1"), (2, "class 2"), (3, "class 3")]
    again = registry.read(written, "masks")[0]
    np.testing.assert_array_equal(again.masks[0].data, case.masks[0].data)
    # read back through that labelmap.txt, which lists value 0 as "background" (VOC/CVAT style)
    assert again.masks[0].schema.codes == [0, *case.masks[0].schema.codes]
    assert again.masks[0].schema.background == 0
    assert [again.masks[0].schema.name_of(c) for c in case.masks[0].schema.codes] == ["class 1", "class 2", "class 3"]
