"""Agents log in for a bearer token; nothing about conversations is open without one."""

from __future__ import annotations

import asyncio
import gc
import http.client
import threading
import time
from datetime import timedelta

import httpx
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
    with Session(client.wiring.engine) as session:
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


def _burst_of_logins(correct: int, wrong_for_admin: int, unknown: int) -> list[dict[str, str]]:
    bodies = [{"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}] * correct
    bodies += [{"email": ADMIN_EMAIL, "password": f"wrong-{i}"} for i in range(wrong_for_admin)]
    bodies += [{"email": f"ghost{i}@test.local", "password": "guess-guess"} for i in range(unknown)]
    # interleaved, so right and wrong passwords are hashed side by side
    return [bodies[i] for i in sorted(range(len(bodies)), key=lambda i: (i * 7) % len(bodies))]


@pytest.fixture
def heap_frozen_as_served():
    """The test process's heap frozen, as ``caredesk serve`` freezes its own once started
    (``helpdesk.core.heap``). Otherwise a full collection of everything the tests before this one
    made can stop the loop: 668 ms of garbage collection in one fresh-clone run, after the fault
    tests in the same process. That is the test process's heap, not the logins' work. (Without the
    collection ``freeze_startup_heap`` makes first: the monitor would count that one.)"""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@pytest.mark.slow
@pytest.mark.alone  # measures the event loop's lag: another test's load on the machine would show in it
@pytest.mark.real_password_hashing
async def test_concurrent_logins_do_not_block_the_event_loop(client, heap_frozen_as_served):
    monitor = client.wiring.loop_lag
    monitor.reset()
    bodies = _burst_of_logins(correct=8, wrong_for_admin=4, unknown=8)
    responses = await asyncio.gather(*(client.post("/api/auth/token", json=body) for body in bodies))
    statuses = [(body["password"] == ADMIN_PASSWORD, response.status_code) for body, response in zip(bodies, responses)]
    assert all(status == 200 for right, status in statuses if right), statuses
    assert all(status == 401 for right, status in statuses if not right), statuses
    assert monitor.max_lag_s < 0.25, f"the event loop stalled for {monitor.max_lag_s * 1000:.0f} ms"


@pytest.mark.slow
@pytest.mark.alone  # measures /healthz latency
@pytest.mark.real_password_hashing
def test_twenty_concurrent_logins_keep_healthz_fast(live_server):
    stop = threading.Event()
    latencies: list[float] = []

    def poll_health() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", live_server.port, timeout=5)
        while not stop.is_set():
            started = time.perf_counter()
            try:
                connection.request("GET", "/healthz")
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                ok = False
                connection.close()
            latencies.append(time.perf_counter() - started if ok else float("inf"))
            time.sleep(0.005)
        connection.close()

    async def log_in_all(bodies: list[dict[str, str]]) -> list[httpx.Response | BaseException]:
        # verify=False: plain HTTP on loopback, and loading the CA bundle would hold the GIL (and so
        # the server's loop, in this same process) for most of a second
        async with httpx.AsyncClient(base_url=live_server.url, timeout=20, verify=False) as http:
            return await asyncio.gather(*(http.post("/api/auth/token", json=body) for body in bodies),
                                        return_exceptions=True)

    bodies = _burst_of_logins(correct=10, wrong_for_admin=4, unknown=6)
    poller = threading.Thread(target=poll_health)
    # As `caredesk serve` does once started (Wiring.start): what exists now stays out of full garbage
    # collections, which in this test process's big heap pause every thread for up to half a second.
    gc.freeze()
    poller.start()
    try:
        time.sleep(0.1)
        del latencies[:]  # from the burst on
        responses = asyncio.run(log_in_all(bodies))
    finally:
        stop.set()
        poller.join(timeout=60)
        gc.unfreeze()
    statuses = [(body["password"] == ADMIN_PASSWORD, getattr(response, "status_code", repr(response)))
                for body, response in zip(bodies, responses)]
    assert all(status == 200 for right, status in statuses if right), statuses
    assert all(status == 401 for right, status in statuses if not right), statuses
    assert len(latencies) >= 20
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    assert p99 < 0.050, f"/healthz p99 {p99 * 1000:.1f} ms during 20 logins (max {latencies[-1] * 1000:.0f} ms)"


@pytest.mark.parametrize("change", [{"password": "a-new-password-1"}, {"is_active": False}, {"role": "supervisor"}])
async def test_a_password_reset_deactivation_or_role_change_ends_the_agents_sessions(client, change):
    admin = await client.login()
    created = await client.post("/api/agents", headers=admin, json={
        "email": "revoked@test.local", "name": "Revoked", "password": "agent-pass-1"})
    bearer = await client.login("revoked@test.local", "agent-pass-1")
    browser = await client.post("/api/auth/session", json={"email": "revoked@test.local", "password": "agent-pass-1"})
    client.cookies.clear()
    cookie = {"cookie": f"caredesk_session={browser.cookies['caredesk_session']}"}
    assert (await client.get("/api/me", headers=bearer)).status_code == 200
    assert (await client.get("/api/me", headers=cookie)).status_code == 200
    changed = await client.patch(f"/api/agents/{created.json()['id']}", headers=admin, json=change)
    assert changed.status_code == 200, changed.text
    assert (await client.get("/api/me", headers=bearer)).status_code == 401
    assert (await client.get("/api/me", headers=cookie)).status_code == 401
    assert (await client.get("/api/me", headers=admin)).status_code == 200  # nobody else's


async def test_renaming_or_new_teams_keep_the_agents_sessions(client):
    admin = await client.login()
    created = await client.post("/api/agents", headers=admin, json={
        "email": "kept@test.local", "name": "Kept", "password": "agent-pass-1", "role": "agent"})
    bearer = await client.login("kept@test.local", "agent-pass-1")
    changed = await client.patch(f"/api/agents/{created.json()['id']}", headers=admin,
                                 json={"name": "Still Kept", "teams": ["care"], "role": "agent"})
    assert changed.status_code == 200
    assert (await client.get("/api/me", headers=bearer)).status_code == 200


CREDENTIALS = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site", "Origin": "https://shop.caredesk.test"},
])
async def test_another_sites_page_cannot_log_a_browser_in(client, headers):
    response = await client.post("/api/auth/session", json=CREDENTIALS, headers=headers)
    assert response.status_code == 403
    assert "caredesk_session" not in response.cookies


async def test_this_sites_pages_and_api_clients_log_in_with_json(client):
    same_site = {"Origin": "http://caredesk.test", "Sec-Fetch-Site": "same-origin"}
    assert (await client.post("/api/auth/session", json=CREDENTIALS, headers=same_site)).status_code == 200
    client.cookies.clear()
    assert (await client.post("/api/auth/session", json=CREDENTIALS)).status_code == 200


async def test_a_posted_login_form_needs_the_login_pages_token(client):
    refused = await client.post("/api/auth/session", data=CREDENTIALS)
    assert refused.status_code == 403
    page = await client.get("/inbox/login")
    token = page.cookies["caredesk_login_csrf"]
    assert f'name="csrf_token" value="{token}"' in page.text
    forged = await client.post("/api/auth/session", data={**CREDENTIALS, "csrf_token": "guessed"})
    assert forged.status_code == 403
    accepted = await client.post("/api/auth/session", data={**CREDENTIALS, "csrf_token": token})
    assert accepted.status_code == 200, accepted.text
