"""Publishing to S3 (a moto server): the publish contract of tests/unit/test_publish.py run on an S3 store."""

from __future__ import annotations

import pytest
from unit import test_publish as contract

from eujp.storage import S3ObjectStore


@pytest.fixture
def store(s3_bucket):
    return S3ObjectStore(s3_bucket, "eujp")


# The contract tests of the folder store, collected here again with the S3 `store` above: on S3 the unchanged
# partitions' files are CopyObject requests of the previous run's objects.
test_publish_writes_run_objects_manifest_and_pointer = (
    contract.test_publish_writes_run_objects_manifest_and_pointer)
test_a_mart_published_by_partition_exports_only_the_years_that_changed = (
    contract.test_a_mart_published_by_partition_exports_only_the_years_that_changed)
test_latest_and_the_run_folder_each_check_against_the_manifest_beside_them = (
    contract.test_latest_and_the_run_folder_each_check_against_the_manifest_beside_them)


def test_the_latest_aliases_are_copies_made_by_the_service_not_second_uploads(s3_bucket, tmp_path):
    """latest/warehouse.duckdb and the latest/ copies of the report are CopyObject requests (no body sent):
    every request botocore sends is recorded, and the only PUT carrying bytes to latest/ is latest/manifest.json
    (its own: its paths and checksums those of latest/, `latest_manifest`)."""
    from urllib.parse import unquote, urlsplit

    from eujp.publish import publish_run

    store = S3ObjectStore(s3_bucket, "eujp")
    sent: list[tuple[str, str, str | None, int]] = []  # (method, key, copy source, bytes sent)

    def record(request, **kwargs):
        key = unquote(urlsplit(request.url).path).split(f"/{s3_bucket}/eujp/", 1)[-1]
        sent.append((request.method, key, request.headers.get("x-amz-copy-source"),
                     int(request.headers.get("Content-Length") or 0)))

    store.client.meta.events.register("before-send.s3", record)
    run_id = "20261124T060000Z-copy01"
    report = tmp_path / "report.html"
    report.write_text("<html>the report</html>")
    wh = contract.make_warehouse(tmp_path / "wh.duckdb", 3.5)
    publish_run(store, run_id=run_id, warehouse_path=wh, work_dir=tmp_path / "work",
                manifest_without_checksums={"run_id": run_id, "status": "success", "table_rows": {},
                                            "sources": {}, "validation": {}, "audit": {"ok": True}},
                extra_files={"report.html": report}, latest_files=("report.html",))
    for name in ("warehouse.duckdb", "report.html"):
        assert store.get_bytes(f"latest/{name}") == store.get_bytes(f"runs/{run_id}/{name}")
        copies = [s for s in sent if s[1] == f"latest/{name}" and s[0] == "PUT"]
        assert copies and all(unquote(src or "").lstrip("/") == f"{s3_bucket}/eujp/runs/{run_id}/{name}"
                              for _, _, src, _ in copies)
    uploads = [(key, size) for method, key, src, size in sent if method in ("PUT", "POST") and src is None]
    assert [key for key, _ in uploads if key.startswith("latest/")] == ["latest/manifest.json"]
    assert {key for key, _ in uploads} == {*store.list_keys(f"runs/{run_id}"), "latest/manifest.json",
                                           "latest.json"}
    warehouse_size = (tmp_path / "work" / "warehouse.duckdb").stat().st_size  # the file publish_run uploaded
    assert sum(size for key, size in uploads if key.endswith("warehouse.duckdb")) == warehouse_size  # sent once
