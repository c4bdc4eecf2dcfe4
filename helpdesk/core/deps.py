"""FastAPI dependencies: the runtime, a database session, the current agent."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from helpdesk.agents.models import Agent, AgentRole
from helpdesk.core.errors import Forbidden, Unauthorized

if TYPE_CHECKING:
    from helpdesk.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    """The application's wiring (settings, database, channels, bot). Async, so that FastAPI calls it
    on the event loop instead of handing it to a worker thread (a hop that, on the webhook edge,
    cost more than the dependency itself)."""
    return request.app.state.runtime


RuntimeDep = Annotated["Runtime", Depends(get_runtime)]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _within(address: str, networks: Sequence[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(peer: str | None, forwarded_for: Sequence[str], trusted_proxies: Sequence[str]) -> str:
    """Who is really asking: the connecting address, unless that is a trusted proxy, in which case the
    nearest address in ``X-Forwarded-For`` that is not one (the rightmost untrusted hop; anything left of
    it was written by the client and proves nothing)."""
    peer = peer or "unknown"
    networks = _networks(tuple(trusted_proxies))
    if not networks or not _within(peer, networks):
        return peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # the proxy passed on garbage: fall back to what is known for sure
        if not _within(hop, networks):
            return hop
    return hops[0] if hops else peer


async def get_client_address(request: Request) -> str:
    """The client's address as ``client_address`` decides it with CAREDESK_TRUSTED_PROXIES."""
    return client_address(request.client.host if request.client else None,
                          request.headers.getlist("x-forwarded-for"),
                          request.app.state.runtime.settings.trusted_proxies)


ClientAddress = Annotated[str, Depends(get_client_address)]


def get_session(request: Request) -> Iterator[Session]:
    """A database session for one request, committed when the route returns without error."""
    runtime = request.app.state.runtime
    with Session(runtime.engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


# scope="function": commit before the response is sent, so a client that acts on the response at
# once (e.g. uses a token it just received) always finds the change stored.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="Token from POST /api/auth/token")


SESSION_COOKIE = "caredesk_session"
CSRF_COOKIE = "caredesk_csrf"
CSRF_HEADER = "X-CSRF-Token"
#: the login form's double-submit token: a cookie the login page sets, and the form field that repeats it
LOGIN_CSRF_COOKIE = "caredesk_login_csrf"
LOGIN_CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def csrf_token_for(secret_key: str, session_token: str) -> str:
    """The CSRF token bound to a browser session (nothing to store: it is derived from the session)."""
    return hmac.new(secret_key.encode(), b"csrf:" + session_token.encode(), hashlib.sha256).hexdigest()


def get_current_agent(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Agent:
    """The agent behind the request: a bearer token (API), or a session cookie plus CSRF token (browser)."""
    from helpdesk.agents.service import agent_for_token

    if credentials is not None and credentials.credentials:
        return agent_for_token(session, credentials.credentials)
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise Unauthorized("missing bearer token or session")
    agent = agent_for_token(session, cookie, kind="session")
    if request.method in UNSAFE_METHODS:
        secret = request.app.state.runtime.settings.secret_key.get_secret_value()
        given = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(given.encode(), csrf_token_for(secret, cookie).encode()):
            raise Forbidden("missing or wrong CSRF token (send the X-CSRF-Token header)")
    return agent


CurrentAgent = Annotated[Agent, Depends(get_current_agent)]


def get_current_supervisor(agent: CurrentAgent) -> Agent:
    """The current agent, who must be a supervisor or an admin."""
    if agent.role not in (AgentRole.admin, AgentRole.supervisor):
        raise Forbidden("supervisors and admins only")
    return agent


CurrentSupervisor = Annotated[Agent, Depends(get_current_supervisor)]


def get_current_admin(agent: CurrentAgent) -> Agent:
    """The current agent, who must be an admin."""
    if agent.role != AgentRole.admin:
        raise Forbidden("admins only")
    return agent


CurrentAdmin = Annotated[Agent, Depends(get_current_admin)]
