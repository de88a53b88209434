"""Warehouse loads (idempotent upserts, scoped replacement), run records, staging/promote. The run lock (held
by another process): tests/integration/test_warehouse_lock.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import duckdb
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eujp.sources import eurostat_goods, security_events
from eujp.sql import quote_ident
from eujp.tables import TABLES, ensure_schema, table_counts
from eujp.warehouse import (
    connect,
    connect_staging,
    count_present,
    discard_staging,
    duplicate_keys,
    is_linked,
    open_staging,
    promote,
    upsert_fact,
)

# The sources these tests load, by their modules (a source's name is written in its own folder only).
GOODS, EVENTS = eurostat_goods.SOURCE.name, security_events.SOURCE.name
FACT_GOODS_TRADE, FACT_SECURITY_EVENTS = eurostat_goods.TABLE, security_events.TABLE

NOW = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)


def goods(rows):
    return pl.DataFrame(
        [dict(zip(["reporter", "partner", "flow", "period_year", "value_mio_eur"], r, strict=True))
         | {"obs_status": None, "source": GOODS, "source_version": "v1"} for r in rows],
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


class _StatementLog:
    """A DuckDB connection that records the statements run through it (and passes them on)."""

    def __init__(self, conn):
        self.conn, self.statements = conn, []

    def execute(self, sql, *args):
        self.statements.append(sql)
        return self.conn.execute(sql, *args)


def test_ensure_schema_again_writes_only_what_differs_from_the_declarations(conn):
    from eujp.tables import ALL_TABLES

    logged = _StatementLog(conn)
    ensure_schema(logged)
    assert not [s for s in logged.statements if s.startswith(("COMMENT", "ALTER", "DROP"))]
    assert sum(s.startswith(("SELECT", "CREATE")) for s in logged.statements) == 2 + len(ALL_TABLES)  # one read

    kept = TABLES["fact_goods_trade"]  # kept rows: a column declared since is added, with its comment
    rebuilt = next(t for t in ALL_TABLES if t.rebuilt and t.docs)  # other columns: dropped and made again
    column = next(iter(kept.docs))
    conn.execute(f"ALTER TABLE {kept.name} DROP COLUMN {column}")
    conn.execute(f"COMMENT ON TABLE {kept.name} IS 'edited by hand'")
    conn.execute(f"DROP TABLE {rebuilt.name}")
    conn.execute(f"CREATE TABLE {rebuilt.name} (stale INTEGER)")
    logged.statements.clear()
    ensure_schema(logged)
    writes = [s for s in logged.statements if s.startswith(("COMMENT", "ALTER", "DROP"))]
    k, r = quote_ident(kept.name), quote_ident(rebuilt.name)
    assert writes[0] == f"ALTER TABLE {k} ADD COLUMN {quote_ident(column)} {writes[0].split()[-1]}"
    assert f"DROP TABLE {r}" in writes
    assert sum(s.startswith(f"COMMENT ON TABLE {k} ") for s in writes) == 1
    assert sum(s.startswith(f"COMMENT ON COLUMN {k}.") for s in writes) == 1  # the new column's only
    assert sum(s.startswith(f"COMMENT ON COLUMN {r}.") for s in writes) == len(rebuilt.docs)
    assert len(writes) == 5 + len(rebuilt.docs)  # and the rebuilt table's own comment: nothing else
    for table in (kept, rebuilt):
        assert conn.execute("SELECT comment FROM duckdb_tables() WHERE table_name = ?",
                            [table.name]).fetchone()[0] == table.description
        comments = dict(conn.execute("SELECT column_name, comment FROM duckdb_columns() WHERE table_name = ?",
                                     [table.name]).fetchall())
        assert sorted(comments) == sorted(table.all_columns)  # a column added to a kept table comes last
        assert {c: comments[c] for c in table.docs} == dict(table.docs)


def test_upsert_is_idempotent_and_replaces_revised_values(conn):
    batch = goods([("EU28", "JP", "export", 2016, 58000.0), ("EU28", "JP", "import", 2016, 66400.0)])
    upsert_fact(conn, FACT_GOODS_TRADE, batch, run_id="r1", loaded_at=NOW, source=GOODS)
    upsert_fact(conn, FACT_GOODS_TRADE, batch, run_id="r2", loaded_at=NOW, source=GOODS)
    assert table_counts(conn, [FACT_GOODS_TRADE]) == {"fact_goods_trade": 2}
    assert duplicate_keys(conn, FACT_GOODS_TRADE) == 0
    revised = goods([("EU28", "JP", "export", 2016, 58100.0)])
    upsert_fact(conn, FACT_GOODS_TRADE, revised, run_id="r3", loaded_at=NOW, source=GOODS)
    rows = conn.execute("SELECT flow, value_mio_eur, run_id FROM fact_goods_trade ORDER BY flow").fetchall()
    assert rows == [("export", 58100.0, "r3"), ("import", 66400.0, "r2")]


def test_an_upsert_that_fails_in_its_transaction_raises_its_own_error_and_changes_nothing(conn):
    """A statement of the upsert that fails aborts the load's transaction: the error raised is that
    statement's (not the "transaction is aborted" of the cleanup after it), the table keeps its rows, and the
    rollback leaves none of the upsert's temporary objects behind."""
    upsert_fact(conn, FACT_GOODS_TRADE, goods([("EU28", "JP", "export", 2016, 58000.0)]), run_id="r1",
                loaded_at=NOW, source=GOODS)
    bad = ("(SELECT 'EU28' AS reporter, 'JP' AS partner, 'export' AS flow, 'MMXVI' AS period_year, "
           "1.0 AS value_mio_eur, NULL AS obs_status, 'x' AS source, 'v2' AS source_version)")
    conn.execute("BEGIN TRANSACTION")
    with pytest.raises(duckdb.ConversionException, match="MMXVI"):
        upsert_fact(conn, FACT_GOODS_TRADE, bad, run_id="r2", loaded_at=NOW, source=GOODS)
    conn.execute("ROLLBACK")
    assert conn.execute("SELECT value_mio_eur, run_id FROM fact_goods_trade").fetchall() == [(58000.0, "r1")]
    left = conn.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = '_fact_replaced'").fetchone()[0]
    assert left == 0
    assert conn.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = '_fact_batch'").fetchone()[0] == 0


