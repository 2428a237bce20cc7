"""Synthetic radiology fixtures: a tiny Lung-PET-CT-Dx collection and a PASCAL VOC dataset.

Everything here is synthetic and deterministic (fixed seeds, UIDs derived from
names). The DICOM files are written with pydicom and follow FORMATS.md §4: NBIA
descriptive folders, ``metadata.csv``, and ``Annotation/<patient>/<UID>.xml``
PASCAL VOC files with the collection's quirks (capitalised ``<Difficult>``,
``<source>`` mixing text and a child). File names are deliberately shuffled
against slice positions so that a reader sorting by name would fail.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "BUILDERS",
    "CT_SPACING",
    "build_lung_pet_ct_dx",
    "build_voc_detection",
    "ct_phantom",
    "uid",
    "write_ct_series",
    "write_pet_series",
]

PATIENT = "Lung_Dx-A0001"
STUDY_FOLDER = "01-02-2008-NA-PET-CT Chest-12345"
#: (slice spacing, row spacing, column spacing) of the synthetic CT, in mm.
CT_SPACING = (5.0, 5.0, 5.0)
#: Position of the first CT voxel centre (x, y, z) in patient coordinates, mm.
CT_ORIGIN_XYZ = (-157.5, -157.5, -40.0)
#: Tumour sphere: centre (z index, row, column) in the CT grid and radius in voxels.
TUMOUR = (5, 24, 18, 3.2)
#: Where file names sit relative to positions: file "1-0k" holds slice ORDER[k-1].
NAME_ORDER = (3, 7, 0, 9, 5, 1, 8, 2, 6, 4)
LICENSE_TEXT = "Synthetic fixture written by napari_nsclc.testing.radiology; no patient data.\n"


def uid(*parts: object) -> str:
    """A deterministic DICOM UID from ``parts``."""
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=["napari-nsclc", *map(str, parts)])


def ct_phantom(shape: tuple[int, int, int] = (10, 64, 64), seed: int = 0) -> np.ndarray:
    """A chest-like CT volume in HU, int16, shape (z, y, x).

    Air outside an elliptical body (40 HU, fat-like noise), two lungs
    (-850 HU), a spine (700 HU) and a spherical tumour (30 HU) in the right
    lung at :data:`TUMOUR` (scaled to ``shape``).
    """
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(shape, dtype=float)
    depth, rows, columns = shape
    cy, cx = rows / 2, columns / 2
    body = ((y - cy) / (0.42 * rows)) ** 2 + ((x - cx) / (0.47 * columns)) ** 2 <= 1
    right = ((y - cy * 0.95) / (0.3 * rows)) ** 2 + ((x - columns * 0.3) / (0.15 * columns)) ** 2 <= 1
    left = ((y - cy * 0.95) / (0.3 * rows)) ** 2 + ((x - columns * 0.7) / (0.15 * columns)) ** 2 <= 1
    spine = ((y - rows * 0.8) / (0.06 * rows)) ** 2 + ((x - cx) / (0.06 * columns)) ** 2 <= 1
    tz, ty, tx, radius = TUMOUR
    scale = np.array(shape) / np.array((10, 64, 64))
    tumour = (((z - tz * scale[0]) / scale[0]) ** 2 + ((y - ty * scale[1]) / scale[1]) ** 2
              + ((x - tx * scale[2]) / scale[2]) ** 2) <= radius**2
    hu = np.full(shape, -1000.0)
    hu[body] = 40
    hu[right | left] = -850
    hu[spine] = 700
    hu[tumour] = 30
    hu += rng.normal(0, 8, shape)
    return np.clip(np.round(hu), -1024, 3071).astype(np.int16)


def _base_dataset(modality: str, series_uid: str, study_uid: str, frame_uid: str, sop_uid: str,
                  patient: str, series_description: str, series_number: int):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    sop_class = "1.2.840.10008.5.1.4.1.1.2" if modality == "CT" else "1.2.840.10008.5.1.4.1.1.128"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.Modality = modality
    ds.PatientName = patient
    ds.PatientID = patient
    ds.PatientWeight = "70"
    ds.StudyInstanceUID = study_uid
    ds.StudyDate = "20080102"
    ds.StudyTime = "120000"
    ds.SeriesDate = "20080102"
    ds.SeriesTime = "130000"
    ds.StudyDescription = "PET-CT Chest"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = series_description
    ds.FrameOfReferenceUID = frame_uid
    ds.Manufacturer = "napari-nsclc synthetic"
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    return ds


def _save(ds, path: Path, transfer_syntax: str | None) -> None:
    """Save ``ds``, compressed with ``transfer_syntax`` when given.

    JPEG Lossless (Process 14, SV1) has no pydicom encoder; it is encoded
    with imagecodecs' libjpeg-turbo and encapsulated here.
    """
    from pydicom.uid import JPEGLosslessSV1

    path.parent.mkdir(parents=True, exist_ok=True)
    if transfer_syntax == JPEGLosslessSV1:
        import imagecodecs
        from pydicom.encaps import encapsulate

        pixels = np.frombuffer(ds.PixelData, dtype="<u2").reshape(ds.Rows, ds.Columns)
        frame = imagecodecs.jpeg8_encode(pixels, lossless=True, predictor=1, bitspersample=int(ds.BitsStored))
        ds.PixelData = encapsulate([frame])
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1
    elif transfer_syntax is not None:
        ds.compress(transfer_syntax)
    ds.save_as(path, enforce_file_format=True)


def write_ct_series(folder: Path, volume_hu: np.ndarray, *, spacing: Sequence[float] = CT_SPACING,
                    origin_xyz: Sequence[float] = CT_ORIGIN_XYZ, patient: str = PATIENT,
                    series_uid: str | None = None, study_uid: str | None = None, frame_uid: str | None = None,
                    name_order: Sequence[int] | None = None, transfer_syntax: str | None = None,
                    description: str = "CT Chest 5mm", series_number: int = 2) -> list[str]:
    """Write a CT volume (HU, z y x) as one file per slice; returns the SOPInstanceUIDs by z index.

    Slice ``k`` is at z = ``origin_xyz[2] + k * spacing[0]``. Stored values are
    ``HU + 1024`` (uint16, RescaleIntercept -1024). ``name_order[i]`` is the
    slice held by file ``1-{i + 1:02d}.dcm`` (default: in order).
    ``transfer_syntax`` compresses the files (e.g. RLE Lossless).
    """
    series_uid = series_uid or uid(patient, "series", description)
    study_uid = study_uid or uid(patient, "study")
    frame_uid = frame_uid or uid(patient, "frame")
    depth = volume_hu.shape[0]
    order = list(name_order) if name_order is not None else list(range(depth))
    sop_uids = [uid(series_uid, "slice", k) for k in range(depth)]
    width = max(2, len(str(depth)))
    for file_index, k in enumerate(order):
        ds = _base_dataset("CT", series_uid, study_uid, frame_uid, sop_uids[k], patient, description, series_number)
        ds.InstanceNumber = file_index + 1
        ds.ImagePositionPatient = [origin_xyz[0], origin_xyz[1], origin_xyz[2] + k * spacing[0]]
        ds.SliceLocation = origin_xyz[2] + k * spacing[0]
        ds.SliceThickness = spacing[0]
        ds.PixelSpacing = [spacing[1], spacing[2]]
        ds.Rows, ds.Columns = volume_hu.shape[1:]
        ds.PixelRepresentation = 0
        ds.BitsStored, ds.HighBit = 12, 11
        ds.RescaleSlope = 1
        ds.RescaleIntercept = -1024
        ds.WindowCenter, ds.WindowWidth = 40, 350
        ds.PixelData = (volume_hu[k].astype(np.int32) + 1024).astype("<u2").tobytes()
        _save(ds, folder / f"1-{file_index + 1:0{width}d}.dcm", transfer_syntax)
    return sop_uids


#: Synthetic PET acquisition: injected dose (Bq), F-18 half-life (s), injection and series times.
PET_DOSE, PET_HALF_LIFE, PET_INJECTION, PET_WEIGHT_KG = 300e6, 6586.2, "120000", 70.0


def pet_suv_factor() -> float:
    """SUVbw per Bq/ml for the synthetic PET (series one hour after injection)."""
    return PET_WEIGHT_KG * 1000 / (PET_DOSE * 2 ** (-3600 / PET_HALF_LIFE))


def write_pet_series(folder: Path, ct_shape: Sequence[int], *, patient: str = PATIENT,
                     grid: tuple[int, int] = (32, 32)) -> list[str]:
    """A PET of the CT's frame of reference: coarser grid, same field of view, hot tumour.

    Activity is 2 SUV in the body and 8 SUV in the tumour; each slice has its
    own RescaleSlope, as scanners write.
    """
    depth = ct_shape[0]
    series_uid = uid(patient, "series", "PET")
    rows, columns = grid
    pixel = (CT_SPACING[1] * ct_shape[1] / rows, CT_SPACING[2] * ct_shape[2] / columns)
    # The PET field of view starts at the CT's outer edge: first centre half a PET pixel in.
    x0 = CT_ORIGIN_XYZ[0] - CT_SPACING[2] / 2 + pixel[1] / 2
    y0 = CT_ORIGIN_XYZ[1] - CT_SPACING[1] / 2 + pixel[0] / 2
    ct = ct_phantom(tuple(ct_shape))
    factor = pet_suv_factor()
    sop_uids = [uid(series_uid, "slice", k) for k in range(depth)]
    for k in range(depth):
        ds = _base_dataset("PT", series_uid, uid(patient, "study"), uid(patient, "frame"), sop_uids[k],
                           patient, "PET WB", 3)
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [x0, y0, CT_ORIGIN_XYZ[2] + k * CT_SPACING[0]]
        ds.SliceThickness = CT_SPACING[0]
        ds.PixelSpacing = list(pixel)
        ds.Rows, ds.Columns = rows, columns
        ds.PixelRepresentation = 0
        ds.Units = "BQML"
        ds.DecayCorrection = "START"
        from pydicom.dataset import Dataset

        drug = Dataset()
        drug.Radiopharmaceutical = "Fluorodeoxyglucose"
        drug.RadiopharmaceuticalStartTime = PET_INJECTION
        drug.RadionuclideTotalDose = str(PET_DOSE)
        drug.RadionuclideHalfLife = str(PET_HALF_LIFE)
        ds.RadiopharmaceuticalInformationSequence = [drug]
        step_y, step_x = rows / ct_shape[1], columns / ct_shape[2]
        ct_slice = ct[k][(np.arange(rows) / step_y).astype(int)][:, (np.arange(columns) / step_x).astype(int)]
        suv = np.where(ct_slice > -500, 2.0, 0.1)
        suv[(ct_slice > 0) & (ct_slice < 100) & _tumour_mask_2d(k, rows, columns, ct_shape)] = 8.0
        activity = suv / factor  # Bq/ml
        slope = float(activity.max()) / 30000 * (1 + 0.1 * k)
        ds.RescaleSlope = f"{slope:.10g}"
        ds.RescaleIntercept = 0
        ds.PixelData = np.round(activity / float(ds.RescaleSlope)).astype("<u2").tobytes()
        _save(ds, folder / f"1-{k + 1:02d}.dcm", None)
    return sop_uids


def _tumour_mask_2d(k: int, rows: int, columns: int, ct_shape: Sequence[int]) -> np.ndarray:
    tz, ty, tx, radius = TUMOUR
    y, x = np.indices((rows, columns), dtype=float)
    y = y * ct_shape[1] / rows
    x = x * ct_shape[2] / columns
    return (k - tz) ** 2 + (y - ty) ** 2 + (x - tx) ** 2 <= (radius + 1.5) ** 2


def lung_voc_text(boxes: Sequence[tuple[str, int, int, int, int]], width: int, height: int) -> str:
    """A Lung-PET-CT-Dx style VOC file for ``(name, xmin, ymin, xmax, ymax)`` boxes."""
    from ..datasets.lung_pet_ct_dx import LUNG_VOC_OBJECT, LUNG_VOC_TEMPLATE

    objects = "".join(LUNG_VOC_OBJECT.format(name=n, xmin=a, ymin=b, xmax=c, ymax=d) for n, a, b, c, d in boxes)
    return LUNG_VOC_TEMPLATE.format(width=width, height=height, objects=objects)


def tumour_boxes() -> dict[int, tuple[str, int, int, int, int]]:
    """The tumour's box on each CT slice it crosses: ``{z: ("A", xmin, ymin, xmax, ymax)}``."""
    tz, ty, tx, radius = TUMOUR
    out = {}
    for k in range(10):
        r2 = radius**2 - (k - tz) ** 2
        if r2 < 1:
            continue
        r = int(np.floor(np.sqrt(r2)))
        out[k] = ("A", tx - r - 1, ty - r - 1, tx + r + 1, ty + r + 1)
    return out


