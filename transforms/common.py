"""Shared pieces of the pure transforms."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import polars as pl

YEAR_PATTERN = r"^[0-9]{4}$"  # a four-digit year
LAST_YEAR = 2100  # the last year a fact may be of: a later one is a typo (every fact suite's upper bound)
LAST_DATE = date(LAST_YEAR, 12, 31)
REJECTED_SCHEMA = {"reason": pl.String(), "raw_record": pl.String()}


@dataclass
class TransformResult:
    """`valid` has exactly the target table's business columns; `rejected` has `reason` and
    `raw_record` (the input row as a JSON object). len(valid) + len(rejected) == rows in.

    `rows_in` counts WIRE rows. When a transform merges several wire rows into one fact row (Comext:
    the VALUE_IN_EUROS and QUANTITY_IN_100KG rows of one product/month become one row), it sets
    `valid_wire_rows` to the number of wire rows the valid rows were built from; then
    rows_in == valid_wire_rows + len(rejected) == wire rows read. None means one wire row per valid row.

    `conflicts` holds the natural keys (the table's key columns) that the payload carried more than once with
    different content: every version of them is in `rejected`, and none in `valid`. The loader never deletes
    the row such a key had before (eujp.warehouse.upsert_fact, `keep`), whatever the source's replace scope:
    nothing says which new version is right, so the previous one stays. None: no conflict.
    """

    valid: pl.DataFrame
    rejected: pl.DataFrame
    valid_wire_rows: int | None = None
    conflicts: pl.DataFrame | None = None

    @property
    def rows_in(self) -> int:
        consumed = self.valid.height if self.valid_wire_rows is None else self.valid_wire_rows
        return consumed + self.rejected.height


def empty_rejected() -> pl.DataFrame:
    return pl.DataFrame(schema=REJECTED_SCHEMA)


def reject(frame: pl.DataFrame, reason: str | pl.Expr) -> pl.DataFrame:
    """Turn wire rows into quarantine rows: a reason and the row's raw values as JSON."""
    if frame.is_empty():
        return empty_rejected()
    reason_expr = pl.lit(reason) if isinstance(reason, str) else reason
    return frame.select(
        reason_expr.cast(pl.String).alias("reason"),
        pl.struct(pl.all()).struct.json_encode().alias("raw_record"),
    )


CONFLICT_REASON = "conflicting rows for natural key"  # how split_duplicates' reason for a conflict starts


def conflicting_keys(duplicates: pl.DataFrame, natural_key: Sequence[str],
                     dtypes: dict[str, pl.DataType] | None = None) -> pl.DataFrame | None:
    """The distinct natural keys of the conflicts among `split_duplicates`' `duplicates` (exact copies are not
    conflicts: one of them is kept), cast to `dtypes` (the table's) where given; None when there is none."""
    if duplicates.is_empty():
        return None
    keys = (duplicates.filter(pl.col("reason").str.starts_with(CONFLICT_REASON))
            .select(list(natural_key)).unique(maintain_order=True))
    if dtypes:
        keys = keys.cast({k: dtypes[k] for k in natural_key})
    return keys if keys.height else None


def split_duplicates(
    frame: pl.DataFrame, natural_key: tuple[str, ...] | list[str], *, ignore: tuple[str, ...] = ()
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Resolve rows sharing a natural key: returns (kept, duplicates).

    * Rows identical in every column (except the bookkeeping columns in `ignore`, e.g. a row index) are exact
      duplicates: the first occurrence is kept, the other copies go to `duplicates`.
    * Rows sharing a key but differing in any other column conflict: all of them go to `duplicates`, because
      nothing says which one is right.

    `duplicates` has `frame`'s columns plus `reason` (naming the key values and, for conflicts, the columns that
    differ). Row order is preserved in both frames. An empty `natural_key` keeps everything.
    """
    key = list(natural_key)
    if not key or frame.is_empty():
        return frame, frame.clear().with_columns(pl.lit(None, dtype=pl.String).alias("reason"))
    compare = [c for c in frame.columns if c not in ignore]
    others = [c for c in compare if c not in key]
    key_text = pl.concat_str(
        [format_text(f"{k}='{{}}'", pl.col(k).cast(pl.String).fill_null("<null>")) for k in key], separator=", "
    )
    # Exact copies first (one hash of each row), then the keys still repeated among the first copies: those
    # conflict. Only the rows of conflicting keys go through the windows that name the differing columns: a
    # payload sent twice (every row an exact copy) is split in one pass (2M rows: 0.5 s, not 3.2 s).
    marked = frame.with_row_index("__split_row").with_columns(
        pl.struct(compare).is_first_distinct().alias("__split_first"))
    firsts = marked.filter(pl.col("__split_first"))
    conflicting = firsts.filter(pl.struct(key).is_duplicated()).select(key).unique()
    exact = format_text("exact duplicate of an earlier row with natural key {}", key_text)
    helpers = ["__split_row", "__split_first"]
    if conflicting.is_empty():
        return (firsts.drop(helpers),
                marked.filter(~pl.col("__split_first")).with_columns(exact.alias("reason")).drop(helpers))
    differing = pl.concat_str(
        [pl.when(pl.struct(c).n_unique().over(key) > 1).then(pl.lit(c)) for c in others] or [pl.lit("")],
        separator=", ", ignore_nulls=True,
    )
    conflict = format_text(CONFLICT_REASON + " {}: {} rows differ in {}", key_text, pl.len().over(key), differing)
    join = {"on": key, "nulls_equal": True, "maintain_order": "left"}
    conflicts = marked.join(conflicting, how="semi", **join).with_columns(conflict.alias("reason"))
    copies = marked.filter(~pl.col("__split_first")).join(conflicting, how="anti", **join)
    duplicates = pl.concat([copies.with_columns(exact.alias("reason")), conflicts]).sort("__split_row")
    return firsts.join(conflicting, how="anti", **join).drop(helpers), duplicates.drop(helpers)


def supersede(
    parts: Sequence[tuple[pl.DataFrame, pl.DataFrame | None]],
    natural_key: Sequence[str],
    scope: tuple[str, ...] | None,
) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """What loading `parts` one after the other leaves, as one batch: (valid rows, conflicting keys).

    Each part is what one landing of a source became (its valid rows and its conflicting keys,
    TransformResult.conflicts), in landing order; `scope` is the source's replace scope, as the loader applies
    it (eujp.warehouse.upsert_fact): None replaces by natural key, () the source's whole previous extract, a
    tuple of columns (part of the natural key) every row of the scope values a part holds; a conflicting key
    is never replaced. So a row of an earlier part survives unless a later part has its key, or covers its
    scope without having it (and without conflicting on it); a later part's row supersedes it. A key stays a
    conflict (its previous row kept) when no part has a row for it and every part that covers its scope
    conflicts on it. Loading the result once into a warehouse
    leaves the rows that loading the parts in turn would leave (the revisions between the parts are not
    recorded: only the last version of a key is loaded)."""
    key = list(natural_key)
    if scope and not set(scope) <= set(key):
        raise ValueError(f"replace scope {scope} is not part of the natural key {key}")
    rows, conflicts = parts[0]
    conflicts = _key_frame(conflicts, rows, key)
    for later, later_conflicts in parts[1:]:
        later_conflicts = _key_frame(later_conflicts, later, key)
        deleted = _member(rows, later, key)
        if scope is not None:
            deleted = deleted | (_covered(rows, later, scope) & ~_member(rows, later_conflicts, key))
        candidates = pl.concat([conflicts, later_conflicts]).unique(maintain_order=True)
        still = ~_member(candidates, rows, key) & ~_member(candidates, later, key)
        if scope is not None:
            still = (still & (~_covered(candidates, rows, scope) | _member(candidates, conflicts, key))
                     & (~_covered(candidates, later, scope) | _member(candidates, later_conflicts, key)))
        conflicts = candidates.filter(still)
        rows = pl.concat([rows.filter(~deleted), later])
    return rows, (conflicts if conflicts.height else None)


def _key_frame(keys: pl.DataFrame | None, rows: pl.DataFrame, key: list[str]) -> pl.DataFrame:
    return rows.select(key).clear() if keys is None else keys.select(key).cast(rows.select(key).schema)


def _member(frame: pl.DataFrame, other: pl.DataFrame, columns: Sequence[str]) -> pl.Series:
    """Per row of `frame`: its `columns` values occur in `other`."""
    if frame.is_empty() or other.is_empty():
        return pl.Series([False] * frame.height, dtype=pl.Boolean)
    wanted = other.select(pl.struct(list(columns))).to_series().unique().implode()
    return frame.select(pl.struct(list(columns)).is_in(wanted)).to_series()


def split_by_keys(frame: pl.DataFrame, keys: pl.DataFrame, on: Sequence[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(the rows of `frame` whose `on` values are a row of `keys`, the other rows), each in `frame`'s order: what
    a semi and an anti join on `on` give (a row with a null in `on` matches nothing, as in a join), in one pass.
    The rows' keys are looked up in the set of `keys` (a struct `is_in`) instead of two hash joins of the whole
    frame: for a 2M-row Comext chunk and its handful of rejected observations' keys, 0.07-0.1 s against
    0.7-1.0 s (benchmarks/RESULTS.md, thirty-fifth session)."""
    if frame.is_empty() or keys.is_empty():
        return frame.clear(), frame
    columns = list(on)
    mask = _member(frame, keys, columns) & frame.select(
        pl.all_horizontal(pl.col(columns).is_not_null())).to_series()
    return frame.filter(mask), frame.filter(~mask)


def _covered(frame: pl.DataFrame, batch: pl.DataFrame, scope: tuple[str, ...]) -> pl.Series:
    """Per row of `frame`: loading `batch` under `scope` replaces it (() replaces everything)."""
    if not scope:
        return pl.Series([True] * frame.height, dtype=pl.Boolean)
    return _member(frame, batch, scope)


# ------------------------------------------------ reasons and rule-based rejection (used by every transform)


@dataclass(frozen=True)
class SuiteRule:
    """A rule on one output column that the table's Great Expectations suite holds as a critical expectation
    and the transform checks row by row: the transform's constant is the one place its values are written.
    A row the suite would refuse is so rejected alone, with its reason, instead of the critical expectation
    blocking the whole batch; the suite stays the gate behind it. eujp.suites writes `kwargs` into the
    expectation of type `expectation` on `column` of expectations/<table>.json (`python -m eujp.suites`;
    tests/unit/test_suites.py checks the files say what the transforms check). Build one with `between`,
    `matches` or `one_of`."""

    expectation: str  # a GX expectation type
    column: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)  # merged into the expectation's kwargs

    def broken(self, value: pl.Expr) -> pl.Expr:
        """True where `value` (the column as the table will hold it, or the wire value it becomes) breaks the
        rule; null where it is null (a missing value is another rule's business, as in GX)."""
        k = self.kwargs
        if self.expectation == "expect_column_values_to_be_between":
            low, high = k.get("min_value"), k.get("max_value")
            return ((value < low) if high is None else (value > high) if low is None
                    else (value < low) | (value > high))
        if self.expectation == "expect_column_values_to_match_regex":
            return ~value.str.contains(k["regex"])
        if self.expectation == "expect_column_values_to_be_in_set":
            return ~value.is_in(list(k["value_set"]))
        raise ValueError(f"SuiteRule: no row check for {self.expectation}")

    def reason(self, value: pl.Expr, shown: pl.Expr | None = None) -> pl.Expr:
        """'event_type 'Summit' does not match ^[a-z][a-z_]*$': the column, the value (`shown`: as the wire
        wrote it, else `value`) and the rule."""
        k = self.kwargs
        if self.expectation == "expect_column_values_to_be_between":
            low, high = k.get("min_value"), k.get("max_value")
            rule = f"outside {low}..{high}" if low is not None and high is not None else (
                f"below {low}" if high is None else f"above {high}")
        elif self.expectation == "expect_column_values_to_match_regex":
            rule = f"does not match {k['regex']}"
        else:
            rule = f"is not one of {', '.join(map(str, k['value_set']))}"
        return format_text(f"{self.column} '{{}}' {rule}", value if shown is None else shown)

    def rule(self, value: pl.Expr, shown: pl.Expr | None = None) -> tuple[pl.Expr, pl.Expr]:
        """(condition, message) for `first_reason` / `split_by_rules`."""
        return self.broken(value), self.reason(value, shown)

    def problem(self, value: pl.Expr, shown: pl.Expr | None = None) -> pl.Expr:
        """The reason where the rule is broken, else null: one of a row's '; '-joined problems."""
        return pl.when(self.broken(value).fill_null(False)).then(self.reason(value, shown))


