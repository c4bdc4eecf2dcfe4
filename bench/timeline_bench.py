"""The customer's timeline (GET /api/customers/{id}/timeline's work, without HTTP) for a long-time
customer on SQLite: 200 conversations on two channels with 6 messages each, a note and a tag on every
tenth, 40 delivered orders with a warranty, the after-delivery steps and 8 maintenance reminders each
(480 care messages, half of them answered). Prints one figure a line: the first page's time (p50, p95
over 30 runs) and its ratio to a baseline customer with one conversation, measured in the same process.

    .venv/bin/python bench/timeline_bench.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlmodel import Session  # noqa: E402

from bench._harness import percentile  # noqa: E402
from helpdesk.agents.models import Agent  # noqa: E402
from helpdesk.care.models import CareMessage, CarePlan  # noqa: E402
from helpdesk.channels.ledger import make_database_engine  # noqa: E402
from helpdesk.conversations.models import Conversation, ConversationTag, Message  # noqa: E402
from helpdesk.core.db import migrate  # noqa: E402
from helpdesk.customers.models import ChannelIdentity, Customer  # noqa: E402
from helpdesk.customers.timeline import customer_events, timeline_page  # noqa: E402
from helpdesk.shop.models import Order, Product, Warranty  # noqa: E402

RUNS = 30
T0 = datetime(2024, 1, 1, 3, 0, tzinfo=UTC)


def seed(session: Session, name: str, conversations: int, orders: int) -> int:
    """A customer with this much history; their id."""
    customer = Customer(name=name)
    session.add(customer)
    session.flush()
    identities = [ChannelIdentity(customer_id=customer.id, channel=channel, external_id=f"{name}-{channel}")
                  for channel in ("telegram", "zalo_oa")]
    session.add_all(identities)
    session.flush()
    for n in range(conversations):
        identity = identities[n % 2]
        at = T0 + timedelta(days=n * 2)
        conversation = Conversation(customer_id=customer.id, identity_id=identity.id, channel=identity.channel,
                                    state="resolved", created_at=at, resolved_at=at + timedelta(hours=3))
        session.add(conversation)
        session.flush()
        session.add_all([Message(conversation_id=conversation.id, direction="in" if m % 2 == 0 else "out",
                                 author="customer" if m % 2 == 0 else "agent", channel=identity.channel,
                                 text=f"tin nhắn {m}", created_at=at + timedelta(minutes=m)) for m in range(6)])
        if n % 10 == 0:
            session.add(Message(conversation_id=conversation.id, direction="out", author="agent",
                                channel=identity.channel, text="ghi chú", is_private=True, created_at=at))
            session.add(ConversationTag(conversation_id=conversation.id, tag="complaint", created_at=at))
    product = session.get(Product, 1)
    for n in range(orders):
        at = T0 + timedelta(days=n * 9)
        order = Order(code=f"{name}-{n}", phone="0900000000", customer_id=customer.id, status="delivered",
                      items=[{"sku": "RC-18", "qty": 1}], created_at=at, delivered_at=at)
        session.add(order)
        session.flush()
        session.add(Warranty(serial=f"{name}-SN-{n}", product_id=product.id, order_id=order.id, starts_at=at,
                             ends_at=at + timedelta(days=365)))
        session.add(CarePlan(order_id=order.id, delivered_at=at))
        kinds = ["thank_you", "rating_request", "usage_tips", "check_in"] + [f"mnt:0:0:{k}" for k in range(1, 9)]
        for k, kind in enumerate(kinds):
            sent = at + timedelta(days=k * 30)
            session.add(CareMessage(order_id=order.id, identity_id=identities[0].id, kind=kind, planned_at=sent,
                                    due_at=sent, status="sent", sent_at=sent))
    session.commit()
    return customer.id


def measure(engine, customer_id: int) -> list[float]:
    admin = Agent(email="bench@test.local", name="bench", password_hash="x", role="admin")
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        with Session(engine) as session:
            timeline_page(customer_events(session, admin, session.get(Customer, customer_id)), None, 50)
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        engine = make_database_engine(f"sqlite:///{folder}/bench.db")
        migrate(engine)
        with Session(engine) as session:
            session.add(Product(sku="RC-18", name="Nồi cơm điện", care_schedule=[{"every_months": 3, "text_vi": "x",
                                                                                   "text_en": "x"}]))
            session.commit()
            small = seed(session, "small", 1, 0)
            large = seed(session, "large", 200, 40)
        baseline, long_history = measure(engine, small), measure(engine, large)
        print(f"timeline_small_p95_ms {percentile(baseline, 0.95):.1f}")
        print(f"timeline_long_history_p50_ms {percentile(long_history, 0.5):.1f}")
        print(f"timeline_long_history_p95_ms {percentile(long_history, 0.95):.1f}")
        print(f"timeline_long_vs_small_p95_ratio {percentile(long_history, 0.95) / percentile(baseline, 0.95):.1f}")
        engine.dispose()


if __name__ == "__main__":
    main()
