"""The API docs in real headless Chromium with no internet: every request that is not to CareDesk is
refused, and Swagger UI and ReDoc still draw the API from CareDesk's own copies, with no script
blocked by the page's security policy and no error."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.conftest import skip_module_without_browser
from tests.conftest import LiveServer

pytestmark = pytest.mark.slow  # a real Chromium against a live server

skip_module_without_browser()
pytest.importorskip("playwright", reason="the browser tests drive Chromium through playwright")

from playwright.sync_api import expect


@pytest.fixture
def docs_server(make_settings) -> Iterator[LiveServer]:
    with LiveServer(make_settings()) as server:
        yield server


def offline(page, server: LiveServer) -> tuple[list[str], list[str]]:
    """Refuse every request that leaves CareDesk (as on a machine with no internet); the addresses
    refused, and the errors the page reported."""
    refused: list[str] = []
    problems: list[str] = []

    def route(request_route) -> None:
        url = request_route.request.url
        if url.startswith(server.url) or url.startswith(("data:", "blob:")):
            request_route.continue_()
        else:
            refused.append(url)
            request_route.abort()

    page.route("**/*", route)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    return refused, problems


def test_swagger_ui_draws_the_api_offline(page, docs_server):
    refused, problems = offline(page, docs_server)
    page.goto(f"{docs_server.url}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("CareDesk")
    expect(page.locator(".opblock-summary-path", has_text="/api/auth/token").first).to_be_visible()
    assert refused == []
    assert problems == []


def test_redoc_draws_the_api_offline(page, docs_server):
    refused, problems = offline(page, docs_server)
    page.goto(f"{docs_server.url}/redoc")
    expect(page.locator("h1").first).to_contain_text("CareDesk")
    expect(page.get_by_text("/api/auth/token").first).to_be_attached()
    assert refused == []
    # ReDoc's "API docs by Redocly" badge is an image on Redocly's CDN: the page's policy keeps it
    # from being fetched (nothing leaves the machine), which the browser reports as an error
    assert [problem for problem in problems if "cdn.redoc.ly" not in problem] == []
