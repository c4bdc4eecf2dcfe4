"""A bot turn stores its answer in plain statements (``conversations.turns``), however it reached
them: a first contact or a known customer, an answer or an escalation. These tests run the same
customer message with the same bot decision through the turn and through the ORM services the rest
of CareDesk writes the same rows with (``identify_sender``, ``add_message``, ``queue_outbound``,
``escalate``, ``save_in``), each in a database of its own, and compare every table afterwards,
ids and timestamps aside: a column that one side writes and the other does not fails them. Both on
SQLite and on PostgreSQL, as the statements differ by dialect."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import DateTime, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from bot import Decision
from bot.context import Escalation
from connectors.base import Button, InboundMessage, OutboundButtons, OutboundText
from helpdesk.channels.ledger import inbound_database_path, make_database_engine
from helpdesk.channels.models import EventStatus, InboundAttempt, InboundOutcome
from helpdesk.channels.service import record_inbound
from helpdesk.conversations import flows, turns
from helpdesk.conversations import service as conversations
from helpdesk.conversations.models import DeliveryStatus, MessageAuthor
from helpdesk.conversations.state_store import DatabaseStateStore, save_in
from helpdesk.conversations.turns_at_once import store_answer_at_once
from helpdesk.core.config import WorkerSettings
from helpdesk.core.db import migrate, reading, utcnow
from helpdesk.core.events import EventBus
from helpdesk.customers.service import identify_sender
from helpdesk.outbox.models import OutboxItem
from helpdesk.outbox.queue import queue_outbound
from nlu.model import IntentPrediction, ParseResult
from tests.conftest import require_service, reset_postgres

SENDER = "7001"
INBOUND = InboundMessage(channel="telegram", sender_id=SENDER, external_id="tg-55", text="đơn DH1234 của mình đâu rồi",
                         sender_name="Lan")
#: what the bot's flow leaves in the dialogue state
STATE_AFTER = {"slots": {"order_code": "DH1234"}, "fallbacks": 0}


def decision(escalate: bool) -> Decision:
    """The bot's answer to INBOUND: two replies, its reading, and possibly a handoff."""
    intent = IntentPrediction("order_status", 0.93)
    return Decision(
        locale="vi",
        replies=[OutboundText(recipient_id=SENDER, text="Shop kiểm tra đơn DH1234 ngay ạ"),
                 OutboundButtons(recipient_id=SENDER, text="Bạn cần gì thêm?",
                                 buttons=(Button(title="Gặp nhân viên", payload="/handoff"),))],
        nlu=ParseResult(text=INBOUND.text, intent=intent, intent_ranking=[intent]),
        escalation=Escalation("customer_request", "high") if escalate else None,
    )


class _Bot:
    def __init__(self, engine: Engine, decision: Decision):
        self.state_store = DatabaseStateStore(engine)
        self._decision = decision

    async def handle(self, turn: Any, state: dict[str, Any]) -> Decision:
        state.clear()
        state.update(STATE_AFTER)
        return self._decision


class _Outbox:
    """Takes what the turn hands over for sending; sends nothing (no rows change after the turn)."""

    def __init__(self) -> None:
        self.handed: list[list[OutboxItem]] = []

    async def send_in_order(self, channel: str, items: list[OutboxItem]) -> list:
        self.handed.append(items)
        return []

    async def drain(self, channel: str, recipient_id: str) -> int:
        raise AssertionError("nothing was waiting in this chat")


def _flow(engine: Engine, decision: Decision) -> flows.ConversationFlow:
    """What a turn uses: the database, a bot that decides ``decision``, an outbox that records."""
    return flows.ConversationFlow(engine, _Bot(engine, decision), EventBus(), {}, _Outbox(), WorkerSettings())


def record_event(engine: Engine) -> int:
    with Session(engine) as session:
        recorded = record_inbound(session, INBOUND, raw={"update_id": 55})
        session.commit()
    return recorded.id


async def turn_by_flows(engine: Engine, decision: Decision) -> _Outbox:
    flow = _flow(engine, decision)
    event_id = record_event(engine)
    event = flows.next_waiting_event(flow, INBOUND.channel, SENDER, event_id)
    await flows.take_turn(flow, event)
    return flow.outbox


def turn_by_orm(engine: Engine, decision: Decision) -> None:
    """The same turn written with the ORM services, as one transaction."""
    event_id = record_event(engine)
    with Session(engine, expire_on_commit=False) as session:
        customer, identity = identify_sender(session, INBOUND.channel, SENDER, INBOUND.sender_name)
        conversation = conversations.open_conversation(session, identity)
        message = conversations.add_message(session, conversation, direction="in", author=MessageAuthor.customer,
                                            text=INBOUND.text, channel_message_id=INBOUND.external_id,
                                            payload=INBOUND.payload, attachments=[])
        message.nlu = decision.nlu.to_rasa()
        for reply in decision.replies:
            stored = conversations.add_message(session, conversation, direction="out", author=MessageAuthor.bot,
                                               text=reply.text, delivery_status=DeliveryStatus.pending)
            queue_outbound(session, conversation, stored, reply.model_dump(mode="json"), reply.recipient_id)
        if decision.escalation is not None:
            conversations.escalate(session, conversation, decision.escalation.reason, decision.escalation.priority)
        save_in(session, f"conversation:{conversation.id}", dict(STATE_AFTER))
        session.add(InboundOutcome(event_id=event_id, status=EventStatus.processed))
        session.commit()


