"""SIPRI trade register parser: the real register and Japan subset, then malformed payloads."""

from __future__ import annotations

import hashlib
import time

import polars as pl
import pytest

from eujp.errors import ParseError, SchemaDriftError
from eujp.parse.sipri import (
    LINE_COLUMN,
    OUTPUT_COLUMNS,
    REGISTER_COLUMN,
    parse_generated,
    parse_sipri_register,
)

FULL = "defence/sipri_trade_register_all_2025-03-13.csv"
JAPAN = "defence/sipri_trade_register_japan_subset.csv"
HEADER = ("Recipient,Supplier,Year of order, ,Number ordered, ,Weapon designation,Weapon description,"
          "Number delivered, ,Year(s) of delivery,status,Comments,SIPRI TIV per unit,SIPRI TIV for total order,"
          "SIPRI TIV of delivered weapons")
ROW_BRAZIL = "Brazil,Japan,1953,?,4,,Barroso Pereira,transport ship,4,,1955; 1956; 1957,New,,38,152,152"
ROW_CAMBODIA = ("Cambodia,Japan,1954,,7,,FD-25 Defender,ground-attack aircraft,7,,1954,New,"
                "Incl 3 FD-25B trainer version,0.22,1.54,1.54")
PREAMBLE = "Source: SIPRI Arms Transfers Database (c) SIPRI.\r\nData generated: 13 Mar 2025 10:02:49 AM\r\n"


def _payload(*rows: str, header: str = HEADER, preamble: str = PREAMBLE, encoding: str = "latin-1") -> bytes:
    return (preamble + "\r\n".join([header, *rows]) + "\r\n").encode(encoding)


@pytest.fixture(scope="module")
def japan_bytes(shared_data) -> bytes:
    return (shared_data / JAPAN).read_bytes()


@pytest.fixture(scope="module")
def japan(japan_bytes):
    return parse_sipri_register(japan_bytes)


# --- real files -------------------------------------------------------------------------------------------


def test_full_register_records_and_version(shared_data):
    data = (shared_data / FULL).read_bytes()
    started = time.perf_counter()
    parsed = parse_sipri_register(data)
    elapsed = time.perf_counter() - started

    # 29,519 physical lines follow the header (SOURCES.md counts those); four records have an unquoted line break
    # inside Comments and continue on the next line, so the register holds 29,515 records.
    assert data.count(b"\n") - 12 == 29_519
    assert parsed.frame.height == 29_515
    assert parsed.meta["joined_broken_lines"] == [5432, 21488, 25178, 27955]
    assert parsed.source_version == "2025-03-13T10:02:49"
    assert parsed.meta["encoding"] == "latin-1"
    assert parsed.frame.columns == [*OUTPUT_COLUMNS, LINE_COLUMN, REGISTER_COLUMN]
    assert set(parsed.frame.drop(LINE_COLUMN).dtypes) == {pl.String}
    assert parsed.frame[REGISTER_COLUMN].unique().to_list() == [hashlib.sha1(data).hexdigest()[:16]]
    assert parsed.frame[LINE_COLUMN].dtype == pl.Int64 and parsed.frame[LINE_COLUMN][0] == 13  # the header's line is 12
    assert parsed.frame[LINE_COLUMN].is_sorted() and parsed.frame.filter(pl.col(LINE_COLUMN) == 5432).height == 1
    assert elapsed < 5, f"parsing the full register took {elapsed:.1f}s"


def test_full_register_repaired_record_and_latin1_text(shared_data):
    data = (shared_data / FULL).read_bytes()
    frame = parse_sipri_register(data).frame
    btr = frame.filter((pl.col("recipient") == "Thailand") & (pl.col("weapon_designation") == "BTR-3")
                       & (pl.col("year_of_order") == "2008") & (pl.col("number_ordered") == "14"))  # lines 25178-9
    assert btr.height == 1
    row = btr.row(0, named=True)
    assert row["comments"].rstrip().endswith("redesign for other engines")
    assert (row["tiv_per_unit"], row["tiv_total_order"], row["tiv_delivered"]) == ("0.25", "3.5", "3.25")
    # latin-1 0xFC decoded as 'ü': as many rows as raw lines holding those bytes
    in_file = data.count(b",B\xfc-181 Bestmann,")
    assert in_file > 0
    assert frame.filter(pl.col("weapon_designation") == "Bü-181 Bestmann").height == in_file


