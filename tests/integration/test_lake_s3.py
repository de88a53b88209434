"""The lake over S3 (moto on 127.0.0.1): two runs published through the run's publish step, then EXACTLY the lines
README.md shows a BI user (parsed from it) attach the lake read-only over httpfs and read the latest and
yesterday's snapshot. Only the extensions (loaded from their wheels, as offline readers do) and the S3 secret for
moto are set up beforehand, as docs/lakehouse.md says a reader does."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import boto3
import duckdb
import pytest
from support.bundled_warehouse import copy_warehouse, table_counts

from eujp.bi import extension_path, httpfs_extension_path
from eujp.config import Settings
from eujp.publish import read_latest_pointer
from eujp.run import publish
from eujp.storage import open_store

README = Path(__file__).resolve().parents[2] / "README.md"
CLAIM = "japan_second_largest_partner"


def s3_reader(endpoint: str) -> duckdb.DuckDBPyConnection:
    """An analyst's DuckDB: the extensions (from their wheels here) and an S3 secret for the test server, nothing
    else of this project."""
    conn = duckdb.connect()
    conn.execute("SET autoinstall_known_extensions = false")
    conn.execute(f"LOAD '{httpfs_extension_path()}'")
    conn.execute(f"LOAD '{extension_path('ducklake')}'")
    conn.execute(f"""CREATE SECRET s3_test (TYPE s3, KEY_ID 'testing-key-id', SECRET 'testing-secret',
                     REGION 'us-east-1', ENDPOINT '{endpoint.removeprefix("http://")}', URL_STYLE 'path',
                     USE_SSL false)""")
    return conn


def readme_lake_lines() -> list[str]:
    """The SQL lines of README.md's block that attaches the lake over S3."""
    blocks = re.findall(r"```sql\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL)
    [block] = [b for b in blocks if "ducklake:s3://" in b]
    return [line for line in block.splitlines() if line.strip() and not line.strip().startswith("--")]


def bucket_of(lines: list[str]) -> tuple[str, str]:
    uri = re.search(r"ducklake:(s3://[^']+)/lake\.ducklake", lines[0]).group(1)
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return bucket, prefix


def test_readme_has_three_lines_to_attach_the_lake_and_read_yesterday():
    lines = readme_lake_lines()
    assert len(lines) == 3
    assert lines[0].startswith("ATTACH 'ducklake:s3://") and "READ_ONLY" in lines[0]
    assert "AT (TIMESTAMP => now() - INTERVAL 1 DAY)" in lines[2]


@pytest.fixture
def two_runs(bundled_warehouse, s3_env, tmp_path, monkeypatch) -> dict:
    """Two daily runs published to the README's bucket: yesterday's (its snapshot dated a day back in the
    writer's catalog, as a run of yesterday would be) and today's, where one claim's verdict changed."""
    lines = readme_lake_lines()
    bucket, prefix = bucket_of(lines)
    client = boto3.client("s3", endpoint_url=s3_env)
    try:
        client.create_bucket(Bucket=bucket)
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    monkeypatch.delenv("EUJP_LAKE_CATALOG", raising=False)
    warehouse = tmp_path / "var" / "warehouse.duckdb"
    warehouse.parent.mkdir()
    shutil.copyfile(bundled_warehouse, warehouse)
    uri = f"s3://{bucket}/{prefix}"
    runs = {}
    for run_id in ("20261124T060000Z-lakes3", "20261125T060000Z-lakes3"):
        if runs:  # today: a claim's verdict changed
            with duckdb.connect(str(warehouse)) as conn:
                conn.execute("UPDATE mart_claims SET verdict = 'not enough data' WHERE claim_id = ?", [CLAIM])
        settings = Settings(warehouse_path=warehouse, publish_uri=uri, run_id=run_id)
        publish(settings, [], {}, {"ok": True}, "success")
        runs[run_id] = read_latest_pointer(open_store(uri))
        if len(runs) == 1:  # yesterday's run: its snapshots a day and an hour back, as it published them
            with duckdb.connect(str(warehouse.parent / "lake.ducklake")) as catalog:
                catalog.execute("UPDATE ducklake_snapshot SET snapshot_time = snapshot_time - INTERVAL 25 HOUR")
            open_store(uri).put_file("lake.ducklake", warehouse.parent / "lake.ducklake")
    return {"lines": lines, "uri": uri, "runs": runs, "warehouse": warehouse}


def test_the_readme_lines_attach_the_lake_over_s3_and_read_today_and_yesterday(two_runs, s3_env):
    yesterday, today = two_runs["runs"].values()
    assert today["lake"]["snapshot_id"] == yesterday["lake"]["snapshot_id"] + 1  # one snapshot per run
    assert today["lake"]["catalog_key"] == "lake.ducklake"
    objects = {o["Key"] for o in boto3.client("s3", endpoint_url=s3_env).list_objects_v2(
        Bucket=bucket_of(two_runs["lines"])[0])["Contents"]}
    prefix = bucket_of(two_runs["lines"])[1]
    assert f"{prefix}/lake.ducklake" in objects
    assert any(k.startswith(f"{prefix}/lake/main/mart_claims/") and k.endswith(".parquet") for k in objects)

    conn = s3_reader(s3_env)
    attach, latest, past = two_runs["lines"]
    conn.execute(attach)
    now_rows = dict(conn.execute(latest).fetchall())
    then_rows = dict(conn.execute(past).fetchall())
    assert now_rows[CLAIM] == "not enough data" and then_rows[CLAIM] == "contradicted"
    assert len(now_rows) == len(then_rows) == 8
    # a reader with read-only access cannot change the lake
    with pytest.raises(duckdb.Error, match="read-only|read only"):
        conn.execute("DELETE FROM lake.mart_claims")
    # the version latest.json names reads the same as the latest snapshot
    snapshot = today["lake"]["snapshot_id"]
    assert dict(conn.execute(f"SELECT claim_id, verdict FROM lake.mart_claims AT (VERSION => {snapshot})"
                             ).fetchall()) == now_rows
    manifest = json.loads(open_store(two_runs["uri"]).get_bytes(today["manifest"]))
    assert manifest["lake"]["snapshot_id"] == snapshot


def test_eujp_query_published_reads_the_lake_only_facts_over_s3(bundled_warehouse, s3_bucket, tmp_path,
                                                                monkeypatch):
    """EUJP_SINGLE_FILE=auto with a limit every fact table exceeds: the published single file holds no fact table,
    and `eujp query --published` (eujp.bi.open_warehouse) reads them by name from the lake over S3."""
    from eujp.bi import open_warehouse
    from eujp.sql import quote_ident
    from eujp.tables import ALL_TABLES

    monkeypatch.delenv("EUJP_LAKE_CATALOG", raising=False)
    monkeypatch.delenv("EUJP_SINGLE_FILE", raising=False)
    monkeypatch.setenv("EUJP_SINGLE_FILE_MAX_ROWS", "0")
    warehouse = copy_warehouse(bundled_warehouse, tmp_path)
    facts = [t.name for t in ALL_TABLES if t.is_fact]
    counts = table_counts(warehouse)  # the run's counts (the manifest's table_rows)
    uri = f"s3://{s3_bucket}/eujp"
    publish(Settings(warehouse_path=warehouse, publish_uri=uri, run_id="20261124T060000Z-lakeq1"), [], counts,
            {"ok": True}, "success")
    with open_warehouse(uri) as conn:
        in_file = {r[0] for r in conn.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = "
                                              "'warehouse'").fetchall()}
        assert in_file and not in_file & set(facts)
        for fact in facts:
            assert conn.execute(f"SELECT count(*) FROM {quote_ident(fact)}").fetchone() == (counts[fact],)
        assert conn.execute("SELECT count(*) FROM mart_claims").fetchone() == (8,)


