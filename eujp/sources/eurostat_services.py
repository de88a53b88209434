"""Eurostat bop_its6_det: annual EU international trade in services with Japan (JSON-stat 2.0).

Live: the Eurostat statistics API (eujp.live.EurostatDataset), from the watermark on; balance-of-payments
figures are revised for longer than goods, so the next request re-reads three years before the newest.
"""

from __future__ import annotations

from eujp.incremental import annual_lookback
from eujp.live import EUROSTAT, EurostatDataset
from eujp.parse.jsonstat import parse_jsonstat
from eujp.schema import Table
from eujp.sources.base import Source
from transforms import eurostat_services as transform

TABLE = Table(
    name="fact_services_trade",
    description="Annual EU international trade in services with a partner by service item "
    "(Eurostat bop_its6_det, JSON-stat).",
    columns=transform.COLUMNS,
    natural_key=transform.NATURAL_KEY,
    revision_columns=("value_mio_eur",),
    column_docs={
        "reporter": "EU aggregate: EU27_2020, EU28 or EU27_2007.",
        "partner": "Partner country, Eurostat code (JP = Japan).",
        "bop_item": "BPM6 service item (S = total services).",
        "flow": "export (credit, CRE), import (debit, DEB) or balance (BAL).",
        "period_year": "Calendar year.",
        "value_mio_eur": "Value in millions of euro; null where Eurostat withholds the figure (obs_status c, ...).",
        "obs_status": "Eurostat observation flag, null if none.",
    },
)

DATASET = EurostatDataset(
    "bop_its6_det",
    (("freq", "A"), ("partner", "JP"), ("currency", "MIO_EUR"), ("bop_item", "S"), ("stk_flow", "CRE"),
     ("stk_flow", "DEB"), ("stk_flow", "BAL")),
    geo_env="EUJP_EUROSTAT_SERVICES_GEO", geo_default="EU27_2020",
)

SOURCE = Source(
    name="eurostat_services",
    domain="trade",
    table=TABLE,
    wire_format="Eurostat dissemination API, JSON-stat 2.0 (bop_its6_det)",
    parse=parse_jsonstat,
    transform=transform.transform_services,
    suite_rules=transform.SUITE_RULES,
    snapshot_glob="eurostat_bop_its6_det*.json",
    extension="json",
    cadence_days=366,
    description="Annual EU trade in services with Japan",
    endpoint=EUROSTAT,
    fetch=DATASET.fetch,
    request_scope=DATASET.scope,
    landed_scope=DATASET.landed_scope,
    scope_columns={"geo": "reporter"},  # the transform keeps a geo code as the row's reporter
    period_column="period_year",
    watermark=annual_lookback(3),
)
