"""Every CN8 product from the live Comext service (issue 12, item 1), against a local service that publishes a
product codelist and answers 413 EXTRACTION_TOO_BIG to wide requests: the product list is learnt from the
codelist, the requests are split by chapter and by month until each fits, each piece is landed once, the CN8
descriptions name dim_product; the next day sends `updatedAfter`, and an answer with nothing changed costs no
load work (the plain step functions of tests/support/live.py, no Prefect)."""

from __future__ import annotations

import hashlib
import json
import re
import sys
import threading
import tracemalloc
from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from support.live import FAST_ENV, RUN_DATE, query, run_pipeline, runs, settings_for
from support.recordings import FIXTURES, RECORDINGS, AsyncComext
from support.replay_server import Reply, Seen

from eujp.compare import compare_warehouses
from eujp.landing import discard_spooled, read_landed
from eujp.live import fetch_live
from eujp.marts.build import build_marts
from eujp.pipeline import land_payloads, source_warnings
from eujp.reference import load_reference_tables
from eujp.sources import comext_goods
from eujp.storage import open_store
from eujp.warehouse import connect, read_source_state

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("loopback_only")]

COMEXT = comext_goods.SOURCE.name
REC = RECORDINGS[COMEXT]
MONTHS = [f"2025-{m:02d}" for m in range(1, 8)]  # EUJP_COMEXT_START 2025-01 .. the run month 2025-07
# The codelist: CN8 codes of three chapters, and codes of other levels and a pseudo-code that are not asked for.
CN8 = {"01012100": "test label: breeding horses", "01012910": "test label: horses for slaughter",
       "84834030": "test label: ball or roller screws", "84839089": "test label: gear parts",
       "85011010": "test label: synchronous motors"}
OTHER_CODES = ("01", "0101", "84", "8483", "85", "TOTAL", "8483XXXX")
REPORTERS = ("EU27_2020", "DE")
HEADER = b"DATAFLOW,LAST UPDATE,freq,reporter,partner,product,flow,indicators,TIME_PERIOD,OBS_VALUE\r\n"
PUBLISHED = datetime(2025, 7, 1, 11, 0, tzinfo=UTC)
# What one request may return: two months of one chapter (2 reporters x 2 products x 2 flows x 2 indicators).
MAX_OBSERVATIONS = 2 * 2 * 2 * 2 * 2


def codelist_xml() -> bytes:
    codes = "".join(f'<s:Code id="{c}"><c:Name xml:lang="de">de {c}</c:Name><c:Name xml:lang="en">{label}</c:Name>'
                    "</s:Code>" for c, label in {**{c: f"level {c}" for c in OTHER_CODES}, **CN8}.items())
    return ('<?xml version="1.0" encoding="UTF-8"?><m:Structure '
            'xmlns:m="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/message" '
            'xmlns:s="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/structure" '
            'xmlns:c="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/common"><m:Structures><s:Codelists>'
            f'<s:Codelist id="CXT_NC" agencyID="ESTAT" version="7.0">{codes}</s:Codelist>'
            "</s:Codelists></m:Structures></m:Structure>").encode()


class AllProductsComext:
    """A Comext service: the codelist above; the dataflow with UPDATE_DATA; data for every (reporter, product,
    flow, month, indicator) asked, `updatedAfter` honoured per observation; 413 EXTRACTION_TOO_BIG when the
    answer would hold more than MAX_OBSERVATIONS (more than two months of a chapter, or several chapters); no
    rows: 404 fault 100."""

    def __init__(self) -> None:
        self.too_big = (FIXTURES / "comext_413_extraction_too_big.xml").read_bytes()
        self.no_results = (FIXTURES / "eurostat_fault_100_no_results.xml").read_bytes()
        self.dataflow = (FIXTURES / "comext_dataflow_ds045409.xml").read_text(encoding="utf-8")
        self.update_data = PUBLISHED
        self.revised: dict[tuple[str, str, str, str, str], tuple[int, datetime]] = {}
        self.answered: list[tuple[tuple[str, ...], str, str]] = []  # (products, start, end) answered with data
        self.partners_answered: list[tuple[str, ...]] = []  # the partners of each of those answers
        self.silent: set[str] = set()  # partners the service holds no observations of
        self.months = list(MONTHS)  # the months it holds
        self.lock = threading.Lock()

    @staticmethod
    def value(reporter: str, product: str, flow: str, month: str, indicator: str, partner: str = "JP") -> int:
        return int(product[-4:]) * 10 + int(month[-2:]) + (5 if flow == "2" else 0) + (
            1000 if indicator == "VALUE_IN_EUROS" else 0) + (7 if reporter == "DE" else 0) + (
            0 if partner == "JP" else 300)

    def revise(self, key: tuple[str, str, str, str, str], value: int) -> None:
        now = datetime.now(UTC)
        self.revised[key] = (value, now)
        self.update_data = now

    def __call__(self, seen: Seen) -> Reply:
        if seen.path == REC["codelist_path"]:
            return Reply(200, codelist_xml(), REC["structure_headers"])
        if seen.path == REC["dataflow_path"]:
            stamp = self.update_data.strftime("%Y-%m-%dT%H:%M:%S%z")
            return Reply(200, self.dataflow.replace("{update_data}", stamp).encode(), REC["structure_headers"])
        key = seen.path.rsplit("/", 1)[1].split(".")
        partners = key[2].split("+") if key[2] else ["JP"]
        products, flows, indicators = key[3].split("+"), key[4].split("+"), key[5].split("+")
        start, end = seen.param("startPeriod"), seen.param("endPeriod")
        months = [m for m in self.months if start <= m <= end]
        after = seen.param("updatedAfter")
        after = datetime.fromisoformat(after) if after else None
        if after is None and len(REPORTERS) * len(partners) * len(products) * len(flows) * len(months) * \
                len(indicators) > MAX_OBSERVATIONS:  # too big: told before any row is made
            return Reply(413, self.too_big, {"Content-Type": "application/xml"})
        rows = []
        for reporter in REPORTERS:
            for partner in (p for p in partners if p not in self.silent):
                for product in products:
                    for flow in flows:
                        for month in months:
                            for indicator in indicators:
                                k = (reporter, product, flow, month, indicator)
                                value, updated = self.revised.get(k, (self.value(*k, partner), PUBLISHED))
                                if after is None or updated > after:
                                    rows.append(f"ESTAT:DS-045409(1.0),{updated:%d/%m/%y %H:%M:%S},M,{reporter},"
                                                f"{partner},{product},{flow},{indicator},{month},{value}\r\n"
                                                .encode())
        if len(rows) > MAX_OBSERVATIONS:  # the service estimates the extraction's size
            return Reply(413, self.too_big, {"Content-Type": "application/xml"})
        if not rows:
            return Reply(404, self.no_results, {"Content-Type": "application/xml"})
        if after is None:
            with self.lock:
                self.answered.append((tuple(products), start, end))
                self.partners_answered.append(tuple(partners))
        return Reply(200, HEADER + b"".join(rows), dict(REC["headers"]))


@pytest.fixture
def comext(server, monkeypatch):
    service = AllProductsComext()
    server.respond("/api/comext/dissemination/sdmx/2.1/", service, prefix=True)
    for k, v in FAST_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("EUJP_COMEXT_URL", server.url)
    monkeypatch.delenv("EUJP_COMEXT_PRODUCTS", raising=False)  # the default: every CN8 code of the codelist
    monkeypatch.setenv("EUJP_COMEXT_REPORTERS", "+".join(REPORTERS))
    return service


def data_requests(server) -> list[Seen]:
    return [s for s in server.seen() if s.path.startswith(REC["path_prefix"])]


def fact_rows(settings) -> dict[tuple, tuple]:
    rows = query(settings, "SELECT reporter, product_cn8, flow, period_code, value_eur, quantity_kg, run_id "
                 "FROM fact_goods_trade_product")
    return {r[:4]: r[4:] for r in rows}


def coverage(settings) -> set[tuple]:
    return set(query(settings, "SELECT reporter, partner, flow, strftime(period, '%Y-%m'), codelist, run_id "
                     "FROM etl_comext_coverage"))


