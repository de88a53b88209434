"""Transforms for SIPRI arms transfers, security events and OECD export restrictions (+ split_duplicates)."""

from __future__ import annotations

import hashlib
import json
from datetime import date

import polars as pl
import pytest

from eujp.parse.sipri import OUTPUT_COLUMNS as SIPRI_COLUMNS
from eujp.parse.sipri import parse_sipri_register
from eujp.schema import FACT_ARMS_TRANSFERS, FACT_EXPORT_RESTRICTIONS, FACT_SECURITY_EVENTS
from transforms.arms import MIN_ORDER_YEAR, transform_arms
from transforms.common import split_duplicates
from transforms.events import transform_events
from transforms.restrictions import transform_restrictions

COUNTRIES = pl.DataFrame(
    {
        "iso2": ["JP", "DE", "US", "TR", "BR", "CN", "FR", "GB"],
        "iso3": ["JPN", "DEU", "USA", "TUR", "BRA", "CHN", "FRA", "GBR"],
        "name": ["Japan", "Germany", "United States", "Türkiye", "Brazil", "China", "France", "United Kingdom"],
        "eurostat_code": ["JP", "DE", "US", "TR", "BR", "CN", "FR", "UK"],
        "sipri_name": [None, None, None, "Turkiye", None, None, None, None],
        "eu_entry_date": [None, date(1958, 1, 1), None, None, None, None, date(1958, 1, 1), date(1973, 1, 1)],
        "eu_exit_date": [None, None, None, None, None, None, None, date(2020, 1, 31)],
        "is_eu_member": [False, True, False, False, False, False, True, False],
    }
)
VERSION = "2025-03-13T10:02:49"


def _reasons(result) -> list[str]:
    return result.rejected["reason"].to_list()


def _raw(result) -> list[dict]:
    return [json.loads(r) for r in result.rejected["raw_record"]]


# --- arms ---------------------------------------------------------------------------------------------------

_SIPRI_DEFAULT = {
    "recipient": "Japan", "supplier": "Germany", "year_of_order": "2009", "year_of_order_flag": None,
    "number_ordered": "15", "number_ordered_flag": "?", "weapon_designation": "EC135",
    "weapon_description": "light helicopter", "number_delivered": "15", "number_delivered_flag": None,
    "delivery_years": "2009; 2010; 2011", "status": "New", "comments": "For training", "tiv_per_unit": "2.25",
    "tiv_total_order": "33.75", "tiv_delivered": "33.75",
}


def _sipri(*overrides: dict) -> pl.DataFrame:
    rows = [{**_SIPRI_DEFAULT, **o} for o in overrides]
    return pl.DataFrame(rows, schema=dict.fromkeys(SIPRI_COLUMNS, pl.String))


def _arms(wire: pl.DataFrame, version: str | None = VERSION):
    return transform_arms(wire, "sipri_arms", version, COUNTRIES)


def test_arms_valid_row_types_and_columns():
    result = _arms(_sipri({}))
    assert result.valid.schema == pl.Schema(FACT_ARMS_TRANSFERS.business_columns)
    assert result.rejected.is_empty()
    row = result.valid.row(0, named=True)
    key = "Germany|Japan|2009|EC135|light helicopter|15|2009; 2010; 2011"
    assert row == {
        "transfer_id": hashlib.sha1(key.encode()).hexdigest()[:16],
        "supplier": "Germany", "supplier_iso2": "DE", "recipient": "Japan", "recipient_iso2": "JP",
        "order_year": 2009, "order_year_uncertain": False, "number_ordered": 15, "number_ordered_uncertain": True,
        "weapon_designation": "EC135", "weapon_description": "light helicopter", "number_delivered": 15,
        "number_delivered_uncertain": False, "delivery_years": "2009; 2010; 2011", "first_delivery_year": 2009,
        "last_delivery_year": 2011, "status": "New", "comments": "For training", "tiv_per_unit": 2.25,
        "tiv_total_order": 33.75, "tiv_delivered": 33.75, "source": "sipri_arms", "source_version": VERSION,
    }


def test_arms_country_mapping_sipri_name_then_name_and_non_states_kept():
    result = _arms(_sipri(
        {"supplier": "Turkiye"},              # sipri_name
        {"supplier": " united states "},      # name, trimmed, case-insensitive
        {"supplier": "Soviet Union"},         # historical state: no code, still loaded
        {"supplier": "unknown supplier(s)"},  # not a state
        {"recipient": "NATO**", "supplier": "Japan"},
    ))
    assert result.rejected.is_empty()
    assert result.valid.select("supplier_iso2", "recipient_iso2").rows() == [
        ("TR", "JP"), ("US", "JP"), (None, "JP"), (None, "JP"), ("JP", None),
    ]
    assert result.valid["supplier"].to_list()[1] == "united states"


