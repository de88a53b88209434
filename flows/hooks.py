"""Prefect state hooks: failure alerts to a webhook.

    @flow(on_running=[begin_run], on_failure=[notify_failure], on_crashed=[notify_failure])
    @task(on_failure=[remember_task_failure])

`remember_task_failure` keeps, in this process, every task run that ended Failed (after its retries)
during the current flow run; `notify_failure` builds a Slack-compatible message naming the flow run, the
failed task(s) and the error, and posts it to the webhook. A run that crashed in another process (the
served or worker process died) has no such record: the task runs that were failed or still running are
then read from the Prefect API.

The webhook URL comes from EUJP_ALERT_WEBHOOK_URL, else from the Prefect Secret block named by
EUJP_ALERT_WEBHOOK_BLOCK (default `eujp-alert-webhook`). It is never logged (its secret parts are registered with
the process's log redactor as soon as it is read: eujp.alerts.secret_webhook). A hook never raises: an
alert that cannot be sent is logged (without the URL) and the run keeps its state.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from datetime import UTC, datetime

from eujp.alerts import (
    AlertError,
    FailureAlert,
    post_alert,
    secret_webhook,
    slack_payload,
    webhook_url_from_env,
)

BLOCK_ENV = "EUJP_ALERT_WEBHOOK_BLOCK"
DEFAULT_BLOCK = "eujp-alert-webhook"

log = logging.getLogger("eujp.alerts")
_failures: deque[tuple[datetime, str]] = deque(maxlen=50)
_lock = threading.Lock()


def begin_run(flow, flow_run, state) -> None:
    """on_running: forget task failures of earlier flow runs in this process."""
    with _lock:
        _failures.clear()


def remember_task_failure(task, task_run, state) -> None:
    """Task on_failure (runs once, after the last retry): remember which task failed and why."""
    attempts = f" after {task_run.run_count} attempts" if (task_run.run_count or 0) > 1 else ""
    first_line = _message(state).strip().splitlines()[0] if _message(state).strip() else state.name
    with _lock:
        _failures.append((datetime.now(UTC), f"{task_run.name}{attempts}: {first_line[:300]}"))


def task_failures() -> list[str]:
    with _lock:
        return [text for _, text in _failures]


def notify_failure(flow, flow_run, state, logger=None) -> None:
    """on_failure / on_crashed: post an alert to the configured webhook (if any). Never raises."""
    logger = logger or _logger(flow, flow_run)
    try:
        url = resolve_webhook_url()
        if url is None:
            logger.warning("flow run %s %s; no alert sent: no webhook configured (set %s or a Secret block "
                           "named %s)", flow_run.name, state.name, "EUJP_ALERT_WEBHOOK_URL",
                           os.environ.get(BLOCK_ENV, DEFAULT_BLOCK))
            return
        alert = build_alert(flow, flow_run, state)
        post_alert(url, slack_payload(alert))
        logger.info("alert sent for flow run %s (%s; failed task: %s)", alert.flow_run_name, state.name,
                    alert.failed_task)
    except AlertError as exc:  # its message names only the webhook's host
        logger.error("could not send the failure alert for flow run %s: %s", flow_run.name, exc)
    except Exception as exc:  # noqa: BLE001 - an alert must never change the run's outcome
        logger.error("could not send the failure alert for flow run %s: %s", flow_run.name, type(exc).__name__)


def build_alert(flow, flow_run, state, *, task_lookup=None, name_lookup=None) -> FailureAlert:
    """The alert for a flow run that ended Failed or Crashed. A crash is reported by another process (a
    runner, `eujp serve`), which holds the run as it picked it up: its name and what was running are read
    from the API."""
    from flows.api import flow_run_url

    failed = task_failures()
    failed += _failed_steps(state, known=failed)
    name = flow_run.name
    if state.is_crashed():
        name = (name_lookup or _current_name)(flow_run)
        if not failed:
            failed = (task_lookup or _unfinished_task_runs)(flow_run.id)
    deployment = None
    if getattr(flow_run, "deployment_id", None):
        deployment = _deployment_name(flow_run.deployment_id)
    return FailureAlert(
        flow_name=flow.name, flow_run_name=name, state=state.name, error=_message(state),
        failed_tasks=failed, flow_run_id=str(flow_run.id), deployment=deployment,
        run_url=flow_run_url(flow_run.id),
    )


def resolve_webhook_url() -> str | None:
    url = webhook_url_from_env()
    if url:
        return url
    name = os.environ.get(BLOCK_ENV, DEFAULT_BLOCK).strip()
    if not name:
        return None
    from prefect.blocks.system import Secret

    try:
        value = Secret.load(name).get()
    except ValueError:  # no block of that name
        return None
    url = str(value).strip()
    return secret_webhook(url) if url else None


# Steps of a source (SourceBatch.failed_step) and the task that runs them (flows/tasks.py, flows/daily.py).
_STEP_TASKS = {"extract": "extract {source}", "parse": "prepare {source}", "transform": "prepare {source}",
               "validate": "prepare {source}", "load": "load-audit-promote"}


def _failed_steps(state, known: list[str]) -> list[str]:
    """Failed sources from the run summary a Failed state carries: 'prepare security_events (validate
    failed)' (a failing source is recorded on its batch, its task itself completes; the error says why), and
    sources whose rejected rows failed the run: 'prepare sipri_arms (rejected rows above the threshold)'
    (eujp.rejections: their verdict is among the run's errors)."""
    from flows.results import state_summary

    try:
        data = state_summary(state)
    except Exception:  # noqa: BLE001 - no readable result: fall back on the state message
        return []
    if not isinstance(data, dict):
        return []
    out = []
    errors = set(data.get("errors") or [])
    for source in data.get("sources", []):
        if source.get("rejections") and source["rejections"] in errors:
            out.append(f"prepare {source['source']} (rejected rows above the threshold)")
            continue
        if source.get("status") != "failed" or not source.get("error"):
            continue
        name = source["source"]
        if any(k.startswith(f"extract {name}") for k in known):
            continue  # the task failure already names it
        step = _failed_step(source["error"], name)
        task = _STEP_TASKS.get(step, "{source}").format(source=name)
        out.append(f"{task} ({step or 'step'} of {name} failed)")
    return out


def _failed_step(error: str, source: str) -> str | None:
    # SourceBatch.fail: "{source} ({table}): {step} failed: {detail}"
    head = error.split(" failed:", 1)[0]
    return head.rsplit(" ", 1)[-1] if head.startswith(source) else None


def _unfinished_task_runs(flow_run_id) -> list[str]:
    from flows.api import unfinished_task_runs

    try:
        return unfinished_task_runs(flow_run_id)
    except Exception:  # noqa: BLE001 - best effort
        return []


def _current_name(flow_run) -> str:
    """The run's name on the server: it named itself `daily-{run_id}` once it started (flows/run_names.py)."""
    from flows.api import flow_run_name

    try:
        return flow_run_name(flow_run.id)
    except Exception:  # noqa: BLE001 - best effort
        return flow_run.name


def _deployment_name(deployment_id) -> str | None:
    try:
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            d = client.read_deployment(deployment_id)
            return d.name
    except Exception:  # noqa: BLE001 - best effort
        return None


def _message(state) -> str:
    return state.message or state.name


def _logger(flow, flow_run):
    """A logger whose records reach the flow run's logs in Prefect (also outside its run context, as in
    the runner's crash hooks)."""
    try:
        from prefect.logging.loggers import flow_run_logger

        return flow_run_logger(flow_run, flow)
    except Exception:  # noqa: BLE001
        return log
