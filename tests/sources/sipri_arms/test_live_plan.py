"""SIPRI's live request plan without a server: the endpoint and the (absent) watermark."""

from __future__ import annotations

from eujp.sources.sipri_arms import ENDPOINT, SOURCE


def test_default_endpoint_is_the_sipri_backend():
    assert ENDPOINT.base_url({}) == "https://atbackend.sipri.org/api/p/trades/trade-register-csv"
    assert SOURCE.endpoint_env == "EUJP_SIPRI_URL"


def test_watermark():
    assert SOURCE.next_watermark("2024") is None  # the whole register, every time
