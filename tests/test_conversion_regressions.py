"""Each conversion a new user found broken, as a test (the issue's "What we found" list).

Every output is read back with an independent reader: pycocotools, defusedxml,
shapely and skimage, Pillow. File permissions are covered by
``test_permissions.py``.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import shapely
from defusedxml import ElementTree as DET
from PIL import Image
from skimage.measure import label as connected

from napari_nsclc import registry
from napari_nsclc.cli import main
from napari_nsclc.testing import build
from napari_nsclc.testing.slides import write_camelyon_like

IGNITE_NAMES = ["Unannotated", "Background", "Tumor cells", "Reactive epithelium", "Stroma", "Inflammation",
                "Alveolar tissue", "Fatty tissue", "Necrotic tissue", "Erythrocytes", "Bronchial epithelium",
                "Mucus/Plasma/Fluids", "Cartilage/Bone", "Macrophages", "Muscle", "Liver", "Keratinization"]


def _convert(*argv, capsys=None) -> int:
    return main(["convert", *[str(a) for a in argv]])


def _voc_objects(folder: Path) -> list[tuple[str, str, tuple[float, ...]]]:
    """(file stem, class, (xmin, ymin, xmax, ymax)) of every <object> under ``Annotations/``, with defusedxml."""
    out = []
    for path in sorted((folder / "Annotations").glob("*.xml")):
        for obj in DET.parse(str(path)).getroot().iter("object"):
            box = obj.find("bndbox")
            out.append((path.stem, obj.findtext("name"),
                        tuple(float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))))
    return out


def _pycocotools(path: Path):
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


def test_midog_to_voc_keeps_all_4435_boxes_with_their_numbers(samples, tmp_path, capsys):
    source = samples / "midog" / "MIDOG.json"
    assert _convert(source, "--to", "voc", "-o", tmp_path / "voc") == 0
    printed = capsys.readouterr().out
    assert "4,435 cells stored as boxes" in printed and "lost: fields PASCAL VOC XML does not keep: id (4,435)" in printed
    data = json.loads(source.read_text())
    stems = {i["id"]: Path(i["file_name"]).stem for i in data["images"]}
    names = {c["id"]: c["name"] for c in data["categories"]}
    expected = sorted((stems[a["image_id"]], names[a["category_id"]], tuple(float(v) for v in a["bbox"]))
                      for a in data["annotations"])  # MIDOG's [x1, y1, x2, y2] is VOC's xmin, ymin, xmax, ymax
    assert sorted(_voc_objects(tmp_path / "voc")) == expected
    assert len(expected) == 4435


def test_ignite_mask_to_geojson_writes_every_region_pixel_exact(samples, tmp_path):
    source = samples / "ignite" / "patient1_he_roi1_with_context.png"
    out = tmp_path / "tissue.geojson"
    assert _convert(source, "--to", "geojson", "-o", out) == 0
    mask = np.asarray(Image.open(source))
    features = json.loads(out.read_text())["features"]
    regions = sum(int(connected(mask == v, connectivity=2).max()) for v in np.unique(mask) if v)
    assert regions > 100
    assert len(features) == regions  # one feature per 8-connected region of a class (Unannotated, 0, is none)
    # pixel-edge outlines in corner coordinates, as COCO polygons are: pycocotools fills exactly the pixels of a
    # ring; per class, a pixel is inside when more outlines than holes cover it
    from pycocotools import mask as mask_util

    def fill_polygon(rows, cols, shape):
        """The (window, pixels) pycocotools fills for one ring, decoded in the ring's bounding window only."""
        r0, c0 = int(np.floor(rows.min() + 0.5)), int(np.floor(cols.min() + 0.5))
        r1, c1 = int(np.ceil(rows.max() + 0.5)), int(np.ceil(cols.max() + 0.5))
        flat = np.column_stack([cols + 0.5 - c0, rows + 0.5 - r0]).ravel().tolist()
        pixels = mask_util.decode(mask_util.frPyObjects([flat], r1 - r0, c1 - c0))[..., 0].astype(bool)
        return (slice(r0, r1), slice(c0, c1)), pixels

    cover = {}
    for feature in features:
        geometry = shapely.geometry.shape(feature["geometry"])
        assert geometry.is_valid, shapely.is_valid_reason(geometry)
        code = IGNITE_NAMES.index(feature["properties"]["classification"]["name"])
        count = cover.setdefault(code, np.zeros(mask.shape, np.int16))
        for part in getattr(geometry, "geoms", [geometry]):
            for ring, step in ((part.exterior, 1), *((hole, -1) for hole in part.interiors)):
                x, y = np.asarray(ring.coords).T
                window, pixels = fill_polygon(y - 0.5, x - 0.5, mask.shape)
                count[window][pixels] += step
    filled = np.zeros(mask.shape, np.uint8)
    for code, count in cover.items():
        assert set(np.unique(count).tolist()) <= {0, 1}  # no region overlaps another of its class
        filled[count > 0] = code
    np.testing.assert_array_equal(filled, mask)


