"""NuCLS CSV coordinates parsed in bulk, checked against the row-by-row NuCLS dataset reader."""

from __future__ import annotations

import csv

import numpy as np

from napari_nsclc import registry
from napari_nsclc.nuclei import nucls
from napari_nsclc.testing.cells import build_nucls


def test_bulk_rings_equal_the_dataset_readers_polygons(tmp_path):
    root = build_nucls(tmp_path)
    table = sorted((root / "csv").glob("*.csv"))[0]
    nuclei = nucls.read(table)
    case = next(c for c in registry.read(root) if c.name == table.stem)
    reference = case.polygons[0]
    assert len(nuclei) == len(reference.polygons) > 3
    for i, polygon in enumerate(reference.polygons):
        np.testing.assert_array_equal(nuclei.ring(i), polygon.exterior)
    assert nuclei.class_names() == [str(c) for c in reference.classes]


def test_bad_rows_are_counted_and_the_others_load(tmp_path):
    path = tmp_path / "fov.csv"
    rows = [["", "raw_classification", "type", "coords_x", "coords_y"],
            ["0", "tumor", "polyline", "1,5,5,1", "1,1,5,1"],
            ["1", "lymphocyte", "polyline", "10,x,14", "10,10,14"],
            ["2", "fibroblast", "polyline", "20,24,24", "20,20"],
            ["3", "tumor", "rectangle", "30,34,34,30,30", "30,30,34,34,30"],
            ["4", "mystery", "polyline", "40,44,44", "40,40,nan"]]
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    nuclei = nucls.read(path)
    assert nuclei.records.tolist() == [0, 3]
    assert nuclei.problems.counts() == {nucls.BAD: 3} and nuclei.problems.found[nucls.BAD] == [1, 2, 4]
    np.testing.assert_array_equal(nuclei.ring(0), [[1, 1], [1, 5], [5, 5]])  # (y, x), the closing vertex dropped
    np.testing.assert_array_equal(nuclei.ring(1), [[30, 30], [30, 34], [34, 34], [34, 30]])
    assert nuclei.class_names() == ["tumor", "tumor"]
    vertices, lengths, good = nucls.parse_rings(["1,2,3", " ", "4,5,6"], ["7,8,9", "", "1,2"])
    assert good.tolist() == [True, False, False] and lengths.tolist() == [3]
    np.testing.assert_array_equal(vertices, [[1, 7], [2, 8], [3, 9]])


def test_the_mask_encodings_unlabeled_code_is_the_schemas():
    from napari_nsclc.datasets.nucls import class_code
    from napari_nsclc.datasets.nucls_pairs import UNLABELED_CODE, encode_mask

    assert class_code("unlabeled") == UNLABELED_CODE == 99
    mask = encode_mask(np.array([[0, 1], [2, 2]]), {1: 3})  # nucleus 2 has no class: unlabeled
    assert mask[..., 0].tolist() == [[253, 3], [99, 99]]
