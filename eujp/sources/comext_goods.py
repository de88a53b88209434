"""Eurostat Comext DS-045409: monthly EU trade by CN8 product (SDMX 2.1 data, SDMX-CSV).

Live, on the Comext dissemination API (not the main api/dissemination/sdmx path; docs/live-extraction.md):

1. `plan_comext(ctx)`: unless forced or first, one small request for the dataflow: when its UPDATE_DATA
   annotation is older than the last successful extraction, nothing is new (one request, no load work).
   Otherwise the product codelist (CXT_NC: every CN8 code with its description) is fetched and becomes a
   payload of its own (landed, then loaded into the labels table that names dim_product's CN8 rows), and the
   key `{freq}.{reporters}.{partners}.{products}.{flows}.{indicators}` is planned as slices: one per CN
   chapter (at most EUJP_COMEXT_MAX_PRODUCTS_PER_REQUEST codes each) and per EUJP_COMEXT_SLICE_MONTHS months,
   from the watermark (or EUJP_COMEXT_START) to the run month.
2. `fetch_comext_slice(ctx, piece, updated_after)`: one slice's payloads. After a first extraction each slice
   is first asked with `updatedAfter` = the start of the last successful extraction: an empty answer is one
   small request; a slice with changes is then fetched whole. A request the service refuses with 413
   EXTRACTION_TOO_BIG is split (periods first, then chapters, then halves of the product list).
3. `fetch_comext(ctx)`: the source's live plan: both, every slice in turn ([] when no slice has data).

Settings that ask for more than the last successful extraction did (`comext_scope`, recorded in
etl_source_state.request_scope): a partner, reporter, flow or CN8 code added to its list, or an earlier
EUJP_COMEXT_START, is backfilled: the slices of what was added are planned from the first month and fetched
whole, beside the incremental request of what was asked before (`comext_backfill`). Added indicators or
frequencies, every code of a list that named some, or two such changes at once make the extraction full; fewer
indicators than before are refused (`narrowed_indicators`). With EUJP_COMEXT_HISTORY_MONTHS, a first load, an
earlier start and the codes added to a list of reporters, partners or flows are fetched in stages of that many
months, newest first, one stage a run (`comext_history_start`, `comext_added_start`, the scope's `STAGE` record).

Coverage: a plan made from the whole codelist (EUJP_COMEXT_PRODUCTS empty, monthly, VALUE_IN_EUROS asked)
asks for every CN8 product of every month from its start to its end, and an extraction either fetches every
slice or fails. A successful one that lands data lands beside it a coverage payload (`COVERAGE`, kind
`coverage`: JSON written by the plan, not by the service) stating the reporters, partners, flows and months it
covered with all products and the codelist version; the load turns it into rows of `etl_comext_coverage`
(one per reporter, partner, flow and month) in the source's transaction. Slices that answered nothing
(no observations, or nothing changed since `updatedAfter`) count as covered: their rows are loaded already,
or there are none. A plan of listed products states no coverage. Landed with the data, the statement is
replayed with it (`eujp run --from-raw`, `--as-of`). eujp.reconcile compares the CN8 sums of a year covered
in all 12 months two-sided with ext_lt_maineu's totals.

Comext revises the months of the current and the previous year, so the next request restarts at January of
the year before the newest month loaded. Payloads are streamed in chunks (`transform_key`,
eujp.stream.Stream): payloads that share no month (`wire_groups`: TIME_PERIOD) are chunked in memory, a
payload of many months over EUJP_BATCH_ROWS rows is hash-partitioned to disk.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime

import polars as pl
from defusedxml import ElementTree as SafeET

from eujp.config import REFERENCE_DIR
from eujp.errors import ExtractError, ParseError
from eujp.eurostat_async import await_delivery, queued_ticket
from eujp.http import EXPECT_CSV, Expect, refuse_body
from eujp.incremental import ALL_CODES, STAGE, describe_widening, merge_scopes, month_add, scope_widening
from eujp.landing import RawPayload
from eujp.live import Endpoint, LiveContext, env_codes
from eujp.parse.sdmx_csv import comext_version, parse_comext_csv
from eujp.schema import Table
from eujp.schema.core import TS, D, S
from eujp.sources.base import CoverageFeed, LabelFeed, Source, WireGroups
from transforms import comext_goods as transform

log = logging.getLogger("eujp.live")

COMEXT_DATAFLOW = "DS-045409"

TABLE = Table(
    name="fact_goods_trade_product",
    description="Monthly EU trade in goods by CN8 product (Eurostat Comext DS-045409, SDMX-CSV).",
    columns=transform.COLUMNS,
    natural_key=transform.NATURAL_KEY,
    revision_columns=("value_eur", "quantity_kg"),
    column_docs={
        "reporter": "Reporting member state (ISO2) or EU aggregate (EU27_2020).",
        "partner": "Partner country (ISO2), or a Comext aggregate/pseudo-partner (EXT_EU27_2020, QV, ...).",
        "product_cn8": "Combined Nomenclature 8-digit product code.",
        "flow": "import (Comext flow 1) or export (flow 2), seen from the reporter.",
        "period": "First day of the period.",
        "period_code": "Period as published: YYYY-MM (monthly) or YYYY (annual).",
        "value_eur": "Trade value in euro (VALUE_IN_EUROS).",
        "quantity_kg": "Quantity in kilograms (QUANTITY_IN_100KG x 100).",
    },
)

ENDPOINT = Endpoint(
    "EUJP_COMEXT_URL", "https://ec.europa.eu/eurostat",
    "Eurostat Comext dissemination API (SDMX 2.1, SDMX-CSV); not the main api/dissemination/sdmx path.",
)


def comext_watermark(newest: str) -> str:
    """Comext revises the months of the current and the previous year: restart at January of the year
    before the newest month ('2025-06' -> '2024-01'; an annual '2025' counts as its December)."""
    year = int(newest[:4])
    return f"{year - 1:04d}-01"


# The 27 member states as Comext codes them (Greece is GR, not Eurostat's EL), after the EU aggregate.
EU27_MEMBERS = ("AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT",
                "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK")

COMEXT_DEFAULTS = {
    "EUJP_COMEXT_FREQ": "M",
    "EUJP_COMEXT_REPORTERS": ",".join(("EU27_2020", *EU27_MEMBERS)),  # empty = every reporter
    "EUJP_COMEXT_PARTNERS": "JP",
    "EUJP_COMEXT_PRODUCTS": "",  # CN8 codes; empty = every CN8 code of the product codelist
    "EUJP_COMEXT_FLOWS": "1,2",  # 1 import, 2 export
    "EUJP_COMEXT_INDICATORS": "VALUE_IN_EUROS,QUANTITY_IN_100KG",
    "EUJP_COMEXT_START": "2002-01",  # first month of the first (full) extraction
    "EUJP_COMEXT_SLICE_MONTHS": "24",  # months per planned slice: the revision window is one (a 413 splits further)
    "EUJP_COMEXT_MAX_PRODUCTS_PER_REQUEST": "400",  # CN8 codes per request: keeps the URL a few kB long
    "EUJP_COMEXT_MAX_REQUESTS": "20000",  # per slice fetched (a full load of every product is thousands)
    "EUJP_COMEXT_CODELIST": "CXT_NC",  # the product codelist (agency ESTAT)
    "EUJP_COMEXT_HISTORY_MONTHS": "",  # months of history a run fetches at most (empty: all at once)
    "EUJP_COMEXT_ASYNC_POLL_SECONDS": "15",  # an asynchronous answer's status asked at most this many s apart
    "EUJP_COMEXT_ASYNC_WAIT_SECONDS": "1800",  # and waited for at most this long (per answer)
}
# Eurostat API guide, fault code 100: "No results found" (HTTP 400 or 404) for an empty selection. A 204 No
# Content is taken the same way (HTTP: the request succeeded and there is nothing to send; SDMX 2.1 REST names
# 404, but a proxy or a later version of the service may say it so); an empty 200 stays an error (a cut body).
_NO_RESULTS = ("no results found", "no_results_found", "<faultcode>100</faultcode>")
_CN8 = re.compile(r"^[0-9]{8}$")
_COMEXT_API = "/api/comext/dissemination"  # the Comext dissemination API, under the base URL
_SDMX_STRUCTURE = f"{_COMEXT_API}/sdmx/2.1"
_LOST_TICKETS = 3  # asynchronous deliveries of one slice lost (EXPIRED, unknown key) before the slice fails
EXPECT_XML = Expect("any", ("application/vnd.sdmx.structure+xml", "application/xml"))


def comext_setting(env: Mapping[str, str], name: str) -> str:
    value = env.get(name)
    return COMEXT_DEFAULTS[name] if value is None else value


def comext_int(env: Mapping[str, str], name: str) -> int:
    raw = comext_setting(env, name)
    try:
        value = int(raw)
    except ValueError:
        raise ExtractError(f"{name}={raw!r} is not an integer") from None
    if value < 1:
        raise ExtractError(f"{name}={raw!r} must be at least 1")
    return value


def comext_history_months(env: Mapping[str, str]) -> int | None:
    """EUJP_COMEXT_HISTORY_MONTHS: the months of history one run fetches at most (None: all at once)."""
    return comext_int(env, "EUJP_COMEXT_HISTORY_MONTHS") if comext_setting(env, "EUJP_COMEXT_HISTORY_MONTHS") \
        else None


def comext_history_start(env: Mapping[str, str], run_date: date | None, before: str | None) -> str:
    """The first month whose history this run fetches whole: EUJP_COMEXT_START, or, with EUJP_COMEXT_HISTORY_MONTHS
    = n, the newest n months of the history still missing: those up to the run month on a first (or full)
    extraction (`before` None), those before `before` (the first month fetched so far) on the runs after it.
    Each run records the month it reached as its request scope's start (`comext_scope_fetched`), so the next
    one fetches the n months before it (eujp.incremental.scope_widening), until EUJP_COMEXT_START is reached:
    a first load of every product since 2002, thousands of requests, is spread over runs that each fit the
    source's HTTP budget, each loading what it fetched."""
    first = comext_start(env, run_date)
    months = comext_history_months(env)
    if months is None:
        return first
    if before is None and run_date is None:
        raise ValueError("a first extraction's history ends at the run's month: give run_date")
    last = month_add(before, -1) if before else f"{run_date.year:04d}-{run_date.month:02d}"
    return max(first, month_add(last, -(months - 1)))


