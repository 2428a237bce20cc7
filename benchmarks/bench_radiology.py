"""Radiology benchmark: a 300-slice 512² CT series folder to napari layer data.

Run as ``.venv/bin/python benchmarks/bench_radiology.py``. It writes a
synthetic series (uncompressed, file names in reverse slice order, like NBIA
downloads) to a temporary folder and measures, in the same run and on the same
files, each in a fresh process with a warm page cache:

* napari-nsclc ``read_dicom(folder, lazy=False)`` + ``case_to_layers``: the
  whole volume in HU, sorted and scaled, ready for ``viewer.add_image``;
* napari-nsclc default (lazy, one dask chunk per slice) to layer data, then to
  the first displayed slice, then to the whole volume;
* a bare loop of ``pydicom.dcmread(f).pixel_array`` over the files (no sorting,
  no rescaling, no stacking);
* SimpleITK ``ImageSeriesReader`` (GDCM series file names + Execute + array view).

Peak resident memory is the growth of the process's peak RSS over its RSS after
imports, compared with the volume's size (int16, 150 MiB).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import markdown_table, run_isolated, write_section  # noqa: E402

SLICES, SIZE, ROUNDS = 300, 512, 5


def write_series(folder: Path) -> int:
    """Write the synthetic series; returns the volume size in bytes (int16)."""
    from napari_nsclc.testing.radiology import ct_phantom, write_ct_series

    base = ct_phantom((1, SIZE, SIZE))[0]
    rng = np.random.default_rng(300)
    volume = np.empty((SLICES, SIZE, SIZE), np.int16)
    for k in range(SLICES):
        volume[k] = np.clip(base + rng.integers(-20, 21, base.shape), -1024, 3071)
    write_ct_series(folder, volume, spacing=(1.0, 0.7, 0.7), name_order=list(range(SLICES))[::-1],
                    description="benchmark 300x512x512")
    return volume.nbytes


# Each snippet defines run(folder); it is timed in ROUNDS interleaved rounds and measured for
# peak RSS growth in a separate fresh process.
SNIPPETS = {
    "napari-nsclc, eager": """
from napari_nsclc.formats.dicom import read_dicom
from napari_nsclc.layers import case_to_layers
import numpy as np
def run(folder):
    case = read_dicom(folder, lazy=False)[0]
    layers = case_to_layers(case)
    assert layers[0][0].shape == (300, 512, 512)
    return layers
""",
    "napari-nsclc, lazy (dask) to layer data": """
from napari_nsclc.formats.dicom import read_dicom
from napari_nsclc.layers import case_to_layers
def run(folder):
    return case_to_layers(read_dicom(folder)[0])
""",
    "napari-nsclc, lazy to first shown slice": """
from napari_nsclc.formats.dicom import read_dicom
from napari_nsclc.layers import case_to_layers
import numpy as np
def run(folder):
    layers = case_to_layers(read_dicom(folder)[0])
    return np.asarray(layers[0][0][150])
""",
    "napari-nsclc, lazy to whole volume": """
from napari_nsclc.formats.dicom import read_dicom
import numpy as np
def run(folder):
    return np.asarray(read_dicom(folder)[0].image.data)
""",
    "bare pydicom loop (dcmread + pixel_array)": """
import pydicom, os
def run(folder):
    return [pydicom.dcmread(os.path.join(folder, name)).pixel_array for name in sorted(os.listdir(folder))]
""",
    "SimpleITK ImageSeriesReader": """
import SimpleITK as sitk
def run(folder):
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    image = reader.Execute()
    return image, sitk.GetArrayViewFromImage(image)
""",
}

TIMING = """
import json, time
{snippet}
folder = {folder!r}
run(folder)
times = []
for _ in range(2):
    start = time.perf_counter(); result = run(folder); times.append(time.perf_counter() - start); del result
print(json.dumps(min(times)))
"""

MEMORY = """
import json, psutil
{snippet}
folder = {folder!r}
import pydicom, numpy  # libraries loaded before the baseline
before = psutil.Process().memory_info().rss
with open("/proc/self/clear_refs", "w") as handle:  # reset the peak-RSS mark (VmHWM) to the current RSS
    handle.write("5")
