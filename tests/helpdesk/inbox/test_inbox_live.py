"""The agent inbox in process: its live socket (who hears what, presence), its pages and its view queries.

The real app runs under starlette's TestClient with the inbox wired in the way ``helpdesk/app.py``
wires it; a browser's side of the socket is played by ``websocket_connect`` with the session cookie.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from sqlmodel import Session, select
from starlette.websockets import WebSocketDisconnect

from helpdesk.conversations.models import Conversation
from helpdesk.core.db import utcnow
from helpdesk.agents.deps import SESSION_COOKIE
from helpdesk.customers.models import ChannelIdentity
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.sockets import Frame, FrameReader

with warnings.catch_warnings():
    # Starlette would like httpx2 for its TestClient; httpx is what the project has and works.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

PASSWORD = "agent-pass-1"
XSS = "<img src=x onerror=alert(1)>"


def inbox_app(settings):
    """The app with the inbox."""
    from helpdesk.app import create_app

    return create_app(settings)


class LiveSocket(FrameReader):
    """One inbox tab's socket: frames with a time limit (a missing frame fails instead of hanging)."""

    def wait_for(self, match: Callable[[Frame], bool], timeout: float = 10.0) -> list[Frame]:
        """Frames up to and including the first that matches."""
        frames = []
        while True:
            frames.append(self.receive(timeout))
            if match(frames[-1]):
                return frames


