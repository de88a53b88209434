"""Publish a promoted warehouse to object storage.

Layout under the publish URI:
    runs/{run_id}/warehouse.duckdb       the warehouse (attach it read-only): every table, or all but the large
                                          fact tables, which are in the lake only (EUJP_SINGLE_FILE, eujp.lake)
    runs/{run_id}/parquet/{table}.parquet one file per table, but:
    runs/{run_id}/parquet/{table}/{column}={value}.parquet
                                          a large mart rebuilt by partition and kept out of the single file
                                          (`PartitionedParquet`): one file per value of its partition column
                                          (period_year); a value whose rows did not change since the previous
                                          published run is a copy of that run's file (S3: server-side)
    runs/{run_id}/docs/...                Great Expectations Data Docs (when built; they render offline)
    runs/{run_id}/report.html             the run's HTML report (when written)
    runs/{run_id}/manifest.json           run id, tables, row counts, checksums, source versions, the partners
                                          the Comext facts hold (eujp.partners: months, last load, requested)
    latest/warehouse.duckdb               alias of the newest run's warehouse (one object: never mixed; a copy
                                          the store makes of runs/{run_id}/warehouse.duckdb: `ObjectStore.copy`)
    latest/manifest.json                  its manifest, with the paths and checksums of latest/ (`latest_manifest`:
                                          a manifest's paths are relative to its folder, its "location")
    latest/report.html, latest/docs/...   the newest run's report and Data Docs (`latest_files`)
    lake.ducklake                         the DuckLake's embedded catalog (eujp.lake), replaced just before
                                          latest/ moves; its data files are under lake/ (written by DuckDB)
    latest.json                           THE pointer: {"run_id", "prefix", "lake": {"snapshot_id", ...}, ...};
                                          written last
    latest-check.json                     the last run that found nothing new (so published nothing): when it
                                          checked, what it found, which run is still current

Every object is verified (size + sha256) after upload or copy; `latest` moves only after all of them verified.
A publish has a deadline (`Deadline`, EUJP_PUBLISH_TIMEOUT): past it, the publish stops where it is with
PublishDeadlineError and `latest` stays where it was.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import duckdb

from eujp.config import RUN_ID_PATTERN, duckdb_config
from eujp.digests import NULL_KEY, partition_digests, unit_filter
from eujp.errors import PublishDeadlineError, PublishError
from eujp.sql import quote_ident, sql_string
from eujp.storage import ObjectStore, StoredObject, sha256_file
from eujp.tables import ALL_TABLES

LATEST_POINTER = "latest.json"
LATEST_CHECK = "latest-check.json"
LAKE_CATALOG_KEY = "lake.ducklake"  # eujp.lake.CATALOG_FILE
PUBLISH_TIMEOUT_ENV = "EUJP_PUBLISH_TIMEOUT"
T = TypeVar("T")


@dataclass(frozen=True)
class Deadline:
    """When a publish must be over: `at` is a time.time() instant, `seconds` the budget it was given and
    `setting` the variable that gave it (named in the error). Made once per run (`Deadline.after`) and passed
    down, so that retrying the publish task spends the same deadline instead of starting a new one."""

    at: float
    seconds: float
    setting: str = PUBLISH_TIMEOUT_ENV

    @classmethod
    def after(cls, seconds: float, setting: str = PUBLISH_TIMEOUT_ENV) -> Deadline:
        return cls(time.time() + seconds, seconds, setting)

    def remaining(self) -> float:
        return self.at - time.time()

    def passed(self) -> bool:
        return self.remaining() <= 0

    def describe(self) -> str:
        return f"the publish deadline of {self.seconds:g} s ({self.setting})"


class _Cutoff(Exception):
    """A store call still running when the deadline passed (`within`)."""


PublishCutoff = _Cutoff  # what a caller of `within` outside this module catches


def within(deadline: Deadline | None, call: Callable[[], T]) -> T:
    """`call()`, but given up when `deadline` passes first (_Cutoff; _Cutoff at once when it has passed).
    The call runs in a daemon thread that is abandoned at the deadline: a store call blocked on a frozen
    endpoint (a read timeout times the attempts) cannot hold the run. Without a deadline: `call()`."""
    if deadline is None:
        return call()
    left = deadline.remaining()
    if left <= 0:
        raise _Cutoff()
    outcome: list = []

    def run() -> None:
        try:
            outcome.append((True, call()))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            outcome.append((False, exc))

    worker = threading.Thread(target=run, name="eujp-publish-call", daemon=True)
    worker.start()
    worker.join(left)
    if not outcome:
        raise _Cutoff()
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


class ManifestMismatchError(PublishError):
    """The manifest `latest.json` points to does not match the sha256 the pointer records."""


@dataclass
class PublishResult:
    run_id: str
    store_uri: str
    prefix: str
    manifest: dict
    objects: list[StoredObject]
    warnings: list[str] = field(default_factory=list)  # e.g. stale latest/ files that could not be removed

    @property
    def location(self) -> str:
        return f"{self.store_uri.rstrip('/')}/{self.prefix}"


def export_parquet(warehouse_path: Path, out_dir: Path, tables=None) -> dict[str, Path]:
    """One Parquet file per table (zstd; `tables`, default every table), written by DuckDB from the promoted
    warehouse."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    with duckdb.connect(str(warehouse_path), read_only=True, config=duckdb_config()) as conn:
        for table in (ALL_TABLES if tables is None else tables):
            path = out_dir / f"{table.name}.parquet"
            conn.execute(  # COPY TO takes no parameter
                f"COPY (SELECT * FROM {quote_ident(table.name)}) TO {sql_string(path.as_posix())} "
                "(FORMAT parquet, COMPRESSION zstd)"
            )
            files[table.name] = path
    return files


