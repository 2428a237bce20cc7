"""One module per file format; each declares ``FORMAT`` (see napari_nsclc.registry)."""