def between(column: str, low: float | date | None, high: float | date | None) -> SuiteRule:
    """`column` within [low, high] (inclusive; None: no bound on that side)."""
    return SuiteRule("expect_column_values_to_be_between", column, {
        k: v for k, v in (("min_value", low), ("max_value", high)) if v is not None})


def matches(column: str, regex: str) -> SuiteRule:
    """`column` matches `regex` (searched, as GX does: anchor it)."""
    return SuiteRule("expect_column_values_to_match_regex", column, {"regex": regex})


def one_of(column: str, values: Collection[str]) -> SuiteRule:
    """`column` is one of `values` (in their order)."""
    return SuiteRule("expect_column_values_to_be_in_set", column, {"value_set": tuple(values)})


def format_text(template: str, *args: str | pl.Expr) -> pl.Expr:
    """`template` with each `{}` replaced by the next of `args` (column names or expressions) as text; null
    when any of them is null: `pl.format`'s meaning, built on `pl.concat_str`. polars 2.1's own `pl.format`
    panics ("assertion failed: i < self.len()") on a single-column argument whose first chunk is empty, as a
    filter leaves it (tests/unit/test_transforms_common.py shows it); a streamed chunk's rows are often such."""
    pieces = template.split("{}")
    if len(pieces) != len(args) + 1:
        raise ValueError(f"format_text: {len(pieces) - 1} placeholder(s) in {template!r} for {len(args)} argument(s)")
    exprs: list[pl.Expr] = []
    for k, arg in enumerate(args):
        if pieces[k]:
            exprs.append(pl.lit(pieces[k], dtype=pl.String))
        exprs.append((pl.col(arg) if isinstance(arg, str) else arg).cast(pl.String))
    if pieces[-1]:
        exprs.append(pl.lit(pieces[-1], dtype=pl.String))
    return pl.concat_str(exprs) if exprs else pl.lit(template, dtype=pl.String)


