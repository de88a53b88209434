"""Great Expectations suites (expectations/*.json) and eujp.validate.

GX takes seconds to import: the `gx` fixture imports it once per module; every test that validates uses it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
from pathlib import Path

import polars as pl
import pytest

from eujp import validate
from eujp.errors import ValidationFailed
from eujp.schema import DIM_COUNTRY
from eujp.sources import SOURCES
from eujp.tables import FACT_TABLES, TABLES

REPO_ROOT = Path(__file__).resolve().parents[2]

# --------------------------------------------------------------------------------- valid sample frames

_EU27_ISO3 = {
    "AT": "AUT", "BE": "BEL", "BG": "BGR", "CY": "CYP", "CZ": "CZE", "DE": "DEU", "DK": "DNK", "EE": "EST",
    "ES": "ESP", "FI": "FIN", "FR": "FRA", "GR": "GRC", "HR": "HRV", "HU": "HUN", "IE": "IRL", "IT": "ITA",
    "LT": "LTU", "LU": "LUX", "LV": "LVA", "MT": "MLT", "NL": "NLD", "PL": "POL", "PT": "PRT", "RO": "ROU",
    "SE": "SWE", "SI": "SVN", "SK": "SVK",
}


def _sha1(*parts: object) -> str:
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()


def _dim_country_rows() -> list[dict]:
    rows = [{"iso2": iso2, "iso3": iso3, "name": f"Country {iso2}", "eurostat_code": "EL" if iso2 == "GR" else iso2,
             "sipri_name": None, "eu_entry_date": dt.date(2013, 7, 1) if iso2 == "HR" else dt.date(1958, 1, 1),
             "eu_exit_date": None, "is_eu_member": True} for iso2, iso3 in _EU27_ISO3.items()]
    rows.append({"iso2": "GB", "iso3": "GBR", "name": "United Kingdom", "eurostat_code": "UK",
                 "sipri_name": "United Kingdom", "eu_entry_date": dt.date(1973, 1, 1),
                 "eu_exit_date": dt.date(2020, 1, 31), "is_eu_member": False})
    rows.append({"iso2": "JP", "iso3": "JPN", "name": "Japan", "eurostat_code": "JP", "sipri_name": "Japan",
                 "eu_entry_date": None, "eu_exit_date": None, "is_eu_member": False})
    return rows


def _annual(flow: str, value: float, status: str | None, **extra) -> dict:
    return {"reporter": "EU27_2020", "partner": "JP", **extra, "flow": flow, "period_year": 2023,
            "value_mio_eur": value, "obs_status": status}


def _arms(supplier: str, supplier_iso2: str, recipient: str, recipient_iso2: str, year: int) -> dict:
    return {"transfer_id": _sha1(supplier, recipient, year), "supplier": supplier, "supplier_iso2": supplier_iso2,
            "recipient": recipient, "recipient_iso2": recipient_iso2, "order_year": year,
            "order_year_uncertain": False, "number_ordered": 4, "number_ordered_uncertain": False,
            "weapon_designation": "YS-11", "weapon_description": "transport aircraft", "number_delivered": 4,
            "number_delivered_uncertain": False, "delivery_years": f"{year + 1}; {year + 2}",
            "first_delivery_year": year + 1, "last_delivery_year": year + 2, "status": "New", "comments": None,
            "tiv_per_unit": 7.3, "tiv_total_order": 29.2, "tiv_delivered": 29.2}


def _event(day: dt.date, precision: str, kind: str, parties: str, title: str) -> dict:
    return {"event_id": _sha1(day, title), "event_date": day, "date_precision": precision, "event_type": kind,
            "parties": parties, "title": title, "description": f"{title}.",
            "source_url": "https://www.mofa.go.jp/announce/page.html", "source_title": "MOFA Japan"}


def _restriction(iso3: str, hs6: str, policy: str, variation: str) -> dict:
    return {"ref_area_iso3": iso3, "commodity_hs6": hs6, "commodity_label": "Rare earth metals",
            "policy_type": policy, "policy_type_label": "Export tax", "policy_variation": variation,
            "period_year": 2020, "value": "25", "value_unit": "%", "value_condition": None,
            "date_introduced": dt.date(2015, 5, 1), "date_end": None, "is_temporary": False, "purpose": None,
            "document": None, "legal_basis": None, "link": "https://example.org/measure", "agency": None,
            "note": None}


GOOD_ROWS: dict[str, list[dict]] = {
    "dim_country": _dim_country_rows(),
    "fact_goods_trade": [_annual("export", 67_000.0, None), _annual("import", 70_000.0, "p"),
                         _annual("balance", -3_000.0, "p")],
    "fact_goods_trade_product": [
        {"reporter": reporter, "partner": "JP", "product_cn8": "87032310", "flow": flow,
         "period": dt.date(2024, 1, 1), "period_code": "2024-01", "value_eur": 1_250_000.0, "quantity_kg": qty}
        for reporter, flow, qty in [("DE", "import", 80_000.0), ("DE", "export", None), ("EU27_2020", "import", 0.0)]
    ],
    "fact_services_trade": [_annual("export", 36_200.0, None, bop_item="S"),
                            _annual("import", 18_000.0, None, bop_item="S"),
                            _annual("balance", 18_200.0, None, bop_item="S")],
    "fact_arms_transfers": [_arms("United States", "US", "Japan", "JP", 1990),
                            _arms("Japan", "JP", "Philippines", "PH", 2016),
                            _arms("unknown supplier(s)", None, "Japan", "JP", 1960)],
    "fact_security_events": [
        _event(dt.date(2008, 2, 29), "day", "agreement", "JPN;DEU", "Exchange of notes"),
        _event(dt.date(2009, 1, 1), "year", "operation", "JPN;EU", "Counter-piracy deployment"),
        _event(dt.date(2010, 9, 21), "day", "export_control", "CHN;JPN", "Rare earth exports halted"),
    ],
    "fact_export_restrictions": [_restriction("CHN", "280530", "M1", "1"), _restriction("CHN", "280530", "M4", "1"),
                                 _restriction("IDN", "260400", "NO_RESTRICTION", "_Z")],
}
_SOURCE = {s.table.name: s.name for s in SOURCES}  # fact table -> the source that loads it


def good_frame(table: str) -> pl.DataFrame:
    """A valid frame with exactly the table's business columns and dtypes."""
    extra = {"source": _SOURCE[table], "source_version": "2026-02-06T23:00:00+0100"} if table in _SOURCE else {}
    rows = [{**row, **extra} for row in GOOD_ROWS[table]]
    return pl.DataFrame(rows, schema=TABLES[table].business_columns)


