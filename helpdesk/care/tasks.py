"""The periodic care task: send every care message that is due, exactly once, through the outbox."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from anyio import to_thread
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot import ConversationEngine
from connectors import ChannelConnector
from helpdesk.care import service
from helpdesk.care.composer import CareComposer
from helpdesk.care.mail import EmailCare
from helpdesk.care.service import AddressedCareMessage, CarePolicy, ChannelAbilities, QueuedCareMessage
from helpdesk.care.zns import ZnsCare, settle_interrupted_sends
from helpdesk.care.zns_mapping import apply_saved_mapping, mapping_store
from helpdesk.channels.tasks import drain_chat_soon
from helpdesk.core.aio import send_each_due
from helpdesk.core.clock import Clock
from helpdesk.core.config import Settings
from helpdesk.core.events import EventBus
from helpdesk.jobs.runner import JobQueue
from helpdesk.jobs.scheduler import Scheduler
from helpdesk.outbox.service import Outbox

log = logging.getLogger(__name__)

#: the periodic work registered here
CARE_CHECK = "care check"
ZNS_RATING_POLL = "zns rating poll"
#: worker key the immediate care runs queue under, so they run one after another in a process
CARE_JOB_KEY = "care:due"


@dataclass(eq=False)
class CareSender:
    """What sending the due care messages needs. ``jobs`` is the process's job runner once it runs
    (None: a script, which sends in line through ``outbox``)."""

    engine: Engine
    settings: Settings
    #: the bot's templates and FAQ, read at each run (the training loop swaps the FAQ)
    bot: ConversationEngine
    connectors: Mapping[str, ChannelConnector]
    events: EventBus | None
    clock: Clock
    outbox: Outbox
    jobs: JobQueue | None = None
    #: the ZNS care channel, when templates are mapped and the Zalo OA channel gives it a token
    zns: ZnsCare | None = None
    #: the email care channel, when an SMTP server and a sender are set
    email: EmailCare | None = None


def care_policy(settings: Settings) -> CarePolicy:
    """The care timing of these settings."""
    return CarePolicy.from_settings(settings)


def care_composer(bot: ConversationEngine, settings: Settings) -> CareComposer:
    """Renders care messages with the bot's templates and FAQ."""
    return CareComposer(bot.responses, bot.knowledge, settings.shop.name,
                        timezone=care_policy(settings).timezone)


def channel_abilities(connectors: Mapping[str, ChannelConnector], addressed: frozenset[str] = frozenset(),
                      ) -> ChannelAbilities:
    """Which channels are on (chats, and ``addressed`` ones such as ZNS), and which chats show buttons."""
    return ChannelAbilities(
        configured=frozenset(connectors) | addressed,
        with_buttons=frozenset(name for name, connector in connectors.items()
                               if connector.supports_buttons),
    )


async def run_due_care_messages(care: CareSender, now: datetime | None = None) -> int:
    """Send the care messages due by ``now`` (default: the care clock's time); how many went to the outbox.

    Safe to run in several workers at once: each message is claimed in its own transaction.
    """
    now = now or care.clock.now()
    policy = care_policy(care.settings)
    addressed = frozenset(name for name, channel in (("zns", care.zns), ("email", care.email)) if channel is not None)
    composer, channels = care_composer(care.bot, care.settings), channel_abilities(care.connectors, addressed)

    if care.zns is not None:  # an admin may have saved another template mapping (in another replica)
        try:
            await apply_saved_mapping(care.zns, mapping_store(care.engine, care.settings))
        except Exception:
            log.warning("could not read the saved ZNS template mapping", exc_info=True)

    def due() -> list[int]:
        with Session(care.engine) as session:
            if addressed and settle_interrupted_sends(session, now):
                session.commit()
            return service.due_care_message_ids(session, now)

    def send(care_id: int) -> QueuedCareMessage | AddressedCareMessage | None:
        with Session(care.engine, expire_on_commit=False) as session:
            queued = service.send_care_message(session, care_id, now=now, policy=policy, composer=composer,
                                               channels=channels)
            session.commit()
            return queued

    async def deliver(queued: QueuedCareMessage | AddressedCareMessage) -> None:
        if isinstance(queued, AddressedCareMessage):
            await (care.email if queued.channel == "email" else care.zns).send(queued)
        else:
            await _deliver(care, queued)

    return await send_each_due(await to_thread.run_sync(due), send, deliver, "care message", log)


async def _deliver(care: CareSender, queued: QueuedCareMessage) -> None:
    events = care.events
    if events is not None:
        await events.publish("message_created", conversation_id=queued.conversation_id,
                             message_id=queued.message_id, author="bot", care_message_id=queued.care_id)
    if care.jobs is not None:
        drain_chat_soon(care.jobs, queued.channel, queued.recipient_id)
    else:  # no job runner (a script): send in line
        await care.outbox.drain(queued.channel, queued.recipient_id)


#: senders with an early care run queued and not yet started: calls meanwhile need no run of their own
_QUEUED: weakref.WeakSet[CareSender] = weakref.WeakSet()


def send_due_care_soon(care: CareSender) -> None:
    """Run the care task now in the background rather than at the next tick; any number of calls before
    the run starts share it (call on the event loop)."""
    if care.jobs is None or care in _QUEUED:
        return
    _QUEUED.add(care)

    async def run() -> None:
        _QUEUED.discard(care)  # what is scheduled from here on needs a run of its own
        await _run_logged(care)

    care.jobs.submit(CARE_JOB_KEY, run)


async def _run_logged(care: CareSender) -> None:
    sent = await run_due_care_messages(care)
    if sent:
        log.info("sent %d care message(s)", sent)


def schedule_zns_rating_poll(scheduler: Scheduler, care: CareSender) -> None:
    """Ask Zalo's rating API for ratings given on ZNS rating templates every
    ``CAREDESK_ZNS__RATING_POLL_INTERVAL_S`` (in one replica), where no webhook event brings them."""
    zns, interval = care.zns, care.settings.zns.rating_poll_interval_s
    if zns is None or interval <= 0 or not zns.mapping.get("rating_request"):
        return

    async def poll() -> None:
        try:
            taken = await zns.poll_ratings()
        except Exception:  # Zalo away: the next poll asks again for the same period
            log.warning("polling ZNS ratings failed", exc_info=True)
            return
        if taken:
            log.info("took in %d ZNS rating(s)", taken)

    scheduler.add(ZNS_RATING_POLL, poll, every_s=lambda: interval, shared=True)


def schedule_care_check(scheduler: Scheduler, care: CareSender) -> None:
    """Send the due care messages every ``CAREDESK_CARE__CHECK_INTERVAL_S`` (in one worker replica per
    interval); the first check waits one interval, so tests can install their clock first."""
    scheduler.add(CARE_CHECK, lambda: run_due_care_messages(care),
                  every_s=lambda: care.settings.care.check_interval_s, shared=True)
