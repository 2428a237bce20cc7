"""``napari-nsclc demo``: an NSCLC-NAT dataset on real stained tissue, then every other layout.

The demo opens on NSCLC-NAT, the project's headline dataset (FORMATS.md §1),
built here from real tissue rather than noise: the immunohistochemistry image
that scikit-image ships (``skimage.data.immunohistochemistry()``, colonic
glands stained for FHL2 with DAB and counterstained with haematoxylin; no known
copyright restrictions). Each case is a crop, flip or rotation of it, as
NSCLC-NAT itself holds flipped and mirrored copies of its cases; two of them
are re-rendered in haematoxylin and eosin colours by colour deconvolution, the
stain NSCLC-NAT's slides are in. The tumour-bed masks follow the tissue: they
are drawn from the DAB channel, where the tumour glands are stained, smoothed
into regions an annotator would outline. They are computed, not an expert's;
``SegmentationClass/`` (0/1) and ``Mask/`` (0/255) hold the same bed in the
two encodings.

The other layouts come from :mod:`napari_nsclc.testing` unchanged, so the
Datasets dock still offers every format.

Building the datasets is headless (numpy, scikit-image, Pillow); only
:func:`show` and :func:`run` use napari and Qt, imported when called.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "DEMO_CASES",
    "DEMO_FIRST_LAYOUT",
    "DemoCase",
    "build_demo_datasets",
    "build_demo_nat",
    "case_image",
    "case_mask",
    "he_rendering",
    "outline_masks",
    "run",
    "show",
    "source_tissue",
    "tumour_bed",
    "zoom_to_annotated_objects",
]

#: The layout the demo shows first: NSCLC-NAT, the dataset this plugin is for
#: (a tumour bed to correct on tissue), with every other layout one click away.
DEMO_FIRST_LAYOUT = "nsclc-nat"

#: The demo window for ``--screenshot`` (width, height in logical pixels): it fits
#: the 1600 x 1000 virtual screen that the docs' ``xvfb-run`` command sets up.
SCREENSHOT_SIZE = (1400, 900)


@dataclass(frozen=True)
class DemoCase:
    """How one demo case is cut from the source tissue.

    Attributes
    ----------
    stem : str
        The case's file stem in ``Images/``, ``SegmentationClass/`` and ``Mask/``.
    crop : tuple of int
        ``(top, left, height, width)`` in pixels of the 512 x 512 source image.
    rotations : int
        Quarter turns counter-clockwise (``np.rot90``), after cropping.
    mirrored : bool
        Flipped left-right, after the rotation.
    stain : {"ihc", "he"}
        ``"ihc"``: the source pixels as they are; ``"he"``: re-rendered in H&E colours.
    suffix : {".png", ".jpg"}
        NSCLC-NAT images come as PNG and JPEG; a JPEG image is lossy, its masks are not.
    """

    stem: str
    crop: tuple[int, int, int, int]
    rotations: int = 0
    mirrored: bool = False
    stain: str = "ihc"
    suffix: str = ".png"


#: The demo's cases: the whole image, its mirror image (NSCLC-NAT holds such
#: augmentations), and two rotated crops, one of them a JPEG.
DEMO_CASES = (
    DemoCase("1", (0, 0, 512, 512), stain="he"),
    DemoCase("2", (0, 0, 512, 512), mirrored=True),
    DemoCase("3", (64, 0, 448, 384), rotations=1, stain="he"),
    DemoCase("4", (0, 96, 416, 416), rotations=2, mirrored=True, suffix=".jpg"),
)


# --------------------------------------------------------------------------- tissue and masks


def source_tissue() -> np.ndarray:
    """The real stained tissue every demo case is cut from, uint8 RGB ``(512, 512, 3)``.

    scikit-image ships it inside its package, so nothing is downloaded.
    """
    from skimage import data

    return data.immunohistochemistry()


#: Optical density per unit stain, natural log, in R, G, B: haematoxylin (Ruifrok and
#: Johnston's vector, blue-purple) and eosin (a pink that absorbs green and some blue).
HAEMATOXYLIN_OD = np.array([0.65, 0.70, 0.29]) / np.linalg.norm([0.65, 0.70, 0.29])
EOSIN_OD = np.array([0.10, 0.80, 0.45]) / np.linalg.norm([0.10, 0.80, 0.45])


def he_rendering(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` re-rendered in haematoxylin and eosin colours, uint8 ``(H, W, 3)``.

    Colour deconvolution (:func:`skimage.color.rgb2hed`) splits the IHC image
    into haematoxylin and DAB densities. Haematoxylin stays haematoxylin
    (nuclei, blue-purple); the DAB-stained cytoplasm, plus a little density
    over all tissue, becomes eosin (pink), since eosin stains cytoplasm and
    stroma. The two are composed again by Beer-Lambert's law,
    ``255 * exp(-(h * HAEMATOXYLIN_OD + e * EOSIN_OD))``. The weights were
    chosen by eye to look like an H&E slide; the morphology is the source's.

    Parameters
    ----------
    rgb : numpy.ndarray
        uint8 ``(H, W, 3)``, an IHC (haematoxylin + DAB) image.
    """
    from skimage import color, filters

    hed = color.rgb2hed(rgb)  # densities in units of ln(1e-6); x 13.8 would be natural-log optical density
    haematoxylin, dab = 12 * hed[..., 0], 0.8 * hed[..., 2]
    tissue = filters.gaussian(_optical_density(rgb), sigma=2) > 0.25  # not the white lumen and gaps
    eosin = dab + 0.3 * tissue
    density = haematoxylin[..., None] * HAEMATOXYLIN_OD + eosin[..., None] * EOSIN_OD
    return np.round(255 * np.exp(-density)).astype(np.uint8)


