"""Server-side queries behind the inbox: the views, their counts, enriched rows, orders and warranties.

Every query starts from the conversations the agent may see (``visibility_filter``), so a view can
never list, count or describe another team's conversation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, or_, true
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from helpdesk.agents.models import Agent
from helpdesk.agents.teams import team_names, visibility_filter
from helpdesk.conversations.models import (
    HUMAN_STATES,
    OPEN_STATES,
    Conversation,
    ConversationState,
    Message,
)
from helpdesk.conversations.service import QUEUE_ORDER, tags_of
from helpdesk.core.db import utcnow
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.customers.service import primary_customer
from helpdesk.inbox.schemas import (
    CustomerCommerce,
    InboxRow,
    MessagePreview,
    OrderSummary,
    WarrantySummary,
)
from helpdesk.shop.models import Order, Product, Warranty

#: the views in the order the inbox shows them
VIEWS = ("unassigned", "mine", "team", "all", "breaching", "resolved")
#: a deadline this close counts as "breaching soon"
BREACHING_WINDOW = timedelta(minutes=15)
#: how far back the "resolved" view reaches (older ones stay reachable through the customer's history)
RESOLVED_WINDOW = timedelta(days=7)
PREVIEW_CHARS = 160


@dataclass(frozen=True)
class ViewScope:
    """Who is looking and when: the agent, their teams, and the moment deadlines are measured from."""

    agent: Agent
    teams: tuple[str, ...]
    now: datetime


def scope_for(session: Session, agent: Agent, now: datetime | None = None) -> ViewScope:
    """The agent's scope for one request (their teams are read once)."""
    return ViewScope(agent=agent, teams=tuple(team_names(session, agent)), now=now or utcnow())


def view_conditions(scope: ViewScope) -> dict[str, ColumnElement[bool]]:
    """The SQL condition of each view, before visibility."""
    human = col(Conversation.state).in_(HUMAN_STATES)
    soon = scope.now + BREACHING_WINDOW
    # An agent without a team works the conversations nobody routed to a team.
    own_team = col(Conversation.team).in_(scope.teams) if scope.teams else col(Conversation.team).is_(None)
    return {
        "unassigned": and_(Conversation.state == ConversationState.waiting_for_agent,
                           col(Conversation.assignee_id).is_(None)),
        "mine": and_(human, Conversation.assignee_id == scope.agent.id),
        "team": and_(human, own_team),
        "all": col(Conversation.state).in_(OPEN_STATES),
        "breaching": and_(human, or_(
            col(Conversation.sla_status).in_(("warning", "breached")),
            # The first-response clock only matters until someone has answered.
            and_(col(Conversation.first_response_at).is_(None), col(Conversation.first_response_due_at) <= soon),
            col(Conversation.next_response_due_at) <= soon,
            col(Conversation.resolution_due_at) <= soon,
        )),
        "resolved": and_(Conversation.state == ConversationState.resolved,
                         col(Conversation.resolved_at) >= scope.now - RESOLVED_WINDOW),
    }


def _visible(session: Session, scope: ViewScope) -> ColumnElement[bool]:
    condition = visibility_filter(session, scope.agent, Conversation)
    return true() if condition is None else condition


def view_counts(session: Session, scope: ViewScope) -> dict[str, int]:
    """How many conversations each view holds, in one query."""
    conditions = view_conditions(scope)
    columns = [func.coalesce(func.sum(case((condition, 1), else_=0)), 0).label(name)
               for name, condition in conditions.items()]
    # Every view is a subset of "all" or "resolved": scanning only those keeps old history out.
    query = select(*columns).select_from(Conversation).where(
        _visible(session, scope), or_(conditions["all"], conditions["resolved"]))
    row = session.exec(query).one()
    return {name: int(value or 0) for name, value in zip(conditions, row, strict=True)}


def list_view(session: Session, scope: ViewScope, view: str, *, limit: int = 50,
              offset: int = 0) -> list[Conversation]:
    """One page of a view: most urgent first, then longest waiting (resolved: latest first)."""
    condition = view_conditions(scope)[view]
    query = select(Conversation).where(_visible(session, scope), condition)
    if view == "resolved":
        query = query.order_by(col(Conversation.resolved_at).desc(), col(Conversation.id).desc())
    else:
        priority_order = case(QUEUE_ORDER, value=Conversation.priority, else_=len(QUEUE_ORDER))
        waiting_since = func.coalesce(Conversation.escalated_at, Conversation.created_at)
        query = query.order_by(priority_order, waiting_since, col(Conversation.id))
    return list(session.exec(query.offset(offset).limit(limit)).all())


def visible_conversations(session: Session, scope: ViewScope, ids: list[int]) -> list[Conversation]:
    """The conversations among ``ids`` that the agent may see."""
    if not ids:
        return []
    query = select(Conversation).where(col(Conversation.id).in_(ids), _visible(session, scope))
    return list(session.exec(query).all())


