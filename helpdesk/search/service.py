"""Search over message text, customers (name, phone, channel id) and order codes, scoped to what the
agent may see. Matching is done by each database's full-text index over the same folding (lower case,
no diacritics, "đ" -> "d"): FTS5 on SQLite, a 'simple' text-search vector of ``caredesk_search_fold``
on PostgreSQL (stored in ``messages.search_vector`` by a trigger, an expression index for customers
and channel identities: see migration 0016_search); ranking and snippets are worked out here, in Python."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import column, func, literal_column, or_, select, table, text, true
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


#: on PostgreSQL, how many of the most recent messages are tested one by one (newest first, stopping
#: at ``MESSAGE_CANDIDATES`` matches) before the index is asked: a word that is at all common is found
#: among them at once (a stored vector's match costs about a microsecond), whereas its index entries
#: would be merged over the whole table (tens of milliseconds)
RECENT_WALK = 20_000
#: how far back the walk goes for an agent who sees few of a common word's matches (rather than
#: fetching every match in the table through the index)
SCOPED_WALK = 200_000


def matching_messages(session: Session, terms: SearchTerms, visible=None,
                      limit: int = MESSAGE_CANDIDATES) -> list[Any]:
    """The most recent messages the agent may see that hold every word of the query: rows of
    (message_id, conversation_id, text) and their conversation's ``_CONVERSATION_COLUMNS``."""
    if session.get_bind().dialect.name == "sqlite":
        fts = _fts("messages_fts")
        query = (select(Message.id.label("message_id"), Message.conversation_id, Message.text,
                        *_CONVERSATION_COLUMNS)
                 .select_from(fts).join(Message, Message.id == fts.c.rowid)
                 .join(Conversation, Conversation.id == Message.conversation_id)
                 .where(literal_column("messages_fts").op("MATCH")(terms.fts5_match())))
        if visible is not None:
            query = query.where(visible)
        # FTS5 reads its matches newest first and stops at the limit
        return list(session.execute(query.order_by(fts.c.rowid.desc()).limit(limit)).all())
    return _pg_matching_messages(session, terms, visible, limit)


def _pg_matching_messages(session: Session, terms: SearchTerms, visible, limit: int) -> list[Any]:
    """PostgreSQL: the most recent ``RECENT_WALK`` messages first; if they hold too few matches the
    agent may see, the index (a rare word), or for a common word the last ``SCOPED_WALK`` messages
    (an agent who sees few conversations). All match ``messages.search_vector`` (the folded text's
    vector, set by a trigger).

    Each statement fixes its plan by its shape, with no planner setting to toggle. The walk reads a
    subquery with its own LIMIT, which the match condition cannot be pushed into (so it is never
    answered through the index). The index query collects its matches in a MATERIALIZED CTE with no
    order or limit, so the planner never walks the whole table in id order hoping to stop early:
    it cannot tell how rare a word is, and for a rare or absent one such a walk reads every row."""
    rows = _pg_visible_rows(session, _pg_walk(terms, RECENT_WALK), visible, limit)
    if len(rows) >= limit:
        return rows
    if visible is not None:
        common = select(literal_column("1")).select_from(_pg_walk(terms, RECENT_WALK)).limit(limit).subquery()
        if session.execute(select(func.count()).select_from(common)).scalar_one() >= limit:
            # a common word, of whose recent matches the agent may see few: read further back
            return _pg_visible_rows(session, _pg_walk(terms, SCOPED_WALK), visible, limit)
    # few matches among the most recent messages: a rare word (or words rarely together), whose
    # matches in the whole table are few to fetch
    hits = select(Message.id, Message.conversation_id, Message.text).where(_pg_condition("messages", terms))
    return _pg_visible_rows(session, hits.cte("hits").prefix_with("MATERIALIZED"), visible, limit)


def _pg_walk(terms: SearchTerms, newest: int):
    """The ``newest`` most recent messages that hold every word of the query (id, conversation_id,
    text), newest first; the match is never pushed into the subquery's LIMIT, so never answered
    through the index."""
    vector = literal_column("messages.search_vector").label("search_vector")  # no model describes it
    recent = (select(Message.id, Message.conversation_id, Message.text, vector)
              .order_by(Message.id.desc()).limit(newest).subquery("recent"))
    return (select(recent.c.id, recent.c.conversation_id, recent.c.text)
            .where(_pg_condition("recent", terms)).subquery("walk"))


def _pg_condition(messages: str, terms: SearchTerms):
    """PostgreSQL: the search vector of the messages (table or subquery) named ``messages`` holds
    every word of the query."""
    return text(f"{messages}.search_vector @@ {_PG_QUERY}").bindparams(tsquery=terms.tsquery())


def _pg_visible_rows(session: Session, hits, visible, limit: int) -> list[Any]:
    """The newest ``limit`` of the matching messages ``hits`` (id, conversation_id, text) whose
    conversation the agent may see, with that conversation's ``_CONVERSATION_COLUMNS``. Each
    conversation is looked up by its key, message by message in id order, until ``limit`` are
    found: a LATERAL subquery with a LIMIT is never turned into a join, which the planner would
    otherwise answer by hashing every conversation (it cannot tell how few the matches are)."""
    conversation = select(*_CONVERSATION_COLUMNS).where(Conversation.id == hits.c.conversation_id)
    if visible is not None:
        conversation = conversation.where(visible)
    conversation = conversation.limit(1).lateral("conversation")
    query = (select(hits.c.id.label("message_id"), hits.c.conversation_id, hits.c.text,
                    *(conversation.c[column.key] for column in _CONVERSATION_COLUMNS))
             .select_from(hits).join(conversation, true()).order_by(hits.c.id.desc()).limit(limit))
    return list(session.execute(query).all())


def _matching_rows(session: Session, fts_table: str, model, pg_expression: str, terms: SearchTerms) -> list[int]:
    """Ids of the newest ``CUSTOMER_CANDIDATES`` rows of ``model`` whose indexed text holds every word."""
    if session.get_bind().dialect.name == "sqlite":
        fts = _fts(fts_table)
        query = (select(fts.c.rowid).where(literal_column(fts_table).op("MATCH")(terms.fts5_match()))
                 .order_by(fts.c.rowid.desc()))
        return list(session.execute(query.limit(CUSTOMER_CANDIDATES)).scalars())
    # the matches are collected through the index before they are ordered (see _pg_matching_messages)
    condition = text(f"{_PG_VECTOR.format(expression=pg_expression)} @@ {_PG_QUERY}").bindparams(
        tsquery=terms.tsquery())
    hits = select(model.id).where(condition).cte("hits").prefix_with("MATERIALIZED")
    query = select(hits.c.id).order_by(hits.c.id.desc()).limit(CUSTOMER_CANDIDATES)
    return list(session.execute(query).scalars())


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
    messages = matching_messages(session, terms, visible)
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
