"""``napari-nsclc convert`` on whole datasets: in parallel, resumable, safe to interrupt, never writing into the source.

:func:`convert` reads the source (past files it cannot read, which are listed),
says what the conversion keeps and loses (:func:`napari_nsclc.conversion.plan`)
before writing anything, and then writes in one of three ways:

* **case by case** for writers into a folder whose files each depend on one
  case (``FormatSpec.per_case``: masks, VOC, GeoJSON, the dataset layouts).
  Each case is written on its own, on any worker, into a staging folder
  (:mod:`napari_nsclc.batch.convert_cases`); this process moves its files into
  the output with one atomic rename each. Files that several cases write
  (split lists, ``labelmap.txt``) are combined by the writer's
  ``merged_files`` rules once every case is done.
* **in parts** for one COCO file from sources not read from COCO: each case's
  part is made on any worker, then the file is streamed from the parts in
  case order (:mod:`napari_nsclc.formats._coco_parts`).
* **whole**, in this process, for the other writers of one file (a COCO file
  keeping a COCO source's ids, an HDF5 file, one case's file): the writer
  writes the output at once, atomically, as ``registry.write`` does; such an
  output is done or not, so it keeps no manifest.

The output is the same, byte for byte, wherever and in whatever order the
cases ran. A manifest (:mod:`napari_nsclc.batch.manifest`) records each case's
source and output checksums, so running the same command again skips what is
done. An interrupt (SIGINT, SIGTERM) stops the workers, records what is done
and leaves no partial file in the output. No napari or Qt import.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .. import conversion, registry
from .._atomic import atomic_write_text
from ..model import Case, NsclcFormatError
from . import convert_cases as steps
from .engine import Source, run_step
from .manifest import Manifest, file_sha256, work_folder
from .problems import Problem, display_path
from .progress import Progress
from .sources import read_source

__all__ = ["ConvertResult", "Interrupted", "convert"]

#: The mode of writers of one output file from all cases at once.
WHOLE = "whole"


class Interrupted(Exception):  # noqa: N818 - it is what happened, not an error of the input
    """A conversion stopped by SIGINT or SIGTERM; what was finished is kept and recorded.

    Attributes
    ----------
    signal_number : int
    done, total : int
        Cases finished (converted or skipped) and cases in all.
    """

    def __init__(self, signal_number: int, done: int, total: int):
        self.signal_number, self.done, self.total = signal_number, done, total
        name = signal.Signals(signal_number).name
        super().__init__(f"interrupted ({name}) after {done:,} of {total:,} case(s); run the same command again "
                         "to convert the rest")  # fmt: skip

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports a process stopped by it (130 for SIGINT)."""
        return 128 + self.signal_number


@dataclass
class ConvertResult:
    """What :func:`convert` did.

    Attributes
    ----------
    output : Path
    written : list of str
        Files written or replaced, relative to the output's parent folder.
    converted, skipped, empty : int
        Cases converted, unchanged since the last run (skipped), and with
        nothing the writer writes.
    problems : list of Problem
        Source files that could not be read and cases that could not be
        written, each with the reason; the rest was converted.
    removed : list of str
        Files this conversion had written for cases no longer in the source.
    how : str
        ``"case by case"``, ``"in parts"`` or ``"whole"``.
    """

    output: Path
    written: list[str] = field(default_factory=list)
    converted: int = 0
    skipped: int = 0
    empty: int = 0
    problems: list[Problem] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    how: str = ""

    @property
    def exit_code(self) -> int:
        """0 when every case was converted, 1 when some source file or case was not."""
        return 1 if self.problems else 0

    def summary(self) -> list[str]:
        """The lines the CLI prints once the conversion is done."""
        counts = [f"{self.converted:,} case(s) converted"]
        if self.skipped:
            counts.append(f"{self.skipped:,} unchanged since the last run, skipped")
        if self.empty:
            counts.append(f"{self.empty:,} with nothing to write")
        lines = [f"wrote {len(self.written):,} file(s) to {self.output} ({'; '.join(counts)})"]
        if self.removed:
            lines.append(f"removed {len(self.removed)} file(s) written before for cases no longer in the source")
        if self.problems:
            lines.append(f"not converted ({len(self.problems)}):")
            lines += [f"  [{p.kind}] {p.message}" for p in self.problems]
        return lines


