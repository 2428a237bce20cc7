"""Agreement metrics of the review: masks, points, boxes, several readers.

Each figure is checked against a value worked out by hand (in the comments) and,
where they have the same metric, against scikit-learn, statsmodels or
``krippendorff``. The IGNITE H&E mask is the real one from ``../shared/samples``;
the IGNITE PD-L1 reader files and the CoCaHis HDF5 are synthetic (no public copy
exists; see SOURCES.md) and are built from FORMATS.md by napari_nsclc.testing.
"""

from __future__ import annotations

import json
import math

import krippendorff
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching
from sklearn.metrics import (
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    jaccard_score,
    precision_recall_fscore_support,
)
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from napari_nsclc.datasets.ignite_he import IGNITE_HE_SCHEMA, read_ignite_he
from napari_nsclc.datasets.ignite_pdl1 import IGNITE_PDL1_SCHEMA, read_ignite_cells
from napari_nsclc.formats.cocahis import read_cocahis
from napari_nsclc.model import BoxSet, ClassSchema, ImageRef, LabelMask, PointSet
from napari_nsclc.review.matching import box_iou, cluster_points, match_boxes, match_points
from napari_nsclc.review.metrics import DEFAULT_RADIUS_UM, box_agreement, mask_agreement, point_agreement
from napari_nsclc.review.multirater import (
    NOT_MARKED,
    fleiss_kappa,
    krippendorff_alpha,
    majority_mask,
    majority_points,
    mask_reader_agreement,
    pairwise,
    point_reader_agreement,
)
from napari_nsclc.testing import build

NEG, POS, OTHER = IGNITE_PDL1_SCHEMA.names  # "pd-l1 negative tumor cell", "... positive ...", "non-tumor cell"


def as_json(result) -> dict:
    """The result's dict survives strict JSON (no NaN) unchanged."""
    data = result.as_dict()
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    return data


def extended_labels(result, classes_a, classes_b, none="(none)"):
    """y_true / y_pred over every object: pairs, then a's unmatched (pred none), then b's (true none)."""
    y_true = [classes_a[i] for i, _ in result.matching.pairs] + [classes_a[i] for i in result.matching.only_a]
    y_pred = [classes_b[j] for _, j in result.matching.pairs] + [none] * len(result.matching.only_a)
    y_true += [none] * len(result.matching.only_b)
    y_pred += [classes_b[j] for j in result.matching.only_b]
    return y_true, y_pred


def assert_per_class_matches_sklearn(result, classes_a, classes_b, labels):
    y_true, y_pred = extended_labels(result, classes_a, classes_b)
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=np.nan)
    for k, label in enumerate(labels):
        got = result.per_class[label]
        np.testing.assert_allclose([got["precision"], got["recall"], got["f1"]], [p[k], r[k], f[k]], equal_nan=True)


# --------------------------------------------------------------------------- masks

A = np.array([[0, 1, 1, 0], [0, 1, 1, 0], [2, 2, 0, 0], [2, 2, 0, 0]])
B = np.array([[0, 1, 1, 1], [0, 0, 1, 0], [2, 2, 2, 0], [0, 0, 0, 0]])


def test_mask_dice_iou_and_changes_by_hand_and_sklearn():
    result = mask_agreement(A, B)
    # class 1: a 4 px, b 4 px, overlap 3 -> Dice 6/8, IoU 3/5; class 2: a 4, b 3, overlap 2 -> 4/7, 2/5
    assert result.per_class == {
        "1": {"dice": 0.75, "iou": 0.6, "a_pixels": 4, "b_pixels": 4, "overlap": 3},
        "2": {"dice": pytest.approx(4 / 7), "iou": pytest.approx(0.4), "a_pixels": 4, "b_pixels": 3, "overlap": 2},
    }
    assert result.pixels_changed == 5 and result.pixels_compared == 16  # (0,3) (1,1) (2,2) (3,0) (3,1)
    assert result.mean_dice == pytest.approx((0.75 + 4 / 7) / 2) and result.mean_iou == pytest.approx(0.5)
    assert result.confusion == {"labels": ["0", "1", "2"], "matrix": confusion_matrix(A.ravel(), B.ravel()).tolist()}
    dice = f1_score(A.ravel(), B.ravel(), labels=[1, 2], average=None)
    iou = jaccard_score(A.ravel(), B.ravel(), labels=[1, 2], average=None)
    np.testing.assert_allclose([result.per_class["1"]["dice"], result.per_class["2"]["dice"]], dice)
    np.testing.assert_allclose([result.per_class["1"]["iou"], result.per_class["2"]["iou"]], iou)
    again = mask_agreement(B, A)  # symmetric
    assert again.per_class["2"]["dice"] == result.per_class["2"]["dice"] and again.pixels_changed == 5


