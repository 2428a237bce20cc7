"""A Labels layer to COCO and back: pycocotools decodes exactly the painted classes."""

from __future__ import annotations

import json

import numpy as np
from pycocotools import mask as mask_util  # the reference decoder (testing extra)

from napari_nsclc import registry
from napari_nsclc.cli import main
from napari_nsclc.model import Case, ClassInfo, ClassSchema, ImageRef, LabelMask, Provenance

SCHEMA = ClassSchema("tissue", (ClassInfo(1, "tumour", "#ff0000"), ClassInfo(2, "stroma", "#00ff00")))


def labels_with_a_hole() -> np.ndarray:
    labels = np.zeros((60, 80), np.uint8)
    labels[5:40, 5:40] = 1
    labels[15:25, 15:25] = 0  # a hole in the tumour
    labels[18:22, 18:22] = 2  # stroma inside the hole
    labels[45:58, 50:78] = 2
    labels[50, 10] = 1  # a single pixel
    return labels


def test_labels_to_coco_decode_with_pycocotools_to_the_same_pixels(tmp_path):
    labels = labels_with_a_hole()
    case = Case("slide", ImageRef(path="slide.png", shape=labels.shape), masks=[LabelMask("tissue", labels, SCHEMA)],
                provenance=Provenance("slide.png", "napari"))
    out = tmp_path / "slide.json"
    registry.write([case], out, "coco")
    document = json.loads(out.read_text())
    names = {c["id"]: c["name"] for c in document["categories"]}
    assert sorted(names.values()) == ["stroma", "tumour"]
    assert len(document["annotations"]) == 4  # tumour with a hole, two stroma regions, one pixel
    decoded = np.zeros_like(labels)
    for annotation in document["annotations"]:
        segmentation = annotation["segmentation"]
        if isinstance(segmentation, list):
            segmentation = mask_util.merge(mask_util.frPyObjects(segmentation, *labels.shape))
        pixels = mask_util.decode(segmentation).astype(bool)
        assert annotation["area"] == pixels.sum()
        decoded[pixels] = SCHEMA.code_of(names[annotation["category_id"]])
    np.testing.assert_array_equal(decoded, labels)


def test_coco_converts_back_to_an_identical_label_mask(tmp_path):
    labels = labels_with_a_hole()
    case = Case("slide", ImageRef(path="slide.png", shape=labels.shape), masks=[LabelMask("tissue", labels, SCHEMA)],
                provenance=Provenance("slide.png", "napari"))
    coco = tmp_path / "slide.json"
    registry.write([case], coco, "coco")
    out = tmp_path / "masks"
    assert main(["convert", str(coco), "--to", "masks", "-o", str(out)]) == 0
    (written,) = sorted(out.glob("*.png"))
    from PIL import Image

    back = np.asarray(Image.open(written))
    # codes follow the COCO category ids, which the writer numbered by class
    document = json.loads(coco.read_text())
    code_of = {c["id"]: SCHEMA.code_of(c["name"]) for c in document["categories"]}
    np.testing.assert_array_equal(np.vectorize(lambda v: code_of.get(v, 0))(back), labels)


def test_convert_masks_to_voc_writes_palette_pngs_with_a_labelmap(tmp_path):
    from PIL import Image

    from napari_nsclc.testing import build

    source = build("ignite-he", tmp_path)
    out = tmp_path / "voc"
    assert main(["convert", str(source), "--to", "voc", "-o", str(out)]) == 0
    pngs = sorted((out / "SegmentationClass").glob("*.png"))
    cases = registry.read(source)
    assert len(pngs) == len(cases)
    # a VOC root: labelmap.txt at the root (not in SegmentationClass/), ImageSets/Segmentation lists the images
    assert not (out / "SegmentationClass" / "labelmap.txt").exists()
    labelmap = (out / "labelmap.txt").read_text()
    assert "Tumor cells" in labelmap
    listed = (out / "ImageSets" / "Segmentation" / "default.txt").read_text().split()
    assert listed == [p.stem for p in pngs]
    written = Image.open(pngs[0])
    assert written.mode == "P"  # a palette PNG: values are class codes, colours ride along
    from napari_nsclc.formats.masks import load_case

    first = load_case(cases[0])
    np.testing.assert_array_equal(np.asarray(written), np.asarray(first.masks[0].data))


def test_the_real_ignite_mask_alone_opens_with_ignite_classes(samples):
    from PIL import Image

    path = samples / "ignite" / "patient1_he_roi1_with_context.png"
    assert registry.detect(path).name == "ignite-he"
    (case,) = registry.read(path)
    mask = case.masks[0]
    np.testing.assert_array_equal(np.asarray(mask.data), np.asarray(Image.open(path)))
    counts = case.counts()["tissue"]
    assert set(counts) == {"Unannotated", "Background", "Tumor cells", "Reactive epithelium", "Stroma",
                           "Necrotic tissue", "Erythrocytes", "Macrophages"}  # values {0,1,2,3,4,8,9,13}
    assert counts["Tumor cells"] == int((np.asarray(mask.data) == 2).sum())
