"""The ``napari-nsclc`` command.

``open`` and ``demo`` start napari; ``info`` and ``convert`` are headless and
import neither napari nor Qt, so they run on servers and in batch jobs.
Bad input ends with one line naming the file and the problem, and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import conversion, registry
from .model import Case, NsclcFormatError

#: The layout the demo shows first: it has an image, a tissue Labels layer and
#: classified cell Points, so one screen shows every kind of layer.
DEMO_FIRST_LAYOUT = "ocelot"

EXIT_BAD_INPUT = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return args.run(args)
    except BrokenPipeError:
        # the reader of our output left (`napari-nsclc info ... | head`): not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - Python flushes stdout at exit
        return 0
    except NsclcFormatError as error:
        print(f"napari-nsclc: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyError as error:  # unknown format names
        print(f"napari-nsclc: error: {error.args[0]}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:
        where = error.filename or ""
        print(f"napari-nsclc: error: {where}: {error.strerror or error}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="napari-nsclc",
        description="Annotate NSCLC pathology and radiology datasets in napari.",
    )
    parser.add_argument("--version", action="version", version=f"napari-nsclc {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    open_cmd = sub.add_parser("open", help="open files or dataset folders in napari")
    open_cmd.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    open_cmd.set_defaults(run=_run_open)

    demo = sub.add_parser("demo", help="write a synthetic dataset of every layout and open it in napari")
    demo.add_argument("--folder", type=Path, help="write the datasets here instead of a temporary folder")
    demo.add_argument("--screenshot", type=Path, metavar="PNG", help="save a screenshot of the window and exit")
    demo.set_defaults(run=_run_demo)

    info = sub.add_parser("info", help="detected format, images and annotation counts per class")
    info.add_argument("path", type=Path, metavar="PATH")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.set_defaults(run=_run_info)

    convert = sub.add_parser("convert", help="convert annotations between formats")
    convert.add_argument("source", type=Path, metavar="SRC")
    convert.add_argument("--to", required=True, dest="to_format", metavar="FORMAT", help=_writable_formats_help())
    convert.add_argument("-o", "--output", required=True, type=Path, metavar="DST")
    convert.add_argument("--from", dest="from_format", metavar="FORMAT", help="skip detection and read as FORMAT")
    convert.add_argument("--overwrite", action="store_true", help="replace DST if it exists")
    convert.add_argument("--strict", action="store_true", help="refuse a conversion that would lose anything")
    convert.set_defaults(run=_run_convert)

    formats = sub.add_parser("formats", help="list the formats napari-nsclc reads and writes")
    formats.add_argument("--matrix", action="store_true",
                         help="print the conversion matrix: exact, lossy or refused for every reader and writer")
    formats.set_defaults(run=_run_formats)
    return parser


def _version() -> str:
    """The installed distribution's version (``napari_nsclc.__version__``)."""
    from . import __version__

    return __version__


def _writable_formats_help() -> str:
    return "one of the writable formats listed by 'napari-nsclc formats'"


# --------------------------------------------------------------------------- headless commands