def test_mask_edge_cases_empty_one_sided_and_absent_classes_are_defined():
    empty = np.zeros((3, 3), int)
    both_empty = mask_agreement(empty, empty, {1: "tumour"})
    # Two empty masks: Dice is 0/0, NaN by decision (not 1.0), None in JSON; nothing changed
    assert math.isnan(both_empty.per_class["tumour"]["dice"]) and math.isnan(both_empty.mean_dice)
    assert both_empty.pixels_changed == 0
    assert as_json(both_empty)["per_class"]["tumour"] == {"dice": None, "iou": None, "a_pixels": 0, "b_pixels": 0,
                                                          "overlap": 0}  # fmt: skip
    one = empty.copy()
    one[0, 0] = 1
    only_a = mask_agreement(one, empty, {1: "tumour", 2: "stroma"})
    assert only_a.per_class["tumour"]["dice"] == 0.0 and only_a.per_class["tumour"]["iou"] == 0.0
    assert math.isnan(only_a.per_class["stroma"]["dice"])  # in neither: NaN, and left out of the mean
    assert only_a.mean_dice == 0.0 and only_a.pixels_changed == 1
    same = mask_agreement(one, one)
    assert same.per_class == {"1": {"dice": 1.0, "iou": 1.0, "a_pixels": 1, "b_pixels": 1, "overlap": 1}}
    f1 = f1_score(one.ravel(), empty.ravel(), labels=[1, 2], average=None, zero_division=np.nan)
    np.testing.assert_array_equal(f1, [0.0, np.nan])  # scikit-learn agrees with both decisions


def test_mask_schema_names_background_ignore_and_errors():
    schema = ClassSchema.from_names("t", ["tumour", "stroma"], background=0)  # codes 1, 2
    a, b = LabelMask("a", A, schema), LabelMask("b", B.copy(), schema)
    b.data[3, 3] = 7  # a value outside the schema
    result = mask_agreement(a, b)
    assert list(result.per_class) == ["tumour", "stroma", "<value 7>"]
    assert result.per_class["<value 7>"]["b_pixels"] == 1 and result.per_class["<value 7>"]["dice"] == 0.0
    with_background = mask_agreement(A, B, background=None)
    assert with_background.per_class["0"]["overlap"] == 6  # 8 in a, 9 in b -> 12/17
    assert with_background.per_class["0"]["dice"] == pytest.approx(12 / 17)
    # ignoring code 0: pixels that are 0 in either mask are not compared; 1 and 2 then agree except (3,?)
    ignored = mask_agreement(A, B, ignore=0)
    assert ignored.pixels_compared == 5 and ignored.pixels_changed == 0
    assert ignored.per_class["1"]["dice"] == 1.0 and ignored.per_class["2"]["a_pixels"] == 2
    with pytest.raises(ValueError, match="different shapes"):
        mask_agreement(A, B[:3])
    with pytest.raises(ValueError, match="instance mask"):
        mask_agreement(LabelMask("i", A, schema, kind="instance"), A)
    with pytest.raises(ValueError, match="integer"):
        mask_agreement(A.astype(float), B)


# --------------------------------------------------------------------------- points


def ignite_points(name, rows):
    coords, classes = zip(*rows, strict=True) if rows else ((), ())
    return PointSet(name, np.reshape(coords, (-1, 2)), list(classes), IGNITE_PDL1_SCHEMA)


