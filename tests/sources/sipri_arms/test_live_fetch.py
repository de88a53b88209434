"""SIPRI's live extraction against its recorded response replayed on 127.0.0.1: the POST of the trade
register filters, the CSV unwrapped from its JSON envelope, an answer that is not the envelope; the validators of
a mirror sent to the URL they belong to (another mirror, a mirror moved by a redirect)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from support.live import RUN_DATE, fetch, query, run_pipeline, settings_for
from support.recordings import RECORDINGS
from support.replay_server import Reply

from eujp.errors import ExtractError
from eujp.warehouse import connect, read_source_state

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SNAPSHOT = Path(__file__).resolve().parents[3] / "data" / "snapshot" / "sipri_trade_register_japan.csv"


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


@pytest.mark.parametrize(("inside", "problem"), [
    (b"", "empty body (0 bytes)"),
    (b"<!DOCTYPE html><html><body>Maintenance</body></html>", "an HTML page"),
    (b"Service Unavailable\r\nPlease try again later\r\n", "not a CSV: text with no delimiter in any line"),
])
def test_an_envelope_whose_bytes_are_no_csv_is_refused_as_a_csv_answer_would_be(live, tmp_path, inside, problem):
    """The CSV decoded from the backend's {"bytes": ...} is checked as a CSV answer is: an empty one, an HTML page
    or a plain-text error were landed, then failed by the parser as a changed format (or landed empty)."""
    import base64

    envelope = json.dumps({"bytes": base64.b64encode(inside).decode()}).encode()
    live.route(RECORDINGS["sipri_arms"]["path"], Reply(200, envelope, {"Content-Type": "application/json"}))
    with pytest.raises(ExtractError, match=r"sipri_arms: POST .* answered 200 with JSON whose 'bytes' field "
                                           r"decodes to " + re.escape(problem)):
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


def test_a_mirror_moved_by_a_redirect_is_loaded_and_then_asked_conditionally_at_its_new_url(live, tmp_path,
                                                                                          monkeypatch):
    """EUJP_SIPRI_URL's mirror answers 301 to a new URL, whose register is newer but whose Last-Modified is the one
    the old mirror sent: the old URL's If-Modified-Since must not go on to the new URL (RFC 9110 §15.4), where it
    answered 304 and the new register was never loaded (every day). The state keeps the URL the validators came
    from, the redirect's target, and the next day sends them there: one 304, nothing loaded."""
    full = SNAPSHOT.read_bytes()
    lines = full.splitlines(keepends=True)
    older = b"".join(lines[:-5])  # the old mirror's register: five transfers fewer
    modified = "Tue, 14 Nov 2023 22:13:20 GMT"
    old, new = "/old/trade-register.csv", "/new/trade-register.csv"
    monkeypatch.setenv("EUJP_SIPRI_URL", live.url + old)
    live.route(old, Reply(200, older, {"Content-Type": "text/csv", "Last-Modified": modified}))
    first = settings_for(tmp_path, "sipri-1")
    assert run_pipeline(first, ("sipri_arms",))["sipri_arms"].status == "loaded"
    count = "SELECT count(*) FROM fact_arms_transfers"
    (before,), = query(first, count)

    live.route(old, Reply(301, b"", {"Location": live.url + new}))
    live.route(new, Reply(200, full, {"Content-Type": "text/csv", "Last-Modified": modified}))  # 304 if asked so
    live.clear_log()
    moved = settings_for(tmp_path, "sipri-2", run_date=RUN_DATE + timedelta(days=1))
    assert run_pipeline(moved, ("sipri_arms",))["sipri_arms"].status == "loaded"
    (seen_new,) = live.seen(new)
    assert "if-modified-since" not in seen_new.headers and "if-none-match" not in seen_new.headers
    (after,), = query(moved, count)
    assert after > before
    with connect(moved.warehouse_path, read_only=True) as conn:
        state = read_source_state(conn, "sipri_arms")
    assert state.request_url == live.url + new and state.last_modified == modified

    live.clear_log()
    next_day = settings_for(tmp_path, "sipri-3", run_date=RUN_DATE + timedelta(days=2))
    assert run_pipeline(next_day, ("sipri_arms",))["sipri_arms"].status == "unchanged"
    (seen_old,), (seen_new,) = live.seen(old), live.seen(new)
    assert "if-modified-since" not in seen_old.headers  # the validators belong to the new URL only
    assert seen_new.headers["if-modified-since"] == modified
