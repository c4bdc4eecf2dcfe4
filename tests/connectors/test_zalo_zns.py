"""The ZNS client against the fake ZNS server: phone numbers, the documented request, each error code's
reading, template info and the rating API, and the webhook events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.zalo_zns import (
    ZnsClient,
    ZnsConfig,
    ZnsError,
    ZnsRating,
    ZnsReceipt,
    parse_zns_event,
    template_data,
    template_problems,
    zns_phone,
)
from tests.fakes.zns_api import FakeZns, param


@pytest.fixture
def zns():
    with FakeZns() as fake:
        fake.add_template("301245", [param("customer_name"), param("order_code")])
        yield fake


def client_for(fake: FakeZns, **config) -> ZnsClient:
    async def token() -> str:
        return fake.access_token

    return ZnsClient(ZnsConfig(api_base=fake.base_url, templates={"thank_you": "301245"}, **config), token)


@pytest.mark.parametrize("raw", ["0901234567", "090 123 4567", "090.123.4567", "+84 90 123 4567", "84901234567",
                                 "0084901234567", "901234567", "(090) 123-4567"])
def test_phones_are_normalised_to_the_84_form_zns_takes(raw):
    assert zns_phone(raw) == "84901234567"


@pytest.mark.parametrize("raw, why", [("", "not a phone"), ("090123456", "not a Vietnamese mobile"),
                                      ("+1 415 555 0100", "not a Vietnamese mobile"),
                                      ("0201234567", "mobile numbers start"), ("09012345ab", "not a phone")])
def test_malformed_phones_are_refused_with_the_reason(raw, why):
    with pytest.raises(ValueError, match=why):
        zns_phone(raw)


async def test_a_send_uses_the_documented_request_and_returns_zalos_msg_id(zns):
    sent = await client_for(zns).send_template("0901 234 567", "301245",
                                               {"customer_name": "An", "order_code": "DH1"}, tracking_id="care-7")
    [call] = zns.calls_to("zns")
    assert call.headers["access_token"] == zns.access_token
    assert call.body == {"phone": "84901234567", "template_id": "301245",
                         "template_data": {"customer_name": "An", "order_code": "DH1"}, "tracking_id": "care-7"}
    assert sent.msg_id == zns.zns_sent()[0].msg_id and sent.remaining_quota == 499


async def test_development_mode_is_asked_for_and_refused_for_a_phone_that_is_not_a_tester(zns):
    client = client_for(zns, development_mode=True)
    with pytest.raises(ZnsError, match="development mode") as refused:
        await client.send_template("0901234567", "301245", {"customer_name": "An", "order_code": "DH1"},
                                   tracking_id="care-1")
    assert zns.calls_to("zns")[0].body["mode"] == "development"
    assert refused.value.configuration and not refused.value.retryable
    zns.add_tester("84901234567")
    await client.send_template("0901234567", "301245", {"customer_name": "An", "order_code": "DH1"},
                               tracking_id="care-1")
    assert zns.zns_sent()[0].mode == "development"


@pytest.mark.parametrize("code, reason, retryable, falls_back, configuration", [
    (-108, "phone number is not valid", False, True, False),
    (-118, "not on Zalo", False, True, False),
    (-114, "not on Zalo, is inactive", False, True, False),
    (-134, "daily number of ZNS", False, True, False),
    (-131, "not approved", False, True, True),
    (-117, "not approved or this OA may not use it", False, True, True),
    (-112, "does not fit", False, True, True),
    (-115, "quota or balance", False, True, True),
    (-144, "quota or balance", False, True, True),
    (-126, "development mode", False, True, True),
    (-133, "at night", True, False, False),
    (-124, "access token was refused", True, False, True),
    (-100, "could not send it this time", True, False, False),
])
async def test_each_zns_error_is_read_as_a_clear_reason(zns, code, reason, retryable, falls_back, configuration):
    zns.fail_next_zns(code)
    with pytest.raises(ZnsError, match=reason) as refused:
        await client_for(zns).send_template("0901234567", "301245", {"customer_name": "An", "order_code": "DH1"},
                                            tracking_id="care-1")
    error = refused.value
    assert (error.code, error.retryable, error.falls_back, error.configuration) == (
        code, retryable, falls_back, configuration)
    assert f"Zalo {code}" in error.reason


async def test_server_trouble_is_retryable_and_does_not_fall_back(zns):
    zns.fail_next_http(502, endpoint="zns")
    with pytest.raises(ZnsError) as refused:
        await client_for(zns).send_template("0901234567", "301245", {"customer_name": "An", "order_code": "DH1"},
                                            tracking_id="care-1")
    assert refused.value.retryable and not refused.value.falls_back


async def test_template_info_gives_the_parameters_and_the_problems_of_a_mapping(zns):
    zns.add_template("400001", [param("customer_name"), param("voucher_code")], status="PENDING_REVIEW")
    good = await client_for(zns).template_info("301245")
    assert good.approved and [p.name for p in good.params] == ["customer_name", "order_code"]
    assert template_problems("thank_you", good, {}) == []
    bad = await client_for(zns).template_info("400001")
    problems = template_problems("check_in", bad, {})
    assert any("PENDING_REVIEW" in problem for problem in problems)
    assert any("'voucher_code'" in problem for problem in problems)
    assert template_problems("check_in", bad, {"voucher_code": "order_code"})[1:] == []
    with pytest.raises(ZnsError, match="Zalo -109"):
        await client_for(zns).template_info("999")


async def test_template_data_fills_what_caredesk_knows_and_cuts_to_the_maximum_length(zns):
    zns.add_template("500001", [param("ten_khach_hang", max_length=5), param("note", required=False)])
    template = await client_for(zns).template_info("500001")
    assert template_data(template, {"customer_name": "Nguyễn Văn An"}, {}) == {"ten_khach_hang": "Nguyễ"}


async def test_ratings_are_read_page_by_page_from_the_rating_api(zns):
    client = client_for(zns)
    for number in range(3):
        await client.send_template(f"090123456{number}", "301245", {"customer_name": "An", "order_code": "DH1"},
                                   tracking_id=f"care-{number}")
    for number, message in enumerate(zns.zns_sent()):
        zns.rate(message, number + 3, note="ok" if number else "", feedbacks=["Giao hàng nhanh"])
    now = datetime.now(UTC)
    client.config.request_timeout_s = 5
    found = await client.ratings("301245", now - timedelta(days=1), now + timedelta(minutes=1))
    assert [r.stars for r in found] == [3, 4, 5]
    assert found[0].comment == "Giao hàng nhanh" and found[1].comment == "Giao hàng nhanh; ok"
    assert found[2].tracking_id == "care-2"


def test_webhook_events_are_read_as_receipts_and_ratings():
    receipt = parse_zns_event({"event_name": "user_received_message",
                               "message": {"msg_id": "abc", "delivery_time": "1767225600000"}})
    assert receipt == ZnsReceipt("abc", datetime(2026, 1, 1, tzinfo=UTC))
    rating = parse_zns_event({"event_name": "user_feedback", "message": {
        "msg_id": "abc", "rate": 2, "note": "Hộp bị móp", "feedbacks": ["Đóng gói kém"], "submit_time": "1767225600000"}})
    assert isinstance(rating, ZnsRating) and rating.stars == 2 and rating.comment == "Đóng gói kém; Hộp bị móp"
    assert parse_zns_event({"event_name": "user_send_text", "message": {"msg_id": "x"}}) is None
    with pytest.raises(ValueError, match="1-5"):
        parse_zns_event({"event_name": "user_feedback", "message": {"msg_id": "abc", "rate": 9}})
