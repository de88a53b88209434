"""How a flow run ends: its summary completed (Data Docs link, freshness) and posted as artifacts, and its
result: the summary, or a Failed state carrying it (in a RunFailedError: state_summary reads either)."""

from __future__ import annotations

from collections.abc import Callable

from prefect import get_run_logger
from prefect.states import Failed

from eujp.config import Settings
from eujp.lock import RunLocked
from eujp.run import RunSummary, complete_summary
from flows.artifacts import create_failure_artifact, create_run_artifacts


class RunFailedError(Exception):
    """What a Failed run's state holds: its failure message, and the run's summary (`summary`). Prefect expects
    an exception in a Failed state: a deployment's runner raises it once the flow ends, and with the summary
    itself there it logged a TypeError quoting the whole summary instead of why the run failed."""

    def __init__(self, message: str, summary: dict) -> None:
        super().__init__(message, summary)  # both in args: it pickles (Prefect may persist it)
        self.summary = summary

    def __str__(self) -> str:
        return str(self.args[0])


def state_summary(state):
    """The run summary a flow's final state carries: its result when it completed, the RunFailedError's summary
    when it failed; else what the state holds (the error of a run that could not summarise)."""
    result = state.result(raise_on_failure=False)
    return result.summary if isinstance(result, RunFailedError) else result


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
    it. An exception leaves a failure artifact first and is re-raised (the run fails with its own error), but
    RunLocked (another run holds the run lock or the writer slot: nothing was done), which is the result of a
    Failed state, logged as one line without a traceback (`eujp run` prints "run failed: ..." after it)."""
    try:
        summary = body()
    except Exception as exc:
        try:
            create_failure_artifact(settings.run_id, f"{type(exc).__name__}: {exc}", flow_label)
        except Exception as artifact_exc:  # noqa: BLE001 - the run's own error is the one to raise
            get_run_logger().error("could not create the failure artifact: %s", artifact_exc)
        if isinstance(exc, RunLocked):  # another run is writing: one line, no traceback; the error is the result
            get_run_logger().error(str(exc))
            return Failed(message=str(exc), data=exc)
        raise
    if summary.status != "success":
        return Failed(message=summary.failure_message,
                      data=RunFailedError(summary.failure_message, summary.to_dict()))
    return summary.to_dict()
