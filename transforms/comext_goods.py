"""Comext DS-045409 SDMX-CSV rows -> fact_goods_trade_product (vectorised polars, no per-row Python).

Every wire row ends up either in a valid fact row or in `rejected` with a reason naming the column and the
code; nothing is dropped silently, out-of-scope rows included.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from transforms.common import (
    LAST_DATE,
    YEAR_PATTERN,
    TransformResult,
    between,
    check_wire_columns,
    empty_rejected,
    first_reason,
    format_text,
    key_label,
    matches_by_value,
    not_in,
    one_of,
    quarantine,
    split_by_keys,
    split_by_rules,
    split_duplicates,
    text,
)

# The columns the Comext parser (eujp.parse.sdmx_csv.parse_comext_csv) delivers, in order.
WIRE_COLUMNS: tuple[str, ...] = (
    "DATAFLOW", "LAST UPDATE", "freq", "reporter", "partner", "product", "flow", "indicators",
    "TIME_PERIOD", "OBS_VALUE",
)
# The output: fact_goods_trade_product's business columns (docs in eujp/sources/comext_goods.py).
COLUMNS: dict[str, pl.DataType] = {
    "reporter": pl.String(), "partner": pl.String(), "product_cn8": pl.String(), "flow": pl.String(),
    "period": pl.Date(), "period_code": pl.String(), "value_eur": pl.Float64(), "quantity_kg": pl.Float64(),
    "source": pl.String(), "source_version": pl.String(),
}
NATURAL_KEY: tuple[str, ...] = ("reporter", "partner", "product_cn8", "flow", "period_code")

COMEXT_INDICATORS: dict[str, str] = {"VALUE_IN_EUROS": "value_eur", "QUANTITY_IN_100KG": "quantity_kg"}
COMEXT_FLOWS: dict[str, str] = {"1": "import", "2": "export"}
# Comext writes Greece and the United Kingdom with their ISO codes (GR, GB), unlike Eurostat's EL/UK.
COMEXT_ISO_EXTRAS: tuple[str, ...] = ("GR", "GB")
# EU aggregates Comext publishes as a reporter.
COMEXT_EU_REPORTERS: tuple[str, ...] = ("EU27_2020", "EU28", "EU27_2007", "EU25", "EU15")
# Partner codes of the Comext geonomenclature that are not ISO 3166 countries in dim_country.
COMEXT_PARTNER_AGGREGATES: dict[str, str] = {
    "EXT_EU27_2020": "Extra-EU27 (from 2020): all partners outside the EU27_2020",
    "INT_EU27_2020": "Intra-EU27 (from 2020): all EU27_2020 member states",
    "EXT_EU28": "Extra-EU28 (2013-2020)",
    "INT_EU28": "Intra-EU28 (2013-2020)",
    "QP": "High seas",
    "QQ": "Stores and provisions",
    "QR": "Stores and provisions within intra-EU trade",
    "QS": "Stores and provisions within trade with third countries",
    "QU": "Countries and territories not specified",
    "QV": "Countries and territories not specified within intra-EU trade",
    "QW": "Countries and territories not specified within trade with third countries",
    "QX": "Countries and territories not specified for commercial or military reasons",
    "QY": "Not specified for commercial or military reasons, intra-EU trade",
    "QZ": "Not specified for commercial or military reasons, trade with third countries",
    "XC": "Ceuta",
    "XL": "Melilla",
    "XK": "Kosovo",
    "XS": "Serbia (Comext code)",
    "XI": "United Kingdom (Northern Ireland), from 2021",
}
COMEXT_WIRE_KEY: tuple[str, ...] = ("reporter", "partner", "product", "flow", "TIME_PERIOD", "indicators")
COMEXT_FACT_KEY: tuple[str, ...] = ("reporter", "partner", "product", "flow", "TIME_PERIOD")
_MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
_CN8_PATTERN = r"^[0-9]{8}$"
# The quarantine shows the row as published: OBS_VALUE as its raw text.
_COMEXT_RAW = [pl.col("OBS_VALUE_raw").alias(c) if c == "OBS_VALUE" else pl.col(c) for c in WIRE_COLUMNS]
# How Comext writes LAST UPDATE (the release's time), e.g. 14/08/26 11:00:00 (eujp.parse.sdmx_csv checks it).
LAST_UPDATE_FORMAT = "%d/%m/%y %H:%M:%S"


# The rules of fact_goods_trade_product's critical expectations on a row's own values that the checks of the
# wire codes do not imply: written here once (eujp.suites writes them into the table's suite). Comext's
# monthly series start in January 1988 (the first period of the CN).
PERIOD = between("period", date(1988, 1, 1), LAST_DATE)
SUITE_RULES = (PERIOD, one_of("flow", COMEXT_FLOWS.values()))

_KEY_RULES = 7  # the first rules judge a row's key (indicator, flow, product, period's form and range, reporter,
# partner), the others its OBS_VALUE


def period_of(code: pl.Expr, *, strict: bool = True) -> pl.Expr:
    """A period code (YYYY-MM or YYYY) as the date of its first day: fact_goods_trade_product.period."""
    return (pl.when(code.str.len_chars() == 4).then(pl.concat_str(code, pl.lit("-01-01")))
            .otherwise(pl.concat_str(code, pl.lit("-01"))).str.to_date("%Y-%m-%d", strict=strict))


def _periods_out_of_range(periods: pl.Series) -> pl.Series:
    """The codes among `periods` (the distinct TIME_PERIOD codes of the wire rows) whose period PERIOD refuses
    (judged once per code, not per row)."""
    codes = periods.to_frame("TIME_PERIOD")
    return codes.filter(PERIOD.broken(period_of(pl.col("TIME_PERIOD"), strict=False)).fill_null(False)
                        ).get_column("TIME_PERIOD")


def _split_values(rows: pl.DataFrame, value_rules) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows, quarantine) by the OBS_VALUE rules (missing, not a number, negative, too large), and with a
    rejected observation the other indicator's rows of its fact key: a fact row is only as good as both its
    indicators, so neither is loaded and the row the key had before (a by-key upsert) stays whole, rather than
    losing its quantity (or value) to a figure the release got wrong. Two figures of one observation under one
    stamp, one of them not a number, are so a conflict, as two numbers are (split_duplicates)."""
    broken = pl.any_horizontal([condition.fill_null(False) for condition, _ in value_rules])
    flagged = rows.with_columns(broken.alias("__broken"))
    if not flagged.get_column("__broken").any():
        return rows, empty_rejected()
    bad = flagged.filter(pl.col("__broken")).drop("__broken")
    good = flagged.filter(~pl.col("__broken")).drop("__broken")
    bad_keys = bad.select(COMEXT_FACT_KEY).unique()
    siblings, good = split_by_keys(good, bad_keys, COMEXT_FACT_KEY)
    return good, pl.concat([
        quarantine(bad, first_reason(value_rules), _COMEXT_RAW),
        quarantine(siblings, pl.concat_str(
            pl.lit("another row of natural key ("), key_label(COMEXT_FACT_KEY),
            pl.lit(") was rejected for its OBS_VALUE: a fact row is not loaded half"),
        ), _COMEXT_RAW),
    ])


