"""napari-nsclc review status: a review store's queue, as text and JSON; bad input is one line and exit code 2."""

from __future__ import annotations

import json

import pytest

from napari_nsclc.cli import main
from napari_nsclc.review import open_store


@pytest.fixture
def store_path(tmp_path):
    path = tmp_path / "review.db"
    with open_store(path) as store:
        store.set_supervisors(["dr_smith"], by="dr_smith")
        for case in ("1", "2", "3"):
            store.add_case("NSCLC-NAT", case, by="dr_smith")
        store.assign("2", "alice", by="dr_smith")
        store.assign("3", "bob", by="dr_smith")
        store.transition("2", "in_progress", by="alice")
        store.transition("2", "submitted", by="alice")
        store.transition("3", "in_progress", by="bob")
    return path


def test_status_prints_every_case_then_the_counts(store_path, capsys):
    assert main(["review", "status", str(store_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{store_path}: 3 case(s)"
    assert [line.split(" (")[0] for line in lines[1:4]] == [
        "  NSCLC-NAT 1: new", "  NSCLC-NAT 2: submitted", "  NSCLC-NAT 3: in_progress"]
    assert "assigned to nobody;" in lines[1] and "assigned to alice;" in lines[2] and lines[2].endswith("by alice)")
    assert lines[4] == "  new 1, in_progress 1, submitted 1, changes_requested 0, approved 0"


def test_status_filters_and_json(store_path, capsys):
    assert main(["review", "status", str(store_path), "--state", "submitted", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(c["case"], c["state"], c["annotators"], c["changed_by"]) for c in report["cases"]] == [
        ("2", "submitted", ["alice"], "alice")]
    assert report["states"]["submitted"] == 1 and sum(report["states"].values()) == 1
    assert main(["review", "status", str(store_path), "--annotator", "bob", "--json"]) == 0
    assert [c["case"] for c in json.loads(capsys.readouterr().out)["cases"]] == ["3"]


def test_a_missing_store_or_an_unknown_state_is_one_line_and_exit_2(tmp_path, store_path, capsys):
    missing = tmp_path / "none.db"
    assert main(["review", "status", str(missing)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"napari-nsclc: error: {missing}: does not exist (give a review.db file or a database URL)")
    assert not missing.exists()  # status never creates a store
    assert main(["review", "status", str(store_path), "--state", "done"]) == 2
    assert "'done' is not a review state" in capsys.readouterr().err


def test_supervisors_are_printed_set_added_and_removed(store_path, capsys):
    assert main(["review", "supervisors", str(store_path)]) == 0
    assert capsys.readouterr().out == f"{store_path}: supervisors: dr_smith\n"
    assert main(["review", "supervisors", str(store_path), "--add", "dr_jones"]) == 0
    assert capsys.readouterr().out == f"{store_path}: supervisors: dr_jones, dr_smith\n"
    assert main(["review", "supervisors", str(store_path), "--remove", "dr_smith"]) == 0
    assert capsys.readouterr().out == f"{store_path}: supervisors: dr_jones\n"
    with open_store(store_path) as store:
        assert store.supervisors() == ("dr_jones",)
    assert main(["review", "supervisors", str(store_path), "--remove", "nobody_here"]) == 2
    assert capsys.readouterr().err.strip() == f"napari-nsclc: error: {store_path}: nobody_here is not a supervisor here"
    assert main(["review", "supervisors", str(store_path), "--set", "a", "b"]) == 0
    assert capsys.readouterr().out.endswith("supervisors: a, b\n")


def test_supervisors_of_a_new_store_create_it_but_reading_never_does(tmp_path, capsys):
    missing = tmp_path / "review.db"
    assert main(["review", "supervisors", str(missing)]) == 2
    assert "does not exist" in capsys.readouterr().err and not missing.exists()
    assert main(["review", "supervisors", str(missing), "--set", "dr_smith"]) == 0
    assert capsys.readouterr().out.splitlines() == [f"created the review store {missing}",
                                                    f"{missing}: supervisors: dr_smith"]
    with open_store(missing) as store:
        assert store.supervisors() == ("dr_smith",)
