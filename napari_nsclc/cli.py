"""The ``napari-nsclc`` command.

``open`` and ``demo`` start napari; ``info``, ``validate`` and ``convert`` are headless and
import neither napari nor Qt, so they run on servers and in batch jobs.
Bad input ends with one line naming the file and the problem, and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from . import conversion, registry
from .batch.convert import Interrupted
from .model import Case, NsclcFormatError

EXIT_BAD_INPUT = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        if getattr(args, "scheduler", None):
            from .batch.engine import check_scheduler

            check_scheduler(args.scheduler)  # before reading a dataset: an address that does not answer fails fast
        return args.run(args)
    except Interrupted as stop:
        print(f"napari-nsclc: {stop}", file=sys.stderr)
        return stop.exit_code
    except KeyboardInterrupt:  # Ctrl-C while reading or planning: nothing was written yet
        print("napari-nsclc: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
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
        epilog="Run 'napari-nsclc COMMAND --help' for a command's options and examples. Exit codes: 0 done, "
        "1 problems found (validate), 2 unusable input (one line on standard error names the file and the "
        "problem).",
    )
    parser.add_argument("--version", action="version", version=f"napari-nsclc {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    open_cmd = _command(
        sub, "open", "open files or dataset folders in napari",
        "Open annotation files, images or dataset folders in napari, with the Cases dock for datasets.",
        ["napari-nsclc open NSCLC-NAT/", "napari-nsclc open slide.svs slide.xml",
         "xvfb-run -a napari-nsclc open MIDOG.json --screenshot midog.png"],
    )  # fmt: skip
    open_cmd.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or dataset folders")
    open_cmd.add_argument("--screenshot", type=Path, metavar="PNG", help="save a screenshot of the window and exit")
    open_cmd.set_defaults(run=_run_open)

    demo = _command(
        sub, "demo", "write a demo dataset of every layout and open it in napari",
        "Write a small dataset of every layout napari-nsclc reads (NSCLC-NAT first, on real stained tissue) "
        "and open it in napari, with a dock to switch between them.",
        ["napari-nsclc demo", "napari-nsclc demo --folder demo-data/",
         "xvfb-run -a napari-nsclc demo --screenshot demo.png"],
    )  # fmt: skip
    demo.add_argument("--folder", type=Path, help="write the datasets here instead of a temporary folder")
    demo.add_argument("--screenshot", type=Path, metavar="PNG", help="save a screenshot of the window and exit")
    demo.set_defaults(run=_run_demo)

    info = _command(
        sub, "info", "detected format, images and annotation counts per class",
        "Print the detected format, then per case the image and pixel size and the annotations per class, "
        "then totals over the dataset. Headless: imports neither napari nor Qt.",
        ["napari-nsclc info NSCLC-NAT/", "napari-nsclc info MIDOG.json --json"],
    )  # fmt: skip
    info.add_argument("path", type=Path, metavar="PATH", help="a file or dataset folder")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.set_defaults(run=_run_info)

    validate = _command(
        sub, "validate", "check a dataset's integrity and find augmentation families",
        "Check a whole dataset (any layout napari-nsclc reads) or one annotation file, headless and without "
        "writing to it.\n\nchecks (kinds in the output):\n"
        "  size-mismatch         an image and its mask of different sizes\n"
        "  value-outside-schema  mask values or classes that the class schema does not define\n"
        "  orphan, missing       a mask or XML with no image or slice; an image whose mask is missing\n"
        "  duplicate-id          one id or stem used twice (ids, two files of one stem, one FOV id)\n"
        "  outside-image         boxes and points outside their image\n"
        "  unreadable            a truncated image, a corrupt JSON or XML: listed with the reason, the rest checked\n"
        "  family-split          an augmentation family (flipped or 90-degree rotated copies, found by a perceptual\n"
        "                        hash) split across train and test or across the folds of a split file\n\n"
        "exit codes: 0 clean, 1 problems found, 2 unusable input (not a dataset, does not exist).",
        ["napari-nsclc validate NSCLC-NAT/", "napari-nsclc validate IGNITE/data --json",
         "napari-nsclc validate NuCLS/ --html nucls-report.html"],
    )  # fmt: skip
    validate.add_argument("path", type=Path, metavar="PATH", help="a dataset folder or annotation file")
    validate.add_argument("--json", action="store_true", help="print one JSON object: problems, families, counts")
    validate.add_argument("--html", type=Path, metavar="REPORT",
                          help="also write a self-contained HTML report to REPORT (refused inside PATH)")
    _add_parallel_options(validate)
    validate.set_defaults(run=_run_validate)

    convert = _command(
        sub, "convert", "convert annotations between formats",
        "Read SRC, say what the conversion keeps and loses (exact, lossy or refused) before writing, then "
        "write DST. Headless: imports neither napari nor Qt.",
        ["napari-nsclc convert NSCLC-NAT/ --to coco -o nat.json",
         "napari-nsclc convert MIDOG.json --to voc -o midog-voc/ --strict"],
    )  # fmt: skip
    convert.add_argument("source", type=Path, metavar="SRC", help="a file or dataset folder")
    convert.add_argument("--to", required=True, dest="to_format", metavar="FORMAT", help=_writable_formats_help())
    convert.add_argument("-o", "--output", required=True, type=Path, metavar="DST", help="the file or folder to write")
    convert.add_argument("--from", dest="from_format", metavar="FORMAT", help="skip detection and read as FORMAT")
    convert.add_argument("--overwrite", action="store_true", help="replace DST if it exists")
    convert.add_argument("--strict", action="store_true", help="refuse a conversion that would lose anything")
    _add_parallel_options(convert)
    convert.set_defaults(run=_run_convert)

    stats = _command(
        sub, "stats", "class distributions, objects per image and split, mask areas",
        "Count a whole dataset (any layout napari-nsclc reads) or one annotation file, headless and without "
        "writing to it: objects or pixels per class and layer, objects per image and per split, and mask area "
        "per class in µm² where the pixel size is known (else px²). Files that cannot be read are listed and "
        "the rest is counted.\n\nexit codes: 0 done, 1 some files could not be read (listed), 2 unusable input.",
        ["napari-nsclc stats NSCLC-NAT/", "napari-nsclc stats NuCLS/ --json",
         "napari-nsclc stats IGNITE/data --plots ignite-plots/ --workers 4"],
    )  # fmt: skip
    stats.add_argument("path", type=Path, metavar="PATH", help="a dataset folder or annotation file")
    stats.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    stats.add_argument("--plots", type=Path, metavar="DIR",
                       help="also write the plots as PNG files into DIR (refused inside PATH)")
    _add_parallel_options(stats)
    stats.set_defaults(run=_run_stats)

    formats = _command(
        sub, "formats", "list the formats napari-nsclc reads and writes",
        "List the formats this installation reads and writes; with --matrix, what converts to what, and how.",
        ["napari-nsclc formats", "napari-nsclc formats --matrix"],
    )  # fmt: skip
    formats.add_argument("--matrix", action="store_true",
                         help="print the conversion matrix: exact, lossy or refused for every reader and writer")
    formats.set_defaults(run=_run_formats)

    review = _command(
        sub, "review", "supervisor review: the queue and the report of a review store",
        "Supervisor review from the command line. 'status' prints a review store's queue: every case with its "
        "state, its annotators and its last change, then the number of cases per state. 'report' writes a "
        "folder of CSV tables, plots and an HTML page: states, work per annotator and case, and how each "
        "submission agrees with the original annotation. Headless.",
        ["napari-nsclc review status project/review.db",
         "napari-nsclc review status postgresql://lab@db.example.org/review --state submitted",
         "napari-nsclc review report project/review.db -o review-report/"],
    )  # fmt: skip
    actions = review.add_subparsers(dest="review_command", metavar="ACTION", required=True)
    status = _command(
        actions, "status", "print the queue: cases, states and annotators",
        "Print the queue of the review store STORE, filtered by state, annotator or dataset. A "
        "store that does not exist is an error, not a new store.",
        ["napari-nsclc review status project/review.db",
         "napari-nsclc review status project/review.db --state submitted --annotator alice --json"],
    )  # fmt: skip
    status.add_argument("store", metavar="STORE", help="a review.db file, or a sqlite:/// or postgresql:// URL")
    status.add_argument("--state", help="only cases in this state (new, in_progress, submitted, ...)")
    status.add_argument("--annotator", help="only cases assigned to this name")
    status.add_argument("--dataset", help="only cases of this dataset")
    status.add_argument("--json", action="store_true", help="print JSON instead of text")
    status.set_defaults(run=_run_review_status)
    report = _command(
        actions, "report", "write a report: CSV tables, plots and an HTML page",
        "Write the report of the review store STORE into the folder DIR (created if missing; an earlier "
        "report there is replaced): report.html, cases.csv, annotators.csv, states.csv, per_class.csv, "
        "events.csv and three plots. A store that does not exist is an error, not a new store.",
        ["napari-nsclc review report project/review.db -o review-report/",
         "napari-nsclc review report postgresql://lab@db.example.org/review -o /srv/www/review/"],
    )  # fmt: skip
    report.add_argument("store", metavar="STORE", help="a review.db file, or a sqlite:/// or postgresql:// URL")
    report.add_argument("-o", "--output", required=True, type=Path, metavar="DIR", help="the folder to write")
    report.set_defaults(run=_run_review_report)
    supervisors = _command(
        actions, "supervisors", "print or change who may approve cases and request changes",
        "Print the supervisors of the review store STORE, or change the list with --set, --add or --remove. "
        "Only a listed name may approve a case or request changes. This is attribution, not authentication: "
        "names are taken as typed. Changing the list of a store that does not exist yet creates it.",
        ["napari-nsclc review supervisors project/review.db",
         "napari-nsclc review supervisors project/review.db --set dr_smith dr_jones",
         "napari-nsclc review supervisors project/review.db --remove dr_jones"],
    )  # fmt: skip
    supervisors.add_argument("store", metavar="STORE", help="a review.db file, or a sqlite:/// or postgresql:// URL")
    change = supervisors.add_mutually_exclusive_group()
    change.add_argument("--set", nargs="+", metavar="NAME", help="make these names the whole list")
    change.add_argument("--add", nargs="+", metavar="NAME", help="add these names to the list")
    change.add_argument("--remove", nargs="+", metavar="NAME", help="take these names off the list")
    supervisors.set_defaults(run=_run_review_supervisors)
    return parser


def _command(sub, name: str, summary: str, description: str, examples: Sequence[str]) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` has a description and examples."""
    epilog = "examples:\n" + "\n".join(f"  {example}" for example in examples)
    return sub.add_parser(name, help=summary, description=description, epilog=epilog,
                          formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip


def command_reference() -> str:
    """Markdown for every command's ``--help``, as the parser prints it (``docs/cli.md`` embeds it)."""
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal: the page must not depend on it
    try:
        parser = _parser()
        parts = ["```", parser.format_help().rstrip(), "```"]
        subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
        for name, command in subparsers.choices.items():
            parts += ["", f"### {name}", "", "```", command.format_help().rstrip(), "```"]
            nested = [a for a in command._actions if isinstance(a, argparse._SubParsersAction)]  # noqa: SLF001
            for action_name, action in (nested[0].choices.items() if nested else ()):
                parts += ["", f"### {name} {action_name}", "", "```", action.format_help().rstrip(), "```"]
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous
    return "\n".join(parts) + "\n"


def _add_parallel_options(command: argparse.ArgumentParser) -> None:
    """``--workers N`` or ``--scheduler ADDRESS``: where a batch command's per-case work runs (docs/batch.md)."""
    where = command.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N",
                       help="worker processes on this machine; 1 works in this process (default: one per CPU, "
                            "for datasets of 100 cases or more)")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="run on an existing dask.distributed cluster, e.g. tcp://10.0.0.5:8786; its workers must "
                            "see the dataset (and the output) at the same paths")


