"""A source's payloads as chunks of transformed rows, in bounded memory (`Stream`, `source_stream`).

A payload is read in pieces of lines (`line_pieces`), parsed by its source, and cut into chunks of at most
EUJP_BATCH_ROWS wire rows that hold every row of a key: in memory, by series, or hash-spilled to disk
(`Stream`'s docstring). A payload that fails to parse is quarantined whole, by name, while the others load
(`QuarantinedPayload`). eujp.pipeline.prepare_source validates and loads the chunks; `parse_and_transform` is
the one-result form the tests and the replay of several landings use.
"""

from __future__ import annotations

import functools
import inspect
import io
import itertools
import logging
import math
import re
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cached_property
from pathlib import Path
from typing import BinaryIO, TypeVar

import duckdb
import numpy as np
import polars as pl

from eujp.config import batch_rows, duckdb_memory_limit
from eujp.errors import EujpError, ParseError, SchemaDriftError
from eujp.landing import RawPayload, side_by_side, spill_folder
from eujp.parse import CSV_NULLS, ParsedPayload, latest_version, releases
from eujp.sources import Source
from eujp.sql import quote_ident, sql_string
from transforms.common import TransformResult, WireColumnsError, empty_rejected, supersede

log = logging.getLogger("eujp")


def concat_conflicts(frames: list[pl.DataFrame | None]) -> pl.DataFrame | None:
    """The conflicting natural keys of several chunks' results (`TransformResult.conflicts`), each once."""
    present = [f for f in frames if f is not None and not f.is_empty()]
    return pl.concat(present).unique(maintain_order=True) if present else None


# --- a payload parsed whole, a wire frame transformed ---------------------------------------------------

def _parse_one(source: Source, payload: RawPayload) -> ParsedPayload:
    try:
        return source.parse(payload.read())
    except ParseError as exc:
        raise type(exc)(f"{payload.name}: {exc}{declared_charset(exc, payload)}", line=exc.line,
                        column=exc.column) from exc


_CHARSET = re.compile(r"""(?i)\bcharset\s*=\s*["']?([^\s;"']+)""")


def declared_charset(exc: ParseError, payload: RawPayload) -> str:
    """For a payload that is not valid UTF-8 and whose Content-Type declared another charset: what it declared
    (the parsers read UTF-8 only); else ''."""
    if "not valid UTF-8" not in str(exc):
        return ""
    content_type = next((v for k, v in payload.headers.items() if k.lower() == "content-type"), "")
    found = _CHARSET.search(content_type)
    if found is None or found.group(1).lower().replace("_", "-") in ("utf-8", "utf8"):
        return ""
    return f" (the server declared charset={found.group(1)}: Content-Type {content_type!r})"


def concat_wire(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """A source's wire frames stacked in order, by column name (a column some lack is null in their rows); a
    single frame as it is."""
    return pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]


def parse_payloads(source: Source, payloads: list[RawPayload]) -> ParsedPayload:
    """Every payload parsed and concatenated (no quarantine: the first ParseError is raised, naming its
    payload). The whole-batch reference the streamed path is tested against."""
    parsed = [_parse_one(source, p) for p in payloads]
    frame = concat_wire([p.frame for p in parsed])
    return ParsedPayload(frame=frame, source_version=latest_version(p.source_version for p in parsed),
                         meta={"files": [p.name for p in payloads]})


Step = Callable[[str], AbstractContextManager]


def no_step(name: str) -> AbstractContextManager:
    """The default `step` of eujp.pipeline.prepare_source and parse_and_transform: observes nothing. A caller
    may pass a context-manager factory instead (benchmarks/ times and meters each step with one)."""
    return nullcontext()


def payloads_fetched_on(payloads: Iterable[RawPayload]) -> date | None:
    """The UTC day the newest of `payloads` was fetched (`RawPayload.fetched_at`: when a live run or a snapshot
    read took it, kept in the raw zone, so a replay of a landing gives the landing's day), None when none of
    them says. What a transform is given as `fetched_on` (eujp.sources.base.Transform), never the clock."""
    times = []
    for p in payloads:
        try:
            at = datetime.fromisoformat(p.fetched_at)
        except (TypeError, ValueError):  # a payload read back without its time (no .meta.json)
            continue
        times.append(at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC))
    return max(times).date() if times else None


