"""The OECD inventory's live request plan without a server: the endpoint, the SDMX REST request and the
watermark."""

from __future__ import annotations

import pytest

from eujp.errors import ExtractError
from eujp.sources.oecd_restrictions import ENDPOINT, SOURCE, oecd_request


def test_default_endpoint_is_the_oecd_service_and_env_overrides_it():
    assert ENDPOINT.base_url({}) == "https://sdmx.oecd.org"
    assert ENDPOINT.base_url({"EUJP_OECD_URL": "http://127.0.0.1:9/mirror/"}) == "http://127.0.0.1:9/mirror"
    assert SOURCE.endpoint_env == "EUJP_OECD_URL"


def test_oecd_request_follows_the_sdmx_rest_api():
    url, params = oecd_request("https://sdmx.oecd.org", {}, "2009", "2025")
    assert url == ("https://sdmx.oecd.org/public/rest/data/"
                   "OECD.TAD.ADM,DSD_QDD_TAD_EXP_RESTRIC@DF_QDD_TAD_EXP_RESTRIC,3.0/all")
    assert params == [("startPeriod", "2009"), ("endPeriod", "2025"), ("dimensionAtObservation", "AllDimensions"),
                      ("format", "csvfilewithlabels")]


def test_watermark():
    assert SOURCE.next_watermark("2024") == "2023"


@pytest.mark.parametrize("start", ["09", "2009-01", "abc"])
def test_a_start_that_is_no_year_is_refused_naming_the_setting(start):
    assert SOURCE.request_scope({"EUJP_OECD_START": " 2012 "}) == {"start": "2012"}
    with pytest.raises(ExtractError, match=rf"EUJP_OECD_START='{start}' is not a year"):
        SOURCE.request_scope({"EUJP_OECD_START": start})


def test_a_start_after_this_year_is_refused_naming_the_setting():
    """startPeriod later than endPeriod (the run's year) was sent, and the service's 404 named no setting. 'This
    year' is the run's UTC year (LiveContext.run_date, Settings.run_date), which the request's endPeriod is: the
    check read the local clock, so on 2026-12-31T20:00Z in Tokyo it took 2027 for this year, accepted
    EUJP_OECD_START=2027 and sent startPeriod 2027, endPeriod 2026."""
    from datetime import date

    run_date = date(2026, 12, 31)  # the run's UTC date; Tokyo's is already 2027-01-01
    assert SOURCE.request_scope({"EUJP_OECD_START": "2026"}, run_date) == {"start": "2026"}
    with pytest.raises(ExtractError, match=r"EUJP_OECD_START='2027' is later than this year \(2026, the run's UTC "):
        SOURCE.request_scope({"EUJP_OECD_START": "2027"}, run_date)
    # a year the clock has not reached yet, but the run's date has: the run's date decides, not the clock
    assert SOURCE.request_scope({"EUJP_OECD_START": "2099"}, date(2099, 1, 1)) == {"start": "2099"}
