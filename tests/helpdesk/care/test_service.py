"""Care rules without HTTP: quiet hours, scheduling late, opting out through the customer directory
the bot uses, handoff ETAs, starting the care of orders loaded from a file."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta

import pytest
from sqlmodel import Session, select

from helpdesk.care import service
from helpdesk.shop.flows import deliver_order
from helpdesk.shop.service import get_order
from helpdesk.sla.clock import DEFAULT_SCHEDULE, BusinessClock, BusinessSchedule, DailyWindow
from helpdesk.sla.service import DEFAULT_POLICIES
from tests.helpdesk.care.conftest import SHOP_TZ, care_rows, local, make_customer, make_order, status_of


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


def quiet_hours(value: str) -> DailyWindow | None:
    """Care's quiet hours as the settings give them, read by the business clock in shop time."""
    return DailyWindow.parse(value, SHOP_TZ)


def test_quiet_hours_across_midnight_end_the_next_morning():
    quiet = quiet_hours("21:00-08:00")
    assert quiet.contains_time(time(22, 30)) and quiet.contains_time(time(3, 0))
    assert not quiet.contains_time(time(8, 0))
    evening = datetime(2026, 3, 2, 22, 30, tzinfo=SHOP_TZ)
    assert quiet.end_after_local(evening) == datetime(2026, 3, 3, 8, 0, tzinfo=SHOP_TZ)
    night = datetime(2026, 3, 3, 3, 0, tzinfo=SHOP_TZ)
    assert quiet.end_after_local(night) == datetime(2026, 3, 3, 8, 0, tzinfo=SHOP_TZ)


def test_quiet_hours_within_one_day_work_too():
    quiet = quiet_hours("12:00-13:30")
    assert quiet.contains_time(time(12, 15))
    assert not quiet.contains_time(time(13, 30)) and not quiet.contains_time(time(23, 0))
    lunch = datetime(2026, 3, 2, 12, 15, tzinfo=SHOP_TZ)
    assert quiet.end_after_local(lunch) == datetime(2026, 3, 2, 13, 30, tzinfo=SHOP_TZ)


def test_empty_quiet_hours_turn_them_off_and_nonsense_is_refused():
    assert quiet_hours("") is None and quiet_hours("  ") is None
    with pytest.raises(ValueError, match="21:00-08:00"):
        quiet_hours("late evening")


def test_the_care_policy_reads_its_quiet_hours_with_the_business_clock(wiring):
    policy = policy_of(wiring)
    assert policy.quiet_hours == DailyWindow(time(21, 0), time(8, 0), SHOP_TZ)
    assert policy.is_quiet(local("2026-03-02 21:30")) and not policy.is_quiet(local("2026-03-02 20:30"))
    assert policy.first_allowed(local("2026-03-02 21:30")) == local("2026-03-03 08:00")


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

    assert added == 5
    assert status_of(wiring.engine, "DH200001") == {"thank_you": "skipped", "rating_request": "scheduled",
                                                     "usage_tips": "scheduled", "check_in": "scheduled",
                                                     "nps": "scheduled"}


def test_order_delivered_long_ago_sends_nothing_late(wiring, clock):
    make_order(wiring.engine)
    make_customer(wiring.engine)
    deliver(wiring, at=clock.now - timedelta(days=40))  # past the NPS survey of day 30 too

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


#: the default week (Monday to Saturday, 08:00–21:00) as the business clock reads it
DEFAULT_HOURS = BusinessClock(DEFAULT_SCHEDULE, SHOP_TZ)


@pytest.mark.parametrize(("moment", "priority", "locale", "expected"), [
    ("2026-03-02 10:00", "urgent", "vi", "trong khoảng 15 phút"),
    ("2026-03-02 10:00", "low", "en", "within about 4 hours"),
    ("2026-03-02 20:45", "high", "en", "from 08:00 tomorrow, when we open"),
    ("2026-03-02 22:00", "normal", "vi", "từ 08:00 sáng mai, khi shop bắt đầu làm việc"),
    ("2026-03-03 06:30", "normal", "en", "from 08:00 this morning, when we open"),
])
def test_handoff_eta_follows_priority_and_business_hours(responses, moment, priority, locale, expected):
    minutes = DEFAULT_POLICIES[priority].first_response_minutes
    assert service.handoff_eta(responses, minutes, locale, local(moment), DEFAULT_HOURS) == expected


