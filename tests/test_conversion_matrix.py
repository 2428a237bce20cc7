"""The conversion matrix, cell by cell, on a fixture of every layout and on the real samples.

Every readable format's fixture is converted by every writer through the CLI.
The verdict the plan prints must be the matrix's, a refused cell must exit 2
having written nothing, ``--strict`` must refuse every lossy cell, and every
written file is read back twice: by an independent reader (pycocotools,
defusedxml with a schema check, shapely, Pillow, h5py, csv) and by
napari-nsclc, whose objects are compared with the source's after the
writer's declared handling: counts per class, geometry within 0.01 px,
pixels exactly, and ids and extra fields where a writer keeps them. The
fixtures are synthetic and follow ``../shared/FORMATS.md``; the real files are
the third-party samples.
"""

from __future__ import annotations

import json
from pathlib import Path

import _readback as rb
import numpy as np
import pytest

from napari_nsclc import conversion, registry
from napari_nsclc.cli import main
from napari_nsclc.testing import build

MATRIX = conversion.matrix()
READERS = sorted({row for row, _ in MATRIX})
WRITERS = sorted({writer for _, writer in MATRIX})

#: The fixture that stands for each reader: (builder, path inside the built folder, or "" for what it returns).
FIXTURES = {
    "asap": ("asap", ""),
    "cocahis": ("cocahis", ""),
    "coco": ("coco", ""),
    "dicom": ("dicom", ""),
    "geojson": ("geojson", ""),
    "ignite-he": ("ignite-he", ""),
    "ignite-pdl1": ("ignite-pdl1", ""),
    "imagescope": ("imagescope", ""),
    "lung-pet-ct-dx": ("lung-pet-ct-dx", ""),
    "masks": ("masks", ""),
    "midog": ("midog", "MIDOG.json"),
    "nsclc-nat": ("nsclc-nat", ""),
    "nucls": ("nucls", ""),
    "ocelot": ("ocelot", ""),
    "ocelot-points": ("ocelot-points", ""),
    "pcam": ("pcam", ""),
    "slide": ("annotated-slide", ""),
    "voc": ("voc-detection", "Annotations/img_000.xml"),
    "voc-detection": ("voc-detection", ""),
    "voc-segmentation": ("voc-segmentation", ""),
}

#: Real third-party files, and the reader that reads each.
SAMPLES = {
    "midog": "midog/MIDOG.json",
    "asap": "camelyon17/patient_004_node_4.xml",
    "ignite-he": "ignite/patient1_he_roi1_with_context.png",
    "lung-pet-ct-dx": "lung-pet-ct-dx",
    "ocelot-points": "ocelot/example_output.json",
}

#: Writers of one JSON file; the others write a folder.
ONE_FILE = {"coco": "out.json", "midog": "out.json", "ignite-pdl1": "out.json"}


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fixtures")
    built: dict[str, Path] = {}
    out = {}
    for reader, (builder, inside) in FIXTURES.items():
        if builder not in built:
            built[builder] = build(builder, root)
        path = built[builder]
        out[reader] = (path.parent if path.is_file() else path) / inside if inside else path
    # one Lung-PET-CT-Dx box marked difficult, as VOC allows: the matrix says which writers lose that field
    xml = sorted((built["lung-pet-ct-dx"] / "Annotation").rglob("*.xml"))[0]
    text = xml.read_text()
    assert "<Difficult>0</Difficult>" in text  # capitalised, as Lung-PET-CT-Dx writes it
    xml.write_text(text.replace("<Difficult>0</Difficult>", "<Difficult>1</Difficult>", 1))
    return out


def test_the_matrix_has_a_verdict_for_every_reader_and_writer():
    readers = {s.name for s in registry.all_formats() if s.read is not None}
    writers = {s.name for s in registry.all_formats() if s.write is not None}
    assert set(READERS) == readers and len(readers) == 20
    assert set(WRITERS) == writers and len(writers) == 18
    assert set(MATRIX) == {(r, w) for r in readers for w in writers}
    assert {cell.verdict for cell in MATRIX.values()} == {"exact", "lossy", "refused"}
    for (row, writer), cell in MATRIX.items():
        if cell.verdict != "exact":
            assert cell.why, (row, writer)  # a loss or a refusal always says why
    # every dataset's own format writes it back exactly
    for name in ("nsclc-nat", "ignite-he", "ignite-pdl1", "midog", "nucls", "ocelot", "ocelot-points", "cocahis", "pcam",
                 "lung-pet-ct-dx", "coco", "voc", "voc-detection", "geojson", "asap", "imagescope", "masks"):
        assert MATRIX[(name, name)].verdict == "exact", name


