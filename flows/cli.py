"""`eujp`: the command line of the EU–Japan warehouse.

It lives in flows/ because it starts the flows: the core package (eujp) never imports flows. The heavy
imports (Prefect's flows, Great Expectations) happen inside the commands that need them, so `eujp status`,
`eujp query` and `--help` start fast and `eujp run` can start its temporary Prefect server first."""

from __future__ import annotations

import atexit
import gc
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from flows.serve import DEFAULT_NAME as SERVED_DEPLOYMENT

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# With no PREFECT_API_URL, Prefect starts a temporary local server (~10-20 s); on a busy 2-core worker
# its default 20 s start-up timeout is too tight.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

class SourceKind(StrEnum):
    snapshot = "snapshot"
    live = "live"


class QueryFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


USAGE_EXIT_CODE = 2  # a usage or configuration error (Click's own code for a bad option)

# True in a process the command line owns (`entry`), False when `app` is called in another process (tests).
_OWN_PROCESS = False
app = typer.Typer(help="EU–Japan partnership warehouse: daily ETL, status and queries.", no_args_is_help=True,
                  add_completion=False, context_settings={"help_option_names": ["-h", "--help"]})


def _show_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"eujp {version('eujp')}")
        except PackageNotFoundError:
            typer.echo("eujp (not installed: no package metadata)")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_show_version, is_eager=True,
                                          help="Print the version of the eujp package and exit.")] = False,
) -> None:
    """EU–Japan partnership warehouse: daily ETL, status and queries."""


# The links `eujp run` prints last, from the run summary: every key present is printed.
SUMMARY_LINKS = (("report_url", "report"), ("docs_url", "Data Docs"), ("catalog_url", "catalog"))


def _print_summary(summary: dict) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from eujp.rows import ROW_WORDS

    console = Console(width=None if sys.stdout.isatty() else 160)  # every value escaped: source text is no markup
    table = Table(title=f"run {summary['run_id']}: {summary['status'].upper()}", title_justify="left")
    numeric = tuple(ROW_WORDS.values())
    for col in ("source", "table", "status", *numeric, "validation", "source version"):
        table.add_column(col, justify="right" if col in numeric else "left", no_wrap=True)
    for s in summary["sources"]:
        v = s.get("validation") or {}
        verdict = "-" if not v else ("passed" if v.get("success") else "FAILED")
        warned = (v.get("statistics") or {}).get("warning_failed", 0) if v else 0
        if warned:
            verdict += f" ({warned} warning(s))"
        counts = [str(s.get(key, "-")) for key in ROW_WORDS]
        table.add_row(*(escape(str(cell)) for cell in (s["source"], s["table"], s["status"], *counts, verdict,
                                                       s.get("source_version") or "-")))
    console.print(table)
    if summary.get("table_rows"):
        rows = ", ".join(f"{k} {v}" for k, v in summary["table_rows"].items())
        console.print(escape(f"warehouse {summary['warehouse']}: {rows}"))
    changes = summary.get("changes") or {}
    if "tables_written" in changes:  # a day with nothing new has only partners_removed
        rebuilt, kept = changes.get("models_rebuilt") or {}, changes.get("models_kept") or []
        # written, not "changed": a model rebuilt because an input was written may hold the same rows as before
        console.print(escape(f"tables written: {', '.join(changes.get('tables_written') or []) or 'none'}; "
                             f"models rebuilt {len(rebuilt)} of {len(rebuilt) + len(kept)}"))
    if changes.get("partners_removed"):
        from eujp.partners import removal_note

        console.print(escape(removal_note(changes["partners_removed"])))
    if summary.get("current_run_id"):
        console.print(escape(f"nothing new: every source is unchanged; the published run {summary['current_run_id']} "
                             f"is current ({summary['published_to']}); nothing was rebuilt or published"))
    elif summary.get("published_to"):
        console.print(escape(f"published to {summary['published_to']}"))
    elif summary.get("as_of"):
        console.print(escape(f"rebuilt as of {summary['as_of']} (not published)"))
    for warning in summary.get("warnings", []):
        console.print(f"[yellow]warning:[/yellow] {escape(str(warning))}")
    for err in summary.get("errors", []):
        console.print(f"[red]error:[/red] {escape(str(err))}")
    for key, label in SUMMARY_LINKS:
        if summary.get(key):
            console.print(escape(f"{label}: {summary[key]}"), soft_wrap=True, highlight=False)


