"""Streaming a big source through parse and transform (eujp.stream.parse_and_transform, in chunks of at most
`limit` wire rows) gives exactly the whole-batch result; a bad payload among several is quarantined whole; the
fast paths of the Comext parser and transform give exactly the slow paths' result. Through the load:
test_streamed_load.py."""

from __future__ import annotations

import json
import math
import re
import threading
from datetime import date

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.comext_shapes import stream_all

from eujp.landing import RawPayload
from eujp.parse.sdmx_csv import _NUMBER, parse_comext_csv
from eujp.pipeline import load_countries
from eujp.sources import SOURCES_BY_NAME
from eujp.stream import count_data_lines, line_pieces, parse_and_transform, parse_payloads

COMEXT = SOURCES_BY_NAME["comext_goods"]
HEADER = "DATAFLOW,LAST UPDATE,freq,reporter,partner,product,flow,indicators,TIME_PERIOD,OBS_VALUE\r\n"


@pytest.fixture(scope="module")
def countries() -> pl.DataFrame:
    return load_countries(date(2026, 11, 24))


def payload(name: str, rows: list[str], stamp: str = "14/08/26 11:00:00") -> RawPayload:
    body = "".join(f"ESTAT:DS-045409(1.0),{stamp},{r}\r\n" for r in rows)
    return RawPayload(source="comext_goods", name=name, data=(HEADER + body).encode(), url=f"file:///{name}")


def row(reporter="DE", product="84834030", flow="1", indicator="VALUE_IN_EUROS", period="2025-01", value="10"):
    return f"M,{reporter},JP,{product},{flow},{indicator},{period},{value}"


def as_sets(result):
    valid = result.valid.sort(pl.all())
    return valid, sorted(result.rejected.iter_rows())


def whole_batch(payloads, countries):
    parsed = parse_payloads(COMEXT, payloads)
    return COMEXT.transform(parsed.frame, COMEXT.name, parsed.source_version, countries), parsed.source_version


PAYLOAD_SETS = {
    "disjoint months, one with a bad row": [
        payload("a", [row(value="1"), row(indicator="QUANTITY_IN_100KG", value="2.5"), row(product="1234", value="3")]),
        payload("b", [row(period="2025-02", value="4"), row(period="2025-02", reporter="XX", value="5")],
                stamp="15/09/26 11:00:00"),
    ],
    "same month, disjoint products (a live split by chapter)": [
        payload("a", [row(product="01010000", value="1"), row(product="02020000", value="2")]),
        payload("b", [row(product="84834030", value="3")]),
    ],
    "the same month twice: duplicates and conflicts across payloads": [
        payload("a", [row(value="1"), row(indicator="QUANTITY_IN_100KG", value="2"), row(flow="2", value="7")]),
        payload("b", [row(period="2025-03", value="9")]),
        payload("c", [row(value="1"), row(flow="2", value="8"), row(flow="2", indicator="QUANTITY_IN_100KG")]),
    ],
    "a quantity in one payload, its value in another": [
        payload("a", [row(indicator="QUANTITY_IN_100KG", value="2")]),
        payload("b", [row(value="1")]),
    ],
}


@pytest.mark.parametrize("limit", [None, 2, 3])
@pytest.mark.parametrize("name", list(PAYLOAD_SETS))
def test_streamed_result_equals_the_whole_batch_result(name, limit, countries):
    """limit None: one chunk; 2 and 3: every payload in pieces, hash-partitioned into chunks and spilled."""
    payloads = PAYLOAD_SETS[name]
    streamed, version = parse_and_transform(COMEXT, payloads, countries, limit=limit)
    expected, expected_version = whole_batch(payloads, countries)
    assert version == expected_version
    assert streamed.rows_in == expected.rows_in == sum(p.read().count(b"\n") - 1 for p in payloads)
    assert streamed.valid_wire_rows == expected.valid_wire_rows
    got, want = as_sets(streamed), as_sets(expected)
    assert got[0].equals(want[0])
    assert got[1] == want[1]


@pytest.mark.parametrize("max_lines", [1, 2, 5, 100])
@pytest.mark.parametrize("end", ["\r\n", "\n"])
def test_line_pieces_cut_at_line_ends_and_put_the_pieces_back_together(max_lines, end):
    header = HEADER.replace("\r\n", end)
    body = "".join(f"ESTAT:DS-045409(1.0),14/08/26 11:00:00,{row(value=str(i))}{end}" for i in range(7))
    pieces = list(line_pieces(RawPayload("comext_goods", "p", (header + body).encode(), "x"), max_lines))
    assert all(p.startswith(header.encode()) for _, p in pieces)
    assert b"".join(p.removeprefix(header.encode()) for _, p in pieces) == body.encode()
    assert [first for first, _ in pieces] == list(range(2, 9, max_lines))[:len(pieces)]
    assert max(p.count(b"\n") - 1 for _, p in pieces) <= max_lines
    # a quoted field holding a line end is never cut
    quoted = (header + 'ESTAT:DS-045409(1.0),"14/08/26\n11:00:00",' + row() + end + body).encode()
    assert all(p.count(b'"') % 2 == 0 for _, p in line_pieces(RawPayload("comext_goods", "q", quoted, "x"), 1))


def test_a_bad_payload_among_several_is_quarantined_by_name_and_the_others_load(countries):
    from eujp.pipeline import SourceBatch, prepare_source, utcnow

    html = b"<html>\n<title>Service unavailable</title>\n</html>\n"
    payloads = [payload("good.csv", [row()]), RawPayload("comext_goods", "bad.csv", html, "x")]
    batch = prepare_source(COMEXT, payloads, countries,
                           SourceBatch(source=COMEXT.name, table=COMEXT.table.name, started_at=utcnow()))
    assert batch.status == "prepared" and batch.valid.height == 1
    assert (batch.rows_in, batch.rows_rejected) == (1 + 2, 2)  # bad.csv: the two lines after its first
    assert batch.rejected.get_column("reason").str.starts_with("payload bad.csv not loaded: bad.csv: ").all()
    assert [json.loads(r)["line"] for r in batch.rejected.get_column("raw_record")] == [2, 3]
    assert batch.payload_errors and "HTML/XML page" in batch.payload_errors[0]


def test_a_parse_error_of_the_only_payload_fails_the_source_naming_it(countries):
    from eujp.pipeline import SourceBatch, prepare_source, utcnow

    batch = prepare_source(COMEXT, [RawPayload("comext_goods", "bad.csv", b"<html></html>", "x")], countries,
                           SourceBatch(source=COMEXT.name, table=COMEXT.table.name, started_at=utcnow()))
    assert batch.failed_step == "parse" and "bad.csv" in batch.error and batch.rows_in == 0


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="0123456789.+-eE xnaif_", min_size=1, max_size=12))
def test_obs_value_fast_path_equals_the_plain_number_rule(text):
    """parse_comext_csv casts first and only consults _NUMBER for non-finite results; the value must be the
    one the rule gives: a plain number within the float range, else null."""
    data = (HEADER + f"ESTAT:DS-045409(1.0),14/08/26 11:00:00,{row(value=text)}\r\n").encode()
    frame = parse_comext_csv(data).frame
    stripped = text.strip()
    expected = float(stripped) if re.search(_NUMBER, stripped) and math.isfinite(float(stripped)) else None
    assert frame.item(0, "OBS_VALUE") == expected
    assert frame.item(0, "OBS_VALUE_raw") == (text if stripped else None)  # a blank value is a missing one


@pytest.mark.parametrize(("text", "value"), [("1e400", None), ("-1e400", None), ("NaN", None),
                                             ("inf", None), ("1.5E3", 1500.0), (" 7 ", 7.0), ("+.5", 0.5)])
def test_obs_value_edge_cases(text, value):
    data = (HEADER + f"ESTAT:DS-045409(1.0),14/08/26 11:00:00,{row(value=text)}\r\n").encode()
    assert parse_comext_csv(data).frame.item(0, "OBS_VALUE") == value


# --- payloads grouped by month (Source.wire_groups): chunked in memory, spilled only over the limit -----------

