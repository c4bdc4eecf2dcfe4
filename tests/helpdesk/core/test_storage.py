"""The schema, on SQLite and on the real PostgreSQL: migrations, constraints, time zones, indexes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from connectors.base import InboundMessage
from helpdesk.channels.models import InboundEvent, InboundOutcome
from helpdesk.channels.service import PendingEvent, pending_events, record_inbound
from helpdesk.conversations.turns import settle_event
from helpdesk.conversations.models import Conversation, Message
from helpdesk.channels.ledger import INBOUND_SCHEMA, inbound_database_path, make_database_engine
from helpdesk.core.db import alembic_config, migrate
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.customers.service import identify_sender
from helpdesk.shop.models import Order, Warranty
from helpdesk.shop.service import load_shop_file
from tests.conftest import ROOT


@pytest.fixture
def engine(database_url):
    engine = make_database_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


def test_migrations_create_every_table_and_are_idempotent(engine):
    migrate(engine)  # a second run is a no-op
    tables = set(inspect(engine).get_table_names())
    assert {"customers", "channel_identities", "conversations", "messages", "products", "orders", "warranties",
            "ratings", "agents", "auth_tokens", "audit_log", "inbound_outcomes", "outbox",
            "dialogue_states"} <= tables
    # on a SQLite file the inbound ledger is a file of its own beside the database, attached
    ledger_file = inbound_database_path(engine.url.render_as_string(hide_password=False))
    if engine.dialect.name == "sqlite":
        assert "inbound_events" not in tables and ledger_file.exists()
        assert inspect(engine).get_table_names(schema=INBOUND_SCHEMA) == ["inbound_events"]
    else:
        assert "inbound_events" in tables and ledger_file is None


def _event(external_id: str) -> InboundMessage:
    return InboundMessage(channel="telegram", external_id=external_id, sender_id="42", kind="message", text="hi")


def test_events_settled_before_the_ledger_moved_stay_settled(database_url):
    """Upgrading a database from before the ledger's move: what became of each event moves to
    inbound_outcomes, the events themselves (on SQLite) into the ledger's file, and only the one
    still waiting is pending."""
    engine = make_database_engine(database_url)
    config = alembic_config(database_url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0008")
    with engine.begin() as connection:
        for number, status in enumerate(("processed", "failed", "received", "ignored"), 1):
            connection.execute(text(
                "INSERT INTO {} (channel, external_id, sender_id, kind, message, status, error, received_at, "
                "processed_at) VALUES ('telegram', :external_id, '42', 'message', '{{}}', :status, :error, "
                ":received_at, :processed_at)".format(
                    "main.inbound_events" if engine.dialect.name == "sqlite" else "inbound_events")),
                {"external_id": f"e{number}", "status": status,
                 "error": "boom" if status == "failed" else None, "received_at": datetime(2026, 12, 1, 10, number),
                 "processed_at": datetime(2026, 12, 1, 11) if status in ("processed", "failed") else None})
    migrate(engine)
    with Session(engine) as session:
        outcomes = session.exec(select(InboundOutcome).order_by(InboundOutcome.event_id)).all()
        assert [(o.event_id, o.status, o.error) for o in outcomes] == [(1, "processed", None), (2, "failed", "boom")]
        assert outcomes[0].processed_at == datetime(2026, 12, 1, 11, tzinfo=UTC)
        assert [(e.id, e.status) for e in session.exec(select(InboundEvent).order_by(InboundEvent.id))] == [
            (1, "received"), (2, "received"), (3, "received"), (4, "ignored")]
        pending, after = pending_events(session)
        assert [event.id for event in pending] == [3] and after == 2
        assert record_inbound(session, _event("e5"), {}).id == 5
    engine.dispose()


def test_an_event_is_settled_once(engine):
    """The second worker to settle an event learns that it was first settled by another."""
    with Session(engine) as session:
        event = record_inbound(session, _event("once"), {})
        connection, now = session.connection(), datetime.now(UTC)
        assert settle_event(connection, event.id, now)
        assert not settle_event(connection, event.id, now, "a later failure")
        session.commit()
        assert session.get(InboundOutcome, event.id).status == "processed"


def test_a_lost_ledger_file_starts_after_the_settled_events(sqlite_url):
    """A new ledger beside a database with settled events must not hand out their ids again: a new
    event would be taken for the settled one and never answered."""
    engine = make_database_engine(sqlite_url)
    with Session(engine) as session:
        for number in range(1, 4):
            event = record_inbound(session, _event(f"old-{number}"), {})
            assert settle_event(session.connection(), event.id, datetime.now(UTC))
        session.commit()
    engine.dispose()
    inbound_database_path(sqlite_url).unlink()

    engine = make_database_engine(sqlite_url)
    with Session(engine) as session:
        fresh = record_inbound(session, _event("new-1"), {})
        session.commit()
        assert fresh.id == 4 and pending_events(session) == ([PendingEvent(4, "telegram", "42")], 3)
    engine.dispose()


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


def test_the_ledger_move_can_be_undone_and_redone(database_url):
    engine = make_database_engine(database_url)
    migrate(engine)
    with Session(engine) as session:
        for number in range(3):
            event = record_inbound(session, _event(f"r{number}"), {})
            if number < 2:
                settle_event(session.connection(), event.id, datetime.now(UTC), None if number == 0 else "err")
        session.commit()
    config = alembic_config(database_url)
    for step in (command.downgrade, command.upgrade):
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            step(config, "0008" if step is command.downgrade else "head")
        if step is command.downgrade:
            with engine.connect() as connection:
                assert connection.exec_driver_sql(
                    "SELECT id, status, error FROM inbound_events ORDER BY id").all() == [
                    (1, "processed", None), (2, "failed", "err"), (3, "received", None)]
    with Session(engine) as session:
        assert [(o.event_id, o.status) for o in session.exec(select(InboundOutcome))] == [
            (1, "processed"), (2, "failed")]
        assert [event.id for event in pending_events(session)[0]] == [3]
    engine.dispose()


def test_poison_text_from_a_channel_is_stored_with_its_raw_event(engine):
    """A lone surrogate or a NUL (any web chat visitor can send either) is stored: the message's
    text and sender name cleaned, the raw event as it came."""
    raw = {"update_id": 77, "message": {"text": "alo \ud800 x\x00y", "\udfff": ["\ud83d"]}}
    message = InboundMessage(channel="telegram", sender_id="42", external_id="poison-1",
                             text=raw["message"]["text"], sender_name="Lan\ud800", metadata={"caption": "\udc00"})
    with Session(engine) as session:
        event = record_inbound(session, message, raw)
        customer, identity = identify_sender(session, message.channel, message.sender_id, message.sender_name)
        conversation = Conversation(customer_id=customer.id, identity_id=identity.id, channel=identity.channel)
        session.add(conversation)
        session.flush()
        session.add(Message(conversation_id=conversation.id, direction="in", author="customer",
                            channel=message.channel, text=message.text))
        session.commit()
    with Session(engine) as session:
        stored = session.get(InboundEvent, event.id)
        assert stored.raw == raw
        assert stored.message["text"] == "alo \ufffd x\ufffdy"
        assert stored.message["sender_name"] == "Lan\ufffd"
        assert stored.message["metadata"] == {"caption": "\ufffd"}
        assert session.exec(select(Message.text)).one() == "alo \ufffd x\ufffdy"

