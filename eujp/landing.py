"""Raw landing zone: every payload is stored before parsing, immutable and content-addressed.

Layout under the object store:  raw/{source}/{YYYY-MM-DD}/{sha256}.{ext}  plus  {sha256}.meta.json
holding the request URL (or snapshot file), response headers, size and fetch time. Re-landing the same
bytes is a no-op (but for an object or a `.meta.json` there that is damaged: `landed_intact`); a day's
payloads can be read back to rebuild the warehouse with no network.

A day may hold several landings of a source (several runs that day, e.g. a morning run and a rerun after a
revision). Each landing (the payloads of one run, in the order they were landed) is recorded in
`{digest}.landing.json` (digest: sha256 of the payloads' sha256s in order) with the time of each run that landed
exactly those payloads, so `read_landed` can give them back in landing order and a replay applies them as the
runs did: a later landing supersedes an earlier one (eujp.stream.transform_landings). Payloads landed by code
that wrote no such record form one landing, first, in the order they were fetched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from functools import cached_property
from pathlib import Path
from typing import TypeVar

from eujp.errors import ChecksumMismatchError, ExtractError, NothingLandedError
from eujp.storage import ObjectStore, is_missing, sha256_file

T, R = TypeVar("T"), TypeVar("R")
log = logging.getLogger("eujp")

DIGESTS_FILE = "snapshot-digests.jsonl"  # beside the warehouse (eujp.pipeline.fetch_payloads)
_DIGESTS_LOCK = threading.Lock()  # module-level: FileDigests travels (pickled) with its payloads


class FileDigests:
    """The sha256 of the snapshot files this machine hashed before, kept in a file by path and by the file's
    size, modification and change times, inode and device: a file whose stat is what it was when hashed is not
    read again (as git's index and rsync tell unchanged files), so a day with nothing new in a snapshot folder
    of 100M Comext rows (9.5 GB) costs a stat per file, not a read of every byte. Any write to a file changes
    its ctime, which no tool can set back. A file changed less than `RACY_NS` before it was hashed is not
    remembered (file times are coarser than writes: a write in the same tick would keep its times, as git's
    "racily clean" entries).

    The file is a journal of JSON lines, one per file hashed, appended as each is hashed (the last line of a
    path wins): remembering costs one short write, whatever the number of files remembered before. Until the
    twentieth session the whole record was rewritten for each file, so landing n snapshot files wrote n²/2
    entries (2,000 files: 13 s of JSON). A line that cannot be read (a run killed in the middle of one, an edit)
    is skipped, and a journal that has grown to more than twice its paths' lines is written again, compacted,
    when it is read; so is one of more than COMPACT_SLACK paths of which some file no longer exists (its lines
    dropped: a stat of each path, ~1 µs a file), so that a folder whose files come and go does not grow it
    for ever. Delete the file to have every file hashed again."""

    RACY_NS = 2_000_000_000
    # lines beyond twice the paths' that a journal may hold before it is compacted; also the paths beyond which a
    # read looks for files deleted since (below it, a few stale lines cost nothing)
    COMPACT_SLACK = 1000

    def __init__(self, path: Path):
        self.path = Path(path)
        self._entries: dict = self._read()

    def _read(self) -> dict:
        try:
            lines = self.path.read_bytes().splitlines()
        except OSError:
            return {}
        entries: dict = {}
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and isinstance(entry.get("path"), str):
                entries[entry["path"]] = entry
        gone = []
        if len(entries) > self.COMPACT_SLACK:  # files deleted since (a snapshot folder's old files)
            gone = [path for path in entries if not os.path.lexists(path)]
            for path in gone:
                del entries[path]
        if gone or len(lines) > 2 * len(entries) + self.COMPACT_SLACK:
            self._compact(entries)
        return entries

    def _compact(self, entries: dict) -> None:
        """Write the journal again with one line per path (atomically; a line another process appends in the
        meantime may be lost, which only costs a file's hash)."""
        tmp = None
        with _DIGESTS_LOCK:
            try:
                fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".part")
                with os.fdopen(fd, "wb") as f:
                    f.writelines(self._line(entry) for entry in entries.values())
                os.replace(tmp, self.path)
            except OSError:
                if tmp is not None:
                    Path(tmp).unlink(missing_ok=True)

    @staticmethod
    def _line(entry: dict) -> bytes:
        return json.dumps(entry, sort_keys=True).encode() + b"\n"

    @staticmethod
    def _stat_key(st: os.stat_result) -> list[int]:
        return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]

    def known(self, file: Path, st: os.stat_result) -> str | None:
        """The file's sha256 when it was hashed with this very stat, else None."""
        entry = self._entries.get(str(Path(file).resolve()))
        if isinstance(entry, dict) and entry.get("stat") == self._stat_key(st):
            digest = entry.get("sha256")
            return digest if isinstance(digest, str) and len(digest) == 64 else None
        return None

    def remember(self, file: Path, st: os.stat_result, digest: str) -> None:
        """Record a file's sha256 for its stat: one line appended to the journal, in one write (a run killed
        in the middle of it leaves a line that is skipped when read)."""
        if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < self.RACY_NS:
            return
        entry = {"path": str(Path(file).resolve()), "stat": self._stat_key(st), "sha256": digest}
        with _DIGESTS_LOCK:
            self._entries[entry["path"]] = entry
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(fd, self._line(entry))
                finally:
                    os.close(fd)
            except OSError:  # e.g. a read-only folder: the digest is only not remembered
                pass


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
    landing: int = 0  # read back from the raw zone: which of the day's landings it belongs to (0 = the first)
    # "data" (parsed into the source's fact table), the kind of a source's label feed (eujp.sources.base.
    # LabelFeed, e.g. Comext's product codelist) or of its coverage statement (CoverageFeed: written by the
    # request plan, not by the service): landed beside the data, loaded into the feed's table.
    kind: str = "data"
    # A file-backed payload's sha256 is taken from here when the file's stat is the one it was hashed with.
    digests: FileDigests | None = field(default=None, repr=False, compare=False)
    # The spool its file was written to (live answers, a replay's objects): kept alive while the payload is.
    spool: PayloadSpool | None = field(default=None, repr=False, compare=False)
    _stat_result: os.stat_result | None = field(default=None, repr=False, compare=False)  # when it was made

    def __post_init__(self) -> None:
        if self.data is None:
            if self.path is None:
                raise ValueError(f"{self.name}: a payload needs its bytes or the file that holds them")
            self._stat_result = self.path.stat()

    @classmethod
    def from_file(cls, source: str, path: Path, **kwargs) -> RawPayload:
        return cls(source=source, name=path.name, data=None, url=path.resolve().as_uri(), path=path, **kwargs)

    def _file_stat(self) -> tuple[int, int]:
        st = self.path.stat()
        return st.st_size, st.st_mtime_ns

    @property
    def _stat(self) -> tuple[int, int]:
        """(size, modification time) of the file when the payload was made."""
        return self._stat_result.st_size, self._stat_result.st_mtime_ns

    def _check_file(self) -> None:
        if self._file_stat() != self._stat:
            raise self._changed()

    def _changed(self) -> ExtractError:
        return ExtractError(f"{self.source}: {self.path} changed while this run was reading it; run again once the "
                            "file is complete")

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
        self.keep_sha256(digest)
        return data, digest

    @property
    def hashed(self) -> bool:
        """Whether `sha256` is known already (computed, read back from `digests`, or kept by `keep_sha256`)."""
        return "sha256" in self.__dict__

    def keep_sha256(self, digest: str) -> None:
        """Keep `digest`, taken from a read of the payload's bytes, as its `sha256` (and in `digests`); a digest
        taken earlier that differs means the file changed in between: ExtractError."""
        if self.__dict__.setdefault("sha256", digest) != digest:
            raise ExtractError(f"{self.source}: {self.path} changed while this run was reading it (or since it "
                               f"was hashed with the same size and times: delete {DIGESTS_FILE} beside the "
                               "warehouse)")
        self._remember(digest)

    def known_sha256(self) -> str | None:
        """A file-backed payload's sha256 from `digests` (no byte read), None when not known for its stat."""
        if self.data is not None or self.digests is None:
            return None
        known = self.digests.known(self.path, self._stat_result)
        return None if known is None else self.__dict__.setdefault("sha256", known)

    def _remember(self, digest: str) -> None:
        if self.data is None and self.digests is not None:
            self.digests.remember(self.path, self._stat_result, digest)

    @cached_property
    def sha256(self) -> str:
        """Computed once: landing and the input checksum ask for it several times (1 GB of Comext per year).
        A file is hashed as it is read, in blocks."""
        if self.data is not None:
            return hashlib.sha256(self.data).hexdigest()
        known = self.known_sha256()
        if known is not None:
            return known
        with open(self.path, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        self._check_file()
        self._remember(digest)
        return digest


def spill_folder(prefix: str, parent: Path | None = None) -> Path:
    """A new folder for spilled files, `prefix` + a random part, under `parent` (made if missing; None: the
    system's temporary folder)."""
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))