def set_value(frame: pl.DataFrame, row: int, column: str, value: object) -> pl.DataFrame:
    values = frame[column].to_list()
    values[row] = value
    return frame.with_columns(pl.Series(column, values, dtype=frame.schema[column]))


@pytest.fixture(scope="module")
def gx():
    """Import GX and build the process's context once for the module (3-5 s)."""
    validate.validate_frame("fact_goods_trade", good_frame("fact_goods_trade"))
    import great_expectations

    return great_expectations


# ------------------------------------------------------------------------------------------- suites


def test_one_suite_per_dim_country_and_fact_table():
    assert validate.SUITE_TABLES == (DIM_COUNTRY.name, *(t.name for t in FACT_TABLES))
    on_disk = sorted(p.stem for p in (REPO_ROOT / "expectations").glob("*.json"))
    assert on_disk == sorted(validate.SUITE_TABLES)
    assert validate.EXPECTATIONS_DIR == REPO_ROOT / "expectations"


@pytest.mark.parametrize("table", validate.SUITE_TABLES)
def test_suite_file_is_exactly_what_gx_writes(gx, table):
    """Loading the file into a GX ExpectationSuite and dumping it back gives the file (no unknown fields)."""
    from great_expectations.core.expectation_suite import ExpectationSuiteSchema

    raw = (REPO_ROOT / "expectations" / f"{table}.json").read_text(encoding="utf-8")
    schema = ExpectationSuiteSchema()
    suite = gx.ExpectationSuite(**schema.loads(raw))
    assert schema.dumps(suite, indent=2, sort_keys=True) + "\n" == raw
    assert suite.name == table