def test_every_product_split_by_chapter_and_month_labelled_then_updated_after(server, comext, tmp_path):
    first = settings_for(tmp_path, "live-1")
    (batch,) = run_pipeline(first, only=(COMEXT,)).values()
    assert batch.status == "loaded", batch.error

    # the product list came from the codelist: every CN8 code, nothing else, chapter by chapter
    asked = {p for s in data_requests(server) for p in s.path.rsplit("/", 1)[1].split(".")[3].split("+")}
    assert asked == set(CN8)
    assert all(len({p[:2] for p in products}) == 1 and products for products, _, _ in comext.answered)
    assert {p[:2] for s in data_requests(server) for p in s.path.rsplit("/", 1)[1].split(".")[3].split("+")} == {
        "01", "84", "85"}
    # split by month until each piece fits: every (product, month) answered exactly once
    pieces = [(p, m) for products, start, end in comext.answered for p in products for m in MONTHS
              if start <= m <= end]
    assert sorted(pieces) == sorted((p, m) for p in CN8 for m in MONTHS)
    assert any(s.param("startPeriod") == "2025-01" and s.param("endPeriod") == "2025-07"
               for s in data_requests(server))  # the planned slice, answered 413 and split
    # each piece landed once, beside the codelist
    landed = read_landed(open_store(first.publish_uri), COMEXT, RUN_DATE)
    assert sorted(p.kind for p in landed) == ["codelist", "coverage"] + ["data"] * len(comext.answered)
    assert len({p.url for p in landed}) == len(landed)
    assert [p.read() for p in landed if p.kind == "codelist"] == [codelist_xml()]
    # every observation loaded: 2 reporters x 5 products x 2 flows x 7 months, both indicators on each row
    rows = fact_rows(first)
    assert len(rows) == len(REPORTERS) * len(CN8) * 2 * len(MONTHS)
    reporter, product, month = "DE", "84834030", "2025-06"
    assert rows[(reporter, product, "export", month)][:2] == (
        comext.value(reporter, product, "2", month, "VALUE_IN_EUROS"),
        comext.value(reporter, product, "2", month, "QUANTITY_IN_100KG") * 100)
    # the labels: loaded with the data, and dim_product names every CN8 code loaded
    with connect(first.warehouse_path) as conn:
        load_reference_tables(conn)
        build_marts(conn)
        labels = dict(conn.execute("SELECT product_code, product_label FROM dim_product "
                                   "WHERE product_level = 'CN8'").fetchall())
        sources = {r[0] for r in conn.execute("SELECT label_source FROM dim_product WHERE product_level = 'CN8'")
                   .fetchall()}
    assert labels == CN8 and sources == {"Comext codelist ESTAT:CXT_NC(7.0)"}
    with connect(first.warehouse_path, read_only=True) as conn:
        state = read_source_state(conn, COMEXT)
    assert state.requested_at is not None
    # every CN8 code of the codelist was asked for: each (reporter, partner, flow, month) of the request is covered
    assert coverage(first) == {(r, "JP", f, m, "ESTAT:CXT_NC(7.0)", "live-1") for r in REPORTERS
                               for f in ("import", "export") for m in MONTHS}

    # a replay of the day from the raw zone rebuilds the same warehouse, its coverage included
    replay = settings_for(tmp_path / "replay", "replay-1", source_mode="raw", raw_date=RUN_DATE,
                          publish_uri=first.publish_uri)
    assert run_pipeline(replay, only=(COMEXT,))[COMEXT].status == "loaded"
    with connect(replay.warehouse_path) as conn:  # as on the live warehouse above
        load_reference_tables(conn)
        build_marts(conn)
    diffs = compare_warehouses(first.warehouse_path, replay.warehouse_path)
    assert all(d.same for d in diffs), [d.line() for d in diffs if not d.same]
    assert {r[:5] for r in coverage(replay)} == {r[:5] for r in coverage(first)}

    # day 2, the dataset unchanged (UPDATE_DATA before the first extraction): the dataflow, nothing else
    server.clear_log()
    second = settings_for(tmp_path, "live-2", run_date=RUN_DATE.replace(day=16))
    assert run_pipeline(second, only=(COMEXT,))[COMEXT].status == "unchanged"
    assert [s.path for s in server.seen()] == [REC["dataflow_path"]]
    with connect(second.warehouse_path, read_only=True) as conn:
        since = read_source_state(conn, COMEXT).requested_at  # confirmed unchanged from then on
    assert since > state.requested_at

    # day 3, the dataset updated (other products, other partners): every slice asked with updatedAfter, every
    # answer empty: no load work
    # a second after the last extraction (the dataflow states whole seconds: `now` could be the same second)
    comext.update_data = since.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
    server.clear_log()
    answered_before = len(comext.answered)
    third = settings_for(tmp_path, "live-3", run_date=RUN_DATE.replace(day=17))
    assert run_pipeline(third, only=(COMEXT,))[COMEXT].status == "unchanged"
    asked = data_requests(server)
    assert len(asked) == len({p[:2] for p in CN8})  # one small request per slice (a chapter, the window)
    assert {s.param("updatedAfter") for s in asked} == {since.astimezone(UTC).isoformat(timespec="seconds")}
    assert runs(third, "live-3")[COMEXT][:4] == ("unchanged", 0, 0, 0)
    assert fact_rows(third) == rows and len(comext.answered) == answered_before
    assert not [k for k in open_store(third.publish_uri).list_keys(f"raw/{COMEXT}")
                if f"/{RUN_DATE.replace(day=17).isoformat()}/" in k]

    # day 4, one quantity revised: its slice is fetched whole (both indicators), the revision recorded
    key = ("DE", "84834030", "2", "2025-06", "QUANTITY_IN_100KG")
    comext.revise(key, 4242)
    with connect(third.warehouse_path, read_only=True) as conn:  # whole seconds again: not day 3's second
        since = read_source_state(conn, COMEXT).requested_at
    comext.update_data = max(comext.update_data, since.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1))
    server.clear_log()
    fourth = settings_for(tmp_path, "live-4", run_date=RUN_DATE.replace(day=18))
    assert run_pipeline(fourth, only=(COMEXT,))[COMEXT].status == "loaded"
    after = fact_rows(fourth)
    assert after[("DE", "84834030", "export", "2025-06")][:2] == (
        comext.value("DE", "84834030", "2", "2025-06", "VALUE_IN_EUROS"), 424200)
    assert query(fourth, "SELECT column_name, new_value FROM etl_revisions WHERE run_id = 'live-4'") == [
        ("quantity_kg", 424200.0)]
    with duckdb.connect(str(fourth.warehouse_path), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM ref_cn8_labels").fetchone() == (len(CN8),)


def test_answers_delivered_asynchronously_load_what_synchronous_ones_load(server, comext, tmp_path, monkeypatch):
    """Every other data request answered with a key (Eurostat's asynchronous delivery: eujp.eurostat_async), its
    data fetched from the ASYNC API once AVAILABLE: the first extraction loads every observation, with the same
    values and coverage as a run whose answers all came at once; the next day's `updatedAfter` requests,
    answered with keys too and then No Results, cost no load work."""
    monkeypatch.setenv("EUJP_COMEXT_ASYNC_POLL_SECONDS", "0.02")
    at_once = settings_for(tmp_path / "sync", "live-sync")
    assert run_pipeline(at_once, only=(COMEXT,))[COMEXT].status == "loaded"
    turn = iter(range(10**6))
    service = AsyncComext(comext, deliver_async=lambda seen: next(turn) % 2 == 0)
    service.install(server, REC["path_prefix"])
    first = settings_for(tmp_path / "async", "live-1")
    assert run_pipeline(first, only=(COMEXT,))[COMEXT].status == "loaded"
    delivered = [k for k, answer in service.kept.items() if answer.status == 200]
    assert delivered and len(delivered) < len(comext.answered) // 2 + 2  # about half of the answers with data
    landed = read_landed(open_store(first.publish_uri), COMEXT, RUN_DATE)
    assert sum("/1.0/async/data/" in p.url for p in landed if p.kind == "data") == len(delivered)
    assert {k: v[:2] for k, v in fact_rows(first).items()} == {k: v[:2] for k, v in fact_rows(at_once).items()}
    assert {r[:5] for r in coverage(first)} == {r[:5] for r in coverage(at_once)}

    with connect(first.warehouse_path, read_only=True) as conn:
        since = read_source_state(conn, COMEXT).requested_at
    comext.update_data = since.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
    service.deliver_async = lambda seen: True
    server.clear_log()
    second = settings_for(tmp_path / "async", "live-2", run_date=RUN_DATE.replace(day=16))
    assert run_pipeline(second, only=(COMEXT,))[COMEXT].status == "unchanged"
    probes = data_requests(server)
    assert probes and all(s.param("updatedAfter") for s in probes)
    assert all(service.kept[k].status == 404 for k in service.kept if k not in delivered)  # No Results, via keys
    assert runs(second, "live-2")[COMEXT][:4] == ("unchanged", 0, 0, 0)


def test_listed_products_state_no_coverage_and_a_failed_extraction_none(server, comext, tmp_path, monkeypatch):
    monkeypatch.setenv("EUJP_COMEXT_PRODUCTS", "84834030,85011010")
    listed = settings_for(tmp_path, "live-listed")
    assert run_pipeline(listed, only=(COMEXT,))[COMEXT].status == "loaded"
    assert query(listed, "SELECT count(DISTINCT product_cn8) FROM fact_goods_trade_product") == [(2,)]
    assert coverage(listed) == set()
    landed = read_landed(open_store(listed.publish_uri), COMEXT, RUN_DATE)
    assert "coverage" not in {p.kind for p in landed}

    # every product, but one slice fails (500 after the retries): nothing landed, no coverage stated
    monkeypatch.delenv("EUJP_COMEXT_PRODUCTS")
    healthy = comext.__call__

    def failing(seen: Seen) -> Reply:
        if seen.path.startswith(REC["path_prefix"]) and ".85" in seen.path:
            return Reply(500, b"internal error", {"Content-Type": "text/plain"})
        return healthy(seen)

    server.respond("/api/comext/dissemination/sdmx/2.1/", failing, prefix=True)
    failed = settings_for(tmp_path, "live-failed", run_date=RUN_DATE.replace(day=16), force=True)
    assert run_pipeline(failed, only=(COMEXT,))[COMEXT].status == "failed"
    assert coverage(failed) == set()


def test_a_slice_whose_answer_does_not_parse_is_asked_again_the_next_day_and_no_coverage_is_stated(
        server, comext, tmp_path):
    """One slice answers 200 with a body cut mid-row (its length what was sent: a stream closed early). The
    payload is quarantined by name and the others load; but no coverage is stated and the request's start
    (watermark, requested_at) stays, so the next day asks again from the same point and fills the hole."""
    healthy = comext.__call__
    cut = {"count": 0}

    def cut_once(seen: Seen) -> Reply:
        reply = healthy(seen)
        if (reply.status == 200 and seen.path.startswith(REC["path_prefix"]) and ".85011010." in seen.path
                and not cut["count"]):
            cut["count"] += 1
            return Reply(200, reply.body[:len(reply.body) - 20], reply.headers)
        return reply

    server.respond("/api/comext/dissemination/sdmx/2.1/", cut_once, prefix=True)
    first = settings_for(tmp_path, "live-hole-1")
    batch = run_pipeline(first, only=(COMEXT,))[COMEXT]
    assert batch.status == "loaded" and cut["count"] == 1 and len(batch.payload_errors) == 1
    assert "85011010" in batch.payload_errors[0] and "truncated" in batch.payload_errors[0]
    missing = {k for k in ((r, "85011010", f, m) for r in REPORTERS for f in ("import", "export") for m in MONTHS)
               if k not in fact_rows(first)}
    assert missing and coverage(first) == set()  # a hole, and nothing claims those months
    with connect(first.warehouse_path, read_only=True) as conn:
        state = read_source_state(conn, COMEXT)
    assert state.last_status == "success" and state.requested_at is None and state.watermark is None

    # the next day: nothing changed at the service, yet the request starts where the first did: the hole filled
    second = settings_for(tmp_path, "live-hole-2", run_date=RUN_DATE.replace(day=16))
    assert run_pipeline(second, only=(COMEXT,))[COMEXT].status == "loaded"
    assert not [k for k in missing if k not in fact_rows(second)]
    assert len(fact_rows(second)) == len(REPORTERS) * len(CN8) * 2 * len(MONTHS)
    assert {r[:5] for r in coverage(second)} == {(r, "JP", f, m, "ESTAT:CXT_NC(7.0)") for r in REPORTERS
                                                 for f in ("import", "export") for m in MONTHS}
    with connect(second.warehouse_path, read_only=True) as conn:
        assert read_source_state(conn, COMEXT).requested_at is not None


def test_answers_are_spooled_to_files_as_they_arrive_not_held(server, comext, tmp_path, monkeypatch):
    """Bounded memory however the data arrive (issue 12, item 2): a live plan of many answers holds none of them
    in memory. Each answer is written to a file under the run's spill folder as it arrives (a file-backed
    payload, its bytes and sha256 those answered), so what the fetch leaves in memory, and its peak, are a small
    part of the answers' total (it held all of them until the source was loaded before); replaying the landed
    day gives files too; the files go once the source is prepared (discard_spooled)."""
    module = sys.modules[__name__]
    products = {f"0101{i:04d}": f"test label {i}" for i in range(2000)}  # one chapter of 2,000 CN8 codes
    monkeypatch.setattr(module, "CN8", products)
    monkeypatch.setattr(module, "MAX_OBSERVATIONS", 2 * 400 * 2 * 2)  # a month of a request's 400 products
    monkeypatch.setenv("EUJP_HTTP_READ_TIMEOUT", "20")  # the service builds an answer under tracemalloc
    monkeypatch.setenv("EUJP_HTTP_BUDGET_SECONDS", "120")
    settings = settings_for(tmp_path, "spooled")
    discard_spooled(fetch_live(comext_goods.SOURCE, settings_for(tmp_path / "warm-up", "warm-up")))  # imports
    tracemalloc.start()
    try:
        payloads = fetch_live(comext_goods.SOURCE, settings)
        _, peak = tracemalloc.get_traced_memory()
        # What the fetch holds: the traced memory less the in-process service's (this module's answers, the
        # replay server, http.server) and the URL parsers' caches (urllib's and httpx's: their size follows
        # how many URLs the process parsed before, ~1 MB by this test's 35 requests after a whole test session)
        held = sum(trace.size for trace in tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, pattern) for pattern in (
                __file__, "*/tests/support/*", "*/http/server.py", "*/socketserver.py", "*/email/*",
                "*/urllib/parse.py", "*/httpx/_urlparse.py")]).traces)
    finally:
        tracemalloc.stop()
    data = [p for p in payloads if p.kind == "data"]
    total = sum(p.size for p in data)
    # 2 reporters x 2,000 products x 2 flows x 2 indicators x 7 months, in answers of a month of 400 products:
    # ~9 MB in 35 answers
    assert sum(p.read().count(b"\n") - 1 for p in data) == 2 * 2000 * 2 * 2 * len(MONTHS)
    assert len(data) == 35 and total > 8 * 2**20
    # what the payloads hold once fetched, and the fetch's peak (the in-process service's allocations included)
    assert held < total / 4, f"{held:,} bytes held after the fetch, for {total:,} bytes of answers"
    assert peak < total / 2, f"the fetch traced {peak:,} bytes at its peak, for {total:,} bytes of answers"
    assert all(p.data is None and p.path.is_file() and p.path.parent.parent == settings.spill_dir for p in data)
    assert all(hashlib.sha256(p.read()).hexdigest() == p.sha256 for p in payloads)

    # landed, then replayed from the raw zone: files again (linked from a local store's objects), the same bytes
    keys = land_payloads(open_store(settings.publish_uri), comext_goods.SOURCE, payloads, settings.run_date)
    replayed = read_landed(open_store(settings.publish_uri), COMEXT, RUN_DATE, settings.spill_dir)
    assert sorted(p.sha256 for p in replayed) == sorted(p.sha256 for p in payloads)
    assert all(p.data is None and p.path.parent.parent == settings.spill_dir for p in replayed)
    stored = {k.rsplit("/", 1)[1].split(".")[0]: tmp_path / "store" / k for k in keys}
    # landed without a copy: the local store links the answer's file (S3 uploads it:
    # tests/integration/test_storage_s3.py)
    assert all(p.path.stat().st_ino == stored[p.sha256].stat().st_ino for p in data)
    assert all(p.path.stat().st_ino == stored[p.sha256].stat().st_ino for p in replayed)

    folders = {p.path.parent for p in data + replayed}
    assert len(folders) == 2
    discard_spooled(payloads + replayed)
    assert not any(f.exists() for f in folders)
    assert all(path.is_file() for path in stored.values())  # the landed objects stay


