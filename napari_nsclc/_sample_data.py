"""npe2 sample data: File > Open Sample > napari-nsclc, built on the fly.

The files are written to a temporary folder (removed when the process
exits, not before: napari may read lazy layers later) and read back through the same
readers a user's files go through, so the samples show exactly what real data
of that layout looks like in napari.
"""

from __future__ import annotations

from . import registry
from ._reader import case_layers_with_context
from ._tempfolders import process_temp_folder
from .testing import build

DEMO_LAYOUT = "ocelot"


def sample_layers(layout: str) -> list:
    """Layer data for the first case (and its scene) of a freshly built ``layout`` dataset."""
    root = process_temp_folder(f"napari-nsclc-{layout}-")  # kept while napari runs, removed at exit
    path = build(layout, root)
    return case_layers_with_context(registry.read(path), 0, path)


def _sample(layout: str):
    def sample() -> list:
        return sample_layers(layout)

    sample.__doc__ = f"A synthetic {layout} dataset, read through napari-nsclc's own reader."
    return sample


demo_sample = _sample(DEMO_LAYOUT)
nsclc_nat_sample = _sample("nsclc-nat")
ignite_he_sample = _sample("ignite-he")
ignite_pdl1_sample = _sample("ignite-pdl1")
nucls_sample = _sample("nucls")
midog_sample = _sample("midog")
ocelot_sample = _sample("ocelot")
lung_pet_ct_dx_sample = _sample("lung-pet-ct-dx")
wsi_sample = _sample("wsi")
cocahis_sample = _sample("cocahis")
pcam_sample = _sample("pcam")
voc_segmentation_sample = _sample("voc-segmentation")
voc_detection_sample = _sample("voc-detection")
coco_sample = _sample("coco")
masks_sample = _sample("masks")