def test_a_fact_insert_tries_no_fsst_and_restores_the_connections_settings(tmp_path):
    """The rows an upsert writes are compressed without FSST (a fact table's codes gain nothing from it, and
    trying it on every segment was ~10% of the insert), and the connection's own settings come back."""
    from eujp.sources import comext_goods

    table = comext_goods.TABLE
    rows = 2 * 122_880  # two full row groups: written, compressed, by the insert itself
    batch = pl.DataFrame({
        "reporter": ["EU27_2020"] * rows, "partner": ["JP"] * rows,
        # long, distinct codes sharing substrings: what FSST wins on by default (dictionary cannot)
        "product_cn8": [f"{i:08d}-a-long-label-of-product-{i % 977:04d}" for i in range(rows)],
        "flow": ["export"] * rows, "period": [datetime(2025, 1, 1).date()] * rows, "period_code": ["2025-01"] * rows,
        "value_eur": [float(i) for i in range(rows)], "quantity_kg": [None] * rows,
        "source": [comext_goods.SOURCE.name] * rows, "source_version": ["v1"] * rows,
    }, schema=table.business_columns)
    conn = connect(tmp_path / "w.duckdb")
    ensure_schema(conn)
    conn.execute("SET disabled_compression_methods = 'zstd'")  # a setting of the caller's own
    upsert_fact(conn, table, batch, run_id="r1", loaded_at=NOW, source=comext_goods.SOURCE.name)
    conn.execute("CHECKPOINT")
    methods = {r[0] for r in conn.execute(
        "SELECT DISTINCT compression FROM pragma_storage_info(?) WHERE column_name = 'product_cn8' "
        "AND segment_type = 'VARCHAR'", [table.name]).fetchall()}
    assert methods and not {m for m in methods if "FSST" in m.upper()}, methods
    assert conn.execute("SELECT current_setting('disabled_compression_methods'), "
                        "current_setting('preserve_insertion_order')").fetchone() == ("ZSTD", True)
    assert conn.execute(f"SELECT count(*), count(DISTINCT product_cn8) FROM {table.name}").fetchone() == (rows, rows)
    conn.close()


