"""Comext's live extraction against its recorded responses replayed on 127.0.0.1 (tests/support/recordings.py):
the codelist fetched with the data, 413 EXTRACTION_TOO_BIG splitting by period and by chapter, its limits, the
watermark, no observations. (Every product, labels and `updatedAfter` in whole runs:
tests/integration/test_live_comext_all_products.py.)"""

from __future__ import annotations

import json
import os
import re

import pytest
from support.live import fetch
from support.recordings import FIXTURES, RECORDINGS, REPO
from support.replay_server import Reply, Seen

from eujp.errors import ExtractError
from eujp.incremental import SourceState
from eujp.sources.comext_goods import COMEXT_DEFAULTS, comext_scope, parse_coverage

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def data_requests(server) -> list[Seen]:
    return [s for s in server.seen() if s.path.startswith(RECORDINGS["comext_goods"]["path_prefix"])]


def test_comext_splits_extraction_too_big_by_period_and_concatenates(live, tmp_path):
    payloads = fetch("comext_goods", tmp_path)
    assert live.seen()[0].path == RECORDINGS["comext_goods"]["codelist_path"]  # the product list first
    ranges = [(s.param("startPeriod"), s.param("endPeriod")) for s in data_requests(live)]
    # 7 months -> 413; halves 01..03 (data) and 04..07 -> 413; 04..05 (no results) and 06..07 (data)
    assert ranges == [("2025-01", "2025-07"), ("2025-01", "2025-03"), ("2025-04", "2025-07"),
                      ("2025-04", "2025-05"), ("2025-06", "2025-07")]
    assert [p.name for p in payloads] == ["DS-045409 2025-01..2025-03 84834030", "DS-045409 2025-06..2025-07 84834030",
                                          "codelist CXT_NC of DS-045409",
                                          "coverage of DS-045409: every CN8 product of ESTAT:CXT_NC(1.0), 2025-01..2025-07"]
    coverage = payloads.pop()
    codelist = payloads.pop()
    # every CN8 code of the codelist was asked for: the extraction states its coverage, 2025-04..05 (no
    # observations) included, for the reporters, partners and flows of the request
    assert coverage.kind == "coverage" and json.loads(coverage.read()) == {
        "dataflow": "DS-045409", "products": "all", "codelist": "ESTAT:CXT_NC(1.0)", "freq": "M",
        "reporters": sorted(COMEXT_DEFAULTS["EUJP_COMEXT_REPORTERS"].split(",")), "partners": ["JP"],
        "flows": ["import", "export"], "start": "2025-01", "end": "2025-07"}
    rows = parse_coverage(coverage.read())
    assert rows.height == 28 * 1 * 2 * 7
    assert sorted({d.strftime("%Y-%m") for d in rows.get_column("period")}) == [f"2025-{m:02d}" for m in range(1, 8)]
    assert set(rows.get_column("codelist")) == {"ESTAT:CXT_NC(1.0)"}
    assert codelist.kind == "codelist" and codelist.read() == (REPO / RECORDINGS["comext_goods"]["codelist"]).read_bytes()
    recorded = b"".join(b"".join((REPO / f).read_bytes().splitlines(keepends=True)[1:])
                        for f in RECORDINGS["comext_goods"]["bodies"])
    assert b"".join(p.read().split(b"\n", 1)[1] for p in payloads) == recorded
    assert all(p.headers["content-type"].startswith("application/vnd.sdmx.data+csv") for p in payloads)


def test_comext_plans_one_request_per_chapter(live, tmp_path, monkeypatch):
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
    keys = [s.path.rsplit("/", 1)[1].split(".")[3] for s in data_requests(live)]
    assert keys == ["84834030", "85011010+85011091"]  # never across chapters: no 413
    assert [p.read().count(b"\n") - 1 for p in payloads if p.kind == "data"] == [1, 2]
    # listed products: the extraction states no all-products coverage
    assert sorted(p.kind for p in payloads) == ["codelist", "data", "data"]


