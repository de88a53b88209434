"""The values a table's suite shares with its source's transform, written into the suite from the transform.

A critical expectation on a row's own values (an allowed set, a range, a regex) that the suite alone checked
blocked the whole batch for one row. The transforms check those rules themselves, row by row, and reject the
rows that break them with a reason (transforms.common.SuiteRule); the suite keeps the rule as the gate behind
them. The values are written once, as the transform's constants (`Source.suite_rules`); this module writes
them into the matching critical expectation of expectations/<table>.json, so the two cannot drift:

    python -m eujp.suites            rewrite the suites' shared values (`make docs`)
    python -m eujp.suites --check    rewrite nothing; name each stale value and exit 1 (tests/unit/test_suites.py)

A rule matches the one critical expectation of its type on its column (with a row condition when the rule
gives one); a rule that matches none, or several, is an error: the suite must keep the gate.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eujp.sources import SOURCES
from eujp.sources.base import Source
from transforms.common import SuiteRule


class SuiteRuleError(ValueError):
    """A source's rule names no critical expectation of its suite, or several."""


def suite_value(value: Any) -> Any:
    """A rule's value as GX writes it in a suite file: a date as a datetime string, a number as a float (GX
    stores a bound as a float), a tuple as a list."""
    if isinstance(value, Mapping):
        return {k: suite_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [suite_value(v) for v in value]
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return f"{value.isoformat()}T00:00:00"
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _merged(kwargs: Mapping[str, Any], shared: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(kwargs)
    for key, value in shared.items():
        out[key] = _merged(out.get(key) or {}, value) if isinstance(value, Mapping) else value
    return out


def _target(suite: dict, rule: SuiteRule) -> dict:
    conditioned = "row_condition" in rule.kwargs
    found = [e for e in suite["expectations"]
             if e.get("severity") == "critical" and e["type"] == rule.expectation
             and e["kwargs"].get("column") == rule.column and ("row_condition" in e["kwargs"]) == conditioned]
    if len(found) != 1:
        raise SuiteRuleError(f"suite {suite.get('name')}: {len(found)} critical {rule.expectation} on "
                             f"{rule.column!r}{' with a row condition' if conditioned else ''} for the transform's "
                             "rule; exactly one must hold it")
    return found[0]


def with_rules(suite: dict, rules: Sequence[SuiteRule]) -> dict:
    """A copy of `suite` (a suite file's JSON) whose critical expectations say the rules' values."""
    suite = json.loads(json.dumps(suite))
    for rule in rules:
        target = _target(suite, rule)
        target["kwargs"] = _merged(target["kwargs"], suite_value(rule.kwargs))
    return suite


def suite_text(suite: dict) -> str:
    """A suite file's text: what GX's ExpectationSuiteSchema().dumps(indent=2, sort_keys=True) writes."""
    return json.dumps(suite, indent=2, sort_keys=True) + "\n"


def suite_file(source: Source) -> Path:
    from eujp.validate import suite_path

    return suite_path(source.table.name)


def stale(sources: Sequence[Source] = SOURCES) -> list[tuple[Path, str]]:
    """(suite file, its text with the rules' values) of every suite that does not say them yet."""
    out = []
    for source in sources:
        if not source.suite_rules:
            continue
        path = suite_file(source)
        old = path.read_text(encoding="utf-8")
        new = suite_text(with_rules(json.loads(old), source.suite_rules))
        if new != old:
            out.append((path, new))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eujp.suites", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="name each suite that does not say its transform's "
                        "values and exit 1; rewrite nothing")
    args = parser.parse_args(argv)
    changed = stale()
    for path, text in changed:
        if args.check:
            print(f"{path}: stale (run python -m eujp.suites)", file=sys.stderr)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"{path}: rewritten")
    return 1 if changed and args.check else 0


if __name__ == "__main__":
    raise SystemExit(main())
