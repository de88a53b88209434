"""The command line's polish: --version, -h everywhere, `eujp query --format/--output`, the summary's row
words and links; the preflight's local checks (folders, snapshot, an unreachable Prefect API); a domain flow's
outcome; the row words themselves. Pure: no server is started, no flow runs."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import socket
import sys
from dataclasses import replace
from datetime import date
from importlib.metadata import version
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from eujp.config import Settings
from eujp.preflight import (
    PREFECT_SETTING,
    PUBLISH_SETTING,
    SNAPSHOT_SETTING,
    WAREHOUSE_SETTING,
    PreflightFailed,
    check_prefect_api,
    preflight,
    run_checks,
)
from eujp.rows import ROW_WORDS, describe_rows
from eujp.sources import comext_goods
from flows.cli import app

runner = CliRunner()
COMEXT = comext_goods.SOURCE.name  # by its module: a source's name is written in its own folder only


# --- --version, -h ----------------------------------------------------------------------------------------

def test_version_prints_the_package_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"eujp {version('eujp')}"


@pytest.mark.parametrize("args", [["-h"], ["run", "-h"], ["check", "-h"], ["query", "-h"], ["status", "-h"],
                                  ["serve", "-h"]])
def test_dash_h_is_help_everywhere(args):
    short, long = runner.invoke(app, args), runner.invoke(app, [*args[:-1], "--help"])
    assert short.exit_code == 0, short.output
    assert "Usage:" in short.output and short.output == long.output


# --- eujp query --format / --output ---------------------------------------------------------------------

@pytest.fixture
def warehouse(tmp_path) -> Path:
    path = tmp_path / "wh.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE t (id INTEGER, name VARCHAR, day DATE)")
        conn.execute("INSERT INTO t VALUES (1, 'Tokyo, JP', DATE '2024-11-01'), (2, 'Brussels', NULL)")
    return path


SQL = "SELECT id, name, day FROM t ORDER BY id"


def query(warehouse: Path, *args: str):
    return runner.invoke(app, ["query", SQL, "--warehouse", str(warehouse), *args])


def test_query_csv_to_stdout(warehouse):
    result = query(warehouse, "--format", "csv")
    assert result.exit_code == 0, result.output
    assert list(csv.reader(io.StringIO(result.stdout))) == [["id", "name", "day"], ["1", "Tokyo, JP", "2024-11-01"],
                                                           ["2", "Brussels", ""]]


def test_query_json_to_stdout_is_an_array_of_objects(warehouse):
    result = query(warehouse, "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"id": 1, "name": "Tokyo, JP", "day": "2024-11-01"},
                                         {"id": 2, "name": "Brussels", "day": None}]


def test_query_parquet_and_csv_and_table_to_a_file(warehouse, tmp_path):
    out = tmp_path / "out.parquet"
    result = query(warehouse, "--format", "parquet", "--output", str(out))
    assert result.exit_code == 0 and result.stdout == "", result.output
    assert pl.read_parquet(out).to_dicts() == [{"id": 1, "name": "Tokyo, JP", "day": date(2024, 11, 1)},
                                               {"id": 2, "name": "Brussels", "day": None}]

    out_csv = tmp_path / "out.csv"
    assert query(warehouse, "--format", "csv", "-o", str(out_csv)).exit_code == 0
    assert out_csv.read_text(encoding="utf-8").splitlines()[1] == '1,"Tokyo, JP",2024-11-01'

    out_table = tmp_path / "out.txt"
    result = query(warehouse, "--output", str(out_table))
    assert result.exit_code == 0 and result.stdout == ""
    text = out_table.read_text(encoding="utf-8")
    assert "│       1 │ Tokyo, JP │ 2024-11-01 │" in text and "│       2 │ Brussels  │ NULL       │" in text
    assert text.endswith("└─────────┴───────────┴────────────┘\n2 rows\n")


def test_query_table_to_a_file_holds_every_row_and_stdout_says_it_shows_the_first_200(warehouse, tmp_path):
    """DuckDB's own table display stops at ~10,000 rows ('? rows'): a file written with -o held the first 9,999
    of 25,000 and said nothing."""
    sql = "SELECT i, repeat('x', i % 300) AS wide FROM range(25000) t(i) ORDER BY i"
    out = tmp_path / "all.txt"
    result = runner.invoke(app, ["query", sql, "--warehouse", str(warehouse), "-o", str(out)])
    assert result.exit_code == 0, result.output
    lines = out.read_text(encoding="utf-8").splitlines()
    body = [line for line in lines if line.startswith("│ ") and line.split("│")[1].strip().isdigit()]
    assert [int(line.split("│")[1]) for line in body] == list(range(25000))
    assert body[299].split("│")[2].strip() == "x" * 299  # every character of a wide value
    assert lines[-1] == "25,000 rows"
    shown = runner.invoke(app, ["query", sql, "--warehouse", str(warehouse)])
    rows = [line for line in shown.stdout.splitlines() if line.startswith("│ ") and line.split("│")[1].strip().isdigit()]
    assert [int(line.split("│")[1]) for line in rows] == list(range(200))
    assert shown.stdout.splitlines()[-1].startswith("more than 200 rows: the first 200 are shown")


def test_query_table_to_stdout_is_the_default(warehouse):
    result = query(warehouse)
    assert result.exit_code == 0 and "Tokyo, JP" in result.stdout and "│" in result.stdout


def test_query_parquet_needs_an_output_file(warehouse):
    result = query(warehouse, "--format", "parquet")
    assert result.exit_code == 2 and "--output" in result.output


def test_query_errors_exit_2_with_the_reason(warehouse, tmp_path):
    bad = runner.invoke(app, ["query", "SELECT * FROM nowhere", "--warehouse", str(warehouse), "--format", "csv"])
    assert bad.exit_code == 2 and "query failed" in bad.output and "nowhere" in bad.output
    missing = runner.invoke(app, ["query", SQL, "--warehouse", str(tmp_path / "none.duckdb")])
    assert missing.exit_code == 2 and "no warehouse at" in missing.output


# --- the run summary: row words and links ---------------------------------------------------------------

def summary(**extra) -> dict:
    return {"run_id": "20261130T060000Z-abc123", "status": "success", "warehouse": "var/warehouse.duckdb",
            "sources": [{"source": COMEXT, "table": "fact_goods_trade_product", "status": "loaded",
                         "rows_in": 96, "rows_loaded": 96, "rows_rejected": 0, "rows_written": 48,
                         "validation": {"success": True}, "source_version": "2024-11"}],
            "table_rows": {"fact_goods_trade_product": 48}, "published_to": "s3://b/eujp/runs/x", "warnings": [],
            "errors": []} | extra


def printed(capsys, data: dict) -> list[str]:
    from flows.cli import _print_summary

    _print_summary(data)
    return [line.rstrip() for line in capsys.readouterr().out.splitlines()]


def test_summary_table_uses_the_row_words(capsys):
    lines = printed(capsys, summary())
    header = next(line for line in lines if "source" in line and "status" in line)
    assert [w for w in ("rows in", "valid", "rejected", "written") if w in header] == list(ROW_WORDS.values())
    assert "loaded  " not in header
    row = next(line for line in lines if line.lstrip("│ ").startswith(COMEXT))
    assert [c.strip() for c in row.split("│")[4:8]] == ["96", "96", "0", "48"]


def test_summary_says_which_tables_were_written_not_that_they_changed(capsys):
    """A model rebuilt because an input was written may hold the same rows: the line said "changed:"."""
    changes = {"rows_written": {"fact_goods_trade_product": 48}, "models_rebuilt": {"mart_product_trade": "input"},
               "tables_written": ["fact_goods_trade_product", "mart_product_trade"], "models_kept": ["mart_claims"]}
    lines = printed(capsys, summary(changes=changes))
    assert "tables written: fact_goods_trade_product, mart_product_trade; models rebuilt 1 of 2" in lines
    assert not [line for line in lines if line.startswith("changed:")]


def test_summary_ends_with_the_report_docs_and_catalog_links_that_exist(capsys):
    lines = printed(capsys, summary(report_url="https://x/report.html", docs_url="https://x/docs/index.html",
                                    catalog_url="https://x/catalog", errors=["boom"]))
    assert lines[-3:] == ["report: https://x/report.html", "Data Docs: https://x/docs/index.html",
                          "catalog: https://x/catalog"]
    lines = printed(capsys, summary(docs_url="file:///tmp/docs/index.html", catalog_url=None))
    assert lines[-1] == "Data Docs: file:///tmp/docs/index.html"
    assert not any(line.startswith(("report:", "catalog:")) for line in lines)


# --- the row words ------------------------------------------------------------------------------------------

def test_row_words_are_defined_once_and_describe_a_batch():
    assert ROW_WORDS == {"rows_in": "rows in", "rows_loaded": "valid", "rows_rejected": "rejected",
                         "rows_written": "written"}
    assert describe_rows(96, 96, 0) == "96 rows in, 96 valid, 0 rejected"
    assert describe_rows(96, 90, 6, 45) == "96 rows in, 90 valid, 6 rejected, 45 written"


# --- preflight: local checks ------------------------------------------------------------------------------

def settings(tmp_path, **kw) -> Settings:
    base = {"warehouse_path": tmp_path / "var" / "warehouse.duckdb", "publish_uri": str(tmp_path / "store")}
    return Settings(**(base | kw))


def test_local_checks_pass_and_create_nothing(tmp_path):
    checks = preflight(settings(tmp_path))
    assert [c.name for c in checks] == ["publish target", "warehouse", "Prefect API", "snapshot folder",
                                        "settings", "expectation suites", "lake catalog"]
    assert all(c.ok for c in checks)
    assert list(tmp_path.iterdir()) == []  # nothing created: the folders are created by the run


def test_a_snapshot_folder_with_no_source_file_is_refused(tmp_path):
    """Every source would fail "no file matching", and the run published a run of failed sources (exit 1)."""
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a source file")
    (failed,) = [c for c in run_checks(settings(tmp_path, snapshot_dir=empty)) if not c.ok]
    assert failed.name == "snapshot folder" and failed.setting == SNAPSHOT_SETTING
    assert failed.detail.startswith(f"{empty} holds no file of any source (") and "*.csv" in failed.detail


def test_each_failing_local_check_names_its_setting(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    s = settings(tmp_path, warehouse_path=blocker / "var" / "warehouse.duckdb", publish_uri=str(blocker / "store"),
                 snapshot_dir=tmp_path / "no-snapshot")
    failed = {c.name: c for c in run_checks(s) if not c.ok}
    assert set(failed) == {"publish target", "warehouse", "snapshot folder"}
    assert failed["publish target"].setting == PUBLISH_SETTING and "is a file, not a folder" in failed[
        "publish target"].detail
    assert failed["warehouse"].setting == WAREHOUSE_SETTING
    assert failed["snapshot folder"].setting == SNAPSHOT_SETTING and "does not exist" in failed[
        "snapshot folder"].detail
    with pytest.raises(PreflightFailed) as info:
        preflight(s)
    message = str(info.value)
    assert message.count("\n") == 0 and all(x in message for x in (PUBLISH_SETTING, WAREHOUSE_SETTING,
                                                                   SNAPSHOT_SETTING))
    assert "Nothing was extracted, written or published" in message


@pytest.mark.parametrize("where", ["/proc/eujp/store", "/sys/eujp/store"])
def test_a_folder_no_one_can_write_fails_even_for_root_who_passes_every_access_check(tmp_path, where):
    """root passes os.access for a path under /proc, where no folder can be made: the check makes (and
    removes) one in the nearest folder that exists."""
    s = settings(tmp_path, publish_uri=where, warehouse_path=Path(where) / "warehouse.duckdb")
    failed = {c.name: c.detail for c in run_checks(s) if not c.ok}
    assert set(failed) == {"publish target", "warehouse"}
    assert failed["publish target"].startswith(f"{where} cannot be created (/{where.split('/')[1]} is not writable")
    assert list(tmp_path.iterdir()) == []


def test_snapshot_folder_is_not_checked_for_live_sources(tmp_path):
    check = next(c for c in run_checks(settings(tmp_path, source_mode="live", snapshot_dir=tmp_path / "x"))
                 if c.name == "snapshot folder")
    assert check.ok and "live" in check.detail


def test_unsupported_publish_uri_names_the_setting(tmp_path):
    check = run_checks(settings(tmp_path, publish_uri="ftp://host/x"))[0]
    assert not check.ok and check.setting == PUBLISH_SETTING and "unsupported" in check.detail


def test_a_suite_the_audit_cannot_translate_is_refused_naming_its_file_and_expectation(tmp_path, monkeypatch):
    """GX validates any expectation type; the audit's SQL (eujp.suite_sql) refused this one after every load."""
    from eujp import validate

    changed = comext_goods.SOURCE.table.name
    copies = {}
    for table in validate.SUITE_TABLES:
        suite = json.loads(validate.suite_path(table).read_text(encoding="utf-8"))
        if table == changed:
            suite["expectations"].append({"type": "expect_column_value_lengths_to_be_between", "severity": "warning",
                                          "kwargs": {"column": "period_code", "min_value": 7, "max_value": 7}})
        copies[table] = tmp_path / f"{table}.json"
        copies[table].write_text(json.dumps(suite), encoding="utf-8")
    monkeypatch.setattr(validate, "suite_path", copies.__getitem__)
    failed = [c for c in run_checks(settings(tmp_path)) if not c.ok]
    assert [c.name for c in failed] == ["expectation suites"]
    assert failed[0].detail.startswith(f"{copies[changed]}: {changed}: expectation #")
    assert "type 'expect_column_value_lengths_to_be_between' is not supported by eujp.suite_sql" in failed[0].detail
    with pytest.raises(PreflightFailed, match="expect_column_value_lengths_to_be_between"):
        preflight(settings(tmp_path))