def comext_scope_fetched(scope: dict, previous: Mapping | None, env: Mapping[str, str], run_date: date,
                         watermark: str | None = None) -> dict:
    """The part of this run's request scope `scope` that its extraction fetches in full, given the scope the last
    successful one recorded (`previous`; None: a first or forced extraction) and its watermark: `scope` itself,
    but for its first month when the history is fetched in stages (`comext_history_start`), or, when the codes
    added to one list (a partner, say) have their history fetched in stages, with a `stage` record of the month
    they are fetched from (`comext_added_start`; `comext_backfill` plans the months before it on the next run).
    Recorded as the extraction's scope; decided as `plan_comext` decides what to fetch."""
    months = comext_history_months(env)
    backfill = comext_backfill(previous, scope, staged=months is not None)
    if backfill is not None and backfill.setting not in (None, "EUJP_COMEXT_PRODUCTS"):
        first = comext_history_start(env, None, backfill.before) if backfill.before else \
            comext_added_start(env, run_date, comext_incremental_start(env, run_date, watermark))
        if first <= comext_start(env):
            return scope
        name = next(n for n, setting in _SCOPE_LISTS.items() if setting == backfill.setting)
        return {**scope, STAGE: {"list": name, "codes": sorted(backfill.added), "start": first}}
    if months is None:
        return scope
    if previous is None or (backfill is not None and backfill.full is not None):
        return {**scope, "start": comext_history_start(env, run_date, None)}
    if backfill is not None and backfill.before is not None:
        return {**scope, "start": comext_history_start(env, run_date, backfill.before)}
    return scope


def comext_added_start(env: Mapping[str, str], run_date: date, incremental_start: str) -> str:
    """The first month of the history fetched for codes added to a list (a partner, reporter or flow): all of it
    (EUJP_COMEXT_START), or, with the history in stages (EUJP_COMEXT_HISTORY_MONTHS = n), the newest n months,
    and at least those from the incremental request's first month (`incremental_start`), so that the runs after
    it fetch their months with the other codes' (with `updatedAfter`) and the months before them whole, never
    the same month twice."""
    return min(comext_history_start(env, run_date, None), max(incremental_start, comext_start(env, run_date)))


def comext_async_wait(env: Mapping[str, str]) -> dict[str, float]:
    """How an asynchronous answer is waited for (eujp.eurostat_async.await_delivery): EUJP_COMEXT_ASYNC_POLL_SECONDS
    between two status requests, EUJP_COMEXT_ASYNC_WAIT_SECONDS at most per answer (seconds, decimals allowed)."""
    values = {}
    for key, name in (("poll_seconds", "EUJP_COMEXT_ASYNC_POLL_SECONDS"),
                      ("wait_seconds", "EUJP_COMEXT_ASYNC_WAIT_SECONDS")):
        raw = comext_setting(env, name)
        try:
            value = float(raw)
        except ValueError:
            raise ExtractError(f"{name}={raw!r} is not a number of seconds") from None
        if not 0 < value < float("inf"):
            raise ExtractError(f"{name}={raw!r} must be a positive number of seconds")
        values[key] = value
    return values


# The settings whose codes make up the request's key, by their name in the request scope (`comext_scope`).
_SCOPE_LISTS = {"freq": "EUJP_COMEXT_FREQ", "reporters": "EUJP_COMEXT_REPORTERS",
                "partners": "EUJP_COMEXT_PARTNERS", "products": "EUJP_COMEXT_PRODUCTS",
                "flows": "EUJP_COMEXT_FLOWS", "indicators": "EUJP_COMEXT_INDICATORS"}
# The lists whose added codes a backfill fetches alone: each is part of every fact row's key, so the rows of
# the codes added are keys of their own. An indicator or a frequency added is fetched with the whole history
# instead: a fact row joins both indicators of its key, and a backfill of one would reject the other's rows.
_BACKFILLED = ("reporters", "partners", "products", "flows")
# The request scope's record (eujp.incremental.STAGE) of codes added to a list whose history is fetched in stages
# (EUJP_COMEXT_HISTORY_MONTHS), {"list": "partners", "codes": ["CN"], "start": "2024-01"}: their months from
# "start" on are fetched, those before it are still to fetch (comext_scope_fetched, comext_backfill); a replay
# of days that fetched them from a later month than the rest records one too (eujp.incremental.merge_scopes).


_START = re.compile(r"^[0-9]{4}(-(0[1-9]|1[0-2]))?$")