# How a partition's Parquet file is written (`export_partitioned`): bump it when that changes, so that no run
# copies a file an older layout wrote.
PARQUET_LAYOUT = "zstd/1"
NULL_PART = "__HIVE_DEFAULT_PARTITION__"  # the file of the rows whose partition column is null (Hive's name)


def part_file(column: str, part: str | None) -> str:
    """The file name of the rows whose `column` is `part` (its value as text; None or eujp.digests.NULL_KEY: null)."""
    name = NULL_PART if part is None or part == NULL_KEY else re.sub(r"[^A-Za-z0-9._+-]", "_", part)
    return f"{column}={name}.parquet"


def part_key(table: str, column: str, part: str | None) -> str:
    """The Parquet file of one partition of a table published by partition, relative to its run's prefix."""
    return f"parquet/{table}/{part_file(column, part)}"


@dataclass(frozen=True)
class PartitionedParquet:
    """A table published as one Parquet file per value of `column` (`part_key`), with the rows and digest of each
    value (eujp.digests.partition_digests: what the lake commit computed of the same warehouse; None: computed here)."""

    column: str
    digests: dict[str, tuple[int, str]] | None = None


@dataclass
class PublishedPart:
    """One partition's Parquet file of a run: exported by the run (`file`), or copied from the object `source` of
    the previous published run, whose rows were the same."""

    key: str  # relative to the run's prefix (part_key)
    rows: int
    digest: str
    sha256: str
    file: Path | None = None
    source: str | None = None

    def entry(self) -> dict:
        return {"key": self.key, "rows": self.rows, "digest": self.digest, "sha256": self.sha256}


