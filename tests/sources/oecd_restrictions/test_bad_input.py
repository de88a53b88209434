"""Bad OECD input, run THROUGH THE PIPELINE STEPS: an impossible date in a measure quarantines every row of it; a
measure given twice with different values keeps the version loaded before.

The payloads go through prepare_source (parse, transform, validate) and the run's load-audit-promote on a
staging copy of a good warehouse (tests/support/pipeline_steps.py). For each: the message is clear, and nothing is
lost: rows in = loaded + rejected, every rejected row is in etl_rejected_rows with its reason and raw values, and
a source that fails as a whole leaves its table as it was. Parser-level tests of the same inputs: test_parse.py."""

from __future__ import annotations

import io

import polars as pl
import pytest
from support.pipeline_steps import (
    SNAPSHOT,
    assert_accounted,
    edit_lines,
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


@pytest.mark.parametrize(("column", "value", "reason"), [
    ("POLICY_TYPE", "x", "policy_type 'x' does not match ^(?:M\\d+|NO_RESTRICTION|[A-Z_0-9]+)$"),
    ("TIME_PERIOD", "1949", "period_year '1949' outside 1950..2100"),
])
def test_a_measure_a_critical_expectation_refuses_is_rejected_alone_and_the_rest_loads(warehouse, column, value,
                                                                                       reason):
    """A measure whose value the table's suite refuses as critical (a policy type that is no code, a year before
    1950) is rejected by the transform, its rows alone with the reason: the suite blocked the whole file for it."""
    wire = pl.read_csv(SNAPSHOT / OECD_FILE, infer_schema=False)
    edited = wire.with_columns(pl.when(pl.col("REF_AREA") == "ARE").then(pl.lit(value)).otherwise(pl.col(column))
                               .alias(column))
    out = io.BytesIO()
    edited.write_csv(out)
    batches = run_steps(warehouse, {"oecd_restrictions": [payload("oecd_restrictions", OECD_FILE, out.getvalue())]})
    assert batches["oecd_restrictions"].status == "loaded", batches["oecd_restrictions"].error
    assert batches["oecd_restrictions"].validation.success
    run = assert_accounted(warehouse, "oecd_restrictions")
    assert (run["rows_in"], run["rows_loaded"], run["rows_rejected"]) == (37, 29, 8)  # ARE's 8 attribute rows
    rejected = quarantined(warehouse, "oecd_restrictions")
    assert {r for r, _ in rejected} == {reason}
    assert {raw["REF_AREA"] for _, raw in rejected} == {"ARE"} and {raw[column] for _, raw in rejected} == {value}
    assert query(warehouse, "SELECT count(*) FROM fact_export_restrictions WHERE ref_area_iso3 <> 'ARE' "
                 "AND run_id = (SELECT max(run_id) FROM etl_runs)")[0][0] > 0


def test_a_measure_given_twice_with_different_values_keeps_the_version_loaded_before(warehouse):
    """Replace scope by period (`period_year`): the payload replaces every measure of 2024, but a measure it
    carries twice with different values (a conflicting duplicate of its natural key) keeps the row loaded
    before; both new versions are quarantined, and the run says so."""
    measure = "SELECT * EXCLUDE (loaded_at) FROM fact_export_restrictions WHERE ref_area_iso3 = 'ARE'"
    before = query(warehouse, measure)
    assert len(before) == 1 and before[0][7] == "100"  # value
    count = "SELECT count(*) FROM fact_export_restrictions"
    measures_before = query(warehouse, count)

    def conflict(lines):
        assert ",VAL,,2024,,100," in lines[1]
        return [*lines, lines[1].replace(",VAL,,2024,,100,", ",VAL,,2024,,200,")]

    data = edit_lines(OECD_FILE, conflict)
    batches = run_steps(warehouse, {"oecd_restrictions": [payload("oecd_restrictions", OECD_FILE, data)]})
    assert batches["oecd_restrictions"].status == "loaded"
    run = assert_accounted(warehouse, "oecd_restrictions")
    assert (run["rows_in"], run["rows_loaded"], run["rows_rejected"]) == (38, 29, 9)  # the measure's rows + 1
    rejected = quarantined(warehouse, "oecd_restrictions")
    assert {r for r, _ in rejected} == {"conflicting values for attribute(s) VAL"}
    assert sorted(raw["OBS_VALUE"] for _, raw in rejected if raw["POLICY_DESCRIPTION"] == "VAL") == ["100", "200"]
    assert query(warehouse, measure) == before  # as loaded before, by the earlier run
    assert query(warehouse, count) == measures_before  # the other measures of 2024 replaced, none lost
    assert run["message"] == ("oecd_restrictions: 1 natural key(s) came more than once with different content "
                              "(conflicting duplicates, every version quarantined): 1 kept the version loaded before")


def test_a_payload_in_the_charset_its_server_declared_is_refused_naming_that_charset(warehouse):
    """The parser reads UTF-8 only: an answer in latin-1 fails the source, and the message says what the server's
    Content-Type declared (the fix is on the server's side, or a setting: not a corrupt download)."""
    from support.pipeline_steps import etl_run

    from eujp.landing import RawPayload

    before = query(warehouse, "SELECT count(*) FROM fact_export_restrictions")
    text = (SNAPSHOT / OECD_FILE).read_text(encoding="utf-8")
    declared = "application/vnd.sdmx.data+csv; charset=iso-8859-1"
    latin = RawPayload(source="oecd_restrictions", name=OECD_FILE, data=text.encode("latin-1", "replace"),
                       url="https://sdmx.oecd.org/public/rest/data/x", headers={"content-type": declared})
    batches = run_steps(warehouse, {"oecd_restrictions": [latin]})
    assert batches["oecd_restrictions"].status == "failed"
    error = str(batches["oecd_restrictions"].error)  # shortened in its middle, its ends kept
    assert f"parse failed: {OECD_FILE}: " in error
    note = f"(the server declared charset=iso-8859-1: Content-Type '{declared}')"
    assert error.endswith(note), error
    assert etl_run(warehouse, "oecd_restrictions")["message"].endswith(note)  # what the run records and alerts
    assert query(warehouse, "SELECT count(*) FROM fact_export_restrictions") == before
