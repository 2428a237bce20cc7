"""PASCAL VOC detection datasets: ``JPEGImages/``, ``Annotations/``, ``ImageSets/Main/``.

One case per ``Annotations/<id>.xml``; its image is ``JPEGImages/<filename>``
(falling back to ``<id>.jpg``/``.png``), read lazily. Split membership from
``ImageSets/Main/<split>.txt`` is kept in ``provenance.details["voc_splits"]``.
All cases share one class schema: the class names in first-seen order.

The XML of each image is read and written by :mod:`napari_nsclc.formats.voc`,
which keeps every element it does not interpret (labelme, LabelImg and CVAT
variants included). Writing a dataset writes the annotation files, copies
(or encodes) the images into ``JPEGImages/`` when they are not there yet, and
adds the ids to the split lists without removing any.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._atomic import atomic_path
from ..conversion import needs_image_size
from ..formats import voc
from ..model import Case, ClassSchema, NsclcFormatError
from ..registry import FormatSpec

__all__ = ["FORMAT", "read_voc_detection", "write_voc_detection"]

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def _root_of(path: Path) -> Path:
    return path.parent if path.name in ("Annotations", "JPEGImages", "ImageSets") else path


def sniff(path: Path) -> bool:
    """A folder with ``Annotations/`` (holding .xml) and ``JPEGImages/``."""
    if not path.is_dir():
        return False
    root = _root_of(path)
    annotations = root / "Annotations"
    return annotations.is_dir() and (root / "JPEGImages").is_dir() and any(annotations.glob("*.xml"))


def read_splits(root: Path) -> dict[str, list[str]]:
    """``{image id: [split, ...]}`` from ``ImageSets/Main/*.txt`` (class-specific lists ignored)."""
    splits: dict[str, list[str]] = {}
    folder = root / "ImageSets" / "Main"
    if not folder.is_dir():
        return splits
    for file in sorted(folder.glob("*.txt")):
        if "_" in file.stem:  # "<class>_<split>.txt" lists per-class presence, not membership
            continue
        for line in file.read_text().splitlines():
            image_id = line.split()[0] if line.strip() else ""
            if image_id:
                splits.setdefault(image_id, []).append(file.stem)
    return splits


def _image_for(root: Path, image_id: str, header_filename: str | None) -> Path | None:
    folder = root / "JPEGImages"
    if header_filename and (folder / header_filename).is_file():
        return folder / header_filename
    for suffix in _IMAGE_SUFFIXES:
        if (folder / f"{image_id}{suffix}").is_file():
            return folder / f"{image_id}{suffix}"
    return None


def read_voc_detection(path: str | Path) -> list[Case]:
    """Read a VOC detection dataset root into one case per annotation file.

    Raises
    ------
    NsclcFormatError
        If the folder has no ``Annotations/*.xml``.
    """
    root = _root_of(Path(path))
    files = sorted((root / "Annotations").glob("*.xml"))
    if not files:
        raise NsclcFormatError(root, "has no Annotations/*.xml")
    splits = read_splits(root)
    texts = {file: voc.read_text(file) for file in files}
    names: list[str] = []
    headers = {}
    for file, text in texts.items():
        header, objects, _ = voc.parse_voc(text, file)
        headers[file] = header
        names.extend(o.name for o in objects)
    schema = ClassSchema.from_names("voc", names)
    cases = []
    for file, text in texts.items():
        image = _image_for(root, file.stem, headers[file].get("filename"))
        case = voc.case_from_voc(file, text, schema, image_path=image)
        if image is None:
            case.provenance.warnings.append(f"{file.name}: no image for it in JPEGImages/; boxes only")
        case.provenance.format = "voc-detection"
        case.provenance.reader = __name__
        case.provenance.details["voc_splits"] = splits.get(file.stem, [])
        case.provenance.details["dataset_root"] = str(root)
        cases.append(case)
    return cases


def place_image(case: Case, folder: Path, overwrite: bool) -> str | None:
    """Copy or encode the case's image into ``folder``; return its file name."""
    image = case.image
    if image.path and Path(image.path).is_file():
        source = Path(image.path)
        target = folder / source.name
        if not target.exists() or (overwrite and source.resolve() != target.resolve()):
            with atomic_path(target) as tmp:
                shutil.copyfile(source, tmp)
        return target.name
    if image.data is None:
        return None
    from PIL import Image

    pixels = np.asarray(image.data[0] if image.multiscale else image.data)
    if pixels.dtype != np.uint8:
        low, high = float(pixels.min()), float(pixels.max())
        pixels = ((pixels - low) / ((high - low) or 1) * 255).astype(np.uint8)
    target = folder / f"{case.name}.jpg"
    if not target.exists() or overwrite:
        with atomic_path(target) as tmp:
            Image.fromarray(pixels).save(tmp, format="JPEG", quality=95)
    return target.name


def add_to_splits(root: Path, memberships: dict[str, list[str]], task: str = "Main") -> list[Path]:
    """Append new ids to ``ImageSets/<task>/<split>.txt``, keeping the ids already listed."""
    by_split: dict[str, list[str]] = {}
    for image_id, splits in memberships.items():
        for split in splits or ["default"]:
            by_split.setdefault(split, []).append(image_id)
    written = []
    for split, ids in by_split.items():
        target = root / "ImageSets" / task / f"{split}.txt"
        existing = target.read_text().splitlines() if target.is_file() else []
        listed = {line.split()[0] for line in existing if line.strip()}
        new = [i for i in ids if i not in listed]
        if new:
            text = "".join(f"{line}\n" for line in existing) + "".join(f"{i}\n" for i in new)
            voc.write_text_if_changed(target, text, overwrite=True)
            written.append(target)
    return written


def _is_volume(case: Case) -> bool:
    return case.image.shape is not None and len(case.image.shape) == 3 and not case.image.rgb


def annotated_slices(case: Case) -> list[Case]:
    """One 2-D case per annotated slice of a volume, for detection training sets.

    Each slice image is the volume's plane rendered to 8-bit grey through the
    case's display window (``image.metadata["window"]``, e.g. the CT
    mediastinum window), since VOC images are 8-bit pictures; Hounsfield units
    are not kept. The case is named by the slice's SOPInstanceUID when known,
    else ``<case>_z<plane>``.

    Raises
    ------
    NsclcFormatError
        If the volume has no pixels.
    """
    from dataclasses import replace

    from ..model import BoxSet, ImageRef

    if case.image.data is None:
        raise NsclcFormatError(case.provenance.source or case.name,
                               f"volume {case.name!r} has no pixels to write as VOC images")
    uids = case.image.metadata.get("sop_instance_uids") or []
    width, level = case.image.metadata.get("window") or (None, None)
    pieces = []
    for obj_set in case.boxes:
        if obj_set.planes is None:
            continue
        for plane in sorted(set(obj_set.planes.tolist())):
            chosen = np.flatnonzero(obj_set.planes == plane)
            pixels = np.asarray(case.image.data[plane], dtype=np.float32)
            low, high = (level - width / 2, level + width / 2) if width else (float(pixels.min()), float(pixels.max()))
            grey = (np.clip((pixels - low) / ((high - low) or 1), 0, 1) * 255).round().astype(np.uint8)
            name = uids[plane] if plane < len(uids) else f"{case.name}_z{plane}"
            boxes = BoxSet(obj_set.name, obj_set.bounds[chosen], obj_set.classes[chosen], obj_set.schema,
                           [{k: v for k, v in obj_set.attributes[i].items() if k != "voc_index"} for i in chosen])
            image = ImageRef(shape=grey.shape, pixel_size=case.image.pixel_size[-2:], unit=case.image.unit,
                             origin=case.image.origin[-2:], data=grey, name=name)
            pieces.append(Case(name, image, boxes=[boxes], provenance=replace(case.provenance)))
    return pieces


def write_voc_detection(cases: Sequence[Case], path: str | Path, *, overwrite: bool = False) -> list[Path]:
    """Write ``cases`` as a VOC detection dataset rooted at ``path``.

    Parameters
    ----------
    cases : sequence of Case
        Any cases with boxes (polygons are written as their bounding boxes).
        A volume with boxes on slices (Lung-PET-CT-Dx) becomes one image per
        annotated slice (see :func:`annotated_slices`).
    path : str or Path
        The dataset root; ``Annotations/``, ``JPEGImages/`` and
        ``ImageSets/Main/`` are created as needed.
    overwrite : bool
        Replace annotation files and images that differ. Unchanged files are
        never touched; split lists only ever gain ids.

    Returns
    -------
    list of Path
        Files written.
    """
    root = _root_of(Path(path))
    written: list[Path] = []
    memberships: dict[str, list[str]] = {}
    flat = [piece for case in cases for piece in (annotated_slices(case) if _is_volume(case) else [case])]
    for case in flat:
        file_name = place_image(case, root / "JPEGImages", overwrite)
        text = voc.case_to_voc_text(case, filename=file_name)
        target = root / "Annotations" / f"{case.name}.xml"
        if voc.write_text_if_changed(target, text, overwrite):
            written.append(target)
        memberships[case.name] = list(case.provenance.details.get("voc_splits", []))
    written += add_to_splits(root, memberships)
    return written


FORMAT = FormatSpec(
    name="voc-detection",
    title="PASCAL VOC detection dataset",
    sniff=sniff,
    read=read_voc_detection,
    write=write_voc_detection,
    extensions=(".xml",),
    priority=50,
    is_dataset=True,
    shared_files=("ImageSets/*", "JPEGImages/*"),
    layout="Annotations/*.xml and JPEGImages/",
    produces=frozenset({"boxes"}),
    extras=("pose", "truncated", "difficult", "occluded", "attributes"),
    object_fields=voc.voc_object_fields,
    family="voc",
    holds=voc.VOC_DETECTION_HOLDS,
    layers="merged",
    check=needs_image_size("PASCAL VOC"),
    per_case=True,
    merged_files=(("ImageSets/*/*.txt", "lines"),),
)
