"""Comext DS-045409 SDMX-CSV parser, on the real API responses in ../shared/data/trade and on malformed bodies.

The generic SDMX-CSV reader it builds on: tests/unit/parse/test_sdmx_csv.py."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eujp.errors import ParseError, SchemaDriftError
from eujp.parse.sdmx_csv import COMEXT_COLUMNS, parse_comext_csv

DE_JP = "comext_DS-045409_sdmxcsv_DE_JP_84834030_2025Q1.csv"
EU27_ALL = "comext_DS-045409_sdmxcsv_EU27_allpartners_84834030_2025-06.csv"

HEADER = "DATAFLOW,LAST UPDATE,freq,reporter,partner,product,flow,indicators,TIME_PERIOD,OBS_VALUE"
ROW = "ESTAT:DS-045409(1.0),14/08/26 11:00:00,M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-02,1663789"


def csv(*lines: str, header: str = HEADER, eol: str = "\r\n") -> bytes:
    return eol.join([header, *lines, ""]).encode()


@pytest.fixture(scope="module")
def de_jp(shared_data: Path) -> bytes:
    return (shared_data / "trade" / DE_JP).read_bytes()


@pytest.fixture(scope="module")
def eu27_all(shared_data: Path) -> bytes:
    return (shared_data / "trade" / EU27_ALL).read_bytes()


def obs(frame: pl.DataFrame, **key: str) -> pl.DataFrame:
    return frame.filter(*[pl.col(k) == v for k, v in key.items()])


# --------------------------------------------------------------------------- real files


def test_de_jp_file_values_traced_to_the_file(de_jp: bytes):
    parsed = parse_comext_csv(de_jp)
    frame = parsed.frame
    assert frame.columns == [*COMEXT_COLUMNS, "OBS_VALUE_raw"]
    assert frame.schema["OBS_VALUE"] == pl.Float64
    assert all(frame.schema[c] == pl.String for c in frame.columns if c != "OBS_VALUE")
    assert frame.height == 6
    # Line 6 of the file: ...,M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-02,1663789 (flow 1: DE imports from JP)
    value = obs(frame, reporter="DE", partner="JP", product="84834030", TIME_PERIOD="2025-02",
                indicators="VALUE_IN_EUROS")
    assert value.select("flow", "OBS_VALUE", "OBS_VALUE_raw").rows() == [("1", 1663789.0, "1663789")]
    # Line 3: ...,QUANTITY_IN_100KG,2025-02,502.02
    quantity = obs(frame, TIME_PERIOD="2025-02", indicators="QUANTITY_IN_100KG")
    assert quantity.get_column("OBS_VALUE").to_list() == [502.02]
    # Line 4 keeps its published spelling in OBS_VALUE_raw
    assert obs(frame, TIME_PERIOD="2025-03", indicators="QUANTITY_IN_100KG").row(0, named=True)["OBS_VALUE_raw"] \
        == "307.10"
    assert frame.get_column("TIME_PERIOD").unique().sort().to_list() == ["2025-01", "2025-02", "2025-03"]
    assert parsed.source_version == "2026-08-14T11:00:00"
    assert parsed.meta["dataflows"] == ["ESTAT:DS-045409(1.0)"]


def test_eu27_all_partners_file_counts_and_pseudo_partners(eu27_all: bytes):
    parsed = parse_comext_csv(eu27_all)
    frame = parsed.frame
    assert frame.height == 90
    counts = dict(frame.group_by("indicators").len().iter_rows())
    assert counts == {"QUANTITY_IN_100KG": 45, "VALUE_IN_EUROS": 45}
    assert frame.get_column("reporter").unique().to_list() == ["EU27_2020"]
    assert frame.get_column("flow").unique().to_list() == ["1"]
    partners = set(frame.get_column("partner"))
    assert {"EXT_EU27_2020", "INT_EU27_2020", "QV", "QW", "XS", "GR", "GB", "JP"} <= partners
    assert len(partners) == 45
    assert obs(frame, partner="JP", indicators="VALUE_IN_EUROS").get_column("OBS_VALUE").to_list() == [2264878.0]
    assert obs(frame, partner="EXT_EU27_2020", indicators="QUANTITY_IN_100KG").get_column("OBS_VALUE").to_list() \
        == [3267.55]
    # "0.00" is a real zero, not a missing value
    assert obs(frame, partner="GR", indicators="QUANTITY_IN_100KG").get_column("OBS_VALUE").to_list() == [0.0]
    assert frame.get_column("OBS_VALUE").null_count() == 0
    assert parsed.source_version == "2026-08-14T11:00:00"


def test_lf_crlf_and_bom_variants_parse_identically(de_jp: bytes):
    crlf = parse_comext_csv(de_jp).frame
    assert de_jp.count(b"\r\n") == 7  # the real file is CRLF
    lf = parse_comext_csv(de_jp.replace(b"\r\n", b"\n")).frame
    bom = parse_comext_csv(b"\xef\xbb\xbf" + de_jp).frame
    no_final_eol = parse_comext_csv(de_jp.rstrip(b"\r\n")).frame
    assert crlf.equals(lf)
    assert crlf.equals(bom)
    assert crlf.equals(no_final_eol)
    assert bom.columns[0] == "DATAFLOW"


def test_source_version_is_the_latest_last_update():
    older = ROW.replace("14/08/26 11:00:00", "02/01/25 09:30:05")
    parsed = parse_comext_csv(csv(older, ROW.replace("2025-02", "2025-03")))
    assert parsed.source_version == "2026-08-14T11:00:00"
    assert parse_comext_csv(csv(older)).source_version == "2025-01-02T09:30:05"


def test_header_only_payload_is_an_empty_frame_without_version():
    parsed = parse_comext_csv(csv())
    assert parsed.frame.height == 0
    assert parsed.frame.columns == [*COMEXT_COLUMNS, "OBS_VALUE_raw"]
    assert parsed.source_version is None


@pytest.mark.parametrize("raw", ["n/a", ":", "1,5", "NaN", "inf", "12 3", "0x10", "1.2.3"])
def test_non_numeric_obs_value_does_not_crash_and_keeps_the_raw_text(raw: str):
    frame = parse_comext_csv(csv(ROW.replace(",1663789", f",{raw}" if "," not in raw else f',"{raw}"'))).frame
    assert frame.select("OBS_VALUE", "OBS_VALUE_raw").rows() == [(None, raw)]


@pytest.mark.parametrize(("raw", "value"), [("502.02", 502.02), ("-3", -3.0), ("1.5E3", 1500.0), (".5", 0.5),
                                            ("0.00", 0.0)])
def test_numeric_obs_value_spellings(raw: str, value: float):
    frame = parse_comext_csv(csv(ROW.replace(",1663789", f",{raw}"))).frame
    assert frame.get_column("OBS_VALUE").to_list() == [value]


def test_empty_obs_value_is_null_in_both_columns():
    frame = parse_comext_csv(csv(ROW.replace(",1663789", ","))).frame
    assert frame.select("OBS_VALUE", "OBS_VALUE_raw").rows() == [(None, None)]
    for blank in ('""', " ", '" "'):  # quoted empty, or blank: missing too, not a bad number
        frame = parse_comext_csv(csv(ROW.replace(",1663789", f",{blank}"), ROW)).frame
        assert frame.select("OBS_VALUE", "OBS_VALUE_raw").rows() == [(None, None), (1663789.0, "1663789")]


def test_a_quoted_empty_field_reads_as_an_unquoted_one():
    """polars reads an unquoted empty field as null but a quoted "" as the empty string: a quoted empty LAST
    UPDATE failed the parse ("'' is not dd/mm/yy HH:MM:SS") and lost the payload, where the same field unquoted
    loads (a row without a stamp). Quoting changes nothing now, in the parse and in the stream's scans."""
    from eujp.sources.comext_goods import SOURCE
    from eujp.stream import Stream

    stampless = ROW.replace("14/08/26 11:00:00", "").replace("2025-02", "2025-03")
    quoted = ",".join(f'"{f}"' for f in stampless.split(","))
    plain, both = parse_comext_csv(csv(ROW, stampless)), parse_comext_csv(csv(ROW, quoted))
    assert both.frame.equals(plain.frame) and both.source_version == plain.source_version == "2026-08-14T11:00:00"
    assert both.frame.get_column("LAST UPDATE").to_list() == ["14/08/26 11:00:00", None]
    from eujp.landing import RawPayload

    payload = RawPayload(source=SOURCE.name, name="q.csv", data=csv(ROW, quoted), url="file:///q.csv")
    scanned = Stream(SOURCE, [payload], pl.DataFrame(), 10)._scan(payload)
    assert scanned is not None and scanned[1] == "2026-08-14T11:00:00"


