"""Comext streamed through parse → transform → validate → load in bounded chunks (eujp.stream.Stream,
EUJP_BATCH_ROWS), on a copy of a good warehouse (tests/support/pipeline_steps.py): the warehouse it leaves is
the one-batch warehouse, table by table (fact rows, quarantine, revisions, run accounting), for a source of
many monthly payloads and for ONE payload of many months (both indicators of a key far apart in it, as
Comext sorts its rows); and a month file cut mid-row is quarantined whole, by name and line, while the other
months load. A property test asks the same of any shape of payloads (tests/support/comext_shapes.py)."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import tempfile
from datetime import date
from pathlib import Path
from unittest import mock

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from support.comext_shapes import payload_shapes, payloads_of, stream_sizes
from support.pipeline_steps import (
    RUN,
    SNAPSHOT,
    assert_accounted,
    payload,
    quarantined,
    query,
    rows_of,
    run_steps,
)

from eujp.sources import SOURCES, get_source

NAME = "comext_goods"
TABLE = get_source(NAME).table.name
HEADER = "DATAFLOW,LAST UPDATE,freq,reporter,partner,product,flow,indicators,TIME_PERIOD,OBS_VALUE\r\n"
REPORTERS = ("DE", "FR", "IT")
PRODUCTS = ("84834030", "84829900", "85011010")


def months(first_year: int, count: int) -> list[str]:
    return [f"{first_year + i // 12}-{i % 12 + 1:02d}" for i in range(count)]


def comext_csv(periods: list[str], *, stamp: str = "14/08/26 11:00:00", edits: dict | None = None,
               extra: list[str] = ()) -> bytes:
    """A DS-045409 SDMX-CSV payload as Comext writes it: CRLF, rows sorted by reporter, partner, product,
    flow, indicator, then period (so the two indicators of one fact key are a series apart). `edits`:
    {(reporter, product, flow, indicator, period): OBS_VALUE} replacing the generated figure."""
    edits = edits or {}
    lines = []
    for r, reporter in enumerate(REPORTERS):
        for p, product in enumerate(PRODUCTS):
            for flow in ("1", "2"):
                for indicator in ("QUANTITY_IN_100KG", "VALUE_IN_EUROS"):
                    for period in periods:
                        value = edits.get((reporter, product, flow, indicator, period),
                                          f"{(r + 1) * 1000 + (p + 1) * 100 + int(flow) * 10 + int(period[-2:])}"
                                          + (".5" if indicator == "QUANTITY_IN_100KG" else ""))
                        lines.append(f"ESTAT:DS-045409(1.0),{stamp},M,{reporter},JP,{product},{flow},{indicator},"
                                     f"{period},{value}\r\n")
    return (HEADER + "".join(lines) + "".join(extra)).encode()


# Figures the bundled snapshot loaded (DE, JP, 84834030, import, 2025-01..03) revised, a negative value and a
# value that is not a number (quarantined with the other indicator of their key left alone or orphaned).
REVISED = {("DE", "84834030", "1", "VALUE_IN_EUROS", "2025-01"): "999",
           ("DE", "84834030", "1", "QUANTITY_IN_100KG", "2025-02"): "1.25",
           ("FR", "85011010", "2", "VALUE_IN_EUROS", "2025-05"): "-7",
           ("IT", "84829900", "1", "VALUE_IN_EUROS", "2025-09"): "n/a"}


def monthly_payloads() -> list:
    """Twelve month files of 2025, then a second file of 2025-03 (a re-sent month): one figure the same
    (an exact duplicate across payloads), one different (a conflict across payloads)."""
    files = [payload(NAME, f"comext_ds045409_{m}.csv", comext_csv([m], edits=REVISED)) for m in months(2025, 12)]
    again = HEADER + (
        "ESTAT:DS-045409(1.0),15/09/26 11:00:00,M,FR,JP,84834030,1,VALUE_IN_EUROS,2025-03,2113\r\n"
        "ESTAT:DS-045409(1.0),15/09/26 11:00:00,M,IT,JP,85011010,2,VALUE_IN_EUROS,2025-03,1\r\n")
    return [*files, payload(NAME, "comext_ds045409_2025-03_resent.csv", again.encode())]


def one_payload_of_many_months() -> list:
    """ONE payload of 30 months (2024-01..2026-06), as a wide live request answers, with a repeated row."""
    periods = months(2024, 30)
    extra = ["ESTAT:DS-045409(1.0),14/08/26 11:00:00,M,DE,JP,84834030,2,VALUE_IN_EUROS,2024-01,3021\r\n"]
    return [payload(NAME, "DS-045409 2024-01..2026-06", comext_csv(periods, edits=REVISED, extra=extra))]


def warehouse_state(wh) -> dict:
    """Everything a load of the source leaves behind, comparable between two runs of the same id."""
    return {
        "facts": rows_of(wh, TABLE),
        "quarantine": sorted(query(wh, "SELECT reason, raw_record FROM etl_rejected_rows WHERE run_id = ?", [RUN])),
        "revisions": query(wh, "SELECT table_name, source, natural_key, column_name, old_value, new_value "
                               "FROM etl_revisions WHERE run_id = ? ORDER BY ALL", [RUN]),
        "run": query(wh, "SELECT status, rows_in, rows_loaded, rows_rejected, rows_written, source_version, "
                         "input_checksum FROM etl_runs WHERE run_id = ? AND source = ?", [RUN, NAME]),
    }


def load_with(monkeypatch, good_warehouse, tmp_path, name: str, payloads: list, batch_rows: int | None):
    wh = tmp_path / name / "warehouse.duckdb"
    wh.parent.mkdir()
    shutil.copyfile(good_warehouse, wh)
    if batch_rows is None:
        monkeypatch.delenv("EUJP_BATCH_ROWS", raising=False)
    else:
        monkeypatch.setenv("EUJP_BATCH_ROWS", str(batch_rows))
    batch = run_steps(wh, {NAME: payloads})[NAME]
    assert batch.status == "loaded", batch.error
    assert_accounted(wh, NAME)
    return wh, batch


@pytest.mark.parametrize(("shape", "make", "batch_rows"), [
    ("many monthly payloads", monthly_payloads, 40),
    ("one payload of many months", one_payload_of_many_months, 100),
])
def test_streamed_in_bounded_chunks_the_load_equals_the_one_batch_load(
        monkeypatch, good_warehouse, tmp_path, shape, make, batch_rows):
    whole_wh, whole = load_with(monkeypatch, good_warehouse, tmp_path, "whole", make(), None)
    streamed_wh, streamed = load_with(monkeypatch, good_warehouse, tmp_path, "streamed", make(), batch_rows)

    assert len(whole.chunk_wire_rows) == 1  # the reference: every wire row in one chunk
    assert len(streamed.chunk_wire_rows) > 3 and max(streamed.chunk_wire_rows) <= batch_rows
    assert sum(streamed.chunk_wire_rows) == sum(whole.chunk_wire_rows)
    # the spilled chunks, valid and rejected, are gone once loaded
    assert streamed.chunks == streamed.rejected_chunks == [] and streamed.spill_dir is None

    expected, got = warehouse_state(whole_wh), warehouse_state(streamed_wh)
    assert len(expected["revisions"]) >= 2 and len(expected["quarantine"]) >= 3  # the case is not trivial
    assert [r[0] for r in expected["run"]] == ["success"]
    for part in expected:
        assert got[part] == expected[part], part
    # the revised figure is the payloads' (the old one the bundled snapshot's)
    [(old,)] = query(good_warehouse, f"SELECT value_eur FROM \"{TABLE}\" WHERE reporter = 'DE' AND product_cn8 = "
                                     "'84834030' AND flow = 'import' AND period_code = '2025-01'")
    assert [r[4:] for r in got["revisions"] if '"period_code":"2025-01"' in r[2] and r[3] == "value_eur"
            and '"reporter":"DE"' in r[2] and '"flow":"import"' in r[2]] == [(old, 999.0)]

BUNDLED_MONTHS = ("comext_ds045409_DE_JP_84834030_2025Q1.csv", "comext_ds045409_EU27_2020_allpartners_84834030_2025-06.csv")


@pytest.mark.parametrize("batch_rows", [None, 10])
def test_a_month_file_cut_mid_row_is_quarantined_by_name_and_line_while_the_other_months_load(
        monkeypatch, good_warehouse, tmp_path, batch_rows):
    good_file, cut_file = BUNDLED_MONTHS
    whole = (SNAPSHOT / cut_file).read_bytes()
    cut = whole[:int(len(whole) * 0.4)]
    assert not cut.endswith(b"\n") and cut.rsplit(b"\n", 1)[1].count(b",") < 9  # cut inside a row
    lines_after_header = cut.count(b"\n")  # the complete lines after the header, and the cut one
    last_line = cut.count(b"\n") + 1
    column = len(cut) - cut.rindex(b"\n")  # where the cut line ends, 1-based
    before = rows_of(good_warehouse, TABLE)

    wh, batch = load_with(monkeypatch, good_warehouse, tmp_path, "wh",
                          [payload(NAME, good_file, (SNAPSHOT / good_file).read_bytes()), payload(NAME, cut_file, cut)],
                          batch_rows)

    run = assert_accounted(wh, NAME)
    assert (run["status"], run["rows_in"], run["rows_loaded"], run["rows_rejected"]) == (
        "success", 6 + lines_after_header, 6, lines_after_header)
    error = f"{cut_file}: Comext DS-045409: payload looks truncated at line {last_line} column {column}"
    assert batch.payload_errors[0].startswith(error)
    assert error in run["message"]
    rejected = sorted(quarantined(wh, NAME), key=lambda r: r[1]["line"])
    assert [raw["line"] for _, raw in rejected] == list(range(2, last_line + 1))
    assert {raw["payload"] for _, raw in rejected} == {cut_file}
    assert all(reason.startswith(f"payload {cut_file} not loaded: {error}") for reason, _ in rejected)
    assert [raw["text"] for _, raw in rejected] == cut.decode().splitlines()[1:]
    # the good month file loaded in this run; the cut month keeps the rows an earlier run loaded
    assert query(wh, f'SELECT count(*) FROM "{TABLE}" WHERE run_id = ?', [RUN]) == [(3,)]
    assert rows_of(wh, TABLE) == before


def test_a_critical_failure_in_one_chunk_blocks_the_whole_source_and_quarantines_every_chunk(
        monkeypatch, good_warehouse, tmp_path):
    """A suite whose critical expectation fails on one figure only (value_eur <= 3,000: the IT rows are above):
    with the payload streamed in chunks, no chunk is loaded, every row of every chunk is quarantined with the
    reason, rows in = loaded + rejected, and the table keeps its rows."""
    from eujp import validate

    suite = json.loads(validate.suite_path(TABLE).read_text())
    for expectation in suite["expectations"]:
        if expectation["type"] == "expect_column_values_to_be_between" and \
                expectation["kwargs"]["column"] == "value_eur":
            expectation["kwargs"]["max_value"] = 3000.0
    strict = tmp_path / f"{TABLE}.json"
    strict.write_text(json.dumps(suite))
    monkeypatch.setattr(validate, "suite_path", lambda table: strict if table == TABLE else
                        validate.EXPECTATIONS_DIR / f"{table}.json")
    wh = tmp_path / "wh" / "warehouse.duckdb"
    wh.parent.mkdir()
    shutil.copyfile(good_warehouse, wh)
    before = rows_of(wh, TABLE)
    monkeypatch.setenv("EUJP_BATCH_ROWS", "100")

    batch = run_steps(wh, {NAME: one_payload_of_many_months()})[NAME]

    assert batch.status == "failed" and batch.failed_step == "validate"
    assert "expect_column_values_to_be_between(value_eur)" in batch.error
    assert len(batch.chunk_wire_rows) > 3 and batch.chunks == [] and batch.spill_dir is None
    run = assert_accounted(wh, NAME)
    assert (run["status"], run["rows_loaded"], run["rows_rejected"]) == ("failed", 0, run["rows_in"])
    reasons = [reason for reason, _ in quarantined(wh, NAME)]
    blocked = [r for r in reasons if r.startswith("not loaded: ")]
    assert len(blocked) == batch.valid_rows > 100  # every fact row of every chunk
    assert rows_of(wh, TABLE) == before


def test_rejected_rows_of_a_streamed_source_wait_for_the_load_on_disk_not_in_memory(monkeypatch, tmp_path):
    """Bounded memory whatever the data (issue 12, item 2): past the first chunk, a chunk's rejected rows are
    spilled with its valid rows (`SourceBatch.rejected_chunks`), so a source whose rows are mostly rejected is
    held no more than one whose rows load; the load records them from the files (the warehouse then equals the
    one-batch load's: test above)."""
    from eujp.pipeline import (
        SourceBatch,
        load_countries,
        prepare_source,
        rejected_frames,
        release_chunks,
        utcnow,
    )

    source = get_source(NAME)
    rows = one_payload_of_many_months()
    # every row of reporter FR rejected (an unknown partner code): a third of the payload
    bad = rows[0].read().replace(b",M,FR,JP,", b",M,FR,ZZ,")
    monkeypatch.setenv("EUJP_BATCH_ROWS", "100")
    batch = prepare_source(source, [payload(NAME, "DS-045409 2024-01..2026-06", bad)],
                           load_countries(date(2026, 11, 25)), SourceBatch(source=NAME, table=TABLE, started_at=utcnow()))
    try:
        assert batch.status == "prepared", batch.error
        assert len(batch.chunk_wire_rows) > 3 and len(batch.rejected_chunks) > 1
        assert batch.rejected.height == 0  # nothing held: no payload was quarantined whole
        assert all(p.parent == batch.spill_dir and p.is_file() for p in batch.rejected_chunks)
        rejected = pl.concat(list(rejected_frames(batch)))
        assert rejected.height == batch.rows_rejected >= len(PRODUCTS) * 2 * 2 * 30
        assert rejected.get_column("reason").str.contains("unknown partner code ZZ").sum() == \
            len(PRODUCTS) * 2 * 2 * 30
    finally:
        release_chunks(batch)
    assert batch.rejected_chunks == []


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(shape=payload_shapes())
def test_any_shape_of_payloads_loads_as_one_batch_loads(good_warehouse, shape):
    """A property test of the whole source through the pipeline steps (parse, transform, validate, load, audit):
    payloads drawn as the stream's property test draws them (tests/support/comext_shapes.py), loaded in chunks
    of the drawn limit with the stream's sizes made tiny, leave the warehouse that one batch of them leaves:
    facts, quarantine, revisions and the run's accounting; or fail the source with the same error."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "files").mkdir()
        payloads = payloads_of(shape, folder / "files")
        total = sum(len(rows) for rows in shape.parts)
        outcomes = []
        for name, limit, sizes in (("whole", total + 1, None), ("streamed", shape.limit, shape.sizes)):
            wh = folder / name / "warehouse.duckdb"
            wh.parent.mkdir()
            shutil.copyfile(good_warehouse, wh)
            with mock.patch.dict(os.environ, {"EUJP_BATCH_ROWS": str(limit)}), stream_sizes(sizes):
                batch = run_steps(wh, {NAME: payloads})[NAME]
            outcomes.append((batch.status, batch.error, warehouse_state(wh)))
        (status, error, want), got = outcomes[0], outcomes[1]
        assert got[:2] == (status, error)
        for part in want:
            assert got[2][part] == want[part], part


@pytest.mark.parametrize("batch_rows", [None, 100])
def test_the_load_stores_each_chunk_of_one_payload_of_many_months_in_period_order(
        monkeypatch, good_warehouse, tmp_path, batch_rows):
    """Comext answers series by series (every month of one product before the next): each chunk is sorted by
    month before the load appends it (eujp.pipeline.in_period_order), so a year's rows sit together and the
    year-by-year mart rebuild and the lake's month files skip the others (zone maps). The rows are the same."""
    wh, batch = load_with(monkeypatch, good_warehouse, tmp_path, "wh", one_payload_of_many_months(), batch_rows)
    chunks = len(batch.chunk_wire_rows)
    assert chunks == 1 if batch_rows is None else chunks > 3
    stored = [p for (p,) in query(wh, f'SELECT period FROM "{TABLE}" WHERE run_id = ? ORDER BY rowid', [RUN])]
    assert len(stored) > 400 and len(set(stored)) == 30
    descents = sum(later < earlier for earlier, later in itertools.pairwise(stored))
    # in period order within each chunk: at most one step back where a chunk ends (the payload: one per series)
    assert descents <= chunks - 1
    whole_wh, _ = load_with(monkeypatch, good_warehouse, tmp_path, "unsorted", one_payload_of_many_months(), None)
    assert rows_of(wh, TABLE) == rows_of(whole_wh, TABLE)


def test_in_period_order_sorts_a_chunk_by_its_column_and_leaves_one_in_order_or_without_it_as_it_is():
    from eujp.pipeline import in_period_order, load_order

    frame = pl.DataFrame({"period": [date(2025, 3, 1), date(2024, 1, 1), date(2025, 3, 1), date(2024, 2, 1)],
                          "value": [1.0, 2.0, 3.0, 4.0]})
    ordered = in_period_order(frame, "period")
    assert ordered["period"].to_list() == sorted(frame["period"].to_list())
    assert ordered["value"].to_list() == [2.0, 4.0, 1.0, 3.0]  # stable: rows of one period keep their order
    assert in_period_order(ordered, "period") is ordered
    assert in_period_order(frame, None) is frame and in_period_order(frame, "missing") is frame
    assert load_order(get_source(NAME)) == "period"  # Comext's month as a date, not its text code
    others = [s for s in SOURCES if s.load_order_column is None and s.period_column is not None]
    assert others and all(load_order(s) == s.period_column for s in others)  # else the source's period column
