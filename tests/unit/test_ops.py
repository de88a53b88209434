"""Operations, without a Prefect server: publishing a directory (Data Docs), freshness, alerts and their
webhook, as-of replay plans, run artifacts, status, progress, infra files, CLI guards."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from uuid import uuid4

import pytest
import yaml

from eujp.alerts import FailureAlert, slack_payload
from eujp.asof import last_confirmed, replay_plan, stamp_extraction_times
from eujp.freshness import NEVER, OK, STALE, assess, warehouse_freshness
from eujp.incremental import SourceState
from eujp.landing import RawPayload, land
from eujp.publish import publish_run
from eujp.sources import (
    SOURCES,
    comext_goods,
    eurostat_goods,
    eurostat_services,
    get_source,
    oecd_restrictions,
    security_events,
    sipri_arms,
)
from eujp.storage import LocalObjectStore
from eujp.tables import ensure_schema
from eujp.warehouse import connect, record_run, write_source_state

REPO = Path(__file__).resolve().parents[2]
TOKEN = "T0KEN-b6f1c2"  # stands for the secret part of a Slack webhook URL

# The sources these tests single out, by their modules (a source's name is written in its own folder only):
# two monthly ones (31-day cadence), two yearly ones (366 days), and the annual goods.
COMEXT, EVENTS = comext_goods.SOURCE, security_events.SOURCE
SIPRI, OECD, GOODS = sipri_arms.SOURCE, oecd_restrictions.SOURCE, eurostat_goods.SOURCE


def _empty_warehouse(path):
    with connect(path) as c:
        ensure_schema(c)
    return path


# --- publish: a directory of extra files ------------------------------------------------------------

def test_publish_uploads_a_directory_under_the_run_prefix_with_checksums(tmp_path):
    site = tmp_path / "site"
    (site / "static" / "styles").mkdir(parents=True)
    (site / "index.html").write_text("<html>docs</html>")
    (site / "static" / "styles" / "a.css").write_text("body{}")
    store = LocalObjectStore(tmp_path / "objects")
    uploaded = []
    result = publish_run(
        store, run_id="20261124T060000Z-d0c5d0", warehouse_path=_empty_warehouse(tmp_path / "wh.duckdb"),
        work_dir=tmp_path / "work", extra_files={"docs": site}, on_upload=uploaded.append,
        manifest_without_checksums={"run_id": "20261124T060000Z-d0c5d0", "status": "success", "table_rows": {},
                                    "sources": {}, "validation": {}, "audit": {}},
    )
    prefix = "runs/20261124T060000Z-d0c5d0"
    assert store.get_bytes(f"{prefix}/docs/index.html") == b"<html>docs</html>"
    assert store.get_bytes(f"{prefix}/docs/static/styles/a.css") == b"body{}"
    files = result.manifest["files"]
    assert files == {"docs/index.html": hashlib.sha256(b"<html>docs</html>").hexdigest(),
                     "docs/static/styles/a.css": hashlib.sha256(b"body{}").hexdigest()}
    # every run object reported once, after it verified; latest moves after them
    assert f"{prefix}/docs/index.html" in uploaded and uploaded[-1] == f"{prefix}/manifest.json"
    assert len(uploaded) == len(set(uploaded)) == len(store.list_keys(prefix))


# --- freshness ---------------------------------------------------------------------------------------

NOW = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)


def test_freshness_flags_sources_older_than_their_cadence_and_those_never_extracted():
    states = {
        # 31-day cadence, last success 40 days ago: missed a publication
        COMEXT.name: SourceState(COMEXT.name, last_success_at=NOW - timedelta(days=40),
                                 last_attempt_at=NOW, last_status="failed", newest_period="2025-06"),
        # 366-day cadence, 40 days: fine
        SIPRI.name: SourceState(SIPRI.name, last_success_at=NOW - timedelta(days=40), last_status="success"),
        # exactly on its cadence: not yet stale
        EVENTS.name: SourceState(EVENTS.name, last_success_at=NOW - timedelta(days=31)),
        OECD.name: SourceState(OECD.name, last_attempt_at=NOW, last_status="failed"),
    }
    result = {f.source: f for f in assess(states, NOW, [COMEXT, SIPRI, EVENTS, OECD, GOODS])}
    assert result[COMEXT.name].status == STALE
    assert result[COMEXT.name].age_days == pytest.approx(40)
    assert "40.0 days ago" in result[COMEXT.name].warning and "31-day cadence" in result[COMEXT.name].warning
    assert "2025-06" in result[COMEXT.name].warning
    assert result[SIPRI.name].status == OK and result[SIPRI.name].warning is None
    assert result[EVENTS.name].status == OK
    assert result[OECD.name].status == NEVER and "last attempt" in result[OECD.name].warning
    assert result[GOODS.name].status == NEVER  # no state row at all
    with pytest.raises(ValueError, match="timezone"):
        assess(states, NOW.replace(tzinfo=None))


def test_freshness_is_read_from_etl_source_state_in_the_warehouse(tmp_path):
    wh = _empty_warehouse(tmp_path / "wh.duckdb")
    with connect(wh) as conn:
        write_source_state(conn, SourceState(GOODS.name, last_success_at=NOW - timedelta(days=2),
                                             last_attempt_at=NOW - timedelta(days=2), last_status="success",
                                             newest_period="2024"))
        write_source_state(conn, SourceState(COMEXT.name, last_success_at=NOW - timedelta(days=45),
                                             last_status="unchanged", newest_period="2025-06"))
    result = {f.source: f for f in warehouse_freshness(wh, NOW)}
    assert set(result) == {s.name for s in SOURCES}
    assert (result[GOODS.name].status, result[GOODS.name].newest_period) == (OK, "2024")
    assert result[GOODS.name].last_success_at == NOW - timedelta(days=2)
    assert result[COMEXT.name].status == STALE
    assert result[SIPRI.name].status == NEVER
    assert result[COMEXT.name].to_dict()["last_success_at"].startswith("2026-10-10T06:00:00")
    assert warehouse_freshness(tmp_path / "none.duckdb", NOW)[0].status == NEVER


# --- alerts: payload and webhook ----------------------------------------------------------------------

def _alert(**kw) -> FailureAlert:
    base = {"flow_name": "eujp-daily", "flow_run_name": "crimson-otter", "state": "Failed",
            "error": f"run r1 failed: {SIPRI.name} (fact_arms_transfers): extract failed: HTTP 503",
            "failed_tasks": [f"extract {SIPRI.name} after 3 attempts: ExtractError: HTTP 503"],
            "deployment": "daily", "run_url": "http://127.0.0.1:4200/runs/flow-run/abc"}
    return FailureAlert(**(base | kw))


def test_slack_payload_names_the_flow_run_the_failed_task_and_the_error_within_slack_limits():
    payload = slack_payload(_alert())
    assert "crimson-otter" in payload["text"] and f"extract {SIPRI.name}" in payload["text"]
    assert "HTTP 503" in payload["text"]
    blocks = payload["blocks"]
    assert blocks[0]["type"] == "header" and "crimson-otter" in blocks[0]["text"]["text"]
    assert any("*Failed task*" in b.get("text", {}).get("text", "") for b in blocks)
    assert blocks[-1]["elements"][0]["text"].startswith("<http://127.0.0.1:4200/runs/flow-run/abc|")
    huge = slack_payload(_alert(error="x" * 50_000, flow_run_name="n" * 400, failed_tasks=[]))
    assert len(huge["blocks"][0]["text"]["text"]) <= 150
    assert all(len(b["text"]["text"]) <= 3000 for b in huge["blocks"] if b["type"] == "section" and "text" in b)
    assert "none (the flow itself failed)" in huge["text"]
    json.dumps(huge)  # serialisable


# --- hooks: the alert of a failed / crashed flow run ----------------------------------------------------

@dataclass
class FakeState:
    name: str
    message: str
    data: object = None
    crashed: bool = False

    def is_crashed(self):
        return self.crashed

    def result(self, raise_on_failure=True):
        return self.data


@dataclass
class FakeRun:
    name: str = "crimson-otter"
    id: str = field(default_factory=lambda: str(uuid4()))
    deployment_id: None = None
    run_count: int = 1


def test_alert_of_a_failed_run_names_failed_tasks_and_failing_sources(monkeypatch):
    from flows import hooks

    hooks.begin_run(None, FakeRun(), None)
    hooks.remember_task_failure(None, FakeRun(name=f"extract {SIPRI.name}", run_count=3),
                                FakeState("Failed", "Task run encountered an exception ExtractError: HTTP 503\nmore"))
    summary = {"sources": [
        {"source": SIPRI.name, "status": "failed",
         "error": f"{SIPRI.name} (fact_arms_transfers): extract failed: HTTP 503"},
        {"source": EVENTS.name, "status": "failed",
         "error": f"{EVENTS.name} (fact_security_events): validate failed: fact_security_events: 1 critical"},
        {"source": COMEXT.name, "status": "loaded", "error": None},
    ]}
    state = FakeState("Failed", f"run r1 failed: {SIPRI.name} ... | {EVENTS.name} ...", data=summary)
    alert = hooks.build_alert(SimpleNamespace(name="eujp-daily"), FakeRun(), state)
    assert alert.failed_tasks == [
        f"extract {SIPRI.name} after 3 attempts: Task run encountered an exception ExtractError: HTTP 503",
        f"prepare {EVENTS.name} (validate of {EVENTS.name} failed)",
    ]
    assert alert.error == state.message and alert.state == "Failed" and alert.flow_run_name == "crimson-otter"
    # a new flow run in the same process starts with a clean slate
    hooks.begin_run(None, FakeRun(), None)
    assert hooks.task_failures() == []


def test_alert_of_a_crashed_run_asks_the_api_what_was_running():
    from flows import hooks

    hooks.begin_run(None, FakeRun(), None)
    run = FakeRun()
    seen = []
    alert = hooks.build_alert(SimpleNamespace(name="eujp-daily"), run,
                              FakeState("Crashed", "Flow run infrastructure exited with non-zero status code -9.",
                                        data=RuntimeError("crashed"), crashed=True),
                              task_lookup=lambda fid: seen.append(fid) or ["publish-3f1 (Running)"],
                              name_lookup=lambda r: seen.append(r.id) or "daily-20261124T060000Z-1a2b3c")
    assert seen == [run.id, run.id]
    # the reporting process held the run as it picked it up: the alert names it as the run named itself
    assert alert.flow_run_name == "daily-20261124T060000Z-1a2b3c" != run.name
    assert alert.failed_tasks == ["publish-3f1 (Running)"] and alert.state == "Crashed"
    assert "-9" in alert.error


def test_daily_as_of_and_lake_maintenance_flows_alert_on_failure_and_on_crash():
    from flows.api import FLOW_NAMES
    from flows.backfill import as_of_flow
    from flows.daily import daily_flow
    from flows.hooks import begin_run, notify_failure
    from flows.lake import lake_maintain_flow

    for f in (daily_flow, as_of_flow, lake_maintain_flow):
        assert notify_failure in f.on_failure_hooks and notify_failure in f.on_crashed_hooks
        assert begin_run in f.on_running_hooks
    # the server-side automation and `eujp status` watch the same flows
    assert set(FLOW_NAMES) == {daily_flow.name, as_of_flow.name, lake_maintain_flow.name}


# --- as-of: the replay plan ---------------------------------------------------------------------------

def _land(store, source, day, *contents):
    ext = get_source(source).extension
    for i, text in enumerate(contents):
        land(store, RawPayload(source, f"f{i}.{ext}", text.encode(), "file:///x",
                               fetched_at=f"{day.isoformat()}T06:0{i}:00+00:00"), day, ext)


def test_replay_plan_loads_each_change_once_in_order_up_to_the_day(tmp_path):
    store = LocalObjectStore(tmp_path / "store")
    d = [date(2026, 3, 1) + timedelta(days=i) for i in range(6)]
    # events: A, A, B, A (changed back: replayed), then C after the as-of day
    for day, text in zip(d[:5], ["A", "A", "B", "A", "C"], strict=True):
        _land(store, EVENTS.name, day, text)
    # comext: two payloads a day; the same set twice, then one of them changes
    _land(store, COMEXT.name, d[0], "x", "y")
    _land(store, COMEXT.name, d[1], "y", "x")
    _land(store, COMEXT.name, d[3], "x", "y2")
    sources = [COMEXT, EVENTS, SIPRI]
    plan = replay_plan(store, d[3], sources)
    assert [(s.day, s.sources) for s in plan.steps] == [
        (d[0], (COMEXT.name, EVENTS.name)),
        (d[2], (EVENTS.name,)),
        (d[3], (COMEXT.name, EVENTS.name)),
    ]
    assert plan.missing == (SIPRI.name,) and plan.loads == 5
    assert [landing.day for landing in plan.history[EVENTS.name]] == d[:4]  # d[4] is after the day
    # the last success of content loaded on d[0] was confirmed on d[1] (same content landed again)
    assert last_confirmed(plan.history[COMEXT.name], d[0]).day == d[1]
    assert last_confirmed(plan.history[EVENTS.name], d[3]).day == d[3]
    assert replay_plan(store, d[0] - timedelta(days=1), sources).steps == ()


def test_stamp_extraction_times_reports_landing_times_not_replay_times(tmp_path):
    store = LocalObjectStore(tmp_path / "store")
    d0, d1 = date(2026, 3, 1), date(2026, 3, 2)
    _land(store, EVENTS.name, d0, "A")
    _land(store, EVENTS.name, d1, "A")
    _land(store, SIPRI.name, d0, "S")
    plan = replay_plan(store, d1, [EVENTS, SIPRI])
    wh = _empty_warehouse(tmp_path / "wh.duckdb")
    replayed_at = datetime.now(UTC)
    with connect(wh) as conn:
        write_source_state(conn, SourceState(EVENTS.name, last_success_at=replayed_at,
                                             last_attempt_at=replayed_at, last_status="success"))
        write_source_state(conn, SourceState(SIPRI.name, last_attempt_at=replayed_at, last_status="failed"))
        stamp_extraction_times(conn, plan, {EVENTS.name: d0})
    result = {f.source: f for f in warehouse_freshness(wh, datetime(2026, 3, 3, tzinfo=UTC))}
    assert result[EVENTS.name].last_success_at == datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    assert result[SIPRI.name].last_success_at is None
    assert result[SIPRI.name].last_attempt_at == datetime(2026, 3, 1, 6, 0, tzinfo=UTC)


def test_a_replayed_day_whose_newest_landing_fails_stamps_the_success_of_the_landing_it_loaded(tmp_path):
    """Two runs a day land the services file: at 06:05 whole, at 09:00 cut mid-document (that run failed the
    source and loaded nothing). Day 2 lands the same two again. The rebuild replays day 1 (day 2 repeats it),
    leaves the cut landing out, and the source's last success is when the landing it loaded was fetched on
    the last day that confirmed it (day 2, 06:05), not the cut landing's 09:00; the last attempt is 09:00."""
    from eujp.asof import Replay
    from eujp.config import Settings
    from eujp.landing import read_landed, record_landing
    from eujp.pipeline import (
        SourceBatch,
        load_batches,
        load_countries,
        prepare_source,
        skip_unchanged,
        utcnow,
    )
    from eujp.warehouse import read_source_state

    source = eurostat_services.SOURCE
    store = LocalObjectStore(tmp_path / "store")
    (good,) = sorted((REPO / "data" / "snapshot").glob(source.snapshot_glob))
    whole = good.read_bytes()
    d1, d2 = date(2026, 3, 2), date(2026, 3, 3)
    for day in (d1, d2):
        for hour, data in ((6, whole), (9, whole[:5000])):
            at = datetime(day.year, day.month, day.day, hour, 5 if hour == 6 else 0, tzinfo=UTC)
            payload = RawPayload(source.name, good.name, data, "https://ec.europa.eu/eurostat/api/x",
                                 fetched_at=at.isoformat(timespec="seconds"))
            land(store, payload, day, source.extension)
            record_landing(store, source.name, day, [payload.sha256], at=at)
    plan = replay_plan(store, d2, [source])
    replay = Replay(plan.history)
    wh = _empty_warehouse(tmp_path / "wh.duckdb")
    replayed = []
    for step in replay:  # as flows.backfill.rebuild_as_of, without Prefect: day 2 repeats what day 1 applied
        settings = Settings(warehouse_path=wh, publish_uri=str(tmp_path / "store"), source_mode="raw",
                            raw_date=step.day, run_id=f"20260305T000000Z-asof01-{step.day:%Y%m%d}")
        batch = SourceBatch(source=source.name, table=source.table.name, started_at=utcnow())
        payloads = read_landed(store, source.name, step.day)
        assert not skip_unchanged(batch, payloads, settings)
        prepare_source(source, payloads, load_countries(step.day), batch)
        assert batch.status == "prepared" and len(batch.landing_errors) == 1, batch.error
        assert "landing 2 of 2 of the day not applied" in batch.landing_errors[0]
        with connect(wh) as conn:
            load_batches(conn, [batch], run_id=settings.run_id)
        replay.apply(step.day, [source.name], {source.name: batch.fetched})
        replayed.append(step.day)
    assert replayed == [d1]
    with connect(wh) as conn:
        stamp_extraction_times(conn, plan, replay.loaded_days, replay.loaded)
        state = read_source_state(conn, source.name)
    assert state.last_status == "success"
    assert state.last_success_at == datetime(2026, 3, 3, 6, 5, tzinfo=UTC)
    assert state.last_attempt_at == datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
    assert state.requested_at == datetime(2026, 3, 2, 6, 5, tzinfo=UTC)  # the loaded landing's extraction