def test_arms_sipri_name_wins_over_name():
    countries = COUNTRIES.with_columns(
        pl.when(pl.col("iso2") == "DE").then(pl.lit("Japan")).otherwise(pl.col("sipri_name")).alias("sipri_name")
    )
    result = transform_arms(_sipri({}), "sipri_arms", VERSION, countries)
    assert result.valid["recipient_iso2"].to_list() == ["DE"]


def test_arms_ambiguous_country_dimension_raises():
    countries = COUNTRIES.with_columns(pl.lit("Germany").alias("sipri_name"))
    with pytest.raises(ValueError, match="sipri_name maps one name to several iso2 codes"):
        transform_arms(_sipri({}), "sipri_arms", VERSION, countries)


def test_arms_empty_numbers_are_null_not_rejected():
    result = _arms(_sipri({"number_ordered": None, "tiv_total_order": None, "tiv_delivered": None,
                           "delivery_years": None, "number_ordered_flag": None}))
    assert result.rejected.is_empty()
    row = result.valid.row(0, named=True)
    assert (row["number_ordered"], row["tiv_total_order"], row["first_delivery_year"]) == (None, None, None)
    assert row["number_ordered_uncertain"] is False


@pytest.mark.parametrize(("override", "reason"), [
    ({"number_ordered": "12a"}, "number_ordered: not a non-negative integer: '12a'"),
    ({"number_delivered": "-3"}, "number_delivered: not a non-negative integer: '-3'"),
    ({"tiv_per_unit": "2,25"}, "tiv_per_unit: not a non-negative number: '2,25'"),
    ({"year_of_order": "c.1990"}, "year_of_order: not a non-negative integer: 'c.1990'"),
    ({"year_of_order": str(MIN_ORDER_YEAR - 1)}, f"year_of_order {MIN_ORDER_YEAR - 1} outside 1945..2025"),
    ({"year_of_order": "2026"}, "year_of_order 2026 outside 1945..2025"),
    ({"year_of_order": None}, "year_of_order is empty"),
    ({"supplier": "  "}, "supplier is empty"),
    ({"year_of_order_flag": "x"}, "year_of_order_flag: expected '?' or empty, got 'x'"),
    ({"delivery_years": "2009; 201O"}, "delivery_years: not a '; '-separated list of years: '2009; 201O'"),
    ({"delivery_years": "2009; 2027"}, "delivery_years: a year outside 1945..2025: '2009; 2027'"),
])
def test_arms_rejects_bad_values_naming_column_and_value(override, reason):
    wire = _sipri({}, override)
    result = _arms(wire)
    assert result.valid.height == 1
    assert _reasons(result) == [reason]
    assert _raw(result) == [wire.row(1, named=True)]
    assert result.rows_in == wire.height


def test_arms_lists_every_problem_of_a_row():
    result = _arms(_sipri({"number_ordered": "many", "tiv_delivered": "n/a"}))
    assert _reasons(result) == [
        "number_ordered: not a non-negative integer: 'many'; tiv_delivered: not a non-negative number: 'n/a'"
    ]


def test_arms_year_bound_follows_source_version():
    assert _arms(_sipri({"year_of_order": "2025"}), version="2024-12-01T00:00:00").rejected.height == 1
    assert _arms(_sipri({"year_of_order": "2025"}), version=VERSION).rejected.height == 0


def test_arms_identical_rows_both_survive_with_stable_ids():
    wire = _sipri({}, {"comments": "another order"}, {}, {"supplier": "France"})
    ids = _arms(wire).valid["transfer_id"].to_list()
    base = ids[0]
    assert ids[1] == f"{base}-2" and ids[2] == f"{base}-3"  # comments are not part of the key
    assert len(set(ids)) == 4
    # same ids on a second run, and a row's id does not depend on unrelated rows
    assert _arms(wire).valid["transfer_id"].to_list() == ids
    assert _arms(wire.slice(3, 1)).valid["transfer_id"].to_list() == [ids[3]]


