"""Two writers (two warehouses on two hosts, each with its own embedded lake catalog) publishing to one target, one
after the other, through the run's publish step (eujp.run.publish): what docs/scale-out.md "Writers on several
hosts" and a fresh disk do. Shared by the folder test (tests/integration/test_lake.py) and the S3 one
(tests/integration/test_lake_s3.py)."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb

from eujp.config import Settings
from eujp.lake import ALIAS, CATALOG_FILE, attach, lake_config, maintain
from eujp.publish import read_latest_pointer
from eujp.run import publish
from eujp.sources import SOURCES
from eujp.sql import quote_ident
from eujp.storage import open_store
from eujp.tables import ALL_TABLES
from support.bundled_warehouse import table_counts
from support.relations import rows_differing

FACT = next(s for s in SOURCES if s.period_column == "period_code").table.name  # the monthly fact
CLAIM = "japan_second_largest_partner"


def published_lake(uri: str, work: Path) -> duckdb.DuckDBPyConnection:
    """The catalog published at `uri`, downloaded and attached read-only as `lake` (its data files at the target)."""
    work.mkdir(parents=True, exist_ok=True)
    local = work / f"published-{len(list(work.iterdir()))}.ducklake"
    open_store(uri).get_file(CATALOG_FILE, local)
    cfg = lake_config(work / "reader.duckdb", uri, env={})
    conn = duckdb.connect()
    attach(conn, type(cfg)(str(local), cfg.data_path, local), read_only=True)
    return conn


def tables_differing(conn: duckdb.DuckDBPyConnection, snapshot: int, warehouse: Path) -> list[str]:
    """The tables whose rows at the lake's `snapshot` are not the warehouse file's, row for row."""
    conn.execute(f"ATTACH '{warehouse}' AS wh (READ_ONLY)")
    try:
        return [t.name for t in ALL_TABLES
                if rows_differing(conn, f"(FROM {ALIAS}.{quote_ident(t.name)} AT (VERSION => {snapshot}))",
                                  f"wh.{quote_ident(t.name)}")]
    finally:
        conn.execute("DETACH wh")


def run_two_writers(bundled_warehouse: Path, uri: str, work: Path, caplog) -> None:
    """h1 publishes day 1; h2 (a fresh disk: no catalog) day 2; h1 (its catalog now behind) day 3; maintenance on
    h1; h2 (its catalog behind again) day 4. Every run continues the published lake: its snapshot is the next
    number, it holds exactly the writer's warehouse, the earlier snapshots read what their runs published, and
    maintenance deletes nothing the published catalog references."""
    hosts = {}
    for host in ("h1", "h2"):
        hosts[host] = work / host / "warehouse.duckdb"
        hosts[host].parent.mkdir(parents=True)
        shutil.copyfile(bundled_warehouse, hosts[host])
    edits = {  # each day's change in the warehouse that publishes it
        "h1-day1": [],
        "h2-day2": [f"UPDATE mart_claims SET verdict = 'not enough data' WHERE claim_id = '{CLAIM}'",
                    (f"UPDATE {quote_ident(FACT)} SET value_eur = value_eur * 2, run_id = 'day2' WHERE period_code = "
                     f"(SELECT min(period_code) FROM {quote_ident(FACT)})")],
        "h1-day3": [(f"DELETE FROM {quote_ident(FACT)} WHERE period_code = (SELECT max(period_code) FROM "
                     f"{quote_ident(FACT)})")],
        "h1-maintain": [],
        "h2-day4": [f"UPDATE mart_claims SET verdict = 'supported' WHERE claim_id = '{CLAIM}'"],
    }
    log = logging.getLogger("test.two_writers")
    published: dict[str, tuple[int, Path]] = {}  # run -> (its snapshot, a copy of the warehouse it published)
    newest = 0  # the published lake's newest snapshot
    for day, (step, statements) in enumerate(edits.items(), start=1):
        host = step.split("-")[0]
        warehouse = hosts[host]
        if step == "h1-maintain":
            h1 = lake_config(warehouse, uri, env={})
            result = maintain(h1, open_store(uri), keep_days=30, grace_hours=0, work_dir=work / "maintain")
            assert result.adopted is None  # h1 published the newest snapshot itself
            assert result.snapshot_id >= newest  # (merging files is a snapshot of its own)
            newest = result.snapshot_id
            after = published_lake(uri, work / "read")
            for run, (snapshot, copy) in published.items():  # every published snapshot reads, row for row
                assert tables_differing(after, snapshot, copy) == [], (run, snapshot)
            after.close()
            continue
        with duckdb.connect(str(warehouse)) as conn:
            for sql in statements:
                conn.execute(sql)
        run_id = f"202612{day:02d}T060000Z-{step}"
        settings = Settings(warehouse_path=warehouse, publish_uri=uri, run_id=run_id)
        had_catalog = settings.files_dir.joinpath(CATALOG_FILE).exists()
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger=log.name):
            publish(settings, [], table_counts(warehouse), {"ok": True}, "success", log=log)
        pointer = read_latest_pointer(open_store(uri))
        snapshot = pointer["lake"]["snapshot_id"]
        assert pointer["run_id"] == run_id
        adopted = [r.getMessage() for r in caplog.records if "adopted the lake catalog published" in r.getMessage()]
        if published:  # every run after the first continues the published lake's numbering, on top of it
            assert snapshot == newest + 1, step
            assert len(adopted) == 1, (step, [r.getMessage() for r in caplog.records])
            assert ("was set aside as lake.ducklake.replaced-" in adopted[0]) is had_catalog
            assert ("this writer had no lake catalog" in adopted[0]) is not had_catalog
            # the commit rewrote the tables where this warehouse differs from what the lake held, no other
            changed = set(pointer["lake"]["tables_changed"])
            assert changed and changed <= {"mart_claims", FACT}, (step, changed)
        else:
            assert snapshot == 1 and not adopted
        copy = work / "published" / f"{run_id}.duckdb"
        copy.parent.mkdir(exist_ok=True)
        shutil.copyfile(warehouse, copy)
        published[run_id] = (snapshot, copy)
        newest = snapshot
        conn = published_lake(uri, work / "read")
        for run, (earlier, kept) in published.items():  # the newest holds the writer's warehouse; the others theirs
            assert tables_differing(conn, earlier, kept) == [], (step, run, earlier)
        conn.close()
    assert [s for s, _ in published.values()][:3] == [1, 2, 3]


def run_catalog_look_ups(uri: str, work: Path, caplog, downloads: Callable[[], int]) -> None:
    """Small warehouses (tests/support/small_publish.py) publishing to `uri` through the run's publish step:
    h1 day 1 and day 2, h2 (no catalog) day 3, h1 (its catalog behind) day 4, maintenance on h1, h1 day 5.
    `downloads()`: how many times the published lake.ducklake was read so far (GET requests, the folder store's
    get_file). A writer whose catalog is the published one (it uploaded it itself on its last run, or its
    maintenance did) does not download it: the store's sha256 of it says so; a writer that lacks it (h2) or a
    published snapshot (h1 on day 4) downloads and adopts it, as before."""
    from support.small_publish import small_warehouse

    hosts = {}
    for host in ("h1", "h2"):
        (work / host).mkdir(parents=True)
        hosts[host] = small_warehouse(work / host / "warehouse.duckdb", rows=2)
    log = logging.getLogger("test.two_writers")
    expected = {"h1-day1": (0, False), "h1-day2": (0, False), "h2-day3": (1, True), "h1-day4": (1, True),
                "h1-maintain": (0, False), "h1-day5": (0, False)}  # step -> (downloads, adopted)
    newest = 0
    for day, (step, (downloaded, adopts)) in enumerate(expected.items(), start=1):
        host = step.split("-")[0]
        before = downloads()
        caplog.clear()
        if step == "h1-maintain":
            result = maintain(lake_config(hosts[host], uri, env={}), open_store(uri), keep_days=30, grace_hours=0,
                              work_dir=work / "maintain")
            assert (downloads() - before, result.adopted is not None) == (downloaded, adopts), step
            newest = result.snapshot_id
            continue
        with duckdb.connect(str(hosts[host])) as conn:  # the day's load
            conn.execute("INSERT INTO etl_runs (run_id, source, rows_in) VALUES (?, 's', ?)", [step, day])
        run_id = f"202612{day:02d}T060000Z-{step}"
        with caplog.at_level(logging.WARNING, logger=log.name):
            publish(Settings(warehouse_path=hosts[host], publish_uri=uri, run_id=run_id), [],
                    table_counts(hosts[host]), {"ok": True}, "success", log=log)
        adopted = [r.getMessage() for r in caplog.records if "adopted the lake catalog published" in r.getMessage()]
        assert (downloads() - before, len(adopted)) == (downloaded, int(adopts)), (step, adopted)
        pointer = read_latest_pointer(open_store(uri))
        assert pointer["run_id"] == run_id and pointer["lake"]["snapshot_id"] == newest + 1, (step, pointer)
        newest = pointer["lake"]["snapshot_id"]
        assert not list((work / host).rglob(f"{CATALOG_FILE}.published")), step  # no download left behind
    # the published lake holds every run, h2's included: h1 committed on top of it
    conn = published_lake(uri, work / "read")
    runs = {r[0] for r in conn.execute(f"SELECT run_id FROM {ALIAS}.eujp_meta.runs").fetchall()}
    conn.close()
    assert runs == {f"202612{day:02d}T060000Z-{step}" for day, step in enumerate(expected, start=1)
                    if step != "h1-maintain"}
