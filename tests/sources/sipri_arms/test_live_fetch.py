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


def test_validators_go_only_to_the_url_they_belong_to(live, tmp_path, monkeypatch):
    """A mirror moved to another URL (EUJP_SIPRI_URL edited) is asked without the old mirror's validators: its
    server never answered them, and a 304 there (an older Last-Modified than the old mirror's) kept the old
    register, never loading the new one. The same URL is still asked conditionally."""
    from eujp.incremental import SourceState

    register = b"Transfers of major conventional arms\r\nRecipient,Supplier\r\n"
    for path in ("/old/sipri.csv", "/new/sipri.csv"):
        live.route(path, Reply(304, b"", {"Last-Modified": "Sat, 22 Jul 2023 04:26:40 GMT"}),
                   Reply(200, register, {"Content-Type": "text/csv"}))
    old = f"{live.url}/old/sipri.csv"
    state = SourceState(source="sipri_arms", last_modified="Tue, 14 Nov 2023 22:13:20 GMT", request_url=old)
    monkeypatch.setenv("EUJP_SIPRI_URL", old)
    assert fetch("sipri_arms", tmp_path, state) == []  # the same mirror, unchanged: 304
    (seen,) = live.seen("/old/sipri.csv")
    assert seen.headers["if-modified-since"] == "Tue, 14 Nov 2023 22:13:20 GMT"
    monkeypatch.setenv("EUJP_SIPRI_URL", f"{live.url}/new/sipri.csv")
    live.route("/new/sipri.csv", Reply(200, register, {"Content-Type": "text/csv"}))
    (payload,) = fetch("sipri_arms", tmp_path, state)
    (seen,) = live.seen("/new/sipri.csv")
    assert "if-modified-since" not in seen.headers and "if-none-match" not in seen.headers
    assert payload.read() == register
