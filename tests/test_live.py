"""Live extraction (eujp.live) against recorded responses replayed on 127.0.0.1: the requests each
source makes, Comext's 413 splitting, incremental state, and whole pipeline runs in live mode (real
parsers, transforms, validation, load and audit; the plain step functions, no Prefect) under faults."""

from __future__ import annotations

import base64
import json
import socket
from dataclasses import replace
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest
from recordings import (
    FIXTURES,
    RECORDINGS,
    REPO,
    env_for,
    install,
    jsonstat_doc,
    payload_bytes,
    reply,
    with_new_dimension,
    with_value,
)
from replay_server import ReplayServer, Reply, Seen

from eujp.audit import audit_staging
from eujp.config import Settings
from eujp.errors import ExtractError
from eujp.http import HttpPolicy
from eujp.incremental import SourceState, next_watermark
from eujp.landing import read_landed
from eujp.live import (
    ComextSlice,
    base_url,
    comext_request,
    eurostat_request,
    fetch_live,
    oecd_request,
)
from eujp.pipeline import (
    SourceBatch,
    fetch_payloads,
    land_payloads,
    load_batches,
    load_countries,
    load_dim_country,
    prepare_source,
    skip_unchanged,
    utcnow,
)
from eujp.schema import FACT_TABLES
from eujp.sources import SOURCES, SOURCES_BY_NAME
from eujp.storage import open_store
from eujp.warehouse import connect, ensure_schema, open_staging, promote, read_source_state, table_counts

pytestmark = pytest.mark.timeout(300)

RUN_DATE = date(2025, 7, 15)  # Comext requests run up to 2025-07
FAST_ENV = {
    "EUJP_HTTP_CONNECT_TIMEOUT": "1",
    "EUJP_HTTP_READ_TIMEOUT": "0.3",
    "EUJP_HTTP_MAX_ATTEMPTS": "3",
    "EUJP_HTTP_BACKOFF_BASE": "0.01",
    "EUJP_HTTP_BACKOFF_MAX": "0.05",
    "EUJP_HTTP_BUDGET_SECONDS": "5",
    "EUJP_COMEXT_START": "2025-01",
    "NO_PROXY": "127.0.0.1,localhost",
}


# --- only loopback traffic ----------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Any attempt to resolve a host other than 127.0.0.1/localhost fails the test."""
    real = socket.getaddrinfo

    def guarded(host, *args, **kwargs):
        if host not in ("127.0.0.1", "localhost", b"127.0.0.1", b"localhost"):
            raise AssertionError(f"test tried to reach {host!r}: only 127.0.0.1 is allowed")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def server():
    with ReplayServer() as s:
        yield s


@pytest.fixture
def live(server, monkeypatch):
    """The replay server with every recording installed, and the EUJP_* variables pointing at it."""
    comext = install(server)
    for k, v in {**env_for(server), **FAST_ENV}.items():
        monkeypatch.setenv(k, v)
    server.comext = comext
    return server


def settings_for(tmp_path: Path, run_id: str, **changes) -> Settings:
    base = Settings(warehouse_path=tmp_path / "var" / "warehouse.duckdb", publish_uri=str(tmp_path / "store"),
                    source_mode="live", run_date=RUN_DATE, run_id=run_id)
    return replace(base, **changes)


# --- a run with the plain step functions (what flows/ orchestrates) ---------------------------------------

def run_pipeline(settings: Settings) -> dict[str, SourceBatch]:
    """Extract, land, (skip unchanged), parse/transform/validate, load into a staging copy, audit, promote.
    Raises AuditFailed if the audit fails (then nothing is promoted)."""
    store = open_store(settings.publish_uri)
    countries = load_countries(settings.run_date)
    batches = []
    for source in SOURCES:
        batch = SourceBatch(source=source.name, table=source.table.name, started_at=utcnow())
        try:
            payloads = fetch_payloads(source, settings, store)
            if settings.source_mode != "raw":
                batch.raw_keys = land_payloads(store, source, payloads, settings.run_date)
        except Exception as exc:  # noqa: BLE001 - as flows/domains.py: a failing source is recorded, not raised
            batches.append(batch.fail("extract", exc))
            continue
        if skip_unchanged(batch, payloads, settings):
            batches.append(batch)
            continue
        batches.append(prepare_source(source, payloads, countries, batch))
    staging = open_staging(settings.warehouse_path, settings.staging_dir, settings.run_id)
    with connect(staging) as conn:
        ensure_schema(conn)
        previous = table_counts(conn)
        load_dim_country(conn, countries)
        load_batches(conn, batches, run_id=settings.run_id)
        audit_staging(conn, run_id=settings.run_id, previous_counts=previous,
                      max_row_drop_pct=settings.max_row_drop_pct).raise_if_failed()
        conn.execute("CHECKPOINT")
    promote(staging, settings.warehouse_path)
    return {b.source: b for b in batches}


