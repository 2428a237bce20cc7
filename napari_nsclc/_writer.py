"""npe2 writers: File > Save Layers, through the model, to a format's writer."""

from __future__ import annotations

from pathlib import Path

from . import registry
from .layers import layer_data_to_case


def write_layers(format_name: str, path: str, layer_data: list, **options) -> list[str]:
    """Write napari ``layer_data`` (``[(data, meta, type), ...]``) as ``format_name``.

    napari's save dialog has already asked before replacing ``path``, so the
    writer may overwrite it.
    """
    case = layer_data_to_case(layer_data, name=Path(path).stem)
    written = registry.write([case], path, format_name, overwrite=True, **options)
    return [str(p) for p in written]


def _single_layer(data, meta, layer_type):
    return [(data, meta, layer_type)]


def write_masks(path: str, data, meta: dict) -> list[str]:
    return write_layers("masks", path, _single_layer(data, meta, "labels"))


def write_voc_palette(path: str, data, meta: dict) -> list[str]:
    return write_layers("masks", path, _single_layer(data, meta, "labels"), palette=True)


def write_coco(path: str, layer_data: list) -> list[str]:
    return write_layers("coco", path, layer_data)


def write_voc(path: str, layer_data: list) -> list[str]:
    return write_layers("voc", path, layer_data)


def write_asap(path: str, layer_data: list) -> list[str]:
    return write_layers("asap", path, layer_data)


def write_geojson(path: str, layer_data: list) -> list[str]:
    return write_layers("geojson", path, layer_data)


def write_nucls(path: str, layer_data: list) -> list[str]:
    return write_layers("nucls", path, layer_data)


def write_midog(path: str, layer_data: list) -> list[str]:
    return write_layers("midog", path, layer_data)


def write_ocelot(path: str, layer_data: list) -> list[str]:
    return write_layers("ocelot", path, layer_data)


def write_lung_pet_ct_dx(path: str, layer_data: list) -> list[str]:
    return write_layers("lung-pet-ct-dx", path, layer_data)


def write_imagescope(path: str, layer_data: list) -> list[str]:
    return write_layers("imagescope", path, layer_data)
