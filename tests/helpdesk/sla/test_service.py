"""A conversation's clocks through its life, in the database: escalated, answered, asked again,
resolved, reopened, handed back; policies and business hours created on first use and audited."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from helpdesk.audit.models import AuditEntry
from helpdesk.conversations.models import Conversation
from helpdesk.channels.ledger import make_database_engine
from helpdesk.core.db import migrate
from helpdesk.sla import service
from helpdesk.sla.models import SLAOutcome, SLAPolicy, SLATimer
from helpdesk.sla.service import DEFAULT_POLICIES, BusinessSchedule, PolicyTargets, SLAConfig
from tests.helpdesk.sla.conftest import HCM, local, make_conversation

WORKDAYS = BusinessSchedule.from_days({d: [("08:00", "17:30")] for d in ("mon", "tue", "wed", "thu", "fri")})
CONFIG = SLAConfig(dict(DEFAULT_POLICIES), WORKDAYS, HCM)


@pytest.fixture
def engine(sqlite_url: str) -> Iterator:
    """A migrated SQLite database of the test's own."""
    engine = make_database_engine(sqlite_url)
    yield engine
    engine.dispose()


def apply(engine, conversation_id: int, change: Callable, *args, **kwargs) -> None:
    """Run one life-cycle step in its own transaction, as a listener does."""
    with Session(engine, expire_on_commit=False) as session:
        clocks = service.load_clocks(session, conversation_id)
        change(session, clocks, CONFIG, *args, **kwargs)
        session.commit()


def state(engine, conversation_id: int) -> tuple[Conversation, dict[str, SLATimer], SLAOutcome | None]:
    """The conversation, its clocks by target and its latest outcome, as stored."""
    with Session(engine) as session:
        conversation = session.get(Conversation, conversation_id)
        timers = {t.target: t for t in session.exec(select(SLATimer).where(
            SLATimer.conversation_id == conversation_id)).all()}
        outcome = session.exec(select(SLAOutcome).where(SLAOutcome.conversation_id == conversation_id)
                               .order_by(SLAOutcome.cycle.desc())).first()
        return conversation, timers, outcome


def escalated(engine, sender: str, at: str, priority: str = "normal") -> int:
    conversation_id = make_conversation(engine, sender=sender, priority=priority, escalated_at=local(at))
    apply(engine, conversation_id, service.start_cycle, local(at))
    return conversation_id


def test_escalation_on_friday_evening_is_due_on_monday_morning(engine):
    conversation_id = escalated(engine, "fri", "2026-03-06 17:00")
    conversation, timers, outcome = state(engine, conversation_id)
    assert conversation.first_response_due_at == local("2026-03-09 08:30")
    # 1,440 business minutes = 24 business hours: 30 min on Friday, 9.5 h on Monday and on Tuesday.
    assert conversation.resolution_due_at == local("2026-03-11 12:30")
    assert conversation.sla_status == "ok" and conversation.next_response_due_at is None
    assert timers["first_response"].warn_at == local("2026-03-09 08:18")
    assert timers["first_response"].check_at == timers["first_response"].warn_at
    assert (outcome.cycle, outcome.escalated_at, outcome.first_response_due_at) == (
        1, local("2026-03-06 17:00"), local("2026-03-09 08:30"))


def test_the_priority_picks_the_policy(engine):
    conversation_id = escalated(engine, "urgent", "2026-03-02 10:00", priority="urgent")
    conversation, _, _ = state(engine, conversation_id)
    assert conversation.first_response_due_at == local("2026-03-02 10:15")
    assert conversation.resolution_due_at == local("2026-03-02 14:00")


def test_first_agent_reply_stops_first_response_and_pauses_resolution(engine):
    conversation_id = escalated(engine, "reply", "2026-03-02 10:00")
    apply(engine, conversation_id, service.record_agent_reply, local("2026-03-02 10:20"))
    conversation, timers, outcome = state(engine, conversation_id)
    assert (timers["first_response"].status, timers["first_response"].met) == ("stopped", True)
    assert (timers["resolution"].status, timers["resolution"].consumed_seconds) == ("paused", 1200)
    assert conversation.resolution_due_at is None and conversation.next_response_due_at is None
    assert conversation.first_response_due_at == local("2026-03-02 11:00")
    assert (outcome.first_response_at, outcome.first_response_seconds, outcome.first_response_met) == (
        local("2026-03-02 10:20"), 1200, True)


