"""Alerts delivered to a webhook receiver on 127.0.0.1 (tests/support/local_http.py): the JSON posted, failures
bounded in time and never naming the secret URL, and the flows' failure hook posting without raising. The alert
itself (payload, failed tasks): tests/unit/test_ops.py."""

from __future__ import annotations

import logging
import time
from types import SimpleNamespace

import pytest
from support import local_http
from unit.test_ops import TOKEN, FakeRun, FakeState

from eujp.alerts import AlertError, post_alert, redact


class Receiver(local_http.Receiver):
    def __init__(self, status=200, delay=0.0):
        super().__init__(f"/services/T000/B000/{TOKEN}", status=status, delay=delay)


def test_post_alert_delivers_json_to_the_webhook():
    with Receiver() as rx:
        assert post_alert(rx.url, {"text": "hello"}) == 200
    assert rx.posts == [(f"/services/T000/B000/{TOKEN}", {"text": "hello"})]


@pytest.mark.parametrize("case", ["http_500", "hang", "refused", "not_http"])
def test_post_alert_failures_are_bounded_and_never_name_the_secret_url(case):
    started = time.monotonic()
    if case == "refused":
        with Receiver() as rx:
            url = rx.url
        with pytest.raises(AlertError) as err:
            post_alert(url, {"text": "x"}, timeout=2)
    elif case == "not_http":
        with pytest.raises(AlertError) as err:
            post_alert(f"file:///tmp/{TOKEN}", {"text": "x"})
    else:
        status, delay = (500, 0.0) if case == "http_500" else (200, 3.0)
        with Receiver(status=status, delay=delay) as rx, pytest.raises(AlertError) as err:
            post_alert(rx.url, {"text": "x"}, timeout=0.5)
    assert time.monotonic() - started < 6
    assert TOKEN not in str(err.value) and "/services/" not in str(err.value)
    assert {"http_500": "HTTP 500", "hang": "no answer within 0.5 s", "refused": "ConnectError",
            "not_http": "only http(s)"}[case] in str(err.value)
    assert redact("https://hooks.slack.com/services/T/B/" + TOKEN) == "https://hooks.slack.com/…"


@pytest.mark.parametrize(("path", "shown"), [(f"/services/T000/B000/{TOKEN}", "/services/***"),
                                             (f"/hook?token={TOKEN}", "/hook?***")])
def test_no_log_record_shows_the_webhooks_token_at_debug(path, shown, caplog, capfd):
    """An operator's DEBUG logging (the root logger at DEBUG, as PREFECT_LOGGING_ROOT_LEVEL=DEBUG sets it): httpx
    logs the request's URL at INFO, and httpcore the answer's headers at DEBUG, a redirect's Location among them (a
    webhook given as http:// answers 301 with its https:// URL, as Slack does): that line showed the token, which
    only httpx's line was kept from. Now no record, and no handler's output, shows it; the lines still show the
    host and the path's first segment."""
    import sys

    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    root.addHandler(handler)
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    capfd.readouterr()
    try:
        with local_http.Receiver(path, status=301, redirect="https://hooks.example.com") as rx, \
                pytest.raises(AlertError, match="answered HTTP 301"):
            post_alert(rx.url, {"text": "hello"})
    finally:
        root.removeHandler(handler)
    assert rx.posts == [(path, {"text": "hello"})]
    records, err = caplog.text, capfd.readouterr().err
    for text in (records, err):
        assert "(b'Location', b'https://hooks.example.com" in text  # httpcore's line of the answer's headers
        assert TOKEN not in text
        assert f"HTTP Request: POST {rx.base}{shown} " in text and f"b'https://hooks.example.com{shown}'" in text


def test_notify_failure_posts_and_never_raises_nor_logs_the_url(monkeypatch, caplog):
    from flows import hooks

    hooks.begin_run(None, FakeRun(), None)
    flow, state = SimpleNamespace(name="eujp-daily"), FakeState("Failed", "run r1 failed: boom", data={})
    logger = logging.getLogger("test.alerts")
    with Receiver() as rx:
        monkeypatch.setenv("EUJP_ALERT_WEBHOOK_URL", rx.url)
        hooks.notify_failure(flow, FakeRun(), state, logger=logger)
    assert len(rx.posts) == 1 and "crimson-otter" in rx.posts[0][1]["text"]
    with Receiver(status=403) as rx, caplog.at_level(logging.INFO, logger="test.alerts"):
        monkeypatch.setenv("EUJP_ALERT_WEBHOOK_URL", rx.url)
        hooks.notify_failure(flow, FakeRun(), state, logger=logger)  # does not raise
    assert "HTTP 403" in caplog.text and TOKEN not in caplog.text
    caplog.clear()
    monkeypatch.setenv("EUJP_ALERT_WEBHOOK_URL", "")
    monkeypatch.setenv("EUJP_ALERT_WEBHOOK_BLOCK", "")
    with caplog.at_level(logging.INFO, logger="test.alerts"):
        hooks.notify_failure(flow, FakeRun(), state, logger=logger)
    assert "no webhook configured" in caplog.text


def test_a_failed_lake_maintenance_run_alerts_naming_the_flow_and_its_error(prefect_server, monkeypatch, tmp_path):
    """eujp-lake-maintain had no failure hook: a Failed maintenance run (here: a bad lake setting) posted nothing."""
    from flows.lake import lake_maintain_flow

    monkeypatch.setenv("EUJP_LAKE_CATALOG", "mysql:db=lake")
    with Receiver() as rx:
        monkeypatch.setenv("EUJP_ALERT_WEBHOOK_URL", rx.url)
        state = lake_maintain_flow(warehouse=str(tmp_path / "warehouse.duckdb"), publish_uri=str(tmp_path / "store"),
                                   return_state=True)
    assert state.is_failed()
    assert len(rx.posts) == 1
    text = rx.posts[0][1]["text"]
    assert text.startswith("eujp-lake-maintain: flow run ") and " Failed. " in text
    assert "Failed task: none (the flow itself failed)" in text
    assert "ValueError: EUJP_LAKE_CATALOG must be 'file'" in text


@pytest.mark.parametrize("setting", ["file", "off"])
def test_a_scheduled_maintenance_with_nothing_to_maintain_completes_without_an_alert(prefect_server, monkeypatch,
                                                                                   tmp_path, setting):
    """Before the first run publishes a lake (and with EUJP_LAKE_CATALOG=off, as the worker deployment is
    registered whatever the setting) the weekly maintenance ended Failed and alerted every week."""
    from flows.lake import lake_maintain_flow

    monkeypatch.setenv("EUJP_LAKE_CATALOG", setting)
    with Receiver() as rx:
        monkeypatch.setenv("EUJP_ALERT_WEBHOOK_URL", rx.url)
        state = lake_maintain_flow(warehouse=str(tmp_path / "warehouse.duckdb"), publish_uri=str(tmp_path / "store"),
                                   return_state=True)
    assert state.is_completed(), state
    assert rx.posts == []
    why = state.result()["nothing_to_maintain"]
    if setting == "off":
        assert why == "no lake to maintain: EUJP_LAKE_CATALOG is off (the runs publish no lake)"
    else:
        assert why.startswith("nothing to maintain yet: the lake's catalog ") and \
            why.endswith("does not exist (no run has published one yet)")
    assert not (tmp_path / "store").exists()  # nothing was written