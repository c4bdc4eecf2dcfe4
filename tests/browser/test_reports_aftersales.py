"""The reports page's after-sales section in real headless Chromium: NPS and retention figures from
known orders and answers, every chart drawn, the customers' words listed, the CSV links following the
filters, and the section in English after switching."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from helpdesk.channels.ledger import make_database_engine
from tests.browser.conftest import skip_module_without_browser
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, LiveServer
from tests.helpdesk.reports.factories import Shop
from tests.helpdesk.reports.test_nps_report import answers
from tests.helpdesk.reports.test_retention import build

pytestmark = pytest.mark.slow  # a real Chromium against a live server

skip_module_without_browser()
pytest.importorskip("playwright", reason="the browser tests drive Chromium through playwright")

from playwright.sync_api import expect

CHARTS = ("nps_trend", "nps_channel", "nps_product", "repeat", "segments", "cohorts")


@pytest.fixture
def reports_server(make_settings) -> Iterator[tuple[LiveServer, Shop]]:
    settings = make_settings()
    with LiveServer(settings) as server:
        engine = make_database_engine(settings.database_url)
        try:
            yield server, Shop(engine)
        finally:
            engine.dispose()


def test_the_after_sales_section_shows_nps_and_retention(reports_server, page):
    server, shop = reports_server
    build(shop)  # orders of January–February 2026 (long matured by now)
    answers(shop)  # six NPS answers in January–February 2026, with build()'s 10 in February: 7
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)

    page.goto(f"{server.url}/inbox/login?next=/reports%3Ffrom%3D2026-01-01%26to%3D2026-02-28")
    page.locator("#login-email").fill(ADMIN_EMAIL)
    page.locator("#login-password").fill(ADMIN_PASSWORD)
    page.locator("#login-submit").click()

    expect(page.locator("#kpi-nps")).to_have_text("14")  # (3 promoters − 2 detractors) / 7 answers
    expect(page.locator("#kpi-nps-sub")).to_have_text("7 câu trả lời / 7 khảo sát")
    # retention covers at least a year: from March 2025, E (first bought in November 2025) is new too
    expect(page.locator("#retention-period")).to_contain_text("1/3/2025")
    expect(page.locator("#kpi-repeat_90d")).to_have_text("60%")
    expect(page.locator("#kpi-clv")).to_contain_text("2.000.000")
    for key in CHARTS:
        assert page.evaluate(f"Boolean(Chart.getChart(document.getElementById('chart-{key}')))"), key
    trend = page.evaluate("Chart.getChart(document.getElementById('chart-nps_trend')).data.datasets[0].data")
    assert trend == [2, 1]  # promoters in January, February
    expect(page.locator("#nps-verbatims li")).to_have_count(4)
    expect(page.locator("#nps-verbatims li").first).to_contain_text("Hỏng sau 1 tuần")
    link = urlsplit(page.locator("#download-retention-csv").get_attribute("href"))
    assert link.path == "/api/reports/retention.csv"
    assert parse_qs(link.query) == {"from": ["2025-03-01"], "to": ["2026-02-28"]}

    page.locator(".lang-switch [data-lang='en']").click()
    expect(page.locator("#aftersales-title")).to_have_text("After sales: NPS and returning customers")
    expect(page.locator("#kpi-nps-sub")).to_have_text("7 answers / 7 surveys")
    assert problems == []