def month_payload(name: str, periods: list[str], stamp: str = "14/08/26 11:00:00", value: str = "",
                  extra: list[str] = ()) -> RawPayload:
    """Both indicators of three products, two flows, for each of `periods`; `value` prefixes every figure."""
    rows = [row(product=p, flow=f, indicator=i, period=m, value=f"{value}{k}{j}{len(m)}")
            for m in periods for k, p in enumerate(("84834030", "84829900", "85011010"))
            for f in ("1", "2") for j, i in enumerate(("VALUE_IN_EUROS", "QUANTITY_IN_100KG"))]
    return payload(name, [*rows, *extra], stamp=stamp)


def assert_same(got, want):
    valid, rejected, want_valid, want_rejected = got.valid, got.rejected, want.valid, want.rejected
    assert got.stream.version == want.stream.version
    assert valid.sort(pl.all()).equals(want_valid.sort(pl.all()))
    assert sorted(rejected.iter_rows()) == sorted(want_rejected.iter_rows())
    assert valid.select(pl.col("value_eur").sum(), pl.col("quantity_kg").sum()).rows() == \
        want_valid.select(pl.col("value_eur").sum(), pl.col("quantity_kg").sum()).rows()


@pytest.mark.parametrize("file_backed", [False, True])
def test_monthly_payloads_over_the_limit_are_chunked_in_memory_without_spilling(countries, tmp_path, file_backed):
    """Twelve month files (12 rows each, one with a bad row, the latest stamp in the LAST one), in memory (as
    read back from the raw zone) or files (a snapshot folder: the month column is scanned from the file): at
    a limit of 30 rows, chunks of two months each, nothing written to disk, exactly the one-batch result."""
    payloads = [month_payload(f"m{m:02d}", [f"2025-{m:02d}"], stamp=f"{m:02d}/08/26 11:00:00",
                              extra=[row(product="123", period=f"2025-{m:02d}")] if m == 5 else [])
                for m in range(1, 13)]
    if file_backed:
        (tmp_path / "snapshot").mkdir()
        for p in payloads:
            (tmp_path / "snapshot" / f"{p.name}.csv").write_bytes(p.read())
        payloads = [RawPayload.from_file("comext_goods", tmp_path / "snapshot" / f"{p.name}.csv") for p in payloads]
    total = sum(count_data_lines(p) for p in payloads)
    (tmp_path / "one").mkdir(), (tmp_path / "chunked").mkdir()
    one = stream_all(payloads, countries, total, tmp_path / "one")
    chunked = stream_all(payloads, countries, 30, tmp_path / "chunked")
    assert one.stream.chunk_wire_rows == [total]
    assert sorted(chunked.stream.chunk_wire_rows) == [24] * 5 + [25] and sum(chunked.stream.chunk_wire_rows) == total
    assert chunked.spilled == set()  # no wire spill folder was ever made
    assert chunked.stream.version == "2026-08-12T11:00:00"
    assert_same(chunked, one)
    assert one.rejected.height == 1  # the bad row, rejected in both


def test_payloads_that_share_months_are_one_group_and_a_later_landing_wins(countries, tmp_path, monkeypatch):
    """A revision landing re-sends months 1-2: its payload and the first one share months, so they are one
    group, in one chunk, in payload order; in one landing the different figures conflict exactly as in one
    batch; as a later landing (transform_landings), its figures supersede the first ones exactly as in one
    batch."""
    from eujp.stream import transform_landings

    first = month_payload("a", ["2025-01", "2025-02"])
    march = month_payload("b", ["2025-03"])
    april = month_payload("c", ["2025-04"])
    revised = month_payload("d", ["2025-01", "2025-02"], stamp="20/09/26 11:00:00", value="9")
    payloads = [first, march, april, revised]
    (tmp_path / "one").mkdir(), (tmp_path / "chunked").mkdir()
    one = stream_all(payloads, countries, 1000, tmp_path / "one")
    chunked = stream_all(payloads, countries, 50, tmp_path / "chunked")
    assert 48 in chunked.stream.chunk_wire_rows  # a and d together (24 + 24 rows), b and c in another chunk
    assert chunked.spilled == set()
    assert one.stream.version == chunked.stream.version == "2026-09-20T11:00:00"
    assert_same(chunked, one)

    landed = [first, march, april, replace_landing(revised, 1)]
    monkeypatch.setenv("EUJP_BATCH_ROWS", "1000")
    whole, whole_version, _, _ = transform_landings(COMEXT, landed, countries)
    monkeypatch.setenv("EUJP_BATCH_ROWS", "30")
    streamed, version, _, _ = transform_landings(COMEXT, landed, countries)
    assert version == whole_version == "2026-09-20T11:00:00"
    assert streamed.valid.sort(pl.all()).equals(whole.valid.sort(pl.all()))
    january = whole.valid.filter(pl.col("period_code") == "2025-01")
    assert january.height == 6 and (january.get_column("value_eur") >= 900).all()  # the revision won


def replace_landing(p: RawPayload, landing: int) -> RawPayload:
    from dataclasses import replace

    return replace(p, landing=landing)


def test_a_group_over_the_limit_is_still_spilled_and_gives_the_one_batch_result(countries, tmp_path):
    """ONE payload of six months (72 rows, the indicators of a key far apart) over a limit of 30 is
    hash-spilled to disk; the month files beside it are chunked in memory; together the one-batch result."""
    wide = month_payload("wide", [f"2024-{m:02d}" for m in range(1, 7)], stamp="01/08/26 11:00:00",
                         extra=[row(period="2024-03", value="5")])
    payloads = [month_payload("m01", ["2025-01"]), wide, month_payload("m02", ["2025-02"], value="3")]
    (tmp_path / "one").mkdir(), (tmp_path / "chunked").mkdir()
    one = stream_all(payloads, countries, 1000, tmp_path / "one")
    chunked = stream_all(payloads, countries, 30, tmp_path / "chunked")
    assert [n for n in chunked.spilled if n.startswith("eujp-comext_goods-wire-")]  # the wide payload was spilled
    rows = chunked.stream.chunk_wire_rows  # m01 in memory, the wide payload's buckets, m02 in memory
    assert rows[0] == rows[-1] == 12 and len(rows) > 3 and max(rows) <= 30 and sum(rows) == 12 + 73 + 12
    assert_same(chunked, one)  # the repeated row of 2024-03 judged as in one batch


def test_spilled_payloads_with_their_own_constant_columns_give_the_one_batch_result(countries, tmp_path,
                                                                                   monkeypatch):
    """Two payloads over the limit that share months are spilled together: each piece's constant text columns
    (DATAFLOW, LAST UPDATE, freq) are left out of its files and put back when they are read, each file with
    its own payload's values: the rows, the quarantine's raw records and the version are the one batch's."""
    months = [f"2024-{m:02d}" for m in range(1, 5)]
    # each with a bad figure of a product the other does not have (a bad figure a later release corrects would be
    # superseded, not rejected)
    first = month_payload("first", months, stamp="01/08/26 11:00:00",
                          extra=[row(product="84821010", period="2024-02", value="x")])
    second = month_payload("second", months, stamp="02/08/26 11:00:00", value="7",
                           extra=[row(product="84821010", period="2024-03", value="-1")])
    written: list[list[str]] = []
    real_sink = pl.LazyFrame.sink_parquet

    def noted(frame, path, *args, **kwargs):
        written.append(frame.collect_schema().names())
        return real_sink(frame, path, *args, **kwargs)

    (tmp_path / "one").mkdir(), (tmp_path / "chunked").mkdir()
    one = stream_all([first, second], countries, 1000, tmp_path / "one")
    monkeypatch.setattr(pl.LazyFrame, "sink_parquet", noted)
    chunked = stream_all([first, second], countries, 20, tmp_path / "chunked")
    spilled = [c for c in written if "TIME_PERIOD" in c]
    assert spilled and all(not {"DATAFLOW", "LAST UPDATE", "freq"} & set(c) for c in spilled)
    assert len(chunked.stream.chunk_wire_rows) > 2 and max(chunked.stream.chunk_wire_rows) <= 20
    assert chunked.stream.version == "2026-08-02T11:00:00"
    stamps = {json.loads(r[1])["LAST UPDATE"] for r in chunked.rejected.iter_rows()}
    assert stamps == {"01/08/26 11:00:00", "02/08/26 11:00:00"}  # each rejected row with its own payload's
    # the second release (a later LAST UPDATE) supersedes the first's figures of the same months, in every chunk
    assert set(chunked.valid.get_column("value_eur")) == {7007.0, 7107.0, 7207.0}
    assert chunked.rejected.height == 2 and chunked.valid.height == 3 * 2 * len(months)
    assert_same(chunked, one)


