"""The preflight's check of the settings the run reads only once under way (eujp.preflight.check_run_settings):
a mistyped value fails the check, naming the variable, before anything is extracted; a value the services read
in any case (lower-case codes, spaces after commas) is taken as meant."""

from __future__ import annotations

from datetime import date

import pytest

from eujp.config import Settings
from eujp.live import env_codes
from eujp.preflight import check_run_settings
from eujp.sources import SOURCES
from eujp.sources.comext_goods import SOURCE as COMEXT
from eujp.sources.sipri_arms import SOURCE as SIPRI

# the URLs a live run needs for the sources whose live endpoint has no default (a mirror: any URL will do)
MIRRORS = {s.endpoint_env: "http://127.0.0.1:9/mirror" for s in SOURCES if s.endpoint and s.endpoint.required}


@pytest.fixture
def clean_env(monkeypatch):
    """os.environ without the run's settings (duckdb_memory_limit reads the process' environment)."""
    import os

    for name in [k for k in os.environ if k.startswith("EUJP_")]:
        monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.parametrize("mode", ["snapshot", "live"])
def test_the_defaults_pass(clean_env, mode):
    """Given, live, the URL of each source whose live endpoint has no default (the test below)."""
    check = check_run_settings(Settings(source_mode=mode), MIRRORS if mode == "live" else {})
    assert check.ok, check.detail


def test_a_live_run_of_a_source_without_a_default_endpoint_needs_its_url(clean_env):
    """SIPRI has no default live endpoint: a live run without EUJP_SIPRI_URL passed `eujp check` and the
    preflight, started Prefect and failed the source at extraction, every day (the deployment runs live). The
    check refuses it naming the variable and the way out; a run that leaves the source out, or a snapshot run,
    needs no URL."""
    assert SIPRI.endpoint.required and MIRRORS == {"EUJP_SIPRI_URL": "http://127.0.0.1:9/mirror"}
    others = [s.name for s in SOURCES if s is not SIPRI]
    for env in ({}, {"EUJP_SIPRI_URL": " "}):
        check = check_run_settings(Settings(source_mode="live"), env)
        assert not check.ok and check.setting == "EUJP_SIPRI_URL"
        assert check.detail.startswith(f"EUJP_SIPRI_URL is not set, and {SIPRI.name} has no default live endpoint: "
                                       "No default: SIPRI's live endpoint is unconfirmed. Set it to a mirror of "
                                       "the SIPRI trade register CSV")
        assert check.detail.endswith(f"Or leave {SIPRI.name} out of the run: "
                                     + " ".join(f"--only {name}" for name in others))
    alone = check_run_settings(Settings(source_mode="live", only_sources=(SIPRI.name,)), {})
    assert not alone.ok and alone.detail.endswith("Or run other sources (--only NAME)")
    assert check_run_settings(Settings(source_mode="live", only_sources=tuple(others)), {}).ok
    assert check_run_settings(Settings(source_mode="live"), {"EUJP_SIPRI_URL": "https://mirror.example/r.csv"}).ok
    assert check_run_settings(Settings(source_mode="snapshot"), {}).ok


def test_bad_values_and_a_cap_naming_no_source_fail_naming_each(clean_env):
    clean_env.setenv("EUJP_DUCKDB_MEMORY_LIMIT", "0MB")
    env = {"EUJP_BATCH_ROWS": "10k", "EUJP_MAX_PAYLOAD_MB": "1GB", "EUJP_MAX_PAYLOAD_MB_COMEXT": "5"}
    check = check_run_settings(Settings(), env)
    assert not check.ok
    assert "EUJP_BATCH_ROWS='10k' is not a whole number of rows" in check.detail
    assert "EUJP_DUCKDB_MEMORY_LIMIT must be at least 128MB, got '0MB'" in check.detail
    assert "EUJP_MAX_PAYLOAD_MB must be a size in MB above 0, got '1GB'" in check.detail
    assert "EUJP_MAX_PAYLOAD_MB_COMEXT names no source" in check.detail and "EUJP_MAX_PAYLOAD_MB_COMEXT_GOODS" \
        in check.detail
    assert check.setting.split(", ")[:2] == ["EUJP_BATCH_ROWS", "EUJP_DUCKDB_MEMORY_LIMIT"]
    assert check.detail.count("EUJP_MAX_PAYLOAD_MB must be") == 1  # said once, not once per source


