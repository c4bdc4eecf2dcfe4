"""With CAREDESK_STORAGE__URL=s3://…, files live in the object store and nowhere on this host: a
customer's photo fetched and an agent's file sent both go there, and are served from there."""

from __future__ import annotations

import uuid

from connectors import CONNECTORS
from tests.conftest import start_client
from tests.helpdesk.attachments.conftest import (
    ACCESS_KEY,
    BUCKET,
    MAX_BYTES,
    SECRET_KEY,
    FileDropConnector,
    s3_bucket,
)
from tests.helpdesk.attachments.files import PDF, jpeg


async def test_files_are_kept_in_the_object_store_only(make_settings, host, storage_dir, s3_server, monkeypatch):
    client_s3 = s3_bucket(s3_server)
    prefix = f"run-{uuid.uuid4().hex[:8]}"
    monkeypatch.setitem(CONNECTORS, FileDropConnector.name, FileDropConnector)
    settings = make_settings(file_drop={"base_url": host.base_url}, storage={
        "url": f"s3://{BUCKET}/{prefix}", "endpoint_url": s3_server, "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET_KEY, "local_dir": str(storage_dir), "max_bytes": MAX_BYTES})
    photo = jpeg(400, 300)
    async for client in start_client(settings):
        await client.post("/webhooks/file_drop", json={"sender_id": "s3-cust", "id": "s3-1", "text": "ảnh",
                                                       "attachments": [{"kind": "image", "url": host.serve(
                                                           "cdn/s3.jpg", photo, "image/jpeg")}]})
        await client.settle()
        headers = await client.login()
        conversation_id = (await client.get("/api/conversations", headers=headers)).json()["data"][0]["id"]
        sent = await client.post(f"/api/conversations/{conversation_id}/messages", headers=headers,
                                 files={"file": ("manual.pdf", PDF, "application/pdf")})
        assert sent.status_code == 201, sent.text
        await client.settle()
        listed = (await client.get(f"/api/conversations/{conversation_id}/messages", headers=headers)).json()
        shown = [a for m in listed["data"] for a in m["attachments"]]
        assert [a["kind"] for a in shown] == ["image", "file"]
        assert (await client.get(shown[0]["url"], headers=headers)).content == photo
        assert (await client.get(shown[0]["thumbnail_url"], headers=headers)).status_code == 200
        assert (await client.get(shown[1]["url"], headers=headers)).content == PDF
    assert [upload.data for upload in host.uploads] == [PDF]  # sent from the bytes in the store
    objects = client_s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/").get("Contents", [])
    assert len(objects) == 3  # the photo, its thumbnail, the PDF
    assert not storage_dir.exists() or not any(path.is_file() for path in storage_dir.rglob("*"))
    client_s3.close()
