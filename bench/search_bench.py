"""Search at the size of issue #18: GET /api/search's work over 1,000,000 messages, on SQLite and PostgreSQL.

Seeds once, then keeps the databases so that a re-run only measures: a SQLite file under
var/search_bench/ and, when CAREDESK_TEST_POSTGRES_URL is set, a PostgreSQL database of its own on that
server, named after the test database with ``_search_bench`` (the test database itself is never
touched). ``--reseed`` starts both again.

The seed (deterministic): 50,000 customers with Vietnamese names and phones, one channel identity each;
100,000 conversations (a third routed to team "care", a third to "technical", a third to no team);
1,000,000 messages, a realistic mix of Vietnamese (with accents, as customers type them) and English:
questions about warranty, delivery, orders (with order codes), phones, products, the bot's and the
agents' answers, and a few rare words; 30,000 orders. SQLite is written with executemany in one
transaction (the FTS triggers index as rows go in); PostgreSQL with COPY (the trigger of migration
0016 sets each message's search_vector as rows go in), its search indexes dropped
during the load and built after it.

Measured: ``helpdesk.search.service.search`` (what the endpoint runs, without HTTP) for a set of
queries (common words, rare words, no-accent forms, a prefix being typed, a customer's name, a phone in
three formats, an order code), each as an admin (sees everything) and as an agent of team "care"
(scoped), in rounds, after one warm-up round. Prints p50/p95 per database, then per kind of query, one
figure a line, and a baseline interleaved with the queries: the same session's ``SELECT 1`` round trip. Target (issue #18): p95 < 100 ms on both databases.

    .venv/bin/python bench/search_bench.py [--messages 1000000] [--rounds 15] [--databases sqlite,postgresql]
                                           [--reseed]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from _harness import ROOT, percentile
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, select

from helpdesk.agents.models import Agent
from helpdesk.channels.ledger import make_database_engine
from helpdesk.core.db import migrate
from helpdesk.search.indexes import SEARCH_INDEXES, index_statement
from helpdesk.search.service import search
from helpdesk.search.terms import read_terms

VAR = ROOT / "var" / "search_bench"
SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ",
            "Ngô", "Dương", "Lý"]
MIDDLE = ["Thị", "Văn", "Minh", "Ngọc", "Thu", "Hữu", "Đức", "Thanh", "Quốc", "Bảo", "Gia", "Hoài"]
GIVEN = ["Lan", "Hà", "Minh", "Anh", "Hùng", "Dũng", "Trang", "Hương", "Tuấn", "Phương", "Linh", "Nam", "Hạnh",
         "Đạt", "Vy", "Quân", "Thảo", "Khoa", "Yến", "Sơn", "Nhung", "Hiếu", "Châu", "Tâm"]
PRODUCTS = ["nồi cơm điện", "máy lọc nước", "máy xay sinh tố", "bếp từ", "nồi chiên không dầu", "quạt điều hòa",
            "ấm siêu tốc", "máy hút bụi", "bình giữ nhiệt", "chảo chống dính", "rice cooker", "air fryer",
            "water purifier", "blender"]
CUSTOMER = [
    "Cho em hỏi {product} bảo hành bao lâu ạ?", "shop ơi đơn {order} của em giao chưa",
    "{product} nhà mình bị hỏng rồi, bảo hành thế nào vậy shop", "mình muốn đổi trả {product}",
    "sao đơn hàng {order} lâu thế, đã 5 ngày rồi", "sđt của mình là {phone} nhé",
    "cho gặp nhân viên tư vấn", "giao hàng mất mấy ngày vậy ạ", "em cảm ơn shop nhiều",
    "{product} có màu khác không ạ", "Hi, when will order {order} arrive?", "My {product} stopped working",
    "do you ship to Hà Nội?", "bao hanh o dau vay shop", "ship cod được không ạ",
    "{product} dùng được bao lâu thì phải thay lõi", "hóa đơn VAT cho đơn {order} được không",
    "mình ở Đà Nẵng, có cửa hàng không", "{product} kêu to quá", "hàng bị móp méo khi nhận",
]
BOT = [
    "Dạ, {product} được bảo hành 12 tháng kể từ ngày nhận hàng ạ.", "Đơn {order} đang được giao, dự kiến 2-3 ngày nữa ạ.",
    "Dạ em chuyển anh/chị cho nhân viên hỗ trợ ngay ạ.", "Cảm ơn anh/chị đã liên hệ Bếp Việt!",
    "Your order {order} is on its way.", "Anh/chị vui lòng cho em xin số điện thoại đặt hàng ạ.",
    "Dạ, shop giao hàng toàn quốc, miễn phí với đơn từ 500.000đ ạ.",
]
AGENT = [
    "Chào anh/chị, em là nhân viên CSKH, em kiểm tra đơn {order} ngay ạ.", "Em đã tạo phiếu bảo hành cho {product} rồi ạ.",
    "Bên em sẽ gọi lại số {phone} trong hôm nay ạ.", "Thanks, we will replace your {product} this week.",
]
RARE = ["bị rò rỉ nước ở đáy", "xylanh bị kẹt", "tem niêm phong bị rách", "lõi RO bị tắc"]
#: (kind, query): what the agents type
QUERIES = [
    ("common", "bảo hành"), ("common", "giao hang"), ("common", "đơn hàng"),
    ("no_accent", "may loc nuoc"), ("no_accent", "noi com dien"), ("no_accent", "da nang"),
    ("rare", "ro ri nuoc"), ("rare", "xylanh"), ("rare", "niêm phong"),
    ("prefix", "bao h"), ("prefix", "máy xay s"),
    ("name", "nguyen thi lan"), ("name", "Đỗ Minh Hạnh"),
    ("phone", "0912 345 678"), ("phone", "+84912345678"), ("phone", "912345"),
    ("order", "DH123456"), ("order", "dh1000"),
]


def sqlite_datetime(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def generate(messages: int, seed: int = 18):
    """The seed's rows, as tuples per table (columns in ``COLUMNS``)."""
    rng = random.Random(seed)
    start = datetime(2025, 12, 1)
    customers_n, conversations_n = max(50, messages // 20), max(100, messages // 10)
    customers, identities, conversations, orders, rows = [], [], [], [], []
    phones = set()
    for cid in range(1, customers_n + 1):
        name = f"{rng.choice(SURNAMES)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"
        phone = "0912345678" if cid == 777 else f"0{rng.choice('3589')}{rng.randrange(10**8):08d}"
        while phone in phones:
            phone = f"0{rng.choice('3589')}{rng.randrange(10**8):08d}"
        phones.add(phone)
        created = start + timedelta(minutes=cid)
        customers.append((cid, name, phone, False, None, "vi", None, False, created))
        channel = rng.choice(["telegram", "facebook", "zalo_oa", "webchat"])
        identities.append((cid, cid, channel, str(10**9 + rng.randrange(10**9)), name, True, None, None, created))
    order_codes = [f"DH{100000 + i}" for i in range(max(30, messages // 33))]
    for i, code in enumerate(order_codes):
        cid = rng.randrange(1, customers_n + 1)
        orders.append((i + 1, code, customers[cid - 1][2], cid, customers[cid - 1][1], "delivered", "[]",
                       rng.randrange(200, 5000) * 1000, None, start + timedelta(minutes=i)))
    per = messages // conversations_n
    message_id = 0
    span = timedelta(days=365).total_seconds()
    for conv in range(1, conversations_n + 1):
        cid = rng.randrange(1, customers_n + 1)
        team = (None, "care", "technical")[conv % 3]
        state = rng.choice(["bot", "waiting_for_agent", "with_agent", "resolved", "resolved", "resolved"])
        first = start + timedelta(seconds=span * (conv - 1) / conversations_n)
        last = first + timedelta(minutes=per * 3)
        channel = identities[cid - 1][2]
        conversations.append((conv, cid, cid, channel, state, "normal", team, None, "ok", first, last, first, last))
        for k in range(per):
            message_id += 1
            product, order = rng.choice(PRODUCTS), rng.choice(order_codes)
            slots = {"product": product, "order": order, "phone": customers[cid - 1][2]}
            if k % 2 == 0:
                body = rng.choice(CUSTOMER).format(**slots)
                if rng.random() < 0.0005:
                    body += " " + rng.choice(RARE)
                direction, author = "in", "customer"
            elif rng.random() < 0.7:
                body, direction, author = rng.choice(BOT).format(**slots), "out", "bot"
            else:
                body, direction, author = rng.choice(AGENT).format(**slots), "out", "agent"
            rows.append((message_id, conv, direction, author, channel, body, "[]", False,
                         first + timedelta(minutes=3 * k)))
    return {"customers": customers, "channel_identities": identities, "conversations": conversations,
            "orders": orders, "messages": rows}


COLUMNS = {
    "customers": "id, name, phone, phone_verified, email, locale, merged_into_id, care_opted_out, created_at",
    "channel_identities": "id, customer_id, channel, external_id, display_name, reachable, unreachable_reason, "
                          "last_inbound_at, created_at",
    "orders": "id, code, phone, customer_id, customer_name, status, items, total_vnd, delivered_at, created_at",
    "conversations": "id, customer_id, identity_id, channel, state, priority, team, assignee_id, sla_status, "
                     "created_at, updated_at, escalated_at, last_message_at",
    "messages": "id, conversation_id, direction, author, channel, text, attachments, is_private, created_at",
}


def ensure_agents(engine: Engine) -> tuple[int, int]:
    """An admin and an agent of team "care" (ids), created on first use."""
    with Session(engine) as session:
        found = {a.email: a.id for a in session.exec(select(Agent).where(Agent.email.like("%@search.bench")))}
        if len(found) < 2:
            for email, role in (("admin@search.bench", "admin"), ("care@search.bench", "agent")):
                if email not in found:
                    session.add(Agent(email=email, name=email, password_hash="-", role=role))
            session.commit()
            found = {a.email: a.id for a in session.exec(select(Agent).where(Agent.email.like("%@search.bench")))}
            from helpdesk.agents.teams import set_teams
            set_teams(session, session.get(Agent, found["care@search.bench"]), ["care"])
            session.commit()
        return found["admin@search.bench"], found["care@search.bench"]


def seeded(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM messages")).scalar_one()


def seed_sqlite(engine: Engine, data) -> None:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for table, rows in data.items():
            columns = COLUMNS[table]
            marks = ", ".join("?" * len(columns.split(",")))
            converted = [tuple(sqlite_datetime(v) if isinstance(v, datetime) else v for v in row) for row in rows]
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", converted)
        raw.commit()
        cursor.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()


def seed_postgresql(engine: Engine, data) -> None:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SET maintenance_work_mem = '512MB'")
        for name in SEARCH_INDEXES:
            cursor.execute(f"DROP INDEX IF EXISTS {name}")
        for table, rows in data.items():
            with cursor.copy(f"COPY {table} ({COLUMNS[table]}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        raw.commit()
        for name in SEARCH_INDEXES:
            cursor.execute(index_statement(name))
        raw.commit()
        cursor.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()


def postgres_bench_url(reseed: bool) -> str | None:
    url = os.environ.get("CAREDESK_TEST_POSTGRES_URL")
    if not url:
        return None
    parsed = make_url(url)
    name = f"{parsed.database}_search_bench"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        if reseed:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is None:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return parsed.set(database=name).render_as_string(hide_password=False)


def prepare(url: str, messages: int) -> Engine:
    engine = make_database_engine(url)
    migrate(engine)
    have = seeded(engine)
    if have == 0:
        began = time.perf_counter()
        data = generate(messages)
        print(f"{engine.dialect.name}: generated {sum(map(len, data.values()))} rows in "
              f"{time.perf_counter() - began:.0f} s", flush=True)
        began = time.perf_counter()
        (seed_sqlite if engine.dialect.name == "sqlite" else seed_postgresql)(engine, data)
        print(f"{engine.dialect.name}: seeded {messages} messages in {time.perf_counter() - began:.0f} s", flush=True)
    elif have != messages:
        print(f"{engine.dialect.name}: the kept database holds {have} messages, not {messages} "
              "(run with --reseed to change)", flush=True)
    return engine


def measure(engine: Engine, rounds: int) -> dict[str, list[float]]:
    admin_id, care_id = ensure_agents(engine)
    timings: dict[str, list[float]] = {}
    rng = random.Random(1)
    with Session(engine) as session:
        agents = {"admin": session.get(Agent, admin_id), "agent": session.get(Agent, care_id)}
        plan = [(kind, query, who) for kind, query in QUERIES for who in agents]
        for round_number in range(rounds + 1):
            rng.shuffle(plan)
            for kind, query, who in plan:
                began = time.perf_counter()
                results = search(session, agents[who], read_terms(query))
                elapsed = (time.perf_counter() - began) * 1000
                session.rollback()  # each query its own snapshot, as each request has its own session
                if round_number == 0:
                    if not (results.conversations or results.customers):
                        print(f"  note: {query!r} ({who}) found nothing", flush=True)
                    continue
                timings.setdefault(kind, []).append(elapsed)
                # baseline, interleaved: one round trip of nothing, which says how loaded the
                # machine is (a search makes 7 to 11 round trips)
                began = time.perf_counter()
                session.execute(text("SELECT 1"))
                session.rollback()
                timings.setdefault("baseline SELECT 1", []).append((time.perf_counter() - began) * 1000)
    return timings


def report(name: str, timings: dict[str, list[float]]) -> None:
    every = [value for kind, values in timings.items() if not kind.startswith("baseline") for value in values]
    print(f"{name} search p50: {percentile(every, 0.5):.1f} ms")
    print(f"{name} search p95: {percentile(every, 0.95):.1f} ms")
    for kind, values in timings.items():
        print(f"{name} {kind} p50: {percentile(values, 0.5):.1f} ms")
        print(f"{name} {kind} p95: {percentile(values, 0.95):.1f} ms")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--reseed", action="store_true")
    args = parser.parse_args()
    for database in args.databases.split(","):
        if database == "sqlite":
            VAR.mkdir(parents=True, exist_ok=True)
            path = VAR / "sqlite.db"
            if args.reseed:
                for stale in VAR.glob("sqlite.db*"):
                    stale.unlink()
            url = f"sqlite:///{path}"
        else:
            url = postgres_bench_url(args.reseed)
            if url is None:
                print("postgresql: skipped (CAREDESK_TEST_POSTGRES_URL is not set)")
                continue
        engine = prepare(url, args.messages)
        try:
            report(database, measure(engine, args.rounds))
        finally:
            engine.dispose()


if __name__ == "__main__":
    main()
