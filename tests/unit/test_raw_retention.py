"""Raw-zone retention (eujp/retention.py, `eujp prune-raw`, EUJP_RAW_RETENTION_DAYS): over a store with landings
on many days, exactly the landings no retained day needs are deleted, and the replay of every retained day (the
oldest one first: `replay_plan`, `--as-of`) and the landing of every retained day (`--from-raw`) are intact.

Sources are taken from the registry (a source's name is written only in its own folder); the payloads are
synthetic bytes: retention looks at keys and checksums, never at content.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eujp.asof import replay_plan
from eujp.config import Settings
from eujp.errors import EujpError
from eujp.landing import RawPayload, land, read_landed
from eujp.publish import Deadline
from eujp.retention import plan_raw_prune, prune_raw, published_run_days
from eujp.sources import SOURCES
from eujp.storage import LocalObjectStore

TODAY = date(2026, 3, 31)
DAYS = 5  # the window: TODAY - 5 .. TODAY
WINDOW = TODAY - timedelta(days=DAYS)
CONSTANT, CHANGING, RARE = SOURCES[0], SOURCES[1], SOURCES[2]
RUN_DAYS = (TODAY - timedelta(days=12), TODAY - timedelta(days=9))  # runs still published, older than the window


def day(n: int) -> date:
    """n days before TODAY."""
    return TODAY - timedelta(days=n)


def put_landing(store, source, when: date, content: str) -> str:
    payload = RawPayload(source.name, f"{content}.bin", content.encode(), f"file:///{content}",
                         fetched_at=f"{when.isoformat()}T06:00:00+00:00")
    return land(store, payload, when, source.extension)


def put_run(store, run_id: str, raw_keys: list[str], published: date) -> None:
    manifest = {"run_id": run_id, "published_at": f"{published.isoformat()}T06:30:00+00:00",
                "sources": {CONSTANT.name: {"raw_keys": raw_keys}}}
    store.put_bytes(f"runs/{run_id}/manifest.json", json.dumps(manifest).encode())
    store.put_bytes(f"runs/{run_id}/warehouse.duckdb", b"duckdb")


@pytest.fixture
def store(tmp_path):
    """Thirty days of landings:

    CONSTANT  the same payload every day from day 20 to today (a snapshot landed daily);
    CHANGING  x on day 20, y on day 15, x again on day 14 (back to older content), z on day 7;
    RARE      r on day 30, then r again on day 2 only (after the window start: no later copy before it).
    Published runs on days 12 and 9 (run ids named by their own days, manifests listing their landings), a
    run id without a manifest (a publish that failed: not a published run), payloads without metadata on day
    25 (a landing cut off) and in the window, and keys of other shapes that are never touched."""
    s = LocalObjectStore(tmp_path / "store")
    keys = {n: put_landing(s, CONSTANT, day(n), "constant") for n in range(20, -1, -1)}
    put_landing(s, CHANGING, day(20), "x")
    put_landing(s, CHANGING, day(15), "y")
    put_landing(s, CHANGING, day(14), "x")
    put_landing(s, CHANGING, day(7), "z")
    put_landing(s, RARE, day(30), "r")
    put_landing(s, RARE, day(2), "r")
    for n, run_day in zip((12, 9), RUN_DAYS, strict=True):
        put_run(s, f"{run_day:%Y%m%d}T060000Z-run{n:03d}", [keys[n]], run_day)
    s.put_bytes(f"runs/{day(18):%Y%m%d}T060000Z-failed/parquet/t.parquet", b"partial")  # no manifest
    cut = hashlib.sha256(b"cut").hexdigest()
    s.put_bytes(f"raw/{CHANGING.name}/{day(25).isoformat()}/{cut}.{CHANGING.extension}", b"cut")
    s.put_bytes(f"raw/{CHANGING.name}/{day(1).isoformat()}/{cut}.{CHANGING.extension}", b"cut")
    s.put_bytes("raw/README.txt", b"not a landing")
    s.put_bytes("raw/unregistered/2026-02/x.bin", b"not a day folder")
    return s


def tmp_path_of(store) -> Path:
    return Path(store.uri)


def landing_days(store, source) -> set[date]:
    return {date.fromisoformat(k.split("/")[2]) for k in store.list_keys(f"raw/{source.name}")
            if k.endswith(".meta.json")}


def effective_loads(store, as_of: date) -> dict[str, list[frozenset[str]]]:
    """What an as-of replay of `as_of` leaves in the warehouse, per source: the contents it loads, in order,
    each only at its last load (a load rewrites every row an earlier load of the same content wrote, under the
    same keys and the same replace scope; see eujp/retention.py)."""
    plan = replay_plan(store, as_of, SOURCES[:3])
    out: dict[str, list[frozenset[str]]] = {}
    for step in plan.steps:
        for name in step.sources:
            content = next(lnd.checksums for lnd in plan.history[name] if lnd.day == step.day)
            loads = out.setdefault(name, [])
            if content in loads:
                loads.remove(content)
            loads.append(content)
    return out


def test_only_landings_no_retained_day_needs_are_deleted(store):
    keys_before = set(store.list_keys(""))
    retained = sorted({*RUN_DAYS, *(day(n) for n in range(DAYS, -1, -1))})
    replays_before = {d: effective_loads(store, d) for d in retained}
    landed_before = {(s.name, d): read_landed(store, s.name, d) for s in SOURCES[:3] for d in retained
                     if d in landing_days(store, s)}

    plan = prune_raw(store, DAYS, today=TODAY)

    assert plan.deleted and plan.window_start == WINDOW
    assert sorted(plan.run_days) == list(RUN_DAYS)  # the run without a manifest is not a published run
    doomed = {(d.folder.source, d.folder.day): d.superseded_on for d in plan.doomed}
    expected = {
        # the same payloads landed again before the next retained day: day 12 (a run), day 9 (a run), the window
        **{(CONSTANT.name, day(n)): day(n - 1) for n in (20, 19, 18, 17, 16, 15, 14, 13, 11, 10, 8, 7, 6)},
        (CHANGING.name, day(20)): day(14),  # x, loaded again on day 14 (after y): x's rows are day 14's
        (CHANGING.name, day(25)): None,  # payloads without metadata: not a landing
    }
    assert doomed == expected
    # kept: every landing of a retained day; y (day 15), the later x (day 14) and z (day 7), each the last of
    # its content before the next retained day; RARE's r of day 30, whose copy lands after the window start
    assert landing_days(store, CONSTANT) == {day(12), day(9), *(day(n) for n in range(DAYS, -1, -1))}
    assert landing_days(store, CHANGING) == {day(15), day(14), day(7)}
    assert landing_days(store, RARE) == {day(30), day(2)}
    deleted = keys_before - set(store.list_keys(""))
    assert deleted == set(plan.keys)
    # a folder store leaves no empty day folder behind (a bucket has none to leave)
    root = tmp_path_of(store)
    assert not (root / "raw" / CONSTANT.name / day(20).isoformat()).exists()
    assert (root / "raw" / CONSTANT.name / day(12).isoformat()).is_dir() and (root / "raw").is_dir()
    assert all(k.startswith("raw/") for k in deleted)
    assert {"raw/README.txt", "raw/unregistered/2026-02/x.bin"} <= set(store.list_keys(""))
    assert any(k.startswith(f"raw/{CHANGING.name}/{day(1).isoformat()}/") for k in store.list_keys("raw"))

    # Every retained day, the oldest first, replays to the same warehouse, and its own landing is whole.
    for d in retained:
        assert effective_loads(store, d) == replays_before[d], d
    oldest = replay_plan(store, retained[0], SOURCES[:3])
    assert not oldest.missing and [lnd.day for lnd in oldest.history[RARE.name]] == [day(30)]
    for (name, d), payloads in landed_before.items():
        assert [p.sha256 for p in read_landed(store, name, d)] == [p.sha256 for p in payloads]

    # Pruning again finds nothing more to delete.
    assert prune_raw(store, DAYS, today=TODAY).doomed == []


def test_a_day_the_last_prune_did_not_keep_is_refused_by_name_before_a_replay(store, tmp_path):
    """After a prune, --from-raw or --as-of of a day it did not keep would read what is left of that day's
    landings ("nothing landed", a source's older landing): the preflight refuses it, saying why."""
    from eujp.preflight import check_raw_day
    from eujp.retention import RECORD_KEY, unretained_day

    assert unretained_day(store, day(20)) is None  # never pruned: every day is what was landed
    prune_raw(store, DAYS, today=TODAY, dry_run=True)
    assert not store.exists(RECORD_KEY)  # a dry run records nothing
    prune_raw(store, DAYS, today=TODAY)
    for kept in (WINDOW, TODAY, *RUN_DAYS):
        assert unretained_day(store, kept) is None
    problem = unretained_day(store, day(20))
    # the retention is said as a number of days: it may have come from `eujp prune-raw --days`, not the variable
    assert problem.startswith(f"the raw zone was pruned on {TODAY.isoformat()} with a retention of 5 day(s): it "
                              f"keeps what the days from {WINDOW.isoformat()} on and the days of the runs then "
                              f"published ({RUN_DAYS[0].isoformat()}, {RUN_DAYS[1].isoformat()}) need, and "
                              f"{day(20).isoformat()} is none of them")
    settings = Settings(publish_uri=str(tmp_path / "store"), warehouse_path=tmp_path / "w.duckdb",
                        source_mode="raw", raw_date=day(20))
    check = check_raw_day(settings)
    assert not check.ok and check.detail == problem and check.setting == "--from-raw / --as-of"
    assert check_raw_day(settings.with_(raw_date=RUN_DAYS[0])).ok
    assert check_raw_day(settings.with_(source_mode="snapshot", raw_date=None)) is None  # no line


def test_a_dry_run_deletes_nothing_and_metadata_goes_before_payloads(store, monkeypatch):
    before = store.list_keys("")
    planned = plan_raw_prune(store, DAYS, today=TODAY)
    dry = prune_raw(store, DAYS, today=TODAY, dry_run=True)
    assert store.list_keys("") == before and not dry.deleted
    assert dry.keys == planned.keys and len(planned.doomed) == 15

    batches: list[list[str]] = []
    real_delete = store.delete
    monkeypatch.setattr(store, "delete", lambda keys: (batches.append(list(keys)), real_delete(keys)))
    prune_raw(store, DAYS, today=TODAY)
    assert [all(k.endswith(".meta.json") for k in b) for b in batches] == [True, False]
    assert not any(k.endswith(".meta.json") for k in batches[1])  # cut off in between: payloads, no metadata


def test_a_run_day_comes_from_its_landings_its_publish_time_and_its_run_id(tmp_path):
    s = LocalObjectStore(tmp_path / "store")
    key = put_landing(s, CONSTANT, day(40), "constant")
    manifest = {"published_at": f"{day(30).isoformat()}T23:59:00+00:00", "sources": {"any": {"raw_keys": [key]}}}
    s.put_bytes("runs/custom-id/manifest.json", json.dumps(manifest).encode())
    s.put_bytes(f"runs/{day(35):%Y%m%d}T010203Z-abcdef/manifest.json", b"{}")
    assert published_run_days(s) == {day(40): ("custom-id",), day(35): (f"{day(35):%Y%m%d}T010203Z-abcdef",),
                                     day(30): ("custom-id",)}


def test_an_unreadable_manifest_stops_the_prune_before_anything_is_deleted(store):
    store.put_bytes("runs/20260301T000000Z-broken/manifest.json", b"{not json")
    before = store.list_keys("")
    with pytest.raises(EujpError, match=r"raw retention: cannot read .*runs/20260301T000000Z-broken/manifest.json"
                                        r".*nothing was pruned"):
        prune_raw(store, DAYS, today=TODAY)
    assert store.list_keys("") == before


def test_the_retention_setting_is_checked(monkeypatch):
    assert Settings().raw_retention_days is None  # unset: never prune
    monkeypatch.setenv("EUJP_RAW_RETENTION_DAYS", "30")
    assert Settings.from_env().raw_retention_days == 30
    for bad, message in ((("0", r"\(prune-raw --days\) must be from 1 to 36500"),
                          ("thirty", "must be a whole number"))):
        monkeypatch.setenv("EUJP_RAW_RETENTION_DAYS", bad)
        with pytest.raises(ValueError, match=f"EUJP_RAW_RETENTION_DAYS {message}"):
            Settings.from_env()
    with pytest.raises(ValueError, match="at least 1"):
        plan_raw_prune(LocalObjectStore("unused"), 0)


def test_prune_raw_command(store, monkeypatch):
    from flows.cli import app

    monkeypatch.delenv("EUJP_RAW_RETENTION_DAYS", raising=False)
    monkeypatch.setattr("eujp.retention.datetime", _FrozenDatetime)
    runner = CliRunner()
    before = store.list_keys("")

    result = runner.invoke(app, ["prune-raw", "--publish", store.uri])
    assert result.exit_code == 2, result.output
    assert "no raw retention is configured: set EUJP_RAW_RETENTION_DAYS or give --days" in result.output

    result = runner.invoke(app, ["prune-raw", "--publish", store.uri, "--days", str(DAYS), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert store.list_keys("") == before
    assert f"would delete {store.uri}/raw/{CHANGING.name}/{day(20).isoformat()}/ (2 object(s)): the same payloads " \
           f"were landed again on {day(14).isoformat()}" in result.output
    assert "15 landing(s), 29 object(s) to delete" in result.output and "(dry run: nothing was deleted)" in result.output

    monkeypatch.setenv("EUJP_RAW_RETENTION_DAYS", str(DAYS))
    result = runner.invoke(app, ["prune-raw", "--publish", store.uri])
    assert result.exit_code == 0, result.output
    assert "15 landing(s), 29 object(s) deleted" in result.output
    assert set(before) - set(store.list_keys("")) and len(set(before) - set(store.list_keys(""))) == 29
    assert set(store.list_keys("")) - set(before) == {"raw-retention.json"}  # what the prune kept, recorded


def test_a_prune_after_publishing_that_fails_or_runs_out_of_time_is_a_warning(store, caplog):
    from eujp.run import _prune_raw_zone

    before = store.list_keys("raw")
    _prune_raw_zone(store, DAYS, Deadline.after(-1), _logger())
    assert store.list_keys("raw") == before
    assert "raw retention (EUJP_RAW_RETENTION_DAYS=5) not applied: the publish deadline" in caplog.text
    store.put_bytes("runs/20260301T000000Z-broken/manifest.json", b"{not json")
    _prune_raw_zone(store, DAYS, Deadline.after(60), _logger())
    assert "not applied: EujpError: raw retention: cannot read" in caplog.text
    assert store.list_keys("raw") == before


def _logger():
    import logging

    return logging.getLogger("eujp.test_raw_retention")


class _FrozenDatetime:
    """eujp.retention's `datetime`, with TODAY as the day the CLI prunes on."""

    @staticmethod
    def now(tz=None):
        from datetime import datetime

        return datetime(TODAY.year, TODAY.month, TODAY.day, 12, tzinfo=tz)

    @staticmethod
    def strptime(*args):
        from datetime import datetime

        return datetime.strptime(*args)

    @staticmethod
    def fromisoformat(text):
        from datetime import datetime

        return datetime.fromisoformat(text)


def test_a_successful_publish_applies_the_raw_retention(tmp_path):
    from eujp.run import publish
    from eujp.tables import ensure_schema
    from eujp.warehouse import connect

    store = LocalObjectStore(tmp_path / "store")
    today = date.today()
    old = [put_landing(store, CONSTANT, today - timedelta(days=n), "constant") for n in (40, 39, 38)]
    live = tmp_path / "var" / "warehouse.duckdb"
    live.parent.mkdir()
    with connect(live) as conn:
        ensure_schema(conn)
    unset = Settings(warehouse_path=live, publish_uri=store.uri, run_id="raw-retention-1")
    publish(unset, [], {}, {}, "success")
    assert all(store.exists(k) for k in old)  # EUJP_RAW_RETENTION_DAYS unset: nothing is pruned

    publish(unset.with_(raw_retention_days=7, run_id="raw-retention-2"), [], {}, {}, "success")
    assert [store.exists(k) for k in old] == [False, False, True]  # the last copy before the window stays


def test_an_as_of_rebuild_never_writes_over_a_warehouse_that_runs_built(tmp_path):
    """`eujp run --as-of DAY --warehouse FILE`: FILE may be a rebuild of another day (marked by the rebuild,
    etl_rebuild; its runs are its replay steps, ids ending in the landing day), never the live warehouse named
    by mistake."""
    import duckdb

    from eujp.asof import mark_rebuild, not_a_rebuild
    from eujp.tables import ensure_schema

    target = tmp_path / "w.duckdb"
    assert not_a_rebuild(target) is None  # a new file
    with duckdb.connect(str(target)) as conn:
        ensure_schema(conn)
    assert not_a_rebuild(target) is None  # empty: no run
    with duckdb.connect(str(target)) as conn:
        conn.execute("INSERT INTO etl_runs (run_id, source, table_name, status, started_at) VALUES "
                     "('20260305T000000Z-asof01-20260302', 'some_source', 'fact_some_table', 'success', "
                     "TIMESTAMPTZ '2026-03-05 00:00:00+00')")
        mark_rebuild(conn, "20260305T000000Z-asof01", date(2026, 3, 2))
    assert not_a_rebuild(target) is None  # an as-of rebuild's file: rebuilt again
    with duckdb.connect(str(target)) as conn:
        conn.execute("INSERT INTO etl_runs (run_id, source, table_name, status, started_at) VALUES "
                     "('20261203T060000Z-7b8df3', 'some_source', 'fact_some_table', 'success', "
                     "TIMESTAMPTZ '2026-12-03 06:00:00+00')")
    assert not_a_rebuild(target).startswith(
        f"{target} is a warehouse that runs built (its last: 20261203T060000Z-7b8df3), not one an as-of rebuild "
        "wrote (a run other than its replay steps wrote into it since)")
    other = tmp_path / "notes.txt"
    other.write_text("not a database")
    assert not_a_rebuild(other).startswith(f"{other} exists and is not a warehouse an as-of rebuild wrote")


def test_a_live_warehouse_whose_run_ids_end_in_a_day_is_no_rebuild(tmp_path):
    """The probe's repro: `eujp run --run-id daily-20261205` (a daily run may be given any id), then `eujp run
    --as-of 2026-12-05 --only sipri_arms --warehouse <live>` replaced the live warehouse by a one-source past
    state: the guard took every run id ending in -YYYYMMDD for a replay step. Only a rebuild's mark counts, and
    a run id that extends the marked rebuild's."""
    import duckdb

    from eujp.asof import mark_rebuild, not_a_rebuild
    from eujp.tables import ensure_schema

    live = tmp_path / "var" / "warehouse.duckdb"
    live.parent.mkdir()
    with duckdb.connect(str(live)) as conn:
        ensure_schema(conn)
        conn.execute("INSERT INTO etl_runs (run_id, source, table_name, status, started_at) VALUES "
                     "('daily-20261205', 'some_source', 'fact_some_table', 'success', "
                     "TIMESTAMPTZ '2026-12-05 06:00:00+00')")
    assert not_a_rebuild(live) == (
        f"{live} is a warehouse that runs built (its last: daily-20261205), not one an as-of rebuild wrote (it "
        "has no as-of rebuild's mark, the table etl_rebuild): a rebuild never writes over it; name another file "
        "with --warehouse (the default is asof/warehouse-YYYY-MM-DD.duckdb in the live warehouse's files folder)")
    rebuilt = tmp_path / "rebuilt.duckdb"  # a rebuild's file into which a run with a day-shaped id wrote since
    with duckdb.connect(str(rebuilt)) as conn:
        ensure_schema(conn)
        mark_rebuild(conn, "20261205T070000Z-abc123", date(2026, 12, 4))
        conn.executemany("INSERT INTO etl_runs (run_id, source, table_name, status, started_at) VALUES "
                         "(?, 'some_source', 'fact_some_table', 'success', TIMESTAMPTZ '2026-12-05 07:00:00+00')",
                         [["20261205T070000Z-abc123-20261204"], ["daily-20261205"]])
    assert "(its last: daily-20261205)" in not_a_rebuild(rebuilt)


def test_a_replays_manifest_lists_the_raw_keys_it_read_so_retention_keeps_its_day(store, tmp_path):
    """`--from-raw DAY` lands nothing; its batches' raw_keys (the published manifest's `sources.*.raw_keys`)
    are the landed objects it read, so a published replay makes DAY a day of a published run."""
    from eujp.landing import landed_objects
    from flows.tasks import extract_and_land

    settings = Settings(publish_uri=str(tmp_path / "store"), warehouse_path=tmp_path / "w.duckdb",
                        source_mode="raw", raw_date=day(15))
    payloads, keys = extract_and_land.fn(CHANGING.name, settings)
    assert keys == [o.key for o in landed_objects(store, CHANGING.name, day(15))] and len(keys) == len(payloads) == 1
    assert keys[0].startswith(f"raw/{CHANGING.name}/{day(15).isoformat()}/")
    put_run(store, f"{TODAY:%Y%m%d}T060000Z-replay", keys, TODAY)
    assert day(15) in published_run_days(store)


def test_prune_raw_of_a_folder_that_does_not_exist_says_so(tmp_path):
    """A mistyped publish folder: '0 landing(s)' and exit 0 before, as if nothing needed pruning."""
    from typer.testing import CliRunner

    from flows.cli import app

    result = CliRunner().invoke(app, ["prune-raw", "--publish", str(tmp_path / "nonexist"), "--days", "3"])
    assert result.exit_code == 2 and f"no publish folder at {tmp_path / 'nonexist'}" in result.output


def test_a_landing_goes_only_when_a_later_day_landed_the_same_payloads_in_the_same_landings(tmp_path):
    """Days 20 and 15: two runs, P then Q; day 10: one run, P and Q together. Day 20 is superseded by day 15
    (the same sequence of landings), not day 15 by day 10 (the same payloads, another fold of them:
    tests/e2e/test_asof.py::test_pruning_keeps_a_day_whose_landings_differ_from_a_later_day_of_the_same_payloads)."""
    from eujp.landing import record_landing

    store = LocalObjectStore(tmp_path / "store")

    def run(n: int, hour: int, contents: list[str]) -> None:
        checksums = [hashlib.sha256(c.encode()).hexdigest() for c in contents]
        for c in contents:
            put_landing(store, CHANGING, day(n), c)
        record_landing(store, CHANGING.name, day(n), checksums, at=datetime.combine(day(n), time(hour), UTC))

    for n in (20, 15):
        run(n, 6, ["p"])
        run(n, 9, ["q"])
    run(10, 6, ["p", "q"])
    plan = plan_raw_prune(store, DAYS, today=TODAY)
    assert [(d.folder.day, d.superseded_on) for d in plan.doomed] == [(day(20), day(15))]
    assert sorted(f.day for f in plan.kept) == [day(15), day(10)]
