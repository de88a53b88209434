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

from eujp.errors import ParseError
from eujp.parse import ParsedPayload, check_columns, decode_text_payload, read_text_csv

SOURCE = "security events CSV"
REQUIRED_COLUMNS: tuple[str, ...] = (
    "date", "date_precision", "event_type", "parties", "title", "description", "source_url", "source_title",
)


def parse_events_csv(data: bytes) -> ParsedPayload:
    frame = read_text_csv(decode_text_payload(data, SOURCE, "CSV"), SOURCE)
    columns = frame.columns
    if not any(c in columns for c in REQUIRED_COLUMNS):
        raise ParseError(f"{SOURCE}: header has none of the expected columns; header: {columns[:10]!r}")
    check_columns(SOURCE, columns, REQUIRED_COLUMNS, REQUIRED_COLUMNS, extra_word="unexpected")

    frame = frame.select(REQUIRED_COLUMNS)
    latest = frame["date"].drop_nulls().max() if frame.height else None
    meta = {"rows": frame.height, "latest_date": latest}
    return ParsedPayload(frame=frame, source_version=None, meta=meta)
