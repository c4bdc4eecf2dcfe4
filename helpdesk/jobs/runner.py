"""The job runner: background work of this process, one key's jobs in order, retried while infrastructure is away.

Jobs of one key (a chat) run one at a time in the order they were submitted (a lock per key), so a
chat's replies keep their order; different keys run concurrently up to a limit. A job that fails
because the database or Redis is away, or that raises ``TryAgainLater``, is tried again after a
pause that doubles each time, for as long as it takes; any other failure is logged and dropped
(and reported to whoever runs the named job with ``run_job``, e.g. the Redis Streams consumer, which
delivers it again and parks it after a few tries).

With ``shared_locks`` (Redis, several worker processes), a key's jobs also hold the key's lock across
processes, so a chat's messages stay in order when consecutive jobs land on different workers.

Named jobs carry plain JSON arguments, so the same job can run here or cross to a worker process
(see ``helpdesk.jobs.remote``): a domain registers a handler for each of its job names, and the
handler queues the work on the runner under the key it chooses.
"""

from __future__ import annotations

import asyncio
import logging
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from helpdesk.core.aio import where_waiting
from helpdesk.core.errors import is_infrastructure_error
from helpdesk.core.logs import current_job
from helpdesk.core.metrics import JOB_LATENCY_SECONDS, JOB_RUN_SECONDS, timed
from helpdesk.jobs.locks import KeyedLocks, waiting_for_key

#: a job still running after this long is logged with where it waits (once): a chat's later jobs
#: queue behind it, so one that hangs must be seen, not guessed at
STUCK_JOB_S = 60.0

log = logging.getLogger(__name__)

#: takes a named job's JSON arguments and queues its work (runs on the event loop; must not block)
JobHandler = Callable[[dict[str, Any]], None]


class TryAgainLater(Exception):
    """A job cannot finish now for a reason that will pass: run it again after a pause (the key's
    later jobs wait behind it)."""


class JobFailed(Exception):
    """The work a named job queued failed for a reason of its own (not an infrastructure outage)."""


class SharedLocks(Protocol):
    """Per-key locks held across processes (``helpdesk.jobs.locks.RedisKeyLocks``)."""

    def hold(self, key: str) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold ``key``'s lock for the block (waiting while another process holds it)."""


class RetryPauses(Protocol):
    """The first and longest pause before trying a failed job again (read at each retry)."""

    retry_base_s: float
    retry_max_s: float