class PayloadSpool:
    """A folder of payload bodies written as they arrive (a live service's answers, a replay's landed objects),
    so that a source's payloads are files and not bytes held in memory until they are landed, parsed and
    loaded: a first full load of Comext is thousands of answers, 10-15 GB in all, and only one of them is held
    at a time (the HTTP client writes an answer to its file as it arrives: eujp.http's `body_file`).

    A spooled payload is file-backed (`RawPayload.data` None, `path` its file) with the request's name, URL and
    headers, and its sha256 taken from the bytes written. The folder, `{prefix}*` under `parent` (a run's
    Settings.spill_dir), goes when `discard()` is called (once the source is prepared), else when no payload
    refers to the spool any more or the process exits; a killed run's folder is removed by the next run
    (eujp.warehouse.clean_stale_staging removes every `eujp-*` folder there)."""

    def __init__(self, parent: Path | None, prefix: str) -> None:
        self.folder = spill_folder(prefix, parent)
        self._files = 0
        self._lock = threading.Lock()
        weakref.finalize(self, shutil.rmtree, self.folder, True)

    def _next_path(self) -> Path:
        with self._lock:  # objects of a replay are fetched side by side (read_landed)
            self._files += 1
            return self.folder / f"{self._files:06d}.body"

    def _payload(self, path: Path, digest: str, source: str, name: str, url: str,
                 headers: dict[str, str] | None, fields: dict) -> RawPayload:
        payload = RawPayload(source=source, name=name, data=None, url=url, headers=dict(headers or {}), path=path,
                             spool=self, **fields)
        payload.keep_sha256(digest)
        return payload

    def reserve(self) -> Path:
        """A new file name in the spool, for a body to be written to as it arrives (the HTTP client's
        `body_file`); `adopt` makes it a payload."""
        return self._next_path()

    def adopt(self, path: Path, sha256: str, source: str, name: str, url: str,
              headers: dict[str, str] | None = None, **fields) -> RawPayload:
        """The file `path` of this spool (from `reserve`), already written, whose bytes hash to `sha256`, as a
        file-backed payload."""
        if path.parent != self.folder:
            raise ValueError(f"{path} is not a file of the spool {self.folder}")
        return self._payload(path, sha256, source, name, url, headers, fields)

    def write(self, source: str, name: str, data: bytes, url: str, headers: dict[str, str] | None = None,
              **fields) -> RawPayload:
        """`data` written to a new file of the spool, as a file-backed payload (`fields`: RawPayload's others)."""
        path = self._next_path()
        path.write_bytes(data)
        return self._payload(path, hashlib.sha256(data).hexdigest(), source, name, url, headers, fields)

    def fetch(self, store: ObjectStore, key: str, sha256: str, source: str, name: str, url: str,
              headers: dict[str, str] | None = None, **fields) -> RawPayload:
        """The object `key` of `store` as a file of the spool, checked against `sha256` (ExtractError when it is
        not those bytes), as a file-backed payload."""
        path = self._next_path()
        try:
            store.get_file(key, path)
        except Exception as exc:  # missing or unreadable: named, whatever the store's error
            path.unlink(missing_ok=True)
            raise unreadable(source, store, key, exc) from exc
        if sha256_file(path) != sha256:
            path.unlink(missing_ok=True)
            with contextlib.suppress(Exception):  # the store keeps the digest of what it holds (a folder's record,
                store.stat(key)                  # current as far as its times tell): the next landing repairs it
            raise ExtractError(f"{source}: landed payload {store.uri}/{key} does not match its sha256 (damaged: "
                               "landing the same bytes again writes them over it)")
        return self._payload(path, sha256, source, name, url, headers, fields)

    def discard(self) -> None:
        """Remove the folder and its files now (its payloads can no longer be read)."""
        shutil.rmtree(self.folder, ignore_errors=True)