def _referenced_columns(expectation: dict) -> set[str]:
    kwargs = expectation["kwargs"]
    cols = {kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs}
    cols |= set(kwargs.get("column_list", []))

    def walk(cond):
        if isinstance(cond, dict):
            if "column" in cond:
                cols.add(cond["column"]["name"])
            for sub in cond.get("conditions", []):
                walk(sub)

    walk(kwargs.get("row_condition"))
    return cols


@pytest.mark.parametrize("table", validate.SUITE_TABLES)
def test_suite_references_only_business_columns_and_guards_the_natural_key(table):
    suite = validate.load_suite(table)
    t = TABLES[table]
    business = list(t.business_columns)
    for exp in suite["expectations"]:
        assert exp["severity"] in ("critical", "warning")
        unknown = _referenced_columns(exp) - set(business)
        assert not unknown, f"{table}: {exp['type']} references columns not declared in eujp.schema: {unknown}"

    critical = [e for e in suite["expectations"] if e["severity"] == "critical"]
    by_type: dict[str, list[dict]] = {}
    for e in critical:
        by_type.setdefault(e["type"], []).append(e["kwargs"])
    assert by_type["expect_table_columns_to_match_ordered_list"] == [{"column_list": business}]
    not_null = {k["column"] for k in by_type["expect_column_values_to_not_be_null"] if "row_condition" not in k}
    assert set(t.natural_key) <= not_null
    if len(t.natural_key) > 1:
        assert {"column_list": list(t.natural_key)} in by_type["expect_compound_columns_to_be_unique"]
    else:
        assert {"column": t.natural_key[0]} in by_type["expect_column_values_to_be_unique"]
    assert any(e["severity"] == "warning" for e in suite["expectations"]), f"{table}: no warning-level check"


def test_source_value_sets_match_the_source_registry():
    sources = pytest.importorskip("eujp.sources", reason="eujp.sources needs the parsers and transforms")
    for source in sources.SOURCES:
        suite = validate.load_suite(source.table.name)
        sets = [e["kwargs"]["value_set"] for e in suite["expectations"]
                if e["type"] == "expect_column_values_to_be_in_set" and e["kwargs"]["column"] == "source"]
        assert sets == [[source.name]]


def test_load_suite_rejects_a_suite_without_explicit_severity(tmp_path):
    suite = validate.load_suite("fact_goods_trade")
    suite["expectations"][3]["severity"] = "info"
    (tmp_path / "fact_goods_trade.json").write_text(json.dumps(suite))
    with pytest.raises(ValueError, match=r"expectation #3 .*severity 'info'"):
        validate.load_suite("fact_goods_trade", tmp_path)
    with pytest.raises(FileNotFoundError, match="fact_services_trade"):
        validate.load_suite("fact_services_trade", tmp_path)


def test_expectations_dir_override_is_used(gx, tmp_path):
    shutil.copy(REPO_ROOT / "expectations" / "fact_goods_trade.json", tmp_path)
    suite = validate.load_suite("fact_goods_trade", tmp_path)
    suite["expectations"] = [e for e in suite["expectations"] if e["kwargs"].get("column") != "flow"]
    (tmp_path / "fact_goods_trade.json").write_text(json.dumps(suite))
    frame = set_value(good_frame("fact_goods_trade"), 0, "flow", "exports")
    assert not validate.validate_frame("fact_goods_trade", frame).success
    assert validate.validate_frame("fact_goods_trade", frame, expectations_dir=tmp_path).success


