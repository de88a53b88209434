"""Live extraction: one request plan per source, against the services' documented APIs.

`fetch_live(source, settings)` returns the source's payloads exactly as the service answered (bodies
decoded from gzip; SIPRI's CSV taken out of its JSON envelope), each with its request URL and response
headers, ready for the raw landing zone. An EMPTY list means "nothing new": the service answered 304 to
a conditional request (or, for Comext, had no observations in the requested periods). Everything else
that goes wrong raises ExtractError naming the source, the URL and the status.

Base URLs default to the real services and are overridden per service by environment variables, so
mirrors and tests can point elsewhere (see `ENDPOINTS` and docs/live-extraction.md).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import unquote, urlencode, urlsplit

from eujp.config import BUNDLED_SNAPSHOT_DIR, Settings
from eujp.errors import ExtractError
from eujp.http import EXPECT_CSV, EXPECT_JSON, HttpClient, HttpPolicy, HttpResponse
from eujp.incremental import SourceState, month_add, read_state
from eujp.landing import RawPayload

log = logging.getLogger("eujp.live")


# --- endpoints ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Endpoint:
    env: str
    default: str
    note: str


ENDPOINTS: dict[str, Endpoint] = {
    "eurostat": Endpoint(
        "EUJP_EUROSTAT_URL", "https://ec.europa.eu/eurostat",
        "Eurostat dissemination API (statistics 1.0, JSON-stat 2.0).",
    ),
    "comext": Endpoint(
        "EUJP_COMEXT_URL", "https://ec.europa.eu/eurostat",
        "Eurostat Comext dissemination API (SDMX 2.1, SDMX-CSV); not the main api/dissemination/sdmx path.",
    ),
    "oecd": Endpoint(
        "EUJP_OECD_URL", "https://sdmx.oecd.org",
        "OECD SDMX REST API (public/rest), CSV with labels.",
    ),
    "sipri": Endpoint(
        "EUJP_SIPRI_URL", "https://atbackend.sipri.org/api/p/trades/trade-register-csv/",
        "UNVERIFIED: the undocumented backend of the SIPRI Arms Transfers Database front end, as used by "
        "public clients; POST with JSON filters, answers {\"bytes\": base64 CSV}. Any URL outside "
        "/api/p/trades/ is fetched with a plain GET as a CSV file (a mirror).",
    ),
    "events": Endpoint(
        "EUJP_EVENTS_URL", (BUNDLED_SNAPSHOT_DIR / "security_events.csv").as_uri(),
        "The curated events file; by default the copy versioned in this repository (file:// URL). "
        "Point it at an http(s) URL of the file (e.g. its raw URL on the git host) to fetch it.",
    ),
}
SOURCE_ENDPOINT: dict[str, str] = {
    "eurostat_goods": "eurostat",
    "eurostat_services": "eurostat",
    "comext_goods": "comext",
    "oecd_restrictions": "oecd",
    "sipri_arms": "sipri",
    "security_events": "events",
}


def base_url(endpoint: str, env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    spec = ENDPOINTS[endpoint]
    return (env.get(spec.env) or spec.default).rstrip("/")


def _env_list(env: Mapping[str, str], name: str, default: str) -> tuple[str, ...]:
    raw = env.get(name)
    raw = default if raw is None else raw
    return tuple(x.strip() for x in raw.replace("+", ",").split(",") if x.strip())


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

    @property
    def validators(self) -> dict[str, str | None]:
        """If-None-Match / If-Modified-Since values from the last successful load (none when forced)."""
        if self.force or self.state is None:
            return {"etag": None, "last_modified": None}
        return {"etag": self.state.etag, "last_modified": self.state.last_modified}

    @property
    def watermark(self) -> str | None:
        return None if self.force or self.state is None else self.state.watermark

    def payload(self, name: str, response: HttpResponse, data: bytes | None = None) -> RawPayload:
        return RawPayload(source=self.source, name=name, data=response.content if data is None else data,
                          url=response.url, headers=dict(response.headers))


# Eurostat statistics API (JSON-stat 2.0). Filters repeat a dimension once per code.
EUROSTAT_DATASETS: dict[str, tuple[str, tuple[tuple[str, str], ...], str, str]] = {
    # source: (dataset, fixed filters, env var with the geo codes, default geo codes)
    "eurostat_goods": (
        "ext_lt_maineu",
        (("freq", "A"), ("partner", "JP"), ("sitc06", "TOTAL"), ("indic_et", "MIO_EXP_VAL"),
         ("indic_et", "MIO_IMP_VAL"), ("indic_et", "MIO_BAL_VAL")),
        "EUJP_EUROSTAT_GOODS_GEO", "EU27_2020",
    ),
    "eurostat_services": (
        "bop_its6_det",
        (("freq", "A"), ("partner", "JP"), ("currency", "MIO_EUR"), ("bop_item", "S"), ("stk_flow", "CRE"),
         ("stk_flow", "DEB"), ("stk_flow", "BAL")),
        "EUJP_EUROSTAT_SERVICES_GEO", "EU27_2020",
    ),
}


def eurostat_request(source: str, base: str, since: str | None,
                     env: Mapping[str, str]) -> tuple[str, list[tuple[str, str]]]:
    """URL and query of a source's Eurostat JSON-stat request (`since`: sinceTimePeriod, a year)."""
    dataset, filters, geo_env, geo_default = EUROSTAT_DATASETS[source]
    params = [("format", "JSON"), ("lang", "EN"), *filters]
    params += [("geo", g) for g in _env_list(env, geo_env, geo_default)]
    if since:
        params.append(("sinceTimePeriod", since))
    return f"{base}/api/dissemination/statistics/1.0/data/{dataset}", params


