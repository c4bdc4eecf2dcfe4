"""Conversation life cycle: open, record messages, escalate, claim, reply, hand back, resolve."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, case, func
from sqlmodel import Session, col, select

from helpdesk.agents.assignment import assign_to, auto_assign
from helpdesk.agents.models import Agent, AgentRole, Team
from helpdesk.agents.teams import may_see, team_names, visibility_filter
from helpdesk.audit import service as audit
from helpdesk.conversations.models import (
    HUMAN_STATES,
    OPEN_STATES,
    Conversation,
    ConversationState,
    ConversationTag,
    DeliveryStatus,
    Message,
    MessageAuthor,
    Priority,
)
from helpdesk.core.db import utcnow
from helpdesk.core.errors import BadRequest, Conflict, Forbidden, NotFound
from helpdesk.customers.models import ChannelIdentity
from helpdesk.outbox.models import OutboxItem
from helpdesk.outbox.queue import queue_outbound

PRIORITY_RANK = {Priority.low: 0, Priority.normal: 1, Priority.high: 2, Priority.urgent: 3}
QUEUE_ORDER = {"urgent": 0, "high": 1, "normal": 2, "low": 3}


def open_conversation(session: Session, identity: ChannelIdentity) -> Conversation:
    """The identity's open conversation, or a new one handled by the bot."""
    conversation = session.exec(
        select(Conversation)
        .where(Conversation.identity_id == identity.id, col(Conversation.state).in_(OPEN_STATES))
        .order_by(col(Conversation.id).desc())
    ).first()
    if conversation is None:
        conversation = Conversation(customer_id=identity.customer_id, identity_id=identity.id,
                                    channel=identity.channel)
        session.add(conversation)
        session.flush()
    return conversation


def add_message(
    session: Session,
    conversation: Conversation,
    *,
    direction: str,
    author: MessageAuthor,
    text: str,
    channel_message_id: str | None = None,
    agent_id: int | None = None,
    payload: str | None = None,
    attachments: list[dict[str, Any]] | None = None,
    is_private: bool = False,
    delivery_status: DeliveryStatus | None = None,
) -> Message:
    """Append a message to the conversation's timeline."""
    message = Message(
        conversation_id=conversation.id,
        direction=direction,
        author=author,
        agent_id=agent_id,
        channel=conversation.channel,
        channel_message_id=channel_message_id,
        text=text,
        payload=payload,
        attachments=attachments or [],
        is_private=is_private,
        delivery_status=delivery_status,
    )
    session.add(message)
    now = utcnow()
    conversation.last_message_at = now
    conversation.updated_at = now
    session.flush()
    return message


def escalate(
    session: Session, conversation: Conversation, reason: str, priority: str = Priority.normal,
    *, actor_type: str = "system", actor_id: int | None = None,
) -> Conversation:
    """Put the conversation in the human queue with a reason and a priority.

    The due times are the SLA domain's: its listener on ``conversation_escalated``
    (``helpdesk/sla/listeners.py``) starts the clocks from the policies and the business hours and
    writes them on the conversation; until it has, none is shown.
    """
    now = utcnow()
    if conversation.state in HUMAN_STATES:
        # Already with people: keep the queue position, but a more urgent reason raises the priority.
        if PRIORITY_RANK.get(priority, 1) > PRIORITY_RANK.get(conversation.priority, 1):
            conversation.priority = priority
        return conversation
    conversation.state = ConversationState.waiting_for_agent
    conversation.escalation_reason = reason
    conversation.priority = priority
    conversation.escalated_at = now
    conversation.first_response_due_at = conversation.resolution_due_at = None
    conversation.first_response_at = None
    conversation.sla_status = "ok"
    conversation.updated_at = now
    audit.record(session, "conversation_escalated", "conversation", conversation.id, actor_type=actor_type,
                 actor_id=actor_id, reason=reason, priority=str(priority))
    session.flush()

    auto_assign(session, conversation)
    return conversation


