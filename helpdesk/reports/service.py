"""The after-sales KPIs: which conversations a report covers, and the figures over them.

A report covers the customers' conversations *started* in a half-open period ``[from, to)``
(``created_at``), narrowed by channel, team and agent (the conversation's current assignee) and by
what the caller may see: admins every conversation, supervisors those of their teams. Every
conversation figure is about that one set, so the summary and the CSV export (one row per
conversation) always agree. Conversations that only carry the shop's proactive messages (the
after-delivery care sequence) or a customer's answer to a rating request are not contacts and are
left out: counted, they would pass for bot successes and for customers coming back.

- **CSAT**: share of the set's CSAT ratings with 4 or 5 stars; ``avg_rating`` their mean. The same
  over complaint conversations is reported apart (``csat_after_complaint``).
- **First response time**: business seconds from the escalation (``escalated_at``) to the first
  reply of a person (``first_response_at``); answered conversations only.
- **Resolution time**: business seconds from the escalation (the start, for a conversation resolved
  without one) to ``resolved_at``; resolved conversations only.
- Medians and 90th percentiles interpolate linearly between the two nearest values (as numpy,
  Excel's PERCENTILE.INC); times are rounded to the millisecond.
- **SLA compliance**: share of escalated conversations without any breach: not ``breached`` now,
  no breach recorded by the check, and no outcome that missed a target.
- **Containment**: share of the set that the bot handled alone to the end: never escalated, no
  assignee, and resolved or idle (in the bot's hands, no message for ``IDLE_AFTER``).
- **Complaint reasons**: per conversation, the complaint intents of the customer's messages
  (``report_defect``, ``complain_delivery``, ``complain_service``; also when the escalation was
  for one of them) plus its tags; a complaint conversation has at least one. The top five count
  conversations per reason, most first, then by name.
- **Recontact within 7 days**: share of resolved conversations whose customer started another
  conversation (any channel, any team) within 7 days after the resolution.
- **After delivery** (shop-wide, channel filter only): rating requests for orders sent in the
  period and how many were answered; delivery ratings given in the period, per number of stars.
- **NPS** (shop-wide, channel filter only): the 0–10 answers given in the period; % promoters (9–10)
  minus % detractors (0–6), from −100 to 100.

A rate with nothing to measure is ``None`` (``null``), never a division by zero.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import and_, case, false, func, literal, or_, select, union
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from bot.flows.complaints import COMPLAINT_INTENTS
from helpdesk.agents.models import Agent, AgentRole, Team, TeamMember
from helpdesk.agents.teams import team_names
from helpdesk.conversations.models import (
    Conversation,
    ConversationState,
    ConversationTag,
    Message,
    MessageAuthor,
)
from helpdesk.core.db import UTCDateTime
from helpdesk.core.errors import Forbidden
from helpdesk.customers.models import ChannelIdentity
from helpdesk.nps import service as nps
from helpdesk.ratings.models import Rating, RatingRequest
from helpdesk.reports.period import Period, local_midnight, parse_period
from helpdesk.reports.schemas import (
    AfterDeliveryStats,
    RatingDistribution,
    ReasonCount,
    ReportCounts,
    ReportFilters,
    ReportSummary,
    VolumeBucket,
    VolumeSeries,
)
from helpdesk.sla.models import SLAEvent, SLAEventKind, SLAOutcome, SLAStatus
from helpdesk.sla.clock import BusinessClock
from helpdesk.sla.service import SLAConfig

#: a conversation left with the bot this long without a message has ended
IDLE_AFTER = timedelta(minutes=30)
#: how soon after a resolution a new conversation counts as the customer coming back
RECONTACT_WINDOW = timedelta(days=7)
#: CSAT counts these stars as satisfied
SATISFIED_STARS = 4
TOP_REASONS = 5
#: typed answers to a rating request that say nothing else (compared trimmed and lower-cased)
STAR_ANSWERS = tuple(f"{stars}{suffix}" for stars in "12345"
                     for suffix in ("", "*", " *", "⭐", " ⭐", " sao", "sao", " star", " stars", "/5"))
#: volume buckets: days up to this many, then weeks, then months, then years
MAX_BUCKETS = 62

# -- who is asking, and for what ----------------------------------------------------------------------


@dataclass(frozen=True)
class ReportQuery:
    """One report request: period, filters, and the teams the caller may report on."""

    period: Period
    now: datetime
    channel: str | None = None
    team: str | None = None
    agent_id: int | None = None
    #: None for every conversation (admins); otherwise only conversations of these teams
    teams: tuple[str, ...] | None = None

    def filters(self) -> ReportFilters:
        """The filters as the API echoes them."""
        return ReportFilters(channel=self.channel, team=self.team, agent_id=self.agent_id)


def reporting_teams(session: Session, agent: Agent) -> tuple[str, ...] | None:
    """The teams whose numbers the agent may see: None for all (admins); supervisors their teams.

    Plain agents get no reports (their own work shows in the inbox).
    """
    if agent.role == AgentRole.admin:
        return None
    if agent.role == AgentRole.supervisor:
        return tuple(team_names(session, agent))
    raise Forbidden("reports are for supervisors and admins")


def build_query(
    session: Session, agent: Agent, *, timezone: str, now: datetime, from_text: str | None = None,
    to_text: str | None = None, channel: str | None = None, team: str | None = None,
    agent_id: int | None = None,
) -> ReportQuery:
    """Check the caller may report on what they ask for, and read the period."""
    teams = reporting_teams(session, agent)
    channel = (channel or "").strip() or None
    team = (team or "").strip() or None
    if team is not None and teams is not None and team not in teams:
        raise Forbidden(f"you may only report on your teams ({', '.join(teams) or 'none'})")
    period = parse_period(from_text, to_text, timezone, now)
    return ReportQuery(period=period, now=now, channel=channel, team=team, agent_id=agent_id, teams=teams)


# -- the conversations of a report, and what is said about each ---------------------------------------------


def rating_answer_condition(message) -> ColumnElement[bool]:
    """The message only answers a rating request: a star button, a typed 1–5 or stars, a rating intent."""
    answer = func.lower(func.trim(message.text))
    return or_(
        func.coalesce(message.payload, "").startswith("rating:"),
        func.coalesce(message.nlu[("intent", "name")].as_string(), "") == "give_rating",
        answer.in_(STAR_ANSWERS),
        and_(answer != "", func.replace(func.replace(answer, "⭐", ""), " ", "") == ""),
    )


def substantive_condition(message) -> ColumnElement[bool]:
    """The customer wrote something other than a rating answer."""
    return and_(message.author == MessageAuthor.customer, ~rating_answer_condition(message))


def customer_contact_condition(conversation=Conversation, since: datetime | None = None
                               ) -> ColumnElement[bool]:
    """The conversation is a customer's contact: not only proactive messages (care sequence) or a
    rating answer, which open conversations of their own. One without any message counts.

    ``since`` (no later than the conversations' start) lets the database skip older messages
    cheaply when it checks every message at once rather than conversation by conversation.
    """
    message, substantive = aliased(Message), aliased(Message)
    any_message = select(message.id).where(message.conversation_id == conversation.id)
    from_customer = select(substantive.id).where(
        substantive.conversation_id == conversation.id, substantive_condition(substantive))
    if since is not None:
        any_message = any_message.where(message.created_at >= since)
        from_customer = from_customer.where(substantive.created_at >= since)
    return or_(~any_message.exists(), from_customer.exists())


def conversation_conditions(query: ReportQuery, *, contacts_only: bool = True) -> list[ColumnElement[bool]]:
    """SQL conditions selecting the report's conversations (``contacts_only=False``: before leaving
    out those that are no customer contact, a costlier check)."""
    conditions = [Conversation.created_at >= query.period.start, Conversation.created_at < query.period.end]
    if contacts_only:
        conditions.append(customer_contact_condition(since=query.period.start))
    if query.channel is not None:
        conditions.append(Conversation.channel == query.channel)
    if query.team is not None:
        conditions.append(Conversation.team == query.team)
    if query.agent_id is not None:
        conditions.append(Conversation.assignee_id == query.agent_id)
    if query.teams is not None:
        conditions.append(col(Conversation.team).in_(query.teams) if query.teams else false())
    return conditions


def escalated_condition() -> ColumnElement[bool]:
    """The conversation reached the people at some point."""
    return col(Conversation.escalated_at).is_not(None)


def breached_condition() -> ColumnElement[bool]:
    """The conversation missed an SLA target at some point (now, in a recorded breach, or an outcome)."""
    recorded = select(SLAEvent.id).where(SLAEvent.conversation_id == Conversation.id,
                                         SLAEvent.kind == SLAEventKind.breach).exists()
    missed = select(SLAOutcome.id).where(
        SLAOutcome.conversation_id == Conversation.id,
        or_(col(SLAOutcome.first_response_met).is_(False), col(SLAOutcome.resolution_met).is_(False),
            SLAOutcome.next_response_breaches > 0)).exists()
    return or_(Conversation.sla_status == SLAStatus.breached, recorded, missed)


def contained_condition(now: datetime) -> ColumnElement[bool]:
    """The bot handled the conversation alone to its end (resolved, or idle in the bot's hands)."""
    idle_since = literal(now - IDLE_AFTER, type_=UTCDateTime)
    last_activity = func.coalesce(Conversation.last_message_at, Conversation.created_at)
    return and_(
        col(Conversation.escalated_at).is_(None),
        col(Conversation.assignee_id).is_(None),
        or_(Conversation.state == ConversationState.resolved,
            and_(Conversation.state == ConversationState.bot, last_activity <= idle_since)),
    )


def flag(condition: ColumnElement[bool]):
    """1 where the condition holds, else 0 (summable on every database)."""
    return case((condition, 1), else_=0)


def complaint_condition() -> ColumnElement[bool]:
    """The conversation carries at least one complaint reason (the same sources as the pairs below)."""
    message = aliased(Message)
    complained = select(message.id).where(
        message.conversation_id == Conversation.id, message.author == MessageAuthor.customer,
        message.nlu[("intent", "name")].as_string().in_(COMPLAINT_INTENTS)).exists()
    tagged = select(ConversationTag.tag).where(ConversationTag.conversation_id == Conversation.id).exists()
    return or_(col(Conversation.escalation_reason).in_(COMPLAINT_INTENTS), complained, tagged)


def complaint_reason_pairs(conditions: Sequence[ColumnElement[bool]], conversation_ids: Sequence[int] = ()):
    """``(conversation_id, reason)`` once per pair, for the conversations matching ``conditions``
    (and among ``conversation_ids`` when given): complaint intents of customer messages and of the
    escalation, and tags."""
    intent = Message.nlu[("intent", "name")].as_string()
    from_messages = (
        select(Message.conversation_id.label("conversation_id"), intent.label("reason"))
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(*conditions, Message.author == MessageAuthor.customer, intent.in_(COMPLAINT_INTENTS))
    )
    from_escalations = select(Conversation.id, Conversation.escalation_reason).where(
        *conditions, col(Conversation.escalation_reason).in_(COMPLAINT_INTENTS))
    from_tags = (select(ConversationTag.conversation_id, ConversationTag.tag)
                 .join(Conversation, Conversation.id == ConversationTag.conversation_id).where(*conditions))
    if conversation_ids:
        # Named on each table, so each is read through its conversation index.
        from_messages = from_messages.where(col(Message.conversation_id).in_(conversation_ids))
        from_escalations = from_escalations.where(col(Conversation.id).in_(conversation_ids))
        from_tags = from_tags.where(col(ConversationTag.conversation_id).in_(conversation_ids))
    return union(from_messages, from_escalations, from_tags).subquery("complaint_reasons")


def later_conversation_started(since: datetime):
    """When the customer next started a conversation after this one (started after ``since``) was
    resolved (correlated)."""
    later = aliased(Conversation)
    return (select(func.min(later.created_at))
            .where(later.customer_id == Conversation.customer_id, later.id != Conversation.id,
                   later.created_at > Conversation.resolved_at, customer_contact_condition(later, since))
            .scalar_subquery())


def came_back(resolved_at: datetime | None, next_started_at: datetime | None) -> bool:
    """Whether a new conversation started within the recontact window after the resolution."""
    return (resolved_at is not None and next_started_at is not None
            and next_started_at - resolved_at <= RECONTACT_WINDOW)


# -- business time ---------------------------------------------------------------------------------------


def first_response_seconds(clock: BusinessClock, escalated_at: datetime | None,
                           first_response_at: datetime | None) -> float | None:
    """Business seconds the customer waited for a person's first reply, if one came."""
    if escalated_at is None or first_response_at is None or not clock.schedule.ever_open:
        # Without any opening hours business time cannot be measured: "unknown", not a 0 that looks
        # like an instant answer.
        return None
    return max(clock.seconds_between(escalated_at, first_response_at), 0.0)


def wall_seconds(start: datetime | None, end: datetime | None) -> float | None:
    """Clock seconds from ``start`` to ``end`` (never negative), if both are known."""
    if start is None or end is None:
        return None
    return max((end - start).total_seconds(), 0.0)


def resolution_seconds(clock: BusinessClock, created_at: datetime, escalated_at: datetime | None,
                       resolved_at: datetime | None) -> float | None:
    """Business seconds from reaching the people (or the start) to the resolution, if resolved."""
    if resolved_at is None or not clock.schedule.ever_open:
        return None
    return max(clock.seconds_between(escalated_at or created_at, resolved_at), 0.0)


def percentile(values: Sequence[float], share: float) -> float | None:
    """The ``share`` quantile of sorted values, interpolating linearly; None without values."""
    if not values:
        return None
    position = (len(values) - 1) * share
    low, high = math.floor(position), math.ceil(position)
    value = values[low] + (values[high] - values[low]) * (position - low)
    return round(value, 3)


def ratio(part: int, whole: int) -> float | None:
    """``part / whole``, or None when there is nothing to measure."""
    return part / whole if whole else None


# -- the summary -------------------------------------------------------------------------------------------


@dataclass
class _Ratings:
    counts: dict[int, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def satisfied(self) -> int:
        return sum(n for stars, n in self.counts.items() if stars >= SATISFIED_STARS)

    @property
    def average(self) -> float | None:
        return sum(stars * n for stars, n in self.counts.items()) / self.total if self.total else None


def _rating_counts(session: Session, statement) -> _Ratings:
    return _Ratings({int(stars): int(n) for stars, n in session.exec(statement).all()})


def _csat(session: Session, conditions: list[ColumnElement[bool]]) -> tuple[_Ratings, _Ratings]:
    """CSAT ratings of the report's conversations: all of them, and those of complaint conversations."""
    rated = (select(Rating.score.label("score"), flag(complaint_condition()).label("complaint"))
             .join(Conversation, Conversation.id == Rating.conversation_id)
             .where(Rating.kind == "csat", *conditions).subquery())
    every, after_complaint = _Ratings(), _Ratings()
    grouped = (select(rated.c.score, rated.c.complaint, func.count())
               .group_by(rated.c.score, rated.c.complaint))
    for stars, complaint, count in session.exec(grouped):
        for ratings in (every, after_complaint) if complaint else (every,):
            ratings.counts[int(stars)] = ratings.counts.get(int(stars), 0) + int(count)
    return every, after_complaint


def _durations(session: Session, conditions: list[ColumnElement[bool]], clock: BusinessClock
               ) -> tuple[list[float], list[float], list[float]]:
    """First response (business and clock time) and resolution times of the report's conversations, sorted."""
    rows = session.exec(
        select(Conversation.created_at, Conversation.escalated_at, Conversation.first_response_at,
               Conversation.resolved_at)
        .where(*conditions, or_(and_(escalated_condition(), col(Conversation.first_response_at).is_not(None)),
                                col(Conversation.resolved_at).is_not(None)))
        .execution_options(yield_per=2000)
    )
    first, first_wall, resolution = [], [], []
    for created_at, escalated_at, first_response_at, resolved_at in rows:
        if (seconds := first_response_seconds(clock, escalated_at, first_response_at)) is not None:
            first.append(seconds)
        if (seconds := wall_seconds(escalated_at, first_response_at)) is not None:
            first_wall.append(seconds)
        if (seconds := resolution_seconds(clock, created_at, escalated_at, resolved_at)) is not None:
            resolution.append(seconds)
    return sorted(first), sorted(first_wall), sorted(resolution)


def _recontacts(session: Session, query: ReportQuery, conditions: list[ColumnElement[bool]]
                ) -> tuple[int, int]:
    """(resolved conversations, of which the customer came back within the window)."""
    rows = session.exec(
        select(Conversation.resolved_at, later_conversation_started(query.period.start))
        .where(*conditions, col(Conversation.resolved_at).is_not(None))
        .execution_options(yield_per=2000)
    )
    base = came = 0
    for resolved_at, next_started_at in rows:
        base += 1
        came += came_back(resolved_at, next_started_at)
    return base, came


def _reason_counts(rows: Iterable[tuple[str | None, int]]) -> list[ReasonCount]:
    merged: dict[str, int] = {}
    for reason, count in rows:
        key = reason or "unknown"
        merged[key] = merged.get(key, 0) + int(count)
    ordered = sorted(merged.items(), key=lambda item: (-item[1], item[0]))
    return [ReasonCount(reason=reason, count=count) for reason, count in ordered]


def _after_delivery(session: Session, query: ReportQuery) -> AfterDeliveryStats:
    period = query.period
    requests = (select(func.count(), func.sum(flag(col(RatingRequest.answered_at).is_not(None))))
                .where(col(RatingRequest.subject).startswith("order:"), RatingRequest.sent_at >= period.start,
                       RatingRequest.sent_at < period.end))
    ratings = (select(Rating.score, func.count())
               .where(Rating.kind == "delivery", Rating.created_at >= period.start,
                      Rating.created_at < period.end)
               .group_by(Rating.score))
    if query.channel is not None:
        requests = requests.join(ChannelIdentity, ChannelIdentity.id == RatingRequest.identity_id).where(
            ChannelIdentity.channel == query.channel)
        asked_on_channel = (select(RatingRequest.id)
                            .join(ChannelIdentity, ChannelIdentity.id == RatingRequest.identity_id)
                            .where(RatingRequest.rating_id == Rating.id,
                                   ChannelIdentity.channel == query.channel)
                            .exists())
        ratings = ratings.where(asked_on_channel)
    sent, answered = session.exec(requests).one()
    sent, answered = int(sent or 0), int(answered or 0)
    given = _rating_counts(session, ratings)
    return AfterDeliveryStats(requests_sent=sent, requests_answered=answered,
                              response_rate=ratio(answered, sent), ratings=given.total,
                              avg_rating=given.average,
                              distribution=RatingDistribution.from_counts(given.counts))


def volume_buckets(period: Period) -> tuple[str, list[date]]:
    """The granularity and the first local day of every bucket of the period."""
    first, last = period.first_day, period.last_day
    if (last - first).days + 1 <= MAX_BUCKETS:
        return "day", [first + timedelta(days=n) for n in range((last - first).days + 1)]
    monday = first - timedelta(days=first.weekday())
    if (last - monday).days // 7 + 1 <= MAX_BUCKETS:
        return "week", [monday + timedelta(weeks=n) for n in range((last - monday).days // 7 + 1)]
    months = (last.year - first.year) * 12 + last.month - first.month + 1
    if months <= MAX_BUCKETS:
        return "month", [date(first.year + (first.month - 1 + n) // 12, (first.month - 1 + n) % 12 + 1, 1)
                         for n in range(months)]
    return "year", [date(year, 1, 1) for year in range(first.year, last.year + 1)]


def _volume(session: Session, query: ReportQuery, conditions: list[ColumnElement[bool]]) -> VolumeSeries:
    granularity, starts = volume_buckets(query.period)
    # Bucket n holds the conversations started before bucket n + 1 begins (all are inside the period).
    bucket = literal(0)
    if len(starts) > 1:
        bucket = case(*[(Conversation.created_at < local_midnight(day, query.period.tz), n)
                        for n, day in enumerate(starts[1:])], else_=len(starts) - 1)
    rows = select(bucket.label("bucket"), flag(escalated_condition()).label("escalated")).where(
        *conditions).subquery()
    counts = {int(n): (int(total), int(escalated or 0)) for n, total, escalated in session.exec(
        select(rows.c.bucket, func.count(), func.sum(rows.c.escalated)).group_by(rows.c.bucket))}
    return VolumeSeries(granularity=granularity, buckets=[
        VolumeBucket(start=day, conversations=counts.get(n, (0, 0))[0], escalated=counts.get(n, (0, 0))[1])
        for n, day in enumerate(starts)])


def summarize(session: Session, query: ReportQuery, config: SLAConfig) -> ReportSummary:
    """Every KPI of the report's period and filters."""
    conditions = conversation_conditions(query)
    escalated = escalated_condition()
    counts = session.exec(
        select(func.count(), func.sum(flag(escalated)),
               func.sum(flag(Conversation.state == ConversationState.resolved)),
               func.sum(flag(contained_condition(query.now))),
               func.sum(flag(and_(escalated, breached_condition()))),
               func.sum(flag(complaint_condition())))
        .where(*conditions)).one()
    total, escalated_n, resolved_n, contained_n, breached_n, complaints = (int(n or 0) for n in counts)

    csat, csat_complaints = _csat(session, conditions)
    reasons = complaint_reason_pairs(conditions)
    top = session.exec(select(reasons.c.reason, func.count().label("n")).group_by(reasons.c.reason)
                       .order_by(func.count().desc(), reasons.c.reason).limit(TOP_REASONS)).all()
    by_reason = session.exec(select(Conversation.escalation_reason, func.count())
                             .where(*conditions, escalated).group_by(Conversation.escalation_reason)).all()

    first, first_wall, resolution = _durations(session, conditions, config.clock)
    promoters = nps.figures(session, query.period.start, query.period.end, query.channel)
    recontact_base, recontacted = _recontacts(session, query, conditions)

    return ReportSummary(
        period=query.period.public(),
        filters=query.filters(),
        csat=ratio(csat.satisfied, csat.total),
        avg_rating=csat.average,
        csat_after_complaint=ratio(csat_complaints.satisfied, csat_complaints.total),
        avg_rating_after_complaint=csat_complaints.average,
        rating_distribution=RatingDistribution.from_counts(csat.counts),
        frt_median_s=percentile(first, 0.5),
        frt_p90_s=percentile(first, 0.9),
        frt_wall_median_s=percentile(first_wall, 0.5),
        resolution_median_s=percentile(resolution, 0.5),
        resolution_p90_s=percentile(resolution, 0.9),
        sla_compliance=ratio(escalated_n - breached_n, escalated_n),
        containment_rate=ratio(contained_n, total),
        escalation_rate=ratio(escalated_n, total),
        recontact_rate_7d=ratio(recontacted, recontact_base),
        top_complaint_reasons=[ReasonCount(reason=reason, count=int(n)) for reason, n in top],
        escalations_by_reason=_reason_counts(by_reason),
        after_delivery=_after_delivery(session, query),
        nps=promoters.nps, nps_promoters=promoters.promoters, nps_passives=promoters.passives,
        nps_detractors=promoters.detractors,
        volume=_volume(session, query, conditions),
        counts=ReportCounts(
            conversations=total, escalated=escalated_n, resolved=resolved_n, contained=contained_n,
            first_responses=len(first), resolutions=len(resolution), sla_measured=escalated_n,
            sla_breached=breached_n, csat_ratings=csat.total, csat_satisfied=csat.satisfied,
            complaints=complaints, csat_after_complaint_ratings=csat_complaints.total,
            recontact_base=recontact_base, recontacted_7d=recontacted),
        generated_at=query.now,
    )


# -- what the caller may filter by --------------------------------------------------------------------------


def filter_choices(session: Session, teams: tuple[str, ...] | None
                   ) -> tuple[list[str], list[tuple[int, str]]]:
    """The teams and agents a caller reporting on ``teams`` (None = all) may filter by."""
    if teams is None:
        team_list = list(session.exec(select(Team.name).order_by(Team.name)).scalars())
        agents = session.exec(select(Agent.id, Agent.name).order_by(Agent.name, Agent.id)).all()
    else:
        team_list = sorted(teams)
        agents = session.exec(
            select(Agent.id, Agent.name).distinct()
            .join(TeamMember, TeamMember.agent_id == Agent.id).join(Team, Team.id == TeamMember.team_id)
            .where(col(Team.name).in_(teams) if teams else false()).order_by(Agent.name, Agent.id)).all()
    return team_list, [(int(agent_id), name) for agent_id, name in agents]

