"""Curated EU–Japan security events CSV (UTF-8, one event per row).

Columns: date,date_precision,event_type,parties,title,description,source_url,source_title. All are read as
String (typing and checks happen in transforms.events); empty fields are null.

Decisions:

* UTF-8, strictly (a BOM is allowed and dropped): the file is ours, so invalid UTF-8 is an error, not something
  to guess around.
* Missing required columns and *unexpected* columns both raise SchemaDriftError naming them: the file's schema is
  the project's own, so a new column means someone meant it to be loaded and it must not be dropped silently.
* source_version is None: the file carries no version stamp, and the run already records the payload checksum
  (etl_runs.input_checksum). meta holds the row count and the latest event date as a human-readable marker.
"""

from __future__ import annotations

import polars as pl

from eujp.errors import ParseError, SchemaDriftError
from eujp.parse import ParsedPayload

SOURCE = "security events CSV"
REQUIRED_COLUMNS: tuple[str, ...] = (
    "date", "date_precision", "event_type", "parties", "title", "description", "source_url", "source_title",
)


def parse_events_csv(data: bytes) -> ParsedPayload:
    if not data or not data.strip():
        raise ParseError(f"{SOURCE}: empty payload")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(f"{SOURCE}: not valid UTF-8 ({exc})") from exc
    if "\x00" in text:
        raise ParseError(f"{SOURCE}: payload contains NUL characters (binary or UTF-16), not a UTF-8 CSV")
    if text.lstrip().startswith("<"):
        raise ParseError(f"{SOURCE}: payload is HTML/XML, not CSV: {text.lstrip()[:80]!r}")
    try:
        frame = pl.read_csv(text.encode("utf-8"), infer_schema=False, quote_char='"')
    except pl.exceptions.PolarsError as exc:
        raise ParseError(f"{SOURCE}: CSV could not be read: {exc}") from exc

    columns = [c.strip() for c in frame.columns]
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise ParseError(f"{SOURCE}: column(s) {repeated} appear more than once in the header")
    frame.columns = columns
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    unexpected = [c for c in columns if c not in REQUIRED_COLUMNS]
    if len(missing) == len(REQUIRED_COLUMNS):
        raise ParseError(f"{SOURCE}: header has none of the expected columns; header: {columns[:10]!r}")
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {missing!r}")
        if unexpected:
            parts.append(f"unexpected {unexpected!r}")
        raise SchemaDriftError(f"{SOURCE}: columns changed: {'; '.join(parts)}")

    frame = frame.select(REQUIRED_COLUMNS)
    latest = frame["date"].drop_nulls().max() if frame.height else None
    meta = {"rows": frame.height, "latest_date": latest}
    return ParsedPayload(frame=frame, source_version=None, meta=meta)
