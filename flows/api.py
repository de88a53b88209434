"""Small reads of the Prefect API for operators: recent runs (eujp status), a run's task runs (alerts)."""

from __future__ import annotations

from uuid import UUID

# The top-level flows an operator watches: listed by `eujp status`, alerted on by the server (flows/automations.py).
FLOW_NAMES = ("eujp-daily", "eujp-as-of", "eujp-lake-maintain")


def api_url() -> str | None:
    """The configured PREFECT_API_URL (environment or profile), None when Prefect would run ephemeral."""
    from prefect.settings import get_current_settings

    return get_current_settings().api.url or None


def ui_url() -> str | None:
    from prefect.settings import get_current_settings

    return get_current_settings().ui_url or None


def flow_run_url(flow_run_id) -> str | None:
    base = ui_url()
    return f"{base.rstrip('/')}/runs/flow-run/{flow_run_id}" if base else None


def recent_flow_runs(limit: int = 10, flow_names: tuple[str, ...] = FLOW_NAMES,
                     timeout: float = 10.0) -> tuple[list[dict], dict | None]:
    """The newest started runs of our flows (newest first) and the next scheduled one, as plain dicts.
    Each request gives up after `timeout` seconds (a hung API must not hang `eujp status`)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterStartTime,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(httpx_settings={"timeout": timeout}, sync_client=True) as client:
        flows = client.read_flows(flow_filter=FlowFilter(name=FlowFilterName(any_=list(flow_names))))
        names = {f.id: f.name for f in flows}
        if not names:
            return [], None
        only_ours = FlowFilter(name=FlowFilterName(any_=list(flow_names)))
        started = client.read_flow_runs(
            flow_filter=only_ours, flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(is_null_=False)),
            sort=FlowRunSort.START_TIME_DESC, limit=limit)
        scheduled = client.read_flow_runs(
            flow_filter=only_ours,
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(
                type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))),
            sort=FlowRunSort.EXPECTED_START_TIME_ASC, limit=1)
        deployments: dict[UUID, str] = {}
        for run in [*started, *scheduled]:
            if run.deployment_id and run.deployment_id not in deployments:
                try:
                    deployments[run.deployment_id] = client.read_deployment(run.deployment_id).name
                except Exception:  # noqa: BLE001 - a deleted deployment must not hide the runs
                    deployments[run.deployment_id] = str(run.deployment_id)

    def as_dict(run) -> dict:
        return {
            "flow": names.get(run.flow_id, str(run.flow_id)),
            "name": run.name,
            "id": str(run.id),
            "state": run.state.name if run.state else "-",
            "state_type": run.state.type.value if run.state else "",
            "start_time": run.start_time,
            "expected_start_time": run.expected_start_time,
            "total_run_time": run.total_run_time.total_seconds() if run.total_run_time else None,
            "deployment": deployments.get(run.deployment_id) if run.deployment_id else None,
            "parameters": run.parameters,
        }

    return [as_dict(r) for r in started], (as_dict(scheduled[0]) if scheduled else None)


def flow_run_name(flow_run_id) -> str:
    """A flow run's name as the server has it now (a run names itself once it starts: flows/run_names.py)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id).name


def unfinished_task_runs(flow_run_id) -> list[str]:
    """Names of the failed, crashed or still-running task runs of a flow run and its subflows: what was
    going on when a run crashed in another process. Best effort (task states reach the API as events)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterParentFlowRunId,
        TaskRunFilter,
        TaskRunFilterState,
        TaskRunFilterStateType,
        TaskRunFilterSubFlowRuns,
    )
    from prefect.client.schemas.objects import StateType

    with get_client(sync_client=True) as client:
        children = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])))
        ids = [flow_run_id, *(c.id for c in children)]
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)),
            task_run_filter=TaskRunFilter(
                subflow_runs=TaskRunFilterSubFlowRuns(exists_=False),  # not the placeholders of subflows
                state=TaskRunFilterState(type=TaskRunFilterStateType(
                    any_=[StateType.FAILED, StateType.CRASHED, StateType.RUNNING]))))
    return [f"{r.name} ({r.state.name if r.state else '?'})" for r in runs]