def test_japan_subset_rows_and_version(japan):
    assert japan.frame.height == 455
    assert japan.source_version == "2025-03-13T10:02:49"
    assert japan.meta["header_line"] == 12
    assert japan.meta["joined_broken_lines"] == []


def test_japan_subset_row_traced_to_file(japan, japan_bytes):
    rows = japan.frame.filter(
        (pl.col("recipient") == "Brazil") & (pl.col("supplier") == "Japan") & (pl.col("year_of_order") == "1953")
    ).to_dicts()
    assert rows == [{
        "recipient": "Brazil", "supplier": "Japan", "year_of_order": "1953", "year_of_order_flag": "?",
        "number_ordered": "4", "number_ordered_flag": None, "weapon_designation": "Barroso Pereira",
        "weapon_description": "transport ship", "number_delivered": "4", "number_delivered_flag": None,
        "delivery_years": "1955; 1956; 1957", "status": "New", "comments": None, "tiv_per_unit": "38",
        "tiv_total_order": "152", "tiv_delivered": "152", LINE_COLUMN: rows[0][LINE_COLUMN],
        REGISTER_COLUMN: rows[0][REGISTER_COLUMN],
    }]
    line = japan_bytes.decode("latin-1").split("\n")[rows[0][LINE_COLUMN] - 1]  # the record's line in the file
    assert line.startswith("Brazil,Japan,1953,?,4,,Barroso Pereira,transport ship,")


def test_japan_subset_suppliers_to_japan_match_sources_md(japan):
    counts = dict(
        japan.frame.filter(pl.col("recipient") == "Japan").group_by("supplier").len().iter_rows()
    )
    expected = {"United States": 362, "United Kingdom": 18, "France": 10, "Germany": 5, "Italy": 4,
                "Sweden": 4, "Netherlands": 1, "Finland": 1}
    assert {k: counts.get(k) for k in expected} == expected


def test_header_found_by_content_not_line_count(japan_bytes, japan):
    text = japan_bytes.decode("latin-1")
    shorter = "Data generated: 13 Mar 2025 10:02:49 AM\r\n" + text[text.index("Recipient,Supplier"):]
    parsed = parse_sipri_register(shorter.encode("latin-1"))
    assert parsed.meta["header_line"] == 2
    assert parsed.source_version == "2025-03-13T10:02:49"
    assert parsed.frame.drop(LINE_COLUMN, REGISTER_COLUMN).equals(japan.frame.drop(LINE_COLUMN, REGISTER_COLUMN))
    offset = japan.meta["header_line"] - parsed.meta["header_line"]  # the lines follow the header's
    assert (japan.frame[LINE_COLUMN] - parsed.frame[LINE_COLUMN]).unique().to_list() == [offset]


def test_utf8_resaved_file_reads_the_same(japan_bytes, japan):
    text = japan_bytes.decode("latin-1") + "Germany,France,2001,,1,,Wärtsilä test,ship engine,1,,2002,New,,1,1,1\r\n"
    latin = parse_sipri_register(text.encode("latin-1")).frame
    for data, encoding in ((text.encode("utf-8"), "utf-8"), (b"\xef\xbb\xbf" + text.encode("utf-8"), "utf-8-sig")):
        parsed = parse_sipri_register(data)
        assert parsed.meta["encoding"] == encoding
        assert parsed.frame.drop(REGISTER_COLUMN).equals(latin.drop(REGISTER_COLUMN))  # other bytes, other digest
    assert latin["weapon_designation"][-1] == "Wärtsilä test"


def test_quoted_comment_with_comma_and_lf_line_endings():
    data = _payload(ROW_BRAZIL, 'Cambodia,Japan,1954,,7,,FD-25,aircraft,7,,1954,New,"Incl 3, trainers",1,7,7')
    parsed = parse_sipri_register(data.replace(b"\r\n", b"\n"))
    assert parsed.frame["comments"].to_list() == [None, "Incl 3, trainers"]
    assert parsed.frame["tiv_total_order"].to_list() == ["152", "7"]


