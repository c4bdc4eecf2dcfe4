"""Backup and restore on the real PostgreSQL: a database filled through the application, dumped with
``scripts/backup.sh dump`` (pg_dump -Fc), restored with ``scripts/backup.sh restore`` (pg_restore) into
a fresh database, serves the same conversations and agents, is ready (/readyz 200: migrations at
head) and goes on taking new messages."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import ROOT, TELEGRAM_SECRET, start_client
from tests.helpdesk.channels.test_telegram_flow import post_update, telegram_update

pytestmark = pytest.mark.slow  # pg_dump, pg_restore and two app start-ups

BACKUP = str(ROOT / "scripts" / "backup.sh")
CHAT = 555000111


def run_backup(*args: str, url: str) -> None:
    result = subprocess.run([BACKUP, *args], env={**os.environ, "CAREDESK_DATABASE_URL": url},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def drop_database(connection, name: str) -> None:
    """Drop ``name``, ending the test role's own sessions on it first. Not ``WITH (FORCE)``: that
    refuses when an autovacuum worker is on the database (after a restore's many rows), which a role
    without pg_signal_backend may not end; a plain DROP asks that worker to leave, and waits for the
    ended sessions to go."""
    connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name "
                            "AND usename = current_user AND pid <> pg_backend_pid()"), {"name": name})
    connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))


@pytest.fixture
def fresh_database(postgres_url: str):
    """An empty database beside the test one, dropped afterwards."""
    url = make_url(postgres_url)
    name = f"{url.database}_restored"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        drop_database(connection, name)
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
    yield url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        drop_database(connection, name)
    admin.dispose()


async def conversations_of(client) -> list[dict]:
    headers = await client.login()
    listing = (await client.get("/api/conversations", headers=headers)).json()["data"]
    return [(await client.get(f"/api/conversations/{row['id']}", headers=headers)).json() for row in listing]


async def test_a_dump_restored_into_a_fresh_database_serves_the_same_data(
        make_settings, fake_telegram, postgres_url, fresh_database, tmp_path: Path):
    telegram = {"token": fake_telegram.token, "secret_token": TELEGRAM_SECRET, "api_base": fake_telegram.base_url}
    async for client in start_client(make_settings(database_url=postgres_url, telegram=telegram)):
        headers = await client.login()
        created = await client.post("/api/agents", headers=headers, json={
            "email": "lan@shop.test", "name": "Lan", "password": "lan-pass-1234", "role": "agent"})
        assert created.status_code == 201, created.text
        for index, question in enumerate(["bảo hành bao lâu vậy shop", "cho mình gặp nhân viên"]):
            assert (await post_update(client, telegram_update(8100 + index, question, chat_id=CHAT))).status_code == 200
            await client.settle()
        before = await conversations_of(client)
    assert before and sum(len(c["messages"]) for c in before) >= 4  # two questions, their answers

    dump = tmp_path / "caredesk.dump"
    run_backup("dump", str(dump), url=postgres_url)
    assert dump.stat().st_size > 0
    run_backup("restore", str(dump), url=fresh_database)

    async for client in start_client(make_settings(database_url=fresh_database, telegram=telegram)):
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["migrations"] is True
        after = await conversations_of(client)
        assert [(c["id"], [(m["author"], m["text"]) for m in c["messages"]]) for c in after] == [
            (c["id"], [(m["author"], m["text"]) for m in c["messages"]]) for c in before]
        assert (await client.login("lan@shop.test", "lan-pass-1234"))["Authorization"]  # the agent, with her password
        # the sequences came along: a new message gets new ids, in the same conversation
        assert (await post_update(client, telegram_update(8200, "cảm ơn shop", chat_id=CHAT))).status_code == 200
        await client.settle()
        [conversation] = [c for c in await conversations_of(client) if c["id"] == before[0]["id"]]
        assert len(conversation["messages"]) > len(before[0]["messages"])
        assert "cảm ơn shop" in [m["text"] for m in conversation["messages"]]