def test_small_payloads_of_a_spilled_group_are_spilled_together_in_payload_order(countries, tmp_path,
                                                                                  monkeypatch):
    """Twelve small payloads that share their months (one group over the limit), a long one cut in pieces
    among them and one cut mid-row: the small ones, parsed whole, are gathered into pieces of up to
    `piece_lines` rows before they are split into the buckets' files (fewer spills than payloads), in payload
    order (a row repeated with the same figure in a later payload is the one rejected, as in one batch); the
    payload that fails is quarantined by name and none of its rows load: the one-batch result. The small ones are
    parsed side by side, on threads."""
    import eujp.stream

    def small(i, stamp="01/08/26 11:00:00", extra=()):
        rows = [row(product=f"8483{i:04d}", flow=f, indicator=ind, period=m, value=f"{i}{k}")
                for m in ("2024-01", "2024-02") for f in ("1", "2")
                for k, ind in enumerate(("VALUE_IN_EUROS", "QUANTITY_IN_100KG"))]
        return payload(f"small{i:02d}", [*rows, *extra], stamp=stamp)

    long = month_payload("long", ["2024-01", "2024-02", "2024-03"], stamp="03/08/26 11:00:00")
    whole = small(99, stamp="09/08/26 11:00:00")
    cut = RawPayload("comext_goods", "cut", whole.read()[:-25], "x")
    payloads = [small(i, stamp=f"0{1 + i % 2}/08/26 11:00:00") for i in range(6)]
    payloads += [long, cut, *(small(i) for i in range(6, 11))]
    # small03's release (02/08): its row repeated with the same figure is a duplicate (another release's would
    # supersede it)
    payloads.append(small(11, stamp="02/08/26 11:00:00",
                          extra=[row(product="84830003", flow="2", value="30", period="2024-02")]))
    spills: list[str] = []
    real_spill = eujp.stream.Stream._spill

    def noted(self, frame, spill, name, buckets):
        spills.append(name)
        return real_spill(self, frame, spill, name, buckets)

    threads: dict[str, str] = {}
    real_parse = eujp.stream._parse_one

    def parse_noted(source, payload):
        threads[payload.name] = threading.current_thread().name
        return real_parse(source, payload)

    (tmp_path / "one").mkdir(), (tmp_path / "chunked").mkdir()
    one = stream_all(payloads, countries, 1000, tmp_path / "one")
    monkeypatch.setattr(eujp.stream.Stream, "_spill", noted)
    monkeypatch.setattr(eujp.stream, "_parse_one", parse_noted)
    chunked = stream_all(payloads, countries, 80, tmp_path / "chunked")
    assert chunked.stream.piece_lines == 20 and count_data_lines(long) > 20  # the long one is cut in pieces
    # the small ones parsed side by side, on the scan threads (the long one is read in pieces, not parsed whole)
    assert "long" not in threads and {threads[p.name] for p in payloads if p is not long} <= {
        f"eujp-scan_{n}" for n in range(eujp.stream.SCAN_THREADS)}
    assert [n for n in chunked.spilled if n.startswith("eujp-comext_goods-wire-")]  # spilled
    small_spills = [n for n in spills if not n.startswith("000006-")]
    assert len(small_spills) == 6 and len(spills) == 8  # 12 payloads of 8 rows, 2 a piece; the long one: 2
    assert spills == sorted(spills)  # in payload order, so a bucket's files are read in payload order
    assert [e.split(":")[0] for e in chunked.stream.payload_errors] == ["cut"]
    assert chunked.stream.version == "2026-08-03T11:00:00"
    assert any("duplicate" in str(r).lower() for r in chunked.rejected.iter_rows())  # small11's repeat of small03's row
    assert_same(chunked, one)


def test_the_only_payload_over_the_limit_in_no_series_order_is_spilled(countries, tmp_path, monkeypatch):
    """A source's only payload has no other payload to share a key with: its month column is never scanned
    for groups. Month by month (every series comes again in each month) its series are no runs of lines:
    it is spilled as it is parsed; the one-batch result."""
    import eujp.stream

    wide = month_payload("wide", [f"2024-{m:02d}" for m in range(1, 7)], stamp="01/08/26 11:00:00",
                         extra=[row(period="2024-03", value="5")])
    (tmp_path / "one").mkdir(), (tmp_path / "chunked").mkdir()
    one = stream_all([wide], countries, 1000, tmp_path / "one")

    def no_scan(self, payload):
        raise AssertionError(f"{payload.name} scanned")

    monkeypatch.setattr(eujp.stream.Stream, "_scan", no_scan)
    chunked = stream_all([wide], countries, 30, tmp_path / "chunked")
    assert [n for n in chunked.spilled if n.startswith("eujp-comext_goods-wire-")]
    assert len(chunked.stream.chunk_wire_rows) > 2 and max(chunked.stream.chunk_wire_rows) <= 30
    assert chunked.stream.version == "2026-08-01T11:00:00"
    assert_same(chunked, one)


def series_rows(periods: list[str], products: range = range(3)) -> list[str]:
    """Both indicators of `products` products, two flows, for each of `periods`, sorted as Comext sorts an
    answer (reporter, partner, product, flow, indicator, then period): each series (reporter, partner, product,
    flow) is one run of lines, its two indicators a run of periods apart."""
    return [row(product=f"8483{k:04d}", flow=f, indicator=i, period=m, value=f"{k}{j}{len(m)}")
            for k in products for f in ("1", "2") for j, i in enumerate(("QUANTITY_IN_100KG", "VALUE_IN_EUROS"))
            for m in periods]


def six_months() -> list[str]:
    return [f"2024-{m:02d}" for m in range(1, 7)]


def test_the_only_payload_sorted_by_series_is_streamed_without_a_spill(countries, tmp_path, monkeypatch):
    """Sorted as Comext sorts an answer, a lone payload over the limit holds each series in one run of lines:
    it is scanned once for that (and for its version), then streamed in chunks cut between runs, no spill
    folder ever made, every chunk within the limit; the one-batch result, a repeated row and a bad figure
    included (each in its series' run)."""
    import eujp.stream

    rows = series_rows(six_months(), products=range(5))
    rows.insert(6, rows[5])  # a row sent twice
    rows[30] = rows[30].rsplit(",", 1)[0] + ",n/a"
    wide = payload("wide", rows, stamp="01/08/26 11:00:00")
    (tmp_path / "one").mkdir(), (tmp_path / "chunked").mkdir()
    one = stream_all([wide], countries, 1000, tmp_path / "one")
    scans = []
    series_scan = eujp.stream.Stream._series_scan

    def noted(self, p):
        scans.append(p.name)
        return series_scan(self, p)

    monkeypatch.setattr(eujp.stream.Stream, "_series_scan", noted)
    chunked = stream_all([wide], countries, 30, tmp_path / "chunked")
    assert scans == ["wide"]
    assert not [n for n in chunked.spilled if n.startswith("eujp-comext_goods-wire-")]  # nothing spilled
    assert len(chunked.stream.chunk_wire_rows) > 3 and max(chunked.stream.chunk_wire_rows) <= 24  # 0.8 of the limit
    assert sum(chunked.stream.chunk_wire_rows) == len(rows)
    assert chunked.stream.version == "2026-08-01T11:00:00"
    # the repeated row, the bad figure and the other indicator of its fact: in the one batch as in chunks
    assert one.rejected.height == 3
    assert_same(chunked, one)


