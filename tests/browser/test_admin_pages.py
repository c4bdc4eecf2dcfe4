"""The admin pages in real headless Chromium against a real server, at a desktop (1400x900) and a
phone (390x844) size: an admin invites an agent and reads the temporary password, changes roles and
deactivates, creates and renames teams and picks members, writes, edits and deletes canned responses
(whose placeholders the inbox fills in), sets SLA targets, business hours and holidays, and reads the
channels' status. On every page: no horizontal scroll, labelled inputs, nothing from another site."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.browser.conftest import skip_module_without_browser
from tests.browser.layout_checks import PHONE, assert_desktop_ready, assert_phone_ready
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, LiveServer

pytestmark = pytest.mark.slow  # a real Chromium against a live server

skip_module_without_browser()
pytest.importorskip("playwright", reason="the browser tests drive Chromium through playwright")

from playwright.sync_api import expect  # noqa: E402

SIZES = {"desktop": (1400, 900), "phone": (390, 844)}
PASSWORD = "agent-pass-1"


@pytest.fixture
def admin_server(make_settings) -> Iterator[LiveServer]:
    """CareDesk on a real port with a public base URL (for the webhook addresses)."""
    with LiveServer(make_settings(storage={"public_base_url": "https://care.example.vn"})) as server:
        yield server


@pytest.fixture(params=list(SIZES))
def sized_page(request, chromium):
    """A fresh browser profile at one of the two sizes, failing the test on any page error."""
    width, height = SIZES[request.param]
    context = chromium.new_context(locale="vi-VN", viewport={"width": width, "height": height},
                                   has_touch=request.param == "phone")
    context.set_default_timeout(10_000)
    tab = context.new_page()
    tab.problems = []
    tab.on("pageerror", lambda error: tab.problems.append(f"page error: {error}"))
    # refusals the tests provoke (409, 400) show as failed loads; their words on the page are checked
    tab.on("console", lambda message: tab.problems.append(message.text)
           if message.type == "error" and "status of 4" not in message.text else None)
    yield tab
    context.close()


def api_headers(url: str, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> dict[str, str]:
    response = httpx.post(f"{url}/api/auth/token", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def log_in(page, url: str, path: str, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> None:
    """Open an admin page, log in on the way, land back on it."""
    page.on("request", lambda request: page.problems.append(f"outside request: {request.url}")
            if urlsplit(request.url).netloc != urlsplit(url).netloc else None)
    page.goto(f"{url}{path}")
    expect(page).to_have_url(f"{url}/inbox/login?next={path}")
    page.locator("#login-email").fill(email)
    page.locator("#login-password").fill(password)
    page.locator("#login-submit").click()
    expect(page).to_have_url(f"{url}{path}")
    # the URL changes as the page starts loading: its stylesheets and scripts may not be in yet, and a
    # layout measured without them (links wrapping as plain inline text) overlaps
    page.wait_for_load_state("load")


def check_layout(page) -> None:
    """No horizontal scroll; every visible input, select and textarea has a label; buttons are big
    enough for a thumb."""
    width = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert width <= 0, f"the page scrolls sideways by {width}px"
    unlabelled = page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
        .filter((el) => el.offsetParent !== null && el.type !== 'hidden')
        .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
        .map((el) => el.outerHTML)""")
    assert unlabelled == []
    small = page.evaluate("""() => [...document.querySelectorAll('main button, main .btn')]
        .filter((el) => el.offsetParent !== null)
        .map((el) => el.getBoundingClientRect())
        .filter((box) => box.height < 40 || box.width < 40).length""")
    assert small == 0
    words = page.locator("body").inner_text().split()
    assert "null" not in words and "undefined" not in words  # a missing value must not print as such
    assert page.problems == []
    # and the shared checks of its size: nothing overlaps, nothing sticks out, no serious axe-core
    # finding, and on a phone every control (the navigation's too) at least 44 px
    on_phone = page.viewport_size["width"] <= PHONE["width"]
    (assert_phone_ready if on_phone else assert_desktop_ready)(page)


