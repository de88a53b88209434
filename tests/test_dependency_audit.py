"""The CI dependency audit (.ci/dependency_audit.py, `make audit`): a known vulnerability fails CI; an audit that
could not check everything is never reported as clean, and fails CI only with EUJP_AUDIT_STRICT=1."""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
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


FAKE_PIP_AUDIT = """#!{python}
import json, os, sys
args = sys.argv[1:]
open(os.environ["FAKE_ARGS"], "w").write(json.dumps(args))
report = os.environ.get("FAKE_REPORT")
if report is None:
    sys.exit(1)  # like a crash before any report
open(args[args.index("--output") + 1], "w").write(report)
sys.exit(1 if '"vulns": [{{' in report else 0)
"""


def run_script(tmp_path, report: dict | None, *, strict=False, args=("requirements.lock", "requirements-dev.lock")):
    fake = tmp_path / "pip-audit"
    fake.write_text(FAKE_PIP_AUDIT.format(python=sys.executable))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    env = {**os.environ, "PIP_AUDIT": str(fake), "FAKE_ARGS": str(tmp_path / "args.json")}
    env.pop("FAKE_REPORT", None)
    env.pop("EUJP_AUDIT_STRICT", None)
    if report is not None:
        env["FAKE_REPORT"] = json.dumps(report)
    if strict:
        env["EUJP_AUDIT_STRICT"] = "1"
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    return proc, json.loads((tmp_path / "args.json").read_text())


def test_the_script_audits_every_lock_file_without_installing_anything(tmp_path):
    proc, argv = run_script(tmp_path, {"dependencies": [CLEAN], "fixes": []},
                            args=("requirements.lock", "requirements-dev.lock", "--ignore-vuln", "PYSEC-0000-1"))
    assert proc.returncode == 0, proc.stderr
    assert "--disable-pip" in argv and argv[argv.index("--vulnerability-service") + 1] == "pypi"
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--requirement"] == ["requirements.lock",
                                                                                 "requirements-dev.lock"]
    assert argv[argv.index("--ignore-vuln") + 1] == "PYSEC-0000-1"


def test_a_vulnerability_fails_the_script(tmp_path):
    proc, _ = run_script(tmp_path, {"dependencies": [CLEAN, VULNERABLE], "fixes": []})
    assert proc.returncode == 1 and "VULNERABLE urllib3 2.0.0: GHSA-34jh-p97f-mpxf" in proc.stderr


@pytest.mark.parametrize(("strict", "code"), [(False, 0), (True, 2)])
def test_a_pip_audit_that_produced_no_report_is_reported_as_not_run(tmp_path, strict, code):
    proc, _ = run_script(tmp_path, None, strict=strict)
    assert proc.returncode == code
    assert "DEPENDENCY AUDIT DID NOT RUN: pip-audit exited 1 without a report" in proc.stderr


def test_make_audit_and_ci_call_the_script():
    makefile = (REPO / "Makefile").read_text()
    target = makefile[makefile.index("\naudit:"):].split("\n\n")[0]
    assert ".ci/dependency_audit.py requirements.lock requirements-dev.lock" in target
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in ci and "make audit" in ci
