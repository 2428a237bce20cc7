"""Draw a case's :class:`~napari_nsclc.workflow.changes.CaseChanges` as napari overlay layers.

Like :mod:`napari_nsclc.layers`, this returns plain ``(data, kwargs, layer_type)``
tuples and imports napari only inside the function that needs its colormap.

* A changed mask becomes a Labels layer ``"changes: <mask name>"``: 1 added
  (green), 2 removed (red), 3 changed from one class to another (orange).
* A changed point, box or polygon set becomes a Points layer
  ``"changes: <set name>"`` of hollow rings at the objects' centroids: added
  green, removed red (where the object was), reclassified orange, moved blue
  (where it is now). An object both moved and reclassified gets both rings,
  the reclassified one larger so both show.
* Every overlay layer's metadata is ``{"nsclc": {"overlay": "changes", "of": <layer name>}}``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .layers import METADATA_KEY, TRANSPARENT, _placement, points_display_size
from .model import BoxSet, Case, PolygonSet, parse_color
from .workflow.changes import CaseChanges, LayerChanges, object_centroids

__all__ = ["CHANGE_COLORS", "diff_layer_data"]

#: Colour per change (matplotlib's tab10, which reads on H&E pink and CT grey alike).
CHANGE_COLORS = {
    "added": "#2ca02c",
    "removed": "#d62728",
    "reclassified": "#ff7f0e",
    "moved": "#1f77b4",
}
#: Labels values of a mask overlay; see :meth:`LayerChanges.pixel_codes`.
PIXEL_CHANGES = {1: "added", 2: "removed", 3: "reclassified"}
#: A ring is this much wider than the object it marks.
RING_MARGIN = 1.3
#: Reclassified rings are this much larger than the others, so a moved and reclassified object shows both.
RECLASSIFIED_RING = 1.4
OVERLAY_OPACITY = 0.6

def diff_layer_data(changes: CaseChanges, after: Case) -> list[tuple[Any, dict, str]]:
    """Overlay layer data for every changed layer.

    Parameters
    ----------
    changes : CaseChanges
        From :func:`~napari_nsclc.workflow.changes.case_changes`.
    after : Case
        The saved case: it places the layers (scale, translate, units) and
        holds the added, moved and reclassified objects.

    Returns
    -------
    list of (data, kwargs, layer_type)
        One Labels layer per changed mask, then one Points layer per changed
        object set, in the order of ``changes.layers``.
    """
    out = []
    for layer in changes.layers:
        if layer.kind == "mask":
            out.append(_mask_overlay(layer, after))
        else:
            out.append(_objects_overlay(layer, after))
    return out


def _overlay_metadata(layer: LayerChanges) -> dict:
    return {METADATA_KEY: {"overlay": "changes", "of": layer.name}}


def _mask_overlay(layer: LayerChanges, after: Case) -> tuple[np.ndarray, dict, str]:
    from napari.utils.colormaps import DirectLabelColormap

    data = layer.pixel_codes()
    colors: dict[Any, tuple] = {value: parse_color(CHANGE_COLORS[change]) for value, change in PIXEL_CHANGES.items()}
    colors[0] = TRANSPARENT
    colors[None] = TRANSPARENT  # no other value is ever written
    kwargs = {
        "name": f"changes: {layer.name}",
        "colormap": DirectLabelColormap(color_dict=colors),
        "features": pd.DataFrame({"index": list(PIXEL_CHANGES), "change": list(PIXEL_CHANGES.values())}),
        "opacity": OVERLAY_OPACITY,
        "metadata": _overlay_metadata(layer),
        # the mask's own layer is placed by the same helper with the same arguments
        **_placement(after.image, data.ndim),
    }
    return (data, kwargs, "labels")


def _objects_overlay(layer: LayerChanges, after: Case) -> tuple[np.ndarray, dict, str]:
    objects = None if layer.after_position is None else getattr(after, layer.kind)[layer.after_position]
    base = 2 * points_display_size(after.image)  # twice a cell marker: the ring surrounds the point
    parts = []
    # (change, the set holding the objects, their positions in it, the index reported in features):
    # removed objects are held by removed_objects and reported by their index in before's set
    for change, source, positions, reported in (
        ("added", objects, layer.added, layer.added),
        ("removed", layer.removed_objects, np.arange(len(layer.removed)), layer.removed),
        ("moved", objects, layer.moved, layer.moved),
        ("reclassified", objects, layer.reclassified, layer.reclassified),
    ):
        if len(positions) and source is not None:
            parts.append(_rings(change, source, positions, reported, base))
    ndim = next((p[0].shape[1] for p in parts), len(after.image.pixel_size))
    parts = [p for p in parts if p[0].shape[1] == ndim]  # a set mixing 2-D and 3-D objects draws those like the first
    coords = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, ndim))
    sizes = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0)
    features = pd.concat([p[2] for p in parts], ignore_index=True) if parts else _features([], [], [])
    features["change"] = pd.Categorical(features["change"], categories=list(CHANGE_COLORS))
    border = np.array([parse_color(CHANGE_COLORS[c]) for c in features["change"]]).reshape(-1, 4)
    face = border.copy()
    face[:, 3] = 0.0  # hollow: the object under the ring stays visible
    kwargs = {
        "name": f"changes: {layer.name}",
        "features": features,
        "size": sizes if len(sizes) else base,
        "face_color": face if len(face) else "transparent",
        "border_color": border if len(border) else CHANGE_COLORS["added"],
        "border_width": 0.12,
        "border_width_is_relative": True,
        "metadata": _overlay_metadata(layer),
        **_placement(after.image, ndim),
    }
    return (coords, kwargs, "points")


def _features(changes, classes, indices) -> pd.DataFrame:
    return pd.DataFrame({"change": list(changes), "class": list(classes), "index": np.asarray(indices, np.int64)})


def _rings(change: str, objects, positions: np.ndarray, reported: np.ndarray, base: float):
    """``(coords (N, D), sizes (N,), features)`` of the rings marking ``objects[positions]``."""
    coords = object_centroids(objects, positions)
    sizes = np.maximum(base, RING_MARGIN * _extents(objects, positions))
    if change == "reclassified":
        sizes = sizes * RECLASSIFIED_RING
    classes = [str(objects.classes[i]) for i in positions]
    return coords, sizes, _features([change] * len(coords), classes, reported)


def _extents(objects, indices: np.ndarray) -> np.ndarray:
    """Largest in-plane side of each object's bounding box, in pixels (0 for points)."""
    if isinstance(objects, BoxSet):
        b = objects.bounds[indices]
        return np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
    if isinstance(objects, PolygonSet):
        out = np.zeros(len(indices))
        for row, i in enumerate(np.asarray(indices).tolist()):
            ring = objects.polygons[i].exterior
            if len(ring):
                out[row] = float(np.max(np.ptp(ring[:, -2:], axis=0)))
        return out
    return np.zeros(len(indices))