def test_every_fixture_is_read_by_its_reader(fixtures):
    for reader, path in fixtures.items():
        assert registry.detect(path).name == reader, (reader, path)


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("reader", READERS)
def test_fixture_cell(reader, writer, fixtures, tmp_path, capsys):
    check_cell(fixtures[reader], reader, writer, tmp_path, capsys, sample=False)


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("reader", sorted(SAMPLES))
def test_real_sample_cell(reader, writer, samples, tmp_path, capsys):
    check_cell(samples / SAMPLES[reader], reader, writer, tmp_path, capsys, sample=True)


# --------------------------------------------------------------------------- one cell


def check_cell(source: Path, reader: str, writer: str, tmp_path: Path, capsys, *, sample: bool) -> None:
    cell = MATRIX[(reader, writer)]
    cases = registry.read(source, reader)
    plan = conversion.plan(cases, writer)
    out = tmp_path / ONE_FILE.get(writer, "out")
    argv = ["convert", str(source), "--from", reader, "--to", writer, "-o", str(out)]
    capsys.readouterr()
    if cell.verdict == "refused" or plan.refusal:
        if cell.verdict != "refused":
            # a real file can be refused although its format converts: for the condition the cell names, or
            # because it holds none of the kinds the writer writes (OCELOT's point output has points only)
            nothing = plan.refusal.startswith("nothing to write") and not any(line.handling.writes for line in plan.lines)
            assert sample and (plan.precondition and cell.unless or nothing), (plan.refusal, cell.text())
        assert main(argv) == 2
        printed = capsys.readouterr()
        assert "refused" in printed.err and not out.exists(), printed
        return
    if sample:
        # a real file holding fewer kinds may convert better than the matrix says, never worse
        assert _RANK[plan.verdict] <= _RANK[cell.verdict], (plan.describe(), cell.text())
    else:
        assert plan.verdict == cell.verdict, (plan.describe(), cell.text())
    if plan.verdict == "lossy":
        assert main([*argv, "--strict"]) == 2 and not out.exists()
        capsys.readouterr()
    assert main(argv) == 0
    printed = capsys.readouterr().out
    # the plan is printed before the files, and names every kind with its count
    assert printed.splitlines()[0].startswith(f"{source.name} ({reader}) -> {writer}: {plan.verdict}")
    assert printed.index(" -> ") < printed.index("wrote ")
    for line in plan.lines:
        assert f"{line.count:,} {conversion.KINDS[line.kind]}" in printed
    CHECKS.get(writer, check_generic)(source, reader, writer, cases, out)
    # the command converts a dataset case by case (or in parts), on any worker: the files are the writer's own
    legacy = tmp_path / "legacy" / out.name
    registry.write(registry.read(source, reader), legacy, writer)
    assert _contents(out) == _contents(legacy)


def _files(out: Path) -> list[Path]:
    """The files a conversion wrote to ``out``, without the hidden work folder that holds its manifest."""
    if out.is_file():
        return [out]
    return [p for p in out.rglob("*") if p.is_file() and ".nsclc-convert" not in p.relative_to(out).parts]


def _contents(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out.parent).as_posix().partition("/")[2] or p.name: p.read_bytes() for p in _files(out)}


_RANK = {"exact": 0, "lossy": 1, "refused": 2}


# --------------------------------------------------------------------------- read-back, per writer


def _spec(name):
    return registry.get_format(name)