def key_part(seen: Seen, index: int) -> str:
    """A part of a data request's key: 1 reporters, 2 partners, 3 products, 4 flows, 5 indicators."""
    return seen.path.rsplit("/", 1)[1].split(".")[index]


def facts(settings) -> dict[tuple, tuple]:
    """(partner, reporter, product, flow, month) -> (value_eur, run_id) of every Comext fact row."""
    rows = query(settings, "SELECT partner, reporter, product_cn8, flow, period_code, value_eur, run_id "
                 "FROM fact_goods_trade_product")
    return {r[:5]: r[5:] for r in rows}


def test_a_partner_added_gets_its_whole_history_the_partner_before_only_what_changed(server, comext, tmp_path,
                                                                                      monkeypatch):
    """Users add partners to compare (issue 12): a partner added to EUJP_COMEXT_PARTNERS after the first
    extraction gets its history from EUJP_COMEXT_START, fetched whole, not only what the service changed since
    the last extraction (none of it); the partner asked for before keeps its incremental request (here: the
    dataset did not change, so none); the coverage states the new partner's months; the next day asks for
    nothing more."""
    first = settings_for(tmp_path, "live-1")
    assert run_pipeline(first, only=(COMEXT,))[COMEXT].status == "loaded"
    before = facts(first)
    assert {k[0] for k in before} == {"JP"}

    monkeypatch.setenv("EUJP_COMEXT_PARTNERS", "JP,CN")
    server.clear_log()
    comext.answered.clear()
    comext.partners_answered.clear()
    second = settings_for(tmp_path, "live-2", run_date=RUN_DATE.replace(day=16))
    assert run_pipeline(second, only=(COMEXT,))[COMEXT].status == "loaded"
    asked = data_requests(server)
    # nothing asked for JP (the dataflow says nothing changed since day 1); for CN every (product, month) once,
    # from EUJP_COMEXT_START, without updatedAfter
    assert asked and {key_part(s, 2) for s in asked} == {"CN"}
    assert {s.param("updatedAfter") for s in asked} == {None}
    assert set(comext.partners_answered) == {("CN",)}
    pieces = [(p, m) for products, start, end in comext.answered for p in products for m in MONTHS
              if start <= m <= end]
    assert sorted(pieces) == sorted((p, m) for p in CN8 for m in MONTHS)
    after = facts(second)
    per_partner = len(REPORTERS) * len(CN8) * 2 * len(MONTHS)
    assert sum(k[0] == "CN" for k in after) == per_partner
    assert {k: v for k, v in after.items() if k[0] == "JP"} == before  # as day 1 loaded them
    assert after[("CN", "DE", "84834030", "export", "2025-06")] == (
        comext.value("DE", "84834030", "2", "2025-06", "VALUE_IN_EUROS", "CN"), "live-2")
    assert after[("CN", "DE", "84834030", "export", "2025-06")][0] != before[
        ("JP", "DE", "84834030", "export", "2025-06")][0]
    # the coverage: JP's months from day 1, CN's every month from this extraction
    codelist = "ESTAT:CXT_NC(7.0)"
    assert coverage(second) == {(r, p, f, m, codelist, run) for p, run in (("JP", "live-1"), ("CN", "live-2"))
                                for r in REPORTERS for f in ("import", "export") for m in MONTHS}
    with connect(second.warehouse_path, read_only=True) as conn:
        scope = json.loads(read_source_state(conn, COMEXT).request_scope)
    assert scope["partners"] == ["CN", "JP"] and scope["start"] == "2025-01"

    # day 3, the same settings and the dataset unchanged: the dataflow, nothing else
    server.clear_log()
    third = settings_for(tmp_path, "live-3", run_date=RUN_DATE.replace(day=17))
    assert run_pipeline(third, only=(COMEXT,))[COMEXT].status == "unchanged"
    assert [s.path for s in server.seen()] == [REC["dataflow_path"]]

    # day 4, JP dropped again: what was loaded stays, nothing is fetched for it, and nothing more is asked
    monkeypatch.setenv("EUJP_COMEXT_PARTNERS", "CN")
    server.clear_log()
    fourth = settings_for(tmp_path, "live-4", run_date=RUN_DATE.replace(day=18))
    assert run_pipeline(fourth, only=(COMEXT,))[COMEXT].status == "unchanged"
    assert [s.path for s in server.seen()] == [REC["dataflow_path"]]
    assert facts(fourth) == after


