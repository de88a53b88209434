"""The server-side failure alert (flows/automations.py) against a real `prefect server start`.

The server runs on a free 127.0.0.1 port with a temporary PREFECT_HOME and its triggers service on (in
Prefect 3.9 PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED switches both the reactive triggers and the actions
service that sends notifications; services the test does not need are off). The webhook is a receiver on
127.0.0.1 started by the test. Checked:

- `python -m flows.automations`, run twice as infra/docker-compose.yml's one-off `alerts` service runs it,
  leaves one automation and one notification block, and never prints the webhook's secret path;
- a flow run of eujp-daily set to Crashed through the API (no worker, no served process) makes the server
  post a notification naming the flow run, its state and its message; a crashed run of another flow does
  not;
- without a webhook the setup changes nothing; `--remove` deletes the automation and the block.

Every wait is bounded; the server's whole process group is stopped at the end.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from support import local_http
from support.processes import client_env, free_port, prefect_server, wait_for

from flows.automations import AUTOMATION_NAME, BLOCK_NAME, EVENTS

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TOKEN = "AUT0MATION-T0KEN-5c1d"  # the secret part of the webhook URL: must never be printed

pytestmark = pytest.mark.timeout(480)


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory):
    """`prefect server start` with the triggers/actions services; yields (api url, env for clients)."""
    home = tmp_path_factory.mktemp("prefect-home-automation")
    port = free_port()
    env = client_env(home)
    server_env = env | {
        "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "true",  # reactive triggers + actions (notifications)
        "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED": "true",
        "PREFECT_UI_URL": f"http://127.0.0.1:{port}",  # links in the notification
        "PREFECT_UI_ENABLED": "false",
        # not needed here: less work for a shared 2-core machine
        **{f"PREFECT_SERVER_SERVICES_{name}_ENABLED": "false" for name in (
            "SCHEDULER", "LATE_RUNS", "FOREMAN", "PAUSE_EXPIRATIONS", "CANCELLATION_CLEANUP", "REPOSSESSOR",
            "DB_VACUUM")},
    }
    with prefect_server(home, server_env, port=port, startup_timeout=150) as url:
        yield url, env | {"PREFECT_API_URL": url}, home / "server.log"


@contextmanager
def api(url: str):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: url}), get_client(sync_client=True) as client:
        yield client


def setup_alerts(env: dict, *args: str) -> subprocess.CompletedProcess:
    """`python -m flows.automations`, as the compose one-off service runs it."""
    return subprocess.run([sys.executable, "-m", "flows.automations", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=180, start_new_session=True, check=False)


def crashed_run(client, flow_name: str, message: str):
    """A flow run of `flow_name` that started and then crashed, as a dead worker process leaves it (the
    state is set through the API, forced: nothing runs the flow)."""
    from prefect import flow
    from prefect.states import Crashed, Running

    @flow(name=flow_name)
    def placeholder():  # only its name is used: the run is created, never executed
        return None

    run = client.create_flow_run(placeholder, name=f"crash-{uuid.uuid4().hex[:8]}")
    client.set_flow_run_state(run.id, Running(), force=True)
    result = client.set_flow_run_state(run.id, Crashed(message=message), force=True)
    assert result.state is not None and result.state.is_crashed(), result
    return run


def test_automation_is_idempotent_and_fires_on_a_crashed_run(prefect_api):
    url, env, server_log = prefect_api
    with local_http.Receiver(f"/services/T000/B000/{TOKEN}") as rx:
        # 1. the setup twice: one automation, one block, the URL never printed
        outputs = []
        for expected in ("created", "updated"):
            done = setup_alerts(env | {"EUJP_ALERT_WEBHOOK_URL": rx.url})
            outputs.append(done.stdout + done.stderr)
            assert done.returncode == 0, done.stderr[-3000:]
            assert f"automation {AUTOMATION_NAME!r} {expected}" in done.stdout, done.stdout
        assert not any(TOKEN in out for out in outputs), outputs
        assert "http://127.0.0.1/" in outputs[0]  # the webhook is named by scheme and host only

        with api(url) as client:
            automations = client.read_automations_by_name(AUTOMATION_NAME)
            assert len(automations) == 1, automations
            assert [a.name for a in client.read_automations()].count(AUTOMATION_NAME) == 1
            automation = automations[0]
            assert automation.enabled and set(automation.trigger.expect) == set(EVENTS)
            blocks = [b for b in client.read_block_documents(include_secrets=False) if b.name == BLOCK_NAME]
            assert len(blocks) == 1, [b.name for b in blocks]
            (action,) = automation.actions
            assert action.type == "send-notification" and action.block_document_id == blocks[0].id
            # the URL is only in the block's secret values, which the API returns obfuscated
            stored = json.dumps(blocks[0].data, default=str)
            assert TOKEN not in stored and blocks[0].data["url"] == "{{webhook_url}}", stored

            # 2. crashed runs, set through the API: another flow's (must not alert), then eujp-daily's
            other = crashed_run(client, "not-an-eujp-flow", "unrelated crash")
            ours = crashed_run(client, "eujp-daily", "worker process exited with code -9 (test)")

        def notified():
            return [body for path, body in rx.posts if ours.name in body.get("text", "")]

        try:
            (body,) = wait_for(notified, 90, "the automation's notification of the crashed run", interval=0.5)
        except AssertionError:
            raise AssertionError(f"no notification; posts: {rx.posts}; server log: "
                                 f"{server_log.read_text()[-4000:]}") from None
        text = body["text"]
        assert f"eujp-daily: flow run '{ours.name}' Crashed" in text, text
        assert str(ours.id) in text and "worker process exited with code -9 (test)" in text, text
        assert f"/runs/flow-run/{ours.id}" in text, text  # the link to the run in the UI
        time.sleep(3)  # the other run crashed first: its notification, if any, would be here by now
        assert all(other.name not in b.get("text", "") for _, b in rx.posts), rx.posts
        assert all(path == f"/services/T000/B000/{TOKEN}" for path, _ in rx.posts)
        assert len(notified()) == 1, rx.posts

    # 3. no webhook configured: nothing changes, exit 0 with a warning
    done = setup_alerts(env)
    assert done.returncode == 0 and "no webhook configured" in done.stderr, done.stderr[-3000:]
    with api(url) as client:
        assert len(client.read_automations_by_name(AUTOMATION_NAME)) == 1

    # 4. --remove deletes the automation and its block
    done = setup_alerts(env, "--remove")
    assert done.returncode == 0 and "removed" in done.stdout, done.stderr[-3000:]
    with api(url) as client:
        assert client.read_automations_by_name(AUTOMATION_NAME) == []
        assert BLOCK_NAME not in [b.name for b in client.read_block_documents(include_secrets=False)]
