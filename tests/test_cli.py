"""The napari-nsclc command: headless subcommands and their error handling."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from napari_nsclc.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "napari_nsclc.cli", *args], capture_output=True, text=True)


@pytest.mark.parametrize(
    ("make_path", "problem"),
    [
        (lambda tmp: tmp / "missing.json", "no such file or folder"),
        (lambda tmp: _write(tmp / "notes.txt", "just some words"), "not a format napari-nsclc reads"),
        # folders: tests/test_cli_info.py checks what the line says about them
    ],
)
def test_info_on_bad_input_prints_one_line_and_exits_2(tmp_path, make_path, problem):
    path = make_path(tmp_path)
    result = run_cli("info", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip() == f"napari-nsclc: error: {path}: {problem}"
    assert "Traceback" not in result.stderr


def test_convert_to_an_unknown_format_names_the_known_ones(tmp_path, capsys):
    source = _write(tmp_path / "a.txt", "x")
    assert main(["convert", str(source), "--to", "no-such-format", "-o", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("napari-nsclc: error: unknown format 'no-such-format'; known formats:")
    assert len(error.strip().splitlines()) == 1


def test_no_subcommand_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "convert" in capsys.readouterr().out


def test_formats_lists_every_registered_format(capsys):
    from napari_nsclc.registry import all_formats

    assert main(["formats"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(all_formats()) > 0
    assert sorted(line.split()[0] for line in lines) == sorted(spec.name for spec in all_formats())


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_demo_without_a_display_says_how_to_run_it_headless(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    result = subprocess.run([sys.executable, "-m", "napari_nsclc.cli", "demo", "--folder", str(tmp_path)],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "napari-nsclc: error: DISPLAY: no display to open napari on; run 'napari-nsclc demo' on a desktop, "
        "or headless with: xvfb-run -a napari-nsclc demo --screenshot demo.png"
    ]
    assert not any(tmp_path.iterdir())  # nothing written before the check
