"""The Prefect daily flow end to end in live mode, against the recorded responses replayed on 127.0.0.1."""

from __future__ import annotations

import json

import pytest
from support.recordings import RECORDINGS

from eujp.sources import SOURCES_BY_NAME, comext_goods, eurostat_goods

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("loopback_only")]

GOODS, COMEXT = eurostat_goods.SOURCE.name, comext_goods.SOURCE.name


def test_daily_flow_in_live_mode_then_unchanged(live, tmp_path, prefect_server):
    """The Prefect flow end to end in live mode: everything loads; the next run finds nothing new."""
    from flows.daily import daily_flow

    def flow_run(run_id: str):
        state = daily_flow(warehouse=str(tmp_path / "var" / "warehouse.duckdb"),
                           publish_uri=str(tmp_path / "store"), source_mode="live", run_id=run_id,
                           return_state=True)
        return state, state.result(raise_on_failure=False)

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
