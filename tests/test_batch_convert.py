"""``napari-nsclc convert`` on whole datasets: resumable, interruptible, never writing into the source.

Every (reader, writer) pair of the conversion matrix goes through the same
command in ``test_conversion_matrix.py``, which also checks that its files are
the writer's own (``registry.write``), byte for byte. Here: the manifest and
what a second run skips, interrupts by SIGINT and SIGTERM in a real process,
datasets with good and bad files, outputs that are refused, and the progress
shown. The datasets are synthetic, written as ../shared/FORMATS.md describes;
the real MIDOG database is the sample.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import _batch_fixtures as fx
import numpy as np
import pytest
from PIL import Image

from napari_nsclc import registry
from napari_nsclc.batch.convert import convert
from napari_nsclc.batch.manifest import Manifest, work_folder
from napari_nsclc.cli import main
from napari_nsclc.testing import build
from napari_nsclc.testing.segmentation import build_nsclc_nat


def _run(*argv) -> int:
    return main(["convert", *[str(a) for a in argv]])


def outputs(out: Path) -> dict[str, bytes]:
    """Every file a conversion wrote, by path relative to ``out``, without its hidden work folder."""
    if out.is_file():
        return {out.name: out.read_bytes()}
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and ".nsclc-convert" not in p.relative_to(out).parts}  # fmt: skip


def mtimes(out: Path) -> dict[str, int]:
    files = [out] if out.is_file() else [p for p in out.rglob("*") if p.is_file() and ".nsclc-convert" not in p.parts]
    return {p.name if out.is_file() else p.relative_to(out).as_posix(): p.stat().st_mtime_ns for p in files}


@pytest.fixture
def nat(tmp_path) -> Path:
    return build_nsclc_nat(tmp_path / "nat", n_cases=6, shape=(120, 160))


# --------------------------------------------------------------------------- resuming


def test_a_second_run_skips_every_case_and_touches_no_file(nat, tmp_path, capsys):
    out = tmp_path / "out"
    assert _run(nat, "--to", "masks", "-o", out) == 0
    first = capsys.readouterr().out
    assert "wrote 12 file(s)" in first and "6 case(s) converted" in first
    before, stamps = outputs(out), mtimes(out)
    assert sorted(before) == [f"{folder}/{i}.png" for folder in ("Mask", "SegmentationClass") for i in range(1, 7)]
    manifest = Manifest.load(work_folder(out, one_file=False))
    assert list(manifest.cases) == ["1", "2", "3", "4", "5", "6"]  # case order, whatever order workers finish in
    assert set(manifest.cases["2"].sources) == {"Images/2.png", "SegmentationClass/2.png", "Mask/2.png"}
    assert _run(nat, "--to", "masks", "-o", out) == 0
    second = capsys.readouterr().out
    assert "wrote 0 file(s)" in second and "6 unchanged since the last run, skipped" in second
    assert outputs(out) == before and mtimes(out) == stamps


def test_only_the_cases_whose_sources_or_outputs_changed_are_converted_again(nat, tmp_path, capsys):
    out = tmp_path / "out"
    assert _run(nat, "--to", "masks", "-o", out) == 0
    reference = outputs(out)
    mask = nat / "SegmentationClass" / "4.png"
    values = np.asarray(Image.open(mask)).copy()
    values[:10, :10] = 1 - values[:10, :10]  # the student's correction, still 0/1
    Image.fromarray(values).save(mask)
    (out / "Mask" / "2.png").unlink()
    stamps = mtimes(out)
    capsys.readouterr()
    assert _run(nat, "--to", "masks", "-o", out) == 0
    printed = capsys.readouterr().out
    assert "2 case(s) converted; 4 unchanged since the last run, skipped" in printed
    after = outputs(out)
    np.testing.assert_array_equal(np.asarray(Image.open(out / "SegmentationClass" / "4.png")), values)
    assert after["Mask/2.png"] == reference["Mask/2.png"]
    unchanged = [name for name in stamps if not name.endswith(("/4.png", "/2.png"))]
    assert all(mtimes(out)[name] == stamps[name] for name in unchanged)


def test_an_output_edited_by_hand_is_not_overwritten_without_overwrite(nat, tmp_path, capsys):
    out = tmp_path / "out"
    assert _run(nat, "--to", "masks", "-o", out) == 0
    edited = out / "Mask" / "3.png"
    edited.write_bytes(b"my own notes")
    capsys.readouterr()
    assert _run(nat, "--to", "masks", "-o", out) == 1
    printed = capsys.readouterr().out
    assert "[conflict] out/Mask/3.png: not written for case '3': it exists and was not written by this conversion" \
        in printed
    assert edited.read_bytes() == b"my own notes"
    assert _run(nat, "--to", "masks", "-o", out, "--overwrite") == 0
    assert edited.read_bytes() != b"my own notes" and Image.open(edited).size == (160, 120)


def test_one_coco_file_is_rebuilt_from_parts_only_for_what_changed(nat, tmp_path, capsys):
    out = tmp_path / "nat.json"
    assert _run(nat, "--to", "coco", "-o", out) == 0
    work = work_folder(out, one_file=True)
    parts = {p.name: p.stat().st_mtime_ns for p in (work / "parts").iterdir()}
    assert len(parts) == 6
    stamp = out.stat().st_mtime_ns
    capsys.readouterr()
    assert _run(nat, "--to", "coco", "-o", out) == 0
    assert "wrote 0 file(s)" in capsys.readouterr().out and out.stat().st_mtime_ns == stamp
    Image.fromarray(np.zeros((120, 160), np.uint8)).save(nat / "Mask" / "5.png")  # the expert erased case 5
    assert _run(nat, "--to", "coco", "-o", out) == 0
    assert "1 case(s) converted; 5 unchanged" in capsys.readouterr().out
    changed = [name for name, ns in parts.items() if (work / "parts" / name).stat().st_mtime_ns != ns]
    assert len(changed) == 1
    fresh = tmp_path / "fresh.json"
    registry.write(registry.read(nat), fresh, "coco")
    assert out.read_bytes() == fresh.read_bytes()  # the streamed file is write_coco's, byte for byte
    from pycocotools.coco import COCO

    coco = COCO(str(out))
    expert = next(c["id"] for c in coco.loadCats(coco.getCatIds()) if c["name"] == "tumour bed")
    assert coco.getAnnIds(imgIds=[5], catIds=[expert]) != []  # SegmentationClass still has its bed
    layers = {a["layer"] for a in coco.loadAnns(coco.getAnnIds(imgIds=[5]))}
    assert layers == {"tumour bed (SegmentationClass)"}


def test_a_case_removed_from_the_source_has_its_outputs_removed(nat, tmp_path, capsys):
    out = tmp_path / "out"
    assert _run(nat, "--to", "masks", "-o", out) == 0
    for folder in ("Images", "SegmentationClass", "Mask"):
        (nat / folder / "6.png").unlink()
    capsys.readouterr()
    assert _run(nat, "--to", "masks", "-o", out) == 0
    assert "removed 2 file(s) written before for cases no longer in the source" in capsys.readouterr().out
    assert not (out / "Mask" / "6.png").exists() and (out / "Mask" / "5.png").is_file()


def test_split_lists_and_labelmap_are_combined_from_every_case(tmp_path, capsys):
    source = build("voc-segmentation", tmp_path / "src")
    out = tmp_path / "voc"
    assert _run(source, "--to", "voc", "-o", out) == 0
    legacy = tmp_path / "legacy" / "voc"
    registry.write(registry.read(source), legacy, "voc")
    assert outputs(out) == outputs(legacy)
    assert (out / "ImageSets" / "Segmentation" / "train.txt").read_text().splitlines() != []


def test_labelmaps_of_different_class_lists_merge_as_the_writer_merges_them():
    from napari_nsclc.formats._mask_writers import _merged_schema, labelmap_text, merge_labelmaps
    from napari_nsclc.model import ClassInfo, ClassSchema

    a = ClassSchema("a", (ClassInfo(1, "tumour", "#ff0000"), ClassInfo(3, "necrosis", "#00ff00")), background=0)
    b = ClassSchema("b", (ClassInfo(1, "tumour", "#ff0000"), ClassInfo(5, "stroma", "#0000ff"),
                          ClassInfo(255, "ignore", "#ffffff")), background=0)  # fmt: skip
    merged = merge_labelmaps([labelmap_text(a), labelmap_text(b)])
    assert merged == labelmap_text(_merged_schema([a, b]))
    clash = ClassSchema("c", (ClassInfo(3, "fat", "#ffff00"),), background=0)
    assert merge_labelmaps([labelmap_text(a), labelmap_text(clash)]) is None  # one value, two names


# --------------------------------------------------------------------------- refused outputs


def test_an_output_inside_the_source_is_refused_and_nothing_is_written(nat, capsys):
    before = fx.snapshot(nat)
    for out in (nat / "converted", nat, nat / "Images" / "x"):
        assert _run(nat, "--to", "masks", "-o", out) == 2
        assert "convert never writes into the source" in capsys.readouterr().err
    assert fx.snapshot(nat) == before


def test_a_folder_holding_other_files_or_another_conversion_is_refused(nat, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "thesis.docx").write_bytes(b"not ours")
    assert _run(nat, "--to", "masks", "-o", out) == 2
    assert "already holds files" in capsys.readouterr().err
    other = tmp_path / "other"
    assert _run(nat, "--to", "masks", "-o", other) == 0
    assert _run(nat, "--to", "nsclc-nat", "-o", other) == 2
    assert "holds another conversion (nsclc-nat -> masks" in capsys.readouterr().err
    assert (out / "thesis.docx").read_bytes() == b"not ours"


def test_nothing_in_the_source_is_ever_written(tmp_path, samples, capsys):
    sources = {"nsclc-nat": build_nsclc_nat(tmp_path / "nat", 4, (64, 80)), "nucls": build("nucls", tmp_path / "s"),
               "voc-detection": build("voc-detection", tmp_path / "s"), "midog": samples / "midog" / "MIDOG.json"}
    targets = {"nsclc-nat": ["coco", "masks", "voc", "geojson"], "nucls": ["nucls", "coco", "masks"],
               "voc-detection": ["geojson", "coco"], "midog": ["voc-detection", "coco"]}  # fmt: skip
    for name, source in sources.items():
        before = fx.snapshot(source)
        for writer in targets[name]:
            out = tmp_path / "out" / f"{name}-{writer}" / ("out.json" if writer == "coco" else "out")
            assert _run(source, "--to", writer, "-o", out, "--workers", "1") == 0, (name, writer)
            assert _run(source, "--to", writer, "-o", out, "--workers", "1", "--overwrite") == 0  # and once more
        assert fx.snapshot(source) == before, name


# --------------------------------------------------------------------------- good and bad files


def test_good_files_are_converted_bad_ones_listed_with_their_reason(nat, tmp_path, capsys):
    fx.truncate(nat / "SegmentationClass" / "2.png")
    fx.truncate(nat / "Mask" / "4.png")
    before = fx.snapshot(nat)
    out = tmp_path / "out"
    assert _run(nat, "--to", "masks", "-o", out) == 1
    printed = capsys.readouterr().out
    assert "4 case(s) converted" in printed
    assert "not converted (2):" in printed
    assert "[unreadable] SegmentationClass/2.png: not converted (the image data is truncated or damaged" in printed
    assert "[unreadable] Mask/4.png: not converted (the image data is truncated or damaged" in printed
    assert sorted(outputs(out)) == [f"{folder}/{i}.png" for folder in ("Mask", "SegmentationClass")
                                    for i in (1, 3, 5, 6)]  # fmt: skip
    assert fx.snapshot(nat) == before
    # once the files are repaired, the next run converts just those two
    build_nsclc_nat(tmp_path / "repaired", n_cases=6, shape=(120, 160))
    for name in ("SegmentationClass/2.png", "Mask/4.png"):
        (nat / name).write_bytes((tmp_path / "repaired" / name).read_bytes())
    assert _run(nat, "--to", "masks", "-o", out) == 0
    assert "2 case(s) converted; 4 unchanged since the last run, skipped" in capsys.readouterr().out


def test_an_unreadable_annotation_file_is_listed_and_the_rest_converted(tmp_path, capsys):
    source = build("voc-detection", tmp_path / "src")
    xml = sorted((source / "Annotations").glob("*.xml"))[1]
    xml.write_text("<annotation><object>")  # cut off: not well-formed
    out = tmp_path / "out"
    assert _run(source, "--to", "geojson", "-o", out) == 1
    printed = capsys.readouterr().out
    assert f"[unreadable] Annotations/{xml.name}:" in printed
    assert sorted(outputs(out)) == sorted(f"{p.stem}.geojson" for p in (source / "Annotations").glob("*.xml")
                                          if p != xml)  # fmt: skip


def test_a_dataset_with_nothing_readable_is_unusable_input(tmp_path, capsys):
    source = build_nsclc_nat(tmp_path / "nat", n_cases=1, shape=(40, 50))
    for path in source.rglob("*.png"):
        fx.truncate(path, 0.1)
    assert _run(source, "--to", "coco", "-o", tmp_path / "out.json") == 2
    assert capsys.readouterr().err == (f"napari-nsclc: error: {source}: nothing could be read (Mask/1.png: the image "
                                       "is truncated or damaged: its header cannot be read)\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nat"]


# --------------------------------------------------------------------------- interrupts


def _convert_in_a_process(source: Path, writer: str, out: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "napari_nsclc.cli", "convert", str(source), "--to", writer, "-o", str(out), *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_files(folder: Path, count: int, process: subprocess.Popen, limit: float = 60) -> None:
    start = time.monotonic()
    while time.monotonic() - start < limit and process.poll() is None:
        placed = [folder / "Mask", folder / "SegmentationClass"]  # the staging folders come and go meanwhile
        if sum(len(os.listdir(f)) for f in placed if f.is_dir()) >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"the conversion ended or stalled before {count} files: {process.poll()}")


@pytest.fixture(scope="module")
def many(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    """80 NSCLC-NAT cases of 512 x 640 and their uninterrupted conversion to masks (the reference)."""
    root = tmp_path_factory.mktemp("many")
    source = build_nsclc_nat(root / "nat", n_cases=80, shape=(512, 640))
    reference = root / "reference"
    assert convert(source, "masks", reference, say=lambda line: None, log=None).exit_code == 0
    return source, outputs(reference)


@pytest.mark.parametrize("stop, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupt_leaves_only_whole_files_and_the_next_run_finishes_the_job(many, tmp_path, stop, code):
    source, reference = many
    out = tmp_path / "out"
    process = _convert_in_a_process(source, "masks", out, "--workers", "1")
    _wait_for_files(out, 20, process)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert f"interrupted ({signal.Signals(stop).name}) after" in stderr
    assert "run the same command again to convert the rest" in stderr
    written = outputs(out)
    assert 20 <= len(written) < len(reference)
    for name, data in written.items():  # every file there is whole: the same bytes as the uninterrupted run's
        assert data == reference[name], name
    hidden = sorted(p.relative_to(out).as_posix() for p in out.rglob("*")
                    if any(part.startswith(".") for part in p.relative_to(out).parts))  # fmt: skip
    assert hidden == [".nsclc-convert", ".nsclc-convert/manifest.json"]  # no staging, no temporary file
    done = Manifest.load(out / ".nsclc-convert").cases
    assert all(all(written.get(r.partition("/")[2]) for r in entry.outputs) for entry in done.values())
    again = [sys.executable, "-m", "napari_nsclc.cli", "convert", str(source), "--to", "masks", "-o", str(out),
             "--workers", "1"]  # fmt: skip
    resumed = subprocess.run(again, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(done)} unchanged since the last run, skipped" in resumed.stdout
    assert outputs(out) == reference


def test_an_interrupted_coco_file_is_not_left_half_written(many, tmp_path):
    source, _ = many
    out = tmp_path / "nat.json"
    process = _convert_in_a_process(source, "coco", out, "--workers", "1")
    parts = work_folder(out, one_file=True) / "parts"
    start = time.monotonic()
    while process.poll() is None and time.monotonic() - start < 60:
        if parts.is_dir() and len(list(parts.glob("*.part"))) >= 10:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)
    assert process.returncode == 143
    assert not out.exists()  # the file is streamed from all parts at the end, into a temporary file renamed at once
    assert [p.name for p in tmp_path.iterdir()] == [".nat.json.nsclc-convert"]
    again = [sys.executable, "-m", "napari_nsclc.cli", "convert", str(source), "--to", "coco", "-o", str(out),
             "--workers", "1"]  # fmt: skip
    resumed = subprocess.run(again, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0 and "unchanged since the last run, skipped" in resumed.stdout
    fresh = tmp_path / "fresh.json"
    registry.write(registry.read(source), fresh, "coco")
    assert out.read_bytes() == fresh.read_bytes()


# --------------------------------------------------------------------------- progress


def test_without_a_terminal_progress_is_plain_lines_on_standard_error(nat, tmp_path, capsys):
    assert _run(nat, "--to", "geojson", "-o", tmp_path / "out", "--workers", "1") == 0
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert lines[0] == "convert: 6 case(s) in this process"
    assert lines[-1].startswith("convert: 6/6 cases (100 %) in ") and lines[-1].endswith(" s")
    assert "\r" not in captured.err and "wrote 6 file(s)" in captured.out


def test_progress_lines_say_how_long_is_left():
    import io

    from napari_nsclc.batch.progress import Progress

    stream = io.StringIO()
    progress = Progress(4, "validate", stream=stream, interval=0)
    progress._start -= 10  # ten seconds ago  # noqa: SLF001
    progress.advance(1)
    progress.advance(3)
    first, last = stream.getvalue().splitlines()
    assert first.startswith("validate: 1/4 cases (25 %), 10 s elapsed, about 30 s left")
    assert last.startswith("validate: 4/4 cases (100 %) in 10 s")


def test_on_a_terminal_progress_is_a_bar_with_an_eta(nat, tmp_path):
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))  # a terminal of 100 columns
    command = [sys.executable, "-m", "napari_nsclc.cli", "convert", str(nat), "--to", "geojson", "-o",
               str(tmp_path / "out"), "--workers", "1"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=follower, env={**os.environ, "COLUMNS": "100"})
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=60)
    os.close(leader)
    shown = b"".join(chunks).decode()
    assert process.returncode == 0
    assert "\r" in shown and "6/6" in shown and "100%" in shown
    assert "<00:00" in shown  # tqdm's elapsed<remaining


def test_one_case_to_a_json_file_and_a_run_that_fails_leaves_no_folder(tmp_path, capsys):
    import socket

    from napari_nsclc.model import NsclcFormatError

    source = build("geojson", tmp_path / "src")  # one GeoJSON file: one case
    assert _run(source, "--to", "geojson", "-o", tmp_path / "one.json") == 0
    assert json.loads((tmp_path / "one.json").read_text())["type"] == "FeatureCollection"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.json", "src"]  # no work folder for one file
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    nat = build_nsclc_nat(tmp_path / "nat", n_cases=2, shape=(40, 50))
    with pytest.raises(NsclcFormatError, match="no Dask scheduler listens there"):
        convert(nat, "masks", tmp_path / "never", scheduler=f"tcp://127.0.0.1:{port}", say=lambda line: None)
    assert not (tmp_path / "never").exists()
