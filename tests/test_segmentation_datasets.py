"""Segmentation layouts: read, class tables, write -> read identical, originals untouched.

Fixtures come from napari_nsclc.testing.segmentation (synthetic, following
FORMATS.md); the real IGNITE mask and real NSCLC-NAT thumbnails from
../shared/samples are used where marked.
"""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest
from PIL import Image

from napari_nsclc import registry
from napari_nsclc.datasets.ignite_he import IGNITE_HE_SCHEMA, looks_like_256_minus_label, undo_256_minus_label
from napari_nsclc.datasets.nsclc_nat import NAT_SCHEMA
from napari_nsclc.formats import masks as mask_io
from napari_nsclc.formats.cocahis import ANNOTATORS
from napari_nsclc.formats.pcam import labels_from_mask
from napari_nsclc.layers import case_to_layers
from napari_nsclc.model import NsclcFormatError, mask_class_counts
from napari_nsclc.testing import build


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_checksums(root) -> dict:
    return {p.relative_to(root).as_posix(): sha256(p) for p in sorted(root.rglob("*")) if p.is_file()}


def loaded(cases):
    return [mask_io.load_case(case) for case in cases]


# --------------------------------------------------------------------------- NSCLC-NAT


def test_nat_root_lists_cases_and_reads_both_masks(tmp_path):
    root = build("nsclc-nat", tmp_path)
    assert registry.detect(root).name == "nsclc-nat"
    cases = registry.read(root)
    assert [c.name for c in cases] == ["1", "2", "3"]
    first = cases[0]
    assert first.image.data.shape == (96, 128, 3) and first.image.rgb
    seg, expert = first.masks
    assert seg.schema is NAT_SCHEMA and seg.schema.name_of(1) == "tumour bed"
    assert set(np.unique(seg.data).tolist()) == {0, 1}
    assert first.provenance.details["mask_encoding"] == "binary 0/255"
    # Mask/ in 0/255 reads as code 1, the same class as SegmentationClass/, and is written back as 255
    assert expert.schema.codes == [1] and expert.schema.name_of(1) == "tumour bed"
    assert expert.attributes["value_map"] == [[255, 1]]
    assert set(np.unique(expert.data).tolist()) == {0, 1}
    np.testing.assert_array_equal(expert.data == 1, seg.data == 1)
    assert mask_class_counts(seg) == {"tumour bed": int(seg.data.sum())}
    layers = case_to_layers(first)
    assert [t for _, _, t in layers] == ["image", "labels", "labels"]
    features = layers[1][1]["features"]
    assert features.to_dict("list") == {"index": [1], "class": ["tumour bed"]}


def test_nat_cases_are_lazy_until_loaded(tmp_path):
    root = build("nsclc-nat", tmp_path)
    cases = registry.read(root)
    assert not isinstance(cases[2].image.data, np.ndarray)  # a dask array, nothing decoded yet
    case = mask_io.load_case(cases[2])
    assert isinstance(case.image.data, np.ndarray) and case.image.path.endswith("3.jpg")
    assert case.masks[0].data.dtype == np.uint8


def test_single_nat_image_finds_its_masks_by_stem(tmp_path):
    root = build("nsclc-nat", tmp_path)
    (case,) = registry.read(root / "Images" / "2.png")
    assert case.name == "2"
    assert [m.attributes["relative_path"] for m in case.masks] == ["SegmentationClass/2.png", "Mask/2.png"]


