"""GET /api/customers/{id}/timeline: one customer's events on every channel, newest first, a page at a
time, and only what the agent may see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select

from helpdesk.care.models import CareMessage, CarePlan
from helpdesk.conversations.models import Conversation, ConversationTag, Message
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.ratings.models import Rating
from helpdesk.shop.models import Order, Product, Warranty
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.helpdesk.customers.test_customers import customer_in_team, make_agent

T0 = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)


def at(hours: float) -> datetime:
    """A moment ``hours`` after T0."""
    return T0 + timedelta(hours=hours)


def seed_history(engine) -> dict:
    """A customer on Telegram and Zalo with one conversation on each, a note, a tag, an order with a
    warranty, a delivery rating and a care message the customer answered; the ids involved."""
    with Session(engine) as session:
        customer = Customer(name="Chị Lan", phone="0901234567", phone_verified=True)
        session.add(customer)
        session.flush()
        telegram = ChannelIdentity(customer_id=customer.id, channel="telegram", external_id="tg-lan")
        zalo = ChannelIdentity(customer_id=customer.id, channel="zalo_oa", external_id="zl-lan")
        session.add_all([telegram, zalo])
        session.flush()
        first = Conversation(customer_id=customer.id, identity_id=telegram.id, channel="telegram", state="resolved",
                             created_at=at(0), resolved_at=at(2))
        second = Conversation(customer_id=customer.id, identity_id=zalo.id, channel="zalo_oa", state="with_agent",
                              created_at=at(50))
        session.add_all([first, second])
        session.flush()
        session.add_all([
            Message(conversation_id=first.id, direction="in", author="customer", channel="telegram",
                    text="nồi cơm bị lỗi E3", created_at=at(0)),
            Message(conversation_id=first.id, direction="out", author="agent", channel="telegram",
                    text="khách cũ, ưu tiên", is_private=True, created_at=at(1)),
            Message(conversation_id=second.id, direction="in", author="customer", channel="zalo_oa",
                    text="cảm ơn shop", created_at=at(50)),
            ConversationTag(conversation_id=first.id, tag="complaint", created_at=at(1.5)),
        ])
        session.add(Product(sku="RC-18", name="Nồi cơm điện 1.8L", name_en="1.8L rice cooker"))
        session.flush()
        product = session.exec(select(Product).where(Product.sku == "RC-18")).one()
        order = Order(code="DH900001", phone="0901234567", customer_id=customer.id, status="delivered",
                      items=[{"sku": "RC-18", "qty": 1}], total_vnd=1290000, created_at=at(10),
                      delivered_at=at(30))
        session.add(order)
        session.flush()
        session.add(Warranty(serial="SN-1", product_id=product.id, order_id=order.id, starts_at=at(30),
                             ends_at=at(30) + timedelta(days=365)))
        session.add(Rating(kind="delivery", score=5, customer_id=customer.id, order_id=order.id, created_at=at(40)))
        session.add(CarePlan(order_id=order.id, delivered_at=at(30)))
        care = CareMessage(order_id=order.id, identity_id=zalo.id, kind="check_in", planned_at=at(48),
                           due_at=at(48), status="sent", sent_at=at(48))
        session.add(care)
        session.commit()
        return {"customer": customer.id, "first": first.id, "second": second.id, "order": order.id,
                "care": care.id}


async def test_the_timeline_lists_every_kind_of_event_newest_first(client):
    ids = seed_history(client.wiring.engine)
    headers = await client.login()
    response = await client.get(f"/api/customers/{ids['customer']}/timeline", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["customer_id"] == ids["customer"] and body["next_cursor"] is None
    assert [(e["kind"], e["channel"]) for e in body["data"]] == [
        ("conversation_opened", "zalo_oa"),  # 50 h
        ("care_message", "zalo_oa"),  # 48 h
        ("rating", None),  # 40 h
        ("warranty", None),  # 30 h
        ("order", None),  # 10 h
        ("conversation_resolved", "telegram"),  # 2 h
        ("tag", "telegram"),  # 1.5 h
        ("note", "telegram"),  # 1 h
        ("conversation_opened", "telegram"),  # 0 h
    ]
    events = {e["kind"]: e for e in body["data"]}
    stamps = [datetime.fromisoformat(e["at"]) for e in body["data"]]
    assert stamps == sorted(stamps, reverse=True)
    # the customer's "cảm ơn shop" two hours after the check-in counts as a reply to it
    care = events["care_message"]["details"]
    assert (care["step"], care["status"], care["replied"], care["order_code"]) == (
        "check_in", "sent", True, "DH900001")
    assert events["warranty"]["details"]["serial"] == "SN-1"
    assert events["order"]["details"]["code"] == "DH900001"
    assert (events["rating"]["details"]["score"], events["tag"]["details"]["tag"]) == (5, "complaint")
    assert events["note"]["details"]["text"] == "khách cũ, ưu tiên"
    opened = [e for e in body["data"] if e["kind"] == "conversation_opened"]
    assert opened[1]["details"]["first_text"] == "nồi cơm bị lỗi E3"
    assert opened[1]["details"]["messages"] == 1  # the private note is not a message to the customer


async def test_a_care_message_without_an_answer_is_not_replied(client):
    ids = seed_history(client.wiring.engine)
    with Session(client.wiring.engine) as session:
        care = session.get(CareMessage, ids["care"])
        care.sent_at = at(60)  # after the customer's last message
        session.add(care)
        session.commit()
    headers = await client.login()
    body = (await client.get(f"/api/customers/{ids['customer']}/timeline", headers=headers)).json()
    [care_event] = [e for e in body["data"] if e["kind"] == "care_message"]
    assert care_event["details"]["replied"] is False and care_event["details"]["read"] is False


async def test_the_timeline_pages_with_a_cursor_without_gaps_or_repeats(client):
    ids = seed_history(client.wiring.engine)
    headers = await client.login()
    url = f"/api/customers/{ids['customer']}/timeline"
    whole = (await client.get(url, headers=headers)).json()["data"]
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(url, params=params, headers=headers)).json()
        assert len(page["data"]) <= 2
        seen += page["data"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 5 and seen == whole


async def test_a_cursor_the_server_did_not_make_is_a_clear_400(client):
    ids = seed_history(client.wiring.engine)
    headers = await client.login()
    for cursor in ("nonsense", "eyJhIjogMX0", "W10"):
        response = await client.get(f"/api/customers/{ids['customer']}/timeline", params={"cursor": cursor},
                                    headers=headers)
        assert response.status_code == 400, cursor
        assert "cursor" in response.json()["detail"]
    too_many = await client.get(f"/api/customers/{ids['customer']}/timeline", params={"limit": 1000},
                                headers=headers)
    assert too_many.status_code == 422


async def test_an_unknown_customer_has_no_timeline(client):
    headers = await client.login()
    response = await client.get("/api/customers/987654/timeline", headers=headers)
    assert response.status_code == 404
    assert response.json() == {"detail": "customer 987654 not found"}


async def test_merged_identities_show_in_the_timeline_of_either_id(client):
    admin = await client.login()
    first, _ = await customer_in_team(client, admin, "tl-merge-1", None)
    second, _ = await customer_in_team(client, admin, "tl-merge-2", None)
    assert (await client.post(f"/api/customers/{first}/merge", json={"other_id": second},
                              headers=admin)).status_code == 200
    body = (await client.get(f"/api/customers/{second}/timeline", headers=admin)).json()
    assert body["customer_id"] == first
    merged = body["data"][0]
    assert (merged["kind"], merged["details"]["merged_customer_id"]) == ("identity_merged", second)
    assert sum(e["kind"] == "conversation_opened" for e in body["data"]) == 2


async def test_an_agent_does_not_see_the_conversations_of_another_team_in_the_timeline(client):
    admin = await client.login()
    care = await make_agent(client, admin, "tl-care@test.local", teams=("care",))
    customer_id, visible = await customer_in_team(client, admin, "tl-scope-1", "care")
    other_customer, hidden = await customer_in_team(client, admin, "tl-scope-2", "technical")
    with Session(client.wiring.engine) as session:
        # the same person wrote twice: both conversations are theirs, only one is the care team's
        session.get(Conversation, hidden).customer_id = customer_id
        session.add(ConversationTag(conversation_id=hidden, tag="secret-tag"))
        session.add(Message(conversation_id=hidden, direction="out", author="agent", channel="cli",
                            text="ghi chú kỹ thuật", is_private=True))
        session.add(Rating(kind="csat", score=1, customer_id=customer_id, conversation_id=hidden))
        session.commit()
    mine = (await client.get(f"/api/customers/{customer_id}/timeline", headers=care)).json()["data"]
    assert {e["conversation_id"] for e in mine} == {visible}
    everything = (await client.get(f"/api/customers/{customer_id}/timeline", headers=admin)).json()["data"]
    assert {e["conversation_id"] for e in everything} == {visible, hidden}
    assert {"tag", "note", "rating"} <= {e["kind"] for e in everything if e["conversation_id"] == hidden}
    assert other_customer != customer_id


def test_the_timeline_reads_the_same_on_sqlite_and_postgresql(database_url):
    from helpdesk.agents.models import Agent
    from helpdesk.channels.ledger import make_database_engine
    from helpdesk.core.db import migrate
    from helpdesk.customers.timeline import customer_events, timeline_page

    engine = make_database_engine(database_url)
    try:
        migrate(engine)  # every migration, products.care_schedule included
        ids = seed_history(engine)
        with Session(engine) as session:
            admin = Agent(email="tl-admin@test.local", name="admin", password_hash="x", role="admin")
            events = customer_events(session, admin, session.get(Customer, ids["customer"]))
            first, cursor = timeline_page(events, None, 4)
            rest, end = timeline_page(events, cursor, 50)
        assert [e.kind for e in first + rest] == [
            "conversation_opened", "care_message", "rating", "warranty", "order", "conversation_resolved", "tag",
            "note", "conversation_opened"]
        assert end is None and events[-1].details["first_text"] == "nồi cơm bị lỗi E3"
        assert events[1].details["replied"] is True
    finally:
        engine.dispose()


async def test_the_page_of_a_merged_customer_sends_the_agent_to_the_one_it_was_merged_into(client):
    admin = await client.login()
    first, _ = await customer_in_team(client, admin, "tl-page-1", None)
    second, _ = await customer_in_team(client, admin, "tl-page-2", None)
    await client.post(f"/api/customers/{first}/merge", json={"other_id": second}, headers=admin)
    login = await client.post("/api/auth/session", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert login.status_code == 200, login.text  # the page reads the session cookie, as in a browser
    moved = await client.get(f"/inbox/customers/{second}")
    assert (moved.status_code, moved.headers["location"]) == (303, f"/inbox/customers/{first}")
    page = await client.get(f"/inbox/customers/{first}")
    assert page.status_code == 200 and 'id="ct-events"' in page.text
    missing = await client.get("/inbox/customers/424242")
    assert missing.status_code == 404 and 'id="ct-notfound"' in missing.text


async def test_nps_answers_take_their_place_in_the_timeline_with_score_comment_channel_and_order(client):
    """Answered surveys are ``nps`` events at the moment of the answer, newest first with the rest;
    a survey still waiting for its answer is no event."""
    from helpdesk.nps.models import NpsResponse

    ids = seed_history(client.wiring.engine)
    with Session(client.wiring.engine) as session:
        session.add_all([
            NpsResponse(customer_id=ids["customer"], order_id=ids["order"], channel="zalo_oa", product_sku="RC-18",
                        asked_at=at(44), score=9, comment="nồi nấu ngon", at=at(45)),
            NpsResponse(customer_id=ids["customer"], conversation_id=ids["first"], channel="telegram",
                        trigger="resolved", asked_at=at(3), score=4, at=at(3.5)),
            NpsResponse(customer_id=ids["customer"], channel="telegram", asked_at=at(49)),  # not answered
        ])
        session.commit()
    headers = await client.login()
    body = (await client.get(f"/api/customers/{ids['customer']}/timeline", headers=headers)).json()
    assert [(e["kind"], e["channel"]) for e in body["data"]] == [
        ("conversation_opened", "zalo_oa"),  # 50 h
        ("care_message", "zalo_oa"),  # 48 h
        ("nps", "zalo_oa"),  # 45 h
        ("rating", None),  # 40 h
        ("warranty", None),  # 30 h
        ("order", None),  # 10 h
        ("nps", "telegram"),  # 3.5 h
        ("conversation_resolved", "telegram"),  # 2 h
        ("tag", "telegram"),  # 1.5 h
        ("note", "telegram"),  # 1 h
        ("conversation_opened", "telegram"),  # 0 h
    ]
    after_order, after_chat = [e for e in body["data"] if e["kind"] == "nps"]
    assert datetime.fromisoformat(after_order["at"]) == at(45)
    assert {k: after_order["details"][k] for k in ("score", "comment", "channel", "order_id", "order_code")} == {
        "score": 9, "comment": "nồi nấu ngon", "channel": "zalo_oa", "order_id": ids["order"],
        "order_code": "DH900001"}
    assert (after_chat["details"]["score"], after_chat["details"]["order_id"], after_chat["conversation_id"]) == (
        4, None, ids["first"])
