"""A watchdog for the event loop: how late it wakes up from short sleeps.

Every request, webhook and socket of a process shares one event loop; synchronous work run on it (a
password hash, a database call) holds all of them up. Such a stall shows as the watchdog waking late,
and each one long enough to matter is logged, with its length in ``lag_ms``, so that the app log names
it and the test suite can fail the test during which it happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger(__name__)

#: how often the watchdog wakes; a stall shorter than this can go unseen, which is fine at its size
CHECK_INTERVAL_S = 0.05


class LoopLagMonitor:
    """Measures the event loop's lag and logs each stall of ``warn_after_s`` or more."""

    def __init__(self, warn_after_s: float = 0.25, interval_s: float = CHECK_INTERVAL_S):
        self.warn_after_s = warn_after_s
        self.interval_s = interval_s
        #: the longest lag seen since start (seconds)
        self.max_lag_s = 0.0
        #: how many stalls reached ``warn_after_s``
        self.stalls = 0
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        """Start watching the running loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch(), name="caredesk-loop-lag")

    async def stop(self) -> None:
        """Stop watching."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def reset(self) -> None:
        """Forget what was measured so far (a bench or a test measures one stretch)."""
        self.max_lag_s = 0.0
        self.stalls = 0

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.interval_s
            await asyncio.sleep(self.interval_s)
            self.observe(loop.time() - due)

    def observe(self, lag_s: float) -> None:
        """Record one measured lag, logging it when it is a stall."""
        self.max_lag_s = max(self.max_lag_s, lag_s)
        if lag_s >= self.warn_after_s:
            self.stalls += 1
            lag_ms = round(lag_s * 1000)
            log.warning("event loop blocked for %d ms: synchronous work ran on it, delaying every request "
                        "of this process", lag_ms, extra={"lag_ms": lag_ms})
