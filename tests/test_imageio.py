"""napari_nsclc.imageio, the one image reader: every mode, both policies, bad files, and that nobody else reads."""

from __future__ import annotations

import io
import re
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_nsclc import imageio
from napari_nsclc.model import NsclcFormatError

PACKAGE = Path(imageio.__file__).parent
GREY = np.arange(6 * 8, dtype=np.uint8).reshape(6, 8) * 5
WIDE = (np.arange(6 * 8, dtype=np.uint16).reshape(6, 8) * 1250).astype(np.uint16)  # up to 58750
INDICES = (np.arange(6 * 8, dtype=np.uint8).reshape(6, 8) % 4).astype(np.uint8)
PALETTE = [[0, 0, 0], [255, 0, 0], [0, 128, 0], [10, 20, 30]]


def _palette_png(path: Path, transparency: bool = False) -> Path:
    image = Image.fromarray(INDICES, mode="P")
    flat = [c for rgb in PALETTE for c in rgb]
    image.putpalette(flat + [0] * (768 - len(flat)))
    if transparency:
        image.save(path, transparency=0)
    else:
        image.save(path)
    return path


def _rgba() -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, (6, 8, 4), dtype=np.uint8)


def _check_header(path, pixels, as_mask):
    """The header promises exactly what decoding returns."""
    found = imageio.header(path, as_mask=as_mask)
    assert (found.shape, found.dtype) == (pixels.shape, pixels.dtype)
    return found


# --------------------------------------------------------------------------- every mode


def test_grey_png(tmp_path):
    path = tmp_path / "grey.png"
    Image.fromarray(GREY).save(path)
    pixels, info = imageio.read_pixels(path)
    assert pixels.dtype == np.uint8 and pixels.shape == (6, 8)
    np.testing.assert_array_equal(pixels, GREY)
    assert pixels.flags.writeable
    assert info == {"mode": "L", "format": "png", "dtype": "uint8", "alpha_dropped": False}
    values, mask_info = imageio.read_pixels(path, as_mask=True)
    np.testing.assert_array_equal(values, GREY)
    assert mask_info == {"mode": "L", "format": "png", "encoding": "grey", "dtype": "uint8"}
    found = _check_header(path, pixels, False)
    assert (found.mode, found.format, found.alpha) == ("L", "png", False)
    _check_header(path, values, True)


def test_16_bit_png_stays_uint16(tmp_path):
    path = tmp_path / "wide.png"
    Image.fromarray(WIDE).save(path)
    pixels, info = imageio.read_pixels(path)
    assert pixels.dtype == np.uint16 and pixels.shape == (6, 8)
    np.testing.assert_array_equal(pixels, WIDE)
    assert int(pixels.max()) == 58750
    values, mask_info = imageio.read_pixels(path, as_mask=True)
    np.testing.assert_array_equal(values, WIDE)
    assert values.dtype == np.uint16
    assert mask_info == {"mode": "I;16", "format": "png", "encoding": "grey", "dtype": "uint16"}
    _check_header(path, pixels, False)
    _check_header(path, values, True)


def test_16_bit_tiff_stays_uint16(tmp_path):
    path = tmp_path / "wide.tif"
    tifffile.imwrite(path, WIDE)
    pixels, info = imageio.read_pixels(path)
    np.testing.assert_array_equal(pixels, WIDE)
    assert pixels.dtype == np.uint16
    assert info == {"mode": "tiff", "format": "tiff", "dtype": "uint16", "alpha_dropped": False}
    values, mask_info = imageio.read_pixels(path, as_mask=True)
    np.testing.assert_array_equal(values, WIDE)
    assert mask_info == {"mode": "tiff", "encoding": "grey", "dtype": "uint16", "format": "tiff"}
    found = _check_header(path, pixels, False)
    assert (found.mode, found.format) == ("tiff", "tiff")
    _check_header(path, values, True)


