"""DuckDB warehouse operations on declared tables (which tables exist: eujp.tables): DDL, staging copies, idempotent loads, run records, promotion.

Write-audit-publish locally, at the cost of what changed (docs/reliability.md#write-audit-publish): a run
opens the live warehouse through a hard link `staging/{run_id}.duckdb` (`open_staging`), so its write-ahead
log is `staging/{run_id}.duckdb.wal`, and with automatic checkpoints off (`connect_staging`) every commit of
the run stays in that log: the live file's last checkpoint, which is all a reader of `warehouse.duckdb` sees,
is the previous good run. Once the audit passes, `promote` checkpoints (DuckDB's atomic header switch) and
removes the link. A failed audit closes without a checkpoint and `discard_staging` deletes the link and its
log: nothing of the run is left. A run killed at any point leaves its link and log behind, which nobody
replays (they are not beside the live file) and the next run removes (`clean_stale_staging`). With no live
warehouse yet, or where the file system has no hard links, the staging file is a new file or a copy, renamed
over the live one as before.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from eujp.config import SPILL_FOLDER, duckdb_memory_limit
from eujp.errors import EujpError
from eujp.incremental import SourceState
from eujp.memory import release_unused_memory
from eujp.schema import (
    DIM_COUNTRY,
    ETL_REJECTED_ROWS,
    ETL_REVISIONS,
    ETL_RUNS,
    ETL_SOURCE_STATE,
    Table,
)
from eujp.sql import in_utc, quote_ident, sql_string

log = logging.getLogger("eujp.warehouse")

_DUCK_TYPES = {
    pl.String: "VARCHAR",
    pl.Float64: "DOUBLE",
    pl.Int32: "INTEGER",
    pl.Int64: "BIGINT",
    pl.Date: "DATE",
    pl.Boolean: "BOOLEAN",
    pl.Datetime: "TIMESTAMPTZ",
}


def duck_type(dtype: pl.DataType) -> str:
    return _DUCK_TYPES[dtype.base_type()]


def create_table_sql(table: Table) -> str:
    cols = ",\n  ".join(f"{quote_ident(c)} {duck_type(t)}" for c, t in table.all_columns.items())
    return f"CREATE TABLE IF NOT EXISTS {quote_ident(table.name)} (\n  {cols}\n)"


class WarehouseInUse(EujpError):
    """Another process has the warehouse file open (DuckDB's lock on the file): a run cannot write it."""


# DuckDB's message when another process holds its lock on a file: 'Could not set lock on file "...": Conflicting
# lock is held in /usr/bin/python3.11 (PID 31770). However, you would be able to open this database in read-only
# mode, ...' (the program and PID where the system says them)
_FILE_LOCKED = "Could not set lock on file"
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


def file_lock_holder(exc: BaseException) -> tuple[bool, int | None, str | None]:
    """From DuckDB's error opening a file: (whether another process holds the file's lock, its pid, its
    program; None where DuckDB does not say them)."""
    text = str(exc)
    if _FILE_LOCKED not in text:
        return False, None, None
    match = _LOCK_HOLDER.search(text)
    return True, (int(match["pid"]) if match else None), (match["program"] if match else None)


def in_use_message(warehouse_path: Path, pid: int | None, program: str | None) -> str:
    """What to do about another process having the warehouse open, in place of DuckDB's message (which names
    the path opened, a staging link say, and advises read-only mode, which a run that writes cannot use)."""
    who = f"another process (pid {pid}{f', {program}' if program else ''})" if pid else "another process"
    return (f"{who} has the warehouse {warehouse_path} open: it must close it before a run can write the "
            "warehouse (DuckDB lets no process write a file that another one has open, even read-only; "
            "readers read the published run)")


def connect(path: Path, read_only: bool = False, *, warehouse_path: Path | None = None) -> duckdb.DuckDBPyConnection:
    """A connection to the DuckDB file `path` (its folder made), with the run's memory limit. A file another
    process has open is WarehouseInUse naming that process and `warehouse_path` (the live warehouse, when
    `path` is a staging link of it; default `path`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        locked, pid, program = file_lock_holder(exc)
        if locked:
            raise WarehouseInUse(in_use_message(warehouse_path or path, pid, program)) from exc
        raise EujpError(f"cannot open warehouse {path}: {exc}") from exc
    conn.execute(f"SET memory_limit = '{duckdb_memory_limit()}'")  # checked against a size pattern
    return in_utc(conn)


def open_elsewhere(warehouse_path: Path) -> tuple[int | None, str | None] | None:
    """Whether another process has the existing warehouse file open, as DuckDB's lock on the file says: (its
    pid, its program), or None (no lock on it, no such file, or not on Linux). DuckDB locks a file it opens with
    fcntl (a read lock read-only, a write lock for writing); this asks the kernel which lock would stop a write
    lock (F_GETLK) and takes none itself, so it never stands in the way of a run, which a test open would for as
    long as it held the file. (This process holds no DuckDB lock on the file here: closing the descriptor would
    drop it.)"""
    import fcntl
    import struct
    import sys

    if sys.platform != "linux" or not warehouse_path.is_file():
        return None
    layout = "hhqqi4x"  # Linux's struct flock: l_type, l_whence, l_start, l_len, l_pid (64-bit off_t)
    try:
        fd = os.open(warehouse_path, os.O_RDONLY)
    except OSError:
        return None
    try:
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack(layout, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
    except OSError:
        return None
    finally:
        os.close(fd)
    kind, _, _, _, pid = struct.unpack(layout, answer)
    if kind == fcntl.F_UNLCK or pid <= 0:
        return None
    try:
        program = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        program = None
    return pid, program


def create_tables(conn: duckdb.DuckDBPyConnection, tables: Iterable[Table]) -> None:
    """Create the missing ones of `tables` and (re)write their comments so BI tools show descriptions (the
    whole warehouse: eujp.tables.ensure_schema).

    A derived table (`Table.rebuilt`: references, built dimensions, marts) whose columns differ from its
    declaration is dropped and recreated: its rows are rebuilt every run anyway.

    The catalog (columns and comments of every table) is read once for all of them: a read per table cost
    three catalog queries a table, ~0.3 s for the warehouse's tables in every run."""
    described = described_tables(conn)
    for table in tables:
        known = described.get(table.name)
        existing = list(known.columns) if known else []
        if table.rebuilt and existing and existing != list(table.all_columns):
            conn.execute(f"DROP TABLE {quote_ident(table.name)}")
            known = None  # a new table: no comments yet
        elif existing:  # a kept table (facts, ETL) declared with more columns since: add them, rows kept (nulls)
            for col, dtype in table.all_columns.items():
                if col not in existing:
                    conn.execute(f"ALTER TABLE {quote_ident(table.name)} ADD COLUMN {quote_ident(col)} "
                                 f"{duck_type(dtype)}")
        conn.execute(create_table_sql(table))
        write_comments(conn, table, known or DescribedTable(None, {}))