def discard_spooled(payloads: list[RawPayload]) -> None:
    """Remove the spool folders of `payloads` (those written to one): once their source is prepared, nothing
    reads them again (the raw zone holds the landed copies)."""
    for spool in {id(p.spool): p.spool for p in payloads if p.spool is not None}.values():
        spool.discard()


def raw_prefix(source: str, day: date) -> str:
    return f"raw/{source}/{day.isoformat()}/"


def raw_key(source: str, day: date, sha256: str, ext: str) -> str:
    return f"{raw_prefix(source, day)}{sha256}.{ext}"


# A snapshot file up to this size is landed from memory (one read, hashed and stored from it); a larger one is
# hashed in blocks and stored from its file, so that no payload file is ever held whole (one wide payload).
LAND_WHOLE_BYTES = 256 << 20


def landed_intact(store: ObjectStore, key: str, size: int, sha256: str) -> bool:
    """Whether the object at `key` holds a payload of `size` bytes hashing to `sha256`: its size, and the sha256
    the store keeps for it (S3's metadata; a folder's record, kept with the file and trusted while the file's
    size and mtime are those it was recorded with: eujp.storage.LocalObjectStore), so an unchanged object is not
    read. A same-size object the store keeps no sha256 for is read where the store can hash it (a folder's file
    written by another tool, or changed since: an edit in place, a file cut short and padded) and is damaged
    where it cannot (an S3 object without our metadata). False when there is none, and when it is damaged (a
    warning: the caller lands the bytes again, which its key names)."""
    found = store.stat(key, digest=False)
    if found is None:
        return False
    if found.size == size and not found.sha256:
        found = store.stat(key) or found  # a folder hashes the file (and keeps the digest); S3 has no other
    if found.size == size and found.sha256 == sha256:
        return True
    log.warning("raw-zone object %s/%s is damaged (%d bytes, sha256 %s, expected %d bytes, sha256 %s): replaced "
                "by the payload's bytes", store.uri, key, found.size, found.sha256 or "unknown", size, sha256)
    return False


