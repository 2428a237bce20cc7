"""The model, formats and datasets are plain Python: no napari, no Qt."""

from __future__ import annotations

import importlib.util
import json
import pkgutil
import subprocess
import sys

import napari_nsclc.datasets
import napari_nsclc.formats
import napari_nsclc.nuclei

HEADLESS_MODULES = [
    "napari_nsclc.model",
    "napari_nsclc.registry",
    "napari_nsclc._atomic",
    "napari_nsclc.imageio",
    "napari_nsclc.cli",
    "napari_nsclc.demo",
    "napari_nsclc.testing",
    "napari_nsclc.workflow.changes",
    "napari_nsclc.mask_tools",
    "napari_nsclc.workflow",
    "napari_nsclc.workflow.workspace",
    "napari_nsclc.workflow.corrections",
    "napari_nsclc.workflow.files",
    "napari_nsclc.workflow.identity",
    "napari_nsclc.workflow.history",
    "napari_nsclc.review",
    "napari_nsclc.review.states",
    "napari_nsclc.review.schema",
    "napari_nsclc.review.records",
    "napari_nsclc.review.engine",
    "napari_nsclc.review.store",
    "napari_nsclc.review.matching",
    "napari_nsclc.review.metrics",
    "napari_nsclc.review.multirater",
    "napari_nsclc.review.session",
    "napari_nsclc.review.report",
    "napari_nsclc.review.report_plots",
    "napari_nsclc.batch",
    "napari_nsclc.batch.validate",
    "napari_nsclc.batch.engine",
    "napari_nsclc.batch.progress",
    "napari_nsclc.batch.manifest",
    "napari_nsclc.batch.convert",
    "napari_nsclc.batch.convert_cases",
    "napari_nsclc.batch.stats",
    "napari_nsclc.batch.stats_tables",
    "napari_nsclc.batch.stats_report",
    "napari_nsclc.batch.stats_plots",
    "napari_nsclc.label_pyramid",
    "napari_nsclc.label_pyramid.store",
    "napari_nsclc.label_pyramid.downsample",
    "napari_nsclc.label_pyramid.journal",
    "napari_nsclc.label_pyramid.pyramid",
    "napari_nsclc.label_pyramid.editing",
    "napari_nsclc.label_pyramid.raster",
    "napari_nsclc.label_pyramid.tiling",
    "napari_nsclc.label_pyramid.export",
    "napari_nsclc.label_pyramid.sources",
    "napari_nsclc.formats._coco_parts",
    "napari_nsclc.nuclei",
    *[f"napari_nsclc.nuclei.{m.name}" for m in pkgutil.iter_modules(napari_nsclc.nuclei.__path__)],
    "napari_nsclc.layers",
    *[f"napari_nsclc.formats.{m.name}" for m in pkgutil.iter_modules(napari_nsclc.formats.__path__)],
    *[f"napari_nsclc.datasets.{m.name}" for m in pkgutil.iter_modules(napari_nsclc.datasets.__path__)],
    *[f"napari_nsclc.{name}" for name in ("geometry", "rle") if importlib.util.find_spec(f"napari_nsclc.{name}")],
]

GUI_PREFIXES = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "vispy", "magicgui")


def test_model_formats_and_datasets_load_no_gui_module():
    code = (
        "import importlib, json, sys\n"
        f"for name in {HEADLESS_MODULES!r}: importlib.import_module(name)\n"
        "from napari_nsclc import registry, testing\n"
        "registry.all_formats(); testing.all_builders()\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)
    gui = [m for m in loaded if m.split(".")[0] in GUI_PREFIXES and not m.startswith("napari_nsclc")]
    assert gui == []
    # the check is only meaningful if the modules really were imported
    assert set(HEADLESS_MODULES) <= set(loaded)
    assert len(HEADLESS_MODULES) > 5