def test_a_partner_dropped_keeps_its_rows_and_the_report_manifest_and_catalog_say_it_is_no_longer_refreshed(
        server, comext, tmp_path, monkeypatch):
    """A partner dropped from EUJP_COMEXT_PARTNERS keeps what it loaded (history is kept) and is still ranked in
    the marts, but what users read says so: the report's partners table says per partner whether the last live
    extraction still asks for it and, for one it does not, the run that last loaded it; the manifest and the
    catalog list the partners the facts hold, with their months, last load and whether they are requested."""
    from eujp.catalog import render_catalog
    from eujp.config import Settings
    from eujp.partners import manifest_entry
    from eujp.report import products_section
    from eujp.run import run_manifest

    monkeypatch.setenv("EUJP_COMEXT_PARTNERS", "JP,CN,KR")
    first = settings_for(tmp_path, "live-1")
    assert run_pipeline(first, only=(COMEXT,))[COMEXT].status == "loaded"
    monkeypatch.setenv("EUJP_COMEXT_PARTNERS", "JP,CN")
    second = settings_for(tmp_path, "live-2", run_date=RUN_DATE.replace(day=16))
    batches = run_pipeline(second, only=(COMEXT,))
    assert batches[COMEXT].status == "unchanged"
    assert {k[0] for k in facts(second)} == {"JP", "CN", "KR"}  # KR's rows stay
    with connect(second.warehouse_path) as conn:
        load_reference_tables(conn)
        build_marts(conn)
        assert conn.execute("SELECT DISTINCT partners_ranked FROM mart_partner_chapter_trade").fetchall() == [(3,)]
        section = products_section(conn)
        catalog = render_catalog(conn, run_id="live-2", evaluate_suites=False, history_runs=2)
    table = section[section.index("<h4>Partners compared"):]
    assert "partners loaded to compare with Japan (EUJP_COMEXT_PARTNERS" not in table  # no claim they are configured
    assert "<th>requested</th>" in table
    kr = re.findall(r"<tr><td>(?:import|export)</td><td>\d+</td><td>KR</td>.*?</tr>", table)
    assert len(kr) == 2 and all("<td>no: no longer refreshed; last loaded by run live-1 (" in r for r in kr)
    for partner in ("JP", "CN"):
        rows = re.findall(rf"<tr><td>(?:import|export)</td><td>\d+</td><td>{partner}</td>.*?</tr>", table)
        assert len(rows) == 2 and all(r.endswith("<td>yes</td></tr>") for r in rows), rows
    assert "<b>No longer requested:</b> KR is not in the partners the last live extraction asked for" in table

    manifest = run_manifest(Settings(run_id="live-2", warehouse_path=second.warehouse_path), list(batches.values()),
                            {}, {}, "success", None)
    partners = json.loads(json.dumps(manifest["partners"]))  # as published (JSON)
    assert partners["requested"] == ["CN", "JP"]
    months = len(MONTHS)
    assert [(p["partner"], p["months_loaded"], p["first_month"], p["last_month"], p["last_run_id"], p["requested"])
            for p in partners["loaded"]] == [("CN", months, "2025-01", "2025-07", "live-1", True),
                                             ("JP", months, "2025-01", "2025-07", "live-1", True),
                                             ("KR", months, "2025-01", "2025-07", "live-1", False)]
    assert all(p["last_loaded_at"] for p in partners["loaded"])
    section = catalog[catalog.index('<h2 id="partners">'):]
    assert re.search(r"<td><code>KR</code></td><td>Korea[^<]*</td><td>7</td><td>2025-01 to 2025-07</td>"
                     r"<td><code>live-1</code>[^<]*</td><td>no: no longer refreshed", section), section[:3000]

    # removing it (`eujp run --remove-partner KR`: eujp.partners.remove_partner_rows, then every model rebuilt)
    from eujp.partners import remove_partner_rows

    with connect(second.warehouse_path) as conn:
        held = [conn.execute(f"SELECT count(*) FROM {t} WHERE partner = 'KR'").fetchone()[0]
                for t in ("fact_goods_trade_product", "etl_comext_coverage")]
        removed = remove_partner_rows(conn, ["KR"])["KR"]
        assert [removed["fact_rows"], removed["coverage_rows"]] == held and min(held) > 0
        assert conn.execute("SELECT count(*) FROM etl_comext_coverage WHERE partner = 'KR'").fetchone() == (0,)
        build_marts(conn)
        assert conn.execute("SELECT DISTINCT partners_ranked FROM mart_partner_chapter_trade").fetchall() == [(2,)]
        assert "KR" not in products_section(conn)
    assert [p["partner"] for p in manifest_entry(second.warehouse_path)["loaded"]] == ["CN", "JP"]


