"""Rejected rows are visible (docs/reliability.md, "Nothing dropped silently"): the daily flow on a copy of the
bundled snapshot whose events file has one row more, with an impossible date. Within the threshold the run
ends Completed with a warning in its summary, its markdown artifact, `eujp run`'s summary and `eujp status`;
above it (EUJP_MAX_REJECTED_PCT=0) it ends Failed with a message naming the source, the share and the
threshold, the alert is posted, and the valid rows are loaded and published all the same; a source's own
EUJP_MAX_REJECTED_PCT_<SOURCE> wins over the general one."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import duckdb
import pytest
from support.local_http import Receiver

from eujp.markdown import markdown_text
from eujp.rows import format_pct
from eujp.sources import security_events
from flows.artifacts import REPORT_KEY
from flows.daily import daily_flow
from flows.results import state_summary

pytestmark = pytest.mark.timeout(600)

EVENTS = security_events.SOURCE
SNAPSHOT = Path(__file__).resolve().parents[2] / "data" / "snapshot"
BAD_ROW = '2024-13-45,day,dialogue,JPN;EU,Impossible date,"x",https://example.org/x,"t"\n'
REASON = "date: not a yyyy-mm-dd date: '2024-13-45'"
OWN_VAR = f"EUJP_MAX_REJECTED_PCT_{EVENTS.name.upper()}"


@pytest.fixture
def snapshot(tmp_path) -> Path:
    """The bundled snapshot, its events file with BAD_ROW appended."""
    folder = tmp_path / "snapshot"
    shutil.copytree(SNAPSHOT, folder)
    (events,) = folder.glob(EVENTS.snapshot_glob)
    events.write_text(events.read_text(encoding="utf-8") + BAD_ROW, encoding="utf-8")
    return folder


@pytest.fixture
def thresholds(monkeypatch):
    """No EUJP_MAX_REJECTED_PCT* from the environment: each test sets its own."""
    for name in [n for n in os.environ if n.startswith("EUJP_MAX_REJECTED_PCT")]:
        monkeypatch.delenv(name)
    monkeypatch.delenv("EUJP_ALERT_WEBHOOK_URL", raising=False)
    return monkeypatch


def good_rows() -> int:
    (events,) = SNAPSHOT.glob(EVENTS.snapshot_glob)
    return len(events.read_text(encoding="utf-8").splitlines()) - 1  # the header; no field holds a line break


def share() -> str:
    return format_pct(100 / (good_rows() + 1))


def run(tmp_path: Path, snapshot: Path, run_id: str, force: bool = False):
    state = daily_flow(snapshot_dir=str(snapshot), warehouse=str(tmp_path / "var" / "warehouse.duckdb"),
                       publish_uri=str(tmp_path / "var" / "objectstore"), run_id=run_id, force=force,
                       return_state=True)
    return state, state_summary(state)


def query(tmp_path: Path, sql: str, params=()):
    with duckdb.connect(str(tmp_path / "var" / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(sql, params).fetchall()


def unwrapped(text: str) -> str:
    """A terminal's text as one line: rich wraps long lines at the console's width."""
    return " ".join(text.split())


def events_messages(texts: list[str]) -> list[str]:
    return [t for t in texts if t.startswith(f"{EVENTS.name}:")]


def report_markdown(state) -> str:
    """The run's markdown artifact, as the Prefect API keeps it."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        (artifact,) = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]),
            key=ArtifactFilterKey(any_=[REPORT_KEY])))
    return artifact.data


def assert_loaded_and_quarantined(tmp_path: Path, run_id: str, message: str) -> None:
    """The valid rows are in the table, the bad one in the quarantine, and etl_runs holds the verdict."""
    n = good_rows()
    assert query(tmp_path, f"SELECT count(*) FROM {EVENTS.table.name}") == [(n,)]
    assert query(tmp_path, "SELECT reason FROM etl_rejected_rows WHERE run_id = ? AND source = ?",
                 [run_id, EVENTS.name]) == [(REASON,)]
    assert query(tmp_path, "SELECT status, rows_in, rows_loaded, rows_rejected, message FROM etl_runs "
                 "WHERE run_id = ? AND source = ?", [run_id, EVENTS.name]) == [("success", n + 1, n, 1, message)]


def test_rejections_within_the_threshold_complete_with_a_warning_everywhere(prefect_server, tmp_path, snapshot,
                                                                           thresholds, capsys):
    from typer.testing import CliRunner

    from flows.cli import _print_summary, app

    run_id = "20261125T060000Z-rej001"
    state, summary = run(tmp_path, snapshot, run_id)
    n = good_rows()
    warning = (f"{EVENTS.name}: 1 of {n + 1} rows in rejected ({share()}), within the threshold of 5% "
               f"(EUJP_MAX_REJECTED_PCT); most often: \"{REASON}\" (1 row); see etl_rejected_rows "
               f"(run_id '{run_id}', source '{EVENTS.name}') for the rows and why")
    assert state.is_completed(), summary
    assert summary["status"] == "success" and summary["errors"] == []
    assert events_messages(summary["warnings"]) == [warning]
    assert [w for w in summary["warnings"] if "rows in rejected" in w] == [warning]  # no other source rejected
    sources = {s["source"]: s for s in summary["sources"]}
    assert (sources[EVENTS.name]["rows_rejected"], sources[EVENTS.name]["rejections"]) == (1, warning)
    assert_loaded_and_quarantined(tmp_path, run_id, warning)
    # the run's markdown artifact
    markdown = report_markdown(state)
    assert f"## eujp-daily run `{run_id}`: SUCCESS" in markdown
    assert f"### Warnings\n\n- {markdown_text(warning)}\n" in markdown
    # `eujp run`'s summary
    _print_summary(summary)
    assert f"warning: {warning}" in unwrapped(capsys.readouterr().out)
    # `eujp status`: the last run per source, the warning line
    result = CliRunner().invoke(app, ["status", "--warehouse", str(tmp_path / "var" / "warehouse.duckdb"),
                                      "--publish", str(tmp_path / "var" / "objectstore")])
    assert result.exit_code == 0, result.output
    assert f"Last run {run_id}, per source (etl_runs)" in result.output
    assert f"warning: {warning}" in unwrapped(result.output)


