"""Whole-slide pyramids: level shapes, pixel size, laziness, masks, companions, bad input.

Every slide here is synthetic, written by ``napari_nsclc.testing.slides`` with
tifffile in the layouts of FORMATS.md section 5 (no real whole-slide image is
publicly available for tests).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_nsclc import registry
from napari_nsclc.formats import slide
from napari_nsclc.model import NsclcFormatError
from napari_nsclc.testing import slides as builders

SIZE = 1024


@pytest.fixture(scope="module")
def tissue() -> np.ndarray:
    return builders.synthetic_tissue((SIZE, SIZE), seed=5)


@pytest.fixture(scope="module")
def wsi(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("wsi")
    return builders.build_wsi(folder)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- the four pyramid layouts


def test_svs_like_levels_scale_and_excluded_pages(wsi):
    (case,) = registry.read(wsi)
    image = case.image
    assert registry.detect(wsi).name == "slide"
    assert image.multiscale and image.rgb
    assert [level.shape for level in image.data] == [(4096, 4096, 3), (2048, 2048, 3), (1024, 1024, 3)]
    assert all(level.chunks == (256, 256, 3) for level in image.data)
    assert image.pixel_size == (0.25, 0.25) and image.unit == "um"
    assert image.metadata["mpp_source"] == "Aperio ImageDescription MPP"
    assert image.metadata["vendor"] == "svs"
    assert image.metadata["contrast_limits"] == [0.0, 255.0]
    # thumbnail (256 px), label (96 x 128) and macro (384 x 128) are not levels
    assert image.metadata["level_shapes"] == [(4096, 4096), (2048, 2048), (1024, 1024)]
    assert case.provenance.warnings == []


def test_svs_level_pixels_equal_the_jpeg_tiles(wsi):
    (case,) = slide.read_slide(wsi)
    with tifffile.TiffFile(wsi) as tif:
        expected = tif.series[0].levels[2].asarray()
    assert np.array_equal(np.asarray(case.image.data[2]), expected)
    assert np.array_equal(np.asarray(case.image.data[0][256:512, 768:1024]),
                          tifffile.imread(wsi, key=0)[256:512, 768:1024])


def test_camelyon_like_bigtiff_resolution_tags(tmp_path, tissue):
    path = builders.write_camelyon_like(tmp_path / "tumor_001.tif", tissue, n_levels=3, tile=256)
    assert slide.is_slide(path)
    (case,) = registry.read(path)
    assert [level.shape[:2] for level in case.image.data] == [(1024, 1024), (512, 512), (256, 256)]
    assert case.image.pixel_size == pytest.approx((0.25, 0.25))
    assert case.image.metadata["mpp_source"] == "TIFF resolution tags"
    assert case.provenance.details["compression"] == "JPEG"
    assert case.provenance.details["tile"] == (256, 256)


def test_ndpi_like_level0_in_strips(tmp_path, tissue):
    path = builders.write_ndpi_like(tmp_path / "ndpi_like.tif", tissue, n_levels=3)
    (case,) = registry.read(path)
    level0 = case.image.data[0]
    assert case.provenance.details["tile"] is None  # strips, not tiles
    assert level0.chunks == (64, SIZE, 3)
    assert [level.shape[:2] for level in case.image.data] == [(1024, 1024), (512, 512), (256, 256)]
    assert case.image.pixel_size == pytest.approx((0.25, 0.25))
    # the 256 x 96 macro page is not a level
    assert all(level.shape[1] != 256 or level.shape[0] == 256 for level in case.image.data)
    assert np.array_equal(np.asarray(level0[100:200, 300:400]), tifffile.imread(path, key=0)[100:200, 300:400])


def test_ome_tiff_with_subifds(tmp_path, tissue):
    path = builders.write_ome_like(tmp_path / "slide.ome.tif", tissue, n_levels=3, mpp=0.5)
    (case,) = registry.read(path)
    assert case.image.metadata["vendor"] == "ome"
    assert case.image.metadata["mpp_source"] == "OME PhysicalSizeX"
    assert case.image.pixel_size == (0.5, 0.5)
    assert [level.shape for level in case.image.data] == [(1024, 1024, 3), (512, 512, 3), (256, 256, 3)]


def test_opening_decodes_only_one_tile_of_the_smallest_level(wsi, chunk_reads):
    (case,) = slide.read_slide(wsi)
    assert chunk_reads == ["2/0.0"]
    # a 256-pixel region of level 0 decodes exactly the four tiles it touches
    chunk_reads.clear()
    np.asarray(case.image.data[0][1000:1256, 2000:2256])
    assert sorted(chunk_reads) == ["0/3.7", "0/3.8", "0/4.7", "0/4.8"]
    # panning back over the same place decodes nothing new (tile cache)
    np.asarray(case.image.data[0][1010:1200, 2010:2200])
    assert len(chunk_reads) == 4


def test_unknown_pixel_size_is_one_and_warned(tmp_path, tissue):
    path = tmp_path / "plain_pyramid.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(tissue, tile=(256, 256), compression="zlib", metadata=None)
        tif.write(tissue[::2, ::2], tile=(256, 256), compression="zlib", subfiletype=1, metadata=None)
    (case,) = registry.read(path)
    assert case.image.pixel_size == (1.0, 1.0) and case.image.unit == "px"
    assert len(case.provenance.warnings) == 1
    assert "plain_pyramid.tif: pixel size unknown" in case.provenance.warnings[0]


def test_large_tiff_without_pyramid_gets_lazy_levels(tmp_path, chunk_reads):
    path = tmp_path / "flat.tif"
    image = np.zeros((8192, 4096), np.uint16)
    image[::64] = 1000
    tifffile.imwrite(path, image, tile=(512, 512), compression="zlib", resolution=(20000, 20000),
                     resolutionunit="CENTIMETER", metadata=None)
    assert slide.is_slide(path)
    chunk_reads.clear()
    (case,) = registry.read(path)
    shapes = [level.shape for level in case.image.data]
    assert shapes == [(8192, 4096), (4096, 2048), (2048, 1024), (1024, 512)]
    assert case.provenance.details["built_levels"] == 3
    assert case.image.pixel_size == pytest.approx((0.5, 0.5))
    assert case.image.metadata["contrast_limits"] == [0.0, 65535.0]
    assert any("no pyramid" in w for w in case.provenance.warnings)
    assert np.array_equal(np.asarray(case.image.data[2][:64:16, :3]), image[:512:128, :12:4][:4, :3])


def test_small_plain_tiff_is_left_to_the_mask_format(tmp_path):
    path = tmp_path / "mask.tif"
    tifffile.imwrite(path, np.zeros((64, 64), np.uint8))
    assert not slide.is_slide(path)
    tifffile.imwrite(path, np.zeros((1024, 1024), np.uint8), tile=(256, 256))
    assert not slide.is_slide(path)
    tifffile.imwrite(path, np.zeros((4096, 4096), np.uint8), tile=(256, 256), compression="zlib")
    assert slide.is_slide(path)
    assert slide.is_slide(tmp_path / "missing.svs") is False


# --------------------------------------------------------------------------- masks and companions


def test_multiscale_mask_pyramid_opens_as_labels(tmp_path):
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[100:300, 200:500] = 1
    path = builders.write_mask_pyramid(tmp_path / "tumor_001_mask.tif", mask)
    (case,) = registry.read(path)
    assert case.image.data is None and case.image.shape == (SIZE, SIZE)
    assert case.image.pixel_size == pytest.approx((0.25, 0.25))
    (labels,) = case.masks
    assert labels.multiscale and labels.schema.name == "camelyon-mask"
    assert [level.shape for level in labels.data] == [(1024, 1024), (512, 512), (256, 256)]
    assert int(np.asarray(labels.data[1]).sum()) == 100 * 150
    assert labels.schema.name_of(1) == "tumor"


def test_slide_autoloads_same_named_xml_and_mask(tmp_path, tissue):
    path = builders.write_camelyon_like(tmp_path / "tumor_002.tif", tissue, tile=256)
    builders.write_asap_xml(tmp_path / "tumor_002.xml", SIZE)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[:10, :10] = 1
    builders.write_mask_pyramid(tmp_path / "tumor_002_mask.tif", mask)
    (case,) = registry.read(path)
    assert case.counts()["ASAP polygons"] == {"_0": 2, "_2": 1}
    assert case.counts()["ASAP points"] == {"_1": 1}
    assert [m.name for m in case.masks] == ["tumor_002_mask mask"]
    # polygons are level-0 pixels: the first tumour outline is centred at (0.4, 0.35) of the slide
    exterior = case.polygons[0].polygons[0].exterior
    assert exterior.mean(axis=0) == pytest.approx((0.4 * SIZE, 0.35 * SIZE), abs=2)


def test_bad_companion_xml_is_a_warning_not_a_failure(tmp_path, tissue):
    path = builders.write_camelyon_like(tmp_path / "s.tif", tissue, tile=256)
    (tmp_path / "s.xml").write_text("<ASAP_Annotations><Annotations>")
    (case,) = registry.read(path)
    assert case.image.data is not None
    assert case.polygons == []
    assert case.provenance.warnings == [
        "s.xml: not loaded: is not well-formed XML: no element found: line 1, column 31"
    ]


# --------------------------------------------------------------------------- bad input


def test_truncated_slide_names_file_and_problem(tmp_path, wsi):
    path = tmp_path / "cut.svs"
    data = wsi.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(NsclcFormatError) as error:
        registry.read(path)
    assert str(path) in str(error.value)
    assert "truncated" in error.value.problem or "corrupt" in error.value.problem


def test_corrupt_bytes_are_not_a_tiff(tmp_path):
    path = tmp_path / "garbage.svs"
    path.write_bytes(b"II*\x00" + bytes(range(256)) * 40)
    with pytest.raises(NsclcFormatError, match=r"garbage\.svs: .*(corrupt|truncated|cannot)"):
        registry.read(path)


def test_corrupt_tile_data_fails_at_open(tmp_path, tissue):
    path = builders.write_camelyon_like(tmp_path / "bad_tiles.tif", tissue, tile=256)
    with tifffile.TiffFile(path) as tif:
        last = tif.series[0].levels[-1].keyframe
        offset, count = last.dataoffsets[0], last.databytecounts[0]
    raw = bytearray(path.read_bytes())
    raw[offset : offset + count] = b"\x00" * count
    path.write_bytes(bytes(raw))
    with pytest.raises(NsclcFormatError, match=r"bad_tiles\.tif: its image data cannot be decoded"):
        registry.read(path)


def test_unsupported_compression(tmp_path, tissue):
    path = builders.write_camelyon_like(tmp_path / "odd.tif", tissue, tile=256)
    with tifffile.TiffFile(path, mode="r+b") as tif:
        for page in tif.pages:
            page.tags["Compression"].overwrite(60001)
    with pytest.raises(NsclcFormatError, match=r"odd\.tif: level 0 uses TIFF compression 60001"):
        registry.read(path)


def test_absurd_declared_size(tmp_path, tissue):
    path = builders.write_camelyon_like(tmp_path / "huge.tif", tissue, tile=256)
    with tifffile.TiffFile(path, mode="r+b") as tif:
        tif.pages[0].tags["ImageWidth"].overwrite(50_000_000)
    with pytest.raises(NsclcFormatError, match=r"huge\.tif: .*absurd size of 50000000 x 1024"):
        registry.read(path)


def test_reading_never_modifies_the_slide(wsi, tmp_path):
    copy = tmp_path / "slide.svs"
    shutil.copy(wsi, copy)
    before = sha256(copy)
    (case,) = registry.read(copy)
    np.asarray(case.image.data[1][:300, :300])
    assert sha256(copy) == before


@pytest.mark.parametrize("compression", ["jpeg2000", "zlib", "lzw", "zstd", "webp"])
def test_tile_codecs_decode_like_tifffile(tmp_path, tissue, compression):
    path = tmp_path / f"{compression}.tif"
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        for k in range(2):
            tif.write(tissue[:600, :700][:: 2**k, :: 2**k], tile=(256, 256), photometric="rgb",
                      compression=compression, subfiletype=1 if k else 0, metadata=None)
    (case,) = registry.read(path)
    assert [level.shape for level in case.image.data] == [(600, 700, 3), (300, 350, 3)]
    assert np.array_equal(np.asarray(case.image.data[0][:, :]), tifffile.imread(path, key=0))
    assert np.array_equal(case.image.data[1][100:300:3, 5:350:7], tifffile.imread(path, key=1)[100:300:3, 5:350:7])


def test_separate_colour_planes_use_tifffiles_zarr_store(tmp_path, tissue):
    """TiledLevel covers interleaved samples; planar RGB goes through tifffile's zarr store and dask."""
    import dask.array as da

    path = tmp_path / "planar.tif"
    planar = np.moveaxis(tissue, -1, 0)
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        for k in range(2):
            tif.write(planar[:, :: 2**k, :: 2**k], tile=(256, 256), photometric="rgb", planarconfig="separate",
                      compression="zlib", subfiletype=1 if k else 0, metadata=None)
    (case,) = registry.read(path)
    assert all(isinstance(level, da.Array) for level in case.image.data)
    assert case.image.rgb
    assert [level.shape for level in case.image.data] == [(1024, 1024, 3), (512, 512, 3)]
    assert np.array_equal(np.asarray(case.image.data[1][10:20, 30:40]), tissue[::2, ::2][10:20, 30:40])


def test_tile_past_end_of_file_is_reported_when_read(tmp_path, tissue):
    path = builders.write_camelyon_like(tmp_path / "holes.tif", tissue, tile=256)
    with tifffile.TiffFile(path, mode="r+b") as tif:
        counts = list(tif.pages[0].databytecounts)
        counts[5] = 10**9  # tile (1, 1) claims a gigabyte
        tif.pages[0].tags["TileByteCounts"].overwrite(counts)
    (case,) = registry.read(path)  # first and last tiles are sound: opening stays O(1)
    assert np.asarray(case.image.data[0][:256, :256]).shape == (256, 256, 3)
    with pytest.raises(NsclcFormatError, match=r"holes\.tif: is truncated: a tile at byte \d+ needs 1000000000 bytes"):
        np.asarray(case.image.data[0][256:300, 256:300])
