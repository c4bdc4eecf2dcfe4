"""Agents' files: sent from the API as multipart, checked against the server's cap and the channel's
limits before anything is sent, delivered by the outbox with the channel's own file API (a test
channel uploading to a loopback file host), a refusal shown as a failed delivery with the reason;
and downloads only for agents who may see the conversation, never as a page."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from helpdesk.attachments.models import Attachment
from helpdesk.conversations.models import Message
from tests.helpdesk.attachments.conftest import MAX_BYTES, FileDropConnector
from tests.helpdesk.attachments.files import PDF, jpeg, truncated_jpeg

PASSWORD = "agent-pass-1"


async def open_conversation(client, sender: str = "cust-1") -> int:
    response = await client.post("/webhooks/file_drop", json={"sender_id": sender, "id": f"{sender}-1",
                                                              "text": "cho mình gặp nhân viên"})
    assert response.status_code == 200, response.text
    await client.settle()
    headers = await client.login()
    return (await client.get("/api/conversations", headers=headers)).json()["data"][0]["id"]


def send(client, conversation_id: int, headers, name: str, data: bytes, mime: str, text: str | None = None):
    return client.post(f"/api/conversations/{conversation_id}/messages", headers=headers,
                       files={"file": (name, data, mime)}, data={"text": text} if text is not None else {})


async def test_an_agents_document_goes_out_through_the_channels_file_api(drop_client, host):
    conversation_id = await open_conversation(drop_client)
    headers = await drop_client.login()
    response = await send(drop_client, conversation_id, headers, "huong-dan.pdf", PDF, "application/pdf",
                          text="Manual attached")
    assert response.status_code == 201, response.text
    message = response.json()
    [shown] = message["attachments"]
    assert (shown["kind"], shown["mime_type"], shown["size"], shown["name"]) == ("file", "application/pdf",
                                                                                len(PDF), "huong-dan.pdf")
    assert shown["url"] == f"/api/attachments/{shown['id']}" and message["text"] == "Manual attached"
    await drop_client.settle()
    [upload] = host.uploads
    assert (upload.data, upload.kind, upload.mime_type, upload.caption) == (PDF, "file", "application/pdf",
                                                                            "Manual attached")
    listed = (await drop_client.get(f"/api/conversations/{conversation_id}/messages", headers=headers)).json()
    sent = next(m for m in listed["data"] if m["id"] == message["id"])
    assert sent["delivery_status"] == "sent" and sent["attachments"][0]["id"] == shown["id"]


async def test_a_photo_goes_out_as_a_photo(drop_client, host):
    conversation_id = await open_conversation(drop_client)
    headers = await drop_client.login()
    photo = jpeg(120, 90)
    response = await send(drop_client, conversation_id, headers, "part.bin", photo, "application/octet-stream")
    assert response.status_code == 201 and response.json()["attachments"][0]["kind"] == "image"
    await drop_client.settle()
    assert [(u.kind, u.mime_type, u.data == photo) for u in host.uploads] == [("image", "image/jpeg", True)]


async def test_a_platform_refusal_shows_as_a_failed_delivery_with_the_reason(drop_client, host):
    conversation_id = await open_conversation(drop_client)
    headers = await drop_client.login()
    host.refuse_uploads(400, "(#100) Upload attachment failure: the file type is not allowed")
    response = await send(drop_client, conversation_id, headers, "a.pdf", PDF, "application/pdf")
    assert response.status_code == 201
    await drop_client.settle()
    with Session(drop_client.wiring.engine) as session:
        message = session.get(Message, response.json()["id"])
        assert message.delivery_status == "failed" and "file type is not allowed" in message.delivery_error


@pytest.mark.parametrize(("name", "data", "status", "reason"), [
    ("empty.pdf", b"", 422, "empty"),
    ("big.pdf", PDF + b"0" * MAX_BYTES, 413, f"limit of {MAX_BYTES}"),
    ("photo.jpg", jpeg(640, 480), 413, "at most 20000 bytes"),
    ("doc.pdf", PDF + b"%" * 150_000, 413, "at most 100000 bytes"),
    ("cut.jpg", truncated_jpeg(), 422, "truncated"),
])
async def test_files_the_channel_or_server_cannot_take_are_refused_before_sending(drop_client, host, name,
                                                                                  data, status, reason):
    conversation_id = await open_conversation(drop_client)
    headers = await drop_client.login()
    response = await send(drop_client, conversation_id, headers, name, data, "application/octet-stream")
    assert response.status_code == status and reason in response.json()["detail"]
    await drop_client.settle()
    assert host.uploads == []
    with Session(drop_client.wiring.engine) as session:
        assert session.exec(select(Attachment)).all() == []
        assert session.exec(select(Message).where(Message.author == "agent")).all() == []


async def test_a_kind_the_channel_cannot_send_is_refused_with_415(drop_client, host, monkeypatch):
    monkeypatch.setattr(FileDropConnector, "media_limits", {"image": 20_000})
    conversation_id = await open_conversation(drop_client)
    headers = await drop_client.login()
    response = await send(drop_client, conversation_id, headers, "doc.pdf", PDF, "application/pdf")
    assert response.status_code == 415 and "cannot send" in response.json()["detail"]


async def test_text_replies_still_take_json(drop_client):
    conversation_id = await open_conversation(drop_client)
    headers = await drop_client.login()
    ok = await drop_client.post(f"/api/conversations/{conversation_id}/messages", headers=headers,
                                json={"text": "Dạ em chào chị"})
    assert ok.status_code == 201 and ok.json()["attachments"] == [] and ok.json()["text"] == "Dạ em chào chị"
    bad = await drop_client.post(f"/api/conversations/{conversation_id}/messages", headers=headers, json={"text": ""})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "text"]
    await drop_client.settle()
    assert drop_client.wiring.connectors["file_drop"].texts[-1] == "Dạ em chào chị"


async def test_downloads_need_an_agent_who_may_see_the_conversation(drop_client):
    conversation_id = await open_conversation(drop_client)
    admin = await drop_client.login()
    sent = (await send(drop_client, conversation_id, admin, "a.pdf", PDF, "application/pdf")).json()
    url = sent["attachments"][0]["url"]
    for team in ("care", "technical"):
        created = await drop_client.post("/api/agents", headers=admin, json={
            "email": f"{team}@test.local", "name": team, "password": PASSWORD, "role": "agent", "teams": [team]})
        assert created.status_code == 201, created.text
    moved = await drop_client.post(f"/api/conversations/{conversation_id}/assign", headers=admin,
                                   json={"team": "care"})
    assert moved.status_code == 200
    care = await drop_client.login("care@test.local", PASSWORD)
    technical = await drop_client.login("technical@test.local", PASSWORD)

    assert (await drop_client.get(url)).status_code == 401
    assert (await drop_client.get(url, headers=technical)).status_code == 403
    assert (await drop_client.get(url + "/thumbnail", headers=technical)).status_code == 403
    assert (await drop_client.get("/api/attachments/0fbbccd2-a8bd-486a-908a-feef60529cd3",
                                  headers=admin)).status_code == 404
    allowed = await drop_client.get(url, headers=care)
    assert allowed.status_code == 200 and allowed.content == PDF


@pytest.mark.parametrize(("name", "data", "content_type", "disposition"), [
    ("manual.pdf", PDF, "application/pdf", "attachment"),
    ("page.html", b"<html><script>alert(document.cookie)</script></html>", "application/octet-stream",
     "attachment"),
    ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
     "application/octet-stream", "attachment"),
    ("photo.jpg", jpeg(100, 80), "image/jpeg", "inline"),
])
async def test_files_are_served_so_that_nothing_in_them_can_run(drop_client, name, data, content_type,
                                                                disposition):
    conversation_id = await open_conversation(drop_client)
    headers = await drop_client.login()
    sent = await send(drop_client, conversation_id, headers, name, data, "text/html")
    assert sent.status_code == 201, sent.text
    response = await drop_client.get(sent.json()["attachments"][0]["url"], headers=headers)
    assert response.status_code == 200 and response.content == data
    assert response.headers["content-type"].split(";")[0] == content_type
    assert response.headers["content-disposition"].startswith(f"{disposition}; filename=")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == "sandbox; default-src 'none'"


async def test_the_customer_panel_lists_the_customers_files_newest_first(drop_client):
    conversation_id = await open_conversation(drop_client)
    headers = await drop_client.login()
    first = (await send(drop_client, conversation_id, headers, "a.pdf", PDF, "application/pdf")).json()
    second = (await send(drop_client, conversation_id, headers, "b.jpg", jpeg(60, 40), "image/jpeg")).json()
    customer_id = (await drop_client.get(f"/api/conversations/{conversation_id}", headers=headers)).json()[
        "customer_id"]
    listed = (await drop_client.get(f"/api/customers/{customer_id}/attachments", headers=headers)).json()
    assert listed["count"] == 2
    assert [(a["id"], a["name"], a["author"], a["message_id"]) for a in listed["data"]] == [
        (second["attachments"][0]["id"], "b.jpg", "agent", second["id"]),
        (first["attachments"][0]["id"], "a.pdf", "agent", first["id"])]
    timeline = (await drop_client.get(f"/api/customers/{customer_id}/messages", headers=headers)).json()
    assert [a["id"] for m in timeline["data"] for a in m["attachments"]] == [
        first["attachments"][0]["id"], second["attachments"][0]["id"]]
    assert (await drop_client.get("/api/customers/999999/attachments", headers=headers)).status_code == 404


async def test_players_can_ask_for_byte_ranges(drop_client):
    conversation_id = await open_conversation(drop_client)
    headers = await drop_client.login()
    sent = (await send(drop_client, conversation_id, headers, "a.pdf", PDF, "application/pdf")).json()
    url = sent["attachments"][0]["url"]
    whole = await drop_client.get(url, headers=headers)
    assert whole.headers["accept-ranges"] == "bytes"
    first = await drop_client.get(url, headers={**headers, "Range": "bytes=0-9"})
    assert first.status_code == 206 and first.content == PDF[:10]
    assert first.headers["content-range"] == f"bytes 0-9/{len(PDF)}"
    last = await drop_client.get(url, headers={**headers, "Range": "bytes=-6"})
    assert last.status_code == 206 and last.content == PDF[-6:]
    rest = await drop_client.get(url, headers={**headers, "Range": "bytes=20-"})
    assert rest.status_code == 206 and rest.content == PDF[20:]
    past = await drop_client.get(url, headers={**headers, "Range": f"bytes={len(PDF)}-"})
    assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{len(PDF)}"
    several = await drop_client.get(url, headers={**headers, "Range": "bytes=0-1,5-6"})
    assert several.status_code == 200 and several.content == PDF  # one range or the whole file
