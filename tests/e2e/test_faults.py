"""Faults a run must survive, each injected for real:

* the run process SIGKILLed in the middle of the load, and in the middle of the publish;
* two runs at once on one warehouse;
* S3 errors, dropped connections, hangs and slow-downs during publish (a fault-injecting proxy in front of
  moto, tests/support/s3_fault_proxy.py), transient and persistent;
* a full disk and a read-only warehouse folder (a tmpfs in a private mount namespace).

The runs that get killed or paused are child processes (tests/support/fault_driver.py) that patch a pipeline function
to stop at a known point: the production code has no fault-injection hook.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import duckdb
import pytest
from support.s3_fault_proxy import FaultProxy, Rule
from support.small_publish import publish

from eujp.errors import EujpError, PublishError
from eujp.lock import warehouse_lock
from eujp.publish import LATEST_POINTER, read_latest_pointer
from eujp.storage import S3ObjectStore
from eujp.tables import ALL_TABLES
from flows.daily import daily_flow

REPO = Path(__file__).resolve().parents[2]
SNAPSHOT = REPO / "data" / "snapshot"
DRIVER = REPO / "tests" / "support" / "fault_driver.py"
GOOD_RUN = "20261124T060000Z-good01"
NEW_EVENT_TITLE = "Fault-injection test dialogue"
CHILD_TIMEOUT = 240  # seconds a child run may take (imports + a whole run)


# --- helpers ---------------------------------------------------------------------------------------------

def fingerprint(warehouse: Path) -> dict[str, tuple[int, str]]:
    """Row count and a hash of the sorted rows of every table: equal fingerprints, equal data."""
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        present = {r[0] for r in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        return {
            t.name: conn.execute(
                f'SELECT count(*), md5(coalesce(string_agg(t::VARCHAR, \'|\' ORDER BY t::VARCHAR), \'\')) '
                f'FROM "{t.name}" AS t').fetchone()
            for t in ALL_TABLES if t.name in present
        }


def query(warehouse: Path, sql: str, params=()):
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.execute(sql, params).fetchall()


def snapshot_with_new_event(tmp_path: Path) -> Path:
    snap = tmp_path / "snapshot"
    shutil.copytree(SNAPSHOT, snap)
    with open(snap / "security_events.csv", "a", encoding="utf-8") as f:
        f.write(f'2026-11-20,day,dialogue,JPN;EU,{NEW_EVENT_TITLE},"A dialogue only the fault tests know.",'
                'https://example.org/fault,"test row"\n')
    return snap


def store_objects(store: Path) -> dict[str, bytes]:
    return {p.relative_to(store).as_posix(): p.read_bytes() for p in store.rglob("*") if p.is_file()}


def latest_objects(store: Path) -> dict[str, bytes]:
    return {k: v for k, v in store_objects(store).items() if k == LATEST_POINTER or k.startswith("latest/")}


def child_env(tmp_path: Path) -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    env = {k: v for k, v in os.environ.items() if not k.startswith(("EUJP_", "PREFECT_"))}
    env.update(PREFECT_API_URL=PREFECT_API_URL.value(), PREFECT_HOME=str(tmp_path / "prefect-home"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", GX_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
    return env


def start_driver(tmp_path: Path, runs: list[dict], prefix: list[str] = ()) -> subprocess.Popen:
    spec = tmp_path / f"spec-{time.monotonic_ns()}.json"
    spec.write_text(json.dumps({"runs": runs}))
    return subprocess.Popen([*prefix, sys.executable, str(DRIVER), str(spec)], cwd=REPO, env=child_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_file(path: Path, proc: subprocess.Popen, timeout: float = CHILD_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the child run ended (code {proc.returncode}) before reaching the fault point:\n"
                        f"{out[-3000:]}\n{err[-3000:]}")
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"the child run did not reach the fault point within {timeout:g}s")


def driver_results(proc: subprocess.Popen) -> dict[str, dict]:
    try:
        out, err = proc.communicate(timeout=CHILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the child run did not finish within {CHILD_TIMEOUT}s:\n{err[-3000:]}")
    assert proc.returncode == 0, f"driver failed ({proc.returncode}):\n{out[-3000:]}\n{err[-5000:]}"
    return {r["name"]: r for r in map(json.loads, (line for line in out.splitlines() if line.startswith("{")))}


def run(tmp_path: Path, *, run_id: str, snapshot: Path = SNAPSHOT, publish_uri: str | None = None):
    state = daily_flow(snapshot_dir=str(snapshot), warehouse=str(tmp_path / "var" / "warehouse.duckdb"),
                       publish_uri=publish_uri or str(tmp_path / "var" / "objectstore"), run_id=run_id,
                       return_state=True)
    return state


@pytest.fixture(scope="module")
def good_run(prefect_server, tmp_path_factory) -> Path:
    """One complete run on the bundled snapshot: var/warehouse.duckdb and var/objectstore, to copy from."""
    root = tmp_path_factory.mktemp("good")
    state = run(root, run_id=GOOD_RUN)
    assert state.is_completed(), state.message
    return root / "var"


@pytest.fixture
def var(good_run, tmp_path) -> Path:
    """A private copy of the good run's warehouse and object store."""
    shutil.copytree(good_run, tmp_path / "var", ignore=shutil.ignore_patterns("*.lock"))
    return tmp_path / "var"


