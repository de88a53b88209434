"""Security: credentials stay secret, published objects stay private, SQL never carries input text, object
keys never leave the publish prefix.

The flow runs publish to S3 (moto on 127.0.0.1, behind tests/s3_fault_proxy.py used here as a recorder) with
known fake credentials, once from the environment and once from a Prefect Secret block, and a second run fails
so the alert webhook (a sink on 127.0.0.1) is called. Then every place a secret could leak is searched: every
log record (any logger, any level: the secret key; INFO and above: the access key id), stdout/stderr, the
Prefect API's logs, artifacts and flow runs, every published and landed object (raw bytes and, for DuckDB and
Parquet files, their decoded contents), every local file the runs wrote, and the alert sent.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import shutil
import string
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import boto3
import duckdb
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from s3_fault_proxy import FaultProxy

import eujp.audit
import eujp.marts
import eujp.publish
import eujp.suite_sql
import eujp.warehouse
import flows.daily
from eujp.config import Settings
from eujp.errors import PublishError
from eujp.landing import RawPayload
from eujp.pipeline import SourceBatch, load_countries, prepare_source, utcnow
from eujp.publish import publish_run
from eujp.schema import ALL_TABLES, TABLES
from eujp.sources import SOURCES_BY_NAME
from eujp.storage import LocalObjectStore, S3ObjectStore, check_key, open_store, s3_credentials
from eujp.warehouse import quote_ident
from flows.daily import daily_flow

SNAPSHOT = Path(__file__).resolve().parents[1] / "data" / "snapshot"
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
    """The bundled snapshot plus an event no suite accepts (a 19th-century date): that run fails."""
    snap = tmp_path / "bad_snapshot"
    shutil.copytree(SNAPSHOT, snap)
    with open(snap / "security_events.csv", "a", encoding="utf-8") as f:
        f.write('1899-01-01,day,dialogue,JPN;EU,Anachronism,"x",https://example.org/x,"t"\n')
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

@pytest.mark.slow
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
    assert KEY_ID in debug_text  # botocore's DEBUG log of the signed request: the search does find things

    everything = {
        "stdout": (out := capfd.readouterr()).out, "stderr": out.err,
        "alert body": "\n".join(body.split("\n", 1)[1] for body in Sink.bodies),
        **prefect_texts(), **file_texts(tmp_path / "var"), **bucket_texts(s3_server, recorder.bucket, tmp_path),
    }
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "")
        everything[f"log {record.name}:{record.levelname}:{id(record)}"] = text.replace(KEY_ID, "") \
            if record.levelno < logging.INFO else text  # DEBUG may show the key id (not the secret)
    assert len(everything) > 50
    assert leaks(everything, KEY_ID, SECRET, WEBHOOK_TOKEN) == []
    assert_private(recorder, s3_server)


@pytest.mark.slow
def test_credentials_from_a_prefect_secret_block_are_used_and_never_leak(prefect_server, recorder, s3_server,
                                                                         tmp_path, monkeypatch, caplog, capfd):
    from prefect.blocks.system import Secret

    Secret(value={"aws_access_key_id": BLOCK_KEY_ID, "aws_secret_access_key": BLOCK_SECRET}).save(
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


@pytest.mark.parametrize(("value", "message"), [
    ({"aws_access_key_id": BLOCK_KEY_ID}, r"lacks \['aws_secret_access_key'\]"),
    (f"not json {BLOCK_SECRET}", r"must hold a JSON object with aws_access_key_id, aws_secret_access_key"),
])
def test_a_bad_secret_block_is_named_without_its_value(prefect_server, monkeypatch, value, message):
    from prefect.blocks.system import Secret

    Secret(value=value).save("eujp-test-bad", overwrite=True)
    monkeypatch.setenv("EUJP_S3_CREDENTIALS_BLOCK", "eujp-test-bad")
    with pytest.raises(PublishError, match=r"Prefect Secret block 'eujp-test-bad' \(EUJP_S3_CREDENTIALS_BLOCK\) "
                                           + message) as err:
        s3_credentials()
    assert BLOCK_SECRET not in str(err.value) and BLOCK_KEY_ID not in str(err.value)


def test_a_missing_secret_block_is_named(prefect_server, monkeypatch):
    monkeypatch.setenv("EUJP_S3_CREDENTIALS_BLOCK", "eujp-no-such-block")
    with pytest.raises(PublishError, match=r"cannot load the S3 credentials from the Prefect Secret block "
                                           r"'eujp-no-such-block' \(EUJP_S3_CREDENTIALS_BLOCK\): ValueError"):
        s3_credentials()


def test_without_a_block_boto3_reads_the_environment(monkeypatch):
    monkeypatch.delenv("EUJP_S3_CREDENTIALS_BLOCK", raising=False)
    assert s3_credentials() == {}


# --- SQL built from inputs --------------------------------------------------------------------------------

@given(st.text(max_size=20))
def test_quote_ident_accepts_only_plain_names_and_quotes_them(name):
    plain = bool(name) and name.replace("_", "").isalnum()
    if plain:
        assert quote_ident(name) == f'"{name}"' and '"' not in name
    else:
        with pytest.raises(ValueError, match="refusing identifier"):
            quote_ident(name)


@pytest.mark.parametrize("name", ['x"; DROP TABLE etl_runs; --', "a b", "a.b", "a-b", "", "t'", "(SELECT 1)"])
def test_quote_ident_refuses_what_could_break_out(name):
    with pytest.raises(ValueError, match="refusing identifier"):
        quote_ident(name)


HOSTILE = {
    "title": "Robert'); DROP TABLE fact_arms_transfers; --",
    "description": 'x"; DELETE FROM etl_runs; -- and \' OR 1=1 --',
    "source_title": "'||(SELECT string_agg(table_name, ',') FROM duckdb_tables())||'",
}


class RecordingConnection:
    """Wraps a DuckDB connection and records every SQL text executed through it."""

    def __init__(self, conn, log: list[str]):
        self._conn, self._log = conn, log

    def execute(self, sql, *args, **kwargs):
        self._log.append(sql)
        return self._conn.execute(sql, *args, **kwargs)

    def sql(self, sql, *args, **kwargs):
        self._log.append(sql)
        return self._conn.sql(sql, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._conn, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._conn.__exit__(*exc)


def hostile_events_csv() -> bytes:
    """The bundled events file plus one event whose texts are SQL injection attempts."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(
        ["2024-05-01", "day", "dialogue", "JPN;EU", HOSTILE["title"], HOSTILE["description"],
         "https://example.org/x", HOSTILE["source_title"]])
    return ((SNAPSHOT / "security_events.csv").read_text(encoding="utf-8") + out.getvalue()).encode("utf-8")