def known_customer(engine: Engine) -> None:
    """The customer wrote before: their identity and open conversation exist."""
    with Session(engine) as session:
        _, identity = identify_sender(session, INBOUND.channel, SENDER, INBOUND.sender_name)
        conversations.open_conversation(session, identity)
        session.commit()


def _plain(value: Any) -> Any:
    """A value with its timestamps reduced to whether they are set (they differ between runs)."""
    if isinstance(value, datetime):
        return "<time>"
    if isinstance(value, dict):
        return {key: ("<time>" if key.endswith("_at") and item else _plain(item)) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def rows(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every table's rows in insertion order, ids and timestamps aside (foreign keys kept: both
    databases start as the same copy and insert in the same order)."""
    snapshot = {}
    with engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            if table.name == "inbound_events":  # the ledger: written by the same record_inbound on both sides
                continue
            order = list(table.primary_key.columns)
            found = connection.execute(select(table).order_by(*order)).mappings().all()
            snapshot[table.name] = [
                {name: ("<time>" if isinstance(table.c[name].type, DateTime) and value is not None else _plain(value))
                 for name, value in row.items() if name != "id"}
                for row in found
            ]
    return snapshot


#: PostgreSQL migrates each new database (seconds a test): in the full run, not the fast one
@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[Callable[[], Engine]]:
    """Gives a new, migrated database each call (on PostgreSQL the test database, emptied again; the
    previous one's engine is closed)."""
    engines: list[Engine] = []

    def fresh() -> Engine:
        for engine in engines:
            engine.dispose()
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path}/copy{len(engines)}.db"
            shutil.copyfile(sqlite_template, tmp_path / f"copy{len(engines)}.db")
            shutil.copyfile(inbound_database_path(f"sqlite:///{sqlite_template}"), inbound_database_path(url))
            engines.append(make_database_engine(url))
        else:
            url = require_service("CAREDESK_TEST_POSTGRES_URL")
            reset_postgres(url)
            engines.append(make_database_engine(url))
            migrate(engines[-1])
        return engines[-1]

    yield fresh
    for engine in engines:
        engine.dispose()


def assert_same_rows(by_turn: dict[str, list[dict[str, Any]]], by_orm: dict[str, list[dict[str, Any]]]) -> None:
    assert by_turn.keys() == by_orm.keys()
    for table in by_turn:
        assert by_turn[table] == by_orm[table], f"the turn and the ORM services wrote {table} differently"


@pytest.mark.parametrize("first_contact", [True, False], ids=["first_contact", "known_customer"])
@pytest.mark.parametrize("escalates", [False, True], ids=["answer", "escalation"])
async def test_a_turn_writes_the_rows_the_orm_services_would(fresh_database, first_contact, escalates):
    turn = fresh_database()
    if not first_contact:
        known_customer(turn)
    outbox = await turn_by_flows(turn, decision(escalates))
    by_turn = rows(turn)
    orm = fresh_database()
    if not first_contact:
        known_customer(orm)
    turn_by_orm(orm, decision(escalates))

    assert_same_rows(by_turn, rows(orm))
    # the comparison is about something: the turn stored its message, replies, queue and outcome
    assert [m["author"] for m in by_turn["messages"]] == ["customer", "bot", "bot"]
    assert [o["status"] for o in by_turn["outbox"]] == ["pending", "pending"]
    assert [o["status"] for o in by_turn["inbound_outcomes"]] == ["processed"]
    assert by_turn["conversations"][0]["state"] == ("waiting_for_agent" if escalates else "bot")
    # and handed the queued replies to the outbox, in order
    [handed] = outbox.handed
    assert [item.body["text"] for item in handed] == [reply.text for reply in decision(escalates).replies]


async def test_an_escalating_turn_stores_its_answer_as_an_answering_turn_does(fresh_database):
    await turn_by_flows(answering := fresh_database(), decision(escalate=False))
    answered = rows(answering)
    await turn_by_flows(escalating := fresh_database(), decision(escalate=True))
    escalated = rows(escalating)

    for table in ("customers", "channel_identities", "messages", "outbox", "inbound_outcomes", "dialogue_states"):
        assert answered[table] == escalated[table], table
    handoff = {"state", "escalation_reason", "priority", "escalated_at", "first_response_due_at",
               "resolution_due_at", "sla_status", "assignee_id", "updated_at"}
    [before], [after] = answered["conversations"], escalated["conversations"]
    assert {k: v for k, v in before.items() if k not in handoff} == {k: v for k, v in after.items() if k not in handoff}
    assert (after["state"], after["escalation_reason"], after["priority"]) == ("waiting_for_agent", "customer_request",
                                                                               "high")


def _store(engine: Engine, at_once: bool, *, retried: bool, stored: bool, renamed: bool, number: int,
           event_id: int | None = None) -> turns.Answer | None:
    """Store the answer of INBOUND's event with the transaction of statements or the single
    statement, as a worker would after its turn (the customer is known; with ``retried`` an earlier
    try failed, with ``stored`` it stored the customer's message too)."""
    inbound = INBOUND.model_copy(update={"sender_name": "Lan Nguyễn" if renamed else INBOUND.sender_name,
                                         "external_id": f"tg-{number}"})
    with Session(engine) as session:
        if event_id is None:
            event_id = record_inbound(session, inbound, raw={"update_id": number}).id
            session.commit()
        speaker = turns.known_speaker(session.connection(), inbound)
    with engine.begin() as connection:
        stored_id = None
        if retried:
            connection.execute(InboundAttempt.__table__.insert().values(
                event_id=event_id, attempts=1, last_error="RuntimeError: boom", updated_at=utcnow()))
        if stored:
            stored_id = turns.record_customer_message(connection, speaker, inbound, utcnow())
            connection.execute(InboundAttempt.__table__.update().values(message_id=stored_id))
    replies = [(reply.text, reply.model_dump(mode="json"), reply.recipient_id) for reply in decision(False).replies]
    kwargs = dict(event_id=event_id, speaker=speaker, inbound=inbound, channel="telegram", recipient_id=SENDER,
                  nlu=decision(False).nlu.to_rasa(), replies=replies, state_key=f"conversation:{speaker.conversation_id}",
                  state=dict(STATE_AFTER), now=utcnow(), retried=retried, stored_message_id=stored_id)
    if at_once:
        with reading(engine).connect() as connection:
            return store_answer_at_once(connection, last_inbound_at=speaker.last_inbound_at, **kwargs)
    with engine.begin() as connection:
        return turns.store_answer(connection, **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize(("retried", "stored", "renamed"), [(False, False, False), (True, False, True),
                                                            (True, True, False)],
                         ids=["first_try", "retried_renamed", "retried_with_stored_message"])
def test_the_single_statement_writes_what_the_transaction_does(retried, stored, renamed):
    """PostgreSQL's one-statement answer (turns_at_once) and the transaction of statements write the
    same rows, whatever the turn's shape."""
    url = require_service("CAREDESK_TEST_POSTGRES_URL")
    snapshots, answers = [], []
    for at_once in (False, True):
        reset_postgres(url)
        engine = make_database_engine(url)
        try:
            migrate(engine)
            known_customer(engine)
            # an earlier turn: the chat has history, and its replies still wait
            _store(engine, at_once, retried=False, stored=False, renamed=False, number=1)
            answers.append(_store(engine, at_once, retried=retried, stored=stored, renamed=renamed, number=2))
            snapshots.append(rows(engine))
        finally:
            engine.dispose()

    assert_same_rows(*snapshots)
    by_transaction, by_statement = answers
    assert by_statement.behind_older == by_transaction.behind_older is True  # the first turn's replies still wait
    assert len(by_statement.outbox) == len(by_transaction.outbox) == 2
    assert [_plain(item.body) for item in by_statement.outbox] == [_plain(item.body) for item in by_transaction.outbox]
    assert all(item.body["metadata"]["last_inbound_at"] for item in by_statement.outbox)
    after = snapshots[1]
    assert [m["author"] for m in after["messages"]] == ["customer", "bot", "bot"] * 2
    assert after["inbound_attempts"] == []
    assert after["channel_identities"][0]["display_name"] == ("Lan Nguyễn" if renamed else "Lan")
    assert after["messages"][3]["nlu"]["intent"]["name"] == "order_status"


@pytest.mark.slow
def test_the_single_statement_writes_nothing_for_an_event_settled_by_another_worker():
    url = require_service("CAREDESK_TEST_POSTGRES_URL")
    reset_postgres(url)
    engine = make_database_engine(url)
    try:
        migrate(engine)
        known_customer(engine)
        first = _store(engine, True, retried=False, stored=False, renamed=False, number=1)
        before = rows(engine)
        with Session(engine) as session:
            event_id = session.scalars(select(InboundOutcome.event_id)).one()
        again = _store(engine, True, retried=False, stored=False, renamed=True, number=2, event_id=event_id)
        assert first is not None and again is None
        assert rows(engine) == before
    finally:
        engine.dispose()