def test_customer_message_starts_next_response_and_pushes_resolution_by_the_paused_business_time(engine):
    conversation_id = escalated(engine, "again", "2026-03-02 10:00")
    due_before = state(engine, conversation_id)[0].resolution_due_at
    apply(engine, conversation_id, service.record_agent_reply, local("2026-03-02 10:20"))
    # Paused from 10:20 Monday to 09:00 Tuesday: 7 h 10 min on Monday and 1 h on Tuesday.
    apply(engine, conversation_id, service.record_customer_message, local("2026-03-03 09:00"))
    conversation, timers, _ = state(engine, conversation_id)
    assert conversation.next_response_due_at == local("2026-03-03 10:00")
    assert due_before == local("2026-03-04 15:00")
    assert conversation.resolution_due_at == CONFIG.add(due_before, 8 * 3600 + 10 * 60) == local("2026-03-05 13:40")
    assert timers["resolution"].status == "running" and timers["next_response"].round == 1


def test_later_customer_messages_do_not_move_the_next_response_clock(engine):
    conversation_id = escalated(engine, "twice", "2026-03-02 10:00")
    apply(engine, conversation_id, service.record_agent_reply, local("2026-03-02 10:05"))
    apply(engine, conversation_id, service.record_customer_message, local("2026-03-02 10:30"))
    apply(engine, conversation_id, service.record_customer_message, local("2026-03-02 10:50"))
    conversation, _, _ = state(engine, conversation_id)
    assert conversation.next_response_due_at == local("2026-03-02 11:30")


def test_a_customer_message_before_the_first_answer_changes_nothing(engine):
    conversation_id = escalated(engine, "impatient", "2026-03-02 10:00")
    apply(engine, conversation_id, service.record_customer_message, local("2026-03-02 10:10"))
    conversation, timers, _ = state(engine, conversation_id)
    assert "next_response" not in timers and conversation.next_response_due_at is None
    assert conversation.first_response_due_at == local("2026-03-02 11:00")


def test_a_reply_after_the_due_time_is_a_missed_first_response_and_breaches(engine):
    conversation_id = escalated(engine, "late", "2026-03-02 10:00")
    apply(engine, conversation_id, service.record_agent_reply, local("2026-03-02 11:30"))
    conversation, _, outcome = state(engine, conversation_id)
    assert (outcome.first_response_met, outcome.first_response_seconds) == (False, 5400)
    assert conversation.sla_status == "breached"


def test_resolving_records_met_targets_and_business_seconds_without_paused_time(engine):
    conversation_id = escalated(engine, "done", "2026-03-06 17:00")
    apply(engine, conversation_id, service.record_agent_reply, local("2026-03-06 17:10"))
    apply(engine, conversation_id, service.record_customer_message, local("2026-03-09 09:00"))
    apply(engine, conversation_id, service.record_agent_reply, local("2026-03-09 09:20"))
    apply(engine, conversation_id, service.end_cycle, local("2026-03-09 15:00"), ended_by="resolved")
    conversation, timers, outcome = state(engine, conversation_id)
    assert all(t.status == "stopped" for t in timers.values())
    assert (conversation.next_response_due_at, conversation.resolution_due_at) == (None, None)
    # Running: Fri 17:00–17:10 and Mon 09:00–09:20; paused otherwise (waiting on the customer).
    assert outcome.resolution_seconds == 30 * 60 and outcome.resolution_met is True
    assert (outcome.first_response_seconds, outcome.next_responses, outcome.next_response_breaches) == (600, 1, 0)
    assert (outcome.ended_by, outcome.resolved_at) == ("resolved", local("2026-03-09 15:00"))


def test_resolving_without_an_answer_before_the_due_time_leaves_first_response_undecided(engine):
    conversation_id = escalated(engine, "quick", "2026-03-02 10:00")
    apply(engine, conversation_id, service.end_cycle, local("2026-03-02 10:30"), ended_by="resolved")
    _, _, outcome = state(engine, conversation_id)
    assert (outcome.first_response_met, outcome.resolution_met) == (None, True)


def test_reopening_resumes_the_resolution_clock_where_it_stopped(engine):
    conversation_id = escalated(engine, "reopen", "2026-03-02 10:00")
    apply(engine, conversation_id, service.end_cycle, local("2026-03-02 11:00"), ended_by="resolved")
    apply(engine, conversation_id, service.resume_after_reopen, local("2026-03-03 09:00"))
    conversation, timers, outcome = state(engine, conversation_id)
    assert timers["resolution"].consumed_seconds == 3600
    assert conversation.resolution_due_at == CONFIG.add(local("2026-03-03 09:00"), 23 * 3600)
    assert (outcome.cycle, outcome.ended_by, outcome.resolution_met) == (1, None, None)


