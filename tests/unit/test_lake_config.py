"""EUJP_LAKE_CATALOG (eujp.lake.lake_config): the embedded default, PostgreSQL, off, and a clear error otherwise;
a connection string's password never shows."""

from __future__ import annotations

import pytest

from eujp.lake import lake_config


def test_the_catalog_setting(tmp_path):
    warehouse, uri = tmp_path / "warehouse.duckdb", str(tmp_path / "store")
    assert lake_config(warehouse, uri, env={"EUJP_LAKE_CATALOG": "off"}) is None
    with pytest.raises(ValueError, match="EUJP_LAKE_CATALOG must be 'file'.*got 'mysql'"):
        lake_config(warehouse, uri, env={"EUJP_LAKE_CATALOG": "mysql:db=x password=hunter2"})
    pg = lake_config(warehouse, uri, env={"EUJP_LAKE_CATALOG": "postgres:host=db dbname=lake password=hunter2"})
    assert not pg.embedded and pg.catalog == "postgres:host=db dbname=lake password=hunter2"
    assert pg.describe() == "postgres:host=db dbname=lake password=***"
    s3 = lake_config(warehouse, "s3://bucket/eujp", env={})
    assert s3.data_path == "s3://bucket/eujp/lake/"