# --------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize("table", validate.SUITE_TABLES)
def test_a_valid_frame_meets_every_expectation(gx, table):
    frame = good_frame(table)
    report = validate.validate_frame(table, frame, run_id="run-1")
    failed = [(o.severity, o.label, o.message) for o in report.outcomes if not o.success]
    assert failed == []
    assert report.success and report.row_count == frame.height
    suite = validate.load_suite(table)
    assert [o.expectation_type for o in report.outcomes] == [e["type"] for e in suite["expectations"]]
    assert report.statistics == {"evaluated": len(suite["expectations"]), "successful": len(suite["expectations"]),
                                 "unsuccessful": 0, "critical_failed": 0, "warning_failed": 0}
    report.raise_for_critical()
    assert json.loads(json.dumps(report.to_dict()))["table"] == table
    assert report.gx_result.success and "gx_result" not in report.to_dict()


def _critical_failure(table: str, frame: pl.DataFrame, label: str) -> tuple[ValidationFailed, validate.ExpectationOutcome]:
    report = validate.validate_frame(table, frame)
    assert not report.success
    outcome = next(o for o in report.critical_failures if o.label == label)
    with pytest.raises(ValidationFailed) as info:
        report.raise_for_critical()
    assert info.value.report is report
    return info.value, outcome


def test_bad_flow_value_blocks_the_load(gx):
    frame = set_value(good_frame("fact_goods_trade"), 1, "flow", "imports")
    err, outcome = _critical_failure("fact_goods_trade", frame, "expect_column_values_to_be_in_set(flow)")
    msg = str(err)
    assert msg.startswith("fact_goods_trade: ")
    assert ("fact_goods_trade: critical expectation expect_column_values_to_be_in_set(flow) failed on 1 of 3 rows"
            in msg)
    assert "'flow': 'imports'" in msg
    assert outcome.unexpected_count == 1
    assert outcome.sample_offending_rows == [json.loads(json.dumps(frame.row(1, named=True)))]


def test_duplicated_natural_key_blocks_the_load(gx):
    frame = good_frame("fact_goods_trade")
    frame = pl.concat([frame, frame[0]])
    label = "expect_compound_columns_to_be_unique(reporter, partner, flow, period_year)"
    err, outcome = _critical_failure("fact_goods_trade", frame, label)
    assert f"critical expectation {label} failed on 2 of 4 rows" in str(err)
    assert "'flow': 'export'" in str(err)
    assert outcome.sample_offending_rows == [frame.row(0, named=True), frame.row(3, named=True)]


def test_duplicated_single_column_key_blocks_the_load(gx):
    frame = good_frame("fact_arms_transfers")
    duplicate_id = frame["transfer_id"][0]
    frame = set_value(frame, 2, "transfer_id", duplicate_id)
    err, outcome = _critical_failure("fact_arms_transfers", frame,
                                     "expect_column_values_to_be_unique(transfer_id)")
    assert duplicate_id in str(err)
    assert [r["transfer_id"] for r in outcome.sample_offending_rows] == [duplicate_id, duplicate_id]


def test_null_key_blocks_the_load(gx):
    frame = set_value(good_frame("fact_goods_trade"), 2, "partner", None)
    err, outcome = _critical_failure("fact_goods_trade", frame,
                                     "expect_column_values_to_not_be_null(partner)")
    assert "'partner': None, 'flow': 'balance'" in str(err)
    assert outcome.sample_offending_rows[0]["flow"] == "balance"


def test_malformed_cn8_blocks_the_load(gx):
    frame = set_value(good_frame("fact_goods_trade_product"), 0, "product_cn8", "8703231")
    err, outcome = _critical_failure("fact_goods_trade_product", frame,
                                     "expect_column_values_to_match_regex(product_cn8)")
    assert "fact_goods_trade_product: critical expectation expect_column_values_to_match_regex(product_cn8)" in str(err)
    assert "'8703231'" in str(err)
    assert outcome.sample_offending_rows[0]["product_cn8"] == "8703231"


def test_negative_export_fails_but_negative_balance_passes(gx):
    frame = good_frame("fact_goods_trade")
    assert frame.filter(pl.col("flow") == "balance")["value_mio_eur"][0] < 0
    frame = set_value(frame, 0, "value_mio_eur", -1.0)
    err, outcome = _critical_failure("fact_goods_trade", frame,
                                     "expect_column_values_to_be_between(value_mio_eur)")
    assert "failed on 1 of 2 rows where flow in ['export', 'import']" in str(err)
    assert [r["flow"] for r in outcome.sample_offending_rows] == ["export"]


