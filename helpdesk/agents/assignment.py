"""Who gets a conversation: round robin among online agents of its team, within their capacity;
and putting an agent's conversations back in the queue when they go offline."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, col, select

from helpdesk.agents.models import Agent, Team, TeamMember
from helpdesk.audit import service as audit
from helpdesk.conversations.models import Conversation, ConversationState, Message
from helpdesk.core.db import utcnow


def open_load(session: Session, agent_ids: list[int]) -> dict[int, int]:
    """How many unresolved conversations each agent holds."""
    if not agent_ids:
        return {}
    rows = session.exec(
        select(Conversation.assignee_id, func.count())
        .where(col(Conversation.assignee_id).in_(agent_ids), Conversation.state == ConversationState.with_agent)
        .group_by(Conversation.assignee_id)
    ).all()
    return {agent_id: count for agent_id, count in rows}


def pick_agent(session: Session, team: str | None) -> Agent | None:
    """The online agent of ``team`` (any team when None) with room, who was assigned least recently."""
    query = select(Agent).where(Agent.is_online == True, Agent.is_active == True)  # noqa: E712
    if team is not None:
        query = query.join(TeamMember, TeamMember.agent_id == Agent.id).join(Team, Team.id == TeamMember.team_id) \
            .where(Team.name == team)
    candidates = list(session.exec(query).all())
    load = open_load(session, [agent.id for agent in candidates])
    with_room = [agent for agent in candidates if load.get(agent.id, 0) < agent.capacity]
    if not with_room:
        return None
    # Never-assigned agents first, then the one whose last assignment is oldest: a fair rotation.
    return min(with_room, key=lambda agent: (agent.last_assigned_at is not None, agent.last_assigned_at or 0,
                                             agent.id))


def assign_to(session: Session, conversation: Conversation, agent: Agent, *, actor_id: int | None = None) -> None:
    """Give the conversation to the agent: they own it now and the bot stays silent."""
    conversation.assignee_id = agent.id
    conversation.state = ConversationState.with_agent
    conversation.updated_at = utcnow()
    agent.last_assigned_at = utcnow()
    audit.record(session, "conversation_assigned", "conversation", conversation.id,
                 actor_type="agent" if actor_id else "system", actor_id=actor_id, agent_id=agent.id)


def auto_assign(session: Session, conversation: Conversation) -> Agent | None:
    """Assign a waiting conversation by round robin, if an online agent has room."""
    if conversation.state != ConversationState.waiting_for_agent or conversation.assignee_id is not None:
        return None
    agent = pick_agent(session, conversation.team)
    if agent is not None:
        assign_to(session, conversation, agent)
    return agent


def requeue_conversations_of(session: Session, agent: Agent, *, unanswered_only: bool = False
                             ) -> list[Conversation]:
    """An agent went offline: their open conversations go back to the queue (and to others online).

    With ``unanswered_only`` (their inbox closed, not a choice they made) only the conversations they
    have not replied to yet move: one they are answering stays theirs, so a closed laptop lid or a
    phone's browser put to sleep does not hand the customer to someone else mid-conversation."""
    query = select(Conversation).where(Conversation.assignee_id == agent.id,
                                       Conversation.state == ConversationState.with_agent)
    if unanswered_only:
        replied = select(Message.id).where(
            Message.conversation_id == Conversation.id, Message.agent_id == agent.id, Message.author == "agent",
            Message.is_private == False)  # noqa: E712
        query = query.where(~replied.exists())
    held = list(session.exec(query).all())
    for conversation in held:
        conversation.assignee_id = None
        conversation.state = ConversationState.waiting_for_agent
        conversation.updated_at = utcnow()
        audit.record(session, "conversation_requeued", "conversation", conversation.id, agent_id=agent.id)
    session.flush()
    for conversation in held:
        auto_assign(session, conversation)
    return held


def assign_waiting(session: Session, limit: int = 100) -> int:
    """Hand waiting conversations to agents who have room (e.g. after someone came online)."""
    waiting = session.exec(
        select(Conversation).where(Conversation.state == ConversationState.waiting_for_agent,
                                   Conversation.assignee_id == None)  # noqa: E711
        .order_by(col(Conversation.escalated_at)).limit(limit)
    ).all()
    return sum(auto_assign(session, conversation) is not None for conversation in waiting)