def convert(
    source: str | Path,
    to_format: str,
    output: str | Path,
    *,
    from_format: str | None = None,
    overwrite: bool = False,
    strict: bool = False,
    workers: int | None = 1,
    scheduler: str | None = None,
    say: Callable[[str], None] = print,
    log: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> ConvertResult:
    """Convert the dataset or file ``source`` to ``to_format`` at ``output``.

    Parameters
    ----------
    source : path
        A dataset folder or a file.
    to_format : str
        A writable format's registry name (``"coco"``).
    output : path
        The file or folder to write; never inside ``source``.
    from_format : str, optional
        Read ``source`` as this format instead of detecting it.
    overwrite : bool
        Replace files in ``output`` that this conversion did not write, and
        convert every case again, ignoring the manifest.
    strict : bool
        Refuse a conversion that would lose anything.
    workers, scheduler
        Where the cases are converted (:func:`napari_nsclc.batch.engine.run_step`).
    say : callable
        Receives the plan's lines (before anything is written).
    log, progress
        Where the work runs, and how far it is (on standard error by default).

    Returns
    -------
    ConvertResult

    Raises
    ------
    NsclcFormatError
        For unusable input, a refused conversion, an output inside the
        source, or an output that holds files of something else.
    Interrupted
        On SIGINT or SIGTERM, once what was finished is recorded.
    """
    source, output = Path(source), Path(output)
    spec = registry.get_format(to_format)
    if spec.write is None:
        raise NsclcFormatError(output, f"napari-nsclc cannot write {spec.title}")
    if not source.exists():
        raise NsclcFormatError(source, "does not exist")
    _refuse_output_inside(source, output)
    source_spec = registry.get_format(from_format) if from_format else registry.detect(source)
    reading = read_source(source, source_spec)
    if not reading.cases:
        first = reading.problems[0].message if reading.problems else "no case to convert"
        raise NsclcFormatError(source, f"nothing could be read ({first})")
    cases = reading.cases
    for case in cases if log is not None else ():
        for warning in case.provenance.warnings:
            log(f"warning: {warning}")
    plan = conversion.plan(cases, spec, source=f"{source.name} ({source_spec.name})")
    if plan.refusal:
        raise NsclcFormatError(source, f"refused as {spec.name}: {plan.refusal}")
    for line in plan.describe():
        say(line)
    if strict and plan.verdict == conversion.LOSSY:
        raise NsclcFormatError(output, f"refused (--strict): the conversion would lose {'; '.join(plan.lost())}")

    one_file = output.suffix.lower() in spec.extensions
    mode = _mode(spec, one_file, cases)
    result = ConvertResult(output, problems=list(reading.problems))
    if mode == WHOLE:
        result.how = "whole"
        with _signals_raise_interrupt() as caught:
            try:
                return _convert_whole(cases, spec, output, plan, overwrite, result)
            except KeyboardInterrupt as stop:  # the writer's atomic writes have left no partial file
                raise Interrupted(caught.get("signal", signal.SIGINT), 0, len(cases)) from stop
    result.how = "case by case" if mode == steps.CASES else "in parts"
    work = work_folder(output, one_file=mode == steps.PARTS)
    job_record = {"source": str(source.resolve()), "from": source_spec.name, "to": spec.name,
                  "output": str(output.resolve()), "version": 1}  # fmt: skip
    prior = None if overwrite else Manifest.load(work)
    if prior is not None and not prior.same_job(job_record):
        raise NsclcFormatError(output, f"holds another conversion ({prior.job.get('from')} -> {prior.job.get('to')} "
                                       f"of {prior.job.get('source')}); pass --overwrite to replace it")  # fmt: skip
    if prior is None and not overwrite:
        _refuse_foreign_output(output, work, one_file=mode == steps.PARTS)
    source_id = Source.of(source, source_spec.name)
    job = steps.Job(spec.name, mode, str(output.resolve()), str(work.resolve()), source_id.run, fresh=overwrite,
                    image_root=_image_root(cases, mode))  # fmt: skip
    created = [folder for folder in (output, work) if not folder.exists()]
    _make_folder(job.staging, output)
    state = _Run(job, spec, prior, overwrite, result, Manifest(job_record), _protected(source, cases))
    keys = steps.case_keys(cases)
    try:
        with _signals_raise_interrupt() as caught:
            try:
                for _indices, outcomes in run_step(steps.convert_step, source_id, reading, job, workers=workers,
                                                   scheduler=scheduler, label="convert", progress=progress,
                                                   log=log):  # fmt: skip
                    for outcome in outcomes:
                        state.take(outcome)
                state.finish(cases)
            except BaseException as stop:  # what is finished is recorded, whatever stopped the rest
                if state.done:
                    state.keep_unreached(keys)
                    state.manifest.save(work)
                if isinstance(stop, KeyboardInterrupt):
                    raise Interrupted(caught.get("signal", signal.SIGINT), state.done, len(cases)) from stop
                raise
        state.manifest.save(work)
    finally:
        shutil.rmtree(job.staging.parent, ignore_errors=True)
        for folder in reversed(created):  # a run that wrote nothing leaves no empty folder behind
            with contextlib.suppress(OSError):
                folder.rmdir()
    return result


def _convert_whole(cases: list[Case], spec: registry.FormatSpec, output: Path, plan: conversion.Plan,
                   overwrite: bool, result: ConvertResult) -> ConvertResult:
    """One file from all cases at once, in this process, as the writer writes it (atomically, file by file)."""
    written = registry.write(cases, output, spec.name, overwrite=overwrite, plan=plan)
    result.written = [display_path(path, output.parent) for path in written]
    result.converted = len(cases)
    return result


def _make_folder(folder: Path, output: Path) -> None:
    """Create the staging folder; a failure names the output (a read-only disk, a full one)."""
    try:
        shutil.rmtree(folder.parent, ignore_errors=True)  # what an earlier run killed mid-way left there
        folder.mkdir(parents=True)
    except OSError as error:
        raise NsclcFormatError(output, f"cannot be written: {error.strerror or error}") from error


def _mode(spec: registry.FormatSpec, one_file: bool, cases: list[Case]) -> str:
    if spec.per_case and not one_file:
        return steps.CASES
    if spec.name == "coco":
        from ..formats._coco_parts import streamable

        if streamable(cases):
            return steps.PARTS
    return WHOLE


def _image_root(cases: list[Case], mode: str) -> str | None:
    if mode != steps.PARTS:
        return None
    from ..formats._coco_parts import image_root

    root = image_root(cases)
    return str(root) if root is not None else None


def _refuse_output_inside(source: Path, output: Path) -> None:
    read, written = source.resolve(), output.resolve()
    if written == read or (source.is_dir() and read in written.parents):
        raise NsclcFormatError(output, f"is inside {source}: convert never writes into the source; "
                                       "choose an output outside it")  # fmt: skip


def _protected(source: Path, cases: list[Case]) -> Callable[[Path], bool]:
    """Whether a path is part of the source, which is never written: inside a source folder, or a source file."""
    if source.is_dir():
        root = source.resolve()
        return lambda path: root in path.resolve().parents
    files = {source.resolve(), *(p.resolve() for case in cases for p in steps.source_files(case))}
    return lambda path: path.resolve() in files


def _refuse_foreign_output(output: Path, work: Path, one_file: bool) -> None:
    """An output that exists and was not written by this conversion is replaced only with --overwrite."""
    if one_file:
        if output.exists():
            raise NsclcFormatError(output, "already exists; pass --overwrite to replace it")
        return
    if output.is_file():
        raise NsclcFormatError(output, "is a file; give a folder (or --overwrite to replace the file)")
    if output.is_dir() and any(entry.name != work.name for entry in output.iterdir()):
        raise NsclcFormatError(output, "is a folder that already holds files; convert into a new or empty folder, "
                                       "or pass --overwrite to replace what is there")  # fmt: skip


@contextmanager
def _signals_raise_interrupt() -> Iterator[dict]:
    """Turn SIGTERM into KeyboardInterrupt as SIGINT is, so that both stop the conversion cleanly.

    Yields a dict that receives ``"signal"``: the number of the signal caught.
    """
    caught: dict = {}

    def handler(number, _frame):
        caught["signal"] = number
        raise KeyboardInterrupt

    previous = {}
    for number in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[number] = signal.signal(number, handler)
        except ValueError:  # not the main thread: signals stay as they are
            pass
    try:
        yield caught
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


class _Run:
    """The bookkeeping of one conversion in this process: files put in place, the new manifest."""

    def __init__(self, job: steps.Job, spec: registry.FormatSpec, prior: Manifest | None, overwrite: bool,
                 result: ConvertResult, manifest: Manifest, protected: Callable[[Path], bool]):  # fmt: skip
        self.job, self.spec, self.prior, self.overwrite = job, spec, prior, overwrite
        self.result, self.manifest, self.protected = result, manifest, protected
        self.parent = Path(job.output).parent
        self.done = 0
        self.outcomes: dict[int, steps.CaseOutcome] = {}
        self.placed: dict[str, str] = {}  # output file -> the key of the case that wrote it in this run

    # ---------------------------------------------------------------- case by case, and in parts

    def take(self, outcome: steps.CaseOutcome) -> None:
        """Put one finished case's files in place and record it."""
        self.done += 1
        self.outcomes[outcome.index] = outcome
        if outcome.status == "failed":
            self.result.problems.append(outcome.problem)
            return
        if outcome.status == "skipped":
            self.result.skipped += 1
            for relative in outcome.entry.outputs:
                self.placed.setdefault(relative, outcome.key)
        elif outcome.status == "empty":
            self.result.empty += 1
        else:
            problem = self._place(outcome) if outcome.staged else None
            if problem is not None:
                self.result.problems.append(problem)
                self.outcomes[outcome.index] = steps.CaseOutcome(outcome.index, outcome.key, "failed", problem=problem)
                return
            self.result.converted += 1
        self.manifest.cases[outcome.key] = outcome.entry

    def _place(self, outcome: steps.CaseOutcome) -> Problem | None:
        """Move a case's staged files into the output: all, or none when one may not be written."""
        staged = Path(outcome.staged)
        moves = []
        for relative, sha in outcome.entry.outputs.items():
            target = self.parent / relative
            why = self._may_not_write(relative, sha, target, outcome.key)
            if why == "same":
                continue
            if why:
                shown = display_path(target, self.parent)
                return Problem(shown, "conflict", f"{shown}: not written for case {outcome.entry.name!r}: {why}")
            moves.append((staged / relative, target, relative))
        for path, target, relative in moves:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
            self.result.written.append(relative)
        for relative in outcome.entry.outputs:
            self.placed.setdefault(relative, outcome.key)
        shutil.rmtree(staged, ignore_errors=True)
        return None

    def _may_not_write(self, relative: str, sha: str, target: Path, key: str) -> str | None:
        """Why ``target`` may not be written: None when it may, ``"same"`` when it already holds these bytes."""
        if self.protected(target):
            return "it is part of the source, which convert never writes to"
        other = self.placed.get(relative)
        if not target.exists():
            return None
        current = file_sha256(target)
        if current == sha:
            return "same"
        if other is not None and other != key:
            return f"case {other!r} wrote another version of it in this run"
        if self.overwrite or (self.prior is not None and self.prior.owns(relative, current)):
            return None
        return "it exists and was not written by this conversion (pass --overwrite to replace it)"

    def keep_unreached(self, keys: list[str]) -> None:
        """After an interrupt: keep the previous manifest's entries of the cases not reached, still valid."""
        if self.prior is not None:
            for key in keys:
                if key not in self.manifest.cases and key in self.prior.cases:
                    self.manifest.cases[key] = self.prior.cases[key]
        self._in_case_order(keys)

    def _in_case_order(self, keys: list[str]) -> None:
        """The manifest's cases in the dataset's order, whatever order the workers finished in."""
        cases = self.manifest.cases
        self.manifest.cases = {key: cases[key] for key in keys if key in cases}

    def finish(self, cases: list[Case]) -> None:
        """After every case: the combined files or the COCO document, and what vanished cases left."""
        keys = steps.case_keys(cases)
        self._in_case_order(keys)
        good = [i for i in range(len(cases)) if self.outcomes.get(i) and self.outcomes[i].status != "failed"]
        if self.job.mode == steps.PARTS:
            self._write_document(cases, keys, good)
        else:
            self._write_merged(keys, good)
        self._remove_vanished(set(keys))

    def _write_merged(self, keys: list[str], good: list[int]) -> None:
        versions: dict[str, list[str]] = {}
        for index in good:
            for relative, text in self.manifest.cases[keys[index]].merged.items():
                versions.setdefault(relative, []).append(text)
        for relative, texts in versions.items():
            rule = steps.merge_rule(self.spec, relative.partition("/")[2])
            text = _combine(rule, texts)
            if text is None:
                continue
            self._write_text(relative, text)

    def _write_document(self, cases: list[Case], keys: list[str], good: list[int]) -> None:
        from ..formats._coco_parts import write_parts

        relative = Path(self.job.output).name
        target = Path(self.job.output)
        recorded = self.prior.files.get(relative) if self.prior is not None else None
        unchanged = (self.result.converted == 0 and recorded is not None and target.is_file()
                     and file_sha256(target) == recorded and self.prior is not None
                     and set(self.prior.cases) == {keys[i] for i in good})  # fmt: skip
        if unchanged:
            self.manifest.files[relative] = recorded
            return
        parts = [Path(self.job.work) / "parts" / self.manifest.cases[keys[i]].part for i in good]
        write_parts([cases[i] for i in good], parts, target)
        self.manifest.files[relative] = file_sha256(target)
        self.result.written.append(relative)

    def _write_text(self, relative: str, text: str) -> None:
        target = self.parent / relative
        data = text.encode("utf-8")
        if target.is_file() and target.read_bytes() == data:
            self.manifest.files[relative] = file_sha256(target)
            return
        if target.exists() and not self.overwrite:
            owned = self.prior is not None and self.prior.owns(relative, file_sha256(target))
            if not owned:
                shown = display_path(target, self.parent)
                self.result.problems.append(Problem(shown, "conflict", f"{shown}: exists and was not written by this "
                                                                       "conversion (pass --overwrite to replace it)"))
                return
        atomic_write_text(target, text)
        self.manifest.files[relative] = file_sha256(target)
        self.result.written.append(relative)

    def _remove_vanished(self, keys: set[str]) -> None:
        """Remove what this conversion wrote before for cases no longer in the source, if still unchanged."""
        if self.prior is None:
            return
        for key, entry in self.prior.cases.items():
            if key in keys:
                continue
            files = [(self.parent / r, s) for r, s in entry.outputs.items() if r not in self.placed]
            if entry.part:
                files.append((Path(self.job.work) / "parts" / entry.part, entry.part_sha256))
            for path, sha in files:
                if path.is_file() and file_sha256(path) == sha:
                    path.unlink()
                    if path.parent != Path(self.job.work) / "parts":
                        self.result.removed.append(display_path(path, self.parent))


def _combine(rule, texts: list[str]) -> str | None:
    """One file from the versions several cases wrote (``FormatSpec.merged_files``)."""
    if rule == "first":
        return texts[0]
    if rule == "lines":
        lines = dict.fromkeys(line for text in texts for line in text.splitlines())
        return "".join(f"{line}\n" for line in lines)
    return rule(texts)

