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

from eujp.errors import ExtractError
from eujp.storage import ObjectStore


@dataclass
class RawPayload:
    """Bytes exactly as a source answered, with where and when they came from."""

    source: str
    name: str  # file name or request description
    data: bytes
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    fetched_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @cached_property
    def sha256(self) -> str:
        """Computed once: landing and the input checksum ask for it several times (1 GB of Comext per year)."""
        return hashlib.sha256(self.data).hexdigest()


def raw_key(source: str, day: date, sha256: str, ext: str) -> str:
    return f"raw/{source}/{day.isoformat()}/{sha256}.{ext}"


def land(store: ObjectStore, payload: RawPayload, day: date, ext: str) -> str:
    """Store the payload (once) and its metadata; return the payload's key."""
    key = raw_key(payload.source, day, payload.sha256, ext)
    if not store.exists(key):
        store.put_bytes(key, payload.data)
    meta_key = key.rsplit(".", 1)[0] + ".meta.json"
    if not store.exists(meta_key):
        meta = {
            "source": payload.source,
            "name": payload.name,
            "url": payload.url,
            "headers": payload.headers,
            "fetched_at": payload.fetched_at,
            "sha256": payload.sha256,
            "size": len(payload.data),
            "ext": ext,
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
            RawPayload(source, meta["name"], data, meta["url"], meta.get("headers", {}), meta["fetched_at"])
        )
    return sorted(payloads, key=lambda p: (p.fetched_at, p.name))


def landed_days(store: ObjectStore, source: str) -> list[date]:
    days = {k.split("/")[2] for k in store.list_keys(f"raw/{source}")}
    return sorted(date.fromisoformat(d) for d in days)