def transform_goods_product(
    wire: pl.DataFrame, source_name: str, source_version: str | None, countries: pl.DataFrame, *,
    fetched_on: date | None = None,
) -> TransformResult:
    """Comext DS-045409 wire rows (eujp.parse.sdmx_csv.parse_comext_csv) -> fact_goods_trade_product.

    Pivot: the VALUE_IN_EUROS and QUANTITY_IN_100KG rows of one (reporter, partner, product, flow,
    TIME_PERIOD) become one fact row with value_eur and quantity_kg (= QUANTITY_IN_100KG x 100, rounded to
    4 decimals to drop binary noise: 502.02 x 100 is 50202, not 50201.999999999993). A key with only a
    value row gets quantity_kg null; a key with only a quantity row is rejected (a fact row needs a value).

    Row accounting, in WIRE rows: every wire row is either consumed by a valid fact row or rejected, and
    `TransformResult.valid_wire_rows` says how many wire rows the valid rows consumed, so
    `result.rows_in == wire.height` while `len(result.valid)` counts fact rows.

    Rejected wire rows, each with a reason naming the code: indicators other than the two above
    ("out of scope indicator"); flow not 1 (import) or 2 (export); product not 8 digits; TIME_PERIOD not
    YYYY-MM (freq M) or YYYY (freq A), or of a period outside `PERIOD` (1988-01-01..2100-12-31); reporter not
    a dim_country iso2 / GR / GB / EU aggregate; partner not a dim_country iso2 / GR / GB /
    COMEXT_PARTNER_AGGREGATES code; OBS_VALUE missing (or blank), not a number or negative; a QUANTITY_IN_100KG
    too large for a number once in kg (x 100); the other indicator of a key one of whose OBS_VALUEs was so
    rejected (the key's previous row stays whole). Duplicates, on (reporter, partner, product, flow,
    TIME_PERIOD, indicators): identical OBS_VALUE -> one copy kept, the others rejected; different OBS_VALUE ->
    every wire row of that fact key (both indicators) is rejected, so no half-trusted fact row is loaded.

    Releases: an observation (a wire key) given under several LAST UPDATE stamps (a month's first release and
    its revision side by side, a payload re-sent after a revision) is the one of its latest stamp: the rows
    of earlier stamps are superseded (`latest_observations`: consumed, not rejected), as loading the releases
    one after the other would leave it, instead of the versions being quarantined as conflicting duplicates.
    Only versions of one observation compete: the value and the quantity of a fact may carry different stamps
    (a revision touching one of them). Two versions under one stamp are duplicates, as before.
    """
    check_wire_columns(wire, (*WIRE_COLUMNS, "OBS_VALUE_raw"), source_name)
    iso2 = countries.get_column("iso2").drop_nulls().to_list()
    reporters = sorted({*iso2, *COMEXT_ISO_EXTRAS, *COMEXT_EU_REPORTERS})
    partners = sorted({*iso2, *COMEXT_ISO_EXTRAS, *COMEXT_PARTNER_AGGREGATES})

    period = pl.col("TIME_PERIOD")
    # the form of the periods and of the products judged once per distinct code, not per row
    periods = wire.get_column("TIME_PERIOD").unique()
    monthly = matches_by_value(periods, _MONTH_PATTERN)
    annual = matches_by_value(periods, YEAR_PATTERN)
    rules = [
        (not_in("indicators", COMEXT_INDICATORS),
         format_text("out of scope indicator {} (only {} are loaded)", text("indicators"),
                     pl.lit(", ".join(COMEXT_INDICATORS)))),
        (not_in("flow", COMEXT_FLOWS), format_text("flow {} is neither 1 (import) nor 2 (export)", text("flow"))),
        (~matches_by_value(wire.get_column("product").unique(), _CN8_PATTERN),
         format_text("product {} is not a CN8 code (8 digits)", text("product"))),
        (~((pl.col("freq").eq_missing("M") & monthly) | (pl.col("freq").eq_missing("A") & annual)),
         format_text("TIME_PERIOD {} does not match freq {} (M: YYYY-MM, A: YYYY)", text("TIME_PERIOD"), text("freq"))),
        (period.is_in(_periods_out_of_range(periods).implode()), PERIOD.reason(period, shown=period)),
        (not_in("reporter", reporters), format_text("unknown reporter code {}", text("reporter"))),
        (not_in("partner", partners), format_text("unknown partner code {}", text("partner"))),
        (pl.col("OBS_VALUE_raw").is_null(), pl.lit("missing OBS_VALUE")),
        (pl.col("OBS_VALUE").is_null(), format_text("OBS_VALUE {} is not a number", text("OBS_VALUE_raw"))),
        (pl.col("OBS_VALUE") < 0, format_text("negative OBS_VALUE {}", text("OBS_VALUE_raw"))),
        ((pl.col("OBS_VALUE") * 100).is_infinite() & (pl.col("indicators") == "QUANTITY_IN_100KG"),
         format_text("QUANTITY_IN_100KG {} is beyond the range of a number in kg", text("OBS_VALUE_raw"))),
    ]
    # The key's rules first, then the releases (a later LAST UPDATE of an observation supersedes it, whatever
    # the earlier one held), then the value's rules on what is left: the latest figure of each observation.
    ok, rejected_keys = split_by_rules(wire, rules[:_KEY_RULES], _COMEXT_RAW)
    ok, superseded = latest_observations(ok)
    ok, rejected_values = _split_values(ok, rules[_KEY_RULES:])
    rejected = [rejected_keys, rejected_values]

    # Pivot: the VALUE_IN_EUROS and QUANTITY_IN_100KG rows of a fact key become one row; once duplicates
    # are resolved each key has at most one row per indicator, so max() picks it.
    is_value = pl.col("indicators") == "VALUE_IN_EUROS"

    def pivot(rows: pl.DataFrame) -> pl.DataFrame:
        return (
            rows.lazy()
            .with_columns(
                pl.when(is_value).then(pl.col("OBS_VALUE")).alias("value_eur"),
                pl.when(~is_value).then(pl.col("OBS_VALUE")).alias("quantity_100kg"),
            )
            .group_by(list(COMEXT_FACT_KEY))
            .agg(pl.col("value_eur").max(), pl.col("quantity_100kg").max(), pl.len().alias("wire_rows"),
                 is_value.sum().alias("value_rows"))
            .collect()
        )

    # Pivot first: a wire key (fact key + indicator) repeats exactly when a fact key has two value rows or
    # two quantity rows, which the pivot counts anyway, so a clean payload (on 10M rows: no repeats) is
    # hashed once. Otherwise duplicates, per indicator row, are compared on the key and the value only
    # (DATAFLOW, LAST UPDATE and the raw spelling of the number may differ between two payloads carrying
    # the same figure); only rows whose key repeats go through split_duplicates; survivors are re-pivoted.
    pivoted = pivot(ok)
    kept = ok
    conflicts = None
    repeats = (pl.col("value_rows") > 1) | (pl.col("wire_rows") - pl.col("value_rows") > 1)
    if pivoted.select(repeats.any()).item():
        is_repeated = ok.select(pl.struct(COMEXT_WIRE_KEY).is_duplicated()).to_series()
        repeated, kept = ok.filter(is_repeated), ok.filter(~is_repeated)
        kept_repeated, duplicates = split_duplicates(
            repeated, COMEXT_WIRE_KEY, ignore=("DATAFLOW", "LAST UPDATE", "freq", "OBS_VALUE_raw")
        )
        rejected.append(quarantine(duplicates, pl.col("reason"), _COMEXT_RAW))
        kept = pl.concat([kept, kept_repeated])
        # A fact row is only as good as both its indicators: drop the other indicator of a conflicting key.
        conflicting = (
            duplicates.filter(pl.col("reason").str.starts_with("conflicting")).select(COMEXT_FACT_KEY).unique()
        )
        if conflicting.height:
            conflicts = conflicting.select(
                pl.col("reporter"), pl.col("partner"), pl.col("product").alias("product_cn8"),
                pl.col("flow").replace_strict(COMEXT_FLOWS, return_dtype=pl.String),
                pl.col("TIME_PERIOD").alias("period_code"),
            ).cast({k: COLUMNS[k] for k in NATURAL_KEY})
            siblings, kept = split_by_keys(kept, conflicting, COMEXT_FACT_KEY)
            rejected.append(quarantine(siblings, pl.concat_str(
                pl.lit("conflicting values in another indicator for natural key ("), key_label(COMEXT_FACT_KEY),
                pl.lit(")"),
            ), _COMEXT_RAW))
        pivoted = pivot(kept)
    orphans = pivoted.filter(pl.col("value_eur").is_null()).select(COMEXT_FACT_KEY)
    if orphans.height:
        orphan_rows, _ = split_by_keys(kept, orphans, COMEXT_FACT_KEY)
        rejected.append(quarantine(orphan_rows, pl.concat_str(
            pl.lit("QUANTITY_IN_100KG without a VALUE_IN_EUROS row for natural key ("),
            key_label(COMEXT_FACT_KEY), pl.lit(")"),
        ), _COMEXT_RAW))
        pivoted = pivoted.filter(pl.col("value_eur").is_not_null())

    period_code = pl.col("TIME_PERIOD")
    valid = pivoted.select(
        pl.col("reporter"),
        pl.col("partner"),
        pl.col("product").alias("product_cn8"),
        pl.col("flow").replace_strict(COMEXT_FLOWS, return_dtype=pl.String),
        period_of(period_code).alias("period"),
        period_code.alias("period_code"),
        pl.col("value_eur"),
        (pl.col("quantity_100kg") * 100).round(4).alias("quantity_kg"),
        pl.lit(source_name, dtype=pl.String).alias("source"),
        pl.lit(source_version, dtype=pl.String).alias("source_version"),
    ).cast(COLUMNS)
    return TransformResult(
        valid=valid, rejected=pl.concat(rejected),
        valid_wire_rows=int(pivoted.get_column("wire_rows").sum()) + superseded,
        conflicts=conflicts,
    )


