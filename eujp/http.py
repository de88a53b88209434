"""Resilient HTTP for the live sources (httpx).

One `HttpClient` per source and run. It owns that source's time budget: every request, retry and
back-off of the source draws on it, so a source can never take longer than `HttpPolicy.budget_seconds`
(plus one connect timeout at most).

- Timeouts: connect and read timeouts; each attempt's timeouts are cut to what is left of the budget and
  the body is read as it arrives, with the deadline checked after every network read (a server that drips
  a body's bytes cannot hold a run hostage). Every network read and
  write, the status line's and headers' included, waits no longer than what is left of the budget
  (`bound_by_budget`: httpx has no deadline for a whole request), so a server that drips them, or sends 1xx
  answers without end, is cut off at the budget too.
- Retries: connection errors, timeouts, truncated bodies, 429 and 5xx (except 501) are retried with
  exponential back-off and full jitter (`uniform(0, min(max, base * 2**(n-1)))`). A `Retry-After` header
  (seconds or an HTTP date) is honoured, never below that back-off (a `0` or a date already past); when it asks for more time than the budget has left, the client
  gives up at once with an error that says so. Other 4xx are not retried.
- gzip: `Accept-Encoding: gzip, deflate` is sent, and the body is decoded here (`_BodyDecoder`, zlib), which
  checks that the compressed stream ended: httpx's own decoder takes a gzip stream cut short (no final block,
  no checksum trailer, a Content-Length that matches what was sent) for a whole one; here it is a truncated
  body, retried. The bytes returned (and landed) are the decoded body; the response headers still say how
  it travelled.
- Redirects are followed hop by hop (at most `MAX_REDIRECTS`, http and https only; a loop, or a redirect to
  another scheme, is an ExtractError naming the URLs followed, not retried). A credential in the URL or an
  Authorization header is not sent on to another host (httpx's redirect requests).
- Conditional requests: `If-None-Match` / `If-Modified-Since` from the previous successful load, sent only to
  the hop whose URL they belong to (`validators_url`: the final URL of the answer they came with; without it,
  the URL asked), never on to a redirect's other target (RFC 9110 §15.4: the server there never answered them).
  A 304 comes back as `HttpResponse.not_modified`, only to a request that sent validators: to any other it is
  an ExtractError (it would read as "nothing new"), as a 206 Partial Content is to a request that asked for
  no part (it would land a part as the whole).
- Bodies to a file: given `body_file`, a 2xx body is written to that file as it arrives (hashed on the way,
  `HttpResponse.body_file`), so an answer up to the payload cap is never held in memory; a retried attempt
  starts the file again, a failed request leaves no file. Other statuses (304, errors, a caller's 413) are
  small and read into `content`.
- TLS: a connection closed without TLS's close_notify (a "ragged EOF", `_TlsContext`) ends no body: it is
  a truncated body, retried. It is the only sign that a body delimited by the connection's close (no
  Content-Length, not chunked) was cut short (RFC 9112 §9.8); over plain HTTP there is none, and such a body is
  taken as it came. An error answer's body (only shown) ends there.
- Body checks: a body must be what the source promises. JSON must be complete JSON; CSV must not be an
  HTML/XML page and must have a header line; an empty body or a body shorter than its Content-Length is
  an error. Every error names the source, the method and URL, the status and the first bytes of the body.

Deterministic in tests: `sleep`, `clock` and `rng` are injectable and the policy comes from
`HttpPolicy.from_env()` (EUJP_HTTP_* variables), so tests use tiny back-offs and short timeouts.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import os
import random
import re
import ssl
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any, ClassVar, Self
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpcore
import httpx

from eujp.errors import ExtractError, PayloadTooLargeError

# Query parameters that carry a credential in the URLs of private mirrors and presigned links (GitLab's
# private_token, an api_key, S3's X-Amz-Signature / -Credential / -Security-Token, ...): masked wherever a URL
# is shown or kept (`redact_url`).
_SECRET_PARAM = re.compile(r"(?i)^(?:x-amz-(?:signature|credential|security-token)|.*(?:token|secret|password|"
                           r"passwd|signature|api[-_]?key|apikey|access[-_]?key|auth|sig)$|key)$")


def with_credentials(shown: str, real: str) -> str:
    """`shown` (a URL as `redact_url` kept it) with the credentials of `real` (the URL the settings give now,
    of the same server) put back where it says ***: a kept URL can be asked again."""
    kept, now = urlsplit(shown), urlsplit(real)
    netloc = kept.netloc
    if ":***@" in netloc and netloc.rpartition("@")[2] == now.netloc.rpartition("@")[2]:
        netloc = now.netloc
    secrets = dict(parse_qsl(now.query, keep_blank_values=True))
    pairs = [(k, secrets.get(k, v) if v == "***" else v) for k, v in parse_qsl(kept.query, keep_blank_values=True)]
    query = urlencode(pairs, safe="*:/,") if any(v == "***" for _, v in parse_qsl(kept.query)) else kept.query
    return urlunsplit((kept.scheme, netloc, kept.path, query, kept.fragment))


def redact_url(url: str) -> str:
    """`url` as it may be shown, logged and kept (error messages, the raw zone's .meta.json, the source state):
    a password in its user part and the values of credential query parameters are replaced by ***. A URL
    without either comes back unchanged."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}:***@{host}" if ":" in user else netloc
    query = parts.query
    if query:
        pairs = [(k, "***" if _SECRET_PARAM.match(k) else v) for k, v in parse_qsl(query, keep_blank_values=True)]
        if any(v == "***" for _, v in pairs):
            query = urlencode(pairs, safe="*:/,")
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))