def query(settings: Settings, sql: str, params=()):
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        return conn.execute(sql, params).fetchall()


def fact_rows(settings: Settings, table: str) -> list[tuple]:
    """A fact table's business rows, sorted (run_id/loaded_at left out)."""
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        frame = conn.execute(f"SELECT * EXCLUDE (run_id, loaded_at) FROM {table}").pl()
    return sorted(frame.rows(), key=repr)


def runs(settings: Settings, run_id: str) -> dict[str, tuple]:
    rows = query(settings, "SELECT source, status, rows_in, rows_loaded, rows_rejected, message FROM etl_runs "
                 "WHERE run_id = ?", [run_id])
    return {r[0]: r[1:] for r in rows}


# --- URL builders: the documented request shapes ---------------------------------------------------------

def test_default_endpoints_are_the_real_services_and_env_overrides_them():
    assert base_url("eurostat", {}) == "https://ec.europa.eu/eurostat"
    assert base_url("comext", {}) == "https://ec.europa.eu/eurostat"
    assert base_url("oecd", {}) == "https://sdmx.oecd.org"
    assert base_url("sipri", {}) == "https://atbackend.sipri.org/api/p/trades/trade-register-csv"
    assert base_url("events", {}).startswith("file://") and base_url("events", {}).endswith("security_events.csv")
    assert base_url("oecd", {"EUJP_OECD_URL": "http://127.0.0.1:9/mirror/"}) == "http://127.0.0.1:9/mirror"


def test_eurostat_requests_follow_the_statistics_api():
    url, params = eurostat_request("eurostat_goods", "https://ec.europa.eu/eurostat", "2022", {})
    assert url == "https://ec.europa.eu/eurostat/api/dissemination/statistics/1.0/data/ext_lt_maineu"
    assert params == [("format", "JSON"), ("lang", "EN"), ("freq", "A"), ("partner", "JP"), ("sitc06", "TOTAL"),
                      ("indic_et", "MIO_EXP_VAL"), ("indic_et", "MIO_IMP_VAL"), ("indic_et", "MIO_BAL_VAL"),
                      ("geo", "EU27_2020"), ("sinceTimePeriod", "2022")]
    url, params = eurostat_request("eurostat_services", "https://ec.europa.eu/eurostat", None,
                                   {"EUJP_EUROSTAT_SERVICES_GEO": "EU27_2020,EU28"})
    assert url.endswith("/api/dissemination/statistics/1.0/data/bop_its6_det")
    assert [v for k, v in params if k == "stk_flow"] == ["CRE", "DEB", "BAL"]
    assert [v for k, v in params if k == "geo"] == ["EU27_2020", "EU28"]
    assert ("currency", "MIO_EUR") in params and ("bop_item", "S") in params
    assert not any(k == "sinceTimePeriod" for k, _ in params)


def test_comext_and_oecd_requests_follow_their_sdmx_apis():
    url, params = comext_request("https://ec.europa.eu/eurostat", {}, ComextSlice("2024-01", "2025-07", ("84834030",)))
    assert url == ("https://ec.europa.eu/eurostat/api/comext/dissemination/sdmx/2.1/data/DS-045409/"
                   "M..JP.84834030.1+2.VALUE_IN_EUROS+QUANTITY_IN_100KG")
    assert params == [("startPeriod", "2024-01"), ("endPeriod", "2025-07"), ("format", "SDMX-CSV"),
                      ("compressed", "false")]
    url, _ = comext_request("https://x", {"EUJP_COMEXT_REPORTERS": "DE,FR", "EUJP_COMEXT_FLOWS": "2"},
                            ComextSlice("2025-01", "2025-01", ("84834030", "85011010")))
    assert url.endswith("/DS-045409/M.DE+FR.JP.84834030+85011010.2.VALUE_IN_EUROS+QUANTITY_IN_100KG")
    url, params = oecd_request("https://sdmx.oecd.org", {}, "2009", "2025")
    assert url == ("https://sdmx.oecd.org/public/rest/data/"
                   "OECD.TAD.ADM,DSD_QDD_TAD_EXP_RESTRIC@DF_QDD_TAD_EXP_RESTRIC,3.0/all")
    assert params == [("startPeriod", "2009"), ("endPeriod", "2025"), ("dimensionAtObservation", "AllDimensions"),
                      ("format", "csvfilewithlabels")]


