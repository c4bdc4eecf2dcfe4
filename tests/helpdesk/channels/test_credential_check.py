"""A platform that rejects CareDesk's credentials is reported at start-up (Telegram's getMe against the
fake Bot API), the server still serves the other channels, and every failed send is logged with its
channel, recipient and reason."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from tests.conftest import TELEGRAM_SECRET, start_client
from tests.helpdesk.channels.test_telegram_flow import CHAT_ID, post_update, telegram_update

CHECKS_LOGGER = "helpdesk.channels.checks"
OUTBOX_LOGGER = "helpdesk.outbox.service"


async def records_of(caplog, logger: str, timeout: float = 10.0) -> list[logging.LogRecord]:
    """The records ``logger`` has written, waiting for the first (the check runs in the background)."""
    deadline = time.monotonic() + timeout
    while not (found := [r for r in caplog.records if r.name == logger]):
        assert time.monotonic() < deadline, f"nothing logged by {logger}"
        await asyncio.sleep(0.02)
    return found


async def test_a_rejected_telegram_token_is_reported_at_start_and_the_server_still_serves(
        make_settings, fake_telegram, caplog):
    caplog.set_level(logging.INFO)
    settings = make_settings(telegram={"token": "999:REVOKED", "secret_token": TELEGRAM_SECRET,
                                       "api_base": fake_telegram.base_url})
    async for client in start_client(settings):
        [record] = await records_of(caplog, CHECKS_LOGGER)
        assert record.levelno == logging.ERROR
        text = record.getMessage()
        assert "telegram" in text and "rejected" in text and "Unauthorized" in text
        assert "CAREDESK_TELEGRAM__TOKEN" in text  # says what to fix
        [call] = fake_telegram.calls_to("getMe")
        assert call.token == "999:REVOKED"
        # the rest of the server works: health, and a customer on another channel gets the bot's answer
        assert (await client.get("/healthz")).status_code == 200
        response = await client.post("/webhooks/cli", json={"sender_id": "cli-check-1", "message_id": "m1",
                                                             "text": "bảo hành bao lâu vậy shop"})
        assert response.status_code == 200
        await client.settle()
        replies = (await client.get("/webhooks/cli/messages", params={"sender_id": "cli-check-1"})).json()["data"]
        assert any("12 tháng" in row["text"] for row in replies)


async def test_an_accepted_token_is_logged_with_the_bots_name(telegram_client, fake_telegram, caplog):
    caplog.set_level(logging.INFO)
    [record] = await records_of(caplog, CHECKS_LOGGER)
    assert record.levelno == logging.INFO and "@caredesk_test_bot" in record.getMessage()


async def test_an_unreachable_platform_is_a_warning_not_a_rejection(make_settings, caplog):
    caplog.set_level(logging.INFO)
    settings = make_settings(telegram={"token": "1:X", "secret_token": TELEGRAM_SECRET,
                                       "api_base": "http://127.0.0.1:9"})
    async for client in start_client(settings):
        [record] = await records_of(caplog, CHECKS_LOGGER)
        assert record.levelno == logging.WARNING and "could not check" in record.getMessage()
        assert (await client.get("/healthz")).status_code == 200


async def test_a_send_the_platform_refuses_is_logged_with_channel_recipient_and_reason(
        telegram_client, fake_telegram, caplog):
    caplog.set_level(logging.INFO)
    fake_telegram.fail_next("sendMessage", 400, description="Bad Request: chat not found")
    await post_update(telegram_client, telegram_update(5001, "Sản phẩm bên shop bảo hành bao lâu vậy?"))
    await telegram_client.settle()
    [record] = await records_of(caplog, OUTBOX_LOGGER)
    assert record.levelno == logging.WARNING
    text = record.getMessage()
    assert "channel=telegram" in text and f"recipient={CHAT_ID}" in text and "chat not found" in text
    assert "for good" in text


@pytest.fixture
async def fast_retry_client(make_settings, fake_telegram):
    settings = make_settings(
        telegram={"token": fake_telegram.token, "secret_token": TELEGRAM_SECRET, "api_base": fake_telegram.base_url},
        outbox={"base_backoff_s": 0.05, "max_backoff_s": 0.2, "pump_interval_s": 0.05, "max_attempts": 4})
    async for client in start_client(settings):
        yield client


async def test_each_failed_attempt_of_a_retried_send_is_logged(fast_retry_client, fake_telegram, caplog):
    caplog.set_level(logging.INFO)
    fake_telegram.fail_next("sendMessage", 502, times=2)
    await post_update(fast_retry_client, telegram_update(5101, "Sản phẩm bên shop bảo hành bao lâu vậy?"))
    await fake_telegram.wait_for_calls("sendMessage", 3)
    await fast_retry_client.settle()
    retries = [r.getMessage() for r in caplog.records if r.name == OUTBOX_LOGGER]
    assert len(retries) == 2, retries
    assert all("will retry" in text and "channel=telegram" in text and f"recipient={CHAT_ID}" in text
               for text in retries)
