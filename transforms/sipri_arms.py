"""SIPRI trade register wire rows (eujp.parse.sipri) -> fact_arms_transfers.

* Supplier/recipient are kept as SIPRI names them and mapped to ISO2 through dim_country: `sipri_name` first,
  then `name` (trimmed, case-insensitive). No match gives a null code, not a rejection: SIPRI legitimately lists
  non-state actors ('unknown supplier(s)', 'NATO**', 'Hezbollah (Lebanon)*') and historical states
  ('Soviet Union', 'East Germany (GDR)').
* '?' flags -> True, empty -> False, anything else rejects the row.
* Counts and years are non-negative integers, TIVs non-negative decimals; anything else rejects the row with a
  reason naming the column and the value. year_of_order is required and must lie in
  [MIN_ORDER_YEAR, year of source_version] (when the payload has no version: the year of `fetched_on`, the
  day the register was fetched, which the caller passes: never the clock's, so that a replay of an old
  register judges it as its run did), at most LAST_YEAR (the suite's bound); delivery years in
  [MIN_DELIVERY_YEAR, the same year]. Every problem of a row is listed in its reason, separated by '; '.
* transfer_id: first 16 hex digits of sha1 over the UTF-8 bytes of
  "supplier|recipient|year_of_order|weapon_designation|weapon_description|number_ordered|delivery_years"
  (trimmed wire strings, empty for null). hashlib is used, not polars' `.hash()`, whose values may change between
  polars versions: ids must be stable across runs and upgrades. Identical key strings (SIPRI does publish
  identical rows) are numbered in file order within their register (one file: the parser's `register` digest
  and `line` number tell the files apart, two copies of one file by their lines starting again): the first
  keeps the bare hash, the n-th gets "-n", so all survive. Registers that overlap (two extracts of the database, e.g. a recipient's and a
  supplier's) hold the same orders under the same ids: a record given again in a later register is an exact
  duplicate (quarantined, one kept), and one given with other figures is a conflict (every version
  quarantined, the row loaded before kept: transforms.common.split_duplicates). The registers transformed
  together are those of one 'Data generated' stamp: a newer register supersedes an older one whole before
  (eujp.stream.WholeStream).
"""

from __future__ import annotations

from datetime import date

import polars as pl

from transforms.common import (
    LAST_YEAR,
    TransformResult,
    between,
    check_wire_columns,
    conflicting_keys,
    format_text,
    reject,
    sha1_16,
    split_duplicates,
)

# SIPRI covers deliveries from 1950 on; an order may be older (the 2025 register holds orders of 1940 and 1943
# delivered in 1950-1953). The bounds catch a mistyped year, not history.
MIN_ORDER_YEAR = 1900
MIN_DELIVERY_YEAR = 1950
# The table's suite holds the same bounds as critical expectations (eujp.suites writes them there); the
# transform's upper bound is the register's year, at most LAST_YEAR.
SUITE_RULES = (between("order_year", MIN_ORDER_YEAR, LAST_YEAR),
               between("first_delivery_year", MIN_DELIVERY_YEAR, LAST_YEAR),
               between("last_delivery_year", MIN_DELIVERY_YEAR, LAST_YEAR))
# The parser's columns (eujp.parse.sipri.OUTPUT_COLUMNS), then the record's line in its file.
WIRE_COLUMNS: tuple[str, ...] = (
    "recipient", "supplier", "year_of_order", "year_of_order_flag", "number_ordered", "number_ordered_flag",
    "weapon_designation", "weapon_description", "number_delivered", "number_delivered_flag", "delivery_years",
    "status", "comments", "tiv_per_unit", "tiv_total_order", "tiv_delivered",
)
LINE, REGISTER = "line", "register"
_ID_FIELDS = ("supplier", "recipient", "year_of_order", "weapon_designation", "weapon_description",
              "number_ordered", "delivery_years")
_INT_COLUMNS = ("year_of_order", "number_ordered", "number_delivered")
_FLOAT_COLUMNS = ("tiv_per_unit", "tiv_total_order", "tiv_delivered")
_FLAG_COLUMNS = ("year_of_order_flag", "number_ordered_flag", "number_delivered_flag")
_INT_RE = r"^\d{1,9}$"
_FLOAT_RE = r"^(\d+(\.\d*)?|\.\d+)$"
# The output: fact_arms_transfers' business columns (docs in eujp/sources/sipri_arms.py).
COLUMNS: dict[str, pl.DataType] = {
    "transfer_id": pl.String(), "supplier": pl.String(), "supplier_iso2": pl.String(), "recipient": pl.String(),
    "recipient_iso2": pl.String(), "order_year": pl.Int32(), "order_year_uncertain": pl.Boolean(),
    "number_ordered": pl.Int32(), "number_ordered_uncertain": pl.Boolean(), "weapon_designation": pl.String(),
    "weapon_description": pl.String(), "number_delivered": pl.Int32(), "number_delivered_uncertain": pl.Boolean(),
    "delivery_years": pl.String(), "first_delivery_year": pl.Int32(), "last_delivery_year": pl.Int32(),
    "status": pl.String(), "comments": pl.String(), "tiv_per_unit": pl.Float64(), "tiv_total_order": pl.Float64(),
    "tiv_delivered": pl.Float64(), "source": pl.String(), "source_version": pl.String(),
}
NATURAL_KEY: tuple[str, ...] = ("transfer_id",)


