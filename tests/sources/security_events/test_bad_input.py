"""Bad events input, run THROUGH THE PIPELINE STEPS: the wrong encoding and an empty response fail the source
and keep its table; a header without rows is stopped by the audit; duplicated keys and bad rows are quarantined.

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

from eujp.errors import AuditFailed
from eujp.rejections import rejection_warnings
from eujp.sources import get_source

EVENTS_FILE = "security_events.csv"


@pytest.mark.parametrize(("source", "file", "encode", "message"), [
    ("security_events", EVENTS_FILE,
     lambda text: text.replace("Japan-Germany exchange", "Japan-Germany échange").encode("latin-1"),
     "security events CSV: not valid UTF-8 ('utf-8' codec can't decode byte 0xe9 in position"),
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


def test_an_empty_response_fails_the_source_and_keeps_its_table(warehouse):
    before = rows_of(warehouse, "fact_security_events")
    batches = run_steps(warehouse, {"security_events": [payload("security_events", EVENTS_FILE, b"")]})
    assert batches["security_events"].error == (f"security_events (fact_security_events): parse failed: "
                                                 f"{EVENTS_FILE}: security events CSV: empty payload")
    assert assert_accounted(warehouse, "security_events")["status"] == "failed"
    assert rows_of(warehouse, "fact_security_events") == before


def test_a_response_with_a_header_and_no_rows_is_stopped_by_the_audit(warehouse):
    """A full-extract source (its rows replace all of its previous rows) that suddenly sends nothing would
    empty its table: the row-count audit refuses the whole run, and the live warehouse is untouched."""
    live = warehouse.read_bytes()
    header_only = edit_lines(EVENTS_FILE, lambda lines: lines[:1])
    with pytest.raises(AuditFailed, match=r"audit failed, nothing published: fact_security_events.row_count_delta: "
                                          r"live warehouse: 64 -> 0 rows \(-100.0%, threshold -50%\)"):
        run_steps(warehouse, {"security_events": [payload("security_events", EVENTS_FILE, header_only)]})
    assert warehouse.read_bytes() == live
    assert not list((warehouse.parent / "staging").iterdir())


def test_duplicated_natural_keys_keep_one_exact_copy_and_quarantine_conflicts(warehouse):
    """A full extract (replace scope ()): a key loaded the day before that now comes twice with different
    content keeps yesterday's row (both new versions quarantined), and the run says so."""
    yesterday = query(warehouse, "SELECT * EXCLUDE (loaded_at) FROM fact_security_events "
                                 "WHERE title LIKE 'Japan-Germany exchange%'")
    assert len(yesterday) == 1

    def dup(lines):
        exact = lines[1]
        conflicting = lines[2].replace("exchanged notes", "signed notes")
        return [*lines, exact, conflicting]

    batches = run_steps(warehouse, {"security_events": [payload("security_events", EVENTS_FILE,
                                                                edit_lines(EVENTS_FILE, dup))]})
    assert batches["security_events"].status == "loaded"
    run = assert_accounted(warehouse, "security_events")
    assert (run["rows_in"], run["rows_loaded"], run["rows_rejected"]) == (66, 63, 3)
    reasons = [r for r, _ in quarantined(warehouse, "security_events")]
    assert sum(r.startswith("exact duplicate of an earlier row with natural key event_id=") for r in reasons) == 1
    conflicts = [r for r in reasons if r.startswith("conflicting rows for natural key event_id=")]
    assert len(conflicts) == 2 and all("2 rows differ in description" in r for r in conflicts)
    # neither new version of the contradicted event is loaded: the one loaded before stays, as it was (its
    # run id is the earlier run's); nothing else is lost (64 events as before, the exact duplicate once)
    assert query(warehouse, "SELECT * EXCLUDE (loaded_at) FROM fact_security_events "
                            "WHERE title LIKE 'Japan-Germany exchange%'") == yesterday
    assert query(warehouse, "SELECT count(*) FROM fact_security_events") == [(64,)]
    assert query(warehouse, "SELECT count(*) FROM fact_security_events WHERE event_date = DATE '2008-02-05'") == [(1,)]
    assert run["message"].endswith("security_events: 1 natural key(s) came more than once with different content "
                                   "(conflicting duplicates, every version quarantined): 1 kept the version loaded "
                                   "before")
    assert batches["security_events"].rejections == run["message"]
    assert rejection_warnings(list(batches.values())) == [run["message"]]  # a warning of the run


@pytest.mark.parametrize(("edit", "reason"), [
    (lambda lines: [*lines, '2024-13-45,day,dialogue,JPN;EU,Impossible date,"x",https://example.org/x,"t"\n'],
     "date: not a yyyy-mm-dd date: '2024-13-45'"),
    (lambda lines: [*lines, '2024-05-01,day,dialogue,JPN;XXX,Unknown party,"x",https://example.org/x,"t"\n'],
     "parties: unknown code(s) XXX (neither an ISO3 country nor an organisation code)"),
    # what the table's suite refuses as critical, checked by the transform too (transforms.common.SuiteRule):
    # the row alone is quarantined (the suite blocked the whole file, every event with it)
    (lambda lines: [*lines, '2024-05-01,day,Summit,JPN;EU,Capitalised type,"x",https://example.org/x,"t"\n'],
     "event_type 'Summit' does not match ^[a-z][a-z_]*$"),
    (lambda lines: [*lines, '1900-05-01,day,dialogue,JPN;EU,Before 1945,"x",https://example.org/x,"t"\n'],
     "event_date '1900-05-01' outside 1945-01-01..2100-12-31"),
    (lambda lines: [*lines, '2300-01-01,day,dialogue,JPN;EU,After 2100,"x",https://example.org/x,"t"\n'],
     "event_date '2300-01-01' outside 1945-01-01..2100-12-31"),
])
def test_bad_event_rows_are_quarantined_and_the_rest_loads(warehouse, edit, reason):
    batches = run_steps(warehouse, {"security_events": [payload("security_events", EVENTS_FILE,
                                                                edit_lines(EVENTS_FILE, edit))]})
    assert batches["security_events"].status == "loaded"
    run = assert_accounted(warehouse, "security_events")
    assert (run["rows_in"], run["rows_loaded"], run["rows_rejected"]) == (65, 64, 1)
    [(got, raw)] = quarantined(warehouse, "security_events")
    assert got == reason and raw["source_url"] == "https://example.org/x"
