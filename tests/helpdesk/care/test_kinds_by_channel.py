"""Every care kind on every care channel, through the real care task: the after-delivery steps, the NPS
survey and the reminders from product data, each due on a linked chat, on ZNS (the fake ZNS server) and by
email (a real SMTP server on loopback, aiosmtpd). What each channel sends, or the clear reason it falls back
to the next channel with (a ZNS step without a mapped template goes by email), is asserted per cell."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlmodel import Session, select

from helpdesk.care.mail import email_identity_for_order
from helpdesk.care.models import CareMessage
from helpdesk.care.tasks import run_due_care_messages
from helpdesk.care.zns import zns_identity_for_order
from helpdesk.conversations.models import Conversation
from helpdesk.customers.models import ChannelIdentity
from helpdesk.nps.models import NpsResponse
from helpdesk.shop.models import Order, Product, Warranty
from tests.fakes.smtp_server import SmtpServer
from tests.fakes.zns_api import FakeZns, param
from tests.helpdesk.care.conftest import bot_texts, make_customer, make_order, started

OA_SECRET = "oa-secret-key-for-zns-tests"
BASE = "https://care.bepviet.vn"
ADDRESS = "binh@example.com"
#: the ZNS templates of the steps the shop mapped; nps and warranty_expiry are left unmapped on purpose
TEMPLATES = {"thank_you": "301245", "rating_request": "301246", "check_in": "301247", "maintenance": "301248",
             "usage_tips": "301249"}
CLEAN_VALVE = {"every_months": 3, "text_vi": "Vệ sinh van thoát hơi nồi cơm nhé.",
               "text_en": "Clean the rice cooker's steam valve."}


@dataclass(frozen=True)
class Kind:
    """One care kind: its row kind (a reminder's names its occurrence), what its chat text says, the
    subject of its mail, and the ZNS step it maps to."""

    name: str
    chat_text: str
    subject: str
    zns_step: str


KINDS = {
    "thank_you": Kind("thank_you", "Cảm ơn bạn đã tin chọn", "đã được giao", "thank_you"),
    "rating_request": Kind("rating_request", "DH200001", "mấy sao", "rating_request"),
    "check_in": Kind("check_in", "đã một tuần", "vẫn dùng tốt", "check_in"),
    "nps": Kind("nps", "giới thiệu", "giới thiệu shop cho bạn bè", "nps"),
    "maintenance": Kind("mnt:0:0:1", "Vệ sinh van thoát hơi nồi cơm nhé.", "lịch bảo trì", "maintenance"),
    "warranty_expiry": Kind("wexp:{warranty}", "SN-RC-0001", "bảo hành", "warranty_expiry"),
}


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


@pytest.fixture
def zns():
    with FakeZns() as fake:
        for template_id in TEMPLATES.values():
            fake.add_template(template_id, [param("customer_name"), param("order_code")])
        yield fake


@pytest.fixture
async def client(care_settings, clock, smtp, zns):
    settings = care_settings(
        care={"channel_order": ["chat", "zns", "email"]},
        email={"smtp_url": smtp.url, "from": "care@bepviet.vn", "public_base_url": BASE},
        zalo_oa={"app_id": zns.app_id, "oa_secret_key": OA_SECRET, "app_secret_key": zns.app_secret_key,
                 "access_token": zns.access_token, "refresh_token": zns.refresh_token,
                 "api_base": zns.base_url, "oauth_base": zns.base_url},
        zns={"templates": TEMPLATES, "api_base": zns.base_url, "rating_poll_interval_s": 0})
    async for app in started(settings, clock):
        yield app


def delivered_order(engine, now) -> tuple[int, int]:
    """A delivered order with a phone and an email, a product with a care schedule and a warranty ending
    in 20 days; (order id, warranty id)."""
    order_id = make_order(engine, status="delivered")
    with Session(engine) as session:
        order = session.get(Order, order_id)
        order.email, order.delivered_at = ADDRESS, now - timedelta(days=100)
        product = session.exec(select(Product).where(Product.sku == "RC-18")).one()
        product.care_schedule = [CLEAN_VALVE]
        warranty = Warranty(serial="SN-RC-0001", product_id=product.id, order_id=order_id,
                            starts_at=now - timedelta(days=345), ends_at=now + timedelta(days=20))
        session.add_all([order, product, warranty])
        session.commit()
        return order_id, warranty.id


def identity_on(engine, channel: str, order_id: int) -> int:
    """The identity the care channel reaches the order's customer through."""
    if channel == "chat":
        return make_customer(engine, "cli", "cli-an")[1]
    with Session(engine) as session:
        order = session.get(Order, order_id)
        identity = (zns_identity_for_order if channel == "zns" else email_identity_for_order)(session, order)
        session.commit()
        return identity.id


def due_now(engine, order_id: int, identity_id: int, kind: str, now) -> int:
    with Session(engine) as session:
        row = CareMessage(order_id=order_id, identity_id=identity_id, kind=kind, planned_at=now, due_at=now,
                          created_at=now, updated_at=now)
        session.add(row)
        session.commit()
        return row.id


def rows(engine, order_id: int) -> list[tuple[str, str, str, str | None]]:
    """(channel, kind, status, reason) of the order's care messages, oldest first."""
    with Session(engine) as session:
        found = session.exec(select(CareMessage, ChannelIdentity).join(
            ChannelIdentity, ChannelIdentity.id == CareMessage.identity_id)
            .where(CareMessage.order_id == order_id).order_by(CareMessage.id)).all()
        return [(identity.channel, care.kind, care.status, care.reason) for care, identity in found]


async def run(client) -> None:
    await run_due_care_messages(client.wiring.care)
    await client.settle()


@pytest.mark.parametrize("channel", ["chat", "zns", "email"])
@pytest.mark.parametrize("name", list(KINDS))
async def test_every_care_kind_goes_out_on_every_channel_or_falls_back_with_a_reason(
        client, clock, smtp, zns, name, channel):
    engine = client.wiring.engine
    kind_of = KINDS[name]
    # a quiet-hours-free moment: 10:00 shop time
    order_id, warranty_id = delivered_order(engine, clock.now)
    kind = kind_of.name.format(warranty=warranty_id)
    identity_id = identity_on(engine, channel, order_id)
    due_now(engine, order_id, identity_id, kind, clock.now)

    await run(client)
    await run(client)  # a step that fell back is due at once on the next channel

    cells = rows(engine, order_id)
    mapped = kind_of.zns_step in TEMPLATES
    if channel == "chat":
        assert cells == [("cli", kind, "sent", None)]
        assert kind_of.chat_text in bot_texts(engine, "cli", "cli-an")[-1]
        assert zns.zns_sent() == [] and smtp.received == []
    elif channel == "zns" and mapped:
        assert cells == [("zns", kind, "sent", None)]
        [sent] = zns.zns_sent()
        assert sent.template_id == TEMPLATES[kind_of.zns_step] and sent.phone == "84901234567"
        assert sent.template_data == {"customer_name": "Nguyễn Văn An", "order_code": "DH200001"}
        assert smtp.received == []
    else:
        if channel == "zns":  # no template mapped: a clear reason, and the mail goes instead
            reason = f"no ZNS template is mapped to the {kind_of.zns_step} step (CAREDESK_ZNS__TEMPLATES)" \
                     "; falling back to email"
            assert cells == [("zns", kind, "skipped", reason), ("email", kind, "sent", None)]
            assert zns.zns_sent() == []
        else:
            assert cells == [("email", kind, "sent", None)]
        [received] = smtp.received
        message = received.message
        assert received.recipients == [ADDRESS] and kind_of.subject in message["Subject"]
        text = message.get_body(preferencelist=("plain",)).get_content()
        html = message.get_body(preferencelist=("html",)).get_content()
        assert kind_of.chat_text in text
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        nps_links = [line for line in text.splitlines() if "/care/email/nps/" in line]
        star_links = [line for line in text.splitlines() if "/care/email/rate/" in line]
        assert len(nps_links) == (11 if name == "nps" else 0)
        assert len(star_links) == (5 if name == "rating_request" else 0)
        assert all(line.split()[-1].replace("&", "&amp;") in html for line in nps_links)
    with Session(engine) as session:  # an NPS survey is recorded once, on the channel that sent it
        surveys = [survey.channel for survey in session.exec(select(NpsResponse)).all()]
    expected_channel = {"chat": "cli", "zns": "zns" if mapped else "email", "email": "email"}[channel]
    assert surveys == ([expected_channel] if name == "nps" else [])


def nps_links_of(message) -> dict[int, str]:
    text = message.get_body(preferencelist=("plain",)).get_content()
    links = {}
    for line in text.splitlines():
        if "/care/email/nps/" in line:
            score, url = line.split()
            split = urlsplit(url)
            links[int(score)] = f"{split.path}?{split.query}"
    return links


async def email_nps(client, clock) -> tuple[int, dict[int, str]]:
    engine = client.wiring.engine
    order_id, _ = delivered_order(engine, clock.now)
    due_now(engine, order_id, identity_on(engine, "email", order_id), "nps", clock.now)
    await run(client)
    return order_id, nps_links_of(client.smtp.received[-1].message)


async def test_an_nps_link_records_the_answer_through_the_nps_service_and_the_why_page_stores_the_reason(
        client, clock, smtp):
    client.smtp = smtp
    engine = client.wiring.engine
    order_id, links = await email_nps(client, clock)
    assert sorted(links) == list(range(11))

    page = await client.get(links[9])
    assert page.status_code == 200 and "9/10" in page.text and 'name="comment"' in page.text
    with Session(engine) as session:
        [survey] = session.exec(select(NpsResponse)).all()
        assert (survey.score, survey.channel, survey.order_id) == (9, "email", order_id)
        assert session.exec(select(Conversation)).all() == []  # a promoter opens no follow-up

    action = links[9].split("?")[0]
    empty = await client.post(action, data={"comment": "  "})
    assert empty.status_code == 400
    saved = await client.post(action, data={"comment": "Giao nhanh, nồi nấu ngon"})
    assert saved.status_code == 200
    with Session(engine) as session:
        assert session.exec(select(NpsResponse)).one().comment == "Giao nhanh, nồi nấu ngon"


async def test_a_detractors_email_answer_opens_a_follow_up_once_and_a_bad_link_records_nothing(
        client, clock, smtp):
    client.smtp = smtp
    engine = client.wiring.engine
    _order_id, links = await email_nps(client, clock)

    assert (await client.get(links[0].replace("score=0", "score=11"))).status_code == 400
    forged = links[3].split("/nps/")[0] + "/nps/1.9999999999.bad?score=3"
    assert (await client.get(forged)).status_code == 400
    with Session(engine) as session:
        assert session.exec(select(NpsResponse)).one().score is None

    assert (await client.get(links[3])).status_code == 200
    assert (await client.get(links[2])).status_code == 200  # changed its mind: still one follow-up
    await client.post(links[2].split("?")[0], data={"comment": "Máy kêu to"})
    with Session(engine) as session:
        survey = session.exec(select(NpsResponse)).one()
        assert (survey.score, survey.comment) == (2, "Máy kêu to")
        [conversation] = session.exec(select(Conversation)).all()
        assert conversation.escalation_reason == "nps_detractor" and conversation.state != "bot"


@pytest.fixture
async def nps_on_zns_client(care_settings, clock, zns):
    zns.add_template("301250", [param("customer_name"), param("order_code")])
    settings = care_settings(
        care={"channel_order": ["zns", "email"]},
        zalo_oa={"app_id": zns.app_id, "oa_secret_key": OA_SECRET, "app_secret_key": zns.app_secret_key,
                 "access_token": zns.access_token, "refresh_token": zns.refresh_token,
                 "api_base": zns.base_url, "oauth_base": zns.base_url},
        zns={"templates": {"nps": "301250", "warranty_expiry": "301248"}, "api_base": zns.base_url,
             "rating_poll_interval_s": 0})
    async for app in started(settings, clock):
        yield app


async def test_a_mapped_nps_template_goes_by_zns_and_records_the_survey_only_once_zalo_took_it(
        nps_on_zns_client, clock, zns):
    client = nps_on_zns_client
    engine = client.wiring.engine
    order_id, _ = delivered_order(engine, clock.now)
    identity_id = identity_on(engine, "zns", order_id)
    zns.fail_next_zns(-100)  # Zalo-side trouble: postponed, and no survey counted as asked yet
    due_now(engine, order_id, identity_id, "nps", clock.now)
    await run(client)
    with Session(engine) as session:
        assert session.exec(select(NpsResponse)).all() == []
    clock.advance(minutes=11)
    await run(client)

    [sent] = zns.zns_sent()
    assert sent.template_id == "301250"
    assert [cell[2] for cell in rows(engine, order_id)] == ["sent"]
    with Session(engine) as session:
        [survey] = session.exec(select(NpsResponse)).all()
        assert (survey.channel, survey.order_id, survey.score) == ("zns", order_id, None)


def test_the_zns_mapping_takes_the_new_kinds_and_still_refuses_an_unknown_step():
    from connectors.zalo_zns import ZnsConfig

    config = ZnsConfig(templates={"nps": "1", "maintenance": "2", "warranty_expiry": "3"})
    assert config.templates == {"nps": "1", "maintenance": "2", "warranty_expiry": "3"}
    with pytest.raises(ValueError, match="unknown care step"):
        ZnsConfig(templates={"mnt:0:0:1": "4"})
