"""SDMX-CSV readers: a generic one, and the Comext DS-045409 payload parser.

Everything is read as String by polars' CSV reader (no Python loop over rows); callers cast. Payloads
are UTF-8 (a byte-order mark is tolerated) with LF or CRLF line ends. Every record is one line with the
header's number of fields (`_check_records`: polars pads a short line with nulls, and a stray quote makes it
read the next lines into one field, both without a word).
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Sequence

import numpy as np
import polars as pl

from eujp.errors import ParseError, SchemaDriftError
from eujp.parse import CSV_NULLS, ParsedPayload, compressed, drop_blank_rows
from transforms.comext_goods import WIRE_COLUMNS as COMEXT_WIRE_COLUMNS

BOM = b"\xef\xbb\xbf"

# The columns a Comext payload must have, in the order its transform reads them.
COMEXT_COLUMNS: tuple[str, ...] = COMEXT_WIRE_COLUMNS
COMEXT_DATAFLOW_PREFIX = "ESTAT:DS-045409("
COMEXT_LAST_UPDATE_FORMAT = "%d/%m/%y %H:%M:%S"
# A plain decimal number as Comext writes OBS_VALUE ("1663789", "502.02", "1.5E3"); NaN, inf, "1,5" do not match.
_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"


def _header(data: bytes, what: str) -> list[str]:
    """Column names from the first line (quoted names allowed)."""
    end = data.find(b"\n")
    first = (data if end < 0 else data[:end]).rstrip(b"\r")
    try:
        line = first.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(
            f"{what}: header line is not valid UTF-8 (wrong encoding?): byte {first[exc.start:exc.start + 1]!r} "
            f"at offset {exc.start}"
        ) from None
    try:
        return next(csv.reader([line]))
    except csv.Error as exc:  # e.g. a stray carriage return inside the header line
        raise ParseError(f"{what}: header line is not valid CSV ({exc}): {line[:120]!r}") from None


def _utf8_error(data: bytes, what: str) -> ParseError:
    """Locate the first invalid UTF-8 byte (only called once polars has refused the payload)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return ParseError(
            f"{what}: payload is not valid UTF-8 (wrong encoding?): byte {data[exc.start:exc.start + 1]!r} "
            f"at line {line} column {column} (offset {exc.start})", line=line, column=column,
        )
    return ParseError(f"{what}: payload is not valid UTF-8 (wrong encoding?)")


def ragged_line(data: bytes, n_fields: int) -> tuple[int, int, int] | None:
    """(line, column, fields) of the first line after the header that has more fields than the header's
    `n_fields` (what polars refuses without saying where), by Python's csv module: only called on the error
    path. Column: where the first extra field starts (1-based, in characters). None when none is found."""
    text = data.decode("utf-8", "replace")
    lines = text.splitlines(keepends=True)
    reader = csv.reader(lines)
    next(reader, None)
    for fields in reader:
        if len(fields) > n_fields:
            line = reader.line_num
            raw = lines[line - 1] if line - 1 < len(lines) else ""
            cut = 0
            for _ in range(n_fields):  # the end of the last expected field (unquoted Comext rows)
                cut = raw.find(",", cut) + 1
            return line, cut + 1 if cut else 1, len(fields)
    return None


