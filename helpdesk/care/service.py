"""After-delivery care: its policy (delays, quiet hours, time zone), scheduling the care sequence
per channel identity, and deciding at send time whether a message may go. Marking orders delivered
and importing them is the shop's (``helpdesk/shop/``), ratings are ``helpdesk/ratings/``'s, and
what the messages say is ``helpdesk/care/composer.py``'s.

The sequence is data, not timers: one ``care_messages`` row per (order, identity, step) with the
time it is due. A periodic task (``helpdesk/care/tasks.py``) sends what is due. Nothing here talks
HTTP or commits; callers own the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.responses import Responses
from connectors import CONNECTORS
from helpdesk.audit import service as audit
from helpdesk.care.channels import (
    ADDRESSES,
    addressed_identity,
    channel_configured,
    care_channel_of,
    fall_back_to_next_channel,
    order_opted_out,
)
from helpdesk.care.composer import CareComposer
from helpdesk.care.models import CareKind, CareMessage, CarePlan, CareStatus
from helpdesk.care.reminders import reminder_gone, schedule_reminders
from helpdesk.conversations import service as conversations
from helpdesk.conversations.models import HUMAN_STATES, OPEN_STATES, Conversation, DeliveryStatus, MessageAuthor
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.customers.service import primary_customer
from helpdesk.nps import service as nps
from helpdesk.outbox.queue import queue_outbound
from helpdesk.ratings.service import has_rated_order, request_rating
from helpdesk.shop.models import Order, OrderStatus
from helpdesk.shop.service import order_customer_ids
from helpdesk.sla.clock import BusinessClock, DailyWindow

#: the steps in the order they go out
SEQUENCE = (CareKind.thank_you, CareKind.rating_request, CareKind.usage_tips, CareKind.check_in, CareKind.nps)
#: how late a message may still go; later than this it would read as spam, not care
MAX_LATENESS = timedelta(days=2)
#: while a person talks with the customer the bot keeps quiet; care waits this long and looks again
HUMAN_OWNED_RETRY = timedelta(minutes=30)
_CLAIMED = "sending"  # only ever visible inside the claiming transaction


# -- policy: delays, quiet hours, time zone ----------------------------------------------------------


@dataclass(frozen=True)
class CarePolicy:
    """When each step goes out and when nothing may go out, from the settings."""

    delays: dict[str, timedelta]
    #: a daily window in shop time (``helpdesk.sla.clock``), or None for no quiet hours
    quiet_hours: DailyWindow | None
    timezone: tzinfo
    #: the care channels in the order a step tries them, those this process can use (see CHANNEL_ORDER)
    channels: tuple[str, ...] = ("chat",)

    @classmethod
    def from_settings(cls, settings: Any) -> CarePolicy:
        """Read ``CAREDESK_CARE__*`` and ``CAREDESK_SHOP__TIMEZONE``; a bad value fails loudly."""
        care = settings.care
        try:
            zone = ZoneInfo(settings.shop.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"CAREDESK_SHOP__TIMEZONE: unknown time zone {settings.shop.timezone!r}") \
                from exc
        return cls(
            delays={
                CareKind.thank_you: timedelta(0),
                CareKind.rating_request: timedelta(seconds=care.rating_delay_s),
                CareKind.usage_tips: timedelta(seconds=care.usage_tips_delay_s),
                CareKind.check_in: timedelta(seconds=care.check_in_delay_s),
                # a step left out of the delays is not part of the sequence
                **({CareKind.nps: timedelta(days=care.nps_day)} if care.nps_after_delivery else {}),
            },
            quiet_hours=_quiet_hours(care.quiet_hours, zone),
            timezone=zone,
            channels=tuple(name for name in dict.fromkeys(care.channel_order)
                           if name == "chat" or (name in ADDRESSES and channel_configured(settings, name))),
        )

    def is_quiet(self, moment: datetime) -> bool:
        """Whether ``moment`` falls in quiet hours, shop time."""
        return self.quiet_hours is not None and self.quiet_hours.contains(moment)

    def first_allowed(self, moment: datetime) -> datetime:
        """``moment``, or the end of the quiet hours it falls in (postponed, never dropped)."""
        return moment if self.quiet_hours is None else self.quiet_hours.first_moment_outside(moment)

    def local(self, moment: datetime) -> datetime:
        """``moment`` in the shop's time zone."""
        return moment.astimezone(self.timezone)

    @property
    def horizon(self) -> timedelta:
        """How long after delivery a plan can still produce a message."""
        return max(self.delays.values()) + MAX_LATENESS


