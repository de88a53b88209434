"""Reference tables: dim_country (from the reference seed, data/reference/countries.csv) and the REF_* tables,
published figures and lists from data/reference/*.csv, each row with its source.
"""

from __future__ import annotations

import polars as pl

from eujp.schema.core import B, F, I, S, Table
from transforms import countries

# Built each run from the seed by transforms.countries and loaded by eujp.pipeline.load_dim_country.
DIM_COUNTRY = Table(
    name="dim_country",
    description="Countries and territories (ISO 3166-1) with their EU membership over time and the names/codes "
    "each source uses for them.",
    columns=countries.COLUMNS,
    natural_key=("iso2",),
    column_docs={
        "iso2": "ISO 3166-1 alpha-2 code (GB for the United Kingdom, GR for Greece).",
        "iso3": "ISO 3166-1 alpha-3 code (used by OECD and the events file).",
        "name": "English short name.",
        "eurostat_code": "Code Eurostat dissemination datasets use (EL for Greece, UK for the United Kingdom).",
        "sipri_name": "Name the SIPRI trade register uses for the country, where it differs or appears.",
        "eu_entry_date": "Date the country joined the EU (or the EEC/EC), null if never a member.",
        "eu_exit_date": "Last day of EU membership (United Kingdom: 2020-01-31, left at midnight CET), "
        "null if still a member or never one.",
        "is_eu_member": "Member of the EU today.",
    },
    is_fact=False,
)

# --- Reference tables: published figures and lists from data/reference/*.csv, each row with its source ----
# Loaded whole every run by eujp.reference.load_reference_tables (the CSVs are versioned in git).

_REF_DOCS = {
    "source_url": "Page the row was read from.",
    "source_title": "Title of that page (publisher, date).",
    "as_published": "The statement exactly as printed on that page.",
    "notes": "Compiler's notes (caveats, inferences), null if none.",
    "reference_line": "Line of the row in its data/reference CSV (header = 1), for provenance.",
}

REF_JAPAN_RANK = Table(
    name="ref_japan_rank",
    description="Japan's rank among the EU's trading partners as published (Eurostat, DG Trade, EEAS, ...), one "
    "row per statement (data/reference/japan_rank_among_eu_partners.csv). Several statements may exist for "
    "one year.",
    columns={
        "period_year": I, "scope": S, "reporter": S, "rank_exports": I, "rank_imports": I, "rank_total": I,
        "source_url": S, "source_title": S, "as_published": S, "notes": S, "reference_line": I,
    },
    natural_key=(),
    column_docs={
        "period_year": "Year the rank refers to (for within_Asia rows of a page version: the page's year).",
        "scope": "What is ranked: goods, services, goods_and_services, unspecified (overall, measure not "
        "stated) or within_Asia (rank among Asian partners only, NOT overall).",
        "reporter": "EU aggregate the statement is about (EU27_2007, EU28, EU27_2020; EU28 partly inferred).",
        "rank_exports": "Japan's rank as a destination of EU exports, null if not stated.",
        "rank_imports": "Japan's rank as an origin of EU imports, null if not stated.",
        "rank_total": "Japan's rank by total trade (exports plus imports), null if not stated.",
        **_REF_DOCS,
    },
    is_fact=False,
    rebuilt=True,
)

REF_EXPORT_RESTRICTIONS_TREND = Table(
    name="ref_export_restrictions_trend",
    description="Published statements on the growth of export restrictions on (critical) raw materials since "
    "2009, world and China (data/reference/export_restrictions_trend.csv), including the op-ed's unverified "
    "'ninefold' claim, marked as such in notes.",
    columns={
        "period_label": S, "period_start": I, "period_end": I, "country": S, "measure_count": pl.Int64(),
        "index_as_published": S, "index_value": F, "index_qualifier": S, "what_is_counted": S,
        "source_url": S, "source_title": S, "as_published": S, "notes": S, "reference_line": I,
    },
    natural_key=(),
    column_docs={
        "period_label": "Period as written in the file: a year (2023) or a range (2009-2020).",
        "period_start": "First year of the period.",
        "period_end": "Last year of the period.",
        "country": "ISO3 code of the restricting country, or WORLD.",
        "measure_count": "Count of restrictions or products as published (what_is_counted says which), null "
        "if none published.",
        "index_as_published": "Index with 2009 = 1 as written in the file ('>5', '>=5', '9'), null if none.",
        "index_value": "The number in index_as_published (5 for '>5').",
        "index_qualifier": "'=' exact, '>' or '>=' when the published figure is a lower bound ('more than "
        "fivefold'); null if no index.",
        "what_is_counted": "What the figure counts, as the compiler read it.",
        **_REF_DOCS,
    },
    is_fact=False,
    rebuilt=True,
)

