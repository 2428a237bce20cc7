"""Run a few parsing jobs in child Python processes, with progress.

``multiprocessing``'s spawn and forkserver start methods re-import the
caller's ``__main__``, which breaks scripts without an
``if __name__ == "__main__"`` guard, and fork is unsafe once napari's Qt is
running. So each job runs in a plain ``python -c`` child: it gets its
function and arguments as a pickle on stdin, reports progress as lines on
stderr, and leaves its result as a pickle in a temporary file.
"""

from __future__ import annotations

import pickle
import selectors
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["run"]

_CHILD = "from napari_nsclc.nuclei._workers import _child; _child()"


def _child() -> None:
    function, args, out = pickle.load(sys.stdin.buffer)

    def progress(done: int) -> None:
        sys.stderr.write(f"progress {done}\n")
        sys.stderr.flush()

    result = function(*args, progress=progress)
    with open(out, "wb") as handle:
        pickle.dump(result, handle, protocol=pickle.HIGHEST_PROTOCOL)


def run(function: Callable, jobs: list[tuple], progress: Callable[[int], None] | None = None) -> list:
    """``[function(*args, progress=...) for args in jobs]``, each job in its own child process, all at once.

    This process only waits: inside napari, parsing here measured 40 % slower
    than in a fresh process (1.65 s against 1.2 s for 100k features), so
    every job goes to a child. ``function`` must be importable (a
    module-level function); it calls ``progress(done)`` with its own count,
    and ``progress`` here receives the sum over jobs. A child that fails
    raises ``RuntimeError`` with its last error line.
    """
    with tempfile.TemporaryDirectory(prefix="nsclc-workers-") as folder:
        children, done, errors = [], [0] * len(jobs), [""] * len(jobs)
        selector = selectors.DefaultSelector()
        for k, args in enumerate(jobs):
            out = Path(folder) / f"{k}.pickle"
            child = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE,
                                     stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
            child.stdin.write(pickle.dumps((function, args, str(out)), protocol=pickle.HIGHEST_PROTOCOL))
            child.stdin.close()
            selector.register(child.stderr, selectors.EVENT_READ, k)
            children.append((child, out))

        open_streams = len(children)
        while open_streams:
            for key, _ in selector.select():
                k = key.data
                line = key.fileobj.readline()
                if not line:
                    selector.unregister(key.fileobj)
                    open_streams -= 1
                    continue
                text = line.decode("utf-8", "replace").strip()
                if text.startswith("progress "):
                    done[k] = int(text.split()[1])
                    if progress is not None:
                        progress(sum(done))
                elif text:
                    errors[k] = text
        results = []
        for k, (child, out) in enumerate(children):
            if child.wait() != 0 or not out.exists():
                raise RuntimeError(f"a parsing process failed: {errors[k] or f'exit code {child.returncode}'}")
            with open(out, "rb") as handle:
                results.append(pickle.load(handle))
        return results