def test_comext_slices_split_by_period_then_chapter_then_product_list():
    s = ComextSlice("2025-01", "2025-07", ("84834030", "85011010", "85011091"))
    assert [(p.start, p.end) for p in s.split()] == [("2025-01", "2025-03"), ("2025-04", "2025-07")]
    one_month = ComextSlice("2025-06", "2025-06", s.products)
    assert [p.products for p in one_month.split()] == [("84834030",), ("85011010", "85011091")]
    one_chapter = ComextSlice("2025-06", "2025-06", ("85011010", "85011091"))
    assert [p.products for p in one_chapter.split()] == [("85011010",), ("85011091",)]
    assert ComextSlice("2025-06", "2025-06", ("85011010",)).split() == []
    assert ComextSlice("2025-06", "2025-06", ()).split() == []  # all products: no codes to split on


def test_watermarks():
    assert next_watermark("comext_goods", "2025-06") == "2024-01"
    assert next_watermark("eurostat_goods", "2024") == "2022"
    assert next_watermark("eurostat_services", "2023") == "2020"
    assert next_watermark("oecd_restrictions", "2024") == "2023"
    assert next_watermark("sipri_arms", "2024") is None and next_watermark("eurostat_goods", None) is None


# --- fetch_live per source -------------------------------------------------------------------------------

def fetch(name: str, tmp_path: Path, state: SourceState | None = None, **changes):
    return fetch_live(SOURCES_BY_NAME[name], settings_for(tmp_path, "fetch", **changes), state)


@pytest.mark.parametrize("name", ["eurostat_goods", "eurostat_services", "oecd_restrictions", "sipri_arms",
                                  "security_events"])
def test_single_request_sources_return_the_recorded_payload_with_url_and_headers(live, tmp_path, name):
    (payload,) = fetch(name, tmp_path)
    assert payload.data == payload_bytes(name)
    assert payload.url.startswith(live.url + RECORDINGS[name]["path"])
    recorded = {k.lower(): v for k, v in RECORDINGS[name]["headers"].items()}
    assert {k: payload.headers[k] for k in recorded} == recorded
    if RECORDINGS[name].get("gzip"):
        assert payload.headers["content-encoding"] == "gzip"


def test_sipri_posts_the_trade_register_filters_and_unwraps_the_csv(live, tmp_path):
    (payload,) = fetch("sipri_arms", tmp_path)
    (seen,) = live.seen(RECORDINGS["sipri_arms"]["path"])
    assert seen.method == "POST" and seen.headers["content-type"] == "application/json"
    body = json.loads(seen.body)
    assert body["logic"] == "AND"
    assert {f["field"] for f in body["filters"]} >= {"Delivery year", "Order year"}
    assert payload.data.startswith(b"Transfers of major conventional arms")  # the CSV, not the JSON envelope
    assert "decoded from the JSON 'bytes' field" in payload.name


def test_sipri_answer_that_is_not_the_envelope_is_a_clear_error(live, tmp_path):
    live.route(RECORDINGS["sipri_arms"]["path"], Reply(200, b'{"message": "Unauthorized"}',
                                                        {"Content-Type": "application/json"}))
    with pytest.raises(ExtractError, match=r"sipri_arms: POST .* not the expected \{\"bytes\": base64 CSV\}"):
        fetch("sipri_arms", tmp_path)


def test_events_default_to_the_curated_file_in_the_repository(tmp_path, monkeypatch):
    monkeypatch.delenv("EUJP_EVENTS_URL", raising=False)
    (payload,) = fetch("security_events", tmp_path)
    assert payload.data == (REPO / "data" / "snapshot" / "security_events.csv").read_bytes()
    assert payload.url.startswith("file://")


def test_comext_splits_extraction_too_big_by_period_and_concatenates(live, tmp_path):
    payloads = fetch("comext_goods", tmp_path)
    ranges = [(s.param("startPeriod"), s.param("endPeriod")) for s in live.seen()]
    # 7 months -> 413; halves 01..03 (data) and 04..07 -> 413; 04..05 (no results) and 06..07 (data)
    assert ranges == [("2025-01", "2025-07"), ("2025-01", "2025-03"), ("2025-04", "2025-07"),
                      ("2025-04", "2025-05"), ("2025-06", "2025-07")]
    assert [p.name for p in payloads] == ["DS-045409 2025-01..2025-03 84834030", "DS-045409 2025-06..2025-07 84834030"]
    recorded = b"".join(b"".join((REPO / f).read_bytes().splitlines(keepends=True)[1:])
                        for f in RECORDINGS["comext_goods"]["bodies"])
    assert b"".join(p.data.split(b"\n", 1)[1] for p in payloads) == recorded
    assert all(p.headers["content-type"].startswith("application/vnd.sdmx.data+csv") for p in payloads)


