"""`eujp run --as-of`: the warehouse of a past day, rebuilt from the raw landing zone alone.

The raw zone is written as three daily runs would have landed it:
  day 1  every source (the bundled snapshot);
  day 2  Comext: only the DE-JP file, with one value revised (an incremental landing: the EU27 file is not
         re-sent), and the events file without its last event;
  day 3  Comext: the DE-JP file again, without its release stamps (fails its table's critical expectation on
         source_version, a batch-wide rule: tests/support/failing_suite.py).
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from support.failing_suite import FAILED_EXPECTATION, unstamp

from eujp.extract import read_snapshot
from eujp.landing import RawPayload, land, record_landing
from eujp.pipeline import load_countries
from eujp.sources import SOURCES, comext_goods, eurostat_services, get_source, security_events
from eujp.storage import LocalObjectStore
from eujp.tables import FACT_TABLES
from flows.results import state_summary

# The sources these runs single out, by their modules (a source's name is written in its own folder only).
COMEXT, EVENTS = comext_goods.SOURCE.name, security_events.SOURCE.name
SERVICES = eurostat_services.SOURCE.name
SNAPSHOT = Path(__file__).resolve().parents[2] / "data" / "snapshot"
D1, D2, D3 = date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)
COMEXT_DE = "comext_ds045409_DE_JP_84834030_2025Q1.csv"
VALUE_SQL = ("SELECT value_eur FROM fact_goods_trade_product WHERE reporter = 'DE' AND partner = 'JP' "
             "AND product_cn8 = '84834030' AND period_code = '2025-02' AND flow = 'import'")


def _land(store, source: str, day: date, name: str, data: bytes, kind: str = "data") -> None:
    src = get_source(source)
    ext = src.labels.extension if kind != "data" and src.labels else src.extension  # as pipeline.land_payloads
    land(store, RawPayload(source, name, data, f"file:///{name}", fetched_at=f"{day.isoformat()}T06:05:00+00:00",
                           kind=kind), day, ext)


@pytest.fixture
def raw_zone(tmp_path, monkeypatch):
    store = LocalObjectStore(tmp_path / "store")
    for source in SOURCES:
        for p in read_snapshot(source, SNAPSHOT):
            _land(store, source.name, D1, p.name, p.read(), p.kind)
    de = (SNAPSHOT / COMEXT_DE).read_text(encoding="utf-8")
    assert ",2025-02,1663789\n" in de
    _land(store, COMEXT, D2, COMEXT_DE, de.replace(",2025-02,1663789\n", ",2025-02,1700000\n").encode())
    events = (SNAPSHOT / "security_events.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    _land(store, EVENTS, D2, "security_events.csv", "".join(events[:-1]).encode())
    _land(store, COMEXT, D3, COMEXT_DE, unstamp(de).encode())
    # a published latest run far bigger than any past day: an as-of rebuild is not audited against it
    manifest = json.dumps({"run_id": "20261101T060000Z-big000", "tables": {
        t.name: {"rows": 100_000, "parquet": f"parquet/{t.name}.parquet", "sha256": "0" * 64} for t in FACT_TABLES}})
    store.put_bytes("runs/20261101T060000Z-big000/manifest.json", manifest.encode())
    store.put_bytes("latest.json", json.dumps({
        "run_id": "20261101T060000Z-big000", "prefix": "runs/20261101T060000Z-big000",
        "manifest": "runs/20261101T060000Z-big000/manifest.json",
        "manifest_sha256": hashlib.sha256(manifest.encode()).hexdigest()}).encode())
    live = tmp_path / "var" / "warehouse.duckdb"
    monkeypatch.setenv("EUJP_WAREHOUSE", str(live))
    monkeypatch.setenv("EUJP_PUBLISH_URI", str(tmp_path / "store"))
    return {"store": store, "live": live, "events": len(events) - 1}  # minus the header


def q(path: Path, sql: str):
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def test_as_of_replays_every_landing_up_to_the_day_into_its_own_warehouse(prefect_server, raw_zone, tmp_path):
    from flows.backfill import as_of_flow

    state = as_of_flow(as_of=D1.isoformat(), run_id="20260305T000000Z-asof01", return_state=True)
    summary = state_summary(state)
    assert state.is_completed(), summary
    day1 = tmp_path / "var" / "asof" / "warehouse-2026-03-02.duckdb"
    assert summary["warehouse"] == str(day1) and summary["as_of"] == "2026-03-02"
    assert not raw_zone["live"].exists()  # the live warehouse is left alone
    assert summary["published_to"] is None  # nothing published: latest still the big run
    assert json.loads(raw_zone["store"].get_bytes("latest.json"))["run_id"] == "20261101T060000Z-big000"
    assert q(day1, VALUE_SQL) == [(1663789.0,)]
    assert q(day1, "SELECT count(*) FROM fact_security_events") == [(raw_zone["events"],)]
    assert q(day1, "SELECT count(DISTINCT source) FROM etl_runs WHERE run_id = '20260305T000000Z-asof01-20260302'") \
        == [(6,)]
    # extraction times are the landing times, so freshness reads as it did at the end of that day
    assert q(day1, "SELECT DISTINCT last_success_at FROM etl_source_state") == \
        [(datetime(2026, 3, 2, 6, 5, tzinfo=UTC),)]
    assert {f["status"] for f in summary["freshness"]} == {"ok"}
    assert Path(summary["docs_url"]).is_file()  # not published: where the Data Docs are (not a file:// link)

    # day 2, through the CLI: the revision replaces the value, the EU27 rows landed on day 1 stay
    from typer.testing import CliRunner

    from flows.cli import app

    day2 = tmp_path / "rebuilt-day2.duckdb"
    result = CliRunner().invoke(app, ["run", "--as-of", D2.isoformat(), "--warehouse", str(day2),
                                      "--only", COMEXT, "--only", EVENTS])
    assert result.exit_code == 0, result.output
    assert "rebuilt as of 2026-03-02" not in result.output and "rebuilt as of 2026-03-03" in result.output
    assert q(day2, VALUE_SQL) == [(1700000.0,)]
    assert q(day2, "SELECT count(*) FROM fact_goods_trade_product WHERE reporter = 'EU27_2020'") == \
        q(day1, "SELECT count(*) FROM fact_goods_trade_product WHERE reporter = 'EU27_2020'") != [(0,)]
    assert q(day2, "SELECT old_value, new_value FROM etl_revisions WHERE column_name = 'value_eur'") == \
        [(1663789.0, 1700000.0)]
    assert q(day2, "SELECT count(*) FROM fact_security_events") == [(raw_zone["events"] - 1,)]
    assert q(day2, "SELECT count(*) FROM fact_arms_transfers") == [(0,)]  # not asked for
    assert q(day1, VALUE_SQL) == [(1663789.0,)]  # the day-1 rebuild is its own file


def test_as_of_a_day_whose_landing_fails_reports_it_and_keeps_the_day_before(prefect_server, raw_zone, tmp_path):
    from flows.backfill import as_of_flow

    target = tmp_path / "day3.duckdb"
    state = as_of_flow(as_of=D3.isoformat(), warehouse=str(target), only_sources=[COMEXT],
                       run_id="20260305T000000Z-asof03", return_state=True)
    assert state.is_failed()
    assert "landing day 2026-03-04" in state.message and FAILED_EXPECTATION in state.message
    assert q(target, VALUE_SQL) == [(1700000.0,)]  # the day before's figure, its rows kept
    assert q(target, "SELECT count(*) FROM fact_goods_trade_product WHERE source_version IS NULL") == [(0,)]
    assert q(target, "SELECT run_id, status FROM etl_runs ORDER BY run_id") == [
        ("20260305T000000Z-asof03-20260302", "success"), ("20260305T000000Z-asof03-20260303", "success"),
        ("20260305T000000Z-asof03-20260304", "failed")]
    assert q(target, "SELECT last_status, last_success_at FROM etl_source_state") == \
        [("failed", datetime(2026, 3, 3, 6, 5, tzinfo=UTC))]
    assert not list(tmp_path.glob(".day3.duckdb.building-*"))  # the private build folder is gone
    # the file is marked as a rebuild's (a daily run never writes etl_rebuild): a rebuild may write over it
    assert q(target, "SELECT run_id, as_of FROM etl_rebuild") == [("20260305T000000Z-asof03", D3)]
    # given no run id, the rebuild runs under the one its flow run's name carries
    again = as_of_flow(as_of=D2.isoformat(), warehouse=str(target), only_sources=[EVENTS], return_state=True)
    assert again.is_completed(), again.message
    from prefect import get_client

    with get_client(sync_client=True) as client:
        name = client.read_flow_run(again.state_details.flow_run_id).name
    assert name.startswith("as-of-") and len(name) > len("as-of-")
    run_id = name.removeprefix("as-of-")
    assert q(target, "SELECT DISTINCT run_id FROM etl_runs ORDER BY 1") == [
        (f"{run_id}-20260302",), (f"{run_id}-20260303",)]

    nothing = as_of_flow(as_of="2026-03-01", warehouse=str(tmp_path / "none.duckdb"), return_state=True)
    assert nothing.is_failed() and "nothing was landed on or before 2026-03-01" in nothing.message
    assert not (tmp_path / "none.duckdb").exists()


def test_as_of_a_day_with_several_landings_applies_them_in_landing_order(prefect_server, tmp_path, monkeypatch):
    """Two runs on one day: the Comext snapshot at 06:05, then (09:00) the DE-JP file with a revised figure. The
    rebuild applies them in that order: the revision supersedes the figure it revises (no conflict, nothing
    quarantined), and the EU27 rows of the first landing stay."""
    from flows.backfill import as_of_flow

    store = LocalObjectStore(tmp_path / "store")
    source = get_source(COMEXT)

    def run(hour: int, payloads: list[RawPayload]) -> None:
        for p in payloads:
            land(store, p, D1, source.labels.extension if p.kind != "data" else source.extension)
        record_landing(store, COMEXT, D1, [p.sha256 for p in payloads], at=datetime(2026, 3, 2, hour, tzinfo=UTC))

    run(6, [RawPayload(COMEXT, p.name, p.read(), f"file:///{p.name}", kind=p.kind)  # month files, codelist
            for p in read_snapshot(source, SNAPSHOT)])
    revised = (SNAPSHOT / COMEXT_DE).read_text(encoding="utf-8").replace(",2025-02,1663789\n", ",2025-02,1700000\n")
    run(9, [RawPayload(COMEXT, COMEXT_DE, revised.encode(), f"file:///{COMEXT_DE}")])
    monkeypatch.setenv("EUJP_WAREHOUSE", str(tmp_path / "var" / "warehouse.duckdb"))
    monkeypatch.setenv("EUJP_PUBLISH_URI", str(tmp_path / "store"))

    target = tmp_path / "day1.duckdb"
    state = as_of_flow(as_of=D1.isoformat(), warehouse=str(target), only_sources=[COMEXT],
                       run_id="20260305T000000Z-asof04", return_state=True)
    assert state.is_completed(), state.message
    assert q(target, VALUE_SQL) == [(1700000.0,)]
    assert q(target, "SELECT count(*) FROM etl_rejected_rows") == [(0,)]
    assert q(target, "SELECT count(*) FROM fact_goods_trade_product WHERE reporter = 'EU27_2020'") != [(0,)]
    assert q(target, "SELECT rows_rejected, status FROM etl_runs") == [(0, "success")]


def test_as_of_a_day_whose_later_landing_fails_to_parse_keeps_its_earlier_landing(prefect_server, tmp_path,
                                                                                   monkeypatch):
    """Two runs on one day: the services snapshot at 06:05, then (09:00) the same file cut at 5,000 bytes. The
    second run failed the source and loaded nothing of it: the warehouse of that day holds the first landing's
    rows. The rebuild leaves the cut landing out, saying so (it fails, as that run did), and loads the first."""
    from eujp.stream import parse_and_transform
    from flows.backfill import as_of_flow

    store = LocalObjectStore(tmp_path / "store")
    source = get_source(SERVICES)
    (good,) = [RawPayload(SERVICES, p.name, p.read(), f"file:///{p.name}") for p in read_snapshot(source, SNAPSHOT)]
    cut = RawPayload(SERVICES, good.name, good.read()[:5000], good.url)
    for hour, p in ((6, good), (9, cut)):
        land(store, p, D1, source.extension)
        record_landing(store, SERVICES, D1, [p.sha256], at=datetime(2026, 3, 2, hour, tzinfo=UTC))
    monkeypatch.setenv("EUJP_WAREHOUSE", str(tmp_path / "var" / "warehouse.duckdb"))
    monkeypatch.setenv("EUJP_PUBLISH_URI", str(tmp_path / "store"))
    loaded = parse_and_transform(source, [good], load_countries(D1))[0].valid.height

    target = tmp_path / "day1.duckdb"
    state = as_of_flow(as_of=D1.isoformat(), warehouse=str(target), only_sources=[SERVICES],
                       run_id="20260305T000000Z-asof08", return_state=True)
    assert state.is_failed()
    assert f"landing day 2026-03-02: {SERVICES}: landing 2 of 2 of the day not applied" in state.message
    assert "truncated" in state.message
    assert loaded > 0 and q(target, f"SELECT count(*) FROM {source.table.name}") == [(loaded,)]
    ((status, message),) = q(target, "SELECT status, message FROM etl_runs")
    assert status == "success" and "landing 2 of 2 of the day not applied" in message
    assert state_summary(state)["sources"][0]["landing_errors"] == [message]


def test_as_of_a_step_that_stops_before_its_load_leaves_no_spilled_chunks(prefect_server, raw_zone, tmp_path,
                                                                          monkeypatch):
    """An as-of step spills a streamed source's valid rows until its load; a step that stops between the two
    (here the load step raising) removes them all the same: nothing of it stays in the temporary folder."""
    from support.spill import fail_the_load_after_spilling

    import flows.backfill
    from flows.backfill import as_of_flow

    # the step's warehouse is built in a work folder beside the target: it spills there
    spill_root = tmp_path / ".day1.duckdb.building-20260305T000000Z-asof04" / "staging" / "spill"
    temporary, seen = fail_the_load_after_spilling(monkeypatch, tmp_path, flows.backfill, spill_root)
    state = as_of_flow(as_of=D1.isoformat(), warehouse=str(tmp_path / "day1.duckdb"), only_sources=[COMEXT],
                       run_id="20260305T000000Z-asof04", return_state=True)
    assert not state.is_completed()
    assert seen and seen[0] and all(p.startswith(f"eujp-{COMEXT}-valid-") for p in seen[0])  # spilled, then
    assert list(spill_root.glob("eujp-*")) == []
    assert list(temporary.glob("eujp-*")) == []  # nothing went to the system's temporary folder


def test_as_of_replays_a_landing_that_repeats_one_whose_step_was_not_applied(prefect_server, tmp_path, monkeypatch):
    """Day 2 lands the revised Comext figure with a header-only events file: the events table would empty, the
    audit refuses it, and the day's run was not promoted. Day 3 lands the same Comext file again with the events
    restored: the daily run of day 3 loaded the revision. The rebuild of day 3 does too: day 3's Comext landing
    repeats day 2's, which was never applied, so it is not skipped as a repeat; the events of day 3 repeat the
    content last applied (day 1's) and are skipped, their extraction confirmed on day 3."""
    from flows.backfill import as_of_flow

    store = LocalObjectStore(tmp_path / "store")
    for source in (get_source(COMEXT), get_source(EVENTS)):
        for p in read_snapshot(source, SNAPSHOT):
            _land(store, source.name, D1, p.name, p.read(), p.kind)
    revised = (SNAPSHOT / COMEXT_DE).read_text(encoding="utf-8").replace(",2025-02,1663789\n", ",2025-02,1700000\n")
    events = (SNAPSHOT / "security_events.csv").read_bytes()  # day 3: the very bytes of day 1
    for day, events_data in ((D2, events.splitlines(keepends=True)[0]), (D3, events)):
        _land(store, COMEXT, day, COMEXT_DE, revised.encode())
        _land(store, EVENTS, day, "security_events.csv", events_data)
    monkeypatch.setenv("EUJP_WAREHOUSE", str(tmp_path / "var" / "warehouse.duckdb"))
    monkeypatch.setenv("EUJP_PUBLISH_URI", str(tmp_path / "store"))

    target = tmp_path / "day3.duckdb"
    state = as_of_flow(as_of=D3.isoformat(), warehouse=str(target), only_sources=[COMEXT, EVENTS],
                       run_id="20260305T000000Z-asof05", return_state=True)
    assert state.is_failed()  # day 2 failed, as its daily run did
    assert "landing day 2026-03-03: not applied: audit failed" in state.message
    assert q(target, VALUE_SQL) == [(1700000.0,)]
    assert q(target, "SELECT old_value, new_value FROM etl_revisions WHERE column_name = 'value_eur'") == \
        [(1663789.0, 1700000.0)]
    assert q(target, "SELECT count(*) FROM fact_security_events") == [(len(events.splitlines()) - 1,)]
    assert q(target, "SELECT run_id, source FROM etl_runs ORDER BY run_id, source") == [
        ("20260305T000000Z-asof05-20260302", COMEXT), ("20260305T000000Z-asof05-20260302", EVENTS),
        ("20260305T000000Z-asof05-20260304", COMEXT)]
    assert q(target, "SELECT DISTINCT last_success_at FROM etl_source_state") == \
        [(datetime(2026, 3, 4, 6, 5, tzinfo=UTC),)]


def test_as_of_judges_each_steps_rejected_rows_like_the_daily_run(prefect_server, tmp_path, monkeypatch):
    """Day 2 lands the events file with one row more, an impossible date: one row rejected. Above the source's
    threshold the daily run of day 2 failed (its valid rows loaded): so does the rebuild, naming the landing day;
    within it, the rebuild completes with the day's warning, and the replayed step's etl_runs row holds the
    verdict either way."""
    from flows.backfill import as_of_flow

    store = LocalObjectStore(tmp_path / "store")
    events = (SNAPSHOT / "security_events.csv").read_text(encoding="utf-8")
    bad_row = '2024-13-45,day,dialogue,JPN;EU,Impossible date,"x",https://example.org/x,"t"\n'
    _land(store, EVENTS, D1, "security_events.csv", events.encode())
    _land(store, EVENTS, D2, "security_events.csv", (events + bad_row).encode())
    for name in [n for n in os.environ if n.startswith("EUJP_MAX_REJECTED_PCT")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("EUJP_WAREHOUSE", str(tmp_path / "var" / "warehouse.duckdb"))
    monkeypatch.setenv("EUJP_PUBLISH_URI", str(tmp_path / "store"))
    good = len(events.splitlines()) - 1
    step_run = "SELECT status, rows_rejected, message FROM etl_runs WHERE run_id LIKE '%-20260303'"

    monkeypatch.setenv(f"EUJP_MAX_REJECTED_PCT_{EVENTS.upper()}", "0")
    over = tmp_path / "over.duckdb"
    state = as_of_flow(as_of=D2.isoformat(), warehouse=str(over), only_sources=[EVENTS],
                       run_id="20260305T000000Z-asof06", return_state=True)
    assert state.is_failed()
    assert f"landing day 2026-03-03: {EVENTS}: 1 of {good + 1} rows in rejected" in state.message
    assert "above the threshold of 0%" in state.message
    assert q(over, "SELECT count(*) FROM fact_security_events") == [(good,)]  # the valid rows are loaded
    ((status, rejected, message),) = q(over, step_run)
    assert (status, rejected) == ("success", 1) and "above the threshold of 0%" in message

    monkeypatch.delenv(f"EUJP_MAX_REJECTED_PCT_{EVENTS.upper()}")
    within = tmp_path / "within.duckdb"
    state = as_of_flow(as_of=D2.isoformat(), warehouse=str(within), only_sources=[EVENTS],
                       run_id="20260305T000000Z-asof07", return_state=True)
    summary = state_summary(state)
    assert state.is_completed(), state.message
    ((status, rejected, message),) = q(within, step_run)
    assert (status, rejected) == ("success", 1) and "within the threshold of 5%" in message
    assert [w for w in summary["warnings"] if "rows in rejected" in w] == [f"landing day 2026-03-03: {message}"]


def test_pruning_keeps_a_day_whose_landings_differ_from_a_later_day_of_the_same_payloads(prefect_server, tmp_path,
                                                                                         monkeypatch):
    """Comext: day 1 the snapshot (DE-JP 2025-01 import: 668914); day 2 two runs, file P (the figure 111), then
    file Q (222, the same release); day 3 one run landing P and Q together (the key conflicts: quarantined, its
    previous row, 222, kept). Days 2 and 3 hold the same payloads but not the same landings: `prune-raw` keeps
    day 2, and an as-of of a retained day reads 222 after the prune as before (with day 2 gone, 668914)."""
    from eujp.retention import prune_raw
    from flows.backfill import as_of_flow

    store = LocalObjectStore(tmp_path / "store")
    source = get_source(COMEXT)

    def run(when: date, hour: int, payloads: list[RawPayload]) -> None:
        for p in payloads:
            land(store, p, when, source.labels.extension if p.kind != "data" else source.extension)
        record_landing(store, COMEXT, when, [p.sha256 for p in payloads],
                       at=datetime(when.year, when.month, when.day, hour, tzinfo=UTC))

    snapshot = [RawPayload(COMEXT, p.name, p.read(), f"file:///{p.name}", kind=p.kind)
                for p in read_snapshot(source, SNAPSHOT)]
    codelist = [p for p in snapshot if p.kind != "data"]
    header = "DATAFLOW,LAST UPDATE,freq,reporter,partner,product,flow,indicators,TIME_PERIOD,OBS_VALUE\n"

    def month_file(name: str, value: int) -> RawPayload:
        rows = "".join(f"ESTAT:DS-045409(1.0),20/08/26 11:00:00,M,DE,JP,84834030,1,{indicator},2025-01,{v}\n"
                       for indicator, v in (("QUANTITY_IN_100KG", "1.5"), ("VALUE_IN_EUROS", value)))
        return RawPayload(COMEXT, name, (header + rows).encode(), f"file:///{name}")

    p, q_ = month_file("comext_ds045409_P.csv", 111), month_file("comext_ds045409_Q.csv", 222)
    run(D1, 6, snapshot)
    run(D2, 6, [*codelist, p])
    run(D2, 9, [*codelist, q_])
    run(D3, 6, [*codelist, p, q_])
    monkeypatch.setenv("EUJP_WAREHOUSE", str(tmp_path / "var" / "warehouse.duckdb"))
    monkeypatch.setenv("EUJP_PUBLISH_URI", str(tmp_path / "store"))
    monkeypatch.setenv("EUJP_MAX_REJECTED_PCT", "100")  # day 3's conflicting rows are all its rows
    january = VALUE_SQL.replace("'2025-02'", "'2025-01'")
    retained = D3 + timedelta(days=9)  # the window of the prune below: this day and the one before

    def as_of(target: Path) -> list:
        as_of_flow(as_of=retained.isoformat(), warehouse=str(target), only_sources=[COMEXT],
                   run_id="20260320T000000Z-asof05", return_state=True)
        return q(target, january)

    assert as_of(tmp_path / "before.duckdb") == [(222.0,)]
    plan = prune_raw(store, 1, today=retained + timedelta(days=1))
    assert [d.folder.day for d in plan.doomed] == []  # day 1 differs; day 2's landings are not day 3's
    assert store.list_keys(f"raw/{COMEXT}/{D2.isoformat()}")
    assert as_of(tmp_path / "after.duckdb") == [(222.0,)]


def test_as_of_through_the_fan_out_stamps_the_times_of_the_landings_it_loaded_as_in_one_process(
        prefect_server, tmp_path, monkeypatch):
    """Comext on Dask (as_of_flow(fanout=True), a local cluster of worker processes) against the same raw zone rebuilt in one
    process. Day 1: the snapshot at 06:05, then (09:00) the DE-JP file cut mid-row, which fails to parse (that run
    failed the source and loaded nothing of it). Day 2 the reverse: the cut file at 05:00, then (06:05) the DE-JP
    file with a revised figure. Each replay leaves the cut landing out, saying so; its last success and where the
    next live request starts (requested_at) are the times of the landings it loaded, not of the cut one. The
    fan-out replay crashed (a landed partition has no URL to judge its extraction time by) and, had it run, took
    the cut landing for a payload to quarantine and the day's newest landing for the source's last success."""
    from eujp import partitions
    from eujp.compare import compare_warehouses
    from flows.backfill import as_of_flow

    store = LocalObjectStore(tmp_path / "store")
    source = get_source(COMEXT)
    de = (SNAPSHOT / COMEXT_DE).read_bytes()
    workers: set[str] = set()
    collect_batch = partitions.collect_batch

    def collect(batch, results, settings):  # who prepared the partitions
        workers.update(r.worker for r in results)
        return collect_batch(batch, results, settings)

    monkeypatch.setattr(partitions, "collect_batch", collect)

    def run(day: date, at: datetime, payloads: list[tuple[str, bytes, str]]) -> None:
        landed = [RawPayload(COMEXT, name, data, f"https://ec.europa.eu/eurostat/api/comext/{name}",
                             fetched_at=at.isoformat(timespec="seconds"), kind=kind) for name, data, kind in payloads]
        for p in landed:
            land(store, p, day, source.labels.extension if p.kind != "data" else source.extension)
        record_landing(store, COMEXT, day, [p.sha256 for p in landed], at=at)

    def at(day: date, hour: int, minute: int = 0) -> datetime:
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)

    cut = ("cut_" + COMEXT_DE, de[:-40], "data")  # ends mid-row: fails to parse
    run(D1, at(D1, 6, 5), [(p.name, p.read(), p.kind) for p in read_snapshot(source, SNAPSHOT)])
    run(D1, at(D1, 9), [cut])
    run(D2, at(D2, 5), [cut])
    run(D2, at(D2, 6, 5), [(COMEXT_DE, de.replace(b",2025-02,1663789", b",2025-02,1700000"), "data")])
    monkeypatch.setenv("EUJP_WAREHOUSE", str(tmp_path / "var" / "warehouse.duckdb"))
    monkeypatch.setenv("EUJP_PUBLISH_URI", str(tmp_path / "store"))
    monkeypatch.setenv("EUJP_DASK_WORKERS", "1")
    monkeypatch.setenv("EUJP_FANOUT", "0")  # only the flow's parameter fans out
    state_sql = "SELECT * FROM etl_source_state"

    def rebuild(day: date, name: str, fanout: bool) -> tuple[Path, str]:
        target = tmp_path / f"{name}-{day:%d}.duckdb"  # the flow's fanout parameter (`eujp run --as-of --fanout`)
        state = as_of_flow(as_of=day.isoformat(), warehouse=str(target), only_sources=[COMEXT],
                           run_id=f"20260305T000000Z-{name}{day:%d}", fanout=fanout, return_state=True)
        assert state.is_failed() and target.exists(), state.message  # the cut landing's run failed
        return target, state.message

    for day, success, requested in ((D1, at(D1, 6, 5), at(D1, 6, 5)), (D2, at(D2, 6, 5), at(D1, 6, 5))):
        single, single_message = rebuild(day, "single", False)
        fanned, fanned_message = rebuild(day, "fanned", True)
        assert q(single, "SELECT last_status, last_success_at, last_attempt_at, requested_at FROM etl_source_state") \
            == [("success", success, at(day, 9) if day == D1 else success, requested)]
        assert q(fanned, state_sql) == q(single, state_sql)
        assert f"{COMEXT}: landing {1 if day == D2 else 2} of 2 of the day not applied" in fanned_message
        assert fanned_message.replace("fanned", "single") == single_message
        diffs = compare_warehouses(single, fanned)
        assert [d.line() for d in diffs if not d.same and d.table != "etl_rebuild"] == []  # (when it was rebuilt)
    assert q(fanned, VALUE_SQL) == [(1700000.0,)]
    assert workers and all(int(w.rsplit(":", 1)[1]) != os.getpid() for w in workers)  # on the Dask workers
