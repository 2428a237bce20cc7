"""napari-nsclc review report: the CSV tables, the plots and the HTML page of a review store, and the page in Chromium.

The store holds two datasets, three annotators, a case in every state, comments, submissions with hand-made
details and one older submission without any. The figures below are worked out by hand from those details.
The Chromium test needs /usr/bin/chromium (scripts/setup.sh installs it); without it, it fails.
"""

from __future__ import annotations

import csv
import html
import json
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from napari_nsclc.cli import main
from napari_nsclc.model import NsclcFormatError
from napari_nsclc.review import open_store
from napari_nsclc.review.report import write_report
from napari_nsclc.review.report_plots import agreement_matrix, work_per_day

PNGS = ("agreement.png", "per_class_f1.png", "work_over_time.png")


def _mask(dice, changed, classes=None):
    per_class = {name: {"dice": value, "iou": None if value is None else value / (2 - value)}
                 for name, value in (classes or {"tumour bed": dice}).items()}  # fmt: skip
    return {"mean_dice": dice, "mean_iou": None, "pixels_changed": changed, "pixels_compared": 10_000,
            "per_class": per_class}  # fmt: skip


def _cells(f1, kappa, per_class):
    return {"f1": f1, "kappa": kappa, "n_original": 10, "n_corrected": 10, "matched": 9, "criterion": {"radius_px": 20},
            "per_class": {name: {"precision": v, "recall": v, "f1": v, "support": 3} for name, v in per_class.items()}}


NAT_3 = {"masks": {"tumour bed": _mask(0.8, 100)}, "points": {}, "boxes": {}}  # alice
NAT_4 = {"masks": {"tumour bed": _mask(0.6, 300), "expert mask": _mask(0.9, 20),  # bob's second submission
                   "huge": {"skipped": "too large to compare"}}, "points": {}, "boxes": {}}  # fmt: skip
IGNITE_1 = {"masks": {}, "points": {"cells": _cells(0.9, 0.5, {"tumour": 1.0, "lymphocyte": 0.8, "stroma": None})},
            "boxes": {}}  # carol  # fmt: skip
IGNITE_2 = {"masks": {}, "points": {"cells": _cells(0.7, None, {"tumour": 0.5, "lymphocyte": 0.9})},  # alice
            "boxes": {"mitoses": _cells(0.4, 0.2, {"mitosis": 0.4})}}  # fmt: skip


def _submit(store, case, who, details, dataset):
    store.transition(case, "in_progress", by=who, dataset=dataset)
    store.transition(case, "submitted", by=who, dataset=dataset, details=details)


@pytest.fixture
def store_path(tmp_path):
    path = tmp_path / "review.db"
    with open_store(f"sqlite:///{path}") as store:
        store.set_supervisors(["dr_smith"], by="dr_smith")
        for dataset, case in [("NSCLC-NAT", c) for c in "1234"] + [("IGNITE", "1"), ("IGNITE", "2")]:
            store.add_case(dataset, case, by="dr_smith")
        for dataset, case, who in [("NSCLC-NAT", "2", "alice"), ("NSCLC-NAT", "3", "alice"), ("NSCLC-NAT", "4", "bob"),
                                   ("IGNITE", "1", "carol"), ("IGNITE", "2", "alice"), ("IGNITE", "2", "carol")]:
            store.assign(case, who, dataset=dataset, by="dr_smith")  # fmt: skip
        nat, ignite = "NSCLC-NAT", "IGNITE"
        store.transition("2", "in_progress", by="alice", dataset=nat)
        store.comment("2", "dr_smith", "<b>& check the margin", position=(10.0, 20.0), dataset=nat)
        _submit(store, "3", "alice", NAT_3, nat)
        store.transition("3", "approved", by="dr_smith", comment="fine", dataset=nat)
        _submit(store, "4", "bob", None, nat)  # an older submission: no details
        store.transition("4", "changes_requested", by="dr_smith", comment="redo <the> lower gland", dataset=nat)
        _submit(store, "4", "bob", NAT_4, nat)
        _submit(store, "1", "carol", IGNITE_1, ignite)
        store.comment("1", "bob", "=SUM(A1)", dataset=ignite)
        store.transition("1", "changes_requested", by="dr_smith", comment="missed cells", dataset=ignite)
        _submit(store, "2", "alice", IGNITE_2, ignite)
        store.transition("2", "approved", by="dr_smith", dataset=ignite)
    return path


@pytest.fixture
def report(store_path, tmp_path):
    with open_store(store_path) as store:
        page = write_report(store, tmp_path / "out" / "report")  # a missing folder (and its parent) is made
    return page


