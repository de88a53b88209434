"""SIPRI's live extraction against its recorded response replayed on 127.0.0.1: the POST of the trade
register filters, the CSV unwrapped from its JSON envelope, an answer that is not the envelope."""

from __future__ import annotations

import json

import pytest
from support.live import fetch
from support.recordings import RECORDINGS
from support.replay_server import Reply

from eujp.errors import ExtractError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def test_sipri_posts_the_trade_register_filters_and_unwraps_the_csv(live, tmp_path):
    (payload,) = fetch("sipri_arms", tmp_path)
    (seen,) = live.seen(RECORDINGS["sipri_arms"]["path"])
    assert seen.method == "POST" and seen.headers["content-type"] == "application/json"
    body = json.loads(seen.body)
    assert body["logic"] == "AND"
    assert {f["field"] for f in body["filters"]} >= {"Delivery year", "Order year"}
    assert payload.read().startswith(b"Transfers of major conventional arms")  # the CSV, not the JSON envelope
    assert "decoded from the JSON 'bytes' field" in payload.name


def test_sipri_answer_that_is_not_the_envelope_is_a_clear_error(live, tmp_path):
    live.route(RECORDINGS["sipri_arms"]["path"], Reply(200, b'{"message": "Unauthorized"}',
                                                        {"Content-Type": "application/json"}))
    with pytest.raises(ExtractError, match=r"sipri_arms: POST .* not the expected \{\"bytes\": base64 CSV\}"):
        fetch("sipri_arms", tmp_path)
