"""Agent routes for customers: profile with identities, one timeline across channels, merging and
splitting. A customer is visible to whoever may see one of their conversations (admins: all); to
anyone else it does not exist."""

from __future__ import annotations

from fastapi import APIRouter, Query
from sqlmodel import Session, col, select

from helpdesk.agents.teams import may_see
from helpdesk.attachments.views import public_messages
from helpdesk.conversations.models import Conversation, Message
from helpdesk.agents.deps import CurrentAgent, CurrentSupervisor
from helpdesk.core.deps import SessionDep
from helpdesk.core.errors import Conflict, NotFound
from helpdesk.customers import service, timeline
from helpdesk.customers.models import ChannelIdentity, Customer, CustomerMerge
from helpdesk.customers.schemas import (
    CustomerMergeCreate,
    CustomerMergePublic,
    CustomerMergesPublic,
    CustomerMessagesPublic,
    CustomerPublic,
    CustomerSplit,
    IdentityPublic,
    TimelineEventPublic,
    TimelinePublic,
)

router = APIRouter(prefix="/api/customers", tags=["customers"])


def _public(session: Session, customer: Customer) -> CustomerPublic:
    identities = session.exec(select(ChannelIdentity).where(ChannelIdentity.customer_id == customer.id)).all()
    return CustomerPublic.model_validate(customer).model_copy(
        update={"identities": [IdentityPublic.model_validate(i) for i in identities]})


@router.get("/{customer_id}", response_model=CustomerPublic)
def read_customer(customer_id: int, agent: CurrentAgent, session: SessionDep) -> CustomerPublic:
    """A customer (following merges) with every channel identity."""
    return _public(session, service.visible_customer(session, agent, customer_id))


@router.get("/{customer_id}/messages", response_model=CustomerMessagesPublic)
def customer_messages(customer_id: int, agent: CurrentAgent, session: SessionDep) -> CustomerMessagesPublic:
    """All the customer's messages on every channel, in order, from conversations the agent may see
    (what the inbox shows beside a conversation)."""
    customer = service.visible_customer(session, agent, customer_id)
    conversations = [c for c in session.exec(select(Conversation).where(Conversation.customer_id == customer.id))
                     if may_see(session, agent, c)]
    ids = [c.id for c in conversations]
    messages = session.exec(select(Message).where(col(Message.conversation_id).in_(ids))
                            .order_by(col(Message.created_at), col(Message.id))).all() if ids else []
    return CustomerMessagesPublic(customer_id=customer.id, data=public_messages(session, list(messages)))


@router.get("/{customer_id}/timeline", response_model=TimelinePublic)
def customer_timeline(
    customer_id: int, agent: CurrentAgent, session: SessionDep,
    cursor: str | None = Query(None, max_length=200, description="next_cursor of the previous page"),
    limit: int = Query(50, ge=1, le=200),
) -> TimelinePublic:
    """The customer's events newest first, across every channel and merged identity: conversations
    opened and resolved, notes, tags, orders, warranties, ratings, care messages with their outcome,
    merges. Conversations the agent may not see (and their notes, tags, ratings) are left out."""
    customer = service.visible_customer(session, agent, customer_id)
    page, next_cursor = timeline.timeline_page(timeline.customer_events(session, agent, customer), cursor, limit)
    return TimelinePublic(customer_id=customer.id, next_cursor=next_cursor, data=[
        TimelineEventPublic(kind=e.kind, at=e.at, ref=e.ref, channel=e.channel, conversation_id=e.conversation_id,
                            details=e.details) for e in page])


@router.post("/{customer_id}/merge", response_model=CustomerPublic)
def merge(customer_id: int, body: CustomerMergeCreate, supervisor: CurrentSupervisor,
          session: SessionDep) -> CustomerPublic:
    """Fold another customer record into this one (the same person on two channels); supervisors and
    admins, for customers they may see. The merge is recorded and can be split again."""
    primary = service.visible_customer(session, supervisor, customer_id)
    other = service.visible_customer(session, supervisor, body.other_id)
    record = session.get(Customer, body.other_id)
    if record.merged_into_id is not None:
        # merging "it" again would fold in whoever it now speaks as: say so instead
        raise Conflict(f"customer {body.other_id} is already merged into customer {other.id}")
    return _public(session, service.merge_customers(session, primary, other, actor_type="agent",
                                                     actor_id=supervisor.id))


@router.get("/{customer_id}/merges", response_model=CustomerMergesPublic)
def list_merges(customer_id: int, supervisor: CurrentSupervisor, session: SessionDep) -> CustomerMergesPublic:
    """The merges into this customer (following merges), newest first, split ones included."""
    customer = service.visible_customer(session, supervisor, customer_id)
    rows = session.exec(select(CustomerMerge).where(CustomerMerge.primary_id == customer.id)
                        .order_by(col(CustomerMerge.id).desc())).all()
    return CustomerMergesPublic(data=[CustomerMergePublic.model_validate(r) for r in rows], count=len(rows))


@router.post("/{customer_id}/split", response_model=CustomerPublic)
def split(customer_id: int, body: CustomerSplit, supervisor: CurrentSupervisor,
          session: SessionDep) -> CustomerPublic:
    """Undo a merge into this customer: what it moved goes back and the merged customer stands alone
    again (returned); supervisors and admins."""
    customer = session.get(Customer, customer_id)
    if customer is None or not service.may_see_customer(session, supervisor, customer):
        raise NotFound(f"customer {customer_id} not found")
    record = service.find_merge(session, customer, merge_id=body.merge_id, merged_customer_id=body.customer_id)
    merged = service.split_customer(session, record, actor_type="agent", actor_id=supervisor.id)
    return _public(session, merged)


@router.post("/{customer_id}/identities/{identity_id}/split", response_model=CustomerPublic)
def split_identity(customer_id: int, identity_id: int, supervisor: CurrentSupervisor,
                   session: SessionDep) -> CustomerPublic:
    """Split one channel identity off into a new customer (returned), with its conversations and their
    ratings; supervisors and admins. 404 for an identity that is not this customer's, 409 for their
    last one."""
    customer = service.visible_customer(session, supervisor, customer_id)
    return _public(session, service.split_identity(session, customer, identity_id, actor_type="agent",
                                                   actor_id=supervisor.id))
