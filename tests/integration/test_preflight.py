"""Preflight against real servers: a publish bucket that does not exist (moto) stops `eujp run` in seconds
with one message and exit code 2, before Prefect starts, with the warehouse folder untouched and nothing
landed; `eujp check` names the setting to fix; the daily flow's own preflight fails a run (a deployment's)
the same way. And a domain flow whose sources failed ends Failed, as its parent does."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from typer.testing import CliRunner

from eujp.preflight import PUBLISH_SETTING, PreflightFailed
from eujp.sources import eurostat_goods, security_events, sipri_arms
from flows.cli import app
from flows.results import state_summary

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
SNAPSHOT = REPO / "data" / "snapshot"
MISSING = "eujp-no-such-bucket"
# by their modules: a source's name is written in its own folder only
GOODS, SIPRI, EVENTS = eurostat_goods.SOURCE, sipri_arms.SOURCE, security_events.SOURCE


def tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under `folder`: its size and modification time (ns)."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.fixture
def var(tmp_path) -> Path:
    """A warehouse folder holding a warehouse file (the run must leave it alone)."""
    folder = tmp_path / "var"
    folder.mkdir()
    import duckdb

    with duckdb.connect(str(folder / "warehouse.duckdb")) as conn:  # a real one (the preflight reads its header)
        conn.execute("CREATE TABLE untouched AS SELECT 'not opened by a run that cannot start' AS note")
    return folder


def buckets(endpoint: str) -> list[str]:
    return [b["Name"] for b in boto3.client("s3", endpoint_url=endpoint).list_buckets()["Buckets"]]


def test_run_against_a_missing_bucket_fails_in_seconds_with_exit_2(s3_env, var, tmp_path):
    before, buckets_before = tree(var), buckets(s3_env)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "EUJP_"))}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "run", "--warehouse", str(var / "warehouse.duckdb"),
         "--publish", f"s3://{MISSING}/eujp"],
        env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False)
    elapsed = time.monotonic() - started
    assert done.returncode == 2, done.stdout + done.stderr
    assert elapsed < 10, f"took {elapsed:.1f} s"
    message = done.stderr.strip()
    assert message.count("\n") == 0, message  # one message
    assert "Traceback" not in done.stdout + done.stderr
    assert f"bucket {MISSING!r} does not exist" in message and PUBLISH_SETTING in message
    assert "Starting temporary server" not in done.stdout + done.stderr  # it stopped before Prefect
    assert tree(var) == before  # no lock, no staging copy, the warehouse file untouched
    assert buckets(s3_env) == buckets_before and MISSING not in buckets_before  # nothing landed
    assert not (tmp_path / "prefect-home").exists()


def test_check_names_the_setting_to_fix_for_a_missing_bucket(s3_env, var):
    before = tree(var)
    result = CliRunner().invoke(app, ["check", "--warehouse", str(var / "warehouse.duckdb"),
                                      "--publish", f"s3://{MISSING}/eujp"])
    assert result.exit_code == 2, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == (f"FAILED  publish target: s3://{MISSING}/eujp: bucket {MISSING!r} does not exist "
                        f"(looking up the bucket, S3 error 404) (fix {PUBLISH_SETTING})")
    assert [line.split(":")[0] for line in lines[1:]] == ["ok      warehouse", "ok      Prefect API",
                                                         "ok      snapshot folder", "ok      settings",
                                                         "ok      expectation suites", "ok      lake catalog"]
    assert tree(var) == before


def test_check_names_mistyped_live_settings_before_any_request(var, monkeypatch):
    """`eujp check --source live` reads what each source would ask its service for: a partner list typed with
    ';' and a start that is no month fail the check (exit 2), each named, where the run used to end
    'unchanged' with no rows, or fail after the other sources' downloads. (SIPRI's URL is given: it has no
    default live endpoint, which the check also refuses: tests/unit/test_settings_check.py.)"""
    monkeypatch.setenv(SIPRI.endpoint_env, "http://127.0.0.1:9/mirror/trade-register.csv")
    monkeypatch.setenv("EUJP_COMEXT_PARTNERS", "jp;cn")
    monkeypatch.setenv("EUJP_COMEXT_START", "01/2002")
    result = CliRunner().invoke(app, ["check", "--source", "live", "--warehouse", str(var / "warehouse.duckdb"),
                                      "--publish", str(var.parent / "published")])
    assert result.exit_code == 2, result.output
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert line.startswith("FAILED  settings: EUJP_COMEXT_PARTNERS: 'JP;CN' is not a code")
    assert "EUJP_COMEXT_START='01/2002' is not a month" not in line  # the scope stops at its first bad setting
    monkeypatch.setenv("EUJP_COMEXT_PARTNERS", "jp, cn")  # read as JP and CN
    result = CliRunner().invoke(app, ["check", "--source", "live", "--warehouse", str(var / "warehouse.duckdb"),
                                      "--publish", str(var.parent / "published")])
    assert result.exit_code == 2 and "EUJP_COMEXT_START='01/2002' is not a month" in result.stdout
    monkeypatch.setenv("EUJP_COMEXT_START", "2002-01")
    result = CliRunner().invoke(app, ["check", "--source", "live", "--warehouse", str(var / "warehouse.duckdb"),
                                      "--publish", str(var.parent / "published")])
    assert result.exit_code == 0, result.output
    assert "ok      settings: live requests, batches, memory and payload caps: every value readable" in result.stdout


def test_check_writes_and_deletes_a_probe_in_an_existing_bucket(s3_env, s3_bucket, var):
    result = CliRunner().invoke(app, ["check", "--warehouse", str(var / "warehouse.duckdb"),
                                      "--publish", f"s3://{s3_bucket}/eujp/daily"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"ok      publish target: s3://{s3_bucket}/eujp/daily: bucket exists, "
                                    "credentials accepted, a probe object was written and deleted")
    assert boto3.client("s3", endpoint_url=s3_env).list_objects_v2(Bucket=s3_bucket).get("KeyCount") == 0


def test_check_names_the_endpoint_when_s3_does_not_answer(s3_env, monkeypatch, var):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    started = time.monotonic()
    result = CliRunner().invoke(app, ["check", "--warehouse", str(var / "warehouse.duckdb"),
                                      "--publish", "s3://any-bucket/eujp"])
    assert result.exit_code == 2 and time.monotonic() - started < 10
    assert "did not answer" in result.stdout and "(fix AWS_ENDPOINT_URL)" in result.stdout


def test_daily_flow_checks_its_settings_before_anything_else(prefect_server, s3_env, var):
    """A deployment's run (no CLI in front) fails fast too: Failed, one message, no lock taken."""
    from flows.daily import daily_flow

    before = tree(var)
    started = time.monotonic()
    state = daily_flow(warehouse=str(var / "warehouse.duckdb"), publish_uri=f"s3://{MISSING}/eujp",
                       run_id="20261130T060000Z-pre001", return_state=True)
    assert time.monotonic() - started < 10
    assert state.is_failed()
    assert state.message.startswith("the run cannot start: publish target: ") and PUBLISH_SETTING in state.message
    assert isinstance(state_summary(state), PreflightFailed)
    assert tree(var) == before and MISSING not in buckets(s3_env)