META_FIELDS = {"sha256": str, "ext": str, "name": str, "url": str, "fetched_at": str}
"""The fields of a payload's `.meta.json` a replay reads (`landed_objects`), and their types."""


def _meta_intact(store: ObjectStore, key: str, payload: RawPayload, ext: str) -> bool:
    """Whether the `.meta.json` at `key` is one this code wrote for the payload's bytes (their sha256 and size,
    `ext`, and the fields a replay reads): False when there is none, and when it is damaged (not JSON, not those:
    a warning, and the caller writes it again). Read in one request; a store's error other than a missing
    object is raised, not taken for damage."""
    try:
        text = store.get_bytes(key)
    except Exception as exc:
        if is_missing(exc):
            return False
        raise
    try:
        meta = json.loads(text)
        intact = (isinstance(meta, dict) and meta.get("sha256") == payload.sha256 and meta.get("ext") == ext
                  and meta.get("size") == payload.size
                  and all(isinstance(meta.get(name), kind) for name, kind in META_FIELDS.items()))
    except ValueError:  # not JSON (UnicodeDecodeError included)
        intact = False
    if not intact:
        log.warning("raw-zone object %s/%s is damaged (not the metadata of the payload %s): written again",
                    store.uri, key, payload.sha256)
    return intact


def land(store: ObjectStore, payload: RawPayload, day: date, ext: str) -> str:
    """Store the payload (once) and its metadata; return the payload's key. A snapshot file whose sha256 is
    known for its stat (`RawPayload.digests`) and already landed that day is not read. An object already at
    the key is checked (`landed_intact`) and replaced when it is damaged, and so is its `.meta.json`."""
    checked: dict[str, bool] = {}

    def there(key: str, digest: str) -> bool:  # each key checked (and a damaged one reported) once
        if key not in checked:
            checked[key] = landed_intact(store, key, payload.size, digest)
        return checked[key]

    known = payload.known_sha256()
    if known is not None and there(key := raw_key(payload.source, day, known, ext), known):
        pass
    elif payload.spool is not None:  # a file this run wrote (a live answer, a replayed object): not copied again
        key = raw_key(payload.source, day, payload.sha256, ext)
        if not there(key, payload.sha256):
            if store.exists(key):  # damaged: written over (a link would keep the damaged file)
                store.put_file(key, payload.path, sha256=payload.sha256)
            else:
                store.adopt_file(key, payload.path, payload.sha256)
    elif payload.data is None and payload.size > LAND_WHOLE_BYTES and not payload.hashed:
        # not hashed yet: stored from the file under the hash the store takes as it reads it (one read)
        payload._check_file()
        try:
            stored, created = store.put_file_addressed(raw_prefix(payload.source, day), f".{ext}", payload.path)
        except ChecksumMismatchError:  # S3: the bytes uploaded are not the bytes hashed
            raise payload._changed() from None
        key = stored.key
        if not created and not there(key, stored.sha256):  # an object already there, damaged
            store.put_file(key, payload.path, sha256=stored.sha256)
            created = True
        try:
            payload._check_file()
        except ExtractError:  # the bytes read may be a mix of two versions: no landing of them is left behind
            if created:
                store.delete([key])
            raise
        payload.keep_sha256(stored.sha256)
    elif payload.data is None and payload.size > LAND_WHOLE_BYTES:  # hashed already, stored from the file
        payload._check_file()
        key = raw_key(payload.source, day, payload.sha256, ext)
        if not there(key, payload.sha256):
            try:  # the store checks what it stored against the hash (the key is the hash of the very bytes stored)
                store.put_file(key, payload.path, sha256=payload.sha256)
                payload._check_file()
            except (ChecksumMismatchError, ExtractError):
                store.delete([key])
                raise payload._changed() from None
    else:  # in memory, or a file small enough to be read once, hashed and stored from memory
        data, digest = payload.read_and_hash()
        key = raw_key(payload.source, day, digest, ext)  # the key is the hash of the very bytes stored
        if not there(key, digest):
            store.put_bytes(key, data, sha256=digest)
        del data
    meta_key = key.rsplit(".", 1)[0] + ".meta.json"
    if not _meta_intact(store, meta_key, payload, ext):
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


