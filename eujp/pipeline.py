"""The steps of a run as plain functions. Prefect flows (flows/) only orchestrate these.

    fetch_payloads → land_payloads → parse_payloads → transform (transforms/) → validate (eujp.validate)
      → load_batches (staging copy) → audit → promote → publish
"""

from __future__ import annotations

import hashlib
import logging
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from eujp.config import REFERENCE_DIR, Settings, max_payload_bytes, max_payload_mb_env
from eujp.errors import EujpError, ExtractError, ParseError, PayloadTooLargeError, SchemaDriftError
from eujp.extract import read_snapshot
from eujp.incremental import SourceState, later_period, newest_period
from eujp.landing import RawPayload, land, read_landed, record_landing
from eujp.parse import ParsedPayload
from eujp.schema import DIM_COUNTRY
from eujp.sources import Source, get_source
from eujp.storage import ObjectStore
from eujp.warehouse import (
    count_present,
    read_source_state,
    read_state,
    record_rejected,
    record_run,
    upsert_fact,
    upsert_labels,
    write_source_state,
)
from transforms.common import TransformResult, WireColumnsError, reject, supersede
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
    labels: pl.DataFrame | None = None  # rows of the source's label feed (eujp.sources.base.LabelFeed), if any
    note: str | None = None  # why a batch is unchanged
    # Rows rejected by the transform (eujp.rejections.judge_rejections): the run's warning about them, or its
    # error when their share of rows in is above the source's threshold (the valid rows are loaded all the same).
    rejections: str | None = None
    rejected_over_threshold: bool = False
    # Natural keys the payloads carried twice with different content (TransformResult.conflicts): quarantined,
    # and their previous rows are kept whatever the replace scope; `conflicts_kept` of them had one.
    conflicts: pl.DataFrame | None = None
    conflicts_kept: int = 0

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
            "validation": None if self.validation is None else self.validation.to_dict(),
        }


# --- reference dimension ---------------------------------------------------------------------------

def load_countries(today: date, reference_dir: Path = REFERENCE_DIR) -> pl.DataFrame:
    seed = pl.read_csv(reference_dir / "countries.csv", infer_schema=False, encoding="utf8")
    return build_dim_country(seed, today)


# --- extract / land / parse ------------------------------------------------------------------------

def fetch_payloads(source: Source, settings: Settings, store: ObjectStore) -> list[RawPayload]:
    if settings.source_mode == "snapshot":
        return read_snapshot(source, settings.snapshot_dir)
    if settings.source_mode == "raw":
        if settings.raw_date is None:
            raise EujpError("source mode 'raw' needs a date (--from-raw YYYY-MM-DD)")
        return read_landed(store, source.name, settings.raw_date)
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
            where = payload.path if payload.path is not None else payload.url
            raise PayloadTooLargeError(
                f"{source.name}: payload {payload.name} ({where}) is {payload.size:,} bytes "
                f"({payload.size / 2**20:.1f} MB), over the {cap / 2**20:g} MB cap ({setting}): refused, nothing of "
                f"{source.name} was landed; raise {max_payload_mb_env(source.name)} if it is expected")


def land_payloads(store: ObjectStore, source: Source, payloads: list[RawPayload], day: date) -> list[str]:
    """Land the source's payloads (eujp.landing), once every one of them is within its cap, and record the
    landing (its payloads, in order, and when), so that a replay of the day applies its landings in order."""
    check_payload_sizes(source, payloads)
    keys = [land(store, p, day, source.labels.extension if p.kind != "data" and source.labels else source.extension)
            for p in payloads]
    if payloads:
        record_landing(store, source.name, day, [p.sha256 for p in payloads])
    return keys


def input_checksum(payloads: list[RawPayload]) -> str:
    """Order-independent checksum of everything a source delivered in a run."""
    return hashlib.sha256("\n".join(sorted(p.sha256 for p in payloads)).encode()).hexdigest()


def skip_unchanged(batch: SourceBatch, payloads: list[RawPayload], settings: Settings) -> bool:
    """Record the payloads' checksum and HTTP validators on `batch`; mark it 'unchanged' (and return True)
    when there is nothing to load: a live source answered 304 / had nothing new (no payloads), or the
    content checksum equals that of the source's last successful load. Never in raw mode (a rebuild) nor
    with settings.force (e.g. after a code change that needs a reload)."""
    data = [p for p in payloads if p.kind == "data"]
    if len(data) == 1:
        batch.etag = data[0].headers.get("etag")
        batch.last_modified = data[0].headers.get("last-modified")
        batch.request_url = data[0].url if (batch.etag or batch.last_modified) else None
    if payloads:
        batch.input_checksum = input_checksum(payloads)
    if settings.source_mode == "raw" or (settings.force and payloads):
        return False
    state = read_state(settings.warehouse_path, batch.source)
    if not payloads:
        batch.input_checksum = state.input_checksum if state else None
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


