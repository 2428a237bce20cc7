"""napari-nsclc."""
