"""A small scheduler: named periodic work, registered by the domains, run one piece after another.

Each domain registers its own periodic work next to its code (``sla/tasks.py``, ``care/tasks.py``
…); the scheduler knows none of them. One loop looks every ``tick_s`` for work whose time has come
and runs it in the order it was registered; a piece that fails is logged and runs again at its next
time. Work that must not wait for its next time (a start-up step that failed, a change announced by
another process) asks for ``run_soon``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from helpdesk.core.aio import cancel_and_wait

log = logging.getLogger(__name__)


@dataclass
class _Periodic:
    name: str
    work: Callable[[], Awaitable[object]]
    every_s: Callable[[], float]
    next_at: float


class Scheduler:
    """Runs registered periodic work on this process's event loop."""

    def __init__(self, *, tick_s: float = 0.5, name: str = "caredesk-scheduler"):
        self.tick_s = tick_s
        self.name = name
        self._work: dict[str, _Periodic] = {}
        self._task: asyncio.Task | None = None
        self._wake: asyncio.Event | None = None

    def add(self, name: str, work: Callable[[], Awaitable[object]], *, every_s: float | Callable[[], float],
            first_after_s: float | None = None) -> None:
        """Run ``work`` every ``every_s`` seconds (a number, or read afresh each time); the first run
        after ``first_after_s`` (default: one interval) from when the scheduler starts."""
        interval = every_s if callable(every_s) else (lambda: every_s)
        first = interval() if first_after_s is None else first_after_s
        if self._task is not None:  # added to a running scheduler: counted from now
            first += asyncio.get_running_loop().time()
        self._work[name] = _Periodic(name, work, interval, first)  # relative until start()

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
                periodic.next_at = loop.time() + periodic.every_s()
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
