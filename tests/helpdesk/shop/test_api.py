"""The shop's order routes through the real app: the warranty a delivery starts, the order import."""

from __future__ import annotations

from sqlmodel import Session, select

from helpdesk.shop.models import Order, Warranty
from tests.helpdesk.care.conftest import API_KEY, add_rice_cooker, bot_texts, local, make_customer, make_order

KEY = {"X-Api-Key": API_KEY}


async def test_delivery_starts_the_warranty_from_the_delivery_date(care_client):
    engine = care_client.wiring.engine
    make_order(engine, serial="SN200001")
    delivered_at = local("2026-03-01 15:00")

    await care_client.post("/api/orders/DH200001/delivered", headers=KEY,
                           json={"delivered_at": "2026-03-01T15:00:00"})  # shop time without a zone

    with Session(engine) as session:
        warranty = session.exec(select(Warranty).where(Warranty.serial == "SN200001")).one()
    assert warranty.starts_at == delivered_at
    assert warranty.ends_at == delivered_at.replace(year=2027)


CSV_HEADER = "code,phone,customer_name,status,delivered_at,items,serials\n"


async def test_order_import_creates_orders_and_starts_care_for_delivered_rows(care_client):
    engine = care_client.wiring.engine
    with Session(engine) as session:
        add_rice_cooker(session)
        session.commit()
    make_customer(engine, "cli", "cli-an", phone="0901234567")
    csv_text = CSV_HEADER + (
        "DH300001,0901234567,Nguyễn Văn An,delivered,2026-03-02T09:30:00,RC-18:1,SN300001\n"
        "DH300002,+84 912 345 678,Trần Thị Bình,in_transit,,RC-18:2,\n"
    )

    response = await care_client.post("/api/orders/import", headers=KEY,
                                      files={"file": ("orders.csv", csv_text.encode(), "text/csv")})
    await care_client.settle()

    assert response.status_code == 200, response.text
    # the four after-delivery steps, the NPS survey, and the notice 30 days before SN300001's warranty ends
    assert response.json() | {"errors": []} == {"imported": True, "created": 2, "updated": 0, "delivered": 1,
                                                 "care_scheduled": 6, "errors": []}
    with Session(engine) as session:
        orders = {o.code: o for o in session.exec(select(Order)).all()}
        warranty = session.exec(select(Warranty).where(Warranty.serial == "SN300001")).one()
    assert orders["DH300002"].phone == "0912345678" and orders["DH300002"].items[0]["qty"] == 2
    assert warranty.order_id == orders["DH300001"].id
    assert len(bot_texts(engine, "cli", "cli-an")) == 1  # the thank-you


async def test_order_import_with_a_malformed_row_imports_nothing_and_names_the_line(care_client):
    csv_text = CSV_HEADER + (
        "DH300001,0901234567,An,delivered,2026-03-02T09:30:00,RC-18:1,SN300001\n"
        "DH300002,12345,Bình,in_transit,,RC-18:1,\n"
        "DH300003,0912345678,Chi,shipped,,RC-18:x,\n"
    )
    response = await care_client.post("/api/orders/import", headers=KEY,
                                      files={"file": ("orders.csv", csv_text.encode(), "text/csv")})

    assert response.status_code == 422
    body = response.json()
    assert body["imported"] is False
    assert [error["line"] for error in body["errors"]] == [3, 4]
    assert "12345" in body["errors"][0]["error"]
    with Session(care_client.wiring.engine) as session:
        assert session.exec(select(Order)).all() == []
