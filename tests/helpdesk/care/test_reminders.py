"""Reminders from product data, driven by a fake clock through the real care task: maintenance every N
months from the product's care_schedule, a warranty-expiry notice 30 days before the end, the same
quiet hours and opt-out as the other care steps, and each reminder measured in the customer's timeline."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from helpdesk.care import service
from helpdesk.care.models import CareMessage
from helpdesk.conversations.models import Conversation, Message
from helpdesk.customers.models import Customer
from helpdesk.shop.models import Product
from helpdesk.shop.service import add_months, care_schedule_of, load_shop_file
from tests.helpdesk.care.conftest import bot_texts, care_rows, local, make_customer, make_order
from tests.helpdesk.care.test_tasks import deliver, run_and_settle

CLEAN_VALVE = {"every_months": 3, "text_vi": "Vệ sinh van thoát hơi nồi cơm nhé.",
               "text_en": "Clean the rice cooker's steam valve."}


def give_schedule(engine, *steps: dict) -> None:
    """The rice cooker's care schedule in the shop data."""
    with Session(engine) as session:
        product = session.exec(select(Product).where(Product.sku == "RC-18")).one()
        product.care_schedule = list(steps)
        session.add(product)
        session.commit()


def reminders(engine, code: str = "DH200001") -> list[dict]:
    return [row for row in care_rows(engine, code) if ":" in row["kind"]]


async def test_maintenance_reminders_are_planned_every_n_months_and_sent_on_time(care_client, clock):
    engine = care_client.wiring.engine
    make_order(engine)
    give_schedule(engine, CLEAN_VALVE)
    make_customer(engine)
    delivered = clock.now
    await deliver(care_client)

    planned = reminders(engine)
    assert [row["kind"] for row in planned] == [f"mnt:0:0:{n}" for n in range(1, 9)]  # 24 months, every 3
    assert [row["due_at"] for row in planned[:2]] == [add_months(delivered, 3), add_months(delivered, 6)]

    clock.now = add_months(delivered, 3) - timedelta(minutes=1)
    before = len(bot_texts(engine, "cli", "cli-an"))
    await run_and_settle(care_client)
    assert len(bot_texts(engine, "cli", "cli-an")) == before  # not a minute early
    clock.advance(minutes=1)
    await run_and_settle(care_client)
    text = bot_texts(engine, "cli", "cli-an")[-1]
    assert "Vệ sinh van thoát hơi nồi cơm nhé." in text and "DH200001" in text
    assert reminders(engine)[0]["status"] == "sent" and reminders(engine)[1]["status"] == "scheduled"


async def test_a_reminder_planned_in_quiet_hours_waits_for_the_morning(care_client, clock):
    engine = care_client.wiring.engine
    make_order(engine)
    give_schedule(engine, CLEAN_VALVE)
    make_customer(engine, locale="en")
    await deliver(care_client, delivered_at=local("2026-03-01 22:30").isoformat())

    first = reminders(engine)[0]
    assert first["due_at"] == local("2026-06-02 08:00")  # planned 1 June 22:30, quiet until 08:00
    clock.now = local("2026-06-01 23:00")
    await run_and_settle(care_client)
    assert reminders(engine)[0]["status"] == "scheduled"
    clock.now = local("2026-06-02 08:00")
    await run_and_settle(care_client)
    assert reminders(engine)[0]["status"] == "sent"
    assert "Clean the rice cooker's steam valve." in bot_texts(engine, "cli", "cli-an")[-1]  # in English


async def test_opting_out_cancels_the_reminders_and_none_is_sent(care_client, clock):
    engine = care_client.wiring.engine
    make_order(engine)
    give_schedule(engine, CLEAN_VALVE)
    customer_id, _ = make_customer(engine)
    delivered = clock.now
    await deliver(care_client)
    with Session(engine) as session:
        service.set_care_opt_out(session, session.get(Customer, customer_id), True, clock.now)
        session.commit()
    assert {row["status"] for row in reminders(engine)} == {"cancelled"}
    clock.now = add_months(delivered, 3)
    sent_before = len(bot_texts(engine, "cli", "cli-an"))
    await run_and_settle(care_client)
    assert len(bot_texts(engine, "cli", "cli-an")) == sent_before


async def test_a_step_removed_from_the_shop_data_is_cancelled_not_sent(care_client, clock):
    engine = care_client.wiring.engine
    make_order(engine)
    give_schedule(engine, CLEAN_VALVE)
    make_customer(engine)
    delivered = clock.now
    await deliver(care_client)
    give_schedule(engine)  # the shop dropped the schedule
    clock.now = add_months(delivered, 3)
    await run_and_settle(care_client)
    first = reminders(engine)[0]
    assert (first["status"], first["reason"]) == ("cancelled", "the product's care schedule no longer has this reminder")


async def test_the_warranty_expiry_notice_goes_30_days_before_the_end(care_client, clock):
    engine = care_client.wiring.engine
    make_order(engine, serial="SN-RC-0001")
    make_customer(engine)
    delivered = clock.now
    await deliver(care_client)

    [notice] = reminders(engine)  # no care schedule: only the warranty's notice
    ends = add_months(delivered, 12)
    assert notice["kind"].startswith("wexp:") and notice["due_at"] == ends - timedelta(days=30)
    clock.now = ends - timedelta(days=30)
    await run_and_settle(care_client)
    text = bot_texts(engine, "cli", "cli-an")[-1]
    assert "SN-RC-0001" in text and "02/03/2027" in text and "bảo hành" in text
    assert reminders(engine)[0]["status"] == "sent"


