"""The CI dependency audit (.ci/dependency_audit.py, `make audit`): a known vulnerability fails CI; an audit that
could not check everything is never reported as clean, and fails CI only with EUJP_AUDIT_STRICT=1. The script
run with a fake pip-audit: tests/integration/test_dependency_audit_script.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / ".ci" / "dependency_audit.py"
_spec = importlib.util.spec_from_file_location("dependency_audit", SCRIPT)
audit = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(audit)

CLEAN = {"name": "boto3", "version": "1.44.8", "vulns": []}
VULNERABLE = {"name": "urllib3", "version": "2.0.0", "vulns": [
    {"id": "GHSA-34jh-p97f-mpxf", "fix_versions": ["2.0.7"], "aliases": ["CVE-2023-45803"], "description": "..."}]}
UNCHECKED = {"name": "polars", "skip_reason": "Dependency not found on PyPI and could not be audited: polars (2.1.0)"}


@pytest.mark.parametrize(("deps", "strict", "code", "last_line"), [
    ([CLEAN], False, 0, "dependency audit passed: 1 locked dependencies checked, no known vulnerabilities"),
    ([CLEAN, VULNERABLE], False, 1, "dependency audit FAILED: 1 vulnerable dependencies among 2 checked"),
    ([VULNERABLE, UNCHECKED], False, 1, "dependency audit FAILED: 1 vulnerable dependencies among 1 checked"),
    ([CLEAN, UNCHECKED], False, 0,
     "NOT failing the build (EUJP_AUDIT_STRICT is not set): 1 checked, none vulnerable; the rest were NOT checked"),
    ([UNCHECKED], False, 0, "NOT failing the build (EUJP_AUDIT_STRICT is not set): NONE was checked"),
    ([CLEAN, UNCHECKED], True, 2, "failing: EUJP_AUDIT_STRICT=1 and the audit is incomplete"),
    ([], True, 2, "dependency audit found no dependencies in the lock files: nothing was checked"),
])
def test_decisions(deps, strict, code, last_line):
    got, lines = audit.decide({"dependencies": deps, "fixes": []}, strict=strict)
    assert (got, lines[-1]) == (code, last_line)
    if any(d.get("vulns") for d in deps):
        assert "VULNERABLE urllib3 2.0.0: GHSA-34jh-p97f-mpxf (CVE-2023-45803); fixed in 2.0.7" in lines
    if UNCHECKED in deps:
        assert any(line.startswith("DEPENDENCY AUDIT INCOMPLETE: 1 of") for line in lines)
        assert not any("no known vulnerabilities" in line for line in lines)


def test_make_audit_and_ci_call_the_script():
    makefile = (REPO / "Makefile").read_text()
    target = makefile[makefile.index("\naudit:"):].split("\n\n")[0]
    assert ".ci/dependency_audit.py requirements.lock requirements-dev.lock" in target
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in ci and "make audit" in ci
