"""PASCAL VOC detection XML: one ``<annotation>`` file per image.

Reads the files written by the VOC devkit, labelme, LabelImg and CVAT: empty
elements, float coordinates, ``occluded``, CVAT ``<attributes>``, VOC
``<part>`` boxes and capitalised tags (``<Difficult>`` in Lung-PET-CT-Dx).

Nothing is dropped. Every box keeps, in its ``attributes``, the index of its
``<object>`` element and the coordinate text as written; the case keeps the
whole source XML in ``Case.document["voc_xml"]``. The writer re-parses that
text, changes only what was edited (a ``name``, the four ``bndbox`` values),
removes deleted objects and appends new ones with the same layout as their
neighbours. An untouched file is written back byte for byte.

Coordinates are kept as written in the file (VOC pixel indices), as
``(ymin, xmin, ymax, xmax)`` in :class:`~napari_nsclc.model.BoxSet`.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as DET

from .. import imageio
from .._atomic import atomic_write_text, refuse_overwrite
from ..conversion import BOUNDS, exact, lossy, needs_image_size
from ..model import CORNER, BoxSet, Case, ClassSchema, ImageRef, NsclcFormatError, Provenance, from_file, to_file
from ..registry import FormatSpec
from ._xmlsafe import refusal

__all__ = [
    "FORMAT",
    "VocObject",
    "boxes_of_case",
    "parse_voc",
    "read_voc",
    "render_voc",
    "write_voc",
]

#: The bndbox keys, in the order VOC writes them.
BOX_KEYS = ("xmin", "ymin", "xmax", "ymax")
_ROOT_PATTERN = re.compile(rb"<annotation[\s>]")


@dataclass
class VocObject:
    """One ``<object>`` of a VOC file, in model terms.

    Parameters
    ----------
    name : str
        The class name (``<name>``).
    bounds : tuple of float
        ``(ymin, xmin, ymax, xmax)`` in pixels, as written in the file.
    attributes : dict
        Everything else about the object, verbatim (see :func:`parse_voc`).
    """

    name: str
    bounds: tuple[float, float, float, float]
    attributes: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- element helpers


def _child(element, tag: str):
    """The first child called ``tag``, ignoring case (``<Difficult>`` vs ``<difficult>``)."""
    wanted = tag.lower()
    for child in element:
        if isinstance(child.tag, str) and child.tag.lower() == wanted:
            return child
    return None


def _text(element, tag: str) -> str | None:
    child = _child(element, tag)
    if child is None:
        return None
    return (child.text or "").strip()


def _number(text: str | None) -> float:
    """A VOC coordinate as float; empty or missing gives NaN."""
    if text is None or not text.strip():
        return math.nan
    return float(text)


def _object_elements(root) -> list:
    return [child for child in root if isinstance(child.tag, str) and child.tag == "object"]


def _cvat_attributes(element) -> dict[str, str]:
    """CVAT's ``<attributes><attribute><name/><value/></attribute></attributes>``."""
    block = _child(element, "attributes")
    if block is None:
        return {}
    out = {}
    for attribute in block:
        name = _text(attribute, "name")
        if name is not None:
            out[name] = _text(attribute, "value") or ""
    return out


def _parts(element) -> list[dict[str, Any]]:
    """VOC person-layout ``<part>`` boxes as ``{"name", "bndbox"}`` dicts."""
    parts = []
    for part in element:
        if part.tag != "part":
            continue
        box = _child(part, "bndbox")
        parts.append(
            {
                "name": _text(part, "name") or "",
                "bndbox": {key: (_text(box, key) or "") for key in BOX_KEYS} if box is not None else {},
            }
        )
    return parts


# --------------------------------------------------------------------------- reading