async def test_each_reminder_is_measured_in_the_timeline(care_client, clock):
    engine = care_client.wiring.engine
    make_order(engine)
    give_schedule(engine, CLEAN_VALVE)
    customer_id, identity_id = make_customer(engine)
    delivered = clock.now
    await deliver(care_client)
    clock.now = add_months(delivered, 3)
    await run_and_settle(care_client)
    clock.now = add_months(delivered, 6)
    await run_and_settle(care_client)
    with Session(engine) as session:
        # the customer answered the first reminder an hour after it went, not the second
        conversation = session.exec(select(Conversation).where(Conversation.identity_id == identity_id)).first()
        first = session.exec(select(CareMessage).where(CareMessage.kind == "mnt:0:0:1")).one()
        session.add(Message(conversation_id=conversation.id, direction="in", author="customer", channel="cli",
                            text="đã vệ sinh rồi shop ơi", created_at=first.sent_at + timedelta(hours=1)))
        session.commit()
    headers = await care_client.login()
    body = (await care_client.get(f"/api/customers/{customer_id}/timeline", params={"limit": 200},
                                  headers=headers)).json()
    measured = {e["details"]["step"]: e["details"] for e in body["data"]
                if e["kind"] == "care_message" and e["details"]["reminder"] == "maintenance"}
    assert (measured["mnt:0:0:1"]["status"], measured["mnt:0:0:1"]["delivery_status"],
            measured["mnt:0:0:1"]["replied"]) == ("sent", "sent", True)
    assert (measured["mnt:0:0:2"]["status"], measured["mnt:0:0:2"]["replied"]) == ("sent", False)
    assert measured["mnt:0:0:3"]["status"] == "scheduled"
    assert measured["mnt:0:0:1"]["read"] is False  # the cli channel reports no reads

    summary = await care_client.get("/api/care/reminders/summary", headers=headers, params={
        "from": delivered.isoformat(), "to": add_months(delivered, 7).isoformat()})
    assert summary.status_code == 200, summary.text
    assert summary.json()["data"]["maintenance"] == {"scheduled": 0, "sent": 2, "read": 0, "replied": 1,
                                                     "skipped": 0, "cancelled": 0, "reply_rate": 0.5}
    later = await care_client.get("/api/care/reminders/summary", headers=headers, params={
        "from": add_months(delivered, 7).isoformat(), "to": add_months(delivered, 25).isoformat()})
    assert later.json()["data"]["maintenance"]["scheduled"] == 6
    for bad in ({"from": "yesterday"}, {"from": "2026-05-01", "to": "2026-04-01"}):
        refused = await care_client.get("/api/care/reminders/summary", headers=headers, params=bad)
        assert refused.status_code == 400 and refused.json()["detail"]


def test_the_demo_shop_gives_products_a_care_schedule(session_engine):
    from pathlib import Path

    with Session(session_engine) as session:
        load_shop_file(session, Path(__file__).parents[3] / "data" / "demo" / "shop.yml")
        rice_cooker = session.exec(select(Product).where(Product.sku == "RC-18")).one()
    assert rice_cooker.care_schedule[0]["every_months"] == 3
    assert rice_cooker.care_schedule[0]["text_vi"] and rice_cooker.care_schedule[0]["text_en"]


@pytest.mark.parametrize(("steps", "message"), [
    ("every month", "care_schedule must be a list of steps"),
    ([{"every_months": 0, "text_vi": "x"}], "every_months must be a whole number from 1 to 120, got 0"),
    ([{"every_months": "3", "text_vi": "x"}], "every_months must be a whole number from 1 to 120, got '3'"),
    ([{"every_months": 3}], "text_vi (what the reminder says) is missing"),
])
def test_a_bad_care_schedule_is_refused_with_its_product_and_step(steps, message):
    with pytest.raises(ValueError) as refused:
        care_schedule_of({"sku": "RC-18", "care_schedule": steps})
    assert "product RC-18" in str(refused.value) and message in str(refused.value)


def test_english_text_falls_back_to_vietnamese():
    assert care_schedule_of({"sku": "X", "care_schedule": [{"every_months": 6, "text_vi": "Tẩy cặn"}]}) == [
        {"every_months": 6, "text_vi": "Tẩy cặn", "text_en": "Tẩy cặn"}]


@pytest.fixture
def session_engine(sqlite_url):
    from helpdesk.channels.ledger import make_database_engine

    engine = make_database_engine(sqlite_url)
    yield engine
    engine.dispose()


async def test_a_customer_no_chat_reaches_gets_the_warranty_notice_by_zns_through_its_mapped_template(
        care_settings, clock):
    from tests.fakes.zns_api import FakeZns, param
    from tests.helpdesk.care.conftest import started
    from tests.helpdesk.care.test_zns import zns_settings

    with FakeZns() as zns:
        for template_id in ("301245", "301246", "301247"):
            zns.add_template(template_id, [param("customer_name"), param("order_code")])
        zns.add_template("301249", [param("customer_name"), param("product_name", max_length=100)])
        settings = zns_settings(care_settings, zns)
        settings.zns.templates["warranty_expiry"] = "301249"
        async for client in started(settings, clock):
            engine = client.wiring.engine
            make_order(engine, serial="SN-ZNS-1")
            delivered = clock.now
            await deliver(client)
            clock.now = add_months(delivered, 12) - timedelta(days=30)
            await run_and_settle(client)
            last = zns.zns_sent()[-1]
            assert last.template_id == "301249"
            assert last.template_data == {"customer_name": "Nguyễn Văn An", "product_name": "Nồi cơm điện Bếp Việt 1.8L"}
            [notice] = reminders(engine)
            assert (notice["channel"], notice["status"]) == ("zns", "sent")
