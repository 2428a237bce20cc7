"""Whole-slide benchmark: napari-nsclc against OpenSlide and tiffslide, same files, same run.

Builds synthetic JPEG-tiled pyramidal BigTIFFs (CAMELYON layout, 512-pixel
tiles, 2x levels down to < 1024 pixels) of 10k x 10k and 100k x 100k pixels.
Every tile is the same pre-encoded JPEG, so building the 100k slide takes
seconds and about 0.5 GB of disk. Then, each tool in its own fresh process:

(a) open + read the whole overview (smallest) level, seconds;
(b) random 256 x 256 level-0 region reads per second, 1 and 2 threads;
(c) peak resident memory, and the extra over the process after imports;
(d) napari only: ``viewer.open`` to the first drawn screenshot (under Xvfb when
    there is no display).

Run: ``.venv/bin/python benchmarks/bench_slides.py`` (needs ``openslide-python``,
``openslide-bin``, ``tiffslide``, ``psutil``). The table goes to the "slides"
section of docs/benchmarks.md. Files are deleted afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

TOOLS = ("napari-nsclc", "tiffslide", "openslide")
REGION = 256


# --------------------------------------------------------------------------- building


def build_slide(folder: Path, size: int) -> Path:
    """A synthetic ``size`` x ``size`` JPEG-tiled pyramid; levels halve until the longest side < 1024."""
    from napari_nsclc.testing.slides import write_camelyon_like

    n_levels = 1
    while size / 2 ** (n_levels - 1) >= 1024:
        n_levels += 1
    path = folder / f"synthetic_{size // 1000}k.tif"
    write_camelyon_like(path, shape=(size, size), n_levels=n_levels, tile=512, reuse_tiles=True)
    return path


# --------------------------------------------------------------------------- workers (run in their own process)


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _opener(tool: str):
    """``open(path) -> (level0_reader(y, x) -> ndarray, overview() -> ndarray)`` for ``tool``."""
    import numpy as np

    if tool == "napari-nsclc":
        import tifffile  # noqa: F401 - imported up front, as tiffslide and openslide import theirs

        from napari_nsclc.formats.slide import read_slide

        def open_plugin(path):
            (case,) = read_slide(path, companions=False)
            levels = case.image.data
            return (lambda y, x: np.asarray(levels[0][y : y + REGION, x : x + REGION]),
                    lambda: np.asarray(levels[-1]))

        return open_plugin
    if tool == "tiffslide":
        import tiffslide

        def open_tiffslide(path):
            slide = tiffslide.TiffSlide(path)
            last = slide.level_count - 1
            return (lambda y, x: slide.read_region((x, y), 0, (REGION, REGION), as_array=True),
                    lambda: slide.read_region((0, 0), last, slide.level_dimensions[last], as_array=True))

        return open_tiffslide
    if tool == "openslide":
        import openslide

        def open_openslide(path):
            slide = openslide.OpenSlide(path)
            last = slide.level_count - 1
            return (lambda y, x: np.asarray(slide.read_region((x, y), 0, (REGION, REGION)))[..., :3],
                    lambda: np.asarray(slide.read_region((0, 0), last, slide.level_dimensions[last]))[..., :3])

        return open_openslide
    raise ValueError(tool)


def worker(tool: str, path: str, n_reads: int, seed: int) -> dict:
    """Measure one tool on one file in this (fresh) process; returns a JSON-able dict."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    opener = _opener(tool)
    baseline_rss = _rss_mb()
    start = time.perf_counter()
    read_region, overview = opener(path)
    overview_pixels = overview()
    open_s = time.perf_counter() - start
    open_peak = _peak_mb()
    size = int(Path(path).stem.split("_")[-1].rstrip("k")) * 1000
    rng = np.random.default_rng(seed)
    positions = rng.integers(0, size - REGION, (n_reads, 2))
    read_region(0, 0)  # warm-up: first-call imports and caches, not region speed

    start = time.perf_counter()
    checksum = 0
    for y, x in positions:
        checksum += int(read_region(int(y), int(x))[0, 0, 0])
    reads_1 = n_reads / (time.perf_counter() - start)

    def read_many(chunk):
        return sum(int(read_region(int(y), int(x))[0, 0, 0]) for y, x in chunk)

    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        checksum2 = sum(pool.map(read_many, np.array_split(positions, 2)))
    reads_2 = n_reads / (time.perf_counter() - start)
    assert checksum2 == checksum, "threaded reads differ from serial reads"
    return {
        "tool": tool, "size": size, "open_s": open_s, "overview_shape": list(overview_pixels.shape),
        "baseline_rss_mb": baseline_rss, "open_extra_mb": open_peak - baseline_rss, "peak_rss_mb": _peak_mb(),
        "reads_1": reads_1, "reads_2": reads_2,
    }


