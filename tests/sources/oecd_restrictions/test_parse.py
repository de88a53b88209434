"""The OECD SDMX-CSV parser (export restrictions)."""

from __future__ import annotations

import polars as pl
import pytest

from eujp.errors import ParseError, SchemaDriftError
from eujp.parse.oecd import OUTPUT_COLUMNS, parse_oecd_csv, repair_mojibake

OECD_HEADER = ("STRUCTURE,STRUCTURE_ID,STRUCTURE_NAME,ACTION,REF_AREA,Reference area,COMMODITY,Commodity,"
               "POLICY_TYPE,Policy type,POLICY_VARIATION,Policy variation,POLICY_DESCRIPTION,Policy description,"
               "TIME_PERIOD,Time period,OBS_VALUE,Observation value")
_PREFIX = "DATAFLOW,OECD.TAD.ADM:DSD_QDD_TAD_EXP_RESTRIC@DF_QDD_TAD_EXP_RESTRIC(3.0),Export restrictions,I"


def _oecd_row(attr: str, value: str, area: str = "CHN", commodity: str = "HS07_280530") -> str:
    return (f'{_PREFIX},{area},China,{commodity},"Rare-earth metals, scandium and yttrium",M1,Export tax,'
            f'1,Variation 1,{attr},Attribute,2024,,{value},')


def _oecd(*rows: str, header: str = OECD_HEADER) -> bytes:
    return ("\r\n".join([header, *rows]) + "\r\n").encode("utf-8")


def test_oecd_rows_and_columns():
    parsed = parse_oecd_csv(_oecd(_oecd_row("VAL", "25"), _oecd_row("DATI", "01/05/2015"),
                                  _oecd_row("NOD", '"Decree No. 1, art. 2"')))
    assert parsed.frame.columns == list(OUTPUT_COLUMNS)
    assert set(parsed.frame.dtypes) == {pl.String}
    assert parsed.frame.height == 3
    first = parsed.frame.row(0, named=True)
    assert first == {
        "REF_AREA": "CHN", "COMMODITY": "HS07_280530", "POLICY_TYPE": "M1", "POLICY_VARIATION": "1",
        "POLICY_DESCRIPTION": "VAL", "TIME_PERIOD": "2024", "OBS_VALUE": "25",
        "commodity_label": "Rare-earth metals, scandium and yttrium", "policy_type_label": "Export tax",
    }
    assert parsed.frame["OBS_VALUE"].to_list() == ["25", "01/05/2015", "Decree No. 1, art. 2"]
    assert parsed.source_version is None
    assert parsed.meta["structure_ids"] == ["OECD.TAD.ADM:DSD_QDD_TAD_EXP_RESTRIC@DF_QDD_TAD_EXP_RESTRIC(3.0)"]


def test_oecd_without_labels_gives_null_label_columns():
    header = "REF_AREA,COMMODITY,POLICY_TYPE,POLICY_VARIATION,POLICY_DESCRIPTION,TIME_PERIOD,OBS_VALUE,OBS_STATUS"
    parsed = parse_oecd_csv(_oecd("IDN,HS07_260400,M4,2,VAL,2020,,A", header=header))
    assert parsed.frame.columns == list(OUTPUT_COLUMNS)
    assert parsed.frame.row(0, named=True)["commodity_label"] is None
    assert parsed.frame.row(0, named=True)["REF_AREA"] == "IDN"
    assert parsed.meta["labels_present"] == []


def test_oecd_unknown_column_is_named():
    header = OECD_HEADER + ",CONFIDENTIALITY"
    with pytest.raises(SchemaDriftError, match=r"unknown \['CONFIDENTIALITY'\]"):
        parse_oecd_csv(_oecd(_oecd_row("VAL", "1") + ",C", header=header))


def test_oecd_missing_code_column_is_named():
    header = OECD_HEADER.replace("POLICY_VARIATION,", "")
    with pytest.raises(SchemaDriftError, match=r"missing \['POLICY_VARIATION'\]"):
        parse_oecd_csv(_oecd(header=header))


@pytest.mark.parametrize("data", [b"", b"\r\n  \n"])
def test_oecd_empty_body(data):
    with pytest.raises(ParseError, match="empty payload"):
        parse_oecd_csv(data)


@pytest.mark.parametrize("body", [
    b"<!DOCTYPE html>\n<html><head><title>Service Unavailable</title></head></html>",
    b'<?xml version="1.0"?><message:Error><common:Text>NoRecordsFound</common:Text></message:Error>',
])
def test_oecd_html_or_xml_error_page(body):
    with pytest.raises(ParseError, match="HTML/XML"):
        parse_oecd_csv(body)


def test_oecd_plain_text_is_not_drift():
    with pytest.raises(ParseError, match="none of the SDMX code columns") as info:
        parse_oecd_csv(b"No results found.\n")
    assert not isinstance(info.value, SchemaDriftError)


