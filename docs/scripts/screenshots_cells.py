"""Regenerate the screenshots of docs/nucls.md, ignite-pdl1.md, midog.md, ocelot.md and coco.md.

Run: ``xvfb-run -a .venv/bin/python docs/scripts/screenshots_cells.py``. Each
shot is a real napari window with the synthetic fixture of
:mod:`napari_nsclc.testing.cells` open and the class-editor dock docked.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from _window import IMAGES, settle


def _open_cases(viewer, cases) -> None:
    from napari.layers import Layer

    from napari_nsclc.layers import case_to_layers

    for case in cases:
        for data, kwargs, layer_type in case_to_layers(case):
            viewer.add_layer(Layer.create(data, kwargs, layer_type))


def shoot(name: str, prepare) -> Path:
    import napari

    from napari_nsclc.widgets.class_editor import ClassEditorWidget

    viewer = napari.Viewer(show=True)
    viewer.window.resize(1500, 900)
    widget = ClassEditorWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Classes", area="right")
    with tempfile.TemporaryDirectory() as folder:
        prepare(viewer, widget, Path(folder))
        settle(viewer)
        target = IMAGES / f"cells_{name}.png"
        viewer.screenshot(str(target), canvas_only=False)
    viewer.close()
    return target


def _select(viewer, widget, layer_name: str) -> None:
    """Make ``layer_name`` the edited layer and fit the data to the window."""
    viewer.layers.selection.active = viewer.layers[layer_name]
    widget.attach(viewer.layers[layer_name])
    viewer.reset_view()


def nucls(viewer, widget, folder: Path) -> None:
    from napari_nsclc.testing import cells

    root = cells.build_nucls(folder)
    viewer.open(min((root / "csv").iterdir()), plugin="napari-nsclc")
    viewer.layers["nucleus classes"].visible = False
    viewer.layers["fov"].visible = False
    _select(viewer, widget, "nuclei")
    viewer.layers["nuclei"].selected_data = {2}
    widget.show_level("main")


def ignite(viewer, widget, folder: Path) -> None:
    from napari_nsclc.testing import cells

    path = cells.build_ignite_pdl1(folder).with_name("pdl1_annotations_readers.json")
    viewer.open(path, plugin="napari-nsclc")
    viewer.layers["reader P2"].visible = False
    _select(viewer, widget, "reader P1")


def midog(viewer, widget, folder: Path) -> None:
    from napari_nsclc.testing import cells

    viewer.open(cells.build_midog(folder), plugin="napari-nsclc")
    _select(viewer, widget, "mitotic figures")
    viewer.layers["mitotic figures"].selected_data = {0}


def ocelot(viewer, widget, folder: Path) -> None:
    from napari_nsclc import registry
    from napari_nsclc.testing import cells

    tissue, cell = registry.read(cells.build_ocelot(folder))
    _open_cases(viewer, [tissue, cell])
    viewer.layers["tissue"].opacity = 0.35
    _select(viewer, widget, "cells")
    viewer.scene.camera.zoom *= 0.7  # the whole tissue patch, with the cell patch inside it


def coco(viewer, widget, folder: Path) -> None:
    from napari_nsclc.testing import cells

    viewer.open(cells.build_coco(folder), plugin="napari-nsclc")
    _select(viewer, widget, "segmentations")


SHOTS = {"nucls": nucls, "ignite_pdl1": ignite, "midog": midog, "ocelot": ocelot, "coco": coco}


def main(names=None) -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    for name in names or SHOTS:
        print(shoot(name, SHOTS[name]))


if __name__ == "__main__":
    main(sys.argv[1:])