def test_a_complete_last_line_without_a_line_end_may_end_in_an_empty_field():
    """Not a cut-off download: the last line has its 10 fields, the last (or another) one empty."""
    for last, freq, value in ((ROW.replace(",1663789", ","), "M", None), (ROW.replace(",M,", ",,"), None, "1663789")):
        frame = parse_comext_csv(csv(ROW, last).removesuffix(b"\r\n")).frame
        assert frame.select("freq", "OBS_VALUE_raw").rows() == [("M", "1663789"), (freq, value)]


# --------------------------------------------------------------------------- malformed payloads


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", r"empty payload \(0 bytes\)"),
        (b"\r\n \n", r"empty payload"),
        (b"\n<html><head><title>413 EXTRACTION_TOO_BIG</title></head><body/></html>",
         r"HTML/XML page instead of CSV.*EXTRACTION_TOO_BIG"),
        (csv(ROW, header=HEADER.replace(",OBS_VALUE", "")), r"missing column\(s\) \['OBS_VALUE'\]"),
        (csv(ROW, header=HEADER.replace("TIME_PERIOD", "time_period")), r"missing column\(s\) \['TIME_PERIOD'\]"),
        (csv(ROW, header=HEADER.replace("flow", "reporter")), r"\['reporter'\] appear more than once"),
        (csv(ROW.replace("ESTAT:DS-045409(1.0)", "ESTAT:DS-059341(1.0)")),
         r"DATAFLOW \['ESTAT:DS-059341\(1.0\)'\] is not ESTAT:DS-045409"),
        (csv(ROW.replace("14/08/26 11:00:00", "2026-08-14T11:00")), r"LAST UPDATE '2026-08-14T11:00' is not dd/mm/yy"),
        (csv(ROW + ",extra"), r"malformed CSV"),
    ],
    ids=["empty", "blank lines", "html", "missing column", "renamed column", "repeated column", "other dataflow",
         "bad last update", "ragged line"],
)
def test_malformed_payload_raises_parse_error(payload: bytes, message: str):
    with pytest.raises(ParseError, match=message):
        parse_comext_csv(payload)


