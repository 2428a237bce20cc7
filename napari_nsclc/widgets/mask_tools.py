"""The mask-tools dock: fill holes, remove islands, open/close and replace inside a polygon.

Each button edits the class selected in the active Labels layer (its
``selected_label``) with a function of :mod:`napari_nsclc.mask_tools`, and
writes back only the changed pixels through ``Labels.data_setitem``. One call
records one step in the layer's own undo history, so Ctrl+Z in napari (or
``layer.undo()``) takes the whole edit back, like a brush stroke. The dock keeps
no copy of the mask and no history of its own.

A layer with more than two dimensions is edited on the plane shown.
"""

from __future__ import annotations

import numpy as np
from napari.layers import Labels, Shapes
from napari.utils.notifications import show_info
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from .. import mask_tools
from ..layers import plugin_metadata

__all__ = ["MaskToolsWidget"]

#: Shape types whose vertices outline the area they cover (napari stores an ellipse as its bounding box).
AREA_SHAPES = ("polygon", "rectangle")
#: Without a schema the class lists show the values found in the layer, if it is no larger than this.
MAX_PIXELS_SCANNED = 50_000_000


def _schema(layer):
    return plugin_metadata(layer).get("schema")


def _background(layer) -> int:
    schema = _schema(layer)
    if schema is not None and schema.background is not None:
        return int(schema.background)
    return int(layer.colormap.background_value)


def _class_name(layer, code: int) -> str:
    schema = _schema(layer)
    try:
        return schema.name_of(code)
    except (AttributeError, KeyError):  # no schema, or a value the schema does not name
        return "background" if code == _background(layer) else f"class {code}"


def _pixel_size_um(layer) -> tuple[float, float] | None:
    """``(dy, dx)`` in µm of the image the layer was opened on, or ``None`` when not in µm."""
    image = plugin_metadata(layer).get("image")
    if image is None or image.unit != "um":
        return None
    return tuple(float(v) for v in image.pixel_size[-2:])


