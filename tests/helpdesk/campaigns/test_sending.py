"""A campaign through the real campaign task, real client code and the fake platforms: who got what on
which channel, each skip reason, the spread at the campaign's rate, pause and resume, and a restart in the
middle of a campaign that sends nothing twice."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select

from helpdesk.campaigns import service
from helpdesk.campaigns.models import CampaignRecipient
from helpdesk.campaigns.tasks import run_due_campaign_messages
from tests.helpdesk.campaigns.conftest import CAMPAIGN_TEMPLATE, add_customer, one_promotion_this_month
from tests.helpdesk.care.conftest import started

VOUCHER = "Chào {name}, tặng bạn voucher 10% mua lại nồi cơm: BEPVIET10"


def create_and_start(engine, customer_ids, now, *, rate=600, template="campaign") -> int:
    with Session(engine) as session:
        campaign = service.create_campaign(session, name="Mua lại nồi cơm", message=VOUCHER, customer_ids=customer_ids,
                                           zns_template=template, rate_per_minute=rate, now=now,
                                           zns_templates={"campaign"})
        service.start_campaign(session, campaign.id, now)
        session.commit()
        return campaign.id


def recipients(engine, campaign_id) -> dict[int, tuple[str, str | None, str | None]]:
    """customer id -> (status, channel, reason)."""
    with Session(engine) as session:
        rows = session.exec(select(CampaignRecipient).where(CampaignRecipient.campaign_id == campaign_id)).all()
        return {row.customer_id: (row.status, row.channel, row.reason) for row in rows}


async def run(client, clock=None) -> int:
    went = await run_due_campaign_messages(client.wiring.campaigns)
    await client.settle()
    return went


async def test_a_campaign_reaches_each_customer_only_on_a_channel_whose_rules_allow_it(
        client, clock, smtp, zalo, graph, fake_telegram):
    engine, now = client.wiring.engine, clock.now
    people = {
        "telegram": add_customer(engine, "Lan", chats=[("telegram", "5550001", None)], now=now),
        "messenger_inside": add_customer(engine, "Minh", chats=[("facebook", "6843215790000001", timedelta(hours=2))],
                                         now=now),
        "messenger_outside": add_customer(engine, "Hoa", chats=[("facebook", "6843215790000002", timedelta(hours=30))],
                                          now=now),
        "zalo": add_customer(engine, "Tuấn", chats=[("zalo_oa", "2512345678901234567", timedelta(days=20))], now=now),
        "zalo_quota_used": add_customer(engine, "Hải", chats=[("zalo_oa", "2512345678901234568", timedelta(days=2))],
                                        now=now),
        "zns": add_customer(engine, "Bình", phone="0901234567"),
        "email": add_customer(engine, "Thu", email="thu@example.com"),
        "opted_out": add_customer(engine, "Nam", chats=[("telegram", "5550002", None)], opted_out=True, now=now),
    }
    one_promotion_this_month(engine, people["zalo_quota_used"], now)
    campaign_id = create_and_start(engine, list(people.values()), now)

    clock.advance(seconds=5)
    assert await run(client) == 5

    got = recipients(engine, campaign_id)
    assert {name: got[customer_id] for name, customer_id in people.items()} == {
        "telegram": ("sent", "telegram", None),
        "messenger_inside": ("sent", "facebook", None),
        "messenger_outside": ("skipped", None, "messenger_outside_24h"),
        "zalo": ("sent", "zalo_oa", None),
        "zalo_quota_used": ("skipped", None, "zalo_promotion_quota"),
        "zns": ("sent", "zns", None),
        "email": ("sent", "email", None),
        "opted_out": ("skipped", None, "opted_out"),
    }
    assert [m["text"] for m in fake_telegram.sent_messages()] == [VOUCHER.replace("{name}", "Lan")]
    assert [m["recipient"]["id"] for m in graph.sent_messages()] == ["6843215790000001"]
    assert graph.sent_messages()[0]["messaging_type"] == "RESPONSE"
    [promotion] = zalo.promotions_sent()
    assert promotion["recipient"]["user_id"] == "2512345678901234567"
    assert promotion["message"]["attachment"]["payload"]["template_type"] == "promotion"
    assert zalo.sent_messages() == []  # nothing went as a consultation message
    [zns] = zalo.zns_sent()
    assert (zns.phone, zns.template_id, zns.template_data) == ("84901234567", CAMPAIGN_TEMPLATE, {"customer_name": "Bình"})
    assert zns.tracking_id == f"campaign-{_recipient_id(engine, people['zns'])}"
    [mail] = smtp.received
    assert mail.message["To"] == "thu@example.com"
    assert "https://shop.bepviet.vn/care/email/unsubscribe/" in mail.message["List-Unsubscribe"]
    assert "Thu" in mail.message.get_body(("plain",)).get_content()

    with Session(engine) as session:
        assert service.get_campaign(session, campaign_id).status == "done"


async def test_the_zns_receipt_marks_the_recipient_delivered(client, clock, zalo):
    engine = client.wiring.engine
    customer_id = add_customer(engine, "Bình", phone="0901234567")
    campaign_id = create_and_start(engine, [customer_id], clock.now)
    await run(client)
    [sent] = zalo.zns_sent()

    from connectors.zalo_zns import ZnsReceipt

    assert await client.wiring.care.zns.take_event(ZnsReceipt(sent.msg_id, clock.now)) == "delivered"
    assert recipients(engine, campaign_id)[customer_id][0] == "delivered"


async def test_messages_are_spread_at_the_campaigns_rate_and_pause_holds_them(client, clock, fake_telegram):
    engine = client.wiring.engine
    ids = [add_customer(engine, f"Khách {n}", chats=[("telegram", f"66600{n}", None)], now=clock.now) for n in range(6)]
    campaign_id = create_and_start(engine, ids, clock.now, rate=6)  # one every 10 seconds

    assert await run(client) == 1
    clock.advance(seconds=25)
    assert await run(client) == 2
    assert len(fake_telegram.sent_messages()) == 3

    with Session(engine) as session:
        service.pause_campaign(session, campaign_id, clock.now)
        session.commit()
    clock.advance(seconds=30)
    assert await run(client) == 0
    with Session(engine) as session:
        service.resume_campaign(session, campaign_id, clock.now)
        session.commit()
    assert await run(client) == 1  # the waiting ones are spread again from now, not sent at once
    clock.advance(seconds=20)
    assert await run(client) == 2
    assert sorted(str(m["chat_id"]) for m in fake_telegram.sent_messages()) == sorted(f"66600{n}" for n in range(6))


async def test_a_restart_in_the_middle_of_a_campaign_sends_nobody_twice(campaign_settings, clock, fake_telegram, zalo):
    settings = campaign_settings()
    async for client in started(settings, clock):
        engine = client.wiring.engine
        ids = [add_customer(engine, f"Khách {n}", chats=[("telegram", f"77700{n}", None)], now=clock.now)
               for n in range(4)]
        zns_customer = add_customer(engine, "Bình", phone="0901234567")
        campaign_id = create_and_start(engine, [*ids, zns_customer], clock.now, rate=6)
        assert await run(client) == 1
        clock.advance(seconds=10)
        assert await run(client) == 1
        # the process stops between claiming the ZNS send and recording Zalo's answer
        with Session(engine) as session:
            row = session.exec(select(CampaignRecipient).where(CampaignRecipient.customer_id == zns_customer)).one()
            row.claimed_at, row.channel = clock.now, "zns"
            session.add(row)
            session.commit()

    clock.advance(minutes=20)
    async for client in started(settings, clock):
        engine = client.wiring.engine
        for _ in range(4):
            await run(client)
            clock.advance(seconds=10)
        got = recipients(engine, campaign_id)

    assert sorted(str(m["chat_id"]) for m in fake_telegram.sent_messages()) == sorted(f"77700{n}" for n in range(4))
    assert zalo.zns_sent() == []
    assert got[zns_customer][0] == "failed" and "not sent again" in got[zns_customer][2]
    assert {got[customer_id][0] for customer_id in ids} == {"sent"}


def _recipient_id(engine, customer_id: int) -> int:
    with Session(engine) as session:
        return session.exec(select(CampaignRecipient.id).where(CampaignRecipient.customer_id == customer_id,
                                                               CampaignRecipient.channel == "zns")).one()


async def test_a_bounced_campaign_mail_fails_and_the_address_is_not_used_again(client, clock, smtp):
    from connectors.email_in import Bounce

    engine = client.wiring.engine
    customer_id = add_customer(engine, "Thu", email="thu@example.com")
    first = create_and_start(engine, [customer_id], clock.now)
    await run(client)
    [mail] = smtp.received
    bounce = Bounce(original_message_id=mail.message["Message-ID"].strip("<>"), recipients=("thu@example.com",),
                    status="5.1.1", diagnostic="550 no such user", permanent=True)

    assert await client.wiring.care.email.take_bounce(bounce) == "undeliverable"
    status, channel, reason = recipients(engine, first)[customer_id]
    assert (status, channel) == ("failed", "email") and "550 no such user" in reason

    second = create_and_start(engine, [customer_id], clock.now)
    await run(client)
    assert recipients(engine, second)[customer_id] == ("skipped", None, "email_unreachable")
    assert len(smtp.received) == 1


async def test_a_zns_refusal_by_the_customer_is_taken_as_an_opt_out(client, clock, zalo):
    from helpdesk.customers.models import Customer

    engine = client.wiring.engine
    customer_id = add_customer(engine, "Bình", phone="0901234567")
    zalo.fail_next_zns(-139, message="User refused to receive ZNS messages from this OA")
    campaign_id = create_and_start(engine, [customer_id], clock.now)
    await run(client)

    assert recipients(engine, campaign_id)[customer_id] == ("skipped", "zns", "opted_out")
    with Session(engine) as session:
        assert session.get(Customer, customer_id).care_opted_out
    assert zalo.zns_sent() == []


async def test_a_chat_message_the_platform_refuses_marks_the_recipient_failed_at_once(client, clock, fake_telegram):
    engine = client.wiring.engine
    customer_id = add_customer(engine, "Lan", chats=[("telegram", "5550001", None)], now=clock.now)
    fake_telegram.fail_next("sendMessage", 403, description="Forbidden: bot was blocked by the user")
    campaign_id = create_and_start(engine, [customer_id], clock.now)
    await run(client)
    await client.settle()

    status, channel, reason = recipients(engine, campaign_id)[customer_id]
    assert (status, channel) == ("failed", "telegram") and "blocked" in reason


async def test_the_message_waits_while_an_agent_talks_with_the_customer(client, clock, fake_telegram):
    from helpdesk.conversations.models import Conversation
    from helpdesk.customers.models import ChannelIdentity

    engine = client.wiring.engine
    customer_id = add_customer(engine, "Lan", chats=[("telegram", "5550001", timedelta(minutes=5))], now=clock.now)
    with Session(engine) as session:
        identity = session.exec(select(ChannelIdentity).where(ChannelIdentity.customer_id == customer_id)).one()
        conversation = Conversation(customer_id=customer_id, identity_id=identity.id, channel="telegram",
                                    state="with_agent")
        session.add(conversation)
        session.commit()
        conversation_id = conversation.id
    campaign_id = create_and_start(engine, [customer_id], clock.now)
    assert await run(client) == 0
    assert recipients(engine, campaign_id)[customer_id] == (
        "pending", "telegram", "postponed: an agent is talking with the customer")
    assert fake_telegram.sent_messages() == []

    with Session(engine) as session:
        session.get(Conversation, conversation_id).state = "resolved"
        session.commit()
    clock.advance(minutes=31)
    assert await run(client) == 1
    assert recipients(engine, campaign_id)[customer_id] == ("sent", "telegram", None)
    assert len(fake_telegram.sent_messages()) == 1
