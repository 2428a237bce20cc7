"""NuCLS, IGNITE PD-L1 and OCELOT: readers, writers and bad input.

NuCLS tiles, IGNITE COCO files and OCELOT patches have no public copy: the
fixtures are synthetic (napari_nsclc.testing.cells) and follow FORMATS.md.
The NuCLS code table and OCELOT metadata/point output are the real files.
"""

from __future__ import annotations

import csv
import hashlib
import json
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from napari_nsclc import registry
from napari_nsclc.datasets import nucls, ocelot
from napari_nsclc.testing import cells


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --------------------------------------------------------------------------- NuCLS


def test_nucls_code_table_equals_the_real_csv(samples):
    with open(samples / "nucls" / "nucleus_GTcodes.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    table = [
        (r["group"], int(r["overlay_order"]), int(r["GT_code"]), int(r["is_roi"]), int(r["is_background_class"]),
         r["color"], r["comments"])
        for r in rows
    ]  # fmt: skip
    assert tuple(table) == nucls.NUCLS_GT_CODES
    schema = nucls.NUCLS_SCHEMA
    assert schema.code_of("tumor") == 1 and schema.code_of("eosinophil") == 12 and schema.code_of("unlabeled") == 99
    assert schema.color_of("macrophage") == pytest.approx((1.0, 128 / 255, 1.0, 1.0))
    assert schema.level("mitotic_figure", "main") == "tumor_mitotic"
    assert schema.level("correction_fibroblast", "super") == "nonTIL_stromal"
    assert schema.level("plasma_cell", "super") == "sTIL"
    assert schema.level("unlabeled", "main") == "AMBIGUOUS"


def test_nucls_folder_reads(tmp_path):
    root = cells.build_nucls(tmp_path)
    assert registry.detect(root).name == "nucls"
    cases = registry.read(root)
    assert len(cases) == 2
    case = cases[0]
    assert case.image.shape == (100, 120) and case.image.pixel_size == (0.2, 0.2) and case.image.unit == "um"
    # left-57095_top-37584_bottom-37664_right-57191: 96 base px for 120 px at 0.2 um -> base mpp 0.25
    assert case.image.origin == pytest.approx((37584 * 0.25, 57095 * 0.25))
    assert case.image.metadata["slide_bounds"] == {"left": 57095, "top": 37584, "bottom": 37664, "right": 57191}
    (nuclei,) = case.polygons
    assert list(nuclei.classes) == ["tumor", "tumor", "lymphocyte", "fibroblast", "mitotic_figure", "macrophage"]
    rectangle = nuclei.polygons[3]
    assert rectangle.kind == "rectangle"
    np.testing.assert_array_equal(rectangle.exterior, [[76, 15], [76, 35], [84, 35], [84, 15]])
    assert nuclei.polygons[0].kind == "polygon" and len(nuclei.polygons[0].exterior) == 12
    instances, classes, fov = case.masks
    assert instances.kind == "instance"
    assert instances.instance_classes == {1: "tumor", 2: "tumor", 3: "lymphocyte", 4: "fibroblast",
                                          5: "mitotic_figure", 6: "macrophage"}  # fmt: skip
    assert classes.data[80, 25] == 2 and instances.data[80, 25] == 4
    assert fov.data[2, 2] == 0 and fov.data[50, 50] == 253 and fov.data[80, 25] == 253
    assert not case.provenance.warnings


def test_single_fov_opens_from_any_of_its_files(tmp_path):
    root = cells.build_nucls(tmp_path)
    for folder in ("rgb", "mask", "csv", "visualization"):
        path = next((root / folder).iterdir())
        assert registry.detect(path).name == "nucls"
    (case,) = registry.read(next((root / "csv").iterdir()))
    assert len(case.polygons[0]) == 6 and len(case.masks) == 3


