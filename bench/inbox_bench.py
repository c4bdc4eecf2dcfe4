"""The agent inbox at the size of issue #6: 5,000 open conversations, 50 agents connected.

Seeds a SQLite file (the embedded default) and, when CAREDESK_TEST_POSTGRES_URL is set, a scratch
database of its own on that PostgreSQL server (created and dropped here; the test database itself is
never touched). The seed: 5 teams; 50 accounts (per team a supervisor and 8 agents, 3 agents in two
teams, 2 admins); 5,000 open conversations (40% waiting for an agent, 60% with one; 15% routed to no
team) with customers, channel identities, 3-5 messages, tags, SLA clocks and due times of which some
fall in the "breaching soon" window; and 5,000 resolved ones as history (about 600 in the last week).

1. listing: the inbox page's routes (/inbox/api/views for every view, /inbox/api/counts,
   /inbox/api/rows) through the real ASGI app (httpx ASGITransport, app lifespan running), as an
   agent, a supervisor and an admin. Server-side time is taken inside the app by an ASGI wrapper
   (request in -> last body byte out); end to end is what the client saw. Baseline, interleaved with
   the requests in the same process: a plain ``SELECT ... FROM conversations WHERE state IN (open)
   LIMIT 50`` through an ORM session, and GET /healthz through the same ASGI stack.
   Also printed: the process's CPU time per request (p50), which the other load on a shared machine
   distorts far less than wall time. SQLite is left without ANALYZE statistics, as a deployment is.
2. live: `caredesk serve` in a subprocess (uvicorn); the 50 accounts log in (/api/auth/session) and
   open /inbox/live with their session cookie over real WebSockets. Each customer message is POSTed
   to /webhooks/cli; its latency is until the *last* socket allowed to see the conversation (by the
   visibility rules) has its ``message_created`` frame. Sockets that must not see it are checked for
   leaks. Run embedded (no Redis) and with Redis (a private redis-server, so the bench and the test
   suite never hear each other's events). Baseline: GET /healthz round trips, interleaved. Also
   printed: CPU time per message of the server process and of its message worker (from /proc).

Target (issue #6): view listing < 50 ms p95 server-side; a new customer message at every connected
agent within 200 ms p95. Prints one figure a line.

    .venv/bin/python bench/inbox_bench.py [--conversations 5000] [--messages 100] [--samples 40]
                                          [--only listing|live] [--databases sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from _harness import children_of, cpu_seconds, percentile, private_redis, running_caredesk, scratch_postgres
from sqlalchemy import insert, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from helpdesk.agents.models import Agent, Team, TeamMember
from helpdesk.agents.teams import may_see
from helpdesk.conversations.models import OPEN_STATES, Conversation, ConversationTag, Message
from helpdesk.channels.ledger import make_database_engine
from helpdesk.core.db import migrate, utcnow
from helpdesk.agents.deps import SESSION_COOKIE
from helpdesk.core.security import hash_password
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.sla.models import SLAOutcome, SLATimer
from helpdesk.sla.service import DEFAULT_POLICIES, WARNING_SHARE

PASSWORD = "bench-agent-pass"
TEAMS = ("care", "technical", "warranty", "delivery", "billing")
CHANNELS = ("cli", "telegram", "facebook", "zalo_oa", "webchat")
PRIORITIES = (("urgent", 0.05), ("high", 0.20), ("normal", 0.65), ("low", 0.10))
TAGS = ("bao_hanh", "giao_hang", "doi_tra", "khieu_nai", "noi_com", "may_xay", "hoa_don")
NAMES = ("Nguyễn Văn An", "Trần Thị Bích", "Lê Hoàng Cường", "Phạm Thu Dung", "Hoàng Minh Đức",
         "Vũ Thị Hà", "Đặng Quốc Huy", "Bùi Lan Hương", "Đỗ Thành Long", "Ngô Thị Mai")
TEXTS = ("nồi cơm điện nhà mình bấm không lên đèn", "shop ơi đơn DH100234 giao tới đâu rồi",
         "máy xay bị rò nước ở đáy cối", "cho mình hỏi bảo hành ở đâu gần Cầu Giấy",
         "mình muốn đổi sang màu khác được không", "sao chưa ai trả lời mình vậy")
VIEWS = ("unassigned", "mine", "team", "all", "breaching", "resolved")
CHUNK = 2_000


# ------------------------------------------------------------------------------------------------ seed


@dataclass
class Account:
    """One of the seeded logins."""

    email: str
    role: str
    teams: list[str]
    id: int = 0


def accounts() -> list[Account]:
    """The 50 accounts: per team a supervisor and 8 agents, 3 agents in two teams, 2 admins."""
    people = []
    for index, team in enumerate(TEAMS):
        people.append(Account(f"sup-{team}@bench.local", "supervisor", [team]))
        people += [Account(f"agent-{team}-{n}@bench.local", "agent", [team]) for n in range(8)]
    people += [Account(f"agent-multi-{n}@bench.local", "agent", [TEAMS[n], TEAMS[n + 1]]) for n in range(3)]
    people += [Account(f"admin-{n}@bench.local", "admin", []) for n in range(2)]
    return people


def _weighted(rng: random.Random, pairs) -> str:
    return rng.choices([value for value, _ in pairs], weights=[weight for _, weight in pairs])[0]


def _insert(engine: Engine, table, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as connection:
        for start in range(0, len(rows), CHUNK):
            connection.execute(insert(table), rows[start:start + CHUNK])


def seed(engine: Engine, now: datetime, open_count: int, resolved_count: int, seed_value: int = 6) -> list[Account]:
    """Fill a migrated, empty database; returns the accounts with their ids."""
    rng = random.Random(seed_value)
    people = accounts()
    password_hash = hash_password(PASSWORD)  # one hash for all: argon2 is slow on purpose
    with engine.begin() as connection:
        team_ids = {name: connection.execute(insert(Team.__table__).values(name=name, created_at=now)
                                             .returning(Team.__table__.c.id)).scalar_one() for name in TEAMS}
        for person in people:
            person.id = connection.execute(insert(Agent.__table__).values(
                email=person.email, name=person.email.split("@")[0], password_hash=password_hash, role=person.role,
                team=person.teams[0] if person.teams else None, is_active=True, is_online=False, capacity=5,
                locale="vi", created_at=now).returning(Agent.__table__.c.id)).scalar_one()
            for team in person.teams:
                connection.execute(insert(TeamMember.__table__).values(team_id=team_ids[team], agent_id=person.id))
    members = {team: [p.id for p in people if team in p.teams and p.role != "admin"] for team in TEAMS}
    everyone = [p.id for p in people if p.role != "admin"]

    customers, identities, conversations, messages, tags, timers, outcomes = [], [], [], [], [], [], []
    total = open_count + resolved_count
    for n in range(1, total + 1):
        channel = CHANNELS[n % len(CHANNELS)]
        named = rng.random() < 0.8
        customers.append({"id": n, "name": rng.choice(NAMES) if named else None, "phone_verified": False,
                          "locale": "vi", "care_opted_out": False, "created_at": now - timedelta(days=90)})
        identities.append({"id": n, "customer_id": n, "channel": channel, "external_id": f"bench-{n}",
                           "display_name": None if named else f"Khách {n}", "reachable": True,
                           "created_at": now - timedelta(days=90)})
        priority = _weighted(rng, PRIORITIES)
        targets = DEFAULT_POLICIES[priority]
        team = None if rng.random() < 0.15 else rng.choice(TEAMS)
        row: dict[str, Any] = {
            "id": n, "customer_id": n, "identity_id": n, "channel": channel, "priority": priority, "team": team,
            "escalation_reason": rng.choice(("human_request", "fallback", "complaint")), "sla_status": "ok",
            "first_response_due_at": None, "next_response_due_at": None, "resolution_due_at": None,
            "first_response_at": None, "resolved_at": None, "assignee_id": None}
        if n > open_count:  # history
            escalated = now - timedelta(days=rng.uniform(0.5, 60))
            row.update(state="resolved", escalated_at=escalated, first_response_at=escalated + timedelta(minutes=9),
                       resolved_at=escalated + timedelta(hours=rng.uniform(0.2, 10)),
                       assignee_id=rng.choice(members[team] if team else everyone))
            if row["resolved_at"] > now:
                row["resolved_at"] = now - timedelta(minutes=1)
            row.update(created_at=escalated - timedelta(minutes=5), last_message_at=row["resolved_at"],
                       updated_at=row["resolved_at"])
            script = [("in", "customer", escalated - timedelta(minutes=5)), ("out", "bot", escalated),
                      ("out", "agent", row["first_response_at"])]
        else:
            waiting = rng.random() < 0.4
            first_target = timedelta(minutes=targets.first_response_minutes)
            if waiting:
                escalated = now - first_target * rng.uniform(0.0, 1.3)
            else:
                escalated = now - timedelta(minutes=rng.uniform(5, 8 * 60))
            answered = None if waiting else escalated + first_target * rng.uniform(0.05, 1.1)
            if answered is not None and answered >= now:
                answered = None  # claimed, not answered yet
            created = escalated - timedelta(minutes=rng.uniform(1, 20))
            first_due = escalated + first_target
            resolution_due = escalated + timedelta(minutes=targets.resolution_minutes)
            next_due = None
            if answered is not None and rng.random() < 0.4:  # the customer wrote again after the answer
                next_due = now + timedelta(minutes=rng.uniform(-10, targets.next_response_minutes))
            row.update(state="waiting_for_agent" if waiting else "with_agent", escalated_at=escalated,
                       first_response_due_at=first_due, first_response_at=answered,
                       next_response_due_at=next_due, resolution_due_at=resolution_due, created_at=created,
                       assignee_id=None if waiting else rng.choice(members[team] if team else everyone))
            clocks = [("first_response", first_target, first_due, answered is None),
                      ("resolution", timedelta(minutes=targets.resolution_minutes), resolution_due, True)]
            if next_due is not None:
                clocks.append(("next_response", timedelta(minutes=targets.next_response_minutes), next_due, True))
            status = "ok"
            for target, length, due, running in clocks:
                warn = due - length * (1 - WARNING_SHARE)
                warned = warn if running and warn <= now else None
                breached = due if running and due <= now else None
                if breached:
                    status = "breached"
                elif warned and status == "ok":
                    status = "warning"
                timers.append({
                    "conversation_id": n, "target": target, "round": 1,
                    "status": "running" if running else "stopped", "priority": priority,
                    "target_seconds": length.total_seconds(),
                    "consumed_seconds": 0.0 if running else (answered - escalated).total_seconds(),
                    "started_at": escalated if target != "next_response" else due - length,
                    "running_since": (escalated if target != "next_response" else due - length) if running else None,
                    "warn_at": warn if running else None, "due_at": due if running else None,
                    "check_at": None if not running or breached else (due if warned else warn),
                    "warned_at": warned, "breached_at": breached,
                    "stopped_at": None if running else answered, "met": None if running else answered <= due})
            row["sla_status"] = status
            outcomes.append({"conversation_id": n, "cycle": 1, "priority": priority, "team": team,
                             "escalated_at": escalated, "first_response_due_at": first_due,
                             "first_response_at": answered, "next_responses": 0, "next_response_breaches": 0,
                             "updated_at": escalated})
            last = now - timedelta(minutes=rng.uniform(0, 5)) if next_due else escalated + timedelta(minutes=1)
            script = [("in", "customer", created), ("out", "bot", escalated - timedelta(seconds=30)),
                      ("in", "customer", escalated)]
            if answered is not None:
                script.append(("out", "agent", answered))
                if next_due is not None:
                    script.append(("in", "customer", last))
            if rng.random() < 0.1:
                script.append(("note", "agent", script[-1][2] + timedelta(seconds=20)))
            row.update(last_message_at=max(at for _, _, at in script), updated_at=max(at for _, _, at in script))
            if rng.random() < 0.3:
                tags += [{"conversation_id": n, "tag": tag, "created_at": escalated}
                         for tag in rng.sample(TAGS, rng.randint(1, 2))]
        conversations.append(row)
        for direction, author, at in script:
            note = direction == "note"
            messages.append({
                "conversation_id": n, "direction": "out" if note else direction, "author": author,
                "agent_id": row["assignee_id"] if author == "agent" else None, "channel": channel,
                "channel_message_id": None, "text": ("ghi chú nội bộ: " if note else "") + rng.choice(TEXTS),
                "payload": None, "attachments": [], "nlu": None, "is_private": note,
                "delivery_status": "sent" if direction == "out" else None, "created_at": at})
    messages.sort(key=lambda m: m["created_at"])
    _insert(engine, Customer.__table__, customers)
    _insert(engine, ChannelIdentity.__table__, identities)
    _insert(engine, Conversation.__table__, conversations)
    _insert(engine, Message.__table__, messages)
    _insert(engine, ConversationTag.__table__, tags)
    _insert(engine, SLATimer.__table__, timers)
    _insert(engine, SLAOutcome.__table__, outcomes)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            for table in ("customers", "channel_identities", "conversations"):
                connection.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), :n)"), {"n": total})
            connection.execute(text("ANALYZE"))  # what autovacuum would soon do
    # SQLite gets no ANALYZE: a deployment has no planner statistics unless someone makes them.
    return people


# --------------------------------------------------------------------------------------------- listing


class ServerTimer:
    """ASGI wrapper timing each HTTP request inside the app: request in to the last body byte out."""

    def __init__(self, app: Any):
        self.app = app
        self.last_s = 0.0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.last_s = time.perf_counter() - started

        await self.app(scope, receive, timed_send)


def _ms(values: list[float]) -> tuple[float, float]:
    return statistics.median(values) * 1000, percentile(values, 0.95) * 1000


async def listing(label: str, url: str, people: list[Account], samples: int) -> None:
    """Time every view route as an agent, a supervisor and an admin; print p50/p95 and ratios."""
    import httpx

    from helpdesk.app import create_app
    from helpdesk.core.config import Settings

    settings = Settings(_env_file=None, environment="test", database_url=url, redis_url="",
                        nlu={"models_dir": tempfile.mkdtemp(prefix="caredesk-bench-models-")},
                        admin={"email": "owner@bench.local", "password": "owner-pass-123"})
    app = create_app(settings)
    timer = ServerTimer(app)
    who = {"agent": next(p for p in people if p.role == "agent" and len(p.teams) == 1),
           "supervisor": next(p for p in people if p.role == "supervisor"),
           "admin": next(p for p in people if p.role == "admin")}
    async with app.router.lifespan_context(app):
        engine = app.state.wiring.engine
        transport = httpx.ASGITransport(app=timer)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench.local") as client:
            cookies = {}
            for role, person in who.items():
                response = await client.post("/api/auth/session", json={"email": person.email, "password": PASSWORD})
                assert response.status_code == 200, response.text
                cookies[role] = {"cookie": f"{SESSION_COOKIE}={response.cookies[SESSION_COOKIE]}"}
                client.cookies.clear()
            rows_ids = {}
            for role in who:
                page = (await client.get("/inbox/api/views?view=all&limit=50", headers=cookies[role])).json()
                rows_ids[role] = ",".join(str(row["id"]) for row in page["data"][:20])

            routes = [(role, view, f"/inbox/api/views?view={view}&limit=50") for role in who for view in VIEWS]
            routes += [(role, "counts", "/inbox/api/counts") for role in who]
            routes += [(role, "rows20", f"/inbox/api/rows?ids={rows_ids[role]}") for role in who]
            server: dict[tuple[str, str], list[float]] = {(r, v): [] for r, v, _ in routes}
            e2e: dict[tuple[str, str], list[float]] = {(r, v): [] for r, v, _ in routes}
            cpu: dict[tuple[str, str], list[float]] = {(r, v): [] for r, v, _ in routes}
            baseline_select, baseline_healthz = [], []
            plain = select(Conversation).where(Conversation.state.in_(OPEN_STATES)).limit(50)

            def select50() -> float:
                started = time.perf_counter()
                with Session(engine) as session:
                    assert len(session.exec(plain).all()) == 50
                return time.perf_counter() - started

            rng = random.Random(3)
            for rep in range(samples + 3):  # the first three rounds warm caches and are not counted
                rng.shuffle(routes)
                for role, view, path in routes:
                    started, cpu_started = time.perf_counter(), time.process_time()
                    response = await client.get(path, headers=cookies[role])
                    elapsed, cpu_used = time.perf_counter() - started, time.process_time() - cpu_started
                    assert response.status_code == 200, (path, response.text)
                    if rep >= 3:
                        server[(role, view)].append(timer.last_s)
                        e2e[(role, view)].append(elapsed)
                        cpu[(role, view)].append(cpu_used)
                    if view == "all" and rep >= 3:  # the baselines, spread over the run like the routes
                        baseline_select.append(select50())
                        await client.get("/healthz")
                        baseline_healthz.append(timer.last_s)

    select_p50, select_p95 = _ms(baseline_select)
    _, healthz_p95 = _ms(baseline_healthz)
    print(f"{label}_listing_samples_per_route {samples}")
    print(f"{label}_baseline_select50_p50_ms {select_p50:.2f}")
    print(f"{label}_baseline_select50_p95_ms {select_p95:.2f}")
    print(f"{label}_baseline_healthz_server_p95_ms {healthz_p95:.2f}")
    worst = 0.0
    for role in who:
        for view in (*VIEWS, "counts", "rows20"):
            p50, p95 = _ms(server[(role, view)])
            _, e2e_p95 = _ms(e2e[(role, view)])
            if view in VIEWS:
                worst = max(worst, p95)
            name = f"{label}_inbox_{role}_{view}"
            print(f"{name}_p50_ms {p50:.2f}")
            print(f"{name}_p95_ms {p95:.2f}")
            print(f"{name}_e2e_p95_ms {e2e_p95:.2f}")
            # the process's CPU time over the request (client included): what other load distorts least
            print(f"{name}_cpu_p50_ms {statistics.median(cpu[(role, view)]) * 1000:.2f}")
            print(f"{name}_p95_vs_select50 {p95 / select_p95:.1f}")
    print(f"{label}_inbox_views_worst_p95_ms {worst:.2f}")
    print(f"{label}_inbox_views_worst_p95_vs_select50 {worst / select_p95:.1f}")


# ------------------------------------------------------------------------------------------------ live


@dataclass
class Receiver:
    """One agent's socket as the bench sees it: when each customer message's frame arrived."""

    account: Account
    agent: Agent
    socket: Any = None
    arrivals: dict[int, float] = field(default_factory=dict)


def targets_for_live(engine: Engine, count: int, offset: int) -> list[int]:
    """Open cli conversations, a third each with no team, waiting in a team's queue, assigned."""
    with Session(engine) as session:
        rows = session.exec(select(Conversation.id, Conversation.team, Conversation.assignee_id)
                            .where(Conversation.channel == "cli", Conversation.state.in_(OPEN_STATES))
                            .order_by(Conversation.id)).all()
    kinds = {"nobody's": [r.id for r in rows if r.team is None],
             "queued": [r.id for r in rows if r.team is not None and r.assignee_id is None],
             "assigned": [r.id for r in rows if r.team is not None and r.assignee_id is not None]}
    picked = []
    for index in range(count):
        group = list(kinds.values())[index % 3]
        picked.append(group[(offset + index // 3) % len(group)])
    return picked


async def live(label: str, url: str, people: list[Account], messages: int, redis_url: str | None,
               offset: int) -> None:
    """Post customer messages and time their frames at every socket allowed to see them."""
    from websockets.asyncio.client import connect

    engine = make_database_engine(url)
    with Session(engine) as session:
        agents = {a.id: a for a in session.exec(select(Agent)).all()}
        for a in agents.values():
            session.expunge(a)
    env = {"CAREDESK_DATABASE_URL": url, "CAREDESK_REDIS_URL": redis_url or "", "CAREDESK_CLI__ENABLED": "true",
           "CAREDESK_ADMIN__EMAIL": "owner@bench.local", "CAREDESK_ADMIN__PASSWORD": "owner-pass-123"}
    async with running_caredesk(env) as harness:
        receivers = [Receiver(p, agents[p.id]) for p in people]
        for receiver in receivers:
            async with harness.http.post("/api/auth/session", json={"email": receiver.account.email,
                                                                   "password": PASSWORD}) as response:
                assert response.status == 200, await response.text()
                token = response.cookies[SESSION_COOKIE].value
            receiver.socket = await connect(f"ws://127.0.0.1:{harness.port}/inbox/live", max_size=2**20,
                                            additional_headers={"Cookie": f"{SESSION_COOKIE}={token}"})
            assert json.loads(await receiver.socket.recv())["type"] == "hello"
        waiting: dict[int, tuple[set[int], asyncio.Event]] = {}

        async def read(receiver: Receiver) -> None:
            async for raw in receiver.socket:
                at = time.perf_counter()
                frame = json.loads(raw)
                if frame.get("event") != "message_created" or frame.get("author") != "customer":
                    continue
                conversation_id = frame["conversation_id"]
                receiver.arrivals.setdefault(conversation_id, at)
                expected = waiting.get(conversation_id)
                if expected is not None and all(conversation_id in receivers_by_id[i].arrivals for i in expected[0]):
                    expected[1].set()

        receivers_by_id = {r.account.id: r for r in receivers}
        readers = [asyncio.create_task(read(r)) for r in receivers]
        await asyncio.sleep(float(os.environ.get("SETTLE", "3")))  # presence (everyone coming online) settles before the clock starts

        latencies, firsts, healthz, fanouts = [], [], [], []
        leaks = missing = 0
        workers = children_of(harness.server_pid)
        server_cpu, worker_cpu = cpu_seconds(harness.server_pid), sum(cpu_seconds(pid) for pid in workers)
        for index, conversation_id in enumerate(targets_for_live(engine, messages, offset)):
            with Session(engine) as session:
                conversation = session.get(Conversation, conversation_id)
                identity = session.get(ChannelIdentity, conversation.identity_id)
                allowed = {r.account.id for r in receivers if may_see(session, r.agent, conversation)}
            done = asyncio.Event()
            waiting[conversation_id] = (allowed, done)
            started = time.perf_counter()
            async with harness.http.get("/healthz") as response:
                await response.read()
            healthz.append(time.perf_counter() - started)
            body = {"sender_id": identity.external_id, "message_id": f"live-{label}-{index}",
                    "text": random.Random(index).choice(TEXTS)}
            started = time.perf_counter()
            async with harness.http.post("/webhooks/cli", json=body) as response:
                assert response.status == 200, await response.text()
            try:
                await asyncio.wait_for(done.wait(), timeout=10)
            except TimeoutError:
                pass
            await asyncio.sleep(0.05)  # late frames to sockets that should not get one count as leaks
            got = {r.account.id for r in receivers if conversation_id in r.arrivals}
            missing += len(allowed - got)
            leaks += len(got - allowed)
            arrivals = [receivers_by_id[i].arrivals[conversation_id] for i in allowed & got]
            latencies.append(max(arrivals) - started)
            firsts.append(min(arrivals) - started)
            fanouts.append(len(allowed))
            del waiting[conversation_id]
        server_cpu = cpu_seconds(harness.server_pid) - server_cpu
        worker_cpu = sum(cpu_seconds(pid) for pid in workers) - worker_cpu
        for receiver in receivers:
            await receiver.socket.close()
        for reader in readers:
            reader.cancel()
    engine.dispose()

    p50, p95 = _ms(latencies)
    healthz_p50, healthz_p95 = _ms(healthz)
    print(f"{label}_messages {len(latencies)}")
    print(f"{label}_sockets {len(receivers)}")
    print(f"{label}_recipients_per_message_mean {statistics.mean(fanouts):.1f}")
    print(f"{label}_all_recipients_p50_ms {p50:.1f}")
    print(f"{label}_all_recipients_p95_ms {p95:.1f}")
    print(f"{label}_all_recipients_max_ms {max(latencies) * 1000:.1f}")
    print(f"{label}_first_recipient_p50_ms {statistics.median(firsts) * 1000:.1f}")
    # CPU time is what the noise of a shared machine distorts least: the server's (webhook, sockets)
    # and its message worker's (storing the message, the SLA listener), per message, polling included.
    print(f"{label}_server_cpu_ms_per_message {server_cpu * 1000 / len(latencies):.1f}")
    print(f"{label}_worker_cpu_ms_per_message {worker_cpu * 1000 / len(latencies):.1f}")
    print(f"{label}_frames_missing {missing}")
    print(f"{label}_frames_leaked {leaks}")
    print(f"{label}_baseline_healthz_p50_ms {healthz_p50:.2f}")
    print(f"{label}_baseline_healthz_p95_ms {healthz_p95:.2f}")
    print(f"{label}_all_recipients_p95_vs_healthz_p95 {p95 / healthz_p95:.1f}")


# ------------------------------------------------------------------------------------------------ main


async def bench_database(label: str, url: str, args: argparse.Namespace) -> None:
    """Seed one database, then run the chosen parts against it."""
    engine = make_database_engine(url)
    migrate(engine)
    started = time.perf_counter()
    people = seed(engine, utcnow(), args.conversations, args.resolved)
    engine.dispose()
    print(f"{label}_seed_s {time.perf_counter() - started:.1f}")
    print(f"{label}_open_conversations {args.conversations}")
    if args.only in (None, "listing"):
        await listing(label, url, people, args.samples)
    if args.only in (None, "live"):
        await live(f"{label}_live_embedded", url, people, args.messages, None, offset=0)
        with private_redis() as redis_url:
            if redis_url is None:
                print(f"# {label}: redis-server not installed, no Redis run")
            else:
                await live(f"{label}_live_redis", url, people, args.messages, redis_url, offset=args.messages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=5_000, help="open conversations")
    parser.add_argument("--resolved", type=int, default=5_000, help="resolved conversations (history)")
    parser.add_argument("--messages", type=int, default=100, help="customer messages in each live run")
    parser.add_argument("--samples", type=int, default=40, help="requests per route and role in the listing")
    parser.add_argument("--only", choices=("listing", "live"), default=None)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    databases = args.databases.split(",")
    if "sqlite" in databases:
        with tempfile.TemporaryDirectory(prefix="caredesk-inbox-bench-") as workdir:
            asyncio.run(bench_database("sqlite", f"sqlite:///{Path(workdir) / 'inbox.db'}", args))
    postgres = os.environ.get("CAREDESK_TEST_POSTGRES_URL")
    if "postgresql" in databases and postgres:
        with scratch_postgres(postgres) as url:
            asyncio.run(bench_database("postgresql", url, args))


if __name__ == "__main__":
    main()
