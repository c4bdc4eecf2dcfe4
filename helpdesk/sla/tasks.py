"""The periodic SLA check: warnings at 80% of a target, breaches past due, each recorded once.

The check reads the clocks through one index (``check_at``: the next moment a clock needs attention)
and works set by set rather than row by row: one UPDATE claims a batch of clocks and moves their
``check_at`` on (to the due time after a warning, to nothing after a breach), one INSERT … SELECT
records the events straight from the claimed clocks, one UPDATE per few thousand conversations sets
their status and priority. Only ids travel from the database to Python and back between the steps
(on PostgreSQL as one array parameter), not the rows themselves. A clock with nothing due is never
read, so a run that finds nothing costs one index probe whatever the number of open conversations.

Two workers may run it at once: on PostgreSQL each claims clocks the other has not locked
(``FOR UPDATE SKIP LOCKED``); on SQLite writers take turns and the claim re-reads ``check_at`` under
the write lock. Either way the unique key of ``sla_events`` with an INSERT that ignores conflicts is
the last word on "once".
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from anyio import to_thread
from sqlalchemy import (
    ARRAY,
    Connection,
    Integer,
    and_,
    any_,
    bindparam,
    case,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement

from helpdesk.audit.models import AuditEntry
from helpdesk.conversations.models import Conversation, Priority
from helpdesk.core.clock import Clock
from helpdesk.core.config import Settings
from helpdesk.core.db import UTCDateTime
from helpdesk.core.events import EventBus
from helpdesk.core.metrics import SLA_BREACHES, SLA_WARNINGS
from helpdesk.jobs.scheduler import Scheduler
from helpdesk.sla.models import SLAEvent, SLAEventKind, SLAStatus, SLATimer

log = logging.getLogger(__name__)

#: the periodic work registered here
SLA_CHECK = "SLA check"
#: clocks claimed per transaction. On SQLite a transaction holds the one write lock, which the webhook
#: edge needs to acknowledge anything: 2,000 clocks held it at most about 0.5 s (20,000 over 2 s, past
#: Zalo's patience), while a backlog of tens of thousands still goes in a few dozen round trips
BATCH_SIZE = 2_000
#: conversations per UPDATE … WHERE id IN (…) (SQLite allows 32,766 parameters per statement)
IDS_PER_STATEMENT = 5_000
#: a breach raises the priority one step
RAISED = {Priority.low: Priority.normal, Priority.normal: Priority.high, Priority.high: Priority.urgent}

_timers = SLATimer.__table__
_events = SLAEvent.__table__
_conversations = Conversation.__table__
_audit = AuditEntry.__table__


@dataclass(frozen=True)
class SLAFinding:
    """One warning or breach the check recorded, with what a notification needs."""

    conversation_id: int
    target: str
    kind: str
    due_at: datetime | None
    assignee_id: int | None
    team: str | None
    priority: str

    @property
    def event_name(self) -> str:
        """The domain event announcing it (``sla_warning`` or ``sla_breached``)."""
        return "sla_breached" if self.kind == SLAEventKind.breach else "sla_warning"


@dataclass
class SLACheckResult:
    """What one run of the check found and recorded."""

    findings: list[SLAFinding] = field(default_factory=list)
    #: how many transactions the run took, and the longest of them (seconds)
    transactions: int = 0
    longest_transaction_s: float = 0.0

    @property
    def warnings(self) -> int:
        """How many warnings were recorded."""
        return sum(1 for f in self.findings if f.kind == SLAEventKind.warning)

    @property
    def breaches(self) -> int:
        """How many breaches were recorded."""
        return sum(1 for f in self.findings if f.kind == SLAEventKind.breach)


def _chunks(ids: Sequence[int], size: int = IDS_PER_STATEMENT) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def _id_sets(connection: Connection, column, ids: Sequence[int]) -> Iterator[ColumnElement[bool]]:
    """Conditions selecting ``column`` among ``ids``: one array parameter on PostgreSQL, chunks of
    ``IN`` lists on SQLite (whose statements take a bounded number of parameters)."""
    if connection.dialect.name == "postgresql":
        if ids:
            yield column == any_(bindparam("ids", list(ids), type_=ARRAY(Integer)))
        return
    for chunk in _chunks(ids):
        yield column.in_(chunk)


def _claim(connection: Connection, now: datetime, limit: int) -> list[int]:
    """Move a batch of due clocks past this run; returns their ids."""
    at = literal(now, UTCDateTime())
    due = _timers.c.due_at <= at
    batch = (select(_timers.c.id).where(_timers.c.check_at <= at).order_by(_timers.c.check_at).limit(limit)
             .with_for_update(skip_locked=True))
    claim = (
        update(_timers)
        .where(_timers.c.id.in_(batch.scalar_subquery()), _timers.c.check_at <= at)
        .values(
            breached_at=case((due, at), else_=_timers.c.breached_at),
            warned_at=case((due, _timers.c.warned_at), else_=at),
            # After a warning the breach is the next thing to look for; after a breach, nothing.
            check_at=case((due, None), else_=_timers.c.due_at),
        )
        .returning(_timers.c.id)
    )
    return list(connection.execute(claim).scalars())


def _record_events(connection: Connection, now: datetime, claimed: list[int]) -> list[tuple[int, str, str, Any]]:
    """Insert one event per claimed clock, skipping any already recorded; returns those inserted here."""
    at = literal(now, UTCDateTime())
    # The claim left the due time alone: a clock due by now is a breach, one only warned is a warning.
    kind = case((and_(_timers.c.due_at.is_not(None), _timers.c.due_at <= at), SLAEventKind.breach.value),
                else_=SLAEventKind.warning.value)
    dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    recorded: list[tuple[int, str, str, Any]] = []
    for claimed_here in _id_sets(connection, _timers.c.id, sorted(claimed)):
        # Inserted in key order, so two checks meeting on the unique key take its locks in the same order.
        rows = (select(_timers.c.conversation_id, _timers.c.target, _timers.c.round, kind, _timers.c.due_at, at)
                .where(claimed_here).order_by(_timers.c.conversation_id, _timers.c.target))
        statement = (dialect_insert(_events)
                     .from_select(["conversation_id", "target", "round", "kind", "due_at", "created_at"], rows)
                     .on_conflict_do_nothing(index_elements=["conversation_id", "target", "round", "kind"])
                     .returning(_events.c.conversation_id, _events.c.target, _events.c.kind, _events.c.due_at))
        recorded += [tuple(row) for row in connection.execute(statement).all()]
    return recorded


def _lock_conversations(connection: Connection, ids: Sequence[int]) -> None:
    # Two checks may touch the same conversation through different clocks; taking the rows in id
    # order first keeps their UPDATEs from waiting on each other in a circle.
    if connection.dialect.name != "postgresql":
        return
    for chosen in _id_sets(connection, _conversations.c.id, ids):
        connection.execute(select(_conversations.c.id).where(chosen).order_by(_conversations.c.id).with_for_update())


def _mark_conversations(connection: Connection, now: datetime, breached: list[int], warned: list[int]
                        ) -> dict[int, Any]:
    """Set the status (and raise the priority on breach); returns each conversation's routing fields."""
    at = literal(now, UTCDateTime())
    rows: dict[int, Any] = {}
    columns = (_conversations.c.id, _conversations.c.assignee_id, _conversations.c.team, _conversations.c.priority)
    raised = case(*[(_conversations.c.priority == str(old), str(new)) for old, new in RAISED.items()],
                  else_=_conversations.c.priority)
    for chosen in _id_sets(connection, _conversations.c.id, breached):
        for row in connection.execute(update(_conversations).where(chosen)
                                      .values(sla_status=SLAStatus.breached, priority=raised, updated_at=at)
                                      .returning(*columns)):
            rows[row.id] = row
    # A warning never lowers a breached conversation back to "warning".
    warned_status = case((_conversations.c.sla_status == SLAStatus.ok, SLAStatus.warning.value),
                         else_=_conversations.c.sla_status)
    for chosen in _id_sets(connection, _conversations.c.id, warned):
        for row in connection.execute(update(_conversations).where(chosen)
                                      .values(sla_status=warned_status).returning(*columns)):
            rows[row.id] = row
    return rows


