"""docs/conversions.md is generated from the code: it must say what the code declares."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from napari_nsclc import conversion

REPO = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("conversions_page", REPO / "docs" / "scripts" / "conversions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_conversions_page_is_the_generated_one():
    page = (REPO / "docs" / "conversions.md").read_text()
    assert page == _script().page(), "docs/conversions.md is stale: run python docs/scripts/conversions.py"


def test_the_page_shows_every_verdict_of_the_matrix():
    page = (REPO / "docs" / "conversions.md").read_text()
    rows = {line.split("|")[1].strip().strip("*"): line for line in page.splitlines() if line.startswith("| **")}
    writers = [w.strip() for w in page.split("| reads")[1].splitlines()[0].split("|")[1:-1]]
    words = {"exact": "exact", "lossy": "lossy", "refused": "no"}
    for (reader, writer), cell in conversion.matrix().items():
        shown = rows[reader].split("|")[2:-1][writers.index(writer)].strip().strip("*")
        assert shown in (words[cell.verdict], writer), (reader, writer, shown)


def test_the_readme_links_the_conversions_page():
    assert "(docs/conversions.md)" in (REPO / "README.md").read_text()
