"""Compare two warehouses table by table: the same tables, columns, types and comments, and the same rows.

    python -m eujp.compare A.duckdb B.duckdb      prints one line per table; exit 1 when they differ

Columns that say *when* or *in which run* a row was written (run ids, load and run times) differ between any
two runs and are left out of the row comparison (VOLATILE_COLUMNS), and a run id named in a text column
(etl_runs.message, RUN_ID_IN_TEXT) is left out of that text, as is what a live request asked for
(etl_source_state.request_scope: a replay of the raw zone does not know it and keeps what the state held, none
in a new warehouse, so the next live run cannot tell a widened request from the same one and extracts from
the watermark, as it did before scopes were recorded); everything else must match, row for row
(as multisets: EXCEPT ALL both ways). Used to check that a change of code leaves the bundled run's warehouse
as it was, and that a replay (`--from-raw`, `--as-of`) rebuilds what the live runs left (a rebuild's file also
holds its mark, etl_rebuild, which no daily run writes: that table is only on its side).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb

from eujp.sql import sql_string

VOLATILE_COLUMNS = frozenset({
    "run_id", "loaded_at", "started_at", "ended_at", "rejected_at", "revised_at", "last_success_at",
    "last_attempt_at", "requested_at", "built_run_id", "built_at", "audited_run_id", "audited_at",
    "request_scope", "last_run_id", "last_loaded_at",
})
# Text columns that name the run they were written by (etl_runs.message: "see etl_rejected_rows (run_id '…',
# ...)"): compared with that run id left out.
RUN_ID_IN_TEXT = {"message": r"run_id '[^']*'"}


@dataclass(frozen=True)
class TableDiff:
    table: str
    rows_a: int | None  # None: the table is missing on that side
    rows_b: int | None
    only_in_a: int = 0
    only_in_b: int = 0
    schema: str | None = None  # how the columns, types or comments differ

    @property
    def same(self) -> bool:
        return (self.rows_a is not None and self.rows_b is not None and not self.only_in_a and not self.only_in_b
                and self.schema is None)

    def line(self) -> str:
        if self.rows_a is None or self.rows_b is None:
            return f"{self.table}: only in {'B' if self.rows_a is None else 'A'}"
        text = f"{self.table}: {self.rows_a} / {self.rows_b} rows"
        if self.only_in_a or self.only_in_b:
            text += f", {self.only_in_a} only in A, {self.only_in_b} only in B"
        if self.schema:
            text += f"; {self.schema}"
        return text + ("" if not self.same else ": same")


def _columns(conn: duckdb.DuckDBPyConnection, db: str, table: str) -> list[tuple[str, str, str | None]]:
    return conn.execute(
        "SELECT column_name, data_type, comment FROM duckdb_columns() WHERE database_name = ? AND table_name = ? "
        "ORDER BY column_index", [db, table]).fetchall()


def _tables(conn: duckdb.DuckDBPyConnection, db: str) -> dict[str, str | None]:
    return dict(conn.execute("SELECT table_name, comment FROM duckdb_tables() WHERE database_name = ?",
                             [db]).fetchall())


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def compare_warehouses(a: Path, b: Path) -> list[TableDiff]:
    """One TableDiff per table of either warehouse, sorted by name."""
    conn = duckdb.connect()
    try:
        conn.execute(f"ATTACH '{Path(a).as_posix()}' AS wa (READ_ONLY)")
        conn.execute(f"ATTACH '{Path(b).as_posix()}' AS wb (READ_ONLY)")
        tables_a, tables_b = _tables(conn, "wa"), _tables(conn, "wb")
        diffs = []
        for table in sorted(tables_a.keys() | tables_b.keys()):
            count = "SELECT count(*) FROM {}.main.{}"
            rows_a = conn.execute(count.format("wa", _q(table))).fetchone()[0] if table in tables_a else None
            rows_b = conn.execute(count.format("wb", _q(table))).fetchone()[0] if table in tables_b else None
            if rows_a is None or rows_b is None:
                diffs.append(TableDiff(table, rows_a, rows_b))
                continue
            cols_a, cols_b = _columns(conn, "wa", table), _columns(conn, "wb", table)
            schema = None
            if cols_a != cols_b:
                changed = sorted({c for c in cols_a if c not in cols_b} | {c for c in cols_b if c not in cols_a})
                schema = f"columns differ: {changed}"
            elif tables_a[table] != tables_b[table]:
                schema = "table comments differ"
            names = [c[0] for c in cols_a if c[0] not in VOLATILE_COLUMNS and c in cols_b]
            select = ", ".join(
                f"regexp_replace({_q(n)}, {sql_string(RUN_ID_IN_TEXT[n])}, 'run_id', 'g')" if n in RUN_ID_IN_TEXT
                else _q(n)
                for n in names) or "1"
            diff = "SELECT count(*) FROM (SELECT {cols} FROM {x}.main.{t} EXCEPT ALL SELECT {cols} FROM {y}.main.{t})"
            only_a = conn.execute(diff.format(cols=select, x="wa", y="wb", t=_q(table))).fetchone()[0]
            only_b = conn.execute(diff.format(cols=select, x="wb", y="wa", t=_q(table))).fetchone()[0]
            diffs.append(TableDiff(table, rows_a, rows_b, only_a, only_b, schema))
        return diffs
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m eujp.compare A.duckdb B.duckdb", file=sys.stderr)
        return 2
    diffs = compare_warehouses(Path(args[0]), Path(args[1]))
    for d in diffs:
        print(d.line())
    different = [d.table for d in diffs if not d.same]
    print(f"{len(diffs) - len(different)} of {len(diffs)} tables the same"
          + (f"; differ: {', '.join(different)}" if different else ""))
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
