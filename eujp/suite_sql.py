"""A table's Great Expectations suite (expectations/<table>.json) evaluated in DuckDB SQL on a warehouse table.

The audit re-validates what a run would publish: the staged table, batch merged with the rows already there.
Selecting that into pandas and running GX costs seconds and a copy of the table in memory (5M rows: 6-10 s
and ~1 GB; 25M rows: over a minute and 18 GB). Here the same suite JSON is translated to SQL instead:

* every row-level expectation is a `count(*) FILTER (WHERE ...)` in one aggregate query, so the table is
  scanned once for all of them;
* `expect_column_values_to_be_unique` and `expect_compound_columns_to_be_unique` are one GROUP BY each;
* only failed expectations are looked at again: their most frequent unexpected values and up to
  `SAMPLE_ROWS` offending rows, each a small query.

Nothing but counts and a few rows comes back to Python; DuckDB's memory limit bounds the rest.

    report = evaluate_suite_sql(conn, "fact_goods_trade")   # an eujp.validate.ValidationReport
    report.success, report.critical_failures, report.warnings

The result is what `eujp.validate.validate_frame` (GX 1.24, pandas engine) reports for the same rows:
success, element_count, unexpected_count and unexpected_percent per expectation, with the same meaning.
tests/test_suite_sql.py checks this against GX on every suite. What GX's pandas engine does, and so what
the SQL does:

* row conditions (GX 1.x condition dicts) are what `DataFrame.query` makes of them: a comparison with a
  missing value is False, except `!=` and `NOT_IN`, which are True; `IN` is `isin`;
* column-map expectations (in set, between, regex, unique) look at the non-null values of the rows the
  row condition keeps: element_count is those rows, unexpected_percent is relative to the non-null ones,
  and a column with no non-null value passes. Null and not-null checks count against all those rows;
* a float NaN is a missing value, as in pandas;
* unique: every row whose value occurs more than once is unexpected (`duplicated(keep=False)`), nulls are
  ignored; compound unique ignores rows whose columns are all null (GX's default) and treats nulls in a
  key as equal values;
* a > b: the row condition, then `ignore_row_if` ("both_values_are_missing" by default) drops rows, then
  a row is unexpected unless a > b (or a >= b with `or_equal`); a comparison with a missing value fails;
* between: bounds are inclusive unless `strict_min` / `strict_max`; on a date column, ISO string bounds
  (`"1988-01-01T00:00:00"`) are datetimes, compared with the date at midnight;
* regex: Python `re.search` on the value (pandas `str.contains`). The pattern is parsed with Python's own
  regex parser and re-emitted for RE2 with Python's meaning: `$` also matches before a final newline, `\\d`,
  `\\s`, `\\w` are Unicode classes as Python defines them, `.` never matches a newline unless DOTALL. What
  RE2 cannot express (look-arounds, back-references, `\\b`, atomic groups, possessive repeats) is refused.

Dates outside pandas' datetime64[ns] range are compared as they are, as `validate_frame` does (it gives GX
such a column as datetime64[us]). Unlike it, a failure message counts the most frequent unexpected values over
all unexpected rows, not over GX's first 20.

An expectation type, a kwarg or a value this module does not translate raises `SuiteSqlError` naming it:
an expectation is never skipped or passed silently.
"""

from __future__ import annotations

import array
import datetime as dt
import functools
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import duckdb

from eujp.schema import LOAD_COLUMNS
from eujp.sql import quote_ident, sql_string
from eujp.tables import TABLES
from eujp.validate import (
    CRITICAL,
    SAMPLE_ROWS,
    SUITE_TABLES,
    ExpectationOutcome,
    ValidationReport,
    _columns_of,
    _condition_columns,
    _failure_message,
    _json_safe,
    load_suite,
)
from eujp.warehouse import repeated_key_hashes

_TOP_VALUES = 5  # unexpected values (with their counts) quoted in a failure message


class SuiteSqlError(ValueError):
    """The suite uses something this module cannot translate to SQL with GX's meaning."""


class _Unevaluable(Exception):
    """GX accepts the expectation but its metric raises on this column: reported as "could not be evaluated"."""


# The kwargs each supported expectation type may have. batch_id, result_format, catch_exceptions and
# include_config change how GX reports, not what passes.
_CONDITIONED = {"row_condition", "condition_parser"}
_MAP = {"column", "mostly", *_CONDITIONED}
SUPPORTED_KWARGS: dict[str, frozenset[str]] = {
    "expect_column_distinct_values_to_contain_set": frozenset({"column", "value_set", *_CONDITIONED}),
    "expect_column_pair_values_a_to_be_greater_than_b": frozenset(
        {"column_A", "column_B", "ignore_row_if", "or_equal", "mostly", *_CONDITIONED}),
    "expect_column_values_to_be_between": frozenset(
        {*_MAP, "min_value", "max_value", "strict_min", "strict_max"}),
    "expect_column_values_to_be_in_set": frozenset({*_MAP, "value_set"}),
    "expect_column_values_to_be_null": frozenset(_MAP),
    "expect_column_values_to_be_unique": frozenset(_MAP),
    "expect_column_values_to_match_regex": frozenset({*_MAP, "regex"}),
    "expect_column_values_to_not_be_null": frozenset(_MAP),
    "expect_compound_columns_to_be_unique": frozenset({"column_list", "ignore_row_if", "mostly", *_CONDITIONED}),
    "expect_table_columns_to_match_ordered_list": frozenset({"column_list"}),
    "expect_table_row_count_to_be_between": frozenset(
        {"min_value", "max_value", "strict_min", "strict_max", *_CONDITIONED}),
}
_REPORTING_KWARGS = frozenset({"batch_id", "result_format", "catch_exceptions", "include_config"})


