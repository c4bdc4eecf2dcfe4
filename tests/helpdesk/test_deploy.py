"""Preparing a database from several processes at once: replicas starting together, a migrate job
racing a server. Every one succeeds, the schema ends at head, and there is one first admin."""

from __future__ import annotations

import threading

from sqlalchemy import func, select
from sqlmodel import Session

from helpdesk.agents.models import Agent
from helpdesk.channels.ledger import make_database_engine
from helpdesk.core.config import AdminSettings
from helpdesk.core.db import current_revision, head_revision
from helpdesk.deploy import prepare_database

ADMIN = AdminSettings(email="owner@shop.example", password="first-admin-password", name="Owner")
RACERS = 4


def test_prepare_database_from_several_processes_at_once(database_url: str) -> None:
    engines = [make_database_engine(database_url) for _ in range(RACERS)]
    start = threading.Barrier(RACERS)
    failures: list[BaseException] = []

    def prepare(engine) -> None:
        start.wait()
        try:
            prepare_database(engine, ADMIN)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=prepare, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert failures == []
        with engines[0].connect() as connection:
            assert current_revision(connection) == head_revision()
        with Session(engines[0]) as session:
            assert session.exec(select(func.count()).select_from(Agent)).one()[0] == 1
    finally:
        for engine in engines:
            engine.dispose()


def test_prepare_database_again_changes_nothing(database_url: str) -> None:
    engine = make_database_engine(database_url)
    try:
        prepare_database(engine, ADMIN)
        with Session(engine) as session:
            first = session.exec(select(Agent.id, Agent.password_hash)).all()
        prepare_database(engine, AdminSettings(email=ADMIN.email, password="another-password"))
        with Session(engine) as session:
            assert session.exec(select(Agent.id, Agent.password_hash)).all() == first
    finally:
        engine.dispose()