def test_point_matching_per_class_confusion_and_kappa_by_hand_and_sklearn():
    a = ignite_points("P1", [((100, 100), NEG), ((100, 200), POS), ((300, 300), OTHER), ((500, 500), NEG)])
    # b0 5 µm from a0; b1 exactly 20 px = 10 µm from a1 (inclusive); b2 on a2; b3 far from everything
    b = ignite_points("P2", [((100, 110), NEG), ((100, 220), NEG), ((300, 300), OTHER), ((700, 700), POS)])
    result = point_agreement(a, b, pixel_size=0.5)  # default radius: 10 µm, IGNITE's 20 px at 0.5 µm/px
    assert DEFAULT_RADIUS_UM == 10.0
    assert result.matching.pairs == ((0, 0), (1, 1), (2, 2)) and result.matching.scores == (5.0, 10.0, 0.0)
    assert result.matching.only_a == (3,) and result.matching.only_b == (3,)
    assert (result.matched, result.unmatched_a, result.unmatched_b) == (3, 1, 1)
    assert result.detection == {"precision": 0.75, "recall": 0.75, "f1": 0.75}
    # neg: a {a0, a3}, b {b0, b1}, TP a0-b0 -> 1/2, 1/2, 1/2; pos: a {a1}, b {b3}, TP 0; other: a2-b2
    assert result.per_class[NEG] == {
        "precision": 0.5,
        "recall": 0.5,
        "f1": 0.5,
        "support": 2,
        "tp": 1,
        "fp": 1,
        "fn": 1,
    }
    assert result.per_class[POS] == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 1,
        "tp": 0,
        "fp": 1,
        "fn": 1,
    }
    assert result.per_class[OTHER] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1, "tp": 1, "fp": 0,
                                       "fn": 0}  # fmt: skip
    assert result.confusion == {"labels": [NEG, POS, OTHER], "matrix": [[1, 0, 0], [1, 0, 0], [0, 0, 1]]}
    # pairs (neg, neg) (pos, neg) (other, other): p_o = 2/3, p_e = 1/3 * 2/3 + 0 + 1/3 * 1/3 = 1/3 -> kappa 1/2
    assert result.kappa == pytest.approx(0.5) and result.class_agreement == pytest.approx(2 / 3)
    pairs_a, pairs_b = (
        [a.classes[i] for i, _ in result.matching.pairs],
        [b.classes[j] for _, j in result.matching.pairs],
    )
    assert result.kappa == pytest.approx(cohen_kappa_score(pairs_a, pairs_b))
    assert result.confusion["matrix"] == confusion_matrix(pairs_a, pairs_b, labels=[NEG, POS, OTHER]).tolist()
    assert_per_class_matches_sklearn(result, a.classes, b.classes, [NEG, POS, OTHER])
    data = as_json(result)
    assert data["matched"] == 3 and data["criterion"] == {"radius_um": 10.0, "pixel_size_um": [0.5, 0.5]}


def test_points_exactly_at_the_radius_match_and_just_beyond_do_not():
    origin = [[0.0, 0.0]]
    assert point_agreement(origin, [[0.0, 20.0]], pixel_size=0.5).matched == 1  # 10 µm: inclusive
    assert point_agreement(origin, [[0.0, 20.001]], pixel_size=0.5).matched == 0
    # 3 px at 0.1 µm/px is 0.30000000000000004 µm in floating point: still "at" a 0.3 µm radius
    assert point_agreement(origin, [[0.0, 3.0]], radius_um=0.3, pixel_size=0.1).matched == 1
    # anisotropic pixels (1.0 µm tall, 0.5 µm wide): 20 px across is 10 µm, 20 px down is 20 µm
    assert point_agreement(origin, [[0.0, 20.0]], pixel_size=(1.0, 0.5)).matched == 1
    assert point_agreement(origin, [[20.0, 0.0]], pixel_size=(1.0, 0.5)).matched == 0
    # the radius in pixels, and the pixel size from the image (IGNITE: 0.5 µm; radiology: mm)
    assert point_agreement(origin, [[0.0, 20.0]], radius_px=20).criterion == {"radius_px": 20.0}
    assert point_agreement(origin, [[0.0, 20.0]], pixel_size=ImageRef(pixel_size=(0.5, 0.5), unit="um")).matched == 1
    assert point_agreement(origin, [[0.0, 0.02]], pixel_size=ImageRef(pixel_size=(0.5, 0.5), unit="mm")).matched == 1
    with pytest.raises(ValueError, match="pixel_size"):
        point_agreement(origin, origin)
    with pytest.raises(ValueError, match="'px'"):
        point_agreement(origin, origin, pixel_size=ImageRef(unit="px"))


def test_matching_is_one_to_one_maximal_then_least_distance():
    # nearest-first would pair a0-b0 (tied at 9) and strand a1; the maximal matching pairs both
    assert match_points([[0, 0], [0, 18]], [[0, 9], [0, -9]], 10).pairs == ((0, 1), (1, 0))
    # both pairings have 2 pairs: {a0b0, a1b1} costs 4 + 4 = 8, {a0b1, a1b0} 9 + 1 = 10
    best = match_points([[0, 0], [0, 5]], [[0, 4], [0, 9]], 10)
    assert best.pairs == ((0, 0), (1, 1)) and best.scores == (4.0, 4.0)
    # one point can only be used once
    crowded = match_points([[0, 0]], [[0, 1], [0, 2], [0, 3]], 10)
    assert crowded.pairs == ((0, 0),) and crowded.only_b == (1, 2)


def test_matching_ties_are_broken_by_input_order_deterministically():
    # a square: every pairing has 2 pairs of 10 px; input order decides, always the same way
    a, b = [[0, 0], [10, 10]], [[0, 10], [10, 0]]
    first = match_points(a, b, 10)
    assert first.pairs == ((0, 0), (1, 1)) and all(match_points(a, b, 10) == first for _ in range(5))
    swapped = match_points(a, b[::-1], 10)
    assert len(swapped) == 2 and sum(swapped.scores) == sum(first.scores) == 20.0


