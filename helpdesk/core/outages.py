"""Waiting out a dependency that is away (the database, Redis, the network)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from anyio import to_thread

from helpdesk.core.errors import is_infrastructure_error

log = logging.getLogger(__name__)


async def when_available(work: Callable[..., Any], *args: Any, doing: str, first_pause_s: float = 0.1,
                         longest_pause_s: float = 5.0) -> Any:
    """Run the blocking ``work`` in a thread, trying again with doubling pauses for as long as a
    dependency is away; any other error is raised. ``doing`` names the work in the log."""
    pause = first_pause_s
    while True:
        try:
            return await to_thread.run_sync(work, *args)
        except Exception as exc:
            if not is_infrastructure_error(exc):
                raise
            log.warning("%s waits for a dependency (%s: %s); again in %.1fs", doing, type(exc).__name__, exc, pause)
        await asyncio.sleep(pause)
        pause = min(pause * 2, longest_pause_s)