@pytest.mark.parametrize("case", ["a series comes again", "a series longer than a run may be"])
def test_a_lone_payload_whose_series_are_no_short_runs_is_spilled(countries, tmp_path, case):
    """A series that comes again after others (a key could be in two chunks), or one longer than a chunk can
    carry over to the next (0.8 of the limit less a piece), is not streamed by series: the payload is
    spilled; the one-batch result."""
    if case == "a series comes again":
        rows = series_rows(six_months(), products=range(5))
        rows.append(rows.pop(3))  # the first series' fourth row at the end
    else:
        rows = series_rows([f"2024-{m:02d}" for m in range(1, 13)], products=range(2))  # runs of 24 lines
    wide = payload("wide", rows, stamp="01/08/26 11:00:00")
    (tmp_path / "one").mkdir(), (tmp_path / "chunked").mkdir()
    one = stream_all([wide], countries, 1000, tmp_path / "one")
    chunked = stream_all([wide], countries, 30, tmp_path / "chunked")
    assert [n for n in chunked.spilled if n.startswith("eujp-comext_goods-wire-")]  # spilled
    assert max(chunked.stream.chunk_wire_rows) <= 30
    assert_same(chunked, one)


def product_payloads(count: int, stamp=lambda k: f"{k + 1:02d}/08/26 11:00:00") -> list[RawPayload]:
    """`count` payloads cut by product from one answer in series order: each holds the series of one product
    (two flows, both indicators, six months: 24 lines), all share every month."""
    return [payload(f"part{k:02d}", series_rows(six_months(), products=range(k, k + 1)), stamp=stamp(k))
            for k in range(count)]


def test_payloads_cut_by_series_that_share_every_month_are_streamed_without_a_spill(countries, tmp_path):
    """Twelve payloads cut by product (each series in one of them, in series order) share every month: one
    group over the limit. Each parsed whole, no series in two of them: streamed by series, no spill folder
    ever made, every chunk within 0.8 of the limit, the batch stamped with the latest payload's version (a
    middle one); the one-batch result."""
    parts = product_payloads(12, stamp=lambda k: "20/08/26 11:00:00" if k == 5 else f"{k + 1:02d}/08/26 11:00:00")
    (tmp_path / "one").mkdir(), (tmp_path / "chunked").mkdir()
    one = stream_all(parts, countries, 1000, tmp_path / "one")
    chunked = stream_all(parts, countries, 200, tmp_path / "chunked")  # pieces of 50 lines: each parsed whole
    assert not [n for n in chunked.spilled if n.startswith("eujp-comext_goods-wire-")]  # nothing spilled
    assert len(chunked.stream.chunk_wire_rows) >= 2 and max(chunked.stream.chunk_wire_rows) <= 160
    assert sum(chunked.stream.chunk_wire_rows) == 12 * 24
    assert chunked.stream.version == one.stream.version == "2026-08-20T11:00:00"
    assert_same(chunked, one)


def test_a_payload_cut_by_series_that_fails_its_parse_is_quarantined_whole(countries, tmp_path):
    """Among payloads streamed by series, one cut off mid-row (its series scan reads, its parse fails) that
    carries the latest stamp: quarantined whole by name, none of its rows loaded, the batch stamped by the
    latest of the others; the one-batch result."""
    parts = product_payloads(12)
    body = parts[7].data
    parts[7] = RawPayload(source="comext_goods", name="part07-cut",
                          data=body.replace(b"08/26 11:00:00", b"08/26 23:00:00")[:-12], url="file:///cut")
    for name in ("one", "chunked"):
        (tmp_path / name).mkdir()
    one = stream_all(parts, countries, 1000, tmp_path / "one")
    chunked = stream_all(parts, countries, 200, tmp_path / "chunked")
    assert not [n for n in chunked.spilled if n.startswith("eujp-comext_goods-wire-")]  # streamed by series
    assert [e.split(":")[0] for e in chunked.stream.payload_errors] == ["part07-cut"]
    assert chunked.stream.version == "2026-08-12T11:00:00"
    assert not chunked.valid.filter(pl.col("product_cn8") == "84830007").height  # nothing of it loaded
    assert_same(chunked, one)


@pytest.mark.parametrize("case", ["a series in two payloads", "payloads read in pieces"])
def test_payloads_sharing_months_not_cut_by_series_are_spilled(countries, tmp_path, case):
    """A spilled group is streamed by series only when no series is in two payloads and every payload is
    parsed whole; else it is spilled as before; the one-batch result either way."""
    parts = product_payloads(12)
    limit = 200
    if case == "a series in two payloads":
        extra = series_rows(six_months(), products=range(3, 4))[:2]  # two lines of part03's first series
        parts[9] = payload("part09", [*series_rows(six_months(), products=range(9, 10)), *extra],
                           stamp="10/08/26 11:00:00")
    else:
        limit = 90  # pieces of 22 lines: a payload of 24 is read in pieces
    for name in ("one", "chunked"):
        (tmp_path / name).mkdir()
    one = stream_all(parts, countries, 1000, tmp_path / "one")
    chunked = stream_all(parts, countries, limit, tmp_path / "chunked")
    assert [n for n in chunked.spilled if n.startswith("eujp-comext_goods-wire-")]  # spilled
    assert max(chunked.stream.chunk_wire_rows) <= limit
    assert_same(chunked, one)


def test_payloads_of_one_series_in_months_apart_are_streamed_without_a_spill(countries, tmp_path, monkeypatch):
    """A plan that cut some chapters by months as well: a series in two or three payloads, each holding other
    months of it (the month slices of a product apart in the landing order, a conflicting figure in one
    slice), beside payloads that hold whole series, all sharing months: one group over the limit. No key in
    two payloads, so it is streamed by series, no spill folder ever made, every chunk within 0.8 of the
    limit, and gives the one-batch result; the same slices with one month in two of them are spilled."""
    import eujp.stream

    months = six_months()
    whole, firsts, lasts = [], [], []
    for k in range(12):
        if k % 3:
            whole.append(payload(f"whole{k:02d}", series_rows(months, products=range(k, k + 1))))
        else:  # the product's months in two slices (three for the first), landed apart
            cuts = [months[:2], months[2:3], months[3:]] if k == 0 else [months[:3], months[3:]]
            rows = [series_rows(m, products=range(k, k + 1)) for m in cuts]
            if k == 6:
                rows[1][1] = rows[1][1].rsplit(",", 1)[0] + ",999"
                rows[1].insert(2, rows[1][1].rsplit(",", 1)[0] + ",998")  # the same key, another figure
            firsts.append(payload(f"slice{k:02d}a", rows[0]))
            lasts += [payload(f"slice{k:02d}{c}", r) for c, r in zip("bc", rows[1:], strict=False)]
    parts = [*firsts, *whole, *lasts]
    assert max(len(p.data.splitlines()) - 1 for p in parts) <= 50  # each parsed whole at a limit of 200
    for name in ("one", "chunked", "overlap"):
        (tmp_path / name).mkdir()
    one = stream_all(parts, countries, 1000, tmp_path / "one")
    apart = []
    original = eujp.stream.Stream._apart
    monkeypatch.setattr(eujp.stream.Stream, "_apart", lambda self, *a: apart.append(original(self, *a)) or apart[-1])
    chunked = stream_all(parts, countries, 200, tmp_path / "chunked")
    assert apart == [True]
    assert not [n for n in chunked.spilled if n.startswith("eujp-comext_goods-wire-")]  # nothing spilled
    assert len(chunked.stream.chunk_wire_rows) >= 2 and max(chunked.stream.chunk_wire_rows) <= 160
    assert sum(chunked.stream.chunk_wire_rows) == sum(len(p.data.splitlines()) - 1 for p in parts)
    assert one.rejected.filter(pl.col("reason").str.contains("conflicting")).height >= 2
    assert_same(chunked, one)

    overlapping = [*parts[:-1], payload("slice09b", series_rows(months[2:], products=range(9, 10)))]  # 2024-03 twice
    want = stream_all(overlapping, countries, 1000, tmp_path / "one")
    got = stream_all(overlapping, countries, 200, tmp_path / "overlap")
    assert apart[-1] is False
    assert [n for n in got.spilled if n.startswith("eujp-comext_goods-wire-")]  # spilled
    assert_same(got, want)


