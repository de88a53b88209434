"""The DuckLake publish (eujp.lake) on a folder store (real DuckLake commits of the bundled warehouse, a few seconds
each, hence not a unit test): one snapshot per run holding every table as the promoted
warehouse has it, facts partitioned by period, a day with one new month writing only that month's files, a retried
commit adding nothing, time travel, the published read-only catalog, and retention/compaction that keeps what
latest.json and the retained runs need."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from support.bundled_warehouse import table_counts
from support.comext_days import day_run_id, run_day
from support.comext_days import days as comext_days
from support.relations import rows_differing

from eujp.digests import partition_digests
from eujp.lake import (
    ALIAS,
    CATALOG_FILE,
    LakeConfig,
    LakeError,
    attach,
    commit_warehouse,
    lake_config,
    maintain,
    protected_snapshots,
    snapshots,
)
from eujp.publish import publish_run, read_latest_pointer
from eujp.sources import SOURCES
from eujp.sql import quote_ident
from eujp.storage import open_store
from eujp.tables import ALL_TABLES

# The monthly fact (its period column is a YYYY-MM code): found through the registry, not named here.
MONTHLY = next(s for s in SOURCES if s.period_column == "period_code")
FACT = MONTHLY.table.name


@pytest.fixture
def lake(bundled_warehouse, tmp_path) -> tuple[LakeConfig, Path, Path]:
    """(lake config, a writable copy of the bundled warehouse, the folder store) with the embedded catalog."""
    warehouse = tmp_path / "var" / "warehouse.duckdb"
    warehouse.parent.mkdir()
    shutil.copyfile(bundled_warehouse, warehouse)
    store = tmp_path / "objectstore"
    return lake_config(warehouse, str(store), env={}), warehouse, store


def reader(cfg: LakeConfig) -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect()
    attach(conn, cfg, read_only=True)
    return conn


def data_files(store: Path) -> set[str]:
    return {p.relative_to(store).as_posix() for p in (store / "lake").rglob("*.parquet")}


def add_month(warehouse: Path, month: str) -> int:
    """A day with one new month: the newest month's rows copied as `month` (YYYY-MM)."""
    with duckdb.connect(str(warehouse)) as conn:
        t = quote_ident(FACT)
        newest = conn.execute(f"SELECT max(period_code) FROM {t} WHERE length(period_code) = 7").fetchone()[0]
        conn.execute(f"INSERT INTO {t} SELECT * REPLACE (? AS period_code, CAST(? || '-01' AS DATE) AS period) "
                     f"FROM {t} WHERE period_code = ?", [month, month, newest])
        return conn.execute(f"SELECT count(*) FROM {t} WHERE period_code = ?", [month]).fetchone()[0]


def revise(warehouse: Path, month: str, factor: float, run_id: str = "20261126T050000Z-revise") -> None:
    """A month's figures revised by a run: its rows written again, stamped with the run's id (as the loader's
    upsert writes them)."""
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute(f"UPDATE {quote_ident(FACT)} SET value_eur = value_eur * ?, run_id = ? WHERE period_code = ?",
                     [factor, run_id, month])


def test_a_commit_is_one_snapshot_holding_every_table_as_the_warehouse_has_it(lake):
    cfg, warehouse, store = lake
    assert cfg.catalog_file == warehouse.parent / CATALOG_FILE and cfg.data_path == f"{store.resolve()}/lake/"
    commit = commit_warehouse(cfg, warehouse, "20261124T060000Z-lake01")
    assert commit.new and commit.snapshot_id == 1  # snapshot 0 is the empty lake DuckLake creates
    conn = reader(cfg)
    assert [r[0] for r in conn.execute(f"SELECT snapshot_id FROM ducklake_snapshots('{ALIAS}')").fetchall()] == [0, 1]
    conn.execute(f"ATTACH '{warehouse}' AS wh (READ_ONLY)")
    for table in ALL_TABLES:
        t = quote_ident(table.name)
        lake_rows = conn.execute(f"SELECT count(*) FROM {ALIAS}.{t}").fetchone()[0]
        assert lake_rows == conn.execute(f"SELECT count(*) FROM wh.{t}").fetchone()[0], table.name
        assert conn.execute(f"SELECT count(*) FROM (FROM {ALIAS}.{t} EXCEPT ALL FROM wh.{t})").fetchone() == (0,)
    # descriptions travel with the tables
    comment = conn.execute("SELECT comment FROM duckdb_tables() WHERE database_name = ? AND table_name = ?",
                           [ALIAS, FACT]).fetchone()[0]
    assert comment == MONTHLY.table.description
    columns = dict(conn.execute("SELECT column_name, comment FROM duckdb_columns() WHERE database_name = ? AND "
                                "table_name = ?", [ALIAS, FACT]).fetchall())
    assert columns == {c: MONTHLY.table.docs.get(c) for c in columns} and any(columns.values())
    # the monthly fact is partitioned by its period: one folder per month, nothing else
    months = {r[0] for r in conn.execute(f"SELECT DISTINCT period_code FROM wh.{quote_ident(FACT)}").fetchall()}
    folders = {f.split("/")[3] for f in data_files(store) if f.startswith(f"lake/main/{FACT}/")}
    assert folders == {f"period_code={m}" for m in months}


def test_the_snapshot_time_is_utc_iso_8601_whatever_the_process_time_zone(lake):
    """DuckDB's session TimeZone is the process' time zone: under TZ=Asia/Tokyo the manifest and latest.json
    read "2026-12-06 00:46:39.959135+09" beside their UTC ISO times. The commit runs in a process in Tokyo."""
    import subprocess
    import sys

    cfg, warehouse, store = lake
    script = ("import json, sys; from pathlib import Path; from eujp.lake import commit_warehouse, lake_config; "
              "cfg = lake_config(Path(sys.argv[1]), sys.argv[2], env={}); "
              "first = commit_warehouse(cfg, Path(sys.argv[1]), '20261124T060000Z-lake01'); "
              "again = commit_warehouse(cfg, Path(sys.argv[1]), '20261124T060000Z-lake01'); "  # a retried publish
              "print(json.dumps([first.manifest_entry()['snapshot_time'], again.snapshot_time, first.snapshot_id]))")
    env = {**os.environ, "TZ": "Asia/Tokyo", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, "-c", script, str(warehouse), str(store)], env=env, check=True,
                         capture_output=True, text=True).stdout
    first, again, snapshot_id = json.loads(out.splitlines()[-1])
    with reader(cfg) as conn:
        (when,) = conn.execute(f"SELECT snapshot_time FROM ducklake_snapshots('{ALIAS}') WHERE snapshot_id = ?",
                               [snapshot_id]).fetchone()
    assert first == again == when.astimezone(UTC).isoformat()  # e.g. 2026-12-05T15:46:39.959135+00:00
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00", first), first


def test_a_day_with_one_new_month_writes_that_months_files_and_one_snapshot(lake):
    cfg, warehouse, store = lake
    first = commit_warehouse(cfg, warehouse, "20261124T060000Z-lake01")
    before = data_files(store)
    rows = add_month(warehouse, "2031-01")
    second = commit_warehouse(cfg, warehouse, "20261125T060000Z-lake02")
    assert second.snapshot_id == first.snapshot_id + 1
    assert second.changed == {FACT: {"rewritten": ["2031-01"], "removed": []}}
    new = data_files(store) - before
    assert before <= data_files(store)  # nothing of the first snapshot was rewritten or removed
    assert {f.split("/")[1] + "/" + f.split("/")[2] for f in new} == {f"main/{FACT}", "eujp_meta/partitions",
                                                                      "eujp_meta/runs"}
    assert all("/period_code=2031-01/" in f for f in new if f.startswith("lake/main/"))
    conn = reader(cfg)
    count = f"SELECT count(*) FROM {ALIAS}.{quote_ident(FACT)} {{}} WHERE period_code = '2031-01'"
    assert conn.execute(count.format("")).fetchone() == (rows,)
    assert conn.execute(count.format(f"AT (VERSION => {first.snapshot_id})")).fetchone() == (0,)

    # A revised month rewrites that month only; the previous snapshot still reads the old figures.
    month = conn.execute(f"SELECT min(period_code) FROM {ALIAS}.{quote_ident(FACT)}").fetchone()[0]
    total = f"SELECT sum(value_eur) FROM {ALIAS}.{quote_ident(FACT)} {{}} WHERE period_code = '{month}'"
    old = conn.execute(total.format("")).fetchone()[0]
    conn.close()
    revise(warehouse, month, 2.0)
    third = commit_warehouse(cfg, warehouse, "20261126T060000Z-lake03")
    assert third.changed == {FACT: {"rewritten": [month], "removed": []}}
    conn = reader(cfg)
    assert conn.execute(total.format("")).fetchone()[0] == pytest.approx(2 * old)
    assert conn.execute(total.format(f"AT (VERSION => {second.snapshot_id})")).fetchone()[0] == pytest.approx(old)


def recorded_digests(monkeypatch) -> list[str]:
    """The sources eujp.lake's `partition_digests` is called on from now on (the real function still runs)."""
    import eujp.lake

    digested: list[str] = []
    real = eujp.lake.partition_digests

    def recording(conn, source, unit):
        digested.append(source)
        return real(conn, source, unit)

    monkeypatch.setattr(eujp.lake, "partition_digests", recording)
    return digested