@pytest.mark.parametrize("encoding", ["0/1", "0/255", "palette", "rgb"])
def test_nat_mask_encoding_is_detected_and_written_back_identically(tmp_path, encoding):
    root = build("nsclc-nat", tmp_path)
    bed = np.asarray(Image.open(root / "SegmentationClass" / "1.png")).astype(bool)
    for stem in ("1", "2", "3"):
        bed = np.asarray(Image.open(root / "SegmentationClass" / f"{stem}.png")).astype(bool)
        target = root / "Mask" / f"{stem}.png"
        if encoding == "0/1":
            Image.fromarray(bed.astype(np.uint8)).save(target)
        elif encoding == "palette":
            image = Image.fromarray(bed.astype(np.uint8), mode="P")
            image.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
            image.save(target)
        elif encoding == "rgb":
            rgb = np.zeros(bed.shape + (3,), np.uint8)
            rgb[bed] = (255, 0, 0)
            Image.fromarray(rgb).save(target)
    expected = {"0/1": "binary 0/1", "0/255": "binary 0/255", "palette": "palette", "rgb": "rgb"}[encoding]
    before = tree_checksums(root)
    cases = loaded(registry.read(root))
    assert cases[0].provenance.details["mask_encoding"] == expected
    expert = cases[0].masks[1]
    assert set(np.unique(expert.data).tolist()) == {0, expert.schema.codes[0]}
    written = registry.write(cases, root, "nsclc-nat")
    assert sorted(p.relative_to(root).as_posix() for p in written) == sorted(
        f"corrections/{folder}/{stem}.png" for folder in ("SegmentationClass", "Mask") for stem in "123"
    )
    for stem in "123":  # re-encoded exactly like the original: same mode, same pixels
        original = Image.open(root / "Mask" / f"{stem}.png")
        copy = Image.open(root / "corrections" / "Mask" / f"{stem}.png")
        assert copy.mode == original.mode
        np.testing.assert_array_equal(np.asarray(copy), np.asarray(original))
        if original.mode == "P":
            assert copy.getpalette()[:6] == original.getpalette()[:6]
    assert {k: v for k, v in tree_checksums(root).items() if not k.startswith("corrections/")} == before


def test_nat_round_trip_read_write_read_is_identical(tmp_path):
    root = build("nsclc-nat", tmp_path / "in")
    cases = loaded(registry.read(root))
    out = tmp_path / "out"
    registry.write(cases, out, "nsclc-nat")
    shutil.copytree(root / "Images", out / "Images")
    again = loaded(registry.read(out))
    assert [c.name for c in again] == [c.name for c in cases]
    for a, b in zip(cases, again, strict=True):
        for mask_a, mask_b in zip(a.masks, b.masks, strict=True):
            assert mask_a.data.dtype == mask_b.data.dtype
            np.testing.assert_array_equal(mask_a.data, mask_b.data)
            assert mask_a.schema == mask_b.schema


def test_nat_corrections_never_overwrite_originals(tmp_path):
    root = build("nsclc-nat", tmp_path)
    cases = loaded(registry.read(root))
    registry.write(cases, root, "nsclc-nat")
    with pytest.raises(NsclcFormatError, match="already exists"):
        registry.write(cases, root, "nsclc-nat")
    original = root / "SegmentationClass" / "1.png"
    before = sha256(original)
    with pytest.raises(NsclcFormatError, match="overwrite=True"):
        registry.write(cases, root, "nsclc-nat", in_place=True)
    assert sha256(original) == before
    cases[0].masks[0].data[0, 0] = 1
    registry.write(cases[:1], root, "nsclc-nat", in_place=True, overwrite=True)  # explicitly asked
    assert np.asarray(Image.open(original))[0, 0] == 1


def test_nat_missing_files_and_empty_folders(tmp_path):
    root = build("nsclc-nat", tmp_path)
    (root / "SegmentationClass" / "2.png").unlink()
    (root / "Mask" / "2.png").unlink()
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(root / "SegmentationClass" / "9.png")
    cases = {c.name: c for c in registry.read(root)}
    assert list(cases) == ["1", "2", "3", "9"]
    two = mask_io.load_case(cases["2"])
    assert not two.masks[0].data.any() and two.masks[0].data.shape == (96, 128)
    assert "SegmentationClass/2.png: missing; an empty tumour-bed mask is ready to paint" in two.provenance.warnings
    assert "9: no image in Images/ for this case; showing its masks alone" in cases["9"].provenance.warnings
    empty = tmp_path / "empty"
    for folder in ("Images", "Mask", "SegmentationClass"):
        (empty / folder).mkdir(parents=True)
    with pytest.raises(NsclcFormatError, match="folders are empty"):
        registry.read(empty)


