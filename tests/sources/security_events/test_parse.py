"""The curated events CSV parser."""

from __future__ import annotations

import polars as pl
import pytest

from eujp.errors import ParseError, SchemaDriftError
from eujp.parse.events import REQUIRED_COLUMNS, parse_events_csv

EVENTS_HEADER = ",".join(REQUIRED_COLUMNS)
EVENT_ROW = ('2014-10-16,day,exercise,EU;JPN;ITA,"First JSDF-EU NAVFOR exercise, Gulf of Aden",Drills.,'
             'https://www.mofa.go.jp/press/release/press4e_000465.html,"MOFA Japan, 17 Oct 2014"')


def test_events_real_file(shared_data):
    parsed = parse_events_csv((shared_data / "reference" / "eu_japan_security_events.csv").read_bytes())
    assert parsed.frame.columns == list(REQUIRED_COLUMNS)
    assert parsed.frame.height == 64
    assert set(parsed.frame.dtypes) == {pl.String}
    assert parsed.source_version is None
    first = parsed.frame.row(0, named=True)
    assert first["date"] == "2008-02-05"
    assert first["title"] == "Exchange of notes on replenishment support (France, UK, US, Pakistan)"
    assert first["parties"] == "JPN;FRA;GBR;USA;PAK"


def test_events_bom_and_quoted_commas():
    parsed = parse_events_csv(("\ufeff" + EVENTS_HEADER + "\r\n" + EVENT_ROW + "\r\n").encode("utf-8"))
    assert parsed.frame.columns == list(REQUIRED_COLUMNS)
    row = parsed.frame.row(0, named=True)
    assert row["title"] == "First JSDF-EU NAVFOR exercise, Gulf of Aden"
    assert row["source_title"] == "MOFA Japan, 17 Oct 2014"
    assert parsed.meta == {"rows": 1, "latest_date": "2014-10-16"}


def test_events_missing_column_is_named():
    header = EVENTS_HEADER.replace(",source_title", "")
    row = EVENT_ROW.rsplit(",", 2)[0]
    with pytest.raises(SchemaDriftError, match=r"missing \['source_title'\]"):
        parse_events_csv(f"{header}\n{row}\n".encode())


def test_events_unexpected_column_is_named():
    with pytest.raises(SchemaDriftError, match=r"unexpected \['notes'\]"):
        parse_events_csv(f"{EVENTS_HEADER},notes\n{EVENT_ROW},x\n".encode())


@pytest.mark.parametrize(("data", "message"), [
    (b"", "empty payload"),
    (EVENTS_HEADER.encode() + b"\n2014-10-16,day,exercise,EU;JPN,T\xe9st,d,https://x.org,t\n", "not valid UTF-8"),
    (b"<html><body>404</body></html>", "HTML/XML"),
    (b"not,a,header\n1,2,3\n", "none of the expected columns"),
])
def test_events_malformed(data, message):
    with pytest.raises(ParseError, match=message):
        parse_events_csv(data)