def test_a_commit_digests_only_the_units_whose_row_count_or_run_marker_changed(lake, monkeypatch):
    """The fact's rows carry the run that wrote them: the commit after a day digests the day's month only (the
    rows of that unit, not the table), and still finds a revised month and a month whose rows were deleted."""
    cfg, warehouse, _ = lake
    commit_warehouse(cfg, warehouse, "20261124T060000Z-lake01")
    digested = recorded_digests(monkeypatch)
    months = _months(warehouse)
    add_month(warehouse, "2031-01")
    second = commit_warehouse(cfg, warehouse, "20261125T060000Z-lake02")
    assert second.changed == {FACT: {"rewritten": ["2031-01"], "removed": []}}
    of_fact = [s for s in digested if quote_ident(FACT) in s]
    assert len(of_fact) == 1 and "'2031-01'" in of_fact[0] and not any(m in of_fact[0] for m in months)
    # the digests it kept are the ones a full digest gives
    assert second.digests[FACT] == partition_digests(reader(cfg), f"{ALIAS}.main.{quote_ident(FACT)}", "period_code")

    digested.clear()
    revise(warehouse, months[0], 2.0)  # a run's revision: the month's rows carry the run's id
    with duckdb.connect(str(warehouse)) as conn:  # and a month whose rows a run deleted
        conn.execute(f"DELETE FROM {quote_ident(FACT)} WHERE period_code = ?", [months[-1]])
    third = commit_warehouse(cfg, warehouse, "20261126T060000Z-lake03")
    assert third.changed == {FACT: {"rewritten": [months[0]], "removed": [months[-1]]}}
    of_fact = [s for s in digested if quote_ident(FACT) in s]
    assert len(of_fact) == 1 and f"'{months[0]}'" in of_fact[0] and "'2031-01'" not in of_fact[0]


def test_an_edit_outside_a_run_that_kept_the_run_ids_is_seen_by_a_verifying_commit(lake):
    """An UPDATE made by hand that leaves run_id alone changes no row count nor run marker: the day's commit
    keeps the lake's digest of that month; a verifying commit (`eujp run --force`) digests every unit and
    rewrites it."""
    cfg, warehouse, _ = lake
    commit_warehouse(cfg, warehouse, "20261124T060000Z-lake01")
    month = _months(warehouse)[0]
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute(f"UPDATE {quote_ident(FACT)} SET value_eur = value_eur + 1 WHERE period_code = ?", [month])
    assert commit_warehouse(cfg, warehouse, "20261125T060000Z-lake02").changed == {}
    verified = commit_warehouse(cfg, warehouse, "20261126T060000Z-lake03", verify=True)
    assert verified.changed == {FACT: {"rewritten": [month], "removed": []}}


def test_a_forced_run_commits_the_lake_with_every_unit_digested(lake):
    """`eujp run --force` (Settings.force) makes the publish's lake commit verify: the hand edit the run markers
    cannot see is found."""
    from eujp.config import Settings
    from eujp.publish import Deadline
    from eujp.run import commit_lake

    cfg, warehouse, store = lake
    commit_warehouse(cfg, warehouse, "20261124T060000Z-lake01")
    shutil.copyfile(cfg.catalog_file, store / CATALOG_FILE)  # published, as publish_run does after the commit
    month = _months(warehouse)[0]
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute(f"UPDATE {quote_ident(FACT)} SET value_eur = value_eur + 1 WHERE period_code = ?", [month])

    def settings(run_id: str, force: bool) -> Settings:
        return Settings(warehouse_path=warehouse, publish_uri=str(store), run_id=run_id, force=force)

    assert commit_lake(settings("20261125T060000Z-lake02", False), Deadline.after(600)).changed == {}
    forced = commit_lake(settings("20261126T060000Z-lake03", True), Deadline.after(600))
    assert forced.changed == {FACT: {"rewritten": [month], "removed": []}}


def test_a_lake_committed_before_the_run_markers_is_digested_whole_once_then_by_marker(lake, monkeypatch):

    cfg, warehouse, _ = lake
    commit_warehouse(cfg, warehouse, "20261124T060000Z-lake01")
    conn = duckdb.connect()
    attach(conn, cfg)
    conn.execute(f"ALTER TABLE {ALIAS}.eujp_meta.partitions DROP COLUMN run_marker")  # as an older commit left it
    conn.close()
    digested = recorded_digests(monkeypatch)
    second = commit_warehouse(cfg, warehouse, "20261125T060000Z-lake02")
    assert second.changed == {}  # the same rows: nothing rewritten, the markers recorded
    assert f"wh.main.{quote_ident(FACT)}" in digested
    digested.clear()
    add_month(warehouse, "2031-01")
    third = commit_warehouse(cfg, warehouse, "20261126T060000Z-lake03")
    assert third.changed == {FACT: {"rewritten": ["2031-01"], "removed": []}}
    assert f"wh.main.{quote_ident(FACT)}" not in digested


def _months(warehouse: Path) -> list[str]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return [m for (m,) in conn.execute(f"SELECT DISTINCT period_code FROM {quote_ident(FACT)} "
                                           "ORDER BY 1").fetchall()]


def test_a_table_whose_columns_changed_is_written_again_whole_and_the_others_are_left(lake):
    cfg, warehouse, _ = lake
    first = commit_warehouse(cfg, warehouse, "20261124T060000Z-lake01")
    other = next(t.name for t in ALL_TABLES if t.is_fact and t.name != FACT)
    with duckdb.connect(str(warehouse)) as conn:  # a column declared since: the warehouse has it, the lake not yet
        conn.execute(f"ALTER TABLE {quote_ident(FACT)} ADD COLUMN note VARCHAR DEFAULT 'added'")
        rows = conn.execute(f"SELECT count(*) FROM {quote_ident(FACT)}").fetchone()[0]
    second = commit_warehouse(cfg, warehouse, "20261125T060000Z-lake02")
    assert set(second.changed) == {FACT}  # every other table is as the first commit wrote it
    assert second.changed[FACT]["removed"] == []
    assert len(second.changed[FACT]["rewritten"]) == len(second.digests[FACT])  # every month, the table is new
    conn = reader(cfg)
    t = f"{ALIAS}.{quote_ident(FACT)}"
    assert conn.execute(f"SELECT count(*), count(*) FILTER (WHERE note = 'added') FROM {t}").fetchone() == (rows, rows)
    # the snapshot before still reads the old table, without the column
    old = [r[0] for r in conn.execute(f"DESCRIBE SELECT * FROM {t} AT (VERSION => {first.snapshot_id})").fetchall()]
    assert "note" not in old and "value_eur" in old
    assert conn.execute(f"SELECT count(*) FROM {ALIAS}.{quote_ident(other)}").fetchone()[0] > 0


def test_a_retried_commit_of_the_same_run_adds_no_snapshot(lake):
    cfg, warehouse, store = lake
    first = commit_warehouse(cfg, warehouse, "20261124T060000Z-lake01")
    files = data_files(store)
    again = commit_warehouse(cfg, warehouse, "20261124T060000Z-lake01")
    assert (again.snapshot_id, again.new, again.changed) == (first.snapshot_id, False, {})
    assert data_files(store) == files
    # another run with nothing changed is still a snapshot of its own (it names the run), writing no table
    other = commit_warehouse(cfg, warehouse, "20261125T060000Z-lake02")
    assert other.snapshot_id == first.snapshot_id + 1 and other.changed == {}
    assert {f for f in data_files(store) - files if f.startswith("lake/main/")} == set()


def test_the_published_catalog_is_what_latest_json_names_and_attaches_read_only(lake, tmp_path):
    cfg, warehouse, store_dir = lake
    store = open_store(str(store_dir))
    commit = commit_warehouse(cfg, warehouse, "20261124T060000Z-lake01")
    catalog = tmp_path / "frozen.ducklake"
    shutil.copyfile(cfg.catalog_file, catalog)
    publish_run(store, run_id="20261124T060000Z-lake01", warehouse_path=warehouse, work_dir=tmp_path / "work",
                lake_catalog=catalog,
                manifest_without_checksums={"run_id": "20261124T060000Z-lake01", "status": "success",
                                            "table_rows": {}, "sources": {}, "validation": {}, "audit": {},
                                            "lake": commit.manifest_entry()})
    pointer = read_latest_pointer(store)
    assert pointer["lake"]["snapshot_id"] == commit.snapshot_id and pointer["lake"]["catalog_key"] == CATALOG_FILE
    manifest = json.loads(store.get_bytes(pointer["manifest"]))
    assert manifest["lake"] == pointer["lake"]
    published = LakeConfig(str(store_dir / CATALOG_FILE), cfg.data_path, store_dir / CATALOG_FILE)
    conn = reader(published)
    assert conn.execute(f"SELECT count(*) FROM {ALIAS}.mart_claims AT (VERSION => {commit.snapshot_id})"
                        ).fetchone() == (8,)
    with pytest.raises(duckdb.Error, match="read-only|read only"):
        conn.execute(f"DELETE FROM {ALIAS}.mart_claims")


