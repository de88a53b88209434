"""Whole pipeline runs in live mode against the recorded responses replayed on 127.0.0.1 (real parsers,
transforms, validation, load and audit; the plain step functions of tests/support/live.py, no Prefect): every
source loads as from the snapshot, unchanged sources cost one request, revisions are recorded, each fault ends
loaded or with a clear error, --from-raw rebuilds without the network. Each source's own live requests are
tested in its folder (tests/sources/<source>/test_live_*.py)."""

from __future__ import annotations

import base64
import json
import socket
from dataclasses import replace

import polars as pl
import pytest
from support.live import FAST_ENV, RUN_DATE, fact_rows, query, run_pipeline, runs, settings_for
from support.recordings import (
    FIXTURES,
    RECORDINGS,
    REPO,
    jsonstat_doc,
    payload_bytes,
    reply,
    with_new_dimension,
    with_value,
)
from support.replay_server import Reply

from eujp.config import BUNDLED_SNAPSHOT_DIR, Settings
from eujp.landing import read_landed
from eujp.sources import (
    SOURCES_BY_NAME,
    comext_goods,
    eurostat_goods,
    eurostat_services,
    oecd_restrictions,
    security_events,
    sipri_arms,
)
from eujp.storage import open_store
from eujp.tables import FACT_TABLES
from eujp.warehouse import connect, read_source_state

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("loopback_only")]

# The sources these runs single out, by their modules (a source's name is written in its own folder only).
GOODS, SERVICES, COMEXT = eurostat_goods.SOURCE.name, eurostat_services.SOURCE.name, comext_goods.SOURCE.name
OECD, SIPRI, EVENTS = oecd_restrictions.SOURCE.name, sipri_arms.SOURCE.name, security_events.SOURCE.name


# --- whole runs in live mode -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def snapshot_reference(tmp_path_factory):
    """The warehouse a snapshot-mode run builds from the bundled files the recordings answer with: a source
    answered by one recorded body (Eurostat goods: Japan's file, not the main partners' one beside it in the
    bundled folder) is read from that file alone."""
    tmp = tmp_path_factory.mktemp("snapshot")
    folder = tmp / "snapshot"
    folder.mkdir()
    recorded = {(REPO / r["body"]).name for r in RECORDINGS.values() if "body" in r}
    not_recorded = {f.name for s in SOURCES_BY_NAME.values() if s.name in RECORDINGS and "body" in RECORDINGS[s.name]
                    for f in BUNDLED_SNAPSHOT_DIR.glob(s.snapshot_glob)} - recorded
    for f in BUNDLED_SNAPSHOT_DIR.iterdir():
        if f.is_file() and f.name not in not_recorded:
            (folder / f.name).symlink_to(f)
    settings = Settings(warehouse_path=tmp / "warehouse.duckdb", publish_uri=str(tmp / "store"),
                        source_mode="snapshot", run_date=RUN_DATE, run_id="snapshot-ref", snapshot_dir=folder)
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
        goods = read_source_state(conn, GOODS)
        comext = read_source_state(conn, COMEXT)
    assert goods.etag == RECORDINGS[GOODS]["headers"]["ETag"]
    assert goods.last_modified == RECORDINGS[GOODS]["headers"]["Last-Modified"]
    assert (goods.newest_period, goods.watermark, goods.last_status) == ("2024", "2022", "success")
    assert (comext.newest_period, comext.watermark, comext.etag) == ("2025-06", "2024-01", None)
    # the raw zone holds what was fetched, with the request URL and the response headers
    landed = read_landed(open_store(settings.publish_uri), GOODS, RUN_DATE)
    assert len(landed) == 1 and landed[0].read() == payload_bytes(GOODS)
    assert landed[0].url.startswith(live.url + "/api/dissemination/statistics/1.0/data/ext_lt_maineu?format=JSON")
    assert landed[0].headers["content-encoding"] == "gzip"
    comext_landed = read_landed(open_store(settings.publish_uri), COMEXT, RUN_DATE)
    # the slices, the product codelist and the coverage statement (every CN8 code of the codelist was asked for)
    assert sorted(p.kind for p in comext_landed) == ["codelist", "coverage", "data", "data"]


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
    assert status == {n: "unchanged" for n in SOURCES_BY_NAME}
    # 304 sources: one conditional request each, nothing landed, nothing parsed
    for name in (GOODS, SERVICES, OECD, EVENTS):
        (seen,) = live.seen(RECORDINGS[name]["path"])
        assert seen.headers.get("if-none-match") == RECORDINGS[name]["headers"]["ETag"]
        assert batches[name].raw_keys == [] and batches[name].valid is None
    # SIPRI sends no validators: fetched again, same checksum, not parsed
    assert batches[SIPRI].valid is None and "same content checksum" in batches[SIPRI].note
    # Comext: one small request, its dataflow, whose data last changed before the first run
    (comext_request,) = [s for s in live.seen() if "DS-045409" in s.path]
    assert comext_request.path == RECORDINGS[COMEXT]["dataflow_path"]
    assert query(second, "SELECT count(*) FROM etl_revisions") == [(0,)]
    recorded = runs(second, "live-2")
    for name in (GOODS, SERVICES, OECD, EVENTS, SIPRI, COMEXT):
        assert recorded[name][:4] == ("unchanged", 0, 0, 0) and recorded[name][4].startswith("unchanged:")
        table = SOURCES_BY_NAME[name].table.name
        assert query(second, f"SELECT count(*), min(run_id), max(run_id) FROM {table}") == before[table]
    # landed on the new day: only what was fetched with a body (SIPRI, whose bytes are those of run 1)
    new_keys = set(store.list_keys("raw")) - raw_before
    assert {k.split("/")[1] for k in new_keys} == {SIPRI}
    sipri_sha = {k.rsplit("/", 1)[1] for k in new_keys if k.startswith(f"raw/{SIPRI}/")}
    assert sipri_sha == {k.rsplit("/", 1)[1] for k in raw_before if k.startswith(f"raw/{SIPRI}/")}

    # third run: unchanged too
    third = settings_for(tmp_path, "live-3", run_date=RUN_DATE.replace(day=17))
    assert {b.status for b in run_pipeline(third).values()} == {"unchanged"}
    with connect(third.warehouse_path, read_only=True) as conn:
        state = read_source_state(conn, COMEXT)
    assert state.last_status == "unchanged" and state.watermark == "2024-01"


