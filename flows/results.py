"""How a flow run ends: its summary completed (Data Docs link, freshness) and posted as artifacts, and its
result: the summary, or a Failed state carrying it."""

from __future__ import annotations

from collections.abc import Callable

from prefect import get_run_logger
from prefect.states import Failed

from eujp.config import Settings
from eujp.run import RunSummary, complete_summary
from flows.artifacts import create_failure_artifact, create_run_artifacts


def report_run(settings: Settings, summary: RunSummary, reports: list, docs: str | None, *,
               now=None, flow_label: str = "eujp-daily") -> None:
    """Complete the summary (eujp.run.complete_summary) and post the run's artifacts."""
    logger = get_run_logger()
    complete_summary(settings, summary, docs, now=now, log=logger)
    try:
        create_run_artifacts(summary.to_dict(), reports, flow_label=flow_label)
    except Exception as exc:  # noqa: BLE001 - the run's outcome does not depend on its report
        logger.error("could not create the run's artifacts: %s: %s", type(exc).__name__, exc)


def flow_result(settings: Settings, body: Callable[[], RunSummary], flow_label: str = "eujp-daily"):
    """Run a flow's body and turn its summary into the flow's result: the summary, or a Failed state carrying
    it. An exception leaves a failure artifact first and is re-raised (the run fails with its own error)."""
    try:
        summary = body()
    except Exception as exc:
        try:
            create_failure_artifact(settings.run_id, f"{type(exc).__name__}: {exc}", flow_label)
        except Exception as artifact_exc:  # noqa: BLE001 - the run's own error is the one to raise
            get_run_logger().error("could not create the failure artifact: %s", artifact_exc)
        raise
    if summary.status != "success":
        return Failed(message=summary.failure_message, data=summary.to_dict())
    return summary.to_dict()
