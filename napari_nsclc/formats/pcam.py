"""PatchCamelyon (PCam) HDF5: 96x96 H&E patches with a tumour label (FORMATS.md §6).

PCam ships each split as two files, ``..._x.h5`` (key ``x``, (N, 96, 96, 3)
uint8) and ``..._y.h5`` (key ``y``, (N, 1, 1, 1) uint8); a single file with
both keys is accepted too. The label says whether the patch's centre
32x32 region holds tumour.

The patches open as one image stack (browse them with napari's slider) and
the labels as a Labels layer that paints the centre 32x32 region of each
tumour patch (value 1), so the label is visible on the patch it describes.
Nothing is loaded until shown. Correcting a label means painting or erasing
the centre region; the writer turns each patch back into 0/1 and writes a new
``_y.h5``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._atomic import atomic_path, refuse_overwrite
from ..conversion import exact
from ..model import Case, ClassInfo, ClassSchema, ImageRef, LabelMask, NothingToWrite, NsclcFormatError, Provenance
from ..registry import FormatSpec

__all__ = ["FORMAT", "PCAM_SCHEMA", "labels_from_mask", "read_pcam", "write_pcam_labels"]

PCAM_SCHEMA = ClassSchema(
    "pcam", (ClassInfo(1, "tumour", "#e6194b", "tumour in the centre 32x32 region"),), background=0
)
PATCH, CENTRE = 96, 32
_CENTRE = slice((PATCH - CENTRE) // 2, (PATCH + CENTRE) // 2)

#: Open files behind the lazy arrays, kept for the life of the process.
_OPEN_FILES: dict[str, object] = {}


def _labels_file(path: Path) -> Path | None:
    if path.stem.endswith("_x"):
        candidate = path.with_name(path.stem[:-2] + "_y" + path.suffix)
        if candidate.is_file():
            return candidate
    return None


def _sniff(path: Path) -> bool:
    path = Path(path)
    if not path.is_file() or path.suffix.lower() not in (".h5", ".hdf5"):
        return False
    try:
        import h5py

        with h5py.File(path, "r") as h5:
            return "x" in h5 and h5["x"].ndim == 4 and tuple(h5["x"].shape[1:]) == (PATCH, PATCH, 3)
    except Exception:  # noqa: BLE001 - a sniffer never raises
        return False


def _open(path: Path):
    import h5py

    key = str(path.resolve())
    if key not in _OPEN_FILES:
        _OPEN_FILES[key] = h5py.File(path, "r")
    return _OPEN_FILES[key]


def labels_from_mask(mask: np.ndarray) -> np.ndarray:
    """Patch labels from a (N, 96, 96) Labels stack: 1 where the centre region has any tumour pixel."""
    mask = np.asarray(mask)
    return (mask[:, _CENTRE, _CENTRE] != 0).any(axis=(1, 2)).astype(np.uint8)


def read_pcam(path: str | Path) -> list[Case]:
    """One case: the patch stack and a Labels stack showing each tumour label.

    Raises
    ------
    NsclcFormatError
        When ``x`` is missing or has the wrong shape, or ``y`` does not match it.
    """
    import dask.array as da

    path = Path(path)
    try:
        h5 = _open(path)
    except OSError as error:
        raise NsclcFormatError(path, f"not an HDF5 file h5py can open ({error})") from error
    if "x" not in h5 or h5["x"].ndim != 4 or tuple(h5["x"].shape[1:]) != (PATCH, PATCH, 3):
        raise NsclcFormatError(path, "has no 'x' dataset of shape (N, 96, 96, 3)")
    x = h5["x"]
    n = x.shape[0]
    warnings = []
    labels_path = path if "y" in h5 else _labels_file(path)
    if labels_path is None:
        warnings.append(
            f"{path.name}: no labels found ('y' key or a matching _y.h5 file); the label layer starts empty"
        )
        y = np.zeros(n, np.uint8)
    else:
        y = np.asarray(_open(labels_path)["y"]).reshape(-1)
        if y.shape[0] != n:
            raise NsclcFormatError(labels_path, f"'y' holds {y.shape[0]} labels but {path.name} holds {n} patches")
        bad = ~np.isin(y, (0, 1))
        if bad.any():
            warnings.append(
                f"{labels_path.name}: {int(bad.sum())} label(s) other than 0/1 "
                f"(first at patch {int(np.argmax(bad))}); kept"
            )
    patches = da.from_array(x, chunks=(1, PATCH, PATCH, 3))
    centre = np.zeros((PATCH, PATCH), np.uint8)
    centre[_CENTRE, _CENTRE] = 1
    labels = da.from_array(y.astype(np.uint8), chunks=256)[:, None, None] * da.from_array(centre)[None]
    labels = labels.rechunk((1, PATCH, PATCH))
    image = ImageRef(
        path=str(path),
        shape=(n, PATCH, PATCH),
        pixel_size=(1.0, 1.0, 1.0),
        origin=(0.0, 0.0, 0.0),
        data=patches,
        rgb=True,
        name=f"{path.stem} patches",
        unit="px",
        metadata={"labels_file": str(labels_path) if labels_path else None},
    )
    mask = LabelMask(
        "tumour label (centre 32x32)",
        labels,
        PCAM_SCHEMA,
        attributes={
            "path": str(labels_path) if labels_path else None,
            "pcam_labels": y.tolist() if n <= 4096 else None,
        },
    )
    counts = {"tumour": int((y == 1).sum()), "no tumour": int((y == 0).sum())}
    provenance = Provenance(
        source=str(path), format="pcam", reader=__name__, details={"patches": n, "labels": counts}, warnings=warnings
    )
    return [Case(path.stem.removesuffix("_x"), image=image, masks=[mask], provenance=provenance)]


def write_pcam_labels(cases: Sequence[Case], path: Path, overwrite: bool = False, **_) -> list[Path]:
    """Write each case's labels (from its Labels stack) as a PCam ``_y.h5`` file.

    ``path`` is a ``.h5`` file, or a folder: ``corrections/<name>_y.h5`` when
    it is the source's folder, else ``<folder>/<name>_y.h5``. The original is
    never replaced.
    """
    import h5py

    path = Path(path)
    written = []
    for case in cases:
        if not case.masks:
            continue
        labels = labels_from_mask(case.masks[0].data).reshape(-1, 1, 1, 1)
        target = path
        if path.suffix.lower() not in (".h5", ".hdf5"):
            source_dir = Path(case.image.path).parent if case.image.path else None
            folder = path / "corrections" if source_dir and path.resolve() == source_dir.resolve() else path
            target = folder / f"{case.name}_y.h5"
        original = case.masks[0].attributes.get("path")
        if original and Path(original).exists() and target.resolve() == Path(original).resolve():
            raise NsclcFormatError(target, "is the original PCam labels file; corrections go to a new file")
        refuse_overwrite(target, overwrite)
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            with h5py.File(tmp, "w") as h5:
                h5.create_dataset("y", data=labels)
        written.append(target)
    if not written:
        raise NothingToWrite(path, "nothing to write: no label layer")
    return written


FORMAT = FormatSpec(
    name="pcam",
    title="PatchCamelyon HDF5 (x patches, y labels)",
    sniff=_sniff,
    read=read_pcam,
    write=write_pcam_labels,
    extensions=(".h5",),
    priority=30,
    produces=frozenset({"mask stack"}),
    family="pcam",
    holds={"mask stack": exact("a y dataset of 0/1 labels")},
    accepts=("pcam",),
)
