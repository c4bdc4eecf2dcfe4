"""The queue for a person as a waiting customer sees it: their place in it, and how long people
have recently taken to give a first answer (in business time), for telling them when to expect one.

A conversation waits while it is with people (waiting for an agent, or assigned to one) and nobody
has answered yet; the queue is the inbox's order (priority, then who was escalated first) within the
conversation's team (or among those with no team).
"""

from __future__ import annotations

import math
import statistics
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, or_
from sqlmodel import Session, col, select

from helpdesk.conversations.models import HUMAN_STATES, Conversation
from helpdesk.conversations.service import QUEUE_ORDER
from helpdesk.sla.clock import BusinessClock

#: first answers younger than this say how fast people answer now
RECENT = timedelta(days=7)
#: at most this many of them are read, the newest first
RECENT_SAMPLE = 50
#: fewer recent answers than this say too little: the SLA target is the estimate then
MIN_SAMPLE = 3


def is_waiting(conversation: Conversation) -> bool:
    """Whether the customer waits for a person's first answer."""
    return conversation.state in HUMAN_STATES and conversation.first_response_at is None


def queue_position(session: Session, conversation: Conversation) -> int | None:
    """The conversation's place in its queue for a person (1: next), or None when it does not wait."""
    if not is_waiting(conversation):
        return None
    rank = case(QUEUE_ORDER, value=Conversation.priority, else_=len(QUEUE_ORDER))
    mine = QUEUE_ORDER.get(conversation.priority, len(QUEUE_ORDER))
    same_team = (Conversation.team == conversation.team if conversation.team is not None
                 else col(Conversation.team).is_(None))
    earlier = Conversation.id < conversation.id
    if conversation.escalated_at is not None:
        earlier = or_(Conversation.escalated_at < conversation.escalated_at,
                      and_(Conversation.escalated_at == conversation.escalated_at, earlier))
    ahead = session.exec(
        select(func.count()).select_from(Conversation).where(
            col(Conversation.state).in_(HUMAN_STATES), col(Conversation.first_response_at).is_(None), same_team,
            Conversation.id != conversation.id, or_(rank < mine, and_(rank == mine, earlier)))
    ).one()
    return int(ahead) + 1


def recent_first_response_minutes(session: Session, clock: BusinessClock, now: datetime) -> int | None:
    """The median business minutes people took to answer recently escalated conversations (rounded
    up, at least 1), or None when too few were answered lately to say."""
    rows = session.exec(
        select(Conversation.escalated_at, Conversation.first_response_at)
        .where(col(Conversation.first_response_at).is_not(None), col(Conversation.escalated_at).is_not(None),
               Conversation.first_response_at >= now - RECENT)
        .order_by(col(Conversation.first_response_at).desc()).limit(RECENT_SAMPLE)
    ).all()
    waits = [max(clock.seconds_between(escalated, answered), 0.0) for escalated, answered in rows]
    if len(waits) < MIN_SAMPLE:
        return None
    return max(1, math.ceil(statistics.median(waits) / 60))
