"""What the live request plans share (eujp.live): the Eurostat statistics API endpoint, endpoints overridden
by their environment variable, list settings, what a request's settings ask for beyond the last extraction's. Each source's plan is tested in its folder
(tests/sources/<source>/test_live_plan.py)."""

from __future__ import annotations

from eujp.incremental import ALL_CODES, describe_widening, scope_widening
from eujp.live import EUROSTAT, env_list
from eujp.sources import SOURCES


def test_default_eurostat_endpoint_is_the_real_service():
    assert EUROSTAT.base_url({}) == "https://ec.europa.eu/eurostat"


def test_every_endpoint_is_overridden_by_its_environment_variable():
    for source in SOURCES:
        if source.endpoint is not None:
            assert source.endpoint.base_url({source.endpoint_env: "http://127.0.0.1:9/mirror/"}) \
                == "http://127.0.0.1:9/mirror"


def test_env_list_splits_on_commas_and_plus_signs():
    assert env_list({"X": "DE, FR+IT"}, "X", "JP") == ("DE", "FR", "IT")
    assert env_list({}, "X", "JP") == ("JP",)
    assert env_list({"X": ""}, "X", "JP") == ()


def test_a_scope_widens_by_codes_added_every_code_or_an_earlier_start():
    before = {"partners": ["JP"], "reporters": ["DE", "FR"], "products": [ALL_CODES], "start": "2002-01"}
    assert scope_widening(before, before) == {}
    assert scope_widening(None, before) == {} and scope_widening(before, None) == {}
    # less, or the same in another order, is no widening: what is no longer asked for stays loaded
    assert scope_widening(before, {**before, "reporters": ["FR"], "start": "2010-01"}) == {}
    assert scope_widening(before, {**before, "products": ["84834030"]}) == {}
    widened = scope_widening(before, {**before, "partners": ["CN", "JP", "KR"], "start": "1999-01"})
    assert widened == {"partners": ["CN", "KR"], "start": "1999-01"}
    assert describe_widening(widened) == "partners + CN,KR; first period 1999-01"
    assert scope_widening(before, {**before, "reporters": [ALL_CODES]}) == {"reporters": ALL_CODES}
    # a list the previous scope did not record (an older version's) counts as unchanged
    assert scope_widening({"partners": ["JP"]}, {"partners": ["JP"], "flows": ["1"]}) == {}