def test_full_extract_scope_removes_rows_the_source_dropped(conn):
    def events(titles):
        return pl.DataFrame(
            {"event_id": [t[:4] for t in titles], "event_date": [datetime(2024, 11, 1).date()] * len(titles),
             "date_precision": ["day"] * len(titles), "event_type": ["agreement"] * len(titles),
             "parties": ["JPN;EU"] * len(titles), "title": titles, "description": titles,
             "source_url": ["https://example.org"] * len(titles), "source_title": ["x"] * len(titles),
             "source": [EVENTS] * len(titles), "source_version": [None] * len(titles)},
            schema=FACT_SECURITY_EVENTS.business_columns,
        )

    upsert_fact(conn, FACT_SECURITY_EVENTS, events(["aaaa one", "bbbb two"]), run_id="r1", loaded_at=NOW,
                source=EVENTS, replace_scope=())
    upsert_fact(conn, FACT_SECURITY_EVENTS, events(["aaaa one"]), run_id="r2", loaded_at=NOW,
                source=EVENTS, replace_scope=())
    assert conn.execute("SELECT title FROM fact_security_events").fetchall() == [("aaaa one",)]


@pytest.mark.parametrize("scope", [(), ("period_year",), None], ids=["full-extract", "by-period", "by-key"])
def test_a_conflicting_key_keeps_its_previous_row_under_every_replace_scope(conn, scope):
    """`keep` (the batch's conflicting keys): the scope replaces the source's other rows, never these."""
    first = goods([("EU28", "JP", "export", 2016, 58000.0), ("EU28", "JP", "import", 2016, 66400.0),
                   ("EU28", "JP", "export", 2015, 56000.0)])
    upsert_fact(conn, FACT_GOODS_TRADE, first, run_id="r1", loaded_at=NOW, source=GOODS, replace_scope=scope)
    # Today: 2016 export arrived twice with different values (quarantined, so not in the batch), so did a key
    # never loaded (2017 export); 2016 import is revised.
    conflicts = goods([("EU28", "JP", "export", 2016, 0.0), ("EU28", "JP", "export", 2017, 0.0)]).select(
        list(FACT_GOODS_TRADE.natural_key))
    assert count_present(conn, FACT_GOODS_TRADE, conflicts, source=GOODS) == 1
    upsert_fact(conn, FACT_GOODS_TRADE, goods([("EU28", "JP", "import", 2016, 66500.0)]), run_id="r2",
                loaded_at=NOW, source=GOODS, replace_scope=scope, keep=conflicts)
    rows = conn.execute("SELECT period_year, flow, value_mio_eur, run_id FROM fact_goods_trade ORDER BY ALL").fetchall()
    kept_2015 = [(2015, "export", 56000.0, "r1")] if scope != () else []  # the full extract dropped 2015
    assert rows == [*kept_2015, (2016, "export", 58000.0, "r1"), (2016, "import", 66500.0, "r2")]


def _live_with_one_row(tmp_path):
    live = tmp_path / "warehouse.duckdb"
    with connect(live) as c:
        ensure_schema(c)
        upsert_fact(c, FACT_GOODS_TRADE, goods([("EU28", "JP", "export", 2016, 1.0)]), run_id="r1",
                    loaded_at=NOW, source=GOODS)
    return live


def _live_rows(live):
    with duckdb.connect(str(live), read_only=True) as c:
        return c.execute("SELECT count(*) FROM fact_goods_trade").fetchone()[0]


def test_staging_link_leaves_live_warehouse_untouched_until_promoted(tmp_path):
    live = _live_with_one_row(tmp_path)
    size = live.stat().st_size
    staging = open_staging(live, tmp_path / "staging", "r2")
    assert is_linked(staging, live)  # the live file itself, not a copy of it
    c = connect_staging(staging)
    upsert_fact(c, FACT_GOODS_TRADE, goods([("EU28", "JP", "import", 2016, 2.0)]), run_id="r2",
                loaded_at=NOW, source=GOODS)
    assert (tmp_path / "staging" / "r2.duckdb.wal").exists()  # the commit is in the link's log
    assert _live_rows(live) == 1  # a reader of the live file sees the previous checkpoint
    promote(staging, live, c)
    assert not staging.exists() and not list((tmp_path / "staging").iterdir())
    assert _live_rows(live) == 2
    assert live.stat().st_size >= size


