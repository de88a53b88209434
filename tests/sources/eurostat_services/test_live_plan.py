"""bop_its6_det's live request plan without a server: the Eurostat statistics API request and the
watermark."""

from __future__ import annotations

from eujp.live import EUROSTAT
from eujp.sources.eurostat_services import DATASET, SOURCE


def test_endpoint_is_the_eurostat_statistics_api():
    assert SOURCE.endpoint is EUROSTAT


def test_eurostat_request_follows_the_statistics_api():
    url, params = DATASET.request("https://ec.europa.eu/eurostat", None,
                                  {"EUJP_EUROSTAT_SERVICES_GEO": "EU27_2020,EU28"})
    assert url.endswith("/api/dissemination/statistics/1.0/data/bop_its6_det")
    assert [v for k, v in params if k == "stk_flow"] == ["CRE", "DEB", "BAL"]
    assert [v for k, v in params if k == "geo"] == ["EU27_2020", "EU28"]
    assert ("currency", "MIO_EUR") in params and ("bop_item", "S") in params
    assert not any(k == "sinceTimePeriod" for k, _ in params)


def test_watermark():
    assert SOURCE.next_watermark("2023") == "2020"
