"""Bad Comext input, run THROUGH THE PIPELINE STEPS: the wrong encoding fails the source and keeps its table; an
empty slice loads and removes nothing; bad rows are quarantined with their raw values; a key given twice with
different values keeps the figure loaded before.

The payloads go through prepare_source (parse, transform, validate) and the run's load-audit-promote on a
staging copy of a good warehouse (tests/support/pipeline_steps.py). For each: the message is clear, and nothing is
lost: rows in = loaded + rejected, every rejected row is in etl_rejected_rows with its reason and raw values, and
a source that fails as a whole leaves its table as it was. Parser-level tests of the same inputs: test_parse.py."""

from __future__ import annotations

import pytest
from support.pipeline_steps import (
    SNAPSHOT,
    assert_accounted,
    edit_lines,
    payload,
    quarantined,
    query,
    rows_of,
    run_steps,
)

from eujp.sources import get_source

COMEXT_FILE = "comext_ds045409_DE_JP_84834030_2025Q1.csv"


@pytest.mark.parametrize(("source", "file", "encode", "message"), [
    ("comext_goods", COMEXT_FILE, lambda text: text.encode("utf-16"),
     "payload is UTF-16 (byte-order mark b'\\xff\\xfe'), expected UTF-8"),
])
def test_csv_in_the_wrong_encoding_fails_the_source_and_keeps_its_table(warehouse, source, file, encode, message):
    table = get_source(source).table.name
    before = rows_of(warehouse, table)
    data = encode((SNAPSHOT / file).read_text(encoding="utf-8"))
    batches = run_steps(warehouse, {source: [payload(source, file, data)]})
    assert batches[source].error.startswith(f"{source} ({table}): parse failed: {file}: ")
    assert message in batches[source].error
    run = assert_accounted(warehouse, source)
    assert run["status"] == "failed" and run["message"] == batches[source].error
    assert rows_of(warehouse, table) == before


def test_an_empty_comext_slice_loads_nothing_and_removes_nothing(warehouse):
    before = rows_of(warehouse, "fact_goods_trade_product")
    header_only = edit_lines(COMEXT_FILE, lambda lines: lines[:1])
    batches = run_steps(warehouse, {"comext_goods": [payload("comext_goods", COMEXT_FILE, header_only)]})
    assert batches["comext_goods"].status == "loaded"
    assert assert_accounted(warehouse, "comext_goods") | {"message": None} == {
        "status": "success", "rows_in": 0, "rows_loaded": 0, "rows_rejected": 0, "message": None}
    assert rows_of(warehouse, "fact_goods_trade_product") == before


def _comext_row(lines, column, value, line=1):
    header = lines[0].rstrip("\n").split(",")
    fields = lines[line].rstrip("\n").split(",")
    fields[header.index(column)] = value
    return [*lines[:line], ",".join(fields) + "\n", *lines[line + 1:]]


@pytest.mark.parametrize(("column", "value", "reason"), [
    ("OBS_VALUE", "-202.34", "negative OBS_VALUE -202.34"),
    ("OBS_VALUE", "n/a", "OBS_VALUE n/a is not a number"),
    ("TIME_PERIOD", "2025-13", "TIME_PERIOD 2025-13 does not match freq M (M: YYYY-MM, A: YYYY)"),
    # a month the table's suite refuses (critical): the row alone is quarantined, not the whole payload
    ("TIME_PERIOD", "1987-12", "period '1987-12' outside 1988-01-01..2100-12-31"),
    ("TIME_PERIOD", "2101-01", "period '2101-01' outside 1988-01-01..2100-12-31"),
    ("partner", "ZZ", "unknown partner code ZZ"),
    ("product", "8483403X", "product 8483403X is not a CN8 code (8 digits)"),
])
def test_bad_comext_rows_are_quarantined_with_their_raw_values(warehouse, column, value, reason):
    """A row whose key is wrong is quarantined alone (its key is no fact's). A row whose OBS_VALUE is wrong takes
    the other indicator of its fact key with it: a fact row is not loaded half, and the row the key had before
    stays whole (here its quantity would otherwise have become null)."""
    table = rows_of(warehouse, "fact_goods_trade_product")
    data = edit_lines(COMEXT_FILE, lambda lines: _comext_row(lines, column, value))
    batches = run_steps(warehouse, {"comext_goods": [payload("comext_goods", COMEXT_FILE, data)]})
    assert batches["comext_goods"].status == "loaded"
    run = assert_accounted(warehouse, "comext_goods")
    bad_value = column == "OBS_VALUE"
    assert (run["rows_in"], run["rows_rejected"]) == (6, 2 if bad_value else 1)
    found = quarantined(warehouse, "comext_goods")
    [raw] = [w for r, w in found if r == reason]
    assert raw[column] == value and raw["indicators"] == "QUANTITY_IN_100KG"  # the row as published
    if bad_value:
        [(sibling_reason, sibling)] = [(r, w) for r, w in found if r != reason]
        assert sibling_reason.startswith("another row of natural key (reporter=")
        assert sibling_reason.endswith(") was rejected for its OBS_VALUE: a fact row is not loaded half")
        assert sibling["indicators"] == "VALUE_IN_EUROS" and all(
            sibling[k] == raw[k] for k in ("reporter", "partner", "product", "flow", "TIME_PERIOD"))
        assert rows_of(warehouse, "fact_goods_trade_product") == table  # the key's previous row, whole


