"""eujp.http against a local replay server (127.0.0.1): retries, Retry-After, budget, timeouts, gzip,
conditional requests and body checks (the pure parts: tests/unit/test_http.py). Sleeps are recorded instead of
slept where the test is about the wait; hangs and timeouts are real but short."""

from __future__ import annotations

import hashlib
import random
import socket
import threading
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from support.recordings import FIXTURES, payload_bytes, reply
from support.replay_server import ReplayServer, Reply
from support.tls import self_signed

from eujp.errors import ExtractError, PayloadTooLargeError
from eujp.http import (
    EXPECT_CSV,
    EXPECT_JSON,
    HttpClient,
    HttpPolicy,
)
from eujp.sources import eurostat_goods, eurostat_services, security_events

pytestmark = pytest.mark.timeout(60)

FAST = HttpPolicy(connect_timeout=1.0, read_timeout=0.3, max_attempts=4, backoff_base=0.01, backoff_max=0.05,
                  budget_seconds=10.0)
JSON_PATH = "/api/dissemination/statistics/1.0/data/ext_lt_maineu"
# The recorded responses these tests replay, by their sources' modules (a name is written in its folder only).
GOODS, SERVICES, EVENTS = eurostat_goods.SOURCE.name, eurostat_services.SOURCE.name, security_events.SOURCE.name


@pytest.fixture
def server():
    with ReplayServer() as s:
        yield s


