"""``napari-nsclc stats``: class distributions, objects per image and split, mask areas, text, JSON and plots.

Expected numbers come from an independent path each time: ``napari-nsclc info``'s
``summarize`` (``Case.counts()``, ``np.unique``) for the synthetic layouts, and
the files themselves (PIL, ``json``, ``csv``, ElementTree) for the hand-built
datasets and the real samples in ../shared/samples (those tests fail, never
skip, when the samples are missing). Every dataset here is synthetic unless it
comes from ``samples``. Everything runs in this process (``workers=1``): the
Dask path is tested elsewhere.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from _batch_fixtures import save_png, snapshot, truncate, write_nat_case
from PIL import Image

from napari_nsclc import registry, testing
from napari_nsclc.batch.sources import Reading
from napari_nsclc.batch.stats import CaseStats, combine, dataset_stats, pixel_area_um2, semantic_pixels, stats_step
from napari_nsclc.batch.stats_plots import write_plots
from napari_nsclc.batch.stats_report import text_lines
from napari_nsclc.cli import main, summarize
from napari_nsclc.model import Case, ClassSchema, ImageRef, LabelMask, NsclcFormatError, mask_class_counts

#: IGNITE H&E mask values (FORMATS.md §3).
IGNITE_CLASSES = {0: "Unannotated", 1: "Background", 2: "Tumor cells", 3: "Reactive epithelium", 4: "Stroma",
                  5: "Inflammation", 6: "Alveolar tissue", 7: "Fatty tissue", 8: "Necrotic tissue", 9: "Erythrocytes",
                  10: "Bronchial epithelium", 11: "Mucus/Plasma/Fluids", 12: "Cartilage/Bone", 13: "Macrophages",
                  14: "Muscle", 15: "Liver", 16: "Keratinization"}  # fmt: skip


def stats_of(path: Path):
    return dataset_stats(path, workers=1)


@pytest.fixture(scope="module")
def layouts(tmp_path_factory) -> dict[str, Path]:
    """Every synthetic layout, built once for the module."""
    return testing.build_all(tmp_path_factory.mktemp("layouts"))


# --------------------------------------------------------------------------- every layout against `info`'s summary


def _level0_ratio(mask: LabelMask) -> float:
    """Level-0 pixels per pixel of the coarsest level, from the mask's shapes."""
    if not mask.multiscale:
        return 1.0
    return float(np.prod(mask.data[0].shape)) / float(np.prod(mask.data[-1].shape))