def comext_start(env: Mapping[str, str], run_date: date | None = None) -> str:
    """EUJP_COMEXT_START as a month (a year counts as its January). Anything but YYYY or YYYY-MM, or (given the
    run's date, UTC: LiveContext.run_date, Settings.run_date) a month after the run's, is an ExtractError naming
    the setting (months are compared as text: '2002-1' would sort after '2002-07')."""
    start = (comext_setting(env, "EUJP_COMEXT_START") or COMEXT_DEFAULTS["EUJP_COMEXT_START"]).strip()
    if not _START.match(start):
        raise ExtractError(f"EUJP_COMEXT_START={start!r} is not a month: write YYYY-MM (e.g. 2002-01) or a year")
    month = f"{start}-01" if len(start) == 4 else start
    if run_date is not None and month > f"{run_date:%Y-%m}":  # the request would end before it starts
        raise ExtractError(f"EUJP_COMEXT_START={start!r} is later than this month ({run_date:%Y-%m}, the run's UTC "
                           "month): the dataflow has no month after it")
    return month


@functools.lru_cache(maxsize=1)
def _country_codes() -> frozenset[str]:
    """The ISO 3166 alpha-2 codes of the reference seed (data/reference/countries.csv, what dim_country holds); a
    byte-order mark (a seed saved by Excel) dropped."""
    with (REFERENCE_DIR / "countries.csv").open(encoding="utf-8-sig", newline="") as f:
        return frozenset(row["iso2"].strip() for row in csv.DictReader(f) if (row.get("iso2") or "").strip())


# What a code of each list may be: the codes the transform loads (transforms/comext_goods.py), so that a code
# the service would answer with nothing, or whose rows would all be rejected, is refused before any request.
# Eurostat's own codes for Greece and the United Kingdom are not Comext's (EL -> GR, UK -> GB), nor is ISO 3166's
# for Serbia, in the reference seed: the Comext geonomenclature (Commission Implementing Regulation (EU)
# 2020/1470) follows ISO 3166 alpha-2 but for XS Serbia, XK Kosovo, XC Ceuta and XL Melilla (RS -> XS; see
# eujp/marts/mart_product_trade.sql; FORMATS.md lists XS among Comext's partner codes).
_NOT_COMEXT = frozenset({"RS"})
_CODE_HINTS = {"EL": "EL is Eurostat's code for Greece, Comext's is GR",
               "UK": "UK is Eurostat's code for the United Kingdom, Comext's is GB",
               "RS": "RS is ISO 3166's code for Serbia, the Comext geonomenclature's is XS",
               "IMPORT": "an import is flow 1", "EXPORT": "an export is flow 2"}


@functools.lru_cache(maxsize=len(_SCOPE_LISTS))  # read for every request's key: thousands in a full load
def _allowed_codes(setting: str) -> tuple[Callable[[str], bool], str]:
    countries = _country_codes()
    if setting == "EUJP_COMEXT_REPORTERS":
        known = (countries - _NOT_COMEXT) | set(transform.COMEXT_ISO_EXTRAS) | set(transform.COMEXT_EU_REPORTERS)
        return known.__contains__, "an ISO 3166 country code or an EU aggregate (EU27_2020, EU28, ...)"
    if setting == "EUJP_COMEXT_PARTNERS":
        known = (countries - _NOT_COMEXT) | set(transform.COMEXT_ISO_EXTRAS) | set(transform.COMEXT_PARTNER_AGGREGATES)
        return known.__contains__, "an ISO 3166 country code or a Comext aggregate (EXT_EU27_2020, ...)"
    if setting == "EUJP_COMEXT_PRODUCTS":
        return (lambda c: bool(_CN8.match(c))), "a CN8 code: 8 digits, e.g. 84834030"
    if setting == "EUJP_COMEXT_FLOWS":
        return set(transform.COMEXT_FLOWS).__contains__, "1 (import) or 2 (export)"
    if setting == "EUJP_COMEXT_INDICATORS":
        return set(transform.COMEXT_INDICATORS).__contains__, " or ".join(transform.COMEXT_INDICATORS)
    return {"M", "A"}.__contains__, "M (monthly) or A (annual)"  # EUJP_COMEXT_FREQ


def comext_codes(env: Mapping[str, str], setting: str) -> tuple[str, ...]:
    """The codes of one of the request key's list settings (`_SCOPE_LISTS`), upper case, each once (`env_codes`;
    empty: every code). A code the transform would not load (an unknown country, a 6-digit product, a flow
    'import') is an ExtractError naming the setting and what it may hold: the service answers such a key with
    no observations, and the run would end 'unchanged' with no rows, or without that code's rows."""
    codes = env_codes(env, setting, COMEXT_DEFAULTS[setting])
    allowed, what = _allowed_codes(setting)
    bad = [c for c in codes if not allowed(c)]
    if bad:
        hints = [_CODE_HINTS[c] for c in bad if c in _CODE_HINTS]
        raise ExtractError(f"{setting}: {', '.join(map(repr, bad))} {'is' if len(bad) == 1 else 'are'} not "
                           f"{what}" + (f" ({'; '.join(hints)})" if hints else ""))
    return codes


def comext_scope(env: Mapping[str, str], run_date: date | None = None) -> dict:
    """What the live request asks for (Source.request_scope): each list of codes of its key, sorted ('*' for an
    empty setting: every code), and its first month. Reads every code setting of the key, the start, the history
    in stages and the asynchronous waits the way the plan does, so a bad one raises here too (the preflight's
    check of the settings calls it, with the run's date: a start after the run's month is refused there)."""
    scope: dict = {name: sorted(comext_codes(env, setting)) or [ALL_CODES]
                   for name, setting in _SCOPE_LISTS.items()}
    scope["start"] = comext_start(env, run_date)
    comext_history_months(env)  # the plan's other settings, read here for the preflight's check alone
    comext_async_wait(env)
    return scope


@dataclass(frozen=True)
class Backfill:
    """How the history that a widened request scope adds is fetched (`comext_backfill`): the codes `added` to one
    list of the key (`setting`; for products, None: the codes not asked for before) over every month from the
    first; or the months from the new first month up to the previous one (`before`); or, when neither describes
    it, the whole history again (`full`: why)."""

    setting: str | None = None
    added: tuple[str, ...] | None = None
    before: str | None = None
    full: str | None = None


def comext_backfill(previous: Mapping | None, current: Mapping | None, *, staged: bool = False) -> Backfill | None:
    """What this run must fetch beyond its incremental request, given the request scope of the last successful
    extraction (`previous`) and this run's (`current`); None when the settings ask for no more than it did.
    `staged`: the history is fetched in stages (EUJP_COMEXT_HISTORY_MONTHS); every product asked for where a
    list was is then fetched again whole, in stages, rather than every other product's history in one run.

    A `stage` record of `previous` (codes added to a list whose history is fetched from a later month than the
    rest: `comext_scope_fetched`) still asked for is the months before it (`Backfill.before` with the codes); when
    the settings widen something else as well, the staged codes count as not fetched and are fetched again with
    what was added."""
    stage = _pending_stage(previous, current)
    if stage is not None:
        unstaged = {**previous, stage["list"]: [c for c in previous[stage["list"]] if c not in stage["codes"]]}
        if scope_widening(unstaged, current) == {stage["list"]: stage["codes"]}:
            return Backfill(setting=_SCOPE_LISTS[stage["list"]], added=tuple(stage["codes"]), before=stage["start"])
        previous = unstaged
    widened = scope_widening(previous, current)
    if not widened:
        return None
    why = describe_widening(widened)
    lists = [name for name in widened if name != "start"]
    if len(lists) > 1 or (lists and "start" in widened):
        return Backfill(full=f"{why}: more than one part of the request widened")
    if not lists:
        return Backfill(before=previous["start"])
    name, codes = lists[0], widened[lists[0]]
    if name not in _BACKFILLED:
        because = " (a fact row joins both indicators of its key)" if name == "indicators" else ""
        return Backfill(full=f"{why}: {name} added are fetched with the whole history{because}")
    if codes == ALL_CODES:
        if name != "products":
            return Backfill(full=f"{why}: every {name[:-1]} is asked for now, which no list of codes describes")
        if staged:
            return Backfill(full=f"{why}: with the history in stages (EUJP_COMEXT_HISTORY_MONTHS) every product's "
                                 "history is fetched again, in stages")
        return Backfill(setting=_SCOPE_LISTS[name])  # the codelist's codes not asked for before
    return Backfill(setting=_SCOPE_LISTS[name], added=tuple(codes))