def export_partitioned(warehouse_path: Path, out_dir: Path, partitioned: dict[str, PartitionedParquet],
                       previous: tuple[str, dict] | None = None,
                       stored: Callable[[str], StoredObject | None] | None = None) -> dict[str, dict]:
    """The tables of `partitioned`, one Parquet file per value of their partition column: {table: {"column",
    "schema", "parts": {value: PublishedPart}}}.

    `previous`: (prefix, manifest "tables") of the previous published run. A value whose rows and digest equal
    that run's file of the same table, column and schema (the columns and their types, and PARQUET_LAYOUT), and
    whose object (`stored(key)`: the store's stat) is still there with the sha256 the manifest records, is not
    exported: the publish copies that object. Every other value is exported by DuckDB. So a day that adds a
    month exports the year it changed, not every year (50M Comext rows: 2.9M rows of mart_product_trade)."""
    out: dict[str, dict] = {}
    prefix, tables = previous if previous else ("", {})
    with duckdb.connect(str(warehouse_path), read_only=True, config=duckdb_config()) as conn:
        for name, spec in partitioned.items():
            t = quote_ident(name)
            columns = conn.execute("SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = 'main' "
                                   "AND table_name = ? ORDER BY column_index", [name]).fetchall()
            schema = hashlib.sha256(json.dumps([PARQUET_LAYOUT, columns]).encode()).hexdigest()
            digests = spec.digests if spec.digests is not None else partition_digests(conn, t, spec.column)
            before = tables.get(name) or {}
            same_layout = before.get("partitioned_by") == spec.column and before.get("schema") == schema
            parts: dict[str, PublishedPart] = {}
            for part, (rows, digest) in sorted(digests.items()):
                key = part_key(name, spec.column, part)
                old = (before.get("parts") or {}).get(part) if same_layout else None
                if old and old.get("rows") == rows and old.get("digest") == digest and old.get("sha256"):
                    source = f"{prefix}/{old['key']}"
                    try:
                        there = stored(source) if stored else None
                    except Exception:  # noqa: BLE001 - only a saving: the part is exported instead
                        there = None
                    if there is not None and there.sha256 == old["sha256"]:
                        parts[part] = PublishedPart(key, rows, digest, old["sha256"], source=source)
                        continue
                path = out_dir / key.removeprefix("parquet/")
                path.parent.mkdir(parents=True, exist_ok=True)
                where = unit_filter(spec.column, [part], dict(columns).get(spec.column))
                conn.execute(f"COPY (SELECT * FROM {t} WHERE {where}) TO {sql_string(path.as_posix())} "
                             "(FORMAT parquet, COMPRESSION zstd)")
                parts[part] = PublishedPart(key, rows, digest, sha256_file(path), file=path)
            out[name] = {"column": spec.column, "schema": schema, "parts": parts}
    return out


def build_manifest(
    *,
    run_id: str,
    status: str,
    warehouse_path: Path,
    table_rows: dict[str, int],
    parquet_files: dict[str, Path],
    sources: dict[str, dict],
    validation: dict,
    audit: dict,
    extra_files: dict[str, Path] | None = None,
    fingerprint: dict[str, str] | None = None,
    lake: dict | None = None,
    suite_results: dict | None = None,
    single_file: dict | None = None,
    parquet_parts: dict[str, dict] | None = None,
    carried_runs: dict | None = None,
    partners: dict | None = None,
) -> dict:
    carried = {"carried_runs": carried_runs} if carried_runs else {}  # eujp.run.carried_runs: loads of runs
    # promoted but never published, which this run publishes for them
    return carried | {
        "run_id": run_id,
        "status": status,
        # the folder whose files the paths below are relative to (latest/ gets its own: `latest_manifest`)
        "location": f"runs/{run_id}/",
        "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "warehouse": {
            "key": "warehouse.duckdb",
            "size": warehouse_path.stat().st_size,
            "sha256": sha256_file(warehouse_path),
        },
        "tables": {
            name: {
                "rows": table_rows.get(name),
                "parquet": f"parquet/{name}.parquet",
                "sha256": sha256_file(path),
            }
            for name, path in parquet_files.items()
        } | {  # tables published by partition (export_partitioned): a folder, a file per value of their column
            name: {
                "rows": table_rows.get(name),
                "parquet": f"parquet/{name}/",
                "sha256": None,
                "partitioned_by": plan["column"],
                "schema": plan["schema"],
                "parts": {part: p.entry() for part, p in plan["parts"].items()},
            }
            for name, plan in (parquet_parts or {}).items()
        } | {  # tables not in the single file (EUJP_SINGLE_FILE): their rows, in the lake's snapshot only
            name: {"rows": rows, "parquet": None, "sha256": None, "lake_snapshot": lake.get("snapshot_id")}
            for name, rows in table_rows.items() if name not in parquet_files and name not in (parquet_parts or {})
            and lake
        },
        # eujp.lake.SingleFile: the setting and the tables the single warehouse.duckdb holds (None: every table)
        "single_file": single_file,
        "files": {key: sha256_file(path) for key, path in (extra_files or {}).items()},
        "sources": sources,
        "validation": validation,
        "audit": audit,
        "fingerprint": fingerprint,  # eujp.fingerprint: the code and inputs the warehouse was built from
        # eujp.partners.manifest_entry: the partners the Comext facts hold, and whether each is still requested
        "partners": partners,
        "lake": lake,  # eujp.lake.LakeCommit.manifest_entry(): the lake snapshot of this run (None: no lake)
        # eujp.catalog.suite_results: the suites' SQL evaluations, reused by the next run's catalog
        "suite_results": suite_results or {},
    }