def _plain(value) -> bool:
    """Whether ``value`` is made of exactly str, int, float, bool, None, list and dict (no numpy scalars)."""
    if isinstance(value, dict):
        return all(type(k) is str and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return type(value) in (str, int, float, bool, type(None))


@pytest.mark.parametrize("layout", sorted(testing.all_builders()))
def test_every_layout_totals_and_objects_per_image_match_info_summary(layout, layouts):
    path = layouts[layout]
    spec = registry.detect(path)
    cases = registry.read(path, spec.name)
    summary = summarize(path, spec, cases)  # Case.counts(): np.unique over each mask, at its coarsest level
    ratios = {m.name: _level0_ratio(m) for case in cases for m in case.masks}
    stats = stats_of(path)
    assert (stats.exit_code, stats.cases, stats.counted, stats.format) == (0, len(cases), len(cases), spec.name)
    assert [layer.name for layer in stats.layers] == list(summary["totals"])
    for layer in stats.layers:
        expected = summary["totals"][layer.name]
        assert layer.unit == summary["count_units"][layer.name]
        if layer.unit == "px":  # a multiscale mask is scaled to full resolution
            per_case = [c["annotations"][layer.name] for c in summary["cases"] if layer.name in c["annotations"]]
            expected = Counter()
            for counts in per_case:
                expected.update({k: round(v * ratios[layer.name]) for k, v in counts.items()})
        assert layer.totals == dict(expected), layer.name
        in_cases = [c["annotations"][layer.name] for c in summary["cases"] if layer.name in c["annotations"]]
        assert layer.images == len(in_cases)
        assert layer.images_with_class == {k: sum(1 for c in in_cases if c.get(k, 0) > 0) for k in layer.totals}
        if layer.unit == "objects":
            assert layer.per_image == [sum(c.values()) for c in in_cases]
    data = stats.as_dict()
    assert _plain(data), "as_dict() holds a type that is not a plain str, int, float, bool, list or dict"
    assert data["layers"].keys() == summary["totals"].keys()
    assert sum(row["images"] for row in data["splits"] if row["fold"] == (data["splits"][0]["fold"])) == len(cases)


def test_the_multiscale_mask_is_counted_at_its_coarsest_level_and_scaled_to_level_0(layouts):
    """annotated-slide: a 512² mask pyramid (levels 512² and 256²) on a 0.25 µm/px slide."""
    case = registry.read(layouts["annotated-slide"])[0]
    mask = case.masks[0]
    coarse = np.asarray(mask.data[-1])
    assert coarse.shape == (256, 256) and case.image.pixel_size == (0.25, 0.25)
    tumour = int((coarse == mask.schema.code_of("tumor")).sum())
    stats = stats_of(layouts["annotated-slide"])
    layer = stats.layer(mask.name)
    assert layer.totals == {"tumor": tumour * 4} == {"tumor": 18000}
    (area,) = stats.areas
    assert area.unit == "µm²" and area.um2 == {"tumor": pytest.approx(18000 * 0.25 * 0.25)}
    assert stats.notes == [f"{mask.name}: 1 multiscale mask(s) counted at the coarsest level of the pyramid; pixel "
                           "counts and areas are scaled to full resolution (×4), so they are estimates"]  # fmt: skip


# --------------------------------------------------------------------------- mask pixels and areas


def _nat(root: Path, blocks: dict[str, tuple[int, int] | None]) -> Path:
    """NSCLC-NAT cases of 60 x 80 px white images, each with one dark block of ``(h, w)`` px (its tumour bed)."""
    for stem, block in blocks.items():
        rgb = np.full((60, 80, 3), 255, np.uint8)
        if block:
            rgb[5 : 5 + block[0], 10 : 10 + block[1]] = 90
        write_nat_case(root, stem, rgb)
    return root


def test_nat_pixels_per_class_and_areas_in_px2_when_the_pixel_size_is_unknown(tmp_path, capsys):
    root = _nat(tmp_path / "NSCLC-NAT", {"1": (30, 40), "2": (10, 20), "3": None})
    stats = stats_of(root)
    assert stats.exit_code == 0 and stats.counted == 3
    for name in ("tumour bed (SegmentationClass)", "expert mask (Mask)"):
        layer = stats.layer(name)
        assert (layer.unit, layer.totals, layer.images_with_class, layer.images) == \
            ("px", {"tumour bed": 1200 + 200}, {"tumour bed": 2}, 3)  # fmt: skip
        assert layer.per_image == [1200, 200, 0]
    area = stats.areas[0]
    assert (area.unit, area.images, area.images_with_pixel_size, area.px2, area.um2) == \
        ("px²", 3, 0, {"tumour bed": 1400}, {})  # fmt: skip
    assert main(["stats", str(root), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "  tumour bed (SegmentationClass) (px², pixel size unknown for 3 images):" in out
    assert "    tumour bed  1,400 px²" in out
    assert "    tumour bed  1,400 px  100.0 %  in 2 of 3 images" in out
    assert out.rstrip().endswith("result: 3 case(s) counted; exit code 0")


def test_nucls_areas_in_um2_are_pixels_times_0_04(layouts):
    """NuCLS is at 0.2 µm/px; class pixels are channel 0 of each mask PNG (FORMATS.md §2)."""
    root = layouts["nucls"]
    pixels, fov = Counter(), 0
    for png in sorted((root / "mask").glob("*.png")):
        codes = np.asarray(Image.open(png))[..., 0]
        values, counts = np.unique(codes[(codes > 0) & (codes < 253)], return_counts=True)
        pixels.update(dict(zip(values.tolist(), counts.tolist(), strict=True)))
        fov += int((codes != 0).sum())
    names = {1: "tumor", 2: "fibroblast", 3: "lymphocyte", 5: "macrophage", 6: "mitotic_figure"}
    stats = stats_of(root)
    assert stats.layer("nucleus classes").totals == {names[code]: n for code, n in pixels.items()}
    areas = {area.layer: area for area in stats.areas}
    classes = areas["nucleus classes"]
    assert (classes.unit, classes.images, classes.images_with_pixel_size, classes.px2) == ("µm²", 2, 2, {})
    assert classes.um2 == {names[code]: pytest.approx(n * 0.2 * 0.2, rel=1e-12) for code, n in pixels.items()}
    assert areas["fov"].um2 == {"fov": pytest.approx(fov * 0.04, rel=1e-12)}


def test_ocelot_tissue_area_uses_the_mpp_of_metadata_json(layouts):
    root = layouts["ocelot"]
    tissue = json.loads((root / "metadata.json").read_text())["sample_pairs"]["001"]["tissue"]
    pixel_area = tissue["resized_mpp_y"] * tissue["resized_mpp_x"]
    values = np.bincount(np.asarray(Image.open(root / "annotations" / "train" / "tissue" / "001.png")).ravel())
    stats = stats_of(root)
    (area,) = stats.areas
    assert (area.layer, area.unit, area.images_with_pixel_size) == ("tissue", "µm²", 1)
    assert area.um2 == {"background": pytest.approx(values[1] * pixel_area, rel=1e-12),
                        "cancer area": pytest.approx(values[2] * pixel_area, rel=1e-12),
                        "unknown": pytest.approx(values[255] * pixel_area, rel=1e-12)}  # fmt: skip
    assert stats.layer("cells").per_image == [15]  # the cell patch; the tissue patch has no cell layer


def test_pixel_area_in_um2_from_each_unit():
    assert pixel_area_um2((0.5, 0.25), "um") == 0.125
    assert pixel_area_um2((0.5, 0.25), "µm") == 0.125
    assert pixel_area_um2((8.0, 0.5, 0.25), "mm") == pytest.approx(125_000.0)  # in-plane axes of a volume
    assert pixel_area_um2((500.0, 250.0), "nm") == pytest.approx(0.125)
    assert pixel_area_um2((1.0, 1.0), "px") is None
    assert pixel_area_um2((0.0, 1.0), "um") is None


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, bool])
def test_semantic_pixels_equal_mask_class_counts_with_values_outside_the_schema(dtype):
    schema = ClassSchema.from_names("s", ["tumour", "stroma"])  # codes 1, 2; background 0
    rng = np.random.default_rng(7)
    data = rng.integers(0, 2 if dtype is bool else 4, (64, 48)).astype(dtype)
    if dtype in (np.uint16, np.int32):
        data[0, :5] = 1000  # a value outside the schema
    mask = LabelMask("m", data, schema)
    counts, downsampling = semantic_pixels(mask)
    assert counts == mask_class_counts(mask) and downsampling == 1.0
    # both count with model.value_counts (Pillow's histogram for 8 bits): numpy.unique is the independent check
    values, numbers = np.unique(data.astype(np.int64), return_counts=True)
    expected = {schema.name_of(v) if v in schema.codes else f"<value {v}>": n
                for v, n in zip(values.tolist(), numbers.tolist(), strict=True) if v != 0}  # fmt: skip
    assert counts == expected
    if dtype is np.uint16:
        assert counts["<value 1000>"] == 5


# --------------------------------------------------------------------------- splits


def test_ignite_images_and_pixels_per_split_from_data_overview(tmp_path):
    data = testing.build("ignite-he", tmp_path)  # patient1 train, patient2 test, each with a context variant
    shutil.copy(data / "images" / "he" / "patient1_he_roi1.png", data / "images" / "he" / "patient3_he_roi3.png")
    shutil.copy(data / "annotations" / "he" / "patient2_he_roi2.png", data / "annotations" / "he" /
                "patient3_he_roi3.png")  # fmt: skip
    with (data / "data_overview.csv").open("a") as table:
        table.write("he_tissue_segmentation,val,images/he/patient3_he_roi3.png,annotations/he/patient3_he_roi3.png\n")
    with (data / "data_overview.csv").open() as table:
        listed = {Path(r["annotation_path"]).stem: r["split"] for r in csv.DictReader(table)}
    expected: dict[str, Counter] = {}
    images = Counter()
    for mask in sorted((data / "annotations" / "he").glob("*.png")):
        split = listed[mask.stem.removesuffix("_with_context")]  # a context image is in its ROI's split
        images[split] += 1
        counts = np.bincount(np.asarray(Image.open(mask)).ravel())
        expected.setdefault(split, Counter()).update({IGNITE_CLASSES[v]: int(n) for v, n in enumerate(counts) if n})
    stats = stats_of(data)
    assert [(row.fold, row.split, row.images) for row in stats.splits] == \
        [("", "train", images["train"]), ("", "val", 1), ("", "test", images["test"])]  # fmt: skip
    assert images == {"train": 2, "test": 2, "val": 1}
    assert {row.split: row.counts["tissue"] for row in stats.splits} == {k: dict(v) for k, v in expected.items()}


def test_voc_objects_per_split_from_imagesets(layouts):
    root = layouts["voc-detection"]
    splits = {split: (root / "ImageSets" / "Main" / f"{split}.txt").read_text().split() for split in ("train", "val")}
    expected = {split: Counter(o.findtext("name") for stem in stems
                               for o in ET.parse(root / "Annotations" / f"{stem}.xml").iter("object"))
                for split, stems in splits.items()}  # fmt: skip
    stats = stats_of(root)
    assert [(row.label, row.images) for row in stats.splits] == [("train", 2), ("val", 1)]
    assert {row.split: row.counts["boxes"] for row in stats.splits} == {k: dict(v) for k, v in expected.items()}
    data = stats.as_dict()["splits"]
    assert data[1] == {"fold": "", "split": "val", "images": 1, "counts": {"boxes": dict(expected["val"])},
                       "layer_images": {"boxes": 1}}  # fmt: skip


def _fold(path: Path, slides: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [",slide_name,hospital,type,fold", *(f"{i},{slide},XX,x,1" for i, slide in enumerate(slides))]
    path.write_text("\n".join(rows) + "\n")


def test_nucls_folds_give_images_and_nuclei_per_fold_and_split(tmp_path):
    root = testing.build("nucls", tmp_path / "src")  # slides TCGA-A1-A0SK-DX1 and TCGA-E2-A14V-DX1, one FOV each
    a, e = "TCGA-A1-A0SK-DX1", "TCGA-E2-A14V-DX1"
    folds = root.parent / "train_test_splits"
    _fold(folds / "fold_1_train.csv", [a, e])
    _fold(folds / "fold_1_test.csv", [])
    _fold(folds / "fold_2_train.csv", [a])
    _fold(folds / "fold_2_test.csv", [e])
    _fold(folds / "fold_10_test.csv", [e])  # A is in no split of fold 10
    nuclei = {}
    for table in sorted((root / "csv").glob("*.csv")):
        with table.open() as handle:
            nuclei[table.stem.split("_id-")[0]] = Counter(row["raw_classification"] for row in csv.DictReader(handle))
    stats = stats_of(root)
    rows = {(row.fold, row.split): row for row in stats.splits}
    assert [(row.fold, row.split, row.images) for row in stats.splits] == [
        ("fold_1", "train", 2), ("fold_2", "train", 1), ("fold_2", "test", 1),
        ("fold_10", "test", 1), ("fold_10", "no split", 1)]  # fmt: skip
    assert rows[("fold_1", "train")].counts["nuclei"] == dict(nuclei[a] + nuclei[e])
    assert rows[("fold_2", "test")].counts["nuclei"] == dict(nuclei[e])
    assert rows[("fold_10", "no split")].counts["nuclei"] == dict(nuclei[a])
    assert sum(nuclei[a].values()) > 0


# --------------------------------------------------------------------------- unreadable files


def test_unreadable_masks_are_listed_with_their_reason_and_the_rest_is_counted(tmp_path, capsys):
    root = _nat(tmp_path / "nat", {"1": (10, 10), "2": (20, 20), "3": (30, 30)})
    truncate(root / "SegmentationClass" / "2.png")  # decoded only when counted
    stats = stats_of(root)
    assert stats.exit_code == 1 and (stats.cases, stats.counted) == (3, 2)
    assert [(p.kind, p.file) for p in stats.unreadable] == [("unreadable", "SegmentationClass/2.png")]
    assert "cannot be decoded" in stats.unreadable[0].message
    assert stats.layer("expert mask (Mask)").totals == {"tumour bed": 100 + 900}  # cases 1 and 3
    truncate(root / "Mask" / "1.png", keep=0.4)  # decoded while the folder is listed: read case by case
    assert main(["stats", str(root), "--workers", "1"]) == 1
    out = capsys.readouterr().out
    assert "unreadable files (2), left out of the statistics:" in out
    assert "  [unreadable] SegmentationClass/2.png: the image data is truncated or damaged and cannot be decoded" in out
    assert "  [unreadable] Mask/1.png: " in out
    assert "    tumour bed  900 px  100.0 %  in 1 of 1 image" in out  # case 3 alone
    # read case by case, each of cases 1 and 2 fails while it is read: one case is left to count
    assert out.rstrip().endswith("result: 1 of 1 case(s) counted, 2 file(s) unreadable; exit code 1")


def test_a_corrupt_json_is_listed_and_an_unforeseen_failure_names_the_case_file(tmp_path, capsys):
    path = testing.build("coco", tmp_path)
    truncate(path, keep=0.7)
    assert main(["stats", str(path), "--json", "--workers", "1"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert [(p["kind"], p["file"]) for p in data["unreadable"]] == [("unreadable", "annotations.json")]
    assert data["counts"] == {"cases": 0, "cases_counted": 0, "files": 1, "unreadable": 1} and data["layers"] == {}

    class Broken:
        shape, dtype = (4, 4), np.dtype(np.uint8)

        def __array__(self, *args, **kwargs):
            raise RuntimeError("disk went away")

    image = tmp_path / "img.png"
    save_png(np.zeros((4, 4), np.uint8), image)
    case = Case("img", ImageRef(path=str(image)), masks=[LabelMask("m", Broken(), ClassSchema.from_names("s", ["a"]))])
    (problem,) = stats_step(Reading(tmp_path, [case]), [0], None)
    assert (problem.kind, problem.file) == ("unreadable", "img.png")
    assert problem.message == "img.png: cannot be read (RuntimeError: disk went away)"


def test_a_slice_the_reader_skips_is_listed_once_and_its_series_still_counted(tmp_path):
    root = testing.build("lung-pet-ct-dx", tmp_path)
    boxes = len(list((root / "Annotation").rglob("*.xml")))  # one box per annotated slice
    ct = sorted(root.rglob("*CT Chest*/*.dcm"))[3]
    truncate(ct)  # the reader skips the slice with a warning on both series of the patient
    stats = stats_of(root)
    assert [(p.kind, p.file) for p in stats.unreadable] == [("unreadable", ct.relative_to(root).as_posix())]
    assert "slice skipped" in stats.unreadable[0].message
    assert (stats.exit_code, stats.counted) == (1, 2)
    assert stats.layer("tumour boxes").totals == {"A": boxes}


def test_mixed_known_and_unknown_pixel_sizes_are_reported_apart():
    known = CaseStats("a", units={"m": "px"}, counts={"m": {"t": 100}}, colours={"m": {"t": "#ff0000"}},
                      pixel_area_um2=0.25)  # fmt: skip
    unknown = CaseStats("b", units={"m": "px"}, counts={"m": {"t": 40}}, colours={"m": {"t": "#ff0000"}})
    stats = combine("x", registry.get_format("masks"), [known, unknown], [])
    (area,) = stats.areas
    assert (area.unit, area.images_with_pixel_size, area.um2, area.px2) == ("µm² and px²", 1, {"t": 25.0}, {"t": 40})
    assert area.as_dict()["classes"] == {"t": {"um2": 25.0, "px2": 40}}
    assert "    t  25.00 µm²  40 px²" in text_lines(stats)


# --------------------------------------------------------------------------- the real samples


def test_real_midog_database_4435_boxes(samples, capsys):
    path = samples / "midog" / "MIDOG.json"
    database = json.loads(path.read_text())
    names = {c["id"]: c["name"] for c in database["categories"]}
    expected = Counter(names[a["category_id"]] for a in database["annotations"])
    per_image = Counter(a["image_id"] for a in database["annotations"])
    assert expected == {"mitotic figure": 1721, "not mitotic figure": 2714}
    stats = stats_of(path)
    layer = stats.layer("mitotic figures")
    assert layer.totals == dict(expected) and layer.total == 4435
    assert sorted(layer.per_image) == sorted(per_image.values())  # the 150 labelled images
    assert (stats.cases, layer.images) == (200, 150)
    summary = layer.per_image_dict()
    assert summary["mean"] == pytest.approx(4435 / 150) and summary["max"] == max(per_image.values())
    assert main(["stats", str(path), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "    mitotic figure      1,721  38.8 %  in 135 of 150 images" in out
    assert "  mitotic figures: 4,435 objects in 150 images" in out


def test_real_ignite_mask_pixels_equal_its_bincount(samples):
    path = samples / "ignite" / "patient1_he_roi1_with_context.png"
    counts = np.bincount(np.asarray(Image.open(path)).ravel())
    expected = {IGNITE_CLASSES[v]: int(n) for v, n in enumerate(counts) if n}
    stats = stats_of(path)
    assert stats.layer("tissue").totals == expected
    assert sum(expected.values()) == 3328 * 2560 and expected["Tumor cells"] == 1_930_701
    (area,) = stats.areas
    assert (area.unit, area.images_with_pixel_size, area.px2) == ("px²", 0, expected)  # IGNITE H&E: no pixel size


def test_real_lung_pet_ct_dx_boxes_per_series(samples):
    root = samples / "lung-pet-ct-dx"
    names = Counter(o.findtext("name") for xml in sorted(root.rglob("Annotation/*/*.xml"))
                    for o in ET.parse(xml).iter("object"))  # fmt: skip
    stats = stats_of(root)
    layer = stats.layer("tumour boxes")
    assert layer.totals == dict(names) == {"A": 18}
    assert layer.per_image == [8, 10] and stats.cases == 2  # two 30-slice CT series of patient A0002
    assert stats.areas == [] and stats.exit_code == 0


def test_real_camelyon17_asap_tumour_polygons(samples):
    path = samples / "camelyon17" / "patient_004_node_4.xml"
    groups = Counter(a.get("PartOfGroup") for a in ET.parse(path).iter("Annotation"))
    stats = stats_of(path)
    assert stats.layer("ASAP polygons").totals == dict(groups) == {"Tumor": 3}


# --------------------------------------------------------------------------- the command: text, JSON, plots


def test_json_output_parses_and_equals_the_library_values(layouts, capsys):
    path = layouts["ocelot"]
    assert main(["stats", str(path), "--json", "--workers", "1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data == json.loads(json.dumps(stats_of(path).as_dict()))
    assert set(data) == {"path", "format", "title", "exit_code", "counts", "layers", "objects_per_image", "splits",
                         "mask_area", "unreadable", "notes"}  # fmt: skip
    assert data["layers"]["cells"]["classes"]["tumor cell"] == \
        {"count": 10, "percent": pytest.approx(100 * 10 / 15, abs=1e-3), "images": 1, "colour": "#ff3b30"}  # fmt: skip
    assert data["objects_per_image"]["cells"] == {"images": 1, "mean": 15.0, "median": 15.0, "min": 15, "max": 15,
                                                  "counts": [15]}  # fmt: skip
    assert data["mask_area"]["tissue"]["unit"] == "µm²"


@pytest.fixture(scope="module")
def plotted(layouts, tmp_path_factory):
    """The plots of the synthetic OCELOT dataset (a mask, cells, a split, a known pixel size), and its stats."""
    stats = stats_of(layouts["ocelot"])
    return stats, write_plots(stats, tmp_path_factory.mktemp("out") / "plots" / "ocelot")


def test_plots_are_legible_pngs_one_per_chart(plotted):
    stats, written = plotted
    assert [p.name for p in written] == [
        "class-distribution-tissue.png", "class-distribution-cells.png", "objects-per-image-cells.png",
        "per-split-tissue.png", "per-split-cells.png", "mask-area-tissue.png"]  # fmt: skip
    assert sorted(p.name for p in written[0].parent.iterdir()) == sorted(p.name for p in written)  # no temp files
    for png in written:
        with Image.open(png) as image:
            assert image.format == "PNG" and 800 <= image.width <= 2000 and 300 <= image.height <= 1500
            pixels = np.asarray(image.convert("RGB"))
        packed = pixels.astype(np.uint32) @ np.array([1 << 16, 1 << 8, 1], np.uint32)
        assert len(np.unique(packed)) > 50  # text, axes and bars, not a blank page
        assert (pixels < 128).all(axis=2).mean() > 0.005  # dark pixels: labels and titles
    colours = {name: tuple(int(c[i : i + 2], 16) for i in (1, 3, 5))
               for name, c in stats.layer("cells").colours.items()}  # fmt: skip
    bars = np.asarray(Image.open(written[1]).convert("RGB")).reshape(-1, 3)
    for name, rgb in colours.items():  # each class's bar in the class's colour
        assert (bars == rgb).all(axis=1).sum() > 500, name


def test_plots_are_refused_inside_the_dataset_and_the_command_reports_them(layouts, tmp_path, capsys):
    path = layouts["voc-detection"]
    stats = stats_of(path)
    with pytest.raises(NsclcFormatError, match="stats never writes into the dataset"):
        write_plots(stats, path / "plots")
    assert not (path / "plots").exists()
    assert main(["stats", str(path), "--plots", str(path / "Annotations" / "p"), "--workers", "1"]) == 2
    assert "never writes into the dataset" in capsys.readouterr().err
    out_dir = tmp_path / "new" / "plots"
    assert main(["stats", str(path), "--plots", str(out_dir), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith(f"wrote 3 plot(s) to {out_dir}")  # class distribution, per image, per split
    assert len(list(out_dir.glob("*.png"))) == 3


@pytest.mark.parametrize("layout", ["nsclc-nat", "nucls", "ignite-he", "coco", "annotated-slide"])
def test_stats_writes_nothing_in_the_source(layout, tmp_path, capsys):
    path = testing.build(layout, tmp_path / "src")
    root = path if path.is_dir() else path.parent
    mask = next((p for p in sorted(root.rglob("*.png")) if "mask" in p.as_posix().lower()), None)
    if mask is not None:
        truncate(mask)  # the unreadable path too
    before = snapshot(root)
    plots = ["--plots", str(tmp_path / "plots")] if layout == "nsclc-nat" else []  # drawing takes a while
    code = main(["stats", str(path), "--json", *plots, "--workers", "1"])
    assert code == (1 if mask is not None else 0) and json.loads(capsys.readouterr().out)["format"]
    assert snapshot(root) == before  # same files, same mtimes, same sha256


def test_unusable_input_is_exit_code_2(tmp_path, capsys):
    assert main(["stats", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hello")
    assert main(["stats", str(tmp_path / "notes")]) == 2
    with pytest.raises(NsclcFormatError, match="does not exist"):
        dataset_stats(tmp_path / "nope")


def test_stats_modules_import_no_gui_module_and_draw_without_pyplot(tmp_path):
    code = ("import json, sys\nfrom napari_nsclc import testing\nfrom napari_nsclc.batch import stats, stats_report\n"
            "from napari_nsclc.batch.stats_plots import write_plots\n"
            f"s = stats.dataset_stats(testing.build('ocelot', {str(tmp_path)!r}), workers=1)\n"
            f"stats_report.text_lines(s); write_plots(s, {str(tmp_path / 'plots')!r})\n"
            "print(json.dumps(sorted(sys.modules)))\n")  # fmt: skip
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)
    gui = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "vispy", "magicgui")
    assert [m for m in loaded if m.split(".")[0] in gui] == []
    assert "matplotlib.pyplot" not in loaded and "napari_nsclc.batch.stats_plots" in loaded


def _docs_block(page: str, command: str) -> str:
    """The output shown under ``$ <command>`` in a fenced block of ``page``."""
    start = page.index(f"$ {command}\n") + len(command) + 3
    return page[start : page.index("```", start)].rstrip("\n")


def test_the_example_outputs_in_the_docs_are_what_stats_prints(tmp_path, capsys, monkeypatch):
    page = (Path(__file__).parents[1] / "docs" / "stats.md").read_text(encoding="utf-8")
    testing.build("ocelot", tmp_path).rename(tmp_path / "OCELOT")
    testing.build("nsclc-nat", tmp_path).rename(tmp_path / "NSCLC-NAT")
    truncate(tmp_path / "NSCLC-NAT" / "SegmentationClass" / "2.png")
    monkeypatch.chdir(tmp_path)
    assert main(["stats", "OCELOT", "--plots", "ocelot-plots", "--workers", "1"]) == 0
    assert capsys.readouterr().out.rstrip("\n") == _docs_block(page, "napari-nsclc stats OCELOT --plots ocelot-plots")
    assert main(["stats", "NSCLC-NAT", "--workers", "1"]) == 1
    assert capsys.readouterr().out.rstrip("\n") == _docs_block(page, "napari-nsclc stats NSCLC-NAT")
    for image in ("stats-class-distribution.png", "stats-per-split.png"):
        assert f"](images/{image})" in page and (Path(__file__).parents[1] / "docs" / "images" / image).is_file()
