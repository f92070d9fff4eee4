"""Progress of long work on the command line: "120/1,000 mails" on stderr, rewritten in place on a terminal,
else a line every so many mails (a log file or a pipe gets no carriage returns)."""
from __future__ import annotations

import sys
import time
from typing import TextIO

EVERY = 100  # mails between lines when stderr is not a terminal
REDRAW_S = 0.2  # a terminal is redrawn at most this often


class ProgressLine:
    def __init__(self, stream: TextIO | None = None, every: int = EVERY) -> None:
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._every = every
        self._drawn = 0.0
        self._open = False  # a terminal line is shown without its newline

    def __call__(self, what: str, done: int, total: int) -> None:
        text = f"{what}: {done:,}/{total:,} mails"
        last = done >= total
        if self._tty:
            if last or time.monotonic() - self._drawn >= REDRAW_S:
                self._stream.write(f"\r\x1b[K{text}" + ("\n" if last else ""))
                self._stream.flush()
                self._drawn, self._open = time.monotonic(), not last
        elif done and (done % self._every == 0 or last):
            print(text, file=self._stream, flush=True)

    def finish(self) -> None:
        """End a line left open, so what is printed next starts on its own line."""
        if self._open:
            self._stream.write("\n")
            self._stream.flush()
            self._open = False
