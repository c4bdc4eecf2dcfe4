"""Care by email, through the real app against a real SMTP server on loopback (aiosmtpd): a customer no
chat reaches gets the steps at the order's email address, the rating request's star links record the
order's rating, the one-click unsubscribe stops all care, and SMTP failures are retried or final."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlmodel import Session, select

from helpdesk.care.models import CareMessage
from helpdesk.care.tasks import run_due_care_messages
from helpdesk.conversations.models import Conversation
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.ratings.models import Rating
from helpdesk.shop.models import Order
from tests.fakes.smtp_server import SmtpServer
from tests.helpdesk.care.conftest import API_KEY, care_rows, make_customer, make_order, started

KEY = {"X-Api-Key": API_KEY}
BASE = "https://care.bepviet.vn"
ADDRESS = "binh@example.com"


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


def email_settings(care_settings, smtp: SmtpServer, **email: object):
    return care_settings(email={"smtp_url": smtp.url, "from": "care@bepviet.vn", "public_base_url": BASE,
                                "logo_url": f"{BASE}/logo.png", **email})


@pytest.fixture
async def email_client(care_settings, clock, smtp):
    async for client in started(email_settings(care_settings, smtp), clock):
        yield client


async def deliver(client, code="DH200001", **body):
    response = await client.post(f"/api/orders/{code}/delivered", headers=KEY,
                                 json={"email": ADDRESS, "name": "Trần Thị Bình", **body})
    assert response.status_code == 200, response.text
    await client.settle()
    return response.json()


async def send_due(client) -> None:
    await run_due_care_messages(client.wiring.care)
    await client.settle()


def care_of(engine, kind: str, channel: str = "email") -> CareMessage:
    with Session(engine) as session:
        return session.exec(select(CareMessage).join(ChannelIdentity, ChannelIdentity.id == CareMessage.identity_id)
                            .where(CareMessage.kind == kind, ChannelIdentity.channel == channel)).one()


def parts(message) -> tuple[str, str]:
    """The plain text and HTML bodies of a received message."""
    return (message.get_body(preferencelist=("plain",)).get_content(),
            message.get_body(preferencelist=("html",)).get_content())


def star_links(message) -> dict[int, str]:
    text, _html = parts(message)
    links = {}
    for line in text.splitlines():
        if "/care/email/rate/" in line:
            stars = line.strip().split()[0].count("★")
            links[stars] = line.strip().split()[-1]
    return links


def path_of(url: str) -> str:
    split = urlsplit(url)
    return split.path + (f"?{split.query}" if split.query else "")


async def test_a_customer_no_chat_reaches_is_thanked_by_email_with_both_parts_and_the_list_headers(
        email_client, smtp):
    engine = email_client.wiring.engine
    make_order(engine, phone="0901234567")

    await deliver(email_client)

    [received] = smtp.received
    message = received.message
    assert received.recipients == [ADDRESS] and message["To"] == ADDRESS
    assert message["From"].addresses[0].addr_spec == "care@bepviet.vn"
    assert message["From"].addresses[0].display_name == "Bếp Việt Demo"
    assert message.get_content_type() == "multipart/alternative"
    assert "DH200001" in message["Subject"]
    text, html = parts(message)
    assert "Trần Thị Bình" in text and "Cảm ơn bạn đã tin chọn Bếp Việt Demo" in text
    assert f'src="{BASE}/logo.png"' in html and "Cảm ơn bạn đã tin chọn Bếp Việt Demo" in html
    thank_you = care_of(engine, "thank_you")
    assert thank_you.status == "sent"
    assert message["Message-ID"] == f"<{thank_you.external_id}@bepviet.vn>"
    unsubscribe = message["List-Unsubscribe"]
    assert unsubscribe.startswith("<mailto:care@bepviet.vn?subject=unsubscribe") and f"<{BASE}/care/email/unsubscribe/" in unsubscribe
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert [row["channel"] for row in care_rows(engine, "DH200001")] == ["email"] * 5  # thank-you, rating, tips, check-in, NPS


async def test_a_star_link_records_the_orders_rating_and_a_second_click_updates_it(email_client, smtp, clock):
    engine = email_client.wiring.engine
    make_order(engine)
    await deliver(email_client)
    clock.advance(days=1)
    await send_due(email_client)

    rating_mail = smtp.received[-1].message
    links = star_links(rating_mail)
    assert sorted(links) == [1, 2, 3, 4, 5]
    _text, html = parts(rating_mail)
    assert all(url.replace("&", "&amp;") in html for url in links.values())

    page = await email_client.get(path_of(links[2]))
    assert page.status_code == 200
    assert "Cảm ơn bạn đã đánh giá" in page.text and "Thank you for your rating" in page.text
    with Session(engine) as session:
        [rating] = session.exec(select(Rating)).all()
        assert (rating.kind, rating.score) == ("delivery", 2)
        # a low rating opens the same follow-up as a chat rating: a conversation waiting for a person
        conversation = session.exec(select(Conversation)).one()
        assert conversation.priority == "high"

    again = await email_client.get(path_of(links[5]))
    assert again.status_code == 200
    with Session(engine) as session:
        assert [r.score for r in session.exec(select(Rating)).all()] == [5]


async def test_a_forged_expired_or_out_of_range_star_link_is_refused_and_records_nothing(email_client, smtp, clock):
    engine = email_client.wiring.engine
    make_order(engine)
    await deliver(email_client)
    clock.advance(days=1)
    await send_due(email_client)
    link = path_of(star_links(smtp.received[-1].message)[4])

    forged = link.replace("/rate/", "/rate/9").replace("?stars=4", "?stars=4")
    assert (await email_client.get(forged)).status_code == 400
    assert (await email_client.get(link.replace("stars=4", "stars=9"))).status_code == 400
    clock.advance(days=61)
    expired = await email_client.get(link)
    assert expired.status_code == 400 and "hết hạn" in expired.text
    with Session(engine) as session:
        assert session.exec(select(Rating)).all() == []


async def test_the_one_click_unsubscribe_stops_all_care_and_the_page_alone_does_not(email_client, smtp):
    engine = email_client.wiring.engine
    make_order(engine)
    await deliver(email_client)
    url = smtp.received[0].message["List-Unsubscribe"].split(", ")[1].strip("<>")

    page = await email_client.get(path_of(url))
    assert page.status_code == 200 and "<form" in page.text
    with Session(engine) as session:
        assert not session.exec(select(Customer)).one().care_opted_out

    done = await email_client.post(path_of(url), data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "You are unsubscribed" in done.text
    with Session(engine) as session:
        assert session.exec(select(Customer)).one().care_opted_out
    statuses = {row["kind"]: row["status"] for row in care_rows(engine, "DH200001")}
    assert statuses == {"thank_you": "sent", "rating_request": "cancelled", "usage_tips": "cancelled",
                        "check_in": "cancelled", "nps": "cancelled"}


async def test_an_address_the_server_refuses_for_good_is_skipped_with_the_reason(email_client, smtp):
    engine = email_client.wiring.engine
    make_order(engine)
    smtp.refuse(ADDRESS, "550 5.1.1 <binh@example.com>: no such user")
    await deliver(email_client)

    thank_you = care_of(engine, "thank_you")
    assert thank_you.status == "skipped"
    assert "550" in thank_you.reason and "no such user" in thank_you.reason
    assert "no further channel reaches the customer" in thank_you.reason
    with Session(engine) as session:
        identity = session.exec(select(ChannelIdentity).where(ChannelIdentity.channel == "email")).one()
        assert identity.reachable is False
    assert smtp.received == []


async def test_a_passing_refusal_or_an_unreachable_server_postpones_the_mail(email_client, smtp, clock):
    engine = email_client.wiring.engine
    make_order(engine)
    smtp.refuse(ADDRESS, "451 4.7.1 greylisted, try again later")
    await deliver(email_client)

    thank_you = care_of(engine, "thank_you")
    assert thank_you.status == "scheduled" and "451" in thank_you.reason and thank_you.reason.startswith("postponed")
    assert thank_you.due_at >= clock.now + timedelta(minutes=10)

    smtp.handler.refusals.clear()
    smtp.stop()
    clock.advance(minutes=11)
    await send_due(email_client)
    thank_you = care_of(engine, "thank_you")
    assert thank_you.status == "scheduled" and "could not be reached" in thank_you.reason


async def test_the_mail_is_retried_and_sent_once_the_server_takes_it(email_client, smtp, clock):
    engine = email_client.wiring.engine
    make_order(engine)
    smtp.refuse(ADDRESS, "421 4.3.2 service not available")
    await deliver(email_client)
    assert care_of(engine, "thank_you").status == "scheduled"

    smtp.handler.refusals.clear()
    clock.advance(minutes=11)
    await send_due(email_client)
    assert care_of(engine, "thank_you").status == "sent"
    assert len(smtp.received) == 1


async def test_an_import_with_emails_leaves_out_lines_with_a_bad_contact_and_mails_the_others(email_client, smtp):
    engine = email_client.wiring.engine
    csv_text = ("code,phone,customer_name,status,delivered_at,items,email\n"
                "DH400001,0901234567,An,delivered,2026-03-02T09:30:00,RC-18:1,an@example.com\n"
                "DH400002,12345,Bình,delivered,2026-03-02T09:30:00,RC-18:1,binh@example.com\n"
                "DH400003,0912345678,Chi,delivered,2026-03-02T09:30:00,RC-18:1,chi at example.com\n"
                "DH400004,0987654321,Dung,in_transit,,RC-18:1,\n")
    response = await email_client.post("/api/orders/import", headers=KEY,
                                       files={"file": ("orders.csv", csv_text.encode(), "text/csv")})
    assert response.status_code == 200, response.text
    await email_client.settle()

    body = response.json()
    assert body["imported"] is True and body["created"] == 2 and len(body["errors"]) == 2
    assert [(error["line"], error["error"].split(" ")[0]) for error in body["errors"]] == [(3, "phone"),
                                                                                           (4, "email:")]
    assert "12345" in body["errors"][0]["error"] and "not an email address" in body["errors"][1]["error"]
    with Session(engine) as session:
        orders = {order.code: order.email for order in session.exec(select(Order)).all()}
    assert orders == {"DH400001": "an@example.com", "DH400004": None}
    assert [received.recipients for received in smtp.received] == [["an@example.com"]]


async def test_opting_out_in_a_chat_stops_the_care_mails_too(email_client, smtp, clock):
    engine = email_client.wiring.engine
    make_order(engine)
    await deliver(email_client)
    customer_id, _identity_id = make_customer(engine, "cli", "cli-an", phone="0901234567")
    await email_client.wiring.customers.set_opt_out(customer_id, True)  # "dừng" in the chat

    clock.advance(days=1)
    await send_due(email_client)
    rating = care_of(engine, "rating_request")
    assert rating.status == "cancelled" and "opted out" in rating.reason
    assert len(smtp.received) == 1  # the thank-you only


async def test_a_customer_zns_cannot_reach_gets_the_step_by_email_next(care_settings, clock, smtp):
    from tests.fakes.zns_api import FakeZns, param
    from tests.helpdesk.care.test_zns import THANK_YOU, zns_settings

    with FakeZns() as zns:
        zns.add_template(THANK_YOU, [param("customer_name"), param("order_code")])
        settings = zns_settings(care_settings, zns, templates={"thank_you": THANK_YOU})
        settings.email = email_settings(care_settings, smtp).email
        async for client in started(settings, clock):
            engine = client.wiring.engine
            make_order(engine, phone="0901234567")
            zns.not_on_zalo("84901234567")
            await deliver(client)
            await send_due(client)

            zns_step = care_of(engine, "thank_you", "zns")
            assert zns_step.status == "skipped" and "falling back to email" in zns_step.reason
            assert care_of(engine, "thank_you").status == "sent"
            assert [received.recipients for received in smtp.received] == [[ADDRESS]]