def _csv(folder: Path, name: str) -> list[dict]:
    with open(folder / name, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def _rounded(rows):
    """Each row with its floats rounded to 9 places (the means are sums of floats), for an exact comparison."""
    return [type(row)(round(v, 9) if isinstance(v, float) else v for v in row) for row in rows]


def _num(text: str) -> float | None:
    return float(text) if text != "" else None


def test_states_and_annotators(report):
    folder = report.parent
    assert report.name == "report.html" and report.is_file()
    assert [(r["state"], int(r["count"])) for r in _csv(folder, "states.csv")] == [
        ("new", 1), ("in_progress", 1), ("submitted", 1), ("changes_requested", 1), ("approved", 2)]
    rows = {r["annotator"]: r for r in _csv(folder, "annotators.csv")}
    assert list(rows) == ["alice", "bob", "carol"]
    counts = {name: [int(r[k]) for k in ("cases_assigned", "submitted", "approved", "changes_requested")]
              for name, r in rows.items()}  # fmt: skip
    assert counts == {"alice": [3, 2, 2, 0], "bob": [1, 2, 0, 1], "carol": [2, 1, 0, 1]}
    # alice: NSCLC-NAT 3 has one mask (0.8); IGNITE 2 has points F1 0.7 and boxes F1 0.4
    assert _num(rows["alice"]["mean_dice"]) == pytest.approx(0.8)
    assert _num(rows["alice"]["mean_f1"]) == pytest.approx(0.55)
    # bob: his latest submission of NSCLC-NAT 4 has 0.6 and 0.9 (the skipped mask is left out); no cells
    assert _num(rows["bob"]["mean_dice"]) == pytest.approx(0.75)
    assert rows["bob"]["mean_f1"] == ""
    assert rows["carol"]["mean_dice"] == "" and _num(rows["carol"]["mean_f1"]) == pytest.approx(0.9)


def test_cases_table(report):
    rows = {(r["dataset"], r["case"]): r for r in _csv(report.parent, "cases.csv")}
    assert list(rows) == [("IGNITE", "1"), ("IGNITE", "2"), *[("NSCLC-NAT", c) for c in "1234"]]
    with open(report.parent / "cases.csv", encoding="utf-8") as file:
        header = file.readline().strip().split(",")
    assert header[:9] == ["dataset", "case", "state", "annotators", "submissions", "changes_requested", "comments",
                          "last_submitted_by", "last_submitted_at"]  # fmt: skip
    assert header[9:] == [
        "mask:expert mask:mean_dice", "mask:expert mask:pixels_changed", "mask:huge:mean_dice",
        "mask:huge:pixels_changed", "mask:tumour bed:mean_dice", "mask:tumour bed:pixels_changed",
        "points:cells:f1", "points:cells:kappa", "boxes:mitoses:f1", "boxes:mitoses:kappa"]  # fmt: skip
    nat4 = rows[("NSCLC-NAT", "4")]
    assert (nat4["state"], nat4["annotators"], nat4["submissions"], nat4["changes_requested"], nat4["comments"]) == (
        "submitted", "bob", "2", "1", "1")
    assert nat4["last_submitted_by"] == "bob" and nat4["last_submitted_at"].endswith("+00:00")
    assert _num(nat4["mask:tumour bed:mean_dice"]) == 0.6 and nat4["mask:tumour bed:pixels_changed"] == "300"
    assert nat4["mask:huge:mean_dice"] == "" and nat4["points:cells:f1"] == ""
    assert rows[("IGNITE", "2")]["annotators"] == "alice; carol"
    assert _num(rows[("IGNITE", "2")]["boxes:mitoses:f1"]) == 0.4 and rows[("IGNITE", "2")]["points:cells:kappa"] == ""
    assert rows[("IGNITE", "1")]["comments"] == "2" and _num(rows[("IGNITE", "1")]["points:cells:kappa"]) == 0.5
    new = rows[("NSCLC-NAT", "1")]
    assert (new["state"], new["annotators"], new["submissions"], new["last_submitted_by"]) == ("new", "", "0", "")


def test_per_class_and_events(report, store_path):
    rows = [(r["dataset"], r["kind"], r["layer"], r["class"], r["metric"], _num(r["mean"]), int(r["n"]))
            for r in _csv(report.parent, "per_class.csv")]  # fmt: skip
    assert _rounded(rows) == [
        ("IGNITE", "boxes", "mitoses", "mitosis", "f1", 0.4, 1),
        ("IGNITE", "points", "cells", "lymphocyte", "f1", 0.85, 2),
        ("IGNITE", "points", "cells", "stroma", "f1", None, 0),
        ("IGNITE", "points", "cells", "tumour", "f1", 0.75, 2),
        ("NSCLC-NAT", "mask", "expert mask", "tumour bed", "dice", 0.9, 1),
        ("NSCLC-NAT", "mask", "tumour bed", "tumour bed", "dice", 0.7, 2),  # 0.8 (case 3) and 0.6 (case 4's latest)
    ]  # fmt: skip
    events = _csv(report.parent, "events.csv")
    with open_store(store_path) as store:
        logged = store.events()
    assert [int(e["id"]) for e in events] == [e.id for e in logged]
    submitted = [e for e in events if e["what"] == "transition" and e["to_state"] == "submitted"]
    assert len(submitted) == 5 and submitted[0]["details"] == json.dumps(NAT_3, sort_keys=True, separators=(",", ":"))
    assert submitted[1]["details"] == ""  # the older submission
    assert "'=SUM(A1)" in [e["text"] for e in events]  # a spreadsheet shows it as text, never runs it


def test_the_plot_numbers(store_path):
    with open_store(store_path) as store:
        events = store.events()
    annotators, columns, values = agreement_matrix(events)
    assert annotators == ["alice", "bob", "carol"]
    assert columns == ["tumour bed (Dice)", "lymphocyte (F1)", "mitosis (F1)", "stroma (F1)", "tumour (F1)"]
    assert _rounded(values) == [[0.8, 0.9, 0.4, None, 0.5], [0.75, None, None, None, None],
                                [None, 0.8, None, None, 1.0]]  # fmt: skip
    days = work_per_day(events)
    total = {key: sum(day[key] for day in days.values()) for key in next(iter(days.values()))}
    assert total == {"submissions": 5, "approvals": 2, "changes requested": 2, "comments": 2}


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs))