def napari_worker(path: str) -> dict:
    """Seconds from ``viewer.open`` to the first screenshot with the slide drawn."""
    import napari
    import numpy as np

    viewer = napari.Viewer(show=True)
    baseline_rss = _rss_mb()
    start = time.perf_counter()
    layers = viewer.open(path, plugin="napari-nsclc")
    screenshot = viewer.screenshot(canvas_only=True)
    elapsed = time.perf_counter() - start
    drawn = float(np.asarray(screenshot)[..., :3].std())
    level = int(layers[0].data_level)
    # again in the same session: without napari's one-time set-up of its first layer (imports, unit registry)
    viewer.layers.clear()
    start = time.perf_counter()
    viewer.open(path, plugin="napari-nsclc")
    viewer.screenshot(canvas_only=True)
    warm = time.perf_counter() - start
    viewer.close()
    return {"first_screenshot_s": elapsed, "warm_screenshot_s": warm, "drawn_std": drawn, "data_level": level,
            "extra_rss_mb": _peak_mb() - baseline_rss}


def _run(args: list[str], xvfb: bool = False) -> dict:
    command = [sys.executable, __file__, *args]
    if xvfb and not os.environ.get("DISPLAY") and shutil.which("xvfb-run"):
        command = ["xvfb-run", "-a", *command]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- report


def _measure(paths: dict[int, Path], n_reads: int, repeats: int) -> tuple[dict, dict]:
    """Median over ``repeats`` rounds; each round runs every tool on every file, interleaved,
    so that load from other jobs on the machine falls on all tools alike."""
    runs: dict[tuple[str, int], list[dict]] = {}
    napari_runs: dict[int, list[dict]] = {}
    for seed in range(repeats):
        for size, path in paths.items():
            for tool in TOOLS:
                runs.setdefault((tool, size), []).append(_run(["--worker", tool, str(path), str(n_reads), str(seed)]))
            napari_runs.setdefault(size, []).append(_run(["--napari", str(path)], xvfb=True))
        print(f"round {seed + 1}/{repeats} done", flush=True)
    results = {}
    for (tool, size), tool_runs in runs.items():
        merged = {key: statistics.median(run[key] for run in tool_runs)
                  for key in ("open_s", "open_extra_mb", "peak_rss_mb", "reads_1", "reads_2")}
        merged["open_best_s"] = min(run["open_s"] for run in tool_runs)
        merged["overview_shape"] = tool_runs[0]["overview_shape"]
        results[(tool, size)] = merged
        print(f"{tool:13} {size:>6}: " + ", ".join(f"{k} {v:.3g}" for k, v in merged.items() if isinstance(v, float)))
    screenshots = {}
    for size, size_runs in napari_runs.items():
        screenshots[size] = {key: statistics.median(run[key] for run in size_runs)
                             for key in ("first_screenshot_s", "warm_screenshot_s", "drawn_std", "extra_rss_mb")}
        screenshots[size]["data_level"] = size_runs[0]["data_level"]
    return results, screenshots


