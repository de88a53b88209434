"""benchmarks.incremental_day --keep-work / --again: the day of a kept scenario runs again from the state before
it, as often as asked, each time on that state (not on the previous run's), with real `eujp run` children on a
tiny synthetic history. The tooling's pieces: tests/unit/test_benchmarks.py."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PRODUCTS = "fact_goods_trade_product"

pytestmark = pytest.mark.slow


def _warehouse(folder: Path) -> tuple[int, list[str]]:
    """(the product fact's rows, the run ids etl_runs holds, in order) of the work folder `folder`'s warehouse."""
    with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as conn:
        total = conn.execute(f"SELECT count(*) FROM {PRODUCTS}").fetchone()[0]
        runs = [r for (r,) in conn.execute("SELECT DISTINCT run_id FROM etl_runs ORDER BY run_id").fetchall()]
    return total, runs


def _written(folder: Path, run_id: str) -> int:
    with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute("SELECT rows_written FROM etl_runs WHERE run_id = ? AND table_name = ?",
                            [run_id, PRODUCTS]).fetchone()[0]


def test_a_kept_day_runs_again_from_the_state_before_it(tmp_path):
    scenario = subprocess.run(
        [sys.executable, "-m", "benchmarks.incremental_day", "--rows", "3000", "--day-repeats", "1", "--keep-work",
         "--data-dir", str(tmp_path / "data"), "--results", "-"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=900, check=False)
    kept = re.search(r"--again (\S+)", scenario.stderr)
    work = Path(kept.group(1)) if kept else None
    try:
        assert scenario.returncode == 0, scenario.stdout[-3000:] + scenario.stderr[-3000:]
        assert work is not None and (work / "var-before-the-day").is_dir() and (work / "scenario.json").is_file()
        history, before = _warehouse(work / "var-before-the-day")  # the full run's
        total, _ = _warehouse(work / "var")  # after the day and the day with nothing new
        assert total > history and len(before) == 1

        again = subprocess.run(
            [sys.executable, "-m", "benchmarks.incremental_day", "--again", str(work), "--day-repeats", "2"],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=900, check=False)
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
        assert len(re.findall(r"one more month, again \(\d/2\): [\d.]+ s, exit 0", again.stdout)) == 2
        assert re.search(r"the day again from .*: [\d.]+, [\d.]+ s \(median [\d.]+ s\)", again.stdout)
        ran = [re.search(r"run (\S+): SUCCESS", (work / f"again-{n}.log").read_text(errors="replace")).group(1)
               for n in (1, 2)]
        # the second run went on the state before the day, not on the first's: the warehouse holds the full
        # run and the second run only, which loaded the day's month (as many rows as the scenario's day)
        assert _warehouse(work / "var") == (total, before + [ran[1]])
        assert _written(work / "var", ran[1]) == total - history
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)


def test_again_refuses_a_folder_that_kept_no_day(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "benchmarks.incremental_day", "--again", str(tmp_path)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1
    assert f"{tmp_path} is not a work folder kept by --keep-work" in proc.stderr
    assert list(tmp_path.iterdir()) == []
