"""The ext_lt_maineu transform on small hand-made wire frames: mapping, rejections with reasons, duplicates
and row accounting (every wire row is loaded or rejected)."""

from __future__ import annotations

import json

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.transform_helpers import raw, reasons

from eujp.parse.jsonstat import parse_jsonstat
from eujp.sources.eurostat_goods import TABLE as FACT_GOODS_TRADE
from transforms.common import WireColumnsError
from transforms.eurostat_goods import transform_goods_annual

VERSION = "2026-02-06T23:00:00+0100"


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
    with pytest.raises(WireColumnsError, match=r"eurostat_goods: wire columns changed: missing \[\], "
                                               r"unexpected \['unit'\]"):
        transform_goods_annual(wire, "eurostat_goods", VERSION, countries)
    with pytest.raises(WireColumnsError, match=r"missing \['sitc06'\]"):
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
    # the confidential cell is loaded as Eurostat gives it: no value, its flag (it replaces an earlier value)
    assert result.valid.select("reporter", "flow", "period_year", "value_mio_eur", "obs_status").rows() == [
        ("EU27_2020", "export", 2023, 72000.5, None), ("EU27_2020", "export", 2024, 70600.0, None),
        ("EU27_2020", "import", 2024, None, "c")]
    assert reasons(result) == ["geo EA20 is not an EU aggregate (EU15, EU27_2007, EU28, EU27_2020)"]
    assert result.rows_in == parsed.frame.height == 4
    assert result.valid.get_column("source_version").unique().to_list() == [VERSION]



# --------------------------------------------------------------------------- property: rows accounting

codes = st.sampled_from


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(codes(["MIO_EXP_VAL", "MIO_IMP_VAL", "PC_X"]), codes(["EU28", "EA20"]),
                          codes(["2020", "2021", "20x"]), codes([1.0, 2.0, None]), codes([None, "p", "c"])),
                max_size=20))
def test_goods_annual_every_wire_row_is_loaded_or_rejected_and_keys_are_unique(countries, rows):
    wire = goods_wire(*rows)
    result = transform_goods_annual(wire, "g", VERSION, countries)
    assert result.rows_in == wire.height
    assert not result.valid.select(FACT_GOODS_TRADE.natural_key).is_duplicated().any()
    # a value is missing only where Eurostat flags it (a withheld figure)
    assert result.valid.filter(pl.col("value_mio_eur").is_null() & pl.col("obs_status").is_null()).height == 0


def test_the_bundled_main_partner_file_loads_beside_japan_with_its_partner_codes():
    """The bundled snapshot's two ext_lt_maineu files (Japan; the other main partners), with the real country
    list: Japan's rows are the same with or without the second file, and every main-partner figure is loaded
    under its own code."""
    from pathlib import Path

    from support.bundled_warehouse import RUN_DATE

    from eujp.pipeline import load_countries

    countries = load_countries(RUN_DATE)
    snapshot = Path(__file__).resolve().parents[3] / "data" / "snapshot"

    def load(*names):
        wire = pl.concat([parse_jsonstat((snapshot / n).read_bytes()).frame for n in names])
        return transform_goods_annual(wire, "eurostat_goods", VERSION, countries)

    japan = load("eurostat_ext_lt_maineu_jp.json")
    both = load("eurostat_ext_lt_maineu_jp.json", "eurostat_ext_lt_maineu_main_partners.json")
    assert both.rejected.height == 0
    key = ["reporter", "partner", "flow", "period_year"]
    assert both.valid.filter(pl.col("partner") == "JP").sort(key).equals(japan.valid.sort(key))
    others = both.valid.filter(pl.col("partner") != "JP")
    assert others.group_by("partner").len().sort("partner").rows() == [("CN", 3), ("NO", 9), ("TR", 9), ("US", 9)]
    # e.g. DG Trade's Turkey page: EU exports to Turkey 2017 EUR 84.8bn (EU28 inferred from the page date)
    assert others.filter((pl.col("partner") == "TR") & (pl.col("flow") == "export")
                         & (pl.col("period_year") == 2017)).select("reporter", "value_mio_eur").rows() \
        == [("EU28", 84800.0)]
