"""Builders of tiny but exact datasets in every layout of FORMATS.md.

They are synthetic: every file is written by this package, following the format
specification, so that tests, ``napari-nsclc demo`` and napari's File > Open
Sample have data without downloads. Each module here declares
``BUILDERS = {"layout-name": build_function}``; a builder takes a folder,
writes the dataset inside it and returns the path a user would open.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from functools import cache
from pathlib import Path

__all__ = ["all_builders", "build", "build_all"]


@cache
def all_builders() -> dict[str, Callable[[Path], Path]]:
    """Every registered builder, by layout name."""
    builders: dict[str, Callable[[Path], Path]] = {}
    for module_info in pkgutil.iter_modules(__path__):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        builders.update(getattr(module, "BUILDERS", {}))
    return dict(sorted(builders.items()))


def build(name: str, root: str | Path) -> Path:
    """Build layout ``name`` under ``root / name``; returns the path to open."""
    folder = Path(root) / name
    folder.mkdir(parents=True, exist_ok=True)
    return all_builders()[name](folder)


def build_all(root: str | Path) -> dict[str, Path]:
    """Build every layout under ``root``; returns ``{name: path to open}``."""
    return {name: build(name, root) for name in all_builders()}