def parse_voc(text: str | bytes, source: str | Path = "<xml>") -> tuple[dict[str, Any], list[VocObject], list[str]]:
    """Parse VOC XML text.

    Parameters
    ----------
    text : str or bytes
        The file's content.
    source : str or Path
        The file name, used in messages.

    Returns
    -------
    header : dict
        ``folder``, ``filename``, ``path``, ``width``, ``height``, ``depth``
        (ints or ``None``) and ``segmented``, as written.
    objects : list of VocObject
        The objects that have a usable box, in file order. Each object's
        ``attributes`` hold ``voc_index`` (position among the ``<object>``
        elements), ``bndbox`` (the four coordinate strings as written) and the
        scalar fields found (``pose``, ``truncated``, ``difficult``,
        ``occluded``, ``attributes`` from CVAT, ``parts``).
    warnings : list of str
        One per object that was skipped or is suspicious, naming the file and
        the object.

    Raises
    ------
    NsclcFormatError
        If the text is not XML or its root is not ``<annotation>``.
    """
    name = Path(str(source)).name
    try:
        root = DET.fromstring(text)
    except DET.ParseError as error:
        raise NsclcFormatError(source, f"is not well-formed XML ({error})") from error
    except DefusedXmlException as error:  # entity tricks: said in words, not as defusedxml's repr
        raise NsclcFormatError(source, f"was refused by the safe XML parser: {refusal(error)}") from error
    except Exception as error:  # noqa: BLE001 - any other parser failure, in words
        raise NsclcFormatError(source, f"cannot be parsed as XML: {str(error) or type(error).__name__}") from error
    if root.tag != "annotation":
        raise NsclcFormatError(source, f"is not a PASCAL VOC file: its root element is <{root.tag}>, not <annotation>")

    size = _child(root, "size")
    header: dict[str, Any] = {key: _text(root, key) for key in ("folder", "filename", "path", "segmented")}
    for key in ("width", "height", "depth"):
        value = _text(size, key) if size is not None else None
        try:
            header[key] = int(float(value)) if value else None
        except ValueError:
            header[key] = None

    objects: list[VocObject] = []
    warnings: list[str] = []
    elements = _object_elements(root)
    if not elements:
        warnings.append(f"{name}: no <object> in the file (an annotation file with no box)")
    for index, element in enumerate(elements):
        label = f"{name}: object {index}"
        class_name = _text(element, "name")
        box = _child(element, "bndbox")
        if not class_name:
            warnings.append(f"{label}: no <name>; the box was kept under class 'unnamed'")
            class_name = "unnamed"
        if box is None:
            warnings.append(f"{label} ({class_name}): no <bndbox>; skipped (kept in the file when saving)")
            continue
        strings = {key: (_text(box, key) or "") for key in BOX_KEYS}
        try:
            xmin, ymin, xmax, ymax = (_number(strings[key]) for key in BOX_KEYS)
        except ValueError:
            warnings.append(f"{label} ({class_name}): bndbox {strings} is not numeric; skipped")
            continue
        if any(math.isnan(v) for v in (xmin, ymin, xmax, ymax)):
            warnings.append(f"{label} ({class_name}): bndbox has an empty coordinate {strings}; skipped")
            continue
        if xmax < xmin or ymax < ymin:
            warnings.append(f"{label} ({class_name}): bndbox has max < min {strings}; kept as written")
        width, height = header["width"], header["height"]
        if width and height and (xmin < 0 or ymin < 0 or xmax > width or ymax > height):
            warnings.append(
                f"{label} ({class_name}): box {strings} lies partly outside the {width}x{height} image; kept"
            )
        attributes: dict[str, Any] = {"voc_index": index, "bndbox": strings}
        for key in ("pose", "truncated", "difficult", "occluded"):
            value = _text(element, key)
            if value is not None:
                attributes[key] = value
        extra = _cvat_attributes(element)
        if extra:
            attributes["attributes"] = extra
        parts = _parts(element)
        if parts:
            attributes["parts"] = parts
        bounds = tuple(from_file((ymin, xmin, ymax, xmax), CORNER).tolist())  # corner coordinates, see model
        objects.append(VocObject(class_name, bounds, attributes))
    return header, objects, warnings


def _find_image(xml_path: Path, header: dict[str, Any]) -> Path | None:
    """The image a VOC file describes, if it is next to it or in ``../JPEGImages``."""
    filename = header.get("filename")
    if not filename or filename.lower().startswith("unknow"):
        return None
    for folder in (xml_path.parent, xml_path.parent.parent / "JPEGImages"):
        candidate = folder / filename
        if candidate.is_file():
            return candidate
    return None


