"""The SLA check over 100,000 open conversations: once cold (every warning and breach due is new)
and once more right after (nothing new), on a SQLite file and, when CAREDESK_TEST_POSTGRES_URL is
set, on PostgreSQL (whose public schema is dropped and rebuilt: point it at a scratch database).

Each conversation has a running resolution clock (24 h target) due between 1 h ago and 23 h from
now; every other one also a running first-response clock (1 h target) due between 30 min ago and
90 min from now. Baseline in the same process: a plain indexed
``SELECT count(*) FROM conversations WHERE resolution_due_at < now``. Prints one figure a line.

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

from sqlalchemy import func, insert, select, text  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from helpdesk.conversations.models import Conversation  # noqa: E402
from helpdesk.core.db import make_engine, migrate, utcnow  # noqa: E402
from helpdesk.core.events import EventBus  # noqa: E402
from helpdesk.customers.models import ChannelIdentity, Customer  # noqa: E402
from helpdesk.sla.models import SLATimer  # noqa: E402
from helpdesk.sla.tasks import run_sla_check  # noqa: E402

CHUNK = 10_000


class BenchRuntime:
    """What the check needs of a runtime: the engine, an event bus and a clock."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.events = EventBus()
        self.clock = utcnow


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
            connection.execute(text("ANALYZE"))
    else:
        with engine.begin() as connection:
            connection.execute(text("ANALYZE"))
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


async def bench(label: str, url: str, conversations: int) -> None:
    engine = make_engine(url)
    try:
        migrate(engine)
        now = utcnow()
        clocks = populate(engine, conversations, now)
        runtime = BenchRuntime(engine)
        runtime.clock = lambda: now
        baseline_s, baseline_rows = baseline_count(engine, now)

        started = time.perf_counter()
        cold = await run_sla_check(runtime)
        cold_s = time.perf_counter() - started
        started = time.perf_counter()
        warm = await run_sla_check(runtime)
        warm_s = time.perf_counter() - started

        print(f"{label}_conversations {conversations}")
        print(f"{label}_running_clocks {clocks}")
        print(f"{label}_cold_check_s {cold_s:.3f}")
        print(f"{label}_cold_flagged {len(cold.findings)}")
        print(f"{label}_cold_warnings {cold.warnings}")
        print(f"{label}_cold_breaches {cold.breaches}")
        print(f"{label}_warm_check_s {warm_s:.4f}")
        print(f"{label}_warm_flagged {len(warm.findings)}")
        print(f"{label}_baseline_count_s {baseline_s:.4f}")
        print(f"{label}_baseline_rows {baseline_rows}")
        print(f"{label}_cold_vs_baseline {cold_s / baseline_s:.1f}")
        print(f"{label}_warm_vs_baseline {warm_s / baseline_s:.2f}")
    finally:
        engine.dispose()


def reset_postgres(url: str) -> None:
    """Empty the scratch database's public schema."""
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="caredesk-sla-bench-") as workdir:
        asyncio.run(bench("sqlite", f"sqlite:///{workdir}/sla.db", args.conversations))
    postgres = os.environ.get("CAREDESK_TEST_POSTGRES_URL")
    if postgres:
        reset_postgres(postgres)
        asyncio.run(bench("postgresql", postgres, args.conversations))


if __name__ == "__main__":
    main()
