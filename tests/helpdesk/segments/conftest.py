"""Segment test fixtures: the app on SQLite and on the real PostgreSQL, with the shop of factories.py."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import CareDeskClient
from tests.helpdesk.segments.factories import NOW, build


@pytest.fixture
def any_client(any_client: CareDeskClient) -> CareDeskClient:
    """tests/conftest.py's app on SQLite, then on the real PostgreSQL, its clock at factories.NOW."""
    any_client.wiring.clock.use(lambda: NOW)
    return any_client


@pytest.fixture
async def customers(any_client: CareDeskClient) -> dict[str, int]:
    """The customers of factories.build, written into the app's database: ids by name."""
    return await asyncio.to_thread(build, any_client.wiring.engine)
