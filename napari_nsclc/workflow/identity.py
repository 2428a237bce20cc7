"""Who is annotating: a name asked once, kept in the plugin's settings, stamped on every save.

This is attribution, not authentication: anyone can type any name, and
``NSCLC_ANNOTATOR`` overrides the stored one (for scripts, shared
machines and tests). The settings file is
``<user config dir>/napari-nsclc/settings.json``; ``NSCLC_CONFIG_DIR``
moves it.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..model import NsclcFormatError
from .files import read_json, write_json

__all__ = ["annotator", "set_annotator", "settings_path"]

#: Environment variable that names the annotator, above the settings file.
ANNOTATOR_VARIABLE = "NSCLC_ANNOTATOR"


def settings_path() -> Path:
    """The plugin's settings file (which may not exist yet)."""
    folder = os.environ.get("NSCLC_CONFIG_DIR")
    if not folder:
        import platformdirs

        folder = platformdirs.user_config_dir("napari-nsclc", appauthor=False)
    return Path(folder) / "settings.json"


def _settings() -> dict:
    path = settings_path()
    if not path.is_file():
        return {}
    try:
        value = read_json(path)
    except NsclcFormatError:
        return {}  # a damaged settings file must not stop anyone from working; the name is asked again
    return value if isinstance(value, dict) else {}


def annotator() -> str | None:
    """The annotator's name: ``$NSCLC_ANNOTATOR``, else the stored one, else ``None`` (ask the user)."""
    name = os.environ.get(ANNOTATOR_VARIABLE, "").strip() or str(_settings().get("annotator") or "").strip()
    return name or None


def set_annotator(name: str) -> str:
    """Store ``name`` as the annotator for this user; returns it stripped.

    Raises
    ------
    ValueError
        For an empty name.
    """
    name = str(name).strip()
    if not name:
        raise ValueError("the annotator's name cannot be empty")
    write_json(settings_path(), {**_settings(), "annotator": name})
    return name
