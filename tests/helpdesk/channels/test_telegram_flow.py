"""The first conversation end to end: a Telegram customer, the bot, an escalation and an agent.

Real aiogram client, real app, real database; only Telegram is a loopback fake.
"""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, func, select

from helpdesk.channels.models import InboundEvent, InboundOutcome
from helpdesk.conversations.models import Message
from tests.conftest import TELEGRAM_SECRET

CHAT_ID = 777000111


def telegram_update(update_id: int, text: str, chat_id: int = CHAT_ID) -> dict:
    """A private-chat text update as Telegram posts it to a webhook."""
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id + 10,
            "from": {"id": chat_id, "is_bot": False, "first_name": "Lan", "language_code": "vi"},
            "chat": {"id": chat_id, "first_name": "Lan", "type": "private"},
            "date": 1764000000,
            "text": text,
        },
    }


async def post_update(client, update: dict, secret: str | None = TELEGRAM_SECRET):
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    return await client.post("/webhooks/telegram", json=update, headers=headers)


def count_rows(client, model) -> int:
    with Session(client.wiring.engine) as session:
        return session.exec(select(func.count()).select_from(model)).one()


async def test_faq_question_in_vietnamese_is_answered_through_send_message(telegram_client, fake_telegram):
    response = await post_update(telegram_client, telegram_update(1001, "Sản phẩm bên shop bảo hành bao lâu vậy?"))
    assert response.status_code == 200
    await telegram_client.settle()
    sent = fake_telegram.sent_messages(CHAT_ID)
    assert len(sent) == 1
    assert "12 tháng" in sent[0]["text"]


async def test_a_lone_surrogate_in_the_text_is_stored_and_answered(telegram_client, fake_telegram):
    update = telegram_update(1101, "Sản phẩm bên shop bảo hành bao lâu vậy? \ud800")
    update["message"]["from"]["first_name"] = "Lan\udfff"
    response = await telegram_client.post("/webhooks/telegram", content=json.dumps(update),  # "\ud800" escaped
                                          headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET,
                                                   "Content-Type": "application/json"})
    assert response.status_code == 200
    await telegram_client.settle()
    assert "12 tháng" in fake_telegram.sent_messages(CHAT_ID)[0]["text"]
    with Session(telegram_client.wiring.engine) as session:
        text = session.exec(select(Message.text).where(Message.direction == "in")).one()
    assert text == "Sản phẩm bên shop bảo hành bao lâu vậy? \ufffd"


async def test_duplicate_update_is_stored_once_and_answered_once(telegram_client, fake_telegram):
    update = telegram_update(2001, "shop ơi bảo hành mấy tháng vậy")
    first = await post_update(telegram_client, update)
    await telegram_client.settle()
    second = await post_update(telegram_client, update)
    await telegram_client.settle()
    assert first.status_code == 200 and second.status_code == 200
    assert second.json()["new"] == 0
    assert len(fake_telegram.sent_messages(CHAT_ID)) == 1
    assert count_rows(telegram_client, InboundEvent) == 1
    with Session(telegram_client.wiring.engine) as session:
        inbound = session.exec(select(Message).where(Message.direction == "in")).all()
    assert len(inbound) == 1


async def test_request_for_a_person_escalates_and_the_agent_reply_reaches_the_customer(
    telegram_client, fake_telegram
):
    await post_update(telegram_client, telegram_update(3001, "cho mình gặp nhân viên"))
    await telegram_client.settle()
    assert len(fake_telegram.sent_messages(CHAT_ID)) == 1  # the bot says a person will answer
    headers = await telegram_client.login()

    queue = await telegram_client.get("/api/conversations", params={"state": "waiting_for_agent"}, headers=headers)
    assert queue.status_code == 200
    conversations = queue.json()["data"]
    assert len(conversations) == 1 and queue.json()["count"] == 1
    conversation = conversations[0]
    assert conversation["escalation_reason"] == "customer_request"
    assert conversation["first_response_due_at"] is not None

    reply = await telegram_client.post(f"/api/conversations/{conversation['id']}/messages",
                                       json={"text": "Chào chị Lan, em là Hạnh bên CSKH ạ."}, headers=headers)
    assert reply.status_code == 201
    await telegram_client.settle()
    sent = fake_telegram.sent_messages(CHAT_ID)
    assert sent[-1]["text"] == "Chào chị Lan, em là Hạnh bên CSKH ạ."

    detail = await telegram_client.get(f"/api/conversations/{conversation['id']}", headers=headers)
    assert detail.json()["state"] == "with_agent"
    agent_message = [m for m in detail.json()["messages"] if m["author"] == "agent"][0]
    assert agent_message["delivery_status"] == "sent"

    # While the agent owns the conversation the bot stays silent, but the message is kept.
    await post_update(telegram_client, telegram_update(3002, "bảo hành bao lâu vậy em"))
    await telegram_client.settle()
    assert len(fake_telegram.sent_messages(CHAT_ID)) == 2
    detail = await telegram_client.get(f"/api/conversations/{conversation['id']}", headers=headers)
    assert detail.json()["messages"][-1]["text"] == "bảo hành bao lâu vậy em"


