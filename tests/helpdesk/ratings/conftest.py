"""Ratings tests reuse the care tests' settings and fake clock, and run on a runtime that is not
started (no worker, no HTTP)."""

from __future__ import annotations

import pytest

from tests.helpdesk.care.conftest import FakeClock, care_settings, clock  # noqa: F401 (fixtures)


@pytest.fixture
def runtime(care_settings, clock: FakeClock):  # noqa: F811
    """A runtime on a migrated database, not started: no worker, no HTTP."""
    from helpdesk.runtime import Runtime

    runtime = Runtime(care_settings())
    runtime.clock = clock
    yield runtime
    runtime.engine.dispose()
