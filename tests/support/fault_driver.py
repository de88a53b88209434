"""Child process for tests/e2e/test_faults.py: runs the daily flow with a fault injected from outside.

There is no fault-injection hook in the production code. This driver patches a function of the pipeline in
its own process (e.g. `eujp.pipeline.upsert_fact`) so that the run pauses at a known point, and the test then
SIGKILLs it or starts a second run. It can also set up mounts first (a tiny tmpfs for a full disk, a read-only
remount), when started in a private mount namespace (`unshare --mount`).

    python tests/support/fault_driver.py SPEC.json

SPEC: {"runs": [{"name": str,
                 "setup": [[argv...], ...],           # commands run first (mount, cp, ...)
                 "flow": {daily_flow keyword arguments},
                 "pause": {"target": "module:attr[.attr]", "match": "substring of repr(args)" | null,
                           "ready": path, "release": path | null, "max_seconds": float} | null,
                 "inspect": [paths],                      # folders listed after the run
                 "hash": [paths],                         # files hashed before and after the run
                 "fingerprint": [paths]}]}                # warehouses read (rows, hash of every table) before/after

Prints one JSON line per run: {"name", "state", "message", "listing": {path: [names]},
"hash_before": {path: sha256 | null}, "hash_after": {...}, "fingerprint_before": {path: {table: [rows, md5]}},
"fingerprint_after": {...}}.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def _pause(spec: dict) -> None:
    Path(spec["ready"]).write_text(str(os.getpid()))
    deadline = time.monotonic() + float(spec.get("max_seconds", 120))
    release = spec.get("release")
    while time.monotonic() < deadline:
        if release and Path(release).exists():
            return
        time.sleep(0.05)
    raise RuntimeError(f"fault driver: paused at {spec['target']} and never released")


def _install_pause(spec: dict) -> None:
    module_name, _, attr_path = spec["target"].partition(":")
    owner = importlib.import_module(module_name)
    *parents, name = attr_path.split(".")
    for part in parents:
        owner = getattr(owner, part)
    original = getattr(owner, name)
    match = spec.get("match")
    fired = []

    def paused(*args, **kwargs):
        result = original(*args, **kwargs)
        if not fired and (match is None or match in repr(args) + repr(kwargs)):
            fired.append(True)
            _pause(spec)
        return result

    setattr(owner, name, paused)


def _listing(paths: list[str]) -> dict[str, list[str]]:
    out = {}
    for p in paths:
        path = Path(p)
        out[p] = sorted(x.name for x in path.iterdir()) if path.is_dir() else []
    return out


def _hashes(paths: list[str]) -> dict[str, str | None]:
    return {p: hashlib.sha256(Path(p).read_bytes()).hexdigest() if Path(p).is_file() else None for p in paths}


def _fingerprints(paths: list[str]) -> dict[str, dict | None]:
    """Per warehouse: rows and an md5 of the sorted rows of every table, read-only (equal data, equal
    fingerprints, whatever DuckDB left in the file's free blocks)."""
    import duckdb

    out: dict[str, dict | None] = {}
    for p in paths:
        if not Path(p).is_file():
            out[p] = None
            continue
        with duckdb.connect(p, read_only=True) as conn:
            tables = [r[0] for r in conn.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
            out[p] = {t: list(conn.execute(
                f"SELECT count(*), md5(coalesce(string_agg(t::VARCHAR, '|' ORDER BY t::VARCHAR), '')) "
                f'FROM "{t}" AS t').fetchone()) for t in tables}
    return out


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    from flows.daily import daily_flow

    for run in spec["runs"]:
        for argv in run.get("setup", []):
            subprocess.run(argv, check=True, capture_output=True, timeout=60)
        if run.get("pause"):
            _install_pause(run["pause"])
        before = _hashes(run.get("hash", []))
        fingerprint_before = _fingerprints(run.get("fingerprint", []))
        state = daily_flow(**run["flow"], return_state=True)
        print(json.dumps({"name": run["name"], "state": state.type.value, "message": state.message,
                          "listing": _listing(run.get("inspect", [])), "hash_before": before,
                          "hash_after": _hashes(run.get("hash", [])), "fingerprint_before": fingerprint_before,
                          "fingerprint_after": _fingerprints(run.get("fingerprint", []))}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
