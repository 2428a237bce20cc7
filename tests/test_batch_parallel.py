"""The batch commands on Dask: a ``LocalCluster`` gives the same output as one process, byte for byte.

The tests start one ``distributed.LocalCluster`` of two worker processes and
pass its address as ``--scheduler``, as a user would pass a cluster's; one
test lets ``--workers 2`` start its own. ``convert`` output files, ``validate``
and ``stats`` JSON are compared with ``--workers 1`` (everything in this
process). A scheduler that never answers, or refuses, gets one line within
the 10 s the issue allows.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from pathlib import Path

import pytest

from napari_nsclc.cli import main
from napari_nsclc.testing import build
from napari_nsclc.testing.segmentation import build_nsclc_nat


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as local:  # fmt: skip
        yield local.scheduler_address


@pytest.fixture(scope="module")
def datasets(tmp_path_factory, samples) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("parallel")
    built = {name: build(name, root / "built") for name in ("nucls", "voc-detection", "ignite-he", "lung-pet-ct-dx",
                                                            "ocelot", "voc-segmentation")}  # fmt: skip
    built["nsclc-nat"] = build_nsclc_nat(root / "nat", n_cases=24, shape=(160, 200))
    built["midog"] = samples / "midog" / "MIDOG.json"
    return built


def contents(out: Path) -> dict[str, bytes]:
    if out.is_file():
        return {out.name: out.read_bytes()}
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and ".nsclc-convert" not in p.relative_to(out).parts}  # fmt: skip


#: (dataset, writer): every way of converting (case by case, in parts, whole), from several layouts.
PAIRS = [("nsclc-nat", "coco"), ("nsclc-nat", "masks"), ("nsclc-nat", "voc"), ("nsclc-nat", "nsclc-nat"),
         ("nucls", "nucls"), ("nucls", "coco"), ("voc-detection", "geojson"), ("ignite-he", "masks"),
         ("lung-pet-ct-dx", "voc-detection"), ("ocelot", "ocelot"), ("voc-segmentation", "voc"),
         ("midog", "voc-detection"), ("midog", "coco")]  # fmt: skip


def test_convert_on_a_cluster_writes_what_one_process_writes(cluster, datasets, tmp_path, capsys):
    for name, writer in PAIRS:
        one_file = writer == "coco"
        here = tmp_path / f"{name}-{writer}-here" / ("out.json" if one_file else "out")
        there = tmp_path / f"{name}-{writer}-cluster" / ("out.json" if one_file else "out")
        source = datasets[name]
        assert main(["convert", str(source), "--to", writer, "-o", str(here), "--workers", "1"]) == 0, (name, writer)
        assert main(["convert", str(source), "--to", writer, "-o", str(there), "--scheduler", cluster]) == 0
        assert contents(here) == contents(there), (name, writer)
        assert len(contents(here)) >= 1
    err = capsys.readouterr().err
    assert f"convert: 24 case(s) on the Dask cluster at {cluster} (2 worker(s))" in err


def test_workers_two_start_their_own_cluster_and_give_the_same_files(datasets, tmp_path, capsys):
    source = datasets["nsclc-nat"]
    assert main(["convert", str(source), "--to", "coco", "-o", str(tmp_path / "one.json"), "--workers", "1"]) == 0
    assert main(["convert", str(source), "--to", "coco", "-o", str(tmp_path / "two.json"), "--workers", "2"]) == 0
    assert "convert: 24 case(s) on 2 local worker processes" in capsys.readouterr().err
    assert (tmp_path / "one.json").read_bytes() == (tmp_path / "two.json").read_bytes()


@pytest.mark.parametrize("command", ["validate", "stats"])
def test_validate_and_stats_on_a_cluster_print_what_one_process_prints(command, cluster, datasets, capsys):
    for name in ("nsclc-nat", "nucls", "ignite-he", "midog"):
        source = str(datasets[name])
        code = main([command, source, "--json", "--workers", "1"])
        here = capsys.readouterr().out
        assert main([command, source, "--json", "--scheduler", cluster]) == code
        there = capsys.readouterr().out
        assert there == here, (command, name)
        assert json.loads(here)["format"] == ("nsclc-nat" if name == "nsclc-nat" else json.loads(here)["format"])


def test_a_scheduler_that_never_answers_is_one_line_within_ten_seconds(datasets, capsys):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # connections are taken by the kernel, and nobody ever speaks
    address = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
    try:
        start = time.monotonic()
        code = main(["validate", str(datasets["nsclc-nat"]), "--scheduler", address])
        elapsed = time.monotonic() - start
    finally:
        silent.close()
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and elapsed <= 10, elapsed
    assert err == [f"napari-nsclc: error: {address}: no Dask scheduler answered within 8 s (no reply)"]


def test_a_refused_or_malformed_scheduler_address_is_one_line(datasets, capsys):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    start = time.monotonic()
    assert main(["stats", str(datasets["nsclc-nat"]), "--scheduler", f"tcp://127.0.0.1:{port}"]) == 2
    assert time.monotonic() - start < 1  # a refusal is said at once
    assert capsys.readouterr().err == (f"napari-nsclc: error: tcp://127.0.0.1:{port}: no Dask scheduler listens there "
                                       "(Connection refused)\n")
    assert main(["validate", str(datasets["nsclc-nat"]), "--scheduler", "tcp//nowhere"]) == 2
    assert "is not a Dask scheduler address such as tcp://host:8786" in capsys.readouterr().err
    assert main(["convert", str(datasets["nsclc-nat"]), "--to", "coco", "-o", "x.json", "--workers", "0"]) == 2
    assert "--workers: must be 1 or more, not 0" in capsys.readouterr().err