def _pending_stage(previous: Mapping | None, current: Mapping | None) -> dict | None:
    """The `stage` record of `previous` (`comext_scope_fetched`) with the codes of it that both scopes ask for,
    when some are and `current` starts before the stage's month; else None (its history is whole, or no longer
    asked for)."""
    stage = (previous or {}).get(STAGE)
    if not isinstance(stage, dict) or not current or stage.get("list") not in _BACKFILLED:
        return None
    held, asked = previous.get(stage["list"]) or [], current.get(stage["list"]) or []
    codes = sorted(c for c in stage.get("codes", ()) if c in held and (c in asked or ALL_CODES in asked))
    if not codes or not current.get("start") or current["start"] >= stage.get("start", ""):
        return None
    return {**stage, "codes": codes}


@dataclass(frozen=True)
class ComextSlice:
    """One Comext request: a month range and the products it asks for (empty = all); `key`: settings of the
    request's key that this slice asks for instead of the run's (a backfill of the partners added, say)."""

    start: str  # YYYY-MM
    end: str  # YYYY-MM
    products: tuple[str, ...]
    key: tuple[tuple[str, str], ...] = ()  # (setting, its value) pairs, e.g. (("EUJP_COMEXT_PARTNERS", "CN"),)

    def settings(self, env: Mapping[str, str]) -> Mapping[str, str]:
        """`env` with this slice's `key` settings in place of the run's."""
        return {**env, **dict(self.key)} if self.key else env

    def months(self) -> list[str]:
        months, m = [], self.start
        while m <= self.end:
            months.append(m)
            m = month_add(m, 1)
        return months

    def split(self, *, years: bool = False) -> list[ComextSlice]:
        """Halves of the period range; for a single month, one slice per product chapter (2-digit
        prefix); for a single chapter, halves of its product list. [] when it cannot be split. `years` (annual
        data asked for, EUJP_COMEXT_FREQ with A): the period range is cut between whole years only, since a
        year's figure answers any of its months, so a year cut in two would be fetched twice."""
        months = self.months()
        if years:
            first, last = int(self.start[:4]), int(self.end[:4])
            if last > first:
                mid = first + (last - first + 1) // 2
                return [replace(self, end=f"{mid - 1:04d}-12"), replace(self, start=f"{mid:04d}-01")]
        elif len(months) > 1:
            mid = len(months) // 2
            return [replace(self, end=months[mid - 1]), replace(self, start=months[mid])]
        chapters: dict[str, list[str]] = {}
        for p in self.products:
            chapters.setdefault(p[:2], []).append(p)
        if len(chapters) > 1:
            return [replace(self, products=tuple(ps)) for _, ps in sorted(chapters.items())]
        if len(self.products) > 1:
            mid = len(self.products) // 2
            return [replace(self, products=self.products[:mid]), replace(self, products=self.products[mid:])]
        return []

    def describe(self) -> str:
        products = "+".join(self.products) if len(self.products) <= 4 else (
            f"{len(self.products)} products in chapter(s) {'+'.join(sorted({p[:2] for p in self.products}))}"
            f" ({self.products[0]}..{self.products[-1]})")
        key = "".join(f", {name.removeprefix('EUJP_COMEXT_').lower()} {value}" for name, value in self.key)
        return f"{self.start}..{self.end} {products or 'all products'}{key}"


def annual_data(env: Mapping[str, str]) -> bool:
    """Whether the request asks for annual figures (EUJP_COMEXT_FREQ holds A): its periods are cut by years."""
    return "A" in comext_codes(env, "EUJP_COMEXT_FREQ")


def comext_key(env: Mapping[str, str], products: tuple[str, ...]) -> str:
    """`{freq}.{reporters}.{partners}.{products}.{flows}.{indicators}` (codes joined by '+')."""
    def part(name: str) -> str:
        return "+".join(comext_codes(env, name))

    return ".".join([part("EUJP_COMEXT_FREQ"), part("EUJP_COMEXT_REPORTERS"), part("EUJP_COMEXT_PARTNERS"),
                     "+".join(products), part("EUJP_COMEXT_FLOWS"), part("EUJP_COMEXT_INDICATORS")])


def comext_request(base: str, env: Mapping[str, str], piece: ComextSlice,
                   updated_after: str | None = None) -> tuple[str, list[tuple[str, str]]]:
    env = piece.settings(env)
    url = f"{base}{_SDMX_STRUCTURE}/data/{COMEXT_DATAFLOW}/{comext_key(env, piece.products)}"
    params = [("startPeriod", piece.start), ("endPeriod", piece.end), ("format", "SDMX-CSV"),
              ("compressed", "false")]
    if updated_after:
        params.append(("updatedAfter", updated_after))
    return url, params


def dataflow_url(base: str) -> str:
    return f"{base}{_SDMX_STRUCTURE}/dataflow/ESTAT/{COMEXT_DATAFLOW}"


def codelist_url(base: str, env: Mapping[str, str]) -> str:
    return f"{base}{_SDMX_STRUCTURE}/codelist/ESTAT/{comext_setting(env, 'EUJP_COMEXT_CODELIST')}"


# --- SDMX-ML 2.1 structure messages --------------------------------------------------------------------

def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def parse_update_data(data: bytes) -> datetime | None:
    """The dataflow's UPDATE_DATA annotation ("when the dataset data last changed", e.g.
    '2023-05-10T11:00:00+0200'), None when the message has none."""
    try:
        root = SafeET.fromstring(data)
    except SafeET.ParseError as exc:
        raise ExtractError(f"the dataflow of {COMEXT_DATAFLOW} is not XML: {exc}") from None
    for annotation in root.iter():
        if _local(annotation.tag) != "Annotation":
            continue
        fields = {_local(child.tag): (child.text or "").strip() for child in annotation}
        if fields.get("AnnotationType") == "UPDATE_DATA":
            value = fields.get("AnnotationTitle") or fields.get("AnnotationText") or ""
            for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z"):
                try:
                    return datetime.strptime(value, fmt)
                except ValueError:
                    continue
            raise ExtractError(f"the dataflow of {COMEXT_DATAFLOW}: UPDATE_DATA {value!r} is not a timestamp")
    return None


def parse_cn_codelist(data: bytes) -> pl.DataFrame:
    """An SDMX-ML 2.1 codelist (structure message) -> one row per CN8 code (8 digits; chapters, headings
    and Comext's pseudo-codes left out): product_code, product_label (the English name, else the first),
    codelist ('ESTAT:CXT_NC(version)'). Streamed (the full CXT_NC is tens of MB)."""
    rows: list[tuple[str, str | None, str]] = []
    codelist, codes_seen = "", 0
    try:
        for event, elem in SafeET.iterparse(io.BytesIO(data), events=("start", "end")):
            name = _local(elem.tag)
            if event == "start" and name == "Codelist":
                codelist = f"{elem.get('agencyID', '')}:{elem.get('id', '')}({elem.get('version', '')})"
            elif event == "end" and name == "Code":
                codes_seen += 1
                code = elem.get("id") or ""
                if _CN8.match(code):
                    names = [(n.get(_XML_LANG), (n.text or "").strip()) for n in elem if _local(n.tag) == "Name"]
                    label = next((t for lang, t in names if lang == "en"), names[0][1] if names else None)
                    rows.append((code, label or None, codelist))
                elem.clear()
    except SafeET.ParseError as exc:
        raise ParseError(f"not an SDMX-ML codelist: {exc}") from None
    if not codes_seen:
        raise ParseError("not an SDMX-ML 2.1 codelist: no Code element")
    return pl.DataFrame(rows, schema={"product_code": S, "product_label": S, "codelist": S}, orient="row")


