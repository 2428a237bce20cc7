"""Lung-PET-CT-Dx: CT and PET-CT DICOM series with PASCAL VOC tumour boxes (TCIA).

Layout of a collection root (FORMATS.md §4)::

    metadata.csv                                  NBIA manifest (may list series not on disk)
    Lung-PET-CT-Dx/Lung_Dx-A0002/<study>/<series>/1-01.dcm ...
    Annotation/A0002/<SOPInstanceUID>.xml         one VOC file per annotated slice

The patient's annotation folder has no ``Lung_Dx-`` prefix. Each XML names
the slice it belongs to by its file name; its ``<filename>`` says "Unknow"
and is ignored. Boxes become a :class:`~napari_nsclc.model.BoxSet` whose
``planes`` are the z-indices of those slices in the sorted series, so napari
draws each rectangle on its own slice. A file whose UID matches no loaded
slice is listed in the warnings and kept: saving to another folder copies it.

The writer writes one XML per annotated slice, named by its SOPInstanceUID,
under ``Annotation/<patient>/``. Files whose content does not change are not
touched, so editing one box rewrites exactly one file.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..conversion import exact
from ..formats import dicom, voc
from ..model import BoxSet, Case, ClassInfo, ClassSchema, NsclcFormatError
from ..registry import FormatSpec

__all__ = [
    "FORMAT",
    "LUNG_PET_CT_DX_SCHEMA",
    "LUNG_VOC_TEMPLATE",
    "SeriesRow",
    "annotation_folder",
    "browse_collection",
    "count_annotated_slices",
    "find_collection_root",
    "read_lung_pet_ct_dx",
    "read_metadata_csv",
    "write_lung_pet_ct_dx",
]

_CLASS_TABLE = (
    # code, VOC name, description, colour
    (1, "A", "A adenocarcinoma", "#e6194b"),
    (2, "B", "B small cell carcinoma", "#3cb44b"),
    (3, "E", "E large cell carcinoma", "#4363d8"),
    (4, "G", "G squamous cell carcinoma", "#f58231"),
)

#: The diagnosis classes of Lung-PET-CT-Dx; the VOC ``<name>`` is the letter.
LUNG_PET_CT_DX_SCHEMA = ClassSchema(
    "lung-pet-ct-dx",
    tuple(ClassInfo(code, name, color, description) for code, name, description, color in _CLASS_TABLE),
)

#: The layout of the collection's annotation files (as written by its labelling
#: tool): new files are written like this so that they match their neighbours.
LUNG_VOC_TEMPLATE = """<annotation verified="no">
  <folder>Unknow</folder>
  <filename>Unknow</filename>
  <path>Unknow</path>
  <source>Unknow<database>Unknown</database>
  </source>
  <size>
    <width>{width}</width>
    <height>{height}</height>
    <depth>1</depth>
  </size>
  <segmented>0</segmented>
{objects}</annotation>"""

LUNG_VOC_OBJECT = """  <object>
    <name>{name}</name>
    <pose>Unspecified</pose>
    <truncated>0</truncated>
    <Difficult>0</Difficult>
    <bndbox>
      <xmin>{xmin}</xmin>
      <ymin>{ymin}</ymin>
      <xmax>{xmax}</xmax>
      <ymax>{ymax}</ymax>
    </bndbox>
  </object>
