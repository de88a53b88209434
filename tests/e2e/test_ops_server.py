"""Operations against a real `prefect server start` (127.0.0.1, temporary PREFECT_HOME), with `eujp` run as
subprocesses the way an operator runs them:

- `eujp serve` registers the cron deployment; its schedule and concurrency limit are read back through the
  API; a run created through the API completes with its artifacts and published objects (Data Docs);
- a failing run posts its alert to a webhook receiver (and never prints the webhook's secret URL);
- two `eujp run` that overlap never interleave their writes: the second fails at once naming the holder,
  or (with EUJP_LOCK_WAIT_SECONDS) waits for the first to finish.

Every subprocess is started in its own session and its whole group is killed in a `finally`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path

import duckdb
import pytest
from support import local_http
from support.failing_suite import FAILED_EXPECTATION, unstamp_snapshot
from support.failing_suite import SOURCE as FAILING
from support.failing_suite import TABLE as FAILING_TABLE
from support.processes import client_env, prefect_server, stop_group, wait_for

from eujp.sources import SOURCES, security_events
from eujp.tables import FACT_TABLES

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SNAPSHOT = REPO / "data" / "snapshot"
TOKEN = "T0KEN-9f8e7d"
EVENTS = security_events.SOURCE.name  # by its module: a source's name is written in its own folder only


def _children(pid: int, needle: str) -> list[int]:
    """Ids of the direct children of `pid` whose command line contains `needle` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if ppid == pid and needle in (stat.parent / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory):
    """`prefect server start` on a free 127.0.0.1 port with its own PREFECT_HOME; yields (api url, env for
    clients)."""
    home = tmp_path_factory.mktemp("prefect-home")
    env = client_env(home)
    with prefect_server(home, env | {"PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5"}) as url:
        yield url, env | {"PREFECT_API_URL": url}


@contextmanager
def api(url: str):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: url}), get_client(sync_client=True) as client:
        yield client


def eujp(args: list[str], env: dict, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "eujp"), *args], check=False, env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, start_new_session=True)


def flow_run_by_run_id(client, run_id: str):
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["eujp-daily"])), limit=50)
    matching = [r for r in runs if r.parameters.get("run_id") == run_id]
    assert len(matching) == 1, [r.parameters for r in runs]
    return matching[0]


def q(path: Path, sql: str, params=()):
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute(sql, params).fetchall()


# --- 1. eujp serve: schedule, runs through the API, artifacts, published objects ----------------------