def test_cr_only_line_ends_read_the_same(japan_bytes, japan):
    """A register saved with CR-only line ends (classic Mac OS) read as Python's universal newlines read it:
    the same records on the same lines (it was read as one line: "header changed: missing 'Recipient' ...")."""
    assert b"\r\n" in japan_bytes
    parsed = parse_sipri_register(japan_bytes.replace(b"\r\n", b"\r"))
    assert parsed.source_version == japan.source_version == "2025-03-13T10:02:49"
    assert parsed.frame.drop(REGISTER_COLUMN).equals(japan.frame.drop(REGISTER_COLUMN))  # other bytes, other digest
    quoted = _payload(ROW_BRAZIL, 'Cambodia,Japan,1954,,7,,FD-25,aircraft,7,,1954,New,"Incl 3\r\ntrainers",1,7,7')
    parsed = parse_sipri_register(quoted.replace(b"\r\n", b"\r"))
    assert parsed.frame["comments"].to_list() == [None, "Incl 3\ntrainers"]
    assert parsed.frame[LINE_COLUMN].to_list() == [4, 5]


def test_no_data_generated_line_gives_no_version():
    parsed = parse_sipri_register(_payload(ROW_BRAZIL, preamble="Some note\r\n"))
    assert parsed.source_version is None
    assert parsed.meta["source_version_found"] is False
    assert parsed.frame.height == 1


def test_parse_generated_variants():
    assert parse_generated("Data generated: 13 Mar 2025 10:02:49 AM") == "2025-03-13T10:02:49"
    assert parse_generated("Data generated: 1 Dec 2024 12:05:00 PM") == "2024-12-01T12:05:00"
    assert parse_generated("Data generated: 1 Dec 2024 12:05:00 AM") == "2024-12-01T00:05:00"
    assert parse_generated("Data generated: 2 Jan 2025 17:30:00") == "2025-01-02T17:30:00"
    assert parse_generated("Source: SIPRI") is None
    # as a spreadsheet re-saves it: quoted, or padded with empty fields to the header's
    assert parse_generated('"Data generated: 13 Mar 2025 10:02:49 AM"') == "2025-03-13T10:02:49"
    assert parse_generated("Data generated: 13 Mar 2025 10:02:49 AM,,,,,,,,,,,,,,,") == "2025-03-13T10:02:49"


def test_a_register_re_saved_with_every_field_quoted_keeps_its_version():
    """A fully quoted re-save: the stamp line is quoted too, and was not recognised (no version: the register
    ranked as older than every stamped one)."""
    def quoted(line: str) -> str:
        return ",".join(f'"{v}"' for v in line.split(","))

    preamble = '"Source: SIPRI Arms Transfers Database (c) SIPRI."\r\n"Data generated: 13 Mar 2025 10:02:49 AM"\r\n'
    parsed = parse_sipri_register(_payload(quoted(ROW_BRAZIL), header=quoted(HEADER), preamble=preamble))
    assert parsed.source_version == "2025-03-13T10:02:49" and parsed.frame.height == 1


# --- malformed payloads -----------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"  \r\n \n"])
def test_empty_body(data):
    with pytest.raises(ParseError, match="empty payload"):
        parse_sipri_register(data)


def test_utf16_payload_is_rejected(japan_bytes):
    with pytest.raises(ParseError, match="NUL bytes"):
        parse_sipri_register(japan_bytes.decode("latin-1").encode("utf-16"))


def test_html_page_is_rejected():
    with pytest.raises(ParseError, match="HTML"):
        parse_sipri_register(b"<!DOCTYPE html><html><body>Service unavailable</body></html>")


def test_garbage_without_header_is_rejected():
    with pytest.raises(ParseError, match="no header line found") as info:
        parse_sipri_register(bytes(range(1, 256)) * 3)
    assert not isinstance(info.value, SchemaDriftError)


