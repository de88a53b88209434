"""For the tests that stop a run between its prepare and its load: the streamed sources spill in small chunks,
the system's temporary folder is redirected (nothing may be spilled there: a run spills beside its warehouse,
Settings.spill_dir), and the load step is replaced by one that records the spilled chunk folders it finds and
raises."""

from __future__ import annotations

import tempfile
from pathlib import Path


def fail_the_load_after_spilling(monkeypatch, tmp_path: Path, flow_module,
                                 spill_root: Path) -> tuple[Path, list[list[str]]]:
    """Make `flow_module.load_audit_promote` raise; `spill_root`: where the run spills (its Settings.spill_dir).
    Returns (the redirected temporary folder, the names of the spill folders of valid rows under `spill_root`
    when the load was called, one list per call)."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    monkeypatch.setenv("EUJP_BATCH_ROWS", "40")  # the Comext payloads become several chunks
    seen: list[list[str]] = []

    def load_fails(settings, batches, countries, **_):
        assert settings.spill_dir == spill_root
        seen.append(sorted(p.name for p in spill_root.glob("eujp-*-valid-*")))
        raise RuntimeError("the staging volume went away")

    monkeypatch.setattr(flow_module, "load_audit_promote", load_fails)
    return temporary, seen
