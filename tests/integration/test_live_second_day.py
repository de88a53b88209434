"""The second live day with nothing new (issue 15, item 4): every source costs one request and no load work,
including the first day after a full load, whose requests ask from a watermark the full load did not use.

The replay server answers like the real services: what the request asks for (the recorded body restricted to
the requested periods) with an ETag of that representation, so the validators of one URL never match the
answer to another (tests/support/recordings.by_representation). Comext's dataflow says its data last changed
before the first run."""

from __future__ import annotations

import json

import pytest
from support.live import RUN_DATE, query, run_pipeline, runs, settings_for
from support.recordings import RECORDINGS, by_representation, jsonstat_doc, jsonstat_since, reply, with_value

from eujp.sources import (
    SOURCES_BY_NAME,
    comext_goods,
    eurostat_goods,
    eurostat_services,
    oecd_restrictions,
    sipri_arms,
)
from eujp.storage import open_store
from eujp.tables import FACT_TABLES
from eujp.warehouse import connect, read_source_state

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("loopback_only")]

GOODS, SERVICES = eurostat_goods.SOURCE.name, eurostat_services.SOURCE.name
OECD, COMEXT = oecd_restrictions.SOURCE.name, comext_goods.SOURCE.name
WINDOWED = {GOODS: "sinceTimePeriod", SERVICES: "sinceTimePeriod", OECD: "startPeriod"}


def requests_of(server, name: str):
    rec = RECORDINGS[name]
    if "path_prefix" in rec:  # Comext: its data and structure paths
        return [s for s in server.seen() if "DS-045409" in s.path or s.path == rec["codelist_path"]]
    return server.seen(rec["path"])


def test_the_first_day_after_a_full_load_costs_one_conditional_request_per_source(live, tmp_path):
    for name, param in WINDOWED.items():
        live.respond(RECORDINGS[name]["path"], by_representation(name, param))
    first = settings_for(tmp_path, "live-1")
    assert {b.status for b in run_pipeline(first).values()} == {"loaded"}
    full_requests = {name: requests_of(live, name)[0] for name in WINDOWED}
    assert all(s.param(WINDOWED[n]) is None or n == OECD for n, s in full_requests.items())
    with connect(first.warehouse_path, read_only=True) as conn:
        states = {name: read_source_state(conn, name) for name in SOURCES_BY_NAME}
    # the next requests ask from a watermark the full load did not use: their own URLs would answer 200
    assert states[GOODS].watermark == "2022" and "sinceTimePeriod" not in states[GOODS].request_url
    before = {t.name: query(first, f"SELECT count(*), min(run_id), max(run_id) FROM {t.name}") for t in FACT_TABLES}
    store = open_store(first.publish_uri)
    raw_before = set(store.list_keys("raw"))
    live.clear_log()

    second = settings_for(tmp_path, "live-2", run_date=RUN_DATE.replace(day=16))
    batches = run_pipeline(second)
    assert {n: b.status for n, b in batches.items()} == {n: "unchanged" for n in SOURCES_BY_NAME}, \
        {n: b.error for n, b in batches.items()}
    # one request per source ...
    assert {name: len(requests_of(live, name)) for name in SOURCES_BY_NAME} == {n: 1 for n in SOURCES_BY_NAME}
    # ... conditional: the windowed sources ask the URL of the full load with its ETag, and get 304
    for name in WINDOWED:
        (seen,) = requests_of(live, name)
        assert seen.query == full_requests[name].query, name
        assert seen.headers["if-none-match"] == states[name].etag, name
    # Comext: its dataflow only (UPDATE_DATA older than the first run's extraction)
    (comext,) = requests_of(live, COMEXT)
    assert comext.path == RECORDINGS[COMEXT]["dataflow_path"]
    # no load work: etl_runs says unchanged with no rows, no fact row rewritten, nothing landed but SIPRI's
    # same bytes (SIPRI sends no validators: one GET, same checksum)
    for name, row in runs(second, "live-2").items():
        assert row[:4] == ("unchanged", 0, 0, 0), (name, row)
    for table in FACT_TABLES:
        assert query(second, f"SELECT count(*), min(run_id), max(run_id) FROM {table.name}") == before[table.name]
    assert query(second, "SELECT count(*) FROM etl_revisions") == [(0,)]
    new_keys = set(store.list_keys("raw")) - raw_before
    assert {k.split("/")[1] for k in new_keys} <= {sipri_arms.SOURCE.name}
    with connect(second.warehouse_path, read_only=True) as conn:
        after = {name: read_source_state(conn, name) for name in WINDOWED}
    assert all(after[n].request_url == states[n].request_url and after[n].etag == states[n].etag for n in WINDOWED)