def test_rejections_above_the_threshold_fail_the_run_and_alert_but_the_valid_rows_are_published(
        prefect_server, tmp_path, snapshot, thresholds):
    run_id = "20261125T060000Z-rej002"
    thresholds.setenv("EUJP_MAX_REJECTED_PCT", "0")
    with Receiver() as rx:
        thresholds.setenv("EUJP_ALERT_WEBHOOK_URL", rx.url)
        state, summary = run(tmp_path, snapshot, run_id)
    n = good_rows()
    error = (f"{EVENTS.name}: 1 of {n + 1} rows in rejected ({share()}), above the threshold of 0% "
             f"(EUJP_MAX_REJECTED_PCT); its {n} valid rows were loaded, but the run fails so that someone looks; "
             f"most often: \"{REASON}\" (1 row); see etl_rejected_rows (run_id '{run_id}', source "
             f"'{EVENTS.name}') for the rows and why")
    assert state.is_failed(), summary
    assert summary["status"] == "failed" and summary["errors"] == [error]
    assert state.message == f"run {run_id} failed: {error}"
    assert events_messages(summary["warnings"]) == []
    assert f"### Errors\n\n- {markdown_text(error)}\n" in report_markdown(state)
    # the alert names the source, the share and the threshold
    assert len(rx.posts) == 1, rx.posts
    alert = json.dumps(rx.posts[0][1])
    assert f"Failed task: prepare {EVENTS.name} (rejected rows above the threshold)" in rx.posts[0][1]["text"]
    assert f"{EVENTS.name}: 1 of {n + 1} rows in rejected ({share()}), above the threshold of 0%" in alert
    # the valid rows are loaded, and published as a run with a failed source is: latest moves, manifest says so
    assert_loaded_and_quarantined(tmp_path, run_id, error)
    store = tmp_path / "var" / "objectstore"
    assert json.loads((store / "latest.json").read_text())["run_id"] == run_id
    manifest = json.loads((store / "latest" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["sources"][EVENTS.name]["rejections"] == error
    # `eujp status`: the source's row points at the error line below it (not at a warning)
    from typer.testing import CliRunner

    from flows.cli import app

    result = CliRunner().invoke(app, ["status", "--warehouse", str(tmp_path / "var" / "warehouse.duckdb"),
                                      "--publish", str(store)])
    assert "see the error below" in result.output and "see the warning below" not in result.output
    assert f"error: {error}" in unwrapped(result.output)


def test_a_source_threshold_of_its_own_wins_over_the_general_one(prefect_server, tmp_path, snapshot, thresholds):
    run_id = "20261125T060000Z-rej003"
    thresholds.setenv("EUJP_MAX_REJECTED_PCT", "0")
    thresholds.setenv(OWN_VAR, "2")
    state, summary = run(tmp_path, snapshot, run_id)
    assert state.is_completed(), summary
    (warning,) = events_messages(summary["warnings"])
    assert f"within the threshold of 2% ({OWN_VAR})" in warning
    # and the other way round, a source stricter than the general threshold: the same payload is unchanged
    # since its last load, so it is not judged again (nothing new) ...
    thresholds.setenv("EUJP_MAX_REJECTED_PCT", "50")
    thresholds.setenv(OWN_VAR, "1")
    state, summary = run(tmp_path, snapshot, "20261125T070000Z-rej004")
    assert state.is_completed(), summary
    assert summary["current_run_id"] == run_id and events_messages(summary["warnings"]) == []
    # ... unless the run is forced
    state, summary = run(tmp_path, snapshot, "20261125T080000Z-rej005", force=True)
    assert state.is_failed(), summary
    (error,) = summary["errors"]
    assert error.startswith(f"{EVENTS.name}: 1 of {good_rows() + 1} rows in rejected ({share()}), above the "
                            f"threshold of 1% ({OWN_VAR}); ")


def test_a_per_source_threshold_naming_no_source_stops_the_run_before_it_extracts(prefect_server, tmp_path,
                                                                                  snapshot, thresholds):
    from eujp.preflight import PreflightFailed

    thresholds.setenv("EUJP_MAX_REJECTED_PCT_NO_SUCH_SOURCE", "10")
    state, result = run(tmp_path, snapshot, "20261125T060000Z-rej006")
    assert state.is_failed() and isinstance(result, PreflightFailed), result
    assert "EUJP_MAX_REJECTED_PCT_NO_SUCH_SOURCE names no source" in str(result)
    assert not (tmp_path / "var" / "warehouse.duckdb").exists()
