"""OECD export-restriction wire rows (eujp.parse.oecd, one row per attribute) -> fact_export_restrictions
(one row per measure).

A measure is (REF_AREA, COMMODITY, POLICY_TYPE, POLICY_VARIATION, TIME_PERIOD); its attribute rows
(POLICY_DESCRIPTION = VAL, VAL_UNIT, ..., OBS_VALUE = the text) are pivoted into columns by `ATTRIBUTES`.

Checks. A failing *measure* sends every one of its wire rows to quarantine, each with the measure's reasons:

* REF_AREA is an ISO3 code of dim_country; COMMODITY is 'HS07_' + six digits; TIME_PERIOD is a four-digit year
  within `PERIOD_YEAR` (1950..2100); POLICY_TYPE and POLICY_VARIATION are present, POLICY_TYPE an upper-case code
  (`POLICY_TYPE`);
* DATI and END are dd/mm/yyyy (a real date) or 'nd' (-> null); TEMP is yes or no (case-insensitive);
* an attribute given twice with different values is a conflict (the same value twice is accepted): the measure's
  natural key is one of the result's `conflicts`, so the loader keeps the version loaded before.

A wire row whose attribute code is unknown (not in `ATTRIBUTES` or `IGNORED_ATTRIBUTES`) is quarantined on its own
with the code in the reason; the rest of its measure still loads. ORIG_LEG_PROD (product as legislated) has no
column in the table: its rows are consumed by their measure and not loaded.

Row accounting: one output row consumes several wire rows, so `len(valid) + len(rejected) != len(wire)`. As for the
Comext pivot, the result sets `TransformResult.valid_wire_rows` to the number of wire rows behind the valid
measures, so `rows_in` == `valid_wire_rows + len(rejected)` == `len(wire)`.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from transforms.common import (
    LAST_YEAR,
    TransformResult,
    between,
    empty_rejected,
    format_text,
    matches,
    reject,
)

MEASURE_KEY: tuple[str, ...] = ("REF_AREA", "COMMODITY", "POLICY_TYPE", "POLICY_VARIATION", "TIME_PERIOD")
# POLICY_DESCRIPTION code -> output column
ATTRIBUTES: dict[str, str] = {
    "VAL": "value", "VAL_UNIT": "value_unit", "VAL_CONDITION": "value_condition", "DATI": "date_introduced",
    "END": "date_end", "TEMP": "is_temporary", "POM": "purpose", "NOD": "document", "LEG": "legal_basis",
    "LINK": "link", "AGEN": "agency", "ADD": "note",
}
IGNORED_ATTRIBUTES: frozenset[str] = frozenset({"ORIG_LEG_PROD"})
# The rules of fact_export_restrictions' critical expectations on a row's own values that the checks below do not
# imply: written here once (eujp.suites writes them into the table's suite).
POLICY_TYPE = matches("policy_type", r"^(?:M\d+|NO_RESTRICTION|[A-Z_0-9]+)$")  # a measure code: M1, M12, ...
PERIOD_YEAR = between("period_year", 1950, LAST_YEAR)
SUITE_RULES = (POLICY_TYPE, PERIOD_YEAR)
_ROW = "__row"
# The output: fact_export_restrictions' business columns (docs in eujp/sources/oecd_restrictions.py).
COLUMNS: dict[str, pl.DataType] = {
    "ref_area_iso3": pl.String(), "commodity_hs6": pl.String(), "commodity_label": pl.String(),
    "policy_type": pl.String(), "policy_type_label": pl.String(), "policy_variation": pl.String(),
    "period_year": pl.Int32(), "value": pl.String(), "value_unit": pl.String(), "value_condition": pl.String(),
    "date_introduced": pl.Date(), "date_end": pl.Date(), "is_temporary": pl.Boolean(), "purpose": pl.String(),
    "document": pl.String(), "legal_basis": pl.String(), "link": pl.String(), "agency": pl.String(),
    "note": pl.String(), "source": pl.String(), "source_version": pl.String(),
}
NATURAL_KEY: tuple[str, ...] = ("ref_area_iso3", "commodity_hs6", "policy_type", "policy_variation", "period_year")


def _date(attr: str) -> tuple[pl.Expr, pl.Expr]:
    """(parsed Date, problem message or null) for a dd/mm/yyyy-or-'nd' attribute column."""
    raw = pl.col(ATTRIBUTES[attr])
    parsed = raw.str.to_date("%d/%m/%Y", strict=False)
    is_nd = raw.str.to_lowercase() == "nd"
    bad = raw.is_not_null() & ~is_nd & (~raw.str.contains(r"^\d{2}/\d{2}/\d{4}$") | parsed.is_null())
    problem = pl.when(bad).then(format_text(f"{attr}: expected dd/mm/yyyy or 'nd', got '{{}}'", raw))
    return pl.when(is_nd.fill_null(False)).then(None).otherwise(parsed), problem


def _join_problems(problems: list[pl.Expr]) -> pl.Expr:
    joined = pl.concat_str(problems, separator="; ", ignore_nulls=True)
    return pl.when(joined != "").then(joined)


def transform_restrictions(
    wire: pl.DataFrame, source_name: str, source_version: str | None, countries: pl.DataFrame, *,
    fetched_on: date | None = None,
) -> TransformResult:
    iso3 = countries.get_column("iso3").drop_nulls().unique().to_list()
    w = wire.with_row_index(_ROW).with_columns(
        pl.col(c).cast(pl.String).str.strip_chars().replace("", None) for c in wire.columns
    )
    attr = pl.col("POLICY_DESCRIPTION")
    known = attr.is_in([*ATTRIBUTES, *IGNORED_ATTRIBUTES]).fill_null(False)
    unknown_rows = w.filter(~known).select(
        _ROW,
        pl.when(attr.is_null()).then(pl.lit("POLICY_DESCRIPTION (attribute code) is empty"))
        .otherwise(format_text("POLICY_DESCRIPTION: unknown attribute code '{}'", attr)).alias("reason"),
    )

    value = pl.col("OBS_VALUE")
    measures = (
        w.filter(known)
        .group_by(MEASURE_KEY, maintain_order=True)
        .agg(
            pl.col(_ROW),
            *[value.filter(attr == code).first().alias(col) for code, col in ATTRIBUTES.items()],
            pl.concat_str(
                [pl.when(value.filter(attr == code).n_unique() > 1).then(pl.lit(code)) for code in ATTRIBUTES],
                separator=", ", ignore_nulls=True,
            ).alias("__conflicts"),
            pl.col("commodity_label").drop_nulls().first(),
            pl.col("policy_type_label").drop_nulls().first(),
        )
    )

    date_introduced, dati_problem = _date("DATI")
    date_end, end_problem = _date("END")
    temp = pl.col("is_temporary").str.to_lowercase()
    hs6 = pl.col("COMMODITY").str.strip_prefix("HS07_")
    problems = [
        *[pl.when(pl.col(c).is_null()).then(pl.lit(f"{c} is empty")) for c in MEASURE_KEY],
        pl.when(pl.col("REF_AREA").is_not_null() & ~pl.col("REF_AREA").is_in(iso3))
        .then(format_text("REF_AREA: '{}' is not an ISO3 code in dim_country", pl.col("REF_AREA"))),
        pl.when(pl.col("COMMODITY").is_not_null() & ~pl.col("COMMODITY").str.contains(r"^HS07_\d{6}$"))
        .then(format_text("COMMODITY: '{}' is not HS07_ followed by six digits", pl.col("COMMODITY"))),
        pl.when(pl.col("TIME_PERIOD").is_not_null() & ~pl.col("TIME_PERIOD").str.contains(r"^\d{4}$"))
        .then(format_text("TIME_PERIOD: '{}' is not a year", pl.col("TIME_PERIOD")))
        .otherwise(PERIOD_YEAR.problem(pl.col("TIME_PERIOD").cast(pl.Int32, strict=False), pl.col("TIME_PERIOD"))),
        POLICY_TYPE.problem(pl.col("POLICY_TYPE")),
        pl.when(pl.col("__conflicts") != "")
        .then(format_text("conflicting values for attribute(s) {}", pl.col("__conflicts"))),
        dati_problem,
        end_problem,
        pl.when(temp.is_not_null() & ~temp.is_in(["yes", "no"]))
        .then(format_text("TEMP: expected yes or no, got '{}'", pl.col("is_temporary"))),
    ]
    measures = measures.with_columns(__reason=_join_problems(problems))
    bad = measures["__reason"].is_not_null()

    rejected_rows = pl.concat([
        unknown_rows,
        measures.filter(bad).select(pl.col(_ROW), pl.col("__reason").alias("reason")).explode(_ROW),
    ]).sort(_ROW)
    if rejected_rows.height:
        raw = wire.with_row_index(_ROW).join(rejected_rows, on=_ROW, how="inner").sort(_ROW)
        rejected = reject(raw.drop(_ROW, "reason"), pl.lit(raw["reason"]))
    else:
        rejected = empty_rejected()

    good = measures.filter(~bad)
    valid_wire_rows = int(good.select(pl.col(_ROW).list.len().sum()).item() or 0)
    valid = good.select(
        pl.col("REF_AREA").alias("ref_area_iso3"),
        hs6.alias("commodity_hs6"),
        pl.col("commodity_label"),
        pl.col("POLICY_TYPE").alias("policy_type"),
        pl.col("policy_type_label"),
        pl.col("POLICY_VARIATION").alias("policy_variation"),
        pl.col("TIME_PERIOD").cast(pl.Int32).alias("period_year"),
        pl.col("value"),
        pl.col("value_unit"),
        pl.col("value_condition"),
        date_introduced.alias("date_introduced"),
        date_end.alias("date_end"),
        (temp == "yes").alias("is_temporary"),
        pl.col("purpose"),
        pl.col("document"),
        pl.col("legal_basis"),
        pl.col("link"),
        pl.col("agency"),
        pl.col("note"),
        pl.lit(source_name, dtype=pl.String).alias("source"),
        pl.lit(source_version, dtype=pl.String).alias("source_version"),
    ).cast(COLUMNS)
    # A measure given twice with different attribute values is a conflicting duplicate of its natural key.
    conflicts = measures.filter(pl.col("__conflicts") != "").select(
        pl.col("REF_AREA").alias("ref_area_iso3"),
        hs6.alias("commodity_hs6"),
        pl.col("POLICY_TYPE").alias("policy_type"),
        pl.col("POLICY_VARIATION").alias("policy_variation"),
        pl.col("TIME_PERIOD").cast(pl.Int32, strict=False).alias("period_year"),
    ).drop_nulls().unique(maintain_order=True)
    return TransformResult(valid=valid, rejected=rejected, valid_wire_rows=valid_wire_rows,
                           conflicts=conflicts if conflicts.height else None)
