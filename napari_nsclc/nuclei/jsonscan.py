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

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..model import NsclcFormatError

__all__ = ["ArraySpans", "array_spans", "copy_elements", "parse_batches", "read_spans", "scan"]

BLOCK_BYTES = 32 << 20
_BRACE_OPEN, _BRACE_CLOSE = ord("{"), ord("}")
_QUOTE, _BACKSLASH = ord('"'), ord("\\")


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


_WHITESPACE = np.zeros(256, bool)
_WHITESPACE[[ord(" "), ord("\t"), ord("\r"), ord("\n")]] = True
_LIST_CLOSE = ord("]")


def array_spans(path: str | Path, key: str = "features",
                progress: Callable[[int, int], None] | None = None) -> ArraySpans:
    """Byte spans of the object elements of the array under the root key ``key`` (or of a root array).

    Only braces outside strings are tracked (a nucleus's dozens of coordinate
    brackets are not): an element is a ``{`` one object deep inside the root
    object (or at the top of a root array), after the array's ``[``, and the
    array ends at the first element followed by ``]``.

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
        When the file holds neither such an array nor a root array, or is cut short.
    """
    path = Path(path)
    size = path.stat().st_size
    pattern = re.compile(rb'"' + re.escape(key.encode()) + rb'"\s*:\s*\[')
    starts, ends = [], []
    depth, in_string, backslashes, tail = 0, False, 0, b""
    element_depth, array_start, array_end, layout = None, -1, -1, ""
    with open(path, "rb") as handle:
        head = handle.read(4096)
        stripped = head.lstrip()
        if stripped.startswith(b"["):
            element_depth, array_start, layout = 0, len(head) - len(stripped), "list"
        offset = 0
        while offset < size:
            handle.seek(offset)
            raw = handle.read(BLOCK_BYTES)
            if not raw:
                break
            block = np.frombuffer(raw, np.uint8)
            quotes = _real_quotes(block, np.flatnonzero(block == _QUOTE), backslashes)
            braces = np.flatnonzero((block == _BRACE_OPEN) | (block == _BRACE_CLOSE))
            braces = braces[(np.searchsorted(quotes, braces) + in_string) % 2 == 0]
            delta = np.where(block[braces] == _BRACE_OPEN, 1, -1)
            after = depth + np.cumsum(delta)
            before = after - delta
            if element_depth is None:
                array_start = _find_key(pattern, tail, raw, quotes, in_string, braces, after, depth)
                if array_start >= 0:
                    array_start += offset
                    element_depth, layout = 1, "object"
            if element_depth is not None and array_end < 0:  # after the array, only the balance is checked
                opens = braces[(delta > 0) & (before == element_depth)] + offset
                closes = braces[(delta < 0) & (after == element_depth)] + offset + 1
                opens, closes = opens[opens > array_start], closes[closes > array_start]
                last = _array_end(handle, block, offset, closes)
                if last is not None:
                    array_end = last
                    opens, closes = opens[opens < array_end], closes[closes < array_end]
                starts.append(opens)
                ends.append(closes)
            in_string = bool((len(quotes) + in_string) % 2)
            run = 0
            while run < len(block) and block[-1 - run] == _BACKSLASH:
                run += 1
            backslashes = run + (backslashes if run == len(block) else 0)
            depth = int(after[-1]) if len(after) else depth
            tail = (tail + raw)[-(len(key) + 64):]  # a key may straddle several small blocks
            offset += len(raw)
            if progress is not None:
                progress(offset, size)
        if element_depth is None:
            raise NsclcFormatError(path, f"holds no {key!r} array")
        starts_all = np.concatenate(starts) if starts else np.zeros(0, np.int64)
        ends_all = np.concatenate(ends) if ends else np.zeros(0, np.int64)
        if array_end < 0 and not len(starts_all):
            array_end = _empty_array_end(handle, array_start)
    if array_end < 0 or len(starts_all) != len(ends_all) or depth != 0 or in_string:
        raise NsclcFormatError(path, "is cut short or malformed: its brackets or quotes do not balance")
    return ArraySpans(starts_all.astype(np.int64), ends_all.astype(np.int64), array_start, array_end, layout, size)