def test_nucls_round_trip_and_reclassify(tmp_path):
    root = cells.build_nucls(tmp_path / "in")
    originals = {p: _sha(p) for p in root.rglob("*.*")}
    cases = registry.read(root)
    out = tmp_path / "out"
    registry.write(cases, out, "nucls")
    for case in cases:
        source_csv = root / "csv" / f"{case.name}.csv"
        assert (out / "csv" / f"{case.name}.csv").read_text() == source_csv.read_text()
        np.testing.assert_array_equal(
            np.asarray(Image.open(out / "mask" / f"{case.name}.png")), np.asarray(Image.open(root / "mask" / f"{case.name}.png"))
        )
        assert (out / "rgb" / f"{case.name}.png").read_bytes() == (root / "rgb" / f"{case.name}.png").read_bytes()
    assert {p: _sha(p) for p in root.rglob("*.*")} == originals
    # reclassify one nucleus: main and super follow raw
    case = cases[0]
    case.polygons[0].classes[2] = "plasma_cell"
    target = tmp_path / "one.csv"
    registry.write([case], target, "nucls")
    rows = list(csv.DictReader(target.open()))
    assert (rows[2]["raw_classification"], rows[2]["main_classification"], rows[2]["super_classification"]) == (
        "plasma_cell", "plasma_cell", "sTIL")
    source_rows = list(csv.DictReader((root / "csv" / f"{case.name}.csv").open()))
    assert rows[2]["coords_x"] == source_rows[2]["coords_x"]
    assert rows[0] == source_rows[0]


def test_nucls_mask_with_1000_nuclei_decodes_by_pair(tmp_path):
    """1,000 nuclei: beyond the 254th, ch1*ch2 repeats, so only the pair identifies a nucleus."""
    pairs = list(combinations(range(1, 256), 2))[:1000]
    products = [a * b for a, b in pairs]
    assert len(set(products)) < 1000  # the trap is real
    side = 200
    mask = np.zeros((side, side, 3), np.uint8)
    mask[..., 0] = 253
    truth = np.zeros((side, side), np.int32)
    for index, (a, b) in enumerate(pairs):
        row, col = divmod(index, 40)
        y, x = row * 5 + 1, col * 5 + 1
        mask[y : y + 3, x : x + 3] = (1 + index % 12, a, b)
        truth[y : y + 3, x : x + 3] = index + 1
    instances, codes, classes, fov = nucls.decode_mask(mask)
    np.testing.assert_array_equal(instances, truth)
    assert len(codes) == 1000 and codes[1000] == 1 + 999 % 12 and codes[255] == 1 + 254 % 12
    assert (classes[truth == 1000] == 1 + 999 % 12).all() and classes[0, 0] == 0
    assert (fov == 253).all()
    np.testing.assert_array_equal(nucls.encode_mask(instances, codes, fov), mask)
    assert nucls.instance_id_of_pair(2, 3) == 255 and tuple(nucls.pair_of_instance_id(255)) == (2, 3)


def test_nucls_mask_off_by_a_pixel_is_fitted_and_reported(tmp_path):
    root = cells.build_nucls(tmp_path)
    mask_path = next((root / "mask").iterdir())
    mask = np.asarray(Image.open(mask_path))
    grown = np.zeros((101, 119, 3), np.uint8)
    grown[:100, :119] = mask[:, :119]
    Image.fromarray(grown).save(mask_path)
    (case,) = registry.read(mask_path)
    assert case.masks[0].data.shape == (100, 120)
    assert case.masks[0].data[:, 119].max() == 0
    (warning,) = case.provenance.warnings
    assert warning.startswith(f"mask/{mask_path.name}: mask is 119x101 px but the RGB is 120x100")


def test_nucls_csv_missing_columns_and_bad_rows(tmp_path):
    root = cells.build_nucls(tmp_path)
    csv_path = min((root / "csv").iterdir())
    lines = csv_path.read_text().splitlines()
    rows = list(csv.reader(lines))
    keep = [rows[0].index(c) for c in ("", "raw_classification", "xmin", "ymin", "xmax", "ymax")]
    text = "\n".join(",".join(r[i] for i in keep) for r in rows) + "\n"
    text = text.replace("\n2,lymphocyte,", "\n2,lymphocyte,x,")  # a row with a non-number
    csv_path.write_text(text)
    (case,) = registry.read(csv_path)
    nuclei = case.polygons[0]
    assert len(nuclei) == 5 and all(p.kind == "polygon" for p in nuclei.polygons)
    np.testing.assert_array_equal(nuclei.polygons[0].exterior, [[18, 21], [18, 39], [32, 39], [32, 21]])
    first, second = case.provenance.warnings
    assert first.startswith(f"{csv_path.name}: missing columns main_classification, super_classification, type")
    assert "rectangles from xmin..ymax" in first
    assert second.startswith(f"{csv_path.name}: row 2:")


