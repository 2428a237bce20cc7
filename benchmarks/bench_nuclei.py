"""Slide-scale nuclei: napari-nsclc's nuclei path against bare napari ``add_shapes``, same run, same files.

For each size N (default 100k and 1M) a synthetic QuPath GeoJSON is generated
(12-vertex polygons, radius 4-9 px, uniformly placed on a square slide of
side sqrt(N) * 40 px, classes Tumor / Immune cells / Stroma in turn, each
feature with a uuid, ``objectType`` and ``isLocked`` as QuPath writes them).
Each measurement then runs in a fresh process (this script with a hidden
``--child MODE PATH``), so its peak resident memory (``ru_maxrss``) is its own:

* **nsclc open**: ``napari.Viewer(show=True)``, then the time from before
  ``viewer.open(path, plugin="napari-nsclc")`` (the plugin's first import
  included) until the outlines are drawn: Qt events processed and the canvas
  repainted synchronously, again while a paint made napari load another level;
* **bare napari**: the same viewer; the time from before ``json.load`` of the
  file, through building the ``(N, 2)`` (y, x) arrays, to
  ``viewer.add_shapes(..., shape_type="polygon", edge_color=<per-feature
  colours>, face_color="transparent")`` drawn the same way. napari
  triangulates with ``bermuda`` when it is installed (its fastest backend);
  the backend used is reported;
* **frame time** (in the nsclc process, after the open): fit to view, then
  40 pans of 1/10 of the view at three zooms (whole slide, 1/8 of the slide,
  1:1 pixels) and 10 zoom steps x1.5 in then out, each timed from the camera
  change until drawn;
* **reclassify / undo** (same process): 10,000 random nuclei not yet
  Stroma, ``reclassify("Stroma", indices)`` + layer refresh + drawn, then
  ``undo()`` + refresh + drawn, with the whole slide in view;
* **read / write** (a headless process): ``nuclei.geojson.read`` timed (its
  peak memory too), 10k reclassified, ``nuclei.geojson.write`` timed.

Peak memory is each process's high-water mark (``VmHWM``, which equals
``ru_maxrss`` here: the files are generated in a child as well, so this
process stays small, and Linux starts a child's ``ru_maxrss`` at its parent's
peak). napari-nsclc parses files of 50k+ features partly in worker processes,
whose peaks are sampled from /proc and reported apart. napari-nsclc's sources
are checked before and after the run: a report says if they changed meanwhile.
A child is stopped when it runs past ``--timeout`` or its resident memory
passes ``--max-mb`` (default: 80 % of the memory available at the start).

Run: ``xvfb-run -a .venv/bin/python benchmarks/bench_nuclei.py [--sizes 100000 1000000] [--out FILE]``.
Prints a Markdown report (and writes it to ``--out``); docs/benchmarks.md is not touched.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine_description, markdown_table  # noqa: E402

RECLASSIFY = 10_000
WINDOW = (1200, 900)
RESULT = "BENCH-RESULT "
STARTED = "BENCH-STARTED "


def started() -> float:
    """Tell the parent (which may have to stop this process) when the timed part begins; returns its start."""
    print(f"{STARTED}{time.time()}", flush=True)
    return time.perf_counter()


def peak_mb() -> float:
    """Peak resident memory (MB) of this process so far: ``VmHWM``, the high-water mark of its own memory map.

    ``ru_maxrss`` would be the same here, but Linux starts a spawned process's ``ru_maxrss`` at its parent's
    high-water mark (kept through ``exec``), so it overstates a child of a big process; ``VmHWM`` does not.
    """
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("VmHWM")) / 1024


def ru_maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------- the children


def _viewer():
    """A shown viewer of a fixed size, painted once; returns (viewer, app, canvas)."""
    import napari
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(*WINDOW)
    app = QApplication.instance()
    canvas = viewer.window._qt_viewer.canvas.native
    app.processEvents()
    canvas.repaint()
    return viewer, app, canvas


class Painter:
    """Draws the canvas until what it shows is current: events processed, a synchronous repaint, and again
    while that paint made napari slice new data (a multiscale layer loads its level on draw)."""

    def __init__(self, app, canvas):
        self.app, self.canvas, self.slices, self.paints = app, canvas, 0, 0

    def watch(self, layer) -> None:
        layer.events.set_data.connect(self._sliced)

    def _sliced(self, _event=None) -> None:
        self.slices += 1

    def draw(self) -> int:
        """Returns the number of paints it took."""
        for paints in range(1, 9):
            self.app.processEvents()
            before = self.slices
            self.canvas.repaint()
            self.paints += 1
            if self.slices == before:
                return paints
        return paints


def child_nsclc(path: str, count: int) -> dict:
    """Open with napari-nsclc, then frame times, then reclassify / undo: one process."""
    import numpy as np

    viewer, app, canvas = _viewer()
    painter = Painter(app, canvas)
    out: dict = {"preloaded": "napari_nsclc" in sys.modules, "viewer peak (MB)": peak_mb()}
    start = started()
    layers = viewer.open(path, plugin="napari-nsclc")
    out["open returned (s)"] = time.perf_counter() - start
    layer = layers[-1]
    painter.watch(layer)
    out["open paints"] = painter.draw()
    out["open (s)"] = time.perf_counter() - start
    out["open peak (MB)"] = peak_mb()
    nuclei = layer.metadata["nsclc"]["nuclei"]
    out["layers"] = [f"{type(each).__name__} {each.name!r} multiscale={getattr(each, 'multiscale', None)}"
                     for each in layers]
    out["nuclei"] = len(nuclei)
    if len(layers) != 1 or type(layer).__name__ != "Labels" or not layer.multiscale or len(nuclei) != count:
        raise RuntimeError(f"expected one multiscale Labels layer of {count} nuclei, got {out['layers']}")
    out["canvas"] = [canvas.size().width(), canvas.size().height()]
    out["levels"] = len(layer.data)
    out["frames (ms)"] = frame_times(viewer, painter, out["canvas"])
    rng = np.random.default_rng(7)
    stroma = next(c.code for c in nuclei.schema.classes if c.name == "Stroma")
    candidates = np.flatnonzero(nuclei.codes != stroma)
    indices = rng.choice(candidates, min(RECLASSIFY, len(candidates)), replace=False)
    viewer.reset_view()
    painter.draw()
    start = time.perf_counter()
    changed = nuclei.reclassify("Stroma", indices)
    layer.refresh()
    painter.draw()
    out["reclassify (ms)"] = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    undone = nuclei.undo()
    layer.refresh()
    painter.draw()
    out["undo (ms)"] = (time.perf_counter() - start) * 1000
    out["reclassified"], out["undone"] = len(changed), len(undone)
    if len(changed) != len(indices) or len(undone) != len(indices) or (nuclei.codes[indices] == stroma).any():
        raise RuntimeError(f"reclassify changed {len(changed)}, undo {len(undone)}")
    out["end peak (MB)"], out["ru_maxrss (MB)"] = peak_mb(), ru_maxrss_mb()
    viewer.close()
    return out


def frame_times(viewer, painter: Painter, canvas_size) -> dict:
    """Time scripted pans and zooms, each from the camera change until drawn.

    Returns ``{"times": {phase: [ms, ...]}, "loads": {phase: steps whose paint made napari load data}}``.
    """
    camera = viewer.camera
    viewer.reset_view()
    painter.draw()
    whole = camera.zoom
    middle = tuple(camera.center)
    times: dict = {}
    loads: dict = {}

    def move(phase: str | None, center=None, zoom=None) -> None:
        slices = painter.slices
        start = time.perf_counter()
        if zoom is not None:
            camera.zoom = zoom
        if center is not None:
            camera.center = center
        painter.draw()
        elapsed = (time.perf_counter() - start) * 1000
        if phase is not None:
            times.setdefault(phase, []).append(elapsed)
            loads[phase] = loads.get(phase, 0) + (painter.slices > slices)

    width = canvas_size[0]
    for phase, zoom in (("pan, whole slide", whole), ("pan, 1/8 of the slide", whole * 8), ("pan, 1:1 pixels", 1.0)):
        move(None, middle, zoom)  # untimed: get there
        step = width / zoom / 10  # world units in 1/10 of the view
        y, x = middle[-2], middle[-1]
        for dy, dx in [(0, 1)] * 10 + [(1, 0)] * 10 + [(0, -1)] * 10 + [(-1, 0)] * 10:
            y, x = y + dy * step, x + dx * step
            move(phase, (*middle[:-2], y, x))
    move(None, middle, whole)
    zoom = whole
    for factor in [1.5] * 10 + [1 / 1.5] * 10:
        zoom *= factor
        move("zoom x1.5 in then out", zoom=zoom)
    return {"times": times, "loads": loads}


def child_bare(path: str, count: int) -> dict:
    """Bare napari: json.load, (N, 2) arrays, add_shapes, drawn."""
    import importlib.util

    import numpy as np

    out: dict = {"bermuda importable": importlib.util.find_spec("bermuda") is not None}
    viewer, app, canvas = _viewer()
    if out["bermuda importable"]:
        from napari.settings import get_settings

        settings = get_settings().experimental
        if hasattr(settings, "triangulation_backend"):  # napari >= 0.6 (compiled_triangulation is unused there)
            settings.triangulation_backend = "bermuda"
        else:
            settings.compiled_triangulation = True
    painter = Painter(app, canvas)
    out["viewer peak (MB)"] = peak_mb()

    def polygons_and_colours():
        with open(path) as handle:
            document = json.load(handle)
        polygons = [np.array(f["geometry"]["coordinates"][0], float)[:-1, ::-1] for f in document["features"]]
        colours = [[c / 255 for c in f["properties"]["classification"]["color"]] for f in document["features"]]
        return polygons, colours

    start = started()
    polygons, colours = polygons_and_colours()
    out["json + arrays (s)"] = time.perf_counter() - start
    out["after json peak (MB)"] = peak_mb()
    layer = viewer.add_shapes(polygons, shape_type="polygon", edge_color=colours, face_color="transparent")
    out["add_shapes returned (s)"] = time.perf_counter() - start
    painter.watch(layer)
    out["paints"] = painter.draw()
    out["open (s)"] = time.perf_counter() - start
    out["open peak (MB)"], out["ru_maxrss (MB)"] = peak_mb(), ru_maxrss_mb()
    out["shapes"] = len(layer.data)
    out["triangulation"] = type(layer._data_view.shapes[0])._set_meshes.__name__
    if len(layer.data) != count:
        raise RuntimeError(f"{len(layer.data)} shapes of {count}")
    viewer.close()
    return out


def child_write(path: str, count: int) -> dict:
    """Headless: read (timed, with its peak memory), reclassify 10k, write (timed)."""
    import numpy as np

    from napari_nsclc.nuclei import geojson

    out: dict = {"imports peak (MB)": peak_mb()}
    start = started()
    nuclei = geojson.read(path)
    out["read (s)"] = time.perf_counter() - start
    out["read peak (MB)"] = peak_mb()
    if len(nuclei) != count:
        raise RuntimeError(f"read {len(nuclei)} nuclei of {count}")
    stroma = next(c.code for c in nuclei.schema.classes if c.name == "Stroma")
    candidates = np.flatnonzero(nuclei.codes != stroma)
    indices = np.random.default_rng(7).choice(candidates, min(RECLASSIFY, len(candidates)), replace=False)
    out["reclassified"] = len(nuclei.reclassify("Stroma", indices))
    target = Path(path).with_name(Path(path).stem + "_edited.geojson")
    start = time.perf_counter()
    geojson.write(nuclei, target)
    out["write (s)"] = time.perf_counter() - start
    out["write peak (MB)"], out["ru_maxrss (MB)"] = peak_mb(), ru_maxrss_mb()
    out["written (MB)"] = target.stat().st_size / 1e6
    out["features written"] = geojson.count_features(target)
    target.unlink()
    if out["features written"] != count:
        raise RuntimeError(f"wrote {out['features written']} features of {count}")
    return out


def child_generate(path: str, count: int) -> dict:
    start = time.perf_counter()
    from napari_nsclc.testing.nuclei import build_nuclei_geojson

    build_nuclei_geojson(Path(path), count)
    return {"s": time.perf_counter() - start, "MB": Path(path).stat().st_size / 1e6}


CHILDREN = {"nsclc": child_nsclc, "bare": child_bare, "write": child_write, "generate": child_generate}


# --------------------------------------------------------------------------- the parent


def _memory_mb(pid: int) -> tuple[float, float]:
    """``(VmRSS, VmHWM)`` of a process in MB; zeros once it is gone."""
    found = {}
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(("VmRSS", "VmHWM")):
                    found[line[:5]] = int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return found.get("VmRSS", 0.0), found.get("VmHWM", 0.0)


def _is_worker(pid: int) -> bool:
    """Whether ``pid`` is one of napari-nsclc's parse workers (other children, forked from a big process for a
    moment before they run something else, would show that process's memory)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return b"napari_nsclc.nuclei._workers" in handle.read()
    except OSError:
        return False