log = logging.getLogger("eujp.http")

USER_AGENT = "eujp/0.1 (EU-Japan partnership warehouse ETL; python-httpx)"
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 507, 509, 520, 521, 522, 523, 524})
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<!--")
_PREVIEW_BYTES = 160
_HEAD_BYTES = 4096  # what a body written to a file keeps in memory: its first bytes, for checks and messages
_DELIMITERS = (b",", b";", b"\t")
MAX_REDIRECTS = 20  # hops of one request (httpx's default)
_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class HttpPolicy:
    """Timeouts, retries and the time budget of one source. Defaults suit the real services."""

    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    max_attempts: int = 6  # per request, the first one included
    backoff_base: float = 2.0  # seconds: attempt n waits uniform(0, min(backoff_max, base * 2**(n-1)))
    backoff_max: float = 60.0
    budget_seconds: float = 900.0  # total wall time for all requests of one source in one run
    max_body_bytes: int = 512 * 1024 * 1024  # fetch_live sets the source's payload cap (EUJP_MAX_PAYLOAD_MB*)
    max_body_setting: str | None = None  # the setting max_body_bytes comes from, named when a body exceeds it
    chunk_bytes: int = 64 * 1024  # the size of the pieces a body is handled in (network reads joined up to it)

    _ENV: ClassVar[dict[str, str]] = {
        "connect_timeout": "EUJP_HTTP_CONNECT_TIMEOUT",
        "read_timeout": "EUJP_HTTP_READ_TIMEOUT",
        "max_attempts": "EUJP_HTTP_MAX_ATTEMPTS",
        "backoff_base": "EUJP_HTTP_BACKOFF_BASE",
        "backoff_max": "EUJP_HTTP_BACKOFF_MAX",
        "budget_seconds": "EUJP_HTTP_BUDGET_SECONDS",
    }

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> HttpPolicy:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name, var in cls._ENV.items():
            raw = env.get(var)
            if raw:
                try:
                    values[name] = int(raw) if name == "max_attempts" else float(raw)
                except ValueError:
                    raise ExtractError(f"{var}={raw!r} is not a number") from None
        values.update(overrides)
        policy = cls(**values)
        if policy.max_attempts < 1 or policy.budget_seconds <= 0 or policy.read_timeout <= 0:
            raise ExtractError(f"invalid HTTP policy {policy}: attempts >= 1, budget and timeouts > 0")
        return policy

    def with_(self, **changes: Any) -> HttpPolicy:
        return replace(self, **changes)


@dataclass(frozen=True)
class Expect:
    """What a successful body must be: `json`, `csv` (text with a header line) or `any`."""

    kind: str = "any"
    content_types: tuple[str, ...] = ()  # informative: the media types the source documents

    def __post_init__(self) -> None:
        if self.kind not in ("json", "csv", "any"):
            raise ValueError(f"unknown body kind {self.kind!r}")


EXPECT_JSON = Expect("json", ("application/json",))
EXPECT_CSV = Expect("csv", ("text/csv", "application/vnd.sdmx.data+csv"))


class BodyShape:
    """What the body checks and callers ask of a body, learnt chunk by chunk as it arrives: its size, first
    bytes, whether it is blank (nothing but whitespace), whether a line with data follows the first one (a CSV
    with a row after its header: `content.strip()` holds a line end), whether it holds a CSV delimiter, and
    its sha256."""

    def __init__(self) -> None:
        self.size = 0
        self.head = b""
        self.blank = True
        self.multi_line = False
        self.has_delimiter = False
        self._line_end_after_data = False
        self._sha256 = hashlib.sha256()

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self._sha256.update(chunk)
        if len(self.head) < _HEAD_BYTES:
            self.head += chunk[:_HEAD_BYTES - len(self.head)]
        if not self.has_delimiter:
            self.has_delimiter = any(d in chunk for d in _DELIMITERS)
        if self.multi_line:
            return
        if self.blank:
            chunk = chunk.lstrip()
            if not chunk:
                return
            self.blank = False
        if self._line_end_after_data:  # data, a line end, and now data again
            self.multi_line = bool(chunk.strip())
            return
        end = chunk.find(b"\n")
        if end >= 0:
            self.multi_line = bool(chunk[end + 1:].strip())
            self._line_end_after_data = not self.multi_line

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    @classmethod
    def of(cls, content: bytes) -> BodyShape:
        shape = cls()
        shape.feed(content)
        return shape


