"""The customer's page in real Chromium against a real server, on a desktop (1400×900) and a phone
(390×844): opened from the inbox's customer panel, it shows the events of both channels the customer
wrote on (Telegram through the fake Bot API, and the cli channel), merged into one customer, in the
agent's language; the layout and accessibility checks pass at both sizes."""

from __future__ import annotations

import pytest

from tests.browser.layout_checks import DESKTOP, PHONE, assert_desktop_ready, assert_phone_ready
from tests.browser.test_inbox import Api
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, TELEGRAM_SECRET, LiveServer

pytestmark = pytest.mark.slow  # a real Chromium against a live server

pytest.importorskip("playwright", reason="the browser tests drive Chromium through playwright")

from playwright.sync_api import expect  # noqa: E402

SIZES = {"desktop": DESKTOP, "phone": PHONE}


@pytest.mark.parametrize("size", list(SIZES))
def test_the_timeline_opens_from_the_customer_panel_with_both_channels(make_settings, fake_telegram, chromium,
                                                                       size):
    from tests.helpdesk.channels.test_telegram_flow import telegram_update

    settings = make_settings(telegram={"token": fake_telegram.token, "secret_token": TELEGRAM_SECRET,
                                       "api_base": fake_telegram.base_url})
    with LiveServer(settings) as server:
        url, api = server.url, Api(server.url)
        answered = api.http.post("/webhooks/telegram", json=telegram_update(9301, "nồi cơm bị lỗi E3"),
                                 headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET})
        assert answered.status_code == 200, answered.text
        api.customer_says("tl-lan", "cho mình gặp nhân viên", "Lan")
        conversations = api.wait_until(lambda: (rows := api.get("/api/conversations")["data"]) and len(rows) == 2
                                       and rows)
        by_channel = {c["channel"]: c for c in conversations}
        # the same person on both channels: the admin merges the cli customer into the Telegram one
        merged = api.http.post(f"/api/customers/{by_channel['telegram']['customer_id']}/merge", headers=api.admin,
                               json={"other_id": by_channel["cli"]["customer_id"]})
        assert merged.status_code == 200, merged.text
        customer_id = merged.json()["id"]

        context = chromium.new_context(locale="vi-VN", viewport=SIZES[size])
        context.set_default_timeout(10_000)
        page = context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        try:
            cli_conversation = by_channel["cli"]["id"]
            page.goto(f"{url}/inbox/login?next=/inbox/conversations/{cli_conversation}")
            page.locator("#login-email").fill(ADMIN_EMAIL)
            page.locator("#login-password").fill(ADMIN_PASSWORD)
            page.locator("#login-submit").click()
            expect(page).to_have_url(f"{url}/inbox/conversations/{cli_conversation}")
            # the inbox's scripts have started (the phone's details button is wired) once it is live
            expect(page.locator("#live-state")).to_have_text("Trực tuyến")
            if size == "phone":
                page.locator("#phone-details-button").click()
                expect(page.locator("#details")).to_be_visible()
            link = page.locator("#customer-timeline-link")
            expect(link).to_have_text("Lịch sử khách hàng")
            link.click()
            expect(page).to_have_url(f"{url}/inbox/customers/{customer_id}")

            events = page.locator("#ct-events .ct-event")
            opened = page.locator('#ct-events .ct-event[data-kind="conversation_opened"]')
            expect(opened).to_have_count(2)
            expect(page.locator('#ct-events .ct-event[data-channel="telegram"]').first).to_contain_text("Telegram")
            expect(page.locator('#ct-events .ct-event[data-channel="cli"]').first).to_contain_text("Mở hội thoại")
            expect(page.locator("#ct-events")).to_contain_text("nồi cơm bị lỗi E3")
            expect(events.first).to_contain_text("Gộp khách hàng")  # the merge is the newest event
            expect(page.locator("#ct-identities li")).to_have_count(2)
            (assert_phone_ready if size == "phone" else assert_desktop_ready)(page)

            page.locator('.lang-switch [data-lang="en"]').click()
            expect(opened.first).to_contain_text("Conversation opened")
            expect(events.first).to_contain_text("Customers merged")
            (assert_phone_ready if size == "phone" else assert_desktop_ready)(page)

            # the admin splits the merge again from the page: the cli conversation goes back with its customer
            page.on("dialog", lambda dialog: dialog.accept())
            page.locator('#ct-events .ct-event[data-kind="identity_merged"] .ct-split').click()
            expect(events.first).to_contain_text("Customers split")
            expect(opened).to_have_count(1)
            expect(page.locator("#ct-identities li")).to_have_count(1)
            assert problems == []
        finally:
            context.close()


def test_a_customer_the_agent_may_not_see_is_a_not_found_page(make_settings, chromium):
    with LiveServer(make_settings()) as server:
        page = chromium.new_context(locale="vi-VN").new_page()
        page.goto(f"{server.url}/inbox/login?next=/inbox/customers/424242")
        page.locator("#login-email").fill(ADMIN_EMAIL)
        page.locator("#login-password").fill(ADMIN_PASSWORD)
        page.locator("#login-submit").click()
        expect(page.locator("#ct-notfound h2")).to_have_text("Không tìm thấy khách hàng")
        page.context.close()


def test_search_leads_to_the_customers_page(make_settings, chromium):
    with LiveServer(make_settings()) as server:
        api = Api(server.url)
        api.customer_says("tl-search", "máy xay bị kêu to", "Võ Thị Hạnh")
        [row] = api.wait_until(lambda: api.get("/api/conversations")["data"])
        context = chromium.new_context(locale="vi-VN", viewport=DESKTOP)
        context.set_default_timeout(10_000)
        page = context.new_page()
        try:
            page.goto(f"{server.url}/inbox/login")
            page.locator("#login-email").fill(ADMIN_EMAIL)
            page.locator("#login-password").fill(ADMIN_PASSWORD)
            page.locator("#login-submit").click()
            expect(page.locator("#live-state")).to_have_text("Trực tuyến")
            page.get_by_role("combobox", name="Tìm kiếm").fill("vo thi hanh")
            history = page.locator("#search-results").get_by_role("group", name="Lịch sử").get_by_role("option")
            expect(history).to_have_count(1)
            expect(history).to_contain_text("Võ Thị Hạnh")
            history.click()
            expect(page).to_have_url(f"{server.url}/inbox/customers/{row['customer_id']}")
            expect(page.locator("#ct-name")).to_have_text("Võ Thị Hạnh")
            expect(page.locator("#ct-events")).to_contain_text("máy xay bị kêu to")
        finally:
            context.close()