def summarize(path: Path, spec: registry.FormatSpec, cases: Sequence[Case]) -> dict:
    """A JSON-ready summary of what ``path`` holds.

    ``cases`` lists every case with its annotation counts; ``totals`` sums them
    over the dataset, per annotation set (layer) name and class: objects, or
    pixels for semantic masks (``count_units`` says which). Cases are counted
    one at a time, so a dataset of lazily decoded masks holds one decoded mask
    in memory at once.
    """
    summary = {"path": str(path), "format": spec.name, "title": spec.title, "cases": []}
    totals: dict[str, dict[str, int]] = {}
    units: dict[str, str] = {}
    schema_order: dict[str, dict[str, None]] = {}
    for case in cases:
        image = case.image
        counts = case.counts()  # decodes each lazy mask once; nothing decoded is kept
        layers = [(s, "objects") for s in case.annotation_sets()]
        layers += [(m, "px" if m.kind == "semantic" else "objects") for m in case.masks]
        for layer, unit in layers:
            units.setdefault(layer.name, unit)
            schema_order.setdefault(layer.name, {}).update(dict.fromkeys(layer.schema.names))
        for layer, per_class in counts.items():
            layer_totals = totals.setdefault(layer, {})
            for name, count in per_class.items():
                layer_totals[name] = layer_totals.get(name, 0) + int(count)
        summary["cases"].append(
            {
                "name": case.name,
                "image": image.path,
                "shape": list(image.shape) if image.shape else None,
                "pixel_size": list(image.pixel_size),
                "unit": image.unit,
                "annotations": counts,
                "warnings": list(case.provenance.warnings),
            }
        )
    for layer, layer_totals in totals.items():  # classes in schema order, then as found
        ordered = {name: layer_totals.pop(name) for name in schema_order.get(layer, ()) if name in layer_totals}
        totals[layer] = {**ordered, **layer_totals}
    summary["totals"] = totals
    summary["count_units"] = {layer: units.get(layer, "objects") for layer in totals}
    return summary


def _run_info(args) -> int:
    spec = registry.detect(args.path)
    cases = registry.read(args.path, spec.name)
    summary = summarize(args.path, spec, cases)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{summary['path']}: {spec.title} ({spec.name}), {len(cases)} case(s)")
    for case in summary["cases"]:
        shape = "x".join(str(s) for s in case["shape"]) + " px" if case["shape"] else "image size unknown"
        size = "x".join(f"{s:g}" for s in case["pixel_size"])
        print(f"  {case['name']}: {shape}, pixel {size} {case['unit']}")
        for layer, counts in case["annotations"].items():
            per_class = ", ".join(f"{name} {count}" for name, count in counts.items()) or "empty"
            print(f"    {layer}: {per_class}")
        for warning in case["warnings"]:
            print(f"    warning: {warning}")
    print(f"totals ({len(cases)} case(s)):")
    for layer, counts in summary["totals"].items():
        unit = " px" if summary["count_units"][layer] == "px" else ""
        per_class = ", ".join(f"{name} {count}{unit}" for name, count in counts.items()) or "empty"
        print(f"  {layer}: {per_class}")
    if not summary["totals"]:
        print("  no annotations")
    return 0


def _run_convert(args) -> int:
    spec = registry.get_format(args.to_format)
    if spec.write is None:
        raise NsclcFormatError(args.output, f"napari-nsclc cannot write {spec.title}")
    source_spec = registry.get_format(args.from_format) if args.from_format else registry.detect(args.source)
    cases = registry.read(args.source, source_spec.name)
    for case in cases:
        for warning in case.provenance.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    # what the conversion keeps and loses is said before anything is written
    plan = conversion.plan(cases, spec, source=f"{args.source.name} ({source_spec.name})")
    if plan.refusal:
        raise NsclcFormatError(args.source, f"refused as {spec.name}: {plan.refusal}")
    for line in plan.describe():
        print(line)
    if args.strict and plan.verdict == conversion.LOSSY:
        raise NsclcFormatError(args.output, f"refused (--strict): the conversion would lose {'; '.join(plan.lost())}")
    written = registry.write(cases, args.output, spec.name, overwrite=args.overwrite, plan=plan)
    print(f"wrote {len(written)} file(s) to {args.output}")
    return 0


def _run_formats(args) -> int:
    if args.matrix:
        print(conversion.matrix_table())
        print()
        for line in conversion.explain():
            print(line)
        return 0
    for spec in sorted(registry.all_formats(), key=lambda s: s.name):
        modes = ("read" if spec.read else "") + ("/write" if spec.write else "")
        print(f"{spec.name:22} {modes.strip('/'):11} {spec.title}")
    return 0


# --------------------------------------------------------------------------- napari commands