@app.command()
def run(
    snapshot_dir: Annotated[Path | None, typer.Option(help="Read source files from this folder instead of the "
                                                     "bundled data/snapshot (same file names and formats).")] = None,
    warehouse: Annotated[Path | None, typer.Option(help="Warehouse file (env EUJP_WAREHOUSE; default "
                                                   "var/warehouse.duckdb).")] = None,
    publish: Annotated[str | None, typer.Option(help="Where to publish: a folder or s3://bucket/prefix "
                                                "(env EUJP_PUBLISH_URI; default var/objectstore). S3 uses the "
                                                "standard AWS_* variables (AWS_ENDPOINT_URL for MinIO/R2).")] = None,
    from_raw: Annotated[str | None, typer.Option(help="Rebuild from the payloads landed on this day "
                                                 "(YYYY-MM-DD, a UTC date: runs land under the UTC date they "
                                                 "started on) in the raw zone, without reading sources.")] = None,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="Rebuild the warehouse as it stood at the end of this day (YYYY-MM-DD, UTC) by replaying "
        "the raw zone up to it, into --warehouse (default: asof/warehouse-YYYY-MM-DD.duckdb beside the live "
        "warehouse, in its NAME.d/ folder unless it is warehouse.duckdb; the live one is left alone). Reads the raw zone of --publish; publishes nothing.")] = None,
    source_kind: Annotated[SourceKind, typer.Option(
        "--source",
        help="Where to read sources: the snapshot folder, or the live services (base URLs from "
        "EUJP_EUROSTAT_URL, EUJP_COMEXT_URL, EUJP_OECD_URL, EUJP_SIPRI_URL, EUJP_EVENTS_URL; see "
        "docs/live-extraction.md).")] = SourceKind.snapshot,
    force: Annotated[bool, typer.Option("--force", help="Reprocess every source even when it is unchanged "
                                        "since its last load, rebuild every model, and compare every lake "
                                        "partition by its full digest; live: full, unconditional "
                                        "extraction.")] = False,
    only: Annotated[list[str] | None, typer.Option("--only", help="Run only these sources (repeatable).")] = None,
    run_id: Annotated[str | None, typer.Option(help="Run id (default: time-based, unique).")] = None,
    dask_address: Annotated[str | None, typer.Option(
        "--dask-address", help="Fan the partitions of Comext (one month file or live slice each) out to this "
        "Dask scheduler, tcp://HOST:PORT (env EUJP_DASK_ADDRESS); its workers need this package, the object "
        "store and PREFECT_API_URL (docs/scale-out.md).")] = None,
    fanout: Annotated[bool, typer.Option("--fanout", help="Fan the partitions out to a local Dask cluster of "
                                         "EUJP_DASK_WORKERS processes (default 2; env EUJP_FANOUT=1).")] = False,
    remove_partner: Annotated[list[str] | None, typer.Option(
        "--remove-partner", help="Delete this Comext partner's rows (facts and coverage) in this run, rebuild "
        "the models (the years its rows leave) and publish (repeatable; not JP). Take it out of EUJP_COMEXT_PARTNERS first: a live run "
        "that still asks for it is refused (docs/live-extraction.md).")] = None,
) -> None:
    """Run the daily flow once (extract, transform, validate, load, audit, publish) and print a summary.

    The settings are checked first (as `eujp check` does; the expectation suites in the flow, before it
    extracts anything): a misconfiguration stops the run within seconds,
    before the flow starts and before anything is extracted, with one message naming the setting to fix and
    exit code 2 (the temporary Prefect server launched beside the checks is stopped, and leaves nothing).
    Exit code 1: the run failed."""
    _check_run_options(snapshot_dir=snapshot_dir, source_kind=source_kind, from_raw=from_raw, as_of=as_of,
                       force=force, remove_partner=remove_partner)
    remove_partners = tuple(dict.fromkeys(code.strip().upper() for code in remove_partner or ()))
    settings = _run_settings(snapshot_dir=snapshot_dir, warehouse=warehouse, publish=publish, from_raw=from_raw,
                             as_of=as_of, source_kind=source_kind, run_id=run_id, only=only, force=force,
                             dask_address=dask_address, fanout=fanout, remove_partners=remove_partners)
    from eujp import prefect_server, progress

    # Without PREFECT_API_URL, the temporary server is launched first, silently: its start (~4 s) overlaps the
    # checks below (~0.5 s, most of it importing the sources); a check that refuses the run discards it
    server = prefect_server.launch_if_needed()
    with progress.terminal_progress() as shown:
        try:
            unknown = _unknown_sources(only or [])
            if unknown:  # a usage error, exit 2
                raise typer.BadParameter(unknown)
            _preflight_or_exit(settings, as_of=as_of)
        except BaseException:
            if server is not None:
                server.discard()
            raise
        flows = _start_prefect_and_import(server, announce=not shown)
        if _OWN_PROCESS:
            # Prefect, the pipeline, polars and DuckDB are imported and stay: out of the garbage collector's
            # full collections, which would otherwise traverse their ~300k objects each time (0.2 s each).
            gc.freeze()
        with flows.heartbeats():
            state = _call_flow(flows, settings, snapshot_dir=snapshot_dir, warehouse=warehouse, publish=publish,
                               from_raw=from_raw, as_of=as_of, only=only, force=force, dask_address=dask_address,
                               fanout=fanout)
    _finish_run(state)


def _call_flow(flows: _Flows, settings, *, snapshot_dir, warehouse, publish, from_raw, as_of, only, force,
               dask_address, fanout):
    """The flow `eujp run` asked for (an as-of rebuild or the daily flow), called; its final state."""
    if as_of:
        return flows.as_of_flow(as_of=as_of, warehouse=str(warehouse) if warehouse else None,
                                publish_uri=publish, run_id=settings.run_id, only_sources=only or None,
                                dask_address=dask_address, fanout=fanout, return_state=True)
    return flows.daily_flow(
        snapshot_dir=str(snapshot_dir) if snapshot_dir else None,
        warehouse=str(warehouse) if warehouse else None,
        publish_uri=publish,
        source_mode=settings.source_mode,
        raw_date=from_raw,
        run_id=settings.run_id,
        only_sources=only or None,
        force=force,
        dask_address=dask_address,
        fanout=fanout,
        remove_partners=list(settings.remove_partners) or None,
        return_state=True,
    )


