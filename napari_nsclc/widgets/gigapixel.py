"""The label pyramid dock: correct a gigapixel slide's mask a region at a time, at full resolution.

It binds a :class:`~napari_nsclc.label_pyramid.editing.RegionEditor` to the
viewer: the pyramid shows as a multiscale Labels layer over its slide (napari
shows those read-only); *Edit what I see* or *Edit a rectangle* opens a region
as an ordinary Labels layer on top, where every paint tool and the mask tools
work; *Commit* writes it into the pyramid (every level, crash-safe, with who
and what changed) and redraws; *Discard* drops it. The open region is
autosaved every ``NSCLC_AUTOSAVE_SECONDS`` and reopened, as painted, the next
time the pyramid is shown after a crash. For a slide without a
pyramid, the dock offers to create one: empty, or from the CAMELYON mask TIFF,
ASAP XML or QuPath GeoJSON beside the slide. All decisions are the model's;
the dock only connects buttons, layers and messages.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from napari.layers import Image, Labels, Shapes
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QComboBox, QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ..label_pyramid import MAX_REGION_SIDE, LabelPyramid
from ..label_pyramid.editing import RegionEditor, creation_sources, pyramid_path_for, region_of_box, visible_region
from ..layers import plugin_metadata, pyramid_to_layer, region_to_layer
from ..model import NsclcFormatError
from ..workflow import autosave_interval
from . import _questions

__all__ = ["LabelPyramidWidget"]

#: How each way of creating a pyramid is offered.
SOURCE_LABELS = {"empty": "nothing: start empty", "mask": "the CAMELYON mask TIFF", "xml": "the ASAP XML",
                 "geojson": "the QuPath GeoJSON"}  # fmt: skip
RECTANGLE_LAYER = "draw the region to edit"


class LabelPyramidWidget(QWidget):
    """Region editing of a label pyramid in napari (a dock).

    Parameters
    ----------
    napari_viewer : napari.Viewer
    pyramid : LabelPyramid, optional
        Shown at once; otherwise the dock follows the slide layers added to the viewer.
    max_side : int
        The largest region opened, in pixels a side.
    """

    def __init__(self, napari_viewer, pyramid: LabelPyramid | None = None, *, max_side: int = MAX_REGION_SIDE,
                 parent=None):  # fmt: skip
        super().__init__(parent)
        self.viewer = napari_viewer
        self.max_side = max_side
        self.editor: RegionEditor | None = None
        self.pyramid_layer: Labels | None = None
        self.region_layer: Labels | None = None
        self.slide: Path | None = None
        self.origin = (0.0, 0.0)
        self._build()
        self.viewer.layers.events.inserted.connect(self._on_inserted)
        if pyramid is not None:
            self.show_pyramid(pyramid)
        else:
            for layer in list(self.viewer.layers):
                self._offer_for(layer)

    # ------------------------------------------------------------------ the dock

    def _build(self) -> None:
        self.title = QLabel("No label pyramid: open a slide")
        self.title.setWordWrap(True)
        self.edit_view = QPushButton("Edit what I see")
        self.edit_view.setToolTip(f"Open the region shown at full resolution (at most {self.max_side}² px)")
        self.edit_box = QPushButton("Edit a rectangle…")
        self.commit_button = QPushButton("Commit region")
        self.discard_button = QPushButton("Discard region")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.create_box = QGroupBox("Create this slide's label pyramid from")
        self.source = QComboBox()
        self.create_button = QPushButton("Create")
        row = QHBoxLayout(self.create_box)
        row.addWidget(self.source, 1)
        row.addWidget(self.create_button)
        editing = QHBoxLayout()
        editing.addWidget(self.edit_view)
        editing.addWidget(self.edit_box)
        deciding = QHBoxLayout()
        deciding.addWidget(self.commit_button)
        deciding.addWidget(self.discard_button)
        layout = QVBoxLayout(self)
        for part in (self.title, self.create_box):
            layout.addWidget(part)
        layout.addLayout(editing)
        layout.addLayout(deciding)
        layout.addWidget(self.status)
        layout.addStretch(1)
        self.edit_view.clicked.connect(self.edit_what_i_see)
        self.edit_box.clicked.connect(self.edit_a_rectangle)
        self.commit_button.clicked.connect(self.commit)
        self.discard_button.clicked.connect(self.discard)
        self.create_button.clicked.connect(self.create)
        self.create_box.hide()
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setInterval(int(autosave_interval() * 1000))
        self.autosave_timer.timeout.connect(self.autosave_now)
        self.autosave_timer.start()
        self._enable()

    def _enable(self) -> None:
        has, editing = self.editor is not None, self.editor is not None and self.editor.current is not None
        self.edit_view.setEnabled(has and not editing)
        self.edit_box.setEnabled(has and not editing)
        self.commit_button.setEnabled(editing)
        self.discard_button.setEnabled(editing)

    # ------------------------------------------------------------------ a slide and its pyramid

    def _on_inserted(self, event) -> None:
        self._offer_for(event.value)

    def _offer_for(self, layer) -> None:
        """A slide layer arrived: show its pyramid if it has one, else offer to create one."""
        image = plugin_metadata(layer).get("image")
        if self.editor is not None or not isinstance(layer, Image) or image is None or not image.path:
            return
        slide = Path(image.path)
        if not layer.multiscale or not slide.is_file():
            return
        self.slide, self.origin = slide, tuple(layer.translate[-2:])
        existing = pyramid_path_for(slide)
        if existing.exists():
            self._open(existing)
            return
        self.source.clear()
        for kind, path in creation_sources(slide).items():
            self.source.addItem(SOURCE_LABELS[kind] + (f" ({path.name})" if path else ""), (kind, path))
        self.title.setText(f"{slide.name} has no label pyramid yet ({existing.name}).")
        self.create_box.show()

    def _open(self, path: Path) -> None:
        try:
            pyramid = LabelPyramid.open(path)
            pyramid.check_matches(_slide_shape(self.viewer, self.slide), self.slide.name if self.slide else "the slide")
        except NsclcFormatError as error:
            show_error(str(error))
            return
        for line in pyramid.recovered:
            show_info(f"{pyramid.path.name}: {line}")
        self.show_pyramid(pyramid, self.origin)

    def create(self) -> None:
        """Create the slide's pyramid from the chosen source, then show it."""
        from ..label_pyramid import sources

        kind, path = self.source.currentData()
        if kind != "empty" and not _questions.annotator_named(lambda *args: _questions.ask(self, *args)):
            return  # what is drawn from a file is stamped with a name in the edit log
        image = _slide_image(self.viewer, self.slide)
        try:
            pyramid = sources.create_for_slide(self.slide, kind, path, pyramid_path_for(self.slide),
                                               shape=image.shape[:2], pixel_size=image.pixel_size, unit=image.unit)
        except NsclcFormatError as error:
            show_error(str(error))
            return
        self.create_box.hide()
        self.show_pyramid(pyramid, self.origin)

    def show_pyramid(self, pyramid: LabelPyramid, origin: tuple[float, float] = (0.0, 0.0)) -> None:
        """Show ``pyramid`` as a multiscale Labels layer and make its regions editable."""
        self.origin = tuple(origin)
        self.editor = RegionEditor(pyramid, max_side=self.max_side)
        data, kwargs, _ = pyramid_to_layer(pyramid, self.origin)
        self.pyramid_layer = self.viewer.add_labels(data, **kwargs)
        rows, columns = pyramid.shape
        self.title.setText(f"{pyramid.path.name}: {columns:,} x {rows:,} px, {len(pyramid.levels)} levels. Zoom in "
                           f"and edit a region of up to {self.max_side:,} px a side at full resolution.")  # fmt: skip
        self._enable()
        self._restore_unfinished()

    # ------------------------------------------------------------------ editing

    def edit_what_i_see(self) -> None:
        """Open the region the canvas shows."""
        camera, pyramid = self.viewer.scene.camera, self.editor.pyramid
        height, width = (size / camera.zoom for size in self.viewer.canvas.size)
        center = tuple(np.asarray(camera.center[-2:]) - np.asarray(self.origin))
        self._open_region(visible_region(center, (height, width), pyramid.pixel_size, pyramid.shape))

    def edit_a_rectangle(self) -> None:
        """Wait for a rectangle drawn on the canvas, then open the region under it."""
        layer = self.viewer.add_shapes(name=RECTANGLE_LAYER, edge_color="yellow", face_color="transparent",
                                       edge_width=2)  # fmt: skip
        layer.mode = "add_rectangle"
        layer.events.data.connect(self._on_rectangle)
        self.status.setText("Draw a rectangle around the area to correct.")

    def _on_rectangle(self, event=None) -> None:
        layer = next((item for item in self.viewer.layers if isinstance(item, Shapes) and item.name == RECTANGLE_LAYER),
                     None)  # fmt: skip
        if layer is None or not len(layer.data):
            return
        corners = np.asarray(layer.data[-1])[:, -2:] - np.asarray(self.origin)
        (top, left), (bottom, right) = corners.min(axis=0), corners.max(axis=0)
        layer.events.data.disconnect(self._on_rectangle)
        self.viewer.layers.remove(layer)
        pyramid = self.editor.pyramid
        self._open_region(region_of_box((top, left, bottom, right), pyramid.pixel_size, pyramid.shape))

    def _open_region(self, region: tuple[int, int, int, int]) -> None:
        try:
            edit = self.editor.open(*region)
        except NsclcFormatError as error:
            self.status.setText(str(error.problem))
            show_error(str(error))
            return
        self._show_region(edit)

    def _show_region(self, edit) -> None:
        data, kwargs, _ = region_to_layer(edit, self.editor.pyramid, self.origin)
        self.region_layer = self.viewer.add_labels(data, **kwargs)
        self.region_layer.mode = "paint"
        self.viewer.layers.selection.active = self.region_layer
        y0, x0, y1, x1 = edit.y0, edit.x0, edit.y1, edit.x1
        self.status.setText(f"Editing x {x0:,}..{x1:,}, y {y0:,}..{y1:,} ({x1 - x0:,} x {y1 - y0:,} px). Paint, then "
                            "Commit region or Discard region.")  # fmt: skip
        self._enable()

    def _restore_unfinished(self) -> None:
        """Open again the region painted before a crash (its autosave), as it was painted."""
        try:
            unfinished = self.editor.unfinished()
        except NsclcFormatError as error:
            show_error(str(error))
            return
        if unfinished is None:
            return
        self._show_region(self.editor.restore())
        self.status.setText(f"Restored the region you were painting (autosaved {unfinished['saved_at']}, "
                            f"{unfinished['pixels']:,} px changed). " + self.status.text())  # fmt: skip
        show_info(f"{self.editor.pyramid.path.name}: restored the region you were painting, autosaved "
                  f"{unfinished['saved_at']}; commit or discard it")  # fmt: skip

    def autosave_now(self) -> None:
        """Autosave the open region's painting (the timer calls it)."""
        if self.editor is None or self.editor.current is None or self.region_layer is None:
            return
        try:
            self.editor.autosave(np.asarray(self.region_layer.data))
        except (NsclcFormatError, ValueError) as error:
            self.status.setText(f"Autosave failed: {error}")

    def commit(self) -> None:
        """Write the painted region into the pyramid, at every level, and redraw it."""
        if not _questions.annotator_named(lambda *args: _questions.ask(self, *args)):
            return
        try:
            result = self.editor.commit(np.asarray(self.region_layer.data))
        except NsclcFormatError as error:
            show_error(str(error))
            self.status.setText(str(error.problem))
            return
        self._close_region()
        self.pyramid_layer.refresh()
        per_class = ", ".join(f"{name} +{c['added']:,}/-{c['removed']:,}" for name, c in result.changed.items()
                              if name != "background")  # fmt: skip
        self.status.setText(f"Committed {result.pixels:,} px changed ({per_class or 'background only'}) in "
                            f"{result.seconds * 1000:.0f} ms." if result.pixels else "Committed: nothing changed.")
        self._enable()

    def discard(self) -> None:
        """Drop the open region; the pyramid is unchanged."""
        self.editor.discard()
        self._close_region()
        self.status.setText("Discarded: the pyramid is unchanged.")
        self._enable()

    def _close_region(self) -> None:
        if self.region_layer is not None and self.region_layer in self.viewer.layers:
            self.viewer.layers.remove(self.region_layer)
        self.region_layer = None
        if self.pyramid_layer in self.viewer.layers:
            self.viewer.layers.selection.active = self.pyramid_layer  # back to the whole slide's labels


def _slide_image(viewer, slide: Path | None):
    """The :class:`~napari_nsclc.model.ImageRef` of the slide layer showing ``slide`` (shape, pixel size)."""
    for layer in viewer.layers:
        image = plugin_metadata(layer).get("image")
        if isinstance(layer, Image) and image is not None and slide is not None and image.path == str(slide):
            return image
    raise NsclcFormatError(slide or "slide", "is not shown in the viewer")


def _slide_shape(viewer, slide: Path | None) -> tuple[int, int]:
    """Level-0 rows and columns of the slide layer showing ``slide``."""
    return tuple(int(s) for s in _slide_image(viewer, slide).shape[:2])
