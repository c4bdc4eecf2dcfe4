"""Search over message text, customers (name, phone, channel id) and order codes, scoped to what the
agent may see. Matching is done by each database's full-text index over the same folding (lower case,
no diacritics, "đ" -> "d"): FTS5 on SQLite, a 'simple' text-search vector of ``caredesk_search_fold``
on PostgreSQL (see migration 0016_search); ranking and snippets are worked out here, in Python."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import column, func, literal_column, or_, select, table, text
from sqlmodel import Session

from helpdesk.agents.models import Agent, AgentRole
from helpdesk.agents.teams import visibility_filter
from helpdesk.conversations.models import Conversation, Message
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.customers.service import normalise_phone
from helpdesk.search.schemas import ConversationHit, CustomerHit, SearchResults
from helpdesk.search.terms import SearchTerms, prefix_upper_bound, relevance, snippet_html, snippet_parts
from helpdesk.shop.models import Order

#: most recent matching messages read per query, ranked here; a common word matches far more, and
#: reading them all would cost time in proportion to how common it is
MESSAGE_CANDIDATES = 100
#: customers (and identities, orders) read per way of matching
CUSTOMER_CANDIDATES = 50
#: relevance of a conversation found through its customer (above any message match, see ``relevance``)
CUSTOMER_RELEVANCE = 4

_PG_VECTOR = "to_tsvector('simple'::regconfig, caredesk_search_fold({expression}))"
_PG_QUERY = "to_tsquery('simple'::regconfig, :tsquery)"


#: what a result needs of a conversation (rows of these, not ORM objects: far cheaper to read)
_CONVERSATION_COLUMNS = (Conversation.id, Conversation.customer_id, Conversation.channel, Conversation.state,
                         Conversation.last_message_at, Conversation.updated_at, Conversation.created_at)


def _fts(name: str):
    return table(name, column("rowid"))


def _text_matches(session: Session, fts_table: str, pg_expression: str, terms: SearchTerms):
    """A condition that the row's indexed text holds every word of the query, and the column that
    keys it (for SQLite, the FTS table's rowid; for PostgreSQL, None: the condition is on the row)."""
    if session.get_bind().dialect.name == "sqlite":
        fts = _fts(fts_table)
        return literal_column(fts_table).op("MATCH")(terms.fts5_match()), fts
    condition = text(f"{_PG_VECTOR.format(expression=pg_expression)} @@ {_PG_QUERY}").bindparams(
        tsquery=terms.tsquery())
    return condition, None


#: on PostgreSQL, the most recent messages are searched first, then more: (how many of the last ids
#: to look at, or None for all); a common word fills the first window, a rare one is found in all
RECENT_WINDOWS = (50_000, 500_000, None)


@contextmanager
def _index_plans_only(session: Session) -> Iterator[None]:
    """On PostgreSQL, for the statements inside: have the planner reach rows through bitmaps of the
    search indexes, never by walking a table (in id order, to stop at the LIMIT) and folding each
    row's text on the way. The planner cannot tell how rare a word is; for one that is rare or
    absent, such a walk reads the whole table (seconds at a million messages)."""
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    session.execute(text("SELECT set_config('enable_seqscan', 'off', true), "
                         "set_config('enable_indexscan', 'off', true)"))
    try:
        yield
    finally:
        session.execute(text("SELECT set_config('enable_seqscan', 'on', true), "
                             "set_config('enable_indexscan', 'on', true)"))


def matching_messages(session: Session, terms: SearchTerms, visible=None, limit: int = MESSAGE_CANDIDATES,
                      newest: int | None = None) -> list[Any]:
    """The most recent messages the agent may see that hold every word of the query: rows of
    (message_id, conversation_id, text) and their conversation's ``_CONVERSATION_COLUMNS``.
    ``newest``: the highest message id, to look at the most recent first (PostgreSQL)."""
    condition, fts = _text_matches(session, "messages_fts", "messages.text", terms)
    query = select(Message.id.label("message_id"), Message.conversation_id, Message.text, *_CONVERSATION_COLUMNS)
    if fts is not None:
        query = query.select_from(fts).join(Message, Message.id == fts.c.rowid)
        order = fts.c.rowid.desc()
    else:
        order = Message.id.desc()
    query = query.join(Conversation, Conversation.id == Message.conversation_id).where(condition)
    if visible is not None:
        query = query.where(visible)
    query = query.order_by(order).limit(limit)
    if fts is not None or newest is None:  # FTS5 reads its matches newest first and stops at the limit
        return list(session.execute(query).all())
    for window in RECENT_WINDOWS:
        if window is None or window >= newest:
            break
        rows = list(session.execute(query.where(Message.id > newest - window)).all())
        if len(rows) >= limit:
            return rows
    return list(session.execute(query).all())


def _matching_rows(session: Session, fts_table: str, model, pg_expression: str, terms: SearchTerms) -> list[int]:
    condition, fts = _text_matches(session, fts_table, pg_expression, terms)
    if fts is not None:
        query = select(fts.c.rowid).where(condition).order_by(fts.c.rowid.desc())
        return list(session.execute(query.limit(CUSTOMER_CANDIDATES)).scalars())
    query = select(model.id).where(condition).order_by(model.id.desc())
    return list(session.execute(query.limit(CUSTOMER_CANDIDATES)).scalars())


def matching_customers(session: Session, terms: SearchTerms) -> dict[int, tuple[str, str]]:
    """Customers the query names, by id: (how it matched, the text it matched in), best way first:
    an order code, a phone, a name, a channel id or display name."""
    found: dict[int, tuple[str, str]] = {}

    def add(customer_id: int | None, matched: str, source: str) -> None:
        if customer_id is not None and customer_id not in found:
            found[customer_id] = (matched, source)

    if terms.code_prefix:
        orders = session.execute(
            select(Order.code, Order.customer_id, Order.phone)
            .where(Order.code >= terms.code_prefix, Order.code < prefix_upper_bound(terms.code_prefix))
            .order_by(Order.code).limit(CUSTOMER_CANDIDATES)).all()
        phones = {normalise_phone(order.phone or "") for order in orders if order.customer_id is None} - {None}
        by_phone = dict(session.execute(select(Customer.phone, Customer.id).where(
            Customer.phone.in_(phones), Customer.merged_into_id.is_(None))).all()) if phones else {}
        for order in orders:
            add(order.customer_id or by_phone.get(normalise_phone(order.phone or "")), "order", order.code)
    for prefix in terms.phone_prefixes:
        for customer_id, phone in session.execute(
                select(Customer.id, Customer.phone)
                .where(Customer.phone >= prefix, Customer.phone < prefix_upper_bound(prefix))
                .order_by(Customer.id.desc()).limit(CUSTOMER_CANDIDATES)):
            add(customer_id, "phone", phone)
    for customer_id in _matching_rows(session, "customers_fts", Customer, "coalesce(customers.name, '')", terms):
        add(customer_id, "name", "")
    identity_ids = _matching_rows(session, "identities_fts", ChannelIdentity,
                                  "coalesce(channel_identities.display_name, '') || ' ' || "
                                  "channel_identities.external_id", terms)
    if identity_ids:
        for customer_id, name, external_id in session.execute(
                select(ChannelIdentity.customer_id, ChannelIdentity.display_name, ChannelIdentity.external_id)
                .where(ChannelIdentity.id.in_(identity_ids))):
            add(customer_id, "customer", f"{name or ''} {external_id}".strip())
    return found


def _customer_names(session: Session, customer_ids: Iterable[int]) -> dict[int, tuple[Any, list[str], str]]:
    """Each customer with their channels and the name to show (their own, else an identity's)."""
    ids = list(set(customer_ids))
    if not ids:
        return {}
    customers = {c.id: c for c in session.execute(
        select(Customer.id, Customer.name, Customer.phone, Customer.merged_into_id).where(Customer.id.in_(ids)))}
    identities: dict[int, list[Any]] = {}
    for row in session.execute(select(ChannelIdentity.customer_id, ChannelIdentity.channel,
                                      ChannelIdentity.display_name, ChannelIdentity.external_id)
                               .where(ChannelIdentity.customer_id.in_(ids)).order_by(ChannelIdentity.id)):
        identities.setdefault(row.customer_id, []).append(row)
    named = {}
    for customer_id, customer in customers.items():
        own = identities.get(customer_id, [])
        display = customer.name or next((i.display_name for i in own if i.display_name), None)
        display = display or (own[0].external_id if own else f"#{customer_id}")
        named[customer_id] = (customer, list(dict.fromkeys(i.channel for i in own)), display)
    return named


def _latest_conversations(session: Session, customer_ids: Iterable[int], visible) -> dict[int, Any]:
    """Each customer's most recently active conversation that the agent may see."""
    ids = list(set(customer_ids))
    if not ids:
        return {}
    query = select(*_CONVERSATION_COLUMNS).where(Conversation.customer_id.in_(ids))
    if visible is not None:
        query = query.where(visible)
    latest: dict[int, Any] = {}
    for conversation in session.execute(query):
        current = latest.get(conversation.customer_id)
        if current is None or _activity(conversation) > _activity(current):
            latest[conversation.customer_id] = conversation
    return latest


def _activity(conversation) -> float:
    when: datetime | None = conversation.last_message_at or conversation.updated_at or conversation.created_at
    return when.timestamp() if when else 0.0


def search(session: Session, agent: Agent, terms: SearchTerms, limit: int = 20) -> SearchResults:
    """Conversations and customers the query finds among what the agent may see, most relevant first,
    then most recently active."""
    visible = visibility_filter(session, agent, Conversation)
    newest = None
    if session.get_bind().dialect.name == "postgresql":
        newest = session.execute(select(func.max(Message.id))).scalar() or 0
    with _index_plans_only(session):
        messages = matching_messages(session, terms, visible, newest=newest)
        customers_found = matching_customers(session, terms)
    if customers_found:
        merged = set(session.execute(select(Customer.id).where(
            Customer.id.in_(list(customers_found)), Customer.merged_into_id.is_not(None))).scalars())
        customers_found = {cid: how for cid, how in customers_found.items() if cid not in merged}
    latest = _latest_conversations(session, customers_found, visible)
    if agent.role != AgentRole.admin:
        # a customer is shown only to those who may see one of their conversations
        customers_found = {cid: how for cid, how in customers_found.items() if cid in latest}

    # conversation id -> (relevance, how it matched, the text to make the snippet of, message id,
    # the conversation's row); snippets and names are worked out for the hits returned only
    found: dict[int, tuple[int, str, str, int | None, Any]] = {}
    for row in messages:  # most recent first: of equal relevance, the most recent message is kept
        score = relevance(row.text, terms)
        if row.conversation_id not in found or score > found[row.conversation_id][0]:
            found[row.conversation_id] = (score, "message", row.text, row.message_id, row)
    kinds = {"order": 0, "phone": 1, "name": 2, "customer": 3}
    ranked_customers = sorted(customers_found, key=lambda cid: (
        kinds.get(customers_found[cid][0], 9), -_activity(latest[cid]) if cid in latest else 0))[:limit]
    for customer_id in ranked_customers:
        conversation = latest.get(customer_id)
        if conversation is not None:
            matched, source = customers_found[customer_id]
            found[conversation.id] = (CUSTOMER_RELEVANCE, matched, source, None, conversation)
    ordered = sorted(found.values(), key=lambda hit: (-hit[0], -_activity(hit[4])))[:limit]
    names = _customer_names(session, [hit[4].customer_id for hit in ordered] + ranked_customers)

    customer_hits = []
    for customer_id in ranked_customers:
        customer, channels, display = names[customer_id]
        matched, source = customers_found[customer_id]
        parts = snippet_parts(source or display, terms)
        conversation = latest.get(customer_id)
        customer_hits.append(CustomerHit(
            id=customer_id, name=display, phone=customer.phone, channels=channels, matched=matched,
            snippet=snippet_html(parts), snippet_parts=parts,
            conversation_id=conversation.id if conversation else None,
            last_activity_at=conversation.last_message_at if conversation else None))
    hits = [_conversation_hit(row, names, matched, score, snippet_parts(source or names[row.customer_id][2], terms),
                              message_id)
            for score, matched, source, message_id, row in ordered]
    return SearchResults(conversations=hits, customers=customer_hits)


def _conversation_hit(conversation, names, matched: str, score: int, parts, message_id) -> ConversationHit:
    _customer, _channels, display = names.get(conversation.customer_id, (None, [], f"#{conversation.customer_id}"))
    return ConversationHit(
        id=conversation.id, conversation_id=conversation.id, customer_id=conversation.customer_id,
        customer_name=display, channel=conversation.channel, status=conversation.state, matched=matched,
        message_id=message_id, snippet=snippet_html(parts), snippet_parts=parts,
        last_activity_at=conversation.last_message_at or conversation.updated_at, relevance=score)
