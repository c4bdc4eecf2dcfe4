"""The web chat connector: socket frames in, frames out through the in-memory and the Redis hubs."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from connectors.base import (
    Button,
    DeliveryError,
    OutboundButtons,
    OutboundRatingRequest,
    OutboundText,
    PayloadError,
    VerificationError,
    WebhookRequest,
)
from connectors.webchat import (
    InMemoryWebchatHub,
    RedisWebchatHub,
    Subscription,
    WebchatConnector,
    client_message_id,
)

VISITOR = "visitor-aaaaaaaaaaaa"
OTHER_VISITOR = "visitor-bbbbbbbbbbbb"


def client_id() -> str:
    """An id as the widget makes them (crypto.randomUUID)."""
    return str(uuid.uuid4())


def envelope(frame: object, visitor_id: object = VISITOR) -> dict:
    """What the socket route hands the connector after checking the visitor's token."""
    return {"visitor_id": visitor_id, "frame": frame}


async def next_frame(subscription: Subscription, timeout: float = 2.0) -> dict:
    """The subscription's next frame, failing instead of hanging."""
    return await asyncio.wait_for(subscription.get(), timeout)


async def assert_nothing_arrives(subscription: Subscription, wait: float = 0.2) -> None:
    """No frame comes within ``wait`` seconds."""
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(subscription.get(), wait)


# --- parsing -----------------------------------------------------------------------------------


def test_text_frame_becomes_a_message_from_the_visitor_keyed_by_visitor_and_client_id():
    message_id = client_id()
    [message] = WebchatConnector().parse(envelope({"type": "message", "id": message_id,
                                                    "text": "  bảo hành bao lâu vậy shop  "}))
    assert message.channel == "webchat"
    assert message.sender_id == VISITOR
    assert message.external_id == f"{VISITOR}:{message_id}"
    assert client_message_id(message.external_id) == message_id
    assert message.kind == "message"
    assert message.text == "bảo hành bao lâu vậy shop"
    assert message.answerable


def test_two_visitors_using_the_same_client_id_send_two_messages():
    message_id = client_id()
    frame = {"type": "message", "id": message_id, "text": "alo"}
    [mine] = WebchatConnector().parse({"visitor_id": VISITOR, "frame": frame})
    [theirs] = WebchatConnector().parse({"visitor_id": OTHER_VISITOR, "frame": frame})
    assert mine.external_id != theirs.external_id
    assert client_message_id(mine.external_id) == client_message_id(theirs.external_id) == message_id


def test_button_press_becomes_a_postback_whose_text_is_the_button_title():
    message_id = client_id()
    [message] = WebchatConnector().parse(envelope({"type": "postback", "id": message_id,
                                                    "payload": "rating:conversation:7:5", "title": "⭐⭐⭐⭐⭐"}))
    assert message.kind == "postback"
    assert message.payload == "rating:conversation:7:5"
    assert message.text == "⭐⭐⭐⭐⭐"
    assert message.external_id == f"{VISITOR}:{message_id}"
    assert message.sender_id == VISITOR


@pytest.mark.parametrize(
    ("frame", "visitor_id"),
    [
        ("not an object", VISITOR),
        ({"type": "message", "text": "thiếu id"}, VISITOR),
        ({"type": "message", "id": "short", "text": "id quá ngắn"}, VISITOR),
        ({"type": "message", "id": "has spaces in it", "text": "id lạ"}, VISITOR),
        ({"type": "message", "id": str(uuid.uuid4()), "text": "   "}, VISITOR),
        ({"type": "message", "id": str(uuid.uuid4()), "text": 42}, VISITOR),
        ({"type": "message", "id": str(uuid.uuid4()), "text": "x" * 2001}, VISITOR),
        ({"type": "postback", "id": str(uuid.uuid4()), "title": "⭐"}, VISITOR),
        ({"type": "postback", "id": str(uuid.uuid4()), "payload": "p" * 513}, VISITOR),
        ({"type": "shout", "id": str(uuid.uuid4()), "text": "hi"}, VISITOR),
        ({"type": "message", "id": str(uuid.uuid4()), "text": "hi"}, None),
        ({"type": "message", "id": str(uuid.uuid4()), "text": "hi"}, "bad visitor id!"),
    ],
    ids=["not-object", "no-id", "short-id", "odd-id", "blank-text", "text-not-string", "text-too-long",
         "postback-no-payload", "payload-too-long", "unknown-type", "no-visitor", "bad-visitor"],
)
def test_malformed_frame_is_a_payload_error(frame, visitor_id):
    with pytest.raises(PayloadError):
        WebchatConnector().parse(envelope(frame, visitor_id))