@dataclass(frozen=True)
class DescribedTable:
    """A table as the catalog describes it: its comment, and its columns in order, each (type, comment)."""

    comment: str | None
    columns: dict[str, tuple[str, str | None]]

    @property
    def column_types(self) -> list[tuple[str, str]]:
        return [(name, dtype) for name, (dtype, _) in self.columns.items()]


def described_tables(conn: duckdb.DuckDBPyConnection, database: str | None = None,
                     schema: str | None = None) -> dict[str, DescribedTable]:
    """{table: DescribedTable} of a schema (default: the connection's current database and schema; views are
    left out), in two reads of the catalog whatever the number of tables: with a lake attached, each read
    of duckdb_columns() costs ~20 ms, so a read per table cost a run ~0.3 s and a lake commit 0.6-1.0 s."""
    where = ("database_name = coalesce(?, current_database()) AND schema_name = coalesce(?, current_schema())")
    out = {name: DescribedTable(comment, {}) for name, comment in conn.execute(
        f"SELECT table_name, comment FROM duckdb_tables() WHERE {where}", [database, schema]).fetchall()}
    for name, column, dtype, comment in conn.execute(
            f"SELECT table_name, column_name, data_type, comment FROM duckdb_columns() WHERE {where} "
            "ORDER BY table_name, column_index", [database, schema]).fetchall():
        if name in out:  # views have columns too
            out[name].columns[column] = (dtype, comment)
    return out


def write_comments(conn: duckdb.DuckDBPyConnection, table: Table, current: DescribedTable | None = None) -> None:
    """COMMENT ON the table and every documented column (Table.docs) whose comment differs. (Rewriting the
    same ~400 comments cost every run, unchanged days included, about 2 s of catalog writes.) `current`: the
    table as the catalog has it (read here when not given)."""
    if current is None:
        current = described_tables(conn).get(table.name)
    comment, columns = (current.comment, current.columns) if current is not None else (None, {})
    name = quote_ident(table.name)
    if comment != table.description:
        conn.execute(f"COMMENT ON TABLE {name} IS {sql_string(table.description)}")
    for col, doc in table.docs.items():
        if columns.get(col, (None, None))[1] != doc:
            conn.execute(f"COMMENT ON COLUMN {name}.{quote_ident(col)} IS {sql_string(doc)}")


