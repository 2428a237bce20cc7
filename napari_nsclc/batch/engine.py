"""Running a per-case step over a whole dataset: in this process, on local worker processes, or on a Dask cluster.

Every batch command (``validate``, ``convert``, ``stats``) is a *map* over
the cases of one dataset followed by a *reduce* in the calling process. The
map step is a plain module-level function ``step(reading, indices, *args)``
that receives the dataset as read (:class:`~napari_nsclc.batch.sources.Reading`)
and the indices of the cases to work on, and returns something small
(findings, counts, the names of the files it wrote).

A :class:`Runner` runs that step on batches of cases:

* ``Runner(workers=1)``: here, in order, on the cases already read;
* ``Runner(workers=N)``: on a :class:`distributed.LocalCluster` of ``N``
  processes with one thread each, started and stopped by the runner;
* ``Runner(scheduler="tcp://host:8786")``: on an existing ``dask.distributed``
  cluster, whose workers must see the dataset (and the output folder) at the
  same paths.

Workers never receive cases: a case may hold open files or closures that do
not pickle, and shipping pixels costs more than reading them. A task carries
the dataset's path and format (a :class:`Source`); each worker process reads
the dataset once per run (:func:`open_source`, cached) and picks its cases by
index. The reading is deterministic, so every process sees the same cases in
the same order, and the task checks the names it was sent against the ones it
read. Results come back as batches finish; callers reduce them in case order,
so the output does not depend on which worker did what. No napari or Qt import.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import signal
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import registry
from ..model import NsclcFormatError
from .progress import Progress
from .sources import Reading, read_source

__all__ = [
    "CONNECT_TIMEOUT",
    "MIN_CASES_PER_WORKER",
    "check_scheduler",
    "Runner",
    "Source",
    "default_workers",
    "make_batches",
    "open_source",
    "run_step",
]

#: Seconds to wait for a Dask scheduler to answer before giving up with a message (the issue allows 10).
CONNECT_TIMEOUT = 8
#: Without ``--workers``, a dataset gets one worker process per this many cases (up to the CPU count):
#: starting a worker process costs about a second, more than a small dataset takes in this process.
MIN_CASES_PER_WORKER = 100
#: Batches per worker: enough that the workers finish together and progress moves, few enough that
#: the scheduler's cost per task (about a millisecond) stays small.
BATCHES_PER_WORKER = 16
#: Largest batch, in cases.
MAX_BATCH = 32
#: Dask starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536``, to give memory back to the system at once.
#: Setting it also freezes glibc's mmap threshold at 128 KiB, so every mask-sized array (4 MiB for 2048²) is
#: mapped and unmapped afresh, page faults and all: decoding and tracing masks ran 2x slower in a worker than
#: here (measured). Our workers hold one case at a time, so the local cluster's workers keep glibc's default.
WORKER_ENVIRONMENT = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    # the statistical profiler samples each worker's stack every 10 ms for the dashboard, which nobody opens here
    "distributed.worker.profile.enabled": False,
    # A worker's event loop wakes for its own monitors 50 times a second (the tick every 20 ms, memory every
    # 100 ms). Each wake takes the GIL from the thread doing the work; when every core is busy the loop's thread
    # must first wait for a core, and the work waits with it: two workers on two cores ran 20 % slower (measured).
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
}


@dataclass(frozen=True)
class Source:
    """What a worker needs to read the same cases as the caller.

    Attributes
    ----------
    path : str
        The dataset folder or file, absolute.
    format : str
        The registry name of its reader (``"nsclc-nat"``).
    run : str
        A token of this run: a worker reads the dataset again for a new run,
        in case it changed between two runs on a long-lived cluster.
    """

    path: str
    format: str
    run: str

    @classmethod
    def of(cls, path: str | Path, format: str) -> Source:
        """The source for ``path`` read as ``format``, with a new run token."""
        return cls(str(Path(path).resolve()), format, secrets.token_hex(8))


#: Readings by source, newest last. A worker process keeps the last two (a run's dataset, at most one more).
_READINGS: OrderedDict[Source, Reading] = OrderedDict()
_KEEP = 2


def remember(source: Source, reading: Reading) -> None:
    """Use ``reading`` for ``source`` in this process (the caller has read it already)."""
    _READINGS[source] = reading
    _READINGS.move_to_end(source)
    while len(_READINGS) > _KEEP:
        _READINGS.popitem(last=False)


def forget(source: Source) -> None:
    """Drop this process's reading of ``source``."""
    _READINGS.pop(source, None)


def open_source(source: Source) -> Reading:
    """The cases of ``source``, read once per process and run (:func:`~napari_nsclc.batch.sources.read_source`)."""
    reading = _READINGS.get(source)
    if reading is None:
        reading = read_source(Path(source.path), registry.get_format(source.format))
        remember(source, reading)
    return reading


