"""The label pyramid: OME-Zarr 0.5 on disk, region commits, every level against an independent reference.

The references are computed here, independently of napari_nsclc: the mode of
each 2x2 block by counting every class separately (the package keys each
pixel by its count), and level 0 as plain numpy arrays. Pyramids are
generated (there is no real gigapixel mask among the samples); the largest is
shaped like a 50,000² slide, mostly empty, so it stays small on disk.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from napari_nsclc.label_pyramid import ConflictError, LabelPyramid
from napari_nsclc.label_pyramid.downsample import mode_2x2
from napari_nsclc.label_pyramid.editing import RegionEditor, visible_region
from napari_nsclc.label_pyramid.store import level_shapes
from napari_nsclc.model import ClassInfo, ClassSchema, NsclcFormatError

SCHEMA = ClassSchema("tissue", (ClassInfo(1, "tumor", "#ff0000"), ClassInfo(2, "exclusion", "#00ff00"),
                                ClassInfo(3, "necrosis", "#0000ff")), background=0)  # fmt: skip


@pytest.fixture(autouse=True)
def _annotator(monkeypatch):
    monkeypatch.setenv("NSCLC_ANNOTATOR", "alice")


def reference_mode(labels: np.ndarray) -> np.ndarray:
    """Mode of each 2x2 block (the pixels it has), ties to the higher code: per class, count its pixels."""
    height, width = labels.shape
    half_h, half_w = -(-height // 2), -(-width // 2)
    best_count = np.zeros((half_h, half_w), int)
    best_code = np.zeros((half_h, half_w), labels.dtype)
    for code in np.unique(labels):  # ascending, so a later (higher) code wins a tie with >=
        count = np.zeros((half_h, half_w), int)
        hit = (labels == code).astype(int)
        for dy in (0, 1):
            for dx in (0, 1):
                part = hit[dy::2, dx::2]
                count[: part.shape[0], : part.shape[1]] += part
        better = count >= best_count
        best_code[better & (count > 0)] = code
        best_count = np.where(better, count, best_count)
    return best_code


def test_mode_of_2x2_blocks_ties_to_the_higher_code_and_odd_edges():
    labels = np.array([[0, 0, 1, 2, 5], [1, 1, 3, 3, 5], [7, 7, 7, 0, 9]], np.uint8)
    assert mode_2x2(labels).tolist() == [[1, 3, 5], [7, 7, 9]]
    rng = np.random.default_rng(4)
    for shape in [(1, 1), (1, 7), (9, 1), (33, 64), (257, 511)]:
        for dtype in (np.uint8, np.uint16):
            values = rng.integers(0, 5, shape).astype(dtype) * (300 if dtype is np.uint16 else 1)
            np.testing.assert_array_equal(mode_2x2(values), reference_mode(values))
    thin = np.zeros((64, 64), np.uint8)
    thin[:, 31] = 1  # a one-pixel-wide annotation survives every overview level
    level = thin
    while level.shape[1] > 1:
        level = mode_2x2(level)
        assert (level == 1).any()


def test_levels_halve_down_to_1024():
    assert level_shapes((50_000, 50_000))[-1] == (782, 782)
    assert level_shapes((5000, 3000)) == [(5000, 3000), (2500, 1500), (1250, 750), (625, 375)]
    assert level_shapes((800, 900)) == [(800, 900)]


def test_a_new_pyramid_is_ome_zarr_05_labels_that_ome_zarr_py_reads(tmp_path):
    pyramid = LabelPyramid.create(tmp_path / "slide_labels.zarr", (6000, 4000), chunk=256, schema=SCHEMA,
                                  pixel_size=(0.25, 0.25), unit="um")  # fmt: skip
    labels = np.zeros((700, 900), np.uint8)
    labels[100:300, 50:600] = 1
    labels[400:650, 200:300] = 3
    pyramid.commit(1000, 1500, labels)
    attributes = json.loads((tmp_path / "slide_labels.zarr" / "zarr.json").read_text())["attributes"]["ome"]
    assert attributes["version"] == "0.5"
    multiscale = attributes["multiscales"][0]
    assert [a["name"] for a in multiscale["axes"]] == ["y", "x"] and multiscale["axes"][0]["unit"] == "micrometer"
    assert [d["coordinateTransformations"][0]["scale"] for d in multiscale["datasets"]] == \
        [[0.25 * 2**k, 0.25 * 2**k] for k in range(4)]  # fmt: skip
    assert attributes["image-label"]["colors"][0] == {"label-value": 1, "rgba": [255, 0, 0, 255]}
    assert {p["class"] for p in attributes["image-label"]["properties"]} == {"tumor", "exclusion", "necrosis"}
    # ome-zarr-py, the OME's own reader, sees labels with four levels holding the same values
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Reader

    nodes = list(Reader(parse_url(str(tmp_path / "slide_labels.zarr")))())
    assert len(nodes) == 1 and any(isinstance(spec, Label) for spec in nodes[0].specs)
    data = nodes[0].data
    assert [tuple(level.shape) for level in data] == level_shapes((6000, 4000))
    np.testing.assert_array_equal(np.asarray(data[0][1000:1700, 1500:2400]), labels)
    np.testing.assert_array_equal(np.asarray(data[1][500:850, 750:1200]), reference_mode(labels))
    colours = nodes[0].metadata.get("color", {})
    assert colours.get(1) == [1.0, 0.0, 0.0, 1.0] or colours.get(1) == [255, 0, 0, 255]


# --------------------------------------------------------------------------- commits on a 50k² slide


def _inside(ring: np.ndarray, rows: int, columns: int, y0: int, x0: int) -> np.ndarray:
    """Pixels of ``[y0:y0+rows, x0:x0+columns]`` whose centre lies inside a ``(y, x)`` ring: matplotlib's test,
    not the project's rasteriser."""
    from matplotlib.path import Path as MplPath

    yy, xx = np.mgrid[y0 : y0 + rows, x0 : x0 + columns]
    inside = MplPath(ring[:, ::-1]).contains_points(np.column_stack([xx.ravel(), yy.ravel()]))
    return inside.reshape(rows, columns)


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """A pyramid shaped like a 50,000² slide at 0.25 µm/px, with a tumour and an exclusion inside it rasterised.

    Returns its path and the independent reference of ``[20000:23000, 31000:34000]`` (matplotlib's point-in-polygon
    on pixel centres). The tumour crosses the rasteriser's 2048 px tiles at y 20480 and 22528, x 32768.
    """
    path = tmp_path_factory.mktemp("big") / "slide_labels.zarr"
    pyramid = LabelPyramid.create(path, (50_000, 50_000), schema=SCHEMA, pixel_size=(0.25, 0.25), unit="um")
    angles = np.linspace(0, 2 * np.pi, 240, endpoint=False)
    tumour = np.column_stack([21_500.3 + 1300 * np.sin(angles), 32_500.2 + 900 * np.cos(angles)])
    exclusion = np.array([[21_100.4, 32_300.1], [21_150.6, 32_800.7], [21_420.2, 32_760.3], [21_380.9, 32_280.5]])
    result = pyramid.rasterize([tumour, exclusion], ["tumor", "exclusion"], annotator="setup")
    reference = _inside(tumour, 3000, 3000, 20_000, 31_000).astype(np.uint8)
    reference[_inside(exclusion, 3000, 3000, 20_000, 31_000)] = 2  # drawn after the tumour: on top
    assert result.pixels == int(np.count_nonzero(reference))
    return path, reference


