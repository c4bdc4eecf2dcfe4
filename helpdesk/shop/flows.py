"""Delivering an order, which crosses two domains: the shop marks it delivered and starts its
warranties, and after-delivery care schedules its sequence, in one transaction.

Care is started here, not by a listener of the ``order_delivered`` event, because callers need
the scheduled rows at once and atomically: the delivered route answers with the order's care
sequence, the CSV import reports how many messages it scheduled, and the ``caredesk orders``
commands run without an event bus. The routes publish ``order_delivered`` after they commit, and
what hangs off it is the early send of what was scheduled (``helpdesk/care/listeners.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from helpdesk.care.service import CarePolicy, schedule_care_sequence
from helpdesk.customers.models import ChannelIdentity
from helpdesk.shop.models import Order
from helpdesk.shop.service import mark_order_delivered


@dataclass
class DeliveryOutcome:
    """What delivering an order did."""

    order: Order
    newly_delivered: bool
    scheduled: int = 0


def deliver_order(
    session: Session, order: Order, *, policy: CarePolicy, now: datetime,
    delivered_at: datetime | None = None, identity: ChannelIdentity | None = None,
    actor_type: str = "system", actor_id: int | None = None,
) -> DeliveryOutcome:
    """Mark the order delivered, start its warranties and schedule its care sequence (idempotent).

    A repeated call keeps the first delivery time and schedules nothing twice; it may add the
    identity it names.
    """
    newly = mark_order_delivered(session, order, now=now, delivered_at=delivered_at, identity=identity,
                                 actor_type=actor_type, actor_id=actor_id)
    scheduled = schedule_care_sequence(session, order, policy=policy, now=now,
                                       identities=[identity] if identity else [])
    return DeliveryOutcome(order, newly, scheduled)
