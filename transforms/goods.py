"""Goods trade wire rows -> fact_goods_trade (Eurostat ext_lt_maineu) and fact_goods_trade_product (Comext).

Both transforms are vectorised polars (no Python per row, no map_elements). Every wire row ends up either
in a valid fact row or in `rejected` with a reason naming the column and the code; nothing is dropped
silently, out-of-scope rows included.
"""

from __future__ import annotations

import polars as pl

from eujp.errors import SchemaDriftError
from eujp.parse.sdmx_csv import COMEXT_COLUMNS
from eujp.schema import FACT_GOODS_TRADE, FACT_GOODS_TRADE_PRODUCT
from transforms.common import (
    TransformResult,
    key_label,
    not_in,
    quarantine,
    split_by_rules,
    split_duplicates,
    text,
)

# --------------------------------------------------------------------------- ext_lt_maineu (JSON-stat)

GOODS_ANNUAL_DIMENSIONS: tuple[str, ...] = ("freq", "indic_et", "sitc06", "partner", "geo", "time")
GOODS_INDICATOR_FLOWS: dict[str, str] = {"MIO_EXP_VAL": "export", "MIO_IMP_VAL": "import", "MIO_BAL_VAL": "balance"}
# EU aggregates ext_lt_maineu publishes figures for (fact_goods_trade.reporter).
GOODS_REPORTERS: tuple[str, ...] = ("EU15", "EU27_2007", "EU28", "EU27_2020")
YEAR_PATTERN = r"^[0-9]{4}$"


def check_wire_columns(wire: pl.DataFrame, expected: tuple[str, ...], source_name: str) -> None:
    """The wire frame must have exactly `expected` columns: a new dimension would split the natural key."""
    missing = [c for c in expected if c not in wire.columns]
    new = [c for c in wire.columns if c not in expected]
    if missing or new:
        raise SchemaDriftError(
            f"{source_name}: wire columns changed: missing {missing}, unexpected {new}; expected {list(expected)}"
        )


def jsonstat_common_rules(countries: pl.DataFrame, reporters: tuple[str, ...]) -> list[tuple[pl.Expr, pl.Expr]]:
    """Rules shared by the Eurostat JSON-stat annual transforms: geo, partner, time, value."""
    eurostat_codes = countries.get_column("eurostat_code").drop_nulls().unique()
    return [
        (not_in("geo", reporters),
         pl.format("geo {} is not an EU aggregate ({})", text("geo"), pl.lit(", ".join(reporters)))),
        (not_in("partner", eurostat_codes),
         pl.format("partner {} is not a known Eurostat country code (dim_country.eurostat_code)", text("partner"))),
        (~pl.col("time").str.contains(YEAR_PATTERN).fill_null(False),
         pl.format("time {} is not a year (YYYY)", text("time"))),
        (pl.col("value").is_null(),
         pl.format("missing value (status {})", pl.col("status").fill_null("none"))),
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
        valid=valid, rejected=pl.concat([rejected, quarantine(duplicates, pl.col("reason"), wire_columns)])
    )


def transform_goods_annual(
    wire: pl.DataFrame, source_name: str, source_version: str | None, countries: pl.DataFrame
) -> TransformResult:
    """ext_lt_maineu JSON-stat rows (freq, indic_et, sitc06, partner, geo, time, value, status) ->
    fact_goods_trade.

    Loaded: freq A, sitc06 TOTAL, indic_et MIO_EXP_VAL/MIO_IMP_VAL/MIO_BAL_VAL (-> export/import/balance).
    Rejected, with the reason: other freq / sitc06 / indicators ("out of scope ..."), geo not one of
    GOODS_REPORTERS, partner not a dim_country eurostat_code, time not a year, a null value
    ("missing value (status c)"), and duplicated natural keys (transforms.common.split_duplicates:
    one copy of identical rows is kept, all copies of conflicting rows are quarantined).
    """
    check_wire_columns(wire, (*GOODS_ANNUAL_DIMENSIONS, "value", "status"), source_name)
    table = FACT_GOODS_TRADE
    rules = [
        (pl.col("freq").ne_missing("A"), pl.format("out of scope freq {} (only A is loaded)", text("freq"))),
        (pl.col("sitc06").ne_missing("TOTAL"),
         pl.format("out of scope sitc06 {} (only TOTAL is loaded)", text("sitc06"))),
        (not_in("indic_et", GOODS_INDICATOR_FLOWS),
         pl.format("out of scope indicator {} (only {} are loaded)", text("indic_et"),
                   pl.lit(", ".join(GOODS_INDICATOR_FLOWS)))),
        *jsonstat_common_rules(countries, GOODS_REPORTERS),
    ]
    business = [
        pl.col("geo").alias("reporter"),
        pl.col("indic_et").replace_strict(GOODS_INDICATOR_FLOWS, return_dtype=pl.String).alias("flow"),
        pl.col("time").cast(pl.Int32).alias("period_year"),
        pl.col("value").alias("value_mio_eur"),
        pl.col("status").alias("obs_status"),
        pl.lit(source_name, dtype=pl.String).alias("source"),
        pl.lit(source_version, dtype=pl.String).alias("source_version"),
    ]
    return finish_jsonstat(wire, rules, business, table.business_columns, table.natural_key,
                           GOODS_ANNUAL_DIMENSIONS)