def in_nav(page, selector: str):
    """A control of the shared navigation, ready to tap: on a phone the navigation is folded behind its
    menu button, which is opened first (and the open menu checked like any page)."""
    menu = page.locator("#app-nav-menu")
    if menu.is_visible():
        if menu.get_attribute("aria-expanded") != "true":
            menu.click()
        expect(menu).to_have_attribute("aria-expanded", "true")
        assert_phone_ready(page)
    control = page.locator(f"#app-nav {selector}")
    expect(control).to_be_visible()
    return control


def test_agents_invite_role_deactivate_and_guards(admin_server, sized_page):
    page, url = sized_page, admin_server.url
    log_in(page, url, "/admin/agents")
    expect(page.locator("h1")).to_have_text("Nhân viên")
    expect(page.locator('#app-nav a[aria-current="page"]')).to_have_text("Nhân viên")
    check_layout(page)

    form = page.locator("#invite-form")
    form.get_by_label("Email").fill("lan@test.local")
    form.get_by_label("Họ tên").fill("Nguyễn Thị Lan")
    form.get_by_label("Vai trò").select_option("supervisor")
    form.locator("button[type=submit]").click()
    expect(page.locator("#admin-flash")).to_have_text("Đã tạo tài khoản cho Nguyễn Thị Lan")
    password = page.locator("#temporary-password").text_content()
    assert len(password) >= 12
    api_headers(url, "lan@test.local", password)  # the shown password logs in

    lan = page.locator('[data-agent-id]', has_text="Nguyễn Thị Lan")
    expect(lan.get_by_label("Vai trò")).to_have_value("supervisor")
    lan.get_by_label("Vai trò").select_option("agent")
    lan.get_by_role("button", name="Lưu").click()
    expect(page.locator("#admin-flash")).to_have_text("Đã lưu thay đổi của Nguyễn Thị Lan")
    lan = page.locator('[data-agent-id]', has_text="Nguyễn Thị Lan")
    expect(lan.get_by_label("Vai trò")).to_have_value("agent")

    lan.get_by_role("button", name="Khóa tài khoản").click()
    expect(page.locator("#admin-flash")).to_have_text("Đã khóa tài khoản Nguyễn Thị Lan")
    lan = page.locator('[data-agent-id]', has_text="Nguyễn Thị Lan")
    expect(lan.locator(".badge-off")).to_have_text("Đã khóa")
    lan.get_by_role("button", name="Mở lại").click()
    expect(page.locator("#admin-flash")).to_have_text("Đã mở lại tài khoản Nguyễn Thị Lan")

    # the admin cannot lock themselves out, nor leave the shop without an admin
    me = page.locator('[data-agent-id]', has=page.locator(".badge", has_text="Bạn"))
    me.get_by_role("button", name="Khóa tài khoản").click()
    expect(page.locator("#admin-flash")).to_have_text(
        "Bạn không thể tự khóa tài khoản của mình. Hãy nhờ một quản trị viên khác.")
    me.get_by_label("Vai trò").select_option("agent")
    me.get_by_role("button", name="Lưu").click()
    expect(page.locator("#admin-flash")).to_have_text(
        "Đây là quản trị viên cuối cùng: hãy cấp quyền quản trị cho người khác trước.")
    assert httpx.get(f"{url}/api/me", headers=api_headers(url)).json()["role"] == "admin"

    # English on the same page
    in_nav(page, '[data-lang="en"]').click()
    expect(page.locator("h1")).to_have_text("Agents")
    expect(page.locator("#invite-form h2")).to_have_text("Invite an agent")
    check_layout(page)


def test_teams_create_rename_and_members(admin_server, sized_page):
    page, url = sized_page, admin_server.url
    headers = api_headers(url)
    httpx.post(f"{url}/api/agents", headers=headers, json={"email": "minh@test.local", "name": "Trần Minh",
                                                          "password": PASSWORD})
    log_in(page, url, "/admin/teams")
    form = page.locator("#team-form")
    form.get_by_label("Tên nhóm").fill("bao-hanh")
    form.locator("button[type=submit]").click()
    expect(page.locator("#admin-flash")).to_have_text("Đã tạo nhóm bao-hanh")
    team = page.locator("[data-team-id]", has_text="bao-hanh")
    team.get_by_label("Tên nhóm").fill("Bảo hành")
    team.get_by_role("button", name="Đổi tên").click()
    expect(page.locator("#admin-flash")).to_have_text("Đã đổi tên nhóm thành Bảo hành")
    team = page.locator("[data-team-id]", has_text="Bảo hành")
    team.get_by_label("Trần Minh").check()
    team.get_by_role("button", name="Lưu thành viên").click()
    expect(page.locator("#admin-flash")).to_have_text("Đã lưu thành viên nhóm Bảo hành")
    expect(page.locator("[data-team-id]", has_text="Bảo hành").locator(".badge")).to_have_text("1 thành viên")
    agents = httpx.get(f"{url}/api/agents", headers=headers).json()["data"]
    assert next(a for a in agents if a["email"] == "minh@test.local")["teams"] == ["Bảo hành"]
    # a name taken by another team is refused in words
    form.get_by_label("Tên nhóm").fill("Bảo hành")
    form.locator("button[type=submit]").click()
    expect(page.locator("#admin-flash")).to_have_text("Đã có nhóm mang tên này.")
    check_layout(page)