def test_nucls_parquet_export_reads(tmp_path):
    import pyarrow as pa  # the testing extra installs it
    import pyarrow.parquet as pq
    root = cells.build_nucls(tmp_path / "folder")
    stem = next((root / "csv").iterdir()).stem
    rows = list(csv.DictReader((root / "csv" / f"{stem}.csv").open()))
    coordinates = {k: [r[k] for r in rows] for k in ("raw_classification", "main_classification",
                                                     "super_classification", "type")}  # fmt: skip
    for k in ("xmin", "ymin", "xmax", "ymax"):
        coordinates[k] = [int(r[k]) for r in rows]
    coordinates["coords_x"] = [[int(v) for v in r["coords_x"].split(",")] for r in rows]
    coordinates["coords_y"] = [[int(v) for v in r["coords_y"].split(",")] for r in rows]
    table = pa.table({
        "file_name": [stem],
        "rgb_image": [{"bytes": (root / "rgb" / f"{stem}.png").read_bytes(), "path": None}],
        "mask_image": [{"bytes": (root / "mask" / f"{stem}.png").read_bytes(), "path": None}],
        "annotation_coordinates": [coordinates],
    })  # fmt: skip
    path = tmp_path / "train-00000.parquet"
    pq.write_table(table, path)
    assert registry.detect(path).name == "nucls"
    (case,) = registry.read(path)
    (folder_case,) = registry.read(root / "csv" / f"{stem}.csv")
    assert list(case.polygons[0].classes) == list(folder_case.polygons[0].classes)
    for a, b in zip(case.polygons[0].polygons, folder_case.polygons[0].polygons, strict=True):
        assert a == b
    np.testing.assert_array_equal(case.masks[0].data, folder_case.masks[0].data)
    assert case.image.origin == pytest.approx(folder_case.image.origin)


# --------------------------------------------------------------------------- IGNITE PD-L1


def test_ignite_pdl1_points_region_and_rgb(tmp_path):
    path = cells.build_ignite_pdl1(tmp_path)
    assert registry.detect(path).name == "ignite-pdl1"
    (case,) = registry.read(path)
    assert case.image.pixel_size == (0.5, 0.5) and case.image.unit == "um"
    assert case.image.rgb and np.asarray(case.image.data).shape == (128, 160, 3)  # RGBA shown as RGB
    (points,) = case.points
    document = json.loads(path.read_text())
    first = document["annotations"][0]["bbox"]
    # the cell is the centre of its 16 x 16 box; IGNITE boxes have a pixel-corner origin: model = file - 0.5
    np.testing.assert_array_equal(points.coords[0], [first[1] + 8 - 0.5, first[0] + 8 - 0.5])
    assert points.counts() == {"pd-l1 negative tumor cell": 4, "pd-l1 positive tumor cell": 4, "non-tumor cell": 4}
    assert points.attributes[0]["box_size"] == (16.0, 16.0)
    (region,) = case.boxes
    # annotated_xyxy [24, 16, 136, 112] is a box in corner coordinates: model = file - 0.5
    np.testing.assert_array_equal(region.bounds, [[15.5, 23.5, 111.5, 135.5]])


def test_ignite_multi_reader_gives_one_layer_per_reader(tmp_path):
    path = cells.build_ignite_pdl1(tmp_path).with_name("pdl1_annotations_readers.json")
    assert registry.detect(path).name == "ignite-pdl1"
    (case,) = registry.read(path)
    assert [p.name for p in case.points] == ["reader P1", "reader P2"]
    p1, p2 = case.points
    assert p1.counts() == {"pd-l1 negative tumor cell": 4, "pd-l1 positive tumor cell": 4, "non-tumor cell": 4}
    # category ids 4..6 of reader P2 map to classes 1..3: (id - 1) % 3
    assert p2.classes[0] == "pd-l1 positive tumor cell" and p1.classes[0] == "pd-l1 negative tumor cell"
    out = tmp_path / "readers_out.json"
    registry.write([case], out, "ignite-pdl1")
    assert json.loads(out.read_text()) == json.loads(path.read_text())
    p2.classes[1] = "non-tumor cell"  # reader P2's cell 1 (category 5) becomes non-tumor: category 6
    p2.coords[2] += (2.0, 0.0)
    out2 = tmp_path / "readers_edit.json"
    registry.write([case], out2, "ignite-pdl1")
    edited = {a["id"]: a for a in json.loads(out2.read_text())["annotations"]}
    source = {a["id"]: a for a in json.loads(path.read_text())["annotations"]}
    assert edited[14]["category_id"] == 6 and source[14]["category_id"] == 5
    assert edited[15]["bbox"] == [source[15]["bbox"][0], source[15]["bbox"][1] + 2, 16, 16]


