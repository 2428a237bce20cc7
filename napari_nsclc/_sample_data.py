"""npe2 sample data: File > Open Sample > napari-nsclc, built on the fly.

The files are written to a temporary folder and read back through the same
readers a user's files go through, so the samples show exactly what real data
of that layout looks like in napari.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from . import registry
from ._reader import case_layers_with_context
from .testing import build

DEMO_LAYOUT = "ocelot"


def sample_layers(layout: str) -> list:
    """Layer data for the first case (and its scene) of a freshly built ``layout`` dataset."""
    root = Path(tempfile.mkdtemp(prefix=f"napari-nsclc-{layout}-"))
    path = build(layout, root)
    return case_layers_with_context(registry.read(path), 0, path)


def demo_sample() -> list:
    return sample_layers(DEMO_LAYOUT)