LABELS_TABLE = Table(
    name="ref_cn8_labels",
    description="CN8 product descriptions as Comext publishes them (the product codelist of DS-045409, "
    "ESTAT:CXT_NC), one row per CN8 code, as of the last load that fetched the codelist; names "
    "dim_product's CN8 rows.",
    columns={"product_code": S, "product_label": S, "codelist": S, "run_id": S, "loaded_at": TS},
    natural_key=("product_code",),
    is_fact=False,
    column_docs={
        "product_code": "CN8 code (8 digits).",
        "product_label": "Its English description in the codelist.",
        "codelist": "The codelist it came from: agency:id(version).",
        "run_id": "Run that loaded the label.",
        "loaded_at": "When it was loaded.",
    },
)


COVERAGE_TABLE = Table(
    name="etl_comext_coverage",
    description="Where fact_goods_trade_product holds every CN8 product: one row per reporter, partner, flow and "
    "month that a successful live extraction asked for with the whole product codelist (EUJP_COMEXT_PRODUCTS "
    "empty), its slices with no observations or nothing changed included. Written from the coverage statement "
    "landed with the data (eujp.sources.comext_goods), so a replay of the raw zone writes it again; a run of "
    "listed products writes none. eujp.reconcile compares a year covered in all 12 months two-sided.",
    columns={"reporter": S, "partner": S, "flow": S, "period": D, "codelist": S, "run_id": S, "loaded_at": TS},
    natural_key=("reporter", "partner", "flow", "period"),
    is_fact=False,
    column_docs={
        "reporter": "Reporter asked for, as in fact_goods_trade_product ('*': every reporter, the request named none).",
        "partner": "Partner asked for, as in fact_goods_trade_product ('*': every partner).",
        "flow": "import or export ('*': both, the request named no flow).",
        "period": "First day of the month covered with every CN8 product.",
        "codelist": "The product codelist whose every CN8 code was asked for: agency:id(version).",
        "run_id": "Run that last loaded the statement for this month.",
        "loaded_at": "When it was loaded.",
    },
)
COVERAGE_KIND = "coverage"
_ALL = "*"


def coverage_statement(env: Mapping[str, str], start: str, end: str, codelist: str) -> dict | None:
    """What an extraction of every CN8 code of `codelist` from `start` to `end` covers (JSON-ready), or None
    when it covers no month with all products and all values: other frequencies than monthly, or no
    VALUE_IN_EUROS among the indicators asked. Empty code lists (every reporter, partner, flow) are '*'."""
    def part(name: str) -> list[str]:
        return sorted(comext_codes(env, name)) or [_ALL]

    indicators = comext_codes(env, "EUJP_COMEXT_INDICATORS")
    if comext_codes(env, "EUJP_COMEXT_FREQ") != ("M",) or (
            indicators and "VALUE_IN_EUROS" not in indicators):
        return None
    return {"dataflow": COMEXT_DATAFLOW, "products": "all", "codelist": codelist, "freq": "M",
            "reporters": part("EUJP_COMEXT_REPORTERS"), "partners": part("EUJP_COMEXT_PARTNERS"),
            "flows": [transform.COMEXT_FLOWS.get(f, f) for f in part("EUJP_COMEXT_FLOWS")],
            "start": start, "end": end}


def parse_coverage(data: bytes) -> pl.DataFrame:
    """A coverage payload (`coverage_statement` as JSON, or a list of them: `comext_coverage`) -> rows of
    etl_comext_coverage (its columns but run_id and loaded_at): every reporter x partner x flow x month from
    start to end of each statement."""
    try:
        statements = json.loads(data)
        rows = []
        for stated in statements if isinstance(statements, list) else [statements]:
            months = ComextSlice(stated["start"], stated["end"], ()).months()
            rows += [(r, p, f, f"{m}-01", stated["codelist"]) for r in stated["reporters"]
                     for p in stated["partners"] for f in stated["flows"] for m in months]
    except (ValueError, KeyError, TypeError) as exc:
        raise ParseError(f"not a Comext coverage statement: {exc}") from None
    return pl.DataFrame(rows, schema={"reporter": S, "partner": S, "flow": S, "period": S, "codelist": S},
                        orient="row").with_columns(pl.col("period").str.to_date("%Y-%m-%d"))



def comext_landed_scope(payloads: list[RawPayload]) -> dict | None:
    """The request scope (`comext_scope`) that landed payloads of live extractions asked for in full, read from
    their coverage statements (Source.landed_scope): the reporters, partners and flows each stated, every
    product, monthly, the indicators of the statement's request (its URL's key); over several statements (a
    backfill's and the incremental request's) the union of the codes, from the latest first month among them
    (a replay of an incremental day holds no month before its own first one), or from an earlier one that
    statements of the same key reach without a gap (`_contiguous_start`: the history in stages). None when no statement was
    landed with them (a plan of listed products states none): what they asked for cannot be told, and is not
    assumed."""
    names = {name: code for code, name in transform.COMEXT_FLOWS.items()}
    scope, starts = None, []
    spans: list[tuple[str, str, tuple]] = []  # (start, end, the key's codes) of each statement
    for p in payloads:
        if p.kind != COVERAGE_KIND or not p.url.startswith(("http://", "https://")):
            continue
        try:
            statements = json.loads(p.read())
            key = p.url.split("?", 1)[0].rsplit("/", 1)[-1].split(".")
            indicators = sorted(c for c in key[5].split("+") if c) or [ALL_CODES]
            for stated in statements if isinstance(statements, list) else [statements]:
                scope = merge_scopes(scope, {
                    "freq": ["M"], "products": [ALL_CODES], "indicators": indicators,
                    "reporters": sorted(stated["reporters"]), "partners": sorted(stated["partners"]),
                    "flows": sorted(names.get(f, f) for f in stated["flows"])})
                starts.append(stated["start"])
                spans.append((stated["start"], stated.get("end") or stated["start"], (
                    tuple(indicators), tuple(sorted(stated["reporters"])), tuple(sorted(stated["partners"])),
                    tuple(sorted(stated["flows"])))))
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise ParseError(f"{p.name}: not a Comext coverage statement: {exc}") from None
    if scope is None:
        return None
    # one first month for every code (the statements' own, below): what a merge of statements of other first
    # months would record as a stage is within it
    return {**{k: v for k, v in scope.items() if k != STAGE}, "start": _contiguous_start(spans, max(starts))}


def _contiguous_start(spans: list[tuple[str, str, tuple]], latest: str) -> str:
    """The first month from which the statements `spans` cover their key without a gap: `latest` (the latest
    first month among them), moved back over statements of the same key that end the month before it (a run
    of the history in stages lands the months before the first one reached beside its incremental request:
    EUJP_COMEXT_HISTORY_MONTHS), unless a statement of another key starts after the month it reaches."""
    keys = {key for start, _, key in spans if start == latest}
    start, moved = latest, True
    while moved:
        moved = False
        for first, last, key in spans:
            if key in keys and first < start and last == month_add(start, -1):
                start, moved = first, True
    return start if all(first <= start or key in keys for first, _, key in spans) else latest