def test_a_discarded_staging_link_leaves_nothing(tmp_path):
    live = _live_with_one_row(tmp_path)
    staging = open_staging(live, tmp_path / "staging", "r2")
    c = connect_staging(staging)
    upsert_fact(c, FACT_GOODS_TRADE, goods([("EU28", "JP", "import", 2016, 2.0)]), run_id="r2",
                loaded_at=NOW, source=GOODS)
    c.close()  # as after a failed audit: no checkpoint
    discard_staging(staging)
    assert not list((tmp_path / "staging").iterdir())
    assert _live_rows(live) == 1
    with connect(live) as c:  # and the live file takes the next run's writes
        upsert_fact(c, FACT_GOODS_TRADE, goods([("EU28", "JP", "import", 2017, 3.0)]), run_id="r3",
                    loaded_at=NOW, source=GOODS)
    assert _live_rows(live) == 2


def test_without_a_live_warehouse_the_staging_file_is_renamed_into_place(tmp_path):
    live = tmp_path / "warehouse.duckdb"
    staging = open_staging(live, tmp_path / "staging", "r1")
    assert not staging.exists()
    c = connect_staging(staging)
    ensure_schema(c)
    upsert_fact(c, FACT_GOODS_TRADE, goods([("EU28", "JP", "export", 2016, 1.0)]), run_id="r1",
                loaded_at=NOW, source=GOODS)
    assert not live.exists()
    promote(staging, live, c)
    assert not staging.exists() and _live_rows(live) == 1


def test_a_linked_staging_closed_by_its_caller_is_promoted_from_its_log(tmp_path):
    live = _live_with_one_row(tmp_path)
    staging = open_staging(live, tmp_path / "staging", "r2")
    c = connect_staging(staging)
    upsert_fact(c, FACT_GOODS_TRADE, goods([("EU28", "JP", "import", 2016, 2.0)]), run_id="r2",
                loaded_at=NOW, source=GOODS)
    c.close()  # no checkpoint: the row is only in the link's log
    assert _live_rows(live) == 1
    promote(staging, live)
    assert _live_rows(live) == 2 and not list((tmp_path / "staging").iterdir())


@pytest.mark.parametrize("run_rows", [1, 9], ids=["small run: semi-join", "large run: one GROUP BY"])
def test_duplicate_keys_of_run_counts_the_keys_the_run_duplicated(run_rows):
    """Both plans (a run that wrote little of the table, and one that wrote most of it) count the duplicated
    keys that involve the run's rows, and only those."""
    from eujp.schema import Table
    from eujp.warehouse import duplicate_keys_of_run

    table = Table(name="t", description="test", columns={"k": pl.String, "v": pl.Int64}, natural_key=("k",))
    conn = duckdb.connect()
    conn.execute("CREATE TABLE t (k VARCHAR, v BIGINT, run_id VARCHAR)")
    old = [(f"k{i}", i, "R1") for i in range(10 - run_rows)] + [("old-dup", 1, "R1"), ("old-dup", 2, "R1")]
    new = [(f"k{i}", 100 + i, "R2") for i in range(run_rows)]  # k0 is duplicated by R2 (and k0..k8 if 9)
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", old + new)
    assert duplicate_keys_of_run(conn, table, "R2") == min(run_rows, 10 - run_rows)
    assert duplicate_keys_of_run(conn, table, "R3") == 0  # a run that wrote nothing


