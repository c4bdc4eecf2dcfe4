"""Notifications in real headless Chromium against a real server: no permission prompt on load, a
browser Notification for a new conversation in the agent's queues (with the permission granted by the
test), none for the conversation on screen, the unread count in the tab title, cleared on opening."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.browser.layout_checks import assert_ready_at_both_sizes
from tests.browser.test_inbox import Api, inbox_server, log_in  # noqa: F401 (fixture)

SCREENSHOTS = Path(os.environ.get("CAREDESK_SCREENSHOTS", "/tmp"))

pytestmark = pytest.mark.slow  # a real Chromium against a live server

pytest.importorskip("playwright", reason="the browser tests drive Chromium through playwright")

from playwright.sync_api import expect  # noqa: E402

#: records every Notification the page constructs, and every permission request, before any script runs
OBSERVE_NOTIFICATIONS = """
window.__shown = [];
window.__notifications = [];
window.__permissionRequests = 0;
const Real = window.Notification;
class Observed extends Real {
  constructor(title, options) {
    super(title, options);
    window.__notifications.push(this);
    window.__shown.push({ title, body: (options || {}).body, tag: (options || {}).tag,
                          data: (options || {}).data });
  }
}
Observed.requestPermission = (...args) => { window.__permissionRequests += 1; return Real.requestPermission(...args); };
Object.defineProperty(Observed, "permission", { get: () => Real.permission });
window.Notification = Observed;
"""


def wait_for(page, expression: str, timeout: float = 10.0) -> None:
    """Poll a page expression until it is true (the inbox's CSP forbids the eval of wait_for_function)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        page.wait_for_timeout(50)


def notification_context(chromium, url: str):
    """A browser profile that granted this site notifications, observing the Notification constructor."""
    context = chromium.new_context(locale="vi-VN")
    context.set_default_timeout(10_000)
    context.grant_permissions(["notifications"], origin=url)
    context.add_init_script(OBSERVE_NOTIFICATIONS)
    return context


def test_new_conversation_notifies_and_counts_in_the_title(inbox_server, chromium):
    url = inbox_server.url
    api = Api(url)
    api.make_agent("lan@test.local", "Nguyễn Thị Lan", ["care"], capacity=1)
    api.make_agent("minh@test.local", "Trần Văn Minh", ["technical"])  # makes the team "technical"
    context = notification_context(chromium, url)
    try:
        page = context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        # Playwright's profiles are incognito ones, where Chromium itself logs that it has no Push API
        # (the inbox's subscription attempt then fails quietly): that line is the browser's, not ours.
        page.on("console", lambda message: problems.append(message.text)
                if message.type == "error" and "Push API in incognito" not in message.text else None)
        log_in(page, url, "lan@test.local")
        assert page.evaluate("window.__permissionRequests") == 0  # never asked on load
        expect(page.locator("#notify-enable .notify-label")).to_have_text("Tắt thông báo")  # granted: on
        expect(page.locator("#notify-sound .notify-label")).to_have_text("Âm báo: tắt")  # sound off by default
        assert page.title() == "Hộp thư · CareDesk"
        # the notification controls, switched on, fit on a phone and a desktop and pass the checks
        assert_ready_at_both_sizes(page)

        # The page is visible but shows no conversation: a new one handed to her notifies.
        api.customer_says("notify-a", "cho mình gặp nhân viên", "Lê Văn An")
        wait_for(page, "window.__shown.length >= 1")
        [shown] = page.evaluate("window.__shown")
        assert shown["title"] == "Cuộc trò chuyện mới: Lê Văn An"
        conversation_id = shown["data"]["conversation_id"]
        assert shown["data"]["url"] == f"/inbox/conversations/{conversation_id}"
        expect(page).to_have_title("(1) Hộp thư · CareDesk")

        # A second one waits in the queue (she is full): two unread.
        api.customer_says("notify-b", "cho gặp nhân viên với", "Trần Thị Bình")
        wait_for(page, "window.__shown.length >= 2")
        expect(page).to_have_title("(2) Hộp thư · CareDesk")

        # Clicking the first notification opens its conversation, which leaves the count.
        page.evaluate("window.__notifications[0].dispatchEvent(new Event('click'))")
        expect(page).to_have_url(f"{url}/inbox/conversations/{conversation_id}?view=unassigned")
        expect(page).to_have_title("(1) Lê Văn An · Hộp thư · CareDesk")

        # The customer on screen writes again: no notification while the agent looks at it.
        before = page.evaluate("window.__shown.length")
        api.customer_says("notify-a", "alo shop ơi", "Lê Văn An")
        expect(page.locator(".msg-customer .bubble", has_text="alo shop ơi")).to_be_visible()
        page.wait_for_timeout(500)
        assert page.evaluate("window.__shown.length") == before

        # The other one moves to a team she is not in: out of her sight, out of the count.
        other_id = page.evaluate("window.__shown[1].data.conversation_id")
        moved = api.http.post(f"/api/conversations/{other_id}/assign", headers=api.admin, json={"team": "technical"})
        assert moved.status_code == 200, moved.text
        expect(page).to_have_title("Lê Văn An · Hộp thư · CareDesk")
        assert problems == []
    finally:
        context.close()


def test_permission_is_asked_only_from_the_enable_control(inbox_server, chromium):
    url = inbox_server.url
    api = Api(url)
    api.make_agent("lan@test.local", "Nguyễn Thị Lan", ["care"])
    context = chromium.new_context(locale="vi-VN")  # nothing granted: the permission is "default"
    context.set_default_timeout(10_000)
    context.add_init_script(OBSERVE_NOTIFICATIONS)
    try:
        page = context.new_page()
        log_in(page, url, "lan@test.local")
        page.wait_for_timeout(300)
        assert page.evaluate("window.__permissionRequests") == 0
        enable = page.locator("#notify-enable .notify-label")
        expect(enable).to_have_text("Bật thông báo")
        enable.click()
        wait_for(page, "window.__permissionRequests === 1")
        # The sound toggle is remembered across loads.
        page.locator("#notify-sound").click()
        expect(page.locator("#notify-sound .notify-label")).to_have_text("Âm báo: bật")
        page.reload()
        expect(page.locator("#notify-sound .notify-label")).to_have_text("Âm báo: bật")
        assert page.evaluate("window.__permissionRequests") == 0  # a fresh page: still never on load
        # the controls before permission ("Bật thông báo", the longer label) fit at both sizes too
        assert_ready_at_both_sizes(page)
    finally:
        context.close()


def test_inbox_installs_as_an_app_and_opens_offline(inbox_server, chromium, page):
    url = inbox_server.url
    api = Api(url)
    api.make_agent("lan@test.local", "Nguyễn Thị Lan", ["care"])
    log_in(page, url, "lan@test.local")

    # The manifest is linked and complete.
    href = page.locator('link[rel="manifest"]').get_attribute("href")
    manifest = page.evaluate("async (href) => (await fetch(href)).json()", href)
    assert manifest["start_url"] == "/inbox" and manifest["display"] == "standalone"
    assert manifest["short_name"] == "CareDesk" and manifest["theme_color"]
    sizes = {(icon["sizes"], icon.get("purpose", "any")) for icon in manifest["icons"]}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= sizes
    for icon in manifest["icons"]:
        response = page.request.get(f"{url}{icon['src']}")
        assert response.status == 200 and response.headers["content-type"] == "image/png"

    # The service worker registers for the inbox and takes control of the page.
    scope = page.evaluate("async () => (await navigator.serviceWorker.ready).scope")
    assert scope == f"{url}/inbox"
    page.reload()
    expect(page.locator("#live-state")).to_have_text("Trực tuyến")
    assert page.evaluate("navigator.serviceWorker.controller !== null")

    # Offline: the inbox still opens from the cached shell and says it is offline; no API answer was cached.
    page.context.set_offline(True)
    try:
        page.reload()
        expect(page.locator("#offline-banner")).to_be_visible()
        expect(page.locator("#offline-banner")).to_contain_text("Ngoại tuyến")
        expect(page.locator("#me-name")).to_have_text("Nguyễn Thị Lan")
        page.wait_for_timeout(300)
        expect(page.locator(".toast-error")).to_have_count(0)  # one clear banner, not a toast per failed call
        page.screenshot(path=str(SCREENSHOTS / "inbox-offline.png"))
        cached = page.evaluate("""async () => {
            const keys = [];
            for (const name of await caches.keys()) {
              for (const request of await (await caches.open(name)).keys()) keys.push(new URL(request.url).pathname);
            }
            return keys;
        }""")
        assert "/inbox" in cached and "/inbox/static/inbox.js" in cached
        assert not [path for path in cached if "/api/" in path], cached
    finally:
        page.context.set_offline(False)
    expect(page.locator("#offline-banner")).to_be_hidden()


def test_service_worker_shows_a_push_as_a_notification(inbox_server, chromium):
    """Headless Chromium reaches no real push service: the push is handed to the worker through the
    DevTools protocol (what the browser does when its push service delivers one)."""
    url = inbox_server.url
    api = Api(url)
    api.make_agent("lan@test.local", "Nguyễn Thị Lan", ["care"])
    context = notification_context(chromium, url)
    try:
        page = context.new_page()
        log_in(page, url, "lan@test.local")
        page.evaluate("async () => { await navigator.serviceWorker.ready; }")
        cdp = context.new_cdp_session(page)
        registrations: list[dict] = []
        cdp.on("ServiceWorker.workerRegistrationUpdated",
               lambda event: registrations.extend(event["registrations"]))
        cdp.send("ServiceWorker.enable")
        deadline = time.monotonic() + 10
        while not [r for r in registrations if r["scopeURL"] == f"{url}/inbox" and not r["isDeleted"]]:
            assert time.monotonic() < deadline, registrations
            page.wait_for_timeout(50)
        [registration] = [r for r in registrations if r["scopeURL"] == f"{url}/inbox" and not r["isDeleted"]][:1]
        payload = ('{"title":"Cuộc trò chuyện mới: Lê Văn An","body":"Lê Văn An đang chờ nhân viên",'
                   '"conversation_id":7,"url":"/inbox/conversations/7","kind":"new_conversation"}')
        shown_now = """async () => (await (await navigator.serviceWorker.getRegistration("/inbox")).getNotifications())
            .map((n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data }))"""

        def push() -> None:
            cdp.send("ServiceWorker.deliverPushMessage", {
                "origin": url, "registrationId": registration["registrationId"], "data": payload})

        # The inbox is on screen: it tells the agent itself, the worker shows nothing.
        push()
        page.wait_for_timeout(500)
        assert page.evaluate(shown_now) == []

        # The inbox closed (the tab moved to another page of the site): the worker shows the push.
        # DevTools hands the push over without an answer; one delivered while the worker is still
        # settling after the navigation was seen lost once (a fresh-clone run, not reproduced in 18
        # runs since), so an unseen push is delivered again, as a push service retries. The tag makes
        # a repeat replace the notification, never add a second one.
        page.goto(f"{url}/healthz")
        push()
        shown = []
        deadline = time.monotonic() + 15
        next_push = time.monotonic() + 3
        while not shown:
            assert time.monotonic() < deadline, "the worker showed no notification"
            if time.monotonic() > next_push:
                push()
                next_push = time.monotonic() + 3
            shown = page.evaluate(shown_now)
            page.wait_for_timeout(50)
        assert shown == [{"title": "Cuộc trò chuyện mới: Lê Văn An", "body": "Lê Văn An đang chờ nhân viên",
                          "tag": "caredesk-conversation-7",
                          "data": {"conversation_id": 7, "url": "/inbox/conversations/7"}}]
    finally:
        context.close()