def test_canned_responses_round_trip_and_the_inbox_fills_placeholders(admin_server, sized_page):
    page, url = sized_page, admin_server.url
    log_in(page, url, "/admin/canned")
    expect(page.locator("#placeholder-help")).to_contain_text("{order_code}")
    form = page.locator("#canned-form")
    form.get_by_label("Phím tắt").fill("don-hang")
    form.get_by_label("Tiêu đề").fill("Tình trạng đơn")
    form.get_by_label("Nội dung").fill("Chào {customer_name}, đơn {order_code} đang được giao ạ.")
    expect(page.locator("#canned-preview")).to_have_text("Chào Chị Lan, đơn DH1024 đang được giao ạ.")
    form.locator("button[type=submit]").click()
    expect(page.locator("#admin-flash")).to_have_text("Đã thêm /don-hang")
    item = page.locator('[data-shortcut="don-hang"]')
    expect(item.locator(".canned-body")).to_have_text("Chào {customer_name}, đơn {order_code} đang được giao ạ.")

    item.get_by_role("button", name="Sửa").click()
    form = page.locator("#canned-form")
    expect(form.get_by_label("Phím tắt")).to_have_value("don-hang")
    form.get_by_label("Nội dung").fill("Dạ {customer_name} ơi, đơn {order_code} đã giao.")
    form.locator("button[type=submit]").click()
    expect(page.locator("#admin-flash")).to_have_text("Đã lưu /don-hang")
    expect(page.locator('[data-shortcut="don-hang"] .canned-body')).to_have_text(
        "Dạ {customer_name} ơi, đơn {order_code} đã giao.")

    # an unknown placeholder is refused in words
    form.get_by_label("Phím tắt").fill("sai")
    form.get_by_label("Tiêu đề").fill("Sai")
    form.get_by_label("Nội dung").fill("Chào {ten}")
    form.locator("button[type=submit]").click()
    expect(page.locator("#admin-flash")).to_have_text(
        "Nội dung có chỗ điền không được hỗ trợ: chỉ dùng các chỗ điền liệt kê ở trên.")
    check_layout(page)

    # the inbox inserts the reply with the conversation's customer name
    httpx.post(f"{url}/webhooks/cli", json={"sender_id": "khach-1", "message_id": "m1",
                                            "text": "cho mình gặp nhân viên", "name": "Lê Văn An"})
    headers = api_headers(url)
    deadline = time.monotonic() + 10
    while not (rows := httpx.get(f"{url}/api/conversations", headers=headers).json()["data"]):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    page.goto(f"{url}/inbox/conversations/{rows[0]['id']}")
    page.locator("#composer-text").fill("/don")
    expect(page.locator(".canned-item")).to_have_count(1)
    page.locator("#composer-text").press("Enter")
    expect(page.locator("#composer-text")).to_have_value("Dạ Lê Văn An ơi, đơn {order_code} đã giao.")

    # delete takes a second click
    page.goto(f"{url}/admin/canned")
    item = page.locator('[data-shortcut="don-hang"]')
    item.get_by_role("button", name="Xóa").click()
    page.locator('[data-shortcut="don-hang"]').get_by_role("button", name="Bấm lần nữa để xóa").click()
    expect(page.locator("#admin-flash")).to_have_text("Đã xóa /don-hang")
    expect(page.locator('[data-shortcut="don-hang"]')).to_have_count(0)


