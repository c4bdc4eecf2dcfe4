"""Care channels: a step reaches a customer through one of the chats linked to the order, or through an
*addressed* channel that writes to an address the order carries (Zalo ZNS to its phone; email slots in
the same way). The order of preference is ``CAREDESK_CARE__CHANNEL_ORDER``; a step one channel cannot
deliver falls back to the next. Each addressed channel registers itself here from its own module
(``helpdesk/care/zns.py``), so that nothing else names a channel."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from collections.abc import Sequence
from typing import Any

from anyio import to_thread
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from helpdesk.care.models import CareKind, CareMessage
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.customers.service import primary_customer
from helpdesk.nps import service as nps
from helpdesk.ratings import service as ratings
from helpdesk.shop.models import Order
from helpdesk.shop.service import order_customer_ids

log = logging.getLogger(__name__)

#: finds (or creates) the identity through which a channel reaches an order's customer by an address the
#: order carries; None when the order has no usable address for it. Registered by the channel's module
#: (``helpdesk/care/zns.py``; email slots in the same way), so that this module names no channel.
AddressResolver = Callable[[Session, Order], ChannelIdentity | None]
ADDRESSES: dict[str, AddressResolver] = {}
#: whether the settings configure each addressed channel (e.g. ZNS templates mapped)
ADDRESS_CONFIGURED: dict[str, Callable[[Any], bool]] = {}


def register_address_channel(name: str, resolver: AddressResolver, configured: Callable[[Any], bool]) -> None:
    """Let care steps reach customers through ``name`` by an address of the order."""
    ADDRESSES[name] = resolver
    ADDRESS_CONFIGURED[name] = configured


def channel_configured(settings: Any, name: str) -> bool:
    """Whether the settings configure the addressed channel ``name``."""
    check = ADDRESS_CONFIGURED.get(name)
    return check is not None and bool(check(settings))


def care_channel_of(identity: ChannelIdentity) -> str:
    """The care channel a message to ``identity`` goes through: its address channel, else "chat"."""
    return identity.channel if identity.channel in ADDRESSES else "chat"


def next_channel_identity(
    session: Session, order: Order, channels: Sequence[str], after: str,
) -> ChannelIdentity | None:
    """The first identity of an addressed channel that comes after ``after`` in ``channels`` (the care
    policy's order) and reaches the order's customer, if any (customers who opted out are not reached)."""
    order_of_channels = list(channels)
    start = order_of_channels.index(after) + 1 if after in order_of_channels else len(order_of_channels)
    for name in order_of_channels[start:]:
        identity = addressed_identity(session, order, name)
        if identity is not None:
            return identity
    return None


def addressed_identity(session: Session, order: Order, name: str) -> ChannelIdentity | None:
    """The identity through which the addressed channel ``name`` reaches the order's customer, if it can
    (an address it takes, reachable there, nobody of the order opted out); None for "chat"."""
    resolver = ADDRESSES.get(name)
    if resolver is None or order_opted_out(session, order):
        return None
    identity = resolver(session, order)
    if identity is None or not identity.reachable:
        return None
    if primary_customer(session, session.get(Customer, identity.customer_id)).care_opted_out:
        return None
    return identity


def order_opted_out(session: Session, order: Order) -> bool:
    """Whether a customer the order belongs to (its customer, those who verified its phone) opted out of
    care on any channel: then no addressed channel writes to the order's phone or email either."""
    ids = order_customer_ids(session, order)
    return bool(ids) and any(customer.care_opted_out for customer in session.exec(
        select(Customer).where(Customer.id.in_(ids))).all())


def fall_back_to_next_channel(
    session: Session, care: CareMessage, order: Order, identity: ChannelIdentity, channels: Sequence[str],
    now: datetime, due_at: datetime,
) -> str:
    """Schedule ``care``'s step on the next of ``channels`` that reaches the customer, due at ``due_at``;
    what to add to its reason (nothing for a chat when no other channel is configured: the chat's own
    reason says it all, as before there were other channels)."""
    current = care_channel_of(identity)
    if current == "chat" and not any(name in ADDRESSES for name in channels):
        return ""
    following = next_channel_identity(session, order, channels, current)
    if following is None:
        return "; no further channel reaches the customer"
    exists = session.exec(select(CareMessage.id).where(
        CareMessage.order_id == order.id, CareMessage.identity_id == following.id,
        CareMessage.kind == care.kind)).first()
    if exists is not None:
        return f"; already planned on {following.channel}"
    row = CareMessage(order_id=order.id, identity_id=following.id, kind=care.kind, planned_at=care.planned_at,
                      due_at=due_at, created_at=now, updated_at=now)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return f"; already planned on {following.channel}"
    return f"; falling back to {following.channel}"


async def record_send(engine: Engine, care_id: int, outcome: Any, record: Callable[..., Any], *, now: datetime,
                      policy: Any, channel: str) -> None:
    """After an address channel's send (ZNS, email): a fault of the shop's configuration is logged as an
    error (no retry will mend it), and ``record(session, care_id, outcome, now=, policy=)`` stores the
    outcome, in a thread."""
    if getattr(outcome, "configuration", False):
        log.error("%s care message %s not sent: %s", channel, care_id, outcome.reason)

    def write() -> None:
        with Session(engine) as session:
            record(session, care_id, outcome, now=now, policy=policy)
            session.commit()

    await to_thread.run_sync(write)


def note_question_asked(session: Session, care: CareMessage, identity: ChannelIdentity, order: Order,
                        now: datetime) -> None:
    """A rating request or NPS survey that an address channel (ZNS, email) delivered: the customer is now
    asked (only once it went, so a refused send leaves the next channel free to ask)."""
    if care.kind not in (CareKind.rating_request, CareKind.nps):
        return
    customer = primary_customer(session, session.get(Customer, identity.customer_id))
    if care.kind == CareKind.rating_request:
        ratings.request_rating(session, customer, f"order:{order.code}", now, identity=identity, order=order)
    else:
        nps.ask(session, customer, identity, now, order=order)