@pytest.mark.parametrize(("moment", "minutes", "expected"), [
    ("2026-03-07 20:00", 30, "within about 30 minutes"),  # Saturday, open
    ("2026-03-07 22:00", 30, "from 08:00 on Monday (09/03), when we open"),  # Sunday is closed
    ("2026-03-02 11:45", 30, "from 13:30 today, when we are back"),  # the answer would fall in lunch
    ("2026-03-02 12:30", 30, "from 13:30 today, when we are back"),
    ("2026-03-02 18:00", 30, "from 09:00 on Wednesday (04/03), when we open"),  # Tuesday is a holiday
])
def test_handoff_eta_follows_the_configured_week_and_holidays(responses, moment, minutes, expected):
    split = [("08:00", "12:00"), ("13:30", "17:30")]
    week = BusinessSchedule.from_days({"mon": split, "tue": split, "wed": [("09:00", "17:30")], "thu": split,
                                       "fri": split, "sat": [("08:00", "21:00")]}, holidays={date(2026, 3, 3)})
    clock = BusinessClock(week, SHOP_TZ)
    assert service.handoff_eta(responses, minutes, "en", local(moment), clock) == expected


async def test_directory_tells_the_bot_the_handoff_eta_by_the_wiring_clock(wiring, clock):
    clock.set_local("2026-03-02 23:00")
    eta = await wiring.customers.handoff_eta("urgent", "en")
    assert eta == "from 08:00 tomorrow, when we open"


async def test_directory_tells_the_eta_from_the_configured_hours_and_policy(wiring, clock):
    from helpdesk.sla import service as sla
    from helpdesk.sla.service import PolicyTargets

    with Session(wiring.engine) as session:
        sla.replace_business_hours(session, {day: [("09:00", "17:00")] for day in ("mon", "tue", "wed", "thu", "fri")},
                                   [], actor_id=None)
        sla.upsert_policy(session, "urgent", PolicyTargets(45, 45, 240), actor_id=None)
        session.commit()
    directory = wiring.customers
    clock.set_local("2026-03-02 10:00")
    assert await directory.handoff_eta("urgent", "en") == "within about 45 minutes"
    clock.set_local("2026-03-02 16:30")
    assert await directory.handoff_eta("urgent", "en") == "from 09:00 tomorrow, when we open"
    clock.set_local("2026-03-02 08:00")
    assert await directory.handoff_eta("urgent", "en") == "from 09:00 this morning, when we open"


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


# -- a platform's night ---------------------------------------------------------------------------------


def test_zalo_care_waits_out_zalos_night_even_without_quiet_hours(wiring, clock):
    """Zalo's connector declares its night (22:00-06:00 in Vietnam) as data; care keeps out of it."""
    from connectors.zalo_oa import ZaloOAConnector
    from helpdesk.care.models import CareMessage

    assert ZaloOAConnector.night_window.timezone == "Asia/Ho_Chi_Minh"
    policy = replace(policy_of(wiring), quiet_hours=None)
    make_order(wiring.engine)
    make_customer(wiring.engine, "zalo_oa", "zalo-user-1", last_inbound_at=local("2026-03-02 20:00"))
    clock.set_local("2026-03-02 23:00")
    with Session(wiring.engine) as session:
        deliver_order(session, get_order(session, "DH200001"), policy=policy, now=clock.now)
        session.commit()
        care_id = session.exec(select(CareMessage.id).where(CareMessage.kind == "thank_you")).one()
        channels = service.ChannelAbilities(configured=frozenset({"zalo_oa"}), with_buttons=frozenset())
        queued = service.send_care_message(session, care_id, now=clock.now, policy=policy, composer=None,
                                           channels=channels)
        session.commit()

    assert queued is None
    thank_you = next(row for row in care_rows(wiring.engine, "DH200001") if row["kind"] == "thank_you")
    assert (thank_you["status"], thank_you["due_at"]) == ("scheduled", local("2026-03-03 06:00"))
    assert thank_you["reason"] == "postponed: Zalo OA refuses messages at night"
