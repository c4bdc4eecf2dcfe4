"""Care rules without HTTP: quiet hours, scheduling late, opting out through the customer directory
the bot uses, handoff ETAs, starting the care of orders loaded from a file."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from sqlmodel import Session, select

from helpdesk.care import service
from helpdesk.care.service import QuietHours
from helpdesk.shop.flows import deliver_order
from helpdesk.shop.service import get_order
from tests.helpdesk.care.conftest import SHOP_TZ, local, make_customer, make_order, status_of


@pytest.fixture
def wiring(care_settings, clock):
    """A wiring on a migrated database, not started: no worker, no HTTP."""
    from helpdesk.wiring import Wiring

    wiring = Wiring(care_settings())
    wiring.clock.use(clock)
    yield wiring
    wiring.engine.dispose()


def policy_of(wiring) -> service.CarePolicy:
    return service.CarePolicy.from_settings(wiring.settings)


def deliver(wiring, code: str = "DH200001", at: datetime | None = None) -> None:
    with Session(wiring.engine) as session:
        order = get_order(session, code)
        deliver_order(session, order, policy=policy_of(wiring), now=wiring.clock.now(), delivered_at=at)
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


def test_a_customer_found_days_after_delivery_gets_only_the_latest_due_step(wiring, clock):
    make_order(wiring.engine)
    deliver(wiring, at=clock.now - timedelta(days=1, hours=2))  # nobody reachable yet
    make_customer(wiring.engine, phone="0901234567")
    from helpdesk.customers.models import Customer

    with Session(wiring.engine) as session:
        customer = session.exec(select(Customer)).one()
        added = service.attach_pending_care(session, customer, policy_of(wiring), clock.now)
        session.commit()

    assert added == 4
    assert status_of(wiring.engine, "DH200001") == {"thank_you": "skipped", "rating_request": "scheduled",
                                                     "usage_tips": "scheduled", "check_in": "scheduled"}


def test_order_delivered_long_ago_sends_nothing_late(wiring, clock):
    make_order(wiring.engine)
    make_customer(wiring.engine)
    deliver(wiring, at=clock.now - timedelta(days=30))

    assert set(status_of(wiring.engine, "DH200001").values()) == {"skipped"}


# -- opting out through the directory ---------------------------------------------------------------


async def test_opting_back_in_lets_future_orders_be_cared_for(wiring):
    make_order(wiring.engine, "DH200001")
    customer_id, _ = make_customer(wiring.engine)
    directory = wiring.customers

    await directory.set_opt_out(customer_id, True)
    await directory.set_opt_out(customer_id, False)
    deliver(wiring)

    assert status_of(wiring.engine, "DH200001")["thank_you"] == "scheduled"


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


async def test_directory_tells_the_bot_the_handoff_eta_by_the_runtime_clock(wiring, clock):
    clock.set_local("2026-03-02 23:00")
    eta = await wiring.customers.handoff_eta("urgent", "en")
    assert eta == "from 08:00 tomorrow, when we open"


def test_demo_orders_delivered_recently_get_their_care_started_once(wiring, clock):
    make_order(wiring.engine, "DH200001", status="delivered")
    make_order(wiring.engine, "DH200002", status="in_transit")
    with Session(wiring.engine) as session:
        order = get_order(session, "DH200001")
        order.delivered_at = clock.now - timedelta(days=3)
        session.commit()
    policy = policy_of(wiring)

    with Session(wiring.engine) as session:
        first = service.start_care_for_delivered_orders(session, policy, clock.now)
        again = service.start_care_for_delivered_orders(session, policy, clock.now)
        session.commit()
        plans = [service.has_care_plan(session, get_order(session, code))
                 for code in ("DH200001", "DH200002")]

    assert (first, again, plans) == (1, 0, [True, False])