def _quiet_hours(value: str, zone: tzinfo) -> DailyWindow | None:
    try:
        return DailyWindow.parse(value, zone)
    except ValueError as exc:
        raise ValueError(f"quiet hours must look like 21:00-08:00, got {value!r}") from exc


# -- scheduling --------------------------------------------------------------------------------------



def care_identities(
    session: Session, order: Order, extra: Iterable[ChannelIdentity] = (),
) -> list[ChannelIdentity]:
    """Who the order's care reaches by chat: identities of customers who verified the order's phone, of
    the order's customer, and any named explicitly; never those of customers who opted out. Identities
    of addressed channels (ZNS) are not among them: a step reaches those only when no chat does."""
    customer_ids = order_customer_ids(session, order)
    identities: dict[int, ChannelIdentity] = {}
    if customer_ids:
        found = session.exec(
            select(ChannelIdentity).where(col(ChannelIdentity.customer_id).in_(customer_ids)))
        identities = {identity.id: identity for identity in found.all()}
    for identity in extra:
        identities.setdefault(identity.id, identity)
    reachable = []
    for identity in sorted(identities.values(), key=lambda i: i.id):
        if identity.channel in ADDRESSES:
            continue
        if not primary_customer(session, session.get(Customer, identity.customer_id)).care_opted_out:
            reachable.append(identity)
    return reachable


def ensure_care_plan(session: Session, order: Order) -> CarePlan:
    """The order's care plan, created on its first delivery (unique per order)."""
    plan = session.exec(select(CarePlan).where(CarePlan.order_id == order.id)).first()
    if plan is not None:
        return plan
    try:
        with session.begin_nested():  # a concurrent duplicate undoes only this insert
            plan = CarePlan(order_id=order.id, delivered_at=order.delivered_at)
            session.add(plan)
            session.flush()
    except IntegrityError:
        plan = session.exec(select(CarePlan).where(CarePlan.order_id == order.id)).one()
    return plan


def schedule_care_sequence(
    session: Session, order: Order, *, policy: CarePolicy, now: datetime,
    identities: Iterable[ChannelIdentity] = (),
) -> int:
    """Attach the order's care sequence to every identity that can be reached; how many rows were added.

    The first channel of the policy's order that reaches the customer takes the sequence: "chat" (every
    linked chat), or an addressed one (ZNS to the order's phone). With none, the plan waits:
    ``attach_pending_care`` adds chats later.
    """
    plan = ensure_care_plan(session, order)
    added = 0
    reached: list[ChannelIdentity] = []
    for name in policy.channels:
        if name == "chat":
            reached = care_identities(session, order, identities)
        else:
            addressed = addressed_identity(session, order, name)
            reached = [addressed] if addressed is not None else []
        if reached:
            break
    for identity in reached:
        added += schedule_for_identity(session, plan, identity, policy=policy, now=now)
    return added


