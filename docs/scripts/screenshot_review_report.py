"""Screenshot for docs/review.md: ``review-report.png``, the report of a demo review store in headless Chromium.

The demo store has NSCLC-NAT tumour-bed masks and IGNITE PD-L1 cells, corrected by three students (alice, bob,
carol) and reviewed by dr_smith; its submissions carry hand-made, plausible agreement figures. The store API
stamps every event with the current time, so the whole demo happens on one day.

Needs Chromium (scripts/setup.sh installs Debian's ``chromium``):
``.venv/bin/python docs/scripts/screenshot_review_report.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from napari_nsclc.review import open_store
from napari_nsclc.review.report import write_report

IMAGES = Path(__file__).resolve().parents[1] / "images"
NAT, PDL1 = "NSCLC-NAT", "IGNITE-PDL1"
BED, EXPERT, CELLS = "tumour bed (SegmentationClass)", "expert mask (Mask)", "cells"
CLASSES = ("pd-l1 negative tumor cell", "pd-l1 positive tumor cell", "non-tumor cell")


def _masks(dice: float, changed: int, expert: float | None = None) -> dict:
    layers = {BED: (dice, changed)}
    if expert is not None:
        layers[EXPERT] = (expert, round(changed * 0.4))
    return {"masks": {name: {"mean_dice": d, "mean_iou": d / (2 - d), "pixels_changed": n, "pixels_compared": 12_288,
                             "per_class": {"tumour bed": {"dice": d, "iou": d / (2 - d)}}}
                      for name, (d, n) in layers.items()}, "points": {}, "boxes": {}}  # fmt: skip


def _cells(f1: float, kappa: float | None, per_class: tuple[float, float, float]) -> dict:
    rows = {name: {"precision": v, "recall": v, "f1": v, "support": 40} for name, v in zip(CLASSES, per_class, strict=True)}
    figures = {"f1": f1, "kappa": kappa, "n_original": 120, "n_corrected": 118, "matched": 112, "per_class": rows,
               "criterion": {"radius_um": 10.0, "pixel_size_um": 0.5}}  # fmt: skip
    return {"masks": {}, "points": {CELLS: figures}, "boxes": {}}


def build_store(path: Path) -> None:
    """A store in every state: two datasets, three students, a supervisor, comments and resubmissions."""
    with open_store(path) as store:
        store.set_supervisors(["dr_smith"], by="dr_smith")
        nat_cases = {"12": "alice", "17": "alice", "23": "bob", "31": "bob", "38": "carol", "44": None}
        pdl1_cases = {"patient1_pdl1_roi1": "carol", "patient2_pdl1_roi1": "alice", "patient3_pdl1_roi2": "bob"}
        for dataset, assigned in ((NAT, nat_cases), (PDL1, pdl1_cases)):
            for case, who in assigned.items():
                store.add_case(dataset, case, by="dr_smith")
                if who:
                    store.assign(case, who, dataset=dataset, by="dr_smith")

        def submit(case, who, details, dataset=NAT):
            store.transition(case, "in_progress", by=who, dataset=dataset)
            store.transition(case, "submitted", by=who, dataset=dataset, details=details)

        submit("12", "alice", _masks(0.93, 410, expert=0.95))
        store.transition("12", "approved", by="dr_smith", comment="Clean margins, well done.", dataset=NAT)
        submit("17", "alice", _masks(0.88, 790))
        submit("23", "bob", None)  # submitted before the store kept agreement figures
        store.comment("23", "dr_smith", "The bed misses the lower gland: extend it to the capsule.",
                      position=(812.0, 430.5), dataset=NAT)  # fmt: skip
        store.transition("23", "changes_requested", by="dr_smith", comment="See the pinned comment.", dataset=NAT)
        submit("23", "bob", _masks(0.71, 2_310, expert=0.74))
        store.transition("23", "approved", by="dr_smith", dataset=NAT)
        store.transition("31", "in_progress", by="bob", dataset=NAT)
        submit("38", "carol", _masks(0.64, 3_050))
        store.transition("38", "changes_requested", by="dr_smith", dataset=NAT,
                         comment="Too much fat included at the top: compare with the expert mask.")  # fmt: skip
        submit("patient1_pdl1_roi1", "carol", _cells(0.91, 0.82, (0.93, 0.85, 0.88)), PDL1)
        store.transition("patient1_pdl1_roi1", "approved", by="dr_smith", dataset=PDL1)
        submit("patient2_pdl1_roi1", "alice", _cells(0.86, 0.71, (0.84, 0.69, 0.9)), PDL1)
        store.comment("patient2_pdl1_roi1", "alice", "Two cells at the edge are out of focus; I left them as they were.",
                      dataset=PDL1)  # fmt: skip
        store.transition("patient3_pdl1_roi2", "in_progress", by="bob", dataset=PDL1)


def screenshot(page: Path, png: Path, profile: Path) -> None:
    """``page`` in headless Chromium, 1200 x 1600 CSS pixels, into ``png``."""
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    flags = ["--headless", "--disable-gpu", "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}",
             f"--screenshot={png}", "--window-size=1200,1600"]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        flags.append("--no-sandbox")  # Chromium's sandbox refuses to run as root
    subprocess.run([chromium, *flags, page.as_uri()], check=True, capture_output=True, timeout=180)


def main() -> None:
    root = Path(tempfile.gettempdir()) / "nsclc-review-demo"
    shutil.rmtree(root, ignore_errors=True)
    (root / "project").mkdir(parents=True)
    build_store(root / "project" / "review.db")
    with open_store(root / "project" / "review.db") as store:
        page = write_report(store, root / "report")
    IMAGES.mkdir(exist_ok=True)
    screenshot(page, IMAGES / "review-report.png", root / "chromium-profile")
    print(f"wrote {page} and {IMAGES / 'review-report.png'}")


if __name__ == "__main__":
    main()
