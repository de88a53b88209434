"""Failure alerts from the Prefect server itself: an Automation on Failed and Crashed runs of the eujp flows.

The run's own hook (flows/hooks.py) alerts from the process that ran the flow; when that process (the served
process, a worker's child, the worker's machine) is gone, nothing in it can alert. The server can: it emits a
`prefect.flow-run.Failed` / `prefect.flow-run.Crashed` event whenever a run enters that state (reported by
the runner, the worker, or set through the API), and an Automation turns that event into a notification.

`ensure_failure_alerts()` creates or updates, idempotently:

- the notification block `eujp-alert-automation` (a Custom Webhook block posting Slack-compatible JSON,
  `{"text": ...}`): the webhook URL is kept in the block's secret values (obfuscated in the UI and the API)
  and comes from EUJP_ALERT_WEBHOOK_URL, else from the Secret block the hook uses (eujp-alert-webhook, or
  EUJP_ALERT_WEBHOOK_BLOCK); it is never printed or logged;
- the automation `eujp-failed-or-crashed-runs`: on a flow-run Failed or Crashed event whose flow is one of
  the top-level eujp flows (flows/api.py FLOW_NAMES: eujp-daily, eujp-as-of, eujp-lake-maintain; a failing
  domain subflow fails its parent, which alerts once), send a notification naming the flow, the flow run, its
  state, deployment and message.

Running it again updates the same block and automation (one of each; duplicates left by a race are
deleted). Without a webhook it changes nothing and says so. Run it where PREFECT_API_URL points at the
server (infra/docker-compose.yml runs it as the one-off `alerts` service):

    python -m flows.automations            # create or update
    python -m flows.automations --remove   # delete the automation and its block
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import timedelta

from flows.api import FLOW_NAMES

AUTOMATION_NAME = "eujp-failed-or-crashed-runs"
BLOCK_NAME = "eujp-alert-automation"
EVENTS = ("prefect.flow-run.Failed", "prefect.flow-run.Crashed")
_URL_KEY = "webhook_url"  # the secret value the block's URL template refers to

SUBJECT = "{{ flow.name }}: flow run '{{ flow_run.name }}' {{ flow_run.state.name }}"
BODY = """\
Flow run '{{ flow_run.name }}' of {{ flow.name }} entered {{ flow_run.state.name }} \
at {{ flow_run.state.timestamp }} (reported by the Prefect server's automation {{ automation.name }}).
{% if deployment %}Deployment: {{ flow.name }}/{{ deployment.name }}
{% endif %}Flow run id: {{ flow_run.id }}
Message: {{ flow_run.state.message or "(none)" }}
{% set link = flow_run|ui_url %}{% if link %}Open the flow run: {{ link }}
{% endif %}"""


@dataclass
class Outcome:
    status: str  # created | updated | removed | absent | skipped
    automation_id: str | None = None
    block_id: str | None = None
    webhook: str | None = None  # scheme and host only
    deleted_duplicates: int = 0

    def describe(self) -> str:
        if self.status == "skipped":
            return (f"eujp alerts: no webhook configured (set EUJP_ALERT_WEBHOOK_URL or a Secret block named "
                    f"eujp-alert-webhook): automation {AUTOMATION_NAME!r} left as it is")
        if self.status in ("removed", "absent"):
            return f"eujp alerts: automation {AUTOMATION_NAME!r} and block {BLOCK_NAME!r} {self.status}"
        extra = f", {self.deleted_duplicates} duplicate(s) deleted" if self.deleted_duplicates else ""
        return (f"eujp alerts: automation {AUTOMATION_NAME!r} {self.status} (id {self.automation_id}{extra}); "
                f"notifications to {self.webhook} through block {BLOCK_NAME!r}")


def notification_block(url: str):
    """The Custom Webhook block posting `{"text": subject + body}` (Slack, Mattermost and most chat tools
    accept it) to `url`, held in the block's secrets (the URL field only names the secret)."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    return CustomWebhookNotificationBlock(
        name="eujp failure alerts",
        url="{{" + _URL_KEY + "}}",
        method="POST",
        json_data={"text": "{{subject}}\n{{body}}"},
        secrets={_URL_KEY: url},
        timeout=10,
    )


def failure_automation(block_document_id):
    """The Automation: a Failed or Crashed event of a top-level eujp flow run -> a notification."""
    from prefect.automations import Automation, EventTrigger, Posture, SendNotification

    return Automation(
        name=AUTOMATION_NAME,
        description="Alerts on Failed or Crashed runs of the eujp flows, sent by the Prefect server (no worker "
                    "or served process needed). Managed by flows/automations.py: edits here are overwritten.",
        enabled=True,
        trigger=EventTrigger(
            expect=set(EVENTS),
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "flow", "prefect.resource.name": list(FLOW_NAMES)},
            for_each={"prefect.resource.id"},  # each flow run on its own
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=[SendNotification(block_document_id=block_document_id, subject=SUBJECT, body=BODY)],
    )


def ensure_failure_alerts(url: str | None = None) -> Outcome:
    """Create or update the notification block and the automation (see the module's docstring)."""
    from prefect.automations import AutomationCore
    from prefect.client.orchestration import get_client

    from eujp.alerts import redact, secret_webhook
    from flows.hooks import resolve_webhook_url

    url = secret_webhook(url.strip()) if (url or "").strip() else resolve_webhook_url()
    if not url:
        return Outcome("skipped")
    block_id = notification_block(url).save(BLOCK_NAME, overwrite=True)
    # owner_resource left unset: the update (PUT, unset fields left out) refuses it
    wanted = AutomationCore(**failure_automation(block_id).model_dump(exclude={"id", "owner_resource"}))
    with get_client(sync_client=True) as client:
        existing = sorted(client.read_automations_by_name(AUTOMATION_NAME), key=lambda a: str(a.id))
        if existing:
            keep, duplicates = existing[0], existing[1:]
            client.update_automation(keep.id, wanted)
            for extra in duplicates:
                client.delete_automation(extra.id)
            return Outcome("updated", str(keep.id), str(block_id), redact(url), len(duplicates))
        created = client.create_automation(wanted)
    return Outcome("created", str(created), str(block_id), redact(url))


def remove_failure_alerts() -> Outcome:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    found = False
    with get_client(sync_client=True) as client:
        for automation in client.read_automations_by_name(AUTOMATION_NAME):
            client.delete_automation(automation.id)
            found = True
        try:
            block = CustomWebhookNotificationBlock.load(BLOCK_NAME)
        except ValueError:
            block = None
        if block is not None:
            try:
                client.delete_block_document(block._block_document_id)
                found = True
            except ObjectNotFound:
                pass
    return Outcome("removed" if found else "absent")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.automations", description=__doc__.split("\n\n")[0])
    parser.add_argument("--remove", action="store_true", help="delete the automation and its notification block")
    args = parser.parse_args(argv)
    from flows.api import api_url

    if not api_url():
        print("eujp alerts: PREFECT_API_URL is not set: point it at the Prefect server "
              "(e.g. http://127.0.0.1:4200/api)", file=sys.stderr)
        return 2
    outcome = remove_failure_alerts() if args.remove else ensure_failure_alerts()
    print(outcome.describe(), file=sys.stderr if outcome.status == "skipped" else sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
