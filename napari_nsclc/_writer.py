"""npe2 writers: File > Save Layers, through the model, to a format's writer.

Each ``write_<format>`` named in napari.yaml converts napari's layer data to a
:class:`~napari_nsclc.model.Case` and hands it to that format's writer, which
returns what the source file held plus the user's edits.
"""

from __future__ import annotations

from pathlib import Path

from . import conversion, registry
from .layers import layer_data_to_case


def write_layers(format_name: str, path: str, layer_data: list, **options) -> list[str]:
    """Write napari ``layer_data`` (``[(data, meta, type), ...]``) as ``format_name``.

    napari's save dialog has already asked before replacing ``path``, so the
    writer may overwrite it. What the format cannot keep is shown as napari
    warnings before the file is written; a refused conversion raises, and
    napari shows its one-line reason.
    """
    case = layer_data_to_case(layer_data, name=Path(path).stem)
    plan = conversion.plan([case], format_name)
    if plan.verdict == conversion.LOSSY:
        from napari.utils.notifications import show_warning

        for loss in plan.lost():
            show_warning(f"{Path(path).name}: {loss}")
    written = registry.write([case], path, format_name, overwrite=True, plan=plan, **options)
    return [str(p) for p in written]


def _layers_writer(format_name: str, **options):
    """An npe2 multi-layer writer (``path, layer_data``) for ``format_name``."""

    def write(path: str, layer_data: list) -> list[str]:
        return write_layers(format_name, path, layer_data, **options)

    write.__name__ = f"write_{format_name.replace('-', '_')}"
    write.__doc__ = f"Save layers as {format_name}."
    return write


def _labels_writer(format_name: str, **options):
    """An npe2 single-layer writer (``path, data, meta``) for one Labels layer."""

    def write(path: str, data, meta: dict) -> list[str]:
        return write_layers(format_name, path, [(data, meta, "labels")], **options)

    write.__doc__ = f"Save a Labels layer as {format_name}."
    return write


write_masks = _labels_writer("masks")
write_voc_palette = _labels_writer("masks", palette=True)
write_coco = _layers_writer("coco")
write_ignite_pdl1 = _layers_writer("ignite-pdl1")
write_midog = _layers_writer("midog")
write_asap = _layers_writer("asap")
write_imagescope = _layers_writer("imagescope")
write_voc = _layers_writer("voc")
write_geojson = _layers_writer("geojson")
write_nucls = _layers_writer("nucls")
write_ocelot = _layers_writer("ocelot")
write_lung_pet_ct_dx = _layers_writer("lung-pet-ct-dx")
