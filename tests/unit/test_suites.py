"""The values a suite shares with its source's transform (eujp.suites): written once, as the transform's
constants, and restated by the suite file, which must say them."""

from __future__ import annotations

import dataclasses
import json
from datetime import date

import pytest

from eujp import suites
from eujp.sources import SOURCES, security_events
from transforms.common import LAST_DATE, between, matches, one_of


def test_every_suite_says_the_values_its_transform_checks():
    """`python -m eujp.suites --check` passes: each rule a transform checks row by row (Source.suite_rules) is the
    matching critical expectation of its table's suite, with the same values."""
    assert suites.stale() == []
    assert suites.main(["--check"]) == 0
    assert all(source.suite_rules for source in SOURCES)  # every fact source shares some of its suite's rules


def test_a_changed_constant_rewrites_its_suite_in_the_form_gx_writes():
    source = dataclasses.replace(security_events.SOURCE, suite_rules=(
        between("event_date", date(1950, 1, 1), LAST_DATE), matches("event_type", r"^[a-z]+$"),
        one_of("date_precision", ("day", "year"))))
    [(path, text)] = suites.stale([source])
    assert path == suites.suite_file(security_events.SOURCE)
    written = {(e["type"], e["kwargs"]["column"]): e["kwargs"] for e in json.loads(text)["expectations"]
               if e["severity"] == "critical" and "column" in e["kwargs"]}
    assert written[("expect_column_values_to_be_between", "event_date")] == {
        "column": "event_date", "min_value": "1950-01-01T00:00:00", "max_value": "2100-12-31T00:00:00"}
    assert written[("expect_column_values_to_match_regex", "event_type")]["regex"] == "^[a-z]+$"
    assert written[("expect_column_values_to_be_in_set", "date_precision")]["value_set"] == ["day", "year"]
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
    # the rest of the file is untouched
    old = json.loads(path.read_text(encoding="utf-8"))
    assert len(json.loads(text)["expectations"]) == len(old["expectations"])


def test_a_rule_without_its_critical_expectation_is_an_error():
    """A transform's rule must stay the suite's gate too: one that names no critical expectation (or a warning
    one only) is refused, naming it."""
    lost = dataclasses.replace(security_events.SOURCE, suite_rules=(one_of("event_type", ("agreement",)),))
    with pytest.raises(suites.SuiteRuleError, match="0 critical expect_column_values_to_be_in_set on 'event_type'"):
        suites.stale([lost])