def _group(pid: int) -> list[int]:
    """The processes of ``pid``'s process group (the child and its parse workers)."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pid:
                    members.append(int(entry))
            except OSError:
                pass
    return members


def run_child(mode: str, path: Path, count: int, timeout: float, max_mb: float, env: dict) -> dict:
    """Run one measurement in a fresh process group; stop it (by its group id) past ``timeout`` or ``max_mb``."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", mode, str(path), str(count)]
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        child = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env, start_new_session=True)
        start, seen_mb, stopped, workers = time.monotonic(), 0.0, None, {}
        while child.poll() is None:
            time.sleep(0.1)
            total = 0.0
            for pid in _group(child.pid):
                total += _memory_mb(pid)[0]
                if pid != child.pid and _is_worker(pid):  # sampled: a peak in a worker's last 0.1 s is missed
                    workers[pid] = max(workers.get(pid, 0.0), _memory_mb(pid)[1])
            seen_mb = max(seen_mb, total)
            if time.monotonic() - start > timeout:
                stopped = f"did not finish in {timeout:.0f} s"
            elif seen_mb > max_mb:
                stopped = f"stopped at {seen_mb:,.0f} MB (memory limit {max_mb:,.0f} MB)"
            if stopped:
                try:
                    os.killpg(child.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                child.wait()
                break
        stdout.seek(0)
        stderr.seek(0)
        printed = stdout.read().splitlines()
        lines = [line for line in printed if line.startswith(RESULT)]
        begun = [float(line[len(STARTED):]) for line in printed if line.startswith(STARTED)]
        errors = stderr.read().strip().splitlines()
    if stopped:  # how long the timed part ran, at least
        return {"failed": stopped, "timed (s)": time.time() - begun[-1] if begun else None, "seen (MB)": seen_mb}
    if child.returncode != 0 or not lines:
        reason = f"killed by signal {-child.returncode}" if child.returncode < 0 else f"exit {child.returncode}"
        print(f"[{mode} {count:,}] failed ({reason}):\n  " + "\n  ".join(errors[-15:]), file=sys.stderr)
        return {"failed": f"failed ({reason})", "error": errors[-1] if errors else "no message", "seen (MB)": seen_mb}
    result = json.loads(lines[-1][len(RESULT):])
    result["wall (s)"] = time.monotonic() - start
    result["seen (MB)"] = seen_mb
    result["workers peak (MB)"] = max(workers.values(), default=0.0)
    result["workers"] = len(workers)
    return result


def _stats(times: list[float]) -> tuple[float, float, float]:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
    return statistics.median(ordered), p95, ordered[-1]


def _failed(result: dict) -> str | None:
    return result.get("failed")


def _workers(result: dict) -> str:
    count, peak = result.get("workers", 0), result.get("workers peak (MB)", 0.0)
    if not count:
        return ""
    return f" + 1 worker {peak:,.0f}" if count == 1 else f" + {count} workers <= {peak:,.0f} each"


def code_state() -> dict[str, int]:
    """Modification times of napari-nsclc's Python files (other people may be editing them during a run)."""
    package = Path(__file__).resolve().parents[1] / "napari_nsclc"
    return {str(p.relative_to(package.parent)): p.stat().st_mtime_ns for p in sorted(package.rglob("*.py"))}


def report(sizes: list[int], results: dict, files: dict, timeout: float, max_mb: float, changed: list[str]) -> str:
    header = ["nuclei", "nsclc open (s)", "bare napari (s)", "bare / nsclc", "nsclc peak RSS (MB)",
              "bare peak RSS (MB)", "frame median / p95 / max (ms)", "reclassify 10k / undo (ms)",
              "write GeoJSON (s)", "headless read (s, peak MB)"]
    rows, notes, canvas = [], [], None
    for count in sizes:
        nsclc, bare, write = results[count]["nsclc"], results[count]["bare"], results[count]["write"]
        row = [f"{count:,}", _failed(nsclc) or f"{nsclc['open (s)']:.1f}", _failed(bare) or f"{bare['open (s)']:.1f}"]
        if _failed(nsclc):
            row.append("-")
        elif _failed(bare):
            timed = bare.get("timed (s)")
            row.append(f"> {timed / nsclc['open (s)']:.0f}x" if timed else "-")
        else:
            row.append(f"{bare['open (s)'] / nsclc['open (s)']:.1f}x")
        row.append("-" if _failed(nsclc) else f"{nsclc['open peak (MB)']:,.0f}{_workers(nsclc)}")
        if not _failed(bare):
            row.append(f"{bare['open peak (MB)']:,.0f}")
        else:  # "timed (s)" is there when the process was stopped
            row.append(f"> {bare['seen (MB)']:,.0f} when stopped" if "timed (s)" in bare else "-")
        if _failed(nsclc):
            row += ["-", "-"]
        else:
            canvas = nsclc["canvas"]
            every = [t for times in nsclc["frames (ms)"]["times"].values() for t in times]
            row.append("{:.0f} / {:.0f} / {:.0f}".format(*_stats(every)))
            edited = "" if nsclc["reclassified"] == RECLASSIFY else f" ({nsclc['reclassified']:,} nuclei)"
            row.append(f"{nsclc['reclassify (ms)']:.0f} / {nsclc['undo (ms)']:.0f}{edited}")
        if _failed(write):
            row += [_failed(write), "-"]
        else:
            row.append(f"{write['write (s)']:.2f}")
            row.append(f"{write['read (s)']:.1f} ({write['read peak (MB)']:,.0f}{_workers(write)})")
        rows.append(row)
        notes.append(details(count, nsclc, bare, write, files[count]))
    load = os.getloadavg()
    warning = ("\n**Warning**: napari-nsclc files changed during this run, so the rows may measure different "
               "versions: " + ", ".join(f"`{name}`" for name in changed) + ".\n") if changed else ""
    where = f"canvas {canvas[0]} x {canvas[1]} px" if canvas else f"window {WINDOW[0]} x {WINDOW[1]}"
    return f"""## Slide-scale nuclei: napari-nsclc against bare napari `add_shapes`

{machine_description()}

Synthetic QuPath GeoJSON (12-vertex polygons, radius 4-9 px, uniform on a square slide of side sqrt(N) x 40 px,
three classes in turn); every measurement in a fresh process, under Xvfb (Mesa software OpenGL), {where}.
"Open" = from before `viewer.open(path, plugin="napari-nsclc")` (plugin import included), or before `json.load`
for bare napari, until the canvas is drawn (Qt events processed, synchronous repaint, repeated while a paint made
napari load data). Peak RSS is the measuring process's high-water mark (`VmHWM`; its `ru_maxrss` agrees, this
script's own process staying at {ru_maxrss_mb():,.0f} MB); napari-nsclc parses files of 50k+ features partly in
worker processes, whose own peak (`VmHWM`, sampled every 0.1 s) is given apart. Frame time: 40 pans of 1/10 of
the view at each of 3 zooms (whole slide, 1/8 of it, 1:1) and 10 zoom steps x1.5 in then out, each from the
camera change until drawn.
Reclassify: 10,000 random non-Stroma nuclei to Stroma, + layer refresh + drawn, whole slide in view; then undo.
Write: `nuclei.geojson.write` after that edit (untouched features copied byte for byte). Limits per process:
{timeout:.0f} s, {max_mb:,.0f} MB resident. Load average at the end: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}
(2 cores; other jobs share the machine).

{markdown_table(header, rows)}

{chr(10).join(notes)}{warning}"""


def details(count: int, nsclc: dict, bare: dict, write: dict, file: dict) -> str:
    lines = [f"**{count:,} nuclei** ({file['MB']:,.0f} MB GeoJSON, generated in {file['s']:.1f} s):"]
    if not _failed(nsclc):
        lines.append(f"- nsclc: `viewer.open` returned after {nsclc['open returned (s)']:.2f} s, drawn at "
                     f"{nsclc['open (s)']:.2f} s ({nsclc['open paints']} paint(s)); {nsclc['levels']} levels; "
                     f"viewer alone {nsclc['viewer peak (MB)']:,.0f} MB; peak at the end of the session "
                     f"{nsclc['end peak (MB)']:,.0f} MB; plugin imported before the open: {nsclc['preloaded']}.")
        frames = nsclc["frames (ms)"]
        phases = "; ".join("{}: {:.0f} / {:.0f} / {:.0f} ({} of {} steps loaded data)".format(
            name, *_stats(times), frames["loads"][name], len(times)) for name, times in frames["times"].items())
        lines.append(f"- frame median / p95 / max (ms) by phase: {phases}.")
    else:
        lines.append(f"- nsclc: {_failed(nsclc)}{': ' + nsclc['error'] if 'error' in nsclc else ''}.")
    if not _failed(bare):
        lines.append(f"- bare napari: json.load + arrays {bare['json + arrays (s)']:.1f} s (peak "
                     f"{bare['after json peak (MB)']:,.0f} MB), `add_shapes` returned at "
                     f"{bare['add_shapes returned (s)']:.1f} s, drawn at {bare['open (s)']:.1f} s; bermuda "
                     f"importable: {bare['bermuda importable']}, triangulation used: `{bare['triangulation']}`.")
    else:
        timed = f" (stopped {bare['timed (s)']:.0f} s after `json.load` began)" if bare.get("timed (s)") else ""
        seen = f"; resident memory seen up to {bare['seen (MB)']:,.0f} MB" if "seen (MB)" in bare else ""
        lines.append(f"- bare napari: {_failed(bare)}{timed}{': ' + bare['error'] if 'error' in bare else ''}{seen}.")
    if not _failed(write):
        lines.append(f"- headless: read {write['read (s)']:.2f} s (peak {write['read peak (MB)']:,.0f} MB"
                     f"{_workers(write)}); write {write['write (s)']:.2f} s, {write['written (MB)']:,.0f} MB.")
    else:
        lines.append(f"- headless: {_failed(write)}{': ' + write['error'] if 'error' in write else ''}.")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--out", type=Path, help="also write the Markdown report here")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per measurement process")
    parser.add_argument("--max-mb", type=float, help="resident memory per measurement process (default: 80%% of "
                        "the memory available at the start)")
    parser.add_argument("--modes", nargs="+", choices=["bare", "nsclc", "write"], default=["nsclc", "bare", "write"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--child", nargs=3, metavar=("MODE", "PATH", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        mode, path, count = args.child
        result = CHILDREN[mode](path, int(count))
        print(RESULT + json.dumps(result), flush=True)
        return 0
    if args.max_mb is None:
        with open("/proc/meminfo") as handle:
            available = next(int(line.split()[1]) for line in handle if line.startswith("MemAvailable"))
        args.max_mb = 0.8 * available / 1024
    results, files, before = {}, {}, code_state()
    with tempfile.TemporaryDirectory(prefix="bench-nuclei-", dir=os.environ.get("NSCLC_BENCH_DIR")) as scratch:
        env = {**os.environ, "NAPARI_CONFIG": str(Path(scratch) / "napari-settings.yaml")}  # default settings
        for count in args.sizes:
            path = Path(scratch) / f"nuclei_{count}.geojson"
            # in a child too: this process stays small (a spawned child's ru_maxrss starts at its parent's peak)
            files[count] = run_child("generate", path, count, args.timeout, args.max_mb, env)
            if _failed(files[count]):
                raise SystemExit(f"could not generate {count:,} nuclei: {files[count]}")
            print(f"{count:,} nuclei: {files[count]['MB']:,.0f} MB written in {files[count]['s']:.1f} s", flush=True)
            results[count] = {}
            for mode in ("nsclc", "bare", "write"):
                if mode not in args.modes:
                    results[count][mode] = {"failed": "not run"}
                    continue
                result = run_child(mode, path, count, args.timeout, args.max_mb, env)
                results[count][mode] = result
                shown = {k: v for k, v in result.items() if k != "frames (ms)"}
                print(f"  {mode}: {json.dumps(shown)}", flush=True)
            path.unlink()
    after = code_state()
    changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    text = report(args.sizes, results, files, args.timeout, args.max_mb, changed)
    print(text)
    if args.out:
        args.out.write_text(text)
        print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
