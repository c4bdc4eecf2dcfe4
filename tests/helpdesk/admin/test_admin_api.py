"""The API behind the admin pages: inviting agents, guarding the last admin, teams, canned responses
with placeholders, and each channel's status. Admin-only routes answer an agent with 403."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import Session, select

from helpdesk.agents.models import Agent
from helpdesk.conversations.models import Conversation
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.outbox.models import OutboxItem
from helpdesk.shop.models import Order
from tests.helpdesk.reports.factories import make_agent

ADMIN_ONLY = [
    ("PATCH", "/api/teams/1", {"name": "x"}),
    ("PUT", "/api/teams/1/members", {"agent_ids": []}),
    ("GET", "/api/admin/channels", None),
    ("POST", "/api/agents", {"email": "z@test.local", "name": "Z"}),
    ("PATCH", "/api/canned-responses/1", {"title": "x"}),
    ("DELETE", "/api/canned-responses/1", None),
]


async def test_admin_routes_refuse_an_agent(client):
    admin = await client.login()
    _, agent = await make_agent(client, admin, "lan@test.local")
    for method, path, body in ADMIN_ONLY:
        response = await client.request(method, path, headers=agent, json=body)
        assert response.status_code == 403, (method, path, response.text)


async def test_an_invite_without_password_returns_a_temporary_one_that_logs_in(client):
    admin = await client.login()
    response = await client.post("/api/agents", headers=admin,
                                 json={"email": "Minh@Test.local", "name": "Minh", "role": "supervisor"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["role"] == "supervisor" and len(body["temporary_password"]) >= 12
    assert await client.login("minh@test.local", body["temporary_password"])
    # with a password given, none is made up
    response = await client.post("/api/agents", headers=admin,
                                 json={"email": "an@test.local", "name": "An", "password": "long-enough-1"})
    assert response.json()["temporary_password"] is None


async def test_an_invite_with_a_bad_email_or_a_taken_one_is_refused(client):
    admin = await client.login()
    assert (await client.post("/api/agents", headers=admin, json={"email": "no-at", "name": "X"})).status_code == 422
    first = await client.post("/api/agents", headers=admin, json={"email": "dup@test.local", "name": "X"})
    assert first.status_code == 201
    again = await client.post("/api/agents", headers=admin, json={"email": "dup@test.local", "name": "Y"})
    assert again.status_code == 409 and "already exists" in again.json()["detail"]


async def test_an_admin_cannot_deactivate_themselves_nor_leave_no_admin(client):
    admin = await client.login()
    me = (await client.get("/api/me", headers=admin)).json()
    response = await client.patch(f"/api/agents/{me['id']}", headers=admin, json={"is_active": False})
    assert response.status_code == 409 and "your own account" in response.json()["detail"]
    response = await client.patch(f"/api/agents/{me['id']}", headers=admin, json={"role": "agent"})
    assert response.status_code == 409 and "last active admin" in response.json()["detail"]
    # with a second admin, the first may step down; the second cannot then be deactivated by them
    # (it would be the last), and deactivation works for an ordinary agent
    other_id, other = await make_agent(client, admin, "boss@test.local", role="admin")
    assert (await client.patch(f"/api/agents/{me['id']}", headers=admin, json={"role": "agent"})).status_code == 200
    response = await client.patch(f"/api/agents/{me['id']}", headers=other, json={"role": "admin"})
    assert response.status_code == 200
    agent_id, _ = await make_agent(client, other, "nhan@test.local")
    response = await client.patch(f"/api/agents/{agent_id}", headers=other, json={"is_active": False})
    assert response.status_code == 200 and response.json()["is_active"] is False
    response = await client.patch(f"/api/agents/{agent_id}", headers=other, json={"is_active": True})
    assert response.json()["is_active"] is True


@pytest.fixture
async def any_db_client(make_settings, database_url):
    """The app on SQLite and on the real PostgreSQL."""
    from tests.conftest import start_client

    async for value in start_client(make_settings(database_url=database_url)):
        yield value


async def test_renaming_a_team_carries_the_name_to_its_agents_and_conversations(any_db_client):
    client = any_db_client
    admin = await client.login()
    agent_id, _ = await make_agent(client, admin, "kt@test.local", teams=("kythuat",))
    teams = (await client.get("/api/teams", headers=admin)).json()
    team = next(t for t in teams if t["name"] == "kythuat")
    with Session(client.wiring.engine) as session:
        customer = Customer(name="Chị Hoa")
        session.add(customer)
        session.flush()
        identity = ChannelIdentity(customer_id=customer.id, channel="cli", external_id="hoa")
        session.add(identity)
        session.flush()
        session.add(Conversation(customer_id=customer.id, identity_id=identity.id, channel="cli", team="kythuat"))
        session.commit()
    response = await client.patch(f"/api/teams/{team['id']}", headers=admin, json={"name": "Kỹ thuật"})
    assert response.status_code == 200 and response.json() == {"id": team["id"], "name": "Kỹ thuật",
                                                                "member_ids": [agent_id]}
    with Session(client.wiring.engine) as session:
        assert session.exec(select(Conversation.team)).all() == ["Kỹ thuật"]
        assert session.get(Agent, agent_id).team == "Kỹ thuật"
    await client.post("/api/teams", headers=admin, json={"name": "banhang"})
    clash = await client.patch(f"/api/teams/{team['id']}", headers=admin, json={"name": "banhang"})
    assert clash.status_code == 409
    assert (await client.patch(f"/api/teams/{team['id']}", headers=admin, json={"name": ""})).status_code == 422
    assert (await client.patch("/api/teams/999", headers=admin, json={"name": "x"})).status_code == 404


async def test_team_members_are_replaced_and_unknown_agents_refused(client):
    admin = await client.login()
    first, _ = await make_agent(client, admin, "a1@test.local", teams=("care",))
    second, _ = await make_agent(client, admin, "a2@test.local")
    team = next(t for t in (await client.get("/api/teams", headers=admin)).json() if t["name"] == "care")
    response = await client.put(f"/api/teams/{team['id']}/members", headers=admin, json={"agent_ids": [second]})
    assert response.status_code == 200 and response.json()["member_ids"] == [second]
    agents = {a["id"]: a for a in (await client.get("/api/agents", headers=admin)).json()["data"]}
    assert agents[first]["teams"] == [] and agents[second]["teams"] == ["care"]
    bad = await client.put(f"/api/teams/{team['id']}/members", headers=admin, json={"agent_ids": [second, 4242]})
    assert bad.status_code == 400 and "4242" in bad.json()["detail"]


async def test_canned_responses_are_edited_deleted_and_checked_for_placeholders(client):
    admin = await client.login()
    unknown = await client.post("/api/canned-responses", headers=admin, json={
        "shortcut": "chao", "title": "Chào", "text": "Chào {ten_khach}"})
    assert unknown.status_code == 400 and "{ten_khach}" in unknown.json()["detail"]
    created = await client.post("/api/canned-responses", headers=admin, json={
        "shortcut": "chao", "title": "Chào", "text": "Chào {customer_name}"})
    assert created.status_code == 201
    row_id = created.json()["id"]
    other = await client.post("/api/canned-responses", headers=admin, json={
        "shortcut": "cam-on", "title": "Cảm ơn", "text": "Cảm ơn"})
    edited = await client.patch(f"/api/canned-responses/{row_id}", headers=admin,
                                json={"text": "Đơn {order_code} của {customer_name}", "title": "Đơn hàng"})
    assert edited.status_code == 200 and edited.json()["title"] == "Đơn hàng"
    assert (await client.patch(f"/api/canned-responses/{row_id}", headers=admin,
                               json={"text": "{bad}"})).status_code == 400
    assert (await client.patch(f"/api/canned-responses/{row_id}", headers=admin,
                               json={"shortcut": "cam-on"})).status_code == 409
    assert (await client.patch(f"/api/canned-responses/{row_id}", headers=admin,
                               json={"title": None})).status_code == 400
    assert (await client.delete(f"/api/canned-responses/{other.json()['id']}", headers=admin)).status_code == 204
    assert (await client.delete(f"/api/canned-responses/{other.json()['id']}", headers=admin)).status_code == 404
    names = [p["name"] for p in (await client.get("/api/canned-responses/placeholders", headers=admin)).json()]
    assert {"customer_name", "order_code"} <= set(names)


async def test_a_canned_response_is_filled_in_for_a_conversation(client):
    admin = await client.login()
    row = (await client.post("/api/canned-responses", headers=admin, json={
        "shortcut": "don", "title": "Đơn", "text": "Chào {customer_name}, đơn {order_code} đang giao. {agent_name}"
    })).json()
    with Session(client.wiring.engine) as session:
        customer = Customer(name="Chị Hoa")
        nameless = Customer()
        session.add(customer)
        session.add(nameless)
        session.flush()
        ids = []
        for who in (customer, nameless):
            identity = ChannelIdentity(customer_id=who.id, channel="cli", external_id=f"c{who.id}")
            session.add(identity)
            session.flush()
            conversation = Conversation(customer_id=who.id, identity_id=identity.id, channel="cli")
            session.add(conversation)
            session.flush()
            ids.append(conversation.id)
        session.add(Order(code="DH001", phone="0901000001", customer_id=customer.id, created_at=datetime(2026, 1, 1, tzinfo=UTC)))
        session.add(Order(code="DH002", phone="0901000001", customer_id=customer.id, created_at=datetime(2026, 2, 1, tzinfo=UTC)))
        session.commit()
    filled = await client.post(f"/api/canned-responses/{row['id']}/expand", headers=admin,
                               json={"conversation_id": ids[0]})
    assert filled.status_code == 200
    assert filled.json() == {"text": "Chào Chị Hoa, đơn DH002 đang giao. Admin", "missing": []}
    bare = await client.post(f"/api/canned-responses/{row['id']}/expand", headers=admin,
                             json={"conversation_id": ids[1]})
    assert bare.json() == {"text": "Chào {customer_name}, đơn {order_code} đang giao. Admin",
                           "missing": ["customer_name", "order_code"]}
    missing = await client.post(f"/api/canned-responses/{row['id']}/expand", headers=admin,
                                json={"conversation_id": 9999})
    assert missing.status_code == 404


async def test_channel_status_shows_webhook_urls_last_error_and_no_secret(make_settings, fake_telegram,
                                                                         database_url):
    from tests.conftest import start_client

    settings = make_settings(database_url=database_url, telegram={"token": fake_telegram.token, "secret_token": "s3cret-token-value",
                                       "api_base": fake_telegram.base_url},
                             storage={"public_base_url": "https://care.example.vn/"})
    async for client in start_client(settings):
        admin = await client.login()
        with Session(client.wiring.engine) as session:
            session.add(OutboxItem(channel="telegram", recipient_id="1", body={}, status="failed",
                                   last_error="Forbidden: bot was blocked by the user"))
            session.commit()
        response = await client.get("/api/admin/channels", headers=admin)
        assert response.status_code == 200
        assert "s3cret" not in response.text and fake_telegram.token not in response.text
        rows = {row["name"]: row for row in response.json()["data"]}
        assert rows["telegram"]["enabled"] is True
        assert rows["telegram"]["webhook_url"] == "https://care.example.vn/webhooks/telegram"
        assert rows["telegram"]["last_error"] == "Forbidden: bot was blocked by the user"
        assert rows["zalo_oa"]["enabled"] is False
        assert rows["zalo_oa"]["webhook_url"] == "https://care.example.vn/webhooks/zalo-oa"
        assert rows["cli"]["needs_webhook"] is False and rows["cli"]["webhook_url"] is None
        assert rows["telegram"]["last_webhook_at"] is None
        update = {"update_id": 1, "message": {"message_id": 1, "date": 1700000000, "text": "hi",
                                              "chat": {"id": 5, "type": "private"}, "from": {"id": 5, "is_bot": False,
                                                                                          "first_name": "A"}}}
        hook = await client.post("/webhooks/telegram", json=update,
                                 headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-token-value"})
        assert hook.status_code == 200, hook.text
        rows = {row["name"]: row for row in (await client.get("/api/admin/channels", headers=admin)).json()["data"]}
        assert rows["telegram"]["last_webhook_at"] is not None


async def test_admin_pages_open_by_role(client):
    admin = await client.login()
    await make_agent(client, admin, "sup@test.local", role="supervisor")
    away = await client.get("/admin/agents")
    assert away.status_code == 303 and away.headers["location"] == "/inbox/login?next=/admin/agents"
    session = await client.post("/api/auth/session", json={"email": "sup@test.local", "password": "agent-pass-1"})
    assert session.status_code == 200, session.text
    home = await client.get("/admin")
    assert home.status_code == 303 and home.headers["location"] == "/admin/canned"
    assert (await client.get("/admin/canned")).status_code == 200
    refused = await client.get("/admin/agents")
    assert refused.status_code == 403 and "Trang này dành cho quản trị viên" in refused.text
    assert 'href="/admin/agents"' not in refused.text  # the navigation offers only what they may open
