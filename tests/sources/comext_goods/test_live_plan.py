"""Comext's live request plan without a server: the request shape, the slices a too-big request splits
into, the endpoint and the watermark."""

from __future__ import annotations

from eujp.sources.comext_goods import ENDPOINT, SOURCE, ComextSlice, comext_request, comext_watermark


def test_default_endpoint_is_the_comext_service():
    assert ENDPOINT.base_url({}) == "https://ec.europa.eu/eurostat"
    assert SOURCE.endpoint_env == "EUJP_COMEXT_URL"


def test_comext_requests_follow_the_comext_sdmx_api():
    url, params = comext_request("https://ec.europa.eu/eurostat", {},
                                 ComextSlice("2024-01", "2025-07", ("84834030",)))
    assert url == ("https://ec.europa.eu/eurostat/api/comext/dissemination/sdmx/2.1/data/DS-045409/"
                   "M..JP.84834030.1+2.VALUE_IN_EUROS+QUANTITY_IN_100KG")
    assert params == [("startPeriod", "2024-01"), ("endPeriod", "2025-07"), ("format", "SDMX-CSV"),
                      ("compressed", "false")]
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


def test_watermark():
    assert SOURCE.next_watermark("2025-06") == "2024-01"
    assert comext_watermark("2025-06") == "2024-01"