def test_matching_agrees_with_an_independent_maximum_matching_and_dense_assignment():
    rng = np.random.default_rng(7)
    for trial in range(20):
        a = rng.uniform(0, 120, (int(rng.integers(0, 40)), 2))
        b = rng.uniform(0, 120, (int(rng.integers(0, 40)), 2))
        result = match_points(a, b, 10.0)
        d = np.linalg.norm(a[:, None] - b[None], axis=-1)
        allowed = d <= 10.0
        most = (maximum_bipartite_matching(csr_matrix(allowed.astype(int)), perm_type="column") >= 0).sum()
        assert len(result) == most, trial
        if len(a) and len(b):  # one dense assignment over everything, no KD-tree and no components
            rows, cols = linear_sum_assignment(np.where(allowed, d, 1e6))
            dense = sum(d[r, c] for r, c in zip(rows, cols, strict=True) if allowed[r, c])
            assert sum(result.scores) == pytest.approx(dense), trial
        assert all(d[i, j] <= 10.0 for i, j in result.pairs)
        assert len({i for i, _ in result.pairs}) == len({j for _, j in result.pairs}) == len(result)


def test_point_edge_cases_empty_sets_one_class_and_one_sided_classes():
    empty = ignite_points("none", [])
    both = point_agreement(empty, empty, pixel_size=0.5)
    assert both.matched == 0 and math.isnan(both.detection["f1"]) and math.isnan(both.kappa)
    assert all(math.isnan(v["f1"]) and v["support"] == 0 for v in both.per_class.values())
    assert as_json(both)["detection"] == {"precision": None, "recall": None, "f1": None}
    some = ignite_points("P1", [((0, 0), NEG), ((50, 50), POS)])
    missed = point_agreement(some, empty, pixel_size=0.5)
    assert missed.detection["recall"] == 0.0 and math.isnan(missed.detection["precision"])
    assert missed.detection["f1"] == 0.0 and missed.per_class[NEG]["f1"] == 0.0
    assert math.isnan(missed.per_class[OTHER]["f1"])  # in neither set
    # every matched pair in one class: kappa is undefined (NaN, as scikit-learn), agreement is total
    alike = point_agreement(some, ignite_points("P2", [((0, 1), NEG)]), pixel_size=0.5)
    assert math.isnan(alike.kappa) and alike.class_agreement == 1.0
    with pytest.warns(UserWarning):
        assert math.isnan(cohen_kappa_score([NEG], [NEG]))
    # a class only one reader used: precision NaN on the side that never marked it, recall 0
    flipped = point_agreement(ignite_points("a", [((0, 0), POS)]), ignite_points("b", [((0, 0), NEG)]), radius_px=1)
    assert flipped.per_class[POS]["recall"] == 0.0 and math.isnan(flipped.per_class[POS]["precision"])
    assert flipped.per_class[NEG]["precision"] == 0.0 and flipped.kappa == 0.0
    # plain arrays: one class, "point"
    plain = point_agreement(np.zeros((0, 2)), [[1.0, 1.0]], radius_px=5)
    assert list(plain.per_class) == ["point"] and plain.detection["precision"] == 0.0
    assert point_agreement(((0, 0), (9, 9)), ((0, 1), (9, 9)), radius_px=5).matched == 2  # a tuple of points
    # 3-D points (z, y, x) with a pixel size per axis
    assert point_agreement([[0, 0, 0]], [[1, 0, 0]], pixel_size=(5.0, 0.5, 0.5)).matched == 1
    assert point_agreement([[0, 0, 0]], [[3, 0, 0]], pixel_size=(5.0, 0.5, 0.5)).matched == 0


# --------------------------------------------------------------------------- boxes


def test_box_iou_and_greedy_matching():
    # (0,0)-(10,10) against (0,5)-(10,15): overlap 50, union 150 -> 1/3
    assert box_iou([[0, 0, 10, 10]], [[0, 5, 10, 15]])[0, 0] == pytest.approx(1 / 3)
    assert box_iou([[0, 0, 0, 10]], [[0, 0, 0, 10]])[0, 0] == 0.0  # no area: never a match
    assert len(match_boxes([[0, 0, 10, 10]], [[0, 5, 10, 15]], 1 / 3)) == 1  # the threshold is inclusive
    assert len(match_boxes([[0, 0, 10, 10]], [[0, 5, 10, 15]], 0.34)) == 0
    # b0 overlaps a0 (IoU 85/115) and a1 (95/105): greedy gives it to a1, the higher IoU
    greedy = match_boxes([[0, 0, 10, 10], [0, 2, 10, 12]], [[0, 1.5, 10, 11.5]], 0.5)
    assert greedy.pairs == ((1, 0),) and greedy.scores == (pytest.approx(95 / 105),) and greedy.only_a == (0,)
    # equal IoUs: the lower index of a, then of b
    assert match_boxes([[0, 0, 10, 10]], [[0, 0, 10, 10], [0, 0, 10, 10]]).pairs == ((0, 0),)
    assert match_boxes([[0, 0, 10, 10], [0, 0, 10, 10]], [[0, 0, 10, 10]]).pairs == ((0, 0),)