def _check_run_options(*, snapshot_dir: Path | None, source_kind: SourceKind, from_raw: str | None,
                       as_of: str | None, force: bool, remove_partner: list[str] | None = None) -> None:
    """Options of `eujp run` that cannot go together, and days that are not days: typer.BadParameter (exit 2)."""
    # `is not None`: an empty value (`--as-of ""`, a script's unset variable) is a bad day, not no option (it ran
    # and published a daily run)
    if from_raw is not None and source_kind == "live":
        raise typer.BadParameter("--from-raw rebuilds from the raw zone: it cannot be combined with --source live")
    if from_raw is not None and snapshot_dir:
        raise typer.BadParameter("--from-raw rebuilds from the raw zone: it cannot be combined with --snapshot-dir "
                                 "(no snapshot folder is read)")
    if snapshot_dir and source_kind == "live":
        raise typer.BadParameter("--snapshot-dir reads a snapshot folder: it cannot be combined with --source live")
    if as_of is not None:
        _check_day(as_of, "--as-of")
        from datetime import UTC, date, datetime

        if date.fromisoformat(as_of) > datetime.now(UTC).date():  # before Prefect starts and a failure alerts
            raise typer.BadParameter(f"--as-of {as_of} is in the future: a rebuild replays days already landed")
        clash = [opt for opt, used in (("--from-raw", from_raw), ("--snapshot-dir", snapshot_dir),
                                       ("--source live", source_kind == "live"), ("--force", force),
                                       ("--remove-partner", remove_partner)) if used]
        if clash:
            raise typer.BadParameter(f"--as-of replays the raw zone: it cannot be combined with {', '.join(clash)}")
    if from_raw is not None:
        _check_day(from_raw, "--from-raw")


def _run_settings(*, snapshot_dir: Path | None, warehouse: Path | None, publish: str | None, from_raw: str | None,
                  as_of: str | None, source_kind: SourceKind, run_id: str | None, only: list[str] | None,
                  force: bool, dask_address: str | None = None, fanout: bool = False,
                  remove_partners: tuple[str, ...] = ()):
    """The run's settings as the flow will resolve them (options over EUJP_* variables over defaults); an as-of
    rebuild writes its own warehouse (default asof/warehouse-DAY.duckdb in the live one's files folder) and reads the
    raw zone. A bad value (run id, EUJP_KEEP_RUNS, ...) is a typer.BadParameter."""
    from datetime import date

    from eujp.config import Settings

    try:
        settings = Settings.from_env(
            snapshot_dir=snapshot_dir, warehouse_path=warehouse, publish_uri=publish, run_id=run_id,
            source_mode="raw" if from_raw else source_kind.value,
            raw_date=date.fromisoformat(from_raw) if from_raw else None,
            only_sources=tuple(only) if only else None, force=force, dask_address=dask_address,
            fanout=fanout or None, remove_partners=remove_partners or None)
    except ValueError as exc:  # a run id that is not one safe path segment, EUJP_KEEP_RUNS out of range, ...
        raise typer.BadParameter(str(exc)) from None
    if as_of:
        from eujp.asof import default_warehouse

        day = date.fromisoformat(as_of)
        settings = settings.with_(source_mode="raw", raw_date=day,
                                  warehouse_path=warehouse or default_warehouse(settings.warehouse_path, day))
    return settings


def _fail_usage(message: str) -> None:
    """Say what to fix, on stderr, and exit with the usage/configuration code (no traceback)."""
    typer.echo(message, err=True)
    raise typer.Exit(code=USAGE_EXIT_CODE)


def _configured_api_url() -> str | None:
    """PREFECT_API_URL from the environment or, when the active profile sets one, from Prefect's settings
    (importing Prefect only then)."""
    from eujp.prefect_server import profile_sets_api_url

    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    if profile_sets_api_url():
        from flows.api import api_url

        return api_url()
    return None


def _preflight_or_exit(settings, *, as_of: str | None) -> None:
    """The preflight (eujp.preflight) of the run, before the flow starts (beside the temporary server's start);
    a failure exits with code 2. An as-of rebuild only reads the publish target. When the S3 credentials are in
    a Prefect Secret block and Prefect is not up yet, the publish target is checked in the flow (its own
    preflight) instead.

    The daily flow's own preflight (flows.daily.check_settings, before anything is extracted or locked) checks
    the expectation suites: here they would add ~1 s of imports and SQL translation before the flow on every
    run (thirty-sixth session: then they delayed the temporary server's launch; now the checks run beside its
    start, which they would outlast), for files that ship with the package. An as-of rebuild, which has no preflight of its own,
    checks them here."""
    from eujp import prefect_server, progress
    from eujp.preflight import PreflightFailed, needs_prefect_for_credentials, preflight

    publish_later = needs_prefect_for_credentials() and prefect_server.needed()
    skip = ("publish",) if publish_later else ()
    try:
        with progress.step("checking the configuration"):
            preflight(settings, prefect_api_url=_configured_api_url(), skip=skip if as_of else (*skip, "suites"),
                      write=not as_of)
    except PreflightFailed as exc:
        _fail_usage(str(exc))
    if as_of:
        _rebuildable_or_exit(settings, skip=publish_later)
    elif settings.source_mode == "raw" and not publish_later:
        _landed_or_exit(settings)


def _rebuildable_or_exit(settings, *, skip: bool) -> None:
    """`--as-of DAY`: exit 2 when the rebuild would be refused once under way: its --warehouse is a file it
    must not write over (eujp.asof.not_a_rebuild: the live warehouse named by mistake), or no selected source
    landed anything on or before DAY (a day before the first landing, or pruned). `skip`: the publish target
    is checked in the flow (the credentials are in a Prefect Secret block), and so is the second."""
    from eujp.asof import landed_by, not_a_rebuild
    from eujp.sources import selected_sources
    from eujp.storage import open_store

    problem = not_a_rebuild(settings.warehouse_path)
    if problem:
        _fail_usage(problem)
    if skip:
        return
    store = open_store(settings.publish_uri)
    names = [s.name for s in selected_sources(settings.only_sources)]
    try:
        landed = landed_by(store, names, settings.raw_date)
    except Exception:  # noqa: BLE001 - an unreadable store: the publish check named it, or the run will
        return
    if not landed:
        _fail_usage(f"--as-of {settings.raw_date}: nothing was landed on or before that day under {store.uri}/raw/ "
                    f"for {', '.join(names)}: no state of that day to rebuild; nothing was written")


