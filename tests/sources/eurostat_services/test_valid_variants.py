"""Valid JSON-stat variants of bop_its6_det, run THROUGH THE PIPELINE STEPS (prepare_source, then the run's
load-audit-promote on a copy of a good warehouse: tests/support/pipeline_steps.py): JSON-stat 2.0 makes
`updated` optional, and BPM6 allows a negative credit for some service items. Each loads, with a warning of
the table's suite, instead of the whole source being refused."""

from __future__ import annotations

import json

from support.pipeline_steps import SNAPSHOT, assert_accounted, payload, query, run_steps

SERVICES_FILE = "eurostat_bop_its6_det_jp.json"


def edited(edit) -> bytes:
    doc = json.loads((SNAPSHOT / SERVICES_FILE).read_bytes())
    edit(doc)
    return json.dumps(doc).encode()


def _warned(batch) -> set[str]:
    return {f"{o.expectation_type}({','.join(o.columns)})" for o in batch.validation.warnings}


def test_a_dataset_without_updated_loads_without_a_version_and_warns(warehouse):
    def no_updated(doc):
        del doc["updated"]

    batches = run_steps(warehouse, {"eurostat_services": [payload("eurostat_services", SERVICES_FILE,
                                                                  edited(no_updated))]})
    batch = batches["eurostat_services"]
    assert batch.status == "loaded" and batch.error is None
    assert _warned(batch) == {"expect_column_values_to_not_be_null(source_version)"}
    run = assert_accounted(warehouse, "eurostat_services")
    assert run["status"] == "success" and run["rows_rejected"] == 0 and run["rows_loaded"] == run["rows_in"] > 0
    assert query(warehouse, "SELECT count(*), count(source_version) FROM fact_services_trade "
                            "WHERE run_id = '20261125T060000Z-bad001'") == [(run["rows_loaded"], 0)]


def test_a_negative_credit_of_a_service_item_loads_with_a_warning(warehouse):
    """Flat index of bop_its6_det_jp: stk_flow (CRE, DEB, BAL) x geo (3) x time (12); 35 = CRE, EU27_2020,
    the twelfth year."""
    def negative_credit(doc):
        doc["value"]["35"] = -12.5

    batches = run_steps(warehouse, {"eurostat_services": [payload("eurostat_services", SERVICES_FILE,
                                                                  edited(negative_credit))]})
    batch = batches["eurostat_services"]
    assert batch.status == "loaded", batch.error
    assert "expect_column_values_to_be_between(value_mio_eur)" in _warned(batch)
    year = json.loads((SNAPSHOT / SERVICES_FILE).read_bytes())["dimension"]["time"]["category"]["index"]
    last = (year[-1] if isinstance(year, list) else max(year, key=year.get))
    assert query(warehouse, "SELECT value_mio_eur FROM fact_services_trade WHERE reporter = 'EU27_2020' AND "
                            f"flow = 'export' AND bop_item = 'S' AND period_year = {int(last)}") == [(-12.5,)]


def test_a_figure_a_later_release_withholds_replaces_the_old_one_and_is_a_revision(warehouse):
    """A cell the new release gives with a flag and no value (c, confidential) is loaded as such: the figure an
    earlier release gave for its key is replaced (value null, obs_status c) and the change recorded in
    etl_revisions (docs/live-extraction.md: "a value that disappears is also a revision"); before, the cell was
    rejected and the withdrawn figure stayed."""
    def withheld(doc):
        del doc["value"]["35"]
        doc["status"] = {"35": "c"}

    year = json.loads((SNAPSHOT / SERVICES_FILE).read_bytes())["dimension"]["time"]["category"]["index"]
    last = int(year[-1] if isinstance(year, list) else max(year, key=year.get))
    key = (f"reporter = 'EU27_2020' AND flow = 'export' AND bop_item = 'S' AND period_year = {last}")
    (before,) = query(warehouse, f"SELECT value_mio_eur FROM fact_services_trade WHERE {key}")[0]
    assert before is not None
    batch = run_steps(warehouse, {"eurostat_services": [payload("eurostat_services", SERVICES_FILE,
                                                                edited(withheld))]})["eurostat_services"]
    assert batch.status == "loaded", batch.error
    run = assert_accounted(warehouse, "eurostat_services")
    assert run["rows_rejected"] == 0
    assert query(warehouse, f"SELECT value_mio_eur, obs_status FROM fact_services_trade WHERE {key}") == [(None, "c")]
    assert query(warehouse, "SELECT column_name, old_value, new_value FROM etl_revisions WHERE table_name = "
                            "'fact_services_trade'") == [("value_mio_eur", before, None)]