def test_box_agreement_classes_planes_and_sklearn():
    schema = ClassSchema.from_names("midog", ["mitotic figure", "hard negative"], background=None)
    a = BoxSet("a", [[0, 0, 50, 50], [100, 100, 150, 150], [200, 200, 250, 250]],
               ["mitotic figure", "hard negative", "mitotic figure"], schema)  # fmt: skip
    b = BoxSet("b", [[5, 5, 55, 55], [100, 100, 150, 150], [400, 400, 450, 450]],
               ["mitotic figure", "mitotic figure", "hard negative"], schema)  # fmt: skip
    result = box_agreement(a, b)
    # a0-b0: overlap 45*45 = 2025, union 5000 - 2025 = 2975 -> 0.68; a1-b1 identical
    assert result.matching.pairs == ((0, 0), (1, 1)) and result.matching.scores[0] == pytest.approx(2025 / 2975)
    assert result.detection["f1"] == pytest.approx(2 / 3)
    assert result.per_class["mitotic figure"]["tp"] == 1 and result.per_class["mitotic figure"]["fp"] == 1
    assert result.criterion == {"iou_threshold": 0.5, "matching": "greedy"}
    assert_per_class_matches_sklearn(result, a.classes, b.classes, ["mitotic figure", "hard negative"])
    as_json(result)
    # a volume: the same rectangle on another slice is not the same object
    on_0 = BoxSet("a", [[0, 0, 10, 10]], ["mitotic figure"], schema, planes=[0])
    on_1 = BoxSet("b", [[0, 0, 10, 10]], ["mitotic figure"], schema, planes=[1])
    assert box_agreement(on_0, on_1).matched == 0 and box_agreement(on_0, on_0).matched == 1


# --------------------------------------------------------------------------- several readers


def test_fleiss_kappa_and_krippendorff_alpha_by_hand_and_against_the_libraries():
    table = np.array([[1, 1, 1], [1, 1, 0], [0, 0, 0], [0, 0, 0]])  # 4 items, 3 raters
    # Fleiss: P_i = 1, 1/3, 1, 1 -> P = 5/6; p = 7/12, 5/12 -> Pe = 74/144; kappa = (5/6 - 37/72) / (35/72) = 23/35
    assert fleiss_kappa(table) == pytest.approx(23 / 35)
    assert fleiss_kappa(table) == pytest.approx(sm_fleiss_kappa(aggregate_raters(table)[0]))
    # Krippendorff: o_00 = 6, o_11 = 4, o_01 = o_10 = 1, n = 12; alpha = 1 - (2/12) / (2*5*7 / (12*11)) = 24/35
    assert krippendorff_alpha(table) == pytest.approx(24 / 35)
    assert krippendorff_alpha(table) == pytest.approx(krippendorff.alpha(table.T, level_of_measurement="nominal"))
    # missing ratings (NaN) and string categories
    sparse = np.array([[1, 1, np.nan], [2, 2, 1], [np.nan, 3, 3], [1, np.nan, np.nan]])
    reference = krippendorff.alpha(sparse.T, level_of_measurement="nominal")
    assert krippendorff_alpha(sparse) == pytest.approx(reference)
    words = np.array([["x", "x", "y"], ["y", "y", "y"], ["x", "y", "x"]])
    assert krippendorff_alpha(words) == pytest.approx(krippendorff.alpha(words.T, level_of_measurement="nominal"))
    assert fleiss_kappa(words) == pytest.approx(sm_fleiss_kappa(aggregate_raters(words)[0]))
    # one category only: both undefined, NaN (krippendorff itself raises, statsmodels divides 0 by 0)
    assert math.isnan(fleiss_kappa(np.ones((3, 3)))) and math.isnan(krippendorff_alpha(np.ones((3, 3))))
    with pytest.raises(ValueError, match="every rater"):
        fleiss_kappa(sparse)