def test_a_replay_that_leaves_out_a_landing_takes_its_extraction_time_from_the_landings_it_loaded(tmp_path):
    """A day whose first run (05:00) landed the services file cut, and whose second (06:05) landed it whole: the
    replay loads the second only, so the extraction the warehouse holds is the 06:05 one (where the next live
    request starts, etl_source_state.requested_at), not the cut landing's 05:00."""
    from eujp.config import Settings
    from eujp.landing import read_landed, record_landing
    from eujp.pipeline import SourceBatch, load_countries, prepare_source, skip_unchanged, utcnow

    source = eurostat_services.SOURCE
    store = LocalObjectStore(tmp_path / "store")
    (good,) = sorted((REPO / "data" / "snapshot").glob(source.snapshot_glob))
    day, whole = date(2026, 3, 2), good.read_bytes()
    loaded = None
    for at, data in ((datetime(2026, 3, 2, 5, 0, tzinfo=UTC), whole[:5000]),
                     (datetime(2026, 3, 2, 6, 5, tzinfo=UTC), whole)):
        payload = RawPayload(source.name, good.name, data, "https://ec.europa.eu/eurostat/api/x",
                             fetched_at=at.isoformat(timespec="seconds"))
        land(store, payload, day, source.extension)
        record_landing(store, source.name, day, [payload.sha256], at=at)
        loaded = payload.sha256
    settings = Settings(warehouse_path=tmp_path / "wh.duckdb", publish_uri=str(tmp_path / "store"),
                        source_mode="raw", raw_date=day)
    batch = SourceBatch(source=source.name, table=source.table.name, started_at=utcnow())
    payloads = read_landed(store, source.name, day)
    assert not skip_unchanged(batch, payloads, settings)
    prepare_source(source, payloads, load_countries(day), batch)
    assert batch.status == "prepared" and "landing 1 of 2 of the day not applied" in batch.landing_errors[0]
    assert batch.extracted_at == datetime(2026, 3, 2, 6, 5, tzinfo=UTC)
    assert batch.fetched == {loaded: datetime(2026, 3, 2, 6, 5, tzinfo=UTC)}


