"""Ratings without HTTP, through the customer directory the bot uses: which request a bare "5"
answers, what a rating is stored against, whose ratings are ignored."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, select

from helpdesk.conversations.models import Conversation
from helpdesk.ratings import service
from helpdesk.ratings.models import Rating, RatingRequest
from helpdesk.shop.models import Order
from tests.helpdesk.care.conftest import make_customer, make_order


def ask_for_rating(wiring, customer_id: int, subject: str, sent_at: datetime) -> None:
    from helpdesk.customers.models import Customer

    with Session(wiring.engine) as session:
        service.request_rating(session, session.get(Customer, customer_id), subject, sent_at)
        session.commit()


async def test_pending_rating_subject_is_the_newest_unanswered_request_of_the_week(wiring, clock):
    customer_id, _ = make_customer(wiring.engine)
    directory = wiring.customers
    ask_for_rating(wiring, customer_id, "order:DH100001", clock.now - timedelta(days=8))
    assert await directory.pending_rating_subject(customer_id) is None  # too old to match a bare "5"

    ask_for_rating(wiring, customer_id, "order:DH200001", clock.now - timedelta(hours=2))
    ask_for_rating(wiring, customer_id, "conversation:7", clock.now - timedelta(hours=1))
    assert await directory.pending_rating_subject(customer_id) == "conversation:7"


async def test_recording_an_order_rating_stores_a_delivery_rating_and_answers_the_request(wiring, clock):
    make_order(wiring.engine, "DH200001")
    customer_id, _ = make_customer(wiring.engine)
    ask_for_rating(wiring, customer_id, "order:DH200001", clock.now)
    directory = wiring.customers

    kind = await directory.record_rating(customer_id, "order:DH200001", 4)
    await directory.record_rating(customer_id, "order:DH200001", 2)  # changed their mind
    await directory.add_rating_comment(customer_id, "order:DH200001", "hộp bị móp")

    assert kind == "delivery"
    with Session(wiring.engine) as session:
        order = session.exec(select(Order)).one()
        ratings = session.exec(select(Rating)).all()
        request = session.exec(select(RatingRequest)).one()
    assert [(r.kind, r.score, r.order_id, r.comment) for r in ratings] == [
        ("delivery", 2, order.id, "hộp bị móp")]
    assert request.answered_at == clock.now and request.rating_id == ratings[0].id
    assert await directory.pending_rating_subject(customer_id) is None


async def test_recording_a_conversation_rating_stores_csat_for_the_agent(wiring):
    from helpdesk.agents.models import Agent

    customer_id, identity_id = make_customer(wiring.engine)
    with Session(wiring.engine) as session:
        agent = session.exec(select(Agent)).first()
        conversation = Conversation(customer_id=customer_id, identity_id=identity_id, channel="cli",
                                    assignee_id=agent.id, state="resolved")
        session.add(conversation)
        session.commit()
        conversation_id, agent_id = conversation.id, agent.id

    directory = wiring.customers
    kind = await directory.record_rating(customer_id, f"conversation:{conversation_id}", 5)

    assert kind == "csat"
    with Session(wiring.engine) as session:
        rating = session.exec(select(Rating)).one()
    assert (rating.kind, rating.conversation_id, rating.agent_id, rating.score) == (
        "csat", conversation_id, agent_id, 5)


async def test_a_rating_of_someone_elses_order_is_ignored(wiring):
    make_order(wiring.engine, phone="0987654321")
    customer_id, _ = make_customer(wiring.engine, phone="0901234567")

    kind = await wiring.customers.record_rating(customer_id, "order:DH200001", 1)

    assert kind == "ignored"
    with Session(wiring.engine) as session:
        assert session.exec(select(Rating)).all() == []