def test_rgba_tiff_shows_rgb_and_keeps_rgba_as_mask(tmp_path):
    path = tmp_path / "rgba.tiff"
    rgba = _rgba()
    tifffile.imwrite(path, rgba, photometric="rgb", extrasamples=["unassalpha"])
    pixels, info = imageio.read_pixels(path)
    assert pixels.shape == (6, 8, 3) and info["alpha_dropped"] is True
    np.testing.assert_array_equal(pixels, rgba[..., :3])
    values, mask_info = imageio.read_pixels(path, as_mask=True)
    np.testing.assert_array_equal(values, rgba)
    assert mask_info["encoding"] == "rgb"
    assert _check_header(path, pixels, False).alpha
    _check_header(path, values, True)


def test_bilevel_tiff_is_uint8_zero_one(tmp_path):
    path = tmp_path / "bits.tif"
    tifffile.imwrite(path, GREY > 100)
    pixels, _ = imageio.read_pixels(path)
    assert pixels.dtype == np.uint8 and set(np.unique(pixels).tolist()) == {0, 1}
    np.testing.assert_array_equal(pixels, (GREY > 100).astype(np.uint8))
    _check_header(path, pixels, False)


def test_palette_png_shows_colours_and_keeps_indices_as_mask(tmp_path):
    path = _palette_png(tmp_path / "palette.png")
    pixels, info = imageio.read_pixels(path)
    assert pixels.shape == (6, 8, 3) and pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels, np.array(PALETTE, np.uint8)[INDICES])
    assert info == {"mode": "P", "format": "png", "dtype": "uint8", "alpha_dropped": False}
    values, mask_info = imageio.read_pixels(path, as_mask=True)
    assert values.shape == (6, 8) and values.dtype == np.uint8
    np.testing.assert_array_equal(values, INDICES)
    assert set(mask_info) == {"mode", "format", "encoding", "palette", "dtype"}
    assert (mask_info["mode"], mask_info["encoding"], mask_info["dtype"]) == ("P", "palette", "uint8")
    assert mask_info["palette"][:4] == PALETTE
    assert all(len(rgb) == 3 for rgb in mask_info["palette"])
    found = _check_header(path, pixels, False)
    assert found.mode == "P" and not found.alpha
    _check_header(path, values, True)


def test_palette_png_with_transparency(tmp_path):
    path = _palette_png(tmp_path / "clear.png", transparency=True)
    pixels, info = imageio.read_pixels(path)
    assert pixels.shape == (6, 8, 3)
    np.testing.assert_array_equal(pixels, np.array(PALETTE, np.uint8)[INDICES])
    assert info["alpha_dropped"] is True
    assert _check_header(path, pixels, False).alpha
    values, mask_info = imageio.read_pixels(path, as_mask=True)
    np.testing.assert_array_equal(values, INDICES)
    assert mask_info["encoding"] == "palette" and mask_info["palette"][:4] == PALETTE
    _check_header(path, values, True)


def test_rgba_png_shows_rgb_and_keeps_rgba_as_mask(tmp_path):
    path = tmp_path / "rgba.png"
    rgba = _rgba()
    Image.fromarray(rgba).save(path)
    pixels, info = imageio.read_pixels(path)
    assert pixels.shape == (6, 8, 3) and pixels.dtype == np.uint8 and pixels.flags.c_contiguous
    np.testing.assert_array_equal(pixels, rgba[..., :3])
    assert info == {"mode": "RGBA", "format": "png", "dtype": "uint8", "alpha_dropped": True}
    values, mask_info = imageio.read_pixels(path, as_mask=True)
    np.testing.assert_array_equal(values, rgba)
    assert mask_info == {"mode": "RGBA", "format": "png", "encoding": "rgb", "dtype": "uint8"}
    found = _check_header(path, pixels, False)
    assert found.alpha and found.mode == "RGBA"
    assert _check_header(path, values, True).shape == (6, 8, 4)


