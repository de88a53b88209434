"""The steps of a run as plain functions. Prefect flows (flows/) only orchestrate these.

    fetch_payloads → land_payloads → parse and transform in chunks (eujp.stream, transforms/)
      → validate (eujp.validate) → load_batches (staging copy) → audit → promote → publish
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import shutil
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from eujp.config import (
    REFERENCE_DIR,
    Settings,
    max_payload_bytes,
    max_payload_mb_env,
)
from eujp.errors import EujpError, ExtractError, NothingLandedError, ParseError, PayloadTooLargeError
from eujp.extract import read_snapshot
from eujp.incremental import (
    ALL_CODES,
    SourceState,
    describe_widening,
    earlier_period,
    held_from,
    later_period,
    merge_scopes,
    newest_period,
    recorded_scope,
    scope_widening,
)
from eujp.landing import (
    DIGESTS_FILE,
    FileDigests,
    RawPayload,
    land_many,
    read_landed,
    record_landing,
    spill_folder,
)
from eujp.schema import DIM_COUNTRY
from eujp.sources import Source, get_source
from eujp.sql import sql_string
from eujp.storage import ObjectStore
from eujp.stream import (
    LandingsStream,
    Step,
    Stream,
    concat_conflicts,
    no_step,
    source_stream,
    streams,
    transform_landings,
)
from eujp.warehouse import (
    codes_without_rows,
    count_present,
    read_source_state,
    read_state,
    record_rejected,
    record_rejected_files,
    record_run,
    upsert_fact,
    upsert_labels,
    write_source_state,
)
from transforms.common import TransformResult, empty_rejected, reject
from transforms.countries import build_dim_country

log = logging.getLogger("eujp")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class SourceBatch:
    """What became of one source in one run, from extraction to load."""

    source: str
    table: str
    started_at: datetime
    ended_at: datetime | None = None
    input_checksum: str | None = None
    source_version: str | None = None
    raw_keys: list[str] = field(default_factory=list)
    rows_in: int = 0
    valid: pl.DataFrame | None = None  # the rows to load; released (None) once loaded
    rejected: pl.DataFrame | None = None
    validation: Any = None  # eujp.validate.ValidationReport (GX is imported lazily)
    error: str | None = None
    failed_step: str | None = None
    status: str = "pending"  # prepared | failed | loaded | unchanged (nothing new: not parsed, not loaded)
    # Accounting is in INPUT (wire) rows: rows_in = rows_loaded + rows_rejected. A transform may merge
    # several wire rows into one table row (Comext indicators, OECD attributes): rows_written counts
    # the table rows that were written.
    valid_wire_rows: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    rows_written: int = 0
    etag: str | None = None  # HTTP validators of a single-payload source, kept for the next conditional request
    last_modified: str | None = None
    request_url: str | None = None  # the URL those validators belong to
    request_scope: str | None = None  # what a live extraction asked for (Source.request_scope, JSON)
    # When the loaded payloads were asked of the live service: a live run's start; a --from-raw replay's
    # earliest landing time when every payload it replays came from the service (an http(s) URL); None for a
    # snapshot folder, or a replay of a snapshot run's landing. Only such a load moves where the next live
    # request starts (update_source_state).
    extracted_at: datetime | None = None
    # When each payload whose rows the batch holds was fetched (sha256 -> RawPayload.fetched_at, UTC): every
    # payload of the run, but those of the landings a replay left out (`landing_errors`). An as-of rebuild
    # stamps the source's last success with the newest of them (eujp.asof.stamp_extraction_times).
    fetched: dict[str, datetime] = field(default_factory=dict)
    live: bool = False  # extracted from the live service in this run
    labels: pl.DataFrame | None = None  # rows of the source's label feed (eujp.sources.base.LabelFeed), if any
    coverage: pl.DataFrame | None = None  # rows of the source's coverage statement (eujp.sources.base.CoverageFeed)
    note: str | None = None  # why a batch is unchanged
    # what the run's summary lists among its warnings (source_warnings): an extraction that brought no
    # observations of what it asked for beyond the last one, or of anything at all (skip_unchanged), or a load
    # that holds no row of some codes the settings added (load_batches: added_without_rows)
    warning: str | None = None
    # a --from-raw replay of a day on which nothing of the source was landed: unchanged, and not looked at, so
    # its etl_source_state is left as it was (update_source_state)
    nothing_landed: bool = False
    # Rows rejected by the transform (eujp.rejections.judge_rejections): the run's warning about them, or its
    # error when their share of rows in is above the source's threshold (the valid rows are loaded all the same).
    rejections: str | None = None
    rejected_over_threshold: bool = False
    # Natural keys the payloads carried twice with different content (TransformResult.conflicts): quarantined,
    # and their previous rows are kept whatever the replace scope; `conflicts_kept` of them had one.
    conflicts: pl.DataFrame | None = None
    conflicts_kept: int = 0
    # Streaming (eujp.stream.Stream): table rows to write; the valid rows spilled chunk by chunk to Parquet
    # files in spill_dir when there was more than one chunk (then `valid` is None), upserted at once by
    # DuckDB (chunks_relation); the wire rows of each chunk; the newest period of the valid rows; the parse
    # errors of the payloads quarantined whole. Its rejected rows too, past the first chunk: spilled chunk by
    # chunk to Parquet files in spill_dir (`rejected_chunks`, beside `rejected`, which then holds only the
    # payloads quarantined whole), so that a source whose rows are mostly rejected is held no more than one
    # whose rows are valid.
    valid_rows: int = 0
    chunks: list[Path] = field(default_factory=list)
    rejected_chunks: list[Path] = field(default_factory=list)
    spill_dir: Path | None = None
    chunk_wire_rows: list[int] = field(default_factory=list)
    newest: str | None = None
    payload_errors: list[str] = field(default_factory=list)
    # A replay of a day on which several runs landed the source: the landings it left out, with why (one that
    # failed to parse or transform, as its run failed the source and loaded nothing of it; the others apply:
    # eujp.stream.transform_landings). The run reports each as an error, as that landing's run failed.
    landing_errors: list[str] = field(default_factory=list)

    def fail(self, step: str, exc: BaseException) -> SourceBatch:
        detail = str(exc) if isinstance(exc, EujpError) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, EujpError):
            log.error("%s: unexpected error in %s\n%s", self.source, step, traceback.format_exc())
        self.error = f"{self.source} ({self.table}): {step} failed: {detail}"
        self.failed_step = step
        self.status = "failed"
        self.ended_at = utcnow()
        return self

    def summary(self) -> dict:
        return {
            "source": self.source,
            "table": self.table,
            "status": self.status,
            "rows_in": self.rows_in,
            "rows_loaded": self.rows_loaded,
            "rows_rejected": self.rows_rejected,
            "rows_written": self.rows_written,
            "source_version": self.source_version,
            "input_checksum": self.input_checksum,
            "raw_keys": self.raw_keys,
            "error": self.error,
            "rejections": self.rejections,
            "payload_errors": self.payload_errors,
            "landing_errors": self.landing_errors,
            "validation": None if self.validation is None else self.validation.to_dict(),
        }


def source_warnings(batches: list[SourceBatch]) -> list[str]:
    """The run's warnings about what its extractions brought (SourceBatch.warning), each naming its source."""
    return [f"{b.source}: {b.warning}" for b in batches if b.warning]