LAND_THREADS = 4
"""Threads that land a source's small payloads side by side (`land_many`)."""
LAND_PARALLEL_BYTES = 16 << 20
"""A payload up to this size is landed on one of LAND_THREADS threads; a larger one on the caller's thread, one
at a time, so at most LAND_THREADS x this many bytes of small payloads are held at once."""


def side_by_side(work: Callable[[T], R], items: list[T], *, threads: int = LAND_THREADS, name: str = "eujp-fetch",
                 chosen: Iterable[int] | None = None) -> list[R]:
    """`work(item)` for each item, the results in order: the items at the indices `chosen` (None: all) on
    `threads` threads named `name`, the others on the caller's thread meanwhile, one at a time. For work that
    waits (on the disk, on the network) or runs outside the GIL (polars, DuckDB), where items are many and each
    is small: a replay's requests for its landed objects, the landing of small payloads (`land_many`), the
    counting, scanning and parsing of small payloads (eujp.stream.each_payload). The first error is raised
    once the work under way ends; the items not started are not worked on."""
    chosen = list(range(len(items))) if chosen is None else list(chosen)
    if len(chosen) < 2:
        return [work(item) for item in items]
    results: list = [None] * len(items)
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
    try:
        futures = [(i, pool.submit(work, items[i])) for i in chosen]
        on_threads = set(chosen)
        for i, item in enumerate(items):
            if i not in on_threads:
                results[i] = work(item)
        for i, future in futures:
            results[i] = future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return results


def land_many(store: ObjectStore, payloads: list[RawPayload], day: date, ext_of: Callable[[RawPayload], str]
              ) -> list[str]:
    """`land` each payload (`ext_of(payload)`: its extension); the keys in payload order. The small ones
    (LAND_PARALLEL_BYTES) are landed on LAND_THREADS threads while the large ones are landed one at a time:
    landing a payload is a few writes, each synced to disk, or a few requests to an object store, and a live
    first load or a replay lands thousands of them (2,000 snapshot files of 5,000 rows, from a folder store: 5.1 s
    one by one, 3.7-3.8 s on four threads).
    A payload whose bytes are known to repeat an earlier one's (in memory, a live answer, a file hashed
    before: header-only answers of two slices, say) is landed after the others, so that the object's metadata
    names the first of them, as one by one. The first error is raised once the landings under way end; the
    payloads not started are not landed."""
    small = [i for i, p in enumerate(payloads) if p.size <= LAND_PARALLEL_BYTES]
    on_threads, repeats, seen = [], [], set()
    for i in small:
        payload = payloads[i]
        digest = payload.sha256 if payload.data is not None or payload.hashed else payload.known_sha256()
        if digest is not None and digest in seen:
            repeats.append(i)
            continue
        seen.add(digest)
        on_threads.append(i)
    repeated = set(repeats)
    keys = side_by_side(lambda i: None if i in repeated else land(store, payloads[i], day, ext_of(payloads[i])),
                        list(range(len(payloads))), name="eujp-land", chosen=on_threads)
    for i in repeats:
        keys[i] = land(store, payloads[i], day, ext_of(payloads[i]))
    return keys