@dataclass(frozen=True)
class BodyFile:
    """A body written to a file as it arrived (HttpClient.request's `body_file`)."""

    path: Path
    sha256: str  # of the bytes written

    def discard(self) -> None:
        """Remove the file (an answer that is not kept)."""
        self.path.unlink(missing_ok=True)


@dataclass
class HttpResponse:
    method: str
    url: str  # final URL, query string included
    status: int
    headers: dict[str, str]  # lower-case names, as received
    content: bytes  # the body; b"" when it was written to `body_file`
    attempts: int
    elapsed: float
    body_file: BodyFile | None = None
    measured: BodyShape | None = field(default=None, repr=False)  # the body's shape, learnt as it arrived
    conditional: bool = False  # the request that got this answer sent validators (If-None-Match / If-Modified-Since)
    ranged: bool = False  # ... asked for a part (Range)

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def shape(self) -> BodyShape:
        """The body's shape (`HttpClient` measures it as the body arrives, whether written to a file or not)."""
        if self.measured is None:
            self.measured = BodyShape.of(self.content)
        return self.measured

    @property
    def size(self) -> int:
        return self.shape.size

    def text_preview(self, n: int = _PREVIEW_BYTES) -> str:
        return preview(self.shape.head[:n + 1], n)

    def read_body(self) -> bytes:
        """The whole body, from `content` or its file."""
        return self.content if self.body_file is None else self.body_file.path.read_bytes()

    def discard(self) -> None:
        """Remove the body's file, if it was written to one (an answer the caller does not keep)."""
        if self.body_file is not None:
            self.body_file.discard()


@dataclass
class Attempt:
    """One attempt, for logs, errors and tests."""

    method: str
    url: str
    outcome: str  # HTTP status as text, or the transport error
    waited: float = 0.0  # seconds slept before the next attempt


def preview(data: bytes, n: int = _PREVIEW_BYTES) -> str:
    """The first bytes of a body, printable, for error messages."""
    text = data[:n].decode("utf-8", "replace")
    text = " ".join(text.split())
    return repr(text + ("…" if len(data) > n else ""))


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if absent/invalid."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def backoff_delay(attempt: int, policy: HttpPolicy, rng: random.Random) -> float:
    """Full jitter: a random wait in [0, min(backoff_max, backoff_base * 2**(attempt-1))] after the
    `attempt`-th failed attempt."""
    cap = min(policy.backoff_max, policy.backoff_base * math.pow(2, min(attempt - 1, 64)))
    return rng.uniform(0, cap)


def check_body(content: bytes, headers: Mapping[str, str], expect: Expect) -> str | None:
    """Why `content` is not what `expect` promises, or None when it is."""
    return _body_problem(BodyShape.of(content), headers, expect, lambda: content)


def body_problem(response: HttpResponse, expect: Expect) -> str | None:
    """Why `response`'s body is not what `expect` promises, or None when it is: the check `HttpClient.request`
    makes of a 2xx body, for a caller that asked with `Expect("any")` to read some answers itself first (an
    asynchronous-delivery ticket where CSV was asked for: eujp.eurostat_async)."""
    return _body_problem(response.shape, response.headers, expect, response.read_body)


def refuse_body(source: str, where: str, response: HttpResponse, expect: Expect) -> None:
    """ExtractError when `response`'s body is not what `expect` promises (`body_problem`), naming the source, the
    request (`where`, e.g. 'GET https://…'), the status, the problem and the first bytes: HttpClient.request's
    refusal of a 2xx body, for a caller that checks it itself."""
    problem = body_problem(response, expect)
    if problem:
        raise ExtractError(f"{source}: {where} answered {response.status} with {problem}; "
                           f"first bytes: {response.text_preview()}")