def check_batch(engine: Engine, now: datetime, limit: int = BATCH_SIZE) -> tuple[int, list[SLAFinding]]:
    """One transaction of the check: how many clocks it claimed, and the findings recorded by it."""
    with engine.begin() as connection:
        claimed = _claim(connection, now, limit)
        if not claimed:
            return 0, []
        recorded = _record_events(connection, now, claimed)
        kinds: dict[int, set[str]] = defaultdict(set)
        for conversation_id, _target, kind, _due in recorded:
            kinds[conversation_id].add(kind)
        breached = sorted(cid for cid, k in kinds.items() if SLAEventKind.breach in k)
        warned = sorted(cid for cid, k in kinds.items() if SLAEventKind.breach not in k)
        _lock_conversations(connection, sorted(kinds))
        routing = _mark_conversations(connection, now, breached, warned)
        findings = [SLAFinding(cid, target, kind, due, routing[cid].assignee_id, routing[cid].team,
                               routing[cid].priority)
                    for cid, target, kind, due in recorded if cid in routing]
        if breached:
            targets: dict[int, list[str]] = defaultdict(list)
            for finding in findings:
                if finding.kind == SLAEventKind.breach:
                    targets[finding.conversation_id].append(finding.target)
            # The priority change is a change to the conversation: it belongs in the audit trail.
            connection.execute(insert(_audit), [
                {"actor_type": "system", "actor_id": None, "action": "sla_breached", "entity_type": "conversation",
                 "entity_id": cid, "details": {"targets": sorted(targets[cid]), "priority": routing[cid].priority},
                 "created_at": now}
                for cid in breached if cid in routing])
        return len(claimed), findings


