"""Publishing: run objects verified, `latest` moved last, retention, failures leave `latest` intact. Publishing
to S3 (a moto server): tests/integration/test_publish_s3.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import duckdb
import polars as pl
import pytest

from eujp.errors import PublishError
from eujp.publish import LATEST_POINTER, apply_retention, publish_run, read_latest_pointer
from eujp.sources import eurostat_goods
from eujp.storage import LocalObjectStore, sha256_file
from eujp.tables import ensure_schema
from eujp.warehouse import connect, upsert_fact

# The source these tests load, by its module (a source's name is written in its own folder only).
GOODS, FACT_GOODS_TRADE = eurostat_goods.SOURCE.name, eurostat_goods.TABLE


def make_warehouse(path, value):
    with connect(path) as c:
        ensure_schema(c)
        frame = pl.DataFrame(
            [{"reporter": "EU28", "partner": "JP", "flow": "export", "period_year": 2016,
              "value_mio_eur": value, "obs_status": None, "source": GOODS, "source_version": "v"}],
            schema=FACT_GOODS_TRADE.business_columns,
        )
        upsert_fact(c, FACT_GOODS_TRADE, frame, run_id="r", loaded_at=datetime.now(UTC), source=GOODS)
    return path


def publish(store, tmp_path, run_id, value=58000.0, keep_runs=7):
    wh = make_warehouse(tmp_path / f"{run_id}.duckdb", value)
    return publish_run(
        store, run_id=run_id, warehouse_path=wh, work_dir=tmp_path / f"work-{run_id}", keep_runs=keep_runs,
        manifest_without_checksums={"run_id": run_id, "status": "success", "table_rows": {"fact_goods_trade": 1},
                                    "sources": {}, "validation": {}, "audit": {"ok": True}},
    )


@pytest.fixture
def store(tmp_path):
    """The store the contract tests run on (tests/integration/test_publish_s3.py runs them on S3)."""
    return LocalObjectStore(tmp_path / "objects")


def test_publish_writes_run_objects_manifest_and_pointer(store, tmp_path):
    result = publish(store, tmp_path, "20261124T060000Z-aaaaaa")
    keys = store.list_keys("runs/20261124T060000Z-aaaaaa")
    assert "runs/20261124T060000Z-aaaaaa/warehouse.duckdb" in keys
    assert "runs/20261124T060000Z-aaaaaa/parquet/fact_goods_trade.parquet" in keys
    manifest = json.loads(store.get_bytes("runs/20261124T060000Z-aaaaaa/manifest.json"))
    assert manifest["run_id"] == "20261124T060000Z-aaaaaa"
    assert manifest["tables"]["fact_goods_trade"]["rows"] == 1
    # checksums in the manifest are those of the uploaded objects
    parquet = tmp_path / "check.parquet"
    parquet.write_bytes(store.get_bytes("runs/20261124T060000Z-aaaaaa/parquet/fact_goods_trade.parquet"))
    assert sha256_file(parquet) == manifest["tables"]["fact_goods_trade"]["sha256"]
    assert pl.read_parquet(parquet)["value_mio_eur"].to_list() == [58000.0]
    assert read_latest_pointer(store)["run_id"] == "20261124T060000Z-aaaaaa"
    assert store.get_bytes("latest/warehouse.duckdb") == store.get_bytes(
        "runs/20261124T060000Z-aaaaaa/warehouse.duckdb")
    assert result.location.endswith("runs/20261124T060000Z-aaaaaa")


def test_published_warehouse_opens_and_holds_the_data(tmp_path):
    store = LocalObjectStore(tmp_path / "objects")
    publish(store, tmp_path, "20261124T060000Z-bbbbbb", value=12.5)
    with duckdb.connect(str(tmp_path / "objects" / "latest" / "warehouse.duckdb"), read_only=True) as c:
        assert c.execute("SELECT value_mio_eur FROM fact_goods_trade").fetchone() == (12.5,)


def test_retention_keeps_the_newest_runs(tmp_path):
    store = LocalObjectStore(tmp_path / "objects")
    for i in range(4):
        publish(store, tmp_path, f"2026112{i}T060000Z-cccccc", keep_runs=2)
    runs = sorted({k.split("/")[1] for k in store.list_keys("runs")})
    assert runs == ["20261122T060000Z-cccccc", "20261123T060000Z-cccccc"]
    assert read_latest_pointer(store)["run_id"] == "20261123T060000Z-cccccc"
    with pytest.raises(ValueError):
        apply_retention(store, 0)


class FailingStore(LocalObjectStore):
    """Fails every upload whose key contains `fail_on` (a disk error, a dropped connection...)."""

    def __init__(self, root, fail_on):
        super().__init__(root)
        self.fail_on = fail_on

    def put_file(self, key, path, content_type=None):
        if self.fail_on in key:
            raise OSError(f"simulated failure writing {key}")
        return super().put_file(key, path, content_type)

    def copy(self, src_key, dst_key):  # the latest/ aliases are copies
        if self.fail_on in dst_key:
            raise OSError(f"simulated failure copying to {dst_key}")
        return super().copy(src_key, dst_key)


@pytest.mark.parametrize("fail_on", ["parquet/fact_goods_trade", "manifest.json", "latest/warehouse"])
def test_failed_upload_leaves_previous_latest_intact(tmp_path, fail_on):
    good = LocalObjectStore(tmp_path / "objects")
    publish(good, tmp_path, "20261123T060000Z-dddddd", value=1.0)
    before = good.get_bytes(LATEST_POINTER)
    before_wh = good.get_bytes("latest/warehouse.duckdb")
    broken = FailingStore(tmp_path / "objects", fail_on)
    with pytest.raises(PublishError, match=f"failed at .*{fail_on.split('/')[0]}.*latest was not moved"):
        publish(broken, tmp_path, "20261124T060000Z-eeeeee", value=2.0)
    assert good.get_bytes(LATEST_POINTER) == before
    if fail_on != "latest/warehouse":
        assert good.get_bytes("latest/warehouse.duckdb") == before_wh


def test_the_previous_published_run_stays_readable_and_whole(tmp_path):
    """A reader who resolved latest.json just before it moved still finds every object of that run, with the
    checksums of its manifest; retention (at least 2, see Settings) never takes it away."""
    from eujp.config import Settings

    store = LocalObjectStore(tmp_path / "objects")
    for i in range(3):
        publish(store, tmp_path, f"2026112{i}T060000Z-ffffff", value=float(i), keep_runs=2)
    previous = "20261121T060000Z-ffffff"
    manifest = json.loads(store.get_bytes(f"runs/{previous}/manifest.json"))
    copy = tmp_path / "previous.duckdb"
    copy.write_bytes(store.get_bytes(f"runs/{previous}/warehouse.duckdb"))
    assert sha256_file(copy) == manifest["warehouse"]["sha256"]
    with duckdb.connect(str(copy), read_only=True) as c:
        assert c.execute("SELECT value_mio_eur FROM fact_goods_trade").fetchone() == (1.0,)
    for name, table in manifest["tables"].items():
        part = tmp_path / f"{name}.parquet"
        part.write_bytes(store.get_bytes(f"runs/{previous}/{table['parquet']}"))
        assert sha256_file(part) == table["sha256"], name
    assert not store.list_keys("runs/20261120T060000Z-ffffff")  # the one before that is gone
    with pytest.raises(ValueError, match="EUJP_KEEP_RUNS must be at least 2"):
        Settings(keep_runs=1)
