"""A day's landings applied in landing order: `transforms.common.supersede` folds them into one batch that leaves
what loading them one after the other leaves (under every replace scope, conflicting keys included), and a replay
of a day (`--from-raw`, the raw mode every as-of step uses) equals the warehouse the day's runs left.

The day's runs are run with the plain step functions the flows orchestrate (eujp.pipeline, eujp.run): fetch,
land, skip unchanged, prepare, load-audit-promote, on real payloads (the bundled snapshot, edited)."""

from __future__ import annotations

import random
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest

from eujp.compare import compare_warehouses
from eujp.config import Settings
from eujp.landing import read_landed
from eujp.pipeline import (
    SourceBatch,
    fetch_payloads,
    land_payloads,
    load_countries,
    prepare_source,
    skip_unchanged,
    utcnow,
)
from eujp.run import load_audit_promote
from eujp.schema import ETL_REVISIONS
from eujp.sources import SOURCES, comext_goods, eurostat_goods, oecd_restrictions, security_events
from eujp.storage import open_store
from eujp.tables import FACT_TABLES
from eujp.warehouse import connect, create_tables, upsert_fact
from transforms.common import supersede

GOODS = eurostat_goods.SOURCE
TABLE = GOODS.table
NOW = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
SNAPSHOT = Path(__file__).resolve().parents[2] / "data" / "snapshot"


# --- supersede == loading the parts one after the other ------------------------------------------------------

KEYS = [("EU27_2020", "JP", flow, year) for flow in ("export", "import") for year in (2022, 2023, 2024)]


def frame(keys_values) -> pl.DataFrame:
    return pl.DataFrame(
        [dict(zip(["reporter", "partner", "flow", "period_year"], k, strict=True))
         | {"value_mio_eur": v, "obs_status": None, "source": GOODS.name, "source_version": "v"}
         for k, v in keys_values],
        schema=TABLE.business_columns,
    )


def random_part(rng: random.Random) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    keys = rng.sample(KEYS, rng.randint(0, len(KEYS)))
    loaded = keys[: rng.randint(0, len(keys))]
    conflicts = [k for k in keys if k not in loaded]
    rows = frame([(k, float(rng.randint(1, 5))) for k in loaded])
    return rows, frame([(k, 0.0) for k in conflicts]).select(list(TABLE.natural_key)) if conflicts else None


def table_rows(conn) -> list:
    return conn.execute("SELECT * EXCLUDE (run_id, loaded_at) FROM fact_goods_trade ORDER BY ALL").fetchall()


@pytest.mark.parametrize("scope", [(), ("period_year",), None], ids=["full-extract", "by-period", "by-key"])
def test_supersede_leaves_what_loading_the_landings_in_turn_leaves(scope):
    rng = random.Random(15)
    for trial in range(15):
        paths = ("in turn", "folded")
        start = frame([(k, 9.0) for k in rng.sample(KEYS, rng.randint(0, len(KEYS)))])
        parts = [random_part(rng) for _ in range(rng.randint(2, 4))]
        conns = [duckdb.connect() for _ in paths]
        for conn in conns:
            create_tables(conn, [TABLE, ETL_REVISIONS])
            upsert_fact(conn, TABLE, start, run_id="r0", loaded_at=NOW, source=GOODS.name, replace_scope=scope)
        for rows, conflicts in parts:
            upsert_fact(conns[0], TABLE, rows, run_id="r", loaded_at=NOW, source=GOODS.name, replace_scope=scope,
                        keep=conflicts)
        rows, conflicts = supersede(parts, TABLE.natural_key, scope)
        assert rows.select(list(TABLE.natural_key)).is_duplicated().sum() == 0
        upsert_fact(conns[1], TABLE, rows, run_id="r", loaded_at=NOW, source=GOODS.name, replace_scope=scope,
                    keep=conflicts)
        assert table_rows(conns[1]) == table_rows(conns[0]), (trial, parts)
        for conn in conns:
            conn.close()


def test_a_later_landing_supersedes_an_earlier_one_for_the_same_key():
    first = frame([(KEYS[0], 1.0), (KEYS[1], 1.0)])
    revised = frame([(KEYS[0], 2.0)])
    rows, conflicts = supersede([(first, None), (revised, None)], TABLE.natural_key, None)
    assert sorted(rows.select("period_year", "value_mio_eur").rows()) == [(2022, 2.0), (2023, 1.0)]
    assert conflicts is None
    rows, _ = supersede([(first, None), (revised, None)], TABLE.natural_key, ())  # a full extract replaces all
    assert rows.select("period_year", "value_mio_eur").rows() == [(2022, 2.0)]


# --- the day's live-like runs, then a replay of the day ------------------------------------------------------

DAY = date(2026, 11, 24)
COMEXT_DE = "comext_ds045409_DE_JP_84834030_2025Q1.csv"
EVENTS_FILE = "security_events.csv"
OECD_FILE = "oecd_export_restrictions.csv"


