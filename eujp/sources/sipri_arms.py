"""SIPRI Arms Transfers Database: the trade register (CSV, latin-1, with a preamble), Japan as supplier or
recipient.

Live: there is **no default endpoint**. SIPRI documents no download API, and no public record shows what its
web front end's backend answers today for the order-level trade register (see docs/live-extraction.md, SIPRI):
without EUJP_SIPRI_URL a live extraction stops at once with an ExtractError saying so. Set EUJP_SIPRI_URL to

* a mirror of the trade register CSV (a file exported from the database's web front end, "Transfer register",
  CSV): any URL whose path is not under /api/p/trades/ is fetched with a plain GET; or
* at your own risk, the undocumented backend (BACKEND_URL, a path under /api/p/trades/): POST with JSON filters
  (sipri_filters), answering {"bytes": base64 CSV}.

Every payload is the whole register: it replaces the previous extract (`replace_scope=()`). Of several registers
of different 'Data generated' stamps (a newer one saved beside the older one), the newest is the extract: the
older ones are superseded whole, not merged with it (eujp.stream.WholeStream).
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from urllib.parse import urlsplit

from eujp.errors import ExtractError
from eujp.http import EXPECT_CSV, EXPECT_JSON, HttpResponse, bytes_problem, preview
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
        "description, number ordered and delivery years, plus an occurrence number for identical rows of one "
        "register file.",
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

# The undocumented backend of the database's web front end (https://armstransfers.sipri.org). UNVERIFIED for the
# order-level register: used only when EUJP_SIPRI_URL names it (docs/live-extraction.md, SIPRI).
BACKEND_URL = "https://atbackend.sipri.org/api/p/trades/trade-register-csv/"
BACKEND_PATH = "/api/p/trades/"

ENDPOINT = Endpoint(
    "EUJP_SIPRI_URL", "",
    "No default: SIPRI's live endpoint is unconfirmed. Set it to a mirror of the SIPRI trade register CSV "
    "(fetched with a plain GET), or, at your own risk, to the undocumented backend " + BACKEND_URL + " (POST "
    "with JSON filters, answering {\"bytes\": base64 CSV}).",
)

NO_ENDPOINT = (
    "SIPRI's live endpoint is unconfirmed, so the live extraction has no default URL: set EUJP_SIPRI_URL to "
    "the URL of a mirror of the SIPRI trade register CSV (e.g. a file exported from the Arms Transfers "
    "Database's web front end, https://armstransfers.sipri.org, 'Transfer register' for all suppliers and all "
    "recipients, as CSV, the layout whose header starts 'Recipient,Supplier,Year of order'), served over HTTP(S) "
    "and fetched with GET; see docs/live-extraction.md (SIPRI)"
)


def sipri_filters(end_year: int) -> dict:
    """The JSON body posted to the backend (only when EUJP_SIPRI_URL names it) for a register of every supplier
    and recipient, orders up to `end_year`, deliveries 1950..`end_year`, open deals included.

    The filters are those public clients send for the order-level register (2026: QDThead/weapons-tracker,
    J-King-Dottie/pacific-links). The 'exportOption' filter is deliberately not sent: with it, the backend
    answered the per-delivery export layout ('SIPRI AT Database ID,Supplier,Recipient,...'), not the register
    (datapumpernickel/Rat.db's recorded response of 10 Feb 2025). Unverified: see docs/live-extraction.md."""
    return {
        "filters": [
            {"field": "Delivery year", "condition": "contains", "value1": 1950, "value2": end_year,
             "listData": []},
            {"field": "Order year", "condition": "contains", "value1": 0, "value2": end_year, "listData": []},
            {"field": "opendeals", "condition": "", "value1": "", "value2": "", "listData": []},
        ],
        "logic": "AND",
    }


def unwrap_sipri(response: HttpResponse, source: str) -> bytes:
    """The CSV inside the backend's JSON answer {"bytes": "<base64>"}, checked as any CSV answer is
    (eujp.http.bytes_problem: not empty, not an HTML or XML page, a delimiter)."""
    try:
        doc = json.loads(response.content)
        encoded = doc["bytes"]
        if not isinstance(encoded, str):
            raise TypeError(f"'bytes' is a {type(encoded).__name__}")
        decoded = base64.b64decode(encoded, validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise ExtractError(
            f"{source}: {response.method} {response.url} answered {response.status} with JSON that is not the "
            f"expected {{\"bytes\": base64 CSV}} envelope ({type(exc).__name__}: {exc}); "
            f"first bytes: {response.text_preview()}"
        ) from None
    if problem := bytes_problem(decoded, EXPECT_CSV):
        raise ExtractError(f"{source}: {response.method} {response.url} answered {response.status} with JSON whose "
                           f"'bytes' field decodes to {problem}; first bytes: {preview(decoded[:81], 80)}")
    return decoded


def fetch_sipri(ctx: LiveContext) -> list[RawPayload]:
    if not ctx.base.strip():  # unset, empty or blank: no default, on purpose
        raise ExtractError(f"{ctx.source}: {NO_ENDPOINT}")
    if BACKEND_PATH in urlsplit(ctx.base).path:
        body = sipri_filters(ctx.run_date.year)
        response = ctx.client.post(ctx.base + "/", json_body=body, expect=EXPECT_JSON)
        csv_bytes = unwrap_sipri(response, ctx.source)
        return [ctx.payload(f"POST trade-register-csv order years 0..{ctx.run_date.year} "
                            "(CSV decoded from the JSON 'bytes' field)", response, csv_bytes)]
    response = ctx.get(ctx.base, expect=EXPECT_CSV, **ctx.conditional)
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
    suite_rules=transform.SUITE_RULES,
    snapshot_glob="sipri_trade_register*.csv",
    extension="csv",
    cadence_days=366,
    description="Arms transfers with Japan as supplier or recipient",
    endpoint=ENDPOINT,
    fetch=fetch_sipri,
    period_column="order_year",
    replace_scope=(),
)