def _content_type(path: str) -> str | None:
    if path.endswith(".duckdb"):
        return "application/octet-stream"
    if path.endswith(".parquet"):
        return "application/vnd.apache.parquet"
    return mimetypes.guess_type(path)[0]


def publish_run(
    store: ObjectStore,
    *,
    run_id: str,
    warehouse_path: Path,
    manifest_without_checksums: dict,
    work_dir: Path,
    extra_files: dict[str, Path] | None = None,
    latest_files: tuple[str, ...] = (),
    keep_runs: int = 7,
    on_upload: Callable[[str], None] | None = None,
    deadline: Deadline | None = None,
    lake_catalog: Path | None = None,
    tables=None,
    parquet_from: Path | None = None,
    partitioned: dict[str, PartitionedParquet] | None = None,
    clear_latest: tuple[str, ...] = (),
) -> PublishResult:
    """Upload a run's objects, verify each, then move `latest` (warehouse alias, manifest, pointer last).

    `extra_files` maps keys relative to the run prefix (e.g. "docs/index.html", "report.html") to files;
    a directory (e.g. "docs" -> the Data Docs site) stands for every file under it, keys keeping the
    relative paths. `on_upload(key)` is called after each object is verified (progress).
    `latest_files` names keys of `extra_files` (e.g. "report.html"), or folders of them (e.g. "docs": every
    "docs/..." key), also copied to latest/ when latest moves (a folder's index.html files last); once the
    pointer moved, files a previous run left under a latest/ folder that this run did not write are removed;
    so is every file under the latest/ folders `clear_latest` names that this run has none of (e.g. "docs" for
    a run that validated nothing: latest/docs/ held an older run's pages under the new pointer).
    The latest/ aliases (those files, latest/warehouse.duckdb) are `store.copy`s of the run's verified objects:
    on S3 server-side copies, nothing uploaded twice, verified like an upload; latest/manifest.json is its own
    (`latest_manifest`), and so is a report whose links are made to reach the run's Parquet files.
    On any failure the previous `latest` is untouched and PublishError names the object.

    `deadline`: every upload and verify (S3 retries included) must end by then; once it passes, the publish stops
    with PublishDeadlineError (naming the deadline, its setting and the object it stopped at) and the store
    refuses any further request (`stop_requests_after`), so an upload cut off cannot land `latest.json` later.
    Removing stale latest/ files and old runs after the pointer moved is bounded by it too; what it cuts off
    there is a warning (the run is published).

    `lake_catalog`: the DuckLake's embedded catalog file (eujp.lake), committed with this run's snapshot; it is
    uploaded as `lake.ducklake` after the run's objects verified and before latest/ moves (readers of the lake
    see the run's snapshot from then on; its data files were written by the commit). The manifest's "lake"
    entry (`manifest_without_checksums["lake"]`) is copied into latest.json. `tables`: the tables exported as
    Parquet (default: every table), from `parquet_from` (default: the uploaded copy of `warehouse_path`), which
    holds at least these; the tables of `warehouse_path` are listed in the manifest's "single_file".
    `partitioned`: tables among `tables` published by partition instead (`export_partitioned`: a file per value of
    their partition column; the values whose rows did not change are copies of the previous published run's
    files, made by the store)."""
    if not RUN_ID_PATTERN.match(run_id):  # it names the run's prefix: runs/{run_id}/
        raise ValueError(f"run id {run_id!r} is not allowed (see eujp.config.RUN_ID_PATTERN)")
    prefix = f"runs/{run_id}"
    extra_files = expand_directories(extra_files or {})
    latest_keys = _latest_keys(latest_files, extra_files)
    if keep_runs < 1:
        raise ValueError("keep_runs must be at least 1")
    frozen = work_dir / "warehouse.duckdb"
    manifest_path = work_dir / "manifest.json"
    partitioned = partitioned or {}
    notes: list[str] = []
    previous = _previous_tables(store, prefix, notes) if partitioned else None
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(warehouse_path, frozen)  # the file we checksum is the file we upload
        listed = ALL_TABLES if tables is None else tables
        parquet = export_parquet(parquet_from or frozen, work_dir / "parquet",
                                 [t for t in listed if t.name not in partitioned])
        parts = export_partitioned(parquet_from or frozen, work_dir / "parquet", partitioned, previous,
                                   lambda key: within(deadline, lambda: store.stat(key))) if partitioned else {}
        manifest = build_manifest(
            warehouse_path=frozen, parquet_files=parquet, extra_files=extra_files, parquet_parts=parts,
            **manifest_without_checksums,
        )
        manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
    except (OSError, duckdb.Error) as exc:  # e.g. a full disk under the work folder
        raise PublishError(f"publishing run {run_id}: cannot prepare its files in {work_dir}: "
                           f"{type(exc).__name__}: {exc}; nothing was uploaded, latest was not moved") from exc

    uploads: list[tuple[str, Path]] = [(f"{prefix}/parquet/{n}.parquet", p) for n, p in parquet.items()]
    published_parts = [part for plan in parts.values() for part in plan["parts"].values()]
    uploads += [(f"{prefix}/{part.key}", part.file) for part in published_parts if part.file is not None]
    copies = [(part.source, f"{prefix}/{part.key}", part.sha256) for part in published_parts if part.source]
    uploads += [(f"{prefix}/{k}", p) for k, p in (extra_files or {}).items()]
    uploads += [(f"{prefix}/warehouse.duckdb", frozen), (f"{prefix}/manifest.json", manifest_path)]
    objects: list[StoredObject] = []
    key = ""
    replaced: list[str] = []  # latest/ aliases already replaced
    guard = getattr(store, "stop_requests_after", None)
    if guard is not None:  # the store refuses requests past the deadline (also those of a call cut off)
        guard(deadline.at if deadline else None, lambda: PublishDeadlineError(f"{deadline.describe()} has passed"))

    def put(key: str, path: Path, content_type: str | None) -> StoredObject:
        return within(deadline, lambda: store.put_file(key, path, content_type))

    try:
        if deadline is not None and deadline.passed():
            raise _Cutoff()  # preparing the files took the whole time: nothing was uploaded
        for source, key, sha256 in copies:  # the previous run's files of unchanged partitions
            copied = within(deadline, lambda source=source, key=key: store.copy(source, key))
            if copied.sha256 != sha256:
                raise PublishError(f"the copy of {source} is not the file the previous manifest lists (sha256 "
                                   f"{copied.sha256} != {sha256})")
            objects.append(copied)
            if on_upload is not None:
                on_upload(key)
        for key, path in uploads:
            objects.append(put(key, path, _content_type(key)))
            if on_upload is not None:
                on_upload(key)
        # Every object of the run is in place and verified: now the lake's catalog, then latest, pointer last.
        if lake_catalog is not None:
            key = LAKE_CATALOG_KEY
            put(key, lake_catalog, "application/octet-stream")
            replaced.append(key)
        # latest/ aliases are copies the store makes of the run's verified objects (S3: server-side, no byte
        # sent), but for a page linking the run's Parquet files (its links made to reach them) and the manifest,
        # whose paths and checksums are those of latest/ (`latest_manifest`)
        relinked = {name: path for name in latest_keys if "/" not in name
                    and (path := _relinked_for_latest(extra_files.get(name), prefix, work_dir)) is not None}
        own_manifest = work_dir / "latest-manifest.json"
        own_manifest.write_text(json.dumps(
            latest_manifest(manifest, prefix, latest_keys, {n: sha256_file(p) for n, p in relinked.items()}),
            indent=2, sort_keys=True, default=str))
        own = relinked | {"manifest.json": own_manifest}  # latest/'s files that are no copies: uploaded
        for name in [*latest_keys, "warehouse.duckdb", "manifest.json"]:
            key = f"latest/{name}"
            if name in own:
                put(key, own[name], _content_type(key))
            else:
                within(deadline, lambda name=name, key=key: store.copy(f"{prefix}/{name}", key))
            replaced.append(key)
        key = LATEST_POINTER
        pointer = {
            "run_id": run_id,
            "prefix": prefix,
            "manifest": f"{prefix}/manifest.json",
            "manifest_sha256": sha256_file(manifest_path),
            "published_at": manifest["published_at"],
        }
        if manifest.get("lake"):
            pointer["lake"] = manifest["lake"]
        pointer_bytes = json.dumps(pointer, indent=2).encode()
        within(deadline, lambda: store.put_bytes(LATEST_POINTER, pointer_bytes, "application/json"))
    except Exception as exc:  # boto/network/OS errors, the deadline: say which object failed
        if key == LATEST_POINTER:
            moved = "the latest/ aliases were replaced"
        elif replaced:
            shown = ", ".join(replaced[:3]) + (f" and {len(replaced) - 3} more" if len(replaced) > 3 else "")
            moved = f"{shown} {'was' if len(replaced) == 1 else 'were'} replaced"
        else:
            moved = None
        state = f"{moved} but {LATEST_POINTER} still points at the previous run" if moved else "latest was not moved"
        if deadline is not None and (isinstance(exc, _Cutoff | PublishDeadlineError) or deadline.passed()):
            if key == LATEST_POINTER and isinstance(exc, _Cutoff):  # the pointer's PUT was sent: it may land
                state = (f"the latest/ aliases were replaced and the write of {LATEST_POINTER} was cut off: it "
                         "still points at the previous run unless that write reached the store")
            where = f"at {key}" if key else "before the first upload"
            detail = "" if isinstance(exc, _Cutoff | PublishDeadlineError) else f" ({type(exc).__name__}: {exc})"
            raise PublishDeadlineError(
                f"publishing run {run_id} to {store.uri} stopped {where}: {deadline.describe()} passed{detail}; "
                f"{state}. Raise {deadline.setting} if publishing is just slow") from exc
        if guard is not None:
            guard(None)  # no call was cut off: nothing of this publish is in flight
        if isinstance(exc, PublishError):
            raise
        raise PublishError(f"publishing run {run_id} to {store.uri} failed at {key}: {exc}; {state}") from exc
    if guard is not None:
        guard(None)  # nothing of this publish is in flight: the store serves its caller again
    # Published: cleaning up is best effort within the deadline, and what it leaves is a warning.
    cleared = tuple(n for n in clear_latest if n not in latest_files)
    warnings = notes + _remove_stale_latest(store, latest_files + cleared, latest_keys, extra_files, deadline)
    try:
        within(deadline, lambda: apply_retention(store, keep_runs))
    except _Cutoff:
        warnings.append(f"older runs not removed (retention, EUJP_KEEP_RUNS): {deadline.describe()} passed")
    except Exception as exc:  # noqa: BLE001 - the run is published; the next publish retries the retention
        warnings.append(f"older runs not removed (retention, EUJP_KEEP_RUNS): {type(exc).__name__}: {exc}")
    return PublishResult(run_id, store.uri, prefix, manifest, objects, warnings)