def test_ignite_nuclei_file(tmp_path):
    path = cells.build_ignite_pdl1(tmp_path).parents[1] / "nuclei" / "nuclei_annotations.json"
    (case,) = registry.read(path)
    assert case.points[0].name == "nuclei" and case.points[0].counts() == {"nucleus": 12}
    out = tmp_path / "nuclei.json"
    registry.write([case], out, "ignite-pdl1")
    assert out.read_text() == path.read_text()


def test_ignite_round_trip_and_region_edit(tmp_path):
    path = cells.build_ignite_pdl1(tmp_path)
    (case,) = registry.read(path)
    out = tmp_path / "same.json"
    registry.write([case], out, "ignite-pdl1")
    assert out.read_text() == path.read_text()
    case.boxes[0].bounds[0] = (9.5, 19.5, 99.5, 129.5)  # model coordinates: the file's corner ones - 0.5
    out2 = tmp_path / "region.json"
    registry.write([case], out2, "ignite-pdl1")
    assert json.loads(out2.read_text())["images"][0]["annotated_xyxy"] == [20, 10, 130, 100]


# --------------------------------------------------------------------------- OCELOT


def test_ocelot_real_metadata_places_cell_patch_inside_tissue_patch(samples):
    (sample,) = ocelot.load_metadata(samples / "ocelot" / "metadata.json").values()
    cell_size, cell_origin = ocelot.placement(sample, "cell")
    tissue_size, tissue_origin = ocelot.placement(sample, "tissue")
    side = 1024
    cell_extent = np.array(cell_origin) + side * np.array(cell_size)
    tissue_extent = np.array(tissue_origin) + side * np.array(tissue_size)
    assert np.all(np.array(cell_origin) >= tissue_origin) and np.all(cell_extent <= tissue_extent + 1e-6)
    centre = (np.array(cell_origin) + cell_extent) / 2
    relative = (centre - tissue_origin) / (tissue_extent - np.array(tissue_origin))
    assert relative == pytest.approx([sample["patch_y_offset"], sample["patch_x_offset"]], abs=2e-3)
    # the cell patch is 808 level-0 px wide: 1024 px at its resized mpp covers the same micrometres
    assert side * cell_size[1] == pytest.approx(808 * sample["mpp_x"], rel=1e-4)


def test_ocelot_fixture_reads_and_overlays(tmp_path):
    root = cells.build_ocelot(tmp_path)
    assert registry.detect(root).name == "ocelot"
    tissue, cell = registry.read(root)
    assert tissue.name == "001 tissue" and cell.name == "001 cell"
    assert set(np.unique(tissue.masks[0].data).tolist()) == {1, 2, 255}
    points = cell.points[0]
    rows = [line.split(",") for line in (root / "annotations/train/cell/001.csv").read_text().splitlines()]
    tumour = sum(r[2] == "2" for r in rows)
    assert points.counts() == {"background cell": 15 - tumour, "tumor cell": tumour}
    first = (root / "annotations/train/cell/001.csv").read_text().splitlines()[0].split(",")
    np.testing.assert_array_equal(points.coords[0], [float(first[1]), float(first[0])])
    assert points.classes[0] == ("tumor cell" if first[2] == "2" else "background cell")
    assert cell.image.origin[1] > tissue.image.origin[1] and cell.image.pixel_size[0] < tissue.image.pixel_size[0]
    out = tmp_path / "cells.csv"
    registry.write([cell], out, "ocelot")
    assert out.read_text() == (root / "annotations/train/cell/001.csv").read_text()
    points.classes[0] = "background cell" if points.classes[0] == "tumor cell" else "tumor cell"
    out2 = tmp_path / "edited.csv"
    registry.write([cell], out2, "ocelot")
    assert out2.read_text().splitlines()[0] == f"{first[0]},{first[1]},{3 - int(first[2])}"