def open_staging(warehouse_path: Path, staging_dir: Path, run_id: str) -> Path:
    """This run's staging path, `staging/{run_id}.duckdb`: a hard link to the live warehouse (the same file,
    so nothing is copied; its write-ahead log beside the link), a copy where the file system refuses hard
    links, or nothing yet when there is no live warehouse (the run creates it there)."""
    staging_dir.mkdir(parents=True, exist_ok=True)
    staging = staging_dir / f"{run_id}.duckdb"
    discard_staging(staging)
    if warehouse_path.exists():
        try:
            os.link(warehouse_path, staging)
            return staging
        except OSError:  # no hard links here (another file system, FAT, some network mounts): copy
            pass
        try:
            shutil.copyfile(warehouse_path, staging)
        except OSError as exc:
            discard_staging(staging)  # a partial copy (e.g. the disk filled up) must not linger
            raise EujpError(f"cannot stage warehouse {warehouse_path} into {staging_dir}: {exc}; "
                            "the live warehouse is unchanged") from exc
    return staging


def is_linked(staging: Path, warehouse_path: Path) -> bool:
    """The staging path is the live warehouse itself (a hard link: `open_staging`)."""
    try:
        return os.path.samefile(staging, warehouse_path)
    except OSError:
        return False


def connect_staging(staging: Path, warehouse_path: Path | None = None) -> duckdb.DuckDBPyConnection:
    """A read-write connection to a staging path that never checkpoints by itself: not when the log grows
    (checkpoint_threshold), not when it closes (disable_checkpoint_on_shutdown). Until `promote` checkpoints,
    the run's commits live only in `{staging}.wal`, beside the link, not in the live file. The live file
    open in another process (the link is the same file) is WarehouseInUse naming `warehouse_path`."""
    conn = connect(staging, warehouse_path=warehouse_path)
    conn.execute("SET checkpoint_threshold = '1000TB'")
    conn.execute("PRAGMA disable_checkpoint_on_shutdown")
    return conn


