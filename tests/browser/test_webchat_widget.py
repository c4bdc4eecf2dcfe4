"""The widget in a real browser against a real server: ask, get answers, talk to an agent, reload."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import httpx
import pytest

from tests.browser.conftest import skip_module_without_browser
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.helpdesk.webchat.test_webchat import queue_rating_request

pytestmark = pytest.mark.slow  # a real Chromium against a live server

skip_module_without_browser()

try:
    from playwright.sync_api import expect
except ImportError:  # CI without playwright: the chromium fixture fails every test with the reason
    expect = None

CUSTOMER = ".cdw-msg.cdw-customer .cdw-bubble"
BOT = ".cdw-msg.cdw-bot .cdw-bubble"
AGENT = ".cdw-msg.cdw-agent .cdw-bubble"


def watch_outside_requests(page, server_url: str) -> list[str]:
    """Collect every request the page makes to anywhere but the CareDesk server (there must be none)."""
    own = urlsplit(server_url).netloc
    outside: list[str] = []
    page.on("request", lambda request: outside.append(request.url)
            if urlsplit(request.url).netloc not in (own, "") else None)
    return outside


def say(page, text: str) -> None:
    """Type a message in the widget and send it with Enter."""
    page.locator(".cdw-input").fill(text)
    page.locator(".cdw-input").press("Enter")


def agent_replies(server_url: str, text: str) -> None:
    """An agent answers the conversation waiting in the queue, through the helpdesk API."""
    with httpx.Client(base_url=server_url, timeout=10) as api:
        token = api.post("/api/auth/token", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        assert token.status_code == 200, token.text
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        deadline = time.monotonic() + 5
        while True:
            waiting = api.get("/api/conversations", params={"state": "waiting_for_agent"}, headers=headers)
            # The login's database commit can land just after its response (SessionDep commits once
            # the response is sent), so a fast client may briefly see its new token refused.
            if waiting.status_code != 401 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert waiting.status_code == 200, waiting.text
        [conversation] = waiting.json()["data"]
        reply = api.post(f"/api/conversations/{conversation['id']}/messages", json={"text": text}, headers=headers)
        assert reply.status_code == 201, reply.text


def test_visitor_asks_the_bot_talks_to_an_agent_and_finds_it_all_after_a_reload(live_server, page):
    outside = watch_outside_requests(page, live_server.url)
    page.goto(f"{live_server.url}/")
    expect(page.locator("h1")).to_contain_text("Nồi cơm điện")

    page.locator(".cdw-launcher").click()
    expect(page.locator(".cdw-panel")).to_be_visible()
    expect(page.locator(".cdw-welcome")).to_contain_text("Xin chào")

    say(page, "bảo hành bao lâu vậy shop")
    expect(page.locator(BOT).first).to_contain_text("12 tháng")

    say(page, "cho mình gặp nhân viên")
    expect(page.locator(BOT)).to_have_count(2)

    # Markup in a message must show as text, never become elements.
    agent_replies(live_server.url, "Chào bạn, em là <b>Hạnh</b> bên CSKH ạ.")
    agent_bubble = page.locator(AGENT)
    expect(agent_bubble).to_have_text("Chào bạn, em là <b>Hạnh</b> bên CSKH ạ.")
    expect(agent_bubble.locator("b")).to_have_count(0)

    # A rating prompt shows real star buttons; pressing one sends it back as the customer's answer.
    visitor_id = page.evaluate("JSON.parse(localStorage.getItem('caredesk.webchat:' + location.origin)).visitorId")
    queue_rating_request(live_server.server.config.app.state.wiring, visitor_id)
    stars = page.locator(".cdw-btn")
    expect(stars).to_have_text(["⭐", "⭐⭐", "⭐⭐⭐", "⭐⭐⭐⭐", "⭐⭐⭐⭐⭐"])
    stars.last.click()
    expect(page.locator(CUSTOMER).last).to_have_text("⭐⭐⭐⭐⭐")
    expect(page.locator(".cdw-msg.cdw-customer.cdw-pending")).to_have_count(0)  # acknowledged
    expect(stars.last).to_be_disabled()

    page.reload()
    page.locator(".cdw-launcher").click()
    expect(page.locator(CUSTOMER)).to_have_text(["bảo hành bao lâu vậy shop", "cho mình gặp nhân viên", "⭐⭐⭐⭐⭐"])
    expect(page.locator(BOT).first).to_contain_text("12 tháng")
    expect(page.locator(BOT).nth(2)).to_have_text("Bạn chấm điểm giúp shop nhé")
    expect(page.locator(AGENT)).to_have_text("Chào bạn, em là <b>Hạnh</b> bên CSKH ạ.")
    expect(stars).to_have_count(5)
    expect(stars.first).to_be_disabled()  # answered before the reload, still answered after it
    assert outside == []


@pytest.fixture
def english_shop(live_server) -> Iterator[str]:
    """A shop's own site on another origin, embedding the widget from CareDesk in English."""
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Kitchen shop</title></head><body>"
        f"<h1>Rice cookers</h1><script src='{live_server.url}/webchat/widget.js' data-lang='en' defer></script>"
        "</body></html>"
    ).encode()

    class ShopPage(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), ShopPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_widget_embedded_on_another_origin_speaks_english_when_asked(live_server, english_shop, page):
    page.goto(english_shop)
    launcher = page.locator(".cdw-launcher")
    expect(launcher).to_contain_text("Chat with us")
    launcher.click()
    expect(page.locator(".cdw-welcome")).to_contain_text("How can we help")
    say(page, "how long is the warranty?")
    expect(page.locator(BOT).first).to_contain_text("12")
