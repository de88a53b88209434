"""Security without a server: boto3's own credentials when no Secret block is named, SQL never carries input
text, object keys never leave the publish prefix, run ids cannot escape. The flow runs: tests/e2e/test_secrets.py;
Secret blocks and S3 prefixes: tests/integration/test_security.py."""

from __future__ import annotations

import csv
import io
import re
import string
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eujp.marts.build
import eujp.publish
import eujp.run
import eujp.suite_sql
import eujp.warehouse
from eujp.config import Settings
from eujp.landing import RawPayload
from eujp.pipeline import SourceBatch, load_countries, prepare_source, utcnow
from eujp.publish import publish_run
from eujp.sources import security_events
from eujp.sql import quote_ident, sql_string
from eujp.storage import LocalObjectStore, S3ObjectStore, check_key, s3_credentials
from eujp.tables import ALL_TABLES, TABLES

SNAPSHOT = Path(__file__).resolve().parents[2] / "data" / "snapshot"


# --- credentials ------------------------------------------------------------------------------------------

def test_without_a_block_boto3_reads_the_environment(monkeypatch):
    monkeypatch.delenv("EUJP_S3_CREDENTIALS_BLOCK", raising=False)
    assert s3_credentials() == {}


def test_a_credentials_block_holding_an_object_is_read_with_a_warning(monkeypatch, caplog):
    """Prefect's API returns a Secret whose value is an object in clear (only text is hidden): such a block still
    works, and the run says to save it as a JSON string; a JSON string is read without a word."""
    import json

    from prefect.blocks.system import Secret

    creds = {"aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": "probeSecret"}
    monkeypatch.setenv("EUJP_S3_CREDENTIALS_BLOCK", "eujp-s3")
    for value, warned in ((creds, True), (json.dumps(creds), False)):
        monkeypatch.setattr(Secret, "load", classmethod(lambda cls, name, v=value: Secret(value=v)))
        caplog.clear()
        with caplog.at_level("WARNING", logger="eujp"):
            assert s3_credentials() == creds
        assert ("save it as a JSON string" in caplog.text) is warned
        assert "probeSecret" not in caplog.text


@pytest.mark.parametrize(("logged", "shown"), [
    (("'Authorization': b'AWS4-HMAC-SHA256 Credential=AKIAUNKNOWN0000000001/20261205/us-east-1/s3/aws4_request, "
      "SignedHeaders=host', 'X-Amz-Security-Token': b'IQoJunknown//Token+x=='"),
     ("'Authorization': b'AWS4-HMAC-SHA256 Credential=***/20261205/us-east-1/s3/aws4_request, "
      "SignedHeaders=host', 'X-Amz-Security-Token': b'***'")),
    ("PUT\n/b/k\n\nhost:s3\nx-amz-security-token:IQoJunknown//Token+x==\n\nhost;x-amz-security-token",
     "PUT\n/b/k\n\nhost:s3\nx-amz-security-token:***\n\nhost;x-amz-security-token"),
    (('"GET /b/k?X-Amz-Credential=AKIAUNKNOWN0000000001%2F20261205%2Fus-east-1&X-Amz-Security-Token=IQoJ%2Bx%3D'
      '&X-Amz-Signature=ab HTTP/1.1" 200'),
     ('"GET /b/k?X-Amz-Credential=***%2F20261205%2Fus-east-1&X-Amz-Security-Token=***&X-Amz-Signature=ab '
      'HTTP/1.1" 200')),
    ("/b/k?AWSAccessKeyId=AKIAUNKNOWN0000000001&Signature=x", "/b/k?AWSAccessKeyId=***&Signature=x"),
    ("'Authorization': b'AWS AKIAUNKNOWN0000000001:c2lnbmF0dXJl'", "'Authorization': b'AWS ***:c2lnbmF0dXJl'"),
    (("{'aws_access_key_id': 'AKIAUNKNOWN0000000001', 'aws_secret_access_key': 'unknown/Secret+1', "
      "'aws_session_token': 'IQoJunknown'}"),
     "{'aws_access_key_id': '***', 'aws_secret_access_key': '***', 'aws_session_token': '***'}"),
    (("<AccessKeyId>ASIAUNKNOWN</AccessKeyId><SecretAccessKey>unknown/Secret</SecretAccessKey>"
      "<SessionToken>IQoJunknown</SessionToken>"),
     "<AccessKeyId>***</AccessKeyId><SecretAccessKey>***</SecretAccessKey><SessionToken>***</SessionToken>"),
    ('{"AccessKeyId": "ASIAUNKNOWN", "SecretAccessKey": "unknown/Secret", "Token": "IQoJunknown"}',
     '{"AccessKeyId": "***", "SecretAccessKey": "***", "Token": "***"}'),
])
def test_aws_credential_material_is_redacted_in_the_forms_botocore_logs_it(logged, shown):
    """Credentials the redactor was never told of (refreshed ones, a client made elsewhere): what botocore,
    urllib3 and an STS answer write of them is redacted by its form. Through a real log record of a child logger
    (a filter on `botocore` alone would not see `botocore.endpoint`'s records), its arguments formatted."""
    import logging

    from eujp.redaction import SecretRedactor

    record = logging.getLogger("botocore.endpoint").makeRecord("botocore.endpoint", logging.DEBUG, __file__, 1,
                                                               "Sending: %s", (logged,), None)
    assert SecretRedactor().filter(record) and record.getMessage() == f"Sending: {shown}"
    other = logging.getLogger("eujp").makeRecord("eujp", logging.INFO, __file__, 1, "%s", (logged,), None)
    assert SecretRedactor().filter(other) and other.getMessage() == logged  # only AWS's loggers by form