def _memberships(session: Session, scope: ViewScope, ids: list[int]) -> dict[int, list[str]]:
    conditions = view_conditions(scope)
    columns = [case((condition, 1), else_=0) for condition in conditions.values()]
    rows = session.exec(select(Conversation.id, *columns).where(col(Conversation.id).in_(ids))).all()
    return {row[0]: [name for name, flag in zip(conditions, row[1:], strict=True) if flag] for row in rows}


def _previews(session: Session, ids: list[int]) -> dict[int, Message]:
    # Private notes never stand for the conversation: the list shows what the customer saw.
    latest = (select(func.max(Message.id)).where(col(Message.conversation_id).in_(ids),
                                                 Message.is_private == False)  # noqa: E712
              .group_by(Message.conversation_id))
    return {m.conversation_id: m for m in session.exec(select(Message).where(col(Message.id).in_(latest)))}


def _names(session: Session, model, ids: set[int], field) -> dict[int, str | None]:
    if not ids:
        return {}
    return dict(session.exec(select(model.id, field).where(col(model.id).in_(ids))).all())


def inbox_rows(session: Session, scope: ViewScope, conversations: list[Conversation]) -> list[InboxRow]:
    """Rows with customer name, assignee, tags, last message and view membership, in a few batched queries."""
    if not conversations:
        return []
    ids = [c.id for c in conversations]
    customers = _names(session, Customer, {c.customer_id for c in conversations}, Customer.name)
    identities = _names(session, ChannelIdentity, {c.identity_id for c in conversations},
                        ChannelIdentity.display_name)
    assignees = _names(session, Agent, {c.assignee_id for c in conversations if c.assignee_id}, Agent.name)
    tags = tags_of(session, ids)
    previews = _previews(session, ids)
    memberships = _memberships(session, scope, ids)
    rows = []
    for c in conversations:
        last = previews.get(c.id)
        preview = None if last is None else MessagePreview(
            text=(last.text or last.payload or "")[:PREVIEW_CHARS], author=last.author, at=last.created_at,
            has_attachments=bool(last.attachments))
        rows.append(InboxRow(
            id=c.id, customer_id=c.customer_id,
            customer_name=customers.get(c.customer_id) or identities.get(c.identity_id),
            channel=c.channel, state=c.state, priority=c.priority, team=c.team, assignee_id=c.assignee_id,
            assignee_name=assignees.get(c.assignee_id) if c.assignee_id else None, tags=tags.get(c.id, []),
            preview=preview, escalation_reason=c.escalation_reason, escalated_at=c.escalated_at,
            waiting_since=c.escalated_at or c.created_at, last_message_at=c.last_message_at, first_response_due_at=c.first_response_due_at,
            first_response_at=c.first_response_at, next_response_due_at=c.next_response_due_at,
            resolution_due_at=c.resolution_due_at, resolved_at=c.resolved_at, sla_status=c.sla_status,
            views=memberships.get(c.id, []),
        ))
    return rows


def customer_commerce(session: Session, conversation: Conversation, now: datetime | None = None,
                      limit: int = 20) -> CustomerCommerce:
    """The orders and warranties of the conversation's customer: theirs by record, or by verified phone."""
    customer = primary_customer(session, session.get(Customer, conversation.customer_id))
    owned = [Order.customer_id == customer.id]
    # An unverified phone is only a claim: it must not reveal someone else's orders.
    if customer.phone and customer.phone_verified:
        owned.append(Order.phone == customer.phone)
    orders = list(session.exec(select(Order).where(or_(*owned))
                               .order_by(col(Order.created_at).desc()).limit(limit)).all())
    warranties = list(session.exec(select(Warranty).where(col(Warranty.order_id).in_([o.id for o in orders]))
                                   .order_by(col(Warranty.ends_at).desc())).all()) if orders else []
    products = _names(session, Product, {w.product_id for w in warranties}, Product.name)
    codes = {o.id: o.code for o in orders}
    now = now or utcnow()
    return CustomerCommerce(
        customer_id=customer.id, phone=customer.phone, phone_verified=customer.phone_verified,
        orders=[OrderSummary(code=o.code, status=o.status, total_vnd=o.total_vnd, created_at=o.created_at,
                             delivered_at=o.delivered_at,
                             items=[str(line.get("name") or line.get("sku") or "") for line in o.items])
                for o in orders],
        warranties=[WarrantySummary(serial=w.serial, product_name=products.get(w.product_id) or "",
                                    order_code=codes.get(w.order_id), starts_at=w.starts_at, ends_at=w.ends_at,
                                    active=w.starts_at <= now <= w.ends_at)
                    for w in warranties],
    )