# --------------------------------------------------------------------------- Comext DS-045409 (SDMX-CSV)

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
_COMEXT_RAW = [pl.col("OBS_VALUE_raw").alias(c) if c == "OBS_VALUE" else pl.col(c) for c in COMEXT_COLUMNS]


def transform_goods_product(
    wire: pl.DataFrame, source_name: str, source_version: str | None, countries: pl.DataFrame
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
    YYYY-MM (freq M) or YYYY (freq A); reporter not a dim_country iso2 / GR / GB / EU aggregate; partner not
    a dim_country iso2 / GR / GB / COMEXT_PARTNER_AGGREGATES code; OBS_VALUE missing, not a number or
    negative. Duplicates, on (reporter, partner, product, flow, TIME_PERIOD, indicators): identical
    OBS_VALUE -> one copy kept, the others rejected; different OBS_VALUE -> every wire row of that fact
    key (both indicators) is rejected, so no half-trusted fact row is loaded.
    """
    check_wire_columns(wire, (*COMEXT_COLUMNS, "OBS_VALUE_raw"), source_name)
    table = FACT_GOODS_TRADE_PRODUCT
    iso2 = countries.get_column("iso2").drop_nulls().to_list()
    reporters = sorted({*iso2, *COMEXT_ISO_EXTRAS, *COMEXT_EU_REPORTERS})
    partners = sorted({*iso2, *COMEXT_ISO_EXTRAS, *COMEXT_PARTNER_AGGREGATES})

    period = pl.col("TIME_PERIOD")
    monthly = period.str.contains(_MONTH_PATTERN).fill_null(False)
    annual = period.str.contains(YEAR_PATTERN).fill_null(False)
    rules = [
        (not_in("indicators", COMEXT_INDICATORS),
         pl.format("out of scope indicator {} (only {} are loaded)", text("indicators"),
                   pl.lit(", ".join(COMEXT_INDICATORS)))),
        (not_in("flow", COMEXT_FLOWS), pl.format("flow {} is neither 1 (import) nor 2 (export)", text("flow"))),
        (~pl.col("product").str.contains(_CN8_PATTERN).fill_null(False),
         pl.format("product {} is not a CN8 code (8 digits)", text("product"))),
        (~((pl.col("freq").eq_missing("M") & monthly) | (pl.col("freq").eq_missing("A") & annual)),
         pl.format("TIME_PERIOD {} does not match freq {} (M: YYYY-MM, A: YYYY)", text("TIME_PERIOD"), text("freq"))),
        (not_in("reporter", reporters), pl.format("unknown reporter code {}", text("reporter"))),
        (not_in("partner", partners), pl.format("unknown partner code {}", text("partner"))),
        (pl.col("OBS_VALUE_raw").is_null(), pl.lit("missing OBS_VALUE")),
        (pl.col("OBS_VALUE").is_null(), pl.format("OBS_VALUE {} is not a number", text("OBS_VALUE_raw"))),
        (pl.col("OBS_VALUE") < 0, pl.format("negative OBS_VALUE {}", text("OBS_VALUE_raw"))),
    ]
    ok, rejected_rows = split_by_rules(wire, rules, _COMEXT_RAW)
    rejected = [rejected_rows]

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
            .group_by(list(COMEXT_FACT_KEY), maintain_order=True)
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
            siblings = kept.join(conflicting, on=list(COMEXT_FACT_KEY), how="semi", maintain_order="left")
            kept = kept.join(conflicting, on=list(COMEXT_FACT_KEY), how="anti", maintain_order="left")
            rejected.append(quarantine(siblings, pl.concat_str(
                pl.lit("conflicting values in another indicator for natural key ("), key_label(COMEXT_FACT_KEY),
                pl.lit(")"),
            ), _COMEXT_RAW))
        pivoted = pivot(kept)
    orphans = pivoted.filter(pl.col("value_eur").is_null()).select(COMEXT_FACT_KEY)
    if orphans.height:
        orphan_rows = kept.join(orphans, on=list(COMEXT_FACT_KEY), how="semi", maintain_order="left")
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
        pl.when(period_code.str.len_chars() == 4)
        .then(pl.concat_str(period_code, pl.lit("-01-01")))
        .otherwise(pl.concat_str(period_code, pl.lit("-01")))
        .str.to_date("%Y-%m-%d")
        .alias("period"),
        period_code.alias("period_code"),
        pl.col("value_eur"),
        (pl.col("quantity_100kg") * 100).round(4).alias("quantity_kg"),
        pl.lit(source_name, dtype=pl.String).alias("source"),
        pl.lit(source_version, dtype=pl.String).alias("source_version"),
    ).cast(table.business_columns)
    return TransformResult(
        valid=valid, rejected=pl.concat(rejected), valid_wire_rows=int(pivoted.get_column("wire_rows").sum())
    )
