"""EUJP_LAKE_CATALOG (eujp.lake.lake_config): the embedded default, PostgreSQL, off, and a clear error otherwise;
a connection string's password never shows; where a reader of the published lake reads its
data files (eujp.bi.published_data_path)."""

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


def test_the_maintenance_deployment_has_a_schedule_of_its_own(monkeypatch):
    from flows import serve

    monkeypatch.delenv(serve.MAINTENANCE_CRON_ENV, raising=False)
    daily = serve.daily_deployment(parameters={"warehouse": "/w/warehouse.duckdb", "publish_uri": "s3://b/p"})
    maintenance = serve.maintenance_deployment(parameters={"warehouse": "/w/warehouse.duckdb",
                                                           "publish_uri": "s3://b/p", "source_mode": "live"})
    assert (maintenance.flow_name, maintenance.name) == ("eujp-lake-maintain", "served")
    assert [s.schedule.cron for s in maintenance.schedules] == [serve.MAINTENANCE_CRON] == ["30 4 * * 0"]
    assert [s.schedule.cron for s in daily.schedules] != [serve.MAINTENANCE_CRON]
    assert maintenance.parameters == {"warehouse": "/w/warehouse.duckdb", "publish_uri": "s3://b/p"}
    assert maintenance.concurrency_limit == 1
    monkeypatch.setenv(serve.MAINTENANCE_CRON_ENV, "0 2 * * *")
    assert [s.schedule.cron for s in serve.maintenance_deployment().schedules] == ["0 2 * * *"]


def test_the_maintenance_keeps_its_utc_schedule_when_the_daily_run_has_another_time_zone(monkeypatch):
    """`eujp serve --timezone Asia/Tokyo` moved the maintenance's 'Sunday 04:30 UTC' to Saturday 19:30 UTC."""
    import prefect

    from flows import serve

    monkeypatch.delenv(serve.MAINTENANCE_CRON_ENV, raising=False)
    monkeypatch.delenv("EUJP_LAKE_CATALOG", raising=False)  # off: no maintenance is served
    served = []
    monkeypatch.setattr(prefect, "serve", lambda *deployments, **_: served.extend(deployments))
    serve.serve_daily(cron="30 9 * * 1-5", timezone="Asia/Tokyo")
    schedules = {d.flow_name: [(s.schedule.cron, s.schedule.timezone) for s in d.schedules] for d in served}
    assert schedules == {"eujp-daily": [("30 9 * * 1-5", "Asia/Tokyo")],
                         "eujp-lake-maintain": [("30 4 * * 0", "UTC")]}


def test_lake_maintain_without_a_lake_says_so(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from flows.cli import app

    monkeypatch.setenv("EUJP_LAKE_CATALOG", "off")
    result = CliRunner().invoke(app, ["lake-maintain", "--warehouse", str(tmp_path / "w.duckdb"),
                                      "--publish", str(tmp_path / "store")])
    # asked for explicitly with the lake off: exit 1, saying why
    assert result.exit_code == 1
    assert "lake maintenance: no lake to maintain: EUJP_LAKE_CATALOG is off (the runs publish no lake)" in result.output
    monkeypatch.delenv("EUJP_LAKE_CATALOG")
    result = CliRunner().invoke(app, ["lake-maintain", "--warehouse", str(tmp_path / "w.duckdb"),
                                      "--publish", str(tmp_path / "store")])
    # before the first run: nothing to do, which is no failure
    assert result.exit_code == 0, result.output
    assert result.output.startswith("lake maintenance: nothing to maintain yet: the lake's catalog ")
    assert "does not exist (no run has published one yet)" in result.output
    assert not (tmp_path / "store").exists()


def test_serve_leaves_the_lake_maintenance_out_when_the_lake_is_off(monkeypatch, caplog):
    """`eujp serve` registered eujp-lake-maintain/NAME with EUJP_LAKE_CATALOG=off: it failed and alerted weekly."""
    import prefect
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from typer.testing import CliRunner

    from eujp import preflight
    from flows import serve
    from flows.cli import app

    served = []
    monkeypatch.setattr(prefect, "serve", lambda *deployments, **_: served.extend(deployments))
    # no server: `eujp serve` asks it first, and prefect.serve, replaced, never calls it
    monkeypatch.setattr(preflight, "check_prefect_api", lambda url: preflight._ok("Prefect API", f"{url} answers"))
    monkeypatch.setenv("EUJP_LAKE_CATALOG", "off")
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):  # never called: prefect.serve is replaced
        result = CliRunner().invoke(app, ["serve", "--name", "trial"])
    assert result.exit_code == 0, result.output
    assert "not serving eujp-lake-maintain/trial: EUJP_LAKE_CATALOG is off" in result.output
    assert [(d.flow_name, d.name) for d in served] == [("eujp-daily", "trial")]
    served.clear()
    with caplog.at_level("WARNING", logger="eujp.serve"):
        serve.serve_daily()  # called directly: the same, in the log
    assert [d.flow_name for d in served] == ["eujp-daily"]
    assert "not serving eujp-lake-maintain/served: EUJP_LAKE_CATALOG is off" in caplog.text
    served.clear()
    monkeypatch.setenv("EUJP_LAKE_CATALOG", "file")
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        result = CliRunner().invoke(app, ["serve", "--name", "trial"])
    assert result.exit_code == 0 and "not serving" not in result.output
    assert [(d.flow_name, d.name) for d in served] == [("eujp-daily", "trial"), ("eujp-lake-maintain", "trial")]


