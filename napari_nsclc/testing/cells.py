"""Synthetic cell and nucleus datasets: NuCLS, IGNITE PD-L1, MIDOG, OCELOT and COCO.

Every file here is generated (fixed seeds, a few KB) and follows FORMATS.md
§2, §3, §6 and §7 exactly; none is real patient data. The real MIDOG
database and OCELOT metadata in ``shared/samples`` are tested separately.
"""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

import numpy as np

__all__ = ["BUILDERS", "build_coco", "build_ignite_pdl1", "build_midog", "build_nucls", "build_ocelot"]

#: NuCLS-like nuclei per FOV: (raw class, type, centre x, centre y, radius x, radius y).
NUCLS_NUCLEI = (
    ("tumor", "polyline", 30, 25, 9, 7),
    ("tumor", "polyline", 60, 30, 8, 8),
    ("lymphocyte", "polyline", 80, 70, 5, 5),
    ("fibroblast", "rectangle", 25, 80, 10, 4),
    ("mitotic_figure", "polyline", 55, 95, 7, 6),
    ("macrophage", "polyline", 20, 50, 6, 6),
)
_NUCLS_MAIN_SUPER = {
    "tumor": ("tumor_nonMitotic", "tumor_any"),
    "mitotic_figure": ("tumor_mitotic", "tumor_any"),
    "fibroblast": ("nonTILnonMQ_stromal", "nonTIL_stromal"),
    "macrophage": ("macrophage", "nonTIL_stromal"),
    "lymphocyte": ("lymphocyte", "sTIL"),
}
_NUCLS_CODES = {"tumor": 1, "fibroblast": 2, "lymphocyte": 3, "macrophage": 5, "mitotic_figure": 6}


