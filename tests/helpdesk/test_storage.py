"""The schema, on SQLite and on the real PostgreSQL: migrations, constraints, time zones, indexes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from connectors.base import InboundMessage
from helpdesk.channels.service import record_inbound
from helpdesk.conversations.models import Conversation, Message
from helpdesk.core.db import alembic_config, make_engine, migrate
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.customers.service import identify_sender
from helpdesk.shop.models import Order, Warranty
from helpdesk.shop.service import load_shop_file
from tests.conftest import ROOT


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


def test_migrations_create_every_table_and_are_idempotent(engine):
    migrate(engine)  # a second run is a no-op
    tables = set(inspect(engine).get_table_names())
    assert {"customers", "channel_identities", "conversations", "messages", "products", "orders", "warranties",
            "ratings", "agents", "auth_tokens", "audit_log", "inbound_events", "outbox",
            "dialogue_states"} <= tables


def test_models_and_migrations_agree(engine):
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    command.check(config)  # raises if the models have changes no migration carries


def test_queue_and_sla_columns_are_indexed(engine):
    indexed = {tuple(index["column_names"]) for index in inspect(engine).get_indexes("conversations")}
    assert ("state", "priority", "escalated_at") in indexed
    assert ("first_response_due_at",) in indexed
    assert ("resolution_due_at",) in indexed


def test_one_identity_per_channel_account(engine):
    with Session(engine) as session:
        customer = Customer(name="Lan")
        session.add(customer)
        session.flush()
        session.add(ChannelIdentity(customer_id=customer.id, channel="telegram", external_id="42"))
        session.flush()
        session.add(ChannelIdentity(customer_id=customer.id, channel="telegram", external_id="42"))
        with pytest.raises(IntegrityError):
            session.flush()


def test_same_sender_on_two_channels_is_two_identities(engine):
    with Session(engine) as session:
        _, telegram = identify_sender(session, "telegram", "42", "Lan")
        _, cli = identify_sender(session, "cli", "42", "Lan")
        again, telegram_again = identify_sender(session, "telegram", "42", "Lan")
        session.commit()
        assert telegram.id == telegram_again.id
        assert telegram.id != cli.id


def test_channel_message_id_is_unique_per_channel_and_direction(engine):
    with Session(engine) as session:
        _, identity = identify_sender(session, "telegram", "42")
        conversation = Conversation(customer_id=identity.customer_id, identity_id=identity.id, channel="telegram")
        session.add(conversation)
        session.flush()
        common = {"conversation_id": conversation.id, "channel": "telegram", "author": "customer"}
        session.add(Message(direction="in", channel_message_id="100", **common))
        session.add(Message(direction="out", channel_message_id="100", **common))  # outbound ids are another space
        session.flush()
        session.add(Message(direction="in", channel_message_id="100", **common))
        with pytest.raises(IntegrityError):
            session.flush()


def test_duplicate_inbound_event_is_not_stored_twice(engine):
    message = InboundMessage(channel="telegram", sender_id="42", external_id="9001", text="alo")
    with Session(engine) as session:
        assert record_inbound(session, message, {"update_id": 9001}) is not None
        assert record_inbound(session, message, {"update_id": 9001}) is None
        session.commit()


def test_timestamps_come_back_in_utc(engine):
    moment = datetime(2026, 11, 20, 17, 0, tzinfo=UTC) + timedelta(microseconds=0)
    with Session(engine) as session:
        order = Order(code="DH999999", phone="0900000000", status="delivered", delivered_at=moment)
        session.add(order)
        session.commit()
    with Session(engine) as session:
        stored = session.exec(select(Order).where(Order.code == "DH999999")).one()
        assert stored.delivered_at == moment
        assert stored.delivered_at.tzinfo is not None


def test_naive_datetimes_are_refused(engine):
    with Session(engine) as session:
        session.add(Order(code="DH999998", phone="0900000000", delivered_at=datetime(2026, 1, 1)))
        with pytest.raises(Exception, match="naive datetime"):
            session.flush()


def test_demo_shop_loads_the_documented_orders_and_reloads_without_duplicates(engine):
    with Session(engine) as session:
        load_shop_file(session, ROOT / "data" / "demo" / "shop.yml")
        session.commit()
        load_shop_file(session, ROOT / "data" / "demo" / "shop.yml")
        session.commit()
        delivered = session.exec(select(Order).where(Order.code == "DH100001")).one()
        in_transit = session.exec(select(Order).where(Order.code == "DH100002")).one()
        warranty = session.exec(select(Warranty).where(Warranty.serial == "SN100001")).one()
        assert (delivered.phone, delivered.status) == ("0901234567", "delivered")
        assert (in_transit.phone, in_transit.status) == ("0912345678", "in_transit")
        assert warranty.order_id == delivered.id
        assert warranty.starts_at == delivered.delivered_at
        assert 365 <= (warranty.ends_at - warranty.starts_at).days <= 366
        assert len(session.exec(select(Order)).all()) == 2