def test_served_deployment_runs_from_the_api_with_artifacts_data_docs_and_crash_alert(prefect_api, tmp_path):
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        DeploymentFilter,
        DeploymentFilterId,
    )
    from prefect.client.schemas.objects import StateType

    url, env = prefect_api
    wh, store = tmp_path / "var" / "warehouse.duckdb", tmp_path / "objectstore"
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed in the finally
    rx = local_http.Receiver(f"/services/T000/B000/{TOKEN}").__enter__()
    serve = subprocess.Popen(
        [str(BIN / "eujp"), "serve", "--cron", "0 6 * * *", "--warehouse", str(wh), "--publish", str(store)],
        env=env | {"PREFECT_RUNNER_POLL_FREQUENCY": "2", "EUJP_ALERT_WEBHOOK_URL": rx.url}, cwd=tmp_path,
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        with api(url) as client:
            from prefect.exceptions import ObjectNotFound

            def deployment():
                if serve.poll() is not None:
                    raise AssertionError(f"eujp serve exited: {(tmp_path / 'serve.log').read_text()[-3000:]}")
                try:
                    return client.read_deployment_by_name("eujp-daily/served")
                except ObjectNotFound:
                    return None

            dep = wait_for(deployment, 90, "the deployment eujp-daily/served")
            # the schedule, read back through the API
            (schedule,) = dep.schedules
            assert (schedule.schedule.cron, schedule.schedule.timezone, schedule.active) == ("0 6 * * *", "UTC", True)
            assert dep.global_concurrency_limit is not None and dep.global_concurrency_limit.limit == 1
            assert dep.concurrency_options.collision_strategy.value == "ENQUEUE"
            assert dep.parameters == {"warehouse": str(wh), "publish_uri": str(store), "source_mode": "snapshot"}
            assert dep.entrypoint == "flows.daily.daily_flow"
            # a run triggered through the API, executed by the served process
            created = client.create_flow_run_from_deployment(dep.id)

            def finished():
                run = client.read_flow_run(created.id)
                if serve.poll() is not None:
                    raise AssertionError(f"eujp serve exited: {(tmp_path / 'serve.log').read_text()[-3000:]}")
                return run if run.state.is_final() else None

            run = wait_for(finished, 180, "the flow run to finish", interval=1)
            assert run.state.type == StateType.COMPLETED, (run.state, (tmp_path / "serve.log").read_text()[-3000:])
            artifacts = {x.key: x for x in client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))}
            # the server's scheduler has put the next runs on the calendar: every day at 06:00 UTC
            scheduled = wait_for(lambda: [r for r in client.read_flow_runs(deployment_filter=DeploymentFilter(
                id=DeploymentFilterId(any_=[dep.id]))) if r.state.type == StateType.SCHEDULED], 60,
                "the scheduler to schedule the deployment's runs")
            times = {r.expected_start_time.astimezone(UTC) for r in scheduled}
            assert {(t.hour, t.minute) for t in times} == {(6, 0)} and len(times) == len(scheduled)
        assert {"eujp-rows", "eujp-run-report"} <= set(artifacts)
        assert "eujp-data-docs" not in artifacts  # no EUJP_PUBLIC_URL: no http link (the report says where)

        # published objects: the run, its manifest, its Data Docs, and the pointer to it
        pointer = json.loads((store / "latest.json").read_text())
        assert [p.name for p in (store / "runs").iterdir()] == [pointer["run_id"]]
        run_id = pointer["run_id"]
        run_dir = store / "runs" / run_id
        # a scheduled run is given no run id: the one it made is its flow run's name, not a random animal
        assert run.name == f"daily-{run_id}" and run.parameters.get("run_id") is None
        manifest = json.loads((run_dir / "manifest.json").read_text())
        index = run_dir / "docs" / "index.html"
        assert index.is_file() and manifest["files"]["docs/index.html"] == hashlib.sha256(index.read_bytes()).hexdigest()
        validations = [k for k in manifest["files"] if k.startswith("docs/validations/")]
        assert len(validations) == len(FACT_TABLES)  # one validation result page per suite
        for table in FACT_TABLES:
            assert (run_dir / "parquet" / f"{table.name}.parquet").is_file()
            assert any(f"{table.name}" in k for k in validations), table.name

        # the table artifact is what the warehouse recorded for that run
        rows = json.loads(artifacts["eujp-rows"].data)
        recorded = {r[0]: r[1:] for r in q(wh, "SELECT source, rows_in, rows_loaded, rows_rejected FROM etl_runs "
                                              "WHERE run_id = ?", [run_id])}
        assert {r["source"]: (r["rows in"], r["valid"], r["rejected"]) for r in rows} == recorded
        assert len(rows) == len(SOURCES) and all(r["rows in"] > 0 for r in rows)
        report = artifacts["eujp-run-report"].data
        assert f"run `{run_id}`: SUCCESS" in report
        assert f"| published to | `{run_dir}` |" in report
        for table in FACT_TABLES:
            assert f"| {table.name} | " in report and "| passed |" in report
        assert "### Freshness" in report and "**STALE**" not in report
        assert f"| Data Docs | published to `{index.resolve()}` |" in report
        assert f"| report | published to `{(run_dir / 'report.html').resolve()}` |" in report
        assert rx.posts == []  # no alert for a run that completed

        # a run whose process is killed ends Crashed; the serving process runs the crash hook and alerts
        with api(url) as client:
            doomed = client.create_flow_run_from_deployment(dep.id)
            wait_for(lambda: client.read_flow_run(doomed.id).state.is_running(), 120, "the second run to start")
            (engine,) = wait_for(lambda: _children(serve.pid, "prefect.engine"), 30, "the flow run's process")
            os.kill(engine, signal.SIGKILL)
            crashed = wait_for(lambda: (r := client.read_flow_run(doomed.id)).state.is_final() and r, 90,
                            "the killed run to be reported")
        assert crashed.state.type == StateType.CRASHED, crashed.state
        wait_for(lambda: rx.posts, 30, "the crash alert")
        ((path, payload),) = rx.posts
        assert path == f"/services/T000/B000/{TOKEN}"
        assert f"eujp-daily (served): flow run '{crashed.name}' Crashed" in payload["text"]
        assert "SIGKILL" in payload["text"]
        assert TOKEN not in (tmp_path / "serve.log").read_text()
        # ...and the warehouse and the publication are as the completed run left them
        assert json.loads((store / "latest.json").read_text())["run_id"] == run_id
        assert [p.name for p in (store / "runs").iterdir()] == [run_id]
        assert q(wh, "SELECT DISTINCT run_id FROM etl_runs") == [(run_id,)]
    finally:
        stop_group(serve)
        rx.__exit__(None, None, None)
        log.close()


