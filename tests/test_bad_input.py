"""Bad input, run THROUGH THE PIPELINE STEPS: prepare_source (parse, transform, validate) and the daily flow's
load-audit-promote on a staging copy of a good warehouse. For each: the message is clear, and nothing is lost:
rows in = loaded + rejected, every rejected row is in etl_rejected_rows with its reason and raw values, and a
source that fails as a whole leaves its table as it was.

Parser-level unit tests of the same inputs live in tests/test_parse_*.py; property tests in
tests/test_parse_jsonstat.py and tests/test_parser_properties.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from eujp.config import Settings
from eujp.errors import AuditFailed
from eujp.landing import RawPayload
from eujp.pipeline import SourceBatch, load_countries, prepare_source, utcnow
from eujp.sources import SOURCES, SOURCES_BY_NAME
from flows.daily import load_audit_promote

SNAPSHOT = Path(__file__).resolve().parents[1] / "data" / "snapshot"
GOODS_FILE = "eurostat_ext_lt_maineu_jp.json"
EVENTS_FILE = "security_events.csv"
COMEXT_FILE = "comext_ds045409_DE_JP_84834030_2025Q1.csv"
OECD_FILE = "oecd_export_restrictions.csv"
RUN = "20261125T060000Z-bad001"


def snapshot_payloads(source: str) -> list[RawPayload]:
    glob = SOURCES_BY_NAME[source].snapshot_glob
    return [payload(source, p.name, p.read_bytes()) for p in sorted(SNAPSHOT.glob(glob))]


def payload(source: str, name: str, data: bytes) -> RawPayload:
    return RawPayload(source=source, name=name, data=data, url=f"file:///snapshot/{name}")


def run_steps(warehouse: Path, payloads: dict[str, list[RawPayload]], run_id: str = RUN):
    """What the daily flow does with these payloads: prepare each source, then load-audit-promote."""
    settings = Settings(warehouse_path=warehouse, publish_uri=str(warehouse.parent / "objectstore"), run_id=run_id)
    countries = load_countries(settings.run_date)
    batches = {}
    for name, source_payloads in payloads.items():
        source = SOURCES_BY_NAME[name]
        batch = SourceBatch(source=name, table=source.table.name, started_at=utcnow())
        batches[name] = prepare_source(source, source_payloads, countries, batch)
    load_audit_promote.fn(settings, list(batches.values()), countries)
    return batches


@pytest.fixture(scope="module")
def good_warehouse(tmp_path_factory) -> Path:
    wh = tmp_path_factory.mktemp("good") / "warehouse.duckdb"
    batches = run_steps(wh, {s.name: snapshot_payloads(s.name) for s in SOURCES}, run_id="20261124T060000Z-good01")
    assert all(b.status == "loaded" for b in batches.values()), [b.error for b in batches.values()]
    return wh


@pytest.fixture
def warehouse(good_warehouse, tmp_path) -> Path:
    wh = tmp_path / "var" / "warehouse.duckdb"
    wh.parent.mkdir()
    shutil.copyfile(good_warehouse, wh)
    return wh


def query(wh: Path, sql: str, params=()):
    with duckdb.connect(str(wh), read_only=True) as conn:
        return conn.execute(sql, params).fetchall()


def rows_of(wh: Path, table: str):
    return query(wh, f'SELECT * EXCLUDE (run_id, loaded_at) FROM "{table}" ORDER BY ALL')


def etl_run(wh: Path, source: str) -> dict:
    cols = ["status", "rows_in", "rows_loaded", "rows_rejected", "message"]
    (row,) = query(wh, f"SELECT {', '.join(cols)} FROM etl_runs WHERE run_id = ? AND source = ?", [RUN, source])
    return dict(zip(cols, row, strict=True))


def quarantined(wh: Path, source: str) -> list[tuple[str, dict]]:
    return [(reason, json.loads(raw)) for reason, raw in query(
        wh, "SELECT reason, raw_record FROM etl_rejected_rows WHERE run_id = ? AND source = ? ORDER BY ALL",
        [RUN, source])]


def assert_accounted(wh: Path, source: str) -> dict:
    """rows in = loaded + rejected, and every rejected row is in the quarantine."""
    run = etl_run(wh, source)
    assert run["rows_in"] == run["rows_loaded"] + run["rows_rejected"], run
    if run["status"] == "success":
        assert len(quarantined(wh, source)) == run["rows_rejected"], run
    return run


def edit_jsonstat(edit) -> bytes:
    doc = json.loads((SNAPSHOT / GOODS_FILE).read_bytes())
    edit(doc)
    return json.dumps(doc).encode()


def edit_lines(file: str, edit) -> bytes:
    lines = (SNAPSHOT / file).read_text(encoding="utf-8").splitlines(keepends=True)
    return "".join(edit(lines)).encode("utf-8")


# --- the whole payload is unusable: the source fails, its table keeps its rows ---------------------------

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


@pytest.mark.parametrize(("source", "file", "encode", "message"), [
    ("security_events", EVENTS_FILE,
     lambda text: text.replace("Japan-Germany exchange", "Japan-Germany échange").encode("latin-1"),
     "security events CSV: not valid UTF-8 ('utf-8' codec can't decode byte 0xe9 in position"),
    ("comext_goods", COMEXT_FILE, lambda text: text.encode("utf-16"),
     "payload is UTF-16 (byte-order mark b'\\xff\\xfe'), expected UTF-8"),
])
def test_csv_in_the_wrong_encoding_fails_the_source_and_keeps_its_table(warehouse, source, file, encode, message):
    table = SOURCES_BY_NAME[source].table.name
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


def test_an_empty_comext_slice_loads_nothing_and_removes_nothing(warehouse):
    before = rows_of(warehouse, "fact_goods_trade_product")
    header_only = edit_lines(COMEXT_FILE, lambda lines: lines[:1])
    batches = run_steps(warehouse, {"comext_goods": [payload("comext_goods", COMEXT_FILE, header_only)]})
    assert batches["comext_goods"].status == "loaded"
    assert assert_accounted(warehouse, "comext_goods") | {"message": None} == {
        "status": "success", "rows_in": 0, "rows_loaded": 0, "rows_rejected": 0, "message": None}
    assert rows_of(warehouse, "fact_goods_trade_product") == before


# --- bad rows: quarantined with the reason and the raw values, the rest loads ---------------------------

def _comext_row(lines, column, value, line=1):
    header = lines[0].rstrip("\n").split(",")
    fields = lines[line].rstrip("\n").split(",")
    fields[header.index(column)] = value
    return [*lines[:line], ",".join(fields) + "\n", *lines[line + 1:]]


@pytest.mark.parametrize(("column", "value", "reason"), [
    ("OBS_VALUE", "-202.34", "negative OBS_VALUE -202.34"),
    ("OBS_VALUE", "n/a", "OBS_VALUE n/a is not a number"),
    ("TIME_PERIOD", "2025-13", "TIME_PERIOD 2025-13 does not match freq M (M: YYYY-MM, A: YYYY)"),
    ("partner", "ZZ", "unknown partner code ZZ"),
    ("product", "8483403X", "product 8483403X is not a CN8 code (8 digits)"),
])
def test_bad_comext_rows_are_quarantined_with_their_raw_values(warehouse, column, value, reason):
    data = edit_lines(COMEXT_FILE, lambda lines: _comext_row(lines, column, value))
    batches = run_steps(warehouse, {"comext_goods": [payload("comext_goods", COMEXT_FILE, data)]})
    assert batches["comext_goods"].status == "loaded"
    run = assert_accounted(warehouse, "comext_goods")
    assert (run["rows_in"], run["rows_rejected"]) == (6, 1)
    [(got_reason, raw)] = quarantined(warehouse, "comext_goods")
    assert got_reason == reason
    assert raw[column] == value and raw["indicators"] == "QUANTITY_IN_100KG"  # the row as published


def test_duplicated_natural_keys_keep_one_exact_copy_and_quarantine_conflicts(warehouse):
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
    # neither version of the contradicted event is loaded; the exact duplicate's event is, once
    assert query(warehouse, "SELECT count(*) FROM fact_security_events WHERE title LIKE 'Japan-Germany exchange%'") \
        == [(0,)]
    assert query(warehouse, "SELECT count(*) FROM fact_security_events WHERE event_date = DATE '2008-02-05'") == [(1,)]


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
    assert query(warehouse, "SELECT count(*) FROM fact_goods_trade") == [(42,)]


@pytest.mark.parametrize(("edit", "reason"), [
    (lambda lines: [*lines, '2024-13-45,day,dialogue,JPN;EU,Impossible date,"x",https://example.org/x,"t"\n'],
     "date: not a yyyy-mm-dd date: '2024-13-45'"),
    (lambda lines: [*lines, '2024-05-01,day,dialogue,JPN;XXX,Unknown party,"x",https://example.org/x,"t"\n'],
     "parties: unknown code(s) XXX (neither an ISO3 country nor an organisation code)"),
])
def test_bad_event_rows_are_quarantined_and_the_rest_loads(warehouse, edit, reason):
    batches = run_steps(warehouse, {"security_events": [payload("security_events", EVENTS_FILE,
                                                                edit_lines(EVENTS_FILE, edit))]})
    assert batches["security_events"].status == "loaded"
    run = assert_accounted(warehouse, "security_events")
    assert (run["rows_in"], run["rows_loaded"], run["rows_rejected"]) == (65, 64, 1)
    [(got, raw)] = quarantined(warehouse, "security_events")
    assert got == reason and raw["source_url"] == "https://example.org/x"


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


def test_a_negative_export_blocks_the_batch_and_quarantines_all_of_it(warehouse):
    """A value no transform rule rejects but a critical expectation does: the whole batch is not loaded."""
    def negative_export(doc):
        doc["value"]["0"] = -35000.0  # EU15 exports to Japan, 1999

    before = rows_of(warehouse, "fact_goods_trade")
    batches = run_steps(warehouse, {"eurostat_goods": [payload("eurostat_goods", GOODS_FILE,
                                                               edit_jsonstat(negative_export))]})
    error = batches["eurostat_goods"].error
    assert error.startswith("eurostat_goods (fact_goods_trade): validate failed: fact_goods_trade: 1 critical "
                            "expectation(s) failed on 42 rows; the batch is not loaded.")
    assert "expect_column_values_to_be_between(value_mio_eur)" in error and "-35000" in error
    run = assert_accounted(warehouse, "eurostat_goods")
    assert (run["status"], run["rows_in"], run["rows_loaded"], run["rows_rejected"]) == ("failed", 42, 0, 42)
    rejected = quarantined(warehouse, "eurostat_goods")
    assert len(rejected) == 42 and all(r.startswith("not loaded: eurostat_goods (fact_goods_trade): validate "
                                                    "failed") for r, _ in rejected)
    assert -35000.0 in {raw["value_mio_eur"] for _, raw in rejected}
    assert rows_of(warehouse, "fact_goods_trade") == before
