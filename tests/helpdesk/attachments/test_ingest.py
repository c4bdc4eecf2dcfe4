"""A customer's files, end to end through Messenger: the webhook is answered at once, the file is
fetched from the platform's URL afterwards, checked, stored with a thumbnail and shown to agents;
a file that cannot be had leaves the message and a reason."""

from __future__ import annotations

import io
import time
from datetime import timedelta

from PIL import Image

from sqlmodel import Session, select

from helpdesk.attachments.models import Attachment
from helpdesk.attachments.tasks import sweep_downloads
from helpdesk.conversations.models import Message
from helpdesk.core.db import utcnow
from tests.helpdesk.attachments.conftest import (
    MAX_BYTES,
    customer_messages,
    image,
    messenger_event,
    post_messenger,
)
from tests.helpdesk.attachments.files import PDF, gps_of, jpeg, mp4, truncated_jpeg


def rows(client) -> list[Attachment]:
    with Session(client.wiring.engine) as session:
        return list(session.exec(select(Attachment)).all())


async def test_a_photo_with_a_caption_is_stored_and_shown_with_its_thumbnail(client, host, storage_dir):
    photo = jpeg(1200, 900, gps=True)
    events = client.wiring.events.subscribe()
    response = await post_messenger(client, messenger_event(
        "m_photo", [image(host.serve("cdn/photo.jpg", photo, "image/jpeg"))], text="máy bị nứt ở đây"))
    assert response.status_code == 200
    await client.settle()
    headers = await client.login()
    _, [message] = await customer_messages(client, headers)
    assert message["text"] == "máy bị nứt ở đây"
    [shown] = message["attachments"]
    assert shown["kind"] == "image" and shown["mime_type"] == "image/jpeg" and shown["size"] == len(photo)
    assert shown["status"] == "stored" and (shown["width"], shown["height"]) == (1200, 900)
    assert shown["url"] == f"/api/attachments/{shown['id']}"
    assert shown["thumbnail_url"] == f"/api/attachments/{shown['id']}/thumbnail"
    download = await client.get(shown["url"], headers=headers)
    assert download.status_code == 200 and download.content == photo
    thumbnail = await client.get(shown["thumbnail_url"], headers=headers)
    assert thumbnail.headers["content-type"] == "image/jpeg" and gps_of(thumbnail.content) == {}
    assert any(path.is_file() for path in storage_dir.rglob("*"))  # on this host's disk
    announced = [events.get_nowait() for _ in range(events.qsize())]
    updates = [e for e in announced if e.name == "attachment_updated"]
    assert [(e.data["attachment_id"], e.data["status"]) for e in updates] == [(shown["id"], "stored")]


async def test_the_webhook_is_answered_without_waiting_for_the_download(client, host):
    host.delay_s = 3.0
    url = host.serve("cdn/slow.jpg", jpeg(), "image/jpeg")
    started = time.perf_counter()
    response = await post_messenger(client, messenger_event("m_slow", [image(url)]))
    answered = time.perf_counter() - started
    assert response.status_code == 200 and answered < 1.5
    await client.settle(timeout=20)
    [row] = rows(client)
    assert row.status == "stored"


async def test_pdf_bytes_behind_a_photo_link_are_kept_as_a_file(client, host):
    await post_messenger(client, messenger_event("m_pdf", [image(host.serve("cdn/x.jpg", PDF, "image/jpeg"))]))
    await client.settle()
    [row] = rows(client)
    assert (row.status, row.kind, row.mime_type, row.thumbnail_key) == ("stored", "file", "application/pdf", None)


async def test_a_link_that_404s_leaves_the_message_and_the_reason(client, host):
    await post_messenger(client, messenger_event("m_gone", [image(host.fail("cdn/gone.jpg", 404))],
                                                 text="ảnh đây"))
    await client.settle()
    headers = await client.login()
    _, [message] = await customer_messages(client, headers)
    assert message["text"] == "ảnh đây"
    [shown] = message["attachments"]
    assert shown["status"] == "failed" and "404" in shown["error"]
    assert shown["url"] is None and shown["thumbnail_url"] is None
    assert (await client.get(f"/api/attachments/{shown['id']}", headers=headers)).status_code == 404


async def test_a_truncated_photo_fails_with_the_reason(client, host):
    await post_messenger(client, messenger_event("m_cut", [image(host.serve("cdn/cut.jpg", truncated_jpeg(),
                                                                            "image/jpeg"))]))
    await client.settle()
    [row] = rows(client)
    assert row.status == "failed" and "truncated" in row.error and row.storage_key is None


