"""A dataset opened for correction: its cases, their status, saving, autosave and recovery.

:class:`Workspace` is the one place that knows where corrections go and what
state each case is in. The Cases dock, the Classes dock, the CLI and the
tests all use it; it emits psygnal signals so that views follow it.

On disk, for a dataset at ``root`` with corrections at ``corrections``::

    corrections/<path in the layout>                  the corrected file, in the dataset's own format
    corrections/<path in the layout>.provenance.json  who saved it, when, from which original, what changed
    corrections/events.jsonl                          one line per save, append-only
    corrections/.autosave/<case>/<path in the layout> the last autosave of a case
    corrections/.autosave/<case>.json                 its manifest: written last, it makes the autosave valid
    corrections/.autosave/corrupt/                    autosaves that failed their checksums, set aside

Originals are never written. A dataset stored as one file of many cases
(an IGNITE COCO file, a CoCaHis HDF5) is corrected as one file: saving a
case rewrites the corrected copy of that file with the case replaced.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from psygnal import Signal

from .. import __version__, registry
from ..formats.masks import load_case
from ..model import Case, NothingToWrite, NsclcFormatError, unique_names
from . import identity
from .changes import CaseChanges, case_changes
from .corrections import detached, overlay
from .files import append_event, install, read_json, sha256_of, staging_folder, write_json
from .history import EditHistory

__all__ = ["STATUSES", "ConflictError", "SaveResult", "Workspace", "autosave_interval", "open_shared", "shared"]

#: A case's status, from least to most urgent.
STATUSES = ("untouched", "saved", "autosaved", "edited")
#: Seconds between autosaves; ``NSCLC_AUTOSAVE_SECONDS`` overrides it.
DEFAULT_AUTOSAVE_SECONDS = 60.0
SIDECAR = ".provenance.json"
EVENTS = "events.jsonl"
AUTOSAVE = ".autosave"


def autosave_interval() -> float:
    """Seconds between autosaves: ``$NSCLC_AUTOSAVE_SECONDS`` or 60."""
    try:
        return max(0.1, float(os.environ.get("NSCLC_AUTOSAVE_SECONDS", DEFAULT_AUTOSAVE_SECONDS)))
    except ValueError:
        return DEFAULT_AUTOSAVE_SECONDS


class ConflictError(NsclcFormatError):
    """The correction on disk changed after it was loaded (another student, another window).

    ``path`` names the file; nothing was written.
    """


@dataclass(frozen=True)
class SaveResult:
    """What one save wrote: the files, the changes and the one-line summary for the status bar."""

    case: str
    paths: tuple[Path, ...]
    changes: CaseChanges
    annotator: str

    @property
    def summary(self) -> str:
        """``"saved 2.png: +1,204 / −88 px tumour bed, by alice"``."""
        if not self.paths:
            return f"{self.case}: nothing to save, it is as loaded"
        names = ", ".join(p.name for p in self.paths)
        return f"saved {names}: {self.changes.summary()}, by {self.annotator}"


class Workspace:
    """A dataset opened for correction.

    Use :meth:`open`. Signals: ``status_changed(case_id, status)``,
    ``saved(SaveResult)``, ``autosaved(case_id)``, ``problem(message)`` (a
    corrupt autosave set aside, for instance) and ``current_changed(case_id)``.
    """

    status_changed = Signal(str, str)
    saved = Signal(object)
    autosaved = Signal(str)
    problem = Signal(str)
    current_changed = Signal(str)

    def __init__(self, source: Path, spec: registry.FormatSpec, originals: list[Case], corrections: Path,
                 annotator: str | None):  # fmt: skip
        self.source = source
        self.spec = spec
        self.root = _dataset_root(source, originals)
        self.corrections = corrections
        self.annotator = annotator
        self._originals = originals
        self._ids = unique_names([case.name for case in originals], " #")  # "3", "3 #2" where a dataset repeats one
        self._index = {case_id: i for i, case_id in enumerate(self._ids)}
        self._edited: set[str] = set()
        self._seen: dict[str, str | None] = {}  # correction file -> its sha256 when last read or written here
        self._index_cache: dict[str, list[str]] | None = None
        self._loaded: set[str] = set()  # cases whose corrections were read here: a save checks for conflicts
        self._current: str | None = None
        self._histories: dict[str, EditHistory] = {}

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, dataset_path, corrections=None, annotator: str | None = None, *, progress=None) -> Workspace:
        """Open a dataset (any layout or file the registry reads) for correction.

        Parameters
        ----------
        dataset_path : path
            A dataset root or annotation file.
        corrections : path or callable, optional
            Where corrections go; default ``<dataset root>/corrections``. It
            must be given when the dataset's folder is read-only; a callable
            ``corrections(root) -> path`` is asked only then.
        annotator : str, optional
            The name stamped on every save; default :func:`identity.annotator`.
        progress : callable, optional
            ``progress(done, total)``, passed to the dataset's reader when it
            takes one (the DICOM readers call it while headers are read).

        Raises
        ------
        NsclcFormatError
            When the dataset cannot be read, or corrections cannot go in a
            read-only dataset folder and none was given.
        """
        source = Path(dataset_path)
        spec = registry.detect(source)
        options = {"progress": progress} if progress is not None and registry.reader_accepts(spec, "progress") else {}
        originals = registry.read(source, spec.name, **options)
        if not originals:
            raise NsclcFormatError(source, "holds no case to correct")
        root = _dataset_root(source, originals)
        if corrections is None or (callable(corrections) and os.access(root, os.W_OK)):
            if not os.access(root, os.W_OK):
                raise NsclcFormatError(root, "is read-only, so corrections cannot go in it; give corrections=FOLDER")
            corrections = root / "corrections"
        elif callable(corrections):
            corrections = corrections(root)
        return cls(source, spec, originals, Path(corrections), annotator or identity.annotator())

    # ------------------------------------------------------------------ cases
    @property
    def cases(self) -> list[str]:
        """The case ids, in dataset order."""
        return list(self._ids)

    def original(self, case_id: str) -> Case:
        """The original case as read from the dataset (decoded, and owned by the caller)."""
        return load_case(detached(self._originals[self._position(case_id)]))

    def original_name(self, case_id: str) -> str:
        """The case's own name (ids of repeated names carry a ``" #2"``)."""
        return self._originals[self._position(case_id)].name

    def warnings(self, case_id: str) -> list[str]:
        """Problems the reader found in the case and worked around."""
        return list(self._originals[self._position(case_id)].provenance.warnings)

    def split_of(self, case_id: str) -> str | None:
        """The split a case belongs to (``"train"``, ``"val"`` ...), when its dataset has splits."""
        case = self._originals[self._position(case_id)]
        return case.provenance.details.get("split") or case.image.metadata.get("split")

    def group_of(self, case_id: str) -> list[str]:
        """``case_id`` and the cases shown with it (the series of one patient), in dataset order."""
        group = self._originals[self._position(case_id)].group
        if group is None:
            return [case_id]
        return [self._ids[i] for i, case in enumerate(self._originals) if case.group == group]

    def filtered(self, status: str | None = None, split: str | None = None, text: str = "") -> list[str]:
        """Case ids with this status, in this split and containing ``text``, in dataset order."""
        needle = text.strip().lower()
        return [
            case_id
            for case_id in self._ids
            if (status is None or self.status(case_id) == status)
            and (split is None or self.split_of(case_id) == split)
            and needle in case_id.lower()
        ]

    def _position(self, case_id: str) -> int:
        try:
            return self._index[case_id]
        except KeyError:
            raise KeyError(f"{self.source}: no case {case_id!r}") from None

    # ------------------------------------------------------------------ current case and edits
    @property
    def current(self) -> str | None:
        """The case on screen, if any."""
        return self._current

    def set_current(self, case_id: str | None) -> None:
        if case_id is not None:
            self._position(case_id)
        if case_id != self._current:
            self._current = case_id
            self.current_changed.emit(case_id or "")

    def mark_edited(self, case_id: str) -> None:
        """Record that ``case_id`` has edits that are neither saved nor autosaved."""
        if case_id not in self._edited:
            self._edited.add(case_id)
            self.status_changed.emit(case_id, "edited")

    def is_edited(self, case_id: str) -> bool:
        """Whether the case has edits not even autosaved yet."""
        return case_id in self._edited

    def has_unsaved(self, case_id: str) -> bool:
        """Whether the case has edits that are not saved as a correction (autosaved or not)."""
        return case_id in self._edited or self.has_autosave(case_id)

    def status(self, case_id: str) -> str:
        """``"edited"``, ``"autosaved"``, ``"saved"`` or ``"untouched"``."""
        if case_id in self._edited:
            return "edited"
        if self._autosave_manifest(case_id).is_file():
            return "autosaved"
        if self._correction_files(case_id):
            return "saved"
        return "untouched"

    def _set_clean(self, case_id: str) -> None:
        self._edited.discard(case_id)
        self.status_changed.emit(case_id, self.status(case_id))

    # ------------------------------------------------------------------ where files go
    @property
    def whole_file(self) -> bool:
        """Whether the dataset is one file of several cases, corrected as one file."""
        return self.source.is_file()

    def _relative(self, path: Path) -> str:
        return Path(path).resolve().relative_to(self.root.resolve()).as_posix()

    def _correction_files(self, case_id: str) -> dict[str, Path]:
        """The correction files of a case, by path relative to the root.

        A whole-file dataset has one; otherwise they are found by their
        provenance sidecars, which name their case, so any layout works and
        a correction saved from another window is seen.
        """
        if self.whole_file:
            relative = self._relative(self.source)
            return {relative: self.corrections / relative} if (self.corrections / relative).is_file() else {}
        return {rel: self.corrections / rel for rel in self._saved_index().get(case_id, ())}

    def refresh(self) -> None:
        """Look at the corrections folder again (another window may have saved)."""
        self._index_cache = None

    def _saved_index(self) -> dict[str, list[str]]:
        """``{case id: [correction file relative to the root, ...]}`` from the sidecars on disk (cached)."""
        if self._index_cache is None:
            self._index_cache = self._scan_sidecars()
        return self._index_cache

    def _scan_sidecars(self) -> dict[str, list[str]]:
        index: dict[str, list[str]] = {}
        if not self.corrections.is_dir():
            return index
        for sidecar in sorted(self.corrections.rglob(f"*{SIDECAR}")):
            relative = sidecar.relative_to(self.corrections).as_posix()[: -len(SIDECAR)]
            if relative.startswith(".") or "/." in relative or not (self.corrections / relative).is_file():
                continue  # autosaves, staging folders, a sidecar whose file was removed
            try:
                record = read_json(sidecar)
            except NsclcFormatError:
                continue
            if isinstance(record, dict) and not record.get("copy") and record.get("case") in self._index:
                index.setdefault(record["case"], []).append(relative)
        return index

    # ------------------------------------------------------------------ loading
    def load(self, case_id: str) -> Case:
        """The case as last saved: its correction when there is one, else the original.

        Remembers the correction files' checksums, so that :meth:`save`
        notices when someone else changes them in the meantime.
        """
        self.refresh()
        case = self._saved_state(case_id, remember=True)
        self._set_clean(case_id)
        self.history(case_id).clear()
        return case

    def saved_case(self, case_id: str) -> Case:
        """The case as last saved (its correction, else the original), leaving edits and undo history alone."""
        self.refresh()
        return self._saved_state(case_id)

    def history(self, case_id: str) -> EditHistory:
        """The undo history of the case's object edits; it starts afresh when the case is loaded or recovered."""
        self._position(case_id)  # an unknown case is an error, not a new history
        return self._histories.setdefault(case_id, EditHistory())

    def _saved_state(self, case_id: str, remember: bool = False) -> Case:
        if remember:
            self._remember(case_id)
        return self._read_from(case_id, self._correction_files(case_id))

    def _remember(self, case_id: str) -> None:
        """Note the checksums of the case's correction files, to notice later changes by others."""
        self._loaded.add(case_id)
        for relative, path in self._correction_files(case_id).items():
            self._seen[relative] = sha256_of(path)

    def _read_from(self, case_id: str, files: dict[str, Path]) -> Case:
        """The case read from correction-like ``files`` (a correction or an autosave) over the original."""
        if not files:
            return self.original(case_id)
        if self.whole_file:
            (path,) = files.values()
            name = self._originals[self._position(case_id)].name
            found = [c for c in self._read_whole_file(files) if c.name == name]
            if not found:
                raise NsclcFormatError(path, f"holds no case named {name!r}")
            return load_case(found[0])
        return overlay(self.original(case_id), files, self.spec)

    def _read_whole_file(self, files: dict[str, Path]) -> list[Case]:
        """Every case of a one-file dataset as ``files`` (its correction, or an autosave) holds them."""
        if self.spec.read_correction is not None:
            # the file holds only what is corrected (CoCaHis: the GT masks, not the H&E): read it over the originals
            return [self.spec.read_correction(detached(case), files) for case in self._originals]
        (path,) = files.values()
        return registry.read(path, self.spec.name)

    # ------------------------------------------------------------------ saving
    def save(self, case_id: str, case: Case, *, as_copy: bool = False) -> list[Path]:
        """Write the correction of ``case_id`` in the dataset's own format; returns the paths written.

        With ``as_copy``, the correction goes beside the one on disk, as
        ``<name>.<annotator>-<time><suffix>``, and does not replace it (the
        way out of a conflict that keeps both).

        Raises
        ------
        ConflictError
            When a correction file changed on disk after it was loaded here.
        NsclcFormatError
            When the dataset has no writer, or a file cannot be written (the
            previous file on disk is then intact).
        """
        return list(self.save_case(case_id, case, as_copy=as_copy).paths)

    def save_case(self, case_id: str, case: Case, *, as_copy: bool = False) -> SaveResult:
        """As :meth:`save`, returning the paths, the changes and the summary."""
        annotator = self._require_annotator()
        before = self._saved_state(case_id)
        changes = case_changes(before, case)
        staged_paths: list[Path] = []
        with staging_folder(self.corrections) as staging:
            with _named_outside(staging, self.corrections):
                staged = self._stage(case_id, case, staging)
            _require_folder(staging, self.corrections)
            targets = {rel: self._target(rel, as_copy) for rel in staged}
            if not as_copy and case_id in self._loaded:
                self._refuse_conflicts(targets)
            saved_at = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
            sidecars = {}
            for relative, path in staged.items():
                sidecar = staging / f"{relative}{SIDECAR}"
                sidecar.parent.mkdir(parents=True, exist_ok=True)
                write_json(sidecar, self._provenance(case_id, relative, path, targets[relative], annotator,
                                                     saved_at, changes))  # fmt: skip
                sidecars[relative] = sidecar
            for relative, path in staged.items():
                staged_paths.append(install(path, targets[relative]))
                install(sidecars[relative], Path(f"{targets[relative]}{SIDECAR}"))
                if not as_copy:
                    self._seen[relative] = sha256_of(targets[relative])
        self.refresh()
        result = SaveResult(case_id, tuple(staged_paths), changes, annotator)
        if staged_paths:
            append_event(self.corrections / EVENTS, {
                "event": "save", "case": case_id, "annotator": annotator, "saved_at": saved_at,
                "files": [self._relative_to_corrections(p) for p in staged_paths], "copy": as_copy,
                **changes.as_provenance()})  # fmt: skip
        if self._autosaved_by(case_id) in (None, annotator):
            self.discard_autosave(case_id)  # someone else's autosave holds their unsaved work: it stays
        self._set_clean(case_id)
        self.saved.emit(result)
        return result

    def _require_annotator(self) -> str:
        if not self.annotator:
            raise NsclcFormatError(self.corrections, "no annotator name: set one (NSCLC_ANNOTATOR, or asked once)")
        return self.annotator

    def _writer(self) -> registry.FormatSpec:
        if self.spec.write is None:
            raise NsclcFormatError(self.source, f"{registry.short_title(self.spec)} files cannot be written; "
                                                "open the annotation file instead")  # fmt: skip
        return self.spec

    def _stage(self, case_id: str, case: Case, staging: Path) -> dict[str, Path]:
        """Write the correction into ``staging`` with the dataset's writer; returns the files that changed.

        A file identical to its original, or one that is the case's image or
        a file describing the whole dataset (``FormatSpec.shared_files``), is
        left out: only what was corrected goes into the corrections folder.
        """
        spec = self._writer()
        out = staging / "out"
        if self.whole_file:
            relative = self._relative(self.source)
            others = self._whole_file_cases(case_id, case)
            registry.write(others, out / relative, spec.name, overwrite=True)
        else:
            case.group = self._originals[self._position(case_id)].group
            try:
                registry.write([case], out, spec.name, overwrite=True)
            except NothingToWrite:
                pass  # a case with nothing this writer writes: its other files are still saved
        image = _relative_or_none(case.image.path, self.root)
        staged = {}
        for path in sorted(p for p in out.rglob("*") if p.is_file()):
            relative = path.relative_to(out).as_posix()
            if self.whole_file and relative != self._relative(self.source):
                continue  # a labelmap.txt written beside a mask file: the dataset is the one file
            if (relative == image and not self.whole_file) or any(fnmatch.fnmatch(relative, g) for g in spec.shared_files):
                continue
            current = self.corrections / relative
            if sha256_of(path) == sha256_of(current if current.exists() else self.root / relative):
                continue  # the same bytes as the file it would replace: nothing was corrected there
            staged[relative] = path
        return staged

    def _whole_file_cases(self, case_id: str, case: Case) -> list[Case]:
        """Every case of the one file, as last saved, with ``case_id`` replaced by ``case``."""
        files = self._correction_files(case_id)
        cases = self._read_whole_file(files) if files else list(self._originals)
        name = self._originals[self._position(case_id)].name
        return [case if c.name == name else c for c in cases]

    def _target(self, relative: str, as_copy: bool) -> Path:
        target = self.corrections / relative
        if not as_copy:
            return target
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        who = re.sub(r"[^\w.-]+", "_", self.annotator or "copy")
        return target.with_name(f"{target.stem}.{who}-{stamp}{target.suffix}")

    def _refuse_conflicts(self, targets: dict[str, Path]) -> None:
        for relative, target in targets.items():
            if sha256_of(target) != self._seen.get(relative):  # not seen when loaded: it did not exist
                raise ConflictError(target, "changed on disk after it was loaded here (another window or "
                                            "annotator); reload it, save yours as a copy, or cancel")  # fmt: skip

    def _provenance(self, case_id, relative, staged, target, annotator, saved_at, changes) -> dict:
        original = self.root / relative
        if not original.is_file():  # a mask painted where the dataset had none: it was drawn on the image
            image = self._originals[self._position(case_id)].image.path
            original = Path(image) if image else None
        return {
            "annotator": annotator,
            "saved_at": saved_at,
            "case": case_id,
            "source": self._relative(original) if original is not None else None,
            # an image that is a folder (a DICOM series) has no one checksum
            "source_sha256": sha256_of(original) if original is not None and original.is_file() else None,
            "previous_sha256": sha256_of(target),
            "sha256": sha256_of(staged),
            "plugin_version": __version__,
            "changes": changes.as_provenance(),
            "copy": target != self.corrections / relative,
        }

    def _relative_to_corrections(self, path: Path) -> str:
        return Path(path).relative_to(self.corrections).as_posix()

    # ------------------------------------------------------------------ autosave
    def _autosave_folder(self, case_id: str) -> Path:
        return self.corrections / AUTOSAVE / _safe(case_id)

    def _autosave_manifest(self, case_id: str) -> Path:
        return self.corrections / AUTOSAVE / f"{_safe(case_id)}.json"

    def autosave(self, case_id: str, case: Case) -> Path:
        """Keep ``case`` in ``<corrections>/.autosave/`` until it is saved or discarded; returns the manifest.

        The files are written in the dataset's format, then a manifest with
        their checksums; an autosave without a valid manifest is never loaded.
        """
        folder = self._autosave_folder(case_id)
        manifest = self._autosave_manifest(case_id)
        with staging_folder(self.corrections) as staging:
            out = staging / "out"
            spec = self._writer()
            with _named_outside(staging, folder):
                if self.whole_file:  # only this case: the autosave need not hold the others
                    registry.write([case], out / self._relative(self.source), spec.name, overwrite=True)
                else:
                    case.group = self._originals[self._position(case_id)].group
                    registry.write([case], out, spec.name, overwrite=True)
            _require_folder(staging, self.corrections)
            image = _relative_or_none(case.image.path, self.root)
            files = {p.relative_to(out).as_posix(): p for p in sorted(out.rglob("*")) if p.is_file()}
            files = {rel: p for rel, p in files.items() if rel != image or self.whole_file}
            checksums = {rel: sha256_of(p) for rel, p in files.items()}
            if manifest.exists():
                manifest.unlink()  # the old files are about to be replaced: the old manifest must not vouch for them
            for relative, path in files.items():
                install(path, folder / relative)
            # the corrections these edits were made on: a save after recovery is refused if they changed meanwhile
            based_on = {rel: self._seen.get(rel) for rel in files} if case_id in self._loaded else None
            write_json(manifest, {"case": case_id, "annotator": self.annotator, "files": checksums,
                                  "based_on": based_on,
                                  "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})  # fmt: skip
        self._edited.discard(case_id)
        self.status_changed.emit(case_id, "autosaved")
        self.autosaved.emit(case_id)
        return manifest

    def recover(self, case_id: str) -> Case | None:
        """The autosaved case, or ``None`` when there is none.

        An autosave whose manifest or files do not match (cut short by a
        crash, damaged) is moved to ``.autosave/corrupt/``, reported through
        :attr:`problem`, and ``None`` is returned: it is never loaded half.
        """
        manifest = self._autosave_manifest(case_id)
        if not manifest.is_file():
            return None
        try:
            record = read_json(manifest)
            files = {rel: self._autosave_folder(case_id) / rel for rel in record["files"]}
            for relative, path in files.items():
                if sha256_of(path) != record["files"][relative]:
                    raise NsclcFormatError(path, "does not match its autosave manifest (cut short or damaged)")
            recovered = self._read_autosave(case_id, files)
            based_on = record.get("based_on")
            if based_on is None:
                self._remember(case_id)  # edits not made on a loaded case: they build on what is on disk now
            else:
                self._loaded.add(case_id)
                self._seen.update(based_on)
            self.history(case_id).clear()
            return recovered
        except (NsclcFormatError, KeyError, TypeError, AttributeError) as error:
            where = self._set_aside(case_id)
            message = f"{manifest}: the autosave of {case_id} is damaged and was set aside in {where} ({error})"
            self.problem.emit(message)
            self.status_changed.emit(case_id, self.status(case_id))
            return None

    def _read_autosave(self, case_id: str, files: dict[str, Path]) -> Case:
        return self._read_from(case_id, files)

    def _set_aside(self, case_id: str) -> Path:
        corrupt = self.corrections / AUTOSAVE / "corrupt" / f"{_safe(case_id)}-{time.strftime('%Y%m%dT%H%M%S')}"
        corrupt.mkdir(parents=True, exist_ok=True)
        for path in (self._autosave_manifest(case_id), self._autosave_folder(case_id)):
            if path.exists():
                shutil.move(str(path), str(corrupt / path.name))
        return corrupt

    def discard_autosave(self, case_id: str) -> None:
        """Remove the autosave of ``case_id`` (after a save, or when the user declines to restore it)."""
        manifest = self._autosave_manifest(case_id)
        if manifest.exists():
            manifest.unlink()  # first: a half-removed autosave without its manifest is never offered
        shutil.rmtree(self._autosave_folder(case_id), ignore_errors=True)
        if case_id not in self._edited:
            self.status_changed.emit(case_id, self.status(case_id))

    def _autosaved_by(self, case_id: str) -> str | None:
        """The annotator named in the case's autosave manifest (``None``: no autosave, or unnamed)."""
        try:
            return read_json(self._autosave_manifest(case_id)).get("annotator")
        except (NsclcFormatError, OSError, AttributeError, ValueError):
            return None

    def has_autosave(self, case_id: str) -> bool:
        return self._autosave_manifest(case_id).is_file()


# --------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _named_outside(staging: Path, destination: Path) -> Iterator[None]:
    """Report a writer's failure on a staged file under the name it was to be saved as.

    A writer writes into ``staging/out``, a hidden folder removed afterwards; an
    error naming a file there ("... .staging-x1y2/out/SegmentationClass/2.png:
    cannot be written: No space left on device") would name a file the user
    never sees. It names ``destination/SegmentationClass/2.png`` instead.
    """
    try:
        yield
    except NsclcFormatError as error:
        try:
            relative = Path(error.path).relative_to(staging / "out")
        except ValueError:
            if not Path(error.path).is_relative_to(staging):
                raise
            relative = Path()
        raise NsclcFormatError(destination / relative, error.problem) from error


def _require_folder(staging: Path, corrections: Path) -> None:
    """Raise when the corrections folder vanished while the files were staged in it.

    Without this the save would go on to compare the (now missing) correction
    files with those loaded and report a conflict, or re-create the folder.
    """
    if not staging.is_dir():
        raise NsclcFormatError(corrections, "vanished while saving (a removed or unmounted folder?); nothing was saved")


def _dataset_root(source: Path, cases: list[Case]) -> Path:
    """The folder a dataset's relative paths start from."""
    for case in cases[:1]:
        # a patient or series folder of a Lung-PET-CT-Dx collection: its paths start at the collection
        root = case.provenance.details.get("root") or case.provenance.details.get("collection_root")
        if root:
            return Path(root)
        for mask in case.masks:
            if mask.attributes.get("root"):
                return Path(mask.attributes["root"])
    return source if source.is_dir() else source.parent


def _relative_or_none(path, root: Path) -> str | None:
    if not path:
        return None
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None


def _safe(text: str) -> str:
    return re.sub(r"[^\w.-]+", "_", text).strip("_") or "case"


# --------------------------------------------------------------------------- one workspace per opened dataset

_OPENED: dict[str, Workspace] = {}


def open_shared(dataset_path, *, corrections=None, progress=None) -> Workspace:
    """The workspace of ``dataset_path``, opened once per process and shared.

    napari's reader opens a dataset through here and the docks adopt the
    same workspace, so a dataset is read once. A dataset in a read-only
    folder (a shared drive, the samples) gets its corrections in the user's
    data folder, ``<user data dir>/napari-nsclc/corrections/<name>-<hash>``.
    ``corrections`` names another folder (a supervisor opens a student's);
    the dataset is then opened again if it was open with other corrections.
    ``progress(done, total)`` goes to the reader (see :meth:`Workspace.open`)
    when the dataset is read here, not when it was already open.
    """
    key = str(Path(dataset_path).resolve())
    opened = _OPENED.get(key)
    if opened is not None and corrections is not None and opened.corrections.resolve() != Path(corrections).resolve():
        opened = None
    if opened is None:
        where = corrections if corrections is not None else _user_corrections_folder
        opened = _OPENED[key] = Workspace.open(dataset_path, corrections=where, progress=progress)
    return opened


def _user_corrections_folder(root: Path) -> Path:
    """Where corrections of a dataset in a read-only folder go: the user's data folder, one per dataset."""
    import hashlib

    import platformdirs

    key = str(Path(root).resolve())
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    folder = Path(platformdirs.user_data_dir("napari-nsclc", appauthor=False))
    return folder / "corrections" / f"{Path(key).name}-{digest}"


def shared(dataset_path) -> Workspace | None:
    """The workspace already opened for ``dataset_path`` by :func:`open_shared`, or ``None``."""
    return _OPENED.get(str(Path(dataset_path).resolve()))