def _log(line: str) -> None:
    """A batch command's progress and notes, on standard error: standard output stays the result."""
    print(line, file=sys.stderr, flush=True)


def _refuse_inside(target: Path | None, source: Path, option: str, command: str) -> None:
    """Batch commands never write into the dataset they read."""
    if target is None:
        return
    written, read = target.resolve(), source.resolve()
    if written == read or read in written.parents:
        raise NsclcFormatError(target, f"is inside {source}: {command} never writes into the dataset ({option})")


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


def _run_validate(args) -> int:
    from .batch import report_html, report_text
    from .batch.validate import validate

    if not args.path.exists():
        raise NsclcFormatError(args.path, "does not exist")
    _refuse_inside(args.html, args.path, "--html", "validate")
    result = validate(args.path, workers=args.workers, scheduler=args.scheduler, log=_log)
    if args.html is not None:
        report_html.write_report(result, args.html)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print("\n".join(report_text.text_lines(result)))
        if args.html is not None:
            print(f"wrote {args.html}")
    return result.exit_code


def _run_stats(args) -> int:
    from .batch import stats_plots, stats_report
    from .batch.stats import dataset_stats

    if not args.path.exists():
        raise NsclcFormatError(args.path, "does not exist")
    _refuse_inside(args.plots, args.path, "--plots", "stats")
    stats = dataset_stats(args.path, workers=args.workers, scheduler=args.scheduler, log=_log)
    written = stats_plots.write_plots(stats, args.plots) if args.plots is not None else []
    if args.json:
        print(json.dumps(stats.as_dict(), indent=2))
    else:
        print("\n".join(stats_report.text_lines(stats)))
        if args.plots is not None:
            print(f"wrote {len(written)} plot(s) to {args.plots}")
    return stats.exit_code


