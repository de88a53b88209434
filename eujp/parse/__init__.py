"""One parser per wire format: bytes in, a `ParsedPayload` out. No network, no warehouse."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import polars as pl

from eujp.errors import ParseError, SchemaDriftError

# polars' null_values for an SDMX-CSV payload: an empty field is null whether it is quoted or not (polars reads
# an unquoted empty field as null, a quoted "" as the empty string; Comext quotes fields at times).
CSV_NULLS = [""]


@dataclass
class ParsedPayload:
    """A payload decoded into a long 'wire-shaped' frame (columns as the source names them).

    `source_version` is the version stamp the source put on the payload (JSON-stat `updated`,
    Comext `LAST UPDATE`, SIPRI 'Data generated'), or None when the format has none.
    """

    frame: pl.DataFrame
    source_version: str | None = None
    meta: dict = field(default_factory=dict)


def _version_time(version: str):
    """`version` as a time to compare, in UTC (a time without an offset taken as UTC)."""
    from datetime import UTC, datetime

    stamp = datetime.fromisoformat(version)
    return stamp.astimezone(UTC).replace(tzinfo=None) if stamp.tzinfo else stamp


def _version_keys(stamped: list[str]) -> list:
    """What orders the stamps `stamped`: their times when every one is ISO 8601, else their text."""
    try:
        return [_version_time(v) for v in stamped]
    except ValueError:  # not ISO 8601
        return list(stamped)


def latest_version(versions: Iterable[str | None]) -> str | None:
    """The latest of the payloads' version stamps (None and "" left out; None when none is left). Stamps in
    ISO 8601 are compared as times, offsets taken into account ("2026-02-06T22:45:00Z" is later than
    "2026-02-06T23:30:00+0100"); when one is not ISO 8601, all are compared as text."""
    stamped = [v for v in versions if v]
    if len(stamped) < 2:
        return stamped[0] if stamped else None
    keys = _version_keys(stamped)
    return stamped[max(range(len(stamped)), key=keys.__getitem__)]


def releases(versions: Sequence[str | None]) -> list[list[int]]:
    """The positions of `versions` (the payloads' version stamps) grouped by release, earliest release first:
    one release per stamp (stamps of one time are one, compared as `latest_version` compares them), the
    payloads without a stamp (None or "") one release before every stamped one; positions in order within a
    release. One release (a single group) when every payload has the same stamp, or none."""
    stamped = [i for i, v in enumerate(versions) if v]
    keys = dict(zip(stamped, _version_keys([versions[i] for i in stamped]), strict=True))
    groups: dict = {}
    for i in range(len(versions)):
        groups.setdefault(keys.get(i), []).append(i)
    unstamped = groups.pop(None, None)
    return ([unstamped] if unstamped else []) + [groups[k] for k in sorted(groups)]


ZIP_SIGNATURE, GZIP_SIGNATURE = b"PK\x03\x04", b"\x1f\x8b"  # the first bytes of a zip archive, of a gzip stream


def compressed(data: bytes, source: str, expected: str) -> ParseError | None:
    """The ParseError of a payload that is a zip archive or a gzip stream where `expected` (e.g. "CSV") was due
    (a snapshot file saved compressed: the live client unpacks what the service compresses), None otherwise."""
    kind = ("a zip archive" if data.startswith(ZIP_SIGNATURE) else
            "gzip-compressed" if data.startswith(GZIP_SIGNATURE) else None)
    if kind is None:
        return None
    return ParseError(f"{source}: payload is {kind}, not {expected}: unpack it first (the first bytes are "
                      f"{data[:4]!r})")


def decode_text_payload(data: bytes, source: str, expected: str) -> str:
    """A text payload as UTF-8 text (a byte-order mark dropped). ParseError naming `source` for an empty payload,
    bytes that are not UTF-8, NUL characters (binary or UTF-16) and an HTML/XML page (an error page) where
    `expected` (e.g. "CSV") was due."""
    if not data or not data.strip():
        raise ParseError(f"{source}: empty payload")
    if (packed := compressed(data, source, expected)) is not None:
        raise packed
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ParseError(f"{source}: not valid UTF-8 ({exc}) at line {line} column {column}", line=line,
                         column=column) from exc
    if "\x00" in text:
        raise ParseError(f"{source}: payload contains NUL characters (binary or UTF-16), not a UTF-8 CSV")
    head = text.lstrip()[:80]
    if head.startswith("<"):
        raise ParseError(f"{source}: payload is HTML/XML (an error page?), not {expected}: {head!r}")
    return text


def drop_blank_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` without the rows in which every field is empty. polars' CSV reader
    (2.1) reads a blank line as such a row (a trailing empty line, one between records); it holds no figure
    to load or reject, so it is skipped rather than failing the payload (a line of commas only is one too).
    Checked on the first column's null count first, which polars keeps: a payload without an empty first
    field costs nothing."""
    if not frame.width or not frame.get_column(frame.columns[0]).has_nulls():
        return frame
    return frame.filter(~pl.all_horizontal(pl.all().is_null()))


def read_text_csv(text: str, source: str) -> pl.DataFrame:
    """A text CSV read as strings (nothing inferred), header names stripped of surrounding blanks, blank
    lines skipped (`drop_blank_rows`). Unreadable CSV or a name that occurs twice in the header: ParseError
    naming the source."""
    try:
        frame = pl.read_csv(text.encode("utf-8"), infer_schema=False, quote_char='"')
    except pl.exceptions.PolarsError as exc:
        where = ragged_text_line(text)
        if where is None:
            raise ParseError(f"{source}: CSV could not be read: {exc}") from exc
        line, fields, expected = where
        raise ParseError(f"{source}: CSV could not be read: line {line} has {fields} fields where the header has "
                         f"{expected} ({str(exc).splitlines()[0]})", line=line) from exc
    columns = [c.strip() for c in frame.columns]
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise ParseError(f"{source}: column(s) {repeated} appear more than once in the header")
    # polars pads a record with fewer fields than the header with nulls (its last ones): a value missing, or
    # the fields after a missing one read into the wrong columns; a short record leaves the last column null
    if frame.width > 1 and frame.get_column(frame.columns[-1]).has_nulls() and (
            short := short_text_record(text, frame.width)) is not None:
        line, fields = short
        raise ParseError(f"{source}: CSV could not be read: the record at line {line} has {fields} field(s) where "
                         f"the header has {frame.width} (a field missing: the values after it would be read into "
                         "the wrong columns)", line=line)
    frame.columns = columns
    return drop_blank_rows(frame)


def short_text_record(text: str, width: int) -> tuple[int, int] | None:
    """(the line a record starts on, its fields) of the first record with fewer than `width` fields (Python's
    csv module: records may span lines in quoted fields), blank lines (and lines of blanks) not counted; None
    when there is none."""
    reader = csv.reader(io.StringIO(text, newline=""))
    next(reader, None)
    start = reader.line_num + 1
    for fields in reader:
        if len(fields) < width and any(f.strip() for f in fields):
            return start, len(fields)
        start = reader.line_num + 1
    return None


def ragged_text_line(text: str) -> tuple[int, int, int] | None:
    """(line, fields, header fields) of the first record with more fields than the header (Python's csv
    module, on the error path only: polars does not say where), None when there is none."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        return None
    for fields in reader:
        if len(fields) > len(header):
            return reader.line_num, len(fields), len(header)
    return None


def check_columns(source: str, columns: list[str], required, known, *, extra_word: str) -> None:
    """SchemaDriftError naming the `required` columns that are missing and the columns that are not `known`
    (called `extra_word` in the message), when there are any."""
    missing = [c for c in required if c not in columns]
    extra = [c for c in columns if c not in known]
    if missing or extra:
        parts = [f"missing {missing!r}"] if missing else []
        if extra:
            parts.append(f"{extra_word} {extra!r}")
        raise SchemaDriftError(f"{source}: columns changed: {'; '.join(parts)}")
