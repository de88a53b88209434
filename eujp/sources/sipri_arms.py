"""SIPRI Arms Transfers Database: the trade register (CSV, latin-1, with a preamble), Japan as supplier or
recipient.

Live (UNVERIFIED, see ENDPOINT): the backend of the database's front end, POST with JSON filters, answering
{"bytes": base64 CSV}; any URL outside /api/p/trades/ is fetched with a plain GET as a CSV file (a mirror).
Every payload is the whole register: it replaces the previous extract (`replace_scope=()`).
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from urllib.parse import urlsplit

from eujp.errors import ExtractError
from eujp.http import EXPECT_CSV, EXPECT_JSON, HttpResponse
from eujp.landing import RawPayload
from eujp.live import Endpoint, LiveContext
from eujp.parse.sipri import parse_sipri_register
from eujp.schema import Table
from eujp.sources.base import Source
from transforms import sipri_arms as transform

TABLE = Table(
    name="fact_arms_transfers",
    description="Transfers of major conventional arms (SIPRI trade register), one row per order. "
    "Information from the SIPRI Arms Transfers Database.",
    columns=transform.COLUMNS,
    natural_key=transform.NATURAL_KEY,
    column_docs={
        "transfer_id": "Deterministic id: sha1 of supplier, recipient, order year, weapon designation and "
        "description, number ordered and delivery years, plus an occurrence number for identical rows.",
        "supplier": "Supplier as SIPRI names it (a state, or e.g. 'unknown supplier(s)').",
        "supplier_iso2": "Supplier ISO2 code where it is a country in dim_country, else null.",
        "recipient": "Recipient as SIPRI names it.",
        "recipient_iso2": "Recipient ISO2 code where it is a country in dim_country, else null.",
        "order_year": "Year of order.",
        "order_year_uncertain": "SIPRI flagged the order year with '?'.",
        "number_ordered": "Number of items ordered (null: not yet available).",
        "number_ordered_uncertain": "SIPRI flagged the number ordered with '?'.",
        "weapon_designation": "Weapon designation as SIPRI gives it (e.g. 'F-35A').",
        "weapon_description": "SIPRI weapon description (e.g. 'FGA aircraft').",
        "comments": "SIPRI comments on the order, as published.",
        "number_delivered": "Number delivered.",
        "number_delivered_uncertain": "SIPRI flagged the number delivered with '?'.",
        "delivery_years": "Year(s) of delivery as published ('1955; 1956').",
        "first_delivery_year": "Earliest delivery year.",
        "last_delivery_year": "Latest delivery year.",
        "status": "SIPRI status (New, Second hand, ...).",
        "tiv_per_unit": "SIPRI trend-indicator value per unit, millions.",
        "tiv_total_order": "SIPRI TIV of the whole order, millions.",
        "tiv_delivered": "SIPRI TIV of the delivered weapons, millions.",
    },
)

ENDPOINT = Endpoint(
    "EUJP_SIPRI_URL", "https://atbackend.sipri.org/api/p/trades/trade-register-csv/",
    "UNVERIFIED: the undocumented backend of the SIPRI Arms Transfers Database front end, as used by "
    "public clients; POST with JSON filters, answers {\"bytes\": base64 CSV}. Any URL outside "
    "/api/p/trades/ is fetched with a plain GET as a CSV file (a mirror).",
)


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


SOURCE = Source(
    name="sipri_arms",
    domain="defence",
    table=TABLE,
    wire_format="SIPRI trade register CSV (latin-1, preamble)",
    parse=parse_sipri_register,
    transform=transform.transform_arms,
    snapshot_glob="sipri_trade_register*.csv",
    extension="csv",
    cadence_days=366,
    description="Arms transfers with Japan as supplier or recipient",
    endpoint=ENDPOINT,
    fetch=fetch_sipri,
    period_column="order_year",
    replace_scope=(),
)