def _body_problem(shape: BodyShape, headers: Mapping[str, str], expect: Expect,
                  read: Callable[[], bytes]) -> str | None:
    """check_body on a body's shape (`read` gives the whole body: only called for JSON, to parse it)."""
    ctype = (headers.get("content-type") or "").split(";")[0].strip().lower()
    if shape.blank:
        return f"empty body ({shape.size} bytes)"
    if expect.kind == "any":
        return None
    head = shape.head[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if ctype in ("text/html", "application/xhtml+xml") or head.startswith(_HTML_STARTS):
        return f"an HTML page (Content-Type {ctype or 'none'}) where {expect.kind.upper()} was promised"
    if head.startswith(b"<"):
        return f"an XML document (Content-Type {ctype or 'none'}) where {expect.kind.upper()} was promised"
    if expect.kind == "json":
        if head[:1] not in (b"{", b"["):
            return f"not JSON (Content-Type {ctype or 'none'})"
        try:
            json.loads(read())
        except UnicodeDecodeError as exc:
            return f"JSON that is not UTF-8 ({exc.reason} at byte {exc.start})"
        except json.JSONDecodeError as exc:
            end = len(exc.doc.rstrip())
            if exc.pos >= end or exc.msg.startswith("Unterminated"):
                return f"truncated JSON: the document ends at byte {shape.size} ({exc.msg})"
            return f"invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        return None
    if expect.kind == "csv":
        if head[:1] in (b"{", b"["):
            return f"JSON (Content-Type {ctype or 'none'}) where CSV was promised"
        if not shape.has_delimiter:  # a plain-text error page ('Service Unavailable', a stack trace)
            return "not a CSV: a single line with no delimiter" if not shape.multi_line else \
                "not a CSV: text with no delimiter in any line"
    return None


def bytes_problem(content: bytes, expect: Expect) -> str | None:
    """Why `content` is not what `expect` promises, or None: the check of a 2xx body, for bytes a caller took
    out of an answer (the CSV inside a JSON envelope: SIPRI's backend)."""
    return _body_problem(BodyShape.of(content), {}, expect, lambda: content)


BUDGET_SPENT = "the source's time budget is spent"


def _capped(timeout: float | None, left: Callable[[], float], error: type[Exception]) -> float:
    """`timeout` cut to what is `left()` of the budget; `error` (an httpcore timeout) once nothing is left."""
    seconds = left()
    if seconds <= 0:
        raise error(BUDGET_SPENT)
    return seconds if timeout is None else min(timeout, seconds)


class _BudgetStream(httpcore.NetworkStream):
    """A connection whose every read, write and TLS handshake waits at most what is left of the source's budget
    (`left`): the status line and headers come by network reads too, so a server that drips them within the read
    timeout, or sends 1xx answers without end, is cut off at the budget as a dripped body is."""

    def __init__(self, stream: httpcore.NetworkStream, left: Callable[[], float]):
        self._stream, self._left = stream, left

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _capped(timeout, self._left, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _capped(timeout, self._left, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        tls = self._stream.start_tls(ssl_context, server_hostname,
                                     _capped(timeout, self._left, httpcore.ConnectTimeout))
        return _BudgetStream(tls, self._left)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _BudgetBackend(httpcore.NetworkBackend):
    """httpcore's network backend with its connections made `_BudgetStream`s (and their connects capped alike)."""

    def __init__(self, backend: httpcore.NetworkBackend, left: Callable[[], float]):
        self._backend, self._left = backend, left

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(host, port, _capped(timeout, self._left, httpcore.ConnectTimeout),
                                           local_address, socket_options)
        return _BudgetStream(stream, self._left)

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Any = None) -> httpcore.NetworkStream:
        return _BudgetStream(self._backend.connect_unix_socket(path, timeout, socket_options), self._left)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def bound_by_budget(client: httpx.Client, left: Callable[[], float]) -> None:
    """Make every connection of `client`'s transports (its own and those of its proxies) wait no longer than
    `left()` seconds in all (`_BudgetBackend`): httpx has no deadline for a whole request, only timeouts per
    network read. httpx 0.28 keeps its httpcore pool as `HTTPTransport._pool`, whose network backend is a public
    parameter of httpcore's pools but not of httpx's transport: set here (tests/integration/test_http.py fails
    when it no longer is). A transport of another kind (a test's MockTransport) is left as it is."""
    for transport in [client._transport, *client._mounts.values()]:
        pool = getattr(transport, "_pool", None)
        if pool is not None and hasattr(pool, "_network_backend"):
            pool._network_backend = _BudgetBackend(pool._network_backend, left)


class HttpClient:
    """A source's HTTP session: retries, budget, body checks (see the module docstring)."""

    def __init__(
        self,
        source: str,
        policy: HttpPolicy | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        user_agent: str = USER_AGENT,
    ):
        self.source = source
        self.policy = policy or HttpPolicy.from_env()
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self._deadline = clock() + self.policy.budget_seconds
        self.attempts: list[Attempt] = []
        self._client = httpx.Client(
            headers={"User-Agent": user_agent, "Accept-Encoding": "gzip, deflate"},
            follow_redirects=False,  # followed hop by hop (_follow): the validators go to their own URL only
            transport=transport,
            trust_env=transport is None,
            verify=tls_context(trust_env=transport is None),
        )
        bound_by_budget(self._client, self.remaining)

    # --- budget ---------------------------------------------------------------------------------------
    def remaining(self) -> float:
        return self._deadline - self._clock()

    def wait(self, seconds: float) -> None:
        """Sleep `seconds` on the client's clock (a poll's interval: it counts against the budget)."""
        self._sleep(seconds)

    def _timeout(self) -> httpx.Timeout:
        left = max(self.remaining(), 0.001)
        return httpx.Timeout(
            connect=min(self.policy.connect_timeout, left),
            read=min(self.policy.read_timeout, left),
            write=min(self.policy.read_timeout, left),
            pool=min(self.policy.connect_timeout, left),
        )

    def backoff(self, attempt: int) -> float:
        return backoff_delay(attempt, self.policy, self._rng)

    # --- lifecycle ------------------------------------------------------------------------------------
    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- requests -------------------------------------------------------------------------------------
    def get(self, url: str, **kwargs: Any) -> HttpResponse:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> HttpResponse:
        return self.request("POST", url, **kwargs)

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        expect: Expect = Expect(),
        etag: str | None = None,
        last_modified: str | None = None,
        pass_statuses: Sequence[int] = (),
        body_file: Path | None = None,
        validators_url: str | None = None,
    ) -> HttpResponse:
        """Send one logical request (with retries) and return a checked response.

        Returns 2xx responses whose body passed `expect`, 304 when a conditional request found the
        resource unchanged, and any status listed in `pass_statuses` (the caller handles it, e.g. Comext's
        413 EXTRACTION_TOO_BIG). Raises ExtractError for everything else once retries or budget run out.
        With `body_file`, a 2xx body is written to that file as it arrives (`HttpResponse.body_file`, the
        caller's to keep or discard) instead of `content`; it is removed when the request fails.
        `etag` / `last_modified` are sent to the hop of the redirects whose URL is `validators_url` (as
        `redact_url` keeps it), or to `url` itself when it is None; to no other.
        """
        conditional = {name: value for name, value in (("If-None-Match", etag), ("If-Modified-Since", last_modified))
                       if value}
        request = self._client.build_request(method, url, params=params, json=json_body, headers=headers)
        shown = f"{method} {redact_url(str(request.url))}"
        started = self._clock()
        last_problem = "no attempt was made"
        for attempt in range(1, self.policy.max_attempts + 1):
            if self.remaining() <= 0:
                break
            retry_after: float | None = None
            try:
                response = self._send(request, shown, body_file, conditional, validators_url)
            except _Retryable as exc:
                last_problem = str(exc)
                self.attempts.append(Attempt(method, str(request.url), last_problem))
            else:
                self.attempts.append(Attempt(method, str(request.url), str(response.status)))
                response.attempts = attempt
                response.elapsed = self._clock() - started
                status = response.status
                where = shown if response.url == redact_url(str(request.url)) else \
                    f"{shown} (redirected to {response.url})"
                if status in pass_statuses or (status == 304 and response.conditional):
                    return response
                if status == 304 or (status == 206 and not response.ranged):  # answers to a question not asked
                    response.discard()
                    raise ExtractError(_unasked(self.source, where, response))
                if 200 <= status < 300:
                    try:
                        refuse_body(self.source, where, response, expect)
                        self._check_length(response, where)
                    except BaseException:
                        response.discard()
                        raise
                    return response
                if status not in RETRY_STATUSES:
                    raise ExtractError(
                        f"{self.source}: {where} answered {status} {_reason(status)}; "
                        f"body: {response.text_preview()}"
                    )
                last_problem = f"HTTP {status} {_reason(status)}; body: {response.text_preview(80)}"
                retry_after = parse_retry_after(response.header("retry-after"))
            if attempt == self.policy.max_attempts:
                break
            # Retry-After is a floor, never less than the back-off: "0", or a date the server's clock already
            # passed, would otherwise retry at once, as often as attempts allow
            wait = self.backoff(attempt) if retry_after is None else max(retry_after, self.backoff(attempt))
            left = self.remaining()
            if wait >= left:
                budget = f"the source's {self.policy.budget_seconds:g} s budget"
                why = (f"the server asked to wait {wait:.1f} s (Retry-After), more than the {max(left, 0):.1f} s "
                       f"left of {budget}" if retry_after is not None else f"{budget} is spent")
                raise ExtractError(
                    f"{self.source}: {shown} failed after {attempt} attempt(s) in {self._clock() - started:.1f} s: "
                    f"{last_problem}; giving up: {why}"
                )
            log.warning("%s: %s: %s; retry %d/%d in %.2f s", self.source, shown, last_problem, attempt + 1,
                        self.policy.max_attempts, wait)
            self.attempts[-1].waited = wait
            self._sleep(wait)
        tried = sum(1 for a in self.attempts if a.url == str(request.url))
        raise ExtractError(
            f"{self.source}: {shown} failed after {tried} attempt(s) in {self._clock() - started:.1f} s "
            f"(max attempts {self.policy.max_attempts}, the source's {self.policy.budget_seconds:g} s budget): "
            f"{last_problem}"
        )

    def _send(self, request: httpx.Request, shown: str, body_file: Path | None = None,
              conditional: Mapping[str, str] | None = None, validators_url: str | None = None) -> HttpResponse:
        """One attempt (its redirects followed). Transport problems and truncated bodies raise _Retryable. A 2xx
        body goes to `body_file` when given (written afresh, removed when the attempt fails), any other into
        `content`."""
        try:
            response = self._follow(request, shown, conditional or {}, validators_url)
        except httpx.TimeoutException as exc:
            if self.remaining() <= 0:  # the connection's reads wait no longer than the budget (bound_by_budget)
                raise _Retryable(f"{type(exc).__name__}: {BUDGET_SPENT} ({self.policy.budget_seconds:g} s) before "
                                 "the answer's status line and headers came") from exc
            raise _Retryable(f"{type(exc).__name__} (connect {self.policy.connect_timeout:g} s, "
                             f"read {self.policy.read_timeout:g} s)") from exc
        except (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError) as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
        ok = 200 <= response.status_code < 300
        to_file = body_file if ok else None
        chunks: list[bytes] = []
        shape = BodyShape()
        out = None
        try:
            declared = response.headers.get("content-length", "")
            if ok and declared.isdigit() and int(declared) > self.policy.max_body_bytes:
                raise PayloadTooLargeError(self._too_large(shown, 0, declared=int(declared)))
            if to_file is not None:
                to_file.parent.mkdir(parents=True, exist_ok=True)
                out = open(to_file, "wb")  # noqa: SIM115 - closed below, removed when the attempt fails
            try:
                decoder = _BodyDecoder(response.headers.get("content-encoding", ""))
            except ValueError as exc:
                raise ExtractError(f"{self.source}: {shown}: {exc}") from None
            # each network read as it arrives (not httpx's chunks of a fixed size, which wait for that many
            # bytes, and would keep an error answer's last ones from _until_ragged_eof): the deadline is checked
            # after every read, so bytes dripped one at a time within the read timeout cannot hold the run past
            # its budget
            reads = response.iter_raw() if ok else _until_ragged_eof(response.iter_raw())
            raw = _coalesced(reads, self.policy.chunk_bytes, self._check_deadline)
            for chunk in itertools.chain(map(decoder.feed, raw),
                                         _lazy(decoder.end)):
                shape.feed(chunk)
                if shape.size > self.policy.max_body_bytes:
                    raise PayloadTooLargeError(self._too_large(shown, shape.size))
                if out is not None:
                    out.write(chunk)
                else:
                    chunks.append(chunk)
            if out is not None:
                out.close()
        except BaseException as exc:
            if out is not None:
                out.close()
                to_file.unlink(missing_ok=True)
            if isinstance(exc, httpx.TimeoutException):
                if self.remaining() <= 0:  # the read waited for what was left of the budget (bound_by_budget)
                    raise _Retryable(f"budget spent while reading the body ({response.num_bytes_downloaded} bytes "
                                     "read)") from exc
                raise _Retryable(f"ReadTimeout while reading the body (read {self.policy.read_timeout:g} s)") from exc
            if isinstance(exc, httpx.ReadError) and _ragged_eof(exc):
                expected = response.headers.get("content-length")
                raise _Retryable(f"truncated body: the TLS connection was closed without close_notify after "
                                 f"{response.num_bytes_downloaded} bytes"
                                 + (f" of {expected} (Content-Length)" if expected else
                                    " (a body delimited by the connection's close: no Content-Length, not chunked)")
                                 ) from exc
            if isinstance(exc, httpx.RemoteProtocolError):
                expected = response.headers.get("content-length")
                got = response.num_bytes_downloaded
                detail = f" after {got} of {expected} bytes (Content-Length)" if expected else ""
                raise _Retryable(f"truncated body{detail}: {exc}") from exc
            if isinstance(exc, (httpx.NetworkError, httpx.DecodingError)):
                raise _Retryable(f"{type(exc).__name__} while reading the body: {exc}") from exc
            raise
        finally:
            response.close()
        sent = response.request.headers
        return HttpResponse(
            method=request.method,
            url=redact_url(str(response.url)),  # what is shown and kept of it: no credential
            status=response.status_code,
            conditional="if-none-match" in sent or "if-modified-since" in sent,
            ranged="range" in sent,
            headers={k: v for k, v in response.headers.items()},
            content=b"".join(chunks),
            attempts=0,
            elapsed=0.0,
            body_file=None if to_file is None else BodyFile(to_file, shape.sha256),
            measured=shape,
        )

    def _follow(self, request: httpx.Request, shown: str, conditional: Mapping[str, str],
                validators_url: str | None) -> httpx.Response:
        """The streamed response to `request` at the end of its redirects, followed one hop at a time (httpx
        builds each hop's request: method, body, and no Authorization to another host). The conditional headers
        go to the hop whose URL is `validators_url` (the first hop when it is None) and to no other. A redirect
        to a scheme other than http(s), or more than MAX_REDIRECTS of them, is an ExtractError naming the URLs
        followed (not retried: the next attempt would be sent the same way)."""
        hop, chain = request, [redact_url(str(request.url))]
        while True:
            if hop.url.scheme not in _SCHEMES:
                what = "is" if hop is request else "redirected to"
                raise ExtractError(f"{self.source}: {shown} {what} a URL the client cannot follow (scheme "
                                   f"{hop.url.scheme!r}, not http or https): {_chain(chain)}")
            for name in ("If-None-Match", "If-Modified-Since"):
                hop.headers.pop(name, None)
            if chain[-1] == validators_url or (validators_url is None and hop is request):
                hop.headers.update(conditional)
            hop.extensions["timeout"] = self._timeout().as_dict()
            response = self._client.send(hop, stream=True)
            if response.next_request is None:
                return response
            response.close()  # a redirect's body is not read
            hop = response.next_request
            chain.append(redact_url(str(hop.url)))
            if len(chain) > MAX_REDIRECTS + 1:
                loop = " (a loop)" if chain[-1] in chain[:-1] else ""
                raise ExtractError(f"{self.source}: {shown}: more than {MAX_REDIRECTS} redirects{loop}, not "
                                   f"followed further: {_chain(chain)}")

    def _check_deadline(self, read: int) -> None:
        """_Retryable once the budget is spent, `read` bytes of a body read (called after every network read)."""
        if self.remaining() <= 0:
            raise _Retryable(f"budget spent while reading the body ({read} bytes read)")

    def _too_large(self, shown: str, size: int, declared: int | None = None) -> str:
        cap = self.policy.max_body_bytes
        setting = f" ({self.policy.max_body_setting})" if self.policy.max_body_setting else ""
        read = (f"its Content-Length is {declared:,} bytes: not read" if declared is not None
                else f"stopped reading after {size:,} bytes")
        return (f"{self.source}: {shown}: the payload is larger than the {cap / 2**20:g} MB cap{setting}: {read}; "
                "nothing of it was landed")

    def _check_length(self, response: HttpResponse, shown: str) -> None:
        """Belt and braces (h11 enforces Content-Length too): decoded size vs declared size."""
        declared = response.header("content-length")
        encoded = response.header("content-encoding")
        if declared and declared.isdigit() and not encoded and response.size < int(declared):
            raise ExtractError(
                    f"{self.source}: {shown}: truncated body: {response.size} of {declared} bytes "
                    "(Content-Length)"
                )


def _unasked(source: str, where: str, response: HttpResponse) -> str:
    """The error of a 304 to a request that sent no validators, or of a 206 to one that asked for no part: the
    first would read as 'nothing new' (a day of changes lost, a first extraction empty), the second would land a
    part of the resource as the whole of it."""
    if response.status == 304:
        return (f"{source}: {where} answered 304 Not Modified to a request that sent no validators (If-None-Match, "
                "If-Modified-Since): nothing says what is unchanged, so it is not taken for 'nothing new' (a cache "
                "or proxy on the way?)")
    return (f"{source}: {where} answered 206 Partial Content (Content-Range "
            f"{response.header('content-range') or 'none'}) to a request for the whole resource (no Range sent): "
            "a part is not landed as the whole (a cache or proxy on the way?)")


class _Retryable(Exception):
    """An attempt failed in a way worth retrying (connection, timeout, truncation)."""


class _TlsContext(ssl.SSLContext):
    """An SSLContext whose sockets raise ssl.SSLEOFError (httpx.ReadError) when the server closes the connection
    without TLS's close_notify alert, rather than reading it as the end of the data (`wrap_socket`'s
    suppress_ragged_eofs, which httpcore leaves at True): a body delimited by the connection's close that ends so
    may have been cut short (RFC 9112 §9.8, an "incomplete close"), and the client retries it."""

    def wrap_socket(self, sock, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        kwargs["suppress_ragged_eofs"] = False
        return super().wrap_socket(sock, *args, **kwargs)


def tls_context(trust_env: bool = True) -> ssl.SSLContext:
    """The client's TLS settings: httpx's default verification (the certificate and host name, against certifi's
    CA bundle, or SSL_CERT_FILE / SSL_CERT_DIR when the environment is trusted), in a _TlsContext."""
    import certifi

    context = _TlsContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname, as create_default_context
    if trust_env and os.environ.get("SSL_CERT_FILE"):
        context.load_verify_locations(cafile=os.environ["SSL_CERT_FILE"])
    elif trust_env and os.environ.get("SSL_CERT_DIR"):
        context.load_verify_locations(capath=os.environ["SSL_CERT_DIR"])
    else:
        context.load_verify_locations(cafile=certifi.where())
    return context


def _ragged_eof(exc: BaseException) -> bool:
    """Whether `exc` (an httpx.ReadError) is a TLS connection closed without close_notify (_TlsContext)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLEOFError) or any(isinstance(a, ssl.SSLEOFError) for a in seen.args):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _coalesced(reads, size: int, check: Callable[[int], None]):
    """`reads` (bytes as the network gives them) joined into pieces of `size` bytes or a little more (the last one
    less), `check(bytes read so far)` called after every read: a body of many small reads (a chunked answer of a
    chunk per row) is handled in pieces of a useful size, and the deadline is still checked read by read."""
    buffer: list[bytes] = []
    held = total = 0
    for read in reads:
        total += len(read)
        check(total)
        buffer.append(read)
        held += len(read)
        if held >= size:
            yield b"".join(buffer)
            buffer, held = [], 0
    if buffer:
        yield b"".join(buffer)


def _until_ragged_eof(chunks):
    """`chunks`, ended by a TLS connection closed without close_notify: an error answer's body, only shown."""
    try:
        yield from chunks
    except httpx.ReadError as exc:
        if not _ragged_eof(exc):
            raise


def _chain(urls: list[str]) -> str:
    """The URLs a request was redirected through, for a message (a long chain shown by its ends)."""
    shown = urls if len(urls) <= 6 else [*urls[:3], f"… {len(urls) - 5} more …", *urls[-2:]]
    return " -> ".join(shown)


def _lazy(produce: Callable[[], bytes]):
    """One item, `produce()`, made when it is reached (after the body's last chunk)."""
    yield produce()


class _BodyDecoder:
    """A body's bytes as sent (`Content-Encoding`: none or identity, gzip, deflate) -> its decoded bytes. `end()`
    raises _Retryable when a compressed stream has not ended (a gzip body cut short whatever its length says);
    bad compressed data is _Retryable too. A gzip body of several members (concatenated streams) is read
    whole, and NUL bytes after a member (padding, as some servers and tape formats write) are skipped, as
    Python's gzip module does. An encoding not asked for (Accept-Encoding: gzip, deflate) is a ValueError."""

    def __init__(self, encoding: str) -> None:
        codings = [c.strip().lower() for c in encoding.split(",") if c.strip().lower() not in ("", "identity")]
        if len(codings) > 1 or (codings and codings[0] not in ("gzip", "x-gzip", "deflate")):
            raise ValueError(f"Content-Encoding {encoding!r} is not one the client asked for (gzip, deflate)")
        self.coding = codings[0] if codings else None
        self.zlib = self._new()
        self.started = False

    def _new(self, raw_deflate: bool = False):
        if self.coding is None:
            return None
        if self.coding == "deflate":
            return zlib.decompressobj(-zlib.MAX_WBITS if raw_deflate else zlib.MAX_WBITS)
        return zlib.decompressobj(zlib.MAX_WBITS | 16)

    def feed(self, data: bytes) -> bytes:
        if self.zlib is None or not data:
            return data
        try:
            out = self._decompress(data)
        except zlib.error as exc:
            if self.coding == "deflate" and not self.started:  # a raw deflate stream, without zlib's header
                self.zlib = self._new(raw_deflate=True)
                try:
                    out = self._decompress(data)
                except zlib.error as raw_exc:
                    raise _Retryable(f"undecodable deflate body: {raw_exc}") from raw_exc
            else:
                raise _Retryable(f"undecodable {self.coding} body: {exc}") from exc
        self.started = True
        return out

    def _decompress(self, data: bytes) -> bytes:
        out = b""
        while data:
            if self.zlib.eof:  # a stream ended before `data`
                if self.coding == "deflate":  # bytes after a deflate stream are not read
                    break
                data = data.lstrip(b"\0")  # NUL padding after a gzip member: skipped, as gzip.decompress does
                if not data:
                    break
                self.zlib = self._new()  # the next gzip member
            out += self.zlib.decompress(data)
            data = self.zlib.unused_data  # what followed the end of a stream in `data`
        return out

    def end(self) -> bytes:
        if self.zlib is None or not self.started:
            return b""
        tail = self.zlib.flush()
        if not self.zlib.eof:
            raise _Retryable(f"truncated {self.coding} body: the compressed stream did not end")
        return tail


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
