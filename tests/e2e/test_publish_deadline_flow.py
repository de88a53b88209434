"""The daily flow against an S3 endpoint that stops answering in the middle of the publish: the run fails at its
publish deadline (EUJP_PUBLISH_TIMEOUT), once, instead of read timeout x attempts x the publish task's three
tries; `latest.json` still names the previous run. The endpoint is moto behind the fault-injecting proxy
(tests/support/s3_fault_proxy.py), which from a point on holds every upload without an answer."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import boto3
import pytest
from support.s3_fault_proxy import FaultProxy, Rule

import eujp.run
from flows.daily import daily_flow

SNAPSHOT = Path(__file__).resolve().parents[2] / "data" / "snapshot"
SLACK = 2.0


@pytest.fixture
def proxy(s3_server, s3_bucket, monkeypatch):
    with FaultProxy(s3_server) as p:
        monkeypatch.setenv("AWS_ENDPOINT_URL", p.url)
        # without the deadline: 30 x 2 s and more per object, so the deadline (below) is what ends the publish
        monkeypatch.setenv("EUJP_S3_MAX_ATTEMPTS", "30")
        monkeypatch.setenv("EUJP_S3_READ_TIMEOUT", "2")
        p.bucket = s3_bucket
        yield p


def run(tmp_path: Path, run_id: str, uri: str, force: bool = False):
    return daily_flow(snapshot_dir=str(SNAPSHOT), warehouse=str(tmp_path / "var" / "warehouse.duckdb"),
                      publish_uri=uri, run_id=run_id, force=force, return_state=True)


def pointer(s3_server: str, bucket: str) -> bytes:
    return boto3.client("s3", endpoint_url=s3_server).get_object(Bucket=bucket, Key="eujp/latest.json")["Body"].read()


def test_the_daily_flow_fails_at_the_publish_deadline_when_s3_stops_answering(prefect_server, proxy, s3_server,
                                                                              tmp_path, monkeypatch):
    tries: list[float] = []
    real = eujp.run.publish

    def timed(*args, **kwargs):
        started = time.monotonic()
        try:
            return real(*args, **kwargs)
        finally:
            tries.append(time.monotonic() - started)

    monkeypatch.setattr(eujp.run, "publish", timed)
    uri = f"s3://{proxy.bucket}/eujp"
    state = run(tmp_path, "20261125T060000Z-dlflw1", uri)
    assert state.is_completed(), state.message
    before = pointer(s3_server, proxy.bucket)
    # The deadline covers the whole publish step (lake commit, report, catalog, Parquet export, uploads): what
    # the same step took just now, uploads included, and 6 s more, so that the stalled run reaches its uploads
    # before the deadline on a slow or busy worker too (a fixed 8 s did not, under CI on a slower worker).
    (first,) = tries
    tries.clear()
    deadline = math.ceil(first) + 6
    monkeypatch.setenv("EUJP_PUBLISH_TIMEOUT", str(deadline))
    proxy.add(Rule("PUT", r"/eujp/(runs/|latest)", times=None, hang=60))  # publish uploads get no answer
    state = run(tmp_path, "20261125T070000Z-dlflw2", uri, force=True)  # --force: rebuilt and published again

    assert state.is_failed()
    assert f"the publish deadline of {deadline} s (EUJP_PUBLISH_TIMEOUT) passed; latest was not moved" in state.message
    assert any(seen.action == "hang" for seen in proxy.requests("PUT", r"/eujp/runs/"))  # it did stall
    assert len(tries) == 1, tries  # the task's retries stop at the deadline: one try, not three
    assert tries[0] < deadline + SLACK
    assert pointer(s3_server, proxy.bucket) == before
    assert json.loads(before)["run_id"] == "20261125T060000Z-dlflw1"
