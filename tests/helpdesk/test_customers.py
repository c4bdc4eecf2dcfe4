"""One customer across channels: verified phones link identities; agents merge; one timeline."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from helpdesk.core.db import make_engine, migrate
from helpdesk.core.errors import BadRequest
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.customers.service import identify_sender, link_verified_phone, normalise_phone


@pytest.mark.parametrize("raw", ["0901234567", "090 123 4567", "090.123.4567", "+84 901 234 567",
                                 "84901234567", "+84-90-123-4567"])
def test_common_phone_formats_normalise_to_ten_digits(raw):
    assert normalise_phone(raw) == "0901234567"


@pytest.mark.parametrize("raw", ["12345", "0901234", "abc", "+1 415 555 0100"])
def test_non_vietnamese_mobiles_are_not_phones(raw):
    assert normalise_phone(raw) is None


@pytest.fixture
def session(sqlite_url):
    engine = make_engine(sqlite_url)
    migrate(engine)
    with Session(engine) as session:
        yield session
    engine.dispose()


def test_same_verified_phone_on_two_channels_links_them_to_one_customer(session):
    telegram_customer, _ = identify_sender(session, "telegram", "111")
    zalo_customer, _ = identify_sender(session, "cli", "zzz")
    link_verified_phone(session, telegram_customer, "0901234567")
    merged = link_verified_phone(session, zalo_customer, "+84 901 234 567")
    session.commit()
    assert merged.id == telegram_customer.id
    identities = session.exec(select(ChannelIdentity).where(ChannelIdentity.customer_id == merged.id)).all()
    assert {i.channel for i in identities} == {"telegram", "cli"}
    assert session.get(Customer, zalo_customer.id).merged_into_id == merged.id
    # the merged identity now speaks as the primary customer
    again, _ = identify_sender(session, "cli", "zzz")
    assert again.id == merged.id


def test_an_invalid_phone_is_refused(session):
    customer, _ = identify_sender(session, "telegram", "222")
    with pytest.raises(BadRequest):
        link_verified_phone(session, customer, "12")


async def test_agent_merges_two_customers_and_sees_one_timeline(client):
    for sender, text in (("visitor-a", "bảo hành bao lâu vậy shop"), ("visitor-b", "cho mình gặp nhân viên")):
        response = await client.post("/webhooks/cli", json={"sender_id": sender, "message_id": f"{sender}-1",
                                                           "text": text})
        assert response.status_code == 200
        await client.settle()  # one after the other, so the timeline order is known
    headers = await client.login()
    conversations = (await client.get("/api/conversations", headers=headers)).json()["data"]
    first, second = sorted({c["customer_id"] for c in conversations})
    merged = await client.post(f"/api/customers/{first}/merge", json={"other_id": second}, headers=headers)
    assert merged.status_code == 200
    assert len(merged.json()["identities"]) == 2
    timeline = (await client.get(f"/api/customers/{second}/timeline", headers=headers)).json()
    assert timeline["customer_id"] == first
    texts = [m["text"] for m in timeline["data"] if m["author"] == "customer"]
    assert texts == ["bảo hành bao lâu vậy shop", "cho mình gặp nhân viên"]


async def test_merging_a_customer_into_itself_is_400(client):
    await client.post("/webhooks/cli", json={"sender_id": "solo", "message_id": "solo-1", "text": "alo"})
    await client.settle()
    headers = await client.login()
    customer_id = (await client.get("/api/conversations", headers=headers)).json()["data"][0]["customer_id"]
    response = await client.post(f"/api/customers/{customer_id}/merge", json={"other_id": customer_id},
                                 headers=headers)
    assert response.status_code == 400


async def test_unknown_customer_is_404(client):
    headers = await client.login()
    assert (await client.get("/api/customers/999", headers=headers)).status_code == 404
