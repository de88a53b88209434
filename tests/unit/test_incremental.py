"""Revisions recorded by upsert_fact, the etl_source_state life cycle and the period helpers."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime

import polars as pl
import pytest

from eujp.incremental import SourceState, annual_lookback, later_period, month_add, newest_period
from eujp.pipeline import SourceBatch, added_without_rows, etl_run_row, no_observations, update_source_state
from eujp.sources import comext_goods, eurostat_goods, security_events
from eujp.tables import ensure_schema
from eujp.warehouse import codes_without_rows, connect, read_source_state, upsert_fact, write_source_state

# The sources these tests load, by their modules (a source's name is written in its own folder only).
GOODS, COMEXT, EVENTS = eurostat_goods.SOURCE, comext_goods.SOURCE, security_events.SOURCE
FACT_GOODS_TRADE, FACT_GOODS_TRADE_PRODUCT, FACT_SECURITY_EVENTS = GOODS.table, COMEXT.table, EVENTS.table

T1 = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
T2 = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)


@pytest.fixture
def conn(tmp_path):
    c = connect(tmp_path / "w.duckdb")
    ensure_schema(c)
    yield c
    c.close()


def goods(rows, version="v1"):
    return pl.DataFrame(
        [dict(zip(["reporter", "flow", "period_year", "value_mio_eur", "obs_status"], r, strict=True))
         | {"partner": "JP", "source": GOODS.name, "source_version": version} for r in rows],
        schema=FACT_GOODS_TRADE.business_columns,
    ).select(list(FACT_GOODS_TRADE.business_columns))


def products(rows):
    return pl.DataFrame(
        [{"reporter": "DE", "partner": "JP", "product_cn8": "84834030", "flow": "import",
          "period": date(2025, m, 1), "period_code": f"2025-{m:02d}", "value_eur": v, "quantity_kg": q,
          "source": COMEXT.name, "source_version": "2026-08-14T11:00:00"} for m, v, q in rows],
        schema=FACT_GOODS_TRADE_PRODUCT.business_columns,
    )


def revisions(conn):
    return conn.execute("SELECT table_name, source, natural_key, column_name, old_value, new_value, run_id, "
                        "revised_at FROM etl_revisions ORDER BY natural_key, column_name").fetchall()


def test_a_changed_value_is_recorded_with_its_natural_key_old_and_new(conn):
    upsert_fact(conn, FACT_GOODS_TRADE, goods([("EU27_2020", "export", 2024, 70400.0, "p"),
                                               ("EU27_2020", "import", 2024, 64000.0, "p")]),
                run_id="r1", loaded_at=T1, source=GOODS.name)
    assert revisions(conn) == []
    upsert_fact(conn, FACT_GOODS_TRADE, goods([("EU27_2020", "export", 2024, 70550.5, None),
                                               ("EU27_2020", "import", 2024, 64000.0, None),
                                               ("EU27_2020", "export", 2025, 1.0, "p")], version="v2"),
                run_id="r2", loaded_at=T2, source=GOODS.name)
    (rev,) = revisions(conn)
    assert rev[:2] == ("fact_goods_trade", GOODS.name)
    assert json.loads(rev[2]) == {"reporter": "EU27_2020", "partner": "JP", "flow": "export", "period_year": 2024}
    assert rev[3:7] == ("value_mio_eur", 70400.0, 70550.5, "r2") and rev[7] == T2
    # the new figure replaced the old one; a flag change alone (p -> none) is not a value revision
    assert conn.execute("SELECT value_mio_eur, run_id FROM fact_goods_trade WHERE flow = 'export' "
                        "AND period_year = 2024").fetchall() == [(70550.5, "r2")]


def test_reloading_identical_figures_records_nothing(conn):
    batch = goods([("EU28", "export", 2016, 58000.0, None)])
    for run in ("r1", "r2", "r3"):
        upsert_fact(conn, FACT_GOODS_TRADE, batch, run_id=run, loaded_at=T1, source=GOODS.name)
    assert revisions(conn) == []


def test_missing_values_count_as_revisions_both_ways_and_every_value_column_is_compared(conn):
    upsert_fact(conn, FACT_GOODS_TRADE_PRODUCT, products([(1, None, 20234.0), (2, 1663789.0, 50202.0)]),
                run_id="r1", loaded_at=T1, source=COMEXT.name)
    upsert_fact(conn, FACT_GOODS_TRADE_PRODUCT, products([(1, 668914.0, 20234.0), (2, 1663789.0, None)]),
                run_id="r2", loaded_at=T2, source=COMEXT.name)
    got = [(json.loads(r[2])["period_code"], r[3], r[4], r[5]) for r in revisions(conn)]
    assert got == [("2025-01", "value_eur", None, 668914.0), ("2025-02", "quantity_kg", 50202.0, None)]


def test_tables_without_value_columns_record_no_revisions(conn):
    assert FACT_SECURITY_EVENTS.revision_columns == ()
    events = pl.DataFrame(
        {"event_id": ["a"], "event_date": [date(2024, 11, 1)], "date_precision": ["day"], "event_type": ["x"],
         "parties": ["JPN;EU"], "title": ["t"], "description": ["d"], "source_url": ["u"], "source_title": ["s"],
         "source": [EVENTS.name], "source_version": [None]},
        schema=FACT_SECURITY_EVENTS.business_columns,
    )
    upsert_fact(conn, FACT_SECURITY_EVENTS, events, run_id="r1", loaded_at=T1, source=EVENTS.name,
                replace_scope=())
    upsert_fact(conn, FACT_SECURITY_EVENTS, events.with_columns(title=pl.lit("t2")), run_id="r2", loaded_at=T2,
                source=EVENTS.name, replace_scope=())
    assert revisions(conn) == []


def batch_for(status: str, **kw) -> SourceBatch:
    """A live run's batch (extracted from the service when it started), unless `kw` says otherwise."""
    kw = {"live": True, "extracted_at": kw.get("started_at", T1), **kw}
    kw.setdefault("started_at", T1)
    return SourceBatch(source=GOODS.name, table="fact_goods_trade", status=status, **kw)


