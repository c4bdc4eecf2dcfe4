"""The widget's file buttons in real Chromium: on a phone (touch, 390 px wide) the attach button
takes photos, videos and PDFs, a camera button opens the camera, and the full-screen panel is not
covered by the launcher; on a desktop there is no camera button."""

from __future__ import annotations

import pytest

from tests.browser.conftest import skip_module_without_browser

pytestmark = pytest.mark.slow  # a real Chromium against a live server

skip_module_without_browser()

try:
    from playwright.sync_api import expect
except ImportError:  # CI without playwright: the chromium fixture fails every test with the reason
    expect = None


def test_a_phone_gets_attach_and_camera_buttons_and_a_full_screen_panel(live_server, chromium):
    context = chromium.new_context(locale="vi-VN", viewport={"width": 390, "height": 844}, has_touch=True,
                                   is_mobile=True)
    try:
        page = context.new_page()
        page.goto(f"{live_server.url}/")
        page.locator(".cdw-launcher").click()
        expect(page.locator(".cdw-panel")).to_be_visible()
        expect(page.locator(".cdw-launcher")).to_be_hidden()  # it would cover the send button
        send = page.locator(".cdw-send").bounding_box()
        assert send["x"] + send["width"] <= 390
        expect(page.locator(".cdw-attach")).to_be_visible()
        expect(page.locator(".cdw-attach")).to_have_attribute("aria-label", "Gửi ảnh, video hoặc tệp")
        expect(page.locator(".cdw-camera")).to_be_visible()
        pickers = page.locator(".cdw-fileinput")
        expect(pickers.nth(0)).to_have_attribute("accept", "image/*,video/*,application/pdf")
        expect(pickers.nth(1)).to_have_attribute("capture", "environment")
        with page.expect_file_chooser() as chooser:
            page.locator(".cdw-camera").click()
        assert not chooser.value.is_multiple()
        page.locator(".cdw-close").click()
        expect(page.locator(".cdw-launcher")).to_be_visible()
    finally:
        context.close()


def test_a_desktop_has_no_camera_button(live_server, page):
    page.goto(f"{live_server.url}/")
    page.locator(".cdw-launcher").click()
    expect(page.locator(".cdw-attach")).to_be_visible()
    expect(page.locator(".cdw-camera")).to_be_hidden()
    with page.expect_file_chooser() as chooser:
        page.locator(".cdw-attach").click()
    assert chooser.value.is_multiple()
