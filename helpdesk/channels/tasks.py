"""The channels' background work: processing stored inbound events, sending a chat's outbox, and
the periodic sweeps that take up what no job did.

Events of one sender are processed one at a time in arrival order (the runner's key is the chat), so
replies keep their order; different senders run concurrently up to the runner's limit. The jobs
are named with plain JSON arguments, so the serving process can hand them to a worker process
(``helpdesk.jobs.remote``); whichever process runs them registers the handlers here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from anyio import to_thread
from sqlmodel import Session

from helpdesk.channels import service as channels
from helpdesk.conversations.flows import ConversationFlow, process_chat_events
from helpdesk.core.errors import is_infrastructure_error
from helpdesk.core.events import EventBus
from helpdesk.core.logs import current_job
from helpdesk.jobs.runner import JobQueue, JobRunner
from helpdesk.jobs.scheduler import Scheduler
from helpdesk.outbox.models import OutboxItem

log = logging.getLogger(__name__)

#: job names (their arguments in the functions that dispatch them)
INBOUND_EVENT = "inbound_event"
TYPING_OFF = "typing_off"
DRAIN_CHAT = "drain_chat"
SWEEP_EVENTS = "sweep_events"

#: names of the periodic work registered here
OUTBOX_PUMP = "outbox retry pump"
STRAY_SWEEP = "stray event sweep"

#: a stored event still unprocessed after this long was not handed to any worker (or its worker died)
STRAY_EVENT_AGE_S = 30.0
STRAY_SWEEP_INTERVAL_S = 10.0
#: strays from this many on are a backlog (a long Redis outage, a downtime): handed to every worker
#: through the jobs stream when there is one, rather than all run by the worker that swept them
SPREAD_AT_LEAST = 20
#: a stray handed out is not handed out again for this long (it waits in the stream meanwhile)
SPREAD_AGAIN_S = 120.0

#: hands named jobs ``(name, args)`` to every worker (``helpdesk.jobs.streams.StreamPublisher.add_jobs``)
Spread = Callable[[list[tuple[str, dict[str, Any]]]], Awaitable[None]]


def chat_key(channel: str, recipient_id: str) -> str:
    """The runner key of one chat: its jobs run one at a time, in order."""
    return f"{channel}:{recipient_id}"


def process_event_soon(jobs: JobQueue, event_id: int, channel: str, sender_id: str, *,
                       typing_off: bool = False) -> None:
    """Process a stored inbound event in the background, after the chat's older events still
    waiting; ``typing_off`` then hides the channel's typing indicator (once the replies are out).
    Callable from any thread."""
    jobs.dispatch(INBOUND_EVENT, event_id=event_id, channel=channel, sender_id=sender_id)
    if typing_off:
        jobs.dispatch(TYPING_OFF, channel=channel, recipient_id=sender_id)


def drain_chat_soon(jobs: JobQueue, channel: str, recipient_id: str) -> None:
    """Send the chat's pending messages in the background, in order (callable from any thread)."""
    jobs.dispatch(DRAIN_CHAT, channel=channel, recipient_id=recipient_id)


async def announce_and_send(events: EventBus, jobs: JobQueue | None, item: OutboxItem, conversation_id: int) -> None:
    """A bot message queued outside a turn (a hand-back notice, a survey): tell the live views it is
    there, and start sending it (in line with the chat's other messages)."""
    await events.publish("message_created", conversation_id=conversation_id, message_id=item.message_id,
                         author="bot")
    if jobs is not None:
        drain_chat_soon(jobs, item.channel, item.recipient_id)


