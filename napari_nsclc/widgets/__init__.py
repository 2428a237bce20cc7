"""Dock widgets (qtpy + magicgui). They hold no format logic: they call the
registry, the model and :mod:`napari_nsclc.layers`."""