def _readback_cases(writer: str, out: Path, cases) -> list:
    """napari-nsclc's reading of what ``writer`` wrote, aligned with the source ``cases`` (None: no file)."""
    if writer in ONE_FILE:
        back = registry.read(out, writer)
        return back
    if writer in ("geojson", "asap", "imagescope"):
        suffix = ".geojson" if writer == "geojson" else ".xml"
        return [registry.read(out / f"{case.name}{suffix}", writer)[0] for case in cases]
    raise AssertionError(writer)


def check_generic(source, reader, writer, cases, out) -> None:
    """A vector interchange writer (COCO, GeoJSON, ASAP, ImageScope): independent validity, then the objects."""
    independent = {"coco": _check_coco_files, "geojson": _check_geojson_files, "asap": _check_asap_files,
                   "imagescope": _check_imagescope_files}[writer]
    independent(out, cases)
    handling = _spec(writer).holds
    if any(conversion.object_kinds(s) == ["slice boxes"] * len(s) for c in cases for s in c.boxes):
        return _check_slices_in_coco(out, cases)
    back = _readback_cases(writer, out, cases)
    assert len(back) == len(cases)
    same_family = (_spec(reader).family or reader) == (_spec(writer).family or writer)
    for case, read in zip(cases, back, strict=True):
        _compare_case(case, read, handling, writer, same_family)


def _compare_case(case, read, handling, writer, same_family) -> None:
    what = f"{case.name} -> {writer}"
    expected = rb.objects_of([case], handling, coco_boxes=True)
    actual = rb.objects_of([read])
    mask_effect = {k: handling[k].effect for k in ("mask", "instances") if k in handling}
    has_masks = any(conversion.mask_kind(m) in ("mask", "instances") for m in conversion.written_masks(case))
    if has_masks and writer in ("coco", "geojson"):
        # masks were traced exactly: the read-back areas that are no source object are the masks' regions,
        # and what shapely (or pycocotools, for RLE) fills from them is exactly the source's pixels
        actual.areas, from_masks = _match_out(expected.areas, actual.areas)
        shape = rb.case_shape(case)
        pixels = rb.pixels_of_areas(from_masks, shape)
        for name, more in actual.pixels.items():  # regions with holes come back from COCO as RLE masks
            pixels[name] = pixels.get(name, np.zeros(shape, bool)) | more
        rb.assert_same_pixels(expected.pixels, pixels, what)
        actual.pixels, expected.pixels = {}, {}
    elif has_masks and mask_effect.get("mask", mask_effect.get("instances")) == conversion.SPLIT_HOLES:
        expected.areas += rb.traced_areas([case], split_holes=True)
        expected.pixels = {}
    if expected.pixels or actual.pixels:  # polygons with holes into COCO go out as RLE
        rb.assert_same_pixels(expected.pixels, actual.pixels, what, expected.edges)
    rb.assert_same_geometries(expected.areas, actual.areas, f"{what}: areas")
    rb.assert_same_geometries(expected.lines, actual.lines, f"{what}: lines")
    rb.assert_same_geometries(expected.points, actual.points, f"{what}: points")
    if same_family:
        _compare_extra_fields(case, read, what)


def _match_out(expected, actual):
    """``actual`` split into the areas matching an expected one (class and geometry) and the rest."""
    rest, matched = list(actual), []
    for name, geometry in expected:
        for k, (other_name, other) in enumerate(rest):
            if other_name == name and rb.shapely.hausdorff_distance(geometry, other) <= rb.TOLERANCE:
                matched.append(rest.pop(k))
                break
    return matched, rest


def _compare_extra_fields(case, read, what) -> None:
    """Ids and extra fields of every object come back as they were (formats of one family)."""
    def fields(cases):
        out = []
        for c in cases:
            for objects in c.annotation_sets():
                if "region" in conversion.object_kinds(objects):
                    continue  # kept on the image record, not an object
                out += [json.dumps(rb.extra_fields(a), sort_keys=True, default=str) for a in objects.attributes]
        return sorted(out)

    assert fields([read]) == fields([case]), f"{what}: ids or extra fields changed"


def _check_coco_files(out, cases) -> None:
    data = rb.check_coco(out)
    assert len(data["images"]) >= len([c for c in cases if not any(b.planes is not None for b in c.boxes)])


