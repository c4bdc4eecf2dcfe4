"""Where attachment bytes live: a small interface with two implementations.

``LocalStorage`` keeps files under a directory of this host (``var/attachments`` by default): each
write goes to a temporary file that is renamed into place, so a reader never sees half a file.
``S3Storage`` keeps them in any S3-compatible object store (``CAREDESK_STORAGE__URL=s3://bucket/prefix``),
so that no replica depends on another's disk; boto3 is synchronous, so every call runs in a thread.
Nothing here blocks the event loop.

A key is a relative path of letters, digits, ``/``, ``.``, ``_`` and ``-`` (``StorageKeyError``
otherwise): keys are made by CareDesk, never taken from a client.
"""

from __future__ import annotations

import os
import re
import tempfile
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from anyio import to_thread

from helpdesk.core.config import StorageSettings

#: how much of a file a stream hands over at a time
CHUNK_BYTES = 64 * 1024

_KEY = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_\-./]{0,250}$")


class StorageKeyError(ValueError):
    """A key that is not one CareDesk makes (absolute, with ``..``, or odd characters)."""


class StoredFileMissing(LookupError):
    """No file is stored under the key (deleted, or never written)."""


class StorageUnavailable(ConnectionError):
    """The object store cannot be reached now; a passing fault (work that meets it is tried again)."""


def check_key(key: str) -> str:
    """``key`` if it is a safe relative key, else StorageKeyError."""
    if not _KEY.match(key) or ".." in key.split("/") or "//" in key:
        raise StorageKeyError(f"not a storage key: {key!r}")
    return key


class Storage(ABC):
    """Bytes by key. Every method is a coroutine that keeps blocking work off the event loop."""

    @abstractmethod
    async def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Store ``data`` under ``key``, replacing what was there; durable when this returns."""

    @abstractmethod
    async def get(self, key: str) -> bytes:
        """The bytes under ``key`` (StoredFileMissing if none)."""

    @abstractmethod
    def open_stream(self, key: str, chunk_bytes: int = CHUNK_BYTES, *, start: int = 0,
                    length: int | None = None) -> AsyncIterator[bytes]:
        """The bytes under ``key`` in chunks (from ``start``, ``length`` of them, or to the end), for
        a response that should not hold a whole file (StoredFileMissing, raised at the first chunk,
        if none)."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove ``key``; no error if it is already gone."""

    async def close(self) -> None:
        """Release connections."""


class LocalStorage(Storage):
    """Files under ``root`` on this host."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        """Where ``key`` lives on disk."""
        return self.root / check_key(key)

    async def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Write to a temporary file beside the target, flush it to disk, rename it into place."""
        await to_thread.run_sync(self._write, self.path(key), data)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-", suffix=".part")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    async def get(self, key: str) -> bytes:
        """Read the whole file in a thread."""
        path = self.path(key)

        def read() -> bytes:
            try:
                return path.read_bytes()
            except FileNotFoundError:
                raise StoredFileMissing(key) from None

        return await to_thread.run_sync(read)

    async def open_stream(self, key: str, chunk_bytes: int = CHUNK_BYTES, *, start: int = 0,
                          length: int | None = None) -> AsyncIterator[bytes]:
        """Open and read the file chunk by chunk, each read in a thread."""
        path = self.path(key)

        def open_at() -> Any:
            handle = path.open("rb")
            handle.seek(start)
            return handle

        try:
            handle = await to_thread.run_sync(open_at)
        except FileNotFoundError:
            raise StoredFileMissing(key) from None
        left = length
        try:
            while left is None or left > 0:
                wanted = chunk_bytes if left is None else min(chunk_bytes, left)
                chunk = await to_thread.run_sync(handle.read, wanted)
                if not chunk:
                    break
                if left is not None:
                    left -= len(chunk)
                yield chunk
        finally:
            await to_thread.run_sync(handle.close)

    async def delete(self, key: str) -> None:
        """Unlink the file in a thread."""
        await to_thread.run_sync(lambda: self.path(key).unlink(missing_ok=True))