def test_nat_size_mismatch_is_reported_never_resized(tmp_path):
    root = build("nsclc-nat", tmp_path)
    Image.fromarray(np.zeros((48, 64), np.uint8)).save(root / "SegmentationClass" / "1.png")
    case = registry.read(root)[0]
    assert case.masks[0].data.shape == (48, 64)
    assert any("1.png: mask is 48x64 pixels but its image is 96x128" in w for w in case.provenance.warnings)


def test_real_nat_thumbnails_open_with_synthetic_masks(tmp_path, samples):
    """Three real NSCLC-NAT thumbnails cropped from the dataset's preview sheet."""
    sheet = Image.open(samples / "nsclc-nat" / "image-Dataset.png").convert("RGB")
    root = tmp_path / "nat"
    for index in range(3):
        tile = np.asarray(sheet.crop((index * 200 + 5, 5, index * 200 + 195, 170)))
        tissue = tile.mean(axis=2) < 215
        (root / "Images").mkdir(parents=True, exist_ok=True)
        Image.fromarray(tile).save(root / "Images" / f"{index + 1}.png")
        mask_io.write_mask_file(tissue.astype(np.uint8), root / "SegmentationClass" / f"{index + 1}.png")
    cases = loaded(registry.read(root))
    assert len(cases) == 3 and cases[0].image.data.shape == (165, 190, 3)
    tissue_fraction = cases[0].masks[0].data.mean()
    assert 0.2 < tissue_fraction < 0.9  # the thumbnail really shows tissue on white
    assert cases[0].masks[1].attributes.get("missing")  # no Mask/ folder: empty expert mask


# --------------------------------------------------------------------------- IGNITE


def test_ignite_cases_splits_and_schema(tmp_path):
    data = build("ignite-he", tmp_path)
    cases = registry.read(data)
    assert [c.name for c in cases] == [
        "patient1_he_roi1", "patient1_he_roi1_with_context", "patient2_he_roi2", "patient2_he_roi2_with_context",
    ]  # fmt: skip
    assert [c.image.metadata["split"] for c in cases] == ["train", "train", "test", "test"]
    assert [c.image.metadata["variant"] for c in cases] == ["roi", "with_context"] * 2
    assert len(IGNITE_HE_SCHEMA.classes) == 17 and IGNITE_HE_SCHEMA.name_of(2) == "Tumor cells"
    assert IGNITE_HE_SCHEMA.by_code(0).color[3] == 0  # Unannotated is transparent
    context = mask_io.load_case(cases[1])
    assert context.masks[0].data[0, 0] == 0 and context.masks[0].data.shape == (80, 96)
    roi = cases[0].masks[0].data
    np.testing.assert_array_equal(roi, context.masks[0].data[12:-12, 12:-12])


def test_ignite_real_mask_round_trip_keeps_values_and_classes(tmp_path, samples):
    """The real IGNITE mask (3328x2560) in an IGNITE layout: read, correct, write, read."""
    real = samples / "ignite" / "patient1_he_roi1_with_context.png"
    data = tmp_path / "data"
    (data / "images" / "he").mkdir(parents=True)
    (data / "annotations" / "he").mkdir(parents=True)
    shutil.copy(real, data / "annotations" / "he" / real.name)
    before = sha256(data / "annotations" / "he" / real.name)
    (case,) = registry.read(data)
    labels = case.masks[0].data
    assert labels.shape == (2560, 3328) and labels.dtype == np.uint8
    counts = mask_class_counts(case.masks[0])
    assert set(counts) == {"Unannotated", "Background", "Tumor cells", "Reactive epithelium", "Stroma",
                           "Necrotic tissue", "Erythrocytes", "Macrophages"}  # fmt: skip
    assert counts["Tumor cells"] == 1930701 and counts["Macrophages"] == 180991
    assert not any("outside" in w for w in case.provenance.warnings)
    assert (
        "images/he/patient1_he_roi1_with_context.png: missing; showing the tissue mask alone"
        in case.provenance.warnings
    )
    (written,) = registry.write([case], data, "ignite-he")
    assert written == data / "corrections" / "annotations" / "he" / real.name
    again = np.asarray(Image.open(written))
    np.testing.assert_array_equal(again, labels)
    assert sha256(data / "annotations" / "he" / real.name) == before == sha256(real)


