"""Temporary folders that live as long as the process: for ``demo`` and Open Sample.

napari may read a layer's file long after it was opened (lazy slides, dask
images), so the files of a demo or sample must stay on disk while napari
runs. They are removed when the Python process exits, so no
``napari-nsclc-*`` folders pile up in the temporary directory.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from pathlib import Path

__all__ = ["process_temp_folder"]

_FOLDERS: list[str] = []
_LOCK = threading.Lock()
_OWNER = os.getpid()


def process_temp_folder(prefix: str) -> Path:
    """A new empty folder ``<tmp>/<prefix><random>``, removed with its contents at exit."""
    folder = tempfile.mkdtemp(prefix=prefix)
    with _LOCK:
        _FOLDERS.append(folder)
    return Path(folder)


@atexit.register
def _remove_folders() -> None:
    if os.getpid() != _OWNER:  # a forked child must not delete its parent's files
        return
    with _LOCK:
        folders, _FOLDERS[:] = list(_FOLDERS), []
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