def test_an_earlier_start_fetches_the_months_before_the_first_extraction(server, comext, tmp_path, monkeypatch):
    """EUJP_COMEXT_START moved earlier after a first extraction: the months before its first month are fetched
    whole (no extraction asked for them), the months after it only as they changed."""
    monkeypatch.setenv("EUJP_COMEXT_START", "2025-04")
    first = settings_for(tmp_path, "live-1")
    assert run_pipeline(first, only=(COMEXT,))[COMEXT].status == "loaded"
    assert {k[4] for k in facts(first)} == {"2025-04", "2025-05", "2025-06", "2025-07"}

    monkeypatch.setenv("EUJP_COMEXT_START", "2025-01")
    server.clear_log()
    second = settings_for(tmp_path, "live-2", run_date=RUN_DATE.replace(day=16))
    assert run_pipeline(second, only=(COMEXT,))[COMEXT].status == "loaded"
    asked = data_requests(server)
    assert asked and all(s.param("updatedAfter") is None and s.param("endPeriod") <= "2025-03" for s in asked)
    after = facts(second)
    assert {k[4] for k in after} == set(MONTHS)
    assert {v[1] for k, v in after.items() if k[4] < "2025-04"} == {"live-2"}
    assert {v[1] for k, v in after.items() if k[4] >= "2025-04"} == {"live-1"}
    assert {(m, run) for *_, m, _, run in coverage(second)} == {
        (m, "live-2" if m < "2025-04" else "live-1") for m in MONTHS}


def test_every_product_after_listed_ones_gets_the_history_of_the_codes_not_asked_before(server, comext, tmp_path,
                                                                                         monkeypatch):
    """EUJP_COMEXT_PRODUCTS emptied after a run of listed products (every CN8 code of the codelist now): the
    codes not asked for before are fetched from the first month, whole; the listed one only as it changed."""
    monkeypatch.setenv("EUJP_COMEXT_PRODUCTS", "84834030")
    first = settings_for(tmp_path, "live-1")
    assert run_pipeline(first, only=(COMEXT,))[COMEXT].status == "loaded"
    assert {k[2] for k in facts(first)} == {"84834030"}

    monkeypatch.delenv("EUJP_COMEXT_PRODUCTS")
    server.clear_log()
    comext.answered.clear()
    second = settings_for(tmp_path, "live-2", run_date=RUN_DATE.replace(day=16))
    assert run_pipeline(second, only=(COMEXT,))[COMEXT].status == "loaded"
    asked = data_requests(server)
    assert {p for s in asked for p in key_part(s, 3).split("+")} == set(CN8) - {"84834030"}
    assert {s.param("updatedAfter") for s in asked} == {None}
    pieces = [(p, m) for products, start, end in comext.answered for p in products for m in MONTHS
              if start <= m <= end]
    assert sorted(pieces) == sorted((p, m) for p in set(CN8) - {"84834030"} for m in MONTHS)
    after = facts(second)
    assert {k[2] for k in after} == set(CN8)
    assert {v[1] for k, v in after.items() if k[2] == "84834030"} == {"live-1"}
    # every product is now covered: the listed one by day 1's extraction (unchanged since), the others by the
    # backfill; day 1 could state nothing (listed products), and day 2 stated nothing either before
    assert coverage(second) == {(r, "JP", f, m, "ESTAT:CXT_NC(7.0)", "live-2")
                                for r in REPORTERS for f in ("import", "export") for m in MONTHS}


def test_a_warehouse_loaded_from_snapshots_gets_its_first_live_extraction_whole(server, comext, tmp_path):
    """A snapshot folder is no extraction from the service: a live run on a warehouse loaded only from the bundled
    snapshot asks for every product and month from EUJP_COMEXT_START (no updatedAfter, not "unchanged" on the
    dataflow's word), and the coverage it states is of what it fetched."""
    from dataclasses import replace as with_changes

    snapshot = with_changes(settings_for(tmp_path, "snap-1"), source_mode="snapshot")
    assert run_pipeline(snapshot, only=(COMEXT,))[COMEXT].status == "loaded"
    with connect(snapshot.warehouse_path, read_only=True) as conn:
        state = read_source_state(conn, COMEXT)
    assert (state.requested_at, state.watermark, state.request_scope) == (None, None, None)
    assert state.newest_period is not None and state.input_checksum is not None

    server.clear_log()
    live = settings_for(tmp_path, "live-1", run_date=RUN_DATE.replace(day=16))
    assert run_pipeline(live, only=(COMEXT,))[COMEXT].status == "loaded"
    assert {s.param("updatedAfter") for s in data_requests(server)} == {None}
    pieces = [(p, m) for products, start, end in comext.answered for p in products for m in MONTHS
              if start <= m <= end]
    assert sorted(pieces) == sorted((p, m) for p in CN8 for m in MONTHS)
    rows = fact_rows(live)
    assert all((r, p, f, m) in rows for r in REPORTERS for p in CN8 for f in ("import", "export") for m in MONTHS)


def test_a_snapshot_load_or_an_older_replay_between_live_runs_does_not_hide_a_revision(server, comext, tmp_path):
    """Where the next live request starts moves only with what the service answered: a snapshot load between two
    live runs makes the next live run extract the source whole again (the snapshot may hold older figures); a
    --from-raw replay of an older day (whose figures a revision has since replaced) makes it ask for what changed
    after that day's landing. Either way the revision the service published is in the warehouse after the next
    live run."""
    import time
    from dataclasses import replace as with_changes

    day = iter(range(16, 28))
    key = ("EU27_2020", "84834030", "1", "2025-05", "VALUE_IN_EUROS")
    sql = ("SELECT value_eur FROM fact_goods_trade_product WHERE reporter = 'EU27_2020' AND product_cn8 = '84834030' "
           "AND flow = 'import' AND period_code = '2025-05'")
    first = settings_for(tmp_path, "live-1")
    assert run_pipeline(first, only=(COMEXT,))[COMEXT].status == "loaded"
    original = query(first, sql)
    for revised, between in ((111, "snapshot"), (222, "replay")):
        time.sleep(1.1)  # LAST UPDATE and updatedAfter count whole seconds
        comext.revise(key, revised)
        time.sleep(1.1)
        if between == "snapshot":
            step = with_changes(settings_for(tmp_path, "snap", run_date=RUN_DATE.replace(day=next(day))),
                                source_mode="snapshot")
        else:  # the first day's landing, before both revisions: puts the original figure back
            step = settings_for(tmp_path, "replay", source_mode="raw", raw_date=RUN_DATE,
                                run_date=RUN_DATE.replace(day=next(day)))
        assert run_pipeline(step, only=(COMEXT,))[COMEXT].status == "loaded"
        with connect(step.warehouse_path, read_only=True) as conn:
            requested_at = read_source_state(conn, COMEXT).requested_at
        if between == "snapshot":
            assert requested_at is None  # the next live run extracts the source whole
        else:
            assert query(step, sql) == original
            landed = min(datetime.fromisoformat(p.fetched_at)
                         for p in read_landed(open_store(step.publish_uri), COMEXT, RUN_DATE, tmp_path / "spill"))
            assert requested_at == landed  # what changed after the replayed landing is asked again
        server.clear_log()
        live = settings_for(tmp_path, f"live-after-{between}", run_date=RUN_DATE.replace(day=next(day)))
        assert run_pipeline(live, only=(COMEXT,))[COMEXT].status == "loaded"
        assert query(live, sql) == [(float(revised),)]
        asked = {s.param("updatedAfter") for s in data_requests(server)}
        if between == "snapshot":
            assert asked == {None}
        else:
            assert datetime.fromisoformat(min(a for a in asked if a)) <= landed