def landing_errors(batches: list[SourceBatch]) -> list[str]:
    """The run's errors for the landings a replay left out (`SourceBatch.landing_errors`): each landing's run
    failed, so a run replaying that day fails too, though the other landings applied."""
    return [e for b in batches for e in b.landing_errors]


# --- reference dimension ---------------------------------------------------------------------------

def load_countries(today: date, reference_dir: Path = REFERENCE_DIR) -> pl.DataFrame:
    seed = pl.read_csv(reference_dir / "countries.csv", infer_schema=False, encoding="utf8")
    return build_dim_country(seed, today)


# --- extract / land / parse ------------------------------------------------------------------------

def fetch_payloads(source: Source, settings: Settings, store: ObjectStore) -> list[RawPayload]:
    if settings.source_mode == "snapshot":
        return read_snapshot(source, settings.snapshot_dir, FileDigests(settings.warehouse_path.parent / DIGESTS_FILE))
    if settings.source_mode == "raw":
        if settings.raw_date is None:
            raise EujpError("source mode 'raw' needs a date (--from-raw YYYY-MM-DD)")
        try:
            return read_landed(store, source.name, settings.raw_date, settings.spill_dir)
        except NothingLandedError:  # a day on which the source had nothing new (live: 304): unchanged
            return []
    if settings.source_mode == "live":
        from eujp.live import fetch_live  # httpx and the request plans: only in live mode

        return fetch_live(source, settings)
    raise EujpError(f"unknown source mode {settings.source_mode!r}")


def check_payload_sizes(source: Source, payloads: list[RawPayload]) -> None:
    """PayloadTooLargeError when a payload is larger than the source's cap (EUJP_MAX_PAYLOAD_MB_<SOURCE>, else
    EUJP_MAX_PAYLOAD_MB): a snapshot file is judged by its size on disk, before it is read."""
    try:
        cap, setting = max_payload_bytes(source.name)
    except ValueError as exc:
        raise ExtractError(f"{source.name}: {exc}") from None
    for payload in payloads:
        if payload.size > cap:
            where = payload.path if payload.path is not None and payload.spool is None else payload.url
            raise PayloadTooLargeError(
                f"{source.name}: payload {payload.name} ({where}) is {payload.size:,} bytes "
                f"({payload.size / 2**20:.1f} MB), over the {cap / 2**20:g} MB cap ({setting}): refused, nothing of "
                f"{source.name} was landed; raise {max_payload_mb_env(source.name)} if it is expected")


def land_payloads(store: ObjectStore, source: Source, payloads: list[RawPayload], day: date) -> list[str]:
    """Land the source's payloads (eujp.landing), once every one of them is within its cap, and record the
    landing (its payloads, in order, and when), so that a replay of the day applies its landings in order."""
    check_payload_sizes(source, payloads)
    keys = land_many(store, payloads, day, lambda p: source.extension_of(p.kind))
    if payloads:
        record_landing(store, source.name, day, [p.sha256 for p in payloads])
    return keys


