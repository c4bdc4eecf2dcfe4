"""Segments: saving definitions, and matching them against the customers now.

Nothing here talks HTTP or commits; callers own the transaction. Definitions are stored as the API took
them (validated) and read back through the same schema, so a stored segment always compiles the way it
did when it was saved, except that a product it names may since have left the catalogue (then
matching it says so, as a 422).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from helpdesk.audit import service as audit
from helpdesk.core.errors import Conflict, NotFound
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.segments.conditions import compile_definition, purchases
from helpdesk.segments.models import Segment
from helpdesk.segments.schemas import DEFINITION, SegmentMember, SegmentPreview, stored_definition
from helpdesk.shop.models import Order

#: customers a preview lists
SAMPLE_SIZE = 20


def mask_phone(phone: str | None) -> str | None:
    """The phone with all but its first three and last three digits hidden (``090****567``): enough to
    tell customers apart in a list, not enough to call them from it."""
    if not phone:
        return None
    if len(phone) <= 6:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 6) + phone[-3:]


def get_segment(session: Session, segment_id: int) -> Segment:
    """The saved segment; NotFound when there is none."""
    segment = session.get(Segment, segment_id)
    if segment is None:
        raise NotFound(f"segment {segment_id} not found")
    return segment


def list_segments(session: Session) -> list[Segment]:
    """Every saved segment, by name."""
    return list(session.exec(select(Segment).order_by(Segment.name, Segment.id)).all())


def conditions_of(segment: Segment) -> list[Any]:
    """The stored definition read back as conditions."""
    return DEFINITION.validate_python(segment.definition)


def check_definition(session: Session, conditions: Sequence[Any], now: datetime) -> None:
    """Raise InvalidSegment (422) when the definition names what does not exist (a product)."""
    compile_definition(session, conditions, now)


def _name_taken(session: Session, name: str, but: int | None = None) -> None:
    query = select(Segment.id).where(func.lower(Segment.name) == name.lower())
    if but is not None:
        query = query.where(Segment.id != but)
    if session.exec(query).first() is not None:
        raise Conflict(f"a segment named {name!r} already exists")


def _flush_named(session: Session, segment: Segment) -> None:
    """Write the segment; Conflict when another request took its name in the meantime (the unique
    constraint decides, the check before only answers first). The transaction is then spoilt: the
    request ends with the Conflict and rolls back."""
    session.add(segment)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"a segment named {segment.name!r} already exists") from None


def create_segment(session: Session, *, name: str, description: str | None, conditions: Sequence[Any],
                   actor_id: int, now: datetime) -> Segment:
    """Save a new segment (audited); Conflict for a name in use, InvalidSegment for an unknown product."""
    _name_taken(session, name)
    check_definition(session, conditions, now)
    segment = Segment(name=name, description=description, definition=stored_definition(list(conditions)),
                      created_by=actor_id, created_at=now, updated_at=now)
    _flush_named(session, segment)
    audit.record(session, "segment_created", "segment", segment.id, actor_type="agent", actor_id=actor_id,
                 name=name, definition=segment.definition)
    return segment


def update_segment(session: Session, segment: Segment, changes: dict[str, Any], *, actor_id: int,
                   now: datetime) -> Segment:
    """Change a segment's name, description or definition (audited with what changed)."""
    if changes.get("name") is not None and changes["name"] != segment.name:
        _name_taken(session, changes["name"], but=segment.id)
        segment.name = changes["name"]
    if "description" in changes:
        segment.description = changes["description"]
    if changes.get("definition") is not None:
        check_definition(session, changes["definition"], now)
        segment.definition = stored_definition(list(changes["definition"]))
    segment.updated_at = now
    _flush_named(session, segment)
    audit.record(session, "segment_updated", "segment", segment.id, actor_type="agent", actor_id=actor_id,
                 fields=",".join(sorted(k for k, v in changes.items()
                                        if v is not None or k == "description")),
                 name=segment.name, definition=segment.definition)
    return segment


def delete_segment(session: Session, segment: Segment, *, actor_id: int) -> None:
    """Delete a segment (audited, with its definition, so that it can be made again)."""
    audit.record(session, "segment_deleted", "segment", segment.id, actor_type="agent", actor_id=actor_id,
                 name=segment.name, definition=segment.definition)
    session.delete(segment)
    session.flush()


def matching_ids(session: Session, conditions: Sequence[Any], now: datetime) -> list[int]:
    """The ids of the customers matching every condition now, ascending."""
    query = select(Customer.id).where(*compile_definition(session, conditions, now)).order_by(Customer.id)
    return list(session.exec(query).all())


def segment_customer_ids(session: Session, segment_id: int, *, now: datetime | None = None) -> list[int]:
    """The ids of the customers the saved segment matches now (ascending). Raises NotFound (the project's
    error for a missing row — see how other domains do it) when there is no such segment."""
    segment = get_segment(session, segment_id)
    return matching_ids(session, conditions_of(segment), now or datetime.now(UTC))


def members(session: Session, customer_ids: Sequence[int]) -> list[SegmentMember]:
    """The customers as a preview lists them, in the order given: masked phone, channels, last purchase."""
    ids = list(customer_ids)
    if not ids:
        return []
    customers = {c.id: c for c in session.exec(select(Customer).where(col(Customer.id).in_(ids)))}
    channels: dict[int, set[str]] = {}
    for customer_id, channel in session.exec(select(ChannelIdentity.customer_id, ChannelIdentity.channel)
                                             .where(col(ChannelIdentity.customer_id).in_(ids))):
        channels.setdefault(customer_id, set()).add(channel)
    last = select(func.max(Order.created_at)).where(*purchases()).scalar_subquery()
    last_orders = dict(session.exec(select(Customer.id, last).where(col(Customer.id).in_(ids))).all())
    return [SegmentMember(id=i, name=customers[i].name, phone=mask_phone(customers[i].phone),
                          channels=sorted(channels.get(i, ())), last_order_at=last_orders.get(i))
            for i in ids if i in customers]


def preview(session: Session, conditions: Sequence[Any], now: datetime) -> SegmentPreview:
    """How many customers the definition matches now, and the first SAMPLE_SIZE of them."""
    where = compile_definition(session, conditions, now)
    count = session.exec(select(func.count()).select_from(Customer).where(*where)).one()
    sample = session.exec(select(Customer.id).where(*where).order_by(Customer.id).limit(SAMPLE_SIZE)).all()
    return SegmentPreview(count=int(count), sample=members(session, list(sample)))
