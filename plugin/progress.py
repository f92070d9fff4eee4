"""Progress of long work on the command line: "120/1,000 mails" on stderr, redrawn in place on a terminal, else
logged every so many mails (so a log file, a pipe or JSON log lines get whole lines, no carriage returns)."""
from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

log = logging.getLogger(__name__)
EVERY = 100  # mails between log lines when no terminal is redrawn
REDRAW_S = 0.2  # a terminal is redrawn at most this often


class ProgressLine:
    def __init__(self, stream: TextIO | None = None, *, every: int = EVERY, redraw: bool | None = None) -> None:
        self._stream = stream or sys.stderr
        self._redraw = self._stream.isatty() if redraw is None else redraw
        self._every = every
        self._drawn = 0.0
        self._open = False  # a terminal line is shown without its newline

    def __call__(self, what: str, done: int, total: int) -> None:
        last = done >= total
        if self._redraw:
            if last or time.monotonic() - self._drawn >= REDRAW_S:
                self._stream.write(f"\r\x1b[K{what}: {done:,}/{total:,} mails" + ("\n" if last else ""))
                self._stream.flush()
                self._drawn, self._open = time.monotonic(), not last
        elif done and (done % self._every == 0 or last):
            log.info("%s: %s/%s mails", what, f"{done:,}", f"{total:,}")

    def finish(self) -> None:
        """End a line left open, so what is printed next starts on its own line."""
        if self._open:
            self._stream.write("\n")
            self._stream.flush()
            self._open = False
