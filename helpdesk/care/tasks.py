"""The periodic care task: send every care message that is due, exactly once, through the outbox."""

from __future__ import annotations

import logging
import weakref
from datetime import datetime
from typing import TYPE_CHECKING

from anyio import to_thread
from sqlmodel import Session

from helpdesk.care import service
from helpdesk.care.composer import CareComposer
from helpdesk.care.service import CarePolicy, ChannelAbilities, QueuedCareMessage
from helpdesk.channels.tasks import drain_chat_soon
from helpdesk.jobs.scheduler import Scheduler

if TYPE_CHECKING:
    from helpdesk.runtime import Runtime

log = logging.getLogger(__name__)

#: the periodic work registered here
CARE_CHECK = "care check"
#: worker key the immediate care runs queue under, so they run one after another in a process
CARE_JOB_KEY = "care:due"


def care_policy(runtime: Runtime) -> CarePolicy:
    """The care timing of this runtime's settings."""
    return CarePolicy.from_settings(runtime.settings)


def care_composer(runtime: Runtime) -> CareComposer:
    """Renders care messages with the bot's templates and FAQ."""
    return CareComposer(runtime.bot.responses, runtime.bot.knowledge, runtime.settings.shop.name)


def channel_abilities(runtime: Runtime) -> ChannelAbilities:
    """Which channels are on, and which of them show buttons."""
    return ChannelAbilities(
        configured=frozenset(runtime.connectors),
        with_buttons=frozenset(name for name, connector in runtime.connectors.items()
                               if connector.supports_buttons),
    )


async def run_due_care_messages(runtime: Runtime, now: datetime | None = None) -> int:
    """Send the care messages due by ``now`` (default: the runtime's clock); how many went to the outbox.

    Safe to run in several workers at once: each message is claimed in its own transaction.
    """
    now = now or runtime.clock()
    policy, composer, channels = care_policy(runtime), care_composer(runtime), channel_abilities(runtime)

    def due() -> list[int]:
        with Session(runtime.engine) as session:
            return service.due_care_message_ids(session, now)

    def send(care_id: int) -> QueuedCareMessage | None:
        with Session(runtime.engine, expire_on_commit=False) as session:
            queued = service.send_care_message(session, care_id, now=now, policy=policy, composer=composer,
                                               channels=channels)
            session.commit()
            return queued

    sent = 0
    for care_id in await to_thread.run_sync(due):
        try:
            queued = await to_thread.run_sync(send, care_id)
        except Exception:  # one broken row must not hold back the others; it stays scheduled
            log.exception("sending care message %s failed", care_id)
            continue
        if queued is None:
            continue
        sent += 1
        await _deliver(runtime, queued)
    return sent


async def _deliver(runtime: Runtime, queued: QueuedCareMessage) -> None:
    events = getattr(runtime, "events", None)
    if events is not None:
        await events.publish("message_created", conversation_id=queued.conversation_id,
                             message_id=queued.message_id, author="bot", care_message_id=queued.care_id)
    if runtime.worker is not None:
        drain_chat_soon(runtime.worker, queued.channel, queued.recipient_id)
    else:  # a runtime without a worker (a script): send in line
        await runtime.outbox.drain(queued.channel, queued.recipient_id)


#: runtimes with an early care run queued and not yet started: calls meanwhile need no run of their own
_QUEUED: weakref.WeakSet[Runtime] = weakref.WeakSet()


def send_due_care_soon(runtime: Runtime) -> None:
    """Run the care task now in the background rather than at the next tick; any number of calls before
    the run starts share it (call on the event loop)."""
    if runtime.worker is None or runtime in _QUEUED:
        return
    _QUEUED.add(runtime)

    async def run() -> None:
        _QUEUED.discard(runtime)  # what is scheduled from here on needs a run of its own
        await _run_logged(runtime)

    runtime.worker.submit(CARE_JOB_KEY, run)


async def _run_logged(runtime: Runtime) -> None:
    sent = await run_due_care_messages(runtime)
    if sent:
        log.info("sent %d care message(s)", sent)


def schedule_care_check(scheduler: Scheduler, runtime: Runtime) -> None:
    """Send the due care messages every ``CAREDESK_CARE__CHECK_INTERVAL_S``; the first check waits one
    interval, so tests can install their clock first."""
    scheduler.add(CARE_CHECK, lambda: run_due_care_messages(runtime),
                  every_s=lambda: runtime.settings.care.check_interval_s)
