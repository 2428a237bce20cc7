"""Synthetic whole-slide pyramids and their annotations, for tests and demos.

Every file here is **synthetic**: written by this module with tifffile,
following the layouts of FORMATS.md section 5 (Aperio SVS, CAMELYON tiled
BigTIFF, Hamamatsu NDPI with level 0 in strips, OME-TIFF with SubIFDs, ASAP
XML). No pixel comes from a real patient. The "tissue" is a smooth random
field coloured like haematoxylin and eosin so that screenshots look plausible.

The same functions build the large benchmark pyramids: with ``reuse_tiles``
every tile position holds one pre-encoded JPEG tile, so a 100k x 100k slide is
written in seconds without encoding 30 GB of pixels.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

__all__ = [
    "BUILDERS",
    "build_wsi",
    "synthetic_tissue",
    "tumour_polygons",
    "write_asap_xml",
    "write_camelyon_like",
    "write_mask_pyramid",
    "write_ndpi_like",
    "write_ome_like",
    "write_svs_like",
]

#: Microns per pixel of the synthetic slides (a 40x scan).
SYNTHETIC_MPP = 0.25

#: Standard Aperio description; tifffile and OpenSlide recognise SVS by its start.
_SVS_DESCRIPTION = (
    "Aperio Image Library v12.0.15 \r\n{width}x{height} [0,0 {width}x{height}] ({tile}x{tile}) "
    "JPEG/RGB Q=80|AppMag = 40|StripeWidth = 2048|ScanScope ID = SYNTHETIC|"
    "Filename = synthetic|MPP = {mpp:.4f}|Left = 25.0|Top = 18.0|"
    "User = napari-nsclc test fixture"
)


def synthetic_tissue(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """An H&E-like RGB image, uint8, shape ``(H, W, 3)``; synthetic and deterministic.

    A coarse random field decides tissue versus glass; inside tissue, a finer
    field mixes eosin pink with haematoxylin purple.
    """
    rng = np.random.default_rng(seed)
    height, width = shape
    rows = np.linspace(0, 1, height // 8)[:, None]
    cols = np.linspace(0, 1, width // 8)[None, :]

    def smooth_field(n_waves: int, frequency: float) -> np.ndarray:
        # a sum of random plane waves, cos(a + b) split into outer products: smooth, cheap, reproducible
        field = np.zeros((rows.size, cols.size))
        for _ in range(n_waves):
            fy, fx = rng.normal(0, frequency, 2)
            a = 2 * np.pi * fy * rows[:, 0] + rng.uniform(0, 2 * np.pi)
            b = 2 * np.pi * fx * cols[0]
            field += np.outer(np.cos(a), np.cos(b)) - np.outer(np.sin(a), np.sin(b))
        return (field - field.min()) / (np.ptp(field) or 1)

    coarse = smooth_field(6, 1.5)
    fine = smooth_field(12, 12.0)
    tissue = coarse > 0.45
    glass = np.array([242, 240, 245], float)
    eosin = np.array([232, 160, 200], float)
    haematoxylin = np.array([110, 70, 160], float)
    mix = np.clip((fine - 0.3) * 2.0, 0, 1)[..., None]
    small = np.where(tissue[..., None], eosin * (1 - mix) + haematoxylin * mix, glass).astype(np.uint8)
    blocks_y, blocks_x = small.shape[:2]
    # nearest-neighbour 8x upsampling, written once into the output
    upsampled = np.broadcast_to(small[:, None, :, None, :], (blocks_y, 8, blocks_x, 8, 3))
    if (blocks_y * 8, blocks_x * 8) == (height, width):
        return np.ascontiguousarray(upsampled).reshape(height, width, 3)
    out = np.empty((height, width, 3), np.uint8)
    out[...] = glass.astype(np.uint8)
    out[: blocks_y * 8, : blocks_x * 8] = upsampled.reshape(blocks_y * 8, blocks_x * 8, 3)
    return out


def _levels(image: np.ndarray, n_levels: int) -> list[np.ndarray]:
    """Level 0 and its 2x decimations (nearest; tiny test data needs no filter)."""
    return [image[:: 2**k, :: 2**k] for k in range(n_levels)]


def _resolution_cm(mpp: float) -> tuple[float, float]:
    """TIFF XResolution/YResolution in pixels per centimetre for ``mpp`` um/px."""
    return (1e4 / mpp, 1e4 / mpp)


def write_svs_like(
    path: Path, image: np.ndarray, *, n_levels: int = 3, tile: int = 256, mpp: float = SYNTHETIC_MPP
) -> Path:
    """Write an Aperio-SVS-like file: baseline, thumbnail, reduced levels, label, macro.

    The page order and the ImageDescription follow Aperio's: page 0 tiled
    baseline with ``MPP = `` in its description, page 1 a stripped thumbnail,
    then tiled levels, then the label (LZW) and macro (JPEG) pages marked as
    reduced-resolution images.
    """
    import tifffile

    height, width = image.shape[:2]
    levels = _levels(image, n_levels)
    description = _SVS_DESCRIPTION.format(width=width, height=height, tile=tile, mpp=mpp)
    with tifffile.TiffWriter(path, bigtiff=False) as tif:
        common = dict(photometric="rgb", compression="jpeg", compressionargs={"level": 80}, metadata=None)
        tif.write(levels[0], tile=(tile, tile), description=description, **common)
        thumbnail = image[:: max(1, width // 256), :: max(1, width // 256)]
        tif.write(thumbnail, description=f"Aperio Image Library v12.0.15 \r\n{width}x{height} -> "
                  f"{thumbnail.shape[1]}x{thumbnail.shape[0]} - |MPP = {mpp:.4f}", **common)
        for k, level in enumerate(levels[1:], start=1):
            tif.write(level, tile=(tile, tile), description=description.replace(
                f"{width}x{height} [", f"{level.shape[1]}x{level.shape[0]} [") + f"|Level = {k}", **common)
        label = np.full((128, 96, 3), 255, np.uint8)
        label[40:90, 20:76] = 0
        tif.write(label, photometric="rgb", compression="lzw", subfiletype=1, metadata=None,
                  description="Aperio Image Library v12.0.15 \r\nlabel 96x128")
        macro = image[:: max(1, height // 128), :: max(1, width // 384)][:128, :384]
        tif.write(macro, photometric="rgb", compression="jpeg", subfiletype=9, metadata=None,
                  description="Aperio Image Library v12.0.15 \r\nmacro 384x128")
    return path


def _encoded_tile(tile_pixels: np.ndarray) -> bytes:
    import imagecodecs

    return imagecodecs.jpeg8_encode(tile_pixels, level=80, colorspace="RGB", outcolorspace="YCbCr")


def _repeat_tile(encoded: bytes, count: int) -> Iterator[bytes]:
    for _ in range(count):
        yield encoded


def write_camelyon_like(
    path: Path,
    image: np.ndarray | None = None,
    *,
    shape: tuple[int, int] | None = None,
    n_levels: int = 3,
    tile: int = 512,
    mpp: float = SYNTHETIC_MPP,
    reuse_tiles: bool = False,
) -> Path:
    """Write a CAMELYON-like generic tiled pyramidal BigTIFF (one IFD per level).

    Pixel size is in the TIFF resolution tags (pixels per centimetre), as
    ASAP writes it. With ``reuse_tiles=True`` (benchmarks), ``shape`` gives
    the level-0 size and every tile of every level is the same pre-encoded
    JPEG cut from ``synthetic_tissue``, so huge slides are written quickly.
    """
    import tifffile

    resolution = _resolution_cm(mpp)
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        if not reuse_tiles:
            for k, level in enumerate(_levels(image, n_levels)):
                tif.write(level, tile=(tile, tile), photometric="rgb", compression="jpeg",
                          compressionargs={"level": 80}, resolution=(resolution[0] / 2**k, resolution[1] / 2**k),
                          resolutionunit="CENTIMETER", subfiletype=1 if k else 0, metadata=None)
            return path
        height, width = shape
        encoded = _encoded_tile(synthetic_tissue((tile * 4, tile * 4), seed=3)[tile : 2 * tile, tile : 2 * tile])
        for k in range(n_levels):
            level_shape = (-(-height // 2**k), -(-width // 2**k), 3)
            count = (-(-level_shape[0] // tile)) * (-(-level_shape[1] // tile))
            tif.write(_repeat_tile(encoded, count), shape=level_shape, dtype=np.uint8, tile=(tile, tile),
                      photometric="rgb", compression="jpeg", resolution=(resolution[0] / 2**k, resolution[1] / 2**k),
                      resolutionunit="CENTIMETER", subfiletype=1 if k else 0, metadata=None)
    return path


def write_ndpi_like(path: Path, image: np.ndarray, *, n_levels: int = 3, mpp: float = SYNTHETIC_MPP) -> Path:
    """Write an NDPI-like pyramid: every level in strips (level 0 untiled), plus a macro page.

    Real NDPI files hold JPEG strips and Hamamatsu private tags that
    tifffile cannot write; this fixture keeps the trap that matters to a
    reader -- level 0 is not tiled -- and the resolution tags in centimetres.
    """
    import tifffile

    resolution = _resolution_cm(mpp)
    with tifffile.TiffWriter(path, bigtiff=False) as tif:
        for k, level in enumerate(_levels(image, n_levels)):
            tif.write(level, rowsperstrip=64, photometric="rgb", compression="jpeg", compressionargs={"level": 80},
                      resolution=(resolution[0] / 2**k, resolution[1] / 2**k), resolutionunit="CENTIMETER",
                      subfiletype=1 if k else 0, metadata=None)
        macro = image[::16, ::8][:96, :256]
        tif.write(macro, photometric="rgb", compression="jpeg", subfiletype=1, metadata=None,
                  description="macro")
    return path


def write_ome_like(
    path: Path, image: np.ndarray, *, n_levels: int = 3, tile: int = 256, mpp: float = SYNTHETIC_MPP
) -> Path:
    """Write an OME-TIFF whose reduced levels are SubIFDs of level 0, with PhysicalSizeX/Y in um."""
    import tifffile

    levels = _levels(image, n_levels)
    metadata = {"axes": "YXS", "PhysicalSizeX": mpp, "PhysicalSizeXUnit": "µm",
                "PhysicalSizeY": mpp, "PhysicalSizeYUnit": "µm", "Name": "synthetic slide"}
    with tifffile.TiffWriter(path, bigtiff=False, ome=True) as tif:
        common = dict(tile=(tile, tile), photometric="rgb", compression="jpeg", compressionargs={"level": 80})
        tif.write(levels[0], subifds=n_levels - 1, metadata=metadata, **common)
        for level in levels[1:]:
            tif.write(level, subfiletype=1, metadata=None, **common)
    return path


def write_mask_pyramid(
    path: Path, mask: np.ndarray, *, n_levels: int = 3, tile: int = 256, mpp: float = SYNTHETIC_MPP
) -> Path:
    """Write a CAMELYON-like multiresolution label mask: uint8, tiled, LZW, one IFD per level."""
    import tifffile

    resolution = _resolution_cm(mpp)
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        for k, level in enumerate(_levels(mask, n_levels)):
            tif.write(level, tile=(tile, tile), photometric="minisblack", compression="lzw",
                      resolution=(resolution[0] / 2**k, resolution[1] / 2**k), resolutionunit="CENTIMETER",
                      subfiletype=1 if k else 0, metadata=None)
    return path


def tumour_polygons(size: int) -> list[np.ndarray]:
    """Two tumour outlines and one exclusion outline on a ``size`` x ``size`` slide, as (x, y) rings."""
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    outlines = []
    for cx, cy, radius, wobble in ((0.35, 0.4, 0.12, 0.25), (0.7, 0.65, 0.08, 0.35), (0.36, 0.41, 0.04, 0.1)):
        r = radius * size * (1 + wobble * np.sin(3 * angles) * 0.5)
        outlines.append(np.stack([cx * size + r * np.cos(angles), cy * size + r * np.sin(angles)], -1).round(2))
    return outlines


def write_asap_xml(path: Path, size: int) -> Path:
    """Write a CAMELYON16-style ASAP XML for a ``size``-pixel slide: groups ``_0`` and ``_2``, a Dot.

    Coordinates are level-0 pixels written in shuffled document order with
    correct ``Order`` attributes, reproducing the ordering trap.
    """
    rng = np.random.default_rng(1)
    rings = tumour_polygons(size)
    lines = ['<?xml version="1.0"?>', "<ASAP_Annotations>", "\t<Annotations>"]
    for index, (ring, group, colour) in enumerate(
        zip(rings, ("_0", "_0", "_2"), ("#F4FA58", "#F4FA58", "#64FE2E"), strict=True)
    ):
        lines.append(f'\t\t<Annotation Name="Annotation {index}" Type="Polygon" PartOfGroup="{group}" '
                     f'Color="{colour}">')
        lines.append("\t\t\t<Coordinates>")
        for order in rng.permutation(len(ring)):
            x, y = ring[order]
            lines.append(f'\t\t\t\t<Coordinate Order="{order}" X="{x:g}" Y="{y:g}" />')
        lines += ["\t\t\t</Coordinates>", "\t\t</Annotation>"]
    lines += [
        '\t\t<Annotation Name="Mitosis" Type="Dot" PartOfGroup="_1" Color="#FF00FF">',
        "\t\t\t<Coordinates>",
        f'\t\t\t\t<Coordinate Order="0" X="{0.7 * size:g}" Y="{0.3 * size:g}" />',
        "\t\t\t</Coordinates>",
        "\t\t</Annotation>",
        "\t</Annotations>",
        "\t<AnnotationGroups>",
    ]
    for name, colour in (("_0", "#FF0000"), ("_1", "#FF00FF"), ("_2", "#00FF00")):
        lines += [f'\t\t<Group Name="{name}" PartOfGroup="None" Color="{colour}">', "\t\t\t<Attributes />",
                  "\t\t</Group>"]
    lines += ["\t</AnnotationGroups>", "</ASAP_Annotations>", ""]
    path.write_text("\n".join(lines))
    return path


def build_wsi(folder: Path) -> Path:
    """A synthetic 4096 x 4096 SVS-like slide (3 levels, 0.25 um/px) and its same-named ASAP XML.

    Returns the ``.svs`` path; opening it auto-loads ``slide.xml``.
    """
    size = 4096
    folder = Path(folder)
    slide = write_svs_like(folder / "slide.svs", synthetic_tissue((size, size), seed=0))
    write_asap_xml(folder / "slide.xml", size)
    return slide


BUILDERS = {"wsi": build_wsi}
