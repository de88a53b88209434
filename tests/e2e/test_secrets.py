"""Security of the flow runs: credentials stay secret, published objects stay private.

The flow runs publish to S3 (moto on 127.0.0.1, behind tests/support/s3_fault_proxy.py used here as a recorder) with
known fake credentials, once from the environment and once from a Prefect Secret block, and a second run fails
so the alert webhook (a sink on 127.0.0.1) is called. Then every place a secret could leak is searched: every
log record (any logger, any level, DEBUG included: the access key id and the secret key), stdout/stderr, the
Prefect API's logs, artifacts and flow runs, every published and landed object (raw bytes and, for DuckDB and
Parquet files, their decoded contents), every local file the runs wrote, and the alert sent.

The rest of the security tests: tests/unit/test_security.py (SQL, object keys, run ids) and
tests/integration/test_security.py (Secret blocks, publish prefixes).
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import boto3
import duckdb
import polars as pl
import pytest
from support.failing_suite import unstamp_snapshot
from support.s3_fault_proxy import FaultProxy

from flows.daily import daily_flow

SNAPSHOT = Path(__file__).resolve().parents[2] / "data" / "snapshot"
KEY_ID = "AKIAEUJPFAKEKEY7Q3X1"
SECRET = "eujpFAKEsecret/Zq8w9e7r6t5y4u3i2o1pAA"
WEBHOOK_TOKEN = "T0FAKE/B0FAKE/eujpFAKEhookTOKEN42"
BLOCK_KEY_ID = "AKIAEUJPBLOCKKEY9W2E"
BLOCK_SECRET = "eujpBLOCKsecret+Xc5v6b7n8m9QQ"
PREFECT_NAMES = ("prefect", "httpx", "httpcore", "botocore", "boto3", "urllib3", "s3transfer", "eujp")


# --- where secrets could end up ------------------------------------------------------------------------

def decoded(path: Path) -> str:
    """The readable contents of a DuckDB or Parquet file (strings may be compressed in the raw bytes)."""
    if path.suffix == ".parquet":
        return pl.read_parquet(path).write_csv()
    if path.suffix == ".duckdb":
        out = []
        with duckdb.connect(str(path), read_only=True) as conn:
            for (name,) in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall():
                out.append(conn.execute(f'SELECT * FROM "{name}"').pl().write_csv())
            out += [str(r) for r in conn.execute("SELECT comment FROM duckdb_columns()").fetchall()]
        return "\n".join(out)
    return ""


def file_texts(root: Path) -> dict[str, str]:
    texts = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.endswith((".lock", ".wal"))):
        texts[str(path)] = path.read_bytes().decode("latin-1") + "\n" + decoded(path)
    return texts


def bucket_texts(endpoint: str, bucket: str, tmp_path: Path) -> dict[str, str]:
    client = boto3.client("s3", endpoint_url=endpoint)
    texts = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            data = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            local = tmp_path / "downloaded" / obj["Key"]
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(data)
            texts[f"s3://{bucket}/{obj['Key']}"] = data.decode("latin-1") + "\n" + decoded(local)
    return texts


def prefect_texts() -> dict[str, str]:
    """Everything the Prefect API keeps about the runs: logs, artifacts, flow runs (parameters, states)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        logs = client.read_logs(limit=200)
        offset = 200
        while len(logs) == offset and offset < 20_000:  # bounded paging
            logs += client.read_logs(limit=200, offset=offset)
            offset += 200
        artifacts = client.read_artifacts()
        runs = client.read_flow_runs()
        states = [s for r in runs for s in client.read_flow_run_states(r.id)]
    return {
        "prefect logs": "\n".join(log.message for log in logs),
        "prefect artifacts": "\n".join(a.model_dump_json() for a in artifacts),
        "prefect flow runs": "\n".join(r.model_dump_json() for r in runs),
        "prefect states": "\n".join(s.model_dump_json() for s in states),
    }


def leaks(texts: dict[str, str], *needles: str) -> list[str]:
    return [f"{needle!r} in {place}" for place, text in texts.items() for needle in needles if needle in text]


# --- fixtures ------------------------------------------------------------------------------------------

class Sink(BaseHTTPRequestHandler):
    bodies: ClassVar[list[str]] = []

    def do_POST(self):
        Sink.bodies.append(self.path + "\n" + self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode())
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook_sink():
    Sink.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/services/{WEBHOOK_TOKEN}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def recorder(s3_server, s3_bucket, monkeypatch):
    """boto3 talks to moto through the proxy, which records every request (headers included)."""
    with FaultProxy(s3_server) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        proxy.bucket = s3_bucket
        yield proxy


def bad_snapshot(tmp_path: Path) -> Path:
    """The bundled snapshot with Comext files no suite accepts (without their release stamps, a batch-wide
    critical rule: tests/support/failing_suite.py): that run fails."""
    snap = tmp_path / "bad_snapshot"
    shutil.copytree(SNAPSHOT, snap)
    unstamp_snapshot(snap)
    return snap


def run(tmp_path: Path, run_id: str, uri: str, snapshot: Path = SNAPSHOT):
    return daily_flow(snapshot_dir=str(snapshot), warehouse=str(tmp_path / "var" / "warehouse.duckdb"),
                      publish_uri=uri, run_id=run_id, return_state=True)