def test_ignite_mask_to_voc_writes_a_palette_segmentation_root(samples, tmp_path):
    source = samples / "ignite" / "patient1_he_roi1_with_context.png"
    assert _convert(source, "--to", "voc", "-o", tmp_path / "voc") == 0
    png = tmp_path / "voc" / "SegmentationClass" / "patient1_he_roi1_with_context.png"
    with Image.open(png) as image:
        assert image.mode == "P"
        palette = image.getpalette()
        values = np.asarray(image)
    np.testing.assert_array_equal(values, np.asarray(Image.open(source)))
    assert palette[3 * 2 : 3 * 2 + 3] != [0, 0, 0]  # classes have colours
    lines = [ln for ln in (tmp_path / "voc" / "labelmap.txt").read_text().splitlines() if not ln.startswith("#")]
    assert [ln.split(":")[0] for ln in lines] == IGNITE_NAMES  # line k names value k
    assert (tmp_path / "voc" / "ImageSets" / "Segmentation" / "default.txt").read_text().split() == [png.stem]


def test_voc_to_voc_keeps_the_labelmap(tmp_path):
    source = build("voc-segmentation", tmp_path / "src")
    assert _convert(source, "--to", "voc", "-o", tmp_path / "out") == 0
    original = (source / "labelmap.txt").read_text().splitlines()
    written = (tmp_path / "out" / "labelmap.txt").read_text().splitlines()
    assert [ln.split(":")[:2] for ln in written if not ln.startswith("#")] == \
           [ln.split(":")[:2] for ln in original if not ln.startswith("#")]
    for stem in ("2026_000000", "2026_000001"):
        for folder in ("SegmentationClass", "SegmentationObject"):
            new, old = Image.open(tmp_path / "out" / folder / f"{stem}.png"), Image.open(source / folder / f"{stem}.png")
            assert new.mode == old.mode == "P" and new.getpalette() == old.getpalette()
            np.testing.assert_array_equal(np.asarray(new), np.asarray(old))


def test_nat_root_to_coco_is_valid_coco_that_pycocotools_decodes(tmp_path):
    root = build("nsclc-nat", tmp_path / "nat")
    out = tmp_path / "nat.json"
    assert _convert(root, "--to", "coco", "-o", out) == 0
    data = json.loads(out.read_text())
    coco = _pycocotools(out)
    assert [(i["id"], i["file_name"], i["width"], i["height"]) for i in data["images"]] == [
        (1, "1.png", 128, 96), (2, "2.png", 128, 96), (3, "3.jpg", 128, 96)]
    for ann in data["annotations"]:
        for key in ("id", "image_id", "category_id", "area", "iscrowd"):
            assert isinstance(ann[key], int), (key, ann[key])
        assert all(isinstance(v, (int, float)) for v in ann["bbox"])
        assert isinstance(ann["segmentation"], (list, dict)) and not isinstance(ann["segmentation"], str)
    for image, stem in zip(data["images"], ("1", "2", "3"), strict=True):
        for layer, folder, scale in (("tumour bed (SegmentationClass)", "SegmentationClass", 1),
                                     ("expert mask (Mask)", "Mask", 255)):
            anns = [a for a in data["annotations"] if a["image_id"] == image["id"] and a["layer"] == layer]
            decoded = np.zeros((96, 128), bool)
            for ann in anns:
                decoded |= coco.annToMask(ann).astype(bool)
            mask = np.asarray(Image.open(root / folder / f"{stem}.png"))
            np.testing.assert_array_equal(decoded, mask == scale)


