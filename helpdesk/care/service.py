"""After-delivery care: marking orders delivered, scheduling the care sequence per channel identity,
deciding at send time whether a message may go, ratings the shop asked for, and order imports.

The sequence is data, not timers: one ``care_messages`` row per (order, identity, step) with the
time it is due. A periodic task (``helpdesk/care/tasks.py``) sends what is due. Nothing here talks
HTTP or commits; callers own the transaction.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.knowledge import FaqEntry, Knowledge, fold
from bot.responses import Responses
from connectors import CONNECTORS
from connectors.base import OutboundRatingRequest, OutboundText
from helpdesk.audit import service as audit
from helpdesk.care.models import CareKind, CareMessage, CarePlan, CareStatus, RatingRequest
from helpdesk.conversations import service as conversations
from helpdesk.conversations.models import HUMAN_STATES, Conversation, DeliveryStatus, MessageAuthor
from helpdesk.core.errors import Conflict, NotFound
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.customers.service import normalise_phone, primary_customer
from helpdesk.ratings.models import Rating
from helpdesk.shop.directory import normalise_order_code
from helpdesk.shop.models import Order, OrderStatus, Product, Warranty
from helpdesk.shop.service import add_months

log = logging.getLogger(__name__)

#: the steps in the order they go out
SEQUENCE = (CareKind.thank_you, CareKind.rating_request, CareKind.usage_tips, CareKind.check_in)
#: how late a message may still go; later than this it would read as spam, not care
MAX_LATENESS = timedelta(days=2)
#: while a person talks with the customer the bot keeps quiet; care waits this long and looks again
HUMAN_OWNED_RETRY = timedelta(minutes=30)
#: a typed "5" answers a rating request only this long after it was sent
RATING_ANSWER_WINDOW = timedelta(days=7)
#: when agents are at work (shop time); handoff ETAs outside these hours say when they are back
BUSINESS_OPENS, BUSINESS_CLOSES = time(8, 0), time(21, 0)
_CLAIMED = "sending"  # only ever visible inside the claiming transaction


# -- policy: delays, quiet hours, time zone ----------------------------------------------------------


@dataclass(frozen=True)
class QuietHours:
    """A daily local-time window without proactive messages; may cross midnight (21:00-08:00)."""

    starts: time
    ends: time

    @classmethod
    def parse(cls, value: str) -> QuietHours | None:
        """``"21:00-08:00"`` -> a window; an empty value (or equal ends) -> None, meaning no quiet hours."""
        if not value or not value.strip():
            return None
        try:
            start_text, end_text = (part.strip() for part in value.split("-"))
            starts, ends = time.fromisoformat(start_text), time.fromisoformat(end_text)
        except ValueError as exc:
            raise ValueError(f"quiet hours must look like 21:00-08:00, got {value!r}") from exc
        return None if starts == ends else cls(starts, ends)

    def contains(self, local: time) -> bool:
        """Whether a local wall-clock time falls inside the window."""
        if self.starts < self.ends:
            return self.starts <= local < self.ends
        return local >= self.starts or local < self.ends

    def end_after(self, local: datetime) -> datetime:
        """The end of the window ``local`` (an aware local time inside it) belongs to."""
        end = local.replace(hour=self.ends.hour, minute=self.ends.minute, second=0, microsecond=0)
        return end if end > local else end + timedelta(days=1)


@dataclass(frozen=True)
class CarePolicy:
    """When each step goes out and when nothing may go out, from the settings."""

    delays: dict[str, timedelta]
    quiet_hours: QuietHours | None
    timezone: tzinfo

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
            },
            quiet_hours=QuietHours.parse(care.quiet_hours),
            timezone=zone,
        )

    def is_quiet(self, moment: datetime) -> bool:
        """Whether ``moment`` falls in quiet hours, shop time."""
        if self.quiet_hours is None:
            return False
        return self.quiet_hours.contains(moment.astimezone(self.timezone).time())

    def first_allowed(self, moment: datetime) -> datetime:
        """``moment``, or the end of the quiet hours it falls in (postponed, never dropped)."""
        if not self.is_quiet(moment):
            return moment
        return self.quiet_hours.end_after(moment.astimezone(self.timezone)).astimezone(UTC)

    def local(self, moment: datetime) -> datetime:
        """``moment`` in the shop's time zone."""
        return moment.astimezone(self.timezone)

    @property
    def horizon(self) -> timedelta:
        """How long after delivery a plan can still produce a message."""
        return max(self.delays.values()) + MAX_LATENESS