# ---------------------------------------------------------------------------------------------- SQL bits


@dataclass(frozen=True)
class _Sql:
    """A SQL fragment and the values of its `?` placeholders, in order."""

    text: str
    params: tuple = ()


_TRUE = _Sql("TRUE")


def _and(*parts: _Sql) -> _Sql:
    parts = tuple(p for p in parts if p != _TRUE)
    if not parts:
        return _TRUE
    if len(parts) == 1:
        return parts[0]
    return _Sql(" AND ".join(f"({p.text})" for p in parts), tuple(v for p in parts for v in p.params))


def _not(part: _Sql) -> _Sql:
    return _Sql(f"NOT ({part.text})", part.params)


@dataclass(frozen=True)
class _Column:
    name: str
    duck_type: str

    @property
    def kind(self) -> str:
        """string | float | number | bool | datetime | other: how pandas would hold and compare it."""
        t = self.duck_type.upper()
        if t == "VARCHAR":
            return "string"
        if t in ("DOUBLE", "FLOAT", "REAL"):
            return "float"
        if t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"):
            return "number"
        if t == "BOOLEAN":
            return "bool"
        if t in ("DATE", "TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS"):
            return "datetime"
        return "other"

    @property
    def value(self) -> str:
        """The column as GX compares it: a float NaN is null (pandas), a date is a datetime at midnight."""
        return self.value_of("")

    def value_of(self, alias: str = "", *, compare: bool = True) -> str:
        ident = f"{alias}.{quote_ident(self.name)}" if alias else quote_ident(self.name)
        if self.kind == "float":
            return f"nullif({ident}, CAST('NaN' AS DOUBLE))"
        if self.kind == "datetime" and compare:
            return f"CAST({ident} AS TIMESTAMP)"
        return ident

    @property
    def raw(self) -> str:
        """The column's values as stored (NaN as null): to group by and to quote in messages."""
        return self.value_of(compare=False)


def _literal(value: Any, column: _Column, what: str) -> _Sql:
    """A bound, explicitly typed value to compare with `column` (never interpolated into the SQL)."""
    kind = column.kind
    if kind == "string" and isinstance(value, str):
        return _Sql("CAST(? AS VARCHAR)", (value,))
    if kind in ("float", "number") and isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, int) and -(2**63) <= value < 2**63:
            return _Sql("CAST(? AS BIGINT)", (value,))
        return _Sql("CAST(? AS DOUBLE)", (float(value),))
    if kind == "bool" and isinstance(value, bool):
        return _Sql("CAST(? AS BOOLEAN)", (value,))
    if kind == "datetime" and isinstance(value, str):
        return _Sql("CAST(? AS TIMESTAMP)", (_parse_datetime(value, what),))
    raise SuiteSqlError(f"{what}: value {value!r} ({type(value).__name__}) cannot be compared with column "
                        f"{column.name!r} ({column.duck_type}) as GX's pandas engine would")


