"""CoCaHis: one HDF5 of H&E images with seven annotators' masks (FORMATS.md §6).

Datasets: ``HE/raw`` (N, H, W, 3) uint8 (plus stain-normalised ``HE/sn1``,
``HE/sn2``), ``GT/GT1`` … ``GT/GT7`` (one per annotator) and
``GT/GT_majority_vote``, each (N, H, W) with foreground 1 or 255.

Each image is a case with eight Labels layers (GT1…GT7, majority vote), all
normalised to 0/1 so that annotators can be compared layer against layer;
the foreground value each dataset used is kept in the mask's attributes and
restored on writing. Images are read from the file only when shown.

Corrections are written to ``corrections/<file name>``: an HDF5 with the
same ``GT/...`` datasets (all images, edited ones replaced); the original
file is never modified.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._atomic import atomic_path, refuse_overwrite
from ..conversion import exact
from ..model import Case, ClassInfo, ClassSchema, ImageRef, LabelMask, NothingToWrite, NsclcFormatError, Provenance
from ..registry import FormatSpec

__all__ = [
    "ANNOTATORS",
    "ANNOTATOR_COLORS",
    "COCAHIS_SCHEMA",
    "FORMAT",
    "annotator_schema",
    "read_cocahis",
    "write_cocahis",
]

#: The mask datasets, in layer order.
ANNOTATORS = (*(f"GT{k}" for k in range(1, 8)), "GT_majority_vote")

COCAHIS_SCHEMA = ClassSchema(
    "cocahis", (ClassInfo(1, "cancer", "#e6194b", "metastatic colon cancer in liver"),), background=0
)

#: One colour per annotator, so that their layers can be told apart on screen.
ANNOTATOR_COLORS = dict(
    zip(
        ANNOTATORS,
        ("#3cb44b", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6", "#bcf60c", "#e6194b"),
        strict=True,
    )
)


def annotator_schema(name: str) -> ClassSchema:
    """:data:`COCAHIS_SCHEMA` with annotator ``name``'s colour (same class, same code)."""
    (cancer,) = COCAHIS_SCHEMA.classes
    recoloured = ClassInfo(cancer.code, cancer.name, ANNOTATOR_COLORS[name], cancer.description)
    return ClassSchema(f"cocahis {name}", (recoloured,), background=COCAHIS_SCHEMA.background)


def _sniff(path: Path) -> bool:
    path = Path(path)
    if not path.is_file() or path.suffix.lower() not in (".h5", ".hdf5", ".hdf"):
        return False
    try:
        import h5py

        with h5py.File(path, "r") as h5:
            return "HE/raw" in h5 and "GT" in h5
    except Exception:  # noqa: BLE001 - a sniffer never raises
        return False


def _read_slice(path: str, key: str, index: int, normalise: bool) -> np.ndarray:
    import h5py

    with h5py.File(path, "r") as h5:
        data = np.asarray(h5[key][index])
    if normalise:
        data = (data != 0).astype(np.uint8)
    return data


def _lazy(path: Path, key: str, index: int, shape, dtype, normalise: bool):
    from ..imageio import LazyArray

    return LazyArray(lambda: _read_slice(str(path), key, index, normalise), lambda: (shape, dtype))


def _foreground(dataset) -> int:
    """1 or 255: the foreground value a GT dataset uses (from its first non-empty image)."""
    for index in range(dataset.shape[0]):
        top = int(np.max(dataset[index]))
        if top:
            return top
    return 1


def read_cocahis(path: str | Path) -> list[Case]:
    """One case per image of a CoCaHis HDF5, with eight 0/1 Labels layers each.

    Raises
    ------
    NsclcFormatError
        When ``HE/raw`` is missing or a GT dataset's shape does not match it.
    """
    import h5py

    path = Path(path)
    try:
        h5 = h5py.File(path, "r")
    except OSError as error:
        raise NsclcFormatError(path, f"not an HDF5 file h5py can open ({error})") from error
    warnings: list[str] = []
    with h5:
        if "HE/raw" not in h5:
            raise NsclcFormatError(path, "has no HE/raw dataset (the H&E images)")
        raw = h5["HE/raw"]
        if raw.ndim != 4 or raw.shape[-1] != 3:
            raise NsclcFormatError(path, f"HE/raw has shape {raw.shape}; expected (N, H, W, 3)")
        n, height, width = raw.shape[:3]
        masks_meta = []
        for name in ANNOTATORS:
            key = f"GT/{name}"
            if key not in h5:
                warnings.append(f"{path.name}: {key} is missing; its layer starts empty")
                masks_meta.append((name, None, 1))
                continue
            dataset = h5[key]
            if tuple(dataset.shape) != (n, height, width):
                raise NsclcFormatError(path, f"{key} has shape {dataset.shape} but HE/raw has {(n, height, width)}")
            values = np.unique(dataset[0])
            foreground = _foreground(dataset)
            if not set(values.tolist()) <= {0, foreground}:
                warnings.append(
                    f"{path.name}: {key} holds values {values.tolist()}; every non-zero value is shown as 1"
                )
            masks_meta.append((name, key, foreground))
        extra = [k for k in ("HE/sn1", "HE/sn2") if k in h5]
    if n == 0:
        raise NsclcFormatError(path, "HE/raw holds no images")
    cases = []
    for index in range(n):
        image = ImageRef(
            path=str(path),
            shape=(height, width),
            data=_lazy(path, "HE/raw", index, (height, width, 3), np.uint8, False),
            rgb=True,
            name=f"H&E {index}",
            metadata={"hdf5_index": index, "stain_normalised": extra},
        )
        masks = []
        for name, key, foreground in masks_meta:
            data = (
                _lazy(path, key, index, (height, width), np.uint8, True)
                if key is not None
                else np.zeros((height, width), np.uint8)
            )
            attributes = {
                "hdf5_key": key or f"GT/{name}",
                "hdf5_index": index,
                "foreground": foreground,
                "path": str(path),
            }
            masks.append(LabelMask(name, data, annotator_schema(name), attributes=attributes))
        provenance = Provenance(
            source=str(path),
            format="cocahis",
            reader=__name__,
            details={"images": n, "foreground": {name: fg for name, _, fg in masks_meta}},
            warnings=list(warnings),
        )
        cases.append(Case(f"{path.stem} {index}", image=image, masks=masks, provenance=provenance))
    from .masks import load_case

    cases[0] = load_case(cases[0])
    return cases


