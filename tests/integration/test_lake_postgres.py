"""The lake with a PostgreSQL catalog (EUJP_LAKE_CATALOG=postgres:...): a real PostgreSQL server of the test's own
(initdb + pg_ctl on 127.0.0.1, stopped at the end), the run's publish step committing through it, and readers
attached while the writer commits: each reader query sees a run whole or not at all, never half of it."""

from __future__ import annotations

import shutil
import threading

import duckdb
from support.bundled_warehouse import copy_warehouse, table_counts

from eujp.config import Settings
from eujp.lake import ALIAS, attach, commit_warehouse, lake_config
from eujp.preflight import check_lake_catalog
from eujp.publish import read_latest_pointer
from eujp.run import publish
from eujp.sources import SOURCES
from eujp.sql import quote_ident
from eujp.storage import open_store

MONTHLY = next(s for s in SOURCES if s.period_column == "period_code")
FACT = quote_ident(MONTHLY.table.name)


def test_a_postgres_catalog_takes_the_runs_commits_while_readers_read(postgres, bundled_warehouse, tmp_path,
                                                                      monkeypatch):
    monkeypatch.setenv("EUJP_LAKE_CATALOG", f"postgres:{postgres}")
    warehouse = tmp_path / "var" / "warehouse.duckdb"
    warehouse.parent.mkdir()
    shutil.copyfile(bundled_warehouse, warehouse)
    store_dir = tmp_path / "objectstore"
    settings = Settings(warehouse_path=warehouse, publish_uri=str(store_dir), run_id="20261124T060000Z-pglake")
    check = check_lake_catalog(settings)  # what `eujp check` and the start of every run say
    assert check.ok and check.detail.startswith(f"postgres:{postgres} answers"), check
    publish(settings, [], {}, {"ok": True}, "success")
    pointer = read_latest_pointer(open_store(str(store_dir)))
    assert pointer["lake"]["catalog"] == "postgres" and "catalog_key" not in pointer["lake"]
    assert not (store_dir / "lake.ducklake").exists() and not (warehouse.parent / "lake.ducklake").exists()
    cfg = lake_config(warehouse, str(store_dir))
    assert not cfg.embedded

    # The next day adds a month, while two readers keep querying the same PostgreSQL catalog.
    with duckdb.connect(str(warehouse)) as conn:
        newest = conn.execute(f"SELECT max(period_code) FROM {FACT} WHERE length(period_code) = 7").fetchone()[0]
        conn.execute(f"INSERT INTO {FACT} SELECT * REPLACE ('2031-01' AS period_code, DATE '2031-01-01' AS period) "
                     f"FROM {FACT} WHERE period_code = ?", [newest])
        month_rows = conn.execute(f"SELECT count(*) FROM {FACT} WHERE period_code = '2031-01'").fetchone()[0]
        conn.execute("UPDATE etl_runs SET rows_in = rows_in + 1")  # the same run changes a second table
    seen: list[tuple[int, int]] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        conn = duckdb.connect()
        try:
            attach(conn, cfg, read_only=True)
            while not done.is_set() or len(seen) < 4:
                # one query, one snapshot: the new month and the changed etl_runs come together or not at all
                seen.append(conn.execute(
                    f"SELECT (SELECT count(*) FROM {ALIAS}.{FACT} WHERE period_code = '2031-01'), "
                    f"(SELECT sum(rows_in) FROM {ALIAS}.etl_runs)").fetchone())
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            conn.close()

    readers = [threading.Thread(target=read) for _ in range(2)]
    for r in readers:
        r.start()
    commit = commit_warehouse(cfg, warehouse, "20261125T060000Z-pglake")
    done.set()
    for r in readers:
        r.join(120)
    assert not errors, errors
    assert commit.snapshot_id == pointer["lake"]["snapshot_id"] + 1
    assert sorted(commit.changed) == sorted([MONTHLY.table.name, "etl_runs"])
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        runs_after = conn.execute("SELECT sum(rows_in) FROM etl_runs").fetchone()[0]
    runs_before = runs_after - conn_rows(warehouse)
    assert set(seen) <= {(0, runs_before), (month_rows, runs_after)}, set(seen)
    # and a reader attached now reads the new snapshot, and the previous one by version
    conn = duckdb.connect()
    attach(conn, cfg, read_only=True)
    query = f"SELECT count(*) FROM {ALIAS}.{FACT} {{}} WHERE period_code = '2031-01'"
    assert conn.execute(query.format("")).fetchone() == (month_rows,)
    assert conn.execute(query.format(f"AT (VERSION => {pointer['lake']['snapshot_id']})")).fetchone() == (0,)