def _table(results: dict, screenshots: dict, sizes: list[int], n_reads: int, build_s: dict, repeats: int) -> str:
    from _report import markdown_table

    rows = []
    for size in sizes:
        for tool in TOOLS:
            r = results[(tool, size)]
            shot = screenshots[size]
            napari_s = (f"{shot['first_screenshot_s']:.2f} ({shot['warm_screenshot_s']:.2f} warm)"
                        if tool == "napari-nsclc" else "n/a")
            rows.append([f"{size // 1000}k²", tool, f"{r['open_s'] * 1000:.0f} / {r['open_best_s'] * 1000:.0f}",
                         f"{r['open_extra_mb']:.0f}",
                         f"{r['peak_rss_mb']:.0f}", f"{r['reads_1']:.0f}", f"{r['reads_2']:.0f}", napari_s])
    table = markdown_table(
        ["slide", "tool", "(a) open + overview, ms (median / best)", "(c) extra RSS at open, MB", "(c) peak RSS, MB",
         "(b) 256² reads/s, 1 thread", "(b) reads/s, 2 threads", "(d) viewer.open → first screenshot, s"],
        rows,
    )
    small, large = min(sizes), max(sizes)
    ours_small, ours_large = results[("napari-nsclc", small)], results[("napari-nsclc", large)]
    ratio_rows = []
    for size in sizes:
        ours = results[("napari-nsclc", size)]
        for competitor in ("tiffslide", "openslide"):
            other = results[(competitor, size)]
            ratio_rows.append([f"{size // 1000}k²", competitor, f"{other['open_s'] / ours['open_s']:.2f}×",
                               f"{ours['reads_1'] / other['reads_1']:.2f}×",
                               f"{ours['reads_2'] / other['reads_2']:.2f}×"])
    ratios = markdown_table(["slide", "vs", "open + overview speed-up", "reads/s ratio, 1 thread",
                             "reads/s ratio, 2 threads"], ratio_rows)
    time_growth = ours_large["open_s"] / ours_small["open_s"]
    best_growth = ours_large["open_best_s"] / ours_small["open_best_s"]
    memory_growth = max(ours_large["open_extra_mb"], 1.0) / max(ours_small["open_extra_mb"], 1.0)
    read_vs_tiffslide = min(ours_large["reads_1"] / results[("tiffslide", large)]["reads_1"],
                            ours_large["reads_2"] / results[("tiffslide", large)]["reads_2"])
    read_vs_openslide = min(ours_large["reads_1"] / results[("openslide", large)]["reads_1"],
                            ours_large["reads_2"] / results[("openslide", large)]["reads_2"])

    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    targets = markdown_table(["target", "measured", "verdict"], [
        [f"{large // 1000}k² open + overview ≤ 1 s", f"{ours_large['open_s']:.3f} s",
         verdict(ours_large["open_s"] <= 1.0)],
        [f"{large // 1000}k² extra RSS ≤ 300 MB", f"{ours_large['open_extra_mb']:.0f} MB",
         verdict(ours_large["open_extra_mb"] <= 300)],
        [f"{small // 1000}k² → {large // 1000}k² time growth ≤ 1.5× (medians; best runs in brackets)",
         f"{time_growth:.2f}× ({best_growth:.2f}×)", verdict(time_growth <= 1.5)],
        [f"{small // 1000}k² → {large // 1000}k² memory growth ≤ 1.5×", f"{memory_growth:.2f}×",
         verdict(memory_growth <= 1.5)],
        ["random reads ≥ 1.0× tiffslide (worst of 1 and 2 threads)", f"{read_vs_tiffslide:.2f}×",
         verdict(read_vs_tiffslide >= 1.0)],
        ["random reads ≥ 1.5× OpenSlide (worst of 1 and 2 threads)", f"{read_vs_openslide:.2f}×",
         verdict(read_vs_openslide >= 1.5)],
    ])
    napari_note = "; ".join(
        f"{size // 1000}k²: {s['first_screenshot_s']:.2f} s ({s['warm_screenshot_s']:.2f} s warm), "
        f"drew level {s['data_level']} "
        f"(screenshot pixel std {s['drawn_std']:.0f}, > 0 means the slide is on screen)"
        for size, s in screenshots.items()
    )
    build_note = ", ".join(f"{size // 1000}k² in {seconds:.1f} s" for size, seconds in build_s.items())
    return (
        f"Synthetic JPEG-tiled pyramidal BigTIFFs (512² tiles, one pre-encoded tile reused; built {build_note}). "
        f"Each tool runs in its own fresh process, in {repeats} rounds that interleave the tools; every number is the "
        f"median over the rounds. (b) is {n_reads} random "
        "256² level-0 regions (same positions for every tool) returned as numpy arrays. "
        "(c) extra RSS = peak resident memory after open + overview minus resident memory after imports. "
        "(d) is measured for this plugin only (the other tools have no napari reader here): the first number is the "
        "first layer of a fresh napari session, which includes napari's one-time set-up (layer imports, its unit "
        "registry); 'warm' is the same file opened again in that session.\n\n"
        f"{table}\n\nRatios (this plugin relative to each competitor; > 1 means this plugin is faster):\n\n{ratios}\n\n"
        f"Targets from issue 3:\n\n{targets}\n\nnapari first screenshot: {napari_note}."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--reads", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=None, help="where to build the slides (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the built slides")
    parser.add_argument("--no-report", action="store_true", help="print the table, do not write docs/benchmarks.md")
    parser.add_argument("--worker", nargs=4, metavar=("TOOL", "PATH", "READS", "SEED"), help=argparse.SUPPRESS)
    parser.add_argument("--napari", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        tool, path, reads, seed = args.worker
        print(json.dumps(worker(tool, path, int(reads), int(seed))))
        return 0
    if args.napari:
        print(json.dumps(napari_worker(args.napari)))
        return 0

    folder = Path(tempfile.mkdtemp(prefix="bench_slides_", dir=args.workdir))
    try:
        paths, build_s = {}, {}
        for size in args.sizes:
            start = time.perf_counter()
            paths[size] = build_slide(folder, size)
            build_s[size] = time.perf_counter() - start
            print(f"built {paths[size].name}: {paths[size].stat().st_size / 2**20:.0f} MiB in {build_s[size]:.1f} s",
                  flush=True)
        results, screenshots = _measure(paths, args.reads, args.repeats)
        body = _table(results, screenshots, args.sizes, args.reads, build_s, args.repeats)
        print(body)
        if not args.no_report:
            from _report import write_section

            print(f"wrote {write_section('slides', 'Whole-slide images (issue 3)', body)}")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