def _run_convert(args) -> int:
    from .batch.convert import convert

    # what the conversion keeps and loses is printed (say) before anything is written
    result = convert(args.source, args.to_format, args.output, from_format=args.from_format,
                     overwrite=args.overwrite, strict=args.strict, workers=args.workers, scheduler=args.scheduler,
                     say=print, log=_log)  # fmt: skip
    print("\n".join(result.summary()))
    return result.exit_code


def _run_review_status(args) -> int:
    from .review import STATES, open_store

    _require_store(args.store)
    if args.state is not None and args.state not in STATES:
        raise NsclcFormatError(args.store, f"{args.state!r} is not a review state (states: {', '.join(STATES)})")
    with open_store(args.store) as store:
        queue = store.queue(state=args.state, annotator=args.annotator, dataset=args.dataset)
    counts = {state: sum(1 for entry in queue if entry.state == state) for state in STATES}
    if args.json:
        rows = [{"dataset": e.dataset, "case": e.case, "state": e.state, "annotators": list(e.annotators),
                 "changed_at": e.changed_at.isoformat(), "changed_by": e.changed_by} for e in queue]  # fmt: skip
        print(json.dumps({"store": str(args.store), "cases": rows, "states": counts}, indent=2))
        return 0
    print(f"{args.store}: {len(queue)} case(s)")
    for entry in queue:
        who = ", ".join(entry.annotators) or "nobody"
        when = entry.changed_at.strftime("%Y-%m-%d %H:%M UTC")
        print(f"  {entry.dataset} {entry.case}: {entry.state} (assigned to {who}; last change {when} by "
              f"{entry.changed_by})")  # fmt: skip
    print("  " + ", ".join(f"{state} {count}" for state, count in counts.items()))
    return 0


