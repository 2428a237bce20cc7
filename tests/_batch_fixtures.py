"""Fixture helpers for the ``validate`` tests: small datasets laid out as ../shared/FORMATS.md says.

Everything written here is synthetic (or cropped from the real NSCLC-NAT preview
sheet); problems are planted by hand, one at a time, so that each test knows
exactly which file and kind must be reported.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image

#: Cells of the NSCLC-NAT preview sheet (samples/nsclc-nat/image-Dataset.png): 11 columns x 5 rows of
#: 200 x ~206.6 px, each a real whole-slide thumbnail with its name underneath.
SHEET_COLUMNS, SHEET_ROWS, CELL_WIDTH, CELL_HEIGHT = 11, 5, 200, 206.6


def sheet_tiles(samples: Path) -> list[np.ndarray]:
    """The 55 real thumbnails of the preview sheet, 160 x 190 px RGB each, names cut off."""
    sheet = Image.open(samples / "nsclc-nat" / "image-Dataset.png").convert("RGB")
    tiles = []
    for row in range(SHEET_ROWS):
        for column in range(SHEET_COLUMNS):
            x0, y0 = column * CELL_WIDTH + 5, int(row * CELL_HEIGHT) + 5
            tiles.append(np.asarray(sheet.crop((x0, y0, x0 + 190, y0 + 160))))
    return tiles


def save_png(array: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(array)).save(path, format="PNG")
    return path


def tissue_mask(rgb: np.ndarray) -> np.ndarray:
    """0/1: the stained tissue of an H&E thumbnail (darker than the white background)."""
    return (np.asarray(rgb).mean(axis=2) < 215).astype(np.uint8)


def write_nat_case(root: Path, stem: str, rgb: np.ndarray, suffix: str = ".png") -> None:
    """One NSCLC-NAT case: ``Images/{stem}``, ``SegmentationClass/{stem}.png`` (0/1), ``Mask/{stem}.png`` (0/255)."""
    (root / "Images").mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(rgb)).save(root / "Images" / f"{stem}{suffix}")
    bed = tissue_mask(rgb)
    save_png(bed, root / "SegmentationClass" / f"{stem}.png")
    save_png(bed * 255, root / "Mask" / f"{stem}.png")


def flip(rgb: np.ndarray) -> np.ndarray:
    """Mirrored left to right."""
    return np.ascontiguousarray(rgb[:, ::-1])


def rotate(rgb: np.ndarray, turns: int = 1) -> np.ndarray:
    """Rotated by ``turns`` x 90° counter-clockwise."""
    return np.ascontiguousarray(np.rot90(rgb, turns))


def truncate(path: Path, keep: float = 0.5) -> Path:
    """Cut ``path`` to its first ``keep`` fraction of bytes (a download that stopped)."""
    data = path.read_bytes()
    path.write_bytes(data[: max(1, int(len(data) * keep))])
    return path


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """``{relative path: (mtime in ns, sha256)}`` of every file under ``root`` (or of ``root`` itself)."""
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    base = root.parent if root.is_file() else root
    return {p.relative_to(base).as_posix(): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in files}  # fmt: skip


def found(result) -> set[tuple[str, str]]:
    """``{(kind, file)}`` of a validation result's problems."""
    return {(p.kind, p.file) for p in result.problems}


def found_json(data: dict) -> set[tuple[str, str]]:
    """``{(kind, file)}`` of ``validate --json``'s problems."""
    return {(p["kind"], p["file"]) for p in data["problems"]}
