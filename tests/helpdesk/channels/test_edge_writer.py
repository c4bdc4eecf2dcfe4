"""The webhook edge's SQLite writer: many requests a transaction, on the event loop, never waiting on
it for the write lock, in the inbound ledger's own file, which the worker's transactions on the main
database do not lock."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest
from sqlmodel import Session, func, select

from connectors.base import InboundMessage
from helpdesk.channels.edge import MAX_BATCH, EdgeWriter
from helpdesk.channels.models import InboundEvent
from helpdesk.channels.ledger import make_database_engine, make_ledger_engine
from helpdesk.core.db import migrate


def message(external_id: str, sender: str = "42") -> InboundMessage:
    return InboundMessage(channel="telegram", sender_id=sender, external_id=external_id, text="xin chào")


@pytest.fixture
def engine(sqlite_url):
    """The edge's engine: the ledger's file, failing at once on a lock."""
    main = make_database_engine(sqlite_url)
    migrate(main)
    main.dispose()
    engine = make_ledger_engine(sqlite_url, sqlite_busy_timeout_ms=0)
    yield engine
    engine.dispose()


async def test_concurrent_requests_share_transactions_and_duplicates_are_dropped(engine):
    writer = EdgeWriter(engine)
    n = MAX_BATCH + 100
    try:
        requests = [[message(f"m-{i}", sender=str(i % 7))] for i in range(n)]
        requests += [[message("m-3")], [message("m-5"), message("m-new")]]  # redeliveries, one with a new event
        results = await asyncio.gather(*(writer.store(r, {"raw": i}) for i, r in enumerate(requests)))
    finally:
        writer.close()
    assert all(len(result) == 1 for result in results[:n])
    assert results[n] == []  # a duplicate is acknowledged, not stored again
    assert [row[1:] for row in results[n + 1]] == [("telegram", "42", True)]
    # grouped, and no transaction longer than MAX_BATCH requests
    assert writer.requests == n + 2 and writer.batches == 2
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(InboundEvent)).one() == n + 1
    ids = [row[0] for result in results for row in result]
    assert len(set(ids)) == len(ids) == n + 1


async def test_one_bad_request_does_not_fail_the_others(engine):
    writer = EdgeWriter(engine)
    try:
        bad = [message("x" * 500)]  # longer than the column allows on PostgreSQL; on SQLite, payload breaks
        good = [message("ok-1")]
        results = await asyncio.gather(writer.store(good, {"a": 1}), writer.store(bad, {"b": object()}),
                                       return_exceptions=True)
    finally:
        writer.close()
    assert len(results[0]) == 1
    assert isinstance(results[1], Exception)
    with Session(engine) as session:
        assert session.exec(select(InboundEvent.external_id)).all() == ["ok-1"]


async def test_a_locked_ledger_is_waited_for_without_blocking_the_loop(engine):
    holder = sqlite3.connect(engine.url.database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another connection's transaction holds the ledger's write lock
    writer = EdgeWriter(engine)
    try:
        stored = asyncio.create_task(writer.store([message("locked-1")], {}))
        ticks, until = 0, time.monotonic() + 0.2
        while time.monotonic() < until:
            await asyncio.sleep(0.005)
            ticks += 1
        assert ticks >= 20  # the loop kept running: nothing slept on it for the lock
        assert not stored.done()
        holder.execute("COMMIT")
        [(event_id, channel, sender, to_process)] = await asyncio.wait_for(stored, 2)
        assert (channel, sender, to_process) == ("telegram", "42", True)
    finally:
        holder.close()
        writer.close()
    with Session(engine) as session:
        assert session.exec(select(InboundEvent.id)).all() == [event_id]


async def test_the_workers_write_lock_on_the_database_does_not_hold_the_edge_up(engine, sqlite_url):
    """The worker writes the main file; the edge writes the ledger's: a long transaction of the
    worker's does not delay an acknowledgement, and the worker's connections see the new event."""
    worker = make_database_engine(sqlite_url)
    holder = worker.raw_connection()
    try:
        holder.execute("BEGIN")  # as the worker's transactions: the lock of each file written
        holder.execute("UPDATE agents SET name = name")  # the main file's write lock, held
        writer = EdgeWriter(engine)
        try:
            [(event_id, *_rest)] = await asyncio.wait_for(writer.store([message("free-1")], {}), 0.5)
        finally:
            writer.close()
        assert holder.execute("SELECT external_id FROM inbound_events WHERE id = ?", (event_id,)).fetchall() == [
            ("free-1",)]
        holder.execute("COMMIT")
    finally:
        holder.close()
        worker.dispose()


async def test_the_edge_stores_each_column_as_the_ledger_service_does(engine, monkeypatch):
    """The writer runs the ledger's insert through the driver's own cursor: every value must reach the
    file as SQLAlchemy's column types would have written it (JSON, the UTC timestamp, the status)."""
    from datetime import UTC, datetime

    from helpdesk.channels import service

    monkeypatch.setattr(service, "utcnow", lambda: datetime(2026, 12, 6, 2, 30, 1, tzinfo=UTC))
    sent = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    events = [InboundMessage(channel="telegram", sender_id="7", external_id="text", text="ảnh đây ạ", timestamp=sent),
              InboundMessage(channel="telegram", sender_id="7", external_id="echo", text="", kind="echo", timestamp=sent)]
    payload = {"update_id": 5, "message": {"text": "ảnh đây ạ", "photo": [{"file_id": "x", "width": 90}]}}
    writer = EdgeWriter(engine)
    try:
        through_edge = await writer.store([e.model_copy(update={"external_id": f"edge-{e.external_id}"}) for e in events],
                                          payload)
    finally:
        writer.close()
    with Session(engine) as session:
        through_service = [service.record_inbound(session, e.model_copy(update={"external_id": f"orm-{e.external_id}"}),
                                                  payload) for e in events]
        session.commit()
    assert [row[3] for row in through_edge] == [True, False]  # the echo is stored, not to be processed
    assert through_service[0].status == "received" and through_service[1].status == "ignored"
    file = sqlite3.connect(engine.url.database)
    try:
        file.row_factory = sqlite3.Row
        rows = {row["external_id"]: dict(row) for row in file.execute("SELECT * FROM inbound_events")}
    finally:
        file.close()
    for name in ("text", "echo"):
        edge, orm = rows[f"edge-{name}"], rows[f"orm-{name}"]
        # the stored message names its own external id; written alike otherwise, byte for byte
        assert edge.pop("message").replace('"edge-', '"orm-') == orm.pop("message")
        assert {k: v for k, v in edge.items() if k not in ("id", "external_id")} == {
            k: v for k, v in orm.items() if k not in ("id", "external_id")}
    assert rows["edge-text"]["received_at"] == "2026-12-06 02:30:01.000000"  # as SQLAlchemy writes it
    assert rows["edge-echo"]["status"] == "ignored"


async def test_after_its_connection_fails_the_edge_stores_through_a_new_one(engine):
    """The writer keeps its ledger connection between batches; one that fails is let go of. Here the
    ledger's table is lost under it: a new connection makes the table again, and the request is stored."""
    writer = EdgeWriter(engine)
    try:
        await writer.store([message("before")], {})
        other = sqlite3.connect(engine.url.database, isolation_level=None)
        try:
            other.execute("DROP TABLE inbound_events")
        finally:
            other.close()
        [(event_id, *_rest)] = await asyncio.wait_for(writer.store([message("after")], {}), 5)
        [(later_id, *_rest)] = await writer.store([message("later")], {})
    finally:
        writer.close()
    with Session(engine) as session:
        assert session.exec(select(InboundEvent.external_id).order_by(InboundEvent.id)).all() == ["after", "later"]
    assert later_id > event_id
