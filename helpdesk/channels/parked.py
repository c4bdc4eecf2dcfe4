"""Parked messages: inbound events whose turn failed too often for a reason of their own.

The worker tries a failing turn again a few times (``CAREDESK_WORKER__MAX_ATTEMPTS``), then parks it:
the event is settled with its error, what the customer wrote is stored and the conversation goes to
a person. Admins see the parked events and may send one through again once the cause is fixed.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import delete, func, select, update
from sqlmodel import Session

from helpdesk.audit import service as audit
from helpdesk.channels.models import EventStatus, InboundAttempt, InboundEvent, InboundOutcome
from helpdesk.core.errors import Conflict, NotFound

_events, _outcomes, _attempts = InboundEvent.__table__, InboundOutcome.__table__, InboundAttempt.__table__


class ParkedEventPublic(BaseModel):
    """A parked inbound event, as admins see it."""

    id: int
    channel: str
    sender_id: str
    text: str | None
    error: str | None
    attempts: int
    parked_at: datetime
    message_id: int | None


class ParkedEventsPublic(BaseModel):
    """A page of parked events, newest first."""

    data: list[ParkedEventPublic]
    count: int


def list_parked(session: Session, *, limit: int = 100, offset: int = 0) -> ParkedEventsPublic:
    """The parked events, newest first, with how many there are."""
    parked = _outcomes.c.status == EventStatus.parked
    count = session.connection().execute(select(func.count()).select_from(_outcomes).where(parked)).scalar_one()
    rows = session.connection().execute(
        select(_events.c.id, _events.c.channel, _events.c.sender_id, _events.c.message, _outcomes.c.error,
               _outcomes.c.processed_at, _attempts.c.attempts, _attempts.c.message_id)
        .select_from(_outcomes.join(_events, _events.c.id == _outcomes.c.event_id)
                     .outerjoin(_attempts, _attempts.c.event_id == _outcomes.c.event_id))
        .where(parked).order_by(_outcomes.c.event_id.desc()).limit(limit).offset(offset)).all()
    return ParkedEventsPublic(count=count, data=[
        ParkedEventPublic(id=row.id, channel=row.channel, sender_id=row.sender_id,
                          text=(row.message or {}).get("text"), error=row.error, attempts=row.attempts or 0,
                          parked_at=row.processed_at, message_id=row.message_id) for row in rows])


def release_parked(session: Session, event_id: int, *, actor_id: int) -> tuple[str, str]:
    """Make a parked event wait again, with a fresh count of tries (the message stored when it was
    parked is kept, and answered rather than stored twice); its (channel, sender) for the worker."""
    connection = session.connection()
    event = connection.execute(
        select(_events.c.channel, _events.c.sender_id, _outcomes.c.status)
        .select_from(_events.outerjoin(_outcomes, _outcomes.c.event_id == _events.c.id))
        .where(_events.c.id == event_id)).first()
    if event is None:
        raise NotFound(f"inbound event {event_id} not found")
    if event.status != EventStatus.parked:
        raise Conflict(f"inbound event {event_id} is not parked")
    connection.execute(delete(_outcomes).where(_outcomes.c.event_id == event_id))
    connection.execute(update(_attempts).where(_attempts.c.event_id == event_id).values(attempts=0))
    audit.record(session, "parked_event_retried", "inbound_event", event_id, actor_type="agent", actor_id=actor_id)
    return event.channel, event.sender_id
