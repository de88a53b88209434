"""The rejected-rows threshold (eujp.rejections): EUJP_MAX_REJECTED_PCT and its per-source override, the
verdict on each prepared batch (a warning within the threshold, an error above it), the message etl_runs
records, and how `eujp status` shows the last run's rejected rows. The runs themselves:
tests/integration/test_rejections_visible.py."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from eujp.config import DEFAULT_MAX_REJECTED_PCT, Settings
from eujp.pipeline import SourceBatch, etl_run_row
from eujp.rejections import judge_rejections, rejection_errors, rejection_warnings, unknown_threshold_sources
from eujp.rows import format_pct
from eujp.sources import SOURCES, security_events, sipri_arms

EVENTS, SIPRI = security_events.SOURCE, sipri_arms.SOURCE
OTHER = next(s for s in SOURCES if s not in (EVENTS, SIPRI))
RUN = "20261125T060000Z-rej001"
T0 = datetime(2026, 11, 25, 6, tzinfo=UTC)


def own_var(source) -> str:
    return f"EUJP_MAX_REJECTED_PCT_{source.name.upper()}"


@pytest.fixture
def env(monkeypatch):
    for name in [n for n in os.environ if n.startswith("EUJP_MAX_REJECTED_PCT")]:
        monkeypatch.delenv(name)
    return monkeypatch


def batch(source, rows_in: int, rejected: int, status: str = "prepared") -> SourceBatch:
    return SourceBatch(source=source.name, table=source.table.name, started_at=T0, rows_in=rows_in,
                       rows_rejected=rejected, valid_wire_rows=rows_in - rejected, status=status)


# --- the setting ----------------------------------------------------------------------------------------------

def test_the_default_threshold_is_five_percent_for_every_source(env):
    settings = Settings.from_env(run_id=RUN)
    assert DEFAULT_MAX_REJECTED_PCT == 5.0
    for source in SOURCES:
        assert settings.max_rejected_pct_for(source.name) == (5.0, "EUJP_MAX_REJECTED_PCT")


def test_a_source_of_its_own_overrides_the_general_threshold(env):
    env.setenv("EUJP_MAX_REJECTED_PCT", "2.5")
    env.setenv(own_var(EVENTS), "20")
    settings = Settings.from_env(run_id=RUN)
    assert settings.max_rejected_pct_for(EVENTS.name) == (20.0, own_var(EVENTS))
    assert settings.max_rejected_pct_for(SIPRI.name) == (2.5, "EUJP_MAX_REJECTED_PCT")
    assert unknown_threshold_sources(settings) == []


@pytest.mark.parametrize("value", ["-1", "100.5", "nan", "five"])
def test_a_threshold_that_is_not_a_percentage_is_refused_naming_its_variable(env, value):
    env.setenv("EUJP_MAX_REJECTED_PCT", value)
    with pytest.raises(ValueError, match="EUJP_MAX_REJECTED_PCT must be a percentage between 0 and 100"):
        Settings.from_env(run_id=RUN)
    env.delenv("EUJP_MAX_REJECTED_PCT")
    env.setenv(own_var(SIPRI), value)
    with pytest.raises(ValueError, match=f"{own_var(SIPRI)} must be a percentage between 0 and 100"):
        Settings.from_env(run_id=RUN)


def test_a_per_source_variable_naming_no_source_is_reported_with_the_known_ones(env):
    env.setenv("EUJP_MAX_REJECTED_PCT_NO_SUCH_SOURCE", "10")
    (problem,) = unknown_threshold_sources(Settings.from_env(run_id=RUN))
    assert problem.startswith("EUJP_MAX_REJECTED_PCT_NO_SUCH_SOURCE names no source")
    assert all(own_var(s) in problem for s in SOURCES)


# --- the verdicts ---------------------------------------------------------------------------------------------

def test_rejections_within_the_threshold_are_a_warning_above_it_an_error():
    settings = Settings(run_id=RUN)  # 5%
    within, above, clean = batch(EVENTS, 64, 3), batch(SIPRI, 455, 23), batch(OTHER, 10, 0)
    verdicts = judge_rejections(settings, [within, above, clean])
    assert [(v.source, v.over) for v in verdicts] == [(EVENTS.name, False), (SIPRI.name, True)]
    assert within.rejections == (
        f"{EVENTS.name}: 3 of 64 rows in rejected (4.69%), within the threshold of 5% (EUJP_MAX_REJECTED_PCT); "
        f"see etl_rejected_rows (run_id '{RUN}', source '{EVENTS.name}') for the rows and why")
    assert above.rejected_over_threshold and above.rejections == (
        f"{SIPRI.name}: 23 of 455 rows in rejected (5.05%), above the threshold of 5% (EUJP_MAX_REJECTED_PCT); "
        f"its 432 valid rows were loaded, but the run fails so that someone looks; see etl_rejected_rows "
        f"(run_id '{RUN}', source '{SIPRI.name}') for the rows and why")
    assert clean.rejections is None and not clean.rejected_over_threshold
    # what the run says once they are loaded: errors fail it, warnings do not
    for b in (within, above, clean):
        b.status = "loaded"
    assert rejection_errors([within, above, clean]) == [above.rejections]
    assert rejection_warnings([within, above, clean]) == [within.rejections]
    # and what etl_runs records for each source
    assert etl_run_row(within, RUN)["message"] == within.rejections
    assert etl_run_row(above, RUN)["status"] == "success"  # the valid rows were loaded
    assert etl_run_row(clean, RUN)["message"] is None


def test_a_share_equal_to_the_threshold_is_within_and_zero_fails_on_one_row():
    at = batch(EVENTS, 100, 5)
    judge_rejections(Settings(run_id=RUN), [at])
    assert not at.rejected_over_threshold and "within the threshold of 5%" in at.rejections
    one = batch(EVENTS, 1_000_000, 1)
    judge_rejections(Settings(run_id=RUN, max_rejected_pct=0), [one])
    assert one.rejected_over_threshold and "(0.0001%), above the threshold of 0%" in one.rejections
    judge_rejections(Settings(run_id=RUN, max_rejected_pct=0, max_rejected_pct_by_source=((EVENTS.name, 100.0),)),
                     [everything := batch(EVENTS, 10, 10)])
    assert not everything.rejected_over_threshold and f"(100%), within the threshold of 100% ({own_var(EVENTS)})" \
        in everything.rejections


def test_a_share_just_above_a_threshold_it_rounds_to_is_shown_unrounded():
    """1 of 64 (1.5625%) above 1.56%: both read "1.56%" when rounded alike, so both are shown as given."""
    over = batch(EVENTS, 64, 1)
    judge_rejections(Settings(run_id=RUN, max_rejected_pct=1.56), [over])
    assert over.rejected_over_threshold and "(1.5625%), above the threshold of 1.56% (" in over.rejections


def test_the_verdict_names_the_most_common_reasons_from_the_rows_held_and_spilled(tmp_path):
    from transforms.common import split_duplicates

    wire = pl.DataFrame({"partner": ["JP", "JP", "CN", "CN", "US", "ZZ", "ZZ"], "month": ["01", "01", "01", "01",
                                                                                     "02", "01", "01"],
                         "value": ["1", "1", "2", "2", "3", "x", "y"]})
    _, copies = split_duplicates(wire, ("partner", "month"))  # JP and CN: one exact copy each; ZZ: two conflicting
    rejected = copies.select("reason", pl.lit("{}").alias("raw_record"))
    spilled = pl.DataFrame({"reason": ["unknown partner code ZZ"] * 4 + [f"OBS_VALUE {'9' * 300} is not a number"],
                            "raw_record": ["{}"] * 5})
    spilled.write_parquet(tmp_path / "rejected-000000.parquet")
    above = batch(SIPRI, 20, rejected.height + spilled.height)
    above.rejected, above.rejected_chunks = rejected, [tmp_path / "rejected-000000.parquet"]
    (verdict,) = judge_rejections(Settings(run_id=RUN), [above])
    # the duplicates' key values are left out, so that the two copies are one reason; the codes stay
    assert verdict.reasons == [
        ("unknown partner code ZZ", 4),
        ("conflicting rows for natural key …", 2),  # ties by their text
        ("exact duplicate of an earlier row with natural key …", 2),
    ]
    assert above.rejections == (
        f"{SIPRI.name}: 9 of 20 rows in rejected (45%), above the threshold of 5% (EUJP_MAX_REJECTED_PCT); its 11 "
        'valid rows were loaded, but the run fails so that someone looks; most often: "unknown partner code ZZ" '
        '(4 rows), "conflicting rows for natural key …" (2 rows), "exact duplicate of an earlier row with natural '
        'key …" (2 rows); see etl_rejected_rows (run_id '
        f"'{RUN}', source '{SIPRI.name}') for the rows and why")
    # a long reason is cut in the verdict (the quarantine keeps it whole)
    one = batch(SIPRI, 20, 1)
    one.rejected = spilled.tail(1)
    ((long_reason, rows),) = judge_rejections(Settings(run_id=RUN), [one])[0].reasons
    assert rows == 1 and len(long_reason) == 160 and long_reason.startswith("OBS_VALUE 999") and long_reason.endswith("…")


def test_a_failed_batch_gets_no_verdict_its_error_already_fails_the_run():
    blocked = batch(EVENTS, 64, 0, status="failed")
    blocked.error = f"{EVENTS.name} ({EVENTS.table.name}): validate failed: a critical expectation"
    unchanged = batch(SIPRI, 0, 0, status="unchanged")
    assert judge_rejections(Settings(run_id=RUN, max_rejected_pct=0), [blocked, unchanged]) == []
    assert blocked.rejections is None and rejection_errors([blocked, unchanged]) == []


@pytest.mark.parametrize(("pct", "text"), [(0, "0%"), (4.6875, "4.69%"), (5, "5%"), (12.5, "12.5%"),
                                            (100, "100%"), (0.0001, "0.0001%"), (0.004, "0.004%"),
                                            (1e-5, "0.00001%"), (0.00123, "0.0012%"), (99.999, "99.999%"),
                                            (99.99, "99.99%")])
def test_shares_are_written_with_two_decimals_at_most_but_never_as_zero(pct, text):
    """1 row of 10M is 0.00001%, never '1e-05%'; one row kept of 100,000 is 99.999%, never '100%'."""
    assert format_pct(pct) == text


# --- eujp status ----------------------------------------------------------------------------------------------

def test_status_shows_the_last_run_per_source_with_its_rejected_rows():
    from rich.console import Console

    from eujp.status import SourceRun, WarehouseRun, render

    run = WarehouseRun(RUN, T0, T0, 3, 3, 0, 0, 519, 490, 29)
    sources = [SourceRun(EVENTS.name, "success", 64, 61, 3, "the verdict the run recorded"),
               SourceRun(SIPRI.name, "success", 455, 429, 26, None),  # a run from before verdicts
               SourceRun(OTHER.name, "unchanged", 0, 0, 0, None)]
    console = Console(file=io.StringIO(), width=250, record=True)
    render(console, warehouse_path=Path("wh.duckdb"), flow_runs=None, flow_runs_note=None,
           runs=[run], freshness=[], pointer=None, publish_uri="var/objectstore", last_run=sources)
    text = console.export_text()
    assert f"Last run {RUN}, per source (etl_runs)" in text
    assert "4.69%" in text and "5.71%" in text
    assert "warning: the verdict the run recorded" in text
    assert (f"warning: {SIPRI.name}: 26 of 455 rows in rejected (5.71%); see etl_rejected_rows "
            f"(run_id '{RUN}', source '{SIPRI.name}') for the rows and why") in text
    assert text.count("warning:") == 2


# --- the alert ------------------------------------------------------------------------------------------------

def test_the_alert_names_the_source_whose_rejected_rows_failed_the_run():
    from types import SimpleNamespace

    from flows import hooks

    above, within = batch(SIPRI, 455, 23), batch(EVENTS, 64, 3)
    judge_rejections(Settings(run_id=RUN), [above, within])
    for b in (above, within):
        b.status = "loaded"
    summary = {"errors": rejection_errors([above, within]), "sources": [above.summary(), within.summary()]}
    state = SimpleNamespace(name="Failed", message=f"run {RUN} failed: {above.rejections}", is_crashed=lambda: False,
                            result=lambda raise_on_failure=True: summary)
    hooks.begin_run(None, None, None)
    alert = hooks.build_alert(SimpleNamespace(name="eujp-daily"), SimpleNamespace(name="crimson-otter", id="x"),
                              state)
    assert alert.failed_tasks == [f"prepare {SIPRI.name} (rejected rows above the threshold)"]
    assert "above the threshold of 5% (EUJP_MAX_REJECTED_PCT)" in alert.error


def test_a_run_failed_by_its_rejected_rows_is_failed_in_status_though_its_sources_loaded(tmp_path):
    """A source above its threshold loads (etl_runs status 'success'), but its run failed: `eujp status` said
    'success' for that run. Its verdict, in etl_runs.message, now counts it as failed there (and in the
    catalog and the report: eujp.rows.failed_source_sql)."""
    import duckdb
    from rich.console import Console

    from eujp.status import SourceRun, render, warehouse_runs
    from eujp.tables import ensure_schema

    above = batch(SIPRI, 455, 23)
    judge_rejections(Settings(run_id=RUN), [above])
    path = tmp_path / "wh.duckdb"
    with duckdb.connect(str(path)) as conn:
        ensure_schema(conn)
        for source, status, rejected, message in ((SIPRI.name, "success", 23, above.rejections),
                                                  (EVENTS.name, "success", 0, None),
                                                  (OTHER.name, "unchanged", 0, None)):
            conn.execute("INSERT INTO etl_runs (run_id, source, table_name, status, rows_in, rows_loaded, "
                         "rows_rejected, started_at, ended_at, message) VALUES (?, ?, 't', ?, 10, 10, ?, now(), "
                         "now(), ?)", [RUN, source, status, rejected, message])
    (run,) = warehouse_runs(path)
    assert (run.status, run.succeeded, run.unchanged, run.failed) == ("failed", 1, 1, 1)
    console = Console(file=io.StringIO(), width=400, record=True)
    render(console, warehouse_path=path, flow_runs=None, flow_runs_note=None, runs=[run], freshness=[],
           pointer=None, publish_uri="var/objectstore",
           last_run=[SourceRun(SIPRI.name, "success", 455, 432, 23, above.rejections)])
    text = console.export_text()
    assert "error: " + above.rejections[:60] in text and "failed" in text and "1/1/1" in text