# --- 2. a failing run alerts the webhook ----------------------------------------------------------------

def test_a_failing_run_posts_an_alert_with_run_name_failed_task_and_error(prefect_api, tmp_path):
    url, env = prefect_api
    bad = tmp_path / "snapshot"
    shutil.copytree(SNAPSHOT, bad)
    unstamp_snapshot(bad)  # Comext files without their release stamps: a batch-wide critical rule fails
    run_id = "20261124T060000Z-a1e7ed"
    with local_http.Receiver(f"/services/T000/B000/{TOKEN}") as rx:
        result = eujp(["run", "--only", FAILING.name, "--snapshot-dir", str(bad),
                       "--warehouse", str(tmp_path / "wh.duckdb"), "--publish", str(tmp_path / "store"),
                       "--run-id", run_id],
                      env | {"EUJP_ALERT_WEBHOOK_URL": rx.url})
    assert result.returncode == 1, result.stdout + result.stderr
    assert len(rx.posts) == 1, rx.posts
    path, payload = rx.posts[0]
    assert path == f"/services/T000/B000/{TOKEN}"
    with api(url) as client:
        run = flow_run_by_run_id(client, run_id)
    assert run.state.name == "Failed"
    text = payload["text"]
    assert f"flow run '{run.name}' Failed" in text
    assert f"Failed task: prepare {FAILING.name} (validate of {FAILING.name} failed)" in text
    assert FAILING_TABLE in text and FAILED_EXPECTATION in text
    assert f"/runs/flow-run/{run.id}" in json.dumps(payload["blocks"])
    assert f"alert sent for flow run {run.name}" in result.stderr + result.stdout
    assert TOKEN not in result.stdout + result.stderr  # the secret URL is never printed nor logged

    # eujp status: the run and its state from the Prefect API, what the warehouse recorded, freshness
    status = eujp(["status", "--warehouse", str(tmp_path / "wh.duckdb"), "--publish", str(tmp_path / "store")],
                  env | {"COLUMNS": "250"}, timeout=120)
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert any(run.name in line and "Failed" in line for line in lines), status.stdout
    assert any(run_id in line and "failed" in line and "0/0/1" in line for line in lines), status.stdout
    assert any(line.startswith(f"│ {FAILING.name}") and "failed" in line and "NEVER" in line for line in lines)
    assert f"latest = run {run_id}" in status.stdout  # a run with a failed source still publishes the rest


# --- 3. overlapping runs never interleave -----------------------------------------------------------------

