"""The CSV export: one row per conversation of a report, streamed in batches.

Each row says, for one conversation, what the summary counts about it (the same conditions and
the same business-time arithmetic), so a spreadsheet can re-derive every KPI. Times are shop-local
ISO 8601 with their offset; durations are business seconds.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime, tzinfo

from sqlalchemy import func, or_, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from helpdesk.agents.models import Agent
from helpdesk.conversations.models import Conversation, Message
from helpdesk.conversations.service import tags_of
from helpdesk.ratings.models import Rating
from helpdesk.reports.service import (
    ReportQuery,
    breached_condition,
    came_back,
    complaint_reason_pairs,
    contained_condition,
    conversation_conditions,
    escalated_condition,
    first_response_seconds,
    flag,
    later_conversation_started,
    resolution_seconds,
    substantive_condition,
)
from helpdesk.sla.clock import BusinessClock
from helpdesk.sla.service import SLAConfig

COLUMNS = (
    "conversation_id", "created_at", "channel", "customer_id", "team", "assignee_id", "assignee", "state",
    "priority", "escalated", "escalated_at", "escalation_reason", "first_response_at", "first_response_s",
    "resolved_at", "resolution_s", "sla_status", "sla_breached", "contained", "csat_rating", "complaint",
    "complaint_reasons", "tags", "recontacted_7d",
)
BATCH = 500
#: a spreadsheet runs a cell starting with one of these as a formula
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: lets Excel recognise UTF-8 (asked for with ``excel=true``; other tools read the file without it)
BOM = "\ufeff"


def safe_cell(value: object) -> object:
    """Text a spreadsheet would run as a formula, made inert with a leading quote."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _when(moment: datetime | None, tz: tzinfo) -> str:
    return moment.astimezone(tz).isoformat(timespec="seconds") if moment is not None else ""


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    value = round(value, 3)
    return str(int(value)) if value == int(value) else f"{value:.3f}".rstrip("0")


_CONVERSATION_COLUMNS = (
    Conversation.id, Conversation.created_at, Conversation.channel, Conversation.customer_id,
    Conversation.team, Conversation.assignee_id, Conversation.state, Conversation.priority,
    Conversation.escalated_at, Conversation.escalation_reason, Conversation.first_response_at,
    Conversation.resolved_at, Conversation.sla_status,
)


def _csat_rating():
    """The conversation's latest CSAT stars (correlated)."""
    return (select(Rating.score).where(Rating.conversation_id == Conversation.id, Rating.kind == "csat")
            .order_by(col(Rating.id).desc()).limit(1).scalar_subquery())


def _batch(session: Session, query: ReportQuery, after_id: int, clock: BusinessClock
           ) -> tuple[list[list[object]], int | None]:
    """The rows of the next batch of candidates after ``after_id``, and the last candidate's id
    (None when there are no more)."""
    # The cheap conditions pick the candidates; the contact check then runs on those alone, so the
    # database looks at a batch's messages rather than every message at each batch.
    candidates = list(session.exec(
        select(Conversation.id).where(*conversation_conditions(query, contacts_only=False),
                                      Conversation.id > after_id)
        .order_by(Conversation.id).limit(BATCH)).scalars())
    if not candidates:
        return [], None
    # As customer_contact_condition, from the candidates' own messages (read through their index).
    messages = (select(Message.conversation_id, func.max(flag(substantive_condition(Message))).label("said"))
                .where(col(Message.conversation_id).in_(candidates)).group_by(Message.conversation_id)
                .subquery())
    rows = session.exec(
        select(*_CONVERSATION_COLUMNS, Agent.name.label("assignee"), _csat_rating().label("rating"),
               later_conversation_started(query.period.start).label("next_started_at"),
               flag(breached_condition()).label("breached"), flag(escalated_condition()).label("escalated"),
               flag(contained_condition(query.now)).label("contained"))
        .outerjoin(Agent, Agent.id == Conversation.assignee_id)
        .outerjoin(messages, messages.c.conversation_id == Conversation.id)
        .where(col(Conversation.id).in_(candidates),
               or_(col(messages.c.said).is_(None), messages.c.said == 1))
        .order_by(Conversation.id)
    ).all()
    ids = [row.id for row in rows]
    tags = tags_of(session, ids)
    reasons: dict[int, list[str]] = {i: [] for i in ids}
    if ids:
        pairs = complaint_reason_pairs([], ids)
        for conversation_id, reason in session.exec(select(pairs.c.conversation_id, pairs.c.reason)
                                                    .order_by(pairs.c.conversation_id, pairs.c.reason)):
            reasons[conversation_id].append(reason)
    tz = query.period.tz
    out = []
    for c in rows:
        first_response = first_response_seconds(clock, c.escalated_at, c.first_response_at)
        resolution = resolution_seconds(clock, c.created_at, c.escalated_at, c.resolved_at)
        out.append([
            c.id, _when(c.created_at, tz), c.channel, c.customer_id, c.team or "", c.assignee_id or "",
            c.assignee or "", c.state, c.priority, c.escalated, _when(c.escalated_at, tz),
            c.escalation_reason or "", _when(c.first_response_at, tz), _seconds(first_response),
            _when(c.resolved_at, tz), _seconds(resolution), c.sla_status, c.breached if c.escalated else "",
            c.contained, c.rating or "", int(bool(reasons[c.id])), ";".join(reasons[c.id]),
            ";".join(tags[c.id]),
            int(came_back(c.resolved_at, c.next_started_at)) if c.resolved_at is not None else "",
        ])
    return out, (candidates[-1] if len(candidates) == BATCH else None)


def csv_chunks(engine: Engine, query: ReportQuery, config: SLAConfig, *, excel: bool = False
               ) -> Iterator[str]:
    """The CSV text, a header and then a batch of conversations at a time (each batch its own
    short read, so a slow download holds no transaction open)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    yield (BOM if excel else "") + buffer.getvalue()
    clock = config.clock
    after_id: int | None = 0
    while after_id is not None:
        with Session(engine) as session:
            rows, after_id = _batch(session, query, after_id, clock)
        if rows:
            buffer.seek(0)
            buffer.truncate()
            writer.writerows([safe_cell(value) for value in row] for row in rows)
            yield buffer.getvalue()


def file_name(query: ReportQuery) -> str:
    """``caredesk-report-<first day>-<last day>.csv`` (shop-local days)."""
    return f"caredesk-report-{query.period.first_day.isoformat()}-{query.period.last_day.isoformat()}.csv"
