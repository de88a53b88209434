"""Failure alerts: a Slack-compatible JSON message posted to a webhook.

The payload is Slack's incoming-webhook format (`text` as the fallback and notification line, `blocks`
for the layout); Mattermost, Rocket.Chat and most chat tools accept the same `text`. The webhook URL is a
secret (Slack's carries a token in its path): errors name only its scheme and host (`redact`), and its secret
parts (`webhook_secrets`) are registered with the process's log redactor (eujp.redaction) as soon as the URL is
read, so that no log record shows them, whoever writes it (httpx's request line at INFO, httpcore's response
headers at DEBUG, which quote a redirect's Location): such a line keeps the host and the path's first segment,
`POST https://hooks.slack.com/services/***`.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from eujp.errors import EujpError
from eujp.redaction import redact_in_logs

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
    """EUJP_ALERT_WEBHOOK_URL (None when unset), its secret parts registered with the log redactor."""
    url = (env if env is not None else os.environ).get(WEBHOOK_ENV, "").strip()
    return secret_webhook(url) if url else None


def redact(url: str) -> str:
    """What the project's messages show of a webhook URL: scheme and host only."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}/…"


def webhook_secrets(url: str) -> list[str]:
    """The parts of a webhook URL that are its secret: the path after its first segment (Slack's
    /services/T…/B…/token, Discord's /api/webhooks/id/token, Mattermost's /hooks/key) and each of those segments;
    a path of one segment whole when there is no query; the query and each of its values (?token=, ?key=); the
    password of a user:password@. As written and as httpx sends them (percent-encoded)."""
    import httpx

    forms = {url}
    with contextlib.suppress(Exception):  # an invalid URL: post_alert says so
        forms.add(str(httpx.URL(url)))
    found: list[str] = []
    for form in forms:
        parts = urlsplit(form)
        segments = [s for s in parts.path.split("/") if s]
        if len(segments) > 1:
            found += ["/".join(segments[1:]), *segments[1:]]
        elif segments and not parts.query:
            found.append(segments[0])
        if parts.query:
            found += [parts.query, *(v for _, v in parse_qsl(parts.query, keep_blank_values=True))]
        if parts.password:
            found.append(parts.password)
    return sorted({f for f in found + [unquote(f) for f in found] if f})


def secret_webhook(url: str) -> str:
    """`url`, its secret parts (`webhook_secrets`) registered with the log redactor: from now on no log record
    of this process shows them."""
    redact_in_logs(*webhook_secrets(url))
    return url


def post_alert(url: str, payload: dict, *, timeout: float = TIMEOUT_SECONDS, transport=None) -> int:
    """POST `payload` as JSON; return the HTTP status. Raises AlertError (never naming the URL's path or
    query) on a network error, a timeout or a non-2xx answer. No redirects are followed."""
    import httpx

    if urlsplit(url).scheme not in ("http", "https"):
        raise AlertError(f"alert webhook {redact(url)}: only http(s) URLs are supported")
    # httpx logs every request's full URL at INFO ("HTTP Request: POST https://hooks...."), httpcore a redirect's
    # Location at DEBUG: the redactor hides the URL's secret parts in them
    secret_webhook(url)
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, transport=transport) as client:
            response = client.post(url, json=payload)
    except httpx.TimeoutException as exc:
        raise AlertError(f"alert webhook {redact(url)}: no answer within {timeout:g} s "
                         f"({type(exc).__name__})") from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:  # str(exc) may quote the URL: keep only the error's type
        raise AlertError(f"alert webhook {redact(url)}: {type(exc).__name__}") from None
    if not 200 <= response.status_code < 300:
        raise AlertError(f"alert webhook {redact(url)} answered HTTP {response.status_code}")
    return response.status_code


def _cut(text: str, limit: int) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