def case_from_voc(path: Path, text: str, schema: ClassSchema | None = None, image_path: Path | None = None) -> Case:
    """One :class:`Case` from the text of a VOC file.

    Parameters
    ----------
    path : Path
        The XML file (for names and messages).
    text : str
        Its content.
    schema : ClassSchema, optional
        The classes; by default one is made from the names in the file.
    image_path : Path, optional
        The image; by default looked for next to the XML or in ``../JPEGImages``.
    """
    header, objects, warnings = parse_voc(text, path)
    names = [o.name for o in objects]
    if schema is None:
        schema = ClassSchema.from_names("voc", names)
    missing = [n for n in dict.fromkeys(names) if n not in schema]
    if missing:
        first_code = max(schema.codes, default=0) + 1
        schema = schema.with_classes(ClassSchema.from_names("voc", missing, first_code=first_code).classes)
    image_path = image_path or _find_image(path, header)
    shape = (header["height"], header["width"]) if header["height"] and header["width"] else None
    data, rgb = (None, False)
    if image_path is not None:
        found = imageio.header(image_path)  # no pixels decoded until napari draws them
        data, rgb = imageio.deferred_image(image_path, found), len(found.shape) == 3
        if shape is not None and tuple(data.shape[:2]) != shape:
            warnings.append(
                f"{path.name}: <size> says {shape[1]}x{shape[0]} but {image_path.name} is "
                f"{data.shape[1]}x{data.shape[0]}; the image's own size is used"
            )
        shape = tuple(data.shape[:2])
    boxes = BoxSet(
        "boxes",
        [o.bounds for o in objects],
        names,
        schema,
        attributes=[o.attributes for o in objects],
    )
    return Case(
        name=path.stem,
        image=ImageRef(
            path=str(image_path) if image_path else None,
            shape=shape,
            pixel_size=(1.0, 1.0),
            unit="px",
            origin=(0.0, 0.0),
            data=data,
            rgb=rgb,
            name=image_path.name if image_path else path.stem,
        ),
        boxes=[boxes],
        provenance=Provenance(source=str(path), format="voc", reader=__name__, warnings=warnings),
        document={"voc_xml": text, "voc_header": header},
    )


def read_text(path: Path) -> str:
    """A VOC file's text, decoded as its XML declaration says (UTF-8 by default)."""
    raw = path.read_bytes()
    match = re.match(rb"<\?xml[^>]*encoding=[\"']([A-Za-z0-9_\-]+)[\"']", raw)
    encoding = match.group(1).decode() if match else "utf-8"
    try:
        return raw.decode(encoding)
    except (UnicodeDecodeError, LookupError) as error:
        raise NsclcFormatError(path, f"cannot be decoded as {encoding}: {error}") from error


def read_voc(path: str | Path) -> list[Case]:
    """Read one VOC XML file, or every ``*.xml`` in a folder, into cases."""
    path = Path(path)
    files = sorted(path.glob("*.xml")) if path.is_dir() else [path]
    if not files:
        raise NsclcFormatError(path, "holds no .xml file")
    return [case_from_voc(file, read_text(file)) for file in files]


def sniff(path: Path) -> bool:
    """A ``.xml`` file whose root element is ``<annotation>``."""
    if path.is_dir() or path.suffix.lower() != ".xml":
        return False
    with open(path, "rb") as handle:
        head = handle.read(2048)
    return bool(_ROOT_PATTERN.search(head))


# --------------------------------------------------------------------------- writing


def _format_number(value: float, integers: bool) -> str:
    """A coordinate as VOC text: ``48`` when whole, else with up to two decimals.

    ``integers`` (the source file writes whole numbers) changes nothing for
    whole values; a box drawn between pixel corners keeps its half pixel
    (``48.5``) rather than being rounded half a pixel away.
    """
    value = float(value)
    if value.is_integer():
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _source_uses_integers(objects_xml) -> bool:
    """Whether every coordinate in the source file is written as an integer."""
    for element in objects_xml:
        box = _child(element, "bndbox")
        if box is None:
            continue
        for key in BOX_KEYS:
            text = _text(box, key) or ""
            if text and not re.fullmatch(r"[+-]?\d+", text):
                return False
    return True


