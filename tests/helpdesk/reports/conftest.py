"""Report test fixtures: the app on SQLite and on PostgreSQL, and the data factory writing into it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import CareDeskClient, start_client
from tests.helpdesk.reports.factories import Shop


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_client(request: pytest.FixtureRequest, make_settings) -> AsyncIterator[CareDeskClient]:
    """The app on SQLite, then on the real PostgreSQL."""
    if request.param == "sqlite":
        settings = make_settings()
    else:
        settings = make_settings(database_url=request.getfixturevalue("postgres_url"))
    async for value in start_client(settings):
        yield value


@pytest.fixture
def shop(any_client: CareDeskClient) -> Shop:
    """The factory, writing into the app's database."""
    return Shop(any_client.wiring.engine)
