"""tifffile's log records, kept off the user's terminal while our readers run.

tifffile reports a damaged file through the ``tifffile`` logger as well as (or
instead of) raising, e.g. ``<tifffile.TiffPages @8> invalid offset to first
page 8``. With no logging configured, Python prints such records to stderr,
so ``napari-nsclc info broken.tif`` used to show them as stray lines above its
own one-line error. Our readers open TIFFs inside :func:`quiet_tifffile`,
which takes the records logged *on the current thread* and hands them to the
reader, so a real problem reaches the user once, in the reader's message
naming the file. Records from other threads, and from tiles napari decodes
later, go to logging as usual.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Iterator

__all__ = ["quiet_tifffile", "tifffile_reason"]

_LOCAL = threading.local()
#: tifffile starts its messages with the repr of the object at fault: ``<tifffile.TiffPages @8> ...``.
_REPR_PREFIX = re.compile(r"^(?:<[^<>]*>\s*)+")


class _TakeRecords(logging.Filter):
    """Swallow a ``tifffile`` record logged inside :func:`quiet_tifffile`, keeping its text."""

    def filter(self, record: logging.LogRecord) -> bool:
        taken = getattr(_LOCAL, "taken", None)
        if not taken:
            return True
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a badly formatted record is still dropped
            text = str(record.msg)
        taken[-1].append(_REPR_PREFIX.sub("", text).strip())
        return False


_FILTER = _TakeRecords()
_INSTALL = threading.Lock()


@contextlib.contextmanager
def quiet_tifffile() -> Iterator[list[str]]:
    """Inside the block, tifffile's log records on this thread are collected, not printed.

    Yields the list the messages are appended to (repr prefix removed).
    """
    logger = logging.getLogger("tifffile")
    with _INSTALL:
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    stack = _LOCAL.__dict__.setdefault("taken", [])
    messages: list[str] = []
    stack.append(messages)
    try:
        yield messages
    finally:
        stack.pop()


def tifffile_reason(error: BaseException, messages: list[str]) -> str:
    """The best short reason for a failed TIFF read: tifffile's logged message if any, else the error's."""
    for message in messages:
        if message:
            return message
    return str(error) or type(error).__name__
