"""A message the bot keeps failing on, in real headless Chromium: it is parked after its tries (the
conversation handed to a person), the admin finds it on the training page's "failed messages" tab
with its error, presses "process again" once the cause is gone, and the bot reads it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.browser.conftest import skip_module_without_browser
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, LiveServer

pytestmark = pytest.mark.slow  # a real Chromium against a live server

skip_module_without_browser()

from playwright.sync_api import expect

POISON = "máy xay bị rò nước, làm sao đây"


@pytest.fixture
def server(make_settings) -> Iterator[LiveServer]:
    """CareDesk on a real port; a turn is tried twice before it is parked."""
    with LiveServer(make_settings(worker={"max_attempts": 2, "retry_base_s": 0.01})) as live:
        yield live


def parked(http: httpx.Client, admin: dict, timeout: float = 15.0) -> list[dict]:
    """The parked messages, once there are some."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = http.get("/api/admin/parked-events", headers=admin).json()["data"]
        if rows:
            return rows
        time.sleep(0.1)
    raise AssertionError("nothing was parked")


def test_admin_sends_a_parked_message_through_again(server, page):
    wiring = server.server.config.app.state.wiring
    handle = wiring.bot.handle

    async def broken(turn, state):
        if turn.text == POISON:
            raise RuntimeError("the bot fell over on this one")
        return await handle(turn, state)

    wiring.bot.handle = broken
    http = httpx.Client(base_url=server.url, timeout=10)
    token = http.post("/api/auth/token", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).json()
    admin = {"Authorization": f"Bearer {token['access_token']}"}
    said = http.post("/webhooks/cli", json={"sender_id": "khach-1", "message_id": "m-1", "text": POISON})
    assert said.status_code == 200, said.text
    [row] = parked(http, admin)

    page.goto(f"{server.url}/admin/nlu")
    page.locator("#login-form [name=email]").fill(ADMIN_EMAIL)
    page.locator("#login-form [name=password]").fill(ADMIN_PASSWORD)
    page.locator("#login-form button[type=submit]").click()
    expect(page.locator("#app")).to_be_visible()
    page.locator('#tabs [data-tab="parked"]').click()
    listed = page.locator(f'#parked tr[data-parked="{row["id"]}"]')
    expect(listed).to_contain_text(POISON)
    expect(listed).to_contain_text("the bot fell over on this one")

    wiring.bot.handle = handle  # the cause is fixed
    listed.locator("button").click()
    expect(page.locator("#flash")).to_be_visible()
    expect(page.locator("#parked-empty")).to_be_visible()
    deadline = time.monotonic() + 15
    while http.get("/api/admin/parked-events", headers=admin).json()["count"]:
        assert time.monotonic() < deadline, "the message stayed parked"
        time.sleep(0.1)
    # the bot has now read the message (stored once, when it was parked); a person has the conversation
    [conversation] = http.get("/api/conversations", headers=admin).json()["data"]
    assert conversation["state"] == "waiting_for_agent"
    messages = http.get(f"/api/conversations/{conversation['id']}", headers=admin).json()["messages"]
    assert [(m["text"], m["nlu"] is not None) for m in messages if m["author"] == "customer"] == [(POISON, True)]