def test_comext_splits_a_single_month_by_chapter(live, tmp_path, monkeypatch):
    monkeypatch.setenv("EUJP_COMEXT_PRODUCTS", "84834030,85011010,85011091")
    monkeypatch.setenv("EUJP_COMEXT_START", "2025-07")
    header = b"DATAFLOW,LAST UPDATE,freq,reporter,partner,product,flow,indicators,TIME_PERIOD,OBS_VALUE\r\n"

    def by_chapter(seen: Seen) -> Reply:
        products = seen.path.rsplit("/", 1)[1].split(".")[3].split("+")
        if len({p[:2] for p in products}) > 1:
            return Reply(413, (FIXTURES / "comext_413_extraction_too_big.xml").read_bytes(),
                         {"Content-Type": "application/xml"})
        rows = b"".join(f"ESTAT:DS-045409(1.0),14/08/26 11:00:00,M,DE,JP,{p},1,VALUE_IN_EUROS,2025-07,1000\r\n"
                        .encode() for p in products)
        return Reply(200, header + rows, {"Content-Type": "application/vnd.sdmx.data+csv;version=1.0.0"})

    live.respond(RECORDINGS["comext_goods"]["path_prefix"], by_chapter, prefix=True)
    payloads = fetch("comext_goods", tmp_path)
    keys = [s.path.rsplit("/", 1)[1].split(".")[3] for s in live.seen()]
    assert keys == ["84834030+85011010+85011091", "84834030", "85011010+85011091"]
    assert [p.data.count(b"\n") - 1 for p in payloads] == [1, 2]


def test_comext_that_cannot_be_split_further_fails_clearly(live, tmp_path, monkeypatch):
    monkeypatch.setenv("EUJP_COMEXT_START", "2025-07")
    live.respond(RECORDINGS["comext_goods"]["path_prefix"],
                 lambda seen: Reply(413, (FIXTURES / "comext_413_extraction_too_big.xml").read_bytes()), prefix=True)
    with pytest.raises(ExtractError, match="413 EXTRACTION_TOO_BIG and a single month of a single product"):
        fetch("comext_goods", tmp_path)
    assert len(live.seen()) == 1


def test_comext_413_without_extraction_too_big_is_an_error(live, tmp_path):
    live.respond(RECORDINGS["comext_goods"]["path_prefix"],
                 lambda seen: Reply(413, b"Request Entity Too Large"), prefix=True)
    with pytest.raises(ExtractError, match="answered 413 without EXTRACTION_TOO_BIG"):
        fetch("comext_goods", tmp_path)


def test_incremental_requests_start_at_the_watermark_and_are_conditional(live, tmp_path):
    goods_etag = RECORDINGS["eurostat_goods"]["headers"]["ETag"]
    state = SourceState("eurostat_goods", etag=goods_etag, newest_period="2024", watermark="2022")
    assert fetch("eurostat_goods", tmp_path, state) == []  # 304: nothing new
    (seen,) = live.seen()
    assert seen.param("sinceTimePeriod") == "2022" and seen.headers["if-none-match"] == goods_etag

    live.clear_log()
    fetch("comext_goods", tmp_path, SourceState("comext_goods", newest_period="2025-06", watermark="2024-01"))
    assert live.seen()[0].param("startPeriod") == "2024-01" and live.seen()[0].param("endPeriod") == "2025-07"

    live.clear_log()
    fetch("oecd_restrictions", tmp_path, SourceState("oecd_restrictions", watermark="2023"))
    assert live.seen()[0].param("startPeriod") == "2023" and live.seen()[0].param("endPeriod") == "2025"

    live.clear_log()  # --force: the full range, unconditionally
    (payload,) = fetch("eurostat_goods", tmp_path, state, force=True)
    (seen,) = live.seen()
    assert seen.param("sinceTimePeriod") is None and "if-none-match" not in seen.headers
    assert payload.data == payload_bytes("eurostat_goods")


def test_fetch_live_reads_the_state_from_the_warehouse(live, tmp_path):
    settings = settings_for(tmp_path, "r1")
    with connect(settings.warehouse_path) as conn:
        ensure_schema(conn)
        from eujp.warehouse import write_source_state

        write_source_state(conn, SourceState("oecd_restrictions", watermark="2024",
                                             etag=RECORDINGS["oecd_restrictions"]["headers"]["ETag"]))
    assert fetch_live(SOURCES_BY_NAME["oecd_restrictions"], settings) == []
    assert live.seen()[0].param("startPeriod") == "2024"