def input_checksum(payloads: list[RawPayload]) -> str:
    """Order-independent checksum of everything a source delivered in a run."""
    return hashlib.sha256("\n".join(sorted(p.sha256 for p in payloads)).encode()).hexdigest()


def extraction_time(batch: SourceBatch, payloads: list[RawPayload], mode: str) -> datetime | None:
    """When what `payloads` hold was asked of the live service (SourceBatch.extracted_at)."""
    if mode == "live":
        return batch.started_at
    if mode == "raw" and payloads and all(p.url.startswith(("http://", "https://")) for p in payloads):
        return min(datetime.fromisoformat(p.fetched_at) for p in payloads)
    return None


def skip_unchanged(batch: SourceBatch, payloads: list[RawPayload], settings: Settings) -> bool:
    """Record the payloads' checksum and HTTP validators on `batch`; mark it 'unchanged' (and return True)
    when there is nothing to load: a live source answered 304 / had nothing new (no payloads), or the
    content checksum equals that of the source's last successful load. Never in raw mode (a rebuild), but for a
    source of which nothing was landed on the day replayed (fetch_payloads: no payloads), nor with
    settings.force (e.g. after a code change that needs a reload)."""
    data = [p for p in payloads if p.kind == "data"]
    if settings.source_mode == "live" and get_source(batch.source).request_scope is not None:
        from eujp.live import fetched_scope

        # what this live extraction fetched (eujp.live.fetch_live compares the next one's settings with it)
        batch.request_scope = json.dumps(fetched_scope(get_source(batch.source), settings, os.environ,
                                                       batch.started_at), sort_keys=True)
    landed = get_source(batch.source).landed_scope
    if settings.source_mode == "raw" and landed is not None and payloads:  # what the replayed landings asked for
        replayed = landed(payloads)
        batch.request_scope = None if replayed is None else json.dumps(replayed, sort_keys=True)
    if len(data) == 1:
        batch.etag = data[0].headers.get("etag")
        batch.last_modified = data[0].headers.get("last-modified")
        batch.request_url = data[0].url if (batch.etag or batch.last_modified) else None
    if payloads:
        batch.input_checksum = input_checksum(payloads)
    batch.live = settings.source_mode == "live"
    batch.extracted_at = extraction_time(batch, payloads, settings.source_mode)
    if payloads and (settings.source_mode == "raw" or settings.force):
        return False
    state = read_state(settings.warehouse_path, batch.source)
    if settings.source_mode == "raw":  # --from-raw DAY replays the sources landed on DAY
        batch.input_checksum = state.input_checksum if state is not None else None
        batch.nothing_landed = True
        batch.note = (f"unchanged: nothing was landed for it on {settings.raw_date}, so the replay of that day "
                      "leaves it as it was")
    elif not payloads and (state is None or state.input_checksum is None):
        # nothing ever loaded and nothing now: the request's settings select no data (a code the service does
        # not have), or the service has none yet; said loudly, every such day, since it looks like a quiet one
        batch.input_checksum = None
        batch.note = ("unchanged: no observations, and none ever loaded for what this extraction asked "
                      f"({batch.request_scope or 'the source settings'}): check the source's settings")
        batch.warning = batch.note.removeprefix("unchanged: ")
        log.warning("%s: %s", batch.source, batch.note)
    elif not payloads and (added := scope_added(batch, state)):
        # the settings asked for more than the last extraction, and the history of it is empty: said, by name
        batch.input_checksum = state.input_checksum
        batch.note, batch.warning = f"unchanged: {added}", added
        log.warning("%s: %s", batch.source, added)
    elif not payloads:
        batch.input_checksum = state.input_checksum
        batch.note = ("unchanged: the service reported nothing new (304 Not Modified, no observations, or nothing "
                      "updated since the last extraction)")
    elif state is not None and state.input_checksum == batch.input_checksum:
        batch.etag = batch.etag or state.etag
        batch.last_modified = batch.last_modified or state.last_modified
        batch.request_url = batch.request_url or state.request_url
        batch.note = "unchanged: same content checksum as the last successful load"
    else:
        return False
    batch.status = "unchanged"
    batch.ended_at = utcnow()
    return True


def scope_added(batch: SourceBatch, state: SourceState | None) -> str | None:
    """What a live extraction that brought nothing asked for beyond the last successful one (its settings added
    a partner, say, whose whole history was asked for: eujp.incremental.scope_widening), as a warning naming
    it ('partners + AQ: the service holds no observations of it since 2002-01'); None when it asked for no more."""
    widened, current = widening(batch, state)
    if not widened:
        return None
    return no_observations(widened, current)


def widening(batch: SourceBatch, state: SourceState | None) -> tuple[dict, dict | None]:
    """(what the batch's request scope asks for beyond the one `state` recorded, eujp.incremental.scope_widening;
    the batch's request scope, None when it has none)."""
    current = json.loads(batch.request_scope) if batch.request_scope else None
    return scope_widening(recorded_scope(state), current), current