def test_invalid_utf8_after_bom_is_rejected():
    with pytest.raises(ParseError, match="UTF-8 BOM"):
        parse_sipri_register(b"\xef\xbb\xbf" + _payload(ROW_BRAZIL).replace(b"Barroso", b"B\xfcrroso"))


def test_missing_column_is_named():
    header = HEADER.replace(",Weapon description", "")
    row = ROW_BRAZIL.replace(",transport ship", "")
    with pytest.raises(SchemaDriftError, match="missing 'Weapon description'"):
        parse_sipri_register(_payload(row, header=header))


def test_renamed_column_is_named():
    header = HEADER.replace("SIPRI TIV per unit", "TIV per unit")
    with pytest.raises(SchemaDriftError) as info:
        parse_sipri_register(_payload(ROW_BRAZIL, header=header))
    assert "missing 'SIPRI TIV per unit'" in str(info.value)
    assert "unexpected 'TIV per unit'" in str(info.value)


def test_missing_flag_column_is_named():
    header = HEADER.replace("Number ordered, ,", "Number ordered,")
    row = ROW_BRAZIL.replace("1953,?,4,,", "1953,?,4,")
    with pytest.raises(SchemaDriftError, match="blank '\\?' flag column after 'Number ordered'"):
        parse_sipri_register(_payload(row, header=header))


def test_drifted_first_column_still_reported_as_drift():
    header = HEADER.replace("Recipient,", "Buyer,")
    with pytest.raises(SchemaDriftError, match="missing 'Recipient'.*unexpected 'Buyer'"):
        parse_sipri_register(_payload(ROW_BRAZIL, header=header))


def test_ragged_line_that_cannot_be_joined_names_its_line():
    truncated = ROW_CAMBODIA.rsplit(",", 2)[0]  # two fields short, next line does not complete it
    with pytest.raises(ParseError, match=r"line 5 \(14 fields\)"):
        parse_sipri_register(_payload(ROW_BRAZIL, truncated, ROW_BRAZIL))


def test_a_stray_double_quote_is_named_not_read_as_a_quoted_field_swallowing_the_next_record():
    """The export quotes no field: a record with an unpaired '"' (an unclosed quote in Comments, an inch mark)
    read as the start of a quoted field took the next record into its comments (two records read as one, the
    first one's figures lost); it is a ParseError naming the line."""
    unclosed = 'Japan,United States,2019,,6,,F-35A,FGA aircraft,6,,2020,New,"Peace deal; ordered via FMS,80,480,480'
    closing = 'Germany,France,2019,,10,,Exocet,anti-ship missile,10,,2020,New,Exocet batch",1.5,15,15'
    with pytest.raises(ParseError, match=r'2 line\(s\) hold the header\'s 16 fields and an unpaired double quote.*'
                                         r"line 5: 'Japan,United States"):
        parse_sipri_register(_payload(ROW_BRAZIL, unclosed, closing))


def test_inch_marks_inside_fields_are_characters_not_quotes():
    """A '"' opens a quoted field only at a field's start (RFC 4180, as Python's csv module reads it): inch
    marks inside two fields of one record (between them, read as a quoted field, they would hide its commas)."""
    inch = 'Japan,United States,1960,,2,,Mk-42 5" gun,naval gun,2,,1961,New,with 12" shells,1,2,2'
    parsed = parse_sipri_register(_payload(inch, ROW_BRAZIL))
    assert parsed.frame["weapon_designation"].to_list() == ['Mk-42 5" gun', "Barroso Pereira"]
    assert parsed.frame["comments"].to_list() == ['with 12" shells', None]
    assert parsed.frame["tiv_delivered"].to_list() == ["2", "152"]


