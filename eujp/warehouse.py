"""DuckDB warehouse operations on declared tables (which tables exist: eujp.tables): DDL, staging copies, idempotent loads, run records, promotion.

Write-audit-publish locally: a run never writes the live warehouse file. It copies it to
`staging/{run_id}.duckdb`, loads and audits there, then atomically renames the staging file over the
live one (`promote`). A run killed at any point leaves the live warehouse as the last good run left it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

from eujp.config import duckdb_memory_limit
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


def quote_ident(name: str) -> str:
    """Identifiers come from the table declarations only; quote them anyway and refuse anything odd."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"refusing identifier {name!r}")
    return f'"{name}"'


def create_table_sql(table: Table) -> str:
    cols = ",\n  ".join(f"{quote_ident(c)} {duck_type(t)}" for c, t in table.all_columns.items())
    return f"CREATE TABLE IF NOT EXISTS {quote_ident(table.name)} (\n  {cols}\n)"


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def connect(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        raise EujpError(f"cannot open warehouse {path}: {exc}") from exc
    conn.execute(f"SET memory_limit = '{duckdb_memory_limit()}'")  # checked against a size pattern
    return conn


def create_tables(conn: duckdb.DuckDBPyConnection, tables: Iterable[Table]) -> None:
    """Create the missing ones of `tables` and (re)write their comments so BI tools show descriptions (the
    whole warehouse: eujp.tables.ensure_schema).

    A derived table (`Table.rebuilt`: references, built dimensions, marts) whose columns differ from its
    declaration is dropped and recreated: its rows are rebuilt every run anyway."""
    for table in tables:
        if table.rebuilt:
            existing = [r[0] for r in conn.execute(
                "SELECT column_name FROM duckdb_columns() WHERE table_name = ? AND schema_name = current_schema() "
                "AND database_name = current_database() ORDER BY column_index", [table.name]).fetchall()]
            if existing and existing != list(table.all_columns):
                conn.execute(f"DROP TABLE {quote_ident(table.name)}")
        conn.execute(create_table_sql(table))
        write_comments(conn, table)


def write_comments(conn: duckdb.DuckDBPyConnection, table: Table) -> None:
    """COMMENT ON the table and every documented column (Table.docs) whose comment differs. (Rewriting the
    same ~400 comments cost every run, unchanged days included, about 2 s of catalog writes.)"""
    where = "table_name = ? AND schema_name = current_schema() AND database_name = current_database()"
    current = conn.execute(f"SELECT comment FROM duckdb_tables() WHERE {where}", [table.name]).fetchone()
    if current is None or current[0] != table.description:
        conn.execute(f"COMMENT ON TABLE {quote_ident(table.name)} IS {_sql_string(table.description)}")
    columns = dict(conn.execute(f"SELECT column_name, comment FROM duckdb_columns() WHERE {where}",
                                [table.name]).fetchall())
    for col, doc in table.docs.items():
        if columns.get(col) != doc:
            conn.execute(f"COMMENT ON COLUMN {quote_ident(table.name)}.{quote_ident(col)} IS {_sql_string(doc)}")


def open_staging(warehouse_path: Path, staging_dir: Path, run_id: str) -> Path:
    """Copy the live warehouse (if any) to a staging file for this run and return its path."""
    staging_dir.mkdir(parents=True, exist_ok=True)
    staging = staging_dir / f"{run_id}.duckdb"
    for leftover in (staging, staging.with_suffix(".duckdb.wal")):
        leftover.unlink(missing_ok=True)
    if warehouse_path.exists():
        try:
            shutil.copyfile(warehouse_path, staging)
        except OSError as exc:
            discard_staging(staging)  # a partial copy (e.g. the disk filled up) must not linger
            raise EujpError(f"cannot stage warehouse {warehouse_path} into {staging_dir}: {exc}; "
                            "the live warehouse is unchanged") from exc
    return staging


def promote(staging: Path, warehouse_path: Path) -> None:
    """Atomically replace the live warehouse with the (closed, checkpointed) staging file."""
    with open(staging, "rb") as f:
        os.fsync(f.fileno())
    os.replace(staging, warehouse_path)
    dir_fd = os.open(warehouse_path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def discard_staging(staging: Path) -> None:
    for p in (staging, staging.with_suffix(".duckdb.wal")):
        p.unlink(missing_ok=True)


def clean_stale_staging(staging_dir: Path, keep: Iterable[Path] = ()) -> list[Path]:
    """Remove staging files left by killed runs (called by the next run while it holds the lock)."""
    keep = {p.resolve() for p in keep}
    removed = []
    if staging_dir.is_dir():
        for p in staging_dir.glob("*.duckdb*"):
            if p.resolve() not in keep:
                p.unlink(missing_ok=True)
                removed.append(p)
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


def upsert_fact(
    conn: duckdb.DuckDBPyConnection,
    table: Table,
    frame: pl.DataFrame | str,
    *,
    run_id: str,
    loaded_at: datetime,
    source: str,
    replace_scope: tuple[str, ...] | None = None,
) -> int:
    """Load a validated batch idempotently.

    Rows with the batch's natural keys are replaced. With `replace_scope`, the source's rows in the
    batch's scope are replaced first: `()` replaces every row of that source (a full extract such as
    the SIPRI register), `("period_year",)` every row of the years the batch holds.

    Before anything is replaced, every `table.revision_columns` value that the batch changes for an
    existing natural key is recorded in etl_revisions (see `record_revisions`).

    `frame` may also be a relation DuckDB reads (SQL text, e.g. `read_parquet([...])` of a streamed batch's
    chunks: eujp.pipeline), so that a batch larger than memory is upserted at once, out of core. Returns the
    rows of the batch.
    """
    t = quote_ident(table.name)
    cols = list(table.business_columns)
    if isinstance(frame, str):
        conn.execute(f"CREATE OR REPLACE TEMP VIEW _fact_batch AS SELECT {', '.join(map(quote_ident, cols))} "
                     f"FROM {frame}")
        rows = conn.execute("SELECT count(*) FROM _fact_batch").fetchone()[0]
    else:
        conn.register("_fact_batch", arrow_batches(frame.select(cols)))
        rows = frame.height
    try:
        record_revisions(conn, table, "_fact_batch", run_id=run_id, at=loaded_at, source=source)
        if replace_scope is not None:
            where = "source = ?"
            if replace_scope:
                same = " AND ".join(f"{t}.{quote_ident(c)} = b.{quote_ident(c)}" for c in replace_scope)
                where += f" AND EXISTS (SELECT 1 FROM _fact_batch AS b WHERE {same})"
            conn.execute(f"DELETE FROM {t} WHERE {where}", [source])
        key_match = " AND ".join(f"{t}.{quote_ident(k)} = b.{quote_ident(k)}" for k in table.natural_key)
        conn.execute(f"DELETE FROM {t} USING _fact_batch AS b WHERE {key_match}")
        col_list = ", ".join(quote_ident(c) for c in cols)
        # The order of a table's rows means nothing: letting DuckDB ignore the batch's order makes the insert
        # parallel and writes compressed row groups at once (on 5M rows: -30% CPU, no checkpoint work).
        keep_order = conn.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0]
        conn.execute("SET preserve_insertion_order = false")
        try:
            conn.execute(
                f"INSERT INTO {t} ({col_list}, run_id, loaded_at) SELECT {col_list}, ?, ? FROM _fact_batch",
                [run_id, loaded_at],
            )
        finally:
            conn.execute(f"SET preserve_insertion_order = {'true' if keep_order else 'false'}")
    finally:
        if isinstance(frame, str):
            conn.execute("DROP VIEW IF EXISTS _fact_batch")
        else:
            conn.unregister("_fact_batch")
        release_unused_memory()  # the batch's Arrow copy
    return rows


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
    conn.execute(
        f"""INSERT INTO {quote_ident(ETL_REVISIONS.name)}
            (table_name, source, natural_key, column_name, old_value, new_value, run_id, revised_at)
        WITH joined AS (SELECT {key_json} AS natural_key, {pairs} FROM {t} AS t JOIN {b} AS b ON {on})
        SELECT ?, ?, natural_key, column_name, old_value, new_value, ?, ? FROM ({changes})
        ORDER BY natural_key, column_name""",
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


def read_source_state(conn: duckdb.DuckDBPyConnection, source: str) -> SourceState | None:
    """The source's etl_source_state row as an eujp.incremental.SourceState, None if absent."""
    exists = conn.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [ETL_SOURCE_STATE.name]
    ).fetchone()[0]
    if not exists:
        return None
    cols = list(ETL_SOURCE_STATE.columns)
    row = conn.execute(
        f"SELECT {', '.join(quote_ident(c) for c in cols)} FROM {quote_ident(ETL_SOURCE_STATE.name)} "
        "WHERE source = ?", [source],
    ).fetchone()
    return SourceState(**dict(zip(cols, row, strict=True))) if row else None


def read_state(warehouse_path: Path, source: str) -> SourceState | None:
    """The source's state in the live warehouse (read-only), None when there is none yet.

    Called during extraction, before the run's staging copy exists; the run lock keeps writers out.
    An unreadable warehouse counts as no state (full extraction), never as an error of the source."""
    if not warehouse_path.exists():
        return None
    try:
        with duckdb.connect(str(warehouse_path), read_only=True) as conn:
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
    keys = ", ".join(quote_ident(k) for k in table.natural_key)
    return conn.execute(
        f"SELECT count(*) FROM (SELECT {keys} FROM {quote_ident(table.name)} GROUP BY ALL HAVING count(*) > 1)"
    ).fetchone()[0]


def last_successful_checksum(conn: duckdb.DuckDBPyConnection, source: str) -> str | None:
    row = conn.execute(
        "SELECT input_checksum FROM etl_runs WHERE source = ? AND status = 'success' "
        "ORDER BY ended_at DESC LIMIT 1",
        [source],
    ).fetchone()
    return row[0] if row else None


def read_countries(conn: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return conn.execute(f"SELECT * FROM {quote_ident(DIM_COUNTRY.name)}").pl()