def test_out_of_range_date_is_reported_with_its_real_value(gx):
    frame = set_value(good_frame("fact_security_events"), 1, "event_date", dt.date(1, 1, 1))
    err, outcome = _critical_failure("fact_security_events", frame,
                                     "expect_column_values_to_be_between(event_date)")
    assert outcome.sample_offending_rows[0]["event_date"] == "0001-01-01"
    # a date outside pandas' datetime64[ns] range: GX got it as datetime64[us]; the report quotes the frame's value
    assert "failed on 1 of 3 rows; unexpected values: '0001-01-01'; offending rows:" in str(err)
    assert "'event_date': '0001-01-01'" in str(err) and "1678" not in str(err)


def test_missing_column_is_a_critical_failure_naming_the_column(gx):
    frame = good_frame("fact_goods_trade").drop("obs_status")
    err, _ = _critical_failure("fact_goods_trade", frame, "expect_table_columns_to_match_ordered_list")
    assert "columns missing ['obs_status']" in str(err)
    report = err.report
    regex = next(o for o in report.outcomes if o.label == "expect_column_values_to_match_regex(obs_status)")
    assert regex.message == "could not be evaluated: column(s) ['obs_status'] not in the frame"


def test_warning_failure_is_reported_but_does_not_block(gx):
    frame = good_frame("fact_goods_trade").with_columns(pl.lit("US").alias("partner"))
    report = validate.validate_frame("fact_goods_trade", frame)
    assert report.success
    assert report.critical_failures == []
    assert [o.label for o in report.warnings] == ["expect_column_distinct_values_to_contain_set(partner)"]
    assert "['JP'] never occur" in report.warnings[0].message
    assert report.statistics["warning_failed"] == 1
    report.raise_for_critical()  # does not raise
    md = report.to_markdown()
    assert "fact_goods_trade: passed with 1 warning(s)" in md
    assert "| warning | expect_column_distinct_values_to_contain_set | partner |" in md


def test_markdown_lists_critical_failures(gx):
    frame = set_value(good_frame("fact_goods_trade"), 1, "flow", "imports")
    md = validate.validate_frame("fact_goods_trade", frame, run_id="run-7").to_markdown()
    assert md.startswith("### fact_goods_trade: FAILED, not loaded: 1 critical")
    assert "(run run-7)" in md
    assert re.search(r"\| critical \| expect_column_values_to_be_in_set \| flow \| 1 \(33\.33%\) \|.*'imports'", md)


def test_markdown_shows_an_unexpected_value_as_text_never_as_markup(gx):
    """A source value in a failed expectation's detail: its link and its element stayed live in the Prefect
    artifact (only `|` was escaped); rendered, it reads as the value."""
    from markdown_it import MarkdownIt

    value = "[click](http://evil.example) <img src=x onerror=alert(1)>"
    frame = set_value(good_frame("fact_goods_trade"), 1, "flow", value)
    md = validate.validate_frame("fact_goods_trade", frame).to_markdown()
    page = MarkdownIt("commonmark", {"html": True}).enable("table").render(md)
    assert "<a " not in page and "<img" not in page
    assert "[click](http://evil.example) &lt;img src=x onerror=alert(1)&gt;" in page  # the value, as text


def test_validation_prints_nothing(gx, capfd):
    validate.validate_frame("fact_goods_trade_product", good_frame("fact_goods_trade_product"))
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_unknown_table_and_wrong_frame_type_are_rejected():
    with pytest.raises(ValueError, match="unknown table 'fact_nope'"):
        validate.validate_frame("fact_nope", pl.DataFrame())
    with pytest.raises(TypeError, match="polars DataFrame"):
        validate.validate_frame("fact_goods_trade", good_frame("fact_goods_trade").to_dicts())


