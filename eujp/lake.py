"""The published warehouse as a DuckLake: every table's rows as Parquet under the publish URI, the metadata in a
catalog, one snapshot per successful run (docs/lakehouse.md).

    {publish uri}/lake/main/{table}/[{partition}=.../]ducklake-*.parquet   the data files (written once, never
                                                                           changed)
    {publish uri}/lake.ducklake            the embedded catalog, published read-only after each commit
    {warehouse files}/lake.ducklake        the writer's copy of the embedded catalog (the only one written), in
                                           the warehouse's files folder (eujp.config.warehouse_files_dir:
                                           var/lake.ducklake for var/warehouse.duckdb)

The catalog records the target's absolute data path (DATA_PATH), which the writer's runs attach it with; a
reader of the published catalog names the data path where it found it (`eujp.bi.published_data_path`: DATA_PATH
with OVERRIDE_DATA_PATH), so that a copied folder or a mirrored bucket reads its own files.

A writer commits on top of the lake published at its target: before a commit (and maintenance) with the embedded
catalog, a writer whose catalog is missing or lacks a published snapshot (another writer published since; a
fresh disk) adopts the published catalog, its own set aside (`replace_unpublished_catalog`).

`EUJP_LAKE_CATALOG` chooses the catalog: unset or `file` for the embedded catalog file of the warehouse
(no server: readers attach the published copy read-only), `postgres:<libpq connection string>` for a
PostgreSQL catalog (a writer and any number of readers at once; nothing to publish), `off` to publish no lake.

A run's commit (`commit_warehouse`) compares, per table and per partition unit, a digest of the promoted
warehouse's rows with the digest the lake recorded at its last commit (`eujp_meta.partitions`, in the lake
itself) and rewrites only the units that changed: a day with one new month writes that month's files and the
catalog commit. Everything a run changes, and the row naming the run in `eujp_meta.runs`, is one transaction,
so one snapshot: readers see the run whole or not at all. The run commits only after its audit passed (the
publish step), and `latest.json` names the snapshot.

Retention and compaction (`maintain`, `eujp lake-maintain`) expire old snapshots, merge small files and delete
the files nothing references any more, never a snapshot that `latest.json` or a retained run's manifest names.

The ducklake, postgres_scanner and httpfs extensions are loaded from their PyPI wheels (no download at run time).
DuckLake syntax used here: https://ducklake.select/docs/stable/duckdb/introduction,
https://duckdb.org/docs/stable/core_extensions/ducklake.html and the maintenance pages of ducklake.select.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from eujp.bi import configure_remote, load_extension
from eujp.config import DEFAULT_WAREHOUSE, LAKE_CATALOG_ENV, duckdb_config, warehouse_files_dir
from eujp.digests import RUN_COLUMN, digests_and_markers, partition_digests, run_markers, unit_filter
from eujp.errors import PublishError
from eujp.redaction import conninfo_passwords, redact_conninfo, redact_in_logs, redact_secrets
from eujp.sql import quote_ident, sql_string
from eujp.storage import LocalObjectStore, ObjectStore, StoredObject, open_store, sha256_file
from eujp.warehouse import DescribedTable, described_tables

log = logging.getLogger("eujp.lake")

CATALOG_FILE = "lake.ducklake"  # in the warehouse's files folder (the writer's) and at the publish URI's root
DATA_FOLDER = "lake"  # data files under {publish uri}/lake/
ALIAS = "lake"
META_SCHEMA = "eujp_meta"  # the lake's own bookkeeping: partitions (digests) and runs (run id -> snapshot)
CATALOG_BLOCK_SIZE = 16384  # bytes: the block size of a new embedded catalog file (see `attach`)


class LakeError(PublishError):
    """The lake could not be written, read or maintained; the message says what and what was left as it was."""


class NothingToMaintain(LakeError):
    """There is no lake to maintain: `off` when EUJP_LAKE_CATALOG is off, else no run has published one yet. The
    scheduled maintenance (flows/lake.py) ends Completed on it; `eujp lake-maintain` exits 1 only when `off`."""

    def __init__(self, message: str, *, off: bool = False) -> None:
        super().__init__(message)
        self.off = off


# --- extensions from their wheels: eujp.bi.extension_path / load_extension (one place for DuckDB's extensions) ---

# --- where the lake is ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LakeConfig:
    """Where a lake's catalog and data files are. `catalog` is what follows `ducklake:` in ATTACH."""

    catalog: str
    data_path: str  # DATA_PATH: a folder (absolute, ending in /) or s3://bucket/prefix/lake/
    catalog_file: Path | None  # the embedded catalog's file (the writer's copy); None for PostgreSQL

    @property
    def embedded(self) -> bool:
        return self.catalog_file is not None

    @property
    def kind(self) -> str:
        return "file" if self.embedded else "postgres"

    def describe(self) -> str:
        """The catalog for messages, never a password of a connection string."""
        if self.embedded:
            return str(self.catalog_file)
        return "postgres:" + redact_conninfo(self.catalog[len("postgres:"):], bare=True)

    def redact(self, text: str) -> str:
        """`text` (a DuckDB error, which may quote the connection string bare) as a message may show it: the
        catalog as `describe` shows it, and no password in any spelling."""
        return redact_secrets(text.replace(self.catalog, self.describe()))


def lake_off(env: dict[str, str] | None = None) -> bool:
    """Whether EUJP_LAKE_CATALOG turns the lake off (no lake is published, none is maintained)."""
    env = os.environ if env is None else env
    return (env.get(LAKE_CATALOG_ENV) or "").strip().lower() in ("off", "none", "no", "false", "0")


def lake_config(warehouse_path: Path, publish_uri: str, env: dict[str, str] | None = None) -> LakeConfig | None:
    """The lake of a warehouse and a publish URI, as EUJP_LAKE_CATALOG says; None when it is `off`."""
    env = os.environ if env is None else env
    choice = (env.get(LAKE_CATALOG_ENV) or "file").strip()
    if lake_off(env):
        return None
    store = open_store(publish_uri)
    if isinstance(store, LocalObjectStore):
        data_path = (store.root / DATA_FOLDER).as_posix() + "/"
    else:
        data_path = store.url_for(DATA_FOLDER) + "/"
    if choice.lower() == "file":  # the warehouse's own (two warehouses in one folder never share one)
        catalog_file = warehouse_files_dir(Path(warehouse_path).resolve()) / CATALOG_FILE
        return LakeConfig(str(catalog_file), data_path, catalog_file)
    if choice.startswith("postgres:"):
        redact_in_logs(*conninfo_passwords(choice[len("postgres:"):]))  # from now on in no log record
        return LakeConfig(choice, data_path, None)
    raise ValueError(f"{LAKE_CATALOG_ENV} must be 'file' (the default: a catalog file of the warehouse), "
                     f"'postgres:<connection string>' or 'off', got {choice.split(':')[0]!r}...")