def country_name_lookup(countries: pl.DataFrame) -> dict[str, str]:
    """Lower-cased, trimmed country name -> iso2: `sipri_name` entries take precedence over `name` entries.

    Raises ValueError if one name maps to two codes at the same precedence (a broken dimension).
    """
    lookup: dict[str, str] = {}
    for column in ("sipri_name", "name"):
        if column not in countries.columns:
            continue
        pairs = (
            countries.select(pl.col(column).str.strip_chars().str.to_lowercase().alias("key"), "iso2")
            .filter(pl.col("key").is_not_null() & (pl.col("key") != "") & pl.col("iso2").is_not_null())
            .unique()
        )
        clashes = pairs.group_by("key").agg(pl.col("iso2").sort()).filter(pl.col("iso2").list.len() > 1)
        if clashes.height:
            detail = ", ".join(f"{k!r} -> {v}" for k, v in clashes.head(5).iter_rows())
            raise ValueError(f"dim_country: {column} maps one name to several iso2 codes: {detail}")
        for key, iso2 in pairs.iter_rows():
            lookup.setdefault(key, iso2)
    return lookup


def _map_iso2(col: str, lookup: dict[str, str]) -> pl.Expr:
    return (
        pl.col(col).str.to_lowercase()
        .replace_strict(list(lookup), list(lookup.values()), default=None, return_dtype=pl.String)
    )


def flag(column: str) -> pl.Expr:
    """SIPRI '?' uncertainty flag -> True; empty -> False (other values are rejected before)."""
    return pl.col(column).eq("?").fill_null(False)


def _join_problems(problems: list[pl.Expr]) -> pl.Expr:
    """All non-null problem messages of a row joined by '; ', null when the row has none."""
    joined = pl.concat_str(problems, separator="; ", ignore_nulls=True)
    return pl.when(joined != "").then(joined)


def latest_year(source_version: str | None, fetched_on: date | None) -> int:
    """The latest plausible year of a register: its 'Data generated' year, else the year it was fetched in (a
    replay judges an old register by its own day, never by the clock's), at most LAST_YEAR (the suite's bound).
    ValueError when neither is known."""
    if source_version and len(source_version) >= 4 and source_version[:4].isdigit():
        return min(int(source_version[:4]), LAST_YEAR)
    if fetched_on is None:
        raise ValueError("a SIPRI register without a 'Data generated' stamp needs the day it was fetched "
                         "(fetched_on) to bound its years")
    return min(fetched_on.year, LAST_YEAR)


