"""eujp.suite_sql: the expectation suites evaluated in DuckDB SQL, checked against Great Expectations.

For every suite in expectations/, on the bundled real data and on copies with violations of each of its
expectations injected (plus edge cases: NaN, null key parts, Python-only regex matches, exact bounds, an
empty table, reordered and missing columns, too many rows), the SQL evaluation must report what
`eujp.validate.validate_frame` (GX, pandas engine) reports for the same rows: per expectation the same
success, element_count, unexpected_count and unexpected_percent. Custom suites exercise what the shipped
ones do not use (mostly, strict bounds, other condition operators, ignore_row_if values).

GX takes seconds to import and the bundled warehouse seconds to build: both are shared (module/session).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from pathlib import Path

import duckdb
import pytest

from eujp import validate
from eujp.schema import LOAD_COLUMNS
from eujp.sql import quote_ident
from eujp.suite_sql import SuiteSqlError, evaluate_suite_sql, python_regex_to_re2
from eujp.tables import TABLES

REPO_ROOT = Path(__file__).resolve().parents[2]
ARABIC_DIGITS = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


@pytest.fixture(scope="module")
def gx():
    validate._runtime()  # import GX once for the module


def staged(bundled_warehouse: Path, table: str, *, select: str = "*", where: str = "") -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB holding a copy of `table` from the bundled warehouse (free to change)."""
    conn = duckdb.connect()
    conn.execute(f"ATTACH '{bundled_warehouse}' AS src (READ_ONLY)")
    conn.execute(f"CREATE TABLE {quote_ident(table)} AS SELECT {select} FROM src.{quote_ident(table)} {where}")
    conn.execute("DETACH src")
    return conn


def reference(conn: duckdb.DuckDBPyConnection, table: str, expectations_dir=None) -> validate.ValidationReport:
    """GX on the table's rows: the non-load columns, in the table's order, as the loader's frame types."""
    t = TABLES[table]
    names = [r[0] for r in conn.execute(f"DESCRIBE {quote_ident(table)}").fetchall()
             if not (t.is_fact and r[0] in LOAD_COLUMNS)]
    frame = conn.execute(f"SELECT {', '.join(map(quote_ident, names))} FROM {quote_ident(table)}").pl()
    frame = frame.cast({c: t.business_columns[c] for c in names if c in t.business_columns})
    return validate.validate_frame(table, frame, expectations_dir=expectations_dir)


def assert_same(sql: validate.ValidationReport, gx_report: validate.ValidationReport) -> None:
    assert sql.row_count == gx_report.row_count
    assert len(sql.outcomes) == len(gx_report.outcomes)
    for i, (a, b) in enumerate(zip(sql.outcomes, gx_report.outcomes, strict=True)):
        where = f"{sql.table} #{i} {b.label}: SQL {a.message!r} vs GX {b.message!r}"
        assert (a.expectation_type, a.columns, a.severity) == (b.expectation_type, b.columns, b.severity), where
        assert a.success == b.success, where
        assert a.unexpected_count == b.unexpected_count, where
        assert a.element_count == b.element_count, where
        if b.unexpected_percent is None:
            assert a.unexpected_percent is None, where
        else:
            assert a.unexpected_percent == pytest.approx(b.unexpected_percent), where
        if a.message.startswith("could not be evaluated"):
            assert b.message.startswith("could not be evaluated"), where
        assert (a.message == "met") == (b.message == "met"), where
    assert sql.success == gx_report.success
    assert [o.label for o in sql.warnings] == [o.label for o in gx_report.warnings]


# ------------------------------------------------------------------------------------- injected violations


def _rows(conn, table: str, where: str = "TRUE", params=()) -> list[int]:
    return [r[0] for r in conn.execute(f"SELECT rowid FROM {quote_ident(table)} WHERE {where} ORDER BY rowid",
                                       list(params)).fetchall()]


