"""Finding and creating customers from the identities they write with."""

from __future__ import annotations

from sqlmodel import Session, select

from helpdesk.core.db import utcnow
from helpdesk.customers.models import ChannelIdentity, Customer


def identify_sender(
    session: Session, channel: str, external_id: str, display_name: str | None = None
) -> tuple[Customer, ChannelIdentity]:
    """The customer behind a channel identity, creating both on first contact."""
    identity = session.exec(
        select(ChannelIdentity).where(ChannelIdentity.channel == channel, ChannelIdentity.external_id == external_id)
    ).first()
    if identity is None:
        customer = Customer(name=display_name)
        session.add(customer)
        session.flush()
        identity = ChannelIdentity(customer_id=customer.id, channel=channel, external_id=external_id,
                                   display_name=display_name)
        session.add(identity)
        session.flush()
    else:
        customer = session.get(Customer, identity.customer_id)
        while customer.merged_into_id is not None:  # a merged customer speaks as the one it merged into
            customer = session.get(Customer, customer.merged_into_id)
        if display_name and identity.display_name != display_name:
            identity.display_name = display_name
    identity.last_inbound_at = utcnow()
    return customer, identity


def normalise_phone(raw: str) -> str | None:
    """A Vietnamese mobile number as 10 digits starting with 0 (``+84 90 123 4567`` -> ``0901234567``)."""
    digits = "".join(char for char in raw if char.isdigit())
    if digits.startswith("84") and len(digits) == 11:
        digits = "0" + digits[2:]
    if len(digits) == 9 and not digits.startswith("0"):
        digits = "0" + digits
    if len(digits) == 10 and digits.startswith("0"):
        return digits
    return None


def primary_customer(session: Session, customer: Customer) -> Customer:
    """The customer a (possibly merged) record now speaks as."""
    seen = set()
    while customer.merged_into_id is not None and customer.id not in seen:
        seen.add(customer.id)
        customer = session.get(Customer, customer.merged_into_id)
    return customer


def merge_customers(
    session: Session, primary: Customer, secondary: Customer, *, actor_type: str = "system",
    actor_id: int | None = None,
) -> Customer:
    """Fold ``secondary`` into ``primary``: identities, conversations, orders and ratings move over."""
    from helpdesk.audit import service as audit
    from helpdesk.conversations.models import Conversation
    from helpdesk.core.errors import BadRequest
    from helpdesk.ratings.models import Rating
    from helpdesk.shop.models import Order

    primary, secondary = primary_customer(session, primary), primary_customer(session, secondary)
    if primary.id == secondary.id:
        raise BadRequest("cannot merge a customer into itself")
    for model in (ChannelIdentity, Conversation, Order, Rating):
        for row in session.exec(select(model).where(model.customer_id == secondary.id)).all():
            row.customer_id = primary.id
    for field in ("name", "phone", "email"):
        if getattr(primary, field) is None and getattr(secondary, field) is not None:
            setattr(primary, field, getattr(secondary, field))
    primary.phone_verified = primary.phone_verified or secondary.phone_verified
    secondary.merged_into_id = primary.id
    audit.record(session, "customers_merged", "customer", primary.id, actor_type=actor_type, actor_id=actor_id,
                 merged_customer_id=secondary.id)
    session.flush()
    return primary


def link_verified_phone(session: Session, customer: Customer, phone: str) -> Customer:
    """Record a phone the customer confirmed; if another customer verified it on another channel,
    the two are the same person and are merged (the older record stays). Returns who they are now."""
    from helpdesk.core.errors import BadRequest

    number = normalise_phone(phone)
    if number is None:
        raise BadRequest(f"{phone!r} is not a Vietnamese mobile number")
    customer = primary_customer(session, customer)
    other = session.exec(
        select(Customer).where(Customer.phone == number, Customer.phone_verified == True,  # noqa: E712
                               Customer.merged_into_id == None, Customer.id != customer.id)  # noqa: E711
        .order_by(Customer.id)
    ).first()
    if other is not None:
        older, newer = (other, customer) if other.id < customer.id else (customer, other)
        customer = merge_customers(session, older, newer)
    customer.phone = number
    customer.phone_verified = True
    return customer
