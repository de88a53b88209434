"""BI access without a download step: the warehouse published to S3 (moto on 127.0.0.1) is ATTACHed READ_ONLY
through DuckDB's httpfs, loaded from the duckdb-extension-httpfs wheel (no extension download), and its
Parquet files are read in place; `eujp query --published` does the same from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import duckdb
import pytest
from typer.testing import CliRunner

from eujp.bi import httpfs_extension_path, open_warehouse, s3_secret_sql
from eujp.publish import publish_run
from eujp.storage import open_store
from eujp.tables import ALL_TABLES

RUN_ID = "20261124T060000Z-bi0001"


@pytest.fixture
def published(bundled_warehouse, s3_bucket, s3_env, tmp_path) -> str:
    """The bundled warehouse published to s3://{bucket}/eujp with a report; returns the publish URI."""
    report = tmp_path / "report.html"
    report.write_text("<!DOCTYPE html><html><body>report</body></html>")
    uri = f"s3://{s3_bucket}/eujp"
    publish_run(open_store(uri), run_id=RUN_ID, warehouse_path=bundled_warehouse,
                manifest_without_checksums={"run_id": RUN_ID, "status": "success", "table_rows": {},
                                            "sources": {}, "validation": {}, "audit": {}},
                work_dir=tmp_path / "work", extra_files={"report.html": report}, latest_files=("report.html",))
    return uri


def plain_duckdb(endpoint: str) -> duckdb.DuckDBPyConnection:
    """What the README shows a BI user: httpfs loaded by path, an S3 secret, nothing else."""
    conn = duckdb.connect()
    conn.execute("SET autoinstall_known_extensions = false")
    conn.execute(f"LOAD '{httpfs_extension_path()}'")
    conn.execute(f"""CREATE SECRET s3_test (TYPE s3, KEY_ID 'testing-key-id', SECRET 'testing-secret',
                     REGION 'us-east-1', ENDPOINT '{endpoint.removeprefix("http://")}', URL_STYLE 'path',
                     USE_SSL false)""")
    return conn


def test_attach_published_warehouse_over_s3_and_query_marts(published, s3_env):
    conn = plain_duckdb(s3_env)
    assert conn.execute("SELECT loaded FROM duckdb_extensions() WHERE extension_name = 'httpfs'").fetchone() == (True,)
    conn.execute(f"ATTACH '{published}/latest/warehouse.duckdb' AS eujp (READ_ONLY)")
    assert conn.execute("SELECT verdict FROM eujp.mart_claims WHERE claim_id = 'japan_second_largest_partner'"
                        ).fetchall() == [("contradicted",)]
    assert conn.execute("SELECT exports_mio_eur, imports_mio_eur, balance_mio_eur FROM eujp.mart_trade_annual "
                        "WHERE reporter = 'EU28' AND trade_type = 'goods' AND period_year = 2016").fetchall() \
        == [(58000.0, 66000.0, -8000.0)]
    # the column descriptions travel with the file
    assert conn.execute("SELECT comment FROM duckdb_columns() WHERE database_name = 'eujp' AND table_name = "
                        "'mart_claims' AND column_name = 'verdict'").fetchone()[0].startswith("supported:")
    with pytest.raises(duckdb.Error, match="read-only|read only"):
        conn.execute("DELETE FROM eujp.mart_claims")


def test_open_warehouse_from_the_publish_uri(published, s3_env):
    conn = open_warehouse(published)  # s3://bucket/eujp -> the run latest.json names, credentials from AWS_*
    tables = {r[0] for r in conn.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = "
                                         "'warehouse'").fetchall()}
    assert tables == {t.name for t in ALL_TABLES}
    assert conn.execute("SELECT count(*) FROM mart_claims").fetchone() == (8,)
    # a given run's file, too
    run_conn = open_warehouse(f"{published}/runs/{RUN_ID}/warehouse.duckdb")
    assert run_conn.execute("SELECT count(*) FROM mart_partnership_timeline").fetchone() == (35,)