"""


_PATIENT_PREFIX = "Lung_Dx-"
_IMAGES_FOLDER = "Lung-PET-CT-Dx"
_ANNOTATION_FOLDER = "Annotation"


# --------------------------------------------------------------------------- layout


def _is_collection_root(folder: Path) -> bool:
    return (folder / _ANNOTATION_FOLDER).is_dir() and (
        (folder / _IMAGES_FOLDER).is_dir() or (folder / "metadata.csv").is_file()
    )


def find_collection_root(path: str | Path) -> Path | None:
    """The collection root holding ``path`` (itself or an ancestor), or ``None``."""
    path = Path(path).resolve()
    for folder in (path, *path.parents):
        if folder.is_dir() and _is_collection_root(folder):
            return folder
    return None


def patient_folder_name(patient_id: str) -> str:
    """``"Lung_Dx-A0002"`` → ``"A0002"``, the name of its annotation folder."""
    return patient_id[len(_PATIENT_PREFIX) :] if patient_id.startswith(_PATIENT_PREFIX) else patient_id


def diagnosis_letter(patient_id: str) -> str:
    """The diagnosis letter in a patient ID (``"Lung_Dx-A0002"`` → ``"A"``), or ``""``."""
    letter = patient_folder_name(patient_id)[:1]
    return letter if letter in LUNG_PET_CT_DX_SCHEMA else ""


def annotation_folder(root: Path, patient_id: str) -> Path:
    """``root/Annotation/<patient without Lung_Dx- prefix>``."""
    return Path(root) / _ANNOTATION_FOLDER / patient_folder_name(patient_id)


# --------------------------------------------------------------------------- reading


def _attach_boxes(case: Case, xml_files: dict[str, Path], used: set[str]) -> None:
    """Add the boxes of every XML named by a slice of ``case``."""
    uids = case.image.metadata["sop_instance_uids"]
    rows, columns = case.image.shape[-2:]
    bounds, classes, attributes, planes = [], [], [], []
    documents, files = {}, {}
    warnings = case.provenance.warnings
    for plane, uid in enumerate(uids):
        path = xml_files.get(uid)
        if path is None:
            continue
        used.add(uid)
        text = voc.read_text(path)
        try:
            header, objects, file_warnings = voc.parse_voc(text, path)
        except NsclcFormatError as error:
            warnings.append(f"{path.name}: {error.problem}; its slice {plane} has no box")
            continue
        documents[uid], files[uid] = text, str(path)
        warnings.extend(file_warnings)
        for obj in objects:
            ymin, xmin, ymax, xmax = obj.bounds
            if header.get("width") is None and (xmin < 0 or ymin < 0 or xmax > columns or ymax > rows):
                warnings.append(f"{path.name}: object {obj.attributes['voc_index']} ({obj.name}): box "
                                f"{obj.attributes['bndbox']} lies partly outside the {columns}x{rows} slice; kept")
            if obj.name not in LUNG_PET_CT_DX_SCHEMA:
                warnings.append(f"{path.name}: object {obj.attributes['voc_index']}: class {obj.name!r} is not "
                                "one of A, B, E, G; kept as written")
            bounds.append(obj.bounds)
            classes.append(obj.name)
            attributes.append({**obj.attributes, "sop_instance_uid": uid})
            planes.append(plane)
    schema = LUNG_PET_CT_DX_SCHEMA
    unknown = [name for name in dict.fromkeys(classes) if name not in schema]
    if unknown:
        first_code = max(schema.codes) + 1
        schema = schema.with_classes(ClassSchema.from_names("extra", unknown, first_code=first_code).classes)
    case.boxes.append(BoxSet("tumour boxes", bounds, classes, schema, attributes=attributes, planes=planes))
    case.document["voc_documents"] = documents
    case.document["voc_files"] = files


def read_lung_pet_ct_dx(path: str | Path, *, lazy: bool | None = None, pet_units: str = "suv",
                        progress=None) -> list[Case]:
    """Read series and their tumour boxes from a collection root, patient, study or series folder.

    Parameters
    ----------
    path : str or Path
        The collection root, or any folder or ``.dcm`` file inside its
        ``Lung-PET-CT-Dx/`` tree.
    lazy, pet_units, progress
        Passed to :func:`napari_nsclc.formats.dicom.read_dicom`.

    Returns
    -------
    list of Case
        One per series, each with one box set ``"tumour boxes"`` (possibly
        empty). Annotation files that match no loaded slice are listed in the
        first case of their patient (``provenance.warnings`` and
        ``provenance.details["unmatched_annotations"]``). The series of one
        patient share a ``group``, so they open together, and when there are
        several each image is named by modality, series number and what sets
        its description apart, e.g. ``"CT 2 B70f"``
        (:func:`napari_nsclc.formats.dicom.group_series`).
    """
    path = Path(path)
    root = find_collection_root(path)
    if root is None:
        raise NsclcFormatError(path, f"is not inside a Lung-PET-CT-Dx collection (no folder holding "
                                     f"'{_ANNOTATION_FOLDER}/' next to '{_IMAGES_FOLDER}/' or metadata.csv)")
    scan_path = path
    if path.resolve() == root and (root / _IMAGES_FOLDER).is_dir():
        scan_path = root / _IMAGES_FOLDER
    cases = dicom.read_dicom(scan_path, lazy=lazy, pet_units=pet_units, progress=progress)
    by_patient: dict[str, list[Case]] = {}
    for case in cases:
        by_patient.setdefault(case.image.metadata["patient_id"], []).append(case)
    for patient_id, patient_cases in by_patient.items():
        folder = annotation_folder(root, patient_id)
        xml_files = {p.stem: p for p in sorted(folder.glob("*.xml"))} if folder.is_dir() else {}
        used: set[str] = set()
        for case in patient_cases:
            _attach_boxes(case, xml_files, used)
            case.provenance.format = "lung-pet-ct-dx"
            case.provenance.reader = __name__
            case.provenance.details["collection_root"] = str(root)
            case.provenance.details["annotation_folder"] = str(folder)
        unmatched = [xml_files[uid] for uid in xml_files if uid not in used]
        first = patient_cases[0]
        first.provenance.details["unmatched_annotations"] = [str(p) for p in unmatched]
        for p in unmatched:
            first.provenance.warnings.append(
                f"{p.name}: annotation for a slice that is not in the loaded series (SOPInstanceUID "
                f"{p.stem}); listed, and kept when saving")
    return cases


def sniff(path: Path) -> bool:
    """A collection root, or a folder/.dcm file inside one."""
    if path.is_file() and path.suffix.lower() != ".dcm":
        return False
    return find_collection_root(path) is not None


# --------------------------------------------------------------------------- metadata.csv and browsing


@dataclass
class SeriesRow:
    """One series of the collection, as the browser lists it."""

    patient: str
    diagnosis: str
    study: str
    study_date: str
    series: str
    series_uid: str
    modality: str
    slices: int
    annotated: int | None
    folder: Path | None
    on_disk: bool


def read_metadata_csv(path: str | Path) -> list[dict[str, str]]:
    """The rows of an NBIA ``metadata.csv``, as dicts keyed by its header.

    Raises
    ------
    NsclcFormatError
        If the file lacks the ``Series UID`` or ``Subject ID`` column.
    """
    path = Path(path)
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    if rows and not {"Series UID", "Subject ID"} <= set(rows[0]):
        raise NsclcFormatError(path, "is not an NBIA metadata.csv: it has no 'Series UID' and 'Subject ID' columns")
    return rows


def _sop_uids(folder: Path) -> set[str]:
    """SOPInstanceUIDs of the DICOM files in one series folder (headers only)."""
    import pydicom

    uids = set()
    for name in os.listdir(folder):
        file = folder / name
        if not file.is_file() or not dicom._is_dicom_file(file):
            continue
        try:
            header = pydicom.dcmread(file, stop_before_pixels=True, specific_tags=["SOPInstanceUID"])
            uids.add(str(header.SOPInstanceUID))
        except Exception:  # an unreadable file is reported when the series is opened
            continue
    return uids


def browse_collection(root: str | Path, *, count_annotated: bool = True) -> list[SeriesRow]:
    """Every series of a collection: from ``metadata.csv`` when present, else from a scan.

    Parameters
    ----------
    root : str or Path
        The collection root (or a folder inside it).
    count_annotated : bool
        Count, per series on disk, the slices that have an annotation file
        (reads each slice's header).

    Returns
    -------
    list of SeriesRow
        Sorted by patient, study date, modality and series description.
    """
    root = Path(root)
    collection = find_collection_root(root) or root
    rows: list[SeriesRow] = []
    manifest = collection / "metadata.csv"
    if manifest.is_file():
        for entry in read_metadata_csv(manifest):
            location = entry.get("File Location", "")
            folder = (collection / location).resolve() if location else None
            patient = entry.get("Subject ID", "")
            rows.append(SeriesRow(
                patient=patient,
                diagnosis=diagnosis_letter(patient),
                study=entry.get("Study Description", ""),
                study_date=entry.get("Study Date", ""),
                series=entry.get("Series Description", ""),
                series_uid=entry.get("Series UID", ""),
                modality=entry.get("Modality", ""),
                slices=int(entry.get("Number of Images") or 0),
                annotated=None,
                folder=folder,
                on_disk=bool(folder and folder.is_dir()),
            ))
    else:
        found, _ = dicom.find_series(collection)
        for series in found:
            rows.append(SeriesRow(
                patient=series.patient_id,
                diagnosis=diagnosis_letter(series.patient_id),
                study=series.study_description,
                study_date=series.study_date,
                series=series.series_description,
                series_uid=series.uid,
                modality=series.modality,
                slices=len(series.slices),
                annotated=None,
                folder=series.folder,
                on_disk=True,
            ))
    if count_annotated:
        for row in rows:
            row.annotated = count_annotated_slices(collection, row)
    rows.sort(key=lambda r: (r.patient, r.study_date, r.modality, r.series))
    return rows


def count_annotated_slices(root: Path, row: SeriesRow) -> int | None:
    """How many slices of the series in ``row`` have an annotation file (``None`` if not on disk).

    Reads the SOPInstanceUID of each slice (headers only, about a millisecond a file).
    """
    if not row.on_disk or row.folder is None:
        return None
    folder = annotation_folder(root, row.patient)
    if not folder.is_dir():
        return 0
    return len({p.stem for p in folder.glob("*.xml")} & _sop_uids(row.folder))


# --------------------------------------------------------------------------- writing


def read_correction(case: Case, files: dict[str, Path]) -> Case:
    """``case`` with the boxes of its slices read again, corrected XMLs (named by SOPInstanceUID) first."""
    xml_files = {uid: Path(path) for uid, path in case.document.get("voc_files", {}).items()}
    xml_files.update({Path(path).stem: Path(path) for path in files.values() if Path(path).suffix == ".xml"})
    case.boxes = [b for b in case.boxes if b.name != "tumour boxes"]
    _attach_boxes(case, xml_files, set())
    return case


def _patient_of(case: Case) -> str:
    patient = case.image.metadata.get("patient_id")
    if not patient:
        raise NsclcFormatError(case.provenance.source or case.name,
                               f"case {case.name!r} has no patient ID; cannot choose its Annotation folder")
    return str(patient)


def _objects_by_slice(case: Case) -> dict[str, list[voc.VocObject]]:
    uids = case.image.metadata.get("sop_instance_uids") or []
    by_uid: dict[str, list[voc.VocObject]] = {}
    for obj, plane in voc.boxes_of_case(case):
        if plane is None or not 0 <= plane < len(uids):
            raise NsclcFormatError(case.provenance.source or case.name,
                                   f"box of class {obj.name!r} lies on slice {plane}, which is not one of the "
                                   f"{len(uids)} slices of {case.name!r}")
        uid = uids[plane]
        if obj.attributes.get("sop_instance_uid") not in (None, uid):
            # Moved to another slice: it no longer matches its source element.
            obj.attributes = {k: v for k, v in obj.attributes.items() if k not in ("voc_index", "bndbox")}
        by_uid.setdefault(uid, []).append(obj)
    return by_uid


def _is_source(case: Case, uid: str, target: Path) -> bool:
    """Whether ``target`` is the very file the slice's boxes were read from."""
    source = case.document.get("voc_files", {}).get(uid)
    return source is not None and target.is_file() and target.resolve() == Path(source).resolve()


def write_lung_pet_ct_dx(cases: Sequence[Case], path: str | Path, *, overwrite: bool = False) -> list[Path]:
    """Write the tumour boxes of ``cases`` as ``Annotation/<patient>/<SOPInstanceUID>.xml``.

    Parameters
    ----------
    cases : sequence of Case
        Read by :func:`read_lung_pet_ct_dx` (or built with
        ``image.metadata["sop_instance_uids"]`` and ``["patient_id"]``).
    path : str or Path
        The collection root to write into (or any folder inside one).
    overwrite : bool
        Replace files whose content changes. Files whose content would be the
        same are never touched. With ``overwrite=True``, a slice whose boxes
        were all deleted has its XML removed when written in place; written
        anywhere else it gets an XML with no ``<object>``.

    Returns
    -------
    list of Path
        The files written or removed.
    """
    path = Path(path)
    root = find_collection_root(path) if path.exists() else None
    root = root or path
    changed: list[Path] = []
    for case in cases:
        patient = _patient_of(case)
        folder = annotation_folder(root, patient)
        documents: dict[str, str] = case.document.get("voc_documents", {})
        by_uid = _objects_by_slice(case)
        rows, columns = (case.image.shape or (0, 512, 512))[-2:]
        # A new file starts from the collection's layout; its placeholder object only lends its layout.
        placeholder = LUNG_VOC_OBJECT.format(name="A", xmin=0, ymin=0, xmax=1, ymax=1)
        blank = LUNG_VOC_TEMPLATE.format(width=columns, height=rows, objects=placeholder)
        for uid in dict.fromkeys([*documents, *by_uid]):
            target = folder / f"{uid}.xml"
            objects = by_uid.get(uid, [])
            source = documents.get(uid)
            if not objects and source is not None and voc.parse_voc(source, target)[1] and _is_source(case, uid, target):
                if target.read_text() == source and overwrite:
                    target.unlink()
                    changed.append(target)
                continue
            # Written elsewhere (a conversion, a correction), a slice whose boxes were all
            # deleted gets an XML with no object: leaving it out would let the original's boxes show through.
            text = voc.render_voc(objects, source if source is not None else blank)
            if voc.write_text_if_changed(target, text, overwrite):
                changed.append(target)
        for unmatched in case.provenance.details.get("unmatched_annotations", []):
            source_file = Path(unmatched)
            target = folder / source_file.name
            if source_file.is_file() and source_file.resolve() != target.resolve():
                if voc.write_text_if_changed(target, voc.read_text(source_file), overwrite):
                    changed.append(target)
    return changed


FORMAT = FormatSpec(
    name="lung-pet-ct-dx",
    title="Lung-PET-CT-Dx (DICOM + VOC boxes)",
    sniff=sniff,
    read=read_lung_pet_ct_dx,
    write=write_lung_pet_ct_dx,
    extensions=(".xml",),
    priority=60,
    is_dataset=True,
    layout="Annotation/ with Lung-PET-CT-Dx/ or metadata.csv",
    read_correction=read_correction,
    produces=frozenset({"slice boxes"}),
    extras=("pose", "truncated", "difficult"),
    object_fields=voc.voc_object_fields,
    family="voc",
    holds={"slice boxes": exact("one VOC file per annotated slice, named by its SOPInstanceUID")},
    accepts=("lung-pet-ct-dx",),
    per_case=True,
)