def test_something_new_after_the_watermark_moved_is_fetched_from_the_watermark(live, tmp_path):
    """A day with news: the conditional request to the full load's URL answers 200; the window is then
    fetched and loaded, and its URL and ETag are kept, so the next day asks that URL."""
    live.respond(RECORDINGS[GOODS]["path"], by_representation(GOODS, "sinceTimePeriod"))
    run_pipeline(settings_for(tmp_path, "live-1"), only=(GOODS,))
    doc = jsonstat_doc(GOODS)
    assert doc["id"][-1] == "time"
    times = sorted(doc["dimension"]["time"]["category"]["index"].items(), key=lambda kv: kv[1])
    newest = next(k for k in doc["value"] if times[int(k) % doc["size"][-1]][0] == "2024")  # inside the window
    revised = with_value(doc, int(newest), doc["value"][newest] + 1.0)

    def changed(seen):
        since = seen.param("sinceTimePeriod")
        data = json.dumps(jsonstat_since(revised, since) if since else revised).encode()
        return reply(GOODS, body=data, headers={**RECORDINGS[GOODS]["headers"], "ETag": f'"v2-{since or "all"}"'})

    live.respond(RECORDINGS[GOODS]["path"], changed)
    live.clear_log()
    second = settings_for(tmp_path, "live-2", run_date=RUN_DATE.replace(day=16))
    assert run_pipeline(second, only=(GOODS,))[GOODS].status == "loaded"
    check, window = live.seen(RECORDINGS[GOODS]["path"])
    assert check.param("sinceTimePeriod") is None and "if-none-match" in check.headers
    assert window.param("sinceTimePeriod") == "2022" and "if-none-match" not in window.headers
    with connect(second.warehouse_path, read_only=True) as conn:
        state = read_source_state(conn, GOODS)
    assert state.etag == '"v2-2022"' and "sinceTimePeriod=2022" in state.request_url
    assert query(second, "SELECT new_value - old_value FROM etl_revisions WHERE run_id = 'live-2'") == [
        (pytest.approx(1.0),)]
    live.clear_log()
    third = settings_for(tmp_path, "live-3", run_date=RUN_DATE.replace(day=17))
    assert run_pipeline(third, only=(GOODS,))[GOODS].status == "unchanged"
    (seen,) = live.seen(RECORDINGS[GOODS]["path"])
    assert seen.param("sinceTimePeriod") == "2022" and seen.headers["if-none-match"] == '"v2-2022"'


def test_a_geo_added_asks_for_every_period_again(live, tmp_path, monkeypatch):
    """A Eurostat source whose settings ask for more than the last successful extraction (a geo code added to
    EUJP_EUROSTAT_GOODS_GEO): its history was never asked for, so the request asks for every period, without
    the last load's validators (a 304 to them would say nothing of the new code), as a first extraction does;
    the next day, with the same settings, is incremental again."""
    live.respond(RECORDINGS[GOODS]["path"], by_representation(GOODS, "sinceTimePeriod"))
    first = settings_for(tmp_path, "live-1")
    assert run_pipeline(first, only=(GOODS,))[GOODS].status == "loaded"
    monkeypatch.setenv("EUJP_EUROSTAT_GOODS_GEO", "EU27_2020,EU28")
    live.clear_log()
    second = settings_for(tmp_path, "live-2", run_date=RUN_DATE.replace(day=16))
    run_pipeline(second, only=(GOODS,))
    (seen,) = live.seen(RECORDINGS[GOODS]["path"])
    assert seen.param("sinceTimePeriod") is None and "if-none-match" not in seen.headers
    assert seen.params("geo") == ["EU27_2020", "EU28"]
    with connect(second.warehouse_path, read_only=True) as conn:
        assert json.loads(read_source_state(conn, GOODS).request_scope) == {"geo": ["EU27_2020", "EU28"]}
    live.clear_log()
    third = settings_for(tmp_path, "live-3", run_date=RUN_DATE.replace(day=17))
    run_pipeline(third, only=(GOODS,))
    assert [s.param("sinceTimePeriod") for s in live.seen(RECORDINGS[GOODS]["path"])][-1] == "2022"