def test_bundled_snapshot_transform_output_meets_every_expectation(gx):
    """The real snapshot, through the real parsers and transforms, trips neither critical nor warning checks."""
    snapshot = REPO_ROOT / "data" / "snapshot"
    seed_path = REPO_ROOT / "data" / "reference" / "countries.csv"
    if not snapshot.is_dir() or not seed_path.is_file():
        pytest.skip("data/snapshot or data/reference/countries.csv is missing")
    sources = pytest.importorskip("eujp.sources", reason="eujp.sources needs the parsers and transforms")
    countries_mod = pytest.importorskip("transforms.countries")
    countries = countries_mod.build_dim_country(pl.read_csv(seed_path, infer_schema=False), dt.date(2026, 1, 1))
    frames = {"dim_country": countries}
    for source in sources.SOURCES:
        parts = []
        for path in sorted(snapshot.glob(source.snapshot_glob)):
            payload = source.parse(path.read_bytes())
            parts.append(source.transform(payload.frame, source.name, payload.source_version, countries).valid)
        assert parts, f"no snapshot file for {source.name}"
        frames[source.table.name] = pl.concat(parts)
    assert sorted(frames) == sorted(validate.SUITE_TABLES)
    for table, frame in frames.items():
        report = validate.validate_frame(table, frame)
        failed = [(o.severity, o.label, o.message) for o in report.outcomes if not o.success]
        assert frame.height > 0 and failed == [], table


# ---------------------------------------------------------------------------------------- Data Docs


def test_build_data_docs_renders_each_suite_and_result(gx, tmp_path):
    bad = set_value(good_frame("fact_goods_trade"), 1, "flow", "imports")
    reports = [validate.validate_frame("fact_goods_trade", bad, run_id="run-42"),
               validate.validate_frame("fact_arms_transfers", good_frame("fact_arms_transfers"), run_id="run-42")]
    index = validate.build_data_docs(reports, tmp_path / "docs")
    assert index == (tmp_path / "docs" / "index.html").resolve()
    html = index.read_text(encoding="utf-8")
    for table in ("fact_goods_trade", "fact_arms_transfers"):
        assert (tmp_path / "docs" / "expectations" / f"{table}.html").is_file()
        assert f"validations/{table}/run-42/" in html
    pages = list((tmp_path / "docs" / "validations" / "fact_goods_trade" / "run-42").rglob("*.html"))
    assert len(pages) == 1 and "imports" in pages[0].read_text(encoding="utf-8")
    # the validation context is still usable afterwards
    assert validate.validate_frame("fact_goods_trade", good_frame("fact_goods_trade")).success


def test_data_docs_escape_the_source_values_they_show(gx, tmp_path):
    # GX's renderer puts unexpected values into the page as they are: a source's value must not become markup
    value = "<img src=x onerror=alert(1)>"
    report = validate.validate_frame("fact_security_events",
                                     set_value(good_frame("fact_security_events"), 1, "event_type", value),
                                     run_id="run-7")
    validate.build_data_docs([report], tmp_path / "docs")
    (page,) = (tmp_path / "docs" / "validations" / "fact_security_events" / "run-7").rglob("*.html")
    text = page.read_text(encoding="utf-8")
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "<img src=x" not in text and "&amp;lt;img" not in text
    # the report's own result (manifest, artifacts) keeps the value as it is
    failed = [r.result["partial_unexpected_list"] for r in report.gx_result.results if not r.success]
    assert failed and all(values == [value] for values in failed)


@pytest.fixture
def tokyo(monkeypatch):
    """The process in Asia/Tokyo (UTC+9, no daylight saving time), as under TZ=Asia/Tokyo (tzlocal, which GX's
    index renderer asks for the local zone, caches it: told again each way)."""
    import time

    import tzlocal

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    tzlocal.reload_localzone()
    yield
    monkeypatch.undo()
    time.tzset()
    tzlocal.reload_localzone()


