"""Attachments through the real app on Telegram (aiogram against the loopback fake Bot API): a
photo without text is acknowledged, and a contact shared on Telegram verifies the phone of an order
lookup as a typed phone does."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, select

from connectors.telegram import TelegramConfig, TelegramConnector
from helpdesk.customers.models import Customer
from helpdesk.shop.service import load_shop_file
from tests.conftest import ROOT
from tests.helpdesk.channels.test_telegram_flow import CHAT_ID, post_update, telegram_update


def contact_update(update_id: int, phone: str, user_id: int = CHAT_ID) -> dict:
    """A private-chat update sharing a contact (the customer's own, from Telegram's 'share my phone')."""
    update = telegram_update(update_id, "")
    del update["message"]["text"]
    update["message"]["contact"] = {"phone_number": phone, "first_name": "Lan", "user_id": user_id}
    return update


def photo_update(update_id: int) -> dict:
    """A private-chat update with a photo (Telegram's sizes of one picture) and no caption."""
    update = telegram_update(update_id, "")
    del update["message"]["text"]
    update["message"]["photo"] = [
        {"file_id": "AgAD-small", "file_unique_id": "s1", "width": 90, "height": 67, "file_size": 1200},
        {"file_id": "AgAD-large", "file_unique_id": "l1", "width": 1280, "height": 960, "file_size": 98000},
    ]
    return update


def _parses_contacts() -> bool:
    """Whether this tree's Telegram connector turns a shared contact into an attachment (#17)."""
    [message] = TelegramConnector(TelegramConfig(token="1:x")).parse(contact_update(1, "84912345678"))
    return any(attachment.kind == "contact" for attachment in message.attachments)


def load_demo_shop(client) -> None:
    with Session(client.wiring.engine) as session:
        load_shop_file(session, ROOT / "data" / "demo" / "shop.yml")
        session.commit()


async def test_a_photo_without_text_is_acknowledged_instead_of_the_fallback(telegram_client, fake_telegram):
    response = await post_update(telegram_client, photo_update(5001))
    assert response.status_code == 200
    await telegram_client.settle()
    [reply] = fake_telegram.sent_messages(CHAT_ID)
    assert "đã nhận được 1 ảnh" in reply["text"] and "chưa hiểu" not in reply["text"]


@pytest.mark.skipif(not _parses_contacts(), reason="the Telegram connector does not parse shared contacts yet "
                                                   "(the i17-connectors branch does)")
async def test_a_contact_shared_on_telegram_verifies_the_phone_of_an_order_lookup(telegram_client, fake_telegram):
    load_demo_shop(telegram_client)
    await post_update(telegram_client, telegram_update(5101, "đơn DH100002 tới đâu rồi ạ"))
    await telegram_client.settle()
    assert "số điện thoại" in fake_telegram.sent_messages(CHAT_ID)[-1]["text"]
    await post_update(telegram_client, contact_update(5102, "+84912345678"))
    await telegram_client.settle()
    reply = fake_telegram.sent_messages(CHAT_ID)[-1]["text"]
    assert "DH100002" in reply and "đang trên đường giao" in reply
    with Session(telegram_client.wiring.engine) as session:
        customer = session.exec(select(Customer)).one()
    assert (customer.phone, customer.phone_verified) == ("0912345678", True)


@pytest.mark.skipif(not _parses_contacts(), reason="the Telegram connector does not parse shared contacts yet")
async def test_asking_for_the_phone_on_telegram_offers_a_share_my_phone_button(telegram_client, fake_telegram):
    """The question comes with a one-time reply keyboard whose button shares the customer's own number
    (request_contact); pressing it sends a contact, which verifies the order's phone."""
    load_demo_shop(telegram_client)
    await post_update(telegram_client, telegram_update(5201, "đơn DH100002 tới đâu rồi ạ"))
    await telegram_client.settle()
    asked = fake_telegram.sent_messages(CHAT_ID)[-1]
    assert "số điện thoại" in asked["text"]
    markup = asked["reply_markup"]
    markup = json.loads(markup) if isinstance(markup, str) else markup
    [[button]] = markup["keyboard"]
    assert button["request_contact"] is True and "số điện thoại" in button["text"]
    assert markup["one_time_keyboard"] is True and markup["resize_keyboard"] is True
    await post_update(telegram_client, contact_update(5202, "+84912345678"))
    await telegram_client.settle()
    answered = fake_telegram.sent_messages(CHAT_ID)[-1]
    assert "đang trên đường giao" in answered["text"] and "keyboard" not in str(answered.get("reply_markup"))


async def test_other_questions_on_telegram_carry_no_contact_button(telegram_client, fake_telegram):
    await post_update(telegram_client, telegram_update(5301, "bảo hành bao lâu vậy shop"))
    await telegram_client.settle()
    [reply] = fake_telegram.sent_messages(CHAT_ID)
    assert "request_contact" not in json.dumps(reply)