# --- SIGKILL ---------------------------------------------------------------------------------------------

def test_sigkill_during_the_load_keeps_the_previous_warehouse_and_the_next_run_succeeds(var, tmp_path):
    warehouse, store = var / "warehouse.duckdb", var / "objectstore"
    before, published_before = fingerprint(warehouse), latest_objects(store)
    snap = snapshot_with_new_event(tmp_path)
    ready = tmp_path / "paused-in-load"
    proc = start_driver(tmp_path, [{
        "name": "killed",
        "flow": {"snapshot_dir": str(snap), "warehouse": str(warehouse), "publish_uri": str(store),
                 "run_id": "20261125T060000Z-kill01"},
        # Pause right after the events batch was written into the staging copy, inside its transaction.
        "pause": {"target": "eujp.pipeline:upsert_fact", "ready": str(ready), "release": None, "max_seconds": 300},
    }])
    wait_for_file(ready, proc)
    staging = var / "staging" / "20261125T060000Z-kill01.duckdb"
    assert staging.exists()  # the run was mid-load: its link to the live warehouse (its commits in its log)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    # The live warehouse opens with exactly the previous good data; nothing was published.
    assert fingerprint(warehouse) == before
    assert latest_objects(store) == published_before
    assert staging.exists()  # a killed run cannot clean up: the next run does

    state = run(tmp_path, run_id="20261125T070000Z-next01", snapshot=snap)
    assert state.is_completed(), state.message
    assert not list((var / "staging").iterdir())  # the stale staging copy was removed
    assert query(warehouse, "SELECT count(*) FROM fact_security_events WHERE title = ?", [NEW_EVENT_TITLE]) == [(1,)]
    assert query(warehouse, "SELECT count(*) FROM etl_runs WHERE run_id = '20261125T060000Z-kill01'") == [(0,)]
    assert read_latest_pointer_at(store)["run_id"] == "20261125T070000Z-next01"


def read_latest_pointer_at(store: Path) -> dict:
    return json.loads((store / LATEST_POINTER).read_text())


def test_sigkill_during_the_publish_leaves_latest_on_the_previous_run(var, tmp_path):
    warehouse, store = var / "warehouse.duckdb", var / "objectstore"
    published_before = latest_objects(store)
    snap = snapshot_with_new_event(tmp_path)
    ready = tmp_path / "paused-in-publish"
    run_id = "20261125T060000Z-kill02"
    proc = start_driver(tmp_path, [{
        "name": "killed",
        "flow": {"snapshot_dir": str(snap), "warehouse": str(warehouse), "publish_uri": str(store), "run_id": run_id},
        # Pause once every object of the run is uploaded, before latest/ and latest.json move.
        "pause": {"target": "eujp.storage:LocalObjectStore.put_file", "match": f"runs/{run_id}/manifest.json",
                  "ready": str(ready), "release": None, "max_seconds": 300},
    }])
    wait_for_file(ready, proc)
    assert (store / "runs" / run_id / "manifest.json").is_file()
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)

    # Readers still get the previous run, whole: the pointer, every latest/ object, and what it points to.
    assert latest_objects(store) == published_before
    pointer = read_latest_pointer_at(store)
    assert pointer["run_id"] == GOOD_RUN
    manifest = json.loads((store / pointer["manifest"]).read_text())
    assert hashlib.sha256((store / pointer["prefix"] / "warehouse.duckdb").read_bytes()).hexdigest() \
        == manifest["warehouse"]["sha256"]
    # The killed run had been promoted locally (audited), so the next run has nothing new to load but
    # publishes the warehouse that holds the new event.
    assert query(warehouse, "SELECT count(*) FROM fact_security_events WHERE title = ?", [NEW_EVENT_TITLE]) == [(1,)]
    state = run(tmp_path, run_id="20261125T070000Z-next02", snapshot=snap)
    assert state.is_completed(), state.message
    assert read_latest_pointer_at(store)["run_id"] == "20261125T070000Z-next02"
    published = tmp_path / "published.duckdb"
    published.write_bytes((store / "latest" / "warehouse.duckdb").read_bytes())
    assert query(published, "SELECT count(*) FROM fact_security_events WHERE title = ?", [NEW_EVENT_TITLE]) == [(1,)]


