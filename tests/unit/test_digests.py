"""eujp.digests: the partition digests (grouped by the unit's value, its text only per group) and the unit filter
(the values listed for the types whose text casts back exactly) select what their definition says, the text of
each row's unit value."""

from __future__ import annotations

import duckdb
import pytest

from eujp.digests import NULL_KEY, WHOLE, digests_and_markers, partition_digests, run_markers, unit_filter

# (type, values) of the unit columns a lake table or a published mart has, and some it could have
CASES = {
    "DATE": ["2024-12-01", "2025-01-01", "2025-01-01", None, "2025-02-01"],
    "INTEGER": [2023, 2024, 2024, None, -1],
    "BIGINT": [10**12, 7, 7, None],
    "VARCHAR": ["20261201T000000Z-aa", "b", "b", None, NULL_KEY, ""],
    "DOUBLE": [0.1, 1e300, 0.1, None, -2.5],
    "TIMESTAMP": ["2025-01-01 00:00:00", "2025-01-01 12:30:00.5", None],
}


@pytest.fixture
def conn():
    with duckdb.connect() as c:
        yield c


def _table(conn, dtype: str, values: list) -> None:
    conn.execute(f"CREATE OR REPLACE TABLE t (id INTEGER, u {dtype}, v VARCHAR)")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", [[i, u, f"row {i}"] for i, u in enumerate(values)])


def _by_definition(conn) -> dict[str, tuple[int, str]]:
    """The digests as defined: every row's unit value cast to text first, then grouped."""
    rows = conn.execute(f"SELECT coalesce(CAST(u AS VARCHAR), '{NULL_KEY}') AS k, count(*), "
                        "CAST(sum(hash(*COLUMNS(*))) AS VARCHAR) FROM t GROUP BY ALL").fetchall()
    return {k: (n, d) for k, n, d in rows}


@pytest.mark.parametrize("dtype", CASES)
def test_partition_digests_equal_their_definition(conn, dtype):
    _table(conn, dtype, CASES[dtype])
    got = partition_digests(conn, "t", "u")
    assert got == _by_definition(conn)
    assert sum(n for n, _ in got.values()) == len(CASES[dtype])
    assert got[NULL_KEY][0] == sum(1 for v in CASES[dtype] if v is None) + (dtype == "VARCHAR")
    conn.execute("UPDATE t SET v = 'edited' WHERE id = 1")  # one row of one unit changed: that unit's digest only
    after = partition_digests(conn, "t", "u")
    differs = sorted(k for k in got if got[k] != after[k])
    assert len(differs) == 1
    assert after == _by_definition(conn)


def test_a_whole_table_has_one_digest_even_empty(conn):
    conn.execute("CREATE TABLE w (a INTEGER, b VARCHAR)")
    assert partition_digests(conn, "w", None) == {WHOLE: (0, "0")}
    conn.execute("INSERT INTO w VALUES (1, 'x'), (2, NULL)")
    (n, digest), = partition_digests(conn, "w", None).values()
    assert n == 2
    assert digest == str(conn.execute("SELECT sum(hash(a, b)) FROM w").fetchone()[0])


@pytest.mark.parametrize("dtype", CASES)
def test_unit_filter_selects_the_rows_of_the_keys_it_is_given(conn, dtype):
    _table(conn, dtype, CASES[dtype])
    keys = list(_by_definition(conn))
    for chosen in ([keys[0]], [NULL_KEY], keys[1:3], keys, []):
        want = conn.execute(f"SELECT id FROM t WHERE coalesce(CAST(u AS VARCHAR), '{NULL_KEY}') "
                            "IN (SELECT unnest(?::VARCHAR[])) ORDER BY id", [chosen]).fetchall()
        for given in (dtype, None):
            where = unit_filter("u", chosen, given)
            assert conn.execute(f"SELECT id FROM t WHERE {where} ORDER BY id").fetchall() == want, (chosen, where)


def test_unit_filter_lists_the_values_only_for_types_whose_text_casts_back(conn):
    assert "CAST('2025-01-01' AS DATE)" in unit_filter("period", ["2025-01-01"], "DATE")
    assert "IS NULL" in unit_filter("period", [NULL_KEY], "date")
    assert unit_filter("x", ["0.1"], "DOUBLE") == unit_filter("x", ["0.1"])  # its text: compared as text only
    assert unit_filter(None, ["anything"]) == "true"
    assert unit_filter("period", [], "DATE") == "false"


def test_unit_filter_skips_the_row_groups_without_the_values(conn):
    """The listed values reach the scan as a filter DuckDB checks against each row group's min and max."""
    conn.execute("CREATE TABLE big AS SELECT CAST(DATE '2020-01-01' + INTERVAL (i // 200000) MONTH AS DATE) AS period, i "
                 "FROM range(2000000) AS r(i)")
    plan = conn.execute("EXPLAIN " f"SELECT count(*) FROM big WHERE {unit_filter('period', ['2020-05-01'], 'DATE')}"
                        ).fetchall()[0][1]
    assert "'2020-05-01'::DATE" in plan.split("Filters:")[1]  # a comparison of the column itself, not of its text
    assert conn.execute(f"SELECT count(*) FROM big WHERE {unit_filter('period', ['2020-05-01'], 'DATE')}"
                        ).fetchone()[0] == 200_000


def test_run_markers_change_with_the_runs_that_wrote_a_units_rows_and_not_with_their_values(conn):
    conn.execute("CREATE TABLE f (period VARCHAR, value DOUBLE, run_id VARCHAR)")
    conn.executemany("INSERT INTO f VALUES (?, ?, ?)",
                     [["2025-01", 1.0, "r1"], ["2025-01", 2.0, "r1"], ["2025-02", 3.0, "r1"], [None, 4.0, "r1"]])
    first = run_markers(conn, "f", "period")
    assert {k: n for k, (n, _) in first.items()} == {"2025-01": 2, "2025-02": 1, NULL_KEY: 1}
    conn.execute("UPDATE f SET value = 9, run_id = 'r2' WHERE period = '2025-02'")  # a run rewrote the month
    second = run_markers(conn, "f", "period")
    assert second["2025-02"] != first["2025-02"] and second["2025-02"][0] == 1
    assert {k: v for k, v in second.items() if k != "2025-02"} == {k: v for k, v in first.items() if k != "2025-02"}
    conn.execute("UPDATE f SET value = 5 WHERE period = '2025-01'")  # by hand, run ids left alone: not seen
    assert run_markers(conn, "f", "period") == second
    conn.execute("DELETE FROM f WHERE period = '2025-01' AND value = 5 AND run_id = 'r1' AND rowid = "
                 "(SELECT min(rowid) FROM f WHERE period = '2025-01')")
    assert run_markers(conn, "f", "period")["2025-01"][0] == 1


def test_digests_and_markers_are_the_two_from_one_scan(conn):
    conn.execute("CREATE TABLE f (period DATE, value DOUBLE, run_id VARCHAR)")
    conn.executemany("INSERT INTO f VALUES (?, ?, ?)", [["2025-01-01", 1.0, "r1"], ["2025-01-01", None, "r2"],
                                                         ["2025-02-01", 3.0, "r1"], [None, 4.0, None]])
    assert digests_and_markers(conn, "f", "period") == (partition_digests(conn, "f", "period"),
                                                         run_markers(conn, "f", "period"))
    conn.execute("DELETE FROM f")
    assert digests_and_markers(conn, "f", "period") == ({}, {})