# -- marking orders delivered ------------------------------------------------------------------------


@dataclass
class DeliveryOutcome:
    """What marking an order delivered did."""

    order: Order
    newly_delivered: bool
    scheduled: int = 0


def get_order(session: Session, code: str) -> Order:
    """The order with this code (any case, with or without '#'); NotFound otherwise."""
    order = session.exec(select(Order).where(Order.code == normalise_order_code(code))).first()
    if order is None:
        raise NotFound(f"order {code} not found")
    return order


def identity_for_delivery(session: Session, order: Order, channel: str, external_id: str) -> ChannelIdentity:
    """The channel identity the order system named, created if new and tied to the order's customer."""
    identity = session.exec(select(ChannelIdentity).where(ChannelIdentity.channel == channel,
                                                          ChannelIdentity.external_id == external_id)).first()
    if identity is None:
        customer = session.get(Customer, order.customer_id) if order.customer_id else None
        if customer is None:
            # The phone stays unverified: the order system vouches for the chat, not for the phone.
            customer = Customer(name=order.customer_name, phone=normalise_phone(order.phone or ""))
            session.add(customer)
            session.flush()
        customer = primary_customer(session, customer)
        identity = ChannelIdentity(customer_id=customer.id, channel=channel, external_id=external_id)
        session.add(identity)
        session.flush()
    if order.customer_id is None:
        order.customer_id = primary_customer(session, session.get(Customer, identity.customer_id)).id
    return identity


def mark_order_delivered(
    session: Session, order: Order, *, policy: CarePolicy, now: datetime,
    delivered_at: datetime | None = None, identity: ChannelIdentity | None = None,
    actor_type: str = "system", actor_id: int | None = None,
) -> DeliveryOutcome:
    """Mark the order delivered, start its warranties and schedule its care sequence (idempotent).

    A repeated call keeps the first delivery time and schedules nothing twice; it may add the
    identity it names. The caller publishes the ``order_delivered`` event after committing.
    """
    if order.status == OrderStatus.cancelled:
        raise Conflict(f"order {order.code} is cancelled")
    newly = order.status != OrderStatus.delivered or order.delivered_at is None
    if newly:
        order.status = OrderStatus.delivered
        order.delivered_at = delivered_at or order.delivered_at or now
        start_warranties(session, order)
    session.add(order)
    session.flush()
    audit.record(session, "order_delivered", "order", order.id, actor_type=actor_type, actor_id=actor_id,
                 code=order.code, delivered_at=order.delivered_at.isoformat(), repeated=not newly,
                 identity_id=identity.id if identity else None)
    scheduled = schedule_care_sequence(session, order, policy=policy, now=now,
                                       identities=[identity] if identity else [])
    return DeliveryOutcome(order, newly, scheduled)


def start_warranties(session: Session, order: Order) -> int:
    """Start the warranties of the order's units from its delivery; creates missing ones. How many."""
    starts = order.delivered_at
    started = 0
    serials: dict[str, str | None] = {}  # serial -> sku
    for line in order.items:
        for serial in _line_serials(line):
            serials[serial] = line.get("sku")
    known = {w.serial: w for w in session.exec(select(Warranty).where(Warranty.order_id == order.id)).all()}
    for serial, sku in serials.items():
        warranty = known.get(serial) or session.exec(
            select(Warranty).where(Warranty.serial == serial)).first()
        if warranty is not None and warranty.order_id not in (None, order.id):
            log.warning("serial %s of order %s already belongs to another order's warranty", serial,
                        order.code)
            continue
        product = session.exec(select(Product).where(Product.sku == sku)).first() if sku else None
        if warranty is None:
            if product is None:
                continue  # unknown product: no warranty term to start
            warranty = Warranty(serial=serial, product_id=product.id, order_id=order.id, starts_at=starts,
                                ends_at=add_months(starts, product.warranty_months))
        known[serial] = warranty
    for warranty in known.values():
        product = session.get(Product, warranty.product_id)
        warranty.order_id = order.id
        warranty.starts_at = starts
        warranty.ends_at = add_months(starts, product.warranty_months if product else 12)
        session.add(warranty)
        started += 1
    return started


