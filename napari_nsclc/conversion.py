"""What a conversion keeps, changes or cannot do, decided before anything is written.

Every readable format or layout declares, in its
:class:`~napari_nsclc.registry.FormatSpec`, the *kinds* of annotation it
produces (``produces``), the per-object fields only its own family of formats
keeps (``extras``) and that family (``family``). Every writer declares how it
handles each kind (``holds``), and a dataset writer which sources it writes
(``accepts``). From these declarations alone:

* :func:`matrix` gives one verdict per (reader, writer) pair: **exact**
  (read, write and read again gives the same objects, classes, ids,
  coordinates and extra fields), **lossy** (what is lost is named) or
  **refused** (with a one-line reason);
* :func:`plan` looks at the cases actually read and says, before anything is
  written, what each kind becomes, counted per class. A plan that is refused
  (or lossy, with ``strict=True``) stops the write: :func:`check` raises.

The matrix describes a file holding every kind its format can hold; a file
holding fewer kinds can convert better than its matrix cell, never worse,
except where it exceeds a format's own limits (a 16-bit mask into an 8-bit
palette PNG), which the writer refuses with the reason.
No napari or Qt import.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .model import BoxSet, Case, LabelMask, NothingToWrite, NsclcFormatError, PointSet, Polygon, PolygonSet, image_size

__all__ = [
    "BOUNDS",
    "CENTRES",
    "DROPPED",
    "EXACT",
    "KINDS",
    "KEPT",
    "LOSSY",
    "PIXELS",
    "REFUSED",
    "SPLIT_HOLES",
    "Cell",
    "Handling",
    "Plan",
    "check",
    "drop",
    "exact",
    "kinds_of",
    "lossy",
    "matrix",
    "needs_image_size",
    "plan",
    "refused",
    "tagged_layers",
    "vector_sets",
    "verdict_for",
    "written_masks",
]

EXACT, LOSSY, REFUSED = "exact", "lossy", "refused"
_RANK = {EXACT: 0, LOSSY: 1, REFUSED: 2}

#: Kinds of annotation content, with the words messages use for them.
KINDS: dict[str, str] = {
    "mask": "class masks",
    "instances": "instance masks",
    "mask stack": "label stacks (one label per patch)",
    "pyramid mask": "mask pyramids",
    "polygons": "polygons",
    "holed polygons": "polygons with holes",
    "parts": "objects of several polygons",
    "lines": "open lines",
    "boxes": "boxes",
    "slice boxes": "boxes on slices",
    "cells": "cells stored as boxes",
    "points": "points",
    "region": "annotated regions",
}


#: What a writer does to one kind, as a code (the matrix test checks each by reading the output back):
KEPT = "kept"  # the objects come back as they were (masks: the same pixels)
BOUNDS = "bounds"  # each object becomes its bounding box
CENTRES = "centres"  # each cell becomes a point at its box centre
SPLIT_HOLES = "split holes"  # each hole becomes an object of its own, of the same class
PIXELS = "pixels"  # the objects become pixels (drawn into a class mask, or RLE)
DROPPED = "dropped"  # not written


@dataclass(frozen=True)
class Handling:
    """How a writer handles one kind: its verdict, what happens in words (``how``) and as a code (``effect``)."""

    verdict: str
    how: str
    effect: str = KEPT

    @property
    def writes(self) -> bool:
        """Whether anything of the kind is written."""
        return self.effect != DROPPED and self.verdict != REFUSED


def exact(how: str = "kept") -> Handling:
    """The kind is written and read back unchanged."""
    return Handling(EXACT, how)


def lossy(how: str, effect: str) -> Handling:
    """The kind is written, changed as ``how`` says (e.g. "become their bounding boxes") and ``effect`` codes."""
    return Handling(LOSSY, how, effect)


def drop(how: str) -> Handling:
    """The kind is not written, for the reason ``how`` gives; the rest of the case is."""
    return Handling(LOSSY, how, DROPPED)


def refused(why: str) -> Handling:
    """Any of this kind makes the whole conversion refused."""
    return Handling(REFUSED, why, DROPPED)


# --------------------------------------------------------------------------- the cases' content


def _mask_is_placeholder(mask: LabelMask) -> bool:
    """An empty mask made for a file the source lacks, which nobody painted on."""
    if not mask.attributes.get("missing"):
        return False
    data = mask.data[-1] if mask.multiscale else mask.data
    return not np.asarray(data).any()


def written_masks(case: Case) -> list[LabelMask]:
    """The masks a writer writes: not empty placeholders nobody painted, not masks drawn from the case's objects.

    NuCLS masks draw the CSV's nuclei again (``attributes["duplicate_of"]``);
    writing both would write every nucleus twice.
    """
    names = {objects.name for objects in case.annotation_sets()}
    return [m for m in case.masks if not _mask_is_placeholder(m) and m.attributes.get("duplicate_of") not in names]


def vector_sets(case: Case) -> tuple[list[PolygonSet], list[PointSet]]:
    """The case as polygons and points: its own, its boxes as rectangles, its masks traced (holes kept).

    Cells stored as boxes (MIDOG, IGNITE) are points; an image-level region
    (IGNITE's ``annotated_xyxy``) is not an object and is left out. Traced
    outlines carry ``attributes["traced"]``: they follow pixel edges and may
    touch themselves at a pixel corner (see :func:`~napari_nsclc.geometry.valid_parts`).
    """
    from .geometry import labels_to_instances, mask_instances

    polygon_sets = list(case.polygons)
    for boxes in case.boxes:
        if boxes.planes is not None or (boxes.attributes and boxes.attributes[0].get("image_extra")):
            continue
        rectangles = [Polygon(np.array([[y0, x0], [y0, x1], [y1, x1], [y1, x0]]), kind="rectangle")
                      for y0, x0, y1, x1 in boxes.bounds]
        polygon_sets.append(PolygonSet(boxes.name, rectangles, boxes.classes, boxes.schema, boxes.attributes))
    for mask in written_masks(case):
        if mask_kind(mask) not in ("mask", "instances"):
            continue  # mask pyramids and label stacks are not traced here
        data = np.asarray(mask.data)
        if mask.kind == "instance":
            traced = mask_instances(data, mask.instance_classes, mask.schema, mask.name)
            attributes = [{**a, "traced": True} for a in traced.attributes]
        else:
            traced = labels_to_instances(data, mask.schema, mask.name)
            attributes = [{"traced": True} for _ in traced.polygons]
        polygon_sets.append(PolygonSet(traced.name, traced.polygons, traced.classes, traced.schema, attributes))
    return polygon_sets, list(case.points)


def tagged_layers(case: Case) -> set[str]:
    """Names of the layers that share a model type with another layer of the case.

    A writer that puts them into one file (COCO, GeoJSON) records each
    object's layer, so that NSCLC-NAT's two masks or CoCaHis's annotators
    stay apart.
    """
    return {name for name, _ in _same_type_layers(case, None, by_mask_kind=False)}


def mask_kind(mask: LabelMask) -> str:
    """``"mask"``, ``"instances"``, ``"pyramid mask"`` or ``"mask stack"``."""
    if mask.multiscale:
        return "pyramid mask"
    if len(mask.data.shape) == 3:
        return "mask stack"
    return "instances" if mask.kind == "instance" else "mask"


def object_kinds(objects) -> list[str]:
    """The kind of each object of a point, box or polygon set."""
    if isinstance(objects, PointSet):
        return ["cells" if "box_size" in a else "points" for a in objects.attributes]
    if isinstance(objects, BoxSet):
        if objects.attributes and objects.attributes[0].get("image_extra"):
            return ["region"] * len(objects)
        return ["boxes" if objects.planes is None else "slice boxes"] * len(objects)
    keys = object_keys(objects)
    several = {key for key, n in Counter(keys).items() if n > 1}
    holed = {key for key, polygon in zip(keys, objects.polygons, strict=True) if polygon.holes}
    kinds = []
    for key, polygon in zip(keys, objects.polygons, strict=True):
        if polygon.kind == "path":
            kinds.append("lines")
        else:  # holes decide first: a COCO object with holes goes out as RLE, whatever its parts
            kinds.append("holed polygons" if key in holed else "parts" if key in several else "polygons")
    return kinds


def object_keys(objects: PolygonSet) -> list:
    """One key per polygon; the parts of one object (a COCO annotation, a GeoJSON MultiPolygon) share it."""
    return [a.get("object", ("polygon", i)) for i, a in enumerate(objects.attributes)]


@dataclass
class _Tally:
    """Objects per kind and class (masks: one per mask layer, counted under the layer's name)."""

    counts: dict[str, Counter] = field(default_factory=dict)

    def add(self, kind: str, class_name: str) -> None:
        self.counts.setdefault(kind, Counter())[class_name] += 1


def kinds_of(cases: Sequence[Case]) -> _Tally:
    """What the cases hold, per kind and class (masks count one per mask layer)."""
    tally = _Tally()
    for case in cases:
        for mask in written_masks(case):
            tally.add(mask_kind(mask), mask.name)
        for objects in case.annotation_sets():
            for kind, name, _attributes in _objects(objects):
                tally.add(kind, str(name))
    return tally


def _objects(objects):
    """``(kind, class, attributes)`` per object of a set: the parts of one polygon object count once."""
    kinds = object_kinds(objects)
    if not isinstance(objects, PolygonSet):
        return list(zip(kinds, objects.classes, objects.attributes, strict=True))
    firsts = {}
    for i, key in enumerate(object_keys(objects)):
        firsts.setdefault(key, i)
    return [(kinds[i], objects.classes[i], objects.attributes[i]) for i in firsts.values()]


def origin_of(case: Case) -> str:
    """The format the case's objects were read from (a slide's companion annotation file for slides)."""
    origin = case.provenance.format
    if origin == "slide":
        for companion in ("asap", "geojson", "imagescope"):
            if companion in case.document:
                return companion
    return origin


def _family(name: str) -> str:
    from . import registry

    spec = registry.find_format(name)
    return spec.family if spec is not None and spec.family else name


def _extra_fields(case: Case, writer_family: str) -> Counter:
    """Per field name, how many objects carry a field the writer's family cannot keep."""
    from . import registry

    origin = origin_of(case)
    spec = registry.find_format(origin)
    if spec is None or spec.object_fields is None or _family(origin) == writer_family:
        return Counter()
    found: Counter = Counter()
    for objects in case.annotation_sets():
        for _kind, _name, attributes in _objects(objects):
            found.update(spec.object_fields(attributes))
    return found


#: Kinds drawn as pixels; a writer may treat several mask layers differently from several object layers.
_RASTER = frozenset({"mask", "instances", "mask stack", "pyramid mask"})


def _layer_policy(spec, group: str) -> str:
    """How ``spec`` writes several layers of one type: for ``group`` "masks" or "objects"."""
    return spec.layers.get(group, "separate") if isinstance(spec.layers, Mapping) else spec.layers


def _same_type_layers(
    case: Case, writes: Mapping[str, Handling] | None, *, by_mask_kind: bool = True
) -> list[tuple[str, str]]:
    """``(set name, "masks" | "objects")`` of the sets of one type that would share one file.

    ``writes`` is the writer's ``holds``: sets of kinds it does not write do
    not count (``None``: every set counts). Masks are of one type when of one
    kind (class or instance masks, which VOC keeps in separate folders), or,
    without ``by_mask_kind``, whenever they are masks.
    """
    def written(kind: str) -> bool:
        return writes is None or writes.get(kind, drop("")).writes

    by_type: dict[object, list[str]] = {}
    for mask in written_masks(case):
        if written(mask_kind(mask)):
            by_type.setdefault((LabelMask, mask_kind(mask) if by_mask_kind else None), []).append(mask.name)
    for objects in case.annotation_sets():
        if len(objects) and any(written(k) for k in set(object_kinds(objects))):
            by_type.setdefault(type(objects), []).append(objects.name)
    return [(n, "objects" if isinstance(kind, type) else "masks")
            for kind, group in by_type.items() if len(group) > 1 for n in group]


# --------------------------------------------------------------------------- the plan


@dataclass
class Line:
    """What one kind becomes: ``count`` objects of ``classes``, handled as ``handling``."""

    kind: str
    count: int
    classes: Counter
    handling: Handling

    def text(self) -> str:
        label = KINDS.get(self.kind, self.kind)
        per_class = ", ".join(f"{name} {n:,}" for name, n in self.classes.most_common())
        return f"{self.count:,} {label} ({per_class}): {self.handling.how}"


@dataclass
class Plan:
    """What writing the cases as ``writer`` does, before it is done.

    ``lines`` say what each kind becomes, ``losses`` name what else is not
    kept (fields, layer names), ``notes`` what is skipped on purpose (empty
    placeholder masks), and ``refusal`` why nothing may be written.
    """

    source: str
    writer: str
    lines: list[Line] = field(default_factory=list)
    losses: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    refusal: str | None = None
    #: The refusal comes from the files (an image size nobody gives), not from the formats.
    precondition: bool = False
    #: The refusal is that the cases hold nothing the writer writes.
    empty: bool = False

    @property
    def verdict(self) -> str:
        if self.refusal:
            return REFUSED
        if self.losses or any(line.handling.verdict != EXACT for line in self.lines):
            return LOSSY
        return EXACT

    def lost(self) -> list[str]:
        """What the conversion loses, one phrase each (empty when exact)."""
        changed = [line.text() for line in self.lines if line.handling.verdict != EXACT]
        return changed + self.losses

    def describe(self) -> list[str]:
        """The lines printed before writing: a head line, then one line per kind, loss and note."""
        head = f"{self.source} -> {self.writer}: {self.verdict}"
        if self.refusal:
            return [f"{head}: {self.refusal}"]
        body = [f"  {line.text()}" for line in self.lines]
        body += [f"  lost: {loss}" for loss in self.losses]
        body += [f"  note: {note}" for note in self.notes]
        return [head, *body]


def plan(cases: Sequence[Case], writer, source: str = "") -> Plan:
    """What writing ``cases`` with the writer ``writer`` (a FormatSpec or its name) keeps and loses.

    Parameters
    ----------
    cases : sequence of Case
        As read (or as built from napari layers).
    writer : FormatSpec or str
    source : str
        How to name the source in messages (default: its format).

    Returns
    -------
    Plan
    """
    from . import registry

    spec = registry.get_format(writer) if isinstance(writer, str) else writer
    origins = list(dict.fromkeys(origin_of(c) for c in cases))
    result = Plan(source or ", ".join(origins) or "nothing", spec.name)
    result.refusal = _refused_outright(cases, spec, origins)
    if result.refusal:
        return result
    tally = kinds_of(cases)
    for kind in (k for k in KINDS if k in tally.counts):
        handling = spec.holds.get(kind) or drop(f"not written: {spec.title} has no place for {KINDS[kind]}")
        result.lines.append(Line(kind, sum(tally.counts[kind].values()), tally.counts[kind], handling))
    refused_kind = next((line for line in result.lines if line.handling.verdict == REFUSED), None)
    if refused_kind is not None:
        result.refusal = f"{refused_kind.count:,} {KINDS[refused_kind.kind]}: {refused_kind.handling.how}"
    elif not any(line.handling.writes for line in result.lines):
        held = ", ".join(KINDS[k] for k in spec.holds if spec.holds[k].writes) or "nothing"
        found = ", ".join(KINDS[line.kind] for line in result.lines) or "no annotations"
        result.refusal = f"nothing to write: {spec.title} holds {held}; the source has {found}"
        result.empty = True
    elif spec.check is not None and (problem := spec.check(cases)):
        result.refusal, result.precondition = problem, True
    if result.refusal:
        return result
    result.losses = _other_losses(cases, spec)
    placeholders = [f"{case.name}: {m.name}" for case in cases for m in case.masks if _mask_is_placeholder(m)]
    if placeholders:
        shown = "; ".join(placeholders[:3]) + (f" and {len(placeholders) - 3} more" if len(placeholders) > 3 else "")
        result.notes.append(f"{len(placeholders)} mask(s) missing from the source and not painted are not written "
                            f"({shown})")
    return result


def _refused_outright(cases: Sequence[Case], spec, origins: list[str]) -> str | None:
    """Why nothing of ``cases`` may be written by ``spec``, whatever they hold; None when they may."""
    if spec.write is None:
        return f"napari-nsclc cannot write {spec.title}"
    mixed = next((c.document["layers_from"] for c in cases if len(c.document.get("layers_from", ())) > 1), None)
    if mixed:
        return (f"the layers come from {len(mixed)} cases ({'; '.join(mixed)}), each on its own pixel grid: "
                "save each case's layers on their own")
    foreign = [o for o in origins if spec.accepts is not None and o not in spec.accepts]
    return _not_accepted(spec, foreign[0]) if foreign else None


def _other_losses(cases: Sequence[Case], spec) -> list[str]:
    """Losses besides the kinds: fields only the source's family keeps, and layers that share one file."""
    extras: Counter = Counter()
    merged: dict[str, list[str]] = {"merged": [], "first": []}
    for case in cases:
        extras.update(_extra_fields(case, spec.family or spec.name))
        for name, group in _same_type_layers(case, spec.holds):
            policy = _layer_policy(spec, group)
            if policy in merged and name not in merged[policy]:
                merged[policy].append(name)
    losses = []
    if extras:
        fields = ", ".join(f"{name} ({n:,})" for name, n in extras.most_common())
        losses.append(f"fields {spec.title} does not keep: {fields}")
    if merged["merged"]:
        names = ", ".join(repr(n) for n in merged["merged"])
        losses.append(f"layers {names} are written into one file; which object came from which is not kept")
    if merged["first"]:
        first, rest = merged["first"][0], ", ".join(repr(n) for n in merged["first"][1:])
        losses.append(f"one mask per image: {first!r} is written, {rest} not")
    return losses


def needs_image_size(writer: str, *, only_to_draw: bool = False):
    """A writer ``check``: refuse cases whose image size nobody gives (COCO and VOC record it, drawing needs it).

    With ``only_to_draw``, only cases whose objects must be drawn into a mask
    need it (a mask has its own size).
    """

    def check(cases: Sequence[Case]) -> str | None:
        unknown = [case.name for case in cases
                   if (not only_to_draw or case.polygons) and image_size(case) is None]
        if not unknown:
            return None
        shown = ", ".join(unknown[:3]) + (f" and {len(unknown) - 3} more" if len(unknown) > 3 else "")
        return (f"{writer} needs each image's width and height, and the image of {shown} is not known "
                "(put the image or slide beside the annotation file, named like it)")

    return check


def _not_accepted(spec, origin: str) -> str:
    from . import registry

    found = registry.find_format(origin)
    title = registry.short_title(found) if found is not None else origin
    return (f"{spec.name} writes back data read as {spec.name}, and this is {title}; "
            "write an interchange format (coco, voc, geojson, masks) instead")


def check(cases: Sequence[Case], writer, *, strict: bool = False, target=None, planned: Plan | None = None) -> Plan:
    """:func:`plan` (or ``planned``, made before), raising :class:`NsclcFormatError` naming ``target``
    when it is refused, or lossy and ``strict``."""
    result = planned if planned is not None else plan(cases, writer)
    where = target if target is not None else result.writer
    if result.refusal:
        refused = NothingToWrite if result.empty else NsclcFormatError
        raise refused(where, f"refused: {result.refusal}")
    if strict and result.verdict == LOSSY:
        raise NsclcFormatError(where, f"refused (strict): the conversion would lose {'; '.join(result.lost())}")
    return result


# --------------------------------------------------------------------------- the matrix


#: Why a dataset's own writer refuses another source: it writes back what was read from that dataset.
OWN_DATASET_ONLY = "a dataset writer writes back only what was read from its dataset"


@dataclass(frozen=True)
class Cell:
    """One (reader, writer) verdict, with what happens in words.

    ``unless`` names a condition of the files themselves under which the
    writer refuses them although the formats agree (COCO needs each image's
    size, which an annotation file without its slide does not give).
    """

    verdict: str
    why: tuple[str, ...] = ()
    unless: str = ""

    def text(self) -> str:
        text = self.verdict + (": " + "; ".join(self.why) if self.why else "")
        return text + (f" (refused {self.unless})" if self.unless else "")


def verdict_for(row, writer) -> Cell:
    """The verdict for converting what ``row`` reads into ``writer`` (both FormatSpecs)."""
    if writer.write is None:
        return Cell(REFUSED, (f"{writer.title} is read only",))
    if not row.produces:
        return Cell(REFUSED, ("holds images only, no annotations",))
    if writer.accepts is not None and row.name not in writer.accepts:
        return Cell(REFUSED, (OWN_DATASET_ONLY,))
    handled = [(kind, writer.holds.get(kind) or drop("not written")) for kind in KINDS if kind in row.produces]
    for kind, handling in handled:
        if handling.verdict == REFUSED:
            return Cell(REFUSED, (f"{KINDS[kind]}: {handling.how}",))
    if not any(h.writes for _, h in handled):
        return Cell(REFUSED, (f"nothing to write: {writer.name} holds no {', '.join(KINDS[k] for k, _ in handled)}",))
    why = [f"{KINDS[k]}: {h.how}" for k, h in handled if h.verdict != EXACT]
    if row.extras and (row.family or row.name) != (writer.family or writer.name):
        why.append(f"{', '.join(row.extras)} not kept")
    if row.layered:
        policy = _layer_policy(writer, "masks" if row.produces & _RASTER else "objects")
        if policy == "merged":
            why.append("layers merged")
        elif policy == "first":
            why.append("first layer only")
    if writer.check is not None and row.sized is None:
        return Cell(REFUSED, (f"{writer.name} needs each image's size, which {row.name} files never give",))
    unless = "when no image beside the file gives its size" if writer.check is not None and not row.sized else ""
    return Cell(LOSSY if why else EXACT, tuple(why), unless)


def matrix() -> dict[tuple[str, str], Cell]:
    """``{(reader name, writer name): Cell}`` for every readable format and every writer."""
    from . import registry

    specs = sorted(registry.all_formats(), key=lambda s: s.name)
    rows = [s for s in specs if s.read is not None]
    writers = [s for s in specs if s.write is not None]
    return {(row.name, w.name): verdict_for(row, w) for row in rows for w in writers}


def matrix_table(cells: Mapping[tuple[str, str], Cell] | None = None) -> str:
    """The matrix as text: rows are readers, columns numbered writers, one letter per cell (E, L, -)."""
    cells = matrix() if cells is None else cells
    rows = list(dict.fromkeys(r for r, _ in cells))
    writers = list(dict.fromkeys(w for _, w in cells))
    letter = {EXACT: "E", LOSSY: "L", REFUSED: "-"}
    width = max(len(r) for r in rows)
    lines = [" " * width + "  " + " ".join(f"{i:>2}" for i in range(1, len(writers) + 1))]
    lines += [f"{r:<{width}}  " + " ".join(f"{letter[cells[(r, w)].verdict]:>2}" for w in writers) for r in rows]
    lines.append("")
    lines += [f"{i:>2} {w}" for i, w in enumerate(writers, start=1)]
    lines.append("E exact, L lossy (what is lost is printed before writing), - refused")
    return "\n".join(lines)


def explain(cells: Mapping[tuple[str, str], Cell] | None = None) -> Iterable[str]:
    """One line per lossy or refused cell, saying why."""
    cells = matrix() if cells is None else cells
    for (row, writer), cell in cells.items():
        if cell.verdict != EXACT:
            yield f"{row} -> {writer}: {cell.text()}"