def _landed_or_exit(settings) -> None:
    """`--from-raw DAY`: exit 2 when no selected source landed anything on DAY. The run replays the sources
    landed on DAY (the others are unchanged), so it would replay nothing: a day mistyped, or pruned (an as-of
    rebuild refuses a day before any landing in `_rebuildable_or_exit`: it replays the days up to it)."""
    from eujp.sources import selected_sources
    from eujp.storage import open_store

    store = open_store(settings.publish_uri)
    day = settings.raw_date.isoformat()
    names = [s.name for s in selected_sources(settings.only_sources)]
    try:
        landed = any(k.endswith(".meta.json") for name in names for k in store.list_keys(f"raw/{name}/{day}"))
    except Exception:  # noqa: BLE001 - an unreadable store: the publish check named it, or the run will
        return
    if not landed:
        _fail_usage(f"--from-raw {day}: nothing was landed on that day under {store.uri}/raw/ for "
                    f"{', '.join(names)}; nothing was replayed or published")


class _Flows:
    """The flows `eujp run` calls, imported (seconds: Prefect, polars, DuckDB) while Prefect starts, and
    whether they run against the temporary server `eujp run` started (`own_server`)."""

    def __init__(self, *, own_server: bool = False) -> None:
        from flows.backfill import as_of_flow
        from flows.daily import daily_flow

        self.as_of_flow, self.daily_flow, self.own_server = as_of_flow, daily_flow, own_server

    def heartbeats(self):
        """The settings the flow runs under: without flow-run heartbeats on `eujp run`'s own temporary server.
        A heartbeat tells a long-lived server that the run's process is alive (so that a crashed run can be
        marked); a temporary server stops with the run and cannot tell anyone, and Prefect joins the heartbeat
        thread at the run's end, which sleeps in 1-s steps (~0.5 s a run: benchmarks/RESULTS.md). Against a
        configured server (PREFECT_API_URL, a deployment) the heartbeats stay."""
        from contextlib import nullcontext

        from flows.domains import without_heartbeats

        return without_heartbeats() if self.own_server else nullcontext()


def _start_prefect_and_import(server, *, announce: bool) -> _Flows:
    """Point Prefect at `server`, the temporary Prefect server `eujp run` launched when PREFECT_API_URL is not
    set (eujp.prefect_server: stopped at exit, after Prefect's own flushes), or None, and import the pipeline
    while it starts; wait until the server answers. A server that does not come up ends the command (exit 1)
    with its reason. (--only's names were checked before.)"""
    from contextlib import nullcontext

    from eujp import progress

    if server is not None:
        server.use(announce=announce)
    with progress.step(f"starting Prefect (temporary server on {server.api_url})") if server else nullcontext():
        with progress.step("importing the pipeline (Prefect, polars, DuckDB)"):
            loaded = _Flows(own_server=server is not None)
        progress.adopt_log_handlers()  # Prefect's console handler, created by the import
        if server is not None:
            if not server.answers():  # still starting (~10 s on a fresh database): the validator's import
                # (seconds, needed by every run that loads data) while this process would only wait
                from flows.domains import import_validator

                import_validator()
            try:
                server.wait_ready()
            except RuntimeError as exc:
                typer.echo(str(exc), err=True)
                raise typer.Exit(code=1) from None
    return loaded


def _unknown_sources(names: list[str]) -> str | None:
    """Why one of `names` (--only) is not a registered source, or None."""
    from eujp.sources import get_source

    for name in names:
        try:
            get_source(name)
        except KeyError as exc:
            return exc.args[0]
    return None


def _finish_run(state) -> None:
    """Print the run's summary (or why it has none) and exit: 0 completed, 2 a configuration error found by
    the flow's own preflight, 1 failed."""
    from eujp.errors import INTERRUPTED, is_interrupt
    from eujp.preflight import PreflightFailed
    from flows.results import state_summary

    summary = state_summary(state)
    if isinstance(summary, PreflightFailed):
        _fail_usage(str(summary))
    if isinstance(summary, dict):
        _print_summary(summary)
    elif is_interrupt(summary):  # Ctrl-C while DuckDB worked: it reports the interrupt as its error
        typer.echo("run interrupted (Ctrl-C); the warehouse keeps its last good state (this run's, if it was "
                   "interrupted after its audit promoted it: the next run publishes it): run again", err=True)
        raise typer.Exit(code=INTERRUPTED_EXIT_CODE)
    else:  # the flow crashed before it could summarise (lock held, unreadable warehouse, ...)
        typer.echo(f"run failed: {summary}", err=True)
    if not state.is_completed():
        if isinstance(summary, dict) and any(INTERRUPTED in str(e) for e in summary.get("errors") or []):
            raise typer.Exit(code=INTERRUPTED_EXIT_CODE)  # a step a Ctrl-C stopped (its summary says which)
        raise typer.Exit(code=1)


INTERRUPTED_EXIT_CODE = 130  # 128 + SIGINT, as a shell reports a process a Ctrl-C ended


def _check_day(value: str, option: str) -> None:
    """typer.BadParameter unless `value` is a day written YYYY-MM-DD (Python's fromisoformat also reads
    20261207 and 2026-W49-1, which the option does not promise)."""
    import re
    from datetime import date

    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError(value)
        date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{option} wants a day as YYYY-MM-DD, got {value!r}") from None


