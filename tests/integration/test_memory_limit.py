"""EUJP_DUCKDB_MEMORY_LIMIT holds for every DuckDB connection a run opens on the warehouse: the load's, and the
publish step's (Parquet export, lake commit, single file, report, catalog). Without it a connection takes
DuckDB's default (80 % of the machine's RAM): the Parquet export of a 50M-row table peaked at 5.2 GB
(benchmarks/RESULTS.md). Real DuckDB connections on the bundled warehouse; each connection is asked for its
own setting as it is opened."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from eujp.catalog import write_catalog
from eujp.lake import commit_warehouse, lake_config, slim_warehouse
from eujp.publish import export_parquet
from eujp.report import write_warehouse_report
from eujp.tables import ALL_TABLES
from eujp.warehouse import connect

LIMIT = "345MB"


@pytest.fixture
def opened(monkeypatch):
    """[(database, memory_limit)] of every duckdb.connect while the test runs."""
    seen: list[tuple[str, str]] = []
    real = duckdb.connect

    def watched(database=":memory:", *args, **kwargs):
        conn = real(database, *args, **kwargs)
        seen.append((str(database), conn.execute("SELECT current_setting('memory_limit')").fetchone()[0]))
        return conn

    monkeypatch.setenv("EUJP_DUCKDB_MEMORY_LIMIT", LIMIT)
    monkeypatch.setattr(duckdb, "connect", watched)
    return seen


def expected() -> str:
    """How DuckDB reports LIMIT (it rounds and prints in its own units)."""
    with duckdb.connect(config={"memory_limit": LIMIT}) as conn:
        return conn.execute("SELECT current_setting('memory_limit')").fetchone()[0]


def test_every_connection_of_the_load_and_the_publish_has_the_memory_limit(bundled_warehouse, tmp_path, opened):
    warehouse = tmp_path / "var" / "warehouse.duckdb"
    warehouse.parent.mkdir()
    shutil.copyfile(bundled_warehouse, warehouse)
    want = expected()
    opened.clear()

    load = connect(warehouse)  # the load's connection: eujp.warehouse.connect sets it once open
    assert load.execute("SELECT current_setting('memory_limit')").fetchone()[0] == want
    load.close()
    opened.clear()

    export_parquet(warehouse, tmp_path / "parquet", ALL_TABLES)
    commit_warehouse(lake_config(warehouse, str(tmp_path / "objectstore"), env={}), warehouse, "20261201T060000Z-mem1")
    slim_warehouse(warehouse, tmp_path / "single" / "warehouse.duckdb", [t for t in ALL_TABLES if not t.is_fact])
    write_warehouse_report(warehouse, tmp_path / "report.html", run_id="20261201T060000Z-mem1")
    write_catalog(warehouse, tmp_path / "catalog.html", run_id="20261201T060000Z-mem1")

    databases = {db for db, _ in opened}
    assert {str(warehouse), ":memory:", str(tmp_path / "single" / "warehouse.duckdb")} <= databases, databases
    unlimited = [(db, limit) for db, limit in opened if limit != want]
    assert unlimited == [], f"connections without EUJP_DUCKDB_MEMORY_LIMIT={LIMIT} ({want}): {unlimited}"