def attach(conn: duckdb.DuckDBPyConnection, cfg: LakeConfig, *, read_only: bool = False,
           alias: str = ALIAS) -> None:
    """ATTACH the lake as `alias` on `conn`: the extensions it needs, S3 credentials from AWS_* when its data
    (or catalog) is on S3, then `ATTACH 'ducklake:...'`."""
    load_extension(conn, "ducklake")
    if not cfg.embedded:
        load_extension(conn, "postgres_scanner")
    if cfg.data_path.startswith("s3://") or cfg.catalog.startswith("s3://"):
        configure_remote(conn)  # with the run's own S3 credentials (eujp.bi.s3_env)
    options = ["READ_ONLY"] if read_only else [f"DATA_PATH {sql_string(cfg.data_path)}", "DATA_INLINING_ROW_LIMIT 0"]
    if cfg.embedded and not read_only and not cfg.catalog_file.exists():
        # A new catalog file with 16 KiB blocks: DuckDB's default 256 KiB block per metadata table makes an
        # embedded catalog of ~30 small tables 5-8 MB, which every run would upload; with 16 KiB it is ~0.3 MB.
        cfg.catalog_file.parent.mkdir(parents=True, exist_ok=True)
        conn.execute(f"ATTACH {sql_string(str(cfg.catalog_file))} AS _eujp_new_catalog (BLOCK_SIZE {CATALOG_BLOCK_SIZE})")
        conn.execute("DETACH _eujp_new_catalog")
    if cfg.data_path.startswith("/") and not read_only:
        Path(cfg.data_path).mkdir(parents=True, exist_ok=True)
    try:
        conn.execute(f"ATTACH {sql_string('ducklake:' + cfg.catalog)} AS {alias} ({', '.join(options)})")
    except duckdb.Error as exc:
        # DuckDB's error may quote the connection string bare (Unable to connect to Postgres at "..."): every
        # password in the message is hidden, not only in the catalog setting's own spelling
        message = cfg.redact(str(exc))
        moved = _RECORDED_DATA_PATH.search(message)
        if moved:
            raise LakeError(
                f"cannot attach the lake: its catalog {cfg.describe()} keeps its data files under "
                f"{moved.group(1)}, but the publish target puts them under {cfg.data_path}: the published folder "
                f"moved or {LAKE_PUBLISH_SETTING} changed. Set it (or --publish) back to the target that holds the "
                "lake's files. To start a new lake at the new target instead: with the embedded catalog, the next "
                f"`eujp run` there sets the old catalog aside and does so; with a PostgreSQL catalog, point "
                f"{LAKE_CATALOG_ENV} at a new database (docs/lakehouse.md)") from None
        raise LakeError(f"cannot attach the lake (catalog {cfg.describe()}, data {cfg.data_path}): "
                        f"{type(exc).__name__}: {message}") from None


# DuckLake's refusal of a DATA_PATH other than the catalog's: 'DATA_PATH parameter "new" does not match existing
# data path in the catalog "recorded"'
_RECORDED_DATA_PATH = re.compile(r'does not match existing data path in the catalog "([^"]*)"')
LAKE_PUBLISH_SETTING = "EUJP_PUBLISH_URI"


# --- what is compared, what is partitioned --------------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    """How one table is kept in the lake: `unit` is the column whose values are compared (and rewritten) one by
    one (None: the table as a whole); `partition` the PARTITIONED BY expression of its data files (None: none)."""

    unit: str | None
    partition: str | None


def table_layout(table) -> Layout:
    """Facts: compared per value of their source's period column and partitioned by it (a date: by its year),
    so a new month or year is new files beside the old ones. Marts rebuilt by partition (their `partition_by`,
    e.g. mart_product_trade by period_year): the same, per value of that column. ETL tables with a run_id:
    compared per run (a run appends its own rows). Everything else (dimensions, other marts, reference tables):
    compared whole."""
    from eujp.marts import MODELS
    from eujp.sources import SOURCES

    model = MODELS.get(table.name)
    if model is not None and model.partition is not None:
        return Layout(model.partition.column, quote_ident(model.partition.column))

    for source in SOURCES:
        if source.table.name == table.name and source.period_column:
            column = source.period_column
            dtype = str(table.columns.get(column, ""))
            expression = f"year({quote_ident(column)})" if dtype.startswith(("Date", "Datetime")) else \
                quote_ident(column)
            return Layout(column, expression)
    if not table.is_fact and "run_id" in table.columns:
        return Layout("run_id", None)
    return Layout(None, None)


# --- a run's commit ---------------------------------------------------------------------------------------------

@dataclass
class LakeCommit:
    snapshot_id: int
    snapshot_time: str  # UTC, ISO 8601 (`utc_iso`), like the manifest's other times
    catalog: str  # "file" | "postgres"
    data_path: str
    run_id: str
    new: bool  # False: the run had already committed this snapshot (a retried publish)
    changed: dict[str, dict] = field(default_factory=dict)  # table -> {"rewritten": [...], "removed": [...]}
    # table -> {unit: (rows, digest)} of the warehouse committed (`partition_digests`): eujp.publish reuses them
    # for the tables it publishes by partition
    digests: dict[str, dict[str, tuple[int, str]]] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        out = asdict(self)
        out.pop("digests")
        return out

    def manifest_entry(self) -> dict:
        """What the run's manifest and latest.json say about the lake."""
        entry = {"snapshot_id": self.snapshot_id, "snapshot_time": self.snapshot_time, "catalog": self.catalog,
                 "data_path": DATA_FOLDER + "/",
                 "tables_changed": sorted(self.changed)}
        if self.catalog == "file":
            entry["catalog_key"] = CATALOG_FILE
        return entry


