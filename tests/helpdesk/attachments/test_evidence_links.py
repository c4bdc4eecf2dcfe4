"""The handoff note of a defect or complaint links the evidence the customer sent: the agent who
takes over opens the stored photos from the note (the links are the agents' download route)."""

from __future__ import annotations

import re

from sqlmodel import Session, select

from helpdesk.attachments.models import Attachment
from tests.helpdesk.attachments.conftest import image, messenger_event, post_messenger
from tests.helpdesk.attachments.files import jpeg

LINK = re.compile(r"/api/attachments/([0-9a-f-]{36})")


async def note_of(client, headers) -> dict:
    conversation = (await client.get("/api/conversations", headers=headers)).json()["data"][0]
    assert (conversation["state"], conversation["priority"]) == ("waiting_for_agent", "high")
    messages = (await client.get(f"/api/conversations/{conversation['id']}", headers=headers)).json()["messages"]
    [note] = [m for m in messages if m["is_private"]]
    return note


async def test_a_defect_reported_with_photos_links_each_stored_photo_in_the_note(client, host):
    photos = [jpeg(640, 480, color=(200, 40, 40)), jpeg(640, 480, color=(40, 200, 40))]
    urls = [host.serve(f"cdn/defect-{n}.jpg", data, "image/jpeg") for n, data in enumerate(photos)]
    response = await post_messenger(client, messenger_event(
        "m_defect", [image(url) for url in urls], text="nồi cơm điện đơn DH100001 bị hỏng, bấm nút không lên đèn"))
    assert response.status_code == 200
    await client.settle()
    headers = await client.login()
    note = await note_of(client, headers)
    assert "DH100001" in note["text"] and "[+ 2 ảnh]" in note["text"]
    linked = LINK.findall(note["text"])
    with Session(client.wiring.engine) as session:
        stored = session.exec(select(Attachment).order_by(Attachment.position)).all()
    assert linked == [row.id for row in stored] and [row.status for row in stored] == ["stored", "stored"]
    for attachment_id, data in zip(linked, photos, strict=True):
        download = await client.get(f"/api/attachments/{attachment_id}", headers=headers)
        assert download.status_code == 200 and download.content == data
    assert (await client.get(f"/api/attachments/{linked[0]}")).status_code == 401  # agents only


async def test_a_photo_sent_before_the_complaint_is_linked_in_the_note_too(client, host):
    photo = jpeg(320, 240)
    first = await post_messenger(client, messenger_event(
        "m_first", [image(host.serve("cdn/box.jpg", photo, "image/jpeg"))]))
    assert first.status_code == 200
    await client.settle()
    second = await post_messenger(client, messenger_event(
        "m_second", [], text="hộp bị móp méo khi giao, đơn DH100002 giao hàng tệ quá"))
    assert second.status_code == 200
    await client.settle()
    headers = await client.login()
    note = await note_of(client, headers)
    with Session(client.wiring.engine) as session:
        [row] = session.exec(select(Attachment)).all()
    assert LINK.findall(note["text"]) == [row.id]
    assert (await client.get(f"/api/attachments/{row.id}", headers=headers)).content == photo