async def test_a_file_over_the_cap_fails_with_the_reason(client, host):
    big = jpeg(3000, 2000)
    assert len(big) > MAX_BYTES
    await post_messenger(client, messenger_event("m_big", [image(host.serve("cdn/big.jpg", big, "image/jpeg"))]))
    await client.settle()
    [row] = rows(client)
    assert row.status == "failed" and "over the limit" in row.error


async def test_a_passing_fault_is_retried_until_the_file_comes(client, host):
    url = host.fail("cdn/flaky.jpg", 503)
    await post_messenger(client, messenger_event("m_flaky", [image(url)]))
    await client.settle()
    [row] = rows(client)
    assert (row.status, row.attempts) == ("pending", 1) and "503" in row.error
    # the platform is back, and the retry is due
    del host.failures["cdn/flaky.jpg"]
    host.serve("cdn/flaky.jpg", jpeg(), "image/jpeg")
    with Session(client.wiring.engine) as session:
        session.get(Attachment, row.id).next_attempt_at = utcnow() - timedelta(seconds=1)
        session.commit()
    assert await sweep_downloads(client.wiring.attachments) == 1
    await client.settle()
    [row] = rows(client)
    assert row.status == "stored" and row.error is None


async def test_a_shared_location_is_kept_without_a_file(client, host):
    location = {"type": "location", "title": "Nhà tôi", "payload": {"coordinates": {"lat": 10.77, "long": 106.7}}}
    await post_messenger(client, messenger_event("m_loc", [location]))
    await client.settle()
    [row] = rows(client)
    assert (row.kind, row.status, row.storage_key) == ("location", "stored", None)
    assert host.requests == []


async def test_several_files_of_one_message_are_all_kept_in_order(client, host):
    urls = [host.serve(f"cdn/{n}.jpg", jpeg(100 + n, 100), "image/jpeg") for n in range(3)]
    await post_messenger(client, messenger_event("m_many", [image(url) for url in urls]))
    await client.settle()
    headers = await client.login()
    _, [message] = await customer_messages(client, headers)
    assert [a["width"] for a in message["attachments"]] == [100, 101, 102]
    with Session(client.wiring.engine) as session:
        stored = session.exec(select(Message).where(Message.direction == "in")).one()
        assert len(stored.attachments) == 3  # the platform's description is kept on the message too


async def test_on_postgresql_a_photo_is_stored_and_a_dead_link_fails(make_settings, graph, host, storage_dir,
                                                                     postgres_url):
    from tests.conftest import start_client
    from tests.helpdesk.attachments.conftest import APP_SECRET

    settings = make_settings(database_url=postgres_url, facebook={
        "verify_token": "v", "app_secret": APP_SECRET, "page_access_token": "EAAG-page-token",
        "graph_api_base": graph.base_url}, storage={"local_dir": str(storage_dir), "max_bytes": MAX_BYTES})
    async for client in start_client(settings):
        photo = jpeg(200, 150)
        await post_messenger(client, messenger_event("m_pg", [image(host.serve("cdn/pg.jpg", photo, "image/jpeg")),
                                                              image(host.fail("cdn/pg-gone.jpg", 410))]))
        await client.settle()
        headers = await client.login()
        _, [message] = await customer_messages(client, headers)
        stored, gone = message["attachments"]
        assert stored["status"] == "stored" and (await client.get(stored["url"], headers=headers)).content == photo
        assert gone["status"] == "failed" and "410" in gone["error"]


async def test_a_video_gets_its_poster_from_the_platforms_preview(drop_client, host):
    """Telegram and Zalo describe a video with a preview of their own: it becomes the poster."""
    video = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 4000
    video_url = host.serve("cdn/clip.mp4", video, "video/mp4")
    preview_url = host.serve("cdn/clip-thumb.jpg", jpeg(320, 180, gps=True), "image/jpeg")
    response = await drop_client.post("/webhooks/file_drop", json={"sender_id": "cust-video", "id": "v-1",
        "attachments": [{"kind": "video", "url": video_url, "thumbnail_url": preview_url}]})
    assert response.status_code == 200
    await drop_client.settle()
    [row] = rows(drop_client)
    assert (row.status, row.kind, row.mime_type) == ("stored", "video", "video/mp4")
    headers = await drop_client.login()
    poster = await drop_client.get(f"/api/attachments/{row.id}/thumbnail", headers=headers)
    assert poster.status_code == 200 and gps_of(poster.content) == {}
    video_file = await drop_client.get(f"/api/attachments/{row.id}", headers=headers)
    assert video_file.content == video and video_file.headers["content-disposition"].startswith("inline;")