def test_arms_real_japan_subset(shared_data):
    parsed = parse_sipri_register((shared_data / "defence" / "sipri_trade_register_japan_subset.csv").read_bytes())
    result = transform_arms(parsed.frame, "sipri_arms", parsed.source_version, COUNTRIES)
    assert result.valid.height + result.rejected.height == parsed.frame.height == 455
    assert result.rejected.is_empty()
    assert result.valid["transfer_id"].n_unique() == 455
    germany = result.valid.filter(pl.col("supplier") == "Germany")
    assert germany.height == 5
    assert set(germany.select("supplier_iso2", "recipient_iso2").rows()) == {("DE", "JP")}
    brazil = result.valid.filter(pl.col("weapon_designation") == "Barroso Pereira").row(0, named=True)
    assert (brazil["recipient_iso2"], brazil["order_year"], brazil["order_year_uncertain"]) == ("BR", 1953, True)
    assert (brazil["first_delivery_year"], brazil["last_delivery_year"]) == (1955, 1957)
    assert (brazil["tiv_per_unit"], brazil["tiv_total_order"], brazil["tiv_delivered"]) == (38.0, 152.0, 152.0)


# --- events -------------------------------------------------------------------------------------------------

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
    assert _reasons(result) == [reason]
    assert _raw(result) == [wire.row(1, named=True)]


def test_events_month_and_year_precision_first_day_ok():
    _, result = _events({"date": "2014-10-01", "date_precision": "month"},
                        {"date": "2014-01-01", "date_precision": "year", "title": "other"})
    assert result.rejected.is_empty() and result.valid.height == 2


def test_events_exact_duplicates_keep_one():
    wire, result = _events({}, {"title": "other"}, {})
    assert result.valid["title"].to_list() == ["First JSDF-EU NAVFOR exercise", "other"]
    assert len(_reasons(result)) == 1
    assert _reasons(result)[0].startswith("exact duplicate of an earlier row with natural key event_id=")
    assert result.rows_in == wire.height


def test_events_conflicting_duplicates_all_quarantined():
    wire, result = _events({}, {"description": "Different account."}, {"title": "other"})
    assert result.valid["title"].to_list() == ["other"]
    assert len(_reasons(result)) == 2
    assert all("conflicting rows" in r and "differ in description" in r for r in _reasons(result))
    assert [r["description"] for r in _raw(result)] == ["Drills.", "Different account."]
    assert result.rows_in == wire.height


def test_events_real_file_all_load(shared_data):
    from eujp.parse.events import parse_events_csv

    parsed = parse_events_csv((shared_data / "reference" / "eu_japan_security_events.csv").read_bytes())
    needed = {"AUS": "AU", "DJI": "DJ", "ESP": "ES", "ITA": "IT", "NLD": "NL", "PAK": "PK"}
    countries = COUNTRIES.select("iso2", "iso3").vstack(
        pl.DataFrame({"iso2": list(needed.values()), "iso3": list(needed)}))
    result = transform_events(parsed.frame, "security_events", None, countries)
    assert _reasons(result) == []
    assert result.valid.height == 64
    assert result.valid["event_id"].n_unique() == 64


# --- restrictions -------------------------------------------------------------------------------------------

def _measure(attrs: list[tuple[str, str | None]], area="CHN", commodity="HS07_280530", ptype="M1", variation="1",
             year="2024") -> list[dict]:
    return [
        {"REF_AREA": area, "COMMODITY": commodity, "POLICY_TYPE": ptype, "POLICY_VARIATION": variation,
         "POLICY_DESCRIPTION": code, "TIME_PERIOD": year, "OBS_VALUE": value,
         "commodity_label": "Rare-earth metals", "policy_type_label": "Export tax"}
        for code, value in attrs
    ]


def _restrictions(*measures: list[dict]):
    rows = [r for m in measures for r in m]
    wire = pl.DataFrame(rows, schema=dict.fromkeys(rows[0], pl.String))
    return wire, transform_restrictions(wire, "oecd_restrictions", None, COUNTRIES)


FULL_MEASURE = [
    ("VAL", "25"), ("VAL_UNIT", "%"), ("VAL_CONDITION", "ad valorem"), ("DATI", "01/05/2015"), ("END", "nd"),
    ("TEMP", "Yes"), ("POM", "Conservation"), ("NOD", "Tariff schedule"), ("LEG", "Customs law"),
    ("LINK", "https://example.org/tariff"), ("AGEN", "Customs Tariff Commission"), ("ADD", "note"),
    ("ORIG_LEG_PROD", "rare earth metals"),
]