# --- artifacts ------------------------------------------------------------------------------------------

def _summary(**kw):
    v_ok = {"success": True, "row_count": 42, "statistics": {"evaluated": 19, "successful": 19, "unsuccessful": 0,
                                                             "critical_failed": 0, "warning_failed": 0}}
    v_bad = {"success": False, "row_count": 65, "statistics": {"evaluated": 21, "successful": 20, "unsuccessful": 1,
                                                               "critical_failed": 1, "warning_failed": 0}}
    base = {
        "run_id": "20261124T060000Z-abc123", "status": "failed", "warehouse": "var/warehouse.duckdb",
        "published_to": "s3://bucket/eujp/runs/20261124T060000Z-abc123",
        "docs_url": "https://data.example.org/eujp/runs/20261124T060000Z-abc123/docs/index.html",
        "table_rows": {"fact_goods_trade": 42},
        "errors": [f"{EVENTS.name} (fact_security_events): validate failed: 1899-01-01"],
        "warnings": [f"freshness: {COMEXT.name}: last successful extraction 40.0 days ago"],
        "sources": [
            {"source": GOODS.name, "table": "fact_goods_trade", "status": "loaded", "rows_in": 42,
             "rows_loaded": 42, "rows_rejected": 0, "rows_written": 42, "validation": v_ok},
            {"source": EVENTS.name, "table": "fact_security_events", "status": "failed", "rows_in": 65,
             "rows_loaded": 0, "rows_rejected": 65, "rows_written": 0, "validation": v_bad},
            {"source": SIPRI.name, "table": "fact_arms_transfers", "status": "unchanged", "rows_in": 0,
             "rows_loaded": 0, "rows_rejected": 0, "rows_written": 0, "validation": None},
        ],
        "freshness": [f.to_dict() for f in assess({COMEXT.name: SourceState(
            COMEXT.name, last_success_at=NOW - timedelta(days=40), newest_period="2025-06")}, NOW,
            [COMEXT])],
        "audit": {"ok": False, "checks": [{"name": "fact_x.row_count_delta", "ok": False, "detail": "100 -> 1"}]},
    }
    return base | kw


