"""Building the model layer: every dimension and mart of eujp.marts.MODEL_TABLES, in order, from its SQL
(eujp/marts/{table}.sql; mart_claims from eujp/marts/claims/*.sql), on the staging warehouse."""

from __future__ import annotations

import duckdb

from eujp import marts
from eujp.errors import AuditFailed
from eujp.marts import CLAIMS_DIR, MART_CLAIMS, MODEL_TABLES, SQL_DIR
from eujp.schema import Table
from eujp.warehouse import create_table_sql, duplicate_keys, quote_ident, write_comments

VERDICTS = ("supported", "contradicted", "not enough data")


class MartBuildError(AuditFailed):
    """A mart's SQL failed, returned other columns than declared, or broke its natural key: nothing is
    promoted or published."""


def _result_columns(conn: duckdb.DuckDBPyConnection, sql: str, what: str) -> list[str]:
    try:
        return [d[0] for d in conn.execute(f"SELECT * FROM (\n{sql}\n) LIMIT 0").description]
    except duckdb.Error as exc:
        raise MartBuildError(f"{what}: the query failed: {exc}") from exc


def _fill(conn: duckdb.DuckDBPyConnection, table: Table, sql: str, what: str) -> int:
    expected = list(table.all_columns)
    got = _result_columns(conn, sql, what)
    if got != expected:
        raise MartBuildError(f"{what}: the query returns columns {got}, the table declares {expected}")
    t = quote_ident(table.name)
    conn.execute(f"DELETE FROM {t}")
    try:
        conn.execute(f"INSERT INTO {t} SELECT * FROM (\n{sql}\n)")
    except duckdb.Error as exc:
        raise MartBuildError(f"{what}: loading the result failed: {exc}") from exc
    return conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]


def claims_sql(conn: duckdb.DuckDBPyConnection) -> str:
    """mart_claims' query: every claim file's row plus the file's text as query_sql."""
    parts = []
    claim_columns = [c for c in MART_CLAIMS.all_columns if c != "query_sql"]
    for path in marts.claim_files():
        sql = path.read_text(encoding="utf-8").strip().rstrip(";")
        what = f"claim {path.name}"
        got = _result_columns(conn, sql, what)
        if got != claim_columns:
            raise MartBuildError(f"{what}: returns columns {got}, expected {claim_columns}")
        if got[0] != "claim_id":
            raise MartBuildError(f"{what}: first column must be claim_id")
        n = conn.execute(f"SELECT count(*), min(claim_id) FROM (\n{sql}\n)").fetchone()
        if n[0] != 1 or n[1] != path.stem:
            raise MartBuildError(f"{what}: must return exactly one row with claim_id = {path.stem!r}, got {n}")
        literal = "'" + sql.replace("'", "''") + "'"
        parts.append(f"SELECT *, {literal} AS query_sql FROM (\n{sql}\n)")
    if not parts:
        raise MartBuildError(f"no claim queries in {CLAIMS_DIR}")
    return "\nUNION ALL\n".join(parts)


def build_marts(conn: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """(Re)build every dimension and mart of MODEL_TABLES, in order; returns rows per table.

    Each table is created if missing, emptied and filled from its SQL, its comments rewritten, and its
    natural key checked. Raises MartBuildError (an AuditFailed: the run publishes nothing) on any error."""
    counts: dict[str, int] = {}
    for table in MODEL_TABLES:
        conn.execute(create_table_sql(table))
        write_comments(conn, table)
        if table is MART_CLAIMS:
            sql = claims_sql(conn)
        else:
            sql = marts.mart_sql(table).strip().rstrip(";")
        counts[table.name] = _fill(conn, table, sql, f"{table.name} ({SQL_DIR.name}/{table.name}.sql)")
        dups = duplicate_keys(conn, table)
        if dups:
            raise MartBuildError(f"{table.name}: {dups} natural key value(s) {table.natural_key} occur more than once")
    bad = conn.execute(
        f"SELECT claim_id, verdict FROM {quote_ident(MART_CLAIMS.name)} WHERE verdict NOT IN "
        f"({', '.join(repr(v) for v in VERDICTS)}) OR verdict IS NULL").fetchall()
    if bad:
        raise MartBuildError(f"mart_claims: verdicts outside {VERDICTS}: {bad}")
    return counts
