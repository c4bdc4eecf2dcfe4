"""Care rules without HTTP: quiet hours, scheduling late, ratings the shop asked for, the
customer directory the bot uses, handoff ETAs, reading import files."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from sqlmodel import Session, select

from helpdesk.care import service
from helpdesk.care.directory import DatabaseCustomerDirectory
from helpdesk.care.models import RatingRequest
from helpdesk.care.service import QuietHours
from helpdesk.conversations.models import Conversation
from helpdesk.ratings.models import Rating
from helpdesk.shop.models import Order
from tests.helpdesk.care.conftest import SHOP_TZ, local, make_customer, make_order, status_of


@pytest.fixture
def runtime(care_settings, clock):
    """A runtime on a migrated database, not started: no worker, no HTTP."""
    from helpdesk.runtime import Runtime

    runtime = Runtime(care_settings())
    runtime.clock = clock
    yield runtime
    runtime.engine.dispose()


def policy_of(runtime) -> service.CarePolicy:
    return service.CarePolicy.from_settings(runtime.settings)


def deliver(runtime, code: str = "DH200001", at: datetime | None = None) -> None:
    with Session(runtime.engine) as session:
        order = service.get_order(session, code)
        service.mark_order_delivered(session, order, policy=policy_of(runtime), now=runtime.clock(),
                                     delivered_at=at)
        session.commit()


def ask_for_rating(runtime, customer_id: int, subject: str, sent_at: datetime) -> None:
    from helpdesk.customers.models import Customer

    with Session(runtime.engine) as session:
        service.request_rating(session, session.get(Customer, customer_id), subject, sent_at)
        session.commit()


# -- quiet hours -------------------------------------------------------------------------------------


def test_quiet_hours_across_midnight_end_the_next_morning():
    quiet = QuietHours.parse("21:00-08:00")
    assert quiet.contains(time(22, 30)) and quiet.contains(time(3, 0)) and not quiet.contains(time(8, 0))
    evening = datetime(2026, 3, 2, 22, 30, tzinfo=SHOP_TZ)
    assert quiet.end_after(evening) == datetime(2026, 3, 3, 8, 0, tzinfo=SHOP_TZ)
    night = datetime(2026, 3, 3, 3, 0, tzinfo=SHOP_TZ)
    assert quiet.end_after(night) == datetime(2026, 3, 3, 8, 0, tzinfo=SHOP_TZ)


def test_quiet_hours_within_one_day_work_too():
    quiet = QuietHours.parse("12:00-13:30")
    assert quiet.contains(time(12, 15))
    assert not quiet.contains(time(13, 30)) and not quiet.contains(time(23, 0))
    lunch = datetime(2026, 3, 2, 12, 15, tzinfo=SHOP_TZ)
    assert quiet.end_after(lunch) == datetime(2026, 3, 2, 13, 30, tzinfo=SHOP_TZ)


def test_empty_quiet_hours_turn_them_off_and_nonsense_is_refused():
    assert QuietHours.parse("") is None and QuietHours.parse("  ") is None
    with pytest.raises(ValueError, match="21:00-08:00"):
        QuietHours.parse("late evening")


# -- scheduling late ---------------------------------------------------------------------------------


def test_a_customer_found_days_after_delivery_gets_only_the_latest_due_step(runtime, clock):
    make_order(runtime.engine)
    deliver(runtime, at=clock.now - timedelta(days=1, hours=2))  # nobody reachable yet
    make_customer(runtime.engine, phone="0901234567")
    from helpdesk.customers.models import Customer

    with Session(runtime.engine) as session:
        customer = session.exec(select(Customer)).one()
        added = service.attach_pending_care(session, customer, policy_of(runtime), clock.now)
        session.commit()

    assert added == 4
    assert status_of(runtime.engine, "DH200001") == {"thank_you": "skipped", "rating_request": "scheduled",
                                                     "usage_tips": "scheduled", "check_in": "scheduled"}


def test_order_delivered_long_ago_sends_nothing_late(runtime, clock):
    make_order(runtime.engine)
    make_customer(runtime.engine)
    deliver(runtime, at=clock.now - timedelta(days=30))

    assert set(status_of(runtime.engine, "DH200001").values()) == {"skipped"}


# -- ratings -----------------------------------------------------------------------------------------


async def test_pending_rating_subject_is_the_newest_unanswered_request_of_the_week(runtime, clock):
    customer_id, _ = make_customer(runtime.engine)
    directory = DatabaseCustomerDirectory(runtime)
    ask_for_rating(runtime, customer_id, "order:DH100001", clock.now - timedelta(days=8))
    assert await directory.pending_rating_subject(customer_id) is None  # too old to match a bare "5"

    ask_for_rating(runtime, customer_id, "order:DH200001", clock.now - timedelta(hours=2))
    ask_for_rating(runtime, customer_id, "conversation:7", clock.now - timedelta(hours=1))
    assert await directory.pending_rating_subject(customer_id) == "conversation:7"


async def test_recording_an_order_rating_stores_a_delivery_rating_and_answers_the_request(runtime, clock):
    make_order(runtime.engine, "DH200001")
    customer_id, _ = make_customer(runtime.engine)
    ask_for_rating(runtime, customer_id, "order:DH200001", clock.now)
    directory = DatabaseCustomerDirectory(runtime)

    kind = await directory.record_rating(customer_id, "order:DH200001", 4)
    await directory.record_rating(customer_id, "order:DH200001", 2)  # changed their mind
    await directory.add_rating_comment(customer_id, "order:DH200001", "hộp bị móp")

    assert kind == "delivery"
    with Session(runtime.engine) as session:
        order = session.exec(select(Order)).one()
        ratings = session.exec(select(Rating)).all()
        request = session.exec(select(RatingRequest)).one()
    assert [(r.kind, r.score, r.order_id, r.comment) for r in ratings] == [
        ("delivery", 2, order.id, "hộp bị móp")]
    assert request.answered_at == clock.now and request.rating_id == ratings[0].id
    assert await directory.pending_rating_subject(customer_id) is None


async def test_recording_a_conversation_rating_stores_csat_for_the_agent(runtime):
    from helpdesk.agents.models import Agent

    customer_id, identity_id = make_customer(runtime.engine)
    with Session(runtime.engine) as session:
        agent = session.exec(select(Agent)).first()
        conversation = Conversation(customer_id=customer_id, identity_id=identity_id, channel="cli",
                                    assignee_id=agent.id, state="resolved")
        session.add(conversation)
        session.commit()
        conversation_id, agent_id = conversation.id, agent.id

    directory = DatabaseCustomerDirectory(runtime)
    kind = await directory.record_rating(customer_id, f"conversation:{conversation_id}", 5)

    assert kind == "csat"
    with Session(runtime.engine) as session:
        rating = session.exec(select(Rating)).one()
    assert (rating.kind, rating.conversation_id, rating.agent_id, rating.score) == (
        "csat", conversation_id, agent_id, 5)


async def test_a_rating_of_someone_elses_order_is_ignored(runtime):
    make_order(runtime.engine, phone="0987654321")
    customer_id, _ = make_customer(runtime.engine, phone="0901234567")

    kind = await DatabaseCustomerDirectory(runtime).record_rating(customer_id, "order:DH200001", 1)

    assert kind == "ignored"
    with Session(runtime.engine) as session:
        assert session.exec(select(Rating)).all() == []


# -- opting out through the directory ---------------------------------------------------------------


async def test_opting_back_in_lets_future_orders_be_cared_for(runtime):
    make_order(runtime.engine, "DH200001")
    customer_id, _ = make_customer(runtime.engine)
    directory = DatabaseCustomerDirectory(runtime)

    await directory.set_opt_out(customer_id, True)
    await directory.set_opt_out(customer_id, False)
    deliver(runtime)

    assert status_of(runtime.engine, "DH200001")["thank_you"] == "scheduled"


# -- when a person answers ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def responses():
    """Every bot text, care.yml included."""
    from bot.responses import Responses
    from tests.conftest import ROOT

    return Responses.load(ROOT / "data" / "bot")


@pytest.mark.parametrize(("moment", "priority", "locale", "expected"), [
    ("2026-03-02 10:00", "urgent", "vi", "trong khoảng 15 phút"),
    ("2026-03-02 10:00", "low", "en", "within about 4 hours"),
    ("2026-03-02 20:45", "high", "en", "from 08:00 tomorrow, when we open"),
    ("2026-03-02 22:00", "normal", "vi", "từ 08:00 sáng mai, khi shop bắt đầu làm việc"),
    ("2026-03-03 06:30", "normal", "en", "from 08:00 this morning, when we open"),
])
def test_handoff_eta_follows_priority_and_business_hours(responses, moment, priority, locale, expected):
    assert service.handoff_eta(responses, priority, locale, local(moment), SHOP_TZ) == expected


async def test_directory_tells_the_bot_the_handoff_eta_by_the_runtime_clock(runtime, clock):
    clock.set_local("2026-03-02 23:00")
    eta = await DatabaseCustomerDirectory(runtime).handoff_eta("urgent", "en")
    assert eta == "from 08:00 tomorrow, when we open"


# -- reading import files ----------------------------------------------------------------------------


def test_import_reader_reports_every_bad_line_and_reads_shop_time():
    now = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    text = ("code,phone,status,delivered_at,items,serials\n"
            "dh1,0901234567,,2026-03-01 15:00,RC-18:2;BL-600:1,SN1;SN2;SN3\n"
            "DH2,0901234567,delivered,yesterday,,\n"
            "DH1,0901234567,pending,,,\n"
            "DH3,0901234567,pending,,RC-18:1,SN4;SN5\n"
            "DH4,0901234567\n")
    rows, errors = service.read_orders_csv(text.encode(), timezone=SHOP_TZ, now=now)

    assert [(error.line, error.error.split(" ")[0]) for error in errors] == [
        (3, "delivered_at"), (4, "order"), (5, "2"), (6, "expected")]
    (row,) = rows
    assert (row.code, row.status, row.delivered_at) == ("DH1", "delivered", local("2026-03-01 15:00"))
    assert row.items == [{"sku": "RC-18", "qty": 2, "serials": ["SN1", "SN2"]},
                         {"sku": "BL-600", "qty": 1, "serials": ["SN3"], "serial": "SN3"}]




def test_demo_orders_delivered_recently_get_their_care_started_once(runtime, clock):
    make_order(runtime.engine, "DH200001", status="delivered")
    make_order(runtime.engine, "DH200002", status="in_transit")
    with Session(runtime.engine) as session:
        order = service.get_order(session, "DH200001")
        order.delivered_at = clock.now - timedelta(days=3)
        session.commit()
    policy = policy_of(runtime)

    with Session(runtime.engine) as session:
        first = service.start_care_for_delivered_orders(session, policy, clock.now)
        again = service.start_care_for_delivered_orders(session, policy, clock.now)
        session.commit()
        plans = [service.has_care_plan(session, service.get_order(session, code))
                 for code in ("DH200001", "DH200002")]

    assert (first, again, plans) == (1, 0, [True, False])