def text(column: str) -> pl.Expr:
    """A column as text for reason messages: nulls shown as 'null'."""
    return pl.col(column).cast(pl.String).fill_null("null")


def key_label(columns: Sequence[str]) -> pl.Expr:
    """'reporter=EU27_2020, partner=JP, ...': a natural key's values, for reason messages."""
    return pl.concat_str([pl.concat_str(pl.lit(f"{c}="), text(c)) for c in columns], separator=", ")


def first_reason(rules: Sequence[tuple[pl.Expr, str | pl.Expr]]) -> pl.Expr:
    """The message of the first rule whose condition holds, else null.

    A condition that evaluates to null counts as not holding, so write conditions that are true for
    null inputs where null is an error (`ne_missing`, `is_in(...).not_()` on `fill_null`).
    """
    if not rules:
        return pl.lit(None, dtype=pl.String)
    (condition, message), *rest = rules
    chain = pl.when(condition.fill_null(False)).then(_as_expr(message))
    for condition, message in rest:
        chain = chain.when(condition.fill_null(False)).then(_as_expr(message))
    return chain.otherwise(pl.lit(None, dtype=pl.String))


def _as_expr(message: str | pl.Expr) -> pl.Expr:
    return pl.lit(message, dtype=pl.String) if isinstance(message, str) else message.cast(pl.String)