def test_source_state_life_cycle(conn):
    loaded = batch_for("loaded", input_checksum="c1", etag='"e1"', last_modified="Mon, 23 Nov 2026 23:00:00 GMT",
                       valid=goods([("EU27_2020", "export", 2023, 1.0, None), ("EU27_2020", "export", 2024, 2.0, None)]))
    s1 = update_source_state(conn, loaded, T1)
    assert (s1.last_status, s1.etag, s1.input_checksum, s1.newest_period, s1.watermark) == (
        "success", '"e1"', "c1", "2024", "2022")
    # unchanged: confirmed up to date, validators and watermark kept
    s2 = update_source_state(conn, batch_for("unchanged"), T2)
    assert (s2.last_status, s2.last_success_at, s2.etag, s2.input_checksum, s2.watermark) == (
        "unchanged", T2, '"e1"', "c1", "2022")
    # failed: only the attempt; the next run still compares with the last successful load
    t3 = datetime(2026, 11, 26, tzinfo=UTC)
    s3 = update_source_state(conn, batch_for("failed", error="boom"), t3)
    assert (s3.last_status, s3.last_attempt_at, s3.last_success_at, s3.etag, s3.input_checksum) == (
        "failed", t3, T2, '"e1"', "c1")
    assert read_source_state(conn, GOODS.name) == s3
    # a load of revised older periods never moves newest_period backwards
    older = batch_for("loaded", input_checksum="c2", valid=goods([("EU27_2020", "export", 2021, 3.0, None)]))
    assert update_source_state(conn, older, t3).newest_period == "2024"


