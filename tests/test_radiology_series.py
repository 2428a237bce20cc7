"""Several series: a patient or study folder opens every series, each with its own boxes and a name of its own.

Real data: Lung-PET-CT-Dx patient A0002 (TCIA, CC BY 4.0), two 30-slice CT series
(B70f and B40f kernels) and 18 annotated slices (8 on B70f, 10 on B40f), read from
``../shared/samples``. Synthetic data: the CT + PET fixture of
:mod:`napari_nsclc.testing.radiology`, plus a second patient and a second study
written here with the same helpers.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from napari_nsclc import registry
from napari_nsclc._reader import read_layers
from napari_nsclc.cli import main
from napari_nsclc.formats import dicom
from napari_nsclc.model import Case, ImageRef
from napari_nsclc.testing import build
from napari_nsclc.testing import radiology as fx
from napari_nsclc.widgets.case_navigator import CaseNavigator

PLUGIN = "napari-nsclc"
PATIENT = "Lung-PET-CT-Dx/Lung_Dx-A0002"
STUDY = f"{PATIENT}/04-25-2007-NA-ThoraxAThoraxRoutine Adult-34834"
B70F = f"{STUDY}/2.000000-ThoraxRoutine  8.0.0  B70f-62919"
B40F = f"{STUDY}/3.000000-ThoraxRoutine  8.0.0  B40f-10983"
#: Layer names when both series of A0002 are open, and boxes per series (from the 18 XMLs).
A0002_LAYERS = ["CT 2 B70f", "tumour boxes (CT 2 B70f)", "CT 3 B40f", "tumour boxes (CT 3 B40f)"]
A0002_BOXES = {"tumour boxes (CT 2 B70f)": 8, "tumour boxes (CT 3 B40f)": 10}


@pytest.fixture(scope="module")
def lung_root(samples) -> Path:
    return samples / "lung-pet-ct-dx"


def _kinds(layers) -> list[str]:
    return [layer.metadata["nsclc"]["kind"] for layer in layers]


def _box_slices(boxes) -> list[tuple[int, str]]:
    """``(slice index, SOPInstanceUID of the XML the box came from)`` per box of a Shapes layer."""
    nsclc = boxes.metadata["nsclc"]
    attributes = nsclc["attributes"]
    return [(int(round(float(np.asarray(shape)[0, 0]))), attributes[int(i)]["sop_instance_uid"])
            for shape, i in zip(boxes.data, boxes.features["source_index"], strict=True)]


def _check_a0002(layers, xml_folder: Path) -> None:
    """Both CT series with their own boxes: 8 + 10 = 18, each on the slice its XML names, one per slice."""
    assert [layer.name for layer in layers] == A0002_LAYERS
    assert _kinds(layers) == ["image", "boxes", "image", "boxes"]
    assert {layer.name: len(layer.data) for layer in layers if type(layer).__name__.lower() == "shapes"} == A0002_BOXES
    seen = []
    for image, boxes in (layers[:2], layers[2:]):
        assert image.data.shape == (30, 512, 512)
        uids = image.metadata["nsclc"]["image"].metadata["sop_instance_uids"]
        positions = image.metadata["nsclc"]["image"].metadata["slice_positions"]
        slices = _box_slices(boxes)
        assert [plane for plane, _ in slices] == sorted({plane for plane, _ in slices})  # one box per slice
        for plane, uid in slices:
            assert uids[plane] == uid  # the slice its XML is named after
            # drawn at that slice's ImagePositionPatient z, in the image's world (mm)
            assert boxes.translate[0] + plane * boxes.scale[0] == pytest.approx(positions[plane])
        assert tuple(boxes.scale) == tuple(image.scale) and tuple(boxes.translate) == tuple(image.translate)
        seen += [uid for _, uid in slices]
    assert len(seen) == 18
    assert sorted(seen) == sorted(p.stem for p in xml_folder.glob("*.xml"))
    # the two reconstructions of one acquisition overlay exactly
    assert tuple(layers[0].scale) == tuple(layers[2].scale) == (8.0, 0.646484375, 0.646484375)
    assert tuple(layers[0].translate) == tuple(layers[2].translate)


# --------------------------------------------------------------------------- real sample, in napari


@pytest.mark.parametrize("folder", [PATIENT, STUDY, "."], ids=["patient", "study", "collection root"])
def test_real_a0002_opens_both_series_with_their_18_boxes(make_napari_viewer, lung_root, folder):
    viewer = make_napari_viewer()
    layers = viewer.open(str(lung_root / folder), plugin=PLUGIN)
    _check_a0002(layers, lung_root / "Annotation" / "A0002")
    assert [layer.name for layer in viewer.layers] == A0002_LAYERS  # no "[1]" suffixes
    dataset = [layer.metadata["nsclc"]["dataset"]["index"] for layer in layers]
    assert dataset == [0, 0, 1, 1]  # each layer says which case (series) it shows


@pytest.mark.parametrize(("series", "kernel", "boxes"), [(B70F, "B70f", 8), (B40F, "B40f", 10)], ids=["B70f", "B40f"])
def test_real_single_series_folder_or_file_opens_just_that_series(make_napari_viewer, lung_root, series, kernel, boxes):
    viewer = make_napari_viewer()
    for path in (lung_root / series, next((lung_root / series).glob("*.dcm"))):
        viewer.layers.clear()
        layers = viewer.open(str(path), plugin=PLUGIN)
        assert [layer.name for layer in layers] == [f"CT ThoraxRoutine 8.0.0 {kernel}", "tumour boxes"]
        assert len(layers[1].data) == boxes


def test_real_a0002_in_the_cases_dock(make_napari_viewer, lung_root):
    viewer = make_napari_viewer()
    viewer.open(str(lung_root / PATIENT), plugin=PLUGIN)
    navigator = CaseNavigator(viewer)  # adopts the open patient
    assert [navigator.list.item(i).text() for i in range(navigator.list.count())] == [
        "Lung_Dx-A0002 CT ThoraxRoutine 8.0.0 B70f", "Lung_Dx-A0002 CT ThoraxRoutine 8.0.0 B40f"]
    assert navigator.index == 0
    assert "shown with the 1 other case(s) of its group" in navigator.status.text()
    navigator.next_case()  # one patient: nothing further
    assert navigator.index == 0
    navigator.list.setCurrentRow(1)  # the B40f series: shown with its patient's other series, in place
    assert navigator.index == 1
    _check_a0002(list(viewer.layers), lung_root / "Annotation" / "A0002")


def test_info_lists_both_real_series_with_their_boxes(lung_root, capsys):
    assert main(["info", str(lung_root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name, count in (("B70f", 8), ("B40f", 10)):
        heading = f"  Lung_Dx-A0002 CT ThoraxRoutine 8.0.0 {name}:"
        at = next(i for i, line in enumerate(lines) if line.startswith(heading))
        assert "30x512x512 px" in lines[at]
        assert lines[at + 1] == f"    tumour boxes: A {count}"


# --------------------------------------------------------------------------- synthetic CT + PET, in napari


@pytest.fixture
def collection(tmp_path):
    return build("lung-pet-ct-dx", tmp_path / "collection")


def _add_patient(root: Path, patient: str = "Lung_Dx-G0002") -> None:
    """A second patient on disk: one CT series with a box (class G) on its slice 4."""
    folder = root / "Lung-PET-CT-Dx" / patient / "03-04-2009-NA-Chest-1" / "2.000000-5mm-1"
    uids = fx.write_ct_series(folder, fx.ct_phantom((6, 32, 32)), patient=patient, description="5mm")
    annotations = root / "Annotation" / patient.removeprefix("Lung_Dx-")
    annotations.mkdir(parents=True)
    (annotations / f"{uids[4]}.xml").write_text(fx.lung_voc_text([("G", 3, 4, 12, 14)], 32, 32))


def test_synthetic_patient_opens_ct_and_pet_in_one_world(make_napari_viewer, collection):
    viewer = make_napari_viewer()
    patient = collection / "Lung-PET-CT-Dx" / fx.PATIENT
    layers = viewer.open(str(patient), plugin=PLUGIN)
    assert [layer.name for layer in layers] == [
        "CT 2 CT Chest 5mm", "tumour boxes (CT 2 CT Chest 5mm)", "PT 3 PET WB", "tumour boxes (PT 3 PET WB)"]
    ct, ct_boxes, pet, pet_boxes = layers
    assert len(ct_boxes.data) == len(fx.tumour_boxes()) and len(pet_boxes.data) == 0
    assert pet.colormap.name == "inferno" and pet.blending == "additive"  # the CT shows through
    assert ct.blending != "additive"
    assert tuple(pet_boxes.scale) == tuple(pet.scale) == (5.0, 10.0, 10.0)
    # same frame of reference: the two grids cover the same field of view in mm ...
    for layer in (ct, pet):
        assert [str(u) for u in layer.units] == ["millimeter"] * 3
    edges = [(np.asarray(layer.translate) - np.asarray(layer.scale) / 2,
              np.asarray(layer.translate) + (np.asarray(layer.data.shape) - 0.5) * np.asarray(layer.scale))
             for layer in (ct, pet)]
    np.testing.assert_allclose(edges[0][0], edges[1][0])
    np.testing.assert_allclose(edges[0][1], edges[1][1])
    # ... and the hot PET spot lies on the CT tumour, in world coordinates
    hot = np.argwhere(np.asarray(pet.data) > 7).mean(axis=0)
    tz, ty, tx, _ = fx.TUMOUR
    assert np.abs(np.asarray(pet.data_to_world(hot)) - np.asarray(ct.data_to_world((tz, ty, tx)))).max() <= 5.0
    # a CT box drawn at its slice lies on the same world z as the PET slice there
    plane = int(np.asarray(ct_boxes.data[0])[0, 0])
    box_z = ct_boxes.data_to_world(np.asarray(ct_boxes.data[0])[0])[0]
    assert box_z == pytest.approx(pet.data_to_world((plane, 0, 0))[0])


def test_synthetic_study_series_folder_and_file_open_what_they_hold(make_napari_viewer, collection):
    viewer = make_napari_viewer()
    study = collection / "Lung-PET-CT-Dx" / fx.PATIENT / fx.STUDY_FOLDER
    assert len(viewer.open(str(study), plugin=PLUGIN)) == 4
    viewer.layers.clear()
    pet_folder = study / "3.000000-PET WB-22222"
    assert [layer.name for layer in viewer.open(str(pet_folder), plugin=PLUGIN)] == ["PT PET WB", "tumour boxes"]
    viewer.layers.clear()
    ct_file = next((study / "2.000000-CT Chest  5mm-11111").glob("*.dcm"))
    layers = viewer.open(str(ct_file), plugin=PLUGIN)
    assert [layer.name for layer in layers] == ["CT CT Chest 5mm", "tumour boxes"]
    assert len(layers[1].data) == len(fx.tumour_boxes())


def test_collection_root_opens_the_first_patient_and_the_dock_steps_by_patient(make_napari_viewer, collection):
    _add_patient(collection)
    viewer = make_napari_viewer()
    layers = viewer.open(str(collection), plugin=PLUGIN)
    assert [layer.name for layer in layers] == [
        "CT 2 CT Chest 5mm", "tumour boxes (CT 2 CT Chest 5mm)", "PT 3 PET WB", "tumour boxes (PT 3 PET WB)"]
    navigator = CaseNavigator(viewer)
    assert navigator.list.count() == 3 and navigator.index == 0

    # move the first CT box one pixel right on its slice, then visit the other patient and come back
    ct_boxes = viewer.layers["tumour boxes (CT 2 CT Chest 5mm)"]
    data = [np.array(d) for d in ct_boxes.data]
    first_x = float(data[0][0, 2])
    data[0][:, 2] += 1
    ct_boxes.data = data
    ct_boxes.shape_type = ["rectangle"] * len(data)

    answers = ["cancel", "save"]
    asked = []
    navigator.ask = lambda question, text: asked.append(question) or answers.pop(0)
    navigator.workspace.annotator = "alice"
    navigator.next_case()  # unsaved edits: the dock asks, and "cancel" stays
    assert navigator.index == 0 and asked == ["unsaved"]
    assert navigator.workspace.status(navigator.workspace.cases[0]) == "autosaved"
    navigator.next_case()  # "save" this time
    assert asked == ["unsaved", "unsaved"]
    assert navigator.index == 2  # the other patient, not the PET of the first
    assert [layer.name for layer in viewer.layers] == ["CT 5mm", "tumour boxes"]
    g_boxes = viewer.layers["tumour boxes"]
    assert [int(np.asarray(d)[0, 0]) for d in g_boxes.data] == [4] and list(g_boxes.features["class"]) == ["G"]
    navigator.next_case()
    assert navigator.index == 2

    navigator.previous_case()
    assert navigator.index == 0
    assert [layer.name for layer in viewer.layers] == [
        "CT 2 CT Chest 5mm", "tumour boxes (CT 2 CT Chest 5mm)", "PT 3 PET WB", "tumour boxes (PT 3 PET WB)"]
    ct, ct_boxes, pet, pet_boxes = viewer.layers
    # each series keeps its own placement (the PET is not put on the CT grid) ...
    assert tuple(ct.scale) == tuple(ct_boxes.scale) == (5.0, 5.0, 5.0)
    assert tuple(pet.scale) == tuple(pet_boxes.scale) == (5.0, 10.0, 10.0)
    # ... and the edit saved before leaving is read back from the correction
    assert navigator.workspace.status(navigator.workspace.cases[0]) == "saved"
    assert float(np.asarray(ct_boxes.data[0])[0, 2]) == first_x + 1
    assert len(ct_boxes.data) == len(fx.tumour_boxes()) and len(pet_boxes.data) == 0


# --------------------------------------------------------------------------- headless: groups and names


def test_series_of_one_patient_share_a_group_and_other_patients_do_not(collection):
    _add_patient(collection)
    cases = registry.read(collection)
    assert [(c.image.metadata["patient_id"], c.group, c.image.name) for c in cases] == [
        ("Lung_Dx-A0001", "Lung_Dx-A0001", "CT 2 CT Chest 5mm"),
        ("Lung_Dx-A0001", "Lung_Dx-A0001", "PT 3 PET WB"),
        ("Lung_Dx-G0002", "Lung_Dx-G0002", "CT 5mm"),  # alone in its scene: keeps its name
    ]
    assert [c.boxes[0].name for c in cases] == ["tumour boxes"] * 3  # the model's name; layers get the suffix
    layers = read_layers(str(collection))
    assert [kwargs["name"] for _, kwargs, _ in layers] == [
        "CT 2 CT Chest 5mm", "tumour boxes (CT 2 CT Chest 5mm)", "PT 3 PET WB", "tumour boxes (PT 3 PET WB)"]
    assert [kwargs["metadata"]["nsclc"]["dataset"] for _, kwargs, _ in layers] == [
        {"source": str(collection), "index": i, "count": 3} for i in (0, 0, 1, 1)]


def test_two_studies_of_a_patient_open_together_with_a_warning(collection):
    """A later CT study of the same patient: another frame of reference, so it need not line up."""
    patient = collection / "Lung-PET-CT-Dx" / fx.PATIENT
    fx.write_ct_series(patient / "05-06-2008-NA-Chest-2" / "2.000000-CT Chest  5mm-33333", fx.ct_phantom((4, 16, 16)),
                       study_uid=fx.uid("later study"), frame_uid=fx.uid("later frame"),
                       series_uid=fx.uid("later series"), description="CT Chest  5mm")
    for path in (patient, collection):
        cases = registry.read(path)
        assert len({c.group for c in cases}) == 1 and len(cases) == 3
        names = [c.image.name for c in cases]
        assert len(set(names)) == 3, names  # same number and description: the study date tells them apart
        assert [w for w in cases[0].provenance.warnings if "frames of reference" in w] == [
            "Lung_Dx-A0001: its 3 series open together but lie in 2 frames of reference (different studies or "
            "scanners), so they may not line up"]
    layers = read_layers(str(patient))
    assert [kwargs["metadata"]["nsclc"]["kind"] for _, kwargs, _ in layers] == ["image", "boxes"] * 3


def test_a_localizer_split_off_a_series_opens_on_its_own(tmp_path):
    """Slices in another plane are a scene of their own: opening the series folder shows the axial volume."""
    fx.write_ct_series(tmp_path, fx.ct_phantom((5, 16, 16)), spacing=(2.5, 0.8, 0.8))
    import pydicom

    scout = pydicom.dcmread(sorted(tmp_path.glob("*.dcm"))[0])
    scout.SOPInstanceUID = scout.file_meta.MediaStorageSOPInstanceUID = fx.uid("scout")
    scout.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]  # coronal
    scout.Rows = scout.Columns = 8
    scout.PixelData = np.zeros((8, 8), "<u2").tobytes()
    scout.save_as(tmp_path / "scout.dcm", enforce_file_format=True)
    cases = dicom.read_dicom(tmp_path)
    assert [(c.image.shape, c.group) for c in cases] == [
        ((5, 16, 16), fx.PATIENT), ((1, 8, 8), f"{fx.PATIENT} coronal")]
    assert [c.image.name for c in cases] == ["CT CT Chest 5mm", "CT CT Chest 5mm (part 2, 8x8)"]
    layers = read_layers(str(tmp_path))
    assert [(kwargs["name"], data.shape) for data, kwargs, _ in layers] == [("CT CT Chest 5mm", (5, 16, 16))]


def _series_case(modality: str, number: str, description: str, date: str = "20070425", uid: str = "1.2.3.4") -> Case:
    metadata = {"modality": modality, "series_number": number, "series_description": description,
                "patient_id": "P", "study_date": date, "series_uid": uid, "orientation": [1, 0, 0, 0, 1, 0]}
    return Case(name=description, image=ImageRef(name=f"{modality} {description}", metadata=metadata))


def test_scene_names_keep_what_tells_series_apart():
    def names(*cases):
        return [c.image.name for c in dicom.group_series(list(cases))]

    assert names(_series_case("CT", "2", "ThoraxRoutine  8.0.0  B70f"),
                 _series_case("CT", "3", "ThoraxRoutine  8.0.0  B40f")) == ["CT 2 B70f", "CT 3 B40f"]
    assert names(_series_case("CT", "2", "CT Chest  5mm"), _series_case("PT", "3", "PET WB")) == [
        "CT 2 CT Chest 5mm", "PT 3 PET WB"]
    # a description that is all shared words is kept whole
    assert names(_series_case("CT", "2", "Chest"), _series_case("CT", "3", "Chest 1mm")) == ["CT 2 Chest", "CT 3 1mm"]
    # same number and description in two studies: the study date, then the end of the series UID
    assert names(_series_case("CT", "2", "Chest", "20070425"), _series_case("CT", "2", "Chest", "20080101")) == [
        "CT 2 Chest 2007-04-25", "CT 2 Chest 2008-01-01"]
    assert names(_series_case("CT", "2", "Chest", uid="1.2.11111111"),
                 _series_case("CT", "2", "Chest", uid="1.2.22222222")) == [
        "CT 2 Chest 2007-04-25 11111111", "CT 2 Chest 2007-04-25 22222222"]
    # no number, no description: still distinct
    assert names(_series_case("CT", "", "", uid="1.9.1"), _series_case("CT", "", "", uid="1.9.2")) == [
        "CT 2007-04-25 1.9.1", "CT 2007-04-25 1.9.2"]


def test_series_names_unchanged_when_the_collection_is_copied(tmp_path, lung_root):
    """Groups come from the headers, not from folder names: a copy under other names opens the same."""
    target = tmp_path / "copy"
    shutil.copytree(lung_root / B70F, target / "Lung-PET-CT-Dx" / "p" / "s" / "a")
    shutil.copytree(lung_root / B40F, target / "Lung-PET-CT-Dx" / "p" / "s" / "b")
    shutil.copytree(lung_root / "Annotation", target / "Annotation")
    cases = registry.read(target / "Lung-PET-CT-Dx" / "p")
    assert [c.image.name for c in cases] == ["CT 2 B70f", "CT 3 B40f"]
    assert [len(c.boxes[0]) for c in cases] == [8, 10]
