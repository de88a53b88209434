"""Comext answers delivered asynchronously (Eurostat's ASYNC API: a key instead of the data, its status polled,
its data fetched once AVAILABLE; eujp.eurostat_async) against the recorded responses replayed on 127.0.0.1:
the same payloads as a synchronous extraction, archives unpacked, lost keys asked for again, and each way it
can fail named."""

from __future__ import annotations

import io
import zipfile

import pytest
from support.live import fetch, settings_for
from support.recordings import FIXTURES, RECORDINGS, AsyncComext
from support.replay_server import Reply, Seen

from eujp.errors import ExtractError
from eujp.eurostat_async import Ticket, async_urls, queued_ticket, status_of
from eujp.http import BodyShape, HttpResponse
from eujp.live import fetch_live
from eujp.sources import get_source
from eujp.sources.comext_goods import parse_coverage

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

PREFIX = RECORDINGS["comext_goods"]["path_prefix"]
STATUS, DATA = f"{AsyncComext.API}/1.0/async/status/", f"{AsyncComext.API}/1.0/async/data/"


@pytest.fixture
def fast_polls(monkeypatch):
    monkeypatch.setenv("EUJP_COMEXT_ASYNC_POLL_SECONDS", "0.02")


def requests_to(server, prefix: str) -> list[Seen]:
    return [s for s in server.seen() if s.path.startswith(prefix)]


def synchronous(live, tmp_path) -> dict[str, bytes]:
    """The data payloads of a synchronous extraction, by name (the baseline); the server's log cleared."""
    payloads = {p.name: p.read() for p in fetch("comext_goods", tmp_path / "sync") if p.kind == "data"}
    live.clear_log()
    return payloads


def asynchronous(live, **options) -> AsyncComext:
    service = AsyncComext(live.sliced["comext_goods"], **options)
    service.install(live, PREFIX)
    return service


def response(body: bytes, status: int = 200) -> HttpResponse:
    return HttpResponse("GET", "http://x", status, {}, body, 1, 0.0, measured=BodyShape.of(body))


def test_a_ticket_and_a_status_are_read_from_the_documented_envelopes():
    key = "0f164c29-6cd4-4a4c-9a51-2b1f0b8f3b9e"
    queued = (FIXTURES / "eurostat_async_queued.xml").read_bytes().replace(b"{key}", key.encode())
    assert queued_ticket(response(queued)) == Ticket(key, "SUBMITTED")
    for not_a_ticket in (b"DATAFLOW,LAST UPDATE\r\nESTAT:DS-045409(1.0),x\r\n",
                         (FIXTURES / "eurostat_fault_100_no_results.xml").read_bytes(), b"<html><body>busy</body>"):
        assert queued_ticket(response(not_a_ticket)) is None
    assert queued_ticket(response(queued, status=404)) is None
    template = (FIXTURES / "eurostat_async_status.xml").read_text().replace("{key}", key)
    for state in ("SUBMITTED", "PROCESSING", "AVAILABLE", "EXPIRED"):
        assert status_of(template.replace("{status}", state).encode()) == state
    assert status_of(b"<x/>") is None and status_of(b"not xml") is None
    assert async_urls("https://ec.europa.eu/eurostat/api/comext/dissemination", key) == (
        f"https://ec.europa.eu/eurostat/api/comext/dissemination/1.0/async/status/{key}",
        f"https://ec.europa.eu/eurostat/api/comext/dissemination/1.0/async/data/{key}")