def test_a_lone_payload_by_series_cut_mid_row_fails_its_source(countries, tmp_path):
    """The source's only payload, in series order, cut off in its last row: the scan reads it, but the parse
    of its last piece fails, and with it the source (nothing to load beside it), with the payload's name."""
    from eujp.errors import ParseError
    from eujp.stream import source_stream

    body = (HEADER + "".join(f"ESTAT:DS-045409(1.0),01/08/26 11:00:00,{r}\r\n"
                             for r in series_rows(six_months(), products=range(5)))).encode()
    cut = RawPayload(source="comext_goods", name="cut", data=body[:-12], url="file:///cut")
    stream = source_stream(COMEXT, [cut], countries, limit=30, spill_dir=tmp_path)
    with pytest.raises(ParseError, match="cut"):
        list(stream.chunks())


def errors_of_line_40(name: str, spoil, countries, tmp_path) -> list:
    """The ParseError of the source's only payload `name`, in series order, whose line 40 `spoil` made bad,
    streamed parsed whole (limit 1000) and in pieces of 30 lines."""
    from eujp.errors import ParseError
    from eujp.stream import source_stream

    lines = [f"ESTAT:DS-045409(1.0),01/08/26 11:00:00,{r}\r\n" for r in series_rows(six_months(), products=range(5))]
    lines[38] = spoil(lines[38])
    bad = RawPayload(source="comext_goods", name=name, data=(HEADER + "".join(lines)).encode(), url=f"file:///{name}")
    errors = []
    for limit in (1000, 30):
        stream = source_stream(COMEXT, [bad], countries, limit=limit, spill_dir=tmp_path)
        with pytest.raises(ParseError) as raised:
            list(stream.chunks())
        errors.append(raised.value)
    return errors


def test_a_bad_stamp_in_a_lone_payload_by_series_is_reported_with_the_payload_and_its_line(countries, tmp_path):
    """A LAST UPDATE that is no dd/mm/yy HH:MM:SS on line 40 of the source's only payload, in series order:
    the scan, which reads the distinct stamps only, leaves the error to the parse of the payload's pieces,
    which names the payload and the line, as the one-batch parse does (the scan raised it with line 2, the
    rank of the bad stamp among the distinct ones, and no payload name)."""
    for error in errors_of_line_40("bad-stamp", lambda line: line.replace("01/08/26 11:00:00", "01/08/26 11"),
                                   countries, tmp_path):
        assert str(error) == "bad-stamp: Comext DS-045409: LAST UPDATE '01/08/26 11' is not dd/mm/yy " \
                             "HH:MM:SS (line 40)"


def test_a_short_line_deep_in_a_streamed_payload_is_named_with_the_payload_and_its_line(countries, tmp_path):
    """A line without its `freq` field on line 40 of the source's only payload (polars would pad it with nulls
    and read its fields into the wrong columns): the payload parsed whole and in pieces of 30 lines names the
    payload and line 40 alike."""
    for error in errors_of_line_40("short-line", lambda line: line.replace(",M,", ",", 1), countries, tmp_path):
        assert str(error).startswith("short-line: Comext DS-045409: malformed CSV at line 40: 9 field(s) where the "
                                     "header has 10"), str(error)
        assert error.line == 40


def test_a_payload_that_fails_its_parse_is_quarantined_whole_and_does_not_stamp_the_batch(countries, tmp_path):
    """In grouped chunks: an HTML page (its month column cannot be read) and a month file cut mid-row (it
    scans, its parse fails) that carries the latest stamp are quarantined by name; the batch's version is
    that of the loaded payloads, as when the whole batch fits in one chunk."""
    html = RawPayload("comext_goods", "page.csv", b"<html>\n<title>Busy</title>\n</html>\n", "x")
    cut = month_payload("cut", ["2025-03"], stamp="30/09/26 11:00:00")
    cut = RawPayload("comext_goods", "cut", cut.read()[:-30], "x")
    # a month file with a line missing a field, and one whose stray quote reads a line into another's field
    lines = month_payload("short", ["2025-05"], stamp="30/09/26 11:00:00").read().decode().split("\n")
    short = RawPayload("comext_goods", "short", "\n".join([*lines[:3], lines[3].replace(",M,", ",", 1),
                                                           *lines[4:]]).encode(), "x")
    lines = month_payload("stray", ["2025-06"], stamp="30/09/26 11:00:00").read().decode().split("\n")
    stray = RawPayload("comext_goods", "stray", "\n".join([*lines[:2], '"' + lines[2], '"' + lines[3], *lines[4:]])
                       .encode(), "x")
    payloads = [month_payload("m01", ["2025-01"]), html, month_payload("m02", ["2025-02"],
                stamp="15/08/26 11:00:00"), cut, short, month_payload("m04", ["2025-04"]), stray]
    (tmp_path / "one").mkdir(), (tmp_path / "chunked").mkdir()
    one = stream_all(payloads, countries, 1000, tmp_path / "one")
    chunked = stream_all(payloads, countries, 30, tmp_path / "chunked")
    assert chunked.spilled == set()
    assert chunked.stream.version == one.stream.version == "2026-08-15T11:00:00"
    assert sorted(e.split(":")[0] for e in chunked.stream.payload_errors) == ["cut", "page.csv", "short", "stray"]
    assert sorted(e.split(":")[0] for e in one.stream.payload_errors) == ["cut", "page.csv", "short", "stray"]
    assert_same(chunked, one)


def test_a_spilled_payload_that_fails_in_a_later_piece_leaves_none_of_its_rows(countries, tmp_path):
    """Two payloads of the same months over the limit are spilled together, piece by piece; the second is cut
    mid-row at its end, so its parse fails after its first pieces were written to the buckets' files: those
    files are removed, the payload is quarantined whole by name, and the rows and version are the one
    batch's without it (none of its earlier pieces' rows among the chunks)."""
    months = [f"2024-{m:02d}" for m in range(1, 5)]
    first = month_payload("first", months, stamp="01/08/26 11:00:00")
    whole = month_payload("second", months, stamp="02/08/26 11:00:00", value="7")
    cut = RawPayload("comext_goods", "second", whole.read()[:-30], "x")
    (tmp_path / "one").mkdir(), (tmp_path / "chunked").mkdir()
    one = stream_all([first, cut], countries, 1000, tmp_path / "one")
    chunked = stream_all([first, cut], countries, 20, tmp_path / "chunked")
    assert chunked.stream.piece_lines == 5 and count_data_lines(cut) > 4 * chunked.stream.piece_lines  # later pieces
    assert [n for n in chunked.spilled if n.startswith("eujp-comext_goods-wire-")]  # spilled
    assert [e.split(":")[0] for e in chunked.stream.payload_errors] == ["second"]
    assert chunked.stream.version == "2026-08-01T11:00:00"
    assert_same(chunked, one)
    alone = stream_all([first], countries, 1000, tmp_path / "one")
    assert chunked.valid.sort(pl.all()).equals(alone.valid.sort(pl.all()))  # only the first payload's rows