def latest_observations(rows: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """`rows` (Comext wire rows that passed the rules) without those a later LAST UPDATE of the same
    observation (COMEXT_WIRE_KEY) supersedes, and how many those were. Stamps are ordered by their time (one
    that is not dd/mm/yy HH:MM:SS, or none, first), not as text ('02/10/26' is after '14/08/26').

    Only a month holding rows of two stamps can hold a superseded row (an observation holds its month): found
    in ~17 ms for a chunk of 2M rows (a hash of the distinct (TIME_PERIOD, LAST UPDATE) pairs), and only those
    months' rows are grouped by observation."""
    if rows.is_empty():
        return rows, 0
    pairs = rows.lazy().select("TIME_PERIOD", "LAST UPDATE").unique().collect()
    shared = pairs.filter(pl.col("TIME_PERIOD").is_duplicated() & pl.col("TIME_PERIOD").is_not_null())
    if shared.is_empty():
        return rows, 0
    at = pl.col("LAST UPDATE").str.strptime(pl.Datetime("us"), LAST_UPDATE_FORMAT, strict=False)
    order = (shared.select(pl.col("LAST UPDATE").unique()).sort([at, pl.col("LAST UPDATE")], nulls_last=False)
             .with_row_index("__stamp"))
    numbered = rows.with_row_index("__row")
    ranked = (numbered.filter(pl.col("TIME_PERIOD").is_in(shared.get_column("TIME_PERIOD").implode()))
              .join(order, on="LAST UPDATE", how="left", nulls_equal=True))
    superseded = ranked.filter(pl.col("__stamp") < pl.col("__stamp").max().over(list(COMEXT_WIRE_KEY))).select("__row")
    if superseded.is_empty():
        return rows, 0
    return numbered.join(superseded, on="__row", how="anti", maintain_order="left").drop("__row"), superseded.height