def test_restrictions_pivot_one_measure():
    wire, result = _restrictions(_measure(FULL_MEASURE))
    assert result.valid.schema == pl.Schema(FACT_EXPORT_RESTRICTIONS.business_columns)
    assert result.valid.rows(named=True) == [{
        "ref_area_iso3": "CHN", "commodity_hs6": "280530", "commodity_label": "Rare-earth metals",
        "policy_type": "M1", "policy_type_label": "Export tax", "policy_variation": "1", "period_year": 2024,
        "value": "25", "value_unit": "%", "value_condition": "ad valorem", "date_introduced": date(2015, 5, 1),
        "date_end": None, "is_temporary": True, "purpose": "Conservation", "document": "Tariff schedule",
        "legal_basis": "Customs law", "link": "https://example.org/tariff", "agency": "Customs Tariff Commission",
        "note": "note", "source": "oecd_restrictions", "source_version": None,
    }]
    assert result.rejected.is_empty()
    assert result.valid_wire_rows == wire.height == 13
    assert result.rows_in == wire.height


def test_restrictions_missing_attributes_are_null():
    _, result = _restrictions(_measure([("VAL", "0")], ptype="M3"), _measure([("DATI", "nd")], year="2023"))
    assert result.valid.select("policy_type", "period_year", "value", "date_introduced", "is_temporary").rows() == [
        ("M3", 2024, "0", None, None), ("M1", 2023, None, None, None),
    ]


@pytest.mark.parametrize(("measure", "reason"), [
    (_measure([("VAL", "1"), ("TEMP", "no")], commodity="HS07_28053"),
     "COMMODITY: 'HS07_28053' is not HS07_ followed by six digits"),
    (_measure([("VAL", "1"), ("TEMP", "no")], commodity="HS12_280530"),
     "COMMODITY: 'HS12_280530' is not HS07_ followed by six digits"),
    (_measure([("VAL", "1"), ("TEMP", "no")], area="XXK"), "REF_AREA: 'XXK' is not an ISO3 code in dim_country"),
    (_measure([("VAL", "1"), ("TEMP", "no")], year="2024-Q1"), "TIME_PERIOD: '2024-Q1' is not a year"),
    (_measure([("VAL", "1"), ("TEMP", "no")], variation=None), "POLICY_VARIATION is empty"),
    (_measure([("VAL", "1"), ("DATI", "2015-05-01")]), "DATI: expected dd/mm/yyyy or 'nd', got '2015-05-01'"),
    (_measure([("VAL", "1"), ("DATI", "31/02/2015")]), "DATI: expected dd/mm/yyyy or 'nd', got '31/02/2015'"),
    (_measure([("VAL", "1"), ("END", "ongoing")]), "END: expected dd/mm/yyyy or 'nd', got 'ongoing'"),
    (_measure([("VAL", "1"), ("TEMP", "temporary")]), "TEMP: expected yes or no, got 'temporary'"),
    (_measure([("VAL", "1"), ("VAL", "2")]), "conflicting values for attribute(s) VAL"),
])
def test_restrictions_rejected_measure_sends_all_its_rows(measure, reason):
    kept = _measure([("VAL", "5")], area="USA")
    wire, result = _restrictions(kept, measure)
    assert result.valid["ref_area_iso3"].to_list() == ["USA"]
    assert _reasons(result) == [reason] * len(measure)
    assert _raw(result) == wire.slice(1).rows(named=True)
    assert result.rows_in == wire.height


def test_restrictions_same_attribute_twice_with_same_value_is_fine():
    wire, result = _restrictions(_measure([("VAL", "1"), ("VAL", "1"), ("TEMP", "no")]))
    assert result.valid["value"].to_list() == ["1"]
    assert result.rejected.is_empty()
    assert result.rows_in == wire.height == 3


def test_restrictions_unknown_attribute_row_quarantined_alone():
    wire, result = _restrictions(_measure([("VAL", "1"), ("NEWATTR", "x"), (None, "y")]))
    assert result.valid["value"].to_list() == ["1"]
    assert _reasons(result) == ["POLICY_DESCRIPTION: unknown attribute code 'NEWATTR'",
                                "POLICY_DESCRIPTION (attribute code) is empty"]
    assert result.valid_wire_rows == 1
    assert result.rows_in == wire.height == 3


# --- split_duplicates ---------------------------------------------------------------------------------------

def test_split_duplicates():
    frame = pl.DataFrame({"row": [0, 1, 2, 3, 4], "k": ["a", "a", "b", "b", "c"], "v": [1, 1, 2, 3, None]})
    kept, dupes = split_duplicates(frame, ("k",), ignore=("row",))
    assert kept["row"].to_list() == [0, 4]
    assert dupes["row"].to_list() == [1, 2, 3]
    assert dupes["reason"].to_list() == [
        "exact duplicate of an earlier row with natural key k='a'",
        "conflicting rows for natural key k='b': 2 rows differ in v",
        "conflicting rows for natural key k='b': 2 rows differ in v",
    ]
    kept_all, none = split_duplicates(frame, ())
    assert kept_all.equals(frame) and none.is_empty()
