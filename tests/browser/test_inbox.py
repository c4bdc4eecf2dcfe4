"""The agent inbox in real headless Chromium against a real server: log in, a customer's message
arrives live, claim, reply (and it reaches the customer), the SLA timer counts, resolve, and an agent
of another team cannot open the conversation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, LiveServer

pytestmark = pytest.mark.slow  # a real Chromium against a live server

pytest.importorskip("playwright", reason="the browser tests drive Chromium through playwright")

from playwright.sync_api import expect  # noqa: E402

PASSWORD = "agent-pass-1"


@pytest.fixture
def inbox_server(make_settings) -> Iterator[LiveServer]:
    """CareDesk with the inbox on a real port (embedded default: SQLite, cli channel on)."""
    server = LiveServer(make_settings())
    with server:
        yield server


class Api:
    """What happens outside the browser: the admin's API calls and customers writing on the cli channel."""

    def __init__(self, url: str):
        self.http = httpx.Client(base_url=url, timeout=10)
        self.admin = self.bearer(ADMIN_EMAIL, ADMIN_PASSWORD)

    def bearer(self, email: str, password: str) -> dict[str, str]:
        """API headers for an account."""
        response = self.http.post("/api/auth/token", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def get(self, path: str, **params) -> dict:
        """GET as the admin, allowing for the token's commit landing just after the login answer."""
        deadline = time.monotonic() + 5
        while (response := self.http.get(path, params=params, headers=self.admin)).status_code == 401:
            assert time.monotonic() < deadline, response.text
            time.sleep(0.05)
        assert response.status_code == 200, response.text
        return response.json()

    def make_agent(self, email: str, name: str, teams: list[str], capacity: int = 5) -> int:
        """Create an account."""
        response = self.http.post("/api/agents", headers=self.admin, json={
            "email": email, "name": name, "password": PASSWORD, "teams": teams, "capacity": capacity})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def customer_says(self, sender: str, text: str, name: str) -> None:
        """A customer writes on the cli channel."""
        response = self.http.post("/webhooks/cli", json={
            "sender_id": sender, "message_id": f"{sender}-{time.monotonic_ns()}", "text": text, "name": name})
        assert response.status_code == 200, response.text

    def wait_until(self, check, timeout: float = 10.0):
        """Poll until ``check()`` returns something truthy, and return it."""
        deadline = time.monotonic() + timeout
        while not (value := check()):
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.05)
        return value


def log_in(page, url: str, email: str) -> None:
    """Open the inbox, get sent to the login page, log in, land back in the inbox."""
    page.goto(f"{url}/inbox")
    expect(page).to_have_url(f"{url}/inbox/login?next=/inbox")
    page.locator("#login-email").fill(email)
    page.locator("#login-password").fill(PASSWORD)
    page.locator("#login-submit").click()
    expect(page).to_have_url(f"{url}/inbox")
    expect(page.locator("#live-state")).to_have_text("Trực tuyến")


def test_agent_claims_replies_and_resolves_a_conversation_that_arrives_live(inbox_server, chromium, page):
    url = inbox_server.url
    api = Api(url)
    api.make_agent("lan@test.local", "Nguyễn Thị Lan", ["care"], capacity=1)
    api.make_agent("minh@test.local", "Trần Văn Minh", ["technical"])
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("request", lambda request: problems.append(f"outside request: {request.url}")
            if urlsplit(request.url).netloc != urlsplit(url).netloc else None)

    # One customer is already waiting: Lan coming online (capacity 1) takes them, so she is full.
    api.customer_says("inbox-a", "cho mình gặp nhân viên", "Lê Văn An")
    api.wait_until(lambda: api.get("/api/conversations", state="waiting_for_agent")["count"] == 1)
    log_in(page, url, "lan@test.local")
    expect(page.locator('[data-count="mine"]')).to_have_text("1")

    # A new customer writes: the row appears in "Chưa nhận" without a reload.
    page.evaluate("window.sameDocument = true")
    api.customer_says("inbox-b", "Nồi cơm nhà mình hỏng rồi <b>gấp</b>, cho gặp nhân viên", "Trần Thị Bình")
    row = page.locator(".row", has_text="Trần Thị Bình")
    expect(row).to_be_visible(timeout=5000)
    assert page.evaluate("window.sameDocument") is True
    conversation_id = int(row.get_attribute("data-id"))

    row.locator(".row-link").click()
    expect(page).to_have_url(f"{url}/inbox/conversations/{conversation_id}?view=unassigned")
    customer_bubble = page.locator(".msg-customer .bubble").first
    expect(customer_bubble).to_have_text("Nồi cơm nhà mình hỏng rồi <b>gấp</b>, cho gặp nhân viên")
    expect(page.locator("#timeline b")).to_have_count(0)  # customer markup stays text

    # The first-response timer counts down in the browser.
    timer = page.locator("#sla-card .sla").first
    before = timer.text_content()
    expect(timer).not_to_have_text(before, timeout=5000)

    # Transfer to Lan's team, then claim it ("c") although the round robin finds her full.
    page.locator("#team-select").select_option("care")
    page.locator("#transfer-button").click()
    expect(page.locator("#conv-sub")).to_contain_text("Nhóm: care")
    page.keyboard.press("c")
    expect(page.locator("#conv-sub")).to_contain_text("Giao cho bạn")
    expect(page.locator("#act-claim")).to_be_hidden()
    expect(page.locator('[data-count="mine"]')).to_have_text("2")

    # Reply: stored, delivered to the customer's channel, shown as sent.
    reply = "Dạ em chào chị Bình, em nhận yêu cầu bảo hành nồi cơm rồi ạ."
    page.locator("#composer-text").fill(reply)
    page.locator("#composer-text").press("Enter")
    sent = page.locator(".msg-agent", has_text=reply)
    expect(sent.locator('.delivery[data-status="sent"]')).to_be_visible()
    stored = api.get(f"/api/conversations/{conversation_id}")["messages"]
    assert [(m["author"], m["delivery_status"]) for m in stored if m["text"] == reply] == [("agent", "sent")]
    received = api.get("/webhooks/cli/messages", sender_id="inbox-b")["data"]
    assert reply in [m["text"] for m in received if m["author"] == "agent"]

    # Resolve with the keyboard ("e", once out of the reply box).
    page.keyboard.press("Escape")
    page.keyboard.press("e")
    expect(page.locator("#conv-sub .state-resolved")).to_be_visible()
    expect(page.locator("#composer-closed")).to_be_visible()
    assert api.get(f"/api/conversations/{conversation_id}")["state"] == "resolved"
    assert problems == []

    # An agent of another team opening the link sees "not found".
    other = chromium.new_context(locale="vi-VN")
    try:
        other_page = other.new_page()
        log_in(other_page, url, "minh@test.local")
        other_page.goto(f"{url}/inbox/conversations/{conversation_id}")
        expect(other_page.locator("#conv-notfound")).to_be_visible()
        expect(other_page.locator("#conv-notfound")).to_contain_text("Không tìm thấy cuộc trò chuyện")
        expect(other_page.locator("#conv")).to_be_hidden()
    finally:
        other.close()
