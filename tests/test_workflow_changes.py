"""What a student changed in a case, headless: pixel counts, object matching, summary and provenance."""

from __future__ import annotations

import numpy as np
import pytest

from napari_nsclc.model import BoxSet, Case, ClassInfo, ClassSchema, LabelMask, PointSet, Polygon, PolygonSet
from napari_nsclc.workflow.changes import MOVE_TOLERANCE_PX, CaseChanges, case_changes

TISSUE = ClassSchema("tissue", (ClassInfo(1, "tumour bed", "#ff0000"), ClassInfo(2, "stroma", "#00ff00")))
CELLS = ClassSchema("cells", (ClassInfo(1, "tumour", "#ff0000"), ClassInfo(2, "lymphocyte", "#0000ff")))
MINUS = "\u2212"


def counts(changes: CaseChanges) -> tuple[int, int, int, int]:
    return changes.objects_added, changes.objects_removed, changes.objects_moved, changes.objects_reclassified


def mask_case(data, name="tumour bed", **kwargs) -> Case:
    data = data if isinstance(data, list) else np.asarray(data)
    return Case("case", masks=[LabelMask(name, data, TISSUE, **kwargs)])


# --------------------------------------------------------------------------- masks


def test_mask_painted_and_erased_pixels_are_counted_exactly():
    before = np.zeros((10, 10), np.uint8)
    before[0:2, 0:5] = 1  # 10 px of tumour bed
    after = before.copy()
    after[5:8, 0:4] = 1  # 12 px painted
    after[0, 0:3] = 0  # 3 px erased
    changes = case_changes(mask_case(before), mask_case(after))
    assert changes.pixels == {"tumour bed": {"added": 12, "removed": 3}}
    assert changes.as_provenance() == {
        "pixels_changed": {"tumour bed": {"added": 12, "removed": 3}},
        "objects_added": 0,
        "objects_removed": 0,
        "objects_moved": 0,
        "objects_reclassified": 0,
    }
    assert changes.summary() == f"+12 / {MINUS}3 px tumour bed"
    (layer,) = changes.layers
    assert (layer.name, layer.kind, layer.before_position, layer.after_position) == ("tumour bed", "mask", 0, 0)
    codes = layer.pixel_codes()
    assert codes.dtype == np.uint8 and codes.shape == (10, 10)
    assert int((codes == 1).sum()) == 12 and int((codes == 2).sum()) == 3 and int((codes == 3).sum()) == 0
    assert codes[6, 2] == 1 and codes[0, 1] == 2 and codes[1, 1] == 0


def test_mask_class_change_counts_for_both_classes_and_unknown_values_are_named():
    before = np.zeros((4, 4), np.uint8)
    before[0, :] = 1
    after = before.copy()
    after[0, :2] = 2  # 2 px tumour bed -> stroma
    after[3, 3] = 7  # a value the schema lacks
    changes = case_changes(mask_case(before), mask_case(after))
    assert changes.pixels == {
        "tumour bed": {"added": 0, "removed": 2},
        "stroma": {"added": 2, "removed": 0},
        "<value 7>": {"added": 1, "removed": 0},
    }
    assert changes.summary() == f"+0 / {MINUS}2 px tumour bed; +2 / {MINUS}0 px stroma; +1 / {MINUS}0 px <value 7>"
    codes = changes.layers[0].pixel_codes()
    assert codes[0, 0] == 3 and codes[3, 3] == 1 and codes[0, 3] == 0


def test_masks_sum_by_class_name_and_a_new_mask_is_all_added():
    one = np.zeros((5, 5), np.uint8)
    two = one.copy()
    two[0, 0:4] = 1
    before = Case("case", masks=[LabelMask("a", one, TISSUE)])
    after = Case("case", masks=[LabelMask("a", two, TISSUE), LabelMask("b", two, TISSUE)])
    changes = case_changes(before, after)
    assert changes.pixels == {"tumour bed": {"added": 8, "removed": 0}}
    assert [(layer.name, layer.before_position, layer.after_position) for layer in changes.layers] == [
        ("a", 0, 0),
        ("b", None, 1),
    ]
    # and a mask deleted is all removed
    gone = case_changes(after, before)
    assert gone.pixels == {"tumour bed": {"added": 0, "removed": 8}}