async def run_sla_check(engine: Engine, events: EventBus, now: datetime, *, batch_size: int = BATCH_SIZE
                        ) -> SLACheckResult:
    """Record the warnings and breaches due by ``now`` and announce them on ``events``.

    Publishes ``sla_warning`` / ``sla_breached`` with the conversation, the target, its assignee and
    team, so the inbox can tell the assignee and the team's supervisor at once.
    """
    result = SLACheckResult()
    while True:
        started = time.perf_counter()
        claimed, findings = await to_thread.run_sync(check_batch, engine, now, batch_size)
        result.transactions += 1
        result.longest_transaction_s = max(result.longest_transaction_s, time.perf_counter() - started)
        result.findings.extend(findings)
        for finding in findings:
            (SLA_BREACHES if finding.kind == SLAEventKind.breach else SLA_WARNINGS).labels(finding.target).inc()
        await announce_findings(events, findings)
        if claimed < batch_size:
            return result


async def announce_findings(events: EventBus, findings: list[SLAFinding]) -> None:
    """Publish ``sla_warning`` / ``sla_breached`` for each finding, in order, as one batch."""
    await events.publish_many(
        (finding.event_name, {"conversation_id": finding.conversation_id, "target": finding.target,
                              "due_at": finding.due_at.isoformat() if finding.due_at else None,
                              "assignee_id": finding.assignee_id, "team": finding.team,
                              "priority": finding.priority})
        for finding in findings)


async def run_sla_check_logged(engine: Engine, events: EventBus, clock: Clock) -> None:
    """Run the check as of ``clock``'s time for the scheduler, logging what it found instead of raising."""
    try:
        result = await run_sla_check(engine, events, clock.now())
    except Exception:
        log.exception("SLA check failed")
        return
    if result.findings:
        log.info("SLA check: %d warning(s), %d breach(es) in %d transaction(s), the longest %.0f ms",
                 result.warnings, result.breaches, result.transactions, result.longest_transaction_s * 1000)


def schedule_sla_check(scheduler: Scheduler, engine: Engine, events: EventBus, clock: Clock,
                       settings: Settings) -> None:
    """Run the SLA check every ``CAREDESK_SLA__CHECK_INTERVAL_S`` (in one worker replica per interval),
    the first one interval after start."""
    scheduler.add(SLA_CHECK, lambda: run_sla_check_logged(engine, events, clock),
                  every_s=lambda: settings.sla.check_interval_s, shared=True)