def test_last_update_of_each_payload_is_its_own_after_others_were_parsed():
    """The stamps' conversion is remembered across payloads (a release stamps all its payloads alike): a payload
    with the same good stamp and a bad one still fails on the bad one, at its line, the smallest of two bad
    ones named; the good one alone still parses, and the latest of two is the version."""
    good, later = "14/08/26 11:00:00", "15/08/26 09:30:00"
    assert parse_comext_csv(csv(ROW)).source_version == "2026-08-14T11:00:00"
    two_bad = csv(ROW, ROW.replace(good, "31/02/26 00:00:00"), ROW.replace(good, "2026-08-14"))
    with pytest.raises(ParseError, match=r"LAST UPDATE '2026-08-14' is not dd/mm/yy HH:MM:SS \(line 4\)"):
        parse_comext_csv(two_bad)
    with pytest.raises(ParseError, match=r"LAST UPDATE '31/02/26 00:00:00' is not .* \(line 3\)"):
        parse_comext_csv(csv(ROW, ROW.replace(good, "31/02/26 00:00:00")))
    assert parse_comext_csv(csv(ROW)).source_version == "2026-08-14T11:00:00"
    assert parse_comext_csv(csv(ROW, ROW.replace(good, later))).source_version == "2026-08-15T09:30:00"


