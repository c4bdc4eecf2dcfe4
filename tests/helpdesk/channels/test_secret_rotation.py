"""Rotating CAREDESK_SECRET_KEY: stored channel credentials stay readable through the previous key,
``caredesk rotate-secrets`` re-seals them with the new one, web chat visitors and browser sessions
keep working."""

from __future__ import annotations

import pytest
from pydantic import BaseModel
from sqlmodel import Session

from helpdesk.channels.credentials import DatabaseCredentialStore
from helpdesk.channels.ledger import make_database_engine
from helpdesk.channels.models import ChannelCredential
from helpdesk.core.config import Settings
from helpdesk.core.crypto import SecretBox, secret_box
from helpdesk.webchat import service as webchat
from tests.test_cli import run_caredesk

OLD_KEY = "old-secret-key-0123456789"
NEW_KEY = "new-secret-key-9876543210"


class Tokens(BaseModel):
    access_token: str
    refresh_token: str


@pytest.fixture
def engine(database_url):
    from helpdesk.core.db import migrate

    engine = make_database_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


def stored(engine, channel: str) -> str:
    with Session(engine) as session:
        return session.get(ChannelCredential, channel).ciphertext


async def test_credentials_sealed_with_the_previous_key_are_still_read(engine):
    await DatabaseCredentialStore(engine, SecretBox(OLD_KEY), "zalo_oa", Tokens).save(Tokens(
        access_token="a-1", refresh_token="r-1"))
    rotated = DatabaseCredentialStore(engine, SecretBox(NEW_KEY, [OLD_KEY]), "zalo_oa", Tokens)
    assert await rotated.load() == Tokens(access_token="a-1", refresh_token="r-1")
    # without the previous key they are lost (the store falls back to the configured ones)
    assert await DatabaseCredentialStore(engine, SecretBox(NEW_KEY), "zalo_oa", Tokens).load() is None
    # what is saved from now on is sealed with the new key
    await rotated.save(Tokens(access_token="a-2", refresh_token="r-2"))
    assert SecretBox(NEW_KEY).open(stored(engine, "zalo_oa"))


def test_the_previous_keys_are_read_from_the_environment_as_a_list(monkeypatch):
    monkeypatch.setenv("CAREDESK_SECRET_KEY_PREVIOUS", f'["{OLD_KEY}", "older,with-a-comma"]')
    settings = Settings(_env_file=None, secret_key=NEW_KEY)
    assert [key.get_secret_value() for key in settings.secret_key_previous] == [OLD_KEY, "older,with-a-comma"]
    monkeypatch.setenv("CAREDESK_SECRET_KEY_PREVIOUS", f"{OLD_KEY}, another-old-key")
    box = secret_box(Settings(_env_file=None, secret_key=NEW_KEY))
    assert box.open(SecretBox("another-old-key").seal("x")) == "x"


@pytest.mark.slow
def test_rotate_secrets_reseals_every_stored_credential_with_the_new_key(database_url, engine):
    with Session(engine) as session:
        session.add(ChannelCredential(channel="zalo_oa", ciphertext=SecretBox(OLD_KEY).seal('{"t": 1}')))
        session.add(ChannelCredential(channel="zalo_bot", ciphertext=SecretBox(NEW_KEY).seal('{"t": 2}')))
        session.commit()
    env = {"CAREDESK_DATABASE_URL": database_url, "CAREDESK_SECRET_KEY": NEW_KEY,
           "CAREDESK_SECRET_KEY_PREVIOUS": OLD_KEY}
    result = run_caredesk("rotate-secrets", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "zalo_oa" in result.stdout and "zalo_bot" not in result.stdout  # already under the new key
    assert SecretBox(NEW_KEY).open(stored(engine, "zalo_oa")) == '{"t": 1}'  # the old key is not needed
    assert SecretBox(NEW_KEY).open(stored(engine, "zalo_bot")) == '{"t": 2}'
    assert "nothing to do" in run_caredesk("rotate-secrets", env=env).stdout

    # one sealed with a key nobody gave: reported, left alone, and the command fails
    with Session(engine) as session:
        session.add(ChannelCredential(channel="facebook", ciphertext=SecretBox("lost-key-000000000").seal("{}")))
        session.commit()
    failed = run_caredesk("rotate-secrets", env=env)
    assert failed.returncode == 1 and "facebook" in failed.stdout
    assert SecretBox("lost-key-000000000").open(stored(engine, "facebook")) == "{}"


def test_a_web_chat_visitor_keeps_their_chat_across_a_rotation():
    session = webchat.new_session(OLD_KEY)
    assert webchat.visitor_for_token(NEW_KEY, session.token) is None
    assert webchat.visitor_for_token(NEW_KEY, session.token, [OLD_KEY]) == session.visitor_id


async def test_an_inbox_page_opened_before_a_rotation_keeps_working(make_settings):
    """A browser session's CSRF token was made with the key of its day: it is still accepted while that
    key is a previous one, and refused once it is gone."""
    from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, start_client

    async for client in start_client(make_settings(secret_key=OLD_KEY)):
        login = await client.post("/api/auth/session", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        assert login.status_code == 200
        cookies, csrf = dict(client.cookies), login.json()["csrf_token"]
    async for client in start_client(make_settings(secret_key=NEW_KEY)):
        client.cookies.update(cookies)
        assert (await client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf})).status_code == 403
    async for client in start_client(make_settings(secret_key=NEW_KEY, secret_key_previous=[OLD_KEY])):
        client.cookies.update(cookies)
        assert (await client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf})).status_code == 204
