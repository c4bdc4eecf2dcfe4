"""The web chat channel end to end, in process: session, socket, bot, dedupe, history, agent replies.

The real app runs under starlette's TestClient (lifespan included); the widget's side of the socket is
played by ``websocket_connect``.
"""

from __future__ import annotations

import json
import uuid
import warnings
from collections.abc import Callable, Iterator

import pytest
from sqlmodel import Session, func, select
from starlette.websockets import WebSocketDisconnect

from connectors.base import OutboundRatingRequest, parse_rating_payload
from helpdesk.channels.models import InboundEvent
from helpdesk.channels.tasks import drain_chat_soon
from helpdesk.conversations import service as conversations
from helpdesk.conversations.models import Conversation, DeliveryStatus, Message, MessageAuthor
from helpdesk.outbox.queue import queue_outbound
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.sockets import Frame, FrameReader

with warnings.catch_warnings():
    # Starlette would like httpx2 for its TestClient; httpx is what the project has and works.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient


class Socket(FrameReader):
    """One widget connection: send frames, wait for the ones a test cares about (never forever)."""

    def wait_for(self, match: Callable[[Frame], bool], timeout: float = 10.0) -> Frame:
        """Read frames until one matches; the ones before it stay in ``seen``."""
        while True:
            frame = self.receive(timeout)
            if match(frame):
                return frame

    def send(self, frame: Frame) -> None:
        """Send one frame as the widget would."""
        self.session.send_json(frame)

    def say(self, text: str, message_id: str | None = None) -> str:
        """Send a text message; returns its client id."""
        message_id = message_id or str(uuid.uuid4())
        self.send({"type": "message", "id": message_id, "text": text})
        return message_id

    def bot_reply(self, timeout: float = 10.0) -> Frame:
        """The next bubble from the bot."""
        return self.wait_for(lambda f: f["type"] == "message" and f["author"] == "bot", timeout)

    def idle(self) -> None:
        """Wait for the "done thinking" frame that follows a processed message."""
        self.wait_for(lambda f: f == {"type": "typing", "on": False})

    def frames_until_pong(self) -> list[Frame]:
        """Everything the server sends before answering a ping (it answers pings in order)."""
        self.send({"type": "ping"})
        frames = []
        while (frame := self.receive())["type"] != "pong":
            frames.append(frame)
        return frames