def _optical_density(rgb: np.ndarray) -> np.ndarray:
    """Summed optical density of the three channels, float ``(H, W)``: 0 white, larger where stained."""
    return -np.log(np.clip(rgb.astype(float) / 255, 1 / 255, 1)).sum(axis=-1)


def tumour_bed(rgb: np.ndarray) -> np.ndarray:
    """Tumour-bed regions of an IHC image, bool ``(H, W)``.

    The tumour glands are the DAB-stained (brown) tissue: the DAB channel of
    the colour deconvolution, smoothed (Gaussian, 6 px) and split at Otsu's
    threshold, then opened, closed, cleared of specks and filled, so the mask
    has the smooth outline an annotator draws around a region rather than
    around each cell.

    Parameters
    ----------
    rgb : numpy.ndarray
        uint8 ``(H, W, 3)``, an IHC (haematoxylin + DAB) image.
    """
    from scipy import ndimage
    from skimage import color, filters
    from skimage.morphology import disk

    dab = filters.gaussian(color.rgb2hed(rgb)[..., 2], sigma=6)
    bed = dab > filters.threshold_otsu(dab)
    bed = ndimage.binary_opening(bed, structure=disk(5))
    # closing needs room at the border, or regions touching the edge are pulled off it
    pad = 9
    bed = np.pad(bed, pad, mode="edge")
    bed = ndimage.binary_closing(bed, structure=disk(pad))[pad:-pad, pad:-pad]
    labels, count = ndimage.label(bed)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    bed = (sizes >= 2000)[labels] & (labels > 0)  # specks of DAB are not a tumour bed
    return ndimage.binary_fill_holes(bed)


def _cut(array: np.ndarray, case: DemoCase) -> np.ndarray:
    top, left, height, width = case.crop
    cut = np.rot90(array[top : top + height, left : left + width], case.rotations)
    return np.ascontiguousarray(cut[:, ::-1] if case.mirrored else cut)


def case_image(case: DemoCase, tissue: np.ndarray | None = None) -> np.ndarray:
    """The image of ``case`` as written (before any JPEG compression), uint8 ``(H, W, 3)``.

    Parameters
    ----------
    case : DemoCase
    tissue : numpy.ndarray, optional
        The source, uint8 ``(512, 512, 3)``; default :func:`source_tissue`.
    """
    rgb = _cut(source_tissue() if tissue is None else tissue, case)
    return he_rendering(rgb) if case.stain == "he" else rgb


