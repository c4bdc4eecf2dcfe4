"""What a customer hears about the people's side of the shop: that the bot is back when an agent
hands the conversation back, and, while they wait for a person, their place in the queue and when to
expect an answer when they ask again (on SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

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