def get_conversation_for(session: Session, agent: Agent, conversation_id: int) -> Conversation:
    """The conversation if it exists and the agent may see it; NotFound otherwise (no existence leak)."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None or not may_see(session, agent, conversation):
        raise NotFound(f"conversation {conversation_id} not found")
    return conversation


def list_conversations(
    session: Session, agent: Agent, *, state: ConversationState | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[Conversation], int]:
    """Conversations the agent may see, most urgent and oldest-waiting first."""
    query = select(Conversation)
    if state is not None:
        query = query.where(Conversation.state == state)
    visible = visibility_filter(session, agent, Conversation)
    if visible is not None:
        query = query.where(visible)
    count = session.exec(select(func.count()).select_from(query.subquery())).one()
    priority_order = case(QUEUE_ORDER, value=Conversation.priority, else_=len(QUEUE_ORDER))
    rows = session.exec(
        query.order_by(priority_order, col(Conversation.escalated_at).asc(), col(Conversation.id).desc())
        .offset(offset).limit(limit)
    ).all()
    return list(rows), count


def claim(session: Session, conversation: Conversation, agent: Agent) -> Conversation:
    """The agent takes the conversation; the bot falls silent."""
    if conversation.state == ConversationState.resolved:
        raise Conflict("conversation is resolved; reopen it first")
    if conversation.assignee_id not in (None, agent.id) and agent.role == AgentRole.agent:
        raise Conflict("conversation is already assigned to another agent")
    conversation.assignee_id = agent.id
    conversation.state = ConversationState.with_agent
    if conversation.escalated_at is None:
        conversation.escalated_at = utcnow()
        conversation.escalation_reason = conversation.escalation_reason or "agent_takeover"
    conversation.updated_at = utcnow()
    audit.record(session, "conversation_claimed", "conversation", conversation.id, actor_type="agent",
                 actor_id=agent.id)
    return conversation


def check_may_reply(conversation: Conversation, agent: Agent) -> None:
    """Raise unless ``agent`` may answer the customer of ``conversation``: it is open, and it is theirs
    or nobody's (supervisors and admins may answer any conversation they see)."""
    if conversation.state == ConversationState.resolved:
        raise Conflict("conversation is resolved; reopen it before replying")
    if conversation.assignee_id not in (None, agent.id) and agent.role == AgentRole.agent:
        raise Forbidden("conversation is assigned to another agent")


def agent_reply(
    session: Session, conversation: Conversation, agent: Agent, text: str, recipient_id: str,
    *, outbound: dict[str, Any] | None = None,
) -> tuple[Message, OutboxItem]:
    """An agent answers the customer: claims if needed, stores the reply, queues it for delivery
    (``outbound``: the outgoing message's body when it is not plain text, e.g. a file)."""
    check_may_reply(conversation, agent)
    if conversation.state != ConversationState.with_agent or conversation.assignee_id is None:
        claim(session, conversation, agent)
    now = utcnow()
    if conversation.first_response_at is None:
        conversation.first_response_at = now
    message = add_message(session, conversation, direction="out", author=MessageAuthor.agent, text=text,
                          agent_id=agent.id, delivery_status=DeliveryStatus.pending)
    body = outbound if outbound is not None else {"kind": "text", "recipient_id": recipient_id, "text": text}
    item = queue_outbound(session, conversation, message, body, recipient_id)
    audit.record(session, "agent_replied", "conversation", conversation.id, actor_type="agent",
                 actor_id=agent.id, message_id=message.id)
    return message, item


def add_note(session: Session, conversation: Conversation, agent: Agent, text: str) -> Message:
    """A private note: in the timeline for colleagues, never sent to the customer."""
    message = add_message(session, conversation, direction="out", author=MessageAuthor.agent, text=text,
                          agent_id=agent.id, is_private=True)
    audit.record(session, "note_added", "conversation", conversation.id, actor_type="agent", actor_id=agent.id)
    return message


def hand_back_to_bot(session: Session, conversation: Conversation, agent: Agent) -> Conversation:
    """The agent returns the conversation to the bot."""
    if conversation.state == ConversationState.resolved:
        raise Conflict("conversation is resolved")
    conversation.state = ConversationState.bot
    conversation.assignee_id = None
    conversation.updated_at = utcnow()
    audit.record(session, "conversation_handed_back", "conversation", conversation.id, actor_type="agent",
                 actor_id=agent.id)
    return conversation


def resolve(session: Session, conversation: Conversation, agent: Agent | None) -> Conversation:
    """Close the conversation; the customer's next message opens a new one."""
    if conversation.state == ConversationState.resolved:
        raise Conflict("conversation is already resolved")
    now = utcnow()
    conversation.state = ConversationState.resolved
    conversation.resolved_at = now
    conversation.updated_at = now
    audit.record(session, "conversation_resolved", "conversation", conversation.id,
                 actor_type="agent" if agent else "system", actor_id=agent.id if agent else None)
    return conversation