def fetch_eurostat(ctx: LiveContext) -> list[RawPayload]:
    url, params = eurostat_request(ctx.source, ctx.base, ctx.watermark, ctx.env)
    response = ctx.client.get(url, params=params, expect=EXPECT_JSON, **ctx.validators)
    if response.not_modified:
        return []
    dataset = EUROSTAT_DATASETS[ctx.source][0]
    return [ctx.payload(f"{dataset}?{urlencode(params)}", response)]


# Comext DS-045409 (SDMX 2.1 data, SDMX-CSV), split on 413 EXTRACTION_TOO_BIG.
COMEXT_DATAFLOW = "DS-045409"
COMEXT_DEFAULTS = {
    "EUJP_COMEXT_FREQ": "M",
    "EUJP_COMEXT_REPORTERS": "",  # empty key part = every reporter (member states and EU aggregates)
    "EUJP_COMEXT_PARTNERS": "JP",
    "EUJP_COMEXT_PRODUCTS": "84834030",  # CN8 codes; empty = all products (cannot be split by chapter)
    "EUJP_COMEXT_FLOWS": "1,2",  # 1 import, 2 export
    "EUJP_COMEXT_INDICATORS": "VALUE_IN_EUROS,QUANTITY_IN_100KG",
    "EUJP_COMEXT_START": "2015-01",  # first month of the first (full) extraction
}
COMEXT_MAX_SPLIT_DEPTH = 10
COMEXT_MAX_REQUESTS = 256
# Eurostat API guide, fault code 100: "No results found" (HTTP 400 or 404) for an empty selection.
_NO_RESULTS = ("no results found", "no_results_found", "<faultcode>100</faultcode>")


