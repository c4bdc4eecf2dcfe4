"""The periodic SLA check with a controllable clock: a warning at 80%, a breach once, the priority
raised, events published, nothing read that is not due, and two workers racing on the same clocks."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlmodel import Session, func, select

from helpdesk.audit.models import AuditEntry
from helpdesk.conversations.models import Conversation
from helpdesk.channels.ledger import make_database_engine
from helpdesk.core.db import migrate
from helpdesk.core.events import EventBus
from helpdesk.sla import service
from helpdesk.sla.models import SLAEvent, SLATimer
from helpdesk.sla.service import DEFAULT_POLICIES, BusinessSchedule, SLAConfig
from helpdesk.sla.tasks import run_sla_check
from tests.helpdesk.sla.conftest import HCM, always_open, escalate, local, make_conversation

WORKDAYS = BusinessSchedule.from_days({d: [("08:00", "17:30")] for d in ("mon", "tue", "wed", "thu", "fri")})
CONFIG = SLAConfig(dict(DEFAULT_POLICIES), WORKDAYS, HCM)
ESCALATED = "2026-03-02 10:00"  # a Monday: first response due 11:00, warned from 10:48


class Recorder:
    """The parts the check is handed (engine, events), remembering what it published."""

    def __init__(self, engine):
        self.engine = engine
        self.events = EventBus()
        self.published: list[tuple[str, dict]] = []
        for name in ("sla_warning", "sla_breached"):
            self.events.on(name)(self._remember)

    async def _remember(self, event) -> None:
        self.published.append((event.name, event.data))


@pytest.fixture
def engine(sqlite_url: str) -> Iterator:
    """A migrated SQLite database of the test's own."""
    engine = make_database_engine(sqlite_url)
    yield engine
    engine.dispose()


def escalated(engine, sender: str, at: str = ESCALATED, priority: str = "normal") -> int:
    conversation_id = make_conversation(engine, sender=sender, priority=priority, escalated_at=local(at))
    with Session(engine, expire_on_commit=False) as session:
        service.start_cycle(session, service.load_clocks(session, conversation_id), CONFIG, local(at))
        session.commit()
    return conversation_id


def conversation(engine, conversation_id: int) -> Conversation:
    with Session(engine) as session:
        return session.get(Conversation, conversation_id)


def recorded(engine) -> list[tuple[int, str, str]]:
    with Session(engine) as session:
        return sorted((e.conversation_id, e.target, e.kind) for e in session.exec(select(SLAEvent)).all())


async def test_nothing_is_flagged_before_80_percent_of_the_target(engine):
    escalated(engine, "early")
    result = await run_sla_check(engine, Recorder(engine).events, now=local("2026-03-02 10:47"))
    assert result.findings == [] and recorded(engine) == []


async def test_a_clock_at_80_percent_is_warned_once_and_the_warning_is_published(engine):
    conversation_id = escalated(engine, "warn")
    recorder = Recorder(engine)
    first = await run_sla_check(recorder.engine, recorder.events, now=local("2026-03-02 10:48"))
    again = await run_sla_check(recorder.engine, recorder.events, now=local("2026-03-02 10:55"))
    assert (first.warnings, first.breaches, again.findings) == (1, 0, [])
    assert recorded(engine) == [(conversation_id, "first_response", "warning")]
    assert conversation(engine, conversation_id).sla_status == "warning"
    assert conversation(engine, conversation_id).priority == "normal"
    assert recorder.published == [("sla_warning", {
        "conversation_id": conversation_id, "target": "first_response",
        "due_at": local("2026-03-02 11:00").isoformat(), "assignee_id": None, "team": None, "priority": "normal"})]


async def test_a_breach_is_recorded_once_raises_the_priority_and_is_published(engine):
    conversation_id = escalated(engine, "breach")
    recorder = Recorder(engine)
    await run_sla_check(recorder.engine, recorder.events, now=local("2026-03-02 10:50"))
    breach = await run_sla_check(recorder.engine, recorder.events, now=local("2026-03-02 11:00"))
    again = await run_sla_check(recorder.engine, recorder.events, now=local("2026-03-02 12:00"))
    assert (breach.breaches, again.findings) == (1, [])
    assert recorded(engine) == [(conversation_id, "first_response", "breach"),
                                (conversation_id, "first_response", "warning")]
    stored = conversation(engine, conversation_id)
    assert (stored.sla_status, stored.priority) == ("breached", "high")
    assert [name for name, _ in recorder.published] == ["sla_warning", "sla_breached"]
    assert recorder.published[-1][1]["priority"] == "high"
    with Session(engine) as session:
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "sla_breached")).one()
    assert (entry.entity_id, entry.details) == (conversation_id, {"targets": ["first_response"], "priority": "high"})


async def test_a_clock_found_past_due_is_breached_without_a_late_warning(engine):
    conversation_id = escalated(engine, "skip")
    result = await run_sla_check(engine, Recorder(engine).events, now=local("2026-03-02 11:30"))
    assert [(f.target, f.kind) for f in result.findings] == [("first_response", "breach")]
    assert recorded(engine) == [(conversation_id, "first_response", "breach")]


async def test_an_urgent_conversation_stays_urgent_when_it_breaches(engine):
    conversation_id = escalated(engine, "urgent", priority="urgent")
    await run_sla_check(engine, Recorder(engine).events, now=local("2026-03-02 10:20"))
    assert conversation(engine, conversation_id).priority == "urgent"


