"""The customer's timeline: everything the shop knows happened with one customer, on every channel and
every identity merged into them, newest first.

Events are read from the tables that own them (conversations, notes, tags, orders, warranties, ratings,
NPS answers, care messages, merges) and merged in memory: one customer's history is conversations and
orders, not their messages one by one, so it stays small. Conversations the agent may not see are left
out, and with them their notes, tags, ratings and NPS answers, exactly as the conversation list leaves
them out.
"""

from __future__ import annotations

import base64
import binascii
import json
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from helpdesk.agents.models import Agent
from helpdesk.agents.teams import visibility_filter
from helpdesk.audit.models import AuditEntry
from helpdesk.care.models import CareMessage
from helpdesk.care.reminders import REPLY_WINDOW, reminder_type
from helpdesk.conversations.models import Conversation, ConversationTag, Message
from helpdesk.core.errors import BadRequest
from helpdesk.customers.models import ChannelIdentity, Customer, CustomerMerge
from helpdesk.nps.models import NpsResponse
from helpdesk.ratings.models import Rating
from helpdesk.shop.models import Order, Product, Warranty

#: the first customer message of a conversation shown in its "opened" event, cut to this length
SUMMARY_CHARS = 200
#: other domains' events of a customer (campaign messages), registered by those domains:
#: ``source(session, customer) -> events``
EVENT_SOURCES: list[Callable[[Session, Customer], list[TimelineEvent]]] = []


@dataclass(frozen=True)
class TimelineEvent:
    """One thing that happened; ``ref`` is the id of the row it comes from (unique within its kind)."""

    kind: str
    at: datetime
    ref: int
    details: dict[str, Any] = field(default_factory=dict)
    channel: str | None = None
    conversation_id: int | None = None

    @property
    def key(self) -> tuple[datetime, str, int]:
        """The order of the timeline (newest first means descending on this key)."""
        return (self.at, self.kind, self.ref)


