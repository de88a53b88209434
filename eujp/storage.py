"""Object storage behind one small interface: a local folder or an S3-compatible bucket.

`open_store("var/objectstore")` gives a folder store; `open_store("s3://bucket/prefix")` an S3 store
configured by the standard AWS variables (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_REGION / AWS_DEFAULT_REGION), so MinIO, R2 and AWS all work. Keys are relative, '/'-separated and can
never escape the store's prefix.

Credentials come from the environment (boto3's standard chain) or, when EUJP_S3_CREDENTIALS_BLOCK names
one, from a Prefect Secret block holding {"aws_access_key_id", "aws_secret_access_key"[, "aws_session_token"]}.
They are handed to boto3 only: never logged, never in an error message, a manifest or an artifact; and
what botocore, boto3, s3transfer and urllib3 log of them at DEBUG is redacted (eujp.redaction).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import stat as stat_module
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from eujp.config import is_http_url
from eujp.errors import ChecksumMismatchError, PublishError
from eujp.redaction import redact_in_logs

log = logging.getLogger(__name__)

_SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9._=+-][A-Za-z0-9._=+@-]*$")
CHUNK = 8 * 1024 * 1024


def check_key(key: str) -> str:
    """Reject keys that could escape the prefix or are ambiguous ('..', absolute, empty segments)."""
    if not key or key.startswith("/") or "\\" in key:
        raise ValueError(f"unsafe object key {key!r}: must be a relative '/'-separated path")
    for seg in key.split("/"):
        if seg in ("", ".", "..") or not _SAFE_SEGMENT.match(seg):
            raise ValueError(f"unsafe object key {key!r}: bad segment {seg!r}")
    return key


def sha256_file(path: Path) -> str:
    """The file's sha256 hex digest, read in blocks (hashlib.file_digest, as RawPayload.sha256 hashes a file)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def is_missing(exc: BaseException) -> bool:
    """Whether a store's error says the object is not there: a folder's FileNotFoundError, S3's 404 / NoSuchKey."""
    if isinstance(exc, FileNotFoundError):
        return True
    response = getattr(exc, "response", None)  # botocore's ClientError
    return isinstance(response, dict) and response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str


class ObjectStore(Protocol):
    uri: str

    # `sha256`: the content's sha256 when the caller has it already (the landing zone's key is its hash): not
    # computed again where the store would only compute it; what the store checks is checked against it
    # (ChecksumMismatchError).
    def put_bytes(self, key: str, data: bytes, content_type: str | None = None, *,
                  sha256: str | None = None) -> StoredObject: ...
    def put_file(self, key: str, path: Path, content_type: str | None = None, *,
                 sha256: str | None = None) -> StoredObject: ...
    def put_file_addressed(self, prefix: str, suffix: str, path: Path) -> tuple[StoredObject, bool]: ...
    def adopt_file(self, key: str, path: Path, sha256: str) -> StoredObject: ...
    def copy(self, src_key: str, dst_key: str) -> StoredObject: ...
    def get_bytes(self, key: str) -> bytes: ...
    def get_file(self, key: str, path: Path) -> None: ...
    def exists(self, key: str) -> bool: ...
    # `digest=False`: the sha256 only where the store keeps it (S3's metadata; a folder's record of it, while the file
    # is as it was recorded: `LocalObjectStore`), else "" (a folder would hash the file)
    def stat(self, key: str, *, digest: bool = True) -> StoredObject | None: ...
    def list_keys(self, prefix: str = "") -> list[str]: ...
    def delete(self, keys: list[str]) -> None: ...
    def url_for(self, key: str) -> str: ...
    def stop_requests_after(self, when: float | None, error: Callable[[], Exception] | None = None) -> None: ...