async def test_handback_lets_the_bot_answer_again(telegram_client, fake_telegram):
    await post_update(telegram_client, telegram_update(4001, "cho mình gặp nhân viên"))
    await telegram_client.settle()
    headers = await telegram_client.login()
    conversation_id = (await telegram_client.get("/api/conversations", headers=headers)).json()["data"][0]["id"]
    assert (await telegram_client.post(f"/api/conversations/{conversation_id}/claim", headers=headers)).status_code == 200
    back = await telegram_client.post(f"/api/conversations/{conversation_id}/handback", headers=headers)
    assert back.json()["state"] == "bot"
    await telegram_client.settle()  # the customer is told the bot is back (helpdesk.conversations.listeners)
    await post_update(telegram_client, telegram_update(4002, "bảo hành bao lâu vậy shop"))
    await telegram_client.settle()
    assert "12 tháng" in fake_telegram.sent_messages(CHAT_ID)[-1]["text"]


async def test_wrong_secret_is_refused_and_nothing_is_stored(telegram_client, fake_telegram):
    response = await post_update(telegram_client, telegram_update(5001, "xin chào"), secret="not-the-secret")
    assert response.status_code in (401, 403)
    assert count_rows(telegram_client, InboundEvent) == 0


async def test_missing_secret_is_refused_and_nothing_is_stored(telegram_client, fake_telegram):
    response = await post_update(telegram_client, telegram_update(5002, "xin chào"), secret=None)
    assert response.status_code in (401, 403)
    assert count_rows(telegram_client, InboundEvent) == 0


async def test_malformed_json_gets_400_with_a_reason(telegram_client):
    response = await telegram_client.post("/webhooks/telegram", content=b"{not json",
                                          headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET,
                                                   "Content-Type": "application/json"})
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]
    assert count_rows(telegram_client, InboundEvent) == 0


async def test_body_that_is_not_an_update_gets_422_with_a_reason(telegram_client):
    response = await telegram_client.post("/webhooks/telegram", content=json.dumps({"hello": "world"}),
                                          headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET})
    assert response.status_code == 422
    assert response.json()["detail"]
    assert count_rows(telegram_client, InboundEvent) == 0


async def test_unconfigured_channel_webhook_is_404(client):
    response = await client.post("/webhooks/telegram", json=telegram_update(1, "hi"))
    assert response.status_code == 404


async def test_with_redis_configured_dialogue_state_lives_in_redis(make_settings, fake_telegram, redis_url):
    import redis

    from tests.conftest import start_client

    settings = make_settings(redis_url=redis_url, telegram={
        "token": fake_telegram.token, "secret_token": TELEGRAM_SECRET, "api_base": fake_telegram.base_url})
    async for client in start_client(settings):
        await post_update(client, telegram_update(6001, "xyzzy qwerty plugh"))
        await client.settle()
        await post_update(client, telegram_update(6002, "blorp snarf wibble"))
        await client.settle()
        headers = await client.login()
        queue = await client.get("/api/conversations", params={"state": "waiting_for_agent"}, headers=headers)
        assert queue.json()["data"][0]["escalation_reason"] == "bot_failed"
    keys = redis.Redis.from_url(redis_url).keys("caredesk:dialogue:*")
    assert len(keys) == 1