def timeline(session: Session, conversation: Conversation, *, include_private: bool = True,
             after_id: int = 0, limit: int = 200) -> list[Message]:
    """The conversation's messages in order (optionally only after a message id)."""
    query = select(Message).where(Message.conversation_id == conversation.id, Message.id > after_id)
    if not include_private:
        query = query.where(Message.is_private == False)  # noqa: E712
    return list(session.exec(query.order_by(col(Message.id)).limit(limit)).all())


__all__ = ["datetime"]


def reopen(session: Session, conversation: Conversation, agent: Agent) -> Conversation:
    """Bring a resolved conversation back to the human queue."""
    if conversation.state != ConversationState.resolved:
        raise Conflict("only a resolved conversation can be reopened")
    conversation.state = ConversationState.waiting_for_agent
    conversation.resolved_at = None
    conversation.assignee_id = None
    conversation.updated_at = utcnow()
    audit.record(session, "conversation_reopened", "conversation", conversation.id, actor_type="agent",
                 actor_id=agent.id)
    return conversation


def assign(
    session: Session, conversation: Conversation, actor: Agent, *, agent_id: int | None = None,
    team: str | None = None,
) -> Conversation:
    """Give the conversation to an agent, or transfer it to a team's queue."""

    if conversation.state == ConversationState.resolved:
        raise Conflict("conversation is resolved; reopen it first")
    if agent_id is None and team is None:
        raise BadRequest("give agent_id or team")
    if team is not None:
        # In a team that does not exist, the conversation would be hidden from everyone but admins.
        if session.exec(select(Team.id).where(Team.name == team)).first() is None:
            raise NotFound(f"team {team!r} not found (create it first)")
        conversation.team = team
        conversation.assignee_id = None
        conversation.state = ConversationState.waiting_for_agent
        conversation.escalated_at = conversation.escalated_at or utcnow()
        audit.record(session, "conversation_transferred", "conversation", conversation.id, actor_type="agent",
                     actor_id=actor.id, team=team)
    if agent_id is not None:
        target = session.get(Agent, agent_id)
        if target is None or not target.is_active:
            raise NotFound(f"agent {agent_id} not found")
        if actor.role == AgentRole.agent and target.id != actor.id:
            raise Forbidden("agents may only assign conversations to themselves; ask a supervisor")
        if conversation.team is not None and target.role != AgentRole.admin and conversation.team not in team_names(
                session, target):
            raise Conflict(f"agent {agent_id} is not in team {conversation.team}")
        assign_to(session, conversation, target, actor_id=actor.id)
    else:
        session.flush()
        auto_assign(session, conversation)
    return conversation


def set_priority(session: Session, conversation: Conversation, actor: Agent, priority: Priority) -> Conversation:
    """Change how urgent the conversation is."""
    if conversation.priority != priority:
        audit.record(session, "priority_changed", "conversation", conversation.id, actor_type="agent",
                     actor_id=actor.id, before=conversation.priority, after=str(priority))
        conversation.priority = priority
        conversation.updated_at = utcnow()
    return conversation


def set_tags(session: Session, conversation: Conversation, actor: Agent, add: list[str], remove: list[str]) -> list[str]:
    """Add and remove tags; returns the conversation's tags."""
    current = {t.tag: t for t in session.exec(
        select(ConversationTag).where(ConversationTag.conversation_id == conversation.id)).all()}
    for tag in remove:
        if tag in current:
            session.delete(current.pop(tag))
    for tag in add:
        if tag not in current:
            current[tag] = ConversationTag(conversation_id=conversation.id, tag=tag)
            session.add(current[tag])
    audit.record(session, "tags_changed", "conversation", conversation.id, actor_type="agent", actor_id=actor.id,
                 added=add, removed=remove)
    session.flush()
    return sorted(current)


_TAGS_OF = (select(ConversationTag.conversation_id, ConversationTag.tag)
            .where(col(ConversationTag.conversation_id).in_(bindparam("ids", expanding=True)))
            .order_by(ConversationTag.tag))


def tags_of(session: Session, conversation_ids: list[int]) -> dict[int, list[str]]:
    """Tags of several conversations at once."""
    tags: dict[int, list[str]] = {cid: [] for cid in conversation_ids}
    if conversation_ids:
        for conversation_id, tag in session.exec(_TAGS_OF, params={"ids": conversation_ids}):
            tags[conversation_id].append(tag)
    return tags
