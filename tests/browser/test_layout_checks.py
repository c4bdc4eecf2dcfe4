"""The layout checks themselves catch what they are for, on a page built to break each rule once, and pass
a page that breaks none (so a green check elsewhere means something)."""

from __future__ import annotations

import pytest

from tests.browser.conftest import skip_module_without_browser
from tests.browser.layout_checks import (
    PHONE, assert_phone_ready, assert_ready_at_both_sizes, axe_violations, horizontal_overflow, overlapping_controls,
    small_targets,
)

pytestmark = pytest.mark.slow  # a real Chromium

skip_module_without_browser()

BROKEN = """<!doctype html><html lang="vi"><head><title>Hỏng</title></head><body><main>
<div style="position:relative;height:60px">
  <button id="send" style="position:absolute;left:10px;top:0;width:80px;height:48px">Gửi</button>
  <button id="launcher" style="position:absolute;left:60px;top:10px;width:120px;height:48px">Chat với shop</button>
</div>
<a href="#x" id="wrapper" style="display:inline-block;width:100px;height:50px"><span role="button" tabindex="0">trong</span></a>
<div id="wide" style="width:600px;height:20px;background:#eee"></div>
<button id="tiny" style="width:20px;height:20px">x</button>
<select id="unnamed"><option>một</option></select>
<div style="overflow:hidden;height:50px;position:relative">
  <button style="position:absolute;top:60px;left:0;width:60px;height:48px">ẩn 1</button>
  <button style="position:absolute;top:70px;left:20px;width:60px;height:48px">ẩn 2</button>
</div>
</main></body></html>"""

FINE = """<!doctype html><html lang="vi"><head><title>Ổn</title></head><body><main>
<h1>Ổn</h1><button style="min-width:44px;min-height:44px">Gửi</button>
<label>Tên <input style="min-height:44px"></label>
</main></body></html>"""


@pytest.fixture
def phone_page(chromium):
    """A fresh tab the size of a phone."""
    context = chromium.new_context(viewport=PHONE)
    yield context.new_page()
    context.close()


def test_each_check_reports_what_breaks_it(phone_page):
    phone_page.set_content(BROKEN)
    overlaps = overlapping_controls(phone_page)
    # the launcher over Send; not the button inside the link, not the two clipped out of sight
    assert len(overlaps) == 1 and "button#send" in overlaps[0] and "button#launcher" in overlaps[0], overlaps
    overflow = horizontal_overflow(phone_page)
    assert any("scrolls sideways" in line for line in overflow), overflow
    assert any("div#wide" in line for line in overflow), overflow
    assert any("button#tiny" in line and "20x20" in line for line in small_targets(phone_page))
    assert any("select-name" in line and "#unnamed" in line for line in axe_violations(phone_page))
    with pytest.raises(AssertionError, match="overlapping controls"):
        assert_phone_ready(phone_page)


def test_a_page_that_breaks_nothing_passes(phone_page):
    phone_page.set_content(FINE)
    assert_phone_ready(phone_page)
    assert_ready_at_both_sizes(phone_page)


def test_both_sizes_catches_a_page_that_only_breaks_on_a_phone(phone_page):
    phone_page.set_content(FINE.replace("<h1>Ổn</h1>", '<div style="width:800px;height:10px"></div>'))
    with pytest.raises(AssertionError, match="sideways overflow"):
        assert_ready_at_both_sizes(phone_page)