# --- the request plan ------------------------------------------------------------------------------------

@dataclass
class ComextPlan:
    """What `plan_comext` decided: the slices to fetch (none: nothing new, `note` says why), the `updatedAfter`
    they are sent with, the codelist payload (to land with the data) and, for a plan of every CN8 code of the
    codelist, the coverage payload (landed with the data of a successful extraction only)."""

    slices: list[ComextSlice]
    updated_after: str | None = None
    codelist: RawPayload | None = None
    coverage: RawPayload | None = None
    note: str = ""
    products: tuple[str, ...] = field(default=(), repr=False)
    # the history a widened request scope adds (`comext_backfill`): fetched whole, without `updatedAfter`
    backfill: list[ComextSlice] = field(default_factory=list)


def comext_period_range(ctx: LiveContext, *, full: bool = False) -> tuple[str, str]:
    """(first, last month) of the run's request: `comext_incremental_start` (`full`: as on a first extraction) to
    the run month."""
    start = comext_incremental_start(ctx.env, ctx.run_date, None if full else ctx.watermark)
    end = f"{ctx.run_date.year:04d}-{ctx.run_date.month:02d}"
    if start > end:
        raise ExtractError(f"{ctx.source}: watermark/start period {start} is after the run month {end}")
    return start, end


def comext_incremental_start(env: Mapping[str, str], run_date: date, watermark: str | None) -> str:
    """The first month of the run's request: the watermark's, or EUJP_COMEXT_START where that is later (a start
    moved past the watermark: the months before it were never asked for, so no slice fetches them and no coverage
    claims them); without a watermark (a first or full extraction), EUJP_COMEXT_START, or the newest months of
    the history in stages (`comext_history_start`)."""
    if not watermark:
        return comext_history_start(env, run_date, None)
    return max(_month(watermark), comext_start(env, run_date))


def _month(period: str) -> str:
    """A month (YYYY-MM) from a month or a year (its January)."""
    return f"{period}-01" if len(period) == 4 else period


def comext_first_slice(ctx: LiveContext) -> ComextSlice:
    """The whole request, before any split (products as configured; empty = all)."""
    start, end = comext_period_range(ctx)
    return ComextSlice(start, end, comext_codes(ctx.env, "EUJP_COMEXT_PRODUCTS"))


def plan_slices(products: tuple[str, ...], start: str, end: str, *, months_per_slice: int,
                products_per_request: int, years: bool = False) -> list[ComextSlice]:
    """Chapters (2-digit prefixes) of `products`, each cut into lists of at most `products_per_request` codes,
    times runs of at most `months_per_slice` months from `start` to `end`: chapter-major, in code order.
    `years` (annual data asked for): the runs end in December, each of whole years (at least one), so that
    no year is asked for by two slices."""
    chapters: dict[str, list[str]] = {}
    for p in sorted(set(products)):
        chapters.setdefault(p[:2], []).append(p)
    lists = [tuple(codes[i:i + products_per_request]) for _, codes in sorted(chapters.items())
             for i in range(0, len(codes), products_per_request)] or [()]
    periods, m = [], start
    while m <= end:
        if years:
            last = min(f"{int(m[:4]) + max(1, months_per_slice // 12) - 1:04d}-12", end)
        else:
            last = min(month_add(m, months_per_slice - 1), end)
        periods.append((m, last))
        m = month_add(last, 1)
    return [ComextSlice(a, b, codes) for codes in lists for a, b in periods]


def plan_comext(ctx: LiveContext) -> ComextPlan:
    """The slices of this run's extraction (see the module's docstring). Costs one request (the dataflow)
    when nothing changed since the last successful extraction; else the dataflow and the codelist.

    When the settings ask for more than the last successful extraction did (`comext_backfill`: a partner,
    reporter, flow or product added, an earlier EUJP_COMEXT_START), the history of what they add is planned
    as well (`ComextPlan.backfill`, fetched whole from its first month), beside the incremental request of
    what was asked before; a widening that no such part describes (an indicator added, or two lists at once)
    makes the whole extraction full, as the first one was."""
    if dropped := narrowed_indicators(ctx.previous_scope, ctx.scope):
        columns = ", ".join(transform.COMEXT_INDICATORS[c] for c in dropped)
        raise ExtractError(
            f"{ctx.source}: EUJP_COMEXT_INDICATORS={','.join(ctx.scope['indicators'])} leaves out "
            f"{', '.join(dropped)}, which the last successful extraction asked for: a fact row holds both "
            f"indicators, so every row this run refreshes would lose its {columns}. Ask for "
            f"{', '.join(transform.COMEXT_INDICATORS)} again, or run with --force to reload every row without it")
    backfill = comext_backfill(ctx.previous_scope, ctx.scope, staged=comext_history_months(ctx.env) is not None)
    full = backfill is not None and backfill.full is not None
    if full:
        log.info("%s: the whole history is fetched again: %s", ctx.source, backfill.full)
        backfill = None
    updated_after = None if full else ctx.updated_after
    unchanged = ""  # why the incremental request has nothing to fetch (the dataflow did not change)
    if updated_after is not None:
        response = ctx.client.get(dataflow_url(ctx.base), expect=EXPECT_XML, pass_statuses=(404,))
        changed = parse_update_data(response.content) if response.status == 200 else None
        since = ctx.state.requested_at.replace(tzinfo=ctx.state.requested_at.tzinfo or UTC)
        if changed is not None and changed <= since:
            unchanged = (f"the dataflow's data last changed {changed.isoformat()}, before the last successful "
                         f"extraction ({since.isoformat()})")
            if backfill is None:
                return ComextPlan([], updated_after, note=unchanged)
    response = ctx.client.get(codelist_url(ctx.base, ctx.env), expect=EXPECT_XML)
    codelist = ctx.payload(f"codelist {comext_setting(ctx.env, 'EUJP_COMEXT_CODELIST')} of {COMEXT_DATAFLOW}",
                           response, kind=LABELS.kind)
    try:
        codes = parse_cn_codelist(response.content)
    except ParseError as exc:
        raise ExtractError(f"{ctx.source}: GET {response.url}: {exc}; first bytes: {response.text_preview()}") from None
    known = tuple(codes.get_column("product_code"))
    listed = comext_codes(ctx.env, "EUJP_COMEXT_PRODUCTS")
    products = listed or known
    if not products:
        raise ExtractError(f"{ctx.source}: the codelist at {response.url} lists no CN8 code")
    start, end = comext_period_range(ctx, full=full)
    if full or not ctx.watermark:
        _log_stage(ctx, start, end)
    sizes = {"months_per_slice": comext_int(ctx.env, "EUJP_COMEXT_SLICE_MONTHS"),
             "products_per_request": comext_int(ctx.env, "EUJP_COMEXT_MAX_PRODUCTS_PER_REQUEST"),
             "years": annual_data(ctx.env)}
    split = BackfillPlan(products=products, start=start)  # the incremental request alone
    if backfill is not None:
        split = plan_backfill(ctx, backfill, products, start, end, sizes)
        log.info("%s: the settings ask for more than the last successful extraction: %d slice(s) of history "
                 "from %s", ctx.source, len(split.slices), comext_start(ctx.env))
    slices = [] if unchanged or not split.products else [
        replace(s, key=split.key) for s in plan_slices(split.products, split.start, end, **sizes)]
    # The incremental part covers its months when fetched. From listed products to every product on a day the
    # dataflow did not change, nothing is fetched for the products asked before, but the last extraction did
    # fetch them and nothing changed since: with the backfill of the others, every product is covered, which no
    # earlier run could state (a run of listed products states none).
    widened_products = backfill is not None and backfill.setting == "EUJP_COMEXT_PRODUCTS"
    covered = split.covered + ([(split.key, split.start, end)]
                               if slices or (unchanged and split.products and widened_products) else [])
    coverage = None if listed else comext_coverage(ctx, covered, codes.get_column("codelist")[0])
    return ComextPlan(slices, updated_after, codelist, coverage, note=unchanged, products=products,
                      backfill=split.slices)