def test_rows_artifact_has_rows_in_loaded_rejected_per_table():
    from flows.artifacts import rows_table

    rows = rows_table(_summary())
    assert rows[1] == {"table": "fact_security_events", "source": EVENTS.name, "status": "failed",
                       "rows in": 65, "valid": 0, "rejected": 65, "written": 0}
    assert [r["table"] for r in rows] == ["fact_goods_trade", "fact_security_events", "fact_arms_transfers"]


def test_run_report_shows_each_suite_the_publication_the_docs_link_and_stale_sources():
    from flows.artifacts import run_markdown

    md = run_markdown(_summary())
    assert md.startswith("## eujp-daily run `20261124T060000Z-abc123`: FAILED")
    assert "| published to | `s3://bucket/eujp/runs/20261124T060000Z-abc123` |" in md
    assert "[open the Data Docs](https://data.example.org/eujp/runs/20261124T060000Z-abc123/docs/index.html)" in md
    assert f"| fact_goods_trade | {GOODS.name} | passed | 42 | 19/19 | 0 | 0 |" in md
    assert f"| fact_security_events | {EVENTS.name} | **FAILED** (not loaded) | 65 | 20/21 | 1 | 0 |" in md
    assert f"| fact_arms_transfers | {SIPRI.name} | not validated: unchanged since its last load |" in md
    assert f"| {COMEXT.name} | 2026-10-15 06:00:00 | 40.0 | 31 | 2025-06 | **STALE** |" in md
    assert "### Warnings" in md and "40.0 days ago" in md
    assert "### Errors" in md and "1899-01-01" in md
    assert "fact_x.row_count_delta: 100 -&gt; 1" in md  # markdown for "100 -> 1"
    unpublished = run_markdown(_summary(published_to=None, docs_url=None, audit={}, errors=[], warnings=[]))
    assert "| published to | not published |" in unpublished and "| Data Docs | not built |" in unpublished
    unchanged = run_markdown(_summary(docs_url=None, sources=_summary()["sources"][2:]))
    assert "| Data Docs | none: no source was validated in this run |" in unchanged
    assert "### Errors" not in unpublished and "audit" not in unpublished.lower()


