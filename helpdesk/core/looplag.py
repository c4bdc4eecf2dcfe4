"""A watchdog for the event loop: how late it wakes up from short sleeps.

Every request, webhook and socket of a process shares one event loop; synchronous work run on it (a
password hash, a database call) holds all of them up. Such a stall shows as the watchdog waking late,
and each one long enough to matter is logged, with its length in ``lag_ms``, so that the app log names
it and the test suite can fail the test during which it happened.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading
import time
import traceback

from helpdesk.core.aio import cancel_and_wait

log = logging.getLogger(__name__)

#: how often the watchdog wakes; a stall shorter than this can go unseen, which is fine at its size
CHECK_INTERVAL_S = 0.05


class _GarbageCollectionClock:
    """Adds up the time the garbage collector ran (in any thread: it stops them all), so that a stall
    can say how much of it was collection rather than code run on the loop."""

    def __init__(self) -> None:
        self.total_s = 0.0
        self._started: float | None = None

    def __call__(self, phase: str, _info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            self.total_s += time.perf_counter() - self._started
            self._started = None


_gc_clock = _GarbageCollectionClock()
gc.callbacks.append(_gc_clock)


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
        # A thread looks at the loop while it is stuck, so the log can say what it was doing.
        self._awake_at = time.monotonic()
        self._stuck_in: str | None = None
        self._sampler: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        """Start watching the running loop."""
        if self._task is None:
            self._awake_at = time.monotonic()
            self._task = asyncio.get_running_loop().create_task(self._watch(), name="caredesk-loop-lag")
            self._stop.clear()
            self._sampler = threading.Thread(target=self._sample, args=(threading.get_ident(),),
                                             name="caredesk-loop-lag", daemon=True)
            self._sampler.start()

    async def stop(self) -> None:
        """Stop watching."""
        await cancel_and_wait(self._task)
        self._task = None
        self._stop.set()

    def _sample(self, loop_thread: int) -> None:
        while not self._stop.wait(self.interval_s):
            if self._stuck_in is None and time.monotonic() - self._awake_at >= self.warn_after_s:
                frame = sys._current_frames().get(loop_thread)
                if frame is not None:
                    self._stuck_in = "".join(traceback.format_stack(frame, limit=12))

    def reset(self) -> None:
        """Forget what was measured so far (a bench or a test measures one stretch)."""
        self.max_lag_s = 0.0
        self.stalls = 0

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.interval_s
            collected_before = _gc_clock.total_s
            await asyncio.sleep(self.interval_s)
            self._awake_at = time.monotonic()
            stuck_in, self._stuck_in = self._stuck_in, None
            self.observe(loop.time() - due, _gc_clock.total_s - collected_before, stuck_in)

    def observe(self, lag_s: float, gc_s: float = 0.0, stuck_in: str | None = None) -> None:
        """Record one measured lag (``gc_s`` of it garbage collection, ``stuck_in`` where the loop was
        seen stuck), logging it when it is a stall."""
        self.max_lag_s = max(self.max_lag_s, lag_s)
        if lag_s >= self.warn_after_s:
            self.stalls += 1
            lag_ms, gc_ms = round(lag_s * 1000), round(min(gc_s, lag_s) * 1000)
            log.warning("event loop blocked for %d ms (%d ms of it garbage collection): work that does not "
                        "yield ran on it, delaying every request of this process%s", lag_ms, gc_ms,
                        f"; it was in:\n{stuck_in}" if stuck_in else "",
                        extra={"lag_ms": lag_ms, "gc_ms": gc_ms, "stuck_in": stuck_in})
