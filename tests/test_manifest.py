"""napari finds the plugin, and every contribution points at real code."""

from __future__ import annotations

import importlib
import importlib.resources
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def test_npe2_validates_the_installed_manifest():
    result = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", "napari-nsclc"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in result.stdout


def test_packaged_manifest_is_the_repository_manifest():
    packaged = importlib.resources.files("napari_nsclc").joinpath("napari.yaml").read_text()
    assert packaged == (REPO / "napari.yaml").read_text()


def test_every_command_imports_and_every_kind_is_contributed():
    manifest = yaml.safe_load((REPO / "napari.yaml").read_text())
    contributions = manifest["contributions"]
    for command in contributions["commands"]:
        module_name, _, attribute = command["python_name"].partition(":")
        assert callable(getattr(importlib.import_module(module_name), attribute)), command["id"]
    for kind in ("readers", "writers", "widgets", "sample_data"):
        assert contributions[kind], kind
    ids = {c["id"] for c in contributions["commands"]}
    for kind in ("readers", "writers", "widgets", "sample_data"):
        for entry in contributions[kind]:
            assert entry["command"] in ids


def test_napari_discovers_the_plugin():
    from npe2 import PluginManager

    manager = PluginManager.instance()
    manager.discover()
    manifest = manager.get_manifest("napari-nsclc")
    assert manifest.display_name == "NSCLC annotation"
    assert len(manifest.contributions.writers) >= 5
