"""Writers on different hosts (here: different warehouse folders, so the file lock does not meet) that publish
to the same target are serialised by a Prefect global concurrency limit (flows/writers.py) on a real Prefect
server: started at the same moment, one writes and the other waits for it or fails cleanly, never both.

The target is a local folder (as one shared by several hosts), so the limit is named (EUJP_WRITER_LIMIT): for
an s3:// target it is on by default, named after the target (tests/unit/test_writers.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.processes import client_env, prefect_server, wait_for

REPO = Path(__file__).resolve().parents[2]
EUJP = Path(sys.executable).parent / "eujp"
SNAPSHOT = REPO / "data" / "snapshot"

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory):
    home = tmp_path_factory.mktemp("prefect-home-writers")
    env = client_env(home) | {"PYTHONPATH": f"{REPO}:{REPO / 'tests'}"}
    server_env = env | {f"PREFECT_SERVER_SERVICES_{name}_ENABLED": "false" for name in (
        "SCHEDULER", "LATE_RUNS", "FOREMAN", "PAUSE_EXPIRATIONS", "CANCELLATION_CLEANUP", "REPOSSESSOR",
        "DB_VACUUM")}
    with prefect_server(home, server_env, startup_timeout=150) as url:
        yield env | {"PREFECT_API_URL": url, "EUJP_WRITER_LIMIT": "eujp-writer-test"}


def two_writers(tmp_path: Path, env: dict, *, wait: float, hold: float) -> list[dict]:
    """Two writer_driver processes, released at the same moment; what each of them did."""
    go = tmp_path / "go"
    target = str(tmp_path / "shared-target")
    outs = [tmp_path / f"writer-{i}.json" for i in range(2)]
    procs = [subprocess.Popen(
        [sys.executable, "-m", "support.writer_driver", target, str(tmp_path / f"host{i}" / "warehouse.duckdb"),
         str(wait), str(hold), str(out), str(go)], env=env, cwd=REPO, start_new_session=True)
        for i, out in enumerate(outs)]
    try:
        wait_for(lambda: all(Path(f"{out}.ready").exists() for out in outs), 120, "both writers to be ready")
        go.write_text("go")
        for p in procs:
            assert p.wait(120) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
    return [json.loads(out.read_text()) for out in outs]


def test_two_writers_at_once_one_writes_the_other_fails_cleanly(tmp_path, prefect_api):
    results = two_writers(tmp_path, prefect_api, wait=0, hold=12)
    assert sorted(r["status"] for r in results) == ["locked", "wrote"], results
    locked = next(r for r in results if r["status"] == "locked")
    wrote = next(r for r in results if r["status"] == "wrote")
    assert "another run is writing to" in locked["message"] and "'eujp-writer-test'" in locked["message"]
    assert "nothing was changed" in locked["message"]
    # the holder may be a killed run, whose slot stays taken until its lease runs out: the message says so
    assert ("The holder may be a run that died (killed, or its host lost): its slot is freed when its lease runs "
            "out, 60s after it was last renewed; if no run is writing, run again after that") in locked["message"]
    assert wrote["start"] <= locked["at"] <= wrote["end"]  # it gave up while the other one was writing


def test_two_writers_at_once_with_a_wait_write_one_after_the_other(tmp_path, prefect_api):
    results = two_writers(tmp_path, prefect_api, wait=90, hold=4)
    assert [r["status"] for r in results] == ["wrote", "wrote"], results
    first, second = sorted(results, key=lambda r: r["start"])
    assert second["start"] >= first["end"] - 0.05, results  # never both inside the slot


def test_two_daily_runs_at_once_on_two_hosts_publish_once(tmp_path, prefect_api):
    """Two `eujp run` processes, own warehouses, one publish target: one publishes, the other fails naming
    the limit and leaves the target as the first one left it."""
    target = tmp_path / "target"
    procs = []
    for i in range(2):
        host = tmp_path / f"host{i}"
        host.mkdir()
        procs.append(subprocess.Popen(
            [str(EUJP), "run", "--snapshot-dir", str(SNAPSHOT), "--warehouse", str(host / "warehouse.duckdb"),
             "--publish", str(target), "--run-id", f"host{i}-run"],
            env=prefect_api, cwd=host, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True))
        time.sleep(0.5)
    outputs = [p.communicate(timeout=400)[0] for p in procs]
    codes = [p.returncode for p in procs]
    assert sorted(codes) == [0, 1], (codes, [o[-2000:] for o in outputs])
    loser = codes.index(1)
    assert "another run is writing to" in outputs[loser], outputs[loser][-3000:]
    latest = json.loads((target / "latest.json").read_text())
    assert latest["run_id"] == f"host{1 - loser}-run"
    assert [p.name for p in (target / "runs").iterdir()] == [f"host{1 - loser}-run"]
    assert not (tmp_path / f"host{loser}" / "warehouse.duckdb").exists()  # the loser wrote nothing