def not_in(column: str, allowed: Collection[str] | pl.Series) -> pl.Expr:
    """True when the column's value is null or not among `allowed`."""
    values = allowed if isinstance(allowed, pl.Series) else pl.Series(sorted(allowed), dtype=pl.String)
    return ~pl.col(column).is_in(values.implode()).fill_null(False)


def matches_by_value(distinct: pl.Series, regex: str) -> pl.Expr:
    """True where the row's value of the column `distinct` names matches `regex` (False where it is null), with
    the regex run on that column's `distinct` values (its `unique()`) instead of on every row: a Comext chunk of
    2M rows holds ~9,000 products and ~120 periods. The expression is then free where every distinct value
    matches (is not null) or none does, and an `is_in` of the matching values otherwise (the product and period
    rules of a 2M-row chunk: 0.22-0.31 s -> 0.11-0.13 s with the `unique()`s, benchmarks/RESULTS.md)."""
    column, values = pl.col(distinct.name), distinct.drop_nulls()
    hits = values.filter(values.str.contains(regex))
    if hits.len() == values.len():
        return column.is_not_null()
    if hits.is_empty():
        return pl.repeat(False, pl.len())  # a column of the rows' length, also where it stands alone
    return column.is_in(hits.implode()).fill_null(False)


def quarantine(frame: pl.DataFrame, reason: str | pl.Expr, raw: Sequence[str | pl.Expr]) -> pl.DataFrame:
    """Like `reject`, but `raw_record` holds only the `raw` columns/expressions (the wire row), so
    working columns added by a transform do not leak into the quarantine."""
    if frame.is_empty():
        return empty_rejected()
    reason_expr = pl.lit(reason) if isinstance(reason, str) else reason
    return frame.select(
        reason_expr.cast(pl.String).alias("reason"),
        pl.struct(list(raw)).struct.json_encode().alias("raw_record"),
    )


