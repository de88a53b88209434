"""Trade transforms on small hand-made wire frames: mapping, pivot, rejections with reasons, duplicates and
row accounting (every wire row is loaded or rejected)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eujp.errors import SchemaDriftError
from eujp.parse.jsonstat import parse_jsonstat
from eujp.parse.sdmx_csv import parse_comext_csv
from eujp.schema import DIM_COUNTRY, FACT_GOODS_TRADE, FACT_GOODS_TRADE_PRODUCT, FACT_SERVICES_TRADE
from transforms.goods import transform_goods_annual, transform_goods_product
from transforms.services import transform_services

VERSION = "2026-02-06T23:00:00+0100"


@pytest.fixture(scope="module")
def countries() -> pl.DataFrame:
    rows = [
        ("JP", "JPN", "Japan", "JP", "Japan", None, None, False),
        ("DE", "DEU", "Germany", "DE", "Germany", date(1958, 1, 1), None, True),
        ("AT", "AUT", "Austria", "AT", "Austria", date(1995, 1, 1), None, True),
        ("GR", "GRC", "Greece", "EL", "Greece", date(1981, 1, 1), None, True),
        ("GB", "GBR", "United Kingdom", "UK", "United Kingdom", date(1973, 1, 1), date(2020, 1, 31), False),
        ("US", "USA", "United States", "US", "United States", None, None, False),
    ]
    return pl.DataFrame(rows, schema=DIM_COUNTRY.columns, orient="row")


def reasons(result) -> list[str]:
    return result.rejected.get_column("reason").to_list()


def raw(result, i: int = 0) -> dict:
    return json.loads(result.rejected.get_column("raw_record")[i])


# --------------------------------------------------------------------------- ext_lt_maineu

GOODS_DIMS = ["freq", "indic_et", "sitc06", "partner", "geo", "time"]


def goods_wire(*rows: tuple) -> pl.DataFrame:
    """rows: (indic_et, geo, time, value, status[, partner, freq, sitc06])."""
    records = []
    for indic, geo, time, value, status, *rest in rows:
        partner, freq, sitc = [*rest, *("JP", "A", "TOTAL")[len(rest):]]
        records.append({"freq": freq, "indic_et": indic, "sitc06": sitc, "partner": partner, "geo": geo,
                        "time": time, "value": value, "status": status})
    return pl.DataFrame(records, schema={**dict.fromkeys(GOODS_DIMS, pl.String), "value": pl.Float64,
                                         "status": pl.String})


def test_goods_annual_maps_indicators_and_keeps_the_table_columns(countries):
    wire = goods_wire(
        ("MIO_EXP_VAL", "EU27_2020", "2024", 70600.0, None),
        ("MIO_IMP_VAL", "EU27_2020", "2024", 64800.0, "p"),
        ("MIO_BAL_VAL", "EU28", "2019", 5800.0, None),
        ("MIO_EXP_VAL", "EU15", "1999", 35000.0, "e"),
        ("MIO_IMP_VAL", "EU27_2007", "2010", 65000.0, None),
    )
    result = transform_goods_annual(wire, "eurostat_goods", VERSION, countries)
    assert result.valid.schema == pl.Schema(FACT_GOODS_TRADE.business_columns)
    assert result.valid.rows() == [
        ("EU27_2020", "JP", "export", 2024, 70600.0, None, "eurostat_goods", VERSION),
        ("EU27_2020", "JP", "import", 2024, 64800.0, "p", "eurostat_goods", VERSION),
        ("EU28", "JP", "balance", 2019, 5800.0, None, "eurostat_goods", VERSION),
        ("EU15", "JP", "export", 1999, 35000.0, "e", "eurostat_goods", VERSION),
        ("EU27_2007", "JP", "import", 2010, 65000.0, None, "eurostat_goods", VERSION),
    ]
    assert result.rejected.height == 0
    assert result.rows_in == wire.height


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (("PC_EXP_EXT", "EU27_2020", "2024", 3.1, None),
         "out of scope indicator PC_EXP_EXT (only MIO_EXP_VAL, MIO_IMP_VAL, MIO_BAL_VAL are loaded)"),
        (("MIO_EXP_VAL", "EU27_2020", "2024", 1.0, None, "JP", "M"), "out of scope freq M (only A is loaded)"),
        (("MIO_EXP_VAL", "EU27_2020", "2024", 1.0, None, "JP", "A", "SITC7"),
         "out of scope sitc06 SITC7 (only TOTAL is loaded)"),
        (("MIO_EXP_VAL", "EA20", "2024", 1.0, None), "geo EA20 is not an EU aggregate (EU15, EU27_2007, EU28, EU27_2020)"),
        (("MIO_EXP_VAL", "EU27_2020", "2024", 1.0, None, "ZZ"),
         "partner ZZ is not a known Eurostat country code (dim_country.eurostat_code)"),
        (("MIO_EXP_VAL", "EU27_2020", "2024", 1.0, None, "GR"),
         "partner GR is not a known Eurostat country code (dim_country.eurostat_code)"),
        (("MIO_EXP_VAL", "EU27_2020", "2024-Q1", 1.0, None), "time 2024-Q1 is not a year (YYYY)"),
        (("MIO_EXP_VAL", "EU27_2020", "2024", None, "c"), "missing value (status c)"),
        (("MIO_EXP_VAL", "EU27_2020", "2024", None, None), "missing value (status none)"),
    ],
)
def test_goods_annual_rejects_with_reason_naming_the_code(countries, row, reason):
    good = ("MIO_IMP_VAL", "EU27_2020", "2023", 2.0, None)
    result = transform_goods_annual(goods_wire(good, row), "eurostat_goods", VERSION, countries)
    assert reasons(result) == [reason]
    assert result.valid.height == 1
    assert result.rows_in == 2
    record = raw(result)
    assert list(record) == [*GOODS_DIMS, "value", "status"]  # the wire row, not working columns
    assert (record["indic_et"], record["geo"], record["time"]) == row[:3]


def test_goods_annual_accepts_eurostat_codes_el_and_uk(countries):
    wire = goods_wire(("MIO_EXP_VAL", "EU27_2020", "2024", 1.0, None, "EL"),
                      ("MIO_EXP_VAL", "EU27_2020", "2024", 2.0, None, "UK"))
    assert transform_goods_annual(wire, "g", VERSION, countries).valid.get_column("partner").to_list() == ["EL", "UK"]


def test_goods_annual_exact_duplicate_keeps_one_and_quarantines_the_copy(countries):
    row = ("MIO_EXP_VAL", "EU27_2020", "2024", 70600.0, "p")
    result = transform_goods_annual(goods_wire(row, row, ("MIO_IMP_VAL", "EU27_2020", "2024", 1.0, None)),
                                    "g", VERSION, countries)
    assert result.valid.height == 2
    assert reasons(result) == [
        ("exact duplicate of an earlier row with natural key reporter='EU27_2020', partner='JP', flow='export', "
        "period_year='2024'")
    ]
    assert raw(result)["value"] == 70600.0
    assert result.rows_in == 3


def test_goods_annual_conflicting_duplicates_are_all_quarantined(countries):
    wire = goods_wire(("MIO_EXP_VAL", "EU27_2020", "2024", 70600.0, None),
                      ("MIO_EXP_VAL", "EU27_2020", "2024", 70700.0, None),
                      ("MIO_EXP_VAL", "EU28", "2024", 1.0, None))
    result = transform_goods_annual(wire, "g", VERSION, countries)
    assert result.valid.get_column("reporter").to_list() == ["EU28"]
    assert len(reasons(result)) == 2
    assert all(r.startswith("conflicting rows for natural key reporter='EU27_2020', partner='JP', flow='export', "
                            "period_year='2024'") and "value_mio_eur" in r for r in reasons(result))
    assert sorted(raw(result, i)["value"] for i in range(2)) == [70600.0, 70700.0]
    assert result.rows_in == 3


def test_goods_annual_same_value_different_status_conflicts(countries):
    wire = goods_wire(("MIO_EXP_VAL", "EU27_2020", "2024", 1.0, "p"), ("MIO_EXP_VAL", "EU27_2020", "2024", 1.0, None))
    result = transform_goods_annual(wire, "g", VERSION, countries)
    assert result.valid.height == 0
    assert all("obs_status" in r for r in reasons(result))


def test_goods_annual_new_dimension_is_schema_drift(countries):
    wire = goods_wire(("MIO_EXP_VAL", "EU27_2020", "2024", 1.0, None)).with_columns(unit=pl.lit("MIO_EUR"))
    with pytest.raises(SchemaDriftError, match=r"eurostat_goods: wire columns changed: missing \[\], "
                                               r"unexpected \['unit'\]"):
        transform_goods_annual(wire, "eurostat_goods", VERSION, countries)
    with pytest.raises(SchemaDriftError, match=r"missing \['sitc06'\]"):
        transform_goods_annual(wire.drop("unit", "sitc06"), "eurostat_goods", VERSION, countries)


def test_goods_annual_from_a_parsed_jsonstat_payload(countries):
    """Parser and transform together: a confidential cell and an out-of-scope geo are counted, not lost."""
    doc = {
        "version": "2.0", "class": "dataset", "updated": VERSION,
        "id": ["freq", "indic_et", "sitc06", "partner", "geo", "time"], "size": [1, 2, 1, 1, 2, 2],
        "dimension": {
            "freq": {"category": {"index": {"A": 0}}},
            "indic_et": {"category": {"index": {"MIO_EXP_VAL": 0, "MIO_IMP_VAL": 1}}},
            "sitc06": {"category": {"index": {"TOTAL": 0}}},
            "partner": {"category": {"index": {"JP": 0}}},
            "geo": {"category": {"index": {"EU27_2020": 0, "EA20": 1}}},
            "time": {"category": {"index": {"2023": 0, "2024": 1}}},
        },
        # exp EU27_2020 2023/2024, exp EA20 2023, imp EU27_2020 2024 confidential (status only)
        "value": {"0": 72000.5, "1": 70600, "2": 65000},
        "status": {"5": "c"},
    }
    parsed = parse_jsonstat(json.dumps(doc).encode())
    result = transform_goods_annual(parsed.frame, "eurostat_goods", parsed.source_version, countries)
    assert result.valid.select("reporter", "flow", "period_year", "value_mio_eur").rows() == [
        ("EU27_2020", "export", 2023, 72000.5), ("EU27_2020", "export", 2024, 70600.0)]
    assert sorted(reasons(result)) == ["geo EA20 is not an EU aggregate (EU15, EU27_2007, EU28, EU27_2020)",
                                       "missing value (status c)"]
    assert result.rows_in == parsed.frame.height == 4
    assert result.valid.get_column("source_version").unique().to_list() == [VERSION]


# --------------------------------------------------------------------------- bop_its6_det

SERVICES_DIMS = ["freq", "currency", "bop_item", "stk_flow", "partner", "geo", "time"]


def services_wire(*rows: dict) -> pl.DataFrame:
    base = {"freq": "A", "currency": "MIO_EUR", "bop_item": "S", "stk_flow": "CRE", "partner": "JP",
            "geo": "EU27_2020", "time": "2023", "value": 1.0, "status": None}
    return pl.DataFrame([{**base, **r} for r in rows],
                        schema={**dict.fromkeys(SERVICES_DIMS, pl.String), "value": pl.Float64, "status": pl.String})


def test_services_maps_stk_flow_and_keeps_bop_item(countries):
    wire = services_wire({"stk_flow": "CRE", "value": 41000.0}, {"stk_flow": "DEB", "value": 23000.0, "status": "p"},
                         {"stk_flow": "BAL", "value": 18000.0, "bop_item": "SC", "geo": "EU28", "time": "2019"})
    result = transform_services(wire, "eurostat_services", VERSION, countries)
    assert result.valid.schema == pl.Schema(FACT_SERVICES_TRADE.business_columns)
    assert result.valid.rows() == [
        ("EU27_2020", "JP", "S", "export", 2023, 41000.0, None, "eurostat_services", VERSION),
        ("EU27_2020", "JP", "S", "import", 2023, 23000.0, "p", "eurostat_services", VERSION),
        ("EU28", "JP", "SC", "balance", 2019, 18000.0, None, "eurostat_services", VERSION),
    ]
    assert result.rows_in == 3


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"currency": "MIO_NAC"}, "out of scope currency MIO_NAC (only MIO_EUR is loaded)"),
        ({"stk_flow": "NET"}, "out of scope stk_flow NET (only CRE, DEB, BAL are loaded)"),
        ({"freq": "Q"}, "out of scope freq Q (only A is loaded)"),
        ({"bop_item": " "}, "missing bop_item"),
        ({"geo": "EU15"}, "geo EU15 is not an EU aggregate (EU27_2007, EU28, EU27_2020)"),
        ({"partner": "XX"}, "partner XX is not a known Eurostat country code (dim_country.eurostat_code)"),
        ({"time": "2023S1"}, "time 2023S1 is not a year (YYYY)"),
        ({"value": None, "status": "c"}, "missing value (status c)"),
    ],
)
def test_services_rejects_with_reason(countries, row, reason):
    result = transform_services(services_wire({"time": "2022"}, row), "s", VERSION, countries)
    assert reasons(result) == [reason]
    assert result.valid.get_column("period_year").to_list() == [2022]
    assert list(raw(result)) == [*SERVICES_DIMS, "value", "status"]


def test_services_duplicates(countries):
    same = {"stk_flow": "DEB", "value": 5.0}
    wire = services_wire(same, same, {"bop_item": "SC", "value": 1.0}, {"bop_item": "SC", "value": 2.0})
    result = transform_services(wire, "s", VERSION, countries)
    assert result.valid.select("bop_item", "flow").rows() == [("S", "import")]
    assert [r.split(" natural key")[0] for r in reasons(result)] == [
        "exact duplicate of an earlier row with", "conflicting rows for", "conflicting rows for"]
    assert "bop_item='SC'" in reasons(result)[1]
    assert result.rows_in == 4


# --------------------------------------------------------------------------- Comext DS-045409

HEADER = "DATAFLOW,LAST UPDATE,freq,reporter,partner,product,flow,indicators,TIME_PERIOD,OBS_VALUE"
PREFIX = "ESTAT:DS-045409(1.0),14/08/26 11:00:00"


def comext(*rows: str) -> pl.DataFrame:
    """rows: 'freq,reporter,partner,product,flow,indicators,TIME_PERIOD,OBS_VALUE' -> parsed wire frame."""
    body = "\n".join([HEADER, *(f"{PREFIX},{r}" for r in rows)]) + "\n"
    return parse_comext_csv(body.encode()).frame


def product(wire: pl.DataFrame, countries: pl.DataFrame):
    return transform_goods_product(wire, "comext_goods", "2026-08-14T11:00:00", countries)


def test_comext_pivots_value_and_quantity_into_one_row(countries):
    wire = comext(
        "M,DE,JP,84834030,1,QUANTITY_IN_100KG,2025-02,502.02",
        "M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-02,1663789",
        "M,DE,JP,84834030,2,VALUE_IN_EUROS,2025-02,99",
        "M,DE,JP,84834030,2,QUANTITY_IN_100KG,2025-02,0.01",
        "A,EU27_2020,EXT_EU27_2020,84834030,2,VALUE_IN_EUROS,2024,5",
    )
    result = product(wire, countries)
    assert result.valid.schema == pl.Schema(FACT_GOODS_TRADE_PRODUCT.business_columns)
    assert result.valid.rows() == [
        ("DE", "JP", "84834030", "import", date(2025, 2, 1), "2025-02", 1663789.0, 50202.0, "comext_goods",
         "2026-08-14T11:00:00"),
        ("DE", "JP", "84834030", "export", date(2025, 2, 1), "2025-02", 99.0, 1.0, "comext_goods",
         "2026-08-14T11:00:00"),
        # value without a quantity row: loaded with quantity null; annual period -> 1 January
        ("EU27_2020", "EXT_EU27_2020", "84834030", "export", date(2024, 1, 1), "2024", 5.0, None, "comext_goods",
         "2026-08-14T11:00:00"),
    ]
    assert result.rejected.height == 0
    assert result.valid_wire_rows == 5
    assert result.rows_in == wire.height == 5


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("M,DE,JP,84834030,1,SUPPLEMENTARY_QUANTITY,2025-02,7",
         "out of scope indicator SUPPLEMENTARY_QUANTITY (only VALUE_IN_EUROS, QUANTITY_IN_100KG are loaded)"),
        ("M,DE,JP,84834030,3,VALUE_IN_EUROS,2025-02,7", "flow 3 is neither 1 (import) nor 2 (export)"),
        ("M,DE,JP,848340,1,VALUE_IN_EUROS,2025-02,7", "product 848340 is not a CN8 code (8 digits)"),
        ("M,DE,JP,TOTAL,1,VALUE_IN_EUROS,2025-02,7", "product TOTAL is not a CN8 code (8 digits)"),
        ("M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-13,7",
         "TIME_PERIOD 2025-13 does not match freq M (M: YYYY-MM, A: YYYY)"),
        ("M,DE,JP,84834030,1,VALUE_IN_EUROS,2025,7", "TIME_PERIOD 2025 does not match freq M (M: YYYY-MM, A: YYYY)"),
        ("A,DE,JP,84834030,1,VALUE_IN_EUROS,2025-01,7",
         "TIME_PERIOD 2025-01 does not match freq A (M: YYYY-MM, A: YYYY)"),
        ("M,XX,JP,84834030,1,VALUE_IN_EUROS,2025-02,7", "unknown reporter code XX"),
        ("M,QV,JP,84834030,1,VALUE_IN_EUROS,2025-02,7", "unknown reporter code QV"),
        ("M,DE,ZZ,84834030,1,VALUE_IN_EUROS,2025-02,7", "unknown partner code ZZ"),
        ("M,DE,EL,84834030,1,VALUE_IN_EUROS,2025-02,7", "unknown partner code EL"),
        ("M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-02,", "missing OBS_VALUE"),
        ("M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-02,n/a", "OBS_VALUE n/a is not a number"),
        ("M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-02,-12.5", "negative OBS_VALUE -12.5"),
    ],
)
def test_comext_rejects_wire_rows_with_reason(countries, row, reason):
    wire = comext("M,AT,US,01012100,2,VALUE_IN_EUROS,2025-02,10", row)
    result = product(wire, countries)
    assert reasons(result) == [reason]
    assert result.valid.get_column("partner").to_list() == ["US"]
    assert result.rows_in == 2
    record = raw(result)
    # the quarantine shows the row as published, OBS_VALUE as its raw text
    assert list(record) == HEADER.split(",")
    assert ",".join(record[c] or "" for c in HEADER.split(",")[2:]) == row


def test_comext_accepts_documented_partner_codes_and_eu_reporters(countries):
    partners = ["GR", "GB", "EXT_EU27_2020", "INT_EU27_2020", "QV", "QW", "XS", "QS", "XK", "JP"]
    wire = comext(*(f"M,EU27_2020,{p},84834030,1,VALUE_IN_EUROS,2025-06,1" for p in partners),
                  "M,GR,US,84834030,1,VALUE_IN_EUROS,2025-06,1", "M,EU28,US,84834030,1,VALUE_IN_EUROS,2019-06,1")
    result = product(wire, countries)
    assert result.rejected.height == 0
    assert result.valid.get_column("partner").to_list() == [*partners, "US", "US"]


def test_comext_quantity_without_value_is_rejected(countries):
    wire = comext("M,DE,JP,84834030,1,QUANTITY_IN_100KG,2025-02,3", "M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-03,4")
    result = product(wire, countries)
    assert result.valid.get_column("period_code").to_list() == ["2025-03"]
    assert reasons(result) == [
        ("QUANTITY_IN_100KG without a VALUE_IN_EUROS row for natural key (reporter=DE, partner=JP, "
        "product=84834030, flow=1, TIME_PERIOD=2025-02)")
    ]
    assert result.rows_in == 2
    assert result.valid_wire_rows == 1


def test_comext_exact_duplicate_keeps_one_copy(countries):
    wire = comext("M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-02,100",
                  "M,DE,JP,84834030,1,QUANTITY_IN_100KG,2025-02,1.5",
                  "M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-02,100.0")  # same figure, other spelling
    result = product(wire, countries)
    assert result.valid.select("value_eur", "quantity_kg").rows() == [(100.0, 150.0)]
    assert len(reasons(result)) == 1
    assert reasons(result)[0].startswith("exact duplicate of an earlier row with natural key reporter='DE'")
    assert raw(result)["OBS_VALUE"] == "100.0"
    assert result.valid_wire_rows == 2
    assert result.rows_in == 3


def test_comext_conflicting_value_rejects_every_wire_row_of_the_fact(countries):
    wire = comext("M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-02,100",
                  "M,DE,JP,84834030,1,QUANTITY_IN_100KG,2025-02,1.5",
                  "M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-02,101",
                  "M,DE,JP,84834030,2,VALUE_IN_EUROS,2025-02,7")
    result = product(wire, countries)
    assert result.valid.select("flow", "value_eur").rows() == [("export", 7.0)]
    assert sorted(r.split(" natural key")[0] for r in reasons(result)) == [
        "conflicting rows for", "conflicting rows for", "conflicting values in another indicator for"]
    sibling = reasons(result).index(next(r for r in reasons(result) if "another indicator" in r))
    assert raw(result, sibling)["indicators"] == "QUANTITY_IN_100KG"
    assert reasons(result)[sibling].endswith(
        "(reporter=DE, partner=JP, product=84834030, flow=1, TIME_PERIOD=2025-02)")
    assert result.rows_in == 4


def test_comext_empty_payload(countries):
    result = product(comext(), countries)
    assert result.valid.height == 0
    assert result.valid.schema == pl.Schema(FACT_GOODS_TRADE_PRODUCT.business_columns)
    assert result.rows_in == 0


def test_comext_missing_raw_column_is_schema_drift(countries):
    with pytest.raises(SchemaDriftError, match=r"missing \['OBS_VALUE_raw'\]"):
        product(comext("M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-02,1").drop("OBS_VALUE_raw"), countries)


def test_comext_real_eu27_file_end_to_end(shared_data: Path, countries):
    parsed = parse_comext_csv(
        (shared_data / "trade" / "comext_DS-045409_sdmxcsv_EU27_allpartners_84834030_2025-06.csv").read_bytes())
    full_countries = pl.concat([countries, pl.DataFrame(
        [(c, None, c, c, None, None, None, False) for c in
         ["BE", "BG", "BR", "CA", "CH", "CN", "CZ", "DK", "EE", "ES", "FI", "FR", "HR", "HU", "ID", "IE", "IN", "IT",
          "KR", "LT", "LU", "LV", "MX", "NL", "PL", "PT", "RO", "SE", "SG", "SI", "SK", "TH", "TR", "TW"]],
        schema=DIM_COUNTRY.columns, orient="row")])
    result = transform_goods_product(parsed.frame, "comext_goods", parsed.source_version, full_countries)
    assert result.rejected.height == 0
    assert result.valid.height == 45
    assert result.rows_in == parsed.frame.height == 90
    jp = result.valid.filter(pl.col("partner") == "JP").row(0, named=True)
    assert (jp["flow"], jp["period"], jp["value_eur"], jp["quantity_kg"]) == ("import", date(2025, 6, 1),
                                                                               2264878.0, 69167.0)
    assert result.valid.get_column("source_version").unique().to_list() == ["2026-08-14T11:00:00"]


# --------------------------------------------------------------------------- property: rows accounting

codes = st.sampled_from
wire_row = st.tuples(
    codes(["M", "A"]), codes(["DE", "EU27_2020", "XX"]), codes(["JP", "QV", "ZZ"]), codes(["84834030", "8483"]),
    codes(["1", "2", "3"]), codes(["VALUE_IN_EUROS", "QUANTITY_IN_100KG", "OTHER"]),
    codes(["2025-01", "2025", "2025-13"]), codes(["1", "2.5", "", "x", "-1"]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(wire_row, max_size=25))
def test_comext_every_wire_row_is_loaded_or_rejected_and_keys_are_unique(countries, rows):
    wire = comext(*(",".join(r) for r in rows))
    result = product(wire, countries)
    assert result.rows_in == wire.height
    assert result.valid.height <= result.valid_wire_rows <= 2 * result.valid.height
    assert not result.valid.select(FACT_GOODS_TRADE_PRODUCT.natural_key).is_duplicated().any()
    assert result.rejected.get_column("reason").null_count() == 0
    assert result.valid.get_column("value_eur").null_count() == 0


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(codes(["MIO_EXP_VAL", "MIO_IMP_VAL", "PC_X"]), codes(["EU28", "EA20"]),
                          codes(["2020", "2021", "20x"]), codes([1.0, 2.0, None]), codes([None, "p", "c"])),
                max_size=20))
def test_goods_annual_every_wire_row_is_loaded_or_rejected_and_keys_are_unique(countries, rows):
    wire = goods_wire(*rows)
    result = transform_goods_annual(wire, "g", VERSION, countries)
    assert result.rows_in == wire.height
    assert not result.valid.select(FACT_GOODS_TRADE.natural_key).is_duplicated().any()
    assert result.valid.get_column("value_mio_eur").null_count() == 0