def test_revised_figures_replace_old_ones_and_are_recorded(live, tmp_path):
    run_pipeline(settings_for(tmp_path, "live-1"))
    doc = jsonstat_doc(GOODS)
    old = doc["value"]["103"]
    revised = with_value(doc, 103, old + 123.4)
    live.route(RECORDINGS[GOODS]["path"],
               reply(GOODS, body=json.dumps(revised).encode(),
                     headers={**RECORDINGS[GOODS]["headers"], "ETag": '"revised-1"'}))
    live.sliced[COMEXT].revise(("84834030", "2025-02", "VALUE_IN_EUROS"), b"1663800")
    settings = settings_for(tmp_path, "live-2", run_date=RUN_DATE.replace(day=16))
    batches = run_pipeline(settings)
    assert batches[GOODS].status == "loaded" and batches[COMEXT].status == "loaded"
    revisions = query(settings, "SELECT table_name, source, natural_key, column_name, old_value, new_value, run_id "
                      "FROM etl_revisions ORDER BY table_name")
    (goods_key, goods_rev), (comext_key, comext_rev) = [(json.loads(r[2]), r) for r in revisions]
    assert goods_rev[0:2] == ("fact_goods_trade", GOODS) and goods_rev[3:] == (
        "value_mio_eur", old, pytest.approx(old + 123.4), "live-2")
    value = query(settings, "SELECT value_mio_eur FROM fact_goods_trade WHERE reporter = ? AND flow = ? "
                  "AND period_year = ?", [goods_key["reporter"], goods_key["flow"], goods_key["period_year"]])
    assert value == [(pytest.approx(old + 123.4),)]
    assert comext_rev[0] == "fact_goods_trade_product" and comext_rev[3:] == (
        "value_eur", 1663789.0, 1663800.0, "live-2")
    assert comext_key == {"reporter": "DE", "partner": "JP", "product_cn8": "84834030", "flow": "import",
                          "period_code": "2025-02"}
    with connect(settings.warehouse_path, read_only=True) as conn:
        assert read_source_state(conn, GOODS).etag == '"revised-1"'