def narrowed_indicators(previous: Mapping | None, current: Mapping | None) -> list[str]:
    """The indicators the last successful extraction asked for (`previous` request scope) that this run's
    (`current`) does not: refreshed without them, the fact rows loaded with them would lose those figures (the
    transform makes one row of both indicators, a figure not asked for null)."""
    before, now = (previous or {}).get("indicators"), (current or {}).get("indicators")
    if not before or not now or ALL_CODES in now:
        return []
    return sorted((set(transform.COMEXT_INDICATORS) if ALL_CODES in before else set(before)) - set(now))


def _log_stage(ctx: LiveContext, first: str, last: str, codes: tuple[str, ...] = ()) -> None:
    """Log the months of history this run fetches, `first` to `last` (of the `codes` added to a list, if given),
    when they are a stage (EUJP_COMEXT_HISTORY_MONTHS: `first` after EUJP_COMEXT_START), and those left for the
    next runs."""
    start = comext_start(ctx.env)
    if first > start:
        log.info("%s: history in stages (EUJP_COMEXT_HISTORY_MONTHS)%s: %s..%s this run, %s..%s left for the next",
                 ctx.source, f" of {','.join(codes)}" if codes else "", first, last, start, month_add(first, -1))


@dataclass
class BackfillPlan:
    """A run's request cut in two by `plan_backfill`: the incremental request of what was asked before (the
    key's settings it asks for instead of the run's, its products, its first month) and the slices of the
    history the settings add, with the (key settings, first, last month) each part covers in full."""

    products: tuple[str, ...]
    start: str
    key: tuple[tuple[str, str], ...] = ()
    slices: list[ComextSlice] = field(default_factory=list)
    covered: list[tuple[tuple[tuple[str, str], ...], str, str]] = field(default_factory=list)


def plan_backfill(ctx: LiveContext, backfill: Backfill, products: tuple[str, ...], start: str, end: str,
                  sizes: Mapping[str, int]) -> BackfillPlan:
    """The run's request (`products`, from `start` to `end`) cut into the incremental request of what the last
    extraction asked for and the backfill of what the settings add (`comext_backfill`), fetched whole from
    EUJP_COMEXT_START: the codes added to one list of the key in slices of their own (a slice's `key`), or,
    for an earlier first month, the months before the previous first one.

    With the history in stages (EUJP_COMEXT_HISTORY_MONTHS), codes added to a list are fetched from
    `comext_added_start` on, and the next runs fetch the months before the stage's (`Backfill.before`), the
    incremental request asking for them with the others from then on."""
    first = comext_start(ctx.env)
    if backfill.setting == "EUJP_COMEXT_PRODUCTS":  # the products: the slices name them anyway
        earlier = set(ctx.previous_scope["products"])
        added = tuple(c for c in products if c not in earlier)
        # what the two parts cover together: every product from the incremental request's first month
        return BackfillPlan(products=tuple(c for c in products if c in earlier), start=start,
                            slices=plan_slices(added, first, end, **sizes) if added else [])
    if backfill.setting is not None:
        added = ((backfill.setting, ",".join(backfill.added)),)
        if backfill.before is None:
            first = comext_added_start(ctx.env, ctx.run_date, start)
        else:  # the months of the codes' history still to fetch (a stage: STAGE)
            first, last = comext_history_start(ctx.env, None, backfill.before), month_add(backfill.before, -1)
            if backfill.before <= start:  # the incremental request asks for the codes with the others
                _log_stage(ctx, first, last, backfill.added)
                return BackfillPlan(products=products, start=start, covered=[(added, first, last)], slices=[
                    replace(s, key=added) for s in plan_slices(products, first, last, **sizes)])
            # an incremental request from before the stage's month (a replay moved the watermark back): the
            # codes' months from the stage on are fetched whole again with the rest, not asked for twice
        kept = tuple(c for c in comext_codes(ctx.env, backfill.setting)
                     if c not in backfill.added)
        _log_stage(ctx, first, end, backfill.added)
        return BackfillPlan(products=products if kept else (),  # none kept: the backfill alone (empty = all)
                            start=start, key=((backfill.setting, ",".join(kept)),),
                            slices=[replace(s, key=added) for s in plan_slices(products, first, end, **sizes)],
                            covered=[(added, first, end)])
    last = month_add(backfill.before, -1)  # an earlier first month: the months no extraction asked for
    first = comext_history_start(ctx.env, None, backfill.before)  # all of them, or the newest (stages)
    _log_stage(ctx, first, last)
    return BackfillPlan(products=products, start=max(start, backfill.before),
                        slices=plan_slices(products, first, last, **sizes), covered=[((), first, last)])


def comext_coverage(ctx: LiveContext, parts: list[tuple[tuple[tuple[str, str], ...], str, str]],
                    codelist: str) -> RawPayload | None:
    """The coverage payload of a plan of every CN8 code: the statement (`coverage_statement`) of each part
    (the key's settings it asks for instead of the run's, its first and last month), one JSON object, or a
    list of them for several parts; None when no part covers a month with all products and values."""
    stated = []
    for key, start, end in parts:
        piece = ComextSlice(start, end, (), key)
        statement = coverage_statement(piece.settings(ctx.env), start, end, codelist)
        if statement is not None:
            url, params = comext_request(ctx.base, ctx.env, piece)
            stated.append((statement, f"{url}?{'&'.join(f'{k}={v}' for k, v in params)}"))
    if not stated:
        return None
    body = stated[0][0] if len(stated) == 1 else [s for s, _ in stated]
    months = ", ".join(f"{s['start']}..{s['end']}" for s, _ in stated)
    return RawPayload(ctx.source, f"coverage of {COMEXT_DATAFLOW}: every CN8 product of {codelist}, {months}",
                      json.dumps(body, indent=1, sort_keys=True).encode(), stated[0][1], kind=COVERAGE_KIND)