def test_sla_targets_hours_and_holidays(admin_server, sized_page):
    page, url = sized_page, admin_server.url
    log_in(page, url, "/admin/sla")
    expect(page.locator("#hours-form")).to_contain_text("Asia/Ho_Chi_Minh")
    check_layout(page)
    urgent = page.locator('[data-priority="urgent"]')
    urgent.get_by_label("Phản hồi đầu tiên (phút)").fill("7")
    urgent.get_by_label("Giải quyết xong (phút)").fill("90")
    urgent.get_by_role("button", name="Lưu").click()
    expect(page.locator("#admin-flash")).to_have_text("Đã lưu thời hạn mức Khẩn cấp")
    urgent = page.locator('[data-priority="urgent"]')
    urgent.get_by_label("Phản hồi đầu tiên (phút)").fill("100")
    urgent.get_by_role("button", name="Lưu").click()
    expect(page.locator("#admin-flash")).to_have_text(
        "Thời hạn phản hồi đầu tiên không được dài hơn thời hạn giải quyết.")

    sunday = page.locator('fieldset[data-day="sun"]')
    for remove in sunday.get_by_role("button", name="Bỏ").all():
        remove.click()
    sunday.get_by_role("button", name="Thêm khung giờ").click()
    sunday.get_by_label("Mở cửa").fill("09:00")
    sunday.get_by_label("Đóng cửa").fill("12:00")
    page.get_by_role("button", name="Thêm ngày nghỉ").click()
    holiday = page.locator(".admin-holiday").last
    holiday.get_by_label("Ngày", exact=True).fill("2026-09-02")
    holiday.get_by_label("Tên ngày nghỉ").fill("Quốc khánh")
    page.locator("#hours-save").click()
    expect(page.locator("#admin-flash")).to_have_text("Đã lưu giờ làm việc và ngày nghỉ")

    headers = api_headers(url)
    policies = {p["priority"]: p for p in httpx.get(f"{url}/api/sla-policies", headers=headers).json()["data"]}
    assert (policies["urgent"]["first_response_minutes"], policies["urgent"]["resolution_minutes"]) == (7, 90)
    hours = httpx.get(f"{url}/api/business-hours", headers=headers).json()
    assert hours["week"]["sun"] == [{"start": "09:00", "end": "12:00"}]
    assert {"date": "2026-09-02", "name": "Quốc khánh"} in hours["holidays"]
    page.reload()
    expect(page.locator('fieldset[data-day="sun"] .period-start')).to_have_value("09:00")
    check_layout(page)


def test_channel_status_and_who_may_open_the_admin_pages(admin_server, sized_page):
    page, url = sized_page, admin_server.url
    log_in(page, url, "/admin/channels")
    zalo = page.locator('[data-channel="zalo_oa"]')
    expect(zalo.locator(".badge")).to_have_text("Đang tắt")
    expect(zalo.locator(".webhook-url")).to_have_text("https://care.example.vn/webhooks/zalo-oa")
    cli = page.locator('[data-channel="cli"]')
    expect(cli.locator(".badge")).to_have_text("Đang bật")
    expect(cli).to_contain_text("Kênh này không cần webhook.")
    check_layout(page)

    # the inbox and the reports lead here; /admin opens the first admin page
    page.goto(f"{url}/inbox")
    expect(page.locator("#admin-link")).to_have_attribute("href", "/admin")
    page.goto(f"{url}/reports")
    expect(page.locator('#app-nav a[aria-current="page"]')).to_have_text("Báo cáo")
    in_nav(page, '[data-nav="agents"]').click()
    expect(page).to_have_url(f"{url}/admin/agents")
    page.goto(f"{url}/admin")
    expect(page).to_have_url(f"{url}/admin/agents")

    # an agent is told the page is not theirs, and sees no admin links
    httpx.post(f"{url}/api/agents", headers=api_headers(url), json={
        "email": "an@test.local", "name": "An", "password": PASSWORD})
    in_nav(page, "#nav-logout").click()
    expect(page).to_have_url(f"{url}/inbox/login")
    log_in(page, url, "/admin/agents", "an@test.local", PASSWORD)
    expect(page.locator(".admin-forbidden h2")).to_have_text("Trang này dành cho quản trị viên")
    expect(page.locator('#app-nav [data-nav="agents"]')).to_have_count(0)