def test_quoted_fields_over_several_lines_keep_their_commas_breaks_and_blank_lines():
    """A spreadsheet's re-save quotes a Comments field holding commas and line breaks, blank lines included:
    read whole (the first line of one of them holds 16 fields if its quote were a character)."""
    rows = ['Cambodia,Japan,1954,,7,,FD-25,aircraft,7,,1954,New,"a\r\nb\r\nc",1,7,7',
            'Cambodia,Japan,1955,,7,,FD-25,aircraft,7,,1955,New,"a, b, c, d\r\ne",1,7,7',
            'Cambodia,Japan,1956,,7,,FD-25,aircraft,7,,1956,New,"para1\r\n\r\npara2",1,7,7']
    parsed = parse_sipri_register(_payload(ROW_BRAZIL, *rows))
    assert parsed.frame["comments"].to_list() == [None, "a\nb\nc", "a, b, c, d\ne", "para1\n\npara2"]
    assert parsed.frame["year_of_order"].to_list() == ["1953", "1954", "1955", "1956"]
    assert parsed.meta["joined_broken_lines"] == []


def test_windows_1252_quotes_and_dashes_are_read_as_such_not_as_control_characters():
    row = ROW_BRAZIL.replace(",New,,", ",New,Navy’s 1st batch – ex-stock,")
    parsed = parse_sipri_register(_payload(row, encoding="cp1252"))
    assert parsed.meta["encoding"] == "cp1252"
    assert parsed.frame["comments"].to_list() == ["Navy’s 1st batch – ex-stock"]
    latin = parse_sipri_register(_payload(ROW_BRAZIL.replace("Barroso", "Barroso Peçanha")))
    assert latin.meta["encoding"] == "latin-1" and "Peçanha" in latin.frame["weapon_designation"][0]


def test_broken_records_in_a_row_are_each_joined():
    """Two records after one another, each broken in its Comments: the continuation of the first and the
    head of the second also add up to 16 fields, but the first pairs with its own continuation first."""
    broken = [line for row in (ROW_CAMBODIA, ROW_CAMBODIA.replace("1954,,7", "1955,,8"))
              for line in row.replace("Incl 3 FD-25B", "Incl 3\r\nFD-25B").split("\r\n")]
    parsed = parse_sipri_register(_payload(ROW_BRAZIL, *broken, ROW_BRAZIL))
    assert parsed.meta["joined_broken_lines"] == [5, 7]
    assert parsed.frame["comments"].to_list() == [None, "Incl 3 FD-25B trainer version",
                                                  "Incl 3 FD-25B trainer version", None]
    assert parsed.frame["number_ordered"].to_list() == ["4", "7", "8", "4"]
    three = ROW_CAMBODIA.replace("Incl 3 FD-25B trainer", "Incl 3\r\nFD-25B\r\ntrainer").split("\r\n")
    parsed = parse_sipri_register(_payload(*three))  # a record broken twice: its three lines joined
    assert parsed.frame["comments"].to_list() == ["Incl 3 FD-25B trainer version"]


def test_broken_record_is_joined():
    head, tail = ROW_CAMBODIA.split(",0.22,")
    parsed = parse_sipri_register(_payload(ROW_BRAZIL, head, ",0.22," + tail))
    assert parsed.frame.height == 2
    assert parsed.meta["joined_broken_lines"] == [5]  # 2 preamble lines, header, Brazil, then the broken one
    assert parsed.frame.row(1, named=True)["tiv_per_unit"] == "0.22"
    assert parsed.frame.row(1, named=True)["comments"].strip() == "Incl 3 FD-25B trainer version"


def test_a_short_line_between_records_is_named_not_joined_to_the_record_after_it():
    """A one-field line between two records (a note pasted in): the record after it is whole, so it is not the
    note's continuation; before, it was joined to it, and loaded with the note before its recipient. A line
    of commas only is blank."""
    with pytest.raises(ParseError, match=r"1 line\(s\) do not have the header's 16 fields: line 5 \(1 fields\)"):
        parse_sipri_register(_payload(ROW_BRAZIL, "Information from the SIPRI Arms Transfers Database",
                                      ROW_CAMBODIA))
    parsed = parse_sipri_register(_payload(ROW_BRAZIL, "," * 15, ROW_CAMBODIA))
    assert parsed.frame["recipient"].to_list() == ["Brazil", "Cambodia"]


def test_unreadable_data_generated_line():
    with pytest.raises(ParseError, match="unreadable 'Data generated'"):
        parse_sipri_register(_payload(ROW_BRAZIL, preamble="Data generated: yesterday\r\n"))
