"""Domain events reach in-process listeners and live subscribers, across processes with Redis."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from helpdesk.core.events import EVENTS_PER_MESSAGE, EventBus


async def test_listener_and_subscriber_both_receive_an_event():
    bus = EventBus()
    await bus.start()
    heard = []

    @bus.on("order_delivered")
    async def remember(event):
        heard.append(event.data["code"])

    queue = bus.subscribe()
    await bus.publish("order_delivered", code="DH100001")
    assert heard == ["DH100001"]
    assert (await asyncio.wait_for(queue.get(), 1)).data == {"code": "DH100001"}


async def test_a_failing_listener_does_not_stop_the_event():
    bus = EventBus()
    await bus.start()

    @bus.on("message_created")
    async def broken(event):
        raise RuntimeError("boom")

    queue = bus.subscribe()
    await bus.publish("message_created", message_id=1)
    assert (await asyncio.wait_for(queue.get(), 1)).name == "message_created"


async def test_unsubscribed_queue_gets_nothing_more():
    bus = EventBus()
    await bus.start()
    queue = bus.subscribe()
    bus.unsubscribe(queue)
    await bus.publish("message_created", message_id=1)
    assert queue.empty()


async def test_with_redis_an_event_published_by_one_process_reaches_another(redis_url):
    first, second = aioredis.from_url(redis_url, decode_responses=True), aioredis.from_url(
        redis_url, decode_responses=True)
    publisher, receiver = EventBus(first), EventBus(second)
    await publisher.start()
    await receiver.start()
    queue = receiver.subscribe()
    await asyncio.sleep(0.1)  # let the subscription settle on the server
    await publisher.publish("conversation_updated", conversation_id=7, action="claimed")
    event = await asyncio.wait_for(queue.get(), 3)
    assert (event.name, event.data["conversation_id"]) == ("conversation_updated", 7)
    await publisher.stop()
    await receiver.stop()
    await first.aclose()
    await second.aclose()


async def test_agent_reply_is_announced_to_live_subscribers(client):
    queue = client.wiring.events.subscribe()
    await client.post("/webhooks/cli", json={"sender_id": "ev", "message_id": "ev-1", "text": "cho mình gặp nhân viên"})
    await client.settle()
    names = []
    while not queue.empty():
        names.append(queue.get_nowait().name)
    assert "message_created" in names and "conversation_escalated" in names


async def test_events_published_together_reach_listeners_and_subscribers_in_order():
    bus = EventBus()
    await bus.start()
    heard = []

    @bus.on("sla_warning")
    async def remember(event):
        heard.append(event.data["conversation_id"])

    queue = bus.subscribe()
    published = await bus.publish_many([("sla_warning", {"conversation_id": 1}),
                                        ("sla_breached", {"conversation_id": 2}),
                                        ("sla_warning", {"conversation_id": 3})])
    assert [e.name for e in published] == ["sla_warning", "sla_breached", "sla_warning"]
    assert heard == [1, 3]
    received = [queue.get_nowait() for _ in range(3)]
    assert [(e.name, e.data["conversation_id"]) for e in received] == [
        ("sla_warning", 1), ("sla_breached", 2), ("sla_warning", 3)]


async def test_with_redis_events_published_together_reach_another_process_in_order(redis_url):
    import uuid

    channel = f"caredesk:test-events:{uuid.uuid4().hex}"  # not the shared channel other test runs use
    first, second = aioredis.from_url(redis_url, decode_responses=True), aioredis.from_url(
        redis_url, decode_responses=True)
    publisher, receiver = EventBus(first, channel=channel), EventBus(second, channel=channel)
    await publisher.start()
    await receiver.start()
    queue = receiver.subscribe(maxsize=5000)
    wire = second.pubsub()
    await wire.subscribe(channel)
    await asyncio.sleep(0.1)  # let the subscriptions settle on the server
    count = 2 * EVENTS_PER_MESSAGE + 7
    await publisher.publish_many([("sla_warning", {"conversation_id": n}) for n in range(count)])
    received = [await asyncio.wait_for(queue.get(), 3) for _ in range(count)]
    assert [e.data["conversation_id"] for e in received] == list(range(count))
    assert {e.name for e in received} == {"sla_warning"}
    # three messages on the wire, not one per event
    messages = []
    async with asyncio.timeout(3):
        while len(messages) < 3:
            message = await wire.get_message(ignore_subscribe_messages=True, timeout=1)
            if message is not None:
                messages.append(message)
    assert await wire.get_message(ignore_subscribe_messages=True, timeout=0.2) is None
    await publisher.publish("sla_breached", conversation_id=1)  # a single event stays a single object
    assert (await asyncio.wait_for(queue.get(), 3)).name == "sla_breached"
    await wire.aclose()
    await publisher.stop()
    await receiver.stop()
    await first.aclose()
    await second.aclose()


async def test_events_reach_other_processes_again_after_redis_restarts():
    """Redis killed and started on the same port: publishing while it is away does not fail the
    publisher (its listeners still ran), and the relay subscribes again by itself."""
    from tests.faults.cluster import PrivateRedis

    server = PrivateRedis()
    server.start()
    one, other = aioredis.from_url(server.url, decode_responses=True), aioredis.from_url(server.url, decode_responses=True)
    sender, receiver = EventBus(one), EventBus(other)
    try:
        await sender.start()
        await receiver.start()
        heard = []
        sender.on("order_delivered")(lambda event: _remember(heard, event))
        queue = receiver.subscribe()

        server.kill()
        await sender.publish("order_delivered", code="while-away")  # does not raise
        assert heard == ["while-away"]
        server.start()
        deadline = asyncio.get_running_loop().time() + 15
        while True:  # the relay takes up its subscription again within a few seconds
            await sender.publish("order_delivered", code="back")
            try:
                event = await asyncio.wait_for(queue.get(), 0.5)
                break
            except TimeoutError:
                assert asyncio.get_running_loop().time() < deadline, "the relay never came back"
        assert event.data == {"code": "back"}
    finally:
        await sender.stop()
        await receiver.stop()
        await one.aclose()
        await other.aclose()
        server.remove()


async def _remember(heard: list, event) -> None:
    heard.append(event.data["code"])