class Inbox:
    """The app under a TestClient, with what the tests do to it."""

    def __init__(self, client: TestClient):
        self.client = client
        self.admin = self.bearer(ADMIN_EMAIL, ADMIN_PASSWORD)

    @property
    def wiring(self):
        """The running app's wiring."""
        return self.client.app.state.wiring

    def settle(self) -> None:
        """Wait until the worker has processed everything submitted."""
        self.client.portal.call(self.wiring.worker.wait_idle)

    def bearer(self, email: str, password: str = PASSWORD) -> dict[str, str]:
        """API headers for an account."""
        response = self.client.post("/api/auth/token", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def browser_session(self, email: str, password: str = PASSWORD) -> dict[str, str]:
        """Log in as a browser does; returns the Cookie header (the client's own jar stays empty)."""
        response = self.client.post("/api/auth/session", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        token = response.cookies[SESSION_COOKIE]
        self.client.cookies.clear()
        return {"cookie": f"{SESSION_COOKIE}={token}"}

    def make_agent(self, email: str, teams: list[str], role: str = "agent") -> int:
        """Create an account in these teams; returns its id."""
        response = self.client.post("/api/agents", headers=self.admin, json={
            "email": email, "name": email.split("@")[0].title(), "password": PASSWORD, "role": role,
            "teams": teams})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def make_team(self, name: str) -> None:
        """Create a team nobody is in yet (conversations can be moved only to teams that exist)."""
        response = self.client.post("/api/teams", headers=self.admin, json={"name": name})
        assert response.status_code == 201, response.text

    def customer_says(self, sender: str, text: str, name: str | None = None) -> int:
        """A customer message through the cli channel, processed; returns the conversation id."""
        body = {"sender_id": sender, "message_id": f"{sender}-{time.monotonic_ns()}", "text": text}
        if name:
            body["name"] = name
        assert self.client.post("/webhooks/cli", json=body).status_code == 200
        self.settle()
        with Session(self.wiring.engine) as session:
            return session.exec(
                select(Conversation.id).join(ChannelIdentity, ChannelIdentity.id == Conversation.identity_id)
                .where(ChannelIdentity.channel == "cli", ChannelIdentity.external_id == sender)
                .order_by(Conversation.id.desc())).first()

    def escalated(self, sender: str, team: str | None = None, name: str | None = None) -> int:
        """A customer who asked for a person; optionally moved to a team's queue."""
        conversation_id = self.customer_says(sender, "cho mình gặp nhân viên", name=name)
        if team is not None:
            moved = self.client.post(f"/api/conversations/{conversation_id}/assign", headers=self.admin,
                                     json={"team": team})
            assert moved.status_code == 200, moved.text
        return conversation_id

    def live(self, cookie: dict[str, str] | None = None, **headers: str):
        """Open the live socket with these headers."""
        return self.client.websocket_connect("/inbox/live", headers={**(cookie or {}), **headers})

    def me(self, headers: dict[str, str]) -> dict:
        """GET /api/me."""
        return self.client.get("/api/me", headers=headers).json()

    def conversation(self, conversation_id: int) -> dict:
        """The conversation as the admin reads it."""
        return self.client.get(f"/api/conversations/{conversation_id}", headers=self.admin).json()


@pytest.fixture
def inbox(make_settings) -> Iterator[Inbox]:
    """The app with the inbox, on SQLite; a closed socket takes its agent offline at once."""
    app = inbox_app(make_settings())
    app.state.inbox_offline_grace_s = 0.0
    # From this machine, as `caredesk chat` is: the cli channel answers only loopback callers.
    with TestClient(app, client=("127.0.0.1", 50000)) as client:
        yield Inbox(client)


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll until ``check`` holds (work after a socket closes runs on the server's own time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def about(conversation_id: int) -> Callable[[Frame], bool]:
    """Matches a frame about this conversation."""
    return lambda frame: frame.get("conversation_id") == conversation_id


def from_customer(frame: Frame) -> bool:
    """Matches the announcement of a customer's message."""
    return frame.get("event") == "message_created" and frame.get("author") == "customer"


# ------------------------------------------------------------------------------------------ the socket


def test_live_socket_refuses_without_a_valid_session(inbox):
    for headers in ({}, {"cookie": f"{SESSION_COOKIE}=not-a-session"}):
        with inbox.live(headers) as session:
            with pytest.raises(WebSocketDisconnect) as refused:
                session.receive_json()
            assert refused.value.code == 4401
    # A bearer token is for API clients; the socket only takes the browser's session cookie.
    token = inbox.admin["Authorization"].removeprefix("Bearer ")
    with inbox.live({"cookie": f"{SESSION_COOKIE}={token}"}) as session:
        with pytest.raises(WebSocketDisconnect) as refused:
            session.receive_json()
        assert refused.value.code == 4401


def test_live_socket_refuses_a_page_of_another_site(inbox):
    cookie = inbox.browser_session(ADMIN_EMAIL, ADMIN_PASSWORD)
    with inbox.live(cookie, origin="https://evil.example") as session:
        with pytest.raises(WebSocketDisconnect) as refused:
            session.receive_json()
        assert refused.value.code == 4403


def test_a_revoked_agents_open_socket_is_closed_at_once(inbox):
    agent_id = inbox.make_agent("revoked@test.local", ["care"])
    cookie = inbox.browser_session("revoked@test.local")
    with inbox.live(cookie) as raw:
        socket = LiveSocket(raw)
        assert socket.receive()["type"] == "hello"
        changed = inbox.client.patch(f"/api/agents/{agent_id}", headers=inbox.admin, json={"is_active": False})
        assert changed.status_code == 200, changed.text
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                socket.receive(timeout=5)
        assert closed.value.code == 4401
    with inbox.live(cookie) as raw:  # and the session cannot open another
        with pytest.raises(WebSocketDisconnect) as refused:
            raw.receive_json()
        assert refused.value.code == 4401


def test_agent_hears_about_their_teams_conversations_and_not_another_teams(inbox):
    inbox.make_agent("care@test.local", ["care"])
    inbox.make_agent("tech@test.local", ["technical"])
    theirs = inbox.escalated("live-care", team="care")
    others = inbox.escalated("live-tech", team="technical")
    cookie = inbox.browser_session("care@test.local")

    with inbox.live(cookie) as raw:
        socket = LiveSocket(raw)
        assert socket.receive()["type"] == "hello"
        # The other team's customer writes first: had it leaked, its frames would arrive first.
        inbox.customer_says("live-tech", "alo shop ơi, máy xay bị rò nước")
        inbox.customer_says("live-care", "alo shop ơi, nồi cơm không nóng")
        frames = socket.wait_for(lambda f: about(theirs)(f) and f.get("author") == "customer")
        assert not [f for f in frames if about(others)(f)], frames
        customer_frame = frames[-1]
        assert customer_frame == {"type": "event", "event": "message_created", "conversation_id": theirs,
                                  "message_id": customer_frame["message_id"], "author": "customer",
                                  "new_conversation": False}

        # Moved to the other team, it leaves this agent's sight: one "gone" frame, then silence.
        moved = inbox.client.post(f"/api/conversations/{theirs}/assign", headers=inbox.admin,
                                  json={"team": "technical"})
        assert moved.status_code == 200
        frames = socket.wait_for(lambda f: f["type"] == "gone")
        assert frames[-1] == {"type": "gone", "conversation_id": theirs}
        inbox.customer_says("live-care", "còn ai ở đó không")
        inbox.customer_says("live-other", "cho mình hỏi giờ mở cửa")  # a new conversation, no team: everyone's
        frames = socket.wait_for(lambda f: f.get("event") == "message_created" and f.get("author") == "customer")
        assert not [f for f in frames if about(theirs)(f) or about(others)(f)], frames


@pytest.mark.slow
def test_the_socket_sets_the_agent_online_and_the_last_close_sets_them_offline(inbox):
    agent_id = inbox.make_agent("presence@test.local", [])
    api = inbox.bearer("presence@test.local")
    waiting = inbox.escalated("presence-1")
    assert inbox.conversation(waiting)["state"] == "waiting_for_agent"
    cookie = inbox.browser_session("presence@test.local")

    with inbox.live(cookie) as first, inbox.live(cookie) as second:
        LiveSocket(first).receive()
        LiveSocket(second).receive()
        assert inbox.me(api)["is_online"] is True
        # Coming online takes the waiting conversation (round robin among online agents).
        assert (inbox.conversation(waiting)["state"], inbox.conversation(waiting)["assignee_id"]) == (
            "with_agent", agent_id)
        second.close()
        time.sleep(0.2)
        assert inbox.me(api)["is_online"] is True  # another tab is still open

    assert eventually(lambda: inbox.me(api)["is_online"] is False)
    detail = inbox.conversation(waiting)
    assert (detail["state"], detail["assignee_id"]) == ("waiting_for_agent", None)


@pytest.mark.slow
def test_a_closed_inbox_keeps_the_conversations_the_agent_is_answering(inbox):
    agent_id = inbox.make_agent("answering@test.local", [])
    api = inbox.bearer("answering@test.local")
    answered = inbox.escalated("answering-1")
    untouched = inbox.escalated("answering-2")
    noted = inbox.escalated("answering-3")
    cookie = inbox.browser_session("answering@test.local")

    with inbox.live(cookie) as raw:
        LiveSocket(raw).receive()
        assert all(inbox.conversation(c)["assignee_id"] == agent_id for c in (answered, untouched, noted))
        replied = inbox.client.post(f"/api/conversations/{answered}/messages", headers=api,
                                    json={"text": "Dạ em xem đơn cho anh ngay ạ"})
        assert replied.status_code == 201, replied.text
        # A private note is no answer to the customer.
        note = inbox.client.post(f"/api/conversations/{noted}/notes", headers=api, json={"text": "khách quen"})
        assert note.status_code == 201, note.text

    # The browser closed past the grace period: the agent is offline, the conversation they answered
    # stays theirs, the ones nobody has answered yet go back to the queue for someone online.
    assert eventually(lambda: inbox.me(api)["is_online"] is False)
    assert (inbox.conversation(answered)["state"], inbox.conversation(answered)["assignee_id"]) == (
        "with_agent", agent_id)
    for conversation_id in (untouched, noted):
        detail = inbox.conversation(conversation_id)
        assert (detail["state"], detail["assignee_id"]) == ("waiting_for_agent", None)

    # Going offline on purpose (the presence switch) still hands everything back.
    with inbox.live(cookie) as raw:
        LiveSocket(raw).receive()
        assert eventually(lambda: inbox.me(api)["is_online"] is True)
        went = inbox.client.post("/api/me/presence", headers=api, json={"online": False})
        assert went.status_code == 200, went.text
        detail = inbox.conversation(answered)
        assert (detail["state"], detail["assignee_id"]) == ("waiting_for_agent", None)


def test_every_socket_allowed_hears_a_message_at_once_and_no_other_does(inbox):
    owner = inbox.make_agent("owner@test.local", ["care"])
    inbox.make_agent("colleague@test.local", ["care"])
    inbox.make_agent("lead@test.local", ["care"], role="supervisor")
    inbox.make_agent("tech3@test.local", ["technical"])
    theirs = inbox.escalated("fan-1", team="care")
    assert inbox.client.post(f"/api/conversations/{theirs}/assign", headers=inbox.admin,
                             json={"agent_id": owner}).status_code == 200
    cookies = {who: inbox.browser_session(f"{who}@test.local")
               for who in ("owner", "colleague", "lead", "tech3")}
    cookies["admin"] = inbox.browser_session(ADMIN_EMAIL, ADMIN_PASSWORD)
    with inbox.live(cookies["owner"]) as a, inbox.live(cookies["colleague"]) as b, \
            inbox.live(cookies["lead"]) as c, inbox.live(cookies["tech3"]) as d, inbox.live(cookies["admin"]) as e:
        sockets = {"owner": LiveSocket(a), "colleague": LiveSocket(b), "lead": LiveSocket(c),
                   "tech3": LiveSocket(d), "admin": LiveSocket(e)}
        for socket in sockets.values():
            assert socket.receive()["type"] == "hello"
        inbox.customer_says("fan-1", "shop ơi máy vẫn chưa chạy")
        inbox.customer_says("fan-everyone", "cho mình hỏi giờ mở cửa")  # no team: everyone hears it
        for who, socket in sockets.items():
            frames = []
            while len([f for f in frames if from_customer(f)]) < (2 if who in ("owner", "lead", "admin") else 1):
                frames += socket.wait_for(from_customer)
            about_theirs = [f for f in frames if from_customer(f) and about(theirs)(f)]
            if who in ("owner", "lead", "admin"):
                # The same frame, encoded once, for everyone who may see the conversation.
                assert about_theirs == [{"type": "event", "event": "message_created", "conversation_id": theirs,
                                         "message_id": about_theirs[0]["message_id"], "author": "customer",
                                         "new_conversation": False}], who
            else:
                assert about_theirs == [], who


def test_a_member_taken_out_of_a_team_stops_hearing_its_conversations_at_once(inbox):
    leaving = inbox.make_agent("leaving@test.local", ["care"], role="supervisor")
    colleague = inbox.make_agent("stays@test.local", ["care"])
    theirs = inbox.escalated("leave-1", team="care")
    assert inbox.client.post(f"/api/conversations/{theirs}/assign", headers=inbox.admin,
                             json={"agent_id": colleague}).status_code == 200
    cookie = inbox.browser_session("leaving@test.local")
    with inbox.live(cookie) as raw:
        socket = LiveSocket(raw)
        assert socket.receive()["type"] == "hello"
        inbox.customer_says("leave-1", "alo shop")
        assert about(theirs)(socket.wait_for(from_customer)[-1])
        moved = inbox.client.patch(f"/api/agents/{leaving}", headers=inbox.admin, json={"teams": ["technical"]})
        assert moved.status_code == 200, moved.text
        inbox.customer_says("leave-1", "còn ai không")
        inbox.customer_says("leave-other", "cho mình hỏi giờ mở cửa")  # everyone's: it ends the wait
        frames = socket.wait_for(lambda f: from_customer(f) and not about(theirs)(f))
        assert [f for f in frames if from_customer(f) and about(theirs)(f)] == []
        assert {"type": "gone", "conversation_id": theirs} in frames  # it was on this page


def test_the_live_rule_is_the_rule_of_may_see(inbox):
    import asyncio

    from helpdesk.agents.models import Agent
    from helpdesk.agents.teams import may_see
    from helpdesk.core.events import DomainEvent
    from helpdesk.inbox.live import EventResolver, may_know

    people = {"care agent": inbox.make_agent("r-care@test.local", ["care"]),
              "care lead": inbox.make_agent("r-lead@test.local", ["care"], role="supervisor"),
              "both agent": inbox.make_agent("r-both@test.local", ["care", "technical"]),
              "tech agent": inbox.make_agent("r-tech@test.local", ["technical"]),
              "no-team agent": inbox.make_agent("r-none@test.local", []),
              "other admin": inbox.make_agent("r-admin@test.local", [], role="admin")}
    cases = []
    for team in (None, "care", "technical"):
        for assignee in (None, people["care agent"], people["tech agent"]):
            conversation_id = inbox.escalated(f"rule-{team}-{assignee}")
            with Session(inbox.wiring.engine) as session:
                row = session.get(Conversation, conversation_id)
                row.team, row.assignee_id = team, assignee
                session.commit()
            cases.append(conversation_id)
    resolver = EventResolver(inbox.wiring.engine)
    with Session(inbox.wiring.engine) as session:
        agents = [session.get(Agent, agent_id) for agent_id in people.values()]
        for conversation_id in cases:
            conversation = session.get(Conversation, conversation_id)
            stored = asyncio.run(resolver.resolve(DomainEvent("message_created", {
                "conversation_id": conversation_id, "message_id": 1, "author": "customer"}))).snapshot
            carried = asyncio.run(resolver.resolve(DomainEvent("conversation_updated", {
                "conversation_id": conversation_id, "team": conversation.team,
                "assignee_id": conversation.assignee_id}))).snapshot
            for agent in agents:
                expected = may_see(session, agent, conversation)
                assert may_know(agent, stored) is expected, (agent.email, conversation.team, conversation.assignee_id)
                assert may_know(agent, carried) is expected, (agent.email, conversation.team, conversation.assignee_id)


# ------------------------------------------------------------------------------------------ the pages


def test_pages_ask_for_a_login_first(inbox):
    for path in ("/inbox", "/inbox/conversations/1"):
        response = inbox.client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == f"/inbox/login?next={path}"
    login = inbox.client.get("/inbox/login?next=https://evil.example/")
    assert login.status_code == 200
    assert 'id="login-form"' in login.text and "Đăng nhập" in login.text
    assert '"next": "/inbox"' in login.text  # never bounced to another site
    assert "script-src 'self'" in login.headers["content-security-policy"]
    assert inbox.client.get("/inbox/static/inbox.js").status_code == 200
    assert inbox.client.get("/inbox/static/i18n/en.json").json()["views.mine"] == "Mine"


def test_customer_text_is_escaped_in_the_served_pages(inbox):
    conversation_id = inbox.escalated("xss-1", name=XSS)
    inbox.customer_says("xss-1", XSS)
    cookie = inbox.browser_session(ADMIN_EMAIL, ADMIN_PASSWORD)

    page = inbox.client.get(f"/inbox/conversations/{conversation_id}", headers=cookie)
    assert page.status_code == 200
    assert "<img" not in page.text
    assert f"<title>{XSS.replace('<', '&lt;').replace('>', '&gt;')} · Hộp thư · CareDesk</title>" in page.text
    assert "\\u003cimg src=x onerror=alert(1)\\u003e" in page.text  # the embedded data, still inert
    assert "script-src 'self'" in page.headers["content-security-policy"]  # and no inline script would run
    # The JSON the page reads carries the text as it was written; the page puts it in as text.
    rows = inbox.client.get(f"/inbox/api/rows?ids={conversation_id}", headers=cookie).json()
    assert rows["data"][0]["customer_name"] == XSS and rows["data"][0]["preview"]["text"] == XSS


def test_a_conversation_of_another_team_is_not_found(inbox):
    inbox.make_agent("tech2@test.local", ["technical"])
    inbox.make_team("care")
    theirs = inbox.escalated("nf-1", team="care")
    cookie = inbox.browser_session("tech2@test.local")
    for conversation_id in (theirs, 999_999):
        page = inbox.client.get(f"/inbox/conversations/{conversation_id}", headers=cookie)
        assert page.status_code == 404
        assert "Không tìm thấy cuộc trò chuyện" in page.text
        assert 'id="conv-notfound">' in page.text.replace(" hidden", "")  # shown, not hidden
    assert inbox.client.get(f"/inbox/api/rows?ids={theirs}", headers=cookie).json()["missing"] == [theirs]
    assert inbox.client.get(f"/inbox/api/conversations/{theirs}/commerce", headers=cookie).status_code == 404


# ------------------------------------------------------------------------------------------ the views


def test_views_count_and_sort_by_priority_then_waiting_time(inbox):
    me = inbox.make_agent("views@test.local", ["care"])
    api = inbox.bearer("views@test.local")
    first = inbox.escalated("v-1", team="care")
    second = inbox.escalated("v-2", team="care")
    urgent = inbox.escalated("v-3", team="care")
    inbox.client.patch(f"/api/conversations/{urgent}", headers=inbox.admin, json={"priority": "urgent"})
    with Session(inbox.wiring.engine) as session:  # a deadline in ten minutes: "breaching soon"
        row = session.get(Conversation, second)
        row.first_response_due_at = utcnow() + timedelta(minutes=10)
        session.commit()

    page = inbox.client.get("/inbox/api/views?view=unassigned", headers=api).json()
    assert [row["id"] for row in page["data"]] == [urgent, first, second]
    assert page["counts"] == {"unassigned": 3, "mine": 0, "team": 3, "all": 3, "breaching": 1, "resolved": 0}
    assert set(page["data"][0]["views"]) == {"unassigned", "team", "all"}
    assert page["data"][0]["preview"]["author"] == "bot" and page["data"][0]["customer_name"] is None

    assert inbox.client.post(f"/api/conversations/{first}/claim", headers=api).status_code == 200
    assert inbox.client.post(f"/api/conversations/{urgent}/resolve", headers=inbox.admin).status_code == 200
    counts = inbox.client.get("/inbox/api/counts", headers=api).json()["counts"]
    assert counts == {"unassigned": 1, "mine": 1, "team": 2, "all": 2, "breaching": 1, "resolved": 1}
    mine = inbox.client.get("/inbox/api/views?view=mine", headers=api).json()
    assert [(row["id"], row["assignee_id"]) for row in mine["data"]] == [(first, me)]
    assert inbox.client.get("/inbox/api/views?view=nope", headers=api).status_code == 422


def test_orders_and_warranties_come_by_verified_phone_only(inbox):
    from pathlib import Path

    from helpdesk.customers.models import Customer
    from helpdesk.shop.service import load_shop_file

    conversation_id = inbox.escalated("shop-1")
    with Session(inbox.wiring.engine) as session:
        load_shop_file(session, Path(__file__).resolve().parents[3] / "data" / "demo" / "shop.yml")
        customer = session.get(Customer, session.get(Conversation, conversation_id).customer_id)
        customer.phone = "0901234567"  # DH100001's phone, not yet verified
        customer_id = customer.id
        session.commit()
    path = f"/inbox/api/conversations/{conversation_id}/commerce"
    assert inbox.client.get(path, headers=inbox.admin).json()["orders"] == []

    with Session(inbox.wiring.engine) as session:
        session.get(Customer, customer_id).phone_verified = True
        session.commit()
    commerce = inbox.client.get(path, headers=inbox.admin).json()
    assert [(o["code"], o["status"]) for o in commerce["orders"]] == [("DH100001", "delivered")]
    assert [(w["serial"], w["order_code"], w["active"]) for w in commerce["warranties"]] == [
        ("SN100001", "DH100001", True)]


def test_a_row_carries_the_names_tags_and_last_message_the_customer_saw(inbox):
    from helpdesk.customers.models import Customer

    agent_id = inbox.make_agent("rows@test.local", ["care"])
    api = inbox.bearer("rows@test.local")
    conversation_id = inbox.escalated("row-1", team="care", name="Chị Lan")
    with Session(inbox.wiring.engine) as session:  # no name on record: the channel's display name stands in
        session.get(Customer, session.get(Conversation, conversation_id).customer_id).name = None
        session.commit()
    long_text = "máy xay " * 40
    inbox.customer_says("row-1", long_text)
    row = inbox.client.get(f"/inbox/api/rows?ids={conversation_id}", headers=api).json()["data"][0]
    assert (row["customer_name"], row["assignee_id"], row["assignee_name"], row["tags"]) == (
        "Chị Lan", None, None, [])
    assert (row["preview"]["text"], row["preview"]["author"]) == (long_text[:160], "customer")
    assert set(row["views"]) == {"unassigned", "team", "all"}

    assert inbox.client.post(f"/api/conversations/{conversation_id}/messages", headers=api,
                             json={"text": "Dạ em kiểm tra ngay ạ"}).status_code == 201
    assert inbox.client.post(f"/api/conversations/{conversation_id}/notes", headers=api,
                             json={"text": "khách quen, ưu tiên"}).status_code == 201
    assert inbox.client.post(f"/api/conversations/{conversation_id}/tags", headers=api,
                             json={"add": ["may_xay", "bao_hanh"], "remove": []}).status_code == 200
    inbox.settle()
    row = inbox.client.get(f"/inbox/api/rows?ids={conversation_id}", headers=api).json()["data"][0]
    assert (row["assignee_id"], row["assignee_name"], row["tags"]) == (agent_id, "Rows", ["bao_hanh", "may_xay"])
    # The private note is newer, but the list shows what the customer saw.
    assert (row["preview"]["text"], row["preview"]["author"]) == ("Dạ em kiểm tra ngay ạ", "agent")
    assert set(row["views"]) == {"mine", "team", "all"}
    # The view's row and the row asked for by id are the same row.
    listed = inbox.client.get("/inbox/api/views?view=mine", headers=api).json()["data"]
    assert listed == [row]


def test_pages_of_a_view_follow_each_other_without_gaps_or_repeats(inbox):
    ids = [inbox.escalated(f"page-{n}") for n in range(5)]
    inbox.client.patch(f"/api/conversations/{ids[3]}", headers=inbox.admin, json={"priority": "urgent"})
    whole = [r["id"] for r in inbox.client.get("/inbox/api/views?view=all", headers=inbox.admin).json()["data"]]
    assert whole == [ids[3], ids[0], ids[1], ids[2], ids[4]]
    pages = [inbox.client.get(f"/inbox/api/views?view=all&limit=2&offset={offset}", headers=inbox.admin).json()
             for offset in (0, 2, 4)]
    assert [r["id"] for page in pages for r in page["data"]] == whole
    assert {page["count"] for page in pages} == {5}

    for conversation_id in (ids[1], ids[4], ids[0]):
        assert inbox.client.post(f"/api/conversations/{conversation_id}/resolve",
                                 headers=inbox.admin).status_code == 200
    resolved = [inbox.client.get(f"/inbox/api/views?view=resolved&limit=1&offset={offset}",
                                 headers=inbox.admin).json()["data"][0]["id"] for offset in range(3)]
    assert resolved == [ids[0], ids[4], ids[1]]  # latest first


def test_each_role_lists_exactly_the_conversations_it_may_see(inbox):
    from helpdesk.agents.models import Agent
    from helpdesk.agents.teams import may_see

    worker = inbox.make_agent("see-agent@test.local", ["care"])
    inbox.make_agent("see-lead@test.local", ["care"], role="supervisor")
    other = inbox.make_agent("see-other@test.local", ["care"])
    loner = inbox.make_agent("see-loner@test.local", [])  # in no team: works what nobody routed
    inbox.make_team("technical")
    ids = [inbox.escalated("see-1"), inbox.escalated("see-2", team="care"), inbox.escalated("see-3", team="care"),
           inbox.escalated("see-4", team="technical")]
    assert inbox.client.post(f"/api/conversations/{ids[2]}/assign", headers=inbox.admin,
                             json={"agent_id": other}).status_code == 200
    with Session(inbox.wiring.engine) as session:  # another team's conversation, left with this agent
        session.get(Conversation, ids[3]).assignee_id = worker
        session.commit()
    with Session(inbox.wiring.engine) as session:
        for email in ("see-agent@test.local", "see-lead@test.local", "see-loner@test.local", ADMIN_EMAIL):
            agent = session.exec(select(Agent).where(Agent.email == email)).one()
            allowed = [i for i in ids if may_see(session, agent, session.get(Conversation, i))]
            headers = inbox.bearer(email, ADMIN_PASSWORD if email == ADMIN_EMAIL else PASSWORD)
            listed = {r["id"] for r in inbox.client.get("/inbox/api/views?view=all", headers=headers).json()["data"]}
            assert listed == set(allowed), email
            rows = inbox.client.get(f"/inbox/api/rows?ids={','.join(map(str, ids))}", headers=headers).json()
            assert ([r["id"] for r in rows["data"]], rows["missing"]) == (
                allowed, [i for i in ids if i not in allowed]), email
            counts = inbox.client.get("/inbox/api/counts", headers=headers).json()["counts"]
            assert counts["all"] == len(allowed), email
            if agent.id == loner:
                assert allowed == [ids[0]]
                team_view = inbox.client.get("/inbox/api/views?view=team", headers=headers).json()
                assert [r["id"] for r in team_view["data"]] == [ids[0]] and team_view["count"] == 1
    assert len(listed) == 4  # the admin sees everything


def test_a_message_stored_without_its_announcement_is_announced_late_and_only_once(make_settings):
    # A worker killed between a turn's commit and its announcement (or Redis away at that moment)
    # leaves a stored message nobody announced: the open inboxes still hear of it, within the grace,
    # by the same rule of who may see it; a message announced as usual is not announced twice.
    from helpdesk.conversations.models import Message

    app = inbox_app(make_settings())
    app.state.inbox_offline_grace_s = 0.0
    app.state.inbox_missed_check_s, app.state.inbox_missed_grace_s = 0.2, 0.5
    with TestClient(app, client=("127.0.0.1", 50000)) as client:
        inbox = Inbox(client)
        inbox.make_team("care")
        inbox.make_agent("tech4@test.local", ["technical"])
        theirs = inbox.escalated("late-1", team="care")
        cookies = [inbox.browser_session(ADMIN_EMAIL, ADMIN_PASSWORD), inbox.browser_session("tech4@test.local")]
        with inbox.live(cookies[0]) as admin_socket, inbox.live(cookies[1]) as tech_socket:
            admin, tech = LiveSocket(admin_socket), LiveSocket(tech_socket)
            assert admin.receive()["type"] == "hello" and tech.receive()["type"] == "hello"
            inbox.customer_says("late-1", "máy vẫn không lên nguồn")  # announced as usual
            with Session(inbox.wiring.engine) as session:  # committed, never announced
                lost = Message(conversation_id=theirs, direction="in", author="customer", channel="cli",
                               text="shop ơi trả lời giúp mình")
                session.add(lost)
                session.commit()
                lost_id = lost.id
            frames = admin.wait_for(lambda frame: frame.get("message_id") == lost_id, timeout=10)
            assert frames[-1] == {"type": "event", "event": "message_created", "conversation_id": theirs,
                                  "message_id": lost_id, "author": "customer", "private": False,
                                  "new_conversation": False}
            announced = [frame["message_id"] for frame in frames if from_customer(frame)]
            assert len(announced) == len(set(announced)) == 2, frames  # the usual one once, the lost one once
            time.sleep(1.0)  # several more checks: nothing is announced again
            assert client.app.state.inbox_live_hub.missed.announced == 1
            # a conversation everyone may see closes the test: before it, the other team's agent
            # heard of neither message of the care team's conversation, and the admin of nothing more
            everyone = inbox.customer_says("late-everyone", "cho mình hỏi giờ mở cửa")
            tech_frames = tech.wait_for(lambda frame: from_customer(frame) and about(everyone)(frame))
            assert not [frame for frame in tech_frames if about(theirs)(frame)], tech_frames
            admin_frames = admin.wait_for(lambda frame: from_customer(frame) and about(everyone)(frame))
            assert not [frame for frame in admin_frames if from_customer(frame) and about(theirs)(frame)]