def test_run_report_shows_source_values_as_text_never_as_markup():
    """A rejected row quoted in a warning, an error and an audit detail carry source values: the eujp-run-report
    artifact kept `[click](http://evil.example)` a working link and `<img src=x onerror=...>` an element. Rendered
    as markdown, each reads as the value; so does an error with backticks in the failure artifact."""
    from markdown_it import MarkdownIt

    from flows.artifacts import failure_markdown, run_markdown

    evil = "'[click](http://evil.example)' <img src=x onerror=alert(1)> *bold* _em_ `code` a|b"
    md = run_markdown(_summary(errors=[f"{EVENTS.name}: parse failed: {evil}"],
                               warnings=[f'most often: "date: not a yyyy-mm-dd date: {evil}"'],
                               audit={"checks": [{"name": "fact_x.check", "ok": False, "detail": evil}]}))
    page = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(md)
    for element in ("<a href=\"http://evil", "<img", "<strong>bold", "<em>em", "<code>code"):
        assert element not in page
    shown = "'[click](http://evil.example)' &lt;img src=x onerror=alert(1)&gt; *bold* _em_ `code` a|b"
    assert page.count(shown) == 3  # the error, the warning, the audit check
    error = "bad value: ```\n<script>x</script>"
    failed = MarkdownIt("commonmark", {"html": True}).render(failure_markdown("r1", error))
    assert "<script>" not in failed and "&lt;script&gt;x&lt;/script&gt;" in failed
    assert "Nothing was promoted" in failed.split("</code></pre>")[1]  # the block did not end early