# --- whole runs in live mode -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def snapshot_reference(tmp_path_factory):
    """The warehouse a snapshot-mode run builds from the bundled files (the recordings' bodies)."""
    tmp = tmp_path_factory.mktemp("snapshot")
    settings = Settings(warehouse_path=tmp / "warehouse.duckdb", publish_uri=str(tmp / "store"),
                        source_mode="snapshot", run_date=RUN_DATE, run_id="snapshot-ref")
    batches = run_pipeline(settings)
    assert all(b.status == "loaded" for b in batches.values()), {b.source: b.error for b in batches.values()}
    return {t.name: fact_rows(settings, t.name) for t in FACT_TABLES}


def test_live_run_loads_every_source_and_matches_the_snapshot_run(live, tmp_path, snapshot_reference):
    settings = settings_for(tmp_path, "live-1")
    batches = run_pipeline(settings)
    assert {n: b.status for n, b in batches.items()} == {n: "loaded" for n in SOURCES_BY_NAME}, \
        {n: b.error for n, b in batches.items()}
    # the same bytes through the same parsers: the same warehouse as the snapshot run
    for table in FACT_TABLES:
        assert fact_rows(settings, table.name) == snapshot_reference[table.name], table.name
    assert all(r[0] == "success" for r in runs(settings, "live-1").values())
    # incremental state
    with connect(settings.warehouse_path, read_only=True) as conn:
        goods = read_source_state(conn, "eurostat_goods")
        comext = read_source_state(conn, "comext_goods")
    assert goods.etag == RECORDINGS["eurostat_goods"]["headers"]["ETag"]
    assert goods.last_modified == RECORDINGS["eurostat_goods"]["headers"]["Last-Modified"]
    assert (goods.newest_period, goods.watermark, goods.last_status) == ("2024", "2022", "success")
    assert (comext.newest_period, comext.watermark, comext.etag) == ("2025-06", "2024-01", None)
    # the raw zone holds what was fetched, with the request URL and the response headers
    landed = read_landed(open_store(settings.publish_uri), "eurostat_goods", RUN_DATE)
    assert len(landed) == 1 and landed[0].data == payload_bytes("eurostat_goods")
    assert landed[0].url.startswith(live.url + "/api/dissemination/statistics/1.0/data/ext_lt_maineu?format=JSON")
    assert landed[0].headers["content-encoding"] == "gzip"
    assert len(read_landed(open_store(settings.publish_uri), "comext_goods", RUN_DATE)) == 2


def test_unchanged_sources_cost_one_small_request_and_zero_load_work(live, tmp_path):
    first = settings_for(tmp_path, "live-1")
    run_pipeline(first)
    before = {t.name: query(first, f"SELECT count(*), min(run_id), max(run_id) FROM {t.name}") for t in FACT_TABLES}
    store = open_store(first.publish_uri)
    raw_before = set(store.list_keys("raw"))
    live.clear_log()

    second = settings_for(tmp_path, "live-2", run_date=RUN_DATE.replace(day=16))
    batches = run_pipeline(second)
    status = {n: b.status for n, b in batches.items()}
    assert status == {"eurostat_goods": "unchanged", "eurostat_services": "unchanged", "oecd_restrictions": "unchanged",
                      "security_events": "unchanged", "sipri_arms": "unchanged", "comext_goods": "loaded"}
    # 304 sources: one conditional request each, nothing landed, nothing parsed
    for name in ("eurostat_goods", "eurostat_services", "oecd_restrictions", "security_events"):
        (seen,) = live.seen(RECORDINGS[name]["path"])
        assert seen.headers.get("if-none-match") == RECORDINGS[name]["headers"]["ETag"]
        assert batches[name].raw_keys == [] and batches[name].valid is None
    # SIPRI sends no validators: fetched again, same checksum, not parsed
    assert batches["sipri_arms"].valid is None and "same content checksum" in batches["sipri_arms"].note
    # Comext restarted at its watermark and reloaded the same figures
    comext_requests = [s for s in live.seen() if "DS-045409" in s.path]
    assert comext_requests[0].param("startPeriod") == "2024-01"
    assert query(second, "SELECT count(*) FROM etl_revisions") == [(0,)]
    recorded = runs(second, "live-2")
    for name in ("eurostat_goods", "eurostat_services", "oecd_restrictions", "security_events", "sipri_arms"):
        assert recorded[name][:4] == ("unchanged", 0, 0, 0) and recorded[name][4].startswith("unchanged:")
        table = SOURCES_BY_NAME[name].table.name
        assert query(second, f"SELECT count(*), min(run_id), max(run_id) FROM {table}") == before[table]
    # landed on the new day: only what was fetched with a body (Comext; SIPRI, whose bytes are those of run 1)
    new_keys = set(store.list_keys("raw")) - raw_before
    assert {k.split("/")[1] for k in new_keys} == {"comext_goods", "sipri_arms"}
    sipri_sha = {k.rsplit("/", 1)[1] for k in new_keys if k.startswith("raw/sipri_arms/")}
    assert sipri_sha == {k.rsplit("/", 1)[1] for k in raw_before if k.startswith("raw/sipri_arms/")}

    # third run: Comext asks for the same periods again and gets the same bytes: unchanged too
    third = settings_for(tmp_path, "live-3", run_date=RUN_DATE.replace(day=17))
    assert {b.status for b in run_pipeline(third).values()} == {"unchanged"}
    with connect(third.warehouse_path, read_only=True) as conn:
        state = read_source_state(conn, "comext_goods")
    assert state.last_status == "unchanged" and state.watermark == "2024-01"


