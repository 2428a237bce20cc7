"""A generated NSCLC-NAT-like dataset at full scale: 2,544 images of 2048² with both masks (the batch issue).

FORMATS.md §1: ``Images/``, ``SegmentationClass/`` (0/1) and ``Mask/`` (the expert
mask, here 0/255), one case per stem, 2,544 images "including flipped/mirrored
augmentations of the same case". So the dataset is 318 base cases, each in the 8
flips and 90° rotations of the square, as ``{base}_{transform}.png``: every image
belongs to a family of 8, which ``validate`` must find.

Each base case is a whole-slide thumbnail made up for the purpose: a white glass
background with a few tissue pieces (smooth random blobs, H&E pink and purple,
with grain), a tumour bed inside the tissue, and an expert mask that is the bed
slightly dilated. Images are PNG (the dataset's own preview shows ``.png``), saved
with zlib level 1 to keep generation time down; decoding costs the same at any level.

Run ``python benchmarks/_nat_like.py DIR [--cases N]``; the benchmark script calls
:func:`build` itself and keeps the dataset between runs.
"""

from __future__ import annotations

import argparse
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

SIDE = 2048
#: The 8 transforms of the square: (turns by 90°, mirrored).
TRANSFORMS = [(turns, mirrored) for turns in range(4) for mirrored in (False, True)]
FULL = 2544


def _field(rng: np.random.Generator, side: int, cell: int) -> np.ndarray:
    """A smooth random field in [0, 1], (side, side): coarse noise zoomed cubically to side / 4, then linearly."""
    coarse = rng.random((side // cell + 3, side // cell + 3))
    quarter = ndimage.zoom(coarse, cell / 4, order=3)
    field = ndimage.zoom(quarter, 4, order=1)[cell : cell + side, cell : cell + side]
    return (field - field.min()) / max(float(np.ptp(field)), 1e-9)


def base_case(seed: int, side: int = SIDE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One base case: RGB image (side, side, 3) uint8, tumour bed 0/1 and expert mask 0/255, both (side, side) uint8."""
    rng = np.random.default_rng(seed)
    pieces, spots = _field(rng, side, side // 6), _field(rng, side, side // 10)
    tissue = pieces > 0.55
    bed = (spots > 0.6) & (pieces > 0.62)  # a higher level of the same field: the bed keeps off the tissue's edge
    expert = (spots > 0.58) & (pieces > 0.6)  # the expert drew a little wider
    grain = rng.normal(0, 9, (side // 4, side // 4, 1)).repeat(4, 0).repeat(4, 1)
    stroma, tumour, glass = np.array([228, 160, 196.0]), np.array([140, 82, 170.0]), np.array([246, 244, 246.0])
    image = np.where(bed[..., None], tumour, stroma) + grain
    image = np.where(tissue[..., None], image, glass)
    return np.clip(image, 0, 255).astype(np.uint8), bed.astype(np.uint8), (expert * 255).astype(np.uint8)


def _transform(array: np.ndarray, turns: int, mirrored: bool) -> np.ndarray:
    turned = np.rot90(array, turns)
    return np.ascontiguousarray(turned[:, ::-1] if mirrored else turned)


def _write_base(root: Path, base: int, count: int) -> None:
    targets = [root / folder / f"{base:03d}_{number}.png" for number in range(count)
               for folder in ("Images", "SegmentationClass", "Mask")]  # fmt: skip
    if all(target.exists() for target in targets):
        return  # built by an earlier run
    image, bed, expert = base_case(base)
    for number, (turns, mirrored) in enumerate(TRANSFORMS[:count]):
        stem = f"{base:03d}_{number}"
        for folder, array in (("Images", image), ("SegmentationClass", bed), ("Mask", expert)):
            target = root / folder / f"{stem}.png"
            if not target.exists():
                Image.fromarray(_transform(array, turns, mirrored)).save(target, compress_level=1)


def build(root: Path, cases: int = FULL, workers: int | None = None) -> Path:
    """Write (or complete) the dataset of ``cases`` images under ``root``; returns ``root``."""
    root = Path(root)
    for folder in ("Images", "SegmentationClass", "Mask"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    bases = -(-cases // len(TRANSFORMS))
    counts = [min(len(TRANSFORMS), cases - base * len(TRANSFORMS)) for base in range(bases)]
    with ProcessPoolExecutor(workers or os.cpu_count()) as pool:
        list(pool.map(_write_base, [root] * bases, range(bases), counts))
    return root


def subset(full: Path, root: Path, cases: int) -> Path:
    """The first ``cases`` images of ``full`` as a dataset of their own, by hard links (no copy)."""
    stems = sorted(p.stem for p in (full / "Images").glob("*.png"))[:cases]
    for folder in ("Images", "SegmentationClass", "Mask"):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for stem in stems:
            target = root / folder / f"{stem}.png"
            if not target.exists():
                os.link(full / folder / f"{stem}.png", target)
    return root


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--cases", type=int, default=FULL)
    arguments = parser.parse_args()
    print(build(arguments.folder, arguments.cases))