def test_mask_of_another_shape_is_a_whole_replacement():
    before = np.ones((4, 4), np.uint8)  # 16 px
    after = np.zeros((3, 6), np.uint8)
    after[:, 5] = 2  # 3 px stroma
    changes = case_changes(mask_case(before), mask_case(after))
    assert changes.pixels == {"tumour bed": {"added": 0, "removed": 16}, "stroma": {"added": 3, "removed": 0}}
    codes = changes.layers[0].pixel_codes()
    assert codes.shape == (4, 6)  # covers both masks
    assert codes[0, 0] == 2 and codes[0, 5] == 1 and codes[3, 5] == 0


def test_unchanged_multiscale_mask_is_no_change():
    level0 = np.zeros((8, 8), np.uint8)
    level0[2:4, 2:4] = 1
    pyramid = [level0, level0[::2, ::2]]
    changes = case_changes(mask_case(pyramid), mask_case([level0.copy(), level0[::2, ::2].copy()]))
    assert changes.empty and changes.layers == [] and changes.summary() == "no change"
    painted = level0.copy()
    painted[7, 7] = 1  # level 0 only: the coarse level does not see it, the comparison does
    changes = case_changes(mask_case(pyramid), mask_case([painted, level0[::2, ::2].copy()]))
    assert changes.pixels == {"tumour bed": {"added": 1, "removed": 0}}


def test_instance_mask_counts_id_changes_by_class():
    before = np.zeros((6, 6), np.int32)
    before[0:2, 0:2] = 1  # 4 px, tumour
    before[4:6, 4:6] = 2  # 4 px, lymphocyte
    after = before.copy()
    after[0, 0:2] = 3  # a new tumour nucleus splits off 2 px of nucleus 1
    after[3, 0] = 4  # a new 1-px lymphocyte
    before_case = Case("c", masks=[LabelMask("nuclei", before, CELLS, "instance", {1: "tumour", 2: "lymphocyte"})])
    after_classes = {1: "tumour", 2: "tumour", 3: "tumour", 4: "lymphocyte"}  # nucleus 2 reclassified
    after_case = Case("c", masks=[LabelMask("nuclei", after, CELLS, "instance", after_classes)])
    changes = case_changes(before_case, after_case)
    assert changes.pixels == {
        "tumour": {"added": 2 + 4, "removed": 2},
        "lymphocyte": {"added": 1, "removed": 4},
    }


# --------------------------------------------------------------------------- points


def points_case(coords, classes, name="cells") -> Case:
    return Case("case", points=[PointSet(name, coords, classes, CELLS)])


def test_points_deleted_added_moved_reclassified():
    before = points_case(
        [[10, 10], [60, 10], [110, 10], [160, 10], [210, 10]], ["tumour", "tumour", "tumour", "tumour", "tumour"]
    )
    after = points_case(
        [
            [63, 10],  # point 1 moved by 3 px
            [110, 10],  # point 2 reclassified
            [160, 12],  # point 3 moved by 2 px and reclassified
            [210, 10],  # point 4 unchanged
            [500, 500],  # added far away; point 0 deleted
        ],
        ["tumour", "lymphocyte", "lymphocyte", "tumour", "tumour"],
    )
    changes = case_changes(before, after)
    assert counts(changes) == (1, 1, 2, 2)
    (layer,) = changes.layers
    assert layer.kind == "points"
    assert layer.added.tolist() == [4]
    assert layer.moved.tolist() == [0, 2] and layer.moved_from.tolist() == [1, 3]
    assert layer.reclassified.tolist() == [1, 2]
    assert layer.removed.tolist() == [0]
    np.testing.assert_array_equal(layer.removed_objects.coords, [[10, 10]])
    assert layer.removed_objects.classes.tolist() == ["tumour"]
    assert changes.summary() == f"+1 / {MINUS}1 objects, 2 reclassified, 2 moved"
    assert changes.as_provenance() == {
        "pixels_changed": {},
        "objects_added": 1,
        "objects_removed": 1,
        "objects_moved": 2,
        "objects_reclassified": 2,
    }


def test_point_moved_beyond_the_tolerance_is_removed_and_added():
    before = points_case([[0, 0]], ["tumour"])
    after = points_case([[0, MOVE_TOLERANCE_PX + 0.5]], ["tumour"])
    assert counts(case_changes(before, after)) == (1, 1, 0, 0)
    within = points_case([[0, MOVE_TOLERANCE_PX]], ["tumour"])
    assert counts(case_changes(before, within)) == (0, 0, 1, 0)


