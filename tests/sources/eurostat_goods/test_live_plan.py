"""ext_lt_maineu's live request plan without a server: the Eurostat statistics API request and the
watermark."""

from __future__ import annotations

from eujp.live import EUROSTAT
from eujp.sources.eurostat_goods import DATASET, SOURCE


def test_endpoint_is_the_eurostat_statistics_api():
    assert SOURCE.endpoint is EUROSTAT


def test_eurostat_request_follows_the_statistics_api():
    url, params = DATASET.request("https://ec.europa.eu/eurostat", "2022", {})
    assert url == "https://ec.europa.eu/eurostat/api/dissemination/statistics/1.0/data/ext_lt_maineu"
    assert params == [("format", "JSON"), ("lang", "EN"), ("freq", "A"), ("partner", "JP"),
                      ("partner", "US"), ("partner", "CN"), ("partner", "UK"), ("partner", "CH"), ("partner", "RU"),
                      ("partner", "TR"), ("partner", "NO"), ("partner", "KR"), ("partner", "IN"), ("sitc06", "TOTAL"),
                      ("indic_et", "MIO_EXP_VAL"), ("indic_et", "MIO_IMP_VAL"), ("indic_et", "MIO_BAL_VAL"),
                      ("geo", "EU27_2020"), ("sinceTimePeriod", "2022")]


def test_watermark():
    assert SOURCE.next_watermark("2024") == "2022"
    assert SOURCE.next_watermark(None) is None