def _window_reference(level0: np.ndarray, levels: int) -> list[np.ndarray]:
    out = [level0]
    for _ in range(levels - 1):
        out.append(reference_mode(out[-1]))
    return out


def test_rasterise_edit_commit_and_reopen_every_level_equals_the_numpy_reference(big):
    path, tumour = big
    pyramid = LabelPyramid.open(path)
    assert pyramid.shape == (50_000, 50_000) and len(pyramid.levels) == 7
    # the window: 4096² aligned to 2**6, around the tumour, so its reference levels line up with the pyramid's
    wy, wx = 19_968, 30_976
    before = pyramid.read_region(0, wy, wx, wy + 4096, wx + 4096)
    expected = np.zeros((4096, 4096), np.uint8)
    expected[32 : 32 + 3000, 24 : 24 + 3000] = tumour
    np.testing.assert_array_equal(before, expected)
    editor = RegionEditor(pyramid)
    edit = editor.open(21_000, 31_500, 23_048, 33_548)  # 2048², across chunk edges
    edit.labels[300:900, 100:1800] = 2  # exclusion inside the tumour
    edit.labels[1500:1510, :] = 3  # a thin necrosis band
    result = editor.commit()
    expected[1032 : 1032 + 2048, 524 : 524 + 2048] = edit.labels
    assert result.region == (21_000, 31_500, 23_048, 33_548)
    assert result.pixels == int(np.count_nonzero(edit.labels != edit.original))
    reopened = LabelPyramid.open(path)
    for level, reference in enumerate(_window_reference(expected, len(reopened.levels))):
        y, x = wy >> level, wx >> level
        got = reopened.read_region(level, y, x, y + reference.shape[0], x + reference.shape[1])
        np.testing.assert_array_equal(got, reference, err_msg=f"level {level}")
    # outside the window nothing changed
    assert not reopened.read_region(0, wy - 512, wx - 512, wy, wx + 4096).any()
    assert not reopened.read_region(3, 0, 0, 2000, 3000).any()


