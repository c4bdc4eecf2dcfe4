"""Eighteen months of history for the demo shop, so the after-sales reports (NPS, retention, cohorts)
show something on a fresh ``make run``: returning and one-time customers, delivery ratings, NPS answers
with comments, and a few past support conversations with CSAT.

Deterministic (a seeded generator, dates relative to now) and loaded once: it does nothing when the
history is already there. Its orders (codes DH8…) are past their care: each gets a care plan without
messages, so loading it never sends anything, and its customers' chats are marked unreachable. The
documented demo orders (DH100001, DH100002) are left as they are.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlmodel import Session, select

from helpdesk.care.models import CarePlan
from helpdesk.conversations.models import Conversation, Message
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.nps.models import NpsResponse
from helpdesk.ratings.models import Rating
from helpdesk.shop.models import Order, OrderStatus

CODE_PREFIX = "DH8"
CUSTOMERS = 240
HISTORY_DAYS = 540  # 18 months
SEED = 21
PRODUCTS = [("RC-18", "Nồi cơm điện Bếp Việt 1.8L", 1290000), ("BL-600", "Máy xay sinh tố Bếp Việt 600W", 890000),
            ("AF-55", "Nồi chiên không dầu Bếp Việt 5.5L", 1990000), ("KT-17", "Ấm siêu tốc Bếp Việt 1.7L", 490000)]
CHANNELS = ["telegram", "facebook", "webchat", "zalo_oa"]
FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Võ", "Đặng", "Bùi"]
GIVEN = ["An", "Bình", "Chi", "Dũng", "Hà", "Hương", "Khánh", "Lan", "Minh", "Nam", "Phương", "Quân", "Thảo", "Tuấn"]
PRAISE = ["Giao nhanh, đóng gói cẩn thận", "Nồi nấu cơm ngon, dễ dùng", "Nhân viên tư vấn nhiệt tình",
          "Giá hợp lý, bảo hành rõ ràng", "Mua lần hai rồi, vẫn hài lòng"]
NEUTRAL = ["Sản phẩm ổn nhưng giao hơi chậm", "Dùng được, hướng dẫn hơi khó hiểu", "Tạm ổn, giá hơi cao"]
COMPLAINTS = ["Máy kêu to sau 2 tuần", "Giao trễ 4 ngày, không ai báo", "Gọi hotline không ai nghe",
              "Nắp nồi bị trầy khi nhận hàng"]


def seed_demo_history(session: Session, now: datetime) -> int:
    """Add the history (once); how many orders were added (0 when it was already there)."""
    if session.exec(select(Order.id).where(Order.code.startswith(CODE_PREFIX))).first() is not None:
        return 0
    rng = random.Random(SEED)
    added = 0
    for n in range(CUSTOMERS):
        phone = f"0988{n:06d}"
        customer = Customer(name=f"{rng.choice(FAMILY)} {rng.choice(GIVEN)}", phone=phone, phone_verified=True,
                            created_at=now - timedelta(days=HISTORY_DAYS))
        session.add(customer)
        session.flush()
        channel = rng.choice(CHANNELS)
        identity = ChannelIdentity(customer_id=customer.id, channel=channel, external_id=f"demo-history-{n}",
                                   reachable=False, unreachable_reason="demo history: not a real chat")
        session.add(identity)
        session.flush()
        loyal = rng.random() < 0.45  # comes back; happier on average
        when = now - timedelta(days=rng.uniform(3, HISTORY_DAYS), hours=rng.uniform(0, 10))
        # loyal customers buy two to four times, others mostly once
        purchases = 2 + (rng.random() < 0.5) + (rng.random() < 0.25) if loyal else 1 + (rng.random() < 0.1)
        for purchase in range(1, purchases + 1):
            if when >= now - timedelta(days=2):
                break
            added += 1
            _order(session, rng, customer, identity, phone, when, n, purchase, loyal, now)
            when += timedelta(days=rng.choice([rng.uniform(10, 60), rng.uniform(60, 200)]))
        if rng.random() < 0.3:
            _conversation(session, rng, customer, identity, now, happy=loyal)
    return added


def _order(session: Session, rng: random.Random, customer: Customer, identity: ChannelIdentity, phone: str,
           when: datetime, n: int, purchase: int, loyal: bool, now: datetime) -> None:
    sku, name, price = rng.choice(PRODUCTS)
    cancelled = rng.random() < 0.05
    delivered_at = None if cancelled else when + timedelta(days=2)
    order = Order(code=f"{CODE_PREFIX}{n:04d}{purchase}", phone=phone, customer_name=customer.name,
                  status=OrderStatus.cancelled if cancelled else OrderStatus.delivered,
                  items=[{"sku": sku, "name": name, "qty": 1, "price_vnd": price}], total_vnd=price,
                  delivered_at=delivered_at, created_at=when)
    session.add(order)
    session.flush()
    if delivered_at is None:
        return
    session.add(CarePlan(order_id=order.id, delivered_at=delivered_at, created_at=delivered_at))
    if delivered_at + timedelta(days=1) < now and rng.random() < 0.5:
        stars = rng.choices([5, 4, 3, 2, 1], weights=[6, 3, 1, 0.5, 0.5] if loyal else [3, 3, 2, 1, 1])[0]
        session.add(Rating(kind="delivery", score=stars, customer_id=customer.id, order_id=order.id,
                           created_at=delivered_at + timedelta(days=1)))
    asked = delivered_at + timedelta(days=30)
    if asked < now and rng.random() < 0.6:
        score = min(10, max(0, round(rng.gauss(8.8 if loyal else 6.8, 1.8))))
        pool = PRAISE if score >= 9 else NEUTRAL if score >= 7 else COMPLAINTS
        session.add(NpsResponse(customer_id=customer.id, identity_id=identity.id, order_id=order.id,
                                channel=identity.channel, product_sku=sku, trigger="delivery", asked_at=asked,
                                score=score, comment=rng.choice(pool) if rng.random() < 0.6 else None,
                                at=asked + timedelta(hours=rng.uniform(0.2, 20))))


def _conversation(session: Session, rng: random.Random, customer: Customer, identity: ChannelIdentity,
                  now: datetime, *, happy: bool) -> None:
    """A past support conversation, handed to a person and resolved (some late), with its CSAT."""
    started = now - timedelta(days=rng.uniform(35, HISTORY_DAYS))
    breached = rng.random() < 0.3
    resolved = started + timedelta(hours=rng.uniform(1, 30 if breached else 6))
    conversation = Conversation(customer_id=customer.id, identity_id=identity.id, channel=identity.channel,
                                state="resolved", team="care", escalated_at=started,
                                escalation_reason="report_defect" if not happy else "customer_request",
                                first_response_at=started + timedelta(minutes=rng.uniform(3, 90)),
                                resolved_at=resolved, sla_status="breached" if breached else "ok",
                                last_message_at=started, created_at=started, updated_at=resolved)
    session.add(conversation)
    session.flush()
    session.add(Message(conversation_id=conversation.id, direction="in", author="customer",
                        channel=identity.channel, text=rng.choice(COMPLAINTS), created_at=started))
    session.add(Rating(kind="csat", score=rng.choice([4, 5] if happy and not breached else [1, 2, 3, 4]),
                       customer_id=customer.id, conversation_id=conversation.id,
                       created_at=resolved + timedelta(minutes=30)))
