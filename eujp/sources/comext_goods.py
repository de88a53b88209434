"""Eurostat Comext DS-045409: monthly EU trade by CN8 product (SDMX 2.1 data, SDMX-CSV).

Live: the Comext dissemination API (not the main api/dissemination/sdmx path), one request for the key
`{freq}.{reporters}.{partners}.{products}.{flows}.{indicators}` from the watermark to the run month; a
request the service refuses with 413 EXTRACTION_TOO_BIG is split (periods first, then product chapters).
Comext revises the months of the current and the previous year, so the next request restarts at January of
the year before the newest month loaded. Payloads are streamed one at a time (`transform_key`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from eujp.errors import ExtractError
from eujp.http import EXPECT_CSV
from eujp.incremental import month_add
from eujp.landing import RawPayload
from eujp.live import Endpoint, LiveContext, env_list
from eujp.parse.sdmx_csv import parse_comext_csv
from eujp.schema import Table
from eujp.sources.base import Source
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
        return "+".join(env_list(env, name, COMEXT_DEFAULTS[name]))

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
    return ComextSlice(start, end, env_list(ctx.env, "EUJP_COMEXT_PRODUCTS", COMEXT_DEFAULTS["EUJP_COMEXT_PRODUCTS"]))


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


SOURCE = Source(
    name="comext_goods",
    domain="trade",
    table=TABLE,
    wire_format="Eurostat Comext DS-045409, SDMX-CSV",
    parse=parse_comext_csv,
    transform=transform.transform_goods_product,
    snapshot_glob="comext_ds045409*.csv",
    extension="csv",
    cadence_days=31,
    description="Monthly EU trade by CN8 product",
    endpoint=ENDPOINT,
    fetch=fetch_comext,
    period_column="period_code",
    watermark=comext_watermark,
    transform_key=transform.COMEXT_FACT_KEY,
)