def split_by_rules(
    frame: pl.DataFrame, rules: Sequence[tuple[pl.Expr, str | pl.Expr]], raw: Sequence[str | pl.Expr]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split `frame` into (rows breaking no rule, quarantine rows of the others).

    A rejected row's reason is the message of the first rule it breaks (see `first_reason`); its
    `raw_record` holds the `raw` columns. Only the boolean conditions run on every row: messages are
    formatted for the rejected rows alone, which matters on 10M-row payloads.
    """
    if not rules:
        return frame, empty_rejected()
    broken = pl.any_horizontal([condition.fill_null(False) for condition, _ in rules])
    flagged = frame.with_columns(broken.alias("__broken"))
    if not flagged.get_column("__broken").any():
        return frame, empty_rejected()
    ok = flagged.filter(~pl.col("__broken")).drop("__broken")
    bad = flagged.filter(pl.col("__broken")).drop("__broken")
    return ok, quarantine(bad, first_reason(rules), raw)


class WireColumnsError(ValueError):
    """A wire frame's columns are not the ones its transform reads (a new dimension would split the natural
    key). The pipeline reports it as eujp.errors.SchemaDriftError."""


def check_wire_columns(wire: pl.DataFrame, expected: tuple[str, ...], source_name: str) -> None:
    """The wire frame must have exactly `expected` columns: a new dimension would split the natural key."""
    missing = [c for c in expected if c not in wire.columns]
    new = [c for c in wire.columns if c not in expected]
    if missing or new:
        raise WireColumnsError(
            f"{source_name}: wire columns changed: missing {missing}, unexpected {new}; expected {list(expected)}"
        )


def sha1_16(series: pl.Series) -> pl.Series:
    """Stable id: first 16 hex digits of sha1 of each string's UTF-8 bytes (null stays null)."""
    return pl.Series(
        series.name,
        [None if v is None else hashlib.sha1(v.encode("utf-8")).hexdigest()[:16] for v in series.to_list()],
        dtype=pl.String,
    )