def _check_geojson_files(out, cases) -> None:
    for case in cases:
        rb.check_geojson(out / f"{case.name}.geojson")


def _check_asap_files(out, cases) -> None:
    for case in cases:
        rb.check_asap(out / f"{case.name}.xml")


def _check_imagescope_files(out, cases) -> None:
    for case in cases:
        rb.check_imagescope(out / f"{case.name}.xml")


def _check_slices_in_coco(out, cases) -> None:
    """A volume's boxes: one COCO image per annotated slice, named by the slice file, with its UID and z."""
    data = json.loads(out.read_text())
    expected = []
    for case in cases:
        uids = case.image.metadata["sop_instance_uids"]
        for boxes in case.boxes:
            for (y0, x0, y1, x1), name, z in zip(boxes.bounds, boxes.classes, boxes.planes, strict=True):
                expected.append((uids[z], int(z), str(name), (x0 + 0.5, y0 + 0.5, x1 - x0, y1 - y0)))
    images = {i["id"]: i for i in data["images"]}
    names = {c["id"]: c["name"] for c in data["categories"]}
    actual = [(images[a["image_id"]]["sop_instance_uid"], images[a["image_id"]]["z"], names[a["category_id"]],
               tuple(a["bbox"])) for a in data["annotations"]]
    assert sorted(actual) == sorted(expected)
    for image in data["images"]:
        assert image["file_name"].endswith(".dcm")


# --------------------------------------------------------------------------- VOC


def check_voc_writer(source, reader, writer, cases, out) -> None:
    """VOC roots: every XML valid, every box where the handling puts it; masks as palette PNGs with a labelmap."""
    handling = _spec(writer).holds
    expected = rb.objects_of(cases, {k: h for k, h in handling.items() if k not in ("mask", "instances")},
                             coco_boxes=True)
    xml_files = sorted((out / "Annotations").glob("*.xml")) if (out / "Annotations").is_dir() else []
    actual = []
    for path in xml_files:
        for name, (xmin, ymin, xmax, ymax) in rb.check_voc(path):
            actual.append((name, rb._box(ymin - 0.5, xmin - 0.5, ymax - 0.5, xmax - 0.5)))  # corner -> model
    rb.assert_same_geometries(expected.areas, actual, f"{reader} -> {writer}: boxes")
    assert not expected.points and not expected.lines
    if xml_files:
        back = registry.read(out, "voc-detection")
        assert sum(len(s) for c in back for s in c.boxes) == len(actual)
        if (_spec(reader).family or reader) == "voc":
            # VOC to VOC: the files are written back as they were, fields and layout included
            for path in xml_files:
                original = Path(cases[0].provenance.source)
                original = original if original.suffix == ".xml" else original / "Annotations"
                original = original.parent / path.name if original.suffix == ".xml" else original / path.name
                if original.is_file():
                    assert path.read_bytes() == original.read_bytes(), path.name
    if "mask" in handling and any(conversion.written_masks(c) for c in cases):
        _check_voc_segmentation_root(out, cases, reader)


def _check_voc_segmentation_root(out, cases, reader) -> None:
    labelmap = out / "labelmap.txt"
    names = rb.check_labelmap(labelmap)
    back = {c.name: c for c in registry.read(out, "voc-segmentation")}
    for case in cases:
        masks = [m for m in conversion.written_masks(case) if conversion.mask_kind(m) == "mask"]
        if not masks:
            continue
        from napari_nsclc.formats.masks import _safe

        stem = _safe(case.name)
        values, mode = rb.read_png(out / "SegmentationClass" / f"{stem}.png")
        assert mode == "P", stem
        source = np.asarray(masks[0].data)
        np.testing.assert_array_equal(values, source)
        for value in np.unique(source):
            if value not in (0, 255):
                assert names[value] == masks[0].schema.name_of(int(value)), (value, names)
        read = back[stem]
        np.testing.assert_array_equal(np.asarray(read.masks[0].data), source)


# --------------------------------------------------------------------------- masks and mask datasets


