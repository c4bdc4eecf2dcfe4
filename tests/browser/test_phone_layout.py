"""Every page an agent or a customer sees, on a phone (390×844) and on a desktop (1400×900), in real
Chromium against a real server: nothing overlaps, nothing scrolls sideways, no serious or critical
axe-core finding, thumb-sized targets on the phone; and the phone inbox's stacked views (list →
conversation → customer details and back, the browser's back button included)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.browser.conftest import skip_module_without_browser
from tests.browser.layout_checks import DESKTOP, PHONE, assert_desktop_ready, assert_phone_ready
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, LiveServer

pytestmark = pytest.mark.slow  # a real Chromium against a live server

skip_module_without_browser()

try:
    from playwright.sync_api import expect
except ImportError:  # CI without playwright: the chromium fixture fails every test with the reason
    expect = None

SIZES = {"phone": PHONE, "desktop": DESKTOP}
CUSTOMERS = [("phone-a", "Nguyễn Thị Hồng Nhung",
              "Nồi cơm nhà mình bị lỗi E3, cho mình gặp nhân viên"),
             ("phone-b", "Trần Văn Bình", "cho mình gặp nhân viên tư vấn bảo hành")]


@pytest.fixture(scope="module")
def shop(tmp_path_factory, sqlite_template: Path,
         trained_models_dir: Path) -> Iterator[tuple[str, list[int]]]:
    """One server for the module (the pages are only looked at), with two customers waiting for an agent."""
    from helpdesk.channels.ledger import inbound_database_path
    from helpdesk.core.config import Settings

    folder = tmp_path_factory.mktemp("phone")
    url = f"sqlite:///{folder}/caredesk.db"
    shutil.copyfile(sqlite_template, folder / "caredesk.db")
    shutil.copyfile(inbound_database_path(f"sqlite:///{sqlite_template}"), inbound_database_path(url))
    settings = Settings(_env_file=None, environment="test", database_url=url,
                        nlu={"models_dir": trained_models_dir},
                        admin={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    with LiveServer(settings) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        for sender, name, text in CUSTOMERS:
            response = http.post("/webhooks/cli", json={"sender_id": sender, "message_id": f"{sender}-1",
                                                        "text": text, "name": name})
            assert response.status_code == 200, response.text
        token = http.post("/api/auth/token", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        deadline = time.monotonic() + 15
        while True:
            waiting = http.get("/api/conversations", params={"state": "waiting_for_agent"}, headers=headers)
            if waiting.status_code == 200 and waiting.json()["count"] == len(CUSTOMERS):
                break
            assert time.monotonic() < deadline, waiting.text
            time.sleep(0.1)
        yield server.url, sorted(row["id"] for row in waiting.json()["data"])


@pytest.fixture
def sized_page(request, chromium):
    """A fresh tab at the size named by the test's ``size`` parameter."""
    context = chromium.new_context(locale="vi-VN", viewport=SIZES[request.node.callspec.params["size"]])
    context.set_default_timeout(10_000)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    yield tab
    context.close()
    assert not problems


def check(page, size: str) -> None:
    """The layout and accessibility checks for the size."""
    if size == "phone":
        assert_phone_ready(page)
    else:
        assert_desktop_ready(page)


def log_in(page, url: str, target: str = "/inbox") -> None:
    """Log in through the inbox's login page and land on ``target``."""
    page.goto(f"{url}{target}")
    page.locator("#login-email").fill(ADMIN_EMAIL)
    page.locator("#login-password").fill(ADMIN_PASSWORD)
    page.locator("#login-submit").click()
    expect(page).to_have_url(f"{url}{target}")
    # the URL changes as the page starts loading: its stylesheets and scripts may not be in yet, and a
    # layout measured without them (links wrapping as plain inline text) overlaps
    page.wait_for_load_state("load")


def open_inbox(page, url: str) -> None:
    """Logged in, the list of all conversations loaded (logging in, the admin was given both customers)."""
    log_in(page, url)
    page.locator('.view-link[data-view="all"]').click()
    expect(page.locator(".row")).to_have_count(len(CUSTOMERS))
    expect(page.locator("#live-state")).to_have_text("Trực tuyến")


@pytest.mark.parametrize("size", SIZES)
def test_login_page_fits(shop, sized_page, size):
    url, _ = shop
    sized_page.goto(f"{url}/inbox/login")
    expect(sized_page.locator("#login-submit")).to_be_visible()
    check(sized_page, size)


@pytest.mark.parametrize("size", SIZES)
def test_inbox_list_fits(shop, sized_page, size):
    url, _ = shop
    open_inbox(sized_page, url)
    check(sized_page, size)


@pytest.mark.parametrize("size", SIZES)
def test_open_conversation_fits(shop, sized_page, size):
    url, _ = shop
    open_inbox(sized_page, url)
    sized_page.locator(".row-link", has_text="Nguyễn Thị Hồng Nhung").click()
    expect(sized_page.locator(".msg-customer .bubble").first).to_contain_text("lỗi E3")
    composer = sized_page.locator("#composer-text")
    expect(composer).to_be_visible()
    # The composer fits: a line holds a sentence, not a letter.
    assert composer.bounding_box()["width"] >= 300
    check(sized_page, size)