def _previous_tables(store: ObjectStore, prefix: str, notes: list[str]) -> tuple[str, dict] | None:
    """(prefix, manifest "tables") of the published latest run, whose unchanged partition files a run copies
    (`export_partitioned`); None when there is none, it is this run (a retried publish), or it cannot be read (a
    note says why: every partition is then exported)."""
    try:
        latest = read_latest_manifest(store)
    except Exception as exc:  # noqa: BLE001 - only a saving
        notes.append(f"the previous run's Parquet files were not reused ({type(exc).__name__}: {exc}): every "
                     "partition was exported")
        return None
    if latest is None or latest[0].get("prefix") in (None, prefix):
        return None
    return str(latest[0]["prefix"]), latest[1].get("tables") or {}


def _latest_keys(latest_files: tuple[str, ...], extra_files: dict[str, Path]) -> list[str]:
    """The extra files' keys `latest_files` names (a key, or a folder of keys), in upload order: each folder's
    index.html after the files it links to."""
    keys: list[str] = []
    unknown = []
    for name in latest_files:
        name = name.rstrip("/")
        found = [name] if name in extra_files else [k for k in extra_files if k.startswith(f"{name}/")]
        if not found:
            unknown.append(name)
        keys += [k for k in found if k not in keys]
    if unknown:
        raise ValueError(f"latest_files {unknown} are not among the run's extra files {sorted(extra_files)}")
    return sorted(keys, key=lambda k: (k.rsplit("/", 1)[-1] == "index.html", -k.count("/"), k))


