"""A day costs what changed (issue 12, item 3), on the real pipeline steps and a real DuckDB file:

* a day that adds one month of Comext figures writes only that month's rows and rebuilds only the models that
  read the table it wrote (etl_model_state, the run's `changes`), and the models it kept equal a full rebuild;
* a run SIGKILLed after its load and marts, before the audit's end, leaves the previous good warehouse (the
  run's commits were only in the write-ahead log of its staging link) and the next run succeeds;
* a run whose audit fails leaves nothing behind: the same warehouse, no staging link, no log, no run record.

The killed run is a child process (no server): it pauses in the audit and the test kills it.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest
from support.pipeline_steps import SNAPSHOT, payload, run_steps, snapshot_payloads

from eujp.config import Settings
from eujp.marts import MODELS
from eujp.marts.build import build_marts
from eujp.pipeline import SourceBatch, load_countries, prepare_source, utcnow
from eujp.run import load_audit_promote
from eujp.sources import SOURCES
from eujp.tables import ALL_TABLES
from eujp.warehouse import clean_stale_staging

REPO = Path(__file__).resolve().parents[2]
DAY1, DAY2 = "20261124T060000Z-day001", "20261125T060000Z-day002"
PRODUCTS = "fact_goods_trade_product"
EVENTS = "fact_security_events"


def source_of(table: str):
    return next(s for s in SOURCES if s.table.name == table)


def new_month_payload(month: str = "2025-04") -> tuple[str, bytes, int]:
    """The bundled DE-JP Comext file's 2025-03 lines as `month` (values doubled): one new month of figures,
    as a live request from the watermark returns it; with the number of fact rows it makes."""
    file = next(SNAPSHOT.glob("comext_ds045409_DE_JP_*.csv"))
    header, *lines = file.read_text(encoding="utf-8").splitlines()
    out = []
    for line in lines:
        cells = line.split(",")
        if cells[8] == "2025-03":
            cells[8], cells[9] = month, str(float(cells[9]) * 2)
            out.append(",".join(cells))
    keys = {tuple(line.split(",")[3:7]) for line in out}  # one fact row per key (both indicators merged)
    return f"comext_DE_JP_{month}.csv", ("\n".join([header, *out]) + "\n").encode(), len(keys)


def fingerprint(warehouse: Path) -> dict[str, tuple]:
    """Rows and a hash of the sorted rows of every table: equal fingerprints, equal data."""
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        present = {r[0] for r in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        return {t.name: conn.execute(
            f"SELECT count(*), md5(coalesce(string_agg(t::VARCHAR, '|' ORDER BY t::VARCHAR), '')) "
            f'FROM "{t.name}" AS t').fetchone() for t in ALL_TABLES if t.name in present}


def query(warehouse: Path, sql: str, params=()):
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.execute(sql, params).fetchall()


@pytest.fixture(scope="module")
def day1(tmp_path_factory) -> Path:
    """A warehouse loaded from the bundled snapshot of every source (day 1)."""
    wh = tmp_path_factory.mktemp("day1") / "warehouse.duckdb"
    batches = run_steps(wh, {s.name: snapshot_payloads(s.name) for s in SOURCES}, run_id=DAY1)
    assert all(b.status == "loaded" for b in batches.values()), [b.error for b in batches.values()]
    return wh


@pytest.fixture
def warehouse(day1, tmp_path) -> Path:
    wh = tmp_path / "var" / "warehouse.duckdb"
    wh.parent.mkdir()
    shutil.copyfile(day1, wh)
    return wh


def day2(warehouse: Path, table: str, payloads, run_id: str = DAY2):
    """Day 2: prepare one source's payloads and load-audit-promote them, as the daily flow does."""
    settings = Settings(warehouse_path=warehouse, publish_uri=str(warehouse.parent / "objectstore"), run_id=run_id)
    countries = load_countries(settings.run_date)
    source = source_of(table)
    batch = prepare_source(source, payloads, countries,
                           SourceBatch(source=source.name, table=table, started_at=utcnow()))
    assert batch.status == "prepared", batch.error
    return load_audit_promote(settings, [batch], countries)


def downstream(table: str) -> set[str]:
    """The models that read `table`, directly or through other models."""
    found: set[str] = set()
    for name, model in MODELS.items():  # build order: a model's inputs come before it
        if table in model.depends_on or found & set(model.depends_on):
            found.add(name)
    return found