def transform_arms(
    wire: pl.DataFrame, source_name: str, source_version: str | None, countries: pl.DataFrame, *,
    fetched_on: date | None = None,
) -> TransformResult:
    check_wire_columns(wire, (*WIRE_COLUMNS, LINE, REGISTER), source_name)
    max_year = latest_year(source_version, fetched_on)
    lookup = country_name_lookup(countries)

    # Trimmed strings, empty -> null; the wire frame itself is kept untouched for the quarantine's raw_record
    # (the record as published: without its line number).
    raw = wire.select(WIRE_COLUMNS)
    # a new file: another digest, or the same file again (a file's lines only increase)
    register = ((pl.col(REGISTER) != pl.col(REGISTER).shift()) | (pl.col(LINE).diff() <= 0)).fill_null(False).cum_sum()
    w = wire.with_columns(
        *(pl.col(c).cast(pl.String).str.strip_chars().replace("", None) for c in WIRE_COLUMNS),
        register.alias("__register"),
    ).with_row_index("__row")

    problems: list[pl.Expr] = []
    for c in ("supplier", "recipient", "year_of_order"):
        problems.append(pl.when(pl.col(c).is_null()).then(pl.lit(f"{c} is empty")))
    for c in _INT_COLUMNS:
        problems.append(pl.when(pl.col(c).is_not_null() & ~pl.col(c).str.contains(_INT_RE))
                        .then(format_text(f"{c}: not a non-negative integer: '{{}}'", pl.col(c))))
    for c in _FLOAT_COLUMNS:
        problems.append(pl.when(pl.col(c).is_not_null() & ~pl.col(c).str.contains(_FLOAT_RE))
                        .then(format_text(f"{c}: not a non-negative number: '{{}}'", pl.col(c))))
    for c in _FLAG_COLUMNS:
        problems.append(pl.when(pl.col(c).is_not_null() & (pl.col(c) != "?"))
                        .then(format_text(f"{c}: expected '?' or empty, got '{{}}'", pl.col(c))))

    year = pl.col("year_of_order").cast(pl.Int32, strict=False)
    problems.append(
        pl.when(year.is_not_null() & ((year < MIN_ORDER_YEAR) | (year > max_year)))
        .then(format_text(f"year_of_order {{}} outside {MIN_ORDER_YEAR}..{max_year}", year))
    )

    # delivery_years "1955; 1956; 1957": every token a year within range.
    tokens = pl.col("delivery_years").str.split(";").list.eval(pl.element().str.strip_chars())
    years = tokens.list.eval(pl.element().cast(pl.Int32, strict=False))
    bad_token = tokens.list.eval(~pl.element().str.contains(r"^\d{4}$")).list.any()
    out_of_range = years.list.eval((pl.element() < MIN_DELIVERY_YEAR) | (pl.element() > max_year)).list.any()
    problems.append(
        pl.when(pl.col("delivery_years").is_not_null() & bad_token)
        .then(format_text("delivery_years: not a '; '-separated list of years: '{}'", pl.col("delivery_years")))
        .when(pl.col("delivery_years").is_not_null() & out_of_range)
        .then(format_text(f"delivery_years: a year outside {MIN_DELIVERY_YEAR}..{max_year}: '{{}}'",
                          pl.col("delivery_years")))
    )

    id_key = pl.concat_str([pl.col(c).fill_null("") for c in _ID_FIELDS], separator="|")
    w = w.with_columns(
        __reason=_join_problems(problems),
        __key=id_key,
        __first=years.list.min(),
        __last=years.list.max(),
    )
    w = w.with_columns(__hash=pl.col("__key").map_batches(sha1_16, return_dtype=pl.String))
    occurrence = pl.int_range(pl.len()).over("__key", "__register") + 1
    w = w.with_columns(
        __id=pl.when(occurrence == 1).then(pl.col("__hash"))
        .otherwise(pl.concat_str(pl.col("__hash"), pl.lit("-"), occurrence.cast(pl.String)))
    )

    bad = w["__reason"].is_not_null()
    rejected = [reject(raw.filter(bad), pl.lit(w.filter(bad)["__reason"]))]
    ok = w.filter(~bad)
    conflicts = None
    if ok.get_column("__register").n_unique() > 1:  # the same order in two registers: one kept, or a conflict
        kept, duplicates = split_duplicates(ok.select(pl.col("__id").alias("transfer_id"), *WIRE_COLUMNS, "__row"),
                                            ("transfer_id",), ignore=("__row",))
        if duplicates.height:
            rows = pl.col("__row").is_in(duplicates.get_column("__row").implode())
            rejected.append(reject(raw.filter(w.select(rows).to_series()), pl.lit(duplicates.get_column("reason"))))
            ok = ok.filter(pl.col("__row").is_in(kept.get_column("__row").implode()))
            conflicts = conflicting_keys(duplicates, NATURAL_KEY)

    valid = ok.select(
        pl.col("__id").alias("transfer_id"),
        pl.col("supplier"),
        _map_iso2("supplier", lookup).alias("supplier_iso2"),
        pl.col("recipient"),
        _map_iso2("recipient", lookup).alias("recipient_iso2"),
        pl.col("year_of_order").cast(pl.Int32).alias("order_year"),
        flag("year_of_order_flag").alias("order_year_uncertain"),
        pl.col("number_ordered").cast(pl.Int32),
        flag("number_ordered_flag").alias("number_ordered_uncertain"),
        pl.col("weapon_designation"),
        pl.col("weapon_description"),
        pl.col("number_delivered").cast(pl.Int32),
        flag("number_delivered_flag").alias("number_delivered_uncertain"),
        pl.col("delivery_years"),
        pl.col("__first").alias("first_delivery_year"),
        pl.col("__last").alias("last_delivery_year"),
        pl.col("status"),
        pl.col("comments"),
        *[pl.col(c).cast(pl.Float64) for c in _FLOAT_COLUMNS],
        pl.lit(source_name, dtype=pl.String).alias("source"),
        pl.lit(source_version, dtype=pl.String).alias("source_version"),
    ).cast(COLUMNS)
    return TransformResult(valid=valid, rejected=pl.concat(rejected), conflicts=conflicts)