_RUN_RELATIVE_LINK = re.compile(rb'href="parquet/')


def latest_manifest(manifest: dict, prefix: str, latest_keys: list[str], rewritten: dict[str, str]) -> dict:
    """The manifest latest/ gets: the run's (`manifest`, of the objects under `prefix`), its paths made relative
    to latest/ and its checksums those of latest/'s files, so that latest/ checks against the manifest beside it
    as a run's folder does. latest/ holds the warehouse, the run's `latest_keys` (copies, or the pages
    `rewritten` names with their sha256: the report, its links made to reach the run's Parquet) and no Parquet:
    a table's file, a partition's and an extra file not in latest/ are named `../{prefix}/...`. "location" says
    which folder the manifest describes, "run_manifest" where the run's own is. The lake's paths ("lake":
    catalog key, data path) are relative to the publish root in both."""
    run = f"../{prefix}/"

    def table(entry: dict) -> dict:
        entry = dict(entry)
        if isinstance(entry.get("parquet"), str):
            entry["parquet"] = run + entry["parquet"]
        if isinstance(entry.get("parts"), dict):
            entry["parts"] = {value: part | {"key": run + part["key"]} for value, part in entry["parts"].items()}
        return entry

    kept = set(latest_keys)
    return manifest | {
        "location": "latest/",
        "run_manifest": f"{run}manifest.json",
        "tables": {name: table(entry) for name, entry in (manifest.get("tables") or {}).items()},
        "files": {(key if key in kept else run + key): rewritten.get(key, digest)
                  for key, digest in (manifest.get("files") or {}).items()},
    }


