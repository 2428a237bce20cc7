"""Shared plumbing for the benchmark scripts: machine description and report sections.

Each script owns one section of ``docs/benchmarks.md``, delimited by
``<!-- bench:NAME -->`` markers, so scripts can be re-run independently.
"""

from __future__ import annotations

import os
import platform
import re
import resource
import subprocess
import sys
from importlib import metadata
from pathlib import Path

REPORT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
HEADER = """# Benchmarks

Every number here was measured by a script in `benchmarks/`; re-run a script to
refresh its section. Ratios compare tools measured side by side in the same run,
on the same files. Each section names the machine it ran on.
"""


def machine_description() -> str:
    """One paragraph: CPU, cores, memory, OS, Python and key package versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = []
    for package in ("napari", "numpy", "dask", "zarr", "tifffile", "pydicom", "openslide-python",
                    "openslide-bin", "tiffslide", "pycocotools", "SimpleITK"):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            pass
    return (
        f"Machine: {cpu}, {os.cpu_count()} cores, {memory_gib:.0f} GiB RAM, no GPU; "
        f"{platform.system()} {platform.release()}; Python {sys.version.split()[0]}; "
        + ", ".join(versions)
        + "."
    )


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_isolated(code: str) -> str:
    """Run ``code`` in a fresh Python process (clean memory accounting); return its stdout."""
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(name: str, title: str, body: str) -> Path:
    """Replace (or append) section ``name`` of docs/benchmarks.md, atomically."""
    text = REPORT.read_text() if REPORT.exists() else HEADER
    section = f"<!-- bench:{name} -->\n## {title}\n\n{machine_description()}\n\n{body.strip()}\n<!-- /bench:{name} -->"
    pattern = re.compile(rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
    tmp = REPORT.with_suffix(".md.tmp")
    tmp.write_text(text)
    os.replace(tmp, REPORT)
    return REPORT