def test_ignite_256_minus_label_trap_is_reported_not_guessed(tmp_path):
    data = build("ignite-he", tmp_path)
    mask_path = data / "annotations" / "he" / "patient1_he_roi1.png"
    labels = np.asarray(Image.open(mask_path))
    flipped = np.where(labels > 0, 256 - labels.astype(int), 0).astype(np.uint8)
    Image.fromarray(flipped).save(mask_path)
    case = registry.read(data)[0]
    np.testing.assert_array_equal(case.masks[0].data, flipped)  # kept as found
    assert case.provenance.details["suspected_256_minus_label"]
    assert any("patient1_he_roi1.png: values look like 256 - label" in w for w in case.provenance.warnings)
    assert looks_like_256_minus_label(flipped) and not looks_like_256_minus_label(labels)
    np.testing.assert_array_equal(undo_256_minus_label(flipped), labels)


def test_ignite_values_outside_schema_are_counted(tmp_path):
    data = build("ignite-he", tmp_path)
    mask_path = data / "annotations" / "he" / "patient1_he_roi1.png"
    labels = np.asarray(Image.open(mask_path)).copy()
    labels[:2, :5] = 40
    Image.fromarray(labels).save(mask_path)
    case = registry.read(data)[0]
    assert (case.masks[0].data == 40).sum() == 10
    assert (
        "patient1_he_roi1.png: 1 value(s) outside the ignite-he classes: 40 (10 px); kept unchanged"
        in case.provenance.warnings
    )


# --------------------------------------------------------------------------- VOC segmentation


def test_voc_segmentation_classes_objects_and_round_trip(tmp_path):
    root = build("voc-segmentation", tmp_path / "in")
    cases = registry.read(root)
    assert [c.name for c in cases] == ["2026_000000", "2026_000001"]
    assert cases[0].image.metadata["splits"] == ["train"]
    class_mask, objects = cases[0].masks
    assert class_mask.schema.names == ["tumour", "stroma", "necrosis", "void"]
    assert class_mask.schema.by_code(255).name == "void"
    assert 255 in np.unique(class_mask.data)
    assert objects.kind == "instance" and set(objects.instance_classes.values()) <= {
        "tumour",
        "stroma",
        "necrosis",
        "void",
    }
    for object_id, name in objects.instance_classes.items():
        under = class_mask.data[(objects.data == object_id) & (class_mask.data != 255)]
        if name != "void":
            assert np.bincount(under).argmax() == class_mask.schema.code_of(name)
    out = tmp_path / "out"
    registry.write(cases, out, "voc-segmentation")
    shutil.copy(root / "labelmap.txt", out / "labelmap.txt")
    again = registry.read(out)
    for a, b in zip(cases, again, strict=True):
        for mask_a, mask_b in zip(a.masks, b.masks, strict=True):
            np.testing.assert_array_equal(mask_a.data, mask_b.data)
        assert a.masks[0].schema == b.masks[0].schema
        assert b.masks[1].instance_classes == a.masks[1].instance_classes
        assert (
            Image.open(out / "SegmentationClass" / f"{a.name}.png").getpalette()
            == Image.open(root / "SegmentationClass" / f"{a.name}.png").getpalette()
        )


def test_voc_without_labelmap_uses_voc_classes(tmp_path):
    root = build("voc-segmentation", tmp_path)
    (root / "labelmap.txt").unlink()
    case = registry.read(root)[0]
    assert case.masks[0].schema.name_of(1) == "aeroplane" and case.masks[0].schema.name_of(255) == "void"


# --------------------------------------------------------------------------- CoCaHis