def test_revised_figures_replace_old_ones_and_are_recorded(live, tmp_path):
    run_pipeline(settings_for(tmp_path, "live-1"))
    doc = jsonstat_doc("eurostat_goods")
    old = doc["value"]["103"]
    revised = with_value(doc, 103, old + 123.4)
    live.route(RECORDINGS["eurostat_goods"]["path"],
               reply("eurostat_goods", body=json.dumps(revised).encode(),
                     headers={**RECORDINGS["eurostat_goods"]["headers"], "ETag": '"revised-1"'}))
    live.comext.revised[("84834030", "2025-02", "VALUE_IN_EUROS")] = b"1663800"
    settings = settings_for(tmp_path, "live-2", run_date=RUN_DATE.replace(day=16))
    batches = run_pipeline(settings)
    assert batches["eurostat_goods"].status == "loaded" and batches["comext_goods"].status == "loaded"
    revisions = query(settings, "SELECT table_name, source, natural_key, column_name, old_value, new_value, run_id "
                      "FROM etl_revisions ORDER BY table_name")
    (goods_key, goods_rev), (comext_key, comext_rev) = [(json.loads(r[2]), r) for r in revisions]
    assert goods_rev[0:2] == ("fact_goods_trade", "eurostat_goods") and goods_rev[3:] == (
        "value_mio_eur", old, pytest.approx(old + 123.4), "live-2")
    value = query(settings, "SELECT value_mio_eur FROM fact_goods_trade WHERE reporter = ? AND flow = ? "
                  "AND period_year = ?", [goods_key["reporter"], goods_key["flow"], goods_key["period_year"]])
    assert value == [(pytest.approx(old + 123.4),)]
    assert comext_rev[0] == "fact_goods_trade_product" and comext_rev[3:] == (
        "value_eur", 1663789.0, 1663800.0, "live-2")
    assert comext_key == {"reporter": "DE", "partner": "JP", "product_cn8": "84834030", "flow": "import",
                          "period_code": "2025-02"}
    with connect(settings.warehouse_path, read_only=True) as conn:
        assert read_source_state(conn, "eurostat_goods").etag == '"revised-1"'


def _fault(source: str, *replies: Reply):
    return source, list(replies)


def _new_dimension_reply() -> Reply:
    doc = with_new_dimension(jsonstat_doc("eurostat_goods"))
    return reply("eurostat_goods", body=json.dumps(doc).encode(),
                 headers={**RECORDINGS["eurostat_goods"]["headers"], "ETag": '"with-unit"'})


def _oecd_missing_column_reply() -> Reply:
    frame = pl.read_csv(payload_bytes("oecd_restrictions"), infer_schema=False)
    return reply("oecd_restrictions", body=frame.drop("POLICY_DESCRIPTION").write_csv().encode())