def commit_warehouse(cfg: LakeConfig, warehouse_path: Path, run_id: str, *, tables=None,
                     seconds: float | None = None, verify: bool = False) -> LakeCommit:
    """Write the promoted warehouse's tables into the lake as ONE snapshot: only the partition units whose rows
    changed since the lake's last commit are rewritten (new Parquet files; the old ones stay for time travel).
    A run that already committed (a retried publish) with nothing changed since returns its snapshot.

    A fact table or a run ledger (`Table.ledger`), whose rows carry the run that wrote them
    (eujp.digests.RUN_COLUMN), is first compared by each unit's row count and run marker (`run_markers`, a
    quarter of a full digest's cost); only the units whose count or marker changed since the last commit are
    digested (their rows only, found by their row groups' min/max), the others keep the digest the lake recorded. `verify` digests every unit of every table: what
    sees an edit made outside a run that left the run ids alone (`eujp run --force` passes it).

    `seconds` (what is left of the run's publish deadline) bounds each of DuckDB's HTTP requests: a request
    that hangs is given up after about half of it, without retry, and the commit fails (LakeError) instead of
    spending DuckDB's default 30 s timeout times 4 attempts on every request against a frozen endpoint."""
    from eujp.tables import ALL_TABLES

    tables = ALL_TABLES if tables is None else tables
    conn = duckdb.connect(config=duckdb_config())
    try:
        attach(conn, cfg)
        if seconds is not None and (cfg.data_path.startswith("s3://") or cfg.catalog.startswith("s3://")):
            conn.execute(f"SET http_timeout = {max(1, min(30, int(seconds / 2)))}")
            conn.execute("SET http_retries = 0")
        conn.execute(f"ATTACH {sql_string(str(Path(warehouse_path).resolve()))} AS wh (READ_ONLY)")
        conn.execute("BEGIN")
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {ALIAS}.{META_SCHEMA}")
        conn.execute(f"CREATE TABLE IF NOT EXISTS {ALIAS}.{META_SCHEMA}.partitions (table_name VARCHAR, "
                     "part VARCHAR, row_count BIGINT, digest VARCHAR, run_marker VARCHAR)")
        # a lake committed before the run markers: its units have none, so they are digested whole once
        conn.execute(f"ALTER TABLE {ALIAS}.{META_SCHEMA}.partitions ADD COLUMN IF NOT EXISTS run_marker VARCHAR")
        conn.execute(f"CREATE TABLE IF NOT EXISTS {ALIAS}.{META_SCHEMA}.runs (run_id VARCHAR, committed_at "
                     "TIMESTAMP WITH TIME ZONE)")
        stored: dict[str, dict[str, tuple[int, str]]] = {}
        stored_markers: dict[str, dict[str, str | None]] = {}
        for name, part, n, digest, marker in conn.execute(
                f"SELECT table_name, part, row_count, digest, run_marker FROM {ALIAS}.{META_SCHEMA}.partitions"
        ).fetchall():
            stored.setdefault(name, {})[part] = (n, digest)
            stored_markers.setdefault(name, {})[part] = marker
        changed: dict[str, dict] = {}
        restated: set[str] = set()  # tables whose eujp_meta.partitions rows are written again
        digests: dict[str, dict[str, tuple[int, str]]] = {}
        digest_rows: list[tuple[str, str, int, str, str | None]] = []
        in_warehouse, in_lake = described_tables(conn, "wh", "main"), described_tables(conn, ALIAS, "main")
        for table in tables:
            layout = table_layout(table)
            target = f"{ALIAS}.main.{quote_ident(table.name)}"
            described = in_warehouse.get(table.name)
            if described is None or not described.columns:
                raise LakeError(f"table {table.name} is not in the warehouse {warehouse_path}")
            wanted = described.column_types
            have = in_lake[table.name].column_types if table.name in in_lake else []
            before, was = stored.get(table.name, {}), stored_markers.get(table.name, {})
            source, columns = f"wh.main.{quote_ident(table.name)}", dict(wanted)
            if have != wanted:  # new table, or its columns changed: a new table (older snapshots keep the old one)
                if have:
                    conn.execute(f"DROP TABLE {target}")
                conn.execute(f"CREATE TABLE {target} AS FROM {source} LIMIT 0")
                if layout.partition:
                    conn.execute(f"ALTER TABLE {target} SET PARTITIONED BY ({layout.partition})")
                _copy_comments(conn, described, target)
                before = {}
            dtype = columns.get(layout.unit) if layout.unit else None
            markers: dict[str, tuple[int, str]] = {}
            # the facts and the run ledgers only: their loader writes a row as a new row stamped with the run
            # (upsert_fact; a ledger's rows are appended under their run's id, one unit per run, never changed
            # after); the other ETL records, small, are digested whole (a run re-records its own etl_runs row
            # under its own id). A ledger of 9.7M revisions: 0.38 s to digest every run's rows, 0.04 s to count
            # them.
            if not ((table.is_fact or table.ledger) and layout.unit is not None and RUN_COLUMN in columns):
                now = partition_digests(conn, source, layout.unit)
            elif not before or verify:  # every unit digested: its markers from the same scan
                now, markers = digests_and_markers(conn, source, layout.unit)
            else:
                markers = run_markers(conn, source, layout.unit)
                kept = {k for k, (n, m) in markers.items() if k in before and before[k][0] == n and was.get(k) == m}
                now = {k: before[k] for k in kept}
                if not kept:  # no unit to keep (the lake recorded no markers yet): the table, unfiltered
                    now = partition_digests(conn, source, layout.unit)
                elif len(kept) < len(markers):
                    suspect = sorted(set(markers) - kept)
                    now |= partition_digests(
                        conn, f"(SELECT * FROM {source} WHERE {unit_filter(layout.unit, suspect, dtype)})",
                        layout.unit)
            digests[table.name] = now
            rewrite = sorted(k for k, v in now.items() if before.get(k) != v)
            remove = sorted(k for k in before if k not in now)
            unit_rows = [(table.name, k, n, d, markers[k][1] if k in markers else None)
                         for k, (n, d) in sorted(now.items())]
            digest_rows += unit_rows
            if rewrite or remove or any(m != was.get(k) for _, k, _, _, m in unit_rows):
                restated.add(table.name)
            if not rewrite and not remove:
                continue
            changed[table.name] = {"rewritten": rewrite, "removed": remove}
            if before:  # rows of these units the lake holds now
                conn.execute(f"DELETE FROM {target} WHERE {unit_filter(layout.unit, rewrite + remove, dtype)}")
            if rewrite:
                # `now` holds every unit of the table, `rewrite` those that changed: when that is all of them (a
                # first commit, a full revision) the table is inserted without a filter to evaluate per row
                every = len(rewrite) == len(now)
                conn.execute(f"INSERT INTO {target} SELECT * FROM {source}"
                             + ("" if every else f" WHERE {unit_filter(layout.unit, rewrite, dtype)}"))
        already = conn.execute(f"SELECT count(*) FROM {ALIAS}.{META_SCHEMA}.runs WHERE run_id = ?",
                               [run_id]).fetchone()[0]
        if already and not changed:
            conn.execute("ROLLBACK")
            snapshot = _run_snapshot(conn, run_id)
            return LakeCommit(snapshot[0], snapshot[1], cfg.kind, cfg.data_path, run_id, new=False, digests=digests)
        if restated:
            conn.execute(f"DELETE FROM {ALIAS}.{META_SCHEMA}.partitions WHERE table_name IN "
                         f"(SELECT unnest(?::VARCHAR[]))", [sorted(restated)])
            rows = [r for r in digest_rows if r[0] in restated]
            conn.register("_digests", pa.table({
                "table_name": [r[0] for r in rows], "part": [r[1] for r in rows],
                "row_count": pa.array([r[2] for r in rows], pa.int64()), "digest": [r[3] for r in rows],
                "run_marker": pa.array([r[4] for r in rows], pa.string())}))
            try:
                conn.execute(f"INSERT INTO {ALIAS}.{META_SCHEMA}.partitions (table_name, part, row_count, digest, "
                             "run_marker) SELECT table_name, part, row_count, digest, run_marker FROM _digests")
            finally:
                conn.unregister("_digests")
        conn.execute(f"INSERT INTO {ALIAS}.{META_SCHEMA}.runs VALUES (?, now())", [run_id])
        conn.execute("COMMIT")
        snapshot_id, snapshot_time = conn.execute(
            f"SELECT snapshot_id, snapshot_time FROM ducklake_snapshots('{ALIAS}') "
            "ORDER BY snapshot_id DESC LIMIT 1").fetchone()
        return LakeCommit(snapshot_id, utc_iso(snapshot_time), cfg.kind, cfg.data_path, run_id, new=True, changed=changed,
                          digests=digests)
    except LakeError:
        raise
    except duckdb.Error as exc:
        raise LakeError(f"committing run {run_id} to the lake (catalog {cfg.describe()}, data {cfg.data_path}) "
                        f"failed: {type(exc).__name__}: {cfg.redact(str(exc))}; the lake "
                        "was left at its previous snapshot") from None
    finally:
        conn.close()


