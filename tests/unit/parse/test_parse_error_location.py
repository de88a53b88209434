"""A parse error says where: the payload line (and column where the format knows it), per wire format, on the
bundled real files made bad. CSV formats: the line polars refused (found by Python's csv module on the error
path); JSON-stat: the line and column json reports. `ParseError.line`/`.column` carry the same numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from eujp.errors import ParseError
from eujp.parse.events import parse_events_csv
from eujp.parse.jsonstat import parse_jsonstat
from eujp.parse.oecd import parse_oecd_csv
from eujp.parse.sdmx_csv import parse_comext_csv
from eujp.parse.sipri import parse_sipri_register

SNAPSHOT = Path(__file__).resolve().parents[3] / "data" / "snapshot"


def with_extra_field(name: str, line: int, encoding: str = "utf-8") -> bytes:
    """The bundled file with one more field at the end of physical line `line` (1-based)."""
    lines = (SNAPSHOT / name).read_bytes().decode(encoding).splitlines(keepends=True)
    text = lines[line - 1]
    body = text.rstrip("\r\n")
    lines[line - 1] = body + ",EXTRA" + text[len(body):]
    return "".join(lines).encode(encoding)


def record_lines(text: str) -> list[tuple[int, int]]:
    """(first, last) physical line of each CSV record of `text`, the header's included (records may span lines
    in quoted fields)."""
    import csv
    import io

    reader = csv.reader(io.StringIO(text, newline=""))
    lines = []
    while True:
        start = reader.line_num + 1
        if next(reader, None) is None:
            return lines
        lines.append((start, reader.line_num))


def test_comext_a_line_with_too_many_fields_is_named_with_its_column():
    data = with_extra_field("comext_ds045409_EU27_2020_allpartners_84834030_2025-06.csv", 40)
    line = data.decode().splitlines()[39]
    with pytest.raises(ParseError, match=r"malformed CSV at line 40 column (\d+): 11 fields where the header "
                                         r"has 10") as caught:
        parse_comext_csv(data)
    assert (caught.value.line, caught.value.column) == (40, line.index(",EXTRA") + 2)


def test_comext_a_foreign_dataflow_is_named_with_its_line():
    lines = (SNAPSHOT / "comext_ds045409_DE_JP_84834030_2025Q1.csv").read_text().splitlines(keepends=True)
    lines[4] = lines[4].replace("ESTAT:DS-045409(1.0)", "ESTAT:DS-999999(1.0)")
    with pytest.raises(ParseError, match=r"is not ESTAT:DS-045409\(...\) \(first at line 5 column 1\)") as caught:
        parse_comext_csv("".join(lines).encode())
    assert caught.value.line == 5


@pytest.mark.parametrize(("parse", "name"), [
    (parse_events_csv, "security_events.csv"),
    (parse_oecd_csv, "oecd_export_restrictions.csv"),
])
def test_csv_formats_name_the_line_with_too_many_fields(parse, name):
    data = (SNAPSHOT / name).read_bytes()
    # the record starting on the 4th physical line (records may span lines in quoted fields: count records)
    first, last = record_lines(data.decode())[3]
    bad = with_extra_field(name, last)
    with pytest.raises(ParseError, match=rf"CSV could not be read: line {last} has \d+ fields where the header "
                                         r"has \d+") as caught:
        parse(bad)
    assert caught.value.line == last and first <= last


@pytest.mark.parametrize(("parse", "name"), [
    (parse_events_csv, "security_events.csv"),
    (parse_oecd_csv, "oecd_export_restrictions.csv"),
])
@pytest.mark.parametrize("field", ["first", "last"])
def test_csv_formats_name_the_record_with_too_few_fields(parse, name, field):
    """polars pads a record with fewer fields than the header with nulls: without the check, a record without
    its last field loaded with that value missing, and one without an earlier field had the values after it
    in the wrong columns (or was rejected for another reason). The 4th record made short names its first line."""
    import csv
    import io

    text = (SNAPSHOT / name).read_text(encoding="utf-8")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    records = list(reader)
    records[3] = records[3][1:] if field == "first" else records[3][:-1]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *records])
    starts = [first for first, _ in record_lines(out.getvalue())]
    with pytest.raises(ParseError, match=rf"the record at line {starts[4]} has {len(header) - 1} field\(s\) where "
                                         rf"the header has {len(header)} \(a field missing") as caught:
        parse(out.getvalue().encode())
    assert caught.value.line == starts[4]


def test_sipri_names_the_lines_with_the_wrong_number_of_fields():
    data = with_extra_field("sipri_trade_register_japan.csv", 20, encoding="latin-1")
    with pytest.raises(ParseError, match=r"line 20 \(\d+ fields\)"):
        parse_sipri_register(data)


@pytest.mark.parametrize(("cut", "message"), [
    (lambda text: text[: len(text) // 2], (r"truncated JSON, the document ends unexpectedly \(.* at line (\d+) "
                                          r"column (\d+);")),
    (lambda text: text.replace('"value"', '"value" "x"', 1), r"not valid JSON \(.* at line (\d+) column (\d+);"),
])
def test_jsonstat_errors_carry_the_line_and_column_json_reports(cut, message):
    import json

    text = (SNAPSHOT / "eurostat_ext_lt_maineu_jp.json").read_text(encoding="utf-8")
    bad = cut(text)
    try:
        json.loads(bad)
    except json.JSONDecodeError as exc:
        expected = (exc.lineno, exc.colno)
    with pytest.raises(ParseError, match=message) as caught:
        parse_jsonstat(bad.encode())
    assert (caught.value.line, caught.value.column) == expected
    assert f"at line {expected[0]} column {expected[1]};" in str(caught.value)