def test_eujp_run_leaves_the_suites_to_the_daily_flows_own_preflight_and_an_as_of_rebuild_checks_them(
        tmp_path, monkeypatch):
    """The suites' check (~1 s) would delay the temporary server's start; the daily flow checks them before it
    extracts anything (flows.daily.check_settings). An as-of rebuild has no preflight of its own."""
    import typer

    from eujp import preflight as pf
    from flows import cli

    called = []

    def broken(settings):
        called.append(True)
        return pf._failed("expectation suites", "expectations/x.json: broken", "the suite file")

    monkeypatch.setattr(pf, "check_suites", broken)
    monkeypatch.setitem(pf.CHECKS, "suites", lambda s, api, write: pf.check_suites(s))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    cli._preflight_or_exit(settings(tmp_path), as_of=None)  # passes: the suites are not checked here
    assert called == []
    with pytest.raises(PreflightFailed, match="expectations/x.json: broken"):  # the flow's own preflight
        pf.preflight(settings(tmp_path))
    with pytest.raises(typer.Exit) as exited:
        cli._preflight_or_exit(settings(tmp_path), as_of="2026-01-01")
    assert exited.value.exit_code == 2 and len(called) == 2


def test_an_unreachable_prefect_api_names_prefect_api_url():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    check = check_prefect_api(f"http://127.0.0.1:{port}/api")
    assert not check.ok and check.setting == PREFECT_SETTING and str(port) in check.detail
    assert check_prefect_api(None).ok


