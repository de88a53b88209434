"""Eurostat ext_lt_maineu: annual EU trade in goods with Japan and the EU's other main partners, by EU
aggregate (JSON-stat 2.0).

Live: the Eurostat statistics API (eujp.live.EurostatDataset), from the watermark on (`sinceTimePeriod`);
annual figures are revised for about two years, so the next request re-reads the two years before the
newest loaded. The request asks for Japan and every partner in MAIN_PARTNERS (the partners that could
outrank Japan), so that mart_trade_annual can compute Japan's rank among them.
"""

from __future__ import annotations

from eujp.incremental import annual_lookback
from eujp.live import EUROSTAT, EurostatDataset
from eujp.parse.jsonstat import parse_jsonstat
from eujp.schema import Table
from eujp.sources.base import Source
from transforms import eurostat_goods as transform

TABLE = Table(
    name="fact_goods_trade",
    description="Annual EU trade in goods with a partner, as published for one EU aggregate "
    "(Eurostat ext_lt_maineu, JSON-stat). Aggregates (EU27_2020, EU28, EU27_2007, EU15) are never mixed: "
    "filter on reporter.",
    columns=transform.COLUMNS,
    natural_key=transform.NATURAL_KEY,
    revision_columns=("value_mio_eur",),
    column_docs={
        "reporter": "EU aggregate the figure was published for: EU27_2020, EU28, EU27_2007 or EU15.",
        "partner": "Partner country, Eurostat code (JP = Japan; the other main partners US, CN, UK, CH, RU, "
                   "TR, NO, KR, IN are loaded so that Japan's rank can be computed): filter on partner = 'JP' "
                   "for EU-Japan trade.",
        "flow": "export (EU to partner), import (partner to EU) or balance (exports minus imports).",
        "period_year": "Calendar year.",
        "value_mio_eur": "Value in millions of euro; null where Eurostat withholds the figure (obs_status c, ...).",
        "obs_status": "Eurostat observation flag (p provisional, e estimated, ...), null if none.",
    },
)

# The EU's main trading partners besides Japan: every partner that has ranked above Japan, or within a few
# places of it, in Eurostat's and the Commission's published rankings since 2000 (data/reference/
# japan_rank_among_eu_partners.csv, docs/warehouse.md "Japan's computed rank"). Eurostat partner codes (UK,
# not GB). mart_trade_annual.sql declares the same set (a test keeps the two equal): Japan's rank is computed
# for a year, aggregate and flow only when the warehouse holds a figure for every one of them that is not a
# member of the aggregate (UK is a partner of EU27_2020 only).
MAIN_PARTNERS: tuple[str, ...] = ("US", "CN", "UK", "CH", "RU", "TR", "NO", "KR", "IN")

DATASET = EurostatDataset(
    "ext_lt_maineu",
    (("freq", "A"), ("partner", "JP"), *(("partner", p) for p in MAIN_PARTNERS), ("sitc06", "TOTAL"),
     ("indic_et", "MIO_EXP_VAL"), ("indic_et", "MIO_IMP_VAL"), ("indic_et", "MIO_BAL_VAL")),
    geo_env="EUJP_EUROSTAT_GOODS_GEO", geo_default="EU27_2020",
)

SOURCE = Source(
    name="eurostat_goods",
    domain="trade",
    table=TABLE,
    wire_format="Eurostat dissemination API, JSON-stat 2.0 (ext_lt_maineu)",
    parse=parse_jsonstat,
    transform=transform.transform_goods_annual,
    suite_rules=transform.SUITE_RULES,
    snapshot_glob="eurostat_ext_lt_maineu*.json",
    extension="json",
    cadence_days=31,
    description="Annual EU trade in goods with Japan and the EU's other main partners, by EU aggregate",
    endpoint=EUROSTAT,
    fetch=DATASET.fetch,
    request_scope=DATASET.scope,
    landed_scope=DATASET.landed_scope,
    scope_columns={"geo": "reporter"},  # the transform keeps a geo code as the row's reporter
    period_column="period_year",
    watermark=annual_lookback(2),
)
