"""The reports page and its files: the browser session, who may open it, headers, assets served here."""

from __future__ import annotations

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.helpdesk.reports.factories import PASSWORD, make_agent


async def browser_session(client, email: str, password: str) -> None:
    response = await client.post("/api/auth/session", json={"email": email, "password": password})
    assert response.status_code == 200, response.text


async def test_without_a_session_the_page_sends_to_login_and_back_with_the_filters(client):
    response = await client.get("/reports", params={"from": "2026-03-01", "team": "care"})
    assert response.status_code == 303
    assert response.headers["location"] == "/inbox/login?next=/reports%3Ffrom%3D2026-03-01%26team%3Dcare"
    login = await client.get(response.headers["location"])
    assert '"next": "/reports?from=2026-03-01\\u0026team=care"' in login.text


async def test_an_admin_gets_the_page_with_the_inbox_security_headers(client):
    await browser_session(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    response = await client.get("/reports")
    assert response.status_code == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert 'id="kpi-csat"' in response.text and 'id="chart-volume"' in response.text
    assert '<script src="/static/vendor/chartjs/chart.umd.min.js"></script>' in response.text
    assert "Báo cáo" in response.text  # Vietnamese until the agent chooses


async def test_the_api_answers_the_browser_session_too(client):
    await browser_session(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    summary = await client.get("/api/reports/summary")
    assert summary.status_code == 200, summary.text
    export = await client.get("/api/reports/export.csv")
    assert export.status_code == 200 and export.text.startswith("conversation_id,")


async def test_a_plain_agent_is_told_the_page_is_not_for_them(client):
    admin = await client.login()
    await make_agent(client, admin, "lan@test.local", teams=("care",))
    await browser_session(client, "lan@test.local", PASSWORD)
    response = await client.get("/reports")
    assert response.status_code == 403
    assert "Báo cáo dành cho giám sát và quản trị" in response.text
    assert "chart.umd.min.js" not in response.text


async def test_a_supervisor_opens_the_page_in_english_when_chosen(client):
    admin = await client.login()
    await make_agent(client, admin, "lead@test.local", role="supervisor", teams=("care",))
    await browser_session(client, "lead@test.local", PASSWORD)
    client.cookies.set("caredesk_inbox_lang", "en")
    response = await client.get("/reports")
    assert response.status_code == 200
    assert "<h1 data-i18n=\"reports.title\">Reports</h1>" in response.text


async def test_the_inbox_links_to_the_reports_for_supervisors_and_admins_only(client):
    admin = await client.login()
    await make_agent(client, admin, "lan@test.local", teams=("care",))
    await browser_session(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert 'id="reports-link" href="/reports"' in (await client.get("/inbox")).text
    client.cookies.clear()
    await browser_session(client, "lan@test.local", PASSWORD)
    assert 'id="reports-link"' not in (await client.get("/inbox")).text


async def test_the_script_strings_and_chart_library_are_served_here(client):
    script = await client.get("/reports/static/reports.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    chart = await client.get("/static/vendor/chartjs/chart.umd.min.js")
    assert chart.status_code == 200 and chart.text.startswith("/*!\n * Chart.js v4.6.1")
    license_file = await client.get("/static/vendor/chartjs/LICENSE.md")
    assert "MIT" in license_file.text
    strings = {lang: (await client.get(f"/reports/static/i18n/{lang}.json")).json() for lang in ("vi", "en")}
    assert strings["vi"].keys() == strings["en"].keys()
    assert strings["vi"]["reports.title"] == "Báo cáo"
