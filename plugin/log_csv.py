"""The processing log as CSV rows that a spreadsheet shows as text, never runs as a formula."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from plugin.store.store import LOG_FIELDS, LogEntry

# OWASP "CSV Injection": a cell starting with one of these is read as a formula by Excel and
# LibreOffice; a leading apostrophe makes it text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_row(entry: LogEntry) -> dict[str, object]:
    return {key: safe_cell(value) for key, value in entry.as_json().items()}


def csv_chunks(entries: Iterable[LogEntry], *, bom: bool) -> Iterator[str]:
    """The CSV text piece by piece, for streaming: a UTF-8 BOM first lets Excel read Japanese correctly."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LOG_FIELDS)
    writer.writeheader()
    yield ("\ufeff" if bom else "") + buffer.getvalue()
    for entry in entries:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(safe_row(entry))
        yield buffer.getvalue()