def test_eujp_check_prints_one_line_per_check_and_exits_2_on_failure(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = runner.invoke(app, ["check", "--warehouse", str(tmp_path / "var" / "w.duckdb"),
                                 "--publish", str(blocker / "store")])
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    assert len(lines) == 7 and lines[0].startswith("FAILED  publish target:") and PUBLISH_SETTING in lines[0]
    assert all(line.startswith("ok ") for line in lines[1:])
    ok = runner.invoke(app, ["check", "--warehouse", str(tmp_path / "var" / "w.duckdb"),
                             "--publish", str(tmp_path / "store")])
    assert ok.exit_code == 0 and len(ok.stdout.splitlines()) == 7
    assert [p.name for p in tmp_path.iterdir()] == ["a-file"]


def test_eujp_run_stops_before_prefect_on_a_misconfiguration(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = runner.invoke(app, ["run", "--warehouse", str(tmp_path / "var" / "w.duckdb"),
                                 "--publish", str(blocker / "store"), "--snapshot-dir", str(tmp_path / "none")])
    assert result.exit_code == 2, result.output
    assert "the run cannot start" in result.output and PUBLISH_SETTING in result.output
    assert SNAPSHOT_SETTING in result.output and "Traceback" not in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["a-file"]


# --- a domain flow's outcome -----------------------------------------------------------------------------

def _batch(source: str, failed: bool):
    from datetime import UTC, datetime

    from eujp.pipeline import SourceBatch

    batch = SourceBatch(source=source, table=f"fact_{source}", started_at=datetime.now(UTC))
    if failed:
        batch.fail("extract", RuntimeError("no file"))
    else:
        batch.status = "prepared"
    return batch


@pytest.mark.parametrize("failed, expect_failed", [((True, True), True), ((True, False), True),
                                                    ((False, False), False), ((), False)])
def test_a_domain_flow_fails_when_any_of_its_sources_failed(failed, expect_failed):
    from flows.domains import domain_result

    batches = [_batch(f"s{i}", f) for i, f in enumerate(failed)]
    result = domain_result("trade", batches)
    if not expect_failed:
        assert result is batches
        return
    assert result.is_failed()
    assert result.message.startswith(f"trade: {sum(failed)} of {len(failed)} source(s) failed: s0 (fact_s0)")
    assert result.data is batches  # the parent still gets every batch


def test_a_read_only_check_of_a_publish_folder_wants_it_to_exist(tmp_path):
    from eujp.preflight import check_publish_target

    assert not check_publish_target(settings(tmp_path), write=False).ok  # the as-of rebuild reads its raw zone
    (tmp_path / "store").mkdir()
    assert check_publish_target(settings(tmp_path), write=False).ok


def test_the_eujp_process_freezes_its_objects_at_exit_and_after_the_runs_imports(monkeypatch, tmp_path):
    """`eujp` (flows.cli.entry) owns its process: at exit gc.freeze runs before the interpreter's teardown (which
    would otherwise collect every object of Prefect, GX, pandas and polars again), and `eujp run` freezes the
    objects of its imports once they are done. `app` called in another process (as here, by the tests) does
    neither."""
    import atexit
    import gc

    from flows import cli

    registered, frozen, order = [], [], []
    monkeypatch.setattr(atexit, "register", lambda fn, *a, **k: registered.append(fn) or fn)
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(True))
    monkeypatch.setattr(cli, "_preflight_or_exit", lambda settings, as_of=None: None)

    class Flows:
        def daily_flow(self, **kwargs):
            order.append(("flow", len(frozen)))
            return Completed()

        def heartbeats(self):
            return contextlib.nullcontext()

    class Completed:
        def result(self, raise_on_failure=True):
            return "no summary"

        def is_completed(self):
            return True

    monkeypatch.setattr(cli, "_start_prefect_and_import", lambda server, announce: Flows())
    args = ["run", "--warehouse", str(tmp_path / "w.duckdb"), "--publish", str(tmp_path / "store")]
    assert CliRunner().invoke(cli.app, args).exit_code == 0
    assert (registered, frozen, order) == ([], [], [("flow", 0)])  # another process's app: nothing frozen

    monkeypatch.setattr(cli, "_OWN_PROCESS", False)  # restored after the test
    monkeypatch.setattr(sys, "argv", ["eujp", *args])
    with pytest.raises(SystemExit) as ended:
        cli.entry()
    assert ended.value.code == 0
    assert registered == [gc.freeze] and order[-1] == ("flow", 1)  # frozen once imported, before the flow


_WAIT_PROBE = """
import sys
from eujp.deferred_imports import GX_ENTRY
from flows import cli

class Starting:  # a temporary server that is still starting ({answers}: whether it already answers)
    api_url = "http://127.0.0.1:9/api"
    def answers(self):
        return {answers}
    def use(self, announce=True):
        return self
    def wait_ready(self):
        print("validator imported before the wait:", GX_ENTRY in sys.modules)
        return self.api_url

cli._start_prefect_and_import(Starting(), announce=False)
"""


@pytest.mark.parametrize(("answers", "imported"), [(False, True), (True, False)])
def test_the_validator_is_imported_while_the_temporary_server_starts(answers, imported):
    """`eujp run` without PREFECT_API_URL waits ~10 s for its temporary server: Great Expectations' import
    (seconds, which every run that loads data needs) happens in that wait, not after it; a server that already
    answers is not kept waiting for it. In a fresh interpreter, where nothing imported Great Expectations yet."""
    import subprocess

    out = subprocess.run([sys.executable, "-c", _WAIT_PROBE.format(answers=answers)], capture_output=True,
                         text=True, timeout=120, check=True, cwd=Path(__file__).resolve().parents[2])
    assert f"validator imported before the wait: {imported}" in out.stdout, out.stdout + out.stderr


@pytest.mark.parametrize("home_was_there", [False, True])
def test_a_discarded_temporary_server_is_stopped_and_removes_only_the_home_it_made(tmp_path, monkeypatch,
                                                                                 home_was_there):
    """`eujp run` launches its temporary server before its checks; a run they refuse discards it: the server's
    process ends, and a PREFECT_HOME its start created (to seed the database) is removed; a home that was there
    is kept with what it held."""
    from eujp.prefect_server import TemporaryPrefectServer

    home = tmp_path / "prefect-home"
    if home_was_there:
        home.mkdir()
        (home / "profiles.toml").write_text("# the user's\n")
    monkeypatch.setenv("PREFECT_HOME", str(home))
    server = TemporaryPrefectServer(announce=False).start()
    process = server.process
    assert process.poll() is None and home.is_dir()
    server.discard()
    assert process.poll() is not None and server.process is None
    assert home.exists() == home_was_there
    if home_was_there:
        assert (home / "profiles.toml").read_text() == "# the user's\n"


def test_a_temporary_server_answers_only_when_its_health_check_does():
    """eujp.prefect_server.TemporaryPrefectServer.answers: one quick probe of /api/health, no wait."""
    import subprocess
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from eujp.prefect_server import TemporaryPrefectServer

    class Health(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/api/health" else 404)
            self.end_headers()
            self.wfile.write(b"true")

        def log_message(self, *args):
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        server = TemporaryPrefectServer(announce=False)
        assert not server.answers()  # never started
        server.process, server.port = alive, httpd.server_address[1]
        assert server.answers()
        with socket.socket() as s:  # a port nothing listens on: not yet
            s.bind(("127.0.0.1", 0))
            server.port = s.getsockname()[1]
        assert not server.answers()
        server.port = httpd.server_address[1]
        alive.kill()
        alive.wait()
        assert not server.answers()  # its process has exited
    finally:
        server.process = None
        alive.kill()
        httpd.shutdown()


def test_summary_says_how_many_warnings_the_suite_raised(capsys):
    """The validation column counts the failed warning-level expectations of ValidationReport.to_dict()
    (its statistics); it read a key to_dict() never had, so a run whose suite warned said only 'passed'."""
    from eujp.validate import ValidationReport

    def row(validation: dict) -> str:
        data = summary()
        data["sources"][0]["validation"] = validation
        return next(line for line in printed(capsys, data) if line.lstrip("│ ").startswith(COMEXT))

    warned = ValidationReport(table="fact_goods_trade_product", run_id=None, row_count=96, outcomes=[],
                              duration_seconds=0.1).to_dict()
    assert "passed" in row(warned) and "warning" not in row(warned)
    warned["statistics"]["warning_failed"] = 2
    assert "passed (2 warning(s))" in row(warned)
    warned["success"] = False
    assert "FAILED (2 warning(s))" in row(warned)


@pytest.mark.parametrize("sql", [
    "ATTACH '{wh}' AS w (READ_ONLY false); DELETE FROM w.t; SELECT 1",
    "COPY (SELECT 'x' AS a) TO '{tmp}/latest.json' (FORMAT csv)",
    "SET threads = 1",
    "SELECT 1; DROP TABLE t",
])
def test_query_runs_queries_only(warehouse, tmp_path, sql):
    """The warehouse is attached read-only, but an ATTACH of the same file READ_ONLY false emptied a table and
    a COPY overwrote latest.json; only queries run now, and nothing is written."""
    import duckdb

    before = duckdb.connect(str(warehouse), read_only=True).execute("SELECT count(*) FROM t").fetchone()
    result = runner.invoke(app, ["query", sql.format(wh=warehouse, tmp=tmp_path), "--warehouse", str(warehouse)])
    assert result.exit_code == 2 and "only queries are run" in result.output, result.output
    assert not (tmp_path / "latest.json").exists()
    assert duckdb.connect(str(warehouse), read_only=True).execute("SELECT count(*) FROM t").fetchone() == before


def test_query_runs_describe_show_and_several_selects(warehouse):
    for sql in ("DESCRIBE t", "SHOW TABLES", "SELECT 1 AS a; SELECT 2 AS b", "EXPLAIN SELECT 1"):
        result = runner.invoke(app, ["query", sql, "--warehouse", str(warehouse), "--format", "csv"])
        assert result.exit_code == 0, (sql, result.output)
    empty = runner.invoke(app, ["query", "  ", "--warehouse", str(warehouse)])
    assert empty.exit_code == 2 and "no SQL statement given" in empty.output


def test_a_ctrl_c_inside_duckdb_is_an_interrupt_never_retried():
    """SIGINT reaches a DuckDB query as its error 'Query interrupted': the publish task retried it (5 s, then 30 s,
    against an attached catalog left behind) and the run ended with exit 1 and tracebacks."""
    from types import SimpleNamespace

    from eujp.errors import is_interrupt
    from flows.tasks import publish_retry_condition

    assert is_interrupt(RuntimeError("Query interrupted")) and is_interrupt(KeyboardInterrupt())
    assert not is_interrupt(RuntimeError("disk full")) and not is_interrupt(None)
    retry = publish_retry_condition()
    task = SimpleNamespace(retry_delay_seconds=[5, 30])
    run = SimpleNamespace(run_count=1)
    assert not retry(task, run, SimpleNamespace(data=RuntimeError("Query interrupted")))
    assert retry(task, run, SimpleNamespace(data=ConnectionResetError("connection reset")))


@pytest.mark.parametrize("uri", ["s3:/bucket/eujp", "s3:bucket", "s3//bucket", "S3:/bucket", "  "])
def test_a_mistyped_publish_uri_is_refused_not_taken_for_a_folder(tmp_path, monkeypatch, uri):
    """"s3:/bucket" published to a local folder of that name with exit 0 while the bucket's latest stayed
    behind; the check, the run and the store refuse it, naming the setting."""
    from eujp.preflight import PUBLISH_SETTING, check_lake_catalog, check_publish_target
    from eujp.storage import open_store

    monkeypatch.chdir(tmp_path)
    bad = replace(settings(tmp_path), publish_uri=uri)
    check = check_publish_target(bad)
    assert not check.ok and check.setting == PUBLISH_SETTING and ("mistyped S3 URI" in check.detail
                                                                  or "empty" in check.detail)
    assert check_lake_catalog(bad).setting == PUBLISH_SETTING  # not EUJP_LAKE_CATALOG
    with pytest.raises(ValueError, match="mistyped S3 URI|empty"):
        open_store(uri)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("name", "value"), [("EUJP_S3_MAX_ATTEMPTS", "0"), ("EUJP_S3_MAX_ATTEMPTS", "abc"),
                                             ("EUJP_S3_CONNECT_TIMEOUT", "abc"), ("EUJP_S3_READ_TIMEOUT", "-1"),
                                             ("EUJP_S3_ADDRESSING_STYLE", "bogus")])
def test_a_bad_s3_client_setting_is_named_by_the_check(tmp_path, monkeypatch, name, value):
    """The publish check names it; so does the lake catalog's (it said 'fix EUJP_LAKE_CATALOG', a setting that
    was right)."""
    from eujp.preflight import check_lake_catalog, check_publish_target

    monkeypatch.setenv(name, value)
    check = check_publish_target(replace(settings(tmp_path), publish_uri="s3://bucket/eujp"))
    assert not check.ok and check.setting == name and check.detail.startswith(f"{name}={value!r}")
    lake = check_lake_catalog(replace(settings(tmp_path), publish_uri="s3://bucket/eujp"))
    assert not lake.ok and lake.setting == name and lake.detail == f"not checked: {check.detail}"


def test_the_s3_addressing_style_reaches_the_client_in_any_case(monkeypatch):
    from eujp.storage import make_s3_client

    for value, style in (("path", "path"), ("Virtual", "virtual"), ("", "auto")):
        monkeypatch.setenv("EUJP_S3_ADDRESSING_STYLE", value)
        assert make_s3_client().meta.config.s3["addressing_style"] == style


def test_status_and_query_say_what_is_wrong_without_a_traceback(warehouse, tmp_path, monkeypatch):
    """A bad setting, a file that is no DuckDB warehouse, a folder, an output path in no folder: one line and
    exit 2 each (tracebacks before)."""
    notduck = tmp_path / "notduck.duckdb"
    notduck.write_text("hello")
    cases = [(["status", "--warehouse", str(notduck)], "cannot read the warehouse"),
             (["status", "--warehouse", str(tmp_path)], "is a folder"),
             (["status", "--limit", "-1"], "greater than or equal to 1"),
             (["query", SQL, "--warehouse", str(notduck)], "cannot open the warehouse"),
             (["query", SQL, "--warehouse", str(warehouse), "--format", "csv", "-o", str(tmp_path / "no" / "x.csv")],
              "cannot write")]
    for args, said in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and said in result.output, (args, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exception)
    monkeypatch.setenv("EUJP_KEEP_RUNS", "abc")
    for args in (["status", "--warehouse", str(warehouse)], ["query", SQL, "--warehouse", str(warehouse)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and "EUJP_KEEP_RUNS must be a whole number, got 'abc'" in result.output


@pytest.mark.parametrize(("name", "value", "said"), [
    ("EUJP_LOCK_WAIT_SECONDS", "nan", "EUJP_LOCK_WAIT_SECONDS must be a number of seconds from 0"),
    ("EUJP_LOCK_WAIT_SECONDS", "-5", "EUJP_LOCK_WAIT_SECONDS must be a number of seconds from 0"),
    ("EUJP_PUBLISH_TIMEOUT", "inf", "EUJP_PUBLISH_TIMEOUT must be a number of seconds above 0 and at most"),
    ("EUJP_MAX_ROW_DROP_PCT", "abc", "EUJP_MAX_ROW_DROP_PCT must be a number, got 'abc'"),
    ("EUJP_RAW_RETENTION_DAYS", "100000000", "EUJP_RAW_RETENTION_DAYS (prune-raw --days) must be from 1 to 36500"),
    ("EUJP_FANOUT", "maybe", "EUJP_FANOUT must be on or off"),
    # printed as the run's links: "report: data.example.org/eujp/runs/..." was neither a link nor where the files are
    ("EUJP_PUBLIC_URL", "data.example.org/eujp", "EUJP_PUBLIC_URL must be the http(s) address the published files"),
])
def test_settings_out_of_their_range_are_refused_naming_them(monkeypatch, name, value, said):
    from eujp.config import Settings

    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=re.escape(said)):
        Settings.from_env()


def test_check_names_a_per_source_threshold_that_names_no_source(tmp_path, monkeypatch):
    """`eujp check` said ok, while `eujp run` refused the same setting once Prefect had started."""
    monkeypatch.setenv("EUJP_MAX_REJECTED_PCT_NOSUCH", "3")
    (failed,) = [c for c in run_checks(Settings.from_env(warehouse_path=tmp_path / "var" / "w.duckdb", publish_uri=str(tmp_path / "store"))) if not c.ok]
    assert failed.name == "settings" and failed.setting == "EUJP_MAX_REJECTED_PCT_NOSUCH"
    assert failed.detail.startswith("EUJP_MAX_REJECTED_PCT_NOSUCH names no source (the per-source thresholds are")


def test_an_as_of_day_in_the_future_is_refused_before_the_run_starts(tmp_path):
    """It started Prefect, failed the flow (alerting, when a webhook is set) and exited 1."""
    result = runner.invoke(app, ["run", "--as-of", "2099-01-01", "--warehouse", str(tmp_path / "w.duckdb")])
    assert result.exit_code == 2 and "--as-of 2099-01-01 is in the future" in result.output
    assert not (tmp_path / "w.duckdb").exists()


def test_summary_prints_source_text_as_it_is_never_as_markup(capsys):
    """A warning or an error quotes source values: rich markup in them ("[/x]", "[click](...)") is printed as
    written (an unmatched closing tag raised MarkupError after a completed run, and exited 1)."""
    lines = printed(capsys, summary(warnings=["1 of 64 rows rejected: event_date '[/x]' is not a date"],
                                    errors=["event_type '[click](http://e.example) [bold]x'"],
                                    sources=[summary()["sources"][0] | {"source_version": "[/v]"}]))
    assert "warning: 1 of 64 rows rejected: event_date '[/x]' is not a date" in lines
    assert "error: event_type '[click](http://e.example) [bold]x'" in lines
    assert any("[/v]" in line for line in lines)


def refused_before_the_flow(monkeypatch) -> list:
    """`eujp run` refused by its checks: the flow must not be called, and every temporary server launched
    beside the checks (a stand-in, recorded in the list returned) must be discarded."""
    import eujp.prefect_server as ps
    from flows import cli

    launched = []

    class Launched:
        discarded = False

        def discard(self):
            self.discarded = True

    def no_flow(*args, **kwargs):
        raise AssertionError("the checks passed a run they should have refused")

    monkeypatch.setattr(cli, "_start_prefect_and_import", no_flow)
    monkeypatch.setattr(ps, "launch_if_needed", lambda: launched.append(Launched()) or launched[-1])
    return launched


def test_an_as_of_rebuild_refuses_the_live_warehouse_or_a_day_before_any_landing_before_prefect_starts(
        tmp_path, monkeypatch):
    """`eujp run --as-of DAY --warehouse <live>` with the live warehouse's runs given day-shaped ids
    (`--run-id daily-20261205`) replaced it by a one-source past state; `--as-of` a day before any landing
    started Prefect and failed late (a traceback, an alert). Both exit 2 in the preflight, as --from-raw does."""
    from eujp.landing import RawPayload, land
    from eujp.storage import LocalObjectStore
    from eujp.tables import ensure_schema

    launched = refused_before_the_flow(monkeypatch)
    store = LocalObjectStore(tmp_path / "store")
    land(store, RawPayload(COMEXT, "a.csv", b"x\n", "file:///a.csv", fetched_at="2026-12-05T06:00:00+00:00"),
         date(2026, 12, 5), comext_goods.SOURCE.extension)
    live = tmp_path / "var" / "warehouse.duckdb"
    live.parent.mkdir()
    with duckdb.connect(str(live)) as conn:
        ensure_schema(conn)
        conn.execute("INSERT INTO etl_runs (run_id, source, table_name, status, started_at) VALUES "
                     "('daily-20261205', 'some_source', 'fact_some_table', 'success', TIMESTAMPTZ '2026-12-05 06:00:00+00')")
    result = runner.invoke(app, ["run", "--as-of", "2026-12-05", "--only", COMEXT, "--warehouse", str(live),
                                 "--publish", str(tmp_path / "store")])
    assert result.exit_code == 2, result.output
    assert f"{live} is a warehouse that runs built (its last: daily-20261205), not one an as-of rebuild wrote" \
        in " ".join(result.output.split())
    with duckdb.connect(str(live), read_only=True) as conn:
        assert conn.execute("SELECT run_id FROM etl_runs").fetchall() == [("daily-20261205",)]

    early = tmp_path / "early.duckdb"
    result = runner.invoke(app, ["run", "--as-of", "2026-12-04", "--warehouse", str(early),
                                 "--publish", str(tmp_path / "store")])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert " ".join(result.output.split()).startswith(
        f"--as-of 2026-12-04: nothing was landed on or before that day under {store.uri}/raw/ for ")
    assert not early.exists()
    assert launched and all(server.discarded for server in launched)


def test_a_live_run_without_a_required_url_or_with_an_unknown_source_stops_before_prefect(tmp_path, monkeypatch):
    """`eujp run --source live` selecting SIPRI without EUJP_SIPRI_URL (it has no default live endpoint) passed
    `eujp check` and the preflight, started Prefect and published a Failed run; `--only nosuch` was refused only
    once the temporary server had started (~14 s). Both exit 2 now, before Prefect starts."""
    from eujp.sources import sipri_arms

    launched = refused_before_the_flow(monkeypatch)
    monkeypatch.delenv("EUJP_SIPRI_URL", raising=False)
    sipri = sipri_arms.SOURCE.name
    where = ["--warehouse", str(tmp_path / "w.duckdb"), "--publish", str(tmp_path / "store")]
    result = runner.invoke(app, ["run", "--source", "live", "--only", sipri, *where])
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert f"settings: EUJP_SIPRI_URL is not set, and {sipri} has no default live endpoint" in said
    assert "; fix EUJP_SIPRI_URL. Nothing was extracted, written or published." in said

    result = runner.invoke(app, ["run", "--only", "nosuch", *where])
    assert result.exit_code == 2 and "unknown source 'nosuch'" in result.output
    assert len(launched) == 2 and all(server.discarded for server in launched)
    assert not (tmp_path / "store").exists()

    result = runner.invoke(app, ["check", "--source", "live", *where])
    assert result.exit_code == 2
    (failed,) = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert failed.startswith("FAILED  settings: EUJP_SIPRI_URL is not set") and failed.endswith("(fix EUJP_SIPRI_URL)")
    result = runner.invoke(app, ["check", "--source", "live", "--only", comext_goods.SOURCE.name, *where])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["check", "--only", "nosuch", *where]).exit_code == 2


# --- eujp serve: a bad name or schedule is named with where it came from ----------------------------------

@pytest.mark.parametrize(("args", "env", "hint", "says"), [
    (["--name", "worker"], {}, "'--name'", "'worker': eujp-daily/worker is the worker-based deployment"),
    (["--cron", "bad cron"], {}, "'--cron'", "'bad cron' is not a cron expression"),
    ([], {"EUJP_SCHEDULE_CRON": "bad cron"}, "EUJP_SCHEDULE_CRON", "'bad cron' is not a cron expression"),
    (["--maintenance-cron", "61 * * * *"], {}, "'--maintenance-cron'", "'61 * * * *' is not a cron expression"),
    ([], {"EUJP_LAKE_MAINTENANCE_CRON": "nope"}, "EUJP_LAKE_MAINTENANCE_CRON", "'nope' is not a cron expression"),
    (["--timezone", "Mars/Olympus"], {}, "'--timezone'", "'Mars/Olympus' is not a time zone"),
    # a name Prefect refuses was blamed on the time zone
    (["--name", "a/b", "--timezone", "Europe/Brussels"], {}, "'--name'",
     "'a/b': Name 'a/b' contains an invalid character"),
    (["--name", " "], {}, "'--name'", "' ': a deployment needs a name"),
    ([], {"EUJP_SCHEDULE_TIMEZONE": "Mars/Olympus"}, "EUJP_SCHEDULE_TIMEZONE", "'Mars/Olympus' is not a time zone"),
])
def test_eujp_serve_names_the_bad_setting_and_its_value(monkeypatch, args, env, hint, says):
    """`--name worker` was reported as a bad schedule ("schedule '0 6 * * *' (UTC): ..."), a bad
    EUJP_LAKE_MAINTENANCE_CRON as "maintenance schedule None", neither variable named. Nothing is registered:
    the check comes before any call to the API (nothing listens at its address)."""
    for var in ("EUJP_SCHEDULE_CRON", "EUJP_SCHEDULE_TIMEZONE", "EUJP_LAKE_MAINTENANCE_CRON"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: f"http://127.0.0.1:{port}/api"}):
        result = runner.invoke(app, ["serve", *args])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.replace("│", " ").split())
    assert f"Invalid value for {hint}: {says}" in message, message
    assert "schedule '0 6 * * *'" not in message and "None" not in message
    assert "serving eujp-daily/" not in message  # refused before it says it serves