def fetch_comext_slice(ctx: LiveContext, piece: ComextSlice, updated_after: str | None = None) -> list[RawPayload]:
    """One slice's payloads ([] when it has no observations, or none changed after `updated_after`).

    With `updated_after`, the slice is first asked for what changed after it (SDMX `updatedAfter`): an empty
    answer costs that one small request. An answer with rows is only a sign of change: the slice is then
    fetched whole, without `updatedAfter`, because a fact row joins two observations (VALUE_IN_EUROS and
    QUANTITY_IN_100KG) of which a revision may touch one; loading the changed observations alone would blank
    the other. A request that answers 413 EXTRACTION_TOO_BIG is split (periods first, then product chapters,
    then halves of the product list) until each piece fits, up to EUJP_COMEXT_MAX_REQUESTS requests (each split
    makes smaller pieces, down to one product and one month, so it ends). A request the service answers
    asynchronously (a key instead of the data: eujp.eurostat_async) is waited for and its data fetched from the
    ASYNC API; a key lost (expired before it was fetched, or unknown) sends the request again, up to
    `_LOST_TICKETS` times a slice. Independent of the other slices: slices may be fetched in any order or in
    parallel, and each payload is landed once."""
    max_requests = comext_int(ctx.env, "EUJP_COMEXT_MAX_REQUESTS")
    waiting = comext_async_wait(ctx.env)  # read before the first request: a bad value fails every run alike
    # (part, asked with updatedAfter)
    pending: list[tuple[ComextSlice, bool]] = [(piece, updated_after is not None)]
    payloads: list[RawPayload] = []
    requests = lost = 0
    while pending:
        part, probe = pending.pop(0)
        requests += 1
        if requests > max_requests:
            raise ExtractError(f"{ctx.source}: more than {max_requests} requests for {piece.describe()} after "
                               "splitting; narrow EUJP_COMEXT_PRODUCTS/REPORTERS or the start period, or raise "
                               "EUJP_COMEXT_MAX_REQUESTS")
        url, params = comext_request(ctx.base, ctx.env, part, updated_after if probe else None)
        # Expect("any"): an asynchronous answer is XML where CSV was asked for; any other answer is checked below
        response = ctx.get(url, params=params, expect=Expect("any"), pass_statuses=(204, 400, 404, 413))
        ticket = queued_ticket(response)
        if ticket is not None:
            response.discard()
            what = part.describe() + (f" updated after {updated_after}" if probe else "")
            response = await_delivery(ctx, f"{ctx.base}{_COMEXT_API}", ticket, what, **waiting)
            if response is None:  # the ticket was lost (expired, or a key the service forgot): ask again
                lost += 1
                if lost > _LOST_TICKETS:
                    raise ExtractError(f"{ctx.source}: {what}: {lost} asynchronous deliveries were lost (expired "
                                       "or unknown keys); giving up")
                pending.insert(0, (part, probe))
                continue
        elif 200 <= response.status < 300 and response.status != 204:
            try:
                refuse_body(ctx.source, f"GET {response.url}", response, EXPECT_CSV)
            except ExtractError:
                response.discard()
                raise
        if response.status == 204:
            response.discard()
            log.info("%s: no observations for %s%s (204 No Content)", ctx.source, part.describe(),
                     f" updated after {updated_after}" if probe else "")
            continue
        body = response.content.decode("utf-8", "replace")
        if response.status == 413:
            if "EXTRACTION_TOO_BIG" not in body:
                raise ExtractError(f"{ctx.source}: GET {response.url} answered 413 without EXTRACTION_TOO_BIG: "
                                   f"{response.text_preview()}")
            parts = part.split(years=annual_data(ctx.env))
            if not parts:
                why = ("a single month of a single product (or of all products) cannot be split further"
                       + ("; list CN8 codes in EUJP_COMEXT_PRODUCTS" if not part.products else ""))
                raise ExtractError(f"{ctx.source}: GET {response.url} answered 413 EXTRACTION_TOO_BIG and {why}")
            log.info("%s: %s is too big (413 EXTRACTION_TOO_BIG): split into %s", ctx.source, part.describe(),
                     ", ".join(p.describe() for p in parts))
            pending[0:0] = [(p, probe) for p in parts]
            continue
        if response.status in (400, 404):
            if any(marker in body.lower() for marker in _NO_RESULTS):
                log.info("%s: no observations for %s%s", ctx.source, part.describe(),
                         f" updated after {updated_after}" if probe else "")
                continue
            raise ExtractError(f"{ctx.source}: GET {response.url} answered {response.status}: "
                               f"{response.text_preview()}")
        if not response.shape.multi_line:  # a header and no row
            response.discard()
            log.info("%s: no observations for %s (header only)", ctx.source, part.describe())
            continue
        if probe:
            response.discard()
            log.info("%s: %s changed after %s: fetched whole", ctx.source, part.describe(), updated_after)
            pending.insert(0, (part, False))
            continue
        payloads.append(ctx.payload(f"{COMEXT_DATAFLOW} {part.describe()}", response))
    return payloads


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min" if seconds < 7200 else \
        f"{seconds / 3600:.1f} h"


def _stopped_at(ctx: LiveContext, piece: ComextSlice, done: int, total: int, elapsed: float) -> str:
    """Where an extraction that failed stopped, for its error: the slice, how many were fetched in how long and,
    when the source's HTTP budget ran out, the budget the whole plan would need at that pace (a first
    extraction of every product since 2002 is thousands of requests: docs/live-extraction.md)."""
    text = (f"the extraction stopped at slice {done + 1} of {total} ({piece.describe()}) after {_duration(elapsed)}, "
            f"{done} fetched; nothing of it is landed, and the next run plans it again")
    if ctx.client.remaining() <= 0 and done:
        need = elapsed / done * total
        text += (f"; at this pace the {total} slices need about {_duration(need)}: raise EUJP_HTTP_BUDGET_SECONDS "
                 f"(now {ctx.client.policy.budget_seconds:g} s), narrow the request (EUJP_COMEXT_START, "
                 "EUJP_COMEXT_REPORTERS, EUJP_COMEXT_PRODUCTS), or fetch the history over several runs "
                 "(EUJP_COMEXT_HISTORY_MONTHS)")
    return text


def fetch_comext(ctx: LiveContext) -> list[RawPayload]:
    """The live plan: plan_comext, then every slice in turn; the data payloads, the codelist and (a plan of every
    CN8 code) the coverage statement, or [] when nothing is new (the dataflow unchanged, or no slice with a
    changed observation: the coverage of the earlier extractions stands). An error in any slice raises: no
    payload of a failed extraction is landed, so no coverage is stated for it."""
    plan = plan_comext(ctx)
    if not plan.slices and not plan.backfill:
        log.info("%s: nothing new: %s", ctx.source, plan.note)
        return []
    work = [(piece, plan.updated_after) for piece in plan.slices] + [(piece, None) for piece in plan.backfill]
    payloads: list[RawPayload] = []
    started = time.monotonic()
    for done, (piece, updated_after) in enumerate(work):
        try:
            payloads += fetch_comext_slice(ctx, piece, updated_after)
        except ExtractError as exc:
            raise ExtractError(f"{exc} [{_stopped_at(ctx, piece, done, len(work), time.monotonic() - started)}]"
                               ) from exc
    if not payloads:
        return []
    return payloads + [p for p in (plan.codelist, plan.coverage) if p is not None]


LABELS = LabelFeed(table=LABELS_TABLE, kind="codelist", extension="xml", parse=parse_cn_codelist,
                   snapshot_glob="comext_codelist*.xml")


COVERAGE = CoverageFeed(table=COVERAGE_TABLE, kind=COVERAGE_KIND, parse=parse_coverage)


SOURCE = Source(
    name="comext_goods",
    domain="trade",
    table=TABLE,
    wire_format="Eurostat Comext DS-045409, SDMX-CSV",
    parse=parse_comext_csv,
    transform=transform.transform_goods_product,
    suite_rules=transform.SUITE_RULES,
    snapshot_glob="comext_ds045409*.csv",
    extension="csv",
    cadence_days=31,
    description="Monthly EU trade by CN8 product",
    endpoint=ENDPOINT,
    fetch=fetch_comext,
    request_scope=comext_scope,
    scope_fetched=comext_scope_fetched,
    backfills_scope=True,
    landed_scope=comext_landed_scope,
    scope_columns={"reporters": "reporter", "partners": "partner", "products": "product_cn8"},
    period_column="period_code",
    watermark=comext_watermark,
    load_order_column="period",  # the month's first day (an annual figure: its year's)
    transform_key=transform.COMEXT_FACT_KEY,
    # Monthly payloads share no key: chunked in memory, never spilled (a key always holds its month).
    wire_groups=WireGroups(column="TIME_PERIOD", version_column="LAST UPDATE", version=comext_version),
    series_key=("reporter", "partner", "product", "flow"),
    labels=LABELS,
    coverage=COVERAGE,
)
