"""Warehouse tables: the one place their columns, types and natural keys are defined.

Every fact table carries `source` (which source's payload the row came from), `source_version`
(the version the source stamped on the payload: Eurostat `updated`, Comext `LAST UPDATE`, SIPRI
"Data generated", ...) and `run_id` / `loaded_at` (added by the loader, never by transforms).

Transforms produce frames with exactly `Table.business_columns` (in that order); the loader adds
`run_id` and `loaded_at`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

LOAD_COLUMNS: dict[str, pl.DataType] = {"run_id": pl.String(), "loaded_at": pl.Datetime("us", "UTC")}


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    columns: dict[str, pl.DataType]
    natural_key: tuple[str, ...]
    column_docs: dict[str, str] = field(default_factory=dict)
    is_fact: bool = True
    # Numeric columns whose changed values are recorded in etl_revisions when a load replaces a row.
    revision_columns: tuple[str, ...] = ()
    # Derived tables (reference seeds, built dimensions, marts) are rebuilt whole every run; when their
    # declared columns change, ensure_schema drops and recreates them instead of keeping the old layout.
    rebuilt: bool = False

    @property
    def business_columns(self) -> dict[str, pl.DataType]:
        return self.columns

    @property
    def all_columns(self) -> dict[str, pl.DataType]:
        return {**self.columns, **LOAD_COLUMNS} if self.is_fact else dict(self.columns)

    def empty_frame(self) -> pl.DataFrame:
        return pl.DataFrame(schema=self.business_columns)

    @property
    def docs(self) -> dict[str, str]:
        """COMMENT text per column: column_docs, else the shared text for source/run columns."""
        return {c: self.column_docs.get(c) or _SOURCE_DOCS[c] for c in self.all_columns
                if c in self.column_docs or c in _SOURCE_DOCS}


S, F, I, D, B = pl.String(), pl.Float64(), pl.Int32(), pl.Date(), pl.Boolean()
TS = pl.Datetime("us", "UTC")

_SOURCE_DOCS = {
    "source": "Source id (see README, 'Sources') whose payload produced the row.",
    "source_version": "Version stamp the source put on the payload (e.g. Eurostat 'updated', Comext LAST UPDATE).",
    "run_id": "ETL run that last wrote the row (etl_runs.run_id).",
    "loaded_at": "UTC time the row was written.",
}

DIM_COUNTRY = Table(
    name="dim_country",
    description="Countries and territories (ISO 3166-1) with their EU membership over time and the names/codes "
    "each source uses for them.",
    columns={
        "iso2": S, "iso3": S, "name": S, "eurostat_code": S, "sipri_name": S,
        "eu_entry_date": D, "eu_exit_date": D, "is_eu_member": B,
    },
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

FACT_GOODS_TRADE = Table(
    name="fact_goods_trade",
    description="Annual EU trade in goods with a partner, as published for one EU aggregate "
    "(Eurostat ext_lt_maineu, JSON-stat). Aggregates (EU27_2020, EU28, EU27_2007, EU15) are never mixed: "
    "filter on reporter.",
    columns={
        "reporter": S, "partner": S, "flow": S, "period_year": I, "value_mio_eur": F, "obs_status": S,
        "source": S, "source_version": S,
    },
    natural_key=("reporter", "partner", "flow", "period_year"),
    revision_columns=("value_mio_eur",),
    column_docs={
        "reporter": "EU aggregate the figure was published for: EU27_2020, EU28, EU27_2007 or EU15.",
        "partner": "Partner country, Eurostat code (JP = Japan).",
        "flow": "export (EU to partner), import (partner to EU) or balance (exports minus imports).",
        "period_year": "Calendar year.",
        "value_mio_eur": "Value in millions of euro.",
        "obs_status": "Eurostat observation flag (p provisional, e estimated, ...), null if none.",
    },
)

FACT_GOODS_TRADE_PRODUCT = Table(
    name="fact_goods_trade_product",
    description="Monthly EU trade in goods by CN8 product (Eurostat Comext DS-045409, SDMX-CSV).",
    columns={
        "reporter": S, "partner": S, "product_cn8": S, "flow": S, "period": D, "period_code": S,
        "value_eur": F, "quantity_kg": F, "source": S, "source_version": S,
    },
    natural_key=("reporter", "partner", "product_cn8", "flow", "period_code"),
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

FACT_SERVICES_TRADE = Table(
    name="fact_services_trade",
    description="Annual EU international trade in services with a partner by service item "
    "(Eurostat bop_its6_det, JSON-stat).",
    columns={
        "reporter": S, "partner": S, "bop_item": S, "flow": S, "period_year": I, "value_mio_eur": F,
        "obs_status": S, "source": S, "source_version": S,
    },
    natural_key=("reporter", "partner", "bop_item", "flow", "period_year"),
    revision_columns=("value_mio_eur",),
    column_docs={
        "reporter": "EU aggregate: EU27_2020, EU28 or EU27_2007.",
        "partner": "Partner country, Eurostat code (JP = Japan).",
        "bop_item": "BPM6 service item (S = total services).",
        "flow": "export (credit, CRE), import (debit, DEB) or balance (BAL).",
        "period_year": "Calendar year.",
        "value_mio_eur": "Value in millions of euro.",
        "obs_status": "Eurostat observation flag, null if none.",
    },
)

FACT_ARMS_TRANSFERS = Table(
    name="fact_arms_transfers",
    description="Transfers of major conventional arms (SIPRI trade register), one row per order. "
    "Information from the SIPRI Arms Transfers Database.",
    columns={
        "transfer_id": S, "supplier": S, "supplier_iso2": S, "recipient": S, "recipient_iso2": S,
        "order_year": I, "order_year_uncertain": B, "number_ordered": I, "number_ordered_uncertain": B,
        "weapon_designation": S, "weapon_description": S, "number_delivered": I,
        "number_delivered_uncertain": B, "delivery_years": S, "first_delivery_year": I,
        "last_delivery_year": I, "status": S, "comments": S, "tiv_per_unit": F, "tiv_total_order": F,
        "tiv_delivered": F, "source": S, "source_version": S,
    },
    natural_key=("transfer_id",),
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

FACT_SECURITY_EVENTS = Table(
    name="fact_security_events",
    description="Dated EU–Japan security and defence co-operation events (curated file, one source URL per row).",
    columns={
        "event_id": S, "event_date": D, "date_precision": S, "event_type": S, "parties": S, "title": S,
        "description": S, "source_url": S, "source_title": S, "source": S, "source_version": S,
    },
    natural_key=("event_id",),
    column_docs={
        "event_id": "Deterministic id: sha1 of event_date and title.",
        "event_date": "Date; for month or year precision, the first day of that period.",
        "date_precision": "day, month or year.",
        "event_type": "agreement, dialogue, exercise, operation, export_control, statement, ...",
        "parties": "';'-separated ISO3 codes of the parties; EU (the Union itself), NATO, UN or WORLD "
        "(a measure aimed at all countries).",
        "title": "Short title.",
        "description": "One-sentence description (paraphrase).",
        "source_url": "Page the event was read from.",
        "source_title": "Title of that page.",
    },
)

FACT_EXPORT_RESTRICTIONS = Table(
    name="fact_export_restrictions",
    description="Export restrictions on industrial raw materials (OECD Inventory, SDMX), one row per "
    "measure, commodity and year.",
    columns={
        "ref_area_iso3": S, "commodity_hs6": S, "commodity_label": S, "policy_type": S,
        "policy_type_label": S, "policy_variation": S, "period_year": I, "value": S, "value_unit": S,
        "value_condition": S, "date_introduced": D, "date_end": D, "is_temporary": B, "purpose": S,
        "document": S, "legal_basis": S, "link": S, "agency": S, "note": S, "source": S,
        "source_version": S,
    },
    natural_key=("ref_area_iso3", "commodity_hs6", "policy_type", "policy_variation", "period_year"),
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
        "is_temporary": "TEMP attribute is 'yes'.",
        "purpose": "POM attribute (purpose of measure).",
        "document": "NOD attribute (name of document).",
        "legal_basis": "LEG attribute.",
        "link": "LINK attribute.",
        "agency": "AGEN attribute.",
        "note": "ADD attribute.",
    },
)

ETL_RUNS = Table(
    name="etl_runs",
    description="One row per run and source: what came in, what was loaded or rejected, and how it ended.",
    columns={
        "run_id": S, "source": S, "table_name": S, "input_checksum": S, "source_version": S,
        "rows_in": pl.Int64(), "rows_loaded": pl.Int64(), "rows_rejected": pl.Int64(),
        "rows_written": pl.Int64(), "started_at": TS, "ended_at": TS, "status": S, "message": S,
    },
    natural_key=("run_id", "source"),
    column_docs={
        "run_id": "ETL run (sortable id: start time plus a random suffix).",
        "source": "Source id (see README, 'Sources').",
        "table_name": "Warehouse table the source loads.",
        "input_checksum": "Order-independent sha256 over the sha256 of every payload the source delivered.",
        "source_version": "Version stamp the source put on the payload, null if none.",
        "started_at": "UTC time the source's processing started.",
        "ended_at": "UTC time the source's processing ended.",
        "message": "Error (failed) or note (unchanged), null on success.",
        "rows_in": "Input rows the source delivered (wire rows: CSV lines, JSON-stat observations).",
        "rows_loaded": "Input rows that were loaded (rows_in = rows_loaded + rows_rejected).",
        "rows_rejected": "Input rows not loaded; each is in etl_rejected_rows with its reason.",
        "rows_written": "Table rows written (several input rows may make one row, e.g. Comext indicators).",
        "status": "success, failed or unchanged.",
    },
    is_fact=False,
)

ETL_REJECTED_ROWS = Table(
    name="etl_rejected_rows",
    description="Quarantine: every input row that was not loaded, with the reason and its raw values.",
    columns={
        "run_id": S, "source": S, "table_name": S, "reason": S, "raw_record": S, "rejected_at": TS,
    },
    natural_key=(),
    column_docs={
        "run_id": "ETL run that rejected the row.",
        "source": "Source id the row came from.",
        "table_name": "Table the row was meant for.",
        "reason": "Why the row was not loaded (transform rule, duplicate key, failed expectation, load error).",
        "raw_record": "The row's values as JSON, as the transform saw them.",
        "rejected_at": "UTC time the row was quarantined.",
    },
    is_fact=False,
)

ETL_SOURCE_STATE = Table(
    name="etl_source_state",
    description="Per source: what the last successful load saw (HTTP validators, content checksum, newest "
    "period) and where the next incremental request starts. Maintained by the load step.",
    columns={
        "source": S, "last_success_at": TS, "last_attempt_at": TS, "last_status": S, "etag": S,
        "last_modified": S, "input_checksum": S, "newest_period": S, "watermark": S,
    },
    natural_key=("source",),
    column_docs={
        "source": "Source id.",
        "last_success_at": "Last run that loaded the source or confirmed it unchanged.",
        "last_attempt_at": "Last run that tried the source, whatever the outcome.",
        "last_status": "Outcome of the last attempt: success, unchanged or failed.",
        "etag": "ETag of the last loaded response (sent back as If-None-Match).",
        "last_modified": "Last-Modified of the last loaded response (sent back as If-Modified-Since).",
        "input_checksum": "Checksum of everything the source delivered in the last successful load.",
        "newest_period": "Newest period loaded for the source (YYYY, YYYY-MM or a date).",
        "watermark": "First period the next live request asks for (newest period minus the revision window).",
    },
    is_fact=False,
)

ETL_REVISIONS = Table(
    name="etl_revisions",
    description="Every value a load changed: a revised figure (Eurostat and Comext revise past periods) with "
    "its natural key, the old and the new value, and the run that revised it.",
    columns={
        "table_name": S, "source": S, "natural_key": S, "column_name": S, "old_value": F, "new_value": F,
        "run_id": S, "revised_at": TS,
    },
    natural_key=(),
    column_docs={
        "table_name": "Fact table of the revised row.",
        "source": "Source id whose load revised the value.",
        "run_id": "ETL run that loaded the new value.",
        "revised_at": "UTC time of the revision.",
        "natural_key": "Natural key of the revised row as a JSON object, e.g. "
        '{"reporter":"EU27_2020","partner":"JP","flow":"export","period_year":2024}.',
        "column_name": "Revised column (value_mio_eur, value_eur, quantity_kg).",
        "old_value": "Value before the run (null: it was missing).",
        "new_value": "Value the run loaded (null: now missing).",
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

# --- Built dimensions: derived each run from dim_country and the facts (SQL in eujp/marts/) -------------

DIM_EU_AGGREGATE_MEMBER = Table(
    name="dim_eu_aggregate_member",
    description="Member states of each EU aggregate the facts use (EU15, EU27_2007, EU28, EU27_2020), derived "
    "from dim_country's entry and exit dates: join a fact's reporter to aggregate_code to add up or split "
    "an aggregate by member state.",
    columns={
        "aggregate_code": S, "aggregate_label": S, "composition_date": D, "in_force_from": D, "in_force_to": D,
        "member_count": I, "iso2": S, "iso3": S, "country_name": S,
    },
    natural_key=("aggregate_code", "iso2"),
    column_docs={
        "aggregate_code": "Eurostat aggregate code (EU15, EU27_2007, EU28, EU27_2020).",
        "aggregate_label": "Eurostat's label of the aggregate.",
        "composition_date": "Date the membership is read at (dim_country: entry <= date < exit).",
        "in_force_from": "First day the EU had this composition.",
        "in_force_to": "Last day the EU had this composition, null if current.",
        "member_count": "Number of member states in the aggregate (15, 27, 28, 27).",
        "iso2": "Member state, ISO 3166-1 alpha-2 (dim_country.iso2).",
        "iso3": "Member state, ISO 3166-1 alpha-3.",
        "country_name": "Member state's English short name.",
    },
    is_fact=False,
    rebuilt=True,
)

DIM_DATE = Table(
    name="dim_date",
    description="Calendar, one row per day, with the EU's membership that day. Year-grain facts join on "
    "year with is_year_start, month-grain facts on date_day = period.",
    columns={
        "date_day": D, "year": I, "quarter": I, "month": I, "month_code": S, "day_of_month": I,
        "iso_day_of_week": I, "is_month_start": B, "is_year_start": B, "eu_member_count": I,
        "eu_aggregate": S,
    },
    natural_key=("date_day",),
    column_docs={
        "date_day": "The day.",
        "year": "Calendar year.",
        "quarter": "Calendar quarter (1-4).",
        "month": "Month (1-12).",
        "month_code": "Month as YYYY-MM (Comext period_code of a monthly figure).",
        "day_of_month": "Day of the month (1-31).",
        "iso_day_of_week": "ISO day of week (1 Monday - 7 Sunday).",
        "is_month_start": "First day of a month.",
        "is_year_start": "1 January: one row per year.",
        "eu_member_count": "Number of EU (EEC/EC) member states that day, from dim_country.",
        "eu_aggregate": "The EU aggregate (dim_eu_aggregate_member) whose composition was in force that day, "
        "null outside them (e.g. before 1995, or 2004-2006 with 25 members).",
    },
    is_fact=False,
    rebuilt=True,
)

DIM_PRODUCT = Table(
    name="dim_product",
    description="Products the facts use: every CN8 code in fact_goods_trade_product and every HS6 code "
    "there or in fact_export_restrictions, with the HS hierarchy and the EU critical/strategic raw material "
    "flags (matched by HS prefix in ref_critical_raw_materials). SITC is not mapped: no CN-to-SITC "
    "correspondence is bundled.",
    columns={
        "product_level": S, "product_code": S, "cn8": S, "hs6": S, "hs4": S, "hs2": S, "sitc_code": S,
        "product_label": S, "label_source": S, "is_critical_raw_material": B, "strategic_status": S,
        "crm_materials": S, "crm_hs_codes": S, "crm_hs_confidence": S,
    },
    natural_key=("product_level", "product_code"),
    column_docs={
        "product_level": "CN8 (Combined Nomenclature, 8 digits) or HS6 (Harmonized System, 6 digits).",
        "product_code": "The code at product_level: join fact_goods_trade_product.product_cn8 on CN8 rows, "
        "fact_export_restrictions.commodity_hs6 on HS6 rows.",
        "cn8": "CN8 code (CN8 rows), null on HS6 rows.",
        "hs6": "HS subheading: the first 6 digits.",
        "hs4": "HS heading: the first 4 digits.",
        "hs2": "HS chapter: the first 2 digits.",
        "sitc_code": "SITC code: always null, no CN/HS-to-SITC correspondence is bundled (none is invented).",
        "product_label": "Label as a source published it (OECD commodity label for HS6), null if none.",
        "label_source": "Table the label comes from, null if none.",
        "is_critical_raw_material": "The code starts with an HS code of a critical raw material "
        "(ref_critical_raw_materials.hs_prefix). HS versions are not reconciled (CN 2025, OECD HS 2007).",
        "strategic_status": "Best strategic status of the matched materials: yes, partial or no; null if "
        "not a critical raw material.",
        "crm_materials": "Matched materials, '; '-separated (one HS code can cover several, e.g. 8112.92).",
        "crm_hs_codes": "Matched CRM HS codes, '; '-separated.",
        "crm_hs_confidence": "source if any matched HS code was read from a tariff listing, else inferred.",
    },
    is_fact=False,
    rebuilt=True,
)

# --- Marts: BI-facing tables rebuilt every run from the facts, dimensions and references ----------------
# SQL in eujp/marts/{name}.sql (header comment: purpose, grain, caveats); README section "Marts".

MART_TRADE_ANNUAL = Table(
    name="mart_trade_annual",
    description="EU–Japan trade by year, EU aggregate and type (goods, services, goods_and_services): "
    "exports, imports, balance, year-on-year change and Japan's published rank among the EU's partners. "
    "Aggregates are never mixed: a year-on-year change is computed only against the previous year of the "
    "same aggregate and type.",
    columns={
        "period_year": I, "reporter": S, "trade_type": S, "exports_mio_eur": F, "imports_mio_eur": F,
        "balance_mio_eur": F, "balance_computed_mio_eur": F, "total_trade_mio_eur": F, "exports_yoy_pct": F,
        "imports_yoy_pct": F, "balance_yoy_mio_eur": F, "total_trade_yoy_pct": F, "japan_rank_exports": I,
        "japan_rank_imports": I, "japan_rank_total": I, "rank_statements": I, "rank_source_urls": S,
    },
    natural_key=("period_year", "reporter", "trade_type"),
    column_docs={
        "period_year": "Calendar year.",
        "reporter": "EU aggregate (EU15, EU27_2007, EU28, EU27_2020): filter on one to get a series.",
        "trade_type": "goods (fact_goods_trade), services (fact_services_trade, total services) or "
        "goods_and_services (the sum of both, only where both are published for the year and aggregate).",
        "exports_mio_eur": "EU exports to Japan, million euro, null if not published.",
        "imports_mio_eur": "EU imports from Japan, million euro, null if not published.",
        "balance_mio_eur": "Balance as published (exports minus imports), million euro; may differ from "
        "balance_computed_mio_eur by rounding or a source's own inconsistency.",
        "balance_computed_mio_eur": "exports_mio_eur - imports_mio_eur where both are published.",
        "total_trade_mio_eur": "exports_mio_eur + imports_mio_eur where both are published.",
        "exports_yoy_pct": "Change of exports vs the previous calendar year of the same aggregate and type, "
        "percent; null if that year is missing.",
        "imports_yoy_pct": "Change of imports vs the previous year (same rule), percent.",
        "balance_yoy_mio_eur": "Change of the published balance vs the previous year (same rule), million euro.",
        "total_trade_yoy_pct": "Change of total trade vs the previous year (same rule), percent.",
        "japan_rank_exports": "Japan's published rank as destination of EU exports (ref_japan_rank, same year, "
        "aggregate and scope), null if none published.",
        "japan_rank_imports": "Japan's published rank as origin of EU imports, null if none published.",
        "japan_rank_total": "Japan's published rank by total trade, null if none published.",
        "rank_statements": "Number of ref_japan_rank statements behind the rank columns (0 if none). Where "
        "several give a rank, the best (lowest) is shown.",
        "rank_source_urls": "Pages the ranks come from, ' | '-separated.",
    },
    is_fact=False,
    rebuilt=True,
)

_PRODUCT_MART_DOCS = {
    "reporter": "Reporting member state (ISO2) or EU aggregate (EU27_2020).",
    "partner": "Partner: always JP (Japan) in this mart.",
    "flow": "export (EU to Japan) or import (Japan to EU), seen from the reporter.",
    "period_year": "Calendar year of the monthly figures summed.",
    "months_covered": "Number of months loaded for the year: the values are sums over these months, NOT a "
    "full year unless it is 12.",
    "first_month": "First month summed (YYYY-MM).",
    "last_month": "Last month summed (YYYY-MM).",
    "value_eur": "Trade value, euro (sum over the months covered).",
    "quantity_kg": "Quantity, kg (sum over the months covered).",
}

MART_PRODUCT_TRADE = Table(
    name="mart_product_trade",
    description="EU–Japan trade by CN8 product, year and flow (from monthly Comext figures), ranked within "
    "each flow, with the critical raw material flags and, where an all-partner extract is loaded, Japan's "
    "share and rank among the EU's extra-EU partners for the product.",
    columns={
        "reporter": S, "partner": S, "flow": S, "period_year": I, "product_cn8": S, "hs6": S, "hs2": S,
        "months_covered": I, "first_month": S, "last_month": S, "value_eur": F, "quantity_kg": F,
        "rank_in_flow": I, "share_of_loaded_products": F, "is_critical_raw_material": B, "crm_materials": S,
        "months_with_all_partners": I, "extra_eu_value_eur": F, "japan_share_of_extra_eu": F,
        "japan_rank_among_extra_eu": I, "extra_eu_partners_ranked": I,
    },
    natural_key=("reporter", "partner", "flow", "period_year", "product_cn8"),
    column_docs={
        **_PRODUCT_MART_DOCS,
        "product_cn8": "CN8 product code (dim_product, product_level CN8).",
        "hs6": "HS subheading of the product.",
        "hs2": "HS chapter of the product.",
        "rank_in_flow": "Rank by value among the products LOADED for this reporter, flow and year (1 = largest).",
        "share_of_loaded_products": "value_eur / total value of the products loaded for this reporter, flow "
        "and year (not of all goods: only the loaded CN8 codes).",
        "is_critical_raw_material": "dim_product flag: the product is a critical raw material.",
        "crm_materials": "dim_product: matched critical raw materials.",
        "months_with_all_partners": "Months of the year for which the reporter's extract for the product "
        "holds every partner and the EXT_EU27_2020 aggregate; the columns below use these months only.",
        "extra_eu_value_eur": "Reporter's trade in the product with all extra-EU partners (Comext "
        "EXT_EU27_2020) in those months, euro; null without an all-partner extract.",
        "japan_share_of_extra_eu": "Japan's value / extra_eu_value_eur in those months (0-1).",
        "japan_rank_among_extra_eu": "Japan's rank by value among the countries that were not EU members in "
        "the month (dim_country dates), 1 = largest; Comext pseudo-partners (QV, QW, XS, ...) not ranked.",
        "extra_eu_partners_ranked": "Number of extra-EU countries ranked.",
    },
    is_fact=False,
    rebuilt=True,
)

MART_CHAPTER_TRADE = Table(
    name="mart_chapter_trade",
    description="EU–Japan trade by HS chapter (2 digits), year and flow, summed over the CN8 products loaded, "
    "ranked within each flow.",
    columns={
        "reporter": S, "partner": S, "flow": S, "period_year": I, "hs2": S, "products": I,
        "crm_products": I, "months_covered": I, "first_month": S, "last_month": S, "value_eur": F,
        "quantity_kg": F, "rank_in_flow": I, "share_of_loaded_chapters": F,
    },
    natural_key=("reporter", "partner", "flow", "period_year", "hs2"),
    column_docs={
        **_PRODUCT_MART_DOCS,
        "hs2": "HS chapter (first 2 digits of the CN8 code).",
        "products": "Number of CN8 products loaded in the chapter.",
        "crm_products": "Of which critical raw materials (dim_product).",
        "rank_in_flow": "Rank by value among the chapters loaded for this reporter, flow and year.",
        "share_of_loaded_chapters": "value_eur / total over the chapters loaded for this reporter, flow and year.",
    },
    is_fact=False,
    rebuilt=True,
)

MART_CRM_TRADE = Table(
    name="mart_crm_trade",
    description="EU–Japan trade in critical raw materials by material, year and flow (CN8 products matched "
    "to the CRM Act list through dim_product). A product matching several materials counts under each: do "
    "not sum value_eur across materials.",
    columns={
        "reporter": S, "partner": S, "flow": S, "period_year": I, "material": S, "strategic_status": S,
        "products": I, "product_codes": S, "hs_confidence": S, "months_covered": I, "first_month": S,
        "last_month": S, "value_eur": F, "quantity_kg": F,
    },
    natural_key=("reporter", "partner", "flow", "period_year", "material"),
    column_docs={
        **_PRODUCT_MART_DOCS,
        "material": "Critical raw material (ref_critical_raw_materials.material).",
        "strategic_status": "yes, partial or no (Annex I strategic list).",
        "products": "Number of CN8 products matched to the material.",
        "product_codes": "Those CN8 codes, '; '-separated.",
        "hs_confidence": "source if every matching HS code was read from a tariff listing, else inferred.",
    },
    is_fact=False,
    rebuilt=True,
)

MART_EXPORT_RESTRICTIONS = Table(
    name="mart_export_restrictions",
    description="Export restrictions on industrial raw materials by restricting country, critical raw "
    "material, measure type and year (fact_export_restrictions). Commodities that are not critical raw "
    "materials are kept under material = null.",
    columns={
        "country_iso3": S, "country_name": S, "material": S, "is_critical_raw_material": B,
        "strategic_status": S, "policy_type": S, "policy_type_label": S, "period_year": I, "measures": I,
        "temporary_measures": I, "hs6_codes": S, "commodity_labels": S, "earliest_introduced": D,
    },
    natural_key=("country_iso3", "material", "policy_type", "period_year"),
    column_docs={
        "country_iso3": "Restricting country (ISO3).",
        "country_name": "Its name (dim_country).",
        "material": "Critical raw material the commodity maps to (dim_product), null if none. A measure on "
        "an HS6 code that several materials share counts under each.",
        "is_critical_raw_material": "material is not null.",
        "strategic_status": "yes, partial or no for the material; null if not a critical raw material.",
        "policy_type": "OECD measure type code (M1 export tax, M3 quota, M4 prohibition, ...).",
        "policy_type_label": "Label of the measure type.",
        "period_year": "Year the measures are recorded for.",
        "measures": "Number of measures (fact rows: commodity x type x variation).",
        "temporary_measures": "Of which temporary.",
        "hs6_codes": "HS6 codes restricted, '; '-separated.",
        "commodity_labels": "Their OECD labels, ' | '-separated.",
        "earliest_introduced": "Earliest date a measure was introduced, null if none known.",
    },
    is_fact=False,
    rebuilt=True,
)

MART_EXPORT_RESTRICTIONS_INDEX = Table(
    name="mart_export_restrictions_index",
    description="Growth of export restrictions indexed to 2009 = 1, for China and the world: the published "
    "statements (ref_export_restrictions_trend, each with its source and verification status) and, for "
    "every year fact_export_restrictions holds, the index computed from its measure counts (null while "
    "the table holds no 2009 measures).",
    columns={
        "country_scope": S, "basis": S, "index_year": I, "index_2009_eq_1": F, "index_qualifier": S,
        "index_as_published": S, "measures_2009": pl.Int64(), "measures_in_year": pl.Int64(),
        "countries_covered": I, "what_is_counted": S, "verification": S, "source_url": S, "source_title": S,
        "as_published": S, "reference_line": I,
    },
    natural_key=("country_scope", "basis", "index_year", "reference_line"),
    column_docs={
        "country_scope": "CHN (China) or WORLD.",
        "basis": "published (a statement in ref_export_restrictions_trend) or computed (counted in "
        "fact_export_restrictions).",
        "index_year": "Year the index refers to (2009 = 1).",
        "index_2009_eq_1": "Restrictions in index_year relative to 2009; for '>'/'>=' statements the lower "
        "bound; null when it cannot be computed.",
        "index_qualifier": "'=' exact, '>' or '>=' lower bound, null if no index.",
        "index_as_published": "The index as the statement wrote it (published rows).",
        "measures_2009": "Computed rows: measures recorded for 2009 in fact_export_restrictions (null: none).",
        "measures_in_year": "Computed rows: measures recorded for index_year; published rows: the published "
        "count if any.",
        "countries_covered": "Computed rows: restricting countries in the fact table that year (WORLD is only "
        "as complete as the loaded extract).",
        "what_is_counted": "What the figure counts.",
        "verification": "OECD publication, secondary source (citing OECD), unverified claim (no source "
        "found; the op-ed's 'ninefold'), or counted in the warehouse.",
        "source_url": "Page of the statement, null for computed rows and unverified claims.",
        "source_title": "Title of that page.",
        "as_published": "The statement as printed.",
        "reference_line": "Line in data/reference/export_restrictions_trend.csv; 0 for computed rows.",
    },
    is_fact=False,
    rebuilt=True,
)

MART_ARMS_TRANSFERS = Table(
    name="mart_arms_transfers",
    description="Arms transfers between Japan and EU member states (SIPRI), by year of order, supplier and "
    "recipient. Counterparts are countries that are or were EU members; filter on "
    "counterpart_eu_member_in_order_year for the EU as it was, on counterpart_in_eu27_2020 for today's EU.",
    columns={
        "order_year": I, "supplier": S, "supplier_iso2": S, "recipient": S, "recipient_iso2": S,
        "direction": S, "counterpart_iso2": S, "counterpart_name": S, "counterpart_eu_member_in_order_year": B,
        "counterpart_in_eu27_2020": B, "orders": I, "orders_year_uncertain": I, "number_ordered": pl.Int64(),
        "number_delivered": pl.Int64(), "tiv_total_order": F, "tiv_delivered": F, "weapon_descriptions": S,
    },
    natural_key=("order_year", "supplier", "recipient"),
    column_docs={
        "order_year": "SIPRI year of order (deliveries may span later years: see fact_arms_transfers).",
        "supplier": "Supplier as SIPRI names it.",
        "supplier_iso2": "Supplier ISO2.",
        "recipient": "Recipient as SIPRI names it.",
        "recipient_iso2": "Recipient ISO2.",
        "direction": "to_japan (EU member state supplies Japan) or from_japan.",
        "counterpart_iso2": "The EU member state (ISO2).",
        "counterpart_name": "Its name (dim_country).",
        "counterpart_eu_member_in_order_year": "The counterpart was an EU (EEC/EC) member at some time in the "
        "order year (dim_country entry/exit dates).",
        "counterpart_in_eu27_2020": "The counterpart is one of today's 27 member states.",
        "orders": "Number of SIPRI orders.",
        "orders_year_uncertain": "Of which with an uncertain order year ('?').",
        "number_ordered": "Items ordered (sum; null counts as unknown and is skipped).",
        "number_delivered": "Items delivered (sum).",
        "tiv_total_order": "SIPRI trend-indicator value of the orders, millions (sum).",
        "tiv_delivered": "SIPRI TIV delivered, millions (sum).",
        "weapon_descriptions": "Distinct weapon descriptions, '; '-separated.",
    },
    is_fact=False,
    rebuilt=True,
)

MART_PARTNERSHIP_TIMELINE = Table(
    name="mart_partnership_timeline",
    description="EU–Japan security and defence co-operation events by year and type (fact_security_events), "
    "with the EU institutions' and member states' participation. China's export controls are kept as "
    "context under event_category = 'export control (context)'.",
    columns={
        "period_year": I, "event_type": S, "event_category": S, "events": I, "events_with_eu": I,
        "events_with_member_states": I, "member_states": S, "first_event_date": D, "last_event_date": D,
        "titles": S,
    },
    natural_key=("period_year", "event_type"),
    column_docs={
        "period_year": "Year of the event date.",
        "event_type": "agreement, dialogue, exercise, operation, summit, export_control, ...",
        "event_category": "co-operation, or export control (context) for export_control events.",
        "events": "Number of events.",
        "events_with_eu": "Events with the EU itself (parties include EU).",
        "events_with_member_states": "Events with at least one state that was an EU member on the event date.",
        "member_states": "Those member states (ISO2), '; '-separated.",
        "first_event_date": "Earliest event date (for month/year precision: first day of the period).",
        "last_event_date": "Latest event date.",
        "titles": "Event titles in date order, ' | '-separated.",
    },
    is_fact=False,
    rebuilt=True,
)

MART_CLAIMS = Table(
    name="mart_claims",
    description="The op-ed's quantitative and dated claims tested against the warehouse: one row per claim "
    "with the warehouse's figure, the period and scope it used, a verdict (supported / contradicted / not "
    "enough data) and the SQL query that produced the row (eujp/marts/claims/*.sql).",
    columns={
        "claim_id": S, "claim_number": I, "claim_text": S, "wording": S, "claim_kind": S,
        "warehouse_figure": S, "warehouse_value": F, "unit": S, "period_used": S, "scope_used": S,
        "verdict": S, "verdict_detail": S, "evidence_tables": S, "query_sql": S,
    },
    natural_key=("claim_id",),
    column_docs={
        "claim_id": "Stable id of the claim (the SQL file's name).",
        "claim_number": "Order of the claim in the op-ed.",
        "claim_text": "The claim: quoted where wording is 'quoted', else a paraphrase.",
        "wording": "quoted (the op-ed's words) or paraphrased.",
        "claim_kind": "figure, rank, multiplier or dated event(s).",
        "warehouse_figure": "What the warehouse holds for the claim, in words and numbers.",
        "warehouse_value": "The main number behind the verdict, null for event claims.",
        "unit": "Unit of warehouse_value.",
        "period_used": "Period(s) of the data the verdict rests on.",
        "scope_used": "Aggregate, country or event scope the verdict rests on (e.g. EU28 incl. UK).",
        "verdict": "supported: the warehouse holds data matching the claim at the claim's precision; "
        "contradicted: it holds data on the claim that differ; not enough data: it cannot decide.",
        "verdict_detail": "Why, with the figures, periods and caveats.",
        "evidence_tables": "Warehouse tables the query reads.",
        "query_sql": "The SQL query that produced this row (run it to reproduce).",
    },
    is_fact=False,
    rebuilt=True,
)

REFERENCE_TABLES: tuple[Table, ...] = (
    REF_JAPAN_RANK, REF_EXPORT_RESTRICTIONS_TREND, REF_CRITICAL_RAW_MATERIALS, REF_PUBLISHED_TRADE_FIGURES,
)
# Built by eujp.marts.build_marts in this order (dimensions first: the marts read them).
MODEL_TABLES: tuple[Table, ...] = (
    DIM_EU_AGGREGATE_MEMBER, DIM_DATE, DIM_PRODUCT,
    MART_TRADE_ANNUAL, MART_PRODUCT_TRADE, MART_CHAPTER_TRADE, MART_CRM_TRADE, MART_EXPORT_RESTRICTIONS,
    MART_EXPORT_RESTRICTIONS_INDEX, MART_ARMS_TRANSFERS, MART_PARTNERSHIP_TIMELINE, MART_CLAIMS,
)
MART_TABLES: tuple[Table, ...] = tuple(t for t in MODEL_TABLES if t.name.startswith("mart_"))

FACT_TABLES: tuple[Table, ...] = (
    FACT_GOODS_TRADE,
    FACT_GOODS_TRADE_PRODUCT,
    FACT_SERVICES_TRADE,
    FACT_ARMS_TRANSFERS,
    FACT_SECURITY_EVENTS,
    FACT_EXPORT_RESTRICTIONS,
)
ALL_TABLES: tuple[Table, ...] = (
    DIM_COUNTRY, *FACT_TABLES, ETL_RUNS, ETL_REJECTED_ROWS, ETL_SOURCE_STATE, ETL_REVISIONS,
    *REFERENCE_TABLES, *MODEL_TABLES,
)
TABLES: dict[str, Table] = {t.name: t for t in ALL_TABLES}
