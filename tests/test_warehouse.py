"""Warehouse loads (idempotent upserts, scoped replacement), run records, staging/promote, the run lock."""

from __future__ import annotations

import multiprocessing
import time
from datetime import UTC, datetime

import duckdb
import polars as pl
import pytest

from eujp.lock import RunLocked, warehouse_lock
from eujp.schema import FACT_GOODS_TRADE, FACT_SECURITY_EVENTS, TABLES
from eujp.warehouse import (
    connect,
    duplicate_keys,
    ensure_schema,
    open_staging,
    promote,
    table_counts,
    upsert_fact,
)

NOW = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)


def goods(rows):
    return pl.DataFrame(
        [dict(zip(["reporter", "partner", "flow", "period_year", "value_mio_eur"], r, strict=True))
         | {"obs_status": None, "source": "eurostat_goods", "source_version": "v1"} for r in rows],
        schema=FACT_GOODS_TRADE.business_columns,
    )


@pytest.fixture
def conn(tmp_path):
    c = connect(tmp_path / "w.duckdb")
    ensure_schema(c)
    yield c
    c.close()


def test_schema_has_every_table_with_comments(conn):
    names = {r[0] for r in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert set(TABLES) <= names
    comment = conn.execute(
        "SELECT comment FROM duckdb_columns() WHERE table_name='fact_goods_trade' AND column_name='reporter'"
    ).fetchone()[0]
    assert "EU aggregate" in comment


def test_upsert_is_idempotent_and_replaces_revised_values(conn):
    batch = goods([("EU28", "JP", "export", 2016, 58000.0), ("EU28", "JP", "import", 2016, 66400.0)])
    upsert_fact(conn, FACT_GOODS_TRADE, batch, run_id="r1", loaded_at=NOW, source="eurostat_goods")
    upsert_fact(conn, FACT_GOODS_TRADE, batch, run_id="r2", loaded_at=NOW, source="eurostat_goods")
    assert table_counts(conn, [FACT_GOODS_TRADE]) == {"fact_goods_trade": 2}
    assert duplicate_keys(conn, FACT_GOODS_TRADE) == 0
    revised = goods([("EU28", "JP", "export", 2016, 58100.0)])
    upsert_fact(conn, FACT_GOODS_TRADE, revised, run_id="r3", loaded_at=NOW, source="eurostat_goods")
    rows = conn.execute("SELECT flow, value_mio_eur, run_id FROM fact_goods_trade ORDER BY flow").fetchall()
    assert rows == [("export", 58100.0, "r3"), ("import", 66400.0, "r2")]


def test_full_extract_scope_removes_rows_the_source_dropped(conn):
    def events(titles):
        return pl.DataFrame(
            {"event_id": [t[:4] for t in titles], "event_date": [datetime(2024, 11, 1).date()] * len(titles),
             "date_precision": ["day"] * len(titles), "event_type": ["agreement"] * len(titles),
             "parties": ["JPN;EU"] * len(titles), "title": titles, "description": titles,
             "source_url": ["https://example.org"] * len(titles), "source_title": ["x"] * len(titles),
             "source": ["security_events"] * len(titles), "source_version": [None] * len(titles)},
            schema=FACT_SECURITY_EVENTS.business_columns,
        )

    upsert_fact(conn, FACT_SECURITY_EVENTS, events(["aaaa one", "bbbb two"]), run_id="r1", loaded_at=NOW,
                source="security_events", replace_scope=())
    upsert_fact(conn, FACT_SECURITY_EVENTS, events(["aaaa one"]), run_id="r2", loaded_at=NOW,
                source="security_events", replace_scope=())
    assert conn.execute("SELECT title FROM fact_security_events").fetchall() == [("aaaa one",)]


def test_staging_copy_leaves_live_warehouse_untouched_until_promoted(tmp_path):
    live = tmp_path / "warehouse.duckdb"
    with connect(live) as c:
        ensure_schema(c)
        upsert_fact(c, FACT_GOODS_TRADE, goods([("EU28", "JP", "export", 2016, 1.0)]), run_id="r1",
                    loaded_at=NOW, source="eurostat_goods")
    staging = open_staging(live, tmp_path / "staging", "r2")
    with connect(staging) as c:
        upsert_fact(c, FACT_GOODS_TRADE, goods([("EU28", "JP", "import", 2016, 2.0)]), run_id="r2",
                    loaded_at=NOW, source="eurostat_goods")
        c.execute("CHECKPOINT")
    with duckdb.connect(str(live), read_only=True) as c:
        assert c.execute("SELECT count(*) FROM fact_goods_trade").fetchone()[0] == 1
    promote(staging, live)
    assert not staging.exists()
    with duckdb.connect(str(live), read_only=True) as c:
        assert c.execute("SELECT count(*) FROM fact_goods_trade").fetchone()[0] == 2


def _hold_lock(path, ready, seconds):
    with warehouse_lock(path):
        ready.set()
        time.sleep(seconds)


def test_second_writer_fails_clearly_while_the_first_holds_the_lock(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(path, ready, 3))
    holder.start()
    try:
        assert ready.wait(20)
        with pytest.raises(RunLocked, match=r"another run is writing .*held by pid"), \
                warehouse_lock(path, wait_seconds=0.5):
            pass
        started = time.monotonic()
        with warehouse_lock(path, wait_seconds=15):  # waits for the holder to finish, then gets it
            waited = time.monotonic() - started
        assert waited > 1.0
    finally:
        holder.join(10)


def test_lock_is_released_when_the_holder_is_killed(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(path, ready, 60))
    holder.start()
    assert ready.wait(20)
    holder.kill()
    holder.join(10)
    with warehouse_lock(path, wait_seconds=2):
        pass
