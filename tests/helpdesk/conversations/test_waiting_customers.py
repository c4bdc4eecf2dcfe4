"""What a customer hears about the people's side of the shop: that the bot is back when an agent
hands the conversation back, and, while they wait for a person, their place in the queue and when to
expect an answer when they ask again (on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, func, select

from tests.conftest import TELEGRAM_SECRET, start_client
from tests.helpdesk.channels.test_telegram_flow import telegram_update


@pytest.fixture
async def shop(make_settings, database_url, fake_telegram):
    """The app with Telegram on the fake Bot API, on each database."""
    settings = make_settings(database_url=database_url,
                             telegram={"token": fake_telegram.token, "secret_token": TELEGRAM_SECRET,
                                       "api_base": fake_telegram.base_url})
    async for client in start_client(settings):
        yield client


async def says(client, update_id: int, text: str, chat_id: int) -> None:
    response = await client.post("/webhooks/telegram", json=telegram_update(update_id, text, chat_id),
                                  headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET})
    assert response.status_code == 200
    await client.settle()


async def test_customer_is_told_in_vietnamese_when_the_bot_takes_over_again(shop, fake_telegram):
    await says(shop, 6001, "cho mình gặp nhân viên", 801)
    admin = await shop.login()
    conversation_id = (await shop.get("/api/conversations", headers=admin)).json()["data"][0]["id"]
    await shop.post(f"/api/conversations/{conversation_id}/messages", headers=admin, json={"text": "Dạ em chào chị"})
    await shop.settle()

    back = await shop.post(f"/api/conversations/{conversation_id}/handback", headers=admin)
    assert back.status_code == 200
    await shop.settle()

    notice = shop.wiring.bot.responses.render("handback_notice", "vi")
    assert fake_telegram.sent_messages(801)[-1]["text"] == notice
    timeline = (await shop.get(f"/api/conversations/{conversation_id}", headers=admin)).json()["messages"]
    assert (timeline[-1]["author"], timeline[-1]["text"], timeline[-1]["delivery_status"]) == ("bot", notice, "sent")


async def test_an_english_speaking_customer_is_told_in_english(shop, fake_telegram):
    await says(shop, 6101, "I want to speak to a human", 802)
    admin = await shop.login()
    conversation_id = (await shop.get("/api/conversations", headers=admin)).json()["data"][0]["id"]

    await shop.post(f"/api/conversations/{conversation_id}/handback", headers=admin)
    await shop.settle()

    assert fake_telegram.sent_messages(802)[-1]["text"] == shop.wiring.bot.responses.render("handback_notice", "en")
    assert "virtual assistant" in fake_telegram.sent_messages(802)[-1]["text"]


def bot_texts(fake_telegram, chat_id: int) -> list[str]:
    return [message["text"] for message in fake_telegram.sent_messages(chat_id)]


def place_text(shop, position: int, eta: str, locale: str = "vi") -> str:
    return shop.wiring.bot.responses.render("handoff_queue_place", locale, position=position, eta=eta)


async def test_two_waiting_customers_who_ask_again_are_told_their_places(shop, fake_telegram):
    from helpdesk.audit.models import AuditEntry
    from tests.helpdesk.care.conftest import FakeClock, local

    shop.wiring.clock.use(FakeClock(local("2026-03-02 10:00")))  # a Monday morning, the shop is open
    await says(shop, 7001, "cho mình gặp nhân viên", 901)
    await says(shop, 7002, "cho mình gặp nhân viên", 902)
    handed_over = len(bot_texts(fake_telegram, 901)), len(bot_texts(fake_telegram, 902))

    await says(shop, 7003, "alo có ai không ạ", 902)
    await says(shop, 7004, "cho mình gặp nhân viên", 901)

    # the normal policy's first-response target (1 hour), nobody having answered lately
    assert bot_texts(fake_telegram, 901)[-1] == place_text(shop, 1, "trong khoảng 1 giờ")
    assert bot_texts(fake_telegram, 902)[-1] == place_text(shop, 2, "trong khoảng 1 giờ")
    assert (len(bot_texts(fake_telegram, 901)), len(bot_texts(fake_telegram, 902))) == (
        handed_over[0] + 1, handed_over[1] + 1)
    admin = await shop.login()
    rows = (await shop.get("/api/conversations", headers=admin)).json()["data"]
    assert sorted(row["state"] for row in rows) == ["waiting_for_agent", "waiting_for_agent"]
    with Session(shop.wiring.engine) as session:
        escalations = session.exec(select(func.count()).select_from(AuditEntry)
                                   .where(AuditEntry.action == "conversation_escalated")).one()
    assert escalations == 2  # asking again is no second hand-over


async def test_a_waiting_customers_ordinary_message_reaches_the_inbox_unanswered(shop, fake_telegram):
    await says(shop, 7101, "cho mình gặp nhân viên", 903)
    sent = len(bot_texts(fake_telegram, 903))
    await says(shop, 7102, "đơn DH123 của mình giao chưa vậy", 903)

    admin = await shop.login()
    conversation_id = (await shop.get("/api/conversations", headers=admin)).json()["data"][0]["id"]
    timeline = (await shop.get(f"/api/conversations/{conversation_id}", headers=admin)).json()["messages"]
    assert (timeline[-1]["author"], timeline[-1]["text"]) == ("customer", "đơn DH123 của mình giao chưa vậy")
    assert len(bot_texts(fake_telegram, 903)) == sent


async def test_outside_business_hours_the_answer_says_when_the_shop_opens(shop, fake_telegram):
    from tests.helpdesk.care.conftest import FakeClock, local

    shop.wiring.clock.use(FakeClock(local("2026-03-02 22:00")))
    await says(shop, 7201, "cho mình gặp nhân viên", 904)
    await says(shop, 7202, "có ai không", 904)

    assert bot_texts(fake_telegram, 904)[-1] == place_text(shop, 1, "từ 08:00 sáng mai, khi shop bắt đầu làm việc")


async def test_the_estimate_follows_recent_first_answers_and_an_answered_customer_hears_nothing(shop, fake_telegram):
    from helpdesk.conversations.models import Conversation
    from tests.helpdesk.care.conftest import FakeClock, local

    shop.wiring.clock.use(FakeClock(local("2026-03-02 10:00")))
    for n, chat_id in enumerate((911, 912, 913)):
        await says(shop, 7300 + n, "cho mình gặp nhân viên", chat_id)
    with Session(shop.wiring.engine) as session:
        answered = session.exec(select(Conversation).order_by(Conversation.id)).all()
        for conversation, minutes in zip(answered, (10, 20, 30)):  # answered in 10, 20 and 30 minutes
            conversation.escalated_at = local("2026-03-02 09:00")
            conversation.first_response_at = local("2026-03-02 09:00") + timedelta(minutes=minutes)
            session.add(conversation)
        session.commit()

    await says(shop, 7310, "I want to speak to a human", 914)
    await says(shop, 7311, "is anyone there?", 914)
    assert bot_texts(fake_telegram, 914)[-1] == place_text(shop, 1, "within about 20 minutes", "en")

    heard = len(bot_texts(fake_telegram, 911))
    await says(shop, 7312, "có ai không", 911)  # a person has answered them: they are there to read it
    assert len(bot_texts(fake_telegram, 911)) == heard
