"""The lake's retention and compaction as a Prefect flow (`eujp-lake-maintain`), with a schedule of its own
(flows/serve.py `maintenance_deployment`, served beside the daily flow by `eujp serve`). The logic is
eujp.lake.maintain_published; `eujp lake-maintain` runs the same without Prefect. A failed or crashed run alerts
like the daily flow's (flows/hooks.py: the flow, the run and the error). With nothing to maintain (no run has
published a lake yet, or EUJP_LAKE_CATALOG is off) the run ends Completed, saying so in its log: no alert."""

from __future__ import annotations

import os

from prefect import flow, get_run_logger

from flows.hooks import begin_run, notify_failure

# How long a maintenance run waits for the run lock when EUJP_LOCK_WAIT_SECONDS is unset: a daily run holds it
# for its whole write-audit-publish, and a scheduled maintenance should wait for it, not fail (6 hours).
MAINTENANCE_LOCK_WAIT_SECONDS = 6 * 3600.0


@flow(name="eujp-lake-maintain", log_prints=False, on_running=[begin_run], on_failure=[notify_failure],
      on_crashed=[notify_failure])
def lake_maintain_flow(warehouse: str | None = None, publish_uri: str | None = None,
                       keep_days: float | None = None, grace_hours: float | None = None,
                       lock_wait_seconds: float | None = None) -> dict:
    """Expire the lake's snapshots older than keep_days (never the one latest.json or a retained run names),
    merge small files, delete files unreferenced for grace_hours, publish the catalog. Waits for a running
    daily run (the run lock) up to lock_wait_seconds: default EUJP_LOCK_WAIT_SECONDS when set, else
    MAINTENANCE_LOCK_WAIT_SECONDS (6 hours). Nothing to maintain (no lake published yet, or the lake off):
    Completed, returning {"nothing_to_maintain": why}."""
    from pathlib import Path

    from eujp.config import Settings
    from eujp.lake import NothingToMaintain, maintain_published

    if lock_wait_seconds is None and not os.environ.get("EUJP_LOCK_WAIT_SECONDS"):
        lock_wait_seconds = MAINTENANCE_LOCK_WAIT_SECONDS
    settings = Settings.from_env(warehouse_path=Path(warehouse) if warehouse else None, publish_uri=publish_uri,
                                 lock_wait_seconds=lock_wait_seconds)
    logger = get_run_logger()
    try:
        result = maintain_published(settings, keep_days=keep_days, grace_hours=grace_hours)
    except NothingToMaintain as exc:
        (logger.warning if exc.off else logger.info)("lake maintenance: %s", exc)
        return {"nothing_to_maintain": str(exc)}
    logger.info("lake maintenance: %s", result.summary())
    return result.to_dict()
