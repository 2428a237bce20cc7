"""How long a conversion takes, and what planning it first costs (the conversion-matrix issue).

Every conversion is planned before anything is written (``napari_nsclc.conversion.plan``):
it walks every case's objects and looks at every mask's header. This script measures
that plan against the whole ``napari-nsclc convert`` (read, plan, write), on

* a synthetic NSCLC-NAT dataset of 200 cases of 480 x 640 (two masks each), and
* the real MIDOG 2021 database (200 images, 4,435 cells), from ``../shared/samples``,

and writes a section of docs/benchmarks.md. Run: ``python benchmarks/bench_conversion.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import markdown_table, peak_rss_mb, write_section  # noqa: E402

from napari_nsclc import conversion, registry  # noqa: E402
from napari_nsclc.testing.segmentation import smooth_field, tissue_image  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"


def build_nat(root: Path, cases: int, shape=(480, 640)) -> Path:
    """An NSCLC-NAT root like ``testing.build_nsclc_nat``, but with ``cases`` cases of ``shape``."""
    for folder in ("Images", "SegmentationClass", "Mask"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for index in range(1, cases + 1):
        bed = smooth_field(shape, seed=index, cell=64) > 0.6
        Image.fromarray(tissue_image(shape, seed=index, dense=bed)).save(root / "Images" / f"{index}.png")
        Image.fromarray(bed.astype(np.uint8)).save(root / "SegmentationClass" / f"{index}.png")
        Image.fromarray((bed * 255).astype(np.uint8)).save(root / "Mask" / f"{index}.png")
    return root


def timed(function, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def measure(source: Path, writer: str, out: Path, repeats: int) -> list:
    plan_times = []
    for _ in range(repeats):  # freshly read cases each time: their mask headers are not yet probed
        cases = registry.read(source)
        start = time.perf_counter()
        plan = conversion.plan(cases, writer)
        plan_times.append(time.perf_counter() - start)
    target = out / ("out.json" if writer in ("coco", "midog") else "out")

    def convert():
        from napari_nsclc.cli import main

        main(["convert", str(source), "--to", writer, "-o", str(target), "--overwrite"])

    with contextlib.redirect_stdout(io.StringIO()):
        convert_times = timed(convert, repeats)
    plan_s, convert_s = statistics.median(plan_times), statistics.median(convert_times)
    return [f"{source.name} ({len(cases)} cases)", writer, plan.verdict, f"{plan_s * 1000:.1f}",
            f"{convert_s:.2f}", f"{plan_s / convert_s * 100:.1f} %"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-conversion-") as folder:
        folder = Path(folder)
        nat = build_nat(folder / "nat", args.cases)
        for writer in ("coco", "masks", "geojson", "voc"):
            rows.append(measure(nat, writer, folder, args.repeats))
            print(rows[-1])
        midog = SAMPLES / "midog" / "MIDOG.json"
        for writer in ("coco", "voc", "geojson"):
            rows.append(measure(midog, writer, folder, args.repeats))
            print(rows[-1])
    body = (
        "Each conversion is planned before it writes: the plan counts every kind of annotation per class, looks at "
        "every mask's header (no pixels are decoded, except empty placeholders) and decides exact, lossy or "
        f"refused. Times are medians of {args.repeats} runs in one process; `convert` is the whole command "
        "(read, plan, write) with a warm page cache.\n\n"
        + markdown_table(["source", "to", "verdict", "plan (ms)", "convert (s)", "plan / convert"], rows)
        + f"\n\nPeak RSS of the run: {peak_rss_mb():.0f} MB."
    )
    write_section("conversion", "Conversions: the plan before the write (issue 9)", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
