"""The SLA check over 100,000 open conversations, on a SQLite file and, when
CAREDESK_TEST_POSTGRES_URL is set, on a scratch database of its own on that PostgreSQL server
(created and dropped here: the test database itself is never touched).

Each conversation has a running resolution clock (24 h target) due between 1 h ago and 23 h from
now; every other one also a running first-response clock (1 h target) due between 30 min ago and
90 min from now. The check runs three times:
  cold: every warning and breach due is new (~42,000 of 150,000 clocks: a backlog, as after downtime);
  warm: again at the same moment, nothing new (the cost of a run that finds nothing);
  tick: 5 s later, the worker's interval (the steady state: what came due in those 5 s).
Baselines in the same process: ``read_due``, a plain SELECT of the clocks the cold run has to handle
(``sla_timers WHERE check_at <= now``: the least any check must read), for the cold run; and a plain
indexed ``SELECT count(*) FROM conversations WHERE resolution_due_at < now`` for the warm and tick
runs. ``cold_events_via_redis_s`` publishes the cold run's events once more through an event bus on
a private redis-server: what a deployment with Redis adds to the cold run. SQLite is left without
ANALYZE statistics, as a deployment is. Prints one figure a line.

    .venv/bin/python bench/sla_bench.py [--conversations 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _harness import private_redis, scratch_postgres
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import Engine

from helpdesk.conversations.models import Conversation
from helpdesk.channels.ledger import make_database_engine
from helpdesk.core.db import migrate, utcnow
from helpdesk.core.events import EventBus
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.sla.models import SLATimer
from helpdesk.sla.tasks import BATCH_SIZE, announce_findings, run_sla_check

CHUNK = 10_000


def populate(engine: Engine, conversations: int, now, seed: int = 7) -> int:
    """Open conversations with running clocks spread around ``now``; returns how many clocks."""
    rng = random.Random(seed)
    with engine.begin() as connection:
        customer_id = connection.execute(insert(Customer.__table__).values(name="Bench", phone_verified=False,
                                         locale="vi", care_opted_out=False, created_at=now)
                                         .returning(Customer.__table__.c.id)).scalar_one()
        identity_id = connection.execute(insert(ChannelIdentity.__table__).values(
            customer_id=customer_id, channel="cli", external_id="bench", reachable=True, created_at=now)
            .returning(ChannelIdentity.__table__.c.id)).scalar_one()
    clocks = 0
    next_id = 1
    for start in range(0, conversations, CHUNK):
        size = min(CHUNK, conversations - start)
        rows, timers = [], []
        for offset in range(size):
            conversation_id = next_id + offset
            escalated = now - timedelta(minutes=rng.uniform(0, 60))
            resolution_due = now + timedelta(hours=rng.uniform(-1, 23))
            first_due = now + timedelta(minutes=rng.uniform(-30, 90)) if conversation_id % 2 else None
            rows.append({"id": conversation_id, "customer_id": customer_id, "identity_id": identity_id,
                         "channel": "cli", "state": "with_agent", "priority": "normal", "team": None,
                         "escalation_reason": "human_request", "escalated_at": escalated,
                         "first_response_due_at": first_due, "resolution_due_at": resolution_due,
                         "sla_status": "ok", "created_at": escalated, "updated_at": escalated})
            for target, due, seconds in (("resolution", resolution_due, 86_400.0),
                                         ("first_response", first_due, 3_600.0)):
                if due is None:
                    continue
                warn = due - timedelta(seconds=0.2 * seconds)
                timers.append({"conversation_id": conversation_id, "target": target, "round": 1,
                               "status": "running", "priority": "normal", "target_seconds": seconds,
                               "consumed_seconds": 0.0, "started_at": escalated, "running_since": escalated,
                               "warn_at": warn, "due_at": due, "check_at": warn})
        next_id += size
        with engine.begin() as connection:
            connection.execute(insert(Conversation.__table__), rows)
            connection.execute(insert(SLATimer.__table__), timers)
        clocks += len(timers)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("SELECT setval(pg_get_serial_sequence('conversations', 'id'), :n)"),
                               {"n": conversations})
            connection.execute(text("ANALYZE"))  # what autovacuum would soon do
    return clocks


def baseline_count(engine: Engine, now) -> tuple[float, int]:
    """The best of five plain indexed counts of conversations past their resolution due time."""
    query = (select(func.count()).select_from(Conversation.__table__)
             .where(Conversation.__table__.c.resolution_due_at < now))
    best, rows = float("inf"), 0
    with engine.connect() as connection:
        for _ in range(5):
            started = time.perf_counter()
            rows = connection.execute(query).scalar_one()
            best = min(best, time.perf_counter() - started)
    return best, rows


def baseline_read_due(engine: Engine, now) -> tuple[float, int]:
    """The best of three plain reads of the clocks due by ``now``: the floor under a cold check."""
    timers = SLATimer.__table__
    query = (select(timers.c.conversation_id, timers.c.target, timers.c.round, timers.c.due_at)
             .where(timers.c.check_at <= now))
    best, rows = float("inf"), 0
    with engine.connect() as connection:
        for _ in range(3):
            started = time.perf_counter()
            rows = len(connection.execute(query).all())
            best = min(best, time.perf_counter() - started)
    return best, rows


async def publish_via_redis(findings) -> float | None:
    """Seconds to publish these findings' events through a bus on a private Redis (None without one)."""
    import redis.asyncio as aioredis

    with private_redis() as url:
        if url is None:
            return None
        client = aioredis.from_url(url, decode_responses=True)
        bus = EventBus(client)
        await bus.start()
        try:
            started = time.perf_counter()
            for batch in range(0, len(findings), BATCH_SIZE):  # as the check announces them
                await announce_findings(bus, findings[batch:batch + BATCH_SIZE])
            return time.perf_counter() - started
        finally:
            await bus.stop()
            await client.aclose()


