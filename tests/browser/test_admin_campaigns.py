"""The campaigns admin page in real headless Chromium against a real server, at a desktop and a phone
size: an admin creates a draft from a list of customer ids (a bad id is refused in words), starts it,
and reads the report: who got the message, why the other was skipped, the replies and orders; and
an admin follows a saved segment's "Send a campaign" link, sees how many customers the segment holds
and creates the campaign for them, which then names its segment."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import create_engine
from sqlmodel import Session

from tests.browser.conftest import skip_module_without_browser
from tests.conftest import LiveServer

pytestmark = pytest.mark.slow  # a real Chromium against a live server

skip_module_without_browser()
pytest.importorskip("playwright", reason="the browser tests drive Chromium through playwright")

from playwright.sync_api import expect  # noqa: E402

from tests.browser.test_admin_pages import api_headers, check_layout, log_in, sized_page  # noqa: E402,F401  (fixture)


@pytest.fixture
def campaign_server(make_settings, sqlite_url) -> Iterator[tuple[LiveServer, list[int]]]:
    """CareDesk with quiet hours off (so the campaign sends whatever the hour) and two customers: one
    on the cli chat, one no channel reaches."""
    from helpdesk.customers.models import ChannelIdentity, Customer

    engine = create_engine(sqlite_url)
    with Session(engine) as session:
        lan, nam = Customer(name="Lan"), Customer(name="Nam")
        session.add_all([lan, nam])
        session.flush()
        session.add(ChannelIdentity(customer_id=lan.id, channel="cli", external_id="cli-lan"))
        session.commit()
        ids = [lan.id, nam.id]
    engine.dispose()
    with LiveServer(make_settings(care={"quiet_hours": ""}, campaigns={"check_interval_s": 0.5})) as server:
        yield server, ids


def test_an_admin_creates_starts_and_reads_a_campaign(campaign_server, sized_page):
    (server, ids), page = campaign_server, sized_page
    log_in(page, server.url, "/admin/campaigns")
    expect(page.locator("h1")).to_have_text("Chiến dịch")
    expect(page.locator('#app-nav a[aria-current="page"]')).to_have_text("Chiến dịch")
    check_layout(page)

    form = page.locator("#campaign-form")
    form.get_by_label("Tên").fill("Mua lại nồi cơm")
    form.get_by_label("Nội dung").fill("Chào {name}, tặng bạn voucher BEPVIET10")
    form.get_by_label("Mã khách hàng").fill(f"{ids[0]}, x1")
    form.locator("button[type=submit]").click()
    expect(page.locator("#admin-flash")).to_have_text("Mã khách hàng phải là số nguyên: x1")
    form.get_by_label("Mã khách hàng").fill(f"{ids[0]}, 99999")
    form.locator("button[type=submit]").click()
    expect(page.locator("#admin-flash")).to_have_text("Có mã khách hàng không tồn tại.")
    form.get_by_label("Mã khách hàng").fill(f"{ids[0]}\n{ids[1]}")
    form.locator("button[type=submit]").click()
    expect(page.locator("#admin-flash")).to_have_text('Đã tạo bản nháp "Mua lại nồi cơm" cho 2 khách.')

    card = page.locator("[data-campaign]", has_text="Mua lại nồi cơm")
    expect(card.locator(".badge")).to_have_text("Nháp")
    card.locator('[data-action="start"]').click()
    expect(page.locator("#admin-flash")).to_have_text('Đã bắt đầu chiến dịch "Mua lại nồi cơm".')
    check_layout(page)

    # the campaign task sends in the background; the report is read once it is done
    for _ in range(40):
        card.locator('[data-action="report"]').click()
        report = page.locator("#campaign-report")
        expect(report).to_be_visible()
        if report.locator(".badge").text_content() == "Hoàn tất":
            break
        page.wait_for_timeout(250)
    expect(report.locator(".badge")).to_have_text("Hoàn tất")
    expect(report).to_contain_text("Không kênh nào liên lạc được với khách")
    expect(report).to_contain_text(f"Khách #{ids[1]}")  # who was not reached, and why
    expect(report.locator("#campaign-outcomes")).to_contain_text("Trả lời trong 7 ngày")
    expect(card.locator(".campaign-counts")).to_contain_text("Đã gửi 1")
    expect(card.locator('[data-action="start"]')).to_have_count(0)
    check_layout(page)

    # the message is on the customer's timeline, with what became of it
    page.goto(f"{server.url}/inbox/customers/{ids[0]}")
    event = page.locator('.ct-event[data-kind="campaign_message"]')
    expect(event).to_contain_text("Tin chiến dịch")
    expect(event).to_contain_text("Mua lại nồi cơm")
    expect(event).to_contain_text("đã gửi")


def test_a_campaign_is_sent_to_a_saved_segment_from_the_segments_page(campaign_server, sized_page):
    (server, ids), page = campaign_server, sized_page
    admin = api_headers(server.url)
    made = {}
    for name, channel in (("Khách trò chuyện", "cli"), ("Khách Zalo", "zalo")):
        response = httpx.post(f"{server.url}/api/segments", headers=admin, json={
            "name": name, "definition": [{"kind": "channel", "channel": channel}]})
        assert response.status_code == 201, response.text
        made[name] = response.json()["id"]

    log_in(page, server.url, "/admin/segments")
    card = page.locator(f'[data-segment="{made["Khách trò chuyện"]}"]')
    card.get_by_role("link", name="Gửi chiến dịch").click()
    expect(page).to_have_url(f"{server.url}/admin/campaigns?segment={made['Khách trò chuyện']}")
    form = page.locator("#campaign-form")
    expect(form.get_by_label("Đối tượng")).to_have_value(str(made["Khách trò chuyện"]))
    # only Lan is on a channel the segment names; the list-of-ids field gives way to the count
    expect(page.locator("#campaign-audience-count")).to_have_text("1 khách hàng phù hợp hiện nay")
    expect(form.get_by_label("Mã khách hàng")).to_have_count(0)
    check_layout(page)

    # a segment nobody is in says so before anything is created
    form.get_by_label("Đối tượng").select_option(label="Khách Zalo")
    expect(page.locator("#campaign-audience-count")).to_have_text(
        "Hiện không có khách nào trong phân khúc này: danh sách gửi sẽ trống.")
    form.get_by_label("Đối tượng").select_option(label="Danh sách mã khách hàng")
    expect(form.get_by_label("Mã khách hàng")).to_be_visible()
    form.get_by_label("Đối tượng").select_option(label="Khách trò chuyện")
    expect(page.locator("#campaign-audience-count")).to_have_text("1 khách hàng phù hợp hiện nay")

    form.get_by_label("Tên").fill("Khách trò chuyện tháng này")
    form.get_by_label("Nội dung").fill("Chào {name}, tặng bạn voucher BEPVIET10")
    form.locator("button[type=submit]").click()
    expect(page.locator("#admin-flash")).to_have_text('Đã tạo bản nháp "Khách trò chuyện tháng này" cho 1 khách.')
    campaign = page.locator("[data-campaign]", has_text="Khách trò chuyện tháng này")
    expect(campaign.locator(".campaign-segment")).to_have_text("Phân khúc: Khách trò chuyện")
    expect(campaign.locator(".campaign-counts")).to_contain_text("Số khách 1")
    # the form is ready for the next campaign, back on a list of ids
    expect(form.get_by_label("Đối tượng")).to_have_value("")
    check_layout(page)

    campaign.locator('[data-action="report"]').click()
    expect(page.locator("#campaign-report .campaign-segment")).to_have_text("Phân khúc: Khách trò chuyện")
    check_layout(page)