def test_a_failed_audit_marks_the_loaded_sources_not_promoted_and_lists_its_failed_checks():
    # the audit rolled the staging warehouse back: the run's summary and artifacts must not say "loaded"
    from eujp.audit import AuditCheck, AuditReport
    from eujp.errors import AuditFailed
    from eujp.pipeline import SourceBatch
    from eujp.run import RunSummary, audit_failed
    from flows.artifacts import rows_table, run_markdown

    loaded = SourceBatch(source=EVENTS.name, table=EVENTS.table.name, started_at=NOW, status="loaded", rows_in=64,
                         rows_loaded=64, rows_written=64)
    unchanged = SourceBatch(source=SIPRI.name, table=SIPRI.table.name, started_at=NOW, status="unchanged")
    report = AuditReport([AuditCheck(f"{EVENTS.table.name}.row_count_delta", False, "64 -> 0"),
                          AuditCheck(f"{EVENTS.table.name}.unique_natural_key", True, "no duplicate")])
    with pytest.raises(AuditFailed) as caught:
        report.raise_if_failed()
    summary = RunSummary(run_id="r1", status="success")
    audit_failed(summary, [loaded, unchanged], caught.value)
    assert summary.status == "failed" and summary.errors == [str(caught.value)]
    rows = rows_table(summary.to_dict())
    assert [(r["source"], r["status"], r["written"]) for r in rows] == [
        (EVENTS.name, "loaded, not promoted: audit failed", 0), (SIPRI.name, "unchanged", 0)]
    md = run_markdown(summary.to_dict())
    assert f"### Failed audit checks\n\n- {EVENTS.table.name}.row_count_delta: 64 -&gt; 0\n" in md  # "64 -> 0"
    assert "unique_natural_key" not in md

# --- status ---------------------------------------------------------------------------------------------

def _record(conn, run_id, source, status, start, rows=(10, 9, 1)):
    record_run(conn, {"run_id": run_id, "source": source, "table_name": get_source(source).table.name,
                      "input_checksum": "c", "source_version": None, "rows_in": rows[0], "rows_loaded": rows[1],
                      "rows_rejected": rows[2], "rows_written": rows[1], "started_at": start,
                      "ended_at": start + timedelta(seconds=5), "status": status, "message": None})