def test_grey_with_alpha_is_grey(tmp_path):
    path = tmp_path / "la.png"
    Image.fromarray(np.dstack([GREY, np.full_like(GREY, 200)]), mode="LA").save(path)
    pixels, info = imageio.read_pixels(path)
    np.testing.assert_array_equal(pixels, GREY)
    assert info["alpha_dropped"] is True
    values, mask_info = imageio.read_pixels(path, as_mask=True)
    np.testing.assert_array_equal(values, GREY)
    assert mask_info == {"mode": "LA", "format": "png", "encoding": "grey", "dtype": "uint8"}
    _check_header(path, pixels, False)
    _check_header(path, values, True)


def test_rgb_jpeg(tmp_path):
    path = tmp_path / "photo.jpg"
    rgb = np.zeros((16, 24, 3), np.uint8)
    rgb[...] = (200, 30, 90)
    Image.fromarray(rgb).save(path, quality=100)
    pixels, info = imageio.read_pixels(path)
    assert pixels.shape == (16, 24, 3) and pixels.dtype == np.uint8
    assert np.abs(pixels.astype(int) - rgb).max() <= 3  # lossy, but close
    assert info == {"mode": "RGB", "format": "jpeg", "dtype": "uint8", "alpha_dropped": False}
    found = _check_header(path, pixels, False)
    assert found.format == "jpeg"


def test_bilevel_png_is_uint8_zero_one(tmp_path):
    path = tmp_path / "bits.png"
    Image.fromarray(GREY > 100).save(path)
    assert Image.open(path).mode == "1"
    pixels, info = imageio.read_pixels(path)
    assert pixels.dtype == np.uint8 and pixels.shape == (6, 8)
    np.testing.assert_array_equal(pixels, (GREY > 100).astype(np.uint8))
    values, mask_info = imageio.read_pixels(path, as_mask=True)
    np.testing.assert_array_equal(values, (GREY > 100).astype(np.uint8))
    assert mask_info == {"mode": "1", "format": "png", "encoding": "bilevel", "dtype": "uint8"}
    _check_header(path, pixels, False)
    _check_header(path, values, True)


def test_bmp_and_cmyk(tmp_path):
    Image.fromarray(GREY).save(tmp_path / "grey.bmp")
    pixels, info = imageio.read_pixels(tmp_path / "grey.bmp")
    np.testing.assert_array_equal(pixels, GREY)
    assert info["format"] == "bmp"
    Image.fromarray(np.full((4, 5, 3), 128, np.uint8)).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=100)
    pixels, _ = imageio.read_pixels(tmp_path / "cmyk.jpg")
    assert pixels.shape == (4, 5, 3) and pixels.dtype == np.uint8
    _check_header(tmp_path / "cmyk.jpg", pixels, False)
    with pytest.raises(NsclcFormatError, match=r"cmyk\.jpg: mask has image mode CMYK; expected grey, palette or RGB"):
        imageio.read_pixels(tmp_path / "cmyk.jpg", as_mask=True)


def test_bytes_read_like_files(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(_rgba()).save(buffer, format="PNG")
    pixels, info = imageio.read_pixels(buffer.getvalue(), name="table.parquet row 3")
    np.testing.assert_array_equal(pixels, _rgba()[..., :3])
    assert info["format"] == "png"
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, WIDE)
    values, mask_info = imageio.read_pixels(buffer.getvalue(), as_mask=True)
    np.testing.assert_array_equal(values, WIDE)
    assert mask_info["mode"] == "tiff"
    with pytest.raises(NsclcFormatError) as caught:
        imageio.read_pixels(b"not an image", name="table.parquet row 3")
    assert caught.value.path == "table.parquet row 3"


# --------------------------------------------------------------------------- bad files