def parse_sdmx_csv(
    data: bytes,
    required_columns: Sequence[str],
    *,
    allowed_extra: Sequence[str] | None = None,
    what: str = "SDMX-CSV",
) -> pl.DataFrame:
    """Read an SDMX-CSV payload into an all-String frame (empty fields are null; blank lines skipped, as
    `drop_blank_rows` says).

    Raises ParseError for an empty body, an HTML page, invalid UTF-8, a repeated column name, ragged or
    truncated lines and missing `required_columns` (all named). When `allowed_extra` is given, any column
    neither required nor in it raises SchemaDriftError naming the new columns; with None, extra columns
    are kept. `what` names the payload in messages.
    """
    size = len(data)
    data = data.removeprefix(BOM)
    if not data or data.isspace():
        raise ParseError(f"{what}: empty payload ({size} bytes)")
    if (packed := compressed(data, what, "CSV")) is not None:
        raise packed
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise ParseError(f"{what}: payload is UTF-16 (byte-order mark {data[:2]!r}), expected UTF-8")
    if data[:4096].lstrip()[:1] == b"<":
        title = re.search(rb"<title[^>]*>(.*?)</title>", data[:4096], re.IGNORECASE | re.DOTALL)
        hint = f" (title: {title.group(1).decode('utf-8', 'replace').strip()!r})" if title else ""
        raise ParseError(f"{what}: got an HTML/XML page instead of CSV ({size} bytes){hint}")

    columns = _header(data, what)
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise ParseError(f"{what}: column(s) {repeated} appear more than once in the header")
    missing = [c for c in required_columns if c not in columns]
    if missing:
        raise ParseError(f"{what}: missing column(s) {missing}; header is {columns}")
    if allowed_extra is not None:
        known = set(required_columns) | set(allowed_extra)
        new = [c for c in columns if c not in known]
        if new:
            raise SchemaDriftError(f"{what}: unexpected new column(s) {new}; expected {list(required_columns)}")

    try:
        frame = pl.read_csv(data, has_header=True, infer_schema=False, raise_if_empty=True, null_values=CSV_NULLS)
    except pl.exceptions.ComputeError as exc:
        if "utf-8" in str(exc).lower() or "utf8" in str(exc).lower():
            raise _utf8_error(data, what) from None
        raise _malformed(data, columns, what, exc) from None
    except pl.exceptions.PolarsError as exc:
        raise _malformed(data, columns, what, exc) from None

    # A short line is padded with nulls by the reader; at the very end of a payload without a final
    # newline it is the sign of a cut-off download. The line's own fields are counted (as CSV: a quoted comma
    # is no field's end), not its nulls: a complete last line may end in an empty field.
    if frame.height and not data[-16:].rstrip(b" ").endswith(b"\n"):
        last = data[data.rfind(b"\n") + 1:].decode("utf-8", "replace")
        try:
            present = len(next(csv.reader([last.removesuffix("\r")]), [""]))
        except csv.Error:  # a bare carriage return inside the line: no CSV line, count its commas
            present = last.count(",") + 1
        if present < frame.width:
            line = data.count(b"\n") + 1
            raise ParseError(
                f"{what}: payload looks truncated at line {line} column {len(last) + 1}: the line ends after "
                f"{present} of {frame.width} fields (in {columns[present - 1]!r}, missing from "
                f"{columns[present]!r} on) with no line end: {last[-80:]!r}",
                line=line, column=len(last) + 1,
            )
    _check_records(data, frame, columns, what)
    return drop_blank_rows(frame)


def _check_records(data: bytes, frame: pl.DataFrame, columns: list[str], what: str) -> None:
    """ParseError naming the first record that is not one line of the header's fields: a quoted field that runs
    over a line end (a stray or unclosed quote: polars reads the lines after it into that field, so a row is
    lost into another's value; no SDMX-CSV code or figure holds a line break) or a line with fewer fields than
    the header (polars pads it with nulls: a value missing, or the fields after a missing one read into the
    wrong columns). Blank lines (`drop_blank_rows`) are neither.

    Costs nothing on a well-formed payload but a search for a quote and the last column's null count: every
    record is then one line (row i is line i + 2), and a short line leaves its last column null. When some are
    null (an empty last field, a blank line), the payload's commas that end a field are counted (all of them
    but those inside quoted fields, which the values read hold: a line's are its fields but one), and only
    when they are too few are the lines of those rows found (the positions of the line ends, numpy) and
    counted (one of them is then short, or a line of commas alone): their commas, or, in a payload with quotes,
    their fields by Python's csv module."""
    quoted = data.find(b'"') >= 0
    if quoted:
        lines = _count_byte(data, 10) + (not data.endswith(b"\n")) - 1
        if lines != frame.height:
            raise _spanning(data, what)
    last = frame.get_column(frame.columns[-1])
    if not last.has_nulls():
        return
    rows = np.flatnonzero(last.is_null().to_numpy())
    # The commas that end a field are the payload's commas but those inside quoted fields, which are in the values
    # read (and the header's names): the lines are whole when they are as many as whole lines have (no line has
    # more fields than the header: polars refuses it).
    inside = 0
    if quoted:
        inside = sum(c.count(",") for c in columns) + int(frame.select(
            pl.sum_horizontal(pl.all().str.count_matches(",", literal=True).sum())).item())
    blank = int(frame.select(pl.all_horizontal(pl.all().is_null()).sum()).item())  # (their last field is null)
    if _count_byte(data, 44) - inside == (frame.height - blank + 1) * (len(columns) - 1):
        return
    ends = np.append(np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10), len(data))  # of line k: ends[k-1]
    if int(rows[-1]) + 1 >= ends.size:  # more rows than lines: not one record a line
        raise ParseError(f"{what}: malformed CSV: {frame.height} records in {ends.size - 1} lines after the header")
    starts = (ends[rows] + 1).tolist()  # row i is line i + 2: it starts after the end of line i + 1
    stops = ends[rows + 1].tolist()
    for k, (a, b) in enumerate(zip(starts, stops, strict=True)):
        if quoted:
            fields = len(next(csv.reader([data[a:b].decode("utf-8", "replace").rstrip("\r")]), ()))
        else:
            fields = data.count(b",", a, b) + 1
        if fields >= len(columns) or not data[a:b].strip():  # whole, or a blank line
            continue
        line = int(rows[k]) + 2
        text = data[a:b].decode("utf-8", "replace").rstrip("\r")
        raise ParseError(f"{what}: malformed CSV at line {line}: {fields} field(s) where the header has "
                         f"{len(columns)} (a field missing: the values after it would be read into the wrong "
                         f"columns): {text[:120]!r}", line=line, column=1)