def _nat_without_one_expert_mask(tmp_path) -> Path:
    root = build("nsclc-nat", tmp_path / "nat")
    (root / "Mask" / "3.png").unlink()
    return root


def test_nat_root_to_masks_mirrors_the_layout_and_writes_no_unpainted_mask(tmp_path):
    root = _nat_without_one_expert_mask(tmp_path)
    assert _convert(root, "--to", "masks", "-o", tmp_path / "out") == 0
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written[0] == ".nsclc-convert/manifest.json"  # what a later run of the same conversion skips
    written = written[1:]
    assert written == ["Mask/1.png", "Mask/2.png",
                       "SegmentationClass/1.png", "SegmentationClass/2.png", "SegmentationClass/3.png"]
    for name in written:
        new, old = Image.open(tmp_path / "out" / name), Image.open(root / name)
        assert new.mode == old.mode
        np.testing.assert_array_equal(np.asarray(new), np.asarray(old))  # Mask/ stays 0/255
    # once painted, the missing expert mask is written, in the 0/255 encoding of the folder's other masks
    from napari_nsclc.formats.masks import load_case

    cases = [load_case(case) for case in registry.read(root)]
    expert = cases[2].masks[1]
    assert expert.attributes["missing"] and not np.asarray(expert.data).any()
    expert.data[10:20, 30:50] = 1
    registry.write(cases, tmp_path / "painted", "masks")
    painted = np.asarray(Image.open(tmp_path / "painted" / "Mask" / "3.png"))
    assert painted.sum() == 200 * 255 and set(np.unique(painted).tolist()) == {0, 255}
    # the command line never writes into the source; the writer puts corrections beside the originals
    assert _convert(root, "--to", "nsclc-nat", "-o", root) == 2 and not (root / "corrections").exists()
    registry.write(registry.read(root), root, "nsclc-nat")
    assert (root / "corrections" / "Mask" / "1.png").is_file() and not (root / "corrections" / "Mask" / "3.png").exists()


@pytest.mark.parametrize("encoding", ["0/255", "palette"])
def test_nat_expert_mask_reads_as_code_1_and_is_written_back_in_its_encoding(tmp_path, encoding):
    root = build("nsclc-nat", tmp_path / "nat")
    if encoding == "palette":  # a palette Mask/ whose tumour bed is index 3
        for path in (root / "Mask").glob("*.png"):
            values = (np.asarray(Image.open(path)) > 0).astype(np.uint8) * 3
            image = Image.fromarray(values, mode="P")
            image.putpalette([0, 0, 0, 40, 40, 40, 80, 80, 80, 255, 128, 0] + [0] * 756)
            image.save(path)
    cases = registry.read(root)
    for case in cases:
        case = __import__("napari_nsclc.formats.masks", fromlist=["load_case"]).load_case(case)
        seg, expert = case.masks
        np.testing.assert_array_equal(np.asarray(expert.data), np.asarray(seg.data))  # both: 1 = tumour bed
        assert expert.schema.name_of(1) == seg.schema.name_of(1) == "tumour bed"
    assert _convert(root, "--to", "nsclc-nat", "-o", tmp_path / "out") == 0
    for path in sorted((root / "Mask").glob("*.png")):
        new, old = Image.open(tmp_path / "out" / "Mask" / path.name), Image.open(path)
        assert new.mode == old.mode and new.getpalette() == old.getpalette()
        np.testing.assert_array_equal(np.asarray(new), np.asarray(old))


def test_labelme_style_coco_to_voc_keeps_one_object_per_annotation_and_its_bbox(tmp_path):
    from pycocotools import mask as mask_util

    # labelme2coco writes bbox from the rasterised mask (pycocotools' toBbox), not from the vertices
    rings = [[10.3, 10.7, 30.6, 10.2, 30.1, 25.4, 10.8, 24.9], [40.5, 12.2, 52.6, 12.7, 46.1, 22.3]]
    rle = mask_util.merge(mask_util.frPyObjects(rings, 64, 80))
    bbox = [float(v) for v in mask_util.toBbox(rle)]
    x0 = min(min(r[0::2]) for r in rings)
    assert abs(bbox[0] - x0) > 0.2  # the given box is not the vertices' box
    document = {"images": [{"id": 1, "file_name": "a.jpg", "width": 80, "height": 64}],
                "categories": [{"id": 1, "name": "tumor", "supercategory": ""}],
                "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": rings, "bbox": bbox,
                                 "area": float(mask_util.area(rle)), "iscrowd": 0}]}
    source = tmp_path / "labelme.json"
    source.write_text(json.dumps(document))
    assert _convert(source, "--to", "voc", "-o", tmp_path / "voc") == 0
    x, y, w, h = bbox
    assert _voc_objects(tmp_path / "voc") == [("a", "tumor", (x, y, x + w, y + h))]


