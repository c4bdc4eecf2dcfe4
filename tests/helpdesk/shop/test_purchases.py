"""customer_purchases, one row per buyer, on SQLite and PostgreSQL: backfilled by its migration from the
orders already there, kept in step by every ORM write of an order (new, status changed, phone corrected,
deleted), equal to a rebuild from the orders; rebuilt by `caredesk orders rebuild-purchases` in the
shop's time zone; and the retention report's churn read from it for a period in the past, against the
definition worked out from the orders by hand."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlmodel import Session, select

from helpdesk.channels.ledger import make_database_engine
from helpdesk.core.db import alembic_config, migrate
from helpdesk.reports import retention
from helpdesk.reports.period import parse_period
from helpdesk.shop import purchases
from helpdesk.shop.models import Order
from helpdesk.shop.purchases import CustomerPurchase

T0 = datetime(2026, 1, 10, 2, 0, tzinfo=UTC)
CAREDESK = str(Path(sys.executable).with_name("caredesk"))


def day(n: int) -> datetime:
    return T0 + timedelta(days=n)


def rows(engine) -> dict[str, tuple]:
    """phone -> (first, second, last, orders, total) as stored."""
    with Session(engine) as session:
        return {r.phone: (r.first_at, r.second_at, r.last_at, r.orders, r.total_vnd)
                for r in session.exec(select(CustomerPurchase))}


def test_the_migration_fills_the_table_from_the_orders_already_there(database_url):
    engine = make_database_engine(database_url)
    config = alembic_config(database_url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0021_nps_response")
    with engine.begin() as connection:
        # plain SQL around the ORM, as an installation before this table would have them
        connection.execute(Order.__table__.insert(), [
            {"code": "DH1", "phone": "0901", "status": "delivered", "items": [], "total_vnd": 100, "created_at": day(0)},
            {"code": "DH2", "phone": "0901", "status": "cancelled", "items": [], "total_vnd": 900, "created_at": day(1)},
            {"code": "DH3", "phone": "0901", "status": "delivered", "items": [], "total_vnd": 200, "created_at": day(5)},
            {"code": "DH4", "phone": "0901", "status": "pending", "items": [], "total_vnd": 300, "created_at": day(9)},
            {"code": "DH5", "phone": "0902", "status": "returned", "items": [], "total_vnd": 500, "created_at": day(2)},
            # a loyal buyer's total outgrows a 32-bit integer
            {"code": "DH6", "phone": "0903", "status": "delivered", "items": [], "total_vnd": 2_000_000_000,
             "created_at": day(3)},
            {"code": "DH7", "phone": "0903", "status": "delivered", "items": [], "total_vnd": 2_000_000_000,
             "created_at": day(3)},
        ])
    migrate(engine)
    assert rows(engine) == {"0901": (day(0), day(5), day(9), 3, 600),
                            "0903": (day(3), None, day(3), 2, 4_000_000_000)}
    engine.dispose()


def test_every_orm_write_of_an_order_keeps_its_buyers_row_right(database_url):
    engine = make_database_engine(database_url)
    migrate(engine)
    with Session(engine) as session:
        first, second, third = (Order(code=f"DH{n}", phone="0901", status="delivered", total_vnd=100 * n,
                                      created_at=day(n * 10)) for n in (1, 2, 3))
        session.add_all([first, second, third])
        session.commit()
        assert rows(engine) == {"0901": (day(10), day(20), day(30), 3, 600)}

        second.status = "cancelled"  # no purchase any more: the third is now the second
        session.commit()
        assert rows(engine) == {"0901": (day(10), day(30), day(30), 2, 400)}

        first.phone = "0902"  # a phone corrected: both buyers' rows move
        session.commit()
        assert rows(engine) == {"0901": (day(30), None, day(30), 1, 300), "0902": (day(10), None, day(10), 1, 100)}

        session.delete(first)
        session.commit()
        assert rows(engine) == {"0901": (day(30), None, day(30), 1, 300)}

        session.add(Order(code="DH9", phone="0901", status="delivered", total_vnd=5, created_at=day(1)))
        session.rollback()  # a write rolled back leaves the row as it was
        assert rows(engine) == {"0901": (day(30), None, day(30), 1, 300)}

    kept = rows(engine)
    with engine.begin() as connection:
        purchases.rebuild(connection)
    assert rows(engine) == kept
    engine.dispose()


def test_churn_of_a_past_period_looks_at_the_window_not_the_last_purchase(database_url):
    """A buyer who bought after the period's end was churned at its end all the same when they had
    bought nothing in the window before it; one who bought inside the window was not."""
    engine = make_database_engine(database_url)
    migrate(engine)
    now = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    period = parse_period("2026-01-01", "2026-09-30", "Asia/Ho_Chi_Minh", now)
    end = period.end  # the window is the 180 days before it
    bought = {
        "0901": [end - timedelta(days=300)],  # churned: nothing since
        "0902": [end - timedelta(days=300), end + timedelta(days=20)],  # churned at the end, back later
        "0903": [end - timedelta(days=300), end - timedelta(days=10), end + timedelta(days=20)],  # active
        "0904": [end - timedelta(days=300), end - timedelta(days=30)],  # active
        "0905": [end - timedelta(days=100)],  # too new to count
    }
    with Session(engine) as session:
        session.add_all([Order(code=f"DH{phone}{n}", phone=phone, status="delivered", total_vnd=1, created_at=at)
                         for phone, times in bought.items() for n, at in enumerate(times)])
        session.commit()
        report = retention.retention_report(session, period, now, 180)
    assert (report.churn_base, report.churned, report.churn_rate) == (4, 2, 0.5)
    engine.dispose()


@pytest.mark.slow
def test_the_rebuild_command_recounts_the_months_in_the_shops_time_zone(tmp_path):
    """Orders loaded with plain SQL get their rows from `caredesk orders rebuild-purchases`, the months
    they bought in counted in the configured zone: 23:30 UTC on 31 January is already February in Hanoi."""
    url = f"sqlite:///{tmp_path}/shop.db"
    engine = make_database_engine(url)
    migrate(engine)
    with engine.begin() as connection:
        connection.execute(Order.__table__.insert(), [
            {"code": "DH1", "phone": "0901", "status": "delivered", "items": [], "total_vnd": 1,
             "created_at": datetime(2026, 1, 10, 2, 0, tzinfo=UTC)},
            {"code": "DH2", "phone": "0901", "status": "delivered", "items": [], "total_vnd": 1,
             "created_at": datetime(2026, 1, 31, 23, 30, tzinfo=UTC)},
            {"code": "DH3", "phone": "0901", "status": "delivered", "items": [], "total_vnd": 1,
             "created_at": datetime(2026, 4, 2, 2, 0, tzinfo=UTC)},
        ])
    assert rows(engine) == {}  # around the ORM: nothing counted yet

    def rebuild(timezone: str) -> tuple[int, str]:
        result = subprocess.run([CAREDESK, "orders", "rebuild-purchases"], capture_output=True, text=True,
                                timeout=120, env={**os.environ, "CAREDESK_ENVIRONMENT": "test",
                                                  "CAREDESK_DATABASE_URL": url,
                                                  "CAREDESK_SHOP__TIMEZONE": timezone})
        assert result.returncode == 0, result.stderr
        assert f"1 buyers, months counted in {timezone}" in " ".join(result.stdout.split())
        with Session(engine) as session:
            row = session.exec(select(CustomerPurchase)).one()
        return row.months_mask, row.months_tz

    # January, February (the 31 January order, shop time) and April: months 0, 1 and 3
    assert rebuild("Asia/Ho_Chi_Minh") == (0b1011, "Asia/Ho_Chi_Minh")
    assert rebuild("UTC") == (0b1001, "UTC")  # in UTC both January orders fall in January
    engine.dispose()