def test_moves_are_an_assignment_not_nearest_first():
    # nearest first would pair (0, 0) with (0, 12) and leave (0, 25) 40 px from (0, -15);
    # the assignment pairs both, each within the tolerance
    before = points_case([[0, 0], [0, 25]], ["tumour", "tumour"])
    after = points_case([[0, 12], [0, -15]], ["tumour", "tumour"])
    changes = case_changes(before, after)
    assert counts(changes) == (0, 0, 2, 0)
    assert dict(zip(changes.layers[0].moved.tolist(), changes.layers[0].moved_from.tolist(), strict=True)) == {
        0: 1,
        1: 0,
    }


def test_duplicate_points_match_as_a_multiset_same_class_first():
    same = [[5, 5], [5, 5]]
    swapped = case_changes(points_case(same, ["tumour", "lymphocyte"]), points_case(same, ["lymphocyte", "tumour"]))
    assert swapped.empty
    one_more = case_changes(
        points_case(same, ["tumour", "tumour"]), points_case(same * 2, ["tumour"] * 3 + ["lymphocyte"])
    )
    assert counts(one_more) == (2, 0, 0, 0)
    assert one_more.layers[0].added.tolist() == [2, 3]
    relabelled = case_changes(points_case(same, ["tumour", "tumour"]), points_case(same, ["tumour", "lymphocyte"]))
    assert counts(relabelled) == (0, 0, 0, 1) and relabelled.layers[0].reclassified.tolist() == [1]
    fewer = case_changes(points_case(same * 2, ["tumour"] * 4), points_case(same, ["tumour"] * 2))
    assert counts(fewer) == (0, 2, 0, 0)


def test_point_sets_only_on_one_side_and_matched_by_name():
    a = points_case([[1, 1], [2, 2]], ["tumour", "tumour"], name="a")
    b = points_case([[1, 1], [2, 2], [3, 3]], ["tumour"] * 3, name="b")
    changes = case_changes(a, b)
    assert counts(changes) == (3, 2, 0, 0)
    assert [(layer.name, layer.before_position, layer.after_position) for layer in changes.layers] == [
        ("b", None, 0),
        ("a", 0, None),
    ]


def test_20000_unchanged_points_in_another_order_are_no_change():
    rng = np.random.default_rng(0)
    coords = rng.uniform(0, 4000, (20_000, 2))
    classes = rng.choice(["tumour", "lymphocyte"], 20_000)
    order = rng.permutation(20_000)
    changes = case_changes(points_case(coords, classes), points_case(coords[order], classes[order]))
    assert counts(changes) == (0, 0, 0, 0)
    assert changes.pixels == {} and changes.empty and changes.layers == []
    assert changes.summary() == "no change"


def test_20000_points_all_shifted_are_all_moved():
    # one connected group too large to assign optimally: paired nearest first
    grid = np.stack(np.meshgrid(np.arange(200) * 10.0, np.arange(100) * 10.0), -1).reshape(-1, 2)
    changes = case_changes(points_case(grid, ["tumour"] * len(grid)), points_case(grid + 1, ["tumour"] * len(grid)))
    assert counts(changes) == (0, 0, 20_000, 0)
    np.testing.assert_array_equal(changes.layers[0].moved, changes.layers[0].moved_from)


# --------------------------------------------------------------------------- boxes and polygons


def test_boxes_reclassified_moved_removed_added():
    before = Case(
        "case",
        boxes=[BoxSet("boxes", [[0, 0, 10, 10], [100, 100, 120, 130], [300, 300, 310, 310]], ["tumour"] * 3, CELLS)],
    )
    after = Case(
        "case",
        boxes=[
            BoxSet(
                "boxes",
                [[0, 0, 10, 10], [104, 100, 124, 130], [900, 900, 905, 905]],
                ["lymphocyte", "tumour", "tumour"],
                CELLS,
            )
        ],
    )
    changes = case_changes(before, after)
    assert counts(changes) == (1, 1, 1, 1)
    layer = changes.layers[0]
    assert (layer.added.tolist(), layer.moved.tolist(), layer.reclassified.tolist(), layer.removed.tolist()) == (
        [2],
        [1],
        [0],
        [2],
    )
    np.testing.assert_array_equal(layer.removed_objects.bounds, [[300, 300, 310, 310]])
    assert changes.summary() == f"+1 / {MINUS}1 objects, 1 reclassified, 1 moved"