def test_input_text_reaches_the_warehouse_as_data_never_as_sql(tmp_path, monkeypatch):
    """Hostile text in a source file is loaded verbatim; no SQL statement of the load, audit and marts contains
    it (values travel as parameters or registered Arrow data); every identifier quoted comes from eujp.schema."""
    executed: list[str] = []
    real_connect = flows.daily.connect
    monkeypatch.setattr(flows.daily, "connect", lambda *a, **k: RecordingConnection(real_connect(*a, **k), executed))
    quoted: list[str] = []
    real_quote = eujp.warehouse.quote_ident

    def recording_quote(name):
        quoted.append(name)
        return real_quote(name)

    for module in (eujp.warehouse, eujp.suite_sql, eujp.publish, eujp.marts):
        monkeypatch.setattr(module, "quote_ident", recording_quote)

    source = SOURCES_BY_NAME["security_events"]
    settings = Settings(warehouse_path=tmp_path / "var" / "warehouse.duckdb", publish_uri=str(tmp_path / "objects"),
                        run_id="20261125T060000Z-sql001")
    countries = load_countries(settings.run_date)
    batch = prepare_source(source, [RawPayload("security_events", "security_events.csv", hostile_events_csv(),
                                               "file:///x")],
                           countries, SourceBatch(source=source.name, table=source.table.name, started_at=utcnow()))
    assert batch.status == "prepared", batch.error
    flows.daily.load_audit_promote.fn(settings, [batch], countries)

    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        loaded = conn.execute("SELECT title, description, source_title FROM fact_security_events WHERE title = ?",
                              [HOSTILE["title"]]).fetchall()
        tables = {r[0] for r in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert loaded == [(HOSTILE["title"], HOSTILE["description"], HOSTILE["source_title"])]
    assert {t.name for t in ALL_TABLES} <= tables  # nothing dropped
    assert len(executed) > 20
    for value in HOSTILE.values():
        assert not [sql for sql in executed if value in sql]
    assert quoted
    vetted = {t.name for t in ALL_TABLES} | {c for t in ALL_TABLES for c in t.all_columns}
    vetted |= {f"{p}_{c}" for t in TABLES.values() for c in t.revision_columns for p in ("old", "new")}
    vetted |= {"_fact_batch"}
    assert set(quoted) <= vetted, set(quoted) - vetted


# --- object keys ----------------------------------------------------------------------------------------

key_text = st.text(alphabet=string.ascii_letters + string.digits + "./\\_-=+@ %:~", max_size=30)


@given(key_text)
def test_no_key_escapes_the_store_prefix(key):
    try:
        check_key(key)
    except ValueError:
        return
    segments = key.split("/")
    assert ".." not in segments and "." not in segments and "" not in segments and not key.startswith("/")
    root = Path("/srv/objects")
    assert (root / key).resolve().is_relative_to(root)
    assert S3ObjectStore("bucket", "pub/eujp", client=object())._key(key).startswith("pub/eujp/")


def test_a_local_store_refuses_keys_that_escape_it(tmp_path):
    store = LocalObjectStore(tmp_path / "objects")
    (tmp_path / "outside.txt").write_text("x")
    for key in ("../outside.txt", "a/../../outside.txt", "/etc/passwd"):
        with pytest.raises(ValueError, match="unsafe object key"):
            store.get_bytes(key)


@pytest.mark.parametrize("uri", ["s3://bucket/../other", "s3://bucket/a//b", "s3://bucket/./x"])
def test_a_publish_prefix_that_could_escape_is_refused(uri, s3_env):
    with pytest.raises(ValueError, match="unsafe object key"):
        open_store(uri)


@pytest.mark.parametrize("run_id", ["../../etc", "a/b", "x'; DROP TABLE t; --", ".hidden", "a" * 101])
def test_a_run_id_that_could_escape_is_refused(run_id, tmp_path):
    with pytest.raises(ValueError, match=re.escape(f"run id {run_id!r} is not allowed")):
        Settings(run_id=run_id)
    with pytest.raises(ValueError, match=re.escape(f"run id {run_id!r} is not allowed")):
        publish_run(LocalObjectStore(tmp_path / "objects"), run_id=run_id, warehouse_path=_tiny_warehouse(tmp_path),
                    manifest_without_checksums={"run_id": run_id, "status": "success", "table_rows": {},
                                                "sources": {}, "validation": {}, "audit": {}},
                    work_dir=tmp_path / "work")
    assert not (tmp_path / "objects").exists() or not any((tmp_path / "objects").rglob("*.*"))


def _tiny_warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.duckdb"
    if not path.exists():
        from eujp.warehouse import connect, ensure_schema

        with connect(path) as conn:
            ensure_schema(conn)
    return path
