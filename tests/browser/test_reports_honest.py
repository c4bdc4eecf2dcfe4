"""The reports page says what its numbers mean: a first response given outside business hours is not
shown as an instant one, and a chart with nothing to draw says so."""

from __future__ import annotations

import pytest

from tests.browser.conftest import skip_module_without_browser
from tests.browser.test_reports import reports_server  # noqa: F401 (the fixture is used by name)
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD

pytestmark = pytest.mark.slow  # a real Chromium against a live server

skip_module_without_browser()
pytest.importorskip("playwright", reason="the browser tests drive Chromium through playwright")

from playwright.sync_api import expect  # noqa: E402


def open_report(page, url: str, query: str) -> None:
    """Log in on the way to the report of ``query``."""
    page.goto(f"{url}/reports?{query}")
    page.locator("#login-email").fill(ADMIN_EMAIL)
    page.locator("#login-password").fill(ADMIN_PASSWORD)
    page.locator("#login-submit").click()
    expect(page.locator("h1")).to_have_text("Báo cáo")


def test_a_first_response_outside_hours_shows_the_wait_on_the_clock(reports_server, page):  # noqa: F811
    server, shop = reports_server
    # Saturday 22:00, after closing; answered ten minutes later, still closed.
    shop.conversation("2026-03-07 22:00", escalated_at="2026-03-07 22:00", escalation_reason="customer_request",
                      state="with_agent", first_response_at="2026-03-07 22:10")
    open_report(page, server.url, "from=2026-03-02&to=2026-03-08")

    expect(page.locator("#kpi-frt")).to_have_text("0 giây")
    expect(page.locator("#kpi-frt-sub")).to_have_text("trả lời ngoài giờ làm việc · thực tế 10 phút")


def test_a_period_without_answers_shows_no_first_response_time(reports_server, page):  # noqa: F811
    server, _shop = reports_server
    open_report(page, server.url, "from=2026-03-02&to=2026-03-08")

    expect(page.locator("#kpi-frt")).to_have_text("—")
    expect(page.locator("#kpi-frt-sub")).to_have_text("")


def test_charts_with_nothing_to_draw_say_so_instead_of_drawing_empty_axes(reports_server, page):  # noqa: F811
    server, shop = reports_server
    # One conversation the bot handled: volume has data, the other charts have none.
    idle = shop.conversation("2026-03-04 09:00")
    shop.message(idle, "2026-03-04 09:00", "Giờ mở cửa?", intent="ask_opening_hours")
    open_report(page, server.url, "from=2026-03-02&to=2026-03-08")

    expect(page.locator("#chart-volume")).to_be_visible()
    expect(page.locator("#chart-volume-empty")).to_be_hidden()
    for key in ("ratings", "times", "complaints", "escalations"):
        expect(page.locator(f"#chart-{key}-empty")).to_be_visible()
        expect(page.locator(f"#chart-{key}-empty")).to_have_text("Chưa có dữ liệu")
        expect(page.locator(f"#chart-{key}")).to_be_hidden()  # no empty axes behind the message
    page.locator('.lang-switch [data-lang="en"], [data-lang="en"]').first.click()
    expect(page.locator("#chart-times-empty")).to_have_text("No data yet")
