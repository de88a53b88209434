"""The lake's retention and compaction as a Prefect flow (`eujp-lake-maintain`), with a schedule of its own
(flows/serve.py `maintenance_deployment`, served beside the daily flow by `eujp serve`). The logic is
eujp.lake.maintain_published; `eujp lake-maintain` runs the same without Prefect. A failed or crashed run alerts
like the daily flow's (flows/hooks.py: the flow, the run and the error)."""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.hooks import begin_run, notify_failure


@flow(name="eujp-lake-maintain", log_prints=False, on_running=[begin_run], on_failure=[notify_failure],
      on_crashed=[notify_failure])
def lake_maintain_flow(warehouse: str | None = None, publish_uri: str | None = None,
                       keep_days: float | None = None, grace_hours: float | None = None) -> dict:
    """Expire the lake's snapshots older than keep_days (never the one latest.json or a retained run names),
    merge small files, delete files unreferenced for grace_hours, publish the catalog. Waits for a running
    daily run (the run lock, EUJP_LOCK_WAIT_SECONDS)."""
    from pathlib import Path

    from eujp.config import Settings
    from eujp.lake import maintain_published

    settings = Settings.from_env(warehouse_path=Path(warehouse) if warehouse else None, publish_uri=publish_uri)
    result = maintain_published(settings, keep_days=keep_days, grace_hours=grace_hours)
    get_run_logger().info("lake maintenance: %s", result.summary())
    return result.to_dict()