def three_annotators() -> dict[str, np.ndarray]:
    """CoCaHis-like: three binary masks with known overlaps (synthetic)."""
    masks = {name: np.zeros((50, 60), np.uint8) for name in ("GT1", "GT2", "GT3")}
    masks["GT1"][10:40, 10:40] = 1  # 900 px
    masks["GT2"][10:40, 15:45] = 1  # 900 px, 750 shared with GT1
    masks["GT3"][10:40, 10:30] = 1  # 600 px, all inside GT1, 450 shared with GT2
    return masks


def test_cocahis_like_three_annotators_pairwise_fleiss_alpha_and_majority():
    masks = three_annotators()
    result = mask_reader_agreement(masks)
    # Dice GT1-GT2 = 1500/1800, GT1-GT3 = 1200/1500, GT2-GT3 = 900/1500
    np.testing.assert_allclose(result.pairwise.array, [[1, 5 / 6, 0.8], [5 / 6, 1, 0.6], [0.8, 0.6, 1]])
    assert result.readers == ("GT1", "GT2", "GT3") and result.items == 3000 and result.categories == ("0", "1")
    table = np.stack([m.ravel() for m in masks.values()], axis=1)  # pixels x annotators
    assert result.fleiss_kappa == pytest.approx(sm_fleiss_kappa(aggregate_raters(table)[0]))
    reliability = np.stack([m.ravel() for m in masks.values()])  # annotators x pixels
    assert result.krippendorff_alpha == pytest.approx(krippendorff.alpha(reliability, level_of_measurement="nominal"))
    # by hand: 1050 px all 1, 1800 all 0, 150 px (2 of 3 say 1) x 2 groups ... checked through the libraries above;
    # majority (2 of 3): cols 10-15 (GT1, GT3), 15-30 (all), 30-40 (GT1, GT2); cols 40-45 (GT2 alone) not
    np.testing.assert_array_equal(majority_mask(masks), masks["GT1"])
    assert majority_mask(masks, min_votes=3).sum() == 30 * 15
    as_json(result)


def test_majority_mask_classes_ties_and_fill():
    r1 = np.array([[1, 2, 3, 0]])
    r2 = np.array([[1, 2, 2, 0]])
    r3 = np.array([[1, 3, 1, 5]])
    np.testing.assert_array_equal(majority_mask([r1, r2, r3]), [[1, 2, 0, 0]])  # (3,2,1): no majority -> 0
    np.testing.assert_array_equal(majority_mask([r1, r2, r3], fill=9), [[1, 2, 9, 0]])
    np.testing.assert_array_equal(majority_mask([r1, r3], min_votes=1), [[1, 0, 0, 0]])  # 2-3 and 3-1, 0-5: ties


def test_cocahis_file_seven_annotators_majority_is_the_files_majority_vote(tmp_path):
    """The synthetic CoCaHis HDF5 read by the real reader: GT1...GT7 (foreground 255 or 1, read as 1)."""
    case = read_cocahis(build("cocahis", tmp_path))[0]
    readers = [m for m in case.masks if m.name != "GT_majority_vote"]
    file_vote = next(m for m in case.masks if m.name == "GT_majority_vote")
    assert [m.name for m in readers] == [f"GT{k}" for k in range(1, 8)]
    np.testing.assert_array_equal(majority_mask(readers), np.asarray(file_vote.data))
    result = mask_reader_agreement(readers)
    table = np.stack([np.asarray(m.data).ravel() for m in readers], axis=1)
    assert result.fleiss_kappa == pytest.approx(sm_fleiss_kappa(aggregate_raters(table)[0]))
    assert result.krippendorff_alpha == pytest.approx(krippendorff.alpha(table.T, level_of_measurement="nominal"))
    values = result.pairwise.array
    np.testing.assert_array_equal(values, values.T)
    assert np.all(np.diag(values) == 1.0) and np.all((values > 0.5) & (values <= 1))


def test_point_clusters_majority_points_and_reader_agreement_by_hand():
    readers = {
        "P1": ([[0, 0], [50, 50]], ["x", "y"]),
        "P2": ([[0, 2], [50, 52]], ["x", "x"]),
        "P3": ([[0, 1], [100, 100]], ["y", "x"]),
    }
    members = cluster_points([np.array(c, float) for c, _ in readers.values()], 5.0)
    np.testing.assert_array_equal(members, [[0, 0, 0], [1, 1, -1], [-1, -1, 1]])
    vote = majority_points(readers, radius_px=5, labels=["x", "y"])
    # cluster 0: x, x, y -> x at (0, 1); cluster 1: y, x -> tie, the first label, x, at (50, 51); cluster 2: 1 vote
    np.testing.assert_allclose(vote.coords, [[0, 1], [50, 51]])
    assert vote.classes.tolist() == ["x", "x"] and vote.name == "majority vote"
    assert vote.attributes[0] == {"votes": 3, "readers": ["P1", "P2", "P3"], "class_votes": {"x": 2, "y": 1}}
    assert len(majority_points(readers, radius_px=5, min_votes=1)) == 3
    result = point_reader_agreement(readers, radius_px=5)
    table = np.array([["x", "x", "y"], ["y", "x", NOT_MARKED], [NOT_MARKED, NOT_MARKED, "x"]])
    assert result.items == 3 and result.categories == (NOT_MARKED, "x", "y")
    assert result.fleiss_kappa == pytest.approx(sm_fleiss_kappa(aggregate_raters(table)[0]))
    assert result.krippendorff_alpha == pytest.approx(krippendorff.alpha(table.T, level_of_measurement="nominal"))
    # detection F1: P1-P2 2 of 2 -> 1; P1-P3 and P2-P3 1 pair of 2 + 2 -> 1/2
    np.testing.assert_allclose(result.pairwise.array, [[1, 1, 0.5], [1, 1, 0.5], [0.5, 0.5, 1]])
    as_json(result)