def conn_rows(warehouse) -> int:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.execute("SELECT count(*) FROM etl_runs").fetchone()[0]


def test_query_published_reads_the_lake_only_tables_through_the_readers_postgres_catalog(
        postgres, bundled_warehouse, tmp_path, monkeypatch):
    """A PostgreSQL catalog is never published (its connection string is each reader's own): `eujp query
    --published` reads a fact table left to the lake through the EUJP_LAKE_CATALOG the reader sets, at the
    manifest's snapshot; without it, or with a database that is not the lake, a clear error that shows no
    connection string."""
    from typer.testing import CliRunner

    from eujp.bi import open_warehouse
    from eujp.errors import EujpError
    from flows.cli import app

    monkeypatch.setenv("EUJP_LAKE_CATALOG", f"postgres:{postgres}")
    monkeypatch.delenv("EUJP_SINGLE_FILE", raising=False)
    warehouse = copy_warehouse(bundled_warehouse, tmp_path)
    counts = table_counts(warehouse)
    fact_rows = counts[MONTHLY.table.name]
    monkeypatch.setenv("EUJP_SINGLE_FILE_MAX_ROWS", str(fact_rows - 1))  # this fact table goes to the lake only
    store_dir = tmp_path / "objectstore"
    settings = Settings(warehouse_path=warehouse, publish_uri=str(store_dir), run_id="20261124T060000Z-pgread")
    publish(settings, [], counts, {"ok": True}, "success")
    pointer = read_latest_pointer(open_store(str(store_dir)))
    assert pointer["lake"]["catalog"] == "postgres"
    with duckdb.connect(str(store_dir / "latest" / "warehouse.duckdb"), read_only=True) as conn:
        assert MONTHLY.table.name not in {r[0] for r in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()}

    with open_warehouse(str(store_dir)) as conn:
        assert conn.execute(f"SELECT count(*) FROM {FACT}").fetchone() == (fact_rows,)
    # the next run's commit moves the lake, not what this published warehouse reads (its snapshot)
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute(f"DELETE FROM {FACT} WHERE rowid IN (SELECT rowid FROM {FACT} LIMIT 5)")
    commit_warehouse(lake_config(warehouse, str(store_dir)), warehouse, "20261125T060000Z-pgread")
    monkeypatch.setenv("EUJP_PUBLISH_URI", str(store_dir))
    result = CliRunner().invoke(app, ["query", "--published", "--format", "csv", f"SELECT count(*) AS n FROM {FACT}"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["n", str(fact_rows)]

    monkeypatch.delenv("EUJP_LAKE_CATALOG")
    try:
        open_warehouse(str(store_dir))
        raise AssertionError("opened without the catalog")
    except EujpError as exc:
        assert MONTHLY.table.name in str(exc) and f"of the published warehouse at {store_dir} are in the lake only" \
            in str(exc)
        assert "set EUJP_LAKE_CATALOG=postgres:<connection string>" in str(exc)
    other = postgres.replace("dbname=eujp", "dbname=postgres")  # a database of the server that holds no lake
    monkeypatch.setenv("EUJP_LAKE_CATALOG", f"postgres:{other}")
    try:
        open_warehouse(str(store_dir))
        raise AssertionError("opened a database that is not the lake")
    except EujpError as exc:
        assert MONTHLY.table.name in str(exc) and other not in str(exc) and "port=" not in str(exc)


def test_the_catalogs_password_is_in_no_log_record_nor_output(postgres_with_password, tmp_path, monkeypatch, caplog,
                                                              capfd):
    """The password of a PostgreSQL catalog (here with a '"', which libpq reads as any other character of an
    unquoted value) is in no log record, at DEBUG on every logger, nor in what the commands print: `eujp check`'s
    line of a catalog that answers (`LakeConfig.describe` printed what followed the '"'), `eujp lake-maintain` with
    a wrong password and with the server down, and a failed ATTACH's DuckDB error logged with its traceback by
    code of its own (a library, Prefect), which quotes the connection string bare. The lines still say which
    server, user and database, and why."""
    import logging
    import sys

    from support.processes import POSTGRES_PASSWORD, free_port
    from typer.testing import CliRunner

    from eujp.bi import load_extension
    from eujp.sql import sql_string
    from flows.cli import app

    conninfo = postgres_with_password
    wrong = conninfo.replace(POSTGRES_PASSWORD, POSTGRES_PASSWORD[::-1])
    down = wrong.replace(conninfo.split("port=")[1].split()[0], str(free_port()))
    needles = {POSTGRES_PASSWORD, POSTGRES_PASSWORD[::-1], *POSTGRES_PASSWORD.split('"'),
               *POSTGRES_PASSWORD[::-1].split('"')}
    warehouse, store = tmp_path / "var" / "warehouse.duckdb", tmp_path / "objectstore"
    warehouse.parent.mkdir()
    monkeypatch.setenv("EUJP_WAREHOUSE", str(warehouse))
    monkeypatch.setenv("EUJP_PUBLISH_URI", str(store))
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    root.addHandler(handler)
    caplog.set_level(logging.DEBUG)
    for name in ("eujp", "prefect", "httpx", "httpcore", "urllib3", "duckdb"):
        caplog.set_level(logging.DEBUG, logger=name)
    printed = []
    try:
        monkeypatch.setenv("EUJP_LAKE_CATALOG", f"postgres:{conninfo}")
        check = CliRunner().invoke(app, ["check"])
        printed.append(check.output)
        assert "ok      lake catalog: postgres:host=127.0.0.1 port=" in check.output
        for catalog, why in ((wrong, 'password authentication failed for user "eujp"'), (down, "Connection refused")):
            monkeypatch.setenv("EUJP_LAKE_CATALOG", f"postgres:{catalog}")
            maintained = CliRunner().invoke(app, ["lake-maintain"])
            printed.append(maintained.output)
            assert maintained.exit_code == 1 and "cannot attach the lake (catalog postgres:host=127.0.0.1 port=" \
                in maintained.output and "user=eujp dbname=eujp password=***" in maintained.output
            assert why in maintained.output
            cfg = lake_config(warehouse, str(store))
            with duckdb.connect() as conn:
                load_extension(conn, "ducklake")
                load_extension(conn, "postgres_scanner")
                try:
                    conn.execute(f"ATTACH {sql_string('ducklake:' + cfg.catalog)} AS {ALIAS}")
                    raise AssertionError("attached with a wrong password")
                except duckdb.Error as exc:
                    error = str(exc)
                    assert any(n in error for n in needles)  # DuckDB's own error quotes it
                    logging.getLogger("somelibrary").exception("attach failed: %s", error)
    finally:
        root.removeHandler(handler)
    out = capfd.readouterr()
    texts = {"log records": caplog.text, "stderr": out.err, "stdout": out.out, "printed": "\n".join(printed)}
    assert "attach failed: IO Error" in caplog.text and "Traceback" in caplog.text
    assert 'password authentication failed for user "eujp"' in caplog.text
    leaked = [f"{n!r} in {place}" for place, text in texts.items() for n in needles if n in text]
    assert leaked == []