@app.command()
def check(
    snapshot_dir: Annotated[Path | None, typer.Option(help="Snapshot folder the run would read (env "
                                                     "EUJP_SNAPSHOT_DIR; default the bundled data/snapshot).")] = None,
    warehouse: Annotated[Path | None, typer.Option(help="Warehouse file (env EUJP_WAREHOUSE; default "
                                                   "var/warehouse.duckdb).")] = None,
    publish: Annotated[str | None, typer.Option(help="Publish target: a folder or s3://bucket/prefix (env "
                                                "EUJP_PUBLISH_URI; default var/objectstore).")] = None,
    source_kind: Annotated[SourceKind, typer.Option("--source", help="Where the run would read sources (the "
                                                    "snapshot folder is only checked for snapshot).")]
    = SourceKind.snapshot,
    only: Annotated[list[str] | None, typer.Option("--only", help="Check for a run of only these sources "
                                                   "(repeatable), as `eujp run --only` would.")] = None,
) -> None:
    """Check what a run needs, without running it: the publish target is reachable and writable, the
    warehouse folder is writable, the Prefect API answers (when PREFECT_API_URL is set), the snapshot folder
    exists, the settings (live: each selected source's URL and request settings), the lake catalog. One line
    per check, with the setting to fix; exit 0 when every check passed, 2 otherwise. Changes nothing (the S3
    write probe is deleted at once)."""
    from eujp.preflight import run_checks

    unknown = _unknown_sources(only or [])
    if unknown:
        raise typer.BadParameter(unknown)
    settings = _run_settings(snapshot_dir=snapshot_dir, warehouse=warehouse, publish=publish, from_raw=None,
                             as_of=None, source_kind=source_kind, run_id=None, only=only, force=False)
    checks = run_checks(settings, prefect_api_url=_configured_api_url())
    for c in checks:
        typer.echo(c.line())
    if not all(c.ok for c in checks):
        raise typer.Exit(code=USAGE_EXIT_CODE)


@app.command()
def serve(
    cron: Annotated[str | None, typer.Option(help="Cron schedule (env EUJP_SCHEDULE_CRON; default '0 6 * * *').")]
    = None,
    timezone: Annotated[str | None, typer.Option(help="Time zone of the schedule (env EUJP_SCHEDULE_TIMEZONE; "
                                                 "default UTC).")] = None,
    name: Annotated[str, typer.Option(help="Deployment name (the deployment is eujp-daily/NAME; the worker-based "
                                      "deployment of infra/prefect.yaml is eujp-daily/worker).")] = SERVED_DEPLOYMENT,
    snapshot_dir: Annotated[Path | None, typer.Option(help="Snapshot folder the scheduled runs read.")] = None,
    warehouse: Annotated[Path | None, typer.Option(help="Warehouse file of the scheduled runs.")] = None,
    publish: Annotated[str | None, typer.Option(help="Publish target of the scheduled runs.")] = None,
    source_kind: Annotated[SourceKind, typer.Option("--source", help="Where scheduled runs read sources.")]
    = SourceKind.snapshot,
    paused: Annotated[bool, typer.Option("--paused", help="Register the schedule paused (runs only when "
                                         "triggered).")] = False,
    lake_maintenance: Annotated[bool, typer.Option(help="Also serve eujp-lake-maintain/NAME, the lake's retention "
                                                   "and compaction, on its own schedule (never with "
                                                   "EUJP_LAKE_CATALOG=off: there is no lake).")] = True,
    maintenance_cron: Annotated[str | None, typer.Option(help="Cron schedule of the lake's maintenance (env "
                                                         "EUJP_LAKE_MAINTENANCE_CRON; default '30 4 * * 0').")]
    = None,
) -> None:
    """Register the daily flow as a scheduled Prefect deployment and serve its runs from this process.

    Needs a Prefect server (PREFECT_API_URL, e.g. `prefect server start`). Runs never overlap: the deployment
    admits one run at a time and queues the others. Stop with Ctrl-C (the schedule is then paused)."""
    from flows.api import api_url
    from flows.serve import maintenance_left_out, serve_daily

    if not api_url():
        typer.echo("eujp serve needs a Prefect server: start one (`prefect server start`) and set "
                   "PREFECT_API_URL (e.g. http://127.0.0.1:4200/api)", err=True)
        raise typer.Exit(code=2)
    left_out = maintenance_left_out(name) if lake_maintenance else None
    if left_out:  # the lake is off: a maintenance would only fail every week
        typer.echo(left_out)
        lake_maintenance = False
    cron, timezone, maintenance_cron = _check_serve_settings(name, cron, timezone, lake_maintenance, maintenance_cron)
    if snapshot_dir and source_kind == "live":
        raise typer.BadParameter("--snapshot-dir reads a snapshot folder: it cannot be combined with --source live")
    parameters = {"snapshot_dir": str(snapshot_dir.resolve()) if snapshot_dir else None,
                  "warehouse": str(warehouse.resolve()) if warehouse else None,
                  "publish_uri": publish, "source_mode": source_kind.value}
    from eujp.preflight import check_prefect_api

    server = check_prefect_api(api_url())  # before registering anything (a connection error's traceback, exit 1)
    if not server.ok:
        typer.echo(f"eujp serve needs a Prefect server: {server.detail}; fix {server.setting} or start the server "
                   "(`prefect server start`)", err=True)
        raise typer.Exit(code=2)
    typer.echo(f"serving eujp-daily/{name}: cron {cron!r} ({timezone}), one run at a time")
    serve_daily(name=name, cron=cron, timezone=timezone, parameters=parameters, paused=paused,
                maintenance=lake_maintenance, maintenance_cron=maintenance_cron)


