"""The NPS survey after a resolved conversation (``CAREDESK_CARE__NPS_AFTER_RESOLVED``, off by default).

One survey per resolution at most, and never two questions with numbers at once: a conversation a
person helped with gets the CSAT request (1–5 stars) instead, so only conversations resolved without
one get the NPS question. The other care rules hold: not to customers who opted out or cannot be
reached, not in quiet hours, not to a customer surveyed within 90 days. Like the CSAT request it is a
transaction of its own, after the resolve committed.
"""

from __future__ import annotations

from anyio import to_thread
from sqlmodel import Session

from helpdesk.care.service import CarePolicy
from helpdesk.channels.tasks import announce_and_send
from helpdesk.conversations import service as conversations
from helpdesk.conversations.models import Conversation, ConversationState, DeliveryStatus, MessageAuthor
from helpdesk.core.events import DomainEvent
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.customers.service import primary_customer
from helpdesk.nps import service
from helpdesk.outbox.models import OutboxItem
from helpdesk.outbox.queue import queue_outbound
from helpdesk.ratings.listeners import CsatRequester


def _ask(csat: CsatRequester, settings, buttons: frozenset[str], conversation_id: int) -> OutboxItem | None:
    with Session(csat.engine, expire_on_commit=False) as session:
        conversation = session.get(Conversation, conversation_id)
        if conversation is None or conversation.state != ConversationState.resolved \
                or conversation.escalated_at is not None:  # reopened, or the CSAT request goes instead
            return None
        identity = session.get(ChannelIdentity, conversation.identity_id)
        customer = primary_customer(session, session.get(Customer, conversation.customer_id))
        now = csat.clock.now()
        if identity is None or not identity.reachable or customer.care_opted_out \
                or CarePolicy.from_settings(settings).is_quiet(now) or service.recently_surveyed(session, customer, now):
            return None
        locale = customer.locale or "vi"
        greeting = csat.responses.render("care_greeting_named", locale, name=customer.name.strip()) \
            if customer.name and customer.name.strip() else csat.responses.render("care_greeting", locale)
        text = csat.responses.render("care_nps", locale, shop=settings.shop.name, greeting=greeting)
        survey = service.ask(session, customer, identity, now, conversation_id=conversation.id, trigger="resolved")
        outbound = service.survey_message(survey, identity.external_id, text, buttons=identity.channel in buttons)
        message = conversations.add_message(session, conversation, direction="out", author=MessageAuthor.bot,
                                            text=text, delivery_status=DeliveryStatus.pending)
        item = queue_outbound(session, conversation, message, outbound.model_dump(mode="json"), identity.external_id)
        session.commit()
        return item


def register_nps_listeners(csat: CsatRequester, settings, buttons: frozenset[str]) -> None:
    """When the setting is on, survey the customer of a conversation resolved without a CSAT request;
    ``buttons`` are the channels that show one-tap answers."""
    if not settings.care.nps_after_resolved:
        return

    async def ask(conversation_id: int) -> None:
        item = await to_thread.run_sync(_ask, csat, settings, buttons, conversation_id)
        if item is not None:
            await announce_and_send(csat.events, csat.jobs, item, conversation_id)

    async def nps_when_resolved(event: DomainEvent) -> None:
        conversation_id = event.data.get("conversation_id")
        if event.data.get("action") != "resolved" or conversation_id is None:
            return
        if csat.jobs is None:
            await ask(int(conversation_id))
            return
        csat.jobs.submit(f"nps:{conversation_id}", lambda: ask(int(conversation_id)))

    csat.events.on("conversation_updated")(nps_when_resolved)