@pytest.mark.parametrize("packed", [None, "zip", "gzip"])
def test_asynchronous_answers_are_waited_for_and_land_what_a_synchronous_extraction_lands(live, tmp_path,
                                                                                          fast_polls, packed):
    """Every data request answered with a key: each key's status is asked until AVAILABLE (SUBMITTED, PROCESSING,
    AVAILABLE: three status requests), then its data is fetched once, unpacked when the service sends an archive;
    the payloads hold the same bytes, under the same names, as those of a synchronous extraction."""
    expected = synchronous(live, tmp_path)
    service = asynchronous(live, packed=packed)
    payloads = fetch("comext_goods", tmp_path / "async")
    data = [p for p in payloads if p.kind == "data"]
    assert {p.name: p.read() for p in data} == expected
    delivered = [k for k, answer in service.kept.items() if answer.status == 200]
    assert len(delivered) == len(expected) == 2
    assert sorted(p.url.rsplit("/", 1)[1] for p in data) == sorted(delivered)  # landed from the data endpoint
    for key in service.kept:
        assert len(requests_to(live, STATUS + key)) == 3
        assert len(requests_to(live, DATA + key)) == 1
    # the 413s were answered at once (the cost is judged first) and split as before; the empty months' key
    # delivered the No Results fault, read as no observations
    coverage = parse_coverage(payloads[-1].read())
    assert {"2025-04", "2025-05"} <= {d.strftime("%Y-%m") for d in coverage.get_column("period")}


def test_data_asked_for_before_it_is_ready_is_asked_for_again(live, tmp_path, fast_polls):
    """The status says AVAILABLE but the data endpoint answers DATA_NOT_YET_AVAILABLE: the status is polled
    again and the data fetched when it comes."""
    expected = synchronous(live, tmp_path)
    service = asynchronous(live, statuses=("AVAILABLE",))
    served = service.data
    refused: set[str] = set()

    def not_yet_once(seen: Seen) -> Reply:
        key = seen.path.rsplit("/", 1)[1]
        if key not in refused:
            refused.add(key)
            return Reply(400, (FIXTURES / "eurostat_fault_data_not_yet_available.xml").read_bytes(),
                         {"Content-Type": "application/xml"})
        return served(seen)

    live.respond(DATA, not_yet_once, prefix=True)
    assert {p.name: p.read() for p in fetch("comext_goods", tmp_path / "async") if p.kind == "data"} == expected
    assert all(len(requests_to(live, DATA + key)) == 2 for key in service.kept)


@pytest.mark.parametrize("lose", ["expired", "unknown"])
def test_a_lost_key_sends_the_request_again(live, tmp_path, fast_polls, lose):
    """EXPIRED (the data left the service's cache before it was fetched) or a key the service no longer knows:
    the same request is sent again; answered at once this time, its data lands as a synchronous one does."""
    expected = synchronous(live, tmp_path)
    first: set[tuple[str, tuple]] = set()

    def first_time(seen: Seen) -> bool:
        ask = (seen.path, tuple(seen.query))
        if ask in first:
            return False
        first.add(ask)
        return True

    service = asynchronous(live, statuses=("PROCESSING", "EXPIRED") if lose == "expired" else ("PROCESSING",),
                           deliver_async=first_time)
    service.forget = lose == "unknown"
    assert {p.name: p.read() for p in fetch("comext_goods", tmp_path / "async") if p.kind == "data"} == expected
    asked = [(s.path, tuple(s.query)) for s in requests_to(live, PREFIX)]
    assert len(service.kept) == len(first) and all(asked.count(a) == 2 for a in first if a in asked)


def test_keys_lost_again_and_again_fail_the_slice(live, tmp_path, fast_polls):
    asynchronous(live, statuses=("EXPIRED",))
    with pytest.raises(ExtractError, match=r"4 asynchronous deliveries were lost \(expired or unknown keys\)"):
        fetch("comext_goods", tmp_path)


def test_data_that_never_comes_fails_with_the_key_and_the_limit(live, tmp_path, fast_polls, monkeypatch):
    monkeypatch.setenv("EUJP_COMEXT_ASYNC_WAIT_SECONDS", "0.1")
    service = asynchronous(live, statuses=("SUBMITTED", "PROCESSING"))
    with pytest.raises(ExtractError) as caught:
        fetch("comext_goods", tmp_path)
    key = next(iter(service.kept))
    message = str(caught.value)
    assert f"had not prepared the data of key {key}" in message
    assert "status PROCESSING" in message and "EUJP_COMEXT_ASYNC_WAIT_SECONDS=0.1" in message
    assert f"/1.0/async/data/{key}" in message


