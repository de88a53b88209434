"""Bad OECD input, run THROUGH THE PIPELINE STEPS: an impossible date in a measure quarantines every row of it.

The payloads go through prepare_source (parse, transform, validate) and the run's load-audit-promote on a
staging copy of a good warehouse (tests/support/pipeline_steps.py). For each: the message is clear, and nothing is
lost: rows in = loaded + rejected, every rejected row is in etl_rejected_rows with its reason and raw values, and
a source that fails as a whole leaves its table as it was. Parser-level tests of the same inputs: test_parse.py."""

from __future__ import annotations

from support.pipeline_steps import (
    SNAPSHOT,
    assert_accounted,
    payload,
    quarantined,
    query,
    run_steps,
)

OECD_FILE = "oecd_export_restrictions.csv"


def test_an_impossible_date_in_a_merged_measure_quarantines_every_row_of_the_measure(warehouse):
    data = (SNAPSHOT / OECD_FILE).read_text(encoding="utf-8").replace(",14/01/2024", ",31/02/2024", 1).encode()
    batches = run_steps(warehouse, {"oecd_restrictions": [payload("oecd_restrictions", OECD_FILE, data)]})
    assert batches["oecd_restrictions"].status == "loaded"
    run = assert_accounted(warehouse, "oecd_restrictions")
    assert (run["rows_in"], run["rows_loaded"], run["rows_rejected"]) == (37, 29, 8)  # 8 attribute rows
    rejected = quarantined(warehouse, "oecd_restrictions")
    assert {r for r, _ in rejected} == {"DATI: expected dd/mm/yyyy or 'nd', got '31/02/2024'"}
    assert {raw["REF_AREA"] for _, raw in rejected} == {"ARE"}
    assert query(warehouse, "SELECT count(*) FROM fact_export_restrictions WHERE ref_area_iso3 = 'ARE'") == [(0,)]