def test_a_body_that_is_not_an_envelope_is_a_payload_error():
    with pytest.raises(PayloadError):
        WebchatConnector().parse(["not", "an", "envelope"])


async def test_webhook_requests_are_always_refused():
    # The generic /webhooks/{channel} route must not become an unauthenticated way in.
    with pytest.raises(VerificationError):
        await WebchatConnector().verify(WebhookRequest(headers={}, body=b"{}"))


# --- sending through the in-memory hub ---------------------------------------------------------


async def test_reply_reaches_every_socket_of_the_visitor_and_no_one_else():
    hub = InMemoryWebchatHub()
    connector = WebchatConnector(hub)
    first_tab, second_tab = await hub.subscribe(VISITOR), await hub.subscribe(VISITOR)
    stranger = await hub.subscribe(OTHER_VISITOR)

    frame_id = await connector.send(OutboundText(recipient_id=VISITOR, text="Dạ shop chào bạn ạ"))

    for tab in (first_tab, second_tab):
        frame = await next_frame(tab)
        assert frame["type"] == "message" and frame["id"] == frame_id
        assert frame["author"] == "bot" and frame["text"] == "Dạ shop chào bạn ạ"
        assert "buttons" not in frame
    await assert_nothing_arrives(stranger)


async def test_unsubscribed_socket_gets_nothing_more():
    hub = InMemoryWebchatHub()
    tab = await hub.subscribe(VISITOR)
    await hub.unsubscribe(tab)
    await hub.publish(VISITOR, {"type": "typing", "on": True})
    await assert_nothing_arrives(tab)
    assert hub.socket_count(VISITOR) == 0


async def test_sending_to_a_visitor_with_no_socket_open_still_succeeds():
    # The reply is stored; the visitor reads it from the history when they come back.
    frame_id = await WebchatConnector(InMemoryWebchatHub()).send_text(VISITOR, "Shop đã nhận được đơn ạ")
    assert frame_id.startswith("wc-")


async def test_rating_request_is_sent_as_five_star_buttons():
    hub = InMemoryWebchatHub()
    tab = await hub.subscribe(VISITOR)
    await WebchatConnector(hub).send(OutboundRatingRequest(recipient_id=VISITOR, text="Bạn chấm điểm giúp shop nhé",
                                                           subject="conversation:12"))
    frame = await next_frame(tab)
    assert [b["title"] for b in frame["buttons"]] == ["⭐", "⭐⭐", "⭐⭐⭐", "⭐⭐⭐⭐", "⭐⭐⭐⭐⭐"]
    assert frame["buttons"][4]["payload"] == "rating:conversation:12:5"


async def test_agent_reply_is_labelled_as_the_agent():
    hub = InMemoryWebchatHub()
    tab = await hub.subscribe(VISITOR)
    await WebchatConnector(hub).send(OutboundButtons(
        recipient_id=VISITOR, text="Bạn chọn giúp em nhé", metadata={"author": "agent"},
        buttons=(Button(title="Đổi máy", payload="exchange"), Button(title="Hoàn tiền", payload="refund"))))
    frame = await next_frame(tab)
    assert frame["author"] == "agent"
    assert frame["buttons"] == [{"title": "Đổi máy", "payload": "exchange"},
                                {"title": "Hoàn tiền", "payload": "refund"}]