def test_preflight_checks_the_lake_catalog(tmp_path, monkeypatch):
    from support.processes import free_port

    from eujp.config import Settings
    from eujp.preflight import check_lake_catalog

    settings = Settings(warehouse_path=tmp_path / "var" / "warehouse.duckdb", publish_uri=str(tmp_path / "store"))
    monkeypatch.delenv("EUJP_LAKE_CATALOG", raising=False)
    check = check_lake_catalog(settings)
    assert check.ok and f"file {tmp_path / 'var' / 'lake.ducklake'}, published as lake.ducklake" in check.detail
    monkeypatch.setenv("EUJP_LAKE_CATALOG", "sqlite:x")
    check = check_lake_catalog(settings)
    assert not check.ok and check.setting == "EUJP_LAKE_CATALOG" and "got 'sqlite'" in check.detail
    # nothing listens on that port: a clear failure, naming the catalog without its password
    monkeypatch.setenv("EUJP_LAKE_CATALOG", f"postgres:host=127.0.0.1 port={free_port()} dbname=lake "
                                            "user=eujp password=hunter2 connect_timeout=3")
    check = check_lake_catalog(settings)
    assert not check.ok and check.setting == "EUJP_LAKE_CATALOG"
    assert "password=*** connect_timeout=3 does not answer" in check.detail and "hunter2" not in check.detail