@dataclass(frozen=True)
class ComextSlice:
    """One Comext request: a month range and the products it asks for (empty = all)."""

    start: str  # YYYY-MM
    end: str  # YYYY-MM
    products: tuple[str, ...]

    def months(self) -> list[str]:
        months, m = [], self.start
        while m <= self.end:
            months.append(m)
            m = month_add(m, 1)
        return months

    def split(self) -> list[ComextSlice]:
        """Halves of the period range; for a single month, one slice per product chapter (2-digit
        prefix); for a single chapter, halves of its product list. [] when it cannot be split."""
        months = self.months()
        if len(months) > 1:
            mid = len(months) // 2
            return [ComextSlice(self.start, months[mid - 1], self.products),
                    ComextSlice(months[mid], self.end, self.products)]
        chapters: dict[str, list[str]] = {}
        for p in self.products:
            chapters.setdefault(p[:2], []).append(p)
        if len(chapters) > 1:
            return [ComextSlice(self.start, self.end, tuple(ps)) for _, ps in sorted(chapters.items())]
        if len(self.products) > 1:
            mid = len(self.products) // 2
            return [ComextSlice(self.start, self.end, self.products[:mid]),
                    ComextSlice(self.start, self.end, self.products[mid:])]
        return []

    def describe(self) -> str:
        products = "+".join(self.products) if len(self.products) <= 4 else (
            f"{len(self.products)} products in chapter(s) {'+'.join(sorted({p[:2] for p in self.products}))}")
        return f"{self.start}..{self.end} {products or 'all products'}"


def comext_key(env: Mapping[str, str], products: tuple[str, ...]) -> str:
    """`{freq}.{reporters}.{partners}.{products}.{flows}.{indicators}` (codes joined by '+')."""
    def part(name: str) -> str:
        return "+".join(_env_list(env, name, COMEXT_DEFAULTS[name]))

    return ".".join([part("EUJP_COMEXT_FREQ"), part("EUJP_COMEXT_REPORTERS"), part("EUJP_COMEXT_PARTNERS"),
                     "+".join(products), part("EUJP_COMEXT_FLOWS"), part("EUJP_COMEXT_INDICATORS")])


def comext_request(base: str, env: Mapping[str, str], piece: ComextSlice) -> tuple[str, list[tuple[str, str]]]:
    url = f"{base}/api/comext/dissemination/sdmx/2.1/data/{COMEXT_DATAFLOW}/{comext_key(env, piece.products)}"
    params = [("startPeriod", piece.start), ("endPeriod", piece.end), ("format", "SDMX-CSV"),
              ("compressed", "false")]
    return url, params


def comext_first_slice(ctx: LiveContext) -> ComextSlice:
    start = ctx.watermark or ctx.env.get("EUJP_COMEXT_START") or COMEXT_DEFAULTS["EUJP_COMEXT_START"]
    end = f"{ctx.run_date.year:04d}-{ctx.run_date.month:02d}"
    if len(start) == 4:
        start += "-01"
    if start > end:
        raise ExtractError(f"{ctx.source}: watermark/start period {start} is after the run month {end}")
    return ComextSlice(start, end, _env_list(ctx.env, "EUJP_COMEXT_PRODUCTS", COMEXT_DEFAULTS["EUJP_COMEXT_PRODUCTS"]))


