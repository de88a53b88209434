"""Extraction edge: get a source's raw payloads from a snapshot folder (or, via landing, from a past day)."""

from __future__ import annotations

from pathlib import Path

from eujp.errors import ExtractError
from eujp.landing import FileDigests, RawPayload
from eujp.sources import Source


def read_snapshot(source: Source, snapshot_dir: Path, digests: FileDigests | None = None) -> list[RawPayload]:
    """Every file in `snapshot_dir` matching the source's glob, sorted by name; `digests`: the sha256s of files
    hashed before, by stat (a file unchanged since is not read to tell it is)."""
    if not snapshot_dir.is_dir():
        raise ExtractError(f"snapshot folder {snapshot_dir} does not exist")
    files = sorted(p for p in snapshot_dir.glob(source.snapshot_glob) if p.is_file())
    if not files:
        raise ExtractError(
            f"{source.name}: no file matching {source.snapshot_glob!r} in {snapshot_dir} "
            f"(expected {source.wire_format})"
        )
    payloads = [RawPayload.from_file(source.name, p, digests=digests) for p in files]  # read when landed, parsed
    if source.labels is not None:  # e.g. Comext's product codelist (an excerpt in the bundled snapshot)
        payloads += [RawPayload.from_file(source.name, p, kind=source.labels.kind, digests=digests)
                     for p in sorted(snapshot_dir.glob(source.labels.snapshot_glob)) if p.is_file()]
    return payloads
