"""What the worker does when a turn fails: a dependency away is tried again for as long as it takes,
a turn failing for a reason of its own is tried a few times and then parked for an admin (the
customer's message kept and handed to a person), and a chat's messages are answered in the order
they were stored whatever order their jobs come in."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlmodel import Session, select

from helpdesk.channels import edge
from helpdesk.channels.models import InboundAttempt, InboundOutcome
from helpdesk.channels.tasks import process_event_soon
from helpdesk.conversations.models import Conversation, Message
from tests.helpdesk.channels.test_telegram_flow import CHAT_ID, post_update, telegram_update


@pytest.fixture
def quick_retries(telegram_client):
    """Three tries, a few milliseconds apart."""
    worker = telegram_client.wiring.settings.worker
    worker.max_attempts, worker.retry_base_s, worker.retry_max_s = 3, 0.01, 0.05
    return worker


def failing_bot(wiring, monkeypatch, error: Exception, times: int | None = None) -> list[int]:
    """Make the bot raise ``error`` (the first ``times`` turns, or every turn); the calls counted."""
    handle, calls = wiring.bot.handle, []

    async def flaky(turn, state):
        calls.append(1)
        if times is None or len(calls) <= times:
            raise error
        return await handle(turn, state)

    monkeypatch.setattr(wiring.bot, "handle", flaky)
    return calls


def outcome_of(wiring, update_id: int) -> tuple[InboundOutcome | None, InboundAttempt | None, list[Message]]:
    with Session(wiring.engine) as session:
        messages = session.exec(select(Message).where(Message.channel_message_id == str(update_id))).all()
        from helpdesk.channels.models import InboundEvent
        event = session.exec(select(InboundEvent).where(InboundEvent.external_id.like(f"%{update_id}%"))).one()
        return session.get(InboundOutcome, event.id), session.get(InboundAttempt, event.id), list(messages)


async def test_a_turn_that_keeps_failing_is_parked_kept_and_handed_to_a_person(
        telegram_client, fake_telegram, quick_retries, monkeypatch):
    wiring = telegram_client.wiring
    await post_update(telegram_client, telegram_update(8201, "chào shop"))
    await telegram_client.settle()
    calls = failing_bot(wiring, monkeypatch, RuntimeError("the bot fell over"))
    heard = wiring.events.subscribe()

    response = await post_update(telegram_client, telegram_update(8202, "máy xay bị rò nước"))
    assert response.status_code == 200
    await telegram_client.settle()

    outcome, attempts, [message] = outcome_of(wiring, 8202)
    assert len(calls) == 3
    assert outcome.status == "parked" and "the bot fell over" in outcome.error
    assert (attempts.attempts, attempts.message_id) == (3, message.id)
    assert (message.author, message.text, message.nlu) == ("customer", "máy xay bị rò nước", None)
    with Session(wiring.engine) as session:
        conversation = session.get(Conversation, message.conversation_id)
    assert (conversation.state, conversation.escalation_reason) == ("waiting_for_agent", "bot_error")
    assert len(fake_telegram.sent_messages(CHAT_ID)) == 1  # the greeting's answer only
    names = [heard.get_nowait().name for _ in range(heard.qsize())]
    assert names.count("message_created") == 1 and "conversation_escalated" in names


async def test_admins_see_parked_messages_and_send_one_through_again(
        telegram_client, fake_telegram, quick_retries, monkeypatch):
    wiring = telegram_client.wiring
    failing_bot(wiring, monkeypatch, ValueError("no answer for this"))
    await post_update(telegram_client, telegram_update(8301, "bảo hành bao lâu vậy shop"))
    await telegram_client.settle()
    admin = await telegram_client.login()

    parked = (await telegram_client.get("/api/admin/parked-events", headers=admin)).json()
    assert parked["count"] == 1
    [row] = parked["data"]
    assert (row["channel"], row["text"], row["attempts"]) == ("telegram", "bảo hành bao lâu vậy shop", 3)
    assert "no answer for this" in row["error"]

    monkeypatch.undo()  # the cause is fixed
    again = await telegram_client.post(f"/api/admin/parked-events/{row['id']}/retry", headers=admin)
    assert again.status_code == 202, again.text
    await telegram_client.settle()
    outcome, attempts, [message] = outcome_of(wiring, 8301)
    assert outcome.status == "processed" and attempts is None
    assert message.nlu is not None  # the message stored when parked, now read by the bot, not stored twice
    assert (await telegram_client.get("/api/admin/parked-events", headers=admin)).json()["count"] == 0
    twice = await telegram_client.post(f"/api/admin/parked-events/{row['id']}/retry", headers=admin)
    assert twice.status_code == 409
    missing = await telegram_client.post("/api/admin/parked-events/999999/retry", headers=admin)
    assert missing.status_code == 404


async def test_only_admins_see_parked_messages(telegram_client):
    admin = await telegram_client.login()
    created = await telegram_client.post("/api/agents", headers=admin, json={
        "email": "an@test.local", "name": "An", "password": "an-pass-123456", "role": "supervisor"})
    assert created.status_code == 201, created.text
    supervisor = await telegram_client.login("an@test.local", "an-pass-123456")
    assert (await telegram_client.get("/api/admin/parked-events", headers=supervisor)).status_code == 403
    assert (await telegram_client.post("/api/admin/parked-events/1/retry", headers=supervisor)).status_code == 403


async def test_a_turn_that_fails_once_is_tried_again_and_answered_once(
        telegram_client, fake_telegram, quick_retries, monkeypatch):
    wiring = telegram_client.wiring
    calls = failing_bot(wiring, monkeypatch, RuntimeError("a passing hiccup"), times=1)
    await post_update(telegram_client, telegram_update(8401, "bảo hành bao lâu vậy shop"))
    await telegram_client.settle()
    outcome, attempts, [message] = outcome_of(wiring, 8401)
    assert len(calls) == 2
    assert outcome.status == "processed" and attempts is None and message.nlu is not None
    assert len(fake_telegram.sent_messages(CHAT_ID)) == 1


async def test_redis_away_is_never_a_final_outcome(telegram_client, fake_telegram, quick_retries, monkeypatch):
    """More failures than a turn's tries, all of them Redis being away: the turn waits, then answers."""
    wiring = telegram_client.wiring
    calls = failing_bot(wiring, monkeypatch, RedisConnectionError("Connection refused"), times=6)
    await post_update(telegram_client, telegram_update(8501, "bảo hành bao lâu vậy shop"))
    await telegram_client.settle(timeout=20)
    outcome, attempts, _messages = outcome_of(wiring, 8501)
    assert len(calls) == 7
    assert outcome.status == "processed" and attempts is None
    assert len(fake_telegram.sent_messages(CHAT_ID)) == 1


async def test_a_chats_older_waiting_messages_are_answered_first(telegram_client, fake_telegram):
    """Two messages stored while no worker took them up (their jobs lost): the job of a newer one
    that arrives first answers the older ones first, in the order they were stored."""
    wiring = telegram_client.wiring
    connector = wiring.connectors["telegram"]
    stored = []
    for update_id, text in ((8601, "chào shop"), (8602, "bảo hành bao lâu vậy shop"), (8603, "cảm ơn shop")):
        with Session(wiring.engine, expire_on_commit=False) as session:  # stored as the edge does
            stored += edge.store_request(session, connector.parse(telegram_update(update_id, text)), {})
            session.commit()
    newest_id, channel, sender_id, _ = stored[-1]
    process_event_soon(wiring.worker, newest_id, channel, sender_id)
    await telegram_client.settle()

    replies = [reply["text"] for reply in fake_telegram.sent_messages(CHAT_ID)]
    assert len(replies) == 3
    assert "Xin chào" in replies[0] and "bảo hành 12 tháng" in replies[1] and "không có gì" in replies[2]
    for update_id in (8601, 8602, 8603):
        assert outcome_of(wiring, update_id)[0].status == "processed"
