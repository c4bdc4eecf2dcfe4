"""Readiness: what a CareDesk process needs before it is given work (``/readyz`` of ``caredesk serve``
and of a ``caredesk worker``'s HTTP port)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from anyio import to_thread

from helpdesk.core.db import current_revision, head_revision

log = logging.getLogger(__name__)

#: how long a readiness check waits for Redis to answer a ping
READY_TIMEOUT_S = 1.0


async def readiness(wiring: Any) -> dict[str, bool]:
    """The checks of the wiring's process: the database answers and has every migration, an NLU model
    is loaded, and Redis (when configured: the job queue and the events between processes) answers."""
    checks = {"database": False, "migrations": False, "nlu_model": wiring.models.ready}

    def at_head() -> bool:
        with wiring.engine.connect() as connection:
            return current_revision(connection) == head_revision()

    try:
        checks["migrations"] = await to_thread.run_sync(at_head)
        checks["database"] = True
    except Exception as exc:
        log.warning("readiness: database unreachable: %s", exc)
    if wiring.redis is not None:
        checks["redis"] = False
        try:
            checks["redis"] = bool(await asyncio.wait_for(wiring.redis.ping(), READY_TIMEOUT_S))
        except Exception as exc:
            log.warning("readiness: Redis unreachable: %s", exc)
    return checks
