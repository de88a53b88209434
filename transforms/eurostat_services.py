"""Eurostat bop_its6_det JSON-stat rows -> fact_services_trade (vectorised polars, no per-row Python)."""

from __future__ import annotations

from datetime import date

import polars as pl

from transforms.common import TransformResult, check_wire_columns, format_text, matches, not_in, one_of, text
from transforms.jsonstat import PERIOD_YEAR, finish_jsonstat, jsonstat_common_rules

SERVICES_DIMENSIONS: tuple[str, ...] = ("freq", "currency", "bop_item", "stk_flow", "partner", "geo", "time")
SERVICES_FLOWS: dict[str, str] = {"CRE": "export", "DEB": "import", "BAL": "balance"}
# EU aggregates fact_services_trade.reporter may hold.
SERVICES_REPORTERS: tuple[str, ...] = ("EU27_2007", "EU28", "EU27_2020")
SERVICES_CURRENCY = "MIO_EUR"
BOP_ITEM = matches("bop_item", r"^[A-Z][A-Z0-9_]*$")  # a BPM6 item code (S, SC, SC1, ...)
# The rules of fact_services_trade's critical expectations on a row's own values, written here once
# (eujp.suites writes them into the table's suite): the transform rejects a row that breaks one.
SUITE_RULES = (PERIOD_YEAR, BOP_ITEM, one_of("reporter", SERVICES_REPORTERS), one_of("flow", SERVICES_FLOWS.values()))
# The output: fact_services_trade's business columns (docs in eujp/sources/eurostat_services.py).
COLUMNS: dict[str, pl.DataType] = {
    "reporter": pl.String(), "partner": pl.String(), "bop_item": pl.String(), "flow": pl.String(),
    "period_year": pl.Int32(), "value_mio_eur": pl.Float64(), "obs_status": pl.String(), "source": pl.String(),
    "source_version": pl.String(),
}
NATURAL_KEY: tuple[str, ...] = ("reporter", "partner", "bop_item", "flow", "period_year")


def transform_services(
    wire: pl.DataFrame, source_name: str, source_version: str | None, countries: pl.DataFrame, *,
    fetched_on: date | None = None,
) -> TransformResult:
    """bop_its6_det JSON-stat rows (freq, currency, bop_item, stk_flow, partner, geo, time, value, status)
    -> fact_services_trade.

    Loaded: freq A, currency MIO_EUR, stk_flow CRE/DEB/BAL (-> export/import/balance), any non-empty
    bop_item. Rejected, with the reason: other freq / currency / stk_flow ("out of scope ..."), a missing
    bop_item or one that is no item code (BOP_ITEM), geo not one of SERVICES_REPORTERS, partner not a dim_country
    eurostat_code, time not a year of PERIOD_YEAR,
    a null value ("missing value (status c)"), and duplicated natural keys (one copy of identical rows
    kept, all copies of conflicting rows quarantined).
    """
    check_wire_columns(wire, (*SERVICES_DIMENSIONS, "value", "status"), source_name)
    rules = [
        (pl.col("freq").ne_missing("A"), format_text("out of scope freq {} (only A is loaded)", text("freq"))),
        (pl.col("currency").ne_missing(SERVICES_CURRENCY),
         format_text("out of scope currency {} (only {} is loaded)", text("currency"), pl.lit(SERVICES_CURRENCY))),
        (not_in("stk_flow", SERVICES_FLOWS),
         format_text("out of scope stk_flow {} (only {} are loaded)", text("stk_flow"),
                     pl.lit(", ".join(SERVICES_FLOWS)))),
        (pl.col("bop_item").fill_null("").str.strip_chars() == "", pl.lit("missing bop_item")),
        BOP_ITEM.rule(pl.col("bop_item")),
        *jsonstat_common_rules(countries, SERVICES_REPORTERS),
    ]
    business = [
        pl.col("geo").alias("reporter"),
        pl.col("stk_flow").replace_strict(SERVICES_FLOWS, return_dtype=pl.String).alias("flow"),
        pl.col("time").cast(pl.Int32).alias("period_year"),
        pl.col("value").alias("value_mio_eur"),
        pl.col("status").alias("obs_status"),
        pl.lit(source_name, dtype=pl.String).alias("source"),
        pl.lit(source_version, dtype=pl.String).alias("source_version"),
    ]
    return finish_jsonstat(wire, rules, business, COLUMNS, NATURAL_KEY, SERVICES_DIMENSIONS)