def test_comext_that_cannot_be_split_further_fails_clearly(live, tmp_path, monkeypatch):
    monkeypatch.setenv("EUJP_COMEXT_START", "2025-07")
    live.respond(RECORDINGS["comext_goods"]["path_prefix"],
                 lambda seen: Reply(413, (FIXTURES / "comext_413_extraction_too_big.xml").read_bytes()), prefix=True)
    with pytest.raises(ExtractError, match="413 EXTRACTION_TOO_BIG and a single month of a single product"):
        fetch("comext_goods", tmp_path)
    assert len(data_requests(live)) == 1


def test_comext_splits_a_413_as_deep_as_it_must(live, tmp_path, monkeypatch):
    """A slice of 64 months and 40 codes of one chapter, where the service answers 413 to any request that
    asks for 84010000 in 2020-04 with another month or another product: the branch holding it is split
    eleven levels deep (six of months, five of the product list) and every product and month is asked for
    once. Until the twenty-fourth session, splits stopped at ten levels: the fetch failed."""
    codes = [f"8401{k:02d}00" for k in range(40)]
    monkeypatch.setenv("EUJP_COMEXT_PRODUCTS", ",".join(codes))
    monkeypatch.setenv("EUJP_COMEXT_START", "2020-04")  # to the run's 2025-07: 64 months
    monkeypatch.setenv("EUJP_COMEXT_SLICE_MONTHS", "64")
    monkeypatch.setenv("EUJP_COMEXT_MAX_PRODUCTS_PER_REQUEST", "40")
    header = b"DATAFLOW,LAST UPDATE,freq,reporter,partner,product,flow,indicators,TIME_PERIOD,OBS_VALUE\r\n"

    def too_big(products: list[str], start: str, end: str) -> bool:
        return codes[0] in products and start == "2020-04" and (len(products) > 1 or start != end)

    def reply(seen: Seen) -> Reply:
        products = seen.path.rsplit("/", 1)[1].split(".")[3].split("+")
        start, end = seen.param("startPeriod"), seen.param("endPeriod")
        if too_big(products, start, end):
            return Reply(413, (FIXTURES / "comext_413_extraction_too_big.xml").read_bytes(),
                         {"Content-Type": "application/xml"})
        row = f"ESTAT:DS-045409(1.0),14/08/26 11:00:00,M,DE,JP,{products[0]},1,VALUE_IN_EUROS,{start},1000\r\n"
        return Reply(200, header + row.encode(), {"Content-Type": "application/vnd.sdmx.data+csv;version=1.0.0"})

    live.respond(RECORDINGS["comext_goods"]["path_prefix"], reply, prefix=True)
    payloads = fetch("comext_goods", tmp_path)
    asked = [(s.path.rsplit("/", 1)[1].split(".")[3].split("+"), s.param("startPeriod"), s.param("endPeriod"))
             for s in data_requests(live)]
    answered = [(products, start, end) for products, start, end in asked if not too_big(products, start, end)]
    months = [f"{2020 + (3 + k) // 12}-{(3 + k) % 12 + 1:02d}" for k in range(64)]
    covered = sorted((p, m) for products, start, end in answered for p in products for m in months
                     if start <= m <= end)
    assert covered == sorted((p, m) for p in codes for m in months)  # every product and month once
    assert (["84010000"], "2020-04", "2020-04") in answered  # its branch, split to one product and one month
    assert len([p for p in payloads if p.kind == "data"]) == len(answered) == len(asked) - 11


def test_comext_413_without_extraction_too_big_is_an_error(live, tmp_path):
    live.respond(RECORDINGS["comext_goods"]["path_prefix"],
                 lambda seen: Reply(413, b"Request Entity Too Large"), prefix=True)
    with pytest.raises(ExtractError, match="answered 413 without EXTRACTION_TOO_BIG"):
        fetch("comext_goods", tmp_path)


def incremental_state() -> SourceState:
    """A state of an earlier extraction whose request scope is this run's (a state without one is extracted in
    full: eujp.live.fetch_live)."""
    return SourceState("comext_goods", newest_period="2025-06", watermark="2024-01",
                       request_scope=json.dumps(comext_scope(os.environ)))


def test_incremental_requests_start_at_the_watermark(live, tmp_path, monkeypatch):
    monkeypatch.setenv("EUJP_COMEXT_START", "2023-01")
    fetch("comext_goods", tmp_path, incremental_state())
    first = data_requests(live)[0]
    assert first.param("startPeriod") == "2024-01" and first.param("endPeriod") == "2025-07"