def assert_private(recorder: FaultProxy, endpoint: str) -> None:
    """No request asked for an ACL, and no object grants anything to anyone but its owner."""
    writes = recorder.requests("PUT") + recorder.requests("POST")
    assert writes
    for seen in writes:
        granted = [h for h in seen.headers if h.lower() == "x-amz-acl" or h.lower().startswith("x-amz-grant")]
        assert not granted, (seen.path, granted)
    client = boto3.client("s3", endpoint_url=endpoint)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=recorder.bucket)["Contents"]]
    assert any(k.endswith("latest.json") for k in keys) and any("/raw/" in f"/{k}" for k in keys)
    checked = 0
    for key in keys:
        if "-" in client.head_object(Bucket=recorder.bucket, Key=key)["ETag"]:
            continue  # a multipart upload: moto 5 cannot answer GetObjectAcl for those (its ACL is None)
        for grant in client.get_object_acl(Bucket=recorder.bucket, Key=key)["Grants"]:
            assert grant["Grantee"]["Type"] == "CanonicalUser" and "URI" not in grant["Grantee"], (key, grant)
        checked += 1
    assert checked >= len(keys) - 4, (checked, len(keys))  # only the warehouse copies are multipart


# --- the tests -----------------------------------------------------------------------------------------

def test_credentials_from_the_environment_never_leak(prefect_server, recorder, s3_server, webhook_sink, tmp_path,
                                                      monkeypatch, caplog, capfd):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("EUJP_ALERT_WEBHOOK_URL", webhook_sink)
    caplog.set_level(logging.DEBUG)
    for name in PREFECT_NAMES:
        caplog.set_level(logging.DEBUG, logger=name)
    uri = f"s3://{recorder.bucket}/eujp"

    assert run(tmp_path, "20261125T060000Z-sec001", uri).is_completed()
    failed = run(tmp_path, "20261125T070000Z-sec002", uri, bad_snapshot(tmp_path))
    assert failed.is_failed()

    # Positive controls: the credentials were in use, the alert was sent, the captures are not empty.
    unsigned = [(s.method, s.path, s.headers.get("Authorization")) for s in recorder.seen
                if f"Credential={KEY_ID}/" not in s.headers.get("Authorization", "")]
    assert recorder.seen and not unsigned, unsigned[:3]
    assert Sink.bodies and "sec002" in Sink.bodies[0]
    debug_text = "\n".join(r.getMessage() for r in caplog.records)
    assert "Credential=***/" in debug_text  # botocore's DEBUG log of the signed request, its key id redacted

    everything = {
        "stdout": (out := capfd.readouterr()).out, "stderr": out.err,
        "alert body": "\n".join(body.split("\n", 1)[1] for body in Sink.bodies),
        **prefect_texts(), **file_texts(tmp_path / "var"), **bucket_texts(s3_server, recorder.bucket, tmp_path),
    }
    for record in caplog.records:
        everything[f"log {record.name}:{record.levelname}:{id(record)}"] = record.getMessage() + (record.exc_text or "")
    assert len(everything) > 50
    assert leaks(everything, KEY_ID, SECRET, WEBHOOK_TOKEN) == []
    assert_private(recorder, s3_server)


def test_credentials_from_a_prefect_secret_block_are_used_and_never_leak(prefect_server, recorder, s3_server,
                                                                         tmp_path, monkeypatch, caplog, capfd):
    from prefect.blocks.system import Secret

    # as docs/reliability.md says to save it: a JSON string, which Prefect's API hides (an object it returns)
    Secret(value=json.dumps({"aws_access_key_id": BLOCK_KEY_ID, "aws_secret_access_key": BLOCK_SECRET})).save(
        "eujp-test-s3", overwrite=True)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("EUJP_S3_CREDENTIALS_BLOCK", "eujp-test-s3")
    caplog.set_level(logging.DEBUG)

    state = run(tmp_path, "20261125T060000Z-blk001", f"s3://{recorder.bucket}/eujp")
    assert state.is_completed(), state.message
    assert recorder.seen
    assert all(f"Credential={BLOCK_KEY_ID}/" in s.headers.get("Authorization", "") for s in recorder.seen)
    everything = {
        "stdout+stderr": "".join(capfd.readouterr()),
        "logs": "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records),
        **prefect_texts(), **file_texts(tmp_path / "var"), **bucket_texts(s3_server, recorder.bucket, tmp_path),
    }
    assert leaks(everything, BLOCK_SECRET) == []
    assert_private(recorder, s3_server)
    # a reader with the block's credentials only: `eujp query --published` reads the published run (it built
    # DuckDB's S3 secret from the AWS_* variables alone, and said the warehouse did not exist)
    from typer.testing import CliRunner

    from flows.cli import app

    monkeypatch.setenv("EUJP_PUBLISH_URI", f"s3://{recorder.bucket}/eujp")
    queried = CliRunner().invoke(app, ["query", "SELECT count(*) AS n FROM mart_claims", "--published",
                                       "--format", "csv"])
    assert queried.exit_code == 0, queried.output
    assert queried.stdout.splitlines()[1] == "8" and BLOCK_SECRET not in queried.output