def test_the_page_escapes_text_and_shows_every_image(report):
    text = report.read_text(encoding="utf-8")
    assert "&lt;b&gt;&amp; check the margin" in text and "<b>& check" not in text
    assert "redo &lt;the&gt; lower gland" in text
    assert str(report.parent.parent.parent / "review.db") in text  # the store's location, in the title line
    page = _Page()
    page.feed(text)
    assert "script" not in page.tags and "http://" not in text and "https://" not in text
    assert [image["src"] for image in page.images] == list(PNGS)
    for image in page.images:
        with Image.open(report.parent / image["src"]) as png:
            assert png.format == "PNG" and png.size == (int(image["width"]), int(image["height"]))
            assert len(np.unique(np.asarray(png.convert("RGB")).reshape(-1, 3), axis=0)) > 20  # drawn, not blank
        assert len(image["alt"]) > 20
    sizes = {name: Image.open(report.parent / name).size for name in PNGS}
    assert sizes == {"agreement.png": (900, 420), "per_class_f1.png": (900, 450), "work_over_time.png": (900, 400)}


def test_a_store_without_submissions_still_has_every_file(tmp_path):
    with open_store(tmp_path / "review.db") as store:
        store.add_case("NSCLC-NAT", "1", by="dr_smith")
        store.comment("1", "dr_smith", "start with this one")
        page = write_report(store, tmp_path / "out")
    assert [(r["state"], r["count"]) for r in _csv(page.parent, "states.csv")] == [
        ("new", "1"), ("in_progress", "0"), ("submitted", "0"), ("changes_requested", "0"), ("approved", "0")]
    assert _csv(page.parent, "annotators.csv") == [] and _csv(page.parent, "per_class.csv") == []
    for name in PNGS:
        with Image.open(page.parent / name) as png:
            pixels = np.asarray(png.convert("L"))
        assert png.size[0] >= 900 and (pixels < 200).sum() > 500  # the title and "No data yet" are drawn
    assert "No submission has been measured yet." in page.read_text(encoding="utf-8")


def test_a_file_in_the_way_is_refused(tmp_path, store_path):
    target = tmp_path / "report.txt"
    target.write_text("keep me")
    with open_store(store_path) as store, pytest.raises(NsclcFormatError) as refused:
        write_report(store, target)
    assert str(refused.value) == f"{target}: is a file, not a folder: give the folder to write the report in"
    assert target.read_text() == "keep me"


