"""Care through Zalo ZNS, through the real app against the fake ZNS server: a customer no chat reaches
gets the steps by ZNS to the order's phone, refusals fall back, receipts and ratings come back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from helpdesk.care.models import CareMessage
from helpdesk.care.tasks import run_due_care_messages
from helpdesk.care.zns import ZnsConfigurationError
from helpdesk.conversations.models import Conversation
from helpdesk.customers.models import ChannelIdentity
from helpdesk.ratings.models import Rating, RatingRequest
from helpdesk.shop.models import Order
from tests.fakes.zns_api import FakeZns, param
from tests.helpdesk.care.conftest import API_KEY, care_rows, make_customer, make_order, started

KEY = {"X-Api-Key": API_KEY}
OA_SECRET = "oa-secret-key-for-zns-tests"
THANK_YOU, RATING, CHECK_IN = "301245", "301246", "301247"


@pytest.fixture
def zns():
    with FakeZns() as fake:
        fake.add_template(THANK_YOU, [param("customer_name"), param("order_code"), param("product_name", max_length=100)])
        fake.add_template(RATING, [param("customer_name"), param("order_code")])
        fake.add_template(CHECK_IN, [param("customer_name"), param("delivered_date", max_length=10)])
        yield fake


def zns_settings(care_settings, fake: FakeZns, **zns: object):
    return care_settings(
        zalo_oa={"app_id": fake.app_id, "oa_secret_key": OA_SECRET, "app_secret_key": fake.app_secret_key,
                 "access_token": fake.access_token, "refresh_token": fake.refresh_token,
                 "api_base": fake.base_url, "oauth_base": fake.base_url},
        zns={"templates": {"thank_you": THANK_YOU, "rating_request": RATING, "check_in": CHECK_IN},
             "api_base": fake.base_url, "rating_poll_interval_s": 0, **zns})


@pytest.fixture
async def zns_client(care_settings, clock, zns):
    async for client in started(zns_settings(care_settings, zns), clock):
        yield client


async def deliver(client, code="DH200001", **body):
    response = await client.post(f"/api/orders/{code}/delivered", headers=KEY, json=body or None)
    assert response.status_code == 200, response.text
    await client.settle()
    return response.json()


async def send_due(client) -> None:
    await run_due_care_messages(client.wiring.care)
    await client.settle()


def care_of(engine, kind: str, channel: str = "zns") -> CareMessage:
    with Session(engine) as session:
        return session.exec(select(CareMessage).join(ChannelIdentity, ChannelIdentity.id == CareMessage.identity_id)
                            .where(CareMessage.kind == kind, ChannelIdentity.channel == channel)).one()


async def test_a_customer_no_chat_reaches_is_thanked_by_zns_at_the_orders_phone(zns_client, zns):
    engine = zns_client.wiring.engine
    make_order(engine, phone="0901234567")

    body = await deliver(zns_client, name="Trần Thị Bình", email="binh@example.com")

    [sent] = zns.zns_sent()
    assert sent.phone == "84901234567" and sent.template_id == THANK_YOU
    assert sent.template_data == {"customer_name": "Trần Thị Bình", "order_code": "DH200001",
                                  "product_name": "Nồi cơm điện Bếp Việt 1.8L"}
    assert sent.tracking_id == f"care-{care_of(engine, 'thank_you').id}"
    thank_you = care_of(engine, "thank_you")
    assert thank_you.status == "sent" and thank_you.external_id == sent.msg_id
    assert [row["channel"] for row in care_rows(engine, "DH200001")] == ["zns"] * 5
    assert body["awaiting_customer"] is False
    with Session(engine) as session:
        order = session.exec(select(Order)).one()
        assert (order.email, order.customer_name) == ("binh@example.com", "Trần Thị Bình")


async def test_the_delivered_body_replaces_the_orders_phone_in_the_normal_form(zns_client, zns):
    make_order(zns_client.wiring.engine, phone="0901234567")
    await deliver(zns_client, phone="+84 98 765 4321")
    assert [message.phone for message in zns.zns_sent()] == ["84987654321"]


@pytest.mark.parametrize("body, field, reason", [
    ({"phone": "12345"}, "phone", "not a Vietnamese mobile number"),
    ({"email": "an at example.com"}, "email", "not an email address"),
    ({"email": "an@example"}, "email", "not an email address"),
])
async def test_a_bad_phone_or_email_in_the_delivered_body_is_refused_with_the_reason(zns_client, zns, body, field,
                                                                                      reason):
    make_order(zns_client.wiring.engine)
    response = await zns_client.post("/api/orders/DH200001/delivered", headers=KEY, json=body)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"][-1] == field and reason in error["msg"]
    with Session(zns_client.wiring.engine) as session:
        assert session.exec(select(Order)).one().status == "in_transit"
    assert zns.zns_sent() == []


async def test_a_linked_chat_is_used_first_and_zns_only_when_the_chat_cannot_be_used(zns_client, zns, clock):
    engine = zns_client.wiring.engine
    make_order(engine)
    make_customer(engine, "cli", "cli-an")
    await deliver(zns_client)
    assert zns.zns_sent() == []
    assert care_of(engine, "thank_you", "cli").status == "sent"

    with Session(engine) as session:  # the chat becomes unreachable before the rating request
        identity = session.exec(select(ChannelIdentity).where(ChannelIdentity.channel == "cli")).one()
        identity.reachable, identity.unreachable_reason = False, "blocked the shop"
        session.add(identity)
        session.commit()
    clock.advance(days=1)
    await send_due(zns_client)
    await send_due(zns_client)

    chat = care_of(engine, "rating_request", "cli")
    assert chat.status == "skipped" and "falling back to zns" in chat.reason
    assert care_of(engine, "rating_request").status == "sent"
    assert [message.template_id for message in zns.zns_sent()] == [RATING]


async def test_a_customer_not_on_zalo_is_skipped_with_the_reason_and_no_further_channel(zns_client, zns):
    engine = zns_client.wiring.engine
    make_order(engine)
    zns.not_on_zalo("84901234567")
    await deliver(zns_client)

    thank_you = care_of(engine, "thank_you")
    assert thank_you.status == "skipped"
    assert "not on Zalo" in thank_you.reason and "Zalo -118" in thank_you.reason
    assert "no further channel reaches the customer" in thank_you.reason
    with Session(engine) as session:
        identity = session.exec(select(ChannelIdentity).where(ChannelIdentity.channel == "zns")).one()
        assert identity.reachable is False and "not on Zalo" in identity.unreachable_reason


async def test_an_unapproved_template_at_send_time_is_skipped_as_a_configuration_problem(zns_client, zns):
    make_order(zns_client.wiring.engine)
    zns.fail_next_zns(-131)
    await deliver(zns_client)
    thank_you = care_of(zns_client.wiring.engine, "thank_you")
    assert thank_you.status == "skipped" and "not approved" in thank_you.reason


async def test_zalo_side_trouble_postpones_the_step_and_it_goes_later(zns_client, zns, clock):
    engine = zns_client.wiring.engine
    make_order(engine)
    zns.fail_next_zns(-100)
    await deliver(zns_client)
    thank_you = care_of(engine, "thank_you")
    assert thank_you.status == "scheduled" and thank_you.reason.startswith("postponed: Zalo could not send it")
    assert thank_you.due_at == clock.now + timedelta(minutes=10)

    clock.advance(minutes=10)
    await send_due(zns_client)
    assert care_of(engine, "thank_you").status == "sent" and len(zns.zns_sent()) == 1


async def test_an_expired_oa_token_is_refreshed_through_the_oa_channel_and_the_send_goes(zns_client, zns):
    make_order(zns_client.wiring.engine)
    zns.expire_access_token()
    await deliver(zns_client)
    assert zns.refresh_count == 1
    assert care_of(zns_client.wiring.engine, "thank_you").status == "sent"
    assert zns.calls_to("zns")[-1].headers["access_token"] == zns.access_token


async def test_a_step_without_a_template_is_skipped_and_the_others_go(zns_client, zns, clock):
    engine = zns_client.wiring.engine
    make_order(engine)
    await deliver(zns_client)
    clock.advance(days=3)
    await send_due(zns_client)
    tips = care_of(engine, "usage_tips")
    assert tips.status == "skipped" and "no ZNS template is mapped to the usage_tips step" in tips.reason


async def test_a_template_whose_parameters_caredesk_cannot_fill_refuses_the_start(care_settings, clock, zns):
    zns.add_template("309999", [param("customer_name"), param("voucher_code")])
    settings = zns_settings(care_settings, zns)
    settings.zns.templates["check_in"] = "309999"
    with pytest.raises(ZnsConfigurationError, match="check_in: template 309999 requires parameter 'voucher_code'"):
        async for _client in started(settings, clock):
            pass


async def test_a_template_not_yet_approved_refuses_the_start(care_settings, clock, zns):
    zns.add_template("308888", [param("customer_name")], status="PENDING_REVIEW")
    settings = zns_settings(care_settings, zns)
    settings.zns.templates["thank_you"] = "308888"
    with pytest.raises(ZnsConfigurationError, match="thank_you: template 308888 is PENDING_REVIEW"):
        async for _client in started(settings, clock):
            pass


async def test_a_mapping_naming_extra_parameters_is_accepted(care_settings, clock, zns):
    zns.add_template("309999", [param("customer_name"), param("ma_dh")])
    settings = zns_settings(care_settings, zns, parameters={"ma_dh": "order_code"})
    settings.zns.templates["thank_you"] = "309999"
    async for client in started(settings, clock):
        make_order(client.wiring.engine)
        await deliver(client)
        assert zns.zns_sent()[0].template_data == {"customer_name": "Nguyễn Văn An", "ma_dh": "DH200001"}


async def post_event(client, zns: FakeZns, event_name: str, message: dict, secret: str = OA_SECRET):
    body, headers = zns.signed_event(event_name, message, oa_secret_key=secret)
    response = await client.post("/webhooks/zalo-zns/events", content=body, headers=headers)
    await client.settle()
    return response


async def test_a_receipt_marks_the_care_message_delivered(zns_client, zns):
    make_order(zns_client.wiring.engine)
    await deliver(zns_client)
    [sent] = zns.zns_sent()
    response = await post_event(zns_client, zns, "user_received_message",
                                {"msg_id": sent.msg_id, "delivery_time": "1772420400000"})
    assert response.json() == {"ok": True, "recorded": "delivered"}
    thank_you = care_of(zns_client.wiring.engine, "thank_you")
    assert thank_you.status == "delivered" and thank_you.delivered_at is not None


async def test_an_event_with_a_wrong_signature_is_refused(zns_client, zns):
    response = await post_event(zns_client, zns, "user_received_message", {"msg_id": "x"}, secret="guess")
    assert response.status_code == 403


@pytest.mark.parametrize("path", ["/webhooks/zns", "/webhooks/zalo-zns"])
async def test_the_zns_webhook_answers_at_its_short_paths_too(zns_client, zns, path):
    make_order(zns_client.wiring.engine)
    await deliver(zns_client)
    [sent] = zns.zns_sent()
    body, headers = zns.signed_event("user_received_message", {"msg_id": sent.msg_id, "delivery_time": "1"},
                                     oa_secret_key=OA_SECRET)
    response = await zns_client.post(path, content=body, headers=headers)
    assert response.json() == {"ok": True, "recorded": "delivered"}


async def rate_by_zns(client, zns, clock, stars: int, **feedback) -> dict:
    make_order(client.wiring.engine)
    await deliver(client)
    clock.advance(days=1)
    await send_due(client)
    rating_message = zns.zns_sent()[-1]
    assert rating_message.template_id == RATING
    return zns.rate(rating_message, stars, at=clock.now + timedelta(hours=1), **feedback)


async def test_a_rating_by_webhook_is_the_orders_rating_with_its_comment(zns_client, zns, clock):
    event = await rate_by_zns(zns_client, zns, clock, 5, note="Rất tốt", feedbacks=["Giao hàng nhanh"])
    response = await post_event(zns_client, zns, "user_feedback", event)
    assert response.json()["recorded"] == "delivery"
    with Session(zns_client.wiring.engine) as session:
        rating = session.exec(select(Rating)).one()
        order = session.exec(select(Order)).one()
        assert (rating.kind, rating.score, rating.order_id) == ("delivery", 5, order.id)
        assert rating.comment == "Giao hàng nhanh; Rất tốt"
        request = session.exec(select(RatingRequest)).one()
        assert request.answered_at is not None and request.rating_id == rating.id
        assert session.exec(select(Conversation)).all() == []  # a good rating needs no follow-up


async def test_a_low_rating_opens_the_same_follow_up_as_a_chat_rating(zns_client, zns, clock):
    event = await rate_by_zns(zns_client, zns, clock, 1, note="Nồi bị nứt")
    await post_event(zns_client, zns, "user_feedback", event)
    again = await post_event(zns_client, zns, "user_feedback", event)  # Zalo delivers events again
    assert again.json()["recorded"] == "unchanged"
    with Session(zns_client.wiring.engine) as session:
        [conversation] = session.exec(select(Conversation)).all()
        assert conversation.state == "waiting_for_agent" and conversation.priority == "high"
        assert conversation.escalation_reason == "low_rating" and conversation.channel == "zns"


async def test_ratings_given_where_no_event_comes_are_taken_from_the_rating_api(zns_client, zns, clock):
    await rate_by_zns(zns_client, zns, clock, 3, feedbacks=["Đóng gói chưa kỹ"])
    clock.advance(hours=2)
    assert await zns_client.wiring.care.zns.poll_ratings() == 1
    assert await zns_client.wiring.care.zns.poll_ratings() == 0  # the same rating again changes nothing
    with Session(zns_client.wiring.engine) as session:
        rating = session.exec(select(Rating)).one()
        assert (rating.score, rating.comment) == (3, "Đóng gói chưa kỹ")
        [conversation] = session.exec(select(Conversation)).all()
        assert conversation.priority == "low" and conversation.escalation_reason == "rating_feedback"


async def test_without_zns_in_the_channel_order_a_customer_no_chat_reaches_waits(care_settings, clock, zns):
    settings = zns_settings(care_settings, zns)
    settings.care.channel_order = ["chat", "email"]
    async for client in started(settings, clock):
        make_order(client.wiring.engine)
        body = await deliver(client)
        assert body["awaiting_customer"] is True and zns.zns_sent() == []


async def test_a_zns_rating_counts_in_the_after_delivery_report_of_the_zns_channel(care_settings, zns):
    from datetime import UTC, datetime

    from tests.helpdesk.care.conftest import SHOP_TZ, FakeClock

    # the report reads ratings by when they were stored (the real time): run the care on today's clock
    today = datetime.now(SHOP_TZ).replace(hour=10, minute=0, second=0, microsecond=0)
    clock = FakeClock((today - timedelta(days=1)).astimezone(UTC))
    async for client in started(zns_settings(care_settings, zns), clock):
        event = await rate_by_zns(client, zns, clock, 4)
        await post_event(client, zns, "user_feedback", event)
        headers = await client.login()
        period = {"from": (today - timedelta(days=2)).date().isoformat(),
                  "to": (today + timedelta(days=1)).date().isoformat()}
        by_zns = (await client.get("/api/reports/summary", headers=headers,
                                   params={**period, "channel": "zns"})).json()["after_delivery"]
        assert (by_zns["requests_sent"], by_zns["requests_answered"], by_zns["ratings"]) == (1, 1, 1)
        assert by_zns["distribution"]["4"] == 1
        by_chat = (await client.get("/api/reports/summary", headers=headers,
                                    params={**period, "channel": "telegram"})).json()["after_delivery"]
        assert by_chat["ratings"] == 0


def test_the_fixed_setting_names_are_read_from_the_environment(monkeypatch):
    from helpdesk.core.config import Settings

    monkeypatch.setenv("CAREDESK_ZNS__TEMPLATES", '{"thank_you": 301245, "rating_request": "301246"}')
    monkeypatch.setenv("CAREDESK_ZNS__API_BASE", "http://127.0.0.1:9")
    monkeypatch.setenv("CAREDESK_CARE__CHANNEL_ORDER", "zns,chat")
    settings = Settings(_env_file=None)
    assert settings.zns.templates == {"thank_you": "301245", "rating_request": "301246"}
    assert settings.zns.api_base == "http://127.0.0.1:9" and settings.care.channel_order == ["zns", "chat"]
    monkeypatch.setenv("CAREDESK_ZNS__TEMPLATES", '{"thanks": "301245"}')
    with pytest.raises(ValueError, match="unknown care step"):
        Settings(_env_file=None)


async def test_zns_events_sent_to_the_oas_webhook_are_recorded_too(zns_client, zns, clock):
    # Zalo posts every event of the app to the one webhook URL the app has: the OA's
    event = await rate_by_zns(zns_client, zns, clock, 2, note="Giao trễ")
    body, headers = zns.signed_event("user_feedback", event, oa_secret_key=OA_SECRET)
    response = await zns_client.post("/webhooks/zalo-oa", content=body, headers=headers)
    await zns_client.settle()
    assert response.status_code == 200
    [sent_thank_you, _] = zns.zns_sent()
    body, headers = zns.signed_event("user_received_message",
                                     {"msg_id": sent_thank_you.msg_id, "delivery_time": "1772420400000"},
                                     oa_secret_key=OA_SECRET)
    assert (await zns_client.post("/webhooks/zalo-oa", content=body, headers=headers)).status_code == 200
    await zns_client.settle()
    with Session(zns_client.wiring.engine) as session:
        rating = session.exec(select(Rating)).one()
        assert (rating.score, rating.comment) == (2, "Giao trễ")
    assert care_of(zns_client.wiring.engine, "thank_you").status == "delivered"


async def test_a_send_cut_off_before_zalos_answer_was_recorded_is_not_sent_again(zns_client, zns, clock):
    engine = zns_client.wiring.engine
    make_order(engine)
    zns.delay_next(30, endpoint="zns")  # the process "stops" while Zalo is being asked
    delivered = await zns_client.post("/api/orders/DH200001/delivered", headers=KEY)
    assert delivered.status_code == 200
    await zns.wait_for_calls("zns", 1)
    assert care_of(engine, "thank_you").status == "sending"

    clock.advance(minutes=16)
    with Session(engine) as session:  # as a fresh worker finds it: claimed long ago, no answer recorded
        row = session.get(CareMessage, care_of(engine, "thank_you").id)
        row.updated_at = clock.now - timedelta(minutes=16)
        session.add(row)
        session.commit()
    await run_due_care_messages(zns_client.wiring.care)
    thank_you = care_of(engine, "thank_you")
    assert thank_you.status == "skipped" and thank_you.reason.startswith("outcome unknown")
    assert len(zns.calls_to("zns")) == 1


async def test_the_admin_sees_the_accounts_templates_and_what_fills_their_parameters(zns_client, zns):
    headers = await zns_client.login()
    response = await zns_client.get("/api/care/zns/templates", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["mapping"] == {"thank_you": THANK_YOU, "rating_request": RATING, "check_in": CHECK_IN}
    by_id = {template["template_id"]: template for template in body["data"]}
    assert by_id[RATING]["mapped_to"] == ["rating_request"] and by_id[RATING]["status"] == "ENABLE"
    assert [(p["name"], p["filled_with"]) for p in by_id[CHECK_IN]["params"]] == [
        ("customer_name", "customer_name"), ("delivered_date", "delivered_date")]


async def test_a_mapping_is_checked_with_zalo_before_it_is_configured(zns_client, zns):
    headers = await zns_client.login()
    zns.add_template("309999", [param("customer_name"), param("voucher_code")])
    refused = await zns_client.post("/api/care/zns/templates/check", headers=headers,
                                    json={"templates": {"thank_you": "309999", "check_in": "1"}})
    assert refused.status_code == 422
    problems = refused.json()["problems"]
    assert any("requires parameter 'voucher_code'" in problem for problem in problems)
    assert any("check_in: template 1" in problem and "Zalo -109" in problem for problem in problems)
    malformed = await zns_client.post("/api/care/zns/templates/check", headers=headers,
                                      json={"templates": {"thanks": "309999"}})
    assert malformed.status_code == 422 and "unknown care step" in malformed.json()["problems"][0]
    accepted = await zns_client.post("/api/care/zns/templates/check", headers=headers,
                                     json={"templates": {"thank_you": "309999"},
                                           "parameters": {"voucher_code": "order_code"}})
    assert accepted.status_code == 200
    assert accepted.json()["templates"]["thank_you"]["params"] == ["customer_name", "voucher_code"]


async def test_send_receipt_rating_and_fallback_on_each_database(care_settings, clock, zns, database_url):
    async for client in started(zns_settings(care_settings, zns, database_url=database_url), clock):
        engine = client.wiring.engine
        make_order(engine, "DH200001", phone="0901234567")
        make_order(engine, "DH200002", phone="0907654321")
        zns.not_on_zalo("84907654321")
        await deliver(client, "DH200001")
        await deliver(client, "DH200002")
        [sent] = zns.zns_sent()
        await post_event(client, zns, "user_received_message", {"msg_id": sent.msg_id, "delivery_time": "1"})
        clock.advance(days=1)
        await send_due(client)
        rating_message = zns.zns_sent()[-1]
        await post_event(client, zns, "user_feedback", zns.rate(rating_message, 2, note="Trễ"))
        rows = {(row["kind"], row["status"]) for row in care_rows(engine, "DH200001")}
        assert {("thank_you", "delivered"), ("rating_request", "sent")} <= rows
        assert {row["status"] for row in care_rows(engine, "DH200002") if row["kind"] == "thank_you"} == {"skipped"}
        with Session(engine) as session:
            assert session.exec(select(Rating.score)).all() == [2]
            assert session.exec(select(Conversation.escalation_reason)).all() == ["low_rating"]


async def test_without_a_usable_oa_token_the_start_goes_on_and_sends_wait(care_settings, clock, zns):
    zns.expire_access_token()
    zns.fail_next_http(502, endpoint="token", times=2)  # at the start and at the first send: no new token
    async for client in started(zns_settings(care_settings, zns), clock):
        make_order(client.wiring.engine)
        await deliver(client)
        thank_you = care_of(client.wiring.engine, "thank_you")
        assert thank_you.status == "scheduled" and "no usable Zalo OA access token" in thank_you.reason
        assert zns.zns_sent() == []

        clock.advance(minutes=10)  # OAuth is back
        await send_due(client)
        assert care_of(client.wiring.engine, "thank_you").status == "sent" and zns.refresh_count == 1


async def test_a_customer_who_opted_out_on_a_chat_gets_no_zns_either(zns_client, zns):
    from helpdesk.customers.models import Customer

    engine = zns_client.wiring.engine
    make_order(engine)
    customer_id, _ = make_customer(engine, "cli", "cli-an", phone="0901234567")
    with Session(engine) as session:
        customer = session.get(Customer, customer_id)
        customer.care_opted_out = True
        session.add(customer)
        session.commit()
    body = await deliver(zns_client)
    assert zns.zns_sent() == [] and body["data"] == []


def test_the_channel_order_keeps_only_the_channels_this_server_can_use(care_settings, zns):
    from helpdesk.care.service import CarePolicy

    assert CarePolicy.from_settings(zns_settings(care_settings, zns)).channels == ("chat", "zns")
    assert CarePolicy.from_settings(care_settings()).channels == ("chat",)  # no templates: no ZNS
    without_oa = care_settings(zns={"templates": {"thank_you": THANK_YOU}})
    assert CarePolicy.from_settings(without_oa).channels == ("chat",)  # ZNS sends with the OA's token
    settings = zns_settings(care_settings, zns)
    settings.care.channel_order = ["sms", "zns", "chat", "zns"]
    assert CarePolicy.from_settings(settings).channels == ("zns", "chat")


async def test_a_shop_preferring_zns_reaches_even_a_linked_customer_by_zns(care_settings, clock, zns):
    settings = zns_settings(care_settings, zns)
    settings.care.channel_order = ["zns", "chat"]
    async for client in started(settings, clock):
        make_order(client.wiring.engine)
        make_customer(client.wiring.engine, "cli", "cli-an")
        await deliver(client)
        assert [message.template_id for message in zns.zns_sent()] == [THANK_YOU]
        assert {row["channel"] for row in care_rows(client.wiring.engine, "DH200001")} == {"zns"}


async def test_when_zalo_cannot_describe_the_templates_the_step_still_goes_with_every_value(care_settings, clock,
                                                                                          zns):
    zns.fail_next_http(503, endpoint="template_info", times=10)
    async for client in started(zns_settings(care_settings, zns), clock):
        make_order(client.wiring.engine)
        await deliver(client)
        [sent] = zns.zns_sent()
        assert sent.template_data["customer_name"] == "Nguyễn Văn An"
        assert sent.template_data["order_code"] == "DH200001"
        assert care_of(client.wiring.engine, "thank_you").status == "sent"
