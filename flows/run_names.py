"""Flow run names that carry the run id, as the domain subflows' `trade-{run_id}` do.

A parent flow run is named `{prefix}-{run_id}` (`daily-20261124T060000Z-1a2b3c`) instead of Prefect's random
adjective-animal, so the Prefect UI, its alerts and `eujp status` name the run the warehouse, the published
`runs/{run_id}/` and the logs name. A run given no run id (a deployment's scheduled run) gets a new one in its
name, which the flow then takes (`named_run_id`): the name and the run id are the same text.
"""

from __future__ import annotations

from collections.abc import Callable

from eujp.config import RUN_ID_PATTERN, new_run_id


def run_name(prefix: str) -> Callable[[], str]:
    """A `flow_run_name` callable: `{prefix}-{the flow's run_id parameter, or a new run id}`."""

    def name() -> str:
        from prefect.runtime import flow_run

        return f"{prefix}-{flow_run.parameters.get('run_id') or new_run_id()}"

    return name


def named_run_id(run_id: str | None, prefix: str) -> str | None:
    """The run id a flow runs under: the one it was given, else the one `run_name(prefix)` put in its flow run's
    name; None (Settings makes one) when the run was renamed to something else or runs outside a flow."""
    if run_id:
        return run_id
    from prefect.runtime import flow_run

    name = flow_run.name or ""
    taken = name.removeprefix(f"{prefix}-")
    return taken if name.startswith(f"{prefix}-") and RUN_ID_PATTERN.match(taken) else None
