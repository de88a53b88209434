"""For the tests that stop a run between its prepare and its load: the temporary folder is redirected, the
streamed sources spill in small chunks, and the load step is replaced by one that records the spilled chunk
folders it finds and raises."""

from __future__ import annotations

import tempfile
from pathlib import Path


def fail_the_load_after_spilling(monkeypatch, tmp_path: Path, flow_module) -> tuple[Path, list[list[str]]]:
    """Make `flow_module.load_audit_promote` raise; returns (the temporary folder, the names of the spill
    folders of valid rows it saw there when it was called, one list per call)."""
    spill_root = tmp_path / "tmp"
    spill_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spill_root))
    monkeypatch.setenv("EUJP_BATCH_ROWS", "40")  # the Comext payloads become several chunks
    seen: list[list[str]] = []

    def load_fails(settings, batches, countries, **_):
        seen.append(sorted(p.name for p in spill_root.glob("eujp-*-valid-*")))
        raise RuntimeError("the staging volume went away")

    monkeypatch.setattr(flow_module, "load_audit_promote", load_fails)
    return spill_root, seen