def test_other_dataflows_are_named_sorted_with_a_missing_one_last():
    rows = [ROW.replace("ESTAT:DS-045409(1.0)", flow) for flow in ("ESTAT:DS-059341(1.0)", "", "ESTAT:DS-016890(1.0)")]
    with pytest.raises(ParseError, match=r"DATAFLOW \['ESTAT:DS-016890\(1.0\)', 'ESTAT:DS-059341\(1.0\)', None\] "
                                         r"is not ESTAT:DS-045409\(...\) \(first at line 2 column 1\)"):
        parse_comext_csv(csv(*rows))


def test_unknown_extra_column_is_schema_drift_naming_it():
    payload = csv(ROW + ",A", header=HEADER + ",OBS_FLAG")
    with pytest.raises(SchemaDriftError, match=r"unexpected new column\(s\) \['OBS_FLAG'\]"):
        parse_comext_csv(payload)


def test_invalid_utf8_is_reported_with_its_offset(de_jp: bytes):
    latin1 = de_jp.replace(b"ESTAT:DS-045409(1.0),14/08/26 11:00:00,M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-03",
                           b"ESTAT:DS-045409(1.0),14/08/26 11:00:00,M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-03\xe9")
    offset = latin1.index(b"\xe9")
    column = offset - latin1.rindex(b"\n", 0, offset)
    with pytest.raises(ParseError, match=rf"not valid UTF-8 \(wrong encoding\?\): byte b'\\xe9' at line 7 column "
                                         rf"{column} \(offset {offset}\)") as caught:
        parse_comext_csv(latin1)
    assert (caught.value.line, caught.value.column) == (7, column) == (7, 81)


def test_utf16_payload_is_named(de_jp: bytes):
    with pytest.raises(ParseError, match=r"UTF-16"):
        parse_comext_csv(de_jp.decode().encode("utf-16"))


def test_cut_off_download_is_reported_as_truncated(de_jp: bytes):
    cut = de_jp[: de_jp.rindex(b"VALUE_IN_EUROS") + 3]  # "...,1,VAL" with no line end
    last = cut[cut.rindex(b"\n") + 1:]
    assert cut.count(b"\n") + 1 == 7 and len(last) == 61
    with pytest.raises(ParseError, match=r"looks truncated at line 7 column 62: the line ends after 8 of 10 fields "
                                         r"\(in 'indicators', missing from 'TIME_PERIOD' on\) with no line end") as e:
        parse_comext_csv(cut)
    assert (e.value.line, e.value.column) == (7, 62)


# ------------------------------------------------- records that are not one line of the header's fields

def without(field: int, line: str = ROW) -> str:
    """`line` with its field `field` (0-based) taken out."""
    parts = line.split(",")
    return ",".join(parts[:field] + parts[field + 1:])


@pytest.mark.parametrize("quoted", [False, True], ids=["plain", "quoted"])
@pytest.mark.parametrize("field", [2, 9], ids=["freq-missing", "obs-value-missing"])
def test_a_line_with_a_field_missing_is_refused_naming_it_not_read_into_the_wrong_columns(field, quoted):
    """polars pads a short line with nulls: without the check, a line without `freq` loaded its reporter as the
    frequency, its figure as the period (rejected as another indicator), and one without OBS_VALUE read as a
    missing value. Found anywhere in the payload, plain or with quoted fields (Python's csv module counts
    those); a line whose last field is present but empty is not short."""
    rows = [ROW, ROW.replace("2025-02", "2025-03"), without(field, ROW.replace("2025-02", "2025-04")),
            ROW.replace("2025-02", "2025-05")]
    if quoted:
        rows = [",".join(f'"{v}"' for v in r.split(",")) for r in rows]
    with pytest.raises(ParseError, match=r"malformed CSV at line 4: 9 field\(s\) where the header has 10 \(a "
                                         r"field missing") as caught:
        parse_comext_csv(csv(*rows))
    assert caught.value.line == 4
    empty_last = ROW.rsplit(",", 1)[0] + ","  # the figure empty, its field there: a missing value, not a short line
    frame = parse_comext_csv(csv(ROW, empty_last, "", ROW.replace("2025-02", "2025-05"))).frame
    assert frame.height == 3 and frame.get_column("OBS_VALUE_raw").to_list() == ["1663789", None, "1663789"]


