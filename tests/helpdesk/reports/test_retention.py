"""Retention from orders, on SQLite and PostgreSQL, over customers worked out by hand: repeat rates
within 30/90/180 days, the summary's repeat_purchase_rate_90d, monthly cohorts, churn, lifetime value,
segments by NPS and support contact, and the CSV export."""

from __future__ import annotations

import asyncio
import csv
import io

from sqlmodel import Session

from helpdesk.customers.models import Customer
from helpdesk.nps.models import NpsResponse
from helpdesk.shop.models import Order
from tests.helpdesk.care.conftest import FakeClock
from tests.helpdesk.reports.factories import Shop, local

JAN_FEB = {"from": "2026-01-01", "to": "2026-02-28"}
#: (phone, shop-local time, status) — every purchase is 1,000,000 VND
ORDERS = [
    ("0900000001", "2026-01-10 09:00", "delivered"),  # A: again after 22 days, and in June
    ("0900000001", "2026-02-01 09:00", "delivered"),
    ("0900000001", "2026-06-01 09:00", "delivered"),
    ("0900000002", "2026-01-20 09:00", "delivered"),  # B: again after 80 days
    ("0900000002", "2026-04-10 09:00", "delivered"),
    ("0900000003", "2026-02-05 09:00", "delivered"),  # C: once
    ("0900000004", "2026-02-20 09:00", "delivered"),  # D: a cancelled order, then again after 162 days
    ("0900000004", "2026-02-25 09:00", "cancelled"),
    ("0900000004", "2026-08-01 09:00", "delivered"),
    ("0900000005", "2025-11-01 09:00", "delivered"),  # E: first bought before the period
    ("0900000005", "2026-01-15 09:00", "delivered"),
    ("0900000006", "2026-11-15 09:00", "delivered"),  # F: too recent to tell
]


def build(shop: Shop) -> None:
    with Session(shop.engine) as session:
        orders = [Order(code=f"DH7{n:05d}", phone=phone, status=status, total_vnd=1_000_000,
                        items=[{"sku": "RC-18"}], created_at=local(at)) for n, (phone, at, status) in enumerate(ORDERS)]
        session.add_all(orders)
        customer = Customer(name="A", phone="0900000001", phone_verified=True)
        session.add(customer)
        session.flush()
        session.add_all([
            NpsResponse(customer_id=customer.id, order_id=orders[0].id, channel="telegram", score=10,
                        asked_at=local("2026-02-09 10:00"), at=local("2026-02-09 10:00")),
            NpsResponse(customer_id=customer.id, order_id=orders[6].id, channel="telegram", score=3,
                        asked_at=local("2026-03-20 10:00"), at=local("2026-03-20 10:00")),
        ])
        session.commit()
        customer_id = customer.id
    shop.conversation("2026-01-12 10:00", customer=(customer_id, shop.customer()[1]))


