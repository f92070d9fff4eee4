"""Where the service's log lines go and how they look: text, or one JSON object a line (JSM_MAIL_LOG_FORMAT=json)."""
from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_FORMATS = ("text", "json")
_link: ContextVar[str | None] = ContextVar("jsm_mail_link", default=None)


@contextmanager
def about_link(name: str) -> Iterator[None]:
    """Every log line written inside names this link (the scheduler's threads each keep their own)."""
    token = _link.set(name)
    try:
        yield
    finally:
        _link.reset(token)


class _NameTheLink(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "link"):
            record.link = _link.get()
        return True


class _JsonLines(JsonFormatter):
    """time (UTC, ISO 8601), level, logger, message, link; a traceback, when there is one, as exc_info."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def configure_logging(*, verbose: bool, log_format: str) -> None:
    """The root logger writes to stderr in the chosen format, unless it was set up already (an embedding
    program's own handlers win, as with logging.basicConfig); secrets never reach it (plugin.domain.Secret
    shows as ***, and the mailbox modules' filters withhold Authorization headers before any format applies)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_NameTheLink())
    if log_format == "json":
        handler.setFormatter(_JsonLines("{asctime}{levelname}{name}{message}{link}", style="{",
                                        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                                        json_ensure_ascii=False))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