def build_lung_pet_ct_dx(folder: Path) -> Path:
    """A synthetic Lung-PET-CT-Dx collection root; returns it.

    One patient (``Lung_Dx-A0001``) with a 10×64×64 CT (5 mm voxels, file
    names shuffled against positions) and a 10×32×32 PET of the same frame of
    reference, boxes on the CT slices the tumour crosses, and a
    ``metadata.csv`` that also lists a series not on disk.
    """
    folder = Path(folder)
    study = folder / "Lung-PET-CT-Dx" / PATIENT / STUDY_FOLDER
    ct_folder = study / "2.000000-CT Chest  5mm-11111"
    pet_folder = study / "3.000000-PET WB-22222"
    volume = ct_phantom()
    ct_uids = write_ct_series(ct_folder, volume, name_order=NAME_ORDER, description="CT Chest  5mm")
    write_pet_series(pet_folder, volume.shape)
    annotations = folder / "Annotation" / PATIENT.removeprefix("Lung_Dx-")
    annotations.mkdir(parents=True, exist_ok=True)
    for k, box in tumour_boxes().items():
        (annotations / f"{ct_uids[k]}.xml").write_text(lung_voc_text([box], volume.shape[2], volume.shape[1]))
    (folder / "Lung-PET-CT-Dx" / "LICENSE").write_text(LICENSE_TEXT)
    _write_metadata_csv(folder, study, [(ct_folder, "CT", "CT Chest  5mm", 10), (pet_folder, "PT", "PET WB", 10)])
    return folder


