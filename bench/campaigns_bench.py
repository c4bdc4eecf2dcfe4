"""A campaign's database work on the embedded default (SQLite, a scratch file): starting a campaign to
``--customers`` customers (one recipient row each, spread at the rate), preparing each recipient's send
(the claim, the channel rules, the chat message stored and queued in the outbox, in one transaction as
the campaign task does; nothing leaves the machine), and the report of replies and orders over them.

Customers: 70% on a chat the rules allow (the cli channel), 20% on Messenger outside its 24-hour window
(skipped), 10% on no channel. A tenth of those sent reply and a twentieth order, for the report.

Printed, one figure a line: start seconds, the seconds to give every waiting recipient a new turn (as
after quiet hours or a resume), prepare milliseconds per recipient (p50, p95), the report's
seconds, and the ratio of the p95 prepare to a baseline measured in the same process: one transaction
writing one row (an UPDATE of the campaign), the floor any per-recipient transaction that writes pays.

    .venv/bin/python bench/campaigns_bench.py [--customers 5000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _harness import percentile  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlmodel import Session, select  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=5000)
    args = parser.parse_args()

    from helpdesk.campaigns import sending, service
    from helpdesk.campaigns.models import CampaignRecipient
    from helpdesk.campaigns.rules import CampaignChannels
    from helpdesk.channels.ledger import make_database_engine
    from helpdesk.conversations.models import Conversation, Message
    from helpdesk.core.db import migrate
    from helpdesk.customers.models import ChannelIdentity, Customer
    from helpdesk.shop.models import Order

    workdir = Path(tempfile.mkdtemp(prefix="campaigns-bench-"))
    engine = make_database_engine(f"sqlite:///{workdir}/bench.db")
    migrate(engine)
    now = datetime.now(UTC)
    ids: list[int] = []
    with Session(engine) as session:
        for number in range(args.customers):
            customer = Customer(name=f"Khách {number}")
            session.add(customer)
            session.flush()
            ids.append(customer.id)
            kind = number % 10
            if kind < 7:
                session.add(ChannelIdentity(customer_id=customer.id, channel="cli", external_id=f"cli-{number}"))
            elif kind < 9:
                session.add(ChannelIdentity(customer_id=customer.id, channel="facebook", external_id=f"psid-{number}",
                                            last_inbound_at=now - timedelta(days=3)))
        session.commit()

    started = time.perf_counter()
    with Session(engine) as session:
        campaign = service.create_campaign(session, name="bench", message="Chào {name}", customer_ids=ids,
                                           rate_per_minute=600, now=now)
        service.start_campaign(session, campaign.id, now)
        session.commit()
        campaign_id = campaign.id
    start_s = time.perf_counter() - started

    # the morning after quiet hours: every waiting turn given again from now, in one transaction
    begun = time.perf_counter()
    with Session(engine) as session:
        service.respread(session, service.get_campaign(session, campaign_id), now)
        session.commit()
    respread_s = time.perf_counter() - begun

    channels = CampaignChannels(order=("chat",), chats=frozenset({"cli", "facebook"}))
    later = now + timedelta(days=1)
    with Session(engine) as session:
        due = list(session.exec(select(CampaignRecipient.id).where(CampaignRecipient.campaign_id == campaign_id)
                                .order_by(CampaignRecipient.id)).all())
    prepare_ms: list[float] = []
    for recipient_id in due:
        begun = time.perf_counter()
        with Session(engine, expire_on_commit=False) as session:
            sending.prepare_send(session, recipient_id, now=later, channels=channels)
            session.commit()
        prepare_ms.append((time.perf_counter() - begun) * 1000)

    baseline_ms: list[float] = []
    for _ in range(len(due)):
        begun = time.perf_counter()
        with Session(engine) as session:
            session.exec(text("UPDATE campaign SET rate_per_minute = rate_per_minute WHERE id = :id"),
                         params={"id": campaign_id})
            session.commit()
        baseline_ms.append((time.perf_counter() - begun) * 1000)

    with Session(engine) as session:  # what followed: replies and orders of some of those sent
        sent = session.exec(select(CampaignRecipient).where(CampaignRecipient.campaign_id == campaign_id,
                                                            CampaignRecipient.status == "sent")).all()
        for number, recipient in enumerate(sent):
            if number % 10 == 0:
                conversation = session.exec(select(Conversation).join(
                    ChannelIdentity, ChannelIdentity.id == Conversation.identity_id)
                    .where(ChannelIdentity.customer_id == recipient.customer_id)).first()
                session.add(Message(conversation_id=conversation.id, direction="in", author="customer",
                                    channel="cli", text="ok", created_at=later + timedelta(hours=2)))
            if number % 20 == 0:
                session.add(Order(code=f"B{number}", phone=f"09{number:08d}", customer_id=recipient.customer_id,
                                  status="pending", items=[], created_at=later + timedelta(days=3)))
        session.commit()
    begun = time.perf_counter()
    with Session(engine) as session:
        report = service.campaign_report(session, campaign_id)
        session.commit()
    report_s = time.perf_counter() - begun

    print(f"customers {args.customers}")
    print(f"sent {report['sent']} replied {report['replied']} ordered {report['ordered']}")
    print(f"start_s {start_s:.3f}")
    print(f"respread_s {respread_s:.3f}")
    print(f"prepare_ms_p50 {percentile(prepare_ms, 0.5):.2f}")
    print(f"prepare_ms_p95 {percentile(prepare_ms, 0.95):.2f}")
    print(f"baseline_ms_p95 {percentile(baseline_ms, 0.95):.2f}")
    print(f"prepare_to_baseline_p95 {percentile(prepare_ms, 0.95) / percentile(baseline_ms, 0.95):.1f}")
    print(f"report_s {report_s:.3f}")
    engine.dispose()


if __name__ == "__main__":
    main()