def test_data_docs_show_the_validation_time_in_utc_under_another_time_zone(gx, tokyo, tmp_path):
    """GX serialises a run's time in the process' time zone and its pages print it with a 'Z': under
    TZ=Asia/Tokyo a run validated at 15:46 UTC read '00:46:17Z' (the next day) in its page's title."""
    report = validate.validate_frame("fact_arms_transfers", good_frame("fact_arms_transfers"), run_id="run-9")
    run_time = report.gx_result.meta["run_id"].run_time.astimezone(dt.UTC)
    validate.build_data_docs([report], tmp_path / "docs")
    (page,) = (tmp_path / "docs" / "validations" / "fact_arms_transfers" / "run-9").rglob("*.html")
    assert page.parent.name == f"{run_time:%Y%m%dT%H%M%S.%f}Z"
    text = page.read_text(encoding="utf-8")
    assert f"run-9 / {run_time:%Y-%m-%dT%H:%M:%S}Z" in text
    local = run_time.astimezone(dt.timezone(dt.timedelta(hours=9)))
    assert f"{local:%Y-%m-%dT%H:%M:%S}Z" not in text


def test_data_docs_index_shows_run_times_in_utc_under_another_time_zone(gx, tokyo, tmp_path):
    """GX's index page printed a validation's "Run Time" in the host's zone ("2026-12-06 00:46:17 JST" under
    TZ=Asia/Tokyo for a run at 15:46 UTC): the site's index renderer (eujp.docs_index) prints it in UTC."""
    report = validate.validate_frame("fact_arms_transfers", good_frame("fact_arms_transfers"), run_id="run-10")
    run_time = report.gx_result.meta["run_id"].run_time.astimezone(dt.UTC)
    index = validate.build_data_docs([report], tmp_path / "docs", offline=False)
    text = index.read_text(encoding="utf-8")
    assert f"{run_time:%Y-%m-%d %H:%M:%S} UTC" in text
    local = run_time.astimezone(dt.timezone(dt.timedelta(hours=9)))
    assert f"{local:%Y-%m-%d %H:%M:%S}" not in text and "JST" not in text


def test_dates_outside_pandas_nanosecond_range_are_compared_as_they_are(gx):
    """GX's pandas batch held dates as datetime64[ns], clamped to 1678..2261: date_end 2300-01-01 before
    date_introduced 2400-01-01 became two equal dates, and `date_end >= date_introduced` passed, where the SQL
    audit (eujp.suite_sql) on the same rows fails it. Such a column now goes to GX as datetime64[us]."""
    import duckdb

    from eujp.schema import LOAD_COLUMNS
    from eujp.suite_sql import evaluate_suite_sql

    table = "fact_export_restrictions"
    frame = set_value(set_value(good_frame(table), 0, "date_introduced", dt.date(2400, 1, 1)),
                      0, "date_end", dt.date(2300, 1, 1))
    frame = set_value(frame, 1, "date_introduced", dt.date(999, 1, 1))
    label = "expect_column_pair_values_a_to_be_greater_than_b(date_end, date_introduced)"
    report = validate.validate_frame(table, frame)
    by_label = {o.label: o for o in report.outcomes}
    assert not by_label[label].success and by_label[label].unexpected_count == 1
    assert by_label["expect_column_values_to_be_between(date_introduced)"].unexpected_count == 2
    assert "'0999-01-01'" in by_label["expect_column_values_to_be_between(date_introduced)"].message
    # the SQL audit says the same of the same rows
    conn = duckdb.connect()
    conn.register("frame", frame.with_columns(pl.lit(None, dtype=pl.String).alias(c) for c in LOAD_COLUMNS).to_arrow())
    conn.execute(f"CREATE TABLE {table} AS SELECT * FROM frame")
    sql = {o.label: o for o in evaluate_suite_sql(conn, table).outcomes}
    assert (sql[label].success, sql[label].unexpected_count) == (False, 1)
    # a frame whose dates are all in range still goes as datetime64[ns] (GX's fast path)
    assert str(validate._to_pandas(good_frame(table))["date_introduced"].dtype) == "datetime64[ns]"
    assert str(validate._to_pandas(frame)["date_introduced"].dtype) == "datetime64[us]"