def test_a_lake_mirrored_to_another_bucket_and_prefix_reads_its_own_files(bundled_warehouse, s3_bucket, s3_env,
                                                                          tmp_path, monkeypatch):
    """The catalog records the data path of the bucket the writer published to (s3://bucket/prefix/lake/): a
    mirror under another bucket and prefix read the original's files, or failed once they were gone.
    `eujp.bi.open_warehouse` reads the lake-only tables of the mirror from the mirror's own files (the original's
    deleted), time travel included, and so do the README's lines with the mirror's URI in them."""
    from eujp.bi import open_warehouse
    from eujp.sql import quote_ident
    from eujp.tables import ALL_TABLES

    monkeypatch.delenv("EUJP_LAKE_CATALOG", raising=False)
    monkeypatch.setenv("EUJP_SINGLE_FILE", "small")  # every fact table in the lake only
    warehouse = copy_warehouse(bundled_warehouse, tmp_path)
    counts = table_counts(warehouse)
    uri = f"s3://{s3_bucket}/eujp"
    publish(Settings(warehouse_path=warehouse, publish_uri=uri, run_id="20261124T060000Z-mirror"), [], counts,
            {"ok": True}, "success")
    snapshot = read_latest_pointer(open_store(uri))["lake"]["snapshot_id"]

    client = boto3.client("s3", endpoint_url=s3_env)
    mirror_bucket = f"{s3_bucket}-mirror"
    client.create_bucket(Bucket=mirror_bucket)
    keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=s3_bucket, Prefix="eujp/")
            for o in page.get("Contents", [])]
    lake_keys = [k for k in keys if k.startswith("eujp/lake/")]
    assert lake_keys
    for key in keys:
        client.copy_object(Bucket=mirror_bucket, Key="copy/" + key, CopySource={"Bucket": s3_bucket, "Key": key})
    for key in lake_keys:  # the original's data files are gone: the mirror must read its own
        client.delete_object(Bucket=s3_bucket, Key=key)
    mirror = f"s3://{mirror_bucket}/copy/eujp"

    facts = [t.name for t in ALL_TABLES if t.is_fact]
    with open_warehouse(mirror) as conn:
        for fact in facts:
            assert conn.execute(f"SELECT count(*) FROM {quote_ident(fact)}").fetchone() == (counts[fact],)
            assert conn.execute(f"SELECT count(*) FROM lake.main.{quote_ident(fact)} AT (VERSION => {snapshot})"
                                ).fetchone() == (counts[fact],)

    # the README's lines, the mirror's URI in them: what an analyst of the mirror runs
    attach, latest, _ = (line.replace("s3://" + "/".join(bucket_of(readme_lake_lines())), mirror)
                         for line in readme_lake_lines())
    assert mirror in attach
    conn = s3_reader(s3_env)
    conn.execute(attach)
    assert len(conn.execute(latest).fetchall()) == 8