def test_handing_back_ends_the_cycle_and_the_next_escalation_starts_another(engine):
    conversation_id = escalated(engine, "back", "2026-03-02 10:00")
    apply(engine, conversation_id, service.record_agent_reply, local("2026-03-02 10:05"))
    apply(engine, conversation_id, service.end_cycle, local("2026-03-02 10:30"), ended_by="handed_back")
    apply(engine, conversation_id, service.start_cycle, local("2026-03-04 14:00"))
    conversation, timers, outcome = state(engine, conversation_id)
    assert (outcome.cycle, outcome.ended_by) == (2, None)
    assert timers["first_response"].round == 2 and timers["first_response"].status == "running"
    assert conversation.first_response_due_at == local("2026-03-04 15:00")
    with Session(engine) as session:
        first = session.exec(select(SLAOutcome).where(SLAOutcome.cycle == 1)).one()
    assert (first.ended_by, first.first_response_met) == ("handed_back", True)


def test_policies_are_created_with_the_defaults_on_first_use(engine):
    with Session(engine) as session:
        assert session.exec(select(SLAPolicy)).all() == []
        config = service.load_config(session, "Asia/Ho_Chi_Minh")
        session.commit()
    assert config.policies["urgent"] == PolicyTargets(15, 15, 240)
    assert config.policies["low"] == PolicyTargets(240, 240, 4320)
    assert config.schedule.week[5] == ((8 * 60, 21 * 60),) and config.schedule.week[6] == ()


def test_expected_first_response_follows_policy_and_business_hours(engine):
    with Session(engine) as session:
        # Saturday 20:30 with the default week (Mon–Sat 08:00–21:00): 30 min today, 30 on Monday.
        assert service.expected_first_response(session, "normal", local("2026-03-07 20:30"),
                                               "Asia/Ho_Chi_Minh") == local("2026-03-09 08:30")
    assert CONFIG.expected_first_response("urgent", local("2026-03-06 17:20")) == local("2026-03-09 08:05")


def test_changing_the_schedule_is_audited_and_does_not_move_running_clocks(engine):
    conversation_id = escalated(engine, "steady", "2026-03-02 10:00")
    due = state(engine, conversation_id)[0].first_response_due_at
    with Session(engine) as session:
        service.replace_business_hours(session, {"sun": [("09:00", "10:00")]}, [], actor_id=None)
        session.commit()
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "business_hours_changed")).one()
    assert entry.details["after"]["sun"] == ["09:00-10:00"]
    assert state(engine, conversation_id)[0].first_response_due_at == due


def test_clocks_move_the_same_on_postgresql(database_url):
    engine = make_database_engine(database_url)
    try:
        migrate(engine)
        conversation_id = escalated(engine, "pg", "2026-03-06 17:00")
        apply(engine, conversation_id, service.record_agent_reply, local("2026-03-06 17:10"))
        apply(engine, conversation_id, service.record_customer_message, local("2026-03-09 08:00"))
        conversation, timers, _ = state(engine, conversation_id)
        assert conversation.next_response_due_at == local("2026-03-09 09:00")
        assert timers["resolution"].consumed_seconds == 600
        assert conversation.resolution_due_at == CONFIG.add(local("2026-03-09 08:00"), 86400 - 600)
        assert conversation.resolution_due_at - local("2026-03-09 08:00") > timedelta(days=2)
    finally:
        engine.dispose()


def test_escalating_leaves_the_due_times_to_the_sla_clocks(engine):
    """conversations.escalate writes no wall-clock due time of its own; the clocks write theirs."""
    from helpdesk.conversations import service as conversations

    conversation_id = make_conversation(engine, sender="esc-due", state="bot")
    with Session(engine, expire_on_commit=False) as session:
        conversation = session.get(Conversation, conversation_id)
        conversation.first_response_due_at = local("2026-03-01 09:00")  # left from an earlier cycle
        conversations.escalate(session, conversation, "customer_request", "urgent")
        assert (conversation.first_response_due_at, conversation.resolution_due_at) == (None, None)
        session.commit()
    at = local("2026-03-06 17:25")  # Friday, five minutes before closing
    apply(engine, conversation_id, service.start_cycle, at)

    conversation = state(engine, conversation_id)[0]
    assert conversation.first_response_due_at == CONFIG.clock.add_minutes(at, 15) == local("2026-03-09 08:10")
    assert conversation.resolution_due_at == CONFIG.clock.add_minutes(at, 240)
