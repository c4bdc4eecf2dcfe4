"""Web Push end to end against a fake push service on loopback: the VAPID key pair is made once and
kept, browsers' subscriptions are checked and kept per agent, and a conversation that needs an agent
reaches their browsers as an encrypted push (decrypted here with the browser's own keys) signed with a
VAPID JWT (aud, exp, sub checked); a 410 deletes the subscription, a 5xx is tried again."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import pytest
from sqlmodel import Session, select

from helpdesk.conversations.models import Conversation
from helpdesk.push import service
from helpdesk.push.models import PushSubscription
from tests.conftest import ADMIN_EMAIL, start_client
from tests.fakes.push_service import FakePushService, PushBrowser

PASSWORD = "agent-pass-1"


@pytest.fixture
def push_service() -> Iterator[FakePushService]:
    with FakePushService() as fake:
        yield fake


@pytest.fixture
async def push_client(make_settings):
    # short pauses between tries of a failed push, so the retry test takes well under a second
    async for value in start_client(make_settings(worker={"retry_base_s": 0.05, "retry_max_s": 0.2})):
        yield value


async def make_agent(client, admin_headers, email, teams=()):
    response = await client.post("/api/agents", headers=admin_headers, json={
        "email": email, "name": email.split("@")[0], "password": PASSWORD, "teams": list(teams)})
    assert response.status_code == 201, response.text
    return response.json()["id"], await client.login(email, PASSWORD)


async def subscribe(client, headers, browser: PushBrowser) -> int:
    response = await client.post("/api/push/subscriptions", headers=headers, json=browser.subscription_json())
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def customer_says(client, sender: str, text: str, n: int = 1) -> None:
    response = await client.post("/webhooks/cli", json={"sender_id": sender, "message_id": f"{sender}-{n}",
                                                        "text": text, "name": "Lê Văn An"})
    assert response.status_code == 200, response.text
    await client.settle()


def latest_conversation(client) -> Conversation:
    with Session(client.wiring.engine) as session:
        return session.exec(select(Conversation).order_by(Conversation.id.desc())).first()


def subscriptions(client) -> list[PushSubscription]:
    with Session(client.wiring.engine) as session:
        return list(session.exec(select(PushSubscription)).all())


async def test_vapid_key_pair_is_made_once_and_survives_a_restart(make_settings, database_url):
    settings = make_settings(database_url=database_url)
    keys = []
    for _ in range(2):  # two starts on the same database: a restart, or a second replica
        async for client in start_client(settings):
            headers = await client.login()
            response = await client.get("/api/push/vapid-public-key", headers=headers)
            assert response.status_code == 200, response.text
            keys.append(response.json()["public_key"])
    assert keys[0] == keys[1]
    raw = base64.urlsafe_b64decode(keys[0] + "=" * (-len(keys[0]) % 4))
    assert len(raw) == 65 and raw[0] == 4  # an uncompressed P-256 point: the applicationServerKey


async def test_a_configured_vapid_key_wins(make_settings):
    configured = service.new_vapid_keys()
    async for client in start_client(make_settings(vapid_private_key=configured.private_key)):
        headers = await client.login()
        response = await client.get("/api/push/vapid-public-key", headers=headers)
        assert response.json() == {"public_key": configured.public_key}
        assert (await client.get("/api/push/vapid-public-key")).status_code == 401


async def test_subscriptions_are_checked_and_kept_per_agent(push_client, push_service):
    client = push_client
    admin = await client.login()
    _, lan = await make_agent(client, admin, "lan@test.local", ["care"])
    _, minh = await make_agent(client, admin, "minh@test.local", ["technical"])
    good = PushBrowser.new(push_service.subscription_url("lan-phone")).subscription_json()
    bad_cases = {
        "endpoint": {**good, "endpoint": "ftp://push.example/x"},
        "https": {**good, "endpoint": "http://push.example.com/abc"},
        "p256dh": {**good, "keys": {**good["keys"], "p256dh": "B" + "A" * 86}},
        "auth": {**good, "keys": {**good["keys"], "auth": "c2hvcnQtc2VjcmV0"}},
    }
    for field, body in bad_cases.items():
        response = await client.post("/api/push/subscriptions", headers=lan, json=body)
        assert response.status_code == 422, (field, response.text)
        assert field in response.text or "https" in response.text, response.text
    assert (await client.post("/api/push/subscriptions", json=good)).status_code == 401

    # Several devices for one agent; the same endpoint again replaces, not duplicates.
    phone = await subscribe(client, lan, PushBrowser.new(push_service.subscription_url("lan-phone")))
    laptop = await subscribe(client, lan, PushBrowser.new(push_service.subscription_url("lan-laptop")))
    again = await subscribe(client, lan, PushBrowser.new(push_service.subscription_url("lan-laptop")))
    assert again == laptop
    listed = (await client.get("/api/push/subscriptions", headers=lan)).json()
    assert listed["count"] == 2 and {row["id"] for row in listed["data"]} == {phone, laptop}
    assert (await client.get("/api/push/subscriptions", headers=minh)).json()["count"] == 0

    # Only the owner deletes, by id or by endpoint.
    assert (await client.delete(f"/api/push/subscriptions/{phone}", headers=minh)).status_code == 404
    assert (await client.delete(f"/api/push/subscriptions/{phone}", headers=lan)).status_code == 204
    gone = await client.request("DELETE", "/api/push/subscriptions", headers=lan,
                                json={"endpoint": push_service.subscription_url("lan-laptop")})
    assert gone.status_code == 204
    assert (await client.get("/api/push/subscriptions", headers=lan)).json()["count"] == 0
    nothing = await client.request("DELETE", "/api/push/subscriptions", headers=lan)
    assert nothing.status_code == 400 and "endpoint" in nothing.json()["detail"]


async def test_a_new_conversation_is_pushed_encrypted_and_signed(push_client, push_service):
    client = push_client
    admin = await client.login()
    _, lan = await make_agent(client, admin, "lan@test.local", ["care"])
    phone = PushBrowser.new(push_service.subscription_url("lan-phone"))
    laptop = PushBrowser.new(push_service.subscription_url("lan-laptop"))
    await subscribe(client, lan, phone)
    await subscribe(client, lan, laptop)
    public_key = (await client.get("/api/push/vapid-public-key", headers=lan)).json()["public_key"]

    sent_at = time.time()
    await customer_says(client, "push-a", "cho mình gặp nhân viên")
    conversation = latest_conversation(client)
    assert conversation.state == "waiting_for_agent"

    for browser, token in ((phone, "lan-phone"), (laptop, "lan-laptop")):
        [received] = push_service.wait_for(1, token)
        assert received.status == 201
        assert received.headers["content-encoding"] == "aes128gcm"
        assert int(received.headers["ttl"]) > 0
        assert browser.decrypt(received.body) == {
            "title": "Cuộc trò chuyện mới: Lê Văn An", "body": "Lê Văn An đang chờ nhân viên",
            "conversation_id": conversation.id, "url": f"/inbox/conversations/{conversation.id}",
            "kind": "new_conversation"}
        _, key = received.vapid()
        assert key == public_key  # signed with the key the browser subscribed with
        claims = received.vapid_claims()
        assert claims["aud"] == push_service.base_url
        assert sent_at < claims["exp"] <= time.time() + 24 * 3600
        assert claims["sub"] == f"mailto:{ADMIN_EMAIL}"
    assert {row.last_sent_at is not None for row in subscriptions(client)} == {True}


async def test_a_customer_message_is_pushed_to_the_agent_answering_only(push_client, push_service):
    client = push_client
    admin = await client.login()
    _, lan = await make_agent(client, admin, "lan@test.local", ["care"])
    _, minh = await make_agent(client, admin, "minh@test.local", ["care"])
    lan_phone = PushBrowser.new(push_service.subscription_url("lan-phone"))
    await subscribe(client, lan, lan_phone)
    await subscribe(client, minh, PushBrowser.new(push_service.subscription_url("minh-phone")))
    await customer_says(client, "push-b", "cho mình gặp nhân viên")
    conversation = latest_conversation(client)
    assert (await client.post(f"/api/conversations/{conversation.id}/claim", headers=lan)).status_code == 200
    await client.settle()
    before_minh = len(push_service.for_token("minh-phone"))
    before_lan = len(push_service.for_token("lan-phone"))

    await customer_says(client, "push-b", "Nồi cơm nhà mình hỏng rồi", n=2)
    received = push_service.wait_for(before_lan + 1, "lan-phone")[-1]
    assert lan_phone.decrypt(received.body) == {
        "title": "Tin nhắn mới từ Lê Văn An", "body": "Nồi cơm nhà mình hỏng rồi",
        "conversation_id": conversation.id, "url": f"/inbox/conversations/{conversation.id}", "kind": "message"}
    assert len(push_service.for_token("minh-phone")) == before_minh  # not his conversation


async def test_pushes_respect_what_the_agent_may_see(push_client, push_service):
    client = push_client
    admin = await client.login()
    _, care = await make_agent(client, admin, "care@test.local", ["care"])
    _, tech = await make_agent(client, admin, "tech@test.local", ["technical"])
    await subscribe(client, care, PushBrowser.new(push_service.subscription_url("care")))
    await subscribe(client, tech, PushBrowser.new(push_service.subscription_url("tech")))
    await customer_says(client, "push-c", "cho mình gặp nhân viên")
    conversation = latest_conversation(client)
    moved = await client.post(f"/api/conversations/{conversation.id}/assign", headers=admin, json={"team": "care"})
    assert moved.status_code == 200
    with Session(client.wiring.engine) as session:
        told = service.deliveries_for(session, conversation.id, "new_conversation")
    endpoints = {delivery.endpoint for delivery in told}
    assert push_service.subscription_url("care") in endpoints
    assert push_service.subscription_url("tech") not in endpoints


async def test_a_gone_subscription_is_deleted(push_client, push_service):
    client = push_client
    admin = await client.login()
    _, lan = await make_agent(client, admin, "lan@test.local", ["care"])
    await subscribe(client, lan, PushBrowser.new(push_service.subscription_url("old-phone")))
    await subscribe(client, lan, PushBrowser.new(push_service.subscription_url("new-phone")))
    push_service.answer("old-phone", 410)
    await customer_says(client, "push-d", "cho mình gặp nhân viên")
    assert push_service.wait_for(1, "old-phone")[0].status == 410
    assert push_service.wait_for(1, "new-phone")[0].status == 201
    await client.settle()
    assert [row.endpoint for row in subscriptions(client)] == [push_service.subscription_url("new-phone")]


async def test_a_failing_push_service_is_tried_again(push_client, push_service, caplog):
    client = push_client
    admin = await client.login()
    _, lan = await make_agent(client, admin, "lan@test.local", ["care"])
    browser = PushBrowser.new(push_service.subscription_url("flaky"))
    await subscribe(client, lan, browser)
    push_service.answer("flaky", 503, times=2)
    await customer_says(client, "push-e", "cho mình gặp nhân viên")
    pushes = push_service.wait_for(3, "flaky")
    assert [push.status for push in pushes] == [503, 503, 201]
    assert browser.decrypt(pushes[-1].body)["kind"] == "new_conversation"
    assert "push service answered 503" in caplog.text  # each failure is logged
    await client.settle()
    [row] = subscriptions(client)
    assert row.last_error is None and row.last_sent_at is not None


@pytest.mark.slow  # a server with a child worker process
def test_the_child_worker_sends_the_push_in_process_mode(make_settings, push_service):
    """With the worker in a child process (``worker.mode=process``) the turn, its escalation event and the
    push job all run in the child, which has the push job and the same key pair (from the database)."""
    import httpx

    from tests.conftest import ADMIN_PASSWORD, LiveServer

    with LiveServer(make_settings(worker={"mode": "process"})) as server:
        http = httpx.Client(base_url=server.url, timeout=10)
        deadline = time.monotonic() + 60
        while http.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "worker never became ready"
            time.sleep(0.1)
        token = http.post("/api/auth/token", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).json()
        admin = {"Authorization": f"Bearer {token['access_token']}"}
        browser = PushBrowser.new(push_service.subscription_url("admin-desk"))
        assert http.post("/api/push/subscriptions", headers=admin, json=browser.subscription_json()).status_code == 201
        public_key = http.get("/api/push/vapid-public-key", headers=admin).json()["public_key"]
        response = http.post("/webhooks/cli", json={"sender_id": "push-p", "message_id": "push-p-1",
                                                    "text": "cho mình gặp nhân viên", "name": "Lê Văn An"})
        assert response.status_code == 200
        [received] = push_service.wait_for(1, "admin-desk", timeout=30)
        assert received.status == 201 and received.vapid()[1] == public_key
        assert browser.decrypt(received.body)["kind"] == "new_conversation"
