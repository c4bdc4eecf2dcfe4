"""Putting files in the agent composer, in real Chromium: the attach button's file picker, a pasted
screenshot and a file dropped on the thread each wait in the composer with their name, and can be
taken out again; the private-note tab has no attach button (notes carry text only)."""

from __future__ import annotations

import pytest

from tests.browser.test_attachments import log_in_as_admin
from tests.browser.test_inbox import Api

pytestmark = pytest.mark.slow  # a real Chromium against a live server

pytest.importorskip("playwright", reason="the browser tests drive Chromium through playwright")

from playwright.sync_api import expect  # noqa: E402

#: a File made in the page from a few bytes, for synthetic paste and drop events
MAKE_TRANSFER = """([name, type]) => {
  const transfer = new DataTransfer();
  transfer.items.add(new File([new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10, 0, 0])], name, { type }));
  return transfer;
}"""


#: what pasting a screenshot does: a paste event whose clipboard holds an image file and no text
PASTE = f"""(file) => {{
  const transfer = ({MAKE_TRANSFER})(file);
  const event = new ClipboardEvent("paste", {{ clipboardData: transfer, bubbles: true, cancelable: true }});
  document.querySelector("#composer-text").dispatchEvent(event);
}}"""


def test_files_wait_in_the_composer_from_the_picker_a_paste_and_a_drop(live_server, chromium, tmp_path):
    url = live_server.url
    api = Api(url)
    api.customer_says("files", "cho mình gặp nhân viên", "Khách B")
    [conversation] = api.wait_until(lambda: api.get("/api/conversations", state="waiting_for_agent")["data"])
    context = chromium.new_context(locale="vi-VN", viewport={"width": 1400, "height": 900})
    problems: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(str(error)))
        log_in_as_admin(page, url)
        page.goto(f"{url}/inbox/conversations/{conversation['id']}")
        expect(page.locator("#composer-attach")).to_be_visible()
        uploads = page.locator("#uploads .upload")

        manual = tmp_path / "huong-dan.pdf"
        manual.write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
        page.locator("#composer-file").set_input_files(str(manual))
        expect(uploads).to_have_count(1)
        expect(uploads.first.locator(".upload-name")).to_have_text("huong-dan.pdf")

        page.evaluate(PASTE, ["man-hinh.png", "image/png"])
        expect(uploads).to_have_count(2)
        expect(uploads.nth(1).locator(".upload-name")).to_have_text("man-hinh.png")

        dropped = page.evaluate_handle(MAKE_TRANSFER, ["hoa-don.png", "image/png"])
        page.locator(".thread").dispatch_event("dragenter", {"dataTransfer": dropped})
        expect(page.locator(".thread.dropping")).to_have_count(1)
        page.locator(".thread").dispatch_event("drop", {"dataTransfer": dropped})
        expect(uploads).to_have_count(3)
        expect(page.locator(".thread.dropping")).to_have_count(0)

        uploads.nth(0).locator(".upload-remove").click()
        expect(uploads).to_have_count(2)
        expect(page.locator("#uploads .upload-name")).to_have_text(["man-hinh.png", "hoa-don.png"])

        page.locator('.composer-tabs [data-mode="note"]').click()
        expect(page.locator("#composer-attach")).to_be_hidden()
        page.locator('.composer-tabs [data-mode="reply"]').click()
        expect(page.locator("#composer-attach")).to_be_visible()

        # switching conversations leaves nothing behind in the composer
        page.goto(f"{url}/inbox")
        page.goto(f"{url}/inbox/conversations/{conversation['id']}")
        expect(uploads).to_have_count(0)
        assert problems == []
    finally:
        context.close()
