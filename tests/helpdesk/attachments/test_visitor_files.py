"""Web chat visitors' files: the upload endpoint, its answer and the socket frames the widget
renders, signed short-lived links, an agent's file pushed to the visitor, and retention."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from helpdesk.attachments import links
from helpdesk.attachments.models import Attachment
from helpdesk.attachments.tasks import apply_retention
from helpdesk.conversations.models import Conversation, Message
from helpdesk.core.db import utcnow
from tests.helpdesk.attachments.conftest import MAX_BYTES
from tests.helpdesk.attachments.files import PDF, gps_of, jpeg
from tests.helpdesk.webchat.test_webchat import TestClient, Webchat, open_socket

SECRET = "visitor-files-secret-key"


@pytest.fixture
def webchat(make_settings, storage_dir) -> Iterator[Webchat]:
    from helpdesk.app import create_app

    settings = make_settings(secret_key=SECRET, storage={"local_dir": str(storage_dir), "max_bytes": MAX_BYTES,
                                                         "retention_days": 30})
    with TestClient(create_app(settings)) as client:
        yield Webchat(client)


def upload(webchat: Webchat, token: str, data: bytes, name: str = "photo.jpg", **fields: str):
    return webchat.client.post(f"/webchat/attachments?token={token}", files={"file": (name, data, "image/jpeg")},
                               data=fields)


def agent_messages(webchat: Webchat) -> tuple[int, list[dict]]:
    headers = webchat.agent_headers()
    conversation_id = webchat.client.get("/api/conversations", headers=headers).json()["data"][0]["id"]
    listed = webchat.client.get(f"/api/conversations/{conversation_id}/messages", headers=headers).json()
    return conversation_id, listed["data"]


def test_a_visitors_photo_is_stored_answered_with_signed_links_and_reaches_the_inbox(webchat, storage_dir):
    session = webchat.new_session()
    photo = jpeg(900, 700, gps=True)
    response = upload(webchat, session["token"], photo, text="hộp bị móp", id="client-msg-0001")
    assert response.status_code == 201, response.text
    assert response.headers["access-control-allow-origin"] == "*"
    body = response.json()
    assert (body["id"], body["text"], body["duplicate"]) == ("client-msg-0001", "hộp bị móp", False)
    [shown] = body["attachments"]
    assert (shown["kind"], shown["mime_type"], shown["size"], shown["width"]) == ("image", "image/jpeg",
                                                                                 len(photo), 900)
    assert shown["url"].startswith(f"/webchat/attachments/{shown['id']}?expires=")
    assert shown["thumbnail_url"].startswith(f"/webchat/attachments/{shown['id']}/thumbnail?expires=")
    file = webchat.client.get(shown["url"])
    assert file.status_code == 200 and file.content == photo
    assert file.headers["x-content-type-options"] == "nosniff"
    thumbnail = webchat.client.get(shown["thumbnail_url"])
    assert thumbnail.status_code == 200 and gps_of(thumbnail.content) == {}

    webchat.settle()
    _, messages = agent_messages(webchat)
    [customer] = [m for m in messages if m["author"] == "customer"]
    assert customer["text"] == "hộp bị móp"
    [seen] = customer["attachments"]
    assert seen["id"] == shown["id"] and seen["url"] == f"/api/attachments/{shown['id']}"
    headers = webchat.agent_headers()
    assert webchat.client.get(seen["url"], headers=headers).content == photo


def test_a_resend_with_the_same_id_is_stored_once(webchat):
    session = webchat.new_session()
    first = upload(webchat, session["token"], jpeg(), id="client-msg-0002")
    again = upload(webchat, session["token"], jpeg(), id="client-msg-0002")
    assert (first.status_code, again.status_code) == (201, 201) and again.json()["duplicate"] is True
    webchat.settle()
    assert webchat.count(Message, Message.author == "customer") == 1


@pytest.mark.parametrize(("data", "status", "reason"), [
    (b"", 422, "empty"),
    (PDF + b"0" * MAX_BYTES, 413, "limit"),
])
def test_empty_and_oversized_uploads_are_refused_with_the_reason(webchat, data, status, reason):
    session = webchat.new_session()
    response = upload(webchat, session["token"], data)
    assert response.status_code == status and reason in response.json()["detail"]
    assert response.headers["access-control-allow-origin"] == "*"
    assert webchat.count(Attachment) == 0


def test_an_upload_needs_a_valid_visitor_token_and_a_file(webchat):
    session = webchat.new_session()
    assert upload(webchat, "forged.token", jpeg()).status_code == 401
    no_file = webchat.client.post(f"/webchat/attachments?token={session['token']}", data={"text": "hi"},
                                  files={"other": ("x", b"x")})
    assert no_file.status_code == 422 and "'file'" in no_file.json()["detail"]


def test_signed_links_expire_and_cannot_be_altered(webchat):
    session = webchat.new_session()
    shown = upload(webchat, session["token"], jpeg()).json()["attachments"][0]
    attachment_id = shown["id"]
    expired = links.signed_path(SECRET, attachment_id, ttl_s=60, now=time.time() - 120)
    refused = webchat.client.get(expired)
    assert refused.status_code == 403 and "expired" in refused.json()["detail"]
    tampered = shown["url"].replace("expires=", "expires=9")
    assert webchat.client.get(tampered).status_code == 403
    unsigned = webchat.client.get(f"/webchat/attachments/{attachment_id}")
    assert unsigned.status_code == 403
    # a thumbnail's link does not open the file, nor one made with another key
    thumbnail_query = shown["thumbnail_url"].split("?", 1)[1]
    assert webchat.client.get(f"/webchat/attachments/{attachment_id}?{thumbnail_query}").status_code == 403
    foreign = links.signed_path("another-secret-key", attachment_id, ttl_s=60)
    assert webchat.client.get(foreign).status_code == 403
    assert webchat.client.get(shown["url"]).status_code == 200


def test_an_agents_file_is_pushed_to_the_visitor_with_a_signed_link(webchat):
    session = webchat.new_session()
    with open_socket(webchat, session["token"]) as (socket, _history):
        socket.say("cho mình gặp nhân viên")
        socket.idle()
        conversation_id, _ = agent_messages(webchat)
        sent = webchat.client.post(f"/api/conversations/{conversation_id}/messages",
                                   headers=webchat.agent_headers(),
                                   files={"file": ("huong-dan.pdf", PDF, "application/pdf")},
                                   data={"text": "Sách hướng dẫn"})
        assert sent.status_code == 201, sent.text
        frame = socket.wait_for(lambda f: f["type"] == "message" and f["author"] == "agent")
    assert frame["text"] == "Sách hướng dẫn"
    [attachment] = frame["attachments"]
    assert (attachment["kind"], attachment["name"], attachment["mime_type"], attachment["size"]) == (
        "file", "huong-dan.pdf", "application/pdf", len(PDF))
    download = webchat.client.get(attachment["url"])
    assert download.status_code == 200 and download.content == PDF
    assert download.headers["content-disposition"].startswith("attachment;")
    webchat.settle()
    # and the history replays it, with a fresh link
    with open_socket(webchat, session["token"]) as (_socket, history):
        replayed = [item for item in history if item.get("attachments")]
    assert [item["attachments"][0]["name"] for item in replayed] == ["huong-dan.pdf"]
    assert webchat.client.get(replayed[0]["attachments"][0]["url"]).content == PDF


def test_files_of_conversations_past_retention_are_deleted_with_their_rows(webchat, storage_dir):
    session = webchat.new_session()
    upload(webchat, session["token"], jpeg(), text="ảnh lỗi")
    webchat.settle()
    conversation_id, _ = agent_messages(webchat)
    stray = upload(webchat, webchat.new_session()["token"], PDF, name="x.pdf").json()["attachments"][0]["id"]
    webchat.settle()
    with Session(webchat.wiring.engine) as db:
        conversation = db.get(Conversation, conversation_id)
        conversation.state, conversation.resolved_at = "resolved", utcnow() - timedelta(days=31)
        # an upload whose turn never came (the visitor's message was never processed)
        stray_row = db.get(Attachment, stray)
        stray_row.conversation_id, stray_row.message_id = None, None
        stray_row.created_at = utcnow() - timedelta(days=2)
        db.commit()
    assert len([p for p in storage_dir.rglob("*") if p.is_file()]) == 3  # a photo, its thumbnail, a PDF
    deleted = webchat.client.portal.call(apply_retention, webchat.wiring.attachments)
    assert deleted == 2
    assert [p for p in storage_dir.rglob("*") if p.is_file()] == []
    with Session(webchat.wiring.engine) as db:
        assert db.exec(select(Attachment)).all() == []
        kept = db.exec(select(Message).where(Message.conversation_id == conversation_id,
                                             Message.author == "customer")).one()
        assert kept.text == "ảnh lỗi" and kept.attachments == []


def test_files_of_recent_conversations_are_kept(webchat):
    session = webchat.new_session()
    upload(webchat, session["token"], jpeg())
    webchat.settle()
    assert webchat.client.portal.call(apply_retention, webchat.wiring.attachments) == 0
    assert webchat.count(Attachment) == 1


def test_a_visitor_sending_too_many_files_is_asked_to_wait(webchat):
    session = webchat.new_session()
    statuses = [upload(webchat, session["token"], jpeg(40, 30)).status_code for _ in range(11)]
    assert statuses == [201] * 10 + [429]
    other = webchat.new_session()
    assert upload(webchat, other["token"], jpeg(40, 30)).status_code == 201