def test_the_command(store_path, tmp_path, capsys):
    out = tmp_path / "web"
    assert main(["review", "report", str(store_path), "-o", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    with open_store(store_path) as store:
        n_events = len(store.events())
    assert lines == [f"wrote {out / 'report.html'}: 6 case(s), 5 submission(s), 3 annotator(s), {n_events} event(s)"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["report.html", "cases.csv", "annotators.csv", "states.csv", "per_class.csv", "events.csv", *PNGS])
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left behind
    # again, into the same folder: replaced, not refused
    assert main(["review", "report", f"sqlite:///{store_path}", "--output", str(out)]) == 0


def test_the_command_refuses_a_missing_store_and_a_file_as_folder(tmp_path, store_path, capsys):
    missing = tmp_path / "none.db"
    assert main(["review", "report", str(missing), "-o", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"napari-nsclc: error: {missing}: does not exist (give a review.db file or a database URL)"]
    assert not missing.exists() and not (tmp_path / "out").exists()
    in_the_way = tmp_path / "file"
    in_the_way.write_text("")
    assert main(["review", "report", str(store_path), "-o", str(in_the_way)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"napari-nsclc: error: {in_the_way}: is a file, not a folder: give the folder to write the report in"]


def test_the_report_help_has_a_description_and_examples(capsys):
    with pytest.raises(SystemExit):
        main(["review", "report", "--help"])
    help_text = capsys.readouterr().out
    assert "-o DIR, --output DIR" in help_text and "does not exist is an error" in help_text
    assert help_text.split("examples:\n")[1].strip().startswith("napari-nsclc review report ")


def test_the_report_module_loads_no_gui_module():
    code = ("import json, sys\nimport napari_nsclc.review.report, napari_nsclc.review.report_plots\n"
            "print(json.dumps(sorted(sys.modules)))")  # fmt: skip
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)
    prefixes = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "vispy", "magicgui", "matplotlib.pyplot")
    assert [m for m in loaded if m.startswith(prefixes) and not m.startswith("napari_nsclc")] == []


# --------------------------------------------------------------------------- in a real browser

CHROMIUM = "/usr/bin/chromium"

# Added to a copy of the page: once it has loaded, write what the browser made of every image into the page.
CHECK = """<pre id="nsclc-check"></pre><img id="control" src="no-such-image.png" alt="" width="1" height="1">
<script>
function nsclcCheck() {
  const images = Array.from(document.images).map(i => ({src: i.getAttribute("src"), complete: i.complete,
    naturalWidth: i.naturalWidth, naturalHeight: i.naturalHeight, shownWidth: i.getBoundingClientRect().width}));
  document.getElementById("nsclc-check").textContent = JSON.stringify({images: images, title: document.title,
    tables: document.querySelectorAll("table").length, height: document.documentElement.scrollHeight});
}
if (document.readyState === "complete") nsclcCheck(); else window.addEventListener("load", nsclcCheck);
</script>
"""


def _chromium() -> str:
    found = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if found is None:  # part of the project's set-up, like Xvfb: missing is a failure, never a skip
        pytest.fail(f"headless Chromium not found ({CHROMIUM}): scripts/setup.sh installs it (Debian's chromium)")
    return found


def _run_chromium(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--disable-gpu", "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        flags.append("--no-sandbox")  # Chromium's sandbox refuses to run as root
    done = subprocess.run([chromium, *flags, *args], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_the_page_renders_in_headless_chromium(report, tmp_path):
    chromium = _chromium()
    check = report.with_name("check.html")  # beside the page, so that its relative image paths are the page's
    check.write_text(report.read_text(encoding="utf-8").replace("</body>", CHECK + "</body>"), encoding="utf-8")
    dom = _run_chromium(chromium, tmp_path / "profile", "--dump-dom", check.as_uri()).stdout
    start = dom.index('<pre id="nsclc-check">') + len('<pre id="nsclc-check">')
    found = json.loads(html.unescape(dom[start:dom.index("</pre>", start)]))
    images = {image["src"]: image for image in found["images"]}
    assert found["title"].startswith("Review report: ") and found["tables"] == 4 and found["height"] > 2000
    for name in PNGS:
        width, height = Image.open(report.parent / name).size
        assert images[name]["complete"] and (images[name]["naturalWidth"], images[name]["naturalHeight"]) == (
            width, height), images[name]
        assert images[name]["shownWidth"] > 0
    # the check itself tells a broken image from a loaded one
    assert images["no-such-image.png"]["complete"] and images["no-such-image.png"]["naturalWidth"] == 0
    # and the page itself, as a supervisor opens it: drawn, with its text and plots
    shot = tmp_path / "page.png"
    _run_chromium(chromium, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1200,1600", report.as_uri())
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape == (1600, 1200, 3)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200 and (pixels.min(axis=2) < 100).mean() > 0.01
