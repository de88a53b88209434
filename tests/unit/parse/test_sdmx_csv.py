"""The generic SDMX-CSV reader (eujp.parse.sdmx_csv.parse_sdmx_csv) shared by the SDMX-CSV sources; each
source's own parser is tested in its folder (tests/sources/<source>/test_parse.py)."""

from __future__ import annotations

import polars as pl
import pytest

from eujp.errors import ParseError, SchemaDriftError
from eujp.parse.sdmx_csv import parse_sdmx_csv


def test_generic_reader_keeps_extra_columns_as_strings_when_drift_is_not_checked():
    frame = parse_sdmx_csv(b"A,B,C\n1,x,\n2,y,3\n", ["A", "B"])
    assert frame.columns == ["A", "B", "C"]
    assert frame.schema == pl.Schema({"A": pl.String, "B": pl.String, "C": pl.String})
    assert frame.rows() == [("1", "x", None), ("2", "y", "3")]


def test_generic_reader_allows_listed_extras_and_names_others():
    assert parse_sdmx_csv(b"A,B\n1,2\n", ["A"], allowed_extra=["B"]).height == 1
    with pytest.raises(SchemaDriftError, match=r"OECD: unexpected new column\(s\) \['C', 'D'\]"):
        parse_sdmx_csv(b"A,C,D\n1,2,3\n", ["A"], allowed_extra=["B"], what="OECD")
    with pytest.raises(ParseError, match=r"OECD: missing column\(s\) \['B'\]; header is \['A', 'C'\]"):
        parse_sdmx_csv(b"A,C\n1,2\n", ["A", "B"], what="OECD")


def test_generic_reader_handles_quoted_fields_with_commas():
    frame = parse_sdmx_csv(b'"A","LABEL"\r\n1,"Korea, Republic of"\r\n', ["A", "LABEL"])
    assert frame.rows() == [("1", "Korea, Republic of")]