def no_observations(added: dict, scope: dict) -> str:
    """The warning naming what the settings `added` (scope_widening's form) of which the service answered no
    observations, since the first period the request `scope` asked for every one of them when it records one:
    its start, or its stage's for codes whose history is fetched in stages (eujp.incremental.STAGE: a partner
    added with EUJP_COMEXT_HISTORY_MONTHS was asked for its newest months only, not since the start)."""
    start = scope.get("start")
    periods = {held_from(scope, name, code) or start
               for name, codes in added.items() if isinstance(codes, list) for code in codes if code != ALL_CODES}
    periods = {p for p in periods or {start} if p}
    since = f" since {max(periods)}" if periods else ""
    return (f"{describe_widening(added)}: the service holds no observations of what the settings added{since} "
            "(check the codes: the service may code them otherwise)")


def added_without_rows(conn: duckdb.DuckDBPyConnection, source: Source, batch: SourceBatch, *,
                       run_id: str) -> str | None:
    """After a live batch's upsert: the codes its settings added to a list of the request scope (beyond the last
    successful extraction's, eujp.incremental.scope_widening) of which the run loaded no row, as a warning naming
    them by list ('partners + AQ: the service holds no observations ...'), None when every code added has rows.
    Only lists the source maps to a fact column (Source.scope_columns), never a list widened to every code ('*',
    nothing to name); one query a list, over the rows the run wrote (eujp.warehouse.codes_without_rows), and none
    when the settings added nothing (a normal day). Not after a payload was quarantined whole: its codes' rows
    may be in it (the next run asks again), so their absence says nothing about the service."""
    if not (batch.live and batch.request_scope and source.scope_columns) or batch.payload_errors:
        return None
    widened, current = widening(batch, read_source_state(conn, source.name))
    empty = {}
    for name, codes in widened.items():
        column = source.scope_columns.get(name)
        if column is not None and codes != ALL_CODES and (
                missing := codes_without_rows(conn, source.table, column, codes, run_id=run_id, source=source.name)):
            empty[name] = missing
    if not empty:
        return None
    rejected = (f"; or the transform rejected them ({batch.rows_rejected:,} row(s) of the run rejected: "
                "etl_rejected_rows)" if batch.rows_rejected else "")
    return no_observations(empty, current) + rejected


def coverage_kind(source: Source) -> str | None:
    return source.coverage.kind if source.coverage is not None else None


def split_labels(source: Source, payloads: list[RawPayload]) -> tuple[list[RawPayload], pl.DataFrame | None]:
    """The data payloads, and the rows of the label-feed payloads among them (None when there are none), parsed
    by the source's LabelFeed; the last payload wins for a code that several carry. Coverage statements
    (parse_coverage) are neither."""
    data = [p for p in payloads if p.kind == "data"]
    feed = [p for p in payloads if p.kind not in ("data", coverage_kind(source))]
    if not feed:
        return data, None
    if source.labels is None:
        raise ParseError(f"{source.name}: payload(s) {', '.join(p.name for p in feed)} of kind "
                         f"{feed[0].kind!r}, but the source has no label feed")
    if not data:
        raise ParseError(f"{source.name}: only label payloads ({', '.join(p.name for p in feed)}), no data")
    return data, parse_labels(source, feed)


def _parse_feed(feed, payloads: list[RawPayload]) -> pl.DataFrame:
    """The rows of `payloads` parsed by `feed` (a LabelFeed or CoverageFeed), a parse error naming the payload;
    the last payload wins for a key that several carry (the landings of a day, in order)."""
    frames = []
    for p in payloads:
        try:
            frames.append(feed.parse(p.read()))
        except ParseError as exc:
            raise type(exc)(f"{p.name}: {exc}") from exc
    return pl.concat(frames).unique(subset=list(feed.table.natural_key), keep="last", maintain_order=True)


def parse_coverage(source: Source, payloads: list[RawPayload]) -> pl.DataFrame | None:
    """The rows of the coverage statements among `payloads` (eujp.sources.base.CoverageFeed), None when there are
    none; a later statement wins for a key that several state (the landings of a day, in order)."""
    stated = [p for p in payloads if p.kind == coverage_kind(source)]
    return _parse_feed(source.coverage, stated) if stated else None


def parse_labels(source: Source, feed: list[RawPayload]) -> pl.DataFrame:
    """The rows of a source's label-feed payloads, parsed by its LabelFeed; the last payload wins for a code
    that several carry."""
    return _parse_feed(source.labels, feed)


