"""The audit of a staged warehouse (write-AUDIT-publish): unique keys, row-count deltas against the live
warehouse and against the published latest run, the suites re-run on the staged tables, and accounting
(rows in = loaded + rejected; every rejected row quarantined). An unreadable S3 store:
tests/integration/test_audit_s3.py; the audit in the daily flow: tests/e2e/test_audit_flow.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import polars as pl
import pytest

from eujp.audit import PublishedBaseline, audit_staging, published_baseline
from eujp.errors import AuditFailed, EujpError
from eujp.publish import LATEST_POINTER, publish_run
from eujp.sources import eurostat_goods
from eujp.storage import LocalObjectStore
from eujp.tables import ensure_schema
from eujp.warehouse import connect, record_rejected, record_run, upsert_fact

# The source these tests load, by its module (a source's name is written in its own folder only).
GOODS, FACT_GOODS_TRADE = eurostat_goods.SOURCE.name, eurostat_goods.TABLE

NOW = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
RUN = "20261124T060000Z-audit1"


def goods(n: int, *, flow: str = "export") -> pl.DataFrame:
    return pl.DataFrame(
        [{"reporter": "EU28", "partner": "JP", "flow": flow, "period_year": 2000 + i, "value_mio_eur": 1.0 + i,
          "obs_status": None, "source": GOODS, "source_version": "v"} for i in range(n)],
        schema=FACT_GOODS_TRADE.business_columns,
    )


@pytest.fixture
def conn(tmp_path):
    c = connect(tmp_path / "staging.duckdb")
    ensure_schema(c)
    yield c
    c.close()


def load_goods(conn, n: int, **kw) -> None:
    upsert_fact(conn, FACT_GOODS_TRADE, goods(n, **kw), run_id=RUN, loaded_at=NOW, source=GOODS)


def run_row(source=GOODS, *, rows_in=0, loaded=0, rejected=0, status="success") -> dict:
    return {"run_id": RUN, "source": source, "table_name": "fact_goods_trade", "input_checksum": "x",
            "source_version": "v", "rows_in": rows_in, "rows_loaded": loaded, "rows_rejected": rejected,
            "rows_written": loaded, "started_at": NOW, "ended_at": NOW, "status": status, "message": None}


def quarantine(conn, n: int, source=GOODS) -> None:
    frame = pl.DataFrame({"reason": ["bad"] * n, "raw_record": ['{"x": 1}'] * n})
    record_rejected(conn, run_id=RUN, source=source, table_name="fact_goods_trade", rejected=frame, at=NOW)


def audit(conn, **kw):
    kw.setdefault("previous_counts", {})
    kw.setdefault("max_row_drop_pct", 50.0)
    return audit_staging(conn, run_id=RUN, **kw)


def check(report, name):
    (found,) = [c for c in report.checks if c.name == name]
    return found


def test_a_healthy_staged_warehouse_passes_every_check(conn):
    load_goods(conn, 4)
    record_run(conn, run_row(rows_in=6, loaded=4, rejected=2))
    quarantine(conn, 2)
    report = audit(conn, previous_counts={"fact_goods_trade": 4}, revalidate=["fact_goods_trade"])
    assert report.ok, report.to_dict()
    assert check(report, "fact_goods_trade.suite").detail.startswith("4 staged rows meet every critical")
    report.raise_if_failed()  # does not raise


def test_duplicated_natural_key_fails_the_audit(conn):
    load_goods(conn, 2)
    # A second copy of a key, written behind the loader's back (the loader itself replaces by key).
    conn.execute("INSERT INTO fact_goods_trade SELECT * FROM fact_goods_trade WHERE period_year = 2000")
    report = audit(conn)
    found = check(report, "fact_goods_trade.unique_natural_key")
    assert not found.ok and found.detail == "1 natural key(s) occur more than once"
    with pytest.raises(AuditFailed, match=r"audit failed, nothing published: fact_goods_trade.unique_natural_key"):
        report.raise_if_failed()


@pytest.mark.parametrize(("before", "after", "threshold", "ok"), [
    (10, 5, 50.0, True),     # exactly the threshold
    (10, 4, 50.0, False),    # beyond it
    (10, 4, 70.0, True),     # a looser threshold (EUJP_MAX_ROW_DROP_PCT)
    (10, 0, 99.0, False),    # a table emptied
    (0, 0, 0.0, True),       # nothing before: nothing to compare
    (3, 30, 0.0, True),      # growth never fails
])
def test_row_count_drop_against_the_live_warehouse(conn, before, after, threshold, ok):
    load_goods(conn, after)
    report = audit(conn, previous_counts={"fact_goods_trade": before}, max_row_drop_pct=threshold)
    found = check(report, "fact_goods_trade.row_count_delta")
    assert found.ok is ok, found
    assert found.detail.startswith(f"live warehouse: {before} -> {after} rows")


def test_row_count_drop_against_the_published_run_fails_even_with_an_empty_local_baseline(conn):
    """A fresh machine (no local warehouse) publishing to a bucket that holds a bigger run."""
    load_goods(conn, 2)
    published = PublishedBaseline(run_id="20261123T060000Z-pub001", table_rows={"fact_goods_trade": 40})
    report = audit(conn, previous_counts={}, published=published)
    assert check(report, "fact_goods_trade.row_count_delta").ok  # nothing local to compare with
    found = check(report, "fact_goods_trade.row_count_delta_vs_published")
    assert not found.ok
    assert found.detail.startswith("published run 20261123T060000Z-pub001: 40 -> 2 rows (-95.0%")
    # without a published run there is no such check
    assert not [c for c in audit(conn).checks if c.name.endswith("_vs_published")]


def test_the_suite_is_re_run_on_the_staged_table(conn):
    load_goods(conn, 3)
    # A row no batch could have brought (each batch was validated), e.g. left by an older release.
    conn.execute("UPDATE fact_goods_trade SET flow = 'sideways' WHERE period_year = 2001")
    report = audit(conn, revalidate=["fact_goods_trade"])
    found = check(report, "fact_goods_trade.suite")
    assert not found.ok
    assert "critical expectation(s) fail on the 3 staged rows" in found.detail
    assert "expect_column_values_to_be_in_set(flow)" in found.detail
    # Tables the run did not load are not re-validated (they are what the previous audit passed).
    assert not [c for c in audit(conn).checks if c.name.endswith(".suite")]


def test_unbalanced_accounting_fails(conn):
    record_run(conn, run_row(rows_in=10, loaded=7, rejected=2))
    quarantine(conn, 2)
    found = check(audit(conn), "etl_runs.accounting")
    assert not found.ok and found.detail == f"{GOODS}: 10 in != 7 loaded + 2 rejected"


@pytest.mark.parametrize(("status", "rejected", "quarantined", "ok"), [
    ("success", 3, 3, True),
    ("success", 3, 2, False),   # a rejected row that is nowhere: lost silently
    ("success", 0, 1, False),   # a quarantined row etl_runs does not count
    ("failed", 10, 4, True),    # a blocked merging batch: fewer table rows than input rows
    ("failed", 10, 0, False),
    ("failed", 0, 0, True),     # failed before parsing: nothing to quarantine (payload in the raw zone)
    ("unchanged", 0, 0, True),
])
def test_every_rejected_row_is_quarantined(conn, status, rejected, quarantined, ok):
    record_run(conn, run_row(rows_in=rejected, rejected=rejected, status=status))
    if quarantined:
        quarantine(conn, quarantined)
    found = check(audit(conn), "etl_rejected_rows.accounting")
    assert found.ok is ok, found
    if not ok:
        assert found.detail == f"{GOODS} ({status}): {rejected} rows rejected but {quarantined} quarantined"


# --- the published baseline ------------------------------------------------------------------------------

def publish(store, tmp_path, run_id: str, rows: int):
    wh = tmp_path / f"{run_id}.duckdb"
    with connect(wh) as c:
        ensure_schema(c)
        upsert_fact(c, FACT_GOODS_TRADE, goods(rows), run_id=run_id, loaded_at=NOW, source=GOODS)
    publish_run(store, run_id=run_id, warehouse_path=wh, work_dir=tmp_path / f"work-{run_id}",
                manifest_without_checksums={"run_id": run_id, "status": "success",
                                            "table_rows": {"fact_goods_trade": rows, "etl_runs": 0},
                                            "sources": {}, "validation": {}, "audit": {"ok": True}})


def test_published_baseline_reads_the_latest_runs_verified_manifest(tmp_path):
    store = LocalObjectStore(tmp_path / "objects")
    assert published_baseline(store) is None  # nothing published yet
    publish(store, tmp_path, "20261123T060000Z-base01", rows=7)
    publish(store, tmp_path, "20261124T060000Z-base02", rows=9)
    assert published_baseline(store) == PublishedBaseline("20261124T060000Z-base02",
                                                          {"fact_goods_trade": 9, "etl_runs": 0})


def test_a_manifest_that_does_not_match_the_pointer_is_refused(tmp_path):
    store = LocalObjectStore(tmp_path / "objects")
    publish(store, tmp_path, "20261124T060000Z-base03", rows=7)
    pointer = json.loads(store.get_bytes(LATEST_POINTER))
    manifest = json.loads(store.get_bytes(pointer["manifest"]))
    manifest["tables"]["fact_goods_trade"]["rows"] = 0
    store.put_bytes(pointer["manifest"], json.dumps(manifest).encode())
    with pytest.raises(EujpError, match=r"does not match the sha256 in latest.json"):
        published_baseline(store)


def test_given_what_the_run_wrote_only_its_keys_are_checked(conn):
    load_goods(conn, 3)
    upsert_fact(conn, FACT_GOODS_TRADE, goods(1).with_columns(pl.lit(2030).alias("period_year")), run_id="later",
                loaded_at=NOW, source=GOODS)
    # A second copy of a key the later run wrote: caught by the check of that run's keys.
    conn.execute("INSERT INTO fact_goods_trade SELECT * FROM fact_goods_trade WHERE period_year = 2030")
    report = audit_staging(conn, run_id="later", previous_counts={}, max_row_drop_pct=50.0,
                           written=["fact_goods_trade"])
    found = check(report, "fact_goods_trade.unique_natural_key")
    assert not found.ok and found.detail == "1 natural key(s) occur more than once"
    # A table the run did not write is the one the previous audit passed.
    assert check(report, "fact_arms_transfers.unique_natural_key").detail.startswith("not written by this run")
    # Without a duplicate among its keys, the run's check passes (the table's other keys are not grouped).
    conn.execute("DELETE FROM fact_goods_trade WHERE period_year = 2030")
    upsert_fact(conn, FACT_GOODS_TRADE, goods(1).with_columns(pl.lit(2030).alias("period_year")), run_id="later",
                loaded_at=NOW, source=GOODS)
    report = audit_staging(conn, run_id="later", previous_counts={}, max_row_drop_pct=50.0,
                           written=["fact_goods_trade"])
    assert check(report, "fact_goods_trade.unique_natural_key").detail == "the keys this run wrote are unique"


def suite_state(conn):
    return conn.execute("SELECT table_name, suite_sha256, audited_run_id, scope, rows_checked "
                        "FROM etl_suite_state ORDER BY table_name").fetchall()


def test_once_the_table_passed_a_suite_later_audits_check_only_the_rows_each_run_wrote(conn):
    """A day adding 2 rows to a table of 3 checks those 2 (not the history, whose rows passed the same suite);
    a bad row of the run still fails the audit; a changed suite checks every row again; a failed audit
    records nothing."""
    from eujp.audit import suite_sha256
    from eujp.validate import load_suite

    digest = suite_sha256(load_suite("fact_goods_trade"))
    load_goods(conn, 3)
    first = check(audit(conn, revalidate=["fact_goods_trade"]), "fact_goods_trade.suite")
    assert first.ok and first.detail.startswith("3 staged rows meet")
    assert suite_state(conn) == [("fact_goods_trade", digest, RUN, "table", 3)]

    day = "20261125T060000Z-audit2"
    upsert_fact(conn, FACT_GOODS_TRADE, goods(5).tail(2), run_id=day, loaded_at=NOW, source=GOODS)
    second = check(audit_staging(conn, run_id=day, previous_counts={}, max_row_drop_pct=50.0,
                                 revalidate=["fact_goods_trade"]), "fact_goods_trade.suite")
    assert second.ok and second.detail == ("2 rows this run wrote (the table's other rows passed this suite before) "
                                           "meet every critical expectation"), second.detail
    assert suite_state(conn) == [("fact_goods_trade", digest, day, "run", 2)]

    bad_day = "20261126T060000Z-audit3"
    upsert_fact(conn, FACT_GOODS_TRADE, goods(6).tail(1).with_columns(pl.lit("sideways").alias("flow")),
                run_id=bad_day, loaded_at=NOW, source=GOODS)
    third = check(audit_staging(conn, run_id=bad_day, previous_counts={}, max_row_drop_pct=50.0,
                                revalidate=["fact_goods_trade"]), "fact_goods_trade.suite")
    assert not third.ok and "fail on the 1 rows this run wrote" in third.detail, third.detail
    assert suite_state(conn) == [("fact_goods_trade", digest, day, "run", 2)]  # a failed audit records nothing

    # The suite changed since the rows passed it (here: the recorded one differs): every row is checked,
    # the bad row of the earlier run included, under its own run id.
    conn.execute("DELETE FROM fact_goods_trade WHERE run_id = ?", [bad_day])
    conn.execute("UPDATE fact_goods_trade SET flow = 'sideways' WHERE period_year = 2000")
    conn.execute("UPDATE etl_suite_state SET suite_sha256 = 'an older suite'")
    changed = check(audit_staging(conn, run_id="20261127T060000Z-audit4", previous_counts={}, max_row_drop_pct=50.0,
                                  revalidate=["fact_goods_trade"]), "fact_goods_trade.suite")
    assert not changed.ok and "fail on the 5 staged rows" in changed.detail, changed.detail


def test_a_suite_with_mostly_checks_every_row_whatever_passed_before(conn, monkeypatch):
    """A `mostly` is a share of the whole table: a run's rows meeting it say nothing of the table's."""
    from eujp import validate
    from eujp.audit import suite_sha256

    real = validate.load_suite(FACT_GOODS_TRADE.name)
    suite = json.loads(json.dumps(real))
    for e in suite["expectations"]:
        if e["type"] == "expect_column_values_to_be_in_set" and e["kwargs"]["column"] == "flow":
            e["kwargs"]["mostly"] = 0.5
    monkeypatch.setattr(validate, "load_suite", lambda name, expectations_dir=None:
                        suite if name == FACT_GOODS_TRADE.name else real)
    load_goods(conn, 3)
    conn.execute("INSERT INTO etl_suite_state VALUES (?, ?, ?, ?, ?, ?)",
                 [FACT_GOODS_TRADE.name, suite_sha256(suite), "an earlier run", NOW, "table", 3])
    day = "20261125T060000Z-audit2"
    upsert_fact(conn, FACT_GOODS_TRADE, goods(5).tail(2), run_id=day, loaded_at=NOW, source=GOODS)
    found = check(audit_staging(conn, run_id=day, previous_counts={}, max_row_drop_pct=50.0,
                                revalidate=["fact_goods_trade"]), "fact_goods_trade.suite")
    assert found.ok and found.detail.startswith("5 staged rows meet"), found.detail
    assert suite_state(conn)[0][3:] == ("table", 5)
