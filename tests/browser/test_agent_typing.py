"""The agent types in the inbox, and the web chat visitor sees "typing" in the widget until the reply
arrives (two real Chromium profiles against one live server)."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.browser.conftest import skip_module_without_browser
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD

pytestmark = pytest.mark.slow  # a real Chromium against a live server

skip_module_without_browser()

try:
    from playwright.sync_api import expect
except ImportError:  # CI without playwright: the chromium fixture fails every test with the reason
    expect = None

BOT = ".cdw-msg.cdw-bot .cdw-bubble"
AGENT = ".cdw-msg.cdw-agent .cdw-bubble"


def waiting_conversation(url: str) -> int:
    with httpx.Client(base_url=url, timeout=10) as api:
        token = api.post("/api/auth/token", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        deadline = time.monotonic() + 5
        while (waiting := api.get("/api/conversations", params={"state": "waiting_for_agent"},
                                  headers=headers)).status_code == 401 and time.monotonic() < deadline:
            time.sleep(0.05)
        [conversation] = waiting.json()["data"]
        return conversation["id"]


def test_visitor_sees_the_agent_typing_until_the_reply_arrives(live_server, chromium, page):
    url = live_server.url
    problems: list[str] = []
    page.goto(f"{url}/")
    page.locator(".cdw-launcher").click()
    page.locator(".cdw-input").fill("cho mình gặp nhân viên")
    page.locator(".cdw-input").press("Enter")
    expect(page.locator(BOT).last).to_contain_text("nhân viên")
    expect(page.locator(".cdw-typing")).to_be_hidden()
    conversation_id = waiting_conversation(url)

    agent_context = chromium.new_context(locale="vi-VN")
    agent_context.set_default_timeout(10_000)
    agent = agent_context.new_page()
    agent.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    typing_requests: list[str] = []
    agent.on("request", lambda request: typing_requests.append(request.post_data or "")
             if request.url.endswith(f"/api/conversations/{conversation_id}/typing") else None)
    try:
        agent.goto(f"{url}/inbox/login?next=/inbox/conversations/{conversation_id}")
        agent.locator("#login-email").fill(ADMIN_EMAIL)
        agent.locator("#login-password").fill(ADMIN_PASSWORD)
        agent.locator("#login-submit").click()
        expect(agent.locator("#composer-text")).to_be_visible()

        agent.locator("#composer-text").press_sequentially("Chào bạn, mình kiểm tra", delay=20)
        expect(page.locator(".cdw-typing")).to_be_visible()
        # one signal for the whole burst of keys (the inbox throttles to one every 4 s)
        assert len(typing_requests) == 1 and '"typing":true' in typing_requests[0]

        agent.locator("#composer-send").click()
        expect(page.locator(AGENT).last).to_have_text("Chào bạn, mình kiểm tra")
        expect(page.locator(".cdw-typing")).to_be_hidden()
        assert problems == []
    finally:
        agent_context.close()
