"""npe2 reader: thin glue from napari's File > Open to the format registry.

A dataset root (many cases) opens its first case, with the cases of its
group (the series of one patient, an OCELOT sample's two patches); the
"Cases" dock lists the rest. Problems the reader worked around are shown as
napari warnings, so that the valid parts load and the user still learns what
was skipped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from . import registry
from .layers import case_to_layers
from .model import Case, NsclcFormatError

#: Warnings shown one by one before they are summarised, so a file with
#: thousands of bad objects does not bury the user in notifications.
MAX_WARNINGS_SHOWN = 5


def get_reader(path):
    """Return a reader if napari-nsclc recognises every path (or an image + mask pair), else ``None``."""
    paths = path if isinstance(path, list) else [path]
    if is_image_mask_pair(paths):
        return read_image_mask_pair_layers
    try:
        for p in paths:
            registry.detect(p)
    except NsclcFormatError:
        return None
    return read_layers


def is_image_mask_pair(paths: list) -> bool:
    """Whether ``paths`` name an image and its mask: two files, or two folders paired by stem.

    The first must be something no format claims on its own (plain images);
    the second a mask file or a folder of them.
    """
    if len(paths) != 2:
        return False
    image, mask = (Path(p) for p in paths)
    if not (image.exists() and mask.exists()) or image.is_dir() != mask.is_dir():
        return False
    try:
        registry.detect(image)
        return False
    except NsclcFormatError:
        pass
    try:
        return registry.detect(mask).name == "masks"
    except NsclcFormatError:
        return False


def add_to_viewer(viewer, layer_data: list) -> list:
    """Add napari layer data tuples to ``viewer``; returns the new layers."""
    from napari.layers import Layer

    return [viewer.add_layer(Layer.create(data, kwargs, layer_type)) for data, kwargs, layer_type in layer_data]


def read_image_mask_pair_layers(paths: list) -> list:
    """Layer data for an image and its mask (two files, or two folders paired by stem).

    napari's own ``open`` passes only same-extension files together, so
    ``napari-nsclc open IMAGE MASK`` calls this directly.
    """
    from .formats.masks import load_case, read_image_mask_folders, read_image_mask_pair

    image, mask = (Path(p) for p in paths)
    if image.is_dir():
        cases = read_image_mask_folders(image, mask)
        cases[0] = load_case(cases[0])
    else:
        cases = [read_image_mask_pair(image, mask)]
    return case_layers_with_context(cases, 0, mask)


def read_layers(path) -> list:
    """Layer data for every path: the (first) case of each.

    A dataset that can be written is opened as a correction
    :class:`~napari_nsclc.workflow.Workspace` (once: the Cases dock adopts
    it), so its first case shows as last saved.
    """
    paths = path if isinstance(path, list) else [path]
    layers = []
    for p in paths:
        spec = registry.detect(p)
        nuclei_layer = read_nuclei_layer(p, spec.name)
        if nuclei_layer is not None:
            layers.append(nuclei_layer)
            continue
        if spec.write is None:
            cases = registry.read(p, spec.name)
            if not cases:
                raise NsclcFormatError(p, "holds no image or annotation")
            layers.extend(case_layers_with_context(cases, 0, p))
            for companion in {case.document.get("nuclei_file") for case in cases} - {None}:
                layers.extend(layer for layer in [read_nuclei_layer(companion, "geojson")] if layer is not None)
            continue
        from .workflow import open_shared

        workspace = open_shared(p)
        first = workspace.cases[0]
        members = [(workspace.cases.index(i), workspace.load(i)) for i in workspace.group_of(first)]
        for _, case in members:
            _show_warnings(case.provenance.warnings)
        layers.extend(scene_layers(members, p, len(workspace.cases)))
    return layers


def read_nuclei_layer(path, format_name: str) -> tuple | None:
    """The outlines layer of a slide's nuclei (GeoJSON or COCO of many polygons), read with a progress bar;
    ``None`` for another file."""
    from napari.utils import progress

    from .formats.slide import reference_image
    from .layers import nuclei_to_layer
    from .nuclei import read_many, worth_scanning
    from .nuclei.render import OutlineView

    if not worth_scanning(path, format_name):
        return None
    with progress(total=0, desc=f"Reading {Path(path).name}") as bar:

        def report(stage: str, done: int, total: int) -> None:
            if bar.total != total:
                bar.total = total
                bar.n = 0
            bar.set_description(f"{'Scanning' if stage == 'scan' else 'Parsing'} {Path(path).name}")
            bar.update(done - bar.n)

        nuclei = read_many(path, format_name, progress=report)
    if nuclei is None:
        return None
    _show_warnings(nuclei.problems.messages(Path(path).name, "record"))
    image = reference_image(path)
    return nuclei_to_layer(OutlineView(nuclei, image.shape), image)


def scene_indices(cases: list[Case], index: int) -> list[int]:
    """``index`` and the cases of the same group (parts of one scene)."""
    group = cases[index].group
    if group is None:
        return [index]
    return [i for i, case in enumerate(cases) if case.group == group]


def case_layers_with_context(cases: list[Case], index: int, source) -> list:
    """Layer data for case ``index`` (and its scene), tagged with where it sits in its dataset."""
    members = [(i, cases[i]) for i in scene_indices(cases, index)]
    for _, case in members:
        _show_warnings(case.provenance.warnings)
    return scene_layers(members, source, len(cases))


def scene_layers(members: Sequence[tuple[int, Case]], source, count: int) -> list:
    """Layer data for cases shown together, given as ``(index in the dataset, case)``.

    Each layer's ``metadata["nsclc"]["dataset"]`` holds ``source``, the index
    of the case it belongs to and the dataset's case ``count``. A layer name
    that several cases of the scene share (each series' ``"tumour boxes"``)
    gets its case's image name appended, ``"tumour boxes (CT 2 B70f)"``, so
    that napari does not number them.
    """
    per_case = [(i, case, case_to_layers(case)) for i, case in members]
    names = Counter(kwargs.get("name") for _, _, layers in per_case for _, kwargs, _ in layers)
    layers = []
    for i, case, case_layers in per_case:
        for data, kwargs, layer_type in case_layers:
            name = kwargs.get("name")
            nsclc = kwargs.setdefault("metadata", {}).setdefault("nsclc", {})
            if names[name] > 1:
                label = case.image.name if layer_type != "image" and case.image.name else case.name
                kwargs["name"] = f"{name} ({label})"
                nsclc["set_name"] = name  # the name the set has in the case, for writers and change counts
            nsclc["dataset"] = {
                "source": str(Path(source)),
                "index": i,
                "count": count,
            }
            layers.append((data, kwargs, layer_type))
    return layers


def _show_warnings(warnings: list[str]) -> None:
    if not warnings:
        return
    from napari.utils.notifications import show_warning

    for message in warnings[:MAX_WARNINGS_SHOWN]:
        show_warning(message)
    if len(warnings) > MAX_WARNINGS_SHOWN:
        show_warning(f"... and {len(warnings) - MAX_WARNINGS_SHOWN} more problems (see the Case information dock)")
