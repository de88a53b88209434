"""Comparing relations row by row in DuckDB: a table against another copy of it, a model against its SQL."""

from __future__ import annotations

import duckdb


def rows_differing(conn: duckdb.DuckDBPyConnection, left: str, right: str) -> int:
    """Rows of one relation that the other lacks, both ways (as many times as they repeat); `left` and `right`
    are anything DuckDB reads after FROM (a table, `read_parquet(...)`, a parenthesised query)."""
    return conn.execute(f"SELECT count(*) FROM ((FROM {left} EXCEPT ALL FROM {right}) UNION ALL "
                        f"(FROM {right} EXCEPT ALL FROM {left}))").fetchone()[0]


def model_rows_differing(conn: duckdb.DuckDBPyConnection, name: str) -> int:
    """Rows in which the model `name` differs from what its SQL (eujp/marts; mart_claims: its claim files)
    gives over the warehouse as it stands: 0 when it holds what a rebuild of it would."""
    from eujp import marts
    from eujp.marts import MART_CLAIMS
    from eujp.marts.build import claims_sql
    from eujp.tables import TABLES

    table = TABLES[name]
    sql = claims_sql(conn) if table is MART_CLAIMS else marts.mart_sql(table).strip().rstrip(";")
    return rows_differing(conn, f'"{name}"', f"({sql})")