def test_domain_flows_end_failed_when_their_sources_failed(prefect_server, tmp_path, caplog):
    """trade: its only selected source fails (no file) -> Failed; defence: one of two fails -> Failed;
    minerals: no selected source -> Completed. The parent fails, with every batch in its summary. The
    domain's log line counts rows in the words of the summary table."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    from eujp.rows import describe_rows
    from flows.daily import daily_flow

    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    for f in SNAPSHOT.glob(SIPRI.snapshot_glob):
        shutil.copy(f, snapshot / f.name)
    run_id = "20261130T060000Z-dom001"
    caplog.set_level(logging.INFO)
    state = daily_flow(snapshot_dir=str(snapshot), warehouse=str(tmp_path / "var" / "warehouse.duckdb"),
                       publish_uri=str(tmp_path / "store"), run_id=run_id,
                       only_sources=[GOODS.name, SIPRI.name, EVENTS.name], return_state=True)
    summary = state_summary(state)
    assert state.is_failed() and isinstance(summary, dict)
    outcome = {s["source"]: s["status"] for s in summary["sources"]}
    assert outcome == {GOODS.name: "failed", SIPRI.name: "loaded", EVENTS.name: "failed"}

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(
            any_=[f"{d}-{run_id}" for d in ("trade", "defence", "minerals")])))
    states = {r.name.removesuffix(f"-{run_id}"): r.state for r in runs}
    assert {d: s.type.value for d, s in states.items()} == {"trade": "FAILED", "defence": "FAILED",
                                                           "minerals": "COMPLETED"}
    assert states["trade"].message.startswith(f"trade: 1 of 1 source(s) failed: {GOODS.name}")
    assert states["defence"].message.startswith(f"defence: 1 of 2 source(s) failed: {EVENTS.name}")

    sipri = next(s for s in summary["sources"] if s["source"] == SIPRI.name)
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"{SIPRI.name}: ")]
    words = describe_rows(sipri["rows_in"], sipri["rows_loaded"], sipri["rows_rejected"])
    assert logged == [f"{SIPRI.name}: {words}; {sipri['rows_written']} table rows to write"]


def test_check_names_the_files_of_the_snapshot_folder_that_no_source_reads(var, tmp_path, caplog):
    """A snapshot folder holding a file named otherwise than every source's pattern (the shared Comext file as
    downloaded, `comext_DS-045409_...`, beside the bundled `comext_ds045409*.csv`): the file is not loaded, so
    `eujp check` says so by name, with the patterns, as a warning that does not fail it (exit 0), and the daily
    flow's preflight logs it. Hidden files and a README are not named."""
    from eujp.config import Settings
    from flows.daily import check_settings

    folder = tmp_path / "snapshot"
    shutil.copytree(SNAPSHOT, folder)
    (folder / "comext_DS-045409_sdmxcsv_DE_JP_84834030_2025Q1.csv").write_bytes(
        (SNAPSHOT / "comext_ds045409_DE_JP_84834030_2025Q1.csv").read_bytes())
    (folder / ".DS_Store").write_bytes(b"\0")
    (folder / "README.md").write_text("where these files come from\n")
    args = ["check", "--warehouse", str(var / "warehouse.duckdb"), "--publish", str(var.parent / "published"),
            "--snapshot-dir", str(folder)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.stdout.splitlines() if "snapshot folder" in line]
    assert line.startswith(f"WARNING snapshot folder: {folder} exists; 1 file(s) no source reads, not loaded: "
                           "comext_DS-045409_sdmxcsv_DE_JP_84834030_2025Q1.csv (each source reads the files named "
                           "as its patterns: ")
    assert "comext_ds045409*.csv" in line and "comext_codelist*.xml" in line
    assert ".DS_Store" not in line and "README" not in line
    settings = Settings(warehouse_path=var / "warehouse.duckdb", publish_uri=str(var.parent / "published"),
                        snapshot_dir=folder)
    logger = logging.getLogger("test.daily")
    with caplog.at_level(logging.WARNING, logger="test.daily"):
        check_settings(settings, logger)
    assert [r.getMessage() for r in caplog.records] == ["preflight: snapshot folder: " + line.split(" exists; ", 1)[1]]
    (folder / "comext_DS-045409_sdmxcsv_DE_JP_84834030_2025Q1.csv").unlink()
    result = CliRunner().invoke(app, args)
    assert f"ok      snapshot folder: {folder} exists" in result.stdout.splitlines()