@pytest.mark.parametrize("block", [1, 3, 7, 64, 1 << 20])
@pytest.mark.parametrize("max_lines", [1, 2, 3, 5])
@pytest.mark.parametrize("file_backed", [False, True])
def test_line_pieces_read_in_small_blocks_gives_the_pieces_of_the_reference(monkeypatch, tmp_path, block,
                                                                             max_lines, file_backed):
    """Blocks smaller than a line, quoted fields holding line ends (and a piece that cannot be cut before
    them): the pieces of the plain quadratic algorithm line_pieces had (below), for in-memory and file payloads."""
    import eujp.stream

    monkeypatch.setattr(eujp.stream, "SCAN_BLOCK", block)
    lines = [f"ESTAT:DS-045409(1.0),14/08/26 11:00:00,{row(value=str(i))}\r\n" for i in range(9)]
    lines[2] = 'ESTAT:DS-045409(1.0),"14/08/26\n11:00\n:00",' + row() + "\r\n"
    lines[6] = 'ESTAT:DS-045409(1.0),"a ""quoted"" stamp\r\nover two lines",' + row() + "\n"
    data = (HEADER + "".join(lines)).encode()
    if file_backed:
        (tmp_path / "p.csv").write_bytes(data)
        p = RawPayload.from_file("comext_goods", tmp_path / "p.csv")
    else:
        p = RawPayload("comext_goods", "p", data, "x")
    assert list(line_pieces(p, max_lines)) == reference_pieces(data, max_lines)


@pytest.mark.parametrize("seed", range(6))
def test_line_pieces_of_random_lines_and_quotes_are_the_reference_pieces(monkeypatch, seed):
    """Lines of random lengths, some with quoted fields over line ends, read in random block sizes: the
    pieces of the reference, whatever the block where a piece or a quoted field ends."""
    import random

    import eujp.stream

    rng = random.Random(seed)
    monkeypatch.setattr(eujp.stream, "SCAN_BLOCK", rng.choice([1, 5, 17, 64, 301]))
    lines = []
    for i in range(rng.randint(0, 60)):
        text = "x" * rng.randint(0, 40)
        if rng.random() < 0.1:
            text = '"' + text + "\n" + "y" * rng.randint(0, 30) + '"'
        lines.append(f"{i},{text}" + rng.choice(["\n", "\r\n"]))
    data = ("a,b\n" + "".join(lines) + ("tail" if rng.random() < 0.5 else "")).encode()
    for max_lines in (1, 2, 7, 100):
        assert list(line_pieces(RawPayload("comext_goods", "r", data, "x"), max_lines)) == \
            reference_pieces(data, max_lines)


def reference_pieces(data: bytes, max_lines: int) -> list[tuple[int, bytes]]:
    """line_pieces as it was before it kept the line ends it found (every line end of the buffer searched again
    after each block): here on the whole payload as one block, which gives the same pieces."""
    import numpy as np

    end = data.find(b"\n")
    header, buf, first, pieces = data[:end + 1], bytearray(data[end + 1:]), 2, []
    while True:
        ends = np.flatnonzero(np.frombuffer(bytes(buf), dtype=np.uint8) == 10)
        if len(ends) < max_lines:
            break
        cut = int(ends[max_lines - 1]) + 1
        if buf.count(b'"', 0, cut) % 2:
            cut = next((int(e) + 1 for e in ends[max_lines:] if buf.count(b'"', 0, int(e) + 1) % 2 == 0), 0)
            if not cut:
                break
        piece = bytes(buf[:cut])
        del buf[:cut]
        pieces.append((first, header + piece))
        first += piece.count(b"\n")
    if buf or first == 2:
        pieces.append((first, header + bytes(buf)))
    return pieces


def test_a_wire_group_version_that_is_not_the_parsers_fails_the_stream_clearly(countries, tmp_path):
    """Chunks are stamped with the version the scans read before anything is parsed: a source whose
    WireGroups.version reads LAST UPDATE otherwise than its parser would stamp rows wrongly, so it fails."""
    from dataclasses import replace

    from eujp.errors import EujpError
    from eujp.sources.base import WireGroups
    from eujp.stream import source_stream

    wrong = replace(COMEXT, wire_groups=WireGroups("TIME_PERIOD", "LAST UPDATE", lambda stamps: "2000-01-01"))
    payloads = [month_payload(f"m{m}", [f"2025-0{m}"]) for m in (1, 2, 3)]
    stream = source_stream(wrong, payloads, countries, limit=20, spill_dir=tmp_path)
    with pytest.raises(EujpError, match="its parse gives source_version '2026-08-14T11:00:00', its LAST UPDATE "
                                        "column '2000-01-01'"):
        list(stream.chunks())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("file_backed", [False, True])
def test_a_payload_within_the_limit_is_parsed_as_it_is_and_only_a_longer_one_is_cut(countries, tmp_path,
                                                                                      monkeypatch, file_backed):
    """Cutting a payload into pieces copies its bytes (10M rows: ~3 s of the parse): a payload of an in-memory
    chunk (at most `limit` data lines) is parsed as it is; only a spilled one goes through `line_pieces`, in
    pieces of a quarter of `limit` (`Stream.piece_lines`: a piece only sets the spill's peak). Same rows
    either way."""
    import eujp.stream

    payloads = [month_payload(f"m{m:02d}", [f"2025-{m:02d}"], stamp=f"{m:02d}/08/26 11:00:00") for m in (1, 2)]
    payloads.append(month_payload("long", ["2025-03", "2025-04", "2025-05"], stamp="03/08/26 11:00:00"))
    if file_backed:
        (tmp_path / "snapshot").mkdir()
        for p in payloads:
            (tmp_path / "snapshot" / f"{p.name}.csv").write_bytes(p.read())
        payloads = [RawPayload.from_file("comext_goods", tmp_path / "snapshot" / f"{p.name}.csv") for p in payloads]
    lines = [count_data_lines(p) for p in payloads]
    assert lines == [12, 12, 36]
    cut = []
    real = eujp.stream.line_pieces

    def watched(payload, max_lines):
        cut.append(payload.name)
        pieces = list(real(payload, max_lines))
        sizes.append([piece.count(b"\n") - 1 for _, piece in pieces])  # data lines (the header is repeated)
        return iter(pieces)

    sizes = []
    monkeypatch.setattr(eujp.stream, "line_pieces", watched)
    (tmp_path / "one").mkdir(), (tmp_path / "chunked").mkdir()
    chunked = stream_all(payloads, countries, 20, tmp_path / "chunked")
    assert [name.removesuffix(".csv") for name in cut] == ["long"]
    assert sizes == [[5] * 7 + [1]]  # 36 lines in pieces of 20 // 4
    cut.clear()
    one = stream_all(payloads, countries, 60, tmp_path / "one")
    assert cut == []
    assert_same(chunked, one)
    assert one.valid.height == 60 // 2


@pytest.mark.parametrize("block", [1, 2, 1 << 20])
def test_count_data_lines_in_memory_and_in_a_file_agree(tmp_path, monkeypatch, block):
    import eujp.stream

    monkeypatch.setattr(eujp.stream, "SCAN_BLOCK", block)
    for data in (b"", b"h\n", b"h", b"h\na", b"h\na\n", b"h\r\na\r\nb\r\n", b"h\na\nb"):
        (tmp_path / "p.csv").write_bytes(data)
        in_memory = RawPayload(source="comext_goods", name="p.csv", data=data, url="memory:p.csv")
        assert count_data_lines(in_memory) == count_data_lines(RawPayload.from_file("comext_goods",
                                                                                    tmp_path / "p.csv"))


def test_a_chunk_is_validated_while_the_next_is_parsed_and_the_reports_keep_chunk_order(countries, monkeypatch):
    """prepare_source validates chunk k on a thread while chunk k+1 is parsed and transformed (the first
    validation below waits, up to 10 s, for a parse to begin: run one after the other, none would); every chunk
    is validated once, and the merged report counts every row."""
    import threading
    from contextlib import contextmanager

    from support.events import EventLog

    import eujp.validate
    from eujp.pipeline import SourceBatch, prepare_source, release_chunks, utcnow

    events = EventLog()
    real = eujp.validate.validate_frame

    def validating(table, frame, **kwargs):
        chunk = sum(e[0] == "validate start" for e in events)
        events.note(("validate start", chunk, threading.current_thread().name, frame.height))
        if chunk == 0:
            since = len(events)
            events.wait_for(lambda seen: any(e[0] == "parse" for e in seen[since:]))
        report = real(table, frame, **kwargs)
        events.note(("validate end", chunk))
        return report

    @contextmanager
    def step(name):
        events.note((name,))
        yield

    monkeypatch.setattr(eujp.validate, "validate_frame", validating)
    payloads = [month_payload(f"m{m:02d}", [f"2025-{m:02d}"]) for m in range(1, 7)]  # 12 rows each
    batch = prepare_source(COMEXT, payloads, countries,
                           SourceBatch(source=COMEXT.name, table=COMEXT.table.name, started_at=utcnow()),
                           step=step, limit=30)
    assert batch.status == "prepared", batch.error
    chunks = len(batch.chunk_wire_rows)
    assert chunks == 3
    starts = [e for e in events if e[0] == "validate start"]
    assert [e[1] for e in starts] == list(range(chunks))
    assert all(e[2].startswith("eujp-validate-comext_goods") for e in starts)
    first, end = events.index(starts[0]), events.index(("validate end", 0))
    assert ("parse",) in events[first:end], events  # the next chunk was parsed while the first was validated
    assert batch.validation.row_count == batch.valid_rows == sum(e[3] for e in starts) == 36
    spill = batch.spill_dir
    release_chunks(batch)  # what the load does once it has them: not loaded here
    assert spill is not None and not spill.exists()