class Sleeps(list):
    """Records requested sleeps without sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client(policy: HttpPolicy = FAST, **kwargs) -> HttpClient:
    return HttpClient(GOODS, policy, **kwargs)


def test_gzip_is_requested_and_decoded(server):
    server.route(JSON_PATH, reply(GOODS))  # recorded with Content-Encoding: gzip
    with client() as c:
        r = c.get(server.url + JSON_PATH, params=[("format", "JSON")], expect=EXPECT_JSON)
    assert r.status == 200 and r.header("content-encoding") == "gzip"
    assert r.content == payload_bytes(GOODS)
    seen = server.seen(JSON_PATH)[0]
    assert "gzip" in seen.headers["accept-encoding"]
    # the wire carried fewer bytes than the decoded body
    assert int(r.header("content-length")) < len(r.content)


@pytest.mark.parametrize("cut", ["no trailer", "mid-stream"])
def test_a_gzip_body_cut_short_is_a_truncated_body_retried_whatever_its_content_length(server, cut):
    """A gzip stream that stops early (no final block or no checksum trailer) with a Content-Length that
    matches what was sent: httpx's decoder would return the rows it got as the whole body."""
    import gzip

    body = b"a,b\r\n" + b"".join(b"%d,%d\r\n" % (i, i * i) for i in range(20_000))
    packed = gzip.compress(body)
    short = packed[:-8] if cut == "no trailer" else packed[:len(packed) // 2]
    headers = {"Content-Type": "text/csv", "Content-Encoding": "gzip"}
    server.route(JSON_PATH, Reply(200, short, headers), Reply(200, short, headers), Reply(200, packed, headers))
    with client() as c:
        r = c.get(server.url + JSON_PATH, expect=EXPECT_CSV)
    assert r.attempts == 3 and r.content == body
    server.route(JSON_PATH, *[Reply(200, short, headers)] * FAST.max_attempts)
    with client() as c, pytest.raises(ExtractError, match="truncated gzip body: the compressed stream did not end"):
        c.get(server.url + JSON_PATH, expect=EXPECT_CSV)


def test_deflate_with_or_without_its_zlib_header_and_gzip_of_several_members_are_read_whole(server):
    import gzip
    import zlib

    body = b"a,b\r\n" + b"1,2\r\n" * 5000
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    for packed, coding in ((zlib.compress(body), "deflate"), (raw.compress(body) + raw.flush(), "deflate"),
                           (gzip.compress(body[:7000]) + gzip.compress(body[7000:]), "gzip")):
        server.route(JSON_PATH, Reply(200, packed, {"Content-Type": "text/csv", "Content-Encoding": coding}))
        with client() as c:
            assert c.get(server.url + JSON_PATH, expect=EXPECT_CSV).content == body
    server.route(JSON_PATH, Reply(200, body, {"Content-Type": "text/csv", "Content-Encoding": "br"}))
    with client() as c, pytest.raises(ExtractError, match="Content-Encoding 'br' is not one the client asked for"):
        c.get(server.url + JSON_PATH, expect=EXPECT_CSV)


@pytest.mark.parametrize("chunk_bytes", [64 * 1024, 5], ids=["whole", "padding across chunks"])
def test_a_gzip_body_padded_with_nul_bytes_is_read_as_gzip_reads_it(server, chunk_bytes):
    """NUL bytes after a gzip member were taken for the next member's header ('undecodable gzip body: incorrect
    header check', retried, then the source failed); Python's gzip.decompress and httpx skip them."""
    import gzip

    body = b"a,b\r\n" + b"1,2\r\n" * 500
    for packed in (gzip.compress(body) + b"\0" * 1024,  # a padded block
                   gzip.compress(body[:1000]) + b"\0" * 7 + gzip.compress(body[1000:]) + b"\0"):
        assert gzip.decompress(packed) == body
        server.route(JSON_PATH, Reply(200, packed, {"Content-Type": "text/csv", "Content-Encoding": "gzip"}))
        with client(FAST.with_(chunk_bytes=chunk_bytes)) as c:
            r = c.get(server.url + JSON_PATH, expect=EXPECT_CSV)
        assert r.content == body and r.attempts == 1
    garbage = gzip.compress(body) + b"\0\0junk"  # not padding: still an undecodable body
    server.route(JSON_PATH, Reply(200, garbage, {"Content-Type": "text/csv", "Content-Encoding": "gzip"}))
    with client() as c, pytest.raises(ExtractError, match="undecodable gzip body"):
        c.get(server.url + JSON_PATH, expect=EXPECT_CSV)


def test_429_with_retry_after_seconds_waits_as_told_then_succeeds(server):
    server.route(JSON_PATH, Reply(429, b"Too Many Requests", {"Retry-After": "7"}), reply(GOODS))
    sleeps = Sleeps()
    with client(sleep=sleeps) as c:
        r = c.get(server.url + JSON_PATH, expect=EXPECT_JSON)
    assert r.status == 200 and r.attempts == 2
    assert sleeps == [7.0]
    assert len(server.seen(JSON_PATH)) == 2


@pytest.mark.parametrize("retry_after", ["0", "past date"])
def test_a_retry_after_of_no_time_still_waits_the_back_off(server, retry_after):
    """Retry-After: 0, or a date the server's clock already passed: never less than the back-off."""
    value = retry_after if retry_after == "0" else format_datetime(datetime.now(UTC) - timedelta(hours=1),
                                                                      usegmt=True)
    server.route(JSON_PATH, *[Reply(503, b"busy", {"Retry-After": value})] * 3, reply(GOODS))
    sleeps, policy = Sleeps(), FAST.with_(backoff_base=1.0, backoff_max=1.0)
    with client(policy, sleep=sleeps, rng=random.Random(7)) as c:
        c.get(server.url + JSON_PATH, expect=EXPECT_JSON)
    expected = random.Random(7)
    assert sleeps == [expected.uniform(0, 1.0) for _ in range(3)] and min(sleeps) > 0


def test_retry_after_as_http_date_is_honoured(server):
    when = datetime.now(UTC) + timedelta(seconds=30)
    server.route(JSON_PATH, Reply(503, b"busy", {"Retry-After": format_datetime(when, usegmt=True)}),
                 reply(GOODS))
    sleeps = Sleeps()
    with client(FAST.with_(budget_seconds=120), sleep=sleeps) as c:
        c.get(server.url + JSON_PATH, expect=EXPECT_JSON)
    assert len(sleeps) == 1 and 25 <= sleeps[0] <= 30


def test_retry_after_beyond_the_budget_gives_up_at_once_and_says_why(server):
    server.route(JSON_PATH, Reply(429, b"slow down", {"Retry-After": "3600"}))
    sleeps = Sleeps()
    with client(sleep=sleeps) as c, pytest.raises(ExtractError) as err:
        c.get(server.url + JSON_PATH, expect=EXPECT_JSON)
    msg = str(err.value)
    assert GOODS in msg and JSON_PATH in msg and "429" in msg
    assert "asked to wait 3600.0 s (Retry-After), more than the" in msg and "10 s budget" in msg
    assert sleeps == [] and len(server.seen()) == 1


def test_503_then_200_backs_off_with_full_jitter(server):
    server.route(JSON_PATH, Reply(503, b"unavailable"), Reply(502, b"bad gateway"), reply(GOODS))
    sleeps = Sleeps()
    policy = FAST.with_(backoff_base=1.0, backoff_max=60.0, budget_seconds=600)
    with client(policy, sleep=sleeps, rng=random.Random(7)) as c:
        r = c.get(server.url + JSON_PATH, expect=EXPECT_JSON)
    assert r.status == 200 and r.attempts == 3
    expected = random.Random(7)
    assert sleeps == [expected.uniform(0, 1.0), expected.uniform(0, 2.0)]


def test_hang_past_the_read_timeout_is_retried(server):
    server.route(JSON_PATH, Reply(200, b"{}", {"Content-Type": "application/json"}, delay=3.0),
                 reply(GOODS))
    started = time.monotonic()
    with client() as c:
        r = c.get(server.url + JSON_PATH, expect=EXPECT_JSON)
    assert r.status == 200 and r.attempts == 2
    assert time.monotonic() - started < 2.0  # the hang cost one read timeout (0.3 s), not 3 s
    assert "ReadTimeout" in c.attempts[0].outcome


def test_a_source_that_always_hangs_fails_clearly_within_its_budget(server):
    server.route(JSON_PATH, Reply(200, b"{}", {"Content-Type": "application/json"}, delay=30.0))
    policy = FAST.with_(max_attempts=100, budget_seconds=1.2)
    started = time.monotonic()
    with client(policy) as c, pytest.raises(ExtractError) as err:
        c.get(server.url + JSON_PATH, expect=EXPECT_JSON)
    elapsed = time.monotonic() - started
    assert elapsed < 1.2 + policy.connect_timeout + 0.5  # bounded by the budget, not by the attempts
    msg = str(err.value)
    assert GOODS in msg and server.url + JSON_PATH in msg
    assert "ReadTimeout" in msg and "the source's 1.2 s budget is spent" in msg
    assert 2 <= len(server.seen(JSON_PATH)) < 100


def test_truncated_body_is_retried_and_then_reported(server):
    full = reply(SERVICES)
    server.route(JSON_PATH, Reply(200, full.body, full.headers, send_bytes=100))
    with client(FAST.with_(max_attempts=3)) as c, pytest.raises(ExtractError) as err:
        c.get(server.url + JSON_PATH, expect=EXPECT_JSON)
    msg = str(err.value)
    assert "truncated body after 100 of" in msg and f"{len(full.body)} bytes" in msg
    assert "failed after 3 attempt(s)" in msg
    assert len(server.seen(JSON_PATH)) == 3


def test_truncated_once_then_complete(server):
    full = reply(SERVICES)
    server.route(JSON_PATH, Reply(200, full.body, full.headers, send_bytes=10), full)
    with client() as c:
        r = c.get(server.url + JSON_PATH, expect=EXPECT_JSON)
    assert r.content == full.body and r.attempts == 2


@pytest.fixture
def tls_server(tmp_path, monkeypatch):
    """The replay server over TLS, with a certificate the client trusts (SSL_CERT_FILE, as httpx's default)."""
    context, cert = self_signed(tmp_path / "tls")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    with ReplayServer(tls=context) as s:
        yield s


def test_a_tls_body_ended_without_close_notify_is_a_truncated_body_retried(tls_server):
    """A body delimited by the connection's close (no Content-Length, not chunked) cut at a line end: over TLS, a
    close without close_notify is the sign (RFC 9112 §9.8). It was taken whole (a register cut to 90% replaced
    the whole one and the run succeeded); it is a truncated body, retried. A close with close_notify ends it."""
    body = big_csv(20_000)
    cut = body[:body.rfind(b"\r\n", 0, len(body) * 9 // 10) + 2]
    headers = {"Content-Type": "text/csv"}
    ragged = Reply(200, body, headers, close_delimited=True, send_bytes=len(cut), ragged_close=True)
    tls_server.route(JSON_PATH, ragged, Reply(200, body, headers, close_delimited=True))
    with client() as c:
        r = c.get(tls_server.url + JSON_PATH, expect=EXPECT_CSV)
    assert r.content == body and r.attempts == 2 and "connection" in r.headers
    assert "content-length" not in r.headers
    tls_server.route(JSON_PATH, ragged)
    with client() as c, pytest.raises(ExtractError, match=rf"failed after 4 attempt\(s\).*truncated body: the TLS "
                                      rf"connection was closed without close_notify after {len(cut)} bytes \(a body "
                                      r"delimited by the connection's close: no Content-Length, not chunked\)"):
        c.get(tls_server.url + JSON_PATH, expect=EXPECT_CSV)
    # an error answer's body ended so is shown as it came, and a 404 is still not retried
    tls_server.route(JSON_PATH, Reply(404, b"no such file", {"Content-Type": "text/plain"}, close_delimited=True,
                                      ragged_close=True))
    tls_server.clear_log()
    with client() as c, pytest.raises(ExtractError, match="answered 404 Not Found; body: 'no such file'"):
        c.get(tls_server.url + JSON_PATH, expect=EXPECT_CSV)
    assert len(tls_server.seen()) == 1


def test_html_page_with_status_200_is_an_error_naming_url_status_and_first_bytes(server):
    page = (FIXTURES / "maintenance_page.html").read_bytes()
    server.route(JSON_PATH, Reply(200, page, {"Content-Type": "text/html; charset=utf-8"}))
    with client() as c, pytest.raises(ExtractError) as err:
        c.get(server.url + JSON_PATH, params=[("format", "JSON")], expect=EXPECT_JSON)
    msg = str(err.value)
    assert msg.startswith(f"{GOODS}: GET " + server.url + JSON_PATH + "?format=JSON answered 200 with an HTML")
    assert "<!DOCTYPE html>" in msg and "Service temporarily unavailable" in msg
    assert len(server.seen()) == 1  # not retried: a 200 is an answer


def test_html_page_without_html_content_type_is_sniffed(server):
    page = (FIXTURES / "maintenance_page.html").read_bytes()
    server.route(JSON_PATH, Reply(200, page, {"Content-Type": "text/csv"}))
    with client() as c, pytest.raises(ExtractError, match="HTML page"):
        c.get(server.url + JSON_PATH, expect=EXPECT_CSV)


def test_truncated_json_with_correct_http_framing_is_an_error(server):
    whole = payload_bytes(GOODS)
    server.route(JSON_PATH, Reply(200, whole[: len(whole) // 2], {"Content-Type": "application/json"}))
    with client() as c, pytest.raises(ExtractError, match="truncated JSON"):
        c.get(server.url + JSON_PATH, expect=EXPECT_JSON)


def test_empty_body_is_an_error(server):
    server.route(JSON_PATH, Reply(200, b"", {"Content-Type": "application/json"}))
    with client() as c, pytest.raises(ExtractError, match="empty body"):
        c.get(server.url + JSON_PATH, expect=EXPECT_JSON)


def test_client_errors_are_not_retried_and_show_the_body(server):
    server.route(JSON_PATH, Reply(400, b'{"error":{"status":400,"label":"Invalid filter geo=XX"}}',
                                  {"Content-Type": "application/json"}))
    with client() as c, pytest.raises(ExtractError) as err:
        c.get(server.url + JSON_PATH, expect=EXPECT_JSON)
    assert "answered 400 Bad Request" in str(err.value) and "Invalid filter geo=XX" in str(err.value)
    assert len(server.seen()) == 1


def test_pass_statuses_are_returned_to_the_caller(server):
    too_big = (FIXTURES / "comext_413_extraction_too_big.xml").read_bytes()
    server.route(JSON_PATH, Reply(413, too_big, {"Content-Type": "application/xml"}))
    with client() as c:
        r = c.get(server.url + JSON_PATH, expect=EXPECT_CSV, pass_statuses=(413,))
    assert r.status == 413 and b"EXTRACTION_TOO_BIG" in r.content


def test_conditional_requests_get_304(server):
    rec = reply(EVENTS)
    server.route(JSON_PATH, rec)
    with client() as c:
        first = c.get(server.url + JSON_PATH, expect=EXPECT_CSV)
        by_etag = c.get(server.url + JSON_PATH, expect=EXPECT_CSV, etag=first.header("etag"))
        stale = c.get(server.url + JSON_PATH, expect=EXPECT_CSV, etag='"older"')
    assert first.status == 200 and by_etag.not_modified and by_etag.content == b""
    assert stale.status == 200
    assert server.seen()[1].headers["if-none-match"] == rec.headers["ETag"]
    # Last-Modified alone
    server.route(JSON_PATH, Reply(200, b"a,b\n1,2\n", {"Last-Modified": "Tue, 24 Nov 2026 13:35:00 GMT"}))
    with client() as c:
        r = c.get(server.url + JSON_PATH, expect=EXPECT_CSV, last_modified="Tue, 24 Nov 2026 13:35:00 GMT")
    assert r.not_modified


def test_validators_go_to_the_url_they_belong_to_not_on_to_a_redirects_other_target(server):
    """A mirror moved by a 301: the old URL's If-Modified-Since went on to the new URL (httpx re-sends a request's
    headers to a redirect's target), whose older file answered 304, and the new data were never loaded. The
    validators go to the hop of the URL they came from (`validators_url`; the URL asked when none is given)."""
    modified = "Tue, 24 Nov 2026 13:35:00 GMT"
    server.route("/old.csv", Reply(301, b"", {"Location": "/hop", "Content-Type": "text/plain"}))
    server.route("/hop", Reply(302, b"", {"Location": server.url + "/new.csv"}))
    server.route("/new.csv", Reply(200, b"a,b\n1,2\n", {"Content-Type": "text/csv", "Last-Modified": modified}))
    with client() as c:
        moved = c.get(server.url + "/old.csv", expect=EXPECT_CSV, last_modified=modified, etag='"v1"')
        assert moved.status == 200 and moved.content == b"a,b\n1,2\n" and moved.url == server.url + "/new.csv"
        assert [s.path for s in server.seen()] == ["/old.csv", "/hop", "/new.csv"]
        assert server.seen("/old.csv")[0].headers["if-modified-since"] == modified
        assert not {"if-modified-since", "if-none-match"} & set(server.seen("/new.csv")[0].headers)
        server.clear_log()
        # the next day: the validators came with the answer of /new.csv, and go there only
        again = c.get(server.url + "/old.csv", expect=EXPECT_CSV, last_modified=modified,
                      validators_url=moved.url)
    assert again.not_modified
    assert not {"if-modified-since", "if-none-match"} & (set(server.seen("/old.csv")[0].headers)
                                                          | set(server.seen("/hop")[0].headers))
    assert server.seen("/new.csv")[0].headers["if-modified-since"] == modified


@pytest.mark.parametrize(("routes", "match", "asked"), [
    ({"/a": "/b", "/b": "/a"}, (r"GET http://127\.0\.0\.1:\d+/a: more than 20 redirects \(a loop\), not followed "
                               r"further: http://\S+/a -> http://\S+/b -> http://\S+/a -> … 17 more … -> "), 11),
    ({"/a": "/b", "/b": "ftp://mirror.example/register.csv"},
     (r"GET http://\S+/a redirected to a URL the client cannot follow \(scheme 'ftp', not http or https\): "
     r"http://\S+/a -> http://\S+/b -> ftp://mirror\.example/register\.csv$"), 1),
])
def test_a_redirect_loop_or_to_another_scheme_is_a_clear_error_not_retried(server, routes, match, asked):
    """httpx's TooManyRedirects / UnsupportedProtocol escaped the client as raw exceptions."""
    for path, location in routes.items():
        server.route(path, Reply(302, b"", {"Location": location}))
    with client() as c, pytest.raises(ExtractError, match=match):
        c.get(server.url + "/a", expect=EXPECT_CSV)
    assert len(server.seen("/a")) == asked  # one attempt (a loop's 21 hops), not one per retry


def test_a_redirect_keeps_credentials_to_its_own_host_only(server):
    """user:password@ becomes an Authorization header: kept on a redirect to the same host, dropped to another."""
    with ReplayServer() as other:
        other.route("/elsewhere.csv", Reply(200, b"a,b\n1,2\n", {"Content-Type": "text/csv"}))
        server.route("/reg.csv", Reply(302, b"", {"Location": "/same.csv"}))
        server.route("/same.csv", Reply(302, b"", {"Location": other.url + "/elsewhere.csv"}))
        with client() as c:
            r = c.get(server.url.replace("http://", "http://mirror:PASS42@") + "/reg.csv", expect=EXPECT_CSV)
        assert r.status == 200
        assert "authorization" in server.seen("/same.csv")[0].headers
        assert "authorization" not in other.seen("/elsewhere.csv")[0].headers


def test_connection_refused_is_retried_then_reported():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with client(FAST.with_(max_attempts=3)) as c, pytest.raises(ExtractError) as err:
        c.get(f"http://127.0.0.1:{port}/x", expect=EXPECT_JSON)
    assert "ConnectError" in str(err.value) and "failed after 3 attempt(s)" in str(err.value)
    assert len(c.attempts) == 3




# --- bodies written to a file as they arrive (body_file) --------------------------------------------------

def big_csv(rows: int) -> bytes:
    return b"a,b,c\r\n" + b"".join(b"%d,%d,row %d of a wide answer\r\n" % (i, i * 7, i) for i in range(rows))


def test_a_body_file_receives_the_body_as_it_arrives_and_memory_stays_small(server, tmp_path):
    """Bounded memory however the data arrive (issue 12): an answer up to the payload cap is written to its file
    chunk by chunk; what the client allocates at its peak is a small part of the answer (it joined the whole
    body, then the checks and callers copied it, before)."""
    body = big_csv(600_000)  # ~22 MB, built before tracing: the server sends these very bytes
    server.route(JSON_PATH, Reply(200, body, {"Content-Type": "text/csv"}))
    target = tmp_path / "answers" / "000001.body"
    with client(FAST.with_(read_timeout=10.0)) as c:
        c.get(server.url + JSON_PATH, expect=EXPECT_CSV, body_file=tmp_path / "warm-up.body").discard()
        tracemalloc.start()
        try:
            r = c.get(server.url + JSON_PATH, expect=EXPECT_CSV, body_file=target)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert r.status == 200 and r.content == b"" and r.body_file.path == target
    assert target.read_bytes() == body and r.body_file.sha256 == hashlib.sha256(body).hexdigest()
    assert r.size == len(body) and r.shape.multi_line and r.text_preview().startswith("'a,b,c 0,0,row 0")
    assert peak < len(body) / 20, f"the client traced {peak:,} bytes at its peak for a {len(body):,}-byte answer"
    r.discard()
    assert not target.exists()


def test_a_body_file_is_written_afresh_on_a_retry_and_decoded_from_gzip(server, tmp_path):
    full = reply(SERVICES)  # recorded gzip-encoded
    server.route(JSON_PATH, Reply(200, full.body, full.headers, send_bytes=10), full)
    target = tmp_path / "body"
    with client() as c:
        r = c.get(server.url + JSON_PATH, expect=EXPECT_JSON, body_file=target)
    assert r.attempts == 2 and target.read_bytes() == payload_bytes(SERVICES)  # not the cut first attempt + it


@pytest.mark.parametrize(("replies", "policy", "error", "match"), [
    ([Reply(200, (FIXTURES / "maintenance_page.html").read_bytes(), {"Content-Type": "text/csv"})], FAST,
     ExtractError, "HTML page"),
    ([Reply(200, b"a,b\r\n1,2\r\n" * 100_000, {"Content-Type": "text/csv"}, gzip=True)],  # small on the wire
     FAST.with_(max_body_bytes=64 * 1024), PayloadTooLargeError, "stopped reading after"),
    ([Reply(200, b"a,b\r\n1,2\r\n" * 1000, {"Content-Type": "text/csv"}, send_bytes=100)], FAST,
     ExtractError, "truncated body"),
    ([Reply(404, b"not here", {"Content-Type": "text/plain"})], FAST, ExtractError, "404 Not Found"),
])
def test_a_failed_request_leaves_no_body_file(server, tmp_path, replies, policy, error, match):
    server.route(JSON_PATH, *replies)
    target = tmp_path / "body"
    with client(policy) as c, pytest.raises(error, match=match):
        c.get(server.url + JSON_PATH, expect=EXPECT_CSV, body_file=target)
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_other_statuses_are_read_into_content_not_the_body_file(server, tmp_path):
    too_big = (FIXTURES / "comext_413_extraction_too_big.xml").read_bytes()
    server.route(JSON_PATH, Reply(413, too_big, {"Content-Type": "application/xml"}))
    with client() as c:
        r = c.get(server.url + JSON_PATH, expect=EXPECT_CSV, pass_statuses=(413,), body_file=tmp_path / "body")
    assert r.status == 413 and r.content == too_big and r.body_file is None and not (tmp_path / "body").exists()


def test_credentials_in_a_url_are_never_shown_nor_kept(server):
    """A private mirror's URL carries its credentials (user:password@, ?private_token=, a presigned link's
    X-Amz-Signature): the error message and the response's URL (what the raw zone's .meta.json and the source
    state keep) show *** instead, while the request itself is sent with them."""
    server.route("/register.csv", Reply(404, b"no such file", {"Content-Type": "text/plain"}))
    url = (server.url.replace("http://", "http://mirror:PASS42@") + "/register.csv?private_token=TOKEN42"
           "&X-Amz-Signature=SIG42&year=2024")
    with client() as c, pytest.raises(ExtractError) as err:
        c.get(url, expect=EXPECT_CSV)
    shown = str(err.value)
    assert not any(secret in shown for secret in ("PASS42", "TOKEN42", "SIG42")), shown
    assert "mirror:***@" in shown and "private_token=***" in shown and "year=2024" in shown
    assert server.seen()[0].param("private_token") == "TOKEN42"  # sent as given
    server.route("/register.csv", Reply(200, b"a,b\n1,2\n", {"Content-Type": "text/csv"}))
    with client() as c:
        response = c.get(url, expect=EXPECT_CSV)
    assert "TOKEN42" not in response.url and "PASS42" not in response.url and "SIG42" not in response.url


def test_a_kept_url_is_asked_again_with_the_credentials_of_the_settings():
    from eujp.http import redact_url, with_credentials

    now = "https://mirror:PASS42@host/reg.csv?private_token=TOKEN42&start=2020"
    kept = redact_url("https://mirror:PASS41@host/reg.csv?private_token=TOKEN41&start=2019")
    assert kept == "https://mirror:***@host/reg.csv?private_token=***&start=2019"
    assert with_credentials(kept, now) == "https://mirror:PASS42@host/reg.csv?private_token=TOKEN42&start=2019"
    plain = "https://ec.europa.eu/eurostat/api/x?geo=JP&format=JSON&monkey=1"
    assert redact_url(plain) == plain and with_credentials(plain, now) == plain


def test_a_304_to_a_request_without_validators_is_an_error_not_nothing_new(server):
    """A 304 Not Modified answered to a request that sent no validators (a cache or proxy on the way, a
    misbehaving mirror) says nothing about what is unchanged: taken for 'nothing new', it made a first or forced
    extraction empty and a Comext slice 'no observations' (its months claimed covered). It is an error naming
    it; to a conditional request it stays 'not modified'."""
    server.route(JSON_PATH, Reply(304, b"", {"ETag": '"v1"'}))
    with client() as c:
        with pytest.raises(ExtractError, match=r"answered 304 Not Modified to a request that sent no validators "
                                               r"\(If-None-Match, If-Modified-Since\)"):
            c.get(server.url + JSON_PATH, expect=EXPECT_CSV)
        assert c.get(server.url + JSON_PATH, expect=EXPECT_CSV, etag='"v1"').not_modified
    assert "if-none-match" not in server.seen()[0].headers and server.seen()[1].headers["if-none-match"] == '"v1"'


def test_a_206_to_a_request_for_the_whole_resource_is_an_error_not_the_payload(server, tmp_path):
    """206 Partial Content to a request that sent no Range: its body is a part of the resource, and landed as the
    whole (a SIPRI register cut by half passes the row-drop audit). An error naming the Content-Range; no body
    file is left."""
    server.route(JSON_PATH, Reply(206, b"a,b\r\n1,2\r\n", {"Content-Type": "text/csv",
                                                           "Content-Range": "bytes 0-9/71133"}))
    body = tmp_path / "body"
    with client() as c, pytest.raises(ExtractError, match=r"answered 206 Partial Content \(Content-Range bytes "
                                                          r"0-9/71133\) to a request for the whole resource"):
        c.get(server.url + JSON_PATH, expect=EXPECT_CSV, body_file=body)
    assert not body.exists()
    with client() as c:  # a part asked for is a part answered
        part = c.get(server.url + JSON_PATH, expect=EXPECT_CSV, headers={"Range": "bytes=0-9"})
    assert part.status == 206 and part.content == b"a,b\r\n1,2\r\n"


@pytest.mark.parametrize("page", [
    b"Service Unavailable\r\nThe server is temporarily unable to service your request.\r\n",
    b"502 Bad Gateway\n\nThe proxy server received an invalid response from an upstream server\n",
])
def test_a_plain_text_error_page_where_csv_was_promised_is_refused(server, page):
    """A 200 whose body is text with no delimiter in any line (an error page in text/plain, a stack trace) is not
    the CSV promised: refused as such, naming it, instead of landed and failed by the parser as a changed
    format."""
    server.route(JSON_PATH, Reply(200, page, {"Content-Type": "text/plain"}))
    with client() as c, pytest.raises(ExtractError, match="answered 200 with not a CSV: text with no delimiter in "
                                                          "any line; first bytes: '"):
        c.get(server.url + JSON_PATH, expect=EXPECT_CSV)


def _dripped(answer: bytes, *, at_once: bytes = b"") -> tuple[float, str]:
    """(seconds, error) of a GET with one attempt and a 1 s budget from a one-connection server on 127.0.0.1
    that sends `at_once`, then `answer` a byte every 0.05 s (well within the read timeout, 0.3 s), for as long as
    the client keeps asking."""
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(at_once)
            for i in range(len(answer)):
                if stop.is_set():
                    return
                try:
                    conn.sendall(answer[i:i + 1])
                except OSError:  # the client hung up
                    return
                time.sleep(0.05)

    threading.Thread(target=serve, daemon=True).start()
    started = time.monotonic()
    try:
        with client(FAST.with_(max_attempts=1, budget_seconds=1.0)) as c, pytest.raises(ExtractError) as err:
            c.get(f"http://127.0.0.1:{listener.getsockname()[1]}/x.csv", expect=EXPECT_CSV)
    finally:
        stop.set()
        listener.close()
    return time.monotonic() - started, str(err.value)


def test_a_body_dripped_within_the_read_timeout_is_cut_off_at_the_budget():
    """A server that sends a body one byte at a time, each well within the read timeout (0.05 s against 0.3 s),
    cannot hold the source past its budget: the deadline is checked after every network read (before, only
    after every 64 KiB, so such a body of 100 kB held a 1 s budget for over an hour)."""
    body = b"a,b\r\n" + b"1,2\r\n" * 20_000
    seconds, error = _dripped(body, at_once=b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\n"
                                            b"Content-Length: %d\r\n\r\n" % len(body))
    assert seconds < 1.0 + FAST.read_timeout + 0.5
    assert "budget spent while reading the body" in error


@pytest.mark.parametrize("answer", [
    # the status line and headers dripped, each byte well within the read timeout (0.05 s against 0.3 s)
    b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\n" + b"X-Padding: " + b"x" * 2000 + b"\r\n\r\na,b\r\n1,2\r\n",
    # 1xx answers without end (RFC 9110 \u00a715.2: a client reads on past each one to the final answer)
    b"HTTP/1.1 102 Processing\r\n\r\n" * 2000,
], ids=["headers-dripped", "endless-1xx"])
def test_a_status_line_and_headers_dripped_or_endless_1xx_answers_are_cut_off_at_the_budget(answer):
    """Every network read waits at most what is left of the budget (eujp.http.bound_by_budget), the status line's
    and headers' too: a server that drips them within the read timeout, or answers 102 Processing without end,
    used to hold the source for as long as it went on (httpx bounds each read, not a whole request)."""
    seconds, error = _dripped(answer)
    assert seconds < 1.0 + 0.5
    assert "the source's time budget is spent (1 s) before the answer's status line and headers came" in error


def test_the_budget_bounds_the_connections_of_the_client_and_of_its_proxies(monkeypatch):
    """bound_by_budget reaches into httpx's transports (`_pool`, whose network backend httpx does not expose):
    every transport the client uses, proxies' included, gets the budget's backend; a transport of another kind
    (a test's MockTransport) is left as it is. Fails when an httpx upgrade moves what it sets."""
    import httpx

    from eujp.http import _BudgetBackend

    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    with client() as c:
        transports = [c._client._transport, *c._client._mounts.values()]
        assert len(transports) >= 2
        assert all(isinstance(t._pool._network_backend, _BudgetBackend) for t in transports if t is not None)
    mock = httpx.MockTransport(lambda request: httpx.Response(200))
    with client(transport=mock) as c:
        assert c._client._transport is mock
