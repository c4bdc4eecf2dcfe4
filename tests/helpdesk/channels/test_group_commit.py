"""The webhook edge's PostgreSQL writer: the requests that arrive while a transaction commits share the
next one, each request is answered once its own events are committed, one bad request fails alone,
and a database that is away fails every request (the platforms send them again)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, func, select

from connectors.base import InboundMessage
from helpdesk.channels.edge import GroupCommitWriter
from helpdesk.channels.models import InboundEvent
from helpdesk.core.db import make_engine, migrate


def message(external_id: str, sender: str = "42") -> InboundMessage:
    return InboundMessage(channel="telegram", sender_id=sender, external_id=external_id, text="xin chào")


@pytest.fixture
def engine(postgres_url):
    engine = make_engine(postgres_url)
    migrate(engine)
    yield engine
    engine.dispose()


def count(engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(InboundEvent)).one()


async def test_a_burst_shares_transactions_and_every_request_gets_its_own_events(engine):
    writer = GroupCommitWriter(engine)
    n = 300
    requests = [[message(f"m-{i}", sender=str(i % 7))] for i in range(n)]
    # redeliveries (from the same senders), one with a new event
    requests += [[message("m-3", sender="3")], [message("m-5", sender="5"), message("m-new")]]
    results = await asyncio.gather(*(writer.store(r, {"raw": i}) for i, r in enumerate(requests)))
    rows = [[row[1:] for row in result] for result in results]
    assert [rows[i] for i in range(n) if i not in (3, 5)] == [
        [("telegram", str(i % 7), True)] for i in range(n) if i not in (3, 5)]
    # A duplicate is acknowledged, not stored again. Two transactions run at a time, so the one with
    # the redeliveries (the burst's last requests) may commit first: the event then belongs to the
    # redelivery and the first request is acknowledged without it (a fresh-clone run saw that).
    assert sorted([rows[3], rows[n]]) == [[], [("telegram", "3", True)]]
    m5_first = rows[5] == [("telegram", "5", True)]
    assert m5_first or rows[5] == []
    assert rows[n + 1] == ([] if m5_first else [("telegram", "5", True)]) + [("telegram", "42", True)]
    assert writer.requests == n + 2
    assert writer.batches < n / 4, f"{writer.batches} transactions for {n + 2} requests: not grouped"
    assert count(engine) == n + 1
    ids = [row[0] for result in results for row in result]
    assert len(set(ids)) == len(ids) == n + 1


async def test_a_single_request_is_stored_at_once(engine):
    writer = GroupCommitWriter(engine)
    [[event_id, channel, sender, fresh]] = await asyncio.wait_for(writer.store([message("alone")], {}), 10)
    assert (channel, sender, fresh) == ("telegram", "42", True) and writer.batches == 1
    assert count(engine) == 1


async def test_one_bad_request_fails_alone(engine):
    writer = GroupCommitWriter(engine)
    good = [writer.store([message(f"ok-{i}")], {"a": i}) for i in range(20)]
    bad = writer.store([message("x" * 500)], {"b": 1})  # longer than the column allows
    results = await asyncio.gather(*good, bad, return_exceptions=True)
    assert all(isinstance(result, list) and len(result) == 1 for result in results[:20])
    assert isinstance(results[20], Exception) and not isinstance(results[20], OperationalError)
    assert count(engine) == 20


async def test_a_database_that_is_away_fails_every_request_and_nothing_is_half_written(postgres_url):
    from sqlalchemy.engine import make_url

    away = make_engine(make_url(postgres_url).set(port=1).render_as_string(hide_password=False))
    writer = GroupCommitWriter(away)
    results = await asyncio.gather(*(writer.store([message(f"m-{i}")], {}) for i in range(10)),
                                   return_exceptions=True)
    assert all(isinstance(result, OperationalError) for result in results)
    # and the writer takes requests again once the database is back
    engine = make_engine(postgres_url)
    migrate(engine)
    writer.engine = engine
    try:
        assert len(await writer.store([message("after")], {})) == 1
    finally:
        engine.dispose()
        away.dispose()