def prepare_source(
    source: Source, payloads: list[RawPayload], countries: pl.DataFrame, batch: SourceBatch,
    *, step: Step = no_step, limit: int | None = None, spill_dir: Path | None = None,
) -> SourceBatch:
    """Parse, transform and validate one source's payloads into `batch` (errors are recorded on it).
    `step` observes each step (see `no_step`); what is spilled goes into a folder of its own under `spill_dir`
    (a run's Settings.spill_dir; None: the system's temporary folder).

    A streamed source comes in chunks (`Stream`): each is transformed and validated alone (validated on a
    thread while the next chunk is parsed and transformed), and, when there is more than one, its valid rows
    are spilled to Parquet files (`batch.chunks`) that load_batches upserts in the source's transaction
    (DuckDB reads them); the chunks' validation reports are merged into one
    (eujp.validate.merge_reports). A payload that fails to parse is quarantined whole while the others load."""
    from eujp.validate import merge_reports, validate_frame  # Great Expectations is slow to import: only here

    current = "parse"

    def tracked(name: str) -> AbstractContextManager:
        nonlocal current
        current = name
        return step(name)

    spill: Path | None = None
    validator: ThreadPoolExecutor | None = None
    try:
        batch.input_checksum = input_checksum(payloads)
        batch.coverage = parse_coverage(source, payloads)
        every = payloads
        payloads, batch.labels = split_labels(source, payloads)
        stream: Stream | None = None
        left_out: list[int] = []
        if len({p.landing for p in payloads}) > 1 and not streams(source):  # a small source's landings: folded whole
            folded, folded_version, batch.landing_errors, left_out = transform_landings(source, payloads, countries,
                                                                                        step=tracked)
            results: Iterator[TransformResult] = iter([folded])
        else:
            stream = source_stream(source, payloads, countries, step=tracked, limit=limit, spill_dir=spill_dir)
            results = stream.chunks()
        reports, rejected, held, conflicts = [], [], [], []
        wire_rows = valid_rows = rejected_rows = 0
        # Each chunk is validated on a thread while the next one is parsed and transformed (polars and DuckDB
        # release the GIL; GX's pandas engine mostly computes in pyarrow and pandas): one validation at a time,
        # the reports kept in chunk order. A chunk's rows are held until its validation ends.
        validating = None
        validator = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"eujp-validate-{source.name}")

        def validated() -> None:
            with tracked("validate"):
                reports.append(validating.result())

        for seen, result in enumerate(results, start=1):
            conflicts.append(result.conflicts)
            if result.valid.height or not isinstance(stream, LandingsStream):
                # (a landing's rejected rows, handed on alone by LandingsStream, have nothing to validate)
                if validating is not None:
                    validated()
                validating = validator.submit(validate_frame, source.table.name, result.valid)
            wire_rows += result.rows_in
            valid_rows += result.valid.height
            batch.valid_wire_rows += result.rows_in - result.rejected.height
            rejected_rows += result.rejected.height
            rejected.append(result.rejected)
            batch.newest = later_period(batch.newest, newest_period(source.period_column, result.valid))
            if result.valid.height or not held:
                held.append(result.valid)
            if seen > 1 or spill is not None:  # a second chunk: spill the rows, chunk by chunk
                if spill is None:
                    spill = spill_folder(f"eujp-{source.name}-valid-", spill_dir)
                with tracked("transform"):  # the transform's output, kept on disk until the load
                    for frame in held:
                        if frame.height:
                            spill_chunk(batch, in_period_order(frame, load_order(source)), spill)
                    for frame in rejected:
                        spill_rejected(batch, frame, spill)
                held, rejected = [], []
            del result
        if validating is not None:
            validated()
        # the payloads quarantined whole: kept in memory with the chunks' rejected rows while nothing was spilled
        # and they fit in a chunk (one piece each), else spilled piece by piece beside them
        quarantined_rows = 0
        for q in stream.quarantined if stream else []:
            pieces = q.frames(stream.piece_lines)
            first, second = next(pieces, None), next(pieces, None)
            if second is None and spill is None and quarantined_rows + (first.height if first is not None else 0) \
                    <= stream.limit:
                rejected.extend([] if first is None else [first])
                quarantined_rows += 0 if first is None else first.height
                continue
            if spill is None:
                spill = spill_folder(f"eujp-{source.name}-valid-", spill_dir)
            with tracked("parse"):
                for frame in itertools.chain([f for f in (first, second) if f is not None], pieces):  # one by one
                    quarantined_rows += frame.height
                    spill_rejected(batch, frame, spill)
        batch.source_version = stream.version if stream else folded_version
        batch.chunk_wire_rows = stream.chunk_wire_rows if stream else [folded.rows_in]
        batch.payload_errors = stream.payload_errors if stream else []
        if stream is not None:
            batch.landing_errors, left_out = stream.landing_errors, stream.left_out
        note_applied(batch, every, left_out)
        batch.conflicts = concat_conflicts(conflicts)
        batch.spill_dir = spill
        batch.valid = in_period_order(held[0], load_order(source)) if held else (
            None if batch.chunks else pl.DataFrame(schema=source.table.business_columns))
        batch.valid_rows = valid_rows
        batch.rejected = pl.concat(rejected) if rejected else empty_rejected()
        batch.rows_rejected = rejected_rows + quarantined_rows
        batch.rows_in = wire_rows + quarantined_rows
        if not reports:  # every payload quarantined cannot happen here (the stream raises): no chunk at all
            reports.append(validate_frame(source.table.name, pl.DataFrame(schema=source.table.business_columns)))
        with tracked("validate"):
            batch.validation = merge_reports(reports)
        batch.validation.raise_for_critical()
    except Exception as exc:  # noqa: BLE001 - any failure of one source is recorded, others go on
        if spill is not None and batch.validation is None:
            shutil.rmtree(spill, ignore_errors=True)
            batch.chunks, batch.rejected_chunks, batch.spill_dir = [], [], None
        return batch.fail(current, exc)
    finally:
        if validator is not None:  # a failure while a chunk is validated: that validation ends first
            validator.shutdown(wait=True, cancel_futures=True)
    batch.status = "prepared"
    batch.ended_at = utcnow()
    return batch