def test_cocahis_eight_layers_normalised_and_round_trip(tmp_path):
    import h5py

    path = build("cocahis", tmp_path)
    before = sha256(path)
    cases = loaded(registry.read(path))
    assert len(cases) == 2
    assert [m.name for m in cases[0].masks] == list(ANNOTATORS)
    with h5py.File(path, "r") as h5:
        raw = h5["HE/raw"][1]
        gt1, gt5 = h5["GT/GT1"][1], h5["GT/GT5"][1]
    np.testing.assert_array_equal(cases[1].image.data, raw)
    assert set(np.unique(gt1).tolist()) == {0, 255} and set(np.unique(gt5).tolist()) == {0, 1}
    np.testing.assert_array_equal(cases[1].masks[0].data, gt1 // 255)
    np.testing.assert_array_equal(cases[1].masks[4].data, gt5)
    cases[1].masks[0].data[0, :4] = 1  # a correction by annotator 1
    (written,) = registry.write(cases, path.parent, "cocahis")
    assert written == path.parent / "corrections" / path.name
    with h5py.File(written, "r") as h5:
        corrected = np.asarray(h5["GT/GT1"])
        assert set(np.unique(corrected).tolist()) == {0, 255}  # foreground value restored
        np.testing.assert_array_equal(np.asarray(h5["GT/GT5"]), np.stack([c.masks[4].data for c in cases]))
    assert (corrected[1, 0, :4] == 255).all()
    assert sha256(path) == before


def test_cocahis_bad_file_is_a_clear_error(tmp_path):
    import h5py

    path = tmp_path / "bad.hdf5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("HE/raw", data=np.zeros((2, 8, 8, 3), np.uint8))
        h5.create_dataset("GT/GT1", data=np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(NsclcFormatError, match=r"GT/GT1 has shape \(2, 4, 4\) but HE/raw has \(2, 8, 8\)"):
        registry.read(path, "cocahis")


# --------------------------------------------------------------------------- PCam


def test_pcam_patches_with_labels_and_corrections(tmp_path):
    import h5py

    x_path = build("pcam", tmp_path)
    (case,) = registry.read(x_path)
    assert case.image.data.shape == (6, 96, 96, 3)
    mask = case.masks[0]
    assert mask.data.shape == (6, 96, 96)
    assert labels_from_mask(mask.data).tolist() == [0, 1, 0, 1, 0, 1]
    assert case.provenance.details["labels"] == {"tumour": 3, "no tumour": 3}
    corrected = np.asarray(mask.data).copy()
    corrected[0, 40:50, 40:50] = 1  # the student marks patch 0 as tumour
    case.masks[0].data = corrected
    (written,) = registry.write([case], x_path.parent, "pcam")
    assert written.name == "camelyonpatch_level_2_split_valid_y.h5" and written.parent.name == "corrections"
    with h5py.File(written, "r") as h5:
        assert h5["y"].shape == (6, 1, 1, 1)
        assert h5["y"][:, 0, 0, 0].tolist() == [1, 1, 0, 1, 0, 1]


def test_unloaded_cases_are_written_in_their_own_encoding(tmp_path):
    """Corrections of cases never shown (e.g. by ``convert``) keep each file's encoding (palette here)."""
    root = build("nsclc-nat", tmp_path)
    for stem in "123":
        bed = np.asarray(Image.open(root / "SegmentationClass" / f"{stem}.png"))
        image = Image.fromarray(bed, mode="P")
        image.putpalette([0, 0, 0, 255, 127, 14] + [0] * 762)
        image.save(root / "SegmentationClass" / f"{stem}.png")
    cases = registry.read(root)  # case 3 stays lazy
    registry.write(cases, tmp_path / "out", "nsclc-nat")
    copy = Image.open(tmp_path / "out" / "SegmentationClass" / "3.png")
    assert copy.mode == "P" and copy.getpalette()[:6] == [0, 0, 0, 255, 127, 14]
    np.testing.assert_array_equal(np.asarray(copy), np.asarray(Image.open(root / "SegmentationClass" / "3.png")))


def test_a_large_dataset_lists_without_decoding(tmp_path):
    root = build("nsclc-nat", tmp_path)
    for folder in ("Images", "SegmentationClass", "Mask"):
        source = sorted((root / folder).iterdir())[0]
        for index in range(4, 400):
            shutil.copy(source, root / folder / f"{index}{source.suffix}")
    cases = registry.read(root)
    assert len(cases) == 399 and [c.name for c in cases[:11]] == [str(i) for i in range(1, 12)]
    assert all(isinstance(c.masks[0].data, mask_io.LazyArray) for c in cases[1:])
    assert cases[398].masks[0].data.shape == (96, 128)  # from the PNG header, pixels untouched