class JobQueue(Protocol):
    """Where domains hand background work: the runner of this process, or the transport to a worker
    process (``helpdesk.jobs.remote.RemoteJobs``)."""

    def dispatch(self, name: str, /, **args: Any) -> None:
        """Run the named job (JSON arguments) wherever jobs run."""

    def submit(self, key: str, job: Callable[[], Awaitable[None]]) -> None:
        """Run ``job`` in this process, after the jobs already queued for ``key``."""

    async def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until the work submitted here has finished."""


class JobHandlers:
    """The named jobs a process knows how to run: name → handler."""

    def __init__(self) -> None:
        self._handlers: dict[str, JobHandler] = {}

    def register(self, name: str, handler: JobHandler) -> None:
        """Run ``handler`` for every job called ``name``."""
        self._handlers[name] = handler

    def run(self, name: str, args: dict[str, Any]) -> None:
        """Hand a named job to its handler (an unknown name, or arguments its handler cannot read, is
        logged and dropped)."""
        handler = self._handlers.get(name)
        if handler is None:
            log.warning("ignoring a job nobody handles: %s", name)
            return
        # The work the handler queues runs in a task made now, which copies this context: the
        # job's name then labels its log records and its latency (see JobRunner._start_job).
        token = current_job.set(name)
        try:
            handler(args)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring a malformed %s job: %s", name, exc)
        finally:
            current_job.reset(token)

    def knows(self, name: str) -> bool:
        """Whether a handler is registered for ``name``."""
        return name in self._handlers


class JobRunner:
    """Runs background jobs inside this process."""

    def __init__(self, retry: RetryPauses, *, concurrency: int = 16, shared_locks: SharedLocks | None = None):
        self.retry = retry
        self.locks = KeyedLocks()
        self.shared_locks = shared_locks
        #: while a named job's handler runs under ``run_job``: the tasks it submits
        self._captured: list[asyncio.Task] | None = None
        self.handlers = JobHandlers()
        self._limit = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._loop = asyncio.get_running_loop()

    def register(self, name: str, handler: JobHandler) -> None:
        """Run ``handler`` for every job called ``name``."""
        self.handlers.register(name, handler)

    def dispatch(self, name: str, /, **args: Any) -> None:
        """Run the named job here (callable from any thread)."""
        self._on_loop(self.handlers.run, name, args)

    def submit(self, key: str, job: Callable[[], Awaitable[None]]) -> None:
        """Run ``job`` after the jobs already queued for ``key`` (callable from any thread)."""
        self._on_loop(self._start_job, key, job)

    async def run_job(self, name: str, args: dict[str, Any]) -> None:
        """Run the named job here and wait until the work its handler queued has finished (on the
        event loop). Work that waits for infrastructure keeps waiting; work that failed for a
        reason of its own raises JobFailed with the first such error."""
        self._captured = captured = []
        try:
            self.handlers.run(name, args)
        finally:
            self._captured = None
        if not captured:
            return
        outcomes = await asyncio.gather(*(asyncio.shield(task) for task in captured))
        for outcome in outcomes:
            if outcome is not None:
                raise JobFailed(f"{type(outcome).__name__}: {outcome}") from outcome

    def _on_loop(self, function: Callable[..., None], *args: Any) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not self._loop:
            # From a sync route's worker thread: hand over to the loop. The callback is queued before
            # the route returns, so it runs before anyone awaiting the response can check for idleness.
            self._loop.call_soon_threadsafe(function, *args)
            return
        function(*args)

    def _start_job(self, key: str, job: Callable[[], Awaitable[None]]) -> None:
        lock = self.locks.get(key)
        name = current_job.get() or "other"
        submitted = time.perf_counter()

        async def attempt() -> None:
            with timed(JOB_RUN_SECONDS, name):
                await job()

        task = asyncio.create_task(self._run(key, lock, attempt))
        watch = self._loop.call_later(STUCK_JOB_S, _report_stuck, task, key, name)
        task.add_done_callback(lambda _task: watch.cancel())
        if self._captured is not None:
            self._captured.append(task)
        self._tasks.add(task)
        self._idle.clear()
        task.add_done_callback(lambda _task: JOB_LATENCY_SECONDS.labels(name).observe(
            time.perf_counter() - submitted))
        task.add_done_callback(self._finished)

    async def _run(self, key: str, lock: asyncio.Lock, job: Callable[[], Awaitable[None]]) -> Exception | None:
        # The key's lock is held through the pauses, so the key's later jobs wait behind this one
        # (a chat's messages stay in order); the concurrency slot is not, so other keys go on.
        # The shared lock (other processes) is taken before the slot: waiting for another worker
        # to finish the chat must not keep this one's other chats waiting.
        # Returns the failure of the job's own, if any (for run_job), rather than raising it.
        pause = self.retry.retry_base_s
        if lock.locked():
            waiting_for_key()
        async with lock:
            while True:
                try:
                    async with self._shared(key), self._limit:
                        await job()
                        return None
                except Exception as exc:
                    if not (isinstance(exc, TryAgainLater) or is_infrastructure_error(exc)):
                        log.exception("background job failed")
                        return exc
                    log.warning("background job will be tried again in %.1fs: %s", pause, exc)
                await asyncio.sleep(pause)
                pause = min(pause * 2, self.retry.retry_max_s)

    def _shared(self, key: str) -> contextlib.AbstractAsyncContextManager[None]:
        return self.shared_locks.hold(key) if self.shared_locks is not None else contextlib.nullcontext()

    def _finished(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not self._tasks:
            self._idle.set()

    async def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until every submitted job has finished (tests and graceful shutdown)."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def stop(self) -> None:
        """Let running jobs finish (bounded)."""
        if self._tasks:
            try:
                await self.wait_idle(timeout=10)
            except TimeoutError:
                log.warning("stopping with %d background jobs unfinished", len(self._tasks))


def _report_stuck(task: asyncio.Task, key: str, name: str) -> None:
    """Log where a job that has run for STUCK_JOB_S waits (its key's later jobs wait behind it)."""
    log.warning("job %s of %s has been running for %.0f s; it waits in:\n%s", name, key, STUCK_JOB_S,
                where_waiting(task))