def test_incremental_requests_never_start_before_the_start(live, tmp_path):
    """EUJP_COMEXT_START (2025-01 here) after the watermark: no month before it is asked for."""
    fetch("comext_goods", tmp_path, incremental_state())
    assert min(s.param("startPeriod") for s in data_requests(live)) == "2025-01"


def test_comext_with_no_observations_is_nothing_new(live, tmp_path):
    live.sliced["comext_goods"].rows = []
    assert fetch("comext_goods", tmp_path) == []
    assert {s.param("endPeriod") for s in data_requests(live)} >= {"2025-03", "2025-05", "2025-07"}



def test_comext_204_no_content_is_no_observations_and_lands_nothing(live, tmp_path):
    """A slice answered 204 No Content is read as fault 100 (no results), not as a failed extraction; the slices
    with rows are still fetched and landed, and the empty slice's months are in the coverage."""
    live.sliced["comext_goods"].no_results_status = 204
    payloads = fetch("comext_goods", tmp_path)
    assert ("2025-04", "2025-05") in [(s.param("startPeriod"), s.param("endPeriod")) for s in data_requests(live)]
    assert [p.name for p in payloads][:2] == ["DS-045409 2025-01..2025-03 84834030",
                                              "DS-045409 2025-06..2025-07 84834030"]
    coverage = parse_coverage(payloads[-1].read())
    assert "2025-04" in {d.strftime("%Y-%m") for d in coverage.get_column("period")}
    live.sliced["comext_goods"].rows = []
    assert fetch("comext_goods", tmp_path) == []


def test_an_extraction_that_runs_out_of_budget_says_where_it_stopped_and_what_it_would_need(live, tmp_path,
                                                                                             monkeypatch):
    """Three slices (one chapter each) whose answers take 0.4 s, in a budget of 1 s: the third request runs out
    of it. The error says which slice of how many it stopped at, how many were fetched, that nothing is landed,
    and the budget the whole plan needs at that pace."""
    monkeypatch.setenv("EUJP_COMEXT_PRODUCTS", "01012100,84834030,85011010")
    monkeypatch.setenv("EUJP_COMEXT_START", "2025-07")
    monkeypatch.setenv("EUJP_HTTP_BUDGET_SECONDS", "1")
    monkeypatch.setenv("EUJP_HTTP_READ_TIMEOUT", "5")
    header = b"DATAFLOW,LAST UPDATE,freq,reporter,partner,product,flow,indicators,TIME_PERIOD,OBS_VALUE\r\n"

    def slow(seen: Seen) -> Reply:
        product = seen.path.rsplit("/", 1)[1].split(".")[3]
        row = f"ESTAT:DS-045409(1.0),14/08/26 11:00:00,M,DE,JP,{product},1,VALUE_IN_EUROS,2025-07,1000\r\n"
        return Reply(200, header + row.encode(), {"Content-Type": "application/vnd.sdmx.data+csv;version=1.0.0"},
                     delay=0.4)

    live.respond(RECORDINGS["comext_goods"]["path_prefix"], slow, prefix=True)
    with pytest.raises(ExtractError) as caught:
        fetch("comext_goods", tmp_path)
    message = str(caught.value)
    # the third slice on a quiet machine; the second if the first two answers were slow to arrive
    stopped = re.search(r"the extraction stopped at slice (\d) of 3 \(2025-07..2025-07 (\d+)\) after \d+ s, (\d) "
                        r"fetched; nothing of it is landed, and the next run plans it again; at this pace the 3 "
                        r"slices need about \d+ s: raise EUJP_HTTP_BUDGET_SECONDS \(now 1 s\), narrow the request "
                        r"\(EUJP_COMEXT_START, EUJP_COMEXT_REPORTERS, EUJP_COMEXT_PRODUCTS\), or fetch the history "
                        r"over several runs \(EUJP_COMEXT_HISTORY_MONTHS\)", message)
    assert stopped, message
    at, product, fetched = stopped.groups()
    assert at in "23" and int(fetched) == int(at) - 1
    assert product == ["01012100", "84834030", "85011010"][int(at) - 1]