def case_mask(case: DemoCase, tissue: np.ndarray | None = None) -> np.ndarray:
    """The tumour bed of ``case``, bool ``(H, W)``, the size of its image.

    The bed is found on the whole source image and then cut like the image,
    so every flip or rotation of a case has the same tumour bed.
    """
    return _cut(tumour_bed(source_tissue() if tissue is None else tissue), case)


def build_demo_nat(folder: str | Path, cases: tuple[DemoCase, ...] = DEMO_CASES) -> Path:
    """Write an NSCLC-NAT root on real tissue; returns it.

    ``Images/<stem>.png`` (or ``.jpg``) RGB; ``SegmentationClass/<stem>.png``
    0 background / 1 tumour bed; ``Mask/<stem>.png`` 0 / 255, one of the
    encodings of NSCLC-NAT's undocumented expert masks (FORMATS.md §1).
    """
    from PIL import Image

    root = Path(folder)
    for sub in ("Images", "SegmentationClass", "Mask"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    tissue = source_tissue()
    bed = tumour_bed(tissue)
    for case in cases:
        image = case_image(case, tissue)
        if case.suffix == ".jpg":
            Image.fromarray(image).save(root / "Images" / f"{case.stem}.jpg", format="JPEG", quality=92)
        else:
            Image.fromarray(image).save(root / "Images" / f"{case.stem}.png", format="PNG")
        mask = _cut(bed, case).astype(np.uint8)
        Image.fromarray(mask).save(root / "SegmentationClass" / f"{case.stem}.png")
        Image.fromarray(mask * 255).save(root / "Mask" / f"{case.stem}.png")
    return root


def build_demo_datasets(root: str | Path) -> dict[str, Path]:
    """Every demo dataset under ``root``: ``{layout: path to open}``, NSCLC-NAT (real tissue) first.

    The other layouts are the test fixtures of :mod:`napari_nsclc.testing`,
    each in ``root / layout``.
    """
    from .testing import all_builders, build

    datasets = {DEMO_FIRST_LAYOUT: build_demo_nat(Path(root) / DEMO_FIRST_LAYOUT)}
    for name in all_builders():
        if name != DEMO_FIRST_LAYOUT:
            datasets[name] = build(name, root)
    return datasets


# --------------------------------------------------------------------------- the window


def show(viewer, datasets: dict[str, Path], first: str = DEMO_FIRST_LAYOUT, size: tuple[int, int] | None = None):
    """Dock the demo's panels in ``viewer``, show dataset ``first`` and fit the canvas to it.

    Parameters
    ----------
    viewer : napari.Viewer
    datasets : dict of str to Path
        ``{layout: path}``, as :func:`build_demo_datasets` returns.
    first : str
        The layout to show; the first of ``datasets`` when it is not there.
    size : tuple of int, optional
        ``(width, height)`` of the window in logical pixels, set before the
        canvas is fitted.

    Returns
    -------
    DatasetBrowser
        The "Datasets" dock.
    """
    from .widgets.case_info import CaseInfoWidget
    from .widgets.case_navigator import CaseNavigator
    from .widgets.dataset_browser import DatasetBrowser

    if size is not None:
        viewer.window.resize(*size)
    window = viewer.window
    info = next((w for w in window.dock_widgets.values() if isinstance(w, CaseInfoWidget)), None)
    if info is None:
        info = CaseInfoWidget(viewer)
        window.add_dock_widget(info, name="Case information", area="right")
    # a tab behind "Case information", as `napari-nsclc open` docks it: its list and buttons are
    # one click away, while the legends stay in view; docked before a dataset opens, so that
    # it adopts the dataset's cases as their layers arrive
    if not any(isinstance(w, CaseNavigator) for w in window.dock_widgets.values()):
        window.add_dock_widget(CaseNavigator(viewer), name="Cases", area="right", tabify=True)
    browser = DatasetBrowser(viewer)
    window.add_dock_widget(browser, name="Datasets", area="right")
    browser.set_datasets(datasets)
    browser.open_dataset(first if first in datasets else next(iter(datasets)))
    outline_masks(viewer)
    fit_canvas(viewer)
    # napari raises a new tab once it is shown, in the events just processed: raise ours after it
    info.parent().raise_()  # the dock around a docked widget (napari's documented way to raise a tab)
    return browser


def outline_masks(viewer, width: int = 3) -> None:
    """Draw the case's masks as outlines ``width`` pixels wide, and select the first.

    A filled tumour bed hides the tissue it covers; an outline shows where the
    bed ends and what is inside it, which is what a reader checks first. The
    Labels layer controls set it back (``contour`` 0). Layers that the Cases
    dock refills for the next case keep the setting.
    """
    from napari.layers import Labels

    masks = [layer for layer in viewer.layers if isinstance(layer, Labels)]
    for layer in masks:
        layer.contour = width
        layer.opacity = 1.0
    if masks:
        viewer.layers.selection.active = masks[0]


def fit_canvas(viewer, process_events: bool = True) -> None:
    """Fit the view to the data once the window has its final size and docks.

    The canvas learns its size from Qt's resize events: they are processed
    first, or the view is fitted to the canvas size before the docks took
    their share and the data sits off-centre with an empty band beside it.
    """
    if process_events:
        _process_events()
    viewer.reset_view()
    zoom_to_annotated_objects(viewer)


def zoom_to_annotated_objects(viewer) -> None:
    """Fit the view to the Points layers, with a margin, so that cells are visible at first sight.

    Does nothing when no Points layer has a point (the whole data stays in view).
    """
    from napari.layers import Points

    extents = [layer.extent.world for layer in viewer.layers if isinstance(layer, Points) and len(layer.data)]
    if not extents:
        return
    low = np.min([e[0] for e in extents], axis=0)
    high = np.max([e[1] for e in extents], axis=0)
    viewer.scene.camera.center = tuple((low + high) / 2)
    span = float(np.max(high - low)) * 3  # with the tissue around the cells in view
    if span > 0:
        viewer.scene.camera.zoom = min(viewer.canvas.size) / span


def describe_layers(viewer) -> str:
    """``"image '1 image', labels 'tumour bed (SegmentationClass)', ..."``: what the viewer shows."""
    from napari.layers import Image, Labels, Points, Shapes

    kinds = ((Image, "image"), (Labels, "labels"), (Points, "points"), (Shapes, "shapes"))
    names = (next((name for kind, name in kinds if isinstance(layer, kind)), "layer") for layer in viewer.layers)
    return ", ".join(f"{kind} '{layer.name}'" for kind, layer in zip(names, viewer.layers, strict=True))


def run(folder: Path | None, screenshot: Path | None, make_viewer: Callable, run_event_loop: Callable) -> int:
    """The ``demo`` command: write the datasets, open the window, and run it or save a screenshot.

    Parameters
    ----------
    folder : Path, optional
        Where the datasets go; default a temporary folder removed when the process exits.
    screenshot : Path, optional
        Save a PNG of the whole window here and close it instead of running.
    make_viewer : callable
        ``make_viewer() -> napari.Viewer``, the command line's viewer with its standard docks.
    run_event_loop : callable
        ``run_event_loop() -> int``, napari's event loop.
    """
    from ._tempfolders import process_temp_folder

    root = folder or process_temp_folder("napari-nsclc-demo-")  # removed when the process exits
    datasets = build_demo_datasets(root)
    print(f"demo datasets written to {root}:")
    for name, path in datasets.items():
        print(f"  {name}: {path}")
    viewer = make_viewer()
    browser = show(viewer, datasets, size=SCREENSHOT_SIZE if screenshot else None)
    print(f"showing {browser.list.currentItem().text()}: {describe_layers(viewer)}")
    if screenshot:
        fit_canvas(viewer)  # once more, now that the window is drawn at its final size
        viewer.screenshot(str(screenshot), canvas_only=False)
        print(f"screenshot saved to {screenshot}")
        viewer.close()
        return 0
    from qtpy.QtCore import QTimer

    # on a desktop the window takes its final size once shown, in the event loop: fit again then
    QTimer.singleShot(0, lambda: fit_canvas(viewer, process_events=False))
    return run_event_loop()


def _process_events() -> None:
    from qtpy.QtWidgets import QApplication

    for _ in range(5):
        QApplication.processEvents()