def _fault(source: str, *replies: Reply):
    return source, list(replies)


def _new_dimension_reply() -> Reply:
    doc = with_new_dimension(jsonstat_doc(GOODS))
    return reply(GOODS, body=json.dumps(doc).encode(),
                 headers={**RECORDINGS[GOODS]["headers"], "ETag": '"with-unit"'})


def _oecd_missing_column_reply() -> Reply:
    frame = pl.read_csv(payload_bytes(OECD), infer_schema=False)
    return reply(OECD, body=frame.drop("POLICY_DESCRIPTION").write_csv().encode())


FAULTS = {
    # transient: retried, then loaded
    "429 with Retry-After, then 200": (
        _fault(GOODS, Reply(429, b"Too Many Requests", {"Retry-After": "1"}), reply(GOODS)),
        "loaded", []),
    "503 twice, then 200": (
        _fault(SERVICES, Reply(503, b"unavailable"), Reply(503, b"unavailable"),
               reply(SERVICES)),
        "loaded", []),
    "a hang past the read timeout, then 200": (
        _fault(OECD, Reply(200, b"x", delay=5), reply(OECD)), "loaded", []),
    # permanent: a clear error, the source not loaded, the others loaded
    "a hang on every attempt": (
        _fault(EVENTS, Reply(200, b"x", delay=30)), "failed",
        [f"{EVENTS} (fact_security_events): extract failed", "ReadTimeout", "/curated/security_events.csv"]),
    "a truncated body on every attempt": (
        _fault(SERVICES, replace(reply(SERVICES), send_bytes=500)), "failed",
        [SERVICES, "truncated body after 500 of", "failed after 3 attempt(s)"]),
    "a 200 HTML page": (
        _fault(GOODS, Reply(200, (FIXTURES / "maintenance_page.html").read_bytes(),
                                       {"Content-Type": "text/html"})), "failed",
        [GOODS, "ext_lt_maineu?format=JSON", "answered 200 with an HTML page", "<!DOCTYPE html>"]),
    "a JSON-stat dataset with a new dimension": (
        _fault(GOODS, _new_dimension_reply()), "failed",
        [f"{GOODS} (fact_goods_trade)", "unit"]),
    "an SDMX-CSV with a missing column": (
        _fault(OECD, _oecd_missing_column_reply()), "failed",
        [f"{OECD} (fact_export_restrictions): parse failed", "POLICY_DESCRIPTION"]),
    "the SIPRI backend's per-delivery layout": (
        _fault(SIPRI, reply(SIPRI, body=json.dumps({"bytes": base64.b64encode(
            (FIXTURES / "sipri_backend_trade_register_2025-02_excerpt.csv").read_bytes()).decode()}).encode())),
        "failed", [f"{SIPRI} (fact_arms_transfers): parse failed", "no header line found",
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
    live.route(RECORDINGS[GOODS]["path"], _new_dimension_reply())
    second = settings_for(tmp_path, "live-2", run_date=RUN_DATE.replace(day=16))
    batches = run_pipeline(second)
    assert batches[GOODS].status == "failed" and "unit" in batches[GOODS].error
    assert query(second, "SELECT * FROM fact_goods_trade ORDER BY ALL") == before  # as it was
    assert runs(second, "live-2")[GOODS][0] == "failed"
    # the service is fixed: the next run sends the validators of the last *successful* load, gets 304
    live.route(RECORDINGS[GOODS]["path"], reply(GOODS))
    live.clear_log()
    third = settings_for(tmp_path, "live-3", run_date=RUN_DATE.replace(day=17))
    assert run_pipeline(third)[GOODS].status == "unchanged"
    assert live.seen(RECORDINGS[GOODS]["path"])[0].headers["if-none-match"] == \
        RECORDINGS[GOODS]["headers"]["ETag"]


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
