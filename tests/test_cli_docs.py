"""docs/cli.md shows every command's --help as the parser prints it, and each command has examples."""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from napari_nsclc.cli import _parser, command_reference

DOCS = Path(__file__).resolve().parents[1] / "docs"
COMMANDS = ("open", "demo", "info", "convert", "formats", "review", "review status", "review report", "review supervisors")


def test_the_generated_section_of_cli_md_matches_the_parser():
    script = runpy.run_path(str(DOCS / "scripts" / "cli_reference.py"))
    text = (DOCS / "cli.md").read_text()
    assert script["with_reference"](text) == text, "docs/cli.md is stale: run docs/scripts/cli_reference.py"
    assert command_reference() in text


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_a_description_and_examples(command, capsys):
    with pytest.raises(SystemExit) as exited:
        _parser().parse_args([*command.split(), "--help"])
    assert exited.value.code == 0
    help_text = capsys.readouterr().out
    description = help_text.split("\n\n")[1]
    assert len(description.split()) >= 8, description  # a sentence, not just the usage line
    examples = help_text.split("examples:\n")[1].strip().splitlines()
    assert examples and all(f"napari-nsclc {command}" in line for line in examples)
    assert f"### {command}" in (DOCS / "cli.md").read_text()


def test_open_reports_a_missing_file_before_looking_for_a_display(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no DISPLAY, no QT_QPA_PLATFORM
    missing = tmp_path / "nope.json"
    done = subprocess.run([sys.executable, "-m", "napari_nsclc.cli", "open", str(missing)], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == f"napari-nsclc: error: {missing}: does not exist"
    # an existing file, still without a display: now the display is what is missing
    existing = tmp_path / "notes.txt"
    existing.write_text("hello")
    done = subprocess.run([sys.executable, "-m", "napari_nsclc.cli", "open", str(existing)], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and "notes.txt" in done.stderr and "display" not in done.stderr


@pytest.mark.gui
def test_open_screenshot_saves_the_window_and_exits(tmp_path):
    import os

    import numpy as np
    from PIL import Image

    from napari_nsclc.testing import build

    root = build("nsclc-nat", tmp_path / "data")
    png = tmp_path / "open.png"
    env = {**os.environ, "NSCLC_CONFIG_DIR": str(tmp_path / "config")}
    done = subprocess.run([sys.executable, "-m", "napari_nsclc.cli", "open", str(root), "--screenshot", str(png)],
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"screenshot saved to {png}" in done.stdout
    pixels = np.asarray(Image.open(png).convert("RGB"))
    assert pixels.shape[0] >= 800 and pixels.shape[1] >= 1300  # the whole 1400 x 900 window
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 100  # tissue, masks and docks, not a blank window
