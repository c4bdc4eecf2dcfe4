"""The segments page in real headless Chromium against a real server, at a desktop and a phone size:
an admin builds the issue's example (bought a rice cooker 11–12 months ago, no complaint open) from
conditions, watches the live preview count the one customer it matches, saves it, downloads its
customers, edits it and deletes it."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from tests.browser.conftest import skip_module_without_browser
from tests.browser.test_admin_pages import admin_server, api_headers, check_layout, log_in, sized_page  # noqa: F401
from tests.helpdesk.segments.factories import build

pytestmark = pytest.mark.slow  # a real Chromium against a live server

skip_module_without_browser()
pytest.importorskip("playwright", reason="the browser tests drive Chromium through playwright")

from playwright.sync_api import expect  # noqa: E402


def test_the_rice_cooker_segment_is_built_previewed_and_saved(admin_server, sized_page):  # noqa: F811
    from helpdesk.channels.ledger import make_database_engine

    page, url = sized_page, admin_server.url
    engine = make_database_engine(admin_server.server.config.app.state.wiring.settings.database_url)
    try:
        ids = build(engine, datetime.now(UTC))
    finally:
        engine.dispose()
    log_in(page, url, "/admin/segments")
    form = page.locator("#segment-form")
    form.get_by_label("Tên phân khúc").fill("Nồi cơm 11–12 tháng, không khiếu nại")
    first = form.locator('[data-index="0"]')
    expect(first.get_by_label("Loại điều kiện")).to_have_value("bought")
    first.get_by_label("Sản phẩm (mã SKU hoặc tên; để trống: đơn bất kỳ)").fill("RC-18")
    first.get_by_label("Từ (số ngày trước)").fill("330")
    first.get_by_label("Đến (số ngày trước)").fill("365")
    # An (rice cooker 340 days ago) and Bình (350 days ago, a complaint open)
    expect(page.locator("#segment-count")).to_have_text("2 khách hàng phù hợp")

    form.get_by_role("button", name="Thêm điều kiện").click()
    second = form.locator('[data-index="1"]')
    second.get_by_label("Loại điều kiện").select_option("open_complaint")
    second.get_by_label("Loại trừ: khách KHÔNG thỏa điều kiện này").check()
    expect(page.locator("#segment-count")).to_have_text("1 khách hàng phù hợp")
    sample = page.locator("#segment-sample li")
    expect(sample).to_have_count(1)
    expect(sample.first).to_contain_text("An")
    expect(sample.first).to_contain_text("090****001")
    expect(sample.first).to_contain_text("Telegram")

    # a product the shop does not sell: the preview says which condition and why
    product = first.get_by_label("Sản phẩm (mã SKU hoặc tên; để trống: đơn bất kỳ)")
    product.fill("Tủ lạnh")
    product.press("Tab")  # a typed name is previewed once the field is left
    expect(page.locator("#segment-preview-error")).to_contain_text("condition 1 (bought)")
    product.fill("RC-18")
    product.press("Tab")
    # a window the wrong way round: the condition and the reason
    first.get_by_label("Từ (số ngày trước)").fill("400")
    expect(page.locator("#segment-preview-error")).to_contain_text(
        "Điều kiện 1: Value error, from_days_ago (400) is more than to_days_ago (365)")
    first.get_by_label("Từ (số ngày trước)").fill("330")
    expect(page.locator("#segment-count")).to_have_text("1 khách hàng phù hợp")
    check_layout(page)

    form.get_by_role("button", name="Lưu phân khúc").click()
    expect(page.locator("#admin-flash")).to_have_text("Đã lưu phân khúc “Nồi cơm 11–12 tháng, không khiếu nại”.")
    item = page.locator("#segment-list li.admin-item")
    expect(item).to_have_count(1)
    expect(item).to_contain_text("2 điều kiện")
    expect(item.locator(".segment-summary li")).to_have_text(["Đã mua: RC-18, 330–365 ngày trước",
                                                              "KHÔNG: Có khiếu nại chưa giải quyết"])
    download = item.get_by_role("link", name="Tải danh sách khách (CSV)")
    csv_path = download.get_attribute("href")
    # the browser's session cookie downloads it, as the link would
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    exported = httpx.get(f"{url}{csv_path}", cookies=cookies)
    assert exported.status_code == 200 and f"{ids['an']},An,0900000001" in exported.text
    check_layout(page)

    saved = httpx.get(f"{url}/api/segments", headers=api_headers(url)).json()["data"]
    assert saved[0]["definition"] == [
        {"kind": "bought", "product": "RC-18", "from_days_ago": 330, "to_days_ago": 365},
        {"kind": "open_complaint", "not": True}]
    preview = httpx.get(f"{url}/api/segments/{saved[0]['id']}/preview", headers=api_headers(url)).json()
    assert [m["id"] for m in preview["sample"]] == [ids["an"]]

    # edited: the form comes back with both conditions; renamed and saved
    item.get_by_role("button", name="Sửa").click()
    form = page.locator("#segment-form")
    expect(form.locator(".segment-condition")).to_have_count(2)
    expect(form.locator('[data-index="0"]').get_by_label("Sản phẩm (mã SKU hoặc tên; để trống: đơn bất kỳ)")).to_have_value("RC-18")
    expect(form.locator('[data-index="1"]').get_by_label("Loại trừ: khách KHÔNG thỏa điều kiện này")).to_be_checked()
    expect(page.locator("#segment-count")).to_have_text("1 khách hàng phù hợp")
    form.get_by_label("Tên phân khúc").fill("Voucher nồi cơm")
    form.get_by_role("button", name="Lưu phân khúc").click()
    expect(page.locator("#admin-flash")).to_have_text("Đã cập nhật phân khúc “Voucher nồi cơm”.")
    expect(page.locator("#segment-list li.admin-item strong")).to_have_text("Voucher nồi cơm")

    # deleted after a second click
    page.locator("#segment-list li.admin-item").get_by_role("button", name="Xóa").click()
    page.locator("#segment-list li.admin-item").get_by_role("button", name="Bấm lần nữa để xóa").click()
    expect(page.locator("#admin-flash")).to_have_text("Đã xóa phân khúc “Voucher nồi cơm”.")
    expect(page.locator("#segment-list")).to_have_count(0)
    assert httpx.get(f"{url}/api/segments", headers=api_headers(url)).json()["count"] == 0