def test_known_credentials_are_redacted_in_every_record_once_an_s3_client_is_made(monkeypatch, caplog):
    """Making an S3 client (eujp.storage.s3_client) installs the redaction for the whole process, and the
    credentials it was made with are replaced in every logger's records, as they are and percent-encoded; a value
    under 8 characters is left to the patterns (it would blank common words)."""
    import logging

    from botocore.config import Config

    from eujp.storage import s3_client

    monkeypatch.delenv("EUJP_S3_CREDENTIALS_BLOCK", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEUJPKNOWNKEY0001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "known/Secret+Value")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "tok")
    s3_client(Config(region_name="us-east-1"))
    with caplog.at_level("INFO", logger="eujp"):
        logging.getLogger("eujp").info("a message quoting %s, %s and %s", "AKIAEUJPKNOWNKEY0001",
                                       "known%2FSecret%2BValue", "tok")
    assert caplog.records[-1].getMessage() == "a message quoting ***, *** and tok"


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


@settings(max_examples=200, deadline=None)
# any text but NUL and lone surrogates (Cs): a str holding one is no Unicode text, UTF-8 cannot encode it
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40))
def test_sql_string_gives_back_any_text_as_one_literal(text):
    """eujp.sql.sql_string: what the statements without parameters (ATTACH, COPY TO, COMMENT ON, a view's
    filter) embed; DuckDB reads it back as exactly the text, quotes and all, and nothing after it runs."""
    assert duckdb.sql(f"SELECT {sql_string(text)} AS v").fetchone() == (text,)


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
    it (values travel as parameters or registered Arrow data); every quoted identifier is a declared name."""
    executed: list[str] = []
    real_connect = eujp.run.connect_staging
    monkeypatch.setattr(eujp.run, "connect_staging",
                        lambda *a, **k: RecordingConnection(real_connect(*a, **k), executed))
    quoted: list[str] = []
    real_quote = eujp.warehouse.quote_ident

    def recording_quote(name):
        quoted.append(name)
        return real_quote(name)

    for module in (eujp.warehouse, eujp.suite_sql, eujp.publish, eujp.marts.build):
        monkeypatch.setattr(module, "quote_ident", recording_quote)

    source = security_events.SOURCE
    settings = Settings(warehouse_path=tmp_path / "var" / "warehouse.duckdb", publish_uri=str(tmp_path / "objects"),
                        run_id="20261125T060000Z-sql001")
    countries = load_countries(settings.run_date)
    batch = prepare_source(source, [RawPayload(source.name, "security_events.csv", hostile_events_csv(),
                                               "file:///x")],
                           countries, SourceBatch(source=source.name, table=source.table.name, started_at=utcnow()))
    assert batch.status == "prepared", batch.error
    eujp.run.load_audit_promote(settings, [batch], countries)

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
        from eujp.tables import ensure_schema
        from eujp.warehouse import connect

        with connect(path) as conn:
            ensure_schema(conn)
    return path