def _check_serve_settings(name: str, cron: str | None, timezone: str | None, maintenance: bool,
                          maintenance_cron: str | None) -> tuple[str, str, str | None]:
    """`eujp serve`'s deployment name and schedules, checked before anything is registered: (cron, time zone,
    maintenance cron) from the options, else the environment, else the defaults. A bad one is refused naming the
    option or variable it came from, and its value."""
    from prefect.schedules import Cron

    from flows import serve as served

    try:
        served.check_name(name)
    except ValueError as exc:
        raise typer.BadParameter(f"{name!r}: {exc}", param_hint="'--name'") from exc

    def origin(option: str | None, flag: str, env: str) -> str:
        return f"'{flag}'" if option else env if os.environ.get(env) else f"the default of '{flag}'"

    env_cron, env_tz = served.schedule_from_env()
    checks = [(cron or env_cron, origin(cron, "--cron", served.CRON_ENV))]
    if maintenance:
        checks.append((served.maintenance_cron(maintenance_cron),
                       origin(maintenance_cron, "--maintenance-cron", served.MAINTENANCE_CRON_ENV)))
    for value, where in checks:
        try:
            Cron(value)
        except ValueError as exc:
            raise typer.BadParameter(f"{value!r} is not a cron expression ({exc})", param_hint=where) from exc
    tz = timezone or env_tz
    try:
        served.daily_deployment(name=name, cron=cron or env_cron, timezone=tz)
    except ValueError as exc:  # the cron is good: the time zone, or a name Prefect refuses ('a/b', '')
        if _is_time_zone(tz):
            raise typer.BadParameter(f"{name!r}: {exc}", param_hint="'--name'") from exc
        raise typer.BadParameter(f"{tz!r} is not a time zone (give an IANA name such as Europe/Brussels)",
                                 param_hint=origin(timezone, "--timezone", served.TIMEZONE_ENV)) from exc
    return cron or env_cron, tz, maintenance_cron