def note_applied(batch: SourceBatch, payloads: list[RawPayload], left_out: list[int]) -> None:
    """Record on `batch` when the data payloads it holds were fetched (`SourceBatch.fetched`): `payloads` but
    those of the landings `left_out` (a replay left them out: their runs loaded nothing). A replay's extraction
    time is then that of the landings it applied, not of one it left out. A fan-out passes its landed
    partitions (eujp.partitions.LandedPartition: sha256, kind, landing, url and fetched_at, as a payload's)."""
    applied = [p for p in payloads if p.landing not in left_out]
    batch.fetched = {}
    for p in applied:
        if p.kind == "data":
            try:
                at = datetime.fromisoformat(p.fetched_at)
            except (TypeError, ValueError):  # read back without its time (no .meta.json)
                continue
            batch.fetched[p.sha256] = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
    if left_out and batch.extracted_at is not None:
        batch.extracted_at = extraction_time(batch, applied, "raw")


def valid_frames(batch: SourceBatch) -> Iterator[pl.DataFrame]:
    """The batch's valid rows, chunk by chunk: `batch.valid`, or each spilled chunk read back in turn."""
    if batch.valid is not None:
        yield batch.valid
    for path in batch.chunks:
        yield pl.read_parquet(path)


def load_order(source: Source) -> str | None:
    """The column by which `source`'s chunks of valid rows are sorted before the load (`in_period_order`): its
    `load_order_column`, else its period column; None: kept as they are."""
    return source.load_order_column or source.period_column


def in_period_order(frame: pl.DataFrame, column: str | None) -> pl.DataFrame:
    """`frame` (a chunk of valid rows, as the load will append them) sorted by `column`, its source's period
    (`load_order`), unless it is in that order already or there is none.

    DuckDB stores rows in the order they are appended, and skips the row groups whose min/max exclude a filter
    (zone maps). Rows of one period side by side are what the year-by-year rebuild of the partitioned marts
    (eujp.marts.build: a year's rows, bounded on `period`) and the lake's files per period read and write. A
    payload of many months interleaves them in every chunk (one wide Comext answer, a folded set of landings):
    unsorted, every year's rebuild scanned every row group of the fact table (a cost growing with the square of
    the years) and the lake wrote each month partition in 2-3 files. Sorting a chunk of 750k fact rows by a date
    costs ~0.04 s; the first run of 10M wire rows in one payload spent ~0.7 s more in its prepare step and ~1.9
    s less in its models and lake commit over 120 months, ~4.5 s less over 240 (benchmarks/RESULTS.md,
    thirty-eighth session). A chunk already in order (monthly files) is left as it is."""
    if column is None or column not in frame.columns or frame.height < 2 or frame.get_column(column).is_sorted():
        return frame
    return frame.sort(column, maintain_order=True)


def spill_chunk(batch: SourceBatch, frame: pl.DataFrame, folder: Path) -> None:
    """Write `frame` (valid rows) as the batch's next chunk, a Parquet file in `folder`, which the load reads
    with the others (`chunks_relation`)."""
    path = folder / f"{len(batch.chunks):06d}.parquet"
    frame.write_parquet(path, compression="lz4", statistics=False)
    batch.chunks.append(path)


def spill_rejected(batch: SourceBatch, frame: pl.DataFrame, folder: Path) -> None:
    """Write `frame` (rejected rows), unless empty, as the batch's next rejected chunk, a Parquet file in
    `folder` that the load records (`record_batch_rejected`)."""
    if frame.height:
        path = folder / f"rejected-{len(batch.rejected_chunks):06d}.parquet"
        frame.write_parquet(path, compression="lz4", statistics=False)
        batch.rejected_chunks.append(path)


def rejected_frames(batch: SourceBatch) -> Iterator[pl.DataFrame]:
    """The batch's rejected rows, chunk by chunk: each spilled chunk read back in turn, then `batch.rejected`."""
    for path in batch.rejected_chunks:
        yield pl.read_parquet(path)
    if batch.rejected is not None:
        yield batch.rejected


def record_batch_rejected(conn: duckdb.DuckDBPyConnection, batch: SourceBatch, table_name: str, *, run_id: str,
                          at: datetime) -> None:
    """Record the batch's rejected rows in etl_rejected_rows: its spilled chunks (DuckDB reads their files),
    then `batch.rejected`."""
    record_rejected_files(conn, run_id=run_id, source=batch.source, table_name=table_name,
                          files=batch.rejected_chunks, at=at)
    if batch.rejected is not None:
        record_rejected(conn, run_id=run_id, source=batch.source, table_name=table_name, rejected=batch.rejected,
                        at=at)


def chunks_relation(batch: SourceBatch) -> str:
    """The batch's spilled chunks as a relation DuckDB reads: `read_parquet([...])` of their files."""
    paths = ", ".join(sql_string(str(p)) for p in batch.chunks)
    return f"read_parquet([{paths}])"


def release_chunks(batch: SourceBatch) -> None:
    """Remove the batch's spilled chunks (once loaded or quarantined)."""
    if batch.spill_dir is not None:
        shutil.rmtree(batch.spill_dir, ignore_errors=True)
    batch.chunks, batch.rejected_chunks, batch.spill_dir = [], [], None


# --- load --------------------------------------------------------------------------------------------