@functools.cache
def takes_fetched_on(transform: Callable) -> bool:
    """Whether a transform declares `fetched_on` (or **kwargs): one written before it was given (a source
    module of EUJP_SOURCE_MODULES, docs/add-a-source.md) is called with the four arguments it takes."""
    try:
        parameters = inspect.signature(transform).parameters.values()
    except (TypeError, ValueError):  # no signature to read (a builtin): called as before
        return False
    return any(p.name == "fetched_on" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def run_transform(source: Source, frame: pl.DataFrame, version: str | None, countries: pl.DataFrame,
                  fetched: date | None) -> TransformResult:
    """The source's transform of one wire frame (`fetched`: its payloads' day, `payloads_fetched_on`); a
    transform that finds other wire columns than it reads raises SchemaDriftError (the transforms know nothing
    of eujp's errors: transforms.common.WireColumnsError)."""
    extra = {"fetched_on": fetched} if takes_fetched_on(source.transform) else {}
    try:
        return source.transform(frame, source.name, version, countries, **extra)
    except WireColumnsError as exc:
        raise SchemaDriftError(str(exc)) from exc


# --- payloads in pieces, a bad payload quarantined whole ----------------------------------------------------

T = TypeVar("T")

READ_BLOCK = 64 << 20  # bytes read at a time from a file-backed payload (where a block is kept whole)
SCAN_BLOCK = 1 << 20  # bytes read at a time where only line ends are looked for (a block stays in the CPU cache)
SPILL_PIECE_FRACTION = 4  # a spilled payload is read in pieces of EUJP_BATCH_ROWS / this many lines (Stream.piece_lines)
SCAN_THREADS = 4  # threads that count, scan and parse a source's small payloads side by side (`each_payload`)
SMALL_PAYLOAD_BYTES = 2 << 20  # a payload up to this size is counted, scanned and parsed on one of those threads
SERIES_SCAN_ROWS = 1_000_000  # rows a batch of the series scan holds (`Stream._series_runs`)
SERIES_SEED = 5  # seed of the hash of a row's series (the source's series_key), the same in the scan and the cut
PARSE_AHEAD_BYTES = 64 << 20  # payloads of a spilled group parsed before they are gathered: at most this many bytes


def drifted_payloads(columns: dict[str, list[str]]) -> str:
    """'' when every payload has the same wire columns; else which payloads differ from the most common set
    and how (the wire columns of a transform that refused their mix name no payload: a dimension renamed in
    one of two payloads read as 'missing [], unexpected [...]')."""
    sets = [frozenset(c) for c in columns.values()]
    if len(set(sets)) < 2:
        return ""
    common = max(sets, key=sets.count)  # the most payloads' columns; on a tie, the first payload's (in order)
    odd = [f"{name} (missing {sorted(common - set(c))}, unexpected {sorted(set(c) - common)})"
           for name, c in columns.items() if frozenset(c) != common]
    return f"; payload(s) whose wire columns differ from the others': {', '.join(odd)}"


def each_payload(work: Callable[[RawPayload], T], payloads: list[RawPayload]) -> list[T]:
    """`work(payload)` for every payload, in order: those up to SMALL_PAYLOAD_BYTES on SCAN_THREADS threads,
    the others on the caller's thread. The reading and polars' work release the GIL, and on a source of
    thousands of small payloads a call's fixed cost is most of it (2,000 payloads of 5,000 rows, 0.5 MB each:
    their month columns scanned in 4.1 s one by one, 1.9 s on four threads; parsed in 13.9 s, 11.2 s). A larger
    payload gains little (polars reads it on every core already), and threads that allocate leave more memory
    held after them (120 month files of 8 MB counted, scanned and parsed side by side: the load started
    0.15-0.2 GB higher)."""
    return side_by_side(work, payloads, threads=SCAN_THREADS, name="eujp-scan",
                        chosen=[i for i, p in enumerate(payloads) if p.size <= SMALL_PAYLOAD_BYTES])


def _blocks(payload: RawPayload) -> Iterator[bytes]:
    """The payload's bytes in blocks of at most READ_BLOCK (a file-backed payload is never read whole)."""
    if payload.data is not None:
        view = memoryview(payload.data)
        for start in range(0, len(view), READ_BLOCK):
            yield bytes(view[start:start + READ_BLOCK])
        return
    with open(payload.path, "rb") as f:
        while block := f.read(READ_BLOCK):
            yield block


def _opened(payload: RawPayload) -> BinaryIO:
    """The payload as a binary file object: its file, or its bytes in memory (`io.BytesIO` shares them)."""
    return io.BytesIO(payload.data) if payload.data is not None else open(payload.path, "rb")


def _line_ends(block: bytes | bytearray | memoryview) -> np.ndarray:
    """`block` as an array of booleans, true at each line end (b"\\n")."""
    return np.frombuffer(block, dtype=np.uint8) == 10


def _quotes(block: bytes, quoted: bool, lo: int, hi: int) -> int:
    """The '"' in block[lo:hi] (none when the block holds none: `quoted` is False)."""
    return block.count(b'"', lo, hi) if quoted else 0


def line_pieces(payload: RawPayload, max_lines: int) -> Iterator[tuple[int, bytes]]:
    """(line number of the piece's first line, the header line followed by the piece) of a line-oriented
    payload (SDMX-CSV), in pieces of at most `max_lines` lines after the header line, cut at line ends only,
    never inside a quoted field (a piece holding an odd number of '"' is carried on to the first line end
    after which the count is even; when none comes, the rest is the last piece). A payload that holds no line
    end comes as one piece without a header (line 1).

    Memory: a piece's bytes twice at most, while it is put together (the blocks read, then the piece). Time:
    linear, one pass: the payload is read in SCAN_BLOCK blocks whose line ends are counted by numpy while
    they are in the CPU cache; only the block where a piece ends is searched for its offsets, and quotes are
    counted only in a block that holds one."""
    with _opened(payload) as f:
        header = f.readline()
        if header.endswith(b"\n"):
            yield from _pieces_after_header(f, header, max_lines)
        else:
            yield 1, header
    if payload.data is None:
        payload._check_file()  # the file did not change while it was read


def _pieces_after_header(f: BinaryIO, header: bytes, max_lines: int) -> Iterator[tuple[int, bytes]]:
    """line_pieces of the rest of `f`, each piece led by `header`."""
    first = 2
    pending: list[bytes | memoryview] = []  # read since the last piece
    pending_lines = pending_quotes = 0
    while block := f.read(SCAN_BLOCK):
        is_end = _line_ends(block)
        lines = int(np.count_nonzero(is_end))
        quoted = block.find(b'"') >= 0
        ends: np.ndarray | None = None  # offsets of the block's line ends, found once a piece ends in it
        used = 0  # line ends of the block in pieces already
        start = 0  # offset of the block's first byte not in a piece yet
        while lines - used >= max(max_lines - pending_lines, 1):
            if ends is None:
                ends = np.flatnonzero(is_end)
            k = used + max(max_lines - pending_lines, 1) - 1  # the index of the earliest line end to cut at
            cut = int(ends[k]) + 1
            parity = pending_quotes + _quotes(block, quoted, start, cut)
            while parity % 2 and k + 1 < lines:  # a quoted field spans the cut: on to an even count
                k += 1
                parity += _quotes(block, quoted, cut, int(ends[k]) + 1)
                cut = int(ends[k]) + 1
            if parity % 2:  # no line end of this block closes the field: the piece goes on in the next
                break
            piece = b"".join([header, *pending, memoryview(block)[start:cut]])
            piece_lines = pending_lines + k + 1 - used
            pending, pending_lines, pending_quotes = [], 0, 0  # the blocks are released before the piece is read
            used, start = k + 1, cut
            yield first, piece
            del piece  # not held while the next piece is put together
            first += piece_lines
        if start < len(block):
            pending.append(memoryview(block)[start:] if start else block)
            pending_lines += lines - used
            pending_quotes += _quotes(block, quoted, start, len(block))
    if pending or first == 2:
        yield first, b"".join([header, *pending])


def count_data_lines(payload: RawPayload) -> int:
    """Lines after the first (the header) of a payload, a last line without its line end included: the rows
    a line-oriented payload holds (and the rows in of a payload that is quarantined whole). Read in
    SCAN_BLOCK blocks into one buffer, line ends counted by numpy."""
    buffer = bytearray(SCAN_BLOCK)
    lines, size, last = 0, 0, 10
    with _opened(payload) as f:
        while n := f.readinto(buffer):
            lines += int(np.count_nonzero(_line_ends(memoryview(buffer)[:n])))
            size, last = size + n, buffer[n - 1]
    if size and last != 10:
        lines += 1
    return max(lines - 1, 0)


QUARANTINED_LINE_CHARS = 2000  # a line of a quarantined payload is kept up to this many characters


QUARANTINE_WHOLE_BYTES = 64 << 20  # a quarantined payload up to this size is read whole; a larger one in pieces


def quarantine_payload(payload: RawPayload, error: ParseError) -> pl.DataFrame:
    """A payload that cannot be parsed, quarantined whole: one rejected row per line after its header (so
    rows in counts the lines read), each naming the payload, its line number and the error; a payload of
    one line (a JSON document, an error page) is one row. Blank lines are no rows, as a parse skips them.
    `raw_record`: {"payload", "line", "text"}. All of it at once: `quarantine_frames` gives the same rows in
    pieces."""
    text = b"".join(_blocks(payload)).decode("utf-8", "replace")
    lines = text.splitlines()
    rows = [(i + 1, line) for i, line in enumerate(lines) if i and line.strip()] or [(1, text)]
    return _quarantine_rows(payload, error, rows)


def _quarantine_rows(payload: RawPayload, error: ParseError, rows: list[tuple[int, str]]) -> pl.DataFrame:
    reason = f"payload {payload.name} not loaded: {error}"
    return pl.DataFrame(
        {"line": [n for n, _ in rows], "text": [t[:QUARANTINED_LINE_CHARS] for _, t in rows]},
        schema={"line": pl.Int64, "text": pl.String},
    ).select(
        pl.lit(reason[:2000], dtype=pl.String).alias("reason"),
        pl.struct(pl.lit(payload.name).alias("payload"), pl.col("line"), pl.col("text"))
        .struct.json_encode().alias("raw_record"),
    )


def quarantine_frames(payload: RawPayload, error: ParseError, max_lines: int) -> Iterator[pl.DataFrame]:
    """`quarantine_payload`'s rows in frames of at most `max_lines` rows, the payload read in blocks cut after
    a line end (a payload over QUARANTINE_WHOLE_BYTES is never held whole, only its longest line): a bad
    payload of the payload cap costs a piece, not its 10M lines as Python strings. The same rows: Python's
    `splitlines` of a text cut after a '\n' is the lines of its parts."""
    if payload.size <= QUARANTINE_WHOLE_BYTES:
        frame = quarantine_payload(payload, error)
        for start in range(0, frame.height, max_lines):
            yield frame.slice(start, max_lines)
        return
    number, made, head, carry = 0, 0, "", b""
    rows: list[tuple[int, str]] = []
    for block in itertools.chain(_blocks(payload), [None]):
        if block is None:  # the end: what is left is the last line, without its line end
            complete, carry = carry, b""
        else:
            block = carry + block
            cut = block.rfind(b"\n") + 1
            complete, carry = block[:cut], block[cut:]
        if not complete:
            continue
        text = complete.decode("utf-8", "replace")
        if len(head) < QUARANTINED_LINE_CHARS:
            head += text[:QUARANTINED_LINE_CHARS - len(head)]
        for line in text.splitlines():
            number += 1
            if number > 1 and line.strip():  # line 1 is the header; a blank line is no row
                rows.append((number, line))
                made += 1
        del text
        if len(rows) >= max_lines:
            for start in range(0, len(rows) - len(rows) % max_lines, max_lines):
                yield _quarantine_rows(payload, error, rows[start:start + max_lines])
            rows = rows[len(rows) - len(rows) % max_lines:]
    if not made:  # a payload of one line (or of blank lines after it): one row, the payload's text
        rows = [(1, head)]
    if rows:
        yield _quarantine_rows(payload, error, rows)


@dataclass
class QuarantinedPayload:
    """A payload a stream quarantined whole (`quarantine_frames`), its rows made when they are written."""

    payload: RawPayload
    error: ParseError

    def frames(self, max_lines: int) -> Iterator[pl.DataFrame]:
        return quarantine_frames(self.payload, self.error, max_lines)

    def frame(self) -> pl.DataFrame:
        return quarantine_payload(self.payload, self.error)


def _relocated(exc: ParseError, payload: RawPayload, first_line: int) -> ParseError:
    """`exc` of a piece starting at payload line `first_line` (the header is the piece's line 1), with the
    payload's name and line numbers."""
    message, line = str(exc), exc.line
    if line is not None and first_line > 2 and line > 1:
        line = line + first_line - 2
        message = message.replace(f"line {exc.line}", f"line {line}", 1)
    return type(exc)(f"{payload.name}: {message}{declared_charset(exc, payload)}", line=line, column=exc.column)


def _windows(items: list[int], size: Callable[[int], int], limit: int) -> Iterator[list[int]]:
    """`items` in order, in runs whose sizes add up to at most `limit` (an item over it alone)."""
    window: list[int] = []
    total = 0
    for item in items:
        if window and total + size(item) > limit:
            yield window
            window, total = [], 0
        window.append(item)
        total += size(item)
    if window:
        yield window


def streams(source: Source) -> bool:
    """A source whose transform is confined to `transform_key` and whose payloads are upserted by key is
    parsed, transformed, validated and loaded in chunks (see `Stream`)."""
    return bool(source.transform_key) and source.replace_scope is None


@dataclass(frozen=True)
class _Spilled:
    """How a spilled piece's files were written: the constant text columns left out of them, with their value;
    the piece's columns in order; the schema of what was written."""

    constant: dict[str, str]
    columns: tuple[str, ...]
    schema: tuple[tuple[str, pl.DataType], ...]


@dataclass
class Stream:
    """A source's payloads as chunks of transformed rows, each of at most `limit` wire rows.

    A payload that is spilled (below) is read in pieces of at most `piece_lines` lines (a quarter of `limit`:
    `line_pieces`) and parsed piece by piece; a shorter one, or one of an in-memory chunk (at most `limit`
    lines), is parsed as it is (cutting copies every byte). A payload that fails to
    parse is quarantined whole, by name (`quarantine_payload`: its lines count as rows in), while the others
    load; a source of one payload, a full extract, or one whose every payload fails, fails
    (`_fail_or_quarantine`).

    When all the wire rows fit in one chunk, they are transformed together: exactly the whole-batch
    transform. A single payload over `limit` is streamed by series when each of its series (`Source.series_key`)
    is one run of lines, as Comext sorts an answer (`_series_scan`, `_in_series`), else spilled (below).
    Otherwise, for a source with wire groups (`Source.wire_groups`, Comext: TIME_PERIOD), that one column (and
    the version column) of each payload is read alone first (a scan, `_plan`): payloads that share a value of
    it may share a key and are one group; payloads that share none cannot. Groups, in payload order, are
    packed into chunks of at most `limit` wire rows, parsed in memory and transformed, nothing written to disk
    (monthly files: two or so per chunk at the default limit). A group over `limit` is streamed by series
    when its payloads are each parsed whole, in series order, and no key is in two of them (`_in_series_runs`:
    no series in two of them, or those that share a series share no month), else hash-spilled, alone, as
    below. A payload whose column cannot be read is quarantined when it also fails to parse (when it parses,
    every payload is spilled, as without wire groups).

    Spilled (a source without wire groups, or a group over the limit): each parsed piece is split by a hash
    of the source's `transform_key` into `ceil(rows / (0.8 * limit))` buckets spilled to Parquet files
    under `spill_dir`, and each bucket is one chunk (a bucket over `limit` rows is split again with another
    hash). Small payloads (parsed whole) are gathered, in payload order, into pieces of up to `piece_lines`
    rows before they are split: a spill writes a file per bucket, whatever the rows.

    The transform never relates rows that differ in a transform_key column, and every row of a key lands in
    the same chunk in payload order (one group, or one bucket), so the chunks' results together are exactly
    the whole-batch result, and no natural key occurs in two chunks (uniqueness across chunks by
    construction; the audit checks it again on the staged table). Each chunk is transformed with the batch's
    source_version (the latest of the loaded payloads): spilled, it is known once every payload is parsed;
    in groups, it is the latest version the scans read (`WireGroups.version`), confirmed by a payload of that
    version that parses (its chunk goes first; when it fails, the next candidate is parsed first, and
    nothing kept), so that a quarantined payload never stamps the batch.
    """

    source: Source
    payloads: list[RawPayload]
    countries: pl.DataFrame
    limit: int
    spill_dir: Path | None = None  # for the wire buckets (made when needed, removed after the chunks)
    step: Step = no_step
    # the payloads are some of the source's (a partition of a fan-out, eujp.partitions): a payload that fails
    # to parse is quarantined even alone, and every one failing is no error here; the caller, who sees every
    # partition, fails the source as one stream of all its payloads would
    part_of_more: bool = False
    version: str | None = None
    quarantined: list[QuarantinedPayload] = field(default_factory=list)
    payload_errors: list[str] = field(default_factory=list)
    chunk_wire_rows: list[int] = field(default_factory=list)
    # the day's landings a replay left out (LandingsStream: one failed, as its run did), with why, and their
    # numbers (RawPayload.landing)
    landing_errors: list[str] = field(default_factory=list)
    left_out: list[int] = field(default_factory=list)
    _failed: set[int] = field(default_factory=set, repr=False)  # id() of the payloads quarantined
    _lines: dict[int, int] = field(default_factory=dict, repr=False)  # id() of a payload -> its data lines
    # id() of a payload -> the values of its wire group column (`_plan`'s scan)
    _group_values: dict[int, frozenset] = field(default_factory=dict, repr=False)
    # a spilled piece's file name (`<payload>-<piece>`) -> how its files were written (`_Spilled`)
    _spilled_pieces: dict[str, _Spilled] = field(default_factory=dict, repr=False)

    @cached_property
    def fetched_on(self) -> date | None:
        """The day the newest of the stream's payloads was fetched: every chunk's `fetched_on`
        (`payloads_fetched_on`)."""
        return payloads_fetched_on(self.payloads)

    @property
    def piece_lines(self) -> int:
        """Lines of a piece of a spilled payload: a quarter of `limit`. A piece is parsed and split into the
        buckets' files, never transformed, so its size only sets the spill's peak (one payload of 10M rows at
        the default limit: pieces of 2M lines peaked at 2.08 GiB, of 500k at 1.32-1.50 GiB, parse +0.3 s of
        7.8 s; benchmarks/RESULTS.md). The chunks are made of buckets, whatever the pieces."""
        return max(1, self.limit // SPILL_PIECE_FRACTION)

    def _pieces(self, payload: RawPayload, max_lines: int | None = None) -> Iterator[ParsedPayload]:
        """The payload parsed whole when it has at most `max_lines` (default `limit`) lines, else piece by
        piece, `max_lines` lines each (`line_pieces`)."""
        max_lines = self.limit if max_lines is None else max_lines
        lines = self._lines.get(id(payload))
        if lines is not None and lines <= max_lines:  # one piece: the payload as it is, never copied in pieces
            yield _parse_one(self.source, payload)
            return
        for first, piece in line_pieces(payload, max_lines):
            try:
                parsed = self.source.parse(piece)
            except ParseError as exc:
                raise _relocated(exc, payload, first) from exc
            del piece  # neither the piece nor its rows are held while the next piece is read
            yield parsed
            del parsed

    def _fail_or_quarantine(self, payload: RawPayload, exc: ParseError) -> None:
        """Quarantine a payload that failed to parse, unless it is the source's only one, or the source is a
        full extract (replace_scope ()): loading the other payloads would replace its whole previous extract
        with a part of it, so the source fails instead and keeps its table."""
        if (len(self.payloads) == 1 and not self.part_of_more) or self.source.replace_scope == ():
            raise exc
        log.warning("%s: %s; the payload is quarantined whole, the other payloads load", self.source.name, exc)
        self._failed.add(id(payload))
        self.quarantined.append(QuarantinedPayload(payload, exc))
        self.payload_errors.append(str(exc))

    def chunks(self) -> Iterator[TransformResult]:
        with self.step("parse"):
            lines = each_payload(count_data_lines, self.payloads)
        self._lines = {id(p): n for p, n in zip(self.payloads, lines, strict=True)}
        total = sum(lines)
        if total <= self.limit:
            yield from self._in_memory()
        else:
            # one payload over the limit has nothing to share its keys with: it is not scanned for groups, but
            # it is streamed without a spill when its series are runs of lines (as the service sorts them)
            plan = self._plan(lines) if self.source.wire_groups is not None and len(self.payloads) > 1 else None
            series = self._series_scan(self.payloads[0]) if len(self.payloads) == 1 else None
            if series is not None:
                yield from self._in_series(self.payloads[0], *series)
            elif plan is None:
                yield from self._spilled_all(math.ceil(total / (0.8 * self.limit)))
            else:
                yield from self._grouped(*plan)
        self._check_some_parsed()

    def _check_some_parsed(self) -> None:
        """ParseError when every payload failed to parse (and the stream is the source's whole batch), naming
        each payload's error in the payloads' order, whatever order the plan met them in (grouped chunks
        parse payloads out of order): one message for the same payloads in one batch or streamed."""
        if len(self.quarantined) == len(self.payloads) and not self.part_of_more:
            position = {id(p): i for i, p in enumerate(self.payloads)}
            failed = sorted(self.quarantined, key=lambda q: position.get(id(q.payload), len(position)))
            raise ParseError(f"every payload of {self.source.name} failed to parse: "
                             + " | ".join(str(q.error) for q in failed))

    def _finish_version(self, versions: list[str | None]) -> None:
        self.version = latest_version(versions)

    def _in_memory(self) -> Iterator[TransformResult]:
        versions: list[str | None] = []
        yield from self._memory_chunk(range(len(self.payloads)), lambda i, mine: versions.extend(mine),
                                      lambda: self._finish_version(versions))

    def _memory_chunk(self, indices: Iterable[int], parsed: Callable[[int, list[str | None]], None],
                      done: Callable[[], None]) -> Iterator[TransformResult]:
        """The payloads `indices` parsed (each that fails quarantined whole), concatenated in payload order
        and transformed as one chunk; `parsed(i, versions of its pieces)` is told of each payload parsed,
        `done()` once all are, before the transform (which stamps self.version)."""
        frames = []
        versions: list[str | None] = []  # each frame's version stamp (its piece's)
        indices = list(indices)
        with self.step("parse"):  # side by side (a chunk's rows are held together anyway)
            results = each_payload(self._parse_or_error, [self.payloads[i] for i in indices])
        columns: dict[str, list[str]] = {}  # each payload's wire columns, to name the one that drifted
        for i, pieces in zip(indices, results, strict=True):
            if isinstance(pieces, ParseError):
                self._fail_or_quarantine(self.payloads[i], pieces)
                continue
            frames += [p.frame for p in pieces]
            versions += [p.source_version for p in pieces]
            columns.setdefault(self.payloads[i].name, pieces[0].frame.columns if pieces else [])
            parsed(i, [p.source_version for p in pieces])
        del results
        done()
        if not frames:
            return
        self.chunk_wire_rows.append(sum(f.height for f in frames))
        with self.step("transform"):
            try:
                result = self._transform_frames(frames, versions)
            except SchemaDriftError as exc:
                raise SchemaDriftError(f"{exc}{drifted_payloads(columns)}") from exc
        yield result

    def _transform_frames(self, frames: list[pl.DataFrame], versions: list[str | None]) -> TransformResult:
        """The wire frames of a chunk (`versions`: each one's version stamp) concatenated and transformed as
        one, stamped with the batch's version; `frames` is emptied (its rows are held by the wire frame only).
        A streamed source's transform orders its releases itself, by a wire column (Comext: LAST UPDATE)."""
        wire = concat_wire(frames)
        frames.clear()
        return run_transform(self.source, wire, self.version, self.countries, self.fetched_on)

    def _parsed_whole(self, i: int) -> bool:
        """Whether payload `i` is parsed whole in a spilled group (at most `piece_lines` lines)."""
        return self._lines.get(id(self.payloads[i]), self.piece_lines + 1) <= self.piece_lines

    def _parse_or_error(self, payload: RawPayload) -> list[ParsedPayload] | ParseError:
        """The payload's pieces (`_pieces`: parsed whole when it has at most `limit` lines), or the ParseError
        that parsing it raised (for `each_payload`, which parses payloads side by side)."""
        try:
            return list(self._pieces(payload))
        except ParseError as exc:
            return exc

    # --- payloads whose series are runs of lines (Source.series_key): streamed without a spill ----------------

    @property
    def _series_run_limit(self) -> int:
        """The longest run of one series `_in_series` takes: the run carried over to the next chunk plus a
        piece stay within 0.8 of `limit`."""
        return int(0.8 * self.limit) - self.piece_lines

    def _series_hash(self) -> pl.Expr:
        return pl.struct(list(self.source.series_key)).hash(seed=SERIES_SEED)

    def _series_runs(self, payload: RawPayload) -> tuple[np.ndarray, set] | None:
        """(the series hash of each run of lines, in order; the distinct values of the version column) when
        each of the payload's series (a value of the source's `series_key`) is one run of lines of at most
        `_series_run_limit` lines; None when not (or the source has no series_key, or the payload cannot be
        read so). A scan of the series columns and the version column in batches, each row's series hashed;
        one hash per run is kept (a run that comes again in the same batch stops the scan at once: a payload
        in no such order costs a batch). Two series with the same hash count as one, here and in the cut."""
        key, groups = self.source.series_key, self.source.wire_groups
        if not key or groups is None:
            return None
        runs: list[np.ndarray] = []
        versions: set = set()
        last, run = None, 0
        try:
            source = payload.path if payload.data is None else io.BytesIO(payload.data)
            columns = [self._series_hash().alias("series"), pl.col(groups.version_column)]
            if self._lines.get(id(payload), SERIES_SCAN_ROWS + 1) <= SERIES_SCAN_ROWS:
                # one batch: read at once (a payload of 5,000 rows: ~1 ms less than a batched scan's set-up)
                batches = [pl.read_csv(source, columns=[*key, groups.version_column], infer_schema=False, null_values=CSV_NULLS)
                           .select(columns)]
            else:
                batches = (pl.scan_csv(source, infer_schema=False, null_values=CSV_NULLS).select(columns)
                           .collect_batches(chunk_size=SERIES_SCAN_ROWS))
            for frame in batches:
                if not frame.height:
                    continue
                versions.update(frame.get_column(groups.version_column).unique().to_list())
                rle = frame.get_column("series").rle()
                values = rle.struct.field("value").to_numpy()
                lengths = rle.struct.field("len").to_numpy().astype(np.int64)
                if last is not None and values[0] == last:  # the run of the batch before goes on
                    lengths[0] += run
                    values = values[1:]
                if lengths.max() > self._series_run_limit or np.unique(values).size != values.size:
                    return None
                runs.append(values)
                last, run = frame.get_column("series")[-1], int(lengths[-1])
            if payload.data is None:
                payload._check_file()
        except (pl.exceptions.PolarsError, ParseError, ValueError):
            return None
        every = np.concatenate(runs) if runs else np.empty(0, dtype=np.uint64)
        return (every, versions) if np.unique(every).size == every.size else None

    def _series_scan(self, payload: RawPayload) -> tuple[str | None] | None:
        """(the lone payload's source_version,) when its series are runs of lines (`_series_runs`), else None:
        it is then spilled. None as well when a version value is bad: the parse of the payload's pieces then
        names the payload and the line (here only the distinct values are at hand)."""
        with self.step("parse"):
            scanned = self._series_runs(payload)
        if scanned is None:
            return None
        column = self.source.wire_groups.version_column
        try:
            return (self.source.wire_groups.version(
                pl.DataFrame({column: sorted(scanned[1], key=str)}, schema={column: pl.String})),)
        except ParseError:
            return None

    def _in_series_runs(self, indices: list[int]) -> bool:
        """Whether the payloads `indices` (a spilled group: they share values of the wire group column) can
        be streamed by series instead: each parsed whole (at most `piece_lines` lines, so that one that fails
        its parse is quarantined whole before any of its rows is held), each series a run of lines of one of
        them (`_series_runs` of each, side by side), and no key in two of them: payloads that hold the same
        series hold none of the same wire group values (a plan that cut a chapter by months as well: a series
        in each slice, each month in one; `_apart`)."""
        if not self.source.series_key or not indices or not all(self._parsed_whole(i) for i in indices):
            return False
        with self.step("parse"):
            scans = each_payload(self._series_runs, [self.payloads[i] for i in indices])
            if any(scan is None for scan in scans):
                return False
            runs = [r for r, _ in scans]
            every = np.concatenate(runs)
            return np.unique(every).size == every.size or self._apart(indices, runs, every)

    def _apart(self, indices: list[int], runs: list[np.ndarray], every: np.ndarray) -> bool:
        """Whether the payloads `indices` that hold the same series (`runs`: the series hashes of each; `every`:
        them all, in order) share no value of the wire group column (`_plan`'s scan; Comext: a month), so that
        no key is in two of them: a key holds its series and its month."""
        owners = np.repeat(np.arange(len(indices)), [r.size for r in runs])
        shared = (pl.DataFrame({"series": every, "owner": owners})
                  .filter(pl.col("series").is_duplicated())
                  .group_by("series").agg(pl.col("owner").sort())
                  .get_column("owner").to_list())
        for owner_list in {tuple(o) for o in shared}:
            values = [self._group_values.get(id(self.payloads[indices[k]])) for k in owner_list]
            if any(v is None for v in values) or sum(map(len, values)) != len(frozenset().union(*values)):
                return False
        return True

    def _cut_by_series(self, frames: Iterable[pl.DataFrame], first: Callable[[], None], *,
                       whole_frames: bool = False) -> Iterator[TransformResult]:
        """`frames` (in order; each series a run of their rows) in chunks of whole runs, nothing spilled: held
        until the next frame would take them over 0.8 of `limit`, then all but their last run (which may go
        on in the next frame) transformed as a chunk. Every row of a key is in its series' run, so in one
        chunk. With `whole_frames` (each frame a whole payload, no key in two of them), all that is held is
        the chunk: no run goes on in the next frame. `first()` is called before the first chunk is
        transformed (the batch's version is then known)."""
        held: list[pl.DataFrame] = []
        rows, started = 0, False
        target = int(0.8 * self.limit)

        def chunk(wire: pl.DataFrame) -> Iterator[TransformResult]:
            nonlocal started
            if not started:
                first()
                started = True
            yield from self._bounded(wire)

        for frame in frames:
            if held and rows + frame.height > target:
                wire = pl.concat(held) if len(held) > 1 else held[0]
                held = []
                if whole_frames:
                    cut = wire.height
                else:
                    last = wire.select(self._series_hash().rle_id()).to_series()
                    cut = int((last != last[-1]).sum())  # the rows before the last run
                    del last
                if cut:  # (never 0 for runs the scan measured: a run and a frame fit in `target`)
                    yield from chunk(wire.slice(0, cut))
                held, rows = ([wire.slice(cut)], wire.height - cut) if cut < wire.height else ([], 0)
                del wire
            held.append(frame)
            rows += frame.height
            del frame
        if held:
            yield from chunk(pl.concat(held) if len(held) > 1 else held[0])
        elif not started:
            first()

    def _in_series(self, payload: RawPayload, version: str | None) -> Iterator[TransformResult]:
        """The lone `payload` whose series are runs of lines (`_series_scan`), its pieces parsed in order and
        cut between runs (`_cut_by_series`). The batch's version is the scan's, known before the first chunk;
        the parse must give the same. A piece that fails its parse fails the source (its only payload)."""
        self.version = version
        stamps: list[str | None] = []

        def pieces() -> Iterator[pl.DataFrame]:
            try:
                for piece in self._pieces_timed(payload):
                    stamps.append(piece.source_version)
                    yield piece.frame
            except ParseError as exc:
                self._fail_or_quarantine(payload, exc)  # the source's only payload: raises

        yield from self._cut_by_series(pieces(), lambda: None)
        got = latest_version(stamps)
        if got != version:
            raise self._version_mismatch(payload, got, version)

    def _in_series_group(self, indices: list[int], parsed: Callable[[int, list[str | None]], None],
                         done: Callable[[], None]) -> Iterator[TransformResult]:
        """The payloads `indices` of a group whose series are runs of lines, no key in two of them
        (`_in_series_runs`), parsed whole in order (the small ones side by side, up to PARSE_AHEAD_BYTES) and
        chunked between them (`_cut_by_series`, whole frames): a payload that fails its parse is quarantined
        whole, and nothing of it held; `parsed` is told of each payload parsed, `done()` before the first chunk
        (as `_memory_chunk` and `_spilled`). A payload quarantined meanwhile (by `done`, which may parse one to
        confirm the batch's version) is skipped."""

        def frames() -> Iterator[pl.DataFrame]:
            for window in _windows(indices, lambda i: self.payloads[i].size, PARSE_AHEAD_BYTES):
                with self.step("parse"):
                    results = each_payload(self._parse_or_error, [self.payloads[j] for j in window])
                for j, pieces in zip(window, results, strict=True):
                    if id(self.payloads[j]) in self._failed:
                        continue
                    if isinstance(pieces, ParseError):
                        self._fail_or_quarantine(self.payloads[j], pieces)
                        continue
                    parsed(j, [p.source_version for p in pieces])
                    for piece in pieces:  # one: parsed whole
                        yield piece.frame
                del results

        yield from self._cut_by_series(frames(), done, whole_frames=True)

    def _spilled_all(self, buckets: int) -> Iterator[TransformResult]:
        versions: list[str | None] = []
        yield from self._spilled(range(len(self.payloads)), buckets, lambda i, mine: versions.extend(mine),
                                 lambda: self._finish_version(versions))

    def _spilled(self, indices: Iterable[int], buckets: int, parsed: Callable[[int, list[str | None]], None],
                 done: Callable[[], None]) -> Iterator[TransformResult]:
        """The payloads `indices` parsed piece by piece, each piece hash-partitioned by transform_key into
        `buckets` Arrow files, then each bucket read back and transformed as a chunk (`_bounded`); `parsed`
        and `done` as in `_memory_chunk`."""
        spill = spill_folder(f"eujp-{self.source.name}-wire-", self.spill_dir)
        # Payloads parsed whole (at most `piece_lines` lines) are gathered, in payload order, and spilled
        # together once they hold `piece_lines` rows, named after the first of them: each spill writes a file
        # per bucket, so 2,000 payloads of 5,000 rows spilled one by one wrote 14,000 files (13 s of 27 s).
        gathered: list[pl.DataFrame] = []
        gathered_rows, gathered_from = 0, None

        def spill_gathered() -> None:
            nonlocal gathered, gathered_rows, gathered_from
            if gathered:
                frame = concat_wire(gathered)
                gathered, gathered_rows = [], 0
                with self.step("parse"):
                    self._spill(frame, spill, f"{gathered_from:06d}-000000", buckets)
                gathered_from = None

        def gather(i: int, piece: ParsedPayload) -> None:
            nonlocal gathered_rows, gathered_from
            if gathered_rows + piece.frame.height > self.piece_lines:
                spill_gathered()
            gathered.append(piece.frame)
            gathered_rows += piece.frame.height
            gathered_from = i if gathered_from is None else gathered_from

        try:
            todo, k = list(indices), 0
            while k < len(todo):
                i = todo[k]
                payload = self.payloads[i]
                # the whole ones from here on, up to PARSE_AHEAD_BYTES (the small ones side by side)
                if self._parsed_whole(i):
                    window, size = [i], payload.size
                    for after in todo[k + 1:]:
                        if not self._parsed_whole(after) or size + self.payloads[after].size > PARSE_AHEAD_BYTES:
                            break
                        window.append(after)
                        size += self.payloads[after].size
                    with self.step("parse"):
                        results = each_payload(self._parse_or_error, [self.payloads[j] for j in window])
                    for j, pieces in zip(window, results, strict=True):
                        if isinstance(pieces, ParseError):
                            self._fail_or_quarantine(self.payloads[j], pieces)
                            continue
                        for piece in pieces:  # one: parsed whole
                            gather(j, piece)
                        parsed(j, [p.source_version for p in pieces])
                    del results
                    k += len(window)
                    continue
                k += 1
                mine = []  # a payload quarantined halfway does not stamp the batch
                try:
                    for j, piece in enumerate(self._pieces_timed(payload)):
                        mine.append(piece.source_version)
                        if j == 0:
                            spill_gathered()  # the payloads before it first: a bucket's files in payload order
                        with self.step("parse"):  # the spill is part of reading the payloads
                            self._spill(piece.frame, spill, f"{i:06d}-{j:06d}", buckets)
                        del piece
                except ParseError as exc:
                    for leftover in spill.glob(f"*/{i:06d}-*.parquet"):
                        leftover.unlink()
                    self._fail_or_quarantine(payload, exc)
                    continue
                parsed(i, mine)
            spill_gathered()
            done()
            for bucket in range(buckets):
                files = sorted((spill / str(bucket)).glob("*.parquet"))
                if not files:
                    continue
                with self.step("parse"):
                    wire = self._read_bucket(files)
                for f in files:
                    f.unlink()
                yield from self._bounded(wire)
        finally:
            shutil.rmtree(spill, ignore_errors=True)
            self._spilled_pieces.clear()

    # --- payloads grouped by the values of a key column (Source.wire_groups) ------------------------------

    def _scan(self, payload: RawPayload) -> tuple[list, str | None] | None:
        """(distinct values of the wire group column, source_version) of a payload, from those two columns
        alone (a file is scanned, never held); None when they cannot be read so."""
        groups = self.source.wire_groups
        columns = [groups.column, groups.version_column]
        try:
            if payload.data is None:
                frame = (pl.scan_csv(payload.path, infer_schema=False, null_values=CSV_NULLS).select(columns).unique()
                         .collect(engine="streaming"))
                payload._check_file()
            else:
                frame = pl.read_csv(io.BytesIO(payload.data), columns=columns, infer_schema=False,
                                    null_values=CSV_NULLS).unique()
            return frame.get_column(groups.column).unique().to_list(), groups.version(
                frame.select(groups.version_column))
        except (pl.exceptions.PolarsError, ParseError, ValueError):
            return None

    def _parse_error(self, payload: RawPayload) -> ParseError | None:
        """The ParseError parsing `payload` (piece by piece, nothing kept) raises, None when it parses."""
        try:
            for _ in self._pieces(payload, self.piece_lines):
                pass
        except ParseError as exc:
            return exc
        return None

    def _plan(self, lines: list[int]) -> tuple[list[tuple[str, list[int]]], list[str | None],
                                                  dict[int, ParseError], list[int]] | None:
        """The chunks of a source with wire groups: payloads that share a value of the group column (and so
        may share a key) are one group (union-find); groups, in payload order, are packed into in-memory
        chunks of at most `limit` lines ("memory", payload indices in order), a group over `limit` is
        hash-spilled alone ("spill"). Also each payload's scanned version, the parse errors of the payloads
        that could not be scanned, and `lines`. None (spill every payload, as without wire groups) when a
        payload cannot be scanned but parses."""
        n = len(self.payloads)
        parent = list(range(n))

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        owner: dict = {}
        versions: list[str | None] = [None] * n
        failed: dict[int, ParseError] = {}
        with self.step("parse"):
            scans = each_payload(self._scan, self.payloads)
        for i, payload in enumerate(self.payloads):
            with self.step("parse"):
                scanned = scans[i]
                if scanned is None:
                    error = self._parse_error(payload)
                    if error is None:
                        log.warning("%s: payload %s: column %s cannot be read alone, yet the payload "
                                    "parses: every payload is hash-partitioned to disk", self.source.name,
                                    payload.name, self.source.wire_groups.column)
                        return None
                    failed[i] = error
                    continue
            values, versions[i] = scanned
            self._group_values[id(payload)] = frozenset(values)
            for value in values:
                j = root(owner.setdefault(value, i))
                if j != root(i):
                    parent[max(j, root(i))] = min(j, root(i))
        groups: dict[int, list[int]] = {}
        for i in range(n):
            if i not in failed:
                groups.setdefault(root(i), []).append(i)
        units: list[tuple[str, list[int]]] = []
        open_lines = None  # lines of the last unit while it is an in-memory chunk that can take more
        for members in groups.values():  # in order of their first payload
            size = sum(lines[i] for i in members)
            if size > self.limit:
                units.append(("spill", members))
                open_lines = None
            elif open_lines is not None and open_lines + size <= self.limit:
                units[-1] = ("memory", sorted(units[-1][1] + members))
                open_lines += size
            else:
                units.append(("memory", members))
                open_lines = size
        spilled = sum(1 for kind, _ in units if kind == "spill")
        log.info("%s: %d payloads in %d groups of %s: %d in-memory chunk(s), %d group(s) over %d rows "
                 "spilled", self.source.name, n, len(groups), self.source.wire_groups.column,
                 len(units) - spilled, spilled, self.limit)
        return units, versions, failed, lines

    def _grouped(self, units: list[tuple[str, list[int]]], versions: list[str | None],
                 failed: dict[int, ParseError], lines: list[int]) -> Iterator[TransformResult]:
        """The units of `_plan`, each parsed then transformed. The batch's version (the latest of the loaded
        payloads) must be known before the first transform: it is the latest scanned version, confirmed by
        a payload of that version that parses; the unit holding the first such payload goes first (another
        candidate is parsed, and nothing kept, only when it fails)."""
        for i, exc in failed.items():
            self._fail_or_quarantine(self.payloads[i], exc)
        loaded: set[int] = set()

        def bad(i: int) -> bool:
            return id(self.payloads[i]) in self._failed

        def latest() -> str | None:
            return latest_version(v for i, v in enumerate(versions) if not bad(i))

        def parsed(i: int, mine: list[str | None]) -> None:
            got = latest_version(mine)
            if got != versions[i]:
                raise self._version_mismatch(self.payloads[i], got, versions[i])
            loaded.add(i)

        def confirm() -> None:
            while (version := latest()) is not None and not any(versions[i] == version for i in loaded):
                i = next(i for i, v in enumerate(versions) if v == version and not bad(i) and i not in loaded)
                with self.step("parse"):
                    error = self._parse_error(self.payloads[i])
                if error is None:
                    loaded.add(i)
                else:
                    self._fail_or_quarantine(self.payloads[i], error)
            self.version = version

        target = latest()
        first = next((k for k, (_, members) in enumerate(units)
                      if any(versions[i] == target for i in members)), 0)
        for k in [first, *(k for k in range(len(units)) if k != first)]:
            kind, members = units[k]
            done = confirm if k == first else (lambda: None)
            todo = [i for i in members if not bad(i)]
            if kind == "memory":
                yield from self._memory_chunk(todo, parsed, done)
            elif self._in_series_runs(todo):
                yield from self._in_series_group(todo, parsed, done)
            else:
                buckets = math.ceil(sum(lines[i] for i in members) / (0.8 * self.limit))
                yield from self._spilled(todo, buckets, parsed, done)
        if not units:
            confirm()

    def _version_mismatch(self, payload: RawPayload, parsed: str | None, scanned: str | None) -> EujpError:
        return EujpError(f"{self.source.name}: payload {payload.name}: its parse gives source_version {parsed!r}, "
                         f"its {self.source.wire_groups.version_column} column {scanned!r}: "
                         "Source.wire_groups.version must read it as the parser does")

    def _pieces_timed(self, payload: RawPayload) -> Iterator[ParsedPayload]:
        pieces = self._pieces(payload, self.piece_lines)
        while True:
            with self.step("parse"):
                parsed = next(pieces, None)
            if parsed is None:
                return
            yield parsed

    def _spill(self, frame: pl.DataFrame, spill: Path, name: str, buckets: int) -> None:
        """`frame` split by `_hash` into the buckets' folders, one Parquet file `<bucket>/<name>.parquet` each,
        written by one partitioned sink (polars writes the buckets' files in parallel, each in the frame's row
        order; no size limit, so never a second file per bucket, which would take the same name).

        A text column outside the transform key that holds one value in the whole piece (Comext: DATAFLOW,
        LAST UPDATE, freq) is left out of the files and put back when they are read (`_read_bucket`): a third
        of the spill's time at 10M rows went into splitting, writing and reading those columns."""
        if not frame.height:
            return
        constant = _constant_columns(frame, exclude=self.source.transform_key)
        kept = frame.drop(list(constant))
        self._spilled_pieces[name] = _Spilled(constant, tuple(frame.columns), tuple(kept.schema.items()))
        kept.lazy().with_columns(self._hash(kept, buckets, seed=0).alias("__bucket")).sink_parquet(
            pl.PartitionBy(spill, key="__bucket", include_key=False, approximate_bytes_per_file=None,
                           file_path_provider=lambda file: spill / str(file.partition_keys.item()) / f"{name}.parquet"),
            compression="lz4", statistics=False, mkdir=True)

    def _read_bucket(self, files: list[Path]) -> pl.DataFrame:
        """A bucket's files (in payload and piece order) as one frame: each run of files written alike (the
        same columns left out, with the same values, and the same schema: the pieces of one payload, mostly)
        read by one scan, its left-out columns put back, in the pieces' column order."""
        runs: list[tuple[_Spilled, list[Path]]] = []
        for path in files:
            spilled = self._spilled_pieces[path.stem]
            if runs and runs[-1][0] == spilled:
                runs[-1][1].append(path)
            else:
                runs.append((spilled, [path]))
        frames = []
        for spilled, paths in runs:
            frame = pl.scan_parquet(paths).collect()
            if spilled.constant:
                frame = frame.with_columns(
                    pl.lit(v, dtype=pl.String).alias(c) for c, v in spilled.constant.items()).select(spilled.columns)
            frames.append(frame)
        return concat_wire(frames)

    def _key(self, frame: pl.DataFrame) -> list[str]:
        return [c for c in self.source.transform_key if c in frame.columns] or frame.columns

    def _hash(self, frame: pl.DataFrame, buckets: int, seed: int) -> pl.Expr:
        return (pl.struct(self._key(frame)).hash(seed=seed) % buckets).cast(pl.Int64)

    def _bounded(self, wire: pl.DataFrame) -> Iterator[TransformResult]:
        """`wire` as one chunk, or, over `limit` rows, in chunks of whole keys (order kept): cut by another hash
        of the key into parts of ~0.8 `limit` rows, and a part still over `limit` (all its keys in one hash
        part, or an unlucky draw) packed by key (`_packed`). Only a key with more rows than `limit` makes a
        chunk over it."""
        if wire.height > self.limit:
            parts = math.ceil(wire.height / (0.8 * self.limit))
            split = wire.with_columns(self._hash(wire, parts, seed=1).alias("__part"))
            del wire
            pieces = [q for p in split.partition_by("__part", maintain_order=True, include_key=False)
                      for q in (self._packed(p) if p.height > self.limit else [p])]
            del split
        else:
            pieces = [wire]
            del wire
        pieces.reverse()
        while pieces:
            piece = pieces.pop()
            self.chunk_wire_rows.append(piece.height)
            with self.step("transform"):
                result = run_transform(self.source, piece, self.version, self.countries, self.fetched_on)
            del piece
            yield result

    def _packed(self, wire: pl.DataFrame) -> list[pl.DataFrame]:
        """`wire` in parts of whole keys, each within `limit` rows unless one key alone is over it: the keys in
        their sort order, each added to the current part while it fits, else starting the next (rows in
        their order). A Python pass over the keys: only for a part the hash left over `limit`."""
        ids = wire.select(pl.struct(self._key(wire)).rank("dense").cast(pl.Int64) - 1).to_series().to_numpy()
        sizes = np.bincount(ids)
        part_of = np.empty(len(sizes), dtype=np.int64)
        part = filled = 0
        for key, size in enumerate(sizes.tolist()):
            if filled and filled + size > self.limit:
                part, filled = part + 1, 0
            part_of[key] = part
            filled += size
        return wire.with_columns(pl.Series("__part", part_of[ids])).partition_by(
            "__part", maintain_order=True, include_key=False)


def _constant_columns(frame: pl.DataFrame, exclude: Sequence[str]) -> dict[str, str]:
    """{column: its value} of the text columns of `frame` (but `exclude`) that hold one value in every row, no
    null (first and last row compared first: a column that varies is mostly told at once)."""
    constant: dict[str, str] = {}
    if not frame.height:
        return constant
    for name, dtype in frame.schema.items():
        if name in exclude or dtype != pl.String:
            continue
        column = frame.get_column(name)
        first = column[0]
        if first is not None and column[-1] == first and not column.has_nulls() and (column == first).all():
            constant[name] = first
    return constant


def parse_and_transform(
    source: Source, payloads: list[RawPayload], countries: pl.DataFrame, *, step: Step = no_step,
    limit: int | None = None,
) -> tuple[TransformResult, str | None]:
    """Parse and transform a source's payloads into one result (the quarantined payloads' rows among the
    rejected ones); returns it and the batch's source_version (the latest payload version).

    A streamed source (`streams`) goes through `Stream` in chunks of at most `limit` (EUJP_BATCH_ROWS) wire
    rows, whose results are concatenated here (eujp.pipeline.prepare_source validates and spills them one by one
    instead); any other source is parsed whole (a bad payload among several quarantined) and transformed once, or
    once per release when its payloads carry several version stamps (`WholeStream`)."""
    stream = source_stream(source, payloads, countries, step=step, limit=limit)
    parts = list(stream.chunks())
    valid = (pl.concat([r.valid for r in parts]) if parts
             else pl.DataFrame(schema=source.table.business_columns))
    result = TransformResult(
        valid=valid,
        rejected=pl.concat([*(r.rejected for r in parts), *(q.frame() for q in stream.quarantined)])
        if parts or stream.quarantined
        else empty_rejected(),
        valid_wire_rows=sum(r.valid.height if r.valid_wire_rows is None else r.valid_wire_rows for r in parts),
        conflicts=concat_conflicts([r.conflicts for r in parts]),
    )
    return result, stream.version


def source_stream(source: Source, payloads: list[RawPayload], countries: pl.DataFrame, *, step: Step = no_step,
                  limit: int | None = None, spill_dir: Path | None = None, part_of_more: bool = False) -> Stream:
    """The `Stream` of a source's payloads: chunks of at most `limit` (default EUJP_BATCH_ROWS) wire rows for
    a streamed source (`streams`), one chunk for any other (its payloads parsed whole). `part_of_more`: the
    payloads are some of the source's (`Stream.part_of_more`)."""
    if not payloads:
        raise EujpError(f"{source.name}: no payload to parse")
    if limit is None:
        try:
            limit = batch_rows()
        except ValueError as exc:
            raise EujpError(str(exc)) from None
    if not streams(source):
        return WholeStream(source, payloads, countries, limit, spill_dir, step, part_of_more)
    if len({p.landing for p in payloads}) > 1:
        return LandingsStream(source, payloads, countries, limit, spill_dir, step, part_of_more)
    return Stream(source, payloads, countries, limit, spill_dir, step, part_of_more)


class LandingsStream(Stream):
    """A streamed source's payloads of several landings (a replay of a day on which several runs landed it,
    eujp.landing.read_landed), in bounded memory: each landing is streamed alone (`Stream`, its chunks' valid
    rows written to Parquet files with the landing's number, its rejected rows too, handed on as results
    without valid rows once the landing is streamed whole), then the rows are folded by DuckDB, out of core:
    for each natural key, the row of the latest landing that has one (what loading the landings one after the
    other leaves under the streamed sources' replace by natural key: transforms.common.supersede, which
    `transform_landings` applies in memory to the sources that are not streamed). A key conflicting in some
    landing and given by none stays a conflict. The folded rows come back in chunks of at most `limit` rows. A
    landing that fails (an EujpError) is left out, its files removed and nothing of it handed on, as in
    `transform_landings` (`landing_errors` says why). Accounting as `transform_landings`: every applied
    landing's rows in count; a row a later landing superseded counts as loaded."""

    def chunks(self) -> Iterator[TransformResult]:
        numbers = sorted({p.landing for p in self.payloads})
        log.info("%s: %d landings on the day: applied in landing order", self.source.name, len(numbers))
        folder = spill_folder(f"eujp-{self.source.name}-landings-", self.spill_dir)
        files: list[Path] = []
        conflicts: list[pl.DataFrame | None] = []
        versions: list[str | None] = []
        columns: list[str] = []
        try:
            for position, number in enumerate(numbers, start=1):
                landing = Stream(self.source, [p for p in self.payloads if p.landing == number], self.countries,
                                 self.limit, folder, self.step, self.part_of_more)
                # a landing's valid and rejected rows stay on disk until it is streamed whole: one that fails
                # (as its run did) is left out, nothing of it handed on (transform_landings)
                mine: list[Path] = []
                # per chunk: its valid rows emptied, its rejected rows' file, its valid wire rows
                held: list[tuple[pl.DataFrame, Path | None, int]] = []
                landing_conflicts: list[pl.DataFrame | None] = []
                try:
                    for result in landing.chunks():
                        columns = result.valid.columns
                        if result.valid.height:
                            path = folder / f"{number:06d}-{len(files) + len(mine):06d}.parquet"
                            result.valid.with_columns(pl.lit(number, dtype=pl.Int64).alias("__landing")
                                                      ).write_parquet(path, compression="lz4", statistics=False)
                            mine.append(path)
                        rejected = None
                        if result.rejected.height:
                            rejected = folder / f"{number:06d}-rejected-{len(held):06d}.parquet"
                            result.rejected.write_parquet(rejected, compression="lz4", statistics=False)
                        held.append((result.valid.clear(), rejected, result.rows_in - result.rejected.height))
                        landing_conflicts.append(result.conflicts)
                        del result
                except EujpError as exc:
                    self.landing_errors.append(landing_not_applied(self.source, position, len(numbers), exc))
                    self.left_out.append(number)
                    for path in [*mine, *(r for _, r, _ in held if r is not None)]:
                        path.unlink()
                    continue
                files += mine
                conflicts += landing_conflicts
                for cleared, rejected, valid_wire_rows in held:
                    yield TransformResult(valid=cleared, valid_wire_rows=valid_wire_rows,
                                          rejected=empty_rejected() if rejected is None else pl.read_parquet(rejected))
                    if rejected is not None:
                        rejected.unlink()
                self.quarantined += landing.quarantined
                self.payload_errors += landing.payload_errors
                self.chunk_wire_rows += landing.chunk_wire_rows
                versions.append(landing.version)
            if len(self.landing_errors) == len(numbers):
                raise no_landing_applied(self.source, self.landing_errors)
            self._finish_version(versions)
            with self.step("transform"):
                folded, kept = self._fold(files, concat_conflicts(conflicts), folder)
            for path in files:
                path.unlink()
            yield from self._folded_chunks(folded, columns, kept)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _fold(self, files: list[Path], conflicts: pl.DataFrame | None, folder: Path
              ) -> tuple[Path | None, pl.DataFrame | None]:
        """(a Parquet file of the latest row of every natural key, the conflicts no landing gave a row for)."""
        if not files:
            return None, conflicts
        key = ", ".join(quote_ident(c) for c in self.source.table.natural_key)
        rows = f"read_parquet([{', '.join(sql_string(str(p)) for p in files)}])"
        folded = folder / "folded.parquet"
        with duckdb.connect() as conn:
            conn.execute(f"SET memory_limit = '{duckdb_memory_limit()}'")
            conn.execute(f"SET temp_directory = {sql_string(str(folder / 'duckdb.tmp'))}")
            conn.execute("SET preserve_insertion_order = false")
            conn.execute(f"COPY (SELECT * EXCLUDE (__landing) FROM {rows} QUALIFY row_number() OVER "
                         f"(PARTITION BY {key} ORDER BY __landing DESC) = 1) TO {sql_string(str(folded))} "
                         "(FORMAT parquet, COMPRESSION lz4)")
            if conflicts is not None:
                conn.register("_conflicts", conflicts.to_arrow())
                conflicts = conn.execute(f"SELECT * FROM _conflicts ANTI JOIN (SELECT DISTINCT {key} FROM {rows}) "
                                         f"USING ({key})").pl()
                conflicts = conflicts if conflicts.height else None
        return folded, conflicts

    def _folded_chunks(self, folded: Path | None, columns: list[str], conflicts: pl.DataFrame | None
                       ) -> Iterator[TransformResult]:
        """The folded rows in chunks of at most `limit` rows, the conflicts with the last one."""
        pending: pl.DataFrame | None = None
        if folded is not None:
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(folded).iter_batches(batch_size=self.limit):
                if pending is not None:
                    yield TransformResult(valid=pending, rejected=empty_rejected(), valid_wire_rows=0)
                pending = pl.from_arrow(batch).select(columns).cast(self.source.table.business_columns)
        if pending is not None or conflicts is not None:
            valid = pending if pending is not None else pl.DataFrame(schema=self.source.table.business_columns)
            yield TransformResult(valid=valid, rejected=empty_rejected(), valid_wire_rows=0, conflicts=conflicts)


class WholeStream(Stream):
    """A source that is not streamed: every payload parsed whole (a bad one among several quarantined),
    concatenated and transformed once; payloads of several releases (version stamps: a newer Eurostat
    dataset or SIPRI register saved beside the older one) are transformed release by release and folded in
    stamp order (`_transform_frames`)."""

    def _pieces(self, payload: RawPayload, max_lines: int | None = None) -> Iterator[ParsedPayload]:
        yield _parse_one(self.source, payload)

    def _transform_frames(self, frames: list[pl.DataFrame], versions: list[str | None]) -> TransformResult:
        """The payloads' wire frames transformed as one when they are of one release (one version stamp, or
        none); else each release's payloads transformed together, and the results folded in stamp order
        (eujp.parse.releases: payloads without a stamp first), as loading the releases one after the other
        leaves them (`fold_results`): a later release supersedes an earlier one's rows by natural key, or
        whole under a replace scope () (a SIPRI register replaces the older register, not merged with it),
        instead of the two versions of a key being quarantined as conflicting duplicates. Rows repeated
        unchanged by the later release are superseded, not rejected. Every release is stamped with the batch's
        version (the latest). Two payloads of one stamp are one release: their duplicates are judged as ever."""
        groups = releases(versions)
        if len(groups) < 2:
            return super()._transform_frames(frames, versions)
        log.info("%s: payloads of %d releases (version stamps): applied in stamp order", self.source.name,
                 len(groups))
        results = []
        for group in groups:
            wire = concat_wire([frames[i] for i in group])
            results.append(run_transform(self.source, wire, self.version, self.countries, self.fetched_on))
            del wire
        frames.clear()
        return fold_results(self.source, results)

    def chunks(self) -> Iterator[TransformResult]:
        yield from self._in_memory()
        self._check_some_parsed()


def transform_landings(
    source: Source, payloads: list[RawPayload], countries: pl.DataFrame, *, step: Step = no_step
) -> tuple[TransformResult, str | None, list[str], list[int]]:
    """`parse_and_transform` landing by landing (`RawPayload.landing`: a replay of a day on which several runs
    landed payloads, eujp.landing.read_landed), folded in landing order into what loading them one after the
    other leaves (transforms.common.supersede): a later landing supersedes an earlier one for the same key,
    as the successive live runs did, instead of the two versions being quarantined as conflicting duplicates.
    Duplicates within one landing are judged as in any run. Payloads of one landing (every run but a replay of
    such a day): exactly `parse_and_transform`.

    A landing that fails to parse or transform (an EujpError) is left out of the fold, as its run failed the
    source and loaded nothing of it, and the landings before and after it apply; the third value says which,
    and why (`landing_not_applied`), the fourth gives their numbers (`RawPayload.landing`). Every landing
    failing: the source fails (EujpError naming each).

    Accounting: every applied landing's rows in are counted; a row that a later landing superseded counts as
    loaded (the live run loaded it, the next one replaced it)."""
    numbers = sorted({p.landing for p in payloads})
    if len(numbers) < 2:
        return *parse_and_transform(source, payloads, countries, step=step), [], []
    log.info("%s: %d landings on the day: applied in landing order", source.name, len(numbers))
    results, versions, not_applied, left_out = [], [], [], []
    for position, number in enumerate(numbers, start=1):
        try:
            result, version = parse_and_transform(source, [p for p in payloads if p.landing == number], countries,
                                                  step=step)
        except EujpError as exc:
            not_applied.append(landing_not_applied(source, position, len(numbers), exc))
            left_out.append(number)
            continue
        results.append(result)
        versions.append(version)
    if not results:
        raise no_landing_applied(source, not_applied)
    with step("transform"):
        folded = fold_results(source, results)
    return folded, latest_version(versions), not_applied, left_out


def fold_results(source: Source, results: list[TransformResult]) -> TransformResult:
    """The results of a source's landings or releases, in the order they apply, folded into what loading them
    one after the other leaves (transforms.common.supersede, under the source's replace scope). Accounting:
    every result's rows in count; a valid row a later one superseded counts as loaded (consumed), not
    rejected; the rejected rows are every result's."""
    valid, conflicts = supersede([(r.valid, r.conflicts) for r in results], source.table.natural_key,
                                 source.replace_scope)
    return TransformResult(
        valid=valid, rejected=pl.concat([r.rejected for r in results]),
        valid_wire_rows=sum(r.rows_in - r.rejected.height for r in results), conflicts=conflicts,
    )


def no_landing_applied(source: Source, not_applied: list[str]) -> EujpError:
    """The source's error when every landing of a replayed day failed (`landing_not_applied` says each)."""
    return EujpError(f"{source.name}: no landing of the day could be applied: " + " | ".join(not_applied))


def landing_not_applied(source: Source, position: int, landings: int, exc: EujpError) -> str:
    """Why a replay leaves out the day's landing at `position` (1-based) of `landings` (logged as a warning)."""
    message = (f"{source.name}: landing {position} of {landings} of the day not applied (its run failed the "
               f"source and loaded nothing of it): {exc}")
    log.warning(message)
    return message
