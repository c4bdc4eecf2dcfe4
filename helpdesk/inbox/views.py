"""Server-side queries behind the inbox: the views, their counts, enriched rows, orders and warranties.

Every query starts from the conversations the agent may see (``visibility_clause``), so a view can
never list, count or describe another team's conversation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Integer, Select, and_, bindparam, case, func, or_, true
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from helpdesk.agents.models import Agent, AgentRole
from helpdesk.agents.teams import team_names, visibility_clause
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

    @property
    def statements(self) -> _Statements:
        """The view statements of the agent's kind: their role, and whether they belong to a team."""
        return _statements(AgentRole(self.agent.role), bool(self.teams))

    @property
    def params(self) -> dict[str, Any]:
        """The values of the statements' bind parameters for this agent at this moment."""
        return {"me": self.agent.id, "teams": list(self.teams), "soon": self.now + BREACHING_WINDOW,
                "since": self.now - RESOLVED_WINDOW}


def scope_for(session: Session, agent: Agent, now: datetime | None = None) -> ViewScope:
    """The agent's scope for one request (their teams are read once, at its start)."""
    return ViewScope(agent=agent, teams=tuple(team_names(session, agent)), now=now or utcnow())


# The statements are built once per kind of agent, with the agent, their teams and the time as bind
# parameters: building a statement of this size and computing its cache key cost more than running it.
_ME, _TEAMS = bindparam("me"), bindparam("teams", expanding=True)
_SOON, _SINCE = bindparam("soon"), bindparam("since")
_IDS = bindparam("ids", expanding=True)


def view_conditions(has_teams: bool) -> dict[str, ColumnElement[bool]]:
    """The SQL condition of each view, before visibility."""
    human = col(Conversation.state).in_(HUMAN_STATES)
    # An agent without a team works the conversations nobody routed to a team.
    own_team = col(Conversation.team).in_(_TEAMS) if has_teams else col(Conversation.team).is_(None)
    return {
        "unassigned": and_(Conversation.state == ConversationState.waiting_for_agent,
                           col(Conversation.assignee_id).is_(None)),
        "mine": and_(human, Conversation.assignee_id == _ME),
        "team": and_(human, own_team),
        "all": col(Conversation.state).in_(OPEN_STATES),
        "breaching": and_(human, or_(
            col(Conversation.sla_status).in_(("warning", "breached")),
            # The first-response clock only matters until someone has answered.
            and_(col(Conversation.first_response_at).is_(None), col(Conversation.first_response_due_at) <= _SOON),
            col(Conversation.next_response_due_at) <= _SOON,
            col(Conversation.resolution_due_at) <= _SOON,
        )),
        "resolved": and_(Conversation.state == ConversationState.resolved,
                         col(Conversation.resolved_at) >= _SINCE),
    }


@dataclass(frozen=True)
class _Statements:
    counts: Select
    pages: dict[str, Select]
    rows_by_id: Select
    rows_by_id_unchecked: Select


#: what a row reads of the conversation itself
_ROW_FIELDS = ("id", "customer_id", "identity_id", "channel", "state", "priority", "team", "assignee_id",
               "escalation_reason", "escalated_at", "created_at", "last_message_at", "first_response_due_at",
               "first_response_at", "next_response_due_at", "resolution_due_at", "resolved_at", "sla_status")


