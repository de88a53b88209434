"""Content digests of a table's partitions: what tells a run which partitions changed since they were last
published. The lake commit (eujp.lake) rewrites the partitions whose digest changed; the publish of a table as a
Parquet file per partition (eujp.publish.export_partitioned) copies the previous run's file of every partition
whose digest did not."""

from __future__ import annotations

import duckdb

from eujp.sql import quote_ident

WHOLE = "*"  # the partition unit of a table compared whole
NULL_KEY = "\u2205"  # the unit of rows whose unit column is null


def partition_digests(conn: duckdb.DuckDBPyConnection, source: str, unit: str | None) -> dict[str, tuple[int, str]]:
    """{unit value as text (NULL_KEY for null; WHOLE without a unit): (rows, digest)} of `source` (a qualified
    table): the digest sums a hash of every column of every row (order-independent)."""
    key = (f"coalesce(CAST({quote_ident(unit)} AS VARCHAR), '{NULL_KEY}')" if unit else f"'{WHOLE}'")
    rows = conn.execute(f"SELECT {key} AS k, count(*), CAST(sum(hash(*COLUMNS(*))) AS VARCHAR) FROM {source} "
                        "GROUP BY ALL").fetchall()
    return {k: (n, d or "0") for k, n, d in rows}