def _connection_errors() -> tuple[type[BaseException], ...]:
    from botocore import exceptions

    return (exceptions.EndpointConnectionError, exceptions.ConnectTimeoutError, exceptions.ReadTimeoutError,
            exceptions.ConnectionClosedError, exceptions.ProxyConnectionError)


class S3Storage(Storage):
    """Objects in an S3-compatible bucket under ``prefix``; boto3 calls run in threads."""

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None,
                 access_key_id: str | None = None, secret_access_key: str | None = None,
                 region: str = "us-east-1", client: Any = None):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client = client
        self._options = {"endpoint_url": endpoint_url or None, "aws_access_key_id": access_key_id or None,
                         "aws_secret_access_key": secret_access_key or None, "region_name": region or None}

    @property
    def client(self) -> Any:
        """The boto3 S3 client, made at first use (boto3 clients may be shared between threads)."""
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.session.Session().client(
                "s3", config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5,
                                    read_timeout=30, s3={"addressing_style": "path"}), **self._options)
        return self._client

    def object_key(self, key: str) -> str:
        """The object's key in the bucket."""
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    async def _call(self, method: str, **kwargs: Any) -> Any:
        from botocore.exceptions import ClientError

        def call() -> Any:
            try:
                return getattr(self.client, method)(Bucket=self.bucket, **kwargs)
            except _connection_errors() as exc:
                raise StorageUnavailable(f"the object store is unreachable: {exc}") from exc
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if code in ("NoSuchKey", "404", "NotFound"):
                    raise StoredFileMissing(kwargs.get("Key", "")) from None
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                if status >= 500 or code in ("SlowDown", "RequestTimeout", "ServiceUnavailable"):
                    raise StorageUnavailable(f"the object store answered {code or status}") from exc
                raise

        return await to_thread.run_sync(call)

    async def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """PUT the object (one request: attachments are capped well below S3's single-PUT limit)."""
        await self._call("put_object", Key=self.object_key(key), Body=data, ContentType=content_type)

    async def get(self, key: str) -> bytes:
        """GET the whole object."""
        response = await self._call("get_object", Key=self.object_key(key))
        body = response["Body"]
        try:
            return await to_thread.run_sync(body.read)
        finally:
            body.close()

    async def open_stream(self, key: str, chunk_bytes: int = CHUNK_BYTES, *, start: int = 0,
                          length: int | None = None) -> AsyncIterator[bytes]:
        """GET the object (or the range asked) and hand its body over chunk by chunk, each read in a
        thread."""
        extra: dict[str, Any] = {}
        if start or length is not None:
            extra["Range"] = f"bytes={start}-{'' if length is None else start + length - 1}"
        response = await self._call("get_object", Key=self.object_key(key), **extra)
        body = response["Body"]
        try:
            while chunk := await to_thread.run_sync(body.read, chunk_bytes):
                yield chunk
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        """DELETE the object (S3 answers success for a missing one too)."""
        await self._call("delete_object", Key=self.object_key(key))

    async def close(self) -> None:
        """Close the client's connection pool."""
        if self._client is not None:
            await to_thread.run_sync(self._client.close)
            self._client = None


def build_storage(settings: StorageSettings) -> Storage:
    """The storage the settings name: S3 for an ``s3://`` url, the local directory otherwise."""
    url = settings.url.strip()
    if not url:
        return LocalStorage(settings.local_dir)
    parts = urlsplit(url)
    if parts.scheme == "file":
        return LocalStorage(Path(parts.path))
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"CAREDESK_STORAGE__URL must be s3://bucket[/prefix] or file:///path, not {url!r}")
    return S3Storage(parts.netloc, parts.path, endpoint_url=settings.endpoint_url or None,
                     access_key_id=settings.access_key_id.get_secret_value() or None,
                     secret_access_key=settings.secret_access_key.get_secret_value() or None,
                     region=settings.region)
