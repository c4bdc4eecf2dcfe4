"""Real headless Chromium (Debian's package) driven by Playwright for Python.

Playwright's own browser download is not used: the tests launch /usr/bin/chromium. Without it (or
without the playwright package) the browser tests skip with the reason on a developer machine, and
fail in CI, where scripts/test-services.sh installs chromium.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("CAREDESK_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # CI and dev containers run as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    # No calls home: the test machine reaches package registries only, and a test must not wait on them.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None when Chromium and playwright are installed."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed"
    return None


def skip_module_without_browser() -> None:
    """At a browser test module's import: skip it on a machine without a browser.

    Skipping here, before any fixture, spares the slow ones (model training, a live server). In CI
    nothing is skipped: the ``chromium`` fixture then fails each test with the reason.
    """
    reason = missing_browser()
    if reason and not os.environ.get("CI"):
        pytest.skip(f"{reason}; install it (apt-get install chromium; pip install playwright) to run the "
                    "browser tests", allow_module_level=True)


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """One Chromium per test module.

    Not per session: while Playwright's sync API is active its event loop counts as running in the
    main thread, and every async test collected after the browser tests would then fail to start.
    """
    reason = missing_browser()
    if reason:
        pytest.fail(f"{reason}: in CI, scripts/test-services.sh installs chromium and `make test` the test extra "
                    "(playwright)", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium) -> Iterator[object]:
    """A fresh browser profile (empty localStorage) and one tab in it."""
    context = chromium.new_context(locale="vi-VN")
    context.set_default_timeout(10_000)
    tab = context.new_page()
    yield tab
    context.close()
