"""Progress of a batch command: a bar with an ETA on a terminal, plain log lines elsewhere (CI, cron, a pipe).

The bar is :mod:`tqdm`'s, drawn on standard error. When standard error is not
a terminal, a bar would fill a log with carriage returns, so a line such as
``convert: 1,200/2,544 cases (47 %), 48 s elapsed, about 54 s left`` is written
instead, at most every :data:`LOG_INTERVAL` seconds, and once at the end.
No napari or Qt import.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["LOG_INTERVAL", "Progress", "duration"]

#: Seconds between two log lines when standard error is not a terminal.
LOG_INTERVAL = 10.0


def duration(seconds: float) -> str:
    """``"48 s"``, ``"2 min 05 s"``, ``"1 h 02 min"``."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class Progress:
    """Counts work done out of ``total`` and shows it.

    Parameters
    ----------
    total : int
        Units of work (cases).
    label : str
        What is running (``"convert"``), first on every line.
    unit : str
        The unit, singular (``"case"``).
    stream : text stream, optional
        Where to write; standard error by default.
    bar : bool, optional
        Draw a bar; by default, when ``stream`` is a terminal.
    interval : float
        Seconds between log lines when there is no bar.
    """

    def __init__(self, total: int, label: str, unit: str = "case", stream: TextIO | None = None,
                 bar: bool | None = None, interval: float = LOG_INTERVAL):  # fmt: skip
        self.total = int(total)
        self.label = label
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.interval = interval
        self._start = time.monotonic()
        self._last_line = self._start
        is_terminal = getattr(self.stream, "isatty", lambda: False)()
        self._bar = None
        if bar if bar is not None else is_terminal:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=label, unit=unit, file=self.stream, dynamic_ncols=True,
                             mininterval=0.2, leave=True)  # fmt: skip

    def _units(self, count: int) -> str:
        return self.unit if count == 1 else self.unit + "s"

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def advance(self, count: int = 1) -> None:
        """``count`` more units are done."""
        self.done += count
        if self._bar is not None:
            self._bar.update(count)
            return
        now = time.monotonic()
        if self.done < self.total and now - self._last_line < self.interval:
            return
        self._last_line = now
        elapsed = now - self._start
        percent = 100 * self.done / self.total if self.total else 100
        text = f"{self.label}: {self.done:,}/{self.total:,} {self._units(self.total)} ({percent:.0f} %)"
        if self.done >= self.total:
            self._line(f"{text} in {duration(elapsed)}")
        else:
            left = elapsed / self.done * (self.total - self.done) if self.done else 0.0
            self._line(f"{text}, {duration(elapsed)} elapsed, about {duration(left)} left")

    def close(self) -> None:
        """Finish the bar (a log line needs no closing)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