@pytest.mark.parametrize("size", SIZES)
def test_customer_details_fit(shop, sized_page, size):
    url, _ = shop
    open_inbox(sized_page, url)
    sized_page.locator(".row-link", has_text="Nguyễn Thị Hồng Nhung").click()
    if size == "phone":
        sized_page.locator("#phone-details-button").click()
    details = sized_page.locator("#details")
    expect(details).to_be_visible()
    expect(sized_page.locator("#customer-card")).to_contain_text("Nguyễn Thị Hồng Nhung")
    check(sized_page, size)


def test_phone_inbox_stacks_list_thread_and_details_with_back_actions(shop, sized_page_phone):
    url, _ = shop
    page = sized_page_phone
    open_inbox(page, url)
    list_pane, conv, details = page.locator(".list-pane"), page.locator("#conv"), page.locator("#details")
    expect(list_pane).to_be_in_viewport()
    expect(conv).to_be_hidden()

    # Tap a conversation: the thread takes the screen; the app's back action returns to the list.
    page.locator(".row-link", has_text="Trần Văn Bình").click()
    expect(page.locator("#conv-name")).to_have_text("Trần Văn Bình")
    expect(list_pane).to_be_hidden()
    expect(details).to_be_hidden()
    page.locator("#phone-back").click()
    expect(list_pane).to_be_visible()
    expect(conv).to_be_hidden()
    expect(page).to_have_url(f"{url}/inbox?view=all")

    # The browser's back button does the same.
    page.locator(".row-link", has_text="Nguyễn Thị Hồng Nhung").click()
    expect(page.locator("#conv-name")).to_have_text("Nguyễn Thị Hồng Nhung")
    expect(list_pane).to_be_hidden()
    page.go_back()
    expect(list_pane).to_be_visible()
    expect(conv).to_be_hidden()

    # Customer details open over the thread and close back to it, with either back.
    page.locator(".row-link", has_text="Nguyễn Thị Hồng Nhung").click()
    page.locator("#phone-details-button").click()
    expect(details).to_be_visible()
    expect(page.locator(".thread")).to_be_hidden()
    page.locator("#phone-back").click()
    expect(details).to_be_hidden()
    expect(page.locator(".thread")).to_be_visible()
    page.locator("#phone-details-button").click()
    expect(details).to_be_visible()
    page.go_back()
    expect(details).to_be_hidden()
    expect(page.locator(".thread")).to_be_visible()
    expect(page.locator("#conv-name")).to_have_text("Nguyễn Thị Hồng Nhung")


def test_phone_conversation_opened_from_a_link_goes_back_to_the_list(shop, sized_page_phone):
    url, ids = shop
    page = sized_page_phone
    log_in(page, url)
    page.goto(f"{url}/inbox/conversations/{ids[0]}?view=all")  # as from a link in a message or a bookmark
    expect(page.locator("#conv")).to_be_visible()
    expect(page.locator(".list-pane")).to_be_hidden()
    page.locator("#phone-back").click()
    expect(page.locator(".list-pane")).to_be_visible()
    expect(page.locator(".row")).to_have_count(len(CUSTOMERS))


@pytest.fixture
def sized_page_phone(chromium):
    """A fresh tab the size of a phone."""
    context = chromium.new_context(locale="vi-VN", viewport=PHONE, has_touch=True, is_mobile=True)
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


@pytest.mark.parametrize("size", SIZES)
def test_reports_page_fits(shop, sized_page, size):
    url, _ = shop
    log_in(sized_page, url, "/reports")
    sized_page.wait_for_load_state("networkidle")
    check(sized_page, size)


@pytest.mark.parametrize("size", SIZES)
def test_training_page_fits(shop, sized_page, size):
    url, _ = shop
    sized_page.goto(f"{url}/admin/nlu")
    expect(sized_page.locator("#login")).to_be_visible()
    check(sized_page, size)
    sized_page.locator("#login-form [name=email]").fill(ADMIN_EMAIL)
    sized_page.locator("#login-form [name=password]").fill(ADMIN_PASSWORD)
    sized_page.locator("#login-form button[type=submit]").click()
    expect(sized_page.locator("#app")).to_be_visible()
    sized_page.wait_for_load_state("networkidle")
    check(sized_page, size)


@pytest.mark.parametrize("size", SIZES)
def test_widget_closed_and_open_fits(shop, sized_page, size):
    url, _ = shop
    page = sized_page
    page.goto(f"{url}/demo")
    launcher = page.locator(".cdw-launcher")
    expect(launcher).to_be_visible()
    check(page, size)

    launcher.click()
    expect(page.locator(".cdw-input")).to_be_visible()
    expect(page.locator(".cdw-send")).to_be_visible()
    check(page, size)
    # The launcher never covers the input or Send (the check above would say so if any part did).
    panel = page.locator(".cdw-panel").bounding_box()
    if size == "phone":  # the open widget takes the screen, and closes from its header
        assert panel["width"] == PHONE["width"]
        page.locator(".cdw-close").click()
        expect(page.locator(".cdw-panel")).to_be_hidden()
        expect(launcher).to_be_visible()


