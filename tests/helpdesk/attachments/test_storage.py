"""Attachment storage: the local directory and an S3-compatible store (moto's S3 server on loopback,
spoken to over real HTTP by boto3), through the same interface."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from helpdesk.attachments.storage import (
    LocalStorage,
    S3Storage,
    StorageKeyError,
    StorageUnavailable,
    StoredFileMissing,
    build_storage,
)
from helpdesk.core.config import StorageSettings
from tests.helpdesk.attachments.conftest import ACCESS_KEY, BUCKET, SECRET_KEY, s3_bucket


@pytest.fixture
def s3_storage(s3_server: str) -> Iterator[S3Storage]:
    client = s3_bucket(s3_server)
    settings = StorageSettings(url=f"s3://{BUCKET}/tenant-a", endpoint_url=s3_server, access_key_id=ACCESS_KEY,
                               secret_access_key=SECRET_KEY)
    storage = build_storage(settings)
    assert isinstance(storage, S3Storage)
    yield storage
    client.close()


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path):
    if request.param == "local":
        return LocalStorage(tmp_path / "attachments")
    return request.getfixturevalue("s3_storage")


async def test_a_stored_file_reads_back_whole_and_streamed(storage):
    data = os.urandom(200_000)
    await storage.put("2026/12/abc", data, "image/jpeg")
    assert await storage.get("2026/12/abc") == data
    chunks = [chunk async for chunk in storage.open_stream("2026/12/abc", chunk_bytes=64 * 1024)]
    assert len(chunks) >= 3 and b"".join(chunks) == data


async def test_putting_again_replaces_the_file(storage):
    await storage.put("k/one", b"first")
    await storage.put("k/one", b"second")
    assert await storage.get("k/one") == b"second"


async def test_a_deleted_file_is_missing_and_deleting_twice_is_fine(storage):
    await storage.put("k/gone", b"bytes")
    await storage.delete("k/gone")
    await storage.delete("k/gone")
    with pytest.raises(StoredFileMissing):
        await storage.get("k/gone")
    with pytest.raises(StoredFileMissing):
        [chunk async for chunk in storage.open_stream("k/gone")]


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs/path", "a/../../b", "a//b", "", "a b"])
async def test_keys_that_could_leave_the_store_are_refused(storage, key):
    with pytest.raises(StorageKeyError):
        await storage.put(key, b"x")


async def test_local_files_are_written_whole_with_no_temporary_left(tmp_path):
    storage = LocalStorage(tmp_path)
    await storage.put("2026/12/photo", b"\xff\xd8" * 1000)
    folder = tmp_path / "2026" / "12"
    assert sorted(p.name for p in folder.iterdir()) == ["photo"]
    assert (folder / "photo").read_bytes() == b"\xff\xd8" * 1000


async def test_objects_go_under_the_configured_prefix(s3_storage, s3_server):
    import boto3

    await s3_storage.put("2026/12/doc", b"%PDF-1.4", "application/pdf")
    client = boto3.client("s3", endpoint_url=s3_server, aws_access_key_id=ACCESS_KEY,
                          aws_secret_access_key=SECRET_KEY, region_name="us-east-1")
    head = client.head_object(Bucket=BUCKET, Key="tenant-a/2026/12/doc")
    assert head["ContentType"] == "application/pdf" and head["ContentLength"] == 8
    client.close()


async def test_an_unreachable_object_store_is_a_passing_fault():
    from helpdesk.core.errors import is_infrastructure_error

    storage = S3Storage(BUCKET, endpoint_url="http://127.0.0.1:9", access_key_id=ACCESS_KEY,
                        secret_access_key=SECRET_KEY)
    with pytest.raises(StorageUnavailable) as caught:
        await storage.put("k/x", b"x")
    assert is_infrastructure_error(caught.value)
    await storage.close()


def test_the_settings_choose_the_storage(tmp_path):
    assert isinstance(build_storage(StorageSettings(local_dir=tmp_path)), LocalStorage)
    assert isinstance(build_storage(StorageSettings(url=f"file://{tmp_path}")), LocalStorage)
    s3 = build_storage(StorageSettings(url="s3://bucket/some/prefix"))
    assert isinstance(s3, S3Storage) and s3.bucket == "bucket" and s3.prefix == "some/prefix"
    with pytest.raises(ValueError, match="CAREDESK_STORAGE__URL"):
        build_storage(StorageSettings(url="ftp://host/x"))


async def test_a_byte_range_of_a_file_streams_alone(storage):
    data = bytes(range(256)) * 1000
    await storage.put("k/ranged", data)
    part = b"".join([chunk async for chunk in storage.open_stream("k/ranged", chunk_bytes=1000, start=5000,
                                                                  length=70_001)])
    assert part == data[5000:75_001]
    tail = b"".join([chunk async for chunk in storage.open_stream("k/ranged", start=len(data) - 10)])
    assert tail == data[-10:]
