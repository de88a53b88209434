"""Comext's live request plan without a server: the request shape, the slices a too-big request splits
into, the endpoint and the watermark."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eujp.errors import ParseError
from eujp.live import env_list
from eujp.sources.comext_goods import (
    COMEXT_DEFAULTS,
    ENDPOINT,
    SOURCE,
    ComextSlice,
    comext_backfill,
    comext_request,
    comext_scope,
    comext_watermark,
    parse_cn_codelist,
    parse_update_data,
    plan_slices,
)

REPO = Path(__file__).resolve().parents[3]


def test_default_endpoint_is_the_comext_service():
    assert ENDPOINT.base_url({}) == "https://ec.europa.eu/eurostat"
    assert SOURCE.endpoint_env == "EUJP_COMEXT_URL"


def test_comext_requests_follow_the_comext_sdmx_api():
    url, params = comext_request("https://ec.europa.eu/eurostat", {},
                                 ComextSlice("2024-01", "2025-07", ("84834030",)))
    members = "AT+BE+BG+CY+CZ+DE+DK+EE+ES+FI+FR+GR+HR+HU+IE+IT+LT+LU+LV+MT+NL+PL+PT+RO+SE+SI+SK"
    assert url == ("https://ec.europa.eu/eurostat/api/comext/dissemination/sdmx/2.1/data/DS-045409/"
                   f"M.EU27_2020+{members}.JP.84834030.1+2.VALUE_IN_EUROS+QUANTITY_IN_100KG")
    assert params == [("startPeriod", "2024-01"), ("endPeriod", "2025-07"), ("format", "SDMX-CSV"),
                      ("compressed", "false")]
    _, params = comext_request("https://x", {"EUJP_COMEXT_REPORTERS": ""}, ComextSlice("2024-01", "2025-07", ()),
                               updated_after="2025-07-15T06:00:00+00:00")
    assert params[-1] == ("updatedAfter", "2025-07-15T06:00:00+00:00")
    url, _ = comext_request("https://x", {"EUJP_COMEXT_REPORTERS": "DE,FR", "EUJP_COMEXT_FLOWS": "2"},
                            ComextSlice("2025-01", "2025-01", ("84834030", "85011010")))
    assert url.endswith("/DS-045409/M.DE+FR.JP.84834030+85011010.2.VALUE_IN_EUROS+QUANTITY_IN_100KG")


def test_comext_slices_split_by_period_then_chapter_then_product_list():
    s = ComextSlice("2025-01", "2025-07", ("84834030", "85011010", "85011091"))
    assert [(p.start, p.end) for p in s.split()] == [("2025-01", "2025-03"), ("2025-04", "2025-07")]
    one_month = ComextSlice("2025-06", "2025-06", s.products)
    assert [p.products for p in one_month.split()] == [("84834030",), ("85011010", "85011091")]
    one_chapter = ComextSlice("2025-06", "2025-06", ("85011010", "85011091"))
    assert [p.products for p in one_chapter.split()] == [("85011010",), ("85011091",)]
    assert ComextSlice("2025-06", "2025-06", ("85011010",)).split() == []
    assert ComextSlice("2025-06", "2025-06", ()).split() == []  # all products: no codes to split on


@settings(max_examples=200, deadline=None)
@given(products=st.lists(st.from_regex(r"[0-9]{8}", fullmatch=True), min_size=1, max_size=40, unique=True),
       first=st.integers(0, 40), months=st.integers(1, 60), months_per_slice=st.integers(1, 24),
       products_per_request=st.integers(1, 30), cap=st.integers(1, 200))
def test_the_plan_and_its_splits_ask_for_every_product_and_month_once(products, first, months, months_per_slice,
                                                                      products_per_request, cap):
    """However the products fall into chapters, the months into slices and the service's size limit (`cap`
    product-months per answer, 413 beyond it) into the plan: the slices the plan makes, split as
    fetch_comext_slice splits a 413 (periods, then chapters, then halves of the product list) until each piece
    fits, ask for every (product, month) exactly once. A piece over the cap can always be split: one product
    and one month fits any cap. (Until the twenty-fourth session fetch_comext_slice gave up after ten levels
    of splits, where a default slice of 24 months and 400 codes of one chapter needs 11 levels to reach pieces
    of 12 product-months and 14 to reach one.)"""
    start = f"{2002 + first // 12}-{first % 12 + 1:02d}"
    end_index = first + months - 1
    end = f"{2002 + end_index // 12}-{end_index % 12 + 1:02d}"
    asked: list[tuple[str, str]] = []
    for piece in plan_slices(tuple(products), start, end, months_per_slice=months_per_slice,
                             products_per_request=products_per_request):
        pending = [piece]
        while pending:
            part = pending.pop(0)
            if len(part.products) * len(part.months()) <= cap:
                asked += [(p, m) for p in part.products for m in part.months()]
                continue
            parts = part.split()
            assert parts, part
            pending[0:0] = parts
    assert sorted(asked) == sorted((p, m) for p in products for m in ComextSlice(start, end, ()).months())


def test_defaults_cover_every_product_since_2002():
    assert COMEXT_DEFAULTS["EUJP_COMEXT_PRODUCTS"] == ""  # every CN8 code of the codelist
    assert COMEXT_DEFAULTS["EUJP_COMEXT_START"] == "2002-01"
    assert env_list({}, "EUJP_COMEXT_REPORTERS", COMEXT_DEFAULTS["EUJP_COMEXT_REPORTERS"])[0] == "EU27_2020"
    assert len(env_list({}, "EUJP_COMEXT_REPORTERS", COMEXT_DEFAULTS["EUJP_COMEXT_REPORTERS"])) == 28


def test_plan_is_chapter_by_chapter_then_by_months():
    products = ("85011010", "84834030", "84811000", "85011091", "01012100")
    slices = plan_slices(products, "2024-01", "2025-07", months_per_slice=12, products_per_request=2)
    assert [(s.products, s.start, s.end) for s in slices] == [
        (("01012100",), "2024-01", "2024-12"), (("01012100",), "2025-01", "2025-07"),
        (("84811000", "84834030"), "2024-01", "2024-12"), (("84811000", "84834030"), "2025-01", "2025-07"),
        (("85011010", "85011091"), "2024-01", "2024-12"), (("85011010", "85011091"), "2025-01", "2025-07"),
    ]


def test_codelist_keeps_cn8_codes_and_their_english_names():
    labels = parse_cn_codelist((REPO / "data/snapshot/comext_codelist_cxt_nc_excerpt.xml").read_bytes())
    assert labels.rows() == [("84834030", "Ball or roller screws", "ESTAT:CXT_NC(1.0)")]
    with pytest.raises(ParseError, match="no Code element"):
        parse_cn_codelist(b"<a><b/></a>")
    with pytest.raises(ParseError, match="not an SDMX-ML codelist"):
        parse_cn_codelist(b"DATAFLOW,LAST UPDATE")


def test_dataflow_update_data():
    template = (REPO / "tests/fixtures/http/comext_dataflow_ds045409.xml").read_text()
    stamp = parse_update_data(template.replace("{update_data}", "2023-05-10T11:00:00+0200").encode())
    assert stamp == datetime(2023, 5, 10, 9, 0, tzinfo=UTC)
    assert parse_update_data(b"<Structure/>") is None


def test_watermark():
    assert SOURCE.next_watermark("2025-06") == "2024-01"
    assert comext_watermark("2025-06") == "2024-01"


def test_the_scope_names_every_list_of_the_key_and_the_first_month():
    scope = comext_scope({"EUJP_COMEXT_PARTNERS": "US+JP", "EUJP_COMEXT_START": "2010"})
    assert scope["partners"] == ["JP", "US"] and scope["products"] == ["*"] and scope["start"] == "2010-01"
    assert scope["reporters"][0] == "AT" and len(scope["reporters"]) == 28
    assert set(scope) == {"freq", "reporters", "partners", "products", "flows", "indicators", "start"}


def test_a_widened_scope_is_backfilled_by_one_list_or_the_months_before_else_fetched_whole():
    before = comext_scope({})
    assert comext_backfill(before, comext_scope({})) is None
    assert comext_backfill(before, comext_scope({"EUJP_COMEXT_REPORTERS": "DE"})) is None  # fewer: nothing to add
    assert comext_backfill(before, comext_scope({"EUJP_COMEXT_PARTNERS": "KR"})).added == ("KR",)  # JP for KR
    partners = comext_backfill(before, comext_scope({"EUJP_COMEXT_PARTNERS": "JP,CN,KR"}))
    assert (partners.setting, partners.added, partners.full) == ("EUJP_COMEXT_PARTNERS", ("CN", "KR"), None)
    earlier = comext_backfill(before, comext_scope({"EUJP_COMEXT_START": "1999-01"}))
    assert (earlier.before, earlier.setting, earlier.full) == ("2002-01", None, None)
    listed = comext_scope({"EUJP_COMEXT_PRODUCTS": "84834030"})
    every = comext_backfill(listed, comext_scope({}))  # every product now: the codelist's codes not asked before
    assert (every.setting, every.added, every.full) == ("EUJP_COMEXT_PRODUCTS", None, None)
    # fetched whole: an indicator added (a fact row joins both), every reporter (no list says which are new),
    # or two parts at once
    assert "both indicators" in comext_backfill(comext_scope({"EUJP_COMEXT_INDICATORS": "VALUE_IN_EUROS"}),
                                                before).full
    assert comext_backfill(before, comext_scope({"EUJP_COMEXT_FREQ": "M,A"})).full
    assert "every reporter" in comext_backfill(before, comext_scope({"EUJP_COMEXT_REPORTERS": ""})).full
    assert comext_backfill(before, comext_scope({"EUJP_COMEXT_PARTNERS": "JP,CN", "EUJP_COMEXT_FLOWS": "1,2,3"})).full
    assert comext_backfill(before, comext_scope({"EUJP_COMEXT_PARTNERS": "JP,CN", "EUJP_COMEXT_START": "1999"})).full
