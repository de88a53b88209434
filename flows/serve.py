"""Serve the daily flow as a scheduled Prefect deployment from this process (`eujp serve`).

`serve_daily()` registers the deployment `eujp-daily/<name>` (default `eujp-daily/served`) with a cron
schedule on the Prefect API (PREFECT_API_URL) and then polls for its runs (scheduled, or triggered from the
UI, the CLI or the API), executing each in a subprocess, until it is stopped. Runs never overlap: the
deployment has a concurrency limit of one with runs queued behind it (ENQUEUE), the runner executes one run
at a time, and the run itself holds the warehouse lock (a run started from elsewhere, e.g. `eujp run`, fails
or waits on it).

The worker-based alternative (a work pool, `prefect deploy` with infra/prefect.yaml) registers
`eujp-daily/worker`. The names differ so that neither registration overwrites the other, and this module
refuses to serve under the worker's name; which one to use when: docs/operations.md, "Deployments and
alerts".
"""

from __future__ import annotations

import os

DEFAULT_CRON = "0 6 * * *"
DEFAULT_TIMEZONE = "UTC"
DEFAULT_NAME = "served"  # eujp-daily/served
WORKER_NAME = "worker"  # eujp-daily/worker, the deployment of infra/prefect.yaml
CRON_ENV, TIMEZONE_ENV = "EUJP_SCHEDULE_CRON", "EUJP_SCHEDULE_TIMEZONE"


def schedule_from_env() -> tuple[str, str]:
    return (os.environ.get(CRON_ENV) or DEFAULT_CRON, os.environ.get(TIMEZONE_ENV) or DEFAULT_TIMEZONE)


def daily_deployment(*, name: str = DEFAULT_NAME, cron: str = DEFAULT_CRON, timezone: str = DEFAULT_TIMEZONE,
                     parameters: dict | None = None, paused: bool = False):
    """The RunnerDeployment of the daily flow: cron schedule, one run at a time (others queue)."""
    if name.strip() == WORKER_NAME:
        raise ValueError(f"eujp-daily/{WORKER_NAME} is the worker-based deployment of infra/prefect.yaml: serving "
                         f"under that name would replace it (use the default, {DEFAULT_NAME!r}, or another name)")
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


def serve_daily(**kwargs) -> None:
    """Register the deployment and serve it until interrupted (SIGINT/SIGTERM pause its schedule)."""
    from prefect import serve

    serve(daily_deployment(**kwargs), limit=1)
