"""One source's work split into partitions that any worker can do alone (the fan-out of flows/fanout.py).

A *partition* is one payload of a source that streams (`Source.transform_key`, e.g. Comext): in snapshot mode
one file of the snapshot folder (a month of Comext), in live mode one landed slice, in raw mode one landed
payload. The work on it runs in two steps, each a plain function of its arguments and the object store, so
that a worker on another host needs nothing but the package and access to the store:

    land_partition     snapshot file → raw zone (content-addressed, as eujp.landing.land)  → LandedPartition
    prepare_partition  raw zone → parse → transform → validate → Parquet under a run-scoped staging prefix
                       staging/{run_id}/{source}/part-NNNNN.parquet (+ .rejected.parquet) → PartitionResult

The flow (the one committer) decides what is unchanged from the partitions' checksums before anything is
parsed, regroups partitions whose keys may overlap (`key_groups`: they are prepared again together,
so that no natural key is split between two pieces), then `collect_batch` turns the results into
the source's SourceBatch (rows read back from the Parquet pieces, one merged validation report), which
`eujp.pipeline.load_batches` loads in one transaction per source like any other batch. `discard_staging`
removes the run's prefix once the run is over. Nothing here imports Prefect or Dask.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl

from eujp.config import Settings, batch_rows
from eujp.errors import EujpError
from eujp.incremental import later_period, newest_period
from eujp.landing import PayloadSpool, RawPayload, land, landed_objects, read_record, spill_folder, unreadable
from eujp.parse import CSV_NULLS, latest_version
from eujp.pipeline import (
    SourceBatch,
    check_payload_sizes,
    coverage_kind,
    in_period_order,
    load_order,
    parse_coverage,
    parse_labels,
    release_chunks,
    utcnow,
)
from eujp.rows import describe_rows
from eujp.sources import Source, get_source
from eujp.storage import ObjectStore, open_store
from eujp.stream import concat_conflicts, landing_not_applied, no_landing_applied, source_stream
from transforms.common import empty_rejected

STAGING_PREFIX = "staging"


def worker_settings(settings: Settings) -> Settings:
    """The settings a worker gets: a local publish folder and the snapshot folder as absolute paths (a worker
    process does not share the flow's working directory). An s3:// URI is left as it is."""
    changes: dict = {"snapshot_dir": Path(settings.snapshot_dir).resolve()}
    if "://" not in settings.publish_uri:
        changes["publish_uri"] = str(Path(settings.publish_uri).resolve())
    return settings.with_(**changes)


def where() -> str:
    """Who did a piece of work: host and process id (recorded on every result)."""
    return f"{socket.gethostname()}:{os.getpid()}"


# --- the partitions of a source -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Partition:
    """What a worker needs to land one partition: the source and one snapshot file."""

    source: str
    index: int
    path: str  # absolute path of the snapshot file (readable by the worker: same host or a shared volume)
    kind: str = "data"  # eujp.landing.RawPayload.kind: "data", or a label feed's (Comext's codelist)


@dataclass(frozen=True)
class LandedPartition:
    """One partition in the raw zone: its key, content hash and the request metadata kept with it."""

    source: str
    index: int
    key: str  # raw/{source}/{day}/{sha256}.{ext}
    sha256: str
    name: str
    size: int
    headers: dict = field(default_factory=dict)
    worker: str = ""
    kind: str = "data"  # a label feed's payload (the codelist) is read by the committer, not prepared
    landing: int = 0  # raw mode: which of the day's landings it belongs to (eujp.landing.RawPayload.landing)
    # where and when the payload was fetched (eujp.landing.RawPayload.url, fetched_at): the committer judges the
    # batch's extraction time and records when its loaded payloads were fetched by them (SourceBatch.extracted_at,
    # fetched: eujp.pipeline.skip_unchanged, note_applied), as for the payloads of a single-process run
    url: str = ""
    fetched_at: str = ""


def plan_snapshot(source: Source, settings: Settings) -> list[Partition]:
    """One partition per snapshot file of `source` (sorted by name, as eujp.extract reads them); ExtractError
    when there is none, PayloadTooLargeError when a file is over the source's cap (checked here, by the
    flow, so that the workers need none of the run's environment)."""
    from eujp.extract import read_snapshot

    payloads = read_snapshot(source, settings.snapshot_dir)
    check_payload_sizes(source, payloads)
    return [Partition(source.name, i, str(Path(p.path).resolve()), p.kind) for i, p in enumerate(payloads)]


def landed_partitions(source: Source, keys: list[str], payloads: list[RawPayload]
                      ) -> list[LandedPartition]:
    """Partitions of payloads the flow itself fetched and landed (live mode: the request plan decides them)."""
    return [LandedPartition(source.name, i, key, p.sha256, p.name, p.size, dict(p.headers), kind=p.kind,
                            url=p.url, fetched_at=p.fetched_at)
            for i, (key, p) in enumerate(zip(keys, payloads, strict=True))]


def landed_on(store: ObjectStore, source: Source, day) -> list[LandedPartition]:
    """The partitions landed for `source` on `day` (raw mode), read from their .meta.json only (the payloads
    stay in the store for the workers), in the order eujp.landing.read_landed returns them, each with its
    landing's number: partitions of two landings that may share keys are prepared together, the later
    landing's rows superseding the earlier's (eujp.stream.LandingsStream), as a single-process replay does."""
    return [LandedPartition(source.name, i, obj.key, obj.sha256, obj.meta["name"], obj.meta["size"],
                            obj.meta.get("headers", {}), kind=obj.meta.get("kind", "data"), landing=obj.landing,
                            url=obj.meta["url"], fetched_at=obj.meta["fetched_at"])
            for i, obj in enumerate(landed_objects(store, source.name, day))]


# --- the work of one partition (runs on a worker) ------------------------------------------------------------

def land_partition(partition: Partition, settings: Settings) -> LandedPartition:
    """Land one snapshot file into the raw zone (a no-op when the same bytes are there already)."""
    source = get_source(partition.source)
    store = open_store(settings.publish_uri)
    payload = RawPayload.from_file(source.name, Path(partition.path), kind=partition.kind)
    key = land(store, payload, settings.run_date, source.extension_of(partition.kind))
    return LandedPartition(source.name, partition.index, key, payload.sha256, payload.name, payload.size,
                           worker=where(), kind=partition.kind, url=payload.url, fetched_at=payload.fetched_at)


@dataclass
class PartitionResult:
    """What became of one group of partitions (usually one): where its rows are, and its accounting."""

    source: str
    indices: tuple[int, ...]
    valid_key: str | None = None  # Parquet of the valid rows (table columns)
    rejected_key: str | None = None  # Parquet of the rejected rows (eujp.rejections' columns)
    rows_in: int = 0
    valid_wire_rows: int = 0
    rows_valid: int = 0
    rows_rejected: int = 0
    source_version: str | None = None
    newest: str | None = None  # the newest period of the valid rows (eujp.incremental.newest_period)
    ranges: list | None = None  # payload_key_ranges of the wire rows, over the source's transform_key
    validation: object = None  # eujp.validate.ValidationReport without its GX objects
    conflicts: pl.DataFrame | None = None  # natural keys carried twice with different content (quarantined)
    payload_errors: list[str] = field(default_factory=list)  # the payloads quarantined whole, with why
    payloads: int = 0  # how many payloads the partition read
    error: str | None = None
    failed_step: str | None = None
    # the message of the EujpError that failed it: a replay of a day of several landings leaves its landing out
    # (`landings_left_out`), as one process does (eujp.stream.LandingsStream); any other error fails the source
    eujp_error: str | None = None
    worker: str = ""
    seconds: float = 0.0

    def describe(self) -> str:
        """'partition 1 prepared on host-1 in 0.3 s: 90 rows in, 90 valid, 0 rejected; 45 table rows to write', in
        the words of the single-process log (eujp.rows: rows in = valid + rejected, all wire rows)."""
        rows = describe_rows(self.rows_in, self.valid_wire_rows, self.rows_rejected)
        text = (f"partition {','.join(map(str, self.indices))} prepared on {self.worker} in {self.seconds:.1f} s: "
                f"{rows}; {self.rows_valid} table rows to write")
        return f"{text}; {self.error}" if self.error else text


def staging_key(settings: Settings, source: str, indices: tuple[int, ...], kind: str) -> str:
    first = indices[0]
    tag = f"part-{first:05d}" + (f"-g{len(indices)}" if len(indices) > 1 else "")
    return f"{STAGING_PREFIX}/{settings.run_id}/{source}/{tag}.{kind}.parquet"


def read_landed_partition(store: ObjectStore, part: LandedPartition, spool: PayloadSpool | None = None
                          ) -> RawPayload:
    """The landed payload of `part`, checked against its sha256: in memory, or with `spool` a file of it
    (downloaded in parts: a partition of up to the payload cap is never held whole)."""
    import hashlib

    meta_key = part.key.rsplit(".", 1)[0] + ".meta.json"
    meta = read_record(store, part.source, meta_key, fields={}) if store.exists(meta_key) else {}
    url, fetched_at = meta.get("url", part.key), meta.get("fetched_at", "")
    if spool is not None:
        return spool.fetch(store, part.key, part.sha256, part.source, part.name, url, dict(part.headers),
                           fetched_at=fetched_at, kind=part.kind, landing=part.landing)
    try:
        data = store.get_bytes(part.key)
    except Exception as exc:  # missing or unreadable: named, whatever the store's error
        raise unreadable(part.source, store, part.key, exc) from exc
    if hashlib.sha256(data).hexdigest() != part.sha256:
        raise EujpError(f"{part.source}: landed payload {part.key} does not match its sha256")
    return RawPayload(part.source, part.name, data, url, dict(part.headers), fetched_at, kind=part.kind,
                      landing=part.landing)


def payload_key_ranges(payloads: list[RawPayload], key: tuple[str, ...]) -> KeyRanges:
    """(min, max, holds nulls) of each key column over the wire rows of file-backed CSV payloads, by a polars
    scan of the key columns (bounded memory, the rows never held); None (may share any key) when a payload
    cannot be scanned or lacks a key column."""
    ranges: KeyRanges = None
    for payload in payloads:
        try:
            scanned = pl.scan_csv(payload.path, infer_schema=False, null_values=CSV_NULLS)
            if any(c not in scanned.collect_schema().names() for c in key):
                return None
            row = scanned.select(_range_exprs(key)).collect(engine="streaming").row(0)
        except (pl.exceptions.PolarsError, OSError):
            return None
        mine = [tuple(row[i:i + 3]) for i in range(0, len(row), 3)]
        ranges = mine if ranges is None else [_union(a, b) for a, b in zip(ranges, mine, strict=True)]
    return ranges


def _union(a: tuple, b: tuple) -> tuple:
    lows = [v for v in (a[0], b[0]) if v is not None]
    highs = [v for v in (a[1], b[1]) if v is not None]
    return (min(lows) if lows else None, max(highs) if highs else None, a[2] or b[2])


def read_feeds(source: Source, landed: list[LandedPartition], store: ObjectStore
               ) -> tuple[list[LandedPartition], pl.DataFrame | None, pl.DataFrame | None]:
    """What the committer reads itself: the data partitions (for the workers), and the rows of the source's
    label feed (Comext's codelist) and of its coverage statements among `landed` (None when there are none),
    parsed as a single-process run does (eujp.pipeline.parse_labels, parse_coverage)."""
    feeds = [read_landed_partition(store, p) for p in landed if p.kind != "data"]
    labels = [p for p in feeds if p.kind != coverage_kind(source)]
    return ([p for p in landed if p.kind == "data"], parse_labels(source, labels) if labels else None,
            parse_coverage(source, feeds))


def prepare_partition(parts: list[LandedPartition], settings: Settings, countries: pl.DataFrame,
                      limit: int | None = None) -> PartitionResult:
    """Parse, transform and validate one group of landed partitions (usually one) and write its valid and
    rejected rows as Parquet under the run's staging prefix. Errors are recorded on the result (the flow
    fails the source with them), never raised: a partition is a piece of one source.

    In bounded memory, as a single-process run (eujp.pipeline.prepare_source): the payloads are fetched to
    files of a spool in the worker's temporary folder (TMPDIR), and streamed (`source_stream`: chunks of at most `limit`
    wire rows, default the worker's EUJP_BATCH_ROWS; a payload over it is hash-spilled there), each chunk
    validated and its valid and rejected rows appended to a Parquet file each as row groups, so a worker holds a
    chunk, not its partition.
    The key ranges of the wire rows come from a scan of the payloads' key columns."""
    import pyarrow.parquet as pq

    from eujp.validate import validate_frame

    started = time.perf_counter()
    source = get_source(parts[0].source)
    indices = tuple(p.index for p in parts)
    result = PartitionResult(source=source.name, indices=indices, worker=where())
    store = open_store(settings.publish_uri)
    step = "parse"

    def tracked(name: str):
        nonlocal step
        step = name
        return contextlib.nullcontext()

    # the worker's temporary folder (TMPDIR): the run's spill folder is the committer's, on another host maybe;
    # a local cluster's workers get TMPDIR set to it (flows/fanout.task_runner)
    spool = PayloadSpool(None, f"eujp-{source.name}-partition-")
    # the valid and the rejected rows, appended chunk by chunk as row groups of one Parquet file each
    writers: dict[str, pq.ParquetWriter] = {}
    paths = {"valid": spool.folder / "valid.parquet", "rejected": spool.folder / "rejected.parquet"}

    def append(kind: str, frame: pl.DataFrame) -> None:
        table = frame.to_arrow()
        if kind not in writers:
            writers[kind] = pq.ParquetWriter(paths[kind], table.schema, compression="zstd")
        writers[kind].write_table(table)

    try:
        payloads = [read_landed_partition(store, p, spool) for p in parts]
        stream = source_stream(source, payloads, countries, step=tracked, spill_dir=spool.folder,
                               limit=batch_rows() if limit is None else limit, part_of_more=True)
        result.payloads = len(payloads)
        reports, conflicts = [], []
        order = load_order(source)
        for chunk in stream.chunks():
            step = "validate"
            reports.append(replace(validate_frame(source.table.name, chunk.valid), gx_result=None, gx_suite=None))
            step = "write"
            append("valid", in_period_order(chunk.valid, order))  # as prepare_source stores a chunk
            if chunk.rejected.height:
                append("rejected", chunk.rejected)
            result.rows_in += chunk.rows_in
            result.valid_wire_rows += chunk.rows_in - chunk.rejected.height
            result.rows_valid += chunk.valid.height
            result.rows_rejected += chunk.rejected.height
            result.newest = later_period(result.newest, newest_period(source.period_column, chunk.valid))
            conflicts.append(chunk.conflicts)
            del chunk
            step = "parse"
        # a payload that failed to parse: quarantined whole, line by line, as one stream of all the source's
        # payloads does (collect_batch fails the source when every payload failed, or its only one)
        step = "parse"
        for quarantined in stream.quarantined:
            for frame in quarantined.frames(stream.piece_lines):
                append("rejected", frame)
                result.rows_in += frame.height
                result.rows_rejected += frame.height
        if stream.landing_errors:  # partitions of several landings, one failing together and not alone
            raise EujpError(" | ".join(stream.landing_errors))
        result.payload_errors = list(stream.payload_errors)
        step = "write"
        for kind, empty in (("valid", pl.DataFrame(schema=source.table.business_columns)),
                            ("rejected", empty_rejected())):
            if kind in writers:
                writers.pop(kind).close()
            else:  # no row of that kind
                empty.write_parquet(paths[kind], compression="zstd")
        result.source_version = stream.version
        result.conflicts = concat_conflicts(conflicts)
        result.validation = merge_reports(reports)
        if source.transform_key:
            # a payload quarantined whole gave the transform no row, so it shares no key with another partition;
            # an unreadable one (a garbage header) scanned as "may share any" and joined every partition to it
            failed = {id(q.payload) for q in stream.quarantined}
            parsed = [p for p in payloads if id(p) not in failed]
            result.ranges = payload_key_ranges(parsed, source.transform_key) if parsed else NO_KEYS
        result.valid_key = staging_key(settings, source.name, indices, "valid")
        store.put_file(result.valid_key, paths["valid"], "application/vnd.apache.parquet")
        result.rejected_key = staging_key(settings, source.name, indices, "rejected")
        store.put_file(result.rejected_key, paths["rejected"], "application/vnd.apache.parquet")
    except Exception as exc:  # noqa: BLE001 - the flow fails the source with it (or leaves its landing out)
        detail = str(exc) if isinstance(exc, EujpError) else f"{type(exc).__name__}: {exc}"
        result.error, result.failed_step = f"partition {', '.join(p.name for p in parts)}: {detail}", step
        result.eujp_error = detail if isinstance(exc, EujpError) else None
    finally:
        for writer in writers.values():
            writer.close()
        spool.discard()
    result.seconds = time.perf_counter() - started
    return result


# --- the committer's side --------------------------------------------------------------------------------------

KeyRanges = list[tuple[Any, Any, bool]] | None


def _range_exprs(key: tuple[str, ...]) -> list[pl.Expr]:
    """(min, max, holds nulls) of each key column: a cheap summary (no hashing) of which keys can occur."""
    return [e for i, c in enumerate(key) for e in (pl.col(c).min().alias(f"lo{i}"), pl.col(c).max().alias(f"hi{i}"),
                                                   (pl.col(c).null_count() > 0).alias(f"nulls{i}"))]


NO_KEYS: KeyRanges = []  # the ranges of a partition with no row (its payloads all quarantined whole)


def may_share_keys(a: KeyRanges, b: KeyRanges) -> bool:
    """False when no key can occur in both: some key column has disjoint value ranges (and not nulls on
    both sides), or either has no row at all (NO_KEYS). True does not mean a key is shared, only that it may
    be."""
    if a == NO_KEYS or b == NO_KEYS:
        return False
    if a is None or b is None:
        return True
    for (low_a, high_a, nulls_a), (low_b, high_b, nulls_b) in zip(a, b, strict=True):
        values = low_a is not None and low_b is not None and low_a <= high_b and low_b <= high_a
        if not values and not (nulls_a and nulls_b):
            return False
    return True


def key_groups(ranges: list[KeyRanges]) -> list[list[int]]:
    """Partition indices grouped so that partitions of different groups cannot share a key (union of every
    pair that may share one), each group sorted, groups in order of their first partition."""
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


def overlapping_groups(results: list[PartitionResult]) -> list[list[int]]:
    """Groups (of partition indices, >1 each) whose wire keys may overlap: they must be prepared together."""
    ranges = [r.ranges for r in results]
    return [[i for pos in group for i in results[pos].indices]
            for group in key_groups(ranges) if len(group) > 1]


def merge_reports(reports: list):
    """One validation report for a source from its partitions' reports (eujp.validate.merge_reports: an
    expectation holds when it held on every partition; the row count is judged on the sum), without the GX
    objects (a partition's report travels from a worker without them). Valid as long as no two partitions
    share a natural key (overlapping ones are prepared together)."""
    from eujp.validate import merge_reports as merge

    reports = [r for r in reports if r is not None]
    if not reports:
        return None
    return replace(merge(reports), gx_result=None, gx_suite=None)


def _valid_chunk(store: ObjectStore, result: PartitionResult, path: Path, version: str | None,
                 restamp: bool) -> None:
    """A partition's valid rows as the local Parquet file `path` (a chunk of the batch), downloaded in parts;
    `restamp`: its source_version set to the source's (the newest of its partitions'), as one batch of all the
    payloads would have it, by a streaming rewrite (never the partition's rows in memory at once)."""
    if not restamp:
        store.get_file(result.valid_key, path)
        return
    download = path.with_suffix(".download")
    store.get_file(result.valid_key, download)
    try:
        frame = pl.scan_parquet(download)
        if "source_version" in frame.collect_schema().names():
            frame = frame.with_columns(pl.lit(version, dtype=pl.String).alias("source_version"))
        frame.sink_parquet(path, compression="lz4", statistics=False)
    finally:
        download.unlink(missing_ok=True)


def collect_batch(batch: SourceBatch, results: list[PartitionResult], settings: Settings) -> SourceBatch:
    """The source's batch from its partitions' results: the accounting summed, one validation report; the
    batch fails (as eujp.pipeline.prepare_source would) when a partition failed or a critical expectation
    failed. Its rows stay on disk: each partition's Parquet piece of valid rows is downloaded as one local
    chunk (`batch.chunks`, under `batch.spill_dir`, removed by `eujp.pipeline.release_chunks`), which the load
    upserts at once, DuckDB reading them from disk, as it does a spilled stream's, and its piece of rejected
    rows as a rejected chunk (`batch.rejected_chunks`), which the load records from the file: the committer
    holds no partition's rows in memory."""
    failed = [r for r in results if r.error]
    if failed:
        return batch.fail(failed[0].failed_step or "prepare", EujpError(" | ".join(r.error for r in failed)))
    errors = [e for r in results for e in r.payload_errors]
    every = every_payload_failed(batch.source, results)
    if every:  # the source's only payload, or every one, failed: as one stream
        return batch.fail("parse", EujpError(every))
    batch.payload_errors = errors
    store = open_store(settings.publish_uri)
    results = sorted(results, key=lambda r: r.indices)
    batch.source_version = latest_version(r.source_version for r in results)
    restamp = len({r.source_version for r in results}) > 1
    batch.valid = None
    batch.spill_dir = spill_folder(f"eujp-{batch.source}-valid-", settings.spill_dir)
    try:
        for r in results:
            path = batch.spill_dir / f"{len(batch.chunks):06d}.parquet"
            _valid_chunk(store, r, path, batch.source_version, restamp)
            batch.chunks.append(path)
            batch.newest = later_period(batch.newest, r.newest)
        for r in results:  # the rejected rows too stay on disk, recorded by the load from the files
            if r.rows_rejected:
                path = batch.spill_dir / f"rejected-{len(batch.rejected_chunks):06d}.parquet"
                store.get_file(r.rejected_key, path)
                batch.rejected_chunks.append(path)
    except BaseException:
        release_chunks(batch)
        raise
    batch.rejected = empty_rejected()  # the rows are in batch.rejected_chunks
    batch.valid_rows = sum(r.rows_valid for r in results)
    batch.rows_in = sum(r.rows_in for r in results)
    batch.valid_wire_rows = sum(r.valid_wire_rows for r in results)
    batch.rows_rejected = sum(r.rows_rejected for r in results)
    batch.conflicts = concat_conflicts([r.conflicts for r in results])
    batch.chunk_wire_rows = [r.rows_in for r in results]
    batch.validation = merge_reports([r.validation for r in results])
    try:
        if batch.validation is not None:
            batch.validation.raise_for_critical()
    except Exception as exc:  # noqa: BLE001 - recorded as prepare_source records it
        release_chunks(batch)
        return batch.fail("validate", exc)
    batch.status = "prepared"
    batch.ended_at = utcnow()
    return batch


def every_payload_failed(source: str, results: list[PartitionResult]) -> str | None:
    """Why the payloads of `results` fail as one stream of them fails (eujp.stream.Stream.chunks) when each
    failed to parse: the only one's parse error, or every one's; None when one of them parsed."""
    errors = [e for r in results for e in r.payload_errors]
    payloads = sum(r.payloads for r in results)
    if not errors or len(errors) < payloads:
        return None
    return errors[0] if payloads == 1 else f"every payload of {source} failed to parse: " + " | ".join(errors)


def landings_left_out(source: Source, landed: list[LandedPartition], results: list[PartitionResult]
                      ) -> tuple[list[int], list[str]]:
    """The landings a replay of a day of several landings (raw mode) leaves out, as one process does
    (eujp.stream.LandingsStream, `transform_landings`), from the results of its data partitions prepared one
    by one: a landing one of whose partitions failed with an EujpError, or whose every payload failed to
    parse, failed its run, which loaded nothing of it. Their numbers (RawPayload.landing) and the run's error
    for each (`eujp.stream.landing_not_applied`); every landing failing: EujpError (`no_landing_applied`)."""
    numbers = sorted({p.landing for p in landed})
    if len(numbers) < 2:
        return [], []
    landing = {p.index: p.landing for p in landed}
    left_out, errors = [], []
    for position, number in enumerate(numbers, start=1):
        mine = [r for r in results if landing[r.indices[0]] == number]
        why = next((r.eujp_error for r in mine if r.eujp_error), None) or every_payload_failed(source.name, mine)
        if why:
            left_out.append(number)
            errors.append(landing_not_applied(source, position, len(numbers), EujpError(why)))
    if len(left_out) == len(numbers):
        raise no_landing_applied(source, errors)
    return left_out, errors


def discard_staging(settings: Settings, source: str | None = None) -> int:
    """Delete the run's staging prefix (its Parquet pieces), or only `source`'s; how many objects were
    deleted."""
    store = open_store(settings.publish_uri)
    keys = store.list_keys(f"{STAGING_PREFIX}/{settings.run_id}" + (f"/{source}" if source else ""))
    if keys:
        store.delete(keys)
    return len(keys)