def _is_time_zone(name: str | None) -> bool:
    """Whether `name` is an IANA time zone the system knows (zoneinfo)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name or "")
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@app.command()
def status(
    warehouse: Annotated[Path | None, typer.Option(help="Warehouse file (default var/warehouse.duckdb).")] = None,
    publish: Annotated[str | None, typer.Option(help="Publish target whose latest.json to read.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="How many runs to list.")] = 10,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 3 when a source is stale or was never "
                                         "extracted (for monitoring).")] = False,
) -> None:
    """Print the last runs (Prefect API and warehouse), their state, the last run per source (rows rejected,
    errors), what is published and source freshness."""
    import duckdb
    from rich.console import Console

    from eujp.config import Settings
    from eujp.freshness import warehouse_freshness
    from eujp.publish import read_latest_check, read_latest_pointer
    from eujp.status import render, run_sources, warehouse_runs
    from eujp.storage import open_store

    try:
        settings = Settings.from_env(warehouse_path=warehouse, publish_uri=publish)
    except ValueError as exc:
        _fail_usage(str(exc))
    if settings.warehouse_path.is_dir():
        _fail_usage(f"--warehouse {settings.warehouse_path} is a folder: give the warehouse file (.duckdb)")
    console = Console(width=None if sys.stdout.isatty() else 200)
    flow_runs, note = _prefect_runs(limit)
    check = None
    try:
        store = open_store(settings.publish_uri)
        pointer = read_latest_pointer(store)
        check = read_latest_check(store)
    except Exception as exc:  # noqa: BLE001 - the store may be unreachable; say so and go on
        pointer, note = None, (note or "") + f"\npublish store {settings.publish_uri} not readable: {exc}"
    try:
        freshness = warehouse_freshness(settings.warehouse_path)
        runs = warehouse_runs(settings.warehouse_path, limit)
    except duckdb.Error as exc:  # not a DuckDB file, or not a warehouse
        _fail_usage(f"cannot read the warehouse {settings.warehouse_path}: {exc}")
    render(console, warehouse_path=settings.warehouse_path, flow_runs=flow_runs, flow_runs_note=note,
           runs=runs, freshness=freshness, pointer=pointer, publish_uri=settings.publish_uri, check=check,
           last_run=run_sources(settings.warehouse_path, runs[0].run_id) if runs else None)
    if strict and any(f.warning for f in freshness):
        raise typer.Exit(code=3)


def _prefect_runs(limit: int) -> tuple[list[dict] | None, str | None]:
    """Recent flow runs from the Prefect API, or why there are none to show."""
    from flows.api import api_url, recent_flow_runs

    url = api_url()
    if not url:
        return None, "Prefect flow runs: PREFECT_API_URL is not set (showing what the warehouse recorded)"
    try:
        runs, scheduled = recent_flow_runs(limit)
    except Exception as exc:  # noqa: BLE001 - a down API must not hide the warehouse's own record
        return None, f"Prefect flow runs: API at {url} not reachable ({type(exc).__name__})"
    note = None
    if scheduled:
        when = scheduled["expected_start_time"]
        note = f"next scheduled run: {scheduled['flow']}/{scheduled['deployment'] or '-'} at {when:%Y-%m-%d %H:%M %Z}"
    return runs, note


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="SQL to run (read-only).")],
    warehouse: Annotated[str | None, typer.Option(help="Warehouse to query: a local file (default "
                                                  "var/warehouse.duckdb, env EUJP_WAREHOUSE), a published file "
                                                  "(s3://bucket/prefix/runs/RUN/warehouse.duckdb, https://...), "
                                                  "or a publish URI (s3://bucket/prefix, a folder) meaning its "
                                                  "latest/warehouse.duckdb.")] = None,
    published: Annotated[bool, typer.Option("--published", help="Query the latest published warehouse of the "
                                            "publish URI (env EUJP_PUBLISH_URI, default var/objectstore); S3 "
                                            "is read in place through httpfs with the AWS_* variables. A fact "
                                            "table published in the lake only (EUJP_SINGLE_FILE) is read from "
                                            "the published lake.ducklake.")] = False,
    fmt: Annotated[QueryFormat, typer.Option("--format", help="How to write the result: a table for reading "
                                             "(at most 200 rows on stdout), csv (with a header), json (an "
                                             "array of objects) or parquet (needs --output).")]
    = QueryFormat.table,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the result to this file instead "
                                                "of stdout (replaced if it exists).")] = None,
) -> None:
    """Run a read-only SQL query against the local or the published warehouse and print or save the result."""
    import duckdb

    if published and warehouse:
        raise typer.BadParameter("give --published or --warehouse, not both")
    if fmt == QueryFormat.parquet and output is None:
        raise typer.BadParameter("--format parquet writes a file: give --output FILE")
    _check_read_only(sql)
    conn = _open_for_query(warehouse, published)
    with conn:
        try:
            rel = conn.sql(sql)
            if rel is not None:
                _write_result(rel, fmt, output)
        except duckdb.Error as exc:
            typer.echo(f"query failed: {exc}", err=True)
            raise typer.Exit(code=USAGE_EXIT_CODE) from exc
        except OSError as exc:  # --output in a folder that does not exist, or a folder
            _fail_usage(f"cannot write {output}: {exc.strerror or exc}")


QUERY_STATEMENTS = ("SELECT", "EXPLAIN")  # DESCRIBE, SHOW, SUMMARIZE, PRAGMA show_tables and FROM parse as SELECT


def _check_read_only(sql: str) -> None:
    """Exit 2 unless `sql` is one or more queries: the warehouse is attached read-only, but an ATTACH of the
    same file READ_ONLY false, a COPY over latest.json or a SET would still write or change things."""
    import duckdb

    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        _fail_usage(f"query failed: {exc}")
    if not statements:
        _fail_usage("query failed: no SQL statement given")
    refused = sorted({s.type.name for s in statements if s.type.name not in QUERY_STATEMENTS})
    if refused:
        _fail_usage(f"query failed: only queries are run (SELECT, DESCRIBE, SHOW, EXPLAIN ...), not "
                    f"{', '.join(refused)}")


def _open_for_query(warehouse: str | None, published: bool):
    """A read-only connection to the warehouse `eujp query` reads (see its --warehouse and --published); exit
    2 when there is none."""
    import duckdb

    from eujp.config import Settings
    from eujp.errors import EujpError

    try:
        settings = Settings.from_env()
    except ValueError as exc:
        _fail_usage(str(exc))
    location = settings.publish_uri if published else (warehouse or str(settings.warehouse_path))
    run_file = Path(location).name == "warehouse.duckdb" and (Path(location).parent / "manifest.json").is_file()
    if published or location.startswith(("s3://", "http://", "https://")) or Path(location).is_dir() or run_file:
        # a published run's file (its manifest beside it) reads its lake-only tables too
        from eujp.bi import open_warehouse

        try:
            return open_warehouse(location)
        except EujpError as exc:
            _fail_usage(str(exc))
    path = Path(location)
    if not path.exists():
        _fail_usage(f"no warehouse at {path}: run `eujp run` first")
    from eujp.sql import in_utc

    try:
        return in_utc(duckdb.connect(str(path), read_only=True))  # timestamps shown and written in UTC
    except duckdb.Error as exc:  # not a DuckDB file
        _fail_usage(f"cannot open the warehouse {path}: {exc}")


STDOUT_TABLE_ROWS = 200


def _write_result(rel, fmt: QueryFormat, output: Path | None) -> None:
    """Write a query's result in `fmt` to `output` (whole) or stdout (a table shows its first 200 rows and says
    so when there are more)."""
    if fmt == QueryFormat.table:
        if output is None:
            rows = rel.limit(STDOUT_TABLE_ROWS + 1).fetchall()
            more = len(rows) > STDOUT_TABLE_ROWS
            sys.stdout.write(_table_text(rel.columns, rel.types, rows[:STDOUT_TABLE_ROWS], count=not more))
            if more:
                sys.stdout.write(f"more than {STDOUT_TABLE_ROWS} rows: the first {STDOUT_TABLE_ROWS} are shown "
                                 "(-o FILE writes them all, --format csv prints them all)\n")
            return
        output.write_text(_table_text(rel.columns, rel.types, rel.fetchall()), encoding="utf-8")
        return
    frame = rel.pl()
    if fmt == QueryFormat.parquet:
        frame.write_parquet(output)
    elif fmt == QueryFormat.csv:
        if output is None:
            sys.stdout.write(frame.write_csv())
        else:
            frame.write_csv(output)
    else:
        text = frame.write_json()  # an array of objects, one per row
        if output is None:
            sys.stdout.write(text + "\n")
        else:
            output.write_text(text + "\n", encoding="utf-8")


_NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                  "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL")


def _table_text(columns: list[str], types: list, rows: list[tuple], count: bool = True) -> str:
    """`rows` as a boxed text table, every row and every character of every value (DuckDB's own `show` stops
    at ~10,000 rows and cuts wide values): numbers right-aligned, NULL for a missing value, then (`count`) the
    number of rows."""
    cells = [["NULL" if v is None else str(v) for v in row] for row in rows]
    right = [str(t).split("(")[0] in _NUMERIC_TYPES for t in types]
    widths = [max([len(name), len(str(t)), *(len(r[i]) for r in cells)]) for i, (name, t) in
              enumerate(zip(columns, types, strict=True))]

    def line(values: list[str]) -> str:
        return "│ " + " │ ".join(v.rjust(w) if r else v.ljust(w)
                                  for v, w, r in zip(values, widths, right, strict=True)) + " │\n"

    def rule(left: str, mid: str, end: str) -> str:
        return left + mid.join("─" * (w + 2) for w in widths) + end + "\n"

    head = [name.ljust(w) for name, w in zip(columns, widths, strict=True)]
    kinds = [str(t).lower().ljust(w) for t, w in zip(types, widths, strict=True)]
    return "".join([rule("┌", "┬", "┐"), "│ " + " │ ".join(head) + " │\n", "│ " + " │ ".join(kinds) + " │\n",
                    rule("├", "┼", "┤"), *(line(r) for r in cells), rule("└", "┴", "┘"),
                    f"{len(rows):,} row{'s' if len(rows) != 1 else ''}\n" if count else ""])


@app.command("prune-raw")
def prune_raw_zone(
    publish: Annotated[str | None, typer.Option(help="Publish target whose raw zone to prune: a folder or "
                                                "s3://bucket/prefix (env EUJP_PUBLISH_URI; default "
                                                "var/objectstore).")] = None,
    days: Annotated[int | None, typer.Option("--days", min=1, help="Retention in days (env "
                                             "EUJP_RAW_RETENTION_DAYS): landings of today (UTC) and the DAYS days "
                                             "before are kept, and so is everything a published run or an "
                                             "as-of of a kept day needs.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be deleted; delete nothing.")]
    = False,
) -> None:
    """Delete the raw landings that no retained day needs (eujp/retention.py, docs/reliability.md): a day's
    landing is kept when the day is in the window or is the day of a run still published, and an older one
    unless the same payloads were landed again (in the same landings) before the next kept day. One line per
    landing deleted, then a summary. Exit 2 when no retention is configured, 1 when the store cannot be read."""
    from eujp.config import Settings
    from eujp.errors import EujpError
    from eujp.retention import RETENTION_ENV, prune_raw
    from eujp.storage import open_store

    try:
        settings = Settings.from_env(publish_uri=publish, raw_retention_days=days)
    except ValueError as exc:
        _fail_usage(str(exc))
    if settings.raw_retention_days is None:
        _fail_usage(f"no raw retention is configured: set {RETENTION_ENV} or give --days (nothing was pruned)")
    try:
        store = open_store(settings.publish_uri)
    except ValueError as exc:
        _fail_usage(str(exc))
    if "://" not in settings.publish_uri and not Path(settings.publish_uri).is_dir():  # a mistyped folder
        _fail_usage(f"no publish folder at {settings.publish_uri} (nothing was pruned)")
    try:
        plan = prune_raw(store, settings.raw_retention_days, dry_run=dry_run)
    except Exception as exc:  # noqa: BLE001 - an unreadable store: one line, no traceback
        typer.echo(str(exc) if isinstance(exc, EujpError) else
                   f"pruning {store.uri}/raw/ failed: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(code=1) from None
    for doomed in plan.doomed:
        typer.echo(f"{'would delete' if dry_run else 'deleted'} {store.uri.rstrip('/')}/{doomed.folder.prefix} "
                   f"({len(doomed.folder.keys)} object(s)): {doomed.reason()}")
    typer.echo(plan.summary() + (" (dry run: nothing was deleted)" if dry_run else ""))


@app.command("lake-maintain")
def lake_maintain(
    warehouse: Annotated[Path | None, typer.Option(help="Warehouse file whose lake catalog (beside it) to maintain "
                                                   "(env EUJP_WAREHOUSE).")] = None,
    publish: Annotated[str | None, typer.Option(help="Publish target of the lake (env EUJP_PUBLISH_URI).")] = None,
    keep_days: Annotated[float | None, typer.Option(min=0, help="Expire snapshots older than this many days (env "
                                                    "EUJP_LAKE_KEEP_DAYS; default 30). The snapshot latest.json "
                                                    "names and those of retained runs are always kept.")] = None,
    grace_hours: Annotated[float | None, typer.Option(min=0, help="Delete unreferenced files only once they have "
                                                      "been so this long (env EUJP_LAKE_GRACE_HOURS; default "
                                                      "24): readers of the previous catalog may still scan "
                                                      "them.")] = None,
) -> None:
    """The lake's retention and compaction (docs/lakehouse.md): expire old snapshots, merge small files, delete
    files no snapshot needs, publish the catalog. Holds the run lock. Exit 1 when it fails (nothing is deleted
    that a kept snapshot needs) or the lake is off (EUJP_LAKE_CATALOG=off), 2 on a bad setting; 0, saying so,
    when no run has published a lake yet. A --keep-days (or --grace-hours) beyond any date, such as inf,
    keeps every snapshot (file)."""
    from eujp.config import Settings
    from eujp.errors import EujpError
    from eujp.lake import NothingToMaintain, maintain_published

    try:
        settings = Settings.from_env(warehouse_path=warehouse, publish_uri=publish)
        result = maintain_published(settings, keep_days=keep_days, grace_hours=grace_hours)
    except ValueError as exc:
        _fail_usage(str(exc))
    except NothingToMaintain as exc:
        typer.echo(f"lake maintenance: {exc}", err=exc.off)
        if exc.off:  # asked for explicitly with the lake off: a setting to look at
            raise typer.Exit(code=1) from None
        return
    except EujpError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=1) from None
    typer.echo(f"lake maintenance: {result.summary()}; newest snapshot {result.snapshot_id}"
               + (f"; catalog published as {result.catalog_published}" if result.catalog_published else ""))


def entry() -> None:
    """The `eujp` command and `python -m flows.cli`: the command line in a process of its own (tests call `app`).

    Such a process ends with its command, so at its exit its objects are frozen out of the garbage collector
    (`gc.freeze`, the first atexit handler to run): the interpreter's teardown then skips collecting every
    object of Prefect, Great Expectations, pandas and polars once more (1.3 s of a run's exit on the 2-core
    worker, 0.1 s frozen; benchmarks/RESULTS.md). Nothing a command wrote waits on that collection (files and
    connections are closed by then), and the other atexit handlers, Prefect's log and event workers among them,
    still run after it. `eujp run` also freezes its imports once done (`run`)."""
    global _OWN_PROCESS
    _OWN_PROCESS = True
    atexit.register(gc.freeze)
    # the source registry reads EUJP_SOURCE_MODULES as it is imported, by whichever command imports it first
    from eujp.errors import SourceModulesError

    try:
        app()
    except SourceModulesError as exc:  # raised from whichever command imported the registry first
        typer.echo(str(exc), err=True)
        sys.exit(2)


if __name__ == "__main__":
    entry()
