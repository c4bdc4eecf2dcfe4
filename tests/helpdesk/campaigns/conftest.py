"""Campaign test fixtures: an app with every channel a campaign can use pointed at the fake platforms
(Telegram, Messenger, Zalo OA and ZNS) and a real SMTP server, with the clock at the real time (the
Messenger connector checks its window against the real time) and quiet hours off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from tests.conftest import TELEGRAM_SECRET
from tests.fakes.facebook_api import FakeGraphAPI
from tests.fakes.smtp_server import SmtpServer
from tests.fakes.zns_api import FakeZns, param
from tests.helpdesk.care.conftest import FakeClock, care_settings, started  # noqa: F401  (fixture)

OA_SECRET = "oa-secret-key-for-campaign-tests"
CAMPAIGN_TEMPLATE = "401000"
PAGE_TOKEN = "EAAG-page-token"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


@pytest.fixture
def zalo():
    """Zalo's OA and ZNS APIs on one loopback server, with the campaign's template approved."""
    with FakeZns() as fake:
        fake.add_template(CAMPAIGN_TEMPLATE, [param("customer_name")])
        yield fake


@pytest.fixture
def graph():
    with FakeGraphAPI(page_access_token=PAGE_TOKEN, page_id="104857600123456") as fake:
        yield fake


@pytest.fixture
def campaign_settings(care_settings, smtp, zalo, graph, fake_telegram):
    def make(**overrides):
        values = dict(
            care={"channel_order": ["chat", "zns", "email"], "quiet_hours": ""},
            email={"smtp_url": smtp.url, "from": "shop@bepviet.vn", "public_base_url": "https://shop.bepviet.vn"},
            zalo_oa={"app_id": zalo.app_id, "oa_secret_key": OA_SECRET, "app_secret_key": zalo.app_secret_key,
                     "access_token": zalo.access_token, "refresh_token": zalo.refresh_token,
                     "api_base": zalo.base_url, "oauth_base": zalo.base_url},
            zns={"templates": {"campaign": CAMPAIGN_TEMPLATE}, "api_base": zalo.base_url, "rating_poll_interval_s": 0},
            facebook={"verify_token": "v", "app_secret": "fb-secret", "page_access_token": PAGE_TOKEN,
                      "graph_api_base": graph.base_url},
            telegram={"token": fake_telegram.token, "secret_token": TELEGRAM_SECRET,
                      "api_base": fake_telegram.base_url},
            campaigns={"check_interval_s": 3600},
        )
        values.update(overrides)
        return care_settings(**values)

    return make


@pytest.fixture
async def client(campaign_settings, clock):
    async for app in started(campaign_settings(), clock):
        yield app


def add_customer(engine, name: str, *, chats=(), phone=None, email=None, opted_out=False, now=None) -> int:
    """A customer with identities on ``chats``: (channel, external id, last wrote this long ago or None)."""
    from helpdesk.customers.models import ChannelIdentity, Customer

    with Session(engine) as session:
        customer = Customer(name=name, phone=phone, email=email, care_opted_out=opted_out)
        session.add(customer)
        session.flush()
        for channel, external_id, ago in chats:
            session.add(ChannelIdentity(customer_id=customer.id, channel=channel, external_id=external_id,
                                        last_inbound_at=now - ago if ago is not None else None))
        session.commit()
        return customer.id


def one_promotion_this_month(engine, customer_id: int, now) -> None:
    """An earlier campaign's Zalo OA promotion to the customer, this month."""
    from helpdesk.campaigns.models import Campaign, CampaignRecipient

    with Session(engine) as session:
        campaign = Campaign(name="Tết", message="x", customer_ids=[customer_id], status="done")
        session.add(campaign)
        session.flush()
        session.add(CampaignRecipient(campaign_id=campaign.id, customer_id=customer_id, channel="zalo_oa",
                                      status="sent", sent_at=now - timedelta(minutes=5)))
        session.commit()
