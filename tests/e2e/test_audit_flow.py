"""The audit in the daily flow: a fresh machine cannot publish a collapsed warehouse over the published one."""

from __future__ import annotations

from pathlib import Path

from eujp.sources import security_events

EVENTS = security_events.SOURCE.name  # by its module: a source's name is written in its own folder only


def test_a_fresh_machine_cannot_publish_a_collapsed_warehouse_over_the_published_one(prefect_server, tmp_path):
    """The local warehouse is gone (a new machine, a lost disk) and the sources deliver little: compared with
    an empty local warehouse nothing dropped, but against the published latest run it collapsed."""
    from flows.daily import daily_flow

    snapshot = Path(__file__).resolve().parents[2] / "data" / "snapshot"
    store = tmp_path / "objects"
    first = daily_flow(snapshot_dir=str(snapshot), warehouse=str(tmp_path / "a" / "warehouse.duckdb"),
                       publish_uri=str(store), run_id="20261124T060000Z-first1", return_state=True)
    assert first.is_completed(), first.message
    pointer = (store / "latest.json").read_bytes()

    thin = tmp_path / "thin"
    thin.mkdir()
    lines = (snapshot / "security_events.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    (thin / "security_events.csv").write_text("".join(lines[:3]), encoding="utf-8")
    fresh = tmp_path / "b" / "warehouse.duckdb"
    state = daily_flow(snapshot_dir=str(thin), warehouse=str(fresh), publish_uri=str(store),
                       run_id="20261125T060000Z-fresh1", only_sources=[EVENTS], return_state=True)
    assert state.is_failed()
    assert ("fact_security_events.row_count_delta_vs_published: published run 20261124T060000Z-first1: "
            "64 -> 2 rows (-96.9%, threshold -50%)") in state.message
    assert "fact_arms_transfers.row_count_delta_vs_published" in state.message
    assert (store / "latest.json").read_bytes() == pointer
    assert not fresh.exists()  # nothing promoted either
