"""Jobs through a Redis Stream with a consumer group: any number of ``caredesk worker`` replicas.

In external mode (``CAREDESK_WORKER__MODE=external``) the serving processes add each named job to
the stream ``caredesk:jobs:stream`` (XADD, trimmed to about ``stream_maxlen`` entries); every worker
process is a consumer of the group ``caredesk-workers`` and reads new entries (XREADGROUP). A worker
acknowledges an entry (XACK) only once the work its handler queued has finished, so:

- a job added while no worker runs waits in the stream;
- a worker killed with its jobs unfinished leaves them pending in the group; the others take them
  over (XAUTOCLAIM) once they have been idle ``claim_idle_s``. A worker marks its own unfinished
  jobs as fresh (XCLAIM … JUSTID) while it works on them, so a slow job is not taken over;
- a job waiting for its chat (whose lock another worker holds, or a killed one left behind for its
  time to live) gives its reading place back: the other chats' jobs are read and run meanwhile;
- work waiting for the database or Redis keeps waiting (the runner tries it again);
- a job whose work fails for a reason of its own is delivered again, and parked after
  ``max_job_deliveries`` deliveries: acknowledged and recorded (``helpdesk.jobs.parked``) for admins.

Delivery is at least once; the work is idempotent (an event is settled once), so effects are once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from redis.exceptions import ResponseError

from helpdesk.core.aio import cancel_and_wait
from helpdesk.core.errors import is_infrastructure_error
from helpdesk.jobs.locks import on_key_wait
from helpdesk.jobs.runner import JobFailed, JobRunner

log = logging.getLogger(__name__)

STREAM = "caredesk:jobs:stream"
#: how long stopping waits for the reader, the claimer and the acknowledger to end
STOP_TASKS_S = 5.0
GROUP = "caredesk-workers"


def consumer_name() -> str:
    """This process's name in the consumer group: host, process id and a random part (a restarted
    container may get the same host name and pid)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class StreamPublisher:
    """The serving process's side: adds jobs to the stream (the transport of ``RemoteJobs``)."""

    def __init__(self, redis: Any, *, maxlen: int = 100_000, stream: str = STREAM):
        self.redis = redis
        self.maxlen = maxlen
        self.stream = stream

    async def publish(self, _channel: str, data: str) -> None:
        """Add one job (its JSON) to the stream."""
        await self.redis.xadd(self.stream, {"job": data}, maxlen=self.maxlen, approximate=True)

    async def add_jobs(self, jobs: list[tuple[str, dict[str, Any]]]) -> None:
        """Add named jobs ``(name, args)`` to the stream in one round trip (a worker handing out a
        backlog it swept up, for every worker to share)."""
        if not jobs:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for name, args in jobs:
                pipe.xadd(self.stream, {"job": json.dumps({"kind": name, **args})}, maxlen=self.maxlen,
                          approximate=True)
            await pipe.execute()


@dataclass(frozen=True)
class PoisonJob:
    """A job whose work failed for a reason of its own at every delivery."""

    name: str
    args: dict[str, Any]
    error: str
    deliveries: int
    entry_id: str


class ReadingPlace:
    """One of a consumer's reading places, given back once: when its job ends, or as soon as the job
    waits for its chat (held by the chat's earlier job, here or in another worker)."""

    __slots__ = ("_room", "held")

    def __init__(self, room: asyncio.Semaphore):
        self._room = room
        self.held = True

    def give_back(self) -> None:
        if self.held:
            self.held = False
            self._room.release()


class StreamSettings(Protocol):
    """What the consumer reads from the worker settings."""

    concurrency: int
    claim_idle_s: float
    max_job_deliveries: int