def promote(staging: Path, warehouse_path: Path, conn: duckdb.DuckDBPyConnection | None = None) -> None:
    """Make the audited staging warehouse the live one.

    Linked (`open_staging`): CHECKPOINT through `conn`, the open connection of the link (or, given none, a
    new connection to the link, which replays its log first): DuckDB writes the
    run's blocks, then switches the file's header in one write, so the live file holds either the previous
    run or this one whole; then the link and its (now empty) log are removed. Otherwise (a new file or a
    copy): checkpoint, close, and atomically rename the staging file over the live one."""
    if conn is not None:
        conn.execute("CHECKPOINT")
    if is_linked(staging, warehouse_path):
        if conn is None:  # closed by the caller: open the link again (its log replayed) and checkpoint it
            with connect(staging) as again:
                again.execute("CHECKPOINT")
        else:
            conn.close()
        discard_staging(staging)
        return
    if conn is not None:
        conn.close()
    with open(staging, "rb") as f:
        os.fsync(f.fileno())
    os.replace(staging, warehouse_path)
    dir_fd = os.open(warehouse_path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def discard_staging(staging: Path) -> None:
    """Remove the staging path and its write-ahead log(s): for a link, the live warehouse is untouched (the
    run's commits were only in the log)."""
    for p in (staging, *staging.parent.glob(f"{staging.name}.wal*")):
        p.unlink(missing_ok=True)


def clean_stale_staging(staging_dir: Path, keep: Iterable[Path] = (),
                        logger: logging.Logger | None = None) -> list[Path]:
    """Remove staging files left by killed runs (called by the next run while it holds the lock, before it
    spills anything): their staging links and logs (and DuckDB's spill folders beside them, `{link}.tmp`), and
    the folders they spilled into (SPILL_FOLDER, where Settings.spill_dir puts a run's spilled chunks).
    `staging_dir` is one warehouse's (Settings.staging_dir): another warehouse's runs, which may be writing
    now, keep theirs elsewhere. What it removed is returned, and said in one line on `logger` (default: the
    eujp.warehouse logger)."""
    keep = {p.resolve() for p in keep}
    removed = []
    if staging_dir.is_dir():
        for p in staging_dir.glob("*.duckdb*"):
            if p.resolve() not in keep:
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
                removed.append(p)
        for p in sorted((staging_dir / SPILL_FOLDER).glob("eujp-*")):
            if p.resolve() not in keep:
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
    if removed:
        (logger or log).info("removed %d stale staging file(s) and folder(s) that killed run(s) left in %s: %s",
                             len(removed), staging_dir, ", ".join(p.name for p in removed))
    return removed


def replace_dimension(conn: duckdb.DuckDBPyConnection, table: Table, frame: pl.DataFrame) -> int:
    """Reference dimensions are small and versioned in git: replace them whole."""
    frame = frame.select(list(table.all_columns))
    conn.register("_dim_batch", frame.to_arrow())
    try:
        conn.execute(f"DELETE FROM {quote_ident(table.name)}")
        conn.execute(f"INSERT INTO {quote_ident(table.name)} SELECT * FROM _dim_batch")
    finally:
        conn.unregister("_dim_batch")
    return frame.height


ARROW_BATCH_ROWS = 250_000


def arrow_batches(frame: pl.DataFrame):
    """`frame` as an Arrow table of record batches of at most ARROW_BATCH_ROWS rows (zero-copy slices):
    DuckDB scans one record batch per thread, so a 5M-row frame in one chunk would insert on one core."""
    import pyarrow as pa

    table = frame.to_arrow()
    return pa.Table.from_batches(table.to_batches(max_chunksize=ARROW_BATCH_ROWS), schema=table.schema)


def upsert_labels(conn: duckdb.DuckDBPyConnection, table: Table, frame: pl.DataFrame, *, run_id: str,
                  loaded_at: datetime) -> int:
    """Upsert a source's label rows (eujp.sources.base.LabelFeed) by the table's natural key, stamping
    `run_id` and `loaded_at`; a code the feed no longer lists keeps its last label. Returns rows written."""
    t = quote_ident(table.name)
    cols = list(table.all_columns)
    stamped = frame.with_columns(pl.lit(run_id).alias("run_id"),
                                 pl.lit(loaded_at, dtype=table.all_columns["loaded_at"]).alias("loaded_at"))
    conn.register("_label_batch", arrow_batches(stamped.select(cols)))
    try:
        key_match = " AND ".join(f"{t}.{quote_ident(k)} = b.{quote_ident(k)}" for k in table.natural_key)
        conn.execute(f"DELETE FROM {t} WHERE EXISTS (SELECT 1 FROM _label_batch AS b WHERE {key_match})")
        conn.execute(f"INSERT INTO {t} ({', '.join(quote_ident(c) for c in cols)}) "
                     f"SELECT {', '.join(quote_ident(c) for c in cols)} FROM _label_batch")
    finally:
        conn.unregister("_label_batch")
    return stamped.height


def upsert_fact(
    conn: duckdb.DuckDBPyConnection,
    table: Table,
    frame: pl.DataFrame | str,
    *,
    run_id: str,
    loaded_at: datetime,
    source: str,
    replace_scope: tuple[str, ...] | None = None,
    keep: pl.DataFrame | None = None,
) -> int:
    """Load a validated batch idempotently.

    Rows with the batch's natural keys are replaced. With `replace_scope`, the source's rows in the
    batch's scope are replaced first: `()` replaces every row of that source (a full extract such as
    the SIPRI register), `("period_year",)` every row of the years the batch holds.

    `keep`: natural keys (the table's key columns) whose rows stay as they are whatever the scope: the keys
    the batch carried twice with different content (TransformResult.conflicts). Nothing says which new
    version is right, so a conflict never removes the row loaded before; a key with no previous row stays
    absent. The same rule under every replace scope.

    Before anything is replaced, every `table.revision_columns` value that the batch changes for an
    existing natural key is recorded in etl_revisions (see `record_revisions`).

    `frame` may also be a relation DuckDB reads (SQL text, e.g. `read_parquet([...])` of a streamed batch's
    chunks: eujp.pipeline), so that a batch larger than memory is upserted at once, out of core. Returns the
    rows of the batch.
    """
    t = quote_ident(table.name)
    cols = list(table.business_columns)
    protect = keep is not None and not keep.is_empty() and bool(table.natural_key)
    if isinstance(frame, str):
        conn.execute(f"CREATE OR REPLACE TEMP VIEW _fact_batch AS SELECT {', '.join(map(quote_ident, cols))} "
                     f"FROM {frame}")
        rows = conn.execute("SELECT count(*) FROM _fact_batch").fetchone()[0]
    else:
        conn.register("_fact_batch", arrow_batches(frame.select(cols)))
        rows = frame.height
    if protect:
        conn.register("_fact_keep", keep.select(list(table.natural_key)).to_arrow())
    try:
        record_revisions(conn, table, "_fact_batch", run_id=run_id, at=loaded_at, source=source)
        if replace_scope is not None:
            where = "source = ?"
            if replace_scope:
                same = " AND ".join(f"{t}.{quote_ident(c)} = b.{quote_ident(c)}" for c in replace_scope)
                where += f" AND EXISTS (SELECT 1 FROM _fact_batch AS b WHERE {same})"
            if protect:
                kept = " AND ".join(f"{t}.{quote_ident(k)} = k.{quote_ident(k)}" for k in table.natural_key)
                where += f" AND NOT EXISTS (SELECT 1 FROM _fact_keep AS k WHERE {kept})"
            conn.execute(f"DELETE FROM {t} WHERE {where}", [source])
        key_match = " AND ".join(f"{t}.{quote_ident(k)} = b.{quote_ident(k)}" for k in table.natural_key)
        # The rows the batch replaces, found by a join into a temporary table of their row ids, then deleted by
        # row id: `DELETE ... USING` the batch ran out of memory under the default EUJP_DUCKDB_MEMORY_LIMIT
        # re-upserting 50M facts over themselves (100M wire rows), where these two steps peaked at 1.88 GiB
        # (benchmarks/RESULTS.md, thirteenth session).
        conn.execute(f"CREATE OR REPLACE TEMP TABLE _fact_replaced AS SELECT {t}.rowid AS row_id "
                     f"FROM {t} JOIN _fact_batch AS b ON {key_match}")
        conn.execute(f"DELETE FROM {t} WHERE rowid IN (SELECT row_id FROM _fact_replaced)")
        col_list = ", ".join(quote_ident(c) for c in cols)
        with insertion_unordered(conn):
            conn.execute(
                f"INSERT INTO {t} ({col_list}, run_id, loaded_at) SELECT {col_list}, ?, ? FROM _fact_batch",
                [run_id, loaded_at],
            )
    finally:
        # When a statement above aborted the transaction, these fail too (its rollback drops what it made):
        # the error that aborted it is the one that propagates.
        with contextlib.suppress(duckdb.TransactionException):
            conn.execute("DROP TABLE IF EXISTS _fact_replaced")
        with contextlib.suppress(duckdb.TransactionException):
            if isinstance(frame, str):
                conn.execute("DROP VIEW IF EXISTS _fact_batch")
            else:
                conn.unregister("_fact_batch")
        if protect:
            with contextlib.suppress(duckdb.TransactionException):
                conn.unregister("_fact_keep")
        release_unused_memory()  # the batch's Arrow copy
    return rows


@contextlib.contextmanager
def insertion_unordered(conn: duckdb.DuckDBPyConnection, *, fsst: bool = False) -> Iterator[None]:
    """Inserts in the block run unordered and (unless `fsst`) without FSST; the settings are put back after it.

    The order of a table's rows means nothing: letting DuckDB ignore the source's order makes an insert parallel
    and writes compressed row groups at once (on 5M rows: -30% CPU, no checkpoint work). FSST is left out of the
    compression DuckDB tries on the rows inserted unless `fsst`: a fact table's strings are short codes that
    dictionary compression stores as well, and trying FSST on every segment was ~10% of the insert (5M Comext
    rows: 6.0 s -> 5.4 s, the same 68 MB; benchmarks/RESULTS.md). Long text that is unique per row (a JSON key)
    needs it."""
    keep_order, disabled = conn.execute(
        "SELECT current_setting('preserve_insertion_order'), current_setting('disabled_compression_methods')"
    ).fetchone()
    conn.execute("SET preserve_insertion_order = false")
    if not fsst:
        conn.execute(f"SET disabled_compression_methods = {sql_string(_without_fsst(disabled))}")
    try:
        yield
    finally:
        # After a statement that aborted the transaction DuckDB refuses these too: the error that aborted it is
        # the one that propagates (the caller rolls back, and a failed load's connection is not used again).
        with contextlib.suppress(duckdb.TransactionException):
            conn.execute(f"SET preserve_insertion_order = {'true' if keep_order else 'false'}")
            conn.execute(f"SET disabled_compression_methods = {sql_string(disabled or '')}")


def _without_fsst(disabled: str | None) -> str:
    """The `disabled_compression_methods` setting `disabled` with FSST (and DICT_FSST, its dictionary variant)
    added."""
    methods = [m.strip() for m in (disabled or "").split(",") if m.strip()]
    return ",".join(dict.fromkeys([*methods, "fsst", "dict_fsst"]))


def count_present(conn: duckdb.DuckDBPyConnection, table: Table, keys: pl.DataFrame | None, *, source: str) -> int:
    """How many of the natural keys in `keys` (the table's key columns) the source has a row for in `table`:
    before a load, the conflicting keys (TransformResult.conflicts) that keep their previous version."""
    if keys is None or keys.is_empty() or not table.natural_key:
        return 0
    t = quote_ident(table.name)
    match = " AND ".join(f"{t}.{quote_ident(k)} = k.{quote_ident(k)}" for k in table.natural_key)
    conn.register("_present_keys", keys.select(list(table.natural_key)).unique().to_arrow())
    try:
        return conn.execute(f"SELECT count(*) FROM _present_keys AS k WHERE EXISTS "
                            f"(SELECT 1 FROM {t} WHERE {t}.source = ? AND {match})", [source]).fetchone()[0]
    finally:
        conn.unregister("_present_keys")


def codes_without_rows(conn: duckdb.DuckDBPyConnection, table: Table, column: str, codes: Sequence[str], *,
                       run_id: str, source: str) -> list[str]:
    """The `codes` (sorted, each once) that no row of `table` the run `run_id` wrote for `source` holds in `column`:
    one anti-join of the codes against the run's rows, however many codes (a list of CN8 codes added)."""
    if not codes:
        return []
    t, c = quote_ident(table.name), quote_ident(column)
    rows = conn.execute(
        f"SELECT code FROM (SELECT DISTINCT unnest(?::VARCHAR[]) AS code) AS added WHERE NOT EXISTS "
        f"(SELECT 1 FROM {t} WHERE {t}.run_id = ? AND {t}.source = ? AND {t}.{c} = added.code) ORDER BY code",
        [list(codes), run_id, source]).fetchall()
    return [r[0] for r in rows]


def record_revisions(
    conn: duckdb.DuckDBPyConnection, table: Table, batch_view: str, *, run_id: str, at: datetime, source: str,
) -> int:
    """Record in etl_revisions every value of `table.revision_columns` that the rows in `batch_view`
    change for natural keys already in `table` (one join of batch vs existing rows). Returns the count."""
    if not table.revision_columns or not table.natural_key:
        return 0
    t, b = quote_ident(table.name), quote_ident(batch_view)
    on = " AND ".join(f"t.{quote_ident(k)} = b.{quote_ident(k)}" for k in table.natural_key)
    key_json = "to_json(struct_pack(" + ", ".join(f"{quote_ident(k)} := t.{quote_ident(k)}"
                                                  for k in table.natural_key) + "))::VARCHAR"
    pairs = ", ".join(f"t.{quote_ident(c)} AS {quote_ident('old_' + c)}, b.{quote_ident(c)} AS "
                      f"{quote_ident('new_' + c)}" for c in table.revision_columns)
    changes = " UNION ALL ".join(
        f"SELECT natural_key, '{c}' AS column_name, {quote_ident('old_' + c)}::DOUBLE AS old_value, "
        f"{quote_ident('new_' + c)}::DOUBLE AS new_value FROM joined "
        f"WHERE {quote_ident('old_' + c)} IS DISTINCT FROM {quote_ident('new_' + c)}"
        for c in table.revision_columns
    )
    before = conn.execute(f"SELECT count(*) FROM {quote_ident(ETL_REVISIONS.name)}").fetchone()[0]
    # A full revision records a row per revised value: 9.7M for 10M Comext wire rows. Unordered (a table's row
    # order means nothing: no sort of every key's JSON text) and in parallel: 15.5 s -> 6.9 s for those 9.7M
    # rows. FSST stays on: the keys' JSON text is long and alike, and without it 48M revisions took ~5 GB of the
    # warehouse file (benchmarks/RESULTS.md, fourteenth session).
    with insertion_unordered(conn, fsst=True):
        conn.execute(
            f"""INSERT INTO {quote_ident(ETL_REVISIONS.name)}
                (table_name, source, natural_key, column_name, old_value, new_value, run_id, revised_at)
            WITH joined AS (SELECT {key_json} AS natural_key, {pairs} FROM {t} AS t JOIN {b} AS b ON {on})
            SELECT ?, ?, natural_key, column_name, old_value, new_value, ?, ? FROM ({changes})""",
            [table.name, source, run_id, at],
        )
    return conn.execute(f"SELECT count(*) FROM {quote_ident(ETL_REVISIONS.name)}").fetchone()[0] - before


def record_rejected(
    conn: duckdb.DuckDBPyConnection, *, run_id: str, source: str, table_name: str,
    rejected: pl.DataFrame, at: datetime,
) -> int:
    if rejected.is_empty():
        return 0
    frame = rejected.select(
        pl.lit(run_id).alias("run_id"), pl.lit(source).alias("source"), pl.lit(table_name).alias("table_name"),
        pl.col("reason"), pl.col("raw_record"), pl.lit(at).cast(pl.Datetime("us", "UTC")).alias("rejected_at"),
    )
    conn.register("_rejected", frame.to_arrow())
    try:
        conn.execute(f"INSERT INTO {quote_ident(ETL_REJECTED_ROWS.name)} SELECT * FROM _rejected")
    finally:
        conn.unregister("_rejected")
    return frame.height


def record_rejected_files(
    conn: duckdb.DuckDBPyConnection, *, run_id: str, source: str, table_name: str, files: list[Path],
    at: datetime,
) -> int:
    """record_rejected of rejected rows spilled to Parquet files (eujp.pipeline.spill_rejected), read by DuckDB
    from the files (never all in memory at once); how many rows were recorded."""
    if not files:
        return 0
    paths = ", ".join(sql_string(str(p)) for p in files)
    return conn.execute(  # an INSERT answers the number of rows it inserted
        f"INSERT INTO {quote_ident(ETL_REJECTED_ROWS.name)} SELECT ?, ?, ?, reason, raw_record, ? "
        f"FROM read_parquet([{paths}])", [run_id, source, table_name, at]).fetchone()[0]


def record_run(conn: duckdb.DuckDBPyConnection, row: dict) -> None:
    cols = list(ETL_RUNS.columns)
    missing = set(cols) - set(row)
    if missing:
        raise ValueError(f"etl_runs row lacks {sorted(missing)}")
    conn.execute(
        f"DELETE FROM {quote_ident(ETL_RUNS.name)} WHERE run_id = ? AND source = ?", [row["run_id"], row["source"]]
    )
    conn.execute(
        f"INSERT INTO {quote_ident(ETL_RUNS.name)} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
        [row[c] for c in cols],
    )


def table_exists(conn: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether the connection's current database and schema hold a table `name` (not one of another attached
    database of the same name)."""
    return bool(conn.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND database_name = "
                             "current_database() AND schema_name = current_schema()", [name]).fetchone()[0])


def read_source_state(conn: duckdb.DuckDBPyConnection, source: str) -> SourceState | None:
    """The source's etl_source_state row as an eujp.incremental.SourceState, None if absent."""
    exists = conn.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [ETL_SOURCE_STATE.name]
    ).fetchone()[0]
    if not exists:
        return None
    present = {r[0] for r in conn.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = ?", [ETL_SOURCE_STATE.name]).fetchall()}
    # a warehouse written before a column was declared (read before ensure_schema adds it): that column is null
    cols = list(ETL_SOURCE_STATE.columns)
    row = conn.execute(
        f"SELECT {', '.join(quote_ident(c) if c in present else 'NULL' for c in cols)} "
        f"FROM {quote_ident(ETL_SOURCE_STATE.name)} WHERE source = ?", [source],
    ).fetchone()
    return SourceState(**dict(zip(cols, row, strict=True))) if row else None


def read_state(warehouse_path: Path, source: str) -> SourceState | None:
    """The source's state in the live warehouse (read-only), None when there is none yet.

    Called during extraction, before the run's staging copy exists; the run lock keeps writers out.
    An unreadable warehouse counts as no state (full extraction), never as an error of the source."""
    if not warehouse_path.exists():
        return None
    try:
        with in_utc(duckdb.connect(str(warehouse_path), read_only=True)) as conn:  # its times in UTC
            return read_source_state(conn, source)
    except duckdb.Error:
        return None


def write_source_state(conn: duckdb.DuckDBPyConnection, state: SourceState) -> None:
    """Replace the source's etl_source_state row with `state` (an eujp.incremental.SourceState)."""
    cols = list(ETL_SOURCE_STATE.columns)
    conn.execute(f"DELETE FROM {quote_ident(ETL_SOURCE_STATE.name)} WHERE source = ?", [state.source])
    conn.execute(
        f"INSERT INTO {quote_ident(ETL_SOURCE_STATE.name)} ({', '.join(quote_ident(c) for c in cols)}) "
        f"VALUES ({', '.join('?' for _ in cols)})",
        [getattr(state, c) for c in cols],
    )


def count_rows(conn: duckdb.DuckDBPyConnection, tables: Iterable[Table]) -> dict[str, int]:
    """Rows per table of `tables` (every table of the warehouse: eujp.tables.table_counts)."""
    return {t.name: conn.execute(f"SELECT count(*) FROM {quote_ident(t.name)}").fetchone()[0] for t in tables}


def duplicate_keys(conn: duckdb.DuckDBPyConnection, table: Table) -> int:
    """Number of natural-key values that occur more than once (0 in a healthy warehouse)."""
    if not table.natural_key:
        return 0
    t = quote_ident(table.name)
    keys = ", ".join(quote_ident(k) for k in table.natural_key)
    rows = conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
    if not repeated_key_hashes(conn, t, keys, rows=rows)[1]:
        return 0
    return conn.execute(f"SELECT count(*) FROM (SELECT {keys} FROM {t} GROUP BY ALL HAVING count(*) > 1)").fetchone()[0]


KEYS_PER_PASS = 4_000_000
"""Keys one pass of `repeated_key_hashes` groups: DuckDB's hash aggregate holds ~70 B a key, so a pass stays near
0.3 GB however large the table. Measured over 25M Comext-shaped keys under the run's 1.5 GB limit (standalone,
benchmarks/RESULTS.md, seventh session): one pass of every key filled the limit (1.2-1.46 GB); passes of 4M keys
(seven) peaked at 0.47 GB in about the time of one (6.1 s against 4.0-6.0 s); 2M keys a pass 0.35 GB, 7.2-7.7 s."""


def repeated_key_hashes(conn: duckdb.DuckDBPyConnection, relation: str, keys: str, *, rows: int,
                        where: str = "TRUE", params: Sequence[Any] = (), run_id: str | None = None) -> tuple[int, int]:
    """(rows of `relation` that meet `where`, 64-bit hashes of the key `keys` that occur more than once among
    them; with `run_id`: only hashes whose rows include one of that run). Equal keys hash equal, so 0 proves
    that no key repeats; grouping by one integer is several times cheaper than by the key's strings (5M Comext
    keys: ~0.9 s -> ~0.25 s). A repeated hash (a duplicate, or a collision) sends the caller to an exact count
    on the keys.

    Bounded memory: the hash range is cut into ceil(`rows` / KEYS_PER_PASS) equal slices, grouped one slice at
    a time (each pass scans `relation` again; equal keys fall in the same slice). `rows` is an upper bound of
    the rows `where` keeps (a table's count(*) will do)."""
    passes = max(1, -(-rows // KEYS_PER_PASS))
    step = (1 << 64) // passes
    having = "count(*) > 1" + (" AND bool_or(run_id = ?)" if run_id is not None else "")
    considered = repeated = 0
    for i in range(passes):
        # the last slice is open-ended: it takes the few hashes that (1 << 64) // passes leaves over
        sliced = "" if passes == 1 else f" AND _h >= {i * step}::UBIGINT" + (
            f" AND _h < {(i + 1) * step}::UBIGINT" if i < passes - 1 else "")
        n, r = conn.execute(
            f"SELECT coalesce(sum(_n), 0), count(*) FILTER (WHERE _r) FROM (SELECT count(*) AS _n, {having} AS _r "
            f"FROM (SELECT hash({keys}) AS _h{', run_id' if run_id is not None else ''} FROM {relation} "
            f"WHERE {where}) WHERE TRUE{sliced} GROUP BY _h)",
            [*([run_id] if run_id is not None else []), *params]).fetchone()  # in the order of the `?`s
        considered, repeated = considered + int(n), repeated + int(r)
    return considered, repeated


def duplicate_keys_of_run(conn: duckdb.DuckDBPyConnection, table: Table, run_id: str) -> int:
    """Natural-key values that occur more than once among those of the rows run `run_id` wrote: the only
    duplicates a run can add to a table whose keys were unique. A run that wrote a small part of the table (a
    day's month) is checked by a semi-join of the table with its keys, not a GROUP BY of every key; a run that
    wrote much of it (a first or full load) by the hashes of every key in bounded passes
    (`repeated_key_hashes`), then, only if a hash repeats, one GROUP BY of every key, which DuckDB spills to disk
    beyond its memory limit, where the semi-join's hash table of every key did not (out of memory at 25M keys
    under 1.5 GB)."""
    if not table.natural_key:
        return 0
    t = quote_ident(table.name)
    keys = ", ".join(quote_ident(k) for k in table.natural_key)
    written, total = conn.execute(f"SELECT count(*) FILTER (WHERE run_id = ?), count(*) FROM {t}",
                                  [run_id]).fetchone()
    if written == 0:
        return 0
    if written * 4 >= total:
        if not repeated_key_hashes(conn, t, keys, rows=total, run_id=run_id)[1]:
            return 0
        return conn.execute(
            f"SELECT count(*) FROM (SELECT {keys} FROM {t} GROUP BY ALL HAVING count(*) > 1 "
            "AND bool_or(run_id = ?))", [run_id]).fetchone()[0]
    return conn.execute(
        f"SELECT count(*) FROM (SELECT {keys} FROM {t} SEMI JOIN (SELECT DISTINCT {keys} FROM {t} WHERE run_id = ?)"
        f" AS written USING ({keys}) GROUP BY ALL HAVING count(*) > 1)", [run_id]).fetchone()[0]


def last_successful_checksum(conn: duckdb.DuckDBPyConnection, source: str) -> str | None:
    row = conn.execute(
        "SELECT input_checksum FROM etl_runs WHERE source = ? AND status = 'success' "
        "ORDER BY ended_at DESC LIMIT 1",
        [source],
    ).fetchone()
    return row[0] if row else None


def read_countries(conn: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return conn.execute(f"SELECT * FROM {quote_ident(DIM_COUNTRY.name)}").pl()
