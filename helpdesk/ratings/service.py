"""Ratings customers give: the shop asks (after a delivery, after a conversation a person helped
with), remembers what it asked, and stores the stars and comments against the order or the agent.
Nothing here talks HTTP or commits; callers own the transaction."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from bot.responses import Responses
from connectors.base import OutboundRatingRequest
from helpdesk.conversations import service as conversations
from helpdesk.conversations.models import Conversation, DeliveryStatus, MessageAuthor
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.customers.service import normalise_phone, primary_customer
from helpdesk.outbox.models import OutboxItem
from helpdesk.outbox.queue import queue_outbound
from helpdesk.ratings.models import Rating, RatingRequest
from helpdesk.shop.directory import normalise_order_code
from helpdesk.shop.models import Order

log = logging.getLogger(__name__)

#: a typed "5" answers a rating request only this long after it was sent
RATING_ANSWER_WINDOW = timedelta(days=7)



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


def has_rated_order(session: Session, customer: Customer, order: Order) -> bool:
    """Whether the customer already rated the delivery of this order."""
    return session.exec(select(Rating.id).where(
        Rating.customer_id == customer.id, Rating.order_id == order.id, Rating.kind == "delivery",
    )).first() is not None


def request_csat(
    session: Session, conversation: Conversation, *, responses: Responses, now: datetime,
) -> OutboxItem | None:
    """Ask the customer of a resolved conversation for a 1–5 rating of the help (buttons where the
    channel has them); the queued item, for the caller to drain after committing. Not when nobody
    from the team took part, or the customer cannot be reached or opted out of proactive messages."""
    if conversation.escalated_at is None:
        return None
    identity = session.get(ChannelIdentity, conversation.identity_id)
    customer = primary_customer(session, session.get(Customer, conversation.customer_id))
    if identity is None or not identity.reachable or customer.care_opted_out:
        return None
    text = responses.render("csat_request", customer.locale or "vi")
    subject = f"conversation:{conversation.id}"
    prompt = OutboundRatingRequest(recipient_id=identity.external_id, text=text, subject=subject)
    message = conversations.add_message(session, conversation, direction="out", author=MessageAuthor.bot,
                                        text=text, delivery_status=DeliveryStatus.pending)
    request_rating(session, customer, subject, now, identity=identity, conversation=conversation)
    return queue_outbound(session, conversation, message, prompt.model_dump(mode="json"), identity.external_id)