def test_the_single_file_setting(tmp_path, monkeypatch):
    from eujp.config import Settings
    from eujp.lake import SingleFile, single_file_tables
    from eujp.preflight import check_lake_catalog
    from eujp.schema.reference import REFERENCE_TABLES
    from eujp.tables import ALL_TABLES

    facts = [t.name for t in ALL_TABLES if t.is_fact]
    ledgers = [t.name for t in ALL_TABLES if t.ledger]  # the ETL tables that grow with the data
    assert ledgers == ["etl_rejected_rows", "etl_revisions"]
    derived = [t.name for t in ALL_TABLES if t.rebuilt]
    rows = dict.fromkeys(facts + ledgers + derived, 10) | {facts[0]: 11, "mart_product_trade": 11,
                                                           "etl_revisions": 11}
    assert SingleFile.from_env({}) == SingleFile("auto", 1_000_000)  # the default
    assert single_file_tables({"EUJP_SINGLE_FILE": "all"}) == tuple(ALL_TABLES)
    # small: no fact table; a run ledger of more than EUJP_SINGLE_FILE_MAX_ROWS rows is in the lake only too
    small = single_file_tables({"EUJP_SINGLE_FILE": "small", "EUJP_SINGLE_FILE_MAX_ROWS": "10"}, rows)
    assert small and all(not t.is_fact for t in small) and len(small) < len(ALL_TABLES)
    assert [t.name for t in ALL_TABLES if not t.is_fact and t not in small] == ["etl_revisions"]
    with pytest.raises(ValueError, match="EUJP_SINGLE_FILE=small needs the row counts"):
        single_file_tables({"EUJP_SINGLE_FILE": "small"})
    # auto: a fact, run ledger or derived table stays in the single file while it has at most
    # EUJP_SINGLE_FILE_MAX_ROWS rows; a larger fact table or ledger is in the lake only, a larger derived one (a
    # mart) in the lake and in Parquet
    auto = single_file_tables({"EUJP_SINGLE_FILE_MAX_ROWS": "10"}, rows)
    assert [t.name for t in ALL_TABLES if t not in auto] == [facts[0], "etl_revisions", "mart_product_trade"]
    parquet = SingleFile.from_env({"EUJP_SINGLE_FILE_MAX_ROWS": "10"}).parquet_tables(rows)
    assert [t.name for t in ALL_TABLES if t not in parquet] == [facts[0], "etl_revisions"]
    assert single_file_tables({}, rows) == tuple(ALL_TABLES)
    # the curated reference seeds stay whatever the limit (docs/lakehouse.md: only facts, ledgers, marts and
    # built dimensions leave the single file; the BI recipes read ref_critical_raw_materials from it)
    seeds = {t.name for t in REFERENCE_TABLES}
    assert seeds <= set(derived)
    assert [t.name for t in single_file_tables({"EUJP_SINGLE_FILE_MAX_ROWS": "0"}, rows)] == \
        [t.name for t in small if (not t.rebuilt or t.name in seeds) and not t.ledger]
    assert SingleFile.from_env({"EUJP_SINGLE_FILE_MAX_ROWS": "0"}).parquet_tables(rows) == \
        tuple(t for t in small if not t.ledger)
    assert single_file_tables({"EUJP_SINGLE_FILE_MAX_ROWS": "0"}, rows, lake=False) == tuple(ALL_TABLES)
    assert SingleFile.from_env({"EUJP_SINGLE_FILE_MAX_ROWS": " 2_000_000 "}).max_rows == 2_000_000
    with pytest.raises(ValueError, match="EUJP_SINGLE_FILE must be 'auto'.*'all'.*'small'.*got 'none'"):
        single_file_tables({"EUJP_SINGLE_FILE": "none"})
    for bad in ("-1", "1e6", "many", "1.5"):
        with pytest.raises(ValueError, match=f"EUJP_SINGLE_FILE_MAX_ROWS must be a whole number of rows, at least 0 "
                                             f".*got '{bad}'"):
            SingleFile.from_env({"EUJP_SINGLE_FILE_MAX_ROWS": bad})
    settings = Settings(warehouse_path=tmp_path / "var" / "warehouse.duckdb", publish_uri=str(tmp_path / "store"))
    monkeypatch.setenv("EUJP_SINGLE_FILE", "small")
    monkeypatch.setenv("EUJP_LAKE_CATALOG", "off")
    check = check_lake_catalog(settings)
    assert not check.ok and "EUJP_SINGLE_FILE=small leaves the facts to the lake" in check.detail
    monkeypatch.setenv("EUJP_SINGLE_FILE", "auto")  # without the lake, auto keeps every table: nothing to refuse
    check = check_lake_catalog(settings)
    assert check.ok and "EUJP_SINGLE_FILE=auto keeps every table in the single warehouse.duckdb" in check.detail
    monkeypatch.setenv("EUJP_SINGLE_FILE_MAX_ROWS", "lots")
    check = check_lake_catalog(settings)
    assert not check.ok and check.setting == "EUJP_SINGLE_FILE_MAX_ROWS" and "got 'lots'" in check.detail
    monkeypatch.setenv("EUJP_SINGLE_FILE", "tiny")
    assert check_lake_catalog(settings).setting == "EUJP_SINGLE_FILE"


@pytest.mark.parametrize(("conninfo", "shown"), [
    ("host=db password = hunter2 dbname=lake", "host=db password=*** dbname=lake"),
    ("host=db password='hunter 2' dbname=lake", "host=db password=*** dbname=lake"),
    (r"password='a\'b hunter2' user=u", "password=*** user=u"),
    ("postgresql://eujp@db:5432/lake?password=hunter2&sslmode=require",
     "postgresql://eujp@db:5432/lake?password=***&sslmode=require"),
    ("postgresql://eujp:hunter2@db/lake?sslmode=require&PASSWORD=hunter2",
     "postgresql://eujp:***@db/lake?sslmode=require&PASSWORD=***"),
    ("PASSWORD=hunter2 host=db", "password=*** host=db"),
    ("host=db sslpassword=hunter2 sslmode=verify-full", "host=db sslpassword=*** sslmode=verify-full"),
    ('host=db password=hun"ter2 dbname=lake', "host=db password=*** dbname=lake"),
    (r"host=db password=hunter\ 2 dbname=lake", "host=db password=*** dbname=lake"),
])
def test_the_catalog_password_is_never_shown_in_any_spelling_libpq_takes(tmp_path, conninfo, shown):
    """Spaces around '=', a quoted value, a URI's query parameter, a '"' or an escaped space in an unquoted value
    (libpq reads both as part of it): each printed the password (or part of it)."""
    cfg = lake_config(tmp_path / "warehouse.duckdb", str(tmp_path / "store"),
                      env={"EUJP_LAKE_CATALOG": "postgres:" + conninfo})
    assert cfg.describe() == "postgres:" + shown and "hunter" not in cfg.describe()


