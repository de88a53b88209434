"""Bad ext_lt_maineu input, run THROUGH THE PIPELINE STEPS: a malformed JSON-stat cube fails the source and
keeps its table; a cube delivered twice loads once; unknown codes and values a critical expectation refuses.

The payloads go through prepare_source (parse, transform, validate) and the run's load-audit-promote on a
staging copy of a good warehouse (tests/support/pipeline_steps.py). For each: the message is clear, and nothing is
lost: rows in = loaded + rejected, every rejected row is in etl_rejected_rows with its reason and raw values, and
a source that fails as a whole leaves its table as it was. Parser-level tests of the same inputs:
tests/unit/parse/test_jsonstat.py."""

from __future__ import annotations

import json

import pytest
from support.pipeline_steps import (
    SNAPSHOT,
    assert_accounted,
    payload,
    quarantined,
    query,
    rows_of,
    run_steps,
)

GOODS_FILE = "eurostat_ext_lt_maineu_jp.json"


def edit_jsonstat(edit) -> bytes:
    doc = json.loads((SNAPSHOT / GOODS_FILE).read_bytes())
    edit(doc)
    return json.dumps(doc).encode()


def _size_off_by_one(doc):
    doc["size"][-1] += 1


def _values_beyond_the_cube(doc):
    """Sizes and categories agree, but the values still address the cells of the bigger cube."""
    time = doc["dimension"]["time"]["category"]
    last = max(time["index"], key=time["index"].get)
    del time["index"][last]
    time.get("label", {}).pop(last, None)
    doc["size"][-1] -= 1


def _text_value(doc):
    doc["value"]["0"] = "35,000"


@pytest.mark.parametrize(("edit", "message"), [
    (_size_off_by_one, "JSON-stat: dimension 'time' has 15 categories but size says 16"),
    (_values_beyond_the_cube, "JSON-stat: value key 179 is out of range: the cube has 168 cells (product of size)"),
    (_text_value, "JSON-stat: value '35,000' at key '0' is not a number or null"),
])
def test_malformed_jsonstat_fails_the_source_and_keeps_its_table(warehouse, edit, message):
    before = rows_of(warehouse, "fact_goods_trade")
    batches = run_steps(warehouse, {"eurostat_goods": [payload("eurostat_goods", GOODS_FILE, edit_jsonstat(edit))]})
    expected = f"eurostat_goods (fact_goods_trade): parse failed: {GOODS_FILE}: {message}"
    assert batches["eurostat_goods"].error == expected
    run = assert_accounted(warehouse, "eurostat_goods")
    assert run == {"status": "failed", "rows_in": 0, "rows_loaded": 0, "rows_rejected": 0, "message": expected}
    assert rows_of(warehouse, "fact_goods_trade") == before


def test_the_same_jsonstat_cube_delivered_twice_is_loaded_once(warehouse):
    data = (SNAPSHOT / GOODS_FILE).read_bytes()
    second = GOODS_FILE.replace(".json", "_again.json")
    batches = run_steps(warehouse, {"eurostat_goods": [payload("eurostat_goods", GOODS_FILE, data),
                                                       payload("eurostat_goods", second, data)]})
    assert batches["eurostat_goods"].status == "loaded"
    run = assert_accounted(warehouse, "eurostat_goods")
    assert (run["rows_in"], run["rows_loaded"], run["rows_rejected"]) == (84, 42, 42)
    assert {r.split(" with natural key")[0] for r, _ in quarantined(warehouse, "eurostat_goods")} \
        == {"exact duplicate of an earlier row"}
    # Japan's 42 figures once; the bundled main-partner file (30 figures) was loaded by the fixture
    assert query(warehouse, "SELECT count(*) FROM fact_goods_trade WHERE partner = 'JP'") == [(42,)]
    assert query(warehouse, "SELECT count(*) FROM fact_goods_trade") == [(72,)]