class StreamConsumer:
    """A worker process's side: reads jobs from the group, runs them on ``runner``, acknowledges them
    when their work is done, takes over the jobs of workers that died, parks poison jobs with
    ``park`` (which stores them; a failure there leaves the job pending, to be parked later).
    ``on_recovered`` queues the catch-up after Redis was away (the servers' XADDs failed meanwhile)."""

    def __init__(self, redis: Any, runner: JobRunner, settings: StreamSettings, *,
                 park: Callable[[PoisonJob], Awaitable[None]],
                 on_recovered: Callable[[], None] | None = None,
                 name: str | None = None, stream: str = STREAM, group: str = GROUP,
                 longest_pause_s: float = 5.0):
        self.redis = redis
        self.runner = runner
        self.settings = settings
        self.park = park
        self.on_recovered = on_recovered
        self.name = name or consumer_name()
        self.stream = stream
        self.group = group
        self.longest_pause_s = longest_pause_s
        #: entries being worked on here: id → task
        self.in_flight: dict[str, asyncio.Task] = {}
        #: how many entries this consumer acknowledged (tests, bench)
        self.acked = 0
        #: jobs in hand that can run, at most (reading more would only keep them from the other workers)
        self.capacity = max(settings.concurrency * 4, 1)
        self._room = asyncio.Semaphore(self.capacity)
        #: jobs in hand at most, the ones waiting for their chat included (a killed worker leaves its
        #: chats' locks behind for their time to live: their newer jobs wait, without a place, while
        #: the other chats' are read and run); the jobs taken over may go ``capacity`` beyond
        self.most_in_hand = 2 * self.capacity
        self._fewer_in_hand = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        #: finished entries waiting to be acknowledged together (one XACK for many)
        self._to_ack: list[str] = []
        self._ack_due = asyncio.Event()

    @property
    def claim_idle_ms(self) -> int:
        return max(int(self.settings.claim_idle_s * 1000), 1)

    async def ensure_group(self) -> None:
        """Create the stream and the group if they do not exist (from the stream's start, so jobs
        added before the first worker ever started are run too)."""
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def start(self) -> None:
        """Start reading and taking over (in the background, trying again while Redis is away)."""
        self._tasks = [asyncio.create_task(self._read(), name="caredesk-stream-reader"),
                       asyncio.create_task(self._take_over(), name="caredesk-stream-claimer"),
                       asyncio.create_task(self._acknowledge(), name="caredesk-stream-acks")]

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop reading; let the jobs in hand finish (bounded). Unfinished ones stay pending, for the
        other workers to take over."""
        # bounded: a task stuck in a Redis call that does not end (a connection gone half-open) must not
        # keep the worker from stopping; what it held stays pending for the other workers
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _stopped, stuck = await asyncio.wait(self._tasks, timeout=STOP_TASKS_S)
            if stuck:
                log.warning("%d stream task(s) did not stop within %.0fs: %s", len(stuck), STOP_TASKS_S,
                            ", ".join(task.get_name() for task in stuck))
        self._tasks = []
        if self.in_flight:
            _done, pending = await asyncio.wait(list(self.in_flight.values()), timeout=grace_s)
            for task in pending:
                await cancel_and_wait(task)
        await self._flush_acks()

    # -- reading ----------------------------------------------------------------------------------

    async def _read(self) -> None:
        pause = 0.1
        failed = False
        while True:
            try:
                await self.ensure_group()
                while True:
                    while len(self.in_flight) >= self.most_in_hand:
                        self._fewer_in_hand.clear()
                        await self._fewer_in_hand.wait()
                    await self._room.acquire()  # at least one free place before reading
                    self._room.release()
                    replies = await self.redis.xreadgroup(self.group, self.name, {self.stream: ">"},
                                                          count=max(self.capacity - len(self.in_flight), 1),
                                                          block=1000)
                    if failed:
                        failed, pause = False, 0.1
                        log.info("job stream reachable again")
                        if self.on_recovered is not None:
                            self.on_recovered()  # queues a sweep for the jobs the servers could not add
                    for _stream, entries in replies or ():
                        for entry_id, fields in entries:
                            await self._begin(entry_id, fields, deliveries=1)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not is_infrastructure_error(exc) and "NOGROUP" not in str(exc):
                    log.exception("reading the job stream failed")
                else:
                    log.warning("job stream unreachable (%s); trying again in %.1fs", exc, pause)
                failed = True
                await asyncio.sleep(pause)
                pause = min(pause * 2, self.longest_pause_s)

    async def _begin(self, entry_id: str, fields: dict[str, str] | None, *, deliveries: int,
                     beyond_room: bool = False) -> None:
        """Start working on an entry: in one of the reading places (waiting for one), or, for an
        entry taken over (``beyond_room``), without one when none is free."""
        if entry_id in self.in_flight:
            return
        place = None
        if not beyond_room or not self._room.locked():
            await self._room.acquire()
            place = ReadingPlace(self._room)
        task = asyncio.create_task(self._handle(entry_id, fields, deliveries, place))
        self.in_flight[entry_id] = task

        def finished(_task: asyncio.Task) -> None:
            self.in_flight.pop(entry_id, None)
            self._fewer_in_hand.set()
            if place is not None:
                place.give_back()

        task.add_done_callback(finished)

    async def _handle(self, entry_id: str, fields: dict[str, str] | None, deliveries: int,
                      place: ReadingPlace | None) -> None:
        # the job's work (tasks it starts copy this context) gives the place back if it must wait
        on_key_wait.set(place.give_back if place is not None else None)
        try:
            job = json.loads((fields or {})["job"])
            name = job.pop("kind")
            if not isinstance(name, str) or not isinstance(job, dict):
                raise TypeError("a job is an object with a string kind")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("dropping a malformed job %s: %s", entry_id, exc)
            await self._ack(entry_id)
            return
        try:
            await self.runner.run_job(name, job)
        except JobFailed as exc:
            if deliveries < self.settings.max_job_deliveries:
                log.warning("job %s (%s) failed at delivery %d of %d; it will be delivered again: %s",
                            entry_id, name, deliveries, self.settings.max_job_deliveries, exc)
                return  # not acknowledged: taken over again once idle
            try:
                await self.park(PoisonJob(name, job, str(exc), deliveries, entry_id))
            except Exception as failure:
                log.warning("could not park job %s (%s); it stays pending: %s", entry_id, name, failure)
                return
            log.error("job %s (%s) parked after %d deliveries: %s", entry_id, name, deliveries, exc)
        await self._ack(entry_id)

    async def _ack(self, entry_id: str) -> None:
        self._to_ack.append(entry_id)
        self._ack_due.set()

    async def _acknowledge(self) -> None:
        # The entries finished while the previous XACK was on its way go in the next one: one round
        # trip for many jobs under load, and no wait when there is a single one.
        while True:
            await self._ack_due.wait()
            self._ack_due.clear()
            await self._flush_acks()

    async def _flush_acks(self) -> None:
        ids, self._to_ack = self._to_ack, []
        if not ids:
            return
        try:
            await self.redis.xack(self.stream, self.group, *ids)
            self.acked += len(ids)
        except Exception as exc:  # delivered again later, and the work is idempotent
            log.warning("could not acknowledge %d job(s): %s", len(ids), exc)

    # -- taking over ------------------------------------------------------------------------------

    async def _take_over(self) -> None:
        every_s = max(self.settings.claim_idle_s / 3, 0.05)
        while True:
            await asyncio.sleep(every_s)
            try:
                await self._keep_fresh()
                await self.claim_idle()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("taking over idle jobs failed: %s", exc,
                            exc_info=not is_infrastructure_error(exc) and "NOGROUP" not in str(exc))

    async def _keep_fresh(self) -> None:
        """Reset the idle time of the jobs in hand, so that no other worker takes them over."""
        if self.in_flight:
            await self.redis.xclaim(self.stream, self.group, self.name, 0, list(self.in_flight),
                                    justid=True)

    async def claim_idle(self) -> int:
        """Take over the jobs idle for ``claim_idle_s`` (their worker died, or their work failed and
        waits to be delivered again); how many were taken."""
        taken = 0
        start = "0-0"
        while True:
            # Taken over even when the reading places are all in use, and up to ``capacity`` beyond
            # what reading may hold: a killed worker leaves its chats' locks behind for the lock's time
            # to live, and the others' hands may fill with those chats' newer jobs, waiting for the
            # locks; the killed one's jobs must not wait for that too (they are the chats' oldest).
            # Never waiting for a place here either, which would stop this task from keeping the jobs
            # in hand fresh.
            room = self.most_in_hand + self.capacity - len(self.in_flight)
            if room <= 0:
                return taken
            reply = await self.redis.xautoclaim(self.stream, self.group, self.name, self.claim_idle_ms,
                                                start_id=start, count=min(room, 100))
            start, entries = reply[0], reply[1]
            for entry_id, fields in entries:
                if entry_id in self.in_flight:
                    continue
                deliveries = await self._deliveries(entry_id)
                await self._begin(entry_id, fields, deliveries=deliveries, beyond_room=True)
                taken += 1
            if start in ("0-0", b"0-0") or not entries:
                return taken

    async def _deliveries(self, entry_id: str) -> int:
        pending = await self.redis.xpending_range(self.stream, self.group, min=entry_id, max=entry_id, count=1)
        return int(pending[0]["times_delivered"]) if pending else 1
