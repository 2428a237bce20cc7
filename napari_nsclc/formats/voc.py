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
from defusedxml import ElementTree as DET

from .._atomic import atomic_write_text, refuse_overwrite
from ..model import BoxSet, Case, ClassSchema, ImageRef, NsclcFormatError, Provenance
from ..registry import FormatSpec

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
    except Exception as error:  # defusedxml refuses entity tricks with its own exception types
        raise NsclcFormatError(source, f"was refused by the safe XML parser ({error})") from error
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
        objects.append(VocObject(class_name, (ymin, xmin, ymax, xmax), attributes))
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


def lazy_image(path: Path):
    """A dask array of an image file, read with Pillow on first access.

    Only the header is read now (for shape and mode); Pillow's
    decompression-bomb limit stays on.
    """
    import dask
    import dask.array as da
    from PIL import Image

    with Image.open(path) as image:
        width, height = image.size
        mode = image.mode
    rgb = mode not in ("L", "I", "I;16", "F", "1", "P")

    def load():
        with Image.open(path) as image:
            image = image.convert("RGB") if rgb else (image.convert("L") if mode in ("1", "P") else image)
            return np.asarray(image)

    shape = (height, width, 3) if rgb else (height, width)
    dtype = np.uint8 if rgb or mode in ("L", "1", "P") else (np.int32 if mode == "I" else np.uint16)
    if mode == "F":
        dtype = np.float32
    return da.from_delayed(dask.delayed(load)(), shape=shape, dtype=dtype), rgb


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
        data, rgb = lazy_image(image_path)
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
    if integers:
        return str(int(round(value)))
    if float(value).is_integer():
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
    ymin, xmin, ymax, xmax = bounds
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
        float(v).is_integer() for o in objects for v in o.bounds
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
        if written != [float(v) for v in obj.bounds]:
            return False
    return True


def boxes_of_case(case: Case) -> list[tuple[VocObject, int | None]]:
    """Every box of ``case`` as ``(VocObject, plane)``.

    Box sets give their boxes; polygon sets give each polygon's bounding box
    (a rectangle drawn in napari may come back as a polygon). ``plane`` is the
    slice index for volumes, else ``None``.
    """
    out: list[tuple[VocObject, int | None]] = []
    for boxes in case.boxes:
        for i in range(len(boxes)):
            plane = None if boxes.planes is None else int(boxes.planes[i])
            out.append((VocObject(str(boxes.classes[i]), tuple(float(v) for v in boxes.bounds[i]),
                                  dict(boxes.attributes[i])), plane))
    for polygons in case.polygons:
        for i, polygon in enumerate(polygons.polygons):
            vertices = polygon.exterior
            ys, xs = vertices[:, -2], vertices[:, -1]
            plane = int(round(vertices[0, 0])) if vertices.shape[1] == 3 else None
            bounds = (float(ys.min()), float(xs.min()), float(ys.max()), float(xs.max()))
            out.append((VocObject(str(polygons.classes[i]), bounds, dict(polygons.attributes[i])), plane))
    return out


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
        A ``.xml`` file (exactly one case), or a folder: then a dataset with
        ``Annotations/``, ``JPEGImages/`` and ``ImageSets/Main/`` is written
        (see :func:`napari_nsclc.datasets.voc_detection.write_voc_detection`).
    overwrite : bool
        Replace existing files. A file whose content would not change is left
        untouched either way.

    Returns
    -------
    list of Path
        The files written.
    """
    path = Path(path)
    if path.suffix.lower() != ".xml" and not any(case.boxes for case in cases) and any(c.masks for c in cases):
        # label masks and no boxes: VOC's segmentation half, palette PNGs + labelmap.txt
        from .masks import write_masks

        return write_masks(cases, path / "SegmentationClass", overwrite=overwrite, palette=True)
    if path.suffix.lower() != ".xml":
        from ..datasets.voc_detection import write_voc_detection

        return write_voc_detection(cases, path, overwrite=overwrite)
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


FORMAT = FormatSpec(
    name="voc",
    title="PASCAL VOC XML",
    sniff=sniff,
    read=read_voc,
    write=write_voc,
    extensions=(".xml",),
    priority=10,
)
