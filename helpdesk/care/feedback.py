"""A rating given outside a chat (a ZNS rating template, an email's star link) for a care message CareDesk
sent: stored as the order's delivery rating through the ratings service chat ratings use, so reports count
it, and a low rating opens the same follow-up conversation in the human queue."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from helpdesk.care.models import CareMessage
from helpdesk.conversations import service as conversations
from helpdesk.conversations.models import MessageAuthor, Priority
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.customers.service import primary_customer
from helpdesk.ratings import service as ratings
from helpdesk.ratings.models import Rating
from helpdesk.shop.models import Order


def record_care_rating(
    session: Session, care: CareMessage, stars: int, comment: str | None, now: datetime, via: str,
) -> tuple[str, int | None, str | None]:
    """Store ``stars`` (and ``comment``) as the rating of the care message's order by its customer; a rating
    of 1-3 that is new or changed opens a follow-up conversation (on the care message's identity) in the
    human queue. Returns (what it was: "delivery", "unchanged" or "ignored"; the escalated conversation's
    id; its priority). ``via`` names where the rating came from in the follow-up's first message."""
    order = session.get(Order, care.order_id)
    identity = session.get(ChannelIdentity, care.identity_id)
    customer = primary_customer(session, session.get(Customer, identity.customer_id))
    before = session.exec(select(Rating).where(Rating.customer_id == customer.id, Rating.order_id == order.id,
                                               Rating.kind == "delivery")).first()
    unchanged = before is not None and before.score == stars and (before.comment or None) == comment
    kind = ratings.record_rating(session, customer, f"order:{order.code}", stars, now, comment)
    if kind != "delivery" or unchanged or stars > 3:
        return ("unchanged" if unchanged else kind), None, None
    conversation = conversations.open_conversation(session, identity)
    note = f": {comment}" if comment else ""
    conversations.add_message(session, conversation, direction="in", author=MessageAuthor.customer,
                              text=f"{stars}★ order:{order.code} ({via}){note}")
    priority = Priority.high if stars <= 2 else Priority.low
    reason = "low_rating" if stars <= 2 else "rating_feedback"
    conversations.escalate(session, conversation, reason, priority)
    return kind, conversation.id, str(priority)
