"""eujp.compare: two warehouses are the same when every table has the same columns, types, comments and rows
(run ids and load times aside); each kind of difference is reported for its table."""

from __future__ import annotations

import duckdb

from eujp.compare import compare_warehouses, main


def _warehouse(path, rows, *, run_id="r1", extra_column=False, comment="Trade."):
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE fact_x (k VARCHAR, v DOUBLE, run_id VARCHAR, loaded_at TIMESTAMPTZ"
                     + (", extra INTEGER" if extra_column else "") + ")")
        conn.execute(f"COMMENT ON TABLE fact_x IS '{comment}'")
        for k, v in rows:
            conn.execute("INSERT INTO fact_x (k, v, run_id, loaded_at) VALUES (?, ?, ?, now())", [k, v, run_id])
        conn.execute("CREATE TABLE etl_runs (run_id VARCHAR, source VARCHAR)")
    return path


def test_same_rows_of_other_runs_are_the_same(tmp_path):
    a = _warehouse(tmp_path / "a.duckdb", [("x", 1.0), ("y", 2.0)], run_id="run-a")
    b = _warehouse(tmp_path / "b.duckdb", [("y", 2.0), ("x", 1.0)], run_id="run-b")
    assert all(d.same for d in compare_warehouses(a, b))
    assert main([str(a), str(b)]) == 0


def test_a_changed_value_a_missing_row_and_a_duplicate_are_differences(tmp_path, capsys):
    a = _warehouse(tmp_path / "a.duckdb", [("x", 1.0), ("y", 2.0)])
    b = _warehouse(tmp_path / "b.duckdb", [("x", 1.5), ("x", 1.5)])
    [etl, fact] = compare_warehouses(a, b)
    assert etl.same and not fact.same
    assert (fact.rows_a, fact.rows_b, fact.only_in_a, fact.only_in_b) == (2, 2, 2, 2)
    assert main([str(a), str(b)]) == 1
    assert "fact_x: 2 / 2 rows, 2 only in A, 2 only in B" in capsys.readouterr().out


def test_schema_differences_and_missing_tables_are_reported(tmp_path):
    a = _warehouse(tmp_path / "a.duckdb", [("x", 1.0)])
    b = _warehouse(tmp_path / "b.duckdb", [("x", 1.0)], extra_column=True)
    c = _warehouse(tmp_path / "c.duckdb", [("x", 1.0)], comment="Other.")
    assert compare_warehouses(a, b)[1].schema == "columns differ: [('extra', 'INTEGER', None)]"
    assert compare_warehouses(a, c)[1].schema == "table comments differ"
    with duckdb.connect(str(c)) as conn:
        conn.execute("DROP TABLE etl_runs")
    assert compare_warehouses(a, c)[0].line() == "etl_runs: only in A"


def test_a_run_id_named_in_a_message_is_no_difference_the_rest_of_the_message_is(tmp_path):
    """etl_runs.message names the run ("see etl_rejected_rows (run_id '…', ...)"): two runs that rejected the
    same rows write the same message but for it."""
    def with_message(path, run_id, count):
        path = _warehouse(path, [("x", 1.0)], run_id=run_id)
        with duckdb.connect(str(path)) as conn:
            conn.execute("ALTER TABLE etl_runs ADD COLUMN message VARCHAR")
            conn.execute("INSERT INTO etl_runs VALUES (?, 'some_source', ?)", [run_id, (
                f"some_source: {count} of 9 rows in rejected; see etl_rejected_rows (run_id '{run_id}', source "
                "'some_source') for the rows and why")])
        return path

    a = with_message(tmp_path / "a.duckdb", "20261205T060000Z-aaaaaa", 2)
    b = with_message(tmp_path / "b.duckdb", "20261205T070000Z-bbbbbb", 2)
    assert all(d.same for d in compare_warehouses(a, b))
    c = with_message(tmp_path / "c.duckdb", "20261205T080000Z-cccccc", 3)
    assert [d.table for d in compare_warehouses(a, c) if not d.same] == ["etl_runs"]
