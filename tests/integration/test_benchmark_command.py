"""The benchmark command (benchmarks/run.py) in a child process, on a tiny synthetic snapshot. The tooling
itself: tests/unit/test_benchmarks.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_benchmark_command_runs_end_to_end_on_a_tiny_snapshot(tmp_path):
    """The one command, on 3,000 rows and without `eujp run`: every child runs and RESULTS.md is written."""
    results = tmp_path / "RESULTS.md"
    # what the other benchmarks appended after run.py's section, and the hand-written findings, are kept
    results.write_text("<!-- benchmarks.run -->\n# old\n<!-- findings -->\nkept findings\n<!-- /findings -->\n"
                       "old tables\n<!-- /benchmarks.run -->\n\n## Lake upload\nkept section\n")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--rows", "3000", "--skip", "eujp-run", "--data-dir",
         str(tmp_path / "data"), "--work-dir", str(tmp_path), "--results", str(results)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = results.read_text()
    for stage in ("extract", "parse", "transform", "validate", "load", "revalidate", "audit", "publish"):
        assert f"| {stage} | " in text
    assert "pandas baseline's output equals the polars transform's" in text and "**yes**" in text
    assert "DuckDB read_csv + pivot + INSERT (floor)" in text
    assert "kept findings" in text and "old tables" not in text
    assert text.index("<!-- /benchmarks.run -->") < text.index("## Lake upload\nkept section")
    assert "## Targets (issue 12)" in text
