"""The domain subflows' settings (flows/domains.py): they run without flow-run heartbeats of their own."""

from __future__ import annotations

from prefect.context import get_settings_context
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

from flows.domains import without_heartbeats


def test_without_heartbeats_turns_them_off_for_the_block_from_one_copy_of_the_run_s_settings():
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 60}):
        outer = get_settings_context().settings
        with without_heartbeats():
            first = get_settings_context().settings
        with without_heartbeats():
            second = get_settings_context().settings
        assert get_settings_context().settings is outer and outer.flows.heartbeat_frequency == 60
    assert first.flows.heartbeat_frequency is None
    assert second is first  # the copy made once for the run's settings, not once per domain
    assert first.model_dump(exclude={"flows"}) == outer.model_dump(exclude={"flows"})  # nothing else changed


def test_without_heartbeats_changes_nothing_when_they_are_off_already():
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        off = get_settings_context().settings
        with without_heartbeats():
            assert get_settings_context().settings is off
