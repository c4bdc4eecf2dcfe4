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