def fetch_comext(ctx: LiveContext) -> list[RawPayload]:
    """Fetch the Comext slices, splitting any that answers 413 EXTRACTION_TOO_BIG (periods first, then
    product chapters) up to COMEXT_MAX_SPLIT_DEPTH levels and COMEXT_MAX_REQUESTS requests."""
    pending: list[tuple[ComextSlice, int]] = [(comext_first_slice(ctx), 0)]
    payloads: list[RawPayload] = []
    requests = 0
    while pending:
        piece, depth = pending.pop(0)
        requests += 1
        if requests > COMEXT_MAX_REQUESTS:
            raise ExtractError(f"{ctx.source}: more than {COMEXT_MAX_REQUESTS} requests after splitting; "
                               "narrow EUJP_COMEXT_PRODUCTS/REPORTERS or the start period")
        url, params = comext_request(ctx.base, ctx.env, piece)
        response = ctx.client.get(url, params=params, expect=EXPECT_CSV, pass_statuses=(400, 404, 413))
        body = response.content.decode("utf-8", "replace")
        if response.status == 413:
            if "EXTRACTION_TOO_BIG" not in body:
                raise ExtractError(f"{ctx.source}: GET {response.url} answered 413 without EXTRACTION_TOO_BIG: "
                                   f"{response.text_preview()}")
            parts = piece.split()
            if not parts or depth >= COMEXT_MAX_SPLIT_DEPTH:
                why = (f"the split depth limit ({COMEXT_MAX_SPLIT_DEPTH}) is reached" if parts else
                       "a single month of a single product (or of all products) cannot be split further"
                       + ("; list CN8 codes in EUJP_COMEXT_PRODUCTS" if not piece.products else ""))
                raise ExtractError(f"{ctx.source}: GET {response.url} answered 413 EXTRACTION_TOO_BIG and {why}")
            log.info("%s: %s is too big (413 EXTRACTION_TOO_BIG): split into %s", ctx.source, piece.describe(),
                     ", ".join(p.describe() for p in parts))
            pending[0:0] = [(p, depth + 1) for p in parts]
            continue
        if response.status in (400, 404):
            if any(marker in body.lower() for marker in _NO_RESULTS):
                log.info("%s: no observations for %s", ctx.source, piece.describe())
                continue
            raise ExtractError(f"{ctx.source}: GET {response.url} answered {response.status}: "
                               f"{response.text_preview()}")
        payloads.append(ctx.payload(f"{COMEXT_DATAFLOW} {piece.describe()}", response))
    return payloads


# OECD export restrictions (SDMX REST, CSV with labels).
OECD_AGENCY_FLOW = "OECD.TAD.ADM,DSD_QDD_TAD_EXP_RESTRIC@DF_QDD_TAD_EXP_RESTRIC"
OECD_DEFAULTS = {"EUJP_OECD_DATAFLOW_VERSION": "3.0", "EUJP_OECD_START": "2009"}


def oecd_request(base: str, env: Mapping[str, str], start: str, end: str) -> tuple[str, list[tuple[str, str]]]:
    version = env.get("EUJP_OECD_DATAFLOW_VERSION") or OECD_DEFAULTS["EUJP_OECD_DATAFLOW_VERSION"]
    url = f"{base}/public/rest/data/{OECD_AGENCY_FLOW},{version}/all"
    params = [("startPeriod", start), ("endPeriod", end), ("dimensionAtObservation", "AllDimensions"),
              ("format", "csvfilewithlabels")]
    return url, params


def fetch_oecd(ctx: LiveContext) -> list[RawPayload]:
    start = ctx.watermark or ctx.env.get("EUJP_OECD_START") or OECD_DEFAULTS["EUJP_OECD_START"]
    url, params = oecd_request(ctx.base, ctx.env, start, str(ctx.run_date.year))
    response = ctx.client.get(url, params=params, expect=EXPECT_CSV, **ctx.validators)
    if response.not_modified:
        return []
    return [ctx.payload(f"{OECD_AGENCY_FLOW} {start}..{ctx.run_date.year}", response)]


# SIPRI trade register (UNVERIFIED backend endpoint, see ENDPOINTS["sipri"]).
def sipri_filters(end_year: int) -> dict:
    """The JSON body the database front end posts for a trade register of every supplier and recipient
    (orders up to `end_year`, deliveries 1950..`end_year`): the shape public clients use (unverified)."""
    return {
        "filters": [
            {"field": "Delivery year", "condition": "contains", "value1": 1950, "value2": end_year,
             "listData": []},
            {"field": "Order year", "condition": "contains", "value1": 0, "value2": end_year, "listData": []},
            {"field": "opendeals", "condition": "", "value1": "", "value2": "", "listData": []},
            {"field": "exportOption", "condition": "", "value1": "", "value2": "", "listData": []},
        ],
        "logic": "AND",
    }