def test_status_lists_runs_newest_first_with_their_outcome_and_freshness(tmp_path):
    from rich.console import Console

    from eujp.status import render, warehouse_runs

    wh = _empty_warehouse(tmp_path / "wh.duckdb")
    t0 = datetime(2026, 11, 22, 6, tzinfo=UTC)
    with connect(wh) as conn:
        _record(conn, "20261122T060000Z-aaaaaa", GOODS.name, "success", t0)
        _record(conn, "20261122T060000Z-aaaaaa", SIPRI.name, "success", t0)
        _record(conn, "20261123T060000Z-bbbbbb", GOODS.name, "unchanged", t0 + timedelta(days=1), (0, 0, 0))
        _record(conn, "20261123T060000Z-bbbbbb", SIPRI.name, "failed", t0 + timedelta(days=1), (5, 0, 5))
        write_source_state(conn, SourceState(GOODS.name, last_success_at=t0 + timedelta(days=1),
                                             last_status="unchanged", newest_period="2024"))
    runs = warehouse_runs(wh)
    assert [r.run_id for r in runs] == ["20261123T060000Z-bbbbbb", "20261122T060000Z-aaaaaa"]
    assert (runs[0].status, runs[0].unchanged, runs[0].failed, runs[0].rows_rejected) == ("failed", 1, 1, 5)
    assert (runs[1].status, runs[1].succeeded, runs[1].rows_in) == ("success", 2, 20)
    console = Console(file=io.StringIO(), width=250, record=True)
    render(console, warehouse_path=wh, flow_runs=[{"flow": "eujp-daily", "name": "crimson-otter",
                                                  "state": "Completed", "state_type": "COMPLETED",
                                                  "start_time": t0, "total_run_time": 42.0, "deployment": "daily"}],
           flow_runs_note="next scheduled run: eujp-daily/daily at 2026-11-25 06:00 UTC", runs=runs,
           freshness=warehouse_freshness(wh, t0 + timedelta(days=2)), pointer={"run_id": "20261122T060000Z-aaaaaa",
                                                                               "prefix": "runs/x", "published_at": "t"},
           publish_uri="var/objectstore")
    text = console.export_text()
    assert "crimson-otter" in text and "Completed" in text and "42 s" in text
    assert "20261123T060000Z-bbbbbb" in text and "0/1/1" in text
    assert "latest = run 20261122T060000Z-aaaaaa" in text
    assert "next scheduled run" in text
    assert f"{SIPRI.name}: never extracted successfully" in text  # freshness warning line


def test_cli_status_works_without_prefect_and_strict_fails_on_stale_sources(tmp_path):
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from typer.testing import CliRunner

    from flows.cli import app

    wh = _empty_warehouse(tmp_path / "wh.duckdb")
    # The session's test server (prefect_server fixture) may have set an API URL: this test is about none.
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        result = CliRunner().invoke(app, ["status", "--warehouse", str(wh), "--publish", str(tmp_path / "store")])
        assert result.exit_code == 0, result.output
        assert "PREFECT_API_URL is not set" in result.output and "nothing under" in result.output
        strict = CliRunner().invoke(app, ["status", "--warehouse", str(wh), "--publish", str(tmp_path / "s"),
                                          "--strict"])
    assert strict.exit_code == 3  # every source 'never'


@pytest.mark.parametrize("args, message", [
    (["--as-of", "2026-02-30"], "YYYY-MM-DD"),
    (["--as-of", "2026-02-01", "--from-raw", "2026-02-01"], "--from-raw"),
    (["--as-of", "2026-02-01", "--source", "live"], "--source live"),
    (["--as-of", "2026-02-01", "--snapshot-dir", "data/snapshot"], "--snapshot-dir"),
])
def test_cli_run_rejects_as_of_with_options_it_cannot_honour(args, message):
    from typer.testing import CliRunner

    from flows.cli import app

    result = CliRunner().invoke(app, ["run", *args])
    assert result.exit_code == 2 and message in result.output


# --- progress -------------------------------------------------------------------------------------------