def test_boxes_on_another_plane_are_not_the_same_box():
    bounds = [[0, 0, 10, 10]]
    before = Case("c", boxes=[BoxSet("b", bounds, ["tumour"], CELLS, planes=[3])])
    same = Case("c", boxes=[BoxSet("b", bounds, ["tumour"], CELLS, planes=[3])])
    next_slice = Case("c", boxes=[BoxSet("b", bounds, ["tumour"], CELLS, planes=[4])])
    assert case_changes(before, same).empty
    assert counts(case_changes(before, next_slice)) == (0, 0, 1, 0)  # one slice away: moved


def test_polygons_with_holes_edited_moved_and_reclassified():
    square = np.array([[0, 0], [0, 40], [40, 40], [40, 0]], float)
    hole = np.array([[10, 10], [10, 20], [20, 20], [20, 10]], float)
    before = Case(
        "case",
        polygons=[
            PolygonSet(
                "regions",
                [Polygon(square, [hole]), Polygon(square + 200), Polygon(square + 500)],
                ["tumour", "tumour", "tumour"],
                CELLS,
            )
        ],
    )
    edited = np.insert(square + 200, 1, [[200, 220]], axis=0)  # a vertex added on an edge: same centroid
    after = Case(
        "case",
        polygons=[
            PolygonSet(
                "regions",
                [Polygon(square, [hole]), Polygon(edited), Polygon(square + 1000)],
                ["lymphocyte", "tumour", "tumour"],
                CELLS,
            )
        ],
    )
    changes = case_changes(before, after)
    assert counts(changes) == (1, 1, 1, 1)
    layer = changes.layers[0]
    assert (layer.added.tolist(), layer.moved.tolist(), layer.reclassified.tolist(), layer.removed.tolist()) == (
        [2],
        [1],
        [0],
        [2],
    )
    # the hole is part of the geometry: the same ring without it is another polygon (here: moved in place)
    no_hole = Case("case", polygons=[PolygonSet("regions", [Polygon(square)], ["tumour"], CELLS)])
    with_hole = Case("case", polygons=[PolygonSet("regions", [Polygon(square, [hole])], ["tumour"], CELLS)])
    assert counts(case_changes(with_hole, no_hole)) == (0, 0, 1, 0)


# --------------------------------------------------------------------------- the summary line


def test_summary_and_provenance_of_masks_and_objects():
    changes = CaseChanges(
        pixels={"tumour bed": {"added": 1204, "removed": 88}},
        objects_added=3,
        objects_removed=1,
        objects_moved=1,
        objects_reclassified=2,
    )
    assert changes.summary() == f"+1,204 / {MINUS}88 px tumour bed; +3 / {MINUS}1 objects, 2 reclassified, 1 moved"
    assert list(changes.as_provenance()) == [
        "pixels_changed",
        "objects_added",
        "objects_removed",
        "objects_moved",
        "objects_reclassified",
    ]
    assert CaseChanges(objects_reclassified=1).summary() == "1 reclassified"
    assert CaseChanges().summary() == "no change" and CaseChanges().empty
    assert not CaseChanges(objects_moved=1).empty


def test_two_readers_of_one_cocahis_case_are_compared_layer_against_layer(tmp_path):
    from napari_nsclc.testing import build
    from napari_nsclc.workflow import Workspace
    from napari_nsclc.workflow.changes import reader_changes

    ws = Workspace.open(build("cocahis", tmp_path), annotator="alice")
    case = ws.original(ws.cases[0])
    gt1, gt2 = (next(m for m in case.masks if m.name == name) for name in ("GT1", "GT2"))
    a, b = np.asarray(gt1.data), np.asarray(gt2.data)
    only_gt2, only_gt1 = int(np.count_nonzero((b != 0) & (a == 0))), int(np.count_nonzero((a != 0) & (b == 0)))
    assert only_gt2 + only_gt1 > 0, "the fixture's readers must disagree somewhere for this to mean anything"
    changes, placed = reader_changes(case, "GT1", "GT2")
    (layer,) = changes.layers
    assert layer.name == "GT1" and [m.name for m in placed.masks] == ["GT1"]
    np.testing.assert_array_equal(placed.masks[0].data, b)
    assert sum(v["added"] for v in layer.pixels.values()) == only_gt2
    assert sum(v["removed"] for v in layer.pixels.values()) == only_gt1
    with pytest.raises(KeyError, match="no layer 'GT9'"):
        reader_changes(case, "GT1", "GT9")