def _parse_datetime(text: str, what: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise SuiteSqlError(f"{what}: {text!r} is not an ISO 8601 date or datetime") from None
    if parsed.tzinfo is not None:
        raise SuiteSqlError(f"{what}: {text!r} has a time zone; GX compares naive datetimes")
    return parsed


# ------------------------------------------------------------------------------------- row conditions

_COMPARISONS = {"==": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def _condition_sql(condition: Any, columns: Mapping[str, _Column], what: str) -> _Sql:
    """A GX 1.x serialised row condition as a two-valued SQL predicate with DataFrame.query's meaning."""
    if condition is None or condition == "" or condition == {}:
        return _TRUE
    if isinstance(condition, str):
        raise SuiteSqlError(f"{what}: string row_condition {condition!r} (a pandas query) is not supported; "
                            "use a GX 1.x condition (comparison, nullity, and, or)")
    if not isinstance(condition, Mapping):
        raise SuiteSqlError(f"{what}: row_condition {condition!r} is not a GX condition")
    kind = condition.get("type")
    if kind in ("and", "or"):
        parts = [_condition_sql(c, columns, what) for c in condition.get("conditions") or []]
        if not parts:
            raise SuiteSqlError(f"{what}: {kind!r} row_condition without conditions")
        joiner = " AND " if kind == "and" else " OR "
        return _Sql("(" + joiner.join(f"({p.text})" for p in parts) + ")",
                    tuple(v for p in parts for v in p.params))
    if kind not in ("comparison", "nullity"):
        raise SuiteSqlError(f"{what}: row_condition type {kind!r} is not supported (comparison, nullity, and, or)")
    name = (condition.get("column") or {}).get("name") if isinstance(condition.get("column"), Mapping) else None
    if name not in columns:
        raise SuiteSqlError(f"{what}: row_condition {condition!r} names no column of the table")
    column = columns[name]
    if kind == "nullity":
        return _Sql(f"{column.value} IS {'' if condition.get('is_null') else 'NOT '}NULL")
    operator, parameter = condition.get("operator"), condition.get("parameter")
    if operator in ("IN", "NOT_IN"):
        if column.kind == "datetime":
            raise SuiteSqlError(f"{what}: {operator} row_condition on the date/datetime column {name!r} is not "
                                "supported")
        if not isinstance(parameter, (list, tuple)) or any(v is None for v in parameter):
            raise SuiteSqlError(f"{what}: {operator} row_condition needs a list of non-null values, "
                                f"got {parameter!r}")
        test = _in_list(column, parameter, what)
        return _Sql(f"coalesce({test.text}, FALSE)" if operator == "IN" else f"NOT coalesce({test.text}, FALSE)",
                    test.params)
    if operator not in _COMPARISONS:
        raise SuiteSqlError(f"{what}: row_condition operator {operator!r} is not supported")
    if parameter is None or isinstance(parameter, (list, dict)):
        raise SuiteSqlError(f"{what}: row_condition {column.name} {operator} {parameter!r} is not supported")
    value = _literal(parameter, column, what)
    # pandas: a missing value compares False, except with != (True)
    missing = "TRUE" if operator == "!=" else "FALSE"
    return _Sql(f"coalesce({column.value} {_COMPARISONS[operator]} {value.text}, {missing})", value.params)


def _in_list(column: _Column, values: Sequence[Any], what: str) -> _Sql:
    """`column IN (...)`: NULL for a missing value, FALSE for an empty list."""
    if not values:
        return _Sql("FALSE")
    literals = [_literal(v, column, what) for v in values]
    return _Sql(f"{column.value} IN ({', '.join(lit.text for lit in literals)})",
                tuple(p for lit in literals for p in lit.params))


# ------------------------------------------------------------------------------------- Python regexes


def python_regex_to_re2(pattern: str) -> str:
    """`pattern` re-emitted for RE2 (DuckDB's `regexp_matches`) so that it finds a match exactly where
    Python's `re.search` does. The pattern is parsed with Python's own parser, so every construct means what
    it means to Python; what RE2 cannot express raises SuiteSqlError."""
    import re._constants as sc
    import re._parser as sp

    try:
        parsed = sp.parse(pattern)
    except re.error as exc:
        raise SuiteSqlError(f"regex {pattern!r} is not a valid Python regex: {exc}") from None

    def refuse(what: str):
        raise SuiteSqlError(f"regex {pattern!r} uses {what}, which RE2 (DuckDB) cannot match as Python does")

    def char(code: int) -> str:
        c = chr(code)
        return c if c.isascii() and c.isalnum() else f"\\x{{{code:X}}}"

    def category(code, flags: int) -> str:
        """A class body (no brackets) for \\d \\D \\s \\S \\w \\W as Python defines them."""
        name = str(code).removeprefix("CATEGORY_").removeprefix("UNI_")
        negated, base = name.startswith("NOT_"), name.removeprefix("NOT_")
        if base not in ("DIGIT", "SPACE", "WORD"):
            refuse(f"the category {code}")
        if base == "WORD" and flags & re.IGNORECASE:
            refuse("\\w or \\W with IGNORECASE")  # RE2 would case-fold the class, Python does not
        ranges = _category_ranges(base, bool(flags & re.ASCII))
        if negated:
            ranges = _complement(ranges)
        return "".join(char(lo) if lo == hi else f"{char(lo)}-{char(hi)}" for lo, hi in ranges)

    def emit(items, flags: int) -> str:
        out = []
        for op, av in items:
            if op == sc.LITERAL:
                out.append(char(av))
            elif op == sc.NOT_LITERAL:
                out.append(f"[^{char(av)}]")
            elif op == sc.ANY:
                out.append("[\\x{0}-\\x{10FFFF}]" if flags & re.DOTALL else "[^\\n]")
            elif op == sc.IN:
                negate, body = False, []
                for item_op, item in av:
                    if item_op == sc.NEGATE:
                        negate = True
                    elif item_op == sc.LITERAL:
                        body.append(char(item))
                    elif item_op == sc.RANGE:
                        body.append(f"{char(item[0])}-{char(item[1])}")
                    elif item_op == sc.CATEGORY:
                        body.append(category(item, flags))
                    else:
                        refuse(f"the class item {item_op}")
                out.append(("[^" if negate else "[") + "".join(body) + "]")
            elif op == sc.AT:
                if av == sc.AT_BEGINNING:
                    out.append("(?m:^)" if flags & re.MULTILINE else "\\A")
                elif av == sc.AT_BEGINNING_STRING:
                    out.append("\\A")
                elif av == sc.AT_END:
                    # Python's $ also matches just before a newline that ends the string; RE2's only at the end
                    out.append("(?m:$)" if flags & re.MULTILINE else "(?:\\n?\\z)")
                elif av == sc.AT_END_STRING:
                    out.append("\\z")
                else:
                    refuse(f"the assertion {av} (\\b or \\B)")
            elif op == sc.BRANCH:
                out.append("(?:" + "|".join(emit(alternative, flags) for alternative in av[1]) + ")")
            elif op == sc.SUBPATTERN:
                group, add_flags, del_flags, sub = av
                inner_flags = (flags | add_flags) & ~del_flags
                inner = emit(sub, inner_flags)
                if (inner_flags ^ flags) & re.IGNORECASE:
                    inner = f"(?{'i' if inner_flags & re.IGNORECASE else '-i'}:{inner})"
                out.append(f"({inner})" if group is not None else f"(?:{inner})")
            elif op in (sc.MAX_REPEAT, sc.MIN_REPEAT):
                low, high, sub = av
                unbounded = high == sc.MAXREPEAT
                if low > 1000 or (not unbounded and high > 1000):
                    refuse(f"a repeat count above 1000 (RE2's limit): {{{low},{high}}}")
                bound = f"{{{low},}}" if unbounded else f"{{{low},{high}}}"
                out.append(f"(?:{emit(sub, flags)}){bound}" + ("?" if op == sc.MIN_REPEAT else ""))
            else:
                names = {sc.ASSERT: "a look-ahead or look-behind", sc.ASSERT_NOT: "a negative look-around",
                         sc.GROUPREF: "a back-reference", sc.GROUPREF_EXISTS: "a conditional group",
                         sc.ATOMIC_GROUP: "an atomic group", sc.POSSESSIVE_REPEAT: "a possessive repeat"}
                refuse(names.get(op, str(op)))
        return "".join(out)

    flags = parsed.state.flags
    if flags & re.LOCALE:
        refuse("the LOCALE flag")
    if flags & re.ASCII and flags & re.IGNORECASE:
        refuse("IGNORECASE with the ASCII flag")  # RE2 folds Unicode case
    body = emit(list(parsed), flags)
    return f"(?i){body}" if flags & re.IGNORECASE else body


@functools.lru_cache(maxsize=8)
def _category_ranges(base: str, ascii_only: bool) -> tuple[tuple[int, int], ...]:
    """Code point ranges of Python's own \\d, \\s or \\w: found by running Python's `re` over every code point
    in order (the position of a character is its code point)."""
    escape = {"DIGIT": r"\d", "SPACE": r"\s", "WORD": r"\w"}[base]
    text = _every_code_point()[:0x80] if ascii_only else _every_code_point()
    flags = re.ASCII if ascii_only else 0
    return tuple((m.start(), m.end() - 1) for m in re.finditer(escape + "+", text, flags))


@functools.lru_cache(maxsize=1)
def _every_code_point() -> str:
    codes = array.array("I", range(0x110000))
    assert codes.itemsize == 4
    return codes.tobytes().decode(f"utf-32-{'le' if sys.byteorder == 'little' else 'be'}", "surrogatepass")


def _complement(ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    out, nxt = [], 0
    for lo, hi in ranges:
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= 0x10FFFF:
        out.append((nxt, 0x10FFFF))
    return out


def _check_regex_compiles(conn: duckdb.DuckDBPyConnection, python_pattern: str, re2_pattern: str) -> None:
    try:
        conn.execute("SELECT regexp_matches('', ?)", [re2_pattern]).fetchone()
    except duckdb.Error as exc:
        raise SuiteSqlError(f"regex {python_pattern!r} (as RE2: {re2_pattern!r}) does not compile in DuckDB: "
                            f"{exc}") from None


# ------------------------------------------------------------------------------------------- the scan


class _Scan:
    """The aggregates of the one full scan, deduplicated (two checks on the same rows share a count)."""

    def __init__(self) -> None:
        self.exprs: list[_Sql] = []
        self._index: dict[_Sql, int] = {}
        self.values: tuple = ()

    def add(self, expr: _Sql) -> int:
        if expr not in self._index:
            self._index[expr] = len(self.exprs)
            self.exprs.append(expr)
        return self._index[expr]

    def count(self, where: _Sql) -> int:
        return self.add(_Sql("count(*)") if where == _TRUE else _Sql(f"count(*) FILTER (WHERE {where.text})",
                                                                      where.params))

    def run(self, conn: duckdb.DuckDBPyConnection, table_ident: str) -> None:
        sql = f"SELECT {', '.join(e.text for e in self.exprs)} FROM {table_ident}"
        self.values = conn.execute(sql, [p for e in self.exprs for p in e.params]).fetchone()

    def __getitem__(self, index: int) -> Any:
        return self.values[index]


@dataclass
class _Context:
    conn: duckdb.DuckDBPyConnection
    table: str  # quoted
    columns: dict[str, _Column]  # the table's business columns, in the table's order
    scan: _Scan
    whole: str = ""  # quoted: the whole table, when `table` is the view of a run's rows (rows_of_run)

    def fetch_rows(self, where: _Sql, *, join: str = "", params: tuple = ()) -> list[dict[str, Any]]:
        sql = (f"SELECT {', '.join(f'_t.{quote_ident(c)}' for c in self.columns)} FROM {self.table} AS _t {join} "
               f"WHERE {where.text} LIMIT {SAMPLE_ROWS}")
        rows = self.conn.execute(sql, [*params, *where.params]).fetchall()
        return [_json_safe(dict(zip(self.columns, row, strict=True))) for row in rows]

    def top_values(self, value_exprs: Sequence[str], where: _Sql, having: str = "") -> list[dict[str, Any]]:
        """The most frequent value (tuples) among the rows `where` selects, as GX's partial_unexpected_counts."""
        keys = ", ".join(f"{e} AS _k{i}" for i, e in enumerate(value_exprs))
        order = ", ".join(f"_k{i}" for i in range(len(value_exprs)))
        sql = (f"SELECT {keys}, count(*) AS _n FROM {self.table} WHERE {where.text} GROUP BY ALL {having} "
               f"ORDER BY _n DESC, {order} LIMIT {_TOP_VALUES}")
        out = []
        for *values, n in self.conn.execute(sql, list(where.params)).fetchall():
            out.append({"value": values[0] if len(values) == 1 else tuple(values), "count": n})
        return out


# ----------------------------------------------------------------------------------------- expectations


class _Check:
    """One expectation: what it adds to the scan, and its outcome from the scan's values."""

    def __init__(self, position: int, expectation: Mapping[str, Any], ctx: _Context) -> None:
        self.type: str = expectation["type"]
        self.kwargs: dict[str, Any] = {k: v for k, v in (expectation.get("kwargs") or {}).items()
                                       if k != "batch_id"}
        self.severity: str = str(expectation.get("severity") or CRITICAL)
        self.columns: tuple[str, ...] = _columns_of(self.type, self.kwargs)
        self.what = f"expectation #{position} {self.type}"
        self.ctx = ctx
        unknown = sorted(set(self.kwargs) - SUPPORTED_KWARGS[self.type] - _REPORTING_KWARGS)
        if unknown:
            raise SuiteSqlError(f"{self.what}: kwarg(s) {unknown} are not supported by eujp.suite_sql")
        for key in ("column", "column_A", "column_B"):
            if key in self.kwargs and not isinstance(self.kwargs[key], str):
                raise SuiteSqlError(f"{self.what}: {key} must be a column name, got {self.kwargs[key]!r}")
        mostly = self.kwargs.get("mostly", 1)
        if isinstance(mostly, bool) or not isinstance(mostly, (int, float)) or not 0 <= mostly <= 1:
            raise SuiteSqlError(f"{self.what}: mostly must be a number in [0, 1], got {mostly!r}")
        self.mostly = float(mostly)
        referenced = [*self.columns, *_condition_columns(self.kwargs.get("row_condition"))]
        self.missing = list(dict.fromkeys(c for c in referenced if c not in ctx.columns))
        self.error = f"column(s) {self.missing} not in the table" if self.missing else None
        if not self.missing:
            self.domain = _condition_sql(self.kwargs.get("row_condition"), ctx.columns, self.what)
            try:
                self.plan()
            except _Unevaluable as exc:
                self.error = str(exc)

    def column(self, key: str = "column") -> _Column:
        return self.ctx.columns[self.kwargs[key]]

    def plan(self) -> None:
        raise NotImplementedError

    def evaluate(self) -> ExpectationOutcome:
        raise NotImplementedError

    def outcome(self) -> ExpectationOutcome:
        if self.error:
            return self.result(False, message=f"could not be evaluated: {self.error}")
        return self.evaluate()

    def result(self, success: bool, *, message: str, element_count: int | None = None,
               unexpected_count: int | None = None, unexpected_percent: float | None = None,
               sample: list[dict[str, Any]] | None = None) -> ExpectationOutcome:
        return ExpectationOutcome(
            expectation_type=self.type, columns=self.columns, kwargs=dict(self.kwargs), severity=self.severity,
            success=success, unexpected_count=unexpected_count, unexpected_percent=unexpected_percent,
            sample_offending_rows=sample or [], message=message, element_count=element_count,
        )


def _mostly_success(considered: int, unexpected: int, mostly: float) -> bool:
    """GX's `_mostly_success`, with the same float arithmetic."""
    return (float(considered) - float(unexpected)) / float(considered) >= mostly


class _RowCheck(_Check):
    """A map expectation: each row of the domain is expected or not.

    Subclasses set `self.considered` (the rows looked at: non-null values, or rows not ignored) and
    `self.unexpected` (those failing), both `_Sql` predicates within the domain, and may override
    `counts()` (unique: a GROUP BY rather than a scan aggregate)."""

    null_check = False  # null / not-null: percent and `mostly` against every row of the domain

    def plan(self) -> None:
        self._element = self.ctx.scan.count(self.domain)
        self.considered, self.unexpected = self.predicates()
        self._considered = self.ctx.scan.count(_and(self.domain, self.considered))
        self._unexpected = self.ctx.scan.count(_and(self.domain, self.considered, self.unexpected))

    def predicates(self) -> tuple[_Sql, _Sql]:
        raise NotImplementedError

    def counts(self) -> tuple[int, int, int]:
        scan = self.ctx.scan
        return scan[self._element], scan[self._considered], scan[self._unexpected]

    def value_exprs(self) -> list[str]:
        return [self.ctx.columns[c].raw for c in self.columns]

    def offending(self) -> tuple[_Sql, str, tuple]:
        """WHERE (and JOIN) selecting the offending rows."""
        return _and(self.domain, self.considered, self.unexpected), "", ()

    def evaluate(self) -> ExpectationOutcome:
        element, considered, unexpected = self.counts()
        if self.null_check:
            success = True if element == 0 else (element - unexpected) / element >= self.mostly
            percent = unexpected / element * 100 if element else None
        else:
            success = True if element == 0 or considered == 0 else _mostly_success(considered, unexpected,
                                                                                       self.mostly)
            percent = unexpected / considered * 100 if element and considered else None
        if success:
            return self.result(True, message="met", element_count=element, unexpected_count=unexpected,
                               unexpected_percent=percent)
        where, join, params = self.offending()
        res = {"element_count": element, "unexpected_count": unexpected,
               "partial_unexpected_counts": self.unexpected_value_counts()}
        return self.result(False, message=_failure_message(self.type, self.kwargs, res), element_count=element,
                           unexpected_count=unexpected, unexpected_percent=percent,
                           sample=self.ctx.fetch_rows(where, join=join, params=params))

    def unexpected_value_counts(self) -> list[dict[str, Any]]:
        return self.ctx.top_values(self.value_exprs(), _and(self.domain, self.considered, self.unexpected))


class _NotNull(_RowCheck):
    null_check = True

    def predicates(self):
        return _TRUE, _Sql(f"{self.column().value} IS NULL")


class _Null(_RowCheck):
    null_check = True

    def predicates(self):
        return _TRUE, _Sql(f"{self.column().value} IS NOT NULL")


class _ColumnValues(_RowCheck):
    """Column-map expectations on the non-null values."""

    def predicates(self):
        return _Sql(f"{self.column().value} IS NOT NULL"), _not(self.expected())

    def expected(self) -> _Sql:
        raise NotImplementedError


class _InSet(_ColumnValues):
    def expected(self):
        value_set = self.kwargs.get("value_set")
        if value_set is None:  # GX: vacuously true
            return _TRUE
        if not isinstance(value_set, (list, tuple)):
            raise SuiteSqlError(f"{self.what}: value_set must be a list, got {value_set!r}")
        values = [v for v in value_set if v is not None]  # nulls are not checked anyway
        if self.column().kind == "datetime":
            raise SuiteSqlError(f"{self.what}: value_set on a date/datetime column is not supported")
        return _in_list(self.column(), values, self.what)


class _Between(_ColumnValues):
    def expected(self):
        column = self.column()
        if column.kind not in ("float", "number", "datetime"):
            raise SuiteSqlError(f"{self.what}: column {column.name!r} ({column.duck_type}) is not supported")
        low, high = (_gx_bound(self.kwargs.get(k), f"{self.what} {k}") for k in ("min_value", "max_value"))
        if low is None and high is None:
            raise SuiteSqlError(f"{self.what}: min_value and max_value cannot both be None")
        for key in ("strict_min", "strict_max"):
            if not isinstance(self.kwargs.get(key, False), (bool, type(None))):
                raise SuiteSqlError(f"{self.what}: {key} must be true or false")
        try:
            if low is not None and high is not None and low > high:
                raise SuiteSqlError(f"{self.what}: min_value {low!r} is greater than max_value {high!r}")
        except TypeError:
            raise SuiteSqlError(f"{self.what}: min_value {low!r} and max_value {high!r} are not comparable") from None
        parts = []
        for bound, strict, operator in ((low, "strict_min", ">"), (high, "strict_max", "<")):
            if bound is None:
                continue
            if column.kind == "datetime":
                # pandas compares datetime64 with a naive datetime only: GX fails on a date or a number
                if type(bound) is not dt.datetime or bound.tzinfo is not None:
                    raise _Unevaluable(f"Invalid comparison between dtype=datetime64[ns] and "
                                       f"{type(bound).__name__} ({bound!r})")
                lit = _Sql("CAST(? AS TIMESTAMP)", (bound,))
            else:
                if not isinstance(bound, (int, float)):
                    raise _Unevaluable(f"Invalid comparison between dtype={column.duck_type} and "
                                       f"{type(bound).__name__} ({bound!r})")
                lit = _literal(bound, column, self.what)
            operator += "" if self.kwargs.get(strict) else "="
            parts.append(_Sql(f"{column.value} {operator} {lit.text}", lit.params))
        return _and(*parts)


def _gx_bound(value: Any, what: str) -> Any:
    """min_value / max_value as GX's pydantic model holds them: a float, a date or a datetime (in that order of
    preference: "2020-01-31" is a date, "2020-01-31T00:00:00" a datetime, "5" the float 5.0)."""
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        if re.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}", value):
            try:
                return dt.date(*map(int, value.split("-")))
            except ValueError:
                pass
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            pass
    raise SuiteSqlError(f"{what}: {value!r} is not a number, date or datetime (GX refuses it as a bound)")


class _Regex(_ColumnValues):
    def expected(self):
        column, regex = self.column(), self.kwargs.get("regex")
        if not isinstance(regex, str):
            raise SuiteSqlError(f"{self.what}: regex must be a string, got {regex!r}")
        if column.kind != "string":
            raise SuiteSqlError(f"{self.what}: regex on column {column.name!r} ({column.duck_type}) is not "
                                "supported (GX matches its str() form)")
        translated = python_regex_to_re2(regex)
        _check_regex_compiles(self.ctx.conn, regex, translated)
        return _Sql(f"regexp_matches({column.value}, CAST(? AS VARCHAR))", (translated,))


class _PairGreater(_RowCheck):
    _IGNORE: ClassVar[dict[str, str]] = {
        "both_values_are_missing": "NOT ({a} IS NULL AND {b} IS NULL)",
        "either_value_is_missing": "{a} IS NOT NULL AND {b} IS NOT NULL",
        "neither": "TRUE",
    }

    def predicates(self):
        a, b = self.column("column_A"), self.column("column_B")
        kinds = {a.kind, b.kind}
        if not (len(kinds) == 1 and kinds <= {"float", "number", "datetime", "string", "bool"}
                or kinds <= {"float", "number"}):
            raise SuiteSqlError(f"{self.what}: columns {a.name!r} ({a.duck_type}) and {b.name!r} "
                                f"({b.duck_type}) are not comparable")
        ignore = self.kwargs.get("ignore_row_if", "both_values_are_missing")
        if ignore not in self._IGNORE:
            raise SuiteSqlError(f"{self.what}: ignore_row_if {ignore!r} is not supported")
        or_equal = self.kwargs.get("or_equal")
        if or_equal not in (None, True, False):
            raise SuiteSqlError(f"{self.what}: or_equal must be true, false or null")
        kept = self._IGNORE[ignore].format(a=a.value, b=b.value)
        return _Sql(kept), _Sql(f"NOT coalesce({a.value} {'>=' if or_equal else '>'} {b.value}, FALSE)")


class _Duplicates(_RowCheck):
    """unique / compound unique: rows whose (compound) value occurs more than once are all unexpected."""

    def key_columns(self) -> list[_Column]:
        raise NotImplementedError

    def plan(self) -> None:
        self._element = self.ctx.scan.count(self.domain)
        self.considered = self.kept()
        self.unexpected = _TRUE  # rows are picked by the join in offending()

    def kept(self) -> _Sql:
        raise NotImplementedError

    def _groups(self) -> str:
        keys = ", ".join(f"{c.raw} AS _k{i}" for i, c in enumerate(self.key_columns()))
        where = _and(self.domain, self.considered)
        return f"SELECT {keys}, count(*) AS _n FROM {self.ctx.table} WHERE {where.text} GROUP BY ALL"

    def counts(self) -> tuple[int, int, int]:
        where = _and(self.domain, self.considered)
        # Fast path: one 64-bit hash per key, grouped in bounded passes (eujp.warehouse.repeated_key_hashes).
        # Equal keys hash equal, so when no hash repeats no key repeats. A repeated hash (a duplicate, or a
        # collision) takes the exact GROUP BY below.
        considered, repeated = repeated_key_hashes(
            self.ctx.conn, self.ctx.table, ", ".join(c.raw for c in self.key_columns()),
            rows=self.ctx.scan[self._element], where=where.text, params=list(where.params))
        if repeated == 0:
            return self.ctx.scan[self._element], int(considered), 0
        considered, unexpected = self.ctx.conn.execute(
            f"SELECT coalesce(sum(_n), 0), coalesce(sum(_n) FILTER (WHERE _n > 1), 0) FROM ({self._groups()})",
            list(where.params)).fetchone()
        return self.ctx.scan[self._element], int(considered), int(unexpected)

    def offending(self):
        where = _and(self.domain, self.considered)
        on = " AND ".join(f"{c.value_of('_t', compare=False)} IS NOT DISTINCT FROM _d._k{i}"
                          for i, c in enumerate(self.key_columns()))
        join = f"SEMI JOIN ({self._groups()} HAVING count(*) > 1) AS _d ON {on}"
        return where, join, where.params

    def unexpected_value_counts(self):
        return self.ctx.top_values(self.value_exprs(), _and(self.domain, self.considered), "HAVING count(*) > 1")


class _Unique(_Duplicates):
    def key_columns(self):
        return [self.column()]

    def kept(self):
        return _Sql(f"{self.column().value} IS NOT NULL")


class _CompoundUnique(_Duplicates):
    _IGNORE: ClassVar[dict[str, str | None]] = {"all_values_are_missing": " OR ", "any_value_is_missing": " AND ",
                                               "never": None}

    def key_columns(self):
        return [self.ctx.columns[c] for c in self.columns]

    def kept(self):
        column_list = self.kwargs.get("column_list")
        if not isinstance(column_list, list) or len(column_list) < 2:
            raise SuiteSqlError(f"{self.what}: column_list must list at least two columns")
        ignore = self.kwargs.get("ignore_row_if", "all_values_are_missing")
        if ignore not in self._IGNORE:
            raise SuiteSqlError(f"{self.what}: ignore_row_if {ignore!r} is not supported")
        joiner = self._IGNORE[ignore]
        if joiner is None:
            return _TRUE
        return _Sql("(" + joiner.join(f"{c.value} IS NOT NULL" for c in self.key_columns()) + ")")


class _DistinctContains(_Check):
    _INLINE = 32  # longer value sets are looked up with a query of their own

    def plan(self) -> None:
        column, value_set = self.column(), self.kwargs.get("value_set")
        if value_set is None:
            value_set = []
        if not isinstance(value_set, (list, tuple)):
            raise SuiteSqlError(f"{self.what}: value_set must be a list, got {value_set!r}")
        if column.kind == "datetime":
            raise SuiteSqlError(f"{self.what}: value_set on a date/datetime column is not supported")
        self.values = list(dict.fromkeys(v for v in value_set if v is not None))  # GX: set(value_set)
        if any(v is None for v in value_set):
            raise SuiteSqlError(f"{self.what}: a null in value_set is not supported")
        self.literals = [_literal(v, column, self.what) for v in self.values]
        if len(self.values) <= self._INLINE:
            self._found = [self.ctx.scan.count(_and(self.domain, _Sql(f"{column.value} = {lit.text}", lit.params)))
                           for lit in self.literals]

    def evaluate(self) -> ExpectationOutcome:
        if not self.values:
            return self.result(True, message="met")
        if len(self.values) <= self._INLINE:
            found = [self.ctx.scan[i] > 0 for i in self._found]
        else:
            test = _in_list(self.column(), self.values, self.what)
            where = _and(self.domain, test)
            present = {row[0] for row in self.ctx.conn.execute(
                f"SELECT DISTINCT {self.column().value} FROM {self.ctx.table} WHERE {where.text}",
                list(where.params)).fetchall()}
            found = [v in present for v in self.values]
        missing = [v for v, ok in zip(self.values, found, strict=True) if not ok]
        if not missing:
            return self.result(True, message="met")
        return self.result(False, message=_failure_message(self.type, self.kwargs,
                                                           {"partial_missing_list": missing}))


class _RowCount(_Check):
    def plan(self) -> None:
        for key in ("min_value", "max_value"):
            value = self.kwargs.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise SuiteSqlError(f"{self.what}: {key} must be a number, got {value!r}")
        if self.ctx.whole:  # a table's row count is the whole table's, whatever rows the other checks read
            self._whole = self.ctx.conn.execute(f"SELECT count(*) FROM {self.ctx.whole} WHERE {self.domain.text}",
                                                list(self.domain.params)).fetchone()[0]
        else:
            self._rows = self.ctx.scan.count(self.domain)

    def evaluate(self) -> ExpectationOutcome:
        rows = self._whole if self.ctx.whole else self.ctx.scan[self._rows]
        low, high = self.kwargs.get("min_value"), self.kwargs.get("max_value")
        ok_low = low is None or (rows > low if self.kwargs.get("strict_min") else rows >= low)
        ok_high = high is None or (rows < high if self.kwargs.get("strict_max") else rows <= high)
        if ok_low and ok_high:
            return self.result(True, message="met")
        return self.result(False, message=_failure_message(self.type, self.kwargs, {"observed_value": rows}))


class _OrderedColumns(_Check):
    def plan(self) -> None:
        column_list = self.kwargs.get("column_list")
        if column_list is not None and not isinstance(column_list, list):
            raise SuiteSqlError(f"{self.what}: column_list must be a list, got {column_list!r}")

    def evaluate(self) -> ExpectationOutcome:
        expected, found = self.kwargs.get("column_list"), list(self.ctx.columns)
        if expected is None or list(expected) == found:
            return self.result(True, message="met")
        return self.result(False, message=_failure_message(self.type, self.kwargs, {"observed_value": found}))


_CHECKS: dict[str, type[_Check]] = {
    "expect_column_distinct_values_to_contain_set": _DistinctContains,
    "expect_column_pair_values_a_to_be_greater_than_b": _PairGreater,
    "expect_column_values_to_be_between": _Between,
    "expect_column_values_to_be_in_set": _InSet,
    "expect_column_values_to_be_null": _Null,
    "expect_column_values_to_be_unique": _Unique,
    "expect_column_values_to_match_regex": _Regex,
    "expect_column_values_to_not_be_null": _NotNull,
    "expect_compound_columns_to_be_unique": _CompoundUnique,
    "expect_table_columns_to_match_ordered_list": _OrderedColumns,
    "expect_table_row_count_to_be_between": _RowCount,
}
assert set(_CHECKS) == set(SUPPORTED_KWARGS)


# ------------------------------------------------------------------------------------------ entry point


def table_columns(conn: duckdb.DuckDBPyConnection, table_name: str) -> dict[str, str]:
    """Column name -> DuckDB type of a table of the current schema, in the table's order."""
    rows = conn.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ? AND schema_name = current_schema() "
        "AND database_name = current_database() ORDER BY column_index", [table_name]).fetchall()
    return dict(rows)


def evaluate_suite_sql(conn: duckdb.DuckDBPyConnection, table_name: str, *, run_id: str | None = None,
                       expectations_dir: Path | str | None = None,
                       rows_of_run: str | None = None) -> ValidationReport:
    """Evaluate `table_name`'s suite on the DuckDB table of that name (its business columns: the loader's
    `run_id` / `loaded_at` are left out) and report every expectation as `validate_frame` would.

    `rows_of_run`: only the rows of a fact table that run wrote (its `run_id` column) are checked, as
    `validate_frame` checks a batch: the table's other rows, their uniqueness against these included, are
    the audit's to vouch for (eujp.audit.suite_check). `expect_table_row_count_to_be_between` still counts
    the whole table (a count, not a scan).

    Never raises for a failed expectation; raises SuiteSqlError for a suite it cannot translate, before
    running any query on the table."""
    if table_name not in TABLES:
        raise ValueError(f"unknown table {table_name!r}; tables with suites: {', '.join(SUITE_TABLES)}")
    table = TABLES[table_name]
    suite = load_suite(table_name, expectations_dir)
    started = time.perf_counter()
    types = table_columns(conn, table.name)
    if not types:
        raise ValueError(f"{table.name}: no such table in the DuckDB database")
    business = {name: _Column(name, duck_type) for name, duck_type in types.items()
                if not (table.is_fact and name in LOAD_COLUMNS)}
    scope = quote_ident(table.name)
    if rows_of_run is not None:
        if not table.is_fact:
            raise ValueError(f"{table.name}: not a fact table: its rows carry no run_id to select a run's rows by")
        scope = quote_ident(f"_suite_rows_{table.name}")
        conn.execute(f"CREATE OR REPLACE TEMP VIEW {scope} AS SELECT * FROM {quote_ident(table.name)} "
                     f"WHERE run_id = {sql_string(rows_of_run)}")  # a view takes no parameter
    try:
        ctx = _Context(conn=conn, table=scope, columns=business, scan=_Scan(),
                       whole=quote_ident(table.name) if rows_of_run is not None else "")
        checks = []
        for position, expectation in enumerate(suite["expectations"]):
            kind = expectation.get("type")
            if kind not in _CHECKS:
                raise SuiteSqlError(f"{table.name}: expectation #{position} type {kind!r} is not supported by "
                                    f"eujp.suite_sql (supported: {', '.join(sorted(_CHECKS))})")
            checks.append(_CHECKS[kind](position, expectation, ctx))
        rows = ctx.scan.count(_TRUE)
        ctx.scan.run(conn, ctx.table)
        outcomes = [check.outcome() for check in checks]
    finally:
        if rows_of_run is not None:
            conn.execute(f"DROP VIEW IF EXISTS {scope}")
    return ValidationReport(
        table=table.name, run_id=run_id, row_count=int(ctx.scan[rows]), outcomes=outcomes,
        duration_seconds=time.perf_counter() - started, natural_key=table.natural_key,
    )


def translate_suite(table_name: str, expectations_dir: Path | str | None = None,
                    conn: duckdb.DuckDBPyConnection | None = None) -> None:
    """Translate `table_name`'s suite to SQL as the audit will, reading no warehouse: on an empty in-memory
    table of the declared columns (in `conn`, where the caller made them: one connection for every suite is
    ~0.09 s where one each was ~0.28 s). Raises SuiteSqlError (an expectation type, kwarg or value this module
    does not translate), or load_suite's error, so that the preflight (eujp.preflight.check_suites) refuses
    such a suite before a run extracts or loads anything, not at the audit after every load."""
    from eujp.warehouse import create_tables

    if conn is not None:
        evaluate_suite_sql(conn, table_name, expectations_dir=expectations_dir)
        return
    with duckdb.connect() as own:
        create_tables(own, [TABLES[table_name]])
        evaluate_suite_sql(own, table_name, expectations_dir=expectations_dir)
