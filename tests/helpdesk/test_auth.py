"""Agents log in for a bearer token; nothing about conversations is open without one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from helpdesk.agents.models import AuthToken
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD

PROTECTED = [
    ("GET", "/api/conversations"),
    ("GET", "/api/conversations/1"),
    ("POST", "/api/conversations/1/messages"),
    ("POST", "/api/conversations/1/notes"),
    ("POST", "/api/conversations/1/claim"),
    ("POST", "/api/conversations/1/resolve"),
    ("POST", "/api/conversations/1/handback"),
    ("GET", "/api/me"),
    ("POST", "/api/agents"),
]


async def test_first_admin_is_created_at_start_and_can_log_in(client):
    response = await client.post("/api/auth/token", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["agent"]["role"] == "admin"
    me = await client.get("/api/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["email"] == ADMIN_EMAIL


async def test_oauth2_password_form_is_accepted_too(client):
    response = await client.post("/api/auth/token", data={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert response.status_code == 200


async def test_wrong_password_is_401(client):
    response = await client.post("/api/auth/token", json={"email": ADMIN_EMAIL, "password": "nope-nope"})
    assert response.status_code == 401
    assert response.json()["detail"] == "wrong email or password"


async def test_unknown_email_gets_the_same_answer_as_a_wrong_password(client):
    response = await client.post("/api/auth/token", json={"email": "ghost@test.local", "password": "x" * 10})
    assert response.status_code == 401
    assert response.json()["detail"] == "wrong email or password"


async def test_login_without_credentials_is_400(client):
    response = await client.post("/api/auth/token", json={"email": ADMIN_EMAIL})
    assert response.status_code == 400


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_conversation_routes_need_a_token(client, method, path):
    response = await client.request(method, path, json={"text": "hi"})
    assert response.status_code == 401


async def test_garbage_token_is_401(client):
    response = await client.get("/api/conversations", headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 401


async def test_expired_token_is_401(client):
    headers = await client.login()
    with Session(client.runtime.engine) as session:
        for token in session.exec(select(AuthToken)).all():
            token.expires_at = token.expires_at - timedelta(days=2)
        session.commit()
    response = await client.get("/api/conversations", headers=headers)
    assert response.status_code == 401


async def test_admin_creates_an_agent_who_cannot_create_agents(client):
    headers = await client.login()
    created = await client.post("/api/agents", headers=headers, json={
        "email": "hanh@test.local", "name": "Hạnh", "password": "agent-pass-1", "team": "care"})
    assert created.status_code == 201
    agent_headers = await client.login("hanh@test.local", "agent-pass-1")
    refused = await client.post("/api/agents", headers=agent_headers, json={
        "email": "x@test.local", "name": "X", "password": "agent-pass-2"})
    assert refused.status_code == 403


async def test_duplicate_agent_email_is_409(client):
    headers = await client.login()
    body = {"email": "dup@test.local", "name": "Dup", "password": "agent-pass-1"}
    assert (await client.post("/api/agents", headers=headers, json=body)).status_code == 201
    assert (await client.post("/api/agents", headers=headers, json=body)).status_code == 409