async def test_a_socket_that_falls_far_behind_is_told_to_resync_then_fed_again():
    subscription = Subscription(VISITOR, max_pending=3)
    for number in range(4):  # the fourth does not fit: the backlog is dropped for a resync
        subscription.offer({"type": "message", "id": f"frame-{number}"})
    subscription.offer({"type": "message", "id": "frame-after"})
    assert await next_frame(subscription) == {"type": "resync"}
    assert (await next_frame(subscription))["id"] == "frame-after"
    await assert_nothing_arrives(subscription)


async def test_hub_failure_is_a_retryable_delivery_error():
    class BrokenHub(InMemoryWebchatHub):
        async def publish(self, visitor_id, frame):
            raise ConnectionError("redis is down")

    with pytest.raises(DeliveryError) as raised:
        await WebchatConnector(BrokenHub()).send_text(VISITOR, "xin chào")
    assert raised.value.retryable


# --- the Redis hub (real Redis) ----------------------------------------------------------------


@pytest.fixture
async def redis_clients(redis_url):
    """Two Redis clients, as two CareDesk processes would each have."""
    import redis.asyncio as aioredis

    clients = [aioredis.from_url(redis_url, decode_responses=True) for _ in range(2)]
    yield clients
    for client in clients:
        await client.aclose()


async def test_reply_produced_in_one_process_reaches_the_socket_held_by_another(redis_clients):
    sending_process = WebchatConnector(RedisWebchatHub(redis_clients[0]))
    socket_process = RedisWebchatHub(redis_clients[1])
    try:
        tab = await socket_process.subscribe(VISITOR)
        stranger = await socket_process.subscribe(OTHER_VISITOR)
        frame_id = await sending_process.send_text(VISITOR, "Dạ em là Hạnh bên CSKH ạ")
        frame = await next_frame(tab)
        assert frame["id"] == frame_id and frame["text"] == "Dạ em là Hạnh bên CSKH ạ"
        await assert_nothing_arrives(stranger)
    finally:
        await sending_process.close()
        await socket_process.close()


async def test_redis_hub_fans_out_to_sockets_in_both_processes(redis_clients):
    hubs = [RedisWebchatHub(client) for client in redis_clients]
    try:
        tabs = [await hub.subscribe(VISITOR) for hub in hubs]
        await hubs[0].publish(VISITOR, {"type": "typing", "on": True})
        for tab in tabs:
            assert await next_frame(tab) == {"type": "typing", "on": True}
        await hubs[1].unsubscribe(tabs[1])
        await hubs[0].publish(VISITOR, {"type": "typing", "on": False})
        assert await next_frame(tabs[0]) == {"type": "typing", "on": False}
        await assert_nothing_arrives(tabs[1])
    finally:
        for hub in hubs:
            await hub.close()


async def test_after_losing_redis_the_hub_resubscribes_and_asks_its_sockets_to_resync(redis_url, redis_clients):
    import redis.asyncio as aioredis

    name = f"webchat-test-{uuid.uuid4().hex[:8]}"
    client = aioredis.from_url(redis_url, decode_responses=True, client_name=name)
    hub = RedisWebchatHub(client, reconnect_max_s=0.2)
    try:
        tab = await hub.subscribe(VISITOR)
        # Drop the hub's subscription (only ours), as a Redis restart or a network blip would.
        [subscription] = [c for c in await redis_clients[1].client_list(_type="pubsub") if c["name"] == name]
        await redis_clients[1].client_kill_filter(_id=subscription["id"])
        assert await next_frame(tab, timeout=5) == {"type": "resync"}
        await hub.publish(VISITOR, {"type": "typing", "on": True})
        assert await next_frame(tab) == {"type": "typing", "on": True}
    finally:
        await hub.close()
        await client.aclose()