def _require_store(store: str) -> None:
    """A store to read must exist: a mistyped path is an error, never a new, empty store."""
    if "://" not in store and not Path(store).is_file():
        raise NsclcFormatError(store, "does not exist (give a review.db file or a database URL)")


def _run_review_supervisors(args) -> int:
    from .review import open_store

    changing = args.set or args.add or args.remove
    if not changing:
        _require_store(args.store)
    created = changing and "://" not in args.store and not Path(args.store).is_file()
    with open_store(args.store) as store:
        names = set(store.supervisors())
        if changing:
            if args.set:
                wanted = set(args.set)
            elif args.add:
                wanted = names | set(args.add)
            else:
                unknown = set(args.remove) - names
                if unknown:
                    raise NsclcFormatError(args.store, f"{', '.join(sorted(unknown))} is not a supervisor here")
                wanted = names - set(args.remove)
            try:
                names = set(store.set_supervisors(wanted))
            except ValueError as error:
                raise NsclcFormatError(args.store, str(error)) from error
    if created:
        print(f"created the review store {args.store}")
    print(f"{args.store}: supervisors: {', '.join(sorted(names)) or 'nobody'}")
    return 0


def _run_review_report(args) -> int:
    from .review import open_store
    from .review.report import annotator_table, collect, submissions, write_snapshot

    _require_store(args.store)
    if args.output.exists() and not args.output.is_dir():
        raise NsclcFormatError(args.output, "is a file, not a folder: give the folder to write the report in")
    with open_store(args.store) as store:
        snapshot = collect(store)
    page = write_snapshot(snapshot, args.output)
    annotators = annotator_table(snapshot.queue, snapshot.events).rows  # assigned a case, or submitted one
    print(f"wrote {page}: {len(snapshot.queue)} case(s), {len(submissions(snapshot.events))} submission(s), "
          f"{len(annotators)} annotator(s), {len(snapshot.events)} event(s)")  # fmt: skip
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
    from .formats.slide import is_slide

    paths = [str(p) for p in args.paths]
    # the arguments first, the display after: a missing file is reported as a missing file
    for path in args.paths:
        if not path.exists():
            raise NsclcFormatError(path, "does not exist")
    pair = is_image_mask_pair(paths)
    if not pair:
        for path in args.paths:
            registry.detect(path)  # fail on the command line, before a window opens
    _require_display("open")
    viewer = _viewer()
    if args.screenshot:
        viewer.window.resize(1400, 900)
    if pair:
        add_to_viewer(viewer, read_image_mask_pair_layers(paths))
    else:
        from .widgets.case_navigator import CaseNavigator

        # docked before opening, so that it picks up a dataset's cases as its layers arrive
        viewer.window.add_dock_widget(CaseNavigator(viewer), name="Cases", area="right", tabify=True)
        if any(is_slide(path) for path in args.paths):
            from .widgets.gigapixel import LabelPyramidWidget

            # shows the slide's label pyramid, or offers to create it, as the slide arrives
            viewer.window.add_dock_widget(LabelPyramidWidget(viewer), name="Label pyramid", area="right", tabify=True)
        viewer.open(paths, plugin="napari-nsclc")
        from .layers import plugin_metadata

        if any(plugin_metadata(layer).get("kind") == "nuclei" for layer in viewer.layers):
            from .widgets.nuclei import NucleiWidget

            viewer.window.add_dock_widget(NucleiWidget(viewer), name="Nuclei", area="right", tabify=True)
    if args.screenshot:
        return _screenshot_and_close(viewer, args.screenshot)
    return _run_event_loop()


def _screenshot_and_close(viewer, path: Path) -> int:
    """Fit the view, save the whole window to ``path`` and close it."""
    _process_events()
    viewer.reset_view()
    _process_events()
    viewer.screenshot(str(path), canvas_only=False)
    print(f"screenshot saved to {path}")
    viewer.close()
    return 0


def _run_demo(args) -> int:
    from . import demo

    _require_display("demo")
    return demo.run(args.folder, args.screenshot, make_viewer=_viewer, run_event_loop=_run_event_loop)


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
    # On PyQt5, napari shows once per session that its PyQt5 support is deprecated. It has no
    # public switch for that notice, so it is left alone; with QT_API=pyqt6 there is none.
    import napari

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