def test_ocelot_bad_csv_lines(tmp_path):
    root = cells.build_ocelot(tmp_path)
    csv_path = root / "annotations/train/cell/001.csv"
    csv_path.write_text(csv_path.read_text() + "5,nan,1\n-3,4,2\n10,10,7\n1,2\n")
    _tissue, cell = registry.read(root)
    assert len(cell.points[0]) == 15
    assert [w.split(":")[1].strip() for w in cell.provenance.warnings] == [f"line {n}" for n in (16, 17, 18, 19)]


def test_ocelot_point_output_json(samples):
    path = samples / "ocelot" / "example_output.json"
    assert registry.detect(path).name == "ocelot-points"  # the challenge's output format, a reader of its own
    (case,) = registry.read(path)
    assert case.name == "image_0" and len(case.points[0]) == 32
    np.testing.assert_array_equal(case.points[0].coords[0], [620, 128])
    assert case.points[0].counts() == {"background cell": 32}


# --------------------------------------------------------------------------- CLI


def test_cli_converts_cell_datasets(tmp_path, samples):
    from napari_nsclc.cli import main

    root = cells.build_nucls(tmp_path / "nucls")
    out = tmp_path / "nucls.json"
    assert main(["convert", str(root), "--to", "coco", "-o", str(out)]) == 0
    document = json.loads(out.read_text())
    names = {c["id"]: c["name"] for c in document["categories"]}
    per_class = {}
    for ann in document["annotations"]:
        per_class[names[ann["category_id"]]] = per_class.get(names[ann["category_id"]], 0) + 1
    # 6 nuclei and one FOV region per FOV; the masks that redraw the CSV nuclei are not exported twice
    assert per_class == {"tumor": 4, "lymphocyte": 2, "fibroblast": 2, "mitotic_figure": 2, "macrophage": 2, "fov": 2}
    assert len(document["images"]) == 2
    midog_out = tmp_path / "midog_coco.json"
    assert main(["convert", str(samples / "midog" / "MIDOG.json"), "--to", "coco", "-o", str(midog_out)]) == 0
    converted = json.loads(midog_out.read_text())
    assert len(converted["annotations"]) == 4435
    first = converted["annotations"][0]
    assert first == {"bbox": [4336, 346, 50, 50], "category_id": 2, "image_id": 1, "id": 1, "area": 2500, "iscrowd": 0}
    folder = tmp_path / "ocelot_out"
    root = cells.build_ocelot(tmp_path / "ocelot")
    assert main(["convert", str(root), "--to", "ocelot", "-o", str(folder)]) == 0
    # into a folder the OCELOT writer puts each file where it was in the dataset (write_ocelot docstring)
    assert (folder / "annotations/train/cell/001.csv").read_text() == (root / "annotations/train/cell/001.csv").read_text()


def test_coco_export_of_new_polygons_has_exact_area_and_bbox(tmp_path):
    import shapely

    root = cells.build_nucls(tmp_path / "nucls")
    cases = registry.read(root)
    out = tmp_path / "nuclei.json"
    registry.write(cases, out, "coco")
    document = json.loads(out.read_text())
    nuclei = [a for a in document["annotations"] if a["category_id"] != 253]
    assert len(nuclei) == 12
    for ann in nuclei:
        (flat,) = ann["segmentation"]
        xy = np.asarray(flat, float).reshape(-1, 2)
        assert ann["area"] == pytest.approx(shapely.Polygon(xy).area)
        assert ann["bbox"] == [xy[:, 0].min(), xy[:, 1].min(), np.ptp(xy[:, 0]), np.ptp(xy[:, 1])]
    # NuCLS vertices are pixel indices; COCO puts the origin at pixel (0, 0)'s corner, half a pixel earlier
    rectangle = nuclei[3]
    assert rectangle["segmentation"] == [[15.5, 76.5, 35.5, 76.5, 35.5, 84.5, 15.5, 84.5]] and rectangle["area"] == 160
