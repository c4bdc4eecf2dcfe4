"""The NPS report over known answers, on SQLite and PostgreSQL: the summary's four fixed figures,
the monthly trend (shop-local months), by channel and product, verbatims, the channel filter, and the
CSV export."""

from __future__ import annotations

import csv
import io

from sqlmodel import Session

from helpdesk.nps.models import NpsResponse
from helpdesk.shop.models import Order, Product
from tests.helpdesk.reports.factories import Shop, local

PERIOD = {"from": "2026-01-01", "to": "2026-03-31"}


def answers(shop: Shop) -> None:
    """Seven answers: January 9, 10, 3 (telegram); February 7, 8 (facebook) and 0 at 23:30 on 28 Feb
    shop time (17:30 UTC: February in the shop, whatever UTC says); one unanswered survey; one answer
    outside the period."""
    with Session(shop.engine) as session:
        session.add(Product(sku="RC-18", name="Nồi cơm điện 1.8L", warranty_months=12))
        session.flush()
        order = Order(code="DH900001", phone="0901000001", status="delivered", items=[{"sku": "RC-18"}])
        session.add(order)
        session.commit()
        order_id = order.id
    customer, identity = shop.customer("telegram")
    rows = [("2026-01-05 10:00", 9, "telegram", "RC-18", "Giao nhanh"),
            ("2026-01-20 10:00", 10, "telegram", "RC-18", ""),
            ("2026-01-31 23:59", 3, "telegram", None, "=Chậm quá"),
            ("2026-02-03 10:00", 7, "facebook", "RC-18", None),
            ("2026-02-10 10:00", 8, "facebook", None, "Ổn"),
            ("2026-02-28 23:30", 0, "facebook", "RC-18", "Hỏng sau 1 tuần"),
            ("2025-12-31 23:00", 0, "telegram", None, "ngoài kỳ")]
    shop._add(*[NpsResponse(customer_id=customer, identity_id=identity, channel=channel, product_sku=sku,
                            order_id=order_id if sku else None, asked_at=local(at), score=score, comment=comment,
                            at=local(at)) for at, score, channel, sku, comment in rows],
              NpsResponse(customer_id=customer, identity_id=identity, channel="telegram",
                          asked_at=local("2026-03-01 10:00")))


async def test_nps_figures_trend_breakdowns_and_verbatims(any_client, shop):
    answers(shop)
    admin = await any_client.login()
    summary = (await any_client.get("/api/reports/summary", headers=admin, params=PERIOD)).json()
    # 2 promoters, 2 passives, 2 detractors of 6: (2 − 2) / 6 = 0
    assert (summary["nps"], summary["nps_promoters"], summary["nps_passives"], summary["nps_detractors"]) == (
        0, 2, 2, 2)
    telegram = (await any_client.get("/api/reports/summary", headers=admin,
                                     params={**PERIOD, "channel": "telegram"})).json()
    assert telegram["nps"] == round(100 * (2 - 1) / 3, 1) == 33.3

    report = (await any_client.get("/api/reports/nps", headers=admin, params=PERIOD)).json()
    assert (report["nps"], report["answers"], report["surveys_sent"]) == (0, 6, 7)
    assert [(m["key"], m["answers"], m["nps"]) for m in report["trend"]] == [
        ("2026-01-01", 3, round(100 * (2 - 1) / 3, 1)), ("2026-02-01", 3, round(-100 / 3, 1)),
        ("2026-03-01", 0, None)]
    assert [(c["key"], c["nps"]) for c in report["by_channel"]] == [("facebook", round(-100 / 3, 1)),
                                                                    ("telegram", 33.3)]
    assert [(p["key"], p["label"], p["answers"], p["nps"]) for p in report["by_product"]] == [
        ("RC-18", "Nồi cơm điện 1.8L", 4, 25.0)]
    assert [(v["score"], v["comment"], v["category"]) for v in report["verbatims"]] == [
        (0, "Hỏng sau 1 tuần", "detractor"), (8, "Ổn", "passive"), (3, "=Chậm quá", "detractor"),
        (9, "Giao nhanh", "promoter")]
    assert report["verbatims"][0]["order_code"] == "DH900001"

    exported = await any_client.get("/api/reports/nps.csv", headers=admin, params=PERIOD)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [int(row["score"]) for row in rows] == [9, 10, 3, 7, 8, 0]
    assert rows[2]["comment"] == "'=Chậm quá" and rows[5]["answered_at"] == "2026-02-28T23:30:00+07:00"


async def test_an_empty_period_has_no_score_and_agents_get_no_nps(client):
    admin = await client.login()
    report = (await client.get("/api/reports/nps", headers=admin, params=PERIOD)).json()
    assert (report["nps"], report["answers"], report["verbatims"]) == (None, 0, [])
    assert [m["answers"] for m in report["trend"]] == [0, 0, 0]
    summary = (await client.get("/api/reports/summary", headers=admin, params=PERIOD)).json()
    assert summary["nps"] is None and summary["nps_promoters"] == 0
    assert (await client.get("/api/reports/nps")).status_code == 401