class ChannelJobs:
    """The channels' jobs in the process that runs them: conversation turns through ``flow`` (which
    holds the database, the channels and the outbox too)."""

    def __init__(self, flow: ConversationFlow, runner: JobRunner, spread: Spread | None = None):
        self.flow = flow
        self.runner = runner
        #: hands a backlog of strays to every worker (None: this process runs what it sweeps)
        self.spread = spread
        #: strays handed out → when (``time.monotonic``), so a later sweep does not hand them out again
        self._spread_at: dict[int, float] = {}
        self._draining: set[str] = set()
        #: stored events submitted here and not finished yet (the stray sweep skips them)
        self._queued_events: set[int] = set()
        #: every stored event up to this id is settled: the stray sweep looks above it
        self._swept_through = 0
        #: every waiting event is to be taken up at the next sweep, however young
        self.catch_up = False

    def register(self) -> None:
        """Register the handlers of the channels' named jobs with the runner."""
        self.runner.register(INBOUND_EVENT, lambda args: self.submit_event(
            int(args["event_id"]), args["channel"], args["sender_id"]))
        self.runner.register(TYPING_OFF, lambda args: self._submit_typing_off(args["channel"], args["recipient_id"]))
        self.runner.register(DRAIN_CHAT, lambda args: self.submit_drain(args["channel"], args["recipient_id"]))
        self.runner.register(SWEEP_EVENTS, lambda _args: self.sweep_soon())

    # -- handlers -------------------------------------------------------------------------------

    def submit_event(self, event_id: int, channel: str, sender_id: str) -> None:
        """Process a stored inbound event on the runner, after the chat's jobs already queued."""
        self._queued_events.add(event_id)

        async def job() -> None:
            # The sweep's floor skips the chat's settled past, never the event this job is for: had
            # the floor passed it (an event whose commit lagged behind a younger one's), it would wait
            # in the ledger for ever, its own job having looked above it.
            floor = min(self._swept_through, event_id - 1)
            try:
                await process_chat_events(self.flow, channel, sender_id, event_id, floor=floor)
            finally:
                self._queued_events.discard(event_id)

        # named as a dispatched one is, also when the stray sweep submits it (logs and metrics)
        token = current_job.set(INBOUND_EVENT)
        try:
            self.runner.submit(chat_key(channel, sender_id), job)
        finally:
            current_job.reset(token)

    def _submit_typing_off(self, channel: str, recipient_id: str) -> None:
        self.runner.submit(chat_key(channel, recipient_id), lambda: self._typing_off(channel, recipient_id))

    async def _typing_off(self, channel: str, recipient_id: str) -> None:
        connector = self.flow.connectors.get(channel)
        if connector is None:
            return
        try:
            await connector.typing_off(recipient_id)
        except Exception as exc:  # the widget also hides the indicator on its own after a while
            log.warning("could not hide the %s typing indicator: %s", channel, exc)

    def submit_drain(self, channel: str, recipient_id: str) -> None:
        """Send the chat's pending messages on the runner, in order."""
        key = chat_key(channel, recipient_id)
        if key in self._draining:
            return  # a drain for this chat is queued and will see the new item too
        self._draining.add(key)

        async def job() -> None:
            self._draining.discard(key)  # from here on, new items need a new drain
            await self.flow.outbox.drain(channel, recipient_id)

        self.runner.submit(key, job)

    # -- periodic work --------------------------------------------------------------------------

    async def pump_outbox(self) -> int:
        """Start a drain for every chat with a due outbox retry; how many chats."""
        due = await to_thread.run_sync(self.flow.outbox.due_chats)
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
            if not await self._spread(strays):
                for event_id, channel, sender_id in strays:
                    self.submit_event(event_id, channel, sender_id)
            submitted += len(strays)
            if len(pending) < channels.PENDING_PAGE:
                break
            # a backlog (after downtime) is taken up whole, page after page, not a page a sweep
            pending, _ = await to_thread.run_sync(load, pending[-1].id)
        return submitted

    async def _spread(self, strays: list[channels.PendingEvent]) -> bool:
        """Hand a backlog of strays to every worker through the jobs stream; False if this process is
        to run them (few of them, no stream, or the stream is away)."""
        if self.spread is None or len(strays) < SPREAD_AT_LEAST:
            return False
        now = time.monotonic()
        self._spread_at = {event_id: at for event_id, at in self._spread_at.items() if now - at < SPREAD_AGAIN_S}
        fresh = [event for event in strays if event.id not in self._spread_at]
        try:
            await self.spread([(INBOUND_EVENT, {"event_id": event.id, "channel": event.channel,
                                                "sender_id": event.sender_id}) for event in fresh])
        except Exception as exc:
            if not is_infrastructure_error(exc):
                raise
            log.warning("could not hand %d stray events to the workers (%s); running them here", len(fresh), exc)
            return False
        self._spread_at.update((event.id, now) for event in fresh)
        log.info("handed %d stray events to the workers", len(fresh))
        return True

    def sweep_soon(self) -> None:
        """Take up every waiting event now (a server restarted, and jobs it made may be lost)."""
        self.runner.submit("sweep", lambda: self.sweep_stray_events(older_than_s=0.0))

    async def catch_up_now(self) -> None:
        """Take up every waiting event (jobs published while the subscription was away are lost)."""
        await self.sweep_stray_events(older_than_s=0.0)

    async def sweep_at_start(self) -> None:
        """Resume events left unprocessed by a previous run; if the database is away, the periodic
        sweep takes them up (however young) as soon as it can."""
        try:
            await self.sweep_stray_events(older_than_s=0.0)
        except Exception as exc:
            if not is_infrastructure_error(exc):
                raise
            log.warning("could not look for waiting events at start (%s); the periodic sweep will", exc)
            self.catch_up = True

    async def sweep_periodically(self) -> None:
        """The periodic sweep: events older than a worker takes (all of them when catching up)."""
        try:
            await self.sweep_stray_events(older_than_s=0.0 if self.catch_up else STRAY_EVENT_AGE_S)
            self.catch_up = False
        except Exception as exc:
            log.warning("sweeping stray events failed: %s", exc, exc_info=not is_infrastructure_error(exc))


def register_channel_jobs(flow: ConversationFlow, runner: JobRunner, spread: Spread | None = None) -> ChannelJobs:
    """Have ``runner`` run the channels' named jobs; the jobs' state, for the periodic work. ``spread``:
    how a backlog of stray events reaches every worker (the jobs stream of a worker replica)."""
    jobs = ChannelJobs(flow, runner, spread)
    jobs.register()
    return jobs


def schedule_outbox_pump(scheduler: Scheduler, jobs: ChannelJobs) -> None:
    """Drain the chats with a due outbox retry at every turn of the scheduler (its ``tick_s``, the
    outbox's pump interval; in one worker replica per turn), the first at once."""
    scheduler.add(OUTBOX_PUMP, jobs.pump_outbox, every_s=0.0, first_after_s=0.0, shared=True)


def schedule_stray_sweep(scheduler: Scheduler, jobs: ChannelJobs) -> None:
    """Sweep up stray events every ``STRAY_SWEEP_INTERVAL_S`` (in one worker replica per interval), and
    at once while catching up after a failed start-up sweep (until one succeeds)."""

    async def sweep() -> None:
        await jobs.sweep_periodically()
        if jobs.catch_up:
            scheduler.run_soon(STRAY_SWEEP)

    scheduler.add(STRAY_SWEEP, sweep, every_s=STRAY_SWEEP_INTERVAL_S, shared=True)
    if jobs.catch_up:
        scheduler.run_soon(STRAY_SWEEP)
