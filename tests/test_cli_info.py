"""``napari-nsclc info``: dataset totals per class, and hints for folders that are no layout."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from napari_nsclc import registry
from napari_nsclc.cli import main, summarize
from napari_nsclc.formats.masks import LazyArray
from napari_nsclc.model import NsclcFormatError
from napari_nsclc.testing import build


def _midog_totals_from_json(path: Path) -> dict[str, int]:
    """Boxes per class name, straight from the database's categories and annotations."""
    database = json.loads(path.read_text())
    names = {category["id"]: category["name"] for category in database["categories"]}
    return dict(Counter(names[annotation["category_id"]] for annotation in database["annotations"]))


def test_info_totals_on_the_real_midog_database(samples, capsys):
    path = samples / "midog" / "MIDOG.json"
    expected = _midog_totals_from_json(path)
    assert sum(expected.values()) == 4435 and set(expected) == {"mitotic figure", "not mitotic figure"}

    assert main(["info", str(path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert len(summary["cases"]) == 200
    assert summary["totals"] == {"mitotic figures": expected}
    assert summary["count_units"] == {"mitotic figures": "objects"}
    # the totals are the per-case counts summed
    per_case = Counter()
    for case in summary["cases"]:
        per_case.update(case["annotations"].get("mitotic figures", {}))
    assert dict(per_case) == expected

    assert main(["info", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    totals = lines[lines.index("totals (200 case(s)):") :]
    assert totals == [
        "totals (200 case(s)):",
        f"  mitotic figures: mitotic figure {expected['mitotic figure']}, "
        f"not mitotic figure {expected['not mitotic figure']}",
    ]


def _pixels_per_value(folder: Path) -> Counter:
    counts: Counter = Counter()
    for file in sorted(folder.iterdir()):
        with Image.open(file) as image:
            values, numbers = np.unique(np.asarray(image), return_counts=True)
        counts.update(dict(zip(values.tolist(), numbers.tolist(), strict=True)))
    return counts


def test_info_totals_on_an_nsclc_nat_root_are_pixels_summed_over_the_masks(tmp_path, capsys):
    root = build("nsclc-nat", tmp_path)
    segmentation = _pixels_per_value(root / "SegmentationClass")  # 0 background, 1 tumour bed
    expert = _pixels_per_value(root / "Mask")  # 0/255
    assert set(segmentation) == {0, 1} and set(expert) == {0, 255}

    assert main(["info", str(root), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["totals"] == {
        "tumour bed (SegmentationClass)": {"tumour bed": segmentation[1]},
        "expert mask (Mask)": {"tumour bed": expert[255]},
    }
    assert set(summary["count_units"].values()) == {"px"}

    assert main(["info", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"  tumour bed (SegmentationClass): tumour bed {segmentation[1]} px\n" in out
    assert f"  expert mask (Mask): tumour bed {expert[255]} px\n" in out


def test_counting_keeps_the_masks_lazy(tmp_path):
    root = build("nsclc-nat", tmp_path)
    cases = registry.read(root)
    summary = summarize(root, registry.detect(root), cases)
    assert sum(summary["totals"]["tumour bed (SegmentationClass)"].values()) > 0
    # nothing decoded was kept on the cases (the reader decodes only the first one to check it)
    assert all(isinstance(mask.data, LazyArray) for case in cases[1:] for mask in case.masks)


def _error_line(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_info_on_a_folder_holding_midog_json_names_it_and_the_layouts(samples, tmp_path, capsys):
    folder = tmp_path / "folder"
    folder.mkdir()
    shutil.copy(samples / "midog" / "MIDOG.json", folder / "MIDOG.json")
    assert main(["info", str(folder)]) == 2
    line = _error_line(capsys)
    assert line.startswith(f"napari-nsclc: error: {folder}: is not a dataset layout napari-nsclc knows (")
    assert "nsclc-nat needs Images/ with Mask/ or SegmentationClass/" in line
    assert "nucls needs csv/ with rgb/ or mask/" in line
    assert line.endswith("; it holds MIDOG.json (MIDOG mitosis database): open that file instead")
    # and the file named there opens
    assert main(["info", str(folder / "MIDOG.json"), "--json"]) == 0


def test_info_on_an_empty_folder_says_it_is_empty(tmp_path, capsys):
    folder = tmp_path / "empty"
    folder.mkdir()
    assert main(["info", str(folder)]) == 2
    line = _error_line(capsys)
    assert line.startswith(f"napari-nsclc: error: {folder}: is an empty folder; napari-nsclc opens a dataset folder (")
    assert "nucls needs csv/ with rgb/ or mask/" in line
    assert line.endswith(") or an annotation or image file")


def test_a_folder_holding_a_dataset_folder_and_files_names_them(tmp_path, samples):
    parent = tmp_path / "parent"
    build("nsclc-nat", parent)
    with pytest.raises(NsclcFormatError) as raised:
        registry.detect(parent)
    assert raised.value.problem.endswith("; it holds nsclc-nat/ (NSCLC-NAT-WSI dataset): open that folder instead")
    shutil.copy(samples / "camelyon17" / "patient_004_node_4.xml", parent / "slide.xml")
    (parent / "notes.txt").write_text("nothing to read")
    with pytest.raises(NsclcFormatError) as raised:
        registry.detect(parent)
    assert raised.value.problem.endswith(
        "; it holds nsclc-nat/ (NSCLC-NAT-WSI dataset), slide.xml (ASAP XML): open one of those instead"
    )


def test_only_a_bounded_number_of_entries_is_sniffed(tmp_path, monkeypatch):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(registry.MAX_ENTRIES_SNIFFED + 30):
        (folder / f"{i:03d}.txt").write_text("x")
    sniffed: list[Path] = []
    original = registry._sniff

    def counting(path, specs):
        sniffed.append(path)
        return original(path, specs)

    monkeypatch.setattr(registry, "_sniff", counting)
    with pytest.raises(NsclcFormatError) as raised:
        registry.detect(folder)
    assert raised.value.problem.endswith(
        f"; none of its first {registry.MAX_ENTRIES_SNIFFED} entries is a file or dataset folder it reads"
    )
    assert len(sniffed) == 1 + registry.MAX_ENTRIES_SNIFFED  # the folder, then its sampled entries