async def test_a_video_gets_its_own_first_frame_as_poster_and_its_size_and_duration(drop_client, host):
    """A video ffmpeg can read: its poster is its first frame (the platform's preview is not even
    fetched), and the inbox gets its real dimensions and length, not the platform's figures."""
    video = mp4(320, 240, seconds=3.0)
    video_url = host.serve("cdn/real.mp4", video, "video/mp4")
    preview_url = host.serve("cdn/real-thumb.jpg", jpeg(64, 48), "image/jpeg")
    response = await drop_client.post("/webhooks/file_drop", json={"sender_id": "cust-video-2", "id": "v-2",
        "attachments": [{"kind": "video", "url": video_url, "thumbnail_url": preview_url, "width": 1,
                         "height": 1, "duration": 99.0}]})
    assert response.status_code == 200
    await drop_client.settle()
    [row] = rows(drop_client)
    assert (row.status, row.kind, row.width, row.height) == ("stored", "video", 320, 240)
    assert abs(row.duration - 3.0) < 0.2
    assert "cdn/real-thumb.jpg" not in host.requests
    headers = await drop_client.login()
    _, [message] = await customer_messages(drop_client, headers)
    [shown] = message["attachments"]
    assert (shown["width"], shown["height"]) == (320, 240) and abs(shown["duration"] - 3.0) < 0.2
    poster = await drop_client.get(shown["thumbnail_url"], headers=headers)
    assert poster.status_code == 200 and poster.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(poster.content)) as image:
        assert image.size == (320, 240) and min(image.getpixel((10, 10))) > 200


async def test_a_file_with_no_address_fails_at_once_with_the_reason(drop_client, host):
    response = await drop_client.post("/webhooks/file_drop", json={"sender_id": "cust-noaddr", "id": "n-1",
        "text": "xem file", "attachments": [{"kind": "file", "file_id": "only-an-id"}]})
    assert response.status_code == 200
    await drop_client.settle()
    [row] = rows(drop_client)
    assert row.status == "failed" and "gave no address" in row.error


async def test_absurd_announced_sizes_never_cost_the_message_on_postgresql(make_settings, host, storage_dir,
                                                                           postgres_url, monkeypatch):
    from connectors import CONNECTORS
    from tests.conftest import start_client
    from tests.helpdesk.attachments.conftest import FileDropConnector

    monkeypatch.setitem(CONNECTORS, FileDropConnector.name, FileDropConnector)
    settings = make_settings(database_url=postgres_url, file_drop={"base_url": host.base_url},
                             storage={"local_dir": str(storage_dir), "max_bytes": MAX_BYTES})
    async for client in start_client(settings):
        response = await client.post("/webhooks/file_drop", json={
            "sender_id": "huge", "id": "h-1", "text": "video nè", "attachments": [{
                "kind": "video", "url": host.fail("cdn/huge.mp4", 404), "size": 10**12, "width": 2**40,
                "height": -5, "duration": 1e300, "mime_type": "video/" + "x" * 300, "name": "n" * 900}]})
        assert response.status_code == 200
        await client.settle()
        headers = await client.login()
        _, [message] = await customer_messages(client, headers)
        assert message["text"] == "video nè"
        [shown] = message["attachments"]
        assert shown["status"] == "failed" and shown["size"] is None and shown["width"] is None


async def test_an_empty_download_fails_with_the_reason(client, host):
    await post_messenger(client, messenger_event("m_empty", [image(host.serve("cdn/empty.jpg", b"", "image/jpeg"))]))
    await client.settle()
    [row] = rows(client)
    assert row.status == "failed" and "empty" in row.error


async def test_a_shared_contact_is_shown_with_its_phone(drop_client, host):
    await drop_client.post("/webhooks/file_drop", json={"sender_id": "cust-contact", "id": "c-1", "attachments": [
        {"kind": "contact", "phone": "+84901234567", "name": "Nguyễn An"}]})
    await drop_client.settle()
    headers = await drop_client.login()
    _, [message] = await customer_messages(drop_client, headers)
    [shown] = message["attachments"]
    assert (shown["kind"], shown["phone"], shown["name"], shown["status"], shown["url"]) == (
        "contact", "+84901234567", "Nguyễn An", "stored", None)


def test_the_inbox_is_told_when_a_file_is_in_or_failed():
    from helpdesk.core.events import DomainEvent
    from helpdesk.inbox.live import event_frame

    event = DomainEvent("attachment_updated", {"conversation_id": 7, "message_id": 31, "attachment_id": "a-1",
                                               "status": "failed", "error": "the platform answered 404"})
    assert event_frame(event, 7) == {"type": "event", "event": "attachment_updated", "conversation_id": 7,
                                     "message_id": 31, "attachment_id": "a-1", "status": "failed",
                                     "error": "the platform answered 404"}