def encode_cursor(event: TimelineEvent) -> str:
    """An opaque cursor naming the last event of a page; the next page starts after it."""
    raw = json.dumps([event.at.isoformat(), event.kind, event.ref]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str, int]:
    """The key a cursor names; BadRequest for anything this module did not make."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, kind, ref = json.loads(raw)
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None or not isinstance(kind, str) or not isinstance(ref, int):
            raise ValueError
        return (moment.astimezone(UTC), kind, ref)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("cursor is not one this timeline gave out") from None


def _conversation_events(session: Session, conversations: list[Conversation]) -> list[TimelineEvent]:
    ids = [c.id for c in conversations]
    counts = dict(session.exec(select(Message.conversation_id, func.count()).where(
        col(Message.conversation_id).in_(ids), Message.is_private == False)  # noqa: E712
        .group_by(Message.conversation_id)).all()) if ids else {}
    first_texts: dict[int, str] = {}
    if ids:
        firsts = select(func.min(Message.id)).where(col(Message.conversation_id).in_(ids),
                                                    Message.author == "customer").group_by(Message.conversation_id)
        for conversation_id, text in session.exec(select(Message.conversation_id, Message.text)
                                                  .where(col(Message.id).in_(firsts))):
            first_texts[conversation_id] = text[:SUMMARY_CHARS]
    events = []
    for c in conversations:
        summary = {"conversation_id": c.id, "state": c.state, "priority": c.priority, "team": c.team,
                   "assignee_id": c.assignee_id, "messages": counts.get(c.id, 0),
                   "first_text": first_texts.get(c.id), "last_message_at": c.last_message_at}
        events.append(TimelineEvent("conversation_opened", c.created_at, c.id, summary, c.channel, c.id))
        if c.resolved_at is not None:
            events.append(TimelineEvent("conversation_resolved", c.resolved_at, c.id,
                                        {"conversation_id": c.id, "assignee_id": c.assignee_id}, c.channel, c.id))
    return events


def _note_and_tag_events(session: Session, conversations: list[Conversation]) -> list[TimelineEvent]:
    ids = [c.id for c in conversations]
    if not ids:
        return []
    channel_of = {c.id: c.channel for c in conversations}
    events = [TimelineEvent("note", m.created_at, m.id, {"text": m.text, "agent_id": m.agent_id},
                            channel_of[m.conversation_id], m.conversation_id)
              for m in session.exec(select(Message).where(col(Message.conversation_id).in_(ids),
                                                          Message.is_private == True))]  # noqa: E712
    tags = session.exec(select(ConversationTag).where(col(ConversationTag.conversation_id).in_(ids))
                        .order_by(ConversationTag.conversation_id, ConversationTag.tag)).all()
    # a tag row has no id of its own: its place among the customer's tags keeps the cursor exact
    events += [TimelineEvent("tag", t.created_at, index, {"tag": t.tag}, channel_of[t.conversation_id],
                             t.conversation_id) for index, t in enumerate(tags)]
    return events


def _order_events(session: Session, orders: list[Order]) -> list[TimelineEvent]:
    events = []
    for o in orders:
        events.append(TimelineEvent("order", o.created_at, o.id, {
            "code": o.code, "status": o.status, "total_vnd": o.total_vnd, "items": o.items,
            "delivered_at": o.delivered_at}))
    order_ids = [o.id for o in orders]
    if order_ids:
        code_of = {o.id: o.code for o in orders}
        rows = session.exec(select(Warranty, Product).join(Product, Product.id == Warranty.product_id)
                            .where(col(Warranty.order_id).in_(order_ids))).all()
        events += [TimelineEvent("warranty", w.starts_at, w.id, {
            "serial": w.serial, "product": p.name, "product_en": p.name_en, "sku": p.sku,
            "starts_at": w.starts_at, "ends_at": w.ends_at, "order_code": code_of.get(w.order_id)})
            for w, p in rows]
    return events


def _rating_events(session: Session, customer_id: int, hidden: set[int]) -> list[TimelineEvent]:
    ratings = session.exec(select(Rating).where(Rating.customer_id == customer_id)).all()
    return [TimelineEvent("rating", r.created_at, r.id, {
        "rating_kind": r.kind, "score": r.score, "comment": r.comment, "order_id": r.order_id,
        "agent_id": r.agent_id}, None, r.conversation_id)
        for r in ratings if r.conversation_id is None or r.conversation_id not in hidden]


def _nps_events(session: Session, customer_id: int, orders: list[Order], hidden: set[int]) -> list[TimelineEvent]:
    """The customer's NPS answers (surveys not answered are no event), at the moment they answered; an
    answer asked after a conversation the agent may not see is left out with it."""
    answers = session.exec(select(NpsResponse).where(NpsResponse.customer_id == customer_id,
                                                     col(NpsResponse.score).is_not(None),
                                                     col(NpsResponse.at).is_not(None))).all()
    code_of = {o.id: o.code for o in orders}
    missing = {a.order_id for a in answers if a.order_id is not None} - set(code_of)
    if missing:  # an order surveyed under another record of the customer
        code_of.update(session.exec(select(Order.id, Order.code).where(col(Order.id).in_(missing))).all())
    return [TimelineEvent("nps", a.at, a.id, {
        "score": a.score, "comment": a.comment, "channel": a.channel, "order_id": a.order_id,
        "order_code": code_of.get(a.order_id), "product_sku": a.product_sku, "trigger": a.trigger,
        "asked_at": a.asked_at}, a.channel, a.conversation_id)
        for a in answers if a.conversation_id is None or a.conversation_id not in hidden]


def _customer_messages_by_identity(session: Session, identity_ids: set[int], since: datetime
                                   ) -> dict[int, list[datetime]]:
    """When the customer wrote on each identity since ``since``, in time order (one query)."""
    found: dict[int, list[datetime]] = {}
    if identity_ids:
        for identity_id, at in session.exec(
                select(Conversation.identity_id, Message.created_at)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(col(Conversation.identity_id).in_(identity_ids), Message.author == "customer",
                       Message.created_at > since).order_by(Message.created_at)):
            found.setdefault(identity_id, []).append(at)
    return found


def care_outcome(care: CareMessage, delivery_status: str | None, customer_wrote: list[datetime]) -> dict[str, Any]:
    """What became of a care message: its status, the platform's delivery status, whether it was read
    (only where the channel reports it: a ZNS receipt) and whether the customer wrote back on that
    identity within :data:`REPLY_WINDOW` (``customer_wrote``: when they wrote there, in order)."""
    replied_at = None
    if care.sent_at is not None:
        after = bisect_right(customer_wrote, care.sent_at)
        if after < len(customer_wrote) and customer_wrote[after] <= care.sent_at + REPLY_WINDOW:
            replied_at = customer_wrote[after]
    return {"status": care.status, "reason": care.reason, "delivery_status": delivery_status,
            "read": care.delivered_at is not None, "read_at": care.delivered_at,
            "replied": replied_at is not None, "replied_at": replied_at}


def _care_events(session: Session, identities: list[ChannelIdentity], orders: list[Order]) -> list[TimelineEvent]:
    identity_of = {i.id: i for i in identities}
    conditions = []
    if identity_of:
        conditions.append(col(CareMessage.identity_id).in_(list(identity_of)))
    if orders:
        conditions.append(col(CareMessage.order_id).in_([o.id for o in orders]))
    if not conditions:
        return []
    code_of = {o.id: o.code for o in orders}
    cares = session.exec(select(CareMessage).where(or_(*conditions))).all()
    for identity_id in {c.identity_id for c in cares} - set(identity_of):  # an order's care to someone else
        identity_of[identity_id] = session.get(ChannelIdentity, identity_id)
    message_ids = [c.message_id for c in cares if c.message_id is not None]
    delivery = dict(session.exec(select(Message.id, Message.delivery_status)
                                 .where(col(Message.id).in_(message_ids))).all()) if message_ids else {}
    sent = [c.sent_at for c in cares if c.sent_at is not None]
    wrote = _customer_messages_by_identity(session, {c.identity_id for c in cares if c.sent_at}, min(sent)) \
        if sent else {}
    events = []
    for care in cares:
        identity = identity_of.get(care.identity_id)
        details = {"step": care.kind, "reminder": reminder_type(care.kind), "order_id": care.order_id,
                   "order_code": code_of.get(care.order_id), "planned_at": care.planned_at, "due_at": care.due_at,
                   "sent_at": care.sent_at,
                   **care_outcome(care, delivery.get(care.message_id), wrote.get(care.identity_id, []))}
        # a sent message sits on the timeline when it went; one still waiting, when it is due
        events.append(TimelineEvent("care_message", care.sent_at or care.due_at, care.id, details,
                                    identity.channel if identity else None))
    return events


def _merge_events(session: Session, customer_id: int) -> list[TimelineEvent]:
    events = []
    for merge in session.exec(select(CustomerMerge).where(CustomerMerge.primary_id == customer_id)):
        merged = session.get(Customer, merge.merged_id)
        details = {"merge_id": merge.id, "merged_customer_id": merge.merged_id,
                   "merged_name": merged.name if merged else None, "actor_type": merge.actor_type,
                   "actor_id": merge.actor_id, "moved": merge.moved, "split_at": merge.split_at}
        events.append(TimelineEvent("identity_merged", merge.created_at, merge.id, details))
        if merge.split_at is not None:
            events.append(TimelineEvent("identity_split", merge.split_at, merge.id, details))
    return events


#: audit actions about a customer that the timeline shows, by the kind it shows them as
SPLIT_ACTIONS = {"customer_identity_split": "identity_split_off", "customer_created_by_split": "split_from"}


def _identity_split_events(session: Session, customer_id: int) -> list[TimelineEvent]:
    entries = session.exec(select(AuditEntry).where(AuditEntry.entity_type == "customer",
                                                    AuditEntry.entity_id == customer_id,
                                                    col(AuditEntry.action).in_(list(SPLIT_ACTIONS)))).all()
    return [TimelineEvent(SPLIT_ACTIONS[e.action], e.created_at, e.id, {**e.details, "actor_id": e.actor_id},
                          e.details.get("channel")) for e in entries]


def customer_events(session: Session, agent: Agent, customer: Customer) -> list[TimelineEvent]:
    """Every event of the customer (already followed to the record they speak as) the agent may see,
    newest first."""
    condition = visibility_filter(session, agent, Conversation)
    all_conversations = session.exec(select(Conversation).where(Conversation.customer_id == customer.id)).all()
    if condition is None:
        visible = list(all_conversations)
    else:
        allowed = set(session.exec(select(Conversation.id).where(Conversation.customer_id == customer.id,
                                                                 condition)))
        visible = [c for c in all_conversations if c.id in allowed]
    hidden = {c.id for c in all_conversations} - {c.id for c in visible}
    identities = session.exec(select(ChannelIdentity).where(ChannelIdentity.customer_id == customer.id)).all()
    orders = session.exec(select(Order).where(Order.customer_id == customer.id)).all()
    events = (_conversation_events(session, visible) + _note_and_tag_events(session, visible)
              + _order_events(session, list(orders)) + _rating_events(session, customer.id, hidden)
              + _nps_events(session, customer.id, list(orders), hidden)
              + _care_events(session, list(identities), list(orders)) + _merge_events(session, customer.id)
              + _identity_split_events(session, customer.id))
    for source in EVENT_SOURCES:
        events += source(session, customer)
    events.sort(key=lambda e: e.key, reverse=True)
    return events


def timeline_page(events: list[TimelineEvent], cursor: str | None, limit: int
                  ) -> tuple[list[TimelineEvent], str | None]:
    """One page of the (newest first) events after ``cursor``, and the cursor of the page after it."""
    if cursor is not None:
        after = decode_cursor(cursor)
        events = [e for e in events if e.key < after]
    page = events[:limit]
    return page, encode_cursor(page[-1]) if len(events) > limit else None