async def test_a_later_warning_does_not_turn_a_breached_conversation_back_to_warning(engine):
    conversation_id = escalated(engine, "worse")
    recorder = Recorder(engine)
    await run_sla_check(recorder.engine, recorder.events, now=local("2026-03-02 11:00"))  # first response breached
    # Resolution (24 business hours, normal priority when its clock started) warns at 80%.
    later = await run_sla_check(recorder.engine, recorder.events, now=local("2026-03-04 12:00"))
    assert [(f.target, f.kind) for f in later.findings] == [("resolution", "warning")]
    assert conversation(engine, conversation_id).sla_status == "breached"


async def test_a_paused_or_stopped_clock_is_never_flagged(engine):
    conversation_id = escalated(engine, "answered")
    with Session(engine, expire_on_commit=False) as session:
        service.record_agent_reply(session, service.load_clocks(session, conversation_id), CONFIG,
                                   local("2026-03-02 10:10"))
        session.commit()
    result = await run_sla_check(engine, Recorder(engine).events, now=local("2026-03-20 10:00"))
    assert result.findings == [] and conversation(engine, conversation_id).sla_status == "ok"


async def test_an_event_already_recorded_is_neither_recorded_nor_published_again(engine):
    conversation_id = escalated(engine, "dup")
    with Session(engine) as session:
        # As if another worker recorded the breach and this clock's check time was then set back.
        session.add(SLAEvent(conversation_id=conversation_id, target="first_response", round=1, kind="breach",
                             created_at=local("2026-03-02 11:00")))
        session.commit()
    recorder = Recorder(engine)
    result = await run_sla_check(recorder.engine, recorder.events, now=local("2026-03-02 11:01"))
    assert result.findings == [] and recorder.published == []
    assert recorded(engine) == [(conversation_id, "first_response", "breach")]
    with Session(engine) as session:
        timer = session.exec(select(SLATimer).where(SLATimer.target == "first_response")).one()
    assert timer.check_at is None  # moved on all the same: the next run does not look at it again


async def test_the_check_reads_due_clocks_through_the_index(engine):
    from sqlalchemy import literal
    from sqlalchemy.dialects import sqlite

    from helpdesk.core.db import UTCDateTime
    from helpdesk.sla.tasks import _timers

    due = (select(_timers.c.id).where(_timers.c.check_at <= literal(local("2026-03-02 11:00"), UTCDateTime()))
           .order_by(_timers.c.check_at).limit(100))
    sql = str(due.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    with engine.connect() as connection:
        plan = " ".join(str(row[-1]) for row in connection.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
    assert "USING INDEX ix_sla_timers_check_at" in plan or "USING COVERING INDEX ix_sla_timers_check_at" in plan
    assert "SCAN sla_timers" not in plan


async def test_two_checks_at_once_record_and_raise_each_breach_once(database_url):
    engine = make_database_engine(database_url)
    migrate(engine)
    ids = [escalated(engine, f"race-{n}") for n in range(60)]
    engine.dispose()
    now = local("2026-03-02 11:05")  # every first response is past due, no resolution clock warned yet
    first, second = Recorder(make_database_engine(database_url)), Recorder(make_database_engine(database_url))
    try:
        results = await asyncio.gather(run_sla_check(first.engine, first.events, now=now, batch_size=7),
                                       run_sla_check(second.engine, second.events, now=now, batch_size=7))
        assert sum(r.breaches for r in results) == 60
        assert len(first.published) + len(second.published) == 60
        with Session(first.engine) as session:
            assert session.exec(select(func.count()).select_from(SLAEvent)).one() == 60
            priorities = session.exec(select(Conversation.priority).where(Conversation.id.in_(ids))).all()
            audits = session.exec(select(func.count()).select_from(AuditEntry)
                                  .where(AuditEntry.action == "sla_breached")).one()
        assert set(priorities) == {"high"}  # raised once each: twice would have made them urgent
        assert audits == 60
    finally:
        first.engine.dispose()
        second.engine.dispose()


async def test_the_check_warns_the_assignee_live_through_the_app(sla_client):
    admin = await always_open(sla_client)
    conversation_id = await escalate(sla_client, "live-warn")
    with Session(sla_client.wiring.engine) as session:
        escalated_at = session.get(Conversation, conversation_id).escalated_at
    queue = sla_client.wiring.events.subscribe()
    sla_client.wiring.clock.use(lambda: escalated_at + timedelta(minutes=49))
    wiring = sla_client.wiring
    result = await run_sla_check(wiring.engine, wiring.events, wiring.clock.now())
    assert [(f.conversation_id, f.target, f.kind) for f in result.findings] == [
        (conversation_id, "first_response", "warning")]
    event = await asyncio.wait_for(queue.get(), 1)
    assert (event.name, event.data["conversation_id"], event.data["target"]) == (
        "sla_warning", conversation_id, "first_response")
    assert {"assignee_id", "team"} <= set(event.data)
    detail = (await sla_client.get(f"/api/conversations/{conversation_id}", headers=admin)).json()
    assert detail["sla_status"] == "warning"


async def test_each_warning_and_breach_is_counted_once_in_the_metrics(engine):
    from prometheus_client import REGISTRY

    def count(name: str) -> float:
        return REGISTRY.get_sample_value(name, {"target": "first_response"}) or 0.0

    escalated(engine, "counted")
    before = count("caredesk_sla_breaches_total"), count("caredesk_sla_warnings_total")
    recorder = Recorder(engine)
    for moment in ("2026-03-02 10:50", "2026-03-02 11:00", "2026-03-02 12:00"):
        await run_sla_check(recorder.engine, recorder.events, now=local(moment))
    assert count("caredesk_sla_breaches_total") - before[0] == 1
    assert count("caredesk_sla_warnings_total") - before[1] == 1