def write_cocahis(cases: Sequence[Case], path: Path, overwrite: bool = False, **_) -> list[Path]:
    """Write the cases' GT masks as a CoCaHis-layout HDF5 (``GT/...`` only).

    Parameters
    ----------
    cases : sequence of Case
        Cases read from one CoCaHis file (edited or not).
    path : Path
        Output ``.hdf5`` file, or a folder: ``<folder>/corrections/<source name>``
        when it is the source's folder, else ``<folder>/<source name>``.
        Images not among ``cases`` keep their original masks.
    overwrite : bool
        Replace an existing output file (never the source itself).
    """
    import h5py

    path = Path(path)
    if not cases:
        raise NothingToWrite(path, "nothing to write")
    source = Path(cases[0].image.path or cases[0].provenance.source)
    if path.suffix.lower() not in (".h5", ".hdf5", ".hdf"):
        folder = path / "corrections" if path.resolve() == source.parent.resolve() else path
        path = folder / source.name
    if source.exists() and path.resolve() == source.resolve():
        raise NsclcFormatError(path, "is the original CoCaHis file; corrections go to a new file")
    refuse_overwrite(path, overwrite)
    arrays: dict[str, np.ndarray] = {}
    if source.is_file():
        with h5py.File(source, "r") as h5:
            for name in ANNOTATORS:
                if f"GT/{name}" in h5:
                    arrays[name] = np.asarray(h5[f"GT/{name}"])
    for case in cases:
        index = int(case.image.metadata.get("hdf5_index", cases.index(case)))
        for mask in case.masks:
            name = mask.attributes.get("hdf5_key", f"GT/{mask.name}").split("/")[-1]
            values = (np.asarray(mask.data) != 0).astype(np.uint8)
            foreground = int(mask.attributes.get("foreground", 1))
            if name not in arrays:
                arrays[name] = np.zeros((len(cases), *values.shape), np.uint8)
            arrays[name][index] = values * foreground
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as h5:
            for name, array in arrays.items():
                h5.create_dataset(f"GT/{name}", data=array, compression="gzip")
            h5.attrs["source"] = str(source)
    return [path]


def read_correction(case: Case, files: dict[str, Path]) -> Case:
    """``case`` with its GT masks taken from a correction file that :func:`write_cocahis` wrote.

    A correction holds the ``GT/...`` datasets only (no H&E), so it is read
    over the original case: each mask found in it is replaced, lazily.

    Raises
    ------
    NsclcFormatError
        When the file is not HDF5, or a GT dataset does not fit the case's image.
    """
    import h5py

    (path,) = (Path(p) for p in files.values())
    index = int(case.image.metadata["hdf5_index"])
    height, width = case.image.shape[:2]
    try:
        h5 = h5py.File(path, "r")
    except OSError as error:
        raise NsclcFormatError(path, f"not an HDF5 file h5py can open ({error})") from error
    with h5:
        for mask in case.masks:
            key = mask.attributes.get("hdf5_key")
            if key not in h5:
                continue
            shape = h5[key].shape
            if len(shape) != 3 or shape[1:] != (height, width) or index >= shape[0]:
                raise NsclcFormatError(path, f"{key} has shape {shape}; image {index} is {height}x{width}")
            mask.data = _lazy(path, key, index, (height, width), np.uint8, True)
    case.provenance.details["correction"] = str(path)
    case.provenance.details.pop("loaded", None)  # its masks are lazy again: decode them when shown
    return case


FORMAT = FormatSpec(
    name="cocahis",
    title="CoCaHis HDF5 (H&E + seven annotators)",
    sniff=_sniff,
    read=read_cocahis,
    write=write_cocahis,
    extensions=(".hdf5", ".h5"),
    priority=30,
    produces=frozenset({"mask"}),
    family="masks",
    layered=True,
    holds={"mask": exact("GT/GT1 ... GT/GT_majority_vote, each in its foreground value")},
    accepts=("cocahis",),
    read_correction=read_correction,
)
