"""Ratings tests reuse the care tests' settings and fake clock, and run on a wiring that is not
started (no worker, no HTTP)."""

from __future__ import annotations

import pytest

from tests.helpdesk.care.conftest import FakeClock, care_settings, clock  # noqa: F401 (fixtures)


@pytest.fixture
def wiring(care_settings, clock: FakeClock):  # noqa: F811
    """A wiring on a migrated database, not started: no worker, no HTTP."""
    from helpdesk.wiring import Wiring

    wiring = Wiring(care_settings())
    wiring.clock.use(clock)
    yield wiring
    wiring.engine.dispose()
