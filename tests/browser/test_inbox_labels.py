"""What the inbox shows around a conversation reads as words in the agent's language: no "null" or
"false" where a value is missing, handoff reasons and platform errors translated."""

from __future__ import annotations

import pytest

from tests.browser.test_inbox import Api, inbox_server  # noqa: F401 (the fixture is used by name)
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD

pytestmark = pytest.mark.slow  # a real Chromium against a live server

pytest.importorskip("playwright", reason="the browser tests drive Chromium through playwright")

from playwright.sync_api import expect  # noqa: E402


def admin_opens(page, url: str, conversation_id: int) -> None:
    """Log in as the admin and open one conversation."""
    page.goto(f"{url}/inbox/login?next=/inbox/conversations/{conversation_id}")
    page.locator("#login-email").fill(ADMIN_EMAIL)
    page.locator("#login-password").fill(ADMIN_PASSWORD)
    page.locator("#login-submit").click()
    expect(page).to_have_url(f"{url}/inbox/conversations/{conversation_id}")


def test_a_conversation_with_missing_values_shows_no_null(inbox_server, page):  # noqa: F811
    url = inbox_server.url
    api = Api(url)
    api.customer_says("labels-a", "xin chào shop", "Phạm Thu")
    conversation = api.wait_until(lambda: api.get("/api/conversations")["data"])[0]
    assert conversation.get("escalation_reason") is None  # the bot is answering: no handoff reason

    admin_opens(page, url, conversation["id"])
    expect(page.locator("#conv-sub")).to_contain_text(f"#{conversation['id']}")
    expect(page.locator("#details")).to_contain_text("Phạm Thu")
    for where in ("#conv-sub", "#conv-name", "#details"):
        text = page.locator(where).text_content()
        assert "null" not in text and "false" not in text and "undefined" not in text, (where, text)


def test_handoff_reasons_read_as_words_in_both_languages(inbox_server, page):  # noqa: F811
    url = inbox_server.url
    api = Api(url)
    api.customer_says("labels-b", "cho mình gặp nhân viên", "Đỗ Minh")
    conversation = api.wait_until(lambda: api.get("/api/conversations", state="waiting_for_agent")["data"])[0]
    assert conversation["escalation_reason"] == "customer_request"

    admin_opens(page, url, conversation["id"])
    reason = page.locator("#conv-sub .handoff-reason")
    expect(reason).to_have_text("Lý do chuyển người: khách muốn gặp nhân viên")
    expect(reason).to_have_attribute("title", "customer_request")  # the raw key stays at hand
    page.locator('.lang-switch [data-lang="en"]').first.click()
    expect(reason).to_have_text("Handed to people because: the customer asked for a person")


def test_a_platform_refusal_is_said_in_the_agents_language(make_settings, fake_telegram, page):
    from tests.conftest import TELEGRAM_SECRET, LiveServer
    from tests.helpdesk.channels.test_telegram_flow import telegram_update

    settings = make_settings(
        telegram={"token": fake_telegram.token, "secret_token": TELEGRAM_SECRET, "api_base": fake_telegram.base_url},
        outbox={"base_backoff_s": 0.05, "max_backoff_s": 0.2, "pump_interval_s": 0.05, "max_attempts": 2})
    with LiveServer(settings) as server:
        api = Api(server.url)
        answered = api.http.post("/webhooks/telegram", json=telegram_update(9101, "cho mình gặp nhân viên"),
                                 headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET})
        assert answered.status_code == 200, answered.text
        conversation = api.wait_until(lambda: api.get("/api/conversations", state="waiting_for_agent")["data"])[0]
        # the bot's handoff answer is sent after the conversation is handed over: let it go first, or the
        # refusal below falls on it instead of on the agent's message
        api.wait_until(lambda: fake_telegram.calls_to("sendMessage"))
        fake_telegram.fail_next("sendMessage", 403, description="Forbidden: bot was blocked by the user")
        sent = api.http.post(f"/api/conversations/{conversation['id']}/messages", headers=api.admin,
                             json={"text": "Anh ơi?"})
        assert sent.status_code == 201, sent.text

        admin_opens(page, server.url, conversation["id"])
        failed = page.locator('.msg-agent .delivery[data-status="failed"] .delivery-label')
        expect(failed).to_have_text("Gửi lỗi: khách đã chặn hoặc không còn nhận tin từ shop trên kênh này")
        expect(failed).to_have_attribute("title", "Chi tiết từ nền tảng: Forbidden: bot was blocked by the user")
