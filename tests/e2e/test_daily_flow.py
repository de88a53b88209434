"""The whole daily flow on the bundled snapshot: into a folder, into S3 (moto), twice, and with a
failing expectation. Values are traced to the bundled source files."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import boto3
import duckdb
import pytest
from support.failing_suite import FAILED_EXPECTATION, unstamp_snapshot
from support.failing_suite import TABLE as FAILING_TABLE

from eujp.sources import SOURCES, comext_goods, security_events, sipri_arms
from eujp.tables import FACT_TABLES
from flows.daily import daily_flow
from flows.results import RunFailedError, state_summary

# The sources these runs single out, by their modules (a source's name is written in its own folder only).
COMEXT, SIPRI, EVENTS = comext_goods.SOURCE.name, sipri_arms.SOURCE.name, security_events.SOURCE.name
SNAPSHOT = Path(__file__).resolve().parents[2] / "data" / "snapshot"


def run(tmp_path: Path, *, snapshot_dir: Path = SNAPSHOT, publish_uri: str | None = None, run_id: str):
    state = daily_flow(
        snapshot_dir=str(snapshot_dir),
        warehouse=str(tmp_path / "var" / "warehouse.duckdb"),
        publish_uri=publish_uri or str(tmp_path / "var" / "objectstore"),
        run_id=run_id,
        return_state=True,
    )
    return state, state_summary(state)


def query(tmp_path: Path, sql: str, params=()):
    with duckdb.connect(str(tmp_path / "var" / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(sql, params).fetchall()


def csv_rows(path: Path, encoding="utf-8", skip=0):
    with open(path, encoding=encoding, newline="") as f:
        lines = f.read().splitlines()[skip:]
    return list(csv.DictReader(lines))


def test_daily_flow_loads_every_table_and_publishes_to_a_folder(prefect_server, tmp_path):
    state, summary = run(tmp_path, run_id="20261124T060000Z-e2e001")
    assert state.is_completed(), summary
    counts = summary["table_rows"]
    # every fact table is loaded
    for table in FACT_TABLES:
        assert counts[table.name] > 0, table.name
    # events: one row per curated row
    events = csv_rows(SNAPSHOT / "security_events.csv")
    assert counts["fact_security_events"] == len(events)
    assert query(tmp_path, "SELECT title FROM fact_security_events WHERE event_date = DATE '2024-11-01' "
                 "AND event_type = 'agreement'")  # the Tokyo Security and Defence Partnership
    # SIPRI: every register row of the bundled Japan subset is loaded or quarantined, none lost
    sipri = csv_rows(SNAPSHOT / "sipri_trade_register_japan.csv", encoding="latin-1", skip=11)
    (loaded, rejected), = query(tmp_path, "SELECT rows_loaded, rows_rejected FROM etl_runs "
                                "WHERE source = ?", [SIPRI])
    assert loaded + rejected == len(sipri) == 455
    assert query(tmp_path, "SELECT count(*) FROM fact_arms_transfers WHERE supplier = 'Germany' "
                 "AND recipient = 'Japan'") == [(5,)]
    # Comext: a value and a quantity traced to the verbatim API response
    assert query(tmp_path, "SELECT value_eur, quantity_kg FROM fact_goods_trade_product WHERE reporter = 'DE' "
                 "AND partner = 'JP' AND product_cn8 = '84834030' AND period_code = '2025-02' "
                 "AND flow = 'import'") == [(1663789.0, pytest.approx(50202.0))]
    # annual goods: the EU28 2016 exports (DG Trade, EUR 58.0bn) under EU28 only
    assert query(tmp_path, "SELECT value_mio_eur FROM fact_goods_trade WHERE reporter = 'EU28' AND partner = 'JP' "
                 "AND flow = 'export' AND period_year = 2016") == [(pytest.approx(58000.0),)]
    # every fact row keeps its source and run
    for table in FACT_TABLES:
        assert query(tmp_path, f"SELECT count(*) FROM {table.name} WHERE source IS NULL OR run_id IS NULL") \
            == [(0,)]
    # etl_runs: one row per source, accounting holds
    runs = query(tmp_path, "SELECT source, status, rows_in, rows_loaded, rows_rejected FROM etl_runs")
    assert len(runs) == len(SOURCES) and all(r[1] == "success" and r[2] == r[3] + r[4] for r in runs), runs
    # published objects
    store = tmp_path / "var" / "objectstore"
    pointer = json.loads((store / "latest.json").read_text())
    assert pointer["run_id"] == "20261124T060000Z-e2e001"
    run_dir = store / pointer["prefix"]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["tables"]["fact_security_events"]["rows"] == len(events)
    for table in FACT_TABLES:
        assert (run_dir / "parquet" / f"{table.name}.parquet").is_file()
    assert (run_dir / "warehouse.duckdb").is_file() and (store / "latest" / "warehouse.duckdb").is_file()
    # the marts are built in the same run and published with the facts; the report beside them
    assert query(tmp_path, "SELECT verdict FROM mart_claims WHERE claim_id = 'japan_second_largest_partner'") \
        == [("contradicted",)]
    assert manifest["tables"]["mart_trade_annual"]["rows"] == counts["mart_trade_annual"] > 0
    assert (run_dir / "parquet" / "mart_claims.parquet").is_file()
    report = (run_dir / "report.html").read_text(encoding="utf-8")
    assert report.count("<svg") == 4 and "20261124T060000Z-e2e001" in report
    # latest/ gets the page with its Parquet links pointing into the run's folder (every one reaches its file)
    latest = (store / "latest" / "report.html").read_text(encoding="utf-8")
    assert latest == report.replace('href="parquet/', 'href="../runs/20261124T060000Z-e2e001/parquet/')
    links = re.findall(r'href="(\.\./runs/[^"]+)"', latest)
    assert links and all((store / "latest" / link).resolve().exists() for link in links)
    assert manifest["files"]["report.html"]
    # its four charts kept beside the warehouse for the next run (eujp.report.ChartCache), each one in the page
    kept = list((tmp_path / "var" / "report-charts").glob("*.svg"))
    assert len(kept) == 4 and all(svg.read_text(encoding="utf-8") in report for svg in kept)
    assert set(manifest["sources"]) == {s.name for s in SOURCES}
    assert manifest["sources"][SIPRI]["source_version"].startswith("2025-03-13")
    # raw landing zone holds every payload, content-addressed
    assert len(list((store / "raw" / COMEXT).rglob("*.csv"))) == 2


def test_second_run_is_idempotent(prefect_server, tmp_path):
    _, first = run(tmp_path, run_id="20261124T060000Z-idem01")
    state, second = run(tmp_path, run_id="20261124T060000Z-idem02")
    assert state.is_completed(), second
    assert second["table_rows"] == first["table_rows"] | {
        "etl_runs": second["table_rows"]["etl_runs"],
        "etl_rejected_rows": second["table_rows"]["etl_rejected_rows"],
    }
    for table in FACT_TABLES:
        keys = ", ".join(table.natural_key)
        assert query(tmp_path, f"SELECT count(*) FROM (SELECT {keys} FROM {table.name} GROUP BY ALL "
                     "HAVING count(*) > 1)") == [(0,)], table.name
    assert query(tmp_path, "SELECT count(DISTINCT run_id) FROM etl_runs") == [(2,)]


def test_a_day_with_nothing_new_records_its_check_and_publishes_nothing(prefect_server, tmp_path, monkeypatch):
    store = tmp_path / "var" / "objectstore"
    _, first = run(tmp_path, run_id="20261124T060000Z-same01")
    state, second = run(tmp_path, run_id="20261124T060000Z-same02")
    assert state.is_completed(), second
    # nothing rebuilt or published: latest still points at the first run, which is reported as current
    assert second["current_run_id"] == "20261124T060000Z-same01"
    assert second["published_to"] == first["published_to"]
    assert json.loads((store / "latest.json").read_text())["run_id"] == "20261124T060000Z-same01"
    assert not (store / "runs" / "20261124T060000Z-same02").exists()
    check = json.loads((store / "latest-check.json").read_text())
    assert (check["run_id"], check["current_run_id"], check["status"]) == \
        ("20261124T060000Z-same02", "20261124T060000Z-same01", "unchanged")
    assert set(check["sources"]) == {s["source"] for s in first["sources"]}
    # ... but the check is recorded in the warehouse, and the table counts are those of the first run
    assert query(tmp_path, "SELECT status, count(*) FROM etl_runs WHERE run_id = '20261124T060000Z-same02' "
                 "GROUP BY ALL") == [("unchanged", len(SOURCES))]
    assert {k: v for k, v in second["table_rows"].items() if not k.startswith("etl_")} == \
        {k: v for k, v in first["table_rows"].items() if not k.startswith("etl_")}
    # `eujp status` says so
    from typer.testing import CliRunner

    from flows.cli import app

    status = CliRunner().invoke(app, ["status", "--warehouse", str(tmp_path / "var" / "warehouse.duckdb"),
                                      "--publish", str(store)])
    assert status.exit_code == 0, status.output
    text = " ".join(status.output.split())
    assert "run 20261124T060000Z-same02 at" in text and "found nothing new" in text
    assert "run 20261124T060000Z-same01 is current" in text
    # a new release (other code) with the same inputs: rebuilt and published
    import eujp.fingerprint

    monkeypatch.setattr(eujp.fingerprint, "code_fingerprint", lambda: "another release")
    state, third = run(tmp_path, run_id="20261124T060000Z-same03")
    assert state.is_completed(), third
    assert third["current_run_id"] is None
    latest = json.loads((store / "latest.json").read_text())
    assert latest["run_id"] == "20261124T060000Z-same03"
    manifest = json.loads((store / "latest" / "manifest.json").read_text())
    assert manifest["fingerprint"]["code"] == "another release"
    # published, not yet checked again: the next unchanged day stops early again
    state, fourth = run(tmp_path, run_id="20261124T060000Z-same04")
    assert fourth["current_run_id"] == "20261124T060000Z-same03"


def test_a_partner_removed_on_a_day_with_nothing_new_is_published_without_it(prefect_server, tmp_path):
    """`eujp run --remove-partner CN` (the flow's remove_partners) on a day whose sources are all unchanged: not a
    day with nothing new; the partner's rows leave the warehouse, the marts and what is published; the next
    unchanged day stops early again, the partner still gone."""
    store = tmp_path / "var" / "objectstore"
    _, first = run(tmp_path, run_id="20261124T060000Z-part01")
    manifest = json.loads((store / "latest" / "manifest.json").read_text())
    assert "CN" in {p["partner"] for p in manifest["partners"]["loaded"]}
    (cn,) = query(tmp_path, "SELECT count(*) FROM fact_goods_trade_product WHERE partner = 'CN'")[0]
    assert cn == 1  # the bundled all-partner extract of June 2025 (EU27_2020 imports)
    state = daily_flow(snapshot_dir=str(SNAPSHOT), warehouse=str(tmp_path / "var" / "warehouse.duckdb"),
                       publish_uri=str(store), run_id="20261124T060000Z-part02", remove_partners=["CN"],
                       return_state=True)
    second = state_summary(state)
    assert state.is_completed(), second
    assert second["current_run_id"] is None and all(s["status"] == "unchanged" for s in second["sources"])
    assert second["changes"]["partners_removed"] == {"CN": {"fact_rows": 1, "coverage_rows": 0}}
    assert second["table_rows"]["fact_goods_trade_product"] == first["table_rows"]["fact_goods_trade_product"] - 1
    assert json.loads((store / "latest.json").read_text())["run_id"] == "20261124T060000Z-part02"
    manifest = json.loads((store / "latest" / "manifest.json").read_text())
    loaded = {p["partner"] for p in manifest["partners"]["loaded"]}
    assert "CN" not in loaded and "JP" in loaded
    with duckdb.connect(str(store / "latest" / "warehouse.duckdb"), read_only=True) as published:
        assert published.execute("SELECT count(*) FROM fact_goods_trade_product WHERE partner = 'CN'").fetchone() == (0,)
        assert published.execute("SELECT count(*) FROM mart_partner_years WHERE partner = 'CN'").fetchone() == (0,)
        assert published.execute("SELECT extra_eu_partners_ranked FROM mart_product_trade WHERE reporter = 'EU27_2020' "
                                 "AND flow = 'import'").fetchone() == (15,)
    state, third = run(tmp_path, run_id="20261124T060000Z-part03")
    assert third["current_run_id"] == "20261124T060000Z-part02"
    assert query(tmp_path, "SELECT count(*) FROM fact_goods_trade_product WHERE partner = 'CN'") == [(0,)]
    # removing it again: the warehouse holds no row of it, so the removal changes nothing and the day stops as
    # one with nothing new, saying so; nothing is published
    state = daily_flow(snapshot_dir=str(SNAPSHOT), warehouse=str(tmp_path / "var" / "warehouse.duckdb"),
                       publish_uri=str(store), run_id="20261124T060000Z-part04", remove_partners=["CN"],
                       return_state=True)
    fourth = state_summary(state)
    assert state.is_completed(), fourth
    assert fourth["current_run_id"] == "20261124T060000Z-part02"
    assert fourth["changes"] == {"partners_removed": {"CN": {"fact_rows": 0, "coverage_rows": 0}}}
    assert json.loads((store / "latest.json").read_text())["run_id"] == "20261124T060000Z-part02"
    assert json.loads((store / "latest-check.json").read_text())["run_id"] == "20261124T060000Z-part04"


def test_an_unchanged_day_after_a_failed_run_publishes_again(prefect_server, tmp_path):
    """A run with a failed source is published (its other sources, a manifest saying 'failed'). When the
    source's file is back to what it last loaded, every source is unchanged, but the day does not stop as
    'nothing new' under a latest that says a source failed: it publishes a run that ended well."""
    store = tmp_path / "var" / "objectstore"
    snapshot = tmp_path / "snapshot"
    shutil.copytree(SNAPSHOT, snapshot)
    events = snapshot / "security_events.csv"
    good = events.read_bytes()
    run(tmp_path, snapshot_dir=snapshot, run_id="20261124T060000Z-back01")
    events.write_bytes(b"")  # the file arrives empty: the source fails, the rest is published
    state, _ = run(tmp_path, snapshot_dir=snapshot, run_id="20261125T060000Z-back02")
    assert state.is_failed()
    assert json.loads((store / "latest" / "manifest.json").read_text())["status"] == "failed"
    events.write_bytes(good)
    state, third = run(tmp_path, snapshot_dir=snapshot, run_id="20261126T060000Z-back03")
    assert state.is_completed(), third
    assert third["current_run_id"] is None
    assert json.loads((store / "latest.json").read_text())["run_id"] == "20261126T060000Z-back03"
    manifest = json.loads((store / "latest" / "manifest.json").read_text())
    assert manifest["status"] == "success"
    # the next unchanged day stops early again
    state, fourth = run(tmp_path, snapshot_dir=snapshot, run_id="20261127T060000Z-back04")
    assert fourth["current_run_id"] == "20261126T060000Z-back03"


def test_an_unchanged_day_after_a_lost_publish_publishes(prefect_server, tmp_path):
    """A run promoted locally but never published (here: the published runs are gone) is published by the next
    day even though no source changed: the published latest run is not what the warehouse holds."""
    store = tmp_path / "var" / "objectstore"
    run(tmp_path, run_id="20261124T060000Z-lost01")
    shutil.rmtree(store)
    state, second = run(tmp_path, run_id="20261124T060000Z-lost02")
    assert state.is_completed(), second
    assert second["current_run_id"] is None
    assert json.loads((store / "latest.json").read_text())["run_id"] == "20261124T060000Z-lost02"


def test_publishes_to_s3(prefect_server, tmp_path, s3_bucket, s3_env):
    state, summary = run(tmp_path, publish_uri=f"s3://{s3_bucket}/eujp", run_id="20261124T060000Z-s3e2e1")
    assert state.is_completed(), summary
    client = boto3.client("s3", endpoint_url=s3_env)
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket, Prefix="eujp/")["Contents"]}
    run_prefix = "eujp/runs/20261124T060000Z-s3e2e1"
    for table in FACT_TABLES:
        assert f"{run_prefix}/parquet/{table.name}.parquet" in keys
    assert {f"{run_prefix}/warehouse.duckdb", f"{run_prefix}/manifest.json", "eujp/latest.json",
            "eujp/latest/warehouse.duckdb"} <= keys
    assert any(k.startswith(f"eujp/raw/{SIPRI}/") for k in keys)
    manifest = json.loads(client.get_object(Bucket=s3_bucket, Key=f"{run_prefix}/manifest.json")["Body"].read())
    assert manifest["tables"]["fact_arms_transfers"]["rows"] == summary["table_rows"]["fact_arms_transfers"]
    head = client.head_object(Bucket=s3_bucket, Key=f"{run_prefix}/warehouse.duckdb")
    assert head["Metadata"]["sha256"] == manifest["warehouse"]["sha256"]
    assert summary["published_to"] == f"s3://{s3_bucket}/eujp/{run_prefix.removeprefix('eujp/')}"


def test_failing_expectation_blocks_the_load_and_keeps_previous_data(prefect_server, tmp_path):
    run(tmp_path, run_id="20261124T060000Z-gx0001")
    before = query(tmp_path, f"SELECT * FROM {FAILING_TABLE} ORDER BY ALL")
    bad = tmp_path / "bad_snapshot"
    shutil.copytree(SNAPSHOT, bad)
    # Comext files without their release stamps: a batch-wide critical rule of the table's suite (source_version
    # required) fails, so the whole source is blocked (a row whose own values the suite refuses is rejected
    # alone by the transform: tests/support/failing_suite.py)
    unstamp_snapshot(bad)
    state, summary = run(tmp_path, snapshot_dir=bad, run_id="20261124T060000Z-gx0002")
    assert state.is_failed()
    message = state.message
    # what a deployment's runner does with the final state: raise its error, which carries the summary (a
    # summary held as the state's data raised a TypeError quoting all of it, logged as the run's last error)
    with pytest.raises(RunFailedError) as raised:
        state.result()
    assert str(raised.value) == message and raised.value.summary == summary and summary["status"] == "failed"
    assert FAILING_TABLE in message and FAILED_EXPECTATION in message
    assert query(tmp_path, f"SELECT * FROM {FAILING_TABLE} ORDER BY ALL") == before
    # the other tables still loaded in that run, and the failure is recorded
    assert query(tmp_path, "SELECT status, rows_in, rows_loaded, rows_rejected FROM etl_runs "
                 "WHERE run_id = '20261124T060000Z-gx0002' AND source = ?", [COMEXT]) == [
        ("failed", 96, 0, 96)]  # every wire row of the two files
    assert query(tmp_path, "SELECT count(*) FROM etl_runs WHERE run_id = '20261124T060000Z-gx0002' "
                 "AND status IN ('success', 'unchanged')") == [(len(SOURCES) - 1,)]
    # nothing lost: the blocked rows are quarantined with the reason, one per fact row the batch held
    assert query(tmp_path, "SELECT count(*) FROM etl_rejected_rows WHERE run_id = '20261124T060000Z-gx0002' "
                 "AND source = ? AND reason LIKE 'not loaded: %'", [COMEXT])[0][0] == len(before)


def test_a_run_stopped_before_the_load_leaves_no_spilled_chunks(prefect_server, tmp_path, monkeypatch):
    """A streamed source spills its valid rows chunk by chunk until the load; a run that stops between the
    two (here the load step raising) removes them all the same: nothing of it stays in the temporary folder."""
    from support.spill import fail_the_load_after_spilling

    import flows.daily

    spill_root = tmp_path / "var" / "staging" / "spill"  # beside the warehouse
    temporary, seen = fail_the_load_after_spilling(monkeypatch, tmp_path, flows.daily, spill_root)
    state, _ = run(tmp_path, run_id="20261124T060000Z-spill1")
    assert not state.is_completed()
    assert seen and seen[0] and all(p.startswith(f"eujp-{COMEXT}-valid-") for p in seen[0])  # spilled, then
    assert list(spill_root.glob("eujp-*")) == []
    assert list(temporary.glob("eujp-*")) == []  # nothing went to the system's temporary folder


def test_a_data_docs_build_that_fails_is_a_warning_and_the_data_are_published(prefect_server, tmp_path, monkeypatch):
    import eujp.run

    def fail(settings, reports):
        raise RuntimeError("no room for the docs")

    monkeypatch.setattr(eujp.run, "build_docs", fail)
    state, summary = run(tmp_path, run_id="20261124T060000Z-docs02")
    assert state.is_completed(), summary
    assert "Data Docs not built: RuntimeError: no room for the docs" in summary["warnings"]
    assert summary["docs_url"] is None
    assert summary["table_rows"]["fact_security_events"] == len(csv_rows(SNAPSHOT / "security_events.csv"))
    assert (tmp_path / "var" / "objectstore" / "latest.json").is_file()


def test_from_raw_of_a_day_on_which_one_source_landed_leaves_the_others_unchanged(prefect_server, tmp_path):
    """Live, a source with nothing new (304) lands nothing, so a day's raw zone holds only the sources that
    changed. `--from-raw` of such a day replays those; the others are unchanged in that run ("nothing was
    landed for it on DAY"), their rows and etl_source_state as they were, and the run succeeds and is published
    (it failed every other source: "nothing was landed")."""
    from datetime import date

    from eujp.extract import read_snapshot
    from eujp.landing import RawPayload
    from eujp.pipeline import land_payloads
    from eujp.sources import get_source
    from eujp.storage import LocalObjectStore

    store_dir = tmp_path / "var" / "objectstore"
    store = LocalObjectStore(store_dir)
    day1, day2 = date(2026, 3, 2), date(2026, 3, 3)
    for source in SOURCES:
        land_payloads(store, source, read_snapshot(source, SNAPSHOT), day1)
    comext, name = get_source(COMEXT), "comext_ds045409_DE_JP_84834030_2025Q1.csv"
    revised = (SNAPSHOT / name).read_text(encoding="utf-8").replace(",2025-02,1663789\n", ",2025-02,1700000\n")
    land_payloads(store, comext, [RawPayload(COMEXT, name, revised.encode(), f"file:///{name}")], day2)

    def replay(day: date, run_id: str):
        state = daily_flow(warehouse=str(tmp_path / "var" / "warehouse.duckdb"), publish_uri=str(store_dir),
                           source_mode="raw", raw_date=day.isoformat(), run_id=run_id, return_state=True)
        return state, state_summary(state)

    value = ("SELECT value_eur FROM fact_goods_trade_product WHERE reporter = 'DE' AND partner = 'JP' "
             "AND product_cn8 = '84834030' AND period_code = '2025-02' AND flow = 'import'")
    others = [s for s in SOURCES if s.name != COMEXT]
    state, first = replay(day1, "20260303T060000Z-raw001")
    assert state.is_completed(), first
    assert query(tmp_path, value) == [(1663789.0,)]
    state_sql = "SELECT * FROM etl_source_state WHERE source <> ? ORDER BY source"
    states = query(tmp_path, state_sql, (COMEXT,))
    rows = {s.table.name: query(tmp_path, f"SELECT * FROM {s.table.name} ORDER BY ALL") for s in others}
    assert len(states) == len(others) and all(rows.values())

    state, second = replay(day2, "20260303T060000Z-raw002")
    assert state.is_completed(), second
    assert {s["source"]: s["status"] for s in second["sources"]} == \
        {COMEXT: "loaded"} | {s.name: "unchanged" for s in others}
    runs = query(tmp_path, "SELECT source, status, message FROM etl_runs WHERE run_id = ? AND source <> ? "
                 "ORDER BY source", ("20260303T060000Z-raw002", COMEXT))
    note = "unchanged: nothing was landed for it on 2026-03-03, so the replay of that day leaves it as it was"
    assert runs == [(s.name, "unchanged", note) for s in sorted(others, key=lambda s: s.name)]
    assert query(tmp_path, value) == [(1700000.0,)]
    assert query(tmp_path, state_sql, (COMEXT,)) == states  # not looked at: no success, no attempt recorded
    assert {s.table.name: query(tmp_path, f"SELECT * FROM {s.table.name} ORDER BY ALL") for s in others} == rows
    latest = json.loads((store_dir / "latest.json").read_text())
    assert latest["run_id"] == "20260303T060000Z-raw002"
    assert json.loads((store_dir / latest["manifest"]).read_text())["status"] == "success"
