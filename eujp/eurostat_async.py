"""Eurostat's asynchronous delivery of SDMX data (the ASYNC API), as the Comext dissemination API uses it.

Eurostat answers an SDMX 2.1 data request either with the data (synchronously, the default) or, when the
extraction is costly or the client has asked a lot lately ("fair use": concurrent requests, requests per day,
7 and 30 days, cumulative extraction cost), with a key instead: HTTP 200 and a small SOAP envelope

    <env:Envelope ...><env:Body><ns0:syncResponse xmlns:ns0="http://estat.ec.europa.eu/disschain/soap/extraction">
      <queued><id>{uuid}</id><status>SUBMITTED</status></queued></ns0:syncResponse></env:Body></env:Envelope>

The client then asks `{api}/1.0/async/status/{key}` at intervals (SUBMITTED, PROCESSING, AVAILABLE or EXPIRED,
in an `asyncResponse` envelope) and, once AVAILABLE, fetches `{api}/1.0/async/data/{key}`. A key the service
does not know is a 400 SOAP fault UNKNOWN_REQUEST; data asked for too early a 400 fault DATA_NOT_YET_AVAILABLE.
`{api}` is the API that issued the key: https://ec.europa.eu/eurostat/api/comext/dissemination for Comext.
Sources: Eurostat, "API - Detailed guidelines - Asynchronous API" and its SDMX RESTful API description
(docs/live-extraction.md, "Asynchronous answers").

What the documentation leaves open is handled defensively: the data may come as the original request's format
(plain SDMX-CSV for `compressed=false`), or zipped or gzipped: an archive is unpacked into the run's spool as it
is read. EXPIRED (the data left the cache before it was fetched) and an unknown key give the ticket back to
the caller, which sends its request again.
"""

from __future__ import annotations

import gzip
import io
import logging
import zipfile
import zlib
from contextlib import ExitStack
from dataclasses import dataclass, replace

from defusedxml import ElementTree as SafeET

from eujp.errors import ExtractError
from eujp.http import EXPECT_CSV, BodyFile, BodyShape, Expect, HttpResponse, body_problem
from eujp.live import LiveContext
from eujp.parse import GZIP_SIGNATURE, ZIP_SIGNATURE

log = logging.getLogger(__name__)

PENDING = ("SUBMITTED", "PROCESSING")
AVAILABLE = "AVAILABLE"
EXPIRED = "EXPIRED"
KNOWN_STATUSES = (*PENDING, AVAILABLE, EXPIRED)
NOT_YET = "DATA_NOT_YET_AVAILABLE"
UNKNOWN_REQUEST = "UNKNOWN_REQUEST"
FIRST_POLL_SECONDS = 1.0  # the first status request's wait; each next one waits twice as long, up to the setting
_COPY_BYTES = 1 << 20


@dataclass(frozen=True)
class Ticket:
    """An asynchronous answer's key and the status it came with."""

    key: str
    status: str


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _xml(data: bytes):
    try:
        return SafeET.fromstring(data)
    except SafeET.ParseError:
        return None


def queued_ticket(response: HttpResponse) -> Ticket | None:
    """The ticket of an asynchronous answer to a data request (a 200 whose body is the `syncResponse` envelope
    holding `queued/id`), or None for any other answer (data, or XML that is no such envelope: the caller's
    body check says what it is)."""
    if response.status != 200 or not response.shape.head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return None
    if response.shape.size > 64 * 1024:  # an envelope is a few hundred bytes; a large XML body is no ticket
        return None
    root = _xml(response.read_body())
    if root is None:
        return None
    for queued in root.iter():
        if _local(queued.tag) != "queued":
            continue
        fields = {_local(child.tag): (child.text or "").strip() for child in queued}
        if fields.get("id"):
            return Ticket(fields["id"], fields.get("status") or "SUBMITTED")
    return None


def status_of(data: bytes) -> str | None:
    """The status an `asyncResponse` envelope states (its `status/status`), or None when it states none."""
    root = _xml(data)
    if root is None:
        return None
    for outer in root.iter():
        if _local(outer.tag) != "status":
            continue
        inner = [(child.text or "").strip() for child in outer if _local(child.tag) == "status"]
        if inner and inner[0]:
            return inner[0]
    return None


def async_urls(api: str, key: str) -> tuple[str, str]:
    """(status URL, data URL) of `key` on the API `api` (e.g. https://ec.europa.eu/eurostat/api/comext/dissemination)."""
    return f"{api}/1.0/async/status/{key}", f"{api}/1.0/async/data/{key}"