def test_tablet_shows_customer_details_in_place_of_the_thread(shop, chromium):
    """Between phone and desktop the details pane has no room beside the thread: a button swaps them."""
    url, _ = shop
    context = chromium.new_context(locale="vi-VN", viewport={"width": 1000, "height": 800})
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        open_inbox(page, url)
        page.locator(".row-link", has_text="Trần Văn Bình").click()
        expect(page.locator("#conv-name")).to_have_text("Trần Văn Bình")
        expect(page.locator("#details")).to_be_hidden()
        expect(page.locator("#phone-back")).to_be_hidden()
        expect(page.locator(".list-pane")).to_be_visible()
        # the icon rail's controls stay inside it (the list pane would be painted over what sticks out)
        spill = page.evaluate("""() => {
            const rail = document.querySelector('.sidebar').getBoundingClientRect();
            return [...document.querySelectorAll('.sidebar a, .sidebar button')]
                .filter((node) => node.getClientRects().length)
                .filter((node) => node.getBoundingClientRect().right > rail.right + 0.5)
                .map((node) => node.textContent.trim());
        }""")
        assert spill == []
        page.locator("#phone-details-button").click()
        expect(page.locator("#details")).to_be_visible()
        expect(page.locator(".thread")).to_be_hidden()
        expect(page.locator("#customer-card")).to_contain_text("Trần Văn Bình")
        assert_desktop_ready(page)
        page.locator("#phone-details-button").click()
        expect(page.locator("#details")).to_be_hidden()
        expect(page.locator(".thread")).to_be_visible()
    finally:
        context.close()


def test_desktop_keeps_three_panes_and_no_phone_buttons(shop, sized_page_desktop):
    url, _ = shop
    page = sized_page_desktop
    open_inbox(page, url)
    page.locator(".row-link", has_text="Trần Văn Bình").click()
    for pane in (".sidebar", ".list-pane", ".thread", "#details"):
        expect(page.locator(pane)).to_be_visible()
    expect(page.locator("#phone-back")).to_be_hidden()
    expect(page.locator("#phone-details-button")).to_be_hidden()
    assert page.locator(".list-pane").bounding_box()["width"] >= 300


@pytest.fixture
def sized_page_desktop(chromium):
    """A fresh tab the size of a desktop window."""
    context = chromium.new_context(locale="vi-VN", viewport=DESKTOP)
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


@pytest.mark.parametrize("viewport", [{"width": 600, "height": 800}, {"width": 844, "height": 390}],
                         ids=["small-tablet", "phone-landscape"])
def test_widget_send_is_never_under_the_launcher_in_between_sizes(shop, chromium, viewport):
    """Where the open panel does not take the screen, it sits above the launcher, never under it."""
    url, _ = shop
    context = chromium.new_context(locale="vi-VN", viewport=viewport)
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        page.goto(f"{url}/demo")
        page.locator(".cdw-launcher").click()
        expect(page.locator(".cdw-send")).to_be_visible()
        launcher = page.locator(".cdw-launcher").bounding_box()
        send, field = page.locator(".cdw-send").bounding_box(), page.locator(".cdw-input").bounding_box()
        for box in (send, field):
            assert box["y"] + box["height"] <= launcher["y"] or box["x"] + box["width"] <= launcher["x"]
            assert box["y"] + box["height"] <= viewport["height"]
        assert_desktop_ready(page)
    finally:
        context.close()


def test_phone_not_found_and_help_fit(shop, sized_page_phone):
    """What else an agent lands on in the phone inbox: a conversation that is not there, the help."""
    url, _ = shop
    page = sized_page_phone
    log_in(page, url)
    page.goto(f"{url}/inbox/conversations/999999")
    expect(page.locator("#conv-notfound")).to_be_visible()
    expect(page.locator(".list-pane")).to_be_hidden()
    assert_phone_ready(page)
    page.locator("#conv-notfound a").click()
    expect(page.locator(".list-pane")).to_be_visible()
    # the link loads /inbox anew: the list is in the served page before the script that opens the help
    # runs, so wait for the script's own sign of life (the live connection) before tapping "?"
    expect(page.locator("#live-state")).to_have_text("Trực tuyến")
    page.locator("#help-button").click()
    expect(page.locator("#help")).to_be_visible()
    assert_phone_ready(page)


def test_phone_inbox_in_english_fits(shop, sized_page_phone):
    """English words are longer in places: the phone views still fit, and the phone buttons are translated."""
    url, _ = shop
    page = sized_page_phone
    open_inbox(page, url)
    page.locator('.sidebar .lang-switch [data-lang="en"]').click()
    expect(page.locator("#view-title")).to_have_text("All")
    assert_phone_ready(page)
    page.locator(".row-link", has_text="Trần Văn Bình").click()
    expect(page.locator("#phone-back")).to_have_text("‹ Back")
    expect(page.locator("#phone-details-button")).to_have_text("Customer")
    assert_phone_ready(page)
