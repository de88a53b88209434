"""Streaming a big source through parse and transform (eujp.pipeline.parse_and_transform, in chunks of at most
`limit` wire rows) gives exactly the whole-batch result; a bad payload among several is quarantined whole; the
fast paths of the Comext parser and transform give exactly the slow paths' result. Through the load:
test_streamed_load.py."""

from __future__ import annotations

import json
import math
import re
from datetime import date

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eujp.landing import RawPayload
from eujp.parse.sdmx_csv import _NUMBER, parse_comext_csv
from eujp.pipeline import line_pieces, load_countries, parse_and_transform, parse_payloads
from eujp.sources import SOURCES_BY_NAME

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
    assert streamed.rows_in == expected.rows_in == sum(p.data.count(b"\n") - 1 for p in payloads)
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
    assert all(h == header.encode() for _, h, _ in pieces)
    assert b"".join(p for _, _, p in pieces) == body.encode()
    assert [first for first, _, _ in pieces] == list(range(2, 9, max_lines))[:len(pieces)]
    assert max(p.count(b"\n") for _, _, p in pieces) <= max_lines
    # a quoted field holding a line end is never cut
    quoted = (header + 'ESTAT:DS-045409(1.0),"14/08/26\n11:00:00",' + row() + end + body).encode()
    assert all(p.count(b'"') % 2 == 0 for _, _, p in line_pieces(RawPayload("comext_goods", "q", quoted, "x"), 1))


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
    assert frame.item(0, "OBS_VALUE_raw") == text


@pytest.mark.parametrize(("text", "value"), [("1e400", None), ("-1e400", None), ("NaN", None),
                                             ("inf", None), ("1.5E3", 1500.0), (" 7 ", 7.0), ("+.5", 0.5)])
def test_obs_value_edge_cases(text, value):
    data = (HEADER + f"ESTAT:DS-045409(1.0),14/08/26 11:00:00,{row(value=text)}\r\n").encode()
    assert parse_comext_csv(data).frame.item(0, "OBS_VALUE") == value