def test_only_what_the_service_answered_moves_where_the_next_live_request_starts(conn):
    """A live load records its request (validators, watermark, requested_at); a snapshot load clears it (the next
    live run extracts whole: the folder may hold less, or older figures); a replay of a live landing keeps the
    earlier of the two times and watermarks (its figures may be older than the last live extraction's); an
    unchanged snapshot confirms only that it is up to date."""
    year = [("EU27_2020", "export", 2024, 2.0, None)]
    live = update_source_state(conn, batch_for("loaded", input_checksum="c1", etag='"e1"', valid=goods(year),
                                                started_at=T2), T2)
    assert (live.requested_at, live.watermark, live.etag) == (T2, "2022", '"e1"')
    # an unchanged snapshot run: confirmed, the live request untouched
    t3 = datetime(2026, 11, 26, tzinfo=UTC)
    same = update_source_state(conn, batch_for("unchanged", live=False, extracted_at=None, started_at=t3), t3)
    assert (same.last_success_at, same.requested_at, same.watermark, same.etag) == (t3, T2, "2022", '"e1"')
    # a replay of an older live landing (fetched at T1, newest year 2020): the earlier time and watermark
    older = [("EU27_2020", "export", 2020, 1.0, None)]
    replayed = update_source_state(conn, batch_for("loaded", live=False, extracted_at=T1, started_at=t3,
                                                   input_checksum="c0", etag='"e0"', valid=goods(older)), t3)
    assert (replayed.requested_at, replayed.watermark, replayed.etag, replayed.newest_period) == (
        T1, "2018", '"e0"', "2024")
    # a replay of a later landing than the last live extraction: nothing moves forward
    t4 = datetime(2026, 11, 27, tzinfo=UTC)
    later = update_source_state(conn, batch_for("loaded", live=False, extracted_at=t4, started_at=t4,
                                                input_checksum="c4", valid=goods(year)), t4)
    assert (later.requested_at, later.watermark) == (T1, "2018")
    # a snapshot load: no extraction from the service, the next live run starts from nothing
    snap = update_source_state(conn, batch_for("loaded", live=False, extracted_at=None, started_at=t4,
                                               input_checksum="s1", valid=goods(year)), t4)
    assert (snap.requested_at, snap.watermark, snap.etag, snap.request_url, snap.request_scope) == (
        None, None, None, None, None)
    assert (snap.input_checksum, snap.newest_period, snap.last_status) == ("s1", "2024", "success")
    # a replay of a live landing into such a state: the landing's time and watermark
    again = update_source_state(conn, batch_for("loaded", live=False, extracted_at=T1, started_at=t4,
                                                input_checksum="c0", valid=goods(older)), t4)
    assert (again.requested_at, again.watermark) == (T1, "2018")


def test_unchanged_batches_are_recorded_as_such_in_etl_runs():
    row = etl_run_row(batch_for("unchanged", note="unchanged: same content checksum"), "r9")
    assert (row["status"], row["rows_in"], row["rows_loaded"], row["rows_rejected"]) == ("unchanged", 0, 0, 0)
    assert row["message"] == "unchanged: same content checksum"


def test_the_codes_without_rows_are_those_no_row_of_the_run_and_source_holds_in_one_query(conn):
    upsert_fact(conn, FACT_GOODS_TRADE_PRODUCT, products([(1, 10.0, 1.0)]), run_id="r1", loaded_at=T1,
                source=COMEXT.name)
    upsert_fact(conn, FACT_GOODS_TRADE_PRODUCT, products([(2, 20.0, 2.0)]).with_columns(partner=pl.lit("CN")),
                run_id="r2", loaded_at=T2, source=COMEXT.name)
    # JP's row is of another run; a code asked twice is named once; every code in one query, however many
    assert codes_without_rows(conn, FACT_GOODS_TRADE_PRODUCT, "partner", ["CN", "AQ", "JP", "AQ"], run_id="r2",
                              source=COMEXT.name) == ["AQ", "JP"]
    cn8 = [f"{n:08d}" for n in range(2000)] + ["84834030"]
    assert codes_without_rows(conn, FACT_GOODS_TRADE_PRODUCT, "product_cn8", cn8, run_id="r2",
                              source=COMEXT.name) == sorted(cn8[:-1])
    assert codes_without_rows(conn, FACT_GOODS_TRADE_PRODUCT, "partner", ["CN"], run_id="r2", source="other") == ["CN"]
    assert codes_without_rows(conn, FACT_GOODS_TRADE_PRODUCT, "partner", [], run_id="r2", source=COMEXT.name) == []


def test_a_scope_column_must_be_a_column_of_the_source_table():
    assert COMEXT.scope_columns["partners"] == "partner" and GOODS.scope_columns == {"geo": "reporter"}
    with pytest.raises(ValueError, match="scope column.*nope"):
        replace(GOODS, scope_columns={"geo": "nope"})


