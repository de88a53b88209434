"""Extraction edge: get a source's raw payloads from a snapshot folder (or, via landing, from a past day)."""

from __future__ import annotations

from pathlib import Path

from eujp.errors import ExtractError
from eujp.landing import FileDigests, RawPayload
from eujp.sources import Source

# Files a snapshot folder may hold beside the sources' files without being named as unread: hidden files (an
# editor's or a file manager's) and a README of the folder.
_NOT_DATA = (".", "README")


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


def unread_snapshot_files(snapshot_dir: Path, sources: list[Source] | tuple[Source, ...]) -> list[str]:
    """The names of the files in `snapshot_dir` that no source of `sources` reads: named otherwise than every
    pattern (a source's data and labels files, `read_snapshot`), such a file is not loaded, and nothing else would
    say so (a Comext file downloaded as `comext_DS-045409_...csv` beside the `comext_ds045409*.csv` the source
    reads). Hidden files and a README are not counted."""
    read = {p for pattern in snapshot_patterns(sources) for p in snapshot_dir.glob(pattern)}
    return sorted(p.name for p in snapshot_dir.iterdir()
                  if p.is_file() and p not in read and not p.name.startswith(_NOT_DATA))


def snapshot_patterns(sources: list[Source] | tuple[Source, ...]) -> list[str]:
    """The file name patterns `read_snapshot` reads for `sources`: each one's data files, then its labels'."""
    return [s.snapshot_glob for s in sources] + [s.labels.snapshot_glob for s in sources if s.labels is not None]