def test_each_commit_is_recorded_with_who_when_where_and_pixels_per_class(big):
    path, _ = big
    pyramid = LabelPyramid.open(path)
    old = pyramid.read_region(0, 22_000, 32_000, 22_100, 32_300)
    new = np.full_like(old, 3)
    result = pyramid.commit(22_000, 32_000, new, annotator="bob")
    record = pyramid.history()[-1]
    assert record["annotator"] == "bob" and record["committed_at"].endswith("Z")
    assert record["region"] == [22_000, 32_000, 22_100, 32_300]
    expected = {}
    for code, count in zip(*np.unique(old[old != 3], return_counts=True), strict=True):
        name = {0: "background", 1: "tumor", 2: "exclusion"}[int(code)]
        expected[name] = {"added": 0, "removed": int(count)}
    expected["necrosis"] = {"added": int((old != 3).sum()), "removed": 0}
    assert record["changes"] == expected == result.changed
    assert record["pixels_changed"] == int((old != 3).sum())


def test_a_commit_over_another_windows_commit_is_refused_and_nothing_is_lost(big):
    path, _ = big
    first, second = RegionEditor(LabelPyramid.open(path)), RegionEditor(LabelPyramid.open(path))
    a = first.open(10_000, 10_000, 10_200, 10_200)
    b = second.open(10_100, 10_100, 10_300, 10_300)
    a.labels[:] = 1
    first.commit()
    b.labels[:] = 2
    with pytest.raises(ConflictError, match="changed on disk since it was opened"):
        second.commit()
    assert second.current is b  # still open: the student can save it elsewhere or reopen
    np.testing.assert_array_equal(LabelPyramid.open(path).read_region(0, 10_000, 10_000, 10_200, 10_200), a.labels)


# --------------------------------------------------------------------------- bad input