def test_truncated_png_is_one_clear_sentence(tmp_path):
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 4, (200, 200)).astype(np.uint8)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    imageio.header(tmp_path / "cut.png")  # the header is intact
    for as_mask in (False, True):
        with pytest.raises(NsclcFormatError) as caught:
            imageio.read_pixels(tmp_path / "cut.png", as_mask=as_mask)
        assert caught.value.path == str(tmp_path / "cut.png")
        assert caught.value.problem == "the image data is truncated or damaged and cannot be decoded"
    (tmp_path / "stub.png").write_bytes(data[:20])
    with pytest.raises(NsclcFormatError) as caught:
        imageio.header(tmp_path / "stub.png")
    assert caught.value.problem == "the image is truncated or damaged: its header cannot be read"


def test_truncated_tiff_names_the_file(tmp_path):
    tifffile.imwrite(tmp_path / "full.tif", np.random.default_rng(2).integers(0, 9, (300, 300), dtype=np.uint16))
    data = (tmp_path / "full.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(data[:200])
    with pytest.raises(NsclcFormatError) as caught:
        imageio.read_pixels(tmp_path / "cut.tif")
    assert caught.value.path.endswith("cut.tif")
    assert "truncated" in caught.value.problem or "not a TIFF" in caught.value.problem


@pytest.mark.parametrize("size", [64, 40])  # 4096 px: Pillow's error; 1600 px: its warning, escalated
def test_decompression_bomb_limit_stays_on(tmp_path, monkeypatch, size):
    path = tmp_path / "bomb.png"
    Image.fromarray(np.zeros((size, size), np.uint8)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    for read in (imageio.header, imageio.read_pixels, lambda p: imageio.read_pixels(p, as_mask=True)):
        with pytest.raises(NsclcFormatError) as caught:
            read(path)
        assert caught.value.path == str(path)
        assert caught.value.problem == (
            f"refused: its {size * size} pixels exceed Pillow's decompression-bomb limit of 1000 pixels "
            "(PIL.Image.MAX_IMAGE_PIXELS)"
        )
    assert Image.MAX_IMAGE_PIXELS == 1000  # the reader never switched the limit off


def test_missing_empty_and_foreign_files(tmp_path):
    with pytest.raises(NsclcFormatError) as caught:
        imageio.read_pixels(tmp_path / "gone.png")
    assert caught.value.problem == "no such file"
    with pytest.raises(NsclcFormatError, match="no such file"):
        imageio.header(tmp_path / "gone.tif")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(NsclcFormatError) as caught:
        imageio.read_pixels(tmp_path / "empty.png")
    assert caught.value.problem == "is empty (0 bytes)"
    (tmp_path / "notes.png").write_text("hello")
    with pytest.raises(NsclcFormatError) as caught:
        imageio.header(tmp_path / "notes.png")
    assert caught.value.problem == "is not a PNG, JPEG, BMP, GIF or other image Pillow can read"
    (tmp_path / "notes.tif").write_text("hello")
    with pytest.raises(NsclcFormatError) as caught:
        imageio.read_pixels(tmp_path / "notes.tif")
    assert caught.value.problem == "is not a TIFF file tifffile can read"


def test_messages_carry_no_python_reprs(tmp_path):
    (tmp_path / "notes.png").write_text("hello")
    (tmp_path / "notes.tif").write_text("hello")
    for name in ("notes.png", "notes.tif"):
        with pytest.raises(NsclcFormatError) as caught:
            imageio.read_pixels(tmp_path / name)
        assert not re.search(r"<|\bb'|Error\b|\\x", caught.value.problem)


# --------------------------------------------------------------------------- lazy forms


def test_lazy_image_decodes_only_on_access(tmp_path, monkeypatch):
    path = _palette_png(tmp_path / "palette.png", transparency=True)
    decoded = []
    original = imageio.read_pixels
    monkeypatch.setattr(imageio, "read_pixels", lambda *a, **k: decoded.append(a) or original(*a, **k))
    lazy = imageio.lazy_image(path)
    assert isinstance(lazy, imageio.LazyArray)
    assert lazy.shape == (6, 8, 3) and lazy.dtype == np.uint8 and lazy.ndim == 3
    assert decoded == []
    pixels = np.asarray(lazy)
    np.testing.assert_array_equal(pixels, np.array(PALETTE, np.uint8)[INDICES])
    assert lazy.info["alpha_dropped"] is True and len(decoded) == 1


def test_deferred_image_is_a_one_chunk_dask_array(tmp_path, monkeypatch):
    path = tmp_path / "rgba.png"
    Image.fromarray(_rgba()).save(path)
    decoded = []
    original = imageio.read_pixels
    monkeypatch.setattr(imageio, "read_pixels", lambda *a, **k: decoded.append(a) or original(*a, **k))
    array = imageio.deferred_image(path)
    assert isinstance(array, da.Array) and array.numblocks == (1, 1, 1)
    assert array.shape == (6, 8, 3) and array.dtype == np.uint8
    assert decoded == []
    np.testing.assert_array_equal(np.asarray(array), _rgba()[..., :3])
    tifffile.imwrite(tmp_path / "wide.tif", WIDE)
    wide = imageio.deferred_image(tmp_path / "wide.tif")
    assert wide.dtype == np.uint16
    np.testing.assert_array_equal(wide.compute(), WIDE)


def test_read_tiled_reads_a_tiff_through_zarr(tmp_path):
    path = tmp_path / "tiled.tif"
    rgba = np.random.default_rng(4).integers(0, 256, (64, 64, 4), dtype=np.uint8)
    tifffile.imwrite(path, rgba, photometric="rgb", extrasamples=["unassalpha"], tile=(32, 32))
    data, info = imageio.read_tiled(path)
    assert data.shape == (64, 64, 3) and info["alpha_dropped"] is True
    np.testing.assert_array_equal(np.asarray(data), rgba[..., :3])
    tifffile.imwrite(tmp_path / "grey.tif", WIDE)
    data, info = imageio.read_tiled(tmp_path / "grey.tif")
    assert hasattr(data, "chunks") and info == {"mode": "tiff", "format": "tiff", "dtype": "uint16", "alpha_dropped": False}
    np.testing.assert_array_equal(np.asarray(data), WIDE)


# --------------------------------------------------------------------------- real files


def test_real_ignite_mask(samples):
    path = samples / "ignite" / "patient1_he_roi1_with_context.png"
    found = imageio.header(path, as_mask=True)
    assert found.shape == (2560, 3328) and found.dtype == np.uint8  # 3328 wide, 2560 high
    assert (found.mode, found.format, found.alpha) == ("L", "png", False)
    values, info = imageio.read_pixels(path, as_mask=True)
    assert values.shape == (2560, 3328) and values.dtype == np.uint8
    assert set(np.unique(values).tolist()) == {0, 1, 2, 3, 4, 8, 9, 13}
    assert info == {"mode": "L", "format": "png", "encoding": "grey", "dtype": "uint8"}
    pixels, _ = imageio.read_pixels(path)
    np.testing.assert_array_equal(pixels, values)


def test_real_rgb_preview(samples):
    path = samples / "nsclc-nat" / "image-Dataset.png"
    found = imageio.header(path)
    pixels, info = imageio.read_pixels(path)
    assert pixels.ndim == 3 and pixels.shape[-1] == 3 and pixels.dtype == np.uint8
    assert (found.shape, found.dtype) == (pixels.shape, pixels.dtype)
    assert info["alpha_dropped"] == found.alpha


# --------------------------------------------------------------------------- nobody else decodes images

READERS = re.compile(r"Image\.open\(|tifffile\.imread\(|TiffFile\(|\bimread\(")
OWN_READERS = {"imageio.py", "formats/slide.py", "formats/dicom.py"}  # slides and DICOM have readers of their own


def test_images_are_read_only_by_imageio():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative in OWN_READERS or relative.startswith("testing/"):  # testing/ builds synthetic files
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if READERS.search(line):
                offenders.append(f"napari_nsclc/{relative}:{number}: {line.strip()}")
    assert offenders == [], "image files are read through napari_nsclc.imageio only:\n" + "\n".join(offenders)
