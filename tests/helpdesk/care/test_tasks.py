"""The periodic care task driven by a fake clock: delays, quiet hours, windows, opt-out, restarts,
and two workers racing for the same messages."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlmodel import Session, func, select

from helpdesk.care.models import CareMessage
from helpdesk.care.tasks import run_due_care_messages
from helpdesk.outbox.models import OutboxItem
from tests.fakes.facebook_api import FakeGraphAPI
from tests.helpdesk.care.conftest import (
    API_KEY,
    bot_texts,
    care_rows,
    local,
    make_customer,
    make_order,
    started,
    status_of,
)

KEY = {"X-Api-Key": API_KEY}


async def deliver(client, code: str = "DH200001", **body) -> dict:
    response = await client.post(f"/api/orders/{code}/delivered", headers=KEY, json=body or None)
    assert response.status_code == 200, response.text
    await client.settle()
    return response.json()


async def run_and_settle(client) -> int:
    sent = await run_due_care_messages(client.wiring.care)
    await client.settle()
    return sent


async def test_rating_request_is_due_after_the_delay_and_not_before(care_client, clock):
    engine = care_client.wiring.engine
    make_order(engine)
    make_customer(engine)
    await deliver(care_client)

    clock.advance(hours=23, minutes=59)
    assert await run_and_settle(care_client) == 0
    clock.advance(minutes=1)
    assert await run_and_settle(care_client) == 1

    texts = bot_texts(engine, "cli", "cli-an")
    assert len(texts) == 2 and "từ 1 (rất không hài lòng) đến 5" in texts[1]  # the cli channel has no buttons


async def test_usage_tips_on_day_three_come_from_the_product_usage_faq(care_client, clock):
    engine = care_client.wiring.engine
    make_order(engine)
    make_customer(engine, locale="en")
    await deliver(care_client)

    clock.advance(days=3)
    await run_and_settle(care_client)

    tips = bot_texts(engine, "cli", "cli-an")[-1]
    assert "rice cooker" in tips and "Rinse the rice" in tips


async def test_check_in_on_day_seven_completes_the_sequence(care_client, clock):
    engine = care_client.wiring.engine
    make_order(engine)
    make_customer(engine)
    await deliver(care_client)
    for days in (1, 2, 4):
        clock.advance(days=days)
        await run_and_settle(care_client)

    assert status_of(engine, "DH200001") == {
        **dict.fromkeys(["thank_you", "rating_request", "usage_tips", "check_in"], "sent"),
        "nps": "scheduled"}  # the NPS survey waits for day 30
    assert len(bot_texts(engine, "cli", "cli-an")) == 4


async def test_rating_due_in_quiet_hours_is_postponed_to_eight_not_dropped(care_settings, clock):
    async for client in started(care_settings(care={"rating_delay_s": 6 * 3600 + 30 * 60}), clock):
        engine = client.wiring.engine
        make_order(engine)
        make_customer(engine)
        clock.set_local("2026-03-02 16:00")
        await deliver(client)  # the rating is planned for 22:30

        rating = next(row for row in care_rows(engine, "DH200001") if row["kind"] == "rating_request")
        assert rating["due_at"] == local("2026-03-03 08:00")
        clock.set_local("2026-03-02 22:30")
        assert await run_and_settle(client) == 0
        clock.set_local("2026-03-03 07:59")
        assert await run_and_settle(client) == 0
        clock.set_local("2026-03-03 08:00")
        assert await run_and_settle(client) == 1
        assert len(bot_texts(engine, "cli", "cli-an")) == 2


async def test_empty_quiet_hours_send_at_once(care_settings, clock):
    async for client in started(care_settings(care={"rating_delay_s": 6 * 3600 + 30 * 60, "quiet_hours": ""}),
                                clock):
        engine = client.wiring.engine
        make_order(engine)
        make_customer(engine)
        clock.set_local("2026-03-02 16:00")
        await deliver(client)

        clock.set_local("2026-03-02 22:30")
        assert await run_and_settle(client) == 1


async def test_message_found_late_inside_quiet_hours_waits_for_the_morning(care_client, clock):
    engine = care_client.wiring.engine
    make_order(engine)
    make_customer(engine)
    clock.set_local("2026-03-02 20:50")
    await deliver(care_client)  # thank-you sent; the rating is due 20:50 tomorrow

    clock.set_local("2026-03-03 21:10")  # the worker was busy until after 21:00
    assert await run_and_settle(care_client) == 0
    rating = next(row for row in care_rows(engine, "DH200001") if row["kind"] == "rating_request")
    assert (rating["status"], rating["due_at"]) == ("scheduled", local("2026-03-04 08:00"))


async def test_restart_in_the_middle_sends_the_remaining_messages_once(care_settings, clock):
    settings = care_settings()
    async for client in started(settings, clock):
        engine = client.wiring.engine
        make_order(engine)
        make_customer(engine)
        await deliver(client)
        assert len(bot_texts(engine, "cli", "cli-an")) == 1

    clock.advance(hours=30)  # down while the rating fell due
    async for client in started(settings, clock):
        assert await run_and_settle(client) == 1
        assert await run_and_settle(client) == 0
        for days in (2, 4):
            clock.advance(days=days)
            assert await run_and_settle(client) == 1
        texts = bot_texts(client.wiring.engine, "cli", "cli-an")
    assert len(texts) == 4


async def test_message_missed_by_more_than_two_days_is_skipped_not_sent_stale(care_client, clock):
    engine = care_client.wiring.engine
    make_order(engine)
    make_customer(engine)
    await deliver(care_client)

    clock.advance(days=3, hours=1)  # no worker ran while the rating was due
    await run_and_settle(care_client)

    statuses = status_of(engine, "DH200001")
    assert (statuses["rating_request"], statuses["usage_tips"]) == ("skipped", "sent")


async def test_two_workers_send_each_message_once(database_url, tmp_path, clock):
    from helpdesk.channels.tasks import register_channel_jobs
    from helpdesk.jobs.runner import JobRunner
    from helpdesk.core.config import Settings
    from helpdesk.channels.ledger import make_database_engine
    from helpdesk.core.db import migrate
    from helpdesk.wiring import Wiring

    engine = make_database_engine(database_url)
    migrate(engine)
    for number in range(4):
        code = f"DH40000{number}"
        make_order(engine, code, phone=f"090000000{number}")
        make_customer(engine, "cli", f"cli-{number}-a", phone=f"090000000{number}")
        make_customer(engine, "cli", f"cli-{number}-b", phone=f"090000000{number}")
    engine.dispose()

    settings = Settings(_env_file=None, environment="test", database_url=database_url,
                        nlu={"models_dir": tmp_path / "no-models"})
    first, second = Wiring(settings), Wiring(settings)
    for wiring in (first, second):
        wiring.clock.use(clock)
        wiring.use_jobs(JobRunner(settings.worker))  # drains only; no scheduler
        register_channel_jobs(wiring.flow, wiring.worker)
    try:
        from helpdesk.care.service import CarePolicy
        from helpdesk.shop.flows import deliver_order

        with Session(first.engine) as session:
            policy = CarePolicy.from_settings(settings)
            from helpdesk.shop.models import Order

            for order in session.exec(select(Order)).all():
                deliver_order(session, order, policy=policy, now=clock.now)
            session.commit()
        clock.advance(days=1)  # thank-you and rating due for 8 identities: 16 messages

        sent = await asyncio.gather(run_due_care_messages(first.care), run_due_care_messages(second.care))
        for wiring in (first, second):
            await wiring.worker.wait_idle()

        assert sum(sent) == 16
        with Session(first.engine) as session:
            assert session.exec(select(func.count()).select_from(OutboxItem)).one() == 16
            statuses = session.exec(select(CareMessage.kind, CareMessage.status)).all()
        assert sorted(statuses).count(("rating_request", "sent")) == 8
        assert sorted(statuses).count(("thank_you", "sent")) == 8
    finally:
        for wiring in (first, second):
            wiring.engine.dispose()


async def test_opt_out_cancels_what_is_scheduled_and_schedules_nothing_new(care_client, clock):
    engine = care_client.wiring.engine
    make_order(engine)
    make_order(engine, "DH200002")
    customer_id, _ = make_customer(engine)
    await deliver(care_client)

    await care_client.wiring.customers.set_opt_out(customer_id, True)
    later = await deliver(care_client, "DH200002")
    clock.advance(days=8)
    assert await run_and_settle(care_client) == 0

    assert status_of(engine, "DH200001") == {"thank_you": "sent", "rating_request": "cancelled",
                                             "usage_tips": "cancelled", "check_in": "cancelled",
                                             "nps": "cancelled"}
    assert later["count"] == 0
    assert len(bot_texts(engine, "cli", "cli-an")) == 1


async def test_messenger_message_outside_the_24_hour_window_is_skipped_with_the_reason(care_settings, clock):
    with FakeGraphAPI(page_access_token="EAAG-page-token", page_id="104857600123456") as graph:
        settings = care_settings(facebook={"verify_token": "v", "app_secret": "fb-secret",
                                           "page_access_token": "EAAG-page-token",
                                           "graph_api_base": graph.base_url})
        async for client in started(settings, clock):
            engine = client.wiring.engine
            make_order(engine)
            make_customer(engine, "facebook", "6843215790123456",
                          last_inbound_at=clock.now - timedelta(hours=30))
            await deliver(client)

            thank_you = care_rows(engine, "DH200001")[0]
        assert graph.sent_messages() == []
    assert thank_you["status"] == "skipped"
    assert "Messenger" in thank_you["reason"] and "24 hours" in thank_you["reason"]


async def test_rating_request_is_skipped_once_the_customer_rated_on_another_channel(care_client, clock):
    engine = care_client.wiring.engine
    make_order(engine)
    customer_id, _ = make_customer(engine, "cli", "cli-an")
    await deliver(care_client)
    await care_client.wiring.customers.record_rating(customer_id, "order:DH200001", 5)

    clock.advance(days=1)
    await run_and_settle(care_client)

    rating = next(row for row in care_rows(engine, "DH200001") if row["kind"] == "rating_request")
    assert rating["status"] == "skipped" and "already rated" in rating["reason"]