def test_bad_regions_and_bounds_get_one_clear_line(big):
    path, _ = big
    pyramid = LabelPyramid.open(path)
    with pytest.raises(NsclcFormatError, match=r"region y 49000\.\.51048, x 0\.\.2048 lies outside the slide "
                                               r"\(50000x50000 px at level 0\); nothing was written"):
        pyramid.commit(49_000, 0, np.ones((2048, 2048), np.uint8))
    with pytest.raises(NsclcFormatError, match="larger than the 4096x4096 one commit takes"):
        pyramid.commit(0, 0, np.ones((4097, 10), np.uint8))
    editor = RegionEditor(pyramid)
    with pytest.raises(NsclcFormatError, match="a 6000x5000 px region is larger than the 4096x4096 px the editor "
                                               "opens at full resolution: zoom in"):
        editor.open(0, 0, 5000, 6000)
    with pytest.raises(NsclcFormatError, match="lies outside the slide"):
        editor.open(60_000, 0, 61_000, 100)
    with pytest.raises(NsclcFormatError, match="is 50000x50000 px at level 0 but the slide is 49000x50000 px"):
        pyramid.check_matches((50_000, 49_000))
    with pytest.raises(NsclcFormatError, match="do not fit uint8 codes"):
        pyramid.commit(0, 0, np.full((4, 4), 300))


def test_a_damaged_chunk_is_named_and_the_rest_still_reads(tmp_path):
    pyramid = LabelPyramid.create(tmp_path / "p.zarr", (3000, 3000), chunk=256, schema=SCHEMA)
    pyramid.commit(0, 0, np.ones((1024, 1024), np.uint8))
    chunk = tmp_path / "p.zarr" / "0" / "c" / "1" / "2"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one bit flipped: the zstd checksum catches it
    chunk.write_bytes(bytes(data))
    truncated = tmp_path / "p.zarr" / "0" / "c" / "3" / "3"
    truncated.write_bytes(truncated.read_bytes()[:10])  # half written
    with pytest.raises(NsclcFormatError, match=r"0/c/1/2: chunk of level 0 \(y 256\.\.512, x 512\.\.768\) is damaged "
                                               r"and cannot be decoded"):
        pyramid.read_region(0, 0, 0, 1024, 1024)
    with pytest.raises(NsclcFormatError, match=r"0/c/3/3: chunk of level 0"):
        pyramid.read_region(0, 768, 768, 800, 800)
    assert pyramid.read_region(0, 0, 0, 256, 1024).all()  # the chunks around are intact


def test_other_ome_zarr_versions_and_images_are_refused_on_opening(tmp_path):
    import zarr

    old = zarr.open_group(str(tmp_path / "v04.zarr"), mode="w", zarr_format=2)
    old.create_array("0", shape=(100, 100), dtype="uint8")
    old.attrs["multiscales"] = [{"version": "0.4", "datasets": [{"path": "0"}]}]
    with pytest.raises(NsclcFormatError, match=r"v04\.zarr: is a zarr v2 store \(OME-Zarr 0\.4 or older\); "
                                               r"napari-nsclc edits OME-Zarr 0\.5 label pyramids"):
        LabelPyramid.open(tmp_path / "v04.zarr")
    newer = LabelPyramid.create(tmp_path / "v06.zarr", (100, 100))
    group = zarr.open_group(str(newer.path), mode="r+")
    group.attrs["ome"] = {**group.attrs["ome"], "version": "0.6"}
    with pytest.raises(NsclcFormatError, match="is OME-Zarr 0.6; napari-nsclc edits OME-Zarr 0.5"):
        LabelPyramid.open(newer.path)
    image = LabelPyramid.create(tmp_path / "image.zarr", (100, 100))
    group = zarr.open_group(str(image.path), mode="r+")
    group.attrs["ome"] = {k: v for k, v in group.attrs["ome"].items() if k != "image-label"}
    with pytest.raises(NsclcFormatError, match="is an OME-Zarr image, not labels"):
        LabelPyramid.open(image.path)
    with pytest.raises(NsclcFormatError, match="already exists"):
        LabelPyramid.create(image.path, (10, 10))


