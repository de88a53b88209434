"""Object storage behind one small interface: a local folder or an S3-compatible bucket.

`open_store("var/objectstore")` gives a folder store; `open_store("s3://bucket/prefix")` an S3 store
configured by the standard AWS variables (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_REGION / AWS_DEFAULT_REGION), so MinIO, R2 and AWS all work. Keys are relative, '/'-separated and can
never escape the store's prefix.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from eujp.errors import PublishError

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
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str


class ObjectStore(Protocol):
    uri: str

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> StoredObject: ...
    def put_file(self, key: str, path: Path, content_type: str | None = None) -> StoredObject: ...
    def get_bytes(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def stat(self, key: str) -> StoredObject | None: ...
    def list_keys(self, prefix: str = "") -> list[str]: ...
    def delete(self, keys: list[str]) -> None: ...
    def url_for(self, key: str) -> str: ...


class LocalObjectStore:
    """A folder used as an object store. Writes are atomic (temp file + rename)."""

    def __init__(self, root: Path | str):
        self.root = Path(root).resolve()
        self.uri = str(self.root)

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if self.root not in path.parents:
            raise ValueError(f"object key {key!r} escapes {self.root}")
        return path

    def _write_atomic(self, key: str, write) -> Path:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> StoredObject:
        self._write_atomic(key, lambda f: f.write(data))
        return StoredObject(key, len(data), hashlib.sha256(data).hexdigest())

    def put_file(self, key: str, path: Path, content_type: str | None = None) -> StoredObject:
        def copy(f):
            with open(path, "rb") as src:
                while chunk := src.read(CHUNK):
                    f.write(chunk)

        written = self._write_atomic(key, copy)
        digest, expected = sha256_file(written), sha256_file(path)
        if digest != expected:
            raise PublishError(f"checksum mismatch after writing {key}: {digest} != {expected}")
        return StoredObject(key, written.stat().st_size, digest)

    def get_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def stat(self, key: str) -> StoredObject | None:
        path = self._path(key)
        if not path.is_file():
            return None
        return StoredObject(key, path.stat().st_size, sha256_file(path))

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
        for key in keys:
            self._path(key).unlink(missing_ok=True)

    def url_for(self, key: str) -> str:
        return self._path(key).as_uri()


class S3ObjectStore:
    """An S3-compatible bucket under a prefix. Objects are private (no ACL is ever granted); every
    upload stores its sha256 as metadata and is verified with a HEAD afterwards."""

    def __init__(self, bucket: str, prefix: str = "", client=None):
        if client is None:
            client = make_s3_client()
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.uri = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _verify(self, key: str, size: int, digest: str) -> StoredObject:
        head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        got_size, got_sha = head["ContentLength"], head.get("Metadata", {}).get("sha256")
        if got_size != size or got_sha != digest:
            raise PublishError(
                f"upload of {self.uri}/{key} did not verify: size {got_size} (expected {size}), "
                f"sha256 {got_sha} (expected {digest})"
            )
        return StoredObject(key, size, digest)

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> StoredObject:
        digest = hashlib.sha256(data).hexdigest()
        extra = {"ContentType": content_type} if content_type else {}
        self.client.put_object(
            Bucket=self.bucket, Key=self._key(key), Body=data, Metadata={"sha256": digest}, **extra
        )
        return self._verify(key, len(data), digest)

    def put_file(self, key: str, path: Path, content_type: str | None = None) -> StoredObject:
        digest = sha256_file(path)
        extra = {"Metadata": {"sha256": digest}}
        if content_type:
            extra["ContentType"] = content_type
        self.client.upload_file(str(path), self.bucket, self._key(key), ExtraArgs=extra)
        return self._verify(key, path.stat().st_size, digest)

    def get_bytes(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()

    def exists(self, key: str) -> bool:
        return self.stat(key) is not None

    def stat(self, key: str) -> StoredObject | None:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
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


def make_s3_client():
    """boto3 client from the standard AWS environment, with retries on throttling and 5xx."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None,
        config=Config(
            retries={"max_attempts": int(os.environ.get("EUJP_S3_MAX_ATTEMPTS", "8")), "mode": "standard"},
            connect_timeout=10,
            read_timeout=120,
            s3={"addressing_style": os.environ.get("EUJP_S3_ADDRESSING_STYLE", "auto")},
        ),
    )


def open_store(uri: str) -> ObjectStore:
    if uri.startswith("s3://"):
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        if not bucket:
            raise ValueError(f"publish URI {uri!r} names no bucket")
        return S3ObjectStore(bucket, prefix)
    if "://" in uri and not uri.startswith("file://"):
        raise ValueError(f"unsupported publish URI {uri!r}: use a folder path or s3://bucket/prefix")
    return LocalObjectStore(uri.removeprefix("file://"))
