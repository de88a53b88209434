"""OECD Inventory of Export Restrictions on Industrial Raw Materials (SDMX REST, CSV with labels).

Live: one conditional GET of the dataflow from the watermark (or EUJP_OECD_START) to the run year; the
inventory is republished yearly with the previous year completed, so the next request re-reads the year
before the newest loaded. A payload replaces the measures of the years it carries (`replace_scope`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date

from eujp.errors import ExtractError
from eujp.http import EXPECT_CSV
from eujp.incremental import annual_lookback
from eujp.landing import RawPayload
from eujp.live import Endpoint, LiveContext, landed_queries
from eujp.parse.oecd import parse_oecd_csv
from eujp.schema import Table
from eujp.sources.base import Source
from transforms import oecd_restrictions as transform

TABLE = Table(
    name="fact_export_restrictions",
    description="Export restrictions on industrial raw materials (OECD Inventory, SDMX), one row per "
    "measure, commodity and year.",
    columns=transform.COLUMNS,
    natural_key=transform.NATURAL_KEY,
    column_docs={
        "ref_area_iso3": "Restricting country (ISO3).",
        "commodity_hs6": "HS 2007 six-digit code (COMMODITY without its HS07_ prefix).",
        "commodity_label": "Commodity label as published.",
        "policy_type": "M1 export tax, M3 quota, M4 prohibition, M6 licensing requirement, NO_RESTRICTION, ...",
        "policy_type_label": "Label of the policy type.",
        "policy_variation": "OECD policy variation code distinguishing measures of one type.",
        "period_year": "Year the measure is recorded for.",
        "value": "VAL attribute as published (text: rates, quotas).",
        "value_unit": "VAL_UNIT attribute.",
        "value_condition": "VAL_CONDITION attribute.",
        "date_introduced": "DATI attribute (date introduced), null where 'nd'.",
        "date_end": "END attribute, null where none.",
        "is_temporary": "TEMP attribute is 'yes' (true) or another value (false); null where the record gives no TEMP attribute.",
        "purpose": "POM attribute (purpose of measure).",
        "document": "NOD attribute (name of document).",
        "legal_basis": "LEG attribute.",
        "link": "LINK attribute.",
        "agency": "AGEN attribute.",
        "note": "ADD attribute.",
    },
)

ENDPOINT = Endpoint(
    "EUJP_OECD_URL", "https://sdmx.oecd.org",
    "OECD SDMX REST API (public/rest), CSV with labels.",
)
OECD_AGENCY_FLOW = "OECD.TAD.ADM,DSD_QDD_TAD_EXP_RESTRIC@DF_QDD_TAD_EXP_RESTRIC"
OECD_DEFAULTS = {"EUJP_OECD_DATAFLOW_VERSION": "3.0", "EUJP_OECD_START": "2009"}


def oecd_request(base: str, env: Mapping[str, str], start: str, end: str) -> tuple[str, list[tuple[str, str]]]:
    version = env.get("EUJP_OECD_DATAFLOW_VERSION") or OECD_DEFAULTS["EUJP_OECD_DATAFLOW_VERSION"]
    url = f"{base}/public/rest/data/{OECD_AGENCY_FLOW},{version}/all"
    params = [("startPeriod", start), ("endPeriod", end), ("dimensionAtObservation", "AllDimensions"),
              ("format", "csvfilewithlabels")]
    return url, params


def oecd_start(env: Mapping[str, str], run_date: date | None = None) -> str:
    """EUJP_OECD_START, the first year of the first extraction (the inventory is annual): anything but a year,
    or (given the run's date, UTC: LiveContext.run_date, Settings.run_date) a year after the run's, is an
    ExtractError naming the setting (the preflight's check of the settings reads it, via oecd_scope)."""
    start = (env.get("EUJP_OECD_START") or OECD_DEFAULTS["EUJP_OECD_START"]).strip()
    if not re.fullmatch(r"[0-9]{4}", start):
        raise ExtractError(f"EUJP_OECD_START={start!r} is not a year (YYYY, e.g. 2009)")
    # the request would end before it starts (endPeriod is the run's year)
    if run_date is not None and int(start) > run_date.year:
        raise ExtractError(f"EUJP_OECD_START={start!r} is later than this year ({run_date.year}, the run's UTC "
                           "year): the inventory has no year after it")
    return start


def oecd_scope(env: Mapping[str, str], run_date: date | None = None) -> dict:
    """What the request asks for (Source.request_scope): its first year (the dataflow is asked whole)."""
    return {"start": oecd_start(env, run_date)}


def oecd_landed_scope(payloads: list[RawPayload]) -> dict | None:
    """What landed payloads asked for (Source.landed_scope): the first year of their requests (startPeriod, the
    earliest among them: the dataflow is asked whole from it); None when none was landed from a live request."""
    starts = [v for q in landed_queries(payloads) for k, v in q if k == "startPeriod"]
    return {"start": min(starts)} if starts else None


def fetch_oecd(ctx: LiveContext) -> list[RawPayload]:
    start = ctx.watermark or oecd_start(ctx.env, ctx.run_date)
    url, params = oecd_request(ctx.base, ctx.env, start, str(ctx.run_date.year))
    return ctx.windowed_get(url, f"{OECD_AGENCY_FLOW} {start}..{ctx.run_date.year}", params=params,
                            period_param="startPeriod", expect=EXPECT_CSV)


SOURCE = Source(
    name="oecd_restrictions",
    domain="minerals",
    table=TABLE,
    wire_format="OECD SDMX REST, CSV with labels",
    parse=parse_oecd_csv,
    transform=transform.transform_restrictions,
    suite_rules=transform.SUITE_RULES,
    snapshot_glob="oecd_export_restrictions*.csv",
    extension="csv",
    cadence_days=366,
    description="Export restrictions on industrial raw materials",
    endpoint=ENDPOINT,
    fetch=fetch_oecd,
    request_scope=oecd_scope,
    landed_scope=oecd_landed_scope,
    period_column="period_year",
    watermark=annual_lookback(1),
    replace_scope=("period_year",),
)
