"""A valid SIPRI register variant, run THROUGH THE PIPELINE STEPS (prepare_source, then the run's
load-audit-promote on a copy of a good warehouse: tests/support/pipeline_steps.py)."""

from __future__ import annotations

from support.pipeline_steps import SNAPSHOT, assert_accounted, payload, query, run_steps

REGISTER = "sipri_trade_register_japan.csv"


def test_a_register_saved_without_its_data_generated_line_loads_with_a_warning(warehouse):
    """The parser gives such a register no version (eujp/parse/sipri.py) and the transform bounds the years by
    the day it was fetched: its 455 orders load, and the suite warns that source_version is null, instead of
    refusing them."""
    data = b"".join(line for line in (SNAPSHOT / REGISTER).read_bytes().splitlines(keepends=True)
                    if not line.startswith(b"Data generated"))
    batch = run_steps(warehouse, {"sipri_arms": [payload("sipri_arms", REGISTER, data)]})["sipri_arms"]
    assert batch.status == "loaded", batch.error
    assert {(o.expectation_type, o.columns) for o in batch.validation.warnings} \
        == {("expect_column_values_to_not_be_null", ("source_version",))}
    run = assert_accounted(warehouse, "sipri_arms")
    assert (run["status"], run["rows_in"], run["rows_loaded"], run["rows_rejected"]) == ("success", 455, 455, 0)
    assert query(warehouse, "SELECT count(*), count(source_version) FROM fact_arms_transfers") == [(455, 0)]