def test_a_chunk_whose_validation_fails_fails_the_source_at_validate_and_removes_its_spill(countries, monkeypatch):
    import eujp.validate
    from eujp.pipeline import SourceBatch, prepare_source, utcnow

    real, calls = eujp.validate.validate_frame, []

    def failing_second(table, frame, **kwargs):
        calls.append(frame.height)
        if len(calls) == 2:
            raise RuntimeError("the validator broke on the second chunk")
        return real(table, frame, **kwargs)

    monkeypatch.setattr(eujp.validate, "validate_frame", failing_second)
    payloads = [month_payload(f"m{m:02d}", [f"2025-{m:02d}"]) for m in range(1, 7)]
    batch = prepare_source(COMEXT, payloads, countries,
                           SourceBatch(source=COMEXT.name, table=COMEXT.table.name, started_at=utcnow()), limit=30)
    assert batch.status == "failed" and batch.failed_step == "validate"
    assert "the validator broke on the second chunk" in batch.error
    assert batch.chunks == [] and batch.spill_dir is None


_LINE_PARTS = ["a", "b,c", "é", "\r\n", "\n", "\r", "\u2028", "\x0c", "\n\n", " "]


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(st.sampled_from(_LINE_PARTS), max_size=40), invalid=st.booleans(),
       block=st.integers(1, 12), max_lines=st.integers(1, 5))
