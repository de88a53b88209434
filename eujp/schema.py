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

    @property
    def business_columns(self) -> dict[str, pl.DataType]:
        return self.columns

    @property
    def all_columns(self) -> dict[str, pl.DataType]:
        return {**self.columns, **LOAD_COLUMNS} if self.is_fact else dict(self.columns)

    def empty_frame(self) -> pl.DataFrame:
        return pl.DataFrame(schema=self.business_columns)


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
        "eu_exit_date": "Date the country left the EU (United Kingdom: 2020-01-31), null otherwise.",
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
        "natural_key": "Natural key of the revised row as a JSON object, e.g. "
        '{"reporter":"EU27_2020","partner":"JP","flow":"export","period_year":2024}.',
        "column_name": "Revised column (value_mio_eur, value_eur, quantity_kg).",
        "old_value": "Value before the run (null: it was missing).",
        "new_value": "Value the run loaded (null: now missing).",
    },
    is_fact=False,
)

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
)
TABLES: dict[str, Table] = {t.name: t for t in ALL_TABLES}