async def test_a_known_customers_turn_is_stored_as_a_first_contacts_turn_is(telegram_client, fake_telegram):
    """The first turn goes through the ORM (a new customer and conversation), the second through the
    plain statements of ``conversations.turns``: both must leave the same rows behind."""
    from helpdesk.outbox.models import OutboxItem
    from helpdesk.conversations.models import Conversation, DialogueState
    from helpdesk.customers.models import ChannelIdentity

    for update_id, text in ((8001, "shop ơi bảo hành mấy tháng vậy"), (8002, "đổi trả trong bao lâu vậy")):
        response = await post_update(telegram_client, telegram_update(update_id, text))
        assert response.status_code == 200
        await telegram_client.settle()
    assert len(fake_telegram.sent_messages(CHAT_ID)) == 2
    with Session(telegram_client.wiring.engine) as session:
        [conversation] = session.exec(select(Conversation)).all()
        [identity] = session.exec(select(ChannelIdentity)).all()
        messages = session.exec(select(Message).order_by(Message.id)).all()
        items = session.exec(select(OutboxItem).order_by(OutboxItem.id)).all()
        events = session.exec(select(InboundEvent).order_by(InboundEvent.id)).all()
        outcomes = [session.get(InboundOutcome, event.id) for event in events]
        state = session.get(DialogueState, f"conversation:{conversation.id}")

    def shape(message: Message) -> tuple:
        return (message.conversation_id, message.direction, message.author, message.channel, message.is_private,
                message.delivery_status, message.delivery_error, message.attachments, message.nlu is not None,
                message.channel_message_id is not None)

    first_in, first_out, second_in, second_out = messages
    assert shape(first_in) == shape(second_in) == (conversation.id, "in", "customer", "telegram", False, None,
                                                   None, [], True, True)
    assert second_in.channel_message_id == "8002" and second_in.text == "đổi trả trong bao lâu vậy"
    assert second_in.nlu["intent"]["name"] == "ask_return_policy"
    assert shape(first_out) == shape(second_out) == (conversation.id, "out", "bot", "telegram", False, "sent",
                                                     None, [], False, True)
    assert conversation.last_message_at == second_out.created_at and conversation.state == "bot"
    assert identity.last_inbound_at >= second_in.created_at > first_in.created_at
    assert identity.display_name == "Lan"

    assert [item.status for item in items] == ["sent", "sent"] and [item.attempts for item in items] == [1, 1]
    assert [item.message_id for item in items] == [first_out.id, second_out.id]
    assert all(item.sent_at is not None and item.external_id == message.channel_message_id
               for item, message in zip(items, (first_out, second_out), strict=True))
    first_meta, second_meta = (item.body["metadata"] for item in items)
    assert first_meta.keys() == second_meta.keys() and second_meta["conversation_id"] == conversation.id
    assert second_meta["author"] == "bot" and second_meta["last_inbound_at"] is not None
    assert [event.status for event in events] == ["received", "received"]
    assert [(outcome.status, outcome.error) for outcome in outcomes] == [("processed", None)] * 2
    assert outcomes[0].processed_at <= outcomes[1].processed_at
    assert state is not None and state.updated_at >= first_out.created_at


@pytest.mark.parametrize("first_contact", [False, True], ids=["known-customer", "first-contact"])
async def test_two_workers_on_one_event_store_and_answer_it_once(telegram_client, fake_telegram, first_contact):
    """Both read the event while it waits; the first to store settles it, the second stores nothing.
    (The customer's message is stored only with the answer, so a worker that dies before that leaves
    nothing to repeat either; a first contact's customer and conversation are found again.)"""
    from helpdesk.channels import edge
    from helpdesk.conversations import flows

    wiring = telegram_client.wiring
    chat_id = CHAT_ID + 1 if first_contact else CHAT_ID
    await post_update(telegram_client, telegram_update(8101, "chào shop"))
    await telegram_client.settle()
    messages = wiring.connectors["telegram"].parse(telegram_update(8102, "đổi trả trong bao lâu vậy", chat_id))
    with Session(wiring.engine, expire_on_commit=False) as session:  # stored as the edge does, not handed on
        [(event_id, *_rest)] = edge.store_request(session, messages, {})
        session.commit()

    waiting = flows.next_waiting_event(wiring.flow, "telegram", messages[0].sender_id, event_id)
    assert waiting is not None and waiting.id == event_id
    first, second = flows._prepare(wiring.flow, waiting), flows._prepare(wiring.flow, waiting)
    assert first is not None and second is not None
    assert first.conversation_id == second.conversation_id and first.new_conversation == first_contact
    assert count_rows(telegram_client, Message) == 2  # the customer's message is not written yet
    applied = flows._apply(wiring.flow, first, await wiring.bot.handle(first.turn, first.state))
    assert applied is not None and len(applied.message_ids) == 1
    assert flows._apply(wiring.flow, second, await wiring.bot.handle(second.turn, second.state)) is None
    with Session(wiring.engine) as session:
        inbound = session.exec(select(Message).where(Message.channel_message_id == "8102")).all()
        assert [(m.id, m.conversation_id, m.nlu is not None) for m in inbound] == [
            (applied.message_id, first.conversation_id, True)]
        assert count_rows(telegram_client, Message) == 4  # two turns, each a question and an answer
        assert session.get(InboundOutcome, event_id).status == "processed"