def test_an_unknown_status_is_an_error_naming_it(live, tmp_path, fast_polls):
    asynchronous(live, statuses=("SUBMITTED", "CANCELLED"))
    with pytest.raises(ExtractError, match="is in status 'CANCELLED', none of SUBMITTED, PROCESSING, AVAILABLE, EXPIRED"):
        fetch("comext_goods", tmp_path)


def test_asynchronous_data_that_is_no_csv_is_an_error(live, tmp_path, fast_polls):
    service = asynchronous(live, statuses=("AVAILABLE",))
    live.respond(DATA, lambda seen: Reply(200, b"<html><body>Service unavailable</body></html>",
                                          {"Content-Type": "text/html"}), prefix=True)
    with pytest.raises(ExtractError, match="the asynchronous data of key .* is an HTML page"):
        fetch("comext_goods", tmp_path)
    assert service.kept


def test_a_zip_of_several_files_is_an_error(live, tmp_path, fast_polls):
    asynchronous(live, statuses=("AVAILABLE",))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a.csv", "x")
        z.writestr("b.csv", "y")
    live.respond(DATA, lambda seen: Reply(200, archive.getvalue(), {"Content-Type": "application/zip"}),
                 prefix=True)
    with pytest.raises(ExtractError, match=r"is a zip archive of 2 files \(a.csv, b.csv\), not one"):
        fetch("comext_goods", tmp_path)


def test_xml_that_is_no_ticket_is_still_refused_as_csv(live, tmp_path):
    live.respond(PREFIX, lambda seen: Reply(200, b"<?xml version='1.0'?><S:Fault/>", {"Content-Type": "application/xml"}),
                 prefix=True)
    with pytest.raises(ExtractError, match="answered 200 with an XML document .* where CSV was promised"):
        fetch("comext_goods", tmp_path)


@pytest.mark.parametrize("value", ["abc", "0", "-5", "nan", "inf"])
def test_bad_async_settings_fail_before_the_first_data_request(live, tmp_path, monkeypatch, value):
    monkeypatch.setenv("EUJP_COMEXT_ASYNC_POLL_SECONDS", value)
    with pytest.raises(ExtractError, match="EUJP_COMEXT_ASYNC_POLL_SECONDS="):
        fetch("comext_goods", tmp_path)
    assert not requests_to(live, PREFIX)


def test_the_status_is_asked_after_one_second_then_at_doubling_intervals_up_to_the_setting(live, tmp_path,
                                                                                           monkeypatch):
    """A key that stays SUBMITTED for six status requests: the waits before them are 1, 2, 4, 8, 8, 8 s
    (EUJP_COMEXT_ASYNC_POLL_SECONDS=8), on the HTTP client's clock (its sleep recorded here, not slept)."""
    monkeypatch.setenv("EUJP_COMEXT_ASYNC_POLL_SECONDS", "8")
    monkeypatch.setenv("EUJP_HTTP_BUDGET_SECONDS", "600")  # the waits are recorded, not slept: the budget is not
    monkeypatch.setenv("EUJP_COMEXT_START", "2025-06")  # one slice: one key
    service = asynchronous(live, statuses=("SUBMITTED",) * 6 + ("AVAILABLE",))
    waits: list[float] = []
    payloads = fetch_live(get_source("comext_goods"), settings_for(tmp_path, "fetch"), None, sleep=waits.append)
    assert [p.kind for p in payloads].count("data") == 1
    (key,) = service.kept
    assert len(requests_to(live, STATUS + key)) == 7
    assert waits == [1, 2, 4, 8, 8, 8, 8]
