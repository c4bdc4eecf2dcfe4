"""Agents at work: teams and who sees what, assignment, presence, tags, priority, canned replies,
browser sessions with CSRF, and login rate limits."""

from __future__ import annotations

from sqlmodel import Session, select

from helpdesk.audit.models import AuditEntry
from helpdesk.conversations.models import Conversation

PASSWORD = "agent-pass-1"


async def make_agent(client, admin_headers, email, *, role="agent", teams=(), capacity=5):
    response = await client.post("/api/agents", headers=admin_headers, json={
        "email": email, "name": email.split("@")[0], "password": PASSWORD, "role": role, "teams": list(teams),
        "capacity": capacity})
    assert response.status_code == 201, response.text
    return response.json()["id"], await client.login(email, PASSWORD)


async def escalate(client, sender: str) -> int:
    await client.post("/webhooks/cli", json={"sender_id": sender, "message_id": f"{sender}-1",
                                             "text": "cho mình gặp nhân viên"})
    await client.settle()
    with Session(client.wiring.engine) as session:
        conversation = session.exec(select(Conversation).order_by(Conversation.id.desc())).first()
        return conversation.id


async def test_agent_of_another_team_cannot_read_or_act_on_a_conversation(client):
    admin = await client.login()
    _, care = await make_agent(client, admin, "care@test.local", teams=["care"])
    _, tech = await make_agent(client, admin, "tech@test.local", teams=["technical"])
    conversation_id = await escalate(client, "team-1")
    moved = await client.post(f"/api/conversations/{conversation_id}/assign", headers=admin, json={"team": "care"})
    assert moved.status_code == 200 and moved.json()["team"] == "care"

    assert (await client.get(f"/api/conversations/{conversation_id}", headers=care)).status_code == 200
    for method, path, body in [
        ("GET", f"/api/conversations/{conversation_id}", None),
        ("POST", f"/api/conversations/{conversation_id}/messages", {"text": "hi"}),
        ("POST", f"/api/conversations/{conversation_id}/claim", None),
        ("POST", f"/api/conversations/{conversation_id}/resolve", None),
        ("POST", f"/api/conversations/{conversation_id}/notes", {"text": "x"}),
    ]:
        response = await client.request(method, path, headers=tech, json=body)
        assert response.status_code == 404, (method, path, response.status_code)
    listed = (await client.get("/api/conversations", headers=tech)).json()
    assert conversation_id not in [c["id"] for c in listed["data"]]


async def test_round_robin_gives_waiting_conversations_to_online_agents_in_turn(client):
    admin = await client.login()
    first_id, first = await make_agent(client, admin, "a1@test.local")
    second_id, second = await make_agent(client, admin, "a2@test.local")
    for headers in (first, second):
        assert (await client.post("/api/me/presence", headers=headers, json={"online": True})).status_code == 200
    assignees = []
    for n in range(4):
        conversation_id = await escalate(client, f"rr-{n}")
        detail = (await client.get(f"/api/conversations/{conversation_id}", headers=admin)).json()
        assert detail["state"] == "with_agent"
        assignees.append(detail["assignee_id"])
    assert sorted(assignees) == sorted([first_id, second_id, first_id, second_id])
    assert assignees[0] != assignees[1] and assignees[2] != assignees[3]


async def test_capacity_leaves_extra_conversations_waiting(client):
    admin = await client.login()
    _, agent = await make_agent(client, admin, "cap@test.local", capacity=1)
    await client.post("/api/me/presence", headers=agent, json={"online": True})
    first = await escalate(client, "cap-1")
    second = await escalate(client, "cap-2")
    assert (await client.get(f"/api/conversations/{first}", headers=admin)).json()["state"] == "with_agent"
    assert (await client.get(f"/api/conversations/{second}", headers=admin)).json()["state"] == "waiting_for_agent"


async def test_going_offline_puts_the_agents_conversations_back_in_the_queue(client):
    admin = await client.login()
    _, agent = await make_agent(client, admin, "off@test.local")
    await client.post("/api/me/presence", headers=agent, json={"online": True})
    conversation_id = await escalate(client, "off-1")
    assert (await client.get(f"/api/conversations/{conversation_id}", headers=admin)).json()["assignee_id"]
    await client.post("/api/me/presence", headers=agent, json={"online": False})
    detail = (await client.get(f"/api/conversations/{conversation_id}", headers=admin)).json()
    assert (detail["state"], detail["assignee_id"]) == ("waiting_for_agent", None)


async def test_an_agent_cannot_assign_a_conversation_to_someone_else(client):
    admin = await client.login()
    other_id, _ = await make_agent(client, admin, "other@test.local")
    _, agent = await make_agent(client, admin, "self@test.local")
    conversation_id = await escalate(client, "assign-1")
    response = await client.post(f"/api/conversations/{conversation_id}/assign", headers=agent,
                                 json={"agent_id": other_id})
    assert response.status_code == 403


