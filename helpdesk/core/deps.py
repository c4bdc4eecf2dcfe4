"""FastAPI dependencies that know no domain: the parts of the application's wiring that core defines
(settings, database engine, event bus, clock), a database session, the client's address.

Each part comes from ``app.state.wiring`` (helpdesk.wiring, the composition root, which core does not
import). The getters are async so that FastAPI calls them on the event loop instead of handing each
to a worker thread (a hop that, on the webhook edge, cost more than the dependency itself). Parts of a
domain's type have their dependency in that domain's package (e.g. ``helpdesk.channels.deps``; the
job queue's in ``helpdesk.jobs.deps``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.requests import HTTPConnection

from helpdesk.core.clock import Clock
from helpdesk.core.config import Settings
from helpdesk.core.db import session_scope
from helpdesk.core.events import EventBus


async def get_app_settings(connection: HTTPConnection) -> Settings:
    """The running application's settings."""
    return connection.app.state.wiring.settings


async def get_engine(connection: HTTPConnection) -> Engine:
    """The database engine."""
    return connection.app.state.wiring.engine


async def get_events(connection: HTTPConnection) -> EventBus:
    """The domain event bus."""
    return connection.app.state.wiring.events


async def get_clock(connection: HTTPConnection) -> Clock:
    """The time source (tests set it to a fake one)."""
    return connection.app.state.wiring.clock


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
EventsDep = Annotated[EventBus, Depends(get_events)]
ClockDep = Annotated[Clock, Depends(get_clock)]

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
                          request.app.state.wiring.settings.trusted_proxies)


ClientAddress = Annotated[str, Depends(get_client_address)]


def get_session(request: Request) -> Iterator[Session]:
    """A database session for one request, committed when the route returns without error."""
    with session_scope(request.app.state.wiring.engine) as session:
        yield session


# scope="function": commit before the response is sent, so a client that acts on the response at
# once (e.g. uses a token it just received) always finds the change stored.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
