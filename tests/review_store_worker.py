"""A process writing to a review store, run as a subprocess by ``test_review_store.py``.

``python review_store_worker.py load URL NAME SEED OPS``
    Prints ``ready``, waits for a line on stdin (so that the processes start
    together), then makes OPS legal changes to the store's cases: state
    changes and comments, chosen at random among the cases, retrying when
    another process moved the case first. Prints a JSON summary.

``python review_store_worker.py hang URL CASE``
    Starts submitting CASE and stops inside the transaction, after the
    state row is updated and the comment written, before the commit; prints
    ``inside`` and sleeps until killed.
"""

from __future__ import annotations

import json
import random
import sys
import time

from napari_nsclc.review.states import APPROVED, TRANSITIONS, IllegalTransition
from napari_nsclc.review.store import open_store


def load(url: str, name: str, seed: int, ops: int) -> None:
    store = open_store(url)
    cases = [entry.case for entry in store.queue()]
    rng = random.Random(seed)
    print("ready", flush=True)
    sys.stdin.readline()
    counts = {"transition": 0, "comment": 0, "raced": 0}
    started = time.perf_counter()
    while counts["transition"] + counts["comment"] < ops:
        case = rng.choice(cases)
        if rng.random() < 0.3:
            store.comment(case, name, f"{name} {counts['comment']}", position=(rng.random(), 1.0), slice_index=2)
            counts["comment"] += 1
            continue
        # never approve: approved is final, and the cases must keep moving
        choices = sorted(TRANSITIONS[store.state(case)] - {APPROVED})
        try:
            store.transition(case, rng.choice(choices), name)
        except IllegalTransition:
            counts["raced"] += 1  # the other process moved the case between our read and our write
            continue
        counts["transition"] += 1
    counts["seconds"] = time.perf_counter() - started
    store.close()
    print(json.dumps(counts), flush=True)


def hang(url: str, case: str) -> None:
    store = open_store(url)
    log = store._log

    def log_then_hang(*args, **kwargs):
        event = log(*args, **kwargs)  # the last write of the transaction: only the commit is missing
        print("inside", flush=True)
        time.sleep(600)
        return event

    store._log = log_then_hang
    store.transition(case, "submitted", "alice", comment="never committed")


if __name__ == "__main__":
    command, url, *rest = sys.argv[1:]
    if command == "load":
        load(url, rest[0], int(rest[1]), int(rest[2]))
    elif command == "hang":
        hang(url, rest[0])
    else:
        raise SystemExit(f"unknown command {command!r}")