def test_a_replay_into_a_new_warehouse_records_what_its_landings_asked_for_so_a_partner_added_gets_its_history(
        server, comext, tmp_path, monkeypatch):
    """`eujp run --from-raw DAY --warehouse new.duckdb` records the request scope its landings' coverage statements
    state, as a live run would: a partner added afterwards gets its whole history (before, the replay left the
    scope unknown, the next live run took its settings as fetched: one request, 'nothing new', the partner never
    backfilled)."""
    first = settings_for(tmp_path, "live-1")
    assert run_pipeline(first, only=(COMEXT,))[COMEXT].status == "loaded"
    new = tmp_path / "new" / "warehouse.duckdb"
    replay = settings_for(tmp_path, "replay", source_mode="raw", raw_date=RUN_DATE, warehouse_path=new,
                          run_date=RUN_DATE.replace(day=16))
    assert run_pipeline(replay, only=(COMEXT,))[COMEXT].status == "loaded"
    with connect(new, read_only=True) as conn:
        scope = json.loads(read_source_state(conn, COMEXT).request_scope)
    assert scope["partners"] == ["JP"] and scope["reporters"] == sorted(REPORTERS) and scope["start"] == "2025-01"

    monkeypatch.setenv("EUJP_COMEXT_PARTNERS", "JP,CN")
    server.clear_log()
    live = settings_for(tmp_path, "live-2", warehouse_path=new, run_date=RUN_DATE.replace(day=17))
    assert run_pipeline(live, only=(COMEXT,))[COMEXT].status == "loaded"
    asked = data_requests(server)
    assert asked and {key_part(s, 2) for s in asked} == {"CN"} and {s.param("updatedAfter") for s in asked} == {None}
    assert sum(k[0] == "CN" for k in facts(live)) == len(REPORTERS) * len(CN8) * 2 * len(MONTHS)


@pytest.mark.parametrize(("statements", "staged"), [(True, False), (False, False), (True, True)],
                         ids=["rebuilt-from-the-raw-zone", "none-landed", "rebuilt-with-the-history-in-stages"])
def test_a_state_without_a_request_scope_does_not_take_the_settings_as_fetched(server, comext, tmp_path,
                                                                               monkeypatch, caplog, statements, staged):
    """A warehouse whose state records no request scope (older than scopes) but an extraction to go on: the scope
    is rebuilt from the coverage statements landed in the raw zone, and the partner added is backfilled; with no
    statement landed (listed products state none), every code is treated as new: the whole history is fetched,
    with a warning. With the history in stages, the scope recorded after the run is decided from the rebuilt
    one too (eujp.live.fetched_scope): the partner's months from the incremental request's first month
    (2025-01, EUJP_COMEXT_START here), so no stage is left and the start is the history's, not the newest
    three months a first extraction in stages would record."""
    if not statements:
        monkeypatch.setenv("EUJP_COMEXT_PRODUCTS", ",".join(CN8))
    first = settings_for(tmp_path, "live-1")
    assert run_pipeline(first, only=(COMEXT,))[COMEXT].status == "loaded"
    with connect(first.warehouse_path) as conn:
        conn.execute("UPDATE etl_source_state SET request_scope = NULL")

    monkeypatch.setenv("EUJP_COMEXT_PARTNERS", "JP,CN")
    if staged:
        monkeypatch.setenv("EUJP_COMEXT_HISTORY_MONTHS", "3")
    server.clear_log()
    second = settings_for(tmp_path, "live-2", run_date=RUN_DATE.replace(day=16))
    with caplog.at_level("INFO", logger="eujp.live"):
        assert run_pipeline(second, only=(COMEXT,))[COMEXT].status == "loaded"
    asked = data_requests(server)
    assert {s.param("updatedAfter") for s in asked} == {None}
    assert {key_part(s, 2) for s in asked} == ({"CN"} if statements else {"JP+CN"})
    assert sum(k[0] == "CN" for k in facts(second)) == len(REPORTERS) * len(CN8) * 2 * len(MONTHS)
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert bool([w for w in warned if "every code is treated as new" in w]) is not statements
    with connect(second.warehouse_path, read_only=True) as conn:
        scope = json.loads(read_source_state(conn, COMEXT).request_scope)
    assert scope["partners"] == ["CN", "JP"]
    if statements:
        assert scope["start"] == "2025-01" and "stage" not in scope


def test_a_partner_added_with_no_observations_is_named_not_reported_as_nothing_new(server, comext, tmp_path,
                                                                                  monkeypatch):
    """A partner added whose whole history the service answers with no observations (a code it does not have,
    AQ): the run says so by name, not 'the service reported nothing new'."""
    first = settings_for(tmp_path, "live-1")
    assert run_pipeline(first, only=(COMEXT,))[COMEXT].status == "loaded"
    comext.silent.add("AQ")
    monkeypatch.setenv("EUJP_COMEXT_PARTNERS", "JP,AQ")
    second = settings_for(tmp_path, "live-2", run_date=RUN_DATE.replace(day=16))
    batch = run_pipeline(second, only=(COMEXT,))[COMEXT]
    assert batch.status == "unchanged"
    assert batch.note.startswith("unchanged: partners + AQ: the service holds no observations of what the settings "
                                 "added since 2025-01")
    assert runs(second, "live-2")[COMEXT][4] == batch.note
    # and among the run's warnings, which the CLI's summary lists (flows/daily.py)
    assert source_warnings([batch]) == [f"{COMEXT}: {batch.note.removeprefix('unchanged: ')}"]


def test_of_two_partners_added_the_one_without_observations_is_named_and_nothing_is_said_when_both_have_rows(
        server, comext, tmp_path, monkeypatch):
    """Two partners added in one run, the service holding observations of one (CN) and none of the other (AQ, or
    a code it answers empty for): CN's history loads and the run names AQ, by itself, in its warnings and
    etl_runs (before, only a whole extraction that came back empty said so: AQ passed for added). Two partners
    added that both have rows: nothing is said."""
    first = settings_for(tmp_path, "live-1")
    assert run_pipeline(first, only=(COMEXT,))[COMEXT].status == "loaded"
    comext.silent.add("AQ")
    monkeypatch.setenv("EUJP_COMEXT_PARTNERS", "JP,CN,AQ")
    second = settings_for(tmp_path, "live-2", run_date=RUN_DATE.replace(day=16))
    batch = run_pipeline(second, only=(COMEXT,))[COMEXT]
    assert batch.status == "loaded", batch.error
    rows = facts(second)
    assert sum(k[0] == "CN" for k in rows) == len(REPORTERS) * len(CN8) * 2 * len(MONTHS)
    assert not any(k[0] == "AQ" for k in rows)
    named = ("partners + AQ: the service holds no observations of what the settings added since 2025-01 (check the "
             "codes: the service may code them otherwise)")
    assert batch.warning == named
    assert source_warnings([batch]) == [f"{COMEXT}: {named}"]  # the run's summary lists it (flows/daily.py)
    assert runs(second, "live-2")[COMEXT][4] == named

    monkeypatch.setenv("EUJP_COMEXT_PARTNERS", "JP,CN,AQ,KR,US")
    third = settings_for(tmp_path, "live-3", run_date=RUN_DATE.replace(day=17))
    batch = run_pipeline(third, only=(COMEXT,))[COMEXT]
    assert batch.status == "loaded", batch.error
    assert {k[0] for k in facts(third)} == {"JP", "CN", "KR", "US"}
    assert batch.warning is None and source_warnings([batch]) == []
    assert runs(third, "live-3")[COMEXT][4] is None