def test_pairwise_is_symmetric_and_names_readers():
    sets = [ignite_points("P1", [((0, 0), NEG)]), ignite_points("P2", [((0, 3), NEG), ((90, 90), POS)])]
    matrix = pairwise(sets, lambda a, b: point_agreement(a, b, pixel_size=0.5).detection["f1"], "f1")
    assert matrix.readers == ("P1", "P2") and matrix.values == ((1.0, 2 / 3), (2 / 3, 1.0))
    unnamed = pairwise([A, B, A], lambda a, b: mask_agreement(a, b).mean_dice)
    assert unnamed.readers == ("reader 1", "reader 2", "reader 3") and unnamed.values[0][2] == 1.0


# --------------------------------------------------------------------------- IGNITE


def test_ignite_pdl1_two_reader_file_pairwise_f1_and_kappa(tmp_path):
    """The synthetic two-reader IGNITE file read by the real reader: P2 is 1 px right of P1 and
    gives another class to every fourth cell (cells 0, 4 and 8: neg->pos, pos->other, other->neg)."""
    target = build("ignite-pdl1", tmp_path)
    (case,) = read_ignite_cells(target.with_name("pdl1_annotations_readers.json"))
    p1, p2 = case.points
    assert (p1.name, p2.name, case.image.pixel_size, case.image.unit) == ("reader P1", "reader P2", (0.5, 0.5), "um")
    result = point_agreement(p1, p2, pixel_size=case)
    assert result.matching.pairs == tuple((i, i) for i in range(12)) and set(result.matching.scores) == {0.5}
    assert result.detection["f1"] == 1.0
    # each class: 4 cells in each reader, 3 agree -> 0.75; kappa (9/12 - 1/3) / (2/3) = 0.625
    assert {name: v["f1"] for name, v in result.per_class.items()} == {NEG: 0.75, POS: 0.75, OTHER: 0.75}
    assert result.kappa == pytest.approx(0.625) == cohen_kappa_score(p1.classes, p2.classes)
    agreement = point_reader_agreement(case.points, pixel_size=case)
    assert agreement.readers == ("reader P1", "reader P2") and agreement.pairwise.values == ((1.0, 1.0), (1.0, 1.0))
    assert agreement.krippendorff_alpha == pytest.approx(
        krippendorff.alpha(np.stack([p1.classes, p2.classes]).astype(str), level_of_measurement="nominal")
    )


def simulated_readers(seed: int = 11, n: int = 300) -> dict[str, PointSet]:
    """Six readers (P1...P6) marking IGNITE-like cells: jitter up to ~6 µm, misses, extra marks and class
    changes. Synthetic, seeded."""
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0, 2000, (n, 2))
    classes = rng.choice(IGNITE_PDL1_SCHEMA.names, n)
    readers = {}
    for k in range(1, 7):
        seen = rng.random(n) > 0.05 * k
        coords = truth[seen] + rng.normal(0, 4, (seen.sum(), 2))
        names = np.where(rng.random(seen.sum()) < 0.1, rng.choice(IGNITE_PDL1_SCHEMA.names, seen.sum()), classes[seen])
        extra = rng.uniform(0, 2000, (k * 3, 2))
        readers[f"reader P{k}"] = PointSet(f"reader P{k}", np.vstack([coords, extra]),
                                           [*names, *rng.choice(IGNITE_PDL1_SCHEMA.names, k * 3)], IGNITE_PDL1_SCHEMA)  # fmt: skip
    return readers


def independent_f1(a: PointSet, b: PointSet, radius_px: float) -> float:
    """Detection F1 from a dense maximum-cardinality assignment, without this package's matcher."""
    d = np.linalg.norm(a.coords[:, None] - b.coords[None], axis=-1)
    allowed = d <= radius_px
    rows, cols = linear_sum_assignment(np.where(allowed, d, 1e9))
    matched = int(allowed[rows, cols].sum())
    return 2 * matched / (len(a) + len(b))