def test_a_live_load_names_the_codes_its_settings_added_of_which_it_loaded_no_row(conn):
    """added_without_rows: the geo codes added beyond the last extraction's scope (the state's) that no row of
    this run holds; nothing for a list widened to every code, a replay, a payload quarantined whole, or a run
    that added nothing (which queries no fact row: here the fact table is gone)."""
    write_source_state(conn, SourceState(GOODS.name, request_scope=json.dumps({"geo": ["EU27_2020"]})))
    upsert_fact(conn, FACT_GOODS_TRADE, goods([("EU27_2020", "export", 2024, 1.0, None),
                                               ("EU28", "export", 2024, 2.0, None)]),
                run_id="r1", loaded_at=T1, source=GOODS.name)
    upsert_fact(conn, FACT_GOODS_TRADE, goods([("EU27_2020", "export", 2024, 1.0, None),
                                               ("EU15", "export", 2024, 3.0, None)]),
                run_id="r2", loaded_at=T2, source=GOODS.name)

    def added(geo, **kw):
        batch = batch_for("loaded", request_scope=json.dumps({"geo": geo}), **kw)
        return added_without_rows(conn, GOODS, batch, run_id="r2")

    assert added(["EU15", "EU27_2020", "EU28", "XX"]) == (
        "geo + EU28,XX: the service holds no observations of what the settings added (check the codes: the service "
        "may code them otherwise)")  # EU28's row is of an earlier run
    assert added(["EU15", "EU27_2020"]) is None
    assert added(["EU27_2020", "XX"], rows_rejected=4).endswith(
        "; or the transform rejected them (4 row(s) of the run rejected: etl_rejected_rows)")
    assert added(["*"]) is None
    assert added(["EU27_2020", "XX"], live=False) is None
    assert added(["EU27_2020", "XX"], payload_errors=["x.json: no JSON"]) is None
    conn.execute(f"DROP TABLE {FACT_GOODS_TRADE.name}")
    assert added(["EU27_2020"]) is None


def test_the_no_observations_warning_names_the_months_asked_for_a_staged_code_not_the_scopes_start():
    """A partner added with its history in stages was asked for its newest months only (the scope's stage):
    'no observations since' names the stage's first month, not the scope's start (2002-01, which it was never
    asked for); a code of the list outside the stage, the start; codes asked from different months, the latest
    month from which all of them were asked; a scope with no start, no month."""
    scope = {"partners": ["AQ", "CN", "JP"], "start": "2002-01",
             "stage": {"list": "partners", "codes": ["AQ", "CN"], "start": "2024-01"}}
    tail = " (check the codes: the service may code them otherwise)"
    said = "the service holds no observations of what the settings added"
    assert no_observations({"partners": ["AQ"]}, scope) == f"partners + AQ: {said} since 2024-01{tail}"
    assert no_observations({"partners": ["JP"]}, scope) == f"partners + JP: {said} since 2002-01{tail}"
    assert no_observations({"partners": ["AQ", "JP"]}, scope) == f"partners + AQ,JP: {said} since 2024-01{tail}"
    assert no_observations({"reporters": ["XX"]}, {**scope, "reporters": ["XX"]}) == (
        f"reporters + XX: {said} since 2002-01{tail}")
    assert no_observations({"partners": ["AQ"]}, {"partners": ["AQ"]}) == f"partners + AQ: {said}{tail}"


def test_a_loaded_batch_warning_is_in_its_etl_runs_message_an_unchanged_one_is_its_note():
    loaded = etl_run_row(batch_for("loaded", warning="geo + XX: none", rejections="2 rows rejected"), "r9")
    assert loaded["message"] == "2 rows rejected; geo + XX: none"
    unchanged = etl_run_row(batch_for("unchanged", note="unchanged: geo + XX: none", warning="geo + XX: none"), "r9")
    assert unchanged["message"] == "unchanged: geo + XX: none"


def test_write_source_state_replaces_the_row(conn):
    write_source_state(conn, SourceState("x", etag="a"))
    write_source_state(conn, SourceState("x", etag="b"))
    assert conn.execute("SELECT count(*), max(etag) FROM etl_source_state").fetchone() == (1, "b")