def test_the_history_fetched_in_stages_over_several_runs_loads_what_one_extraction_loads(server, comext, tmp_path,
                                                                                        monkeypatch):
    """EUJP_COMEXT_HISTORY_MONTHS=3 on a request from 2025-01 to the run month 2025-07: the first run fetches and
    loads the newest three months (2025-05..07) and records 2025-05 as its first month; each next run fetches
    the three months before the first one reached (2025-02..04, then 2025-01), whole, beside its incremental
    request, until EUJP_COMEXT_START; then a day costs the dataflow alone. The warehouse holds what one
    extraction of the seven months loads, and the coverage of every month."""
    at_once = settings_for(tmp_path / "once", "once")
    assert run_pipeline(at_once, only=(COMEXT,))[COMEXT].status == "loaded"
    monkeypatch.setenv("EUJP_COMEXT_HISTORY_MONTHS", "3")

    def months_loaded(settings) -> list[str]:
        return [r[0] for r in query(settings, "SELECT DISTINCT period_code FROM fact_goods_trade_product ORDER BY 1")]

    def first_month(settings) -> str:
        with connect(settings.warehouse_path, read_only=True) as conn:
            return json.loads(read_source_state(conn, COMEXT).request_scope)["start"]

    staged = tmp_path / "staged"
    expected = [(1, "2025-05", MONTHS[4:]), (2, "2025-02", MONTHS[1:]), (3, "2025-01", MONTHS)]
    for day, start, months in expected:
        server.clear_log()
        settings = settings_for(staged, f"live-{day}", run_date=RUN_DATE.replace(day=14 + day))
        assert run_pipeline(settings, only=(COMEXT,))[COMEXT].status == "loaded"
        assert months_loaded(settings) == months and first_month(settings) == start
        fetched = {(s.param("startPeriod"), s.param("endPeriod")) for s in data_requests(server)
                   if not s.param("updatedAfter")}
        # this run's history: its months, whole (split to two months a chapter), none before them
        assert min(a for a, _ in fetched) == start
        if day > 1:  # the months before the first one reached, only
            assert max(b for _, b in fetched) == MONTHS[MONTHS.index(expected[day - 2][1]) - 1]
        assert {r[3] for r in coverage(settings)} == set(months)
    server.clear_log()
    last = settings_for(staged, "live-4", run_date=RUN_DATE.replace(day=18))
    assert run_pipeline(last, only=(COMEXT,))[COMEXT].status == "unchanged"
    assert [s.path for s in server.seen()] == [REC["dataflow_path"]]  # the history is whole: nothing to fetch
    assert {k: v[:2] for k, v in fact_rows(last).items()} == {k: v[:2] for k, v in fact_rows(at_once).items()}
    assert {r[:5] for r in coverage(last)} == {r[:5] for r in coverage(at_once)}


def thirty_one_months(comext, monkeypatch) -> list[str]:
    """The service holds 2023-01..2025-07, EUJP_COMEXT_START 2023-01; a request a month (none too big), and a
    budget for the 31 months."""
    months = [f"{y}-{m:02d}" for y in (2023, 2024) for m in range(1, 13)] + MONTHS
    comext.months = months
    monkeypatch.setenv("EUJP_COMEXT_START", "2023-01")
    for name, value in (("EUJP_HTTP_BUDGET_SECONDS", "120"), ("EUJP_HTTP_READ_TIMEOUT", "5"),
                        ("EUJP_COMEXT_SLICE_MONTHS", "1")):
        monkeypatch.setenv(name, value)
    return months


def recorded_scope_of(settings) -> dict:
    with connect(settings.warehouse_path, read_only=True) as conn:
        return json.loads(read_source_state(conn, COMEXT).request_scope)


def live_days(server, comext, tmp, first_day: int, days: int, **changes) -> list:
    """Live runs on the days after `first_day`, the dataset changed before each; (settings, batch, the months
    asked for whole by partner) of each."""
    done = []
    for day in range(first_day, first_day + days):
        comext.update_data = datetime.now(UTC)
        server.clear_log()
        settings = settings_for(tmp, f"live-{day}", run_date=RUN_DATE.replace(day=day), **changes)
        batch = run_pipeline(settings, only=(COMEXT,))[COMEXT]
        assert batch.status in ("loaded", "unchanged"), batch.error
        done.append((settings, batch, {(key_part(s, 2), s.param("startPeriod")) for s in data_requests(server)
                                       if not s.param("updatedAfter")}))
    return done


def test_a_stage_survives_a_replay_of_the_days_into_a_new_warehouse(server, comext, tmp_path, monkeypatch):
    """A partner added with the history in stages (CN from 2024-01 on its first day), then the days replayed into
    a new warehouse (`--from-raw` each day): the replayed state records CN's stage (merge_scopes: a code only
    the later-starting day asked for is held from its start), so the next live runs fetch CN's 2023 whole.
    Before, the days' scopes merged as CN from 2023-01, and CN's 2023 was never fetched."""
    months = thirty_one_months(comext, monkeypatch)
    monkeypatch.setenv("EUJP_COMEXT_PARTNERS", "JP")
    day1 = settings_for(tmp_path, "live-1")
    assert run_pipeline(day1, only=(COMEXT,))[COMEXT].status == "loaded"
    monkeypatch.setenv("EUJP_COMEXT_PARTNERS", "JP,CN")
    monkeypatch.setenv("EUJP_COMEXT_HISTORY_MONTHS", "6")
    comext.update_data = datetime.now(UTC)
    day2 = settings_for(tmp_path, "live-2", run_date=RUN_DATE.replace(day=16))
    assert run_pipeline(day2, only=(COMEXT,))[COMEXT].status == "loaded"
    stage = {"list": "partners", "codes": ["CN"], "start": "2024-01"}
    assert recorded_scope_of(day2)["stage"] == stage
    rebuilt = tmp_path / "rebuilt" / "warehouse.duckdb"
    for n, day in enumerate((day1.run_date, day2.run_date)):
        replay = settings_for(tmp_path, f"replay-{n}", source_mode="raw", raw_date=day, warehouse_path=rebuilt,
                              run_date=RUN_DATE.replace(day=20 + n))
        assert run_pipeline(replay, only=(COMEXT,))[COMEXT].status == "loaded"
    scope = recorded_scope_of(replay)
    assert scope["partners"] == ["CN", "JP"] and scope["start"] == "2023-01" and scope["stage"] == stage
    after = live_days(server, comext, tmp_path, 22, 3, warehouse_path=rebuilt)
    assert [{p for p, _ in whole} for _, _, whole in after] == [{"CN"}, {"CN"}, set()]
    assert [min(m for _, m in whole) for _, _, whole in after[:2]] == ["2023-07", "2023-01"]
    assert {k[4] for k in facts(after[-1][0]) if k[0] == "CN"} == set(months)
    assert "stage" not in recorded_scope_of(after[-1][0])


@pytest.mark.parametrize("widened", ["partner", "start"])
def test_a_scope_rebuilt_from_the_raw_zone_is_recorded_as_the_plan_fetched_it(server, comext, tmp_path,
                                                                              monkeypatch, widened):
    """A state without a request scope, the history in stages: the plan rebuilds the scope from the raw zone's
    statements landed before the run, and the scope the run records is decided from the same ones, not also from
    the statement the run itself landed (which told another scope: a partner added claimed whole from 2024-01,
    its stage lost; an earlier EUJP_COMEXT_START recorded one stage too far, three months never fetched). Every
    month of the history ends up fetched."""
    months = thirty_one_months(comext, monkeypatch)
    if widened == "start":
        monkeypatch.setenv("EUJP_COMEXT_START", "2025-01")
    else:
        monkeypatch.setenv("EUJP_COMEXT_PARTNERS", "JP")
    first = settings_for(tmp_path, "live-1")
    assert run_pipeline(first, only=(COMEXT,))[COMEXT].status == "loaded"
    with connect(first.warehouse_path) as conn:
        conn.execute("UPDATE etl_source_state SET request_scope = NULL")
    if widened == "start":
        monkeypatch.setenv("EUJP_COMEXT_START", "2023-01")
        monkeypatch.setenv("EUJP_COMEXT_HISTORY_MONTHS", "3")
    else:
        monkeypatch.setenv("EUJP_COMEXT_PARTNERS", "JP,CN")
        monkeypatch.setenv("EUJP_COMEXT_HISTORY_MONTHS", "6")
    runs = live_days(server, comext, tmp_path, 16, 10)
    last = runs[-1][0]
    assert not runs[-1][2] and not runs[-2][2]  # the history whole: nothing more fetched whole
    assert {k[4] for k in facts(last) if k[0] == ("CN" if widened == "partner" else "JP")} == set(months)
    scope = recorded_scope_of(last)
    assert scope["start"] == "2023-01" and "stage" not in scope