@cache
def _statements(role: AgentRole, has_teams: bool) -> _Statements:
    conditions = view_conditions(has_teams)
    visible = visibility_clause(role, Conversation, _ME, _TEAMS if has_teams else None)
    if visible is None:
        visible = true()

    columns = [func.coalesce(func.sum(case((condition, 1), else_=0)), 0).label(name)
               for name, condition in conditions.items()]
    # Every view is a subset of "all" or "resolved": scanning only those keeps old history out.
    counts = select(*columns).select_from(Conversation).where(
        visible, or_(conditions["all"], conditions["resolved"]))

    table = Conversation.__table__
    flags = [case((condition, 1), else_=0).label(f"in_{name}") for name, condition in conditions.items()]
    rows = (select(*(table.c[name] for name in _ROW_FIELDS), Customer.name.label("customer_name"),
                   ChannelIdentity.display_name.label("identity_name"), Agent.name.label("assignee_name"), *flags)
            .select_from(Conversation)
            .outerjoin(Customer, Customer.id == Conversation.customer_id)
            .outerjoin(ChannelIdentity, ChannelIdentity.id == Conversation.identity_id)
            .outerjoin(Agent, Agent.id == Conversation.assignee_id))

    pages = {}
    for view, condition in conditions.items():
        # Most urgent first, then longest waiting (resolved: latest first).
        if view == "resolved":
            keys = [col(Conversation.resolved_at).label("k1")]
            order = [keys[0].desc(), col(Conversation.id).desc()]
        else:
            keys = [case(QUEUE_ORDER, value=Conversation.priority, else_=len(QUEUE_ORDER)).label("k1"),
                    func.coalesce(Conversation.escalated_at, Conversation.created_at).label("k2")]
            order = [*keys, col(Conversation.id)]
        # The page is picked from the conversations alone; only its rows are then joined to the names
        # and flagged (joining every conversation of the view before the sort costs more than the sort).
        page = (select(Conversation.id.label("page_id"), *keys).where(visible, condition).order_by(*order)
                .offset(bindparam("offset", type_=Integer)).limit(bindparam("limit", type_=Integer)).subquery())
        if view == "resolved":
            page_order = [page.c.k1.desc(), page.c.page_id.desc()]
        else:
            page_order = [page.c.k1, page.c.k2, page.c.page_id]
        pages[view] = rows.join(page, page.c.page_id == Conversation.id).order_by(*page_order)

    by_id = rows.where(col(Conversation.id).in_(_IDS))
    return _Statements(counts=counts, pages=pages, rows_by_id=by_id.where(visible), rows_by_id_unchecked=by_id)


def view_counts(session: Session, scope: ViewScope) -> dict[str, int]:
    """How many conversations each view holds, in one query."""
    row = session.exec(scope.statements.counts, params=scope.params).one()
    return {name: int(value or 0) for name, value in zip(VIEWS, row, strict=True)}


def view_rows(session: Session, scope: ViewScope, view: str, *, limit: int = 50, offset: int = 0) -> list[InboxRow]:
    """One page of a view: most urgent first, then longest waiting (resolved: latest first)."""
    found = session.exec(scope.statements.pages[view], params={**scope.params, "limit": limit, "offset": offset})
    return _enrich(session, found.all())


def inbox_rows(session: Session, scope: ViewScope, ids: list[int], *, visible_only: bool = True) -> list[InboxRow]:
    """The rows of these conversations (of those the agent may see, unless the caller checked already)."""
    if not ids:
        return []
    statements = scope.statements
    query = statements.rows_by_id if visible_only else statements.rows_by_id_unchecked
    return _enrich(session, session.exec(query, params={**scope.params, "ids": ids}).all())


def _previews(session: Session, ids: list[int]) -> dict[int, MessagePreview]:
    # Private notes never stand for the conversation: the list shows what the customer saw.
    latest = (select(func.max(Message.id)).where(col(Message.conversation_id).in_(ids),
                                                 Message.is_private == False)  # noqa: E712
              .group_by(Message.conversation_id))
    query = select(Message.conversation_id, Message.text, Message.payload, Message.author, Message.created_at,
                   Message.attachments).where(col(Message.id).in_(latest))
    return {row.conversation_id: MessagePreview(text=(row.text or row.payload or "")[:PREVIEW_CHARS],
                                                author=row.author, at=row.created_at,
                                                has_attachments=bool(row.attachments))
            for row in session.exec(query)}


def _enrich(session: Session, found) -> list[InboxRow]:
    """Rows from the rows query's results, with their tags and previews (two more queries in all)."""
    if not found:
        return []
    ids = [row.id for row in found]
    tags = tags_of(session, ids)
    previews = _previews(session, ids)
    return [InboxRow(
        id=row.id, customer_id=row.customer_id, customer_name=row.customer_name or row.identity_name,
        channel=row.channel, state=row.state, priority=row.priority, team=row.team, assignee_id=row.assignee_id,
        assignee_name=row.assignee_name if row.assignee_id else None, tags=tags.get(row.id, []),
        preview=previews.get(row.id), escalation_reason=row.escalation_reason, escalated_at=row.escalated_at,
        waiting_since=row.escalated_at or row.created_at, last_message_at=row.last_message_at,
        first_response_due_at=row.first_response_due_at, first_response_at=row.first_response_at,
        next_response_due_at=row.next_response_due_at, resolution_due_at=row.resolution_due_at,
        resolved_at=row.resolved_at, sla_status=row.sla_status,
        views=[name for name in VIEWS if getattr(row, f"in_{name}")],
    ) for row in found]


def _names(session: Session, model, ids: set[int], field) -> dict[int, str | None]:
    if not ids:
        return {}
    return dict(session.exec(select(model.id, field).where(col(model.id).in_(ids))).all())


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