def _fields(line: str) -> int:
    import csv as stdlib_csv

    return len(next(stdlib_csv.reader([line])))


@settings(max_examples=150)
@given(st.lists(st.tuples(st.sampled_from(["whole", "empty-last", "short", "comma-inside", "blank"]),
                          st.integers(0, 8)), min_size=1, max_size=30))
def test_quoted_records_are_whole_or_refused_at_the_first_short_line_as_pythons_csv_counts(lines):
    """Every field quoted; a DATAFLOW holding commas inside its quotes (no field's end), empty figures, blank
    lines and lines with a field missing, in any mix: the payload parses when every line is whole, and is refused
    at the first short line otherwise, as Python's csv module counts the fields (the check counts the commas that
    end a field: all but those inside quotes, which the values read hold)."""
    def quoted(row: str, inside: bool) -> str:
        values = row.split(",")
        if inside:
            values[0] = values[0].replace("(1.0", "(1.0, with, commas")
        return ",".join(f'"{v}"' for v in values)

    rows, first_short = [], None
    for k, (kind, field) in enumerate(lines):
        row = ROW.replace("2025-02", f"{2000 + k}-02")
        text = {"whole": quoted(row, False), "empty-last": quoted(row, False).rsplit(",", 1)[0] + ",",
                "short": quoted(without(field + 1, row), field % 2 == 0), "comma-inside": quoted(row, True),
                "blank": ""}[kind]
        rows.append(text)
        if kind == "short" and first_short is None:
            assert _fields(text) == 9
            first_short = k + 2
    payload = csv(*rows)
    if first_short is None:
        frame = parse_comext_csv(payload).frame
        assert frame.height == sum(kind != "blank" for kind, _ in lines)
    else:
        with pytest.raises(ParseError, match=rf"malformed CSV at line {first_short}: 9 field\(s\) where the header "
                                             "has 10") as caught:
            parse_comext_csv(payload)
        assert caught.value.line == first_short


def test_a_stray_quote_that_reads_the_next_line_into_a_field_is_refused_naming_its_line():
    """A field opened with a quote that closes on a later line: polars read the line after it into the field
    (four lines came out as three rows, a figure lost into a DATAFLOW value that still began with
    ESTAT:DS-045409(); an unclosed one read to the end. Both are named by line."""
    stray = csv(ROW, '"' + ROW, '"' + ROW.replace("2025-02", "2025-03"), ROW.replace("2025-02", "2025-04"))
    with pytest.raises(ParseError, match=r"malformed CSV at line 3: a quoted field runs over the line end, to line "
                                         r"4 \(a stray or unclosed quote") as caught:
        parse_comext_csv(stray)
    assert caught.value.line == 3
    unclosed = csv(ROW, ROW.replace(",1663789", ',"1663789'), ROW.replace("2025-02", "2025-04"))
    with pytest.raises(ParseError, match=r"at line 3") as caught:
        parse_comext_csv(unclosed)
    assert caught.value.line == 3


def test_a_bad_dataflow_after_a_blank_line_is_named_at_its_own_line():
    with pytest.raises(ParseError, match=r"DATAFLOW \['ESTAT:DS-999'\] is not .* \(first at line 5 column 1\)"):
        parse_comext_csv(csv(ROW, "", ROW, ROW.replace("ESTAT:DS-045409(1.0)", "ESTAT:DS-999")))


@pytest.mark.parametrize("pack", ["gzip", "zip"])
def test_a_compressed_payload_is_named_as_such(de_jp: bytes, pack: str):
    import gzip
    import io
    import zipfile

    if pack == "gzip":
        data = gzip.compress(de_jp)
    else:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("data.csv", de_jp)
        data = buffer.getvalue()
    with pytest.raises(ParseError, match=rf"payload is {'gzip-compressed' if pack == 'gzip' else 'a zip archive'}, "
                                         r"not CSV: unpack it first"):
        parse_comext_csv(data)