def test_repeated_key_hashes_only_send_to_the_exact_count(monkeypatch):
    """The natural-key hash is a filter: no repeated hash answers 0 at once; a repeated hash (a duplicate or a
    collision) is counted again on the keys themselves, so a collision never reports a duplicate."""
    from eujp import warehouse
    from eujp.schema import Table

    table = Table(name="t", description="test", columns={"k": pl.String, "v": pl.Int64}, natural_key=("k",))
    conn = duckdb.connect()
    conn.execute("CREATE TABLE t (k VARCHAR, v BIGINT, run_id VARCHAR)")
    # R2 wrote most of the table: duplicate_keys_of_run takes the plan with the hash filter
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", [(f"k{i}", i, "R2") for i in range(9)] + [("k0", 1, "R1")])
    assert warehouse.repeated_key_hashes(conn, "t", "k", rows=10, run_id="R2") == (10, 1)
    assert warehouse.duplicate_keys(conn, table) == warehouse.duplicate_keys_of_run(conn, table, "R2") == 1
    conn.execute("DELETE FROM t WHERE run_id = 'R1'")
    assert warehouse.repeated_key_hashes(conn, "t", "k", rows=9) == (9, 0)
    assert warehouse.repeated_key_hashes(conn, "t", "k", rows=9, run_id="R2") == (9, 0)
    monkeypatch.setattr(warehouse, "repeated_key_hashes", lambda *a, **k: (9, 1))  # as if two keys collided
    assert warehouse.duplicate_keys(conn, table) == warehouse.duplicate_keys_of_run(conn, table, "R2") == 0