def snapshot_variant(folder: Path, edits: dict[str, tuple[str, str]]) -> Path:
    """The bundled snapshot with `edits` (file -> (old, new), each replaced once, the old text must be there)."""
    shutil.copytree(SNAPSHOT, folder)
    for name, (old, new) in edits.items():
        text = (folder / name).read_text(encoding="utf-8")
        assert text.count(old) == 1, (name, old)
        (folder / name).write_text(text.replace(old, new), encoding="utf-8")
    return folder


def run_day(settings: Settings) -> dict[str, SourceBatch]:
    """What a daily run does (flows/daily.py without Prefect): per source fetch, land (not in raw mode), skip
    unchanged, prepare; then load-audit-promote (staging copy, load, marts, audit, promote)."""
    store = open_store(settings.publish_uri)
    countries = load_countries(settings.run_date)
    batches = []
    for source in SOURCES:
        batch = SourceBatch(source=source.name, table=source.table.name, started_at=utcnow())
        payloads = fetch_payloads(source, settings, store)
        if settings.source_mode != "raw":
            batch.raw_keys = land_payloads(store, source, payloads, settings.run_date)
        if not skip_unchanged(batch, payloads, settings):
            batch = prepare_source(source, payloads, countries, batch)
        assert batch.status in ("prepared", "unchanged"), batch.error
        batches.append(batch)
    load_audit_promote(settings, batches, countries, compare_published=False)
    return {b.source: b for b in batches}


def test_a_replay_of_a_day_with_several_landings_equals_what_the_days_runs_left(tmp_path):
    """Three runs on one day: the bundled snapshot; then a Comext figure, an event and an OECD measure revised
    (key, full-extract and period scope); then the event back as it was. `--from-raw DAY` into a fresh warehouse
    applies the three landings in order: every fact table, dimension and mart equals the live warehouse."""
    store = tmp_path / "store"
    live = tmp_path / "live" / "warehouse.duckdb"
    revised = snapshot_variant(tmp_path / "snap-2", {
        COMEXT_DE: (",2025-02,1663789\n", ",2025-02,1700000\n"),
        EVENTS_FILE: ("Japan and Germany exchanged notes", "Japan and Germany signed notes"),
        OECD_FILE: (",VAL,,2024,,100,", ",VAL,,2024,,120,"),
    })
    reverted = snapshot_variant(tmp_path / "snap-3", {
        COMEXT_DE: (",2025-02,1663789\n", ",2025-02,1700000\n"),
        OECD_FILE: (",VAL,,2024,,100,", ",VAL,,2024,,120,"),
    })
    for n, folder in enumerate([SNAPSHOT, revised, reverted], start=1):
        settings = Settings(snapshot_dir=folder, warehouse_path=live, publish_uri=str(store), run_date=DAY,
                            run_id=f"20261124T0{n}0000Z-live0{n}")
        batches = run_day(settings)
        if n == 2:
            assert {s for s, b in batches.items() if b.status == "loaded"} == {
                comext_goods.SOURCE.name, security_events.SOURCE.name, oecd_restrictions.SOURCE.name}
    raw_store = open_store(str(store))
    assert [p.landing for p in read_landed(raw_store, security_events.SOURCE.name, DAY)] == [0, 1, 2]
    # Japan's file and the main partners' file, the same each run: one landing
    assert {p.landing for p in read_landed(raw_store, eurostat_goods.SOURCE.name, DAY)} == {0}
    comext = read_landed(raw_store, comext_goods.SOURCE.name, DAY)  # two month files and the product codelist
    assert [p.landing for p in comext if p.kind == "data"] == [0, 0, 1, 1]
    assert [p.landing for p in comext if p.kind != "data"] == [0, 1]

    replay = tmp_path / "replay" / "warehouse.duckdb"
    batches = run_day(Settings(source_mode="raw", raw_date=DAY, warehouse_path=replay, publish_uri=str(store),
                               run_date=DAY, run_id="20261125T060000Z-replay"))
    assert all(b.rows_rejected == 0 for b in batches.values()), [b.rejected for b in batches.values()]

    diffs = {d.table: d for d in compare_warehouses(live, replay)}
    bookkeeping = {"etl_runs", "etl_source_state", "etl_revisions", "etl_model_state",  # one run vs three
                   "etl_suite_state"}
    different = sorted(t for t, d in diffs.items() if not d.same and t not in bookkeeping)
    assert different == [], [diffs[t].line() for t in different]
    for table in FACT_TABLES:
        assert diffs[table.name].same and diffs[table.name].rows_a > 0, diffs[table.name].line()
    with connect(replay, read_only=True) as conn:
        assert conn.execute("SELECT value_eur FROM fact_goods_trade_product WHERE reporter = 'DE' AND "
                            "period_code = '2025-02'").fetchall() == [(1700000.0,)]
        assert conn.execute("SELECT count(*) FROM fact_security_events WHERE description LIKE '%signed notes%'"
                            ).fetchall() == [(0,)]
        assert conn.execute("SELECT value FROM fact_export_restrictions WHERE ref_area_iso3 = 'ARE'"
                            ).fetchall() == [("120",)]