def check_masks_writer(source, reader, writer, cases, out) -> None:
    """Mask files: PNG values equal the source's codes (or, mirrored from a layout, the source file's values)."""
    from napari_nsclc.formats.masks import _safe, masks_to_write

    pairs = [(case, mask) for case in cases for mask in masks_to_write(case)]
    per_case = {}
    for case, _ in pairs:
        per_case[case.name] = per_case.get(case.name, 0) + 1
    for case, mask in pairs:
        relative = mask.attributes.get("relative_path")
        if relative and mask.attributes.get("root"):
            written, _ = rb.read_png(out / relative)
            original, _ = rb.read_png(Path(mask.attributes["path"]))
            np.testing.assert_array_equal(written, original)  # the same encoding, pixel for pixel
            continue
        stem = _safe(case.name) if per_case[case.name] == 1 else f"{_safe(case.name)}_{_safe(mask.name)}"
        written, mode = rb.read_png(out / f"{stem}.png")
        assert mode in ("L", "I;16", "I"), mode
        np.testing.assert_array_equal(written, np.asarray(mask.data))
        names = rb.check_labelmap(out / "labelmap.txt")
        back = registry.read(out / f"{stem}.png", "masks")[0].masks[0]
        for value in np.unique(written):
            if value:
                assert back.schema.name_of(int(value)) == mask.schema.name_of(int(value)) == names[value]
    # nothing else was written: an unpainted placeholder is not a mask of the source
    pngs = {p.relative_to(out).as_posix() for p in out.rglob("*.png")}
    assert len(pngs) == len(pairs), sorted(pngs)


def check_dataset_round_trip(source, reader, writer, cases, out) -> None:
    """A dataset written back in its own format: the files are the source's, read by independent readers."""
    src_root = Path(source) if Path(source).is_dir() else Path(source).parent
    written = sorted(_files(out))
    assert written, "nothing written"
    for path in written:
        relative = path.relative_to(out)
        if writer == "pcam":
            import h5py

            original = src_root / relative.name
            with h5py.File(path, "r") as new, h5py.File(original, "r") as old:
                np.testing.assert_array_equal(new["y"][()].reshape(-1), old["y"][()].reshape(-1))
            continue
        if writer == "cocahis":
            import h5py

            with h5py.File(path, "r") as new, h5py.File(source, "r") as old:
                assert sorted(new["GT"]) == sorted(old["GT"])
                for key in new["GT"]:
                    np.testing.assert_array_equal(new["GT"][key][()], old["GT"][key][()])  # values: 1 or 255 kept
            continue
        original = src_root / relative
        assert original.is_file(), relative
        if path.suffix == ".png":
            np.testing.assert_array_equal(rb.read_png(path)[0], rb.read_png(original)[0])
        elif path.suffix == ".json":
            assert json.loads(path.read_text()) == json.loads(original.read_text())
        elif path.suffix == ".xml":
            rb.check_voc(path)
            assert path.read_text() == original.read_text(), relative
        elif path.suffix == ".csv":
            assert rb.read_csv_rows(path) == rb.read_csv_rows(original), relative
        else:
            assert path.read_bytes() == original.read_bytes(), relative
    if writer == "nucls":
        assert {p.parent.name for p in written} >= {"csv", "mask"}


def check_one_file_dataset(source, reader, writer, cases, out) -> None:
    """MIDOG and IGNITE COCO written back: the same JSON document, valid for pycocotools."""
    rb.check_coco(out, flavour=writer)
    assert json.loads(out.read_text()) == json.loads(Path(source).read_text())


CHECKS = {
    "voc": check_voc_writer,
    "voc-detection": check_voc_writer,
    "voc-segmentation": lambda s, r, w, c, o: _check_voc_segmentation_root(o, c, r),
    "masks": check_masks_writer,
    "nsclc-nat": check_dataset_round_trip,
    "ignite-he": check_dataset_round_trip,
    "nucls": check_dataset_round_trip,
    "ocelot": check_dataset_round_trip,
    "ocelot-points": check_dataset_round_trip,
    "cocahis": check_dataset_round_trip,
    "pcam": check_dataset_round_trip,
    "lung-pet-ct-dx": check_dataset_round_trip,
    "midog": check_one_file_dataset,
    "ignite-pdl1": check_one_file_dataset,
}
