"""`eujp status`: the last runs, their state, what is published and how fresh each source is.

Three places know about runs, and each answers a different question:
- the Prefect API (when PREFECT_API_URL is set): every flow run, including those that never reached the
  warehouse (lock held, crash), with its state;
- the warehouse's `etl_runs`: what each run did to each source (rows in / loaded / rejected), and for the
  last run, each source's rows and message (its error, or the verdict on its rejected rows: eujp.rejections);
- the publish store's `latest.json`: which run readers see (and `latest-check.json`: a later run that found
  nothing new and left it current).
Freshness comes from `etl_source_state` (eujp.freshness).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from eujp.freshness import Freshness
from eujp.rows import REJECTED, ROWS_IN, VALID, failed_source_sql, fails_run, format_pct


@dataclass(frozen=True)
class WarehouseRun:
    run_id: str
    started_at: datetime
    ended_at: datetime
    sources: int
    succeeded: int
    unchanged: int
    failed: int
    rows_in: int
    rows_loaded: int
    rows_rejected: int

    @property
    def status(self) -> str:
        return "failed" if self.failed else "success"


def warehouse_runs(warehouse_path: Path, limit: int = 10) -> list[WarehouseRun]:
    """The newest runs recorded in etl_runs, newest first (read-only)."""
    if not Path(warehouse_path).exists():
        return []
    import duckdb

    with duckdb.connect(str(warehouse_path), read_only=True) as conn:
        rows = conn.execute(
            f"""SELECT run_id, min(started_at), max(ended_at), count(*),
                      count(*) FILTER (WHERE status = 'success' AND NOT {failed_source_sql()}),
                      count(*) FILTER (WHERE status = 'unchanged'),
                      -- a source over the rejected-rows threshold loaded, but failed its run
                      count(*) FILTER (WHERE {failed_source_sql()}),
                      sum(rows_in), sum(rows_loaded), sum(rows_rejected)
               FROM etl_runs GROUP BY run_id ORDER BY min(started_at) DESC, run_id DESC LIMIT ?""",
            [limit],
        ).fetchall()
    return [WarehouseRun(*r[:7], *(int(x or 0) for x in r[7:])) for r in rows]


@dataclass(frozen=True)
class SourceRun:
    """What one run did to one source (its etl_runs row)."""

    source: str
    status: str  # success | failed | unchanged
    rows_in: int
    rows_loaded: int
    rows_rejected: int
    message: str | None

    @property
    def rejected_pct(self) -> float | None:
        return 100.0 * self.rows_rejected / self.rows_in if self.rows_in else None

    def warning(self, run_id: str) -> str | None:
        """Rows rejected by a source that loaded: the verdict the run recorded (eujp.rejections), or, for runs
        from before verdicts were recorded, the count and where the rows are."""
        if self.status != "success" or not self.rows_rejected:
            return None
        return self.message or (f"{self.source}: {self.rows_rejected:,} of {self.rows_in:,} rows in rejected "
                                f"({format_pct(self.rejected_pct or 0)}); see etl_rejected_rows "
                                f"(run_id '{run_id}', source '{self.source}') for the rows and why")


def run_sources(warehouse_path: Path, run_id: str) -> list[SourceRun]:
    """Every source of one run as etl_runs recorded it, by source name (read-only)."""
    if not Path(warehouse_path).exists():
        return []
    import duckdb

    with duckdb.connect(str(warehouse_path), read_only=True) as conn:
        rows = conn.execute("SELECT source, status, rows_in, rows_loaded, rows_rejected, message FROM etl_runs "
                            "WHERE run_id = ? ORDER BY source", [run_id]).fetchall()
    return [SourceRun(s, st, int(i or 0), int(v or 0), int(r or 0), m) for s, st, i, v, r, m in rows]


def render(console, *, warehouse_path: Path, flow_runs: list[dict] | None, flow_runs_note: str | None,
           runs: list[WarehouseRun], freshness: list[Freshness], pointer: dict | None, publish_uri: str,
           check: dict | None = None, last_run: list[SourceRun] | None = None) -> None:
    """Print the status report (rich tables) on `console`."""
    from rich.table import Table

    if flow_runs is not None:
        t = Table(title="Prefect flow runs (newest first)", title_justify="left")
        for col in ("flow", "flow run", "state", "started (UTC)", "duration", "deployment"):
            t.add_column(col)
        for r in flow_runs:
            state = r["state"]
            style = {"COMPLETED": "green", "FAILED": "red", "CRASHED": "red", "RUNNING": "yellow"}.get(
                r.get("state_type", ""), "")
            t.add_row(r["flow"], r["name"], f"[{style}]{state}[/{style}]" if style else state,
                      _ts(r.get("start_time")), _duration(r.get("total_run_time")), r.get("deployment") or "-")
        console.print(t)
    if flow_runs_note:
        console.print(flow_runs_note)

    t = Table(title=f"Runs recorded in {warehouse_path}", title_justify="left")
    counts = (ROWS_IN, VALID, REJECTED)  # eujp.rows: the words for row counts
    for col in ("run id", "started (UTC)", "ended (UTC)", "status", "sources ok/unchanged/failed", *counts):
        t.add_column(col, justify="right" if col in counts else "left")
    for r in runs:
        status = "[red]failed[/red]" if r.failed else "[green]success[/green]"
        t.add_row(r.run_id, _ts(r.started_at), _ts(r.ended_at), status, f"{r.succeeded}/{r.unchanged}/{r.failed}",
                  str(r.rows_in), str(r.rows_loaded), str(r.rows_rejected))
    if not runs:
        t.caption = "no warehouse yet" if not Path(warehouse_path).exists() else "no runs recorded"
    console.print(t)
    if runs and last_run:
        _render_last_run(console, runs[0].run_id, last_run)

    if pointer:
        console.print(f"published: latest = run {pointer.get('run_id')} at {pointer.get('published_at')} "
                      f"({publish_uri.rstrip('/')}/{pointer.get('prefix')})")
    else:
        console.print(f"published: nothing under {publish_uri}")
    if pointer and check and check.get("current_run_id") == pointer.get("run_id"):
        console.print(f"checked since: run {check.get('run_id')} at {check.get('checked_at')} found nothing new "
                      f"(every source unchanged); run {pointer.get('run_id')} is current")

    t = Table(title="Freshness (from etl_source_state)", title_justify="left")
    for col in ("source", "last successful extraction (UTC)", "age (days)", "cadence (days)", "newest period",
                "last attempt", "status"):
        t.add_column(col, justify="right" if col in ("age (days)", "cadence (days)") else "left")
    for f in freshness:
        status = {"ok": "[green]ok[/green]", "stale": "[yellow]STALE[/yellow]",
                  "never": "[yellow]NEVER[/yellow]"}[f.status]
        t.add_row(f.source, _ts(f.last_success_at), "-" if f.age_days is None else f"{f.age_days:.1f}",
                  str(f.cadence_days), f.newest_period or "-", f.last_status or "-", status)
    console.print(t)
    for f in freshness:
        if f.warning:
            console.print(f"[yellow]warning:[/yellow] {f.warning}")


def _render_last_run(console, run_id: str, sources: list[SourceRun]) -> None:
    """The newest run per source: its rows, the share rejected and its message (an error, why it was
    unchanged); a warning line below for every source that loaded but rejected rows (the verdict the run
    recorded: above its threshold, the run failed and the message says so)."""
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=f"Last run {run_id}, per source (etl_runs)", title_justify="left")
    counts = (ROWS_IN, VALID, REJECTED, f"{REJECTED} %")
    for col in ("source", "status", *counts, "message"):
        t.add_column(col, justify="right" if col in counts else "left")
    for s in sources:
        style = {"success": "green", "failed": "red"}.get(s.status)
        status = f"[{style}]{s.status}[/{style}]" if style else s.status
        pct = "-" if s.rejected_pct is None else format_pct(s.rejected_pct)
        message = ("see the error below" if fails_run(s.status, s.message) else "see the warning below") \
            if s.warning(run_id) else (s.message or "-")
        t.add_row(s.source, status, str(s.rows_in), str(s.rows_loaded), str(s.rows_rejected), pct, escape(message))
    console.print(t)
    for s in sources:
        warning = s.warning(run_id)
        if warning and fails_run(s.status, s.message):  # above the threshold: the source loaded, the run failed
            console.print(f"[red]error:[/red] {escape(warning)}", soft_wrap=True)
        elif warning:
            console.print(f"[yellow]warning:[/yellow] {escape(warning)}", soft_wrap=True)


def _ts(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    from datetime import UTC

    if value.tzinfo:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _duration(seconds) -> str:
    if seconds is None:
        return "-"
    seconds = float(seconds)
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