def _run_open(args) -> int:
    from ._reader import add_to_viewer, is_image_mask_pair, read_image_mask_pair_layers

    paths = [str(p) for p in args.paths]
    _require_display("open")
    if is_image_mask_pair(paths):
        layer_data = read_image_mask_pair_layers(paths)
        viewer = _viewer()
        add_to_viewer(viewer, layer_data)
        return _run_event_loop()
    for path in args.paths:
        registry.detect(path)  # fail on the command line, before a window opens
    viewer = _viewer()
    from .widgets.case_navigator import CaseNavigator

    # docked before opening, so that it picks up a dataset's cases as its layers arrive
    viewer.window.add_dock_widget(CaseNavigator(viewer), name="Cases", area="right", tabify=True)
    viewer.open(paths, plugin="napari-nsclc")
    return _run_event_loop()


def _run_demo(args) -> int:
    from ._tempfolders import process_temp_folder
    from .testing import build_all

    _require_display("demo")
    root = args.folder or process_temp_folder("napari-nsclc-demo-")  # removed when the process exits
    datasets = build_all(root)
    print(f"demo datasets written to {root}:")
    for name, path in datasets.items():
        print(f"  {name}: {path}")
    viewer = _viewer()
    if args.screenshot:
        viewer.window._qt_window.resize(1400, 900)
        _process_events()
    from .widgets.dataset_browser import DatasetBrowser

    browser = DatasetBrowser(viewer)
    viewer.window.add_dock_widget(browser, name="Datasets", area="right")
    browser.set_datasets(datasets)
    first = DEMO_FIRST_LAYOUT if DEMO_FIRST_LAYOUT in datasets else next(iter(datasets))
    browser.open_dataset(first)
    _zoom_to_annotated_objects(viewer)
    shown = ", ".join(f"{layer._type_string} '{layer.name}'" for layer in viewer.layers)
    print(f"showing {first}: {shown}")
    if args.screenshot:
        _process_events()
        viewer.screenshot(str(args.screenshot), canvas_only=False)
        print(f"screenshot saved to {args.screenshot}")
        viewer.close()
        return 0
    return _run_event_loop()


def _zoom_to_annotated_objects(viewer) -> None:
    """Fit the view to the Points layers, with a margin, so that cells are visible at first sight."""
    import numpy as np

    extents = [layer.extent.world for layer in viewer.layers if layer._type_string == "points" and len(layer.data)]
    if not extents:
        return
    low = np.min([e[0] for e in extents], axis=0)
    high = np.max([e[1] for e in extents], axis=0)
    viewer.scene.camera.center = tuple((low + high) / 2)
    span = float(np.max(high - low)) * 3  # with the tissue around the cells in view
    canvas_size = min(viewer.window._qt_viewer.canvas.size)
    if span > 0:
        viewer.scene.camera.zoom = canvas_size / span


def _require_display(command: str) -> None:
    """Fail with one line, not a Qt abort, when Linux has no display to open a window on."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("QT_QPA_PLATFORM")
    ):
        raise NsclcFormatError(
            "DISPLAY",
            f"no display to open napari on; run 'napari-nsclc {command}' on a desktop, "
            f"or headless with: xvfb-run -a napari-nsclc {command} --screenshot demo.png"
            if command == "demo"
            else f"no display to open napari on; run 'napari-nsclc {command}' on a desktop or under xvfb-run -a",
        )


def _viewer():
    import warnings

    import napari

    # napari nags about PyQt5's retirement in a pop-up over the canvas; users of
    # the [pyqt5] extra cannot act on it mid-session, and PyQt6 works unchanged.
    warnings.filterwarnings("ignore", message=".*PyQt5 backend is deprecated.*")
    try:
        from napari._qt import qt_main_window

        qt_main_window.SHOW_QT_WARNING = False
    except (ImportError, AttributeError):
        pass

    viewer = napari.Viewer(title="napari-nsclc")
    viewer.canvas.overlays.scale_bar.visible = True
    from .widgets.case_info import CaseInfoWidget

    viewer.window.add_dock_widget(CaseInfoWidget(viewer), name="Case information", area="right")
    return viewer


def _process_events() -> None:
    from qtpy.QtWidgets import QApplication

    for _ in range(5):
        QApplication.processEvents()


def _run_event_loop() -> int:
    import napari

    napari.run()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