def _set_box(element, bounds: Sequence[float], original: dict[str, str], integers: bool) -> None:
    """Write ``bounds`` into ``element``'s bndbox, keeping text that already matches."""
    box = _child(element, "bndbox")
    ymin, xmin, ymax, xmax = to_file([float(v) for v in bounds], CORNER).tolist()
    values = {"xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax}
    for key in BOX_KEYS:
        child = _child(box, key)
        old = original.get(key, "")
        try:
            unchanged = old != "" and float(old) == float(values[key])
        except ValueError:
            unchanged = False
        if not unchanged:
            child.text = _format_number(values[key], integers)


def _element(tag: str):
    """A new empty element; made through defusedxml so that no unsafe parser is imported."""
    return DET.fromstring(f"<{tag}/>")


def _subelement(parent, tag: str):
    child = parent.makeelement(tag, {})
    parent.append(child)
    return child


def _new_object(template, name: str, bounds, integers: bool, indent: str = "\t"):
    """A new ``<object>``, laid out like ``template`` (or the VOC default)."""
    if template is not None:
        element = copy.deepcopy(template)
        for child in list(element):
            if child.tag in ("part", "attributes"):
                element.remove(child)
        for key, default in (("truncated", "0"), ("difficult", "0"), ("occluded", "0")):
            child = _child(element, key)
            if child is not None:
                child.text = default
    else:
        level1, level2, level3 = ("\n" + indent * n for n in (1, 2, 3))
        element = _element("object")
        element.text = level2
        for key, value in (("name", ""), ("pose", "Unspecified"), ("truncated", "0"), ("difficult", "0")):
            child = _subelement(element, key)
            child.text = value
            child.tail = level2
        box = _subelement(element, "bndbox")
        box.text = level3
        box.tail = level1
        for i, key in enumerate(BOX_KEYS):
            child = _subelement(box, key)
            child.tail = level2 if i == 3 else level3
        element.tail = "\n"
    _child(element, "name").text = name
    _set_box(element, bounds, {}, integers)
    return element


def _new_document(header: dict[str, Any]):
    root = _element("annotation")
    root.text = "\n\t"
    for key in ("folder", "filename", "path"):
        child = _subelement(root, key)
        child.text = str(header.get(key) or "")
        child.tail = "\n\t"
    source = _subelement(root, "source")
    source.text = "\n\t\t"
    database = _subelement(source, "database")
    database.text = "Unknown"
    database.tail = "\n\t"
    source.tail = "\n\t"
    size = _subelement(root, "size")
    size.text = "\n\t\t"
    for i, key in enumerate(("width", "height", "depth")):
        child = _subelement(size, key)
        child.text = str(header.get(key) or "")
        child.tail = "\n\t" if i == 2 else "\n\t\t"
    size.tail = "\n\t"
    segmented = _subelement(root, "segmented")
    segmented.text = "0"
    segmented.tail = "\n"
    return root


def render_voc(
    objects: Sequence[VocObject], source_text: str | None = None, header: dict[str, Any] | None = None
) -> str:
    """The VOC XML text for ``objects``.

    Parameters
    ----------
    objects : sequence of VocObject
        The boxes to write. An object whose ``attributes["voc_index"]`` names
        an ``<object>`` of ``source_text`` reuses that element, changing only
        its ``<name>`` and the ``bndbox`` values that differ; others are new.
    source_text : str, optional
        The XML the objects were read from. When no object changed, this text
        is returned as it is.
    header : dict, optional
        ``folder``, ``filename``, ``path``, ``width``, ``height``, ``depth`` for
        a new document (used only without ``source_text``).

    Returns
    -------
    str
        The document.
    """
    if source_text is not None:
        root = DET.fromstring(source_text)
        declaration = re.match(r"\s*<\?xml[^>]*\?>\s*", source_text)
        prefix = declaration.group(0) if declaration else ""
        suffix = source_text[len(source_text.rstrip()) :]
    else:
        root = _new_document(header or {})
        prefix, suffix = "", "\n"
    originals = _object_elements(root)
    integers = _source_uses_integers(originals) if originals else all(
        float(v).is_integer() for o in objects for v in to_file([float(b) for b in o.bounds], CORNER)
    )
    usable = [o.attributes["voc_index"] for o in parse_voc(source_text)[1]] if source_text is not None else []
    if source_text is not None and _unchanged(objects, originals, usable):
        return source_text

    chosen = []
    used = set()
    for obj in objects:
        index = obj.attributes.get("voc_index")
        if isinstance(index, (int, np.integer)) and index in usable and index not in used:
            used.add(int(index))
            element = originals[index]
            name_element = _child(element, "name")
            if name_element is not None and (name_element.text or "").strip() != obj.name:
                name_element.text = obj.name
            _set_box(element, obj.bounds, obj.attributes.get("bndbox", {}), integers)
        else:
            template = chosen[-1] if chosen else (originals[usable[0]] if usable else None)
            indent = (root.text or "\n\t").lstrip("\r\n") or "\t"
            element = _new_object(template, obj.name, obj.bounds, integers, indent)
        chosen.append(element)
    # Objects the reader could not use (no or empty bndbox) are not the user's to delete: they stay where they were.
    for index in sorted(set(range(len(originals))) - set(usable)):
        chosen.insert(min(index, len(chosen)), originals[index])

    insert_at = list(root).index(originals[0]) if originals else len(root)
    separator = root.text or "\n"
    closing = root[-1].tail if len(root) else "\n"
    if source_text is not None:
        _mark_empty_pairs(root, source_text)
    for element in originals:
        root.remove(element)
    for offset, element in enumerate(chosen):
        root.insert(insert_at + offset, element)
    children = list(root)
    for position, element in enumerate(children[:-1]):
        if element in chosen or children[position + 1] in chosen:
            element.tail = separator
    if children:
        children[-1].tail = closing
    text = DET.tostring(root, encoding="unicode").strip().replace(_EMPTY_PAIR, "")
    return prefix + text + suffix


#: Stands in for the text of elements written ``<a></a>`` so that the
#: serialiser keeps that form; removed after serialisation.
_EMPTY_PAIR = "\x00napari-nsclc-empty\x00"
_START_TAG = re.compile(r"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<[?!][^>]*>|<([A-Za-z_][\w.:-]*)(?:\s[^<>]*?)?(/?)>", re.S)


def _mark_empty_pairs(root, source_text: str) -> None:
    """Mark the empty elements the source wrote as ``<a></a>`` rather than ``<a/>``.

    ElementTree forgets which of the two forms a file used; tools differ
    (CVAT writes ``<folder></folder>``, LabelImg ``<occluded/>``). Start tags
    are matched to elements in document order.
    """
    tags = [match for match in _START_TAG.finditer(source_text) if match.group(1)]
    elements = list(root.iter())
    if len(tags) != len(elements):
        return
    for element, match in zip(elements, tags, strict=True):
        if match.group(1) == element.tag and not match.group(2) and not element.text and len(element) == 0:
            element.text = _EMPTY_PAIR


def _unchanged(objects: Sequence[VocObject], originals, usable: list[int]) -> bool:
    """Whether ``objects`` are exactly the source's usable objects, unedited."""
    if [o.attributes.get("voc_index") for o in objects] != usable:
        return False
    for obj in objects:
        element = originals[obj.attributes["voc_index"]]
        if (_text(element, "name") or "unnamed") != obj.name:
            return False
        box = _child(element, "bndbox")
        try:
            written = [float(_text(box, key)) for key in ("ymin", "xmin", "ymax", "xmax")]
        except (TypeError, ValueError):
            return False
        if written != to_file([float(v) for v in obj.bounds], CORNER).tolist():
            return False
    return True


def boxes_of_case(case: Case) -> list[tuple[VocObject, int | None]]:
    """Every object of ``case`` as a VOC box ``(VocObject, plane)``.

    Box sets give their boxes; cells stored as boxes (MIDOG, IGNITE) give
    their box; polygon sets give one bounding box per object, the parts of
    one object (a COCO annotation of several polygons) together, and the
    source's own box where it has one (a COCO ``bbox``), never recomputed.
    An image-level region (IGNITE's ``annotated_xyxy``) is not an object.
    ``plane`` is the slice index for volumes, else ``None``.
    """
    from ..conversion import object_keys

    out: list[tuple[VocObject, int | None]] = []
    for boxes in case.boxes:
        if boxes.attributes and boxes.attributes[0].get("image_extra"):
            continue
        for i in range(len(boxes)):
            plane = None if boxes.planes is None else int(boxes.planes[i])
            out.append((VocObject(str(boxes.classes[i]), tuple(float(v) for v in boxes.bounds[i]),
                                  dict(boxes.attributes[i])), plane))
    for points in case.points:
        for (y, x), name, attributes in zip(points.coords[:, -2:], points.classes, points.attributes, strict=True):
            if "box_size" in attributes:
                h, w = (float(v) for v in attributes["box_size"])
                out.append((VocObject(str(name), (y - h / 2, x - w / 2, y + h / 2, x + w / 2), dict(attributes)), None))
    for polygons in case.polygons:
        groups: dict[Any, list[int]] = {}
        for i, key in enumerate(object_keys(polygons)):
            groups.setdefault(key, []).append(i)
        for members in groups.values():
            parts = [polygons.polygons[i] for i in members]
            vertices = np.concatenate([p.exterior for p in parts])
            ys, xs = vertices[:, -2], vertices[:, -1]
            plane = int(round(vertices[0, 0])) if vertices.shape[1] == 3 else None
            attributes = dict(polygons.attributes[members[0]])
            bounds = _source_bounds(attributes, parts) or (float(ys.min()), float(xs.min()),
                                                           float(ys.max()), float(xs.max()))
            out.append((VocObject(str(polygons.classes[members[0]]), bounds, attributes), plane))
    return out


def _source_bounds(attributes: dict, parts) -> tuple[float, float, float, float] | None:
    """The box the source file gave an object (a COCO ``bbox``), if its polygons are still as read."""
    from . import coco

    source = attributes.get("coco")
    if not isinstance(source, dict) or not isinstance(source.get("bbox"), list) or len(source["bbox"]) != 4:
        return None
    rings = coco._polygon_rings(source.get("segmentation") or []) or []
    if len(rings) != len(parts) or not all(np.array_equal(p.exterior[:, -2:], r) for p, r in zip(parts, rings, strict=True)):
        return None
    return coco.PLAIN.bounds(source["bbox"])


def header_for(case: Case, filename: str | None = None) -> dict[str, Any]:
    """The ``<annotation>`` header fields for a case that has no source XML."""
    header = dict(case.document.get("voc_header") or {})
    image = case.image
    if image.shape is not None and len(image.shape) >= 2:
        header.setdefault("height", image.shape[-2])
        header.setdefault("width", image.shape[-1])
        header.setdefault("depth", 3 if image.rgb else 1)
    if filename:
        header["filename"] = filename
    elif not header.get("filename"):
        header["filename"] = Path(image.path).name if image.path else f"{case.name}.jpg"
    header.setdefault("folder", "JPEGImages")
    return header


def case_to_voc_text(case: Case, filename: str | None = None) -> str:
    """The VOC XML of one 2-D case (all of its boxes).

    ``filename`` names the image in a new document (ignored when the case was
    read from VOC: its own ``<filename>`` is kept).
    """
    pairs = boxes_of_case(case)
    if any(plane is not None for _, plane in pairs):
        raise NsclcFormatError(case.provenance.source or case.name,
                               f"case {case.name!r} has boxes on the slices of a volume; a VOC file holds one 2-D "
                               "image (save Lung-PET-CT-Dx series with the lung-pet-ct-dx format)")
    return render_voc([obj for obj, _ in pairs], case.document.get("voc_xml"), header_for(case, filename))


def write_voc(cases: Sequence[Case], path: str | Path, *, overwrite: bool = False) -> list[Path]:
    """Write cases as one VOC XML file, or as a VOC detection dataset.

    Parameters
    ----------
    cases : sequence of Case
    path : str or Path
        A ``.xml`` file (exactly one case), or a folder: then a VOC root with
        ``Annotations/``, ``JPEGImages/`` and ``ImageSets/Main/`` for the
        objects (see :func:`napari_nsclc.datasets.voc_detection.write_voc_detection`)
        and ``SegmentationClass/``, ``SegmentationObject/`` and
        ``labelmap.txt`` for the masks (see
        :func:`napari_nsclc.datasets.voc_segmentation.write_voc_segmentation`).
    overwrite : bool
        Replace existing files. A file whose content would not change is left
        untouched either way.

    Returns
    -------
    list of Path
        The files written.
    """
    path = Path(path)
    if path.suffix.lower() != ".xml":
        # a VOC root: detection XMLs for the objects, segmentation PNGs for the masks
        from ..conversion import written_masks
        from ..datasets.voc_detection import write_voc_detection
        from ..datasets.voc_segmentation import write_voc_segmentation

        with_boxes = [case for case in cases if boxes_of_case(case)]
        with_masks = [case for case in cases if written_masks(case)]
        written = write_voc_detection(with_boxes, path, overwrite=overwrite) if with_boxes else []
        if with_masks:
            written += write_voc_segmentation(with_masks, path, overwrite=overwrite)
        return written
    if len(cases) != 1:
        raise NsclcFormatError(path, f"one .xml file holds one image, but {len(cases)} cases were given; "
                                     "give a folder instead")
    if write_text_if_changed(path, case_to_voc_text(cases[0]), overwrite):
        return [path]
    return []


def write_text_if_changed(target: Path, text: str, overwrite: bool) -> bool:
    """Write ``text`` atomically unless ``target`` already holds exactly it.

    Returns whether the file was written.
    """
    target = Path(target)
    if target.is_file() and target.read_bytes() == text.encode("utf-8"):
        return False
    refuse_overwrite(target, overwrite)
    atomic_write_text(target, text)
    return True


#: What the VOC writers do with each kind (a VOC root holds boxes and, beside them, segmentation PNGs).
VOC_DETECTION_HOLDS = {
    "boxes": exact(),
    "cells": exact("boxes of the cell's size"),
    "slice boxes": exact("one VOC image and file per annotated slice"),
    "polygons": lossy("become their bounding boxes", BOUNDS),
    "holed polygons": lossy("become their bounding boxes", BOUNDS),
    "parts": lossy("become one bounding box each", BOUNDS),
    "lines": lossy("become their bounding boxes", BOUNDS),
}
VOC_HOLDS = {
    **VOC_DETECTION_HOLDS,
    "mask": exact("palette PNGs in SegmentationClass/ with labelmap.txt"),
    "instances": exact("palette PNGs in SegmentationObject/"),
}
#: The value a VOC object field has when nobody set it; only other values are worth keeping.
_DEFAULT_FIELDS = {"pose": "Unspecified", "truncated": "0", "difficult": "0", "occluded": "0"}


def voc_object_fields(attributes: dict) -> list[str]:
    """The VOC fields of an object that hold more than the VOC default (``difficult`` 1 ...)."""
    found = [key for key, default in _DEFAULT_FIELDS.items() if str(attributes.get(key, default)) != default]
    return found + [key for key in ("attributes", "parts") if attributes.get(key)]


FORMAT = FormatSpec(
    name="voc",
    title="PASCAL VOC XML",
    sniff=sniff,
    read=read_voc,
    write=write_voc,
    extensions=(".xml",),
    priority=10,
    produces=frozenset({"boxes"}),
    extras=("pose", "truncated", "difficult", "occluded", "attributes"),
    object_fields=voc_object_fields,
    family="voc",
    holds=VOC_HOLDS,
    layers={"masks": "first", "objects": "merged"},
    check=needs_image_size("PASCAL VOC"),
    per_case=True,
    merged_files=(("ImageSets/*/*.txt", "lines"), ("labelmap.txt", "first")),
)