def _line_serials(line: dict[str, Any]) -> list[str]:
    serials = line.get("serials") or ([line["serial"]] if line.get("serial") else [])
    return [str(serial) for serial in serials]


# -- scheduling --------------------------------------------------------------------------------------


def order_customer_ids(session: Session, order: Order) -> set[int]:
    """The customers an order is theirs: its customer (following merges) and whoever verified its phone."""
    customer_ids: set[int] = set()
    phone = normalise_phone(order.phone or "")
    if phone:
        customer_ids.update(session.exec(select(Customer.id).where(
            Customer.phone == phone, col(Customer.phone_verified).is_(True),
            col(Customer.merged_into_id).is_(None))).all())
    if order.customer_id is not None:
        customer_ids.add(primary_customer(session, session.get(Customer, order.customer_id)).id)
    return customer_ids


def care_identities(
    session: Session, order: Order, extra: Iterable[ChannelIdentity] = (),
) -> list[ChannelIdentity]:
    """Who the order's care reaches: identities of customers who verified the order's phone, of the
    order's customer, and any named explicitly; never those of customers who opted out."""
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

    With nobody reachable yet the plan waits: ``attach_pending_care`` adds identities later.
    """
    plan = ensure_care_plan(session, order)
    added = 0
    for identity in care_identities(session, order, identities):
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
    steps = [(kind, plan.delivered_at + policy.delays[kind]) for kind in SEQUENCE]
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
    identities = session.exec(select(ChannelIdentity).where(ChannelIdentity.customer_id == customer.id)).all()
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
    """Cancel every care message still scheduled for the customer's identities; how many."""
    identity_ids = select(ChannelIdentity.id).where(ChannelIdentity.customer_id == customer.id)
    result = session.exec(
        update(CareMessage)
        .where(CareMessage.status == CareStatus.scheduled, col(CareMessage.identity_id).in_(identity_ids))
        .values(status=CareStatus.cancelled, reason=reason, updated_at=now)
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


def send_care_message(
    session: Session, care_id: int, *, now: datetime, policy: CarePolicy, composer: CareComposer,
    channels: ChannelAbilities,
) -> QueuedCareMessage | None:
    """Claim one due care message and send it to the outbox, or skip, cancel or postpone it.

    Everything happens in the caller's transaction, so the claim and the queued message commit
    together: a crash leaves the message scheduled, never half sent.
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
        status, reason, until = verdict
        care.status, care.reason = status, reason
        if until is not None:
            care.due_at = until
        session.add(care)
        session.flush()
        return None
    outbound = composer.compose(session, care.kind, order, customer, identity.external_id,
                                buttons=identity.channel in channels.with_buttons)
    conversation = conversation or conversations.open_conversation(session, identity)
    message = conversations.add_message(session, conversation, direction="out", author=MessageAuthor.bot,
                                        text=outbound.text, delivery_status=DeliveryStatus.pending)
    conversations.queue_outbound(session, conversation, message, outbound.model_dump(mode="json"),
                                 identity.external_id)
    if care.kind == CareKind.rating_request:
        request_rating(session, customer, f"order:{order.code}", now, identity=identity, order=order)
    care.status, care.reason, care.sent_at, care.message_id = CareStatus.sent, None, now, message.id
    session.add(care)
    session.flush()
    return QueuedCareMessage(care.id, identity.channel, identity.external_id, conversation.id, message.id)


def _open_conversation_if_any(session: Session, identity: ChannelIdentity) -> Conversation | None:
    from helpdesk.conversations.models import OPEN_STATES

    return session.exec(
        select(Conversation)
        .where(Conversation.identity_id == identity.id, col(Conversation.state).in_(OPEN_STATES))
        .order_by(col(Conversation.id).desc())
    ).first()


def _verdict(
    session: Session, care: CareMessage, order: Order, identity: ChannelIdentity, customer: Customer,
    conversation: Conversation | None, *, now: datetime, policy: CarePolicy, channels: ChannelAbilities,
) -> tuple[str, str | None, datetime | None] | None:
    """Why the message must not go now, as (new status, reason, new due time); None to send it."""
    scheduled, skipped, cancelled = CareStatus.scheduled, CareStatus.skipped, CareStatus.cancelled
    if customer.care_opted_out:
        return cancelled, "the customer opted out", None
    if order.status != OrderStatus.delivered:
        return cancelled, f"the order is now {order.status}", None
    if care.kind == CareKind.rating_request and _has_rated_order(session, customer, order):
        return skipped, "the customer already rated this order", None
    if now - care.due_at > MAX_LATENESS:
        return skipped, f"missed: it was due at {care.due_at.isoformat()}", None
    # each connector declares how long after the customer's last message its platform allows these
    connector_class = CONNECTORS.get(identity.channel)
    window = connector_class.proactive_window if connector_class is not None else None
    if window is not None:
        platform, length = window
        last = identity.last_inbound_at
        if last is None or now - last > length:
            since = "never wrote" if last is None else f"last wrote {_duration(now - last)} ago"
            return skipped, (f"outside {platform}'s {_duration(length)} messaging window "
                             f"(the customer {since}); the platform forbids proactive messages there"), None
    if identity.channel not in channels.configured:
        return skipped, f"the {identity.channel} channel is not turned on", None
    if not identity.reachable:
        why = identity.unreachable_reason or "unknown"
        return skipped, f"the customer cannot be reached there: {why}", None
    if policy.is_quiet(now):
        return scheduled, "postponed: quiet hours", policy.first_allowed(now)
    if conversation is not None and conversation.state in HUMAN_STATES:
        if now - care.planned_at > MAX_LATENESS:
            return skipped, "the customer was talking with an agent until it was too late", None
        return scheduled, "postponed: an agent is talking with the customer", policy.first_allowed(
            now + HUMAN_OWNED_RETRY)
    return None


def _duration(span: timedelta) -> str:
    hours = int(span.total_seconds() // 3600)
    return f"{hours} hours" if hours < 48 else f"{hours // 24} days"


def _has_rated_order(session: Session, customer: Customer, order: Order) -> bool:
    return session.exec(select(Rating.id).where(
        Rating.customer_id == customer.id, Rating.order_id == order.id, Rating.kind == "delivery",
    )).first() is not None


# -- what the messages say ---------------------------------------------------------------------------


@dataclass
class CareComposer:
    """Renders care messages from the templates in data/bot/care.yml and the FAQ's usage answers."""

    responses: Responses
    knowledge: Knowledge
    shop_name: str
    usage_intent: str = "product_usage"

    def compose(
        self, session: Session, kind: str, order: Order, customer: Customer, recipient_id: str, *,
        buttons: bool,
    ) -> OutboundText | OutboundRatingRequest:
        """The outbound message for one step, in the customer's language."""
        locale = customer.locale or self.responses.default_locale
        products = _ordered_products(session, order)
        values = {
            "shop": self.shop_name,
            "order": order.code,
            "greeting": self._greeting(customer.name or order.customer_name, locale),
            "product": self._product_name(products, locale),
        }
        if kind == CareKind.rating_request:
            if buttons:
                text = self.responses.render("care_rating_request", locale, **values)
                return OutboundRatingRequest(recipient_id=recipient_id, text=text,
                                             subject=f"order:{order.code}")
            return OutboundText(recipient_id=recipient_id,
                                text=self.responses.render("care_rating_request_text", locale, **values))
        if kind == CareKind.usage_tips:
            return OutboundText(recipient_id=recipient_id, text=self._usage_tips(products, locale, values))
        key = {CareKind.thank_you: "care_thank_you", CareKind.check_in: "care_check_in"}[CareKind(kind)]
        return OutboundText(recipient_id=recipient_id, text=self.responses.render(key, locale, **values))

    def _greeting(self, name: str | None, locale: str) -> str:
        if name and name.strip():
            return self.responses.render("care_greeting_named", locale, name=name.strip())
        return self.responses.render("care_greeting", locale)

    def _product_name(self, products: list[tuple[dict[str, Any], Product | None]], locale: str) -> str:
        if not products:
            return self.responses.render("care_product_fallback", locale)
        line, product = products[0]
        if product is not None:
            return (product.name_en if locale == "en" and product.name_en else product.name) or product.sku
        fallback = self.responses.render("care_product_fallback", locale)
        return str(line.get("name") or line.get("sku") or fallback)

    def _usage_tips(self, products: list[tuple[dict[str, Any], Product | None]], locale: str,
                    values: dict[str, str]) -> str:
        for line, product in products:
            entry = self.usage_tip_for(line, product)
            if entry is None:
                continue
            tip = entry.answer.get(locale) or entry.answer.get(self.responses.default_locale) \
                or next(iter(entry.answer.values()))
            names = {"product": self._product_name([(line, product)], locale)}
            text = self.responses.render("care_usage_tips", locale, **{**values, **names, "tip": tip})
            if entry.links:
                link = entry.links[0]
                text += "\n" + self.responses.render("care_usage_tips_link", locale, title=link.title,
                                                     url=link.url)
            return text
        return self.responses.render("care_usage_tips_generic", locale, **values)

    def usage_tip_for(self, line: dict[str, Any], product: Product | None) -> FaqEntry | None:
        """The product-usage FAQ answer whose keywords best match the product's names, if any match."""
        names = [str(line.get("name") or ""), str(line.get("sku") or "")]
        if product is not None:
            names += [product.name, product.name_en or "", product.category or ""]
        folded = fold(" ".join(names))
        best, best_score = None, 0
        for entry in self.knowledge.by_intent.get(self.usage_intent, []):
            score = sum(fold(keyword) in folded for keyword in entry.keywords)
            if score > best_score:  # the first entry wins a tie: FAQ files list the basics first
                best, best_score = entry, score
        return best


def _ordered_products(session: Session, order: Order) -> list[tuple[dict[str, Any], Product | None]]:
    lines = []
    for line in order.items:
        sku = line.get("sku")
        product = session.exec(select(Product).where(Product.sku == sku)).first() if sku else None
        lines.append((line, product))
    return lines


# -- ratings the shop asked for ----------------------------------------------------------------------


def request_rating(
    session: Session, customer: Customer, subject: str, now: datetime, *,
    identity: ChannelIdentity | None = None, order: Order | None = None,
    conversation: Conversation | None = None,
) -> RatingRequest:
    """Remember that the customer was asked to rate ``subject``, so a typed "5" can be matched to it."""
    request = RatingRequest(customer_id=customer.id, identity_id=identity.id if identity else None,
                            subject=subject, order_id=order.id if order else None,
                            conversation_id=conversation.id if conversation else None, sent_at=now)
    session.add(request)
    session.flush()
    return request


def pending_rating_subject(session: Session, customer: Customer, now: datetime) -> str | None:
    """The newest subject the customer was asked to rate within RATING_ANSWER_WINDOW and did not."""
    customer = primary_customer(session, customer)
    # Requests follow identities, which follow merges; the customer column may name a merged record.
    identity_ids = select(ChannelIdentity.id).where(ChannelIdentity.customer_id == customer.id)
    return session.exec(
        select(RatingRequest.subject)
        .where((RatingRequest.customer_id == customer.id) | col(RatingRequest.identity_id).in_(identity_ids),
               col(RatingRequest.answered_at).is_(None), RatingRequest.sent_at >= now - RATING_ANSWER_WINDOW)
        .order_by(col(RatingRequest.sent_at).desc(), col(RatingRequest.id).desc())
    ).first()


def record_rating(
    session: Session, customer: Customer, subject: str, stars: int, now: datetime, comment: str | None = None,
) -> str:
    """Store a 1–5 rating of ``order:<code>`` (kind "delivery") or ``conversation:<id>`` (kind "csat").

    One rating per customer and subject: pressing another star later changes it. A subject that is
    unknown or not the customer's is not stored and the kind "ignored" is returned.
    """
    if not 1 <= stars <= 5:
        raise ValueError(f"a rating is 1 to 5 stars, got {stars}")
    customer = primary_customer(session, customer)
    kind, _, reference = subject.partition(":")
    if kind == "order":
        order = session.exec(select(Order).where(Order.code == normalise_order_code(reference))).first()
        if order is None or not _may_rate_order(session, customer, order, subject):
            log.info("ignoring a rating of %s by customer %s: unknown or not theirs", subject, customer.id)
            return "ignored"
        rating_kind, target = "delivery", {"order_id": order.id}
        agent_id = None
    elif kind == "conversation" and reference.isdigit():
        conversation = session.get(Conversation, int(reference))
        if conversation is None or primary_customer(
                session, session.get(Customer, conversation.customer_id)).id != customer.id:
            log.info("ignoring a rating of %s by customer %s: unknown or not theirs", subject, customer.id)
            return "ignored"
        rating_kind, target = "csat", {"conversation_id": conversation.id}
        agent_id = conversation.assignee_id
    else:
        log.info("ignoring a rating of unknown subject %r", subject)
        return "ignored"
    rating = _rating_of(session, customer, rating_kind, target)
    if rating is None:
        rating = Rating(kind=rating_kind, score=stars, customer_id=customer.id, agent_id=agent_id, **target)
    rating.score = stars
    if comment:
        rating.comment = comment[:2000]
    session.add(rating)
    session.flush()
    identity_ids = select(ChannelIdentity.id).where(ChannelIdentity.customer_id == customer.id)
    session.exec(
        update(RatingRequest)
        .where(RatingRequest.subject == subject, col(RatingRequest.answered_at).is_(None),
               (RatingRequest.customer_id == customer.id) | col(RatingRequest.identity_id).in_(identity_ids))
        .values(answered_at=now, rating_id=rating.id)
    )
    return rating_kind


def add_rating_comment(session: Session, customer: Customer, subject: str, comment: str) -> bool:
    """Attach what went wrong to the customer's rating of ``subject``; whether there was one."""
    customer = primary_customer(session, customer)
    kind, _, reference = subject.partition(":")
    if kind == "order":
        order = session.exec(select(Order).where(Order.code == normalise_order_code(reference))).first()
        rating = _rating_of(session, customer, "delivery", {"order_id": order.id}) if order else None
    elif kind == "conversation" and reference.isdigit():
        rating = _rating_of(session, customer, "csat", {"conversation_id": int(reference)})
    else:
        rating = None
    if rating is None:
        return False
    rating.comment = comment[:2000]
    session.add(rating)
    return True


def _rating_of(session: Session, customer: Customer, kind: str, target: dict[str, int]) -> Rating | None:
    query = select(Rating).where(Rating.customer_id == customer.id, Rating.kind == kind)
    for column, value in target.items():
        query = query.where(getattr(Rating, column) == value)
    return session.exec(query.order_by(col(Rating.id).desc())).first()


def _may_rate_order(session: Session, customer: Customer, order: Order, subject: str) -> bool:
    """Asked to rate it, or it is theirs (their order, or placed with the phone they verified)."""
    if order.customer_id is not None and primary_customer(
            session, session.get(Customer, order.customer_id)).id == customer.id:
        return True
    if customer.phone_verified and customer.phone and normalise_phone(order.phone or "") == customer.phone:
        return True
    identity_ids = select(ChannelIdentity.id).where(ChannelIdentity.customer_id == customer.id)
    asked = session.exec(select(RatingRequest.id).where(
        RatingRequest.subject == subject,
        (RatingRequest.customer_id == customer.id) | col(RatingRequest.identity_id).in_(identity_ids),
    )).first()
    return asked is not None


# -- when a person will answer -----------------------------------------------------------------------


def handoff_eta(responses: Responses, priority: str, locale: str, now: datetime, timezone: tzinfo) -> str:
    """When an agent will answer, in the customer's words: a first-response target during business
    hours, the opening time outside them (or when the target would fall after closing)."""
    from helpdesk.conversations.service import DEFAULT_FIRST_RESPONSE

    target = DEFAULT_FIRST_RESPONSE.get(priority, timedelta(hours=1))
    local = now.astimezone(timezone)
    opens = BUSINESS_OPENS.strftime("%H:%M")
    if local.time() < BUSINESS_OPENS:
        return responses.render("care_eta_this_morning", locale, opens=opens)
    closes = local.replace(hour=BUSINESS_CLOSES.hour, minute=BUSINESS_CLOSES.minute, second=0, microsecond=0)
    if local + target > closes:
        return responses.render("care_eta_tomorrow", locale, opens=opens)
    minutes = int(target.total_seconds() // 60)
    if minutes >= 60 and minutes % 60 == 0:
        return responses.render("care_eta_hours", locale, hours=minutes // 60)
    return responses.render("care_eta_minutes", locale, minutes=minutes)


# -- importing orders --------------------------------------------------------------------------------

IMPORT_COLUMNS = ("code", "phone", "customer_name", "status", "delivered_at", "items", "serials")
REQUIRED_COLUMNS = ("code", "phone")


@dataclass(frozen=True)
class ImportRowError:
    """A problem with one line of an import file (line 1 is the header)."""

    line: int
    error: str


@dataclass(frozen=True)
class OrderRow:
    """One valid line of an order import."""

    line: int
    code: str
    phone: str
    customer_name: str | None
    status: OrderStatus
    delivered_at: datetime | None
    items: list[dict[str, Any]] | None  # None: keep the order's items


@dataclass
class ImportReport:
    """What an import did, or why it did nothing."""

    created: int = 0
    updated: int = 0
    delivered: int = 0
    care_scheduled: int = 0
    errors: list[ImportRowError] = field(default_factory=list)
    delivered_codes: list[str] = field(default_factory=list)


def read_orders_csv(
    data: bytes | str, *, timezone: tzinfo, now: datetime,
) -> tuple[list[OrderRow], list[ImportRowError]]:
    """Validate every line of an order CSV; returns the rows and every line's errors (nothing written).

    Columns: code, phone, customer_name, status, delivered_at (ISO; without a zone it is shop time),
    items (``sku:qty;sku:qty``) and serials (``;``-separated, given to the units in item order).
    """
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")  # spreadsheets often add a BOM
        except UnicodeDecodeError:
            return [], [ImportRowError(1, "the file is not UTF-8 text")]
    reader = csv.reader(io.StringIO(data))
    header = next(reader, None)
    if header is None:
        return [], [ImportRowError(1, "the file is empty")]
    columns = [name.strip().lower() for name in header]
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    unknown = [name for name in columns if name not in IMPORT_COLUMNS]
    if missing or unknown:
        problems = ([f"missing column(s): {', '.join(missing)}"] if missing else []) + \
                   ([f"unknown column(s): {', '.join(unknown)}"] if unknown else [])
        return [], [ImportRowError(1, "; ".join(problems) + f" (expected {', '.join(IMPORT_COLUMNS)})")]
    rows: list[OrderRow] = []
    errors: list[ImportRowError] = []
    seen: dict[str, int] = {}
    for values in reader:
        line = reader.line_num
        if not any(value.strip() for value in values):
            continue
        if len(values) != len(columns):
            errors.append(ImportRowError(line, f"expected {len(columns)} fields, found {len(values)}"))
            continue
        record = {name: value.strip() for name, value in zip(columns, values, strict=True)}
        try:
            row = _order_row(line, record, timezone=timezone, now=now)
        except ValueError as exc:
            errors.append(ImportRowError(line, str(exc)))
            continue
        if row.code in seen:
            errors.append(ImportRowError(line, f"order {row.code} already appears on line {seen[row.code]}"))
            continue
        seen[row.code] = line
        rows.append(row)
    return rows, errors


def _order_row(line: int, record: dict[str, str], *, timezone: tzinfo, now: datetime) -> OrderRow:
    code = normalise_order_code(record.get("code", ""))
    if not code or len(code) > 32:
        raise ValueError("code is required (at most 32 characters)")
    phone = normalise_phone(record.get("phone", ""))
    if phone is None:
        raise ValueError(f"phone {record.get('phone', '')!r} is not a Vietnamese mobile number")
    delivered_at = None
    if record.get("delivered_at"):
        try:
            delivered_at = datetime.fromisoformat(record["delivered_at"])
        except ValueError as exc:
            raise ValueError(f"delivered_at {record['delivered_at']!r} is not an ISO date and time") from exc
        if delivered_at.tzinfo is None:
            delivered_at = delivered_at.replace(tzinfo=timezone)
        delivered_at = delivered_at.astimezone(UTC)
        if delivered_at > now + timedelta(minutes=5):
            raise ValueError("delivered_at is in the future")
    status_text = record.get("status", "").lower() or ("delivered" if delivered_at else "pending")
    try:
        status = OrderStatus(status_text)
    except ValueError as exc:
        known = ", ".join(s.value for s in OrderStatus)
        raise ValueError(f"status {status_text!r} is not one of {known}") from exc
    if status == OrderStatus.delivered and delivered_at is None:
        delivered_at = now
    items = _parse_items(record.get("items", ""), record.get("serials", ""))
    name = record.get("customer_name") or None
    return OrderRow(line, code, phone, name[:200] if name else None, status, delivered_at, items)


def _parse_items(items_text: str, serials_text: str) -> list[dict[str, Any]] | None:
    serials = [serial.strip().upper() for serial in serials_text.split(";") if serial.strip()]
    if not items_text:
        if serials:
            raise ValueError("serials need items to belong to")
        return None
    items: list[dict[str, Any]] = []
    for part in items_text.split(";"):
        if not part.strip():
            continue
        sku, _, qty_text = part.strip().partition(":")
        sku = sku.strip()
        qty_text = qty_text.strip() or "1"
        if not sku or not qty_text.isdigit() or int(qty_text) < 1:
            raise ValueError(f"item {part.strip()!r} must look like SKU:quantity")
        items.append({"sku": sku, "qty": int(qty_text)})
    units = sum(item["qty"] for item in items)
    if len(serials) > units:
        raise ValueError(f"{len(serials)} serials for {units} unit(s)")
    remaining = list(serials)
    for item in items:
        mine, remaining = remaining[:item["qty"]], remaining[item["qty"]:]
        if mine:
            item["serials"] = mine
            if len(mine) == 1:
                item["serial"] = mine[0]  # the shape the demo shop file uses
    return items


def check_rows_against_orders(session: Session, rows: list[OrderRow]) -> list[ImportRowError]:
    """Errors only the stored orders reveal (a cancelled order cannot be marked delivered), so the
    write phase never stops half way."""
    delivered = {row.code: row.line for row in rows if row.status == OrderStatus.delivered}
    if not delivered:
        return []
    cancelled = session.exec(select(Order.code).where(col(Order.code).in_(delivered),
                                                      Order.status == OrderStatus.cancelled)).all()
    errors = [ImportRowError(delivered[code], f"order {code} is cancelled and cannot be marked delivered")
              for code in cancelled]
    return sorted(errors, key=lambda error: error.line)


def import_orders(
    session: Session, rows: list[OrderRow], *, policy: CarePolicy, now: datetime, actor_type: str = "system",
    actor_id: int | None = None,
) -> ImportReport:
    """Create or update the validated orders and mark delivered ones delivered (care included)."""
    report = ImportReport()
    for row in rows:
        order = session.exec(select(Order).where(Order.code == row.code)).first()
        if order is None:
            order = Order(code=row.code, phone=row.phone)
            report.created += 1
        else:
            report.updated += 1
        order.phone = row.phone
        if row.customer_name:
            order.customer_name = row.customer_name
        if row.items is not None:
            order.items = [_named_item(session, item) for item in row.items]
        if row.status != OrderStatus.delivered:
            order.status = row.status
            if row.delivered_at is not None and order.delivered_at is None:
                order.delivered_at = row.delivered_at
        session.add(order)
        session.flush()
        if row.status == OrderStatus.delivered:
            outcome = mark_order_delivered(session, order, policy=policy, now=now,
                                           delivered_at=row.delivered_at, actor_type=actor_type,
                                           actor_id=actor_id)
            report.care_scheduled += outcome.scheduled
            if outcome.newly_delivered:
                report.delivered += 1
                report.delivered_codes.append(order.code)
    audit.record(session, "orders_imported", "order", None, actor_type=actor_type, actor_id=actor_id,
                 created=report.created, updated=report.updated, delivered=report.delivered)
    return report


def _named_item(session: Session, item: dict[str, Any]) -> dict[str, Any]:
    product = session.exec(select(Product).where(Product.sku == item["sku"])).first()
    return {**item, "name": product.name if product else item["sku"]}
