"""Care through Zalo ZNS: a step reaches a customer no chat reaches with an approved template sent to
the order's phone (``connectors/zalo_zns.py`` speaks to Zalo).

ZNS is an *addressed* care channel (``helpdesk.care.service.register_address_channel``): its identity
is the order's phone in the form ZNS takes (channel ``zns``, external id ``84…``), tied to the order's
customer, so opting out, the already-sent check and the reports work as for chats. A send is claimed
and committed as ``sending``, sent over HTTP outside any transaction, and its answer recorded: sent
(with Zalo's msg_id), postponed (Zalo-side trouble, night), or refused, when the step falls back to the
next channel of ``CAREDESK_CARE__CHANNEL_ORDER``.

Receipts (``user_received_message``) mark the care message delivered; a rating on a service-rating
template, from the ``user_feedback`` event or the rating API (polled, since the event only comes to
apps subscribed to it), is stored as the order's delivery rating with its comment, and a rating of 1-3
opens the same follow-up a chat rating does: a conversation in the human queue (high priority for 1-2).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from anyio import to_thread
from sqlalchemy.engine import Engine
from sqlalchemy import update
from sqlmodel import Session, select

from connectors.zalo_oa import seconds_until_morning
from connectors.zalo_zns import (
    NIGHT_REFUSED,
    PHONE_INVALID,
    TOKEN_INVALID,
    USER_REFUSED,
    USER_UNREACHABLE,
    ZnsClient,
    ZnsError,
    ZnsRating,
    ZnsReceipt,
    ZnsSent,
    ZnsTemplate,
    parse_zns_event,
    template_data,
    template_problems,
    zns_phone,
)
from helpdesk.care.channels import (fall_back_to_next_channel, note_question_asked, record_send,
                                     register_address_channel)
from helpdesk.care.feedback import record_care_rating
from helpdesk.care.models import CareKind, CareMessage, CareStatus
from helpdesk.care.reminders import template_step
from helpdesk.care.service import MAX_LATENESS, AddressedCareMessage, CarePolicy, set_care_opt_out
from helpdesk.core.clock import Clock
from helpdesk.core.events import EventBus
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.customers.service import primary_customer
from helpdesk.shop.models import Order
from helpdesk.shop.service import identity_for_delivery

log = logging.getLogger(__name__)

ZNS = "zns"
#: a send Zalo could not make this time is tried again this much later
RETRY_AFTER = timedelta(minutes=10)
#: a send still ``sending`` this long after its claim was cut off (the HTTP call times out long before)
INTERRUPTED_AFTER = timedelta(minutes=15)
#: ratings are asked of the rating API this far back (a rating request is answered within a week)
RATING_LOOKBACK = timedelta(days=8)


def zns_identity_for_order(session: Session, order: Order) -> ChannelIdentity | None:
    """The order's phone as a ZNS identity of the order's customer; None without a mobile number."""
    try:
        phone = zns_phone(order.phone or "")
    except ValueError:
        return None
    return identity_for_delivery(session, order, ZNS, phone)


def zns_configured(settings: Any) -> bool:
    """Whether templates are mapped and the Zalo OA channel, whose token ZNS sends with, is configured
    (the same test as the OA connector's ``enabled``)."""
    oa = getattr(settings, "zalo_oa", None)
    has_oa = oa is not None and bool(oa.app_id and oa.oa_secret_key and (oa.access_token or oa.refresh_token))
    return settings.zns.enabled and has_oa


register_address_channel(ZNS, zns_identity_for_order, zns_configured)


class ZnsConfigurationError(ValueError):
    """The ZNS template mapping cannot work: a template is not approved, or needs what CareDesk lacks."""


@dataclass(eq=False)
class ZnsCare:
    """Sends care steps by ZNS and takes in what Zalo reports back."""

    engine: Engine
    client: ZnsClient
    policy: CarePolicy
    clock: Clock
    #: care step -> template id, and template parameter -> CareDesk value (CAREDESK_ZNS__*)
    mapping: dict[str, str]
    parameters: dict[str, str]
    events: EventBus | None = None
    #: the mapped templates as Zalo described them, once checked
    templates: dict[str, ZnsTemplate] = field(default_factory=dict)

    async def check_templates(self) -> dict[str, ZnsTemplate]:
        """Ask Zalo for each mapped template and refuse the mapping (ZnsConfigurationError, naming every
        problem) if one is not approved or needs a parameter CareDesk cannot fill."""
        found, problems = await check_mapping(self.client, self.mapping, self.parameters)
        if problems:
            raise ZnsConfigurationError("CAREDESK_ZNS__TEMPLATES cannot be used: " + "; ".join(problems))
        self.templates = found
        return found

    async def send(self, message: AddressedCareMessage) -> None:
        """Send one claimed care message and record Zalo's answer."""
        outcome: ZnsSent | ZnsError
        try:
            step = template_step(message.kind)
            template_id = self.mapping.get(step)
            if template_id is None:
                raise ZnsError(f"no ZNS template is mapped to the {step} step (CAREDESK_ZNS__TEMPLATES)",
                               code="unmapped")
            data = await self._template_data(message)
            outcome = await self.client.send_template(message.address, template_id, data,
                                                      tracking_id=f"care-{message.care_id}")
        except ZnsConfigurationError as error:
            outcome = ZnsError(str(error), code="configuration", configuration=True)
        except ZnsError as error:
            outcome = error
        await record_send(self.engine, message.care_id, outcome, record_zns_outcome, now=self.clock.now(),
                          policy=self.policy, channel="ZNS")

    async def _template_data(self, message: AddressedCareMessage) -> dict[str, str]:
        """The step's ``template_data``: its template's parameters, as checked with Zalo; when the template
        info cannot be had (the check at start and now could not ask Zalo), every value CareDesk has under
        its own name (and under the names CAREDESK_ZNS__PARAMETERS maps), for Zalo to take what it needs."""
        if not self.templates:
            try:
                await self.check_templates()
            except ZnsError as error:
                if error.code == TOKEN_INVALID:
                    raise  # the send would be refused for the same reason
                log.warning("could not read the ZNS templates (%s); sending with every value CareDesk has",
                            error.reason)
        template = self.templates.get(template_step(message.kind))
        if template is not None:
            return template_data(template, message.values, self.parameters)
        values = {name: value for name, value in message.values.items() if value}
        values.update({name: values[source] for name, source in self.parameters.items() if values.get(source)})
        return values

    async def take_event(self, event: ZnsReceipt | ZnsRating) -> str:
        """Record a receipt or a rating Zalo reported; what it was ("delivered", "delivery", "unknown"...)."""
        now = self.clock.now()

        def record() -> tuple[str, int | None, str | None]:
            with Session(self.engine) as session:
                if isinstance(event, ZnsReceipt):
                    result = ("delivered" if record_zns_receipt(session, event) else "unknown", None, None)
                else:
                    result = record_zns_rating(session, event, now)
                session.commit()
                return result

        outcome, conversation_id, priority = await to_thread.run_sync(record)
        if conversation_id is not None and self.events is not None:
            await self.events.publish("conversation_escalated", conversation_id=conversation_id,
                                      reason="low_rating", priority=priority)
        return outcome

    async def take_payload(self, payload: Any) -> None:
        """Record what a verified Zalo webhook event says about ZNS care, if anything (events of the OA
        itself pass by); a malformed ZNS event or a failure to record is logged, never raised, so the
        OA's own processing of the event goes on."""
        try:
            event = parse_zns_event(payload) if isinstance(payload, dict) else None
        except ValueError as error:  # e.g. an OA receipt naming several messages: the OA's own
            log.debug("not a ZNS event: %s", error)
            return
        try:
            if event is not None:
                await self.take_event(event)
        except Exception:
            log.warning("could not record a ZNS event from the OA webhook", exc_info=True)

    async def poll_ratings(self) -> int:
        """Take in the ratings given on the rating request's template lately; how many were new or changed."""
        template_id = self.mapping.get(CareKind.rating_request)
        if not template_id:
            return 0
        now = self.clock.now()
        taken = 0
        for rating in await self.client.ratings(template_id, now - RATING_LOOKBACK, now):
            if await self.take_event(rating) == "delivery":
                taken += 1
        return taken


async def check_mapping(
    client: ZnsClient, mapping: dict[str, str], parameters: dict[str, str],
) -> tuple[dict[str, ZnsTemplate], list[str]]:
    """The mapped templates as Zalo describes them, and what stops each from serving its step. Raises
    ZnsError only when Zalo cannot be asked now (retryable)."""
    problems: list[str] = []
    found: dict[str, ZnsTemplate] = {}
    for step, template_id in mapping.items():
        try:
            template = await client.template_info(template_id)
        except ZnsError as error:
            if error.retryable or error.code == TOKEN_INVALID:
                raise  # Zalo cannot be asked now, which says nothing about the mapping
            problems.append(f"{step}: template {template_id}: {error.reason}")
            continue
        problems += template_problems(step, template, parameters)
        found[step] = template
    return found, problems


# -- recording, in the caller's transaction ----------------------------------------------------------


def record_zns_outcome(
    session: Session, care_id: int, outcome: ZnsSent | ZnsError, *, now: datetime, policy: CarePolicy,
) -> CareMessage | None:
    """Record what Zalo answered to a send: sent, postponed, or refused (falling back to the next channel)."""
    care = session.get(CareMessage, care_id)
    if care is None or care.status != CareStatus.sending:
        return None
    identity = session.get(ChannelIdentity, care.identity_id)
    order = session.get(Order, care.order_id)
    care.updated_at = now
    if isinstance(outcome, ZnsSent):
        care.status, care.reason, care.sent_at, care.external_id = CareStatus.sent, None, now, outcome.msg_id
        note_question_asked(session, care, identity, order, now)
    elif outcome.retryable and now - care.planned_at <= MAX_LATENESS:
        wait = (timedelta(seconds=seconds_until_morning(now)) if outcome.code == NIGHT_REFUSED
                else timedelta(seconds=outcome.retry_after) if outcome.retry_after else RETRY_AFTER)
        care.status, care.reason = CareStatus.scheduled, f"postponed: {outcome.reason}"[:500]
        care.due_at = policy.first_allowed(now + wait)
    elif outcome.code == USER_REFUSED:  # the customer's own "no": every channel stops, nothing falls back
        customer = primary_customer(session, session.get(Customer, identity.customer_id))
        set_care_opt_out(session, customer, True, now)
        identity.reachable, identity.unreachable_reason = False, outcome.reason[:500]
        session.add(identity)
        care.status = CareStatus.cancelled
        care.reason = f"{outcome.reason}; taken as an opt-out: care stopped on every channel"[:500]
    else:
        reason = outcome.reason
        if outcome.code in USER_UNREACHABLE or outcome.code in (PHONE_INVALID, "phone_invalid"):
            identity.reachable, identity.unreachable_reason = False, outcome.reason[:500]
            session.add(identity)
        if outcome.falls_back:
            reason += fall_back_to_next_channel(session, care, order, identity, policy.channels, now,
                                                policy.first_allowed(now))
        care.status, care.reason = CareStatus.skipped, reason[:500]
    session.add(care)
    session.flush()
    return care


def settle_interrupted_sends(session: Session, now: datetime) -> int:
    """Close the care messages left ``sending`` by a process that stopped between claiming them and
    recording Zalo's answer; how many. Zalo may have sent them, and ZNS has no idempotency key, so they
    are not sent again (a second thank-you, charged twice, is worse than none): skipped, saying why."""
    result = session.exec(
        update(CareMessage)
        .where(CareMessage.status == CareStatus.sending, CareMessage.updated_at < now - INTERRUPTED_AFTER)
        .values(status=CareStatus.skipped, updated_at=now,
                reason="outcome unknown: the process stopped while sending it; not sent again, to avoid a "
                       "duplicate")
    )
    return result.rowcount or 0


def _care_of(session: Session, msg_id: str, tracking_id: str | None = None) -> CareMessage | None:
    care = session.exec(select(CareMessage).where(CareMessage.external_id == msg_id)).first() if msg_id else None
    if care is None and tracking_id and tracking_id.startswith("care-") and tracking_id[5:].isdigit():
        care = session.get(CareMessage, int(tracking_id[5:]))
    return care


#: other senders of ZNS messages (campaigns) that take the receipts of theirs: whether it was one
RECEIPT_READERS: list[Callable[[Session, ZnsReceipt], bool]] = []


def record_zns_receipt(session: Session, receipt: ZnsReceipt) -> bool:
    """Mark the care message Zalo delivered; whether it is one of CareDesk's."""
    care = _care_of(session, receipt.msg_id)
    if care is None:
        return any(read(session, receipt) for read in RECEIPT_READERS)
    if care.status in (CareStatus.sent, CareStatus.sending):
        care.status = CareStatus.delivered
    care.delivered_at = care.delivered_at or receipt.delivered_at
    session.add(care)
    return True


def record_zns_rating(session: Session, rating: ZnsRating, now: datetime) -> tuple[str, int | None, str | None]:
    """Store a rating given on a ZNS template as the order's delivery rating, with its comment; a rating of
    1-3 that is new or changed opens a follow-up conversation in the human queue. Returns (what it was,
    the escalated conversation's id, its priority)."""
    care = _care_of(session, rating.msg_id, rating.tracking_id)
    if care is None:
        log.info("a ZNS rating of message %s that CareDesk did not send; ignored", rating.msg_id)
        return "unknown", None, None
    return record_care_rating(session, care, rating.stars, rating.comment, now, "ZNS")
