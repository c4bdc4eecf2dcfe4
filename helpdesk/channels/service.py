"""The inbound ledger: store each platform event once, and find the ones still waiting."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, NamedTuple

from sqlalchemy import exists, func
from sqlmodel import Session, select

from connectors.base import InboundMessage
from helpdesk.channels.models import EventStatus, InboundEvent, InboundOutcome
from helpdesk.core.db import insert_unless_present, utcnow

#: an inbound event, unless (channel, external id) is stored already
INBOUND_INSERT = insert_unless_present(InboundEvent.__table__, ["channel", "external_id"],
                                        InboundEvent.__table__.c.id)


class RecordedEvent(NamedTuple):
    """A newly stored inbound event: its id and whether it waits to be processed."""

    id: int
    status: EventStatus


def inbound_values(message: InboundMessage, raw: Any) -> dict[str, Any]:
    """The ledger row of an inbound event, by column (what ``INBOUND_INSERT`` binds)."""
    return dict(
        channel=message.channel,
        external_id=message.external_id,
        sender_id=message.sender_id,
        kind=message.kind,
        message=message.model_dump(mode="json"),
        raw=raw,
        status=EventStatus.received if message.answerable or message.kind == "message" else EventStatus.ignored,
        received_at=utcnow(),
    )


def record_inbound(session: Session, message: InboundMessage, raw: Any) -> RecordedEvent | None:
    """Store the event unless (channel, external id) was seen before; None for a duplicate.

    The unique constraint decides, in the insert itself (``ON CONFLICT DO NOTHING RETURNING``): one
    round trip, no read first and no savepoint, so many events can share one transaction.
    """
    values = inbound_values(message, raw)
    connection = session.connection()
    event_id = connection.execute(INBOUND_INSERT[connection.dialect.name], values).scalar_one_or_none()
    return None if event_id is None else RecordedEvent(event_id, values["status"])


class PendingEvent(NamedTuple):
    """A stored event that waits to be processed."""

    id: int
    channel: str
    sender_id: str


#: events received this much before the sweep's cut-off are taken to be committed: the ids below
#: theirs need not be looked at again once settled (ids come in commit order on one SQLite writer;
#: on PostgreSQL concurrent edges may commit them a little out of order)
SETTLED_MARGIN = timedelta(seconds=60)
_events, _outcomes = InboundEvent.__table__, InboundOutcome.__table__


#: waiting events read by one look of the sweep
PENDING_PAGE = 1000


def pending_events(session: Session, *, after_id: int = 0, older_than_s: float = 0.0,
                   limit: int = PENDING_PAGE) -> tuple[list[PendingEvent], int]:
    """Events stored to be processed and not settled yet (e.g. the process stopped after acknowledging
    them), oldest first: those with an id above ``after_id``, received more than ``older_than_s`` ago.
    Also the ``after_id`` for the next look, below which every event is settled (the ledger is never
    scanned from its beginning twice)."""
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    unsettled = ~exists().where(_outcomes.c.event_id == _events.c.id)
    rows = session.connection().execute(
        select(_events.c.id, _events.c.channel, _events.c.sender_id)
        .where(_events.c.id > after_id, _events.c.status == EventStatus.received,
               _events.c.received_at <= cutoff, unsettled)
        .order_by(_events.c.id).limit(limit)).all()
    if rows:
        return [PendingEvent(*row) for row in rows], rows[0].id - 1
    settled_through = session.connection().execute(
        select(func.max(_events.c.id)).where(_events.c.id > after_id,
                                             _events.c.received_at <= cutoff - SETTLED_MARGIN)).scalar()
    return [], after_id if settled_through is None else settled_through