def what_readers_are_told_of_cn(settings) -> tuple[str | None, str | None]:
    """(the first month of CN's history fetched so far that the manifest's partners entry gives, the report's
    'requested' cell of CN) while a stage is pending, checking that the report's partners table and the catalog's
    partners section say the same; (None, None) when none is: CN is plainly requested ('yes'), and neither page
    speaks of a history still arriving."""
    from eujp.catalog import render_catalog
    from eujp.partners import manifest_entry
    from eujp.report import products_section

    with connect(settings.warehouse_path) as conn:
        load_reference_tables(conn)
        build_marts(conn)
        table = products_section(conn)
        table = table[table.index("<h4>Partners compared"):]
        catalog = render_catalog(conn, run_id=settings.run_id, evaluate_suites=False, history_runs=2)
        catalog = catalog[catalog.index('<h2 id="partners">'):]
    (cn,) = [p for p in json.loads(json.dumps(manifest_entry(settings.warehouse_path)))["loaded"]
             if p["partner"] == "CN"]
    cells = set(re.findall(r"<tr><td>(?:import|export)</td><td>\d+</td><td>CN</td>(?:(?!</tr>).)*<td>([^<]*)</td>"
                           r"</tr>", table))
    assert len(cells) == 1, table[:3000]
    (cell,) = cells
    assert f"<td>{cell}</td></tr>" in catalog
    staged = cn["history_fetched_from"]
    if staged is None:
        assert cell == "yes" and "History still arriving" not in table
        return None, None
    assert (f"<b>History still arriving:</b> CN (from {staged}): the partner was added with the history fetched in "
            "stages") in table
    return staged, cell


def test_a_partner_added_with_the_history_in_stages_gets_it_over_several_runs_beside_the_incremental_request(
        server, comext, tmp_path, monkeypatch):
    """Users add partners (issue 12), and a partner's history is as big as the first load's: with
    EUJP_COMEXT_HISTORY_MONTHS=6, a partner added (CN) to a warehouse holding JP's 31 months (2023-01..2025-07)
    gets, on the first run, its months from the incremental request's first month (January of the year before
    the newest month: 2024-01) to the run month, whole, beside JP's incremental request, and the state records
    that stage; each next run fetches the six months before it, whole, and asks for CN with JP with
    `updatedAfter`; then a day costs the dataflow alone. Facts and coverage equal one extraction of both."""
    months = thirty_one_months(comext, monkeypatch)
    monkeypatch.setenv("EUJP_COMEXT_PARTNERS", "JP,CN")
    at_once = settings_for(tmp_path / "once", "once")
    batch = run_pipeline(at_once, only=(COMEXT,))[COMEXT]
    assert batch.status == "loaded", batch.error

    monkeypatch.setenv("EUJP_COMEXT_PARTNERS", "JP")
    staged = tmp_path / "staged"
    assert run_pipeline(settings_for(staged, "live-1"), only=(COMEXT,))[COMEXT].status == "loaded"
    monkeypatch.setenv("EUJP_COMEXT_PARTNERS", "JP,CN")
    monkeypatch.setenv("EUJP_COMEXT_HISTORY_MONTHS", "6")

    # (run, the months of CN fetched whole, the stage recorded after it)
    expected = [(2, ("2024-01", "2025-07"), "2024-01"), (3, ("2023-07", "2023-12"), "2023-07"),
                (4, ("2023-01", "2023-06"), None)]
    for day, (first, last), stage in expected:
        comext.update_data = datetime.now(UTC)  # the dataset changed: the incremental request is sent
        server.clear_log()
        settings = settings_for(staged, f"live-{day}", run_date=RUN_DATE.replace(day=14 + day))
        batch = run_pipeline(settings, only=(COMEXT,))[COMEXT]
        assert batch.status in ("loaded", "unchanged"), batch.error
        whole = [s for s in data_requests(server) if not s.param("updatedAfter")]
        assert {key_part(s, 2) for s in whole} == {"CN"}
        assert min(s.param("startPeriod") for s in whole) == first
        assert max(s.param("endPeriod") for s in whole) == last
        incremental = {(key_part(s, 2), s.param("startPeriod")) for s in data_requests(server)
                       if s.param("updatedAfter")}
        # JP alone on the day CN is added; then CN with JP, from the incremental request's first month
        assert {p for p, _ in incremental} == ({"JP"} if day == 2 else {"JP+CN"})
        assert min(start for _, start in incremental) == "2024-01"
        scope = recorded_scope_of(settings)
        assert scope["partners"] == ["CN", "JP"] and scope["start"] == "2023-01"
        assert scope.get("stage") == (None if stage is None else {"list": "partners", "codes": ["CN"],
                                                                  "start": stage})
        assert {k[4] for k in facts(settings) if k[0] == "CN"} == {m for m in months if m >= (stage or "2023-01")}
        assert what_readers_are_told_of_cn(settings) == (stage, None if stage is None else (
            f"yes; its months before {stage} are still to fetch (history in stages, EUJP_COMEXT_HISTORY_MONTHS)"))
    server.clear_log()
    last = settings_for(staged, "live-5", run_date=RUN_DATE.replace(day=19))
    assert run_pipeline(last, only=(COMEXT,))[COMEXT].status == "unchanged"
    assert [s.path for s in server.seen()] == [REC["dataflow_path"]]  # nothing left to fetch
    assert {k: v[0] for k, v in facts(last).items()} == {k: v[0] for k, v in facts(at_once).items()}
    assert {r[:5] for r in coverage(last)} == {r[:5] for r in coverage(at_once)}
    assert what_readers_are_told_of_cn(last) == (None, None)


def test_fewer_indicators_than_the_last_extraction_asked_for_are_refused_and_the_quantities_stay(
        server, comext, tmp_path, monkeypatch):
    """EUJP_COMEXT_INDICATORS narrowed to VALUE_IN_EUROS after an extraction of both: the transform makes one fact
    row of both indicators, so every row the run refreshed would have lost its quantity (upserted with a null
    one). The run refuses, naming the indicator and the way out, and the quantities loaded stay; --force
    reloads every row without it, as asked."""
    first = settings_for(tmp_path, "live-1")
    assert run_pipeline(first, only=(COMEXT,))[COMEXT].status == "loaded"
    before = fact_rows(first)
    assert all(v[1] is not None for v in before.values())

    monkeypatch.setenv("EUJP_COMEXT_INDICATORS", "VALUE_IN_EUROS")
    comext.update_data = datetime.now(UTC)
    second = settings_for(tmp_path, "live-2", run_date=RUN_DATE.replace(day=16))
    batch = run_pipeline(second, only=(COMEXT,))[COMEXT]
    assert batch.status == "failed"
    assert ("EUJP_COMEXT_INDICATORS=VALUE_IN_EUROS leaves out QUANTITY_IN_100KG, which the last successful "
            "extraction asked for") in batch.error and "would lose its quantity_kg" in batch.error
    assert fact_rows(second) == before

    forced = settings_for(tmp_path, "live-3", run_date=RUN_DATE.replace(day=17), force=True)
    assert run_pipeline(forced, only=(COMEXT,))[COMEXT].status == "loaded"
    after = fact_rows(forced)
    assert after.keys() == before.keys() and all(v[1] is None for v in after.values())
    assert {k: v[0] for k, v in after.items()} == {k: v[0] for k, v in before.items()}


def test_a_staged_partner_without_observations_is_named_since_the_months_it_was_asked_for(
        server, comext, tmp_path, monkeypatch):
    """A partner added with its history in stages (EUJP_COMEXT_HISTORY_MONTHS=6) of which the service holds no
    observations (AQ): the run names it 'since 2024-01', the first month it asked AQ for (the stage's), not
    since EUJP_COMEXT_START (2023-01), months it has not asked for yet; the stage stays recorded, so the next
    run asks for the six months before it."""
    thirty_one_months(comext, monkeypatch)
    comext.silent.add("AQ")
    assert run_pipeline(settings_for(tmp_path, "live-1"), only=(COMEXT,))[COMEXT].status == "loaded"
    monkeypatch.setenv("EUJP_COMEXT_PARTNERS", "JP,AQ")
    monkeypatch.setenv("EUJP_COMEXT_HISTORY_MONTHS", "6")
    server.clear_log()
    second = settings_for(tmp_path, "live-2", run_date=RUN_DATE.replace(day=16))
    batch = run_pipeline(second, only=(COMEXT,))[COMEXT]
    whole = [s for s in data_requests(server) if key_part(s, 2) == "AQ"]
    assert whole and min(s.param("startPeriod") for s in whole) == "2024-01"
    said = batch.warning if batch.status == "loaded" else batch.note.removeprefix("unchanged: ")
    assert said == ("partners + AQ: the service holds no observations of what the settings added since 2024-01 "
                    "(check the codes: the service may code them otherwise)"), (batch.status, batch.error)
    assert recorded_scope_of(second)["stage"] == {"list": "partners", "codes": ["AQ"], "start": "2024-01"}
