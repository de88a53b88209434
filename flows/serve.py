"""Serve the daily flow as a scheduled Prefect deployment from this process (`eujp serve`).

`serve_daily()` registers the deployment `eujp-daily/<name>` (default `eujp-daily/served`) with a cron
schedule on the Prefect API (PREFECT_API_URL) and then polls for its runs (scheduled, or triggered from the
UI, the CLI or the API), executing each in a subprocess, until it is stopped. Runs never overlap: the
runner executes one run at a time (a run due meanwhile stays Scheduled, shown Late, until it is taken up), the
deployment has a concurrency limit of one with runs queued behind it (ENQUEUE), and the run itself holds the
warehouse lock (a run started from elsewhere, e.g. `eujp run`, fails or waits on it).

The worker-based alternative (a work pool, `prefect deploy` with infra/prefect.yaml) registers
`eujp-daily/worker`. The names differ so that neither registration overwrites the other, and this module
refuses to serve under the worker's name; which one to use when: docs/operations.md, "Deployments and
alerts".
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger("eujp.serve")

DEFAULT_CRON = "0 6 * * *"
DEFAULT_TIMEZONE = "UTC"
DEFAULT_NAME = "served"  # eujp-daily/served
WORKER_NAME = "worker"  # eujp-daily/worker, the deployment of infra/prefect.yaml
CRON_ENV, TIMEZONE_ENV = "EUJP_SCHEDULE_CRON", "EUJP_SCHEDULE_TIMEZONE"
# The lake's retention and compaction (flows/lake.py): weekly, Sunday 04:30, away from the daily run.
MAINTENANCE_CRON = "30 4 * * 0"
MAINTENANCE_CRON_ENV = "EUJP_LAKE_MAINTENANCE_CRON"


def schedule_from_env() -> tuple[str, str]:
    return (os.environ.get(CRON_ENV) or DEFAULT_CRON, os.environ.get(TIMEZONE_ENV) or DEFAULT_TIMEZONE)


def check_name(name: str) -> None:
    """Refuse an empty name and the worker's deployment name (ValueError saying why)."""
    if not name.strip():
        raise ValueError(f"a deployment needs a name (the default is {DEFAULT_NAME!r})")
    if name.strip() == WORKER_NAME:
        raise ValueError(f"eujp-daily/{WORKER_NAME} is the worker-based deployment of infra/prefect.yaml: serving "
                         f"under that name would replace it (use the default, {DEFAULT_NAME!r}, or another name)")


def maintenance_cron(cron: str | None = None) -> str:
    """The maintenance's cron: `cron`, else EUJP_LAKE_MAINTENANCE_CRON, else the weekly default."""
    return cron or os.environ.get(MAINTENANCE_CRON_ENV) or MAINTENANCE_CRON


def daily_deployment(*, name: str = DEFAULT_NAME, cron: str = DEFAULT_CRON, timezone: str = DEFAULT_TIMEZONE,
                     parameters: dict | None = None, paused: bool = False):
    """The RunnerDeployment of the daily flow: cron schedule, one run at a time (others queue)."""
    check_name(name)
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    from flows.daily import daily_flow

    return daily_flow.to_deployment(
        name=name,
        schedules=[Cron(cron, timezone=timezone)],
        paused=paused,
        concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE),
        parameters={k: v for k, v in (parameters or {}).items() if v is not None},
        description="Daily EU–Japan ETL: extract, validate, load, audit, publish. Served by `eujp serve` "
                    "(see docs/operations.md).",
        tags=["eujp"],
        entrypoint_type=EntrypointType.MODULE_PATH,  # flows.daily.daily_flow: independent of the cwd
    )


MAINTENANCE_TIMEZONE = "UTC"


def maintenance_deployment(*, name: str = DEFAULT_NAME, cron: str | None = None, timezone: str = MAINTENANCE_TIMEZONE,
                           parameters: dict | None = None, paused: bool = False):
    """The RunnerDeployment `eujp-lake-maintain/<name>` of the lake's retention and compaction, on its own
    schedule (EUJP_LAKE_MAINTENANCE_CRON, default weekly); one run at a time. It passes the daily deployment's
    warehouse and publish target (`parameters`) on."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    from flows.lake import lake_maintain_flow

    cron = maintenance_cron(cron)
    wanted = {k: v for k, v in (parameters or {}).items() if k in ("warehouse", "publish_uri") and v is not None}
    return lake_maintain_flow.to_deployment(
        name=name,
        schedules=[Cron(cron, timezone=timezone)],
        paused=paused,
        concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE),
        parameters=wanted,
        description="The lake's retention and compaction (expire snapshots, merge small files, clean up): "
                    "docs/lakehouse.md.",
        tags=["eujp"],
        entrypoint_type=EntrypointType.MODULE_PATH,
    )


def maintenance_left_out(name: str = DEFAULT_NAME) -> str | None:
    """Why `eujp serve` leaves the lake's maintenance deployment out (None: it serves it): EUJP_LAKE_CATALOG is
    off, so there is no lake to maintain and a scheduled maintenance would only fail every week."""
    from eujp.config import LAKE_CATALOG_ENV
    from eujp.lake import lake_off

    if lake_off():
        return (f"not serving eujp-lake-maintain/{name}: {LAKE_CATALOG_ENV} is off (the runs publish no lake, "
                "there is none to maintain)")
    return None


def serve_daily(*, maintenance: bool = True, maintenance_cron: str | None = None, **kwargs) -> None:
    """Register the deployment (and, with `maintenance`, the lake's maintenance deployment, unless the lake is
    off: `maintenance_left_out`, logged) and serve them until interrupted (SIGINT/SIGTERM pause their
    schedules). One run at a time in this process: a maintenance run never overlaps a daily run (both also take
    the run lock)."""
    from prefect import serve

    deployments = [daily_deployment(**kwargs)]
    left_out = maintenance_left_out(kwargs.get("name", DEFAULT_NAME)) if maintenance else None
    if left_out:
        log.warning("%s", left_out)
    elif maintenance:
        # its cron is in UTC (EUJP_LAKE_MAINTENANCE_CRON, "Sunday 04:30 UTC"), whatever the daily run's time zone
        deployments.append(maintenance_deployment(
            name=kwargs.get("name", DEFAULT_NAME), cron=maintenance_cron, timezone=MAINTENANCE_TIMEZONE,
            parameters=kwargs.get("parameters"), paused=kwargs.get("paused", False)))
    serve(*deployments, limit=1)