def _relinked_for_latest(path: Path | None, prefix: str, work_dir: Path) -> Path | None:
    """For a top-level HTML page of the run (the report) that links the run's Parquet files relatively
    (`parquet/...`, right from runs/{run_id}/), the copy latest/ gets: those links pointing at
    `../runs/{run_id}/parquet/...` (from latest/, `parquet/` is no file); None for any other file, which
    latest/ gets as a copy the store makes."""
    if path is None or path.suffix != ".html" or not path.is_file():
        return None
    data = path.read_bytes()
    if not _RUN_RELATIVE_LINK.search(data):
        return None
    out = work_dir / f"latest-{path.name}"
    out.write_bytes(_RUN_RELATIVE_LINK.sub(f'href="../{prefix}/parquet/'.encode(), data))
    return out


def _remove_stale_latest(store: ObjectStore, latest_files: tuple[str, ...], latest_keys: list[str],
                         extra_files: dict[str, Path], deadline: Deadline | None = None) -> list[str]:
    """Remove what earlier runs left under the latest/ folders this run replaced (e.g. latest/docs/: the pages
    of older validations); best effort, after the pointer moved: what cannot be removed is a warning."""
    written = {f"latest/{k}" for k in latest_keys}
    folders = [n.rstrip("/") for n in latest_files if n.rstrip("/") not in extra_files]

    def remove() -> None:
        stale = [k for name in folders for k in store.list_keys(f"latest/{name}")
                 if k.startswith(f"latest/{name}/") and k not in written]
        if stale:
            store.delete(stale)

    try:
        within(deadline, remove)
    except _Cutoff:
        return [f"stale files under latest/{', latest/'.join(folders)} not removed: {deadline.describe()} passed"]
    except Exception as exc:  # noqa: BLE001 - the run is published; stale files are unreachable from its index
        return [f"stale files under latest/{', latest/'.join(folders)} not removed: {type(exc).__name__}: {exc}"]
    return []