def test_a_connection_of_the_publish_uri_reads_its_run_while_the_next_run_publishes(published, s3_env, s3_bucket,
                                                                                   bundled_warehouse, tmp_path):
    """open_warehouse(publish URI) attaches the run latest.json points to, whose file never changes: the next
    publish replaces latest/warehouse.duckdb (S3 CopyObject), which DuckDB reads by ranges, and a connection
    left on that alias read the new run's bytes at the old offsets and failed (UnicodeDecodeError on most
    tables). The connection keeps reading its run; a new one gets the next run."""
    conn = open_warehouse(published)
    assert conn.execute("SELECT path FROM duckdb_databases() WHERE database_name = 'warehouse'").fetchone()[0] \
        == f"{published}/runs/{RUN_ID}/warehouse.duckdb"
    assert conn.execute("SELECT count(*) FROM mart_claims").fetchone() == (8,)
    # the next run: other content (a table dropped, others grown), published under the same URI
    other = tmp_path / "next.duckdb"
    other.write_bytes(bundled_warehouse.read_bytes())
    with duckdb.connect(str(other)) as c:
        c.execute("INSERT INTO dim_date SELECT * REPLACE (date_day + INTERVAL 100 YEAR AS date_day) FROM dim_date")
        c.execute("DELETE FROM mart_claims WHERE claim_number > 2")
        c.execute("CHECKPOINT")
    nxt = "20261125T060000Z-bi0002"
    publish_run(open_store(published), run_id=nxt, warehouse_path=other,
                manifest_without_checksums={"run_id": nxt, "status": "success", "table_rows": {}, "sources": {},
                                            "validation": {}, "audit": {}}, work_dir=tmp_path / "work2")
    for table in ("mart_claims", "mart_partnership_timeline", "dim_country", "fact_security_events", "dim_date"):
        conn.execute(f"SELECT * FROM {table}").fetchall()  # every table still reads, from its own run
    assert conn.execute("SELECT count(*) FROM mart_claims").fetchone() == (8,)
    assert open_warehouse(published).execute("SELECT count(*) FROM mart_claims").fetchone() == (2,)


def test_read_parquet_in_place_after_resolving_the_pointer(published, s3_env, bundled_warehouse):
    conn = plain_duckdb(s3_env)
    prefix = conn.execute(f"SELECT prefix FROM read_json('{published}/latest.json')").fetchone()[0]
    assert prefix == f"runs/{RUN_ID}"
    rows = conn.execute(f"SELECT * FROM read_parquet('{published}/{prefix}/parquet/mart_trade_annual.parquet') "
                        "ORDER BY ALL").fetchall()
    with duckdb.connect(str(bundled_warehouse), read_only=True) as local:
        assert rows == local.execute("SELECT * FROM mart_trade_annual ORDER BY ALL").fetchall()
    # every table, marts included, has its Parquet file
    keys = {o["Key"] for o in boto3.client("s3", endpoint_url=s3_env).list_objects_v2(
        Bucket=published.split("/")[2], Prefix=f"eujp/{prefix}/parquet/")["Contents"]}
    assert keys == {f"eujp/{prefix}/parquet/{t.name}.parquet" for t in ALL_TABLES}


def test_report_is_published_beside_the_warehouse_and_under_latest(published, s3_env):
    client = boto3.client("s3", endpoint_url=s3_env)
    bucket = published.split("/")[2]
    run_copy = client.get_object(Bucket=bucket, Key=f"eujp/runs/{RUN_ID}/report.html")
    latest = client.get_object(Bucket=bucket, Key="eujp/latest/report.html")
    assert run_copy["ContentType"] == "text/html"
    assert run_copy["Body"].read() == latest["Body"].read()
    manifest = json.loads(client.get_object(Bucket=bucket, Key=f"eujp/runs/{RUN_ID}/manifest.json")["Body"].read())
    assert "report.html" in manifest["files"]


def test_cli_query_published_over_s3(published, s3_env, monkeypatch):
    from flows.cli import app

    monkeypatch.setenv("EUJP_PUBLISH_URI", published)
    result = CliRunner().invoke(app, ["query", "--published", ("SELECT claim_number, verdict FROM mart_claims "
                                      "WHERE claim_number = 3")])
    assert result.exit_code == 0, result.output
    assert "not enough data" in result.output
    assert "testing-secret" not in result.output and "testing-key-id" not in result.output
    result = CliRunner().invoke(app, ["query", "--warehouse", f"{published}/runs/{RUN_ID}/warehouse.duckdb",
                                      "SELECT count(*) AS n FROM mart_trade_annual"])
    assert result.exit_code == 0 and "38" in result.output, result.output


def test_cli_query_reports_a_missing_published_warehouse(s3_bucket, s3_env):
    from flows.cli import app

    result = CliRunner().invoke(app, ["query", "--warehouse", f"s3://{s3_bucket}/nothing-here", "SELECT 1"])
    assert result.exit_code == 2
    assert "cannot attach" in result.output and "testing-secret" not in result.output


def test_s3_secret_from_the_environment():
    sql = s3_secret_sql({"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "it's", "AWS_REGION": "eu-west-1",
                         "AWS_ENDPOINT_URL": "https://minio.example:9000"})
    assert sql == ("CREATE OR REPLACE SECRET eujp_s3 (TYPE s3, KEY_ID 'id', SECRET 'it''s', REGION 'eu-west-1', "
                   "ENDPOINT 'minio.example:9000', URL_STYLE 'path', USE_SSL true)")
    assert s3_secret_sql({}) is None  # no credentials: public buckets only


def test_httpfs_ships_with_the_wheel():
    path = httpfs_extension_path()
    assert isinstance(path, Path) and path.name == "httpfs.duckdb_extension" and duckdb.__version__ in str(path)