def new_file_mode() -> int:
    """The mode `open()` gives a new file under the process's umask (0644 under the usual 022). A folder store's
    objects are written to temporary files first, which `tempfile.mkstemp` makes 0600 whatever the umask, and
    the rename keeps it: readers running as another user (a BI server reading the published folder) could not
    open them. The umask is read from /proc (Linux); where it cannot be, set and restored at once."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


# A folder store keeps each object's sha256 with its file, as S3 keeps it in the object's metadata: an extended
# attribute holding "{sha256} {size} {mtime_ns}" (`_record`), trusted only while the file still has that size and
# modification time (`_recorded`).
DIGEST_XATTR = "user.eujp.sha256"


def _record(path: Path, digest: str, seen: os.stat_result | None = None) -> None:
    """Keep `digest`, the sha256 of the file at `path`, with the file (DIGEST_XATTR), with its size and mtime now
    (`seen`: only if they are still those, the file's when it was hashed). Nothing where the file system keeps no
    user extended attributes, or the file cannot be written (a read-only folder): its digest is then read from its
    bytes when asked (`LocalObjectStore.stat`)."""
    try:
        st = os.stat(path)
        if seen is not None and (st.st_size, st.st_mtime_ns) != (seen.st_size, seen.st_mtime_ns):
            return
        os.setxattr(path, DIGEST_XATTR, f"{digest} {st.st_size} {st.st_mtime_ns}".encode())
    except (OSError, AttributeError):  # AttributeError: no os.setxattr (not Linux)
        pass


def _recorded(path: Path, st: os.stat_result) -> str:
    """The sha256 kept with the file at `path` (`_record`) when its size and mtime are still those it was kept
    with (`st`: the file's stat now), else "". Any write to the file (an edit in place, a file cut short and
    padded to its size again) changes its mtime, which then no longer vouches for the digest."""
    try:
        digest, size, mtime_ns = os.getxattr(path, DIGEST_XATTR).decode().split()
        current = (int(size), int(mtime_ns)) == (st.st_size, st.st_mtime_ns)
    except (OSError, AttributeError, ValueError, UnicodeDecodeError):  # none kept, or not a record of ours
        return ""
    return digest if current and len(digest) == 64 else ""


class LocalObjectStore:
    """A folder used as an object store. Writes are atomic (temp file + rename). Each object's sha256 is kept
    with its file (`_record`, an extended attribute) as S3 keeps it in an object's metadata, so that `stat(key,
    digest=False)` can tell a damaged object from an intact one without reading it."""

    def __init__(self, root: Path | str):
        self.root = Path(root).resolve()
        self.uri = str(self.root)

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if self.root not in path.parents:
            raise ValueError(f"object key {key!r} escapes {self.root}")
        return path

    @staticmethod
    def _write_synced(folder: Path, prefix: str, write) -> Path:
        """A new temporary file in `folder` that `write(f)` filled, flushed and synced to disk (removed if
        writing fails), with the mode of a file the process creates (`new_file_mode`)."""
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=".part")
        try:
            os.fchmod(fd, new_file_mode())
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return Path(tmp)

    @staticmethod
    def _copy_synced(folder: Path, prefix: str, path: Path) -> Path:
        """A new temporary file in `folder`, a copy of the file at `path` synced to disk (removed if copying
        fails). Copied by `shutil.copyfile`, in the kernel where it can (sendfile): the bytes do not pass
        through Python (950 MB in 0.6-0.7 s here, where a copy in blocks through Python took 1.8-5 s)."""
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=".part")
        try:
            os.fchmod(fd, new_file_mode())
        finally:
            os.close(fd)
        try:
            shutil.copyfile(path, tmp)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return Path(tmp)

    def _write_atomic(self, key: str, write, digest: str) -> Path:
        path = self._path(key)
        tmp = self._write_synced(path.parent, f".{path.name}.", write)
        try:
            _record(tmp, digest)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return path

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None, *,
                  sha256: str | None = None) -> StoredObject:
        digest = sha256 or hashlib.sha256(data).hexdigest()
        self._write_atomic(key, lambda f: f.write(data), digest)
        return StoredObject(key, len(data), digest)

    def put_file(self, key: str, path: Path, content_type: str | None = None, *,
                 sha256: str | None = None) -> StoredObject:
        return self._write_file(key, path, sha256)

    def put_file_addressed(self, prefix: str, suffix: str, path: Path) -> tuple[StoredObject, bool]:
        """`path` stored under its content's address, `{prefix}{sha256}{suffix}`: copied beside its key (in the
        kernel: `_copy_synced`), synced, the copy hashed (what is hashed is what is stored), then renamed to it.
        An object already at that key holds the same bytes: it is kept and the copy dropped. Returns the object
        and whether this call created it."""
        folder = self._path(f"{prefix}{'0' * 64}{suffix}").parent  # the key's folder (and its shape checked)
        tmp = self._copy_synced(folder, ".incoming.", path)
        try:
            digest = sha256_file(tmp)
            key = f"{prefix}{digest}{suffix}"
            target = self._path(key)
            created = not target.is_file()
            if created:
                _record(tmp, digest)
                os.replace(tmp, target)
            else:
                tmp.unlink()
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return StoredObject(key, target.stat().st_size, digest), created

    def adopt_file(self, key: str, path: Path, sha256: str) -> StoredObject:
        """Store `path`, a file this process wrote from bytes that hash to `sha256` and that nobody writes again (a
        spooled payload, eujp.landing.PayloadSpool), under `key`: synced, then hard-linked there, no byte copied
        (a copy, checked, where the two do not share a file system). An object already at `key` is kept."""
        target = self._path(key)
        if target.is_file():
            return StoredObject(key, target.stat().st_size, sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "rb") as f:
            os.fsync(f.fileno())
        _record(path, sha256)  # the file's own: a link shares it
        try:
            os.link(path, target)
        except FileExistsError:
            pass
        except OSError:
            return self._write_file(key, path, sha256)
        return StoredObject(key, target.stat().st_size, sha256)

    def _write_file(self, key: str, path: Path, expected: str | None = None) -> StoredObject:
        """`path` copied to `key` (in the kernel: `_copy_synced`), the copy hashed and renamed to `key` only when
        it is `expected`, or (None) the source's content, hashed before the copy (a source that changes meanwhile
        fails the check)."""
        expected = expected or sha256_file(path)
        target = self._path(key)
        tmp = self._copy_synced(target.parent, f".{target.name}.", path)
        try:
            digest = sha256_file(tmp)
            if digest != expected:
                raise ChecksumMismatchError(f"checksum mismatch after writing {key}: {digest} != {expected}")
            _record(tmp, digest)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return StoredObject(key, target.stat().st_size, digest)

    def copy(self, src_key: str, dst_key: str) -> StoredObject:
        """`dst_key` becomes a copy of the object `src_key` (a file copy, written atomically and checked)."""
        source = self._path(src_key)
        if not source.is_file():
            raise PublishError(f"cannot copy {src_key} to {dst_key}: {self.uri}/{src_key} does not exist")
        return self._write_file(dst_key, source)

    def get_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def get_file(self, key: str, path: Path) -> None:
        """The object's bytes as a new file at `path`: a hard link to the object's file where the two share a
        file system (an object is never written in place, only replaced whole, so the link keeps its bytes even
        when the object is replaced or deleted), else a copy."""
        source = self._path(key)
        try:
            os.link(source, path)
        except OSError:
            shutil.copyfile(source, path)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def stat(self, key: str, *, digest: bool = True) -> StoredObject | None:
        """Size and sha256: with `digest`, the hash of the file's bytes (kept with it for later, `_record`), else the
        sha256 kept with the file while the file is as it was kept (`_recorded`), or "" (written by another
        tool, changed since, or on a file system without user extended attributes)."""
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not stat_module.S_ISREG(st.st_mode):
            return None
        if not digest:
            return StoredObject(key, st.st_size, _recorded(path, st))
        found = sha256_file(path)
        _record(path, found, seen=st)
        return StoredObject(key, st.st_size, found)

    def list_keys(self, prefix: str = "") -> list[str]:
        base = self.root / prefix if prefix else self.root
        if not base.exists():
            return []
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.endswith(".part")
        )

    def delete(self, keys: list[str]) -> None:
        """Delete the objects, then the folders they leave empty (as a bucket, which has no folders: a folder
        of deleted runs would still be listed by `ls runs/`)."""
        folders: set[Path] = set()
        for key in keys:
            path = self._path(key)
            path.unlink(missing_ok=True)
            folders.add(path.parent)
        for folder in sorted(folders, key=lambda f: len(f.parts), reverse=True):
            while folder != self.root and self.root in folder.parents:
                try:
                    folder.rmdir()  # only when empty
                except OSError:
                    break
                folder = folder.parent

    def url_for(self, key: str) -> str:
        return self._path(key).as_uri()

    def stop_requests_after(self, when: float | None, error: Callable[[], Exception] | None = None) -> None:
        """Nothing to stop: a folder has no requests in flight (see S3ObjectStore.stop_requests_after)."""


class S3ObjectStore:
    """An S3-compatible bucket under a prefix. Objects are private (no ACL is ever granted); every
    upload sends a SHA-256 checksum the service verifies on receipt, stores our sha256 as metadata, and is
    verified with a HEAD afterwards (`_verify`)."""

    def __init__(self, bucket: str, prefix: str = "", client=None):
        if client is None:
            client = make_s3_client()
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        if self.prefix:
            check_key(self.prefix)  # no '..' or empty segments in the publish prefix either
        self.uri = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._stop: tuple[float, Callable[[], Exception]] | None = None
        events = getattr(getattr(client, "meta", None), "events", None)  # None: not a botocore client (a stub)
        if events is not None:
            events.register("before-send.s3", self._before_send)

    def stop_requests_after(self, when: float | None, error: Callable[[], Exception] | None = None) -> None:
        """From `when` (a time.time() instant) on, refuse every HTTP request of this store before it is sent,
        each retry and multipart part included, raising `error()` (not retried by botocore); None: stop nothing.
        A publish deadline (eujp.publish) uses it so that a request cut off by the deadline cannot be retried
        later, in the background, after the run said it stopped."""
        self._stop = None if when is None else (when, error or (lambda: PublishError("request refused: the "
                                                                                      "deadline has passed")))

    def _before_send(self, **kwargs) -> None:
        stop = self._stop
        if stop is not None and time.time() >= stop[0]:
            raise stop[1]()

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _verify(self, key: str, size: int, digest: str, s3_checksum: str | None,
                what: str = "upload of") -> StoredObject:
        """HEAD the object: its size, our sha256 metadata and, where the service keeps one, the SHA-256
        checksum the *service* computed from the bytes it stored (for a multipart upload, the checksum of the
        parts' checksums) must all match what was sent (`s3_checksum` None: a copy of an object the service kept
        no checksum of: size and sha256 only)."""
        head = self.client.head_object(Bucket=self.bucket, Key=self._key(key), ChecksumMode="ENABLED")
        got_size, got_sha = head["ContentLength"], head.get("Metadata", {}).get("sha256")
        got_checksum = (head.get("ChecksumSHA256") or "").split("-")[0]  # "<base64>-<parts>" for multipart
        if got_size != size or got_sha != digest or (got_checksum and s3_checksum and got_checksum != s3_checksum):
            raise PublishError(
                f"{what} {self.uri}/{key} did not verify: size {got_size} (expected {size}), "
                f"sha256 {got_sha} (expected {digest}), S3 checksum {got_checksum or 'none'} "
                f"(expected {s3_checksum})"
            )
        return StoredObject(key, size, digest)

    def _upload(self, key: str, fileobj, size: int, digest: str, s3_checksum: str,
                content_type: str | None) -> StoredObject:
        extra = {"Metadata": {"sha256": digest}, "ChecksumAlgorithm": "SHA256"}
        if content_type:
            extra["ContentType"] = content_type
        self.client.upload_fileobj(fileobj, self.bucket, self._key(key), ExtraArgs=extra, Config=_transfer_config())
        return self._verify(key, size, digest, s3_checksum)

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None, *,
                  sha256: str | None = None) -> StoredObject:
        import io

        digest, s3_checksum = _checksums([data], len(data), sha256)
        return self._upload(key, io.BytesIO(data), len(data), digest, s3_checksum, content_type)

    def put_file(self, key: str, path: Path, content_type: str | None = None, *,
                 sha256: str | None = None) -> StoredObject:
        size, digest, s3_checksum = _file_checksums(path)
        if sha256 is not None and digest != sha256:
            raise ChecksumMismatchError(f"{path} is not the content hashed before ({digest} != {sha256}): it "
                                        "changed since")
        with open(path, "rb") as f:
            return self._upload(key, f, size, digest, s3_checksum, content_type)

    def adopt_file(self, key: str, path: Path, sha256: str) -> StoredObject:
        """`path` uploaded under `key` (put_file: checked against `sha256`)."""
        return self.put_file(key, path, sha256=sha256)

    def put_file_addressed(self, prefix: str, suffix: str, path: Path) -> tuple[StoredObject, bool]:
        """`path` stored under its content's address, `{prefix}{sha256}{suffix}`: hashed (with S3's checksum of
        its parts) in one read, then uploaded unless the key exists (the same bytes); the upload is verified
        against that read like `put_file`'s, so a file that changed in between fails. Returns the object and
        whether this call uploaded it."""
        size, digest, s3_checksum = _file_checksums(path)
        key = f"{prefix}{digest}{suffix}"
        if self.exists(key):
            return StoredObject(key, size, digest), False
        try:
            with open(path, "rb") as f:
                return self._upload(key, f, size, digest, s3_checksum, None), True
        except ChecksumMismatchError:  # what arrived is not what was hashed: no object under a wrong address
            self.delete([key])
            raise

    def copy(self, src_key: str, dst_key: str) -> StoredObject:
        """`dst_key` becomes a copy of the object `src_key`, made by the service (no byte is sent: CopyObject, a
        multipart copy beyond 5 GB, by boto3's managed copy with the upload's part size, so the copy's parts are the
        upload's and so is its SHA-256 checksum). The object's metadata (our sha256) is copied with it; verified like
        an upload: the copy's size, sha256 and, where the service keeps them, SHA-256 checksum must be the source's."""
        from botocore.exceptions import ClientError

        self._key(dst_key)  # a bad destination key fails before any request
        try:
            source = self.client.head_object(Bucket=self.bucket, Key=self._key(src_key), ChecksumMode="ENABLED")
        except ClientError as exc:
            if is_missing(exc):
                raise PublishError(f"cannot copy {src_key} to {dst_key}: {self.uri}/{src_key} does not exist") from None
            raise
        size, digest = source["ContentLength"], source.get("Metadata", {}).get("sha256")
        if not digest:
            raise PublishError(f"cannot copy {self.uri}/{src_key}: it has no sha256 metadata to verify the copy by")
        self.client.copy({"Bucket": self.bucket, "Key": self._key(src_key)}, self.bucket, self._key(dst_key),
                         ExtraArgs={"ChecksumAlgorithm": "SHA256"}, Config=_transfer_config())
        return self._verify(dst_key, size, digest, (source.get("ChecksumSHA256") or "").split("-")[0] or None,
                            what=f"copy of {src_key} as")

    def get_bytes(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()

    def get_file(self, key: str, path: Path) -> None:
        """The object's bytes as a new file at `path`, downloaded in parts (never held whole in memory)."""
        with open(path, "wb") as f:
            self.client.download_fileobj(self.bucket, self._key(key), f, Config=_transfer_config())

    def exists(self, key: str) -> bool:
        return self.stat(key) is not None

    def stat(self, key: str, *, digest: bool = True) -> StoredObject | None:
        """Size and our sha256 (the object's metadata, "" when it has none), from one HEAD request."""
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise
        return StoredObject(key, head["ContentLength"], head.get("Metadata", {}).get("sha256", ""))

    def list_keys(self, prefix: str = "") -> list[str]:
        full = self._key(prefix.rstrip("/")) + "/" if prefix else (f"{self.prefix}/" if self.prefix else "")
        strip = len(self.prefix) + 1 if self.prefix else 0
        keys: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
            keys.extend(obj["Key"][strip:] for obj in page.get("Contents", []))
        return sorted(keys)

    def delete(self, keys: list[str]) -> None:
        for i in range(0, len(keys), 1000):
            batch = [{"Key": self._key(k)} for k in keys[i : i + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})

    def url_for(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"


# Multipart threshold and part size, pinned (boto3's defaults): the service's checksum of a multipart
# object is the SHA-256 of its parts' SHA-256s, so verifying it needs the part boundaries.
PART_SIZE = 8 * 1024 * 1024
_MAX_PARTS = 10_000


def _transfer_config():
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE)


def _file_checksums(path: Path) -> tuple[int, str, str]:
    """The file's size, sha256 and S3 checksum of its upload's parts (`_checksums`), from one read."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        return (size, *_checksums(iter(lambda: f.read(CHUNK), b""), size))


def _checksums(chunks, size: int, sha256: str | None = None) -> tuple[str, str]:
    """(sha256 hex of the whole content, the base64 SHA-256 checksum S3 reports for it once uploaded with
    `_transfer_config()`: of the content below PART_SIZE, else of the concatenated part digests). `sha256`:
    the content's, known to the caller: below PART_SIZE nothing is hashed (S3's checksum is that digest)."""
    import base64

    if sha256 is not None and size < PART_SIZE:
        return sha256, base64.b64encode(bytes.fromhex(sha256)).decode()
    part_size = PART_SIZE
    while -(-size // part_size) > _MAX_PARTS:  # s3transfer doubles the part size to stay within 10,000 parts
        part_size *= 2
    whole, parts, part, filled = hashlib.sha256(), [], hashlib.sha256(), 0
    for chunk in chunks:
        whole.update(chunk)
        view = memoryview(chunk)
        while view:
            take = view[: part_size - filled]
            part.update(take)
            filled += len(take)
            view = view[len(take):]
            if filled == part_size:
                parts.append(part.digest())
                part, filled = hashlib.sha256(), 0
    if filled:
        parts.append(part.digest())
    if size < PART_SIZE:
        s3 = whole.digest()
    else:
        s3 = hashlib.sha256(b"".join(parts)).digest()
    return whole.hexdigest(), base64.b64encode(s3).decode()


CREDENTIALS_BLOCK_ENV = "EUJP_S3_CREDENTIALS_BLOCK"
_CREDENTIAL_FIELDS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")


def s3_credentials() -> dict[str, str]:
    """Explicit boto3 credentials from the Prefect Secret block named by EUJP_S3_CREDENTIALS_BLOCK, or {}
    (boto3 then reads AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the rest of its standard chain).

    Errors name the block and the missing field, never a value: a JSON error message would quote the text."""
    name = os.environ.get(CREDENTIALS_BLOCK_ENV, "").strip()
    if not name:
        return {}
    from prefect.blocks.system import Secret

    try:
        block = Secret.load(name)
        stored, value = block.value.get_secret_value(), block.get()
    except Exception as exc:  # noqa: BLE001 - only the type: a pydantic error would quote the value
        raise PublishError(f"cannot load the S3 credentials from the Prefect Secret block {name!r} "
                           f"({CREDENTIALS_BLOCK_ENV}): {type(exc).__name__}") from None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if isinstance(stored, dict):  # read, but said: Prefect's API hides a Secret's value only when it is text
        log.warning("the Prefect Secret block %r (%s) holds its credentials as an object, which Prefect's API "
                    "returns in clear to anyone who can reach it: save it as a JSON string instead "
                    "(Secret(value=json.dumps({...})), docs/reliability.md)", name, CREDENTIALS_BLOCK_ENV)
    if not isinstance(value, dict):
        raise PublishError(f"the Prefect Secret block {name!r} ({CREDENTIALS_BLOCK_ENV}) must hold a JSON object "
                           f"with {', '.join(_CREDENTIAL_FIELDS[:2])}")
    missing = [f for f in _CREDENTIAL_FIELDS[:2] if not value.get(f)]
    if missing:
        raise PublishError(f"the Prefect Secret block {name!r} ({CREDENTIALS_BLOCK_ENV}) lacks {missing}")
    return {f: str(value[f]) for f in _CREDENTIAL_FIELDS if value.get(f)}


# --- credentials in log records: eujp.redaction ---------------------------------------------------------------

def _redact_credentials_in_logs(credentials) -> None:
    """The values of `credentials` (botocore's resolved credentials; None: none found) replaced in every log
    record from now on (eujp.redaction), and AWS credential material in botocore's and urllib3's records."""
    frozen = credentials.get_frozen_credentials() if credentials is not None else None
    redact_in_logs(*((frozen.access_key, frozen.secret_key, frozen.token) if frozen else ()))


ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")  # the first set (not empty) wins, as in botocore


def s3_endpoint(env: Mapping[str, str] | None = None) -> str | None:
    """The S3 endpoint the AWS variables name (ENDPOINT_VARIABLES; an empty one counts as unset), None for AWS
    itself. ValueError naming the variable when its value is no http(s)://HOST[:PORT] URL (botocore's own error,
    'Invalid endpoint', names none, and came from deep inside the publish)."""
    env = os.environ if env is None else env
    for name in ENDPOINT_VARIABLES:
        value = (env.get(name) or "").strip()
        if not value:
            continue
        if not is_http_url(value):
            raise ValueError(f"{name}={value!r} is no endpoint URL: write http(s)://HOST[:PORT] "
                             "(e.g. http://127.0.0.1:9000)")
        return value
    return None


def s3_client(config):
    """A boto3 S3 client with botocore `config`, for the endpoint of the AWS variables (AWS_ENDPOINT_URL_S3,
    AWS_ENDPOINT_URL) and the credentials of boto3's standard chain or the Secret block (`s3_credentials`);
    those credentials are redacted from the process's log records (eujp.redaction.redact_in_logs) before the
    client sends anything. A session of its own: boto3's default session caches the credentials it resolved
    first, so a client made later in a long-lived process would keep signing with them after the environment
    changed."""
    import boto3

    env = os.environ
    explicit = s3_credentials()
    redact_in_logs(*explicit.values())
    session = boto3.session.Session()
    client = session.client("s3", endpoint_url=s3_endpoint(env), config=config, **explicit)
    if not explicit:  # those the client resolved from the chain (kept by the session: not looked up again)
        _redact_credentials_in_logs(session.get_credentials())
    return client


def make_s3_client():
    """boto3 client from the standard AWS environment (or the Secret block, see `s3_credentials`), with
    retries on throttling, 5xx and timeouts (EUJP_S3_MAX_ATTEMPTS, EUJP_S3_CONNECT_TIMEOUT,
    EUJP_S3_READ_TIMEOUT)."""
    from botocore.config import Config

    tuning = s3_settings(os.environ)
    return s3_client(Config(
        retries={"total_max_attempts": tuning["EUJP_S3_MAX_ATTEMPTS"], "mode": "standard"},
        connect_timeout=tuning["EUJP_S3_CONNECT_TIMEOUT"],
        read_timeout=tuning["EUJP_S3_READ_TIMEOUT"],
        s3={"addressing_style": tuning[ADDRESSING_STYLE_SETTING]},
    ))


def _s3_setting(env: Mapping[str, str], name: str, default: str, kind: type, low: float) -> float | int:
    """An EUJP_S3_* setting as a number of `kind`, at least `low`; ValueError naming it otherwise."""
    raw = (env.get(name) or default).strip()
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if not (value >= low and value < float("inf")):
        raise ValueError(f"{name}={raw!r} must be at least {low:g}")
    return value


def check_publish_uri(uri: str) -> None:
    """ValueError naming what is wrong with a publish URI that is neither a folder nor s3://bucket/prefix: empty,
    or a mistyped S3 URI ("s3:/bucket", "s3:bucket", "s3//bucket"), which would publish to a local folder of
    that name."""
    if not uri.strip():
        raise ValueError("the publish URI is empty: give a folder path or s3://bucket/prefix")
    lowered = uri.strip().lower()
    if lowered.startswith(("s3:", "s3/")) and not lowered.startswith("s3://"):
        raise ValueError(f"publish URI {uri!r} is no s3://bucket/prefix (a mistyped S3 URI?)")
    if lowered.startswith(("s3://", "file://")) and not uri.startswith(("s3://", "file://")):
        raise ValueError(f"publish URI {uri!r}: write its scheme in lower case ({lowered.split(':', 1)[0]}://)")
    if uri.startswith("s3://") and not uri[len("s3://"):].partition("/")[0]:
        raise ValueError(f"publish URI {uri!r} names no bucket: write s3://bucket/prefix")
    if lowered.startswith("file:") and not lowered.startswith("file://"):
        raise ValueError(f"publish URI {uri!r} is no file:// URI (it would be read as a folder named so under "
                         "the current one): give the folder's path, or file:///absolute/path")
    if "://" in uri and not uri.startswith(("s3://", "file://")):
        raise ValueError(f"unsupported publish URI {uri!r}: use a folder path or s3://bucket/prefix")


# The S3 client's settings: (name, default, type, lowest value).
S3_SETTINGS = (("EUJP_S3_MAX_ATTEMPTS", "8", int, 1), ("EUJP_S3_CONNECT_TIMEOUT", "10", float, 0.001),
               ("EUJP_S3_READ_TIMEOUT", "120", float, 0.001))


# How the S3 client addresses a bucket (botocore's `addressing_style`): path-style for most S3-compatible servers
# (MinIO, moto), virtual-hosted for AWS; auto lets botocore choose.
ADDRESSING_STYLE_SETTING = "EUJP_S3_ADDRESSING_STYLE"
ADDRESSING_STYLES = ("auto", "path", "virtual")


def s3_addressing_style(env: Mapping[str, str] | None = None) -> str:
    """EUJP_S3_ADDRESSING_STYLE (default auto); ValueError naming it when it is none of ADDRESSING_STYLES."""
    env = os.environ if env is None else env
    raw = (env.get(ADDRESSING_STYLE_SETTING) or "auto").strip()
    if raw.lower() not in ADDRESSING_STYLES:
        raise ValueError(f"{ADDRESSING_STYLE_SETTING}={raw!r} must be one of {', '.join(ADDRESSING_STYLES)}")
    return raw.lower()


def s3_settings(env: Mapping[str, str] | None = None) -> dict[str, float | int | str]:
    """The EUJP_S3_* client settings by name; ValueError naming the first that is not a number in its range, or
    an addressing style botocore does not know (what the preflight checks, `check_publish_target`)."""
    env = os.environ if env is None else env
    settings: dict[str, float | int | str] = {
        name: _s3_setting(env, name, default, kind, low) for name, default, kind, low in S3_SETTINGS}
    settings[ADDRESSING_STYLE_SETTING] = s3_addressing_style(env)
    return settings


def open_store(uri: str) -> ObjectStore:
    check_publish_uri(uri)  # a folder, file://..., or s3:// with a bucket
    if uri.startswith("s3://"):
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        return S3ObjectStore(bucket, prefix)
    return LocalObjectStore(uri.removeprefix("file://"))
