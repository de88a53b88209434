"""What a published warehouse was built from, so that a day with nothing new can say so and stop.

A warehouse is determined by its inputs (the content checksum of every source's last successful load, and the
country dimension of the day) and by the code that turned them into tables (parsers, transforms, suites, marts,
reference data). Each published manifest carries both fingerprints (`manifest["fingerprint"]`). A run in which
every source is unchanged compares them with today's: equal means the published warehouse is exactly what
this run would publish again, so it records the check and publishes nothing (flows/daily.py). Any difference
(a new release, a source loaded by a run whose publish failed, a new day of EU membership) takes the full path.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

import duckdb
import polars as pl

import eujp
import transforms
from eujp.config import REFERENCE_DIR
from eujp.schema import ETL_SOURCE_STATE
from eujp.sql import quote_ident
from eujp.validate import EXPECTATIONS_DIR

_CODE_TREES: tuple[tuple[Path, tuple[str, ...]], ...] = (
    (Path(eujp.__file__).parent, ("*.py", "*.sql")),
    (Path(transforms.__file__).parent, ("*.py",)),
    (EXPECTATIONS_DIR, ("*.json",)),
    (REFERENCE_DIR, ("*",)),
)


@cache
def code_fingerprint() -> str:
    """sha256 over every file that shapes the tables (path and bytes): the eujp package (parsers, schema,
    marts and claims SQL), transforms/, the expectation suites and data/reference/."""
    digest = hashlib.sha256()
    for root, patterns in _CODE_TREES:
        files = sorted({p for pattern in patterns for p in root.rglob(pattern)
                        if p.is_file() and "__pycache__" not in p.parts})
        for path in files:
            digest.update(f"{root.name}/{path.relative_to(root).as_posix()}\0".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def inputs_fingerprint(conn: duckdb.DuckDBPyConnection, countries: pl.DataFrame) -> str:
    """sha256 over the input checksum of every source's last successful load (etl_source_state) and the
    rows of the day's country dimension."""
    rows = conn.execute(
        f"SELECT source, coalesce(input_checksum, '') FROM {quote_ident(ETL_SOURCE_STATE.name)} "
        "WHERE last_success_at IS NOT NULL ORDER BY source").fetchall()
    digest = hashlib.sha256("\n".join(f"{s}={c}" for s, c in rows).encode())
    digest.update(countries.sort("iso2").write_csv().encode())
    return digest.hexdigest()


def warehouse_fingerprint(conn: duckdb.DuckDBPyConnection, countries: pl.DataFrame) -> dict[str, str]:
    return {"code": code_fingerprint(), "inputs": inputs_fingerprint(conn, countries)}