def test_a_catalog_that_does_not_answer_is_said_without_its_password(tmp_path):
    """DuckDB's error quotes the connection string bare ('Unable to connect to Postgres at "host=... password=..."'):
    the lake's attach printed, logged and alerted the password in clear."""
    import duckdb
    from support.processes import free_port

    from eujp.lake import LakeError, attach

    conninfo = f"host=127.0.0.1 port={free_port()} user=u password=hunter2 dbname=x connect_timeout=2"
    cfg = lake_config(tmp_path / "warehouse.duckdb", str(tmp_path / "store"),
                      env={"EUJP_LAKE_CATALOG": "postgres:" + conninfo})
    with duckdb.connect() as conn, pytest.raises(LakeError) as failed:
        attach(conn, cfg)
    assert "password=***" in str(failed.value) and "hunter2" not in str(failed.value)


def test_the_lake_catalog_check_says_a_bad_credentials_block_in_one_line(tmp_path, monkeypatch):
    """A missing or wrong EUJP_S3_CREDENTIALS_BLOCK made the catalog check crash `eujp check` with a traceback."""
    import eujp.lake
    from eujp.config import Settings
    from eujp.errors import PublishError
    from eujp.preflight import check_lake_catalog

    def no_block(*_args, **_kwargs):
        raise PublishError("the Prefect Secret block 'nope' (EUJP_S3_CREDENTIALS_BLOCK) does not exist")

    monkeypatch.setattr(eujp.lake, "lake_config", no_block)
    check = check_lake_catalog(Settings(warehouse_path=tmp_path / "w.duckdb", publish_uri="s3://bucket/eujp"))
    assert not check.ok and check.setting == "EUJP_S3_CREDENTIALS_BLOCK" and "does not exist" in check.detail


def test_a_warehouse_of_another_name_takes_the_folders_catalog_of_its_target_once(tmp_path):
    """var/eujp.duckdb kept its lake catalog in var/lake.ducklake before its files had a folder of their own
    (var/eujp.duckdb.d/): its first commit since moves that catalog there, so its lake goes on (the commit
    would otherwise start a new one, earlier snapshots gone), but not another target's, nor the catalog of a
    warehouse.duckdb beside it."""
    import duckdb

    from eujp.lake import CATALOG_FILE, LakeConfig, adopt_folder_catalog, attach

    var = tmp_path / "var"
    warehouse, uri = var / "eujp.duckdb", str(tmp_path / "store")
    cfg = lake_config(warehouse, uri, env={})
    legacy = var.resolve() / CATALOG_FILE
    with duckdb.connect() as conn:  # the folder's catalog, as an earlier run committed it for this target
        attach(conn, LakeConfig(str(legacy), cfg.data_path, legacy))
    other = lake_config(var / "other.duckdb", str(tmp_path / "elsewhere"), env={})
    assert adopt_folder_catalog(other, var / "other.duckdb") is None and legacy.exists()  # not its target's
    (var / "warehouse.duckdb").write_bytes(b"")
    assert adopt_folder_catalog(cfg, warehouse) is None and legacy.exists()  # warehouse.duckdb's own
    (var / "warehouse.duckdb").unlink()
    note = adopt_folder_catalog(cfg, warehouse)
    assert note and cfg.catalog_file == var.resolve() / "eujp.duckdb.d" / CATALOG_FILE
    assert cfg.catalog_file.is_file() and not legacy.exists()
    assert adopt_folder_catalog(cfg, warehouse) is None  # once


def test_a_reader_reads_the_published_lakes_data_files_under_the_location_it_was_given(tmp_path, monkeypatch):
    """eujp.bi.published_data_path: the publish URI or folder the reader was given + the manifest's relative
    "data_path"; a data path that is not relative to it (the writer's absolute path, another URL, ..) is refused."""
    from eujp.bi import published_data_path
    from eujp.errors import EujpError

    lake = {"catalog": "file", "data_path": "lake/"}
    assert published_data_path("s3://mirror/copy/eujp/", lake) == "s3://mirror/copy/eujp/lake/"
    monkeypatch.chdir(tmp_path)
    assert published_data_path("mnt/eujp", lake) == f"{tmp_path.resolve()}/mnt/eujp/lake/"
    for bad in ("/srv/eujp/var/objectstore/lake/", "s3://bucket/prefix/lake/", "../lake/", "", None):
        with pytest.raises(EujpError, match="names no data path of its lake relative to it"):
            published_data_path("s3://mirror/copy/eujp", {"catalog": "file", "data_path": bad})