def _publish_pointer(store, run_id: str, snapshot: int, *, latest: bool) -> None:
    """What publish_run leaves for a run, as far as retention reads it: its manifest and (the newest) latest.json."""
    manifest = {"run_id": run_id, "lake": {"snapshot_id": snapshot}}
    store.put_bytes(f"runs/{run_id}/manifest.json", json.dumps(manifest).encode())
    if latest:
        store.put_bytes("latest.json", json.dumps({"run_id": run_id, "prefix": f"runs/{run_id}",
                                                   "lake": {"snapshot_id": snapshot}}).encode())


def test_maintenance_expires_merges_and_cleans_up_but_keeps_what_latest_and_retained_runs_need(lake, tmp_path):
    cfg, warehouse, store_dir = lake
    store = open_store(str(store_dir))
    month = "2031-01"
    add_month(warehouse, month)
    snapshots = []
    for day, factor in zip(range(24, 28), (1.0, 1.5, 2.0, 3.0), strict=True):
        if factor != 1.0:
            revise(warehouse, month, factor, f"202611{day}T050000Z-revise")
        snapshots.append(commit_warehouse(cfg, warehouse, f"202611{day}T060000Z-keep{day}").snapshot_id)
    s1, s2, s3, s4 = snapshots
    # runs s2 (retained, under runs/) and s4 (latest.json) are published; s1 and s3 were pruned from runs/
    _publish_pointer(store, "20261125T060000Z-keep25", s2, latest=False)
    _publish_pointer(store, "20261127T060000Z-keep27", s4, latest=True)
    assert protected_snapshots(store) == {s2, s4}
    query = f"SELECT sum(value_eur), count(*) FROM {ALIAS}.{quote_ident(FACT)} AT (VERSION => {{}})"
    conn = reader(cfg)
    expected = {s: conn.execute(query.format(s)).fetchone() for s in (s2, s4)}
    conn.close()
    files_before = data_files(store_dir)

    later = datetime.now(UTC) + timedelta(days=60)  # every snapshot is older than 30 days by then
    result = maintain(cfg, store, keep_days=30, grace_hours=0, now=later, work_dir=tmp_path / "m")
    assert result.expired == [0, s1, s3] and result.protected == [s2, s4]
    assert result.deleted_files  # the files only s1 and s3 read (the month's older versions)
    assert all(not (Path(f)).exists() for f in result.deleted_files)
    assert len(data_files(store_dir)) < len(files_before)
    conn = reader(cfg)
    for snapshot, rows in expected.items():  # the kept snapshots read the same rows, every file of theirs is there
        assert conn.execute(query.format(snapshot)).fetchone() == rows
    for gone in (s1, s3):
        with pytest.raises(duckdb.Error, match="No snapshot found"):
            conn.execute(query.format(gone)).fetchone()
    conn.close()
    # the maintained catalog was published (readers attach this one)
    assert (store_dir / CATALOG_FILE).read_bytes() == cfg.catalog_file.read_bytes()
    # and the next run commits on top of it
    revise(warehouse, month, 0.5, "20261128T050000Z-revise")
    assert commit_warehouse(cfg, warehouse, "20261128T060000Z-keep28").snapshot_id > result.snapshot_id - 1


def test_maintenance_without_a_pointer_keeps_the_newest_snapshot(lake, tmp_path):
    cfg, warehouse, store_dir = lake
    only = commit_warehouse(cfg, warehouse, "20261124T060000Z-lake01").snapshot_id
    result = maintain(cfg, open_store(str(store_dir)), keep_days=0, grace_hours=0,
                      now=datetime.now(UTC) + timedelta(days=1), work_dir=tmp_path / "m")
    assert only not in result.expired
    assert reader(cfg).execute(f"SELECT count(*) FROM {ALIAS}.mart_claims").fetchone() == (8,)


def test_a_lake_that_cannot_be_attached_is_a_clear_error(lake, tmp_path):
    cfg, warehouse, _ = lake
    commit_warehouse(cfg, warehouse, "20261124T060000Z-lake01")
    moved = LakeConfig(cfg.catalog, str(tmp_path / "elsewhere") + "/", cfg.catalog_file)
    with pytest.raises(LakeError, match="cannot attach the lake: its catalog .* keeps its data files under "
                       f"{re.escape(cfg.data_path)}, but the publish target puts them under "
                       f"{re.escape(moved.data_path)}: the published folder moved or EUJP_PUBLISH_URI changed"):
        commit_warehouse(moved, warehouse, "20261125T060000Z-lake02")


def test_lake_maintain_of_a_moved_published_folder_says_it_moved(lake, tmp_path):
    from typer.testing import CliRunner

    from flows.cli import app

    cfg, warehouse, store_dir = lake
    commit_warehouse(cfg, warehouse, "20261124T060000Z-lake01")
    moved = store_dir.rename(tmp_path / "moved")
    result = CliRunner().invoke(app, ["lake-maintain", "--warehouse", str(warehouse), "--publish", str(moved)])
    assert result.exit_code == 1
    assert "the published folder moved or EUJP_PUBLISH_URI changed" in result.output
    assert "OVERRIDE_DATA_PATH" not in result.output  # DuckLake's own advice, which eujp has no setting for
    assert cfg.catalog_file.exists()  # nothing set aside: maintenance never starts a new lake


def test_eujp_lake_maintain_runs_the_maintenance_with_the_run_lock(lake, monkeypatch):
    from typer.testing import CliRunner

    from flows.cli import app

    cfg, warehouse, store_dir = lake
    store = open_store(str(store_dir))
    commit = commit_warehouse(cfg, warehouse, "20261124T060000Z-lake01")
    _publish_pointer(store, "20261124T060000Z-lake01", commit.snapshot_id, latest=True)
    result = CliRunner().invoke(app, ["lake-maintain", "--warehouse", str(warehouse), "--publish", str(store_dir),
                                      "--keep-days", "0", "--grace-hours", "0"])
    assert result.exit_code == 0, result.output
    assert f"kept [{commit.snapshot_id}] for latest.json" in result.output
    assert "catalog published as lake.ducklake" in result.output
    assert reader(cfg).execute(f"SELECT count(*) FROM {ALIAS}.mart_claims AT (VERSION => {commit.snapshot_id})"
                               ).fetchone() == (8,)
    from eujp.lock import warehouse_lock

    with warehouse_lock(warehouse):  # a run holds the lock: maintenance fails at once, naming it
        result = CliRunner().invoke(app, ["lake-maintain", "--warehouse", str(warehouse), "--publish",
                                          str(store_dir)])
    assert result.exit_code == 1 and "lock" in result.output


def test_lake_maintain_of_a_warehouse_that_does_not_exist_is_refused_and_creates_nothing(lake, tmp_path):
    """A mistyped --warehouse had the published catalog adopted beside it (a folder and a catalog of a warehouse
    that does not exist), then maintained and published from there. Now: exit 2 naming the path, nothing
    written; with nothing published yet, nothing to maintain (exit 0), as for an existing warehouse."""
    from typer.testing import CliRunner

    from flows.cli import app

    cfg, warehouse, store_dir = lake
    store = open_store(str(store_dir))
    commit = commit_warehouse(cfg, warehouse, "20261124T060000Z-lake01")
    store.put_file(CATALOG_FILE, cfg.catalog_file)
    _publish_pointer(store, "20261124T060000Z-lake01", commit.snapshot_id, latest=True)
    published = (store_dir / CATALOG_FILE).read_bytes()
    typo = tmp_path / "wharehouse" / "trial.duckdb"
    result = CliRunner().invoke(app, ["lake-maintain", "--warehouse", str(typo), "--publish", str(store_dir)])
    assert result.exit_code == 2, result.output
    assert f"no warehouse at {typo}" in " ".join(result.output.split())
    assert not typo.parent.exists() and (store_dir / CATALOG_FILE).read_bytes() == published
    empty = tmp_path / "empty-store"
    result = CliRunner().invoke(app, ["lake-maintain", "--warehouse", str(typo), "--publish", str(empty)])
    assert result.exit_code == 0 and "nothing to maintain yet" in result.output
    assert not typo.parent.exists()


def test_the_lake_upload_benchmark_counts_a_day_with_one_new_month(tmp_path, monkeypatch):
    from benchmarks.lake_upload import run, table

    monkeypatch.delenv("EUJP_LAKE_CATALOG", raising=False)
    result = run(years=1, rows_per_year=4000, seed=3, work=tmp_path)
    assert result["months"] == 12 and result["month_rows"] > 0
    first, day = result["first"], result["next_day"]
    assert first["lake"]["data_files"] >= 12  # a file per month (and the lake's bookkeeping)
    assert day["lake"]["partitions_rewritten"] == 1  # the new month only
    assert day["lake"]["objects"] <= 5 and day["lake"]["bytes"] < day["whole"]["bytes"]
    assert day["whole"]["objects"] == first["whole"]["objects"]  # the whole-file publish writes everything again
    ratio = day["lake"]["bytes"] / day["whole"]["bytes"]
    assert f"On the day with one new month the lake uploads {ratio:.1%} of the bytes" in table(result)