def test_progress_is_silent_off_a_terminal_and_shows_steps_on_one():
    from rich.console import Console

    from eujp import progress

    quiet = Console(file=io.StringIO(), force_terminal=False)
    with progress.terminal_progress(quiet) as shown, progress.step("publish", total=3) as advance:
        advance()
    assert shown is False and quiet.file.getvalue() == "" and not progress.active()

    class RichHandler(logging.Handler):  # like Prefect's console handler: prints through .console
        def __init__(self, console):
            super().__init__()
            self.console = console

        def emit(self, record):
            self.console.print(record.getMessage())

    original = Console(file=io.StringIO())
    handler = RichHandler(original)
    lg = logging.getLogger("test.progress.rich")
    lg.addHandler(handler)
    try:
        out = io.StringIO()
        terminal = Console(file=out, force_terminal=True, width=120)
        with progress.terminal_progress(terminal) as shown:
            assert shown and handler.console is terminal  # logs print above the bars
            with progress.step("publish to s3://b/p", total=3) as advance:
                for _ in range(3):
                    advance()
            with pytest.raises(RuntimeError), progress.step("build Data Docs"):
                raise RuntimeError("boom")
            lg.warning("a log line")
    finally:
        lg.removeHandler(handler)
    assert handler.console is original and not progress.active()
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())  # without the terminal's control codes
    assert "✓ publish to s3://b/p (0.0 s, 3)" in text and "✗ failed: build Data Docs" in text
    assert "a log line" in text and original.file.getvalue() == ""


# --- infra ----------------------------------------------------------------------------------------------

def test_prefect_yaml_is_a_valid_worker_deployment_of_the_daily_flow_and_the_lake_maintenance():
    from prefect.cli.deploy._models import PrefectYamlModel  # the model `prefect deploy` validates with
    from prefect.flows import load_flow_from_entrypoint

    from flows.serve import DEFAULT_CRON, DEFAULT_TIMEZONE, MAINTENANCE_CRON, MAINTENANCE_TIMEZONE

    raw = yaml.safe_load((REPO / "infra" / "prefect.yaml").read_text())
    model = PrefectYamlModel.model_validate(raw)
    daily, maintenance = model.deployments
    for deployment, flow_name, schedule_wanted, params in (
            (daily, "eujp-daily", (DEFAULT_CRON, DEFAULT_TIMEZONE),
             {"snapshot_dir", "warehouse", "publish_uri", "source_mode", "force"}),
            (maintenance, "eujp-lake-maintain", (MAINTENANCE_CRON, MAINTENANCE_TIMEZONE),
             {"warehouse", "publish_uri", "keep_days", "grace_hours"})):
        # eujp-daily/worker, eujp-lake-maintain/worker
        assert deployment.name == "worker" and deployment.work_pool.name == "eujp-process"
        assert load_flow_from_entrypoint(str(REPO / deployment.entrypoint)).name == flow_name
        (schedule,) = deployment.schedules
        assert (schedule.cron, schedule.timezone) == schedule_wanted
        assert deployment.concurrency_limit.limit == 1
        assert deployment.concurrency_limit.collision_strategy == "ENQUEUE"
        assert set(deployment.parameters or {}) <= params


def test_compose_stack_has_postgres_server_object_store_and_worker_with_no_inline_secrets():
    compose = yaml.safe_load((REPO / "infra" / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "prefect-server", "minio", "worker"} <= set(services)
    server_env = services["prefect-server"]["environment"]
    assert server_env["PREFECT_API_DATABASE_CONNECTION_URL"].startswith("postgresql+asyncpg://")
    assert "postgres" in services["prefect-server"]["depends_on"]
    worker = services["worker"]
    assert "--pool eujp-process" in " ".join(worker["command"]) if isinstance(worker["command"], list) \
        else "--pool eujp-process" in worker["command"]
    assert worker["environment"]["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    assert worker["environment"]["EUJP_PUBLISH_URI"].startswith("s3://")
    assert worker["environment"]["AWS_ENDPOINT_URL"] == "http://minio:9000"
    # secrets come from the environment (.env), never from the file
    text = (REPO / "infra" / "docker-compose.yml").read_text()
    for name in ("POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD", "AWS_SECRET_ACCESS_KEY"):
        for line in text.splitlines():
            if f"{name}:" in line or f"{name}=" in line:
                assert "${" in line, line
    assert (REPO / "infra" / "Dockerfile").is_file()


def test_from_raw_of_a_day_with_no_landing_is_refused_before_the_run(tmp_path):
    """Every source would be unchanged (nothing of it landed that day) and nothing replayed (a day mistyped, or
    pruned); it is refused with exit 2, nothing replayed or published. A day with a landing passes
    this check (the preflight's; the run itself is not started here)."""
    from typer.testing import CliRunner

    from eujp.storage import LocalObjectStore
    from flows import cli

    store = tmp_path / "store"
    LocalObjectStore(store).put_bytes("raw/some_source/2026-02-01/abc.meta.json", b"{}")
    result = CliRunner().invoke(cli.app, ["run", "--from-raw", "2026-01-31", "--warehouse",
                                          str(tmp_path / "var" / "w.duckdb"), "--publish", str(store)])
    assert result.exit_code == 2 and "--from-raw 2026-01-31: nothing was landed on that day under" in result.output
    assert not (store / "latest.json").exists() and not (tmp_path / "var").exists()