@pytest.mark.parametrize("keys_per_pass", [1, 7, 100, 10_000])
def test_repeated_key_hashes_in_bounded_passes_count_what_one_pass_counts(monkeypatch, keys_per_pass):
    """The hash range is grouped in ceil(rows / KEYS_PER_PASS) slices: every slicing finds each repeated key once
    (equal keys hash equal, so they fall in one slice) and counts every row `where` keeps, with its parameters and
    the run's parameter bound in their places."""
    from eujp import warehouse

    conn = duckdb.connect()
    conn.execute("CREATE TABLE t (a VARCHAR, b INTEGER, run_id VARCHAR)")
    rows = [(f"p{i % 40}", i // 40, "R1") for i in range(400)]  # 400 distinct (a, b) keys
    rows += [("p3", 0, "R2"), ("p3", 0, "R2"), ("p5", 1, "R2"), ("p7", 2, "R1"), ("skip", 0, "R2"), ("skip", 0, "R2")]
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
    monkeypatch.setattr(warehouse, "KEYS_PER_PASS", keys_per_pass)
    counting = _StatementLog(conn)
    # p3/0 (thrice), p5/1 and p7/2 repeat; "skip" is left out by the parameterised WHERE
    assert warehouse.repeated_key_hashes(counting, "t", "a, b", rows=len(rows), where="a <> ?",
                                         params=["skip"]) == (len(rows) - 2, 3)
    assert len(counting.statements) == -(-len(rows) // keys_per_pass)
    # with the run: only p3/0 and p5/1 hold a row of R2
    assert warehouse.repeated_key_hashes(conn, "t", "a, b", rows=len(rows), where="a <> ?", params=["skip"],
                                         run_id="R2") == (len(rows) - 2, 2)




def test_the_next_run_removes_what_a_killed_run_left_in_staging(tmp_path, caplog):
    """A killed run leaves its staging link, its log and the folders it spilled into (Settings.spill_dir); the
    next run's clean_stale_staging removes them all, but what it is told to keep, and says what it removed."""
    from eujp.config import Settings
    from eujp.landing import PayloadSpool, spill_folder
    from eujp.warehouse import clean_stale_staging

    settings = Settings.from_env(warehouse_path=tmp_path / "var" / "warehouse.duckdb")
    assert settings.spill_dir == tmp_path / "var" / "staging" / "spill"
    killed = spill_folder("eujp-comext_goods-valid-", settings.spill_dir)  # made with its parents
    (killed / "000000.parquet").write_bytes(b"PAR1")
    wire = spill_folder("eujp-comext_goods-wire-", settings.spill_dir)
    (wire / "0").mkdir()
    (wire / "0" / "000000-000000.arrow").write_bytes(b"ARROW1")
    # live answers spooled to files (eujp.landing.PayloadSpool), still there as a killed run leaves them
    spooled = PayloadSpool(settings.spill_dir, "eujp-comext_goods-payloads-").write(
        "a_source", "slice 1", b"DATAFLOW\r\n", "https://example.org/data")
    answers_folder = spooled.path.parent
    (settings.staging_dir / "20261130T060000Z-dead01.duckdb").write_bytes(b"")
    (settings.staging_dir / "20261130T060000Z-dead01.duckdb.wal").write_bytes(b"log")
    kept = settings.staging_dir / "20261201T060000Z-live01.duckdb"
    kept.write_bytes(b"")

    duckdb_spill = settings.staging_dir / "20261130T060000Z-dead01.duckdb.tmp"  # DuckDB's own spill folder
    duckdb_spill.mkdir()
    (duckdb_spill / "duckdb_temp_storage-0.tmp").write_bytes(b"spilled")
    with caplog.at_level("INFO", logger="eujp.warehouse"):
        removed = clean_stale_staging(settings.staging_dir, keep=[kept])
    assert sorted(p.name for p in removed) == sorted([killed.name, wire.name, answers_folder.name,
                                                      "20261130T060000Z-dead01.duckdb",
                                                      "20261130T060000Z-dead01.duckdb.wal",
                                                      "20261130T060000Z-dead01.duckdb.tmp"])
    assert [r.getMessage() for r in caplog.records] == [
        f"removed 6 stale staging file(s) and folder(s) that killed run(s) left in {settings.staging_dir}: "
        + ", ".join(p.name for p in removed)]
    assert sorted(p.name for p in settings.staging_dir.rglob("*")) == ["20261201T060000Z-live01.duckdb", "spill"]
    assert clean_stale_staging(settings.staging_dir, keep=[kept]) == []


# --------------------------------------------------------------------------- property: against a plain model

_KEYS = [(r, p, f, y) for r in ("EU27_2020", "EU28") for p in ("JP",) for f in ("export", "import")
         for y in (2015, 2016, 2017)]


@pytest.fixture(scope="module")
def model_conn(tmp_path_factory):
    c = connect(tmp_path_factory.mktemp("upsert") / "w.duckdb")
    ensure_schema(c)
    yield c
    c.close()


@settings(max_examples=100, deadline=None)
@given(first=st.dictionaries(st.sampled_from(_KEYS), st.sampled_from([1.0, 2.0, 3.0])),
       batch=st.dictionaries(st.sampled_from(_KEYS), st.sampled_from([1.0, 2.0, 4.0])),
       conflicts=st.sets(st.sampled_from(_KEYS)),
       scope=st.sampled_from([None, (), ("period_year",)]))
def test_an_upsert_leaves_what_the_plain_model_says(model_conn, first, batch, conflicts, scope):
    """A first load, then a batch (its conflicting keys, which it does not carry, in `keep`) under each replace
    scope: the table holds exactly the model's rows (the batch's keys replaced; under a scope, the source's
    other rows in it removed, the conflicting keys' rows kept), and etl_revisions holds one row per value the
    batch changed for a key that had a row."""
    batch = {k: v for k, v in batch.items() if k not in conflicts}  # a conflicting key is not in the batch
    c = model_conn
    c.execute("DELETE FROM fact_goods_trade; DELETE FROM etl_revisions")
    if first:
        upsert_fact(c, FACT_GOODS_TRADE, goods([(*k, v) for k, v in first.items()]), run_id="r1", loaded_at=NOW,
                    source=GOODS, replace_scope=scope)
    keep = goods([(*k, 0.0) for k in conflicts]).select(list(FACT_GOODS_TRADE.natural_key))
    upsert_fact(c, FACT_GOODS_TRADE, goods([(*k, v) for k, v in batch.items()]), run_id="r2", loaded_at=NOW,
                source=GOODS, replace_scope=scope, keep=keep)
    rows = c.execute("SELECT reporter, partner, flow, period_year, value_mio_eur, run_id FROM fact_goods_trade"
                     ).fetchall()
    revisions = c.execute("SELECT natural_key, old_value, new_value FROM etl_revisions WHERE run_id = 'r2'").fetchall()
    if scope is None:
        removed = set()
    else:
        # the source's rows in the batch's scope (all of them for a full extract, even an empty one: the run's
        # row-count audit stops that), but the conflicting keys'
        years = {k[3] for k in batch}
        removed = {k for k in first if (scope == () or k[3] in years) and k not in conflicts}
    model = {k: (v, "r1") for k, v in first.items() if k not in removed} | {k: (v, "r2") for k, v in batch.items()}
    assert sorted(rows) == sorted((*k, v, run) for k, (v, run) in model.items())
    assert sorted((json.loads(key)["period_year"], json.loads(key)["flow"], json.loads(key)["reporter"], old, new)
                  for key, old, new in revisions) == sorted(
        (k[3], k[2], k[0], first[k], v) for k, v in batch.items() if k in first and first[k] != v)


def test_two_warehouses_in_one_folder_keep_their_run_files_apart(tmp_path):
    """A run of var/trial.duckdb (publishing to another target) starting while a run of var/warehouse.duckdb is
    under way: its start-up cleanup and its check of the lake catalog leave the other run's staging link,
    spilled chunks and lake catalog alone. (They shared var/staging/ and var/lake.ducklake: the other run lost
    its spilled chunk, FileNotFoundError, and each run set aside the other's catalog, starting a new lake.) The
    default name keeps today's paths; the other warehouse's files are in var/trial.duckdb.d/."""
    from eujp.config import Settings
    from eujp.lake import CATALOG_FILE, attach, lake_config, replace_unpublished_catalog
    from eujp.landing import spill_folder
    from eujp.run import docs_dir
    from eujp.storage import open_store
    from eujp.warehouse import clean_stale_staging

    var = tmp_path / "var"
    a = Settings(warehouse_path=var / "warehouse.duckdb", publish_uri=str(tmp_path / "storeA"),
                 run_id="20261201T060000Z-aaaaaa")
    b = Settings(warehouse_path=var / "trial.duckdb", publish_uri=str(tmp_path / "storeB"),
                 run_id="20261201T060100Z-bbbbbb")
    lake_a, lake_b = (lake_config(s.warehouse_path, s.publish_uri, env={}) for s in (a, b))
    assert (a.staging_dir, a.spill_dir, lake_a.catalog_file, docs_dir(a)) == (
        var / "staging", var / "staging" / "spill", var.resolve() / CATALOG_FILE, var / "docs" / a.run_id)
    assert (b.staging_dir, lake_b.catalog_file, docs_dir(b)) == (
        var / "trial.duckdb.d" / "staging", var.resolve() / "trial.duckdb.d" / CATALOG_FILE,
        var / "trial.duckdb.d" / "docs" / b.run_id)

    # A, mid-run: staged, a chunk spilled, its lake committed and published
    with connect(a.warehouse_path) as conn:
        conn.execute("CREATE TABLE t AS SELECT 1 AS x")
    staging = open_staging(a.warehouse_path, a.staging_dir, a.run_id)
    chunk = spill_folder("eujp-a_source-valid-", a.spill_dir) / "000000.parquet"
    chunk.write_bytes(b"PAR1")
    with duckdb.connect() as conn:
        attach(conn, lake_a)
    open_store(a.publish_uri).put_file(CATALOG_FILE, lake_a.catalog_file)
    catalog_a = lake_a.catalog_file.read_bytes()

    # B starts as a run does (flows/daily.py: clean_stale_staging under its own lock), then commits its lake
    assert clean_stale_staging(b.staging_dir) == []
    assert replace_unpublished_catalog(lake_b, open_store(b.publish_uri)) is None
    with duckdb.connect() as conn:
        attach(conn, lake_b)
    b_chunk = spill_folder("eujp-a_source-valid-", b.spill_dir) / "000000.parquet"
    b_chunk.write_bytes(b"PAR1")
    assert staging.exists() and chunk.read_bytes() == b"PAR1"
    assert lake_a.catalog_file.read_bytes() == catalog_a and not list(var.rglob(f"{CATALOG_FILE}.replaced-*"))

    # A's next run cleans what A left, and only that
    assert clean_stale_staging(a.staging_dir) == [staging, chunk.parent]
    assert b_chunk.read_bytes() == b"PAR1" and lake_b.catalog_file.exists()
    assert replace_unpublished_catalog(lake_a, open_store(a.publish_uri)) is None and lake_a.catalog_file.exists()