def test_overlapping_runs_fail_clearly_or_wait_and_never_interleave(prefect_api, tmp_path):
    url, env = prefect_api
    wh, store = tmp_path / "var" / "warehouse.duckdb", tmp_path / "store"
    common = ["--warehouse", str(wh), "--publish", str(store)]
    ra, rb, rc = "20261124T060000Z-aaaaaa", "20261124T060001Z-bbbbbb", "20261124T060002Z-cccccc"
    events = (SNAPSHOT / "security_events.csv").read_bytes()
    procs: list[subprocess.Popen] = []
    logs = {name: open(tmp_path / f"{name}.log", "w+") for name in ("a", "c")}  # noqa: SIM115 - closed below
    try:
        with local_http.GatedFile(events) as slow:
            # A: a live run whose events source answers only when the test says so: it holds the lock meanwhile
            a = subprocess.Popen(
                [str(BIN / "eujp"), "run", "--source", "live", "--only", EVENTS, "--run-id", ra, *common],
                env=env | {"EUJP_EVENTS_URL": f"{slow.base}/security_events.csv", "EUJP_HTTP_READ_TIMEOUT": "150"},
                cwd=REPO, stdout=logs["a"], stderr=subprocess.STDOUT, text=True, start_new_session=True)
            procs.append(a)
            wait_for(lambda: slow.requested.is_set() or a.poll() is not None, 120, "run A to request its source")
            assert a.poll() is None, (tmp_path / "a.log").read_text()[-3000:]
            lock = wh.with_name(wh.name + ".lock")
            assert lock.read_text().startswith(f"pid {a.pid} ")

            # B: fails at once, naming the holder; it wrote nothing
            b = eujp(["run", "--run-id", rb, *common], env, timeout=180)
            assert b.returncode == 1
            assert f"another run is writing {wh}" in b.stderr and f"held by pid {a.pid}" in b.stderr, b.stderr[-3000:]
            assert "Traceback" not in b.stderr and "RunLocked" not in b.stderr, b.stderr[-3000:]  # the line only

            # C: told to wait; started while A still holds the lock
            c = subprocess.Popen([str(BIN / "eujp"), "run", "--only", EVENTS, "--force", "--run-id", rc,
                                  *common],
                                 env=env | {"EUJP_LOCK_WAIT_SECONDS": "180"}, cwd=REPO, stdout=logs["c"],
                                 stderr=subprocess.STDOUT, text=True, start_new_session=True)
            procs.append(c)
            with api(url) as client:
                def c_running():
                    if c.poll() is not None:
                        raise AssertionError((tmp_path / "c.log").read_text()[-3000:])
                    runs = [r for r in client.read_flow_runs(limit=50) if r.parameters.get("run_id") == rc]
                    return runs and runs[0].state.is_running()

                wait_for(c_running, 120, "run C to be running")
            time.sleep(2)  # C is now inside its flow, at the lock
            assert a.poll() is None  # A still holds it
            slow.release()
            assert a.wait(180) == 0, (tmp_path / "a.log").read_text()[-3000:]
            assert c.wait(240) == 0, (tmp_path / "c.log").read_text()[-3000:]

        with api(url) as client:
            from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

            fa, fb, fc = (flow_run_by_run_id(client, r) for r in (ra, rb, rc))
            b_artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[fb.id])))
        assert (fa.state.name, fb.state.name, fc.state.name) == ("Completed", "Failed", "Completed")
        (b_report,) = [x for x in b_artifacts if x.key == "eujp-run-report"]
        assert "another run is writing" in b_report.data  # B's report says why it did nothing
        assert fc.start_time < fa.end_time  # the runs did overlap in time...
        # ...but not their writes: every write of C comes after the last of A; B wrote nothing
        assert q(wh, "SELECT DISTINCT run_id FROM etl_runs ORDER BY 1") == [(ra,), (rc,)]
        (a_end,), = q(wh, "SELECT max(ended_at) FROM etl_runs WHERE run_id = ?", [ra])
        (c_start,), = q(wh, "SELECT min(started_at) FROM etl_runs WHERE run_id = ?", [rc])
        assert a_end <= c_start
        for table in FACT_TABLES:
            keys = ", ".join(table.natural_key)
            assert q(wh, f"SELECT count(*) FROM (SELECT {keys} FROM {table.name} GROUP BY ALL "
                     "HAVING count(*) > 1)") == [(0,)], table.name
        pointer = json.loads((store / "latest.json").read_text())
        assert pointer["run_id"] == rc and not (store / "runs" / rb).exists()
        assert sorted(p.name for p in (store / "runs").iterdir()) == [ra, rc]
        assert not list((wh.parent / "staging").glob("*.duckdb*"))
    finally:
        for p in procs:
            stop_group(p)
        for f in logs.values():
            f.close()