def _parse_one(source: Source, payload: RawPayload) -> ParsedPayload:
    try:
        return source.parse(payload.read())
    except ParseError as exc:
        raise type(exc)(f"{payload.name}: {exc}") from exc


def parse_payloads(source: Source, payloads: list[RawPayload]) -> ParsedPayload:
    parsed = [_parse_one(source, p) for p in payloads]
    frame = pl.concat([p.frame for p in parsed], how="diagonal_relaxed") if len(parsed) > 1 else parsed[0].frame
    versions = [p.source_version for p in parsed if p.source_version]
    return ParsedPayload(frame=frame, source_version=max(versions) if versions else None,
                         meta={"files": [p.name for p in payloads]})


Step = Callable[[str], AbstractContextManager]


def no_step(name: str) -> AbstractContextManager:
    """The default `step` of prepare_source / parse_and_transform: observes nothing. A caller may pass a
    context-manager factory instead (benchmarks/ times and meters each step with one)."""
    return nullcontext()


KeyRanges = list[tuple[Any, Any, bool]] | None


def key_ranges(frame: pl.DataFrame, key: tuple[str, ...]) -> KeyRanges:
    """(min, max, holds nulls) of each key column: a cheap summary (no hashing) of which keys can occur.
    None when a key column is missing (the transform will say so)."""
    if any(c not in frame.columns for c in key):
        return None
    row = frame.select(
        [e for i, c in enumerate(key) for e in (pl.col(c).min().alias(f"lo{i}"), pl.col(c).max().alias(f"hi{i}"),
                                                (pl.col(c).null_count() > 0).alias(f"nulls{i}"))]
    ).row(0)
    return [tuple(row[i:i + 3]) for i in range(0, len(row), 3)]


def may_share_keys(a: KeyRanges, b: KeyRanges) -> bool:
    """False when no key can occur in both: some key column has disjoint value ranges (and not nulls on
    both sides). True does not mean a key is shared, only that it may be."""
    if a is None or b is None:
        return True
    for (low_a, high_a, nulls_a), (low_b, high_b, nulls_b) in zip(a, b, strict=True):
        values = low_a is not None and low_b is not None and low_a <= high_b and low_b <= high_a
        if not values and not (nulls_a and nulls_b):
            return False
    return True


