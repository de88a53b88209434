"""Property tests of the parsers (hypothesis), beyond the JSON-stat index arithmetic in test_jsonstat.py:

* any corruption of a real payload (cut, bytes flipped, spans dropped or repeated, garbage inserted) makes every
  parser either parse or raise ParseError: never another exception, which the pipeline could only report as an
  "unexpected error" with a traceback;
* JSON-stat: any JSON value in place of any part of a valid dataset is parsed or refused with ParseError, and a
  `size` that does not match the categories is always refused, naming the dimension;
* CSV: any text values written by a standard CSV writer come back exactly (events, SDMX-CSV), and Comext
  OBS_VALUE is the number its text spells, or null with the text kept.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from eujp.errors import ParseError
from eujp.parse.events import REQUIRED_COLUMNS, parse_events_csv
from eujp.parse.jsonstat import parse_jsonstat
from eujp.parse.oecd import parse_oecd_csv
from eujp.parse.sdmx_csv import COMEXT_COLUMNS, parse_comext_csv, parse_sdmx_csv
from eujp.sources import SOURCES

SNAPSHOT = Path(__file__).resolve().parents[3] / "data" / "snapshot"
PAYLOADS = {s.name: (s.parse, min(SNAPSHOT.glob(s.snapshot_glob)).read_bytes()) for s in SOURCES}


# --- corrupted real payloads -------------------------------------------------------------------------------

@st.composite
def corrupted(draw, data: bytes) -> bytes:
    """`data` after 1-4 random edits of the kinds a bad download, a bad disk or a bad export produce."""
    for _ in range(draw(st.integers(1, 4))):
        n = len(data)
        at = draw(st.integers(0, n))
        kind = draw(st.sampled_from(["cut", "flip", "drop", "repeat", "insert"]))
        if kind == "cut":
            data = data[:at]
        elif kind == "flip" and n:
            at = min(at, n - 1)
            data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
        elif kind == "drop":
            data = data[:at] + data[at + draw(st.integers(1, 200)):]
        elif kind == "repeat":
            data = data[:at] + data[at:at + draw(st.integers(1, 300))] * 2 + data[at + 300:]
        else:
            data = data[:at] + draw(st.binary(min_size=1, max_size=40)) + data[at:]
    return data


@pytest.mark.parametrize("source", sorted(PAYLOADS))
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_corrupted_payload_is_parsed_or_refused_with_parse_error(source, data):
    parse, payload = PAYLOADS[source]
    broken = data.draw(corrupted(payload))
    try:
        parsed = parse(broken)
    except ParseError:
        return
    assert parsed.frame.width > 0


# --- JSON-stat ---------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


def cube(sizes: list[int]) -> dict:
    ids = [f"d{k}" for k in range(len(sizes))]
    return {
        "version": "2.0", "class": "dataset", "id": ids, "size": list(sizes),
        "dimension": {d: {"category": {"index": [f"{d}c{i}" for i in range(n)]}} for d, n in zip(ids, sizes,
                                                                                               strict=True)},
        "value": {str(i): float(i) for i in range(0, math.prod(sizes), 2)},
        "status": {"0": "p"},
    }


def paths(doc, prefix=()):
    """Every location in a JSON document (as a key path), the root excluded."""
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        yield (*prefix, key)
        yield from paths(value, (*prefix, key))


@settings(max_examples=300, deadline=None)
@given(data=st.data(), sizes=st.lists(st.integers(1, 3), min_size=1, max_size=3), replacement=json_values)
def test_any_part_of_a_jsonstat_dataset_replaced_by_any_json_is_parsed_or_refused(data, sizes, replacement):
    doc = cube(sizes)
    where = data.draw(st.sampled_from(list(paths(doc))))
    parent = doc
    for key in where[:-1]:
        parent = parent[key]
    parent[where[-1]] = replacement
    try:
        parse_jsonstat(json.dumps(doc).encode())
    except ParseError:
        pass


@given(sizes=st.lists(st.integers(1, 4), min_size=1, max_size=4), data=st.data())
def test_a_size_that_does_not_match_the_categories_is_always_refused(sizes, data):
    doc = cube(sizes)
    position = data.draw(st.integers(0, len(sizes) - 1))
    wrong = data.draw(st.integers(0, 6).filter(lambda n: n != sizes[position]))
    doc["size"][position] = wrong
    with pytest.raises(ParseError, match=rf"dimension 'd{position}' has {sizes[position]} categories but size "
                                         rf"says {wrong}"):
        parse_jsonstat(json.dumps(doc).encode())


# --- CSV round trips ---------------------------------------------------------------------------------------

# Any text a curated file may hold, without control characters (NUL is refused on purpose) and without
# leading/trailing blanks, which CSV readers may treat differently from the writer.
field_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\u2028\u2029\x85"),
    max_size=25,
).map(str.strip)


def write_csv(header, rows, lineterminator="\r\n") -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=lineterminator)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.lists(field_text, min_size=8, max_size=8), min_size=1, max_size=8),
       terminator=st.sampled_from(["\r\n", "\n"]), bom=st.booleans())
def test_events_csv_values_come_back_exactly(rows, terminator, bom):
    assume(any(any(cell for cell in row) for row in rows))  # a row of empty fields is a blank line in CSV
    data = write_csv(REQUIRED_COLUMNS, rows, terminator)
    frame = parse_events_csv(b"\xef\xbb\xbf" + data if bom else data).frame
    assert frame.columns == list(REQUIRED_COLUMNS)
    expected = [[cell or None for cell in row] for row in rows if any(row)]
    assert [list(r) for r in frame.rows()] == expected


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.lists(field_text, min_size=3, max_size=3).filter(any), min_size=1, max_size=8))
def test_sdmx_csv_values_come_back_exactly(rows):
    frame = parse_sdmx_csv(write_csv(["A", "B", "C"], rows), ["A", "B", "C"])
    assert [list(r) for r in frame.rows()] == [[cell or None for cell in row] for row in rows]


number_texts = st.one_of(
    st.integers(-10**15, 10**15).map(str),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15).map(repr),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15).map(lambda x: f"{x:.3e}"),
    st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False).map(str),
)
non_numbers = st.sampled_from(["n/a", "1,5", "NaN", "inf", "-Infinity", ":", "12 345", "0x10", "1e400", "--1"])


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(number_texts, non_numbers))
def test_comext_obs_value_is_the_number_its_text_spells_or_null_with_the_text_kept(text):
    row = ["ESTAT:DS-045409(1.0)", "14/08/26 11:00:00", "M", "DE", "JP", "84834030", "1", "VALUE_IN_EUROS",
           "2025-01", text]
    frame = parse_comext_csv(write_csv(COMEXT_COLUMNS, [row])).frame
    value, raw = frame.row(0, named=True)["OBS_VALUE"], frame.row(0, named=True)["OBS_VALUE_raw"]
    assert raw == text
    expected = float(text) if text not in {"n/a", "1,5", ":", "12 345", "0x10", "--1"} else None
    if expected is not None and not math.isfinite(expected):
        expected = None  # NaN, inf, 1e400: not a figure a trade statistic can have
    if expected is None:
        assert value is None
    else:
        assert value == pytest.approx(expected, rel=1e-12, abs=0)


# --- what these properties found (kept as plain regression tests) ------------------------------------------

COMEXT_HEADER = ",".join(COMEXT_COLUMNS)
COMEXT_ROW = "ESTAT:DS-045409(1.0),14/08/26 11:00:00,M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-01,668914"


@pytest.mark.parametrize(("parse", "data", "message"), [
    # a stray carriage return in the header line: csv.Error escaped the parser
    (parse_comext_csv, f"\r{COMEXT_HEADER}\r\n{COMEXT_ROW}\r\n".encode(), r"header line is not valid CSV"),
    # a blank line where the first record should be: a null DATAFLOW made a TypeError
    (parse_comext_csv, f"{COMEXT_HEADER}\r\n\r\n,{COMEXT_ROW.split(',', 1)[1]}\r\n{COMEXT_ROW}\r\n".encode(),
     r"DATAFLOW \[None\] is not ESTAT:DS-045409"),
    # header names equal once blanks are trimmed: polars' DuplicateError escaped the parsers
    (parse_oecd_csv, b"STRUCTURE, REF_AREA,REF_AREA ,X\r\na,b,c,d\r\n",
     r"column\(s\) \['REF_AREA'\] appear more than once in the header"),
    (parse_events_csv, b"date, date,title\r\n2024-01-01,x,y\r\n",
     r"column\(s\) \['date'\] appear more than once in the header"),
])
def test_inputs_that_used_to_escape_as_other_exceptions_are_parse_errors(parse, data, message):
    with pytest.raises(ParseError, match=message):
        parse(data)


def test_an_obs_value_beyond_the_float_range_is_not_a_number():
    frame = parse_comext_csv(f"{COMEXT_HEADER}\r\n{COMEXT_ROW.replace('668914', '1e400')}\r\n".encode()).frame
    assert frame.select("OBS_VALUE", "OBS_VALUE_raw").rows() == [(None, "1e400")]
