"""What reaches the user: one line naming the right file, nothing else.

* a failed write names the output asked for, never the ``.name.xxxx.tmp`` file,
  and leaves neither a temporary nor a partial file, nor a changed old file;
* third-party log noise (tifffile's "invalid offset to first page") never
  shows up as extra lines; no message shows a Python repr
  (``EntitiesForbidden(name='lol', ...)``);
* ``napari-nsclc --version``;
* ``demo`` and Open Sample leave no ``napari-nsclc-*`` folder in the temporary directory.
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest

from napari_nsclc import cli, registry
from napari_nsclc.model import NsclcFormatError
from napari_nsclc.testing import build

BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n  <!ENTITY lol "lol">\n'
    + "".join(f'  <!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">\n'
              for i in range(1, 10))
    + "]>\n"
)
#: A repr such as ``EntitiesForbidden(name='lol', system_id=None, public_id=None)``.
REPR = re.compile(r"\w+\(\w+=")


def _cli(args, capsys) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _run(*args, env=None, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "napari_nsclc.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env)


def _left_over(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name)


# --------------------------------------------------------------------------- B: failed writes


@pytest.fixture
def geojson_source(tmp_path):
    """A real QuPath-style GeoJSON read from a built slide dataset, and one case of it."""
    cases = registry.read(build("wsi", tmp_path / "src"))
    source = tmp_path / "src" / "shapes.geojson"
    registry.write(cases, source, "geojson")
    return source, registry.read(source, "geojson")


def _disk_full_on_write_bytes(monkeypatch):
    """``Path.write_bytes`` writes half of the data, then fails as a full disk does (naming the file it wrote)."""

    def write_bytes(self, data):
        with open(self, "wb") as handle:
            handle.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(pathlib.Path, "write_bytes", write_bytes)


def test_a_full_disk_names_the_output_in_the_cli(geojson_source, tmp_path, monkeypatch, capsys):
    source, _ = geojson_source
    out = tmp_path / "out"
    out.mkdir()
    target = out / "result.geojson"
    target.write_text("previous result\n")
    _disk_full_on_write_bytes(monkeypatch)
    code, stdout, stderr = _cli(["convert", source, "--to", "geojson", "-o", target, "--overwrite"], capsys)
    assert code == 2
    assert "wrote" not in stdout
    assert stderr == f"napari-nsclc: error: {target}: cannot be written: No space left on device\n"
    assert target.read_text() == "previous result\n"
    assert sorted(p.name for p in out.iterdir()) == ["result.geojson"]  # no .result.geojson.xxxx.tmp


@pytest.mark.parametrize("format_name, name", [("geojson", "a.geojson"), ("masks", "a.png"), ("cocahis", "a.hdf5"),
                                               ("coco", "a.json")])
def test_a_full_disk_at_fsync_names_the_output_through_registry_write(tmp_path, monkeypatch, format_name, name):
    import napari_nsclc._atomic as atomic

    layout = {"geojson": "wsi", "masks": "masks", "cocahis": "cocahis", "coco": "coco"}[format_name]
    cases = registry.read(build(layout, tmp_path / "src"))[:1]
    out = tmp_path / "out"
    out.mkdir()
    target = out / name
    target.write_bytes(b"old bytes")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(NsclcFormatError) as caught:
        registry.write(cases, target, format_name, overwrite=True)
    assert caught.value.path == str(target)
    assert str(caught.value) == f"{target}: cannot be written: No space left on device"
    assert target.read_bytes() == b"old bytes"
    assert sorted(p.name for p in out.iterdir()) == [name]


def test_a_read_only_folder_names_the_output(geojson_source, tmp_path, monkeypatch, capsys):
    """As root a chmod 0o555 folder is still writable, so the refusal of a read-only mount is simulated."""
    import napari_nsclc._atomic as atomic

    source, _ = geojson_source
    folder = tmp_path / "readonly"
    folder.mkdir()
    real_open = os.open

    def read_only_open(path, flags, mode=0o777, **kwargs):
        if flags & os.O_CREAT and Path(path).parent == folder:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, mode, **kwargs)

    monkeypatch.setattr(atomic.os, "open", read_only_open)
    target = folder / "result.geojson"
    code, _, stderr = _cli(["convert", source, "--to", "geojson", "-o", target], capsys)
    assert code == 2
    assert stderr == f"napari-nsclc: error: {target}: cannot be written: Read-only file system\n"
    assert list(folder.iterdir()) == []


def test_an_h5py_failure_message_names_the_output_not_the_temporary_file(tmp_path, monkeypatch):
    import h5py

    cases = registry.read(build("cocahis", tmp_path / "src"))[:1]
    real_file = h5py.File

    def failing_file(name, mode="r", *args, **kwargs):
        if mode == "w":  # h5py's own wording, with the errno inside the text
            raise OSError(f"Unable to synchronously create file (unable to open file: name = '{name}', errno = 28, "
                          "error message = 'No space left on device', flags = 13, o_flags = 242)")
        return real_file(name, mode, *args, **kwargs)

    monkeypatch.setattr(h5py, "File", failing_file)
    target = tmp_path / "out.hdf5"
    with pytest.raises(NsclcFormatError) as caught:
        registry.write(cases, target, "cocahis")
    assert str(caught.value) == f"{target}: cannot be written: No space left on device"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_a_failing_source_read_inside_a_write_keeps_the_source_name(tmp_path, monkeypatch):
    """Only errors about the output are renamed: a source image that vanished is named as itself."""
    import shutil

    cases = registry.read(build("voc-detection", tmp_path / "src"))[:1]
    image = Path(cases[0].image.path)

    def vanished(source, destination, **kwargs):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(source))

    monkeypatch.setattr(shutil, "copyfile", vanished)
    with pytest.raises(FileNotFoundError) as caught:
        registry.write(cases, tmp_path / "out", "voc-detection")
    assert caught.value.filename == str(image)
    assert _left_over(tmp_path / "out") == []


# --------------------------------------------------------------------------- C: one plain line


def _tiff_bytes() -> bytes:
    import io

    import tifffile

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.zeros((2048, 2048, 3), np.uint8), tile=(256, 256), photometric="rgb",
                     compression="zlib")
    return buffer.getvalue()


def _bad_files(folder: Path) -> dict[str, Path]:
    good = _tiff_bytes()
    files = {
        "bad first-page offset .tif": (folder / "offset.tif", b"II*\x00" + (10**9).to_bytes(4, "little") + bytes(64)),
        "bad first-page offset .svs": (folder / "offset.svs", b"II*\x00" + (10**9).to_bytes(4, "little") + bytes(64)),
        "truncated .tif": (folder / "cut.tif", good[: len(good) // 2]),
        "truncated .svs": (folder / "cut.svs", good[:3000]),
        "truncated .svs header": (folder / "head.svs", good[:20]),
        "text renamed .tif": (folder / "notes.tif", b"these are my notes, not an image\n" * 20),
        "billion laughs VOC": (folder / "voc.xml", (BILLION_LAUGHS + "<annotation><filename>a.jpg</filename>"
                                                    "<name>&lol9;</name></annotation>").encode()),
        "billion laughs ASAP": (folder / "asap.xml", (BILLION_LAUGHS + "<ASAP_Annotations><Annotations>&lol9;"
                                                      "</Annotations></ASAP_Annotations>").encode()),
        "billion laughs ImageScope": (folder / "scope.xml", (BILLION_LAUGHS + '<Annotations MicronsPerPixel="0.25">'
                                                             "<Annotation>&lol9;</Annotation></Annotations>").encode()),
    }
    for path, data in files.values():
        path.write_bytes(data)
    return {key: path for key, (path, _) in files.items()}


def test_bad_files_give_exactly_one_plain_line(tmp_path):
    """Run as the user does (a fresh process, no logging set up), so stray log lines would show on stderr."""
    for case, path in _bad_files(tmp_path).items():
        result = _run("info", path)
        assert result.returncode == 2, case
        assert result.stdout == "", case
        lines = result.stderr.splitlines()
        assert len(lines) == 1, f"{case}: {result.stderr}"
        assert lines[0].startswith(f"napari-nsclc: error: {path}: "), case
        assert len(lines[0]) > len(f"napari-nsclc: error: {path}: ") + 10, case
        assert not REPR.search(lines[0]), f"{case}: {lines[0]}"
        assert "tifffile" not in lines[0] and "<" not in lines[0], f"{case}: {lines[0]}"


@pytest.mark.parametrize("name, kind, prefix", [
    ("voc.xml", "billion laughs VOC", "was refused by the safe XML parser: "),
    ("asap.xml", "billion laughs ASAP", "refused: "),
    ("scope.xml", "billion laughs ImageScope", "refused: "),
])
def test_hostile_xml_is_refused_in_words(tmp_path, capsys, name, kind, prefix):
    path = _bad_files(tmp_path)[kind]
    code, _, stderr = _cli(["info", path], capsys)
    assert code == 2
    assert stderr == (
        f"napari-nsclc: error: {path}: {prefix}the XML declares entities or external references "
        "(here the entity 'lol'), which annotation files never need and attacks use "
        "(entity expansion, external entities)\n")


def test_an_external_entity_is_named_by_where_it_points(tmp_path, capsys):
    path = tmp_path / "evil.xml"
    path.write_text('<?xml version="1.0"?>\n<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/hostname">]>\n'
                    "<annotation><filename>&x;</filename></annotation>")
    code, _, stderr = _cli(["info", path], capsys)
    assert code == 2
    assert "(here the external entity 'x' pointing to file:///etc/hostname)" in stderr
    assert "system_id" not in stderr and "ExternalReference" not in stderr and "Forbidden" not in stderr


def test_tifffile_log_records_do_not_reach_logging(tmp_path, caplog):
    """In a process with logging set up (napari), the records are taken too, not handed to the handlers."""
    from napari_nsclc.formats.slide import is_slide, open_pyramid

    files = _bad_files(tmp_path)
    with caplog.at_level("DEBUG"):
        for key in ("bad first-page offset .tif", "bad first-page offset .svs"):
            with pytest.raises(NsclcFormatError):
                registry.read(files[key])
            is_slide(files[key])
        with pytest.raises(NsclcFormatError) as caught:
            open_pyramid(files["bad first-page offset .svs"])
    assert caught.value.path == str(files["bad first-page offset .svs"])
    assert [r.getMessage() for r in caplog.records if r.name.startswith("tifffile")] == []


def test_tifffile_records_outside_our_readers_still_reach_logging(caplog):
    import logging

    from napari_nsclc._tifflog import quiet_tifffile

    with caplog.at_level("WARNING"):
        with quiet_tifffile() as taken:
            logging.getLogger("tifffile").warning("<tifffile.TiffPages @8> invalid offset to first page 8")
        logging.getLogger("tifffile").warning("someone else's read")
    assert taken == ["invalid offset to first page 8"]
    assert [r.getMessage() for r in caplog.records if r.name == "tifffile"] == ["someone else's read"]


# --------------------------------------------------------------------------- D: --version


def test_version_prints_the_installed_version(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"napari-nsclc {version('napari-nsclc')}\n"


def test_version_falls_back_to_the_package_attribute(monkeypatch):
    import importlib.metadata

    import napari_nsclc

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    monkeypatch.setattr(napari_nsclc, "__version__", "9.8.7", raising=False)
    assert cli._version() == "9.8.7"


def test_version_in_a_fresh_process():
    result = _run("--version")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"napari-nsclc {version('napari-nsclc')}\n", "")


# --------------------------------------------------------------------------- E: temporary folders


def _env_with_tmpdir(tmp_path: Path) -> tuple[dict, Path]:
    fresh = tmp_path / "tmpdir"
    fresh.mkdir()
    runtime = tmp_path / "runtime"  # Qt puts its runtime folder in TMPDIR when XDG_RUNTIME_DIR is unset
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "TMPDIR": str(fresh), "TEMP": str(fresh), "TMP": str(fresh),
           "XDG_RUNTIME_DIR": str(runtime)}
    return env, fresh


def test_open_sample_removes_its_folder_when_the_process_exits(tmp_path):
    env, fresh = _env_with_tmpdir(tmp_path)
    code = (
        "import json, os, tempfile\n"
        "from napari_nsclc._sample_data import sample_layers\n"
        "layers = sample_layers('masks')\n"
        "folders = os.listdir(tempfile.gettempdir())\n"
        "files = [p for f in folders for p in os.listdir(os.path.join(tempfile.gettempdir(), f))]\n"
        "print(json.dumps({'folders': folders, 'files': files, 'layers': [t for _, _, t in layers]}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout)
    # while the process ran, the sample's files were on disk for napari to read
    assert len(seen["folders"]) == 1 and seen["folders"][0].startswith("napari-nsclc-masks-")
    assert seen["files"] and "labels" in seen["layers"]
    assert list(fresh.iterdir()) == []


@pytest.mark.gui
def test_demo_leaves_no_folder_in_the_temporary_directory(tmp_path):
    env, fresh = _env_with_tmpdir(tmp_path)
    screenshot = tmp_path / "x.png"
    result = _run("demo", "--screenshot", screenshot, env=env, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    written = re.search(r"^demo datasets written to (.+):$", result.stdout, re.M)
    assert written, result.stdout
    root = Path(written.group(1))
    assert root.parent == fresh and root.name.startswith("napari-nsclc-demo-")
    assert screenshot.stat().st_size > 10_000
    assert not root.exists()
    assert list(fresh.iterdir()) == []