def await_delivery(ctx: LiveContext, api: str, ticket: Ticket, what: str, *, poll_seconds: float,
                   wait_seconds: float) -> HttpResponse | None:
    """The data of `ticket`, once the service has prepared it: a 200 SDMX-CSV answer (an archive unpacked),
    or the data endpoint's 400/404 answer when it says there are no results (the caller's to read, as it
    reads a synchronous one). None when the ticket is lost (EXPIRED, or a key the service no longer knows):
    the caller sends its request again.

    The status is asked after FIRST_POLL_SECONDS, then at intervals that double up to `poll_seconds` (a small
    extraction is ready in seconds, a large one in minutes), each answer logged when it changes; waiting
    longer than `wait_seconds` for one ticket, or past the source's HTTP budget, is an ExtractError naming the
    key, so that a run does not hang on a queue that never moves."""
    status_url, data_url = async_urls(api, ticket.key)
    waited, status, seen = 0.0, ticket.status, ticket.status
    interval = min(FIRST_POLL_SECONDS, poll_seconds)
    log.info("%s: %s is delivered asynchronously (key %s, %s): waiting for it", ctx.source, what, ticket.key,
             status)
    while True:
        if status == AVAILABLE:
            response = ctx.get(data_url, expect=Expect("any"), pass_statuses=(400, 404))
            if response.status == 200:
                return _checked_data(ctx, response, ticket, what)
            body = response.read_body().decode("utf-8", "replace")
            if NOT_YET in body:  # the status ran ahead of the data: ask again
                status = PENDING[1]
            elif UNKNOWN_REQUEST in body:
                return _lost(ctx, what, ticket, "the service no longer knows key {key}")
            else:
                return response  # e.g. No results found: the caller's to read
        elif status == EXPIRED:
            return _lost(ctx, what, ticket, "the data of key {key} expired before it was fetched")
        elif status not in PENDING:
            raise ExtractError(f"{ctx.source}: {what}: the asynchronous delivery of key {ticket.key} is in status "
                               f"{status!r}, none of {', '.join(KNOWN_STATUSES)} ({status_url})")
        if waited + interval > wait_seconds or ctx.client.remaining() <= interval:
            limit = (f"EUJP_COMEXT_ASYNC_WAIT_SECONDS={wait_seconds:g}" if waited + interval > wait_seconds
                     else "the source's HTTP budget (EUJP_HTTP_BUDGET_SECONDS)")
            raise ExtractError(f"{ctx.source}: {what}: the service had not prepared the data of key {ticket.key} "
                               f"after {waited:.0f} s (status {status}); gave up at {limit}. The key stays valid "
                               f"for a while: {data_url}")
        ctx.client.wait(interval)
        waited += interval
        interval = min(interval * 2, poll_seconds)
        answer = ctx.client.get(status_url, expect=Expect("any"), pass_statuses=(400, 404))
        text = answer.content
        if answer.status != 200:
            if UNKNOWN_REQUEST.encode() in text:
                return _lost(ctx, what, ticket, "the service no longer knows key {key}")
            raise ExtractError(f"{ctx.source}: GET {answer.url} answered {answer.status}: {answer.text_preview()}")
        status = status_of(text)
        if status is None:
            raise ExtractError(f"{ctx.source}: GET {answer.url} answered no asynchronous status: "
                               f"{answer.text_preview()}")
        if status != seen:
            log.info("%s: %s: key %s is %s after %.0f s", ctx.source, what, ticket.key, status, waited)
            seen = status


def _lost(ctx: LiveContext, what: str, ticket: Ticket, why: str) -> None:
    """A ticket lost (await_delivery's None), logged with `why` (its `{key}` filled in)."""
    log.warning("%s: %s: %s; asking again", ctx.source, what, why.format(key=ticket.key))


def _checked_data(ctx: LiveContext, response: HttpResponse, ticket: Ticket, what: str) -> HttpResponse:
    """The data answer as SDMX-CSV: unpacked into the spool when it is a zip or gzip archive, then checked as the
    synchronous answer is (a CSV with a header line, no HTML or XML page)."""
    head = response.shape.head
    if head.startswith((ZIP_SIGNATURE, GZIP_SIGNATURE)):
        response = _unpacked(ctx, response, ticket, what, zipped=head.startswith(ZIP_SIGNATURE))
    problem = body_problem(response, EXPECT_CSV)
    if problem:
        response.discard()
        raise ExtractError(f"{ctx.source}: {what}: the asynchronous data of key {ticket.key} ({response.url}) is "
                           f"{problem}; first bytes: {response.text_preview()}")
    return response


def _unpacked(ctx: LiveContext, response: HttpResponse, ticket: Ticket, what: str, *, zipped: bool) -> HttpResponse:
    """`response`'s archive (a zip of one file, or gzip) unpacked to a new file of the spool, as the response."""
    target = ctx.spool.reserve()
    shape = BodyShape()
    kind = "zip" if zipped else "gzip"
    try:
        with ExitStack() as stack:
            raw = stack.enter_context(open(response.body_file.path, "rb")  # noqa: SIM115 - the stack closes it
                                      if response.body_file is not None else io.BytesIO(response.content))
            if zipped:
                archive = stack.enter_context(zipfile.ZipFile(raw))
                members = [m for m in archive.infolist() if not m.is_dir()]
                if len(members) != 1:
                    raise ExtractError(f"{ctx.source}: {what}: the asynchronous data of key {ticket.key} is a zip "
                                       f"archive of {len(members)} files "
                                       f"({', '.join(m.filename for m in members[:5])}), not one")
                packed = stack.enter_context(archive.open(members[0]))
            else:
                packed = stack.enter_context(gzip.GzipFile(fileobj=raw))
            out = stack.enter_context(open(target, "wb"))
            while chunk := packed.read(_COPY_BYTES):
                shape.feed(chunk)
                out.write(chunk)
    except ExtractError:
        target.unlink(missing_ok=True)
        response.discard()
        raise
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        target.unlink(missing_ok=True)
        response.discard()
        raise ExtractError(f"{ctx.source}: {what}: the asynchronous data of key {ticket.key} is a damaged {kind} "
                           f"archive ({type(exc).__name__}: {exc})") from None
    response.discard()
    return replace(response, content=b"", body_file=BodyFile(target, shape.sha256), measured=shape)
