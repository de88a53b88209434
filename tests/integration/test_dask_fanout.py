"""Fan-out on a real Dask cluster (issue 13): a `dask scheduler` and two `dask worker` processes on 127.0.0.1,
`eujp run --dask-address` against them and a real Prefect server, the same data once more in one process.

The partitions (one generated Comext month file each) must be prepared by the worker processes, not by the
run, and the warehouse must equal the single-process run's table by table (eujp.compare)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.processes import client_env, dask_cluster, prefect_server

from benchmarks.generate import generate, make_plan
from eujp.compare import compare_warehouses

REPO = Path(__file__).resolve().parents[2]
EUJP = Path(sys.executable).parent / "eujp"
ROWS = 9_000

pytestmark = pytest.mark.timeout(900)

PREPARED = re.compile(r"partition (\d+) prepared on ([^:\s]+):(\d+) in [0-9.]+ s: (\d+) rows in")


def eujp_run(env: dict, out: Path, snapshot: Path, *extra: str) -> subprocess.CompletedProcess:
    out.mkdir()
    done = subprocess.run(
        [str(EUJP), "run", "--snapshot-dir", str(snapshot), "--warehouse", str(out / "warehouse.duckdb"),
         "--publish", str(out / "store"), *extra],
        env=env, cwd=out, capture_output=True, text=True, timeout=600, start_new_session=True, check=False)
    (out / "run.log").write_text(done.stdout + done.stderr)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return done


def test_partitions_run_on_dask_workers_and_the_warehouse_equals_a_single_process_run(tmp_path):
    snapshot = tmp_path / "snapshot"
    plan = make_plan(rows=ROWS, years=None, seed=11, start_year=2021, partners=("JP",))  # 12 month files
    generate(plan, snapshot, log=lambda *_: None)
    months = len(list(snapshot.glob("comext_*.csv")))
    home = tmp_path / "prefect-home"
    home.mkdir()
    env = client_env(home) | {"PYTHONPATH": str(REPO)}
    server_env = env | {f"PREFECT_SERVER_SERVICES_{name}_ENABLED": "false" for name in (
        "SCHEDULER", "LATE_RUNS", "FOREMAN", "PAUSE_EXPIRATIONS", "CANCELLATION_CLEANUP", "REPOSSESSOR",
        "DB_VACUUM")}
    with prefect_server(home, server_env, startup_timeout=150) as url:
        env = env | {"PREFECT_API_URL": url}
        with dask_cluster(tmp_path, env, workers=2) as (address, _workers):
            from distributed import Client

            with Client(address, timeout=10) as client:
                worker_pids = set(client.run(lambda: __import__("os").getpid()).values())
            assert len(worker_pids) == 2
            fanned = eujp_run(env, tmp_path / "fanned", snapshot, "--dask-address", address)
            with Client(address, timeout=10) as client:  # the workers kept no state of the run
                assert set(client.run(lambda: __import__("os").getpid()).values()) == worker_pids
        single = eujp_run(env, tmp_path / "single", snapshot)

    log = fanned.stdout + fanned.stderr
    prepared = [(int(i), int(pid), int(rows)) for i, _host, pid, rows in PREPARED.findall(log)]
    assert sorted(i for i, _, _ in prepared) == list(range(months)), log[-3000:]
    assert {pid for _, pid, _ in prepared} <= worker_pids, (prepared, worker_pids)
    assert sum(rows for _, _, rows in prepared) == plan.rows
    assert not PREPARED.search(single.stdout + single.stderr)  # the default path does not fan out

    diffs = compare_warehouses(tmp_path / "single" / "warehouse.duckdb", tmp_path / "fanned" / "warehouse.duckdb")
    assert [d.line() for d in diffs if not d.same] == []
    assert {d.table for d in diffs} >= {"fact_goods_trade_product", "etl_runs", "etl_rejected_rows"}
    # the run-scoped staging prefix is gone; the raw zone holds every month file, landed by the workers
    store = tmp_path / "fanned" / "store"
    assert not [p for p in (store / "staging").rglob("*") if p.is_file()]
    assert len([p for p in (store / "raw").rglob("*.csv")]) >= months


def test_a_run_whose_cluster_loses_every_worker_fails_the_source_instead_of_waiting_for_ever(tmp_path):
    """Dask keeps a task whose workers all died waiting for a new worker, for ever: the run held the lock and
    made no progress until someone killed the scheduler. With no worker for EUJP_DASK_NO_WORKERS_SECONDS the
    source fails, naming the cluster, and the run ends."""
    import os
    import signal
    import time

    from distributed import Client

    snapshot = tmp_path / "snapshot"
    generate(make_plan(rows=ROWS, years=None, seed=12, start_year=2021, partners=("JP",)), snapshot,
             log=lambda *_: None)
    home = tmp_path / "prefect-home"
    home.mkdir()
    env = client_env(home) | {"PYTHONPATH": str(REPO)}
    with prefect_server(home, env, startup_timeout=150) as url:
        env = env | {"PREFECT_API_URL": url}
        with dask_cluster(tmp_path, env, workers=1) as (address, (worker,)):
            out = tmp_path / "lost"
            out.mkdir()
            run = subprocess.Popen(
                [str(EUJP), "run", "--snapshot-dir", str(snapshot), "--warehouse", str(out / "warehouse.duckdb"),
                 "--publish", str(out / "store"), "--dask-address", address],
                env=env | {"EUJP_DASK_NO_WORKERS_SECONDS": "3"}, cwd=out, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True, start_new_session=True)
            try:
                with Client(address, timeout=10) as client:
                    deadline = time.monotonic() + 300
                    while not any(client.processing().values()):  # a partition's task is on the worker
                        assert run.poll() is None and time.monotonic() < deadline, "no task reached the worker"
                        time.sleep(0.05)
                os.killpg(worker.pid, signal.SIGKILL)
                killed = time.monotonic()
                output, _ = run.communicate(timeout=240)
                ended = time.monotonic() - killed
            finally:
                if run.poll() is None:
                    os.killpg(run.pid, signal.SIGKILL)
    (out / "run.log").write_text(output)
    assert run.returncode == 1, output[-3000:]
    assert ended < 120, ended
    assert f"the Dask scheduler {address} stopped answering or lost its workers" in output, output[-3000:]
    assert "no worker for 3 s (EUJP_DASK_NO_WORKERS_SECONDS)" in output