REF_CRITICAL_RAW_MATERIALS = Table(
    name="ref_critical_raw_materials",
    description="EU Critical Raw Materials Act (Regulation (EU) 2024/1252) critical (Annex II) and strategic "
    "(Annex I) raw materials mapped to HS codes, one row per material and HS code "
    "(data/reference/eu_critical_raw_materials.csv). About half the HS codes are the compiler's inference: "
    "see hs_confidence.",
    columns={
        "material": S, "annex_ii_entry": S, "is_critical": B, "strategic_status": S,
        "annex_i_strategic_entry": S, "hs_code": S, "hs_prefix": S, "hs_description": S, "hs_confidence": S,
        "hs_source_url": S, "source_url": S, "source_title": S, "notes": S, "reference_line": I,
    },
    natural_key=("material", "hs_prefix"),
    column_docs={
        "material": "Raw material (one Annex II entry; rare earths split into heavy and light).",
        "annex_ii_entry": "The Annex II (critical) entry as listed.",
        "is_critical": "On the critical list (Annex II).",
        "strategic_status": "yes: on the strategic list (Annex I); partial: only part of the material is "
        "strategic (rare earths for permanent magnets); no.",
        "annex_i_strategic_entry": "The Annex I (strategic) entry, null if not strategic.",
        "hs_code": "HS code as listed (4 or 6 digits, with a dot: '2617.10', '8110').",
        "hs_prefix": "hs_code without the dot: products whose HS6/CN8 code starts with it are this material.",
        "hs_description": "Compiler's description of the HS code.",
        "hs_confidence": "source: the code was read from a tariff listing (hs_source_url); inferred: the "
        "compiler's inference from general HS knowledge, not a published mapping.",
        "hs_source_url": "Where the HS code was read, null when inferred.",
        "source_url": "Page the material list entry was read from.",
        **{k: v for k, v in _REF_DOCS.items() if k not in ("source_url", "as_published")},
    },
    is_fact=False,
    rebuilt=True,
)

REF_PUBLISHED_TRADE_FIGURES = Table(
    name="ref_published_trade_figures",
    description="Every published EU–Japan annual trade figure collected, all vintages "
    "(data/reference/eu_japan_goods_trade_annual.csv and eu_japan_services_trade_annual.csv). The fact "
    "tables hold one vintage per key; this table keeps the others (e.g. first releases later revised).",
    columns={
        "trade_type": S, "period_year": I, "partner": S, "reporter": S, "flow": S, "value_eur_bn": F,
        "value_mio_eur": F, "source_url": S, "source_title": S, "as_published": S, "notes": S,
        "reference_line": I,
    },
    natural_key=(),
    column_docs={
        "trade_type": "goods or services.",
        "period_year": "Calendar year.",
        "partner": "Partner country (JP).",
        "reporter": "EU aggregate the figure was published for (EU15, EU27_2007, EU28, EU27_2020).",
        "flow": "export, import or balance.",
        "value_eur_bn": "Value in billions of euro, as published (precision as printed).",
        "value_mio_eur": "value_eur_bn x 1000.",
        **_REF_DOCS,
    },
    is_fact=False,
    rebuilt=True,
)

# The REF_* tables in load order (eujp.tables assembles them with the other layers).
REFERENCE_TABLES: tuple[Table, ...] = (
    REF_JAPAN_RANK, REF_EXPORT_RESTRICTIONS_TREND, REF_CRITICAL_RAW_MATERIALS, REF_PUBLISHED_TRADE_FIGURES,
)
