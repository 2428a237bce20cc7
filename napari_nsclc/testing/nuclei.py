"""Slide-scale nuclei as QuPath exports them: a GeoJSON FeatureCollection of classified polygons.

QuPath writes one ``Feature`` per detection: a ``Polygon`` with a closed ring
in level-0 pixel ``[x, y]``, ``properties.objectType`` ``"detection"`` and
``properties.classification`` ``{"name", "color"}``. The builder writes 100k
nuclei in about a second (one orjson call), so tests and benchmarks can afford slide-scale files.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import orjson

__all__ = ["CLASSES", "build_nuclei_geojson"]

#: QuPath's colours for the three classes of a typical cell classifier.
CLASSES = (("Tumor", (200, 0, 0)), ("Immune cells", (160, 90, 160)), ("Stroma", (150, 200, 150)))
VERTICES = 12


def build_nuclei_geojson(path: str | Path, count: int, *, side: int | None = None, seed: int = 0,
                         origin: tuple[float, float] = (0.0, 0.0)) -> Path:
    """Write ``count`` 12-vertex nuclei (radius 4 to 9 px) spread over a ``side``² pixel slide.

    Classes cycle through :data:`CLASSES`; coordinates have two decimals.
    ``side`` defaults to ``sqrt(count) * 40``. ``origin`` shifts every
    nucleus by ``(x, y)`` pixels. Returns ``path``.
    """
    path = Path(path)
    rng = np.random.default_rng(seed)
    side = side or int(np.sqrt(count) * 40)
    centres = rng.uniform(20, side - 20, (count, 2)) + np.asarray(origin, float)
    radii = rng.uniform(4, 9, count)
    angles = np.linspace(0, 2 * np.pi, VERTICES, endpoint=False)
    xs = np.round(centres[:, :1] + radii[:, None] * np.cos(angles), 2)
    ys = np.round(centres[:, 1:] + radii[:, None] * np.sin(angles), 2)
    ring = np.stack([xs, ys], axis=-1)
    ring = np.concatenate([ring, ring[:, :1]], axis=1)  # closed, as GeoJSON requires
    rings = ring.tolist()
    classes = [{"name": name, "color": list(rgb)} for name, rgb in CLASSES]
    features = [{"type": "Feature", "id": str(uuid.UUID(int=i + 1)),
                 "geometry": {"type": "Polygon", "coordinates": [rings[i]]},
                 "properties": {"objectType": "detection", "classification": classes[i % len(classes)],
                                "isLocked": False}}
                for i in range(count)]
    path.write_bytes(orjson.dumps({"type": "FeatureCollection", "features": features}))
    return path
