"""DICOM series reading on synthetic series (written with pydicom by napari_nsclc.testing.radiology).

Also decodes pydicom's own bundled test files (MR_small in several transfer
syntaxes), which were written by other toolkits.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import dask.array as da
import numpy as np
import pydicom
import pytest
from pydicom import uid
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset

from napari_nsclc import registry
from napari_nsclc.datasets import lung_pet_ct_dx as lung
from napari_nsclc.formats import dicom
from napari_nsclc.model import NsclcFormatError
from napari_nsclc.testing import build
from napari_nsclc.testing import radiology as fx


@pytest.fixture(scope="module")
def collection(tmp_path_factory) -> Path:
    return build("lung-pet-ct-dx", tmp_path_factory.mktemp("radiology"))


@pytest.fixture(scope="module")
def cases(collection):
    return lung.read_lung_pet_ct_dx(collection)


def _series_folder(collection: Path, name: str) -> Path:
    return next(p for p in (collection / "Lung-PET-CT-Dx").rglob("*") if p.is_dir() and name in p.name)


def _write_series(folder: Path, depth=4, **kwargs) -> list[str]:
    return fx.write_ct_series(folder, fx.ct_phantom((depth, 16, 16)), spacing=(2.5, 0.8, 0.8), **kwargs)


def test_shuffled_file_names_are_sorted_by_position(collection, cases):
    ct = cases[0]
    assert ct.image.metadata["modality"] == "CT"
    names = [Path(f).name for f in ct.image.metadata["files"]]
    # slice k is in file 1-{NAME_ORDER.index(k)+1}
    assert names == [f"1-{fx.NAME_ORDER.index(k) + 1:02d}.dcm" for k in range(10)]
    assert ct.image.metadata["slice_positions"] == [-40.0 + 5.0 * k for k in range(10)]
    np.testing.assert_array_equal(np.asarray(ct.image.data), fx.ct_phantom())


def test_ct_and_pet_share_world_coordinates(cases):
    ct, pet = cases
    assert pet.image.metadata["modality"] == "PT"
    assert ct.image.pixel_size == (5.0, 5.0, 5.0) and pet.image.pixel_size == (5.0, 10.0, 10.0)
    assert ct.image.origin == (-40.0, -157.5, -157.5)
    assert pet.image.origin == (-40.0, -155.0, -155.0)
    # the hottest PET voxel and the tumour centre of the CT are at the same place in mm
    suv = np.asarray(pet.image.data)
    hot = np.argwhere(suv > 7).mean(axis=0)
    hot_mm = np.array(pet.image.origin) + hot * np.array(pet.image.pixel_size)
    tz, ty, tx, _ = fx.TUMOUR
    tumour_mm = np.array(ct.image.origin) + np.array([tz, ty, tx]) * np.array(ct.image.pixel_size)
    assert np.abs(hot_mm - tumour_mm).max() <= 5.0  # within one PET voxel half-width + one CT voxel


def test_pet_is_in_suv_body_weight(cases, collection):
    pet = cases[1]
    assert pet.image.metadata["units"] == "SUVbw"
    assert pet.image.metadata["suv_bw_factor"] == pytest.approx(fx.pet_suv_factor(), rel=1e-9)
    suv = np.asarray(pet.image.data)
    assert suv.dtype == np.float32
    assert suv.max() == pytest.approx(8.0, abs=0.01)
    assert np.median(suv[suv > 1]) == pytest.approx(2.0, abs=0.01)
    assert pet.image.metadata["window"] == dicom.WINDOW_PRESETS["pet"]
    raw = registry.get_format("dicom").read(_series_folder(collection, "PET WB"))
    bqml = dicom.read_dicom(_series_folder(collection, "PET WB"), pet_units="bqml")[0]
    assert raw[0].image.metadata["units"] == "SUVbw" and bqml.image.metadata["units"] == "Bq/ml"
    np.testing.assert_allclose(np.asarray(bqml.image.data) * fx.pet_suv_factor(), suv, rtol=1e-5)


def test_window_presets_and_default_by_modality():
    assert dicom.WINDOW_PRESETS["mediastinum"] == (350.0, 40.0)
    assert dicom.WINDOW_PRESETS["lung"] == (1400.0, -700.0)
    assert dicom.contrast_limits("lung") == (-1400.0, 0.0)
    assert dicom.default_window("CT") == "mediastinum" and dicom.default_window("PT") == "pet"
    assert dicom.default_window("MR") is None


def test_boxes_and_browser_on_synthetic_collection(collection, cases):
    ct, pet = cases
    boxes = ct.boxes[0]
    assert boxes.planes.tolist() == sorted(fx.tumour_boxes())
    # the slice's VOC <bndbox> is 14 20 22 28 (xmin ymin xmax ymax); corner origin: model = file - 0.5
    assert boxes.bounds[list(boxes.planes).index(5)].tolist() == [19.5, 13.5, 27.5, 21.5]
    assert len(pet.boxes[0]) == 0
    rows = lung.browse_collection(collection)
    assert [(r.modality, r.slices, r.annotated, r.on_disk) for r in rows] == [
        ("CT", 10, 7, True), ("PT", 10, 0, True), ("CT", 64, None, False)]


def test_lazy_series_has_one_chunk_per_slice(collection):
    case = dicom.read_dicom(_series_folder(collection, "CT Chest  5mm"), lazy=True)[0]
    data = case.image.data
    assert isinstance(data, da.Array)
    assert data.chunks[0] == (1,) * 10 and data.chunks[1:] == ((64,), (64,))
    np.testing.assert_array_equal(data[5].compute(), fx.ct_phantom()[5])


@pytest.mark.parametrize(
    "syntax", [uid.RLELossless, uid.JPEGLosslessSV1, uid.JPEG2000Lossless], ids=["rle", "jpeg-lossless", "jpeg2000"]
)
def test_compressed_series_decode_exactly(tmp_path, syntax):
    volume = fx.ct_phantom((3, 32, 32))  # OpenJPEG's default 6 resolutions need at least 32 px
    fx.write_ct_series(tmp_path, volume, spacing=(2.0, 1.0, 1.0), transfer_syntax=syntax)
    case = dicom.read_dicom(tmp_path)[0]
    assert case.image.metadata["transfer_syntax"] == syntax
    np.testing.assert_array_equal(np.asarray(case.image.data), volume)


@pytest.mark.parametrize(
    "name", ["MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_implicit.dcm"]
)
def test_third_party_compressed_files_match_the_uncompressed_one(tmp_path, name):
    reference = pydicom.dcmread(get_testdata_file("MR_small.dcm")).pixel_array
    case = dicom.read_dicom(get_testdata_file(name))[0]
    np.testing.assert_array_equal(np.asarray(case.image.data)[0], reference)


def test_undecodable_transfer_syntax_says_which(tmp_path):
    from pydicom.encaps import encapsulate

    _write_series(tmp_path, depth=1)
    path = next(tmp_path.glob("*.dcm"))
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = uid.MPEG2MPML
    ds.PixelData = encapsulate([b"\x00" * 64])
    ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(NsclcFormatError, match="MPEG2 Main Profile / Main Level.*could not be decoded|could not be "
                                               "decoded.*MPEG2"):
        dicom.read_dicom(tmp_path)


def test_gap_in_slice_positions_is_warned_and_not_resampled(tmp_path):
    uids = _write_series(tmp_path, depth=6)
    victim = next(f for f in tmp_path.glob("*.dcm") if pydicom.dcmread(f).SOPInstanceUID == uids[3])
    victim.unlink()
    case = dicom.read_dicom(tmp_path)[0]
    assert case.image.shape == (5, 16, 16)
    assert case.image.pixel_size[0] == 2.5
    assert case.image.metadata["slice_positions"] == [-40.0, -37.5, -35.0, -30.0, -27.5]
    gap = [w for w in case.provenance.warnings if "gap" in w]
    assert len(gap) == 1 and "between slice 2 and 3: 5.000 mm instead of 2.500 mm" in gap[0]
    assert "NOT resampled" in gap[0]


def test_two_series_in_one_folder_open_separately(tmp_path):
    _write_series(tmp_path / "a", depth=3, description="first")
    _write_series(tmp_path / "b", depth=4, description="second", series_number=5)
    for f in (tmp_path / "b").glob("*.dcm"):
        shutil.move(f, tmp_path / "a" / f"x{f.name}")
    cases = dicom.read_dicom(tmp_path / "a")
    assert sorted(c.image.shape[0] for c in cases) == [3, 4]
    assert any("mixes 2 series" in w for w in cases[0].provenance.warnings)


def test_non_image_objects_are_skipped_and_listed(tmp_path):
    _write_series(tmp_path, depth=3)
    sr = Dataset()
    sr.file_meta = FileMetaDataset()
    sr.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
    sr.file_meta.MediaStorageSOPInstanceUID = fx.uid("sr")
    sr.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    sr.SOPClassUID, sr.SOPInstanceUID, sr.Modality = "1.2.840.10008.5.1.4.1.1.88.11", fx.uid("sr"), "SR"
    sr.SeriesInstanceUID = fx.uid("sr-series")
    sr.save_as(tmp_path / "report.dcm", enforce_file_format=True)
    shutil.copy(get_testdata_file("rtstruct.dcm"), tmp_path / "rtstruct.dcm")
    dicomdir = Dataset()
    dicomdir.file_meta = FileMetaDataset()
    dicomdir.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    dicomdir.file_meta.MediaStorageSOPInstanceUID = fx.uid("dicomdir")
    dicomdir.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    dicomdir.DirectoryRecordSequence = []
    dicomdir.save_as(tmp_path / "DICOMDIR", enforce_file_format=True)
    cases = dicom.read_dicom(tmp_path)
    assert len(cases) == 1 and cases[0].image.shape == (3, 16, 16)
    warnings = cases[0].provenance.warnings
    assert any(w.startswith("report.dcm: a SR object with no image") for w in warnings)
    assert any(w.startswith("rtstruct.dcm: a RTSTRUCT object with no image") for w in warnings)
    assert any(w.startswith("DICOMDIR: a DICOMDIR") for w in warnings)


def test_truncated_file_is_skipped_with_a_message(tmp_path):
    _write_series(tmp_path, depth=4)
    victim = sorted(tmp_path.glob("*.dcm"))[1]
    victim.write_bytes(victim.read_bytes()[:-100])
    case = dicom.read_dicom(tmp_path)[0]
    assert case.image.shape == (3, 16, 16)
    assert any(w.startswith(f"{victim.name}: truncated file") for w in case.provenance.warnings)
    header_only = sorted(tmp_path.glob("*.dcm"))[2]
    header_only.write_bytes(header_only.read_bytes()[:200])
    case = dicom.read_dicom(tmp_path)[0]
    assert case.image.shape == (2, 16, 16)
    assert any(w.startswith(f"{header_only.name}: ") for w in case.provenance.warnings)


def test_missing_pixel_spacing_warns_and_uses_1_mm(tmp_path):
    _write_series(tmp_path, depth=2)
    for f in tmp_path.glob("*.dcm"):
        ds = pydicom.dcmread(f)
        del ds.PixelSpacing
        ds.save_as(f, enforce_file_format=True)
    case = dicom.read_dicom(tmp_path)[0]
    assert case.image.pixel_size == (2.5, 1.0, 1.0)
    assert any("no PixelSpacing" in w and "1 mm is assumed" in w for w in case.provenance.warnings)


def test_a_folder_without_dicom_is_a_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(NsclcFormatError, match="no DICOM image series could be read"):
        dicom.read_dicom(tmp_path)


def test_uid_layout_reads_like_nbia_layout(tmp_path, collection):
    """Older copies name folders by UID; nothing depends on folder names."""
    source = _series_folder(collection, "CT Chest  5mm")
    target = tmp_path / fx.uid("patient") / fx.uid("study") / fx.uid("series")
    shutil.copytree(source, target)
    case = dicom.read_dicom(tmp_path)[0]
    np.testing.assert_array_equal(np.asarray(case.image.data), fx.ct_phantom())


def test_multi_frame_file_is_a_volume_placed_by_per_frame_positions(tmp_path):
    volume = fx.ct_phantom((4, 16, 16))
    _write_series(tmp_path / "single", depth=1)
    single = next((tmp_path / "single").glob("*.dcm"))
    ds = pydicom.dcmread(single)
    single.unlink()
    ds.SeriesInstanceUID = fx.uid("multi-frame series")
    ds.NumberOfFrames = 4
    ds.PixelData = (volume.astype(np.int32) + 1024).astype("<u2").tobytes()
    frames = []
    for k in (3, 2, 1, 0):  # frames stored feet-last: position decides the order, not the frame index
        item = Dataset()
        plane = Dataset()
        plane.ImagePositionPatient = [-6.0, -6.0, 100.0 + 3.0 * k]
        item.PlanePositionSequence = [plane]
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = frames
    ds.save_as(tmp_path / "multi.dcm", enforce_file_format=True)
    case = dicom.read_dicom(tmp_path / "multi.dcm")[0]
    assert case.image.shape == (4, 16, 16)
    assert case.image.metadata["slice_positions"] == [100.0, 103.0, 106.0, 109.0]
    assert case.image.pixel_size == (3.0, 0.8, 0.8)
    np.testing.assert_array_equal(np.asarray(case.image.data), volume[::-1])


def test_localizer_in_the_same_series_is_split_off(tmp_path):
    _write_series(tmp_path, depth=5)
    scout = pydicom.dcmread(sorted(tmp_path.glob("*.dcm"))[0])
    scout.SOPInstanceUID = scout.file_meta.MediaStorageSOPInstanceUID = fx.uid("scout")
    scout.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
    scout.Rows = scout.Columns = 8
    scout.PixelData = np.zeros((8, 8), "<u2").tobytes()
    scout.save_as(tmp_path / "scout.dcm", enforce_file_format=True)
    cases = dicom.read_dicom(tmp_path)
    assert [c.image.shape for c in cases] == [(5, 16, 16), (1, 8, 8)]
    assert any("2 different sizes or orientations" in w for w in cases[0].provenance.warnings)


def test_colour_screen_capture_is_skipped(tmp_path):
    _write_series(tmp_path, depth=2)
    shutil.copy(get_testdata_file("SC_rgb_small_odd.dcm"), tmp_path / "capture.dcm")
    cases = dicom.read_dicom(tmp_path)
    assert [c.image.shape for c in cases] == [(2, 16, 16)]
    assert any(w.startswith("capture.dcm: a colour image") for w in cases[0].provenance.warnings)


def test_a_whole_collection_decodes_only_its_first_gigabyte_up_front(tmp_path, monkeypatch):
    from napari_nsclc.formats import dicom as dicom_module
    from napari_nsclc.testing import build

    root = build("lung-pet-ct-dx", tmp_path)
    eager = dicom_module.read_dicom(root / "Lung-PET-CT-Dx")
    assert [c.image.metadata["lazy"] for c in eager] == [False, False]  # small series: decoded at once
    first_bytes = np.asarray(eager[0].image.data).nbytes
    monkeypatch.setattr(dicom_module, "EAGER_TOTAL_BYTES", first_bytes)  # room for the first series only
    cases = dicom_module.read_dicom(root / "Lung-PET-CT-Dx")
    assert [c.image.metadata["lazy"] for c in cases] == [False, True]
    np.testing.assert_array_equal(np.asarray(cases[1].image.data), np.asarray(eager[1].image.data))
