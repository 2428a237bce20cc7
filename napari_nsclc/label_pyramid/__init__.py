"""Label pyramids for gigapixel slides: an OME-Zarr 0.5 mask on disk, corrected a region at a time.

* :class:`LabelPyramid` (:mod:`~napari_nsclc.label_pyramid.pyramid`): create,
  open, read a region of any level, commit a corrected level-0 region.
* :mod:`~napari_nsclc.label_pyramid.store`: the OME-Zarr 0.5 layout.
* :mod:`~napari_nsclc.label_pyramid.downsample`: the overview levels (mode of 2x2 blocks).
* :mod:`~napari_nsclc.label_pyramid.journal`: crash-safe commits.

No napari or Qt import.
"""

from __future__ import annotations

from .pyramid import EVENTS, MAX_REGION_SIDE, CommitResult, ConflictError, LabelPyramid

__all__ = ["EVENTS", "MAX_REGION_SIDE", "CommitResult", "ConflictError", "LabelPyramid"]