def utc_iso(ts: datetime) -> str:
    """A TIMESTAMPTZ as DuckDB returns it, in the session's TimeZone (the process' time zone: under TZ=Asia/Tokyo,
    CAST(... AS VARCHAR) read '2026-12-06 00:46:39.959135+09'), as UTC ISO 8601: '2026-12-05T15:46:39.959135+00:00'."""
    return ts.astimezone(UTC).isoformat()


def _run_snapshot(conn: duckdb.DuckDBPyConnection, run_id: str) -> tuple[int, str]:
    """The snapshot that committed `run_id` (the one its eujp_meta.runs row was inserted in): id, time (UTC ISO)."""
    newest = int(conn.execute(f"SELECT max(snapshot_id) FROM ducklake_snapshots('{ALIAS}')").fetchone()[0])
    row = conn.execute(
        f"SELECT i.snapshot_id, s.snapshot_time FROM ducklake_table_insertions('{ALIAS}', "
        f"'{META_SCHEMA}', 'runs', 0, {newest}) AS i JOIN ducklake_snapshots('{ALIAS}') AS s "
        "ON s.snapshot_id = i.snapshot_id WHERE i.run_id = ? ORDER BY 1 DESC LIMIT 1", [run_id]).fetchone()
    if row is None:
        raise LakeError(f"run {run_id} is recorded in the lake but its snapshot was not found")
    return row[0], utc_iso(row[1])


def _copy_comments(conn: duckdb.DuckDBPyConnection, described: DescribedTable, target: str) -> None:
    """The warehouse's table and column descriptions (`described`, as its catalog has them) travel into the lake
    (BI tools show them)."""
    if described.comment:
        conn.execute(f"COMMENT ON TABLE {target} IS {sql_string(described.comment)}")
    for column, (_, text) in described.columns.items():
        if text is not None:
            conn.execute(f"COMMENT ON COLUMN {target}.{quote_ident(column)} IS {sql_string(text)}")


# --- publishing the embedded catalog ---------------------------------------------------------------------------

def replace_unpublished_catalog(cfg: LakeConfig, store: ObjectStore, run_id: str | None = None) -> str | None:
    """Before a commit with the embedded catalog: make the writer's catalog the lake PUBLISHED at the target, or
    a new one when the target has none. Returns what was done (a warning of the run), or None.

    - The target holds a published catalog of this target's data path, and the writer's catalog holds every
      published snapshot (equal, or ahead by the commits whose upload failed: its newest published snapshot has
      the same id and time in the writer's): kept. When the writer's catalog is the published file (the usual
      day: it uploaded it itself), the sha256 the store keeps of the published one says so and nothing is
      downloaded (`_is_published_copy`); otherwise the published catalog is downloaded to compare snapshots.
    - The writer has no catalog (a fresh disk, a second writer), or its catalog lacks a published snapshot (another
      writer committed there since, or this catalog is an older copy: the two lakes diverged), or records another
      target's data path: the published catalog is downloaded and the commit goes on top of it; the writer's own
      is set aside as lake.ducklake.replaced-<time>. The commit then rewrites exactly the partition units where
      this warehouse differs from what the published lake recorded (`commit_warehouse` compares with
      eujp_meta.partitions, in the lake itself).
    - The target holds no published catalog (it was emptied, or is a new one): the writer's catalog is set aside
      and the commit starts a new lake with every table, instead of referencing data files the target does not
      have; but not when `run_id` started it (below).
    - The published catalog records another data path (a copied or mirrored target): it is not followed; the
      writer's catalog of this target goes on, and without one a new lake starts.

    `run_id`: the run about to commit. A lake it starts is marked so (`STARTED_BY`, beside the catalog): a retry
    of its publish (a first publish whose upload failed after the commit) finds the target without a catalog
    still, and keeps the catalog this run started, whose data files are at the target already, instead of setting
    it aside and writing every table again."""
    if not cfg.embedded:
        return None
    return _follow_published(cfg, store, run_id, maintenance=False)


