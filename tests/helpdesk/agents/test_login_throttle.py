"""Failed logins slow down guessing per (account, address) with growing waits; forwarded addresses are
believed only from configured proxies; every throttle is logged."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlmodel import Session, select

from helpdesk.agents.models import LoginAttempt
from helpdesk.agents.service import FIRST_DELAY_S, FREE_FAILURES_PER_CLIENT
from helpdesk.core.db import utcnow
from helpdesk.core.deps import client_address
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, start_client

RIGHT = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
WRONG = {"email": ADMIN_EMAIL, "password": "not-the-password"}


def from_address(client, address: str) -> httpx.AsyncClient:
    """Another client of the same app, connecting from ``address``."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=client.app, client=(address, 40000)),
                             base_url="http://caredesk.test")


def age_failures(client, seconds: float) -> None:
    """Move every recorded failure ``seconds`` into the past (instead of waiting)."""
    with Session(client.wiring.engine) as session:
        for attempt in session.exec(select(LoginAttempt)).all():
            attempt.created_at = attempt.created_at - timedelta(seconds=seconds)
        session.commit()


async def fail(http: httpx.AsyncClient, times: int, body: dict[str, str] = WRONG, **kwargs) -> list[int]:
    return [(await http.post("/api/auth/token", json=body, **kwargs)).status_code for _ in range(times)]


async def test_a_guesser_elsewhere_does_not_lock_the_owner_out(client):
    async with from_address(client, "203.0.113.9") as attacker:
        assert await fail(attacker, 5) == [401] * 5
        assert (await attacker.post("/api/auth/token", json=RIGHT)).status_code == 429
    assert (await client.post("/api/auth/token", json=RIGHT)).status_code == 200


async def test_waits_double_with_each_further_failure_and_a_success_clears_them(client):
    assert await fail(client, 5) == [401] * 5
    first = await client.post("/api/auth/token", json=WRONG)
    assert first.status_code == 429
    assert FIRST_DELAY_S - 2 <= int(first.headers["retry-after"]) <= FIRST_DELAY_S
    age_failures(client, FIRST_DELAY_S)
    assert await fail(client, 1) == [401]  # the wait is over: one more try, which fails too
    second = await client.post("/api/auth/token", json=RIGHT)
    assert second.status_code == 429
    assert 2 * FIRST_DELAY_S - 2 <= int(second.headers["retry-after"]) <= 2 * FIRST_DELAY_S
    age_failures(client, 2 * FIRST_DELAY_S)
    assert (await client.post("/api/auth/token", json=RIGHT)).status_code == 200
    with Session(client.wiring.engine) as session:
        assert session.exec(select(LoginAttempt)).all() == []
    assert await fail(client, 5) == [401] * 5  # back to the free tries


async def test_one_address_trying_many_accounts_waits_only_after_many_more_failures(client):
    for i in range(8):  # more than one account's allowance, spread over accounts
        assert await fail(client, 1, {"email": f"ghost{i}@test.local", "password": "guess-guess"}) == [401]
    assert (await client.post("/api/auth/token", json=RIGHT)).status_code == 200
    with Session(client.wiring.engine) as session:
        session.add_all(LoginAttempt(email=f"spray{i}@test.local", client="127.0.0.1")
                        for i in range(FREE_FAILURES_PER_CLIENT))
        session.commit()
    refused = await client.post("/api/auth/token", json=RIGHT)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    async with from_address(client, "198.51.100.20") as elsewhere:
        assert (await elsewhere.post("/api/auth/token", json=RIGHT)).status_code == 200
    age_failures(client, 3600)  # the address's failures count for an hour only
    assert (await client.post("/api/auth/token", json=RIGHT)).status_code == 200


@pytest.mark.slow
async def test_every_throttle_is_logged_with_account_and_address(client, caplog):
    caplog.set_level(logging.WARNING, logger="helpdesk.agents.service")
    await fail(client, 5)
    await client.post("/api/auth/token", json=RIGHT)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("locked" in m and ADMIN_EMAIL in m and "127.0.0.1" in m for m in warnings), warnings
    assert any("throttled" in m and ADMIN_EMAIL in m and "127.0.0.1" in m for m in warnings), warnings


@pytest.mark.slow
async def test_forwarded_for_from_a_client_that_is_not_a_proxy_is_ignored(client):
    statuses = [(await client.post("/api/auth/token", json=WRONG,
                                   headers={"X-Forwarded-For": f"192.0.2.{i}"})).status_code for i in range(6)]
    assert statuses == [401] * 5 + [429]


@pytest.fixture
async def behind_proxy(make_settings) -> AsyncIterator[object]:
    """The app behind a reverse proxy on 127.0.0.1 (the test client's address)."""
    async for value in start_client(make_settings(trusted_proxies=["127.0.0.0/8", "10.1.0.0/16"])):
        yield value


@pytest.mark.slow
async def test_behind_a_trusted_proxy_the_forwarded_client_is_throttled(behind_proxy):
    guesser = {"X-Forwarded-For": "198.51.100.7"}
    assert await fail(behind_proxy, 5, headers=guesser) == [401] * 5
    assert (await behind_proxy.post("/api/auth/token", json=RIGHT, headers=guesser)).status_code == 429
    # a forged first hop does not help: the proxies' own hop on the right names the guesser
    forged = {"X-Forwarded-For": "192.0.2.1, 198.51.100.7, 10.1.2.3"}
    assert (await behind_proxy.post("/api/auth/token", json=RIGHT, headers=forged)).status_code == 429
    owner = {"X-Forwarded-For": "203.0.113.50"}
    assert (await behind_proxy.post("/api/auth/token", json=RIGHT, headers=owner)).status_code == 200


@pytest.mark.parametrize(("peer", "forwarded", "trusted", "expected"), [
    ("127.0.0.1", ["1.2.3.4"], [], "127.0.0.1"),
    ("203.0.113.5", ["1.2.3.4"], ["10.0.0.0/8"], "203.0.113.5"),
    ("10.0.0.2", ["1.2.3.4"], ["10.0.0.0/8"], "1.2.3.4"),
    ("10.0.0.2", ["6.6.6.6, 1.2.3.4, 10.0.0.9"], ["10.0.0.0/8"], "1.2.3.4"),
    ("10.0.0.2", ["6.6.6.6", "1.2.3.4"], ["10.0.0.0/8"], "1.2.3.4"),
    ("10.0.0.2", [], ["10.0.0.0/8"], "10.0.0.2"),
    ("10.0.0.2", ["not-an-ip"], ["10.0.0.0/8"], "10.0.0.2"),
    ("::1", ["2001:db8::7"], ["::1"], "2001:db8::7"),
])
def test_client_address_is_the_rightmost_hop_not_a_trusted_proxy(peer, forwarded, trusted, expected):
    assert client_address(peer, forwarded, trusted) == expected


def test_caredesk_serve_leaves_forwarded_headers_to_caredesk(monkeypatch):
    import uvicorn

    from helpdesk import cli

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: seen.update(kwargs))
    monkeypatch.setattr(cli, "create_app", lambda settings, **_options: object(), raising=False)
    monkeypatch.setattr("helpdesk.app.create_app", lambda settings, **_options: object())
    cli.serve(host="127.0.0.1", port=8000)
    # uvicorn would otherwise take X-Forwarded-For from any local client as the client's address
    assert seen["proxy_headers"] is False