async def test_tags_priority_resolve_and_reopen(client):
    admin = await client.login()
    conversation_id = await escalate(client, "tags-1")
    tagged = await client.post(f"/api/conversations/{conversation_id}/tags", headers=admin,
                               json={"add": ["Giao-tre", "noi-com"]})
    assert tagged.json()["tags"] == ["giao-tre", "noi-com"]
    untagged = await client.post(f"/api/conversations/{conversation_id}/tags", headers=admin,
                                 json={"remove": ["noi-com"]})
    assert untagged.json()["tags"] == ["giao-tre"]
    bad = await client.post(f"/api/conversations/{conversation_id}/tags", headers=admin, json={"add": ["<b>"]})
    assert bad.status_code == 422
    urgent = await client.patch(f"/api/conversations/{conversation_id}", headers=admin, json={"priority": "urgent"})
    assert urgent.json()["priority"] == "urgent"
    assert (await client.post(f"/api/conversations/{conversation_id}/resolve", headers=admin)).json()[
        "state"] == "resolved"
    assert (await client.post(f"/api/conversations/{conversation_id}/resolve", headers=admin)).status_code == 409
    assert (await client.post(f"/api/conversations/{conversation_id}/reopen", headers=admin)).json()[
        "state"] == "waiting_for_agent"
    with Session(client.wiring.engine) as session:
        actions = {e.action for e in session.exec(select(AuditEntry).where(AuditEntry.entity_id == conversation_id))}
    assert {"tags_changed", "priority_changed", "conversation_resolved", "conversation_reopened"} <= actions


async def test_canned_responses_are_searchable_by_shortcut_first(client):
    admin = await client.login()
    for shortcut, title, text in [("chao", "Chào hỏi", "Chào anh/chị, em có thể giúp gì ạ?"),
                                  ("bh12", "Bảo hành 12 tháng", "Sản phẩm được bảo hành 12 tháng ạ."),
                                  ("tra-hang", "Đổi trả", "Anh/chị có thể đổi trả trong 7 ngày ạ (chao)")]:
        created = await client.post("/api/canned-responses", headers=admin,
                                    json={"shortcut": shortcut, "title": title, "text": text})
        assert created.status_code == 201
    duplicate = await client.post("/api/canned-responses", headers=admin,
                                  json={"shortcut": "chao", "title": "x", "text": "y"})
    assert duplicate.status_code == 409
    found = (await client.get("/api/canned-responses", params={"q": "chao"}, headers=admin)).json()
    assert [r["shortcut"] for r in found["data"]] == ["chao", "tra-hang"]


async def test_only_supervisors_create_canned_responses(client):
    admin = await client.login()
    _, agent = await make_agent(client, admin, "plain@test.local")
    response = await client.post("/api/canned-responses", headers=agent,
                                 json={"shortcut": "x", "title": "x", "text": "x"})
    assert response.status_code == 403


async def test_browser_session_needs_the_csrf_token_for_changes(client):
    login = await client.post("/api/auth/session", json={"email": "admin@test.local", "password": "admin-pass-123"})
    assert login.status_code == 200
    set_cookie = " ".join(login.headers.get_list("set-cookie")).lower()
    assert "httponly" in set_cookie and "samesite=lax" in set_cookie
    csrf = login.json()["csrf_token"]
    assert (await client.get("/api/me")).status_code == 200  # reading needs only the cookie
    conversation_id = await escalate(client, "csrf-1")
    refused = await client.post(f"/api/conversations/{conversation_id}/claim")
    assert refused.status_code == 403
    allowed = await client.post(f"/api/conversations/{conversation_id}/claim", headers={"X-CSRF-Token": csrf})
    assert allowed.status_code == 200
    out = await client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 204
    client.cookies.clear()
    assert (await client.get("/api/me")).status_code == 401


async def test_repeated_failed_logins_are_rate_limited(client):
    for _ in range(5):
        response = await client.post("/api/auth/token", json={"email": "admin@test.local", "password": "wrong-1"})
        assert response.status_code == 401
    blocked = await client.post("/api/auth/token", json={"email": "admin@test.local", "password": "admin-pass-123"})
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0


async def test_resolving_asks_the_customer_for_a_rating_that_is_stored_against_the_agent(client):
    from helpdesk.ratings.models import Rating

    admin = await client.login()
    conversation_id = await escalate(client, "csat-1")
    await client.post(f"/api/conversations/{conversation_id}/messages", headers=admin, json={"text": "Em giúp ạ"})
    await client.post(f"/api/conversations/{conversation_id}/resolve", headers=admin)
    await client.settle()
    texts = [m["text"] for m in (await client.get("/webhooks/cli/messages",
                                                 params={"sender_id": "csat-1"})).json()["data"]]
    assert "đánh giá" in texts[-1]
    await client.post("/webhooks/cli", json={"sender_id": "csat-1", "message_id": "csat-1-2", "text": "⭐⭐⭐⭐",
                                             "payload": f"rating:conversation:{conversation_id}:4"})
    await client.settle()
    with Session(client.wiring.engine) as session:
        rating = session.exec(select(Rating)).one()
        admin_id = session.exec(select(Conversation.assignee_id).where(Conversation.id == conversation_id)).one()
    assert (rating.kind, rating.score, rating.conversation_id, rating.agent_id) == (
        "csat", 4, conversation_id, admin_id)


async def test_transferring_to_a_team_that_does_not_exist_is_refused_and_changes_nothing(client):
    admin = await client.login()
    _, agent = await make_agent(client, admin, "hider@test.local", teams=["care"])
    conversation_id = await escalate(client, "transfer-nowhere")
    before = (await client.get(f"/api/conversations/{conversation_id}", headers=admin)).json()

    response = await client.post(f"/api/conversations/{conversation_id}/assign", headers=agent,
                                 json={"team": "no-such-team"})
    assert response.status_code == 404
    assert "no-such-team" in response.json()["detail"]
    assert (await client.get(f"/api/conversations/{conversation_id}", headers=admin)).json() == before
    assert (await client.get(f"/api/conversations/{conversation_id}", headers=agent)).status_code == 200
    with Session(client.wiring.engine) as session:
        assert not session.exec(select(AuditEntry).where(AuditEntry.action == "conversation_transferred")).all()
