"""Written files get the permissions a normal write gives (the umask), and keep a replaced file's.

Before, every file came from ``mkstemp`` and was ``0o600``: a supervisor on a
shared machine could not read a student's output while the sources were
``0o644``. Every writer goes through :mod:`napari_nsclc._atomic`; these tests
write through the real writers (text, Pillow PNG/JPEG, tifffile, h5py).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from napari_nsclc import registry
from napari_nsclc._atomic import atomic_write_bytes, atomic_write_text
from napari_nsclc.testing import build

#: (source layout, format written, output name): one file per writer family.
FILE_WRITERS = [
    ("masks", "masks", "mask.png"),  # Pillow PNG
    ("masks", "masks", "mask.tif"),  # tifffile
    ("coco", "coco", "coco.json"),
    ("wsi", "geojson", "shapes.geojson"),
    ("wsi", "asap", "asap.xml"),
    ("wsi", "imagescope", "imagescope.xml"),
    ("voc-detection", "voc", "boxes.xml"),
    ("cocahis", "cocahis", "cocahis.hdf5"),  # h5py
    ("pcam", "pcam", "pcam.h5"),  # h5py
]
#: Dataset writers that write folders of several kinds of file (PNG + CSV, JPEG copies + XML + split lists).
FOLDER_WRITERS = ["nucls", "voc-detection"]


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("sources")
    layouts = {layout for layout, _, _ in FILE_WRITERS} | set(FOLDER_WRITERS)
    return {layout: registry.read(build(layout, root / layout)) for layout in sorted(layouts)}


@pytest.fixture
def umask():
    """Set the process umask for one test; the previous one is restored."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield lambda value: os.umask(value)
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _write_all(sources, out: Path) -> list[Path]:
    files = []
    for layout, format_name, name in FILE_WRITERS:
        files += registry.write(sources[layout][:1], out / name, format_name)
    for layout in FOLDER_WRITERS:
        registry.write(sources[layout], out / layout, layout)
    return sorted(p for p in out.rglob("*") if p.is_file())


def test_every_writer_gives_0644_under_umask_022(sources, tmp_path, umask):
    umask(0o022)
    files = _write_all(sources, tmp_path / "out")
    suffixes = {p.suffix for p in files}
    assert {".png", ".tif", ".json", ".geojson", ".xml", ".hdf5", ".h5", ".csv", ".jpg", ".txt"} <= suffixes
    assert {str(p.relative_to(tmp_path)): oct(_mode(p)) for p in files} == {
        str(p.relative_to(tmp_path)): "0o644" for p in files}
    assert not [p for p in (tmp_path / "out").rglob("*.tmp*")]  # no temporary file left


def test_every_writer_gives_0600_under_umask_077(sources, tmp_path, umask):
    umask(0o077)
    files = _write_all(sources, tmp_path / "out")
    assert len(files) >= 15
    assert {oct(_mode(p)) for p in files} == {"0o600"}


@pytest.mark.parametrize("umask_value, expected", [(0o002, 0o664), (0o027, 0o640), (0o000, 0o666)])
def test_the_mode_is_0666_less_the_umask(tmp_path, umask, umask_value, expected):
    umask(umask_value)
    assert _mode(atomic_write_text(tmp_path / "a.txt", "x")) == expected
    assert _mode(atomic_write_bytes(tmp_path / "b.bin", b"x")) == expected


@pytest.mark.parametrize("layout, format_name, name", [FILE_WRITERS[0], FILE_WRITERS[2], FILE_WRITERS[7]])
def test_replacing_a_file_keeps_its_mode(sources, tmp_path, umask, layout, format_name, name):
    umask(0o022)
    target = tmp_path / name
    target.write_bytes(b"old")
    target.chmod(0o640)
    registry.write(sources[layout][:1], target, format_name, overwrite=True)
    assert target.read_bytes() != b"old"
    assert _mode(target) == 0o640


def test_replacing_keeps_a_group_writable_mode_and_a_read_only_one(tmp_path, umask):
    umask(0o022)
    shared, frozen = tmp_path / "shared.txt", tmp_path / "frozen.txt"
    for path, mode in ((shared, 0o664), (frozen, 0o444)):
        path.write_text("old")
        path.chmod(mode)
        atomic_write_text(path, "new")
        assert (path.read_text(), _mode(path)) == ("new", mode)


def test_the_data_is_fsynced_before_the_rename(tmp_path, monkeypatch):
    import napari_nsclc._atomic as atomic

    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(atomic.os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    atomic_write_text(tmp_path / "a.txt", "data")
    # the file first, then the rename, then (POSIX) the folder holding the new name
    assert events == (["fsync", "replace", "fsync"] if os.name == "posix" else ["fsync", "replace"])
    assert (tmp_path / "a.txt").read_text() == "data"