FAULTS = {
    # transient: retried, then loaded
    "429 with Retry-After, then 200": (
        _fault("eurostat_goods", Reply(429, b"Too Many Requests", {"Retry-After": "1"}), reply("eurostat_goods")),
        "loaded", []),
    "503 twice, then 200": (
        _fault("eurostat_services", Reply(503, b"unavailable"), Reply(503, b"unavailable"),
               reply("eurostat_services")),
        "loaded", []),
    "a hang past the read timeout, then 200": (
        _fault("oecd_restrictions", Reply(200, b"x", delay=5), reply("oecd_restrictions")), "loaded", []),
    # permanent: a clear error, the source not loaded, the others loaded
    "a hang on every attempt": (
        _fault("security_events", Reply(200, b"x", delay=30)), "failed",
        ["security_events (fact_security_events): extract failed", "ReadTimeout", "/curated/security_events.csv"]),
    "a truncated body on every attempt": (
        _fault("eurostat_services", replace(reply("eurostat_services"), send_bytes=500)), "failed",
        ["eurostat_services", "truncated body after 500 of", "failed after 3 attempt(s)"]),
    "a 200 HTML page": (
        _fault("eurostat_goods", Reply(200, (FIXTURES / "maintenance_page.html").read_bytes(),
                                       {"Content-Type": "text/html"})), "failed",
        ["eurostat_goods", "ext_lt_maineu?format=JSON", "answered 200 with an HTML page", "<!DOCTYPE html>"]),
    "a JSON-stat dataset with a new dimension": (
        _fault("eurostat_goods", _new_dimension_reply()), "failed",
        ["eurostat_goods (fact_goods_trade)", "unit"]),
    "an SDMX-CSV with a missing column": (
        _fault("oecd_restrictions", _oecd_missing_column_reply()), "failed",
        ["oecd_restrictions (fact_export_restrictions): parse failed", "POLICY_DESCRIPTION"]),
    "the SIPRI backend's per-delivery layout": (
        _fault("sipri_arms", reply("sipri_arms", body=json.dumps({"bytes": base64.b64encode(
            (FIXTURES / "sipri_backend_trade_register_2025-02_excerpt.csv").read_bytes()).decode()}).encode())),
        "failed", ["sipri_arms (fact_arms_transfers): parse failed", "no header line found",
                   "Recipient,Supplier,Year of order"]),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_each_fault_ends_in_a_loaded_warehouse_or_a_clear_error(live, tmp_path, snapshot_reference, fault):
    (source, script), expected_status, fragments = FAULTS[fault]
    live.route(RECORDINGS[source]["path"], *script)
    settings = settings_for(tmp_path, "fault-1")
    batches = run_pipeline(settings)
    batch = batches[source]
    assert batch.status == expected_status, batch.error
    recorded = runs(settings, "fault-1")
    table = SOURCES_BY_NAME[source].table.name
    if expected_status == "loaded":
        assert recorded[source][0] == "success"
        assert fact_rows(settings, table) == snapshot_reference[table]
    else:
        assert recorded[source][0] == "failed" and recorded[source][4] == batch.error
        for fragment in fragments:
            assert fragment in batch.error, (fragment, batch.error)
        assert query(settings, f"SELECT count(*) FROM {table}") == [(0,)]  # nothing half-loaded
        with connect(settings.warehouse_path, read_only=True) as conn:
            assert read_source_state(conn, source).last_status == "failed"
    # every other source loaded, as from the snapshot
    for other in SOURCES_BY_NAME:
        if other != source:
            assert batches[other].status == "loaded", batches[other].error
            other_table = SOURCES_BY_NAME[other].table.name
            assert fact_rows(settings, other_table) == snapshot_reference[other_table]


def test_drift_keeps_the_previous_figures_and_the_next_run_retries(live, tmp_path):
    first = settings_for(tmp_path, "live-1")
    run_pipeline(first)
    before = query(first, "SELECT * FROM fact_goods_trade ORDER BY ALL")
    live.route(RECORDINGS["eurostat_goods"]["path"], _new_dimension_reply())
    second = settings_for(tmp_path, "live-2", run_date=RUN_DATE.replace(day=16))
    batches = run_pipeline(second)
    assert batches["eurostat_goods"].status == "failed" and "unit" in batches["eurostat_goods"].error
    assert query(second, "SELECT * FROM fact_goods_trade ORDER BY ALL") == before  # as it was
    assert runs(second, "live-2")["eurostat_goods"][0] == "failed"
    # the service is fixed: the next run sends the validators of the last *successful* load, gets 304
    live.route(RECORDINGS["eurostat_goods"]["path"], reply("eurostat_goods"))
    live.clear_log()
    third = settings_for(tmp_path, "live-3", run_date=RUN_DATE.replace(day=17))
    assert run_pipeline(third)["eurostat_goods"].status == "unchanged"
    assert live.seen(RECORDINGS["eurostat_goods"]["path"])[0].headers["if-none-match"] == \
        RECORDINGS["eurostat_goods"]["headers"]["ETag"]


def test_from_raw_rebuilds_the_live_run_without_the_network(live, tmp_path):
    settings = settings_for(tmp_path, "live-1")
    run_pipeline(settings)
    expected = {t.name: fact_rows(settings, t.name) for t in FACT_TABLES}
    live.stop()  # nothing to fetch from any more
    rebuilt = settings_for(tmp_path, "raw-1", source_mode="raw", raw_date=RUN_DATE,
                           warehouse_path=tmp_path / "rebuilt" / "warehouse.duckdb")
    batches = run_pipeline(rebuilt)
    assert {b.status for b in batches.values()} == {"loaded"}
    assert {t.name: fact_rows(rebuilt, t.name) for t in FACT_TABLES} == expected


def test_snapshot_mode_skips_unchanged_sources_unless_forced(tmp_path):
    settings = settings_for(tmp_path, "snap-1", source_mode="snapshot")
    run_pipeline(settings)
    second = run_pipeline(replace(settings, run_id="snap-2"))
    assert {b.status for b in second.values()} == {"unchanged"}
    assert {r[0] for r in runs(settings, "snap-2").values()} == {"unchanged"}
    forced = run_pipeline(replace(settings, run_id="snap-3", force=True))
    assert {b.status for b in forced.values()} == {"loaded"}
    assert query(settings, "SELECT count(*) FROM etl_revisions") == [(0,)]


def test_live_mode_without_reachable_services_fails_every_source_clearly(tmp_path, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    for var in ("EUJP_EUROSTAT_URL", "EUJP_COMEXT_URL", "EUJP_OECD_URL"):
        monkeypatch.setenv(var, dead)
    monkeypatch.setenv("EUJP_SIPRI_URL", dead + "/api/p/trades/trade-register-csv/")
    monkeypatch.setenv("EUJP_EVENTS_URL", dead + "/events.csv")
    for k, v in FAST_ENV.items():
        monkeypatch.setenv(k, v)
    settings = settings_for(tmp_path, "dead-1")
    batches = run_pipeline(settings)
    assert {b.status for b in batches.values()} == {"failed"}
    assert all("ConnectError" in b.error and dead in b.error for b in batches.values())
    assert {r[0] for r in runs(settings, "dead-1").values()} == {"failed"}


def test_fetch_live_uses_the_policy_it_is_given(live, tmp_path):
    live.route(RECORDINGS["eurostat_goods"]["path"], Reply(503, b"x"))
    with pytest.raises(ExtractError, match="failed after 2 attempt"):
        fetch_live(SOURCES_BY_NAME["eurostat_goods"], settings_for(tmp_path, "p"),
                   policy=HttpPolicy(max_attempts=2, backoff_base=0.001, budget_seconds=5), sleep=lambda s: None)


def test_comext_with_no_observations_is_nothing_new(live, tmp_path):
    live.comext.rows = []
    assert fetch("comext_goods", tmp_path) == []
    assert {s.param("endPeriod") for s in live.seen()} >= {"2025-03", "2025-05", "2025-07"}


@pytest.mark.slow
def test_daily_flow_in_live_mode_then_unchanged(live, tmp_path, prefect_server):
    """The Prefect flow end to end in live mode: everything loads; the next run finds nothing new."""
    from flows.daily import daily_flow

    def flow_run(run_id: str):
        state = daily_flow(warehouse=str(tmp_path / "var" / "warehouse.duckdb"),
                           publish_uri=str(tmp_path / "store"), source_mode="live", run_id=run_id,
                           return_state=True)
        return state, state.result(raise_on_failure=False)

    state, first = flow_run("20250715T060000Z-live01")
    assert state.is_completed(), first
    assert {s["source"]: s["status"] for s in first["sources"]} == {n: "loaded" for n in SOURCES_BY_NAME}
    live.clear_log()
    state, second = flow_run("20250715T070000Z-live02")
    assert state.is_completed(), second
    statuses = {s["source"]: s["status"] for s in second["sources"]}
    # Comext has no validators: it is re-read from its watermark; whether the slices' bytes equal run 1's
    # depends on how today's period range splits (the flow runs with today's date)
    comext = statuses.pop("comext_goods")
    assert comext in ("loaded", "unchanged")
    assert next(s.param("startPeriod") for s in live.seen() if "DS-045409" in s.path) == "2024-01"
    assert set(statuses.values()) == {"unchanged"}
    assert second["table_rows"]["fact_goods_trade"] == first["table_rows"]["fact_goods_trade"]
    assert [s.headers.get("if-none-match") for s in live.seen(RECORDINGS["eurostat_goods"]["path"])] == \
        [RECORDINGS["eurostat_goods"]["headers"]["ETag"]]
    if comext == "loaded":  # something new: published, the unchanged sources say so in the manifest
        manifest = json.loads((tmp_path / "store" / "latest" / "manifest.json").read_text())
        assert manifest["run_id"] == "20250715T070000Z-live02"
        assert manifest["sources"]["eurostat_goods"]["status"] == "unchanged"
    else:  # nothing new at all: the first run stays the published one, the check is recorded beside it
        assert second["current_run_id"] == "20250715T060000Z-live01"
        check = json.loads((tmp_path / "store" / "latest-check.json").read_text())
        assert check["run_id"] == "20250715T070000Z-live02" and check["sources"]["eurostat_goods"].startswith("unchanged")