def test_a_new_month_writes_that_month_and_rebuilds_only_the_models_that_read_it(warehouse, tmp_path, caplog):
    name, data, month_rows = new_month_payload()
    before = query(warehouse, f"SELECT period_code, count(*) FROM {PRODUCTS} GROUP BY 1 ORDER BY 1")
    with caplog.at_level(logging.INFO, logger="eujp"):
        _, audit, _, changes = day2(warehouse, PRODUCTS, [payload(source_of(PRODUCTS).name, name, data)])
    assert audit["ok"]
    # each step's end is in the run's log, with what it did
    logged = [r.getMessage() for r in caplog.records if r.name == "eujp"]
    assert any(m.startswith(f"load: {month_rows} fact row(s) written to {PRODUCTS} in ") for m in logged), logged
    # the models that read the fact table but dim_product: the month brings no CN8 code it does not hold (its
    # depends_on_values), so it is kept as it is
    expected = downstream(PRODUCTS) - {"dim_product"}
    rebuilt = len(expected)
    assert any(m.startswith(f"models: {rebuilt} rebuilt, {len(MODELS) - rebuilt} kept in ") for m in logged), logged
    assert any(re.match(r"audit: \d+ check\(s\), passed in ", m) for m in logged), logged

    # Rows written: the new month only; every earlier month keeps the run that loaded it.
    assert changes["rows_written"] == {PRODUCTS: month_rows}
    assert query(warehouse, f"SELECT DISTINCT period_code FROM {PRODUCTS} WHERE run_id = ?", [DAY2]) \
        == [("2025-04",)]
    assert query(warehouse, f"SELECT count(*) FROM {PRODUCTS} WHERE run_id = ?", [DAY2]) == [(month_rows,)]
    assert query(warehouse, f"SELECT period_code, count(*) FROM {PRODUCTS} WHERE period_code <> '2025-04' "
                            "GROUP BY 1 ORDER BY 1") == before
    assert query(warehouse, "SELECT rows_written FROM etl_runs WHERE run_id = ?", [DAY2]) == [(month_rows,)]

    # Models rebuilt: those that read the fact table (but dim_product), no other; etl_model_state says which and
    # why.
    assert expected and expected < set(MODELS) and "dim_product" in downstream(PRODUCTS)
    assert set(changes["models_rebuilt"]) == expected
    assert set(changes["models_kept"]) == set(MODELS) - expected
    assert dict(query(warehouse, "SELECT model, reason FROM etl_model_state WHERE built_run_id = ?", [DAY2])) \
        == changes["models_rebuilt"]
    # mart_product_trade and the marts built on it are rebuilt for the year the month falls in only (their
    # partition_by)
    assert changes["models_rebuilt"]["mart_product_trade"] == \
        "input written: fact_goods_trade_product; period_year 2025 only"
    assert changes["models_rebuilt"]["mart_chapter_trade"] == "input written: mart_product_trade; period_year 2025 only"
    assert changes["models_rebuilt"]["mart_partner_chapter_trade"] == \
        "input written: fact_goods_trade_product, mart_product_trade; period_year 2025 only"
    assert "dim_product" in changes["models_kept"]
    assert {m for (m,) in query(warehouse, "SELECT model FROM etl_model_state WHERE built_run_id = ?", [DAY1])} \
        == set(MODELS) - expected
    assert query(warehouse, "SELECT count(*) FROM mart_product_trade WHERE period_year = 2025 AND reporter = 'DE'"
                            " AND value_eur IS NOT NULL") != [(0,)]

    # What was kept and what was rebuilt equal a rebuild of every model from the same facts.
    full = tmp_path / "full.duckdb"
    shutil.copyfile(warehouse, full)
    with duckdb.connect(str(full)) as conn:
        build_marts(conn)
    models = {t: v for t, v in fingerprint(full).items() if t in MODELS}
    assert models == {t: v for t, v in fingerprint(warehouse).items() if t in MODELS}
    assert not list((warehouse.parent / "staging").iterdir())


def test_a_changed_definition_rebuilds_its_model(warehouse):
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("UPDATE etl_model_state SET definition_sha256 = 'an older definition' "
                     "WHERE model = 'mart_trade_annual'")
    name, data, _ = new_month_payload()
    _, _, _, changes = day2(warehouse, PRODUCTS, [payload(source_of(PRODUCTS).name, name, data)])
    assert changes["models_rebuilt"]["mart_trade_annual"] == "definition changed"
    assert "mart_arms_transfers" in changes["models_kept"]