def test_the_view_gives_the_level0_region_it_shows():
    # a 1000 x 600 µm view centred on (5000, 8000) µm of a 0.25 µm/px slide
    assert visible_region((5000.0, 8000.0), (600.0, 1000.0), (0.25, 0.25), (50_000, 50_000)) == \
        (18_800, 30_000, 21_201, 34_001)  # fmt: skip
    assert visible_region((10.0, 10.0), (600.0, 1000.0), (0.25, 0.25), (50_000, 50_000))[:2] == (0, 0)


# --------------------------------------------------------------------------- killed mid-commit

_KILLER = textwrap.dedent('''
    import os, shutil, signal, sys
    import numpy as np
    os.environ["NSCLC_ANNOTATOR"] = "killed"
    from napari_nsclc.label_pyramid import LabelPyramid, journal
    where, when = sys.argv[2], int(sys.argv[3])
    seen = {"n": 0}
    def kill_at_nth(matches, original):
        def call(*args, **kwargs):
            if matches(*args):
                seen["n"] += 1
                if seen["n"] == when:
                    if where == "shadow":  # a torn chunk file in the journal
                        args[0].write_bytes(args[1][: len(args[1]) // 2])
                    os.kill(os.getpid(), signal.SIGKILL)
            return original(*args, **kwargs)
        return call
    in_journal = lambda source, target: ".nsclc-journal" in str(target)
    kinds = {
        "shadow": (journal, "_write_chunk_file", lambda *a: True),  # a new chunk written aside
        "commit": (os, "replace", lambda s, t: str(t).endswith("commit.json")),  # the commit point
        "move": (os, "replace", lambda s, t: not in_journal(s, t)),  # a chunk moved into its level
        "fsync": (journal, "_fsync_file", lambda *a: True),
        "rmtree": (shutil, "rmtree", lambda *a: True),
    }
    module, name, matches = kinds[where]
    setattr(module, name, kill_at_nth(matches, getattr(module, name)))
    pyramid = LabelPyramid.open(sys.argv[1])
    pyramid.commit(int(sys.argv[5]), int(sys.argv[6]), np.load(sys.argv[4]))
    print("finished")
''')

#: (where, nth): where the process is killed, before the commit point or after it.
KILL_POINTS = [("shadow", 1), ("shadow", 9), ("fsync", 3), ("commit", 1), ("move", 1), ("move", 7), ("move", 20),
               ("rmtree", 1)]  # fmt: skip
COMMITTED = {"move", "rmtree"}