def _follow_published(cfg: LakeConfig, store: ObjectStore, run_id: str | None, *, maintenance: bool) -> str | None:
    """`replace_unpublished_catalog`'s work. With `maintenance` it only adopts the published catalog (of this
    target) when the writer's lacks one of its snapshots or is missing; it never starts a new lake."""
    download = cfg.catalog_file.with_name(cfg.catalog_file.name + PUBLISHED_COPY)
    cfg.catalog_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        found = store.stat(CATALOG_FILE, digest=False)  # one HEAD (S3), a stat and its record (a folder)
        published, at_target = None, found is not None
        if at_target:
            # the writer's catalog has the published bytes (it uploaded them itself: the usual day): nothing is
            # downloaded, and when it is this target's lake it is kept, as it holds every published snapshot
            source = cfg.catalog_file if _is_published_copy(cfg.catalog_file, found) else download
            if source == download:
                store.get_file(CATALOG_FILE, download)
            try:
                recorded = _catalog_data_path(source)
                if source == cfg.catalog_file and _same_data_path(recorded, cfg.data_path):
                    return None
                published = (recorded, _catalog_snapshots(source))
            except duckdb.Error as exc:
                raise LakeError(f"the lake catalog published at {store.uri} ({CATALOG_FILE}) cannot be read "
                                f"({type(exc).__name__}: {exc}); nothing was committed over it: replace or remove "
                                "it (docs/lakehouse.md)") from None
        other = ""  # a catalog published at the target that records another data path (a copied target)
        if published is not None and not _same_data_path(published[0], cfg.data_path):
            other = (f"; the {CATALOG_FILE} published at {store.uri} records the data path {published[0]}, not "
                     "this target's")
            published = None  # not this target's lake: nothing to adopt
        if maintenance and published is None:
            # nothing of this target published to follow: the writer's lake is maintained as before (a catalog
            # that cannot be attached, of a moved target, says so at its attach; one that is missing: below)
            if not cfg.catalog_file.exists():
                raise LakeError(f"no lake to maintain: its catalog {cfg.catalog_file} does not exist (no run has "
                                "published one yet)")
            return None
        mine = cfg.catalog_file.exists()
        reason = None
        if mine:
            try:
                data_path, have = _catalog_data_path(cfg.catalog_file), _catalog_snapshots(cfg.catalog_file)
            except duckdb.Error as exc:
                reason = f"it cannot be read ({type(exc).__name__}: {exc})"
            else:
                if not _same_data_path(data_path, cfg.data_path):
                    reason = f"its data path {data_path} is not this target's {cfg.data_path}"
                elif published is not None:
                    missing = _missing_snapshot(have, published[1])
                    if missing is not None:
                        reason = (f"it lacks the published snapshot {missing[0]} of {utc_iso(missing[1])}: another "
                                  "writer committed there since, or this catalog is an older copy")
                elif at_target:
                    # a catalog of another data path at the target, the writer's of this one (its lake files are
                    # there): the writer's lake goes on, as before
                    return None
                elif run_id is not None and _started_by(cfg) == {"run_id": run_id, "data_path": cfg.data_path}:
                    return None  # this run's own lake, from a try whose publish failed after the commit
                else:
                    reason = f"{store.uri} holds no published {CATALOG_FILE} of this target"
            if reason is None:
                return None
        elif published is None:
            _mark_started(cfg, run_id)
            return f"this writer had no lake catalog ({cfg.catalog_file}){other}: a new lake starts" if other else None
        if mine:
            aside = cfg.catalog_file.with_name(
                f"{cfg.catalog_file.name}.replaced-{datetime.now(UTC):%Y%m%dT%H%M%S.%fZ}")
            _move_catalog(cfg.catalog_file, aside)
            mine_note = f"the lake catalog {cfg.catalog_file} was set aside as {aside.name} ({reason})"
        else:
            mine_note = f"this writer had no lake catalog ({cfg.catalog_file})"
        if published is None:
            _mark_started(cfg, run_id)
            return f"{mine_note}{other}: a new lake starts"
        download.rename(cfg.catalog_file)
        _mark_started(cfg, None)
        newest = max(published[1], default=None)
        at = f"snapshot {newest} of {utc_iso(published[1][newest])}" if newest is not None else "no snapshot"
        return (f"{mine_note}: adopted the lake catalog published at {store.uri} ({at}); "
                + ("maintenance goes on with it" if maintenance else "this run commits on top of it"))
    finally:
        download.unlink(missing_ok=True)


PUBLISHED_COPY = ".published"  # the catalog file's name + this, beside it: a download of the published catalog


def _is_published_copy(catalog_file: Path, published: StoredObject) -> bool:
    """Whether the writer's catalog file holds the bytes of the published catalog, by the sha256 the store keeps
    of it (S3's metadata, a folder's record: `ObjectStore.stat(digest=False)`), so that it need not be downloaded
    to compare their snapshots. False when the store keeps none (an object another tool wrote, a folder file
    changed since), when the sizes differ, and when the writer's catalog has a write-ahead log (the published
    copy has none: its snapshots may not be the file's)."""
    if not published.sha256 or not catalog_file.is_file():
        return False
    if catalog_file.with_name(catalog_file.name + ".wal").exists():
        return False
    return catalog_file.stat().st_size == published.size and sha256_file(catalog_file) == published.sha256


def _catalog_snapshots(catalog_file: Path) -> dict[int, datetime]:
    """{snapshot id: time} of an embedded catalog file (read as a DuckDB file); duckdb.Error when it cannot be
    read."""
    with duckdb.connect(str(catalog_file), read_only=True) as conn:
        return dict(conn.execute("SELECT snapshot_id, snapshot_time FROM ducklake_snapshot").fetchall())


def _missing_snapshot(have: dict[int, datetime], published: dict[int, datetime]) -> tuple[int, datetime] | None:
    """A published snapshot the writer's catalog lacks (None: it holds them all, or is ahead). A snapshot is the
    same when its id and time are: two lakes diverged from the same one number their own snapshots alike, at other
    times. Snapshots the writer's catalog expired (maintenance whose upload failed) are not asked for, but the
    published newest one always is."""
    if not published:
        return None
    newest = max(published)
    for i in sorted(published, reverse=True):
        if have.get(i, None if i == newest else published[i]) != published[i]:
            return i, published[i]
    return None


def adopt_folder_catalog(cfg: LakeConfig, warehouse_path: Path) -> str | None:
    """Before a commit with the embedded catalog: a warehouse not named warehouse.duckdb kept its catalog in its
    folder until its files had a folder of their own (eujp.config.warehouse_files_dir). When it has no catalog
    there yet, the folder's `lake.ducklake` records this target's data path, and no warehouse.duckdb beside it
    (whose catalog that file is) exists, the catalog is moved into the warehouse's files folder, so that its
    lake goes on (earlier snapshots, time travel) instead of starting anew. Returns what was done, or None."""
    if not cfg.embedded or cfg.catalog_file.exists():
        return None
    folder = Path(warehouse_path).resolve().parent
    legacy = folder / CATALOG_FILE
    if legacy == cfg.catalog_file or not legacy.is_file() or (folder / DEFAULT_WAREHOUSE.name).exists():
        return None
    try:
        if not _same_data_path(_catalog_data_path(legacy), cfg.data_path):
            return None
    except duckdb.Error:
        return None
    cfg.catalog_file.parent.mkdir(parents=True, exist_ok=True)
    _move_catalog(legacy, cfg.catalog_file)
    return f"the lake catalog {legacy} of this target was moved to {cfg.catalog_file}, the warehouse's own"


