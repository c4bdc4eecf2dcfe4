"""Background processing: inbound events after the webhook answered, and the outbox retry pump.

Events of one sender are processed one at a time in arrival order (a lock per sender), so replies
keep their order; different senders run concurrently up to a limit.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from anyio import to_thread
from sqlmodel import Session

from helpdesk.channels import service as channels
from helpdesk.conversations.flows import ConversationFlow, TryAgainLater, drain_chat, process_chat_events
from helpdesk.core.config import Settings
from helpdesk.core.errors import is_infrastructure_error

log = logging.getLogger(__name__)

#: a stored event still unprocessed after this long was not handed to any worker (or its worker died)
STRAY_EVENT_AGE_S = 30.0
STRAY_SWEEP_INTERVAL_S = 10.0


class KeyedLocks:
    """One asyncio lock per key (a chat), forgotten when nobody holds a reference."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def get(self, key: str) -> asyncio.Lock:
        """The lock for ``key``."""
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        return lock


class Worker:
    """Runs inbound processing and outbox retries inside the server process."""

    def __init__(self, flow: ConversationFlow, settings: Settings, *,
                 care_check: Callable[[], Awaitable[Any]] | None = None,
                 sla_check: Callable[[], Awaitable[Any]] | None = None,
                 concurrency: int = 16, pump_interval_s: float = 0.5):
        self.flow = flow
        self.settings = settings
        #: the periodic care and SLA checks the pump runs (None: not in this worker)
        self._care_check = care_check
        self._sla_check = sla_check
        self.locks = KeyedLocks()
        self._limit = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task] = set()
        self._pump: asyncio.Task | None = None
        self._pump_interval_s = pump_interval_s
        self._idle = asyncio.Event()
        self._idle.set()
        self._draining: set[str] = set()
        #: stored events submitted here and not finished yet (the stray sweep skips them)
        self._queued_events: set[int] = set()
        #: every stored event up to this id is settled: the stray sweep looks above it
        self._swept_through = 0
        #: every waiting event is to be taken up at the pump's next turn, however young
        self._catch_up = False
        self._loop = asyncio.get_running_loop()

    async def start(self) -> None:
        """Resume events left unprocessed by a previous run and start the outbox pump."""
        try:
            await self.sweep_stray_events(older_than_s=0.0)
        except Exception as exc:
            if not is_infrastructure_error(exc):
                raise
            log.warning("could not look for waiting events at start (%s); the pump will", exc)
            self._catch_up = True
        self._pump = asyncio.create_task(self._run_pump(), name="caredesk-outbox-pump")

    def submit_event(self, event_id: int, channel: str, sender_id: str, *, typing_off: bool = False) -> None:
        """Process a stored inbound event in the background, after the chat's older events still
        waiting; ``typing_off`` then hides the channel's typing indicator (once the replies are out)."""
        key = f"{channel}:{sender_id}"
        self._queued_events.add(event_id)

        async def job() -> None:
            try:
                await process_chat_events(self.flow, channel, sender_id, event_id, floor=self._swept_through)
            finally:
                self._queued_events.discard(event_id)

        self.submit(key, job)
        if typing_off:
            self.submit(key, lambda: self._typing_off(channel, sender_id))

    async def _typing_off(self, channel: str, recipient_id: str) -> None:
        connector = self.flow.connectors.get(channel)
        if connector is None:
            return
        try:
            await connector.typing_off(recipient_id)
        except Exception as exc:  # the widget also hides the indicator on its own after a while
            log.warning("could not hide the %s typing indicator: %s", channel, exc)

    def submit_drain(self, channel: str, recipient_id: str) -> None:
        """Send the chat's pending messages in the background, in order (callable from any thread)."""
        key = f"{channel}:{recipient_id}"
        if key in self._draining:
            return  # a drain for this chat is queued and will see the new item too
        self._draining.add(key)

        async def job() -> None:
            self._draining.discard(key)  # from here on, new items need a new drain
            await drain_chat(self.flow.outbox, channel, recipient_id)

        self.submit(key, job)

    def submit(self, key: str, job: Callable[[], Awaitable[None]]) -> None:
        """Run ``job`` after the jobs already queued for ``key`` (callable from any thread)."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not self._loop:
            # From a sync route's worker thread: hand over to the loop. The callback is queued before
            # the route returns, so it runs before anyone awaiting the response can check for idleness.
            self._loop.call_soon_threadsafe(self._start_job, key, job)
            return
        self._start_job(key, job)

    def _start_job(self, key: str, job: Callable[[], Awaitable[None]]) -> None:
        lock = self.locks.get(key)
        task = asyncio.create_task(self._run(lock, job))
        self._tasks.add(task)
        self._idle.clear()
        task.add_done_callback(self._finished)

    async def _run(self, lock: asyncio.Lock, job: Callable[[], Awaitable[None]]) -> None:
        # The chat's lock is held through the pauses, so the chat's later jobs wait behind this one
        # (its messages stay in order); the concurrency slot is not, so other chats go on.
        settings = self.settings.worker
        pause = settings.retry_base_s
        async with lock:
            while True:
                async with self._limit:
                    try:
                        await job()
                        return
                    except Exception as exc:
                        if not (isinstance(exc, TryAgainLater) or is_infrastructure_error(exc)):
                            log.exception("background job failed")
                            return
                        log.warning("background job will be tried again in %.1fs: %s", pause, exc)
                await asyncio.sleep(pause)
                pause = min(pause * 2, settings.retry_max_s)

    def _finished(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not self._tasks:
            self._idle.set()

    async def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until every submitted job has finished (tests and graceful shutdown)."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def _run_pump(self) -> None:
        loop = asyncio.get_running_loop()
        # The first care check waits one interval, so tests can install their clock first.
        next_care_check = loop.time() + self.settings.care.check_interval_s
        next_sla_check = loop.time() + self.settings.sla.check_interval_s
        next_sweep = loop.time() + STRAY_SWEEP_INTERVAL_S
        while True:
            try:
                await self.pump_once()
            except Exception:
                log.exception("outbox pump failed")
            if loop.time() >= next_care_check:
                next_care_check = loop.time() + self.settings.care.check_interval_s
                try:
                    if self._care_check is not None:
                        await self._care_check()
                except Exception:
                    log.exception("care check failed")
            if loop.time() >= next_sla_check:
                next_sla_check = loop.time() + self.settings.sla.check_interval_s
                if self._sla_check is not None:
                    await self._sla_check()
            if loop.time() >= next_sweep or self._catch_up:
                next_sweep = loop.time() + STRAY_SWEEP_INTERVAL_S
                try:
                    await self.sweep_stray_events(older_than_s=0.0 if self._catch_up else STRAY_EVENT_AGE_S)
                    self._catch_up = False
                except Exception as exc:
                    log.warning("sweeping stray events failed: %s", exc, exc_info=not is_infrastructure_error(exc))
            await asyncio.sleep(self._pump_interval_s)

    async def pump_once(self) -> int:
        """Start a drain for every chat with a due outbox retry; how many chats."""

        def load_due() -> list[tuple[str, str]]:
            with Session(self.flow.engine) as session:
                return channels.chats_with_due_items(session)

        due = await to_thread.run_sync(load_due)
        for channel, recipient_id in due:
            self.submit_drain(channel, recipient_id)
        return len(due)

    async def sweep_stray_events(self, older_than_s: float = STRAY_EVENT_AGE_S) -> int:
        """Process stored events that nobody took up (their job was lost while this worker was
        away, or went to a process that died); how many were submitted."""

        def load(after_id: int) -> tuple[list[channels.PendingEvent], int]:
            with Session(self.flow.engine) as session:
                return channels.pending_events(session, after_id=after_id, older_than_s=older_than_s)

        pending, self._swept_through = await to_thread.run_sync(load, self._swept_through)
        submitted = 0
        while pending:
            strays = [event for event in pending if event.id not in self._queued_events]
            for event_id, channel, sender_id in strays:
                self.submit_event(event_id, channel, sender_id)
            submitted += len(strays)
            if len(pending) < channels.PENDING_PAGE:
                break
            # a backlog (after downtime) is taken up whole, page after page, not a page a sweep
            pending, _ = await to_thread.run_sync(load, pending[-1].id)
        return submitted

    def sweep_soon(self) -> None:
        """Take up every waiting event now (a server restarted, and jobs it made may be lost)."""
        self.submit("sweep", lambda: self.sweep_stray_events(older_than_s=0.0))

    async def stop(self) -> None:
        """Stop the pump and let running jobs finish (bounded)."""
        if self._pump is not None:
            self._pump.cancel()
            try:
                await self._pump
            except asyncio.CancelledError:
                pass
        if self._tasks:
            try:
                await self.wait_idle(timeout=10)
            except TimeoutError:
                log.warning("stopping with %d background jobs unfinished", len(self._tasks))