def _write_metadata_csv(root: Path, study: Path, series: list[tuple[Path, str, str, int]]) -> None:
    header = ["Series UID", "Collection", "3rd Party Analysis", "Data Description URI", "Subject ID", "Study UID",
              "Study Description", "Study Date", "Series Description", "Manufacturer", "Modality",
              "SOP Class Name", "SOP Class UID", "Number of Images", "File Size", "File Location",
              "Download Timestamp"]
    rows = []
    for path, modality, description, count in series:
        rows.append([uid(PATIENT, "series", "PET" if modality == "PT" else description), "Lung-PET-CT-Dx", "null",
                     "https://doi.org/10.7937/TCIA.2020.NNC2-0461", PATIENT, uid(PATIENT, "study"), "PET-CT Chest",
                     "01-02-2008", description, "napari-nsclc synthetic", modality, "", "", count, "0.1 MB",
                     "./" + str(path.relative_to(root)), "2026-01-01T00:00:00.000"])
    rows.append([uid("G0001", "series"), "Lung-PET-CT-Dx", "null", "", "Lung_Dx-G0001", uid("G0001", "study"),
                 "Chest", "03-04-2009", "5mm", "SIEMENS", "CT", "CT Image Storage", "1.2.840.10008.5.1.4.1.1.2",
                 64, "33 MB", "./Lung-PET-CT-Dx/Lung_Dx-G0001/03-04-2009-NA-Chest-1/2.000000-5mm-1",
                 "2026-01-01T00:00:00.000"])
    with open(root / "metadata.csv", "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


# --------------------------------------------------------------------------- VOC detection

VOC_CLASSES = ("tumour", "lymphocyte", "necrosis")

#: Per image: (stem, size (h, w), boxes (name, xmin, ymin, xmax, ymax), flavour, split).
_VOC_IMAGES = (
    ("img_000", (48, 64), [("tumour", 5, 6, 30, 25), ("lymphocyte", 40, 30, 50, 41)], "devkit", "train"),
    ("img_001", (48, 64), [("necrosis", 10.5, 12.25, 33.75, 40.0)], "labelimg", "train"),
    ("img_002", (48, 64), [("tumour", 20, 10, 60, 44), ("lymphocyte", 3, 3, 9, 9)], "cvat", "val"),
)


def _voc_object(name, box, flavour: str) -> str:
    xmin, ymin, xmax, ymax = box
    if flavour == "devkit":
        return (f"\t<object>\n\t\t<name>{name}</name>\n\t\t<pose>Frontal</pose>\n\t\t<truncated>0</truncated>\n"
                f"\t\t<difficult>0</difficult>\n\t\t<bndbox>\n\t\t\t<xmin>{xmin}</xmin>\n\t\t\t<ymin>{ymin}</ymin>\n"
                f"\t\t\t<xmax>{xmax}</xmax>\n\t\t\t<ymax>{ymax}</ymax>\n\t\t</bndbox>\n"
                f"\t\t<part>\n\t\t\t<name>head</name>\n\t\t\t<bndbox>\n\t\t\t\t<xmin>{xmin}</xmin>\n"
                f"\t\t\t\t<ymin>{ymin}</ymin>\n\t\t\t\t<xmax>{xmin + 4}</xmax>\n\t\t\t\t<ymax>{ymin + 4}</ymax>\n"
                "\t\t\t</bndbox>\n\t\t</part>\n\t</object>\n")
    if flavour == "labelimg":
        return (f"\t<object>\n\t\t<name>{name}</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n"
                f"\t\t<difficult>0</difficult>\n\t\t<occluded/>\n\t\t<bndbox>\n\t\t\t<xmin>{xmin}</xmin>\n"
                f"\t\t\t<ymin>{ymin}</ymin>\n\t\t\t<xmax>{xmax}</xmax>\n\t\t\t<ymax>{ymax}</ymax>\n"
                "\t\t</bndbox>\n\t</object>\n")
    return (f"  <object>\n    <name>{name}</name>\n    <occluded>1</occluded>\n    <bndbox>\n"
            f"      <xmin>{float(xmin):.2f}</xmin>\n      <ymin>{float(ymin):.2f}</ymin>\n"
            f"      <xmax>{float(xmax):.2f}</xmax>\n      <ymax>{float(ymax):.2f}</ymax>\n    </bndbox>\n"
            "    <attributes>\n      <attribute>\n        <name>grade</name>\n        <value>2</value>\n"
            "      </attribute>\n    </attributes>\n  </object>\n")


def _voc_document(stem: str, size, boxes, flavour: str) -> str:
    objects = "".join(_voc_object(name, box, flavour) for name, *box in boxes)
    height, width = size
    if flavour == "cvat":
        return (f'<?xml version="1.0" encoding="utf-8"?>\n<annotation>\n  <folder></folder>\n'
                f"  <filename>{stem}.jpg</filename>\n  <source>\n    <database>Unknown</database>\n"
                f"    <annotation>Unknown</annotation>\n    <image>Unknown</image>\n  </source>\n"
                f"  <size>\n    <width>{width}</width>\n    <height>{height}</height>\n    <depth></depth>\n"
                f"  </size>\n  <segmented>0</segmented>\n{objects}</annotation>\n")
    path_line = f"\t<path>/data/JPEGImages/{stem}.jpg</path>\n" if flavour == "labelimg" else ""
    return (f"<annotation>\n\t<folder>JPEGImages</folder>\n\t<filename>{stem}.jpg</filename>\n{path_line}"
            f"\t<source>\n\t\t<database>Unknown</database>\n\t</source>\n\t<size>\n\t\t<width>{width}</width>\n"
            f"\t\t<height>{height}</height>\n\t\t<depth>3</depth>\n\t</size>\n\t<segmented>0</segmented>\n"
            f"{objects}</annotation>\n")


def build_voc_detection(folder: Path) -> Path:
    """A synthetic PASCAL VOC detection dataset root; returns it.

    Three 64×48 RGB JPEGs, one annotation flavour each: VOC devkit (with a
    ``<part>``), LabelImg (float coordinates, an empty ``<occluded/>``) and
    CVAT (``occluded``, ``<attributes>``, an empty ``<depth>``), and
    ``ImageSets/Main/{train,val}.txt``.
    """
    from PIL import Image

    folder = Path(folder)
    rng = np.random.default_rng(6)
    (folder / "JPEGImages").mkdir(parents=True, exist_ok=True)
    (folder / "Annotations").mkdir(exist_ok=True)
    (folder / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    splits: dict[str, list[str]] = {}
    for stem, size, boxes, flavour, split in _VOC_IMAGES:
        pixels = np.full((*size, 3), (235, 200, 225), np.uint8)
        for name, xmin, ymin, xmax, ymax in boxes:
            colour = {"tumour": (120, 40, 120), "lymphocyte": (40, 40, 150), "necrosis": (230, 150, 190)}[name]
            pixels[int(ymin) : int(ymax), int(xmin) : int(xmax)] = colour
        pixels = np.clip(pixels + rng.integers(-8, 9, pixels.shape), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / "JPEGImages" / f"{stem}.jpg", quality=95)
        (folder / "Annotations" / f"{stem}.xml").write_text(_voc_document(stem, size, boxes, flavour))
        splits.setdefault(split, []).append(stem)
    for split, stems in splits.items():
        (folder / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{s}\n" for s in stems))
    return folder


BUILDERS = {"lung-pet-ct-dx": build_lung_pet_ct_dx, "voc-detection": build_voc_detection}