def _catalog_data_path(catalog_file: Path) -> str | None:
    """The data path an embedded catalog file records (None: none recorded); duckdb.Error when it cannot be read."""
    with duckdb.connect(str(catalog_file), read_only=True) as conn:
        row = conn.execute("SELECT value FROM ducklake_metadata WHERE key = 'data_path'").fetchone()
    return row[0] if row else None


def _same_data_path(recorded: str | None, data_path: str) -> bool:
    return recorded is not None and recorded.rstrip("/") == data_path.rstrip("/")


def _move_catalog(catalog_file: Path, to: Path) -> None:
    """Rename an embedded catalog file to `to`, with its write-ahead log if it has one."""
    wal = catalog_file.with_name(catalog_file.name + ".wal")
    if wal.exists():
        wal.rename(to.with_name(to.name + ".wal"))
    catalog_file.rename(to)


STARTED_BY = ".started-by"  # the catalog file's name + this, beside it: the run that started its lake, and where


def _started_by_file(cfg: LakeConfig) -> Path:
    return cfg.catalog_file.with_name(cfg.catalog_file.name + STARTED_BY)


def _mark_started(cfg: LakeConfig, run_id: str | None) -> None:
    marker = _started_by_file(cfg)
    if run_id is None:
        marker.unlink(missing_ok=True)
    else:
        marker.write_text(json.dumps({"run_id": run_id, "data_path": cfg.data_path}))


def _started_by(cfg: LakeConfig) -> dict | None:
    try:
        return json.loads(_started_by_file(cfg).read_text())
    except (OSError, ValueError):
        return None


def frozen_catalog(cfg: LakeConfig, work_dir: Path) -> Path | None:
    """A copy of the embedded catalog file to upload (None for PostgreSQL): the file a reader attaches."""
    if not cfg.embedded:
        return None
    if not cfg.catalog_file.is_file():
        raise LakeError(f"the lake's catalog {cfg.catalog_file} does not exist")
    work_dir.mkdir(parents=True, exist_ok=True)
    copy = work_dir / CATALOG_FILE
    shutil.copyfile(cfg.catalog_file, copy)
    return copy


# --- reading ----------------------------------------------------------------------------------------------------

def snapshots(cfg: LakeConfig) -> list[dict]:
    """Every snapshot of the lake: id, time, and the runs it committed."""
    conn = duckdb.connect(config=duckdb_config())
    try:
        attach(conn, cfg, read_only=True)
        rows = conn.execute(f"SELECT snapshot_id, snapshot_time, changes FROM ducklake_snapshots('{ALIAS}') "
                            "ORDER BY snapshot_id").fetchall()
    finally:
        conn.close()
    return [{"snapshot_id": i, "snapshot_time": t, "changes": c} for i, t, c in rows]


# --- retention and compaction ----------------------------------------------------------------------------------

DEFAULT_KEEP_DAYS = 30.0
DEFAULT_GRACE_HOURS = 24.0
KEEP_DAYS_ENV, GRACE_HOURS_ENV = "EUJP_LAKE_KEEP_DAYS", "EUJP_LAKE_GRACE_HOURS"


@dataclass
class Maintenance:
    expired: list[int]
    protected: list[int]
    merged: int  # data files merged (ducklake_merge_adjacent_files' files_processed, every table's)
    deleted_files: list[str]
    snapshot_id: int  # the newest snapshot after maintenance
    catalog_published: str | None = None
    merged_into: int = 0  # the files they were merged into (files_created)
    adopted: str | None = None  # the published catalog adopted first (the writer's lacked a published snapshot)

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        return (f"{self.adopted}; " if self.adopted else "") + (
                f"expired {len(self.expired)} snapshot(s) {self.expired or ''}, kept {self.protected} for "
                f"latest.json and the retained runs, merged {self.merged} file(s) into {self.merged_into}, deleted "
                f"{len(self.deleted_files)} file(s)").replace(" , ", ", ")


def protected_snapshots(store: ObjectStore) -> set[int]:
    """Snapshots that must survive retention: the one latest.json names and those of every published run still
    kept under runs/ (their manifests)."""
    from eujp.publish import read_latest_pointer

    keep: set[int] = set()
    pointer = read_latest_pointer(store)
    if pointer and (pointer.get("lake") or {}).get("snapshot_id") is not None:
        keep.add(int(pointer["lake"]["snapshot_id"]))
    for key in store.list_keys("runs"):
        if key.count("/") == 2 and key.endswith("/manifest.json"):
            try:
                snapshot = (json.loads(store.get_bytes(key)).get("lake") or {}).get("snapshot_id")
            except ValueError:
                continue
            if snapshot is not None:
                keep.add(int(snapshot))
    return keep


def _pointer_snapshot(store: ObjectStore) -> int | None:
    """The lake snapshot latest.json names (None: no pointer, or none with a lake)."""
    from eujp.publish import read_latest_pointer

    snapshot = ((read_latest_pointer(store) or {}).get("lake") or {}).get("snapshot_id")
    return None if snapshot is None else int(snapshot)


