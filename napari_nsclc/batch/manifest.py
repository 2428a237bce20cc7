"""The manifest of a conversion: what each case was converted from and what it wrote, with checksums.

``napari-nsclc convert`` keeps it in a hidden work folder of the output
(:func:`work_folder`): ``DST/.nsclc-convert/manifest.json`` for a folder,
``.DST.nsclc-convert/manifest.json`` beside a single output file. Running the
same conversion again skips every case whose source files and output files
still have the checksums recorded here, and converts the rest: a conversion
that was interrupted resumes where it stopped, and one whose source changed
redoes only what changed. The file is written atomically, so it is always
the manifest of a consistent state. No napari or Qt import.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson

from .._atomic import atomic_write_bytes

__all__ = ["MANIFEST", "VERSION", "CaseEntry", "Manifest", "file_sha256", "work_folder"]

#: The manifest's file name inside the work folder.
MANIFEST = "manifest.json"
#: Bumped when the manifest's fields change; a manifest of another version is not trusted (all is redone).
VERSION = 1
_CHUNK = 1 << 20


def work_folder(output: Path, one_file: bool) -> Path:
    """Where a conversion to ``output`` keeps its manifest, parts and staging area."""
    output = Path(output)
    return output.parent / f".{output.name}.nsclc-convert" if one_file else output / ".nsclc-convert"


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, as hex, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class CaseEntry:
    """What one case was converted from and what it wrote.

    Attributes
    ----------
    name : str
        The case's name.
    sources : dict of str to str
        Its source files (relative to the source's root) and their SHA-256.
    outputs : dict of str to str
        The files it wrote (relative to the output's parent folder) and their SHA-256.
    merged : dict of str to str
        Its version of each file that several cases write (a split list,
        ``labelmap.txt``), by path: they are combined once all cases are done.
    part : str
        In a conversion to one COCO file: the file of its part in the work
        folder's ``parts/``, and ``part_sha256`` its checksum.
    """

    name: str
    sources: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    merged: dict[str, str] = field(default_factory=dict)
    part: str = ""
    part_sha256: str = ""


@dataclass
class Manifest:
    """The manifest of one conversion.

    Attributes
    ----------
    job : dict
        ``{"source", "from", "to", "output", "version"}``: a manifest of another
        job is not used to skip anything.
    cases : dict of str to CaseEntry
        By case key (:func:`napari_nsclc.batch.convert.case_keys`).
    files : dict of str to str
        Files written for the whole dataset (combined files, the COCO
        document), relative to the output's parent folder, and their SHA-256.
    """

    job: dict
    cases: dict[str, CaseEntry] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def same_job(self, job: dict) -> bool:
        """Whether this manifest records the conversion ``job``."""
        return self.job == job

    def owns(self, relative: str, sha256: str) -> bool:
        """Whether the file ``relative`` with this checksum was written by this conversion."""
        if self.files.get(relative) == sha256:
            return True
        return any(entry.outputs.get(relative) == sha256 for entry in self.cases.values())

    def save(self, folder: Path) -> Path:
        """Write ``folder/manifest.json`` atomically."""
        data = {"version": VERSION, "job": self.job, "files": self.files,
                "cases": {key: asdict(entry) for key, entry in self.cases.items()}}  # fmt: skip
        return atomic_write_bytes(Path(folder) / MANIFEST, orjson.dumps(data, option=orjson.OPT_INDENT_2))

    @classmethod
    def load(cls, folder: Path) -> Manifest | None:
        """The manifest in ``folder``; None when there is none, or it is damaged or of another version."""
        path = Path(folder) / MANIFEST
        try:
            data = orjson.loads(path.read_bytes())
            if data.get("version") != VERSION:
                return None
            cases = {key: CaseEntry(**entry) for key, entry in data["cases"].items()}
            return cls(dict(data["job"]), cases, dict(data.get("files") or {}))
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return None  # a damaged manifest is a missing one: everything is converted again