async def test_repeat_rates_cohorts_churn_clv_and_segments(any_client, shop):
    any_client.wiring.clock.use(FakeClock(local("2026-12-01 10:00")))
    build(shop)
    admin = await any_client.login()
    report = (await any_client.get("/api/reports/retention", headers=admin, params=JAN_FEB)).json()

    assert report["new_customers"] == 4  # A, B, C, D
    assert [(r["days"], r["customers"], r["repeated"], r["rate"]) for r in report["repeat"]] == [
        (30, 4, 1, 0.25), (90, 4, 2, 0.5), (180, 4, 3, 0.75)]
    assert report["repeat_purchase_rate_90d"] == 0.5
    assert (report["clv_vnd"], report["avg_orders"]) == (2_000_000, 2.0)
    january, february = report["cohorts"]
    assert (january["month"], january["customers"], february["customers"]) == ("2026-01-01", 2, 2)
    assert january["retention"][:6] == [1.0, 0.5, 0.0, 0.5, 0.0, 0.5] and len(january["retention"]) == 12
    assert february["retention"][6] == 0.5 and len(february["retention"]) == 11
    segments = {(s["dimension"], s["segment"]): (s["customers"], s["repeated"]) for s in report["segments"]}
    assert segments[("nps", "promoter")] == (1, 1) and segments[("nps", "detractor")] == (1, 0)
    assert segments[("nps", "none")] == (2, 1)
    assert segments[("support", "contacted")] == (1, 1) and segments[("support", "not_contacted")] == (3, 1)
    assert report["churn_base"] == 0 and report["churn_rate"] is None

    year = (await any_client.get("/api/reports/retention", headers=admin,
                                 params={"from": "2025-01-01", "to": "2026-11-30"})).json()
    # first bought before 4 June (180 days before 1 December), and nothing since: A, B, C, E of A–E
    assert (year["churn_days"], year["churn_base"], year["churned"], year["churn_rate"]) == (180, 5, 4, 0.8)

    summary = (await any_client.get("/api/reports/summary", headers=admin, params=JAN_FEB)).json()
    assert summary["repeat_purchase_rate_90d"] == 0.5
    exported = await any_client.get("/api/reports/retention.csv", headers=admin, params=JAN_FEB)
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {"section": "repeat_rate", "key": "90d", "customers": "4", "value": "0.5"} in rows
    assert sum(row["section"] == "cohort" for row in rows) == 23


async def test_without_orders_every_rate_is_null(client):
    admin = await client.login()
    report = (await client.get("/api/reports/retention", headers=admin, params=JAN_FEB)).json()
    assert report["new_customers"] == 0 and report["repeat_purchase_rate_90d"] is None
    assert report["clv_vnd"] is None and report["segments"] == []
    summary = (await client.get("/api/reports/summary", headers=admin, params={"from": "2020-01-01"})).json()
    assert summary["repeat_purchase_rate_90d"] is None


async def test_the_demo_history_fills_every_after_sales_chart_once_and_sends_nothing(client):
    from datetime import UTC, datetime

    from sqlmodel import func, select

    from helpdesk.care.models import CareMessage
    from helpdesk.care.service import CarePolicy, start_care_for_delivered_orders
    from helpdesk.reports.demo_history import seed_demo_history

    now = datetime(2026, 12, 5, 8, tzinfo=UTC)

    def load() -> tuple[int, int, int]:
        with Session(client.wiring.engine) as session:
            added, again = seed_demo_history(session, now), seed_demo_history(session, now)
            start_care_for_delivered_orders(session, CarePolicy.from_settings(client.wiring.settings), now)
            session.commit()
            return added, again, session.exec(select(func.count()).select_from(CareMessage)).one()

    added, again, care_messages = await asyncio.to_thread(load)
    assert added > 300 and again == 0  # loaded once
    assert care_messages == 0  # history is past its care: nothing is sent
    client.wiring.clock.use(lambda: now)
    admin = await client.login()
    nps = (await client.get("/api/reports/nps", headers=admin)).json()  # the default 30 days
    assert nps["answers"] > 0 and nps["verbatims"] and nps["by_product"] and len(nps["by_channel"]) > 1
    year = {"from": "2025-12-05", "to": "2026-12-05"}
    retention = (await client.get("/api/reports/retention", headers=admin, params=year)).json()
    assert all(rate["rate"] for rate in retention["repeat"]) and retention["churn_rate"] is not None
    assert len(retention["cohorts"]) == 13 and retention["cohorts"][0]["retention"][1] is not None
    assert {s["dimension"] for s in retention["segments"] if s["customers"]} == {"nps", "csat", "support", "sla"}
    trend = (await client.get("/api/reports/nps", headers=admin,
                              params={"from": "2025-06-05", "to": "2026-12-05"})).json()["trend"]
    assert sum(month["answers"] > 0 for month in trend) >= 15  # answers across the 18 months