def test_a_quarantine_in_pieces_has_the_rows_of_the_whole_quarantine(parts, invalid, block, max_lines):
    """quarantine_frames (a big bad payload read in blocks cut after a line end, in frames of at most
    `max_lines` rows) gives exactly quarantine_payload's rows (the payload read whole): line numbers, texts
    (Python's splitlines, any line end), invalid UTF-8 replaced alike, one row for a payload of one line."""
    import eujp.stream
    from eujp.errors import ParseError

    data = "".join(parts).encode() + (b"\xe2\x82\n\xff" if invalid else b"")
    bad = RawPayload("comext_goods", "bad.csv", data, "x")
    whole = eujp.stream.quarantine_payload(bad, ParseError("bad"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(eujp.stream, "QUARANTINE_WHOLE_BYTES", 0)
        patch.setattr(eujp.stream, "READ_BLOCK", block)
        frames = list(eujp.stream.quarantine_frames(bad, ParseError("bad"), max_lines))
    assert all(0 < f.height <= max_lines for f in frames)
    assert pl.concat(frames).equals(whole)


def test_a_quarantined_payload_counts_its_lines_of_text_not_its_blank_lines():
    """Blank lines are no rows when a payload parses (eujp.parse.drop_blank_rows), nor when it is quarantined
    whole: one bad line and two blank ones are one rejected row, in memory as in pieces."""
    import eujp.stream
    from eujp.errors import ParseError

    bad = RawPayload("comext_goods", "bad.csv", (HEADER + "not,a,row\r\n\r\n \r\n").encode(), "x")
    whole = eujp.stream.quarantine_payload(bad, ParseError("bad"))
    assert [json.loads(r)["line"] for r in whole.get_column("raw_record")] == [2]
    pieces = pl.concat(list(eujp.stream.quarantine_frames(bad, ParseError("bad"), 1)))
    assert pieces.equals(whole)
    blank = RawPayload("comext_goods", "blank.csv", (HEADER + "\r\n").encode(), "x")  # nothing but blank lines
    assert eujp.stream.quarantine_payload(blank, ParseError("bad")).height == 1


def test_a_big_bad_payload_is_quarantined_in_pieces_spilled_beside_the_chunks(countries, tmp_path, monkeypatch):
    """Bounded memory whatever the data (issue 12, item 2): a payload that fails to parse is quarantined whole,
    one rejected row per line, but never as all its lines at once: read in blocks, its rows made piece by piece
    (`quarantine_frames`) and spilled as rejected chunks, recorded by the load from the files. Python's traced
    peak is below the payload's size, where the whole quarantine held every line of it as a string."""
    import tracemalloc

    import eujp.stream
    from eujp import validate
    from eujp.pipeline import SourceBatch, prepare_source, rejected_frames, release_chunks, utcnow

    n = 400_000  # 34 MB: the peak (~11 MB whatever the size) far below it, with room for what other threads hold
    lines = [f"ESTAT:DS-045409(1.0),14/08/26 11:00:00,{row(product=f'{i:08d}')}" for i in range(n)]
    cut = (HEADER + "\r\n".join(lines))[:-20]  # the last row cut short: the payload fails its parse
    (tmp_path / "bad.csv").write_text(cut)
    bad = RawPayload.from_file("comext_goods", tmp_path / "bad.csv")
    monkeypatch.setattr(eujp.stream, "QUARANTINE_WHOLE_BYTES", 1 << 20)
    monkeypatch.setattr(eujp.stream, "READ_BLOCK", 1 << 20)
    validate._runtime()  # Great Expectations imported before tracing
    tracemalloc.start()
    try:
        batch = prepare_source(COMEXT, [payload("good.csv", [row()]), bad], countries,
                               SourceBatch(source=COMEXT.name, table=COMEXT.table.name, started_at=utcnow()),
                               limit=40_000, spill_dir=tmp_path / "spill")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    try:
        assert batch.status == "prepared" and batch.valid.height == 1
        assert (batch.rows_in, batch.rows_rejected) == (1 + n, n)
        assert len(batch.rejected_chunks) == n // 10_000 and batch.rejected.height == 0  # pieces of limit / 4 lines
        rejected = pl.concat(list(rejected_frames(batch)))
        assert [json.loads(r)["line"] for r in rejected.get_column("raw_record")] == list(range(2, n + 2))
        assert rejected.get_column("reason").str.starts_with("payload bad.csv not loaded: ").all()
        # the whole quarantine traced ~6x the payload (its bytes, its text, a string and a tuple per line);
        # in pieces: a block's lines and a piece's rows (~11 MB here, whatever the payload's size)
        assert peak < len(cut), f"{peak:,} bytes traced at the peak for a {len(cut):,}-byte bad payload"
    finally:
        release_chunks(batch)


def _landings():
    """Three landings of one day: the first with bad rows and a key given twice with different values (DE
    export: a conflict); the second revises January (supersedes), conflicts on a key the first loaded (FR,
    which keeps its row) and adds a month; the third conflicts on a key no landing gives (IT) and revises March."""
    first = [payload("a", [row(value="1"), row(indicator="QUANTITY_IN_100KG", value="2"), row(product="1234"),
                           row(flow="2", value="5"), row(flow="2", value="6"), row(period="2025-02", value="3")]),
             payload("b", [row(reporter="FR", value="4"), row(reporter="XX", value="9")])]
    second = [payload("c", [row(value="10"), row(indicator="QUANTITY_IN_100KG", value="20"),
                            row(reporter="FR", value="40"), row(reporter="FR", value="41"),
                            row(period="2025-03", value="7")], stamp="15/09/26 11:00:00")]
    third = [payload("d", [row(reporter="IT", value="1"), row(reporter="IT", value="2"), row(period="2025-03",
                                                                                            value="8")],
                     stamp="16/09/26 11:00:00")]
    return [*first, *(replace_landing(p, 1) for p in second), *(replace_landing(p, 2) for p in third)]


@pytest.mark.parametrize("limit", [2, 3, 1000])
def test_landings_of_a_streamed_source_are_folded_out_of_core_as_in_memory(countries, tmp_path, limit):
    """A replay of a day on which several runs landed Comext (LandingsStream: each landing streamed alone, the
    rows folded by DuckDB from files, the latest landing's row of every key kept) gives what folding them in
    memory gives (transform_landings, transforms.common.supersede): valid rows, rejected rows, conflicts that
    stay, accounting and version; its files are gone afterwards."""
    from eujp.stream import LandingsStream, source_stream, transform_landings

    landed = _landings()
    expected, expected_version, _, _ = transform_landings(COMEXT, landed, countries)
    (tmp_path / "spill").mkdir()
    stream = source_stream(COMEXT, landed, countries, limit=limit, spill_dir=tmp_path / "spill")
    assert isinstance(stream, LandingsStream)
    parts = list(stream.chunks())
    assert list((tmp_path / "spill").iterdir()) == []
    assert all(p.valid.height <= limit for p in parts)
    valid = pl.concat([p.valid for p in parts])
    rejected = pl.concat([p.rejected for p in parts])
    conflicts = [p.conflicts for p in parts if p.conflicts is not None]
    assert stream.version == expected_version == "2026-09-16T11:00:00"
    assert valid.sort(pl.all()).equals(expected.valid.sort(pl.all()))
    assert sorted(rejected.iter_rows()) == sorted(expected.rejected.iter_rows())
    assert sum(p.rows_in for p in parts) == expected.rows_in == 6 + 2 + 5 + 3
    assert sum(p.valid_wire_rows for p in parts) == expected.valid_wire_rows
    assert len(conflicts) == 1 and conflicts[0].sort(pl.all()).equals(expected.conflicts.sort(pl.all()))
    # the revision won; the key the second landing conflicted on kept the first landing's row; the keys no
    # landing gave a row for stay conflicts (DE export in the first landing, IT in the third)
    january = valid.filter((pl.col("period_code") == "2025-01") & (pl.col("flow") == "import"))
    assert dict(zip(january["reporter"], january["value_eur"], strict=True)) == {"DE": 10.0, "FR": 4.0}
    assert sorted(conflicts[0].select("reporter", "flow").iter_rows()) == [("DE", "export"), ("IT", "import")]


@pytest.mark.parametrize("limit", [2, 1000])
def test_a_landing_that_fails_is_left_out_of_the_fold_as_its_run_loaded_nothing(countries, tmp_path, limit):
    """A replay of a day whose third run landed a file cut mid-row (that run failed the source and loaded nothing):
    in memory (transform_landings) and streamed (LandingsStream), the cut landing is left out, saying so, and
    the others fold as they would without it; only cut landings: the source fails."""
    from eujp.errors import EujpError
    from eujp.stream import LandingsStream, source_stream, transform_landings

    landed = _landings()
    whole = payload("e", [row(value="99"), row(period="2025-04", value="5")], stamp="15/09/26 12:00:00")
    cut = RawPayload("comext_goods", "cut.csv", whole.read()[:-5], "x")
    with_cut = [*(p for p in landed if p.landing < 2), replace_landing(cut, 2),
                *(replace_landing(p, 3) for p in landed if p.landing == 2)]
    expected, expected_version, none, _ = transform_landings(COMEXT, landed, countries)
    folded, version, not_applied, left_out = transform_landings(COMEXT, with_cut, countries)
    assert none == [] and len(not_applied) == 1 and left_out == [2]
    assert not_applied[0].startswith("comext_goods: landing 3 of 4 of the day not applied") and "cut.csv" in \
        not_applied[0]
    assert version == expected_version and folded.rows_in == expected.rows_in
    assert folded.valid.sort(pl.all()).equals(expected.valid.sort(pl.all()))
    assert sorted(folded.rejected.iter_rows()) == sorted(expected.rejected.iter_rows())

    (tmp_path / "spill").mkdir()
    stream = source_stream(COMEXT, with_cut, countries, limit=limit, spill_dir=tmp_path / "spill")
    assert isinstance(stream, LandingsStream)
    parts = list(stream.chunks())
    assert stream.landing_errors == not_applied and stream.left_out == left_out
    assert stream.version == expected_version
    assert list((tmp_path / "spill").iterdir()) == []
    assert pl.concat([p.valid for p in parts]).sort(pl.all()).equals(expected.valid.sort(pl.all()))
    assert sorted(pl.concat([p.rejected for p in parts]).iter_rows()) == sorted(expected.rejected.iter_rows())
    assert sum(p.rows_in for p in parts) == expected.rows_in

    only_cut = [cut, replace_landing(cut, 1)]
    with pytest.raises(EujpError, match="no landing of the day could be applied"):
        transform_landings(COMEXT, only_cut, countries)
    with pytest.raises(EujpError, match="no landing of the day could be applied"):
        list(source_stream(COMEXT, only_cut, countries, limit=limit, spill_dir=tmp_path / "spill").chunks())


def test_a_small_bad_payload_is_spilled_with_the_rejected_rows_once_the_chunks_are(countries, tmp_path):
    """Chunks spilled (more than one chunk) and a bad payload of one line after its header: its one rejected row
    goes to a rejected chunk beside the others, and every count holds."""
    from eujp.pipeline import SourceBatch, prepare_source, rejected_frames, release_chunks, utcnow

    good = [month_payload(name, [month]) for name, month in (("a", "2025-01"), ("b", "2025-02"), ("c", "2025-03"))]
    bad = RawPayload("comext_goods", "bad.csv", (HEADER + "not,a,row\r\n").encode(), "x")
    batch = prepare_source(COMEXT, [*good, bad], countries,
                           SourceBatch(source=COMEXT.name, table=COMEXT.table.name, started_at=utcnow()),
                           limit=30, spill_dir=tmp_path)
    try:
        assert batch.status == "prepared", batch.error
        assert len(batch.chunk_wire_rows) > 1 and batch.chunks and batch.rejected_chunks
        rejected = pl.concat(list(rejected_frames(batch)))
        assert rejected.height == batch.rows_rejected == 1
        assert batch.rows_in == sum(p.read().count(b"\n") - 1 for p in [*good, bad])
        assert json.loads(rejected.get_column("raw_record")[0])["payload"] == "bad.csv"
    finally:
        release_chunks(batch)


@pytest.mark.parametrize("limit", [None, 30])
def test_blank_lines_in_a_payload_are_skipped_in_one_batch_and_in_chunks(countries, tmp_path, limit):
    """A blank line (LF or CRLF) between records or at the end of a payload holds no figure: it is skipped,
    where polars 2.1 reads it as a row of nulls and the payload failed ("DATAFLOW [None]"), losing its rows.
    Streamed by series (limit 30) or in one batch, the result is that of the payload without them."""
    rows = series_rows(six_months(), products=range(5))
    clean = payload("clean", rows, stamp="01/08/26 11:00:00")
    data = clean.read()
    lines = data.split(b"\r\n")[:-1]
    lines.insert(20, b"")  # a blank line between two records of a series (CRLF)
    lines[40] += b"\n"  # one more (LF)
    blank = RawPayload(source="comext_goods", name="blank", url="file:///blank",
                       data=b"\r\n".join(lines) + b"\r\n\n")  # and one at the end
    assert blank.read().count(b"\n") == data.count(b"\n") + 3
    parsed = parse_comext_csv(blank.read())
    assert parsed.frame.height == len(rows) and parsed.frame.equals(parse_comext_csv(data).frame)
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    got = stream_all([blank], countries, limit or 10_000, tmp_path / "a")
    want = stream_all([clean], countries, 10_000, tmp_path / "b")
    assert got.rejected.height == 0 and got.valid.height == len(rows) // 2
    assert_same(got, want)