def expand_directories(files: dict[str, Path]) -> dict[str, Path]:
    """{"docs": Path("site")} -> {"docs/index.html": ..., "docs/static/...": ...}; files stay as they are."""
    out: dict[str, Path] = {}
    for key, path in files.items():
        path = Path(path)
        if path.is_dir():
            for f in sorted(p for p in path.rglob("*") if p.is_file()):
                out[f"{key.rstrip('/')}/{f.relative_to(path).as_posix()}"] = f
        else:
            out[key] = path
    return out


def read_latest_pointer(store: ObjectStore) -> dict | None:
    if not store.exists(LATEST_POINTER):
        return None
    return json.loads(store.get_bytes(LATEST_POINTER))


def read_latest_manifest(store: ObjectStore) -> tuple[dict, dict] | None:
    """(pointer, manifest) of the run `latest.json` points to; None when nothing was published yet.
    Raises ManifestMismatchError when the manifest does not match the pointer's sha256; store and JSON errors
    propagate."""
    pointer = read_latest_pointer(store)
    if pointer is None:
        return None
    data = store.get_bytes(pointer["manifest"])
    expected = pointer.get("manifest_sha256")
    if expected and hashlib.sha256(data).hexdigest() != expected:
        raise ManifestMismatchError(f"the published manifest {store.uri}/{pointer['manifest']} does not match the "
                                    f"sha256 in {LATEST_POINTER}")
    return pointer, json.loads(data)


def read_latest_check(store: ObjectStore) -> dict | None:
    """LATEST_CHECK (see `record_check`), None when no run has found nothing new yet."""
    if not store.exists(LATEST_CHECK):
        return None
    return json.loads(store.get_bytes(LATEST_CHECK))


def record_check(store: ObjectStore, check: dict) -> str:
    """Write LATEST_CHECK: the last run that found nothing new and published nothing (so readers of `latest`
    can tell "checked today, unchanged" from "not checked"). Returns its key."""
    store.put_bytes(LATEST_CHECK, json.dumps(check, indent=2, sort_keys=True, default=str).encode(),
                    "application/json")
    return LATEST_CHECK


def apply_retention(store: ObjectStore, keep_runs: int) -> list[str]:
    """Delete published runs beyond the newest `keep_runs` complete ones (never the one `latest` points to).

    A run is complete when its manifest is in place (the manifest is uploaded after every other object of the
    run): a publish cut off half-way leaves objects but no manifest, and such a run never counts among the
    `keep_runs`, or the run `latest` pointed to before the last publish could be deleted under a reader who
    resolved the pointer just before it moved. Incomplete runs older than the newest complete run are
    abandoned uploads and are deleted."""
    if keep_runs < 1:
        raise ValueError("keep_runs must be at least 1")
    keys = store.list_keys("runs")
    run_ids = sorted({k.split("/")[1] for k in keys})
    complete = sorted({k.split("/")[1] for k in keys if k.count("/") == 2 and k.endswith("/manifest.json")})
    pointer = read_latest_pointer(store)
    protected = set(complete[-keep_runs:]) | ({pointer["run_id"]} if pointer else set())
    newest = complete[-1] if complete else None
    doomed = [r for r in run_ids if r not in protected and (r in complete or (newest is not None and r < newest))]
    for run_id in doomed:
        store.delete(store.list_keys(f"runs/{run_id}"))
    return doomed
