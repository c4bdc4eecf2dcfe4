"""The admins' campaign API: drafts with a list of customer ids, start, pause, resume and cancel with a
409 from the wrong state, 422 with the reason for bad input, counts by status and reason, the paged
recipients, and the report of replies (7 days) and orders (30 days) that followed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from helpdesk.conversations.models import Conversation, Message
from helpdesk.customers.models import ChannelIdentity
from helpdesk.shop.models import Order
from tests.helpdesk.campaigns.conftest import add_customer
from tests.helpdesk.campaigns.test_sending import run
from tests.helpdesk.care.conftest import started

VOUCHER = {"name": "Mua lại nồi cơm", "message": "Chào {name}, voucher 10%: BEPVIET10", "rate_per_minute": 600}


async def test_only_an_admin_may_use_campaigns(client):
    assert (await client.get("/api/campaigns")).status_code == 401
    assert (await client.post("/api/campaigns", json={**VOUCHER, "customer_ids": [1]})).status_code == 401


async def test_bad_drafts_are_refused_with_the_reason_and_nothing_is_stored(client, clock):
    admin = await client.login()
    known = add_customer(client.wiring.engine, "Lan", chats=[("telegram", "5550001", None)], now=clock.now)
    cases = [
        ({**VOUCHER, "customer_ids": []}, "audience is empty"),
        ({**VOUCHER, "customer_ids": [known, 99999]}, "unknown customer id(s): 99999"),
        ({**VOUCHER, "customer_ids": [known], "zns_template": "voucher"}, "unknown ZNS template 'voucher'"),
        ({**VOUCHER, "message": "   ", "customer_ids": [known]}, "needs a message"),
    ]
    for body, reason in cases:
        answer = await client.post("/api/campaigns", json=body, headers=admin)
        assert answer.status_code == 422, answer.text
        assert reason in answer.text
    assert (await client.get("/api/campaigns", headers=admin)).json()["count"] == 0


async def test_a_campaign_goes_from_draft_to_done_and_the_wrong_steps_answer_409(client, clock, fake_telegram):
    admin = await client.login()
    engine = client.wiring.engine
    reachable = add_customer(engine, "Lan", chats=[("telegram", "5550001", None)], now=clock.now)
    stale = add_customer(engine, "Hoa", chats=[("facebook", "6843215790000002", timedelta(days=3))], now=clock.now)
    created = await client.post("/api/campaigns", json={**VOUCHER, "customer_ids": [reachable, stale, reachable],
                                                        "zns_template": "campaign"}, headers=admin)
    assert created.status_code == 201, created.text
    campaign = created.json()
    assert (campaign["status"], campaign["audience"], campaign["zns_template"]) == ("draft", 2, "campaign")
    cid = campaign["id"]
    assert (await client.post(f"/api/campaigns/{cid}/pause", headers=admin)).status_code == 409

    started = await client.post(f"/api/campaigns/{cid}/start", headers=admin)
    assert started.status_code == 200 and started.json()["counts"]["by_status"]["pending"] == 2
    again = await client.post(f"/api/campaigns/{cid}/start", headers=admin)
    assert again.status_code == 409 and "only a draft can be started" in again.text
    clock.advance(seconds=5)
    await run(client)

    detail = (await client.get(f"/api/campaigns/{cid}", headers=admin)).json()
    assert detail["status"] == "done"
    assert detail["counts"]["total"] == 2
    assert detail["counts"]["by_status"] == {"pending": 0, "sent": 1, "delivered": 0, "read": 0, "failed": 0,
                                             "skipped": 1}
    assert detail["counts"]["by_reason"] == {"messenger_outside_24h": 1}
    assert detail["counts"]["by_channel"] == {"telegram": 1}
    for action in ("start", "cancel", "resume"):
        assert (await client.post(f"/api/campaigns/{cid}/{action}", headers=admin)).status_code == 409
    listed = (await client.get("/api/campaigns", headers=admin)).json()
    assert listed["count"] == 1 and listed["data"][0]["counts"]["by_status"]["sent"] == 1

    page = (await client.get(f"/api/campaigns/{cid}/recipients?limit=1", headers=admin)).json()
    assert page["count"] == 2 and [row["customer_id"] for row in page["data"]] == [reachable]
    skipped = (await client.get(f"/api/campaigns/{cid}/recipients?status=skipped", headers=admin)).json()
    assert [(row["customer_id"], row["reason"]) for row in skipped["data"]] == [(stale, "messenger_outside_24h")]
    assert (await client.get(f"/api/campaigns/{cid}/recipients?status=nonsense", headers=admin)).status_code == 400
    assert (await client.get("/api/campaigns/4242", headers=admin)).status_code == 404


async def test_cancelling_skips_the_recipients_still_waiting(client, clock):
    admin = await client.login()
    ids = [add_customer(client.wiring.engine, f"K{n}", chats=[("telegram", f"88800{n}", None)], now=clock.now)
           for n in range(3)]
    cid = (await client.post("/api/campaigns", json={**VOUCHER, "customer_ids": ids, "rate_per_minute": 1},
                             headers=admin)).json()["id"]
    await client.post(f"/api/campaigns/{cid}/start", headers=admin)
    await run(client)  # the first one's turn only
    cancelled = (await client.post(f"/api/campaigns/{cid}/cancel", headers=admin)).json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["counts"]["by_status"]["sent"] == 1 and cancelled["counts"]["by_status"]["skipped"] == 2
    assert cancelled["counts"]["by_reason"] == {"campaign_cancelled": 2}


async def test_the_report_counts_replies_within_7_days_and_orders_within_30_days(client, clock):
    await _report_counts_replies_and_orders(client, clock)


@pytest.mark.slow
async def test_the_report_and_the_sending_work_on_postgresql(campaign_settings, clock, postgres_url):
    async for client in started(campaign_settings(database_url=postgres_url), clock):
        await _report_counts_replies_and_orders(client, clock)


async def _report_counts_replies_and_orders(client, clock) -> None:
    admin = await client.login()
    engine = client.wiring.engine
    ids = [add_customer(engine, name, chats=[("telegram", f"99900{n}", None)], now=clock.now)
           for n, name in enumerate(["Lan", "Minh", "Hoa", "Tuấn"])]
    cid = (await client.post("/api/campaigns", json={**VOUCHER, "customer_ids": ids}, headers=admin)).json()["id"]
    await client.post(f"/api/campaigns/{cid}/start", headers=admin)
    clock.advance(seconds=5)
    await run(client)
    sent_at = clock.now
    with Session(engine) as session:
        def reply(customer_id, after):
            identity = session.exec(select(ChannelIdentity).where(ChannelIdentity.customer_id == customer_id)).one()
            conversation = session.exec(select(Conversation).where(Conversation.identity_id == identity.id)).first()
            session.add(Message(conversation_id=conversation.id, direction="in", author="customer", text="còn không?",
                                channel="telegram",
                                created_at=sent_at + after))

        reply(ids[0], timedelta(days=2))    # a reply
        reply(ids[1], timedelta(days=9))    # too late to count
        session.add(Order(code="DH9001", phone="0901000001", customer_id=ids[2], status="pending", items=[],
                          created_at=sent_at + timedelta(days=10)))   # an order that followed
        session.add(Order(code="DH9002", phone="0901000002", customer_id=ids[3], status="pending", items=[],
                          created_at=sent_at + timedelta(days=45)))   # too late to count
        session.add(Order(code="DH9003", phone="0901000003", customer_id=ids[0], status="cancelled", items=[],
                          created_at=sent_at + timedelta(days=3)))    # cancelled: not an order that followed
        session.commit()

    report = (await client.get(f"/api/campaigns/{cid}/report", headers=admin)).json()
    assert {key: report[key] for key in ("sent", "replied", "ordered", "reply_rate", "order_rate")} == {
        "sent": 4, "replied": 1, "ordered": 1, "reply_rate": 0.25, "order_rate": 0.25}
    assert report["by_channel"] == {"telegram": {"sent": 4, "replied": 1, "ordered": 1}}
    rows = {row["customer_id"]: row for row in
            (await client.get(f"/api/campaigns/{cid}/recipients", headers=admin)).json()["data"]}
    assert rows[ids[0]]["replied_at"] is not None and rows[ids[1]]["replied_at"] is None
    assert rows[ids[2]]["ordered_at"] is not None and rows[ids[3]]["ordered_at"] is None
    detail = (await client.get(f"/api/campaigns/{cid}", headers=admin)).json()
    assert detail["report"]["replied"] == 1


@pytest.mark.slow
async def test_a_large_audience_is_checked_in_slices_not_refused_by_the_database(campaign_settings, clock,
                                                                                 postgres_url):
    async for client in started(campaign_settings(database_url=postgres_url), clock):
        admin = await client.login()
        known = add_customer(client.wiring.engine, "Lan", chats=[("telegram", "5550001", None)], now=clock.now)
        # more ids than PostgreSQL binds in one statement (65,535)
        audience = [known, *range(1_000_000, 1_070_000)]
        answer = await client.post("/api/campaigns", json={**VOUCHER, "customer_ids": audience}, headers=admin)
        assert answer.status_code == 422, answer.text
        assert "unknown customer id(s): 1000000, 1000001" in answer.text and "and 69990 more" in answer.text


async def test_the_campaign_message_shows_on_the_customers_timeline(client, clock):
    admin = await client.login()
    customer_id = add_customer(client.wiring.engine, "Lan", chats=[("telegram", "5550001", None)], now=clock.now)
    skipped = add_customer(client.wiring.engine, "Hoa", opted_out=True)
    cid = (await client.post("/api/campaigns", json={**VOUCHER, "customer_ids": [customer_id, skipped]},
                             headers=admin)).json()["id"]
    await client.post(f"/api/campaigns/{cid}/start", headers=admin)
    clock.advance(seconds=5)
    await run(client)

    events = (await client.get(f"/api/customers/{customer_id}/timeline", headers=admin)).json()["data"]
    [event] = [e for e in events if e["kind"] == "campaign_message"]
    assert event["channel"] == "telegram"
    assert event["details"]["campaign"] == "Mua lại nồi cơm" and event["details"]["status"] == "sent"
    others = (await client.get(f"/api/customers/{skipped}/timeline", headers=admin)).json()["data"]
    assert [e for e in others if e["kind"] == "campaign_message"] == []  # it never reached them


async def test_a_campaign_takes_its_audience_from_a_saved_segment(client, clock):
    admin = await client.login()
    engine = client.wiring.engine
    on_telegram = [add_customer(engine, name, chats=[("telegram", f"555000{n}", None)], now=clock.now)
                   for n, name in enumerate(("Lan", "Minh"))]
    add_customer(engine, "Hoa", chats=[("facebook", "6843215790000009", None)], now=clock.now)
    segment = await client.post("/api/segments", headers=admin, json={
        "name": "Khách Telegram", "definition": [{"kind": "channel", "channel": "telegram"}]})
    assert segment.status_code == 201, segment.text
    segment_id = segment.json()["id"]

    created = await client.post("/api/campaigns", json={**VOUCHER, "segment_id": segment_id}, headers=admin)
    assert created.status_code == 201, created.text
    assert (created.json()["audience"], created.json()["segment_id"]) == (2, segment_id)
    started = await client.post(f"/api/campaigns/{created.json()['id']}/start", headers=admin)
    assert started.status_code == 200, started.text
    recipients = (await client.get(f"/api/campaigns/{created.json()['id']}/recipients", headers=admin)).json()
    assert sorted(row["customer_id"] for row in recipients["data"]) == sorted(on_telegram)

    nobody = await client.post("/api/segments", headers=admin, json={
        "name": "Khách Zalo", "definition": [{"kind": "channel", "channel": "zalo"}]})
    for body, reason in [
        ({**VOUCHER, "segment_id": 9999}, "unknown segment 9999"),
        ({**VOUCHER, "segment_id": nobody.json()["id"]}, "matches no customer"),
        ({**VOUCHER, "segment_id": segment_id, "customer_ids": on_telegram}, "one of the two"),
        (VOUCHER, "one of the two"),
    ]:
        answer = await client.post("/api/campaigns", json=body, headers=admin)
        assert answer.status_code == 422, answer.text
        assert reason in answer.text