def load_batches(conn: duckdb.DuckDBPyConnection, batches: list[SourceBatch], *, run_id: str) -> None:
    """Load every prepared batch into the (staging) warehouse, one transaction per source, and record
    every batch, loaded or not, in etl_runs; rejected rows go to etl_rejected_rows.

    A streamed batch's chunks (Parquet files) are upserted at once inside its source's transaction, DuckDB
    reading them out of core (`chunks_relation`): the rows and revisions are exactly those of the one-batch
    upsert, and the cost is one upsert however many chunks there are (a chunk-by-chunk upsert would scan the
    growing table once per chunk).
    A batch blocked by a failed expectation is not loaded (the table keeps its previous rows); its rows
    are quarantined with the reason, so rows in = loaded + rejected still holds."""
    for batch in batches:
        source = get_source(batch.source)
        now = utcnow()
        warned = batch.warning  # what the load may add to is put back if it rolls back
        conn.execute("BEGIN TRANSACTION")
        try:
            if batch.status == "prepared":
                batch.conflicts_kept = count_present(conn, source.table, batch.conflicts, source=source.name)
                # A streamed batch's chunks are upserted at once by DuckDB, read from their Parquet files
                # (out of core, under EUJP_DUCKDB_MEMORY_LIMIT): one upsert, whatever the number of chunks.
                batch.rows_written = upsert_fact(
                    conn, source.table, batch.valid if batch.valid is not None else chunks_relation(batch),
                    run_id=run_id, loaded_at=now, source=source.name, replace_scope=source.replace_scope,
                    keep=batch.conflicts,
                )
                batch.rows_loaded = batch.valid_wire_rows
                batch.status = "loaded"
                note_conflicts(batch)
                if batch.labels is not None and source.labels is not None:
                    upsert_labels(conn, source.labels.table, batch.labels, run_id=run_id, loaded_at=now)
                # a payload quarantined whole is a hole in what the extraction fetched: its statement of what
                # it covered in full is not recorded (update_source_state holds the request back as well)
                if batch.coverage is not None and source.coverage is not None and not batch.payload_errors:
                    upsert_labels(conn, source.coverage.table, batch.coverage, run_id=run_id, loaded_at=now)
                # codes the settings added that no row holds: named (etl_runs.message, the run's warnings), as when
                # the whole extraction came back empty (skip_unchanged); before update_source_state records them
                if added := added_without_rows(conn, source, batch, run_id=run_id):
                    batch.warning = f"{warned}; {added}" if warned else added
                    log.warning("%s: %s", batch.source, added)
            else:
                # Blocked by a failed expectation: quarantine the batch's rows (as transformed), chunk by chunk.
                blocked = 0
                for frame in valid_frames(batch):
                    blocked += record_rejected(conn, run_id=run_id, source=source.name, table_name=source.table.name,
                                               rejected=reject(frame, f"not loaded: {batch.error}"), at=now)
                if blocked:
                    batch.rows_rejected += batch.valid_wire_rows
            record_batch_rejected(conn, batch, source.table.name, run_id=run_id, at=now)
            record_run(conn, etl_run_row(batch, run_id))
            update_source_state(conn, batch, now)
            conn.execute("COMMIT")
            if batch.status == "loaded":
                batch.valid = None  # in the warehouse now: do not hold 5M rows through marts, audit and publish
                release_chunks(batch)
        except Exception as exc:  # noqa: BLE001 - a failed load is recorded and rolled back
            conn.execute("ROLLBACK")
            batch.warning = warned
            batch.fail("load", exc)
            batch.rows_loaded = batch.rows_written = 0
            # Nothing of the batch is in the table: account for all of it in the quarantine.
            batch.rows_rejected = batch.rows_in
            record_batch_rejected(conn, batch, source.table.name, run_id=run_id, at=now)
            for frame in valid_frames(batch):
                record_rejected(conn, run_id=run_id, source=source.name, table_name=source.table.name,
                                rejected=reject(frame, f"not loaded: {batch.error}"), at=now)
            record_run(conn, etl_run_row(batch, run_id))
            update_source_state(conn, batch, now)
        finally:
            if batch.status != "loaded" and (batch.chunks or batch.rejected_chunks):
                release_chunks(batch)


def note_conflicts(batch: SourceBatch) -> None:
    """Add to the batch's rejection verdict (its etl_runs.message and the run's warning) how many natural keys
    came with conflicting versions and how many of them kept the row loaded before."""
    if batch.conflicts is None or batch.conflicts.is_empty():
        return
    n, kept = batch.conflicts.height, batch.conflicts_kept
    note = (f"{batch.source}: {n:,} natural key(s) came more than once with different content (conflicting "
            f"duplicates, every version quarantined): {kept:,} kept the version loaded before"
            + (f", {n - kept:,} had none and are not in {batch.table}" if n > kept else ""))
    batch.rejections = f"{batch.rejections}; {note}" if batch.rejections else note