def schedule_for_identity(
    session: Session, plan: CarePlan, identity: ChannelIdentity, *, policy: CarePolicy, now: datetime,
) -> int:
    """Create the plan's rows for one identity (those it lacks); how many were added.

    Scheduling never releases a burst: of the steps already due (an order imported late, a phone
    verified days after delivery) only the latest goes, the earlier ones are recorded as skipped,
    and a step due more than MAX_LATENESS ago is not sent at all.
    """
    existing = set(session.exec(select(CareMessage.kind).where(
        CareMessage.order_id == plan.order_id, CareMessage.identity_id == identity.id)).all())
    sent_elsewhere = set(session.exec(select(CareMessage.kind).where(
        CareMessage.order_id == plan.order_id, CareMessage.identity_id != identity.id,
        CareMessage.status == CareStatus.sent)).all())
    steps = [(kind, plan.delivered_at + policy.delays[kind]) for kind in SEQUENCE if kind in policy.delays]
    due_already = [kind for kind, planned in steps if planned <= now]
    latest_due = due_already[-1] if due_already else None
    added = 0
    for kind, planned in steps:
        if kind in existing:
            continue
        row = CareMessage(order_id=plan.order_id, identity_id=identity.id, kind=kind, planned_at=planned,
                          due_at=policy.first_allowed(max(planned, now)), created_at=now, updated_at=now)
        if planned <= now:
            if kind != latest_due:
                row.status, row.reason = CareStatus.skipped, "superseded: a later step was already due"
            elif now - planned > MAX_LATENESS:
                row.status = CareStatus.skipped
                row.reason = "too late: the customer became reachable long after"
            elif kind in sent_elsewhere:
                row.status, row.reason = CareStatus.skipped, "already sent on another channel"
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
            added += 1
        except IntegrityError:
            pass  # a concurrent delivered event scheduled it first
    order = session.get(Order, plan.order_id)
    added += schedule_reminders(session, plan, order, identity.id, first_allowed=policy.first_allowed, now=now,
                                existing=existing)
    return added


def attach_pending_care(
    session: Session, customer: Customer, policy: CarePolicy | None = None, now: datetime | None = None,
) -> int:
    """Reach a customer who just verified a phone (or gained an identity) with the care of their
    recent orders: the orders of that phone and their own orders. How many rows were added."""
    if policy is None:
        from helpdesk.core.config import get_settings

        policy = CarePolicy.from_settings(get_settings())
    now = now or datetime.now(UTC)
    customer = primary_customer(session, customer)
    if customer.care_opted_out:
        return 0
    phone = customer.phone if customer.phone_verified else None
    reaches_order = Order.customer_id == customer.id
    if phone:
        reaches_order = reaches_order | (Order.phone == phone)
    plans = session.exec(
        select(CarePlan).join(Order, Order.id == CarePlan.order_id)
        .where(reaches_order, CarePlan.delivered_at > now - policy.horizon)
    ).all()
    identities = session.exec(select(ChannelIdentity).where(
        ChannelIdentity.customer_id == customer.id, col(ChannelIdentity.channel).not_in(list(ADDRESSES)))).all()
    added = 0
    for plan in plans:
        for identity in identities:
            added += schedule_for_identity(session, plan, identity, policy=policy, now=now)
    return added


def start_care_for_delivered_orders(session: Session, policy: CarePolicy, now: datetime) -> int:
    """Start the care of recently delivered orders that have none (orders loaded from a file, such as
    the demo shop); how many plans were started."""
    started = 0
    recent = session.exec(
        select(Order).where(Order.status == OrderStatus.delivered, col(Order.delivered_at).is_not(None),
                            Order.delivered_at > now - policy.horizon)
    ).all()
    for order in recent:
        if not has_care_plan(session, order):
            schedule_care_sequence(session, order, policy=policy, now=now)
            started += 1
    return started


