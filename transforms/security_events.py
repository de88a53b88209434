"""Curated security events wire rows (eujp.parse.events) -> fact_security_events.

Row checks (a failing row is quarantined with every problem it has, '; '-separated):

* `date` is a yyyy-mm-dd calendar date; with date_precision 'month' it must be the 1st of the month, with 'year'
  January 1st (the file's convention: a coarser date is written as the first day of its period).
* `date_precision` is one of day, month, year.
* `event_type` and `title` are non-empty (title is part of the id); `event_type` is a lower-case category
  (`EVENT_TYPE`).
* the date lies within `EVENT_DATE` (1945-01-01..2100-12-31).
* `parties`: ';'-separated codes, each an ISO3 code of dim_country or one of `ORGANISATION_CODES`; the unknown
  codes are named in the reason.
* `source_url` starts with http:// or https://.

event_id = first 16 hex digits of sha1("yyyy-mm-dd|title") (hashlib: stable across polars versions).
Duplicate event_ids: rows identical in every column keep one copy and quarantine the others; rows sharing an id
but differing anywhere are all quarantined (the file contradicts itself and we cannot tell which is right).
"""

from __future__ import annotations

from datetime import date

import polars as pl

from transforms.common import (
    LAST_DATE,
    TransformResult,
    between,
    conflicting_keys,
    empty_rejected,
    format_text,
    matches,
    one_of,
    reject,
    sha1_16,
    split_duplicates,
)

# Party codes that are not ISO 3166 countries.
ORGANISATION_CODES: dict[str, str] = {
    "EU": "the European Union itself",
    "NATO": "the North Atlantic Treaty Organization",
    "UN": "the United Nations",
    "WORLD": "all countries (e.g. an export control that applies to every destination)",
}
DATE_PRECISIONS = ("day", "month", "year")
# The rules of fact_security_events' critical expectations on a row's own values that the checks above do not
# imply: written here once (eujp.suites writes them into expectations/fact_security_events.json).
EVENT_TYPE = matches("event_type", r"^[a-z][a-z_]*$")  # a lower-case snake_case category
EVENT_DATE = between("event_date", date(1945, 1, 1), LAST_DATE)
SUITE_RULES = (EVENT_TYPE, EVENT_DATE, one_of("date_precision", DATE_PRECISIONS))
_ROW = "__row"
# The output: fact_security_events' business columns (docs in eujp/sources/security_events.py).
COLUMNS: dict[str, pl.DataType] = {
    "event_id": pl.String(), "event_date": pl.Date(), "date_precision": pl.String(), "event_type": pl.String(),
    "parties": pl.String(), "title": pl.String(), "description": pl.String(), "source_url": pl.String(),
    "source_title": pl.String(), "source": pl.String(), "source_version": pl.String(),
}
NATURAL_KEY: tuple[str, ...] = ("event_id",)


def _join_problems(problems: list[pl.Expr]) -> pl.Expr:
    joined = pl.concat_str(problems, separator="; ", ignore_nulls=True)
    return pl.when(joined != "").then(joined)


def transform_events(
    wire: pl.DataFrame, source_name: str, source_version: str | None, countries: pl.DataFrame, *,
    fetched_on: date | None = None,
) -> TransformResult:
    allowed = sorted(set(countries.get_column("iso3").drop_nulls().to_list()) | set(ORGANISATION_CODES))

    w = wire.with_row_index(_ROW).with_columns(
        pl.col(c).cast(pl.String).str.strip_chars().replace("", None) for c in wire.columns
    )
    event_date = pl.col("date").str.to_date("%Y-%m-%d", strict=False)
    codes = pl.col("parties").str.split(";").list.eval(pl.element().str.strip_chars())
    unknown = codes.list.eval(pl.element().filter(~pl.element().is_in(allowed) & (pl.element() != "")))
    empty_code = codes.list.eval(pl.element() == "").list.any()
    precision = pl.col("date_precision")
    problems = [
        pl.when(pl.col("date").is_null()).then(pl.lit("date is empty"))
        .when(~pl.col("date").str.contains(r"^\d{4}-\d{2}-\d{2}$") | event_date.is_null())
        .then(format_text("date: not a yyyy-mm-dd date: '{}'", pl.col("date")))
        .when((precision == "month") & (event_date.dt.day() != 1))
        .then(format_text("date '{}' with precision month is not the 1st of the month", pl.col("date")))
        .when((precision == "year") & ((event_date.dt.day() != 1) | (event_date.dt.month() != 1)))
        .then(format_text("date '{}' with precision year is not January 1st", pl.col("date")))
        .otherwise(EVENT_DATE.problem(event_date, pl.col("date"))),
        pl.when(precision.is_null()).then(pl.lit("date_precision is empty"))
        .when(~precision.is_in(DATE_PRECISIONS))
        .then(format_text("date_precision: expected one of day, month, year, got '{}'", precision)),
        pl.when(pl.col("event_type").is_null()).then(pl.lit("event_type is empty"))
        .otherwise(EVENT_TYPE.problem(pl.col("event_type"))),
        pl.when(pl.col("title").is_null()).then(pl.lit("title is empty")),
        pl.when(pl.col("parties").is_null()).then(pl.lit("parties is empty"))
        .when(unknown.list.len() > 0)
        .then(format_text("parties: unknown code(s) {} (neither an ISO3 country nor an organisation code)",
                          unknown.list.join(", ")))
        .when(empty_code).then(format_text("parties: empty code in '{}'", pl.col("parties"))),
        pl.when(pl.col("source_url").is_null()).then(pl.lit("source_url is empty"))
        .when(~pl.col("source_url").str.contains(r"^https?://\S"))
        .then(format_text("source_url: not an http(s) URL: '{}'", pl.col("source_url"))),
    ]
    w = w.with_columns(__reason=_join_problems(problems))
    bad = w["__reason"].is_not_null()
    rejected = [reject(wire.filter(bad), pl.lit(w.filter(bad)["__reason"]))]

    ok = w.filter(~bad)
    valid = ok.select(
        pl.col(_ROW),
        pl.concat_str(pl.col("date"), pl.lit("|"), pl.col("title"))
        .map_batches(sha1_16, return_dtype=pl.String).alias("event_id"),
        event_date.alias("event_date"),
        pl.col("date_precision"),
        pl.col("event_type"),
        codes.list.join(";").alias("parties"),
        pl.col("title"),
        pl.col("description"),
        pl.col("source_url"),
        pl.col("source_title"),
        pl.lit(source_name, dtype=pl.String).alias("source"),
        pl.lit(source_version, dtype=pl.String).alias("source_version"),
    )

    kept, dupes = split_duplicates(valid, NATURAL_KEY, ignore=(_ROW,))
    if dupes.height:
        raw = wire.with_row_index(_ROW).join(dupes.select(_ROW, "reason"), on=_ROW, how="inner").sort(_ROW)
        rejected.append(reject(raw.drop(_ROW, "reason"), pl.lit(raw["reason"])))
    out = kept.sort(_ROW).drop(_ROW).select(list(COLUMNS)).cast(COLUMNS)
    rejected_frame = pl.concat(rejected) if rejected else empty_rejected()
    return TransformResult(valid=out, rejected=rejected_frame, conflicts=conflicting_keys(dupes, NATURAL_KEY, COLUMNS))