# --- two runs at once ------------------------------------------------------------------------------------

def test_a_second_run_while_one_is_loading_fails_at_once_and_writes_nothing(var, tmp_path):
    warehouse, store = var / "warehouse.duckdb", var / "objectstore"
    snap = snapshot_with_new_event(tmp_path)
    ready, release = tmp_path / "first-paused", tmp_path / "first-release"
    first = "20261125T060000Z-first1"
    proc = start_driver(tmp_path, [{
        "name": "first",
        "flow": {"snapshot_dir": str(snap), "warehouse": str(warehouse), "publish_uri": str(store), "run_id": first},
        "pause": {"target": "eujp.pipeline:upsert_fact", "ready": str(ready), "release": str(release),
                  "max_seconds": 300},
    }])
    try:
        wait_for_file(ready, proc)
        staging = var / "staging" / f"{first}.duckdb"
        staged_before = sorted(p.name for p in staging.parent.iterdir())

        second = run(tmp_path, run_id="20261125T060001Z-second", snapshot=snap)
        assert second.is_failed()
        assert "another run is writing" in second.message and f"pid {proc.pid}" in second.message
        # The second run touched nothing: no staging of its own, the first run's staging link and log intact
        # (the live file itself is open for writing by the first run: DuckDB's lock keeps readers out until
        # it ends; the run lock kept the second run from opening it).
        assert sorted(p.name for p in staging.parent.iterdir()) == staged_before
        assert staging.exists()
    finally:
        release.touch()
    results = driver_results(proc)
    assert results["first"]["state"] == "COMPLETED", results["first"]["message"]
    assert {r[0] for r in query(warehouse, "SELECT DISTINCT run_id FROM etl_runs")} == {GOOD_RUN, first}
    assert read_latest_pointer_at(store)["run_id"] == first
    assert not list((var / "staging").iterdir())


def test_lock_on_an_unwritable_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the warehouse folder should be")
    with (pytest.raises(EujpError, match=r"cannot take the run lock .*not-a-folder/warehouse.duckdb.lock: .*"
                                         r"the warehouse folder .* must be writable"),
          warehouse_lock(blocker / "warehouse.duckdb")):
        pass


# --- S3 faults during publish ----------------------------------------------------------------------------

MAX_ATTEMPTS = 4


@pytest.fixture
def proxy(s3_server, s3_bucket, monkeypatch):
    """The moto server behind a fault-injecting proxy; boto3 (and the pipeline) talk to the proxy."""
    with FaultProxy(s3_server) as p:
        monkeypatch.setenv("AWS_ENDPOINT_URL", p.url)
        monkeypatch.setenv("EUJP_S3_MAX_ATTEMPTS", str(MAX_ATTEMPTS))
        monkeypatch.setenv("EUJP_S3_READ_TIMEOUT", "1.5")
        p.bucket = s3_bucket
        yield p