def unwrap_sipri(response: HttpResponse, source: str) -> bytes:
    """The CSV inside the backend's JSON answer {"bytes": "<base64>"}."""
    try:
        doc = json.loads(response.content)
        encoded = doc["bytes"]
        if not isinstance(encoded, str):
            raise TypeError(f"'bytes' is a {type(encoded).__name__}")
        return base64.b64decode(encoded, validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise ExtractError(
            f"{source}: {response.method} {response.url} answered {response.status} with JSON that is not the "
            f"expected {{\"bytes\": base64 CSV}} envelope ({type(exc).__name__}: {exc}); "
            f"first bytes: {response.text_preview()}"
        ) from None


def fetch_sipri(ctx: LiveContext) -> list[RawPayload]:
    if "/api/p/trades/" in urlsplit(ctx.base).path:
        body = sipri_filters(ctx.run_date.year)
        response = ctx.client.post(ctx.base + "/", json_body=body, expect=EXPECT_JSON)
        csv_bytes = unwrap_sipri(response, ctx.source)
        return [ctx.payload(f"POST trade-register-csv order years 0..{ctx.run_date.year} "
                            "(CSV decoded from the JSON 'bytes' field)", response, csv_bytes)]
    response = ctx.client.get(ctx.base, expect=EXPECT_CSV, **ctx.validators)
    if response.not_modified:
        return []
    return [ctx.payload(Path(urlsplit(response.url).path).name or "trade-register.csv", response)]


# Curated events file.
def fetch_events(ctx: LiveContext) -> list[RawPayload]:
    parts = urlsplit(ctx.base)
    if parts.scheme == "file":
        path = Path(unquote(parts.path))
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ExtractError(f"{ctx.source}: cannot read {ctx.base}: {exc}") from None
        return [RawPayload(source=ctx.source, name=path.name, data=data, url=ctx.base)]
    response = ctx.client.get(ctx.base, expect=EXPECT_CSV, **ctx.validators)
    if response.not_modified:
        return []
    return [ctx.payload(Path(parts.path).name or "security_events.csv", response)]


PLANS: dict[str, Callable[[LiveContext], list[RawPayload]]] = {
    "eurostat_goods": fetch_eurostat,
    "eurostat_services": fetch_eurostat,
    "comext_goods": fetch_comext,
    "oecd_restrictions": fetch_oecd,
    "sipri_arms": fetch_sipri,
    "security_events": fetch_events,
}


def fetch_live(
    source,
    settings: Settings,
    state: SourceState | None = None,
    *,
    env: Mapping[str, str] | None = None,
    policy: HttpPolicy | None = None,
    sleep: Callable[[float], None] | None = None,
    rng: random.Random | None = None,
) -> list[RawPayload]:
    """A source's payloads from its live service ([] = nothing new since the last load).

    `source` is an eujp.sources.Source (only `.name` is used). Without `state`, the source's state is
    read from the live warehouse (settings.warehouse_path) unless settings.force is set, in which case
    the source is extracted in full and unconditionally."""
    name = source.name
    if name not in PLANS:
        raise ExtractError(f"{name}: no live request plan for this source")
    env = os.environ if env is None else env
    force = bool(getattr(settings, "force", False))
    if state is None and not force:
        state = read_state(settings.warehouse_path, name)
    extra = {"sleep": sleep} if sleep is not None else {}
    with HttpClient(name, policy or HttpPolicy.from_env(env), rng=rng, **extra) as client:
        ctx = LiveContext(source=name, client=client, base=base_url(SOURCE_ENDPOINT[name], env), state=state,
                          run_date=settings.run_date, force=force, env=env)
        payloads = PLANS[name](ctx)
        log.info("%s: %d request(s), %d payload(s)%s", name, len(client.attempts), len(payloads),
                 "" if payloads else " (nothing new)")
        return payloads