def test_two_writers_of_one_s3_target_each_commit_on_top_of_the_published_lake(bundled_warehouse, s3_bucket,
                                                                               tmp_path, monkeypatch, caplog):
    """The probe's sequence over S3: h1 publishes day 1, h2 (no catalog of its own) day 2, h1 day 3, maintenance on
    h1, h2 day 4. h2 started a new lake over h1's published one (its history lost), h1 uploaded its old catalog
    back, its maintenance deleted h2's files and h2's next run failed for ever (HTTP GET error). Now every run
    adopts the published catalog: all succeed, each snapshot reads what its run published, the numbering goes on
    (tests/support/two_writers.py)."""
    from support.two_writers import run_two_writers

    monkeypatch.delenv("EUJP_LAKE_CATALOG", raising=False)
    run_two_writers(bundled_warehouse, f"s3://{s3_bucket}/eujp", tmp_path, caplog)


def test_a_writer_whose_catalog_is_the_published_one_does_not_download_it(s3_server, s3_bucket, tmp_path,
                                                                          monkeypatch, caplog):
    """Before each commit the run downloaded the published lake.ducklake to compare its snapshots with the
    writer's, even when the writer had uploaded those very bytes itself on its last run (~0.3 MB a day, growing
    with every snapshot). The object's sha256 metadata (one HEAD, made anyway) now says when they are the same:
    no GET of lake.ducklake reaches the server then (counted by the recording proxy in front of moto); a second
    writer, and a writer left behind by it, still download and adopt it (tests/support/two_writers.py)."""
    from support.s3_fault_proxy import FaultProxy
    from support.two_writers import run_catalog_look_ups

    monkeypatch.delenv("EUJP_LAKE_CATALOG", raising=False)
    with FaultProxy(s3_server) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        run_catalog_look_ups(f"s3://{s3_bucket}/eujp", tmp_path, caplog,
                             lambda: len(proxy.requests("GET", rf"^/{s3_bucket}/eujp/lake\.ducklake$")))
        assert proxy.requests("HEAD", rf"^/{s3_bucket}/eujp/lake\.ducklake$")  # what it asks instead