def _tissue(shape: tuple[int, int], seed: int, tint=(0.85, 0.62, 0.8)) -> np.ndarray:
    """A pinkish H&E-like background with texture (uint8 RGB)."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 12, (*shape, 3))
    base = np.array(tint) * 235
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def _stain(image: np.ndarray, rr, cc, color) -> None:
    image[rr, cc] = (0.55 * image[rr, cc] + 0.45 * np.array(color)).astype(np.uint8)


def _save_png(path: Path, array: np.ndarray) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


# --------------------------------------------------------------------------- NuCLS


def _nucleus_ring(kind: str, cx: int, cy: int, rx: int, ry: int) -> tuple[list[int], list[int]]:
    if kind == "rectangle":
        x0, x1, y0, y1 = cx - rx, cx + rx, cy - ry, cy + ry
        return [x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0]
    angles = np.linspace(0, 2 * np.pi, 13)[:-1]
    xs = np.round(cx + rx * np.cos(angles)).astype(int).tolist()
    ys = np.round(cy + ry * np.sin(angles)).astype(int).tolist()
    return [*xs, xs[0]], [*ys, ys[0]]


def build_nucls(folder: Path) -> Path:
    """Two synthetic NuCLS FOVs (100 x 120 px, six nuclei each) in rgb/ mask/ csv/ visualization/.

    Returns the dataset root.
    """
    from skimage.draw import polygon as fill_polygon

    folder = Path(folder)
    pairs = list(combinations(range(1, 256), 2))
    stems = [
        "TCGA-A1-A0SK-DX1_id-5ea4095addda5f8398977ebc_left-57095_top-37584_bottom-37664_right-57191",
        "TCGA-E2-A14V-DX1_id-5ea40a1eddda5f839898ee6c_left-10020_top-20040_bottom-20120_right-10116",
    ]
    for number, stem in enumerate(stems):
        height, width = 100, 120
        rgb = _tissue((height, width), seed=10 + number)
        mask = np.zeros((height, width, 3), dtype=np.uint8)
        mask[4:96, 4:116, 0] = 253  # the FOV region
        lines = [",raw_classification,main_classification,super_classification,type,xmin,ymin,xmax,ymax,coords_x,coords_y"]
        for index, (raw, kind, cx, cy, rx, ry) in enumerate(NUCLS_NUCLEI):
            cx, cy = cx + 3 * number, cy + 2 * number
            xs, ys = _nucleus_ring(kind, cx, cy, rx, ry)
            rr, cc = fill_polygon(np.array(ys), np.array(xs), (height, width))
            mask[rr, cc] = (_NUCLS_CODES[raw], *pairs[index])
            _stain(rgb, rr, cc, (70, 30, 120))
            main, super_ = _NUCLS_MAIN_SUPER[raw]
            coords_x, coords_y = ",".join(map(str, xs)), ",".join(map(str, ys))
            lines.append(
                f'{index},{raw},{main},{super_},{kind},{min(xs)},{min(ys)},{max(xs)},{max(ys)},"{coords_x}","{coords_y}"'
            )
        _save_png(folder / "rgb" / f"{stem}.png", rgb)
        _save_png(folder / "mask" / f"{stem}.png", mask)
        overlay = rgb.copy()
        overlay[mask[..., 0] > 0] //= 2
        _save_png(folder / "visualization" / f"{stem}.png", overlay)
        (folder / "csv").mkdir(parents=True, exist_ok=True)
        (folder / "csv" / f"{stem}.csv").write_text("\n".join(lines) + "\n")
    return folder


# --------------------------------------------------------------------------- IGNITE PD-L1


IGNITE_BOX = 16  # the fixed cell-box side of the synthetic files, in pixels


def _ignite_cells(rng, count: int, width: int, height: int, region) -> list[tuple[float, float]]:
    x0, y0, x1, y1 = region
    return [(float(rng.integers(x0 + 4, x1 - 4)), float(rng.integers(y0 + 4, y1 - 4))) for _ in range(count)]


def build_ignite_pdl1(folder: Path) -> Path:
    """A synthetic IGNITE PD-L1 tree: one RGBA ROI with context, its ``pdl1_annotations.json``,
    a two-reader file (``pdl1_annotations_readers.json``) and a ``nuclei_annotations.json``.

    Returns ``data/annotations/pdl1/pdl1/pdl1_annotations.json``.
    """
    from skimage.draw import disk

    folder = Path(folder)
    rng = np.random.default_rng(3)
    width, height = 160, 128
    region = (24, 16, 136, 112)  # annotated_xyxy inside the context image
    file_name = "patient1_pdl1_roi1_with_context.png"
    cells = _ignite_cells(rng, 12, width, height, region)
    classes = [1 + (i % 3) for i in range(len(cells))]
    rgb = _tissue((height, width), seed=31, tint=(0.92, 0.9, 0.86))
    for (x, y), c in zip(cells, classes, strict=True):
        rr, cc = disk((y, x), 5, shape=(height, width))
        _stain(rgb, rr, cc, {1: (60, 70, 160), 2: (120, 60, 20), 3: (90, 120, 200)}[c])
    rgba = np.dstack([rgb, np.full((height, width), 255, np.uint8)])
    for task in ("pdl1", "nuclei"):
        _save_png(folder / "data" / "images" / "pdl1" / task / file_name, rgba)
    image = {"id": 1, "file_name": file_name, "width": width, "height": height, "annotated_xyxy": list(region)}
    pdl1_categories = [
        {"id": 1, "name": "pd-l1 negative tumor cell", "supercategory": "cell"},
        {"id": 2, "name": "pd-l1 positive tumor cell", "supercategory": "cell"},
        {"id": 3, "name": "non-tumor cell", "supercategory": "cell"},
    ]
    half = IGNITE_BOX / 2

    def annotation(i, x, y, category_id):
        return {"id": i, "image_id": 1, "category_id": category_id,
                "bbox": [x - half, y - half, IGNITE_BOX, IGNITE_BOX], "area": IGNITE_BOX**2, "iscrowd": 0}  # fmt: skip

    pdl1 = {
        "info": {"description": "synthetic IGNITE-like PD-L1 cells (napari-nsclc fixture)"},
        "images": [image],
        "categories": pdl1_categories,
        "annotations": [annotation(i + 1, x, y, c) for i, ((x, y), c) in enumerate(zip(cells, classes, strict=True))],
    }
    target = folder / "data" / "annotations" / "pdl1" / "pdl1" / "pdl1_annotations.json"
    _write_json(target, pdl1)
    readers = []
    for block, reader in enumerate(("reader P1", "reader P2")):
        for info in pdl1_categories:
            readers.append({"id": block * 3 + info["id"], "name": info["name"], "supercategory": reader})
    multi_annotations = []
    for block in range(2):
        for i, ((x, y), c) in enumerate(zip(cells, classes, strict=True)):
            if block == 1 and i % 4 == 0:
                c = 1 + c % 3  # the second reader disagrees on every fourth cell
            multi_annotations.append(annotation(len(multi_annotations) + 1, x + block, y, block * 3 + c))
    multi = {"images": [image], "categories": readers, "annotations": multi_annotations}
    _write_json(target.with_name("pdl1_annotations_readers.json"), multi)
    nuclei = {
        "images": [image],
        "categories": [{"id": 1, "name": "nucleus", "supercategory": "cell"}],
        "annotations": [annotation(i + 1, x, y, 1) for i, (x, y) in enumerate(cells)],
    }
    _write_json(folder / "data" / "annotations" / "pdl1" / "nuclei" / "nuclei_annotations.json", nuclei)
    return target


def _write_json(path: Path, data, indent: int | None = 2) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=indent) + ("\n" if indent else ""))
    return path


# --------------------------------------------------------------------------- MIDOG


def build_midog(folder: Path) -> Path:
    """A synthetic MIDOG folder: ``001.tiff`` (256 x 320 RGB) and a two-image ``MIDOG.json`` with
    ``[x1, y1, x2, y2]`` 50 x 50 boxes (4 mitotic figures, 3 hard negatives on 001; 2 on 002).

    Returns the image ``001.tiff`` (opening it finds its annotations in the database).
    """
    import tifffile
    from skimage.draw import disk

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    height, width = 256, 320
    image = _tissue((height, width), seed=7)
    centres = [(60, 50, 1), (180, 60, 1), (260, 200, 1), (100, 170, 1), (40, 200, 2), (200, 130, 2), (150, 90.5, 2)]
    annotations = []
    for i, (x, y, category) in enumerate(centres, start=1):
        rr, cc = disk((y, x), 9, shape=(height, width))
        _stain(image, rr, cc, (40, 20, 90) if category == 1 else (110, 60, 130))
        annotations.append({"bbox": [x - 25, y - 25, x + 25, y + 25], "category_id": category, "image_id": 1, "id": i})
    annotations += [
        {"bbox": [100, 100, 150, 150], "category_id": 1, "image_id": 2, "id": 8},
        {"bbox": [10, 20, 60, 70], "category_id": 2, "image_id": 2, "id": 9},
    ]
    tifffile.imwrite(folder / "001.tiff", image, photometric="rgb")
    database = {
        "info": {"description": "synthetic MIDOG-like database (napari-nsclc fixture)", "version": "1.0"},
        "licenses": [{"url": "", "id": 1, "name": "fixture"}],
        "images": [
            {"license": 1, "file_name": "001.tiff", "id": 1, "width": width, "height": height},
            {"license": 1, "file_name": "002.tiff", "id": 2, "width": width, "height": height},
        ],
        "categories": [{"id": 1, "name": "mitotic figure"}, {"id": 2, "name": "not mitotic figure"}],
        "annotations": annotations,
    }
    (folder / "MIDOG.json").write_text(json.dumps(database))
    return folder / "001.tiff"


# --------------------------------------------------------------------------- OCELOT


def build_ocelot(folder: Path) -> Path:
    """A synthetic OCELOT tree with one training sample (patches 128 x 128 instead of 1024²,
    mpp scaled to match), cells CSV, tissue PNG and ``metadata.json`` in the dataset's layout.

    Returns the dataset root.
    """
    from skimage.draw import disk

    folder = Path(folder)
    side = 128
    scale = 1024 / side
    sample = {
        "slide_name": "synthetic-slide-001",
        "cell": {"x_start": 59847, "y_start": 45290, "x_end": 60655, "y_end": 46098,
                 "resized_mpp_x": 0.19426718377508223 * scale, "resized_mpp_y": 0.19426718377508223 * scale},
        "tissue": {"x_start": 58230, "y_start": 45290, "x_end": 61465, "y_end": 48525,
                   "resized_mpp_x": 0.7777900241489988 * scale, "resized_mpp_y": 0.7777900241489988 * scale},
        "patch_x_offset": 0.625, "patch_y_offset": 0.125,
        "mpp_x": 0.24619999527931213, "mpp_y": 0.24619999527931213,
        "organ": "kidney", "subset": "train",
    }  # fmt: skip
    _write_json(folder / "metadata.json", {"type": "OCELOT metadata (synthetic)", "sample_pairs": {"001": sample}}, 4)
    tissue_mask = np.ones((side, side), np.uint8)
    yy, xx = np.mgrid[:side, :side]
    tissue_mask[(yy - 40) ** 2 + (xx - 85) ** 2 < 35**2] = 2
    tissue_mask[:, :6] = 255
    tissue = _tissue((side, side), seed=5)
    tissue[tissue_mask == 2] = (0.7 * tissue[tissue_mask == 2]).astype(np.uint8)
    _save_jpg(folder / "images" / "train" / "tissue" / "001.jpg", tissue)
    _save_png(folder / "annotations" / "train" / "tissue" / "001.png", tissue_mask)
    rng = np.random.default_rng(23)
    cell = _tissue((side, side), seed=6)
    rows = []
    for _ in range(15):
        x, y = int(rng.integers(5, side - 5)), int(rng.integers(5, side - 5))
        label = 2 if x < 70 else 1
        rr, cc = disk((y, x), 3, shape=(side, side))
        _stain(cell, rr, cc, (60, 20, 110))
        rows.append(f"{x},{y},{label}")
    _save_jpg(folder / "images" / "train" / "cell" / "001.jpg", cell)
    (folder / "annotations" / "train" / "cell").mkdir(parents=True, exist_ok=True)
    (folder / "annotations" / "train" / "cell" / "001.csv").write_text("\n".join(rows) + "\n")
    return folder


def _save_jpg(path: Path, array: np.ndarray) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, quality=90)
    return path


# --------------------------------------------------------------------------- generic COCO


def build_coco(folder: Path) -> Path:
    """A synthetic COCO file exercising every geometry: a polygon with two parts, a bbox-only
    object, compressed and uncompressed RLE, keypoints, 0-based category ids with a
    ``_background_`` category, and extras (``attributes``, ``info``, ``licenses``, image fields).

    Returns ``annotations.json``; its image is ``images/tile_0001.png`` (96 x 128).
    """
    from .. import rle

    folder = Path(folder)
    height, width = 96, 128
    _save_png(folder / "images" / "tile_0001.png", _tissue((height, width), seed=41))
    blob = np.zeros((height, width), bool)
    blob[20:40, 70:95] = True
    blob[30:50, 80:90] = True
    ring = np.zeros((height, width), bool)
    ring[60:85, 20:45] = True
    ring[68:77, 28:37] = False
    compressed = rle.encode(blob)
    counts = _column_runs(ring)
    document = {
        "info": {"description": "synthetic COCO fixture (napari-nsclc)", "year": 2026},
        "licenses": [{"id": 0, "name": "CC0", "url": ""}],
        "categories": [
            {"id": 0, "name": "_background_", "supercategory": ""},
            {"id": 1, "name": "tumor", "supercategory": "nucleus", "color": "#ff0000"},
            {"id": 2, "name": "lymphocyte", "supercategory": "nucleus"},
            {"id": 3, "name": "cell", "supercategory": "", "keypoints": ["centre"], "skeleton": []},
        ],
        "images": [{"id": 0, "file_name": "tile_0001.png", "width": width, "height": height, "license": 0,
                    "date_captured": "2026-01-01"}],
        "annotations": [
            {"id": 0, "image_id": 0, "category_id": 1, "segmentation": [[10, 10, 30, 10, 30, 25, 10, 25],
             [40.5, 12, 52, 12, 46, 22]], "area": 357.5, "bbox": [10, 10, 42, 15], "iscrowd": 0,
             "attributes": {"occluded": False, "annotator": "A"}},
            {"id": 1, "image_id": 0, "category_id": 2, "segmentation": [], "area": 120.0,
             "bbox": [100.0, 60.0, 12.0, 10.0], "iscrowd": 0},
            {"id": 2, "image_id": 0, "category_id": 1, "segmentation": compressed, "area": int(blob.sum()),
             "bbox": [70, 20, 25, 30], "iscrowd": 1},
            {"id": 3, "image_id": 0, "category_id": 2, "segmentation": {"size": [height, width], "counts": counts},
             "area": int(ring.sum()), "bbox": [20, 60, 25, 25], "iscrowd": 1},
            {"id": 4, "image_id": 0, "category_id": 3, "keypoints": [64, 48, 2], "num_keypoints": 1,
             "bbox": [60, 44, 8, 8], "area": 64, "iscrowd": 0},
        ],
    }  # fmt: skip
    return _write_json(folder / "annotations.json", document)


def _column_runs(binary: np.ndarray) -> list[int]:
    """COCO uncompressed RLE counts (column-major runs starting with background)."""
    flat = binary.ravel(order="F").astype(np.int8)
    edges = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
    return [0, *runs] if flat[0] else runs


BUILDERS = {
    "nucls": build_nucls,
    "ignite-pdl1": build_ignite_pdl1,
    "midog": build_midog,
    "ocelot": build_ocelot,
    "coco": build_coco,
}
