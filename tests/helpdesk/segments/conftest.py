"""Segment test fixtures: the app on SQLite and on the real PostgreSQL, with the shop of factories.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.conftest import CareDeskClient, start_client
from tests.helpdesk.segments.factories import NOW, build


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_client(request: pytest.FixtureRequest, make_settings) -> AsyncIterator[CareDeskClient]:
    """The app on SQLite, then on the real PostgreSQL, its clock at factories.NOW."""
    if request.param == "sqlite":
        settings = make_settings()
    else:
        settings = make_settings(database_url=request.getfixturevalue("postgres_url"))
    async for value in start_client(settings):
        value.wiring.clock.use(lambda: NOW)
        yield value


@pytest.fixture
async def customers(any_client: CareDeskClient) -> dict[str, int]:
    """The customers of factories.build, written into the app's database: ids by name."""
    return await asyncio.to_thread(build, any_client.wiring.engine)
