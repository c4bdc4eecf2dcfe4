"""Photos both ways in a real browser: a visitor sends a photo from the web chat widget on a
phone-sized screen, the agent sees it in the inbox thread (thumbnail, viewer, the customer panel's
list) and answers with a photo from the composer, which the visitor sees in the widget."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from tests.browser.conftest import skip_module_without_browser
from tests.browser.test_inbox import Api
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD

pytestmark = [
    pytest.mark.slow,  # a real Chromium against a live server
]

skip_module_without_browser()

try:
    from playwright.sync_api import expect
except ImportError:  # CI without playwright: the chromium fixture fails every test with the reason
    expect = None

PHONE = {"width": 390, "height": 844}
LOADED = "img => img.complete && img.naturalWidth > 0"


def picture(path: Path, fmt: str, color: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> Path:
    """A small real image file made here (PNG or JPEG)."""
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    path.write_bytes(buffer.getvalue())
    return path


def log_in_as_admin(page, url: str) -> None:
    page.goto(f"{url}/inbox")
    page.locator("#login-email").fill(ADMIN_EMAIL)
    page.locator("#login-password").fill(ADMIN_PASSWORD)
    page.locator("#login-submit").click()
    expect(page).to_have_url(f"{url}/inbox")


def test_a_photo_goes_from_the_phone_widget_to_the_inbox_and_one_comes_back(live_server, chromium, tmp_path):
    url = live_server.url
    api = Api(url)
    problems: list[str] = []
    phone = chromium.new_context(locale="vi-VN", viewport=PHONE, has_touch=True, is_mobile=True)
    desk = chromium.new_context(locale="vi-VN", viewport={"width": 1400, "height": 900})
    try:
        visitor = phone.new_page()
        visitor.on("pageerror", lambda error: problems.append(f"widget: {error}"))
        visitor.goto(f"{url}/")
        visitor.locator(".cdw-launcher").click()
        panel = visitor.locator(".cdw-panel")
        expect(panel).to_be_visible()
        box = panel.bounding_box()
        assert box["width"] == PHONE["width"], box  # the panel fills a phone's screen
        expect(visitor.locator(".cdw-camera")).to_be_visible()  # the camera button, on a touch screen
        assert visitor.locator(".cdw-camera + .cdw-fileinput, .cdw-fileinput[capture]").count() >= 1

        visitor.locator(".cdw-input").fill("cho mình gặp nhân viên")
        visitor.locator(".cdw-input").press("Enter")
        api.wait_until(lambda: api.get("/api/conversations", state="waiting_for_agent")["count"] == 1)

        # The visitor sends a photo of the broken product from the phone.
        broken = picture(tmp_path / "noi-bi-hong.png", "PNG", (200, 30, 30))
        visitor.locator(".cdw-fileinput").first.set_input_files(str(broken))
        sent = visitor.locator(".cdw-msg.cdw-customer img.cdw-img")
        expect(sent).to_be_visible()
        visitor.wait_for_function(f"() => {{ const host = document.querySelector('#caredesk-webchat');"
                                  f" const img = host.shadowRoot.querySelector('.cdw-customer img.cdw-img');"
                                  f" return img && ({LOADED})(img); }}")
        expect(visitor.locator(".cdw-failed")).to_have_count(0)

        # A zero-byte file is refused with a reason, and nothing else is lost.
        empty = tmp_path / "empty.jpg"
        empty.write_bytes(b"")
        visitor.locator(".cdw-fileinput").first.set_input_files(str(empty))
        expect(visitor.locator(".cdw-msg.cdw-failed")).to_be_visible()
        expect(sent).to_have_count(1)

        # The agent sees the photo in the thread, opens it in the viewer, and finds it in the panel.
        [conversation] = api.get("/api/conversations", state="waiting_for_agent")["data"]
        agent = desk.new_page()
        agent.on("pageerror", lambda error: problems.append(f"inbox: {error}"))
        log_in_as_admin(agent, url)
        agent.goto(f"{url}/inbox/conversations/{conversation['id']}")
        thumb = agent.locator(".msg-customer .att-thumb img")
        expect(thumb).to_be_visible()
        assert thumb.evaluate(LOADED)
        agent.locator(".msg-customer .att-thumb").click()
        expect(agent.locator("#viewer .viewer-image")).to_be_visible()
        assert agent.locator("#viewer .viewer-image").evaluate(LOADED)
        agent.keyboard.press("Escape")
        expect(agent.locator("#viewer")).to_be_hidden()
        expect(agent.locator("#attachments-card .att-list-item")).to_have_count(1)

        # The agent answers with a photo and a caption from the composer.
        part = picture(tmp_path / "linh-kien.jpg", "JPEG", (30, 120, 200))
        agent.locator("#composer-file").set_input_files(str(part))
        expect(agent.locator("#uploads .upload")).to_have_count(1)
        agent.locator("#composer-text").fill("Dạ đây là linh kiện thay thế ạ")
        agent.locator("#composer-text").press("Enter")
        answer = agent.locator(".msg-agent .att-thumb img")
        expect(answer).to_be_visible()
        assert answer.evaluate(LOADED)
        expect(agent.locator("#uploads .upload")).to_have_count(0)

        # ... and the visitor sees it in the widget.
        received = visitor.locator(".cdw-msg.cdw-agent img.cdw-img")
        expect(received).to_be_visible(timeout=10_000)
        visitor.wait_for_function(f"() => {{ const host = document.querySelector('#caredesk-webchat');"
                                  f" const img = host.shadowRoot.querySelector('.cdw-agent img.cdw-img');"
                                  f" return img && ({LOADED})(img); }}")

        # After a reload the widget's history shows both photos again (fresh signed links).
        visitor.reload()
        visitor.locator(".cdw-launcher").click()
        expect(visitor.locator(".cdw-msg img.cdw-img")).to_have_count(2)
        visitor.wait_for_function("() => { const host = document.querySelector('#caredesk-webchat');"
                                  " const imgs = [...host.shadowRoot.querySelectorAll('img.cdw-img')];"
                                  f" return imgs.length === 2 && imgs.every({LOADED}); }}")
        assert problems == []
    finally:
        phone.close()
        desk.close()


def test_a_zero_byte_upload_is_refused_with_the_server_reason_in_the_composer(live_server, chromium, tmp_path):
    url = live_server.url
    api = Api(url)
    api.customer_says("refused", "cho mình gặp nhân viên", "Khách A")
    [conversation] = api.wait_until(lambda: api.get("/api/conversations", state="waiting_for_agent")["data"])
    desk = chromium.new_context(locale="vi-VN", viewport={"width": 1400, "height": 900})
    try:
        agent = desk.new_page()
        log_in_as_admin(agent, url)
        agent.goto(f"{url}/inbox/conversations/{conversation['id']}")
        empty = tmp_path / "empty.png"
        empty.write_bytes(b"")
        agent.locator("#composer-file").set_input_files(str(empty))
        agent.locator("#composer-send").click()
        failed = agent.locator("#uploads .upload-failed")
        expect(failed).to_be_visible()
        expect(failed.locator(".upload-status")).not_to_be_empty()
        expect(agent.locator(".msg-agent .att")).to_have_count(0)
    finally:
        desk.close()