def test_eujp_run_without_a_prefect_api_starts_its_own_server_and_stops_it(tmp_path):
    """With no PREFECT_API_URL, `eujp run` starts a temporary Prefect server first (while the pipeline is
    imported), runs the flow against it, and stops it when the run ends: the flow run is in that server's
    database under PREFECT_HOME, and nothing is left listening. Its flow runs send no heartbeats (a server
    that stops with the run cannot mark a crashed one, and Prefect waits up to 1 s for the heartbeat thread at
    each run's end); the events of the run are there."""
    import re

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "EUJP_"))}
    home = tmp_path / "prefect-home"
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
    result = eujp(["run", "--only", EVENTS, "--warehouse", str(tmp_path / "w.duckdb"),
                   "--publish", str(tmp_path / "store"), "--run-id", "20261124T060000Z-tmpsrv"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    log = result.stdout + result.stderr
    started = re.search(r"Starting temporary server on http://127\.0\.0\.1:(\d+)", log)
    assert started and "Stopping temporary server" in log, log
    with pytest.raises(OSError):  # stopped: nothing answers on its port any more
        urllib.request.urlopen(f"http://127.0.0.1:{started.group(1)}/api/health", timeout=2)
    # the flow run is recorded in the temporary server's database (PREFECT_HOME), as Prefect's own would be
    import sqlite3

    with sqlite3.connect(home / "prefect.db") as db:
        names = {r[0] for r in db.execute("SELECT f.name FROM flow_run r JOIN flow f ON f.id = r.flow_id "
                                          "WHERE r.state_type = 'COMPLETED'")}
        events = dict(db.execute("SELECT event, count(*) FROM events GROUP BY event").fetchall())
    assert {"eujp-daily", "eujp-defence"} <= names
    assert events.get("prefect.flow-run.Completed", 0) >= 2, events
    assert "prefect.flow-run.heartbeat" not in events, events


def _events_of(url: str, name: str, resource_id: str) -> list[dict]:
    """The events named `name` of the resource `resource_id` the Prefect server at `url` stored (its events API)."""
    body = json.dumps({"filter": {"event": {"name": [name]}, "resource": {"id": [resource_id]}}, "limit": 50})
    request = urllib.request.Request(f"{url}/events/filter", data=body.encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)["events"]


def test_eujp_run_against_a_running_server_keeps_the_flow_runs_heartbeats(prefect_api, tmp_path):
    """Against a configured Prefect server (PREFECT_API_URL, as a deployment's runs) the daily flow run sends
    its heartbeats, which let that server mark a run whose process died; its domain subflows, in the same
    process, send none (flows.domains.without_heartbeats); only `eujp run`'s own temporary server goes without
    any (the test above)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    url, env = prefect_api
    run_id = "20261124T060000Z-hbeats"
    result = eujp(["run", "--only", EVENTS, "--warehouse", str(tmp_path / "w.duckdb"),
                   "--publish", str(tmp_path / "store"), "--run-id", run_id], env)
    assert result.returncode == 0, result.stdout + result.stderr
    with api(url) as client:
        flow_run = flow_run_by_run_id(client, run_id)
        (domain_run,) = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[f"defence-{run_id}"])))
    assert flow_run.name == f"daily-{run_id}"
    beats = wait_for(lambda: _events_of(url, "prefect.flow-run.heartbeat", f"prefect.flow-run.{flow_run.id}"),
                     30, "the daily flow run's heartbeat on the server")
    assert beats[0]["resource"]["prefect.resource.id"] == f"prefect.flow-run.{flow_run.id}"
    # A heartbeat is sent as a flow run starts, by the run's process, which sends its events in order: once the
    # daily run's publish task (after the subflow) is stored as Completed, a heartbeat of the subflow would be too.
    body = json.dumps({"filter": {"event": {"name": ["prefect.task-run.Completed"]},
                                  "related": {"id": [f"prefect.flow-run.{flow_run.id}"]}}, "limit": 50})

    def published() -> bool:
        request = urllib.request.Request(f"{url}/events/filter", data=body.encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return any(e["resource"].get("prefect.resource.name") == "publish" for e in json.load(answer)["events"])

    wait_for(published, 30, "the daily flow run's publish task, Completed, on the server")
    assert _events_of(url, "prefect.flow-run.heartbeat", f"prefect.flow-run.{domain_run.id}") == []


def test_the_temporary_server_dies_with_a_run_killed_by_sigkill(tmp_path):
    """A run killed outright (no atexit) must not leave its temporary Prefect server running."""
    script = tmp_path / "run.py"
    script.write_text(
        "import os, sys, time\n"
        "from eujp.prefect_server import start_if_needed\n"
        "server = start_if_needed()\n"
        "server.wait_ready()\n"
        "print(server.process.pid, flush=True)\n"
        "time.sleep(120)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "EUJP_"))}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    run = subprocess.Popen([sys.executable, str(script)], env=env, cwd=REPO, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        server_pid = int(run.stdout.readline())
        os.kill(server_pid, 0)  # running
        run.kill()
        run.wait(10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                os.kill(server_pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"the temporary server {server_pid} outlived its killed run")
    finally:
        stop_group(run)
