"""Shared pieces of the Eurostat JSON-stat transforms (eurostat_goods, eurostat_services): the wire format's
common row rules and the finishing step (fact columns, duplicated natural keys)."""

from __future__ import annotations

import polars as pl

from transforms.common import (
    LAST_YEAR,
    YEAR_PATTERN,
    TransformResult,
    between,
    conflicting_keys,
    format_text,
    not_in,
    quarantine,
    split_by_rules,
    split_duplicates,
    text,
)

# The years a fact of the two tables may be of (their suites' critical range; eujp.suites writes it there).
PERIOD_YEAR = between("period_year", 1950, LAST_YEAR)


def jsonstat_common_rules(countries: pl.DataFrame, reporters: tuple[str, ...]) -> list[tuple[pl.Expr, pl.Expr]]:
    """Rules shared by the Eurostat JSON-stat annual transforms: geo, partner, time (a year within
    PERIOD_YEAR), value."""
    eurostat_codes = countries.get_column("eurostat_code").drop_nulls().unique()
    return [
        (not_in("geo", reporters),
         format_text("geo {} is not an EU aggregate ({})", text("geo"), pl.lit(", ".join(reporters)))),
        (not_in("partner", eurostat_codes),
         format_text("partner {} is not a known Eurostat country code (dim_country.eurostat_code)", text("partner"))),
        (~pl.col("time").str.contains(YEAR_PATTERN).fill_null(False),
         format_text("time {} is not a year (YYYY)", text("time"))),
        PERIOD_YEAR.rule(pl.col("time").cast(pl.Int32, strict=False), shown=text("time")),
        # A cell with a flag and no value (c confidential, : not available) is a figure Eurostat withholds:
        # loaded as such (value null, obs_status the flag), so that it replaces, and records as a revision, a
        # value an earlier release gave for its key. A cell with neither is no observation.
        (pl.col("value").is_null() & pl.col("status").is_null(), pl.lit("missing value (status none)")),
    ]


def finish_jsonstat(
    wire: pl.DataFrame,
    rules: list[tuple[pl.Expr, pl.Expr]],
    business: list[pl.Expr],
    table_columns: dict[str, pl.DataType],
    natural_key: tuple[str, ...],
    dimensions: tuple[str, ...],
) -> TransformResult:
    """Apply the row rules, build the fact columns, quarantine duplicated natural keys."""
    wire_columns = [*dimensions, "value", "status"]
    ok, rejected = split_by_rules(wire, rules, wire_columns)
    ok = ok.with_columns(business)
    # Compare on the fact columns only; wire-only columns ride along for the quarantine's raw_record.
    wire_only = tuple(c for c in wire_columns if c not in table_columns)
    kept, duplicates = split_duplicates(ok, natural_key, ignore=wire_only)
    valid = kept.select(list(table_columns)).cast(table_columns)
    return TransformResult(
        valid=valid, rejected=pl.concat([rejected, quarantine(duplicates, pl.col("reason"), wire_columns)]),
        conflicts=conflicting_keys(duplicates, natural_key, table_columns),
    )
