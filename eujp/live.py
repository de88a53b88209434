"""Live extraction: one request plan per source, against the services' documented APIs.

`fetch_live(source, settings)` returns the source's payloads exactly as the service answered (bodies
decoded from gzip; SIPRI's CSV taken out of its JSON envelope), each with its request URL and response
headers, ready for the raw landing zone. Each answer is written to a file as it arrives (a PayloadSpool
under the run's Settings.spill_dir): a plan of thousands of answers holds one in memory, not all of them.
An EMPTY list means "nothing new": the service answered 304 to a conditional request (or, for Comext, had
no observations in the requested periods). Everything else that goes wrong raises ExtractError naming the
source, the URL and the status.

Each source's request plan and endpoint live in its own module (eujp/sources/<source>.py); this module
holds what the plans share: the `Endpoint` of a service (base URL, overridden by an environment variable so
mirrors and tests can point elsewhere; see docs/live-extraction.md), the `LiveContext` a plan is given, a
conditional GET, the Eurostat statistics API request used by both Eurostat JSON-stat sources, and
`fetch_live`.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from eujp.config import Settings, max_payload_bytes, max_payload_mb_env
from eujp.errors import ExtractError
from eujp.http import EXPECT_JSON, HttpClient, HttpPolicy, HttpResponse, redact_url, with_credentials
from eujp.incremental import (
    ALL_CODES,
    SourceState,
    describe_widening,
    merge_scopes,
    recorded_scope,
    scope_widening,
)
from eujp.landing import PayloadSpool, RawPayload, discard_spooled, read_landed_kind
from eujp.storage import open_store
from eujp.warehouse import read_state

if TYPE_CHECKING:
    from eujp.sources.base import Source

log = logging.getLogger("eujp.live")


# --- endpoints ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Endpoint:
    """A live service's base URL: `default`, unless the environment variable `env` names another. An empty
    `default` declares that the service has none: the preflight refuses a live run that selects the source
    while `env` is unset (`missing`), saying `note`."""

    env: str
    default: str
    note: str

    def base_url(self, env: Mapping[str, str] | None = None) -> str:
        env = os.environ if env is None else env
        return (env.get(self.env) or self.default).rstrip("/")

    @property
    def required(self) -> bool:
        """No default URL (an empty `default`): a live run of the source needs `env` set (the preflight asks)."""
        return not self.default.strip()

    def missing(self, env: Mapping[str, str] | None = None) -> bool:
        """Whether a live run would have no URL to ask: `required`, and `env` unset, empty or blank."""
        env = os.environ if env is None else env
        return self.required and not (env.get(self.env) or "").strip()


def env_list(env: Mapping[str, str], name: str, default: str) -> tuple[str, ...]:
    """A list setting: codes separated by ',' or '+' (an empty value is an empty list)."""
    raw = env.get(name)
    raw = default if raw is None else raw
    return tuple(x.strip() for x in raw.replace("+", ",").split(",") if x.strip())


_CODE = re.compile(r"^[A-Z0-9_]+$")


def env_codes(env: Mapping[str, str], name: str, default: str) -> tuple[str, ...]:
    """A list setting of SDMX codes (`env_list`), in upper case as the services write them (Eurostat's API
    ignores the case of a code, Comext's key does not: `jp` asked for nothing), each once, in order. A code
    that is not letters, digits and '_' (`JP;CN`, `8483 40 30`) is an ExtractError naming the setting: sent
    as it stands, it asks the service for nothing and the run would end 'unchanged' with no rows."""
    codes = tuple(dict.fromkeys(c.upper() for c in env_list(env, name, default)))
    bad = [c for c in codes if not _CODE.match(c)]
    if bad:
        raise ExtractError(f"{name}: {', '.join(map(repr, bad))} is not a code (letters, digits and '_'; "
                           "separate codes with ',')")
    return codes


# --- request plans -------------------------------------------------------------------------------------

@dataclass
class LiveContext:
    """What a request plan needs: the source, its HTTP client and base URL, the incremental state."""

    source: str
    client: HttpClient
    base: str
    state: SourceState | None
    run_date: date
    force: bool
    env: Mapping[str, str]
    spool: PayloadSpool  # where the answers are written as they arrive
    scope: dict | None = None  # the source's request_scope under `env` (None: the source declares none)

    @property
    def previous_scope(self) -> dict | None:
        """The request_scope of the last successful extraction (None: forced, the first one, or not recorded)."""
        return None if self.force else recorded_scope(self.state)

    @property
    def validators(self) -> dict[str, str | None]:
        """If-None-Match / If-Modified-Since values from the last successful load (none when forced)."""
        if self.force or self.state is None:
            return {"etag": None, "last_modified": None}
        return {"etag": self.state.etag, "last_modified": self.state.last_modified}

    @property
    def conditional(self) -> dict[str, str | None]:
        """The HTTP client's arguments of a conditional request: `validators`, and the URL they belong to
        (`state.request_url`: the final URL of the last successful load's answer, after any redirect; None for a
        state that did not keep it). The client sends them to that URL only, whichever URL is asked and wherever
        it redirects: another URL (another mirror, an EUJP_*_URL edited, a redirect moved to a new target) gets
        none, since its server never answered them (a 304 there would keep the old mirror's rows), and a
        configured URL that redirects to the stored one gets them on that hop."""
        if self.force or self.state is None:
            return {"etag": None, "last_modified": None, "validators_url": None}
        return {**self.validators, "validators_url": self.state.request_url}

    @property
    def watermark(self) -> str | None:
        return None if self.force or self.state is None else self.state.watermark

    @property
    def updated_after(self) -> str | None:
        """SDMX `updatedAfter` (xs:dateTime, UTC): when the last successful extraction started; None on the first
        extraction and when forced."""
        when = None if self.force or self.state is None else self.state.requested_at
        if when is None:
            return None
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
        return when.isoformat(timespec="seconds")

    def get(self, url: str, **kwargs) -> HttpResponse:
        """A GET whose 2xx body is written to a new file of the spool as it arrives (the HTTP client's
        `body_file`): `payload` keeps it, `HttpResponse.discard` drops it."""
        return self.client.get(url, body_file=self.spool.reserve(), **kwargs)

    def payload(self, name: str, response: HttpResponse, data: bytes | None = None, *,
                kind: str = "data") -> RawPayload:
        """The answer (or `data` taken from it) as a payload: a file of the spool, so that a plan of thousands
        of answers holds none of them in memory (an answer fetched by `get` is its file already)."""
        headers = dict(response.headers)
        if data is None and response.body_file is not None:
            return self.spool.adopt(response.body_file.path, response.body_file.sha256, self.source, name,
                                    response.url, headers, kind=kind)
        body = response.content if data is None else data
        response.discard()
        return self.spool.write(self.source, name, body, response.url, headers, kind=kind)

    def windowed_get(self, url: str, name: str, *, params: list[tuple[str, str]], period_param: str,
                     expect=EXPECT_JSON) -> list[RawPayload]:
        """A GET of a request that asks from a period on (`period_param`), conditional on the validators of the
        last successful extraction, which are kept with the URL they belong to (`state.request_url`):

        - the same URL, or one that redirects to it: its validators are sent with it (to that URL:
          `conditional`); 304 = nothing new (one request);
        - another URL of the same request that asked from an earlier period (the first day after a full load,
          or after the watermark moved): the conditional request goes to *that* URL. Its representation holds
          every period this request asks for, so a 304 there means nothing changed here either (one request).
          A 200 means something changed: its body is dropped and this request is sent, so that what is landed,
          loaded and remembered is this request's (two requests, on a day with something new);
        - no such URL (first extraction, --force, other filters): an unconditional GET.
        A state from before validators were kept per URL (no request_url) sends them with this request."""
        full = redact_url(str(httpx.URL(url, params=params)))  # as the state keeps it: without credentials
        validators = self.validators
        stored = None if self.force or self.state is None else self.state.request_url
        has_validators = bool(validators["etag"] or validators["last_modified"])
        if stored is None or stored == full or not (has_validators and covers(stored, full, period_param)):
            response = self.get(url, params=params, expect=expect, **self.conditional)
        else:
            check = self.get(with_credentials(stored, str(httpx.URL(url, params=params))), expect=expect,
                             **self.conditional)
            if check.not_modified:
                log.info("%s: %s unchanged (304 for the earlier request %s, which covers it)", self.source, full,
                         stored)
                return []
            check.discard()
            response = self.get(url, params=params, expect=expect)
        if response.not_modified:
            return []
        return [self.payload(name, response)]

    def conditional_get(self, url: str, name: str, *, params: list[tuple[str, str]] | None = None,
                        expect=EXPECT_JSON) -> list[RawPayload]:
        """One GET with the last load's validators (sent to the URL they belong to: `conditional`): [] when the
        service answers 304 Not Modified."""
        response = self.get(url, params=params, expect=expect, **self.conditional)
        if response.not_modified:
            return []
        return [self.payload(name, response)]


def landed_queries(payloads: list[RawPayload]) -> list[list[tuple[str, str]]]:
    """The query of each data payload landed from a live request (its URL's, as asked: a snapshot's or a file's
    has none), for a source whose request states what it asks for in its query (Source.landed_scope)."""
    return [parse_qsl(urlsplit(p.url).query, keep_blank_values=True) for p in payloads
            if p.kind == "data" and p.url.startswith(("http://", "https://"))]


def covers(earlier: str, later: str, period_param: str) -> bool:
    """Whether the request `earlier` asks for every period `later` asks for, with the same filters: the same
    path and query except `period_param`, which `earlier` omits or sets no later than `later`."""
    a, b = urlsplit(earlier), urlsplit(later)
    if (a.scheme, a.netloc, a.path) != (b.scheme, b.netloc, b.path):
        return False
    qa, qb = parse_qsl(a.query, keep_blank_values=True), parse_qsl(b.query, keep_blank_values=True)
    rest_a = sorted((k, v) for k, v in qa if k != period_param)
    rest_b = sorted((k, v) for k, v in qb if k != period_param)
    if rest_a != rest_b:
        return False
    start_a = next((v for k, v in qa if k == period_param), None)
    start_b = next((v for k, v in qb if k == period_param), None)
    return start_a is None or (start_b is not None and start_a <= start_b)


# --- the Eurostat statistics API (JSON-stat 2.0), shared by the Eurostat sources ----------------------------

EUROSTAT = Endpoint(
    "EUJP_EUROSTAT_URL", "https://ec.europa.eu/eurostat",
    "Eurostat dissemination API (statistics 1.0, JSON-stat 2.0).",
)


@dataclass(frozen=True)
class EurostatDataset:
    """A Eurostat statistics API request: the dataset, its fixed filters (a dimension repeated once per
    code), and the environment variable holding the geo codes (default `geo_default`)."""

    dataset: str
    filters: tuple[tuple[str, str], ...]
    geo_env: str
    geo_default: str

    def request(self, base: str, since: str | None, env: Mapping[str, str]) -> tuple[str, list[tuple[str, str]]]:
        """URL and query of the request (`since`: sinceTimePeriod, a year)."""
        params = [("format", "JSON"), ("lang", "EN"), *self.filters]
        params += [("geo", g) for g in env_codes(env, self.geo_env, self.geo_default)]
        if since:
            params.append(("sinceTimePeriod", since))
        return f"{base}/api/dissemination/statistics/1.0/data/{self.dataset}", params

    def scope(self, env: Mapping[str, str], run_date: date | None = None) -> dict:
        """What the request asks for (Source.request_scope): its geo codes (the other filters are fixed; no
        first period, so the run's date does not matter)."""
        return {"geo": sorted(env_codes(env, self.geo_env, self.geo_default)) or [ALL_CODES]}

    def landed_scope(self, payloads: list[RawPayload]) -> dict | None:
        """What landed payloads asked for in full (Source.landed_scope): the geo codes of the requests without
        sinceTimePeriod (every period), all of them together; None when every request asked only from a period
        (an incremental day holds no history before it), or none was landed from a live request."""
        full = [q for q in landed_queries(payloads) if not any(k == "sinceTimePeriod" for k, _ in q)]
        if not full:
            return None
        geo = {v for q in full for k, v in q if k == "geo"}
        return {"geo": sorted(geo) if all(any(k == "geo" for k, _ in q) for q in full) else [ALL_CODES]}

    def fetch(self, ctx: LiveContext) -> list[RawPayload]:
        """The request plan of a Eurostat JSON-stat source: one conditional GET from the watermark on (two on a
        day with something new after the watermark moved: LiveContext.windowed_get)."""
        url, params = self.request(ctx.base, ctx.watermark, ctx.env)
        return ctx.windowed_get(url, f"{self.dataset}?{urlencode(params)}", params=params,
                                period_param="sinceTimePeriod", expect=EXPECT_JSON)


def fetch_live(
    source: Source,
    settings: Settings,
    state: SourceState | None = None,
    *,
    env: Mapping[str, str] | None = None,
    policy: HttpPolicy | None = None,
    sleep: Callable[[float], None] | None = None,
    rng: random.Random | None = None,
) -> list[RawPayload]:
    """A source's payloads from its live service ([] = nothing new since the last load).

    Without `state`, the source's state is read from the live warehouse (settings.warehouse_path) unless
    settings.force is set, in which case the source is extracted in full and unconditionally."""
    name = source.name
    if source.fetch is None or source.endpoint is None:
        raise ExtractError(f"{name}: no live request plan for this source")
    env = os.environ if env is None else env
    state, force, scope = extraction_basis(source, settings, state, env)
    extra = {"sleep": sleep} if sleep is not None else {}
    try:  # a response over the source's payload cap is refused while it is read, before anything is landed
        cap, setting = max_payload_bytes(name, env)
    except ValueError as exc:
        raise ExtractError(f"{name}: {exc}") from None
    if setting != max_payload_mb_env(name):
        setting += f"; for this source alone: {max_payload_mb_env(name)}"
    policy = (policy or HttpPolicy.from_env(env)).with_(max_body_bytes=cap, max_body_setting=setting)
    spool = PayloadSpool(settings.spill_dir, f"eujp-{name}-payloads-")
    with HttpClient(name, policy, rng=rng, **extra) as client:
        ctx = LiveContext(source=name, client=client, base=source.endpoint.base_url(env), state=state,
                          run_date=settings.run_date, force=force, env=env, spool=spool, scope=scope)
        payloads = source.fetch(ctx)
        log.info("%s: %d request(s), %d payload(s)%s", name, len(client.attempts), len(payloads),
                 "" if payloads else " (nothing new)")
        return payloads


def extraction_basis(source: Source, settings: Settings, state: SourceState | None, env: Mapping[str, str], *,
                     quiet: bool = False, landed_before: datetime | None = None,
                     ) -> tuple[SourceState | None, bool, dict | None]:
    """(state, force, scope) of a live extraction: the source's state (read from the live warehouse unless
    given, or forced), whether it is extracted in full, and the request scope of the run's settings.

    A state that records no request scope but an extraction to go on gets the scope its landings stated
    (`landed_scope`), or, when none did, the extraction is full. Settings that ask for more than the last
    successful extraction make it full unless the source backfills what was added itself (`backfills_scope`).
    `quiet`: the same decisions without their log lines (the load, which records what the extraction fetched:
    `fetched_scope`); `landed_before`: the scope is rebuilt from what was landed before that time only (the
    extraction's own landings, made since, were not there when it decided)."""
    name = source.name
    force = bool(getattr(settings, "force", False))
    if state is None and not force:
        state = read_state(settings.warehouse_path, name)
    scope = source.request_scope(env, settings.run_date) if source.request_scope is not None else None
    if (not force and scope is not None and state is not None
            and (state.watermark or state.requested_at) and recorded_scope(state) is None):
        # an extraction to go on, but not what it asked for (a warehouse older than request scopes, or one a
        # replay of landings that state no scope built): the settings' scope is not taken as fetched
        rebuilt = landed_scope(source, settings, before=landed_before)
        if rebuilt is not None:
            if not quiet:
                log.info("%s: no request scope recorded; rebuilt from the raw zone's landed statements: %s", name,
                         json.dumps(rebuilt, sort_keys=True))
            state = replace(state, request_scope=json.dumps(rebuilt, sort_keys=True))
        else:
            if not quiet:
                log.warning("%s: the warehouse does not record what the last extraction asked for (no request "
                            "scope, and no statement of it in the raw zone): every code is treated as new, and the "
                            "whole history is fetched again, as with --force", name)
            force = True
    widened = {} if force else scope_widening(recorded_scope(state), scope)
    if widened:  # the settings ask for more than the last successful extraction did
        if not quiet:
            log.info("%s: the request asks for more than the last successful extraction (%s): %s", name,
                     describe_widening(widened), "the plan fetches the history of what was added"
                     if source.backfills_scope else "extracted in full, as with --force")
        force = force or not source.backfills_scope
    return state, force, scope


def fetched_scope(source: Source, settings: Settings, env: Mapping[str, str],
                  started_at: datetime | None = None) -> dict | None:
    """The request scope a successful live extraction of `source` in this run fetched in full, as its state
    records it (etl_source_state.request_scope): the settings' scope, or the part of it the source says it
    fetched (`Source.scope_fetched`: Comext's history in stages), decided as `fetch_live` decided it: from a
    scope rebuilt from the raw zone, from the landings made before the extraction `started_at` (its own
    coverage statements, landed since, would tell another scope than the one it planned from)."""
    if source.request_scope is None:
        return None
    if source.scope_fetched is None:
        return source.request_scope(env, settings.run_date)
    state, force, scope = extraction_basis(source, settings, None, env, quiet=True, landed_before=started_at)
    return source.scope_fetched(scope, None if force else recorded_scope(state), env, settings.run_date,
                                None if force or state is None else state.watermark)


def landed_scope(source: Source, settings: Settings, *, before: datetime | None = None) -> dict | None:
    """The request scope of the live extractions landed in the raw zone (settings.publish_uri) for `source` up to
    the run's day, from the statements landed with them (Source.landed_scope over each day's coverage payloads;
    the days together: eujp.incremental.merge_scopes); None when the source states none, or none was landed.
    `before`: only statements fetched before that time (to the second, as landings record it)."""
    if source.landed_scope is None or source.coverage is None:
        return None
    by_day = read_landed_kind(open_store(settings.publish_uri), source.name, source.coverage.kind,
                              source.coverage.extension, settings.run_date, settings.spill_dir)
    read = by_day
    if before is not None:
        cut = _naive_utc(before).replace(microsecond=0)
        by_day = {day: kept for day, landed in by_day.items()
                  if (kept := [p for p in landed if _naive_utc(datetime.fromisoformat(p.fetched_at)) < cut])}
    try:
        scope = None
        for day in sorted(by_day):
            scope = merge_scopes(scope, source.landed_scope(by_day[day]))
        return scope
    finally:
        discard_spooled([p for day in read.values() for p in day])


def _naive_utc(when: datetime) -> datetime:
    """`when` as a naive UTC datetime (a naive one is taken as UTC already, as landings record it)."""
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when