def test_live_codes_and_start_are_checked_before_any_request(clean_env):
    env = {"EUJP_COMEXT_PARTNERS": "JP;CN", "EUJP_COMEXT_START": "01/2002", "EUJP_EUROSTAT_GOODS_GEO": "EU27 2020"}
    check = check_run_settings(Settings(source_mode="live"), env)
    assert not check.ok
    assert "EUJP_COMEXT_PARTNERS: 'JP;CN' is not a code" in check.detail
    assert "EUJP_EUROSTAT_GOODS_GEO: 'EU27 2020' is not a code" in check.detail
    # in snapshot mode the live settings are not read
    assert check_run_settings(Settings(source_mode="snapshot"), env).ok


@pytest.mark.parametrize(("start", "run_date", "month"), [
    ("2027-01", date(2026, 12, 5), "2026-12"), ("2027", date(2026, 12, 31), "2026-12")])
def test_a_comext_start_after_the_run_month_is_refused_naming_the_setting(clean_env, start, run_date, month):
    """It passed `eujp check` and the preflight, then failed the source at extraction every day ('watermark/start
    period 2027-01 is after the run month 2026-12', naming no setting). The run's month is its UTC one."""
    check = check_run_settings(Settings(source_mode="live", run_date=run_date), {"EUJP_COMEXT_START": start} | MIRRORS)
    assert not check.ok and check.setting == f"the settings of {COMEXT.name}"
    assert check.detail == (f"EUJP_COMEXT_START={start!r} is later than this month ({month}, the run's UTC month): "
                            "the dataflow has no month after it")
    assert check_run_settings(Settings(source_mode="live", run_date=run_date),
                              {"EUJP_COMEXT_START": month} | MIRRORS).ok


def test_an_oecd_start_is_checked_against_the_runs_year_not_the_clock(clean_env):
    env = {"EUJP_OECD_START": "2099"} | MIRRORS
    assert check_run_settings(Settings(source_mode="live", run_date=date(2099, 1, 1)), env).ok
    check = check_run_settings(Settings(source_mode="live", run_date=date(2098, 12, 31)), env)
    assert not check.ok and "EUJP_OECD_START='2099' is later than this year (2098, the run's UTC year)" in check.detail


def test_codes_are_read_as_the_services_write_them():
    """Lower case, spaces after commas, '+' between codes and a code twice: the codes meant, each once (Comext's
    key is case-sensitive: 'jp' asked for nothing; Eurostat's is not, and 'eu27_2020' beside an earlier
    'EU27_2020' looked like a geo added, whose history was fetched again)."""
    scope = COMEXT.request_scope({"EUJP_COMEXT_PARTNERS": "jp, cn+JP", "EUJP_COMEXT_START": "2002"})
    assert scope["partners"] == ["CN", "JP"] and scope["start"] == "2002-01"
    assert env_codes({"G": "eu27_2020, ea20"}, "G", "") == ("EU27_2020", "EA20")