def maintain(cfg: LakeConfig, store: ObjectStore, *, keep_days: float = DEFAULT_KEEP_DAYS,
             grace_hours: float = DEFAULT_GRACE_HOURS, now: datetime | None = None,
             work_dir: Path | None = None) -> Maintenance:
    """Retention and compaction, in this order:

    1. expire the snapshots older than `keep_days`, except the newest one, the one latest.json names and those
       the retained runs' manifests name (`protected_snapshots`);
    2. merge adjacent small files (ducklake_merge_adjacent_files: the snapshots kept still read their rows);
    3. delete the files scheduled for deletion more than `grace_hours` ago (a reader that attached the
       previously published catalog may still scan them: the grace is how long such a reader may take), and the
       orphaned files of aborted commits as old as that;
    4. with the embedded catalog: publish the maintained catalog (upload, verified).

    Before anything, with the embedded catalog: a writer whose catalog lacks a snapshot of the published one (or
    has none) adopts the published catalog, as a run does before its commit (`replace_unpublished_catalog`), so
    that maintenance never publishes a catalog without the published snapshots nor deletes their files as
    orphans; a catalog without the snapshot latest.json names is refused (LakeError) before anything is deleted.

    Run it with the run lock held (the CLI and the flow do): it writes the catalog a run writes."""
    if keep_days < 0 or grace_hours < 0:
        raise ValueError("keep_days and grace_hours must not be negative")
    now = now or datetime.now(UTC)
    adopted = _follow_published(cfg, store, None, maintenance=True) if cfg.embedded else None
    if adopted:
        log.warning("lake maintenance: %s", adopted)
    protected = protected_snapshots(store)
    conn = duckdb.connect(config=duckdb_config())
    try:
        attach(conn, cfg)
        rows = conn.execute(f"SELECT snapshot_id, snapshot_time FROM ducklake_snapshots('{ALIAS}') "
                            "ORDER BY snapshot_id").fetchall()
        if not rows:
            raise LakeError(f"the lake (catalog {cfg.describe()}) has no snapshot")
        pointed = _pointer_snapshot(store)
        if pointed is not None and pointed not in {i for i, _ in rows}:
            raise LakeError(f"the lake's catalog {cfg.describe()} lacks snapshot {pointed}, which latest.json at "
                            f"{store.uri} names: it is not the published lake; nothing was expired, deleted or "
                            "published")
        newest = rows[-1][0]
        cutoff = _ago(now, days=keep_days)  # None: beyond any date (inf, 1e6 days): nothing expires
        expire = [i for i, t in rows if cutoff is not None and t < cutoff and i != newest and i not in protected]
        if expire:
            conn.execute(f"CALL ducklake_expire_snapshots('{ALIAS}', versions => ?::BIGINT[])", [expire])
        # one row per table it merged in: its files_processed merged into files_created (CALL: as a SELECT's
        # table function the merge was never committed)
        merge = conn.execute(f"CALL ducklake_merge_adjacent_files('{ALIAS}')")
        columns = [d[0] for d in merge.description]
        rows_merged = [dict(zip(columns, r, strict=True)) for r in merge.fetchall()]
        merged = sum(r["files_processed"] for r in rows_merged)
        merged_into = sum(r["files_created"] for r in rows_merged)
        older = _ago(now, hours=grace_hours)  # None: beyond any date: no file is that old, none is deleted
        deleted = [] if older is None else [r[0] for r in conn.execute(
            f"CALL ducklake_cleanup_old_files('{ALIAS}', older_than => ?::TIMESTAMPTZ)", [older]).fetchall()]
        deleted += [] if older is None else [r[0] for r in conn.execute(
            f"CALL ducklake_delete_orphaned_files('{ALIAS}', older_than => ?::TIMESTAMPTZ)", [older]).fetchall()]
        newest = conn.execute(f"SELECT max(snapshot_id) FROM ducklake_snapshots('{ALIAS}')").fetchone()[0]
        kept = sorted(i for i, _ in rows if i in protected)
    except duckdb.Error as exc:
        raise LakeError(f"lake maintenance (catalog {cfg.describe()}) failed: {type(exc).__name__}: "
                        f"{cfg.redact(str(exc))}") from None
    finally:
        conn.close()
    result = Maintenance(expire, kept, int(merged), deleted, newest, merged_into=int(merged_into), adopted=adopted)
    if cfg.embedded:
        work = work_dir or cfg.catalog_file.parent / "publish" / "lake-maintain"
        try:
            copy = frozen_catalog(cfg, work)
            store.put_file(CATALOG_FILE, copy, "application/octet-stream")
            result.catalog_published = CATALOG_FILE
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return result


def _ago(now: datetime, **delta: float) -> datetime | None:
    """`now` minus the time `delta` says (timedelta's days=/hours=); None when that is before any date a
    datetime holds (inf, or 1e6 days): keep everything."""
    try:
        return now - timedelta(**delta)
    except OverflowError:
        return None


def _env_number(name: str, default: float) -> float:
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value >= 0:  # also NaN
        raise ValueError(f"{name} must be a number of at least 0, got {raw!r}")
    return value


def maintain_published(settings, *, keep_days: float | None = None, grace_hours: float | None = None,
                       now: datetime | None = None) -> Maintenance:
    """`maintain` the lake of a run's settings (its warehouse folder and publish URI), holding the run lock so
    that no run commits meanwhile. keep_days / grace_hours default to EUJP_LAKE_KEEP_DAYS (30) and
    EUJP_LAKE_GRACE_HOURS (24)."""
    from eujp.lock import warehouse_lock

    cfg = lake_config(settings.warehouse_path, settings.publish_uri)
    if cfg is None:
        raise NothingToMaintain(f"no lake to maintain: {LAKE_CATALOG_ENV} is off (the runs publish no lake)",
                                off=True)
    if cfg.embedded and not cfg.catalog_file.exists():
        if not open_store(settings.publish_uri).exists(CATALOG_FILE):
            raise NothingToMaintain(f"nothing to maintain yet: the lake's catalog {cfg.catalog_file} does not exist "
                                    "(no run has published one yet)")
        if not settings.warehouse_path.exists():  # a mistyped path would get an adopted catalog of its own
            raise ValueError(f"no warehouse at {settings.warehouse_path}: lake maintenance runs beside the warehouse "
                             "whose runs commit the lake published at "
                             f"{settings.publish_uri} (--warehouse, EUJP_WAREHOUSE); nothing was changed")
    keep_days = _env_number(KEEP_DAYS_ENV, DEFAULT_KEEP_DAYS) if keep_days is None else keep_days
    grace_hours = _env_number(GRACE_HOURS_ENV, DEFAULT_GRACE_HOURS) if grace_hours is None else grace_hours
    with warehouse_lock(settings.warehouse_path, settings.lock_wait_seconds):
        return maintain(cfg, open_store(settings.publish_uri), keep_days=keep_days, grace_hours=grace_hours,
                        now=now)


# --- the single .duckdb file ------------------------------------------------------------------------------------

SINGLE_FILE_ENV = "EUJP_SINGLE_FILE"
SINGLE_FILE_MAX_ROWS_ENV = "EUJP_SINGLE_FILE_MAX_ROWS"
DEFAULT_SINGLE_FILE_MAX_ROWS = 1_000_000
SINGLE_FILE_CHOICES = ("auto", "all", "small")