def test_an_unknown_partner_code_in_jsonstat_rejects_its_rows_and_keeps_the_table(warehouse):
    def rename_partner(doc):
        partner = doc["dimension"]["partner"]["category"]
        partner["index"] = ["XX"]
        partner["label"] = {"XX": "Nowhere"}

    before = rows_of(warehouse, "fact_goods_trade")
    batches = run_steps(warehouse, {"eurostat_goods": [payload("eurostat_goods", GOODS_FILE,
                                                               edit_jsonstat(rename_partner))]})
    run = assert_accounted(warehouse, "eurostat_goods")
    assert batches["eurostat_goods"].status == "loaded"
    assert (run["rows_in"], run["rows_loaded"], run["rows_rejected"]) == (42, 0, 42)
    assert {r for r, _ in quarantined(warehouse, "eurostat_goods")} \
        == {"partner XX is not a known Eurostat country code (dim_country.eurostat_code)"}
    assert rows_of(warehouse, "fact_goods_trade") == before


def _negative_export(doc):
    doc["value"]["0"] = -35000.0  # EU15 exports to Japan, 1999


def _year_1949(doc):
    time = doc["dimension"]["time"]["category"]
    time["index"] = {("1949" if year == "1999" else year): i for year, i in time["index"].items()}
    time["label"] = {("1949" if year == "1999" else year): text for year, text in time["label"].items()}


@pytest.mark.parametrize(("edit", "reason", "rejected"), [
    (_negative_export, "value_mio_eur -35000.0 of an export is negative", 1),
    (_year_1949, "period_year '1949' outside 1950..2100", 3),
])
def test_a_row_a_critical_expectation_refuses_is_rejected_alone_and_the_rest_loads(warehouse, edit, reason,
                                                                                    rejected):
    """A value the table's suite refuses as critical (a negative export, a year before 1950) is rejected by the
    transform, its row alone with the reason, and the other rows load: the suite blocked the whole batch for it."""
    before = dict(query(warehouse, "SELECT reporter || flow || period_year, value_mio_eur FROM fact_goods_trade"))
    batches = run_steps(warehouse, {"eurostat_goods": [payload("eurostat_goods", GOODS_FILE, edit_jsonstat(edit))]})
    assert batches["eurostat_goods"].status == "loaded", batches["eurostat_goods"].error
    run = assert_accounted(warehouse, "eurostat_goods")
    assert (run["rows_in"], run["rows_loaded"], run["rows_rejected"]) == (42, 42 - rejected, rejected)
    assert {r for r, _ in quarantined(warehouse, "eurostat_goods")} == {reason}
    assert batches["eurostat_goods"].validation.success
    after = dict(query(warehouse, "SELECT reporter || flow || period_year, value_mio_eur FROM fact_goods_trade"))
    assert after["EU15export1999"] == before["EU15export1999"] == 35000.0  # the row it had before


def test_a_dimension_renamed_in_one_of_two_payloads_fails_the_source_naming_that_payload(warehouse):
    """A renamed dimension in one cube of two read as 'wire columns changed: missing [], unexpected
    ['geo_area']', naming no payload (the other cube still had geo). The message now names the payload."""
    table = "fact_goods_trade"
    before = rows_of(warehouse, table)

    def rename(doc):
        doc["id"] = ["geo_area" if d == "geo" else d for d in doc["id"]]
        doc["dimension"]["geo_area"] = doc["dimension"].pop("geo")

    other = "eurostat_ext_lt_maineu_main_partners.json"
    batches = run_steps(warehouse, {"eurostat_goods": [
        payload("eurostat_goods", GOODS_FILE, (SNAPSHOT / GOODS_FILE).read_bytes()),
        payload("eurostat_goods", other, edit_jsonstat_file(other, rename))]})
    error = batches["eurostat_goods"].error
    assert "wire columns changed" in error
    assert (f"payload(s) whose wire columns differ from the others': {other} (missing ['geo'], "
            "unexpected ['geo_area'])") in error
    assert rows_of(warehouse, table) == before


def edit_jsonstat_file(name: str, edit) -> bytes:
    doc = json.loads((SNAPSHOT / name).read_bytes())
    edit(doc)
    return json.dumps(doc).encode()