def _set(conn, table: str, rowid: int, **values) -> None:
    assignments = ", ".join(f"{quote_ident(c)} = ?" for c in values)
    conn.execute(f"UPDATE {quote_ident(table)} SET {assignments} WHERE rowid = ?", [*values.values(), rowid])


def _condition(condition) -> tuple[str, list]:
    """A GX condition as SQL, written independently of eujp.suite_sql (only to pick rows to change)."""
    if not condition:
        return "TRUE", []
    if condition["type"] == "nullity":
        return f"{quote_ident(condition['column']['name'])} IS {'' if condition['is_null'] else 'NOT '}NULL", []
    col, op, value = quote_ident(condition["column"]["name"]), condition["operator"], condition["parameter"]
    if op == "IN":
        return f"{col} IN ({', '.join('?' * len(value))})", list(value)
    return f"{col} {'=' if op == '==' else '<>' if op == '!=' else op} ?", [value]


def _types(conn, table: str) -> dict[str, str]:
    return dict(conn.execute("SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ?",
                             [table]).fetchall())


def _filler(duck_type: str, avoid=()):
    for value in {"VARCHAR": ["filler", "XX_NOT_IN_SET"], "DATE": [dt.date(2000, 1, 1)], "DOUBLE": [1.5, 2.5],
                  "INTEGER": [2000, 999_999], "BOOLEAN": [True, False]}[duck_type]:
        if value not in avoid:
            return value
    raise AssertionError(f"no filler for {duck_type} avoiding {avoid}")


def _outside(duck_type: str, value_set):
    """A value not in `value_set`."""
    value = {"VARCHAR": "XX_NOT_IN_SET", "INTEGER": 999_999, "DOUBLE": 999_999.5}.get(duck_type)
    if duck_type == "BOOLEAN":
        value = next(v for v in (True, False) if v not in value_set)
    assert value is not None and value not in value_set
    return value


def _shift(value, duck_type: str, delta: int):
    if duck_type == "DATE":
        return value + dt.timedelta(days=delta)
    return value + delta


def _bound(value, duck_type: str):
    return dt.date.fromisoformat(value[:10]) if duck_type == "DATE" else value