def test_a_month_given_twice_with_different_values_keeps_the_figure_loaded_before(warehouse):
    """Replace scope by key (None): a key the payload carries twice with different values keeps the row loaded
    before (every wire row of the key quarantined), and the run says so."""
    month = ("SELECT * EXCLUDE (loaded_at) FROM fact_goods_trade_product WHERE reporter = 'DE' AND "
             "period_code = '2025-01'")
    before = query(warehouse, month)
    assert [r[6] for r in before] == [668914.0]  # value_eur

    def conflict(lines):
        assert lines[4].endswith(",VALUE_IN_EUROS,2025-01,668914\n")
        return [*lines, lines[4].replace(",668914", ",700000")]

    data = edit_lines(COMEXT_FILE, conflict)
    batches = run_steps(warehouse, {"comext_goods": [payload("comext_goods", COMEXT_FILE, data)]})
    assert batches["comext_goods"].status == "loaded"
    run = assert_accounted(warehouse, "comext_goods")
    assert (run["rows_in"], run["rows_loaded"], run["rows_rejected"]) == (7, 4, 3)
    reasons = sorted(r for r, _ in quarantined(warehouse, "comext_goods"))
    conflict = ("conflicting rows for natural key reporter='DE', partner='JP', product='84834030', flow='1', "
                "TIME_PERIOD='2025-01', indicators='VALUE_IN_EUROS'")
    sibling = "conflicting values in another indicator for natural key"
    assert [r.split(" (")[0].split(":")[0] for r in reasons] == [conflict, conflict, sibling]
    assert query(warehouse, month) == before
    assert run["message"] == ("comext_goods: 1 natural key(s) came more than once with different content "
                              "(conflicting duplicates, every version quarantined): 1 kept the version loaded before")


def test_a_later_release_of_a_month_beside_the_first_supersedes_it_and_the_change_is_a_revision(warehouse):
    """Not bad input: a folder holding the release of August 2026 and, beside it, January re-released in
    September with a revised figure. The later LAST UPDATE wins, as loading the two one after the other
    would leave it: nothing is rejected, and the change from the figure loaded before is a revision."""
    month = ("SELECT value_eur, quantity_kg, source_version FROM fact_goods_trade_product WHERE reporter = 'DE' "
             "AND period_code = '2025-01'")
    assert query(warehouse, month) == [(668914.0, 20234.0, "2026-08-14T11:00:00")]

    def january_revised(lines):
        january = [line.replace("14/08/26 11:00:00", "20/09/26 11:00:00") for line in lines if ",2025-01," in line]
        assert january[1].endswith(",VALUE_IN_EUROS,2025-01,668914\n")
        return [lines[0], january[0], january[1].replace(",668914", ",700000")]

    first = payload("comext_goods", COMEXT_FILE, (SNAPSHOT / COMEXT_FILE).read_bytes())
    revised = payload("comext_goods", "comext_ds045409_DE_JP_84834030_2025-01_rev.csv",
                      edit_lines(COMEXT_FILE, january_revised))
    for order in ([first, revised], [revised, first]):  # the stamps order them, not the files
        batches = run_steps(warehouse, {"comext_goods": order})
        assert batches["comext_goods"].status == "loaded"
        run = assert_accounted(warehouse, "comext_goods")
        assert (run["rows_in"], run["rows_loaded"], run["rows_rejected"], run["message"]) == (8, 8, 0, None)
        assert quarantined(warehouse, "comext_goods") == []
        assert query(warehouse, month) == [(700000.0, 20234.0, "2026-09-20T11:00:00")]
    assert query(warehouse, "SELECT column_name, old_value, new_value FROM etl_revisions WHERE source = "
                 "'comext_goods' AND table_name = 'fact_goods_trade_product'") == [("value_eur", 668914.0, 700000.0)]
