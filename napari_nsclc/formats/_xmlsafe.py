"""Safe XML parsing and exact XML text output shared by the slide annotation formats.

Parsing goes through defusedxml only: entity declarations (billion laughs) and
external entities or DTDs raise, and are reported as a :class:`NsclcFormatError`
naming the file. Output is written as text so that the element layout,
attribute order and indentation match what ASAP and ImageScope write.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..model import NsclcFormatError

__all__ = ["format_number", "parse_xml", "quote_attribute", "refusal", "xml_head"]


def parse_xml(path: Path):
    """Parse ``path`` with defusedxml; return the root element.

    Raises
    ------
    NsclcFormatError
        The file is missing, not well-formed, or declares entities / a DTD /
        external references (refused as potentially hostile).
    """
    from defusedxml import DefusedXmlException
    from defusedxml import ElementTree as DET

    try:
        return DET.parse(str(path), forbid_dtd=False).getroot()
    except DefusedXmlException as error:
        raise NsclcFormatError(path, f"refused: {refusal(error)}") from error
    except DET.ParseError as error:
        raise NsclcFormatError(path, f"is not well-formed XML: {error}") from error
    except OSError as error:
        raise NsclcFormatError(path, f"cannot be read: {error.strerror or error}") from error


def refusal(error: Exception) -> str:
    """Why defusedxml refused a document, as a plain sentence (never the exception's repr).

    defusedxml's exceptions print as ``EntitiesForbidden(name='lol', system_id=None, ...)``;
    this says the same in words: ``the XML declares entities or external references
    (here the entity 'lol'), which annotation files never need and attacks use (...)``.
    """
    name = getattr(error, "name", None)
    system_id = getattr(error, "sysid", None)
    kind = type(error).__name__
    if kind == "EntitiesForbidden":
        found = f"the external entity '{name}' pointing to {system_id}" if system_id else f"the entity '{name}'"
    elif kind == "DTDForbidden":
        found = f"the document type '{name}'"
    elif kind == "ExternalReferenceForbidden":
        found = f"a reference to {system_id}"
    else:
        found = "a construct the safe parser does not allow"
    return (f"the XML declares entities or external references (here {found}), "
            "which annotation files never need and attacks use (entity expansion, external entities)")


def xml_head(path: Path, size: int = 4096) -> str:
    """The first ``size`` bytes of a file as text (for sniffing); empty on error."""
    try:
        with open(path, "rb") as handle:
            return handle.read(size).decode("utf-8", errors="replace")
    except OSError:
        return ""


_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}


def quote_attribute(value: object) -> str:
    """``value`` escaped for a double-quoted XML attribute."""
    return "".join(_ESCAPES.get(ch, ch) for ch in str(value))


def format_number(value: float) -> str:
    """A coordinate as ASAP writes it: single precision, 9 significant digits.

    ASAP stores coordinates as 32-bit floats, so a value read from an ASAP
    file is written back with the same characters. A value that a float32
    cannot hold exactly (edited in napari) keeps 4 decimals.
    """
    value = float(value)
    text = f"{np.float32(value):.9g}"
    if float(text) == value:
        return text
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return text if text not in ("-0", "") else "0"


def element_text(element) -> str:
    """An element serialised back to XML text, to be written out verbatim.

    defusedxml re-exports the standard serialiser, so no module here touches
    the standard library's unsafe parser.
    """
    from defusedxml.ElementTree import tostring

    return tostring(element, encoding="unicode").strip()