LANDING_SUFFIX = ".landing.json"


def unreadable(source: str, store: ObjectStore, key: str, exc: BaseException) -> ExtractError:
    """The error for a raw-zone object that is missing or cannot be read as what it should be, naming it."""
    return ExtractError(f"{source}: raw-zone object {store.uri}/{key} is missing or unreadable "
                        f"({type(exc).__name__}: {exc})")


def read_record(store: ObjectStore, source: str, key: str, *, fields: dict[str, type]) -> dict:
    """The JSON object at `key` (a `.meta.json` or `.landing.json`) with `fields` of their types: ExtractError
    naming the key when it is missing, is not JSON or lacks one."""
    try:
        record = json.loads(store.get_bytes(key))
        if not isinstance(record, dict):
            raise TypeError("not a JSON object")
        for name, kind in fields.items():
            if not isinstance(record.get(name), kind):
                raise TypeError(f"no {kind.__name__} {name!r}")
    except Exception as exc:  # a missing object, a store's error, broken JSON: named
        raise unreadable(source, store, key, exc) from exc
    return record


def record_landing(store: ObjectStore, source: str, day: date, checksums: list[str],
                   at: datetime | None = None) -> str:
    """Record that a run landed `checksums` (its payloads' sha256s, in landing order) for `source` on `day`, at
    `at` (now): one `{digest}.landing.json` per distinct list, holding every time it was landed. Returns its key."""
    if not checksums:
        raise ValueError(f"{source}: a landing needs at least one payload")
    digest = hashlib.sha256("\n".join(checksums).encode()).hexdigest()
    key = f"raw/{source}/{day.isoformat()}/{digest}{LANDING_SUFFIX}"
    record = (read_record(store, source, key, fields={"landed_at": list}) if store.exists(key)
              else {"source": source, "sha256": list(checksums), "landed_at": []})
    record["landed_at"].append((at or datetime.now(UTC)).isoformat(timespec="microseconds"))
    store.put_bytes(key, json.dumps(record, indent=1).encode(), "application/json")
    return key


def landing_order(store: ObjectStore, keys: list[str]) -> list[tuple[str, ...]]:
    """The day's landings (each: its payloads' sha256s, in landing order), oldest first, from the
    `.landing.json` records among `keys`; a landing that repeats the one before it (an unchanged source landed
    again) is given once. A record that cannot be read: ExtractError naming it."""
    events = []
    for key in keys:
        if key.endswith(LANDING_SUFFIX):
            source = key.split("/")[1] if key.count("/") >= 2 else key
            record = read_record(store, source, key, fields={"sha256": list, "landed_at": list})
            try:
                events += [(_timestamp(at), key, tuple(record["sha256"])) for at in record["landed_at"]]
            except (TypeError, ValueError) as exc:  # a time that is not one
                raise unreadable(source, store, key, exc) from exc
    order: list[tuple[str, ...]] = []
    for _, _, checksums in sorted(events):
        if not order or order[-1] != checksums:
            order.append(checksums)
    return order


@dataclass(frozen=True)
class LandedObject:
    """One payload of a day's landing: its landing's number (0 = the first), its key and .meta.json."""

    landing: int
    key: str
    meta: dict

    @property
    def sha256(self) -> str:
        return self.meta["sha256"]


