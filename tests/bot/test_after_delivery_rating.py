"""After delivery, through the real app and the bot: the rating request, a typed low rating, the
follow-up question, and the escalation — and a high rating pressed as a button."""

from __future__ import annotations

from sqlmodel import Session, select

from helpdesk.care.tasks import run_due_care_messages
from helpdesk.ratings.models import Rating
from helpdesk.shop.service import load_shop_file
from tests.conftest import ROOT
from tests.helpdesk.care.conftest import FakeClock, local

SENDER = "rater"


async def deliver_and_ask_for_a_rating(client) -> tuple[dict, FakeClock]:
    clock = FakeClock(local("2026-03-02 10:00"))
    client.wiring.clock.use(clock)
    with Session(client.wiring.engine) as session:
        load_shop_file(session, ROOT / "data" / "demo" / "shop.yml")
        session.commit()
    headers = await client.login()
    delivered = await client.post("/api/orders/DH100002/delivered", headers=headers,
                                  json={"channel": "cli", "external_id": SENDER})
    assert delivered.status_code == 200, delivered.text
    await client.settle()
    clock.advance(hours=25)
    await run_due_care_messages(client.wiring.care)
    await client.settle()
    return headers, clock


async def say(client, text: str, n: int, payload: str | None = None) -> list[str]:
    before = (await client.get("/webhooks/cli/messages", params={"sender_id": SENDER})).json()["data"]
    await client.post("/webhooks/cli", json={"sender_id": SENDER, "message_id": f"r{n}", "text": text,
                                             "payload": payload})
    await client.settle()
    after = (await client.get("/webhooks/cli/messages", params={"sender_id": SENDER})).json()["data"]
    return [m["text"] for m in after[len(before):]]


async def test_a_typed_low_rating_asks_what_went_wrong_and_escalates_with_high_priority(client):
    headers, _ = await deliver_and_ask_for_a_rating(client)
    texts = [m["text"] for m in (await client.get("/webhooks/cli/messages", params={"sender_id": SENDER})).json()[
        "data"]]
    assert any("1" in t and "5" in t for t in texts[1:]), texts  # the rating request went out
    replies = await say(client, "2", 1)
    assert any("điều gì chưa tốt" in r for r in replies), replies
    replies = await say(client, "nồi bị trầy xước một góc, giao hàng lại chậm", 2)
    assert any("ưu tiên" in r for r in replies), replies
    conversation = (await client.get("/api/conversations", headers=headers)).json()["data"][0]
    assert (conversation["state"], conversation["priority"], conversation["escalation_reason"]) == (
        "waiting_for_agent", "high", "low_rating")
    with Session(client.wiring.engine) as session:
        rating = session.exec(select(Rating)).one()
    assert (rating.kind, rating.score) == ("delivery", 2)
    assert "trầy xước" in rating.comment


async def test_a_five_star_button_is_thanked_with_a_review_invitation(client):
    await deliver_and_ask_for_a_rating(client)
    replies = await say(client, "⭐⭐⭐⭐⭐", 1, payload="rating:order:DH100002:5")
    assert any("5 sao" in r and "danh-gia" in r for r in replies), replies
    with Session(client.wiring.engine) as session:
        rating = session.exec(select(Rating)).one()
    assert (rating.kind, rating.score) == ("delivery", 5)
