"""What the live request plans share (eujp.live): the Eurostat statistics API endpoint, endpoints overridden
by their environment variable, list settings. Each source's plan is tested in its folder
(tests/sources/<source>/test_live_plan.py)."""

from __future__ import annotations

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
