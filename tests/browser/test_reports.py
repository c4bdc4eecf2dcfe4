"""The reports page in real headless Chromium against a real server: an admin logs in on the way to a
week's report, reads the KPI tiles, sees the charts drawn (Chart.js served by CareDesk, nothing
fetched from elsewhere), switches to English, and finds the same filters in the CSV link."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from helpdesk.channels.ledger import make_database_engine
from tests.browser.conftest import skip_module_without_browser
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, LiveServer
from tests.helpdesk.reports.factories import Shop

pytestmark = pytest.mark.slow  # a real Chromium against a live server

skip_module_without_browser()
pytest.importorskip("playwright", reason="the browser tests drive Chromium through playwright")

from playwright.sync_api import expect

CHARTS = ("volume", "ratings", "times", "complaints", "escalations")


@pytest.fixture
def reports_server(make_settings) -> Iterator[tuple[LiveServer, Shop]]:
    """CareDesk on a real port (SQLite) and a way to write the week the report will show."""
    settings = make_settings()
    with LiveServer(settings) as server:
        engine = make_database_engine(settings.database_url)
        try:
            yield server, Shop(engine)
        finally:
            engine.dispose()


def build_week(shop: Shop) -> None:
    """Four conversations: two answered by people (10 and 20 business minutes, one breached), two
    left to the bot; CSAT 5 and 2."""
    first = shop.conversation("2026-03-02 07:00", state="resolved", escalated_at="2026-03-02 07:00",
                              escalation_reason="report_defect", first_response_at="2026-03-02 08:10",
                              resolved_at="2026-03-02 09:00")
    shop.message(first, "2026-03-02 07:00", "Nồi cơm bị lỗi", intent="report_defect")
    shop.tag(first, "giao-tre")
    shop.csat(first, 5, "2026-03-02 09:10")
    second = shop.conversation("2026-03-03 10:00", state="resolved", escalated_at="2026-03-03 10:00",
                               escalation_reason="customer_request", first_response_at="2026-03-03 10:20",
                               resolved_at="2026-03-03 11:00", sla_status="breached")
    shop.message(second, "2026-03-03 10:00", "Cho gặp nhân viên", intent="request_human")
    shop.csat(second, 2, "2026-03-03 11:10")
    idle = shop.conversation("2026-03-04 09:00")
    shop.message(idle, "2026-03-04 09:00", "Giờ mở cửa?", intent="ask_opening_hours")
    closed = shop.conversation("2026-03-05 09:00", state="resolved", resolved_at="2026-03-05 09:30")
    shop.message(closed, "2026-03-05 09:00", "Phí ship?", intent="ask_shipping_fee")


def test_an_admin_reads_the_weeks_kpis_and_charts(reports_server, page):
    server, shop = reports_server
    url = server.url
    build_week(shop)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("request", lambda request: problems.append(f"outside request: {request.url}")
            if urlsplit(request.url).netloc != urlsplit(url).netloc else None)

    # Not logged in: the login page, then back to the very report asked for.
    page.goto(f"{url}/reports?from=2026-03-02&to=2026-03-08")
    expect(page).to_have_url(f"{url}/inbox/login?next=/reports%3Ffrom%3D2026-03-02%26to%3D2026-03-08")
    page.locator("#login-email").fill(ADMIN_EMAIL)
    page.locator("#login-password").fill(ADMIN_PASSWORD)
    page.locator("#login-submit").click()
    expect(page).to_have_url(f"{url}/reports?from=2026-03-02&to=2026-03-08")

    expect(page.locator("h1")).to_have_text("Báo cáo")
    expect(page.locator("#kpi-conversations")).to_have_text("4")
    expect(page.locator("#kpi-csat")).to_have_text("50%")
    expect(page.locator("#kpi-avg_rating")).to_have_text("3,5 ★")
    expect(page.locator("#kpi-frt")).to_have_text("15 phút")  # the median of 10 and 20 business minutes
    expect(page.locator("#kpi-frt-sub")).to_have_text("p90: 19 phút")
    expect(page.locator("#kpi-sla_compliance")).to_have_text("50%")
    expect(page.locator("#kpi-containment_rate")).to_have_text("50%")
    expect(page.locator("#kpi-delivery_response_rate")).to_have_text("—")  # nothing asked after a delivery
    assert page.locator("#f-from").input_value() == "2026-03-02"

    # Every chart is drawn by Chart.js on its canvas.
    for key in CHARTS:
        drawn = f"Boolean(window.Chart && Chart.getChart(document.getElementById('chart-{key}')))"
        assert page.evaluate(drawn), key
        assert page.locator(f"#chart-{key}").bounding_box()["width"] > 100
    csat_bars = page.evaluate("Chart.getChart(document.getElementById('chart-ratings'))"
                              ".data.datasets[0].data")
    assert csat_bars == [0, 1, 0, 0, 1]
    expect(page.locator("#chart-complaints-empty")).to_be_hidden()

    csv_link = urlsplit(page.locator("#download-csv").get_attribute("href"))
    assert csv_link.path == "/api/reports/export.csv"
    assert parse_qs(csv_link.query) == {"from": ["2026-03-02"], "to": ["2026-03-08"]}

    # In English, the same figures.
    page.locator(".lang-switch [data-lang='en']").click()
    expect(page.locator("h1")).to_have_text("Reports")
    expect(page.locator("#kpi-frt")).to_have_text("15 min")
    expect(page.locator(".tile[data-kpi='frt'] .tile-label")).to_have_text("First response (median)")
    assert problems == []

    # The inbox links to the reports for an admin.
    page.goto(f"{url}/inbox")
    page.locator("#reports-link").click()
    expect(page).to_have_url(f"{url}/reports")
    expect(page.locator("#kpi-conversations")).to_have_text("0")  # the last 30 days: nothing yet
    assert problems == []
