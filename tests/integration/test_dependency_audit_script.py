"""The CI dependency audit script (.ci/dependency_audit.py) in a child process, with a fake pip-audit: every lock
file is audited without installing anything; a vulnerability fails; no report is reported as not run. Its
decisions: tests/unit/test_dependency_audit.py."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from unit.test_dependency_audit import CLEAN, VULNERABLE

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / ".ci" / "dependency_audit.py"


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