def key_groups(ranges: list[KeyRanges]) -> list[list[int]]:
    """Payload indices grouped so that payloads of different groups cannot share a key (union of every
    pair that may share one), each group sorted, groups in order of their first payload."""
    parent = list(range(len(ranges)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(ranges)):
        for j in range(i):
            if root(i) != root(j) and may_share_keys(ranges[i], ranges[j]):
                parent[max(root(i), root(j))] = min(root(i), root(j))
    groups: dict[int, list[int]] = {}
    for i in range(len(ranges)):
        groups.setdefault(root(i), []).append(i)
    return sorted(groups.values())


def run_transform(source: Source, parsed: ParsedPayload, countries: pl.DataFrame) -> TransformResult:
    """The source's transform of one parsed frame; a transform that finds other wire columns than it reads
    raises SchemaDriftError (the transforms know nothing of eujp's errors: transforms.common.WireColumnsError)."""
    try:
        return source.transform(parsed.frame, source.name, parsed.source_version, countries)
    except WireColumnsError as exc:
        raise SchemaDriftError(str(exc)) from exc


def parse_and_transform(
    source: Source, payloads: list[RawPayload], countries: pl.DataFrame, *, step: Step = no_step
) -> tuple[TransformResult, str | None]:
    """Parse and transform a source's payloads; returns the result and the batch's source_version (the
    latest payload version).

    A source with a `transform_key` (Comext) is streamed: each payload is parsed and transformed alone,
    and its wire frame is dropped before the next one, so memory follows the largest payload (a month of
    Comext) instead of the sum. The result is exactly that of transforming the concatenation, because
    payloads that may share a key (key_ranges overlap in every transform_key column, e.g. two files of the
    same month and products) are parsed again and transformed together; the valid rows of every payload
    are stamped with the batch's source_version. Other sources: parse all, concatenate, transform once.
    """
    if not source.transform_key or len(payloads) < 2:
        with step("parse"):
            parsed = parse_payloads(source, payloads)
        with step("transform"):
            result = run_transform(source, parsed, countries)
        return result, parsed.source_version

    results: dict[int, TransformResult] = {}
    versions: dict[int, str | None] = {}
    ranges: list[KeyRanges] = []
    for i, payload in enumerate(payloads):
        with step("parse"):
            parsed = _parse_one(source, payload)
            ranges.append(key_ranges(parsed.frame, source.transform_key))
        with step("transform"):
            results[i] = run_transform(source, parsed, countries)
        versions[i] = parsed.source_version
        del parsed  # the wire frame: the next payload's takes its place
    for group in key_groups(ranges):
        if len(group) < 2:
            continue
        log.info("%s: payloads %s may share keys: transformed together", source.name,
                 ", ".join(payloads[i].name for i in group))
        for i in group:
            del results[i]
        with step("parse"):
            parsed = parse_payloads(source, [payloads[i] for i in group])
        with step("transform"):
            results[group[0]] = run_transform(source, parsed, countries)
        del parsed
    stamped = [v for v in versions.values() if v]
    version = max(stamped) if stamped else None
    parts = [results[i] for i in sorted(results)]
    valid = pl.concat([r.valid for r in parts])
    if len(set(versions.values())) > 1 and "source_version" in valid.columns:
        valid = valid.with_columns(pl.lit(version, dtype=valid.schema["source_version"]).alias("source_version"))
    result = TransformResult(
        valid=valid,
        rejected=pl.concat([r.rejected for r in parts]),
        valid_wire_rows=sum(r.valid.height if r.valid_wire_rows is None else r.valid_wire_rows for r in parts),
        conflicts=concat_conflicts([r.conflicts for r in parts]),
    )
    return result, version


def transform_landings(
    source: Source, payloads: list[RawPayload], countries: pl.DataFrame, *, step: Step = no_step
) -> tuple[TransformResult, str | None]:
    """`parse_and_transform` landing by landing (`RawPayload.landing`: a replay of a day on which several runs
    landed payloads, eujp.landing.read_landed), folded in landing order into what loading them one after the
    other leaves (transforms.common.supersede): a later landing supersedes an earlier one for the same key,
    as the successive live runs did, instead of the two versions being quarantined as conflicting duplicates.
    Duplicates within one landing are judged as in any run. Payloads of one landing (every run but a replay of
    such a day): exactly `parse_and_transform`.

    Accounting: every landing's rows in are counted; a row that a later landing superseded counts as loaded
    (the live run loaded it, the next one replaced it)."""
    numbers = sorted({p.landing for p in payloads})
    if len(numbers) < 2:
        return parse_and_transform(source, payloads, countries, step=step)
    log.info("%s: %d landings on the day: applied in landing order", source.name, len(numbers))
    results, versions = [], []
    for number in numbers:
        result, version = parse_and_transform(source, [p for p in payloads if p.landing == number], countries,
                                              step=step)
        results.append(result)
        versions.append(version)
    with step("transform"):
        valid, conflicts = supersede([(r.valid, r.conflicts) for r in results], source.table.natural_key,
                                     source.replace_scope)
    stamped = [v for v in versions if v]
    return TransformResult(
        valid=valid, rejected=pl.concat([r.rejected for r in results]),
        valid_wire_rows=sum(r.rows_in - r.rejected.height for r in results), conflicts=conflicts,
    ), (max(stamped) if stamped else None)


def split_labels(source: Source, payloads: list[RawPayload]) -> tuple[list[RawPayload], pl.DataFrame | None]:
    """The data payloads, and the rows of the label-feed payloads among them (None when there are none), parsed
    by the source's LabelFeed; the last payload wins for a code that several carry."""
    data = [p for p in payloads if p.kind == "data"]
    feed = [p for p in payloads if p.kind != "data"]
    if not feed:
        return data, None
    if source.labels is None:
        raise ParseError(f"{source.name}: payload(s) {', '.join(p.name for p in feed)} of kind "
                         f"{feed[0].kind!r}, but the source has no label feed")
    if not data:
        raise ParseError(f"{source.name}: only label payloads ({', '.join(p.name for p in feed)}), no data")
    frames = []
    for p in feed:
        try:
            frames.append(source.labels.parse(p.read()))
        except ParseError as exc:
            raise type(exc)(f"{p.name}: {exc}") from exc
    key = list(source.labels.table.natural_key)
    return data, pl.concat(frames).unique(subset=key, keep="last", maintain_order=True)


def prepare_source(
    source: Source, payloads: list[RawPayload], countries: pl.DataFrame, batch: SourceBatch,
    *, step: Step = no_step,
) -> SourceBatch:
    """Parse, transform and validate one source's payloads into `batch` (errors are recorded on it).
    `step` observes each step (see `no_step`)."""
    from eujp.validate import validate_frame  # Great Expectations is slow to import: only here

    current = "parse"

    def tracked(name: str) -> AbstractContextManager:
        nonlocal current
        current = name
        return step(name)

    try:
        batch.input_checksum = input_checksum(payloads)
        payloads, batch.labels = split_labels(source, payloads)
        result, batch.source_version = transform_landings(source, payloads, countries, step=tracked)
        batch.valid, batch.rejected, batch.rows_in = result.valid, result.rejected, result.rows_in
        batch.conflicts = result.conflicts
        batch.valid_wire_rows = result.rows_in - result.rejected.height
        batch.rows_rejected = result.rejected.height
        with tracked("validate"):
            batch.validation = validate_frame(source.table.name, result.valid)
        batch.validation.raise_for_critical()
    except Exception as exc:  # noqa: BLE001 - any failure of one source is recorded, others go on
        return batch.fail(current, exc)
    batch.status = "prepared"
    batch.ended_at = utcnow()
    return batch


# --- load --------------------------------------------------------------------------------------------

def load_batches(conn: duckdb.DuckDBPyConnection, batches: list[SourceBatch], *, run_id: str) -> None:
    """Load every prepared batch into the (staging) warehouse, one transaction per source, and record
    every batch, loaded or not, in etl_runs; rejected rows go to etl_rejected_rows.

    A batch blocked by a failed expectation is not loaded (the table keeps its previous rows); its rows
    are quarantined with the reason, so rows in = loaded + rejected still holds."""
    for batch in batches:
        source = get_source(batch.source)
        now = utcnow()
        conn.execute("BEGIN TRANSACTION")
        try:
            if batch.status == "prepared":
                batch.conflicts_kept = count_present(conn, source.table, batch.conflicts, source=source.name)
                batch.rows_written = upsert_fact(
                    conn, source.table, batch.valid, run_id=run_id, loaded_at=now, source=source.name,
                    replace_scope=source.replace_scope, keep=batch.conflicts,
                )
                batch.rows_loaded = batch.valid_wire_rows
                batch.status = "loaded"
                note_conflicts(batch)
                if batch.labels is not None and source.labels is not None:
                    upsert_labels(conn, source.labels.table, batch.labels, run_id=run_id, loaded_at=now)
            elif batch.valid is not None and not batch.valid.is_empty():
                # Blocked by a failed expectation: quarantine the batch's rows (as transformed).
                blocked = reject(batch.valid, f"not loaded: {batch.error}")
                batch.rejected = pl.concat([batch.rejected, blocked]) if batch.rejected is not None else blocked
                batch.rows_rejected += batch.valid_wire_rows
            if batch.rejected is not None:
                record_rejected(conn, run_id=run_id, source=source.name, table_name=source.table.name,
                                rejected=batch.rejected, at=now)
            record_run(conn, etl_run_row(batch, run_id))
            update_source_state(conn, batch, now)
            conn.execute("COMMIT")
            if batch.status == "loaded":
                batch.valid = None  # in the warehouse now: do not hold 5M rows through marts, audit and publish
        except Exception as exc:  # noqa: BLE001 - a failed load is recorded and rolled back
            conn.execute("ROLLBACK")
            batch.fail("load", exc)
            batch.rows_loaded = batch.rows_written = 0
            # Nothing of the batch is in the table: account for all of it in the quarantine.
            quarantined = [f for f in (batch.rejected, None if batch.valid is None
                                       else reject(batch.valid, f"not loaded: {batch.error}")) if f is not None]
            batch.rows_rejected = batch.rows_in
            if quarantined:
                record_rejected(conn, run_id=run_id, source=source.name, table_name=source.table.name,
                                rejected=pl.concat(quarantined), at=now)
            record_run(conn, etl_run_row(batch, run_id))
            update_source_state(conn, batch, now)


def concat_conflicts(frames: list[pl.DataFrame | None]) -> pl.DataFrame | None:
    present = [f for f in frames if f is not None and not f.is_empty()]
    return pl.concat(present).unique(maintain_order=True) if present else None


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
    load and retries the source."""
    source = get_source(batch.source)
    state = read_source_state(conn, batch.source) or SourceState(source=batch.source)
    if batch.status == "loaded":
        newest = later_period(state.newest_period, newest_period(source.period_column, batch.valid))
        state = replace(state, last_success_at=now, last_attempt_at=now, last_status="success",
                        etag=batch.etag, last_modified=batch.last_modified, input_checksum=batch.input_checksum,
                        newest_period=newest, watermark=source.next_watermark(newest),
                        request_url=batch.request_url, requested_at=batch.started_at)
    elif batch.status == "unchanged":
        state = replace(state, last_success_at=now, last_attempt_at=now, last_status="unchanged",
                        requested_at=batch.started_at)
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
        "message": batch.error or batch.rejections or batch.note,
    }


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