def _count_byte(data: bytes, byte: int, block: int = 1 << 24) -> int:
    """How many times `byte` occurs in `data` (numpy, a block at a time: 3x faster than bytes.count here)."""
    view = np.frombuffer(data, dtype=np.uint8)
    return sum(int(np.count_nonzero(view[i:i + block] == byte)) for i in range(0, view.size, block))


def _spanning(data: bytes, what: str) -> ParseError:
    """ParseError naming the first record that runs over a line end (Python's csv module, on the error path)."""
    lines = data.decode("utf-8", "replace").splitlines(keepends=True)
    reader = csv.reader(lines)
    next(reader, None)
    expected = 2
    try:
        for _ in reader:
            if reader.line_num > expected:
                break
            expected += 1
        else:
            return ParseError(f"{what}: malformed CSV: the records do not match the lines (a quote out of place?)")
    except csv.Error as exc:
        return ParseError(f"{what}: malformed CSV at line {expected}: {exc}", line=expected, column=1)
    shown = lines[expected - 1].rstrip("\r\n") if expected - 1 < len(lines) else ""
    return ParseError(f"{what}: malformed CSV at line {expected}: a quoted field runs over the line end, to line "
                      f"{reader.line_num} (a stray or unclosed quote: the lines after it would be read into one "
                      f"field); no SDMX-CSV field holds a line break: {shown[:120]!r}", line=expected, column=1)


def _malformed(data: bytes, columns: list[str], what: str, exc: Exception) -> ParseError:
    """ParseError for a payload polars refused: names the first line with more fields than the header."""
    reason = str(exc).splitlines()[0]
    where = ragged_line(data, len(columns))
    if where is None:
        if data.find(b'"') >= 0:  # an unclosed quote: polars reads to the end of the payload, then refuses
            located = _spanning(data, what)
            if located.line is not None:
                return ParseError(f"{located} ({reason})", line=located.line, column=located.column)
        return ParseError(f"{what}: malformed CSV: {reason}")
    line, column, fields = where
    return ParseError(f"{what}: malformed CSV at line {line} column {column}: {fields} fields where the header "
                      f"has {len(columns)} ({reason})", line=line, column=column)


def _line_of(frame: pl.DataFrame, bad: pl.Expr, data: bytes | None = None) -> int | None:
    """The payload line of the first row where `bad` holds (header = line 1; each record is one line:
    `_check_records`). With the payload's `data`, its rows are read again with its blank lines (on the error
    path: `frame` has none, so a blank line before the row would put the number that many lines early)."""
    if data is not None:
        frame = pl.read_csv(data.removeprefix(BOM), infer_schema=False, null_values=CSV_NULLS)
        bad = bad.fill_null(False) & ~pl.all_horizontal(pl.all().is_null())  # not a blank line
    index = frame.select(pl.arg_where(bad.fill_null(False)).first()).item()
    return None if index is None else index + 2


def _distinct(column: pl.Series) -> pl.Series:
    """`column.unique()`, without hashing every row when the column holds one value (as DATAFLOW and
    LAST UPDATE of a Comext payload do)."""
    if column.len() and not column.has_nulls() and (column == column[0]).all():  # nulls first: None == x fails
        return column.head(1)
    return column.unique()


def _iso_last_update(frame: pl.DataFrame, data: bytes | None = None) -> str | None:
    """Latest `LAST UPDATE` (dd/mm/yy HH:MM:SS) as ISO 8601, e.g. '2026-08-14T11:00:00'. `data`: the payload
    the frame was read from (a bad stamp's line is counted in it, `_line_of`)."""
    stamps = tuple(sorted(v for v in _distinct(frame.get_column("LAST UPDATE")).to_list() if v is not None))
    if not stamps:
        return None
    latest, bad = _latest_stamp(stamps)
    if bad is not None:
        line = _line_of(frame, pl.col("LAST UPDATE") == bad, data)
        raise ParseError(f"Comext DS-045409: LAST UPDATE {bad!r} is not dd/mm/yy HH:MM:SS (line {line})", line=line)
    return latest


