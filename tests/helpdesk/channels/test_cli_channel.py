"""The cli channel (what `caredesk chat` talks to) answers this machine, or an admin's bearer token."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlmodel import Session, func, select

from helpdesk.channels.models import InboundEvent
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD

MESSAGE = {"sender_id": "remote-1", "message_id": "remote-1-1", "text": "alo shop"}


@pytest.fixture
async def remote(make_settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client on another machine (a public address) talking to the app."""
    from helpdesk.app import create_app

    app = create_app(make_settings())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://caredesk.test") as client:
            client.app = app
            yield client


def stored_events(client) -> int:
    with Session(client.app.state.wiring.engine) as session:
        return session.exec(select(func.count()).select_from(InboundEvent)).one()


async def token_of(client, email: str, password: str) -> dict[str, str]:
    response = await client.post("/api/auth/token", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def test_a_remote_caller_without_a_token_can_neither_post_nor_read(remote):
    posted = await remote.post("/webhooks/cli", json=MESSAGE)
    assert posted.status_code == 403
    assert "admin" in posted.json()["detail"]
    assert stored_events(remote) == 0
    read = await remote.get("/webhooks/cli/messages", params={"sender_id": "remote-1"})
    assert read.status_code == 403


async def test_a_remote_caller_with_an_admins_token_may_chat(remote):
    admin = await token_of(remote, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert (await remote.post("/webhooks/cli", json=MESSAGE, headers=admin)).status_code == 200
    await remote.app.state.wiring.worker.wait_idle(10)
    replies = await remote.get("/webhooks/cli/messages", params={"sender_id": "remote-1"}, headers=admin)
    assert replies.status_code == 200 and replies.json()["data"]


async def test_an_agents_token_or_a_bad_token_is_not_enough(remote):
    admin = await token_of(remote, ADMIN_EMAIL, ADMIN_PASSWORD)
    created = await remote.post("/api/agents", headers=admin, json={
        "email": "chatty@test.local", "name": "chatty", "password": "agent-pass-1", "role": "agent"})
    assert created.status_code == 201, created.text
    agent = await token_of(remote, "chatty@test.local", "agent-pass-1")
    assert (await remote.post("/webhooks/cli", json=MESSAGE, headers=agent)).status_code == 403
    bad = {"Authorization": "Bearer not-a-token"}
    assert (await remote.post("/webhooks/cli", json=MESSAGE, headers=bad)).status_code == 401
    assert stored_events(remote) == 0


@pytest.mark.parametrize("header", ["X-Forwarded-For", "Forwarded", "X-Real-IP"])
async def test_a_loopback_peer_forwarding_for_someone_else_needs_the_token(client, header):
    # a reverse proxy on this machine: the peer is loopback, the caller is not
    response = await client.post("/webhooks/cli", json=MESSAGE, headers={header: "198.51.100.4"})
    assert response.status_code == 403
    read = await client.get("/webhooks/cli/messages", params={"sender_id": "remote-1"},
                            headers={header: "198.51.100.4"})
    assert read.status_code == 403


async def test_this_machine_chats_without_logging_in(client):
    assert (await client.post("/webhooks/cli", json=MESSAGE)).status_code == 200
    await client.settle()
    replies = await client.get("/webhooks/cli/messages", params={"sender_id": "remote-1"})
    assert replies.status_code == 200 and replies.json()["data"]
