"""Raw landing zone: every payload is stored before parsing, immutable and content-addressed.

Layout under the object store:  raw/{source}/{YYYY-MM-DD}/{sha256}.{ext}  plus  {sha256}.meta.json
holding the request URL (or snapshot file), response headers, size and fetch time. Re-landing the same
bytes is a no-op; a day's payloads can be read back to rebuild the warehouse with no network.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cached_property
from pathlib import Path

from eujp.errors import ExtractError
from eujp.storage import ObjectStore


@dataclass
class RawPayload:
    """Bytes exactly as a source answered, with where and when they came from.

    A payload read from a file (a snapshot folder) holds its `path`, not its bytes (`data` is None): `read()`
    reads them when a step needs them (landing, parsing), so a run never holds a year of Comext (~1 GB) in
    memory through parse, validate and load. The file's size and modification time are recorded when the
    payload is made: a file changed while the run reads it raises ExtractError instead of mixing versions."""

    source: str
    name: str  # file name or request description
    data: bytes | None  # None: file-backed, see `path`
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    fetched_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    path: Path | None = None
    # "data" (parsed into the source's fact table), or the kind of a source's label feed (eujp.sources.base.
    # LabelFeed, e.g. Comext's product codelist): landed beside the data, loaded into the feed's table.
    kind: str = "data"
    _stat: tuple[int, int] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.data is None:
            if self.path is None:
                raise ValueError(f"{self.name}: a payload needs its bytes or the file that holds them")
            self._stat = self._file_stat()

    @classmethod
    def from_file(cls, source: str, path: Path, **kwargs) -> RawPayload:
        return cls(source=source, name=path.name, data=None, url=path.resolve().as_uri(), path=path, **kwargs)

    def _file_stat(self) -> tuple[int, int]:
        st = self.path.stat()
        return st.st_size, st.st_mtime_ns

    def _check_file(self) -> None:
        if self._file_stat() != self._stat:
            raise ExtractError(f"{self.source}: {self.path} changed while this run was reading it; run again "
                               "once the file is complete")

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else self._stat[0]

    def read(self) -> bytes:
        """The payload's bytes (read from its file each time for a file-backed payload)."""
        if self.data is not None:
            return self.data
        data = self.path.read_bytes()
        self._check_file()
        return data

    def read_and_hash(self) -> tuple[bytes, str]:
        """The payload's bytes and their sha256, from one read; the digest is kept as `sha256` (a digest taken
        earlier that differs means the file changed in between: ExtractError)."""
        data = self.read()
        if self.data is not None:
            return data, self.sha256
        digest = hashlib.sha256(data).hexdigest()
        if self.__dict__.setdefault("sha256", digest) != digest:
            raise ExtractError(f"{self.source}: {self.path} changed while this run was reading it")
        return data, digest

    @cached_property
    def sha256(self) -> str:
        """Computed once: landing and the input checksum ask for it several times (1 GB of Comext per year).
        A file is hashed as it is read, in blocks."""
        if self.data is not None:
            return hashlib.sha256(self.data).hexdigest()
        with open(self.path, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        self._check_file()
        return digest


def raw_key(source: str, day: date, sha256: str, ext: str) -> str:
    return f"raw/{source}/{day.isoformat()}/{sha256}.{ext}"


def land(store: ObjectStore, payload: RawPayload, day: date, ext: str) -> str:
    """Store the payload (once) and its metadata; return the payload's key."""
    data, digest = payload.read_and_hash()  # the key is the hash of the very bytes stored
    key = raw_key(payload.source, day, digest, ext)
    if not store.exists(key):
        store.put_bytes(key, data)
    del data
    meta_key = key.rsplit(".", 1)[0] + ".meta.json"
    if not store.exists(meta_key):
        meta = {
            "source": payload.source,
            "name": payload.name,
            "url": payload.url,
            "headers": payload.headers,
            "fetched_at": payload.fetched_at,
            "sha256": payload.sha256,
            "size": payload.size,
            "ext": ext,
            "kind": payload.kind,
        }
        store.put_bytes(meta_key, json.dumps(meta, indent=1, sort_keys=True).encode(), "application/json")
    return key


def read_landed(store: ObjectStore, source: str, day: date) -> list[RawPayload]:
    """The payloads landed for a source on a day, in the order they were fetched."""
    prefix = f"raw/{source}/{day.isoformat()}"
    metas = [k for k in store.list_keys(prefix) if k.endswith(".meta.json")]
    if not metas:
        raise ExtractError(f"{source}: nothing was landed under {store.uri}/{prefix}/")
    payloads = []
    for meta_key in metas:
        meta = json.loads(store.get_bytes(meta_key))
        data = store.get_bytes(meta_key.removesuffix(".meta.json") + "." + meta["ext"])
        if hashlib.sha256(data).hexdigest() != meta["sha256"]:
            raise ExtractError(f"{source}: landed payload {meta_key} does not match its sha256")
        payloads.append(
            RawPayload(source, meta["name"], data, meta["url"], meta.get("headers", {}), meta["fetched_at"],
                       kind=meta.get("kind", "data"))
        )
    return sorted(payloads, key=lambda p: (p.fetched_at, p.name))


def landed_days(store: ObjectStore, source: str) -> list[date]:
    days = {k.split("/")[2] for k in store.list_keys(f"raw/{source}")}
    return sorted(date.fromisoformat(d) for d in days)
