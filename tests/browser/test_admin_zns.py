"""The ZNS template mapping on the admin's channels page, in real headless Chromium against a real server
and the fake ZNS server: the admin picks a template per care step; a template Zalo has not approved is
refused at save time with the reason shown and nothing changes; a good one is saved and used."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.browser.conftest import skip_module_without_browser
from tests.browser.test_admin_pages import api_headers, check_layout, log_in
from tests.conftest import LiveServer
from tests.fakes.zns_api import FakeZns, param

pytestmark = pytest.mark.slow  # a real Chromium against a live server

skip_module_without_browser()
pytest.importorskip("playwright", reason="the browser tests drive Chromium through playwright")

from playwright.sync_api import expect  # noqa: E402


@pytest.fixture
def zns():
    with FakeZns() as fake:
        fake.add_template("301245", [param("customer_name"), param("order_code")])
        fake.add_template("301246", [param("customer_name")])
        fake.add_template("308888", [param("customer_name")], status="PENDING_REVIEW")
        yield fake


@pytest.fixture
def zns_server(make_settings, zns) -> Iterator[LiveServer]:
    settings = make_settings(
        zalo_oa={"app_id": zns.app_id, "oa_secret_key": "oa-secret-key-for-zns-tests",
                 "app_secret_key": zns.app_secret_key, "access_token": zns.access_token,
                 "refresh_token": zns.refresh_token, "api_base": zns.base_url, "oauth_base": zns.base_url},
        zns={"templates": {"thank_you": "301245"}, "api_base": zns.base_url, "rating_poll_interval_s": 0})
    with LiveServer(settings) as server:
        yield server


@pytest.fixture
def page(chromium):
    context = chromium.new_context(locale="vi-VN", viewport={"width": 1400, "height": 900})
    context.set_default_timeout(10_000)
    tab = context.new_page()
    tab.problems = []
    tab.on("pageerror", lambda error: tab.problems.append(f"page error: {error}"))
    yield tab
    context.close()


def test_the_admin_maps_templates_and_an_unapproved_one_is_refused_at_save_time(zns_server, page):
    url = zns_server.url
    log_in(page, url, "/admin/channels")
    section = page.locator("#zns-mapping")
    expect(section.locator('select[data-step="thank_you"]')).to_have_value("301245")
    check_layout(page)

    section.locator('select[data-step="rating_request"]').select_option("308888")
    section.locator("#zns-save").click()
    expect(section.locator("#zns-problems")).to_contain_text("rating_request: template 308888 is PENDING_REVIEW")
    expect(page.locator("#admin-flash")).to_have_text("Chưa lưu: các mẫu này không dùng được.")
    mapping = httpx.get(f"{url}/api/care/zns/templates", headers=api_headers(url)).json()["mapping"]
    assert mapping == {"thank_you": "301245"}

    section.locator('select[data-step="rating_request"]').select_option("301246")
    section.locator("#zns-save").click()
    expect(page.locator("#admin-flash")).to_have_text("Đã lưu: Zalo đã xác nhận các mẫu.")
    expect(section.locator("#zns-problems")).to_have_count(0)
    mapping = httpx.get(f"{url}/api/care/zns/templates", headers=api_headers(url)).json()["mapping"]
    assert mapping == {"thank_you": "301245", "rating_request": "301246"}
    assert page.problems == []
