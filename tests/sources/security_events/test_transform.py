"""The curated events transform: ids, dates and their precision, parties, URLs, duplicates."""

from __future__ import annotations

import hashlib
from datetime import date

import polars as pl
import pytest
from support.transform_helpers import COUNTRIES, raws, reasons

from eujp.sources.security_events import TABLE as FACT_SECURITY_EVENTS
from transforms.security_events import transform_events

_EVENT = {
    "date": "2014-10-16", "date_precision": "day", "event_type": "exercise", "parties": "EU;JPN;ITA",
    "title": "First JSDF-EU NAVFOR exercise", "description": "Drills.",
    "source_url": "https://www.mofa.go.jp/press/release/press4e_000465.html", "source_title": "MOFA Japan",
}
_EVENT_COUNTRIES = COUNTRIES.vstack(COUNTRIES.head(1).with_columns(pl.lit("IT").alias("iso2"),
                                                                     pl.lit("ITA").alias("iso3")))


def _events(*overrides: dict):
    wire = pl.DataFrame([{**_EVENT, **o} for o in overrides], schema=dict.fromkeys(_EVENT, pl.String))
    return wire, transform_events(wire, "security_events", None, _EVENT_COUNTRIES)


def test_events_valid_row():
    _, result = _events({})
    assert result.valid.schema == pl.Schema(FACT_SECURITY_EVENTS.business_columns)
    row = result.valid.row(0, named=True)
    assert row["event_id"] == hashlib.sha1(b"2014-10-16|First JSDF-EU NAVFOR exercise").hexdigest()[:16]
    assert row["event_date"] == date(2014, 10, 16)
    assert (row["parties"], row["source"], row["source_version"]) == ("EU;JPN;ITA", "security_events", None)


def test_events_organisation_codes_accepted():
    _, result = _events({"parties": "CHN;WORLD"}, {"parties": "NATO; JPN", "title": "b"})
    assert result.rejected.is_empty()
    assert result.valid["parties"].to_list() == ["CHN;WORLD", "NATO;JPN"]


@pytest.mark.parametrize(("override", "reason"), [
    ({"date": "2014-13-01"}, "date: not a yyyy-mm-dd date: '2014-13-01'"),
    ({"date": "16/10/2014"}, "date: not a yyyy-mm-dd date: '16/10/2014'"),
    ({"date": None}, "date is empty"),
    ({"date_precision": "week"}, "date_precision: expected one of day, month, year, got 'week'"),
    ({"date_precision": None}, "date_precision is empty"),
    ({"title": None}, "title is empty"),
    ({"date_precision": "month"}, "date '2014-10-16' with precision month is not the 1st of the month"),
    ({"date": "2014-10-01", "date_precision": "year"}, "date '2014-10-01' with precision year is not January 1st"),
    ({"event_type": ""}, "event_type is empty"),
    ({"parties": "EU;JPN;XXX;ASEAN"},
     "parties: unknown code(s) XXX, ASEAN (neither an ISO3 country nor an organisation code)"),
    ({"parties": "EU;;JPN"}, "parties: empty code in 'EU;;JPN'"),
    ({"source_url": "www.mofa.go.jp/x"}, "source_url: not an http(s) URL: 'www.mofa.go.jp/x'"),
    ({"source_url": "ftp://example.org/x"}, "source_url: not an http(s) URL: 'ftp://example.org/x'"),
])
def test_events_rejections(override, reason):
    wire, result = _events({"title": "kept"}, override)
    assert result.valid["title"].to_list() == ["kept"]
    assert reasons(result) == [reason]
    assert raws(result) == [wire.row(1, named=True)]


def test_events_month_and_year_precision_first_day_ok():
    _, result = _events({"date": "2014-10-01", "date_precision": "month"},
                        {"date": "2014-01-01", "date_precision": "year", "title": "other"})
    assert result.rejected.is_empty() and result.valid.height == 2


def test_events_exact_duplicates_keep_one():
    wire, result = _events({}, {"title": "other"}, {})
    assert result.valid["title"].to_list() == ["First JSDF-EU NAVFOR exercise", "other"]
    assert len(reasons(result)) == 1
    assert reasons(result)[0].startswith("exact duplicate of an earlier row with natural key event_id=")
    assert result.rows_in == wire.height


def test_events_conflicting_duplicates_all_quarantined():
    wire, result = _events({}, {"description": "Different account."}, {"title": "other"})
    assert result.valid["title"].to_list() == ["other"]
    assert len(reasons(result)) == 2
    assert all("conflicting rows" in r and "differ in description" in r for r in reasons(result))
    assert [r["description"] for r in raws(result)] == ["Drills.", "Different account."]
    assert result.rows_in == wire.height
    # the key is reported as a conflict, so that the loader keeps the row it had before
    assert result.conflicts.columns == ["event_id"] and result.conflicts.height == 1
    assert result.conflicts["event_id"][0] not in result.valid["event_id"].to_list()


def test_events_real_file_all_load(shared_data):
    from eujp.parse.events import parse_events_csv

    parsed = parse_events_csv((shared_data / "reference" / "eu_japan_security_events.csv").read_bytes())
    needed = {"AUS": "AU", "DJI": "DJ", "ESP": "ES", "ITA": "IT", "NLD": "NL", "PAK": "PK"}
    countries = COUNTRIES.select("iso2", "iso3").vstack(
        pl.DataFrame({"iso2": list(needed.values()), "iso3": list(needed)}))
    result = transform_events(parsed.frame, "security_events", None, countries)
    assert reasons(result) == []
    assert result.valid.height == 64
    assert result.valid["event_id"].n_unique() == 64