def test_query_shows_and_writes_timestamps_in_utc_under_another_time_zone(tmp_path):
    """A TIMESTAMPTZ (loaded_at, last_success_at) came out of `eujp query` in the process' zone: under
    TZ=Asia/Tokyo, 06:05 UTC read '2026-03-02 15:05:00+09:00' in the table and the CSV. Both say UTC now. (A
    process of its own: DuckDB takes the zone once per process.)"""
    import os
    import subprocess
    from datetime import UTC, datetime

    path = tmp_path / "wh.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE s (source VARCHAR, last_success_at TIMESTAMPTZ)")
        conn.execute("INSERT INTO s VALUES ('x', ?)", [datetime(2026, 3, 2, 6, 5, tzinfo=UTC)])
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "TZ": "Asia/Tokyo", "PYTHONPATH": str(repo)}
    sql = "SELECT source, last_success_at, last_success_at::DATE AS day FROM s"

    def eujp_query(*args: str) -> str:
        done = subprocess.run([sys.executable, "-c", "from flows.cli import entry; entry()", "query", sql,
                               "--warehouse", str(path), *args], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    table = eujp_query()
    assert "2026-03-02 06:05:00+00:00" in table and "+09" not in table
    assert list(csv.reader(io.StringIO(eujp_query("--format", "csv"))))[1] == [
        "x", "2026-03-02T06:05:00.000000+0000", "2026-03-02"]


# --- eujp run --remove-partner -------------------------------------------------------------------------------------

def test_remove_partner_refusals_exit_2_before_prefect_starts(tmp_path, monkeypatch):
    """Japan, a code that is none, an as-of rebuild, and a live run whose EUJP_COMEXT_PARTNERS still asks for the
    partner (the next live run would fetch its rows again): each a usage error naming what to fix, nothing
    written."""

    launched = refused_before_the_flow(monkeypatch)
    where = ["--warehouse", str(tmp_path / "w.duckdb"), "--publish", str(tmp_path / "store")]

    def said(*args: str) -> str:
        result = runner.invoke(app, ["run", *args, *where])
        assert result.exit_code == 2, result.output
        return " ".join(re.sub("[│╭╮╰╯─]", " ", result.output).split())  # typer's error box, unwrapped

    assert "Japan is the partner this warehouse is about" in said("--remove-partner", "jp")
    assert "--remove-partner 'K R' is not a Comext partner code" in said("--remove-partner", "k r")
    assert "--as-of replays the raw zone: it cannot be combined with --remove-partner" in said(
        "--as-of", "2026-12-01", "--remove-partner", "KR")
    monkeypatch.setenv("EUJP_COMEXT_PARTNERS", "JP,CN,KR")
    text = said("--source", "live", "--only", comext_goods.SOURCE.name, "--remove-partner", "kr",
                "--remove-partner", "US")
    assert ("--remove-partner KR: EUJP_COMEXT_PARTNERS=JP,CN,KR still asks for KR; take it out first, else the next "
            "live run fetches the rows again") in text
    monkeypatch.setenv("EUJP_COMEXT_PARTNERS", "")
    assert "EUJP_COMEXT_PARTNERS is empty (every partner): it still asks for KR, US; take them out first" in said(
        "--source", "live", "--only", comext_goods.SOURCE.name, "--remove-partner", "KR", "--remove-partner", "US")
    assert not (tmp_path / "store").exists() and not (tmp_path / "w.duckdb").exists()
    assert launched and all(server.discarded for server in launched)


def test_remove_partner_passes_the_preflight_once_the_live_settings_no_longer_ask_for_it(tmp_path, monkeypatch):
    monkeypatch.setenv("EUJP_COMEXT_PARTNERS", "JP,CN")
    live = Settings.from_env(warehouse_path=tmp_path / "w.duckdb", publish_uri=str(tmp_path / "store"),
                             source_mode="live", remove_partners=("KR",), only_sources=(comext_goods.SOURCE.name,))
    (check,) = [c for c in run_checks(live) if c.name == "settings"]
    assert check.ok, check.detail
    # a snapshot run reads no request: nothing to ask of EUJP_COMEXT_PARTNERS (docs/live-extraction.md says a
    # snapshot that still holds the partner's rows loads them again when Comext is reloaded)
    monkeypatch.setenv("EUJP_COMEXT_PARTNERS", "JP,KR")
    (check,) = [c for c in run_checks(live.with_(source_mode="snapshot")) if c.name == "settings"]
    assert check.ok, check.detail


def test_summary_names_the_partners_a_run_removed(capsys):
    removed = {"KR": {"fact_rows": 1234, "coverage_rows": 7}, "NZ": {"fact_rows": 0, "coverage_rows": 0}}
    lines = printed(capsys, summary(changes={"tables_written": ["fact_goods_trade_product"], "models_rebuilt": {},
                                             "models_kept": [], "partners_removed": removed}))
    assert ("partner(s) removed on request (--remove-partner): KR (1,234 fact row(s), 7 coverage row(s)), "
            "NZ (0 fact row(s), 0 coverage row(s)): none in the warehouse") in lines


@pytest.mark.parametrize(("uri", "said"), [
    ("s3://", "names no bucket"), ("s3:///eujp", "names no bucket"), ("S3://bucket/eujp", "in lower case"),
    ("gs://bucket/eujp", "unsupported publish URI"),
    ("file:/tmp/x", "no file:// URI (it would be read as a folder named so under the current one)")])
def test_a_publish_uri_with_no_bucket_another_scheme_or_a_one_slash_file_uri_is_refused_by_the_publish_setting(
        tmp_path, monkeypatch, uri, said):
    """'file:/tmp/x' published into a folder 'file:' under the current one, exit 0; 's3://' was blamed on
    EUJP_LAKE_CATALOG by the lake's check. The check, the lake's check and the store all refuse them, naming the
    publish setting, and nothing is created."""
    from eujp.preflight import check_lake_catalog, check_publish_target
    from eujp.storage import open_store

    monkeypatch.chdir(tmp_path)
    bad = replace(settings(tmp_path), publish_uri=uri)
    check = check_publish_target(bad)
    assert not check.ok and check.setting == PUBLISH_SETTING and said in check.detail, check.detail
    lake = check_lake_catalog(bad)
    assert lake.setting == PUBLISH_SETTING and said in lake.detail
    with pytest.raises(ValueError, match=re.escape(said)):
        open_store(uri)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("endpoint", ["minio:9000", " ", "ftp://host"])
def test_an_s3_endpoint_that_is_no_url_is_named_by_its_variable(tmp_path, monkeypatch, endpoint):
    """AWS_ENDPOINT_URL=minio:9000 (no scheme) was blamed on EUJP_PUBLISH_URI and EUJP_LAKE_CATALOG; an empty
    one counts as unset, as the S3 client reads it (then the other variable, or AWS itself)."""
    from eujp.preflight import check_lake_catalog, check_publish_target
    from eujp.storage import s3_endpoint

    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    if not endpoint.strip():
        assert s3_endpoint() is None
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000")
        assert s3_endpoint() == "http://127.0.0.1:9000"
        return
    target = replace(settings(tmp_path), publish_uri="s3://bucket/eujp")
    check = check_publish_target(target)
    assert not check.ok and check.setting == "AWS_ENDPOINT_URL" and "is no endpoint URL" in check.detail
    assert check_lake_catalog(target).setting == "AWS_ENDPOINT_URL"


@pytest.mark.parametrize("url", [" ", "prefect-server/api", "localhost:4200/api"])
def test_a_prefect_api_url_that_is_no_url_is_named_not_a_traceback(url):
    check = check_prefect_api(url)
    assert not check.ok and check.setting == PREFECT_SETTING and "is no URL of a Prefect API" in check.detail


@pytest.mark.parametrize("args", [["--as-of", ""], ["--from-raw", ""], ["--as-of", "20261207"],
                                  ["--from-raw", "2026-W49-1"]])
def test_an_empty_or_non_dashed_day_is_refused_not_taken_for_no_option(tmp_path, args):
    """`--as-of ""` ran a daily run and published it (an as-of rebuild never publishes); `20261207` was read as a
    day though the option promises YYYY-MM-DD."""
    result = runner.invoke(app, ["run", *args, "--warehouse", str(tmp_path / "w.duckdb"),
                                 "--publish", str(tmp_path / "store")])
    said = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())  # out of typer's box
    assert result.exit_code == 2 and "wants a day as YYYY-MM-DD" in said, said
    assert list(tmp_path.iterdir()) == []


