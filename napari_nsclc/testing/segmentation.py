"""Synthetic segmentation datasets: NSCLC-NAT, IGNITE H&E, CoCaHis, PCam, VOC, a mask pair.

Every file here is synthetic, written by this module following FORMATS.md
(§1, §3, §6, §7) with fixed seeds: H&E-like RGB images (pink stroma, purple
nuclei-dense regions, white gaps) and masks drawn from the same smooth random
fields, so that class regions line up with what the image shows. They are
small (tens of KB) and build in well under a second.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = [
    "BUILDERS",
    "build_cocahis",
    "build_ignite_he",
    "build_mask_pair",
    "build_nsclc_nat",
    "build_pcam",
    "build_voc_segmentation",
    "smooth_field",
    "tissue_image",
]


def smooth_field(shape: tuple[int, int], seed: int, cell: int = 16) -> np.ndarray:
    """A smooth random field in [0, 1], shape ``(H, W)``: bilinear upsampling of coarse noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((shape[0] // cell + 2, shape[1] // cell + 2))
    rows = np.arange(shape[0]) / cell
    cols = np.arange(shape[1]) / cell
    r0, c0 = rows.astype(int), cols.astype(int)
    fr, fc = (rows - r0)[:, None], (cols - c0)[None, :]
    top = coarse[r0][:, c0] * (1 - fc) + coarse[r0][:, c0 + 1] * fc
    bottom = coarse[r0 + 1][:, c0] * (1 - fc) + coarse[r0 + 1][:, c0 + 1] * fc
    field = top * (1 - fr) + bottom * fr
    return (field - field.min()) / max(float(np.ptp(field)), 1e-9)


def tissue_image(shape: tuple[int, int], seed: int, dense: np.ndarray | None = None) -> np.ndarray:
    """An H&E-looking RGB image, uint8 ``(H, W, 3)``; ``dense`` marks purple (tumour-like) areas."""
    rng = np.random.default_rng(seed + 1000)
    field = smooth_field(shape, seed, cell=max(6, shape[1] // 8))
    tissue = field > 0.25
    if dense is None:
        dense = field > 0.7
    stroma = np.array([232, 170, 200], float)
    nuclei = np.array([120, 70, 160], float)
    white = np.array([245, 240, 245], float)
    image = np.where(dense[..., None], nuclei, stroma)
    image = np.where(tissue[..., None] | dense[..., None], image, white)
    speckle = rng.normal(0, 12, shape + (1,)) * (tissue | dense)[..., None]
    return np.clip(image + speckle, 0, 255).astype(np.uint8)


def _save_png(array: np.ndarray, path: Path, palette=None) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    if palette is not None:
        image = Image.fromarray(array.astype(np.uint8), mode="P")
        flat = [int(c) for rgb in palette for c in rgb]
        image.putpalette(flat + [0] * (768 - len(flat)))
    else:
        image = Image.fromarray(array)
    image.save(path, format="PNG")
    return path


def _save_jpeg(array: np.ndarray, path: Path) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="JPEG", quality=90)
    return path


# --------------------------------------------------------------------------- NSCLC-NAT


def build_nsclc_nat(folder: Path, n_cases: int = 3, shape: tuple[int, int] = (96, 128)) -> Path:
    """An NSCLC-NAT root: ``Images/{1..n}.png`` (case 3 as .jpg), ``SegmentationClass/`` 0/1,
    ``Mask/`` 0/255 (the undocumented expert encoding). Synthetic."""
    folder = Path(folder)
    for index in range(1, n_cases + 1):
        field = smooth_field(shape, seed=index, cell=max(8, shape[1] // 5))
        bed = field > 0.6
        image = tissue_image(shape, seed=index, dense=bed)
        if index == 3:
            _save_jpeg(image, folder / "Images" / f"{index}.jpg")
        else:
            _save_png(image, folder / "Images" / f"{index}.png")
        _save_png(bed.astype(np.uint8), folder / "SegmentationClass" / f"{index}.png")
        _save_png((bed * 255).astype(np.uint8), folder / "Mask" / f"{index}.png")
    return folder


# --------------------------------------------------------------------------- IGNITE H&E


def ignite_labels(shape: tuple[int, int], seed: int, context: int = 0) -> np.ndarray:
    """An IGNITE-style tissue map: codes 1..16 inside the ROI, 0 (unannotated) in the context border."""
    field = smooth_field(shape, seed, cell=max(8, shape[1] // 5))
    second = smooth_field(shape, seed + 50, cell=max(4, shape[1] // 10))
    labels = np.full(shape, 4, np.uint8)  # stroma
    labels[field > 0.62] = 2  # tumour cells
    labels[(field < 0.25)] = 6  # alveolar tissue
    labels[(second > 0.85) & (field <= 0.62)] = 5  # inflammation
    labels[(second < 0.08)] = 8  # necrosis
    labels[(field < 0.1)] = 1  # background
    if context:
        labels[:context] = 0
        labels[-context:] = 0
        labels[:, :context] = 0
        labels[:, -context:] = 0
    return labels


def build_ignite_he(folder: Path, context_shape: tuple[int, int] = (80, 96), border: int = 12) -> Path:
    """An IGNITE ``data/`` folder: two H&E ROIs with ``_with_context`` variants and
    ``data_overview.csv`` (one train, one test). Returns ``data/``. Synthetic."""
    data = Path(folder) / "data"
    rows = ["task,split,image_path,annotation_path"]
    for roi, (patient, split) in enumerate([(1, "train"), (2, "test")], start=1):
        stem = f"patient{patient}_he_roi{roi}"
        labels_context = ignite_labels(context_shape, seed=roi, context=border)
        image_context = tissue_image(context_shape, seed=roi, dense=labels_context == 2)
        labels = labels_context[border:-border, border:-border]
        image = image_context[border:-border, border:-border]
        _save_png(image, data / "images" / "he" / f"{stem}.png")
        _save_png(image_context, data / "images" / "he" / f"{stem}_with_context.png")
        _save_png(labels, data / "annotations" / "he" / f"{stem}.png")
        _save_png(labels_context, data / "annotations" / "he" / f"{stem}_with_context.png")
        rows.append(f"he_tissue_segmentation,{split},images/he/{stem}.png,annotations/he/{stem}.png")
    (data / "data_overview.csv").write_text("\n".join(rows) + "\n")
    return data


# --------------------------------------------------------------------------- CoCaHis


def build_cocahis(folder: Path, n_images: int = 2, shape: tuple[int, int] = (64, 80)) -> Path:
    """A CoCaHis HDF5: ``HE/raw`` (N, H, W, 3) uint8, ``HE/sn1``, ``HE/sn2``, ``GT/GT1..GT7`` and
    ``GT/GT_majority_vote`` (N, H, W). GT1..GT3 use foreground 255, the rest 1. Synthetic."""
    import h5py

    Path(folder).mkdir(parents=True, exist_ok=True)
    path = Path(folder) / "CoCaHis.hdf5"
    raw = np.zeros((n_images, *shape, 3), np.uint8)
    votes = np.zeros((7, n_images, *shape), np.uint8)
    for i in range(n_images):
        field = smooth_field(shape, seed=40 + i, cell=max(8, shape[1] // 5))
        raw[i] = tissue_image(shape, seed=40 + i, dense=field > 0.55)
        for reader in range(7):
            threshold = 0.5 + 0.02 * (reader - 3)
            votes[reader, i] = field > threshold
    majority = (votes.sum(axis=0) >= 4).astype(np.uint8)
    with h5py.File(path, "w") as h5:
        h5.create_dataset("HE/raw", data=raw)
        h5.create_dataset("HE/sn1", data=raw[..., ::-1])
        h5.create_dataset("HE/sn2", data=raw)
        for reader in range(7):
            foreground = 255 if reader < 3 else 1
            h5.create_dataset(f"GT/GT{reader + 1}", data=votes[reader] * foreground)
        h5.create_dataset("GT/GT_majority_vote", data=majority)
    return path


# --------------------------------------------------------------------------- PCam


def build_pcam(folder: Path, n_patches: int = 6) -> Path:
    """PCam split files: ``..._x.h5`` (N, 96, 96, 3) uint8 and ``..._y.h5`` (N, 1, 1, 1) uint8,
    as distributed (keys ``x`` and ``y``). Returns the ``_x`` file. Synthetic."""
    import h5py

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    x = np.zeros((n_patches, 96, 96, 3), np.uint8)
    y = np.zeros((n_patches, 1, 1, 1), np.uint8)
    for i in range(n_patches):
        tumour = i % 2 == 1
        field = smooth_field((96, 96), seed=70 + i, cell=12)
        x[i] = tissue_image((96, 96), seed=70 + i, dense=field > (0.45 if tumour else 0.95))
        y[i] = int(tumour)
    x_path = folder / "camelyonpatch_level_2_split_valid_x.h5"
    with h5py.File(x_path, "w") as h5:
        h5.create_dataset("x", data=x)
    with h5py.File(folder / "camelyonpatch_level_2_split_valid_y.h5", "w") as h5:
        h5.create_dataset("y", data=y)
    return x_path


# --------------------------------------------------------------------------- VOC segmentation


def build_voc_segmentation(folder: Path) -> Path:
    """A VOC-style segmentation root: ``JPEGImages/``, palette ``SegmentationClass/`` and
    ``SegmentationObject/`` (255 = void on object borders), ``labelmap.txt`` and
    ``ImageSets/Segmentation/{train,val}.txt``. Synthetic."""
    from napari_nsclc.formats.masks import VOC_PALETTE

    root = Path(folder)
    classes = [
        ("background", (0, 0, 0)),
        ("tumour", (255, 127, 14)),
        ("stroma", (31, 119, 180)),
        ("necrosis", (44, 160, 44)),
    ]
    lines = ["# label:color_rgb:parts:actions"] + [f"{n}:{r},{g},{b}::" for n, (r, g, b) in classes]
    root.mkdir(parents=True, exist_ok=True)
    (root / "labelmap.txt").write_text("\n".join(lines) + "\n")
    palette = list(VOC_PALETTE)
    for code, (_, rgb) in enumerate(classes):
        palette[code] = rgb
    names = []
    for index in range(2):
        name = f"2026_{index:06d}"
        names.append(name)
        shape = (72, 88)
        field = smooth_field(shape, seed=90 + index, cell=18)
        labels = np.zeros(shape, np.uint8)
        labels[field > 0.3] = 2
        labels[field > 0.65] = 1
        labels[(field > 0.45) & (field < 0.5)] = 3
        from skimage.measure import label as connected
        from skimage.segmentation import find_boundaries

        objects = connected(labels, connectivity=2, background=0).astype(np.uint8)
        border = find_boundaries(objects, mode="inner") & (objects > 0)
        objects[border] = 255
        class_mask = labels.copy()
        class_mask[border] = 255
        _save_jpeg(tissue_image(shape, seed=90 + index, dense=labels == 1), root / "JPEGImages" / f"{name}.jpg")
        _save_png(class_mask, root / "SegmentationClass" / f"{name}.png", palette=palette)
        _save_png(objects, root / "SegmentationObject" / f"{name}.png", palette=VOC_PALETTE)
    sets = root / "ImageSets" / "Segmentation"
    sets.mkdir(parents=True, exist_ok=True)
    (sets / "train.txt").write_text(names[0] + "\n")
    (sets / "val.txt").write_text(names[1] + "\n")
    return root


# --------------------------------------------------------------------------- a plain image + mask pair


def build_mask_pair(folder: Path) -> Path:
    """``image.png`` and ``mask.png`` (single-channel, codes 0..3) side by side. Returns the mask. Synthetic."""
    folder = Path(folder)
    shape = (64, 64)
    field = smooth_field(shape, seed=5, cell=16)
    mask = np.digitize(field, [0.3, 0.55, 0.8]).astype(np.uint8)
    _save_png(tissue_image(shape, seed=5, dense=mask == 3), folder / "image.png")
    _save_png(mask, folder / "mask.png")
    (folder / "README.txt").write_text("Synthetic image + mask pair; open mask.png, or both files together.\n")
    return folder / "mask.png"


BUILDERS = {
    "nsclc-nat": build_nsclc_nat,
    "ignite-he": build_ignite_he,
    "cocahis": build_cocahis,
    "pcam": build_pcam,
    "voc-segmentation": build_voc_segmentation,
    "masks": build_mask_pair,
}
