"""Failure alerts: a Slack-compatible JSON message posted to a webhook.

The payload is Slack's incoming-webhook format (`text` as the fallback and notification line, `blocks`
for the layout); Mattermost, Rocket.Chat and most chat tools accept the same `text`. The webhook URL is a
secret (Slack's carries a token in its path): it is never logged, and errors name only its scheme and host.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from eujp.errors import EujpError

WEBHOOK_ENV = "EUJP_ALERT_WEBHOOK_URL"
TIMEOUT_SECONDS = 10.0
_SECTION_CHARS = 2900  # Slack rejects section texts over 3000 characters
_HEADER_CHARS = 150  # and plain-text headers over 150


class AlertError(EujpError):
    """The webhook could not be reached or refused the message (the URL is never in the message)."""


@dataclass
class FailureAlert:
    flow_name: str
    flow_run_name: str
    state: str  # Failed | Crashed
    error: str
    failed_tasks: list[str] = field(default_factory=list)  # e.g. "extract sipri_arms: ExtractError ..."
    flow_run_id: str | None = None
    deployment: str | None = None
    run_url: str | None = None

    @property
    def failed_task(self) -> str:
        """The first failed task (what the operator looks at first), or a placeholder."""
        return self.failed_tasks[0] if self.failed_tasks else "none (the flow itself failed)"

    def headline(self) -> str:
        where = f" ({self.deployment})" if self.deployment else ""
        return f"{self.flow_name}{where}: flow run '{self.flow_run_name}' {self.state}"


def slack_payload(alert: FailureAlert) -> dict:
    """Slack incoming-webhook JSON: one fallback `text` line plus header, fields and the error."""
    tasks = "\n".join(f"• {_cut(t, 300)}" for t in alert.failed_tasks) or alert.failed_task
    fields = [
        {"type": "mrkdwn", "text": f"*Flow run*\n{alert.flow_run_name}"},
        {"type": "mrkdwn", "text": f"*State*\n{alert.state}"},
    ]
    if alert.deployment:
        fields.append({"type": "mrkdwn", "text": f"*Deployment*\n{alert.deployment}"})
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(alert.headline(), _HEADER_CHARS)}},
        {"type": "section", "fields": fields},
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(f"*Failed task*\n{tasks}", _SECTION_CHARS)}},
        {"type": "section", "text": {"type": "mrkdwn",
                                     "text": _cut("*Error*\n```" + _cut(alert.error, _SECTION_CHARS - 20) + "```",
                                                  _SECTION_CHARS)}},
    ]
    if alert.run_url:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"<{alert.run_url}|Open the flow run in Prefect>"}]})
    text = (f"{alert.headline()}. Failed task: {_cut(alert.failed_task, 300)}. "
            f"Error: {_cut(alert.error, 1000)}")
    return {"text": text, "blocks": blocks}


def webhook_url_from_env(env: dict[str, str] | None = None) -> str | None:
    url = (env if env is not None else os.environ).get(WEBHOOK_ENV, "").strip()
    return url or None


def redact(url: str) -> str:
    """What may be logged of a webhook URL: scheme and host only."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}/…"


def post_alert(url: str, payload: dict, *, timeout: float = TIMEOUT_SECONDS, transport=None) -> int:
    """POST `payload` as JSON; return the HTTP status. Raises AlertError (never naming the URL's path or
    query) on a network error, a timeout or a non-2xx answer. No redirects are followed."""
    import httpx

    if urlsplit(url).scheme not in ("http", "https"):
        raise AlertError(f"alert webhook {redact(url)}: only http(s) URLs are supported")
    # httpx logs every request's full URL at INFO ("HTTP Request: POST https://hooks...."): not this one's.
    try:
        normalized = str(httpx.URL(url))
    except Exception:  # noqa: BLE001 - an invalid URL: the post below says so
        normalized = url
    hide = _HideURL({url, normalized}, redact(url))
    httpx_log = logging.getLogger("httpx")
    httpx_log.addFilter(hide)
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, transport=transport) as client:
            response = client.post(url, json=payload)
    except httpx.TimeoutException as exc:
        raise AlertError(f"alert webhook {redact(url)}: no answer within {timeout:g} s "
                         f"({type(exc).__name__})") from None
    except httpx.HTTPError as exc:  # str(exc) may quote the URL: keep only the error's type
        raise AlertError(f"alert webhook {redact(url)}: {type(exc).__name__}") from None
    finally:
        httpx_log.removeFilter(hide)
    if not 200 <= response.status_code < 300:
        raise AlertError(f"alert webhook {redact(url)} answered HTTP {response.status_code}")
    return response.status_code


class _HideURL(logging.Filter):
    """Replaces the given URLs in log records by their redacted form (the record is kept)."""

    def __init__(self, urls: set[str], shown: str):
        super().__init__()
        self.urls, self.shown = urls, shown

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(u in message for u in self.urls):
            for u in sorted(self.urls, key=len, reverse=True):
                message = message.replace(u, self.shown)
            record.msg, record.args = message, None
        return True


def _cut(text: str, limit: int) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