class MaskToolsWidget(QWidget):
    """Class-wise mask edits on the active Labels layer, each one undo step.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.target = QLabel()
        self.target.setWordWrap(True)
        self.fill_button = QPushButton("Fill holes")
        self.area_label = QLabel()
        self.min_area = QDoubleSpinBox()
        self.min_area.setRange(0.0, 1e12)
        self.min_area.setDecimals(2)
        self.min_area.setValue(100.0)
        self.islands_button = QPushButton("Remove islands")
        self.radius = QSpinBox()
        self.radius.setRange(1, 100)
        self.radius.setValue(2)
        self.radius.setSuffix(" px")
        self.open_button = QPushButton("Open")
        self.close_button = QPushButton("Close")
        self.from_class = QComboBox()
        self.to_class = QComboBox()
        self.replace_button = QPushButton("Replace A by B inside the selected polygon")
        self.replace_button.setToolTip("Draw or select a polygon in a Shapes layer first")
        self.status = QLabel()
        self.status.setWordWrap(True)

        self.fill_button.clicked.connect(self.fill_holes)
        self.islands_button.clicked.connect(self.remove_islands)
        self.open_button.clicked.connect(self.open_class)
        self.close_button.clicked.connect(self.close_class)
        self.replace_button.clicked.connect(self.replace_in_polygon)

        grid = QGridLayout()
        grid.addWidget(self.fill_button, 0, 0, 1, 3)
        grid.addWidget(self.area_label, 1, 0)
        grid.addWidget(self.min_area, 1, 1)
        grid.addWidget(self.islands_button, 1, 2)
        grid.addWidget(QLabel("Disk radius"), 2, 0)
        grid.addWidget(self.radius, 2, 1)
        grid.addWidget(self.open_button, 3, 1)
        grid.addWidget(self.close_button, 3, 2)
        grid.addWidget(QLabel("A (replaced)"), 4, 0)
        grid.addWidget(self.from_class, 4, 1, 1, 2)
        grid.addWidget(QLabel("B (new class)"), 5, 0)
        grid.addWidget(self.to_class, 5, 1, 1, 2)
        grid.addWidget(self.replace_button, 6, 0, 1, 3)
        layout = QVBoxLayout(self)
        layout.addWidget(self.target)
        layout.addLayout(grid)
        layout.addWidget(self.status)
        layout.addStretch(1)

        self._watched = None  # the layer whose selected_label the title follows
        self.viewer.layers.selection.events.active.connect(self._on_active)
        self._on_active()

    # ------------------------------------------------------------------ following the active layer

    @property
    def layer(self) -> Labels | None:
        layer = self.viewer.layers.selection.active
        return layer if isinstance(layer, Labels) else None

    def _on_active(self, event=None) -> None:
        if self._watched is not None:
            self._watched.events.selected_label.disconnect(self._show_target)
        self._watched = self.layer
        if self._watched is not None:
            self._watched.events.selected_label.connect(self._show_target)
        self._show_target()
        self._fill_class_lists()

    def _show_target(self, event=None) -> None:
        layer = self.layer
        if layer is None:
            self.target.setText("Select a Labels layer; its selected label is the class edited.")
            self.area_label.setText("Islands smaller than")
            return
        code = int(layer.selected_label)
        self.target.setText(f"<b>{layer.name}</b>: class {code} <b>{_class_name(layer, code)}</b>")
        if _pixel_size_um(layer) is None:
            self.min_area.setSuffix(" px²")
            self.area_label.setText("Islands smaller than (px²: the layer has no µm pixel size)")
        else:
            self.min_area.setSuffix(" µm²")
            self.area_label.setText("Islands smaller than")

    def _fill_class_lists(self) -> None:
        layer = self.layer
        codes: list[int] = []
        if layer is not None:
            schema = _schema(layer)
            if schema is not None and schema.classes:
                codes = list(schema.codes)
            elif not layer.multiscale and np.prod(layer.data.shape) <= MAX_PIXELS_SCANNED:
                codes = [int(v) for v in np.unique(np.asarray(layer.data))]
            if _background(layer) not in codes:
                codes.append(_background(layer))  # replacing by background erases
        for combo in (self.from_class, self.to_class):
            kept = combo.currentData()
            combo.clear()
            for code in codes:
                combo.addItem(f"{code}  {_class_name(layer, code)}", code)
            if kept in codes:
                combo.setCurrentIndex(codes.index(kept))
        if self.to_class.currentIndex() == self.from_class.currentIndex() and len(codes) > 1:
            self.to_class.setCurrentIndex(1)

    # ------------------------------------------------------------------ the actions

    def fill_holes(self) -> int:
        """Fill the background enclosed by the selected class; returns the pixels changed."""
        return self._edit_selected_class(
            lambda plane, code, bg: mask_tools.fill_holes(plane, code, bg),
            done="filled {n:,} px of {name}",
            nothing="no holes to fill in {name}",
        )

    def remove_islands(self) -> int:
        """Make regions of the selected class smaller than the area background."""
        layer = self.layer
        pixel_size = _pixel_size_um(layer) if layer is not None else None
        min_area = self.min_area.value()
        area = f"{min_area:g} {'px²' if pixel_size is None else 'µm²'}"
        return self._edit_selected_class(
            # without a µm pixel size the area is in px²: a pixel is 1 × 1
            lambda plane, code, bg: mask_tools.remove_islands(plane, code, min_area, pixel_size or (1.0, 1.0), bg),
            done="removed {n:,} px of {name} islands smaller than {area}",
            nothing="no island of {name} is smaller than {area}",
            area=area,
        )

    def open_class(self) -> int:
        """Binary opening of the selected class by a disk of the given radius."""
        radius = self.radius.value()
        return self._edit_selected_class(
            lambda plane, code, bg: mask_tools.open_class(plane, code, radius, bg),
            done="opened {name} (radius {radius} px): removed {n:,} px",
            nothing="opening {name} (radius {radius} px) changed nothing",
            radius=radius,
        )

    def close_class(self) -> int:
        """Binary closing of the selected class, filling background only."""
        radius = self.radius.value()
        return self._edit_selected_class(
            lambda plane, code, bg: mask_tools.close_class(plane, code, radius, bg),
            done="closed {name} (radius {radius} px): added {n:,} px",
            nothing="closing {name} (radius {radius} px) changed nothing",
            radius=radius,
        )

    def replace_in_polygon(self) -> int:
        """Replace class A by class B inside the selected polygon (or the last one drawn)."""
        target = self._plane()
        if target is None:
            return 0
        layer, _leading, plane = target
        a, b = self.from_class.currentData(), self.to_class.currentData()
        if a is None or b is None or a == b:
            return self._nothing("choose two different classes A and B")
        polygons = self._polygons(layer)
        if not polygons:
            return self._nothing("draw or select a polygon or rectangle in a Shapes layer first")
        after = plane
        for polygon in polygons:  # several selected polygons are still one undo step
            after = mask_tools.replace_in_polygon(after, polygon, a, b)
        return self._write(
            target,
            after,
            done="replaced {n:,} px of {a} by {b} inside {where}",
            nothing="no {a} inside {where}",
            a=_class_name(layer, a),
            b=_class_name(layer, b),
            where="the polygon" if len(polygons) == 1 else f"{len(polygons)} polygons",
        )

    # ------------------------------------------------------------------ plumbing

    def _edit_selected_class(self, edit, done: str, nothing: str, **fields) -> int:
        target = self._plane()
        if target is None:
            return 0
        layer, _leading, plane = target
        code, background = int(layer.selected_label), _background(layer)
        if code == background:
            return self._nothing("the selected label is the background: select a class")
        after = edit(plane, code, background)
        return self._write(target, after, done, nothing, name=_class_name(layer, code), **fields)

    def _plane(self):
        """``(layer, leading indices, 2-D plane on screen)`` of the active Labels layer, or ``None``.

        The plane is a view of the layer's data; ``leading`` indexes it in an n-D layer.
        """
        layer = self.layer
        if layer is None:
            self._nothing("select a Labels layer")
            return None
        data = layer.data
        if layer.multiscale or not isinstance(data, np.ndarray):
            # data_setitem writes into numpy arrays only; napari cannot paint lazy masks either
            self._nothing(f"{layer.name} is multiscale or lazy: mask tools edit in-memory masks")
            return None
        if data.ndim == 2:
            return layer, (), data
        dims = self.viewer.dims
        if dims.ndisplay != 2 or tuple(dims.displayed) != tuple(range(dims.ndim))[-2:]:
            self._nothing("show the last two axes in 2-D to edit one plane of this layer")
            return None
        point = np.round(layer.world_to_data(dims.point)).astype(int)[:-2]
        leading = tuple(int(np.clip(p, 0, n - 1)) for p, n in zip(point, data.shape[:-2], strict=True))
        return layer, leading, data[leading]

    def _write(self, target, after, done: str, nothing: str, **fields) -> int:
        """Apply the pixels where ``after`` differs from the plane as one undo step."""
        layer, leading, plane = target
        indices, values = mask_tools.changed_pixels(plane, after)
        if len(values) == 0:
            return self._nothing(nothing.format(**fields))
        indices = tuple(np.full(len(values), i) for i in leading) + indices
        # one data_setitem call is one history item of the layer (napari 0.9 Labels._save_history)
        layer.data_setitem(indices, values.astype(layer.data.dtype, copy=False))
        self.status.setText(done.format(n=len(values), **fields))
        return len(values)

    def _nothing(self, message: str) -> int:
        self.status.setText(message)
        show_info(message)
        return 0

    def _polygons(self, labels: Labels) -> list[np.ndarray]:
        """Vertices ``(K, 2)`` in ``labels`` pixel coordinates of the polygons to act in.

        The selected polygons of the topmost Shapes layer that has any selected,
        else the last polygon of the topmost Shapes layer that has one.
        """
        shapes_layers = [layer for layer in reversed(self.viewer.layers) if isinstance(layer, Shapes)]

        def fillable(shapes, indices) -> list[int]:
            return sorted(i for i in indices if shapes.shape_type[i] in AREA_SHAPES)

        chosen = []
        for shapes in shapes_layers:
            chosen = fillable(shapes, shapes.selected_data)
            if chosen:
                break
        else:
            for shapes in shapes_layers:
                chosen = fillable(shapes, range(shapes.nshapes))[-1:]
                if chosen:
                    break
        if not chosen:
            return []
        # shape data -> world -> labels data; the last two axes are the plane's rows and columns
        return [
            np.array([labels.world_to_data(shapes.data_to_world(vertex)) for vertex in shapes.data[i]])[:, -2:]
            for i in chosen
        ]
