"""Find the objects of one big JSON array without parsing the whole document.

A QuPath GeoJSON export of a slide's nuclei is a ``FeatureCollection`` of up to
a million features, 0.5 to 2 GB of text. Parsing it whole builds tens of
millions of Python objects (several GB). Instead, :func:`array_spans` reads
the file in blocks and finds, with numpy, the byte span of each element of
one array: the ``"features"`` array of a collection, a bare list of features,
or COCO's ``"annotations"``. The elements are then parsed in batches
(:func:`parse_batches`), and a writer copies untouched elements byte for byte.

Only structural characters outside strings count: a quote preceded by an odd
number of backslashes is part of its string.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..model import NsclcFormatError

__all__ = ["ArraySpans", "array_spans", "parse_batches", "read_spans"]

BLOCK_BYTES = 32 << 20
_BRACE_OPEN, _BRACE_CLOSE = ord("{"), ord("}")
_QUOTE, _BACKSLASH, _LIST = ord('"'), ord("\\"), ord("[")


@dataclass
class ArraySpans:
    """Where the elements of one JSON array lie in a file.

    Attributes
    ----------
    starts, ends : (N,) int64 arrays
        Byte offsets of each element: ``file[starts[i]:ends[i]]`` is its JSON text.
    array_start, array_end : int
        Offsets of the array's ``[`` and of the byte after its ``]``.
    layout : str
        ``"list"`` when the document itself is the array, else ``"object"``.
    size : int
        The file's size in bytes.
    """

    starts: np.ndarray
    ends: np.ndarray
    array_start: int
    array_end: int
    layout: str
    size: int


def _real_quotes(block: np.ndarray, quotes: np.ndarray, backslashes_before: int) -> np.ndarray:
    """Drop quotes escaped by an odd run of backslashes (rare: checked one by one)."""
    if not len(quotes):
        return quotes
    before = np.empty(len(quotes), bool)
    before[1:] = block[quotes[1:] - 1] == _BACKSLASH
    before[0] = (block[quotes[0] - 1] == _BACKSLASH) if quotes[0] > 0 else backslashes_before > 0
    if not before.any():
        return quotes
    keep = np.ones(len(quotes), bool)
    for k in np.flatnonzero(before):
        position, run = int(quotes[k]) - 1, 0
        while position >= 0 and block[position] == _BACKSLASH:
            run, position = run + 1, position - 1
        if position < 0:
            run += backslashes_before
        keep[k] = run % 2 == 0
    return quotes[keep]


def _key_before(handle, offset: int) -> str | None:
    """The object key written just before ``offset`` (``"key" :``), read from the file."""
    start = max(0, offset - 256)
    handle.seek(start)
    text = handle.read(offset - start).rstrip()
    if not text.endswith(b":"):
        return None
    text = text[:-1].rstrip()
    if not text.endswith(b'"'):
        return None
    opening = text.rfind(b'"', 0, len(text) - 1)
    return text[opening + 1:-1].decode("utf-8", "replace") if opening >= 0 else None


def array_spans(path: str | Path, key: str = "features",
                progress: Callable[[int, int], None] | None = None) -> ArraySpans:
    """Byte spans of the elements of the array under the root key ``key`` (or of a root array).

    Parameters
    ----------
    path : path
        A JSON file, read in blocks of 32 MB: memory stays bounded for a 2 GB file.
    key : str
        The root object's key holding the array (``"features"``, ``"annotations"``).
    progress : callable, optional
        Called as ``progress(bytes_read, file_size)`` after each block.

    Raises
    ------
    NsclcFormatError
        When the file holds neither such an array nor a root array, or its brackets do not balance.
    """
    path = Path(path)
    size = path.stat().st_size
    starts, ends = [], []
    depth, in_string, backslashes = 0, False, 0
    element_depth, array_start, array_end, layout = None, -1, -1, ""
    with open(path, "rb") as handle:
        offset = 0
        while offset < size:
            handle.seek(offset)
            block = np.frombuffer(handle.read(BLOCK_BYTES), np.uint8)
            if not len(block):
                break
            quotes = _real_quotes(block, np.flatnonzero(block == _QUOTE), backslashes)
            folded = block | 0x20  # '[' and ']' fold onto '{' and '}'
            structural = np.flatnonzero((folded == _BRACE_OPEN) | (folded == _BRACE_CLOSE))
            inside = (np.searchsorted(quotes, structural) + in_string) % 2 == 1
            structural = structural[~inside]
            delta = (_BRACE_OPEN + 1 - folded[structural].astype(np.int64))
            after = depth + np.cumsum(delta)
            before = after - delta
            if element_depth is None:
                element_depth, array_start, layout = _find_array(handle, block, structural, before, offset, key)
            if element_depth is not None:
                opens = structural[(delta > 0) & (before == element_depth)]
                closes = structural[(delta < 0) & (after == element_depth)]
                in_array = (opens + offset > array_start)
                starts.append(opens[in_array] + offset)
                ends.append(closes[closes + offset > array_start] + offset + 1)
                closing = structural[(delta < 0) & (after == element_depth - 1)] + offset
                closing = closing[closing > array_start]
                if len(closing) and array_end < 0:
                    array_end = int(closing[0]) + 1
            in_string = bool((len(quotes) + in_string) % 2)
            tail = 0
            while tail < len(block) and block[-1 - tail] == _BACKSLASH:
                tail += 1
            backslashes = tail + (backslashes if tail == len(block) else 0)
            depth = int(after[-1]) if len(after) else depth
            offset += len(block)
            if progress is not None:
                progress(offset, size)
    if element_depth is None:
        raise NsclcFormatError(path, f"holds no {key!r} array")
    if depth != 0 or in_string:
        raise NsclcFormatError(path, "is cut short or malformed: its brackets or quotes do not balance")
    starts_all = np.concatenate(starts) if starts else np.zeros(0, np.int64)
    ends_all = np.concatenate(ends) if ends else np.zeros(0, np.int64)
    if array_end >= 0:
        starts_all, ends_all = starts_all[starts_all < array_end], ends_all[ends_all <= array_end]
    if len(starts_all) != len(ends_all) or (len(starts_all) and (ends_all <= starts_all).any()):
        raise NsclcFormatError(path, f"its {key!r} array holds something other than JSON objects")
    return ArraySpans(starts_all.astype(np.int64), ends_all.astype(np.int64), array_start, array_end, layout, size)


def _find_array(handle, block, structural, before, offset, key):
    """The depth of the wanted array's elements, the array's offset and the layout, once its ``[`` is seen."""
    kinds = block[structural]
    if len(structural) and before[0] == 0 and kinds[0] == _LIST:
        return 1, int(structural[0]) + offset, "list"
    for position in structural[(before == 1) & (kinds == _LIST)]:
        where = handle.tell()
        found = _key_before(handle, int(position) + offset)
        handle.seek(where)
        if found == key:
            return 2, int(position) + offset, "object"
    return None, -1, ""


def read_spans(handle, starts: np.ndarray, ends: np.ndarray) -> list[bytes]:
    """The bytes of each span, read with one seek per contiguous run (spans sorted, from one file)."""
    if not len(starts):
        return []
    first, last = int(starts[0]), int(ends[-1])
    handle.seek(first)
    data = handle.read(last - first)
    return [data[s - first:e - first] for s, e in zip(starts.tolist(), ends.tolist(), strict=False)]


def parse_batches(path: str | Path, spans: ArraySpans, batch: int = 20000,
                  progress: Callable[[int, int], None] | None = None) -> Iterator[tuple[int, list]]:
    """Parse the elements in batches: yields ``(first index, [element or exception, ...])``.

    Each batch is one ``orjson.loads`` call with Python's garbage collector
    paused (a collection pass per thousand new containers made parsing four
    times slower). A batch that fails is parsed element by element, so one
    bad element (``NaN``, a cut string) becomes an exception in its place and
    the others still load. ``NaN`` and ``Infinity``, which Python's ``json``
    writes, are read with the standard library so the caller can report them.
    """
    import gc
    import json

    import orjson

    total = len(spans.starts)
    with open(path, "rb") as handle:
        for first in range(0, total, batch):
            texts = read_spans(handle, spans.starts[first:first + batch], spans.ends[first:first + batch])
            enabled = gc.isenabled()
            gc.disable()
            try:
                try:
                    elements = orjson.loads(b"[" + b",".join(texts) + b"]")
                except orjson.JSONDecodeError:
                    elements = [_parse_one(text, orjson, json) for text in texts]
            finally:
                if enabled:
                    gc.enable()
            yield first, elements
            if progress is not None:
                progress(min(first + batch, total), total)


def _parse_one(text: bytes, orjson, json):
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as error:
        try:
            return json.loads(text)
        except ValueError:
            return error
