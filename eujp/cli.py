"""`eujp`: the command line of the EU–Japan warehouse."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# With no PREFECT_API_URL, Prefect starts a temporary local server (~10-20 s); on a busy 2-core worker
# its default 20 s start-up timeout is too tight.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

class SourceKind(StrEnum):
    snapshot = "snapshot"
    live = "live"


app = typer.Typer(help="EU–Japan partnership warehouse: daily ETL, status and queries.", no_args_is_help=True,
                  add_completion=False)


def _print_summary(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 160)
    table = Table(title=f"run {summary['run_id']}: {summary['status'].upper()}", title_justify="left")
    numeric = ("rows in", "loaded", "rejected", "written")
    for col in ("source", "table", "status", *numeric, "validation", "source version"):
        table.add_column(col, justify="right" if col in numeric else "left", no_wrap=True)
    for s in summary["sources"]:
        v = s.get("validation") or {}
        verdict = "-" if not v else ("passed" if v.get("success") else "FAILED")
        if v and v.get("warnings"):
            verdict += f" ({len(v['warnings'])} warning(s))"
        table.add_row(s["source"], s["table"], s["status"], str(s["rows_in"]), str(s["rows_loaded"]),
                      str(s["rows_rejected"]), str(s.get("rows_written", "-")), verdict,
                      s.get("source_version") or "-")
    console.print(table)
    if summary.get("table_rows"):
        rows = ", ".join(f"{k} {v}" for k, v in summary["table_rows"].items())
        console.print(f"warehouse {summary['warehouse']}: {rows}")
    if summary.get("published_to"):
        console.print(f"published to {summary['published_to']}")
    for err in summary.get("errors", []):
        console.print(f"[red]error:[/red] {err}")


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
                                                 "(YYYY-MM-DD) in the raw zone, without reading sources.")] = None,
    source_kind: Annotated[SourceKind, typer.Option(
        "--source",
        help="Where to read sources: the snapshot folder, or the live services (base URLs from "
        "EUJP_EUROSTAT_URL, EUJP_COMEXT_URL, EUJP_OECD_URL, EUJP_SIPRI_URL, EUJP_EVENTS_URL; see "
        "docs/live-extraction.md).")] = SourceKind.snapshot,
    force: Annotated[bool, typer.Option("--force", help="Reprocess every source even when it is unchanged "
                                        "since its last load; live: full, unconditional extraction.")] = False,
    only: Annotated[list[str] | None, typer.Option("--only", help="Run only these sources (repeatable).")] = None,
    run_id: Annotated[str | None, typer.Option(help="Run id (default: time-based, unique).")] = None,
) -> None:
    """Run the daily flow once (extract, transform, validate, load, audit, publish) and print a summary."""
    from eujp.config import Settings
    from eujp.sources import SOURCES_BY_NAME

    for name in only or []:
        if name not in SOURCES_BY_NAME:
            raise typer.BadParameter(f"unknown source {name!r}; known: {', '.join(SOURCES_BY_NAME)}")
    if from_raw and source_kind == "live":
        raise typer.BadParameter("--from-raw rebuilds from the raw zone: it cannot be combined with --source live")
    if snapshot_dir and source_kind == "live":
        raise typer.BadParameter("--snapshot-dir reads a snapshot folder: it cannot be combined with --source live")
    settings = Settings.from_env(run_id=run_id)
    from flows.daily import daily_flow

    state = daily_flow(
        snapshot_dir=str(snapshot_dir) if snapshot_dir else None,
        warehouse=str(warehouse) if warehouse else None,
        publish_uri=publish,
        source_mode="raw" if from_raw else source_kind.value,
        raw_date=from_raw,
        run_id=settings.run_id,
        only_sources=only or None,
        force=force,
        return_state=True,
    )
    summary = state.result(raise_on_failure=False)
    if isinstance(summary, dict):
        _print_summary(summary)
    else:  # the flow crashed before it could summarise (lock held, unreadable warehouse, ...)
        typer.echo(f"run failed: {summary}", err=True)
    if not state.is_completed():
        raise typer.Exit(code=1)


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
                                            "is read in place through httpfs with the AWS_* variables.")] = False,
) -> None:
    """Run a read-only SQL query against the local or the published warehouse and print the result."""
    import duckdb

    from eujp.config import Settings
    from eujp.errors import EujpError

    if published and warehouse:
        raise typer.BadParameter("give --published or --warehouse, not both")
    settings = Settings.from_env()
    location = settings.publish_uri if published else (warehouse or str(settings.warehouse_path))
    if published or location.startswith(("s3://", "http://", "https://")) or Path(location).is_dir():
        from eujp.bi import open_warehouse

        try:
            conn = open_warehouse(location)
        except EujpError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(code=2) from None
    else:
        path = Path(location)
        if not path.exists():
            typer.echo(f"no warehouse at {path}: run `eujp run` first", err=True)
            raise typer.Exit(code=2)
        conn = duckdb.connect(str(path), read_only=True)
    with conn:
        try:
            rel = conn.sql(sql)
        except duckdb.Error as exc:
            typer.echo(f"query failed: {exc}", err=True)
            raise typer.Exit(code=2) from exc
        if rel is not None:
            rel.show(max_rows=200, max_width=sys.maxsize if not sys.stdout.isatty() else None)


if __name__ == "__main__":
    app()
