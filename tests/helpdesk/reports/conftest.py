"""Report test fixtures: the data factory writing into the app's database (``any_client``, the app on
SQLite and on PostgreSQL, is in tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.conftest import CareDeskClient
from tests.helpdesk.reports.factories import Shop


@pytest.fixture
def shop(any_client: CareDeskClient) -> Shop:
    """The factory, writing into the app's database."""
    return Shop(any_client.wiring.engine)
