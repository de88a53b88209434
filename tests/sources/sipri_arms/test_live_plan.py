"""SIPRI's live request plan without a server: the endpoint and the (absent) watermark."""

from __future__ import annotations

from eujp.sources.sipri_arms import ENDPOINT, SOURCE


def test_there_is_no_default_endpoint_the_mirror_is_named_by_its_variable():
    assert ENDPOINT.base_url({}) == ""  # unconfirmed live service: see test_live_default.py
    assert SOURCE.endpoint_env == "EUJP_SIPRI_URL"


def test_watermark():
    assert SOURCE.next_watermark("2024") is None  # the whole register, every time