def _run_task(step: Callable, source: Source, indices: Sequence[int], names: Sequence[str], args: tuple) -> Any:
    """What runs on a worker: read the source (once), check the cases are the caller's, run ``step``."""
    reading = open_source(source)
    found = [reading.cases[i].name if i < len(reading.cases) else None for i in indices]
    if list(found) != list(names):
        raise NsclcFormatError(source.path, "changed while it was being processed (a worker read other cases); "
                                            "run the command again")  # fmt: skip
    return step(reading, list(indices), *args)


def default_workers(cases: int) -> int:
    """Worker processes for a dataset of ``cases`` cases when none are asked for: one per CPU, if worth it."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cpus, cases // MIN_CASES_PER_WORKER))


def make_batches(count: int, workers: int) -> list[list[int]]:
    """Case indices ``0 .. count - 1`` cut into consecutive batches for ``workers`` workers."""
    if count <= 0:
        return []
    size = 1 if workers <= 1 else max(1, min(MAX_BATCH, math.ceil(count / (workers * BATCHES_PER_WORKER))))
    if workers <= 1:
        size = max(1, min(MAX_BATCH, math.ceil(count / 100)))  # only for progress: no task cost in-process
    return [list(range(start, min(count, start + size))) for start in range(0, count, size)]


class Runner:
    """Runs a per-case step over batches of cases, here or on Dask workers.

    Use it as a context manager: entering starts the local cluster or
    connects to the scheduler, leaving stops or disconnects.

    Parameters
    ----------
    workers : int
        Worker processes of a local cluster; 1 runs everything in this process.
    scheduler : str, optional
        Address of an existing ``dask.distributed`` scheduler
        (``tcp://host:8786``); ``workers`` is then ignored.

    Raises
    ------
    NsclcFormatError
        On entering, when the scheduler does not answer within
        :data:`CONNECT_TIMEOUT` seconds or the local cluster cannot start.
    """

    def __init__(self, workers: int = 1, scheduler: str | None = None):
        if workers < 1:
            raise NsclcFormatError("--workers", f"must be 1 or more, not {workers}")
        self.workers = workers
        self.scheduler = scheduler
        self._client = None
        self._cluster = None

    @property
    def local(self) -> bool:
        """Whether steps run in this process."""
        return self.scheduler is None and self.workers == 1

    def slots(self) -> int:
        """Tasks that run at once: the local workers, or the threads of the cluster."""
        if self.scheduler is None or self._client is None:
            return self.workers
        workers = self._client.scheduler_info().get("workers", {})
        return max(1, sum(int(w.get("nthreads", 1)) for w in workers.values()))

    def describe(self) -> str:
        """Where the steps run, for the log: ``"on 2 local worker processes"``."""
        if self.scheduler is not None:
            count = len(self._client.scheduler_info().get("workers", {})) if self._client is not None else 0
            return f"on the Dask cluster at {self.scheduler} ({count} worker(s))"
        return "in this process" if self.local else f"on {self.workers} local worker processes"

    def __enter__(self) -> Runner:
        if self.local:
            return self
        import dask
        from distributed import Client, LocalCluster

        if self.scheduler is not None:
            self._client = _connect(self.scheduler)
            return self
        try:
            with _workers_ignore_ctrl_c(), dask.config.set(WORKER_ENVIRONMENT):
                self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                             dashboard_address=None, silence_logs=logging.ERROR)  # fmt: skip
            self._client = Client(self._cluster, set_as_default=False)
        except Exception as error:  # noqa: BLE001 - distributed raises several kinds when processes cannot start
            self.close()
            raise NsclcFormatError("--workers", f"cannot start {self.workers} worker processes: {error}") from error
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Stop the local cluster, or disconnect from the scheduler."""
        client, cluster, self._client, self._cluster = self._client, self._cluster, None, None
        for thing in (client, cluster):
            if thing is not None:
                try:
                    thing.close()
                except Exception:  # noqa: BLE001, S110 - closing after an interrupt may find it half gone
                    pass

    def map(
        self, step: Callable, source: Source, reading: Reading, batches: Sequence[Sequence[int]], *args: Any
    ) -> Iterator[tuple[int, Any]]:
        """Run ``step(reading, indices, *args)`` on each batch; yield ``(batch number, result)`` as they finish.

        In this process the batches run in order on ``reading``; on workers they
        run in any order, and each worker reads ``source`` itself.
        """
        if self.local:
            for number, indices in enumerate(batches):
                yield number, step(reading, list(indices), *args)
            return
        from distributed import as_completed

        futures = {}
        for number, indices in enumerate(batches):
            names = [reading.cases[i].name for i in indices]
            future = self._client.submit(_run_task, step, source, list(indices), names, args, pure=False,
                                         key=f"{getattr(step, '__name__', 'step')}-{source.run}-{number}")  # fmt: skip
            futures[future] = number
        try:
            for future in as_completed(futures, loop=self._client.loop):
                number = futures.pop(future)
                yield number, future.result()
                future.release()
        finally:
            if futures:  # interrupted, or a step failed: the rest is not wanted
                self._client.cancel(list(futures))


@contextmanager
def _workers_ignore_ctrl_c() -> Iterator[None]:
    """Start worker processes with SIGINT ignored (they inherit it), then restore this process's handler.

    Ctrl-C in a terminal signals every process of the foreground group: the
    workers would each print a traceback. This process stops them instead.
    """
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def check_scheduler(address: str) -> None:
    """Raise a one-line :class:`NsclcFormatError` within :data:`CONNECT_TIMEOUT` seconds unless a Dask
    scheduler answers at ``address``.

    ``Client(timeout=...)`` bounds opening the connection, not the handshake
    after it: a server that accepts and then says nothing would hold it for
    ever, and a refused port is retried until the timeout. So a TCP address
    is first dialled with a plain socket (a refusal is reported at once), then
    the scheduler is asked who it is, with a deadline.
    """
    import asyncio
    import socket
    import time

    from distributed.comm import parse_address, parse_host_port

    start = time.monotonic()
    try:
        scheme, location = parse_address(address)
        if scheme == "tcp":
            with socket.create_connection(parse_host_port(location), timeout=CONNECT_TIMEOUT):
                pass
        left = CONNECT_TIMEOUT - (time.monotonic() - start)
        asyncio.run(asyncio.wait_for(_identity(address, left), left))
    except ConnectionRefusedError as error:
        raise NsclcFormatError(address, f"no Dask scheduler listens there ({error.strerror or error})") from error
    except (OSError, TimeoutError, asyncio.TimeoutError) as error:
        reason = str(error) or "no reply"
        raise NsclcFormatError(address, f"no Dask scheduler answered within {CONNECT_TIMEOUT} s ({reason})") from error
    except ValueError as error:  # a malformed address
        raise NsclcFormatError(address, f"is not a Dask scheduler address such as tcp://host:8786 ({error})") from error


async def _identity(address: str, timeout: float) -> dict:
    """The scheduler's answer to ``identity``: proof that a Dask scheduler listens at ``address``."""
    from distributed.core import rpc

    async with rpc(address, timeout=timeout) as scheduler:
        return await scheduler.identity()


def _connect(address: str):
    """A client of the scheduler at ``address`` (:func:`check_scheduler` first, so it fails in time)."""
    from distributed import Client

    check_scheduler(address)
    try:
        return Client(address, timeout=f"{CONNECT_TIMEOUT}s", set_as_default=False)
    except (OSError, TimeoutError) as error:
        raise NsclcFormatError(address, f"no Dask scheduler answered within {CONNECT_TIMEOUT} s ({error})") from error


def run_step(
    step: Callable,
    source: Source,
    reading: Reading,
    *args: Any,
    workers: int | None = None,
    scheduler: str | None = None,
    label: str = "",
    progress: Progress | None = None,
    log: Callable[[str], None] | None = None,
) -> Iterator[tuple[list[int], Any]]:
    """Map ``step`` over every case of ``reading``; yield ``(indices, result)`` per batch as batches finish.

    Parameters
    ----------
    step : callable
        ``step(reading, indices, *args) -> result``, a module-level function.
    source : Source
        How workers read the dataset (``Source.of(path, format)``).
    reading : Reading
        The dataset as this process read it.
    workers : int, optional
        Worker processes; by default :func:`default_workers`. 1 runs here.
    scheduler : str, optional
        An existing Dask scheduler's address; ``workers`` is then ignored.
    label : str
        The command, for the progress bar and the log.
    progress : Progress, optional
        Advanced by each batch's size; a new one on standard error by default.
    log : callable, optional
        Receives one line saying where the work runs.

    The cluster is stopped, and unfinished batches cancelled, when the caller
    stops iterating (an interrupt, an error).
    """
    count = len(reading.cases)
    workers = workers if workers is not None else default_workers(count)
    with Runner(workers, scheduler) as runner:
        batches = make_batches(count, runner.slots())
        if log is not None:
            log(f"{label}: {count:,} case(s) {runner.describe()}")
        own = progress is None
        bar = progress if progress is not None else Progress(count, label)
        try:
            for number, result in runner.map(step, source, reading, batches, *args):
                yield batches[number], result
                bar.advance(len(batches[number]))
        finally:
            if own:
                bar.close()
