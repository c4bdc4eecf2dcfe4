"""The inbox's search box in real headless Chromium against a real server, on a desktop (1400×900) and a
phone (390×844): results as the agent types without accents, grouped, highlighted as text (a message's
markup stays text), opened with the keyboard or a click."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.browser.layout_checks import assert_desktop_ready, assert_phone_ready
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, LiveServer

pytestmark = pytest.mark.slow  # a real Chromium against a live server

pytest.importorskip("playwright", reason="the browser tests drive Chromium through playwright")

from playwright.sync_api import expect  # noqa: E402

VIEWPORTS = {"desktop": {"width": 1400, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture
def inbox_server(make_settings) -> Iterator[LiveServer]:
    """CareDesk with the inbox on a real port (embedded default: SQLite, cli channel on)."""
    with LiveServer(make_settings()) as server:
        yield server


def customer_says(http: httpx.Client, sender: str, text: str, name: str) -> None:
    response = http.post("/webhooks/cli", json={
        "sender_id": sender, "message_id": f"{sender}-{time.monotonic_ns()}", "text": text, "name": name})
    assert response.status_code == 200, response.text


def conversation_of(http: httpx.Client, headers: dict[str, str], name: str) -> int:
    deadline = time.monotonic() + 10
    while True:
        found = http.get("/api/search", params={"q": name}, headers=headers).json()["conversations"]
        if found:
            return found[0]["conversation_id"]
        assert time.monotonic() < deadline, f"no conversation of {name}"
        time.sleep(0.1)


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_search_box_finds_opens_and_keeps_markup_as_text(inbox_server, chromium, size):
    url = inbox_server.url
    http = httpx.Client(base_url=url, timeout=10)
    token = http.post("/api/auth/token", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    customer_says(http, "s-ha", 'Máy lọc nước bị rò rỉ <img src=x onerror="window.pwned=1"> gấp', "Phạm Thu Hà")
    customer_says(http, "s-minh", "Giao hàng chậm quá", "Đỗ Văn Minh")
    ha = conversation_of(http, headers, "Phạm Thu Hà")
    minh = conversation_of(http, headers, "Đỗ Văn Minh")

    context = chromium.new_context(locale="vi-VN", viewport=VIEWPORTS[size])
    context.set_default_timeout(10_000)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    try:
        page.goto(f"{url}/inbox")
        page.locator("#login-email").fill(ADMIN_EMAIL)
        page.locator("#login-password").fill(ADMIN_PASSWORD)
        page.locator("#login-submit").click()
        expect(page).to_have_url(f"{url}/inbox")
        # the inbox's script has started (its shortcuts are bound) once it is live
        expect(page.locator("#live-state")).to_have_text("Trực tuyến")

        box = page.get_by_role("combobox", name="Tìm kiếm")
        expect(box).to_be_visible()
        inside = box.bounding_box()
        assert inside["x"] >= 0 and inside["x"] + inside["width"] <= VIEWPORTS[size]["width"]

        # typed without accents, as on a phone keyboard; the last word still being typed
        page.keyboard.press("Control+k")
        expect(box).to_be_focused()
        page.keyboard.type("ro r")
        results = page.locator("#search-results")
        expect(results).to_be_visible()
        expect(box).to_have_attribute("aria-expanded", "true")
        conversations = results.get_by_role("group", name="Hội thoại")
        option = conversations.get_by_role("option").filter(has_text="Phạm Thu Hà")
        expect(option).to_have_count(1)
        expect(option.locator("mark")).to_have_text(["rò", "rỉ"])
        expect(option).to_contain_text('<img src=x onerror="window.pwned=1">')
        assert results.locator("img").count() == 0 and page.evaluate("window.pwned") is None
        expect(results.get_by_role("option").filter(has_text="Đỗ Văn Minh")).to_have_count(0)
        within = results.bounding_box()
        assert within["x"] >= 0 and within["x"] + within["width"] <= VIEWPORTS[size]["width"], within
        # the open results pass the layout and accessibility checks of their size
        (assert_phone_ready if size == "phone" else assert_desktop_ready)(page)

        # the keyboard: down to the first result, Enter opens it
        page.keyboard.press("ArrowDown")
        expect(box).to_have_attribute("aria-activedescendant", option.get_attribute("id"))
        page.keyboard.press("Enter")
        expect(page).to_have_url(f"{url}/inbox/conversations/{ha}?view=unassigned")
        expect(page.locator("#conv-name")).to_have_text("Phạm Thu Hà")
        expect(results).to_be_hidden()

        # customers are a group of their own; a click opens their conversation (on a phone the
        # conversation took the list's place, search box included: Back returns to it)
        if size == "phone":
            expect(box).to_be_hidden()
            page.locator("#phone-back").click()
        box.fill("do van")
        customer = results.get_by_role("group", name="Khách hàng").get_by_role("option").filter(
            has_text="Đỗ Văn Minh")
        customer.click()
        expect(page).to_have_url(f"{url}/inbox/conversations/{minh}?view=unassigned")
        expect(page.locator("#conv-name")).to_have_text("Đỗ Văn Minh")

        if size == "phone":
            page.locator("#phone-back").click()
        box.fill("zzqxv")
        expect(results).to_contain_text("Không tìm thấy kết quả")
        (assert_phone_ready if size == "phone" else assert_desktop_ready)(page)
        page.keyboard.press("Escape")
        expect(results).to_be_hidden()
        assert problems == []
    finally:
        context.close()
