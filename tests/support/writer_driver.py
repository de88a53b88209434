"""A writer for tests/integration/test_writer_limit.py, run as a child process:

    python -m support.writer_driver PUBLISH_URI WAREHOUSE WAIT_SECONDS HOLD_SECONDS OUT_JSON GO_FILE

Imports everything, writes OUT_JSON.ready, waits for GO_FILE (so that two writers ask at the same moment),
then holds the writer slot (flows.writers.writer_slot) for HOLD_SECONDS; OUT_JSON says what happened:
{"status": "wrote", "start": t0, "end": t1} or {"status": "locked", "message": ...}."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from eujp.config import Settings
from eujp.lock import RunLocked
from flows.writers import writer_slot


def main(publish_uri: str, warehouse: str, wait: str, hold: str, out: str, go: str) -> int:
    settings = Settings.from_env(publish_uri=publish_uri, warehouse_path=Path(warehouse),
                                 lock_wait_seconds=float(wait))
    Path(out + ".ready").write_text("ready")
    while not Path(go).exists():
        time.sleep(0.05)
    try:
        with writer_slot(settings):
            start = time.time()
            time.sleep(float(hold))
            result = {"status": "wrote", "start": start, "end": time.time()}
    except RunLocked as exc:
        result = {"status": "locked", "message": str(exc), "at": time.time()}
    Path(out).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