def test_an_audit_failure_leaves_nothing_behind(warehouse, caplog):
    before = fingerprint(warehouse)
    source = source_of(EVENTS)
    file = next(SNAPSHOT.glob(source.snapshot_glob))
    header, first, *_ = file.read_text(encoding="utf-8").splitlines()
    # The events register is a full extract: two rows replace the 64 bundled ones, a drop the audit refuses.
    from eujp.errors import AuditFailed

    with caplog.at_level(logging.INFO, logger="eujp"), pytest.raises(AuditFailed, match=f"{EVENTS}.row_count_delta"):
        day2(warehouse, EVENTS, [payload(source.name, file.name, f"{header}\n{first}\n".encode())])
    assert fingerprint(warehouse) == before
    assert any(re.match(r"audit: \d+ check\(s\), FAILED in ", r.getMessage()) for r in caplog.records)
    assert not list((warehouse.parent / "staging").iterdir())  # no staging link, no write-ahead log
    assert sorted(p.name for p in warehouse.parent.iterdir()) == ["staging", "warehouse.duckdb"]
    assert query(warehouse, "SELECT count(*) FROM etl_runs WHERE run_id = ?", [DAY2]) == [(0,)]


KILLED_CHILD = """
import sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
import eujp.run
from support.pipeline_steps import payload
real_audit = eujp.run.audit_staging

def paused(*args, **kwargs):
    report = real_audit(*args, **kwargs)
    Path({ready!r}).write_text("loaded, marts built, audited: about to promote")
    time.sleep(300)
    return report

eujp.run.audit_staging = paused
from test_incremental_day import day2, new_month_payload, source_of, PRODUCTS
name, data, _ = new_month_payload()
day2(Path({warehouse!r}), PRODUCTS, [payload(source_of(PRODUCTS).name, name, data)], run_id={run_id!r})
"""


def test_a_run_killed_before_its_promotion_leaves_the_previous_warehouse(warehouse, tmp_path):
    before = fingerprint(warehouse)
    ready = tmp_path / "ready"
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(KILLED_CHILD.format(
        tests=str(REPO / "tests"), ready=str(ready), warehouse=str(warehouse), run_id="20261125T060000Z-kill01")))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests" / "integration")])}
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "the child run never reached its audit"
            time.sleep(0.1)
        staging = warehouse.parent / "staging"
        log = staging / "20261125T060000Z-kill01.duckdb.wal"
        assert log.exists() and log.stat().st_size > 0  # the load and the marts were committed, to the log
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL

    # A reader of the live file gets exactly the previous good data: nothing replays the killed run's log.
    assert fingerprint(warehouse) == before
    assert query(warehouse, f"SELECT count(*) FROM {PRODUCTS} WHERE period_code = '2025-04'") == [(0,)]
    # The next run (holding the lock, as the flow does) removes the leftovers and loads the month.
    assert clean_stale_staging(warehouse.parent / "staging")
    name, data, month_rows = new_month_payload()
    _, audit, _, changes = day2(warehouse, PRODUCTS, [payload(source_of(PRODUCTS).name, name, data)])
    assert audit["ok"] and changes["rows_written"] == {PRODUCTS: month_rows}
    assert query(warehouse, f"SELECT count(*) FROM {PRODUCTS} WHERE period_code = '2025-04'") == [(month_rows,)]
    assert query(warehouse, "SELECT count(*) FROM etl_runs WHERE run_id = '20261125T060000Z-kill01'") == [(0,)]
    assert not list((warehouse.parent / "staging").iterdir())


def test_a_month_of_a_new_year_rebuilds_that_year_and_leaves_the_others(warehouse, tmp_path):
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        kept = conn.execute("SELECT * FROM mart_product_trade WHERE period_year = 2025 ORDER BY ALL").fetchall()
    name, data, _ = new_month_payload("2026-01")
    _, _, _, changes = day2(warehouse, PRODUCTS, [payload(source_of(PRODUCTS).name, name, data)])
    assert changes["models_rebuilt"]["mart_product_trade"].endswith("; period_year 2026 only")
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        assert conn.execute("SELECT * FROM mart_product_trade WHERE period_year = 2025 ORDER BY ALL").fetchall() == kept
        assert conn.execute("SELECT count(*) FROM mart_product_trade WHERE period_year = 2026").fetchone()[0] > 0
    full = tmp_path / "full.duckdb"
    shutil.copyfile(warehouse, full)
    with duckdb.connect(str(full)) as conn:
        build_marts(conn)
    assert {t: v for t, v in fingerprint(full).items() if t in MODELS} == \
        {t: v for t, v in fingerprint(warehouse).items() if t in MODELS}