# what each source's settings add after the first extraction: (setting, value, what the request then asks for)
WIDENED = {GOODS: ("EUJP_EUROSTAT_GOODS_GEO", "EU27_2020,EU28", ("geo", ["EU27_2020", "EU28"])),
           SERVICES: ("EUJP_EUROSTAT_SERVICES_GEO", "EU27_2020,EU28", ("geo", ["EU27_2020", "EU28"])),
           OECD: ("EUJP_OECD_START", "2005", ("startPeriod", ["2005"]))}


@pytest.mark.parametrize("name", [GOODS, SERVICES, OECD])
@pytest.mark.parametrize("how", ["replayed-into-a-new-warehouse", "state-without-a-scope"])
def test_a_code_added_after_a_replay_or_on_a_state_without_a_scope_asks_for_every_period(live, tmp_path, caplog,
                                                                                        monkeypatch, name, how):
    """A geo code added (Eurostat), an earlier first year (OECD) after `--from-raw DAY` replayed the landings into
    a new warehouse, or on a warehouse whose state records no request scope (older than scopes): the settings
    are not taken as fetched. The replay records what its landings asked for (their request's geo codes, or
    first year), so the next run compares with it; a state with no scope at all is extracted in full, with a
    warning. Before, both asked from the watermark only: the history of what was added was never fetched."""
    live.respond(RECORDINGS[name]["path"], by_representation(name, WINDOWED[name]))
    first = settings_for(tmp_path, "live-1")
    assert run_pipeline(first, only=(name,))[name].status == "loaded"
    warehouse = first.warehouse_path
    if how == "state-without-a-scope":
        with connect(warehouse) as conn:
            conn.execute("UPDATE etl_source_state SET request_scope = NULL")
    else:
        warehouse = tmp_path / "new" / "warehouse.duckdb"
        replay = settings_for(tmp_path, "replay", source_mode="raw", raw_date=RUN_DATE, warehouse_path=warehouse,
                              run_date=RUN_DATE.replace(day=16))
        assert run_pipeline(replay, only=(name,))[name].status == "loaded"
        with connect(warehouse, read_only=True) as conn:
            assert json.loads(read_source_state(conn, name).request_scope) == SOURCES_BY_NAME[name].request_scope(
                {}, RUN_DATE)
    setting, value, (param, asked) = WIDENED[name]
    monkeypatch.setenv(setting, value)
    live.clear_log()
    second = settings_for(tmp_path, "live-2", warehouse_path=warehouse, run_date=RUN_DATE.replace(day=17))
    with caplog.at_level("WARNING", logger="eujp.live"):
        run_pipeline(second, only=(name,))
    warned = [r.getMessage() for r in caplog.records if "every code is treated as new" in r.getMessage()]
    assert bool(warned) is (how == "state-without-a-scope")
    (seen,) = live.seen(RECORDINGS[name]["path"])
    assert seen.params(param) == asked and "if-none-match" not in seen.headers
    if name != OECD:
        assert seen.param("sinceTimePeriod") is None
    with connect(warehouse, read_only=True) as conn:
        assert json.loads(read_source_state(conn, name).request_scope) == SOURCES_BY_NAME[name].request_scope(
            {setting: value}, RUN_DATE)