def test_lung_pet_ct_dx_to_coco_has_one_image_per_annotated_slice(samples, tmp_path):
    source = samples / "lung-pet-ct-dx"
    out = tmp_path / "lung.json"
    assert _convert(source, "--to", "coco", "-o", out) == 0
    data = json.loads(out.read_text())
    _pycocotools(out)
    assert len(data["annotations"]) == 18 and len(data["images"]) == 18
    xml_boxes = {}
    for path in (source / "Annotation" / "A0002").glob("*.xml"):
        (obj,) = DET.parse(str(path)).getroot().iter("object")
        box = obj.find("bndbox")
        xmin, ymin, xmax, ymax = (float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        xml_boxes[path.stem] = (obj.findtext("name"), [xmin, ymin, xmax - xmin, ymax - ymin])
    images = {i["id"]: i for i in data["images"]}
    names = {c["id"]: c["name"] for c in data["categories"]}
    for ann in data["annotations"]:
        image = images[ann["image_id"]]
        assert (image["width"], image["height"]) == (512, 512) and isinstance(image["z"], int)
        assert image["file_name"].endswith(".dcm") and (source / "Lung-PET-CT-Dx" / "Lung_Dx-A0002").exists()
        assert xml_boxes[image["sop_instance_uid"]] == (names[ann["category_id"]], ann["bbox"])  # numbers as given


def _camelyon_with_slide(samples, tmp_path) -> Path:
    xml = tmp_path / "patient_004_node_4.xml"
    shutil.copy(samples / "camelyon17" / "patient_004_node_4.xml", xml)
    write_camelyon_like(tmp_path / "patient_004_node_4.tif", shape=(100_000, 40_000), reuse_tiles=True, n_levels=2)
    return xml


def test_camelyon_asap_to_coco_needs_the_slide_and_keeps_its_numbers(samples, tmp_path, capsys):
    alone = tmp_path / "alone" / "patient_004_node_4.xml"
    alone.parent.mkdir()
    shutil.copy(samples / "camelyon17" / "patient_004_node_4.xml", alone)
    assert _convert(alone, "--to", "coco", "-o", tmp_path / "refused.json") == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "patient_004_node_4.xml" in error and "width and height" in error
    assert not (tmp_path / "refused.json").exists()

    xml = _camelyon_with_slide(samples, tmp_path)
    assert _convert(xml, "--to", "coco", "-o", tmp_path / "c.json") == 0
    assert _convert(xml, "--to", "geojson", "-o", tmp_path / "c.geojson") == 0
    data = json.loads((tmp_path / "c.json").read_text())
    _pycocotools(tmp_path / "c.json")
    assert data["images"] == [{"id": 1, "file_name": "patient_004_node_4.tif", "width": 40_000, "height": 100_000}]
    asap = []
    for annotation in DET.parse(str(xml)).getroot().iter("Annotation"):
        coordinates = sorted(annotation.iter("Coordinate"), key=lambda c: int(c.get("Order")))
        asap.append([(float(c.get("X")), float(c.get("Y"))) for c in coordinates])
    coco = [list(zip(a["segmentation"][0][0::2], a["segmentation"][0][1::2], strict=True))
            for a in data["annotations"]]
    geojson = [[tuple(p) for p in f["geometry"]["coordinates"][0][:-1]]
               for f in json.loads((tmp_path / "c.geojson").read_text())["features"]]
    assert len(asap) == 3
    for ring_asap, ring_coco, ring_geojson in zip(asap, coco, geojson, strict=True):
        # ASAP, COCO and GeoJSON all count from the top-left pixel corner: the same numbers, unshifted
        np.testing.assert_allclose(ring_coco, ring_asap, atol=1e-3)
        np.testing.assert_allclose(ring_geojson, ring_asap, atol=1e-3)
