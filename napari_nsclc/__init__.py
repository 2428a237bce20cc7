"""napari-nsclc."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("napari-nsclc")
except PackageNotFoundError:  # a source checkout that was never installed
    __version__ = "unknown"
del PackageNotFoundError, version