def test_period_helpers():
    assert month_add("2025-06", -17) == "2024-01" and month_add("2024-12", 1) == "2025-01"
    assert annual_lookback(2)("2024") == "2022"
    assert later_period(None, "2024") == "2024" and later_period("2025-06", "2025-01") == "2025-06"
    frame = pl.DataFrame({"period_code": ["2024", "2025-06", "2025-01"]})
    assert newest_period(COMEXT.period_column, frame) == "2025-06"
    later_year = pl.DataFrame({"period_code": ["2025-06", "2026", None, "2025-01"]})  # monthly outranks annual
    assert newest_period(COMEXT.period_column, later_year) == "2025-06"
    assert newest_period(COMEXT.period_column, pl.DataFrame({"period_code": ["2024", "2025"]})) == "2025"
    events = pl.DataFrame({"event_date": [date(2024, 11, 1), date(2008, 2, 5)]})
    assert newest_period(EVENTS.period_column, events) == "2024-11-01"
    assert newest_period(GOODS.period_column, pl.DataFrame({"period_year": []}, schema={"period_year": pl.Int32}))\
        is None


def test_the_state_a_run_reads_gives_its_times_in_utc_under_another_time_zone(tmp_path):
    """etl_source_state's times, read by the next run (read_state: the request plans' `since`, e.g. Comext's
    note 'before the last successful extraction (...)' in etl_runs.message), came in the process' zone
    ('2026-03-02T15:05:00+09:00' under TZ=Asia/Tokyo): they come in UTC. (DuckDB takes the zone once per
    process: a process of its own.)"""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from eujp.incremental import SourceState
    from eujp.tables import ensure_schema
    from eujp.warehouse import connect, write_source_state

    wh = tmp_path / "wh.duckdb"
    with connect(wh) as conn:
        ensure_schema(conn)
        write_source_state(conn, SourceState("x", requested_at=datetime(2026, 3, 2, 6, 5, tzinfo=UTC)))
    code = (f"from pathlib import Path; from eujp.warehouse import read_state; "
            f"print(read_state(Path({str(wh)!r}), 'x').requested_at.isoformat())")
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "TZ": "Asia/Tokyo", "PYTHONPATH": str(repo)},
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "2026-03-02T06:05:00+00:00"


def test_merged_scopes_hold_each_code_from_the_earlier_of_its_periods_and_record_later_ones_as_a_stage():
    """merge_scopes (a replay's state and its landings' scope; the days of the raw zone): a code only the scope
    with the later first period asked for is held from that period, not from the merged start: a stage, whose
    months before it the next live run backfills (before: CN counted as held from 2023-01, its 2023 never
    fetched); a stage the other scope covers from earlier is gone; what no single stage describes moves the
    start instead (fetched again, never taken as held)."""
    from eujp.incremental import STAGE, merge_scopes

    jp = {"partners": ["JP"], "reporters": ["DE"], "start": "2023-01"}
    with_cn = {"partners": ["CN", "JP"], "reporters": ["DE"], "start": "2024-01"}
    staged = {"partners": ["CN", "JP"], "reporters": ["DE"], "start": "2023-01",
              STAGE: {"list": "partners", "codes": ["CN"], "start": "2024-01"}}
    for merged in (merge_scopes(jp, with_cn), merge_scopes(with_cn, jp)):
        assert merged == staged
    assert merge_scopes(staged, jp) == staged  # a replay of an older day: the stage stays
    assert merge_scopes(staged, {**with_cn, "start": "2023-06"})[STAGE]["start"] == "2023-06"  # CN from earlier
    assert STAGE not in merge_scopes(staged, {**with_cn, "start": "2023-01"})  # CN whole: no stage left
    assert merge_scopes(staged, staged) == staged
    two_lists = merge_scopes({**with_cn, "reporters": ["DE", "FR"]}, jp)  # CN and FR later: no single stage
    assert STAGE not in two_lists and two_lists["start"] == "2024-01"
    every = merge_scopes({"partners": ["JP"], "start": "2023-01"}, {"partners": ["*"], "start": "2024-01"})
    assert every == {"partners": ["*"], "start": "2024-01"}  # every partner from 2024-01 only
    assert merge_scopes(jp, {**jp, "start": "2024-01"}) == jp  # the same codes: the earlier start
