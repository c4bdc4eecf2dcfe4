"""The retention report as the database computes it (from customer_purchases: months bought and NPS
answers summed up per buyer) against every figure recomputed in plain Python from the orders, answers,
ratings and conversations themselves, on SQLite and PostgreSQL: for periods of 30 days, 2 months in the
past, 12 months and three years, with rows written by the ORM (kept in step as orders and answers
change), with rows counted in another time zone and rows whose months are unknown (the report then
reads those buyers' orders)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update
from sqlmodel import Session, select

from helpdesk.channels.ledger import make_database_engine
from helpdesk.conversations.models import Conversation
from helpdesk.core.db import migrate
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.nps.models import NpsResponse
from helpdesk.ratings.models import Rating
from helpdesk.reports import retention
from helpdesk.reports.period import parse_period
from helpdesk.shop import purchases
from helpdesk.shop.models import Order
from helpdesk.shop.purchases import CustomerPurchase

TZ_NAME = "Asia/Ho_Chi_Minh"
TZ = ZoneInfo(TZ_NAME)
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=TZ).astimezone(UTC)
CHURN_DAYS = 180
PERIODS = [(None, None), ("2026-02-01", "2026-03-31"), ("2025-12-01", "2026-11-30"),
           ("2023-12-01", "2026-11-30")]
STATUSES = ["delivered"] * 6 + ["cancelled", "returned", "pending", "shipped"]


def build(engine) -> None:
    """Buyers over three and a half years, written through the ORM, then changed the ways a shop does."""
    rng = random.Random(21)
    start = datetime(2023, 6, 1, tzinfo=UTC)
    span = (NOW - start).total_seconds()
    with Session(engine) as session:
        orders = []
        for n in range(400):
            phone = f"09{rng.randrange(70):08d}"
            # half the orders in the last year, so recent periods have new customers too
            share = rng.random() if n % 2 else 1 - rng.random() * 0.3
            orders.append(Order(code=f"DH{n:05d}", phone=phone, status=rng.choice(STATUSES),
                                total_vnd=rng.randrange(1, 50) * 100_000, items=[],
                                created_at=start + timedelta(seconds=int(share * span))))
        # buyers who first bought in the last 14 months (the recent periods' new customers), some of them
        # in the last 30 days
        for k in range(40):
            first = NOW - timedelta(days=rng.uniform(1, 30) if k % 4 == 0 else rng.uniform(1, 420))
            for again in range(rng.randrange(4)):
                at = first + timedelta(days=rng.uniform(0, 200) if again else 0)
                if at < NOW:
                    orders.append(Order(code=f"DR{k:03d}{again}", phone=f"0980{k:06d}", items=[],
                                        status=rng.choice(STATUSES), total_vnd=300_000, created_at=at))
        # the same moment twice (no second purchase), the first and last second of a shop-local month,
        # and orders dated after "now" (which the cohorts must not count)
        moment = datetime(2026, 3, 31, 23, 59, 59, tzinfo=TZ).astimezone(UTC)
        orders += [Order(code="DHX1", phone="0990000001", status="delivered", items=[], created_at=moment),
                   Order(code="DHX2", phone="0990000001", status="delivered", items=[], created_at=moment),
                   Order(code="DHX3", phone="0990000001", status="delivered", items=[],
                         created_at=moment + timedelta(seconds=1)),
                   Order(code="DHX4", phone="0990000002", status="delivered", items=[],
                         created_at=datetime(2026, 9, 3, tzinfo=UTC)),
                   Order(code="DHX5", phone="0990000002", status="delivered", items=[],
                         created_at=NOW + timedelta(days=3))]
        session.add_all(orders)
        session.flush()
        customers = []
        for n in range(25):
            verified = n % 3 != 0
            customers.append(Customer(name=f"K{n}", phone=orders[n * 7].phone, phone_verified=verified))
        session.add_all(customers)
        session.flush()
        identities = [ChannelIdentity(customer_id=c.id, channel="telegram", external_id=f"tg-{c.id}")
                      for c in customers]
        session.add_all(identities)
        session.flush()
        for n, order in enumerate(orders[:60]):
            if n % 4 == 0:  # named on the order rather than by a verified phone
                order.customer_id = customers[n % len(customers)].id
        for n in range(90):
            order = rng.choice(orders[:140] + orders[145:])  # 140-144 are deleted below
            session.add(NpsResponse(customer_id=customers[n % 25].id, order_id=order.id, channel="telegram",
                                    asked_at=order.created_at, score=rng.randrange(11) if n % 9 else None,
                                    at=order.created_at + timedelta(days=2)))
        for n in range(50):
            at = start + timedelta(days=rng.randrange(1200))
            escalated = at + timedelta(minutes=5) if n % 3 else None
            who = rng.randrange(25)
            conversation = Conversation(customer_id=customers[who].id, identity_id=identities[who].id,
                                        channel="telegram", state="resolved",
                                        sla_status="breached" if n % 4 == 0 else "ok", escalated_at=escalated,
                                        created_at=at, updated_at=at, last_message_at=at)
            session.add(conversation)
            session.flush()
            if n % 2:
                session.add(Rating(kind="csat", score=1 + rng.randrange(5),
                                   customer_id=conversation.customer_id, conversation_id=conversation.id,
                                   created_at=at))
        session.commit()
        # what happens to orders and answers afterwards, each through the ORM
        for order in orders[100:130]:
            order.status = "cancelled" if order.status == "delivered" else "delivered"
        for order in orders[130:140]:
            order.phone = f"09{rng.randrange(70):08d}"
        for order in orders[140:145]:
            session.delete(order)
        session.commit()
        for answer in session.exec(select(NpsResponse).where(NpsResponse.score == None)).all():  # noqa: E711
            answer.score = 10  # answered later
        later = session.exec(select(NpsResponse).order_by(NpsResponse.id)).all()
        later[0].order_id = orders[150].id  # an answer moved to another order (and buyer)
        session.delete(later[1])
        session.commit()


def local_month(moment: datetime) -> date:
    local = moment.astimezone(TZ)
    return date(local.year, local.month, 1)


def months_between(earlier: date, later: date) -> int:
    return (later.year - earlier.year) * 12 + later.month - earlier.month


def ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def expected(engine, period) -> dict:
    """Every figure of the report, worked out in Python from the rows themselves."""
    with Session(engine) as session:
        orders = session.exec(select(Order)).all()
        answers = session.exec(select(NpsResponse)).all()
        customers = session.exec(select(Customer)).all()
        ratings = session.exec(select(Rating)).all()
        conversations = session.exec(select(Conversation)).all()
    bought: dict[str, list[tuple[datetime, int]]] = {}
    for order in orders:
        if order.status not in ("cancelled", "returned"):
            bought.setdefault(order.phone, []).append((order.created_at, order.total_vnd))
    for purchases_of in bought.values():
        purchases_of.sort()
    end = min(period.end, NOW)
    new = {phone: times for phone, times in bought.items() if period.start <= times[0][0] < end}
    figures: dict = {"new_customers": len(new)}

    def second(times):
        later = [at for at, _ in times if at > times[0][0]]
        return min(later) if later else None

    repeat = []
    for days in (30, 90, 180):
        base = [t for t in new.values() if NOW - t[0][0] >= timedelta(days=days)]
        again = [t for t in base if second(t) is not None and second(t) - t[0][0] <= timedelta(days=days)]
        repeat.append((days, len(base), len(again), ratio(len(again), len(base))))
    figures["repeat"] = repeat
    spent = sum(vnd for t in new.values() for _, vnd in t)
    count = sum(len(t) for t in new.values())
    figures["clv"] = (round(spent / len(new), 0) if new else None,
                      round(count / len(new), 2) if new else None)

    horizon = end - timedelta(days=CHURN_DAYS)
    base = [t for t in bought.values() if t[0][0] < horizon]
    churned = [t for t in base if not any(horizon <= at < end for at, _ in t)]
    figures["churn"] = (len(base), len(churned))

    first_month = local_month(period.start)
    cohort_months = [m for m in (date(first_month.year + (first_month.month - 1 + k) // 12,
                                      (first_month.month - 1 + k) % 12 + 1, 1) for k in range(60))
                     if m <= local_month(period.end - timedelta(microseconds=1))]
    now_offset = months_between(first_month, local_month(NOW))
    cohorts = []
    for index, month in enumerate(cohort_months):
        members = [t for t in new.values() if local_month(t[0][0]) == month]
        shares = []
        for offset in range(retention.COHORT_MONTHS + 1):
            if index + offset > now_offset:
                break
            active = [t for t in members if any(at < NOW and months_between(month, local_month(at)) == offset
                                                for at, _ in t)]
            shares.append(ratio(len(active), len(members)))
        cohorts.append((month, len(members), shares))
    figures["cohorts"] = cohorts

    order_phone = {order.id: order.phone for order in orders}
    linked: dict[str, set[int]] = {}
    for customer in customers:
        if customer.phone_verified and customer.phone:
            linked.setdefault(customer.phone, set()).add(customer.id)
    for order in orders:
        if order.customer_id is not None:
            linked.setdefault(order.phone, set()).add(order.customer_id)
    groups: dict[tuple[str, str], list[int]] = {}
    for phone, times in new.items():
        if NOW - times[0][0] < timedelta(days=90):
            continue
        scores = [a.score for a in answers if a.score is not None and order_phone.get(a.order_id) == phone]
        ids = linked.get(phone, set())
        stars = [r.score for r in ratings if r.kind == "csat" and r.customer_id in ids]
        chats = [c for c in conversations if c.customer_id in ids]
        average = sum(scores) / len(scores) if scores else None
        nps = ("none" if average is None else "promoter" if average >= 9 else "passive" if average > 6
               else "detractor")
        csat = "none" if not stars else "satisfied" if sum(stars) / len(stars) >= 4 else "unsatisfied"
        escalated = [c for c in chats if c.escalated_at is not None]
        sla = ("no_escalation" if not escalated else "sla_breached"
               if any(c.sla_status == "breached" for c in escalated) else "within_sla")
        repeated = int(second(times) is not None and second(times) - times[0][0] <= timedelta(days=90))
        for key in (("nps", nps), ("csat", csat), ("support", "contacted" if chats else "not_contacted"),
                    ("sla", sla)):
            total = groups.setdefault(key, [0, 0])
            total[0] += 1
            total[1] += repeated
    figures["segments"] = sorted((dimension, segment, customers, again, ratio(again, customers))
                                 for (dimension, segment), (customers, again) in groups.items())
    matured = [t for t in new.values() if t[0][0] < NOW - timedelta(days=90)]
    again = [t for t in matured if second(t) is not None and second(t) - t[0][0] <= timedelta(days=90)]
    figures["summary_rate"] = (ratio(len(again), len(matured)) if period.start < NOW - timedelta(days=90)
                              else None)
    return figures


def computed(engine, period) -> dict:
    """The same figures as the report gives them."""
    with Session(engine) as session:
        report = retention.retention_report(session, period, NOW, CHURN_DAYS)
        summary_rate = retention.repeat_rate_90d(session, period, NOW)
    return {
        "new_customers": report.new_customers,
        "repeat": [(r.days, r.customers, r.repeated, r.rate) for r in report.repeat],
        "clv": (report.clv_vnd, report.avg_orders),
        "churn": (report.churn_base, report.churned),
        "cohorts": [(c.month, c.customers, c.retention) for c in report.cohorts],
        "segments": sorted((s.dimension, s.segment, s.customers, s.repeated, s.rate)
                           for s in report.segments),
        "summary_rate": summary_rate,
    }


@pytest.mark.slow
def test_every_retention_figure_equals_a_plain_recomputation_from_the_rows(database_url):
    engine = make_database_engine(database_url)
    migrate(engine)
    build(engine)
    with Session(engine) as session:
        rows = session.exec(select(CustomerPurchase)).all()
    # the rows were counted in the shop's zone: the report reads them, not the orders
    assert rows and {row.months_tz for row in rows} == {TZ_NAME}
    assert sum(row.nps_answers for row in rows) > 50
    periods = [parse_period(start, end, TZ_NAME, NOW) for start, end in PERIODS]
    wanted = [expected(engine, period) for period in periods]
    # the data reaches every corner the figures have
    assert all(figures["new_customers"] for figures in wanted)
    assert {segment for figures in wanted for segment in figures["segments"]}
    assert any(share for figures in wanted for _, _, shares in figures["cohorts"] for share in shares[1:])
    for period, figures in zip(periods, wanted):
        assert computed(engine, period) == figures, period

    # counted in another zone (the shop's setting changed since): the same figures, from the orders
    with engine.begin() as connection:
        purchases.rebuild(connection, timezone="UTC")
    for period, figures in zip(periods, wanted):
        assert computed(engine, period) == figures, period

    # some rows counted, some not (months unknown): each customer on one side or the other
    with engine.begin() as connection:
        purchases.rebuild(connection, timezone=TZ_NAME)
        table = CustomerPurchase.__table__
        connection.execute(update(table).where(table.c.phone.like("%1"))
                           .values(months_mask=None, months_tz=None))
        connection.execute(update(table).where(table.c.phone.like("%2")).values(months_tz=None))
    for period, figures in zip(periods, wanted):
        assert computed(engine, period) == figures, period
    engine.dispose()