@functools.lru_cache(maxsize=256)
def _latest_stamp(stamps: tuple[str, ...]) -> tuple[str | None, str | None]:
    """(the latest of the distinct LAST UPDATE `stamps` in ISO 8601, None) or (None, the first that is not
    dd/mm/yy HH:MM:SS). Cached: a release of Comext stamps all its payloads alike, and a live load parses
    thousands of small ones, where polars' strptime of one value cost ~0.4 ms of a ~5 ms parse."""
    parsed = pl.Series(stamps, dtype=pl.String).str.strptime(pl.Datetime("us"), COMEXT_LAST_UPDATE_FORMAT,
                                                              strict=False)
    if parsed.null_count():
        return None, stamps[parsed.is_null().arg_true()[0]]
    return parsed.max().isoformat(), None


def comext_version(stamps: pl.DataFrame) -> str | None:
    """The source_version parse_comext_csv gives a payload, from the distinct values of its LAST UPDATE column
    (a frame of that column): the latest, in ISO 8601 (eujp.sources.base.WireGroups.version)."""
    return _iso_last_update(stamps)


def parse_comext_csv(data: bytes) -> ParsedPayload:
    """Comext DS-045409 SDMX-CSV → wire frame.

    Columns: the ten DS-045409 columns as published (String), except `OBS_VALUE` parsed to Float64,
    plus `OBS_VALUE_raw` (String, the text as published). An OBS_VALUE that is not a plain number
    ("n/a", "1,5", "NaN", "1e400") is null in `OBS_VALUE` and kept in `OBS_VALUE_raw`, so the transform can reject
    that row with a reason instead of the parse failing. `source_version` is the latest LAST UPDATE in
    ISO 8601. A payload of another dataflow, an unknown extra column (SchemaDriftError), a missing column,
    an HTML or empty body and invalid UTF-8 raise ParseError.
    """
    what = "Comext DS-045409"
    frame = parse_sdmx_csv(data, COMEXT_COLUMNS, allowed_extra=(), what=what)
    if tuple(frame.columns) != COMEXT_COLUMNS:
        frame = frame.select(COMEXT_COLUMNS)

    # The distinct DATAFLOWs (one in a Comext payload) are checked in Python: polars' per-call cost, not the
    # rows, is what these checks weigh on a payload of a few thousand rows.
    dataflows = _distinct(frame.get_column("DATAFLOW")).to_list()
    foreign = [d for d in dataflows if d is None or not d.startswith(COMEXT_DATAFLOW_PREFIX)]
    if foreign:
        line = _line_of(frame, ~pl.col("DATAFLOW").str.starts_with(COMEXT_DATAFLOW_PREFIX).fill_null(False), data)
        shown = sorted(d for d in foreign if d is not None) + [None] * foreign.count(None)
        raise ParseError(
            f"{what}: DATAFLOW {shown[:3]} is not {COMEXT_DATAFLOW_PREFIX}...) "
            f"(first at line {line} column 1)", line=line, column=1,
        )

    raw = pl.col("OBS_VALUE").str.strip_chars()
    # polars' float parser accepts every plain number _NUMBER accepts, and beyond those only spellings
    # that come out non-finite ("NaN", "inf", "1e400"): the regex (a third of the parse time at 10M rows)
    # only runs when the payload holds a non-finite value, and then gives exactly its old result.
    frame = frame.with_columns(
        raw.cast(pl.Float64, strict=False).alias("OBS_VALUE"), pl.col("OBS_VALUE").alias("OBS_VALUE_raw")
    )
    if frame.get_column("OBS_VALUE").null_count() > frame.get_column("OBS_VALUE_raw").null_count():
        # a value that did not read as a number: a blank one ('""', ' ') is a missing value, not a bad number
        frame = frame.with_columns(pl.when(pl.col("OBS_VALUE_raw").str.strip_chars() != "")
                                   .then(pl.col("OBS_VALUE_raw")).alias("OBS_VALUE_raw"))
    if frame.select(pl.col("OBS_VALUE").is_infinite().any() | pl.col("OBS_VALUE").is_nan().any()).item():
        raw = pl.col("OBS_VALUE_raw").str.strip_chars()
        frame = frame.with_columns(
            # a number beyond the float range ("1e400") is no more a trade figure than "NaN" is
            pl.when(raw.str.contains(_NUMBER) & pl.col("OBS_VALUE").is_finite()).then(pl.col("OBS_VALUE"))
            .otherwise(None).alias("OBS_VALUE")
        )
    return ParsedPayload(
        frame=frame,
        source_version=_iso_last_update(frame, data),
        meta={"dataflows": sorted(d for d in dataflows if d is not None), "rows": frame.height},
    )