def _find_key(pattern, tail: bytes, raw: bytes, quotes, in_string: bool, braces, after, depth: int) -> int:
    """Offset in ``raw`` of the ``[`` of ``"key": [`` outside strings, one object deep; -1 if not in this block."""
    for match in pattern.finditer(tail + raw):
        bracket = match.end() - 1 - len(tail)
        if bracket < 0:
            continue  # wholly in the previous block: already looked at
        if (np.searchsorted(quotes, bracket) + in_string) % 2:
            continue  # inside a string
        k = np.searchsorted(braces, bracket)
        if (int(after[k - 1]) if k else depth) == 1:
            return bracket
    return -1


def _array_end(handle, block, offset: int, closes) -> int | None:
    """Where the array ends (the byte after its ``]``) if one of the elements ending at ``closes`` is its last."""
    if not len(closes):
        return None
    position = closes - offset  # the byte after each element's '}'
    for _ in range(16):  # skip whitespace, vectorised: pretty-printed files indent a few bytes
        inside = position < len(block)
        blank = np.zeros(len(position), bool)
        blank[inside] = _WHITESPACE[block[position[inside]]]
        if not blank.any():
            break
        position = position + blank
    inside = position < len(block)
    following = np.zeros(len(position), np.uint8)
    following[inside] = block[position[inside]]
    position = position + offset
    for k in np.flatnonzero(~inside | _WHITESPACE[following]):  # past the block, or a long run of blanks
        following[k], position[k] = _next_byte(handle, int(position[k]))
    last = np.flatnonzero(following == _LIST_CLOSE)
    return int(position[last[0]]) + 1 if len(last) else None


def _next_byte(handle, offset: int) -> tuple[int, int]:
    """The first byte at or after ``offset`` that is not whitespace, and its offset (0 at the end of the file)."""
    where = handle.tell()
    try:
        while True:
            handle.seek(offset)
            chunk = handle.read(4096)
            if not chunk:
                return 0, offset
            stripped = chunk.lstrip()
            if stripped:
                return stripped[0], offset + len(chunk) - len(stripped)
            offset += len(chunk)
    finally:
        handle.seek(where)


def _empty_array_end(handle, array_start: int) -> int:
    """The end of an array with no object element (``[]``, maybe with blanks), or -1."""
    handle.seek(array_start + 1)
    chunk = handle.read(4096)
    blanks = len(chunk) - len(chunk.lstrip())
    return array_start + 2 + blanks if chunk[blanks:blanks + 1] == b"]" else -1


def scan(path: Path, key: str, spans: ArraySpans | None = None, progress=None) -> tuple[ArraySpans, int]:
    """``(spans, mtime_ns)`` of a file about to be read: :func:`array_spans` unless the caller already scanned it.

    ``progress(stage, done, total)`` hears ``"scan"`` in bytes. An unreadable file raises
    :class:`NsclcFormatError` naming it.
    """
    try:
        mtime_ns = Path(path).stat().st_mtime_ns
        if spans is None:
            spans = array_spans(path, key, None if progress is None else lambda d, t: progress("scan", d, t))
    except OSError as error:
        raise NsclcFormatError(path, f"cannot be read: {error.strerror or error}") from error
    return spans, mtime_ns


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


def copy_elements(src, spans: ArraySpans, out, keep: np.ndarray, changed: np.ndarray,
                  rewrite: Callable[[int, bytes], bytes], progress: Callable[[int, int], None] | None = None,
                  batch: int = 20000) -> int:
    """Write the kept elements of the array to ``out``, each after the source's own gap before it.

    An element in ``changed`` is written as ``rewrite(index, its bytes)``;
    the others are copied byte for byte. A dropped element goes with the gap
    before it, so the layout of the rest is the source's. The caller writes
    what comes before the first element and after the last. Returns the
    number of elements written.
    """
    total, written = len(spans.starts), 0
    for first in range(0, total, batch):
        last = min(first + batch, total)
        begin = int(spans.ends[first - 1]) if first else int(spans.starts[0])  # from the gap before `first`
        src.seek(begin)
        data = src.read(int(spans.ends[last - 1]) - begin)
        starts, ends = (spans.starts[first:last] - begin).tolist(), (spans.ends[first:last] - begin).tolist()
        for k in np.flatnonzero(keep[first:last]).tolist():
            raw = data[starts[k]:ends[k]]
            if changed[first + k]:
                raw = rewrite(first + k, raw)
            if written:
                out.write(data[ends[k - 1] if k else 0:starts[k]])
            out.write(raw)
            written += 1
        if progress is not None:
            progress(last, total)
    return written