result = run(folder)
peak = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({{"growth": peak - before, "peak": peak}}))
"""


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-radiology-") as tmp:
        folder = Path(tmp) / "series"
        start = time.perf_counter()
        volume_bytes = write_series(folder)
        print(f"wrote {SLICES} slices in {time.perf_counter() - start:.1f} s")
        # Rounds interleave the readers so that load from other jobs hits them alike.
        rounds: dict[str, list[float]] = {name: [] for name in SNIPPETS}
        for round_index in range(ROUNDS):
            for name, snippet in SNIPPETS.items():
                rounds[name].append(json.loads(run_isolated(TIMING.format(snippet=snippet, folder=str(folder)))))
            print(f"round {round_index + 1}: " + ", ".join(f"{n[:24]} {t[-1]:.3f}" for n, t in rounds.items()))
        results = {}
        for name, snippet in SNIPPETS.items():
            memory = json.loads(run_isolated(MEMORY.format(snippet=snippet, folder=str(folder))))
            results[name] = {"times": rounds[name], "best": min(rounds[name]),
                             "median": float(np.median(rounds[name])), **memory}
            print(name, {k: v for k, v in results[name].items() if k != "times"})
    write_report(results, volume_bytes)


def write_report(results: dict, volume_bytes: int) -> None:
    bare_times = np.array(results["bare pydicom loop (dcmread + pixel_array)"]["times"])
    sitk_times = np.array(results["SimpleITK ImageSeriesReader"]["times"])
    rows = []
    for name, r in results.items():
        times = np.array(r["times"])
        r["vs_bare"] = float(np.median(times / bare_times))
        r["vs_sitk"] = float(np.median(times / sitk_times))
        rows.append([
            name,
            f"{r['best']:.3f}",
            f"{r['median']:.3f}",
            f"{r['vs_bare']:.2f}",
            f"{r['vs_sitk']:.2f}",
            f"{r['growth'] / 2**20:.0f}",
            f"{r['growth'] / volume_bytes:.2f}",
        ])
    eager = results["napari-nsclc, eager"]
    verdict = [
        f"- Series folder → napari layer data (eager, whole volume in HU): median {eager['median']:.2f} s "
        f"(target ≤ 1.5 s: {'met' if eager['median'] <= 1.5 else 'NOT met'}); "
        f"{eager['vs_bare']:.2f}× the bare pydicom loop (target ≤ 1.5×: "
        f"{'met' if eager['vs_bare'] <= 1.5 else 'NOT met'}); "
        f"{1 / eager['vs_sitk']:.1f}× as fast as SimpleITK (target: faster: "
        f"{'met' if eager['vs_sitk'] < 1 else 'NOT met'}).",
        f"- Peak memory growth while reading (eager): {eager['growth'] / 2**20:.0f} MiB = "
        f"{eager['growth'] / volume_bytes:.2f}× the {volume_bytes / 2**20:.0f} MiB volume "
        f"(target ≤ 1.3×: {'met' if eager['growth'] <= 1.3 * volume_bytes else 'NOT met'}).",
    ]
    body = (
        f"A synthetic {SLICES}-slice {SIZE}×{SIZE} CT series (uncompressed, 16-bit, file names in reverse slice "
        f"order), written by `napari_nsclc.testing.radiology.write_ct_series`. Each time is measured in a fresh "
        f"process with a warm page cache (the best of 2 runs after a warm-up), in {ROUNDS} rounds that interleave "
        "the readers; the table gives the best and the median round, and the ratios are medians of per-round "
        "ratios. Memory: growth of the peak RSS (VmHWM, reset after imports) over the RSS after imports, in a "
        "separate fresh process. The machine's 2 cores were shared with "
        "other jobs, so times carry some noise.\n\n"
        + markdown_table(["reader", "best (s)", "median (s)", "× bare pydicom", "× SimpleITK",
                          "peak RSS growth (MiB)", "× volume size"], rows)
        + "\n\n" + "\n".join(verdict)
        + "\n\nThe eager reader reads each header once and then the pixel bytes of uncompressed slices straight "
        "from their offset in the file; compressed slices go through pydicom's decoders. The lazy path (the "
        "default above 128 MiB) returns at once and reads a slice when napari shows it; computing the whole "
        "dask volume at once costs an extra copy (dask concatenates the slices), which napari never does."
    )
    path = write_section("radiology", "Radiology: DICOM series to napari layer (issue 6)", body)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
