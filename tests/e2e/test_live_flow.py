"""The Prefect daily flow end to end in live mode, against the recorded responses replayed on 127.0.0.1."""

from __future__ import annotations

import json

import pytest
from support.recordings import RECORDINGS

from eujp.sources import SOURCES_BY_NAME, comext_goods, eurostat_goods
from flows.results import state_summary

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("loopback_only")]

GOODS, COMEXT = eurostat_goods.SOURCE.name, comext_goods.SOURCE.name


def test_daily_flow_in_live_mode_then_unchanged(live, tmp_path, prefect_server):
    """The Prefect flow end to end in live mode: everything loads; the next run finds nothing new."""
    from flows.daily import daily_flow

    def flow_run(run_id: str):
        state = daily_flow(warehouse=str(tmp_path / "var" / "warehouse.duckdb"),
                           publish_uri=str(tmp_path / "store"), source_mode="live", run_id=run_id,
                           return_state=True)
        return state, state_summary(state)

    state, first = flow_run("20250715T060000Z-live01")
    assert state.is_completed(), first
    assert {s["source"]: s["status"] for s in first["sources"]} == {n: "loaded" for n in SOURCES_BY_NAME}
    live.clear_log()
    state, second = flow_run("20250715T070000Z-live02")
    assert state.is_completed(), second
    statuses = {s["source"]: s["status"] for s in second["sources"]}
    assert set(statuses.values()) == {"unchanged"}
    # Comext: one request, its dataflow (its data last changed before the first run)
    assert [s.path for s in live.seen() if "DS-045409" in s.path] == [RECORDINGS[COMEXT]["dataflow_path"]]
    assert second["table_rows"]["fact_goods_trade"] == first["table_rows"]["fact_goods_trade"]
    assert [s.headers.get("if-none-match") for s in live.seen(RECORDINGS[GOODS]["path"])] == \
        [RECORDINGS[GOODS]["headers"]["ETag"]]
    # nothing new at all: the first run stays the published one, the check is recorded beside it
    assert second["current_run_id"] == "20250715T060000Z-live01"
    check = json.loads((tmp_path / "store" / "latest-check.json").read_text())
    assert check["run_id"] == "20250715T070000Z-live02" and check["sources"][GOODS].startswith("unchanged")


@pytest.mark.slow
def test_live_mode_fans_out_the_comext_slices_to_dask_workers_with_the_same_warehouse(live, tmp_path,
                                                                                     prefect_server, monkeypatch):
    """Live mode with --fanout: the flow fetches and lands Comext's slices (its request plan, split by the 413
    answers), two local Dask worker processes prepare one slice each, the committer collects them as local
    chunks; the warehouse equals that of a live run in one process (eujp.compare)."""
    import os

    from eujp import partitions
    from eujp.compare import compare_warehouses
    from flows.daily import daily_flow

    monkeypatch.setenv("EUJP_DASK_WORKERS", "2")
    collected: list = []
    collect_batch = partitions.collect_batch

    def collect(batch, results, settings):
        batch = collect_batch(batch, results, settings)
        collected.append((results, len(batch.chunks), batch.valid is None))
        return batch

    monkeypatch.setattr(partitions, "collect_batch", collect)

    def flow_run(name: str, run_id: str, fanout: bool):
        state = daily_flow(warehouse=str(tmp_path / name / "warehouse.duckdb"),
                           publish_uri=str(tmp_path / name / "store"), source_mode="live", run_id=run_id,
                           fanout=fanout, return_state=True)
        summary = state_summary(state)
        assert state.is_completed(), summary
        return summary

    fanned = flow_run("fanned", "20250715T060000Z-fan001", True)
    (results, chunks, spilled), = collected  # Comext, the one source that streams
    assert len(results) > 1 and chunks == len(results) and spilled
    workers = {r.worker for r in results}
    assert workers and all(int(w.rsplit(":", 1)[1]) != os.getpid() for w in workers)  # prepared on the workers
    single = flow_run("single", "20250715T060000Z-one001", False)
    assert collected[1:] == []  # the run in one process does not fan out
    assert fanned["table_rows"] == single["table_rows"]
    diffs = compare_warehouses(tmp_path / "single" / "warehouse.duckdb", tmp_path / "fanned" / "warehouse.duckdb")
    assert [d.line() for d in diffs if not d.same] == []
    assert fanned["table_rows"]["fact_goods_trade_product"] > 0


def test_a_partner_added_without_observations_beside_one_with_rows_is_among_the_flow_run_warnings(
        live, tmp_path, prefect_server, monkeypatch):
    """The daily flow lists a warning the load gives (eujp.pipeline.added_without_rows) in its summary, which the
    CLI prints: two partners added, the service answering rows of CN and none of AQ (the recording holds no AQ
    row), the run loads CN and its warnings name AQ alone; two partners added that both have rows (KR, US):
    no such warning."""
    import duckdb

    from flows.daily import daily_flow

    warehouse = tmp_path / "var" / "warehouse.duckdb"

    def flow_run(run_id: str) -> dict:
        state = daily_flow(warehouse=str(warehouse), publish_uri=str(tmp_path / "store"), source_mode="live",
                           run_id=run_id, only_sources=[COMEXT], return_state=True)
        summary = state_summary(state)
        assert state.is_completed(), summary
        assert [s["status"] for s in summary["sources"]] == ["loaded"]
        return summary

    def message(run_id: str) -> str | None:
        with duckdb.connect(str(warehouse), read_only=True) as conn:
            return conn.execute("SELECT message FROM etl_runs WHERE run_id = ? AND source = ?",
                                [run_id, COMEXT]).fetchone()[0]

    flow_run("20250715T060000Z-part01")
    monkeypatch.setenv("EUJP_COMEXT_PARTNERS", "JP,CN,AQ")
    second = flow_run("20250715T070000Z-part02")
    named = ("partners + AQ: the service holds no observations of what the settings added since 2025-01 (check the "
             "codes: the service may code them otherwise)")
    assert [w for w in second["warnings"] if w.startswith(f"{COMEXT}:")] == [f"{COMEXT}: {named}"]
    assert message("20250715T070000Z-part02") == named
    monkeypatch.setenv("EUJP_COMEXT_PARTNERS", "JP,CN,AQ,KR,US")
    third = flow_run("20250715T080000Z-part03")
    assert [w for w in third["warnings"] if w.startswith(f"{COMEXT}:")] == []
    assert message("20250715T080000Z-part03") is None