class Webchat:
    """The app under a TestClient, with the few things the tests do to it."""

    def __init__(self, client: TestClient):
        self.client = client

    @property
    def wiring(self):
        """The running app's wiring."""
        return self.client.app.state.wiring

    def new_session(self) -> dict[str, str]:
        """POST /webchat/session."""
        response = self.client.post("/webchat/session")
        assert response.status_code == 201, response.text
        return response.json()

    def connect(self, token: str):
        """Open the socket (a context manager yielding the raw session)."""
        return self.client.websocket_connect(f"/webchat/ws?token={token}")

    def settle(self) -> None:
        """Wait until the worker has processed and delivered everything."""
        self.client.portal.call(self.wiring.worker.wait_idle)

    def agent_headers(self) -> dict[str, str]:
        """Log in as the admin agent."""
        response = self.client.post("/api/auth/token", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def count(self, model, *where) -> int:
        """Rows of a table (optionally filtered)."""
        with Session(self.wiring.engine) as session:
            return session.exec(select(func.count()).select_from(model).where(*where)).one()


@pytest.fixture
def webchat(make_settings) -> Iterator[Webchat]:
    """The app on SQLite, in-memory hub."""
    from helpdesk.app import create_app

    with TestClient(create_app(make_settings())) as client:
        yield Webchat(client)


def open_socket(webchat: Webchat, token: str):
    """Connect and consume the history frame; yields (socket, history)."""

    class _Open:
        def __enter__(self) -> tuple[Socket, list[Frame]]:
            self._context = webchat.connect(token)
            self.socket = Socket(self._context.__enter__())
            try:
                history = self.socket.receive()
                assert history["type"] == "history", history
            except BaseException as exc:
                # a with-block whose __enter__ fails never calls __exit__: close the socket here, or
                # the app's handler waits for the widget forever and the client never shuts down
                self.__exit__(type(exc), exc, exc.__traceback__)
                raise
            return self.socket, history["messages"]

        def __exit__(self, *exc_info: object) -> None:
            self._context.__exit__(*exc_info)
            self.socket._reader.shutdown(wait=False)

    return _Open()


# --- sessions and tokens -----------------------------------------------------------------------


def test_session_gives_a_new_visitor_a_token_signed_for_their_id(webchat):
    first, second = webchat.new_session(), webchat.new_session()
    assert first["visitor_id"] != second["visitor_id"]
    assert first["token"].startswith(first["visitor_id"] + ".")
    response = webchat.client.post("/webchat/session")
    # The widget calls this from the shop's own site, which is another origin.
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("forge", ["missing", "garbage", "other_visitor", "other_key"])
def test_socket_without_a_valid_token_is_closed_with_4401(webchat, forge):
    from helpdesk.webchat.service import new_session

    real = webchat.new_session()
    mac = real["token"].split(".")[1]
    token = {
        "missing": "",
        "garbage": "not-a-token",
        "other_visitor": f"someone-elses-visitor-id.{mac}",
        "other_key": new_session("another-secret-key-0123456789").token,
    }[forge]
    with webchat.connect(token) as session, pytest.raises(WebSocketDisconnect) as closed:
        session.receive_json()
    assert closed.value.code == 4401


def test_webhook_route_does_not_accept_webchat_frames(webchat):
    frame = {"visitor_id": "visitor-aaaaaaaaaaaa", "frame": {"type": "message", "id": str(uuid.uuid4()),
                                                             "text": "giả mạo"}}
    response = webchat.client.post("/webhooks/webchat", json=frame)
    assert response.status_code == 403
    assert webchat.count(InboundEvent) == 0


# --- conversation ------------------------------------------------------------------------------


def test_new_visitor_gets_an_empty_history(webchat):
    with open_socket(webchat, webchat.new_session()["token"]) as (_, history):
        assert history == []


def test_question_is_acknowledged_and_answered_by_the_bot(webchat):
    with open_socket(webchat, webchat.new_session()["token"]) as (socket, _):
        message_id = socket.say("bảo hành bao lâu")
        assert socket.wait_for(lambda f: f["type"] == "ack") == {"type": "ack", "id": message_id,
                                                                   "duplicate": False}
        reply = socket.bot_reply()
        assert "12 tháng" in reply["text"]
        assert reply["id"].startswith("wc-")
        socket.idle()
    assert {"type": "typing", "on": True} in socket.seen
    assert socket.seen.index({"type": "typing", "on": True}) < socket.seen.index(reply)


def test_a_lone_surrogate_in_a_visitors_text_is_stored_and_answered(webchat):
    with open_socket(webchat, webchat.new_session()["token"]) as (socket, _):
        message_id = str(uuid.uuid4())
        # "\ud800" is valid JSON text that no UTF-8 encoder accepts; json.dumps escapes it as the
        # browser's JSON.stringify does
        socket.session.send_text(json.dumps({"type": "message", "id": message_id, "text": "bảo hành bao lâu \ud800"}))
        assert socket.wait_for(lambda f: f["type"] == "ack")["id"] == message_id
        assert "12 tháng" in socket.bot_reply()["text"]
        socket.idle()
    with Session(webchat.wiring.engine) as session:
        assert session.exec(select(Message.text).where(Message.direction == "in")).one() == "bảo hành bao lâu \ufffd"


def test_a_frame_nested_too_deep_gets_an_error_and_the_socket_stays_usable(webchat):
    with open_socket(webchat, webchat.new_session()["token"]) as (socket, _):
        socket.session.send_text('{"type": "message", "text": "hi", "x": ' + "[" * 3000 + "]" * 3000 + "}")
        assert "nested" in socket.wait_for(lambda f: f["type"] == "error")["reason"]
        socket.say("bảo hành bao lâu")
        assert "12 tháng" in socket.bot_reply()["text"]


def test_same_client_message_id_sent_twice_is_stored_and_answered_once(webchat):
    with open_socket(webchat, webchat.new_session()["token"]) as (socket, _):
        message_id = socket.say("shop ơi bảo hành mấy tháng vậy")
        socket.bot_reply()
        socket.idle()
        # The widget resends whatever was not acknowledged after a reconnect.
        socket.say("shop ơi bảo hành mấy tháng vậy", message_id)
        assert socket.wait_for(lambda f: f["type"] == "ack") == {"type": "ack", "id": message_id,
                                                                   "duplicate": True}
        webchat.settle()
        assert [f for f in socket.frames_until_pong() if f["type"] == "message"] == []
    assert webchat.count(InboundEvent) == 1
    assert webchat.count(Message, Message.direction == "in") == 1


def test_two_visitors_using_the_same_client_message_id_are_both_stored_and_answered(webchat):
    message_id = str(uuid.uuid4())
    first, second = webchat.new_session(), webchat.new_session()
    with open_socket(webchat, first["token"]) as (socket, _):
        socket.say("bảo hành bao lâu vậy shop", message_id)
        assert socket.wait_for(lambda f: f["type"] == "ack")["duplicate"] is False
        socket.bot_reply()
        socket.idle()
    with open_socket(webchat, second["token"]) as (socket, _):
        socket.say("cho mình hỏi giờ mở cửa", message_id)
        assert socket.wait_for(lambda f: f["type"] == "ack") == {"type": "ack", "id": message_id,
                                                                   "duplicate": False}
        socket.bot_reply()
        socket.idle()
    assert webchat.count(InboundEvent) == 2
    assert webchat.count(Message, Message.direction == "in") == 2
    with open_socket(webchat, second["token"]) as (_, history):
        assert [(m["id"], m["text"]) for m in history if m["author"] == "customer"] == [
            (message_id, "cho mình hỏi giờ mở cửa")]


def test_history_after_reconnect_has_both_sides_under_their_live_ids(webchat):
    token = webchat.new_session()["token"]
    with open_socket(webchat, token) as (socket, _):
        message_id = socket.say("bảo hành bao lâu vậy shop")
        reply = socket.bot_reply()
        socket.idle()
    with open_socket(webchat, token) as (_, history):
        assert [(m["id"], m["author"], m["text"]) for m in history] == [
            (message_id, "customer", "bảo hành bao lâu vậy shop"),
            (reply["id"], "bot", reply["text"]),
        ]
        assert all(m["created_at"] for m in history)


def test_answer_to_a_visitor_who_left_waits_in_the_history(webchat):
    token = webchat.new_session()["token"]
    with open_socket(webchat, token) as (socket, _):
        message_id = socket.say("bảo hành bao lâu")
        socket.wait_for(lambda f: f["type"] == "ack")
    webchat.settle()  # answered while no socket is open
    with open_socket(webchat, token) as (_, history):
        assert [m["author"] for m in history] == ["customer", "bot"]
        assert history[0]["id"] == message_id and "12 tháng" in history[1]["text"]


def test_another_tab_of_the_same_visitor_sees_the_message_and_the_answer(webchat):
    token = webchat.new_session()["token"]
    with open_socket(webchat, token) as (writing_tab, _), open_socket(webchat, token) as (other_tab, _):
        message_id = writing_tab.say("bảo hành bao lâu")
        echoed = other_tab.wait_for(lambda f: f["type"] == "message" and f["author"] == "customer")
        assert echoed["id"] == message_id and echoed["text"] == "bảo hành bao lâu"
        assert "12 tháng" in other_tab.bot_reply()["text"]


def test_bad_frames_get_an_error_and_the_socket_stays_usable(webchat):
    with open_socket(webchat, webchat.new_session()["token"]) as (socket, _):
        socket.session.send_text("{not json")
        assert socket.receive()["type"] == "error"
        socket.session.send_bytes(b"\x00\x01")
        assert socket.receive()["type"] == "error"
        bad_id = str(uuid.uuid4())
        socket.send({"type": "shout", "id": bad_id, "text": "hi"})
        error = socket.receive()
        assert error["type"] == "error" and error["id"] == bad_id and error["reason"]
        socket.send({"type": "message", "id": str(uuid.uuid4()), "text": "   "})
        assert socket.receive()["type"] == "error"
        assert socket.frames_until_pong() == []
        socket.say("bảo hành bao lâu")
        assert "12 tháng" in socket.bot_reply()["text"]
    assert webchat.count(InboundEvent) == 1


# --- agents and buttons ------------------------------------------------------------------------


def test_agent_reply_arrives_live_on_the_open_socket_and_stays_in_the_history(webchat):
    token = webchat.new_session()["token"]
    with open_socket(webchat, token) as (socket, _):
        socket.say("cho mình gặp nhân viên")
        socket.bot_reply()  # the bot says a person will answer
        socket.idle()
        headers = webchat.agent_headers()
        queue = webchat.client.get("/api/conversations", params={"state": "waiting_for_agent"}, headers=headers)
        [conversation] = queue.json()["data"]
        assert conversation["channel"] == "webchat"
        note = webchat.client.post(f"/api/conversations/{conversation['id']}/notes",
                                   json={"text": "khách hỏi về bảo hành, nội bộ"}, headers=headers)
        assert note.status_code == 201
        reply = webchat.client.post(f"/api/conversations/{conversation['id']}/messages",
                                    json={"text": "Chào bạn, em là Hạnh bên CSKH ạ."}, headers=headers)
        assert reply.status_code == 201, reply.text
        live = socket.wait_for(lambda f: f["type"] == "message" and f["author"] == "agent")
        assert live["text"] == "Chào bạn, em là Hạnh bên CSKH ạ."
    webchat.settle()
    detail = webchat.client.get(f"/api/conversations/{conversation['id']}", headers=headers).json()
    agent_message = next(m for m in detail["messages"] if m["author"] == "agent" and not m["is_private"])
    assert agent_message["delivery_status"] == "sent"
    with open_socket(webchat, token) as (_, history):
        assert [m["author"] for m in history] == ["customer", "bot", "agent"]
        assert history[-1]["id"] == live["id"]
        assert all("nội bộ" not in m["text"] for m in history)  # private notes never reach the visitor


def queue_rating_request(wiring, visitor_id: str) -> None:
    """Ask a web chat visitor to rate their conversation, as the CSAT follow-up will (any thread)."""
    from helpdesk.customers.models import ChannelIdentity

    with Session(wiring.engine, expire_on_commit=False) as session:
        conversation = session.exec(
            select(Conversation).join(ChannelIdentity, ChannelIdentity.id == Conversation.identity_id)
            .where(ChannelIdentity.channel == "webchat", ChannelIdentity.external_id == visitor_id)
            .order_by(Conversation.id.desc())).first()
        request = OutboundRatingRequest(recipient_id=visitor_id, text="Bạn chấm điểm giúp shop nhé",
                                        subject=f"conversation:{conversation.id}")
        message = conversations.add_message(session, conversation, direction="out", author=MessageAuthor.bot,
                                            text=request.text, delivery_status=DeliveryStatus.pending)
        queue_outbound(session, conversation, message, request.model_dump(mode="json"), visitor_id)
        session.commit()
    drain_chat_soon(wiring.worker, "webchat", visitor_id)


def test_rating_button_press_is_stored_as_a_postback_of_that_visitor(webchat):
    rater, bystander = webchat.new_session(), webchat.new_session()
    with open_socket(webchat, rater["token"]) as (socket, _), \
            open_socket(webchat, bystander["token"]) as (other, _):
        socket.say("bảo hành bao lâu")
        socket.bot_reply()
        socket.idle()
        queue_rating_request(webchat.wiring, rater["visitor_id"])
        prompt = socket.wait_for(lambda f: f["type"] == "message" and "buttons" in f)
        five_stars = prompt["buttons"][-1]
        assert five_stars["title"] == "⭐⭐⭐⭐⭐" and five_stars["payload"].endswith(":5")
        press_id = str(uuid.uuid4())
        socket.send({"type": "postback", "id": press_id, **five_stars})
        assert socket.wait_for(lambda f: f["type"] == "ack")["id"] == press_id
        webchat.settle()
        assert [f for f in other.frames_until_pong() if f["type"] == "message"] == []
    with Session(webchat.wiring.engine) as session:
        event = session.exec(select(InboundEvent).where(
            InboundEvent.external_id == f"{rater['visitor_id']}:{press_id}")).one()
    assert event.kind == "postback"
    assert event.sender_id == rater["visitor_id"]
    subject, stars = parse_rating_payload(event.message["payload"])
    assert subject.startswith("conversation:") and stars == 5
    with open_socket(webchat, rater["token"]) as (_, history):
        assert [m["author"] for m in history] == ["customer", "bot", "bot", "customer", "bot"]
        assert history[2]["buttons"][-1] == five_stars  # the prompt keeps its buttons after a reload
        assert (history[3]["id"], history[3]["text"]) == (press_id, "⭐⭐⭐⭐⭐")


# --- static files ------------------------------------------------------------------------------


def test_widget_script_is_served_as_cacheable_javascript(webchat):
    response = webchat.client.get("/webchat/widget.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert "max-age" in response.headers["cache-control"]
    assert "/webchat/ws" in response.text
    again = webchat.client.get("/webchat/widget.js", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304


@pytest.mark.parametrize("path", ["/", "/demo"])
def test_demo_shop_page_embeds_the_widget(webchat, path):
    response = webchat.client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "Bếp Việt Demo" in response.text
    assert '<script src="/webchat/widget.js" defer></script>' in response.text


# --- several processes -------------------------------------------------------------------------


def test_with_redis_the_answer_travels_through_redis_pub_sub(make_settings, redis_url):
    import redis

    from connectors.webchat import RedisWebchatHub
    from helpdesk.app import create_app

    with TestClient(create_app(make_settings(redis_url=redis_url))) as client:
        webchat = Webchat(client)
        assert isinstance(webchat.wiring.connectors["webchat"].hub, RedisWebchatHub)
        with open_socket(webchat, webchat.new_session()["token"]) as (socket, _):
            probe = redis.Redis.from_url(redis_url)
            assert probe.pubsub_numsub("caredesk:webchat")[0][1] == 1
            probe.close()
            socket.say("bảo hành bao lâu")
            assert "12 tháng" in socket.bot_reply()["text"]
