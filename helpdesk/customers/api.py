"""Agent routes for customers: profile with identities, one timeline across channels, merging."""

from __future__ import annotations

from fastapi import APIRouter
from sqlmodel import Session, col, select

from helpdesk.conversations.models import Conversation, Message
from helpdesk.conversations.schemas import MessagePublic
from helpdesk.agents.teams import may_see
from helpdesk.core.deps import CurrentAgent, SessionDep
from helpdesk.core.errors import NotFound
from helpdesk.customers import service
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.customers.schemas import CustomerMerge, CustomerPublic, IdentityPublic, TimelinePublic

router = APIRouter(prefix="/api/customers", tags=["customers"])


def _get(session: Session, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"customer {customer_id} not found")
    return service.primary_customer(session, customer)


def _public(session: Session, customer: Customer) -> CustomerPublic:
    identities = session.exec(select(ChannelIdentity).where(ChannelIdentity.customer_id == customer.id)).all()
    return CustomerPublic.model_validate(customer).model_copy(
        update={"identities": [IdentityPublic.model_validate(i) for i in identities]})


@router.get("/{customer_id}", response_model=CustomerPublic)
def read_customer(customer_id: int, agent: CurrentAgent, session: SessionDep) -> CustomerPublic:
    """A customer (following merges) with every channel identity."""
    return _public(session, _get(session, customer_id))


@router.get("/{customer_id}/timeline", response_model=TimelinePublic)
def customer_timeline(customer_id: int, agent: CurrentAgent, session: SessionDep) -> TimelinePublic:
    """All the customer's messages on every channel, in order, from conversations the agent may see."""
    customer = _get(session, customer_id)
    conversations = [c for c in session.exec(select(Conversation).where(Conversation.customer_id == customer.id))
                     if may_see(session, agent, c)]
    ids = [c.id for c in conversations]
    messages = session.exec(select(Message).where(col(Message.conversation_id).in_(ids))
                            .order_by(col(Message.created_at), col(Message.id))).all() if ids else []
    return TimelinePublic(customer_id=customer.id, data=[MessagePublic.model_validate(m) for m in messages])


@router.post("/{customer_id}/merge", response_model=CustomerPublic)
def merge(customer_id: int, body: CustomerMerge, agent: CurrentAgent, session: SessionDep) -> CustomerPublic:
    """Fold another customer record into this one (the same person on two channels)."""
    primary = service.merge_customers(session, _get(session, customer_id), _get(session, body.other_id),
                                      actor_type="agent", actor_id=agent.id)
    return _public(session, primary)