def update_source_state(conn: duckdb.DuckDBPyConnection, batch: SourceBatch, now: datetime) -> SourceState:
    """Maintain the source's etl_source_state row after its load (see eujp.incremental).

    Loaded: validators, checksum, newest period and watermark of this load. Unchanged: confirmed up to
    date. Failed: only the attempt is recorded, so the next run compares with the last *successful*
    load and retries the source. Loaded with a payload quarantined whole (a slice's answer that did not
    parse): the load is a success, but where the next request starts (watermark, requested_at, request
    scope) stays where it was, so that the next run asks again for what that payload should have held (asked
    with `updatedAfter` from the same time, the slice answers with rows again and is fetched whole), and so
    does its input checksum, so that the same answers are loaded again rather than skipped as unchanged.
    A source a --from-raw replay did not look at (nothing of it landed that day) keeps its row as it was."""
    source = get_source(batch.source)
    state = read_source_state(conn, batch.source) or SourceState(source=batch.source)
    if batch.status == "unchanged" and batch.nothing_landed:
        return state
    live = batch.live
    if batch.status == "loaded":
        loaded = batch.newest or newest_period(source.period_column, batch.valid)  # the newest this load wrote
        newest = later_period(state.newest_period, loaded)
        state = replace(state, last_success_at=now, last_attempt_at=now, last_status="success",
                        newest_period=newest)
        if batch.payload_errors:
            log.warning("%s: %d payload(s) quarantined whole: the next run asks again from where this one did "
                        "(watermark %s, requested at %s)", batch.source, len(batch.payload_errors),
                        state.watermark, state.requested_at)
        elif batch.extracted_at is None and not live:
            # A snapshot folder (or a replay of a snapshot run's landing) is no extraction from the service, and
            # may hold less, or older figures, than the live service had: the next live run extracts the source
            # whole, as its first, rather than only what changed since the last live extraction.
            state = replace(state, input_checksum=batch.input_checksum, etag=None, last_modified=None,
                            request_url=None, watermark=None, requested_at=None, request_scope=None)
        elif live:
            state = replace(state, etag=batch.etag, last_modified=batch.last_modified,
                            input_checksum=batch.input_checksum, watermark=source.next_watermark(newest),
                            request_url=batch.request_url, requested_at=batch.started_at,
                            request_scope=batch.request_scope or state.request_scope)
        else:
            # A replay of a day's live landings (--from-raw): the rows it wrote are as the service had them
            # when they were landed, maybe before the last live extraction, whose later figures it replaced.
            # The next live request asks from the earlier of the two: what changed since, from the earlier
            # watermark, with the landing's own validators.
            # What the warehouse then holds was asked for by the last live extraction or by the replayed
            # landings (their own request scope, Source.landed_scope): both together. Landings that do not say
            # what they asked for add nothing; a state without a scope stays without one (the next live run
            # rebuilds it from the raw zone, or extracts in full: eujp.live.fetch_live).
            replayed = source.next_watermark(loaded)
            known = state.requested_at is not None
            scope = merge_scopes(recorded_scope(state), json.loads(batch.request_scope) if batch.request_scope
                                 else None)
            state = replace(state, etag=batch.etag, last_modified=batch.last_modified,
                            input_checksum=batch.input_checksum, request_url=batch.request_url,
                            watermark=earlier_period(state.watermark, replayed) if known else replayed,
                            requested_at=min(state.requested_at, batch.extracted_at) if known
                            else batch.extracted_at,
                            request_scope=json.dumps(scope, sort_keys=True) if scope else None)
    elif batch.status == "unchanged":
        state = replace(state, last_success_at=now, last_attempt_at=now, last_status="unchanged")
        if live:
            state = replace(state, requested_at=batch.started_at,
                            request_scope=batch.request_scope or state.request_scope)
    else:
        state = replace(state, last_attempt_at=now, last_status="failed")
    write_source_state(conn, state)
    return state


def etl_run_row(batch: SourceBatch, run_id: str) -> dict:
    return {
        "run_id": run_id,
        "source": batch.source,
        "table_name": batch.table,
        "input_checksum": batch.input_checksum,
        "source_version": batch.source_version,
        "rows_in": batch.rows_in,
        "rows_loaded": batch.rows_loaded,
        "rows_rejected": batch.rows_rejected,
        "rows_written": batch.rows_written,
        "started_at": batch.started_at,
        "ended_at": batch.ended_at or utcnow(),
        "status": {"loaded": "success", "unchanged": "unchanged"}.get(batch.status, "failed"),
        "message": "; ".join(m for m in (batch.error or batch.rejections or batch.note, loaded_warning(batch),
                                         *batch.landing_errors, *batch.payload_errors) if m) or None,
    }


def loaded_warning(batch: SourceBatch) -> str | None:
    """A loaded batch's warning (added_without_rows), for its etl_runs.message: an unchanged batch's is its note."""
    return batch.warning if batch.status == "loaded" else None


def load_dim_country(conn: duckdb.DuckDBPyConnection, countries: pl.DataFrame) -> int:
    """Validate and replace dim_country, unless the staged table already holds exactly these rows (the usual
    case: the seed changes with a release), which spares an unchanged day importing Great Expectations."""
    from eujp.warehouse import read_countries, replace_dimension

    staged = read_countries(conn)
    if staged.columns == countries.columns and staged.sort("iso2").equals(countries.sort("iso2")):
        return countries.height
    from eujp.validate import validate_frame

    validate_frame(DIM_COUNTRY.name, countries).raise_for_critical()
    return replace_dimension(conn, DIM_COUNTRY, countries)