def test_oecd_invalid_utf8_names_its_line_and_column():
    data = _oecd(_oecd_row("NOD", "D\xe9cret")).replace("Décret".encode(), b"D\xe9cret")
    line = data[:data.index(b"D\xe9cret")].count(b"\n") + 1
    column = data.index(b"D\xe9cret") - data.rfind(b"\n", 0, data.index(b"D\xe9cret")) + 1
    with pytest.raises(ParseError, match=rf"not valid UTF-8 .* at line {line} column {column}$") as info:
        parse_oecd_csv(data)
    assert (info.value.line, info.value.column) == (line, column) and line > 1


def test_oecd_repairs_mojibake_in_values_and_labels():
    row = _oecd_row("NOD", "Peoplei\ufffd\u20ac\u2122s Congress Di\ufffd\u00a9cret ni\ufffd\u00b0 5")
    row = row.replace("Export tax", "Export taxi\ufffd\u20ac\u2122")
    parsed = parse_oecd_csv(_oecd(row, _oecd_row("ADD", "still broken \ufffd here")))
    assert parsed.frame["OBS_VALUE"].to_list() == ["People’s Congress Décret n° 5", "still broken \ufffd here"]
    assert parsed.frame["policy_type_label"][0] == "Export tax’"
    assert parsed.meta["rows_with_replacement_char"] == 1


def test_blank_lines_are_skipped_and_a_blank_line_inside_a_quoted_field_is_kept():
    """A blank line between records or at the end holds no record (polars 2.1 read it as a row of nulls, which
    the transform rejected as an empty attribute); one inside a quoted field is the field's text."""
    rows = [_oecd_row("VAL", "25"), _oecd_row("NOD", '"Decree No. 1,\r\n\r\nart. 2"')]
    plain = parse_oecd_csv(_oecd(*rows))
    blank = parse_oecd_csv(_oecd(rows[0], "", rows[1]) + b"\r\n\n")
    assert blank.frame.equals(plain.frame) and plain.frame.height == 2
    assert plain.frame["OBS_VALUE"].to_list() == ["25", "Decree No. 1,\r\n\r\nart. 2"]


@pytest.mark.parametrize(("broken", "fixed"), [
    ("Peoplei\ufffd\u20ac\u2122s Republic", "People’s Republic"),
    ("Minist\ufffd\u20ac\u2122s", "Minist’s"),
    ("Di\ufffd\u00a9cret", "Décret"),
    ("Cri\ufffd\u00a8me", "Crème"),
    ("Ci\ufffd\u00b4te d'Ivoire", "Côte d'Ivoire"),
    ("Lei ni\ufffd\u00b0 31/11", "Lei n° 31/11"),
    ("Decreto n.i\ufffd\u00ba 4/24", "Decreto n.º 4/24"),
    # after n, º is the ordinal sign unless a letter follows: then ú (C3 BA), as in "número"
    ("Ley ni\ufffd\u00bamero 1234, Ni\ufffd\u00bamero, Anni\ufffd\u00bancio, Decreto Ni\ufffd\u00ba 12",
     "Ley número 1234, Número, Annúncio, Decreto Nº 12"),
    ("Lei ni\ufffd  31/11", "Lei n°  31/11"),
    # a continuation byte both lead bytes make into text (C2 a sign, C3 a letter): read by its neighbours
    ("Di\ufffd\u00a9cret i\ufffd\u00abrelatif auxi\ufffd\u00bb", "Décret «relatif aux»"),
    ("Art. 1i\ufffd\u00ba, i\ufffd\u00a7 12, 45i\ufffd\u00b0C, i\ufffd\u00b15%, 1i\ufffd\u00aa",
     "Art. 1º, § 12, 45°C, ±5%, 1ª"),
    (("Espai\ufffd\u00b1a, Liceni\ufffd\u00a7a, Citroi\ufffd\u00abn, coi\ufffd\u00bbt, Peri\ufffd\u00ba, "
      "i\ufffd\u00baltimo, fori\ufffd\u00aat"),
     "España, Licença, Citroën, coût, Perú, último, forêt"),
    # the capitals À..ß (C3 80..9F): their continuation bytes as cp1252 reads them, beside E2 80 xx's three
    ("i\ufffd\u2030tat, i\ufffd\u2021A, Ni\ufffd\u2018LE, i\ufffd\u20acs, ai\ufffd\u2019b, i\ufffd\u0178",
     "État, ÇA, NÑLE, Às, aÒb, ß"),
    ("Coni\ufffd\u20ac\u00a6 i\ufffd\u20ac\u00a2 5i\ufffd\u20ac\u00b0",
     "Con\u2026 \u2022 5\u2030"),
    ("plain text, no damage: n° é ’", "plain text, no damage: n° é ’"),
    ("", ""),
    (None, None),
])
def test_repair_mojibake(broken, fixed):
    out = pl.select(repair_mojibake(pl.lit(pl.Series([broken], dtype=pl.String)))).to_series()
    assert out.to_list() == [fixed]
