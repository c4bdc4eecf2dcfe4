"""The application's time source: one ``Clock`` object handed at start-up to whatever reads the time.

Tests point it at a fake with ``clock.use(fake)``; functions and services that were handed the clock
long before read the fake from then on, because they ask it for the time at each call.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from helpdesk.core.db import utcnow


class Clock:
    """What time it is for scheduled and business work (care messages, SLA, ratings, reports)."""

    def __init__(self, source: Callable[[], datetime] = utcnow):
        self._source = source

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        return self._source()

    def use(self, source: Callable[[], datetime]) -> None:
        """Read the time from ``source`` from now on (a test's fake clock)."""
        self._source = source