def test_from_raw_refuses_a_snapshot_folder_it_would_not_read(tmp_path):
    result = runner.invoke(app, ["run", "--from-raw", "2026-01-05", "--snapshot-dir", str(tmp_path / "nowhere"),
                                 "--warehouse", str(tmp_path / "w.duckdb"), "--publish", str(tmp_path / "store")])
    said = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())  # out of typer's box
    assert result.exit_code == 2 and "cannot be combined with --snapshot-dir" in said, said


@pytest.mark.parametrize(("modules", "said"), [("nope.mod", "ModuleNotFoundError: No module named 'nope'"),
                                               ("eujp.config", "must define SOURCE")])
def test_a_bad_source_module_setting_is_named_with_exit_2_not_a_traceback(tmp_path, modules, said):
    """EUJP_SOURCE_MODULES is read as the source registry is imported: a module that does not import or declares
    no source ended `eujp check` and `eujp run` in a traceback (exit 1)."""
    import os
    import subprocess

    env = {**os.environ, "EUJP_SOURCE_MODULES": modules, "EUJP_WAREHOUSE": str(tmp_path / "w.duckdb"),
           "EUJP_PUBLISH_URI": str(tmp_path / "store")}
    done = subprocess.run([sys.executable, "-m", "flows.cli", "check"], capture_output=True, text=True, env=env,
                          cwd=Path(__file__).resolve().parents[2], timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert f"EUJP_SOURCE_MODULES={modules!r}: module {modules!r} cannot be registered as a source" in done.stderr
    assert said in done.stderr and "Traceback" not in done.stderr


def test_eujp_serve_without_an_answering_server_says_so_with_exit_2_not_a_traceback(monkeypatch):
    """PREFECT_API_URL set, nothing listening: 'serving ...' then two tracebacks of a connection error, exit 1."""
    for var in ("EUJP_SCHEDULE_CRON", "EUJP_SCHEDULE_TIMEZONE", "EUJP_LAKE_MAINTENANCE_CRON"):
        monkeypatch.delenv(var, raising=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: f"http://127.0.0.1:{port}/api"}):
        result = runner.invoke(app, ["serve"])
    assert result.exit_code == 2, result.output
    assert f"eujp serve needs a Prefect server: http://127.0.0.1:{port}/api did not answer" in result.output
    assert "serving eujp-daily" not in result.output and "Traceback" not in result.output


def test_a_warehouse_file_that_is_no_duckdb_database_fails_the_check_naming_it(tmp_path):
    """It passed `eujp check`; the run then failed with a traceback naming its staging link, not the file."""
    from eujp.preflight import check_warehouse_folder

    text = tmp_path / "notes.duckdb"
    text.write_text("hello")
    check = check_warehouse_folder(replace(settings(tmp_path), warehouse_path=text))
    assert not check.ok and check.setting == WAREHOUSE_SETTING and "is no DuckDB database" in check.detail
    real = tmp_path / "real.duckdb"
    duckdb.connect(str(real)).close()
    assert check_warehouse_folder(replace(settings(tmp_path), warehouse_path=real)).ok
    empty = tmp_path / "empty.duckdb"
    empty.touch()  # DuckDB refuses an empty file: "exists, but it is not a valid DuckDB database file"
    check = check_warehouse_folder(replace(settings(tmp_path), warehouse_path=empty))
    assert not check.ok and "is an empty file, no DuckDB database" in check.detail
    assert check_warehouse_folder(replace(settings(tmp_path), warehouse_path=tmp_path / "new.duckdb")).ok