def test_a_source_that_never_loaded_and_finds_nothing_again_is_warned_about_each_day(tmp_path, monkeypatch, caplog):
    """A live extraction with no observations is 'unchanged'; while nothing was ever loaded for the source, its
    note says so and the run log warns (a code the service does not have looked like a quiet day); once the
    source has loaded a payload, such a day is the quiet 'nothing new'."""
    import logging
    from datetime import UTC, datetime

    import eujp.pipeline
    from eujp.incremental import SourceState
    from eujp.pipeline import SourceBatch, skip_unchanged

    settings = Settings(source_mode="live", warehouse_path=tmp_path / "warehouse.duckdb")
    batch = SourceBatch(source=COMEXT.name, table=COMEXT.table.name, started_at=datetime.now(UTC))
    with caplog.at_level(logging.WARNING, logger="eujp"):
        assert skip_unchanged(batch, [], settings)
    assert batch.status == "unchanged" and "none ever loaded for what this extraction asked" in batch.note
    assert '"partners": ["JP"]' in batch.note  # what it asked, from the source's request scope
    assert any("none ever loaded" in r.getMessage() for r in caplog.records)
    loaded = SourceState(source=COMEXT.name, input_checksum="sha256:abc", last_success_at=datetime.now(UTC))
    monkeypatch.setattr(eujp.pipeline, "read_state", lambda path, source: loaded)
    quiet = SourceBatch(source=COMEXT.name, table=COMEXT.table.name, started_at=datetime.now(UTC))
    assert skip_unchanged(quiet, [], settings)
    assert quiet.note.startswith("unchanged: the service reported nothing new")
    assert quiet.input_checksum == "sha256:abc"


def test_the_fanout_wait_and_the_writer_limit_name_are_checked_before_the_run(clean_env):
    """EUJP_DASK_NO_WORKERS_SECONDS=abc passed the preflight and failed the Comext source after 47 s of a fanned-out
    run; EUJP_WRITER_LIMIT="team a/b?c" passed it and failed the run (s3:// target, PREFECT_API_URL set) with
    Prefect's validation error for GlobalConcurrencyLimitCreate, naming no setting. Both are refused now, each
    named with the form it wants; the writers' module refuses the name the same way."""
    from eujp.errors import EujpError
    from flows.writers import writer_limit_name

    check = check_run_settings(Settings(writer_limit="team a/b?c"), {"EUJP_DASK_NO_WORKERS_SECONDS": "abc"})
    assert not check.ok and check.setting == "EUJP_DASK_NO_WORKERS_SECONDS, EUJP_WRITER_LIMIT"
    assert check.detail == (
        "EUJP_DASK_NO_WORKERS_SECONDS='abc' is not a number of seconds above 0 (e.g. 120, the default); "
        "EUJP_WRITER_LIMIT='team a/b?c' cannot name a Prefect global concurrency limit: it holds '/'; use a name "
        "without any of / % & > < (e.g. eujp-writer-team-a), or 'off'")
    for fine in ({"EUJP_DASK_NO_WORKERS_SECONDS": "2.5"}, {}):
        assert check_run_settings(Settings(writer_limit="team a"), fine).ok
    assert check_run_settings(Settings(writer_limit="off"), {}).ok
    with pytest.raises(EujpError, match=r"^EUJP_WRITER_LIMIT='x<y' cannot name"):
        writer_limit_name(Settings(publish_uri="s3://bucket/eujp", writer_limit="x<y"))


def test_the_writer_limit_names_the_preflight_accepts_are_those_prefect_accepts():
    """The rule is Prefect's own (GlobalConcurrencyLimitCreate's name pattern), not a guess."""
    import pydantic
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    from eujp.config import writer_limit_problem

    for name in ("eujp-writer-team-a", "team a", "équipe.b_1", "a/b", "50%", "x&y", "a>b", "a<b", "team a/b?c"):
        try:
            GlobalConcurrencyLimitCreate(name=name, limit=1)
            prefect_accepts = True
        except pydantic.ValidationError:
            prefect_accepts = False
        assert (writer_limit_problem(name) is None) == prefect_accepts, name


def test_a_memory_limit_beyond_what_duckdb_takes_fails_the_check_not_the_run(clean_env):
    """99999999999999TB passed the check ('every value readable'), then the run crashed opening the warehouse
    (DuckDB: 'Memory value out of range'), naming no setting."""
    clean_env.setenv("EUJP_DUCKDB_MEMORY_LIMIT", "99999999999999TB")
    check = check_run_settings(Settings(), {})
    assert not check.ok and "EUJP_DUCKDB_MEMORY_LIMIT must be at most 1000000TB" in check.detail
    assert check.setting == "EUJP_DUCKDB_MEMORY_LIMIT"
    clean_env.setenv("EUJP_DUCKDB_MEMORY_LIMIT", "64GB")
    assert check_run_settings(Settings(), {}).ok
