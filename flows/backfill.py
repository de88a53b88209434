"""The as-of flow: rebuild the warehouse of a past day from the raw landing zone (`eujp run --as-of`).

What it rebuilds and why it replays every landing up to the day: see eujp/asof.py. The rebuild writes a
warehouse of its own (default `{warehouse folder}/asof/warehouse-YYYY-MM-DD.duckdb`, or `--warehouse`),
built in a private folder beside it and renamed over it at the end; it never publishes (the `latest` of
the publish store always stays the newest daily run) and its Data Docs stay local.
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path

from prefect import flow, get_run_logger

from eujp.asof import (
    Replay,
    default_warehouse,
    end_of_day,
    mark_rebuild,
    not_a_rebuild,
    replay_plan,
    stamp_extraction_times,
)
from eujp.config import Settings
from eujp.errors import AuditFailed, EujpError
from eujp.lock import warehouse_lock
from eujp.pipeline import SourceBatch, landing_errors, load_countries, release_chunks
from eujp.rejections import judge_rejections, rejection_errors, rejection_warnings
from eujp.run import RunSummary, data_docs
from eujp.sources import DOMAINS, get_source, selected_sources
from eujp.storage import open_store
from eujp.tables import table_counts
from eujp.warehouse import connect, promote
from flows.domains import run_domain
from flows.hooks import begin_run, notify_failure
from flows.results import flow_result, report_run
from flows.run_names import named_run_id, run_name
from flows.tasks import build_docs, load_audit_promote

FLOW_LABEL = "eujp-as-of"


def rebuild_as_of(settings: Settings, as_of: date) -> RunSummary:
    """Replay the raw zone up to `as_of` into `settings.warehouse_path` (see eujp.asof)."""
    logger = get_run_logger()
    target = settings.warehouse_path
    summary = RunSummary(run_id=settings.run_id, status="success", warehouse=str(target), as_of=as_of.isoformat())
    if as_of > datetime.now(UTC).date():
        raise EujpError(f"--as-of {as_of} is in the future")
    problem = not_a_rebuild(target)
    if problem:
        raise EujpError(problem)
    store = open_store(settings.publish_uri)
    sources = selected_sources(settings.only_sources)
    with warehouse_lock(target, wait_seconds=settings.lock_wait_seconds):
        plan = replay_plan(store, as_of, sources)
        if not plan.steps:
            raise EujpError(f"nothing was landed on or before {as_of} under {store.uri}/raw/ for "
                            f"{', '.join(s.name for s in sources)}: no state of that day to rebuild")
        summary.warnings += [f"{name}: nothing landed on or before {as_of}; absent from the rebuilt warehouse"
                             for name in plan.missing]
        logger.info("as of %s: %d replay step(s), %d source load(s), from %s to %s", as_of, len(plan.steps),
                    plan.loads, plan.steps[0].day, plan.steps[-1].day)
        for leftover in target.parent.glob(f".{target.name}.building-*"):  # of killed rebuilds
            shutil.rmtree(leftover, ignore_errors=True)
        work = target.parent / f".{target.name}.building-{settings.run_id}"
        building = work / "warehouse.duckdb"
        countries = load_countries(as_of)
        replayed: list[tuple[date, SourceBatch]] = []
        replay = Replay(plan.history)  # a landing repeating one that was not applied is replayed all the same
        try:
            for step in replay:
                step_settings = settings.with_(warehouse_path=building, raw_date=step.day, only_sources=step.sources,
                                               run_id=f"{settings.run_id}-{step.day:%Y%m%d}")
                batches: list[SourceBatch] = []
                applied = False
                try:
                    for domain in DOMAINS:
                        if any(get_source(name).domain == domain for name in step.sources):
                            batches.extend(run_domain(domain, step_settings, countries))
                    judge_rejections(step_settings, batches)  # as the daily run: etl_runs.message records it
                    load_audit_promote(step_settings, batches, countries, compare_published=False)
                    applied = True
                except AuditFailed as exc:  # as the original run: not promoted, the next day starts from before
                    summary.errors.append(f"landing day {step.day}: not applied: {exc}")
                finally:  # a load releases its batch's spilled chunks; a step that stopped before it, here
                    for batch in batches:
                        release_chunks(batch)
                summary.errors += [f"landing day {step.day}: {b.error}" for b in batches if b.error]
                summary.errors += [f"landing day {step.day}: {e}" for e in landing_errors(batches)]
                if applied:  # above its threshold a source's valid rows were loaded, but the day's run failed
                    replay.apply(step.day, [b.source for b in batches if b.status == "loaded"],
                                 {b.source: b.fetched for b in batches})
                    summary.errors += [f"landing day {step.day}: {e}" for e in rejection_errors(batches)]
                    summary.warnings += [f"landing day {step.day}: {w}" for w in rejection_warnings(batches)]
                replayed += [(step.day, b) for b in batches]
            if not building.exists():  # every step's audit failed: there is no state of that day to write
                raise EujpError(f"as of {as_of}: no landing could be applied; {target} was not written: "
                                + " | ".join(summary.errors))
            with connect(building) as conn:
                stamp_extraction_times(conn, plan, replay.loaded_days, replay.loaded)
                mark_rebuild(conn, settings.run_id, as_of)  # the next rebuild may write over this file
                summary.table_rows = table_counts(conn)
                conn.execute("CHECKPOINT")
            promote(building, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        summary.status = "failed" if summary.errors else "success"
        summary.sources = [b.summary() | {"landing_day": day.isoformat()} for day, b in replayed]
        reports = [b.validation for _, b in replayed if b.validation is not None]
        docs = data_docs(lambda: build_docs(settings, reports), reports, summary, logger)
        report_run(settings, summary, reports, docs, now=end_of_day(as_of), flow_label=FLOW_LABEL)
    logger.info("warehouse as of %s rebuilt into %s (%s)", as_of, target, summary.status)
    return summary


@flow(name="eujp-as-of", flow_run_name=run_name("as-of"), validate_parameters=False, on_running=[begin_run],
      on_failure=[notify_failure], on_crashed=[notify_failure])
def as_of_flow(
    as_of: str,
    warehouse: str | None = None,
    publish_uri: str | None = None,
    run_id: str | None = None,
    only_sources: list[str] | None = None,
    dask_address: str | None = None,
    fanout: bool = False,
):
    """Rebuild the warehouse as it stood at the end of `as_of` (YYYY-MM-DD) from the raw landing zone of
    the publish store, into `warehouse` (default: asof/warehouse-YYYY-MM-DD.duckdb in the live one's files folder).
    `dask_address` / `fanout`: replay the partitions of streaming sources on Dask, as the daily flow does
    (flows/fanout.py; else EUJP_DASK_ADDRESS / EUJP_FANOUT)."""
    day = date.fromisoformat(as_of)
    base = Settings.from_env(publish_uri=publish_uri, run_id=named_run_id(run_id, "as-of"),
                             only_sources=tuple(only_sources) if only_sources else None,
                             dask_address=dask_address, fanout=fanout or None)
    target = Path(warehouse) if warehouse else default_warehouse(base.warehouse_path, day)
    settings = base.with_(warehouse_path=target, source_mode="raw", raw_date=day, run_date=day)
    return flow_result(settings, lambda: rebuild_as_of(settings, day), FLOW_LABEL)