def test_a_catalog_whose_lake_is_not_published_at_the_target_is_set_aside(lake, tmp_path):
    from eujp.lake import replace_unpublished_catalog

    cfg, warehouse, store_dir = lake
    store = open_store(str(store_dir))
    commit_warehouse(cfg, warehouse, "20261124T060000Z-lake01")
    store.put_file(CATALOG_FILE, cfg.catalog_file)
    assert replace_unpublished_catalog(cfg, store) is None  # published here, same data path: keep it
    other = open_store(str(tmp_path / "other-target"))
    moved = LakeConfig(cfg.catalog, f"{(tmp_path / 'other-target').resolve()}/lake/", cfg.catalog_file)
    other.put_file(CATALOG_FILE, cfg.catalog_file)
    note = replace_unpublished_catalog(moved, other)  # another target's catalog
    assert note and "is not this target's" in note and not cfg.catalog_file.exists()
    shutil.rmtree(store_dir)  # the target was emptied: the next commit starts a new lake there
    first = commit_warehouse(cfg, warehouse, "20261125T060000Z-lake02")
    assert first.snapshot_id == 1 and len(first.changed) > 20
    assert replace_unpublished_catalog(cfg, open_store(str(store_dir))).endswith("a new lake starts")
    assert len(list(warehouse.parent.glob(f"{CATALOG_FILE}.replaced-*"))) == 2  # both kept


def test_a_retried_first_publish_keeps_the_lake_its_first_try_started(lake, monkeypatch):
    """A first publish that failed after its lake commit (here on a local ENOTDIR: a file where the run's
    folder goes) was retried twice, and each retry found the target without a published catalog, set the
    catalog aside (lake.ducklake.replaced-*) and wrote every table into the lake again. A local error is not
    retried now; and a retry of the same run keeps the lake its first try started: no file set aside, no data
    file written twice. Another run finding the target without a catalog still starts a new lake."""
    from types import SimpleNamespace

    from eujp.config import Settings
    from eujp.errors import PublishError, is_transient
    from eujp.run import publish
    from flows.tasks import publish_retry_condition

    cfg, warehouse, store_dir = lake
    monkeypatch.delenv("EUJP_LAKE_CATALOG", raising=False)
    settings = Settings(warehouse_path=warehouse, publish_uri=str(store_dir), run_id="20261124T060000Z-retry1")
    blocker = store_dir / "runs" / settings.run_id
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a folder")
    with pytest.raises(PublishError, match="Not a directory") as err:
        publish(settings, [], table_counts(warehouse), {"ok": True}, "success")
    assert not is_transient(err.value)
    assert publish_retry_condition()(SimpleNamespace(retry_delay_seconds=[5, 30]), SimpleNamespace(run_count=1),
                                     SimpleNamespace(data=err.value)) is False
    written = data_files(store_dir)
    assert written and cfg.catalog_file.exists() and not (store_dir / CATALOG_FILE).exists()

    blocker.unlink()
    publish(settings, [], table_counts(warehouse), {"ok": True}, "success")  # what a retry of the task does
    assert list(warehouse.parent.glob(f"{CATALOG_FILE}.replaced-*")) == []
    assert data_files(store_dir) == written
    assert read_latest_pointer(open_store(str(store_dir)))["run_id"] == settings.run_id
    assert (store_dir / CATALOG_FILE).exists()

    shutil.rmtree(store_dir)  # emptied: the next run (another id) starts a new lake there
    from eujp.lake import replace_unpublished_catalog

    assert replace_unpublished_catalog(cfg, open_store(str(store_dir)), "20261125T060000Z-retry2").endswith(
        "a new lake starts")