def landed_objects(store: ObjectStore, source: str, day: date) -> list[LandedObject]:
    """The objects landed for a source on a day, landing by landing in the order they landed (see the module's
    docstring), each landing's payloads in the order they were landed; a payload landed by several runs that
    day comes once per landing. Payloads landed before landings were recorded are one landing, the first.
    NothingLandedError when the day holds no payload of the source."""
    prefix = f"raw/{source}/{day.isoformat()}"
    keys = store.list_keys(prefix)
    metas = [k for k in keys if k.endswith(".meta.json")]
    if not metas:
        raise NothingLandedError(f"{source}: nothing was landed under {store.uri}/{prefix}/")
    landed: dict[str, tuple[str, dict]] = {}
    for meta_key, meta in zip(metas, side_by_side(lambda k: read_record(store, source, k, fields=META_FIELDS), metas),
                              strict=True):
        landed[meta["sha256"]] = (meta_key.removesuffix(".meta.json") + "." + meta["ext"], meta)
    order = landing_order(store, keys)
    recorded = {c for landing in order for c in landing}
    unrecorded = tuple(sorted((c for c in landed if c not in recorded),
                              key=lambda c: (landed[c][1]["fetched_at"], landed[c][1]["name"])))
    objects = []
    for number, landing in enumerate(([unrecorded] if unrecorded else []) + order):
        for checksum in landing:
            if checksum not in landed:
                raise ExtractError(f"{source}: a landing under {store.uri}/{prefix}/ lists payload {checksum}, "
                                   "which is not there (or has no .meta.json)")
            objects.append(LandedObject(number, *landed[checksum]))
    return objects


def read_landed(store: ObjectStore, source: str, day: date, spool_dir: Path | None = None) -> list[RawPayload]:
    """The payloads landed for a source on a day (`landed_objects`; `RawPayload.landing` numbers the landings).

    Each landed object is fetched into a PayloadSpool under `spool_dir` (None: the system's temporary folder)
    and checked against its sha256 there, so that a replay of a day of a full load holds files, not the
    payloads' bytes (a local store's objects are linked, not copied); an object of several landings once."""
    objects = landed_objects(store, source, day)
    spool = PayloadSpool(spool_dir, f"eujp-{source}-replay-")
    first: dict[str, LandedObject] = {}  # an object of several landings: fetched once
    for obj in objects:
        first.setdefault(obj.sha256, obj)

    def fetch(obj: LandedObject) -> RawPayload:
        meta = obj.meta
        return spool.fetch(store, obj.key, obj.sha256, source, meta["name"], meta["url"], meta.get("headers", {}),
                           fetched_at=meta["fetched_at"], kind=meta.get("kind", "data"))

    fetched = dict(zip(first, side_by_side(fetch, list(first.values())), strict=True))
    payloads = []
    for obj in objects:
        payload = replace(fetched[obj.sha256], landing=obj.landing)
        payload.keep_sha256(obj.sha256)  # checked when fetched
        payloads.append(payload)
    return payloads


def _timestamp(text: str) -> datetime:
    ts = datetime.fromisoformat(text)
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def landed_days(store: ObjectStore, source: str) -> list[date]:
    days = {k.split("/")[2] for k in store.list_keys(f"raw/{source}")}
    return sorted(date.fromisoformat(d) for d in days)


def read_landed_kind(store: ObjectStore, source: str, kind: str, ext: str, until: date,
                     spool_dir: Path | None = None) -> dict[date, list[RawPayload]]:
    """The payloads of `kind` (landed with extension `ext`) landed for a source on each day up to `until`, by
    day, each fetched into a PayloadSpool under `spool_dir` and checked against its sha256 (the caller discards
    them: discard_spooled); only their objects and .meta.json are read, not the day's other payloads."""
    spool = PayloadSpool(spool_dir, f"eujp-{source}-{kind}-")
    found: dict[date, list[RawPayload]] = {}
    for key in store.list_keys(f"raw/{source}"):
        parts = key.split("/")
        if (len(parts) != 4 or not key.endswith(f".{ext}") or key.endswith((".meta.json", LANDING_SUFFIX))
                or date.fromisoformat(parts[2]) > until):
            continue
        meta = read_record(store, source, key.removesuffix(f".{ext}") + ".meta.json", fields=META_FIELDS)
        if meta.get("kind", "data") == kind:
            found.setdefault(date.fromisoformat(parts[2]), []).append(spool.fetch(
                store, key, meta["sha256"], source, meta["name"], meta["url"], meta.get("headers", {}),
                fetched_at=meta["fetched_at"], kind=kind))
    return found
