"""The channel rules of a promotion, one customer at a time, on a migrated database: which channel of the
shop's order may carry it, and the reason code when none may."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine
from sqlmodel import Session

from helpdesk.campaigns import rules
from helpdesk.campaigns.models import Campaign, CampaignRecipient
from helpdesk.campaigns.rules import CampaignChannels, Refusal, Route, route_for
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.shop.models import Order

NOW = datetime(2026, 3, 16, 3, 0, tzinfo=UTC)  # 10:00 in Ho Chi Minh City, mid-month
ALL_CHATS = frozenset({"telegram", "facebook", "zalo_oa", "webchat"})
CHANNELS = CampaignChannels(order=("chat", "zns", "email"), chats=ALL_CHATS, zns_approved=frozenset({"campaign"}),
                            zalo_monthly_quota=2)


@pytest.fixture
def session(sqlite_url):
    engine = create_engine(sqlite_url)
    with Session(engine) as session:
        yield session
    engine.dispose()


def customer(session, *, chats=(), phone=None, email=None, opted_out=False) -> Customer:
    """A customer with identities on ``chats``: (channel, last wrote this long ago or None)."""
    person = Customer(name="Lan", phone=phone, email=email, care_opted_out=opted_out)
    session.add(person)
    session.flush()
    for number, (channel, ago) in enumerate(chats):
        session.add(ChannelIdentity(customer_id=person.id, channel=channel, external_id=f"{channel}-{person.id}-{number}",
                                    last_inbound_at=NOW - ago if ago is not None else None))
    session.flush()
    return person


def route(session, person, template="campaign", channels=CHANNELS, now=NOW) -> Route | Refusal:
    return route_for(session, person, template, channels, now)


def promotions_sent(session, person, count, at=NOW) -> None:
    """``count`` Zalo OA promotions that went to the customer (earlier campaigns) at ``at``."""
    for _ in range(count):
        campaign = Campaign(name="earlier", message="x", customer_ids=[person.id], status="done")
        session.add(campaign)
        session.flush()
        session.add(CampaignRecipient(campaign_id=campaign.id, customer_id=person.id, channel="zalo_oa",
                                      status="sent", sent_at=at))
    session.flush()


def test_an_opted_out_customer_is_skipped_whatever_channel_they_have(session):
    person = customer(session, chats=[("telegram", timedelta(hours=1))], opted_out=True)
    assert route(session, person) == Refusal("opted_out")


def test_telegram_carries_it_when_the_customer_has_an_identity_there(session):
    person = customer(session, chats=[("telegram", None)])
    assert route(session, person) == Route("telegram", f"telegram-{person.id}-0", route(session, person).identity_id)


def test_web_chat_carries_it_when_the_customer_has_an_identity_there(session):
    person = customer(session, chats=[("webchat", timedelta(days=40))])
    assert isinstance(route(session, person), Route) and route(session, person).channel == "webchat"


def test_a_chat_whose_connector_is_off_does_not_carry_it(session):
    person = customer(session, chats=[("telegram", None)])
    off = CampaignChannels(order=("chat",), chats=frozenset({"facebook"}))
    assert route(session, person, channels=off) == Refusal("telegram_off")


def test_messenger_inside_24_hours_of_the_last_message_carries_it(session):
    person = customer(session, chats=[("facebook", timedelta(hours=23))])
    assert route(session, person).channel == "facebook"


@pytest.mark.parametrize("ago", [timedelta(hours=25), timedelta(days=5), None])
def test_messenger_outside_24_hours_is_refused_as_promotions_may_use_no_message_tag(session, ago):
    person = customer(session, chats=[("facebook", ago)])
    assert route(session, person) == Refusal("messenger_outside_24h")


def test_a_customer_outside_messengers_window_is_reached_on_their_next_channel(session):
    person = customer(session, chats=[("facebook", timedelta(hours=1)), ("telegram", timedelta(days=3))])
    assert route(session, person).channel == "facebook"  # the chat written on last comes first
    stale = customer(session, chats=[("facebook", timedelta(days=2)), ("telegram", timedelta(days=3))])
    assert route(session, stale).channel == "telegram"


def test_zalo_oa_follower_gets_a_promotion_while_under_the_monthly_quota(session):
    person = customer(session, chats=[("zalo_oa", timedelta(days=60))])
    promotions_sent(session, person, 1)
    assert route(session, person).channel == "zalo_oa"


def test_zalo_oa_follower_whose_monthly_quota_is_used_is_refused(session):
    person = customer(session, chats=[("zalo_oa", timedelta(days=1))])
    promotions_sent(session, person, 2)
    assert route(session, person) == Refusal("zalo_promotion_quota")


def test_zalo_oa_quota_counts_from_the_first_of_the_month_in_vietnam(session):
    person = customer(session, chats=[("zalo_oa", timedelta(days=1))])
    # 29 Feb 23:30 UTC is 1 March 06:30 in Vietnam: this month; 28 Feb 16:00 UTC is 23:00 on the 28th: last month
    promotions_sent(session, person, 1, at=datetime(2026, 2, 28, 16, 0, tzinfo=UTC))
    promotions_sent(session, person, 1, at=datetime(2026, 2, 28, 17, 30, tzinfo=UTC))
    assert rules.zalo_promotions_this_month(session, person.id, NOW) == 1
    assert route(session, person).channel == "zalo_oa"


def test_zalo_oa_user_who_blocked_or_unfollowed_the_oa_is_refused(session):
    person = customer(session, chats=[("zalo_oa", timedelta(days=1))])
    identity = session.exec(rules.select(ChannelIdentity).where(ChannelIdentity.customer_id == person.id)).one()
    identity.reachable = False
    session.add(identity)
    session.flush()
    assert route(session, person) == Refusal("zalo_not_follower")


def test_zns_carries_it_to_the_phone_with_an_approved_template(session):
    person = customer(session, phone="0901234567")
    assert route(session, person) == Route("zns", "84901234567", None)


def test_zns_is_refused_without_a_template_named_by_the_campaign(session):
    person = customer(session, phone="0901234567")
    assert route(session, person, template=None) == Refusal("zns_no_template")


def test_zns_is_refused_when_the_template_is_not_approved(session):
    person = customer(session, phone="0901234567")
    assert route(session, person, template="voucher") == Refusal("zns_template_not_approved")


def test_zns_uses_the_phone_of_the_latest_order_when_the_customer_has_none(session):
    person = customer(session)
    session.add(Order(code="DH1", phone="0912345678", customer_id=person.id, status="delivered", items=[]))
    session.flush()
    assert route(session, person) == Route("zns", "84912345678", None)


def test_email_carries_it_to_a_stored_address(session):
    person = customer(session, email="Lan@Example.com")
    assert route(session, person) == Route("email", "lan@example.com", None)


def test_email_is_refused_when_the_address_bounced_for_good(session):
    person = customer(session, email="lan@example.com")
    session.add(ChannelIdentity(customer_id=person.id, channel="email", external_id="lan@example.com",
                                reachable=False, unreachable_reason="550 no such user"))
    session.flush()
    assert route(session, person) == Refusal("email_unreachable")


def test_email_that_is_not_configured_is_named_as_the_reason(session):
    person = customer(session, email="lan@example.com")
    no_email = CampaignChannels(order=("chat", "zns"), chats=ALL_CHATS, zns_approved=frozenset({"campaign"}))
    assert route(session, person, channels=no_email) == Refusal("email_off")


def test_the_shops_channel_order_decides_between_allowed_channels(session):
    person = customer(session, chats=[("telegram", timedelta(hours=1))], phone="0901234567", email="lan@example.com")
    assert route(session, person).channel == "telegram"
    email_first = CampaignChannels(order=("email", "zns", "chat"), chats=ALL_CHATS, zns_approved=frozenset({"campaign"}))
    assert route(session, person, channels=email_first).channel == "email"


def test_the_first_refusal_of_a_channel_the_customer_is_on_is_the_reason(session):
    person = customer(session, chats=[("facebook", timedelta(days=3))], phone="0901234567")
    assert route(session, person, template=None) == Refusal("messenger_outside_24h")


def test_a_customer_present_on_no_channel_is_skipped_as_such(session):
    assert route(session, customer(session)) == Refusal("no_channel")