def test_a_small_single_file_leaves_the_facts_to_the_lake(lake, monkeypatch):
    from eujp.config import Settings
    from eujp.errors import PublishError
    from eujp.run import publish

    cfg, warehouse, store_dir = lake
    monkeypatch.setenv("EUJP_SINGLE_FILE", "small")
    monkeypatch.delenv("EUJP_LAKE_CATALOG", raising=False)
    counts = table_counts(warehouse)
    settings = Settings(warehouse_path=warehouse, publish_uri=str(store_dir), run_id="20261124T060000Z-small1")
    publish(settings, [], counts, {"ok": True}, "success")
    pointer = read_latest_pointer(open_store(str(store_dir)))
    manifest = json.loads((store_dir / pointer["manifest"]).read_text())
    facts = {t.name for t in ALL_TABLES if t.is_fact}
    with duckdb.connect(str(store_dir / "latest" / "warehouse.duckdb"), read_only=True) as conn:
        single = {r[0] for r in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert conn.execute("SELECT count(*) FROM mart_claims").fetchone() == (8,)
        comment = conn.execute("SELECT comment FROM duckdb_tables() WHERE table_name = 'mart_claims'").fetchone()[0]
    assert single == {t.name for t in ALL_TABLES} - facts and comment
    assert {p.stem for p in (store_dir / pointer["prefix"] / "parquet").iterdir()} == single
    for fact in facts:  # in the manifest with their rows (the audit's baseline), in the lake only
        assert manifest["tables"][fact] == {"rows": counts[fact], "parquet": None, "sha256": None,
                                            "lake_snapshot": pointer["lake"]["snapshot_id"]}
    conn = reader(LakeConfig(str(store_dir / CATALOG_FILE), cfg.data_path, store_dir / CATALOG_FILE))
    assert conn.execute(f"SELECT count(*) FROM {ALIAS}.{quote_ident(FACT)}").fetchone() == (counts[FACT],)
    # without the lake, a small single file would publish the facts nowhere: refused, nothing moves
    monkeypatch.setenv("EUJP_LAKE_CATALOG", "off")
    with pytest.raises(PublishError, match="EUJP_SINGLE_FILE=small publishes the facts in the lake only"):
        publish(settings.with_(run_id="20261125T060000Z-small2"), [], counts, {"ok": True}, "success")
    assert read_latest_pointer(open_store(str(store_dir)))["run_id"] == "20261124T060000Z-small1"


def _single_file(store_dir: Path) -> set[str]:
    with duckdb.connect(str(store_dir / "latest" / "warehouse.duckdb"), read_only=True) as conn:
        return {r[0] for r in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()}


def test_auto_leaves_the_fact_tables_over_the_row_limit_to_the_lake(lake, monkeypatch, caplog):
    """EUJP_SINGLE_FILE=auto (the default): the fact tables of more than EUJP_SINGLE_FILE_MAX_ROWS rows are in the
    lake only (not in the single file, nor its Parquet files; in the manifest with their rows and the lake
    snapshot); the derived tables (marts, built dimensions) of more than that are in the lake and in Parquet, not
    in the single file; the smaller ones and every other table are in both. `eujp query --published` reads them
    all."""
    from eujp.bi import open_warehouse
    from eujp.config import Settings
    from eujp.errors import EujpError
    from eujp.run import publish
    from eujp.schema.reference import REFERENCE_TABLES

    cfg, warehouse, store_dir = lake
    monkeypatch.delenv("EUJP_SINGLE_FILE", raising=False)
    monkeypatch.delenv("EUJP_LAKE_CATALOG", raising=False)
    counts = table_counts(warehouse)
    facts = {t.name for t in ALL_TABLES if t.is_fact}
    limit = min(counts[f] for f in facts)  # the smallest fact table stays, the larger ones go to the lake
    monkeypatch.setenv("EUJP_SINGLE_FILE_MAX_ROWS", str(limit))
    big = {f for f in facts if counts[f] > limit}
    assert big and FACT in big and facts - big
    seeds = {t.name for t in REFERENCE_TABLES}  # the curated reference seeds stay in the single file, whatever
    derived = {t.name for t in ALL_TABLES if t.rebuilt} - seeds
    assert any(counts[s] > limit for s in seeds)
    big_derived = {d for d in derived if counts[d] > limit}  # e.g. mart_claims (8 rows)
    assert big_derived and derived - big_derived and "mart_claims" in big_derived
    settings = Settings(warehouse_path=warehouse, publish_uri=str(store_dir), run_id="20261124T060000Z-auto01")
    with caplog.at_level("INFO", logger="eujp"):
        publish(settings, [], counts, {"ok": True}, "success")
    pointer = read_latest_pointer(open_store(str(store_dir)))
    manifest = json.loads((store_dir / pointer["manifest"]).read_text())
    single = _single_file(store_dir)
    assert single == {t.name for t in ALL_TABLES} - big - big_derived
    assert {p.stem for p in (store_dir / pointer["prefix"] / "parquet").iterdir()} == {t.name for t in ALL_TABLES} - big
    claims = duckdb.sql(f"SELECT count(*) FROM '{store_dir / pointer['prefix'] / 'parquet' / 'mart_claims.parquet'}'")
    assert claims.fetchone() == (8,)  # the Parquet file of a mart left out of the single file: what the report links
    assert (store_dir / pointer["prefix"] / "warehouse.duckdb").read_bytes() == \
        (store_dir / "latest" / "warehouse.duckdb").read_bytes()
    snapshot = pointer["lake"]["snapshot_id"]
    for name in big:  # listed with their rows, and where they are: the lake's snapshot
        assert manifest["tables"][name] == {"rows": counts[name], "parquet": None, "sha256": None,
                                            "lake_snapshot": snapshot}
    from eujp.marts import MODELS

    by_part = {n for n in big_derived if n in MODELS and MODELS[n].partition is not None}  # a file per value
    for name in single | big_derived:
        assert manifest["tables"][name]["rows"] == counts[name]
        expected = f"parquet/{name}/" if name in by_part else f"parquet/{name}.parquet"
        assert manifest["tables"][name]["parquet"] == expected
    assert manifest["single_file"] == {"setting": "auto", "max_rows": limit,
                                       "tables": [t.name for t in ALL_TABLES if t.name in single]}
    conn = reader(LakeConfig(str(store_dir / CATALOG_FILE), cfg.data_path, store_dir / CATALOG_FILE))
    for name in facts:  # every fact table is in the lake, the small ones too
        assert conn.execute(f"SELECT count(*) FROM {ALIAS}.{quote_ident(name)}").fetchone() == (counts[name],)
    assert f"in the lake only (snapshot {snapshot}): " in caplog.text and f"{FACT} ({counts[FACT]:,} rows)" in caplog.text
    assert f"not in the single warehouse.duckdb, in the lake (snapshot {snapshot}) and in Parquet" in caplog.text
    assert f"mart_claims ({counts['mart_claims']:,} rows)" in caplog.text
    # `eujp query --published` (eujp.bi.open_warehouse) reads a lake-only table by name, from the run's snapshot
    with open_warehouse(str(store_dir)) as conn:
        for name in facts | big_derived:
            assert conn.execute(f"SELECT count(*) FROM {quote_ident(name)}").fetchone() == (counts[name],)
        assert conn.execute("SELECT count(*) FROM mart_claims").fetchone() == (8,)
    # so does a run's own file (`eujp query --warehouse .../runs/RUN/warehouse.duckdb`), from its run's manifest
    with open_warehouse(str(store_dir / "runs" / "20261124T060000Z-auto01" / "warehouse.duckdb")) as conn:
        assert conn.execute(f"SELECT count(*) FROM {quote_ident(FACT)}").fetchone() == (counts[FACT],)
    add_month(warehouse, "2031-01")  # the next commit moves the published lake, not this reader's snapshot
    commit_warehouse(cfg, warehouse, "20261125T060000Z-auto01")
    (store_dir / CATALOG_FILE).write_bytes(cfg.catalog_file.read_bytes())
    with open_warehouse(str(store_dir)) as conn:
        assert conn.execute(f"SELECT count(*) FROM {quote_ident(FACT)}").fetchone() == (counts[FACT],)
    (store_dir / CATALOG_FILE).unlink()
    with pytest.raises(EujpError, match=f"{FACT}.* are in its lake only, which cannot be attached .*to read them: "
                                        f"ATTACH 'ducklake:{store_dir}/lake.ducklake' AS lake \\(READ_ONLY, "
                                        f"DATA_PATH '{store_dir.resolve()}/lake/', OVERRIDE_DATA_PATH true, "
                                        f"SNAPSHOT_VERSION {snapshot}\\)"):
        open_warehouse(str(store_dir))


def _fact_figures(conn: duckdb.DuckDBPyConnection, table: str) -> tuple[int, float]:
    return conn.execute(f"SELECT count(*), round(sum(value_eur), 2) FROM {table}").fetchone()


def test_a_published_folder_copied_elsewhere_reads_its_own_lake(lake, monkeypatch, tmp_path):
    """The catalog records the absolute data path of the target the writer published to: a published folder
    copied to another path (a BI host's copy, a volume mounted elsewhere) read the writer's files, or failed
    ("Cannot open file") once they were gone. `eujp.bi.open_warehouse` and `eujp query --published` attach the lake
    with the data files under the folder they were given (DATA_PATH, OVERRIDE_DATA_PATH): with the original's
    files altered, the copy reads its own rows; with the original moved away, the same; time travel to the first
    run's snapshot goes through the same data path; and the writer's next run to its own target goes on as before."""
    from typer.testing import CliRunner

    from eujp.bi import open_warehouse
    from eujp.config import Settings
    from eujp.run import publish
    from flows.cli import app

    cfg, warehouse, store_dir = lake
    monkeypatch.delenv("EUJP_LAKE_CATALOG", raising=False)
    monkeypatch.setenv("EUJP_SINGLE_FILE", "small")  # every fact table in the lake only
    fact = quote_ident(FACT)
    first_counts = table_counts(warehouse)
    publish(Settings(warehouse_path=warehouse, publish_uri=str(store_dir), run_id="20261124T060000Z-copy01"), [],
            first_counts, {"ok": True}, "success")
    first = read_latest_pointer(open_store(str(store_dir)))["lake"]["snapshot_id"]
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        then = _fact_figures(conn, fact)
    add_month(warehouse, "2031-01")
    publish(Settings(warehouse_path=warehouse, publish_uri=str(store_dir), run_id="20261125T060000Z-copy01"), [],
            table_counts(warehouse), {"ok": True}, "success")
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        now = _fact_figures(conn, fact)
    assert now[0] > then[0]
    with duckdb.connect(str(store_dir / CATALOG_FILE), read_only=True) as catalog:  # the writer's absolute path
        assert catalog.execute("SELECT value FROM ducklake_metadata WHERE key = 'data_path'").fetchone() == \
            (f"{store_dir.resolve()}/lake/",)

    copy = tmp_path / "bi-host" / "mnt" / "eujp"
    shutil.copytree(store_dir, copy)
    # the original stays, its files of the fact table altered: the copy must not read them
    originals = sorted((store_dir / "lake" / "main" / FACT).rglob("*.parquet"))
    assert originals
    for path in originals:
        altered = path.with_name(path.name + ".altered")
        duckdb.execute(f"COPY (SELECT * REPLACE (value_eur * 1000 AS value_eur) FROM read_parquet('{path}')) "
                       f"TO '{altered}' (FORMAT parquet)")
        altered.replace(path)

    def read_copy() -> None:
        with open_warehouse(str(copy)) as conn:
            assert _fact_figures(conn, fact) == now
            # time travel through the same data path: the first run's snapshot
            assert _fact_figures(conn, f"lake.main.{fact} AT (VERSION => {first})") == then
        with open_warehouse(str(copy / "runs" / "20261124T060000Z-copy01" / "warehouse.duckdb")) as conn:
            assert _fact_figures(conn, fact) == then
        monkeypatch.setenv("EUJP_PUBLISH_URI", str(copy))
        result = CliRunner().invoke(app, ["query", "--published", "--format", "csv",
                                          f"SELECT count(*) AS n FROM {fact}"])
        assert result.exit_code == 0, result.output
        assert result.output.splitlines() == ["n", str(now[0])]

    read_copy()
    moved = store_dir.rename(tmp_path / "moved-away")  # the original gone from its path
    read_copy()

    # the writer's runs to its own target are unaffected: the same lake, its next snapshot
    moved.rename(store_dir)
    add_month(warehouse, "2031-02")
    publish(Settings(warehouse_path=warehouse, publish_uri=str(store_dir), run_id="20261126T060000Z-copy01"), [],
            table_counts(warehouse), {"ok": True}, "success")
    assert read_latest_pointer(open_store(str(store_dir)))["lake"]["snapshot_id"] > first + 1
    assert not list(cfg.catalog_file.parent.glob(f"{CATALOG_FILE}.replaced-*"))


def record_month_revisions(warehouse: Path, month: str, run_id: str) -> int:
    """A run that revises every figure of `month` of the monthly fact: its revisions recorded in etl_revisions
    as the loader records them (eujp.warehouse.record_revisions). Returns the revisions recorded."""
    from eujp.warehouse import record_revisions

    with duckdb.connect(str(warehouse)) as conn:
        cols = ", ".join(quote_ident(c) for c in MONTHLY.table.business_columns)
        conn.execute(f"CREATE TEMP TABLE _revised AS SELECT * REPLACE (value_eur * 2 AS value_eur) FROM "
                     f"(SELECT {cols} FROM {quote_ident(FACT)} WHERE period_code = ?)", [month])
        return record_revisions(conn, MONTHLY.table, "_revised", run_id=run_id, at=datetime.now(UTC),
                                source=MONTHLY.name)


def test_a_run_ledger_over_the_row_limit_is_in_the_lake_only_and_compared_by_its_runs(lake, monkeypatch):
    """A run ledger grows with the data (a full revision records a row per revised value): past
    EUJP_SINGLE_FILE_MAX_ROWS rows, etl_revisions is published in the lake only, like a large fact table (not in
    the single file nor in Parquet, which every later run would upload again; in the manifest with its rows and
    the lake snapshot; read by name by `eujp query --published`), and the next commit compares it by its runs'
    row counts: only the new run's rows are digested, not every revision ever recorded."""
    from eujp.bi import open_warehouse
    from eujp.config import Settings
    from eujp.run import publish

    cfg, warehouse, store_dir = lake
    monkeypatch.delenv("EUJP_SINGLE_FILE", raising=False)
    monkeypatch.delenv("EUJP_LAKE_CATALOG", raising=False)
    months = _months(warehouse)
    first_run = "20261124T060000Z-ledger"
    revised = record_month_revisions(warehouse, months[0], first_run)
    counts = table_counts(warehouse)
    assert revised > 0 and counts["etl_revisions"] >= revised
    assert counts["etl_rejected_rows"] < counts["etl_revisions"]  # the other ledger stays under the limit
    monkeypatch.setenv("EUJP_SINGLE_FILE_MAX_ROWS", str(counts["etl_revisions"] - 1))
    publish(Settings(warehouse_path=warehouse, publish_uri=str(store_dir), run_id=first_run), [], counts,
            {"ok": True}, "success")
    pointer = read_latest_pointer(open_store(str(store_dir)))
    manifest = json.loads((store_dir / pointer["manifest"]).read_text())
    single = _single_file(store_dir)
    assert "etl_revisions" not in single and "etl_rejected_rows" in single
    assert not (store_dir / pointer["prefix"] / "parquet" / "etl_revisions.parquet").exists()
    assert (store_dir / pointer["prefix"] / "parquet" / "etl_rejected_rows.parquet").exists()
    assert manifest["tables"]["etl_revisions"] == {"rows": counts["etl_revisions"], "parquet": None, "sha256": None,
                                                   "lake_snapshot": pointer["lake"]["snapshot_id"]}
    assert "etl_revisions" not in manifest["single_file"]["tables"]
    with open_warehouse(str(store_dir)) as conn:  # read by name from the run's lake snapshot
        assert conn.execute("SELECT count(*), count(*) FILTER (WHERE run_id = ?) FROM etl_revisions",
                            [first_run]).fetchone() == (counts["etl_revisions"], revised)

    digested = recorded_digests(monkeypatch)
    second_run = "20261125T060000Z-ledger"
    record_month_revisions(warehouse, months[1], second_run)
    commit = commit_warehouse(cfg, warehouse, second_run)
    assert commit.changed["etl_revisions"] == {"rewritten": [second_run], "removed": []}
    of_ledger = [s for s in digested if quote_ident("etl_revisions") in s]
    assert len(of_ledger) == 1 and f"'{second_run}'" in of_ledger[0] and first_run not in of_ledger[0]
    # the digest it kept for the first run's rows is the one a full digest gives
    assert commit.digests["etl_revisions"] == partition_digests(reader(cfg), f"{ALIAS}.main.etl_revisions", "run_id")


def test_auto_without_the_lake_keeps_every_table_in_the_single_file(lake, monkeypatch, caplog):
    from eujp.config import Settings
    from eujp.errors import PublishError
    from eujp.run import publish

    _, warehouse, store_dir = lake
    monkeypatch.delenv("EUJP_SINGLE_FILE", raising=False)
    monkeypatch.setenv("EUJP_SINGLE_FILE_MAX_ROWS", "10")
    monkeypatch.setenv("EUJP_LAKE_CATALOG", "off")
    counts = table_counts(warehouse)
    settings = Settings(warehouse_path=warehouse, publish_uri=str(store_dir), run_id="20261124T060000Z-auto02")
    with caplog.at_level("INFO", logger="eujp"):
        publish(settings, [], counts, {"ok": True}, "success")
    pointer = read_latest_pointer(open_store(str(store_dir)))
    manifest = json.loads((store_dir / pointer["manifest"]).read_text())
    assert _single_file(store_dir) == {t.name for t in ALL_TABLES}
    assert all(manifest["tables"][t.name]["parquet"] == f"parquet/{t.name}.parquet" for t in ALL_TABLES)
    assert manifest["lake"] is None and not (store_dir / CATALOG_FILE).exists()
    assert "EUJP_SINGLE_FILE=auto, fact tables of at most 10 rows (EUJP_SINGLE_FILE_MAX_ROWS), but the lake is " \
           "off (EUJP_LAKE_CATALOG=off): every table is published in the single warehouse.duckdb" in caplog.text
    # a bad setting publishes nothing (eujp check names it first: tests/unit/test_lake_config.py)
    monkeypatch.setenv("EUJP_SINGLE_FILE_MAX_ROWS", "a million")
    with pytest.raises(PublishError, match="EUJP_SINGLE_FILE_MAX_ROWS must be a whole number of rows.*got 'a "
                                           "million'.*nothing was published, latest was not moved"):
        publish(settings.with_(run_id="20261125T060000Z-auto03"), [], counts, {"ok": True}, "success")
    assert read_latest_pointer(open_store(str(store_dir)))["run_id"] == "20261124T060000Z-auto02"


def test_a_mart_rebuilt_by_year_is_compared_and_rewritten_by_year(lake):
    """A partitioned mart (its `partition_by`: a day rebuilds the years it touched) is kept in the lake by that
    column: one folder per year, and a changed year rewrites that year's files only."""
    from eujp.marts import MODELS

    cfg, warehouse, store = lake
    mart = next(name for name, model in MODELS.items()  # one whose figures the test can change
                if model.partition is not None and "value_eur" in model.table.all_columns)
    column = MODELS[mart].partition.column
    first = commit_warehouse(cfg, warehouse, "20261124T060000Z-lake01")
    with duckdb.connect(str(warehouse)) as conn:
        years = sorted(r[0] for r in conn.execute(f"SELECT DISTINCT {column} FROM {quote_ident(mart)}").fetchall())
        assert years, f"the bundled warehouse has no {mart} rows"
        conn.execute(f"UPDATE {quote_ident(mart)} SET value_eur = value_eur + 1 "
                     f"WHERE {column} = ?", [years[0]])
    folders = {f.split("/")[3] for f in data_files(store) if f.startswith(f"lake/main/{mart}/")}
    assert folders == {f"{column}={y}" for y in years}
    before = data_files(store)
    second = commit_warehouse(cfg, warehouse, "20261125T060000Z-lake02")
    assert second.snapshot_id == first.snapshot_id + 1
    assert second.changed == {mart: {"rewritten": [str(years[0])], "removed": []}}
    new = {f for f in data_files(store) - before if f.startswith(f"lake/main/{mart}/")}
    assert new and all(f"/{column}={years[0]}/" in f for f in new)


def test_the_report_is_drawn_while_the_lake_commits(lake, monkeypatch):
    """publish draws the run report (matplotlib) on a thread while the lake commit runs (the report below
    waits, up to 10 s, for the commit to begin: one after the other, it would not see it), and publishes it."""
    from support.events import EventLog

    import eujp.run
    from eujp.config import Settings

    _, warehouse, store_dir = lake
    monkeypatch.delenv("EUJP_LAKE_CATALOG", raising=False)
    events = EventLog()
    real_report, real_commit = eujp.run.run_report, eujp.run.commit_lake

    def drawing(*args, **kwargs):
        events.note("report start")
        events.wait_for(lambda seen: "commit start" in seen)
        path = real_report(*args, **kwargs)
        events.note("report end")
        return path

    def committing(*args, **kwargs):
        events.note("commit start")
        commit = real_commit(*args, **kwargs)
        events.note("commit end")
        return commit

    monkeypatch.setattr(eujp.run, "run_report", drawing)
    monkeypatch.setattr(eujp.run, "commit_lake", committing)
    settings = Settings(warehouse_path=warehouse, publish_uri=str(store_dir), run_id="20261124T060000Z-draw01")
    eujp.run.publish(settings, [], table_counts(warehouse), {"ok": True}, "success")
    assert events.index("report start") < events.index("commit end"), events  # they overlapped
    assert events.index("commit start") < events.index("report end"), events
    pointer = read_latest_pointer(open_store(str(store_dir)))
    assert "EU–Japan" in (store_dir / pointer["prefix"] / "report.html").read_text(encoding="utf-8")


def test_a_large_partitioned_mart_is_published_a_file_per_year_and_a_day_copies_the_years_it_left(lake, monkeypatch):
    """With EUJP_SINGLE_FILE=auto, a mart rebuilt by partition and over the row limit (mart_product_trade) is
    published as a Parquet file per period_year, which the report links; the next run whose mart changed in one
    year exports that year and copies the other years' files from the previous run (same sha256), with the
    digests the lake commit computed."""
    from eujp.config import Settings
    from eujp.run import publish

    _, warehouse, store_dir = lake
    monkeypatch.delenv("EUJP_SINGLE_FILE", raising=False)
    monkeypatch.delenv("EUJP_LAKE_CATALOG", raising=False)
    monkeypatch.setenv("EUJP_SINGLE_FILE_MAX_ROWS", "1")
    with duckdb.connect(str(warehouse)) as conn:  # a second year of the mart, as a rebuild of 2024 would give
        conn.execute("INSERT INTO mart_product_trade SELECT * REPLACE (period_year - 1 AS period_year) "
                     "FROM mart_product_trade")
        years = [r[0] for r in conn.execute("SELECT DISTINCT period_year FROM mart_product_trade ORDER BY 1").fetchall()]
    assert len(years) == 2
    import eujp.publish
    from eujp.storage import LocalObjectStore

    digested_by_publish, copied = [], []
    digests, copy = eujp.publish.partition_digests, LocalObjectStore.copy

    def digested(conn, source, unit):  # what the publish would compute without the lake commit's digests
        digested_by_publish.append(source)
        return digests(conn, source, unit)

    def copied_by_store(store, src_key, dst_key):
        copied.append(dst_key)
        return copy(store, src_key, dst_key)

    monkeypatch.setattr(eujp.publish, "partition_digests", digested)
    monkeypatch.setattr(LocalObjectStore, "copy", copied_by_store)

    def run(run_id: str) -> tuple[dict, str]:
        publish(Settings(warehouse_path=warehouse, publish_uri=str(store_dir), run_id=run_id), [],
                table_counts(warehouse), {"ok": True}, "success")
        pointer = read_latest_pointer(open_store(str(store_dir)))
        manifest = json.loads((store_dir / pointer["manifest"]).read_text())
        report = (store_dir / pointer["prefix"] / "report.html").read_text(encoding="utf-8")
        return manifest["tables"]["mart_product_trade"], report

    first, report = run("20261124T060000Z-part01")
    assert first["parquet"] == "parquet/mart_product_trade/" and sorted(first["parts"]) == [str(y) for y in years]
    for year in years:
        assert f'href="parquet/mart_product_trade/period_year={year}.parquet"' in report
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("UPDATE mart_product_trade SET value_eur = value_eur + 1 WHERE period_year = ?", [years[-1]])
    copied.clear()
    second, _ = run("20261125T060000Z-part02")
    assert [k for k in copied if "/parquet/mart_product_trade/" in k] == [
        f"runs/20261125T060000Z-part02/parquet/mart_product_trade/period_year={years[0]}.parquet"]
    kept, changed = str(years[0]), str(years[-1])
    assert second["parts"][kept]["sha256"] == first["parts"][kept]["sha256"]
    assert second["parts"][changed]["sha256"] != first["parts"][changed]["sha256"]
    assert not digested_by_publish  # the lake commit's digests of the same warehouse were reused
    for year, part in second["parts"].items():  # every file is in the run's own prefix, with the year's rows
        path = store_dir / "runs" / "20261125T060000Z-part02" / part["key"]
        with duckdb.connect(str(warehouse), read_only=True) as conn:
            want = conn.execute("SELECT sum(value_eur), count(*) FROM mart_product_trade WHERE period_year = ?",
                                [int(year)]).fetchone()
            assert conn.execute("SELECT sum(value_eur), count(*) FROM read_parquet(?)", [str(path)]).fetchone() == want


def published_parquet(store_dir: Path, prefix: str, entry: dict) -> str | None:
    """The relation of a table's published Parquet (one file, or a file per partition), as the manifest
    `entry` names it under the run's `prefix`; None when the table is in the lake only."""
    if entry.get("parts"):
        keys = [part["key"] for part in entry["parts"].values()]
    elif entry.get("parquet"):
        keys = [entry["parquet"]]
    else:
        return None
    return "read_parquet([" + ", ".join(f"'{store_dir / prefix / key}'" for key in keys) + "])"


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(days=comext_days())
def test_after_any_days_the_lake_holds_every_table_as_the_warehouse_has_it(bundled_warehouse, days):
    """A property test: days drawn by hypothesis (tests/support/comext_days.py: Comext facts of new months, a
    new year, revised figures, new products and partners, sometimes CN8 labels; the models built as a run
    builds them), each committed to the lake. After each commit the lake's snapshot holds every table exactly
    as the warehouse has it, and the fact's rewritten months are months the day wrote (none removed)."""
    with tempfile.TemporaryDirectory() as tmp:
        warehouse = Path(tmp) / "var" / "warehouse.duckdb"
        warehouse.parent.mkdir()
        shutil.copyfile(bundled_warehouse, warehouse)
        cfg = lake_config(warehouse, str(Path(tmp) / "objectstore"), env={})
        commit_warehouse(cfg, warehouse, "20251231T060000Z-day000")
        for n, day in enumerate(days, start=1):
            with duckdb.connect(str(warehouse)) as conn:
                run_day(conn, day, n)
                months = {r[0] for r in conn.execute(f"SELECT DISTINCT period_code FROM {quote_ident(FACT)} "
                                                     "WHERE run_id = ?", [day_run_id(n)]).fetchall()}
            commit = commit_warehouse(cfg, warehouse, day_run_id(n))
            fact = commit.changed.get(FACT, {"rewritten": [], "removed": []})
            assert set(fact["rewritten"]) <= months and fact["removed"] == [], (n, fact, months)
            conn = reader(cfg)
            conn.execute(f"ATTACH '{warehouse}' AS wh (READ_ONLY)")
            for table in ALL_TABLES:
                t = quote_ident(table.name)
                differ = rows_differing(conn, f"{ALIAS}.{t}", f"wh.{t}")
                assert differ == 0, f"day {n}: {table.name} differs from the warehouse in {differ} row(s)"
            conn.close()


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(days=comext_days())
def test_after_any_days_what_is_published_is_what_the_warehouse_holds(bundled_warehouse, days):
    """A property test of the whole publish (eujp.run.publish: lake commit, Parquet, single file, manifest,
    latest.json) over days drawn as above, with every table over EUJP_SINGLE_FILE_MAX_ROWS (1), so that the
    partitioned marts are published a file per year and a day copies the years it left from the run before.
    After each day, every table the manifest names, read back from its published Parquet and from the lake
    snapshot latest.json names, holds exactly the warehouse's rows; and so does the single file."""
    from eujp.config import Settings
    from eujp.run import publish

    env = {"EUJP_SINGLE_FILE": "auto", "EUJP_SINGLE_FILE_MAX_ROWS": "1", "EUJP_LAKE_CATALOG": ""}
    with tempfile.TemporaryDirectory() as tmp, mock.patch.dict(os.environ, env):
        warehouse, store_dir = Path(tmp) / "var" / "warehouse.duckdb", Path(tmp) / "objectstore"
        warehouse.parent.mkdir()
        shutil.copyfile(bundled_warehouse, warehouse)
        for n, day in enumerate([None, *days]):
            if day is not None:
                with duckdb.connect(str(warehouse)) as conn:
                    run_day(conn, day, n)
            run_id = day_run_id(n) if n else "20251231T060000Z-day000"
            publish(Settings(warehouse_path=warehouse, publish_uri=str(store_dir), run_id=run_id), [],
                    table_counts(warehouse), {"ok": True}, "success")
            pointer = read_latest_pointer(open_store(str(store_dir)))
            manifest = json.loads((store_dir / pointer["manifest"]).read_text())
            assert manifest["run_id"] == run_id
            cfg = lake_config(warehouse, str(store_dir), env={})
            conn = reader(cfg)
            conn.execute(f"ATTACH '{warehouse}' AS wh (READ_ONLY)")
            conn.execute(f"ATTACH '{store_dir / pointer['prefix'] / 'warehouse.duckdb'}' AS single (READ_ONLY)")
            in_single = {r[0] for r in conn.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = 'single'").fetchall()}
            snapshot = pointer["lake"]["snapshot_id"]
            for table in ALL_TABLES:
                t = quote_ident(table.name)
                copies = {"lake": f"{ALIAS}.{t} AT (VERSION => {snapshot})"}
                if (parquet := published_parquet(store_dir, pointer["prefix"], manifest["tables"][table.name])):
                    copies["parquet"] = parquet
                if table.name in in_single:
                    copies["single file"] = f"single.{t}"
                for where, rows in copies.items():
                    differ = rows_differing(conn, rows, f"wh.{t}")
                    assert differ == 0, f"day {n}: {table.name} in the {where} differs in {differ} row(s)"
            conn.close()


def small_lake(tmp_path: Path, files: dict[str, int]) -> tuple[LakeConfig, Path, Path]:
    """(config, warehouse path, store folder) of a lake whose catalog sits where `eujp lake-maintain --warehouse`
    finds it: a table per entry of `files`, written by that many small inserts (a Parquet file each)."""
    warehouse, store = tmp_path / "var" / "warehouse.duckdb", tmp_path / "objectstore"
    cfg = lake_config(warehouse, str(store), env={})
    conn = duckdb.connect()
    attach(conn, cfg)
    for table, n in files.items():
        conn.execute(f"CREATE TABLE {ALIAS}.{table} (a INTEGER)")
        for i in range(n):
            conn.execute(f"INSERT INTO {ALIAS}.{table} SELECT range FROM range({i * 10}, {i * 10 + 10})")
    conn.close()
    return cfg, warehouse, store


def live_files(cfg: LakeConfig) -> dict[str, int]:
    """{table: data files its newest snapshot reads}."""
    conn = reader(cfg)
    try:
        return {t: conn.execute(f"SELECT count(*) FROM ducklake_list_files('{ALIAS}', ?)", [t]).fetchone()[0]
                for t in ("many", "few", "one")}
    finally:
        conn.close()


def test_maintenance_counts_the_files_it_merged_and_into_how_many(tmp_path):
    """'merged N file(s)' was the number of tables merge_adjacent_files had merged in (one row each), not files."""
    cfg, _, store_dir = small_lake(tmp_path, {"many": 6, "few": 3, "one": 1})
    assert live_files(cfg) == {"many": 6, "few": 3, "one": 1}
    result = maintain(cfg, open_store(str(store_dir)), keep_days=30, grace_hours=24, work_dir=tmp_path / "m")
    assert live_files(cfg) == {"many": 1, "few": 1, "one": 1}
    assert (result.merged, result.merged_into) == (9, 2)
    assert "merged 9 file(s) into 2, deleted 0 file(s)" in result.summary()
    again = maintain(cfg, open_store(str(store_dir)), keep_days=30, grace_hours=24, work_dir=tmp_path / "m")
    assert (again.merged, again.merged_into) == (0, 0) and "merged 0 file(s) into 0" in again.summary()


@pytest.mark.parametrize("how", [["--keep-days", "inf"], ["--keep-days", "1e308"], ["--grace-hours", "inf"],
                                 {"EUJP_LAKE_KEEP_DAYS": "1e6"}, {"EUJP_LAKE_GRACE_HOURS": "1e308"}])
def test_a_keep_days_or_grace_beyond_any_date_keeps_everything(tmp_path, monkeypatch, how):
    """`--keep-days inf`, `1e308` or EUJP_LAKE_KEEP_DAYS=1e6 crashed with OverflowError (now - timedelta)."""
    from typer.testing import CliRunner

    from flows.cli import app

    cfg, warehouse, store_dir = small_lake(tmp_path, {"many": 3})
    before = snapshots(cfg)
    monkeypatch.delenv("EUJP_LAKE_KEEP_DAYS", raising=False)
    monkeypatch.delenv("EUJP_LAKE_GRACE_HOURS", raising=False)
    options = how if isinstance(how, list) else []
    for name, value in (how.items() if isinstance(how, dict) else ()):
        monkeypatch.setenv(name, value)
    keep_all = "--keep-days" in options or "EUJP_LAKE_KEEP_DAYS" in how
    if keep_all:
        options += ["--grace-hours", "0"]
    else:
        options += ["--keep-days", "0"]
    result = CliRunner().invoke(app, ["lake-maintain", "--warehouse", str(warehouse), "--publish", str(store_dir),
                                      *options])
    assert result.exit_code == 0, result.output
    assert "merged 3 file(s) into 1" in result.output
    after = [s["snapshot_id"] for s in snapshots(cfg)]
    if keep_all:  # no snapshot expired, the files they read are all kept
        assert "expired 0 snapshot(s)" in result.output
        assert after[:len(before)] == [s["snapshot_id"] for s in before]
        assert len(data_files(store_dir)) == 4  # the three small ones (read by the older snapshots) and the merge
    else:  # no file is old enough to delete
        assert "deleted 0 file(s)" in result.output
        assert len(data_files(store_dir)) == 4


def test_a_scheduled_maintenance_waits_for_the_run_holding_the_lock(tmp_path, monkeypatch, prefect_server):
    """The flow said it 'waits for a running daily run', but with EUJP_LOCK_WAIT_SECONDS unset (the worker
    deployment sets none) it failed at once with RunLocked."""
    import threading
    import time

    from eujp.lock import warehouse_lock
    from flows.lake import lake_maintain_flow

    monkeypatch.delenv("EUJP_LOCK_WAIT_SECONDS", raising=False)
    monkeypatch.delenv("EUJP_LAKE_CATALOG", raising=False)
    monkeypatch.setenv("EUJP_ALERT_WEBHOOK_URL", "")
    monkeypatch.setenv("EUJP_ALERT_WEBHOOK_BLOCK", "")
    _, warehouse, store_dir = small_lake(tmp_path, {"many": 2})
    held, release = threading.Event(), threading.Event()

    def daily_run():
        with warehouse_lock(warehouse):
            held.set()
            release.wait(60)
            time.sleep(3)  # the run still writes a while after the maintenance started

    run = threading.Thread(target=daily_run)
    run.start()
    held.wait(10)
    release.set()
    started = time.monotonic()
    try:
        state = lake_maintain_flow(warehouse=str(warehouse), publish_uri=str(store_dir), return_state=True)
    finally:
        run.join()
    assert state.is_completed(), state
    assert time.monotonic() - started >= 2.5  # it waited for the lock
    result = state.result()
    assert (result["merged"], result["merged_into"]) == (2, 1)
    assert result["catalog_published"] == CATALOG_FILE and (store_dir / CATALOG_FILE).is_file()


def test_two_writers_of_one_folder_target_each_commit_on_top_of_the_published_lake(bundled_warehouse, tmp_path,
                                                                                   monkeypatch, caplog):
    """Two warehouses publishing to one folder, in turn (a fresh disk, a second writer): each run adopts the
    published catalog (h2 started a new lake over h1's, h1 then uploaded its old catalog back over h2's and its
    maintenance deleted h2's files as orphans); every run succeeds, every published snapshot reads what its run
    published, and the numbering goes on."""
    from support.two_writers import run_two_writers

    monkeypatch.delenv("EUJP_LAKE_CATALOG", raising=False)
    run_two_writers(bundled_warehouse, str(tmp_path / "objectstore"), tmp_path, caplog)


def test_maintenance_adopts_the_published_lake_and_refuses_a_catalog_without_latest_jsons_snapshot(lake, tmp_path,
                                                                                                    caplog):
    """A writer whose catalog lacks the published snapshot (another writer committed since) maintained its own:
    it published a catalog without that snapshot and deleted the other writer's files as orphans. Now it adopts
    the published catalog first; and a catalog without the snapshot latest.json names is refused, nothing
    deleted."""
    from eujp.lake import replace_unpublished_catalog

    h1, warehouse, store_dir = lake
    store = open_store(str(store_dir))
    first = commit_warehouse(h1, warehouse, "20261124T060000Z-h1").snapshot_id
    store.put_file(CATALOG_FILE, h1.catalog_file)
    _publish_pointer(store, "20261124T060000Z-h1", first, latest=True)
    other = tmp_path / "h2" / "warehouse.duckdb"
    other.parent.mkdir()
    shutil.copyfile(warehouse, other)
    revise(other, _months(other)[0], 3.0, "20261125T050000Z-h2")
    h2 = lake_config(other, str(store_dir), env={})
    note = replace_unpublished_catalog(h2, store, "20261125T060000Z-h2")
    assert note.startswith(f"this writer had no lake catalog ({h2.catalog_file}): adopted the lake catalog "
                           f"published at {store_dir} (snapshot {first} of ")
    second = commit_warehouse(h2, other, "20261125T060000Z-h2")
    assert second.snapshot_id == first + 1 and set(second.changed) == {FACT}  # the revised month only
    assert second.changed[FACT] == {"rewritten": [_months(other)[0]], "removed": []}
    store.put_file(CATALOG_FILE, h2.catalog_file)
    _publish_pointer(store, "20261125T060000Z-h2", second.snapshot_id, latest=True)

    with caplog.at_level("WARNING", logger="eujp.lake"):
        result = maintain(h1, store, keep_days=30, grace_hours=0, work_dir=tmp_path / "m")
    assert result.adopted and "lacks the published snapshot 2 of" in result.adopted
    assert result.summary().startswith(f"the lake catalog {h1.catalog_file} was set aside as lake.ducklake.replaced-")
    assert any("adopted the lake catalog published" in r.getMessage() for r in caplog.records)
    # the published lake, maintained: h2's snapshot reads h2's warehouse, h1's h1's (none of their files deleted)
    conn = reader(h1)
    for snapshot, wh in ((second.snapshot_id, other), (first, warehouse)):
        conn.execute(f"ATTACH '{wh}' AS wh (READ_ONLY)")
        for t in ALL_TABLES:
            name = quote_ident(t.name)
            assert rows_differing(conn, f"(FROM {ALIAS}.{name} AT (VERSION => {snapshot}))", f"wh.{name}") == 0
        conn.execute("DETACH wh")
    conn.close()
    assert (store_dir / CATALOG_FILE).read_bytes() == h1.catalog_file.read_bytes()

    _publish_pointer(store, "20261126T060000Z-gone", 99, latest=True)  # a snapshot the catalog does not hold
    files = data_files(store_dir)
    with pytest.raises(LakeError, match="lacks snapshot 99, which latest.json at .* names: it is not the "
                                        "published lake; nothing was expired, deleted or published"):
        maintain(h1, store, keep_days=0, grace_hours=0, now=datetime.now(UTC) + timedelta(days=1),
                 work_dir=tmp_path / "m")
    assert data_files(store_dir) == files


def test_a_writer_whose_catalog_is_the_published_one_does_not_read_it_from_the_folder(tmp_path, monkeypatch, caplog):
    """Before each commit the run copied the published lake.ducklake out of the folder store to compare its
    snapshots with the writer's, even when the writer had published those very bytes itself on its last run. The
    sha256 the folder store keeps with the file (its extended attribute, trusted while the file's size and mtime
    are unchanged) now says when they are the same: the store's get_file is not called for it then; a second
    writer, and a writer left behind by it, still read and adopt it (tests/support/two_writers.py). A published
    catalog without a kept sha256 (copied there by another tool) is read and compared, as before."""
    from support.two_writers import run_catalog_look_ups

    from eujp.lake import replace_unpublished_catalog
    from eujp.storage import LocalObjectStore

    monkeypatch.delenv("EUJP_LAKE_CATALOG", raising=False)
    read: list[str] = []
    real_get_file = LocalObjectStore.get_file

    def get_file(self, key: str, path: Path) -> None:  # the store's own method, each call recorded
        read.append(key)
        real_get_file(self, key, path)

    monkeypatch.setattr(LocalObjectStore, "get_file", get_file)
    store_dir = tmp_path / "objectstore"
    run_catalog_look_ups(str(store_dir), tmp_path, caplog, lambda: read.count(CATALOG_FILE))

    cfg = lake_config(tmp_path / "h1" / "warehouse.duckdb", str(store_dir), env={})
    (store_dir / CATALOG_FILE).unlink()
    shutil.copyfile(cfg.catalog_file, store_dir / CATALOG_FILE)  # the same bytes, no sha256 kept with them
    before = read.count(CATALOG_FILE)
    assert replace_unpublished_catalog(cfg, open_store(str(store_dir)), "20261207T060000Z-h1-day7") is None
    assert read.count(CATALOG_FILE) == before + 1
