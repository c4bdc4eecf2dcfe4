"""A small scheduler: named periodic work, registered by the domains, run one piece after another.

Each domain registers its own periodic work next to its code (``sla/tasks.py``, ``care/tasks.py``
…); the scheduler knows none of them. One loop looks every ``tick_s`` for work whose time has come
and runs it in the order it was registered; a piece that fails is logged and runs again at its next
time. Work that must not wait for its next time (a start-up step that failed, a change announced by
another process) asks for ``run_soon``.

Work on shared state (the SLA check, the care messages, the outbox retries, the stray sweep) is
added with ``shared=True``: with a ``ClusterOnce`` gate (Redis, several worker replicas) it runs in one
process per interval, whichever claims the interval first; per-process work (following the active
model, the loop-lag monitor) runs in every process. Without a gate, all of it runs here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from helpdesk.core.aio import cancel_and_wait

log = logging.getLogger(__name__)


@dataclass
class _Periodic:
    name: str
    work: Callable[[], Awaitable[object]]
    every_s: Callable[[], float]
    next_at: float
    shared: bool = False


class ClusterOnce:
    """Lets one process of those sharing a Redis run a piece of shared work per interval.

    The interval is a window of wall-clock time (the same on every replica, give or take their
    clocks): the first process to set the window's key (SET NX, expiring with the window) runs the
    work, the others skip it. If Redis cannot be asked, the work runs here: shared work is
    idempotent (each SLA breach recorded once, each outbox item sent once), so running it twice
    costs less than not running it while Redis is away."""

    def __init__(self, redis: Any, *, prefix: str = "caredesk:tick:"):
        self.redis = redis
        self.prefix = prefix

    async def claim(self, name: str, window_s: float) -> bool:
        """Whether this process runs ``name`` in the current window of ``window_s`` seconds."""
        window_ms = max(int(window_s * 1000), 1)
        index = int(time.time() * 1000) // window_ms
        try:
            return bool(await self.redis.set(f"{self.prefix}{name}:{index}", "1", nx=True, px=window_ms))
        except Exception as exc:
            log.warning("could not claim %s across replicas (%s); running it here", name, exc)
            return True


class Scheduler:
    """Runs registered periodic work on this process's event loop (shared work once across the
    processes of ``gate``, when there is one)."""

    def __init__(self, *, tick_s: float = 0.5, name: str = "caredesk-scheduler", gate: ClusterOnce | None = None):
        self.tick_s = tick_s
        self.name = name
        self.gate = gate
        self._work: dict[str, _Periodic] = {}
        self._task: asyncio.Task | None = None
        self._wake: asyncio.Event | None = None

    def add(self, name: str, work: Callable[[], Awaitable[object]], *, every_s: float | Callable[[], float],
            first_after_s: float | None = None, shared: bool = False) -> None:
        """Run ``work`` every ``every_s`` seconds (a number, or read afresh each time); the first run
        after ``first_after_s`` (default: one interval) from when the scheduler starts. ``shared``
        work runs in one process per interval across the gate's processes (at least one tick)."""
        interval = every_s if callable(every_s) else (lambda: every_s)
        first = interval() if first_after_s is None else first_after_s
        if self._task is not None:  # added to a running scheduler: counted from now
            first += asyncio.get_running_loop().time()
        self._work[name] = _Periodic(name, work, interval, first, shared)  # relative until start()

    def run_soon(self, name: str) -> None:
        """Run the named work at the next look rather than at its time."""
        periodic = self._work[name]
        periodic.next_at = float("-inf")
        if self._wake is not None:
            self._wake.set()

    async def start(self) -> None:
        """Start the loop; the first times count from now."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        for periodic in self._work.values():
            periodic.next_at = now + periodic.next_at
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._wake is not None
        while True:
            for periodic in list(self._work.values()):
                if loop.time() < periodic.next_at:
                    continue
                asked = periodic.next_at == float("-inf")  # run_soon: this process needs it now
                every_s = periodic.every_s()
                periodic.next_at = loop.time() + every_s
                if (periodic.shared and self.gate is not None and not asked
                        and not await self.gate.claim(periodic.name, max(every_s, self.tick_s))):
                    continue  # another replica runs it in this window
                try:
                    await periodic.work()
                except Exception:
                    log.exception("%s failed", periodic.name)
            # cleared only now: work asking to run again soon from inside the pass waits a tick
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.tick_s)

    async def stop(self) -> None:
        """Stop the loop (work running is cancelled)."""
        await cancel_and_wait(self._task)
        self._task = None
