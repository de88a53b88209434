"""Build a warehouse from the bundled snapshot with the plain step functions (no Prefect): every source
parsed, transformed, validated and loaded, then the reference tables and the marts, as the daily flow does
in its load step. Shared by the mart, BI-access and report tests."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import duckdb

from eujp.extract import read_snapshot
from eujp.marts.build import build_marts
from eujp.pipeline import SourceBatch, load_batches, load_countries, load_dim_country, prepare_source, utcnow
from eujp.reference import load_reference_tables
from eujp.sources import SOURCES
from eujp.sql import quote_ident
from eujp.tables import ALL_TABLES, ensure_schema
from eujp.warehouse import connect

SNAPSHOT = Path(__file__).resolve().parents[2] / "data" / "snapshot"
RUN_DATE = date(2026, 11, 24)


def build_bundled_warehouse(path: Path, run_id: str = "20261124T060000Z-marts1", snapshot: Path = SNAPSHOT) -> Path:
    countries = load_countries(RUN_DATE)
    batches = []
    for source in SOURCES:
        batch = SourceBatch(source=source.name, table=source.table.name, started_at=utcnow())
        batches.append(prepare_source(source, read_snapshot(source, snapshot), countries, batch))
    failed = [b.error for b in batches if b.error]
    assert not failed, failed
    with connect(path) as conn:
        ensure_schema(conn)
        load_dim_country(conn, countries)
        load_batches(conn, batches, run_id=run_id)
        load_reference_tables(conn)
        build_marts(conn)
        conn.execute("CHECKPOINT")
    return path


def copy_warehouse(warehouse: Path, into: Path) -> Path:
    """A copy of `warehouse` as `into`/var/warehouse.duckdb, where a run keeps its warehouse."""
    copy = into / "var" / "warehouse.duckdb"
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(warehouse, copy)
    return copy


def table_counts(warehouse: Path) -> dict[str, int]:
    """The rows of every table of the warehouse at `warehouse`: the counts a run hands its publish."""
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return {t.name: conn.execute(f"SELECT count(*) FROM {quote_ident(t.name)}").fetchone()[0]
                for t in ALL_TABLES}