def inject_violations(conn, table: str) -> None:
    """Break each expectation of the suite on rows of its own, and add edge cases GX and SQL must agree on."""
    types = _types(conn, table)
    suite = validate.load_suite(table)
    while len(_rows(conn, table)) < 6 * len(suite["expectations"]):  # small tables: room for every violation
        conn.execute(f"INSERT INTO {quote_ident(table)} SELECT * FROM {quote_ident(table)}")
    total = len(_rows(conn, table))
    used: set[int] = set()

    def pick(candidates: list[int]) -> int:
        free = [r for r in candidates if r not in used] or candidates
        used.add(free[0])
        return free[0]

    for exp in suite["expectations"]:
        kw, kind = exp["kwargs"], exp["type"]
        cond, params = _condition(kw.get("row_condition"))
        candidates = _rows(conn, table, cond, params) or _rows(conn, table)
        row, other = pick(candidates), pick(candidates)
        col = kw.get("column")
        if kind == "expect_column_values_to_not_be_null":
            _set(conn, table, row, **{col: None})
        elif kind == "expect_column_values_to_be_null":
            _set(conn, table, row, **{col: _filler(types[col])})
        elif kind == "expect_column_values_to_be_in_set":
            _set(conn, table, row, **{col: _outside(types[col], kw["value_set"])})
            if kw.get("row_condition", {}).get("operator") == "!=":  # a null compares != as True in pandas
                _set(conn, table, other, **{kw["row_condition"]["column"]["name"]: None,
                                            col: _outside(types[col], kw["value_set"])})
        elif kind == "expect_column_values_to_match_regex":
            value = conn.execute(f"SELECT {quote_ident(col)} FROM {quote_ident(table)} WHERE rowid = ?",
                                 [row]).fetchone()[0] or "AB12"
            _set(conn, table, row, **{col: "not valid!"})
            _set(conn, table, other, **{col: value + "\n"})  # Python's $ matches before a final newline
            _set(conn, table, pick(candidates), **{col: value.translate(ARABIC_DIGITS)})  # Python's \d: Unicode
        elif kind == "expect_column_values_to_be_between":
            if kw.get("min_value") is not None:
                _set(conn, table, row, **{col: _shift(_bound(kw["min_value"], types[col]), types[col], -1)})
                _set(conn, table, other, **{col: _bound(kw["min_value"], types[col])})  # inclusive
            if kw.get("max_value") is not None:
                _set(conn, table, pick(candidates),
                     **{col: _shift(_bound(kw["max_value"], types[col]), types[col], 1)})
        elif kind == "expect_column_values_to_be_unique":
            value = conn.execute(f"SELECT {quote_ident(col)} FROM {quote_ident(table)} WHERE rowid = ?",
                                 [other]).fetchone()[0]
            _set(conn, table, row, **{col: value})
        elif kind == "expect_compound_columns_to_be_unique":
            keys = kw["column_list"]
            values = dict(zip(keys, conn.execute(f"SELECT {', '.join(map(quote_ident, keys))} FROM "
                                                 f"{quote_ident(table)} WHERE rowid = ?", [other]).fetchone(),
                              strict=True))
            _set(conn, table, row, **values)
            # two more rows equal on the key with a null part: pandas counts them as duplicates too
            for _ in range(2):
                _set(conn, table, pick(candidates), **{**values, keys[-1]: None, keys[0]: "NULLKEY"})
        elif kind == "expect_column_pair_values_a_to_be_greater_than_b":
            a_col, b_col = kw["column_A"], kw["column_B"]
            base = _filler(types[b_col])
            _set(conn, table, row, **{b_col: base, a_col: base if not kw.get("or_equal") else
                                      _shift(base, types[a_col], -1)})
            _set(conn, table, other, **{b_col: base, a_col: None})  # ignored (either_value_is_missing)
        elif kind == "expect_column_distinct_values_to_contain_set":
            missing = kw["value_set"][0]
            conn.execute(f"UPDATE {quote_ident(table)} SET {quote_ident(col)} = ? WHERE {quote_ident(col)} = ?",
                         [_outside(types[col], kw["value_set"]), missing])
    # NaN is a missing value to pandas
    for col, duck_type in types.items():
        if duck_type == "DOUBLE":
            _set(conn, table, _rows(conn, table)[(total // 2)], **{col: math.nan})


CASES = ("bundled", "violations", "empty", "reordered")


def prepare(bundled_warehouse: Path, table: str, case: str) -> duckdb.DuckDBPyConnection:
    if case == "bundled":
        return staged(bundled_warehouse, table)
    if case == "violations":
        conn = staged(bundled_warehouse, table)
        inject_violations(conn, table)
        return conn
    if case == "empty":
        return staged(bundled_warehouse, table, where="LIMIT 0")
    # the first two business columns swapped
    columns = list(TABLES[table].all_columns)
    columns[0], columns[1] = columns[1], columns[0]
    return staged(bundled_warehouse, table, select=", ".join(map(quote_ident, columns)))


_RESULTS: dict[tuple[str, str], tuple[validate.ValidationReport, validate.ValidationReport]] = {}


@pytest.fixture(scope="module")
def compare(gx, bundled_warehouse):
    def run(table: str, case: str):
        if (table, case) not in _RESULTS:
            conn = prepare(bundled_warehouse, table, case)
            try:
                _RESULTS[table, case] = evaluate_suite_sql(conn, table), reference(conn, table)
            finally:
                conn.close()
        return _RESULTS[table, case]
    return run


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("table", validate.SUITE_TABLES)
def test_sql_evaluation_reports_what_gx_reports(compare, table, case):
    sql, gx_report = compare(table, case)
    assert_same(sql, gx_report)
    if case == "bundled":
        assert sql.row_count > 0 and sql.success and not sql.critical_failures
    if case == "violations":
        assert not sql.success
    if case == "reordered":
        assert not sql.outcomes[0].success and sql.outcomes[0].message.startswith("failed: columns are in the wrong")
    if case == "empty":  # map expectations pass vacuously; the row count and "values include" fail
        assert sql.row_count == 0
        assert {o.expectation_type for o in sql.outcomes if not o.success} <= {
            "expect_table_row_count_to_be_between", "expect_column_distinct_values_to_contain_set"}


@pytest.mark.parametrize("table", validate.SUITE_TABLES)
def test_every_expectation_of_every_suite_fails_in_some_case(compare, table):
    """The injected cases reach every expectation: each fails (in SQL and in GX) at least once."""
    failed: set[int] = set()
    for case in CASES:
        sql, _ = compare(table, case)
        failed |= {i for i, o in enumerate(sql.outcomes) if not o.success}
    suite = validate.load_suite(table)
    never = [f"#{i} {e['type']}({e['kwargs'].get('column', '')})" for i, e in enumerate(suite["expectations"])
             if i not in failed]
    assert never == []


def test_failure_details_name_values_and_rows(compare):
    sql, _ = compare("fact_arms_transfers", "violations")
    by_label = {o.label: o for o in sql.outcomes}
    in_set = by_label["expect_column_values_to_be_in_set(source)"]
    assert in_set.message.startswith("failed on 1 of ")
    assert "unexpected values: 'XX_NOT_IN_SET' (x1)" in in_set.message
    assert in_set.sample_offending_rows and in_set.sample_offending_rows[0]["source"] == "XX_NOT_IN_SET"
    assert set(in_set.sample_offending_rows[0]) == set(TABLES["fact_arms_transfers"].business_columns)
    unique = by_label["expect_column_values_to_be_unique(transfer_id)"]
    assert unique.unexpected_count == 2 and len(unique.sample_offending_rows) == 2
    assert len({r["transfer_id"] for r in unique.sample_offending_rows}) == 1
    recipient = by_label["expect_column_values_to_be_in_set(recipient_iso2)"]
    assert "where supplier_iso2 != 'JP'" in recipient.message
    with pytest.raises(validate.ValidationFailed, match=r"fact_arms_transfers: critical expectation"):
        sql.raise_for_critical()
    assert json.loads(json.dumps(sql.to_dict()))["expectations"][0]["expectation_type"] == \
           "expect_table_columns_to_match_ordered_list"


def test_missing_column_and_too_many_rows(gx, bundled_warehouse):
    # dim_country without sipri_name and 2x its rows (over the row-count maximum, every key duplicated)
    columns = [c for c in TABLES["dim_country"].all_columns if c != "sipri_name"]
    conn = staged(bundled_warehouse, "dim_country", select=", ".join(map(quote_ident, columns)))
    conn.execute("INSERT INTO dim_country SELECT * FROM dim_country")
    sql, gx_report = evaluate_suite_sql(conn, "dim_country"), reference(conn, "dim_country")
    assert_same(sql, gx_report)
    assert sql.outcomes[0].message.startswith("failed: columns missing ['sipri_name']")
    row_count = sql.outcomes[-1]
    assert not row_count.success and row_count.message == "failed: 498 rows, expected between 28 and 300"


# ----------------------------------------------------------------------------------------- custom suites

_JP = {"column": {"name": "supplier_iso2"}, "operator": "==", "parameter": "JP", "type": "comparison"}


def _exp(kind: str, severity: str = "critical", **kwargs) -> dict:
    return {"type": kind, "kwargs": kwargs, "severity": severity, "meta": {}}


CUSTOM = {
    "fact_arms_transfers": [
        _exp("expect_column_values_to_be_between", column="order_year", min_value=1950, max_value=2024,
             strict_min=True, strict_max=True),
        _exp("expect_column_values_to_be_between", column="order_year", min_value=1990, mostly=0.5),
        _exp("expect_column_values_to_be_between", column="order_year", min_value=1990, mostly=0.99),
        _exp("expect_column_values_to_be_between", column="tiv_per_unit", max_value=5.5, strict_max=True),
        _exp("expect_column_values_to_be_between", column="tiv_per_unit", min_value="2000-01-01"),  # GX: a date
        _exp("expect_column_values_to_be_between", column="number_ordered", min_value="5", max_value=1e9),
        _exp("expect_column_values_to_be_in_set", column="order_year_uncertain", value_set=[False], mostly=0.9),
        _exp("expect_column_values_to_be_in_set", column="number_ordered", value_set=[1, 2.0, 4]),
        _exp("expect_column_values_to_be_in_set", column="status", value_set=[]),
        _exp("expect_column_values_to_not_be_null", column="comments", mostly=0.1),
        _exp("expect_column_values_to_not_be_null", column="first_delivery_year", row_condition={
            "type": "or", "conditions": [
                {"type": "and", "conditions": [
                    {"column": {"name": "order_year"}, "operator": ">=", "parameter": 2000, "type": "comparison"},
                    {"column": {"name": "recipient_iso2"}, "operator": "NOT_IN", "parameter": ["JP", "US"],
                     "type": "comparison"}]},
                {"column": {"name": "number_delivered"}, "is_null": True, "type": "nullity"}]}),
        _exp("expect_column_values_to_be_null", column="comments", row_condition={
            "column": {"name": "tiv_delivered"}, "operator": "<", "parameter": 10.5, "type": "comparison"}),
        _exp("expect_column_values_to_be_null", column="comments", row_condition={
            "column": {"name": "order_year_uncertain"}, "operator": "!=", "parameter": True, "type": "comparison"}),
        _exp("expect_column_values_to_be_unique", column="recipient", mostly=0.5),
        _exp("expect_column_values_to_be_unique", column="weapon_designation", row_condition=_JP),
        _exp("expect_column_values_to_match_regex", column="weapon_description", regex=r"(?i)^[a-z\s-]+$",
             mostly=0.8),
        _exp("expect_column_values_to_match_regex", column="delivery_years", regex=r"^\d{4}(?:; \d{4})*$"),
        _exp("expect_column_values_to_match_regex", column="comments", regex=r"\S"),
        _exp("expect_column_pair_values_a_to_be_greater_than_b", column_A="last_delivery_year",
             column_B="order_year", ignore_row_if="neither"),
        _exp("expect_column_pair_values_a_to_be_greater_than_b", column_A="number_delivered",
             column_B="number_ordered", or_equal=True, mostly=0.5),
        _exp("expect_column_pair_values_a_to_be_greater_than_b", column_A="tiv_total_order",
             column_B="tiv_delivered", ignore_row_if="both_values_are_missing", or_equal=True),
        _exp("expect_compound_columns_to_be_unique", column_list=["supplier_iso2", "recipient_iso2", "order_year"],
             ignore_row_if="any_value_is_missing"),
        _exp("expect_compound_columns_to_be_unique", column_list=["comments", "first_delivery_year"],
             ignore_row_if="never", mostly=0.3),
        _exp("expect_compound_columns_to_be_unique", column_list=["comments", "first_delivery_year"]),
        _exp("expect_column_distinct_values_to_contain_set", column="recipient_iso2", value_set=["DE", "ZZ"],
             row_condition=_JP),
        _exp("expect_column_distinct_values_to_contain_set", column="order_year", value_set=[2000, 1999.0]),
        _exp("expect_column_distinct_values_to_contain_set", column="order_year_uncertain", value_set=[True]),
        _exp("expect_table_row_count_to_be_between", min_value=455, max_value=455, strict_max=True),
        _exp("expect_table_row_count_to_be_between", min_value=10, row_condition=_JP),
    ],
    "dim_country": [
        _exp("expect_column_values_to_be_between", column="eu_entry_date", min_value="1958-01-01T00:00:00",
             max_value="2004-05-01T12:00:00", strict_min=True),
        _exp("expect_column_values_to_be_between", column="eu_exit_date", max_value="2020-01-31"),  # a date
        _exp("expect_column_values_to_be_between", column="eu_exit_date", max_value="2020-01-31T00:00:00+00:00"),
        _exp("expect_column_values_to_be_between", column="eu_exit_date", min_value=0),
        _exp("expect_column_pair_values_a_to_be_greater_than_b", column_A="eu_exit_date",
             column_B="eu_entry_date"),
        _exp("expect_column_values_to_be_in_set", column="iso2", value_set=["JP", "GB"], row_condition={
            "column": {"name": "eu_entry_date"}, "operator": "<=", "parameter": "1973-01-01", "type": "comparison"}),
        _exp("expect_column_values_to_be_in_set", column="is_eu_member", value_set=[True, False]),
        _exp("expect_column_values_to_match_regex", column="name", regex=r"^[A-Z][a-z]+(?: [a-z]+)*$",
             row_condition={"column": {"name": "is_eu_member"}, "operator": "==", "parameter": False,
                            "type": "comparison"}),
        _exp("expect_column_distinct_values_to_contain_set", column="iso3",
             value_set=[f"X{i:02d}" for i in range(40)] + ["JPN"]),
    ],
}


@pytest.mark.parametrize("table", sorted(CUSTOM))
def test_custom_suites_cover_mostly_strict_bounds_and_every_condition_operator(gx, bundled_warehouse, tmp_path,
                                                                                 table):
    suite = {"name": table, "expectations": CUSTOM[table], "meta": {}}
    (tmp_path / f"{table}.json").write_text(json.dumps(suite), encoding="utf-8")
    conn = staged(bundled_warehouse, table)
    sql = evaluate_suite_sql(conn, table, expectations_dir=tmp_path)
    gx_report = reference(conn, table, expectations_dir=tmp_path)
    assert_same(sql, gx_report)
    outcomes = [o.success for o in sql.outcomes]
    assert True in outcomes and False in outcomes


def test_uniqueness_checked_in_many_hash_passes_reports_what_gx_does(gx, bundled_warehouse, tmp_path, monkeypatch):
    """The duplicate checks group their keys' hashes in bounded passes (eujp.warehouse.repeated_key_hashes): with
    a pass of 50 keys the 455 SIPRI rows take 10 passes, and every unique / compound-unique outcome (duplicates
    found, rows counted, mostly, conditions) is still GX's."""
    from eujp import warehouse

    monkeypatch.setattr(warehouse, "KEYS_PER_PASS", 50)
    table = "fact_arms_transfers"
    unique = [e for e in CUSTOM[table] if e["type"].endswith("_to_be_unique")]
    (tmp_path / f"{table}.json").write_text(json.dumps({"name": table, "expectations": unique, "meta": {}}),
                                            encoding="utf-8")
    conn = staged(bundled_warehouse, table)
    sql = evaluate_suite_sql(conn, table, expectations_dir=tmp_path)
    assert_same(sql, reference(conn, table, expectations_dir=tmp_path))
    assert len(sql.outcomes) == 5 and {o.success for o in sql.outcomes} == {True, False}
    assert any(o.unexpected_count for o in sql.outcomes)


# ----------------------------------------------------------------------------------- what is refused


def _suite_with(tmp_path: Path, expectation: dict, table: str = "fact_goods_trade") -> Path:
    suite = validate.load_suite(table)
    suite["expectations"].append(expectation)
    (tmp_path / f"{table}.json").write_text(json.dumps(suite), encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(("expectation", "error"), [
    (_exp("expect_column_mean_to_be_between", column="value_mio_eur", min_value=0),
     r"expectation #19 type 'expect_column_mean_to_be_between' is not supported by eujp.suite_sql"),
    (_exp("expect_column_values_to_be_in_set", column="flow", value_set=["export"], parse_strings_as_datetimes=True),
     r"expectation #19 expect_column_values_to_be_in_set: kwarg\(s\) \['parse_strings_as_datetimes'\] are not"),
    (_exp("expect_column_values_to_match_regex", column="partner", regex=r"^(?!EU)"),
     r"regex '\^\(\?!EU\)' uses a negative look-around, which RE2 \(DuckDB\) cannot match as Python does"),
    (_exp("expect_column_values_to_match_regex", column="partner", regex=r"\bJP\b"),
     r"uses the assertion AT_BOUNDARY"),
    (_exp("expect_column_values_to_not_be_null", column="partner", row_condition='flow == "export"'),
     r"string row_condition 'flow == \"export\"' \(a pandas query\) is not supported"),
    (_exp("expect_column_values_to_be_in_set", column="period_year", value_set=["2020"]),
     r"value '2020' \(str\) cannot be compared with column 'period_year' \(INTEGER\)"),
    (_exp("expect_column_values_to_be_between", column="value_mio_eur", min_value="low"),
     r"min_value: 'low' is not a number, date or datetime \(GX refuses it as a bound\)"),
    (_exp("expect_column_values_to_not_be_null", column="partner", mostly=1.5),
     r"mostly must be a number in \[0, 1\], got 1.5"),
    (_exp("expect_column_values_to_be_between", column="period_year", min_value=2020, max_value=2000),
     r"min_value 2020 is greater than max_value 2000"),
])
def test_what_cannot_be_translated_raises_naming_it(bundled_warehouse, tmp_path, expectation, error):
    conn = staged(bundled_warehouse, "fact_goods_trade")
    with pytest.raises(SuiteSqlError, match=error):
        evaluate_suite_sql(conn, "fact_goods_trade", expectations_dir=_suite_with(tmp_path, expectation))


def test_unknown_table_and_missing_table(bundled_warehouse):
    with pytest.raises(ValueError, match="unknown table 'nope'"):
        evaluate_suite_sql(duckdb.connect(), "nope")
    with pytest.raises(ValueError, match="fact_goods_trade: no such table"):
        evaluate_suite_sql(duckdb.connect(), "fact_goods_trade")


# ---------------------------------------------------------------------------------------------- regexes


def _suite_regexes() -> list[str]:
    return sorted({e["kwargs"]["regex"] for path in sorted((REPO_ROOT / "expectations").glob("*.json"))
                   for e in json.loads(path.read_text(encoding="utf-8"))["expectations"] if "regex" in e["kwargs"]})


_TRICKY = ["", "AB", "ab", "AB\n", "AB\n\n", "\nAB", "AB\r", " AB", "12345678", "١٢٣٤٥٦٧٨", "１２３４５６", "12345678\n",
           "EU27_2020", "EXT_EU27", "M12", "M123", "NO_RESTRICTION", "https://x.org", "HTTP://x", "p", ":", "pe",
           "JP;FR", "JP;", "2023-13", "2023-01\n", "0123456789abcdef", "0123456789abcdef-2", "élan", "ſ", "K"]


@pytest.mark.parametrize("pattern", [*_suite_regexes(), r"(?i)^ab$", r"(?s)a.b", r"(?m)^b$", r"a.b", r"[^\d\s]+",
                                     r"\w+$", r"\W", r"\Aab\Z", r"a{,2}b", r"(a|b)+?c", r"[]a]", r"(?a)\d"])
def test_regexes_match_in_duckdb_exactly_where_python_re_search_does(pattern):
    conn = duckdb.connect()
    translated = python_regex_to_re2(pattern)
    values = [*_TRICKY, "a\nb", "b\nc", "ab\n", "abc", "bbac", "a" * 3 + "b", "]", "_x_"]
    got = [r[0] for r in conn.execute("SELECT regexp_matches(v, ?) FROM unnest(?) WITH ORDINALITY AS t(v, i) "
                                      "ORDER BY i", [translated, values]).fetchall()]
    assert got == [bool(re.search(pattern, v)) for v in values]