def test_ignite_like_six_readers_pairwise_f1_is_deterministic_and_independently_verified():
    readers = simulated_readers()
    agreement = point_reader_agreement(readers, pixel_size=0.5)  # 10 µm = 20 px
    values = agreement.pairwise.array
    np.testing.assert_array_equal(values, values.T)
    assert np.all(np.diag(values) == 1.0) and np.all((values >= 0) & (values <= 1))
    names = list(readers)
    for i in range(6):
        for j in range(i + 1, 6):
            assert values[i, j] == pytest.approx(independent_f1(readers[names[i]], readers[names[j]], 20.0))
    # P1 marks 290 cells, P2 283; 265 pairs (independent_f1, and by a dense assignment): 2 * 265 / 573
    assert (len(readers["reader P1"]), len(readers["reader P2"])) == (290, 283)
    assert values[0, 1] == pytest.approx(530 / 573, abs=1e-12)
    assert point_reader_agreement(readers, pixel_size=0.5) == agreement  # deterministic
    assert 0.5 < agreement.fleiss_kappa < 1 and 0.5 < agreement.krippendorff_alpha < 1
    vote = majority_points(readers, pixel_size=0.5)
    assert 250 < len(vote) <= 300 and all(a["votes"] >= 4 for a in vote.attributes)
    assert vote.schema is IGNITE_PDL1_SCHEMA and set(vote.classes) <= set(IGNITE_PDL1_SCHEMA.names)


def test_real_ignite_he_mask_against_shifted_copies(samples):
    """The real IGNITE H&E mask (3328x2560, classes {0,1,2,3,4,8,9,13}) against itself shifted, as a second
    and third reader would draw it a few pixels off; 0 "Unannotated" is ignored, as IGNITE's evaluation does."""
    (case,) = read_ignite_he(samples / "ignite" / "patient1_he_roi1_with_context.png")
    real = case.masks[0]
    data = np.asarray(real.data)
    assert data.shape == (2560, 3328) and real.schema is IGNITE_HE_SCHEMA
    right = np.zeros_like(data)
    right[:, 4:] = data[:, :-4]
    down = np.zeros_like(data)
    down[3:] = data[:-3]
    result = mask_agreement(real, LabelMask("right", right, IGNITE_HE_SCHEMA), ignore=0)
    assert "Unannotated" not in result.per_class and len(result.per_class) == 16  # IGNITE's other classes
    keep = (data != 0) & (right != 0)
    for code, name in ((2, "Tumor cells"), (4, "Stroma"), (13, "Macrophages")):
        in_a, in_b = (data == code) & keep, (right == code) & keep
        assert result.per_class[name]["dice"] == pytest.approx(2 * (in_a & in_b).sum() / (in_a.sum() + in_b.sum()))
    # tumour: 1,927,375 px in the real mask, 1,927,502 shifted, 1,895,957 shared where neither is unannotated
    tumour = result.per_class["Tumor cells"]
    assert (tumour["a_pixels"], tumour["b_pixels"], tumour["overlap"]) == (1927375, 1927502, 1895957)
    assert tumour["dice"] == pytest.approx(2 * 1895957 / (1927375 + 1927502), abs=1e-12)
    assert result.pixels_changed == int((data[keep] != right[keep]).sum())
    assert math.isnan(result.per_class["Liver"]["dice"])  # not in this mask
    # three readers: pairwise mean Dice on every pixel; kappa and alpha on every 8th pixel each way
    agreement = mask_reader_agreement({"real": real, "right": right, "down": down}, ignore=0, step=8)
    values = agreement.pairwise.array
    np.testing.assert_array_equal(values, values.T)
    off_diagonal = values[~np.eye(3, dtype=bool)]
    assert np.all(np.diag(values) == 1.0) and np.all((off_diagonal > 0.9) & (off_diagonal < 1))
    assert values[0, 1] == pytest.approx(mask_agreement(real, right, ignore=0).mean_dice)
    table = np.stack([m[::8, ::8].ravel() for m in (data, right, down)], axis=1)
    table = table[(table != 0).all(axis=1)]
    assert agreement.items == len(table) and agreement.categories == ("1", "2", "3", "4", "8", "9", "13")
    assert agreement.fleiss_kappa == pytest.approx(sm_fleiss_kappa(aggregate_raters(table)[0]))
    assert agreement.krippendorff_alpha == pytest.approx(krippendorff.alpha(table.T, level_of_measurement="nominal"))
    assert 0.9 < agreement.fleiss_kappa < 1