def moto_objects(s3_server: str, bucket: str) -> dict[str, bytes]:
    """Every object, read from moto directly (not through the proxy)."""
    client = boto3.client("s3", endpoint_url=s3_server)
    keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", [])]
    return {k: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def latest_of(objects: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in objects.items() if k == f"eujp/{LATEST_POINTER}" or k.startswith("eujp/latest/")}


def assert_run_verifies(objects: dict[str, bytes], run_id: str) -> None:
    """Every object the run's manifest lists is there with the manifest's sha256."""
    prefix = f"eujp/runs/{run_id}"
    manifest = json.loads(objects[f"{prefix}/manifest.json"])
    sha = hashlib.sha256
    assert sha(objects[f"{prefix}/warehouse.duckdb"]).hexdigest() == manifest["warehouse"]["sha256"]
    for name, table in manifest["tables"].items():
        if table.get("parts") is not None:  # published by partition (eujp.publish.PartitionedParquet)
            for part in table["parts"].values():
                assert sha(objects[f"{prefix}/{part['key']}"]).hexdigest() == part["sha256"], name
        elif table.get("parquet"):
            assert sha(objects[f"{prefix}/{table['parquet']}"]).hexdigest() == table["sha256"], name


def test_transient_s3_errors_and_slow_downs_are_retried_and_the_publish_completes(proxy, s3_server, tmp_path):
    store = S3ObjectStore(proxy.bucket, "eujp")
    publish(tmp_path, store, "20261124T060000Z-s3ok01", rows=3)
    faults = [
        Rule("PUT", r"/runs/.*/parquet/", times=3, status=503),            # SlowDown
        Rule("PUT", r"/runs/.*/warehouse\.duckdb$", times=1, reset=True),  # connection dropped
        Rule("HEAD", r"/runs/.*/manifest\.json$", times=1, status=500),    # InternalError on the verify
        Rule("PUT", r"/latest/manifest\.json$", times=1, hang=3.0),        # no answer within the read timeout
        Rule(None, r"", times=None, delay=0.02),                          # everything else: a slow service
    ]
    proxy.add(*faults)
    result = publish(tmp_path, store, "20261125T060000Z-s3ok02", rows=5)
    assert [r.hits for r in faults[:4]] == [3, 1, 1, 1]  # every fault was injected, and survived
    objects = moto_objects(s3_server, proxy.bucket)
    assert json.loads(objects["eujp/latest.json"])["run_id"] == "20261125T060000Z-s3ok02"
    assert_run_verifies(objects, "20261125T060000Z-s3ok02")
    assert objects["eujp/latest/warehouse.duckdb"] == objects["eujp/runs/20261125T060000Z-s3ok02/warehouse.duckdb"]
    assert result.manifest["run_id"] == "20261125T060000Z-s3ok02"


@pytest.mark.parametrize(("method", "key", "failed_at", "state"), [
    ("PUT", r"/runs/.*/manifest\.json$", "runs/20261125T060000Z-s3bad1/manifest.json", "latest was not moved"),
    ("HEAD", r"/runs/.*/warehouse\.duckdb$", "runs/20261125T060000Z-s3bad1/warehouse.duckdb",
     "latest was not moved"),
    ("PUT", r"/latest\.json$", "latest.json",
     "the latest/ aliases were replaced but latest.json still points at the previous run"),
])
def test_persistent_s3_errors_fail_the_publish_and_keep_the_previous_latest(proxy, s3_server, tmp_path, method,
                                                                            key, failed_at, state):
    store = S3ObjectStore(proxy.bucket, "eujp")
    publish(tmp_path, store, "20261124T060000Z-s3bad0", rows=3)
    before = moto_objects(s3_server, proxy.bucket)
    proxy.clear()
    proxy.add(Rule(method, key, times=None, status=503))
    with pytest.raises(PublishError) as err:
        publish(tmp_path, store, "20261125T060000Z-s3bad1", rows=5)
    assert f"failed at {failed_at}: " in str(err.value)
    # 503 SlowDown: a HEAD's error has no body, so botocore names the status instead of the S3 code
    assert re.search(r"An error occurred \((SlowDown|503)\)", str(err.value))
    assert f"(reached max retries: {MAX_ATTEMPTS - 1})" in str(err.value)
    assert str(err.value).endswith(state)
    assert len(proxy.requests(method, key)) == MAX_ATTEMPTS  # EUJP_S3_MAX_ATTEMPTS in all: retried, boundedly
    after = moto_objects(s3_server, proxy.bucket)
    assert after["eujp/latest.json"] == before["eujp/latest.json"]
    assert json.loads(after["eujp/latest.json"])["run_id"] == "20261124T060000Z-s3bad0"
    assert_run_verifies(after, "20261124T060000Z-s3bad0")  # what latest.json points to is intact
    if state == "latest was not moved":
        assert latest_of(after) == latest_of(before)


def test_an_object_the_service_stored_differently_fails_verification(proxy, s3_server, tmp_path):
    store = S3ObjectStore(proxy.bucket, "eujp")
    publish(tmp_path, store, "20261124T060000Z-s3sum0", rows=3)
    before = latest_of(moto_objects(s3_server, proxy.bucket))
    other = base64.b64encode(hashlib.sha256(b"other bytes").digest()).decode()
    proxy.add(Rule("HEAD", r"/runs/.*/warehouse\.duckdb$", times=None, headers={"x-amz-checksum-sha256": other}))
    with pytest.raises(PublishError, match=rf"upload of s3://{proxy.bucket}/eujp/runs/20261125T060000Z-s3sum1/"
                                           rf"warehouse.duckdb did not verify: .*S3 checksum {re.escape(other)} "
                                           r"\(expected [A-Za-z0-9+/=]{44}\)"):
        publish(tmp_path, store, "20261125T060000Z-s3sum1", rows=5)
    assert latest_of(moto_objects(s3_server, proxy.bucket)) == before


def test_a_latest_alias_the_service_copied_differently_fails_verification_and_the_pointer_stays(
        proxy, s3_server, tmp_path):
    """latest/warehouse.duckdb is a server-side copy (ObjectStore.copy), verified like an upload: a copy whose
    checksum is not the source's fails the publish before latest.json moves."""
    store = S3ObjectStore(proxy.bucket, "eujp")
    publish(tmp_path, store, "20261124T060000Z-s3cp00", rows=3)
    pointer = moto_objects(s3_server, proxy.bucket)["eujp/latest.json"]
    other = base64.b64encode(hashlib.sha256(b"other bytes").digest()).decode()
    proxy.add(Rule("HEAD", r"/latest/warehouse\.duckdb$", times=None, headers={"x-amz-checksum-sha256": other}))
    with pytest.raises(PublishError, match=rf"copy of runs/20261125T060000Z-s3cp01/warehouse.duckdb as "
                                           rf"s3://{proxy.bucket}/eujp/latest/warehouse.duckdb did not verify: .*"
                                           rf"S3 checksum {re.escape(other)} \(expected [A-Za-z0-9+/=]{{44}}\)"):
        publish(tmp_path, store, "20261125T060000Z-s3cp01", rows=5)
    assert moto_objects(s3_server, proxy.bucket)["eujp/latest.json"] == pointer


def test_the_daily_flow_publishes_through_s3_faults_and_fails_cleanly_when_they_persist(
        prefect_server, proxy, s3_server, tmp_path, monkeypatch):
    uri = f"s3://{proxy.bucket}/eujp"
    proxy.add(Rule("PUT", r"/runs/", times=4, status=503), Rule("HEAD", r"/latest", times=2, status=500))
    state = run(tmp_path, run_id="20261125T060000Z-flow01", publish_uri=uri)
    assert state.is_completed(), state.message
    assert [r.hits for r in proxy.rules] == [4, 2]
    objects = moto_objects(s3_server, proxy.bucket)
    assert json.loads(objects["eujp/latest.json"])["run_id"] == "20261125T060000Z-flow01"
    assert_run_verifies(objects, "20261125T060000Z-flow01")

    # Now S3 refuses the pointer for good. (Without the task's own retries, which only wait 5 s and 30 s more.)
    import flows.daily

    monkeypatch.setattr(flows.daily, "publish", flows.daily.publish.with_options(retries=0))
    proxy.add(Rule("PUT", r"/latest\.json$", times=None, status=503))
    state = run(tmp_path, run_id="20261125T070000Z-flow02", snapshot=snapshot_with_new_event(tmp_path),
                publish_uri=uri)
    assert state.is_failed()
    assert "failed at latest.json" in state.message and "still points at the previous run" in state.message
    after = moto_objects(s3_server, proxy.bucket)
    assert after["eujp/latest.json"] == objects["eujp/latest.json"]
    assert_run_verifies(after, "20261125T060000Z-flow01")
    assert read_latest_pointer(S3ObjectStore(proxy.bucket, "eujp"))["run_id"] == "20261125T060000Z-flow01"


# --- a full disk, a read-only folder ---------------------------------------------------------------------

def _namespace_prefix(tmp_path: Path) -> list[str]:
    """`unshare` arguments giving a child a private mount namespace where it may mount a tmpfs, or skip."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare (util-linux) is not installed: cannot make a tmpfs for a full or read-only disk")
    probe = tmp_path / "probe"
    probe.mkdir()
    candidates = [[unshare, "--mount", "--propagation", "private"]] if os.geteuid() == 0 else []
    candidates.append([unshare, "--user", "--map-root-user", "--mount", "--propagation", "private"])
    for prefix in candidates:
        ok = subprocess.run([*prefix, "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {probe}"],
                            check=False, capture_output=True, timeout=30)
        if ok.returncode == 0:
            return prefix
    pytest.skip("this environment allows no private mount namespace (no root, no unprivileged user "
                "namespaces), so no tmpfs can simulate a full or read-only disk")


def test_a_full_disk_and_a_read_only_folder_fail_with_clear_messages(good_run, tmp_path):
    prefix = _namespace_prefix(tmp_path)
    good_wh = good_run / "warehouse.duckdb"
    size_kb = good_wh.stat().st_size // 1024
    folders = {name: tmp_path / name for name in ("fresh_full", "copy_full", "read_only")}
    for folder in folders.values():
        folder.mkdir()

    def flow(name):
        return {"snapshot_dir": str(SNAPSHOT), "warehouse": str(folders[name] / "warehouse.duckdb"),
                "publish_uri": str(tmp_path / f"store-{name}"), "run_id": f"20261125T060000Z-{name.replace('_', '')}"}

    runs = [
        # No warehouse yet, 1 MiB of disk: the staging copy fills it during the load.
        {"name": "fresh_full", "setup": [["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folders["fresh_full"])]],
         "flow": flow("fresh_full"), "inspect": [str(folders["fresh_full"] / "staging")]},
        # A live warehouse and room for a bit more than itself: the run stages it through a hard link (no
        # copy), and the disk fills up while it loads.
        {"name": "copy_full",
         "setup": [["mount", "-t", "tmpfs", "-o", f"size={size_kb + 256}k", "tmpfs", str(folders["copy_full"])],
                   ["cp", str(good_wh), str(folders["copy_full"])]],
         "flow": flow("copy_full"), "inspect": [str(folders["copy_full"] / "staging")],
         "fingerprint": [str(folders["copy_full"] / "warehouse.duckdb")]},
        # A live warehouse on a read-only file system.
        {"name": "read_only",
         "setup": [["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(folders["read_only"])],
                   ["cp", str(good_wh), str(folders["read_only"])],
                   ["mount", "-o", "remount,ro", str(folders["read_only"])]],
         "flow": flow("read_only"), "inspect": [str(folders["read_only"])],
         "hash": [str(folders["read_only"] / "warehouse.duckdb")]},
    ]
    results = driver_results(start_driver(tmp_path, runs, prefix))

    fresh = results["fresh_full"]
    assert fresh["state"] == "FAILED"
    assert f"loading the staging copy {folders['fresh_full']}/staging/20261125T060000Z-freshfull.duckdb: the disk " \
           "is full (no space left on device)" in fresh["message"]
    assert f"the live warehouse {folders['fresh_full']}/warehouse.duckdb is unchanged" in fresh["message"]
    assert fresh["listing"][str(folders["fresh_full"] / "staging")] == []  # the staging copy was discarded

    full = results["copy_full"]
    assert full["state"] == "FAILED"
    assert f"loading the staging copy {folders['copy_full']}/staging/20261125T060000Z-copyfull.duckdb: the disk " \
           "is full (no space left on device)" in full["message"]
    assert f"the live warehouse {folders['copy_full']}/warehouse.duckdb is unchanged" in full["message"]
    assert full["listing"][str(folders["copy_full"] / "staging")] == []  # no link, no log left behind
    # The same data (the file's bytes may differ: DuckDB wrote the run's blocks into free space of the file,
    # which the previous checkpoint, all a reader sees, does not reference)
    assert full["fingerprint_after"] == full["fingerprint_before"]
    assert full["fingerprint_before"][str(folders["copy_full"] / "warehouse.duckdb")]["fact_security_events"][0] > 0

    ro = results["read_only"]  # stopped by the preflight (eujp.preflight), before the lock
    assert ro["state"] == "FAILED"
    assert f"warehouse: {folders['read_only']} is not writable (read-only file system); fix EUJP_WAREHOUSE" \
        in ro["message"]
    assert "Nothing was extracted, written or published" in ro["message"]
    assert ro["listing"][str(folders["read_only"])] == ["warehouse.duckdb"]
    assert ro["hash_after"] == ro["hash_before"]