def cancel_care_for_customer(session: Session, customer: Customer, reason: str, now: datetime) -> int:
    """Cancel every care message still scheduled for the customer's identities and for their orders (their
    own and those of the phone they verified), on whatever channel; how many."""
    identity_ids = select(ChannelIdentity.id).where(ChannelIdentity.customer_id == customer.id)
    theirs = Order.customer_id == customer.id
    if customer.phone and customer.phone_verified:
        theirs = theirs | (Order.phone == customer.phone)
    order_ids = select(Order.id).where(theirs)
    result = session.exec(
        update(CareMessage)
        .where(CareMessage.status == CareStatus.scheduled,
               col(CareMessage.identity_id).in_(identity_ids) | col(CareMessage.order_id).in_(order_ids))
        .values(status=CareStatus.cancelled, reason=reason, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def set_care_opt_out(session: Session, customer: Customer, opted_out: bool, now: datetime) -> Customer:
    """Stop (cancelling what is scheduled) or resume proactive care for the customer."""
    customer = primary_customer(session, customer)
    customer.care_opted_out = opted_out
    session.add(customer)
    cancelled = cancel_care_for_customer(session, customer, "the customer opted out", now) if opted_out else 0
    audit.record(session, "care_opt_out" if opted_out else "care_opt_in", "customer", customer.id,
                 actor_type="customer", actor_id=customer.id, cancelled=cancelled)
    return customer


def care_messages_for_order(session: Session, order: Order) -> list[tuple[CareMessage, ChannelIdentity]]:
    """The order's care messages with the identity each goes to, by due time."""
    rows = session.exec(
        select(CareMessage, ChannelIdentity)
        .join(ChannelIdentity, ChannelIdentity.id == CareMessage.identity_id)
        .where(CareMessage.order_id == order.id).order_by(col(CareMessage.due_at), col(CareMessage.id))
    ).all()
    return [(message, identity) for message, identity in rows]


def has_care_plan(session: Session, order: Order) -> bool:
    """Whether the order's care sequence was started."""
    return session.exec(select(CarePlan.id).where(CarePlan.order_id == order.id)).first() is not None


# -- sending: the claim and the decision -------------------------------------------------------------


@dataclass(frozen=True)
class ChannelAbilities:
    """What the running process can do on each channel."""

    configured: frozenset[str]
    with_buttons: frozenset[str]


@dataclass(frozen=True)
class QueuedCareMessage:
    """A care message put in the outbox; the caller starts the chat's drain."""

    care_id: int
    channel: str
    recipient_id: str
    conversation_id: int
    message_id: int


def due_care_message_ids(session: Session, now: datetime, limit: int = 200) -> list[int]:
    """Ids of scheduled messages due by ``now``, oldest first (through the status/due_at index)."""
    return list(session.exec(
        select(CareMessage.id).where(CareMessage.status == CareStatus.scheduled, CareMessage.due_at <= now)
        .order_by(col(CareMessage.due_at), col(CareMessage.id)).limit(limit)
    ).all())


def claim_care_message(session: Session, care_id: int, now: datetime) -> CareMessage | None:
    """Take the message for this transaction, or None if another worker has it or it is not due.

    The conditional UPDATE is the transaction's first statement: PostgreSQL makes a second worker
    wait on the row lock and then re-check the condition, SQLite serialises writers; either way
    exactly one transaction sees a row count of 1.
    """
    result = session.exec(
        update(CareMessage)
        .where(CareMessage.id == care_id, CareMessage.status == CareStatus.scheduled,
               CareMessage.due_at <= now)
        .values(status=_CLAIMED, updated_at=now)
    )
    if result.rowcount != 1:
        return None
    return session.get(CareMessage, care_id, populate_existing=True)


@dataclass(frozen=True)
class AddressedCareMessage:
    """A care message to send through an addressed channel (ZNS) after the claim commits: the
    caller sends it and records the platform's answer (``helpdesk/care/zns.py``)."""

    care_id: int
    channel: str
    kind: str
    address: str
    #: what the channel's template can say: customer_name, order_code, product_name, ...
    values: dict[str, str]


def send_care_message(
    session: Session, care_id: int, *, now: datetime, policy: CarePolicy, composer: CareComposer,
    channels: ChannelAbilities,
) -> QueuedCareMessage | AddressedCareMessage | None:
    """Claim one due care message and send it to the outbox, or skip, cancel or postpone it; a step the
    channel cannot deliver (outside its window, not turned on, unreachable) falls back to the next
    channel of the policy's order.

    Everything happens in the caller's transaction, so the claim and the queued message commit
    together: a crash leaves the message scheduled, never half sent. A message for an addressed
    channel is left ``sending`` for the caller to send and record.
    """
    care = claim_care_message(session, care_id, now)
    if care is None:
        return None
    order = session.get(Order, care.order_id)
    identity = session.get(ChannelIdentity, care.identity_id)
    customer = primary_customer(session, session.get(Customer, identity.customer_id))
    conversation = _open_conversation_if_any(session, identity)
    verdict = _verdict(session, care, order, identity, customer, conversation, now=now, policy=policy,
                       channels=channels)
    care.updated_at = now
    if verdict is not None:
        status, reason, until, falls_back = verdict
        if falls_back:
            reason += fall_back_to_next_channel(session, care, order, identity, policy.channels, now,
                                                policy.first_allowed(now))
        care.status, care.reason = status, reason[:500]
        if until is not None:
            care.due_at = until
        session.add(care)
        session.flush()
        return None
    if identity.channel in ADDRESSES:
        care.status, care.reason = CareStatus.sending, None
        session.add(care)
        session.flush()
        return AddressedCareMessage(care.id, identity.channel, care.kind, identity.external_id,
                                    composer.template_values(session, order, customer, identity.external_id))
    buttons = identity.channel in channels.with_buttons
    if care.kind == CareKind.nps:
        survey = nps.ask(session, customer, identity, now, order=order)
        outbound = nps.survey_message(survey, identity.external_id,
                                      composer.nps_text(session, order, customer), buttons=buttons)
    else:
        outbound = composer.compose(session, care.kind, order, customer, identity.external_id, buttons=buttons)
    conversation = conversation or conversations.open_conversation(session, identity)
    message = conversations.add_message(session, conversation, direction="out", author=MessageAuthor.bot,
                                        text=outbound.text, delivery_status=DeliveryStatus.pending)
    queue_outbound(session, conversation, message, outbound.model_dump(mode="json"), identity.external_id)
    if care.kind == CareKind.rating_request:
        request_rating(session, customer, f"order:{order.code}", now, identity=identity, order=order)
    care.status, care.reason, care.sent_at, care.message_id = CareStatus.sent, None, now, message.id
    session.add(care)
    session.flush()
    return QueuedCareMessage(care.id, identity.channel, identity.external_id, conversation.id, message.id)


def _open_conversation_if_any(session: Session, identity: ChannelIdentity) -> Conversation | None:
    return session.exec(
        select(Conversation)
        .where(Conversation.identity_id == identity.id, col(Conversation.state).in_(OPEN_STATES))
        .order_by(col(Conversation.id).desc())
    ).first()


def _verdict(
    session: Session, care: CareMessage, order: Order, identity: ChannelIdentity, customer: Customer,
    conversation: Conversation | None, *, now: datetime, policy: CarePolicy, channels: ChannelAbilities,
) -> tuple[str, str, datetime | None, bool] | None:
    """Why the message must not go now, as (new status, reason, new due time, whether the step falls
    back to the next channel); None to send it."""
    scheduled, skipped, cancelled = CareStatus.scheduled, CareStatus.skipped, CareStatus.cancelled
    # an opt-out on any channel (an email unsubscribe, a chat "stop", a ZNS refusal) by anyone the order
    # belongs to stops every step, surveys and reminders included
    if customer.care_opted_out or order_opted_out(session, order):
        return cancelled, "the customer opted out", None, False
    if order.status != OrderStatus.delivered:
        return cancelled, f"the order is now {order.status}", None, False
    if care.kind == CareKind.rating_request and has_rated_order(session, customer, order):
        return skipped, "the customer already rated this order", None, False
    gone = reminder_gone(session, order, care.kind, now)
    if gone is not None:
        return cancelled, gone, None, False
    if care.kind == CareKind.nps and nps.recently_surveyed(session, customer, now):
        return skipped, "the customer answered or was asked a survey lately", None, False
    if now - care.due_at > MAX_LATENESS:
        return skipped, f"missed: it was due at {care.due_at.isoformat()}", None, False
    # every linked chat gets the step, but a step that went by one care channel does not go by another
    went_by = session.exec(select(ChannelIdentity.channel).join(
        CareMessage, CareMessage.identity_id == ChannelIdentity.id).where(
        CareMessage.order_id == order.id, CareMessage.kind == care.kind, CareMessage.id != care.id,
        col(CareMessage.status).in_((CareStatus.sent, CareStatus.delivered, CareStatus.sending)))).all()
    mine = care_channel_of(identity)
    if any((channel if channel in ADDRESSES else "chat") != mine for channel in went_by):
        return skipped, "already sent on another channel", None, False
    if identity.channel in ADDRESSES:
        return _addressed_verdict(session, order, identity, now=now, policy=policy, channels=channels)
    # each connector declares how long after the customer's last message its platform allows these
    connector_class = CONNECTORS.get(identity.channel)
    window = connector_class.proactive_window if connector_class is not None else None
    if window is not None:
        platform, length = window
        last = identity.last_inbound_at
        if last is None or now - last > length:
            since = "never wrote" if last is None else f"last wrote {_duration(now - last)} ago"
            return skipped, (f"outside {platform}'s {_duration(length)} messaging window "
                             f"(the customer {since}); the platform forbids proactive messages there"), None, True
    if identity.channel not in channels.configured:
        return skipped, f"the {identity.channel} channel is not turned on", None, True
    if not identity.reachable:
        why = identity.unreachable_reason or "unknown"
        return skipped, f"the customer cannot be reached there: {why}", None, True
    if policy.is_quiet(now):
        return scheduled, "postponed: quiet hours", policy.first_allowed(now), False
    night = _platform_night(connector_class)
    if night is not None and night.contains(now):
        platform = connector_class.night_window.platform
        return (scheduled, f"postponed: {platform} refuses messages at night", night.first_moment_outside(now),
                False)
    if conversation is not None and conversation.state in HUMAN_STATES:
        if now - care.planned_at > MAX_LATENESS:
            return skipped, "the customer was talking with an agent until it was too late", None, False
        return scheduled, "postponed: an agent is talking with the customer", policy.first_allowed(
            now + HUMAN_OWNED_RETRY), False
    return None


def _addressed_verdict(
    session: Session, order: Order, identity: ChannelIdentity, *, now: datetime, policy: CarePolicy,
    channels: ChannelAbilities,
) -> tuple[str, str, datetime | None, bool] | None:
    """The same rules for a channel that writes to an address of the order (no window, no chat)."""
    if order_opted_out(session, order):
        return CareStatus.cancelled, "the customer opted out", None, False
    if identity.channel not in channels.configured or identity.channel not in policy.channels:
        return CareStatus.skipped, f"the {identity.channel} channel is not turned on", None, True
    if not identity.reachable:
        why = identity.unreachable_reason or "unknown"
        return CareStatus.skipped, f"the customer cannot be reached there: {why}", None, True
    if policy.is_quiet(now):
        return CareStatus.scheduled, "postponed: quiet hours", policy.first_allowed(now), False
    return None


def _platform_night(connector_class: type | None) -> DailyWindow | None:
    """The night the channel's platform refuses messages in, as its connector declares it."""
    declared = getattr(connector_class, "night_window", None)
    if declared is None:
        return None
    return DailyWindow(declared.starts, declared.ends, ZoneInfo(declared.timezone))


def _duration(span: timedelta) -> str:
    hours = int(span.total_seconds() // 3600)
    return f"{hours} hours" if hours < 48 else f"{hours // 24} days"


# -- when a person will answer -----------------------------------------------------------------------


def handoff_eta(responses: Responses, first_response_minutes: int, locale: str, now: datetime,
                clock: BusinessClock) -> str:
    """When an agent will answer, in the customer's words: the first-response target of the
    conversation's SLA policy while the shop is open and the answer falls due before the opening
    period ends; otherwise when the shop next opens (the configured business hours and holidays)."""
    period = clock.current_period(now)
    if period is not None:
        _opened, closes = period
        if clock.add_minutes(now, first_response_minutes) <= closes:
            if first_response_minutes >= 60 and first_response_minutes % 60 == 0:
                return responses.render("care_eta_hours", locale, hours=first_response_minutes // 60)
            return responses.render("care_eta_minutes", locale, minutes=first_response_minutes)
        opens = clock.next_opening(closes)
    else:
        opens = clock.next_opening(now)
    today, opening = clock.local(now), clock.local(opens)
    days = (opening.date() - today.date()).days
    hhmm = opening.strftime("%H:%M")
    if days == 0:
        key = "care_eta_this_morning" if opening.hour < 12 else "care_eta_later_today"
        return responses.render(key, locale, opens=hhmm)
    if days == 1:
        return responses.render("care_eta_tomorrow", locale, opens=hhmm)
    return responses.render("care_eta_on_day", locale, opens=hhmm, weekday=opening.strftime("%A"),
                            date=opening.strftime("%d/%m"))