async def bench(label: str, url: str, conversations: int) -> None:
    engine = make_database_engine(url)
    try:
        migrate(engine)
        now = utcnow()
        clocks = populate(engine, conversations, now)
        events = EventBus()
        baseline_s, baseline_rows = baseline_count(engine, now)
        read_due_s, read_due_rows = baseline_read_due(engine, now)

        started = time.perf_counter()
        cold = await run_sla_check(engine, events, now)
        cold_s = time.perf_counter() - started
        started = time.perf_counter()
        warm = await run_sla_check(engine, events, now)
        warm_s = time.perf_counter() - started
        started = time.perf_counter()
        tick = await run_sla_check(engine, events, now + timedelta(seconds=5))
        tick_s = time.perf_counter() - started
        redis_s = await publish_via_redis(cold.findings)

        print(f"{label}_conversations {conversations}")
        print(f"{label}_running_clocks {clocks}")
        print(f"{label}_cold_check_s {cold_s:.3f}")
        print(f"{label}_cold_flagged {len(cold.findings)}")
        print(f"{label}_cold_warnings {cold.warnings}")
        print(f"{label}_cold_breaches {cold.breaches}")
        print(f"{label}_cold_transactions {cold.transactions}")
        print(f"{label}_cold_longest_transaction_s {cold.longest_transaction_s:.3f}")
        print(f"{label}_warm_check_s {warm_s:.4f}")
        print(f"{label}_warm_flagged {len(warm.findings)}")
        print(f"{label}_tick_check_s {tick_s:.4f}")
        print(f"{label}_tick_flagged {len(tick.findings)}")
        print(f"{label}_baseline_read_due_s {read_due_s:.4f}")
        print(f"{label}_baseline_read_due_rows {read_due_rows}")
        print(f"{label}_baseline_count_s {baseline_s:.4f}")
        print(f"{label}_baseline_rows {baseline_rows}")
        print(f"{label}_cold_vs_read_due {cold_s / read_due_s:.1f}")
        print(f"{label}_warm_vs_baseline {warm_s / baseline_s:.2f}")
        print(f"{label}_tick_vs_baseline {tick_s / baseline_s:.2f}")
        if redis_s is not None:
            print(f"{label}_cold_events_via_redis_s {redis_s:.3f}")
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="caredesk-sla-bench-") as workdir:
        asyncio.run(bench("sqlite", f"sqlite:///{workdir}/sla.db", args.conversations))
    postgres = os.environ.get("CAREDESK_TEST_POSTGRES_URL")
    if postgres:
        with scratch_postgres(postgres) as url:
            asyncio.run(bench("postgresql", url, args.conversations))


if __name__ == "__main__":
    main()
