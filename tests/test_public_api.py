"""napari-nsclc uses napari's public API only.

The scan reads every module of the package with :mod:`ast` and reports, as
``file:line``, private napari imports (``napari._qt``, ``from napari import _x``)
and private attributes read on napari objects: the names in
:data:`PRIVATE_NAPARI_ATTRIBUTES` on anything, and any other ``_name`` on an
expression that goes through a viewer, window, layer, canvas, camera or event
(``viewer.window._qt_window``, ``self.layer._face``), also through ``getattr``.
A module that truly needs a private touchpoint (none does today) goes in
:data:`ALLOWED`, in one function, with a test that fails when napari changes it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import napari_nsclc

PACKAGE = Path(napari_nsclc.__file__).resolve().parent
#: Modules allowed to touch napari's private API: none. napari's once-per-session PyQt5
#: notice has no public switch, so it is left alone (QT_API=pyqt6 has no such notice).
ALLOWED: set[str] = set()

#: Private napari attributes flagged on any object.
PRIVATE_NAPARI_ATTRIBUTES = {
    "_qt_window",
    "_qt_viewer",
    "_type_string",
    "_face",
    "_edge",
    "_border",
    "_refresh_colors",
    "_key_map_handler",
    "_keymap",
    "_slice_input",
    "_view_face_color",
    "_view_border_color",
    "_save_history",
    "_get_state",
    "_overlays",
}
#: Names that make an expression a napari object: a ``_name`` read through one of them is flagged.
NAPARI_NAMES = {
    "napari",
    "viewer",
    "napari_viewer",
    "window",
    "qt_viewer",
    "layer",
    "layers",
    "points",
    "shapes",
    "labels",
    "canvas",
    "camera",
    "scene",
    "dims",
    "selection",
    "events",
    "event",
}
_ATTRIBUTE_FUNCTIONS = {"getattr", "hasattr", "setattr", "delattr"}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _private_napari_module(name: str) -> bool:
    parts = name.split(".")
    return parts[0] == "napari" and any(_private(part) for part in parts[1:])


def _names_along(node: ast.AST) -> list[str]:
    """The names an expression goes through: ``self.viewer.window`` -> ``["self", "viewer", "window"]``."""
    names: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            names.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Name):
            names.append(node.id)
            break
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Subscript):
            node = node.value
        else:
            break
    return names[::-1]


def _napari_like(node: ast.AST) -> bool:
    names = _names_along(node)
    if names and names[0] in ("self", "cls"):
        names = names[1:]
    return any(name.lower() in NAPARI_NAMES for name in names)


def private_napari_uses(source: str, filename: str = "<source>") -> list[tuple[int, str]]:
    """``(line, code)`` of every private napari access in ``source``."""
    hits: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            hits += [(node.lineno, f"import {a.name}") for a in node.names if _private_napari_module(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            module = node.module
            if _private_napari_module(module):
                hits.append((node.lineno, f"from {module} import ..."))
            elif module.split(".")[0] == "napari":
                hits += [(node.lineno, f"from {module} import {a.name}") for a in node.names if _private(a.name)]
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            if node.attr in PRIVATE_NAPARI_ATTRIBUTES or _napari_like(node.value):
                hits.append((node.lineno, ast.unparse(node)))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _ATTRIBUTE_FUNCTIONS
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
            and (node.args[1].value in PRIVATE_NAPARI_ATTRIBUTES or _napari_like(node.args[0]))
        ):
            hits.append((node.lineno, ast.unparse(node)))
    return sorted(set(hits))


def test_the_scan_finds_private_napari_access():
    source = (
        "import napari._qt.qt_main_window\n"
        "from napari._vispy import utils\n"
        "from napari import _qt\n"
        "viewer.window._qt_window.resize(1, 2)\n"
        "size = self.viewer.window._qt_viewer.canvas.size\n"
        "kind = layer._type_string\n"
        "face = getattr(layer, '_face', None)\n"
        "self._watched._refresh_colors(values)\n"
        "viewer.layers[0]._slice\n"
        # not napari: the package's own private helpers, a widget's own state
        "from napari.layers import Points\n"
        "coco._head(path, 10)\n"
        "self._watched = None\n"
        "lazy._load = load\n"
    )
    assert [line for line, _ in private_napari_uses(source)] == [1, 2, 3, 4, 5, 6, 7, 8, 9]


def test_the_package_uses_napari_public_api_only():
    hits = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).as_posix()
        if relative in ALLOWED:
            continue
        hits += [f"{relative}:{line}: {code}" for line, code in private_napari_uses(path.read_text(), str(path))]
    assert not hits, "private napari API in the package:\n" + "\n".join(hits)
