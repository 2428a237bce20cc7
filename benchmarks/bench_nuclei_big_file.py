"""A 2 GB QuPath GeoJSON read headless: streamed (bounded memory in the scan), with progress, and its cost.

Run: ``.venv/bin/python benchmarks/bench_nuclei_big_file.py [--count 4400000]``. The file (about 2.1 GB for
4.4M nuclei) is generated in a temporary folder and deleted. Prints the progress lines the reader reports, the
time of each stage and the peak resident memory of this process and of the two parsing processes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine_description  # noqa: E402


def _peak_mb(pid: str = "self") -> float:
    with open(f"/proc/{pid}/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("VmHWM")) / 1024


def _watch_workers(peaks: dict, stop: threading.Event) -> None:
    """Sample the parsing children's peak memory (their VmHWM) until ``stop``."""
    import os

    while not stop.is_set():
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
                if b"napari_nsclc.nuclei._workers" in command:
                    peaks[pid] = max(peaks.get(pid, 0.0), _peak_mb(pid))
            except OSError:
                continue
        stop.wait(0.1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=4_400_000)
    args = parser.parse_args(argv)
    import subprocess

    from napari_nsclc.nuclei import geojson

    print(machine_description())
    with tempfile.TemporaryDirectory(prefix="bench-nuclei-big-") as folder:
        path = Path(folder) / "slide.geojson"
        start = time.perf_counter()
        # generated in a child: this process's peak memory is the reader's alone
        subprocess.run([sys.executable, "-c", "import sys; from napari_nsclc.testing.nuclei import "
                        "build_nuclei_geojson as build; build(sys.argv[1], int(sys.argv[2]))", str(path),
                        str(args.count)], check=True)
        gigabytes = path.stat().st_size / 1e9
        print(f"{args.count:,} nuclei: {gigabytes:.2f} GB written in {time.perf_counter() - start:.0f} s")
        base = _peak_mb()
        reports, stages = [], {}

        def progress(stage, done, total):
            now = time.perf_counter()
            stages.setdefault(stage, now)
            if not reports or reports[-1][0] != stage or done == total or now - reports[-1][3] > 2:
                reports.append((stage, done, total, now))
                print(f"  progress {stage}: {done:,} of {total:,}", flush=True)

        peaks, stop = {}, threading.Event()
        watcher = threading.Thread(target=_watch_workers, args=(peaks, stop), daemon=True)
        watcher.start()
        start = time.perf_counter()
        nuclei = geojson.read(path, progress=progress)
        total = time.perf_counter() - start
        stop.set()
        watcher.join()
        print(f"read {len(nuclei):,} nuclei in {total:.1f} s (scan {stages['parse'] - start:.1f} s, "
              f"parse and arrays {total - (stages['parse'] - start):.1f} s); {len(reports)} progress reports")
        print(f"peak RSS: this process {_peak_mb():,.0f} MB (before reading: {base:,.0f} MB); "
              f"parsing processes {', '.join(f'{v:,.0f}' for v in peaks.values())} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