@pytest.mark.parametrize("where, when", KILL_POINTS)
def test_a_kill_at_any_point_of_a_commit_leaves_before_or_after_at_every_level(tmp_path, where, when):
    """On a 50k² pyramid: every level is compared over a window around the commit, and no chunk outside it changed."""
    path = tmp_path / "p.zarr"
    pyramid = LabelPyramid.create(path, (50_000, 50_000), chunk=256, schema=SCHEMA)
    wy, wx, side = 29_952, 40_960, 3072  # aligned to 2**6, so the window's reference levels line up with the pyramid's
    first = np.zeros((1500, 1400), np.uint8)
    first[200:1200, 100:1300] = 1
    pyramid.commit(wy + 500, wx + 600, first, annotator="alice")

    def window(pyr) -> list[np.ndarray]:
        return [pyr.read_region(k, wy >> k, wx >> k, (wy + side) >> k, (wx + side) >> k) for k in range(len(pyr.levels))]

    def chunk_files() -> dict[str, float]:
        return {str(p.relative_to(path)): p.stat().st_mtime_ns for p in path.glob("[0-9]*/c/*/*")}

    before, files_before = window(pyramid), chunk_files()
    labels = np.zeros((1300, 1100), np.uint8)
    labels[::3, :] = 2
    labels[400:900, 300:800] = 3
    np.save(tmp_path / "labels.npy", labels)
    after_level0 = before[0].copy()
    after_level0[700:2000, 900:2000] = labels
    after = _window_reference(after_level0, len(before))
    run = subprocess.run([sys.executable, "-c", _KILLER, str(path), where, str(when), str(tmp_path / "labels.npy"),
                          str(wy + 700), str(wx + 900)], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == -signal.SIGKILL, (run.returncode, run.stdout, run.stderr)
    reopened = LabelPyramid.open(path)
    state = window(reopened)
    is_before = all(np.array_equal(a, b) for a, b in zip(state, before, strict=True))
    is_after = all(np.array_equal(a, b) for a, b in zip(state, after, strict=True))
    assert is_before != is_after, "the pyramid must be exactly before or exactly after the commit, at every level"
    committed = where in COMMITTED  # killed after commit.json was renamed into place
    assert is_after == committed
    assert set(files_before) <= set(chunk_files())  # no chunk lost
    for key, stamp in chunk_files().items():  # a chunk not meeting the window is the file that was there
        level, _, row, column = key.split("/")
        size = 256 << int(level)
        meets = (wy - size < int(row) * size < wy + side) and (wx - size < int(column) * size < wx + side)
        assert meets or files_before.get(key) == stamp, key
    history = reopened.history()
    if committed:  # finished on opening, and recorded once
        assert reopened.recovered == [f"completed a commit by killed at {history[-1]['committed_at']} that a "
                                      "stopped process left unfinished"]  # fmt: skip
        assert [event["annotator"] for event in history] == ["alice", "killed"]
    else:
        assert reopened.recovered == ["rolled back a commit that a stopped process left unfinished"]
        assert [event["annotator"] for event in history] == ["alice"]
    assert not (path / ".nsclc-journal").exists()


# --------------------------------------------------------------------------- autosave of the open region


def test_an_open_region_is_autosaved_restored_as_painted_and_removed_by_commit(tmp_path, monkeypatch):
    monkeypatch.setenv("NSCLC_ANNOTATOR", "alice")
    pyramid = LabelPyramid.create(tmp_path / "p.zarr", (3000, 2000), chunk=256, schema=SCHEMA)
    editor = RegionEditor(pyramid, max_side=1024)
    edit = editor.open(100, 200, 900, 1000)
    assert editor.autosave() is None and not editor.autosave_path.exists()  # nothing painted yet
    edit.labels[50:300, 60:400] = 2
    saved = editor.autosave()
    assert saved == tmp_path / "p.zarr" / ".nsclc-autosave" / "alice.npz" and saved.is_file()
    stamp = saved.stat().st_mtime_ns
    assert editor.autosave() is None and saved.stat().st_mtime_ns == stamp  # unchanged: not rewritten
    painted = edit.labels.copy()
    # the process dies here; a new session of the same annotator finds the region and gets it back as painted
    again = RegionEditor(LabelPyramid.open(tmp_path / "p.zarr"), max_side=1024)
    assert again.unfinished() == {"region": (100, 200, 900, 1000), "saved_at": again.unfinished()["saved_at"],
                                  "pixels": 250 * 340}  # fmt: skip
    restored = again.restore()
    np.testing.assert_array_equal(restored.labels, painted)
    assert (restored.y0, restored.x0, restored.y1, restored.x1) == (100, 200, 900, 1000)
    assert not pyramid.read_region(0, 100, 200, 900, 1000).any()  # nothing reached the pyramid before the commit
    again.commit()
    np.testing.assert_array_equal(pyramid.read_region(0, 100, 200, 900, 1000), painted)
    assert not saved.exists() and again.unfinished() is None
    # a discard removes it too; another annotator's autosave is not theirs
    edit = again.open(0, 0, 500, 500)
    edit.labels[:10] = 1
    again.autosave()
    monkeypatch.setenv("NSCLC_ANNOTATOR", "bob")
    assert again.unfinished() is None
    monkeypatch.setenv("NSCLC_ANNOTATOR", "alice")
    again.discard()
    assert not (tmp_path / "p.zarr" / ".nsclc-autosave" / "alice.npz").exists()


def test_a_damaged_autosave_is_named_and_set_aside_never_deleted(tmp_path, monkeypatch):
    monkeypatch.setenv("NSCLC_ANNOTATOR", "alice")
    pyramid = LabelPyramid.create(tmp_path / "p.zarr", (2000, 2000), chunk=256, schema=SCHEMA)
    editor = RegionEditor(pyramid)
    editor.autosave_path.parent.mkdir()
    editor.autosave_path.write_bytes(b"PK\x03\x04 half a file")
    with pytest.raises(NsclcFormatError, match=r"alice\.npz: cannot be restored \(.*\); it was set aside as "
                                               r"alice\.npz\.damaged"):  # fmt: skip
        editor.unfinished()
    assert (editor.autosave_path.parent / "alice.npz.damaged").read_bytes() == b"PK\x03\x04 half a file"
    assert editor.unfinished() is None


@pytest.mark.parametrize("compressor", ["zstd", "blosc"])
def test_commits_to_uint16_pyramids_and_to_other_tools_codecs_read_back_through_zarr(tmp_path, compressor):
    """Chunks are written by the journal's own zstd encoder when the layout is the one napari-nsclc creates, by
    zarr otherwise (a pyramid another tool wrote with Blosc): zarr reads both back as committed."""
    import zarr
    from zarr.codecs import BloscCodec

    from napari_nsclc.label_pyramid.store import ome_attributes

    path = tmp_path / "p.zarr"
    if compressor == "zstd":
        LabelPyramid.create(path, (2500, 1300), chunk=256, dtype="uint16", schema=SCHEMA)
    else:
        group = zarr.open_group(str(path), mode="w-", zarr_format=3)
        for level, shape in enumerate(level_shapes((2500, 1300))):
            group.create_array(str(level), shape=shape, chunks=(256, 256), dtype="uint16", fill_value=0,
                               compressors=BloscCodec(cname="lz4"))  # fmt: skip
        group.attrs["ome"] = ome_attributes(level_shapes((2500, 1300)), (1, 1), "px", SCHEMA, "p")
    pyramid = LabelPyramid.open(path)
    from napari_nsclc.label_pyramid.journal import _chunk_encoder

    assert (_chunk_encoder(pyramid.levels[0]) is not None) == (compressor == "zstd")
    labels = np.zeros((900, 700), np.uint16)
    labels[100:700, 50:650] = 300  # needs both bytes
    labels[::4, :] = 2
    pyramid.commit(1200, 600, labels, annotator="alice")  # to the right edge: edge chunks are padded
    reference = np.zeros((2500, 1300), np.uint16)
    reference[1200:2100, 600:1300] = labels
    for level, expected in enumerate(_window_reference(reference, len(pyramid.levels))):
        np.testing.assert_array_equal(zarr.open_array(str(path / str(level)), mode="r")[:], expected)


def test_an_autosave_made_before_the_annotator_was_named_goes_with_the_commit(tmp_path, monkeypatch):
    monkeypatch.delenv("NSCLC_ANNOTATOR", raising=False)
    monkeypatch.setenv("NSCLC_CONFIG_DIR", str(tmp_path / "config"))  # nobody named yet
    editor = RegionEditor(LabelPyramid.create(tmp_path / "p.zarr", (2000, 2000), chunk=256, schema=SCHEMA))
    edit = editor.open(0, 0, 300, 300)
    edit.labels[:50] = 1
    assert editor.autosave().name == "unnamed.npz"
    monkeypatch.setenv("NSCLC_ANNOTATOR", "alice")  # named when committing
    editor.commit()
    assert list((tmp_path / "p.zarr" / ".nsclc-autosave").iterdir()) == []
    assert RegionEditor(LabelPyramid.open(tmp_path / "p.zarr")).unfinished() is None
