"""Reading a case back with its correction files laid over the original.

A correction mirrors the dataset's layout: ``corrections/SegmentationClass/2.png``
replaces ``SegmentationClass/2.png``. Reading a corrected case therefore
starts from the original case and swaps in what the correction files hold:

* a mask whose ``relative_path`` has a correction is decoded from it, in
  the encoding the original used (:func:`~napari_nsclc.formats.masks.read_mask_like`);
* any other correction file (a NuCLS CSV, a VOC XML) is read with the
  registry, and its point, box and polygon sets replace the sets of the
  same name.

Files holding a whole dataset (an IGNITE COCO file) are not overlaid: the
workspace reads the corrected file itself.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from .. import registry
from ..formats.masks import load_case, read_mask_like
from ..imageio import LazyArray
from ..model import Case, NsclcFormatError

__all__ = ["detached", "overlay"]


def detached(case: Case) -> Case:
    """A copy of ``case`` that shares no annotation arrays with it.

    napari paints into a Labels layer's array in place, so every case handed
    out must own its masks; images (read-only, possibly huge or lazy) and
    lazy masks (decoded afresh each time) are shared, not copied.
    """
    memo: dict[int, object] = {}
    for data in (case.image.data, *(mask.data for mask in case.masks)):
        if data is not None and (data is case.image.data or isinstance(data, LazyArray) or _is_dask(data)):
            memo[id(data)] = data
    return copy.deepcopy(case, memo)


def _is_dask(data) -> bool:
    return type(data).__module__.startswith("dask")


def overlay(case: Case, files: Mapping[str, Path], spec: registry.FormatSpec) -> Case:
    """``case`` (an original, loaded) with the correction ``files`` laid over it.

    Parameters
    ----------
    case : Case
        The original case, owned by the caller (see :func:`detached`).
    files : mapping of str to Path
        Correction files by their path relative to the dataset root
        (``"SegmentationClass/2.png"``).
    spec : FormatSpec
        The dataset's format; reads correction files other than masks.

    Raises
    ------
    NsclcFormatError
        Naming the correction file that cannot be read.
    """
    case = load_case(case)
    if spec.read_correction is not None:  # the format knows how its correction files lay over a case
        return spec.read_correction(case, dict(files))
    remaining = dict(files)
    masks = []
    for mask in case.masks:
        relative = mask.attributes.get("relative_path")
        if relative in remaining:
            path = remaining.pop(relative)
            attributes = {k: v for k, v in mask.attributes.items() if k != "missing"}
            mask = replace(mask, data=_decoded(path, attributes), attributes=attributes)
        masks.append(mask)
    case = replace(case, masks=masks)
    for relative, path in sorted(remaining.items()):
        case = _with_sets_of(case, path, spec, relative)
    return case


def _decoded(path: Path, attributes: dict):
    try:
        return read_mask_like(path, attributes)
    except NsclcFormatError:
        raise
    except Exception as error:  # noqa: BLE001 - PIL and tifffile fail in their own ways
        raise NsclcFormatError(path, f"cannot be read as a corrected mask: {error}") from error


def _with_sets_of(case: Case, path: Path, spec: registry.FormatSpec, relative: str) -> Case:
    """``case`` whose point, box and polygon sets are replaced by those of the correction file ``path``."""
    try:
        found = registry.read(path)
    except NsclcFormatError:
        found = None
    if found is None:
        try:
            found = registry.read(path, spec.name)
        except NsclcFormatError as error:
            raise NsclcFormatError(path, f"correction of {relative} cannot be read: {error.problem}") from error
    corrected = next((c for c in found if c.name == case.name), found[0] if len(found) == 1 else None)
    if corrected is None:
        raise NsclcFormatError(path, f"holds no case named {case.name!r}")
    out = {}
    for kind in ("points", "boxes", "polygons"):
        replacements = {s.name: s for s in getattr(corrected, kind)}
        kept = [replacements.pop(s.name, s) for s in getattr(case, kind)]
        out[kind] = kept + list(replacements.values())
    return replace(case, **out)
