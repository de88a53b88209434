"""SIPRI's live default (issue 15, item 8): no default endpoint, so a live run without EUJP_SIPRI_URL stops at
once with an ExtractError that says why and what to set; a mirror URL is fetched with GET and parsed; the
backend, when EUJP_SIPRI_URL names it, is posted the register filters without 'exportOption'; its per-delivery
answer is rejected by name. Against the replay server on 127.0.0.1 (name resolution of any other host fails the
test, so a request to SIPRI would not go unnoticed). See docs/live-extraction.md, SIPRI."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
from support.live import fetch
from support.recordings import RECORDINGS
from support.replay_server import Reply

from eujp.errors import ExtractError, ParseError
from eujp.sources.sipri_arms import ENDPOINT, SOURCE

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[3]
SNAPSHOT = REPO / "data" / "snapshot" / "sipri_trade_register_japan.csv"
# Preamble, header and first row of the CSV inside the backend's recorded answer of 10 Feb 2025 (with
# 'exportOption'): datapumpernickel/Rat.db, see tests/fixtures/http/README.md.
PER_DELIVERY = REPO / "tests" / "fixtures" / "http" / "sipri_backend_trade_register_2025-02_excerpt.csv"
NO_URL = r"sipri_arms: SIPRI's live endpoint is unconfirmed.*EUJP_SIPRI_URL.*mirror of the SIPRI trade register CSV"


def test_there_is_no_default_endpoint():
    assert ENDPOINT.base_url({}) == ""
    assert SOURCE.endpoint_env == "EUJP_SIPRI_URL"
    assert "unconfirmed" in ENDPOINT.note


@pytest.mark.parametrize("value", [None, "", "  "], ids=["unset", "empty", "blank"])
def test_live_run_without_url_fails_at_once_and_says_what_to_set(live, tmp_path, monkeypatch, value):
    if value is None:
        monkeypatch.delenv("EUJP_SIPRI_URL", raising=False)
    else:
        monkeypatch.setenv("EUJP_SIPRI_URL", value)
    live.clear_log()
    started = time.perf_counter()
    with pytest.raises(ExtractError, match=NO_URL) as info:
        fetch("sipri_arms", tmp_path)
    assert time.perf_counter() - started < 2
    assert "armstransfers.sipri.org" in str(info.value) and "docs/live-extraction.md" in str(info.value)
    assert live.seen() == []  # nothing was requested, here or anywhere


def test_mirror_url_is_fetched_with_get_and_parsed(live, tmp_path, monkeypatch):
    path = "/mirror/sipri/trade-register.csv"
    data = SNAPSHOT.read_bytes()
    live.route(path, Reply(200, data, {"Content-Type": "text/csv"}))
    monkeypatch.setenv("EUJP_SIPRI_URL", live.url + path)
    (payload,) = fetch("sipri_arms", tmp_path)
    (seen,) = live.seen(path)
    assert seen.method == "GET"
    assert payload.read() == data and payload.name == "trade-register.csv"
    parsed = SOURCE.parse(payload.read())
    assert parsed.frame.height == 455 and parsed.source_version == "2025-03-13T10:02:49"


def test_backend_named_explicitly_is_posted_the_register_filters_without_export_option(live, tmp_path):
    # the `live` fixture points EUJP_SIPRI_URL at the recorded backend path
    fetch("sipri_arms", tmp_path)
    (seen,) = live.seen(RECORDINGS["sipri_arms"]["path"])
    body = json.loads(seen.body)
    assert [f["field"] for f in body["filters"]] == ["Delivery year", "Order year", "opendeals"]
    assert body["filters"][0]["value2"] == body["filters"][1]["value2"] == 2025  # the run date's year
    assert "exportOption" not in seen.body.decode()


def test_backend_answering_the_per_delivery_export_is_rejected_by_name(live, tmp_path):
    envelope = json.dumps({"bytes": base64.b64encode(PER_DELIVERY.read_bytes()).decode()}).encode()
    live.route(RECORDINGS["sipri_arms"]["path"], Reply(200, envelope, {"Content-Type": "application/json"}))
    (payload,) = fetch("sipri_arms", tmp_path)
    assert payload.read() == PER_DELIVERY.read_bytes()
    with pytest.raises(ParseError, match=r"no header line found .*per-delivery export .*'SIPRI AT Database ID"):
        SOURCE.parse(payload.read())