@dataclass(frozen=True)
class SingleFile:
    """What the published single file (runs/{run_id}/warehouse.duckdb, and its Parquet files) holds
    (EUJP_SINGLE_FILE, EUJP_SINGLE_FILE_MAX_ROWS; docs/lakehouse.md, "What stays a single .duckdb file"):
    `auto` (the default) every table but the fact tables and run ledgers (`Table.ledger`: etl_revisions,
    etl_rejected_rows) of more than `max_rows` rows, which are in the lake only, and the derived tables (marts) of
    more than `max_rows` rows, which are in the lake and in Parquet; `all` every table; `small` no fact table (the
    facts are in the lake only) and, as with `auto`, no run ledger of more than `max_rows` rows."""

    choice: str = "auto"
    max_rows: int = DEFAULT_SINGLE_FILE_MAX_ROWS

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> SingleFile:
        env = os.environ if env is None else env
        choice = (env.get(SINGLE_FILE_ENV) or "auto").strip().lower()
        if choice not in SINGLE_FILE_CHOICES:
            raise ValueError(f"{SINGLE_FILE_ENV} must be 'auto' (the default: a fact table in the published "
                             f"warehouse.duckdb while it has at most {SINGLE_FILE_MAX_ROWS_ENV} rows, else in the "
                             "lake only), 'all' (every table in the published warehouse.duckdb) or 'small' (no fact "
                             f"tables: they are in the lake), got {choice!r}")
        raw = (env.get(SINGLE_FILE_MAX_ROWS_ENV) or "").strip().replace("_", "")
        if not raw:
            return cls(choice)
        try:
            max_rows = int(raw)
        except ValueError:
            max_rows = -1
        if max_rows < 0:
            raise ValueError(f"{SINGLE_FILE_MAX_ROWS_ENV} must be a whole number of rows, at least 0 (the largest "
                             f"fact table the published warehouse.duckdb holds with {SINGLE_FILE_ENV}=auto), "
                             f"got {env.get(SINGLE_FILE_MAX_ROWS_ENV)!r}")
        return cls(choice, max_rows)

    def tables(self, rows: dict[str, int] | None = None, *, lake: bool = True) -> tuple:
        """The tables of the single file. `rows`: the row counts of the fact, run ledger and derived tables in the
        promoted warehouse (needed by `auto` with the lake on, and by `small`: `sized_table_rows`); `lake`:
        whether the lake is published (`auto` without it keeps every table; `small` without it is refused by the
        caller).

        With `auto`, a fact, run ledger or derived table (a mart, a built dimension) of more than `max_rows` rows
        is left out: a fact table or a ledger is then in the lake only; a derived one is in the lake and in Parquet
        (`parquet_tables`), which the run report links for its full detail. At 50M Comext rows
        mart_product_trade has 2.8M rows (a row per reporter, flow, product and year): copying it into the
        single file took 4.5 s of a day that adds one month, and its 76 MB were uploaded again every day."""
        from eujp.schema.reference import REFERENCE_TABLES

        seeds = {t.name for t in REFERENCE_TABLES}  # curated seeds (data/reference/): small, and read beside the marts
        return tuple(t for t in self.parquet_tables(rows, lake=lake)
                     if not (self.choice == "auto" and lake and t.rebuilt and t.name not in seeds
                             and rows[t.name] > self.max_rows))

    def parquet_tables(self, rows: dict[str, int] | None = None, *, lake: bool = True) -> tuple:
        """The tables published as Parquet files (runs/{run_id}/parquet/): every table but the facts and run
        ledgers left to the lake only (`tables`). A run ledger grows with the data like a fact table (a full
        revision of 10M Comext rows recorded 9.7M revisions: 318 MB in the single file, 86 MB of Parquet, both
        uploaded again by every later run), so it follows the facts' rule."""
        from eujp.tables import ALL_TABLES

        if self.choice == "all" or (self.choice == "auto" and not lake):
            return tuple(ALL_TABLES)
        if rows is None:
            raise ValueError(f"{SINGLE_FILE_ENV}={self.choice} needs the row counts of the fact, run ledger and "
                             "derived tables")
        if self.choice == "small":
            return tuple(t for t in ALL_TABLES if not t.is_fact and not (t.ledger and rows[t.name] > self.max_rows))
        return tuple(t for t in ALL_TABLES if not (t.is_fact or t.ledger) or rows[t.name] <= self.max_rows)

    def describe(self) -> str:
        if self.choice == "auto":
            return f"{SINGLE_FILE_ENV}=auto, fact tables of at most {self.max_rows:,} rows ({SINGLE_FILE_MAX_ROWS_ENV})"
        return f"{SINGLE_FILE_ENV}={self.choice}"


def sized_table_rows(warehouse_path: Path) -> dict[str, int]:
    """{table: rows} of the fact, run ledger and derived tables of a warehouse file (what `SingleFile.tables`
    sizes), counted by DuckDB (a count reads no column)."""
    from eujp.tables import ALL_TABLES

    with duckdb.connect(str(warehouse_path), read_only=True, config=duckdb_config()) as conn:
        return {t.name: conn.execute(f"SELECT count(*) FROM {quote_ident(t.name)}").fetchone()[0]
                for t in ALL_TABLES if t.is_fact or t.ledger or t.rebuilt}


def single_file_tables(env: dict[str, str] | None = None, rows: dict[str, int] | None = None, *,
                       lake: bool = True) -> tuple:
    """The tables the published single file holds as EUJP_SINGLE_FILE and EUJP_SINGLE_FILE_MAX_ROWS say
    (`SingleFile`); ValueError on a bad setting."""
    return SingleFile.from_env(env).tables(rows, lake=lake)


def slim_warehouse(source: Path, target: Path, tables) -> Path:
    """A new warehouse file `target` with only `tables` of `source` (declared types and comments kept)."""
    from eujp.warehouse import create_tables

    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    with duckdb.connect(str(target), config=duckdb_config()) as conn:
        conn.execute("BEGIN")  # one commit for the ~400 statements of the tables and their comments, not one each
        create_tables(conn, tables)
        conn.execute("COMMIT")
        # A table's row order means nothing: DuckDB then copies each table on every core (the marts are most of it).
        conn.execute("SET preserve_insertion_order = false")
        conn.execute(f"ATTACH {sql_string(str(Path(source).resolve()))} AS src (READ_ONLY)")
        for table in tables:
            t = quote_ident(table.name)
            conn.execute(f"INSERT INTO main.{t} BY NAME SELECT * FROM src.main.{t}")
        conn.execute("DETACH src")
        conn.execute("CHECKPOINT")
    return target
